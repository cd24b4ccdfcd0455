/*
 * Unit tests of the session layer (src/wt_session.c) on a connection with
 * no ngtcp2 connection behind it: the calls that would reach ngtcp2 or the
 * write loop are wrapped at link time (Makefile: UNIT_LDFLAGS_test_wt_session)
 * and recorded.
 *
 * A client session closed while it still waits for its answer: the
 * CONNECT stream is reset and stopped once with H3_REQUEST_CANCELLED (RFC
 * 9114 §4.1.1), no CLOSE capsule or FIN is queued, the handler hears
 * session_close once with its own code and nothing after (not the 2xx
 * that was already on its way), and the session is freed when its stream
 * closes, long before the connection does.
 */
#include <ev.h>
#include <ngtcp2/ngtcp2.h>
#include <stdlib.h>

#include "h3.h"
#include "handler.h"
#include "log.h"
#include "quic.h"
#include "t.h"
#include "wire.h"
#include "wt_internal.h"

/* ---- what would reach ngtcp2 or the write loop: recorded ---- */
static int shut_calls, want_writes;
static int64_t shut_id;
static uint64_t shut_code;

int __wrap_ngtcp2_conn_shutdown_stream(ngtcp2_conn *conn, uint32_t flags,
                                       int64_t stream_id,
                                       uint64_t app_error_code);
int __wrap_ngtcp2_conn_shutdown_stream(ngtcp2_conn *conn, uint32_t flags,
                                       int64_t stream_id,
                                       uint64_t app_error_code)
{
    (void)conn;
    (void)flags;
    shut_calls++;
    shut_id = stream_id;
    shut_code = app_error_code;
    return 0;
}
int __wrap_ngtcp2_conn_extend_max_offset(ngtcp2_conn *conn, uint64_t datalen);
int __wrap_ngtcp2_conn_extend_max_offset(ngtcp2_conn *conn, uint64_t datalen)
{
    (void)conn;
    (void)datalen;
    return 0;
}
int __wrap_ngtcp2_conn_set_stream_user_data(ngtcp2_conn *conn,
                                            int64_t stream_id, void *data);
int __wrap_ngtcp2_conn_set_stream_user_data(ngtcp2_conn *conn,
                                            int64_t stream_id, void *data)
{
    (void)conn;
    (void)stream_id;
    (void)data;
    return 0;
}
void __wrap_quic_conn_want_write(struct quic_conn *qc);
void __wrap_quic_conn_want_write(struct quic_conn *qc)
{
    (void)qc;
    want_writes++;
}
void __wrap_h3_resume(struct quic_conn *qc, int64_t stream_id);
void __wrap_h3_resume(struct quic_conn *qc, int64_t stream_id)
{
    (void)qc;
    (void)stream_id;
}

/* ---- the handler: what it hears ---- */
static int opens, rejects, closes;
static uint32_t close_code;

static int on_open(struct wt_session *s)
{
    (void)s;
    opens++;
    return 0;
}
static void on_rejected(struct wt_session *s, int status, const char *why)
{
    (void)s;
    (void)status;
    (void)why;
    rejects++;
}
static void on_close(struct wt_session *s, uint32_t code, const char *reason,
                     size_t reasonlen)
{
    (void)s;
    (void)reason;
    (void)reasonlen;
    closes++;
    close_code = code;
}

static const struct wt_handler_ops ops = {
    .name = "unit",
    .session_open = on_open,
    .session_rejected = on_rejected,
    .session_close = on_close,
};

/* ---- one client connection, one session waiting for its answer ---- */
static struct quic_endpoint ep;
static struct config cfg;
static struct quic_conn qc;
static struct h3_request req;

static struct wt_session *connecting(int64_t id)
{
    struct wt_session *s = calloc(1, sizeof(*s));

    if (!s)
        abort();
    shut_calls = want_writes = opens = rejects = closes = 0;
    shut_code = 0;
    memset(&qc, 0, sizeof(qc));
    memset(&req, 0, sizeof(req));
    qc.ep = &ep;
    qc.cfg = &cfg;
    snprintf(qc.peer, sizeof(qc.peer), "unit");
    wt_conn_init(&qc);
    /* as wt_session_connect() leaves it once the CONNECT is sent */
    s->qc = &qc;
    s->id = id;
    s->stream_prefix_id = (uint64_t)id;
    s->draft = WT_DRAFT07;
    s->ops = &ops;
    s->connecting = 1;
    LIST_INIT(&s->streams);
    LIST_INIT(&s->fc_waiters);
    buf_init(&s->caps);
    ev_init(&s->expire, NULL);
    req.stream_id = id;
    req.session = s;
    s->req = &req;
    LIST_INSERT_HEAD(&qc.wt.sessions, s, link);
    return s;
}

static int in_list(const struct wt_session *s)
{
    const struct wt_session *x;

    LIST_FOREACH(x, &qc.wt.sessions, link)
        if (x == s)
            return 1;
    return 0;
}

T_TEST(close_connecting_cancels)
{
    struct wt_session *s = connecting(8);

    wt_session_close(s, 4242, "bye", 3);
    T_EQ(shut_calls, 1);
    T_EQ(shut_id, 8);
    T_EQ(shut_code, (uint64_t)WIRE_H3_REQUEST_CANCELLED);
    T_EQ(closes, 1);
    T_EQ(close_code, 4242u);
    T_EQ(s->connecting, 0);
    T_EQ(s->open, 0);
    T_EQ(s->aborted, 1);
    T_EQ(qc.wt.nopen, 0u);
    /* no CLOSE capsule, no FIN: the stream is reset, not ended */
    T_EQ(s->caps.end, (uint64_t)0);
    T_EQ(s->caps_fin, 0);
    T_CHECK(want_writes >= 1);

    /* closing again, or the 2xx that was on its way: nothing more */
    wt_session_close(s, 1, "", 0);
    req.status = 200;
    T_EQ(wt_on_response(s, 0), 0);
    wt_on_connect_reset(s, WIRE_H3_REQUEST_CANCELLED);
    T_EQ(shut_calls, 1);
    T_EQ(closes, 1);
    T_EQ(opens, 0);
    T_EQ(rejects, 0);
    T_EQ(s->open, 0);

    /* the stream closes (the peer's reset came): the session goes now,
     * the connection lives on */
    wt_on_connect_closed(s, WIRE_H3_REQUEST_CANCELLED);
    T_EQ(closes, 1);
    T_EQ(rejects, 0);
    T_CHECK(!in_list(s));
    wt_conn_collect(&qc); /* frees it (ASan: nothing left, nothing twice) */
    T_CHECK(LIST_EMPTY(&qc.wt.sessions));
    wt_conn_free(&qc);
}

/* the connection ending under a cancelled session that still waits for
 * its stream to close: freed with the connection, told nothing again */
T_TEST(cancelled_freed_with_connection)
{
    struct wt_session *s = connecting(0);

    wt_session_close(s, 0, "", 0);
    T_EQ(closes, 1);
    T_CHECK(in_list(s));
    wt_conn_free(&qc);
    T_EQ(closes, 1);
    T_EQ(rejects, 0);
}

/* an open client session still closes with its capsule and FIN */
T_TEST(close_open_sends_capsule)
{
    struct wt_session *s = connecting(4);

    req.status = 200;
    T_EQ(wt_on_response(s, 0), 0);
    T_EQ(opens, 1);
    T_EQ(s->open, 1);
    wt_session_close(s, 7, "x", 1);
    T_EQ(closes, 1);
    T_EQ(shut_calls, 0);
    T_CHECK(s->caps.end > 0);
    T_EQ(s->caps_fin, 1);
    wt_on_connect_closed(s, 0);
    wt_conn_collect(&qc);
    wt_conn_free(&qc);
}

int main(void)
{
    config_defaults(&cfg);
    ep.role = QUIC_CLIENT;
    ep.loop = ev_loop_new(EVFLAG_AUTO);
    if (!ep.loop)
        return 1;
    log_level = LOG_LVL_ERROR;
    T_RUN(close_connecting_cancels);
    T_RUN(cancelled_freed_with_connection);
    T_RUN(close_open_sends_capsule);
    ev_loop_destroy(ep.loop);
    T_DONE();
}
