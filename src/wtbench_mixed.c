/*
 * wtbench --mode mixed: the soak.  Every session keeps -m streams in
 * flight on an echo route, a mix of bidi and uni streams of sizes from
 * 1 byte to --size (log-uniform, so most are small and some large), and
 * sends --rate datagrams a second; every byte that comes back is compared
 * with what was sent.  It runs for --duration, then stops starting work
 * and gives what is in flight --drain seconds to finish: a stream still
 * open then is stuck.  A session that ends before the run does is lost.
 * With --server-pid, the server's RSS and open descriptors are sampled at
 * the start, after --warmup and at the end, both times with every
 * session open and no stream in flight (new streams wait for the sample
 * at the warm-up; at the end, the drain is done): what the daemon holds
 * then is what it kept, not the echo buffers of the moment, which swing
 * its RSS by +-8 MB with 100 sessions.
 *
 * The echo route answers a uni stream on a uni stream of its own, in no
 * promised order, so a uni stream starts with a 16-byte header naming
 * its session, number and length: the echo says which stream it is.
 * A datagram carries the same (16 bytes) and a pattern derived from it.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "quic.h"
#include "wtbench.h"

#define HDR 16
#define DG_MAX 1016
#define STREAM_MAGIC 0x584d5457u /* "WTMX" */
#define DGRAM_MAGIC 0x584d4744u  /* "DGMX" */

struct mstream;
LIST_HEAD(mstream_list, mstream);

struct msess {
    struct bsess *bs;
    uint64_t rng;
    uint32_t next_num;
    unsigned active;  /* streams whose echo is not complete */
    uint64_t opened;  /* when the session opened (ns) */
    uint64_t dg_sent; /* datagrams */
    struct mstream_list waiting; /* uni streams whose echo has not begun */
    int lost;
};

struct mstream {
    struct msess *ms;
    int bidi;
    int refs; /* our stream, the waiting list, the echo */
    int done; /* echo complete (or failed): no longer active */
    uint32_t num, seed;
    uint64_t total, sent;
    uint64_t back; /* bidi: echoed bytes verified */
    uint8_t hdr[HDR];
    struct wt_stream *st; /* ours, while it lasts */
    LIST_ENTRY(mstream) w_link;
    int waiting;
};

/* A server-opened (echo) uni stream. */
struct mecho {
    struct msess *ms;
    struct mstream *m; /* once its header named it */
    uint8_t hdr[HDR];
    size_t hn;
    uint64_t back;
    int bad;
};

static struct {
    struct msess *s;
    unsigned n;
    int draining;
    int pausing; /* at the warm-up: no new stream until the sample */
    int held;    /* the end's sample is taken */
    uint64_t streams_bidi, streams_uni, bytes_verified, stream_bytes_sent;
    uint64_t dgrams_sent, dgrams_back, dgrams_corrupt, dgrams_dropped;
    uint64_t lost, resets, stuck;
    char lost_why[200];
    long rss[3], fds[3]; /* start, warm-up, end */
    long hwm; /* the server's peak RSS, at the end */
    double cpu[3];
    double warm_at, pause_s;
    uint64_t pause_t;
    ev_timer warmw, dgw, drainw;
} X;

static void put(struct mstream *m)
{
    if (--m->refs == 0)
        free(m);
}

static uint32_t rnd32(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(*s >> 33);
}

static long server_fds(void)
{
    char path[64];
    struct dirent *d;
    long n = 0;
    DIR *dir;

    if (B.server_pid <= 0)
        return -1;
    snprintf(path, sizeof(path), "/proc/%ld/fd", B.server_pid);
    if (!(dir = opendir(path)))
        return -1;
    while ((d = readdir(dir)))
        if (d->d_name[0] != '.')
            n++;
    closedir(dir);
    return n;
}

static void sample(int i)
{
    X.rss[i] = bench_server_status_kb("VmRSS");
    X.fds[i] = server_fds();
    X.cpu[i] = bench_server_cpu_s();
    X.hwm = bench_server_status_kb("VmHWM");
}

/* Compares n received bytes at `pos`; 0, or -1 at the first difference. */
static int verify(const struct mstream *m, const uint8_t *p, size_t n,
                  uint64_t pos)
{
    size_t i = 0;

    for (; i < n && pos + i < HDR && !m->bidi; i++)
        if (p[i] != m->hdr[pos + i])
            return -1;
    while (i < n) {
        size_t off = (m->seed + pos + i) % PATTERN;
        size_t k = n - i < PATTERN ? n - i : PATTERN;

        if (memcmp(p + i, B.pattern + off, k) != 0)
            return -1;
        i += k;
    }
    return 0;
}

static void mpump(struct mstream *m)
{
    uint64_t max = wt_session_max_buffer(m->ms->bs->s);

    while (m->st && m->sent < m->total) {
        uint64_t queued = m->sent - wt_stream_acked(m->st);
        uint64_t n = m->total - m->sent;
        const uint8_t *p;

        if (queued >= max)
            return;
        if (n > max - queued)
            n = max - queued;
        if (!m->bidi && m->sent < HDR) {
            p = m->hdr + m->sent;
            if (n > HDR - m->sent)
                n = HDR - m->sent;
        } else {
            p = B.pattern + (m->seed + m->sent) % PATTERN;
            if (n > PATTERN)
                n = PATTERN;
        }
        if (wt_stream_write(m->st, p, (size_t)n, m->sent + n == m->total) < 0) {
            bench_error("stream %lld: write refused", (long long)m->st->id);
            return;
        }
        m->sent += n;
        X.stream_bytes_sent += n;
    }
}

/* A size from 1 byte to --size, about log-uniform: a power of two below
 * it picked uniformly, then a uniform size from there to the next. */
static uint64_t pick_size(struct msess *ms)
{
    unsigned bits = 0, k;
    uint64_t lo, v;

    while (bits < 40 && (2ull << bits) <= B.size)
        bits++;
    k = rnd32(&ms->rng) % (bits + 1);
    lo = 1ull << k;
    v = lo + ((uint64_t)rnd32(&ms->rng) * lo >> 32);
    return v > B.size ? B.size : v;
}

static void finish(struct mstream *m)
{
    if (m->done)
        return;
    m->done = 1;
    if (m->ms->active)
        m->ms->active--;
}

static void mfill(struct msess *ms);

static int start(struct msess *ms)
{
    int bidi = rnd32(&ms->rng) % 10 < 7; /* 70 % bidi */
    struct wt_stream *st = wt_session_open_stream(ms->bs->s, bidi);
    struct mstream *m;
    uint32_t v;

    if (!st)
        return -1; /* session_streams_available calls again */
    if (!(m = calloc(1, sizeof(*m)))) {
        wt_stream_reset(st, 0);
        return -1;
    }
    m->ms = ms;
    m->bidi = bidi;
    m->st = st;
    m->num = ms->next_num++;
    m->total = pick_size(ms);
    if (!bidi && m->total < HDR)
        m->total = HDR;
    m->seed = (uint32_t)(((uint64_t)m->num * 2654435761u +
                          (uint64_t)ms->bs->idx * 40503u) % PATTERN);
    m->refs = 1;
    v = STREAM_MAGIC;
    memcpy(m->hdr, &v, 4);
    v = ms->bs->idx;
    memcpy(m->hdr + 4, &v, 4);
    memcpy(m->hdr + 8, &m->num, 4);
    v = (uint32_t)m->total;
    memcpy(m->hdr + 12, &v, 4);
    if (!bidi) {
        m->refs++;
        m->waiting = 1;
        LIST_INSERT_HEAD(&ms->waiting, m, w_link);
    }
    st->hdata = m;
    ms->active++;
    mpump(m);
    return 0;
}

static void mfill(struct msess *ms)
{
    if (!ms->bs || !ms->bs->open || X.draining || X.pausing || B.stopping)
        return;
    while (ms->active < B.streams)
        if (start(ms) < 0)
            return;
}

/* ---- handler (client role) ---- */

static int x_session_open(struct wt_session *s)
{
    struct bsess *bs = s->hdata;
    struct msess *ms = &X.s[bs->idx];

    ms->bs = bs;
    ms->opened = bench_now();
    bs->open = 1;
    B.sess_open++;
    if (!B.t_first_open)
        B.t_first_open = ms->opened;
    if (B.sess_open + B.sess_failed == B.conns * B.sessions)
        B.t_all_open = bench_now();
    mfill(ms);
    return 0;
}

static void x_session_close(struct wt_session *s, uint32_t code,
                            const char *reason, size_t reasonlen)
{
    struct bsess *bs = s->hdata;
    struct msess *ms = &X.s[bs->idx];

    if (bs->open && !B.stopping) {
        ms->lost = 1;
        X.lost++;
        if (!X.lost_why[0])
            snprintf(X.lost_why, sizeof(X.lost_why),
                     "session %u: %s (code %u %.*s)", bs->idx,
                     wt_session_aborted(s) ? "aborted" : "closed by the server",
                     code, (int)(reasonlen > 100 ? 100 : reasonlen),
                     reason ? reason : "");
        bench_error("session lost: %s", X.lost_why);
    }
    while (!LIST_EMPTY(&ms->waiting)) {
        struct mstream *m = LIST_FIRST(&ms->waiting);

        LIST_REMOVE(m, w_link);
        m->waiting = 0;
        put(m);
    }
    ms->active = 0;
    bs->open = 0;
    bs->s = NULL;
    bench_check_end();
}

static void x_streams_available(struct wt_session *s)
{
    struct bsess *bs = s->hdata;

    mfill(&X.s[bs->idx]);
}

static void x_stream_open(struct wt_stream *st)
{
    struct bsess *bs = wt_stream_session(st)->hdata;
    struct mecho *e;

    if (wt_stream_is_local(st))
        return;
    if (wt_stream_is_bidi(st) || !(e = calloc(1, sizeof(*e)))) {
        bench_error("stream %lld: an unexpected stream from the server",
                    (long long)st->id);
        wt_stream_reset(st, 0);
        return;
    }
    e->ms = &X.s[bs->idx];
    st->hdata = e;
}

static void mismatch(const char *what, long long id, uint64_t at)
{
    B.mismatches++;
    bench_error("stream %lld: %s near byte %llu", id, what,
                (unsigned long long)at);
}

/* An echo uni stream: the header names the stream it echoes. */
static void echo_data(struct wt_stream *st, struct mecho *e, const uint8_t *p,
                      size_t n, int fin)
{
    size_t k = 0;

    wt_stream_consume(st, n);
    if (e->bad)
        return;
    if (!e->m) {
        struct mstream *m;
        uint32_t magic, idx, num;

        k = HDR - e->hn < n ? HDR - e->hn : n;
        memcpy(e->hdr + e->hn, p, k);
        e->hn += k;
        if (e->hn < HDR) {
            if (fin) {
                e->bad = 1;
                mismatch("echo shorter than its header", st->id, e->hn);
            }
            return;
        }
        memcpy(&magic, e->hdr, 4);
        memcpy(&idx, e->hdr + 4, 4);
        memcpy(&num, e->hdr + 8, 4);
        LIST_FOREACH(m, &e->ms->waiting, w_link)
            if (m->num == num)
                break;
        if (magic != STREAM_MAGIC || idx != e->ms->bs->idx || !m ||
            memcmp(m->hdr, e->hdr, HDR) != 0) {
            e->bad = 1;
            mismatch("echo names no stream of ours", st->id, 0);
            return;
        }
        LIST_REMOVE(m, w_link);
        m->waiting = 0; /* the list's reference is the echo's now */
        e->m = m;
        e->back = HDR;
    }
    if (n > k && verify(e->m, p + k, n - k, e->back) < 0) {
        e->bad = 1;
        mismatch("uni echo differs", st->id, e->back);
        finish(e->m);
        return;
    }
    e->back += n - k;
    X.bytes_verified += n - k;
    if (!fin)
        return;
    if (e->back != e->m->total) {
        e->bad = 1;
        mismatch("uni echo of another length", st->id, e->back);
    } else {
        X.streams_uni++;
        X.bytes_verified += HDR;
        B.streams_done++;
    }
    finish(e->m);
    mfill(e->ms);
    bench_check_end();
}

static void x_stream_data(struct wt_stream *st, const uint8_t *p, size_t n,
                          int fin)
{
    struct mstream *m;

    if (!st->hdata) {
        wt_stream_consume(st, n);
        return;
    }
    if (!wt_stream_is_local(st)) {
        echo_data(st, st->hdata, p, n, fin);
        return;
    }
    m = st->hdata;
    wt_stream_consume(st, n);
    if (!m->bidi || m->done)
        return;
    if (n && verify(m, p, n, m->back) < 0) {
        mismatch("bidi echo differs", st->id, m->back);
        finish(m);
        return;
    }
    m->back += n;
    X.bytes_verified += n;
    if (!fin)
        return;
    if (m->back != m->total) {
        mismatch("bidi echo of another length", st->id, m->back);
    } else {
        X.streams_bidi++;
        B.streams_done++;
    }
    finish(m);
    mfill(m->ms);
    bench_check_end();
}

static void x_stream_reset(struct wt_stream *st, uint32_t code)
{
    if (!st->hdata || B.stopping)
        return;
    X.resets++;
    bench_error("stream %lld reset by the server (%u)", (long long)st->id,
                code);
}

static void x_stream_writable(struct wt_stream *st)
{
    if (st->hdata && wt_stream_is_local(st))
        mpump(st->hdata);
}

static void x_stream_close(struct wt_stream *st)
{
    void *h = st->hdata;

    if (!h)
        return;
    st->hdata = NULL;
    if (!wt_stream_is_local(st)) {
        struct mecho *e = h;

        if (e->m) /* ended without its FIN: stays active, stuck */
            put(e->m);
        free(e);
        return;
    }
    {
        struct mstream *m = h;

        /* a bidi stream that ends before its echo did stays active:
         * stuck, at the end */
        m->st = NULL;
        mfill(m->ms);
        put(m);
    }
    bench_check_end();
}

static void x_datagram(struct wt_session *s, const uint8_t *p, size_t n)
{
    struct bsess *bs = s->hdata;
    uint32_t magic, idx, seq, len;

    if (n < HDR) {
        X.dgrams_corrupt++;
        return;
    }
    memcpy(&magic, p, 4);
    memcpy(&idx, p + 4, 4);
    memcpy(&seq, p + 8, 4);
    memcpy(&len, p + 12, 4);
    if (magic != DGRAM_MAGIC || idx != bs->idx || len != n ||
        seq >= X.s[idx].dg_sent ||
        memcmp(p + HDR,
               B.pattern + ((uint64_t)idx * 7919 + (uint64_t)seq * 131) % PATTERN,
               n - HDR) != 0) {
        X.dgrams_corrupt++;
        bench_error("datagram of %zu bytes differs from what was sent", n);
        return;
    }
    X.dgrams_back++;
}

const struct wt_handler_ops mx_ops = {
    .name = "wtbench-mixed",
    .session_open = x_session_open,
    .session_rejected = bench_session_rejected,
    .session_close = x_session_close,
    .session_streams_available = x_streams_available,
    .stream_open = x_stream_open,
    .stream_data = x_stream_data,
    .stream_reset = x_stream_reset,
    .stream_stop_sending = x_stream_reset,
    .stream_writable = x_stream_writable,
    .stream_close = x_stream_close,
    .datagram = x_datagram,
};

/* ---- timers ---- */

/* --rate datagrams a second per session, from its opening. */
static void dg_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    uint64_t now = bench_now();
    uint8_t buf[DG_MAX];

    (void)loop;
    (void)w;
    (void)revents;
    if (X.draining || B.stopping)
        return;
    for (unsigned i = 0; i < X.n; i++) {
        struct msess *ms = &X.s[i];
        uint64_t due;

        if (!ms->bs || !ms->bs->open)
            continue;
        due = (uint64_t)((double)(now - ms->opened) / 1e9 * (double)B.rate);
        for (unsigned k = 0; ms->dg_sent < due && k < 64; k++) {
            uint32_t v, seq = (uint32_t)ms->dg_sent;
            size_t n = HDR + rnd32(&ms->rng) % (DG_MAX - HDR + 1);

            v = DGRAM_MAGIC;
            memcpy(buf, &v, 4);
            memcpy(buf + 4, &i, 4);
            memcpy(buf + 8, &seq, 4);
            v = (uint32_t)n;
            memcpy(buf + 12, &v, 4);
            memcpy(buf + HDR,
                   B.pattern + ((uint64_t)i * 7919 + (uint64_t)seq * 131) % PATTERN,
                   n - HDR);
            ms->dg_sent++;
            X.dgrams_sent++;
            if (wt_session_send_datagram(ms->bs->s, buf, n) < 0)
                X.dgrams_dropped++;
        }
    }
}

static void warm_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    X.pausing = 1;
    X.pause_t = bench_now();
    mx_check_end();
}

static unsigned in_flight(void)
{
    unsigned active = 0;

    for (unsigned i = 0; i < X.n; i++)
        active += X.s[i].active;
    return active;
}

static void drain_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    X.stuck = in_flight();
    sample(2);
    if (X.stuck)
        bench_error("%llu streams still unfinished %.0f s after the run",
                    (unsigned long long)X.stuck, B.drain);
    bench_stop();
}

int mx_setup(char *err, size_t errlen)
{
    X.n = B.conns * B.sessions;
    if (!(X.s = calloc(X.n, sizeof(*X.s)))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (unsigned i = 0; i < X.n; i++) {
        X.s[i].rng = 0x9e3779b97f4a7c15ULL ^ ((uint64_t)i * 0x100000001b3ULL);
        LIST_INIT(&X.s[i].waiting);
    }
    X.warm_at = B.warmup >= 0 ? B.warmup
                              : (B.duration * 0.2 > 10 ? B.duration * 0.2 : 10);
    if (X.warm_at >= B.duration)
        X.warm_at = B.duration / 2;
    sample(0);
    ev_timer_init(&X.warmw, warm_cb, X.warm_at, 0.);
    ev_timer_start(B.loop, &X.warmw);
    ev_timer_init(&X.dgw, dg_cb, 0.01, 0.01);
    if (B.rate)
        ev_timer_start(B.loop, &X.dgw);
    ev_init(&X.drainw, drain_cb);
    return 0;
}

/* --duration: the run ends; what is in flight gets --drain seconds. */
void mx_deadline(void)
{
    if (X.draining)
        return;
    X.draining = 1;
    X.pausing = 0;
    ev_timer_stop(B.loop, &X.dgw);
    ev_timer_stop(B.loop, &X.warmw);
    ev_timer_set(&X.drainw, B.drain, 0.);
    ev_timer_start(B.loop, &X.drainw);
    mx_check_end();
}

void mx_check_end(void)
{
    if (X.pausing && in_flight() == 0) {
        sample(1);
        X.pausing = 0;
        X.pause_s = bench_secs(bench_now() - X.pause_t);
        for (unsigned i = 0; i < X.n; i++)
            mfill(&X.s[i]);
    } else if (X.pausing && bench_now() - X.pause_t > B.drain * 1e9) {
        bench_error("%u streams still unfinished %.0f s into the warm-up "
                    "pause", in_flight(), B.drain);
        X.pausing = 0;
    }
    if (X.draining && in_flight() == 0 && !X.held) {
        sample(2);
        X.held = 1;
        ev_timer_stop(B.loop, &X.drainw);
        if (!B.hold_set) {
            bench_stop();
            return;
        }
        /* --hold: the sessions stay open, idle, for a look at the server */
        ev_timer_set(&B.holdw, B.hold, 0.);
        ev_timer_start(B.loop, &B.holdw);
    }
}

void mx_progress(double t)
{
    fprintf(stderr,
            "[%5.1fs] %u/%u sessions (%llu lost), %llu streams (%.1f MB) "
            "verified, %llu mismatches, %llu/%llu datagrams back\n",
            t, B.sess_open, X.n, (unsigned long long)X.lost,
            (unsigned long long)B.streams_done, (double)X.bytes_verified / 1e6,
            (unsigned long long)B.mismatches,
            (unsigned long long)X.dgrams_back,
            (unsigned long long)X.dgrams_sent);
}

void mx_report(void)
{
    char path[600];
    double el = bench_secs(B.t_end - B.t_start);
    double cpu = X.cpu[2] >= 0 && X.cpu[0] >= 0 ? X.cpu[2] - X.cpu[0] : -1;

    quic_impair_summary(&B.ep, path, sizeof(path), B.json);
    if (B.json) {
        printf("{\"mode\":\"mixed\",\"sessions\":%u,\"sessions_open\":%u,"
               "\"sessions_failed\":%u,\"sessions_lost\":%llu,"
               "\"lost_why\":\"%s\",\"elapsed_s\":%.3f,"
               "\"streams_done\":%llu,\"streams_bidi\":%llu,"
               "\"streams_uni\":%llu,\"bytes_sent\":%llu,"
               "\"bytes_verified\":%llu,\"mismatches\":%llu,"
               "\"streams_reset\":%llu,\"streams_stuck\":%llu,"
               "\"dgrams_sent\":%llu,\"dgrams_back\":%llu,"
               "\"dgrams_not_queued\":%llu,\"dgrams_corrupt\":%llu,"
               "\"server\":{\"rss_kb\":[%ld,%ld,%ld],\"rss_peak_kb\":%ld,"
               "\"fds\":[%ld,%ld,%ld],\"warmup_s\":%.1f,\"pause_s\":%.2f,"
               "\"cpu_s\":%.2f},\"path\":%s,"
               "\"errors\":%llu,\"first_error\":\"%s\"}\n",
               X.n, B.sess_open, B.sess_failed, (unsigned long long)X.lost,
               X.lost_why, el, (unsigned long long)B.streams_done,
               (unsigned long long)X.streams_bidi,
               (unsigned long long)X.streams_uni,
               (unsigned long long)X.stream_bytes_sent,
               (unsigned long long)X.bytes_verified,
               (unsigned long long)B.mismatches, (unsigned long long)X.resets,
               (unsigned long long)X.stuck, (unsigned long long)X.dgrams_sent,
               (unsigned long long)X.dgrams_back,
               (unsigned long long)X.dgrams_dropped,
               (unsigned long long)X.dgrams_corrupt, X.rss[0], X.rss[1],
               X.rss[2], X.hwm, X.fds[0], X.fds[1], X.fds[2], X.warm_at,
               X.pause_s, cpu, path,
               (unsigned long long)B.errors, B.first_error);
        return;
    }
    printf("mode            mixed\n");
    printf("sessions        %u open of %u, %u failed, %llu lost%s%s\n",
           B.sess_open, X.n, B.sess_failed, (unsigned long long)X.lost,
           X.lost_why[0] ? ": " : "", X.lost_why);
    printf("elapsed         %.3f s\n", el);
    printf("streams         %llu done (%llu bidi, %llu uni), %.1f MB "
           "verified, %llu mismatches, %llu reset, %llu stuck\n",
           (unsigned long long)B.streams_done,
           (unsigned long long)X.streams_bidi,
           (unsigned long long)X.streams_uni, (double)X.bytes_verified / 1e6,
           (unsigned long long)B.mismatches, (unsigned long long)X.resets,
           (unsigned long long)X.stuck);
    printf("datagrams       %llu sent, %llu back, %llu not queued, %llu "
           "corrupt\n",
           (unsigned long long)X.dgrams_sent, (unsigned long long)X.dgrams_back,
           (unsigned long long)X.dgrams_dropped,
           (unsigned long long)X.dgrams_corrupt);
    if (B.server_pid > 0)
        printf("server          RSS %ld -> %ld (at %.0f s, no stream in "
               "flight) -> %ld kB (at the end), peak %ld kB; fds %ld -> %ld "
               "-> %ld; %.2f s CPU\n",
               X.rss[0], X.rss[1], X.warm_at, X.rss[2], X.hwm, X.fds[0],
               X.fds[1], X.fds[2], cpu);
    printf("path            %s\n", path);
    printf("errors          %llu%s%s\n", (unsigned long long)B.errors,
           B.first_error[0] ? ": " : "", B.first_error);
}

int mx_status(void)
{
    return B.errors || B.mismatches || X.lost || X.stuck || X.dgrams_corrupt ||
                   B.sess_open != X.n || B.streams_done == 0
               ? 1
               : 0;
}

void mx_free(void)
{
    free(X.s);
    X.s = NULL;
}
