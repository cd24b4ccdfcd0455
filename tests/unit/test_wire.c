/* Unit tests of src/wire.c: byte-exact encodings, every truncation point,
 * malformed input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "t.h"
#include "wire.h"

static const struct {
    uint64_t v;
    uint8_t b[8];
    size_t n;
} vectors[] = {
    /* RFC 9000 Appendix A.1 */
    {151288809941952652ULL, {0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c}, 8},
    {494878333, {0x9d, 0x7f, 0x3e, 0x7d}, 4},
    {15293, {0x7b, 0xbd}, 2},
    {37, {0x25}, 1},
    /* length boundaries */
    {63, {0x3f}, 1},
    {64, {0x40, 0x40}, 2},
    {16383, {0x7f, 0xff}, 2},
    {16384, {0x80, 0x00, 0x40, 0x00}, 4},
    {(1ULL << 30) - 1, {0xbf, 0xff, 0xff, 0xff}, 4},
    {1ULL << 30, {0xc0, 0, 0, 0, 0x40, 0, 0, 0}, 8},
    {WIRE_VARINT_MAX, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 8},
};

T_TEST(varint_vectors)
{
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        uint8_t b[8];
        uint64_t v;

        T_EQ(wire_varint_len(vectors[i].v), vectors[i].n);
        T_EQ(wire_varint_encode(b, sizeof(b), vectors[i].v),
             (ssize_t)vectors[i].n);
        T_MEMEQ(b, vectors[i].b, vectors[i].n);
        T_EQ(wire_varint_decode(vectors[i].b, vectors[i].n, &v),
             (ssize_t)vectors[i].n);
        T_EQ(v, vectors[i].v);
    }
}

T_TEST(varint_non_shortest_and_limits)
{
    const uint8_t two[] = {0x40, 0x25};
    uint8_t b[8];
    uint64_t v;

    T_EQ(wire_varint_decode(two, 2, &v), 2);
    T_EQ(v, 37);
    T_EQ(wire_varint_len(WIRE_VARINT_MAX + 1), 0);
    T_EQ(wire_varint_encode(b, 8, WIRE_VARINT_MAX + 1), WIRE_ERR_MALFORMED);
    T_EQ(wire_varint_encode(b, 1, 64), WIRE_ERR_NOBUF);
    T_EQ(wire_varint_encode(b, 7, 1ULL << 30), WIRE_ERR_NOBUF);
}

T_TEST(varint_short_at_every_cut)
{
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        uint64_t v;

        for (size_t cut = 0; cut < vectors[i].n; cut++)
            T_EQ(wire_varint_decode(vectors[i].b, cut, &v), WIRE_ERR_SHORT);
    }
}

T_TEST(settings_round_trip)
{
    const struct wire_setting s[] = {
        {WIRE_SETTING_QPACK_MAX_TABLE_CAPACITY, 4096},
        {WIRE_SETTING_ENABLE_CONNECT_PROTOCOL, 1},
        {WIRE_SETTING_H3_DATAGRAM, 1},
        {WIRE_SETTING_H3_DATAGRAM_DRAFT04, 1},
        {WIRE_SETTING_ENABLE_WEBTRANSPORT, 1},
        {WIRE_SETTING_WT_MAX_SESSIONS_D07, 16},
        {WIRE_SETTING_WT_ENABLED, 1},
    };
    struct wire_setting out[8];
    uint8_t b[128];
    uint64_t type, len;
    size_t count;
    ssize_t n, h;

    n = wire_settings_encode(b, sizeof(b), s, 7);
    T_CHECK(n > 0);
    h = wire_frame_header_decode(b, (size_t)n, &type, &len);
    T_CHECK(h > 0);
    T_EQ(type, WIRE_H3_FRAME_SETTINGS);
    T_EQ((size_t)h + len, (size_t)n);
    T_EQ(wire_settings_decode(b + h, len, out, 8, &count), (ssize_t)len);
    T_EQ(count, 7);
    for (size_t i = 0; i < 7; i++) {
        T_EQ(out[i].id, s[i].id);
        T_EQ(out[i].value, s[i].value);
    }
    /* more settings than room: counted, not stored */
    T_EQ(wire_settings_decode(b + h, len, out, 2, &count), (ssize_t)len);
    T_EQ(count, 7);
    T_EQ(out[1].id, WIRE_SETTING_ENABLE_CONNECT_PROTOCOL);
    /* every output size below the whole frame fails cleanly */
    for (size_t cap = 0; cap < (size_t)n; cap++)
        T_EQ(wire_settings_encode(b, cap, s, 7), WIRE_ERR_NOBUF);
}

T_TEST(settings_malformed)
{
    const uint8_t dup[] = {0x08, 0x01, 0x33, 0x01, 0x08, 0x00};
    const uint8_t cut[] = {0x08, 0x01, 0x33};
    const uint8_t cut_varint[] = {0x08, 0x01, 0x80, 0x2b};
    struct wire_setting out[4];
    size_t count;

    T_EQ(wire_settings_decode(dup, sizeof(dup), out, 4, &count),
         WIRE_ERR_MALFORMED);
    T_EQ(wire_settings_decode(cut, sizeof(cut), out, 4, &count),
         WIRE_ERR_MALFORMED);
    T_EQ(wire_settings_decode(cut_varint, sizeof(cut_varint), out, 4, &count),
         WIRE_ERR_MALFORMED);
    T_EQ(wire_settings_decode(dup, 0, out, 4, &count), 0);
    T_EQ(count, 0);
}

/* The control stream's start as h3.c collects it: SHORT at every cut
 * before the frame's end, then the whole of it; errors say why. */
T_TEST(control_settings)
{
    /* type 0x00, SETTINGS (4) of 4 bytes: 0x08=1, 0x33=1; then a GOAWAY */
    const uint8_t ok[] = {0x00, 0x04, 0x04, 0x08, 0x01, 0x33, 0x01, 0x07,
                          0x01, 0x00};
    const uint8_t first_goaway[] = {0x00, 0x07, 0x01, 0x00};
    const uint8_t big[] = {0x00, 0x04, 0x48, 0x00}; /* 2048 bytes */
    const uint8_t dup[] = {0x00, 0x04, 0x04, 0x08, 0x01, 0x08, 0x00};
    struct wire_setting out[4];
    size_t count = 0;
    const char *why;

    for (size_t cut = 0; cut < 7; cut++)
        T_EQ(wire_control_settings_decode(ok, cut, 64, out, 4, &count, &why),
             WIRE_ERR_SHORT);
    T_EQ(wire_control_settings_decode(ok, sizeof(ok), 64, out, 4, &count,
                                      &why), 7);
    T_CHECK(why == NULL && count == 2 && out[1].id == 0x33);
    T_EQ(wire_control_settings_decode(first_goaway, sizeof(first_goaway), 64,
                                      out, 4, &count, &why),
         WIRE_ERR_MALFORMED);
    T_STREQ(why, "the control stream does not start with SETTINGS");
    /* larger than the buffer it is collected in: known from the header */
    T_EQ(wire_control_settings_decode(big, sizeof(big), 2048, out, 4, &count,
                                      &why),
         WIRE_ERR_MALFORMED);
    T_STREQ(why, "SETTINGS frame too large");
    T_EQ(wire_control_settings_decode(dup, sizeof(dup), 64, out, 4, &count,
                                      &why),
         WIRE_ERR_MALFORMED);
    T_STREQ(why, "malformed SETTINGS");
}

T_TEST(goaway_bytes)
{
    const uint8_t want[] = {0x07, 0x02, 0x40, 0x40};
    uint8_t b[8];

    T_EQ(wire_goaway_encode(b, sizeof(b), 64), 4);
    T_MEMEQ(b, want, 4);
    T_EQ(wire_goaway_encode(b, 3, 64), WIRE_ERR_NOBUF);
}

T_TEST(capsule_header_split_everywhere)
{
    uint8_t b[2100];
    uint64_t type, len;
    ssize_t n = wire_close_capsule_encode(b, sizeof(b), 7, "bye", 3);

    T_EQ(n, 2 + 1 + 4 + 3);
    T_EQ(b[0], 0x68); /* 0x2843 as a 2-byte varint */
    T_EQ(b[1], 0x43);
    T_EQ(b[2], 7);
    for (size_t cut = 0; cut < 3; cut++)
        T_EQ(wire_capsule_header_decode(b, cut, &type, &len), WIRE_ERR_SHORT);
    T_EQ(wire_capsule_header_decode(b, 3, &type, &len), 3);
    T_EQ(type, WIRE_CAPSULE_CLOSE_SESSION);
    T_EQ(len, 7);
}

T_TEST(close_capsule_round_trip)
{
    char reason[1025];
    uint8_t b[1100];
    uint64_t type, len;
    const char *r;
    size_t rl;
    uint32_t code;
    ssize_t n, h;

    memset(reason, 'a', sizeof(reason));
    n = wire_close_capsule_encode(b, sizeof(b), 0xdeadbeef, reason, 1024);
    T_CHECK(n > 0);
    h = wire_capsule_header_decode(b, (size_t)n, &type, &len);
    T_EQ(len, 1028);
    T_EQ(wire_close_capsule_decode(b + h, len, &code, &r, &rl), 0);
    T_EQ(code, 0xdeadbeef);
    T_EQ(rl, 1024);
    T_CHECK(r == (const char *)b + h + 4);
    T_EQ(wire_close_capsule_encode(b, sizeof(b), 1, reason, 1025),
         WIRE_ERR_MALFORMED);
    T_EQ(wire_close_capsule_encode(b, 10, 1, reason, 20), WIRE_ERR_NOBUF);
    /* empty reason */
    n = wire_close_capsule_encode(b, sizeof(b), 0, "", 0);
    T_EQ(n, 3 + 4);
    T_EQ(wire_close_capsule_decode(b + 3, 4, &code, &r, &rl), 0);
    T_EQ(rl, 0);
    T_EQ(code, 0);
}

T_TEST(close_capsule_malformed)
{
    uint8_t v[4 + 1025];
    uint32_t code;
    const char *r;
    size_t rl;
    static const uint8_t bad[][5] = {
        {0xc0, 0x80},             /* overlong NUL */
        {0xed, 0xa0, 0x80},       /* surrogate U+D800 */
        {0xe2, 0x82},             /* truncated sequence */
        {0xf4, 0x90, 0x80, 0x80}, /* past U+10FFFF */
        {0xff},                   /* never valid */
        {0x80},                   /* lone continuation */
    };
    static const size_t badlen[] = {2, 3, 2, 4, 1, 1};

    memset(v, 0, sizeof(v));
    T_EQ(wire_close_capsule_decode(v, 3, &code, &r, &rl), WIRE_ERR_MALFORMED);
    memset(v + 4, 'x', 1025);
    T_EQ(wire_close_capsule_decode(v, 4 + 1025, &code, &r, &rl),
         WIRE_ERR_MALFORMED);
    for (size_t i = 0; i < sizeof(badlen) / sizeof(badlen[0]); i++) {
        memcpy(v + 4, bad[i], badlen[i]);
        T_EQ(wire_close_capsule_decode(v, 4 + badlen[i], &code, &r, &rl),
             WIRE_ERR_MALFORMED);
    }
    /* valid multi-byte UTF-8: é, €, 😀 */
    memcpy(v + 4, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9);
    T_EQ(wire_close_capsule_decode(v, 13, &code, &r, &rl), 0);
    T_EQ(rl, 9);
}

T_TEST(drain_bytes)
{
    const uint8_t want[] = {0x80, 0x00, 0x78, 0xae, 0x00};
    uint8_t b[8];

    T_EQ(wire_drain_capsule_encode(b, sizeof(b)), 5);
    T_MEMEQ(b, want, 5);
    T_EQ(wire_drain_capsule_encode(b, 4), WIRE_ERR_NOBUF);
}

T_TEST(stream_prefix)
{
    uint8_t b[16];
    enum wire_stream_kind k;
    uint64_t sid, first;
    ssize_t n;

    for (int bidi = 0; bidi <= 1; bidi++) {
        n = wire_stream_prefix_encode(b, sizeof(b), bidi, 16384);
        T_EQ(n, (bidi ? 2 : 2) + 4);
        T_EQ(b[0], 0x40); /* 0x41 / 0x54 take 2 bytes */
        T_EQ(b[1], bidi ? 0x41 : 0x54);
        for (ssize_t cut = 0; cut < n; cut++)
            T_EQ(wire_stream_prefix_decode(b, (size_t)cut, bidi, &k, &sid,
                                           &first),
                 WIRE_ERR_SHORT);
        T_EQ(wire_stream_prefix_decode(b, (size_t)n, bidi, &k, &sid, &first),
             n);
        T_EQ(k, WIRE_STREAM_WT);
        T_EQ(sid, 16384);
        /* the bidi signal on a uni stream is just an unknown type */
        T_EQ(wire_stream_prefix_decode(b, (size_t)n, !bidi, &k, &sid, &first),
             2);
        T_EQ(k, WIRE_STREAM_OTHER);
        T_EQ(first, bidi ? 0x41 : 0x54);
    }
    T_EQ(wire_stream_prefix_encode(b, sizeof(b), 1, 6), WIRE_ERR_MALFORMED);
}

T_TEST(stream_prefix_other_and_bad)
{
    const uint8_t control[] = {0x00, 0x04, 0x00};
    const uint8_t qpack[] = {0x02};
    const uint8_t headers[] = {0x01, 0x10, 0x00};
    const uint8_t badsid[] = {0x40, 0x41, 0x05};
    enum wire_stream_kind k;
    uint64_t sid, first;

    T_EQ(wire_stream_prefix_decode(control, 3, 0, &k, &sid, &first), 1);
    T_EQ(k, WIRE_STREAM_OTHER);
    T_EQ(first, 0);
    T_EQ(wire_stream_prefix_decode(qpack, 1, 0, &k, &sid, NULL), 1);
    T_EQ(k, WIRE_STREAM_OTHER);
    T_EQ(wire_stream_prefix_decode(headers, 3, 1, &k, &sid, &first), 1);
    T_EQ(k, WIRE_STREAM_OTHER);
    T_EQ(first, WIRE_H3_FRAME_HEADERS);
    T_EQ(wire_stream_prefix_decode(badsid, 3, 1, &k, &sid, &first),
         WIRE_ERR_MALFORMED);
}

T_TEST(datagram_framing)
{
    uint8_t b[8];
    uint64_t sid;
    const uint8_t huge[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

    T_EQ(wire_datagram_header_encode(b, sizeof(b), 0), 1);
    T_EQ(b[0], 0);
    T_EQ(wire_datagram_header_encode(b, sizeof(b), 256), 2);
    T_EQ(wire_datagram_decode(b, 2, &sid), 2);
    T_EQ(sid, 256);
    T_EQ(wire_datagram_header_encode(b, sizeof(b), 5), WIRE_ERR_MALFORMED);
    T_EQ(wire_datagram_decode(b, 1, &sid), WIRE_ERR_MALFORMED);
    T_EQ(wire_datagram_decode(b, 0, &sid), WIRE_ERR_MALFORMED);
    T_EQ(wire_datagram_decode(huge, 8, &sid), WIRE_ERR_MALFORMED);
}

T_TEST(error_code_mapping)
{
    uint32_t c;

    T_EQ(wire_wt_error_to_h3(0), WIRE_WT_ERROR_FIRST);
    T_EQ(wire_wt_error_to_h3(0x1d), WIRE_WT_ERROR_FIRST + 0x1d);
    T_EQ(wire_wt_error_to_h3(0x1e), WIRE_WT_ERROR_FIRST + 0x1f);
    T_EQ(wire_wt_error_to_h3(0xffffffff), WIRE_WT_ERROR_LAST);
    T_EQ(wire_wt_error_from_h3(WIRE_WT_ERROR_FIRST, &c), 0);
    T_EQ(c, 0);
    T_EQ(wire_wt_error_from_h3(WIRE_WT_ERROR_FIRST + 0x1f, &c), 0);
    T_EQ(c, 0x1e);
    T_EQ(wire_wt_error_from_h3(WIRE_WT_ERROR_LAST, &c), 0);
    T_EQ(c, 0xffffffff);
    /* the GREASE codepoint skipped between 0x1d and 0x1e */
    T_EQ(wire_wt_error_from_h3(WIRE_WT_ERROR_FIRST + 0x1e, &c), -1);
    T_EQ(wire_wt_error_from_h3(WIRE_WT_ERROR_FIRST - 1, &c), -1);
    T_EQ(wire_wt_error_from_h3(WIRE_WT_ERROR_LAST + 1, &c), -1);
    T_EQ(wire_wt_error_from_h3(0x100, &c), -1);
    for (uint64_t n = 0; n <= 0xffffffffULL; n += 0x10001) {
        uint64_t h = wire_wt_error_to_h3((uint32_t)n);

        T_CHECK((h - 0x21) % 0x1f != 0);
        T_EQ(wire_wt_error_from_h3(h, &c), 0);
        T_EQ(c, (uint32_t)n);
    }
}

/*
 * Every decoder on 200 000 seeded random inputs, each in a heap block of
 * exactly its size (so the sanitizer build catches any read past the end),
 * half of them starting with a valid prefix so that the deeper paths run:
 * results stay within the input, and what decodes re-encodes.
 */
static uint64_t rnd_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

T_TEST(random_input_stays_in_bounds)
{
    for (int iter = 0; iter < 200000; iter++) {
        size_t n = rnd() % 48, pre = 0;
        uint8_t *p = malloc(n ? n : 1), tmp[16];
        uint64_t a, b, sid, first;
        struct wire_setting set[4];
        size_t count, reasonlen;
        enum wire_stream_kind kind;
        const char *reason;
        uint32_t code;
        ssize_t r;

        T_CHECK(p != NULL);
        for (size_t i = 0; i < n; i++)
            p[i] = (uint8_t)rnd();
        if (iter % 2 && n > 0) { /* a valid prefix, then noise */
            switch (rnd() % 3) {
            case 0:
                r = wire_stream_prefix_encode(tmp, sizeof(tmp), rnd() % 2,
                                              (rnd() % 1000) * 4);
                break;
            case 1:
                /* CLOSE_WEBTRANSPORT_SESSION capsule type */
                r = wire_varint_encode(tmp, sizeof(tmp), 0x2843);
                break;
            default:
                r = wire_varint_encode(tmp, sizeof(tmp), rnd() % 64);
                break;
            }
            pre = r > 0 ? (size_t)r : 0;
            memcpy(p, tmp, pre < n ? pre : n);
        }

        r = wire_varint_decode(p, n, &a);
        T_CHECK(r < 0 || ((r == 1 || r == 2 || r == 4 || r == 8) &&
                          (size_t)r <= n && wire_varint_len(a) <= (size_t)r));
        if (r > 0) {
            T_EQ(wire_varint_encode(tmp, sizeof(tmp), a),
                 (ssize_t)wire_varint_len(a));
        }
        r = wire_frame_header_decode(p, n, &a, &b);
        T_CHECK(r < 0 || (size_t)r <= n);
        r = wire_settings_decode(p, n, set, 4, &count);
        T_CHECK(r < 0 || (size_t)r == n);
        r = wire_capsule_header_decode(p, n, &a, &b);
        T_CHECK(r < 0 || (size_t)r <= n);
        if (wire_close_capsule_decode(p, n, &code, &reason, &reasonlen) == 0) {
            T_CHECK(n >= 4 && reasonlen <= n - 4);
            T_CHECK(reasonlen == 0 || (reason >= (const char *)p + 4 &&
                                       reason + reasonlen <=
                                           (const char *)p + n));
        }
        for (int bidi = 0; bidi < 2; bidi++) {
            r = wire_stream_prefix_decode(p, n, bidi, &kind, &sid, &first);
            T_CHECK(r < 0 || (size_t)r <= n);
            if (r > 0 && kind == WIRE_STREAM_WT)
                T_CHECK(r <= 16);
        }
        r = wire_datagram_decode(p, n, &sid);
        T_CHECK(r < 0 || ((size_t)r <= n && sid % 4 == 0));
        a = rnd() & WIRE_VARINT_MAX;
        if (wire_wt_error_from_h3(a, &code) == 0)
            T_EQ(wire_wt_error_to_h3(code), a);
        free(p);
    }
}

T_TEST(varint_capsule_round_trip)
{
    /* WT_MAX_DATA 1 MiB: 0x190b4d3d is a 4-byte varint, 1 MiB too */
    static const uint8_t want[] = {0x99, 0x0b, 0x4d, 0x3d, 0x04,
                                   0x80, 0x10, 0x00, 0x00};
    static const uint64_t types[] = {
        WIRE_CAPSULE_WT_MAX_DATA, WIRE_CAPSULE_WT_MAX_STREAMS_BIDI,
        WIRE_CAPSULE_WT_MAX_STREAMS_UNI, WIRE_CAPSULE_WT_DATA_BLOCKED,
        WIRE_CAPSULE_WT_STREAMS_BLOCKED_BIDI,
        WIRE_CAPSULE_WT_STREAMS_BLOCKED_UNI};
    static const uint64_t values[] = {0, 63, 64, 16383, 16384, 1ULL << 30,
                                      WIRE_WT_MAX_STREAMS_LIMIT,
                                      WIRE_VARINT_MAX};
    uint8_t b[32];
    uint64_t type, len, v;
    ssize_t n, h;

    T_EQ(wire_varint_capsule_encode(b, sizeof(b), WIRE_CAPSULE_WT_MAX_DATA,
                                    1 << 20),
         (ssize_t)sizeof(want));
    T_MEMEQ(b, want, sizeof(want));
    for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
        for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
            n = wire_varint_capsule_encode(b, sizeof(b), types[t], values[i]);
            T_CHECK(n > 0);
            h = wire_capsule_header_decode(b, (size_t)n, &type, &len);
            T_CHECK(h > 0);
            T_EQ(type, types[t]);
            T_EQ((size_t)h + len, (size_t)n);
            T_EQ(wire_varint_capsule_decode(b + h, len, &v), 0);
            T_EQ(v, values[i]);
            /* every buffer too small is refused, never overrun */
            for (size_t cap = 0; cap < (size_t)n; cap++)
                T_EQ(wire_varint_capsule_encode(b, cap, types[t], values[i]),
                     WIRE_ERR_NOBUF);
        }
    }
    T_EQ(wire_varint_capsule_encode(b, sizeof(b), WIRE_CAPSULE_WT_MAX_DATA,
                                    WIRE_VARINT_MAX + 1),
         WIRE_ERR_MALFORMED);
}

T_TEST(varint_capsule_malformed)
{
    /* empty, cut short, a byte too many, a longer encoding cut */
    static const uint8_t two[] = {0x40, 0x05}, extra[] = {0x05, 0x00},
                         eight[] = {0xc0, 0, 0, 0, 0, 0, 0, 1};
    uint64_t v = 99;

    T_EQ(wire_varint_capsule_decode(two, 0, &v), WIRE_ERR_MALFORMED);
    T_EQ(wire_varint_capsule_decode(two, 1, &v), WIRE_ERR_MALFORMED);
    T_EQ(wire_varint_capsule_decode(extra, 2, &v), WIRE_ERR_MALFORMED);
    for (size_t cut = 0; cut < 8; cut++)
        T_EQ(wire_varint_capsule_decode(eight, cut, &v), WIRE_ERR_MALFORMED);
    T_EQ(v, 99);
    /* a non-shortest encoding that fills the value exactly is valid */
    T_EQ(wire_varint_capsule_decode(two, 2, &v), 0);
    T_EQ(v, 5);
    T_EQ(wire_varint_capsule_decode(eight, 8, &v), 0);
    T_EQ(v, 1);
}

/* What a reader found in a stream, as (type, value) pairs. */
struct seen {
    uint64_t type[16], len[16];
    uint8_t val[16][300];
    size_t n, headers, cur;
};

/* Feeds p[0..n) in pieces; returns -1 on any inconsistency. */
static int reader_feed(struct wire_capsule_reader *r, struct seen *sn,
                       const uint8_t *p, size_t n)
{
    enum wire_capsule_event ev;
    const uint8_t *v;
    size_t vl, used;
    int guard = 0;

    for (;;) {
        if (++guard > 10000)
            return -1; /* a reader that makes no progress */
        used = wire_capsule_next(r, p, n, &ev, &v, &vl);
        if (used > n)
            return -1;
        p += used;
        n -= used;
        switch (ev) {
        case WIRE_CAPSULE_NEED:
            if (n != 0)
                return -1;
            return 0;
        case WIRE_CAPSULE_HEADER:
            if (sn->headers >= 16)
                return -1;
            sn->type[sn->headers] = r->type;
            sn->len[sn->headers] = r->len;
            sn->cur = 0;
            sn->headers++;
            break;
        case WIRE_CAPSULE_VALUE:
            if (sn->cur + vl > 300 || v + vl > p)
                return -1;
            memcpy(sn->val[sn->headers - 1] + sn->cur, v, vl);
            sn->cur += vl;
            break;
        case WIRE_CAPSULE_END:
            if (sn->cur != sn->len[sn->headers - 1])
                return -1;
            sn->n++;
            break;
        }
    }
}

T_TEST(capsule_reader_any_split)
{
    uint8_t s[1024], dg[200];
    size_t n = 0, k;
    ssize_t r;
    struct wire_capsule_reader rd;
    struct seen *sn = calloc(1, sizeof(*sn));
    static const uint64_t want_type[] = {
        WIRE_CAPSULE_CLOSE_SESSION, WIRE_CAPSULE_DRAIN_SESSION,
        WIRE_CAPSULE_WT_MAX_DATA,   WIRE_CAPSULE_DATAGRAM,
        0x1f * 0x1234 + 0x21,       WIRE_CAPSULE_WT_MAX_STREAMS_UNI};

    T_CHECK(sn != NULL);
    for (size_t i = 0; i < sizeof(dg); i++)
        dg[i] = (uint8_t)(i * 7);
    r = wire_close_capsule_encode(s + n, sizeof(s) - n, 4242, "bye", 3);
    n += (size_t)r;
    r = wire_drain_capsule_encode(s + n, sizeof(s) - n);
    n += (size_t)r;
    r = wire_varint_capsule_encode(s + n, sizeof(s) - n,
                                   WIRE_CAPSULE_WT_MAX_DATA, 123456789);
    n += (size_t)r;
    r = wire_capsule_header_encode(s + n, sizeof(s) - n, WIRE_CAPSULE_DATAGRAM,
                                   sizeof(dg));
    n += (size_t)r;
    memcpy(s + n, dg, sizeof(dg));
    n += sizeof(dg);
    r = wire_capsule_header_encode(s + n, sizeof(s) - n, 0x1f * 0x1234 + 0x21,
                                   0);
    n += (size_t)r;
    r = wire_varint_capsule_encode(s + n, sizeof(s) - n,
                                   WIRE_CAPSULE_WT_MAX_STREAMS_UNI, 7);
    n += (size_t)r;

    /* every split into three pieces at (a, b), and byte by byte */
    for (size_t a = 0; a <= n; a += (a < 40 ? 1 : 13)) {
        for (size_t b = a; b <= n; b += (b < 40 ? 1 : 17)) {
            uint64_t v;

            memset(&rd, 0, sizeof(rd));
            memset(sn, 0, sizeof(*sn));
            T_EQ(reader_feed(&rd, sn, s, a), 0);
            T_EQ(reader_feed(&rd, sn, s + a, b - a), 0);
            T_EQ(reader_feed(&rd, sn, s + b, n - b), 0);
            T_EQ(wire_capsule_partial(&rd), 0);
            T_EQ(sn->n, 6);
            for (k = 0; k < 6; k++)
                T_EQ(sn->type[k], want_type[k]);
            T_EQ(sn->len[0], 7);
            T_MEMEQ(sn->val[0] + 4, "bye", 3);
            T_EQ(sn->len[1], 0);
            T_EQ(wire_varint_capsule_decode(sn->val[2], sn->len[2], &v), 0);
            T_EQ(v, 123456789);
            T_EQ(sn->len[3], sizeof(dg));
            T_MEMEQ(sn->val[3], dg, sizeof(dg));
            T_EQ(sn->len[4], 0);
            T_EQ(wire_varint_capsule_decode(sn->val[5], sn->len[5], &v), 0);
            T_EQ(v, 7);
        }
    }
    memset(&rd, 0, sizeof(rd));
    memset(sn, 0, sizeof(*sn));
    for (k = 0; k < n; k++)
        T_EQ(reader_feed(&rd, sn, s + k, 1), 0);
    T_EQ(sn->n, 6);
    /* cut anywhere inside a capsule: the reader knows it is partial */
    for (k = 1; k < 6; k++) {
        memset(&rd, 0, sizeof(rd));
        memset(sn, 0, sizeof(*sn));
        T_EQ(reader_feed(&rd, sn, s, k), 0);
        T_EQ(wire_capsule_partial(&rd), 1);
    }
    free(sn);
}

T_TEST(capsule_reader_random)
{
    /* arbitrary bytes in arbitrary pieces: every step takes what it says
     * and the loop always ends */
    for (int iter = 0; iter < 20000; iter++) {
        uint8_t p[64];
        size_t n = rnd() % sizeof(p), off = 0;
        struct wire_capsule_reader rd;

        memset(&rd, 0, sizeof(rd));
        for (size_t i = 0; i < n; i++)
            p[i] = (uint8_t)rnd();
        while (off < n) {
            size_t piece = 1 + rnd() % (n - off);
            enum wire_capsule_event ev;
            const uint8_t *v;
            size_t vl, used, left = piece;
            int guard = 0;

            do {
                T_CHECK(++guard < 1000);
                used = wire_capsule_next(&rd, p + off, left, &ev, &v, &vl);
                T_CHECK(used <= left);
                if (ev == WIRE_CAPSULE_VALUE)
                    T_CHECK(v == p + off && vl == used && used > 0);
                T_CHECK(rd.got <= rd.len);
                off += used;
                left -= used;
            } while (ev != WIRE_CAPSULE_NEED);
            T_EQ(left, 0);
        }
    }
}

int main(void)
{
    T_RUN(varint_vectors);
    T_RUN(varint_non_shortest_and_limits);
    T_RUN(varint_short_at_every_cut);
    T_RUN(settings_round_trip);
    T_RUN(settings_malformed);
    T_RUN(control_settings);
    T_RUN(goaway_bytes);
    T_RUN(capsule_header_split_everywhere);
    T_RUN(close_capsule_round_trip);
    T_RUN(close_capsule_malformed);
    T_RUN(drain_bytes);
    T_RUN(stream_prefix);
    T_RUN(stream_prefix_other_and_bad);
    T_RUN(datagram_framing);
    T_RUN(error_code_mapping);
    T_RUN(random_input_stays_in_bounds);
    T_RUN(varint_capsule_round_trip);
    T_RUN(varint_capsule_malformed);
    T_RUN(capsule_reader_any_split);
    T_RUN(capsule_reader_random);
    T_DONE();
}
