/*
 * handler: the interface every route handler implements, and the table of
 * handlers.  A handler never touches ngtcp2 or nghttp3: it talks to sessions
 * and streams only through wt.h.  A new handler is one file plus one line in
 * handler.c's table.
 */
#ifndef WTRELAYD_HANDLER_H
#define WTRELAYD_HANDLER_H

#include <stddef.h>
#include <stdint.h>

struct config_route;
struct wt_session;
struct wt_stream;

struct wt_handler_ops {
    const char *name;
    /* A key of the route's section that config.c does not know; NULL when
     * the handler has no keys of its own.  0, or -1 with a message in err
     * (config.c adds file:line). */
    int (*configure)(struct config_route *r, const char *key, const char *val,
                     char *err, size_t errlen);
    /* After the whole file: the route's keys taken together (what one key
     * alone cannot tell), and what the handler sets up per route.  0, or
     * -1 with a message in err (config.c adds file:line). */
    int (*route_check)(struct config_route *r, char *err, size_t errlen);
    void (*route_free)(struct config_route *r);
    /* Reload: `r` (new, checked) replaces `old` (same path, same handler),
     * which still serves its sessions.  What must not split between the
     * two (broadcast: the rooms) is shared or moved here; NULL when the
     * handler has nothing to carry. */
    void (*route_inherit)(struct config_route *r, struct config_route *old);

    /* Server: 0 accepts the session; an HTTP status 400..599 rejects it
     * with that status, any other value with 503.  Client: the server
     * accepted it; a non-zero value closes it again. */
    int (*session_open)(struct wt_session *s);
    /* Client only: the server answered `status` (not 2xx), or 0 when the
     * request ended without an answer (`why` says more).  Nothing more is
     * heard of the session. */
    void (*session_rejected)(struct wt_session *s, int status,
                             const char *why);
    /* Runs once per session, before its streams are torn down. */
    void (*session_close)(struct wt_session *s, uint32_t code,
                          const char *reason, size_t reasonlen);
    /* Server-opened streams may be possible again (limits lifted). */
    void (*session_streams_available)(struct wt_session *s);

    void (*stream_open)(struct wt_stream *st);
    /* Bytes in order; the handler must wt_stream_consume() them when it is
     * done with them, which is what returns flow-control credit. */
    void (*stream_data)(struct wt_stream *st, const uint8_t *p, size_t n,
                        int fin);
    /* The peer reset its sending side (RESET_STREAM) with a WebTransport
     * code (0 when the wire code was not a mapped one). */
    void (*stream_reset)(struct wt_stream *st, uint32_t code);
    /* The peer asked us to stop sending (STOP_SENDING). */
    void (*stream_stop_sending)(struct wt_stream *st, uint32_t code);
    /* Sent bytes were acknowledged: send-buffer space was freed. */
    void (*stream_writable)(struct wt_stream *st);
    /* The stream is gone; its user data must be released here. */
    void (*stream_close)(struct wt_stream *st);

    void (*datagram)(struct wt_session *s, const uint8_t *p, size_t n);
};

const struct wt_handler_ops *handler_find(const char *name);

extern const struct wt_handler_ops handler_echo;
extern const struct wt_handler_ops handler_broadcast;
extern const struct wt_handler_ops handler_forward;

/* A broadcast route's tag and announce settings (the demo page's chat). */
void handler_broadcast_flags(const struct config_route *r, int *tag,
                             int *announce);

#endif
