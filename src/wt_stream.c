/*
 * wt_stream: WebTransport streams (see wt.h).  Owns the connection's write
 * queue of streams, a stream's life from creation to free, the
 * classification of new peer streams (WebTransport prefix, or HTTP/3 for
 * nghttp3) and their delivery to the handler, streams waiting for their
 * session, and the handler's stream calls.  Sessions are wt_session.c.
 */
#include "wt.h"

#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "h3.h"
#include "handler.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "quic.h"
#include "wire.h"
#include "wt_internal.h"

int wt_is_stream(const void *stream_user_data)
{
    return stream_user_data && !h3_is_stream(stream_user_data);
}

/* ---- write queue ---- */

static void wq_remove(struct wt_stream *st)
{
    if (!st->in_wq)
        return;
    TAILQ_REMOVE(&st->qc->wt.wq, st, wq_link);
    st->in_wq = 0;
}

static int has_output(const struct wt_stream *st)
{
    return !st->write_closed &&
           (buf_unsent(&st->out) > 0 || (st->fin_queued && !st->fin_sent));
}

static void wq_push(struct wt_stream *st)
{
    if (st->in_wq || st->blocked || st->fc_wait || !has_output(st))
        return;
    TAILQ_INSERT_TAIL(&st->qc->wt.wq, st, wq_link);
    st->in_wq = 1;
    quic_conn_want_write(st->qc);
}

/* Bytes of the stream's prefix not yet sent: they never count against
 * the session's credit (draft-16 §5.4). */
static uint64_t prefix_unsent(const struct wt_stream *st)
{
    return st->out.sent < st->out_prefix ? st->out_prefix - st->out.sent : 0;
}

/* How much of what is queued may go now: all of it, or the prefix and
 * the session's send credit (flow control).  0 with bytes queued: the
 * stream waits for WT_MAX_DATA (fc_wait). */
static uint64_t sendable(struct wt_stream *st)
{
    uint64_t unsent = buf_unsent(&st->out), pre = prefix_unsent(st), credit;

    if (!st->session || !st->session->fc.on || unsent == 0)
        return unsent;
    credit = wt_fc_tx_credit(st->session);
    return unsent - pre <= credit ? unsent : pre + credit;
}

struct wt_stream *wt_next_stream(struct quic_conn *qc)
{
    struct wt_stream *st;

    while ((st = TAILQ_FIRST(&qc->wt.wq))) {
        if (sendable(st) > 0 || buf_unsent(&st->out) == 0)
            return st; /* bytes within the credit, or only the FIN */
        /* out of session credit: off the queue until WT_MAX_DATA */
        wq_remove(st);
        st->fc_wait = 1;
        LIST_INSERT_HEAD(&st->session->fc_waiters, st, fc_link);
    }
    return NULL;
}

static void fc_unwait(struct wt_stream *st)
{
    if (!st->fc_wait)
        return;
    LIST_REMOVE(st, fc_link);
    st->fc_wait = 0;
}

void wt_stream_fc_wake(struct wt_stream *st)
{
    fc_unwait(st);
    wq_push(st);
}

size_t wt_stream_peek(struct wt_stream *st, ngtcp2_vec *vec, size_t nvec,
                      int *fin)
{
    size_t k = buf_peek(&st->out, (struct iovec *)vec, nvec);
    uint64_t total = 0, allowed = sendable(st);

    /* within the session's send credit: the vectors are cut there */
    for (size_t i = 0; i < k; i++) {
        if (total + vec[i].len >= allowed) {
            vec[i].len = (size_t)(allowed - total);
            total = allowed;
            k = vec[i].len ? i + 1 : i;
            break;
        }
        total += vec[i].len;
    }
    *fin = st->fin_queued && !st->fin_sent && total == buf_unsent(&st->out);
    return k;
}

void wt_stream_sent(struct wt_stream *st, size_t n, int fin_sent)
{
    uint64_t pre = prefix_unsent(st);

    if (st->session)
        wt_fc_sent(st->session, n > pre ? n - pre : 0);
    buf_mark_sent(&st->out, n);
    if (fin_sent)
        st->fin_sent = 1;
    /* Round robin: a bulk stream goes to the back after each packet. */
    wq_remove(st);
    wq_push(st);
}

void wt_stream_blocked(struct wt_stream *st)
{
    wq_remove(st);
    st->blocked = 1;
}

/* ngtcp2 1.11 has no callback for a received STOP_SENDING: it resets the
 * stream itself, and the first write after that fails with SHUT_WR.  This is
 * where the handler learns of it (the peer's code is not exposed: 0). */
void wt_stream_shut_wr(struct wt_stream *st)
{
    wq_remove(st);
    if (st->write_closed)
        return;
    st->write_closed = 1;
    if (st->state == WT_STRM_OPEN && ops_of(st->session)->stream_stop_sending) {
        log_debug("stream %" PRId64 ": the peer stopped reading it", st->id);
        ops_of(st->session)->stream_stop_sending(st, 0);
    }
}

/* ---- stream lifetime ---- */

static void stream_gc(struct wt_stream *st)
{
    if (st->in_gc)
        return;
    st->in_gc = 1;
    st->gc_next = st->qc->wt.gc_streams;
    st->qc->wt.gc_streams = st;
}

/* The session lost a stream: the handler may open one again, once it is
 * out of the callback that freed the slot (wt_conn_service). */
static void slot_freed(struct wt_session *s)
{
    s->slot_freed = 1;
    s->qc->wt.slot_freed = 1;
    quic_conn_want_write(s->qc);
}

void wt_session_slot_freed(struct wt_session *s)
{
    slot_freed(s);
}

/* The open session a stream was counted against (flow control), if any:
 * looked up, as a refused stream may outlive its session. */
static struct wt_session *fc_session(struct wt_stream *st)
{
    struct wt_session *s;

    if (!st->fc_counted)
        return NULL;
    s = st->session ? st->session
                    : wt_session_find(st->qc, (int64_t)st->session_id);
    return s && s->open && s->fc.on ? s : NULL;
}

static void pending_timer_arm(struct quic_conn *qc)
{
    struct wt_stream *st = TAILQ_FIRST(&qc->wt.pending);
    ev_tstamp due;

    ev_timer_stop(qc->ep->loop, &qc->wt.pending_timer);
    if (!st)
        return;
    due = st->pending_since +
          (ev_tstamp)cfg_of(qc)->pending_timeout_ms / 1000. -
          ev_now(qc->ep->loop);
    ev_timer_set(&qc->wt.pending_timer, due > 0 ? due : 0, 0.);
    ev_timer_start(qc->ep->loop, &qc->wt.pending_timer);
}

static void pending_add(struct quic_conn *qc, struct wt_stream *st)
{
    st->state = WT_STRM_PENDING;
    st->pending_since = ev_now(qc->ep->loop);
    TAILQ_INSERT_TAIL(&qc->wt.pending, st, p_link);
    if (qc->wt.npending++ == 0)
        pending_timer_arm(qc);
}

static void pending_remove(struct wt_stream *st)
{
    struct quic_conn *qc = st->qc;
    int first = st == TAILQ_FIRST(&qc->wt.pending);

    TAILQ_REMOVE(&qc->wt.pending, st, p_link);
    qc->wt.npending--;
    if (first)
        pending_timer_arm(qc);
}

/* Waited pending_timeout for a session that did not come. */
void wt_pending_expire_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct quic_conn *qc = w->data;
    struct wt_stream *st;
    ev_tstamp limit = (ev_tstamp)cfg_of(qc)->pending_timeout_ms / 1000.;

    (void)revents;
    while ((st = TAILQ_FIRST(&qc->wt.pending)) &&
           ev_now(loop) - st->pending_since >= limit - 0.001) {
        CLOG(debug, qc, "stream %lld: session %llu did not come within "
             "pending_timeout",
             (long long)st->id, (unsigned long long)st->session_id);
        wt_stream_abort(st, WIRE_WT_BUFFERED_STREAM_REJECTED);
    }
    pending_timer_arm(qc);
    wt_conn_collect(qc);
}

/*
 * The handler's view of the stream ends; the object waits for ngtcp2's
 * stream_close (or, once ngtcp2 is done with it, for the next collect).
 * Received bytes nobody will consume now still hold connection credit
 * (held while PENDING, prefix bytes while CLASSIFY, delivered and not yet
 * consumed): they are returned here, or a connection whose streams get
 * reset would slowly stall, unless the handler keeps them
 * (wt_stream_keep): then they are the session's until released.
 */
void wt_stream_detach(struct wt_stream *st)
{
    struct wt_session *s = st->session, *fs = fc_session(st);
    uint64_t body = st->rx_delivered - st->rx_consumed;
    uint64_t unconsumed = body + st->prefix_len;
    int kept = 0;

    st->rx_consumed = st->rx_delivered;
    st->prefix_len = 0;
    if (st->state == WT_STRM_PENDING)
        pending_remove(st);
    if (st->state == WT_STRM_OPEN && s) {
        if (ops_of(s)->stream_close)
            ops_of(s)->stream_close(st);
        LIST_REMOVE(st, s_link);
        s->nstreams--;
        if (st->local)
            s->nlocal--;
        if (st->kept && s->open) {
            s->kept_slots++;
            s->kept_bytes += unconsumed;
            unconsumed = 0;
            kept = 1;
        } else {
            slot_freed(s);
        }
    }
    /* the session's credit (flow control): what nobody will consume now
     * goes back, unless kept (then wt_session_release gives it), and a
     * peer stream's place in the stream count: the stream has ended, even
     * if the handler keeps its slot (max_streams_per_session counts that) */
    if (fs && fs->open) {
        if (!kept)
            wt_fc_consumed(fs, body);
        if (!st->local)
            wt_fc_stream_done(fs, st);
    }
    if (unconsumed)
        ngtcp2_conn_extend_max_offset(st->qc->conn, unconsumed);
    wq_remove(st);
    fc_unwait(st);
    st->session = NULL;
    st->state = WT_STRM_DETACHED;
    buf_free(&st->held);
}

/* Refuses a peer stream (or ends ours) with an HTTP/3-space error code. */
void wt_stream_abort(struct wt_stream *st, uint64_t h3code)
{
    wt_stream_detach(st);
    st->write_closed = 1;
    if (st->quic_closed) {
        stream_gc(st); /* no stream_close will come for it */
        return;
    }
    ngtcp2_conn_shutdown_stream(st->qc->conn, 0, st->id, h3code);
    quic_conn_want_write(st->qc);
}

/* one a request: kept for the next turn's (pool.h) */
static struct pool streams = POOL_INIT(sizeof(struct wt_stream), 1024);

static struct wt_stream *stream_new(struct quic_conn *qc)
{
    struct wt_stream *st = pool_get(&streams);

    if (!st)
        return NULL;
    memset(st, 0, sizeof(*st));
    st->qc = qc;
    buf_init(&st->out);
    buf_init(&st->held);
    LIST_INSERT_HEAD(&qc->wt.all, st, a_link);
    metrics.streams_open++;
    return st;
}

void wt_stream_free(struct wt_stream *st)
{
    LIST_REMOVE(st, a_link);
    buf_free(&st->out);
    buf_free(&st->held);
    pool_put(&streams, st);
    metrics.streams_open--;
}

/* ---- incoming streams ---- */

static void deliver(struct wt_stream *st, const uint8_t *p, size_t n, int fin)
{
    if (fin)
        st->fin_recv = 1;
    if (n == 0 && !fin)
        return;
    /* past the session's WT_MAX_DATA: the session is aborted, the stream
     * with it */
    st->fc_counted = st->session->fc.on;
    if (n && wt_fc_rx_data(st->session, n, 0) < 0)
        return;
    st->session->rx_bytes += n;
    metrics.stream_bytes_received += n;
    ops_of(st->session)->stream_data(st, p, n, fin);
}

static void session_add_stream(struct wt_session *s, struct wt_stream *st)
{
    s->streams_total++;
    metrics.streams_total++;
    st->session = s;
    st->state = WT_STRM_OPEN;
    LIST_INSERT_HEAD(&s->streams, st, s_link);
    s->nstreams++;
    if (st->local) {
        s->nlocal++;
        s->streams_local++;
    }
}

static void stream_open(struct wt_stream *st, struct wt_session *s)
{
    session_add_stream(s, st);
    if (ops_of(s)->stream_open)
        ops_of(s)->stream_open(st);
}

/* The peer's streams in use, open or kept by the handler, against the
 * limit. */
static int session_full(const struct wt_session *s)
{
    return s->nstreams - s->nlocal + s->kept_slots >=
           cfg_of(s->qc)->max_streams_per_session;
}

/* Hands a waiting stream to its session now open: what it held, its FIN,
 * and, when QUIC is already done with it, its end. */
static void adopt(struct wt_session *s, struct wt_stream *st)
{
    struct iovec iov[16];
    size_t k;

    pending_remove(st);
    if (wt_fc_rx_stream(s, st) < 0) {
        wt_stream_abort(st, WIRE_WT_SESSION_GONE);
        return;
    }
    if (session_full(s)) {
        CLOG(debug, s->qc, "stream %lld: max_streams_per_session reached",
             (long long)st->id);
        wt_stream_abort(st, WIRE_WT_BUFFERED_STREAM_REJECTED);
        return;
    }
    stream_open(st, s);
    /* Bytes held while waiting were never credited: the handler's
     * consume() returns that credit now. */
    while (st->state == WT_STRM_OPEN && buf_unsent(&st->held) > 0 &&
           (k = buf_peek(&st->held, iov, 16)) > 0) {
        for (size_t i = 0; i < k && st->state == WT_STRM_OPEN; i++) {
            int last = i + 1 == k && buf_unsent(&st->held) == iov[i].iov_len;

            buf_mark_sent(&st->held, iov[i].iov_len);
            deliver(st, iov[i].iov_base, iov[i].iov_len, last && st->fin_recv);
        }
    }
    if (st->state == WT_STRM_OPEN && st->fin_recv && st->held.end == 0)
        deliver(st, NULL, 0, 1);
    buf_free(&st->held);
    /* its QUIC stream closed while it waited: the stream ends here, as
     * stream_close would have ended it */
    if (st->quic_closed && st->state == WT_STRM_OPEN) {
        wt_stream_detach(st);
        stream_gc(st);
    }
}

void wt_adopt_pending(struct wt_session *s)
{
    struct wt_stream *st, *next;

    /* The handler, called from adopt(), can end only this session's
     * waiting streams, by ending the session: `next` is looked at only
     * while the session is open. */
    for (st = TAILQ_FIRST(&s->qc->wt.pending); st && s->open; st = next) {
        next = TAILQ_NEXT(st, p_link);
        if (st->session_id == (uint64_t)s->id)
            adopt(s, st);
    }
}

/* Streams waiting for session `id` will never get it. */
void wt_pending_refuse(struct quic_conn *qc, uint64_t id)
{
    struct wt_stream *st, *next;

    for (st = TAILQ_FIRST(&qc->wt.pending); st; st = next) {
        next = TAILQ_NEXT(st, p_link);
        if (st->session_id == id)
            wt_stream_abort(st, WIRE_WT_SESSION_GONE);
    }
}

static int session_gone(const struct quic_conn *qc, uint64_t id)
{
    size_t n = qc->wt.ngone < WT_GONE_RING ? qc->wt.ngone : WT_GONE_RING;

    for (size_t i = 0; i < n; i++)
        if (qc->wt.gone[i] == id)
            return 1;
    return 0;
}

/* The prefix named a session: attach, hold, or refuse. */
static void stream_attach(struct quic_conn *qc, struct wt_stream *st,
                          const uint8_t *p, size_t n, int fin)
{
    const struct config *cfg = cfg_of(qc);
    struct wt_session *s = wt_session_find(qc, (int64_t)st->session_id);

    /* received past the prefix: credited when consumed, or at detach
     * (whatever refuses the stream below) */
    st->rx_delivered += n;
    /* draft-02 §4.2: a session id is a client-initiated bidi stream */
    if ((st->session_id & 3) != 0) {
        CLOG(debug, qc, "stream %lld: %llu is no session id",
             (long long)st->id, (unsigned long long)st->session_id);
        wt_stream_abort(st, WIRE_H3_ID_ERROR);
        return;
    }
    if (s && s->open) {
        /* a peer stream past WT_MAX_STREAMS aborts its session; this one
         * goes with it */
        if (!st->local && wt_fc_rx_stream(s, st) < 0) {
            wt_stream_abort(st, WIRE_WT_SESSION_GONE);
            return;
        }
        if (session_full(s)) {
            CLOG(debug, qc, "stream %lld: max_streams_per_session reached",
                 (long long)st->id);
            wt_stream_abort(st, WIRE_WT_BUFFERED_STREAM_REJECTED);
            return;
        }
        stream_open(st, s);
        if (st->state == WT_STRM_OPEN)
            deliver(st, p, n, fin);
        return;
    }
    if ((s && !s->connecting) || session_gone(qc, st->session_id) ||
        h3_request_refused(qc, (int64_t)st->session_id)) {
        CLOG(debug, qc, "stream %lld: session %llu is gone", (long long)st->id,
             (unsigned long long)st->session_id);
        wt_stream_abort(st, WIRE_WT_SESSION_GONE);
        return;
    }
    /* draft-07 §4.5: a stream may arrive before its CONNECT; hold it,
     * bounded in number and time.  Its data is not credited, so flow
     * control bounds its bytes. */
    if (qc->wt.npending >= cfg->max_pending_streams) {
        CLOG(debug, qc, "stream %lld: too many streams waiting for sessions",
             (long long)st->id);
        wt_stream_abort(st, WIRE_WT_BUFFERED_STREAM_REJECTED);
        return;
    }
    pending_add(qc, st);
    if (n && buf_append(&st->held, p, n) < 0)
        wt_stream_abort(st, WIRE_H3_INTERNAL_ERROR); /* credits the n bytes */
    else
        st->fin_recv = fin;
}

static int classify(struct quic_conn *qc, struct wt_stream *st,
                    const uint8_t *p, size_t n, int fin)
{
    size_t old = st->prefix_len, take = sizeof(st->prefix) - old, used;
    enum wire_stream_kind kind;
    uint64_t sid, first;
    ssize_t r;

    if (take > n)
        take = n;
    memcpy(st->prefix + old, p, take);
    /* what the prefix buffer holds is credited when the stream ends
     * (wt_stream_detach), whatever ends it */
    st->prefix_len = (uint8_t)(old + take);
    r = wire_stream_prefix_decode(st->prefix, old + take, st->bidi, &kind,
                                  &sid, &first);
    if (r == WIRE_ERR_SHORT) {
        if (fin) /* ended inside its first varints: nothing to do */
            wt_stream_abort(st, WIRE_H3_GENERAL_PROTOCOL_ERROR);
        return 0;
    }
    if (r < 0) {
        CLOG(debug, qc, "stream %lld: malformed WebTransport prefix",
             (long long)st->id);
        ngtcp2_conn_extend_max_offset(qc->conn, n - take);
        wt_stream_abort(st, WIRE_H3_ID_ERROR);
        return 0;
    }
    if (kind == WIRE_STREAM_OTHER) {
        uint8_t saved[16];
        int64_t id = st->id;

        /* Not ours: nghttp3 gets every byte, the buffered ones first.  The
         * object was never linked anywhere, so it goes at once. */
        memcpy(saved, st->prefix, old);
        h3_adopt_stream(qc, id, first);
        wt_stream_free(st);
        if (old && h3_read_stream(qc, id, saved, old, 0) < 0)
            return -1;
        return h3_read_stream(qc, id, p, n, fin);
    }
    (void)first;
    st->session_id = sid;
    st->prefix_len = 0;
    st->hdr_len = (uint8_t)r;
    used = (size_t)r - old;
    /* The prefix is ours to consume. */
    ngtcp2_conn_extend_max_stream_offset(qc->conn, st->id, (size_t)r);
    ngtcp2_conn_extend_max_offset(qc->conn, (size_t)r);
    stream_attach(qc, st, p + used, n - used, fin);
    return 0;
}

int wt_on_stream_data(struct quic_conn *qc, int64_t id, struct wt_stream *st,
                      const uint8_t *p, size_t n, int fin)
{
    if (!st) {
        if (ngtcp2_conn_is_local_stream(qc->conn, id))
            return 0; /* our QPACK/control streams receive nothing */
        st = stream_new(qc);
        if (!st)
            return -1;
        st->id = id;
        st->bidi = ngtcp2_is_bidi_stream(id);
        st->state = WT_STRM_CLASSIFY;
        ngtcp2_conn_set_stream_user_data(qc->conn, id, st);
    }
    switch (st->state) {
    case WT_STRM_CLASSIFY:
        return classify(qc, st, p, n, fin);
    case WT_STRM_PENDING:
        st->rx_delivered += n;
        if (n && buf_append(&st->held, p, n) < 0) {
            wt_stream_abort(st, WIRE_H3_INTERNAL_ERROR);
            return 0;
        }
        st->fin_recv |= fin;
        return 0;
    case WT_STRM_OPEN:
        st->rx_delivered += n;
        deliver(st, p, n, fin);
        return 0;
    case WT_STRM_DETACHED: {
        struct wt_session *fs = fc_session(st);

        /* Nobody reads it any more: the credit goes straight back (the
         * session's too: the peer counted these bytes). */
        ngtcp2_conn_extend_max_offset(qc->conn, n);
        st->rx_detached += n;
        if (fs)
            wt_fc_rx_data(fs, n, 1);
        return 0;
    }
    }
    return 0;
}

void wt_on_stream_close(struct quic_conn *qc, struct wt_stream *st,
                        uint64_t code)
{
    (void)code;
    ngtcp2_conn_set_stream_user_data(qc->conn, st->id, NULL);
    st->quic_closed = 1;
    /* A stream that arrived whole before its session (ngtcp2 closes a
     * complete peer uni stream at once) waits on: its bytes are the
     * session's when it opens (draft-07 §4.5), or are dropped when it is
     * refused or times out. */
    if (st->state == WT_STRM_PENDING && st->fin_recv)
        return;
    wt_stream_detach(st);
    stream_gc(st);
}

static uint32_t app_code(uint64_t h3code)
{
    uint32_t c = 0;

    return wire_wt_error_from_h3(h3code, &c) == 0 ? c : 0;
}

/*
 * §5.4: a stream the peer reset counts toward its session's data with its
 * final size, not with what arrived: the peer counted every byte it sent,
 * and the rest will never come, so it is consumed at once (the credit
 * goes back).  Past WT_MAX_DATA that is the peer's violation like any.
 */
static void count_final_size(struct wt_stream *st, uint64_t final_size)
{
    struct wt_session *fs;
    uint64_t body, got = st->rx_delivered + st->rx_detached;

    if ((st->state != WT_STRM_OPEN && st->state != WT_STRM_DETACHED) ||
        final_size < st->hdr_len || !(fs = fc_session(st)))
        return;
    body = final_size - st->hdr_len;
    if (body > got) {
        st->rx_detached += body - got;
        wt_fc_rx_data(fs, body - got, 1);
    }
}

void wt_on_stream_reset(struct quic_conn *qc, struct wt_stream *st,
                        uint64_t code, uint64_t final_size)
{
    (void)qc;
    count_final_size(st, final_size);
    if (st->state == WT_STRM_OPEN) {
        if (ops_of(st->session)->stream_reset)
            ops_of(st->session)->stream_reset(st, app_code(code));
    } else if (st->state != WT_STRM_DETACHED) {
        wt_stream_abort(st, WIRE_H3_REQUEST_CANCELLED);
    }
}

void wt_on_acked(struct quic_conn *qc, struct wt_stream *st, uint64_t n)
{
    (void)qc;
    buf_ack(&st->out, n);
    if (st->state == WT_STRM_OPEN && ops_of(st->session)->stream_writable)
        ops_of(st->session)->stream_writable(st);
}

void wt_on_extend_max_stream_data(struct quic_conn *qc, struct wt_stream *st)
{
    (void)qc;
    st->blocked = 0;
    wq_push(st);
}

/* The peer's MAX_STREAMS: every session may open streams again. */
void wt_on_streams_available(struct quic_conn *qc)
{
    struct wt_session *s;

    LIST_FOREACH(s, &qc->wt.sessions, link)
        if (s->open)
            slot_freed(s);
}

void wt_conn_service(struct quic_conn *qc)
{
    struct wt_session *s;

    if (!qc->wt.slot_freed)
        return;
    qc->wt.slot_freed = 0;
    /* a handler may close sessions here, never unlink them */
    LIST_FOREACH(s, &qc->wt.sessions, link) {
        if (!s->slot_freed)
            continue;
        s->slot_freed = 0;
        if (s->open && ops_of(s)->session_streams_available)
            ops_of(s)->session_streams_available(s);
    }
}

/* ---- handler API: streams ---- */

/* Whether n more bytes may be queued on the stream (within
 * max_buffer_bytes of unacknowledged data). */
static int writable(const struct wt_stream *st, size_t n)
{
    return st->state == WT_STRM_OPEN && !st->write_closed &&
           !st->fin_queued && (st->bidi || st->local) &&
           buf_unacked(&st->out) + n <=
               cfg_of(st->qc)->max_buffer_bytes + st->out_prefix;
}

size_t wt_stream_room(const struct wt_stream *st)
{
    uint64_t cap = cfg_of(st->qc)->max_buffer_bytes + st->out_prefix;

    if (!writable(st, 0) || buf_unacked(&st->out) >= cap)
        return 0;
    return (size_t)(cap - buf_unacked(&st->out));
}

static void queued(struct wt_stream *st, size_t n, int fin)
{
    st->session->tx_bytes += n;
    metrics.stream_bytes_sent += n;
    if (fin)
        st->fin_queued = 1;
    wq_push(st);
}

int wt_stream_write(struct wt_stream *st, const uint8_t *p, size_t n, int fin)
{
    if (!writable(st, n) || (n && buf_append(&st->out, p, n) < 0))
        return -1;
    queued(st, n, fin);
    return 0;
}

int wt_stream_write_shared(struct wt_stream *st, struct buf_shared *b,
                           size_t off, size_t n, int fin)
{
    if (!writable(st, n) || buf_append_shared(&st->out, b, off, n) < 0)
        return -1;
    queued(st, n, fin);
    return 0;
}

void wt_stream_consume(struct wt_stream *st, size_t n)
{
    /* Once detached, wt_stream_detach() has returned the credit already. */
    if (n == 0 || st->state != WT_STRM_OPEN)
        return;
    if (n > st->rx_delivered - st->rx_consumed)
        n = (size_t)(st->rx_delivered - st->rx_consumed);
    st->rx_consumed += n;
    if (!st->quic_closed)
        ngtcp2_conn_extend_max_stream_offset(st->qc->conn, st->id, n);
    ngtcp2_conn_extend_max_offset(st->qc->conn, n);
    wt_fc_consumed(st->session, n);
    quic_conn_want_write(st->qc);
}

uint64_t wt_stream_acked(const struct wt_stream *st)
{
    return st->out.acked > st->out_prefix ? st->out.acked - st->out_prefix : 0;
}

void wt_stream_reset(struct wt_stream *st, uint32_t code)
{
    if (st->state != WT_STRM_OPEN)
        return;
    wt_stream_abort(st, wire_wt_error_to_h3(code));
}

void wt_stream_keep(struct wt_stream *st)
{
    if (st->state == WT_STRM_OPEN && st->session && st->session->open)
        st->kept = 1;
}

void wt_session_release(struct wt_session *s, uint64_t n, int slot)
{
    if (!s->open)
        return; /* its end gave everything back */
    if (n > s->kept_bytes)
        n = s->kept_bytes;
    if (n) {
        s->kept_bytes -= n;
        ngtcp2_conn_extend_max_offset(s->qc->conn, n);
        wt_fc_consumed(s, n);
        quic_conn_want_write(s->qc);
    }
    if (slot && s->kept_slots) {
        s->kept_slots--;
        slot_freed(s);
    }
}

struct wt_stream *wt_session_open_stream(struct wt_session *s, int bidi)
{
    struct quic_conn *qc = s->qc;
    struct wt_stream *st;
    uint8_t pre[16];
    ssize_t n;
    int rv;

    /* ours have a limit of their own, as large, and the peer's
     * WT_MAX_STREAMS (flow control: session_streams_available when it
     * grows) */
    if (!s->open || s->nlocal >= cfg_of(qc)->max_streams_per_session ||
        !wt_fc_may_open(s, bidi))
        return NULL;
    st = stream_new(qc);
    if (!st)
        return NULL;
    st->bidi = bidi ? 1 : 0;
    st->local = 1;
    st->session_id = (uint64_t)s->id;
    rv = bidi ? ngtcp2_conn_open_bidi_stream(qc->conn, &st->id, st)
              : ngtcp2_conn_open_uni_stream(qc->conn, &st->id, st);
    if (rv != 0) {
        wt_stream_free(st);
        return NULL; /* NGTCP2_ERR_STREAM_ID_BLOCKED: wait for credit */
    }
    n = wire_stream_prefix_encode(pre, sizeof(pre), bidi, s->stream_prefix_id);
    if (n < 0 || buf_append(&st->out, pre, (size_t)n) < 0) {
        ngtcp2_conn_shutdown_stream(qc->conn, 0, st->id,
                                    WIRE_H3_INTERNAL_ERROR);
        ngtcp2_conn_set_stream_user_data(qc->conn, st->id, NULL);
        wt_stream_free(st);
        return NULL;
    }
    st->out_prefix = (uint8_t)n;
    wt_fc_opened(s, bidi);
    /* linked without stream_open: the handler asked for it */
    session_add_stream(s, st);
    wq_push(st);
    return st;
}
