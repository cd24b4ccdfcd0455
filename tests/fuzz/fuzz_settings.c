/*
 * The SETTINGS frame (RFC 9114 §7.2.4) as the daemon reads the peer's:
 * h3.c collects the control stream's first bytes (the stream type, a
 * frame header, the payload) and hands the payload to
 * wire_settings_decode() with room for H3_MAX_PEER_SETTINGS entries.
 *
 * Input: one byte (how many entries the caller has room for, 0..31), then
 * a control stream as h3.c sees it, or (odd first byte's bit 5) a bare
 * payload.
 *
 * Properties: a payload decodes whole or not at all; the count is of
 * every pair, the kept entries are the first ones, no id twice among
 * them; the kept entries re-encode to a frame that decodes the same; a
 * payload cut inside a pair is malformed.
 */
#include "fuzz.h"
#include "wire.h"

#define MAXSET 32

static void check_payload(const uint8_t *p, size_t n, size_t max)
{
    struct wire_setting s[MAXSET], s2[MAXSET];
    size_t count = 0, c2 = 0, kept;
    uint8_t buf[MAXSET * 16 + 16];
    ssize_t r = wire_settings_decode(p, n, s, max, &count), e, h;
    uint64_t t, len;

    if (r < 0) {
        FUZZ_CHECK(r == WIRE_ERR_MALFORMED);
        return;
    }
    FUZZ_CHECK((size_t)r == n && count <= n / 2);
    kept = count < max ? count : max;
    for (size_t i = 0; i < kept; i++) {
        FUZZ_CHECK(s[i].id <= WIRE_VARINT_MAX && s[i].value <= WIRE_VARINT_MAX);
        for (size_t j = 0; j < i; j++)
            FUZZ_CHECK(s[i].id != s[j].id);
    }
    e = wire_settings_encode(buf, sizeof(buf), s, kept);
    FUZZ_CHECK(e > 0);
    h = wire_frame_header_decode(buf, (size_t)e, &t, &len);
    FUZZ_CHECK(h > 0 && t == WIRE_H3_FRAME_SETTINGS && (size_t)h + len == (size_t)e);
    FUZZ_CHECK(wire_settings_decode(buf + h, (size_t)len, s2, MAXSET, &c2) ==
               (ssize_t)len);
    FUZZ_CHECK(c2 == kept);
    for (size_t i = 0; i < kept; i++)
        FUZZ_CHECK(s2[i].id == s[i].id && s2[i].value == s[i].value);
    if (count == kept && n > 0) {
        /* the same payload less its last byte: a pair cut short */
        FUZZ_CHECK(wire_settings_decode(p, n - 1, s2, MAXSET, &c2) ==
                   WIRE_ERR_MALFORMED);
    }
    /* a frame too small for its own encoding: refused, not overrun */
    if (e > 1)
        FUZZ_CHECK(wire_settings_encode(buf, (size_t)e - 1, s, kept) ==
                   WIRE_ERR_NOBUF);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    uint8_t b = fuzz_u8(&in);
    size_t max = b & 31;
    uint64_t stype, ftype, flen;
    ssize_t a, h;

    if (b & 0x20) {
        check_payload(in.p, in.n, max);
        return 0;
    }
    /* the control stream: type 0x00, then SETTINGS first (h3.c's tee) */
    a = wire_varint_decode(in.p, in.n, &stype);
    if (a < 0)
        return 0;
    h = wire_frame_header_decode(in.p + a, in.n - (size_t)a, &ftype, &flen);
    if (h < 0 || ftype != WIRE_H3_FRAME_SETTINGS ||
        flen > in.n - (size_t)(a + h))
        return 0;
    check_payload(in.p + a + h, (size_t)flen, max);
    return 0;
}
