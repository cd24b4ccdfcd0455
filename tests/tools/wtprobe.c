/*
 * wtprobe: a WebTransport-over-HTTP/3 test client for wtrelayd.
 *
 *   wtprobe [--timeout S] [--draft 02|07|15] [--insecure] [--ca FILE]
 *           [--verbose] [--no-grease] HOST PORT SCENARIO [ARGS...]
 *
 * One QUIC connection (ngtcp2 + GnuTLS), HTTP/3 through nghttp3 for the
 * request streams and QPACK, and the WebTransport parts by hand: our own
 * control stream with the WebTransport SETTINGS (nghttp3 1.8 cannot send
 * them), the server's control stream parsed here before nghttp3 sees it,
 * WebTransport streams with their 0x41/0x54 prefixes on raw QUIC streams,
 * capsules on the CONNECT stream through an nghttp3 data reader, and HTTP
 * datagrams in QUIC DATAGRAM frames.
 *
 * Diagnostics go to stderr; one result line to stdout.  Exit status: 0 when
 * the scenario's expectation held, 1 when it did not, 2 on a usage error or
 * when no connection could be established.
 *
 * Scenarios (PATH defaults to /echo; every session is an extended CONNECT
 * sent only after the server's SETTINGS arrived):
 *   echo-bidi [PATH] BYTES     bidi stream, BYTES + FIN, echo verified
 *   echo-uni [PATH] BYTES      uni stream; echo on a server-opened uni stream
 *   echo-dgram [PATH] COUNT    datagrams; pass when >= 80% come back intact
 *   streams [PATH] N           N concurrent bidi streams of 1 KiB
 *   status [PATH]              prints "status NNN"
 *   connect-missing authority|path|protocol-value
 *                              bad CONNECT: 4xx/5xx or a reset, then a good
 *                              session on the same connection still echoes
 *   stream-unknown-session [N] N+1 streams naming sessions 4000, 4004, ...:
 *                              one must get WT_BUFFERED_STREAM_REJECTED
 *   stream-closed-session      stream naming a closed session: WT_SESSION_GONE
 *   capsule-truncated [TYPE]   capsule claiming 100 bytes, 10 sent, FIN:
 *                              CONNECT stream reset with H3_MESSAGE_ERROR
 *   capsule-oversized          CLOSE capsule of 5000 bytes: H3_MESSAGE_ERROR
 *   capsule-grease             reserved capsule type ignored
 *   dgram-unknown-session [COUNT]  datagrams for no session dropped silently
 *   close CODE [REASON]        our CLOSE capsule + FIN; the server's FIN back
 *   server-close [PATH] CODE REASON  waits for the server's CLOSE capsule
 *   fc-exceed streams|data     (--draft 14|15 --fc) session A goes past
 *                              the server's session flow-control limits:
 *                              WT_FLOW_CONTROL_ERROR; session B echoes
 *   fc-reset                   (--draft 14|15 --fc-data 1000000: our own
 *                              window lets the echo through) a reset stream counts
 *                              its final size in the session's data
 *   fc-reset-over              (--draft 14|15 --fc-data 1000000) a reset stream whose final
 *                              size alone is past WT_MAX_DATA (one packet of
 *                              it arrived): WT_FLOW_CONTROL_ERROR; B echoes
 *   draft [PATH]               the --draft's SETTINGS id, 200, draft-02
 *                              response header, echo
 *   no-read, reset-loop, stop-sending, sessions, open-streams: flow
 *                              control and limits (see each one's comment)
 * Misbehaving on purpose (the security review's attacks; see each one's
 * comment): capsule-merged, critical-stream, spoof-path, rebind, uni-hoard,
 * early-uni, slot-wait, refused-streams, pending-timeout, adopt-limit,
 * prefix-reset, connect-reset, connect-trailer.
 * Broadcast rooms: bc-relay, bc-listen, bc-send, bc-announce,
 * bc-sender-gone.
 * Scenarios that involve a second session check that it is unaffected.
 *
 * Options for those: --max-data N (our initial_max_data, and no more
 * connection credit until the scenario releases it), --uni-streams N and
 * --uni-window N (the uni streams the server may open, and their credit),
 * --hold-uni (never credit the server's WebTransport uni streams), --bind
 * ADDR (our source address, any of 127.0.0.0/8).
 *
 * Environment: WTPROBE_QUIC_LOG=1 prints ngtcp2's packet log to stderr.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <nghttp3/nghttp3.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>

#include "wire.h"

#define EXIT_PASS 0
#define EXIT_NOPASS 1
#define EXIT_USAGE 2

#define MAX_ECHOES 1024
#define MAX_CAPS 64
#define MAX_SETTINGS 64

/* QPACK/field-section values: what we tell nghttp3 and what our own
 * SETTINGS frame announces must agree. */
#define QPACK_CAPACITY 4096
#define QPACK_BLOCKED 16
#define FIELD_SECTION_MAX 16384

/* ------------------------------------------------------------------ */
/* small helpers */

static bool verbose;

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
    va_list ap;
    fputs("wtprobe: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

#define dbg(...)                                                               \
    do {                                                                       \
        if (verbose)                                                           \
            note(__VA_ARGS__);                                                 \
    } while (0)

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "wtprobe: out of memory\n");
        exit(EXIT_USAGE);
    }
    return p;
}

static void *xcalloc(size_t n, size_t m)
{
    void *p = calloc(n ? n : 1, m ? m : 1);
    if (!p) {
        fprintf(stderr, "wtprobe: out of memory\n");
        exit(EXIT_USAGE);
    }
    return p;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NGTCP2_SECONDS + (uint64_t)ts.tv_nsec;
}

/* Growable byte buffer (for received bytes only: it may move). */
struct bytes {
    uint8_t *p;
    size_t len, cap;
};

static void bytes_append(struct bytes *b, const uint8_t *p, size_t n)
{
    if (n == 0)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *q = realloc(b->p, cap);
        if (!q) {
            fprintf(stderr, "wtprobe: out of memory\n");
            exit(EXIT_USAGE);
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void bytes_consume(struct bytes *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}

static void bytes_free(struct bytes *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* Deterministic pseudo-random payloads (xorshift32). */
static void fill_pattern(uint8_t *p, size_t n, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 0x9e3779b9u;
    if (x == 0)
        x = 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)x;
    }
}

/* ------------------------------------------------------------------ */
/* state */

enum skind {
    SK_UNCLASSIFIED, /* peer stream whose first bytes are still arriving */
    SK_H3,           /* nghttp3's (request streams, QPACK, unknown uni) */
    SK_H3CTRL,       /* the server's control stream: parsed here + nghttp3 */
    SK_OWNCTRL,      /* our control stream (raw) */
    SK_WT,           /* a WebTransport stream (raw) */
    SK_IGNORED,      /* read and dropped */
};

struct session;

struct pstream {
    int64_t id;
    enum skind kind;
    bool bidi, local;
    /* raw send side: `out` is fixed once the stream is opened and is kept
     * until exit (ngtcp2 references unacknowledged bytes). */
    uint8_t *out;
    size_t outlen, outsent;
    size_t prefix_len; /* WebTransport prefix at the start of `out` */
    bool out_fin, fin_sent, blocked, shut_wr;
    /* raw bytes after nghttp3's on a request stream (`out`, once): what
     * nghttp3 wrote comes first; acks past it are not nghttp3's */
    bool rawtx;
    uint64_t h3_sent, acked;
    uint64_t utype; /* a server uni stream's type (first varint) */
    bool h3_gone;   /* stopped on purpose: its end is not nghttp3's news */
    /* while `hold`, received bytes are kept but not credited back */
    bool hold;
    size_t held;
    /* receive side */
    struct bytes pre; /* unclassified peer stream */
    struct bytes in;  /* WebTransport payload (prefix stripped) */
    bool fin_recv;
    uint64_t session_id; /* WebTransport streams */
    bool claimed;        /* matched by an echo check */
    bool reset_recv, stop_recv, closed;
    uint64_t reset_code, stop_code, close_code;
    struct session *sess; /* CONNECT streams */
    struct pstream *next;
};

struct capchunk {
    uint8_t *p;
    size_t len;
};

struct session {
    struct pstream *st;
    int64_t id;
    const char *path;
    bool submitted;
    /* response */
    int status;
    bool headers_done;
    char draft_hdr[64];
    bool end_stream; /* the server's FIN on the CONNECT stream */
    /* capsules we send (kept until exit: nghttp3 references them) */
    struct capchunk caps[MAX_CAPS];
    size_t ncaps, caps_handed;
    bool caps_fin, fin_handed;
    /* capsules we receive */
    struct bytes rx;
    bool close_recv, drain_recv, rx_malformed;
    uint64_t max_data_recv; /* the largest WT_MAX_DATA the server sent */
    uint32_t close_code;
    char close_reason[WIRE_CLOSE_REASON_MAX + 1];
    unsigned other_capsules;
    struct session *next;
};

struct rxdgram {
    uint64_t session_id;
    uint8_t *p;
    size_t len;
    bool malformed;
};

struct echo {
    struct session *s;
    struct pstream *st;
    uint8_t *data;
    size_t len;
    uint32_t seed;
    bool uni;
    int state; /* 0 unopened, 1 open, 2 verified, -1 failed */
    char err[200];
};

struct probe {
    /* options */
    double timeout;
    int draft;
    bool fc; /* --fc: our SETTINGS declare session flow control */
    uint64_t fc_data; /* --fc-data N: ... with this WT_INITIAL_MAX_DATA */
    bool insecure, grease, split_prefix;
    /* fc-reset: once this stream has bytes in a packet, that first packet
     * goes and every later one is dropped (counted), until it is NULL */
    struct pstream *drop_stream;
    unsigned dropped;
    size_t window; /* our initial per-stream receive window; 0 = default */
    uint64_t max_data;   /* --max-data: initial_max_data; 0 = default */
    bool max_data_released; /* ... and no more until this is set */
    int64_t uni_streams; /* --uni-streams: uni streams the server may open */
    int64_t uni_window;  /* --uni-window: credit on each of them */
    const char *bind_addr; /* --bind: our local IPv4 address */
    bool hold_uni;         /* --hold-uni: server WT uni streams get no
                              credit past --uni-window */
    const char *cafile;
    const char *origin; /* "-": none */
    const char *host, *port, *scenario;
    char **args;
    int nargs;
    /* socket */
    int fd;
    struct sockaddr_storage local, remote;
    socklen_t locallen, remotelen;
    struct ev_loop *loop;
    ev_io rev;
    ev_timer qtimer, deadline, tick;
    /* TLS, QUIC, HTTP/3 */
    gnutls_certificate_credentials_t cred;
    gnutls_session_t tls;
    ngtcp2_crypto_conn_ref ref;
    ngtcp2_conn *conn;
    nghttp3_conn *h3;
    bool handshake_done, h3_bound, conn_dead, finished;
    char conn_err[300];
    bool close_app;      /* the server's CONNECTION_CLOSE, when it sent one */
    uint64_t close_code;
    int spoof_fd;        /* spoof-path: another source address */
    size_t spoof_got;    /* packets the server sent there */
    struct pstream *streams, *rr;
    /* the server's control stream */
    struct bytes ctl;
    bool ctl_typed, settings_recv, goaway_recv;
    /* settings-late: our control stream, held back until the step sends it */
    uint8_t late_ctrl[512];
    size_t late_ctrl_len; /* 0: sent, or never held */
    struct wire_setting srv[MAX_SETTINGS];
    size_t nsrv;
    uint64_t goaway_id;
    struct session *sessions;
    /* datagrams */
    struct capchunk *dq;
    size_t dqhead, dqlen, dqcap;
    bool dgram_unsupported;
    struct rxdgram *rxd;
    size_t nrxd, rxdcap;
    /* scenario */
    int phase;
    int result; /* exit status once finished */
    char msg[1024];
    const char *waiting; /* what we are waiting for (for timeouts) */
    uint64_t t_mark;
    struct session *a, *b;
    struct echo echoes[MAX_ECHOES];
    size_t nechoes;
    struct pstream *probe_st;
    size_t counter, counter2;
    char info[512];
    char saved[512]; /* a finding kept for the result line */
    int tries;
};

static void finish(struct probe *p, int result, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

struct scenario {
    const char *name;
    const char *usage;
    int minargs, maxargs;
    void (*step)(struct probe *p);
    void (*timeout)(struct probe *p); /* optional: judge at the deadline */
    /* optional: runs as soon as HTTP/3 is set up, without waiting for the
     * server's SETTINGS */
    bool early;
    /* optional: judges the connection's end (the scenario expects the
     * server to close it) */
    void (*closed)(struct probe *p);
};

static const struct scenario *current;


/* ------------------------------------------------------------------ */
/* streams */

static struct pstream *stream_find(struct probe *p, int64_t id)
{
    for (struct pstream *st = p->streams; st; st = st->next)
        if (st->id == id)
            return st;
    return NULL;
}

static struct pstream *stream_new(struct probe *p, int64_t id, enum skind kind)
{
    struct pstream *st = xcalloc(1, sizeof(*st));
    st->id = id;
    st->kind = kind;
    st->bidi = ngtcp2_is_bidi_stream(id);
    st->local = ngtcp2_conn_is_local_stream(p->conn, id);
    /* in creation order, so that round-robin sending opens them in order */
    struct pstream **pp = &p->streams;
    while (*pp)
        pp = &(*pp)->next;
    *pp = st;
    return st;
}

static void extend_credit(struct probe *p, int64_t id, size_t n)
{
    if (n == 0)
        return;
    ngtcp2_conn_extend_max_stream_offset(p->conn, id, n);
    /* --max-data: the server gets no more connection credit than that
     * until the scenario says so */
    if (!p->max_data || p->max_data_released)
        ngtcp2_conn_extend_max_offset(p->conn, n);
}

/* Opens a raw QUIC stream carrying `out` (ownership taken).  NULL while the
 * server's stream limit is reached. */
static struct pstream *open_raw(struct probe *p, bool bidi, enum skind kind,
                                uint8_t *out, size_t outlen, bool fin)
{
    int64_t id;
    int rv = bidi ? ngtcp2_conn_open_bidi_stream(p->conn, &id, NULL)
                  : ngtcp2_conn_open_uni_stream(p->conn, &id, NULL);
    if (rv == NGTCP2_ERR_STREAM_ID_BLOCKED)
        return NULL;
    if (rv != 0) {
        note("ngtcp2_conn_open_%s_stream: %s", bidi ? "bidi" : "uni",
             ngtcp2_strerror(rv));
        return NULL;
    }
    struct pstream *st = stream_new(p, id, kind);
    st->out = out;
    st->outlen = outlen;
    st->out_fin = fin;
    return st;
}

/* A WebTransport stream of `session_id`: prefix + payload (+ FIN). */
static struct pstream *wt_open(struct probe *p, uint64_t session_id, bool bidi,
                               const uint8_t *data, size_t len, bool fin)
{
    uint8_t pre[32];
    ssize_t n = wire_stream_prefix_encode(pre, sizeof(pre), bidi, session_id);
    if (n <= 0) {
        note("wire_stream_prefix_encode failed (%zd)", n);
        return NULL;
    }
    uint8_t *out = xmalloc((size_t)n + len);
    memcpy(out, pre, (size_t)n);
    if (len)
        memcpy(out + n, data, len);
    struct pstream *st = open_raw(p, bidi, SK_WT, out, (size_t)n + len, fin);
    if (!st) {
        free(out);
        return NULL;
    }
    st->session_id = session_id;
    st->prefix_len = (size_t)n;
    dbg("opened %s WebTransport stream %" PRId64 " for session %" PRIu64
        " (%zu bytes%s)",
        bidi ? "bidi" : "uni", st->id, session_id, len, fin ? " + FIN" : "");
    return st;
}

static const char *stream_fate(const struct pstream *st, char *buf, size_t cap)
{
    if (st->reset_recv && st->stop_recv)
        snprintf(buf, cap,
                 "RESET_STREAM 0x%" PRIx64 " + STOP_SENDING 0x%" PRIx64,
                 st->reset_code, st->stop_code);
    else if (st->reset_recv)
        snprintf(buf, cap, "RESET_STREAM 0x%" PRIx64, st->reset_code);
    else if (st->stop_recv)
        snprintf(buf, cap, "STOP_SENDING 0x%" PRIx64, st->stop_code);
    else if (st->fin_recv)
        snprintf(buf, cap, "FIN");
    else
        snprintf(buf, cap, "nothing");
    return buf;
}

/* ------------------------------------------------------------------ */
/* the server's control stream */

static const char *setting_name(uint64_t id)
{
    switch (id) {
    case WIRE_SETTING_QPACK_MAX_TABLE_CAPACITY:
        return "QPACK_MAX_TABLE_CAPACITY";
    case WIRE_SETTING_MAX_FIELD_SECTION_SIZE:
        return "MAX_FIELD_SECTION_SIZE";
    case WIRE_SETTING_QPACK_BLOCKED_STREAMS:
        return "QPACK_BLOCKED_STREAMS";
    case WIRE_SETTING_ENABLE_CONNECT_PROTOCOL:
        return "ENABLE_CONNECT_PROTOCOL";
    case WIRE_SETTING_H3_DATAGRAM:
        return "H3_DATAGRAM";
    case WIRE_SETTING_H3_DATAGRAM_DRAFT04:
        return "H3_DATAGRAM_DRAFT04";
    case WIRE_SETTING_ENABLE_WEBTRANSPORT:
        return "ENABLE_WEBTRANSPORT";
    case WIRE_SETTING_WT_MAX_SESSIONS_D07:
        return "WEBTRANSPORT_MAX_SESSIONS";
    case WIRE_SETTING_WT_MAX_SESSIONS_D13:
        return "WT_MAX_SESSIONS";
    case WIRE_SETTING_WT_ENABLED:
        return "WT_ENABLED";
    case WIRE_SETTING_WT_INITIAL_MAX_DATA:
        return "WT_INITIAL_MAX_DATA";
    case WIRE_SETTING_WT_INITIAL_MAX_STREAMS_UNI:
        return "WT_INITIAL_MAX_STREAMS_UNI";
    case WIRE_SETTING_WT_INITIAL_MAX_STREAMS_BIDI:
        return "WT_INITIAL_MAX_STREAMS_BIDI";
    }
    if (id >= 0x21 && (id - 0x21) % 0x1f == 0)
        return "GREASE";
    return "?";
}

static bool srv_setting(const struct probe *p, uint64_t id, uint64_t *value)
{
    for (size_t i = 0; i < p->nsrv; i++)
        if (p->srv[i].id == id) {
            if (value)
                *value = p->srv[i].value;
            return true;
        }
    return false;
}

/* Our own reading of the server's control stream (nghttp3 reads it too). */
static void ctl_parse(struct probe *p, const uint8_t *data, size_t len)
{
    bytes_append(&p->ctl, data, len);
    for (;;) {
        if (!p->ctl_typed) {
            uint64_t type;
            ssize_t n = wire_varint_decode(p->ctl.p, p->ctl.len, &type);
            if (n <= 0)
                return;
            p->ctl_typed = true;
            bytes_consume(&p->ctl, (size_t)n);
            continue;
        }
        uint64_t type, flen;
        ssize_t n =
            wire_frame_header_decode(p->ctl.p, p->ctl.len, &type, &flen);
        if (n == WIRE_ERR_SHORT)
            return;
        if (n < 0) {
            note("server control stream: malformed frame header");
            p->ctl.len = 0;
            return;
        }
        if (p->ctl.len - (size_t)n < flen)
            return;
        const uint8_t *pl = p->ctl.p + n;
        if (type == WIRE_H3_FRAME_SETTINGS) {
            size_t count = 0;
            ssize_t r = wire_settings_decode(pl, (size_t)flen, p->srv,
                                             MAX_SETTINGS, &count);
            if (r < 0) {
                note("server SETTINGS frame: malformed (%zd)", r);
            } else {
                if (p->settings_recv)
                    note("server sent a second SETTINGS frame");
                p->settings_recv = true;
                p->nsrv = count < MAX_SETTINGS ? count : MAX_SETTINGS;
                for (size_t i = 0; i < p->nsrv; i++)
                    dbg("server setting 0x%" PRIx64 " (%s) = %" PRIu64,
                        p->srv[i].id, setting_name(p->srv[i].id),
                        p->srv[i].value);
            }
        } else if (type == WIRE_H3_FRAME_GOAWAY) {
            uint64_t gid = 0;
            wire_varint_decode(pl, (size_t)flen, &gid);
            p->goaway_recv = true;
            p->goaway_id = gid;
            note("server sent GOAWAY %" PRIu64, gid);
        } else {
            dbg("server control stream: frame type 0x%" PRIx64 " (%" PRIu64
                " bytes)",
                type, flen);
        }
        bytes_consume(&p->ctl, (size_t)n + (size_t)flen);
    }
}

/* ------------------------------------------------------------------ */
/* capsules */

static void capsules_parse(struct probe *p, struct session *s)
{
    (void)p;
    for (;;) {
        uint64_t type, clen;
        ssize_t n =
            wire_capsule_header_decode(s->rx.p, s->rx.len, &type, &clen);
        if (n == WIRE_ERR_SHORT)
            return;
        if (n < 0) {
            note("session %" PRId64 ": malformed capsule header", s->id);
            s->rx_malformed = true;
            s->rx.len = 0;
            return;
        }
        if (s->rx.len - (size_t)n < clen)
            return;
        const uint8_t *v = s->rx.p + n;
        if (type == WIRE_CAPSULE_CLOSE_SESSION) {
            uint32_t code = 0;
            const char *reason = NULL;
            size_t rlen = 0;
            if (wire_close_capsule_decode(v, (size_t)clen, &code, &reason,
                                          &rlen) < 0) {
                note("session %" PRId64 ": malformed CLOSE capsule (%" PRIu64
                     " bytes)",
                     s->id, clen);
                s->rx_malformed = true;
            } else {
                s->close_recv = true;
                s->close_code = code;
                if (rlen > WIRE_CLOSE_REASON_MAX)
                    rlen = WIRE_CLOSE_REASON_MAX;
                memcpy(s->close_reason, reason, rlen);
                s->close_reason[rlen] = 0;
                note("session %" PRId64
                     ": CLOSE_WEBTRANSPORT_SESSION code %" PRIu32
                     " reason \"%s\"",
                     s->id, code, s->close_reason);
            }
        } else if (type == WIRE_CAPSULE_WT_MAX_DATA) {
            uint64_t m = 0;
            if (wire_varint_decode(v, (size_t)clen, &m) == (ssize_t)clen &&
                m > s->max_data_recv)
                s->max_data_recv = m;
            s->other_capsules++;
        } else if (type == WIRE_CAPSULE_DRAIN_SESSION) {
            s->drain_recv = true;
            note("session %" PRId64 ": DRAIN_WEBTRANSPORT_SESSION", s->id);
        } else {
            s->other_capsules++;
            dbg("session %" PRId64 ": capsule type 0x%" PRIx64 " (%" PRIu64
                " bytes)",
                s->id, type, clen);
        }
        bytes_consume(&s->rx, (size_t)n + (size_t)clen);
    }
}

/* Queues bytes for the CONNECT stream's DATA (copied). */
static void session_send_raw(struct probe *p, struct session *s,
                             const uint8_t *data, size_t len, bool fin)
{
    if (s->caps_fin) {
        note("session %" PRId64 ": capsule after FIN dropped", s->id);
        return;
    }
    if (len) {
        if (s->ncaps == MAX_CAPS) {
            note("session %" PRId64 ": too many capsules queued", s->id);
            return;
        }
        uint8_t *c = xmalloc(len);
        memcpy(c, data, len);
        s->caps[s->ncaps].p = c;
        s->caps[s->ncaps].len = len;
        s->ncaps++;
    }
    if (fin)
        s->caps_fin = true;
    if (s->submitted)
        nghttp3_conn_resume_stream(p->h3, s->id);
}

static void session_send_close(struct probe *p, struct session *s,
                               uint32_t code, const char *reason)
{
    uint8_t buf[16 + WIRE_CLOSE_REASON_MAX];
    ssize_t n = wire_close_capsule_encode(buf, sizeof(buf), code, reason,
                                          strlen(reason));
    if (n <= 0) {
        note("wire_close_capsule_encode failed (%zd)", n);
        return;
    }
    note("session %" PRId64 ": sending CLOSE code %" PRIu32
         " reason \"%s\" + FIN",
         s->id, code, reason);
    session_send_raw(p, s, buf, (size_t)n, true);
}

/* Capsule header (type, length) + `vlen` bytes of value (pattern). */
static void session_send_capsule(struct probe *p, struct session *s,
                                 uint64_t type, uint64_t claimed_len,
                                 size_t vlen, bool fin)
{
    uint8_t *buf = xmalloc(32 + vlen);
    ssize_t a = wire_varint_encode(buf, 16, type);
    ssize_t b = a > 0 ? wire_varint_encode(buf + a, 16, claimed_len) : -1;
    if (a <= 0 || b <= 0) {
        note("varint encode failed");
        free(buf);
        return;
    }
    fill_pattern(buf + a + b, vlen, 77);
    session_send_raw(p, s, buf, (size_t)(a + b) + vlen, fin);
    free(buf);
}

/* Appends one HTTP/3 frame (type, length, payload) at b; returns its size. */
static size_t frame_put(uint8_t *b, uint64_t type, const uint8_t *pl,
                        size_t n)
{
    ssize_t a = wire_varint_encode(b, 8, type);
    ssize_t c = wire_varint_encode(b + a, 8, n);
    memcpy(b + a + c, pl, n);
    return (size_t)(a + c) + n;
}

/* Raw HTTP/3 frames on a session's request stream after what nghttp3 wrote
 * (ownership of `out` taken; once per session, and nghttp3 writes nothing
 * there afterwards).  Lets a test put several frames in one STREAM frame,
 * or frames nghttp3 would never write. */
static void session_send_frames(struct probe *p, struct session *s,
                                uint8_t *out, size_t len, bool fin)
{
    struct pstream *st = s->st;
    (void)p;
    if (st->rawtx) {
        note("session %" PRId64 ": raw frames already sent", s->id);
        free(out);
        return;
    }
    st->rawtx = true;
    st->out = out;
    st->outlen = len;
    st->outsent = 0;
    st->out_fin = fin;
}

static nghttp3_ssize read_caps(nghttp3_conn *conn, int64_t stream_id,
                               nghttp3_vec *vec, size_t veccnt,
                               uint32_t *pflags, void *ud, void *sud)
{
    struct session *s = sud;
    size_t n = 0;
    (void)conn;
    (void)stream_id;
    (void)ud;
    if (!s)
        return NGHTTP3_ERR_WOULDBLOCK;
    while (n < veccnt && s->caps_handed < s->ncaps) {
        vec[n].base = s->caps[s->caps_handed].p;
        vec[n].len = s->caps[s->caps_handed].len;
        n++;
        s->caps_handed++;
    }
    if (s->caps_handed == s->ncaps && s->caps_fin && !s->fin_handed) {
        *pflags |= NGHTTP3_DATA_FLAG_EOF;
        s->fin_handed = true;
        return (nghttp3_ssize)n;
    }
    if (n == 0)
        return NGHTTP3_ERR_WOULDBLOCK;
    return (nghttp3_ssize)n;
}

/* ------------------------------------------------------------------ */
/* sessions */

enum req_variant {
    REQ_NORMAL,
    REQ_NO_AUTHORITY,
    REQ_NO_PATH,
    REQ_BOGUS_PROTOCOL,
};

static nghttp3_nv mknv(const char *name, const char *value)
{
    nghttp3_nv nv;
    nv.name = (uint8_t *)(uintptr_t)name;
    nv.namelen = strlen(name);
    nv.value = (uint8_t *)(uintptr_t)value;
    nv.valuelen = strlen(value);
    nv.flags = NGHTTP3_NV_FLAG_NONE;
    return nv;
}

static struct session *session_open(struct probe *p, const char *path,
                                    enum req_variant variant)
{
    int64_t id;
    int rv = ngtcp2_conn_open_bidi_stream(p->conn, &id, NULL);
    if (rv != 0) {
        note("cannot open a request stream: %s", ngtcp2_strerror(rv));
        return NULL;
    }
    struct session *s = xcalloc(1, sizeof(*s));
    s->id = id;
    s->path = path;
    s->st = stream_new(p, id, SK_H3);
    s->st->sess = s;
    s->next = p->sessions;
    p->sessions = s;

    char authority[300];
    snprintf(authority, sizeof(authority), "localhost:%s", p->port);
    const char *proto = p->draft == 15 ? "webtransport-h3" : "webtransport";
    if (variant == REQ_BOGUS_PROTOCOL)
        proto = "bogus";
    nghttp3_nv nva[8];
    size_t n = 0;
    nva[n++] = mknv(":method", "CONNECT");
    nva[n++] = mknv(":protocol", proto);
    nva[n++] = mknv(":scheme", "https");
    if (variant != REQ_NO_AUTHORITY)
        nva[n++] = mknv(":authority", authority);
    if (variant != REQ_NO_PATH)
        nva[n++] = mknv(":path", path);
    if (strcmp(p->origin, "-") != 0)
        nva[n++] = mknv("origin", p->origin);
    if (p->draft == 2)
        nva[n++] = mknv("sec-webtransport-http3-draft02", "1");
    static const nghttp3_data_reader dr = {.read_data = read_caps};
    rv = nghttp3_conn_submit_request(p->h3, id, nva, n, &dr, s);
    if (rv != 0) {
        note("nghttp3_conn_submit_request: %s", nghttp3_strerror(rv));
        return NULL;
    }
    s->submitted = true;
    note("session %" PRId64 ": CONNECT %s (:protocol %s%s%s)", id, path, proto,
         variant == REQ_NO_AUTHORITY ? ", no :authority" : "",
         variant == REQ_NO_PATH ? ", no :path" : "");
    return s;
}

/* 1 = accepted (2xx), 0 = pending, -1 = rejected/failed (p->info says how). */
static int session_ready(struct probe *p, struct session *s)
{
    char f[128];
    if (!s) {
        snprintf(p->info, sizeof(p->info), "could not open a request stream");
        return -1;
    }
    if (s->headers_done && s->status) {
        if (s->status >= 200 && s->status < 300)
            return 1;
        snprintf(p->info, sizeof(p->info), "status %d", s->status);
        return -1;
    }
    if (s->st->reset_recv || s->st->stop_recv) {
        snprintf(p->info, sizeof(p->info), "CONNECT stream got %s",
                 stream_fate(s->st, f, sizeof(f)));
        return -1;
    }
    if (s->end_stream) {
        snprintf(p->info, sizeof(p->info),
                 "CONNECT stream ended without a response");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* datagrams */

static void dgram_send(struct probe *p, uint64_t session_id,
                       const uint8_t *data, size_t len)
{
    uint8_t hdr[16];
    ssize_t n = wire_datagram_header_encode(hdr, sizeof(hdr), session_id);
    if (n <= 0) {
        note("wire_datagram_header_encode(%" PRIu64 ") failed (%zd)",
             session_id, n);
        return;
    }
    if (p->dqlen == p->dqcap) {
        size_t cap = p->dqcap ? p->dqcap * 2 : 64;
        struct capchunk *q = xcalloc(cap, sizeof(*q));
        for (size_t i = 0; i < p->dqlen; i++)
            q[i] = p->dq[(p->dqhead + i) % p->dqcap];
        free(p->dq);
        p->dq = q;
        p->dqcap = cap;
        p->dqhead = 0;
    }
    uint8_t *d = xmalloc((size_t)n + len);
    memcpy(d, hdr, (size_t)n);
    if (len)
        memcpy(d + n, data, len);
    struct capchunk *c = &p->dq[(p->dqhead + p->dqlen) % p->dqcap];
    c->p = d;
    c->len = (size_t)n + len;
    p->dqlen++;
}

static void dgram_pop(struct probe *p)
{
    free(p->dq[p->dqhead].p);
    p->dqhead = (p->dqhead + 1) % p->dqcap;
    p->dqlen--;
}

/* ------------------------------------------------------------------ */
/* echo checks */

static void echo_init(struct echo *e, struct session *s, size_t len,
                      uint32_t seed, bool uni)
{
    memset(e, 0, sizeof(*e));
    e->s = s;
    e->len = len;
    e->seed = seed;
    e->uni = uni;
    e->data = xmalloc(len);
    fill_pattern(e->data, len, seed);
}

static bool echo_compare(struct echo *e, const struct bytes *got)
{
    if (got->len != e->len) {
        size_t m = got->len < e->len ? got->len : e->len;
        size_t i = 0;
        while (i < m && got->p[i] == e->data[i])
            i++;
        snprintf(e->err, sizeof(e->err),
                 "stream %" PRId64 ": echoed %zu bytes, sent %zu (first %zu "
                 "match)",
                 e->st->id, got->len, e->len, i);
        return false;
    }
    if (e->len && memcmp(got->p, e->data, e->len) != 0) {
        size_t i = 0;
        while (got->p[i] == e->data[i])
            i++;
        snprintf(e->err, sizeof(e->err),
                 "stream %" PRId64 ": echo differs at byte %zu of %zu",
                 e->st->id, i, e->len);
        return false;
    }
    return true;
}

/* 0 pending, 1 verified, -1 failed (e->err). */
static int echo_poll(struct probe *p, struct echo *e)
{
    char f[128];
    if (e->state == 0) {
        e->st = wt_open(p, (uint64_t)e->s->id, !e->uni, e->data, e->len, true);
        if (!e->st)
            return 0; /* stream limit: try again later */
        e->state = 1;
    }
    if (e->state != 1)
        return e->state > 0 ? 1 : -1;
    struct pstream *st = e->st;
    if (st->reset_recv || st->stop_recv) {
        snprintf(e->err, sizeof(e->err), "stream %" PRId64 " got %s", st->id,
                 stream_fate(st, f, sizeof(f)));
        e->state = -1;
        return -1;
    }
    if (!e->uni) {
        if (!st->fin_recv)
            return 0;
        if (!echo_compare(e, &st->in)) {
            e->state = -1;
            return -1;
        }
        e->state = 2;
        return 1;
    }
    for (struct pstream *r = p->streams; r; r = r->next) {
        if (r->local || r->bidi || r->kind != SK_WT || r->claimed ||
            r->session_id != (uint64_t)e->s->id)
            continue;
        if (r->reset_recv) {
            r->claimed = true;
            snprintf(e->err, sizeof(e->err),
                     "server uni stream %" PRId64 " got %s", r->id,
                     stream_fate(r, f, sizeof(f)));
            e->state = -1;
            return -1;
        }
        if (!r->fin_recv)
            continue;
        r->claimed = true;
        struct pstream *mine = e->st;
        e->st = r; /* for the messages */
        bool ok = echo_compare(e, &r->in);
        e->st = mine;
        if (!ok) {
            e->state = -1;
            return -1;
        }
        dbg("uni echo arrived on server stream %" PRId64, r->id);
        e->state = 2;
        return 1;
    }
    return 0;
}

static struct echo *echo_start(struct probe *p, struct session *s, size_t len,
                               uint32_t seed, bool uni)
{
    if (p->nechoes == MAX_ECHOES)
        return NULL;
    struct echo *e = &p->echoes[p->nechoes++];
    echo_init(e, s, len, seed, uni);
    return e;
}

/* ------------------------------------------------------------------ */
/* ngtcp2 callbacks */

static int on_recv_stream_data(ngtcp2_conn *conn, uint32_t flags,
                               int64_t stream_id, uint64_t offset,
                               const uint8_t *data, size_t datalen, void *ud,
                               void *sud);

static int feed_h3(struct probe *p, int64_t id, const uint8_t *data, size_t len,
                   bool fin)
{
    nghttp3_ssize n = nghttp3_conn_read_stream(p->h3, id, data, len, fin);
    if (n < 0) {
        note("nghttp3_conn_read_stream(stream %" PRId64 "): %s", id,
             nghttp3_strerror((int)n));
        snprintf(p->conn_err, sizeof(p->conn_err),
                 "our HTTP/3 layer rejected stream %" PRId64 ": %s", id,
                 nghttp3_strerror((int)n));
        return -1;
    }
    extend_credit(p, id, (size_t)n);
    return 0;
}

static int stream_input(struct probe *p, struct pstream *st,
                        const uint8_t *data, size_t len, bool fin)
{
    switch (st->kind) {
    case SK_H3:
        return feed_h3(p, st->id, data, len, fin);
    case SK_H3CTRL:
        ctl_parse(p, data, len);
        if (fin)
            note("server closed its control stream");
        return feed_h3(p, st->id, data, len, fin);
    case SK_WT:
        bytes_append(&st->in, data, len);
        if (st->hold)
            st->held += len;
        else
            extend_credit(p, st->id, len);
        if (fin)
            st->fin_recv = true;
        return 0;
    case SK_IGNORED:
    case SK_OWNCTRL:
        extend_credit(p, st->id, len);
        return 0;
    case SK_UNCLASSIFIED:
        break;
    }
    bytes_append(&st->pre, data, len);
    enum wire_stream_kind kind;
    uint64_t sid = 0, first = 0;
    ssize_t n = wire_stream_prefix_decode(st->pre.p, st->pre.len, st->bidi,
                                          &kind, &sid, &first);
    if (n == WIRE_ERR_SHORT) {
        if (fin) {
            note("server stream %" PRId64
                 " ended inside its prefix (%zu bytes)",
                 st->id, st->pre.len);
            st->kind = SK_IGNORED;
            st->fin_recv = true;
            extend_credit(p, st->id, st->pre.len);
            bytes_free(&st->pre);
        }
        return 0;
    }
    if (n < 0) {
        note("server stream %" PRId64 ": malformed prefix", st->id);
        st->kind = SK_IGNORED;
        extend_credit(p, st->id, st->pre.len);
        bytes_free(&st->pre);
        return 0;
    }
    struct bytes pre = st->pre;
    memset(&st->pre, 0, sizeof(st->pre));
    int rv = 0;
    if (kind == WIRE_STREAM_WT) {
        st->kind = SK_WT;
        st->session_id = sid;
        dbg("server opened %s WebTransport stream %" PRId64
            " for session %" PRIu64,
            st->bidi ? "bidi" : "uni", st->id, sid);
        bytes_append(&st->in, pre.p + n, pre.len - (size_t)n);
        if (p->hold_uni && !st->bidi) {
            st->hold = true; /* --hold-uni: never read */
            st->held += pre.len;
        } else {
            extend_credit(p, st->id, pre.len);
        }
        if (fin)
            st->fin_recv = true;
    } else if (!st->bidi) {
        st->utype = first;
        if (first == WIRE_H3_STREAM_CONTROL) {
            st->kind = SK_H3CTRL;
            dbg("server control stream is %" PRId64, st->id);
            ctl_parse(p, pre.p, pre.len);
        } else {
            st->kind = SK_H3;
            dbg("server uni stream %" PRId64 " type 0x%" PRIx64 " -> nghttp3",
                st->id, first);
        }
        rv = feed_h3(p, st->id, pre.p, pre.len, fin);
    } else {
        note("server opened bidi stream %" PRId64 " that is not WebTransport "
             "(first varint 0x%" PRIx64 ")",
             st->id, first);
        st->kind = SK_IGNORED;
        extend_credit(p, st->id, pre.len);
    }
    bytes_free(&pre);
    return rv;
}

static int on_recv_stream_data(ngtcp2_conn *conn, uint32_t flags,
                               int64_t stream_id, uint64_t offset,
                               const uint8_t *data, size_t datalen, void *ud,
                               void *sud)
{
    struct probe *p = ud;
    (void)conn;
    (void)offset;
    (void)sud;
    struct pstream *st = stream_find(p, stream_id);
    if (!st) {
        if (ngtcp2_conn_is_local_stream(p->conn, stream_id)) {
            note("data on unknown local stream %" PRId64, stream_id);
            return 0;
        }
        st = stream_new(p, stream_id, SK_UNCLASSIFIED);
    }
    if (stream_input(p, st, data, datalen,
                     (flags & NGTCP2_STREAM_DATA_FLAG_FIN) != 0) != 0)
        return NGTCP2_ERR_CALLBACK_FAILURE;
    return 0;
}

static int on_acked_stream_data_offset(ngtcp2_conn *conn, int64_t stream_id,
                                       uint64_t offset, uint64_t datalen,
                                       void *ud, void *sud)
{
    struct probe *p = ud;
    (void)conn;
    (void)sud;
    struct pstream *st = stream_find(p, stream_id);
    if (st)
        st->acked += datalen;
    if (st && st->kind == SK_H3 && st->rawtx) {
        /* nghttp3 hears only of the bytes it wrote */
        uint64_t end = offset + datalen;
        datalen = end <= st->h3_sent ? datalen
                  : offset >= st->h3_sent ? 0
                                          : st->h3_sent - offset;
    }
    if (st && st->kind == SK_H3 && datalen) {
        int rv = nghttp3_conn_add_ack_offset(p->h3, stream_id, datalen);
        if (rv != 0) {
            note("nghttp3_conn_add_ack_offset: %s", nghttp3_strerror(rv));
            return NGTCP2_ERR_CALLBACK_FAILURE;
        }
    }
    return 0;
}

static int on_stream_close(ngtcp2_conn *conn, uint32_t flags, int64_t stream_id,
                           uint64_t app_error_code, void *ud, void *sud)
{
    struct probe *p = ud;
    (void)sud;
    struct pstream *st = stream_find(p, stream_id);
    if (!(flags & NGTCP2_STREAM_CLOSE_FLAG_APP_ERROR_CODE_SET))
        app_error_code = NGHTTP3_H3_NO_ERROR;
    if (st) {
        st->closed = true;
        st->close_code = app_error_code;
        st->shut_wr = true;
    }
    dbg("stream %" PRId64 " closed (0x%" PRIx64 ")", stream_id, app_error_code);
    bool h3 = st && (st->kind == SK_H3 || st->kind == SK_H3CTRL) &&
              !st->h3_gone;
    if (h3) {
        int rv = nghttp3_conn_close_stream(p->h3, stream_id, app_error_code);
        if (rv != 0 && rv != NGHTTP3_ERR_STREAM_NOT_FOUND) {
            note("nghttp3_conn_close_stream: %s", nghttp3_strerror(rv));
            return NGTCP2_ERR_CALLBACK_FAILURE;
        }
        /* nghttp3's stream_close callback returns the uni credit */
        if (rv == NGHTTP3_ERR_STREAM_NOT_FOUND &&
            !ngtcp2_conn_is_local_stream(conn, stream_id) &&
            !ngtcp2_is_bidi_stream(stream_id))
            ngtcp2_conn_extend_max_streams_uni(conn, 1);
    } else if (!ngtcp2_conn_is_local_stream(conn, stream_id)) {
        if (ngtcp2_is_bidi_stream(stream_id))
            ngtcp2_conn_extend_max_streams_bidi(conn, 1);
        else
            ngtcp2_conn_extend_max_streams_uni(conn, 1);
    }
    return 0;
}

static int on_stream_reset(ngtcp2_conn *conn, int64_t stream_id,
                           uint64_t final_size, uint64_t app_error_code,
                           void *ud, void *sud)
{
    struct probe *p = ud;
    (void)conn;
    (void)final_size;
    (void)sud;
    struct pstream *st = stream_find(p, stream_id);
    note("stream %" PRId64 ": RESET_STREAM from server, code 0x%" PRIx64,
         stream_id, app_error_code);
    if (!st)
        st = stream_new(p, stream_id, SK_IGNORED);
    st->reset_recv = true;
    st->reset_code = app_error_code;
    if (st->kind == SK_H3 || st->kind == SK_H3CTRL) {
        int rv = nghttp3_conn_shutdown_stream_read(p->h3, stream_id);
        if (rv != 0 && rv != NGHTTP3_ERR_STREAM_NOT_FOUND) {
            note("nghttp3_conn_shutdown_stream_read: %s", nghttp3_strerror(rv));
            return NGTCP2_ERR_CALLBACK_FAILURE;
        }
    }
    return 0;
}

/* ngtcp2 reports here our own STOP_SENDING, not the server's: ngtcp2 1.11
 * has no callback for a received one (we notice it as SHUT_WR on write). */
static int on_stream_stop_sending(ngtcp2_conn *conn, int64_t stream_id,
                                  uint64_t app_error_code, void *ud, void *sud)
{
    (void)conn;
    (void)ud;
    (void)sud;
    dbg("stream %" PRId64 ": we stop reading it, code 0x%" PRIx64, stream_id,
        app_error_code);
    return 0;
}

static int on_extend_max_stream_data(ngtcp2_conn *conn, int64_t stream_id,
                                     uint64_t max_data, void *ud, void *sud)
{
    struct probe *p = ud;
    (void)conn;
    (void)max_data;
    (void)sud;
    struct pstream *st = stream_find(p, stream_id);
    if (!st)
        return 0;
    if (st->kind == SK_H3) {
        int rv = nghttp3_conn_unblock_stream(p->h3, stream_id);
        if (rv != 0 && rv != NGHTTP3_ERR_STREAM_NOT_FOUND) {
            note("nghttp3_conn_unblock_stream: %s", nghttp3_strerror(rv));
            return NGTCP2_ERR_CALLBACK_FAILURE;
        }
    } else {
        st->blocked = false;
    }
    return 0;
}

static int on_recv_datagram(ngtcp2_conn *conn, uint32_t flags,
                            const uint8_t *data, size_t datalen, void *ud)
{
    struct probe *p = ud;
    (void)conn;
    (void)flags;
    if (p->nrxd == p->rxdcap) {
        size_t cap = p->rxdcap ? p->rxdcap * 2 : 64;
        struct rxdgram *q = realloc(p->rxd, cap * sizeof(*q));
        if (!q)
            return NGTCP2_ERR_CALLBACK_FAILURE;
        p->rxd = q;
        p->rxdcap = cap;
    }
    struct rxdgram *d = &p->rxd[p->nrxd++];
    memset(d, 0, sizeof(*d));
    uint64_t sid = 0;
    ssize_t n = wire_datagram_decode(data, datalen, &sid);
    if (n < 0) {
        d->malformed = true;
        note("malformed datagram (%zu bytes)", datalen);
        return 0;
    }
    d->session_id = sid;
    d->len = datalen - (size_t)n;
    d->p = xmalloc(d->len);
    memcpy(d->p, data + n, d->len);
    dbg("datagram for session %" PRIu64 " (%zu bytes)", sid, d->len);
    return 0;
}

static int on_handshake_completed(ngtcp2_conn *conn, void *ud)
{
    struct probe *p = ud;
    (void)conn;
    p->handshake_done = true;
    dbg("handshake completed");
    return 0;
}

static void rand_cb(uint8_t *dest, size_t destlen, const ngtcp2_rand_ctx *ctx)
{
    (void)ctx;
    (void)gnutls_rnd(GNUTLS_RND_RANDOM, dest, destlen);
}

static int get_new_connection_id_cb(ngtcp2_conn *conn, ngtcp2_cid *cid,
                                    uint8_t *token, size_t cidlen, void *ud)
{
    (void)conn;
    (void)ud;
    if (gnutls_rnd(GNUTLS_RND_RANDOM, cid->data, cidlen) != 0)
        return NGTCP2_ERR_CALLBACK_FAILURE;
    cid->datalen = cidlen;
    if (gnutls_rnd(GNUTLS_RND_RANDOM, token, NGTCP2_STATELESS_RESET_TOKENLEN) !=
        0)
        return NGTCP2_ERR_CALLBACK_FAILURE;
    return 0;
}

static void quic_log(void *ud, const char *fmt, ...)
{
    va_list ap;
    (void)ud;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* ------------------------------------------------------------------ */
/* nghttp3 callbacks */

static int h3_acked_stream_data(nghttp3_conn *conn, int64_t stream_id,
                                uint64_t datalen, void *ud, void *sud)
{
    (void)conn;
    (void)stream_id;
    (void)datalen;
    (void)ud;
    (void)sud;
    return 0; /* capsule chunks live until exit */
}

static int h3_stream_close(nghttp3_conn *conn, int64_t stream_id,
                           uint64_t app_error_code, void *ud, void *sud)
{
    struct probe *p = ud;
    (void)conn;
    (void)sud;
    dbg("HTTP/3 stream %" PRId64 " closed (0x%" PRIx64 ")", stream_id,
        app_error_code);
    if (!ngtcp2_is_bidi_stream(stream_id) &&
        !ngtcp2_conn_is_local_stream(p->conn, stream_id))
        ngtcp2_conn_extend_max_streams_uni(p->conn, 1);
    return 0;
}

static int h3_recv_data(nghttp3_conn *conn, int64_t stream_id,
                        const uint8_t *data, size_t datalen, void *ud,
                        void *sud)
{
    struct probe *p = ud;
    struct session *s = sud;
    (void)conn;
    extend_credit(p, stream_id, datalen);
    if (!s)
        return 0;
    bytes_append(&s->rx, data, datalen);
    capsules_parse(p, s);
    return 0;
}

static int h3_deferred_consume(nghttp3_conn *conn, int64_t stream_id,
                               size_t consumed, void *ud, void *sud)
{
    (void)conn;
    (void)sud;
    extend_credit(ud, stream_id, consumed);
    return 0;
}

static int h3_recv_header(nghttp3_conn *conn, int64_t stream_id, int32_t token,
                          nghttp3_rcbuf *name, nghttp3_rcbuf *value,
                          uint8_t flags, void *ud, void *sud)
{
    struct session *s = sud;
    (void)conn;
    (void)token;
    (void)flags;
    (void)ud;
    nghttp3_vec n = nghttp3_rcbuf_get_buf(name);
    nghttp3_vec v = nghttp3_rcbuf_get_buf(value);
    dbg("stream %" PRId64 ": header %.*s: %.*s", stream_id, (int)n.len,
        (const char *)n.base, (int)v.len, (const char *)v.base);
    if (!s)
        return 0;
    if (n.len == 7 && memcmp(n.base, ":status", 7) == 0) {
        char tmp[8];
        size_t l = v.len < sizeof(tmp) - 1 ? v.len : sizeof(tmp) - 1;
        memcpy(tmp, v.base, l);
        tmp[l] = 0;
        s->status = atoi(tmp);
    } else if (n.len == 28 &&
               memcmp(n.base, "sec-webtransport-http3-draft", 28) == 0) {
        size_t l =
            v.len < sizeof(s->draft_hdr) - 1 ? v.len : sizeof(s->draft_hdr) - 1;
        memcpy(s->draft_hdr, v.base, l);
        s->draft_hdr[l] = 0;
    }
    return 0;
}

static int h3_end_headers(nghttp3_conn *conn, int64_t stream_id, int fin,
                          void *ud, void *sud)
{
    struct session *s = sud;
    (void)conn;
    (void)ud;
    if (!s)
        return 0;
    if (s->status >= 100 && s->status < 200) {
        s->status = 0; /* interim response */
        return 0;
    }
    s->headers_done = true;
    note("session %" PRId64 ": response status %d%s", stream_id, s->status,
         fin ? " (stream ended)" : "");
    return 0;
}

static int h3_end_stream(nghttp3_conn *conn, int64_t stream_id, void *ud,
                         void *sud)
{
    struct session *s = sud;
    (void)conn;
    (void)ud;
    dbg("stream %" PRId64 ": FIN from server", stream_id);
    if (s)
        s->end_stream = true;
    return 0;
}

static int h3_stop_sending(nghttp3_conn *conn, int64_t stream_id,
                           uint64_t app_error_code, void *ud, void *sud)
{
    struct probe *p = ud;
    (void)conn;
    (void)sud;
    int rv =
        ngtcp2_conn_shutdown_stream_read(p->conn, 0, stream_id, app_error_code);
    if (rv != 0 && rv != NGTCP2_ERR_STREAM_NOT_FOUND)
        return NGHTTP3_ERR_CALLBACK_FAILURE;
    return 0;
}

static int h3_reset_stream(nghttp3_conn *conn, int64_t stream_id,
                           uint64_t app_error_code, void *ud, void *sud)
{
    struct probe *p = ud;
    (void)conn;
    (void)sud;
    int rv = ngtcp2_conn_shutdown_stream_write(p->conn, 0, stream_id,
                                               app_error_code);
    if (rv != 0 && rv != NGTCP2_ERR_STREAM_NOT_FOUND)
        return NGHTTP3_ERR_CALLBACK_FAILURE;
    return 0;
}

static int h3_shutdown(nghttp3_conn *conn, int64_t id, void *ud)
{
    (void)conn;
    (void)ud;
    dbg("nghttp3: GOAWAY %" PRId64, id);
    return 0;
}

/* ------------------------------------------------------------------ */
/* HTTP/3 set-up after the handshake */

#define FC_PROBE_DATA 4096

static void sc_settings_late(struct probe *p);

static int h3_bind(struct probe *p)
{
    if (ngtcp2_conn_get_streams_uni_left(p->conn) < 3) {
        snprintf(p->conn_err, sizeof(p->conn_err),
                 "server allows fewer than 3 uni streams");
        return -1;
    }
    /* our control stream, written by hand (nghttp3 1.8 cannot carry the
     * WebTransport settings) */
    struct wire_setting s[16];
    size_t n = 0;
    s[n++] = (struct wire_setting){WIRE_SETTING_QPACK_MAX_TABLE_CAPACITY,
                                   QPACK_CAPACITY};
    s[n++] = (struct wire_setting){WIRE_SETTING_MAX_FIELD_SECTION_SIZE,
                                   FIELD_SECTION_MAX};
    s[n++] = (struct wire_setting){WIRE_SETTING_QPACK_BLOCKED_STREAMS,
                                   QPACK_BLOCKED};
    s[n++] = (struct wire_setting){WIRE_SETTING_H3_DATAGRAM, 1};
    s[n++] = (struct wire_setting){WIRE_SETTING_H3_DATAGRAM_DRAFT04, 1};
    s[n++] = (struct wire_setting){WIRE_SETTING_ENABLE_WEBTRANSPORT, 1};
    if (p->draft == 7)
        s[n++] = (struct wire_setting){WIRE_SETTING_WT_MAX_SESSIONS_D07, 16};
    if (p->draft == 15)
        s[n++] = (struct wire_setting){WIRE_SETTING_WT_ENABLED, 1};
    if (p->draft == 14)
        s[n++] = (struct wire_setting){WIRE_SETTING_WT_MAX_SESSIONS_D13, 1};
    /* --fc: session flow control declared, with a small data window that
     * is never raised (no WT_MAX_DATA from us): the server's echoes stop
     * at FC_PROBE_DATA bytes a session */
    if (p->fc) {
        s[n++] = (struct wire_setting){WIRE_SETTING_WT_INITIAL_MAX_DATA,
                                       p->fc_data ? p->fc_data
                                                  : FC_PROBE_DATA};
        s[n++] = (struct wire_setting){WIRE_SETTING_WT_INITIAL_MAX_STREAMS_UNI,
                                       100};
        s[n++] = (struct wire_setting){
            WIRE_SETTING_WT_INITIAL_MAX_STREAMS_BIDI, 100};
    }
    if (p->grease)
        s[n++] = (struct wire_setting){0x1f * 0x2a + 0x21, 0x1234};
    uint8_t buf[512];
    ssize_t a = wire_varint_encode(buf, sizeof(buf), WIRE_H3_STREAM_CONTROL);
    ssize_t b =
        a > 0 ? wire_settings_encode(buf + a, sizeof(buf) - (size_t)a, s, n)
              : -1;
    if (a <= 0 || b <= 0) {
        snprintf(p->conn_err, sizeof(p->conn_err),
                 "wire_settings_encode failed (%zd)", b);
        return -1;
    }
    size_t len = (size_t)(a + b);
    if (p->grease) {
        /* a reserved frame type after SETTINGS, as Chromium sends */
        ssize_t c = wire_frame_header_encode(buf + len, sizeof(buf) - len,
                                             0x1f * 0x11 + 0x21, 4);
        if (c > 0) {
            len += (size_t)c;
            memcpy(buf + len, "gres", 4);
            len += 4;
        }
    }
    struct pstream *ctrl = NULL;
    if (current->step == sc_settings_late) {
        memcpy(p->late_ctrl, buf, len); /* the step opens the stream later */
        p->late_ctrl_len = len;
    } else {
        uint8_t *out = xmalloc(len);
        memcpy(out, buf, len);
        ctrl = open_raw(p, false, SK_OWNCTRL, out, len, false);
    }
    if (!ctrl && !p->late_ctrl_len) {
        snprintf(p->conn_err, sizeof(p->conn_err),
                 "cannot open our control stream");
        return -1;
    }
    int64_t qenc, qdec;
    if (ngtcp2_conn_open_uni_stream(p->conn, &qenc, NULL) != 0 ||
        ngtcp2_conn_open_uni_stream(p->conn, &qdec, NULL) != 0) {
        snprintf(p->conn_err, sizeof(p->conn_err),
                 "cannot open the QPACK streams");
        return -1;
    }
    stream_new(p, qenc, SK_H3);
    stream_new(p, qdec, SK_H3);
    int rv = nghttp3_conn_bind_qpack_streams(p->h3, qenc, qdec);
    if (rv != 0) {
        snprintf(p->conn_err, sizeof(p->conn_err),
                 "nghttp3_conn_bind_qpack_streams: %s", nghttp3_strerror(rv));
        return -1;
    }
    dbg("control stream %" PRId64 ", QPACK encoder %" PRId64
        ", decoder %" PRId64,
        ctrl ? ctrl->id : (int64_t)-1, qenc, qdec);
    p->h3_bound = true;
    return 0;
}

static int h3_init(struct probe *p)
{
    nghttp3_callbacks cb = {
        .acked_stream_data = h3_acked_stream_data,
        .stream_close = h3_stream_close,
        .recv_data = h3_recv_data,
        .deferred_consume = h3_deferred_consume,
        .recv_header = h3_recv_header,
        .end_headers = h3_end_headers,
        .stop_sending = h3_stop_sending,
        .end_stream = h3_end_stream,
        .reset_stream = h3_reset_stream,
        .shutdown = h3_shutdown,
    };
    nghttp3_settings settings;
    nghttp3_settings_default(&settings);
    settings.qpack_max_dtable_capacity = QPACK_CAPACITY;
    settings.qpack_blocked_streams = QPACK_BLOCKED;
    settings.max_field_section_size = FIELD_SECTION_MAX;
    settings.h3_datagram = 1;
    int rv = nghttp3_conn_client_new(&p->h3, &cb, &settings,
                                     nghttp3_mem_default(), p);
    if (rv != 0) {
        note("nghttp3_conn_client_new: %s", nghttp3_strerror(rv));
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* socket I/O */

static void send_packet(struct probe *p, const uint8_t *data, size_t len)
{
    ssize_t n;
    if (p->drop_stream && p->drop_stream->outsent > 0) {
        /* the packet with its last bytes is the last one dropped: what
         * follows (ACKs, probes, the reset) must go, or each probe
         * timeout that passes before the scenario's next step doubles
         * the next one, and the reset leaves seconds later */
        if (p->drop_stream->outsent >= p->drop_stream->outlen)
            p->drop_stream = NULL;
        if (p->dropped++ > 0)
            return; /* "lost" on the way */
    }
    do {
        n = send(p->fd, data, len, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
        errno != ECONNREFUSED)
        note("send: %s", strerror(errno));
}

static void conn_died(struct probe *p)
{
    if (p->conn_dead)
        return;
    p->conn_dead = true;
    const ngtcp2_ccerr *e = ngtcp2_conn_get_ccerr(p->conn);
    p->close_app = e->type == NGTCP2_CCERR_TYPE_APPLICATION;
    p->close_code = e->error_code;
    if (p->conn_err[0] == 0) {
        snprintf(p->conn_err, sizeof(p->conn_err),
                 "server closed the connection: %s error 0x%" PRIx64
                 " reason \"%.*s\"",
                 e->type == NGTCP2_CCERR_TYPE_APPLICATION ? "application"
                                                          : "transport",
                 e->error_code, (int)e->reasonlen,
                 e->reason ? (const char *)e->reason : "");
    }
    note("%s", p->conn_err);
}

static int read_packets(struct probe *p)
{
    uint8_t buf[65536];
    for (;;) {
        struct sockaddr_storage from;
        socklen_t fromlen = sizeof(from);
        ssize_t n = recvfrom(p->fd, buf, sizeof(buf), MSG_DONTWAIT,
                             (struct sockaddr *)&from, &fromlen);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                return 0;
            if (errno == ECONNREFUSED) {
                if (!p->handshake_done) {
                    snprintf(p->conn_err, sizeof(p->conn_err),
                             "connection refused (ICMP): nothing listens on "
                             "udp port %s?",
                             p->port);
                    return -1;
                }
                continue;
            }
            note("recvfrom: %s", strerror(errno));
            return 0;
        }
        ngtcp2_path path = {
            .local = {(struct sockaddr *)&p->local, p->locallen},
            .remote = {(struct sockaddr *)&from, fromlen},
        };
        ngtcp2_pkt_info pi = {0};
        int rv =
            ngtcp2_conn_read_pkt(p->conn, &path, &pi, buf, (size_t)n, now_ns());
        if (rv == 0)
            continue;
        if (rv == NGTCP2_ERR_DRAINING || rv == NGTCP2_ERR_CLOSING) {
            conn_died(p);
            return -1;
        }
        if (rv == NGTCP2_ERR_CRYPTO) {
            snprintf(p->conn_err, sizeof(p->conn_err),
                     "TLS handshake failed: alert %d (%s)",
                     ngtcp2_conn_get_tls_alert(p->conn),
                     gnutls_alert_get_name(
                         (gnutls_alert_description_t)ngtcp2_conn_get_tls_alert(
                             p->conn)));
        } else if (p->conn_err[0] == 0) {
            snprintf(p->conn_err, sizeof(p->conn_err),
                     "ngtcp2_conn_read_pkt: %s", ngtcp2_strerror(rv));
        }
        note("%s", p->conn_err);
        p->conn_dead = true;
        return -1;
    }
}

/* The next raw stream with something to send (round robin). */
static struct pstream *next_raw(struct probe *p, bool data_ok)
{
    struct pstream *start = p->rr ? p->rr->next : NULL;
    for (int pass = 0; pass < 2; pass++) {
        struct pstream *from = pass == 0 ? start : p->streams;
        for (struct pstream *st = from; st; st = st->next) {
            if (pass == 1 && st == start)
                break;
            if (!st->local ||
                (st->kind != SK_WT && st->kind != SK_OWNCTRL && !st->rawtx))
                continue;
            if (st->shut_wr || st->blocked)
                continue;
            bool data = st->outsent < st->outlen;
            bool finonly = !data && st->out_fin && !st->fin_sent;
            if ((data && data_ok) || finonly) {
                p->rr = st;
                return st;
            }
        }
    }
    return NULL;
}

static int write_packets(struct probe *p)
{
    uint8_t buf[65536];
    ngtcp2_tstamp ts = now_ns();
    size_t maxpkt = ngtcp2_conn_get_path_max_tx_udp_payload_size(p->conn);
    if (maxpkt > sizeof(buf))
        maxpkt = sizeof(buf);
    ngtcp2_path_storage ps;
    ngtcp2_path_storage_zero(&ps);
    size_t npkts = 0;

    for (;;) {
        int64_t sid = -1;
        int fin = 0;
        nghttp3_vec vec[16];
        nghttp3_ssize cnt = 0;
        struct pstream *raw = NULL;
        bool split = false;
        bool data_ok = ngtcp2_conn_get_max_data_left(p->conn) > 0;

        if (p->h3_bound && data_ok) {
            cnt = nghttp3_conn_writev_stream(p->h3, &sid, &fin, vec, 16);
            if (cnt < 0) {
                snprintf(p->conn_err, sizeof(p->conn_err),
                         "nghttp3_conn_writev_stream: %s",
                         nghttp3_strerror((int)cnt));
                return -1;
            }
        }
        if (sid < 0 && p->handshake_done) {
            raw = next_raw(p, data_ok);
            if (raw) {
                sid = raw->id;
                cnt = 0;
                fin = raw->out_fin;
                if (raw->outsent < raw->outlen) {
                    vec[0].base = raw->out + raw->outsent;
                    vec[0].len = raw->outlen - raw->outsent;
                    cnt = 1;
                    /* --split-prefix: one prefix byte per packet, so the
                     * server must reassemble the stream signal */
                    if (p->split_prefix && raw->outsent < raw->prefix_len) {
                        vec[0].len = 1;
                        fin = 0;
                        split = true;
                    }
                }
            }
        }
        ngtcp2_pkt_info pi;
        ngtcp2_ssize nwrite;
        if (sid < 0 && p->dqlen > 0 && p->handshake_done &&
            !p->dgram_unsupported) {
            struct capchunk *d = &p->dq[p->dqhead];
            ngtcp2_vec dv = {d->p, d->len};
            int accepted = 0;
            nwrite = ngtcp2_conn_writev_datagram(
                p->conn, &ps.path, &pi, buf, maxpkt, &accepted,
                NGTCP2_WRITE_DATAGRAM_FLAG_NONE, 0, &dv, 1, ts);
            if (nwrite < 0) {
                if (nwrite == NGTCP2_ERR_INVALID_STATE) {
                    note("the server did not offer DATAGRAM frames "
                         "(max_datagram_frame_size)");
                    p->dgram_unsupported = true;
                    continue;
                }
                if (nwrite == NGTCP2_ERR_INVALID_ARGUMENT) {
                    note("datagram of %zu bytes too large for the server",
                         d->len);
                    dgram_pop(p);
                    continue;
                }
                snprintf(p->conn_err, sizeof(p->conn_err),
                         "ngtcp2_conn_writev_datagram: %s",
                         ngtcp2_strerror((int)nwrite));
                return -1;
            }
            if (accepted)
                dgram_pop(p);
            if (nwrite == 0)
                break;
            send_packet(p, buf, (size_t)nwrite);
            npkts++;
            continue;
        }

        uint32_t flags = split ? 0 : NGTCP2_WRITE_STREAM_FLAG_MORE;
        if (fin)
            flags |= NGTCP2_WRITE_STREAM_FLAG_FIN;
        ngtcp2_ssize ndatalen = -1;
        nwrite = ngtcp2_conn_writev_stream(
            p->conn, &ps.path, &pi, buf, maxpkt, &ndatalen, flags, sid,
            (const ngtcp2_vec *)vec, (size_t)cnt, ts);
        if (nwrite < 0) {
            switch (nwrite) {
            case NGTCP2_ERR_STREAM_DATA_BLOCKED:
                if (raw)
                    raw->blocked = true;
                else
                    nghttp3_conn_block_stream(p->h3, sid);
                continue;
            case NGTCP2_ERR_STREAM_SHUT_WR:
            case NGTCP2_ERR_STREAM_NOT_FOUND:
                if (raw)
                    raw->shut_wr = true;
                else
                    nghttp3_conn_shutdown_stream_write(p->h3, sid);
                continue;
            case NGTCP2_ERR_WRITE_MORE:
                break;
            default:
                snprintf(p->conn_err, sizeof(p->conn_err),
                         "ngtcp2_conn_writev_stream: %s",
                         ngtcp2_strerror((int)nwrite));
                return -1;
            }
        }
        if (ndatalen >= 0 && sid >= 0) {
            if (raw) {
                raw->outsent += (size_t)ndatalen;
                if (raw->outsent == raw->outlen && raw->out_fin)
                    raw->fin_sent = true;
            } else {
                struct pstream *hs = stream_find(p, sid);
                if (hs)
                    hs->h3_sent += (uint64_t)ndatalen;
                int rv = nghttp3_conn_add_write_offset(p->h3, sid,
                                                       (uint64_t)ndatalen);
                if (rv != 0) {
                    snprintf(p->conn_err, sizeof(p->conn_err),
                             "nghttp3_conn_add_write_offset: %s",
                             nghttp3_strerror(rv));
                    return -1;
                }
            }
        }
        if (nwrite == NGTCP2_ERR_WRITE_MORE)
            continue;
        if (nwrite == 0)
            break;
        send_packet(p, buf, (size_t)nwrite);
        npkts++;
    }
    ngtcp2_conn_update_pkt_tx_time(p->conn, ts);
    (void)npkts;
    return 0;
}

static void arm_timer(struct probe *p)
{
    ngtcp2_tstamp expiry = ngtcp2_conn_get_expiry(p->conn);
    ngtcp2_tstamp now = now_ns();
    double t = expiry <= now ? 1e-9 : (double)(expiry - now) / NGTCP2_SECONDS;
    p->qtimer.repeat = t;
    ev_timer_again(p->loop, &p->qtimer);
}

static void scenario_step(struct probe *p);

static void close_connection(struct probe *p)
{
    if (!p->conn || ngtcp2_conn_in_closing_period(p->conn) ||
        ngtcp2_conn_in_draining_period(p->conn) || p->conn_dead)
        return;
    ngtcp2_ccerr err;
    ngtcp2_ccerr_default(&err);
    ngtcp2_ccerr_set_application_error(&err, NGHTTP3_H3_NO_ERROR, NULL, 0);
    uint8_t buf[1500];
    ngtcp2_path_storage ps;
    ngtcp2_path_storage_zero(&ps);
    ngtcp2_pkt_info pi;
    ngtcp2_ssize n = ngtcp2_conn_write_connection_close(
        p->conn, &ps.path, &pi, buf, sizeof(buf), &err, now_ns());
    if (n > 0)
        send_packet(p, buf, (size_t)n);
}

static void finish(struct probe *p, int result, const char *fmt, ...)
{
    if (p->finished)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->msg, sizeof(p->msg), fmt, ap);
    va_end(ap);
    p->result = result;
    p->finished = true;
    ev_break(p->loop, EVBREAK_ALL);
}

/* After every event: set up HTTP/3, run the scenario, write, re-arm. */
static void after_event(struct probe *p)
{
    if (p->finished)
        return;
    if (p->handshake_done && !p->h3_bound && !p->conn_dead) {
        if (h3_bind(p) != 0) {
            note("%s", p->conn_err);
            finish(p, EXIT_USAGE, "%s", p->conn_err);
            return;
        }
    }
    if (!p->conn_dead)
        scenario_step(p);
    if (p->finished)
        return;
    if (p->conn_dead && current->closed)
        current->closed(p);
    if (p->finished)
        return;
    if (p->conn_dead) {
        finish(p, p->handshake_done ? EXIT_NOPASS : EXIT_USAGE, "%s",
               p->conn_err);
        return;
    }
    if (write_packets(p) != 0) {
        note("%s", p->conn_err);
        finish(p, EXIT_NOPASS, "%s", p->conn_err);
        return;
    }
    arm_timer(p);
}

static void on_read(struct ev_loop *loop, ev_io *w, int revents)
{
    struct probe *p = w->data;
    (void)loop;
    (void)revents;
    if (read_packets(p) != 0 && !p->conn_dead) {
        finish(p, p->handshake_done ? EXIT_NOPASS : EXIT_USAGE, "%s",
               p->conn_err);
        return;
    }
    after_event(p);
}

static void on_qtimer(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct probe *p = w->data;
    (void)loop;
    (void)revents;
    int rv = ngtcp2_conn_handle_expiry(p->conn, now_ns());
    if (rv != 0) {
        if (rv == NGTCP2_ERR_IDLE_CLOSE)
            snprintf(p->conn_err, sizeof(p->conn_err),
                     p->handshake_done ? "idle timeout"
                                       : "no answer from the server (handshake "
                                         "timed out)");
        else
            snprintf(p->conn_err, sizeof(p->conn_err),
                     "ngtcp2_conn_handle_expiry: %s", ngtcp2_strerror(rv));
        p->conn_dead = true;
        note("%s", p->conn_err);
        finish(p, p->handshake_done ? EXIT_NOPASS : EXIT_USAGE, "%s",
               p->conn_err);
        return;
    }
    after_event(p);
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    after_event(w->data);
}

static void scenario_timeout(struct probe *p);

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct probe *p = w->data;
    (void)loop;
    (void)revents;
    if (!p->handshake_done) {
        finish(p, EXIT_USAGE, "timeout: no QUIC handshake with %s port %s",
               p->host, p->port);
        return;
    }
    if (!p->settings_recv && !current->early) {
        finish(p, EXIT_NOPASS, "timeout: no SETTINGS from the server");
        return;
    }
    scenario_timeout(p);
    if (!p->finished)
        finish(p, EXIT_NOPASS, "timeout while %s",
               p->waiting ? p->waiting : "running");
}

/* ------------------------------------------------------------------ */
/* connection set-up */

static const char tls_priority[] =
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:"
    "+CHACHA20-POLY1305:+AES-128-CCM:-GROUP-ALL:+GROUP-X25519:"
    "+GROUP-SECP256R1:+GROUP-SECP384R1:+GROUP-SECP521R1:"
    "%DISABLE_TLS13_COMPAT_MODE";

static ngtcp2_conn *get_conn(ngtcp2_crypto_conn_ref *ref)
{
    struct probe *p = ref->user_data;
    return p->conn;
}

static int tls_init(struct probe *p)
{
    int rv = gnutls_certificate_allocate_credentials(&p->cred);
    if (rv != 0) {
        note("gnutls_certificate_allocate_credentials: %s",
             gnutls_strerror(rv));
        return -1;
    }
    if (!p->insecure) {
        if (p->cafile)
            rv = gnutls_certificate_set_x509_trust_file(p->cred, p->cafile,
                                                        GNUTLS_X509_FMT_PEM);
        else
            rv = gnutls_certificate_set_x509_system_trust(p->cred);
        if (rv < 0) {
            note("loading trust anchors: %s", gnutls_strerror(rv));
            return -1;
        }
    }
    rv = gnutls_init(&p->tls, GNUTLS_CLIENT | GNUTLS_ENABLE_EARLY_DATA |
                                  GNUTLS_NO_END_OF_EARLY_DATA);
    if (rv != 0) {
        note("gnutls_init: %s", gnutls_strerror(rv));
        return -1;
    }
    if (ngtcp2_crypto_gnutls_configure_client_session(p->tls) != 0) {
        note("ngtcp2_crypto_gnutls_configure_client_session failed");
        return -1;
    }
    rv = gnutls_priority_set_direct(p->tls, tls_priority, NULL);
    if (rv != 0) {
        note("gnutls_priority_set_direct: %s", gnutls_strerror(rv));
        return -1;
    }
    gnutls_session_set_ptr(p->tls, &p->ref);
    rv = gnutls_credentials_set(p->tls, GNUTLS_CRD_CERTIFICATE, p->cred);
    if (rv != 0) {
        note("gnutls_credentials_set: %s", gnutls_strerror(rv));
        return -1;
    }
    static const char h3[] = "h3";
    gnutls_datum_t alpn = {(unsigned char *)(uintptr_t)h3, 2};
    gnutls_alpn_set_protocols(p->tls, &alpn, 1, GNUTLS_ALPN_MANDATORY);
    gnutls_server_name_set(p->tls, GNUTLS_NAME_DNS, "localhost", 9);
    if (!p->insecure)
        gnutls_session_set_verify_cert(p->tls, "localhost", 0);
    return 0;
}

static int quic_init(struct probe *p)
{
    ngtcp2_callbacks cb = {
        .client_initial = ngtcp2_crypto_client_initial_cb,
        .recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb,
        .handshake_completed = on_handshake_completed,
        .encrypt = ngtcp2_crypto_encrypt_cb,
        .decrypt = ngtcp2_crypto_decrypt_cb,
        .hp_mask = ngtcp2_crypto_hp_mask_cb,
        .recv_stream_data = on_recv_stream_data,
        .acked_stream_data_offset = on_acked_stream_data_offset,
        .stream_close = on_stream_close,
        .recv_retry = ngtcp2_crypto_recv_retry_cb,
        .rand = rand_cb,
        .get_new_connection_id = get_new_connection_id_cb,
        .update_key = ngtcp2_crypto_update_key_cb,
        .stream_reset = on_stream_reset,
        .extend_max_stream_data = on_extend_max_stream_data,
        .delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb,
        .delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb,
        .recv_datagram = on_recv_datagram,
        .get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb,
        .stream_stop_sending = on_stream_stop_sending,
        .version_negotiation = ngtcp2_crypto_version_negotiation_cb,
    };
    ngtcp2_cid dcid, scid;
    dcid.datalen = 18;
    scid.datalen = 16;
    if (gnutls_rnd(GNUTLS_RND_RANDOM, dcid.data, dcid.datalen) != 0 ||
        gnutls_rnd(GNUTLS_RND_RANDOM, scid.data, scid.datalen) != 0)
        return -1;
    ngtcp2_settings settings;
    ngtcp2_settings_default(&settings);
    settings.initial_ts = now_ns();
    settings.handshake_timeout = (ngtcp2_duration)(p->timeout * NGTCP2_SECONDS);
    if (getenv("WTPROBE_QUIC_LOG"))
        settings.log_printf = quic_log;
    ngtcp2_transport_params params;
    ngtcp2_transport_params_default(&params);
    params.initial_max_stream_data_bidi_local =
        p->window ? p->window : 4 * 1024 * 1024;
    params.initial_max_stream_data_bidi_remote = 1024 * 1024;
    params.initial_max_stream_data_uni =
        p->uni_window >= 0 ? (uint64_t)p->uni_window : 1024 * 1024;
    params.initial_max_data = p->max_data ? p->max_data : 16 * 1024 * 1024;
    params.initial_max_streams_bidi = 100;
    params.initial_max_streams_uni =
        p->uni_streams >= 0 ? (uint64_t)p->uni_streams : 103;
    params.max_idle_timeout = 30 * NGTCP2_SECONDS;
    params.max_datagram_frame_size = 65535;
    ngtcp2_path path = {
        .local = {(struct sockaddr *)&p->local, p->locallen},
        .remote = {(struct sockaddr *)&p->remote, p->remotelen},
    };
    int rv = ngtcp2_conn_client_new(&p->conn, &dcid, &scid, &path,
                                    NGTCP2_PROTO_VER_V1, &cb, &settings,
                                    &params, NULL, p);
    if (rv != 0) {
        note("ngtcp2_conn_client_new: %s", ngtcp2_strerror(rv));
        return -1;
    }
    ngtcp2_conn_set_tls_native_handle(p->conn, p->tls);
    p->ref.get_conn = get_conn;
    p->ref.user_data = p;
    return 0;
}

/* Binds an IPv4 socket to ADDR (any loopback address: 127.0.0.0/8). */
static int bind_local(int fd, const char *addr)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    if (inet_pton(AF_INET, addr, &a.sin_addr) != 1 ||
        (ntohl(a.sin_addr.s_addr) >> 24) != 127) {
        note("--bind: want an address in 127.0.0.0/8, not %s", addr);
        return -1;
    }
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        note("bind %s: %s", addr, strerror(errno));
        return -1;
    }
    return 0;
}

static int sock_init(struct probe *p)
{
    const char *h = p->host;
    char tmp[64];
    size_t hl = strlen(h);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']' && hl - 2 < sizeof(tmp)) {
        memcpy(tmp, h + 1, hl - 2);
        tmp[hl - 2] = 0;
        h = tmp;
    }
    if (strcmp(h, "localhost") == 0)
        h = "127.0.0.1";
    char *end;
    long port = strtol(p->port, &end, 10);
    if (*end || port <= 0 || port > 65535) {
        note("bad port %s", p->port);
        return -1;
    }
    memset(&p->remote, 0, sizeof(p->remote));
    if (strcmp(h, "127.0.0.1") == 0) {
        struct sockaddr_in *a = (struct sockaddr_in *)&p->remote;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        p->remotelen = sizeof(*a);
    } else if (strcmp(h, "::1") == 0) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&p->remote;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        a->sin6_addr = in6addr_loopback;
        p->remotelen = sizeof(*a);
    } else {
        note("only 127.0.0.1, ::1 and localhost are allowed, not %s", p->host);
        return -1;
    }
    p->fd = socket(p->remote.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (p->fd < 0) {
        note("socket: %s", strerror(errno));
        return -1;
    }
    int sz = 4 * 1024 * 1024;
    setsockopt(p->fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    setsockopt(p->fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
    if (p->bind_addr && bind_local(p->fd, p->bind_addr) != 0)
        return -1;
    if (connect(p->fd, (struct sockaddr *)&p->remote, p->remotelen) != 0) {
        note("connect: %s", strerror(errno));
        return -1;
    }
    p->locallen = sizeof(p->local);
    if (getsockname(p->fd, (struct sockaddr *)&p->local, &p->locallen) != 0) {
        note("getsockname: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* scenarios */


static const char *arg_path(struct probe *p, int *i)
{
    if (*i < p->nargs && p->args[*i][0] == '/')
        return p->args[(*i)++];
    return "/echo";
}

static bool arg_size(struct probe *p, int i, size_t dflt, size_t *out)
{
    if (i >= p->nargs) {
        *out = dflt;
        return true;
    }
    char *end;
    unsigned long long v = strtoull(p->args[i], &end, 0);
    if (end == p->args[i])
        return false;
    if (*end == 'k' || *end == 'K')
        v *= 1024, end++;
    else if (*end == 'M' || *end == 'm')
        v *= 1024 * 1024, end++;
    if (*end)
        return false;
    *out = (size_t)v;
    return true;
}

/* Common helpers for phases. */
#define WAIT(what) (p->waiting = (what))

/* Opens the session `*s` on `path` if not yet, waits for 200.
 * 1 = ready, 0 = waiting, -1 = finished with failure. */
static int need_session(struct probe *p, struct session **s, const char *path,
                        const char *label)
{
    if (!*s) {
        *s = session_open(p, path, REQ_NORMAL);
        if (!*s) {
            finish(p, EXIT_NOPASS, "%s: cannot open session %s", current->name,
                   label);
            return -1;
        }
    }
    int r = session_ready(p, *s);
    if (r < 0) {
        finish(p, EXIT_NOPASS, "%s FAIL: session %s (%s) rejected: %s",
               current->name, label, path, p->info);
        return -1;
    }
    if (r == 0)
        WAIT("waiting for the CONNECT response");
    return r;
}

/* Runs one echo; 1 = verified, 0 = waiting, -1 = finished with failure. */
static int need_echo(struct probe *p, struct echo **e, struct session *s,
                     size_t len, uint32_t seed, bool uni, const char *label)
{
    if (!*e)
        *e = echo_start(p, s, len, seed, uni);
    int r = echo_poll(p, *e);
    if (r < 0) {
        finish(p, EXIT_NOPASS, "%s FAIL: %s echo: %s", current->name, label,
               (*e)->err);
        return -1;
    }
    if (r == 0)
        WAIT(uni ? "waiting for the uni-stream echo" : "waiting for the echo");
    return r;
}

/* Fails if a session got closed, reset or answered FIN unexpectedly. */
static bool session_intact(struct probe *p, struct session *s,
                           const char *label)
{
    char f[128];
    if (s->st->reset_recv || s->st->stop_recv) {
        finish(p, EXIT_NOPASS, "%s FAIL: session %s's CONNECT stream got %s",
               current->name, label, stream_fate(s->st, f, sizeof(f)));
        return false;
    }
    if (s->close_recv || s->end_stream) {
        finish(p, EXIT_NOPASS, "%s FAIL: server closed session %s (%s)",
               current->name, label, s->close_recv ? "CLOSE capsule" : "FIN");
        return false;
    }
    return true;
}

/* echo-bidi PATH BYTES / echo-uni PATH BYTES */
static struct echo *g_e1, *g_e2;

/* Sessions A and B on /echo (the scenarios that hurt A and watch B):
 * 1 when both are open, 0 while waiting, -1 when finished with failure. */
static int need_ab(struct probe *p)
{
    int ra = need_session(p, &p->a, "/echo", "A");
    if (ra < 0)
        return -1;
    int rb = need_session(p, &p->b, "/echo", "B");
    if (rb < 0)
        return -1;
    return ra && rb;
}

/* Session B came through what A went through untouched and still echoes
 * `len` bytes: 1 when so, 0 while waiting, -1 when finished. */
static int b_echoes(struct probe *p, struct echo **e, size_t len)
{
    if (!session_intact(p, p->b, "B"))
        return -1;
    return need_echo(p, e, p->b, len, 12, false, "session B");
}


static void sc_echo(struct probe *p, bool uni)
{
    int i = 0;
    const char *path = arg_path(p, &i);
    size_t bytes;
    if (!arg_size(p, i, 1024, &bytes)) {
        finish(p, EXIT_USAGE, "%s: bad byte count", current->name);
        return;
    }
    if (need_session(p, &p->a, path, "A") <= 0)
        return;
    if (need_echo(p, &g_e1, p->a, bytes, 1, uni, uni ? "uni" : "bidi") <= 0)
        return;
    finish(p, EXIT_PASS, "%s ok %zu bytes", current->name, bytes);
}

static void sc_echo_bidi(struct probe *p)
{
    sc_echo(p, false);
}
static void sc_echo_uni(struct probe *p)
{
    sc_echo(p, true);
}

/* echo-dgram PATH COUNT */
#define DGRAM_WINDOW 8

static size_t dgram_len(size_t i)
{
    return 16 + (i * 37) % 1000;
}

static void dgram_fill(uint8_t *buf, size_t i, size_t len)
{
    fill_pattern(buf, len, (uint32_t)(1000 + i));
    buf[0] = (uint8_t)(i >> 24);
    buf[1] = (uint8_t)(i >> 16);
    buf[2] = (uint8_t)(i >> 8);
    buf[3] = (uint8_t)i;
}

/* Counts echoed datagrams of session s matching what we sent (p->counter
 * sent so far); marks matches in `seen`. Returns the number matched; sets
 * *bad for a mismatching one. */
static size_t dgram_scan(struct probe *p, struct session *s, uint8_t *seen,
                         size_t nsent, size_t *bad, size_t *foreign)
{
    size_t good = 0;
    uint8_t buf[2048];
    *bad = 0;
    *foreign = 0;
    for (size_t k = 0; k < p->nrxd; k++) {
        struct rxdgram *d = &p->rxd[k];
        if (d->malformed) {
            (*bad)++;
            continue;
        }
        if (d->session_id != (uint64_t)s->id) {
            (*foreign)++;
            continue;
        }
        if (d->len < 4) {
            (*bad)++;
            continue;
        }
        size_t idx = ((size_t)d->p[0] << 24) | ((size_t)d->p[1] << 16) |
                     ((size_t)d->p[2] << 8) | d->p[3];
        if (idx >= nsent || d->len != dgram_len(idx)) {
            (*bad)++;
            continue;
        }
        dgram_fill(buf, idx, d->len);
        if (memcmp(buf, d->p, d->len) != 0) {
            (*bad)++;
            continue;
        }
        if (!seen[idx]) {
            seen[idx] = 1;
            good++;
        }
    }
    return good;
}

static uint8_t *g_seen;
static size_t g_count;

/* Sends g_count datagrams on session s, DGRAM_WINDOW in flight.  Returns
 * 1 when all are echoed or 1 s passed quietly after the last was sent. */
static int dgram_run(struct probe *p, struct session *s)
{
    if (!g_seen)
        g_seen = xcalloc(g_count ? g_count : 1, 1);
    memset(g_seen, 0, g_count);
    size_t bad, foreign;
    size_t got = dgram_scan(p, s, g_seen, p->counter, &bad, &foreign);
    uint64_t now = now_ns();
    if (got != p->counter2) {
        p->counter2 = got;
        p->t_mark = now;
    }
    while (p->counter < g_count &&
           (p->counter - got < DGRAM_WINDOW ||
            now - p->t_mark > 50 * NGTCP2_MILLISECONDS)) {
        uint8_t buf[2048];
        size_t len = dgram_len(p->counter);
        dgram_fill(buf, p->counter, len);
        dgram_send(p, (uint64_t)s->id, buf, len);
        p->counter++;
        p->t_mark = now;
        if (p->counter - got >= DGRAM_WINDOW)
            break;
    }
    WAIT("waiting for datagram echoes");
    if (got == g_count)
        return 1;
    if (p->counter == g_count && now - p->t_mark > NGTCP2_SECONDS)
        return 1;
    return 0;
}

static void dgram_verdict(struct probe *p, struct session *s, const char *what)
{
    size_t bad, foreign;
    memset(g_seen, 0, g_count);
    size_t got = dgram_scan(p, s, g_seen, p->counter, &bad, &foreign);
    bool ok = got * 10 >= g_count * 8 && bad == 0;
    finish(p, ok ? EXIT_PASS : EXIT_NOPASS,
           "%s %s %zu/%zu datagrams echoed%s%s", current->name,
           ok ? "ok" : "FAIL:", got, g_count, bad ? " (some corrupted)" : "",
           what);
}

static void sc_echo_dgram(struct probe *p)
{
    int i = 0;
    const char *path = arg_path(p, &i);
    if (!arg_size(p, i, 100, &g_count)) {
        finish(p, EXIT_USAGE, "%s: bad count", current->name);
        return;
    }
    if (need_session(p, &p->a, path, "A") <= 0)
        return;
    if (p->dgram_unsupported) {
        finish(p, EXIT_NOPASS, "%s FAIL: server does not accept datagrams",
               current->name);
        return;
    }
    if (dgram_run(p, p->a) == 0)
        return;
    dgram_verdict(p, p->a, "");
}

static void to_echo_dgram(struct probe *p)
{
    if (p->a && g_seen)
        dgram_verdict(p, p->a, " (at the deadline)");
}

/* [PATH] N (1..MAX_ECHOES, default 10), then session A on PATH:
 * 1 = ready, 0 = waiting, -1 = finished. */
static int need_stream_count(struct probe *p, size_t *n)
{
    int i = 0;
    const char *path = arg_path(p, &i);
    if (!arg_size(p, i, 10, n) || *n == 0 || *n > MAX_ECHOES) {
        finish(p, EXIT_USAGE, "%s: N must be 1..%d", current->name, MAX_ECHOES);
        return -1;
    }
    return need_session(p, &p->a, path, "A");
}

/* streams PATH N */
static void sc_streams(struct probe *p)
{
    size_t n;
    if (need_stream_count(p, &n) <= 0)
        return;
    if (p->nechoes == 0)
        for (size_t k = 0; k < n; k++)
            echo_start(p, p->a, 1024, (uint32_t)(100 + k), false);
    size_t done = 0;
    for (size_t k = 0; k < p->nechoes; k++) {
        int r = echo_poll(p, &p->echoes[k]);
        if (r < 0) {
            finish(p, EXIT_NOPASS, "%s FAIL: stream %zu of %zu: %s",
                   current->name, k + 1, n, p->echoes[k].err);
            return;
        }
        done += r > 0;
    }
    snprintf(p->info, sizeof(p->info), "waiting for echoes (%zu of %zu done)",
             done, n);
    p->waiting = p->info;
    if (done == n)
        finish(p, EXIT_PASS, "%s ok %zu streams x 1024 bytes", current->name,
               n);
}

/* status PATH */
static void sc_status(struct probe *p)
{
    int i = 0;
    const char *path = arg_path(p, &i);
    char f[128];
    if (!p->a) {
        p->a = session_open(p, path, REQ_NORMAL);
        if (!p->a) {
            finish(p, EXIT_NOPASS, "status: cannot open a request stream");
            return;
        }
    }
    WAIT("waiting for the response");
    if (p->a->headers_done && p->a->status) {
        finish(p, EXIT_PASS, "status %d", p->a->status);
        return;
    }
    if (p->a->st->reset_recv || p->a->st->stop_recv || p->a->end_stream)
        finish(p, EXIT_NOPASS, "status none: CONNECT stream got %s",
               p->a->end_stream ? "FIN" : stream_fate(p->a->st, f, sizeof(f)));
}

/* connect-missing authority|path|protocol-value */
static void sc_connect_missing(struct probe *p)
{
    const char *what = p->args[0];
    enum req_variant v;
    char f[128];
    if (strcmp(what, "authority") == 0)
        v = REQ_NO_AUTHORITY;
    else if (strcmp(what, "path") == 0)
        v = REQ_NO_PATH;
    else if (strcmp(what, "protocol-value") == 0 ||
             strcmp(what, "protocol") == 0)
        v = REQ_BOGUS_PROTOCOL;
    else {
        finish(p, EXIT_USAGE, "connect-missing: authority|path|protocol-value");
        return;
    }
    switch (p->phase) {
    case 0:
        p->b = session_open(p, "/echo", v);
        if (!p->b) {
            finish(p, EXIT_NOPASS, "connect-missing: cannot open a stream");
            return;
        }
        p->phase = 1;
        /* fall through */
    case 1:
        WAIT("waiting for the rejection of the bad CONNECT");
        if (p->b->headers_done && p->b->status) {
            if (p->b->status < 400) {
                finish(p, EXIT_NOPASS,
                       "connect-missing %s FAIL: bad request accepted with "
                       "status %d",
                       what, p->b->status);
                return;
            }
            snprintf(p->info, sizeof(p->info), "status %d", p->b->status);
        } else if (p->b->st->reset_recv || p->b->st->stop_recv) {
            snprintf(p->info, sizeof(p->info), "stream %s",
                     stream_fate(p->b->st, f, sizeof(f)));
        } else if (p->b->end_stream) {
            finish(p, EXIT_NOPASS,
                   "connect-missing %s FAIL: stream ended without a response",
                   what);
            return;
        } else {
            return;
        }
        note("bad CONNECT rejected: %s", p->info);
        snprintf(p->saved, sizeof(p->saved), "%s", p->info);
        p->phase = 2;
        /* fall through */
    case 2:
        if (need_session(p, &p->a, "/echo", "A") <= 0)
            return;
        if (need_echo(p, &g_e1, p->a, 1, 9, false, "follow-up") <= 0)
            return;
        finish(p, EXIT_PASS,
               "connect-missing %s ok: rejected with %.200s; connection still "
               "usable",
               what, p->saved);
    }
}

/* stream-unknown-session [N] */
static void sc_stream_unknown(struct probe *p)
{
    size_t n;
    char f[128];
    if (!arg_size(p, 0, 16, &n) || n == 0 || n > 90) {
        finish(p, EXIT_USAGE, "stream-unknown-session: N must be 1..90");
        return;
    }
    switch (p->phase) {
    case 0:
        if (need_session(p, &p->a, "/echo", "A") <= 0)
            return;
        p->phase = 1;
        p->counter = 0;
        /* fall through */
    case 1: {
        /* N + 1 streams naming sessions 4000, 4004, ... */
        static struct pstream *sts[100];
        while (p->counter < n + 1) {
            uint8_t x = 'x';
            struct pstream *st =
                wt_open(p, 4000 + 4 * p->counter, true, &x, 1, false);
            if (!st)
                break;
            sts[p->counter++] = st;
        }
        WAIT("waiting for a rejected stream");
        size_t rejected = 0;
        for (size_t k = 0; k < p->counter; k++) {
            struct pstream *st = sts[k];
            if (!(st->reset_recv || st->stop_recv))
                continue;
            uint64_t code = st->stop_recv ? st->stop_code : st->reset_code;
            if ((st->stop_recv &&
                 st->stop_code != WIRE_WT_BUFFERED_STREAM_REJECTED) ||
                (st->reset_recv &&
                 st->reset_code != WIRE_WT_BUFFERED_STREAM_REJECTED)) {
                finish(p, EXIT_NOPASS,
                       "stream-unknown-session FAIL: stream %zu (session %zu) "
                       "got %s, expected 0x%x (WT_BUFFERED_STREAM_REJECTED)",
                       k + 1, (size_t)(4000 + 4 * k),
                       stream_fate(st, f, sizeof(f)),
                       WIRE_WT_BUFFERED_STREAM_REJECTED);
                return;
            }
            (void)code;
            if (rejected == 0)
                snprintf(p->saved, sizeof(p->saved), "stream %zu of %zu got %s",
                         k + 1, n + 1, stream_fate(st, f, sizeof(f)));
            rejected++;
        }
        if (rejected == 0)
            return;
        if (!session_intact(p, p->a, "A"))
            return;
        note("unknown-session streams: %zu rejected; first: %s", rejected,
             p->saved);
        p->phase = 2;
    }
        /* fall through */
    case 2:
        if (need_echo(p, &g_e1, p->a, 1024, 5, false, "real session") <= 0)
            return;
        finish(p, EXIT_PASS,
               "stream-unknown-session ok: %.300s; session still echoes",
               p->saved);
    }
}

/* stream-closed-session */
static void sc_stream_closed(struct probe *p)
{
    char f[128];
    switch (p->phase) {
    case 0: {
        if (need_ab(p) <= 0)
            return;
        session_send_close(p, p->a, 7, "x");
        p->phase = 1;
    }
        /* fall through */
    case 1:
        WAIT("waiting for the server's FIN on session A's CONNECT stream");
        if (p->a->st->reset_recv) {
            note("session A's CONNECT stream was reset (0x%" PRIx64
                 ") instead of FIN",
                 p->a->st->reset_code);
        } else if (!p->a->end_stream) {
            return;
        }
        p->phase = 2;
        /* fall through */
    case 2: {
        if (!p->probe_st) {
            uint8_t x[4] = {1, 2, 3, 4};
            p->probe_st = wt_open(p, (uint64_t)p->a->id, true, x, 4, false);
            if (!p->probe_st)
                return;
        }
        WAIT("waiting for the stream naming the closed session to be rejected");
        struct pstream *st = p->probe_st;
        if (st->fin_recv && !st->reset_recv && !st->stop_recv) {
            finish(p, EXIT_NOPASS,
                   "stream-closed-session FAIL: stream on the closed session "
                   "was answered with FIN");
            return;
        }
        if (!st->reset_recv && !st->stop_recv)
            return;
        bool ok = (!st->reset_recv || st->reset_code == WIRE_WT_SESSION_GONE) &&
                  (!st->stop_recv || st->stop_code == WIRE_WT_SESSION_GONE);
        if (!ok) {
            finish(p, EXIT_NOPASS,
                   "stream-closed-session FAIL: got %s, expected 0x%x "
                   "(WT_SESSION_GONE)",
                   stream_fate(st, f, sizeof(f)), WIRE_WT_SESSION_GONE);
            return;
        }
        snprintf(p->saved, sizeof(p->saved), "%s",
                 stream_fate(st, f, sizeof(f)));
        p->phase = 3;
    }
        /* fall through */
    case 3:
        if (!session_intact(p, p->b, "B"))
            return;
        if (need_echo(p, &g_e1, p->b, 1024, 6, false, "session B") <= 0)
            return;
        finish(p, EXIT_PASS,
               "stream-closed-session ok: %.300s; session B echoes", p->saved);
    }
}

/* capsule-truncated [TYPE] / capsule-oversized / capsule-grease */
static void sc_bad_capsule(struct probe *p, int kind)
{
    char f[128];
    switch (p->phase) {
    case 0: {
        int ra = need_session(p, &p->a, "/echo", "A");
        if (ra < 0)
            return;
        int rb = kind == 2 || kind == 4 ? 1
                                        : need_session(p, &p->b, "/echo", "B");
        if (rb < 0 || ra == 0 || rb == 0)
            return;
        if (kind == 0) {
            size_t type = WIRE_CAPSULE_CLOSE_SESSION;
            if (p->nargs > 0 && !arg_size(p, 0, type, &type)) {
                finish(p, EXIT_USAGE, "capsule-truncated: bad TYPE");
                return;
            }
            note("session A: capsule type 0x%zx claiming 100 bytes, 10 sent, "
                 "FIN",
                 type);
            session_send_capsule(p, p->a, type, 100, 10, true);
        } else if (kind == 1) {
            note("session A: CLOSE capsule claiming 5000 bytes");
            uint8_t *v = xmalloc(5000);
            memset(v, 'r', 5000);
            v[0] = v[1] = v[2] = 0;
            v[3] = 9;
            uint8_t hdr[16];
            ssize_t a = wire_varint_encode(hdr, 16, WIRE_CAPSULE_CLOSE_SESSION);
            ssize_t b = wire_varint_encode(hdr + a, 16, 5000);
            session_send_raw(p, p->a, hdr, (size_t)(a + b), false);
            session_send_raw(p, p->a, v, 5000, false);
            free(v);
        } else if (kind == 3) {
            /* [DATA: a CLOSE header claiming 5000 bytes][DATA: 64 bytes] in
             * one STREAM frame, so both reach the server in one read (as a
             * retransmission after loss merges them): once the parser has
             * refused the capsule, the second frame must find it in a state
             * that ignores it */
            size_t type = WIRE_CAPSULE_CLOSE_SESSION;
            if (p->nargs > 0 && !arg_size(p, 0, type, &type)) {
                finish(p, EXIT_USAGE, "capsule-merged: bad TYPE");
                return;
            }
            uint8_t hdr[16], z[64];
            ssize_t a = wire_varint_encode(hdr, 16, type);
            ssize_t b = wire_varint_encode(hdr + a, 16, 5000);
            uint8_t *out = xmalloc(128);
            size_t o = frame_put(out, WIRE_H3_FRAME_DATA, hdr, (size_t)(a + b));
            memset(z, 'z', sizeof(z));
            o += frame_put(out + o, WIRE_H3_FRAME_DATA, z, sizeof(z));
            note("session A: DATA[capsule 0x%zx claiming 5000 bytes] + "
                 "DATA[64 bytes] in one STREAM frame",
                 type);
            session_send_frames(p, p->a, out, o, false);
        } else if (kind == 4) {
            /* past the largest datagram (65535): dropped and counted,
             * never buffered, the session untouched */
            note("session A: DATAGRAM capsule of 70000 bytes");
            session_send_capsule(p, p->a, WIRE_CAPSULE_DATAGRAM, 70000, 70000,
                                 false);
        } else {
            uint64_t type = 0x1f * 0x1234 + 0x21;
            note("session A: reserved capsule type 0x%" PRIx64 ", 300 bytes",
                 type);
            session_send_capsule(p, p->a, type, 300, 300, false);
        }
        p->phase = 1;
        p->t_mark = now_ns();
    }
        /* fall through */
    case 1:
        if (kind == 2 || kind == 4) {
            /* grease, a datagram too large: nothing should happen to A;
             * echo through it */
            if (!session_intact(p, p->a, "A"))
                return;
            if (need_echo(p, &g_e1, p->a, 4096, 11, false, "after capsule") <=
                0)
                return;
            /* and the session is still fine afterwards */
            if (!session_intact(p, p->a, "A"))
                return;
            finish(p, EXIT_PASS, "%s ok: %s, session echoes", current->name,
                   kind == 2 ? "reserved capsule ignored"
                             : "oversized datagram capsule dropped");
            return;
        }
        WAIT("waiting for session A's CONNECT stream to be reset");
        if (p->a->st->reset_recv) {
            snprintf(p->saved, sizeof(p->saved), "%s",
                     stream_fate(p->a->st, f, sizeof(f)));
            if (p->a->st->reset_code != WIRE_H3_MESSAGE_ERROR) {
                finish(p, EXIT_NOPASS,
                       "%s FAIL: session A's CONNECT stream got %s, expected "
                       "RESET_STREAM 0x10e (H3_MESSAGE_ERROR)",
                       current->name, p->saved);
                return;
            }
        } else if (p->a->end_stream || p->a->close_recv) {
            finish(p, EXIT_NOPASS,
                   "%s FAIL: server answered with %s instead of RESET_STREAM "
                   "0x10e%s",
                   current->name, p->a->close_recv ? "a CLOSE capsule" : "FIN",
                   p->a->st->stop_recv ? " (plus STOP_SENDING)" : "");
            return;
        } else {
            return;
        }
        p->phase = 2;
        /* fall through */
    case 2:
        if (b_echoes(p, &g_e1, 1024) <= 0)
            return;
        finish(p, EXIT_PASS, "%s ok: session A got %.300s; session B echoes",
               current->name, p->saved);
    }
}


/* fc-reset, fc-reset-over: a uni stream of len bytes on session A of
 * which only the first packet leaves (the probe drops the rest).  NULL,
 * finished, when it cannot be opened. */
static struct pstream *open_lost(struct probe *p, size_t len, int seed)
{
    uint8_t *buf = xmalloc(len);
    struct pstream *s;

    fill_pattern(buf, len, seed);
    s = wt_open(p, (uint64_t)p->a->id, false, buf, len, false);
    free(buf);
    p->drop_stream = s;
    p->dropped = 0;
    if (!s)
        finish(p, EXIT_NOPASS, "%s: cannot open a stream", current->name);
    WAIT("writing the stream whose packets are lost");
    return s;
}

/* ... once it is all written, RESET_STREAM: 1; 0 while writing */
static int reset_lost(struct probe *p, struct pstream *s)
{
    if (s->outsent < s->outlen) {
        WAIT("writing the stream whose packets are lost");
        return 0;
    }
    note("stream %" PRId64 ": %zu bytes written, %u packets, all but the "
         "first dropped; RESET_STREAM", s->id, s->outlen, p->dropped);
    p->drop_stream = NULL;
    ngtcp2_conn_shutdown_stream_write(p->conn, 0, s->id,
                                      WIRE_H3_REQUEST_CANCELLED);
    return 1;
}

/* fc-exceed, fc-reset-over: session A's CONNECT stream reset with
 * WT_FLOW_CONTROL_ERROR (its fate in p->saved): 1; 0 while waiting; -1
 * finished with failure */
static int a_fc_reset(struct probe *p)
{
    char f[128];

    WAIT("waiting for session A's CONNECT stream to be reset");
    if (p->a->close_recv || p->a->end_stream) {
        finish(p, EXIT_NOPASS, "%s FAIL: session A ended with %s, not a "
               "reset", current->name,
               p->a->close_recv ? "a CLOSE capsule" : "FIN");
        return -1;
    }
    if (!p->a->st->reset_recv)
        return 0;
    snprintf(p->saved, sizeof(p->saved), "%s",
             stream_fate(p->a->st, f, sizeof(f)));
    if (p->a->st->reset_code != WIRE_WT_FLOW_CONTROL_ERROR) {
        finish(p, EXIT_NOPASS, "%s FAIL: session A's CONNECT stream got %s, "
               "expected 0x45d4487 (WT_FLOW_CONTROL_ERROR)", current->name,
               p->saved);
        return -1;
    }
    return 1;
}

/* fc-exceed streams|data (with --draft 14|15 --fc): session A goes past
 * the server's session limits -- one bidi stream more than
 * WT_INITIAL_MAX_STREAMS_BIDI (none of them ended, so no credit comes
 * back), or far more body bytes than WT_INITIAL_MAX_DATA on one stream
 * (the echo can only return FC_PROBE_DATA of them: we give no more
 * credit, so little is consumed and little credit comes back); A's
 * CONNECT stream must be reset with WT_FLOW_CONTROL_ERROR, and session B
 * on the same connection must still echo. */
static void sc_fc_exceed(struct probe *p)
{
    uint64_t lim = 0;
    bool data = p->nargs > 0 && strcmp(p->args[0], "data") == 0;

    switch (p->phase) {
    case 0: {
        if (need_ab(p) <= 0)
            return;
        if (!srv_setting(p, data ? WIRE_SETTING_WT_INITIAL_MAX_DATA
                                 : WIRE_SETTING_WT_INITIAL_MAX_STREAMS_BIDI,
                         &lim) ||
            lim == 0 || lim > (data ? 4u << 20 : 1000u)) {
            finish(p, EXIT_NOPASS, "fc-exceed FAIL: the server's %s is %" PRIu64,
                   data ? "WT_INITIAL_MAX_DATA" : "WT_INITIAL_MAX_STREAMS_BIDI",
                   lim);
            return;
        }
        if (data) {
            size_t len = (size_t)lim * 4 + 65536;
            uint8_t *buf = xmalloc(len);
            fill_pattern(buf, len, 77);
            note("session A: one bidi stream of %zu bytes (WT_MAX_DATA %" PRIu64
                 ")", len, lim);
            if (!wt_open(p, (uint64_t)p->a->id, true, buf, len, false)) {
                free(buf);
                finish(p, EXIT_NOPASS, "fc-exceed: cannot open a stream");
                return;
            }
            free(buf);
        } else {
            note("session A: %" PRIu64 " bidi streams (WT_MAX_STREAMS %" PRIu64
                 "), none ended", lim + 1, lim);
            for (uint64_t k = 0; k <= lim; k++)
                if (!wt_open(p, (uint64_t)p->a->id, true,
                             (const uint8_t *)"0123456789", 10, false)) {
                    finish(p, EXIT_NOPASS, "fc-exceed: cannot open stream %"
                           PRIu64, k);
                    return;
                }
        }
        p->phase = 1;
    }
        /* fall through */
    case 1:
        if (a_fc_reset(p) <= 0)
            return;
        p->phase = 2;
        /* fall through */
    case 2:
        if (b_echoes(p, &g_e1, 2048) <= 0)
            return;
        finish(p, EXIT_PASS, "fc-exceed %s ok: session A got %.300s; session "
               "B echoes", data ? "data" : "streams", p->saved);
    }
}

/* fc-reset (with --draft 14|15 --fc-data 1000000; the server's
 * WT_INITIAL_MAX_DATA 64 KiB): session A sends FC_RESET_FIRST bytes on a uni stream (echoed,
 * so consumed), then FC_RESET_LOST on another of which only the first
 * packet arrives (the rest "lost"), and resets that stream: its final
 * size counts in the session's data (§5.4), so the server, having now
 * taken more than half its window, raises WT_MAX_DATA past the window
 * plus both streams' bodies (less the one packet that arrived).  Counting
 * only what arrived it would stay under half and send nothing.  Session B must still echo. */
#define FC_RESET_FIRST 30000
#define FC_RESET_LOST 8000
static void sc_fc_reset(struct probe *p)
{
    static struct pstream *lost;
    uint64_t lim = 0, want;

    switch (p->phase) {
    case 0: {
        if (need_ab(p) <= 0)
            return;
        if (need_echo(p, &g_e1, p->a, FC_RESET_FIRST, 31, true,
                      "session A") <= 0)
            return;
        if (p->a->max_data_recv) {
            finish(p, EXIT_NOPASS, "fc-reset: WT_MAX_DATA %" PRIu64 " came "
                   "already (is the server's window not 64 KiB?)",
                   p->a->max_data_recv);
            return;
        }
        if (!(lost = open_lost(p, FC_RESET_LOST, 32)))
            return;
        p->phase = 1;
        return;
    }
    case 1:
        if (!reset_lost(p, lost))
            return;
        p->phase = 2;
        /* fall through */
    case 2:
        srv_setting(p, WIRE_SETTING_WT_INITIAL_MAX_DATA, &lim);
        /* (less up to 3 000 bytes the echo may not have consumed when
         * the last update left: the first packet's, which it consumes
         * after the server answers the reset, past half the window by
         * then, so without a capsule of their own; 2 230 seen on a busy
         * machine.  Counting only what arrived the limit stops at the
         * window + FC_RESET_FIRST + one packet, ~1 200 bytes.) */
        want = lim + FC_RESET_FIRST + FC_RESET_LOST - 3000;
        if (p->a->st->reset_recv || p->a->close_recv) {
            finish(p, EXIT_NOPASS, "fc-reset FAIL: session A ended");
            return;
        }
        if (p->a->max_data_recv < want) {
            WAIT("waiting for WT_MAX_DATA past the window and both bodies");
            return;
        }
        p->phase = 3;
        /* fall through */
    case 3:
        if (b_echoes(p, &g_e2, 2048) <= 0)
            return;
        finish(p, EXIT_PASS, "fc-reset ok: WT_MAX_DATA %" PRIu64 " (window "
               "%" PRIu64 " + %d + %d reset); session B echoes",
               p->a->max_data_recv, lim, FC_RESET_FIRST, FC_RESET_LOST);
    }
}

/* fc-reset-over (with --draft 14|15 --fc-data 1000000): session A opens
 * a uni stream of the server's WT_INITIAL_MAX_DATA + FC_OVER_BY bytes of
 * which only the first packet arrives, and resets it: the final size
 * alone is past the session's limit (§5.4: a final size counts as data),
 * so A's CONNECT stream must be reset with WT_FLOW_CONTROL_ERROR although
 * the bytes that came were well inside it.  Session B must still echo.
 * (Counting only what arrived, A stays open and the probe times out.) */
#define FC_OVER_BY 1024
#define FC_OVER_WARM (48 * 1024) /* an echo, inside B's window */
#define FC_OVER_WARMS 8
#define FC_OVER_ROOM 4096
static void sc_fc_reset_over(struct probe *p)
{
    static struct pstream *lost;
    static struct echo *warm[FC_OVER_WARMS];
    static int nwarm;
    static uint64_t warm_sent;
    static size_t warm_len;
    uint64_t lim = 0;

    switch (p->phase) {
    case 0:
        if (need_ab(p) <= 0)
            return;
        if (!srv_setting(p, WIRE_SETTING_WT_INITIAL_MAX_DATA, &lim) ||
            lim == 0 || lim > (1u << 20) - FC_OVER_BY) {
            finish(p, EXIT_NOPASS, "fc-reset-over FAIL: the server's "
                   "WT_INITIAL_MAX_DATA is %" PRIu64, lim);
            return;
        }
        /* B echoes until our congestion window has room for the whole
         * stream below and its reset: none of its packets is ever
         * acknowledged, so what did not fit would wait for loss
         * detection, and the probes it sends meanwhile (its data again)
         * are dropped too, each doubling the next probe's timeout */
        while (ngtcp2_conn_get_cwnd_left(p->conn) <
               lim + FC_OVER_BY + FC_OVER_ROOM) {
            if (nwarm == FC_OVER_WARMS) {
                finish(p, EXIT_NOPASS, "fc-reset-over: the congestion "
                       "window has room for %" PRIu64 " bytes after %d "
                       "echoes", ngtcp2_conn_get_cwnd_left(p->conn),
                       nwarm);
                return;
            }
            /* (each inside B's WT_MAX_DATA: we send past no limit; the
             * server keeps at least half its window open) */
            if (!warm[nwarm]) {
                uint64_t b_lim = p->b->max_data_recv > lim ? p->b->max_data_recv
                                                            : lim;

                warm_len = b_lim - warm_sent < FC_OVER_WARM
                               ? (size_t)(b_lim - warm_sent)
                               : FC_OVER_WARM;
            }
            if (b_echoes(p, &warm[nwarm], warm_len) <= 0)
                return;
            warm_sent += warm_len;
            nwarm++;
        }
        if (!(lost = open_lost(p, (size_t)lim + FC_OVER_BY, 33)))
            return;
        p->phase = 1;
        return;
    case 1:
        if (!reset_lost(p, lost))
            return;
        p->phase = 2;
        /* fall through */
    case 2:
        if (a_fc_reset(p) <= 0)
            return;
        p->phase = 3;
        /* fall through */
    case 3:
        if (b_echoes(p, &g_e1, 2048) <= 0)
            return;
        finish(p, EXIT_PASS, "fc-reset-over ok: a reset whose final size is "
               "past WT_MAX_DATA: session A got %.300s; session B echoes",
               p->saved);
    }
}

static void sc_capsule_truncated(struct probe *p)
{
    sc_bad_capsule(p, 0);
}
static void sc_capsule_oversized(struct probe *p)
{
    sc_bad_capsule(p, 1);
}
static void sc_capsule_grease(struct probe *p)
{
    sc_bad_capsule(p, 2);
}
static void sc_capsule_merged(struct probe *p);
static void sc_capsule_dgram_oversized(struct probe *p)
{
    sc_bad_capsule(p, 4);
}

/* dgram-unknown-session [COUNT] */
static void sc_dgram_unknown(struct probe *p)
{
    if (!arg_size(p, 0, 20, &g_count) || g_count == 0) {
        finish(p, EXIT_USAGE, "dgram-unknown-session: bad COUNT");
        return;
    }
    switch (p->phase) {
    case 0:
        if (need_session(p, &p->a, "/echo", "A") <= 0)
            return;
        {
            static const uint8_t junk[] = "for nobody";
            note("datagram for non-existent session 4000");
            dgram_send(p, 4000, junk, sizeof(junk) - 1);
            dgram_send(p, 4000 + 4 * 1000, junk, sizeof(junk) - 1);
        }
        p->phase = 1;
        p->t_mark = now_ns();
        return;
    case 1:
        if (!session_intact(p, p->a, "A"))
            return;
        if (dgram_run(p, p->a) == 0)
            return;
        {
            size_t bad, foreign;
            memset(g_seen, 0, g_count);
            (void)dgram_scan(p, p->a, g_seen, p->counter, &bad, &foreign);
            if (foreign) {
                finish(p, EXIT_NOPASS,
                       "dgram-unknown-session FAIL: %zu datagram(s) came back "
                       "for a session we do not have",
                       foreign);
                return;
            }
        }
        dgram_verdict(p, p->a, " after the unknown-session datagrams");
    }
}

static void to_dgram_unknown(struct probe *p)
{
    if (p->phase == 1 && g_seen)
        dgram_verdict(p, p->a, " (at the deadline)");
}

/* close CODE REASON */
static void sc_close(struct probe *p)
{
    char f[128];
    unsigned long code = strtoul(p->args[0], NULL, 0);
    const char *reason = p->nargs > 1 ? p->args[1] : "";
    switch (p->phase) {
    case 0:
        if (need_session(p, &p->a, "/echo", "A") <= 0)
            return;
        session_send_close(p, p->a, (uint32_t)code, reason);
        p->phase = 1;
        /* fall through */
    case 1:
        WAIT("waiting for the server's FIN on the CONNECT stream");
        if (p->a->st->reset_recv || p->a->st->stop_recv) {
            finish(p, EXIT_NOPASS,
                   "close FAIL: CONNECT stream got %s instead of FIN",
                   stream_fate(p->a->st, f, sizeof(f)));
            return;
        }
        if (!p->a->end_stream)
            return;
        finish(p, EXIT_PASS,
               "close ok: code %lu reason \"%s\" sent, server FIN%s", code,
               reason,
               p->a->close_recv ? " (after its own CLOSE capsule)" : "");
    }
}

/* server-close PATH CODE REASON */
static void sc_server_close(struct probe *p)
{
    int i = 0;
    const char *path = arg_path(p, &i);
    char f[128];
    if (i + 2 > p->nargs) {
        finish(p, EXIT_USAGE, "server-close PATH CODE REASON");
        return;
    }
    unsigned long code = strtoul(p->args[i], NULL, 0);
    const char *reason = p->args[i + 1];
    switch (p->phase) {
    case 0:
        if (need_session(p, &p->a, path, "A") <= 0)
            return;
        p->phase = 1;
        /* fall through */
    case 1:
        WAIT("waiting for the server's CLOSE capsule");
        if (!p->a->close_recv) {
            if (p->a->st->reset_recv || p->a->end_stream) {
                finish(p, EXIT_NOPASS,
                       "server-close FAIL: CONNECT stream got %s without a "
                       "CLOSE capsule",
                       p->a->end_stream ? "FIN"
                                        : stream_fate(p->a->st, f, sizeof(f)));
                return;
            }
            return;
        }
        /* answer like a browser: FIN on our side */
        session_send_raw(p, p->a, NULL, 0, true);
        bool ok =
            p->a->close_code == code && strcmp(p->a->close_reason, reason) == 0;
        finish(p, ok ? EXIT_PASS : EXIT_NOPASS,
               "server-close %s code %" PRIu32 " reason \"%s\"%s",
               ok ? "ok" : "FAIL:", p->a->close_code, p->a->close_reason,
               ok ? "" : " (not what was expected)");
    }
}

/* draft PATH */
static void sc_draft(struct probe *p)
{
    int i = 0;
    const char *path = arg_path(p, &i);
    char ids[600];
    size_t off = 0;
    ids[0] = 0;
    for (size_t k = 0; k < p->nsrv && off < sizeof(ids) - 40; k++)
        off += (size_t)snprintf(ids + off, sizeof(ids) - off, "%s0x%" PRIx64,
                                k ? "," : "", p->srv[k].id);
    uint64_t need = p->draft == 2   ? WIRE_SETTING_ENABLE_WEBTRANSPORT
                    : p->draft == 7 ? WIRE_SETTING_WT_MAX_SESSIONS_D07
                                    : WIRE_SETTING_WT_ENABLED;
    uint64_t val = 0;
    if (!srv_setting(p, need, &val) || val == 0) {
        finish(p, EXIT_NOPASS,
               "draft %02d FAIL: server SETTINGS lack 0x%" PRIx64
               " (%s); ids: %s",
               p->draft, need, setting_name(need), ids);
        return;
    }
    if (p->draft == 15 && val != 1) {
        finish(p, EXIT_NOPASS, "draft 15 FAIL: WT_ENABLED = %" PRIu64, val);
        return;
    }
    if (need_session(p, &p->a, path, "A") <= 0)
        return;
    if (p->draft == 2 && strcmp(p->a->draft_hdr, "draft02") != 0) {
        finish(p, EXIT_NOPASS,
               "draft 02 FAIL: response lacks sec-webtransport-http3-draft: "
               "draft02 (got \"%s\"); settings %s",
               p->a->draft_hdr, ids);
        return;
    }
    if (need_echo(p, &g_e1, p->a, 64, 3, false, "bidi") <= 0)
        return;
    finish(p, EXIT_PASS,
           "draft %02d ok: status %d%s%s, echo ok; server settings %s",
           p->draft, p->a->status,
           p->a->draft_hdr[0] ? ", sec-webtransport-http3-draft: " : "",
           p->a->draft_hdr, ids);
}

/* no-read PATH BYTES MAXSTALL: sends BYTES on a bidi stream without reading
 * the echo (no flow-control credit back).  The server must stop accepting
 * once its echo buffer and our window are full: the stall point must be at
 * most MAXSTALL bytes.  Then we read, and the whole echo must arrive intact. */
static struct echo *g_nr;
static size_t g_nr_last;

static void sc_no_read(struct probe *p)
{
    int i = 0;
    const char *path = arg_path(p, &i);
    size_t bytes, maxstall;
    if (!arg_size(p, i, 0, &bytes) || !arg_size(p, i + 1, 0, &maxstall) ||
        bytes == 0) {
        finish(p, EXIT_USAGE, "%s: bad byte counts", current->name);
        return;
    }
    if (need_session(p, &p->a, path, "A") <= 0)
        return;
    if (p->phase == 0) {
        if (!g_nr)
            g_nr = echo_start(p, p->a, bytes, 7, false);
        if (echo_poll(p, g_nr) < 0) {
            finish(p, EXIT_NOPASS, "%s FAIL: %s", current->name, g_nr->err);
            return;
        }
        if (g_nr->state != 1) {
            WAIT("waiting to open the stream");
            return;
        }
        g_nr->st->hold = true;
        g_nr_last = g_nr->st->outsent;
        p->t_mark = now_ns();
        p->phase = 1;
    }
    if (p->phase == 1) {
        struct pstream *st = g_nr->st;
        if (echo_poll(p, g_nr) < 0) {
            finish(p, EXIT_NOPASS, "%s FAIL: %s", current->name, g_nr->err);
            return;
        }
        if (st->outsent != g_nr_last) {
            g_nr_last = st->outsent;
            p->t_mark = now_ns();
        }
        if (st->outsent == st->outlen) {
            finish(p, EXIT_NOPASS,
                   "%s FAIL: all %zu bytes were accepted without reading "
                   "(%zu echoed back unread)",
                   current->name, bytes, st->in.len);
            return;
        }
        if (now_ns() - p->t_mark < 500 * 1000000ULL) {
            WAIT("waiting for the sender to stall");
            return;
        }
        size_t stall = st->outsent - st->prefix_len;
        if (stall > maxstall) {
            finish(p, EXIT_NOPASS,
                   "%s FAIL: stalled only after %zu bytes (limit %zu)",
                   current->name, stall, maxstall);
            return;
        }
        snprintf(p->saved, sizeof(p->saved),
                 "stalled at %zu bytes (%zu echoed unread)", stall, st->in.len);
        st->hold = false;
        extend_credit(p, st->id, st->held);
        st->held = 0;
        p->phase = 2;
    }
    int r = echo_poll(p, g_nr);
    if (r < 0) {
        finish(p, EXIT_NOPASS, "%s FAIL: %s", current->name, g_nr->err);
        return;
    }
    if (r == 0) {
        WAIT("waiting for the echo after reading resumed");
        return;
    }
    if (!session_intact(p, p->a, "A"))
        return;
    finish(p, EXIT_PASS, "%s ok: %s, then %zu bytes echoed intact",
           current->name, p->saved, bytes);
}

/* reset-loop [PATH] ROUNDS BYTES: ROUNDS times, sends up to BYTES on a bidi
 * stream without reading the echo, then resets it.  Whatever the server had
 * received on those streams must be credited back at connection level, so a
 * full-size echo still works afterwards. */
static struct echo *g_rl_last;

static void sc_reset_loop(struct probe *p)
{
    int i = 0;
    const char *path = arg_path(p, &i);
    size_t rounds, bytes;
    if (!arg_size(p, i, 0, &rounds) || !arg_size(p, i + 1, 0, &bytes) ||
        rounds == 0 || bytes == 0) {
        finish(p, EXIT_USAGE, "%s: bad arguments", current->name);
        return;
    }
    if (need_session(p, &p->a, path, "A") <= 0)
        return;
    while (p->counter < rounds) {
        if (!p->probe_st) {
            uint8_t *data = xmalloc(bytes);
            fill_pattern(data, bytes, (uint32_t)p->counter);
            p->probe_st = wt_open(p, (uint64_t)p->a->id, true, data, bytes,
                                  false);
            free(data);
            if (!p->probe_st) {
                WAIT("waiting for stream credit");
                return;
            }
            p->probe_st->hold = true;
            p->counter2 = 0;
            p->t_mark = now_ns();
        }
        struct pstream *st = p->probe_st;
        if (st->outsent != p->counter2) {
            p->counter2 = st->outsent;
            p->t_mark = now_ns();
        }
        if (st->outsent < st->outlen && now_ns() - p->t_mark < 200000000ULL) {
            WAIT("waiting for the round's bytes to leave");
            return;
        }
        int rv = ngtcp2_conn_shutdown_stream(p->conn, 0, st->id, 0x10c);
        if (rv != 0) {
            finish(p, EXIT_NOPASS, "%s FAIL: shutdown stream: %s",
                   current->name, ngtcp2_strerror(rv));
            return;
        }
        ngtcp2_conn_extend_max_offset(p->conn, st->held);
        st->held = 0;
        st->hold = false;
        dbg("round %zu: reset stream %" PRId64 " after %zu bytes", p->counter,
            st->id, st->outsent);
        p->probe_st = NULL;
        p->counter++;
    }
    if (!session_intact(p, p->a, "A"))
        return;
    if (need_echo(p, &g_rl_last, p->a, bytes * 4, 99, false, "final") <= 0)
        return;
    finish(p, EXIT_PASS, "%s ok: %zu resets of %zu-byte streams, then a %zu-byte "
           "echo", current->name, rounds, bytes, bytes * 4);
}

/* stop-sending [PATH] BYTES: sends BYTES on a bidi stream and at once stops
 * reading its echo (STOP_SENDING).  Echo must abort the other direction too:
 * our sending side gets stopped instead of stalling on withheld credit.  The
 * session keeps working. */
static struct echo *g_ss_after;

static void sc_stop_sending(struct probe *p)
{
    int i = 0;
    const char *path = arg_path(p, &i);
    size_t bytes;
    if (!arg_size(p, i, 0, &bytes) || bytes == 0) {
        finish(p, EXIT_USAGE, "%s: bad byte count", current->name);
        return;
    }
    if (need_session(p, &p->a, path, "A") <= 0)
        return;
    if (!p->probe_st) {
        uint8_t *data = xmalloc(bytes);
        fill_pattern(data, bytes, 5);
        p->probe_st = wt_open(p, (uint64_t)p->a->id, true, data, bytes, false);
        free(data);
        if (!p->probe_st) {
            WAIT("waiting for stream credit");
            return;
        }
        int rv = ngtcp2_conn_shutdown_stream_read(p->conn, 0, p->probe_st->id,
                                                  wire_wt_error_to_h3(7));
        if (rv != 0) {
            finish(p, EXIT_NOPASS, "%s FAIL: shutdown read: %s", current->name,
                   ngtcp2_strerror(rv));
            return;
        }
    }
    struct pstream *st = p->probe_st;
    if (!st->shut_wr && !st->closed) {
        if (st->outsent == st->outlen) {
            finish(p, EXIT_NOPASS,
                   "%s FAIL: all %zu bytes were accepted although nothing "
                   "could be echoed",
                   current->name, bytes);
            return;
        }
        WAIT("waiting for the server to stop our sending side");
        return;
    }
    if (!session_intact(p, p->a, "A"))
        return;
    if (need_echo(p, &g_ss_after, p->a, 1000, 3, false, "after") <= 0)
        return;
    finish(p, EXIT_PASS, "%s ok: sending stopped after %zu of %zu bytes; the "
           "session still echoes", current->name,
           st->outsent - st->prefix_len, bytes);
}

/* sessions [PATH] N: opens N sessions on one connection at once and reports
 * their response statuses in order ("statuses 200 200 429"); passes when every
 * session got a status.  Accepted sessions must echo (bc-members: the same
 * on a broadcast route, without the echo). */
#define MAX_PSESSIONS 64
static struct session *g_ss[MAX_PSESSIONS];
static struct echo *g_se[MAX_PSESSIONS];

static void sessions_run(struct probe *p, bool echo)
{
    int i = 0;
    const char *path = arg_path(p, &i);
    size_t n;
    if (!arg_size(p, i, 2, &n) || n == 0 || n > MAX_PSESSIONS) {
        finish(p, EXIT_USAGE, "%s: N must be 1..%d", current->name,
               MAX_PSESSIONS);
        return;
    }
    char f[128];
    for (size_t k = 0; k < n; k++) {
        if (!g_ss[k] && !(g_ss[k] = session_open(p, path, REQ_NORMAL))) {
            finish(p, EXIT_NOPASS, "%s FAIL: cannot open session %zu",
                   current->name, k + 1);
            return;
        }
        struct session *s = g_ss[k];
        if (!s->headers_done || !s->status) {
            if (s->st->reset_recv || s->end_stream) {
                finish(p, EXIT_NOPASS, "%s FAIL: session %zu got %s",
                       current->name, k + 1,
                       s->end_stream ? "FIN" : stream_fate(s->st, f, sizeof(f)));
                return;
            }
            WAIT("waiting for the responses");
            return;
        }
        if (s->status != 200 || !echo)
            continue;
        int r = need_echo(p, &g_se[k], s, 100, (uint32_t)(200 + k), false,
                          "session");
        if (r <= 0)
            return;
    }
    char *o = p->saved;
    size_t left = sizeof(p->saved);
    for (size_t k = 0; k < n && left > 5; k++) {
        int w = snprintf(o, left, " %d", g_ss[k]->status);
        o += w;
        left -= (size_t)w;
    }
    finish(p, EXIT_PASS, "%s ok: statuses%s", current->name, p->saved);
}

static void sc_sessions(struct probe *p)
{
    sessions_run(p, true);
}

static void sc_bc_members(struct probe *p)
{
    sessions_run(p, false);
}

/* settings-late [PATH] N MS: our control stream (and so our SETTINGS) held
 * back; N CONNECTs sent at once must get no answer for MS milliseconds
 * (draft-16 §7.1: the server waits for the client's SETTINGS, holding
 * nothing but the requests), then, the SETTINGS sent, every one must be
 * answered and echo. */
static void sc_settings_late(struct probe *p)
{
    int i = 0;
    const char *path = arg_path(p, &i);
    size_t n, ms;
    if (!arg_size(p, i, 0, &n) || n == 0 || n > MAX_PSESSIONS ||
        !arg_size(p, i + 1, 0, &ms) || ms == 0) {
        finish(p, EXIT_USAGE, "%s: N (1..%d) MS", current->name,
               MAX_PSESSIONS);
        return;
    }
    if (!p->late_ctrl_len) {
        sessions_run(p, true);
        return;
    }
    if (!p->t_mark) {
        for (size_t k = 0; k < n; k++)
            if (!(g_ss[k] = session_open(p, path, REQ_NORMAL))) {
                finish(p, EXIT_NOPASS, "%s FAIL: cannot open session %zu",
                       current->name, k + 1);
                return;
            }
        p->t_mark = now_ns();
    }
    for (size_t k = 0; k < n; k++)
        if (g_ss[k]->headers_done || g_ss[k]->st->reset_recv) {
            finish(p, EXIT_NOPASS, "%s FAIL: session %zu answered before our "
                   "SETTINGS", current->name, k + 1);
            return;
        }
    if (now_ns() - p->t_mark < (uint64_t)ms * 1000000ULL) {
        WAIT("holding our SETTINGS back");
        return;
    }
    uint8_t *out = xmalloc(p->late_ctrl_len);
    memcpy(out, p->late_ctrl, p->late_ctrl_len);
    if (!open_raw(p, false, SK_OWNCTRL, out, p->late_ctrl_len, false)) {
        finish(p, EXIT_USAGE, "%s: cannot open our control stream",
               current->name);
        return;
    }
    p->late_ctrl_len = 0;
    sessions_run(p, true);
}

/* open-streams [PATH] N: opens N bidi streams at once and keeps them open
 * (no FIN); each must either echo its 10 bytes or be reset.  Reports
 * "N echoing, M rejected (CODE)" with the first rejection code. */
static struct pstream *g_os[MAX_ECHOES];

static void sc_open_streams(struct probe *p)
{
    size_t n;
    if (need_stream_count(p, &n) <= 0)
        return;
    static const uint8_t ten[10] = "0123456789";
    while (p->counter < n) {
        struct pstream *st =
            wt_open(p, (uint64_t)p->a->id, true, ten, sizeof(ten), false);
        if (!st) {
            WAIT("waiting for stream credit");
            return;
        }
        g_os[p->counter++] = st;
    }
    size_t echoing = 0, rejected = 0;
    uint64_t code = 0;
    for (size_t k = 0; k < n; k++) {
        struct pstream *st = g_os[k];
        if (st->reset_recv) {
            if (rejected++ == 0)
                code = st->reset_code;
        } else if (st->in.len >= sizeof(ten)) {
            if (memcmp(st->in.p, ten, sizeof(ten)) != 0) {
                finish(p, EXIT_NOPASS, "%s FAIL: stream %" PRId64 " echoed "
                       "other bytes", current->name, st->id);
                return;
            }
            echoing++;
        }
    }
    if (echoing + rejected < n) {
        snprintf(p->info, sizeof(p->info),
                 "waiting for echoes or resets (%zu + %zu of %zu)", echoing,
                 rejected, n);
        p->waiting = p->info;
        return;
    }
    if (!session_intact(p, p->a, "A"))
        return;
    if (rejected)
        finish(p, EXIT_PASS, "%s ok: %zu echoing, %zu rejected (0x%" PRIx64
               ")", current->name, echoing, rejected, code);
    else
        finish(p, EXIT_PASS, "%s ok: %zu echoing, 0 rejected", current->name,
               echoing);
}

/* ------------------------------------------------------------------ */
/* misbehaving on purpose: the attacks of the security review (issue 8)
 * and their siblings; tests/it/4x-*.sh run each beside a well-behaved
 * client that must stay served. */

/* The next bidi stream id ngtcp2 will give us: a session opened next gets
 * it, so streams can name a session before its CONNECT is sent. */
static int64_t next_bidi_id(struct probe *p)
{
    int64_t next = 0;
    for (struct pstream *st = p->streams; st; st = st->next)
        if (st->local && st->bidi && st->id + 4 > next)
            next = st->id + 4;
    return next;
}

/* A stream ngtcp2 has closed is dropped from our list (long scenarios
 * open thousands). */
static void stream_forget(struct probe *p, struct pstream *st)
{
    for (struct pstream **pp = &p->streams; *pp; pp = &(*pp)->next) {
        if (*pp == st) {
            *pp = st->next;
            break;
        }
    }
    if (p->rr == st)
        p->rr = NULL;
    free(st->out);
    bytes_free(&st->pre);
    bytes_free(&st->in);
    free(st);
}

static void sc_capsule_merged(struct probe *p)
{
    sc_bad_capsule(p, 3);
}

/* critical-stream ACTION: ends one of the HTTP/3 streams that must live as
 * long as the connection (RFC 9114 §6.2.1, RFC 9204 §4.2) and expects the
 * server to close the connection with H3_CLOSED_CRITICAL_STREAM:
 *   stop-control, stop-qpack-enc, stop-qpack-dec: STOP_SENDING on the
 *     server's stream (with --max-data 1 the server's control stream still
 *     holds unsent bytes then: MAX_DATA follows the STOP_SENDING);
 *   fin-control, reset-control: our own control stream ends. */
static void sc_critical(struct probe *p)
{
    const char *act = p->args[0];
    struct pstream *target = NULL;

    if (p->phase == 0) {
        /* once the handshake has settled (a STOP_SENDING queued in the
         * very first 1-RTT flight is not sent by ngtcp2 1.11) */
        if (!p->t_mark)
            p->t_mark = now_ns();
        if (now_ns() - p->t_mark < 100000000ULL) {
            WAIT("waiting for the handshake to settle");
            return;
        }
        if (strncmp(act, "stop-", 5) == 0) {
            uint64_t want = strcmp(act, "stop-control") == 0 ? WIRE_H3_STREAM_CONTROL
                            : strcmp(act, "stop-qpack-enc") == 0
                                ? WIRE_H3_STREAM_QPACK_ENC
                                : WIRE_H3_STREAM_QPACK_DEC;
            for (struct pstream *st = p->streams; st; st = st->next)
                if (!st->local && !st->bidi &&
                    (st->kind == SK_H3CTRL || st->kind == SK_H3) &&
                    st->utype == want)
                    target = st;
            if (!target) {
                WAIT("waiting for the server's stream");
                return;
            }
            int rv = ngtcp2_conn_shutdown_stream_read(p->conn, 0, target->id,
                                                      NGHTTP3_H3_NO_ERROR);
            target->h3_gone = true; /* our nghttp3 would close on it */
            if (rv != 0) {
                finish(p, EXIT_USAGE, "%s: shutdown_stream_read: %s",
                       current->name, ngtcp2_strerror(rv));
                return;
            }
            note("STOP_SENDING on server stream %" PRId64 " (type 0x%" PRIx64
                 ")%s",
                 target->id, want, p->max_data ? " and MAX_DATA" : "");
        } else if (strcmp(act, "fin-control") == 0 ||
                   strcmp(act, "reset-control") == 0) {
            for (struct pstream *st = p->streams; st; st = st->next)
                if (st->kind == SK_OWNCTRL)
                    target = st;
            if (!target) {
                finish(p, EXIT_USAGE, "%s: no control stream", current->name);
                return;
            }
            if (act[0] == 'f') {
                target->out_fin = true;
                note("FIN on our control stream %" PRId64, target->id);
            } else {
                ngtcp2_conn_shutdown_stream_write(p->conn, 0, target->id,
                                                  NGHTTP3_H3_NO_ERROR);
                note("RESET_STREAM on our control stream %" PRId64,
                     target->id);
            }
        } else {
            finish(p, EXIT_USAGE, "%s: unknown action %s", current->name, act);
            return;
        }
        p->phase = 1;
        p->t_mark = now_ns();
    }
    if (p->phase == 1) {
        /* in the same flight as the STOP_SENDING: the server may write
         * again while its stream is stopped but not yet gone */
        if (p->max_data) {
            p->max_data_released = true;
            ngtcp2_conn_extend_max_offset(p->conn, 16 * 1024 * 1024);
        }
        p->phase = 2;
    }
    WAIT("waiting for the server to close the connection");
}

static void cl_critical(struct probe *p)
{
    if (p->close_app && p->close_code == NGHTTP3_H3_CLOSED_CRITICAL_STREAM)
        finish(p, EXIT_PASS,
               "%s ok: %s: connection closed with H3_CLOSED_CRITICAL_STREAM",
               current->name, p->args[0]);
    else
        finish(p, EXIT_NOPASS,
               "%s FAIL: %s: connection closed with %s error 0x%" PRIx64
               ", expected H3_CLOSED_CRITICAL_STREAM (0x104)",
               current->name, p->args[0],
               p->close_app ? "application" : "transport", p->close_code);
}

/* spoof-path [PATH] BYTES: while a bulk echo runs, garbage short-header
 * packets carrying the connection's CID arrive from another address
 * (127.0.0.2).  They cannot be authenticated: the server must neither
 * answer there nor move the connection; the echo completes. */
#define SPOOF_PKTS 40
static void spoof_read(struct probe *p)
{
    uint8_t buf[2048];
    while (p->spoof_fd >= 0 &&
           recv(p->spoof_fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
        p->spoof_got++;
}

static void sc_spoof_path(struct probe *p)
{
    int i = 0;
    const char *path = arg_path(p, &i);
    size_t bytes;
    if (!arg_size(p, i, 4 << 20, &bytes) || bytes == 0 ||
        p->remote.ss_family != AF_INET) {
        finish(p, EXIT_USAGE, "%s: BYTES, against 127.0.0.1", current->name);
        return;
    }
    if (need_session(p, &p->a, path, "A") <= 0)
        return;
    if (p->phase == 0) {
        p->spoof_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (p->spoof_fd < 0 || bind_local(p->spoof_fd, "127.0.0.2") != 0) {
            finish(p, EXIT_USAGE, "%s: no socket on 127.0.0.2", current->name);
            return;
        }
        p->phase = 1;
    }
    spoof_read(p);
    int r = echo_poll(p, g_e1 ? g_e1 : (g_e1 = echo_start(p, p->a, bytes, 41, false)));
    if (r < 0) {
        finish(p, EXIT_NOPASS, "%s FAIL: echo: %s", current->name, g_e1->err);
        return;
    }
    if (p->phase == 1 && g_e1->st && g_e1->st->in.len > 0 &&
        p->counter < SPOOF_PKTS && now_ns() - p->t_mark > 2000000ULL) {
        /* short header, fixed bit, the server's CID, random rest */
        uint8_t pkt[1200];
        const ngtcp2_cid *dcid = ngtcp2_conn_get_dcid(p->conn);
        (void)gnutls_rnd(GNUTLS_RND_NONCE, pkt, sizeof(pkt));
        pkt[0] = (uint8_t)(0x40 | (pkt[0] & 0x3f));
        memcpy(pkt + 1, dcid->data, dcid->datalen);
        sendto(p->spoof_fd, pkt, sizeof(pkt), 0,
               (struct sockaddr *)&p->remote, p->remotelen);
        p->counter++;
        p->t_mark = now_ns();
    }
    if (r == 0) {
        WAIT("waiting for the echo");
        return;
    }
    if (p->phase == 1) {
        p->phase = 2;
        p->t_mark = now_ns();
    }
    if (now_ns() - p->t_mark < 300000000ULL) {
        WAIT("listening on the spoofed address");
        return;
    }
    if (p->spoof_got)
        finish(p, EXIT_NOPASS,
               "%s FAIL: the server sent %zu packets to the spoofed address "
               "after %zu spoofed packets",
               current->name, p->spoof_got, p->counter);
    else
        finish(p, EXIT_PASS,
               "%s ok: %zu spoofed packets, none answered, the connection "
               "stayed; %zu-byte echo intact",
               current->name, p->counter, bytes);
}

/* rebind [PATH] BYTES [ADDR]: NAT rebinding in the middle of a bulk echo:
 * our packets leave from a new address (default 127.0.0.3) while our QUIC
 * stack still believes in the old one, as behind a NAT.  The server must
 * validate the new path and carry on there. */
static void sc_rebind(struct probe *p)
{
    int i = 0;
    const char *path = arg_path(p, &i);
    size_t bytes;
    const char *addr = i + 1 < p->nargs ? p->args[i + 1] : "127.0.0.3";
    if (!arg_size(p, i, 4 << 20, &bytes) || bytes == 0 ||
        p->remote.ss_family != AF_INET) {
        finish(p, EXIT_USAGE, "%s: BYTES [ADDR], against 127.0.0.1",
               current->name);
        return;
    }
    if (need_session(p, &p->a, path, "A") <= 0)
        return;
    if (need_echo(p, &g_e1, p->a, bytes, 43, false, "bulk") < 0)
        return;
    if (p->phase == 0 && g_e1->st && g_e1->st->in.len >= bytes / 4) {
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        int sz = 4 * 1024 * 1024;
        if (fd < 0 || bind_local(fd, addr) != 0 ||
            connect(fd, (struct sockaddr *)&p->remote, p->remotelen) != 0) {
            finish(p, EXIT_USAGE, "%s: cannot rebind to %s", current->name,
                   addr);
            if (fd >= 0)
                close(fd);
            return;
        }
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
        ev_io_stop(p->loop, &p->rev);
        close(p->fd);
        p->fd = fd;
        ev_io_set(&p->rev, fd, EV_READ);
        ev_io_start(p->loop, &p->rev);
        note("rebound to %s after %zu echoed bytes", addr, g_e1->st->in.len);
        p->phase = 1;
    }
    if (g_e1->state != 2)
        return;
    if (p->phase == 0) {
        finish(p, EXIT_USAGE, "%s: the echo ended before the rebinding",
               current->name);
        return;
    }
    finish(p, EXIT_PASS, "%s ok: %zu-byte echo completed across a rebinding "
           "to %s", current->name, bytes, addr);
}

/* uni-hoard [PATH] COUNT BYTES fin|reset [LIMIT]: opens COUNT uni streams of
 * BYTES each (16 at a time), each ended by FIN or by a reset once its bytes
 * are out.  Run with --uni-streams 3 the server can open no stream to echo
 * them on; with --uni-window 0 it can open them and never send.  Reports
 * how much the server accepted before it stopped giving credit; with LIMIT
 * more than LIMIT bytes fails. */
#define HOARD_INFLIGHT 16
static struct pstream *g_uh[HOARD_INFLIGHT];

static void sc_uni_hoard(struct probe *p)
{
    int i = 0;
    const char *path = arg_path(p, &i);
    size_t count, bytes, limit = 0;
    bool reset;
    if (!arg_size(p, i, 0, &count) || !arg_size(p, i + 1, 0, &bytes) ||
        count == 0 || bytes == 0 || i + 2 >= p->nargs ||
        (strcmp(p->args[i + 2], "fin") != 0 &&
         strcmp(p->args[i + 2], "reset") != 0) ||
        !arg_size(p, i + 3, 0, &limit)) {
        finish(p, EXIT_USAGE, "%s: COUNT BYTES fin|reset [LIMIT]",
               current->name);
        return;
    }
    reset = p->args[i + 2][0] == 'r';
    if (need_session(p, &p->a, path, "A") <= 0)
        return;
    if (!p->t_mark)
        p->t_mark = now_ns();
    uint64_t total = 0;
    size_t active = 0;
    for (size_t k = 0; k < HOARD_INFLIGHT; k++) {
        struct pstream *st = g_uh[k];
        if (!st)
            continue;
        if (reset && !st->shut_wr && st->outsent == st->outlen) {
            ngtcp2_conn_shutdown_stream_write(p->conn, 0, st->id,
                                              wire_wt_error_to_h3(9));
            st->shut_wr = true;
        }
        if (st->outsent == st->outlen && (reset || st->fin_sent)) {
            p->info[0] = 0;
            p->counter2 += st->outsent - st->prefix_len; /* done: counted */
            g_uh[k] = NULL;
            continue;
        }
        total += st->outsent > st->prefix_len ? st->outsent - st->prefix_len : 0;
        active++;
    }
    total += p->counter2;
    while (active < HOARD_INFLIGHT && p->counter < count) {
        uint8_t *data = xmalloc(bytes);
        fill_pattern(data, bytes, (uint32_t)p->counter);
        struct pstream *st =
            wt_open(p, (uint64_t)p->a->id, false, data, bytes, !reset);
        free(data);
        if (!st)
            break; /* the server's uni stream limit */
        for (size_t k = 0; k < HOARD_INFLIGHT; k++)
            if (!g_uh[k]) {
                g_uh[k] = st;
                break;
            }
        p->counter++;
        active++;
    }
    /* the streams ngtcp2 is done with go, and their buffers with them */
    for (struct pstream *st = p->streams, *next; st; st = next) {
        next = st->next;
        bool ours = false;
        for (size_t k = 0; k < HOARD_INFLIGHT; k++)
            ours |= g_uh[k] == st;
        if (st->closed && st->local && !st->bidi && st->kind == SK_WT && !ours)
            stream_forget(p, st);
    }
    static uint64_t last_total;
    if (total != last_total) {
        last_total = total; /* progress */
        p->t_mark = now_ns();
    }
    bool stalled = now_ns() - p->t_mark > 1500000000ULL;
    if (!stalled && (p->counter < count || active > 0)) {
        snprintf(p->info, sizeof(p->info),
                 "hoarding: %zu streams opened, %" PRIu64 " bytes taken",
                 p->counter, total);
        p->waiting = p->info;
        return;
    }
    if (limit && total > limit) {
        finish(p, EXIT_NOPASS,
               "%s FAIL: the server took %" PRIu64 " bytes in %zu streams "
               "(limit %zu)",
               current->name, total, p->counter, limit);
        return;
    }
    finish(p, EXIT_PASS, "%s ok: %zu streams, %" PRIu64 " bytes taken, %s",
           current->name, p->counter, total,
           stalled ? "then the server gave no more credit" : "all sent");
}

/* early-uni [PATH] BYTES: a uni stream with BYTES and FIN naming the
 * session we open next, completely delivered (and so closed by QUIC)
 * before its CONNECT is even sent.  Its bytes must survive until the
 * session exists: the echo arrives. */
static void sc_early_uni(struct probe *p)
{
    int i = 0;
    const char *path = arg_path(p, &i);
    size_t bytes;
    if (!arg_size(p, i, 1000, &bytes) || bytes == 0) {
        finish(p, EXIT_USAGE, "%s: bad byte count", current->name);
        return;
    }
    switch (p->phase) {
    case 0:
        g_e1 = echo_start(p, NULL, bytes, 51, true);
        p->counter2 = (size_t)next_bidi_id(p);
        p->probe_st = wt_open(p, p->counter2, false, g_e1->data, bytes, true);
        if (!p->probe_st) {
            finish(p, EXIT_USAGE, "%s: no uni stream", current->name);
            return;
        }
        p->phase = 1;
        /* fall through */
    case 1:
        if (!p->probe_st->closed) {
            WAIT("waiting for the early stream to be acknowledged");
            return;
        }
        note("early uni stream %" PRId64 " fully acknowledged: now the "
             "CONNECT",
             p->probe_st->id);
        p->phase = 2;
        /* fall through */
    case 2:
        if (need_session(p, &p->a, path, "A") <= 0)
            return;
        if ((size_t)p->a->id != p->counter2) {
            finish(p, EXIT_USAGE, "%s: the session got id %" PRId64
                   ", not %zu", current->name, p->a->id, p->counter2);
            return;
        }
        g_e1->s = p->a;
        g_e1->st = p->probe_st;
        g_e1->state = 1;
        p->phase = 3;
        /* fall through */
    case 3:
        if (need_echo(p, &g_e1, p->a, bytes, 51, true, "early") <= 0)
            return;
        finish(p, EXIT_PASS, "%s ok: a %zu-byte uni stream sent before its "
               "CONNECT was echoed", current->name, bytes);
    }
}

/* slot-wait: for max_streams_per_session = 2.  A bidi stream stays open
 * (echoing), then a uni stream with FIN arrives: its echo needs a third
 * stream and must wait; once the bidi stream finishes, the slot it frees
 * must bring the uni echo. */
static void sc_slot_wait(struct probe *p)
{
    static const uint8_t ten[10] = "0123456789";
    switch (p->phase) {
    case 0:
        if (need_session(p, &p->a, "/echo", "A") <= 0)
            return;
        p->probe_st = wt_open(p, (uint64_t)p->a->id, true, ten, 10, false);
        if (!p->probe_st) {
            WAIT("waiting for stream credit");
            return;
        }
        p->phase = 1;
        /* fall through */
    case 1:
        if (p->probe_st->reset_recv || p->probe_st->stop_recv) {
            finish(p, EXIT_NOPASS, "%s FAIL: the bidi stream was refused",
                   current->name);
            return;
        }
        if (p->probe_st->in.len < 10) {
            WAIT("waiting for the bidi echo");
            return;
        }
        g_e1 = echo_start(p, p->a, 100, 52, true);
        if (echo_poll(p, g_e1) < 0) {
            finish(p, EXIT_NOPASS, "%s FAIL: uni: %s", current->name,
                   g_e1->err);
            return;
        }
        p->t_mark = now_ns();
        p->phase = 2;
        /* fall through */
    case 2:
        if (now_ns() - p->t_mark < 300000000ULL) {
            WAIT("letting the uni echo wait for a slot");
            return;
        }
        note("ending the bidi stream (FIN): its slot frees");
        p->probe_st->out_fin = true;
        p->phase = 3;
        /* fall through */
    case 3:
        if (need_echo(p, &g_e1, p->a, 100, 52, true, "uni") <= 0)
            return;
        if (!p->probe_st->fin_recv) {
            WAIT("waiting for the bidi stream's FIN");
            return;
        }
        finish(p, EXIT_PASS, "%s ok: the uni echo came once a slot freed",
               current->name);
    }
}

/* refused-streams [N]: N times, a CONNECT for a path with no route (404)
 * and, in the same flight, a bidi stream and a uni stream with FIN naming
 * it.  Each bidi stream must be refused with WT_SESSION_GONE (not left
 * waiting, not BUFFERED_STREAM_REJECTED once the waiting list is full);
 * then session A still echoes a stream sent before its own CONNECT. */
#define MAX_REFUSED 100
static struct session *g_rs[MAX_REFUSED];
static struct pstream *g_rst[MAX_REFUSED];

static void sc_refused_streams(struct probe *p)
{
    size_t n;
    char f[128];
    if (!arg_size(p, 0, 40, &n) || n == 0 || n > MAX_REFUSED) {
        finish(p, EXIT_USAGE, "%s: N must be 1..%d", current->name,
               MAX_REFUSED);
        return;
    }
    static const uint8_t ten[10] = "0123456789";
    while (p->counter < n) {
        size_t k = p->counter;
        if (ngtcp2_conn_get_streams_bidi_left(p->conn) < 2 ||
            ngtcp2_conn_get_streams_uni_left(p->conn) < 1) {
            WAIT("waiting for stream credit");
            return;
        }
        g_rs[k] = session_open(p, "/nope", REQ_NORMAL);
        if (!g_rs[k]) {
            finish(p, EXIT_USAGE, "%s: cannot open session", current->name);
            return;
        }
        g_rst[k] = wt_open(p, (uint64_t)g_rs[k]->id, true, ten, 10, false);
        wt_open(p, (uint64_t)g_rs[k]->id, false, ten, 10, true);
        p->counter++;
    }
    size_t refused = 0;
    for (size_t k = 0; k < n; k++) {
        struct pstream *st = g_rst[k];
        if (!st || !(st->reset_recv || st->stop_recv))
            continue;
        if ((st->reset_recv && st->reset_code != WIRE_WT_SESSION_GONE) ||
            (st->stop_recv && st->stop_code != WIRE_WT_SESSION_GONE)) {
            finish(p, EXIT_NOPASS,
                   "%s FAIL: the stream naming refused session %" PRId64
                   " got %s, expected WT_SESSION_GONE",
                   current->name, g_rs[k]->id, stream_fate(st, f, sizeof(f)));
            return;
        }
        if (g_rs[k]->headers_done && g_rs[k]->status != 404) {
            finish(p, EXIT_NOPASS, "%s FAIL: /nope answered %d",
                   current->name, g_rs[k]->status);
            return;
        }
        refused++;
    }
    if (refused < n) {
        snprintf(p->info, sizeof(p->info),
                 "waiting for the streams to be refused (%zu of %zu)",
                 refused, n);
        p->waiting = p->info;
        return;
    }
    /* the waiting list is not full of them: an early stream still works */
    if (p->phase == 0) {
        g_e1 = echo_start(p, NULL, 100, 53, false);
        p->counter2 = (size_t)next_bidi_id(p) + 4; /* after this stream */
        g_e1->st = wt_open(p, p->counter2, true, g_e1->data, 100, true);
        if (!g_e1->st) {
            WAIT("waiting for stream credit");
            return;
        }
        g_e1->state = 1;
        p->phase = 1;
    }
    if (need_session(p, &p->a, "/echo", "A") <= 0)
        return;
    g_e1->s = p->a;
    if ((size_t)p->a->id != p->counter2) {
        finish(p, EXIT_USAGE, "%s: session A got id %" PRId64 ", not %zu",
               current->name, p->a->id, p->counter2);
        return;
    }
    if (need_echo(p, &g_e1, p->a, 100, 53, false, "early stream of A") <= 0)
        return;
    finish(p, EXIT_PASS, "%s ok: %zu streams naming refused sessions got "
           "WT_SESSION_GONE; an early stream of session A echoes",
           current->name, n);
}

/* pending-timeout MINMS MAXMS: a bidi stream naming a session that never
 * comes (id 4000) must be refused with WT_BUFFERED_STREAM_REJECTED after
 * the server's pending_timeout: between MINMS and MAXMS. */
static void sc_pending_timeout(struct probe *p)
{
    size_t minms, maxms;
    char f[128];
    if (!arg_size(p, 0, 0, &minms) || !arg_size(p, 1, 0, &maxms) ||
        maxms < minms) {
        finish(p, EXIT_USAGE, "%s: MINMS MAXMS", current->name);
        return;
    }
    if (!p->probe_st) {
        static const uint8_t ten[10] = "0123456789";
        p->probe_st = wt_open(p, 4000, true, ten, 10, false);
        if (!p->probe_st) {
            finish(p, EXIT_USAGE, "%s: no stream", current->name);
            return;
        }
        p->t_mark = now_ns();
    }
    struct pstream *st = p->probe_st;
    if (!st->reset_recv && !st->stop_recv) {
        WAIT("waiting for the stream to be refused");
        return;
    }
    double ms = (double)(now_ns() - p->t_mark) / 1e6;
    uint64_t code = st->reset_recv ? st->reset_code : st->stop_code;
    if (code != WIRE_WT_BUFFERED_STREAM_REJECTED || ms < (double)minms ||
        ms > (double)maxms) {
        finish(p, EXIT_NOPASS, "%s FAIL: %s after %.0f ms (want "
               "WT_BUFFERED_STREAM_REJECTED within %zu..%zu ms)",
               current->name, stream_fate(st, f, sizeof(f)), ms, minms, maxms);
        return;
    }
    finish(p, EXIT_PASS, "%s ok: refused after %.0f ms with %s", current->name,
           ms, stream_fate(st, f, sizeof(f)));
}

/* adopt-limit N: N bidi streams naming the next session arrive before its
 * CONNECT; when it opens, no more than max_streams_per_session of them may
 * be taken, the rest refused with WT_BUFFERED_STREAM_REJECTED.  Reports
 * "E adopted, R rejected". */
static void sc_adopt_limit(struct probe *p)
{
    size_t n;
    static const uint8_t ten[10] = "0123456789";
    if (!arg_size(p, 0, 4, &n) || n == 0 || n > MAX_ECHOES) {
        finish(p, EXIT_USAGE, "%s: N must be 1..%d", current->name,
               MAX_ECHOES);
        return;
    }
    if (p->phase == 0) {
        /* the session's stream comes after the n we open first */
        p->counter2 = (size_t)next_bidi_id(p) + 4 * n;
        while (p->counter < n) {
            struct pstream *st =
                wt_open(p, p->counter2, true, ten, sizeof(ten), false);
            if (!st) {
                finish(p, EXIT_USAGE, "%s: no stream credit", current->name);
                return;
            }
            g_os[p->counter++] = st;
        }
        p->phase = 1;
    }
    if (p->phase == 1) {
        for (size_t k = 0; k < n; k++)
            if (g_os[k]->acked < g_os[k]->outlen) {
                WAIT("waiting for the early streams to be acknowledged");
                return;
            }
        p->phase = 2;
    }
    if (need_session(p, &p->a, "/echo", "A") <= 0)
        return;
    if ((size_t)p->a->id != p->counter2) {
        finish(p, EXIT_USAGE, "%s: session A got id %" PRId64 ", not %zu",
               current->name, p->a->id, p->counter2);
        return;
    }
    size_t echoing = 0, rejected = 0;
    uint64_t code = 0;
    for (size_t k = 0; k < n; k++) {
        struct pstream *st = g_os[k];
        if (st->reset_recv || st->stop_recv) {
            uint64_t c = st->reset_recv ? st->reset_code : st->stop_code;
            if (rejected++ == 0)
                code = c;
            else if (c != code)
                code = 0;
        } else if (st->in.len >= sizeof(ten)) {
            echoing++;
        }
    }
    if (echoing + rejected < n) {
        snprintf(p->info, sizeof(p->info),
                 "waiting for echoes or resets (%zu + %zu of %zu)", echoing,
                 rejected, n);
        p->waiting = p->info;
        return;
    }
    if (rejected && code != WIRE_WT_BUFFERED_STREAM_REJECTED) {
        finish(p, EXIT_NOPASS, "%s FAIL: %zu adopted, %zu rejected with 0x%"
               PRIx64 ", expected WT_BUFFERED_STREAM_REJECTED",
               current->name, echoing, rejected, code);
        return;
    }
    finish(p, EXIT_PASS, "%s ok: %zu adopted, %zu rejected", current->name,
           echoing, rejected);
}

/* prefix-reset [COUNT]: COUNT bidi streams each send 9 bytes of a 10-byte
 * WebTransport prefix and are then reset.  Those bytes took connection
 * credit; the server must return it, or with a small
 * max_connection_buffer_bytes the connection stalls.  Then an echo of
 * 100 kB must come through. */
#define PR_INFLIGHT 128
static struct pstream *g_pr[PR_INFLIGHT];

static void sc_prefix_reset(struct probe *p)
{
    size_t count;
    if (!arg_size(p, 0, 2000, &count) || count == 0) {
        finish(p, EXIT_USAGE, "%s: bad COUNT", current->name);
        return;
    }
    if (need_session(p, &p->a, "/echo", "A") <= 0)
        return;
    if (!p->t_mark)
        p->t_mark = now_ns();
    size_t active = 0;
    for (size_t k = 0; k < PR_INFLIGHT; k++) {
        struct pstream *st = g_pr[k];
        if (!st)
            continue;
        if (st->closed) {
            stream_forget(p, st);
            g_pr[k] = NULL;
            p->counter2++;
            p->t_mark = now_ns();
            continue;
        }
        if (!st->shut_wr && st->acked >= st->outlen) {
            ngtcp2_conn_shutdown_stream_write(p->conn, 0, st->id,
                                              WIRE_H3_REQUEST_CANCELLED);
            st->shut_wr = true;
        }
        active++;
    }
    while (active < PR_INFLIGHT && p->counter < count) {
        /* 0x41 as a 2-byte varint, then 7 of an 8-byte session id */
        static const uint8_t pre[9] = {0x40, 0x41, 0xc0, 0, 0, 0, 0, 0, 0};
        uint8_t *out = xmalloc(sizeof(pre));
        memcpy(out, pre, sizeof(pre));
        struct pstream *st = open_raw(p, true, SK_WT, out, sizeof(pre), false);
        if (!st) {
            free(out);
            break;
        }
        for (size_t k = 0; k < PR_INFLIGHT; k++)
            if (!g_pr[k]) {
                g_pr[k] = st;
                break;
            }
        p->counter++;
        active++;
    }
    if (p->counter2 < count) {
        if (now_ns() - p->t_mark > 3000000000ULL) {
            finish(p, EXIT_NOPASS, "%s FAIL: stuck after %zu of %zu streams "
                   "(connection credit gone?)", current->name, p->counter2,
                   count);
            return;
        }
        snprintf(p->info, sizeof(p->info), "%zu of %zu streams reset",
                 p->counter2, count);
        p->waiting = p->info;
        return;
    }
    if (!session_intact(p, p->a, "A"))
        return;
    if (need_echo(p, &g_e1, p->a, 100000, 54, false, "after") <= 0)
        return;
    finish(p, EXIT_PASS, "%s ok: %zu streams reset inside their prefix, then "
           "a 100000-byte echo", current->name, count);
}

/* connect-reset [H3CODE]: session A's CONNECT stream is reset by us
 * (RESET_STREAM, default H3_REQUEST_CANCELLED); the server ends the
 * session (the log says how); session B keeps working. */
static void sc_connect_reset(struct probe *p)
{
    size_t code;
    char f[128];
    if (!arg_size(p, 0, WIRE_H3_REQUEST_CANCELLED, &code)) {
        finish(p, EXIT_USAGE, "%s: bad code", current->name);
        return;
    }
    switch (p->phase) {
    case 0: {
        if (need_ab(p) <= 0)
            return;
        nghttp3_conn_shutdown_stream_write(p->h3, p->a->id);
        ngtcp2_conn_shutdown_stream_write(p->conn, 0, p->a->id, code);
        note("session A: RESET_STREAM 0x%zx on its CONNECT stream", code);
        p->phase = 1;
    }
        /* fall through */
    case 1:
        if (!p->a->end_stream && !p->a->st->reset_recv && !p->a->st->closed) {
            WAIT("waiting for the server to end session A");
            return;
        }
        snprintf(p->saved, sizeof(p->saved), "%s",
                 p->a->end_stream ? "FIN" : stream_fate(p->a->st, f, sizeof(f)));
        p->phase = 2;
        /* fall through */
    case 2:
        if (!session_intact(p, p->b, "B"))
            return;
        if (need_echo(p, &g_e1, p->b, 1024, 55, false, "session B") <= 0)
            return;
        finish(p, EXIT_PASS, "%s ok: session A's CONNECT stream got %s; "
               "session B echoes", current->name, p->saved);
    }
}

/* connect-trailer: session A's CONNECT stream gets a trailing HEADERS
 * frame (with a pseudo-header, too): an extended CONNECT has no trailers,
 * so HTTP/3 closes the connection with H3_FRAME_UNEXPECTED (RFC 9114
 * §4.1) and nothing else happens. */
static void sc_connect_trailer(struct probe *p)
{
    if (need_session(p, &p->a, "/echo", "A") <= 0 || p->phase)
        return;
    /* QPACK: no dynamic table (00 00), static index 1 ":path /" */
    static const uint8_t block[3] = {0x00, 0x00, 0xc1};
    uint8_t *out = xmalloc(16);
    size_t n = frame_put(out, WIRE_H3_FRAME_HEADERS, block, sizeof(block));
    session_send_frames(p, p->a, out, n, true);
    note("session A: trailers with :path, then FIN");
    p->phase = 1;
    WAIT("waiting for the server to close the connection");
}

static void cl_connect_trailer(struct probe *p)
{
    if (p->close_app && p->close_code == WIRE_H3_FRAME_UNEXPECTED)
        finish(p, EXIT_PASS, "%s ok: connection closed with "
               "H3_FRAME_UNEXPECTED", current->name);
    else
        finish(p, EXIT_NOPASS, "%s FAIL: connection closed with %s error "
               "0x%" PRIx64 ", expected H3_FRAME_UNEXPECTED (0x105)",
               current->name, p->close_app ? "application" : "transport",
               p->close_code);
}

/* ------------------------------------------------------------------ */
/* broadcast */

/* Strips the member-id varint a tagged relay starts with; its value in
 * *id.  -1 when there is none (too short). */
static ssize_t untag(const uint8_t *p, size_t n, uint64_t *id)
{
    ssize_t t = wire_varint_decode(p, n, id);
    return t > 0 ? t : -1;
}

/* A server uni stream of session `s`, ended, not yet claimed, whose bytes
 * (after the member id when tagged) equal want[0..len). */
static struct pstream *relay_find(struct probe *p, struct session *s,
                                  const uint8_t *want, size_t len, bool tag,
                                  uint64_t *from)
{
    for (struct pstream *r = p->streams; r; r = r->next) {
        if (r->local || r->bidi || r->kind != SK_WT || r->claimed ||
            r->session_id != (uint64_t)s->id || !r->fin_recv)
            continue;
        size_t off = 0;
        *from = 0;
        if (tag) {
            ssize_t t = untag(r->in.p, r->in.len, from);
            if (t < 0)
                continue;
            off = (size_t)t;
        }
        if (r->in.len - off == len && memcmp(r->in.p + off, want, len) == 0) {
            r->claimed = true;
            return r;
        }
    }
    return NULL;
}

/* bc-relay [PATH] [tag]: sessions A and B in the room PATH names (default
 * /chat?room=probe).  A sends a datagram, a 100 kB uni stream and a 50 kB
 * bidi stream; B gets each (as a datagram and two server-opened uni
 * streams, each after A's member id with `tag`), and A's bidi stream gets
 * its FIN once relayed.  A hears nothing of its own. */
static uint8_t *g_bc_uni, *g_bc_bidi;
static struct pstream *g_bc_ust, *g_bc_bst;

static void sc_bc_relay(struct probe *p)
{
    int i = 0;
    const char *path = p->nargs > 0 && p->args[0][0] == '/' ? p->args[i++]
                                                            : "/chat?room=probe";
    bool tag = i < p->nargs && strcmp(p->args[i], "tag") == 0;
    static const char dg[] = "datagram from A";
    uint64_t from = 0, from2 = 0;

    int ra = need_session(p, &p->a, path, "A");
    if (ra < 0)
        return;
    int rb = need_session(p, &p->b, path, "B");
    if (rb < 0 || ra == 0 || rb == 0)
        return;
    if (p->phase == 0) {
        g_bc_uni = xmalloc(100000);
        g_bc_bidi = xmalloc(50000);
        fill_pattern(g_bc_uni, 100000, 61);
        fill_pattern(g_bc_bidi, 50000, 62);
        dgram_send(p, (uint64_t)p->a->id, (const uint8_t *)dg, sizeof(dg) - 1);
        g_bc_ust = wt_open(p, (uint64_t)p->a->id, false, g_bc_uni, 100000, true);
        g_bc_bst = wt_open(p, (uint64_t)p->a->id, true, g_bc_bidi, 50000, true);
        if (!g_bc_ust || !g_bc_bst) {
            finish(p, EXIT_USAGE, "%s: no stream credit", current->name);
            return;
        }
        p->phase = 1;
    }
    bool got_dg = false;
    for (size_t k = 0; k < p->nrxd && !got_dg; k++) {
        struct rxdgram *d = &p->rxd[k];
        if (d->malformed || d->session_id != (uint64_t)p->b->id)
            continue;
        size_t off = 0;
        if (tag) {
            ssize_t t = untag(d->p, d->len, &from);
            if (t < 0)
                continue;
            off = (size_t)t;
        }
        got_dg = d->len - off == sizeof(dg) - 1 &&
                 memcmp(d->p + off, dg, sizeof(dg) - 1) == 0;
    }
    if (!got_dg) {
        WAIT("waiting for B's datagram");
        return;
    }
    if (p->phase == 1) {
        if (!relay_find(p, p->b, g_bc_uni, 100000, tag, &from2)) {
            WAIT("waiting for B's copy of the uni stream");
            return;
        }
        if (tag && from2 != from) {
            finish(p, EXIT_NOPASS, "%s FAIL: member id %" PRIu64 " on the "
                   "datagram, %" PRIu64 " on the stream", current->name,
                   from, from2);
            return;
        }
        p->phase = 2;
    }
    if (p->phase == 2) {
        if (!relay_find(p, p->b, g_bc_bidi, 50000, tag, &from2)) {
            WAIT("waiting for B's copy of the bidi stream");
            return;
        }
        p->phase = 3;
    }
    if (!g_bc_bst->fin_recv) {
        char f[128];
        if (g_bc_bst->reset_recv || g_bc_bst->stop_recv) {
            finish(p, EXIT_NOPASS, "%s FAIL: A's bidi stream got %s",
                   current->name, stream_fate(g_bc_bst, f, sizeof(f)));
            return;
        }
        WAIT("waiting for the FIN on A's bidi stream");
        return;
    }
    if (g_bc_bst->in.len) {
        finish(p, EXIT_NOPASS, "%s FAIL: A's bidi stream got %zu bytes back",
               current->name, g_bc_bst->in.len);
        return;
    }
    /* (tagged: a stream starting with member id 0 is an announcement) */
    for (struct pstream *r = p->streams; r; r = r->next)
        if (!r->local && !r->bidi && r->kind == SK_WT &&
            r->session_id == (uint64_t)p->a->id &&
            !(tag && r->in.len && r->in.p[0] == 0x00)) {
            finish(p, EXIT_NOPASS, "%s FAIL: A got a stream of its own",
                   current->name);
            return;
        }
    free(g_bc_uni);
    free(g_bc_bidi);
    finish(p, EXIT_PASS, "%s ok: B got the datagram, the 100000-byte uni and "
           "50000-byte bidi streams%s%s; A's bidi stream got its FIN",
           current->name, tag ? ", tagged with member id " : "",
           tag ? (from == 1 ? "1" : from == 2 ? "2" : "n") : "");
}

/* bc-listen [PATH] SECONDS [N]: N members (sessions, default 1) of the
 * room PATH names that only listen (with --hold-uni --uni-window W: members
 * that stop reading) for SECONDS, then report what reached them: whole
 * streams and their bytes, resets (with the first WebTransport code),
 * datagrams, and how many sessions the server closed (and the code). */
static struct session *g_bl[MAX_PSESSIONS];

static void sc_bc_listen(struct probe *p)
{
    int i = 0;
    const char *path = p->nargs > 0 && p->args[0][0] == '/' ? p->args[i++]
                                                            : "/chat?room=probe";
    size_t secs, n;
    if (!arg_size(p, i, 0, &secs) || secs == 0 || !arg_size(p, i + 1, 1, &n) ||
        n == 0 || n > MAX_PSESSIONS) {
        finish(p, EXIT_USAGE, "%s: SECONDS [N 1..%d]", current->name,
               MAX_PSESSIONS);
        return;
    }
    for (size_t k = 0; k < n; k++)
        if (need_session(p, &g_bl[k], path, "listener") <= 0)
            return;
    if (!p->t_mark) {
        p->t_mark = now_ns();
        note("%zu listeners in the room", n);
    }
    size_t closed = 0;
    uint32_t ccode = 0;
    for (size_t k = 0; k < n; k++)
        if (g_bl[k]->close_recv || g_bl[k]->end_stream) {
            if (closed++ == 0)
                ccode = g_bl[k]->close_code;
        }
    if (now_ns() - p->t_mark < (uint64_t)secs * 1000000000ULL && closed < n) {
        WAIT("listening");
        return;
    }
    size_t whole = 0, resets = 0, dgrams = 0;
    uint64_t bytes = 0;
    uint32_t rcode = 0;
    for (struct pstream *r = p->streams; r; r = r->next) {
        if (r->local || r->bidi || r->kind != SK_WT)
            continue;
        if (r->reset_recv) {
            if (resets++ == 0 && wire_wt_error_from_h3(r->reset_code, &rcode))
                rcode = 0;
        } else if (r->fin_recv) {
            whole++;
            bytes += r->in.len;
        }
    }
    for (size_t k = 0; k < p->nrxd; k++)
        dgrams += !p->rxd[k].malformed;
    finish(p, EXIT_PASS, "%s ok: %zu streams whole (%" PRIu64 " bytes), %zu "
           "reset (0x%" PRIx32 "), %zu datagrams, %zu of %zu sessions closed "
           "by the server (0x%" PRIx32 ")",
           current->name, whole, bytes, resets, rcode, dgrams, closed, n,
           ccode);
}

/* bc-sender-gone [PATH]: A sends a stream without its end; once B has part
 * of it, A's session closes: B's copy must be reset with the documented
 * code (0xe2, the sender left). */
static void sc_bc_sender_gone(struct probe *p)
{
    const char *path = p->nargs > 0 ? p->args[0] : "/chat?room=gone";
    char f[128];
    int ra = need_session(p, &p->a, path, "A");
    if (ra < 0)
        return;
    int rb = need_session(p, &p->b, path, "B");
    if (rb < 0 || ra == 0 || rb == 0)
        return;
    if (p->phase == 0) {
        uint8_t *d = xmalloc(50000);
        fill_pattern(d, 50000, 71);
        p->probe_st = wt_open(p, (uint64_t)p->a->id, false, d, 50000, false);
        free(d);
        if (!p->probe_st) {
            finish(p, EXIT_USAGE, "%s: no stream", current->name);
            return;
        }
        p->phase = 1;
    }
    struct pstream *copy = NULL;
    for (struct pstream *r = p->streams; r; r = r->next)
        if (!r->local && !r->bidi && r->kind == SK_WT &&
            r->session_id == (uint64_t)p->b->id)
            copy = r;
    if (p->phase == 1) {
        if (!copy || copy->in.len < 50000) {
            WAIT("waiting for B to have the bytes sent so far");
            return;
        }
        session_send_close(p, p->a, 0, "gone");
        p->phase = 2;
    }
    if (!copy->reset_recv) {
        if (copy->fin_recv) {
            finish(p, EXIT_NOPASS, "%s FAIL: B's copy ended with FIN",
                   current->name);
            return;
        }
        WAIT("waiting for B's copy to be reset");
        return;
    }
    uint32_t code = 0;
    if (wire_wt_error_from_h3(copy->reset_code, &code) != 0 ||
        code != 0xe2) {
        finish(p, EXIT_NOPASS, "%s FAIL: B's copy got %s, wanted the "
               "WebTransport code 0xe2", current->name,
               stream_fate(copy, f, sizeof(f)));
        return;
    }
    if (!session_intact(p, p->b, "B"))
        return;
    finish(p, EXIT_PASS, "%s ok: B's copy reset with 0xe2 when the "
           "sender left", current->name);
}

/* bc-send [PATH] COUNT BYTES [tag]: session A sends COUNT uni streams of
 * BYTES (all at once, as stream credit allows) and session B, on the same
 * connection, must get every one whole (after the member id with `tag`);
 * reports how long that took. */
#define BC_MAX 256
static uint8_t *g_bcs_data[BC_MAX];
static struct pstream *g_bcs_st[BC_MAX];
static bool g_bcs_got[BC_MAX];

static void sc_bc_send(struct probe *p)
{
    int i = 0;
    const char *path = p->nargs > 0 && p->args[0][0] == '/' ? p->args[i++]
                                                            : "/chat?room=probe";
    size_t count, bytes;
    uint64_t from;
    bool tag = i + 2 < p->nargs && strcmp(p->args[i + 2], "tag") == 0;
    if (!arg_size(p, i, 0, &count) || !arg_size(p, i + 1, 0, &bytes) ||
        count == 0 || count > BC_MAX || bytes == 0) {
        finish(p, EXIT_USAGE, "%s: COUNT (1..%d) BYTES", current->name, BC_MAX);
        return;
    }
    int ra = need_session(p, &p->a, path, "A");
    if (ra < 0)
        return;
    int rb = need_session(p, &p->b, path, "B");
    if (rb < 0 || ra == 0 || rb == 0)
        return;
    if (!p->t_mark)
        p->t_mark = now_ns();
    while (p->counter < count) {
        size_t k = p->counter;
        if (!g_bcs_data[k]) {
            g_bcs_data[k] = xmalloc(bytes);
            fill_pattern(g_bcs_data[k], bytes, (uint32_t)(1000 + k));
        }
        g_bcs_st[k] = wt_open(p, (uint64_t)p->a->id, false, g_bcs_data[k],
                              bytes, true);
        if (!g_bcs_st[k])
            break;
        p->counter++;
    }
    size_t got = 0;
    for (size_t k = 0; k < count; k++) {
        if (!g_bcs_got[k] && g_bcs_data[k])
            g_bcs_got[k] = relay_find(p, p->b, g_bcs_data[k], bytes, tag,
                                      &from) != NULL;
        got += g_bcs_got[k];
    }
    if (!session_intact(p, p->b, "B"))
        return;
    if (got < count) {
        snprintf(p->info, sizeof(p->info), "B has %zu of %zu streams", got,
                 count);
        p->waiting = p->info;
        return;
    }
    finish(p, EXIT_PASS, "%s ok: B got all %zu streams of %zu bytes in %.0f ms",
           current->name, count, bytes, (double)(now_ns() - p->t_mark) / 1e6);
}

/* bc-announce [PATH]: with announce = yes (and tag = yes), session A gets
 * its welcome, then "join" when B comes (and B its welcome), then "leave"
 * when B closes; each a uni stream starting with member id 0, then JSON. */
static bool announced(struct probe *p, struct session *s, const char *json)
{
    for (struct pstream *r = p->streams; r; r = r->next) {
        if (r->local || r->bidi || r->kind != SK_WT || !r->fin_recv ||
            r->session_id != (uint64_t)s->id || r->in.len < 2 ||
            r->in.p[0] != 0x00)
            continue;
        if (r->in.len - 1 == strlen(json) &&
            memcmp(r->in.p + 1, json, r->in.len - 1) == 0)
            return true;
    }
    return false;
}

static void sc_bc_announce(struct probe *p)
{
    const char *path = p->nargs > 0 ? p->args[0] : "/chat?room=announce";
    if (need_session(p, &p->a, path, "A") <= 0)
        return;
    if (!announced(p, p->a, "{\"type\":\"welcome\",\"id\":1,\"members\":1}")) {
        WAIT("waiting for A's welcome");
        return;
    }
    if (need_session(p, &p->b, path, "B") <= 0)
        return;
    if (!announced(p, p->a, "{\"type\":\"join\",\"id\":2,\"members\":2}") ||
        !announced(p, p->b, "{\"type\":\"welcome\",\"id\":2,\"members\":2}")) {
        WAIT("waiting for the join and B's welcome");
        return;
    }
    if (p->phase == 0) {
        session_send_close(p, p->b, 0, "bye");
        p->phase = 1;
    }
    if (!announced(p, p->a, "{\"type\":\"leave\",\"id\":2,\"members\":1}")) {
        WAIT("waiting for the leave");
        return;
    }
    finish(p, EXIT_PASS, "%s ok: welcome, join and leave as documented",
           current->name);
}

/* hold-stream [PATH] SECONDS: opens a bidi stream, sends 10 bytes (no FIN)
 * and never reads what comes back (no credit past --window), for SECONDS;
 * reports how many bytes arrived (a server that floods must stop at the
 * window). */
static void sc_hold_stream(struct probe *p)
{
    int i = 0;
    const char *path = arg_path(p, &i);
    size_t secs;
    static const uint8_t ten[10] = "0123456789";
    if (!arg_size(p, i, 0, &secs) || secs == 0) {
        finish(p, EXIT_USAGE, "%s: SECONDS", current->name);
        return;
    }
    if (need_session(p, &p->a, path, "A") <= 0)
        return;
    if (!p->probe_st) {
        p->probe_st = wt_open(p, (uint64_t)p->a->id, true, ten, 10, false);
        if (!p->probe_st) {
            finish(p, EXIT_USAGE, "%s: no stream", current->name);
            return;
        }
        p->probe_st->hold = true;
        p->t_mark = now_ns();
    }
    if (now_ns() - p->t_mark < (uint64_t)secs * 1000000000ULL) {
        WAIT("holding");
        return;
    }
    char f[128];
    finish(p, EXIT_PASS, "%s ok: %zu bytes arrived, stream got %s",
           current->name, p->probe_st->in.len,
           stream_fate(p->probe_st, f, sizeof(f)));
}

/* name, usage, fewest and most arguments, step, deadline judge */
#define SC(n, u, lo, hi, st, to)                                              \
    {.name = (n), .usage = (u), .minargs = (lo), .maxargs = (hi),             \
     .step = (st), .timeout = (to)}

static const struct scenario scenarios[] = {
    SC("echo-bidi", "[PATH] BYTES", 0, 2, sc_echo_bidi, NULL),
    SC("echo-uni", "[PATH] BYTES", 0, 2, sc_echo_uni, NULL),
    SC("echo-dgram", "[PATH] COUNT", 0, 2, sc_echo_dgram, to_echo_dgram),
    SC("streams", "[PATH] N", 0, 2, sc_streams, NULL),
    SC("status", "[PATH]", 0, 1, sc_status, NULL),
    SC("fc-exceed", "streams|data", 1, 1, sc_fc_exceed, NULL),
    SC("fc-reset", "", 0, 0, sc_fc_reset, NULL),
    SC("fc-reset-over", "", 0, 0, sc_fc_reset_over, NULL),
    SC("connect-missing", "authority|path|protocol-value", 1, 1, sc_connect_missing, NULL),
    SC("stream-unknown-session", "[N]", 0, 1, sc_stream_unknown, NULL),
    SC("stream-closed-session", "", 0, 0, sc_stream_closed, NULL),
    SC("capsule-truncated", "[TYPE]", 0, 1, sc_capsule_truncated, NULL),
    SC("capsule-oversized", "", 0, 0, sc_capsule_oversized, NULL),
    SC("capsule-grease", "", 0, 0, sc_capsule_grease, NULL),
    SC("capsule-dgram-oversized", "", 0, 0, sc_capsule_dgram_oversized, NULL),
    SC("dgram-unknown-session", "[COUNT]", 0, 1, sc_dgram_unknown, to_dgram_unknown),
    SC("close", "CODE [REASON]", 1, 2, sc_close, NULL),
    SC("server-close", "[PATH] CODE REASON", 2, 3, sc_server_close, NULL),
    SC("draft", "[PATH]", 0, 1, sc_draft, NULL),
    SC("no-read", "[PATH] BYTES MAXSTALL", 2, 3, sc_no_read, NULL),
    SC("reset-loop", "[PATH] ROUNDS BYTES", 2, 3, sc_reset_loop, NULL),
    SC("stop-sending", "[PATH] BYTES", 1, 2, sc_stop_sending, NULL),
    SC("sessions", "[PATH] N", 0, 2, sc_sessions, NULL),
    SC("settings-late", "[PATH] N MS", 2, 3, sc_settings_late, NULL),
    SC("open-streams", "[PATH] N", 0, 2, sc_open_streams, NULL),
    SC("capsule-merged", "[TYPE]", 0, 1, sc_capsule_merged, NULL),
    {.name = "critical-stream",
     .usage = "stop-control|stop-qpack-enc|stop-qpack-dec|fin-control|reset-control",
     .minargs = 1, .maxargs = 1, .step = sc_critical, .early = true,
     .closed = cl_critical},
    SC("spoof-path", "[PATH] BYTES", 0, 2, sc_spoof_path, NULL),
    SC("rebind", "[PATH] BYTES [ADDR]", 0, 3, sc_rebind, NULL),
    SC("uni-hoard", "[PATH] COUNT BYTES fin|reset [LIMIT]", 3, 5, sc_uni_hoard, NULL),
    SC("early-uni", "[PATH] BYTES", 0, 2, sc_early_uni, NULL),
    SC("slot-wait", "", 0, 0, sc_slot_wait, NULL),
    SC("refused-streams", "[N]", 0, 1, sc_refused_streams, NULL),
    SC("pending-timeout", "MINMS MAXMS", 2, 2, sc_pending_timeout, NULL),
    SC("adopt-limit", "[N]", 0, 1, sc_adopt_limit, NULL),
    SC("prefix-reset", "[COUNT]", 0, 1, sc_prefix_reset, NULL),
    SC("connect-reset", "[H3CODE]", 0, 1, sc_connect_reset, NULL),
    {.name = "connect-trailer", .usage = "", .step = sc_connect_trailer,
     .closed = cl_connect_trailer},
    SC("hold-stream", "[PATH] SECONDS", 1, 2, sc_hold_stream, NULL),
    SC("bc-relay", "[PATH] [tag]", 0, 2, sc_bc_relay, NULL),
    SC("bc-listen", "[PATH] SECONDS [N]", 1, 3, sc_bc_listen, NULL),
    SC("bc-sender-gone", "[PATH]", 0, 1, sc_bc_sender_gone, NULL),
    SC("bc-send", "[PATH] COUNT BYTES [tag]", 2, 4, sc_bc_send, NULL),
    SC("bc-members", "[PATH] N", 1, 2, sc_bc_members, NULL),
    SC("bc-announce", "[PATH]", 0, 1, sc_bc_announce, NULL),
};

static void scenario_step(struct probe *p)
{
    if (!p->h3_bound) {
        WAIT("waiting for the handshake");
        return;
    }
    if (!p->settings_recv && !current->early) {
        WAIT("waiting for the server's SETTINGS");
        return;
    }
    current->step(p);
}

static void scenario_timeout(struct probe *p)
{
    if (current->timeout)
        current->timeout(p);
}

/* ------------------------------------------------------------------ */

static void probe_free(struct probe *p)
{
    while (p->streams) {
        struct pstream *st = p->streams;
        p->streams = st->next;
        free(st->out);
        bytes_free(&st->pre);
        bytes_free(&st->in);
        free(st);
    }
    while (p->sessions) {
        struct session *s = p->sessions;
        p->sessions = s->next;
        for (size_t i = 0; i < s->ncaps; i++)
            free(s->caps[i].p);
        bytes_free(&s->rx);
        free(s);
    }
    while (p->dqlen)
        dgram_pop(p);
    free(p->dq);
    for (size_t i = 0; i < p->nrxd; i++)
        free(p->rxd[i].p);
    free(p->rxd);
    for (size_t i = 0; i < p->nechoes; i++)
        free(p->echoes[i].data);
    free(g_seen);
    bytes_free(&p->ctl);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: wtprobe [--timeout S] [--draft 02|07|15] [--insecure] "
            "[--ca FILE] [--verbose] [--no-grease] [--split-prefix] "
            "[--window BYTES] [--origin ORIGIN|-] [--max-data N] "
            "[--uni-streams N]\n       [--uni-window N] [--hold-uni] "
            "[--bind 127.x.y.z] "
            "HOST PORT SCENARIO [ARGS...]\nscenarios:\n");
    for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
        fprintf(stderr, "  %s %s\n", scenarios[i].name, scenarios[i].usage);
}

int main(int argc, char **argv)
{
    static struct probe pr;
    struct probe *p = &pr;
    p->timeout = 10;
    p->draft = 2;
    p->grease = true;
    p->origin = "http://localhost";
    p->fd = -1;
    p->spoof_fd = -1;
    p->uni_streams = -1;
    p->uni_window = -1;
    int i = 1;
    for (; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i++) {
        const char *o = argv[i];
        if (strcmp(o, "--timeout") == 0 && i + 1 < argc) {
            p->timeout = atof(argv[++i]);
            if (p->timeout <= 0) {
                usage();
                return EXIT_USAGE;
            }
        } else if (strcmp(o, "--draft") == 0 && i + 1 < argc) {
            p->draft = atoi(argv[++i]);
            if (p->draft != 2 && p->draft != 7 && p->draft != 14 &&
                p->draft != 15) {
                usage();
                return EXIT_USAGE;
            }
        } else if (strcmp(o, "--fc") == 0) {
            p->fc = true;
        } else if (strcmp(o, "--fc-data") == 0 && i + 1 < argc) {
            p->fc = true;
            p->fc_data = strtoull(argv[++i], NULL, 10);
        } else if (strcmp(o, "--insecure") == 0) {
            p->insecure = true;
        } else if (strcmp(o, "--ca") == 0 && i + 1 < argc) {
            p->cafile = argv[++i];
        } else if (strcmp(o, "--verbose") == 0) {
            verbose = true;
        } else if (strcmp(o, "--no-grease") == 0) {
            p->grease = false;
        } else if (strcmp(o, "--origin") == 0 && i + 1 < argc) {
            p->origin = argv[++i];
        } else if (strcmp(o, "--max-data") == 0 && i + 1 < argc) {
            p->max_data = strtoull(argv[++i], NULL, 10);
        } else if (strcmp(o, "--uni-streams") == 0 && i + 1 < argc) {
            p->uni_streams = strtoll(argv[++i], NULL, 10);
        } else if (strcmp(o, "--uni-window") == 0 && i + 1 < argc) {
            p->uni_window = strtoll(argv[++i], NULL, 10);
        } else if (strcmp(o, "--hold-uni") == 0) {
            p->hold_uni = true;
        } else if (strcmp(o, "--bind") == 0 && i + 1 < argc) {
            p->bind_addr = argv[++i];
        } else if (strcmp(o, "--split-prefix") == 0) {
            p->split_prefix = true;
        } else if (strcmp(o, "--window") == 0 && i + 1 < argc) {
            p->window = (size_t)strtoull(argv[++i], NULL, 10);
            if (p->window < 1024) {
                usage();
                return EXIT_USAGE;
            }
        } else if (strcmp(o, "--") == 0) {
            i++;
            break;
        } else {
            usage();
            return EXIT_USAGE;
        }
    }
    if (argc - i < 3) {
        usage();
        return EXIT_USAGE;
    }
    p->host = argv[i];
    p->port = argv[i + 1];
    p->scenario = argv[i + 2];
    p->args = argv + i + 3;
    p->nargs = argc - i - 3;
    for (size_t k = 0; k < sizeof(scenarios) / sizeof(scenarios[0]); k++)
        if (strcmp(scenarios[k].name, p->scenario) == 0)
            current = &scenarios[k];
    if (!current) {
        note("unknown scenario %s", p->scenario);
        usage();
        return EXIT_USAGE;
    }
    if (p->nargs < current->minargs || p->nargs > current->maxargs) {
        note("usage: %s %s", current->name, current->usage);
        return EXIT_USAGE;
    }

    if (sock_init(p) != 0 || tls_init(p) != 0 || quic_init(p) != 0 ||
        h3_init(p) != 0) {
        printf("%s FAIL: set-up failed\n", p->scenario);
        return EXIT_USAGE;
    }
    p->loop = EV_DEFAULT;
    ev_io_init(&p->rev, on_read, p->fd, EV_READ);
    p->rev.data = p;
    ev_io_start(p->loop, &p->rev);
    ev_init(&p->qtimer, on_qtimer);
    p->qtimer.data = p;
    ev_timer_init(&p->deadline, on_deadline, p->timeout, 0);
    p->deadline.data = p;
    ev_timer_start(p->loop, &p->deadline);
    ev_timer_init(&p->tick, on_tick, 0.02, 0.02);
    p->tick.data = p;
    ev_timer_start(p->loop, &p->tick);

    after_event(p);
    if (!p->finished)
        ev_run(p->loop, 0);

    close_connection(p);
    if (p->msg[0] == 0)
        snprintf(p->msg, sizeof(p->msg), "%s FAIL: no result", p->scenario);
    /* result lines start with the scenario name; failures that came from
     * the connection get it prefixed */
    if (strncmp(p->msg, current->name, strlen(current->name)) == 0 &&
        (p->msg[strlen(current->name)] == ' ' ||
         p->msg[strlen(current->name)] == ':'))
        printf("%s\n", p->msg);
    else
        printf("%s FAIL: %s\n", current->name, p->msg);
    fflush(stdout);
    probe_free(p);
    if (p->conn)
        ngtcp2_conn_del(p->conn);
    if (p->h3)
        nghttp3_conn_del(p->h3);
    if (p->tls)
        gnutls_deinit(p->tls);
    if (p->cred)
        gnutls_certificate_free_credentials(p->cred);
    if (p->fd >= 0)
        close(p->fd);
    if (p->spoof_fd >= 0)
        close(p->spoof_fd);
    return p->result;
}
