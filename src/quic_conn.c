/*
 * quic_conn: one QUIC connection (see quic.h).  Owns the ngtcp2 callbacks,
 * a connection's life from allocation to free, closing (CONNECTION_CLOSE,
 * the closing and draining periods), its timer, the NEW_TOKEN token it
 * hands out, and its single write loop.  The endpoint around it (sockets,
 * the CID table, the accept path, address validation, stateless resets)
 * is quic_endpoint.c.
 */
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
#include "metrics.h"
#include "quic_internal.h"
#include "tls.h"
#include "wire.h"

/* Short header (1 + 20-byte CID + 4-byte packet number), AEAD tag (16),
 * DATAGRAM frame type and length (1 + 4): what a datagram needs besides
 * its own bytes to fit a packet. */
#define DGRAM_OVERHEAD 46

uint64_t quic_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NGTCP2_SECONDS + (uint64_t)ts.tv_nsec;
}

int quic_fill_random(void *p, size_t n)
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

/* ---- ngtcp2 callbacks ---- */

static ngtcp2_conn *get_conn(ngtcp2_crypto_conn_ref *ref)
{
    return ((struct quic_conn *)ref->user_data)->conn;
}

void quic_cb_rand(uint8_t *dest, size_t len, const ngtcp2_rand_ctx *ctx)
{
    (void)ctx;
    if (quic_fill_random(dest, len) < 0)
        memset(dest, 0, len); /* getrandom cannot fail after boot */
}

int quic_cid_fill(const struct quic_endpoint *ep, ngtcp2_cid *cid, size_t len)
{
    if (quic_fill_random(cid->data, len) < 0)
        return -1;
    cid->datalen = len;
    /* the packets that carry it find this worker (cid_steer_prog()) */
    cid_set_worker(cid->data, len, ep->worker);
    return 0;
}

static int cb_get_new_cid(ngtcp2_conn *conn, ngtcp2_cid *cid, uint8_t *token,
                          size_t cidlen, void *user_data)
{
    struct quic_conn *qc = user_data;

    (void)conn;
    if (quic_cid_fill(qc->ep, cid, cidlen) < 0)
        return NGTCP2_ERR_CALLBACK_FAILURE;
    if (ngtcp2_crypto_generate_stateless_reset_token(
            token, qc->ep->static_secret, sizeof(qc->ep->static_secret),
            cid) != 0)
        return NGTCP2_ERR_CALLBACK_FAILURE;
    if (quic_cid_add(qc->ep, cid, qc) < 0)
        return NGTCP2_ERR_CALLBACK_FAILURE;
    return 0;
}

static int cb_remove_cid(ngtcp2_conn *conn, const ngtcp2_cid *cid,
                         void *user_data)
{
    struct quic_conn *qc = user_data;

    (void)conn;
    quic_cid_remove(qc->ep, cid);
    return 0;
}

/*
 * A token for the client's next connection (NEW_TOKEN): it proves the
 * address then, so that connection skips the Retry round trip and the
 * anti-amplification limit.  Bound to the client's IP address, valid for
 * NEW_TOKEN_TIMEOUT; losing it costs the client one Retry at most.
 */
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
        if (qc->alim)
            addrlim_handshake_done(&qc->ep->alim, qc->alim);
    }
    qc->resumed = tls_session_resumed(qc->tls);
    if (qc->ep->role == QUIC_SERVER) {
        metrics.handshakes_completed++;
        send_new_token(qc);
        /* a ticket for the next connection, resumed or not: it needs the
         * TLS session, which goes right after this callback */
        if (tls_session_send_ticket(qc->tls) < 0)
            log_debug("conn %llu %s: no session ticket sent",
                      (unsigned long long)qc->serial, qc->peer);
        if (qc->resumed)
            metrics.handshakes_resumed++;
    }
    log_debug("conn %llu %s: handshake completed%s",
              (unsigned long long)qc->serial, qc->peer,
              qc->resumed ? " (resumed)" : "");
    /* The TLS session is dropped after this callback (see
     * cb_recv_crypto_data): a third of an idle connection's memory.  A
     * client that resumes keeps it until the server's ticket has come. */
    qc->tls_release = qc->ep->role == QUIC_SERVER ||
                      !tls_session_awaits_ticket(qc->tls);
    quic_conn_want_write(qc);
    if (qc->ep->role != QUIC_CLIENT)
        return 0;
    if (tls_session_verify(qc->tlsctx, qc->tls, qc->host, err, sizeof(err)) <
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

/* The server sends its SETTINGS in 0.5-RTT, as soon as 1-RTT keys exist.
 * A connection not linked yet may be on a helper thread (quic_conn_make()):
 * the HTTP/3 state waits for quic_conn_fed() on the loop, as its buffers
 * count in the global metrics; nothing is written before that anyway. */
static int cb_recv_tx_key(ngtcp2_conn *conn, ngtcp2_encryption_level level,
                          void *user_data)
{
    struct quic_conn *qc = user_data;

    (void)conn;
    if (level != NGTCP2_ENCRYPTION_LEVEL_1RTT)
        return 0;
    if (qc->unlinked) {
        qc->h3_due = 1;
        return 0;
    }
    return h3_conn_init(qc) == 0 ? 0 : NGTCP2_ERR_CALLBACK_FAILURE;
}

/*
 * Once the handshake is complete the TLS session has nothing left to do in
 * QUIC: keys are derived and key updates need only ngtcp2's crypto context.
 * What may still arrive is a post-handshake message (a server's
 * NewSessionTicket: read while a resuming client waits for one; we ask for
 * no client certificates), so after the session is freed CRYPTO data is
 * read and dropped.
 */
static int cb_recv_crypto_data(ngtcp2_conn *conn,
                               ngtcp2_encryption_level level, uint64_t offset,
                               const uint8_t *data, size_t datalen,
                               void *user_data)
{
    struct quic_conn *qc = user_data;
    int rv;

    if (!qc->tls) {
        log_debug("conn %llu %s: %zu bytes of post-handshake TLS dropped",
                  (unsigned long long)qc->serial, qc->peer, datalen);
        return 0;
    }
    rv = ngtcp2_crypto_recv_crypto_data_cb(conn, level, offset, data,
                                           datalen, user_data);
    if (rv == 0 && qc->state == QC_ACTIVE && !qc->tls_release &&
        !tls_session_awaits_ticket(qc->tls)) {
        qc->tls_release = 1; /* the ticket is kept: the session can go */
        quic_conn_want_write(qc);
    }
    return rv;
}

void quic_conn_release_tls(struct quic_conn *qc)
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
    if (wt_is_stream(stream_user_data)) {
        wt_on_stream_reset(qc, stream_user_data, app_error_code, final_size);
        return 0;
    }
    return h3_stream_reset(qc, stream_id, app_error_code) == 0
               ? 0
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
    return h3_stream_stopped(qc, stream_id) == 0 ? 0
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

void quic_callbacks_init(ngtcp2_callbacks *cb, enum quic_role role)
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
    .rand = quic_cb_rand,
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

void quic_path_of(struct quic_conn *qc, ngtcp2_path *path)
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

/*
 * What both roles share: the object, settings and transport parameters
 * from `cfg`.  It takes over the references cfg and tlsctx (the caller's
 * on failure) and touches nothing of the endpoint but what never changes
 * (its worker index, its role): a server's helper thread makes
 * connections with it (quic_conn_make()).
 */
static struct quic_conn *conn_alloc(struct quic_endpoint *ep,
                                    struct config *cfg,
                                    struct tls_ctx *tlsctx, uint64_t serial,
                                    ngtcp2_settings *settings,
                                    ngtcp2_transport_params *params)
{
    struct quic_conn *qc = calloc(1, sizeof(*qc));

    if (!qc)
        return NULL;
    qc->ep = ep;
    qc->serial = serial;
    qc->state = QC_HANDSHAKE;
    qc->own_sock.fd = -1;
    if (quic_cid_fill(ep, &qc->scid, SCID_LEN) < 0) {
        free(qc);
        return NULL;
    }
    qc->cfg = cfg;
    qc->tlsctx = tlsctx;
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
    /*
     * Acknowledge every ack-eliciting packet in the next write (RFC 9000
     * §13.2.2 allows more often than every second one).  ngtcp2 puts an
     * ACK into a packet only once it is due, never because a packet goes
     * anyway: with its default of 2, a request answered in the loop turn
     * that read it left with no ACK, and the ACK followed alone when the
     * delay timer fired (srtt/8, a fraction of a millisecond here) — one
     * more wake-up and one more datagram each side.  Request/response
     * over 10 connections: 36 500 datagrams from the daemon for 200 000
     * requests, 16 000 of them ACK or MAX_STREAMS alone, 72 000 both
     * ways; with 1, 20 000 and 40 000, and the delay timer never fires.
     * Worst for a peer that only sends: one ACK a loop turn and
     * connection where two such turns shared one.  The server only:
     * clients (wtclient, wtbench) ack as browsers do, every second packet
     * at most — a broadcast member acking every datagram of a room would
     * double the daemon's ACKs to read, and the benchmarks would measure
     * a client no browser is.
     */
    if (ep->role == QUIC_SERVER)
        settings->ack_thresh = 1;
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
    params->max_datagram_frame_size = cfg->no_quic_datagrams ? 0 : 65535;
    params->active_connection_id_limit = 7;
    return qc;
}

struct quic_conn *quic_conn_alloc(struct quic_endpoint *ep,
                                  ngtcp2_settings *settings,
                                  ngtcp2_transport_params *params)
{
    struct config *cfg = config_ref(ep->cfg);
    struct tls_ctx *tlsctx = ep->tls ? tls_ctx_ref(ep->tls) : NULL;
    struct quic_conn *qc =
        conn_alloc(ep, cfg, tlsctx, ++ep->next_serial, settings, params);

    if (!qc) {
        config_unref(cfg);
        tls_ctx_free(tlsctx);
    }
    return qc;
}

/* Registers a connection whose ngtcp2_conn and TLS session exist. */
int quic_conn_link(struct quic_conn *qc)
{
    struct quic_endpoint *ep = qc->ep;

    if (quic_cid_add(ep, &qc->scid, qc) < 0 ||
        (qc->odcid.datalen && quic_cid_add(ep, &qc->odcid, qc) < 0))
        return -1;
    qc->unlinked = 0;
    LIST_INSERT_HEAD(&ep->conns, qc, link);
    ep->nconns++;
    if (ep->role == QUIC_SERVER) {
        qc->counted = 1;
        ep->nhandshakes++;
        metrics.connections_total++;
    }
    log_debug("conn %llu %s: new connection", (unsigned long long)qc->serial,
              qc->peer);
    return 0;
}

void quic_conn_unmake(struct quic_conn *qc)
{
    quic_cid_remove(qc->ep, &qc->scid);
    if (qc->odcid.datalen)
        quic_cid_remove(qc->ep, &qc->odcid);
    quic_conn_discard(qc);
}

/*
 * A server connection for a new client's Initial (hd), made but
 * registered nowhere: its ngtcp2_conn and TLS session exist, the endpoint
 * does not know it.  Touches no state of the loop's (the seed carries
 * what it needs, references included), so that the costly part of a
 * handshake can run on a helper thread (quic_hsq.c).  On success the
 * connection holds the seed's cfg and tlsctx references; NULL (out of
 * memory) leaves them with the caller.
 */
struct quic_conn *quic_conn_make(const struct quic_conn_seed *sd,
                                 const ngtcp2_pkt_hd *hd)
{
    ngtcp2_settings settings;
    ngtcp2_transport_params params;
    ngtcp2_callbacks cb;
    ngtcp2_path path;
    struct quic_conn *qc = conn_alloc(sd->ep, sd->cfg, sd->tlsctx, sd->serial,
                                      &settings, &params);

    if (!qc)
        return NULL;
    qc->unlinked = 1;
    qc->sock = sd->sock;
    qc->local = sd->local;
    qc->remote = sd->remote;
    udp_addr_str((const struct sockaddr *)&sd->remote.ss, qc->peer,
                 sizeof(qc->peer));
    /* the client's DCID until it learns ours (after a Retry: the SCID of
     * the Retry) */
    qc->odcid = hd->dcid;
    params.stateless_reset_token_present = 1;
    params.original_dcid =
        sd->check == ADDR_RETRY ? sd->odcid : hd->dcid;
    params.original_dcid_present = 1;
    if (sd->check == ADDR_RETRY) {
        params.retry_scid = hd->dcid;
        params.retry_scid_present = 1;
    }
    if (sd->check != ADDR_UNPROVEN) {
        /* the address is proven: no anti-amplification limit */
        settings.token = hd->token;
        settings.tokenlen = hd->tokenlen;
        settings.token_type = sd->check == ADDR_RETRY
                                  ? NGTCP2_TOKEN_TYPE_RETRY
                                  : NGTCP2_TOKEN_TYPE_NEW_TOKEN;
    }
    /* the credentials' secret: the endpoint's static_secret, which a
     * reload may be rewriting on the loop thread meanwhile */
    if (ngtcp2_crypto_generate_stateless_reset_token(
            params.stateless_reset_token, tls_ctx_secret(qc->tlsctx), 32,
            &qc->scid) != 0)
        goto fail;

    quic_path_of(qc, &path);
    quic_callbacks_init(&cb, QUIC_SERVER);
    if (ngtcp2_conn_server_new(&qc->conn, &hd->scid, &qc->scid, &path,
                               hd->version, &cb, &settings, &params, NULL,
                               qc) != 0)
        goto fail;
    if (!(qc->tls = tls_session_new(qc->tlsctx, &qc->conn_ref, NULL)))
        goto fail;
    ngtcp2_conn_set_tls_native_handle(qc->conn, qc->tls);
    return qc;

fail:
    qc->cfg = NULL; /* the caller's */
    qc->tlsctx = NULL;
    quic_conn_discard(qc);
    return NULL;
}

/*
 * Frees a connection that quic_conn_make() made and nothing registered
 * (loop thread: it drops references), and what quic_conn_unmake() frees
 * once the connection is out of the CID table.  What its first packets
 * made goes with it: a TLS session, the HTTP/3 state of 0.5-RTT
 * (h3_conn_free() again after quic_conn_free()'s is a no-op).
 */
void quic_conn_discard(struct quic_conn *qc)
{
    tls_session_free(qc->tls); /* before the credentials it points at */
    h3_conn_free(qc);
    if (qc->conn)
        ngtcp2_conn_del(qc->conn);
    udp_close(&qc->own_sock);
    config_unref(qc->cfg);
    tls_ctx_free(qc->tlsctx);
    free(qc->host);
    free(qc);
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

/* A server connection that ends before its handshake completed: why. */
static enum metrics_handshake_fail handshake_failure(const struct quic_conn *qc)
{
    const ngtcp2_ccerr *e = &qc->last_error;

    if (qc->state == QC_DRAINING)
        return METRICS_HS_PEER;
    if (e->type == NGTCP2_CCERR_TYPE_IDLE_CLOSE ||
        strcmp(qc->why, "handshake timeout") == 0)
        return METRICS_HS_TIMEOUT;
    if (e->type == NGTCP2_CCERR_TYPE_TRANSPORT &&
        e->error_code >= NGTCP2_CRYPTO_ERROR &&
        e->error_code < NGTCP2_CRYPTO_ERROR + 256)
        return METRICS_HS_TLS;
    return METRICS_HS_PROTOCOL;
}

/* Unlinks and frees now: only from the loop's own callbacks, never from
 * inside ngtcp2/nghttp3 callbacks (those mark QC_DEAD instead). */
void quic_conn_free(struct quic_conn *qc)
{
    struct quic_endpoint *ep = qc->ep;
    ngtcp2_cid buf[16], *scids = buf;
    size_t n;

    log_debug("conn %llu %s: freed", (unsigned long long)qc->serial,
              qc->peer);
    /* its packets leave before its socket (a client's own) closes */
    quic_endpoint_tx_flush(ep);
    wt_conn_free(qc);
    if (qc->ops && qc->ops->closed) {
        conn_describe_close(qc);
        qc->ops->closed(qc, qc->why);
    }
    h3_conn_free(qc);
    ev_timer_stop(ep->loop, &qc->timer);
    if (qc->own_sock.fd >= 0)
        ev_io_stop(ep->loop, &qc->io);
    /* every CID of ours goes from the table: a stale entry would hand
     * the next packet naming it a freed connection */
    n = ngtcp2_conn_get_scid(qc->conn, NULL);
    if (n > 16 && !(scids = malloc(n * sizeof(*scids)))) {
        quic_cid_remove_conn(ep, qc);
    } else {
        ngtcp2_conn_get_scid(qc->conn, scids);
        for (size_t i = 0; i < n; i++)
            quic_cid_remove(ep, &scids[i]);
        if (scids != buf)
            free(scids);
    }
    if (qc->dirty) { /* on the write list, or in the round being written */
        struct quic_conn **p = &ep->dirty;

        while (*p && *p != qc)
            p = &(*p)->dirty_next;
        if (!*p)
            for (p = &ep->round; *p && *p != qc; p = &(*p)->dirty_next)
                ;
        if (*p)
            *p = qc->dirty_next;
    }
    LIST_REMOVE(qc, link);
    ep->nconns--;
    if (qc->counted) {
        ep->nhandshakes--;
        metrics.handshakes_failed[handshake_failure(qc)]++;
    }
    if (qc->alim)
        addrlim_conn_gone(&ep->alim, qc->alim, qc->counted, ev_now(ep->loop));
    free(qc->closebuf);
    quic_impair_free(qc);
    quic_conn_unmake(qc);
    quic_endpoint_sweep(ep);
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
    /* after the packets this connection has queued */
    quic_endpoint_tx_flush(qc->ep);
    if (qc->closelen)
        udp_send(qc->sock, &qc->local, &qc->remote, 0, qc->closebuf,
                 qc->closelen, 0);
}

/* A handshake that ends in a close gives its slot back at once (the
 * endpoint's count, retry = auto's, the address's), not when the closing
 * period is over: that is 3 PTO, ~3 s with no RTT sample, and a silent
 * Initial would hold a slot for handshake_timeout + 3 s (issue 12 says
 * handshake_timeout).  The connection itself is still counted, and
 * freed after its closing period. */
static void handshake_abandoned(struct quic_conn *qc)
{
    if (!qc->counted)
        return;
    qc->counted = 0;
    qc->ep->nhandshakes--;
    metrics.handshakes_failed[handshake_failure(qc)]++;
    if (qc->alim)
        addrlim_handshake_done(&qc->ep->alim, qc->alim);
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
        handshake_abandoned(qc);
        if (qc->state == QC_DRAINING)
            closing_timer(qc);
        return;
    }
    qc->state = QC_CLOSING;
    handshake_abandoned(qc);
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
        quic_conn_free(qc);
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
        quic_conn_write(qc);
    }
    quic_conn_settle(qc);
}

static void conn_update_timer(struct quic_conn *qc)
{
    ngtcp2_tstamp expiry = qc->quiet_expiry ? qc->quiet_expiry
                                            : ngtcp2_conn_get_expiry(qc->conn);
    ngtcp2_tstamp now = quic_now();
    ev_tstamp t = expiry <= now ? 0. : (ev_tstamp)(expiry - now) / NGTCP2_SECONDS;

    qc->quiet_expiry = 0;
    ev_timer_stop(qc->ep->loop, &qc->timer);
    ev_timer_set(&qc->timer, t, 0.);
    ev_timer_start(qc->ep->loop, &qc->timer);
}

void quic_conn_settle(struct quic_conn *qc)
{
    wt_conn_collect(qc);
    if (qc->state == QC_DEAD)
        quic_conn_free(qc);
    else if (qc->state != QC_CLOSING && qc->state != QC_DRAINING)
        conn_update_timer(qc);
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
 * Packets of one write pass are laid out back to back in the endpoint's
 * txbuf: a run of equal-sized packets of one path, the last possibly
 * shorter, is one message (UDP GSO).  The messages of every connection
 * written in a loop turn wait in the endpoint's queue and leave together
 * in sendmmsg calls (quic_endpoint_tx_flush()): a datagram fanned out to
 * 1 000 members is 1 000 packets of 1 000 connections, which took one
 * system call each.
 */
#define MAX_GSO_SEGS 64
/* the most one message carries: what UDP GSO takes in one send */
#define MAX_RUN (64 * 1024)

struct txbatch {
    size_t start; /* where its packets begin in txbuf */
    size_t off;  /* bytes of packets from there */
    size_t seg;  /* their size (the first packet's) */
    size_t nseg;
    unsigned ecn; /* one ECN codepoint per send */
    /* the path ngtcp2 wrote them for: one path per send */
    struct udp_sock *sock;
    struct udp_addr local, remote;
};

static void addr_set(struct udp_addr *a, const ngtcp2_addr *na)
{
    memcpy(&a->ss, na->addr, na->addrlen);
    a->len = na->addrlen;
}

static int addr_is(const struct udp_addr *a, const ngtcp2_addr *na)
{
    return a->len == na->addrlen && memcmp(&a->ss, na->addr, a->len) == 0;
}

/* The batch's packets were written for this path (or, empty, will be). */
static int batch_path_is(const struct txbatch *b, const ngtcp2_path *p)
{
    return b->sock == p->user_data && addr_is(&b->remote, &p->remote) &&
           addr_is(&b->local, &p->local);
}

/* Sends the endpoint's queue: runs of messages of one socket, each in
 * as few sendmmsg calls as the kernel allows. */
int quic_endpoint_tx_flush(struct quic_endpoint *ep)
{
    size_t i = 0;
    int rv = 0;

    while (i < ep->ntxq) {
        struct udp_sock *s = ep->txsock[i];
        size_t n = 1;
        struct udp_sent st;
        int r;

        while (i + n < ep->ntxq && ep->txsock[i + n] == s)
            n++;
        r = udp_send_many(s, ep->txq + i, n, &st);
        metrics.udp_bytes_sent += st.bytes;
        metrics.udp_datagrams_sent += st.datagrams;
        metrics.udp_send_calls += st.calls;
        if (r < 0) {
            char a[80];

            log_debug("sendmmsg from %s: %s",
                      udp_addr_str((const struct sockaddr *)&s->bound.ss, a,
                                   sizeof(a)),
                      strerror(errno));
        }
        /* A full socket buffer is loss to QUIC: ngtcp2 retransmits. */
        if (r != 0 && rv >= 0)
            rv = r;
        i += n;
    }
    ep->ntxq = 0;
    ep->txlen = 0;
    return rv;
}

/* The batch's run becomes a message of the endpoint's queue; the queue
 * leaves when it is full or txbuf has no room for another whole run.
 * The next run starts where the endpoint's txbuf is free. */
static int batch_flush(struct quic_conn *qc, struct txbatch *b)
{
    struct quic_endpoint *ep = qc->ep;
    int rv = 0;

    if (b->off) {
        struct udp_out *o = &ep->txq[ep->ntxq];

        o->p = ep->txbuf + b->start;
        o->len = b->off;
        o->seg = b->nseg > 1 ? b->seg : 0;
        o->ecn = b->ecn;
        o->local = b->local;
        o->remote = b->remote;
        ep->txsock[ep->ntxq++] = b->sock;
        ep->txlen = b->start + b->off;
        if (ep->ntxq == UDP_SEND_BATCH ||
            sizeof(ep->txbuf) - ep->txlen < MAX_RUN)
            rv = quic_endpoint_tx_flush(ep);
    }
    b->start = ep->txlen;
    b->off = b->seg = b->nseg = 0;
    return rv;
}

/*
 * A packet of n bytes was just written at txbuf + b->off, for `path`:
 * the one ngtcp2 chose for it, which is where it goes (a probe on a new
 * path, the current path once validated), never an address a packet
 * merely claimed to come from.
 */
static int batch_add(struct quic_conn *qc, struct txbatch *b, size_t n,
                     unsigned ecn, size_t maxpkt, const ngtcp2_path *path)
{
    uint8_t *tx = qc->ep->txbuf;

    if (b->nseg && (n > b->seg || ecn != b->ecn || !batch_path_is(b, path))) {
        /* larger than the run, another ECN codepoint or another path: the
         * run is queued first, this packet (just past it) starts the next
         * (where it is, or at the start of txbuf if the queue left) */
        size_t at = b->start + b->off;
        int rv = batch_flush(qc, b);

        if (b->start != at)
            memmove(tx + b->start, tx + at, n);
        if (rv != 0)
            return -1;
    }
    if (!b->nseg) {
        b->seg = n;
        b->ecn = ecn;
        b->sock = path->user_data ? path->user_data : qc->sock;
        addr_set(&b->local, &path->local);
        addr_set(&b->remote, &path->remote);
    }
    b->off += n;
    b->nseg++;
    if (n < b->seg || b->nseg == MAX_GSO_SEGS || MAX_RUN - b->off < maxpkt)
        return batch_flush(qc, b);
    return 0;
}

void quic_conn_write(struct quic_conn *qc)
{
    ngtcp2_conn *conn = qc->conn;
    uint8_t *out;
    const struct config *cfg = qc->cfg;
    struct txbatch batch = {0};
    size_t maxpkt = ngtcp2_conn_get_max_tx_udp_payload_size(conn);
    size_t quantum = ngtcp2_conn_get_send_quantum(conn);
    size_t npkts = 0, maxpkts = quantum / maxpkt ? quantum / maxpkt : 1;
    size_t passes = 0, maxpasses;
    int drained = 0; /* the last pass found nothing left to write */
    ngtcp2_tstamp ts = quic_now();
    ngtcp2_path_storage ps;
    ngtcp2_pkt_info pi;

    qc->quiet_expiry = 0;
    if (qc->state == QC_CLOSING || qc->state == QC_DRAINING ||
        qc->state == QC_DEAD)
        return;
    /* handlers hear what was deferred out of ngtcp2's callbacks */
    wt_conn_service(qc);
    if (maxpkt > MAX_RUN)
        maxpkt = MAX_RUN;
    batch.start = qc->ep->txlen; /* after what other connections queued */
    ngtcp2_path_storage_zero(&ps);
    /*
     * Every pass writes into a packet or takes a stream or datagram off a
     * queue, so a pass count past what the config allows (each stream and
     * datagram of every session once, plus a generous number of frames
     * per packet) is a loop that makes no progress: the connection ends
     * rather than the daemon spinning for everybody.
     */
    maxpasses = cfg->max_sessions_per_connection *
                    (cfg->max_streams_per_session + cfg->max_datagram_queue) +
                (maxpkts + 1) * 256 + 1024;

    for (;;) {
        ngtcp2_vec vec[16];
        size_t nvec = 0, total = 0;
        int64_t sid = -1;
        int fin = 0, accepted = 0;
        enum wsrc src = SRC_NONE;
        struct wt_stream *wst = NULL;
        ngtcp2_ssize nwrite, ndatalen = -1;

        out = qc->ep->txbuf + batch.start + batch.off;
        if (++passes > maxpasses) {
            log_error("conn %llu %s: the write loop made no progress in %zu "
                      "passes; closing the connection",
                      (unsigned long long)qc->serial, qc->peer, maxpasses);
            batch_flush(qc, &batch);
            quic_conn_close_app(qc, WIRE_H3_INTERNAL_ERROR, NULL);
            return;
        }

        /* Datagrams first: they are small, bounded per session, and a
         * bulk stream of one session must not starve another's. */
        if (!wt_datagram_pending(qc) && qc->h3.h3 &&
            ngtcp2_conn_get_max_data_left(conn) > 0) {
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
            if (dv[0].len + (ndv > 1 ? dv[1].len : 0) + DGRAM_OVERHEAD >
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
                if (src == SRC_WT) {
                    wt_stream_shut_wr(wst);
                } else if (h3_shut_wr(qc, sid) < 0) {
                    batch_flush(qc, &batch);
                    conn_close(qc); /* a critical stream: last_error */
                    return;
                }
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
        if (nwrite == 0) {
            drained = src == SRC_NONE;
            break;
        }
    send:
        if (ep_drops(qc->ep)) {
            qc->ep->lost[0]++;
            npkts++; /* "lost": the next packet overwrites it */
            continue;
        }
        /* held (copied) or dropped by the simulated path: as sent */
        if (qc->ep->impairing &&
            !quic_impair_tx(qc, &ps.path, pi.ecn, out, (size_t)nwrite)) {
            npkts++;
            continue;
        }
        if (batch_add(qc, &batch, (size_t)nwrite, pi.ecn, maxpkt,
                      &ps.path) != 0)
            break;
        if (++npkts >= maxpkts)
            break; /* pacing: the timer brings the next burst */
    }
    batch_flush(qc, &batch);
    /*
     * Pacing: the update below sets ngtcp2's next-send time a little
     * ahead, and ngtcp2_conn_get_expiry() counts it, so every burst sent
     * would wake this connection's timer once more for an empty write
     * pass (one datagram fanned out to 1 000 members: 1 000 of them).
     * When neither ngtcp2 nor our queues had anything left, that time
     * only matters to the next write, which ngtcp2 paces itself (before
     * it, nothing but ACKs is written, and the expiry counts it again):
     * the timer takes the expiry as it was before the update.
     */
    if (drained && npkts > 0) {
        ngtcp2_tstamp e = ngtcp2_conn_get_expiry(conn);

        qc->quiet_expiry = e ? e : 1;
    }
    ngtcp2_conn_update_pkt_tx_time(conn, ts);
}

/* ---- reading ---- */

/* The connection's current path, as ngtcp2 has it after a packet: a NAT
 * rebinding or a migration it has accepted. */
static void follow_path(struct quic_conn *qc)
{
    const ngtcp2_path *p = ngtcp2_conn_get_path(qc->conn);
    char was[sizeof(qc->peer)];

    if (addr_is(&qc->remote, &p->remote) && addr_is(&qc->local, &p->local))
        return;
    addr_set(&qc->local, &p->local);
    addr_set(&qc->remote, &p->remote);
    if (p->user_data)
        qc->sock = p->user_data;
    memcpy(was, qc->peer, sizeof(was));
    udp_addr_str((const struct sockaddr *)&qc->remote.ss, qc->peer,
                 sizeof(qc->peer));
    log_info("conn %llu %s: now on path from %s", (unsigned long long)qc->serial,
             was, qc->peer);
}

/* One packet for a known connection. */
void quic_conn_input(struct quic_conn *qc, struct udp_sock *s,
                     const struct udp_addr *local,
                     const struct udp_addr *remote, unsigned ecn,
                     const uint8_t *p, size_t n)
{
    if (ep_drops(qc->ep)) {
        qc->ep->lost[1]++;
        return;
    }
    if (qc->ep->impairing &&
        !quic_impair_rx(qc, s, local, remote, ecn, p, n))
        return; /* held (quic_impair.c reads it later) or dropped */
    quic_conn_read(qc, s, local, remote, ecn, p, n);
}

/* The packet's own path: ngtcp2 authenticates the packet before it
 * believes it, and validates a new path (RFC 9000 §9) before it moves the
 * connection there.  Nothing here trusts it.  ngtcp2 and GnuTLS only: a
 * new connection's first packets are read here on a helper thread
 * (quic_conn_make()); quic_conn_fed() does the rest on the loop. */
int quic_conn_feed(struct quic_conn *qc, struct udp_sock *s,
                   const struct udp_addr *local,
                   const struct udp_addr *remote, unsigned ecn,
                   const uint8_t *p, size_t n)
{
    ngtcp2_pkt_info pi = {.ecn = (uint8_t)ecn};
    ngtcp2_path path;

    path.local.addr = (ngtcp2_sockaddr *)&local->ss;
    path.local.addrlen = local->len;
    path.remote.addr = (ngtcp2_sockaddr *)&remote->ss;
    path.remote.addrlen = remote->len;
    path.user_data = s;
    return ngtcp2_conn_read_pkt(qc->conn, &path, &pi, p, n, quic_now());
}

/* What quic_conn_feed() answered, on the loop: the path followed, an
 * error closes, and the connection writes. */
void quic_conn_fed(struct quic_conn *qc, int rv)
{
    if (qc->h3_due) { /* see cb_recv_tx_key() */
        qc->h3_due = 0;
        if (rv == 0 && h3_conn_init(qc) != 0)
            rv = NGTCP2_ERR_CALLBACK_FAILURE;
    }
    if (rv == 0)
        follow_path(qc);
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

void quic_conn_read(struct quic_conn *qc, struct udp_sock *s,
                    const struct udp_addr *local,
                    const struct udp_addr *remote, unsigned ecn,
                    const uint8_t *p, size_t n)
{
    switch (qc->state) {
    case QC_CLOSING:
        /* RFC 9000 §10.2.1: answer input with the close, but not every
         * packet of a flood (which anybody can send with our CID) */
        qc->close_in++;
        if ((qc->close_in & (qc->close_in - 1)) == 0)
            send_closebuf(qc);
        return;
    case QC_DRAINING:
    case QC_DEAD:
        return;
    default:
        break;
    }
    quic_conn_fed(qc, quic_conn_feed(qc, s, local, remote, ecn, p, n));
}

void quic_conn_settings_received(struct quic_conn *qc)
{
    if (qc->ep->role != QUIC_CLIENT || qc->ready)
        return;
    qc->ready = 1;
    quic_conn_want_write(qc);
}
