/*
 * handler_forward: a gateway from WebTransport to TCP, Unix and UDP
 * backends.  Each stream the client opens becomes one non-blocking
 * connection to a backend (round robin over the route's `backend` list,
 * skipping for `backend_retry` one that refused or did not answer within
 * `connect_timeout`); a bidi stream carries bytes both ways, a uni stream
 * is a write-only connection.  Each session's datagrams go to
 * `datagram_backend` on a connected UDP socket of its own, and what comes
 * back on it returns to the session.  With `proxy_protocol = v2` every
 * backend connection (and UDP socket) first gets a PROXY v2 header
 * (proxy.h).
 *
 * Backpressure both ways, no buffer past flow control: client bytes are
 * credited back (wt_stream_consume) only once written to the backend, so a
 * slow backend stalls the client; the backend socket is read only while
 * the stream's send buffer has room, so a slow client stalls the backend.
 * A stream that ends while its bytes still wait for the backend keeps them
 * (wt_stream_keep) until written.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#include "buf.h"
#include "config.h"
#include "handler.h"
#include "log.h"
#include "metrics.h"
#include "proxy.h"
#include "target.h"
#include "wt.h"

/* WebTransport application error codes (README, forward).  Below 256:
 * draft-02 browsers carry no more (Firefox shows a larger code as 0). */
#define FW_REFUSED 0xf1  /* every backend refused the connection */
#define FW_TIMEOUT 0xf2  /* no backend answered in connect_timeout */
#define FW_RESET 0xf3    /* the backend reset the connection */
#define FW_LIMIT 0xf4    /* max_backend_connections reached */
#define FW_INTERNAL 0xf5 /* no socket, or out of memory */

#define MAX_BACKENDS 32
/* bytes read from a backend per readiness event at most: a fair share */
#define READ_CHUNK (64 * 1024)

struct fw_backend {
    struct target t;
    ev_tstamp down_until; /* refused or timed out: skipped till then */
};

struct fw_conf {
    struct fw_backend backends[MAX_BACKENDS];
    size_t nbackends, next;
    struct target dgram;
    int has_dgram, proxy_v2;
    uint64_t retry_ms, connect_timeout_ms, linger_ms, max_conns;
    size_t nconns; /* backend connections open on the route */
    struct metrics_route *metrics; /* by route path: outlives a reload */
};

struct fw_conn;

struct fw_session {
    struct wt_session *s; /* NULL once closed */
    /* held while connections linger past the session: a reload may drop
     * the route from the config meanwhile, and conf is the route's */
    const struct config_route *route;
    struct fw_conf *conf;
    struct ev_loop *loop;
    char *authority, *path;
    struct sockaddr_storage peer, local;
    socklen_t plen, llen;
    LIST_HEAD(, fw_conn) conns;
    int ufd; /* datagram socket, -1 when none */
    ev_io uio;
    uint64_t dgrams_dropped;
};

struct fw_conn {
    struct fw_session *fs;
    struct wt_stream *st; /* NULL once the stream ended */
    int fd;
    ev_io rio, wio;
    ev_timer timer;  /* connect_timeout */
    ev_timer linger; /* `linger`, once the stream has ended */
    size_t backend, tries;
    int connected, bidi, last_error;
    struct buf tobe;     /* to the backend: the PROXY header, client bytes */
    size_t header_left;  /* header bytes still at the start of tobe */
    uint64_t uncredited; /* client bytes in tobe */
    int client_fin, wr_shut, backend_eof, kept, counted, lingering;
    int outq; /* bytes the backend had not taken at the last check */
    LIST_ENTRY(fw_conn) link;
};

/* ---- configuration ---- */

static struct fw_conf *conf_get(struct config_route *r, char *err,
                                size_t errlen)
{
    struct fw_conf *c = r->handler_conf;

    if (c)
        return c;
    if (!(c = calloc(1, sizeof(*c)))) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->retry_ms = 5000;
    c->connect_timeout_ms = 5000;
    c->linger_ms = 10000;
    c->max_conns = 10000;
    r->handler_conf = c;
    return c;
}

static int fw_configure(struct config_route *r, const char *key,
                        const char *val, char *err, size_t errlen)
{
    struct fw_conf *c = conf_get(r, err, errlen);

    if (!c)
        return -1;
    if (strcmp(key, "backend") == 0) {
        /* comma-separated; more lines add to the list */
        char item[160];
        const char *p = val;

        while (*p) {
            size_t n = strcspn(p, ",");
            const char *a = p, *e = p + n;

            while (a < e && (*a == ' ' || *a == '\t'))
                a++;
            while (e > a && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
            if (e > a) {
                if ((size_t)(e - a) >= sizeof(item) ||
                    c->nbackends == MAX_BACKENDS) {
                    snprintf(err, errlen, "backend: at most %d, each under "
                                          "%zu bytes",
                             MAX_BACKENDS, sizeof(item));
                    return -1;
                }
                memcpy(item, a, (size_t)(e - a));
                item[e - a] = 0;
                if (target_parse(item, TARGET_TCP,
                                 &c->backends[c->nbackends].t, err,
                                 errlen) < 0)
                    return -1;
                c->nbackends++;
            }
            p += n + (p[n] == ',');
        }
        return 0;
    }
    if (strcmp(key, "datagram_backend") == 0) {
        if (target_parse(val, TARGET_UDP, &c->dgram, err, errlen) < 0)
            return -1;
        c->has_dgram = 1;
        return 0;
    }
    if (strcmp(key, "proxy_protocol") == 0) {
        if (strcmp(val, "v2") == 0)
            c->proxy_v2 = 1;
        else if (strcmp(val, "none") == 0)
            c->proxy_v2 = 0;
        else {
            snprintf(err, errlen, "proxy_protocol: v2 or none");
            return -1;
        }
        return 0;
    }
    if (strcmp(key, "backend_retry") == 0 ||
        strcmp(key, "connect_timeout") == 0 || strcmp(key, "linger") == 0) {
        uint64_t v;

        if (config_parse_duration_ms(val, &v) < 0 || v < 10 || v > 3600000) {
            snprintf(err, errlen, "%s: a duration from 10ms to 1h", key);
            return -1;
        }
        *(key[0] == 'b'   ? &c->retry_ms
          : key[0] == 'c' ? &c->connect_timeout_ms
                          : &c->linger_ms) = v;
        return 0;
    }
    if (strcmp(key, "max_backend_connections") == 0) {
        uint64_t v;

        if (config_parse_size(val, &v) < 0 || v < 1 || v > 10000000) {
            snprintf(err, errlen, "%s: a number from 1 to 10000000", key);
            return -1;
        }
        c->max_conns = v;
        return 0;
    }
    snprintf(err, errlen, "unknown key '%s' for handler forward", key);
    return -1;
}

static int fw_route_check(struct config_route *r, char *err, size_t errlen)
{
    struct fw_conf *c = conf_get(r, err, errlen);

    if (!c)
        return -1;
    if (c->nbackends == 0 && !c->has_dgram) {
        snprintf(err, errlen, "handler forward needs 'backend' or "
                              "'datagram_backend'");
        return -1;
    }
    c->metrics = metrics_route(r->path);
    c->metrics->forward = 1;
    return 0;
}

/* Counts a stream reset with one of the FW_ codes. */
static void count_error(struct fw_conf *conf, uint32_t code)
{
    if (code >= FW_REFUSED && code <= FW_INTERNAL)
        conf->metrics->backend_errors[code - FW_REFUSED]++;
}

static void fw_route_free(struct config_route *r)
{
    free(r->handler_conf);
    r->handler_conf = NULL;
}

/* ---- backend connections ---- */

static void conn_read_cb(struct ev_loop *loop, ev_io *w, int revents);
static void conn_write_cb(struct ev_loop *loop, ev_io *w, int revents);
static void conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents);
static void conn_linger_cb(struct ev_loop *loop, ev_timer *w, int revents);
static void conn_flush(struct fw_conn *c);

static void conn_stop_io(struct fw_conn *c)
{
    ev_io_stop(c->fs->loop, &c->rio);
    ev_io_stop(c->fs->loop, &c->wio);
    ev_timer_stop(c->fs->loop, &c->timer);
}

/* Closes the socket: with `reset`, an RST (SO_LINGER 0), as a reset
 * stream deserves; otherwise a normal close. */
static void conn_close_fd(struct fw_conn *c, int reset)
{
    if (c->fd < 0)
        return;
    conn_stop_io(c);
    if (reset) {
        struct linger l = {1, 0};

        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    }
    close(c->fd);
    c->fd = -1;
    if (c->counted) {
        c->counted = 0;
        c->fs->conf->nconns--;
        c->fs->conf->metrics->backend_open--;
    }
}

/* Gives back the credit of n client bytes the backend has taken. */
static void conn_credit(struct fw_conn *c, uint64_t n)
{
    if (n > c->uncredited)
        n = c->uncredited;
    if (!n)
        return;
    c->uncredited -= n;
    if (c->st)
        wt_stream_consume(c->st, (size_t)n);
    else if (c->kept && c->fs->s)
        wt_session_release(c->fs->s, n, 0);
}

/* With `reset`, the backend gets an RST (the stream did not end well). */
static void conn_free(struct fw_conn *c, int reset)
{
    ev_timer_stop(c->fs->loop, &c->linger);
    conn_close_fd(c, reset);
    if (c->kept && c->fs->s)
        wt_session_release(c->fs->s, c->uncredited, 1);
    buf_free(&c->tobe);
    LIST_REMOVE(c, link);
    free(c);
}

static void fs_free_if_done(struct fw_session *fs);

/* Frees a connection whose stream is gone, and its session's state with
 * the last one once the session is closed. */
static void conn_release(struct fw_conn *c, int reset)
{
    struct fw_session *fs = c->fs;

    conn_free(c, reset);
    fs_free_if_done(fs);
}

/* The stream is over for the backend side: reset it with `code` (the
 * connection goes when the stream closes). */
static void conn_fail(struct fw_conn *c, uint32_t code)
{
    count_error(c->fs->conf, code);
    conn_close_fd(c, 1);
    if (c->st)
        wt_stream_reset(c->st, code); /* its stream_close frees c */
    else
        conn_release(c, 1);
}

/*
 * A connection whose stream ended whole (the client's FIN) outlives it,
 * its session too, till the backend has every byte and has ended too:
 * what the backend still sends is read and dropped meanwhile, because
 * closing a socket with unread bytes is an RST, which drops what the
 * kernel has not sent yet.  `linger` without progress bounds it;
 * max_backend_connections still counts it.
 */
static void conn_maybe_done(struct fw_conn *c)
{
    if (c->st || buf_unsent(&c->tobe) > 0)
        return;
    if (!c->connected || c->backend_eof) {
        conn_release(c, 0);
        return;
    }
    if (c->wr_shut && !c->lingering) {
        c->lingering = 1; /* reading what is left, to the backend's end */
        ev_io_start(c->fs->loop, &c->rio);
    }
}

static void conn_connected(struct fw_conn *c)
{
    struct fw_backend *b = &c->fs->conf->backends[c->backend];

    c->connected = 1;
    c->fs->conf->metrics->backend_total++;
    ev_timer_stop(c->fs->loop, &c->timer);
    ev_io_stop(c->fs->loop, &c->wio);
    log_debug("forward: stream %lld: connected to %s",
              c->st ? (long long)wt_stream_id(c->st) : -1LL, b->t.text);
    /* a uni stream's connection is read only to notice its end */
    ev_io_start(c->fs->loop, &c->rio);
    conn_flush(c);
}

/* Tries the next backend that is not marked down; resets the stream when
 * none is left. */
static void conn_try(struct fw_conn *c)
{
    struct fw_session *fs = c->fs;
    struct fw_conf *conf = fs->conf;
    ev_tstamp now = ev_now(fs->loop);

    while (c->tries < conf->nbackends) {
        size_t i = conf->next++ % conf->nbackends;
        struct fw_backend *b = &conf->backends[i];
        int fd;

        c->tries++;
        if (b->down_until > now)
            continue;
        fd = socket(b->t.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
                                             SOCK_CLOEXEC, 0);
        if (fd < 0) {
            conn_fail(c, FW_INTERNAL);
            return;
        }
        c->fd = fd;
        c->backend = i;
        if (!c->counted) {
            c->counted = 1;
            conf->nconns++;
            conf->metrics->backend_open++;
        }
        ev_io_init(&c->rio, conn_read_cb, fd, EV_READ);
        ev_io_init(&c->wio, conn_write_cb, fd, EV_WRITE);
        c->rio.data = c->wio.data = c;
        if (connect(fd, (struct sockaddr *)&b->t.addr, b->t.len) == 0) {
            conn_connected(c);
            return;
        }
        if (errno == EINPROGRESS) {
            ev_timer_set(&c->timer,
                         (ev_tstamp)conf->connect_timeout_ms / 1000., 0.);
            ev_timer_start(fs->loop, &c->timer);
            ev_io_start(fs->loop, &c->wio);
            return;
        }
        log_info("forward: backend %s: %s; skipped for %llu ms", b->t.text,
                 strerror(errno), (unsigned long long)conf->retry_ms);
        c->last_error = FW_REFUSED;
        b->down_until = now + (ev_tstamp)conf->retry_ms / 1000.;
        conn_close_fd(c, 0);
    }
    conn_fail(c, c->last_error ? (uint32_t)c->last_error : FW_REFUSED);
}

static void conn_down(struct fw_conn *c, uint32_t why, const char *what)
{
    struct fw_conf *conf = c->fs->conf;
    struct fw_backend *b = &conf->backends[c->backend];

    log_info("forward: backend %s: %s; skipped for %llu ms", b->t.text, what,
             (unsigned long long)conf->retry_ms);
    b->down_until = ev_now(c->fs->loop) + (ev_tstamp)conf->retry_ms / 1000.;
    c->last_error = (int)why;
    conn_close_fd(c, 0);
    conn_try(c);
}

static void conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct fw_conn *c = w->data;

    (void)loop;
    (void)revents;
    conn_down(c, FW_TIMEOUT, "no answer within connect_timeout");
}

static void conn_linger_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct fw_conn *c = w->data;

    int q = 0;

    (void)revents;
    /* the backend still takes bytes from the socket: slow, not stuck */
    if (c->fd >= 0 && ioctl(c->fd, SIOCOUTQ, &q) == 0 && q > 0 &&
        q < c->outq) {
        c->outq = q;
        ev_timer_again(loop, w);
        return;
    }
    log_info("forward: backend %s: no progress for %llu ms after its "
             "stream ended; reset",
             c->fs->conf->backends[c->backend].t.text,
             (unsigned long long)c->fs->conf->linger_ms);
    conn_release(c, 1);
}

/* Writes what waits for the backend; credits the client's bytes taken. */
static void conn_flush(struct fw_conn *c)
{
    struct iovec iov[16];
    size_t k;
    ssize_t n;

    while ((k = buf_peek(&c->tobe, iov, 16)) > 0) {
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = k};
        size_t h;

        n = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                ev_io_start(c->fs->loop, &c->wio);
                return;
            }
            conn_fail(c, FW_RESET); /* EPIPE, ECONNRESET */
            return;
        }
        buf_mark_sent(&c->tobe, (size_t)n);
        buf_ack(&c->tobe, (size_t)n);
        h = (size_t)n < c->header_left ? (size_t)n : c->header_left;
        c->header_left -= h;
        conn_credit(c, (uint64_t)n - h);
        if (!c->st)
            ev_timer_again(c->fs->loop, &c->linger); /* progress */
    }
    ev_io_stop(c->fs->loop, &c->wio);
    buf_release_idle(&c->tobe);
    if (c->client_fin && !c->wr_shut) {
        shutdown(c->fd, SHUT_WR); /* the client's FIN */
        c->wr_shut = 1;
    }
    conn_maybe_done(c);
}

static void conn_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct fw_conn *c = w->data;
    int err = 0;
    socklen_t len = sizeof(err);

    (void)loop;
    (void)revents;
    if (!c->connected) {
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err == EINPROGRESS)
            return;
        if (err) {
            conn_down(c, err == ETIMEDOUT ? FW_TIMEOUT : FW_REFUSED,
                      strerror(err));
            return;
        }
        conn_connected(c);
        return;
    }
    conn_flush(c);
}

/* A block to read a backend into, kept between reads: a large read goes
 * to the stream by reference (no copy), a small one is copied and the
 * block read into again. */
static struct buf_shared *spare;

/* Backend bytes go to the client while its stream has room; reading stops
 * when it has none (stream_writable resumes). */
static void conn_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct fw_conn *c = w->data;
    size_t room = READ_CHUNK;
    ssize_t n;
    int rv = 0;

    (void)revents;
    if (c->bidi && c->st) {
        room = wt_stream_room(c->st);
        if (room == 0) {
            ev_io_stop(loop, w);
            return;
        }
        if (room > READ_CHUNK)
            room = READ_CHUNK;
    }
    if (!spare && !(spare = buf_shared_new(NULL, 0, READ_CHUNK))) {
        conn_fail(c, FW_INTERNAL);
        return;
    }
    n = recv(c->fd, spare->data, room, MSG_DONTWAIT);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        conn_fail(c, FW_RESET);
        return;
    }
    if (n == 0) { /* the backend's FIN: the stream's */
        ev_io_stop(loop, w);
        c->backend_eof = 1;
        if (c->bidi && c->st)
            wt_stream_write(c->st, NULL, 0, 1);
        conn_maybe_done(c);
        return;
    }
    /* a write-only (uni) connection's replies are dropped */
    if (!c->bidi || !c->st)
        return;
    if ((size_t)n >= READ_CHUNK / 4) {
        spare->len = (size_t)n;
        rv = wt_stream_write_shared(c->st, spare, 0, (size_t)n, 0);
        buf_shared_unref(spare); /* the stream's reference holds it */
        spare = NULL;
    } else {
        rv = wt_stream_write(c->st, spare->data, (size_t)n, 0);
    }
    if (rv < 0)
        conn_fail(c, FW_INTERNAL);
}

/* ---- sessions and datagrams ---- */

/* The session's state goes once the session is closed and its last
 * connection (kept ones included) is gone. */
static void fs_free_if_done(struct fw_session *fs)
{
    if (fs->s || !LIST_EMPTY(&fs->conns))
        return;
    free(fs->authority);
    free(fs->path);
    config_route_unref(fs->route);
    free(fs);
}

static void udp_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct fw_session *fs = w->data;
    static uint8_t tmp[65536];

    (void)loop;
    (void)revents;
    /* a bounded share per event: the other sockets get their turn */
    for (int i = 0; i < 64 && fs->s; i++) {
        ssize_t n = recv(fs->ufd, tmp, sizeof(tmp), MSG_DONTWAIT);

        if (n < 0)
            return; /* EAGAIN; ECONNREFUSED: nobody there (yet) */
        if ((size_t)n > wt_session_max_datagram(fs->s) ||
            wt_session_send_datagram(fs->s, tmp, (size_t)n) < 0)
            fs->dgrams_dropped++; /* too large for the path, or queue full */
    }
}

static int udp_open(struct fw_session *fs)
{
    struct fw_conf *conf = fs->conf;
    uint8_t hdr[PROXY_V2_MAX];
    ssize_t h;

    fs->ufd = socket(conf->dgram.addr.ss_family,
                     SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fs->ufd < 0)
        return -1;
    if (connect(fs->ufd, (struct sockaddr *)&conf->dgram.addr,
                conf->dgram.len) < 0) {
        close(fs->ufd);
        fs->ufd = -1;
        return -1;
    }
    if (conf->proxy_v2 &&
        (h = proxy_v2_encode(hdr, sizeof(hdr), (struct sockaddr *)&fs->peer,
                             (struct sockaddr *)&fs->local, 1, fs->authority,
                             fs->path)) > 0)
        send(fs->ufd, hdr, (size_t)h, MSG_DONTWAIT);
    ev_io_init(&fs->uio, udp_read_cb, fs->ufd, EV_READ);
    fs->uio.data = fs;
    ev_io_start(fs->loop, &fs->uio);
    return 0;
}

static int fw_session_open(struct wt_session *s)
{
    struct fw_conf *conf = s->route->handler_conf;
    struct fw_session *fs;
    const char *a = wt_session_authority(s), *p = wt_session_path(s);

    if (!conf || !(fs = calloc(1, sizeof(*fs))))
        return 503;
    fs->s = s;
    fs->conf = conf;
    fs->loop = wt_session_loop(s);
    fs->ufd = -1;
    LIST_INIT(&fs->conns);
    wt_session_addresses(s, &fs->peer, &fs->plen, &fs->local, &fs->llen);
    /* (within nghttp3's max_field_section_size: PROXY_V2_MAX fits them) */
    if ((a && strlen(a) <= 1024 && !(fs->authority = strdup(a))) ||
        (p && strlen(p) <= 4096 && !(fs->path = strdup(p))) ||
        (conf->has_dgram && udp_open(fs) < 0)) {
        free(fs->authority);
        free(fs->path);
        free(fs);
        return 503;
    }
    fs->route = config_route_ref(s->route);
    s->hdata = fs;
    return 0;
}

static void fw_session_close(struct wt_session *s, uint32_t code,
                             const char *reason, size_t reasonlen)
{
    struct fw_session *fs = s->hdata;
    int aborted = wt_session_aborted(s);
    struct fw_conn *c;

    (void)code;
    (void)reason;
    (void)reasonlen;
    if (!fs)
        return;
    if (fs->ufd >= 0) {
        ev_io_stop(fs->loop, &fs->uio);
        close(fs->ufd);
    }
    if (fs->dgrams_dropped)
        log_info("forward: session %lld: %llu datagrams from the backend "
                 "dropped",
                 (long long)s->id, (unsigned long long)fs->dgrams_dropped);
    /* connections whose stream ended whole finish on their own (their
     * kept bytes are no longer the session's: its end gave them back);
     * the others go with their streams, which wt ends right after this */
    LIST_FOREACH(c, &fs->conns, link) {
        c->kept = 0;
        if (c->st)
            conn_close_fd(c, aborted);
    }
    fs->s = NULL;
    s->hdata = NULL;
    fs_free_if_done(fs);
}

static void fw_datagram(struct wt_session *s, const uint8_t *p, size_t n)
{
    struct fw_session *fs = s->hdata;

    /* no flow control: what the socket cannot take now is dropped */
    if (fs && fs->ufd >= 0 && send(fs->ufd, p, n, MSG_DONTWAIT) < 0)
        fs->dgrams_dropped++;
}

/* ---- streams ---- */

static void fw_stream_open(struct wt_stream *st)
{
    struct fw_session *fs = wt_stream_session(st)->hdata;
    struct fw_conf *conf;
    struct fw_conn *c;
    uint8_t hdr[PROXY_V2_MAX];
    ssize_t h;

    if (wt_stream_is_local(st) || !fs)
        return;
    conf = fs->conf;
    if (conf->nbackends == 0) {
        count_error(conf, FW_REFUSED);
        wt_stream_reset(st, FW_REFUSED);
        return;
    }
    if (conf->nconns >= conf->max_conns) {
        log_debug("forward: max_backend_connections (%llu) reached",
                  (unsigned long long)conf->max_conns);
        count_error(conf, FW_LIMIT);
        wt_stream_reset(st, FW_LIMIT);
        return;
    }
    if (!(c = calloc(1, sizeof(*c)))) {
        count_error(conf, FW_INTERNAL);
        wt_stream_reset(st, FW_INTERNAL);
        return;
    }
    c->fs = fs;
    c->st = st;
    c->fd = -1;
    c->bidi = wt_stream_is_bidi(st);
    buf_init(&c->tobe);
    ev_init(&c->timer, conn_timer_cb);
    c->timer.data = c;
    ev_init(&c->linger, conn_linger_cb);
    c->linger.repeat = (ev_tstamp)conf->linger_ms / 1000.;
    c->linger.data = c;
    c->outq = INT_MAX;
    LIST_INSERT_HEAD(&fs->conns, c, link);
    st->hdata = c;
    if (conf->proxy_v2) {
        h = proxy_v2_encode(hdr, sizeof(hdr), (struct sockaddr *)&fs->peer,
                            (struct sockaddr *)&fs->local, 0, fs->authority,
                            fs->path);
        if (h > 0 && buf_append(&c->tobe, hdr, (size_t)h) == 0)
            c->header_left = (size_t)h;
    }
    conn_try(c);
}

static void fw_stream_data(struct wt_stream *st, const uint8_t *p, size_t n,
                           int fin)
{
    struct fw_conn *c = st->hdata;

    if (!c)
        return;
    /* not credited: the stream's window bounds what waits here */
    if (n && buf_append(&c->tobe, p, n) < 0) {
        conn_fail(c, FW_INTERNAL);
        return;
    }
    c->uncredited += n;
    if (fin && !c->client_fin)
        log_debug("forward: stream %lld: the client's FIN",
                  (long long)wt_stream_id(st));
    c->client_fin |= fin;
    /* Bytes come a STREAM frame (a packet) at a time: they are written
     * once the packets at hand are read, when the socket next says it is
     * writable (the next loop turn), in one sendmsg, not one each; a lot
     * at once goes now, unless the socket is full already (its writer
     * waits for room). */
    if (c->connected && c->fd >= 0 && !ev_is_active(&c->wio)) {
        if (buf_unsent(&c->tobe) >= READ_CHUNK)
            conn_flush(c);
        else
            ev_io_start(c->fs->loop, &c->wio);
    }
}

static void fw_stream_reset(struct wt_stream *st, uint32_t code)
{
    struct fw_conn *c = st->hdata;

    /* the client's reset: the backend's connection is reset too */
    if (c)
        conn_close_fd(c, 1);
    wt_stream_reset(st, code);
}

static void fw_stream_stop_sending(struct wt_stream *st, uint32_t code)
{
    fw_stream_reset(st, code);
}

static void fw_stream_writable(struct wt_stream *st)
{
    struct fw_conn *c = st->hdata;

    /* acknowledgements made room: read the backend again */
    if (c && c->connected && c->fd >= 0 && !c->backend_eof && c->bidi)
        ev_io_start(c->fs->loop, &c->rio);
}

static void fw_stream_close(struct wt_stream *st)
{
    struct fw_conn *c = st->hdata;

    if (!c)
        return;
    st->hdata = NULL;
    c->st = NULL;
    log_debug("forward: stream %lld: ended%s, %zu bytes still for the "
              "backend",
              (long long)wt_stream_id(st), c->client_fin ? " whole" : "",
              buf_unsent(&c->tobe));
    /* a reset, or the session gone before the client's FIN: an RST */
    if (c->fd < 0 || !c->client_fin) {
        conn_release(c, 1);
        return;
    }
    /* ended whole: the backend gets the rest (the session's credit held
     * for it till written) and the connection ends cleanly */
    if (buf_unsent(&c->tobe) > 0 && c->fs->s) {
        wt_stream_keep(st);
        c->kept = 1;
    }
    ev_timer_again(c->fs->loop, &c->linger);
    conn_maybe_done(c);
}

const struct wt_handler_ops handler_forward = {
    .name = "forward",
    .configure = fw_configure,
    .route_check = fw_route_check,
    .route_free = fw_route_free,
    .session_open = fw_session_open,
    .session_close = fw_session_close,
    .stream_open = fw_stream_open,
    .stream_data = fw_stream_data,
    .stream_reset = fw_stream_reset,
    .stream_stop_sending = fw_stream_stop_sending,
    .stream_writable = fw_stream_writable,
    .stream_close = fw_stream_close,
    .datagram = fw_datagram,
};
