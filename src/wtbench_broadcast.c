/*
 * wtbench_broadcast: --mode broadcast, a room on a broadcast route
 * (handler_broadcast.c).  The -c x -s members join the room the URL names;
 * once every one is in, the first --senders send -n messages each (a
 * datagram, a uni stream or a bidi stream), and every member checks what
 * reaches it of the others' messages.
 *
 * A message says who sent it and when: sender index (u32), sequence (u32),
 * send time (u64 ns, quic_now(): every member lives in this process, on
 * one clock), little-endian, then the pattern from an offset that
 * (sender, sequence) names.  Receivers verify every byte (streams as they
 * arrive, datagrams whole), count deliveries per (receiver, sender) and
 * duplicates, and take the latency to the message's last byte.  With
 * --tagged every relayed message starts with the sender's member id (a
 * QUIC varint: tag = yes), stripped here and checked to be one id per
 * sender.
 *
 * --stall members join as well but never read: relayed streams are left
 * unconsumed and kept past their end (no flow-control credit comes back,
 * as from a browser tab whose page stopped reading), datagrams are
 * ignored.  How the daemon dealt with them (copies reset, sessions closed)
 * is reported apart; they count in no delivery figure.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"
#include "wtbench.h"

#define HDR 16                  /* sender, sequence, send time */
/* Once every message is out (streams: acknowledged by the relay, so the
 * daemon has them whole), the run ends when nothing has arrived for this
 * long: datagrams lost stay lost; a stream copy can wait out a few
 * retransmission timeouts under load. */
#define QUIET_DGRAM_NS 1000000000ULL
#define QUIET_STREAM_NS 5000000000ULL
#define MAX_SEEN_BITS (1ULL << 34) /* the duplicate bitmap: 2 GiB at most */

struct member {
    struct bsess *bs;
    unsigned idx;
    int stall, gone;
    /* as a sender */
    uint64_t started; /* streams opened (datagrams: = sent) */
    uint64_t sent;    /* messages handed over whole (FIN written, queued) */
    uint64_t acked;   /* bidi: FINs back from the relay */
    unsigned inflight; /* streams not yet closed */
    int finished;     /* counted in X.senders_done */
    /* as a stalled member */
    uint64_t st_streams, st_whole, st_bytes, st_resets, st_dgrams;
    uint32_t st_reset_code, st_close_code;
    int st_closed;
};

/* A relayed stream reaching a member: checked as its bytes arrive. */
struct rx {
    struct member *to;
    uint8_t head[8 + HDR]; /* tag varint + header, as they arrive */
    size_t hlen, need, taglen;
    int tag_known, hdr_done, bad, fin, reset;
    uint32_t sender, seq, seed;
    uint64_t t, tag;
    uint64_t body; /* message bytes verified so far (header included) */
};

/* A message a sender sends on a stream of its own. */
struct tx {
    struct member *from;
    struct wt_stream *st;
    uint8_t hdr[HDR];
    uint32_t seed;
    uint64_t off; /* bytes written */
    int back;     /* bidi: the relay's FIN came */
};

static struct {
    struct member *m; /* the measured members, then the stalled ones */
    unsigned nm, nall, k;
    uint8_t *seen;    /* one bit per (receiver, sender, sequence) */
    uint32_t *count;  /* deliveries per (receiver, sender) */
    uint64_t *tags;   /* per sender: its member id as first seen, 0: none */
    uint64_t t_send, t_last, t_done, t_progress;
    uint64_t sent, deliveries, duplicates, corrupt, copies_reset, acks;
    uint64_t tag_mismatch;
    uint64_t max_gap;        /* the longest wait between two deliveries */
    uint64_t win_t, win_n;   /* the current one-second window */
    double peak_rate;        /* deliveries/s in the best window */
    uint32_t reset_code;
    unsigned senders_done;
    double cpu0, cpu1, self0, self1;
    long rss_joined, rss_peak;
    int peak_reset, sending, done;
    char first_bad[200];
    ev_timer pace;
    ev_timer settle_w; /* --settle: from every member in to the start */
    int settling;
    ev_check top;
} X;

/* ---- the message ---- */

static uint32_t seed_of(uint32_t sender, uint32_t seq)
{
    /* the same in tests/bench/ws/common.js */
    return (uint32_t)(sender * 2654435761u + seq * 40503u + 7u) % PATTERN;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* Bytes [off, off + n) of the message with this seed (off >= HDR) are
 * what arrived? */
static int body_ok(uint32_t seed, uint64_t off, const uint8_t *p, size_t n)
{
    size_t pos = (size_t)((seed + off) % PATTERN);

    while (n) {
        size_t k = n < PATTERN ? n : PATTERN;

        if (memcmp(p, B.pattern + pos, k) != 0)
            return 0;
        p += k;
        n -= k;
        pos = (pos + k) % PATTERN;
    }
    return 1;
}

static void bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void bad(const char *fmt, ...)
{
    va_list ap;

    X.corrupt++;
    if (X.first_bad[0])
        return;
    va_start(ap, fmt);
    vsnprintf(X.first_bad, sizeof(X.first_bad), fmt, ap);
    va_end(ap);
}

static uint64_t total_expected(void)
{
    return (uint64_t)X.k * B.requests * (X.nm - 1);
}

/* ---- receiving ---- */

static void deliver(struct member *to, uint32_t sender, uint32_t seq,
                    uint64_t t, uint64_t tag)
{
    uint64_t bit = ((uint64_t)to->idx * X.k + sender) * B.requests + seq;
    uint64_t now = bench_now();

    X.t_progress = now;
    if (X.seen[bit >> 3] & (1u << (bit & 7))) {
        X.duplicates++;
        if (!X.first_bad[0])
            snprintf(X.first_bad, sizeof(X.first_bad),
                     "member %u got message %u of sender %u twice", to->idx,
                     seq, sender);
        return;
    }
    X.seen[bit >> 3] |= (uint8_t)(1u << (bit & 7));
    X.count[(size_t)to->idx * X.k + sender]++;
    X.deliveries++;
    if (now - (X.t_last ? X.t_last : X.t_send) > X.max_gap)
        X.max_gap = now - (X.t_last ? X.t_last : X.t_send);
    X.t_last = now;
    bench_lat_add(now - t);
    if (B.tagged) {
        if (!X.tags[sender])
            X.tags[sender] = tag;
        else if (X.tags[sender] != tag)
            X.tag_mismatch++;
    }
    if (X.deliveries + X.copies_reset >= total_expected())
        bench_check_end();
}

/* The tag and header of a message are in: who sent it, is it plausible. */
static int head_parse(struct member *to, const uint8_t *p, size_t taglen,
                      struct rx *r)
{
    const uint8_t *h = p + taglen;

    r->tag = 0;
    if (taglen && (wire_varint_decode(p, taglen, &r->tag) != (ssize_t)taglen ||
                   r->tag == 0)) {
        bad("member %u: a message starts with a bad member id", to->idx);
        return -1;
    }
    r->sender = get32(h);
    r->seq = get32(h + 4);
    r->t = get64(h + 8);
    if (r->sender >= X.k || r->seq >= B.requests ||
        r->seq >= X.m[r->sender].started || r->t < X.t_send ||
        r->t > bench_now()) {
        bad("member %u: a message names sender %u, message %u, time %llu: "
            "not one that was sent",
            to->idx, r->sender, r->seq, (unsigned long long)r->t);
        return -1;
    }
    if (r->sender == to->idx) {
        bad("member %u got its own message back (echo_self is on?)", to->idx);
        return -1;
    }
    r->seed = seed_of(r->sender, r->seq);
    return 0;
}

static void rx_feed(struct rx *r, const uint8_t *p, size_t n)
{
    while (n && !r->bad) {
        if (!r->hdr_done) {
            size_t k = r->need - r->hlen;

            if (k > n)
                k = n;
            memcpy(r->head + r->hlen, p, k);
            r->hlen += k;
            p += k;
            n -= k;
            if (r->hlen < r->need)
                return;
            if (B.tagged && !r->tag_known) {
                /* RFC 9000 §16: the first two bits give the length */
                r->taglen = (size_t)1 << (r->head[0] >> 6);
                r->tag_known = 1;
                r->need = r->taglen + HDR;
                continue;
            }
            if (head_parse(r->to, r->head, r->taglen, r) < 0) {
                r->bad = 1;
                return;
            }
            r->hdr_done = 1;
            r->body = HDR;
            continue;
        }
        if (r->body + n > B.size) {
            bad("member %u: message %u of sender %u is longer than %llu "
                "bytes",
                r->to->idx, r->seq, r->sender, (unsigned long long)B.size);
            r->bad = 1;
            return;
        }
        if (!body_ok(r->seed, r->body, p, n)) {
            bad("member %u: message %u of sender %u differs near byte %llu",
                r->to->idx, r->seq, r->sender, (unsigned long long)r->body);
            r->bad = 1;
            return;
        }
        r->body += n;
        return;
    }
}

static void rx_end(struct rx *r)
{
    if (r->bad)
        return;
    if (!r->hdr_done || r->body != B.size) {
        bad("member %u: a relayed stream ended after %llu bytes of %llu",
            r->to->idx,
            (unsigned long long)(r->hdr_done ? r->body : r->hlen),
            (unsigned long long)B.size);
        return;
    }
    deliver(r->to, r->sender, r->seq, r->t, r->tag);
}

static void h_datagram(struct wt_session *s, const uint8_t *p, size_t n)
{
    struct bsess *bs = s->hdata;
    struct member *to = &X.m[bs->idx];
    struct rx r = {.to = to};
    uint64_t tag = 0;
    ssize_t off = 0;

    if (to->stall) {
        to->st_dgrams++; /* a stalled tab: nobody looks */
        return;
    }
    X.t_progress = bench_now();
    if (B.tagged && (off = wire_varint_decode(p, n, &tag)) < 0) {
        bad("member %u: a datagram without a member id", to->idx);
        return;
    }
    if (n - (size_t)off != B.size) {
        bad("member %u: a datagram of %zu bytes, not %llu", to->idx,
            n - (size_t)off, (unsigned long long)B.size);
        return;
    }
    if (head_parse(to, p, (size_t)off, &r) < 0)
        return;
    if (!body_ok(r.seed, HDR, p + off + HDR, (size_t)B.size - HDR)) {
        bad("member %u: datagram %u of sender %u differs", to->idx, r.seq,
            r.sender);
        return;
    }
    deliver(to, r.sender, r.seq, r.t, r.tag);
}

/* ---- sending ---- */

static uint64_t due(void)
{
    uint64_t d;

    if (B.rate == 0)
        return B.requests;
    d = 1 + (uint64_t)((double)(bench_now() - X.t_send) / 1e9 *
                       (double)B.rate);
    return d < B.requests ? d : B.requests;
}

/* A sender is done when its messages are out: datagrams queued, streams
 * closed (every byte acknowledged), or its session gone. */
static void sender_check_done(struct member *m)
{
    if (m->finished ||
        (!m->gone && (m->sent < B.requests ||
                      (B.kind != K_DGRAM && m->inflight > 0))))
        return;
    m->finished = 1;
    X.senders_done++;
}

static void tx_pump(struct tx *t)
{
    struct member *m = t->from;
    uint64_t max = wt_session_max_buffer(m->bs->s);

    while (t->off < B.size) {
        uint64_t queued = t->off - wt_stream_acked(t->st);
        uint64_t n = B.size - t->off;
        const uint8_t *p;
        int fin;

        if (queued >= max)
            return; /* stream_writable brings us back */
        if (n > max - queued)
            n = max - queued;
        if (t->off < HDR) {
            p = t->hdr + t->off;
            if (n > HDR - t->off)
                n = HDR - t->off;
        } else {
            p = B.pattern + (t->seed + t->off) % PATTERN;
            if (n > PATTERN)
                n = PATTERN;
        }
        fin = t->off + n == B.size;
        if (wt_stream_write(t->st, p, (size_t)n, fin) < 0) {
            bench_error("member %u: stream write refused", m->idx);
            wt_stream_reset(t->st, 0);
            return;
        }
        t->off += n;
        if (fin) {
            m->sent++;
            X.sent++;
            X.t_progress = bench_now();
            sender_check_done(m);
        }
    }
}

static int tx_start(struct member *m)
{
    struct wt_stream *st = wt_session_open_stream(m->bs->s, B.kind == K_BIDI);
    struct tx *t;
    uint32_t seq;

    if (!st)
        return -1; /* session_streams_available calls again */
    if (!(t = calloc(1, sizeof(*t)))) {
        wt_stream_reset(st, 0);
        return -1;
    }
    seq = (uint32_t)m->started++;
    t->from = m;
    t->st = st;
    t->seed = seed_of(m->idx, seq);
    put32(t->hdr, m->idx);
    put32(t->hdr + 4, seq);
    put64(t->hdr + 8, bench_now());
    st->hdata = t;
    m->inflight++;
    tx_pump(t);
    return 0;
}

static void send_dgram(struct member *m)
{
    uint8_t buf[2048];
    uint32_t seq = (uint32_t)m->started;

    put32(buf, m->idx);
    put32(buf + 4, seq);
    put64(buf + 8, bench_now());
    memcpy(buf + HDR, B.pattern + (seed_of(m->idx, seq) + HDR) % PATTERN,
           (size_t)B.size - HDR);
    if (wt_session_send_datagram(m->bs->s, buf, (size_t)B.size) < 0)
        return; /* not sent: tried again later */
    m->started++;
    m->sent++;
    X.sent++;
    sender_check_done(m);
}

/* What this sender may send now, it sends. */
static void fill(struct member *m)
{
    uint64_t d;

    if (m->finished || m->gone || !m->bs->open || !X.sending || X.done ||
        B.stopping)
        return;
    d = due();
    if (B.kind == K_DGRAM) {
        /* keep the session's datagram queue full, no fuller */
        while (m->started < d && m->bs->s->ndgrams < B.cfg.max_datagram_queue) {
            uint64_t before = m->sent;

            send_dgram(m);
            if (m->sent == before)
                break;
        }
        return;
    }
    while (m->started < d && m->inflight < B.streams)
        if (tx_start(m) < 0)
            return;
}

static void fill_all(void)
{
    for (unsigned i = 0; i < X.k; i++)
        fill(&X.m[i]);
}

static void pace_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    fill_all();
}

/* As fast as allowed, datagrams: top the queues up after every turn of
 * the loop (whatever woke it: acknowledgements make room). */
static void top_cb(struct ev_loop *loop, ev_check *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    fill_all();
}

/* ---- sessions and streams ---- */

static void finish(void);

/* Every member is in the room: the senders start. */
static void all_joined(void)
{
    B.t_all_open = bench_now();
    if (B.sess_failed) {
        bench_error("%u of %u members could not join", B.sess_failed,
                    X.nall);
        bench_stop();
        return;
    }
    X.rss_joined = bench_server_status_kb("VmRSS");
    X.peak_reset = bench_server_reset_peak() == 0;
    X.cpu0 = bench_server_cpu_s();
    X.self0 = bench_self_cpu_s();
    X.t_send = X.t_progress = bench_now();
    X.sending = 1;
    if (X.k == 0 || B.requests == 0) {
        finish(); /* idle members: only the memory figures */
        return;
    }
    if (B.rate) {
        double every = 1.0 / (double)B.rate;

        ev_timer_init(&X.pace, pace_cb, 0., every < 0.001 ? every : 0.001);
        ev_timer_start(B.loop, &X.pace);
    } else if (B.kind == K_DGRAM) {
        ev_check_init(&X.top, top_cb);
        ev_check_start(B.loop, &X.top);
    }
    fill_all();
}

static int h_session_open(struct wt_session *s)
{
    struct bsess *bs = s->hdata;

    X.m[bs->idx].bs = bs;
    bs->open = 1;
    B.sess_open++;
    if (!B.t_first_open)
        B.t_first_open = bench_now();
    bench_check_end();
    return 0;
}

static void h_session_rejected(struct wt_session *s, int status,
                               const char *why)
{
    struct bsess *bs = s->hdata;

    X.m[bs->idx].bs = bs;
    bs->s = NULL;
    B.sess_failed++;
    bench_error("member %u: session rejected: %d %s", bs->idx, status, why);
    bench_check_end();
}

static void h_session_close(struct wt_session *s, uint32_t code,
                            const char *reason, size_t reasonlen)
{
    struct bsess *bs = s->hdata;
    struct member *m = &X.m[bs->idx];

    if (m->stall) {
        if (!m->st_closed && bs->open) {
            m->st_closed = 1;
            m->st_close_code = code;
        }
    } else if (bs->open && !B.stopping) {
        bench_error("member %u: session closed by the server: 0x%x %.*s",
                    bs->idx, code, (int)reasonlen, reason ? reason : "");
    }
    bs->open = 0;
    bs->s = NULL;
    m->gone = 1;
    if (bs->idx < X.k)
        sender_check_done(m);
    bench_check_end();
}

static void h_streams_available(struct wt_session *s)
{
    struct bsess *bs = s->hdata;

    if (bs->idx < X.k)
        fill(&X.m[bs->idx]);
}

static void h_stream_open(struct wt_stream *st)
{
    struct bsess *bs = wt_stream_session(st)->hdata;
    struct member *to = &X.m[bs->idx];
    struct rx *r;

    if (wt_stream_is_local(st) || !(r = calloc(1, sizeof(*r))))
        return; /* not ours: consumed unchecked (h_stream_data) */
    r->to = to;
    r->need = B.tagged ? 1 : HDR;
    st->hdata = r;
    if (to->stall)
        to->st_streams++;
}

static void h_stream_data(struct wt_stream *st, const uint8_t *p, size_t n,
                          int fin)
{
    if (wt_stream_is_local(st)) {
        struct tx *t = st->hdata;

        if (n)
            bench_error("member %u: the relay sent data on a message stream",
                        t ? t->from->idx : 0);
        wt_stream_consume(st, n);
        if (fin && t && !t->back) {
            t->back = 1;
            t->from->acked++;
            X.acks++;
            X.t_progress = bench_now();
        }
        return;
    }
    struct rx *r = st->hdata;

    if (!r) {
        wt_stream_consume(st, n);
        return;
    }
    if (r->to->stall) {
        /* never read: no consume, so no credit goes back */
        r->to->st_bytes += n;
        r->fin |= fin;
        return;
    }
    if (n) {
        X.t_progress = bench_now();
        rx_feed(r, p, n);
    }
    wt_stream_consume(st, n);
    if (fin) {
        r->fin = 1;
        rx_end(r);
    }
}

static void h_stream_reset(struct wt_stream *st, uint32_t code)
{
    if (wt_stream_is_local(st)) {
        if (!B.stopping)
            bench_error("a message stream was reset by the server (0x%x)",
                        code);
        return;
    }
    struct rx *r = st->hdata;

    if (!r || r->fin || r->reset)
        return;
    r->reset = 1;
    if (r->to->stall) {
        if (!r->to->st_resets++)
            r->to->st_reset_code = code;
        return;
    }
    if (!X.copies_reset++)
        X.reset_code = code;
    X.t_progress = bench_now();
    bench_check_end();
}

static void h_stream_writable(struct wt_stream *st)
{
    struct tx *t = st->hdata;

    if (wt_stream_is_local(st) && t && t->off < B.size)
        tx_pump(t);
}

static void h_stream_close(struct wt_stream *st)
{
    if (wt_stream_is_local(st)) {
        struct tx *t = st->hdata;

        if (!t)
            return;
        st->hdata = NULL;
        if (B.kind == K_BIDI && !t->back && !B.stopping)
            bench_error("member %u: a bidi message ended without the "
                        "relay's FIN",
                        t->from->idx);
        t->from->inflight--;
        sender_check_done(t->from);
        fill(t->from);
        free(t);
        bench_check_end();
        return;
    }
    struct rx *r = st->hdata;

    if (!r)
        return;
    st->hdata = NULL;
    /* a stalled tab keeps what arrived whole, unread, holding its
     * flow-control credit; a reset copy is gone, its bytes with it */
    if (r->to->stall && r->fin && !r->reset) {
        r->to->st_whole++;
        wt_stream_keep(st);
    }
    free(r);
}

const struct wt_handler_ops bc_ops = {
    .name = "wtbench-broadcast",
    .session_open = h_session_open,
    .session_rejected = h_session_rejected,
    .session_close = h_session_close,
    .session_streams_available = h_streams_available,
    .stream_open = h_stream_open,
    .stream_data = h_stream_data,
    .stream_reset = h_stream_reset,
    .stream_stop_sending = h_stream_reset,
    .stream_writable = h_stream_writable,
    .stream_close = h_stream_close,
    .datagram = h_datagram,
};

/* ---- the run ---- */

static void figures(void)
{
    if (X.t_done)
        return;
    X.t_done = bench_now();
    X.cpu1 = bench_server_cpu_s();
    X.self1 = bench_self_cpu_s();
    X.rss_peak = bench_server_status_kb("VmHWM");
}

static void finish(void)
{
    if (X.done)
        return;
    X.done = 1;
    figures();
    ev_timer_stop(B.loop, &X.pace);
    ev_check_stop(B.loop, &X.top);
    if (B.hold > 0) {
        /* end_cb reads the RSS after */
        ev_timer_set(&B.holdw, B.hold, 0.);
        ev_timer_start(B.loop, &B.holdw);
        return;
    }
    B.rss_after = bench_server_status_kb("VmRSS");
    bench_stop();
}

/* --settle: members on other daemons hear a room once their daemon's
 * subscription to it is in place (a Redis round trip after its first
 * member joined); messages sent before that do not reach them. */
static void settle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    if (!B.stopping && !X.done)
        all_joined();
}

void bc_check_end(void)
{
    unsigned open = 0;
    int quiet;

    if (B.stopping || X.done)
        return;
    if (!X.sending) {
        if (B.sess_open + B.sess_failed >= X.nall && !X.settling) {
            X.settling = 1;
            if (B.settle > 0) {
                ev_timer_init(&X.settle_w, settle_cb, B.settle, 0.);
                ev_timer_start(B.loop, &X.settle_w);
            } else {
                all_joined();
            }
        }
        return;
    }
    for (unsigned i = 0; i < X.nm && !open; i++)
        open = X.m[i].bs && X.m[i].bs->open;
    if (!open) {
        finish(); /* no measured member left */
        return;
    }
    if (X.senders_done < X.k)
        return;
    quiet = bench_now() - X.t_progress >
            (B.kind == K_DGRAM ? QUIET_DGRAM_NS : QUIET_STREAM_NS);
    if ((X.deliveries + X.copies_reset >= total_expected() &&
         (B.kind != K_BIDI || X.acks >= X.sent)) ||
        quiet)
        finish();
}

void bc_deadline(void)
{
    if (X.done)
        return; /* holding the sessions */
    if (!X.sending)
        bench_error("--duration reached before every member joined");
    else if (X.senders_done < X.k)
        bench_error("--duration reached before every message was sent");
    else if (B.kind == K_BIDI && X.acks < X.sent && !X.done)
        bench_error("--duration reached before every bidi message was "
                    "acknowledged");
    figures();
}

void bc_progress(double t)
{
    uint64_t now = bench_now();

    /* deliveries/s in one-second windows while messages flow */
    if (X.sending && !X.done && X.k) {
        if (X.win_t && now > X.win_t) {
            double r = (double)(X.deliveries - X.win_n) /
                       bench_secs(now - X.win_t);

            if (r > X.peak_rate)
                X.peak_rate = r;
        }
        X.win_t = now;
        X.win_n = X.deliveries;
    }
    fprintf(stderr, "[%5.1fs] %u/%u members joined, %llu/%llu sent, "
                    "%llu deliveries\n",
            t, B.sess_open, X.nall, (unsigned long long)X.sent,
            (unsigned long long)X.k * B.requests,
            (unsigned long long)X.deliveries);
}

int bc_setup(char *err, size_t errlen)
{
    uint64_t bits;

    X.nm = B.conns * B.sessions;
    X.nall = X.nm + B.stall;
    X.k = B.senders;
    if (X.k > X.nm) {
        snprintf(err, errlen, "--senders %u: there are only %u members", X.k,
                 X.nm);
        return -1;
    }
    if (X.nm < 2) {
        snprintf(err, errlen, "a room needs at least 2 members (-c x -s)");
        return -1;
    }
    if (B.size < HDR + 8) {
        snprintf(err, errlen, "--size: at least %d bytes", HDR + 8);
        return -1;
    }
    if (B.kind == K_DGRAM && B.size > 1100) {
        snprintf(err, errlen, "--size: a datagram message fits one packet "
                              "(at most 1100 bytes)");
        return -1;
    }
    if (B.requests > UINT32_MAX) {
        snprintf(err, errlen, "-n: at most %u messages per sender",
                 UINT32_MAX);
        return -1;
    }
    bits = (uint64_t)X.nm * X.k * B.requests;
    if (bits > MAX_SEEN_BITS) {
        snprintf(err, errlen, "members x senders x messages is too large "
                              "to track (at most 2^34)");
        return -1;
    }
    /* calloc'd: pages nobody touches cost nothing */
    X.seen = calloc((size_t)(bits / 8 + 1), 1);
    X.count = calloc((size_t)X.nm * (X.k ? X.k : 1), sizeof(*X.count));
    X.tags = calloc(X.k ? X.k : 1, sizeof(*X.tags));
    X.m = calloc(X.nall, sizeof(*X.m));
    if (!X.seen || !X.count || !X.tags || !X.m) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (unsigned i = 0; i < X.nall; i++) {
        X.m[i].idx = i;
        X.m[i].stall = i >= X.nm;
    }
    X.rss_joined = X.rss_peak = -1;
    X.cpu0 = X.cpu1 = -1;
    return 0;
}

void bc_free(void)
{
    free(X.seen);
    free(X.count);
    free(X.tags);
    free(X.m);
}

/* ---- report ---- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/* "ok", "none" (untagged, or nothing arrived) or what is wrong. */
static const char *tags_verdict(void)
{
    uint64_t *t;
    size_t n = 0;
    int dup = 0;

    if (!B.tagged)
        return "none";
    if (X.tag_mismatch)
        return "differ-per-message";
    if (!(t = malloc((X.k ? X.k : 1) * sizeof(*t))))
        return "?";
    for (unsigned i = 0; i < X.k; i++)
        if (X.tags[i])
            t[n++] = X.tags[i];
    qsort(t, n, sizeof(*t), cmp_u64);
    for (size_t i = 1; i < n; i++)
        dup |= t[i] == t[i - 1];
    free(t);
    return dup ? "shared-by-senders" : n ? "ok" : "none";
}

static void json_str(char *s)
{
    for (; *s; s++)
        if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20)
            *s = '\'';
}

/* What the report says, worked out once. */
struct summary {
    uint64_t expected;
    double el, ratio, rate, peak, setup, cpu, self;
    double rmin, rmax, smin, smax; /* fairness: shares of what was due */
    unsigned st_closed;
    uint64_t st_resets, st_streams, st_whole, st_bytes, st_dgrams;
    uint32_t st_close_code, st_reset_code;
    char err[256];
};

static void share(double q, double *min, double *max)
{
    *min = q < *min ? q : *min;
    *max = q > *max ? q : *max;
}

static void summarize(struct summary *f)
{
    uint64_t t_end = X.t_last ? X.t_last : X.t_done ? X.t_done : B.t_end;

    memset(f, 0, sizeof(*f));
    f->expected = X.sent * (X.nm - 1);
    f->el = X.t_send && t_end > X.t_send ? bench_secs(t_end - X.t_send) : 0;
    f->ratio = f->expected ? (double)X.deliveries / (double)f->expected : 1;
    f->rate = f->el > 0 ? (double)X.deliveries / f->el : 0;
    /* a run shorter than a window: its average is its best second */
    f->peak = X.peak_rate > f->rate ? X.peak_rate : f->rate;
    f->setup = bench_secs((B.t_all_open ? B.t_all_open : B.t_end) -
                          B.t_start);
    f->cpu = X.cpu0 >= 0 && X.cpu1 >= 0 ? X.cpu1 - X.cpu0 : -1;
    f->self = X.self0 >= 0 && X.self1 >= X.self0 ? X.self1 - X.self0 : -1;
    f->rmin = f->smin = 1;
    /* each receiver's share of what the others sent, each sender's share
     * of what it should have reached */
    for (unsigned r = 0; r < X.nm && X.k; r++) {
        uint64_t got = 0, want = 0;

        for (unsigned s = 0; s < X.k; s++) {
            if (s == r)
                continue;
            got += X.count[(size_t)r * X.k + s];
            want += X.m[s].sent;
        }
        if (want)
            share((double)got / (double)want, &f->rmin, &f->rmax);
    }
    for (unsigned s = 0; s < X.k; s++) {
        uint64_t got = 0, want = X.m[s].sent * (X.nm - 1);

        for (unsigned r = 0; r < X.nm; r++)
            got += X.count[(size_t)r * X.k + s];
        if (want)
            share((double)got / (double)want, &f->smin, &f->smax);
    }
    if (f->rmax < f->rmin)
        f->rmin = f->rmax = 0;
    if (f->smax < f->smin)
        f->smin = f->smax = 0;
    for (unsigned i = X.nm; i < X.nall; i++) {
        struct member *m = &X.m[i];

        if (m->st_closed && !f->st_closed++)
            f->st_close_code = m->st_close_code;
        if (m->st_resets && !f->st_resets)
            f->st_reset_code = m->st_reset_code;
        f->st_resets += m->st_resets;
        f->st_streams += m->st_streams;
        f->st_whole += m->st_whole;
        f->st_bytes += m->st_bytes;
        f->st_dgrams += m->st_dgrams;
    }
    snprintf(f->err, sizeof(f->err), "%s",
             B.first_error[0] ? B.first_error : X.first_bad);
    json_str(f->err);
}

static void report_json(const struct summary *f)
{
    static const char *kinds[] = {"dgram", "stream", "bidi"};

    printf("{\"mode\":\"broadcast\",\"kind\":\"%s\",\"members\":%u,"
           "\"senders\":%u,\"size\":%llu,\"messages_per_sender\":%llu,"
           "\"rate\":%llu,\"conns\":%u,\"sessions_per_conn\":%u,"
           "\"sessions_open\":%u,\"sessions_failed\":%u,\"setup_s\":%.3f,",
           kinds[B.kind], X.nm, X.k, (unsigned long long)B.size,
           (unsigned long long)B.requests, (unsigned long long)B.rate, B.conns,
           B.sessions, B.sess_open, B.sess_failed, f->setup);
    printf("\"messages_sent\":%llu,\"deliveries_expected\":%llu,"
           "\"deliveries\":%llu,\"ratio\":%.6f,\"duplicates\":%llu,"
           "\"corrupt\":%llu,\"copies_reset\":%llu,\"reset_code\":\"0x%x\","
           "\"acks\":%llu,",
           (unsigned long long)X.sent, (unsigned long long)f->expected,
           (unsigned long long)X.deliveries, f->ratio,
           (unsigned long long)X.duplicates, (unsigned long long)X.corrupt,
           (unsigned long long)X.copies_reset, X.reset_code,
           (unsigned long long)X.acks);
    printf("\"elapsed_s\":%.6f,\"deliveries_per_s\":%.1f,"
           "\"deliveries_per_s_peak\":%.1f,\"longest_pause_ms\":%.1f,"
           "\"receiver_ratio_min\":%.6f,\"receiver_ratio_max\":%.6f,"
           "\"sender_ratio_min\":%.6f,\"sender_ratio_max\":%.6f,"
           "\"tags\":\"%s\",",
           f->el, f->rate, f->peak, (double)X.max_gap / 1e6, f->rmin, f->rmax,
           f->smin, f->smax, tags_verdict());
    printf("\"lat_us\":{\"n\":%llu,\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,"
           "\"max\":%.1f},",
           (unsigned long long)B.nlat_seen, bench_pct(50), bench_pct(90),
           bench_pct(99), bench_pct(100));
    printf("\"stalled\":{\"members\":%u,\"closed\":%u,\"close_code\":\"0x%x\","
           "\"copies_reset\":%llu,\"reset_code\":\"0x%x\",\"streams\":%llu,"
           "\"streams_whole\":%llu,\"streams_due\":%llu,"
           "\"bytes_unread\":%llu,\"dgrams_ignored\":%llu},",
           B.stall, f->st_closed, f->st_close_code,
           (unsigned long long)f->st_resets, f->st_reset_code,
           (unsigned long long)f->st_streams, (unsigned long long)f->st_whole,
           (unsigned long long)(B.kind == K_DGRAM ? 0 : X.sent * B.stall),
           (unsigned long long)f->st_bytes, (unsigned long long)f->st_dgrams);
    printf("\"server_rss_kb_before\":%ld,\"server_rss_kb_joined\":%ld,"
           "\"server_rss_kb_peak\":%ld,\"server_rss_kb_after\":%ld,"
           "\"server_peak_reset\":%s,\"server_cpu_s\":%.2f,"
           "\"client_cpu_s\":%.2f,\"errors\":%llu,\"first_error\":\"%s\"}\n",
           B.rss_before, X.rss_joined, X.rss_peak, B.rss_after,
           X.peak_reset ? "true" : "false", f->cpu, f->self,
           (unsigned long long)(B.errors + X.tag_mismatch), f->err);
}

static void report_text(const struct summary *f)
{
    static const char *kinds[] = {"datagrams", "uni streams", "bidi streams"};

    printf("mode            broadcast: %s of %llu B%s\n", kinds[B.kind],
           (unsigned long long)B.size, B.tagged ? ", tagged" : "");
    printf("members         %u (%u conns x %u; %u open, %u failed), %u "
           "sending %llu each",
           X.nm, B.conns, B.sessions, B.sess_open, B.sess_failed, X.k,
           (unsigned long long)B.requests);
    if (B.rate)
        printf(" at %llu/s", (unsigned long long)B.rate);
    printf("\nset-up          %.3f s until every member had joined\n",
           f->setup);
    printf("messages        %llu sent, %llu deliveries expected\n",
           (unsigned long long)X.sent, (unsigned long long)f->expected);
    printf("deliveries      %llu (ratio %.6f), %llu duplicates, %llu "
           "corrupt, %llu copies reset",
           (unsigned long long)X.deliveries, f->ratio,
           (unsigned long long)X.duplicates, (unsigned long long)X.corrupt,
           (unsigned long long)X.copies_reset);
    if (X.copies_reset)
        printf(" (0x%x)", X.reset_code);
    printf("\n");
    if (B.kind == K_BIDI)
        printf("acknowledged    %llu bidi messages (the relay's FIN)\n",
               (unsigned long long)X.acks);
    printf("rate            %.0f deliveries/s over %.3f s (best second "
           "%.0f/s); longest pause %.1f ms\n",
           f->rate, f->el, f->peak, (double)X.max_gap / 1e6);
    printf("fairness        per receiver %.4f..%.4f, per sender %.4f..%.4f "
           "of what was due; tags %s\n",
           f->rmin, f->rmax, f->smin, f->smax, tags_verdict());
    if (B.nlat)
        printf("latency (us)    p50 %.0f  p90 %.0f  p99 %.0f  max %.0f  "
               "(%llu samples)\n",
               bench_pct(50), bench_pct(90), bench_pct(99), bench_pct(100),
               (unsigned long long)B.nlat_seen);
    if (B.stall)
        printf("stalled         %u: %u closed by the server (0x%x); %llu "
               "streams seen (%llu whole, of %llu), %llu reset (0x%x); %llu "
               "bytes unread, %llu datagrams ignored\n",
               B.stall, f->st_closed, f->st_close_code,
               (unsigned long long)f->st_streams,
               (unsigned long long)f->st_whole,
               (unsigned long long)(B.kind == K_DGRAM ? 0
                                                      : X.sent * B.stall),
               (unsigned long long)f->st_resets, f->st_reset_code,
               (unsigned long long)f->st_bytes,
               (unsigned long long)f->st_dgrams);
    if (B.server_pid > 0)
        printf("server          RSS %ld kB before, %ld joined, %ld peak%s, "
               "%ld after; CPU %.2f s while sending (wtbench %.2f s)\n",
               B.rss_before, X.rss_joined, X.rss_peak,
               X.peak_reset ? "" : " (of its life)", B.rss_after, f->cpu,
               f->self);
    printf("errors          %llu%s%s\n",
           (unsigned long long)(B.errors + X.tag_mismatch),
           f->err[0] ? ": " : "", f->err);
}

void bc_report(void)
{
    struct summary f;

    summarize(&f);
    bench_lat_sort();
    if (B.json)
        report_json(&f);
    else
        report_text(&f);
}

int bc_status(void)
{
    struct summary f;

    summarize(&f);
    if (B.errors || X.corrupt || X.duplicates || X.tag_mismatch ||
        B.sess_open == 0)
        return 1;
    if (B.min_ratio > 0 && f.ratio < B.min_ratio)
        return 1;
    return 0;
}
