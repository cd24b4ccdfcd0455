/*
 * wire: pure WebTransport-over-HTTP/3 codecs.
 *
 * Varints (RFC 9000 §16), HTTP/3 frame headers, SETTINGS and GOAWAY frames
 * (RFC 9114 §7.2), capsules (RFC 9297 §3), WebTransport stream prefixes and
 * datagram framing (draft-ietf-webtrans-http3), and the WebTransport <->
 * HTTP/3 error-code mapping.  No I/O, no allocation, no globals: every
 * function works on caller-owned buffers, so all of it is unit-tested
 * without sockets.
 *
 * Decoders return the number of bytes consumed (> 0), WIRE_ERR_SHORT when
 * the input ends before the item does (call again with more bytes), or
 * WIRE_ERR_MALFORMED.  Encoders return the number of bytes written, or
 * WIRE_ERR_NOBUF when `cap` is too small (nothing useful is written then).
 */
#ifndef WTRELAYD_WIRE_H
#define WTRELAYD_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define WIRE_ERR_SHORT (-1)
#define WIRE_ERR_MALFORMED (-2)
#define WIRE_ERR_NOBUF (-3)

#define WIRE_VARINT_MAX ((uint64_t)0x3fffffffffffffffULL)
#define WIRE_VARINT_MAXLEN 8

/* HTTP/3 frame types (RFC 9114 §7.2) */
#define WIRE_H3_FRAME_DATA 0x00
#define WIRE_H3_FRAME_HEADERS 0x01
#define WIRE_H3_FRAME_SETTINGS 0x04
#define WIRE_H3_FRAME_GOAWAY 0x07

/* HTTP/3 unidirectional stream types (RFC 9114 §6.2, RFC 9204 §4.2) */
#define WIRE_H3_STREAM_CONTROL 0x00
#define WIRE_H3_STREAM_PUSH 0x01
#define WIRE_H3_STREAM_QPACK_ENC 0x02
#define WIRE_H3_STREAM_QPACK_DEC 0x03

/* SETTINGS identifiers */
#define WIRE_SETTING_QPACK_MAX_TABLE_CAPACITY 0x01
#define WIRE_SETTING_MAX_FIELD_SECTION_SIZE 0x06
#define WIRE_SETTING_QPACK_BLOCKED_STREAMS 0x07
#define WIRE_SETTING_ENABLE_CONNECT_PROTOCOL 0x08   /* RFC 9220 */
#define WIRE_SETTING_H3_DATAGRAM 0x33               /* RFC 9297 */
#define WIRE_SETTING_H3_DATAGRAM_DRAFT04 0xffd277   /* older Chromium */
#define WIRE_SETTING_ENABLE_WEBTRANSPORT 0x2b603742 /* draft-02 */
#define WIRE_SETTING_WT_MAX_SESSIONS_D07 0xc671706a /* draft-07 */
#define WIRE_SETTING_WT_MAX_SESSIONS_D13 0x14e9cd29 /* draft-13/14 */
#define WIRE_SETTING_WT_ENABLED 0x2c7cf000          /* draft-15 */
#define WIRE_SETTING_WT_INITIAL_MAX_DATA 0x2b61
#define WIRE_SETTING_WT_INITIAL_MAX_STREAMS_UNI 0x2b64
#define WIRE_SETTING_WT_INITIAL_MAX_STREAMS_BIDI 0x2b65

/* WebTransport stream prefixes */
#define WIRE_WT_BIDI_SIGNAL 0x41
#define WIRE_WT_UNI_STREAM_TYPE 0x54

/* Capsule types */
#define WIRE_CAPSULE_DATAGRAM 0x00
#define WIRE_CAPSULE_CLOSE_SESSION 0x2843
#define WIRE_CAPSULE_DRAIN_SESSION 0x78ae
#define WIRE_CLOSE_REASON_MAX 1024
/* Session flow control (draft-ietf-webtrans-http3-14..16 §5.6); the value
 * of each is one varint.  WT_MAX_STREAM_DATA and WT_STREAM_DATA_BLOCKED
 * belong to WebTransport over HTTP/2 and are a session error over HTTP/3
 * (§5.4). */
#define WIRE_CAPSULE_WT_MAX_DATA 0x190b4d3dULL
#define WIRE_CAPSULE_WT_MAX_STREAM_DATA 0x190b4d3eULL
#define WIRE_CAPSULE_WT_MAX_STREAMS_BIDI 0x190b4d3fULL
#define WIRE_CAPSULE_WT_MAX_STREAMS_UNI 0x190b4d40ULL
#define WIRE_CAPSULE_WT_DATA_BLOCKED 0x190b4d41ULL
#define WIRE_CAPSULE_WT_STREAM_DATA_BLOCKED 0x190b4d42ULL
#define WIRE_CAPSULE_WT_STREAMS_BLOCKED_BIDI 0x190b4d43ULL
#define WIRE_CAPSULE_WT_STREAMS_BLOCKED_UNI 0x190b4d44ULL
/* §5.6.2: a stream count above 2^60 cannot name a stream */
#define WIRE_WT_MAX_STREAMS_LIMIT (1ULL << 60)

/* HTTP/3 error codes (RFC 9114 §8.1) used by the daemon */
#define WIRE_H3_NO_ERROR 0x100
#define WIRE_H3_GENERAL_PROTOCOL_ERROR 0x101
#define WIRE_H3_INTERNAL_ERROR 0x102
#define WIRE_H3_STREAM_CREATION_ERROR 0x103
#define WIRE_H3_CLOSED_CRITICAL_STREAM 0x104
#define WIRE_H3_FRAME_UNEXPECTED 0x105
#define WIRE_H3_ID_ERROR 0x108
#define WIRE_H3_REQUEST_REJECTED 0x10b
#define WIRE_H3_REQUEST_CANCELLED 0x10c
#define WIRE_H3_MESSAGE_ERROR 0x10e
#define WIRE_H3_DATAGRAM_ERROR 0x33

/* WebTransport error codes in the HTTP/3 space */
#define WIRE_WT_BUFFERED_STREAM_REJECTED 0x3994bd84
#define WIRE_WT_SESSION_GONE 0x170d7b68
#define WIRE_WT_FLOW_CONTROL_ERROR 0x045d4487
#define WIRE_WT_ERROR_FIRST 0x52e4a40fa8dbULL
#define WIRE_WT_ERROR_LAST 0x52e5ac983162ULL

/* ---- varints ---- */
size_t wire_varint_len(uint64_t v); /* 0 when v > WIRE_VARINT_MAX */
ssize_t wire_varint_encode(uint8_t *buf, size_t cap, uint64_t v);
ssize_t wire_varint_decode(const uint8_t *p, size_t n, uint64_t *v);

/* ---- HTTP/3 frames ---- */
/* Frame header: type varint + length varint. */
ssize_t wire_frame_header_decode(const uint8_t *p, size_t n, uint64_t *type,
                                 uint64_t *len);
ssize_t wire_frame_header_encode(uint8_t *buf, size_t cap, uint64_t type,
                                 uint64_t len);

struct wire_setting {
    uint64_t id;
    uint64_t value;
};

/* A whole SETTINGS frame (header included) from `n` settings. */
ssize_t wire_settings_encode(uint8_t *buf, size_t cap,
                             const struct wire_setting *s, size_t n);
/*
 * Decodes the payload of a SETTINGS frame (after the frame header) of
 * exactly `n` bytes.  Fills at most `max` entries of `out` and sets *count to
 * the number of settings present (which may exceed `max`; extra ones are
 * skipped).  Returns n, or WIRE_ERR_MALFORMED (truncated pair, or the same id
 * twice among the first `max`).
 */
ssize_t wire_settings_decode(const uint8_t *p, size_t n,
                             struct wire_setting *out, size_t max,
                             size_t *count);
/*
 * The start of the peer's control stream (RFC 9114 §6.2.1: the stream
 * type, then a SETTINGS frame first), p[0..n) as collected so far into a
 * buffer of `cap` bytes.  WIRE_ERR_SHORT while the frame is not whole;
 * the length of stream type, frame header and payload once it is, with
 * out[0..max) and *count as wire_settings_decode() fills them; or
 * WIRE_ERR_MALFORMED with *why (not SETTINGS first, larger than `cap`, a
 * malformed payload).  Only the payload's bytes decide: the same answer
 * whatever the splits of the stream.
 */
ssize_t wire_control_settings_decode(const uint8_t *p, size_t n, size_t cap,
                                     struct wire_setting *out, size_t max,
                                     size_t *count, const char **why);
/* A whole GOAWAY frame carrying `id`. */
ssize_t wire_goaway_encode(uint8_t *buf, size_t cap, uint64_t id);

/* ---- capsules (RFC 9297 §3.2) ---- */
/* Capsule header: type varint + length varint; the value follows. */
ssize_t wire_capsule_header_decode(const uint8_t *p, size_t n, uint64_t *type,
                                   uint64_t *len);
/*
 * CLOSE_WEBTRANSPORT_SESSION: u32 code (network order) + UTF-8 reason.
 * Encoding fails with WIRE_ERR_MALFORMED if reasonlen > WIRE_CLOSE_REASON_MAX.
 * Decoding takes the capsule *value* (len bytes); the reason points into p.
 */
ssize_t wire_close_capsule_encode(uint8_t *buf, size_t cap, uint32_t code,
                                  const char *reason, size_t reasonlen);
int wire_close_capsule_decode(const uint8_t *value, size_t len, uint32_t *code,
                              const char **reason, size_t *reasonlen);
ssize_t wire_drain_capsule_encode(uint8_t *buf, size_t cap);
/* A capsule header for a value of `len` bytes that the caller writes
 * after it (DATAGRAM capsules: RFC 9297 §3.5). */
ssize_t wire_capsule_header_encode(uint8_t *buf, size_t cap, uint64_t type,
                                   uint64_t len);
/* A whole capsule whose value is the one varint `v` (the flow-control
 * capsules). */
ssize_t wire_varint_capsule_encode(uint8_t *buf, size_t cap, uint64_t type,
                                   uint64_t v);
/* The value of such a capsule (len bytes): exactly one varint, nothing
 * after it; 0 with *v set, or WIRE_ERR_MALFORMED. */
int wire_varint_capsule_decode(const uint8_t *value, size_t len, uint64_t *v);

/*
 * The capsules of a stream, incrementally, whatever the splits of its
 * bytes: wire_capsule_next() takes what it can of p[0..n) and says what it
 * found (a header, a piece of the value, the end of a capsule, or that it
 * needs more input).  The caller decides what to keep of a value; the
 * reader keeps only the header bytes (at most 16).  Zero-initialise.
 */
struct wire_capsule_reader {
    uint8_t hdr[16];
    size_t hdrlen;
    int in; /* inside a capsule value */
    uint64_t type, len, got;
};
enum wire_capsule_event {
    WIRE_CAPSULE_NEED,   /* every byte given was taken: call with more */
    WIRE_CAPSULE_HEADER, /* r->type and r->len are known */
    WIRE_CAPSULE_VALUE,  /* *value, *valuelen: the next piece of the value */
    WIRE_CAPSULE_END,    /* the capsule is complete */
};
/* Returns the bytes of p it took (>= 0); *ev says what happened. */
size_t wire_capsule_next(struct wire_capsule_reader *r, const uint8_t *p,
                         size_t n, enum wire_capsule_event *ev,
                         const uint8_t **value, size_t *valuelen);
/* Stopped inside a capsule (a header or value cut short)? */
static inline int wire_capsule_partial(const struct wire_capsule_reader *r)
{
    return r->in || r->hdrlen > 0;
}

/* ---- WebTransport stream prefixes ---- */
enum wire_stream_kind {
    WIRE_STREAM_OTHER = 0, /* not WebTransport: hand to nghttp3 untouched */
    WIRE_STREAM_WT = 1,    /* WebTransport stream; *session_id is set */
};
/*
 * Classifies the first bytes of a peer-initiated stream.  `bidi` says which
 * kind of stream it is.  On WIRE_STREAM_WT the return value is the prefix
 * length (bytes to strip); on WIRE_STREAM_OTHER it is the length of the
 * first varint (nothing is stripped, the caller passes everything on).
 * WIRE_ERR_SHORT while the prefix is incomplete.  A WT prefix is at most
 * 16 bytes.  `*first` (may be NULL) receives the first varint.
 */
ssize_t wire_stream_prefix_decode(const uint8_t *p, size_t n, int bidi,
                                  enum wire_stream_kind *kind,
                                  uint64_t *session_id, uint64_t *first);
ssize_t wire_stream_prefix_encode(uint8_t *buf, size_t cap, int bidi,
                                  uint64_t session_id);

/* ---- HTTP datagrams (RFC 9297 §2.1) ---- */
/* Quarter stream ID varint; returns its length, payload follows. */
ssize_t wire_datagram_decode(const uint8_t *p, size_t n, uint64_t *session_id);
/* Writes the quarter-stream-ID prefix for `session_id` (must be % 4 == 0). */
ssize_t wire_datagram_header_encode(uint8_t *buf, size_t cap,
                                    uint64_t session_id);

/* ---- error codes (draft-07+ §4.3) ---- */
uint64_t wire_wt_error_to_h3(uint32_t code);
/* 0 and *code set when h is a mapped WebTransport code, else -1. */
int wire_wt_error_from_h3(uint64_t h, uint32_t *code);

#endif
