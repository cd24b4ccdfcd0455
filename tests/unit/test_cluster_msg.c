/* Unit tests of src/cluster_msg.c: what daemons publish to each other,
 * round trips of every kind, and hostile bytes refused. */
#include <stdlib.h>
#include <string.h>

#include "cluster_msg.h"
#include "t.h"
#include "wire.h"

static uint8_t buf[CLUSTER_MSG_MAX + 16];
static uint8_t payload[CLUSTER_MSG_MAX_DGRAM + 1];

/* Encodes m, decodes it back into *out; every cut of the encoding and
 * every byte more is refused. */
static int round_trip(const struct cluster_msg *m, struct cluster_msg *out,
                      size_t *len)
{
    ssize_t n = cluster_msg_encode(m, buf, sizeof(buf));

    if (n < CLUSTER_MSG_HEADER)
        return -1;
    *len = (size_t)n;
    if (cluster_msg_decode(buf, (size_t)n, out) < 0)
        return -2;
    /* kinds with a payload take any tail as payload: cuts into the
     * payload are shorter messages, not errors */
    for (size_t cut = 0; cut < (size_t)n; cut++) {
        struct cluster_msg x;

        if (m->len && cut >= (size_t)n - m->len)
            break;
        if (cluster_msg_decode(buf, cut, &x) == 0)
            return -3;
    }
    if (!m->len && m->kind != CLUSTER_MSG_DGRAM &&
        m->kind != CLUSTER_MSG_CHUNK) {
        struct cluster_msg x;

        buf[n] = 0;
        if (cluster_msg_decode(buf, (size_t)n + 1, &x) == 0)
            return -4;
    }
    return 0;
}

static struct cluster_msg *base(int kind)
{
    static struct cluster_msg m;

    memset(&m, 0, sizeof(m));
    m.kind = kind;
    m.origin = 0x0102030405060708ULL;
    return &m;
}

T_TEST(datagram)
{
    struct cluster_msg *m = base(CLUSTER_MSG_DGRAM), d;
    size_t n;

    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (uint8_t)(i * 7);
    m->member = (5ULL << 32) | 17;
    m->payload = payload;
    m->len = 1200;
    T_EQ(round_trip(m, &d, &n), 0);
    T_EQ(d.kind, CLUSTER_MSG_DGRAM);
    T_EQ(d.origin, 0x0102030405060708ULL);
    T_EQ(d.member, m->member);
    T_EQ(d.len, 1200);
    T_MEMEQ(d.payload, payload, 1200);
    T_CHECK(d.payload == buf + n - 1200); /* into the buffer, no copy */
    /* the header: version, kind, origin big-endian */
    T_EQ(buf[0], CLUSTER_MSG_VERSION);
    T_EQ(buf[1], CLUSTER_MSG_DGRAM);
    T_EQ(buf[2], 0x01);
    T_EQ(buf[9], 0x08);
    /* empty, and the largest; one more is refused both ways */
    m->len = 0;
    T_EQ(round_trip(m, &d, &n), 0);
    T_EQ(d.len, 0);
    m->len = CLUSTER_MSG_MAX_DGRAM;
    T_EQ(round_trip(m, &d, &n), 0);
    T_EQ(d.len, CLUSTER_MSG_MAX_DGRAM);
    m->len = CLUSTER_MSG_MAX_DGRAM + 1;
    T_EQ(cluster_msg_encode(m, buf, sizeof(buf)), -1);
    m->len = CLUSTER_MSG_MAX_DGRAM;
    T_CHECK(cluster_msg_encode(m, buf, sizeof(buf)) > 0);
    buf[sizeof(buf) - 1] = 0;
    T_EQ(cluster_msg_decode(buf, (size_t)cluster_msg_encode(m, buf, sizeof(buf)) + 1,
                            &d), -1);
}

T_TEST(chunk_reset)
{
    struct cluster_msg *m = base(CLUSTER_MSG_CHUNK), d;
    size_t n;

    m->member = 3;
    m->stream = 1ULL << 40;
    m->offset = 123456789;
    m->fin = 1;
    m->payload = payload;
    m->len = CLUSTER_MSG_MAX_CHUNK;
    T_EQ(round_trip(m, &d, &n), 0);
    T_EQ(d.member, 3);
    T_EQ(d.stream, 1ULL << 40);
    T_EQ(d.offset, 123456789);
    T_EQ(d.fin, 1);
    T_EQ(d.len, CLUSTER_MSG_MAX_CHUNK);
    m->len = CLUSTER_MSG_MAX_CHUNK + 1;
    T_EQ(cluster_msg_encode(m, buf, sizeof(buf)), -1);
    m->len = 0; /* a FIN alone */
    T_EQ(round_trip(m, &d, &n), 0);
    T_EQ(d.fin, 1);
    T_EQ(d.len, 0);
    m->fin = 2;
    T_EQ(cluster_msg_encode(m, buf, sizeof(buf)), -1);
    /* a fin byte of 2 on the wire */
    m->fin = 0;
    n = (size_t)cluster_msg_encode(m, buf, sizeof(buf));
    buf[n - 1] = 2;
    T_EQ(cluster_msg_decode(buf, n, &d), -1);
    /* a chunk past the largest on the wire */
    m->len = CLUSTER_MSG_MAX_CHUNK;
    n = (size_t)cluster_msg_encode(m, buf, sizeof(buf));
    T_EQ(cluster_msg_decode(buf, n + 1, &d), -1);

    m = base(CLUSTER_MSG_RESET);
    m->member = 9;
    m->stream = 77;
    m->code = 0xe2;
    T_EQ(round_trip(m, &d, &n), 0);
    T_EQ(d.kind, CLUSTER_MSG_RESET);
    T_EQ(d.stream, 77);
    T_EQ(d.code, 0xe2);
    m->code = UINT32_MAX;
    T_EQ(round_trip(m, &d, &n), 0);
    T_EQ(d.code, UINT32_MAX);
    /* a code past 32 bits on the wire */
    n = CLUSTER_MSG_HEADER;
    n += (size_t)wire_varint_encode(buf + n, 8, 9);
    n += (size_t)wire_varint_encode(buf + n, 8, 77);
    n += (size_t)wire_varint_encode(buf + n, 8, 1ULL << 32);
    T_EQ(cluster_msg_decode(buf, n, &d), -1);
}

T_TEST(presence_kinds)
{
    struct cluster_msg *m = base(CLUSTER_MSG_JOIN), d;
    size_t n;

    m->member = (1ULL << 52) + 5;
    T_EQ(round_trip(m, &d, &n), 0);
    T_EQ(d.kind, CLUSTER_MSG_JOIN);
    T_EQ(d.member, (1ULL << 52) + 5);
    m->kind = CLUSTER_MSG_LEAVE;
    T_EQ(round_trip(m, &d, &n), 0);
    T_EQ(d.kind, CLUSTER_MSG_LEAVE);

    m = base(CLUSTER_MSG_BEAT);
    m->count = 1000;
    T_EQ(round_trip(m, &d, &n), 0);
    T_EQ(d.count, 1000);

    m = base(CLUSTER_MSG_HELLO);
    m->flags = CLUSTER_HELLO_ASK | CLUSTER_HELLO_FIRST | CLUSTER_HELLO_LAST;
    m->nids = CLUSTER_MSG_MAX_IDS;
    for (size_t i = 0; i < m->nids; i++)
        m->ids[i] = (7ULL << 32) + i;
    T_EQ(round_trip(m, &d, &n), 0);
    T_EQ(d.flags, m->flags);
    T_EQ(d.nids, CLUSTER_MSG_MAX_IDS);
    T_EQ(d.ids[CLUSTER_MSG_MAX_IDS - 1], (7ULL << 32) + CLUSTER_MSG_MAX_IDS - 1);
    m->nids = 0;
    T_EQ(round_trip(m, &d, &n), 0);
    T_EQ(d.nids, 0);
    m->nids = CLUSTER_MSG_MAX_IDS + 1;
    T_EQ(cluster_msg_encode(m, buf, sizeof(buf)), -1);
    m->nids = 0;
    m->flags = 8;
    T_EQ(cluster_msg_encode(m, buf, sizeof(buf)), -1);
    /* on the wire: unknown flag bits, a count past the largest, a count
     * larger than the ids that follow */
    n = CLUSTER_MSG_HEADER;
    buf[0] = CLUSTER_MSG_VERSION;
    buf[1] = CLUSTER_MSG_HELLO;
    buf[n] = 8;
    buf[n + 1] = 0;
    T_EQ(cluster_msg_decode(buf, n + 2, &d), -1);
    buf[n] = 1;
    n += 1 + (size_t)wire_varint_encode(buf + n + 1, 8, CLUSTER_MSG_MAX_IDS + 1);
    T_EQ(cluster_msg_decode(buf, n, &d), -1);
    n = CLUSTER_MSG_HEADER;
    buf[n] = 1;
    buf[n + 1] = 3;
    buf[n + 2] = 5;
    buf[n + 3] = 6;
    T_EQ(cluster_msg_decode(buf, n + 4, &d), -1);
    buf[n + 4] = 7;
    T_EQ(cluster_msg_decode(buf, n + 5, &d), 0);
    T_EQ(d.nids, 3);
    T_EQ(d.ids[2], 7);
}

T_TEST(hostile)
{
    struct cluster_msg d, *m = base(CLUSTER_MSG_JOIN);
    size_t n;

    m->member = 1;
    n = (size_t)cluster_msg_encode(m, buf, sizeof(buf));
    /* another version, an unknown kind, kind 0 */
    buf[0] = 2;
    T_EQ(cluster_msg_decode(buf, n, &d), -1);
    buf[0] = CLUSTER_MSG_VERSION;
    buf[1] = 8;
    T_EQ(cluster_msg_decode(buf, n, &d), -1);
    buf[1] = 0;
    T_EQ(cluster_msg_decode(buf, n, &d), -1);
    buf[1] = 0xff;
    T_EQ(cluster_msg_decode(buf, n, &d), -1);
    T_EQ(cluster_msg_decode(buf, 0, &d), -1);
    /* encoding refuses an unknown kind and a buffer too small */
    m->kind = 99;
    T_EQ(cluster_msg_encode(m, buf, sizeof(buf)), -1);
    m->kind = CLUSTER_MSG_JOIN;
    T_EQ(cluster_msg_encode(m, buf, CLUSTER_MSG_HEADER), -1);
    m->member = 1ULL << 62; /* not a varint */
    T_EQ(cluster_msg_encode(m, buf, sizeof(buf)), -1);
    /* random bytes: refused or decoded within bounds, never a crash */
    srand(1);
    for (int i = 0; i < 200000; i++) {
        size_t len = (size_t)(rand() % 64);

        for (size_t k = 0; k < len; k++)
            buf[k] = (uint8_t)rand();
        if (len > 1 && i % 2) {
            buf[0] = CLUSTER_MSG_VERSION;
            buf[1] = (uint8_t)(1 + rand() % 7);
        }
        if (cluster_msg_decode(buf, len, &d) == 0) {
            T_CHECK(d.kind >= CLUSTER_MSG_DGRAM && d.kind <= CLUSTER_MSG_BEAT);
            T_CHECK(d.nids <= CLUSTER_MSG_MAX_IDS);
            if (d.payload)
                T_CHECK(d.payload >= buf && d.payload + d.len == buf + len);
        }
    }
}

int main(void)
{
    T_RUN(datagram);
    T_RUN(chunk_reset);
    T_RUN(presence_kinds);
    T_RUN(hostile);
    T_DONE();
}
