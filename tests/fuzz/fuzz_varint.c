/*
 * Varints (RFC 9000 §16), HTTP/3 frame headers, GOAWAY, and the
 * WebTransport <-> HTTP/3 error-code mapping (src/wire.c).
 *
 * Properties: a decoded varint has the length its first two bits say and
 * a value below 2^62; re-encoded it decodes to the same value in the
 * shortest form, which is the input itself when the input was shortest;
 * any 64-bit value encodes (or is refused above 2^62 - 1) and round-trips;
 * error codes map both ways, and no GREASE codepoint maps back.
 */
#include "fuzz.h"
#include "wire.h"

static void check_varint(const uint8_t *p, size_t n)
{
    uint64_t v, w;
    uint8_t buf[8];
    ssize_t l = wire_varint_decode(p, n, &v), e;

    if (n == 0 || n < ((size_t)1 << (p[0] >> 6))) {
        FUZZ_CHECK(l == WIRE_ERR_SHORT);
        return;
    }
    FUZZ_CHECK(l == (ssize_t)1 << (p[0] >> 6));
    FUZZ_CHECK(v <= WIRE_VARINT_MAX);
    e = wire_varint_encode(buf, sizeof(buf), v);
    FUZZ_CHECK(e > 0 && (size_t)e == wire_varint_len(v) && e <= l);
    FUZZ_CHECK(wire_varint_decode(buf, (size_t)e, &w) == e && w == v);
    if (e == l)
        FUZZ_CHECK(memcmp(buf, p, (size_t)l) == 0);
    /* one byte short of the room it needs: refused, nothing claimed */
    FUZZ_CHECK(wire_varint_encode(buf, (size_t)e - 1, v) == WIRE_ERR_NOBUF);
}

static void check_value(uint64_t v)
{
    uint8_t buf[8], g[16];
    uint64_t w, t, len;
    ssize_t e = wire_varint_encode(buf, sizeof(buf), v), h;

    if (v > WIRE_VARINT_MAX) {
        FUZZ_CHECK(e == WIRE_ERR_MALFORMED && wire_varint_len(v) == 0);
        FUZZ_CHECK(wire_goaway_encode(g, sizeof(g), v) == WIRE_ERR_MALFORMED);
        return;
    }
    FUZZ_CHECK(e > 0 && wire_varint_decode(buf, (size_t)e, &w) == e && w == v);
    /* GOAWAY: a frame header (type 7, length) and the id */
    h = wire_goaway_encode(g, sizeof(g), v);
    FUZZ_CHECK(h > 0);
    {
        ssize_t fh = wire_frame_header_decode(g, (size_t)h, &t, &len);

        FUZZ_CHECK(fh > 0 && t == WIRE_H3_FRAME_GOAWAY &&
                   (size_t)fh + len == (size_t)h);
        FUZZ_CHECK(wire_varint_decode(g + fh, (size_t)len, &w) ==
                       (ssize_t)len && w == v);
    }
}

static void check_error_codes(uint64_t h)
{
    uint32_t code = (uint32_t)h, back;
    uint64_t m = wire_wt_error_to_h3(code);

    FUZZ_CHECK(m >= WIRE_WT_ERROR_FIRST && m <= WIRE_WT_ERROR_LAST);
    FUZZ_CHECK((m - 0x21) % 0x1f != 0); /* never a GREASE codepoint */
    FUZZ_CHECK(wire_wt_error_from_h3(m, &back) == 0 && back == code);
    if (wire_wt_error_from_h3(h, &back) == 0)
        FUZZ_CHECK(wire_wt_error_to_h3(back) == h);
    /* an offset into the range itself */
    m = WIRE_WT_ERROR_FIRST + h % (WIRE_WT_ERROR_LAST - WIRE_WT_ERROR_FIRST + 1);
    if (wire_wt_error_from_h3(m, &back) == 0)
        FUZZ_CHECK(wire_wt_error_to_h3(back) == m);
    else
        FUZZ_CHECK((m - 0x21) % 0x1f == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    uint64_t t, len;
    ssize_t r;

    check_varint(data, size);
    /* a frame header: two varints, SHORT until both are in */
    r = wire_frame_header_decode(data, size, &t, &len);
    FUZZ_CHECK(r == WIRE_ERR_SHORT || (r >= 2 && r <= 16));
    if (r > 0) {
        uint8_t buf[16];
        uint64_t t2, l2;
        ssize_t e = wire_frame_header_encode(buf, sizeof(buf), t, len);

        FUZZ_CHECK(e > 0 && e <= r);
        FUZZ_CHECK(wire_frame_header_decode(buf, (size_t)e, &t2, &l2) == e &&
                   t2 == t && l2 == len);
    }
    while (in.n >= 8) {
        uint64_t v = fuzz_u64(&in);

        check_value(v);
        check_value(v & WIRE_VARINT_MAX);
        check_error_codes(v);
    }
    return 0;
}
