/* h3: see h3.h. */
#include "h3.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "quic.h"
#include "wire.h"
#include "wt.h"

/* QPACK and field-section limits: nghttp3 enforces them, our own SETTINGS
 * frame announces them, so both come from here.  No dynamic table: a
 * connection carries a CONNECT or a few, so there is next to nothing to
 * compress, and a table is up to 4 KiB held per connection each way for
 * its whole life (measured: 1 000 idle one-session connections, 55.0 KB
 * each with 4096, 53.3 KB with 0).  0 is QPACK's own default (RFC 9204
 * §3.2.3): every client copes. */
#define QPACK_MAX_DTABLE 0
#define QPACK_BLOCKED 100
#define MAX_FIELD_SECTION 16384

static const char h3_marker; /* ngtcp2 stream user data of nghttp3 streams */

int h3_is_stream(const void *stream_user_data)
{
    return stream_user_data == &h3_marker;
}

void h3_adopt_stream(struct quic_conn *qc, int64_t stream_id, uint64_t type)
{
    ngtcp2_conn_set_stream_user_data(qc->conn, stream_id, (void *)&h3_marker);
    if (!ngtcp2_is_bidi_stream(stream_id) && type == WIRE_H3_STREAM_CONTROL &&
        qc->h3.peer_ctrl_id < 0)
        qc->h3.peer_ctrl_id = stream_id;
}

int h3_request_refused(const struct quic_conn *qc, int64_t id)
{
    const struct h3_request *r;

    LIST_FOREACH(r, &qc->h3.requests, link)
        if (r->stream_id == id)
            return r->refused;
    return 0;
}

int h3_peer_setting(const struct quic_conn *qc, uint64_t id, uint64_t *value)
{
    for (size_t i = 0; i < qc->h3.npeer; i++) {
        if (qc->h3.peer[i].id == id) {
            *value = qc->h3.peer[i].value;
            return 1;
        }
    }
    return 0;
}

/* Extended CONNECTs that arrived before the client's SETTINGS, answered
 * now (draft-16 §7.1: the server needs the client's SETTINGS to know its
 * draft and whether it uses flow control).  A failure refuses that
 * request alone. */
static void connects_deferred(struct quic_conn *qc)
{
    struct h3_request *r, *next;

    for (r = LIST_FIRST(&qc->h3.requests); r; r = next) {
        next = LIST_NEXT(r, link);
        if (!r->deferred)
            continue;
        r->deferred = 0;
        if (wt_on_connect(qc, r) < 0)
            ngtcp2_conn_shutdown_stream(qc->conn, 0, r->stream_id,
                                        WIRE_H3_INTERNAL_ERROR);
    }
}

static void settings_done(struct quic_conn *qc, const char *problem)
{
    struct h3_conn *h = &qc->h3;
    char line[H3_MAX_PEER_SETTINGS * 40] = "";
    size_t o = 0;

    h->settings_recv = 1;
    free(h->tee);
    h->tee = NULL;
    for (size_t i = 0; i < h->npeer && o < sizeof(line); i++)
        o += (size_t)snprintf(line + o, sizeof(line) - o, " 0x%llx=%llu",
                              (unsigned long long)h->peer[i].id,
                              (unsigned long long)h->peer[i].value);
    if (problem)
        log_debug("conn %llu %s: peer SETTINGS not read: %s",
                  (unsigned long long)qc->serial, qc->peer, problem);
    else
        log_debug("conn %llu %s: peer SETTINGS:%s",
                  (unsigned long long)qc->serial, qc->peer, line);
    quic_conn_settings_received(qc);
    if (qc->ep->role == QUIC_SERVER)
        connects_deferred(qc);
}

/* Collects the first bytes of the peer's control stream until its SETTINGS
 * frame is whole (RFC 9114 §6.2.1: it comes first).  nghttp3 enforces the
 * rules; this only keeps the values. */
static void settings_tee(struct quic_conn *qc, const uint8_t *p, size_t n)
{
    struct h3_conn *h = &qc->h3;
    size_t count = 0, take;
    const char *why;
    ssize_t r;

    if (!h->tee && !(h->tee = malloc(H3_CTRL_TEE_MAX))) {
        settings_done(qc, "out of memory");
        return;
    }
    take = H3_CTRL_TEE_MAX - h->teelen < n ? H3_CTRL_TEE_MAX - h->teelen : n;
    memcpy(h->tee + h->teelen, p, take);
    h->teelen += take;
    r = wire_control_settings_decode(h->tee, h->teelen, H3_CTRL_TEE_MAX,
                                     h->peer, H3_MAX_PEER_SETTINGS, &count,
                                     &why);
    if (r == WIRE_ERR_SHORT)
        return;
    if (r < 0) {
        h->npeer = 0;
        settings_done(qc, why);
        return;
    }
    h->npeer = count < H3_MAX_PEER_SETTINGS ? count : H3_MAX_PEER_SETTINGS;
    settings_done(qc, NULL);
}

static void request_free(struct h3_request *r)
{
    LIST_REMOVE(r, link);
    free(r->method);
    free(r->protocol);
    free(r->scheme);
    free(r->authority);
    free(r->path);
    free(r->origin);
    free(r->proto[0]);
    free(r->proto[1]);
    free(r);
}

/* ---- nghttp3 callbacks ---- */

static void consume(struct quic_conn *qc, int64_t stream_id, size_t n)
{
    ngtcp2_conn_extend_max_stream_offset(qc->conn, stream_id, n);
    ngtcp2_conn_extend_max_offset(qc->conn, n);
}

static int cb_acked_stream_data(nghttp3_conn *conn, int64_t stream_id,
                                uint64_t datalen, void *user_data,
                                void *stream_user_data)
{
    struct h3_request *r = stream_user_data;

    (void)conn;
    (void)user_data;
    (void)stream_id;
    if (r && r->session)
        wt_capsules_acked(r->session, datalen);
    return 0;
}

static int cb_stream_close(nghttp3_conn *conn, int64_t stream_id,
                           uint64_t app_error_code, void *user_data,
                           void *stream_user_data)
{
    struct h3_request *r = stream_user_data;

    (void)conn;
    (void)stream_id;
    (void)user_data;
    if (!r)
        return 0;
    if (r->session)
        wt_on_connect_closed(r->session, app_error_code);
    request_free(r);
    return 0;
}

static int cb_recv_data(nghttp3_conn *conn, int64_t stream_id,
                        const uint8_t *data, size_t datalen, void *user_data,
                        void *stream_user_data)
{
    struct quic_conn *qc = user_data;
    struct h3_request *r = stream_user_data;

    (void)conn;
    /* Capsules are bounded by wt's parser, request bodies are dropped: the
     * credit goes back at once either way. */
    consume(qc, stream_id, datalen);
    if (r && r->session)
        return wt_on_capsule_data(r->session, data, datalen) == 0
                   ? 0
                   : NGHTTP3_ERR_CALLBACK_FAILURE;
    return 0;
}

static int cb_deferred_consume(nghttp3_conn *conn, int64_t stream_id,
                               size_t consumed, void *user_data,
                               void *stream_user_data)
{
    (void)conn;
    (void)stream_user_data;
    consume(user_data, stream_id, consumed);
    return 0;
}

static int cb_begin_headers(nghttp3_conn *conn, int64_t stream_id,
                            void *user_data, void *stream_user_data)
{
    struct quic_conn *qc = user_data;
    struct h3_request *r;

    if (stream_user_data)
        return 0; /* a client's own request, or trailers */
    if (stream_id > qc->h3.max_client_bidi_id)
        qc->h3.max_client_bidi_id = stream_id;
    r = calloc(1, sizeof(*r));
    if (!r)
        return NGHTTP3_ERR_CALLBACK_FAILURE;
    r->stream_id = stream_id;
    LIST_INSERT_HEAD(&qc->h3.requests, r, link);
    nghttp3_conn_set_stream_user_data(conn, stream_id, r);
    return 0;
}

static int set_field(char **dst, const nghttp3_vec *v)
{
    free(*dst);
    *dst = strndup((const char *)v->base, v->len);
    return *dst ? 0 : -1;
}

/* A List field sent on several lines is one List (RFC 9651 §4.2):
 * they are joined with ", ".  Bounded by nghttp3's field section limit. */
static int join_field(char **dst, const nghttp3_vec *v)
{
    size_t old = *dst ? strlen(*dst) : 0;
    char *p;

    if (!*dst)
        return set_field(dst, v);
    if (!(p = realloc(*dst, old + 2 + v->len + 1)))
        return -1;
    memcpy(p + old, ", ", 2);
    memcpy(p + old + 2, v->base, v->len);
    p[old + 2 + v->len] = '\0';
    *dst = p;
    return 0;
}

static int name_is(const nghttp3_vec *n, const char *s)
{
    size_t l = strlen(s);

    return n->len == l && memcmp(n->base, s, l) == 0;
}

static int cb_recv_header(nghttp3_conn *conn, int64_t stream_id, int32_t token,
                          nghttp3_rcbuf *name, nghttp3_rcbuf *value,
                          uint8_t flags, void *user_data,
                          void *stream_user_data)
{
    struct h3_request *r = stream_user_data;
    nghttp3_vec n = nghttp3_rcbuf_get_buf(name);
    nghttp3_vec v = nghttp3_rcbuf_get_buf(value);
    int rv = 0;

    (void)conn;
    (void)flags;
    if (!r)
        return 0;
    log_debug("conn %llu %s: stream %lld: %.*s: %.*s",
              (unsigned long long)((struct quic_conn *)user_data)->serial,
              ((struct quic_conn *)user_data)->peer, (long long)stream_id,
              (int)n.len, n.base, (int)(v.len > 200 ? 200 : v.len), v.base);
    switch (token) {
    case NGHTTP3_QPACK_TOKEN__STATUS:
        r->status = 0;
        if (v.len == 3 && v.base[0] >= '1' && v.base[0] <= '9' &&
            v.base[1] >= '0' && v.base[1] <= '9' && v.base[2] >= '0' &&
            v.base[2] <= '9')
            r->status = (v.base[0] - '0') * 100 + (v.base[1] - '0') * 10 +
                        (v.base[2] - '0');
        break;
    case NGHTTP3_QPACK_TOKEN__METHOD:
        rv = set_field(&r->method, &v);
        break;
    case NGHTTP3_QPACK_TOKEN__PROTOCOL:
        rv = set_field(&r->protocol, &v);
        break;
    case NGHTTP3_QPACK_TOKEN__SCHEME:
        rv = set_field(&r->scheme, &v);
        break;
    case NGHTTP3_QPACK_TOKEN__AUTHORITY:
        rv = set_field(&r->authority, &v);
        break;
    case NGHTTP3_QPACK_TOKEN__PATH:
        rv = set_field(&r->path, &v);
        break;
    case NGHTTP3_QPACK_TOKEN_ORIGIN:
        rv = set_field(&r->origin, &v);
        break;
    default:
        if (name_is(&n, "sec-webtransport-http3-draft02"))
            r->draft02 = v.len == 1 && v.base[0] == '1';
        else if (name_is(&n, "sec-webtransport-http3-draft"))
            r->draft02_resp = v.len == 7 && memcmp(v.base, "draft02", 7) == 0;
        else if (((struct quic_conn *)user_data)->ep->role == QUIC_SERVER) {
            if (name_is(&n, "wt-available-protocols"))
                rv = join_field(&r->proto[WT_PROTO_HDR_WT], &v);
            else if (name_is(&n, "webtransport-subprotocols-available"))
                rv = join_field(&r->proto[WT_PROTO_HDR_QUICHE], &v);
        } else if (name_is(&n, "wt-protocol")) {
            rv = join_field(&r->proto[WT_PROTO_HDR_WT], &v);
        } else if (name_is(&n, "webtransport-subprotocol")) {
            rv = join_field(&r->proto[WT_PROTO_HDR_QUICHE], &v);
        }
        break;
    }
    return rv == 0 ? 0 : NGHTTP3_ERR_CALLBACK_FAILURE;
}

static int cb_end_headers(nghttp3_conn *conn, int64_t stream_id, int fin,
                          void *user_data, void *stream_user_data)
{
    struct quic_conn *qc = user_data;
    struct h3_request *r = stream_user_data;

    (void)conn;
    if (!r)
        return 0;
    if (qc->ep->role == QUIC_CLIENT) {
        if (r->status >= 100 && r->status < 200)
            return 0; /* interim: the final response follows */
        return r->session ? wt_on_response(r->session, fin) : 0;
    }
    if (!r->method || strcmp(r->method, "CONNECT") != 0 || !r->protocol) {
        /* Plain HTTP/3 requests: this daemon serves WebTransport only. */
        log_debug("conn %llu: stream %lld: %s %s: not a WebTransport request",
                  (unsigned long long)qc->serial, (long long)stream_id,
                  r->method ? r->method : "-", r->path ? r->path : "-");
        r->refused = 1;
        wt_session_refused(qc, stream_id);
        return h3_respond(qc, stream_id, 404, NULL, 0, 0) == 0
                   ? 0
                   : NGHTTP3_ERR_CALLBACK_FAILURE;
    }
    (void)fin;
    /* draft-16 §7.1: not before the client's SETTINGS (they say which
     * draft it speaks); bounded by the QUIC limit on request streams */
    if (!qc->h3.settings_recv) {
        log_debug("conn %llu %s: stream %lld: CONNECT waits for the client's "
                  "SETTINGS", (unsigned long long)qc->serial, qc->peer,
                  (long long)stream_id);
        r->deferred = 1;
        return 0;
    }
    return wt_on_connect(qc, r) == 0 ? 0 : NGHTTP3_ERR_CALLBACK_FAILURE;
}

static int cb_end_stream(nghttp3_conn *conn, int64_t stream_id,
                         void *user_data, void *stream_user_data)
{
    struct h3_request *r = stream_user_data;

    (void)conn;
    (void)stream_id;
    (void)user_data;
    if (r && r->session)
        wt_on_connect_fin(r->session);
    return 0;
}

static int cb_stop_sending(nghttp3_conn *conn, int64_t stream_id,
                           uint64_t app_error_code, void *user_data,
                           void *stream_user_data)
{
    struct quic_conn *qc = user_data;

    (void)conn;
    (void)stream_user_data;
    ngtcp2_conn_shutdown_stream_read(qc->conn, 0, stream_id, app_error_code);
    return 0;
}

static int cb_reset_stream(nghttp3_conn *conn, int64_t stream_id,
                           uint64_t app_error_code, void *user_data,
                           void *stream_user_data)
{
    struct quic_conn *qc = user_data;

    (void)conn;
    (void)stream_user_data;
    /* nghttp3 rejects malformed requests (a CONNECT without :authority or
     * :path, bad pseudo-headers) this way, usually with H3_MESSAGE_ERROR. */
    log_debug("conn %llu %s: stream %lld: reset by HTTP/3 with 0x%llx",
              (unsigned long long)qc->serial, qc->peer, (long long)stream_id,
              (unsigned long long)app_error_code);
    ngtcp2_conn_shutdown_stream_write(qc->conn, 0, stream_id, app_error_code);
    return 0;
}

static const nghttp3_callbacks callbacks = {
    .acked_stream_data = cb_acked_stream_data,
    .stream_close = cb_stream_close,
    .recv_data = cb_recv_data,
    .deferred_consume = cb_deferred_consume,
    .begin_headers = cb_begin_headers,
    .recv_header = cb_recv_header,
    .end_headers = cb_end_headers,
    .stop_sending = cb_stop_sending,
    .end_stream = cb_end_stream,
    .reset_stream = cb_reset_stream,
};

/* ---- setup ---- */

size_t h3_own_settings(const struct config *cfg, int role,
                       struct wire_setting *s, size_t max)
{
    uint64_t data, bidi, uni;
    size_t n = 0;
    int d = role == QUIC_CLIENT ? cfg->client_draft : 0;

    (void)max; /* at most 13 below */
    config_wt_initial(cfg, &data, &bidi, &uni);
    /* The QPACK values must be the ones nghttp3's decoder is configured
     * with (h3_conn_init). */
    s[n++] = (struct wire_setting){WIRE_SETTING_QPACK_MAX_TABLE_CAPACITY,
                                   QPACK_MAX_DTABLE};
    s[n++] = (struct wire_setting){WIRE_SETTING_MAX_FIELD_SECTION_SIZE,
                                   MAX_FIELD_SECTION};
    s[n++] = (struct wire_setting){WIRE_SETTING_QPACK_BLOCKED_STREAMS,
                                   QPACK_BLOCKED};
    if (role == QUIC_SERVER)
        s[n++] = (struct wire_setting){WIRE_SETTING_ENABLE_CONNECT_PROTOCOL, 1};
    s[n++] = (struct wire_setting){WIRE_SETTING_H3_DATAGRAM, 1};
    if (d == 0 || d == 2)
        s[n++] = (struct wire_setting){WIRE_SETTING_H3_DATAGRAM_DRAFT04, 1};
    /*
     * A server announces every draft, so that each client picks the newest
     * it knows (wt-protocol.md): draft-02 (Chromium 156, Firefox 153),
     * draft-07, draft-13/14 and draft-15/16.  A client announces the one it
     * speaks (draft-14 §3.1, draft-16 §7.1), which is also how the server
     * tells draft-14 from draft-07: both send :protocol webtransport.
     */
    if (d == 0 || d == 2)
        s[n++] = (struct wire_setting){WIRE_SETTING_ENABLE_WEBTRANSPORT, 1};
    if (d == 0 || d == 7)
        s[n++] = (struct wire_setting){WIRE_SETTING_WT_MAX_SESSIONS_D07,
                                       cfg->max_sessions_per_connection};
    if (d == 0 || d == 14)
        /* a client that speaks draft-14 declares flow control through
         * the WT_INITIAL_* below, not through a count above 1 (§5.1) */
        s[n++] = (struct wire_setting){WIRE_SETTING_WT_MAX_SESSIONS_D13,
                                       d ? 1 : cfg->max_sessions_per_connection};
    if (d == 0 || d == 15)
        s[n++] = (struct wire_setting){WIRE_SETTING_WT_ENABLED, 1};
    /* Session flow control (§5.5): non-zero, so it is on with every peer
     * that declares it too; Safari refuses a server that sends
     * WT_MAX_SESSIONS > 1 without them (wt-protocol.md).  A draft-02 or
     * -07 client sends none (nor do Chromium and Firefox). */
    if (role == QUIC_SERVER || d == 14 || d == 15) {
        s[n++] = (struct wire_setting){WIRE_SETTING_WT_INITIAL_MAX_DATA, data};
        s[n++] = (struct wire_setting){WIRE_SETTING_WT_INITIAL_MAX_STREAMS_UNI,
                                       uni};
        s[n++] = (struct wire_setting){
            WIRE_SETTING_WT_INITIAL_MAX_STREAMS_BIDI, bidi};
    }
    return n;
}

int h3_peer_fc_intent(const struct quic_conn *qc, int draft14)
{
    uint64_t v;

    /* §5.1: any WT_INITIAL_* above 0; draft-14 also counts
     * WT_MAX_SESSIONS above 1 */
    if ((h3_peer_setting(qc, WIRE_SETTING_WT_INITIAL_MAX_DATA, &v) && v) ||
        (h3_peer_setting(qc, WIRE_SETTING_WT_INITIAL_MAX_STREAMS_UNI, &v) &&
         v) ||
        (h3_peer_setting(qc, WIRE_SETTING_WT_INITIAL_MAX_STREAMS_BIDI, &v) &&
         v))
        return 1;
    return draft14 &&
           h3_peer_setting(qc, WIRE_SETTING_WT_MAX_SESSIONS_D13, &v) && v > 1;
}

int h3_conn_init(struct quic_conn *qc)
{
    const struct config *cfg = qc->cfg;
    struct h3_conn *h = &qc->h3;
    nghttp3_settings settings;
    int64_t qenc, qdec;
    uint8_t frame[160];
    ssize_t n;
    /*
     * Every id a browser checks before it sends the CONNECT
     * (wt-protocol.md): draft-02 (Chromium 156, Firefox 153), draft-07,
     * draft-13/14 and draft-15.  The QPACK values must be the ones nghttp3's
     * decoder is configured with below.
     */
    struct wire_setting s[16];
    size_t ns;

    if (h->h3)
        return 0;
    ns = h3_own_settings(cfg, qc->ep->role, s, sizeof(s) / sizeof(s[0]));
    h->ctrl_id = h->qenc_id = h->qdec_id = -1;
    h->peer_ctrl_id = -1;
    h->quiet = 0;
    buf_init(&h->ctrl);
    LIST_INIT(&h->requests);
    nghttp3_settings_default(&settings);
    settings.qpack_max_dtable_capacity = QPACK_MAX_DTABLE;
    settings.qpack_encoder_max_dtable_capacity = QPACK_MAX_DTABLE;
    settings.qpack_blocked_streams = QPACK_BLOCKED;
    settings.max_field_section_size = MAX_FIELD_SECTION;
    settings.enable_connect_protocol = 1;
    settings.h3_datagram = 1;
    if (qc->ep->role == QUIC_CLIENT) {
        if (nghttp3_conn_client_new(&h->h3, &callbacks, &settings, NULL, qc) !=
            0)
            return -1;
    } else {
        if (nghttp3_conn_server_new(&h->h3, &callbacks, &settings, NULL, qc) !=
            0)
            return -1;
        nghttp3_conn_set_max_client_streams_bidi(
            h->h3, ngtcp2_conn_get_local_transport_params(qc->conn)
                       ->initial_max_streams_bidi);
    }

    /*
     * nghttp3 1.8 writes only the settings it knows and has no way to add
     * the WebTransport ones, so the control stream is ours: we open it,
     * write the stream type and SETTINGS, and never bind it to nghttp3
     * (nghttp3 works without a bound control stream; it only needs its
     * QPACK streams).  GOAWAY is written here too, for the same reason.
     */
    if (ngtcp2_conn_open_uni_stream(qc->conn, &h->ctrl_id, NULL) != 0 ||
        ngtcp2_conn_open_uni_stream(qc->conn, &qenc, NULL) != 0 ||
        ngtcp2_conn_open_uni_stream(qc->conn, &qdec, NULL) != 0)
        return -1;
    if (nghttp3_conn_bind_qpack_streams(h->h3, qenc, qdec) != 0)
        return -1;
    h->qenc_id = qenc;
    h->qdec_id = qdec;
    frame[0] = WIRE_H3_STREAM_CONTROL;
    n = wire_settings_encode(frame + 1, sizeof(frame) - 1, s, ns);
    if (n < 0 || buf_append(&h->ctrl, frame, (size_t)n + 1) < 0)
        return -1;
    return 0;
}

void h3_conn_free(struct quic_conn *qc)
{
    /* nghttp3_conn_del() calls no stream_close: what is open goes here.
     * wt_conn_free() has already detached every session. */
    while (!LIST_EMPTY(&qc->h3.requests))
        request_free(LIST_FIRST(&qc->h3.requests));
    if (qc->h3.h3)
        nghttp3_conn_del(qc->h3.h3);
    qc->h3.h3 = NULL;
    buf_free(&qc->h3.ctrl);
    free(qc->h3.tee);
    qc->h3.tee = NULL;
}

/* ---- stream events from quic.c ---- */

/*
 * RFC 9114 §6.2.1, RFC 9204 §4.2: the control and QPACK streams live as
 * long as the connection; closing, resetting or stopping one is the
 * connection error H3_CLOSED_CRITICAL_STREAM.  nghttp3 knows the QPACK
 * streams and the peer's control stream; our control stream is ours.
 */
static int critical_closed(struct quic_conn *qc, int64_t stream_id,
                           const char *how)
{
    log_debug("conn %llu %s: closed critical stream %lld (%s): "
              "H3_CLOSED_CRITICAL_STREAM",
              (unsigned long long)qc->serial, qc->peer, (long long)stream_id,
              how);
    ngtcp2_ccerr_set_application_error(
        &qc->last_error, WIRE_H3_CLOSED_CRITICAL_STREAM, NULL, 0);
    return -1;
}

static int is_critical(const struct quic_conn *qc, int64_t sid)
{
    return sid == qc->h3.ctrl_id || sid == qc->h3.qenc_id ||
           sid == qc->h3.qdec_id;
}

int h3_read_stream(struct quic_conn *qc, int64_t stream_id, const uint8_t *p,
                   size_t n, int fin)
{
    nghttp3_ssize r;

    if (stream_id == qc->h3.peer_ctrl_id && !qc->h3.settings_recv && n)
        settings_tee(qc, p, n);
    qc->h3.quiet = 0;
    r = nghttp3_conn_read_stream(qc->h3.h3, stream_id, p, n, fin);

    if (r == NGHTTP3_ERR_H3_CLOSED_CRITICAL_STREAM)
        return critical_closed(qc, stream_id, "ended by the peer");
    if (r < 0) {
        log_debug("conn %llu %s: nghttp3_conn_read_stream: %s",
                  (unsigned long long)qc->serial, qc->peer,
                  nghttp3_strerror((int)r));
        ngtcp2_ccerr_set_application_error(
            &qc->last_error, nghttp3_err_infer_quic_app_error_code((int)r),
            NULL, 0);
        return -1;
    }
    consume(qc, stream_id, (size_t)r);
    return 0;
}

int h3_acked(struct quic_conn *qc, int64_t stream_id, uint64_t n)
{
    if (stream_id == qc->h3.ctrl_id) {
        buf_ack(&qc->h3.ctrl, n);
        buf_release_idle(&qc->h3.ctrl);
        return 0;
    }
    if (!qc->h3.h3)
        return 0;
    qc->h3.quiet = 0;
    return nghttp3_conn_add_ack_offset(qc->h3.h3, stream_id, n) == 0 ? 0 : -1;
}

int h3_stream_close(struct quic_conn *qc, int64_t stream_id, uint64_t code)
{
    int rv;

    if (!qc->h3.h3)
        return 0;
    if (stream_id == qc->h3.ctrl_id)
        return critical_closed(qc, stream_id, "ours, reset");
    qc->h3.quiet = 0;
    rv = nghttp3_conn_close_stream(qc->h3.h3, stream_id, code);
    if (rv == 0 || rv == NGHTTP3_ERR_STREAM_NOT_FOUND)
        return 0;
    if (rv == NGHTTP3_ERR_H3_CLOSED_CRITICAL_STREAM)
        return critical_closed(qc, stream_id, "closed");
    ngtcp2_ccerr_set_application_error(
        &qc->last_error, nghttp3_err_infer_quic_app_error_code(rv), NULL, 0);
    return -1;
}

int h3_stream_reset(struct quic_conn *qc, int64_t stream_id, uint64_t code)
{
    struct wt_session *s;

    if (!qc->h3.h3)
        return 0;
    /* A reset CONNECT stream ends its session, aborted. */
    if ((s = wt_session_find(qc, stream_id)))
        wt_on_connect_reset(s, code);
    qc->h3.quiet = 0;
    return nghttp3_conn_shutdown_stream_read(qc->h3.h3, stream_id) == 0 ? 0
                                                                       : -1;
}

int h3_stream_stopped(struct quic_conn *qc, int64_t stream_id)
{
    struct wt_session *s;

    if (!qc->h3.h3)
        return 0;
    /* We stopped reading a CONNECT stream (nghttp3 refused what came on
     * it): its session ends. */
    if ((s = wt_session_find(qc, stream_id)))
        wt_on_connect_fin(s);
    qc->h3.quiet = 0;
    return nghttp3_conn_shutdown_stream_read(qc->h3.h3, stream_id) == 0 ? 0
                                                                       : -1;
}

int h3_unblock(struct quic_conn *qc, int64_t stream_id)
{
    if (stream_id == qc->h3.ctrl_id) {
        qc->h3.ctrl_blocked = 0;
        return 0;
    }
    if (!qc->h3.h3)
        return 0;
    qc->h3.quiet = 0;
    return nghttp3_conn_unblock_stream(qc->h3.h3, stream_id) == 0 ? 0 : -1;
}

void h3_set_max_client_streams_bidi(struct quic_conn *qc, uint64_t n)
{
    qc->h3.quiet = 0;
    if (qc->h3.h3 && qc->ep->role == QUIC_SERVER)
        nghttp3_conn_set_max_client_streams_bidi(qc->h3.h3, n);
}

/* ---- write loop ---- */

ngtcp2_ssize h3_writev(struct quic_conn *qc, int64_t *sid, int *fin,
                       ngtcp2_vec *vec, size_t nvec)
{
    struct h3_conn *h = &qc->h3;
    nghttp3_ssize n;

    *sid = -1;
    *fin = 0;
    if (buf_unsent(&h->ctrl) && !h->ctrl_blocked) {
        *sid = h->ctrl_id;
        /* ngtcp2_vec and struct iovec share their layout */
        return (ngtcp2_ssize)buf_peek(&h->ctrl, (struct iovec *)vec, nvec);
    }
    /* Asked again only after something was asked of nghttp3 since it
     * last had nothing: that answer costs a walk over its streams, on
     * every write of the connection (each packet of datagrams). */
    if (h->quiet)
        return 0;
    n = nghttp3_conn_writev_stream(h->h3, sid, fin, (nghttp3_vec *)vec, nvec);
    if (n == 0 && *sid < 0)
        h->quiet = 1;
    if (n < 0) {
        log_error("conn %llu %s: nghttp3_conn_writev_stream: %s",
                  (unsigned long long)qc->serial, qc->peer,
                  nghttp3_strerror((int)n));
        return -1;
    }
    return n;
}

void h3_written(struct quic_conn *qc, int64_t sid, size_t n)
{
    if (sid == qc->h3.ctrl_id)
        buf_mark_sent(&qc->h3.ctrl, n);
    else {
        qc->h3.quiet = 0;
        nghttp3_conn_add_write_offset(qc->h3.h3, sid, n);
    }
}

void h3_block(struct quic_conn *qc, int64_t sid)
{
    if (sid == qc->h3.ctrl_id)
        qc->h3.ctrl_blocked = 1;
    else {
        qc->h3.quiet = 0;
        nghttp3_conn_block_stream(qc->h3.h3, sid);
    }
}

int h3_shut_wr(struct quic_conn *qc, int64_t sid)
{
    if (is_critical(qc, sid))
        return critical_closed(qc, sid, "stopped by the peer");
    qc->h3.quiet = 0;
    nghttp3_conn_shutdown_stream_write(qc->h3.h3, sid);
    return 0;
}

/* ---- responses ---- */

static nghttp3_ssize read_capsules(nghttp3_conn *conn, int64_t stream_id,
                                   nghttp3_vec *vec, size_t veccnt,
                                   uint32_t *pflags, void *user_data,
                                   void *stream_user_data)
{
    struct h3_request *r = stream_user_data;

    (void)conn;
    (void)stream_id;
    (void)user_data;
    if (!r || !r->session) {
        *pflags |= NGHTTP3_DATA_FLAG_EOF;
        return 0;
    }
    return wt_capsules_read(r->session, (struct iovec *)vec, veccnt, pflags);
}

static nghttp3_nv nv(const char *name, const char *value)
{
    return (nghttp3_nv){(const uint8_t *)name, (const uint8_t *)value,
                        strlen(name), strlen(value), NGHTTP3_NV_FLAG_NONE};
}

int h3_respond(struct quic_conn *qc, int64_t stream_id, int status,
               const char *const *extra, size_t count, int body)
{
    nghttp3_nv nva[8];
    char st[4];
    size_t n = 0;
    nghttp3_data_reader dr = {.read_data = read_capsules};
    int rv;

    snprintf(st, sizeof(st), "%03d", status);
    nva[n++] = nv(":status", st);
    for (size_t i = 0; i < count && n < sizeof(nva) / sizeof(nva[0]); i++)
        nva[n++] = nv(extra[2 * i], extra[2 * i + 1]);
    qc->h3.quiet = 0;
    rv = nghttp3_conn_submit_response(qc->h3.h3, stream_id, nva, n,
                                      body ? &dr : NULL);
    if (rv != 0) {
        log_error("conn %llu %s: nghttp3_conn_submit_response: %s",
                  (unsigned long long)qc->serial, qc->peer,
                  nghttp3_strerror(rv));
        return -1;
    }
    /* No STOP_SENDING on a refused request: Chromium, seeing it before
     * the response, reports ERR_QUIC_PROTOCOL_ERROR instead of the status.
     * Whatever the client still sends is read and dropped. */
    return 0;
}

struct h3_request *h3_connect(struct quic_conn *qc, int64_t stream_id,
                              const char *protocol, const char *authority,
                              const char *path, const char *origin,
                              int draft02, const char *const *extra,
                              size_t count)
{
    nghttp3_data_reader dr = {.read_data = read_capsules};
    nghttp3_nv nva[12];
    size_t n = 0;
    struct h3_request *r = calloc(1, sizeof(*r));
    int rv;

    if (!r)
        return NULL;
    r->stream_id = stream_id;
    if (!(r->method = strdup("CONNECT")) || !(r->protocol = strdup(protocol)) ||
        !(r->authority = strdup(authority)) || !(r->path = strdup(path))) {
        LIST_INSERT_HEAD(&qc->h3.requests, r, link);
        request_free(r);
        return NULL;
    }
    LIST_INSERT_HEAD(&qc->h3.requests, r, link);
    nva[n++] = nv(":method", "CONNECT");
    nva[n++] = nv(":protocol", protocol);
    nva[n++] = nv(":scheme", "https");
    nva[n++] = nv(":authority", authority);
    nva[n++] = nv(":path", path);
    if (origin)
        nva[n++] = nv("origin", origin);
    if (draft02)
        nva[n++] = nv("sec-webtransport-http3-draft02", "1");
    for (size_t i = 0; i < count && n < sizeof(nva) / sizeof(nva[0]); i++)
        nva[n++] = nv(extra[2 * i], extra[2 * i + 1]);
    qc->h3.quiet = 0;
    rv = nghttp3_conn_submit_request(qc->h3.h3, stream_id, nva, n, &dr, r);
    if (rv != 0) {
        log_error("conn %llu %s: nghttp3_conn_submit_request: %s",
                  (unsigned long long)qc->serial, qc->peer,
                  nghttp3_strerror(rv));
        request_free(r);
        return NULL;
    }
    log_debug("conn %llu %s: stream %lld: CONNECT %s%s (:protocol %s)",
              (unsigned long long)qc->serial, qc->peer, (long long)stream_id,
              authority, path, protocol);
    quic_conn_want_write(qc);
    return r;
}

void h3_resume(struct quic_conn *qc, int64_t stream_id)
{
    qc->h3.quiet = 0;
    if (qc->h3.h3)
        nghttp3_conn_resume_stream(qc->h3.h3, stream_id);
    quic_conn_want_write(qc);
}

void h3_goaway(struct quic_conn *qc)
{
    struct h3_conn *h = &qc->h3;
    uint8_t frame[16];
    ssize_t n;

    if (!h->h3 || h->goaway_sent)
        return;
    /* RFC 9114 §5.2: requests on streams below this id may still finish;
     * none after it are processed. */
    n = wire_goaway_encode(frame, sizeof(frame),
                           (uint64_t)(h->max_client_bidi_id + 4));
    if (n > 0 && buf_append(&h->ctrl, frame, (size_t)n) == 0)
        h->goaway_sent = 1;
    quic_conn_want_write(qc);
}
