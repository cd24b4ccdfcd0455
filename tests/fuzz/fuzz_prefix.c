/*
 * The first bytes of a peer's stream (the WebTransport stream-prefix
 * classifier, wire_stream_prefix_decode) and the quarter-stream-ID of an
 * HTTP datagram (wire_datagram_decode), src/wire.c.
 *
 * Input: one byte (its low bit: a bidirectional stream or not), then the
 * stream's first bytes / the datagram.
 *
 * Properties: the classifier answers SHORT while the prefix is cut, then
 * the same answer for every longer input (bytes arrive in any splits);
 * a WebTransport prefix is at most 16 bytes and names a client-initiated
 * bidirectional stream; it re-encodes to a prefix that decodes the same.
 * A datagram names a session id divisible by 4, never past the varint
 * range, and its header re-encodes.
 */
#include "fuzz.h"
#include "wire.h"

static void check_prefix(const uint8_t *p, size_t n, int bidi)
{
    enum wire_stream_kind kind = WIRE_STREAM_OTHER, k2;
    uint64_t sid = 0, first = 0, s2, f2;
    ssize_t r = WIRE_ERR_SHORT;
    size_t m;

    /* the shortest input that gets an answer */
    for (m = 0; m <= n && m <= 17; m++) {
        r = wire_stream_prefix_decode(p, m, bidi, &kind, &sid, &first);
        if (r != WIRE_ERR_SHORT)
            break;
    }
    if (r == WIRE_ERR_SHORT) {
        FUZZ_CHECK(n < 16); /* two varints never need more */
        return; /* cut short: all of the input was not enough */
    }
    FUZZ_CHECK(m <= 16);
    /* every longer input: the same answer */
    for (size_t l = m + 1; l <= n && l <= m + 24; l++) {
        ssize_t r2 = wire_stream_prefix_decode(p, l, bidi, &k2, &s2, &f2);

        FUZZ_CHECK(r2 == r);
        if (r >= 0) {
            FUZZ_CHECK(k2 == kind && f2 == first);
            if (kind == WIRE_STREAM_WT)
                FUZZ_CHECK(s2 == sid);
        }
    }
    if (r == WIRE_ERR_MALFORMED) {
        FUZZ_CHECK(first == (bidi ? WIRE_WT_BIDI_SIGNAL : WIRE_WT_UNI_STREAM_TYPE));
        return;
    }
    FUZZ_CHECK(r > 0 && (size_t)r == m);
    if (kind == WIRE_STREAM_OTHER) {
        FUZZ_CHECK(first != (bidi ? WIRE_WT_BIDI_SIGNAL
                                  : WIRE_WT_UNI_STREAM_TYPE));
        FUZZ_CHECK((size_t)r == (size_t)1 << (p[0] >> 6));
        return;
    }
    FUZZ_CHECK(kind == WIRE_STREAM_WT && sid % 4 == 0 && r <= 16);
    {
        uint8_t buf[16];
        ssize_t e = wire_stream_prefix_encode(buf, sizeof(buf), bidi, sid);

        FUZZ_CHECK(e > 0 && e <= r);
        FUZZ_CHECK(wire_stream_prefix_decode(buf, (size_t)e, bidi, &k2, &s2,
                                             &f2) == e);
        FUZZ_CHECK(k2 == WIRE_STREAM_WT && s2 == sid && f2 == first);
        /* the other direction's decoder never takes it as WebTransport */
        FUZZ_CHECK(wire_stream_prefix_decode(buf, (size_t)e, !bidi, &k2, &s2,
                                             &f2) == 1 ||
                   k2 == WIRE_STREAM_OTHER);
    }
}

static void check_datagram(const uint8_t *p, size_t n)
{
    uint64_t sid, s2;
    ssize_t l = wire_datagram_decode(p, n, &sid);
    uint8_t buf[8];
    ssize_t e;

    if (l < 0) {
        FUZZ_CHECK(l == WIRE_ERR_MALFORMED);
        return;
    }
    FUZZ_CHECK(l >= 1 && (size_t)l <= n && sid % 4 == 0);
    FUZZ_CHECK(sid / 4 <= WIRE_VARINT_MAX / 4);
    e = wire_datagram_header_encode(buf, sizeof(buf), sid);
    FUZZ_CHECK(e > 0 && e <= l);
    FUZZ_CHECK(wire_datagram_decode(buf, (size_t)e, &s2) == e && s2 == sid);
    /* an id that is not a multiple of 4 names no session */
    FUZZ_CHECK(wire_datagram_header_encode(buf, sizeof(buf), sid | 1) ==
               WIRE_ERR_MALFORMED);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    int bidi = fuzz_u8(&in) & 1;

    check_prefix(in.p, in.n, bidi);
    check_datagram(in.p, in.n);
    return 0;
}
