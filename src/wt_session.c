/*
 * wt_session: WebTransport sessions (see wt.h).  Owns sessions and the
 * extended CONNECT that opens them (server and client), capsules on the
 * CONNECT stream, HTTP datagrams and their pool, closing a session, and
 * the connection-wide calls (wt_conn_*).  Streams are wt_stream.c.
 */
#include "wt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp3/nghttp3.h>

#include "config.h"
#include "h3.h"
#include "handler.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "quic.h"
#include "wire.h"
#include "wt_internal.h"

static int dgram_via_capsules(const struct wt_session *s);

struct wt_dgram {
    struct wt_dgram *next;
    struct wt_session *session;
    size_t len;
    uint8_t hdr[8];
    uint8_t hdrlen;
    uint8_t data[];
};

/*
 * Datagrams of up to one packet come from free lists, not malloc: echo
 * and broadcast queue one per received packet.  Two sizes, so that the
 * small messages a room fans out to thousands of members (chat, cursors,
 * game state) do not each take a whole packet's block: as many small
 * blocks as 4 096 members' copies, full-sized ones for 1 024 (2.4 MiB in
 * all at most).  Larger datagrams (rare: they must still fit a packet)
 * are malloc'd.
 */
#define DGRAM_SMALL_SIZE 192
#define DGRAM_SMALL_MAX 4096
#define DGRAM_POOL_SIZE 1500
#define DGRAM_POOL_MAX 1024

static struct pool dgram_pools[2] = {
    POOL_INIT(sizeof(struct wt_dgram) + DGRAM_SMALL_SIZE, DGRAM_SMALL_MAX),
    POOL_INIT(sizeof(struct wt_dgram) + DGRAM_POOL_SIZE, DGRAM_POOL_MAX),
};

static struct pool *pool_of(size_t n)
{
    return n <= DGRAM_SMALL_SIZE  ? &dgram_pools[0]
           : n <= DGRAM_POOL_SIZE ? &dgram_pools[1]
                                  : NULL;
}

static struct wt_dgram *dgram_alloc(size_t n)
{
    struct pool *pl = pool_of(n);

    return pl ? pool_get(pl) : malloc(sizeof(struct wt_dgram) + n);
}

static void dgram_release(struct wt_dgram *d)
{
    struct pool *pl = pool_of(d->len);

    metrics.buffered_bytes -= d->len;
    if (pl)
        pool_put(pl, d);
    else
        free(d);
}

void wt_conn_init(struct quic_conn *qc)
{
    memset(&qc->wt, 0, sizeof(qc->wt));
    LIST_INIT(&qc->wt.all);
    LIST_INIT(&qc->wt.sessions);
    TAILQ_INIT(&qc->wt.wq);
    TAILQ_INIT(&qc->wt.pending);
    ev_init(&qc->wt.pending_timer, wt_pending_expire_cb);
    qc->wt.pending_timer.data = qc;
}

const char *wt_draft_name(enum wt_draft d)
{
    switch (d) {
    case WT_DRAFT02:
        return "draft-02";
    case WT_DRAFT07:
        return "draft-07";
    case WT_DRAFT14:
        return "draft-14";
    default:
        return "draft-15";
    }
}

/* ---- sessions ---- */

struct wt_session *wt_session_find(struct quic_conn *qc, int64_t id)
{
    struct wt_session *s;

    LIST_FOREACH(s, &qc->wt.sessions, link)
        if (s->id == id)
            return s;
    return NULL;
}

static void dgram_purge(struct wt_session *s)
{
    struct wt_conn *w = &s->qc->wt;
    struct wt_dgram **p = &w->dq_head, *d;

    w->dq_tail = NULL;
    while ((d = *p)) {
        if (d->session == s) {
            *p = d->next;
            dgram_release(d);
        } else {
            w->dq_tail = d;
            p = &d->next;
        }
    }
    s->ndgrams = 0;
}

static void queue_capsule(struct wt_session *s, const uint8_t *p, size_t n,
                          int fin)
{
    if (s->caps_fin)
        return;
    if (n && buf_append(&s->caps, p, n) < 0)
        fin = 1; /* out of memory: at least end the stream */
    if (fin)
        s->caps_fin = 1;
    if (s->req)
        h3_resume(s->qc, s->id);
}

void wt_session_queue_capsule(struct wt_session *s, const uint8_t *p,
                              size_t n)
{
    queue_capsule(s, p, n, 0);
}

/* Session `id` is over, or never was: streams that name it, waiting or
 * still to come, are refused (WT_SESSION_GONE). */
static void session_forget(struct quic_conn *qc, int64_t id)
{
    qc->wt.gone[qc->wt.ngone++ % WT_GONE_RING] = (uint64_t)id;
    wt_pending_refuse(qc, (uint64_t)id);
}

void wt_session_refused(struct quic_conn *qc, int64_t id)
{
    session_forget(qc, id);
}

/*
 * Ends a session once: the handler hears of it, every stream is reset with
 * WT_SESSION_GONE, queued datagrams are dropped.  With `capsule` our side
 * sends CLOSE_WEBTRANSPORT_SESSION; otherwise only FIN.  The object lives
 * on until the CONNECT stream closes (its capsule bytes must stay until
 * acknowledged).
 */
/* Seconds our CLOSE capsule may take to be acknowledged: a peer that
 * gives no flow-control credit (it stopped reading) never gets it, so its
 * CONNECT stream is then reset, which needs no credit; the session is
 * over for it either way. */
#define CLOSE_LINGER 1.0

static void close_linger_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct wt_session *s = w->data;

    (void)loop;
    (void)revents;
    if (!s->req || buf_unacked(&s->caps) == 0)
        return;
    SLOG(debug, s, "CLOSE capsule not acknowledged in %.1f s (%llu bytes "
                   "waiting): CONNECT stream reset",
         CLOSE_LINGER, (unsigned long long)buf_unacked(&s->caps));
    ngtcp2_conn_shutdown_stream_write(s->qc->conn, 0, s->id,
                                      WIRE_WT_SESSION_GONE);
    h3_shut_wr(s->qc, s->id); /* nghttp3 writes nothing more on it */
    quic_conn_want_write(s->qc);
}

/*
 * The session's open and close lines (info): who, where, how long, how
 * much.  Strings from the peer (path, origin, reason) go out as escaped
 * fields (JSON consumers read those); the message keeps its old wording
 * for those who grep it, its control characters escaped like any line's.
 */
static void log_opened(const struct wt_session *s, const struct h3_request *req)
{
    const char *origin = req->origin ? req->origin : "-";
    const char *proto = s->protocol ? s->protocol : "";
    struct log_field f[] = {
        LOG_STR("peer", s->qc->peer, strlen(s->qc->peer)),
        LOG_STR("path", req->path, strlen(req->path)),
        LOG_STR("route", s->route->path, strlen(s->route->path)),
        LOG_STR("draft", wt_draft_name(s->draft), strlen(wt_draft_name(s->draft))),
        LOG_STR("origin", origin, strlen(origin)),
        LOG_STR("handler", s->route->handler->name,
                strlen(s->route->handler->name)),
        LOG_STR("protocol", proto, strlen(proto)),
    };

    /* the protocol field only when one was negotiated */
    log_fields(LOG_LVL_INFO, f,
               sizeof(f) / sizeof(f[0]) - (s->protocol ? 0 : 1),
               "conn %llu %s: session %lld: opened %s (%s, origin %s, handler "
               "%s%s%s)",
               (unsigned long long)s->qc->serial, s->qc->peer,
               (long long)s->id, s->route->path, wt_draft_name(s->draft),
               origin, s->route->handler->name,
               s->protocol ? ", protocol " : "", proto);
}

static void log_closed(const struct wt_session *s, uint32_t code,
                       const char *reason, size_t reasonlen, const char *who)
{
    const char *route = s->route ? s->route->path : "-";
    struct log_field f[] = {
        LOG_UINT("code", code),
        LOG_STR("reason", reason, reason ? reasonlen : 0),
        LOG_STR("peer", s->qc->peer, strlen(s->qc->peer)),
        LOG_STR("route", route, strlen(route)),
        LOG_SEC("duration", ev_now(s->qc->ep->loop) - s->opened),
        LOG_UINT("bytes_in", s->rx_bytes),
        LOG_UINT("bytes_out", s->tx_bytes),
        LOG_UINT("streams_in", s->streams_total - s->streams_local),
        LOG_UINT("streams_out", s->streams_local),
        LOG_UINT("datagrams_in", s->dgrams_in),
        LOG_UINT("datagrams_out", s->dgrams_out),
    };

    log_fields(LOG_LVL_INFO, f, sizeof(f) / sizeof(f[0]),
               "conn %llu %s: session %lld: closed by %s:",
               (unsigned long long)s->qc->serial, s->qc->peer,
               (long long)s->id, who);
}

static void session_end(struct wt_session *s, uint32_t code,
                        const char *reason, size_t reasonlen, int capsule,
                        const char *who)
{
    struct quic_conn *qc = s->qc;

    if (!s->open)
        return;
    s->open = 0;
    qc->wt.nopen--;
    if (qc->alim)
        addrlim_session_gone(&qc->ep->alim, qc->alim, ev_now(qc->ep->loop));
    if (s->metrics)
        s->metrics->sessions_open--;
    if (log_level >= LOG_LVL_INFO)
        log_closed(s, code, reason, reasonlen, who);
    if (s->fc.on)
        SLOG(info, s, "flow control: %llu bytes in (limit %llu), %llu out "
             "(peer's limit %llu), streams in %llu/%llu bidi %llu/%llu uni, "
             "%llu updates and %llu blocked capsules sent",
             (unsigned long long)s->fc.rx_data,
             (unsigned long long)s->fc.rx_max_data,
             (unsigned long long)s->fc.tx_data,
             (unsigned long long)s->fc.tx_max_data,
             (unsigned long long)s->fc.rx_streams[1],
             (unsigned long long)s->fc.rx_max_streams[1],
             (unsigned long long)s->fc.rx_streams[0],
             (unsigned long long)s->fc.rx_max_streams[0],
             (unsigned long long)s->fc.updates_sent,
             (unsigned long long)s->fc.blocked_sent);
    if (s->dgram_capsules_in || s->dgram_capsules_out ||
        s->dgram_capsules_dropped)
        SLOG(info, s, "datagram capsules: %llu in, %llu out, %llu dropped",
             (unsigned long long)s->dgram_capsules_in,
             (unsigned long long)s->dgram_capsules_out,
             (unsigned long long)s->dgram_capsules_dropped);
    ev_timer_stop(qc->ep->loop, &s->expire);
    if (ops_of(s)->session_close)
        ops_of(s)->session_close(s, code, reason, reasonlen);
    /* draft-07 §6: CLOSE (and FIN) first; the streams are reset after, and
     * the CONNECT stream never gets STOP_SENDING (Chromium then rejects
     * `closed` instead of resolving it). */
    if (capsule) {
        uint8_t cap[16 + WIRE_CLOSE_REASON_MAX];
        ssize_t n = wire_close_capsule_encode(cap, sizeof(cap), code, reason,
                                              reasonlen);

        queue_capsule(s, cap, n > 0 ? (size_t)n : 0, 1);
        if (s->req) {
            /* the expire timer is free now (stopped above) */
            ev_timer_init(&s->expire, close_linger_cb, CLOSE_LINGER, 0.);
            s->expire.data = s;
            ev_timer_start(qc->ep->loop, &s->expire);
        }
    } else {
        queue_capsule(s, NULL, 0, 1);
    }
    while (!LIST_EMPTY(&s->streams))
        wt_stream_abort(LIST_FIRST(&s->streams), WIRE_WT_SESSION_GONE);
    /* what the handler kept of ended streams is freed with it */
    if (s->kept_bytes)
        ngtcp2_conn_extend_max_offset(qc->conn, s->kept_bytes);
    s->kept_bytes = 0;
    s->kept_slots = 0;
    dgram_purge(s);
    session_forget(qc, s->id);
    quic_conn_want_write(qc);
}

/* A protocol error on the session: no capsule, reset the CONNECT stream.
 * Once: the first error's code stands, and the capsule parser stops for
 * good whatever the error was (a flow-control violation too), so the
 * capsules after it in the same read neither reset the stream again nor
 * get value buffers. */
void wt_session_abort(struct wt_session *s, uint64_t h3code, const char *why)
{
    s->cdead = 1;
    if (s->aborted)
        return;
    SLOG(debug, s, "aborted: %s", why);
    s->aborted = 1;
    session_end(s, 0, why, strlen(why), 0, "protocol error");
    ngtcp2_conn_shutdown_stream(s->qc->conn, 0, s->id, h3code);
}

/* A client session that never opened: the handler hears once, our side of
 * the request stream ends, nothing else was set up. */
static void session_fail(struct wt_session *s, int status, const char *why)
{
    if (!s->connecting)
        return;
    s->connecting = 0;
    SLOG(debug, s, "rejected: %d %s", status, why);
    queue_capsule(s, NULL, 0, 1);
    session_forget(s->qc, s->id);
    if (ops_of(s)->session_rejected)
        ops_of(s)->session_rejected(s, status, why);
}

static void session_unlink(struct wt_session *s)
{
    struct wt_conn *w = &s->qc->wt;

    LIST_REMOVE(s, link);
    if (s->req) {
        ((struct h3_request *)s->req)->session = NULL;
        s->req = NULL;
    }
    s->gc_next = w->gc_sessions;
    w->gc_sessions = s;
}

static void expire_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct wt_session *s = w->data;
    const struct config_route *r = s->route;
    const char *reason = r->expire_reason ? r->expire_reason : "";

    (void)loop;
    (void)revents;
    wt_session_close(s, r->expire_code, reason, strlen(reason));
}

static int respond(struct quic_conn *qc, struct h3_request *req, int status,
                   const char *why)
{
    CLOG(debug, qc, "stream %lld: CONNECT %s refused with %d: %s",
         (long long)req->stream_id, req->path ? req->path : "-", status, why);
    const struct config_route *r =
        req->path ? config_find_route(cfg_of(qc), req->path, strlen(req->path))
                  : NULL;

    metrics_session_rejected(metrics_route(r ? r->path : NULL), status);
    req->refused = 1;
    session_forget(qc, req->stream_id);
    return h3_respond(qc, req->stream_id, status, NULL, 0, 0);
}

/* A session the handler refused (or that could not be answered): what it
 * may have set up in session_open goes, without the handler. */
static void session_discard(struct wt_session *s)
{
    if (s->open) {
        s->open = 0;
        s->qc->wt.nopen--;
        if (s->qc->alim)
            addrlim_session_gone(&s->qc->ep->alim, s->qc->alim,
                                 ev_now(s->qc->ep->loop));
    }
    while (!LIST_EMPTY(&s->streams))
        wt_stream_abort(LIST_FIRST(&s->streams), WIRE_WT_SESSION_GONE);
    dgram_purge(s);
    ev_timer_stop(s->qc->ep->loop, &s->expire);
    buf_free(&s->caps);
    free(s->cval);
    free(s->protocol);
    config_route_unref(s->route);
    free(s);
}

/* :protocol webtransport without the draft-02 header: draft-14 when the
 * client's SETTINGS carry its WT_MAX_SESSIONS (draft-14 §3.1: clients
 * send it too) or flow-control settings, else draft-07. */
static enum wt_draft client_draft_of(const struct quic_conn *qc)
{
    uint64_t v;

    if ((h3_peer_setting(qc, WIRE_SETTING_WT_MAX_SESSIONS_D13, &v) && v) ||
        h3_peer_fc_intent(qc, 1))
        return WT_DRAFT14;
    return WT_DRAFT07;
}

int wt_on_connect(struct quic_conn *qc, struct h3_request *req)
{
    const struct config *cfg = cfg_of(qc);
    const struct config_route *route;
    struct wt_session *s;
    enum wt_draft draft;
    const char *path = req->path;
    /* response headers: the draft-02 marker, the subprotocol */
    const char *hdrs[4];
    const char *proto[2];
    char protoval[CONFIG_MAX_PROTOCOL_LEN + 3];
    size_t nhdrs = 0;
    int rv;

    if (strcmp(req->protocol, "webtransport-h3") == 0)
        draft = WT_DRAFT15;
    else if (strcmp(req->protocol, "webtransport") == 0)
        draft = req->draft02 ? WT_DRAFT02 : client_draft_of(qc);
    else
        return respond(qc, req, 501, "unsupported :protocol");
    /* RFC 9220 §3 / RFC 9114 §4.4: an extended CONNECT carries all four. */
    if (!req->scheme || !req->authority || !path || path[0] != '/')
        return respond(qc, req, 400, "missing :scheme, :authority or :path");
    if (strcmp(req->scheme, "https") != 0)
        return respond(qc, req, 400, ":scheme is not https");
    if (qc->ep->shutting_down || qc->h3.goaway_sent)
        return respond(qc, req, 503, "shutting down");
    /* The routes in force now, also on a connection accepted before a
     * reload (browsers pool connections); the connection's own limits
     * stay those it was accepted under. */
    route = config_find_route(qc->ep->cfg, path, strlen(path));
    if (!route)
        return respond(qc, req, 404, "no route");
    if (route->norigins > 0) {
        size_t i;

        for (i = 0; i < route->norigins; i++)
            if (req->origin && strcmp(req->origin, route->origins[i]) == 0)
                break;
        if (i == route->norigins)
            return respond(qc, req, 403, "origin not allowed");
    }
    if (qc->wt.nopen >= cfg->max_sessions_per_connection)
        return respond(qc, req, 429, "max_sessions_per_connection reached");

    /* across every connection of the client's address: without it, one
     * address holds max_connections_per_address x the above */
    if (qc->alim && addrlim_session_take(&qc->ep->alim, qc->alim) < 0) {
        metrics.sessions_refused_address++;
        return respond(qc, req, 429, "max_sessions_per_address reached");
    }
    /* counted from here: session_discard() or session_end() gives it back
     * (s->open), and so must every return before s->open is set */
    s = calloc(1, sizeof(*s));
    if (!s) {
        if (qc->alim)
            addrlim_session_gone(&qc->ep->alim, qc->alim, ev_now(qc->ep->loop));
        return respond(qc, req, 503, "out of memory");
    }
    s->qc = qc;
    s->req = req;
    s->id = req->stream_id;
    s->stream_prefix_id = (uint64_t)s->id;
    s->draft = draft;
    wt_fc_init(s);
    /* draft-16 §5.1: without flow control a connection carries one
     * session; more are reset with H3_REQUEST_REJECTED (not processed) */
    if ((draft == WT_DRAFT14 || draft == WT_DRAFT15) && !s->fc.on &&
        qc->wt.nopen > 0) {
        free(s);
        if (qc->alim)
            addrlim_session_gone(&qc->ep->alim, qc->alim, ev_now(qc->ep->loop));
        CLOG(debug, qc, "stream %lld: a second session without flow "
             "control: H3_REQUEST_REJECTED", (long long)req->stream_id);
        req->refused = 1;
        session_forget(qc, req->stream_id);
        ngtcp2_conn_shutdown_stream(qc->conn, 0, req->stream_id,
                                    WIRE_H3_REQUEST_REJECTED);
        quic_conn_want_write(qc);
        return 0;
    }
    s->route = config_route_ref(route);
    s->ops = route->handler;
    s->opened = ev_now(qc->ep->loop);
    LIST_INIT(&s->streams);
    LIST_INIT(&s->fc_waiters);
    buf_init(&s->caps);
    ev_init(&s->expire, expire_cb);
    s->expire.data = s;
    /* open, and counted, while the handler decides: it may open streams,
     * queue datagrams or close the session right away */
    s->open = 1;
    qc->wt.nopen++;
    /* before the handler, which may want to know it */
    if ((rv = wt_protocol_select(s, req, proto, protoval,
                                 sizeof(protoval))) != 0) {
        session_discard(s);
        return respond(qc, req, rv,
                       rv == 406 ? "no subprotocol of the route offered "
                                   "(protocol_required)"
                                 : "out of memory");
    }
    rv = ops_of(s)->session_open ? ops_of(s)->session_open(s) : 0;
    if (rv != 0 || !s->open) {
        session_discard(s);
        return respond(qc, req, rv >= 400 && rv <= 599 ? rv : 503,
                       "handler refused the session");
    }
    if (draft == WT_DRAFT02) {
        hdrs[nhdrs++] = "sec-webtransport-http3-draft";
        hdrs[nhdrs++] = "draft02";
    }
    if (proto[0]) {
        hdrs[nhdrs++] = proto[0];
        hdrs[nhdrs++] = proto[1];
    }
    if (h3_respond(qc, req->stream_id, 200, hdrs, nhdrs / 2, 1) < 0) {
        if (ops_of(s)->session_close)
            ops_of(s)->session_close(s, 0, "", 0);
        session_discard(s);
        return -1;
    }
    req->session = s;
    LIST_INSERT_HEAD(&qc->wt.sessions, s, link);
    s->metrics = metrics_route(route->path);
    s->metrics->sessions_open++;
    s->metrics->sessions_total++;
    if (log_level >= LOG_LVL_INFO)
        log_opened(s, req);
    if (route->max_session_duration_ms) {
        ev_timer_set(&s->expire,
                     (ev_tstamp)route->max_session_duration_ms / 1000., 0.);
        ev_timer_start(qc->ep->loop, &s->expire);
    }
    wt_adopt_pending(s);
    return 0;
}

/* What the server's SETTINGS must say for a draft (wt-protocol.md). */
static const char *client_settings_problem(const struct quic_conn *qc,
                                           enum wt_draft draft)
{
    uint64_t v = 0;

    if (!h3_peer_setting(qc, WIRE_SETTING_ENABLE_CONNECT_PROTOCOL, &v) ||
        v != 1)
        return "the server does not allow extended CONNECT";
    if (!(h3_peer_setting(qc, WIRE_SETTING_H3_DATAGRAM, &v) && v == 1) &&
        !(draft == WT_DRAFT02 &&
          h3_peer_setting(qc, WIRE_SETTING_H3_DATAGRAM_DRAFT04, &v) && v == 1))
        return "the server does not offer HTTP/3 datagrams";
    switch (draft) {
    case WT_DRAFT02:
        if (h3_peer_setting(qc, WIRE_SETTING_ENABLE_WEBTRANSPORT, &v) && v == 1)
            return NULL;
        break;
    case WT_DRAFT07:
        if (h3_peer_setting(qc, WIRE_SETTING_WT_MAX_SESSIONS_D07, &v) && v > 0)
            return NULL;
        break;
    case WT_DRAFT14:
        if (h3_peer_setting(qc, WIRE_SETTING_WT_MAX_SESSIONS_D13, &v) && v > 0)
            return NULL;
        break;
    case WT_DRAFT15:
        if (h3_peer_setting(qc, WIRE_SETTING_WT_ENABLED, &v) && v == 1)
            return NULL;
        break;
    }
    return "the server does not offer this WebTransport draft";
}

struct wt_session *wt_session_connect(struct quic_conn *qc,
                                      const struct wt_connect_opts *o,
                                      const struct wt_handler_ops *ops,
                                      void *hdata, char *err, size_t errlen)
{
    const char *problem = client_settings_problem(qc, o->draft);
    struct wt_session *s;
    const char *proto[2], *hdrs[2 * (1 + WT_CONNECT_MAX_HEADERS)];
    size_t nhdrs = 0;
    int64_t id;
    int rv;

    if (!qc->h3.settings_recv)
        problem = "the server's SETTINGS have not arrived";
    if (problem) {
        snprintf(err, errlen, "%s (%s)", problem, wt_draft_name(o->draft));
        return NULL;
    }
    rv = ngtcp2_conn_open_bidi_stream(qc->conn, &id, NULL);
    if (rv != 0) {
        snprintf(err, errlen, "cannot open a request stream: %s",
                 ngtcp2_strerror(rv));
        return NULL;
    }
    h3_adopt_stream(qc, id, 0);
    s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    s->qc = qc;
    s->id = id;
    s->stream_prefix_id = (uint64_t)id;
    s->draft = o->draft;
    s->ops = ops;
    s->hdata = hdata;
    s->connecting = 1;
    wt_fc_init(s);
    LIST_INIT(&s->streams);
    LIST_INIT(&s->fc_waiters);
    buf_init(&s->caps);
    ev_init(&s->expire, expire_cb);
    s->expire.data = s;
    if (wt_protocol_offer(s, o, proto) < 0) {
        snprintf(err, errlen, "a subprotocol cannot be sent as %s",
                 o->protocol_hdr == WT_PROTO_HDR_WT ? "a String" : "a Token");
        free(s);
        goto fail;
    }
    if (proto[0]) {
        hdrs[nhdrs++] = proto[0];
        hdrs[nhdrs++] = proto[1];
    }
    for (size_t i = 0; i < o->nheaders && i < WT_CONNECT_MAX_HEADERS; i++) {
        hdrs[nhdrs++] = o->headers[2 * i];
        hdrs[nhdrs++] = o->headers[2 * i + 1];
    }
    s->req = h3_connect(qc, id,
                        o->draft == WT_DRAFT15 ? "webtransport-h3"
                                               : "webtransport",
                        o->authority, o->path, o->origin,
                        o->draft == WT_DRAFT02, hdrs, nhdrs / 2);
    if (!s->req) {
        snprintf(err, errlen, "cannot send the CONNECT request");
        free(s->offer);
        free(s);
        goto fail;
    }
    s->req->session = s;
    LIST_INSERT_HEAD(&qc->wt.sessions, s, link);
    return s;

fail:
    ngtcp2_conn_shutdown_stream(qc->conn, 0, id, WIRE_H3_INTERNAL_ERROR);
    return NULL;
}

int wt_on_response(struct wt_session *s, int fin)
{
    struct quic_conn *qc = s->qc;
    int status = s->req ? s->req->status : 0;
    char why[64];

    if (!s->connecting)
        return 0;
    if (status < 200 || status > 299) {
        snprintf(why, sizeof(why), "HTTP status %d", status);
        session_fail(s, status, why);
        return 0;
    }
    /* draft-02 servers confirm the draft; Chromium insists on it too. */
    if (s->draft == WT_DRAFT02 && !s->req->draft02_resp) {
        session_fail(s, status,
                     "no sec-webtransport-http3-draft: draft02 in the answer");
        return 0;
    }
    if (fin) {
        session_fail(s, status, "the answer ended the request stream");
        return 0;
    }
    s->connecting = 0;
    s->open = 1;
    s->opened = ev_now(qc->ep->loop);
    qc->wt.nopen++;
    wt_protocol_answer(s, s->req);
    SLOG(debug, s, "opened %s (%s)", s->req->path, wt_draft_name(s->draft));
    if (ops_of(s)->session_open && ops_of(s)->session_open(s) != 0) {
        wt_session_close(s, 0, "", 0);
        return 0;
    }
    if (s->open)
        wt_adopt_pending(s);
    return 0;
}

int wt_session_send_raw(struct wt_session *s, const uint8_t *p, size_t n)
{
    if (s->caps_fin || !s->req)
        return -1;
    queue_capsule(s, p, n, 0);
    return 0;
}

/*
 * A client session still waiting for its answer has no session to CLOSE
 * yet: the request is cancelled the HTTP/3 way (RFC 9114 §4.1.1: reset and
 * abort the request stream with H3_REQUEST_CANCELLED), which a server
 * reads as the session's end (draft-14 §6: a reset CONNECT stream ends the
 * session) if it had opened one.  The handler hears session_close once,
 * with its own code, and nothing more (a 2xx that was already on its way
 * finds the session no longer connecting); the object goes when the
 * stream closes, as any ended session's.
 */
static void session_cancel(struct wt_session *s, uint32_t code,
                           const char *reason, size_t reasonlen)
{
    s->connecting = 0;
    s->aborted = 1;
    SLOG(debug, s, "cancelled before the server's answer (code %u)", code);
    session_forget(s->qc, s->id);
    if (ops_of(s)->session_close)
        ops_of(s)->session_close(s, code, reason, reasonlen);
    ngtcp2_conn_shutdown_stream(s->qc->conn, 0, s->id,
                                WIRE_H3_REQUEST_CANCELLED);
    quic_conn_want_write(s->qc);
}

void wt_session_close(struct wt_session *s, uint32_t code, const char *reason,
                      size_t reasonlen)
{
    if (reasonlen > WIRE_CLOSE_REASON_MAX)
        reasonlen = WIRE_CLOSE_REASON_MAX;
    if (s->connecting) {
        session_cancel(s, code, reason, reasonlen);
        return;
    }
    session_end(s, code, reason, reasonlen, 1,
                s->qc->ep->role == QUIC_CLIENT ? "client" : "server");
}

const char *wt_session_name(const struct wt_session *s, char *buf,
                            size_t len)
{
    snprintf(buf, len, "conn %llu %s: session %lld",
             (unsigned long long)s->qc->serial, s->qc->peer, (long long)s->id);
    return buf;
}

const char *wt_session_path(const struct wt_session *s)
{
    return s->req ? s->req->path : NULL;
}

const char *wt_session_authority(const struct wt_session *s)
{
    return s->req ? s->req->authority : NULL;
}

void wt_session_addresses(const struct wt_session *s,
                          struct sockaddr_storage *peer, socklen_t *plen,
                          struct sockaddr_storage *local, socklen_t *llen)
{
    *peer = s->qc->remote.ss;
    *plen = s->qc->remote.len;
    *local = s->qc->local.ss;
    *llen = s->qc->local.len;
}

struct ev_loop *wt_session_loop(const struct wt_session *s)
{
    return s->qc->ep->loop;
}

size_t wt_session_max_datagram(const struct wt_session *s)
{
    if (dgram_via_capsules(s))
        return WT_DGRAM_CAPSULE_MAX;
    size_t path = ngtcp2_conn_get_path_max_tx_udp_payload_size(s->qc->conn);
    uint8_t hdr[8];
    ssize_t h = wire_datagram_header_encode(hdr, sizeof(hdr), (uint64_t)s->id);

    /* the same overhead quic_conn.c reckons with (DGRAM_OVERHEAD) */
    return path > 46 + (size_t)h ? path - 46 - (size_t)h : 0;
}

uint64_t wt_session_max_buffer(const struct wt_session *s)
{
    return cfg_of(s->qc)->max_buffer_bytes;
}

/* ---- capsules ---- */

/* The capsule stream is refused: the session is aborted and the parser
 * stopped (see wt_on_capsule_data). */
static void capsule_fail(struct wt_session *s, uint64_t h3code,
                         const char *why)
{
    s->cdead = 1;
    free(s->cval);
    s->cval = NULL;
    wt_session_abort(s, h3code, why);
}

/* RFC 9297 §3.5: a DATAGRAM capsule is a datagram of the session, for
 * peers and intermediaries without QUIC datagrams. */
static void capsule_datagram(struct wt_session *s, const uint8_t *p, size_t n)
{
    s->dgrams_in++;
    s->dgram_capsules_in++;
    if (ops_of(s)->datagram)
        ops_of(s)->datagram(s, p, n);
}

static void capsule_done(struct wt_session *s)
{
    uint64_t type = s->crd.type, len = s->crd.len;
    uint32_t code;
    const char *reason;
    size_t reasonlen;

    SLOG(debug, s, "capsule 0x%llx, %llu bytes%s", (unsigned long long)type,
         (unsigned long long)len, s->cskip ? " (skipped)" : "");
    if (s->cskip)
        return;
    if (wt_fc_is_capsule(type)) {
        wt_fc_capsule(s, type, s->cval, (size_t)len);
        return;
    }
    switch (type) {
    case WIRE_CAPSULE_CLOSE_SESSION:
        if (wire_close_capsule_decode(s->cval, len, &code, &reason,
                                      &reasonlen) != 0) {
            capsule_fail(s, WIRE_H3_MESSAGE_ERROR, "malformed CLOSE capsule");
            return;
        }
        /* The peer closes with FIN next; ours answers it. */
        session_end(s, code, reason, reasonlen, 0, "peer");
        break;
    case WIRE_CAPSULE_DRAIN_SESSION:
        SLOG(debug, s, "%s", "peer sent DRAIN_WEBTRANSPORT_SESSION");
        s->draining = 1;
        break;
    case WIRE_CAPSULE_DATAGRAM:
        capsule_datagram(s, s->cval, (size_t)len);
        break;
    default:
        /* RFC 9297 §3.2: unknown capsule types (GREASE) are skipped. */
        break;
    }
}

/* The largest value kept of a capsule of this type; 0: its value is
 * skipped (unknown types, and DATAGRAMs too large, dropped). */
static uint64_t capsule_keep_max(uint64_t type)
{
    if (type == WIRE_CAPSULE_CLOSE_SESSION ||
        type == WIRE_CAPSULE_DRAIN_SESSION)
        return WT_CVAL_MAX;
    if (type == WIRE_CAPSULE_DATAGRAM)
        return WT_DGRAM_CAPSULE_MAX;
    if (wt_fc_is_capsule(type))
        return WIRE_VARINT_MAXLEN;
    return 0;
}

/* A capsule header is in: check it, and have the buffer for its value
 * ready, before the parser enters it.  -1 when the session was aborted. */
static int capsule_begin(struct wt_session *s)
{
    uint64_t type = s->crd.type, len = s->crd.len, max;

    s->cskip = 0;
    max = capsule_keep_max(type);
    if (max == 0 || (type == WIRE_CAPSULE_DATAGRAM && len > max)) {
        if (type == WIRE_CAPSULE_DATAGRAM)
            s->dgram_capsules_dropped++;
        s->cskip = 1;
        return 0;
    }
    if (len > max) {
        capsule_fail(s, WIRE_H3_MESSAGE_ERROR, "oversized capsule");
        return -1;
    }
    /* the value's own size, at least one byte: a session idle between
     * capsules holds nothing */
    if (!(s->cval = malloc(len ? (size_t)len : 1))) {
        capsule_fail(s, WIRE_H3_INTERNAL_ERROR, "out of memory");
        return -1;
    }
    return 0;
}

/*
 * An incremental parser (wire_capsule_next) that stops for good on its
 * first error: whatever exit it takes, it is left in a state where more
 * input, even in the same read (a retransmission merges DATA frames into
 * one STREAM frame), is ignored.
 */
int wt_on_capsule_data(struct wt_session *s, const uint8_t *p, size_t n)
{
    while (!s->cdead) {
        enum wire_capsule_event ev;
        const uint8_t *v = NULL;
        size_t vl = 0, used = wire_capsule_next(&s->crd, p, n, &ev, &v, &vl);

        p += used;
        n -= used;
        switch (ev) {
        case WIRE_CAPSULE_NEED:
            return 0;
        case WIRE_CAPSULE_HEADER:
            if (capsule_begin(s) < 0)
                return 0;
            break;
        case WIRE_CAPSULE_VALUE:
            if (!s->cskip)
                memcpy(s->cval + (s->crd.got - vl), v, vl);
            break;
        case WIRE_CAPSULE_END:
            if (s->open)
                capsule_done(s); /* after CLOSE nothing is acted on */
            free(s->cval);
            s->cval = NULL;
            break;
        }
    }
    return 0;
}

void wt_on_connect_fin(struct wt_session *s)
{
    if (s->connecting) {
        session_fail(s, 0, "the request stream ended without a response");
        return;
    }
    if (!s->open)
        return; /* already ended (by a CLOSE, or aborted) */
    if (wire_capsule_partial(&s->crd)) {
        wt_session_abort(s, WIRE_H3_MESSAGE_ERROR, "truncated capsule");
        return;
    }
    session_end(s, 0, "", 0, 0, "peer");
}

/* The peer reset its side of the CONNECT stream: the session is over, not
 * closed (no CLOSE capsule, no FIN). */
void wt_on_connect_reset(struct wt_session *s, uint64_t code)
{
    char who[64];
    uint32_t app = 0;

    if (s->connecting) {
        session_fail(s, 0, "the request stream was reset");
        return;
    }
    if (!s->open)
        return;
    snprintf(who, sizeof(who), "peer: CONNECT stream reset (0x%llx)",
             (unsigned long long)code);
    s->aborted = 1;
    (void)wire_wt_error_from_h3(code, &app);
    session_end(s, app, "", 0, 0, who);
}

/*
 * nghttp3 is deleting the request stream (inside its stream_close): the
 * request goes first, so that nothing the ending session does (queueing
 * its FIN, a handler closing or writing) reaches the stream or the request
 * again.
 */
void wt_on_connect_closed(struct wt_session *s, uint64_t code)
{
    (void)code;
    s->req->session = NULL;
    s->req = NULL;
    if (s->open)
        s->aborted = 1;
    session_fail(s, 0, "the request stream closed without a response");
    session_end(s, 0, "", 0, 0, "connection");
    session_unlink(s);
}

int wt_session_aborted(const struct wt_session *s)
{
    return s->aborted;
}

ssize_t wt_capsules_read(struct wt_session *s, struct iovec *vec, size_t nvec,
                         uint32_t *pflags)
{
    size_t k = buf_peek(&s->caps, vec, nvec), total = 0;

    for (size_t i = 0; i < k; i++)
        total += vec[i].iov_len;
    buf_mark_sent(&s->caps, total);
    if (s->caps_fin && buf_unsent(&s->caps) == 0)
        *pflags |= NGHTTP3_DATA_FLAG_EOF;
    else if (k == 0)
        return NGHTTP3_ERR_WOULDBLOCK;
    return (ssize_t)k;
}

void wt_capsules_acked(struct wt_session *s, uint64_t n)
{
    buf_ack(&s->caps, n);
    buf_release_idle(&s->caps);
}

/* ---- datagrams ---- */

void wt_on_datagram(struct quic_conn *qc, const uint8_t *p, size_t n)
{
    uint64_t sid;
    ssize_t r = wire_datagram_decode(p, n, &sid);
    struct wt_session *s;

    if (r < 0) {
        CLOG(debug, qc, "%s", "malformed HTTP datagram dropped");
        return;
    }
    s = wt_session_find(qc, (int64_t)sid);
    if (!s || !s->open) {
        /* RFC 9297 §2.1: unknown quarter stream ID: drop (maybe early). */
        CLOG(debug, qc, "datagram for unknown session %llu dropped",
             (unsigned long long)sid);
        return;
    }
    s->dgrams_in++;
    metrics.datagrams_received++;
    if (ops_of(s)->datagram)
        ops_of(s)->datagram(s, p + r, n - (size_t)r);
}

/*
 * Whether the session's datagrams go as DATAGRAM capsules on the CONNECT
 * stream: when QUIC datagrams are off on either side (RFC 9221: neither
 * may send them unless the other advertised max_datagram_frame_size), as
 * behind an intermediary that cannot forward them (RFC 9297 §3.5).
 */
static int dgram_via_capsules(const struct wt_session *s)
{
    struct wt_conn *w = &s->qc->wt;
    const ngtcp2_transport_params *r, *l;
    int caps;

    /* asked for every datagram sent; the answer is fixed once the
     * handshake has confirmed the peer's transport parameters */
    if (w->dgram_mode)
        return w->dgram_mode == 2;
    r = ngtcp2_conn_get_remote_transport_params(s->qc->conn);
    l = ngtcp2_conn_get_local_transport_params(s->qc->conn);
    caps = (r && r->max_datagram_frame_size == 0) ||
           (l && l->max_datagram_frame_size == 0);
    if (r && ngtcp2_conn_get_handshake_completed(s->qc->conn))
        w->dgram_mode = caps ? 2 : 1;
    return caps;
}

/* A datagram as a capsule: reliable, so bounded in bytes instead of in
 * packets: what max_datagram_queue full-sized datagrams would take, of
 * capsule bytes not yet acknowledged; past that it is dropped, as a full
 * datagram queue drops. */
static int send_datagram_capsule(struct wt_session *s, const uint8_t *p,
                                 size_t n)
{
    uint8_t hdr[16];
    ssize_t h = wire_capsule_header_encode(hdr, sizeof(hdr),
                                           WIRE_CAPSULE_DATAGRAM, n);
    uint64_t max = cfg_of(s->qc)->max_datagram_queue * 1500;

    if (h < 0 || !s->req || s->caps_fin ||
        buf_unacked(&s->caps) + (size_t)h + n > max ||
        buf_append(&s->caps, hdr, (size_t)h) < 0) {
        s->dgram_capsules_dropped++;
        s->qc->wt.dgrams_dropped++;
        return -1;
    }
    if (n && buf_append(&s->caps, p, n) < 0) {
        /* the header is queued: a capsule cut here would break the
         * stream, so it is ended instead (out of memory) */
        queue_capsule(s, NULL, 0, 1);
        return -1;
    }
    s->dgrams_out++;
    s->dgram_capsules_out++;
    queue_capsule(s, NULL, 0, 0);
    return 0;
}

int wt_session_send_datagram(struct wt_session *s, const uint8_t *p, size_t n)
{
    struct wt_conn *w = &s->qc->wt;
    struct wt_dgram *d;
    ssize_t h;

    if (s->open && n <= WT_DGRAM_CAPSULE_MAX && dgram_via_capsules(s))
        return send_datagram_capsule(s, p, n);

    if (!s->open || s->ndgrams >= cfg_of(s->qc)->max_datagram_queue ||
        n > 65535) {
        w->dgrams_dropped++; /* no flow control: a full queue drops */
        metrics.datagrams_dropped++;
        return -1;
    }
    d = dgram_alloc(n);
    if (!d)
        return -1;
    d->len = n;
    metrics.buffered_bytes += n;
    h = wire_datagram_header_encode(d->hdr, sizeof(d->hdr), (uint64_t)s->id);
    if (h < 0) {
        dgram_release(d);
        return -1;
    }
    d->hdrlen = (uint8_t)h;
    d->next = NULL;
    d->session = s;
    memcpy(d->data, p, n);
    if (w->dq_tail)
        w->dq_tail->next = d;
    else
        w->dq_head = d;
    w->dq_tail = d;
    s->ndgrams++;
    s->dgrams_out++;
    metrics.datagrams_sent++;
    quic_conn_want_write(s->qc);
    return 0;
}

int wt_datagram_pending(const struct quic_conn *qc)
{
    return qc->wt.dq_head != NULL;
}

size_t wt_datagram_peek(struct quic_conn *qc, ngtcp2_vec *vec)
{
    struct wt_dgram *d = qc->wt.dq_head;

    vec[0].base = d->hdr;
    vec[0].len = d->hdrlen;
    /* an empty payload is no vector: ngtcp2 asserts that none is empty
     * (an empty datagram echoed used to abort the daemon) */
    if (d->len == 0)
        return 1;
    vec[1].base = d->data;
    vec[1].len = d->len;
    return 2;
}

void wt_datagram_pop(struct quic_conn *qc, int sent)
{
    struct wt_dgram *d = qc->wt.dq_head;

    if (!d)
        return;
    qc->wt.dq_head = d->next;
    if (!qc->wt.dq_head)
        qc->wt.dq_tail = NULL;
    d->session->ndgrams--;
    if (!sent) {
        qc->wt.dgrams_dropped++;
        metrics.datagrams_dropped++;
    }
    dgram_release(d);
}

/* ---- connection-wide ---- */

void wt_conn_drain(struct quic_conn *qc)
{
    uint8_t cap[8];
    ssize_t n = wire_drain_capsule_encode(cap, sizeof(cap));

    struct wt_session *s;

    LIST_FOREACH(s, &qc->wt.sessions, link)
        if (s->open && !s->caps_fin && n > 0)
            queue_capsule(s, cap, (size_t)n, 0);
}

void wt_conn_close_sessions(struct quic_conn *qc, uint32_t code,
                            const char *reason)
{
    struct wt_session *s;

    LIST_FOREACH(s, &qc->wt.sessions, link)
        if (s->open)
            wt_session_close(s, code, reason, strlen(reason));
}

size_t wt_conn_open_sessions(const struct quic_conn *qc)
{
    return qc->wt.nopen;
}

int wt_conn_has_sessions(const struct quic_conn *qc)
{
    return !LIST_EMPTY(&qc->wt.sessions);
}

void wt_conn_collect(struct quic_conn *qc)
{
    struct wt_conn *w = &qc->wt;

    while (w->gc_streams) {
        struct wt_stream *st = w->gc_streams;

        w->gc_streams = st->gc_next;
        wt_stream_free(st);
    }
    while (w->gc_sessions) {
        struct wt_session *s = w->gc_sessions;

        w->gc_sessions = s->gc_next;
        ev_timer_stop(qc->ep->loop, &s->expire);
        buf_free(&s->caps);
        free(s->cval);
        free(s->protocol);
        free(s->offer);
        config_route_unref(s->route);
        free(s);
    }
}

void wt_conn_free(struct quic_conn *qc)
{
    struct wt_conn *w = &qc->wt;
    struct wt_session *s;

    qc->ending = 1; /* handlers: these sessions end with their connection */
    ev_timer_stop(qc->ep->loop, &w->pending_timer);
    LIST_FOREACH(s, &w->sessions, link) {
        /* the request goes with the connection: nothing is sent on it */
        if (s->req) {
            s->req->session = NULL;
            s->req = NULL;
        }
        if (s->open)
            s->aborted = 1;
        session_fail(s, 0, "the connection closed");
        session_end(s, 0, "", 0, 0, "connection");
    }
    while (!LIST_EMPTY(&w->sessions))
        session_unlink(LIST_FIRST(&w->sessions));
    while (!TAILQ_EMPTY(&w->pending))
        wt_stream_abort(TAILQ_FIRST(&w->pending), WIRE_WT_SESSION_GONE);
    while (w->dq_head)
        wt_datagram_pop(qc, 0);
    wt_conn_collect(qc);
    /* No ngtcp2 callback runs for this connection any more: the streams
     * still waiting for stream_close go now. */
    while (!LIST_EMPTY(&w->all)) {
        struct wt_stream *st = LIST_FIRST(&w->all);

        wt_stream_detach(st);
        ngtcp2_conn_set_stream_user_data(qc->conn, st->id, NULL);
        wt_stream_free(st);
    }
}
