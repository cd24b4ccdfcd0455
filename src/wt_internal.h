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

/* ---- wt_session.c ---- */

/* Queues capsule bytes on the session's CONNECT stream. */
void wt_session_queue_capsule(struct wt_session *s, const uint8_t *p,
                              size_t n);
/* Ends the session on a protocol error: no capsule, the CONNECT stream is
 * reset with `h3code`. */
void wt_session_abort(struct wt_session *s, uint64_t h3code, const char *why);

/* ---- wt_fc.c (session flow control, draft-14+ §5) ---- */

/* Decides whether the new session uses it (both sides declared it). */
void wt_fc_init(struct wt_session *s);
int wt_fc_is_capsule(uint64_t type);
/* A flow-control capsule from the peer (its whole value). */
void wt_fc_capsule(struct wt_session *s, uint64_t type, const uint8_t *val,
                   size_t len);
/* A peer stream joins the session: -1 when it is one too many (the
 * session is aborted with WT_FLOW_CONTROL_ERROR). */
int wt_fc_rx_stream(struct wt_session *s, struct wt_stream *st);
/* n body bytes from the peer (`consumed`: already done with): -1 when
 * past WT_MAX_DATA (the session is aborted). */
int wt_fc_rx_data(struct wt_session *s, uint64_t n, int consumed);
void wt_fc_consumed(struct wt_session *s, uint64_t n);
/* A counted peer stream left the session (its credit may go back). */
void wt_fc_stream_done(struct wt_session *s, struct wt_stream *st);
/* May we open a stream of this kind (the peer's WT_MAX_STREAMS)? */
int wt_fc_may_open(struct wt_session *s, int bidi);
void wt_fc_opened(struct wt_session *s, int bidi);
/* Body bytes we may still send (UINT64_MAX without flow control). */
uint64_t wt_fc_tx_credit(struct wt_session *s);
void wt_fc_sent(struct wt_session *s, uint64_t n);

/* ---- wt_stream.c ---- */

/* The session has send credit again: the stream rejoins the write
 * queue. */
void wt_stream_fc_wake(struct wt_stream *st);
/* session_streams_available is due (after the current callback). */
void wt_session_slot_freed(struct wt_session *s);

void wt_stream_detach(struct wt_stream *st);
void wt_stream_abort(struct wt_stream *st, uint64_t h3code);
void wt_stream_free(struct wt_stream *st);
void wt_adopt_pending(struct wt_session *s);
void wt_pending_refuse(struct quic_conn *qc, uint64_t id);
void wt_pending_expire_cb(struct ev_loop *loop, ev_timer *w, int revents);

#endif
