/*
 * wt: WebTransport sessions over HTTP/3 (draft-02, -07 and -15).
 *
 * Owns sessions (one per accepted extended CONNECT), the classification of
 * new peer streams (WebTransport 0x41/0x54 prefix, or HTTP/3 for nghttp3),
 * WebTransport streams with their send buffers, capsules on the CONNECT
 * stream, HTTP datagrams, and closing.  A connection owns its sessions, a
 * session its streams; objects are freed only in wt_conn_collect(), after
 * the ngtcp2/nghttp3 callback that closed them has returned.
 *
 * The first half of this header is the handler API (handler.h); the second
 * is for quic.c and h3.c.
 */
#ifndef WTRELAYD_WT_H
#define WTRELAYD_WT_H

#include <ev.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <ngtcp2/ngtcp2.h>

#include "buf.h"
#include "wire.h"

struct quic_conn;
struct h3_request;
struct config_route;
struct metrics_route;
struct wt_dgram;

enum wt_draft {
    WT_DRAFT02 = 2,
    WT_DRAFT07 = 7,
    WT_DRAFT14 = 14, /* :protocol webtransport, SETTINGS_WT_MAX_SESSIONS */
    WT_DRAFT15 = 15, /* webtransport-h3, SETTINGS_WT_ENABLED (and -16) */
};

/* The two spellings of the subprotocol headers: the drafts'
 * (WT-Available-Protocols: a List of Strings / WT-Protocol) and Google
 * quiche's (WebTransport-Subprotocols-Available: a List of Tokens /
 * WebTransport-Subprotocol). */
enum wt_proto_hdr {
    WT_PROTO_HDR_WT = 0,
    WT_PROTO_HDR_QUICHE = 1,
};

enum wt_stream_state {
    WT_STRM_CLASSIFY, /* peer stream whose prefix is still arriving */
    WT_STRM_PENDING,  /* names a session that is not established yet */
    WT_STRM_OPEN,     /* belongs to an open session; the handler sees it */
    WT_STRM_DETACHED, /* rejected or its session is gone; awaits close */
};

struct wt_stream {
    struct quic_conn *qc;
    struct wt_session *session;
    int64_t id;
    uint64_t session_id;
    enum wt_stream_state state;
    unsigned bidi : 1, local : 1, fin_recv : 1, fin_queued : 1, fin_sent : 1,
        write_closed : 1, blocked : 1, in_wq : 1, in_gc : 1,
        kept : 1,        /* the handler keeps its bytes past its end */
        quic_closed : 1, /* ngtcp2 is done with it (PENDING: complete) */
        fc_counted : 1,  /* counted against its session's flow control */
        fc_done : 1,     /* ... and its stream credit given back */
        fc_wait : 1;     /* out of the session's send credit (WT_MAX_DATA) */
    uint8_t prefix[16];
    uint8_t prefix_len;
    uint8_t hdr_len;    /* the peer's prefix, once classified */
    uint8_t out_prefix; /* prefix bytes at the start of `out` (ours) */
    struct buf out;     /* bytes to send; kept until acked */
    struct buf held;    /* bytes received while PENDING */
    /* Received bytes past the prefix, and how many of them were credited
     * back: the rest is credited when the handler's view ends. */
    uint64_t rx_delivered, rx_consumed;
    /* ... and those counted for its session beyond rx_delivered: bytes
     * that came after it detached, and the part of a reset's final size
     * that never came (count_final_size: so a second count adds nothing) */
    uint64_t rx_detached;
    void *hdata;        /* the handler's */
    ev_tstamp pending_since;
    LIST_ENTRY(wt_stream) s_link;   /* session's streams */
    LIST_ENTRY(wt_stream) fc_link;  /* session's fc_waiters (fc_wait) */
    TAILQ_ENTRY(wt_stream) wq_link; /* connection's write queue */
    LIST_ENTRY(wt_stream) a_link;   /* every stream of the connection */
    TAILQ_ENTRY(wt_stream) p_link;  /* waiting for its session, oldest first */
    struct wt_stream *gc_next;      /* to be freed */
};

LIST_HEAD(wt_stream_list, wt_stream);

/*
 * Session flow control (draft-ietf-webtrans-http3-14..16 §5), on when both
 * sides declared it in their SETTINGS.  Index [0] uni, [1] bidi.  Bytes
 * are stream bodies (prefixes excluded, §5.4), streams are cumulative
 * (§5.6.2).  rx: what the peer sends us, bounded by what we advertised;
 * tx: what we send, bounded by the peer's limits.
 */
struct wt_fc {
    int on;
    uint64_t rx_max_data, rx_data, rx_consumed, win_data;
    uint64_t rx_max_streams[2], rx_streams[2], rx_done[2], win_streams[2];
    uint64_t tx_max_data, tx_data, tx_blocked_at;
    uint64_t tx_max_streams[2], tx_streams[2], tx_sblocked_at[2];
    uint64_t updates_sent, blocked_sent; /* for the log */
};
TAILQ_HEAD(wt_stream_queue, wt_stream);

struct wt_session {
    struct quic_conn *qc;
    struct h3_request *req; /* NULL once the CONNECT stream is closed */
    int64_t id;             /* = the CONNECT stream's id */
    enum wt_draft draft;
    int connecting; /* client: CONNECT sent, no final response yet */
    /* the session id our streams name: s->id, unless a test tool wants
     * them to name another */
    uint64_t stream_prefix_id;
    int open; /* 0 once closed: handler told, streams detached */
    int aborted; /* ended by a reset, a protocol error or the connection */
    int draining;
    int slot_freed; /* session_streams_available is due */
    const struct wt_handler_ops *ops;
    const struct config_route *route; /* server sessions */
    struct metrics_route *metrics;    /* ... its route's counters */
    void *hdata;
    char *protocol; /* the negotiated subprotocol, NULL for none */
    char *offer;    /* client: the offer we sent (header value), or NULL */
    enum wt_proto_hdr offer_hdr; /* ... in this spelling */
    struct buf caps; /* capsules to send on the CONNECT stream */
    int caps_fin;    /* FIN after them */
    /* capsule parser */
    struct wire_capsule_reader crd;
    uint8_t *cval; /* the value of a capsule being read (the ones acted
                      on); allocated per capsule: idle sessions stay small */
    int cskip;     /* the current capsule's value is not kept */
    int cdead;     /* the parser refused the stream: the rest is ignored */
    struct wt_stream_list streams;
    /* ... of them, those waiting for WT_MAX_DATA: woken without walking
     * every stream on each capsule */
    struct wt_stream_list fc_waiters;
    size_t nstreams;
    /* ... of them, opened by us: they count apart from the peer's, so a
     * handler that opens many (a broadcast member's relayed copies) never
     * leaves the peer without room for its own */
    size_t nlocal;
    /* what the handler keeps of streams that have ended (wt_stream_keep):
     * their slots count against max_streams_per_session, their bytes
     * against the connection's window until wt_session_release() */
    size_t kept_slots;
    uint64_t kept_bytes;
    size_t ndgrams; /* queued for sending */
    struct wt_fc fc;
    /* totals for the close log line */
    ev_tstamp opened;
    uint64_t streams_total, rx_bytes, tx_bytes, dgrams_in, dgrams_out;
    uint64_t streams_local; /* of streams_total, opened by us */
    uint64_t dgram_capsules_in, dgram_capsules_out, dgram_capsules_dropped;
    ev_timer expire;
    LIST_ENTRY(wt_session) link;
    struct wt_session *gc_next;
};

LIST_HEAD(wt_session_list, wt_session);

#define WT_GONE_RING 32
#define WT_CVAL_MAX (4 + 1024) /* code + the longest reason a CLOSE has */
/* The largest DATAGRAM capsule taken (RFC 9297 §3.5), = our
 * max_datagram_frame_size: a larger one is dropped, as a QUIC datagram
 * too large would be. */
#define WT_DGRAM_CAPSULE_MAX 65535

struct wt_conn {
    struct wt_stream_list all;       /* every wt_stream, for teardown */
    struct wt_session_list sessions; /* open and closing */
    size_t nopen;
    struct wt_stream_queue wq;       /* streams with something to send */
    struct wt_stream_queue pending;  /* waiting for their session */
    size_t npending;
    ev_timer pending_timer;          /* the oldest one's pending_timeout */
    int slot_freed;                  /* some session's slot_freed is set */
    struct wt_dgram *dq_head, *dq_tail;
    /* how datagrams go, once known: 1 QUIC datagrams, 2 capsules */
    int dgram_mode;
    struct wt_stream *gc_streams;
    struct wt_session *gc_sessions;
    uint64_t gone[WT_GONE_RING]; /* ids of recently ended sessions */
    size_t ngone;
    uint64_t dgrams_dropped;
};

/* ---- handler API ---- */

/*
 * Queues bytes (copied) and optionally FIN.  -1 when the stream can no
 * longer send, or when the bytes would take the stream past the
 * configured max_buffer_bytes (nothing is queued then).
 */
int wt_stream_write(struct wt_stream *st, const uint8_t *p, size_t n, int fin);
/* How many more bytes wt_stream_write would take now (0 when the stream
 * cannot be written). */
size_t wt_stream_room(const struct wt_stream *st);
/* The same for bytes [off, off + n) of a shared block, by reference: data
 * fanned out to many streams is held once (buf.h). */
int wt_stream_write_shared(struct wt_stream *st, struct buf_shared *b,
                           size_t off, size_t n, int fin);
/* Returns flow-control credit for n received bytes the handler is done
 * with. */
void wt_stream_consume(struct wt_stream *st, size_t n);
/* Handler bytes written on this stream that the peer has acknowledged. */
uint64_t wt_stream_acked(const struct wt_stream *st);
/* Aborts both directions with a WebTransport application error code. */
void wt_stream_reset(struct wt_stream *st, uint32_t code);
/*
 * From the handler's stream_close only: the handler keeps this stream's
 * received bytes that it has not consumed (an echo still to be sent, bytes
 * still to be written to a backend), and the stream's slot, past the
 * stream's end.  They keep counting against the connection's window and
 * the session's max_streams_per_session until the handler gives them back
 * with wt_session_release(); the session's end gives back what is left.
 */
void wt_stream_keep(struct wt_stream *st);
/* Gives back n kept bytes (their flow-control credit) and, with `slot`,
 * one kept stream's slot. */
void wt_session_release(struct wt_session *s, uint64_t n, int slot);
/* After session_close: 1 when the session did not end by a CLOSE capsule
 * or FIN (its CONNECT stream was reset, a protocol error, the connection
 * was lost), so what the handler relays should be aborted, not ended. */
int wt_session_aborted(const struct wt_session *s);
/* Server-opened stream, or NULL while the peer's stream limit is reached
 * (session_streams_available fires when it lifts). */
struct wt_stream *wt_session_open_stream(struct wt_session *s, int bidi);
/* Queues a datagram; -1 when dropped (queue full or too large). */
int wt_session_send_datagram(struct wt_session *s, const uint8_t *p,
                             size_t n);
/* Queues raw bytes (capsules, or anything: test tools) on the session's
 * request stream.  -1 when the stream is already finished. */
int wt_session_send_raw(struct wt_session *s, const uint8_t *p, size_t n);
/* Closes the session with a CLOSE_WEBTRANSPORT_SESSION capsule; a client
 * session still waiting for its answer is cancelled instead (its CONNECT
 * stream reset with H3_REQUEST_CANCELLED).  session_close is heard once
 * either way. */
void wt_session_close(struct wt_session *s, uint32_t code, const char *reason,
                      size_t reasonlen);
uint64_t wt_session_max_buffer(const struct wt_session *s);
/* "conn 12 198.51.100.7:5000: session 4", as wt's own log lines name a
 * session: for handlers' log lines. */
const char *wt_session_name(const struct wt_session *s, char *buf,
                            size_t len);
/* The request's :path, query included, and :authority (server sessions,
 * from session_open until the CONNECT stream closes; NULL after). */
const char *wt_session_path(const struct wt_session *s);
const char *wt_session_authority(const struct wt_session *s);
/* The client's address and the daemon's address it reached (the
 * connection's current path). */
void wt_session_addresses(const struct wt_session *s,
                          struct sockaddr_storage *peer, socklen_t *plen,
                          struct sockaddr_storage *local, socklen_t *llen);
/* The loop the session lives in (for a handler's own watchers). */
struct ev_loop *wt_session_loop(const struct wt_session *s);
/* The largest datagram payload the session can send on its path now. */
size_t wt_session_max_datagram(const struct wt_session *s);
/* The subprotocol negotiated for the session (the route's choice among
 * the client's offer; for client sessions, the server's valid answer), or
 * NULL when there is none. */
const char *wt_session_protocol(const struct wt_session *s);

/* Client sessions. */
struct wt_connect_opts {
    const char *authority; /* "host:port" */
    const char *path;
    const char *origin; /* NULL: no Origin header */
    enum wt_draft draft;
    /* subprotocols to offer, most preferred first (none: no header) */
    const char *const *protocols;
    size_t nprotocols;
    enum wt_proto_hdr protocol_hdr;
    /* more request header fields, name/value pairs, sent as they are
     * (tests of the server) */
    const char *const *headers;
    size_t nheaders; /* pairs, at most WT_CONNECT_MAX_HEADERS */
};
#define WT_CONNECT_MAX_HEADERS 4

/*
 * Opens a session on a client connection whose server SETTINGS are known
 * (quic_conn_ops.ready): checks that the server offers WebTransport in the
 * requested draft, sends the extended CONNECT, and later tells `ops`:
 * session_open on a 2xx answer, session_rejected otherwise.  NULL with a
 * message in err when it cannot even be sent.
 */
struct wt_session *wt_session_connect(struct quic_conn *qc,
                                      const struct wt_connect_opts *o,
                                      const struct wt_handler_ops *ops,
                                      void *hdata, char *err, size_t errlen);
const char *wt_draft_name(enum wt_draft d);

static inline int64_t wt_stream_id(const struct wt_stream *st)
{
    return st->id;
}
static inline int wt_stream_is_bidi(const struct wt_stream *st)
{
    return st->bidi;
}
static inline int wt_stream_is_local(const struct wt_stream *st)
{
    return st->local;
}
static inline struct wt_session *wt_stream_session(const struct wt_stream *st)
{
    return st->session;
}

/* ---- for quic.c and h3.c ---- */

void wt_conn_init(struct quic_conn *qc);
/* Closes every session (handlers told) and frees everything wt holds. */
void wt_conn_free(struct quic_conn *qc);
/* Frees what was closed during the last callbacks. */
void wt_conn_collect(struct quic_conn *qc);
/* Sends DRAIN_WEBTRANSPORT_SESSION on every open session. */
void wt_conn_drain(struct quic_conn *qc);
/* Closes every open session with a CLOSE capsule. */
void wt_conn_close_sessions(struct quic_conn *qc, uint32_t code,
                            const char *reason);
size_t wt_conn_open_sessions(const struct quic_conn *qc);
/* Any session object left, open or not (its CONNECT stream not closed)? */
int wt_conn_has_sessions(const struct quic_conn *qc);

int wt_is_stream(const void *stream_user_data);
int wt_on_stream_data(struct quic_conn *qc, int64_t id, struct wt_stream *st,
                      const uint8_t *p, size_t n, int fin);
void wt_on_stream_close(struct quic_conn *qc, struct wt_stream *st,
                        uint64_t code);
void wt_on_stream_reset(struct quic_conn *qc, struct wt_stream *st,
                        uint64_t code, uint64_t final_size);
void wt_on_acked(struct quic_conn *qc, struct wt_stream *st, uint64_t n);
void wt_on_extend_max_stream_data(struct quic_conn *qc, struct wt_stream *st);
void wt_on_streams_available(struct quic_conn *qc);
void wt_on_datagram(struct quic_conn *qc, const uint8_t *p, size_t n);

/* Before each write: handler calls deferred out of ngtcp2's callbacks
 * (streams available again). */
void wt_conn_service(struct quic_conn *qc);

/* Write loop. */
struct wt_stream *wt_next_stream(struct quic_conn *qc);
size_t wt_stream_peek(struct wt_stream *st, ngtcp2_vec *vec, size_t nvec,
                      int *fin);
void wt_stream_sent(struct wt_stream *st, size_t n, int fin_sent);
void wt_stream_blocked(struct wt_stream *st);
void wt_stream_shut_wr(struct wt_stream *st);
int wt_datagram_pending(const struct quic_conn *qc);
size_t wt_datagram_peek(struct quic_conn *qc, ngtcp2_vec *vec);
void wt_datagram_pop(struct quic_conn *qc, int sent);

/* From h3.c. */
int wt_on_connect(struct quic_conn *qc, struct h3_request *req);
/* Subprotocol negotiation (wt_protocol.c).  Server: picks the session's
 * subprotocol (s->protocol) from the request's offer and the route's
 * preference; 0, with the response header in hdr[0] (name) and hdr[1]
 * (value, in val) when one was chosen (hdr[0] NULL otherwise), or the
 * HTTP status that refuses the session (the route requires a protocol
 * and the offer has none of them). */
int wt_protocol_select(struct wt_session *s, const struct h3_request *req,
                       const char *hdr[2], char *val, size_t vallen);
/* Client: the offer header for o (s->offer; hdr[0] NULL when there is
 * nothing to offer).  -1 when a protocol cannot be sent in the spelling. */
int wt_protocol_offer(struct wt_session *s, const struct wt_connect_opts *o,
                      const char *hdr[2]);
/* Client: reads the server's answer into s->protocol (a value we did not
 * offer, or a malformed field, is ignored). */
void wt_protocol_answer(struct wt_session *s, const struct h3_request *req);
/* A request on stream `id` was refused (or was not a CONNECT): streams
 * naming it as their session are refused now and later. */
void wt_session_refused(struct quic_conn *qc, int64_t id);
/* The peer reset the CONNECT stream (RESET_STREAM with `code`). */
void wt_on_connect_reset(struct wt_session *s, uint64_t code);
int wt_on_response(struct wt_session *s, int fin);
struct wt_session *wt_session_find(struct quic_conn *qc, int64_t id);
int wt_on_capsule_data(struct wt_session *s, const uint8_t *p, size_t n);
void wt_on_connect_fin(struct wt_session *s);
void wt_on_connect_closed(struct wt_session *s, uint64_t code);
ssize_t wt_capsules_read(struct wt_session *s, struct iovec *vec,
                         size_t nvec, uint32_t *pflags);
void wt_capsules_acked(struct wt_session *s, uint64_t n);

#endif
