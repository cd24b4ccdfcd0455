/*
 * metrics: the daemon's counters and their Prometheus text rendering.
 *
 * Counters are plain global integers, incremented where things happen
 * (quic_*, wt_*, the handlers): one thread, so no locks and no atomics.
 * What a route counts lives in a small table keyed by the route's path,
 * apart from struct config_route, so that the figures outlive a reload of
 * the configuration.  Rendering builds a text body and does no I/O (the
 * admin endpoint serves it; the unit test reads it).
 */
#ifndef WTRELAYD_METRICS_H
#define WTRELAYD_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct config;

/* Why a new connection got no state (labels of connections_refused). */
enum metrics_refused {
    METRICS_REFUSED_MAX_CONNECTIONS,
    METRICS_REFUSED_SHUTTING_DOWN,
    METRICS_REFUSED_INVALID_TOKEN,
    /* per source address (addrlim.h): over max_connections_per_address,
     * max_handshakes_per_address (both answered CONNECTION_REFUSED), over
     * connection_rate_per_address (dropped: no answer), no room in the
     * address table (answered) */
    METRICS_REFUSED_ADDR_CONNECTIONS,
    METRICS_REFUSED_ADDR_HANDSHAKES,
    METRICS_REFUSED_ADDR_RATE,
    METRICS_REFUSED_ADDR_TABLE_FULL,
    /* the handshake queue (quic_hsq.c) was full: dropped, no answer */
    METRICS_REFUSED_HANDSHAKE_QUEUE,
    METRICS_REFUSED_N
};

/* Why a handshake never completed (labels of handshakes_failed). */
enum metrics_handshake_fail {
    METRICS_HS_TIMEOUT,  /* handshake_timeout or idle before completion */
    METRICS_HS_TLS,      /* a TLS alert, ours or the peer's */
    METRICS_HS_PEER,     /* the peer closed the connection */
    METRICS_HS_PROTOCOL, /* any other QUIC error */
    METRICS_HS_N
};

/* Why the forward handler reset a stream (its 0xf1..0xf5 codes). */
enum metrics_backend_error {
    METRICS_BE_REFUSED,
    METRICS_BE_TIMEOUT,
    METRICS_BE_RESET,
    METRICS_BE_LIMIT,
    METRICS_BE_RESOURCE,
    METRICS_BE_N
};

/* Why a message toward or from Redis was dropped ([cluster]). */
enum metrics_cluster_drop {
    METRICS_CL_DOWN,      /* Redis unreachable: not published */
    METRICS_CL_PENDING,   /* over max_pending_bytes: not published */
    METRICS_CL_CUT,       /* the rest of a stream cut on the way */
    METRICS_CL_LIMIT,     /* over max_remote_streams/members, daemons */
    METRICS_CL_MALFORMED, /* not a message we read */
    METRICS_CL_N
};

struct metrics {
    uint64_t connections_total;
    uint64_t connections_refused[METRICS_REFUSED_N];
    uint64_t handshakes_completed;
    uint64_t handshakes_resumed; /* ... of them, resuming a TLS session */
    uint64_t handshakes_failed[METRICS_HS_N];
    uint64_t retry_sent;
    /* handshakes started from the queue (quic_hsq.c), and the time their
     * first flights took (the loop did nothing else meanwhile) */
    uint64_t handshakes_started, handshake_start_ns;
    /* ... and the helper threads' time on them (handshake_threads) */
    uint64_t handshake_thread_ns;
    uint64_t sessions_refused_address; /* 429: max_sessions_per_address */
    uint64_t stateless_resets_sent;
    uint64_t streams_total; /* WebTransport streams of sessions */
    uint64_t streams_open;  /* gauge: WebTransport stream objects alive */
    uint64_t datagrams_received, datagrams_sent, datagrams_dropped;
    uint64_t stream_bytes_received, stream_bytes_sent; /* WT payload */
    uint64_t udp_bytes_received, udp_bytes_sent;
    /* connections' packets: UDP datagrams sent, and the system calls
     * that sent them (sendmmsg batches many connections' packets) */
    uint64_t udp_datagrams_sent, udp_send_calls;
    /* gauge: bytes the daemon holds in stream send buffers (own chunks
     * and shared relay blocks, counted once) and datagram queues */
    uint64_t buffered_bytes;
    /* [cluster] (cluster.c); listed only when configured */
    int cluster_on;
    uint64_t cluster_up, cluster_connects;
    uint64_t cluster_published, cluster_published_bytes, cluster_received;
    uint64_t cluster_dropped[METRICS_CL_N];
    uint64_t cluster_pending_bytes, cluster_rooms;
    uint64_t cluster_remote_members, cluster_remote_streams;
    uint64_t cluster_daemons; /* other daemons heard from, in any room */
    uint64_t cluster_nodes_expired, cluster_streams_cut;
};

extern struct metrics metrics;

/* Route table: bounded; routes past it share one "(other)" entry. */
#define METRICS_MAX_ROUTES 256
#define METRICS_MAX_STATUSES 8

struct metrics_route {
    char *path; /* label; "(none)": requests that matched no route */
    uint64_t sessions_open; /* gauge */
    uint64_t sessions_total;
    struct {
        int status;
        uint64_t n;
    } rejected[METRICS_MAX_STATUSES]; /* first statuses seen; then "other" */
    uint64_t rejected_other;
    /* set by the handler that serves the route: which families list it */
    int broadcast, forward;
    /* broadcast */
    uint64_t rooms, members; /* gauges */
    /* forward */
    uint64_t backend_open; /* gauge */
    uint64_t backend_total;
    uint64_t backend_errors[METRICS_BE_N];
};

/* The entry of a route path (created on first use), never NULL: a full
 * table or no memory gives the shared overflow entry.  NULL path: the
 * "(none)" entry.  Entries never move or go away while the process runs. */
struct metrics_route *metrics_route(const char *path);
void metrics_session_rejected(struct metrics_route *r, int status);
/* An entry for every route of a configuration, so that their series are
 * there from the start (at zero), not from the first session. */
void metrics_add_routes(const struct config *c);

/* Values that are read, not counted, when the page is rendered. */
struct metrics_gauges {
    const char *version;
    uint64_t connections_open;
    uint64_t handshakes_in_progress;
    uint64_t handshakes_queued; /* new connections waiting to start */
    uint64_t addresses_tracked; /* entries of the per-address table */
    uint64_t resident_bytes;  /* 0: unknown */
    int64_t cert_not_after;   /* unix seconds; 0: unknown */
    int draining;
};

/* Prometheus text exposition format 0.0.4.  Returns a malloc'd,
 * NUL-terminated body (its length in *len), or NULL when out of memory. */
char *metrics_render(const struct metrics_gauges *g, size_t *len);

/* Resident set size from /proc/self/statm, in bytes; 0 when unknown. */
uint64_t metrics_rss(void);

/* Forgets every counter and route (tests). */
void metrics_reset(void);

#endif
