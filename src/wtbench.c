/*
 * wtbench: load generator for WebTransport servers, built on the daemon's
 * own session layer in client role (like wtclient).  Six modes:
 *   bulk       conns x sessions x streams, each stream echoing BYTES, every
 *              echoed byte verified against a pattern
 *   rps        small request/response streams, latency percentiles
 *   datagram   datagram round trips at a fixed rate, latency and loss
 *   sessions   ramp to many idle sessions; handshakes/s, server RSS growth
 *   broadcast  a room of members on a broadcast route: fan-out delivery,
 *              latency, slow members (wtbench_broadcast.c)
 *   mixed      the soak: bidi and uni streams of mixed sizes and datagrams
 *              on every session for --duration, all verified, the
 *              server's RSS and descriptors sampled (wtbench_mixed.c)
 * Every loop is bounded by a count and by --duration.
 */
#include <errno.h>
#include <ev.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "config.h"
#include "handler.h"
#include "log.h"
#include "quic.h"
#include "tls.h"
#include "url.h"
#include "wire.h"
#include "version.h"
#include "wt.h"
#include "wtbench.h"

struct bstream {
    struct bsess *bs;
    struct wt_stream *st;
    uint32_t seed;  /* offset into the pattern */
    uint64_t total; /* bytes to send */
    uint64_t sent, back;
    uint64_t t0;    /* rps: when the request started (ns) */
    int fin_sent;
};

struct wtbench B;

/* broadcast: the stalled members' connections, with limits of their own */
static struct quic_endpoint stall_ep;

uint64_t bench_now(void)
{
    return quic_now();
}

double bench_secs(uint64_t ns)
{
    return (double)ns / 1e9;
}

void bench_error(const char *fmt, ...)
{
    va_list ap;

    B.errors++;
    if (B.first_error[0])
        return;
    va_start(ap, fmt);
    vsnprintf(B.first_error, sizeof(B.first_error), fmt, ap);
    va_end(ap);
}

void bench_lat_add(uint64_t ns)
{
    if (!B.lat && !(B.lat = malloc(MAX_LAT * sizeof(*B.lat))))
        return;
    B.nlat_seen++;
    if (B.nlat < MAX_LAT) {
        B.lat[B.nlat++] = ns;
        return;
    }
    /* reservoir: every sample had the same chance to be kept */
    B.lat_rng = B.lat_rng * 6364136223846793005ULL + 1442695040888963407ULL;
    uint64_t k = (B.lat_rng >> 11) % B.nlat_seen;

    if (k < MAX_LAT)
        B.lat[k] = ns;
}

long bench_server_status_kb(const char *field)
{
    char path[64], line[256];
    size_t flen = strlen(field);
    long kb = -1;
    FILE *f;

    if (B.server_pid <= 0)
        return -1;
    snprintf(path, sizeof(path), "/proc/%ld/status", B.server_pid);
    if (!(f = fopen(path, "r")))
        return -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, field, flen) == 0 && line[flen] == ':' &&
            sscanf(line + flen + 1, "%ld", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

double bench_server_cpu_s(void)
{
    char path[64], buf[1024], *p;
    unsigned long long ut, st;
    size_t n;
    FILE *f;

    if (B.server_pid <= 0)
        return -1;
    snprintf(path, sizeof(path), "/proc/%ld/stat", B.server_pid);
    if (!(f = fopen(path, "r")))
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    /* proc(5): fields 14 and 15, counted from after the command's ')' */
    if (!(p = strrchr(buf, ')')) ||
        sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
               &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

int bench_server_reset_peak(void)
{
    char path[64];
    FILE *f;
    int rv;

    if (B.server_pid <= 0)
        return -1;
    snprintf(path, sizeof(path), "/proc/%ld/clear_refs", B.server_pid);
    if (!(f = fopen(path, "w")))
        return -1;
    rv = fputs("5", f) < 0 ? -1 : 0; /* proc(5): 5 resets the peak RSS */
    if (fclose(f) != 0)
        rv = -1;
    return rv;
}

double bench_self_cpu_s(void)
{
    struct rusage ru;

    if (getrusage(RUSAGE_SELF, &ru) < 0)
        return -1;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static long server_rss_kb(void)
{
    return bench_server_status_kb("VmRSS");
}

/* ---- streams ---- */

static void pump(struct bstream *b)
{
    uint64_t max = wt_session_max_buffer(b->bs->s);

    while (b->sent < b->total) {
        uint64_t queued = b->sent - wt_stream_acked(b->st);
        uint64_t n = b->total - b->sent;
        size_t off = (b->seed + b->sent) % PATTERN;

        if (queued >= max)
            return;
        if (n > max - queued)
            n = max - queued;
        if (n > PATTERN)
            n = PATTERN;
        if (wt_stream_write(b->st, B.pattern + off, (size_t)n,
                            b->sent + n == b->total) < 0) {
            bench_error("stream %lld: write refused", (long long)b->st->id);
            return;
        }
        b->sent += n;
        B.tx += n;
    }
    if (b->total == 0 && !b->fin_sent)
        wt_stream_write(b->st, NULL, 0, 1);
    b->fin_sent = 1;
}

static int start_stream(struct bsess *bs, uint64_t bytes)
{
    struct wt_stream *st = wt_session_open_stream(bs->s, 1);
    struct bstream *b;

    if (!st)
        return -1; /* streams_available calls again */
    if (!(b = calloc(1, sizeof(*b)))) {
        wt_stream_reset(st, 0);
        return -1;
    }
    b->bs = bs;
    b->st = st;
    b->total = bytes;
    b->seed = (uint32_t)(((uint64_t)st->id * 2654435761u) % PATTERN);
    b->t0 = bench_now();
    st->hdata = b;
    bs->active++;
    if (B.mode == M_RPS)
        B.requests_started++;
    pump(b);
    return 0;
}

/* rps: how many requests may have started by now (all of them unless
 * --rate paces them, as a client that must be served steadily does) */
static uint64_t rps_due(void)
{
    if (!B.rate_set)
        return B.requests;
    if (!B.t_all_open)
        return 0;
    return 1 + (uint64_t)((double)(bench_now() - B.t_all_open) / 1e9 *
                          (double)B.rate);
}

/* Starts what the mode wants in flight on this session. */
static void fill(struct bsess *bs)
{
    if (!bs->open || B.stopping)
        return;
    if (B.mode == M_BULK) {
        /* each session opens its streams once */
        while (bs->opened < B.streams) {
            if (start_stream(bs, B.bytes) < 0)
                return;
            bs->opened++;
        }
    } else if (B.mode == M_RPS) {
        while (bs->active < B.streams && B.requests_started < B.requests &&
               B.requests_started < rps_due())
            if (start_stream(bs, B.size) < 0)
                return;
    }
}

/* ---- handler ---- */

static int h_session_open(struct wt_session *s)
{
    struct bsess *bs = s->hdata;

    bs->open = 1;
    B.sess_open++;
    if (!B.t_first_open)
        B.t_first_open = bench_now();
    if (B.sess_open + B.sess_failed == B.conns * B.sessions) {
        B.t_all_open = bench_now();
        if (B.mode == M_SESSIONS) {
            ev_timer_set(&B.holdw, B.hold, 0.);
            ev_timer_start(B.loop, &B.holdw);
        }
    }
    fill(bs);
    return 0;
}

void bench_session_rejected(struct wt_session *s, int status,
                            const char *why)
{
    struct bsess *bs = s->hdata;

    bs->s = NULL;
    B.sess_failed++;
    bench_error("session rejected: %d %s", status, why);
    bench_check_end();
}

static void h_session_close(struct wt_session *s, uint32_t code,
                            const char *reason, size_t reasonlen)
{
    struct bsess *bs = s->hdata;

    if (bs->open && !B.stopping)
        bench_error("session closed by the server: %u %.*s", code,
                   (int)reasonlen, reason ? reason : "");
    bs->open = 0;
    bs->s = NULL;
    bench_check_end();
}

static void h_streams_available(struct wt_session *s)
{
    fill(s->hdata);
}

static void h_stream_data(struct wt_stream *st, const uint8_t *p, size_t n,
                          int fin)
{
    struct bstream *b = st->hdata;

    if (!b) { /* a server-opened stream: not ours to measure */
        wt_stream_consume(st, n);
        return;
    }
    if (n) {
        size_t off = (b->seed + b->back) % PATTERN;

        /* pattern is PATTERN bytes twice: any n <= PATTERN fits */
        for (size_t done = 0; done < n;) {
            size_t k = n - done < PATTERN ? n - done : PATTERN;

            if (memcmp(p + done, B.pattern + off, k) != 0) {
                B.mismatches++;
                bench_error("stream %lld: echo differs near byte %llu",
                           (long long)st->id,
                           (unsigned long long)(b->back + done));
                break;
            }
            done += k;
            off = (off + k) % PATTERN;
        }
        b->back += n;
        B.rx += n;
    }
    wt_stream_consume(st, n);
    if (!fin)
        return;
    if (b->back != b->total) {
        B.mismatches++;
        bench_error("stream %lld: %llu bytes echoed, %llu sent",
                   (long long)st->id, (unsigned long long)b->back,
                   (unsigned long long)b->total);
    }
    B.streams_done++;
    if (B.mode == M_RPS) {
        B.requests_done++;
        bench_lat_add(bench_now() - b->t0);
    }
}

static void h_stream_reset(struct wt_stream *st, uint32_t code)
{
    if (st->hdata && !B.stopping)
        bench_error("stream %lld reset by the server (%u)", (long long)st->id,
                   code);
}

static void h_stream_writable(struct wt_stream *st)
{
    struct bstream *b = st->hdata;

    if (b && b->sent < b->total)
        pump(b);
}

static void h_stream_close(struct wt_stream *st)
{
    struct bstream *b = st->hdata;

    if (!b)
        return;
    st->hdata = NULL;
    b->bs->active--;
    fill(b->bs);
    free(b);
    bench_check_end();
}

static void h_datagram(struct wt_session *s, const uint8_t *p, size_t n)
{
    uint64_t t;

    (void)s;
    if (n < 8)
        return;
    memcpy(&t, p, 8);
    B.dgrams_back++;
    B.t_last_back = bench_now();
    bench_lat_add(B.t_last_back - t);
}

static const struct wt_handler_ops bench_ops = {
    .name = "wtbench",
    .session_open = h_session_open,
    .session_rejected = bench_session_rejected,
    .session_close = h_session_close,
    .session_streams_available = h_streams_available,
    .stream_data = h_stream_data,
    .stream_reset = h_stream_reset,
    .stream_stop_sending = h_stream_reset,
    .stream_writable = h_stream_writable,
    .stream_close = h_stream_close,
    .datagram = h_datagram,
};

/* ---- connections ---- */

static void start_conns(void);

static void c_ready(struct quic_conn *qc)
{
    struct bconn *c = qc->app;
    unsigned ci = (unsigned)(c - B.c);
    char err[256];

    c->t_ready = bench_now();
    B.ready++;
    if (qc->resumed)
        B.resumed++;
    for (unsigned i = 0; i < c->nsess; i++) {
        struct bsess *bs = &c->sess[i];

        bs->c = c;
        /* members in order: the measured ones, then the stalled ones */
        bs->idx = c->stall ? B.conns * B.sessions + (ci - B.conns)
                           : ci * B.sessions + i;
        bs->s = wt_session_connect(qc, &B.co, B.ops, bs, err, sizeof(err));
        if (!bs->s) {
            B.sess_failed++;
            bench_error("%s", err);
        }
    }
    start_conns();
    bench_check_end();
}

static void c_closed(struct quic_conn *qc, const char *why)
{
    struct bconn *c = qc->app;

    if (!B.stopping && why[0]) {
        B.conns_lost++;
        bench_error("connection closed: %s", why);
    }
    if (!c->t_ready) {
        /* its sessions will never come */
        B.sess_failed += c->nsess;
        B.ready++;
    }
    c->qc = NULL;
    B.closed_conns++;
    start_conns();
    bench_check_end();
}

static void rebind_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    char err[256];

    (void)loop;
    (void)w;
    (void)revents;
    for (unsigned i = 0; i < B.nconns; i++) {
        struct bconn *c = &B.c[i];

        if (!c->qc || !c->t_ready)
            continue;
        if (quic_conn_rebind(c->qc, err, sizeof(err)) < 0)
            bench_error("rebind: %s", err);
        else
            B.rebound++;
    }
}

static const struct quic_conn_ops conn_ops = {
    .ready = c_ready,
    .closed = c_closed,
};

static void ticket_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    ev_timer_stop(B.loop, w);
    start_conns();
}

/* --resume: the first connection goes alone until the server's ticket
 * has come (or it is gone), so that every later one can resume. */
static int wait_for_ticket(void)
{
    if (!B.resume || B.started == 0 || tls_ctx_has_ticket(B.tls) ||
        !B.c[0].qc)
        return 0;
    if (!ev_is_active(&B.ticketw)) {
        ev_timer_init(&B.ticketw, ticket_cb, 0.002, 0.);
        ev_timer_start(B.loop, &B.ticketw);
    }
    return 1;
}

/* Keeps at most --inflight handshakes going. */
static void start_conns(void)
{
    char err[256];

    while (!B.stopping && B.started < B.nconns &&
           B.started - B.ready < B.inflight && !wait_for_ticket()) {
        unsigned k = B.started % (1 + B.nalso);
        struct bconn *c = &B.c[B.started++];
        const struct addrinfo *ai = k ? B.also_ai[k - 1] : B.ai;

        c->t0 = bench_now();
        c->qc = quic_connect(c->stall ? B.stall_ep : &B.ep, ai->ai_addr,
                             ai->ai_addrlen, B.url.host, &conn_ops, c, err,
                             sizeof(err));
        if (!c->qc) {
            bench_error("connect: %s", err);
            B.sess_failed += c->nsess;
            B.ready++;
            B.closed_conns++;
        }
    }
}

/* ---- pacing, progress, end ---- */

static void pacer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    /* datagram mode: a slot every 1/rate s, round robin over sessions */
    static unsigned next;
    uint64_t due;
    uint8_t buf[65536];

    (void)loop;
    (void)w;
    (void)revents;
    if (B.stopping || !B.t_all_open)
        return;
    if (B.mode == M_RPS) {
        unsigned total = B.conns * B.sessions;

        /* each turn starts at the next session: paced requests go round
         * every session, not to the first ones that happen to be idle */
        for (unsigned i = 0; i < total; i++) {
            unsigned k = (next + i) % total;

            fill(&B.c[k / B.sessions].sess[k % B.sessions]);
        }
        if (total)
            next = (next + 1) % total;
        return;
    }
    due = (uint64_t)((double)(bench_now() - B.t_all_open) / 1e9 * (double)B.rate);
    if (due > B.requests)
        due = B.requests;
    while (B.dgrams_sent < due) {
        unsigned total = B.conns * B.sessions;
        struct bsess *bs = NULL;

        for (unsigned k = 0; k < total && !bs; k++) {
            struct bsess *cand = &B.c[next / B.sessions].sess[next % B.sessions];

            next = (next + 1) % total;
            if (cand->open)
                bs = cand;
        }
        if (!bs)
            return;
        uint64_t t = bench_now();
        size_t n = B.size < 8 ? 8 : (size_t)B.size;

        memcpy(buf, &t, 8);
        memset(buf + 8, 'd', n - 8);
        if (wt_session_send_datagram(bs->s, buf, n) < 0)
            B.dgrams_dropped++;
        B.dgrams_sent++;
    }
    if (B.dgrams_sent >= B.requests && !ev_is_active(&B.grace)) {
        ev_timer_set(&B.grace, 1.0, 0.);
        ev_timer_start(B.loop, &B.grace);
    }
}

static void progress_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    double t = bench_secs(bench_now() - B.t_start);

    (void)loop;
    (void)w;
    (void)revents;
    switch (B.mode) {
    case M_BULK:
        fprintf(stderr, "[%5.1fs] %u/%u sessions, %.1f MB sent, %.1f MB "
                        "echoed, %llu/%llu streams done\n",
                t, B.sess_open, B.conns * B.sessions, (double)B.tx / 1e6,
                (double)B.rx / 1e6, (unsigned long long)B.streams_done,
                (unsigned long long)B.conns * B.sessions * B.streams);
        break;
    case M_RPS:
        fprintf(stderr, "[%5.1fs] %llu/%llu requests\n", t,
                (unsigned long long)B.requests_done,
                (unsigned long long)B.requests);
        break;
    case M_DGRAM:
        fprintf(stderr, "[%5.1fs] %llu sent, %llu back\n", t,
                (unsigned long long)B.dgrams_sent,
                (unsigned long long)B.dgrams_back);
        break;
    case M_SESSIONS:
        fprintf(stderr, "[%5.1fs] %u/%u connections, %u/%u sessions\n", t,
                B.ready, B.conns, B.sess_open, B.conns * B.sessions);
        break;
    case M_BROADCAST:
        bc_progress(t);
        break;
    case M_MIXED:
        mx_progress(t);
        break;
    }
}

void bench_stop(void)
{
    if (B.stopping)
        return;
    B.stopping = 1;
    B.t_end = bench_now();
    ev_timer_stop(B.loop, &B.pacer);
    ev_timer_stop(B.loop, &B.progress);
    ev_timer_stop(B.loop, &B.ticketw);
    ev_timer_stop(B.loop, &B.rebindw);
    ev_break(B.loop, EVBREAK_ALL);
}

void bench_check_end(void)
{
    unsigned total = B.conns * B.sessions;

    if (B.stopping)
        return;
    if (B.started == B.nconns && B.closed_conns == B.nconns) {
        bench_stop(); /* nothing left to wait for */
        return;
    }
    if (B.mode == M_BROADCAST) {
        bc_check_end();
        return;
    }
    if (B.mode == M_MIXED) {
        mx_check_end();
        return;
    }
    if (B.sess_open + B.sess_failed < total)
        return;
    switch (B.mode) {
    case M_BULK:
        if (B.streams_done + B.errors >= (uint64_t)B.sess_open * B.streams &&
            B.streams_done >= (uint64_t)B.sess_open * B.streams)
            bench_stop();
        else if (B.sess_open == 0)
            bench_stop();
        break;
    case M_RPS:
        if (B.requests_done >= B.requests || B.sess_open == 0)
            bench_stop();
        break;
    default:
        if (B.sess_open == 0)
            bench_stop();
        break; /* datagram / sessions end by timer */
    }
}

static void end_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    if (w == &B.deadline && B.mode == M_MIXED) {
        mx_deadline(); /* then the drain */
        return;
    }
    if (w == &B.deadline && B.mode == M_BROADCAST)
        bc_deadline();
    else if (w == &B.deadline && B.mode != M_SESSIONS && B.mode != M_DGRAM)
        bench_error("--duration reached before the work was done");
    if (w == &B.holdw)
        B.rss_after = server_rss_kb();
    bench_stop();
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    bench_check_end();
}

/* ---- report ---- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

void bench_lat_sort(void)
{
    if (B.nlat)
        qsort(B.lat, B.nlat, sizeof(*B.lat), cmp_u64);
}

double bench_pct(double p)
{
    double rank = p / 100.0 * (double)B.nlat;
    size_t i = (size_t)rank;

    if (!B.nlat)
        return 0;
    if ((double)i < rank)
        i++; /* nearest rank: ceil */
    if (i > 0)
        i--;
    if (i >= B.nlat)
        i = B.nlat - 1;
    return (double)B.lat[i] / 1e3; /* microseconds */
}

static void report(void)
{
    static const char *names[] = {"bulk", "rps", "datagram", "sessions"};
    uint64_t t0 = B.t_all_open ? B.t_all_open : B.t_start;
    double el = bench_secs(B.t_end - t0), hs = bench_secs((B.t_all_open ? B.t_all_open
                                                            : B.t_end) -
                                              B.t_start);
    unsigned total = B.conns * B.sessions;
    char path[600];
    double mbps = el > 0 ? (double)(B.tx + B.rx) / el / 1e6 : 0;
    double rps = el > 0 ? (double)B.requests_done / el : 0;
    double dg_rate = B.t_last_back > t0 ? (double)B.dgrams_back /
                                              bench_secs(B.t_last_back - t0)
                                        : 0;
    double loss = B.dgrams_sent
                      ? 100.0 * (double)(B.dgrams_sent - B.dgrams_back) /
                            (double)B.dgrams_sent
                      : 0;
    double per_sess = (B.rss_before >= 0 && B.rss_after >= 0 && B.sess_open)
                          ? (double)(B.rss_after - B.rss_before) * 1024.0 /
                                (double)B.sess_open
                          : -1;

    /* rps: sessions of live connections still waiting for an answer at
     * the end (a connection that lost its server and was not told) */
    unsigned stalled = 0;

    for (unsigned i = 0; B.mode == M_RPS && i < B.conns; i++)
        for (unsigned k = 0; B.c[i].qc && k < B.c[i].nsess; k++)
            stalled += B.c[i].sess[k].active > 0;
    quic_impair_summary(&B.ep, path, sizeof(path), B.json);
    bench_lat_sort();
    if (B.json) {
        printf("{\"mode\":\"%s\",\"conns\":%u,\"sessions_per_conn\":%u,"
               "\"sessions_open\":%u,\"sessions_failed\":%u,"
               "\"setup_s\":%.6f,\"elapsed_s\":%.6f,"
               "\"handshakes_per_s\":%.1f,\"resumed\":%u,"
               "\"bytes_sent\":%llu,\"bytes_echoed\":%llu,"
               "\"mbytes_per_s_both\":%.2f,\"streams_done\":%llu,"
               "\"requests\":%llu,\"rps\":%.1f,"
               "\"dgrams_sent\":%llu,\"dgrams_back\":%llu,\"loss_pct\":%.3f,"
               "\"dgram_round_trips_per_s\":%.1f,"
               "\"lat_us\":{\"n\":%zu,\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,"
               "\"max\":%.1f},"
               "\"server_rss_kb_before\":%ld,\"server_rss_kb_after\":%ld,"
               "\"server_rss_bytes_per_session\":%.0f,"
               "\"rebound\":%u,\"conns_lost\":%u,\"stalled\":%u,\"path\":%s,"
               "\"errors\":%llu,\"mismatches\":%llu,\"first_error\":\"%s\"}\n",
               names[B.mode], B.conns, B.sessions, B.sess_open, B.sess_failed,
               hs, el, hs > 0 ? (double)B.ready / hs : 0, B.resumed,
               (unsigned long long)B.tx, (unsigned long long)B.rx, mbps,
               (unsigned long long)B.streams_done,
               (unsigned long long)B.requests_done, rps,
               (unsigned long long)B.dgrams_sent,
               (unsigned long long)B.dgrams_back, loss, dg_rate, B.nlat, bench_pct(50),
               bench_pct(90), bench_pct(99), bench_pct(100), B.rss_before, B.rss_after,
               per_sess, B.rebound, B.conns_lost, stalled, path,
               (unsigned long long)B.errors,
               (unsigned long long)B.mismatches, B.first_error);
        return;
    }
    printf("mode            %s\n", names[B.mode]);
    printf("sessions        %u open, %u failed (%u conns x %u)\n", B.sess_open,
           B.sess_failed, B.conns, B.sessions);
    printf("set-up          %.3f s (%.1f handshakes/s, %u resumed)\n", hs,
           hs > 0 ? (double)B.ready / hs : 0, B.resumed);
    printf("elapsed         %.3f s\n", el);
    if (B.mode == M_BULK)
        printf("bulk            %.1f MB sent, %.1f MB echoed: %.1f MB/s "
               "both ways (%llu streams, verified)\n",
               (double)B.tx / 1e6, (double)B.rx / 1e6, mbps,
               (unsigned long long)B.streams_done);
    if (B.mode == M_RPS)
        printf("requests        %llu in %.3f s: %.0f req/s\n",
               (unsigned long long)B.requests_done, el, rps);
    if (B.mode == M_DGRAM)
        printf("datagrams       %llu sent, %llu back (%.0f round trips/s), "
               "%.2f %% lost\n",
               (unsigned long long)B.dgrams_sent,
               (unsigned long long)B.dgrams_back, dg_rate, loss);
    if (B.nlat)
        printf("latency (us)    p50 %.0f  p90 %.0f  p99 %.0f  max %.0f  "
               "(%zu samples)\n",
               bench_pct(50), bench_pct(90), bench_pct(99), bench_pct(100), B.nlat);
    if (per_sess >= 0)
        printf("server RSS      %ld kB -> %ld kB: %.0f bytes per session\n",
               B.rss_before, B.rss_after, per_sess);
    if (B.rebind_s > 0)
        printf("rebind          %u connections moved to a new port, %u "
               "connections lost, %u sessions stalled\n",
               B.rebound, B.conns_lost, stalled);
    if (B.loss > 0 || B.ep.impairing)
        printf("path            %s\n", path);
    printf("errors          %llu%s%s\n", (unsigned long long)B.errors,
           B.first_error[0] ? ": " : "", B.first_error);
    (void)total;
}

/* ---- arguments ---- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: wtbench [options] https://HOST:PORT/PATH\n"
            "  --mode bulk|rps|datagram|sessions|broadcast|mixed   (default "
            "bulk)\n"
            "  -c N   connections (default 1)\n"
            "  -s N   sessions per connection (default 1)\n"
            "  -m N   concurrent streams per session (bulk, rps; default 1)\n"
            "  -b S   bytes per stream (bulk; k/M/G; default 1M)\n"
            "  -n N   requests (rps) or datagrams (datagram) in all "
            "(default 10000)\n"
            "  --size S        request / datagram size (default 32)\n"
            "  --rate R        datagrams per second in all (default 1000); "
            "rps: requests\n"
            "                  per second in all (default: back to back)\n"
            "  --inflight N    handshakes at once (default 100)\n"
            "  --resume        connections after the first resume its TLS "
            "session (a ticket)\n"
            "  --hold S        sessions mode: hold the sessions S seconds "
            "(default 1)\n"
            "  --server-pid P  sessions mode: read the server's RSS\n"
            "  -t S   --duration: stop after S seconds (default 60)\n"
            "  --window S      flow-control window per stream (default 1M)\n"
            "  --loss P        drop a fraction P of packets each way (a lossy "
            "path)\n"
            "  --reorder P     hold a fraction P back behind 1..3 later ones "
            "(each way)\n"
            "  --dup P         deliver a fraction P twice (each way)\n"
            "  --delay MS[:JITTER]  delay every packet MS +- JITTER ms, in "
            "order (each way)\n"
            "  --draft 02|07|14|15 (14: as Safari, session flow control), "
            "--wt-max-data N, --wt-max-streams N (14/15: our session windows)\n"
            "  --bind ADDR     send from this local IP address\n"
            "  --rebind S      at S seconds every connection moves to a new "
            "source port\n                  (a NAT rebinding; the server "
            "sees a new address)\n"
            "  --also URL      another server (same path): connections go "
            "round robin\n"
            "                  over URL and these (up to 8; daemons sharing "
            "rooms)\n"
            "  --insecure, --cert-hash HEX, --cafile FILE\n"
            "  --json          the summary as one JSON line\n"
            "  -v              protocol debug log\n"
            "  -h, --help, -V, --version\n"
            "broadcast (URL names the room: https://HOST:PORT/chat?room=NAME):\n"
            "  members are -c x -s sessions; the first --senders send -n "
            "messages each,\n"
            "  every member receives and verifies the others' messages\n"
            "  --senders K     members that send (default 1)\n"
            "  --kind dgram|stream|bidi   a message is a datagram, a uni "
            "stream or a\n"
            "                  bidi stream (default dgram)\n"
            "  --size S        message size, at least 24 (default 64)\n"
            "  -n N            messages per sender (default 100)\n"
            "  --rate R        messages per second per sender; 0 (default): "
            "as fast as\n"
            "                  allowed (-m streams in flight per sender, or "
            "a full\n"
            "                  datagram queue)\n"
            "  --tagged        the route has tag = yes: strip (and check) the "
            "member id\n"
            "  --stall N       N more members that never read (reported "
            "apart)\n"
            "  --stall-window S  their connection's receive window (default "
            "--window)\n"
            "  --min-ratio X   fail below this delivery ratio\n"
            "  --settle S      wait S seconds after every member joined "
            "before sending\n"
            "                  (daemons sharing rooms: their "
            "subscriptions in place)\n"
            "  --hold S        keep the sessions S seconds after the last "
            "message (default 0)\n"
            "  --server-pid P  also the server's RSS (before, joined, peak, "
            "after) and CPU\n"
            "mixed (the soak, on an echo route): each of the -c x -s sessions "
            "keeps -m\n"
            "  streams in flight (default 4; 70 %% bidi, 30 %% uni) of 1 byte "
            "to --size\n"
            "  (default 256k) and sends --rate datagrams/s (default 10), every "
            "byte verified,\n"
            "  for -t seconds; then what is in flight has --drain S (default "
            "20) to end;\n"
            "  --hold S        then the sessions stay open, idle, S more "
            "seconds\n"
            "  --server-pid P  the server's RSS and open fds at the start, "
            "after --warmup S\n"
            "                  (default 20 %% of -t, at least 10 s) and at "
            "the end, its CPU\n");
}

static int size_arg(const char *s, uint64_t *v)
{
    return config_parse_size(s, v);
}

int main(int argc, char **argv)
{
    struct tls_client_opts to = {0};
    uint8_t hash[32];
    uint64_t window = 1024 * 1024;
    const char *url = NULL;
    struct addrinfo hints = {0};
    struct rlimit rl;
    char err[256];
    int rv, requests_set = 0, streams_set = 0;

    B.mode = M_BULK;
    B.conns = B.sessions = B.streams = 1;
    B.bytes = 1024 * 1024;
    B.requests = 10000;
    B.size = 32;
    B.rate = 1000;
    B.inflight = 100;
    B.duration = 60;
    B.hold = 1;
    B.co.draft = WT_DRAFT02;
    B.senders = 1;
    B.rss_before = B.rss_after = -1;
    B.warmup = -1;
    B.drain = 20;
    log_level = LOG_LVL_WARN;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t n = 0;

#define NEEDV()                                                                \
    do {                                                                       \
        if (!v) {                                                              \
            fprintf(stderr, "wtbench: %s needs a value\n", a);                 \
            return 2;                                                          \
        }                                                                      \
        i++;                                                                   \
    } while (0)
#define NUM(dst, min, max)                                                     \
    do {                                                                       \
        NEEDV();                                                               \
        if (size_arg(v, &n) < 0 || n + 1 < (min) + 1 || n > (max)) {           \
            fprintf(stderr, "wtbench: bad value for %s\n", a);                 \
            return 2;                                                          \
        }                                                                      \
        dst = n;                                                               \
    } while (0)
        if (strcmp(a, "--mode") == 0) {
            NEEDV();
            if (strcmp(v, "bulk") == 0)
                B.mode = M_BULK;
            else if (strcmp(v, "rps") == 0)
                B.mode = M_RPS;
            else if (strcmp(v, "datagram") == 0)
                B.mode = M_DGRAM;
            else if (strcmp(v, "sessions") == 0)
                B.mode = M_SESSIONS;
            else if (strcmp(v, "broadcast") == 0)
                B.mode = M_BROADCAST;
            else if (strcmp(v, "mixed") == 0)
                B.mode = M_MIXED;
            else {
                fprintf(stderr, "wtbench: unknown mode %s\n", v);
                return 2;
            }
        } else if (strcmp(a, "-c") == 0) {
            NUM(B.conns, 1, 1000000);
        } else if (strcmp(a, "-s") == 0) {
            NUM(B.sessions, 1, 65536);
        } else if (strcmp(a, "-m") == 0) {
            NUM(B.streams, 1, 100000);
            streams_set = 1;
        } else if (strcmp(a, "-b") == 0) {
            NUM(B.bytes, 0, 1ULL << 40);
        } else if (strcmp(a, "-n") == 0) {
            NUM(B.requests, 1, 1ULL << 32);
            requests_set = 1;
        } else if (strcmp(a, "--size") == 0) {
            NUM(B.size, 1, 1ULL << 30); /* > 65000: broadcast only */
            B.size_set = 1;
        } else if (strcmp(a, "--rate") == 0) {
            NUM(B.rate, 0, 10000000); /* 0: broadcast only (checked below) */
            B.rate_set = 1;
        } else if (strcmp(a, "--senders") == 0) {
            NUM(B.senders, 0, 1000000);
        } else if (strcmp(a, "--stall") == 0) {
            NUM(B.stall, 0, 100000);
        } else if (strcmp(a, "--stall-window") == 0) {
            NUM(B.stall_window, 4096, 1ULL << 30);
        } else if (strcmp(a, "--settle") == 0) {
            NEEDV();
            B.settle = atof(v);
            if (B.settle < 0 || B.settle > 60) {
                fprintf(stderr, "wtbench: --settle wants 0..60 seconds\n");
                return 2;
            }
        } else if (strcmp(a, "--tagged") == 0) {
            B.tagged = 1;
        } else if (strcmp(a, "--min-ratio") == 0) {
            NEEDV();
            B.min_ratio = atof(v);
            if (B.min_ratio < 0 || B.min_ratio > 1) {
                fprintf(stderr, "wtbench: --min-ratio is 0 to 1\n");
                return 2;
            }
        } else if (strcmp(a, "--kind") == 0) {
            NEEDV();
            if (strcmp(v, "dgram") == 0 || strcmp(v, "datagram") == 0)
                B.kind = K_DGRAM;
            else if (strcmp(v, "stream") == 0 || strcmp(v, "uni") == 0)
                B.kind = K_STREAM;
            else if (strcmp(v, "bidi") == 0)
                B.kind = K_BIDI;
            else {
                fprintf(stderr, "wtbench: --kind is dgram, stream or bidi\n");
                return 2;
            }
        } else if (strcmp(a, "--inflight") == 0) {
            NUM(B.inflight, 1, 100000);
        } else if (strcmp(a, "--window") == 0) {
            NUM(window, 4096, 1ULL << 30);
        } else if ((rv = quic_impair_option(&B.impair, a, v ? v : "", err,
                                            sizeof(err))) != 0) {
            if (rv < 0 || !v) {
                fprintf(stderr, "wtbench: %s\n", v ? err : "a value is missing");
                return 2;
            }
            i++;
        } else if (strcmp(a, "--warmup") == 0) {
            NEEDV();
            B.warmup = atof(v);
        } else if (strcmp(a, "--drain") == 0) {
            NEEDV();
            B.drain = atof(v);
            if (B.drain <= 0) {
                fprintf(stderr, "wtbench: bad --drain\n");
                return 2;
            }
        } else if (strcmp(a, "--loss") == 0) {
            NEEDV();
            B.loss = atof(v);
            if (B.loss < 0 || B.loss > 0.5) {
                fprintf(stderr, "wtbench: --loss is a fraction, 0 to 0.5\n");
                return 2;
            }
        } else if (strcmp(a, "--server-pid") == 0) {
            NEEDV();
            B.server_pid = atol(v);
        } else if (strcmp(a, "--hold") == 0) {
            NEEDV();
            B.hold = atof(v);
            B.hold_set = 1;
        } else if (strcmp(a, "-t") == 0 || strcmp(a, "--duration") == 0) {
            NEEDV();
            B.duration = atof(v);
            if (B.duration <= 0) {
                fprintf(stderr, "wtbench: bad duration\n");
                return 2;
            }
        } else if (strcmp(a, "--draft") == 0) {
            NEEDV();
            rv = atoi(v);
            if (rv != 2 && rv != 7 && rv != 14 && rv != 15) {
                fprintf(stderr, "wtbench: --draft is 02, 07, 14 or 15\n");
                return 2;
            }
            B.co.draft = (enum wt_draft)rv;
        } else if (strcmp(a, "--wt-max-data") == 0) {
            NEEDV();
            if (config_parse_size(v, &B.cfg_wt_data) < 0 || !B.cfg_wt_data) {
                fprintf(stderr, "wtbench: bad --wt-max-data\n");
                return 2;
            }
        } else if (strcmp(a, "--wt-max-streams") == 0) {
            NEEDV();
            B.cfg_wt_streams = strtoull(v, NULL, 10);
            if (B.cfg_wt_streams == 0 || B.cfg_wt_streams > 1000000) {
                fprintf(stderr, "wtbench: bad --wt-max-streams\n");
                return 2;
            }
        } else if (strcmp(a, "--also") == 0) {
            NEEDV();
            if (B.nalso == BENCH_MAX_ALSO) {
                fprintf(stderr, "wtbench: at most %d --also\n", BENCH_MAX_ALSO);
                return 2;
            }
            B.also[B.nalso++] = v;
        } else if (strcmp(a, "--bind") == 0) {
            NEEDV();
            B.bind = v;
        } else if (strcmp(a, "--insecure") == 0) {
            to.insecure = 1;
        } else if (strcmp(a, "--cert-hash") == 0) {
            NEEDV();
            to.cert_hash = hash;
            if (tls_cert_hash_parse(v, hash) < 0) {
                fprintf(stderr, "wtbench: --cert-hash wants 64 hex digits\n");
                return 2;
            }
        } else if (strcmp(a, "--cafile") == 0) {
            NEEDV();
            to.cafile = v;
        } else if (strcmp(a, "--json") == 0) {
            B.json = 1;
        } else if (strcmp(a, "--rebind") == 0) {
            if (!v || (B.rebind_s = atof(v)) <= 0) {
                fprintf(stderr, "wtbench: --rebind wants seconds > 0\n");
                return 2;
            }
            i++;
        } else if (strcmp(a, "--resume") == 0) {
            B.resume = 1;
            to.resume = 1;
        } else if (strcmp(a, "-v") == 0) {
            log_level = LOG_LVL_DEBUG;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
            printf("wtbench %s\n", WTRELAYD_VERSION);
            return 0;
        } else if (a[0] == '-') {
            fprintf(stderr, "wtbench: unknown option %s\n", a);
            usage(stderr);
            return 2;
        } else if (!url) {
            url = a;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (!url || url_parse(url, &B.url) < 0) {
        fprintf(stderr, "wtbench: want a URL https://HOST:PORT/PATH\n");
        return 2;
    }
    if (B.mode != M_BROADCAST && B.rate_set && B.rate == 0) {
        fprintf(stderr, "wtbench: bad value for --rate\n");
        return 2;
    }
    if (B.mode == M_MIXED) {
        if (!streams_set)
            B.streams = 4;
        if (!B.size_set)
            B.size = 256 * 1024;
        if (!B.rate_set)
            B.rate = 10;
        if (B.size > (64u << 20)) {
            fprintf(stderr, "wtbench: bad value for --size\n");
            return 2;
        }
    } else if (B.mode != M_BROADCAST && B.size > 65000) {
        fprintf(stderr, "wtbench: bad value for --size\n");
        return 2;
    }
    if (B.mode != M_BROADCAST && B.stall) {
        fprintf(stderr, "wtbench: --stall is for --mode broadcast\n");
        return 2;
    }
    if (B.mode == M_BROADCAST) {
        /* the broadcast mode's own defaults */
        if (!requests_set)
            B.requests = 100;
        if (!B.size_set)
            B.size = 64;
        if (!B.rate_set)
            B.rate = 0;
        if (!B.hold_set)
            B.hold = 0;
        if (!B.stall_window)
            B.stall_window = window;
    }
    B.co.authority = B.url.authority;
    B.co.path = B.url.path;
    hints.ai_socktype = SOCK_DGRAM;
    if ((rv = getaddrinfo(B.url.host, B.url.port, &hints, &B.ai)) != 0) {
        fprintf(stderr, "wtbench: %s: %s\n", B.url.host, gai_strerror(rv));
        return 3;
    }
    for (unsigned k = 0; k < B.nalso; k++) {
        struct url u;

        if (url_parse(B.also[k], &u) < 0 || strcmp(u.path, B.url.path) != 0) {
            fprintf(stderr, "wtbench: --also wants https://HOST:PORT%s\n",
                    B.url.path);
            return 2;
        }
        if ((rv = getaddrinfo(u.host, u.port, &hints, &B.also_ai[k])) != 0) {
            fprintf(stderr, "wtbench: %s: %s\n", u.host, gai_strerror(rv));
            return 3;
        }
    }
    /* one socket per connection */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    for (size_t i = 0; i < sizeof(B.pattern); i++)
        B.pattern[i] = (uint8_t)((i % PATTERN) * 7 + (i % PATTERN) / 251);
    config_defaults(&B.cfg);
    B.cfg.max_streams_per_session = 1000000;
    B.cfg.client_draft = (int)B.co.draft;
    B.cfg.wt_initial_max_data = B.cfg_wt_data;
    B.cfg.wt_initial_max_streams_bidi = B.cfg_wt_streams ? B.cfg_wt_streams : 128;
    B.cfg.wt_initial_max_streams_uni = B.cfg_wt_streams ? B.cfg_wt_streams : 128;
    B.cfg.max_buffer_bytes = window;
    B.cfg.max_connection_buffer_bytes = window * 16;
    B.cfg.max_datagram_queue = 4096;
    B.cfg.idle_timeout_ms = (uint64_t)(B.duration * 1000) + 30000;
    /* A stalled member (a tab that stopped reading) has its own connection
     * and, with --stall-window, a smaller receive window. */
    B.stall_cfg = B.cfg;
    B.stall_cfg.max_connection_buffer_bytes = B.stall_window;
    if (B.stall_cfg.max_buffer_bytes > B.stall_window)
        B.stall_cfg.max_buffer_bytes = B.stall_window;
    B.ops = B.mode == M_BROADCAST ? &bc_ops
            : B.mode == M_MIXED   ? &mx_ops
                                  : &bench_ops;
    B.nconns = B.conns + B.stall;
    B.lat_rng = 0x2545f4914f6cdd1dULL;
    if (B.mode == M_BROADCAST && bc_setup(err, sizeof(err)) < 0) {
        fprintf(stderr, "wtbench: %s\n", err);
        return 2;
    }
    if (!(B.tls = tls_client_ctx_new(&to, err, sizeof(err)))) {
        fprintf(stderr, "wtbench: %s\n", err);
        return 2;
    }
    if (!(B.c = calloc(B.nconns, sizeof(*B.c)))) {
        fprintf(stderr, "wtbench: out of memory\n");
        return 2;
    }
    for (unsigned i = 0; i < B.nconns; i++) {
        B.c[i].stall = i >= B.conns;
        B.c[i].nsess = B.c[i].stall ? 1 : B.sessions;
        if (!(B.c[i].sess = calloc(B.c[i].nsess, sizeof(struct bsess)))) {
            fprintf(stderr, "wtbench: out of memory\n");
            return 2;
        }
    }
    B.loop = EV_DEFAULT;
    quic_client_init(&B.ep, B.loop, &B.cfg, B.tls);
    quic_endpoint_set_loss(&B.ep, B.loss, 42);
    quic_endpoint_set_impair(&B.ep, &B.impair, 44);
    /* later connections present the server's NEW_TOKEN, as browsers do */
    B.ep.keep_tokens = 1;
    if (B.bind && quic_client_bind(&B.ep, B.bind) < 0) {
        fprintf(stderr, "wtbench: --bind wants an IP address, not %s\n",
                B.bind);
        return 2;
    }
    if (B.stall) {
        quic_client_init(&stall_ep, B.loop, &B.stall_cfg, B.tls);
        if (B.bind)
            quic_client_bind(&stall_ep, B.bind);
        quic_endpoint_set_loss(&stall_ep, B.loss, 43);
        quic_endpoint_set_impair(&stall_ep, &B.impair, 45);
        stall_ep.keep_tokens = 1;
        B.stall_ep = &stall_ep;
    }
    ev_timer_init(&B.progress, progress_cb, 1., 1.);
    ev_timer_start(B.loop, &B.progress);
    ev_timer_init(&B.deadline, end_cb, B.duration, 0.);
    ev_timer_start(B.loop, &B.deadline);
    ev_init(&B.holdw, end_cb);
    ev_init(&B.grace, end_cb);
    ev_timer_init(&B.pacer, pacer_cb, 0., 0.0005);
    if (B.mode == M_RPS && B.rate_set) /* paced requests: 100 turns/s do */
        ev_timer_set(&B.pacer, 0., 0.01);
    if (B.mode == M_DGRAM || (B.mode == M_RPS && B.rate_set))
        ev_timer_start(B.loop, &B.pacer);
    {
        static ev_timer tick;

        ev_timer_init(&tick, tick_cb, 0.05, 0.05);
        ev_timer_start(B.loop, &tick);
    }
    if (B.rebind_s > 0) {
        ev_timer_init(&B.rebindw, rebind_cb, B.rebind_s, 0.);
        ev_timer_start(B.loop, &B.rebindw);
    }
    B.rss_before = server_rss_kb();
    if (B.mode == M_MIXED && mx_setup(err, sizeof(err)) < 0) {
        fprintf(stderr, "wtbench: %s\n", err);
        return 2;
    }
    B.t_start = bench_now();
    start_conns();
    ev_run(B.loop, 0);
    if (!B.t_end)
        B.t_end = bench_now();
    if (B.mode == M_BROADCAST)
        bc_report();
    else if (B.mode == M_MIXED)
        mx_report();
    else
        report();
    rv = B.mode == M_BROADCAST ? bc_status()
         : B.mode == M_MIXED   ? mx_status()
                               : (B.errors || B.mismatches || B.sess_open == 0 ? 1 : 0);
    /* close everything, outside the callbacks */
    for (unsigned i = 0; i < B.nconns; i++)
        if (B.c[i].qc)
            quic_conn_close_app(B.c[i].qc, WIRE_H3_NO_ERROR, NULL);
    quic_endpoint_free(&B.ep);
    if (B.stall_ep)
        quic_endpoint_free(B.stall_ep);
    tls_ctx_free(B.tls);
    for (unsigned i = 0; i < B.nconns; i++)
        free(B.c[i].sess);
    free(B.c);
    free(B.lat);
    if (B.mode == M_BROADCAST)
        bc_free();
    if (B.mode == M_MIXED)
        mx_free();
    freeaddrinfo(B.ai);
    for (unsigned k = 0; k < B.nalso; k++)
        freeaddrinfo(B.also_ai[k]);
    ev_loop_destroy(B.loop);
    return rv;
}
