/*
 * wire: pure codecs for WebTransport over HTTP/3 (see wire.h).  Owns the
 * byte layout of varints, HTTP/3 frame headers, SETTINGS and GOAWAY,
 * capsules, WebTransport stream prefixes, HTTP datagram framing and the
 * WebTransport error-code mapping.  No I/O, no allocation, no state.
 */
#include "wire.h"

#include <string.h>

#include "utf8.h"

/* ---- varints (RFC 9000 §16) ---- */

size_t wire_varint_len(uint64_t v)
{
    if (v < 0x40)
        return 1;
    if (v < 0x4000)
        return 2;
    if (v < 0x40000000)
        return 4;
    if (v <= WIRE_VARINT_MAX)
        return 8;
    return 0;
}

ssize_t wire_varint_encode(uint8_t *buf, size_t cap, uint64_t v)
{
    size_t len = wire_varint_len(v);
    static const uint8_t prefix[9] = {0, 0x00, 0x40, 0, 0x80, 0, 0, 0, 0xc0};

    if (len == 0)
        return WIRE_ERR_MALFORMED;
    if (cap < len)
        return WIRE_ERR_NOBUF;
    for (size_t i = len; i-- > 0; v >>= 8)
        buf[i] = (uint8_t)v;
    buf[0] |= prefix[len];
    return (ssize_t)len;
}

ssize_t wire_varint_decode(const uint8_t *p, size_t n, uint64_t *v)
{
    size_t len;
    uint64_t x;

    if (n == 0)
        return WIRE_ERR_SHORT;
    len = (size_t)1 << (p[0] >> 6);
    if (n < len)
        return WIRE_ERR_SHORT;
    /* Longer-than-needed encodings are valid (RFC 9000 §16). */
    x = p[0] & 0x3f;
    for (size_t i = 1; i < len; i++)
        x = (x << 8) | p[i];
    *v = x;
    return (ssize_t)len;
}

/* Two varints back to back: the shape of frame and capsule headers. */
static ssize_t pair_decode(const uint8_t *p, size_t n, uint64_t *a,
                           uint64_t *b)
{
    ssize_t l1, l2;

    l1 = wire_varint_decode(p, n, a);
    if (l1 < 0)
        return l1;
    l2 = wire_varint_decode(p + l1, n - (size_t)l1, b);
    if (l2 < 0)
        return l2;
    return l1 + l2;
}

static ssize_t pair_encode(uint8_t *buf, size_t cap, uint64_t a, uint64_t b)
{
    size_t l1 = wire_varint_len(a), l2 = wire_varint_len(b);

    if (l1 == 0 || l2 == 0)
        return WIRE_ERR_MALFORMED;
    if (cap < l1 + l2)
        return WIRE_ERR_NOBUF;
    wire_varint_encode(buf, cap, a);
    wire_varint_encode(buf + l1, cap - l1, b);
    return (ssize_t)(l1 + l2);
}

/* type, length, then a payload of one varint: what a GOAWAY frame and the
 * flow-control capsules are (frames and capsules share the layout) */
static ssize_t one_varint_encode(uint8_t *buf, size_t cap, uint64_t type,
                                 uint64_t v)
{
    size_t l = wire_varint_len(v);
    ssize_t h;

    if (l == 0)
        return WIRE_ERR_MALFORMED;
    h = pair_encode(buf, cap, type, l);
    if (h < 0)
        return h;
    if (cap - (size_t)h < l)
        return WIRE_ERR_NOBUF;
    wire_varint_encode(buf + h, cap - (size_t)h, v);
    return h + (ssize_t)l;
}

/* ---- HTTP/3 frames (RFC 9114 §7) ---- */

ssize_t wire_frame_header_decode(const uint8_t *p, size_t n, uint64_t *type,
                                 uint64_t *len)
{
    return pair_decode(p, n, type, len);
}

ssize_t wire_frame_header_encode(uint8_t *buf, size_t cap, uint64_t type,
                                 uint64_t len)
{
    return pair_encode(buf, cap, type, len);
}

ssize_t wire_settings_encode(uint8_t *buf, size_t cap,
                             const struct wire_setting *s, size_t n)
{
    size_t payload = 0, off;
    ssize_t h;

    for (size_t i = 0; i < n; i++) {
        size_t a = wire_varint_len(s[i].id), b = wire_varint_len(s[i].value);

        if (a == 0 || b == 0)
            return WIRE_ERR_MALFORMED;
        payload += a + b;
    }
    h = wire_frame_header_encode(buf, cap, WIRE_H3_FRAME_SETTINGS, payload);
    if (h < 0)
        return h;
    if (cap - (size_t)h < payload)
        return WIRE_ERR_NOBUF;
    off = (size_t)h;
    for (size_t i = 0; i < n; i++)
        off += (size_t)pair_encode(buf + off, cap - off, s[i].id, s[i].value);
    return (ssize_t)off;
}

ssize_t wire_settings_decode(const uint8_t *p, size_t n,
                             struct wire_setting *out, size_t max,
                             size_t *count)
{
    size_t off = 0, k = 0;

    while (off < n) {
        uint64_t id, value;
        ssize_t r = pair_decode(p + off, n - off, &id, &value);

        /* The frame length is known: a pair cut short is malformed. */
        if (r < 0)
            return WIRE_ERR_MALFORMED;
        off += (size_t)r;
        if (k < max) {
            /* RFC 9114 §7.2.4: the same identifier twice is an error. */
            for (size_t i = 0; i < k; i++)
                if (out[i].id == id)
                    return WIRE_ERR_MALFORMED;
            out[k].id = id;
            out[k].value = value;
        }
        k++;
    }
    *count = k;
    return (ssize_t)n;
}

ssize_t wire_control_settings_decode(const uint8_t *p, size_t n, size_t cap,
                                     struct wire_setting *out, size_t max,
                                     size_t *count, const char **why)
{
    uint64_t stype, ftype, flen;
    ssize_t a, b;

    *why = NULL;
    a = wire_varint_decode(p, n, &stype);
    if (a < 0)
        return a;
    b = wire_frame_header_decode(p + a, n - (size_t)a, &ftype, &flen);
    /* a frame header fits in 16 bytes: SHORT with a full buffer cannot be */
    if (b == WIRE_ERR_SHORT && n < cap)
        return b;
    if (b < 0 || ftype != WIRE_H3_FRAME_SETTINGS) {
        *why = "the control stream does not start with SETTINGS";
        return WIRE_ERR_MALFORMED;
    }
    if ((size_t)(a + b) > cap || flen > cap - (size_t)(a + b)) {
        *why = "SETTINGS frame too large";
        return WIRE_ERR_MALFORMED;
    }
    if (n < (size_t)(a + b) + flen)
        return WIRE_ERR_SHORT;
    if (wire_settings_decode(p + a + b, (size_t)flen, out, max, count) < 0) {
        *why = "malformed SETTINGS";
        return WIRE_ERR_MALFORMED;
    }
    return a + b + (ssize_t)flen;
}

ssize_t wire_goaway_encode(uint8_t *buf, size_t cap, uint64_t id)
{
    return one_varint_encode(buf, cap, WIRE_H3_FRAME_GOAWAY, id);
}

/* ---- capsules (RFC 9297 §3.2) ---- */

ssize_t wire_capsule_header_decode(const uint8_t *p, size_t n, uint64_t *type,
                                   uint64_t *len)
{
    return pair_decode(p, n, type, len);
}

ssize_t wire_close_capsule_encode(uint8_t *buf, size_t cap, uint32_t code,
                                  const char *reason, size_t reasonlen)
{
    ssize_t h;

    if (reasonlen > WIRE_CLOSE_REASON_MAX)
        return WIRE_ERR_MALFORMED;
    h = pair_encode(buf, cap, WIRE_CAPSULE_CLOSE_SESSION, 4 + reasonlen);
    if (h < 0)
        return h;
    if (cap - (size_t)h < 4 + reasonlen)
        return WIRE_ERR_NOBUF;
    buf[h] = (uint8_t)(code >> 24);
    buf[h + 1] = (uint8_t)(code >> 16);
    buf[h + 2] = (uint8_t)(code >> 8);
    buf[h + 3] = (uint8_t)code;
    if (reasonlen)
        memcpy(buf + h + 4, reason, reasonlen);
    return h + 4 + (ssize_t)reasonlen;
}

int wire_close_capsule_decode(const uint8_t *value, size_t len, uint32_t *code,
                              const char **reason, size_t *reasonlen)
{
    /* draft-ietf-webtrans-http3 §5: a 32-bit code, then at most 1024
     * bytes of UTF-8. */
    if (len < 4 || len - 4 > WIRE_CLOSE_REASON_MAX ||
        !utf8_valid(value + 4, len - 4))
        return WIRE_ERR_MALFORMED;
    *code = (uint32_t)value[0] << 24 | (uint32_t)value[1] << 16 |
            (uint32_t)value[2] << 8 | value[3];
    *reason = (const char *)value + 4;
    *reasonlen = len - 4;
    return 0;
}

ssize_t wire_drain_capsule_encode(uint8_t *buf, size_t cap)
{
    return pair_encode(buf, cap, WIRE_CAPSULE_DRAIN_SESSION, 0);
}

ssize_t wire_capsule_header_encode(uint8_t *buf, size_t cap, uint64_t type,
                                   uint64_t len)
{
    return pair_encode(buf, cap, type, len);
}

ssize_t wire_varint_capsule_encode(uint8_t *buf, size_t cap, uint64_t type,
                                   uint64_t v)
{
    return one_varint_encode(buf, cap, type, v);
}

int wire_varint_capsule_decode(const uint8_t *value, size_t len, uint64_t *v)
{
    uint64_t x;
    ssize_t r = wire_varint_decode(value, len, &x);

    /* RFC 9297 §3.2: a value that does not fill its length exactly (cut
     * short, or bytes after the varint) is malformed */
    if (r < 0 || (size_t)r != len)
        return WIRE_ERR_MALFORMED;
    *v = x;
    return 0;
}

size_t wire_capsule_next(struct wire_capsule_reader *r, const uint8_t *p,
                         size_t n, enum wire_capsule_event *ev,
                         const uint8_t **value, size_t *valuelen)
{
    size_t take;

    if (!r->in) {
        ssize_t h;

        take = sizeof(r->hdr) - r->hdrlen < n ? sizeof(r->hdr) - r->hdrlen
                                              : n;
        memcpy(r->hdr + r->hdrlen, p, take);
        /* two varints never exceed the 16 bytes: SHORT means more input */
        h = pair_decode(r->hdr, r->hdrlen + take, &r->type, &r->len);
        if (h < 0) {
            r->hdrlen += take;
            *ev = WIRE_CAPSULE_NEED;
            return take;
        }
        take = (size_t)h - r->hdrlen;
        r->hdrlen = 0;
        r->in = 1;
        r->got = 0;
        *ev = WIRE_CAPSULE_HEADER;
        return take;
    }
    if (r->got == r->len) {
        r->in = 0;
        *ev = WIRE_CAPSULE_END;
        return 0;
    }
    take = r->len - r->got < n ? (size_t)(r->len - r->got) : n;
    if (take == 0) {
        *ev = WIRE_CAPSULE_NEED;
        return 0;
    }
    r->got += take;
    *value = p;
    *valuelen = take;
    *ev = WIRE_CAPSULE_VALUE;
    return take;
}

/* ---- WebTransport stream prefixes ---- */

ssize_t wire_stream_prefix_decode(const uint8_t *p, size_t n, int bidi,
                                  enum wire_stream_kind *kind,
                                  uint64_t *session_id, uint64_t *first)
{
    uint64_t f, sid;
    ssize_t l1, l2;

    l1 = wire_varint_decode(p, n, &f);
    if (l1 < 0)
        return l1;
    if (first)
        *first = f;
    if (f != (bidi ? WIRE_WT_BIDI_SIGNAL : WIRE_WT_UNI_STREAM_TYPE)) {
        *kind = WIRE_STREAM_OTHER;
        return l1;
    }
    l2 = wire_varint_decode(p + l1, n - (size_t)l1, &sid);
    if (l2 < 0)
        return l2;
    /* A session is named by its CONNECT stream: client-initiated bidi. */
    if (sid % 4 != 0)
        return WIRE_ERR_MALFORMED;
    *kind = WIRE_STREAM_WT;
    *session_id = sid;
    return l1 + l2;
}

ssize_t wire_stream_prefix_encode(uint8_t *buf, size_t cap, int bidi,
                                  uint64_t session_id)
{
    if (session_id % 4 != 0)
        return WIRE_ERR_MALFORMED;
    return pair_encode(buf, cap,
                       bidi ? WIRE_WT_BIDI_SIGNAL : WIRE_WT_UNI_STREAM_TYPE,
                       session_id);
}

/* ---- HTTP datagrams (RFC 9297 §2.1) ---- */

ssize_t wire_datagram_decode(const uint8_t *p, size_t n, uint64_t *session_id)
{
    uint64_t q;
    ssize_t l = wire_varint_decode(p, n, &q);

    /* A datagram is whole: a cut prefix is malformed, not short. */
    if (l < 0)
        return WIRE_ERR_MALFORMED;
    if (q > WIRE_VARINT_MAX / 4)
        return WIRE_ERR_MALFORMED;
    *session_id = q * 4;
    return l;
}

ssize_t wire_datagram_header_encode(uint8_t *buf, size_t cap,
                                    uint64_t session_id)
{
    if (session_id % 4 != 0)
        return WIRE_ERR_MALFORMED;
    return wire_varint_encode(buf, cap, session_id / 4);
}

/* ---- error codes (draft-07 and later §4.3) ---- */

uint64_t wire_wt_error_to_h3(uint32_t code)
{
    /* Every 0x1f-th value in the range is a reserved GREASE codepoint. */
    return WIRE_WT_ERROR_FIRST + code + code / 0x1e;
}

int wire_wt_error_from_h3(uint64_t h, uint32_t *code)
{
    uint64_t s;

    if (h < WIRE_WT_ERROR_FIRST || h > WIRE_WT_ERROR_LAST ||
        (h - 0x21) % 0x1f == 0)
        return -1;
    s = h - WIRE_WT_ERROR_FIRST;
    *code = (uint32_t)(s - s / 0x1f);
    return 0;
}
