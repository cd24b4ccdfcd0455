/*
 * The SETTINGS frame (RFC 9114 §7.2.4) as the daemon reads the peer's:
 * h3.c's settings_tee collects the control stream's first bytes into a
 * buffer of H3_CTRL_TEE_MAX, piece by piece as STREAM frames bring them,
 * and asks wire_control_settings_decode() after each piece; that reads the
 * stream type and frame header and hands the payload to
 * wire_settings_decode().
 *
 * Input: one byte (bits 0-4: entries the caller has room for; bit 5: the
 * rest is a bare payload), one byte k and k piece sizes, then the control
 * stream.
 *
 * Properties: the collected stream gets the same answer (length, error,
 * entries) whatever its pieces, as soon as the frame is whole, and the
 * same as the whole stream at once; a payload decodes whole or not at
 * all; the count is of every pair, the kept entries are the first ones,
 * no id twice among them; the kept entries re-encode to a frame that
 * decodes the same; a payload cut inside a pair is malformed.
 */
#include "fuzz.h"
#include "h3.h"
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

static uint8_t tee[H3_CTRL_TEE_MAX];

/* h3.c's settings_tee: pieces into the buffer until an answer */
static ssize_t collect(const uint8_t *p, size_t n, const uint8_t *sz,
                       size_t nsz, size_t max, struct wire_setting *out,
                       size_t *count, size_t *used)
{
    size_t teelen = 0, off = 0, k = 0;
    ssize_t r = WIRE_ERR_SHORT;
    const char *why;

    while (off < n) {
        size_t piece = nsz ? sz[k % nsz] : n, take;

        k++;
        if (piece > n - off)
            piece = n - off;
        take = sizeof(tee) - teelen < piece ? sizeof(tee) - teelen : piece;
        memcpy(tee + teelen, p + off, take);
        teelen += take;
        off += piece;
        r = wire_control_settings_decode(tee, teelen, sizeof(tee), out, max,
                                         count, &why);
        if (r != WIRE_ERR_SHORT) {
            FUZZ_CHECK(r > 0 ? why == NULL : why != NULL);
            FUZZ_CHECK(r < 0 || (size_t)r <= teelen);
            break;
        }
    }
    *used = teelen;
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    uint8_t b = fuzz_u8(&in);
    size_t max = b & 31, nsz, c1 = 0, c2 = 0, u1, u2;
    struct wire_setting s1[MAXSET], s2[MAXSET];
    const uint8_t *sz;
    ssize_t r1, r2;

    if (b & 0x20) {
        check_payload(in.p, in.n, max);
        return 0;
    }
    nsz = fuzz_u8(&in) % 16;
    if (in.n < nsz)
        return 0;
    sz = in.p;
    in.p += nsz;
    in.n -= nsz;
    for (size_t i = 0; i < nsz; i++)
        if (sz[i] == 0)
            return 0; /* an empty STREAM frame brings nothing to collect */
    r1 = collect(in.p, in.n, NULL, 0, max, s1, &c1, &u1);
    r2 = collect(in.p, in.n, sz, nsz, max, s2, &c2, &u2);
    FUZZ_CHECK(r1 == r2);
    if (r1 > 0) {
        uint64_t stype, ftype, flen;
        ssize_t a = wire_varint_decode(in.p, in.n, &stype), h;

        FUZZ_CHECK(c1 == c2);
        for (size_t i = 0; i < c1 && i < max; i++)
            FUZZ_CHECK(s1[i].id == s2[i].id && s1[i].value == s2[i].value);
        /* answered as soon as the frame was whole: no piece after it */
        FUZZ_CHECK(nsz == 0 || u2 - (size_t)r2 < 256);
        FUZZ_CHECK(a > 0);
        h = wire_frame_header_decode(in.p + a, in.n - (size_t)a, &ftype, &flen);
        FUZZ_CHECK(h > 0 && ftype == WIRE_H3_FRAME_SETTINGS &&
                   (size_t)(a + h) + flen == (size_t)r1);
        check_payload(in.p + a + h, (size_t)flen, max);
    }
    return 0;
}
