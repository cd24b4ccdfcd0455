/*
 * wtbench: load generator for WebTransport servers, built on the daemon's
 * own session layer in client role (like wtclient).  Four modes:
 *   bulk      conns x sessions x streams, each stream echoing BYTES, every
 *             echoed byte verified against a pattern
 *   rps       small request/response streams, latency percentiles
 *   datagram  datagram round trips at a fixed rate, latency and loss
 *   sessions  ramp to many idle sessions; handshakes/s, server RSS growth
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
#include "wt.h"

#define PATTERN 65536
#define MAX_LAT (8u << 20) /* latency samples kept */

enum mode { M_BULK, M_RPS, M_DGRAM, M_SESSIONS };

struct bconn;

struct bsess {
    struct bconn *c;
    struct wt_session *s;
    int open;
    unsigned active;      /* streams in flight */
    unsigned opened;      /* bulk: streams opened so far */
};

struct bstream {
    struct bsess *bs;
    struct wt_stream *st;
    uint32_t seed;  /* offset into the pattern */
    uint64_t total; /* bytes to send */
    uint64_t sent, back;
    uint64_t t0;    /* rps: when the request started (ns) */
    int fin_sent;
};

struct bconn {
    struct quic_conn *qc;
    uint64_t t0, t_ready;
    struct bsess *sess;
    unsigned nsess;
};

static struct {
    /* options */
    enum mode mode;
    unsigned conns, sessions, streams, inflight;
    uint64_t bytes, requests, size, rate;
    int rate_set; /* rps: --rate paces the requests */
    double duration, hold, loss;
    int json, verbose;
    long server_pid;
    struct wt_connect_opts co;
    struct url url;
    struct addrinfo *ai;
    /* state */
    struct ev_loop *loop;
    struct config cfg;
    struct tls_ctx *tls;
    struct quic_endpoint ep;
    struct bconn *c;
    unsigned started, ready, closed_conns, sess_open, sess_failed;
    uint64_t t_start, t_first_open, t_all_open, t_end;
    uint64_t tx, rx, streams_done, requests_started, requests_done;
    uint64_t dgrams_sent, dgrams_back, dgrams_dropped, t_last_back;
    uint64_t *lat;
    size_t nlat;
    uint64_t errors, mismatches;
    char first_error[256];
    long rss_before, rss_after;
    int stopping, finished;
    ev_timer progress, deadline, pacer, holdw, grace;
    uint8_t pattern[PATTERN * 2];
} B;

static uint64_t now_ns(void)
{
    return quic_now();
}

static double secs(uint64_t ns)
{
    return (double)ns / 1e9;
}

static void error_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void error_note(const char *fmt, ...)
{
    va_list ap;

    B.errors++;
    if (B.first_error[0])
        return;
    va_start(ap, fmt);
    vsnprintf(B.first_error, sizeof(B.first_error), fmt, ap);
    va_end(ap);
}

static void lat_add(uint64_t ns)
{
    if (!B.lat && !(B.lat = malloc(MAX_LAT * sizeof(*B.lat))))
        return;
    if (B.nlat < MAX_LAT)
        B.lat[B.nlat++] = ns;
}

static long server_rss_kb(void)
{
    char path[64], line[256];
    long kb = -1;
    FILE *f;

    if (B.server_pid <= 0)
        return -1;
    snprintf(path, sizeof(path), "/proc/%ld/status", B.server_pid);
    if (!(f = fopen(path, "r")))
        return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

static void stop_all(void);

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
            error_note("stream %lld: write refused", (long long)b->st->id);
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
    b->t0 = now_ns();
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
    return 1 + (uint64_t)((double)(now_ns() - B.t_all_open) / 1e9 *
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

static void check_end(void);

static int h_session_open(struct wt_session *s)
{
    struct bsess *bs = s->hdata;

    bs->open = 1;
    B.sess_open++;
    if (!B.t_first_open)
        B.t_first_open = now_ns();
    if (B.sess_open + B.sess_failed == B.conns * B.sessions) {
        B.t_all_open = now_ns();
        if (B.mode == M_SESSIONS) {
            ev_timer_set(&B.holdw, B.hold, 0.);
            ev_timer_start(B.loop, &B.holdw);
        }
    }
    fill(bs);
    return 0;
}

static void h_session_rejected(struct wt_session *s, int status,
                               const char *why)
{
    struct bsess *bs = s->hdata;

    bs->s = NULL;
    B.sess_failed++;
    error_note("session rejected: %d %s", status, why);
    check_end();
}

static void h_session_close(struct wt_session *s, uint32_t code,
                            const char *reason, size_t reasonlen)
{
    struct bsess *bs = s->hdata;

    if (bs->open && !B.stopping)
        error_note("session closed by the server: %u %.*s", code,
                   (int)reasonlen, reason ? reason : "");
    bs->open = 0;
    bs->s = NULL;
    check_end();
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
                error_note("stream %lld: echo differs near byte %llu",
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
        error_note("stream %lld: %llu bytes echoed, %llu sent",
                   (long long)st->id, (unsigned long long)b->back,
                   (unsigned long long)b->total);
    }
    B.streams_done++;
    if (B.mode == M_RPS) {
        B.requests_done++;
        lat_add(now_ns() - b->t0);
    }
}

static void h_stream_reset(struct wt_stream *st, uint32_t code)
{
    if (st->hdata && !B.stopping)
        error_note("stream %lld reset by the server (%u)", (long long)st->id,
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
    check_end();
}

static void h_datagram(struct wt_session *s, const uint8_t *p, size_t n)
{
    uint64_t t;

    (void)s;
    if (n < 8)
        return;
    memcpy(&t, p, 8);
    B.dgrams_back++;
    B.t_last_back = now_ns();
    lat_add(B.t_last_back - t);
}

static const struct wt_handler_ops bench_ops = {
    .name = "wtbench",
    .session_open = h_session_open,
    .session_rejected = h_session_rejected,
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
    char err[256];

    c->t_ready = now_ns();
    B.ready++;
    for (unsigned i = 0; i < B.sessions; i++) {
        struct bsess *bs = &c->sess[i];

        bs->c = c;
        bs->s = wt_session_connect(qc, &B.co, &bench_ops, bs, err, sizeof(err));
        if (!bs->s) {
            B.sess_failed++;
            error_note("%s", err);
        }
    }
    start_conns();
    check_end();
}

static void c_closed(struct quic_conn *qc, const char *why)
{
    struct bconn *c = qc->app;

    if (!B.stopping && why[0])
        error_note("connection closed: %s", why);
    if (!c->t_ready) {
        /* its sessions will never come */
        B.sess_failed += B.sessions;
        B.ready++;
    }
    c->qc = NULL;
    B.closed_conns++;
    start_conns();
    check_end();
}

static const struct quic_conn_ops conn_ops = {
    .ready = c_ready,
    .closed = c_closed,
};

/* Keeps at most --inflight handshakes going. */
static void start_conns(void)
{
    char err[256];

    while (!B.stopping && B.started < B.conns &&
           B.started - B.ready < B.inflight) {
        struct bconn *c = &B.c[B.started++];

        c->t0 = now_ns();
        c->qc = quic_connect(&B.ep, B.ai->ai_addr, B.ai->ai_addrlen, B.url.host,
                             &conn_ops, c, err, sizeof(err));
        if (!c->qc) {
            error_note("connect: %s", err);
            B.sess_failed += B.sessions;
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
        for (unsigned i = 0; i < B.conns * B.sessions; i++)
            fill(&B.c[i / B.sessions].sess[i % B.sessions]);
        return;
    }
    due = (uint64_t)((double)(now_ns() - B.t_all_open) / 1e9 * (double)B.rate);
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
        uint64_t t = now_ns();
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
    double t = secs(now_ns() - B.t_start);

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
    }
}

static void stop_all(void)
{
    if (B.stopping)
        return;
    B.stopping = 1;
    B.t_end = now_ns();
    ev_timer_stop(B.loop, &B.pacer);
    ev_timer_stop(B.loop, &B.progress);
    ev_break(B.loop, EVBREAK_ALL);
}

static void check_end(void)
{
    unsigned total = B.conns * B.sessions;

    if (B.stopping)
        return;
    if (B.started == B.conns && B.closed_conns == B.conns) {
        stop_all(); /* nothing left to wait for */
        return;
    }
    if (B.sess_open + B.sess_failed < total)
        return;
    switch (B.mode) {
    case M_BULK:
        if (B.streams_done + B.errors >= (uint64_t)B.sess_open * B.streams &&
            B.streams_done >= (uint64_t)B.sess_open * B.streams)
            stop_all();
        else if (B.sess_open == 0)
            stop_all();
        break;
    case M_RPS:
        if (B.requests_done >= B.requests || B.sess_open == 0)
            stop_all();
        break;
    default:
        if (B.sess_open == 0)
            stop_all();
        break; /* datagram / sessions end by timer */
    }
}

static void end_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    if (w == &B.deadline && B.mode != M_SESSIONS && B.mode != M_DGRAM)
        error_note("--duration reached before the work was done");
    if (w == &B.holdw)
        B.rss_after = server_rss_kb();
    stop_all();
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    check_end();
}

/* ---- report ---- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static double pct(double p)
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
    double el = secs(B.t_end - t0), hs = secs((B.t_all_open ? B.t_all_open
                                                            : B.t_end) -
                                              B.t_start);
    unsigned total = B.conns * B.sessions;
    double mbps = el > 0 ? (double)(B.tx + B.rx) / el / 1e6 : 0;
    double rps = el > 0 ? (double)B.requests_done / el : 0;
    double dg_rate = B.t_last_back > t0 ? (double)B.dgrams_back /
                                              secs(B.t_last_back - t0)
                                        : 0;
    double loss = B.dgrams_sent
                      ? 100.0 * (double)(B.dgrams_sent - B.dgrams_back) /
                            (double)B.dgrams_sent
                      : 0;
    double per_sess = (B.rss_before >= 0 && B.rss_after >= 0 && B.sess_open)
                          ? (double)(B.rss_after - B.rss_before) * 1024.0 /
                                (double)B.sess_open
                          : -1;

    if (B.nlat)
        qsort(B.lat, B.nlat, sizeof(*B.lat), cmp_u64);
    if (B.json) {
        printf("{\"mode\":\"%s\",\"conns\":%u,\"sessions_per_conn\":%u,"
               "\"sessions_open\":%u,\"sessions_failed\":%u,"
               "\"setup_s\":%.6f,\"elapsed_s\":%.6f,"
               "\"handshakes_per_s\":%.1f,"
               "\"bytes_sent\":%llu,\"bytes_echoed\":%llu,"
               "\"mbytes_per_s_both\":%.2f,\"streams_done\":%llu,"
               "\"requests\":%llu,\"rps\":%.1f,"
               "\"dgrams_sent\":%llu,\"dgrams_back\":%llu,\"loss_pct\":%.3f,"
               "\"dgram_round_trips_per_s\":%.1f,"
               "\"lat_us\":{\"n\":%zu,\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,"
               "\"max\":%.1f},"
               "\"server_rss_kb_before\":%ld,\"server_rss_kb_after\":%ld,"
               "\"server_rss_bytes_per_session\":%.0f,"
               "\"errors\":%llu,\"mismatches\":%llu,\"first_error\":\"%s\"}\n",
               names[B.mode], B.conns, B.sessions, B.sess_open, B.sess_failed,
               hs, el, hs > 0 ? (double)B.ready / hs : 0,
               (unsigned long long)B.tx, (unsigned long long)B.rx, mbps,
               (unsigned long long)B.streams_done,
               (unsigned long long)B.requests_done, rps,
               (unsigned long long)B.dgrams_sent,
               (unsigned long long)B.dgrams_back, loss, dg_rate, B.nlat, pct(50),
               pct(90), pct(99), pct(100), B.rss_before, B.rss_after,
               per_sess, (unsigned long long)B.errors,
               (unsigned long long)B.mismatches, B.first_error);
        return;
    }
    printf("mode            %s\n", names[B.mode]);
    printf("sessions        %u open, %u failed (%u conns x %u)\n", B.sess_open,
           B.sess_failed, B.conns, B.sessions);
    printf("set-up          %.3f s (%.1f handshakes/s)\n", hs,
           hs > 0 ? (double)B.ready / hs : 0);
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
               pct(50), pct(90), pct(99), pct(100), B.nlat);
    if (per_sess >= 0)
        printf("server RSS      %ld kB -> %ld kB: %.0f bytes per session\n",
               B.rss_before, B.rss_after, per_sess);
    printf("errors          %llu%s%s\n", (unsigned long long)B.errors,
           B.first_error[0] ? ": " : "", B.first_error);
    (void)total;
}

/* ---- arguments ---- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: wtbench [options] https://HOST:PORT/PATH\n"
            "  --mode bulk|rps|datagram|sessions   (default bulk)\n"
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
            "  --hold S        sessions mode: hold the sessions S seconds "
            "(default 1)\n"
            "  --server-pid P  sessions mode: read the server's RSS\n"
            "  -t S   --duration: stop after S seconds (default 60)\n"
            "  --window S      flow-control window per stream (default 1M)\n"
            "  --loss P        drop a fraction P of packets each way (a lossy "
            "path)\n"
            "  --draft 02|07|15, --insecure, --cert-hash HEX, --cafile FILE\n"
            "  --json          the summary as one JSON line\n"
            "  -v              protocol debug log\n");
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
    int rv;

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
    B.rss_before = B.rss_after = -1;
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
        } else if (strcmp(a, "-b") == 0) {
            NUM(B.bytes, 0, 1ULL << 40);
        } else if (strcmp(a, "-n") == 0) {
            NUM(B.requests, 1, 1ULL << 32);
        } else if (strcmp(a, "--size") == 0) {
            NUM(B.size, 1, 65000);
        } else if (strcmp(a, "--rate") == 0) {
            NUM(B.rate, 1, 10000000);
            B.rate_set = 1;
        } else if (strcmp(a, "--inflight") == 0) {
            NUM(B.inflight, 1, 100000);
        } else if (strcmp(a, "--window") == 0) {
            NUM(window, 4096, 1ULL << 30);
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
            if (rv != 2 && rv != 7 && rv != 15) {
                fprintf(stderr, "wtbench: --draft is 02, 07 or 15\n");
                return 2;
            }
            B.co.draft = (enum wt_draft)rv;
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
        } else if (strcmp(a, "-v") == 0) {
            log_level = LOG_LVL_DEBUG;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
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
    B.co.authority = B.url.authority;
    B.co.path = B.url.path;
    hints.ai_socktype = SOCK_DGRAM;
    if ((rv = getaddrinfo(B.url.host, B.url.port, &hints, &B.ai)) != 0) {
        fprintf(stderr, "wtbench: %s: %s\n", B.url.host, gai_strerror(rv));
        return 3;
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
    B.cfg.max_buffer_bytes = window;
    B.cfg.max_connection_buffer_bytes = window * 16;
    B.cfg.max_datagram_queue = 4096;
    B.cfg.idle_timeout_ms = (uint64_t)(B.duration * 1000) + 30000;
    if (!(B.tls = tls_client_ctx_new(&to, err, sizeof(err)))) {
        fprintf(stderr, "wtbench: %s\n", err);
        return 2;
    }
    if (!(B.c = calloc(B.conns, sizeof(*B.c)))) {
        fprintf(stderr, "wtbench: out of memory\n");
        return 2;
    }
    for (unsigned i = 0; i < B.conns; i++)
        if (!(B.c[i].sess = calloc(B.sessions, sizeof(struct bsess)))) {
            fprintf(stderr, "wtbench: out of memory\n");
            return 2;
        }
    B.loop = EV_DEFAULT;
    quic_client_init(&B.ep, B.loop, &B.cfg, B.tls);
    quic_endpoint_set_loss(&B.ep, B.loss, 42);
    /* later connections present the server's NEW_TOKEN, as browsers do */
    B.ep.keep_tokens = 1;
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
    B.rss_before = server_rss_kb();
    B.t_start = now_ns();
    start_conns();
    ev_run(B.loop, 0);
    if (!B.t_end)
        B.t_end = now_ns();
    report();
    /* close everything, outside the callbacks */
    for (unsigned i = 0; i < B.conns; i++)
        if (B.c[i].qc)
            quic_conn_close_app(B.c[i].qc, WIRE_H3_NO_ERROR, NULL);
    quic_endpoint_free(&B.ep);
    tls_ctx_free(B.tls);
    for (unsigned i = 0; i < B.conns; i++)
        free(B.c[i].sess);
    free(B.c);
    free(B.lat);
    freeaddrinfo(B.ai);
    ev_loop_destroy(B.loop);
    return B.errors || B.mismatches || B.sess_open == 0 ? 1 : 0;
}
