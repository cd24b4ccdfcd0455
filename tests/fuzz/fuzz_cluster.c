/*
 * What another daemon publishes on a room's Redis channel
 * (src/cluster_msg.c): any bytes at all, since any node, buggy or
 * compromised, can publish there.
 *
 * The input is decoded as a message.  Properties: the decoder reads only
 * inside the input (a payload points into it and ends with it); what it
 * accepts has a known kind and fields within their bounds; encoding it
 * again gives exactly the input (one encoding per message: no two byte
 * strings mean the same thing) and every cut of it before its payload is
 * refused.  Then the input read as fields (kind, varint values, payload)
 * is encoded and must decode to the same fields, or be refused by the
 * encoder for a reason the fields show.
 */
#include "cluster_msg.h"
#include "fuzz.h"

static uint8_t out[CLUSTER_MSG_MAX + 64];

static void same(const struct cluster_msg *a, const struct cluster_msg *b)
{
    FUZZ_CHECK(a->kind == b->kind && a->origin == b->origin);
    FUZZ_CHECK(a->member == b->member && a->stream == b->stream &&
               a->offset == b->offset && a->code == b->code &&
               a->fin == b->fin && a->flags == b->flags &&
               a->count == b->count && a->nids == b->nids &&
               a->len == b->len);
    FUZZ_CHECK(!a->len || memcmp(a->payload, b->payload, a->len) == 0);
    for (size_t i = 0; i < a->nids; i++)
        FUZZ_CHECK(a->ids[i] == b->ids[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct cluster_msg m, back;
    struct fuzz_in in = {data, size};
    ssize_t n;

    if (cluster_msg_decode(data, size, &m) == 0) {
        FUZZ_CHECK(m.kind >= CLUSTER_MSG_DGRAM && m.kind <= CLUSTER_MSG_BEAT);
        FUZZ_CHECK(m.nids <= CLUSTER_MSG_MAX_IDS && m.flags <= 7 &&
                   m.fin <= 1);
        if (m.payload)
            FUZZ_CHECK(m.payload >= data && m.payload + m.len == data + size);
        FUZZ_CHECK(m.len <= CLUSTER_MSG_MAX_DGRAM);
        n = cluster_msg_encode(&m, out, sizeof(out));
        /* varints decode from any length but encode shortest: a longer
         * spelling of the same value is the only way to differ */
        FUZZ_CHECK(n > 0 && (size_t)n <= size);
        FUZZ_CHECK(cluster_msg_decode(out, (size_t)n, &back) == 0);
        same(&m, &back);
        for (size_t cut = 0; cut + m.len < (size_t)n; cut++)
            FUZZ_CHECK(cluster_msg_decode(out, cut, &back) < 0 ||
                       (m.kind == CLUSTER_MSG_DGRAM ||
                        m.kind == CLUSTER_MSG_CHUNK));
    }

    /* fields from the input, encoded then decoded */
    memset(&m, 0, sizeof(m));
    m.kind = 1 + fuzz_u8(&in) % 8; /* 8: not a kind */
    m.origin = fuzz_u64(&in);
    m.member = fuzz_u64(&in) >> (fuzz_u8(&in) % 64);
    m.stream = fuzz_u64(&in) >> (fuzz_u8(&in) % 64);
    m.offset = fuzz_u64(&in) >> (fuzz_u8(&in) % 64);
    m.code = (uint32_t)fuzz_u64(&in);
    m.fin = fuzz_u8(&in) % 3;
    m.flags = fuzz_u8(&in) % 9;
    m.count = fuzz_u64(&in) >> (fuzz_u8(&in) % 64);
    m.nids = fuzz_u8(&in);
    for (size_t i = 0; i < m.nids && i < CLUSTER_MSG_MAX_IDS; i++)
        m.ids[i] = fuzz_u64(&in) >> 2;
    m.payload = in.p;
    m.len = in.n;
    n = cluster_msg_encode(&m, out, sizeof(out));
    if (n < 0) {
        int over = (m.member >> 62) || (m.stream >> 62) || (m.offset >> 62) ||
                   (m.count >> 62) || m.kind == 8;

        if (m.kind == CLUSTER_MSG_DGRAM)
            over |= m.len > CLUSTER_MSG_MAX_DGRAM;
        if (m.kind == CLUSTER_MSG_CHUNK)
            over |= m.len > CLUSTER_MSG_MAX_CHUNK || m.fin > 1;
        if (m.kind == CLUSTER_MSG_HELLO)
            over |= m.nids > CLUSTER_MSG_MAX_IDS || m.flags > 7;
        FUZZ_CHECK(over);
        return 0;
    }
    FUZZ_CHECK(cluster_msg_decode(out, (size_t)n, &back) == 0);
    /* the fields the kind carries come back; the others are zero */
    FUZZ_CHECK(back.kind == m.kind && back.origin == m.origin);
    switch (m.kind) {
    case CLUSTER_MSG_DGRAM:
        FUZZ_CHECK(back.member == m.member && back.len == m.len &&
                   (!m.len || memcmp(back.payload, m.payload, m.len) == 0));
        break;
    case CLUSTER_MSG_CHUNK:
        FUZZ_CHECK(back.member == m.member && back.stream == m.stream &&
                   back.offset == m.offset && back.fin == m.fin &&
                   back.len == m.len &&
                   (!m.len || memcmp(back.payload, m.payload, m.len) == 0));
        break;
    case CLUSTER_MSG_RESET:
        FUZZ_CHECK(back.member == m.member && back.stream == m.stream &&
                   back.code == m.code);
        break;
    case CLUSTER_MSG_JOIN:
    case CLUSTER_MSG_LEAVE:
        FUZZ_CHECK(back.member == m.member);
        break;
    case CLUSTER_MSG_HELLO:
        FUZZ_CHECK(back.flags == m.flags && back.nids == m.nids);
        for (size_t i = 0; i < m.nids; i++)
            FUZZ_CHECK(back.ids[i] == m.ids[i]);
        break;
    case CLUSTER_MSG_BEAT:
        FUZZ_CHECK(back.count == m.count);
        break;
    }
    return 0;
}
