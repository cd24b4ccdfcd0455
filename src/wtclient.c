/*
 * wtclient: opens one WebTransport session with the daemon's own session
 * layer in client role, moves the given data over it, and says how it went
 * in its exit status.  The session logic is a handler (handler.h), like the
 * daemon's echo: only the direction differs.
 */
#include <ctype.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "handler.h"
#include "log.h"
#include "quic.h"
#include "tls.h"
#include "url.h"
#include "wire.h"
#include "wt.h"
#include "version.h"

enum {
    EXIT_OK = 0,
    EXIT_TRANSFER = 1, /* reset stream, early close, timeout */
    EXIT_USAGE = 2,
    EXIT_CONNECT = 3,  /* resolve, handshake, TLS, no WebTransport */
    EXIT_REJECTED = 4, /* the server answered the CONNECT with non-2xx */
    EXIT_MISMATCH = 5, /* --verify: what came back differs */
};

#define CHUNK 65536
#define MAX_DGRAMS 256
#define MAX_PROTOCOLS 64 /* --protocol; the server reads at most 32 */

/* One direction of data we send, and what comes back for it. */
struct xfer {
    const char *what; /* "bidi", "uni" */
    const char *path; /* file name or "-" */
    int fd;
    int is_file;
    ev_io rio; /* stdin / pipes */
    int eof;
    struct wt_stream *out; /* our stream */
    struct wt_stream *in;  /* where the reply arrives (bidi: = out) */
    uint64_t sent, received;
    int fin_back;          /* the reply ended (FIN) */
    int opened;            /* its stream was opened (once: it may end) */
    /* --verify: sent bytes not yet matched by the reply (bounded by the
     * flow-control windows in between) */
    uint8_t *pend;
    size_t pendoff, pendlen, pendcap; /* bytes at pend + pendoff */
};

struct client {
    struct ev_loop *loop;
    struct config cfg;
    struct tls_ctx *tls;
    struct quic_endpoint ep;
    struct quic_conn *qc;
    struct wt_session *s;
    struct wt_connect_opts co;
    struct url url;
    struct xfer bidi, uni;
    const char *dgrams[MAX_DGRAMS];
    size_t ndgrams;
    const char *protocols[MAX_PROTOCOLS]; /* --protocol */
    const char *headers[2 * WT_CONNECT_MAX_HEADERS]; /* --header */
    const char *resume; /* --resume FILE */
    int dgram_back[MAX_DGRAMS];
    size_t dgrams_back;
    ev_tstamp dgram_sent_at;
    int verify, wait_close;
    double loss; /* --loss */
    uint8_t raw[32768]; /* --capsule: room for a storm of small capsules */
    size_t tokenlen;
    uint8_t token[256]; /* --token */
    size_t dcidlen;
    uint8_t dcid[20]; /* --dcid */
    size_t rawlen;
    int64_t stream_session; /* --stream-session, -1: ours */
    uint32_t close_code;
    const char *close_reason;
    int closing, done;
    int opened; /* the server answered 2xx: the session is open */
    int lost; /* the connection ended under an open session */
    /* --listen: streams the server opens, printed as they end */
    double listen;
    int listen_over;
    ev_timer listen_w;
    /* --cancel-first: a first session closed before its answer */
    double cancel_first;
    struct wt_session *first;
    ev_timer cancel_w;
    struct heard {
        struct wt_stream *st;
        uint8_t *buf;
        size_t len;
    } heard[256];
    int result;
    ev_timer deadline, tick;
};

static struct client C;

static void finish(int result)
{
    if (C.done)
        return;
    C.done = 1;
    C.result = result;
    /* the connection is closed after the loop, outside ngtcp2's callbacks */
    ev_break(C.loop, EVBREAK_ALL);
}

static void fail(int result, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void fail(int result, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "wtclient: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    finish(result);
}

/* ---- sending ---- */

static void pump(struct xfer *x);

static void rio_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    pump(w->data);
}

static int pend_add(struct xfer *x, const uint8_t *p, size_t n)
{
    if (x->pendoff > 0 && x->pendoff + x->pendlen + n > x->pendcap) {
        memmove(x->pend, x->pend + x->pendoff, x->pendlen);
        x->pendoff = 0;
    }
    if (x->pendlen + n > x->pendcap) {
        size_t cap = x->pendcap ? x->pendcap : CHUNK;
        uint8_t *np;

        while (cap < x->pendlen + n)
            cap *= 2;
        if (!(np = realloc(x->pend, cap)))
            return -1;
        x->pend = np;
        x->pendcap = cap;
    }
    memcpy(x->pend + x->pendoff + x->pendlen, p, n);
    x->pendlen += n;
    return 0;
}

/* Moves file bytes into the stream while its send buffer takes them. */
static void pump(struct xfer *x)
{
    uint8_t buf[CHUNK];
    uint64_t room;

    if (!x->out || x->eof || C.done)
        return;
    for (;;) {
        uint64_t queued = x->sent - wt_stream_acked(x->out);
        ssize_t n;

        room = wt_session_max_buffer(C.s) - queued;
        if (queued >= wt_session_max_buffer(C.s))
            break; /* stream_writable brings us back */
        n = read(x->fd, buf, room < sizeof(buf) ? (size_t)room : sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            ev_io_start(C.loop, &x->rio);
            return;
        }
        if (n < 0) {
            fail(EXIT_USAGE, "%s: %s", x->path, strerror(errno));
            return;
        }
        if (C.verify && n > 0 && pend_add(x, buf, (size_t)n) < 0) {
            fail(EXIT_TRANSFER, "out of memory");
            return;
        }
        if (wt_stream_write(x->out, buf, (size_t)n, n == 0) < 0) {
            fail(EXIT_TRANSFER, "%s stream: cannot send any more", x->what);
            return;
        }
        x->sent += (uint64_t)n;
        if (n == 0) {
            x->eof = 1;
            ev_io_stop(C.loop, &x->rio);
            return;
        }
    }
    ev_io_stop(C.loop, &x->rio);
}

static int open_stream(struct xfer *x, int bidi)
{
    if (!x->path || x->opened)
        return 0;
    x->out = wt_session_open_stream(C.s, bidi);
    if (!x->out)
        return -1; /* stream limit: session_streams_available retries */
    x->opened = 1;
    x->out->hdata = x;
    if (bidi)
        x->in = x->out;
    log_debug("opened %s stream %lld", x->what, (long long)x->out->id);
    pump(x);
    return 0;
}

static void send_datagrams(void)
{
    for (size_t i = 0; i < C.ndgrams; i++)
        if (wt_session_send_datagram(C.s, (const uint8_t *)C.dgrams[i],
                                     strlen(C.dgrams[i])) < 0)
            fprintf(stderr, "wtclient: datagram %zu not queued\n", i + 1);
    C.dgram_sent_at = ev_now(C.loop);
}

/* ---- completion ---- */

static int xfer_done(const struct xfer *x)
{
    /* --listen: a uni stream is a message to a room, no reply to await */
    return !x->path ||
           (x->eof && (x->fin_back || (C.listen && x == &C.uni)));
}

static void check_done(void)
{
    int dgrams_done = C.dgrams_back == C.ndgrams ||
                      (C.ndgrams && ev_now(C.loop) - C.dgram_sent_at > 2.0);

    /* not before the server's answer: wt_session_close() would cancel a
     * session still connecting (no CLOSE capsule, the transfer lost; seen
     * with --delay: the tick came before the 200) */
    if (C.done || C.closing || !C.s || !C.opened || !xfer_done(&C.bidi) ||
        !xfer_done(&C.uni) || !dgrams_done || C.wait_close ||
        (C.listen && !C.listen_over))
        return;
    if (C.verify && C.dgrams_back < C.ndgrams) {
        fail(EXIT_MISMATCH, "%zu of %zu datagrams did not come back",
             C.ndgrams - C.dgrams_back, C.ndgrams);
        return;
    }
    C.closing = 1;
    log_debug("closing the session: code %u", C.close_code);
    wt_session_close(C.s, C.close_code, C.close_reason,
                     strlen(C.close_reason));
}

/* ---- the handler ---- */

/* ---- --listen: what the server sends on its own streams ---- */

#define HEARD_MAX 65536

static struct heard *heard_of(const struct wt_stream *st)
{
    for (size_t i = 0; i < sizeof(C.heard) / sizeof(C.heard[0]); i++)
        if (C.heard[i].st == st)
            return &C.heard[i];
    return NULL;
}

/* One line: "stream: " and the bytes, printable ASCII as they are, the
 * rest (and backslash) as \xNN. */
static void print_escaped(const char *what, const uint8_t *p, size_t n,
                          const char *end)
{
    printf("%s: ", what);
    for (size_t i = 0; i < n; i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\')
            putchar(p[i]);
        else
            printf("\\x%02x", p[i]);
    }
    printf("%s\n", end);
    fflush(stdout);
}

static void heard_print(struct heard *h, const char *end)
{
    print_escaped("stream", h->buf, h->len, end);
    free(h->buf);
    memset(h, 0, sizeof(*h));
}

static void listen_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    C.listen_over = 1;
    check_done();
}

static int h_session_open(struct wt_session *s)
{
    log_debug("session %lld open", (long long)s->id);
    C.opened = 1;
    /* what the server chose, for scripts: one line on stderr */
    if (C.co.nprotocols)
        fprintf(stderr, "wtclient: protocol: %s\n",
                wt_session_protocol(s) ? wt_session_protocol(s) : "(none)");
    if (C.stream_session >= 0)
        s->stream_prefix_id = (uint64_t)C.stream_session;
    if (C.rawlen && wt_session_send_raw(s, C.raw, C.rawlen) < 0)
        fprintf(stderr, "wtclient: --capsule bytes not queued\n");
    if (open_stream(&C.bidi, 1) < 0 || open_stream(&C.uni, 0) < 0)
        log_debug("stream limit reached; waiting");
    send_datagrams();
    if (C.listen) {
        ev_timer_init(&C.listen_w, listen_cb, C.listen, 0.);
        ev_timer_start(C.loop, &C.listen_w);
    }
    check_done();
    return 0;
}

static void h_session_rejected(struct wt_session *s, int status,
                               const char *why)
{
    (void)s;
    C.s = NULL;
    if (status)
        fail(EXIT_REJECTED, "session rejected: HTTP %d (%s)", status, why);
    else
        fail(EXIT_CONNECT, "session failed: %s", why);
}

static void h_session_close(struct wt_session *s, uint32_t code,
                            const char *reason, size_t reasonlen)
{
    (void)s;
    C.s = NULL;
    if (C.closing || C.done)
        return; /* ours: the connection closes once the CONNECT stream is */
    if (s->qc->ending) {
        C.lost = 1; /* no CLOSE capsule: c_closed() says why */
        return;
    }
    fprintf(stderr, "wtclient: session closed by the server: code=%u "
                    "reason=\"%.*s\"\n",
            code, (int)reasonlen, reason ? reason : "");
    C.closing = 1;
    if (C.wait_close)
        finish(EXIT_OK);
    else if (!xfer_done(&C.bidi) || !xfer_done(&C.uni))
        fail(EXIT_TRANSFER, "the session ended before the transfer did");
}

static void h_streams_available(struct wt_session *s)
{
    (void)s;
    open_stream(&C.bidi, 1);
    open_stream(&C.uni, 0);
}

static void h_stream_open(struct wt_stream *st)
{
    /* a server uni stream carries the reply to ours */
    if (!st->bidi && C.uni.path && !C.uni.in && !C.listen) {
        C.uni.in = st;
        st->hdata = &C.uni;
        return;
    }
    if (C.listen && !st->bidi) {
        struct heard *h = heard_of(NULL);

        if (h) {
            h->st = st;
            return;
        }
        printf("stream: (not kept: too many at once)\n");
    }
    log_debug("stream %lld from the server: read and dropped",
              (long long)st->id);
}

static void h_stream_data(struct wt_stream *st, const uint8_t *p, size_t n,
                          int fin)
{
    struct xfer *x = st->hdata;

    if (x && st == x->in) {
        if (C.verify) {
            if (n > x->pendlen ||
                (n && memcmp(x->pend + x->pendoff, p, n) != 0)) {
                fail(EXIT_MISMATCH,
                     "%s stream: reply differs from what was sent, within "
                     "bytes %llu..%llu",
                     x->what, (unsigned long long)x->received,
                     (unsigned long long)(x->received + n));
                return;
            }
            x->pendoff += n;
            x->pendlen -= n;
            if (x->pendlen == 0)
                x->pendoff = 0;
        }
        /* flushed as it arrives: interactive use (--send - from a
         * terminal or a pipe) sees each reply at once */
        if (n && (fwrite(p, 1, n, stdout) != n || fflush(stdout) != 0)) {
            fail(EXIT_TRANSFER, "stdout: %s", strerror(errno));
            return;
        }
        x->received += n;
        if (fin) {
            x->fin_back = 1;
            fflush(stdout);
            if (C.verify && (x->pendlen || x->received != x->sent)) {
                fail(EXIT_MISMATCH,
                     "%s stream: %llu bytes came back, %llu were sent",
                     x->what, (unsigned long long)x->received,
                     (unsigned long long)x->sent);
                return;
            }
            log_debug("%s stream: %llu bytes back", x->what,
                      (unsigned long long)x->received);
        }
    }
    if (!x && C.listen) {
        struct heard *h = heard_of(st);

        if (h && n) {
            size_t k = n > HEARD_MAX - h->len ? HEARD_MAX - h->len : n;
            uint8_t *nb = k ? realloc(h->buf, h->len + k) : h->buf;

            if (nb) {
                memcpy(nb + h->len, p, k);
                h->buf = nb;
                h->len += k;
            }
        }
        if (h && fin)
            heard_print(h, "");
    }
    wt_stream_consume(st, n);
    check_done();
}

static void h_stream_reset(struct wt_stream *st, uint32_t code)
{
    struct xfer *x = st->hdata;

    if (!x && C.listen) {
        struct heard *h = heard_of(st);
        char end[48];

        snprintf(end, sizeof(end), " (reset 0x%x)", code);
        if (h)
            heard_print(h, end);
        return;
    }

    if (x)
        fail(EXIT_TRANSFER, "%s stream %lld reset by the server (code %u)",
             x->what, (long long)st->id, code);
}

static void h_stream_writable(struct wt_stream *st)
{
    struct xfer *x = st->hdata;

    if (x && st == x->out)
        pump(x);
}

static void h_stream_close(struct wt_stream *st)
{
    struct xfer *x = st->hdata;
    struct heard *h = x ? NULL : heard_of(st);

    if (h) {
        free(h->buf);
        memset(h, 0, sizeof(*h));
    }
    if (!x)
        return;
    if (st == x->out)
        x->out = NULL;
    if (st == x->in)
        x->in = NULL;
}

static void h_datagram(struct wt_session *s, const uint8_t *p, size_t n)
{
    (void)s;
    for (size_t i = 0; i < C.ndgrams; i++) {
        if (!C.dgram_back[i] && strlen(C.dgrams[i]) == n &&
            memcmp(C.dgrams[i], p, n) == 0) {
            C.dgram_back[i] = 1;
            C.dgrams_back++;
            break;
        }
    }
    if (C.listen) /* binary-safe (a member id first, with tag = yes) */
        print_escaped("datagram", p, n, "");
    else
        printf("%.*s\n", (int)n, (const char *)p);
    fflush(stdout);
    check_done();
}

static const struct wt_handler_ops client_ops = {
    .name = "wtclient",
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

/* ---- --cancel-first: a session closed while it waits for its answer ---- */

static int first_open(struct wt_session *s)
{
    (void)s;
    fail(EXIT_TRANSFER, "the first session was answered before it was "
                        "cancelled (--cancel-first too long)");
    return -1;
}

static void first_rejected(struct wt_session *s, int status, const char *why)
{
    (void)s;
    C.first = NULL;
    fail(EXIT_TRANSFER, "the first session failed before it was cancelled: "
                        "%d %s",
         status, why);
}

static void first_close(struct wt_session *s, uint32_t code,
                        const char *reason, size_t reasonlen)
{
    (void)s;
    (void)reason;
    (void)reasonlen;
    C.first = NULL;
    fprintf(stderr, "wtclient: first session cancelled (code %u)\n", code);
}

static const struct wt_handler_ops first_ops = {
    .name = "wtclient-first",
    .session_open = first_open,
    .session_rejected = first_rejected,
    .session_close = first_close,
};

/* ---- connection ---- */

static void connect_main(struct quic_conn *qc)
{
    char err[256];

    C.s = wt_session_connect(qc, &C.co, &client_ops, &C, err, sizeof(err));
    if (!C.s)
        fail(EXIT_CONNECT, "%s", err);
}

static void cancel_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    if (C.done || !C.qc)
        return;
    if (C.first)
        wt_session_close(C.first, 0, "", 0);
    if (C.first) {
        fail(EXIT_TRANSFER, "the first session outlived its close");
        return;
    }
    quic_conn_want_write(C.qc);
    connect_main(C.qc);
}

static void c_ready(struct quic_conn *qc)
{
    char err[256];

    if (C.resume)
        fprintf(stderr, "wtclient: %s\n",
                qc->resumed ? "resumed" : "full handshake");
    if (C.cancel_first > 0) {
        /* the second session (the one that runs) follows the cancel on
         * the same connection */
        C.first = wt_session_connect(qc, &C.co, &first_ops, NULL, err,
                                     sizeof(err));
        if (!C.first) {
            fail(EXIT_CONNECT, "%s", err);
            return;
        }
        ev_timer_init(&C.cancel_w, cancel_cb, C.cancel_first, 0.);
        ev_timer_start(C.loop, &C.cancel_w);
        return;
    }
    connect_main(qc);
}

static void c_closed(struct quic_conn *qc, const char *why)
{
    (void)qc;
    C.qc = NULL;
    if (C.done)
        return;
    if (C.closing && (!why[0]))
        finish(EXIT_OK);
    else if (C.closing && !C.wait_close && xfer_done(&C.bidi) &&
             xfer_done(&C.uni))
        finish(EXIT_OK);
    else
        fail(C.s || C.closing || C.lost ? EXIT_TRANSFER : EXIT_CONNECT,
             "connection closed: %s", why[0] ? why : "no reason given");
}

static const struct quic_conn_ops conn_ops = {
    .ready = c_ready,
    .closed = c_closed,
};

static void deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    if (!C.qc || C.qc->state == QC_HANDSHAKE)
        fail(EXIT_CONNECT, "timeout: no connection");
    else if (!C.s && !C.closing)
        fail(EXIT_CONNECT, "timeout: no session");
    else
        fail(EXIT_TRANSFER, "timeout (%s %llu/%llu bytes back, uni %llu/%llu)",
             "bidi", (unsigned long long)C.bidi.received,
             (unsigned long long)C.bidi.sent,
             (unsigned long long)C.uni.received,
             (unsigned long long)C.uni.sent);
}

/* Datagram waits, and the end once our CLOSE went through. */
static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    check_done();
    if (C.closing && C.qc && !wt_conn_has_sessions(C.qc))
        finish(EXIT_OK);
}

/* ---- arguments ---- */

/* OPT HEX -> bytes; -1 with a message when it is not hex or too long. */
static int hex_arg(const char *opt, const char *v, uint8_t *out, size_t cap,
                   size_t *len)
{
    size_t n = strlen(v);

    if (n % 2 || n / 2 > cap)
        goto bad;
    for (size_t k = 0; k < n / 2; k++) {
        unsigned x;

        if (!isxdigit((unsigned char)v[2 * k]) ||
            !isxdigit((unsigned char)v[2 * k + 1]) ||
            sscanf(v + 2 * k, "%2x", &x) != 1)
            goto bad;
        out[k] = (uint8_t)x;
    }
    *len = n / 2;
    return 0;
bad:
    fprintf(stderr, "wtclient: %s wants up to %zu hex bytes\n", opt, cap);
    return -1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: wtclient [options] https://HOST:PORT/PATH\n"
            "  --send FILE|-        send FILE on a bidi stream; its reply "
            "goes to stdout\n"
            "  --uni FILE|-         send FILE on a uni stream; the server's "
            "uni reply goes to stdout\n"
            "  --datagram TEXT      send a datagram (repeatable); datagrams "
            "received are printed, one a line\n"
            "  --close CODE:REASON  close the session with this code and "
            "reason (default 0:)\n"
            "  --wait-close         wait for the server to close the session\n"
            "  --cancel-first MS    first open a session and close it MS ms "
            "later, before\n"
            "                       its answer (tests of the server); then "
            "the real one\n"
            "  --listen SECONDS     stay this long; each uni stream the "
            "server opens is\n"
            "                       printed when it ends, one line "
            "\"stream: BYTES\" (\\xNN\n"
            "                       for bytes not printable; \" (reset "
            "0xCODE)\" when reset),\n"
            "                       datagrams likewise, \"datagram: BYTES\";"
            " --uni then awaits\n"
            "                       no reply\n"
            "  --capsule HEX        send these raw bytes on the request "
            "stream once the session is open\n"
            "  --stream-session ID  our streams name session ID instead "
            "(tests of the server)\n"
            "  --token HEX          send this token in the first Initial "
            "(tests of the server)\n"
            "  --dcid HEX           the first Destination Connection ID "
            "(tests of the server)\n"
            "  --verify             the replies must equal what was sent "
            "(echo routes)\n"
            "  --cert-hash HEX      accept the certificate with this SHA-256 "
            "(as serverCertificateHashes)\n"
            "  --cafile FILE        trust these CAs (default: system store)\n"
            "  --insecure           accept any certificate\n"
            "  --draft 02|07|14|15  WebTransport draft to offer (default 02, "
            "as Chromium;\n"
            "                       14 as Safari: session flow control on)\n"
            "  --wt-max-data N, --wt-max-streams N\n"
            "                       drafts 14/15: our session windows "
            "(default 4M, 128)\n"
            "  --no-quic-datagrams  no QUIC datagrams "
            "(max_datagram_frame_size 0):\n"
            "                       datagrams go as DATAGRAM capsules\n"
            "  --bind ADDR          send from this local IP address\n"
            "  --origin ORIGIN      send an Origin header\n"
            "  --protocol P         offer subprotocol P (repeatable, most "
            "preferred first);\n"
            "                       the server's choice is printed "
            "(\"wtclient: protocol: P\")\n"
            "  --header 'NAME: VALUE'  send this request header as it is "
            "(repeatable, 4 at most;\n"
            "                       tests of the server)\n"
            "  --protocol-header wt|quiche  offer in WT-Available-Protocols "
            "(default) or\n"
            "                       WebTransport-Subprotocols-Available\n"
            "  --resume FILE        resume the TLS session kept in FILE, "
            "if any, and keep\n"
            "                       the server's newest ticket there "
            "(\"wtclient: resumed\")\n"
            "  --timeout SECONDS    give up after this long (default 30)\n"
            "  --loss P             drop a fraction P of packets each way "
            "(tests)\n"
            "  --reorder P          hold a fraction P back behind 1..3 later "
            "ones (each way)\n"
            "  --dup P              deliver a fraction P twice (each way)\n"
            "  --delay MS[:JITTER]  delay every packet MS +- JITTER ms, in "
            "order (each way)\n"
            "  -v                   print the handshake, SETTINGS, headers "
            "and capsules\n"
            "  -h, --help, -V, --version\n"
            "exit: 0 ok, 1 transfer failed, 2 usage, 3 connect failed, "
            "4 session rejected, 5 data mismatch\n");
}

static int open_input(struct xfer *x)
{
    struct stat sb;

    x->fd = strcmp(x->path, "-") == 0 ? 0 : open(x->path, O_RDONLY | O_CLOEXEC);
    if (x->fd < 0) {
        fprintf(stderr, "wtclient: %s: %s\n", x->path, strerror(errno));
        return -1;
    }
    x->is_file = fstat(x->fd, &sb) == 0 && S_ISREG(sb.st_mode);
    if (!x->is_file)
        fcntl(x->fd, F_SETFL, fcntl(x->fd, F_GETFL) | O_NONBLOCK);
    ev_io_init(&x->rio, rio_cb, x->fd, EV_READ);
    x->rio.data = x;
    return 0;
}

int main(int argc, char **argv)
{
    struct tls_client_opts to = {0};
    uint8_t hash[32];
    double timeout = 30;
    uint64_t wt_data = 0, wt_streams = 0;
    int no_dgrams = 0;
    struct impair_cfg impair = {0};
    const char *url = NULL, *bind_addr = NULL;
    struct addrinfo hints = {0}, *ai = NULL;
    char err[256];
    int rv;

    C.co.draft = WT_DRAFT02;
    C.close_reason = "";
    C.stream_session = -1;
    C.bidi.what = "bidi";
    C.uni.what = "uni";
    log_level = LOG_LVL_WARN;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            log_level = LOG_LVL_DEBUG;
        } else if (strcmp(a, "--insecure") == 0) {
            to.insecure = 1;
        } else if (strcmp(a, "--verify") == 0) {
            C.verify = 1;
        } else if (strcmp(a, "--listen") == 0 && v) {
            C.listen = atof(v);
            i++;
            if (C.listen <= 0 || C.listen > 3600) {
                fprintf(stderr, "wtclient: --listen wants 0 < SECONDS <= 3600\n");
                return EXIT_USAGE;
            }
        } else if (strcmp(a, "--cancel-first") == 0 && v) {
            C.cancel_first = atof(v) / 1000.;
            i++;
            if (C.cancel_first <= 0 || C.cancel_first > 60) {
                fprintf(stderr, "wtclient: --cancel-first wants 0 < MS <= "
                                "60000\n");
                return EXIT_USAGE;
            }
        } else if (strcmp(a, "--wait-close") == 0) {
            C.wait_close = 1;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return EXIT_OK;
        } else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
            printf("wtclient %s\n", WTRELAYD_VERSION);
            return EXIT_OK;
        } else if (a[0] == '-' && a[1] == '-' && !v) {
            fprintf(stderr, "wtclient: %s needs a value\n", a);
            return EXIT_USAGE;
        } else if (strcmp(a, "--send") == 0) {
            C.bidi.path = argv[++i];
        } else if (strcmp(a, "--uni") == 0) {
            C.uni.path = argv[++i];
        } else if (strcmp(a, "--datagram") == 0) {
            if (C.ndgrams == MAX_DGRAMS) {
                fprintf(stderr, "wtclient: at most %d datagrams\n", MAX_DGRAMS);
                return EXIT_USAGE;
            }
            C.dgrams[C.ndgrams++] = argv[++i];
        } else if (strcmp(a, "--close") == 0) {
            char *end;
            unsigned long long code = strtoull(v, &end, 10);

            if (end == v || *end != ':' || code > 0xffffffffULL) {
                fprintf(stderr, "wtclient: --close wants CODE:REASON\n");
                return EXIT_USAGE;
            }
            C.close_code = (uint32_t)code;
            C.close_reason = end + 1;
            i++;
        } else if (strcmp(a, "--cert-hash") == 0) {
            if (tls_cert_hash_parse(v, hash) < 0) {
                fprintf(stderr, "wtclient: --cert-hash wants 64 hex digits\n");
                return EXIT_USAGE;
            }
            to.cert_hash = hash;
            i++;
        } else if (strcmp(a, "--capsule") == 0) {
            if (hex_arg(a, v, C.raw, sizeof(C.raw), &C.rawlen) < 0)
                return EXIT_USAGE;
            i++;
        } else if (strcmp(a, "--token") == 0) {
            if (hex_arg(a, v, C.token, sizeof(C.token), &C.tokenlen) < 0)
                return EXIT_USAGE;
            i++;
        } else if (strcmp(a, "--dcid") == 0) {
            if (hex_arg(a, v, C.dcid, sizeof(C.dcid), &C.dcidlen) < 0 ||
                C.dcidlen < 8) {
                fprintf(stderr, "wtclient: --dcid wants 8 to 20 bytes\n");
                return EXIT_USAGE;
            }
            i++;
        } else if (strcmp(a, "--stream-session") == 0) {
            char *end;

            C.stream_session = (int64_t)strtoll(v, &end, 10);
            if (*end || C.stream_session < 0) {
                fprintf(stderr, "wtclient: bad --stream-session\n");
                return EXIT_USAGE;
            }
            i++;
        } else if (strcmp(a, "--cafile") == 0) {
            to.cafile = argv[++i];
        } else if (strcmp(a, "--draft") == 0) {
            int d = atoi(v);

            if (d != 2 && d != 7 && d != 14 && d != 15) {
                fprintf(stderr, "wtclient: --draft is 02, 07, 14 or 15\n");
                return EXIT_USAGE;
            }
            C.co.draft = (enum wt_draft)d;
            i++;
        } else if (strcmp(a, "--wt-max-data") == 0) {
            if (config_parse_size(v, &wt_data) < 0 || wt_data == 0) {
                fprintf(stderr, "wtclient: bad --wt-max-data\n");
                return EXIT_USAGE;
            }
            i++;
        } else if (strcmp(a, "--wt-max-streams") == 0) {
            char *end;

            wt_streams = strtoull(v, &end, 10);
            if (*end || wt_streams == 0 || wt_streams > 1000000) {
                fprintf(stderr, "wtclient: bad --wt-max-streams\n");
                return EXIT_USAGE;
            }
            i++;
        } else if (strcmp(a, "--no-quic-datagrams") == 0) {
            no_dgrams = 1;
        } else if ((rv = quic_impair_option(&impair, a, v, err,
                                            sizeof(err))) != 0) {
            if (rv < 0) {
                fprintf(stderr, "wtclient: %s\n", err);
                return EXIT_USAGE;
            }
            i++;
        } else if (strcmp(a, "--loss") == 0) {
            C.loss = atof(v);
            if (C.loss < 0 || C.loss > 0.5) {
                fprintf(stderr, "wtclient: --loss is a fraction, 0 to 0.5\n");
                return EXIT_USAGE;
            }
            i++;
        } else if (strcmp(a, "--bind") == 0 && v) {
            bind_addr = argv[++i];
        } else if (strcmp(a, "--origin") == 0) {
            C.co.origin = argv[++i];
        } else if (strcmp(a, "--protocol") == 0) {
            if (C.co.nprotocols == MAX_PROTOCOLS) {
                fprintf(stderr, "wtclient: at most %d --protocol\n",
                        MAX_PROTOCOLS);
                return EXIT_USAGE;
            }
            C.protocols[C.co.nprotocols++] = argv[++i];
        } else if (strcmp(a, "--header") == 0) {
            const char *colon = strchr(v, ':');
            char *name;

            if (!colon || colon == v ||
                C.co.nheaders == WT_CONNECT_MAX_HEADERS) {
                fprintf(stderr, "wtclient: --header wants 'NAME: VALUE' "
                                "(at most %d)\n",
                        WT_CONNECT_MAX_HEADERS);
                return EXIT_USAGE;
            }
            /* lives until exit, as argv does */
            if (!(name = strndup(v, (size_t)(colon - v))))
                return EXIT_USAGE;
            for (char *c = name; *c; c++)
                *c = (char)tolower((unsigned char)*c);
            colon++;
            while (*colon == ' ')
                colon++;
            C.headers[2 * C.co.nheaders] = name;
            C.headers[2 * C.co.nheaders + 1] = colon;
            C.co.nheaders++;
            i++;
        } else if (strcmp(a, "--resume") == 0) {
            C.resume = argv[++i];
            to.resume = 1;
        } else if (strcmp(a, "--protocol-header") == 0) {
            if (strcmp(v, "wt") == 0) {
                C.co.protocol_hdr = WT_PROTO_HDR_WT;
            } else if (strcmp(v, "quiche") == 0) {
                C.co.protocol_hdr = WT_PROTO_HDR_QUICHE;
            } else {
                fprintf(stderr, "wtclient: --protocol-header is wt or quiche\n");
                return EXIT_USAGE;
            }
            i++;
        } else if (strcmp(a, "--timeout") == 0) {
            timeout = atof(v);
            if (timeout <= 0) {
                fprintf(stderr, "wtclient: bad --timeout\n");
                return EXIT_USAGE;
            }
            i++;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "wtclient: unknown option %s\n", a);
            usage(stderr);
            return EXIT_USAGE;
        } else if (!url) {
            url = a;
        } else {
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (!url || url_parse(url, &C.url) < 0) {
        fprintf(stderr, "wtclient: want a URL https://HOST:PORT/PATH\n");
        return EXIT_USAGE;
    }
    if ((C.bidi.path && open_input(&C.bidi) < 0) ||
        (C.uni.path && open_input(&C.uni) < 0))
        return EXIT_USAGE;
    C.co.authority = C.url.authority;
    C.co.path = C.url.path;
    C.co.protocols = C.protocols;
    C.co.headers = C.headers;

    hints.ai_socktype = SOCK_DGRAM;
    if ((rv = getaddrinfo(C.url.host, C.url.port, &hints, &ai)) != 0) {
        fprintf(stderr, "wtclient: %s: %s\n", C.url.host, gai_strerror(rv));
        return EXIT_CONNECT;
    }
    config_defaults(&C.cfg);
    C.cfg.max_streams_per_session = 1000000; /* the server's limits rule */
    /* our SETTINGS say which draft we speak (the server tells draft-14
     * from -07 by them), and for 14 and 15 our session windows */
    C.cfg.client_draft = (int)C.co.draft;
    C.cfg.wt_initial_max_data = wt_data;
    C.cfg.wt_initial_max_streams_bidi = wt_streams ? wt_streams : 128;
    C.cfg.wt_initial_max_streams_uni = wt_streams ? wt_streams : 128;
    C.cfg.no_quic_datagrams = no_dgrams;
    if (!(C.tls = tls_client_ctx_new(&to, err, sizeof(err)))) {
        fprintf(stderr, "wtclient: %s\n", err);
        freeaddrinfo(ai);
        return EXIT_USAGE;
    }
    /* none yet, or unreadable: a full handshake, and the file is written */
    if (C.resume && tls_ctx_ticket_load(C.tls, C.resume) < 0)
        log_debug("--resume %s: no session kept", C.resume);
    C.loop = EV_DEFAULT;
    quic_client_init(&C.ep, C.loop, &C.cfg, C.tls);
    quic_endpoint_set_loss(&C.ep, C.loss, 42);
    quic_endpoint_set_impair(&C.ep, &impair, 43);
    if (bind_addr && quic_client_bind(&C.ep, bind_addr) < 0) {
        fprintf(stderr, "wtclient: --bind wants an IP address, not %s\n",
                bind_addr);
        freeaddrinfo(ai);
        return EXIT_USAGE;
    }
    C.ep.token = C.token;
    C.ep.tokenlen = C.tokenlen;
    C.ep.dcid = C.dcid;
    C.ep.dcidlen = C.dcidlen;
    C.qc = quic_connect(&C.ep, ai->ai_addr, ai->ai_addrlen, C.url.host, &conn_ops,
                        &C, err, sizeof(err));
    freeaddrinfo(ai);
    if (!C.qc) {
        fprintf(stderr, "wtclient: %s\n", err);
        C.result = EXIT_CONNECT;
    } else {
        ev_timer_init(&C.deadline, deadline_cb, timeout, 0.);
        ev_timer_start(C.loop, &C.deadline);
        ev_timer_init(&C.tick, tick_cb, 0.05, 0.05);
        ev_timer_start(C.loop, &C.tick);
        ev_run(C.loop, 0);
        if (C.qc) /* sends CONNECTION_CLOSE at once */
            quic_conn_close_app(C.qc, WIRE_H3_NO_ERROR, NULL);
    }
    quic_endpoint_free(&C.ep);
    if (C.resume && tls_ctx_has_ticket(C.tls) &&
        tls_ctx_ticket_save(C.tls, C.resume) < 0)
        fprintf(stderr, "wtclient: %s: %s\n", C.resume, strerror(errno));
    tls_ctx_free(C.tls);
    free(C.bidi.pend);
    free(C.uni.pend);
    for (size_t k = 0; k < C.co.nheaders; k++)
        free((char *)C.headers[2 * k]);
    if (C.ep.impairing || C.loss > 0) {
        char sum[512];

        quic_impair_summary(&C.ep, sum, sizeof(sum), 0);
        fprintf(stderr, "wtclient: path: %s\n", sum);
    }
    ev_loop_destroy(C.loop);
    return C.result;
}
