/* quic: see quic.h. */
#include "quic.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <ngtcp2/ngtcp2_crypto.h>

#include "log.h"
#include "tls.h"
#include "wire.h"

#define SCID_LEN 18
/* recvmmsg calls per readiness event: UDP_BATCH messages each, a fair
 * share before other sockets and timers get their turn */
#define MAX_READS 8
/* Short header (1 + 20-byte CID + 4-byte packet number), AEAD tag (16),
 * DATAGRAM frame type and length (1 + 4): what a datagram needs besides
 * its own bytes to fit a packet. */
#define DGRAM_OVERHEAD 46

struct quic_cid_entry {
    ngtcp2_cid cid;
    struct quic_conn *qc;
    struct quic_cid_entry *next;
};

static void conn_free(struct quic_conn *qc);
static void conn_write(struct quic_conn *qc);
static void conn_update_timer(struct quic_conn *qc);

uint64_t quic_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NGTCP2_SECONDS + (uint64_t)ts.tv_nsec;
}

static int fill_random(void *p, size_t n)
{
    uint8_t *d = p;

    while (n > 0) {
        ssize_t r = getrandom(d, n, 0);

        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        d += r;
        n -= (size_t)r;
    }
    return 0;
}

/* ---- connection ID table ---- */

static size_t cid_hash(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */

    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return (size_t)h;
}

static struct quic_cid_entry **cid_slot(struct quic_endpoint *ep,
                                        const uint8_t *p, size_t n)
{
    struct quic_cid_entry **e =
        &ep->cids[cid_hash(p, n) & (ep->ncid_buckets - 1)];

    for (; *e; e = &(*e)->next)
        if ((*e)->cid.datalen == n && memcmp((*e)->cid.data, p, n) == 0)
            break;
    return e;
}

static int cid_grow(struct quic_endpoint *ep)
{
    size_t nb = ep->ncid_buckets * 2;
    struct quic_cid_entry **nt = calloc(nb, sizeof(*nt));

    if (!nt)
        return -1;
    for (size_t i = 0; i < ep->ncid_buckets; i++) {
        struct quic_cid_entry *e = ep->cids[i], *next;

        for (; e; e = next) {
            size_t b = cid_hash(e->cid.data, e->cid.datalen) & (nb - 1);

            next = e->next;
            e->next = nt[b];
            nt[b] = e;
        }
    }
    free(ep->cids);
    ep->cids = nt;
    ep->ncid_buckets = nb;
    return 0;
}

static int cid_add(struct quic_endpoint *ep, const ngtcp2_cid *cid,
                   struct quic_conn *qc)
{
    struct quic_cid_entry **slot, *e;

    if (ep->ncids >= ep->ncid_buckets && cid_grow(ep) < 0)
        return -1;
    slot = cid_slot(ep, cid->data, cid->datalen);
    if (*slot) {
        (*slot)->qc = qc;
        return 0;
    }
    e = malloc(sizeof(*e));
    if (!e)
        return -1;
    e->cid = *cid;
    e->qc = qc;
    e->next = NULL;
    *slot = e;
    ep->ncids++;
    return 0;
}

static void cid_remove(struct quic_endpoint *ep, const ngtcp2_cid *cid)
{
    struct quic_cid_entry **slot = cid_slot(ep, cid->data, cid->datalen), *e;

    if (!(e = *slot))
        return;
    *slot = e->next;
    free(e);
    ep->ncids--;
}

static struct quic_conn *cid_find(struct quic_endpoint *ep, const uint8_t *p,
                                  size_t n)
{
    struct quic_cid_entry *e = *cid_slot(ep, p, n);

    return e ? e->qc : NULL;
}

/* ---- ngtcp2 callbacks ---- */

static ngtcp2_conn *get_conn(ngtcp2_crypto_conn_ref *ref)
{
    return ((struct quic_conn *)ref->user_data)->conn;
}

static void cb_rand(uint8_t *dest, size_t len, const ngtcp2_rand_ctx *ctx)
{
    (void)ctx;
    if (fill_random(dest, len) < 0)
        memset(dest, 0, len); /* getrandom cannot fail after boot */
}

static int cb_get_new_cid(ngtcp2_conn *conn, ngtcp2_cid *cid, uint8_t *token,
                          size_t cidlen, void *user_data)
{
    struct quic_conn *qc = user_data;

    (void)conn;
    if (fill_random(cid->data, cidlen) < 0)
        return NGTCP2_ERR_CALLBACK_FAILURE;
    cid->datalen = cidlen;
    if (ngtcp2_crypto_generate_stateless_reset_token(
            token, qc->ep->static_secret, sizeof(qc->ep->static_secret),
            cid) != 0)
        return NGTCP2_ERR_CALLBACK_FAILURE;
    if (cid_add(qc->ep, cid, qc) < 0)
        return NGTCP2_ERR_CALLBACK_FAILURE;
    return 0;
}

static int cb_remove_cid(ngtcp2_conn *conn, const ngtcp2_cid *cid,
                         void *user_data)
{
    struct quic_conn *qc = user_data;

    (void)conn;
    cid_remove(qc->ep, cid);
    return 0;
}

/* How a new client's address stands (address_check()). */
enum addr_check {
    ADDR_ANSWERED = -1, /* no connection: Retry or INVALID_TOKEN sent, or
                           dropped */
    ADDR_UNPROVEN = 0,  /* go ahead, anti-amplification limit applies */
    ADDR_RETRY = 1,     /* our Retry token */
    ADDR_NEW_TOKEN = 2, /* our NEW_TOKEN token */
};

/*
 * A token for the client's next connection (NEW_TOKEN): it proves the
 * address then, so that connection skips the Retry round trip and the
 * anti-amplification limit.  Bound to the client's IP address, valid for
 * NEW_TOKEN_TIMEOUT; losing it costs the client one Retry at most.
 */
#define NEW_TOKEN_TIMEOUT (3600 * NGTCP2_SECONDS)

static void send_new_token(struct quic_conn *qc)
{
    uint8_t token[NGTCP2_CRYPTO_MAX_REGULAR_TOKENLEN];
    ngtcp2_ssize n;

    n = ngtcp2_crypto_generate_regular_token(
        token, qc->ep->static_secret, sizeof(qc->ep->static_secret),
        (const ngtcp2_sockaddr *)&qc->remote.ss, qc->remote.len, quic_now());
    if (n > 0 && ngtcp2_conn_submit_new_token(qc->conn, token, (size_t)n) != 0)
        log_debug("conn %llu %s: no memory for NEW_TOKEN",
                  (unsigned long long)qc->serial, qc->peer);
}

static int cb_handshake_completed(ngtcp2_conn *conn, void *user_data)
{
    struct quic_conn *qc = user_data;
    char err[200];

    (void)conn;
    qc->state = QC_ACTIVE;
    if (qc->counted) {
        qc->counted = 0;
        qc->ep->nhandshakes--;
    }
    if (qc->ep->role == QUIC_SERVER)
        send_new_token(qc);
    log_debug("conn %llu %s: handshake completed",
              (unsigned long long)qc->serial, qc->peer);
    /* The TLS session is dropped after this callback (see
     * cb_recv_crypto_data): a third of an idle connection's memory. */
    qc->tls_release = 1;
    quic_conn_want_write(qc);
    if (qc->ep->role != QUIC_CLIENT)
        return 0;
    if (tls_session_verify(qc->ep->tls, qc->tls, qc->host, err, sizeof(err)) <
        0) {
        snprintf(qc->why, sizeof(qc->why), "TLS: %s", err);
        /* bad_certificate (RFC 8446 §6.2) */
        ngtcp2_ccerr_set_tls_alert(&qc->last_error, 42, NULL, 0);
        return NGTCP2_ERR_CALLBACK_FAILURE;
    }
    /* The client's control and QPACK streams need the server's stream
     * limits, known from here on. */
    return h3_conn_init(qc) == 0 ? 0 : NGTCP2_ERR_CALLBACK_FAILURE;
}

/* The server sends its SETTINGS in 0.5-RTT, as soon as 1-RTT keys exist. */
static int cb_recv_tx_key(ngtcp2_conn *conn, ngtcp2_encryption_level level,
                          void *user_data)
{
    (void)conn;
    if (level != NGTCP2_ENCRYPTION_LEVEL_1RTT)
        return 0;
    return h3_conn_init(user_data) == 0 ? 0 : NGTCP2_ERR_CALLBACK_FAILURE;
}

/*
 * Once the handshake is complete the TLS session has nothing left to do in
 * QUIC: keys are derived and key updates need only ngtcp2's crypto context.
 * What may still arrive is a post-handshake message (a server's
 * NewSessionTicket; we neither resume nor ask for client certificates), so
 * after the session is freed CRYPTO data is read and dropped.
 */
static int cb_recv_crypto_data(ngtcp2_conn *conn,
                               ngtcp2_encryption_level level, uint64_t offset,
                               const uint8_t *data, size_t datalen,
                               void *user_data)
{
    struct quic_conn *qc = user_data;

    if (!qc->tls) {
        log_debug("conn %llu %s: %zu bytes of post-handshake TLS dropped",
                  (unsigned long long)qc->serial, qc->peer, datalen);
        return 0;
    }
    return ngtcp2_crypto_recv_crypto_data_cb(conn, level, offset, data,
                                             datalen, user_data);
}

static void conn_release_tls(struct quic_conn *qc)
{
    qc->tls_release = 0;
    if (!qc->tls)
        return;
    ngtcp2_conn_set_tls_native_handle(qc->conn, NULL);
    tls_session_free(qc->tls);
    qc->tls = NULL;
}

static int cb_recv_stream_data(ngtcp2_conn *conn, uint32_t flags,
                               int64_t stream_id, uint64_t offset,
                               const uint8_t *data, size_t datalen,
                               void *user_data, void *stream_user_data)
{
    struct quic_conn *qc = user_data;
    int fin = (flags & NGTCP2_STREAM_DATA_FLAG_FIN) != 0;

    (void)conn;
    (void)offset;
    if (!qc->h3.h3)
        return 0;
    if (h3_is_stream(stream_user_data))
        return h3_read_stream(qc, stream_id, data, datalen, fin) == 0
                   ? 0
                   : NGTCP2_ERR_CALLBACK_FAILURE;
    return wt_on_stream_data(qc, stream_id, stream_user_data, data, datalen,
                             fin) == 0
               ? 0
               : NGTCP2_ERR_CALLBACK_FAILURE;
}

static int cb_acked_stream_data_offset(ngtcp2_conn *conn, int64_t stream_id,
                                       uint64_t offset, uint64_t datalen,
                                       void *user_data, void *stream_user_data)
{
    struct quic_conn *qc = user_data;

    (void)conn;
    (void)offset;
    if (wt_is_stream(stream_user_data)) {
        wt_on_acked(qc, stream_user_data, datalen);
        return 0;
    }
    return h3_acked(qc, stream_id, datalen) == 0 ? 0
                                                 : NGTCP2_ERR_CALLBACK_FAILURE;
}

static int cb_stream_close(ngtcp2_conn *conn, uint32_t flags,
                           int64_t stream_id, uint64_t app_error_code,
                           void *user_data, void *stream_user_data)
{
    struct quic_conn *qc = user_data;
    int rv = 0;

    if (!(flags & NGTCP2_STREAM_CLOSE_FLAG_APP_ERROR_CODE_SET))
        app_error_code = WIRE_H3_NO_ERROR;
    if (wt_is_stream(stream_user_data))
        wt_on_stream_close(qc, stream_user_data, app_error_code);
    else
        rv = h3_stream_close(qc, stream_id, app_error_code);
    /* ngtcp2 leaves MAX_STREAMS to us: a closed peer stream makes room. */
    if (!ngtcp2_conn_is_local_stream(conn, stream_id)) {
        if (ngtcp2_is_bidi_stream(stream_id))
            ngtcp2_conn_extend_max_streams_bidi(conn, 1);
        else
            ngtcp2_conn_extend_max_streams_uni(conn, 1);
    }
    return rv == 0 ? 0 : NGTCP2_ERR_CALLBACK_FAILURE;
}

static int cb_stream_reset(ngtcp2_conn *conn, int64_t stream_id,
                           uint64_t final_size, uint64_t app_error_code,
                           void *user_data, void *stream_user_data)
{
    struct quic_conn *qc = user_data;

    (void)conn;
    (void)final_size;
    if (wt_is_stream(stream_user_data)) {
        wt_on_stream_reset(qc, stream_user_data, app_error_code);
        return 0;
    }
    return h3_stream_reset(qc, stream_id) == 0 ? 0
                                               : NGTCP2_ERR_CALLBACK_FAILURE;
}

static int cb_stream_stop_sending(ngtcp2_conn *conn, int64_t stream_id,
                                  uint64_t app_error_code, void *user_data,
                                  void *stream_user_data)
{
    struct quic_conn *qc = user_data;

    (void)conn;
    (void)app_error_code;
    /* Despite its name this reports our own STOP_SENDING (ngtcp2 1.11 has no
     * callback for the peer's; see wt_stream_shut_wr).  WebTransport streams
     * need nothing more: whoever shut the read side has already cleaned up. */
    if (wt_is_stream(stream_user_data))
        return 0;
    return h3_stream_reset(qc, stream_id) == 0 ? 0
                                               : NGTCP2_ERR_CALLBACK_FAILURE;
}

static int cb_extend_max_stream_data(ngtcp2_conn *conn, int64_t stream_id,
                                     uint64_t max_data, void *user_data,
                                     void *stream_user_data)
{
    struct quic_conn *qc = user_data;

    (void)conn;
    (void)max_data;
    if (wt_is_stream(stream_user_data)) {
        wt_on_extend_max_stream_data(qc, stream_user_data);
        return 0;
    }
    return h3_unblock(qc, stream_id) == 0 ? 0 : NGTCP2_ERR_CALLBACK_FAILURE;
}

static int cb_extend_max_remote_streams_bidi(ngtcp2_conn *conn,
                                             uint64_t max_streams,
                                             void *user_data)
{
    struct quic_conn *qc = user_data;

    (void)conn;
    h3_set_max_client_streams_bidi(qc, max_streams);
    return 0;
}

static int cb_extend_max_local_streams(ngtcp2_conn *conn,
                                       uint64_t max_streams, void *user_data)
{
    (void)conn;
    (void)max_streams;
    wt_on_streams_available(user_data);
    return 0;
}

/* Client: a token for our next connection to this server (what browsers
 * do too); quic_connect() sends it. */
static int cb_recv_new_token(ngtcp2_conn *conn, const uint8_t *token,
                             size_t tokenlen, void *user_data)
{
    struct quic_conn *qc = user_data;
    struct quic_endpoint *ep = qc->ep;

    (void)conn;
    if (!ep->keep_tokens || tokenlen > sizeof(ep->token_buf))
        return 0;
    memcpy(ep->token_buf, token, tokenlen);
    ep->token = ep->token_buf;
    ep->tokenlen = tokenlen;
    log_debug("conn %llu %s: NEW_TOKEN of %zu bytes kept",
              (unsigned long long)qc->serial, qc->peer, tokenlen);
    return 0;
}

/* Client: the server wants our address validated first. */
static int cb_recv_retry(ngtcp2_conn *conn, const ngtcp2_pkt_hd *hd,
                         void *user_data)
{
    struct quic_conn *qc = user_data;

    log_debug("conn %llu %s: Retry: the server validates our address",
              (unsigned long long)qc->serial, qc->peer);
    return ngtcp2_crypto_recv_retry_cb(conn, hd, user_data);
}

/* The peer forgot the connection (restart, or our close went unheard). */
static int cb_recv_stateless_reset(ngtcp2_conn *conn,
                                   const ngtcp2_pkt_stateless_reset *sr,
                                   void *user_data)
{
    struct quic_conn *qc = user_data;

    (void)conn;
    (void)sr;
    snprintf(qc->why, sizeof(qc->why),
             "stateless reset: the peer no longer has this connection");
    return 0;
}

static int cb_recv_datagram(ngtcp2_conn *conn, uint32_t flags,
                            const uint8_t *data, size_t datalen,
                            void *user_data)
{
    (void)conn;
    (void)flags;
    wt_on_datagram(user_data, data, datalen);
    return 0;
}

static void callbacks_init(ngtcp2_callbacks *cb, enum quic_role role)
{
    static const ngtcp2_callbacks common = {
    .recv_crypto_data = cb_recv_crypto_data,
    .handshake_completed = cb_handshake_completed,
    .encrypt = ngtcp2_crypto_encrypt_cb,
    .decrypt = ngtcp2_crypto_decrypt_cb,
    .hp_mask = ngtcp2_crypto_hp_mask_cb,
    .recv_stream_data = cb_recv_stream_data,
    .acked_stream_data_offset = cb_acked_stream_data_offset,
    .stream_close = cb_stream_close,
    .rand = cb_rand,
    .get_new_connection_id = cb_get_new_cid,
    .remove_connection_id = cb_remove_cid,
    .update_key = ngtcp2_crypto_update_key_cb,
    .stream_reset = cb_stream_reset,
    .extend_max_remote_streams_bidi = cb_extend_max_remote_streams_bidi,
    .extend_max_local_streams_bidi = cb_extend_max_local_streams,
    .extend_max_local_streams_uni = cb_extend_max_local_streams,
    .extend_max_stream_data = cb_extend_max_stream_data,
    .delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb,
    .delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb,
    .get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb,
    .stream_stop_sending = cb_stream_stop_sending,
    .version_negotiation = ngtcp2_crypto_version_negotiation_cb,
    .recv_datagram = cb_recv_datagram,
    .recv_stateless_reset = cb_recv_stateless_reset,
    };

    *cb = common;
    if (role == QUIC_SERVER) {
        cb->recv_client_initial = ngtcp2_crypto_recv_client_initial_cb;
        cb->recv_tx_key = cb_recv_tx_key;
    } else {
        cb->client_initial = ngtcp2_crypto_client_initial_cb;
        cb->recv_retry = cb_recv_retry;
        cb->recv_new_token = cb_recv_new_token;
    }
}

/* ---- connection lifetime ---- */

static void path_of(struct quic_conn *qc, ngtcp2_path *path)
{
    path->local.addr = (struct sockaddr *)&qc->local.ss;
    path->local.addrlen = qc->local.len;
    path->remote.addr = (struct sockaddr *)&qc->remote.ss;
    path->remote.addrlen = qc->remote.len;
    path->user_data = qc->sock;
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents);

/* ngtcp2's own frame-level trace, for protocol debugging only:
 * WTRELAYD_NGTCP2_LOG=1 in the environment (very verbose). */
static void ngtcp2_trace(void *user_data, const char *fmt, ...)
{
    struct quic_conn *qc = user_data;
    char line[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "ngtcp2 conn %llu: %s\n", (unsigned long long)qc->serial,
            line);
}

/* What both roles share: the object, settings and transport parameters
 * from the config. */
static struct quic_conn *conn_alloc(struct quic_endpoint *ep,
                                    ngtcp2_settings *settings,
                                    ngtcp2_transport_params *params)
{
    const struct config *cfg = ep->cfg;
    struct quic_conn *qc = calloc(1, sizeof(*qc));

    if (!qc)
        return NULL;
    qc->ep = ep;
    qc->serial = ++ep->next_serial;
    qc->state = QC_HANDSHAKE;
    qc->own_sock.fd = -1;
    qc->scid.datalen = SCID_LEN;
    if (fill_random(qc->scid.data, SCID_LEN) < 0) {
        free(qc);
        return NULL;
    }
    qc->conn_ref.get_conn = get_conn;
    qc->conn_ref.user_data = qc;
    ngtcp2_ccerr_default(&qc->last_error);
    wt_conn_init(qc);
    ev_init(&qc->timer, timer_cb);
    qc->timer.data = qc;

    ngtcp2_settings_default(settings);
    settings->initial_ts = quic_now();
    settings->handshake_timeout =
        cfg->handshake_timeout_ms * NGTCP2_MILLISECONDS;
    /* Windows grow up to the configured buffers, never past them: flow
     * control is the memory limit (design.md). */
    settings->max_stream_window = cfg->max_buffer_bytes;
    settings->max_window = cfg->max_connection_buffer_bytes;
    if (getenv("WTRELAYD_NGTCP2_LOG"))
        settings->log_printf = ngtcp2_trace;

    ngtcp2_transport_params_default(params);
    params->initial_max_stream_data_bidi_remote = cfg->max_buffer_bytes;
    params->initial_max_stream_data_bidi_local = cfg->max_buffer_bytes;
    params->initial_max_stream_data_uni = cfg->max_buffer_bytes;
    params->initial_max_data = cfg->max_connection_buffer_bytes;
    /* One pool per connection, sized so that one session can reach its own
     * limit next to every session's CONNECT stream; per-session counts are
     * enforced in wt.c.  Uni gets 3 more for the peer's control and QPACK
     * streams. */
    params->initial_max_streams_bidi =
        cfg->max_streams_per_session + cfg->max_sessions_per_connection;
    params->initial_max_streams_uni = cfg->max_streams_per_session + 3;
    params->max_idle_timeout = cfg->idle_timeout_ms * NGTCP2_MILLISECONDS;
    /* Browsers close the connection when H3_DATAGRAM is on but QUIC
     * datagrams are not (wt-protocol.md). */
    params->max_datagram_frame_size = 65535;
    params->active_connection_id_limit = 7;
    return qc;
}

/* Registers a connection whose ngtcp2_conn and TLS session exist. */
static int conn_link(struct quic_conn *qc)
{
    struct quic_endpoint *ep = qc->ep;

    ngtcp2_conn_set_tls_native_handle(qc->conn, qc->tls);
    if (cid_add(ep, &qc->scid, qc) < 0 ||
        (qc->odcid.datalen && cid_add(ep, &qc->odcid, qc) < 0))
        return -1;
    LIST_INSERT_HEAD(&ep->conns, qc, link);
    ep->nconns++;
    if (ep->role == QUIC_SERVER) {
        qc->counted = 1;
        ep->nhandshakes++;
    }
    log_debug("conn %llu %s: new connection", (unsigned long long)qc->serial,
              qc->peer);
    return 0;
}

static void conn_unmake(struct quic_conn *qc)
{
    cid_remove(qc->ep, &qc->scid);
    if (qc->odcid.datalen)
        cid_remove(qc->ep, &qc->odcid);
    tls_session_free(qc->tls);
    if (qc->conn)
        ngtcp2_conn_del(qc->conn);
    udp_close(&qc->own_sock);
    free(qc->host);
    free(qc);
}

static struct quic_conn *conn_new(struct quic_endpoint *ep,
                                  struct udp_sock *sock,
                                  const struct udp_addr *local,
                                  const struct udp_addr *remote,
                                  const ngtcp2_pkt_hd *hd,
                                  const ngtcp2_cid *odcid,
                                  enum addr_check validated)
{
    ngtcp2_settings settings;
    ngtcp2_transport_params params;
    ngtcp2_callbacks cb;
    ngtcp2_path path;
    struct quic_conn *qc = conn_alloc(ep, &settings, &params);

    if (!qc)
        return NULL;
    qc->sock = sock;
    qc->local = *local;
    qc->remote = *remote;
    udp_addr_str((const struct sockaddr *)&remote->ss, qc->peer,
                 sizeof(qc->peer));
    /* the client's DCID until it learns ours (after a Retry: the SCID of
     * the Retry) */
    qc->odcid = hd->dcid;
    params.stateless_reset_token_present = 1;
    params.original_dcid = validated == ADDR_RETRY ? *odcid : hd->dcid;
    params.original_dcid_present = 1;
    if (validated == ADDR_RETRY) {
        params.retry_scid = hd->dcid;
        params.retry_scid_present = 1;
    }
    if (validated != ADDR_UNPROVEN) {
        /* the address is proven: no anti-amplification limit */
        settings.token = hd->token;
        settings.tokenlen = hd->tokenlen;
        settings.token_type = validated == ADDR_RETRY
                                  ? NGTCP2_TOKEN_TYPE_RETRY
                                  : NGTCP2_TOKEN_TYPE_NEW_TOKEN;
    }
    if (ngtcp2_crypto_generate_stateless_reset_token(
            params.stateless_reset_token, ep->static_secret,
            sizeof(ep->static_secret), &qc->scid) != 0)
        goto fail;

    path_of(qc, &path);
    callbacks_init(&cb, QUIC_SERVER);
    if (ngtcp2_conn_server_new(&qc->conn, &hd->scid, &qc->scid, &path,
                               hd->version, &cb, &settings, &params, NULL,
                               qc) != 0)
        goto fail;
    qc->tls = tls_session_new(ep->tls, &qc->conn_ref, NULL);
    if (!qc->tls || conn_link(qc) < 0)
        goto fail;
    return qc;

fail:
    conn_unmake(qc);
    return NULL;
}

/* RFC 9000 §20.1, as logs and wtclient show them */
static const char *const transport_errors[] = {
    [0x0] = "no error",
    [0x1] = "INTERNAL_ERROR",
    [0x2] = "connection refused",
    [0x3] = "FLOW_CONTROL_ERROR",
    [0x4] = "STREAM_LIMIT_ERROR",
    [0x5] = "STREAM_STATE_ERROR",
    [0x6] = "FINAL_SIZE_ERROR",
    [0x7] = "FRAME_ENCODING_ERROR",
    [0x8] = "TRANSPORT_PARAMETER_ERROR",
    [0x9] = "CONNECTION_ID_LIMIT_ERROR",
    [0xa] = "PROTOCOL_VIOLATION",
    [0xb] = "INVALID_TOKEN (address validation failed)",
    [0xc] = "APPLICATION_ERROR",
    [0xd] = "CRYPTO_BUFFER_EXCEEDED",
    [0xe] = "KEY_UPDATE_ERROR",
    [0xf] = "AEAD_LIMIT_REACHED",
    [0x10] = "NO_VIABLE_PATH",
};

static void ccerr_str(const ngtcp2_ccerr *e, char *buf, size_t len)
{
    int n;

    switch (e->type) {
    case NGTCP2_CCERR_TYPE_APPLICATION:
        n = snprintf(buf, len, "HTTP/3 error 0x%llx",
                     (unsigned long long)e->error_code);
        break;
    case NGTCP2_CCERR_TYPE_IDLE_CLOSE:
        n = snprintf(buf, len, "idle timeout");
        break;
    case NGTCP2_CCERR_TYPE_VERSION_NEGOTIATION:
        n = snprintf(buf, len, "no common QUIC version");
        break;
    default:
        if (e->error_code < sizeof(transport_errors) /
                                 sizeof(transport_errors[0]) &&
            transport_errors[e->error_code])
            n = snprintf(buf, len, "%s", transport_errors[e->error_code]);
        else if (e->error_code >= NGTCP2_CRYPTO_ERROR &&
                 e->error_code < NGTCP2_CRYPTO_ERROR + 256)
            n = snprintf(buf, len, "TLS alert %llu",
                         (unsigned long long)(e->error_code -
                                              NGTCP2_CRYPTO_ERROR));
        else
            n = snprintf(buf, len, "QUIC error 0x%llx",
                         (unsigned long long)e->error_code);
        break;
    }
    if (n > 0 && (size_t)n < len && e->reasonlen)
        snprintf(buf + n, len - (size_t)n, ": %.*s",
                 (int)(e->reasonlen > 200 ? 200 : e->reasonlen), e->reason);
}

/* Fills qc->why for ops->closed unless something more precise is there. */
static void conn_describe_close(struct quic_conn *qc)
{
    char e[240];

    if (qc->why[0])
        return;
    if (qc->state == QC_DRAINING) {
        ccerr_str(ngtcp2_conn_get_ccerr(qc->conn), e, sizeof(e));
        snprintf(qc->why, sizeof(qc->why), "closed by the peer: %s", e);
        return;
    }
    if (qc->last_error.type == NGTCP2_CCERR_TYPE_IDLE_CLOSE ||
        (qc->last_error.error_code != 0 &&
         !(qc->last_error.type == NGTCP2_CCERR_TYPE_APPLICATION &&
           qc->last_error.error_code == WIRE_H3_NO_ERROR))) {
        ccerr_str(&qc->last_error, e, sizeof(e));
        snprintf(qc->why, sizeof(qc->why), "%s", e);
    }
}

/* Unlinks and frees now: only from the loop's own callbacks, never from
 * inside ngtcp2/nghttp3 callbacks (those mark QC_DEAD instead). */
static void conn_free(struct quic_conn *qc)
{
    struct quic_endpoint *ep = qc->ep;
    ngtcp2_cid scids[16];
    size_t n;

    log_debug("conn %llu %s: freed", (unsigned long long)qc->serial,
              qc->peer);
    wt_conn_free(qc);
    if (qc->ops && qc->ops->closed) {
        conn_describe_close(qc);
        qc->ops->closed(qc, qc->why);
    }
    h3_conn_free(qc);
    ev_timer_stop(ep->loop, &qc->timer);
    if (qc->own_sock.fd >= 0)
        ev_io_stop(ep->loop, &qc->io);
    n = ngtcp2_conn_get_scid(qc->conn, NULL);
    if (n <= 16) {
        ngtcp2_conn_get_scid(qc->conn, scids);
        for (size_t i = 0; i < n; i++)
            cid_remove(ep, &scids[i]);
    }
    if (qc->dirty) {
        struct quic_conn **p = &ep->dirty;

        while (*p && *p != qc)
            p = &(*p)->dirty_next;
        if (*p)
            *p = qc->dirty_next;
    }
    LIST_REMOVE(qc, link);
    ep->nconns--;
    if (qc->counted)
        ep->nhandshakes--;
    free(qc->closebuf);
    conn_unmake(qc);
    if (ep->shutting_down && ep->nconns == 0)
        ev_break(ep->loop, EVBREAK_ALL);
}

static void closing_timer(struct quic_conn *qc)
{
    ev_tstamp t = (ev_tstamp)ngtcp2_conn_get_pto(qc->conn) / NGTCP2_SECONDS * 3;

    ev_timer_stop(qc->ep->loop, &qc->timer);
    ev_timer_set(&qc->timer, t, 0.);
    ev_timer_start(qc->ep->loop, &qc->timer);
}

static void send_closebuf(struct quic_conn *qc)
{
    if (qc->closelen)
        udp_send(qc->sock, &qc->local, &qc->remote, 0, qc->closebuf,
                 qc->closelen, 0);
}

/* Enters the closing period with the error in last_error. */
static void conn_close(struct quic_conn *qc)
{
    ngtcp2_path_storage ps;
    ngtcp2_pkt_info pi;
    ngtcp2_ssize n;

    if (qc->state == QC_CLOSING || qc->state == QC_DRAINING ||
        qc->state == QC_DEAD)
        return;
    wt_conn_free(qc); /* sessions see the close before the connection goes */
    if (qc->last_error.type == NGTCP2_CCERR_TYPE_IDLE_CLOSE ||
        ngtcp2_conn_in_draining_period(qc->conn)) {
        qc->state = qc->last_error.type == NGTCP2_CCERR_TYPE_IDLE_CLOSE
                        ? QC_DEAD
                        : QC_DRAINING;
        if (qc->state == QC_DRAINING)
            closing_timer(qc);
        return;
    }
    qc->state = QC_CLOSING;
    qc->closebuf = malloc(NGTCP2_MAX_UDP_PAYLOAD_SIZE);
    if (qc->closebuf) {
        ngtcp2_path_storage_zero(&ps);
        n = ngtcp2_conn_write_connection_close(
            qc->conn, &ps.path, &pi, qc->closebuf, NGTCP2_MAX_UDP_PAYLOAD_SIZE,
            &qc->last_error, quic_now());
        if (n > 0) {
            qc->closelen = (size_t)n;
            send_closebuf(qc);
        }
    }
    closing_timer(qc);
}

void quic_conn_close_app(struct quic_conn *qc, uint64_t code,
                         const char *reason)
{
    ngtcp2_ccerr_set_application_error(
        &qc->last_error, code, (const uint8_t *)reason, reason ? strlen(reason) : 0);
    conn_close(qc);
}

static void conn_fail_liberr(struct quic_conn *qc, int liberr)
{
    if (liberr == NGTCP2_ERR_CRYPTO)
        ngtcp2_ccerr_set_tls_alert(&qc->last_error,
                                   ngtcp2_conn_get_tls_alert(qc->conn), NULL,
                                   0);
    else if (qc->last_error.error_code == 0 &&
             qc->last_error.type == NGTCP2_CCERR_TYPE_TRANSPORT)
        ngtcp2_ccerr_set_liberr(&qc->last_error, liberr, NULL, 0);
    conn_close(qc);
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct quic_conn *qc = w->data;
    int rv;

    (void)loop;
    (void)revents;
    if (qc->state == QC_CLOSING || qc->state == QC_DRAINING) {
        conn_free(qc);
        return;
    }
    rv = ngtcp2_conn_handle_expiry(qc->conn, quic_now());
    if (rv != 0) {
        if (rv == NGTCP2_ERR_IDLE_CLOSE) {
            log_debug("conn %llu %s: idle timeout",
                      (unsigned long long)qc->serial, qc->peer);
            ngtcp2_ccerr_set_liberr(&qc->last_error, rv, NULL, 0);
        } else if (rv == NGTCP2_ERR_HANDSHAKE_TIMEOUT && !qc->why[0]) {
            snprintf(qc->why, sizeof(qc->why), "handshake timeout");
        }
        conn_fail_liberr(qc, rv);
    } else {
        conn_write(qc);
    }
    wt_conn_collect(qc);
    if (qc->state == QC_DEAD)
        conn_free(qc);
    else if (qc->state != QC_CLOSING && qc->state != QC_DRAINING)
        conn_update_timer(qc);
}

static void conn_update_timer(struct quic_conn *qc)
{
    ngtcp2_tstamp expiry = ngtcp2_conn_get_expiry(qc->conn), now = quic_now();
    ev_tstamp t = expiry <= now ? 0. : (ev_tstamp)(expiry - now) / NGTCP2_SECONDS;

    ev_timer_stop(qc->ep->loop, &qc->timer);
    ev_timer_set(&qc->timer, t, 0.);
    ev_timer_start(qc->ep->loop, &qc->timer);
}

void quic_conn_want_write(struct quic_conn *qc)
{
    if (qc->dirty)
        return;
    qc->dirty = 1;
    qc->dirty_next = qc->ep->dirty;
    qc->ep->dirty = qc;
}

/* Simulated loss (test and benchmark clients): true for a fraction
 * ep->loss of packets, from a seeded generator so runs repeat. */
static int ep_drops(struct quic_endpoint *ep)
{
    if (ep->loss <= 0)
        return 0;
    /* xorshift64 */
    ep->loss_state ^= ep->loss_state << 13;
    ep->loss_state ^= ep->loss_state >> 7;
    ep->loss_state ^= ep->loss_state << 17;
    return (double)(ep->loss_state >> 11) / 9007199254740992.0 < ep->loss;
}

void quic_endpoint_set_loss(struct quic_endpoint *ep, double p, uint64_t seed)
{
    ep->loss = p;
    ep->loss_state = seed ? seed : 0x9e3779b97f4a7c15ULL;
}

/* ---- the write loop ---- */

enum wsrc { SRC_NONE, SRC_H3, SRC_WT };

/*
 * Packets of one write pass are laid out back to back in txbuf and leave
 * in as few system calls as UDP GSO allows: a run of equal-sized packets,
 * the last possibly shorter, is one send.
 */
#define MAX_GSO_SEGS 64

struct txbatch {
    size_t off;  /* bytes of packets in txbuf */
    size_t seg;  /* their size (the first packet's) */
    size_t nseg;
    unsigned ecn; /* one ECN codepoint per send */
};

static int batch_flush(struct quic_conn *qc, struct txbatch *b)
{
    int rv = 0;

    if (b->off) {
        rv = udp_send(qc->sock, &qc->local, &qc->remote, b->ecn,
                      qc->ep->txbuf, b->off, b->nseg > 1 ? b->seg : 0);
        if (rv < 0)
            log_debug("conn %llu %s: sendmsg: %s",
                      (unsigned long long)qc->serial, qc->peer,
                      strerror(errno));
    }
    b->off = b->seg = b->nseg = 0;
    /* A full socket buffer is loss to QUIC: ngtcp2 retransmits. */
    return rv;
}

/* A packet of n bytes was just written at txbuf + b->off. */
static int batch_add(struct quic_conn *qc, struct txbatch *b, size_t n,
                     unsigned ecn, size_t maxpkt)
{
    uint8_t *tx = qc->ep->txbuf;

    if (b->nseg && (n > b->seg || ecn != b->ecn)) {
        /* larger than the run, or another ECN codepoint: the run leaves
         * first, this packet (just past it) starts the next */
        size_t at = b->off;

        if (batch_flush(qc, b) != 0)
            return -1;
        memmove(tx, tx + at, n);
    }
    if (!b->nseg) {
        b->seg = n;
        b->ecn = ecn;
    }
    b->off += n;
    b->nseg++;
    if (n < b->seg || b->nseg == MAX_GSO_SEGS ||
        sizeof(qc->ep->txbuf) - b->off < maxpkt)
        return batch_flush(qc, b);
    return 0;
}

static void conn_write(struct quic_conn *qc)
{
    ngtcp2_conn *conn = qc->conn;
    uint8_t *out;
    struct txbatch batch = {0, 0, 0, 0};
    size_t maxpkt = ngtcp2_conn_get_max_tx_udp_payload_size(conn);
    size_t quantum = ngtcp2_conn_get_send_quantum(conn);
    size_t npkts = 0, maxpkts = quantum / maxpkt ? quantum / maxpkt : 1;
    ngtcp2_tstamp ts = quic_now();
    ngtcp2_path_storage ps;
    ngtcp2_pkt_info pi;

    if (qc->state == QC_CLOSING || qc->state == QC_DRAINING ||
        qc->state == QC_DEAD)
        return;
    if (maxpkt > sizeof(qc->ep->txbuf))
        maxpkt = sizeof(qc->ep->txbuf);
    ngtcp2_path_storage_zero(&ps);

    for (;;) {
        ngtcp2_vec vec[16];
        size_t nvec = 0, total = 0;
        int64_t sid = -1;
        int fin = 0, accepted = 0;
        enum wsrc src = SRC_NONE;
        struct wt_stream *wst = NULL;
        ngtcp2_ssize nwrite, ndatalen = -1;

        out = qc->ep->txbuf + batch.off;

        if (qc->h3.h3 && ngtcp2_conn_get_max_data_left(conn) > 0) {
            ngtcp2_ssize r = h3_writev(qc, &sid, &fin, vec, 16);

            if (r < 0) {
                quic_conn_close_app(qc, WIRE_H3_INTERNAL_ERROR, NULL);
                return;
            }
            if (sid >= 0) {
                src = SRC_H3;
                nvec = (size_t)r;
            } else if ((wst = wt_next_stream(qc))) {
                src = SRC_WT;
                sid = wt_stream_id(wst);
                nvec = wt_stream_peek(wst, vec, 16, &fin);
            }
        }

        if (src == SRC_NONE && wt_datagram_pending(qc)) {
            ngtcp2_vec dv[2];
            size_t ndv = wt_datagram_peek(qc, dv);

            /* ngtcp2 answers 0 (not an error) for a datagram that cannot
             * fit a packet on this path; left queued it would block the
             * queue, and the ACKs behind it, for good. */
            if (dv[0].len + dv[1].len + DGRAM_OVERHEAD >
                ngtcp2_conn_get_path_max_tx_udp_payload_size(conn)) {
                wt_datagram_pop(qc, 0);
                continue;
            }

            nwrite = ngtcp2_conn_writev_datagram(
                conn, &ps.path, &pi, out, maxpkt, &accepted,
                NGTCP2_WRITE_DATAGRAM_FLAG_MORE, 0, dv, ndv, ts);
            if (nwrite == NGTCP2_ERR_WRITE_MORE) {
                wt_datagram_pop(qc, 1);
                continue;
            }
            if (nwrite < 0) {
                if (nwrite == NGTCP2_ERR_INVALID_ARGUMENT) {
                    /* larger than the peer takes: drop it, counted */
                    wt_datagram_pop(qc, 0);
                    continue;
                }
                conn_fail_liberr(qc, (int)nwrite);
                return;
            }
            if (accepted)
                wt_datagram_pop(qc, 1);
            if (nwrite == 0)
                break;
            goto send;
        }

        for (size_t i = 0; i < nvec; i++)
            total += vec[i].len;
        nwrite = ngtcp2_conn_writev_stream(
            conn, &ps.path, &pi, out, maxpkt, &ndatalen,
            NGTCP2_WRITE_STREAM_FLAG_MORE |
                (fin ? NGTCP2_WRITE_STREAM_FLAG_FIN : 0),
            sid, vec, nvec, ts);
        if (nwrite < 0) {
            switch (nwrite) {
            case NGTCP2_ERR_STREAM_DATA_BLOCKED:
                if (src == SRC_H3)
                    h3_block(qc, sid);
                else
                    wt_stream_blocked(wst);
                continue;
            case NGTCP2_ERR_STREAM_SHUT_WR:
                if (src == SRC_H3)
                    h3_shut_wr(qc, sid);
                else
                    wt_stream_shut_wr(wst);
                continue;
            case NGTCP2_ERR_WRITE_MORE:
                if (src == SRC_H3)
                    h3_written(qc, sid, (size_t)ndatalen);
                else
                    wt_stream_sent(wst, (size_t)ndatalen,
                                   fin && (size_t)ndatalen == total);
                continue;
            }
            conn_fail_liberr(qc, (int)nwrite);
            return;
        }
        if (ndatalen >= 0) {
            if (src == SRC_H3)
                h3_written(qc, sid, (size_t)ndatalen);
            else if (src == SRC_WT)
                wt_stream_sent(wst, (size_t)ndatalen,
                               fin && (size_t)ndatalen == total);
        }
        if (nwrite == 0)
            break;
    send:
        if (ep_drops(qc->ep)) {
            npkts++; /* "lost": the next packet overwrites it */
            continue;
        }
        if (batch_add(qc, &batch, (size_t)nwrite, pi.ecn, maxpkt) != 0)
            break;
        if (++npkts >= maxpkts)
            break; /* pacing: the timer brings the next burst */
    }
    batch_flush(qc, &batch);
    ngtcp2_conn_update_pkt_tx_time(conn, ts);
}

/* ---- reading ---- */

static void send_version_negotiation(struct quic_endpoint *ep,
                                     struct udp_sock *s,
                                     const struct udp_addr *local,
                                     const struct udp_addr *remote,
                                     const ngtcp2_version_cid *vc)
{
    uint8_t out[256], rnd;
    uint32_t sv[] = {NGTCP2_PROTO_VER_V1, NGTCP2_PROTO_VER_V2};
    ngtcp2_ssize n;

    cb_rand(&rnd, 1, NULL);
    n = ngtcp2_pkt_write_version_negotiation(out, sizeof(out), rnd, vc->scid,
                                             vc->scidlen, vc->dcid,
                                             vc->dcidlen, sv, 2);
    if (n > 0)
        udp_send(s, local, remote, 0, out, (size_t)n, 0);
    (void)ep;
}

/* A CONNECTION_CLOSE with `code` answering an Initial, without making a
 * connection: CONNECTION_REFUSED (over max_connections, shutting down) or
 * INVALID_TOKEN. */
static void send_initial_close(struct udp_sock *s,
                               const struct udp_addr *local,
                               const struct udp_addr *remote,
                               const ngtcp2_pkt_hd *hd, uint64_t code)
{
    uint8_t out[NGTCP2_MAX_UDP_PAYLOAD_SIZE];
    ngtcp2_ssize n;

    /* The client's own DCID keys the Initial packet: the only keys it can
     * decrypt with before it has heard from us. */
    n = ngtcp2_crypto_write_connection_close(out, sizeof(out), hd->version,
                                             &hd->scid, &hd->dcid, code, NULL,
                                             0);
    if (n > 0)
        udp_send(s, local, remote, 0, out, (size_t)n, 0);
}

/*
 * Address validation (RFC 9000 §8.1.2).  Until a client has proved that it
 * receives at the address it sends from, a spoofed Initial costs us a
 * connection's state and a TLS handshake; a Retry costs the client one
 * round trip and us nothing but this stateless token.  `retry = auto`
 * (the default) spends that round trip only while retry_handshakes or more
 * handshakes are in progress, which a flood of spoofed Initials causes and
 * normal load does not.
 */
#define RETRY_TOKEN_TIMEOUT (10 * NGTCP2_SECONDS)

static void send_retry(struct quic_endpoint *ep, struct udp_sock *s,
                       const struct udp_addr *local,
                       const struct udp_addr *remote, const ngtcp2_pkt_hd *hd,
                       const char *peer)
{
    uint8_t token[NGTCP2_CRYPTO_MAX_RETRY_TOKENLEN2];
    uint8_t out[NGTCP2_MAX_UDP_PAYLOAD_SIZE];
    ngtcp2_ssize tokenlen, n;
    ngtcp2_cid scid;

    scid.datalen = SCID_LEN;
    if (fill_random(scid.data, scid.datalen) < 0)
        return;
    tokenlen = ngtcp2_crypto_generate_retry_token2(
        token, ep->static_secret, sizeof(ep->static_secret), hd->version,
        (const ngtcp2_sockaddr *)&remote->ss, remote->len, &scid, &hd->dcid,
        quic_now());
    if (tokenlen < 0)
        return;
    n = ngtcp2_crypto_write_retry(out, sizeof(out), hd->version, &hd->scid,
                                  &scid, &hd->dcid, token, (size_t)tokenlen);
    if (n <= 0)
        return;
    log_debug("retry sent to %s (%zu handshakes in progress)", peer,
              ep->nhandshakes);
    udp_send(s, local, remote, 0, out, (size_t)n, 0);
}

/*
 * What a new client's Initial needs before it gets a connection (see
 * enum addr_check; on ADDR_RETRY *odcid is the DCID of its first Initial).
 * A Retry token is honoured in every mode: the client has already accepted
 * our Retry and checks that the handshake says so.
 */
static enum addr_check address_check(struct quic_endpoint *ep,
                                     struct udp_sock *s,
                                     const struct udp_addr *local,
                                     const struct udp_addr *remote,
                                     const ngtcp2_pkt_hd *hd,
                                     ngtcp2_cid *odcid)
{
    const struct config *cfg = ep->cfg;
    char a[80];
    /* for the debug lines only: not formatted otherwise */
    const char *peer =
        log_level >= LOG_LVL_DEBUG
            ? udp_addr_str((const struct sockaddr *)&remote->ss, a, sizeof(a))
            : "";
    int rv;

    if (hd->tokenlen && hd->token[0] == NGTCP2_CRYPTO_TOKEN_MAGIC_REGULAR) {
        if (ngtcp2_crypto_verify_regular_token(
                hd->token, hd->tokenlen, ep->static_secret,
                sizeof(ep->static_secret),
                (const ngtcp2_sockaddr *)&remote->ss, remote->len,
                NEW_TOKEN_TIMEOUT, quic_now()) == 0) {
            log_debug("%s: address validated by a NEW_TOKEN token", peer);
            return ADDR_NEW_TOKEN;
        }
        /* expired, another address, not ours: as if there were none
         * (RFC 9000 §8.1.3: never a reason to close) */
        log_debug("%s: NEW_TOKEN token not valid here, ignored", peer);
    } else if (hd->tokenlen &&
               hd->token[0] == NGTCP2_CRYPTO_TOKEN_MAGIC_RETRY2) {
        rv = ngtcp2_crypto_verify_retry_token2(
            odcid, hd->token, hd->tokenlen, ep->static_secret,
            sizeof(ep->static_secret), hd->version,
            (const ngtcp2_sockaddr *)&remote->ss, remote->len, &hd->dcid,
            RETRY_TOKEN_TIMEOUT, quic_now());
        if (rv == 0)
            return ADDR_RETRY;
        if (rv == NGTCP2_CRYPTO_ERR_VERIFY_TOKEN) {
            /* ours, but expired or for another address: the client cannot
             * take a second Retry, so it is told (RFC 9000 §8.1.2) */
            log_debug("%s: retry token expired or not for this address",
                      peer);
            send_initial_close(s, local, remote, hd, NGTCP2_INVALID_TOKEN);
            return ADDR_ANSWERED;
        }
        /* unreadable: as if there were none */
        log_debug("%s: unreadable retry token ignored", peer);
    }
    if (cfg->retry == CONFIG_RETRY_ON ||
        (cfg->retry == CONFIG_RETRY_AUTO &&
         ep->nhandshakes >= cfg->retry_handshakes)) {
        if (hd->type == NGTCP2_PKT_INITIAL)
            send_retry(ep, s, local, remote, hd, peer);
        return ADDR_ANSWERED; /* 0-RTT before the Initial: dropped */
    }
    return ADDR_UNPROVEN;
}

/*
 * A short-header packet for a connection this process does not have: the
 * daemon was restarted, or the connection is gone and the peer missed the
 * close.  A stateless reset (RFC 9000 §10.3) tells the peer now rather than
 * after its idle timeout; the token matches the one we handed out because
 * static_secret survives restarts (tls_ctx_secret).  Each reset is smaller
 * than the packet that caused it, so two endpoints cannot keep resetting
 * each other, and at most RESETS_PER_S leave per second, so a flood of
 * unknown packets costs bounded work and sends bounded bytes.
 */
#define RESETS_PER_S 1000
/* ngtcp2_pkt_write_stateless_reset() writes randlen + token bytes (the
 * first byte is one of the random ones).  The smallest packet a peer can
 * send us is 1 + our CID + 4 (packet number) + 16 (sample): 39 bytes, and
 * the reset must be one byte shorter than a trigger of up to 43 bytes;
 * larger ones get 42 bytes, the size of a short packet with a 20-byte
 * CID and a minimal payload, as RFC 9000 §10.3 suggests. */
#define RESET_MIN_TRIGGER (SCID_LEN + 21)
#define RESET_MAX_RANDLEN (NGTCP2_MAX_CIDLEN + 22 - NGTCP2_STATELESS_RESET_TOKENLEN)

static void send_stateless_reset(struct quic_endpoint *ep, struct udp_sock *s,
                                 const struct udp_addr *local,
                                 const struct udp_addr *remote,
                                 const uint8_t *dcid, size_t dcidlen,
                                 size_t pktlen)
{
    uint8_t token[NGTCP2_STATELESS_RESET_TOKENLEN], rnd[RESET_MAX_RANDLEN];
    uint8_t out[RESET_MAX_RANDLEN + NGTCP2_STATELESS_RESET_TOKENLEN];
    size_t randlen = RESET_MAX_RANDLEN;
    double now = ev_now(ep->loop);
    ngtcp2_ssize n;
    ngtcp2_cid cid;

    if (pktlen < RESET_MIN_TRIGGER || dcidlen != SCID_LEN)
        return;
    if (now - ep->reset_window >= 1.0) {
        ep->reset_window = now;
        ep->resets = 0;
    }
    if (ep->resets >= RESETS_PER_S)
        return;
    if (pktlen - 1 < RESET_MAX_RANDLEN + NGTCP2_STATELESS_RESET_TOKENLEN)
        randlen = pktlen - 1 - NGTCP2_STATELESS_RESET_TOKENLEN;
    ngtcp2_cid_init(&cid, dcid, dcidlen);
    if (ngtcp2_crypto_generate_stateless_reset_token(
            token, ep->static_secret, sizeof(ep->static_secret), &cid) != 0 ||
        fill_random(rnd, randlen) < 0)
        return;
    n = ngtcp2_pkt_write_stateless_reset(out, sizeof(out), token, rnd,
                                         randlen);
    if (n <= 0)
        return;
    ep->resets++;
    if (log_level >= LOG_LVL_DEBUG) {
        char a[80];

        log_debug("stateless reset to %s: no connection for its %zu-byte "
                  "packet",
                  udp_addr_str((const struct sockaddr *)&remote->ss, a,
                               sizeof(a)),
                  pktlen);
    }
    udp_send(s, local, remote, 0, out, (size_t)n, 0);
}

/* One packet for a known connection. */
static void conn_input(struct quic_conn *qc, struct udp_sock *s,
                       const struct udp_addr *local,
                       const struct udp_addr *remote, unsigned ecn,
                       const uint8_t *p, size_t n)
{
    ngtcp2_pkt_info pi = {.ecn = (uint8_t)ecn};
    ngtcp2_path path;
    int rv;

    if (ep_drops(qc->ep))
        return;
    switch (qc->state) {
    case QC_CLOSING:
        send_closebuf(qc);
        return;
    case QC_DRAINING:
    case QC_DEAD:
        return;
    default:
        break;
    }
    /* The path as the client sees it may change (NAT rebinding). */
    qc->local = *local;
    qc->remote = *remote;
    qc->sock = s;
    path_of(qc, &path);
    rv = ngtcp2_conn_read_pkt(qc->conn, &path, &pi, p, n, quic_now());
    if (rv != 0) {
        log_debug("conn %llu %s: read_pkt: %s", (unsigned long long)qc->serial,
                  qc->peer, ngtcp2_strerror(rv));
        if (rv == NGTCP2_ERR_DRAINING) {
            wt_conn_free(qc);
            qc->state = QC_DRAINING;
            closing_timer(qc);
        } else if (rv == NGTCP2_ERR_DROP_CONN) {
            wt_conn_free(qc);
            qc->state = QC_DEAD;
        } else {
            if (!qc->why[0] && rv != NGTCP2_ERR_CALLBACK_FAILURE)
                snprintf(qc->why, sizeof(qc->why), "%s", ngtcp2_strerror(rv));
            conn_fail_liberr(qc, rv);
        }
    }
    quic_conn_want_write(qc);
}

static void read_pkt(struct quic_endpoint *ep, struct udp_sock *s,
                     const struct udp_addr *local,
                     const struct udp_addr *remote, unsigned ecn,
                     const uint8_t *p, size_t n)
{
    ngtcp2_version_cid vc;
    struct quic_conn *qc;
    int rv;

    rv = ngtcp2_pkt_decode_version_cid(&vc, p, n, SCID_LEN);
    if (rv == NGTCP2_ERR_VERSION_NEGOTIATION) {
        send_version_negotiation(ep, s, local, remote, &vc);
        return;
    }
    if (rv != 0)
        return; /* not QUIC, or garbage: silently dropped */

    qc = cid_find(ep, vc.dcid, vc.dcidlen);
    if (!qc && ep->role == QUIC_SERVER) {
        ngtcp2_pkt_hd hd;
        ngtcp2_cid odcid;
        enum addr_check check;

        if (ngtcp2_accept(&hd, p, n) != 0) {
            /* not a valid Initial: no state is created */
            if (!(p[0] & 0x80))
                send_stateless_reset(ep, s, local, remote, vc.dcid,
                                     vc.dcidlen, n);
            return;
        }
        if (ep->shutting_down || ep->nconns >= ep->cfg->max_connections) {
            log_debug("refusing a connection: %s",
                      ep->shutting_down ? "shutting down"
                                         : "max_connections reached");
            send_initial_close(s, local, remote, &hd,
                               NGTCP2_CONNECTION_REFUSED);
            return;
        }
        check = address_check(ep, s, local, remote, &hd, &odcid);
        if (check == ADDR_ANSWERED)
            return;
        qc = conn_new(ep, s, local, remote, &hd, &odcid, check);
    }
    if (!qc)
        return;

    conn_input(qc, s, local, remote, ecn, p, n);
}

static void rx_init(struct quic_endpoint *ep)
{
    for (size_t i = 0; i < UDP_BATCH; i++) {
        ep->rx[i].buf = ep->rxbuf[i];
        ep->rx[i].cap = sizeof(ep->rxbuf[i]);
    }
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct quic_endpoint *ep = w->data;
    struct udp_sock *s = &ep->socks[w - ep->io];

    (void)loop;
    (void)revents;
    for (int i = 0; i < MAX_READS; i++) {
        int got = udp_recv_batch(s, ep->rx, UDP_BATCH);

        for (int k = 0; k < got; k++) {
            const struct udp_msg *m = &ep->rx[k];

            /* GRO: several packets of one sender in one message */
            for (size_t off = 0; off < m->len; off += m->seg)
                read_pkt(ep, s, &m->local, &m->remote, m->ecn, m->buf + off,
                         m->len - off < m->seg ? m->len - off : m->seg);
        }
        if (got < UDP_BATCH)
            break;
    }
}

/* Once per loop turn, before sleeping: write every connection that has
 * something to say, then collect what was closed meanwhile. */
static void prepare_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    struct quic_endpoint *ep = w->data;

    (void)loop;
    (void)revents;
    while (ep->dirty) {
        struct quic_conn *qc = ep->dirty;

        ep->dirty = qc->dirty_next;
        qc->dirty = 0;
        /* both done here, outside ngtcp2's and nghttp3's callbacks */
        if (qc->tls_release)
            conn_release_tls(qc);
        if (qc->ready == 1 && qc->state == QC_ACTIVE) {
            qc->ready = 2;
            if (qc->ops && qc->ops->ready)
                qc->ops->ready(qc);
        }
        conn_write(qc);
        wt_conn_collect(qc);
        if (qc->state == QC_DEAD)
            conn_free(qc);
        else if (qc->state != QC_CLOSING && qc->state != QC_DRAINING)
            conn_update_timer(qc);
    }
}

int quic_server_init(struct quic_endpoint *ep, struct ev_loop *loop,
                     const struct config *cfg, struct tls_ctx *tls, char *err,
                     size_t errlen)
{
    memset(ep, 0, sizeof(*ep));
    LIST_INIT(&ep->conns);
    ep->loop = loop;
    rx_init(ep);
    ep->cfg = cfg;
    ep->tls = tls;
    ep->ncid_buckets = 256;
    ep->cids = calloc(ep->ncid_buckets, sizeof(*ep->cids));
    if (!ep->cids) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    memcpy(ep->static_secret, tls_ctx_secret(tls), sizeof(ep->static_secret));
    for (size_t i = 0; i < cfg->nlisten; i++) {
        const struct config_listen *l = &cfg->listen[i];
        char a[80];

        if (udp_open(&ep->socks[i], (const struct sockaddr *)&l->addr,
                     l->addrlen, err, errlen) < 0)
            goto fail;
        ep->nsocks++;
        if (cfg->socket_buffer_bytes &&
            (size_t)udp_set_buffers(&ep->socks[i], cfg->socket_buffer_bytes) <
                cfg->socket_buffer_bytes)
            log_warn("udp %s: receive buffer capped by net.core.rmem_max",
                     udp_addr_str((struct sockaddr *)&ep->socks[i].bound.ss, a,
                                  sizeof(a)));
        ev_io_init(&ep->io[i], io_cb, ep->socks[i].fd, EV_READ);
        ep->io[i].data = ep;
        ev_io_start(loop, &ep->io[i]);
        log_info("listening on udp %s",
                 udp_addr_str((struct sockaddr *)&ep->socks[i].bound.ss, a,
                              sizeof(a)));
    }
    ev_prepare_init(&ep->prepare, prepare_cb);
    ep->prepare.data = ep;
    ev_prepare_start(loop, &ep->prepare);
    return 0;

fail:
    quic_endpoint_free(ep);
    return -1;
}

void quic_server_close_all(struct quic_endpoint *ep)
{
    struct quic_conn *qc, *next;

    for (qc = LIST_FIRST(&ep->conns); qc; qc = next) {
        next = LIST_NEXT(qc, link);
        if (qc->state == QC_HANDSHAKE || qc->state == QC_ACTIVE) {
            conn_write(qc); /* flush CLOSE capsules already queued */
            quic_conn_close_app(qc, WIRE_H3_NO_ERROR, "server shutting down");
        }
    }
}

void quic_server_shutdown(struct quic_endpoint *ep)
{
    struct quic_conn *qc;

    ep->shutting_down = 1;
    LIST_FOREACH(qc, &ep->conns, link) {
        if (qc->state != QC_ACTIVE && qc->state != QC_HANDSHAKE)
            continue;
        h3_goaway(qc);
        wt_conn_drain(qc);
        quic_conn_want_write(qc);
    }
    if (ep->nconns == 0)
        ev_break(ep->loop, EVBREAK_ALL);
}

void quic_endpoint_free(struct quic_endpoint *ep)
{
    while (!LIST_EMPTY(&ep->conns))
        conn_free(LIST_FIRST(&ep->conns));
    for (size_t i = 0; i < ep->nsocks; i++) {
        ev_io_stop(ep->loop, &ep->io[i]);
        udp_close(&ep->socks[i]);
    }
    ep->nsocks = 0;
    if (ep->loop)
        ev_prepare_stop(ep->loop, &ep->prepare);
    if (ep->cids) {
        for (size_t i = 0; i < ep->ncid_buckets; i++) {
            struct quic_cid_entry *e = ep->cids[i], *next;

            for (; e; e = next) {
                next = e->next;
                free(e);
            }
        }
        free(ep->cids);
        ep->cids = NULL;
    }
    wt_dgram_pool_free();
}

/* ---- client role ---- */

static void client_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct quic_conn *qc = w->data;
    struct quic_endpoint *ep = qc->ep;

    (void)loop;
    (void)revents;
    for (int i = 0; i < MAX_READS; i++) {
        int got = udp_recv_batch(&qc->own_sock, ep->rx, UDP_BATCH);

        for (int k = 0; k < got; k++) {
            const struct udp_msg *m = &ep->rx[k];

            for (size_t off = 0; off < m->len; off += m->seg) {
                if (qc->state == QC_DEAD || qc->state == QC_DRAINING)
                    return;
                conn_input(qc, &qc->own_sock, &m->local, &m->remote, m->ecn,
                           m->buf + off,
                           m->len - off < m->seg ? m->len - off : m->seg);
            }
        }
        if (got < UDP_BATCH)
            break;
    }
}


void quic_client_init(struct quic_endpoint *ep, struct ev_loop *loop,
                      const struct config *cfg, struct tls_ctx *tls)
{
    memset(ep, 0, sizeof(*ep));
    LIST_INIT(&ep->conns);
    ep->role = QUIC_CLIENT;
    ep->loop = loop;
    rx_init(ep);
    ep->cfg = cfg;
    ep->tls = tls;
    ep->ncid_buckets = 64;
    ep->cids = calloc(ep->ncid_buckets, sizeof(*ep->cids));
    if (fill_random(ep->static_secret, sizeof(ep->static_secret)) < 0)
        memset(ep->static_secret, 0x5a, sizeof(ep->static_secret));
    ev_prepare_init(&ep->prepare, prepare_cb);
    ep->prepare.data = ep;
    ev_prepare_start(loop, &ep->prepare);
}

struct quic_conn *quic_connect(struct quic_endpoint *ep,
                               const struct sockaddr *remote, socklen_t len,
                               const char *host,
                               const struct quic_conn_ops *ops, void *app,
                               char *err, size_t errlen)
{
    ngtcp2_settings settings;
    ngtcp2_transport_params params;
    ngtcp2_callbacks cb;
    ngtcp2_path path;
    ngtcp2_cid dcid;
    struct quic_conn *qc;

    if (!ep->cids) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    qc = conn_alloc(ep, &settings, &params);
    if (!qc) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    qc->ops = ops;
    qc->app = app;
    if (udp_connect(&qc->own_sock, remote, len, err, errlen) < 0)
        goto fail;
    qc->sock = &qc->own_sock;
    udp_set_buffers(&qc->own_sock, ep->cfg->socket_buffer_bytes);
    qc->local = qc->own_sock.bound;
    memcpy(&qc->remote.ss, remote, len);
    qc->remote.len = len;
    udp_addr_str(remote, qc->peer, sizeof(qc->peer));
    if (!(qc->host = strdup(host ? host : ""))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    dcid.datalen = SCID_LEN;
    if (ep->dcidlen >= NGTCP2_MIN_INITIAL_DCIDLEN &&
        ep->dcidlen <= NGTCP2_MAX_CIDLEN)
        ngtcp2_cid_init(&dcid, ep->dcid, ep->dcidlen);
    else if (fill_random(dcid.data, dcid.datalen) < 0) {
        snprintf(err, errlen, "no randomness");
        goto fail;
    }
    settings.token = ep->token;
    settings.tokenlen = ep->tokenlen;
    path_of(qc, &path);
    callbacks_init(&cb, QUIC_CLIENT);
    if (ngtcp2_conn_client_new(&qc->conn, &dcid, &qc->scid, &path,
                               NGTCP2_PROTO_VER_V1, &cb, &settings, &params,
                               NULL, qc) != 0) {
        snprintf(err, errlen, "ngtcp2_conn_client_new failed");
        goto fail;
    }
    qc->tls = tls_session_new(ep->tls, &qc->conn_ref, host);
    if (!qc->tls || conn_link(qc) < 0) {
        snprintf(err, errlen, "TLS session set-up failed");
        goto fail;
    }
    ev_io_init(&qc->io, client_io_cb, qc->own_sock.fd, EV_READ);
    qc->io.data = qc;
    ev_io_start(ep->loop, &qc->io);
    quic_conn_want_write(qc); /* the Initial */
    return qc;

fail:
    conn_unmake(qc);
    return NULL;
}

void quic_conn_settings_received(struct quic_conn *qc)
{
    if (qc->ep->role != QUIC_CLIENT || qc->ready)
        return;
    qc->ready = 1;
    quic_conn_want_write(qc);
}
