/*
 * wt_internal: private to wt_*.c; nothing else includes it (the interface
 * of the module is wt.h).  What wt_session.c (sessions, CONNECT, capsules,
 * datagrams, closing) and wt_stream.c (streams: write queue, lifetime,
 * classification and delivery, the handler's stream calls) share.
 */
#ifndef WTRELAYD_WT_INTERNAL_H
#define WTRELAYD_WT_INTERNAL_H

#include <stdint.h>

#include "config.h"
#include "log.h"
#include "quic.h"
#include "wt.h"

#define SLOG(lvl, s, fmt, ...)                                                 \
    log_##lvl("conn %llu %s: session %lld: " fmt,                              \
              (unsigned long long)(s)->qc->serial, (s)->qc->peer,              \
              (long long)(s)->id, __VA_ARGS__)
#define CLOG(lvl, qc, fmt, ...)                                                \
    log_##lvl("conn %llu %s: " fmt, (unsigned long long)(qc)->serial,          \
              (qc)->peer, __VA_ARGS__)

static inline const struct wt_handler_ops *ops_of(const struct wt_session *s)
{
    return s->ops;
}

/* The connection's configuration: the one it was accepted under (a
 * reload does not change the limits of a running connection). */
static inline const struct config *cfg_of(const struct quic_conn *qc)
{
    return qc->cfg;
}

/* ---- wt_stream.c ---- */

void wt_stream_detach(struct wt_stream *st);
void wt_stream_abort(struct wt_stream *st, uint64_t h3code);
void wt_stream_free(struct wt_stream *st);
void wt_adopt_pending(struct wt_session *s);
void wt_pending_refuse(struct quic_conn *qc, uint64_t id);
void wt_pending_expire_cb(struct ev_loop *loop, ev_timer *w, int revents);

#endif
