/*
 * handler_echo: sends everything back on the same kind of channel.
 *
 * A bidi stream is echoed on itself, a peer uni stream on a uni stream we
 * open, a datagram as a datagram.  Echo never buffers past flow control:
 * received bytes are credited back (wt_stream_consume) only once their
 * echo has been acknowledged, so a client that does not read its echo
 * stalls its own sending, and the daemon holds at most one stream window
 * per stream.  A uni stream that ends before its echo is done (it may
 * still wait for a stream to be echoed on) is kept (wt_stream_keep): its
 * bytes keep holding the connection's credit, and its slot the session's
 * stream limit, until the echo is acknowledged or dropped.
 */
#include <stdlib.h>
#include <sys/queue.h>
#include <string.h>

#include "buf.h"
#include "handler.h"
#include "pool.h"
#include "wt.h"

struct echo_pair {
    struct wt_session *s;
    struct wt_stream *in, *out; /* the same stream for bidi */
    uint64_t received;          /* bytes that came on `in` */
    uint64_t consumed;          /* of them, credited back or released */
    struct buf held; /* uni: bytes waiting for `out` to open */
    int held_fin;
    int waiting;     /* for a stream slot to open `out` */
    int kept;        /* `in` ended; what it left is kept (wt_stream_keep) */
    int dropped;     /* aborted: nothing more is echoed */
    LIST_ENTRY(echo_pair) w_link;
};

/* one an echoed stream: kept for the next turn's (pool.h) */
static struct pool pairs = POOL_INIT(sizeof(struct echo_pair), 1024);

struct echo_session {
    LIST_HEAD(, echo_pair) waiting; /* uni echoes waiting for a stream */
};

static void waiting_remove(struct echo_pair *p)
{
    if (!p->waiting)
        return;
    LIST_REMOVE(p, w_link);
    p->waiting = 0;
}

/* Credit back what the echo no longer holds, up to `upto` bytes of the
 * input: to the input stream while it lasts, to the session once kept. */
static void credit(struct echo_pair *p, uint64_t upto)
{
    uint64_t n;

    if (upto > p->received)
        upto = p->received;
    if (upto <= p->consumed)
        return;
    n = upto - p->consumed;
    p->consumed = upto;
    if (p->in)
        wt_stream_consume(p->in, (size_t)n);
    else if (p->kept)
        wt_session_release(p->s, n, 0);
}

static void pair_free(struct echo_pair *p)
{
    if (p->kept)
        wt_session_release(p->s, p->received - p->consumed, 1);
    waiting_remove(p);
    buf_free(&p->held);
    pool_put(&pairs, p);
}

static int echo_session_open(struct wt_session *s)
{
    struct echo_session *es = calloc(1, sizeof(*es));

    if (!es)
        return -1;
    LIST_INIT(&es->waiting);
    s->hdata = es;
    return 0;
}

static void echo_session_close(struct wt_session *s, uint32_t code,
                               const char *reason, size_t reasonlen)
{
    struct echo_session *es = s->hdata;

    (void)code;
    (void)reason;
    (void)reasonlen;
    /* Pairs go with their streams' stream_close; one whose input already
     * ended while it waited for an output stream has no stream left (what
     * it kept, the session's end gives back). */
    while (!LIST_EMPTY(&es->waiting)) {
        struct echo_pair *p = LIST_FIRST(&es->waiting);

        waiting_remove(p);
        if (!p->in)
            pair_free(p);
    }
    free(es);
    s->hdata = NULL;
}

/* Echo bytes into `out`; when it can take no more (the peer stopped
 * reading), they are dropped and credited so the sender is not stuck. */
static void echo_write(struct echo_pair *p, const uint8_t *d, size_t n,
                       int fin)
{
    if (wt_stream_write(p->out, d, n, fin) < 0)
        credit(p, p->consumed + n);
}

static int open_out(struct wt_session *s, struct echo_pair *p)
{
    struct iovec iov[16];
    size_t k;

    p->out = wt_session_open_stream(s, 0);
    if (!p->out)
        return -1;
    p->out->hdata = p;
    while ((k = buf_peek(&p->held, iov, 16)) > 0) {
        for (size_t i = 0; i < k; i++) {
            buf_mark_sent(&p->held, iov[i].iov_len);
            echo_write(p, iov[i].iov_base, iov[i].iov_len,
                       p->held_fin && buf_unsent(&p->held) == 0);
        }
    }
    if (p->held_fin && p->held.end == 0)
        echo_write(p, NULL, 0, 1);
    buf_free(&p->held);
    return 0;
}

static void echo_stream_open(struct wt_stream *st)
{
    struct wt_session *s = wt_stream_session(st);
    struct echo_session *es = s->hdata;
    struct echo_pair *p;

    if (wt_stream_is_local(st))
        return;
    if (!(p = pool_get(&pairs))) {
        wt_stream_reset(st, 0);
        return;
    }
    memset(p, 0, sizeof(*p));
    buf_init(&p->held);
    p->s = s;
    p->in = st;
    st->hdata = p;
    if (wt_stream_is_bidi(st)) {
        p->out = st;
    } else if (open_out(s, p) < 0) {
        /* the peer's uni stream limit, or the session's: wait for a slot
         * (session_streams_available) */
        p->waiting = 1;
        LIST_INSERT_HEAD(&es->waiting, p, w_link);
    }
}

static void echo_streams_available(struct wt_session *s)
{
    struct echo_session *es = s->hdata;

    while (!LIST_EMPTY(&es->waiting)) {
        struct echo_pair *p = LIST_FIRST(&es->waiting);

        if (open_out(s, p) < 0)
            return;
        waiting_remove(p);
    }
}

static void echo_stream_data(struct wt_stream *st, const uint8_t *d, size_t n,
                             int fin)
{
    struct echo_pair *p = st->hdata;

    if (!p || st != p->in)
        return;
    p->received += n;
    if (p->out) {
        echo_write(p, d, n, fin);
        return;
    }
    /* uncredited, so bounded by the stream's flow-control window */
    if (buf_append(&p->held, d, n) < 0) {
        wt_stream_reset(st, 0);
        return;
    }
    p->held_fin |= fin;
}

static void echo_stream_writable(struct wt_stream *st)
{
    struct echo_pair *p = st->hdata;

    if (p && st == p->out)
        credit(p, wt_stream_acked(st));
}

/* The peer aborted one direction: abort the echo of it too. */
static void echo_stream_reset(struct wt_stream *st, uint32_t code)
{
    struct echo_pair *p = st->hdata;

    if (!p)
        return;
    p->dropped = 1;
    waiting_remove(p);
    if (p->out && p->out != st)
        wt_stream_reset(p->out, code);
    wt_stream_reset(st, code);
}

static void echo_stream_stop_sending(struct wt_stream *st, uint32_t code)
{
    struct echo_pair *p = st->hdata;

    if (!p)
        return;
    p->dropped = 1;
    if (p->in && p->in != st)
        wt_stream_reset(p->in, code);
    wt_stream_reset(st, code);
}

static void echo_stream_close(struct wt_stream *st)
{
    struct echo_pair *p = st->hdata;

    if (!p)
        return;
    st->hdata = NULL;
    if (p->in == st && p->out == st) { /* bidi */
        p->in = p->out = NULL;
    } else if (p->in == st) {
        p->in = NULL;
        /* a uni echo not yet done (waiting for its stream, or not yet
         * acknowledged) keeps what its input left */
        if (!p->dropped && (p->out || p->waiting)) {
            wt_stream_keep(st);
            p->kept = 1;
        }
    } else if (p->out == st) {
        p->out = NULL;
    }
    if (p->in || p->out || (p->waiting && !p->dropped))
        return;
    pair_free(p);
}

static void echo_datagram(struct wt_session *s, const uint8_t *d, size_t n)
{
    wt_session_send_datagram(s, d, n);
}

const struct wt_handler_ops handler_echo = {
    .name = "echo",
    .session_open = echo_session_open,
    .session_close = echo_session_close,
    .session_streams_available = echo_streams_available,
    .stream_open = echo_stream_open,
    .stream_data = echo_stream_data,
    .stream_reset = echo_stream_reset,
    .stream_stop_sending = echo_stream_stop_sending,
    .stream_writable = echo_stream_writable,
    .stream_close = echo_stream_close,
    .datagram = echo_datagram,
};
