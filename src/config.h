/*
 * config: the INI file (inih) -> struct config.  Every error names the file
 * and line ("conf/wtrelayd.ini:12: max_connections: not a number").  Nothing
 * here touches sockets or TLS; only config_load() reads files (the INI and,
 * to fail early, checks that cert/key are readable).
 */
#ifndef WTRELAYD_CONFIG_H
#define WTRELAYD_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define CONFIG_MAX_LISTEN 16
/* workers = N: at most (cid.h: CID_MAX_WORKERS) */
#define CONFIG_MAX_WORKERS 64
#define CONFIG_MAX_ORIGINS 32
#define CONFIG_MAX_PROTOCOLS 16   /* a route's `protocols` */
#define CONFIG_MAX_PROTOCOL_LEN 64
#define CONFIG_ERR_LEN 512

struct wt_handler_ops;

struct config_listen {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char text[64]; /* as written, for logs: "0.0.0.0:4433", "[::]:4433" */
};

/*
 * One [route /path] section.  Reference-counted on its own, apart from the
 * config that parsed it: a session holds the route it opened on (and
 * forward's lingering backend connections their session's), so a reload
 * can drop the old route set while they run on (see README, Reload).
 */
struct config_route {
    char *path; /* exact match against :path up to '?' */
    const struct wt_handler_ops *handler;
    void *handler_conf; /* owned by the handler (configure / route_free) */
    char *origins[CONFIG_MAX_ORIGINS]; /* allowlist; none = any origin */
    size_t norigins;
    /* Sessions on this route are closed by the server after this long
     * (0 = never), with this code and reason. */
    uint64_t max_session_duration_ms;
    uint32_t expire_code;
    char *expire_reason;
    /* WebTransport subprotocols, in the server's order of preference
     * (each an RFC 9651 Token, so both header spellings can carry it);
     * with protocol_required, a client offering none of them is refused */
    char *protocols[CONFIG_MAX_PROTOCOLS];
    size_t nprotocols;
    int protocol_required;
    int line; /* of the section header, for messages */
    /* FNV-1a of the section's keys and values as written: what a reload
     * compares to tell a changed route from an unchanged one */
    uint64_t digest;
    unsigned refs; /* the config's, sessions', handlers' */
    struct config_route *next;
};

/*
 * [cluster]: broadcast rooms shared with the other daemons configured with
 * the same Redis (cluster.c).  `redis` NULL: no cluster (the section is
 * absent); set, the section is configured.
 */
struct config_cluster {
    char *redis;     /* as written, the password masked (for logs) */
    char *host;      /* numeric address (resolved at load); NULL: unix */
    int port;
    char *unix_path; /* unix:/path */
    char *user, *password; /* AUTH; NULL: none */
    uint64_t db;
    char *node_id;   /* for logs and other nodes' logs; default host:pid */
    char *prefix;    /* of every channel: fleets may share one Redis */
    uint64_t max_pending_bytes;  /* published, not yet answered by Redis */
    uint64_t max_remote_streams; /* other daemons' streams relayed at once */
    uint64_t max_remote_members; /* members elsewhere known, per room */
    uint64_t heartbeat_ms, node_timeout_ms;
    int line; /* of the redis key, for messages */
};

/* Address validation by Retry for new connections (config key `retry`). */
enum { CONFIG_RETRY_OFF, CONFIG_RETRY_ON, CONFIG_RETRY_AUTO };

/*
 * A configuration generation.  One loaded with config_new() is
 * reference-counted: the endpoint holds the current one, each connection
 * the one it was accepted under (its transport limits came from it), and
 * the last config_unref() frees it.  refs == 0 marks a config that is not
 * counted (config_load() into the caller's struct: clients, tests, -t),
 * which the caller frees with config_free().
 */
struct config {
    unsigned refs;
    char *file; /* path of the loaded file */
    struct config_listen listen[CONFIG_MAX_LISTEN];
    size_t nlisten;
    char *cert; /* resolved against the config file's directory */
    char *key;
    int log_level;
    int log_format; /* LOG_FMT_TEXT, LOG_FMT_JSON */
    uint64_t max_connections;
    uint64_t max_sessions_per_connection;
    uint64_t max_streams_per_session;
    uint64_t max_buffer_bytes;            /* per stream, each direction */
    uint64_t max_connection_buffer_bytes; /* per connection (QUIC max_data) */
    uint64_t max_datagram_queue;          /* datagrams queued per session */
    uint64_t max_pending_streams; /* per connection, waiting for session */
    uint64_t pending_timeout_ms;  /* ... for this long at most */
    uint64_t socket_buffer_bytes; /* SO_RCVBUF/SO_SNDBUF of UDP sockets */
    uint64_t idle_timeout_ms;
    uint64_t handshake_timeout_ms;
    uint64_t shutdown_timeout_ms; /* grace for sessions on SIGTERM */
    /* Session flow control (draft-14+): the WT_INITIAL_* SETTINGS, which
     * are also the windows each session's credit is replenished to; 0 =
     * derived from the per-session limits (config_wt_initial()). */
    uint64_t wt_initial_max_data;
    uint64_t wt_initial_max_streams_bidi;
    uint64_t wt_initial_max_streams_uni;
    /* Client role only: the draft its SETTINGS announce (14 and 15 also
     * announce the WT_INITIAL_* values; 0: every draft's id, none of
     * those, as before) */
    int client_draft;
    /* Client role only (tests): max_datagram_frame_size 0, so datagrams
     * go as DATAGRAM capsules both ways */
    int no_quic_datagrams;
    /* Worker processes (workers = N; 1: a single process, no
     * supervisor; super.h) */
    uint64_t workers;
    /* A worker whose loop has not answered the supervisor's ping for this
     * long is killed and restarted (super.c) */
    uint64_t worker_timeout_ms;
    int retry;                    /* CONFIG_RETRY_* */
    uint64_t retry_handshakes;    /* auto: Retry from this many on */
    /* new connections' first packets waiting for their handshake to
     * start (quic_hsq.c); more are dropped */
    uint64_t handshake_queue;
    /* helper threads making new connections' first flight (0: the loop
     * thread does); read at start */
    uint64_t handshake_threads;
    /* ... their priority below the loop thread's, in nice steps; read at
     * start */
    uint64_t handshake_nice;
    /* the loop thread's scheduling slice in microseconds (prio.h; 0: the
     * kernel's default) */
    uint64_t loop_slice_us;
    /* Per source address (IPv4 address, IPv6 /64), addrlim.h; 0 = none */
    uint64_t max_connections_per_address;
    uint64_t max_handshakes_per_address;  /* handshakes in progress */
    uint64_t max_sessions_per_address;    /* across its connections */
    uint64_t connection_rate_per_address; /* new connections a second */
    uint64_t connection_burst_per_address; /* ... and the bucket's size */
    struct config_route *routes;  /* in file order */
    /* [admin]: the HTTP endpoint (admin.c), off unless `listen` is set */
    int admin_on;
    struct config_listen admin_listen;
    int admin_allow_remote;          /* a non-loopback listen is refused
                                        unless this says so */
    uint64_t admin_max_connections;  /* at once, all clients together */
    uint64_t admin_timeout_ms;       /* an idle or slow connection's life */
    struct config_cluster cluster;
};

/*
 * Loads `path` into `c` (which it initialises; defaults first).  On error
 * returns -1 with "file:line: message" in err (line 0 when the error is not
 * tied to a line, e.g. the file cannot be opened or a required key is
 * missing) and leaves nothing allocated.
 */
int config_load(struct config *c, const char *path, char *err, size_t errlen);
/* config_load() into a new counted config (refs 1); NULL with err set. */
struct config *config_new(const char *path, char *err, size_t errlen);
struct config *config_ref(struct config *c);
void config_unref(struct config *c);
/* A route's own count; the last unref frees it (the handler's route_free
 * first).  The count is bookkeeping, not content: const routes take it. */
const struct config_route *config_route_ref(const struct config_route *r);
void config_route_unref(const struct config_route *r);

/*
 * After a reload has loaded `next`: each route of `next` whose path and
 * handler an old route shares gets the handler's route_inherit (state that
 * must not split, e.g. broadcast rooms).  Call once the reload is sure to
 * take effect.
 */
void config_inherit(struct config *next, const struct config *old);
/*
 * What changed from `old` to `next`, for the reload's log line: "routes
 * +/a -/b ~/c; limits max_connections 1000->2000; listen +X -Y" (or "no
 * change").  Always NUL-terminated, truncated with "..." if long.
 */
void config_describe_changes(const struct config *old,
                             const struct config *next, char *out,
                             size_t outlen);
/* Same address (family, address, port)? */
int config_listen_same(const struct config_listen *a,
                       const struct config_listen *b);

/* The session flow-control windows in force: the configured ones, or
 * derived: data 4 x max_buffer_bytes (at most the connection's window),
 * streams half of max_streams_per_session each way (at least 1), so that
 * a peer within its credit never meets max_streams_per_session. */
void config_wt_initial(const struct config *c, uint64_t *data, uint64_t *bidi,
                       uint64_t *uni);

/* Built-in defaults only (no file, no routes): what clients start from. */
void config_defaults(struct config *c);
void config_free(struct config *c);

/* Route for a request path (query string ignored), or NULL. */
const struct config_route *config_find_route(const struct config *c,
                                             const char *path, size_t len);

/* "64k", "16M", "1G", "123" -> bytes (k = 1024).  0 or -1. */
int config_parse_size(const char *s, uint64_t *out);
/* yes/no, true/false, on/off, 1/0 -> 1 or 0; -1 for anything else. */
int config_parse_bool(const char *s);
/* "30s", "250ms", "2m", "0" -> milliseconds.  0 or -1. */
int config_parse_duration_ms(const char *s, uint64_t *out);
/* "127.0.0.1:4433", "[::1]:4433", "0.0.0.0:4433" -> sockaddr.  0 or -1. */
int config_parse_addr(const char *s, struct config_listen *out);
/* The address is a loopback one (127.0.0.0/8, ::1, ::ffff:127.x). */
int config_addr_is_loopback(const struct config_listen *l);
/* "redis://[[user]:password@]host[:port][/db]" or "unix:/path[?db=N]"
 * into cl (host names resolved now, to a numeric address): 0, or -1
 * with a reason in err. */
int config_parse_redis(const char *s, struct config_cluster *cl, char *err,
                       size_t errlen);
void config_cluster_free(struct config_cluster *cl);

#endif
