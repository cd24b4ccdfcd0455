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
#define CONFIG_MAX_ORIGINS 32
#define CONFIG_ERR_LEN 512

struct wt_handler_ops;

struct config_listen {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char text[64]; /* as written, for logs: "0.0.0.0:4433", "[::]:4433" */
};

/* One [route /path] section. */
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
    int line; /* of the section header, for messages */
    struct config_route *next;
};

/* Address validation by Retry for new connections (config key `retry`). */
enum { CONFIG_RETRY_OFF, CONFIG_RETRY_ON, CONFIG_RETRY_AUTO };

struct config {
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
    int retry;                    /* CONFIG_RETRY_* */
    uint64_t retry_handshakes;    /* auto: Retry from this many on */
    struct config_route *routes;  /* in file order */
};

/*
 * Loads `path` into `c` (which it initialises; defaults first).  On error
 * returns -1 with "file:line: message" in err (line 0 when the error is not
 * tied to a line, e.g. the file cannot be opened or a required key is
 * missing) and leaves nothing allocated.
 */
int config_load(struct config *c, const char *path, char *err, size_t errlen);
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

#endif
