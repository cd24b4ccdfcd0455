/*
 * h3: the nghttp3 glue.  nghttp3 parses requests, runs QPACK and reads the
 * peer's control stream; the server's own control stream (SETTINGS, GOAWAY)
 * is written here, because nghttp3 1.8 cannot send the WebTransport
 * settings (see h3_conn_init).  Extended CONNECT requests are handed to
 * wt.c; everything else gets 404.
 */
#ifndef WTRELAYD_H3_H
#define WTRELAYD_H3_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include <nghttp3/nghttp3.h>
#include <ngtcp2/ngtcp2.h>

#include "buf.h"
#include "wire.h"

#define H3_MAX_PEER_SETTINGS 32
#define H3_CTRL_TEE_MAX 2048

struct quic_conn;
struct wt_session;

struct h3_conn {
    nghttp3_conn *h3;
    int64_t ctrl_id; /* our control stream, -1 before init */
    int64_t qenc_id, qdec_id; /* our QPACK streams (nghttp3's) */
    struct buf ctrl; /* its bytes: stream type, SETTINGS, GOAWAY */
    int ctrl_blocked;
    /* nghttp3 had nothing to write, and has been asked nothing since
     * (every nghttp3_conn_* call here but writev clears it) */
    int quiet;
    int goaway_sent;
    int64_t max_client_bidi_id; /* highest request stream id seen */
    LIST_HEAD(, h3_request) requests; /* live ones, freed with the conn */
    /* The peer's SETTINGS, read off its control stream on the way to
     * nghttp3 (which keeps what it parses to itself). */
    int64_t peer_ctrl_id;
    uint8_t *tee;
    size_t teelen;
    int settings_recv;
    struct wire_setting peer[H3_MAX_PEER_SETTINGS];
    size_t npeer;
};

/* A request stream's header block as received (bounded by nghttp3's
 * max_field_section_size). */
struct h3_request {
    int64_t stream_id;
    char *method, *protocol, *scheme, *authority, *path, *origin;
    int draft02;    /* sec-webtransport-http3-draft02: 1 */
    /* Subprotocol negotiation, one per spelling (WT_PROTO_HDR_WT,
     * WT_PROTO_HDR_QUICHE): the server reads the client's offer
     * (WT-Available-Protocols, resp. WebTransport-Subprotocols-Available;
     * several field lines joined by ", "), the client the server's answer
     * (WT-Protocol, resp. WebTransport-Subprotocol). */
    char *proto[2];
    /* client role: the response */
    int status;
    int draft02_resp; /* sec-webtransport-http3-draft: draft02 */
    int refused;      /* server: answered with an error status */
    int deferred;     /* server: waits for the client's SETTINGS */
    struct wt_session *session; /* once accepted; NULL otherwise */
    LIST_ENTRY(h3_request) link;
};

int h3_conn_init(struct quic_conn *qc);
void h3_conn_free(struct quic_conn *qc);

/* True for the marker that ngtcp2 stream user data holds on streams that
 * belong to nghttp3. */
int h3_is_stream(const void *stream_user_data);
/* Marks a peer stream as nghttp3's (after classification); `type` is its
 * first varint (the stream type of a uni stream). */
void h3_adopt_stream(struct quic_conn *qc, int64_t stream_id, uint64_t type);
/* Server: 1 when the live request on stream `id` was refused. */
int h3_request_refused(const struct quic_conn *qc, int64_t id);
/* The SETTINGS we send (role: QUIC_SERVER or QUIC_CLIENT); returns how
 * many (at most 16). */
struct config;
size_t h3_own_settings(const struct config *cfg, int role,
                       struct wire_setting *s, size_t max);
/* The peer's SETTINGS declare session flow control (draft-16 §5.1;
 * draft14: also WT_MAX_SESSIONS > 1, draft-14 §5.1). */
int h3_peer_fc_intent(const struct quic_conn *qc, int draft14);
/* The peer's value of a setting: 1 and *value, or 0 when absent. */
int h3_peer_setting(const struct quic_conn *qc, uint64_t id, uint64_t *value);

int h3_read_stream(struct quic_conn *qc, int64_t stream_id, const uint8_t *p,
                   size_t n, int fin);
int h3_acked(struct quic_conn *qc, int64_t stream_id, uint64_t n);
int h3_stream_close(struct quic_conn *qc, int64_t stream_id, uint64_t code);
/* The peer reset a stream (RESET_STREAM with `code`). */
int h3_stream_reset(struct quic_conn *qc, int64_t stream_id, uint64_t code);
/* We stopped reading a stream (our STOP_SENDING). */
int h3_stream_stopped(struct quic_conn *qc, int64_t stream_id);
int h3_unblock(struct quic_conn *qc, int64_t stream_id);
void h3_set_max_client_streams_bidi(struct quic_conn *qc, uint64_t n);

/* Write loop: the next stream data (our control stream first). *sid = -1
 * when there is none.  Returns the vector count or a negative error. */
ngtcp2_ssize h3_writev(struct quic_conn *qc, int64_t *sid, int *fin,
                       ngtcp2_vec *vec, size_t nvec);
void h3_written(struct quic_conn *qc, int64_t sid, size_t n);
void h3_block(struct quic_conn *qc, int64_t sid);
/* The peer stopped reading `sid` (STOP_SENDING): -1 when that ends the
 * connection (a critical stream; qc->last_error says how). */
int h3_shut_wr(struct quic_conn *qc, int64_t sid);

/*
 * Answers a request.  With body == 0 the response ends the stream (an
 * error status); with body == 1 the stream stays open and its DATA comes
 * from wt (capsules).  `extra` holds name/value pairs (count pairs).
 */
int h3_respond(struct quic_conn *qc, int64_t stream_id, int status,
               const char *const *extra, size_t count, int body);
/*
 * Client: sends an extended CONNECT on the new bidi stream `stream_id`; the
 * request body is the session's capsules (wt_capsules_read); `extra` holds
 * more name/value pairs (count pairs).  Returns the
 * request (owned by h3, like the server's) or NULL.
 */
struct h3_request *h3_connect(struct quic_conn *qc, int64_t stream_id,
                              const char *protocol, const char *authority,
                              const char *path, const char *origin,
                              int draft02, const char *const *extra,
                              size_t count);

/* More capsule bytes are queued for an accepted session's stream. */
void h3_resume(struct quic_conn *qc, int64_t stream_id);
/* Sends GOAWAY on our control stream (no new requests). */
void h3_goaway(struct quic_conn *qc);

#endif
