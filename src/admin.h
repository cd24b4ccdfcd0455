/*
 * admin: the HTTP/1.1 admin endpoint ([admin] listen): /metrics
 * (Prometheus), /healthz, the demo page (/) and its /config.json.
 *
 * HTTP is libmicrohttpd's, in external-poll mode inside our libev loop (its
 * epoll descriptor watched by one ev_io, its timeout by one ev_timer): no
 * thread.  Connections are bounded in number (all clients, and per client
 * address), in memory and in time, so a slow or hostile admin client costs
 * the QUIC side nothing but a few wake-ups.
 *
 * admin_reply() decides what a request gets and builds the body; it does
 * no I/O, so the unit tests drive it directly.
 */
#ifndef WTRELAYD_ADMIN_H
#define WTRELAYD_ADMIN_H

#include <ev.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct config;
struct quic_endpoint;
struct MHD_Daemon;
struct admin_wait;

/* What a reply is built from: the live state, read at each request. */
struct admin_view {
    const struct config *cfg;
    const struct config_listen *listen; /* where the endpoint listens */
    const char *version;
    const char *cert_sha256; /* hex */
    int cert_hashable;       /* tls_ctx_cert_hashable() */
    int64_t cert_not_after;
    int draining;
    uint64_t connections_open, handshakes_in_progress, handshakes_queued;
    uint64_t addresses_tracked;
    /* supervisor (workers = N): /metrics is answered later, from the
     * loop, with what the source passes to admin_metrics_answer(); this
     * is called for each such request (the source asks its workers, or
     * lets the request join a round already asking).  /healthz answers
     * 503 with `unhealthy` when it is set */
    void (*metrics_begin)(void *arg);
    void *metrics_arg;
    const char *unhealthy;
    int cluster; /* 0: no [cluster], 1: Redis up, 2: down */
};

struct admin_reply {
    int status;        /* ADMIN_LATER: answered by admin_metrics_answer() */
    const char *type;  /* Content-Type, NULL for none */
    const char *allow; /* Allow (405) */
    char *body;        /* malloc'd unless `fixed` */
    size_t len;
    int fixed;         /* body is static (the demo page) */
};

#define ADMIN_LATER 0

/* method, url (path, no query) and the Host header (NULL when none) ->
 * reply.  -1 when out of memory (nothing to free). */
int admin_reply(const struct admin_view *v, const char *method,
                const char *url, const char *host, struct admin_reply *r);
void admin_reply_free(struct admin_reply *r);

/* Where a supervisor's admin endpoint gets its view (no endpoint of its
 * own: the workers have them). */
struct admin_source {
    void (*view)(void *arg, struct admin_view *v);
};

struct admin {
    struct ev_loop *loop;
    const struct admin_source *src; /* supervisor; then ep is NULL */
    void *src_arg;
    const struct config *src_cfg;   /* supervisor: as started */
    struct quic_endpoint *ep; /* its cfg and tls are read at each request,
                                 so a reload that replaces them is seen */
    const char *version;
    struct config_listen listen; /* as started: a reload does not move it */
    struct MHD_Daemon *mhd;
    ev_io io;       /* MHD's epoll descriptor */
    ev_timer timer; /* MHD_get_timeout() */
    /* supervisor: /metrics requests suspended until the workers answered
     * (at most [admin] max_connections: one a connection) */
    struct admin_wait *waiting;
};

/* Starts listening on ep->cfg's [admin] listen (a no-op when it has none).
 * 0, or -1 with a message in err. */
int admin_start(struct admin *a, struct ev_loop *loop,
                struct quic_endpoint *ep, const char *version, char *err,
                size_t errlen);
/* The same for a supervisor: the [admin] section of cfg, the view from
 * src (read at each request). */
int admin_start_source(struct admin *a, struct ev_loop *loop,
                       const struct config *cfg,
                       const struct admin_source *src, void *arg,
                       const char *version, char *err, size_t errlen);
void admin_stop(struct admin *a);
/* Supervisor: answers every /metrics request waiting since its
 * metrics_begin() with page (copied; NULL: 503, the page could not be
 * made).  From the loop, never from inside a metrics_begin() call. */
void admin_metrics_answer(struct admin *a, const char *page, size_t len);
/* What /metrics would answer for this endpoint alone (a worker's figures,
 * which its supervisor collects): malloc'd, NULL when out of memory. */
char *admin_metrics(const struct quic_endpoint *ep, const char *version,
                    size_t *len);
/* After a reload: a changed [admin] section takes a restart (a warning
 * says so); the endpoint stays where it is. */
void admin_reload_check(const struct admin *a, const struct config *cfg);

#endif
