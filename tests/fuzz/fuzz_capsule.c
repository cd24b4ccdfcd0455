/*
 * The capsule stream of a CONNECT stream (RFC 9297 §3), read by
 * wire_capsule_next() in pieces whose sizes the input chooses, and the
 * values the session acts on: CLOSE_WEBTRANSPORT_SESSION and the
 * flow-control capsules' single varint (src/wire.c).
 *
 * Input: one byte k, then k piece sizes (0 included: a call with no
 * bytes), then the stream.  The sizes repeat until the stream is used up.
 *
 * Properties: whatever the pieces, the reader reports the same capsules
 * (type, length, value bytes) as one pass over the whole stream, and the
 * same cut-off capsule at the end; each call takes only what it was
 * given and ends in a bounded number of calls; every decoded value
 * re-encodes to the bytes it came from.
 */
#include "fuzz.h"
#include "wire.h"

#define MAX_CAPS 4096

struct cap {
    uint64_t type, len, hash;
    int ended;
};

struct trace {
    struct cap c[MAX_CAPS];
    size_t n;
    int partial; /* wire_capsule_partial() at the end */
};

static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

/* Decodes the values this daemon acts on, and re-encodes them. */
static void check_value(uint64_t type, const uint8_t *v, size_t len)
{
    uint8_t buf[2048];
    uint32_t code;
    const char *reason;
    size_t rlen;
    uint64_t x;

    if (wire_close_capsule_decode(v, len, &code, &reason, &rlen) == 0) {
        ssize_t e = wire_close_capsule_encode(buf, sizeof(buf), code, reason,
                                              rlen);
        uint64_t t, l;
        ssize_t h;

        FUZZ_CHECK(rlen == len - 4 && rlen <= WIRE_CLOSE_REASON_MAX);
        FUZZ_CHECK(e > 0);
        h = wire_capsule_header_decode(buf, (size_t)e, &t, &l);
        FUZZ_CHECK(h > 0 && t == WIRE_CAPSULE_CLOSE_SESSION && l == len);
        FUZZ_CHECK(memcmp(buf + h, v, len) == 0);
    } else {
        FUZZ_CHECK(len != 4); /* a code and no reason is always valid */
    }
    if (wire_varint_capsule_decode(v, len, &x) == 0) {
        ssize_t e = wire_varint_capsule_encode(buf, sizeof(buf), type, x);
        uint64_t t, l, y;
        ssize_t h;

        FUZZ_CHECK(len >= 1 && len <= 8 && len == (size_t)1 << (v[0] >> 6));
        FUZZ_CHECK(e > 0);
        h = wire_capsule_header_decode(buf, (size_t)e, &t, &l);
        FUZZ_CHECK(h > 0 && t == type && l == wire_varint_len(x));
        FUZZ_CHECK(wire_varint_capsule_decode(buf + h, (size_t)l, &y) == 0 &&
                   y == x);
    } else {
        FUZZ_CHECK(len == 0 || len != (size_t)1 << (v[0] >> 6));
    }
}

/* Feeds `n` bytes as pieces of the sizes in sz[0..nsz) (all of it at
 * once when nsz is 0) and records what the reader reports. */
static void run(const uint8_t *p, size_t n, const uint8_t *sz, size_t nsz,
                struct trace *t, uint8_t *val, int check_values)
{
    struct wire_capsule_reader r;
    size_t off = 0, k = 0, vlen = 0;
    int allzero = 1;

    for (size_t i = 0; i < nsz; i++)
        allzero &= sz[i] == 0;
    memset(&r, 0, sizeof(r));
    memset(t, 0, sizeof(*t));
    while (off < n || (nsz && k < nsz)) {
        /* only empty pieces would never end: then 0, 1, 0, 1 ... */
        size_t piece = !nsz ? n - off : allzero ? k++ & 1 : sz[k++ % nsz];

        size_t calls = 0, bound;

        if (piece > n - off)
            piece = n - off;
        /* each call takes a byte or more, or ends the capsule it just
         * finished, or asks for more: a piece never needs more calls */
        bound = 2 * piece + 4;
        for (;;) {
            enum wire_capsule_event ev;
            const uint8_t *v = NULL;
            size_t vl = 0, used = wire_capsule_next(&r, p + off, piece, &ev,
                                                    &v, &vl);

            FUZZ_CHECK(++calls <= bound);
            FUZZ_CHECK(used <= piece);
            off += used;
            piece -= used;
            if (ev == WIRE_CAPSULE_NEED) {
                FUZZ_CHECK(piece == 0); /* NEED: everything was taken */
                break;
            }
            if (ev == WIRE_CAPSULE_HEADER) {
                FUZZ_CHECK(t->n < MAX_CAPS);
                t->c[t->n].type = r.type;
                t->c[t->n].len = r.len;
                t->c[t->n].hash = 0xcbf29ce484222325ULL;
                t->n++;
                vlen = 0;
                FUZZ_CHECK(r.in && r.got == 0);
            } else if (ev == WIRE_CAPSULE_VALUE) {
                struct cap *c = &t->c[t->n - 1];

                FUZZ_CHECK(t->n > 0 && vl > 0 && vl == used);
                FUZZ_CHECK(v == p + off - vl); /* points into the input */
                FUZZ_CHECK(r.got <= r.len);
                c->hash = fnv(c->hash, v, vl);
                if (check_values && vlen + vl <= 2048)
                    memcpy(val + vlen, v, vl);
                vlen += vl;
            } else {
                struct cap *c = &t->c[t->n - 1];

                FUZZ_CHECK(ev == WIRE_CAPSULE_END && used == 0);
                FUZZ_CHECK(t->n > 0 && vlen == c->len && !c->ended);
                c->ended = 1;
                if (check_values && vlen <= 2048)
                    check_value(c->type, val, vlen);
            }
        }
        if (nsz == 0)
            break;
        if (off == n && k >= nsz)
            break;
    }
    t->partial = wire_capsule_partial(&r);
}

static struct trace whole, split;
static uint8_t valbuf[2048];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    size_t nsz = fuzz_u8(&in) % 32;
    const uint8_t *sz = in.p;

    if (in.n < nsz)
        return 0;
    in.p += nsz;
    in.n -= nsz;
    run(in.p, in.n, NULL, 0, &whole, valbuf, 1);
    run(in.p, in.n, sz, nsz, &split, valbuf, 0);
    FUZZ_CHECK(whole.n == split.n && whole.partial == split.partial);
    for (size_t i = 0; i < whole.n; i++) {
        FUZZ_CHECK(whole.c[i].type == split.c[i].type);
        FUZZ_CHECK(whole.c[i].len == split.c[i].len);
        FUZZ_CHECK(whole.c[i].hash == split.c[i].hash);
        FUZZ_CHECK(whole.c[i].ended == split.c[i].ended);
    }
    /* a stream of whole capsules leaves nothing partial, and the headers
     * match a direct decode */
    {
        size_t off = 0, i = 0;

        while (off < in.n && i < whole.n) {
            uint64_t t, l;
            ssize_t h = wire_capsule_header_decode(in.p + off, in.n - off, &t,
                                                   &l);

            if (h < 0)
                break;
            FUZZ_CHECK(t == whole.c[i].type && l == whole.c[i].len);
            if (l > in.n - off - (size_t)h)
                break;
            off += (size_t)h + (size_t)l;
            i++;
        }
        if (off == in.n)
            FUZZ_CHECK(!whole.partial && i == whole.n);
    }
    return 0;
}
