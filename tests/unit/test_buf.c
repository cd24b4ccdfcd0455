/* Unit tests of src/buf.c: bytes stay in place until acknowledged. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "t.h"

static size_t gather(const struct buf *b, uint8_t *out, size_t cap)
{
    struct iovec iov[64];
    size_t k = buf_peek(b, iov, 64), n = 0;

    for (size_t i = 0; i < k && n < cap; i++) {
        memcpy(out + n, iov[i].iov_base, iov[i].iov_len);
        n += iov[i].iov_len;
    }
    return n;
}

T_TEST(append_peek_send_ack)
{
    struct buf b;
    uint8_t data[300000], out[300000];
    struct iovec iov[4];
    const void *first;

    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 31 + 7);
    buf_init(&b);
    T_EQ(buf_append(&b, data, 10), 0);
    T_EQ(buf_append(&b, data + 10, sizeof(data) - 10), 0);
    T_EQ(buf_unsent(&b), sizeof(data));
    T_EQ(gather(&b, out, sizeof(out)), sizeof(data));
    T_MEMEQ(out, data, sizeof(data));

    /* sent bytes are not offered again, but stay until acked */
    T_CHECK(buf_peek(&b, iov, 4) > 0);
    first = iov[0].iov_base;
    buf_mark_sent(&b, 1000);
    T_EQ(buf_unsent(&b), sizeof(data) - 1000);
    T_EQ(buf_unacked(&b), sizeof(data));
    T_EQ(gather(&b, out, sizeof(out)), sizeof(data) - 1000);
    T_MEMEQ(out, data + 1000, sizeof(data) - 1000);
    T_EQ(((const uint8_t *)first)[0], data[0]); /* not moved */

    buf_mark_sent(&b, sizeof(data) - 1000);
    T_EQ(buf_unsent(&b), 0);
    T_EQ(buf_peek(&b, iov, 4), 0);
    buf_ack(&b, 500);
    T_EQ(buf_unacked(&b), sizeof(data) - 500);
    buf_ack(&b, sizeof(data) - 500);
    T_EQ(buf_unacked(&b), 0);
    T_CHECK(b.head == NULL || b.head == b.tail);

    /* appending after everything was acked starts cleanly */
    T_EQ(buf_append(&b, "xyz", 3), 0);
    T_EQ(gather(&b, out, sizeof(out)), 3);
    T_MEMEQ(out, "xyz", 3);
    buf_free(&b);
}

T_TEST(interleaved_small_writes)
{
    struct buf b;
    uint8_t out[5000];
    uint64_t sent = 0;

    buf_init(&b);
    for (int i = 0; i < 1000; i++) {
        uint8_t c[5];

        memset(c, i & 0xff, sizeof(c));
        T_EQ(buf_append(&b, c, sizeof(c)), 0);
        if (i % 3 == 0) {
            size_t n = gather(&b, out, sizeof(out));

            T_EQ(n, buf_unsent(&b));
            buf_mark_sent(&b, n);
            sent += n;
            buf_ack(&b, n / 2);
        }
    }
    T_EQ(buf_append(&b, "\xaa", 1), 0);
    T_EQ(b.end, 5001);
    T_EQ(b.sent, sent);
    T_EQ(gather(&b, out, sizeof(out)), 5001 - sent);
    T_EQ(out[5000 - sent], 0xaa);
    if (sent < 5000)
        T_EQ(out[0], (uint8_t)(sent / 5));
    buf_free(&b);
    T_EQ(b.end, 0);
}

/* An idle buffer gives its memory back; offsets carry on. */
T_TEST(release_idle)
{
    struct buf b;
    uint8_t out[64];

    buf_init(&b);
    T_EQ(buf_append(&b, "settings", 8), 0);
    buf_mark_sent(&b, 8);
    buf_release_idle(&b); /* not acked yet: kept */
    T_CHECK(b.head != NULL);
    buf_ack(&b, 5);
    buf_release_idle(&b);
    T_CHECK(b.head != NULL);
    buf_ack(&b, 3);
    buf_release_idle(&b);
    T_CHECK(b.head == NULL && b.tail == NULL && b.send == NULL);
    T_EQ(buf_unacked(&b), 0);
    T_EQ(b.end, 8);

    T_EQ(buf_append(&b, "goaway", 6), 0);
    T_EQ(buf_unsent(&b), 6);
    T_EQ(gather(&b, out, sizeof(out)), 6);
    T_MEMEQ(out, "goaway", 6);
    buf_mark_sent(&b, 6);
    buf_ack(&b, 6);
    T_EQ(b.acked, 14);
    buf_release_idle(&b);
    T_CHECK(b.head == NULL);
    buf_free(&b);
}

/* Shared blocks: held once, referenced by each buffer until acked. */
T_TEST(shared_blocks)
{
    struct buf a, b;
    struct buf_shared *s = buf_shared_new("0123456789", 10, 0);
    uint8_t out[64];

    T_CHECK(s != NULL);
    buf_init(&a);
    buf_init(&b);
    T_EQ(buf_append(&a, "<", 1), 0);
    T_EQ(buf_append_shared(&a, s, 2, 5), 0);
    T_EQ(buf_append(&a, ">", 1), 0);
    T_EQ(buf_append_shared(&b, s, 0, 10), 0);
    T_EQ(buf_append_shared(&b, s, 0, 0), 0); /* nothing, no reference */
    T_EQ(s->refs, 3);
    T_EQ(gather(&a, out, sizeof(out)), 7);
    T_MEMEQ(out, "<23456>", 7);
    T_EQ(gather(&b, out, sizeof(out)), 10);
    T_MEMEQ(out, "0123456789", 10);
    /* the block's bytes are sent in place, not copied */
    {
        struct iovec iov[4];

        T_EQ(buf_peek(&b, iov, 4), 1);
        T_CHECK(iov[0].iov_base == (void *)s->data);
    }
    /* a buffer lets go of the block once its range is acknowledged */
    buf_mark_sent(&a, 7);
    buf_ack(&a, 3);
    T_EQ(s->refs, 3);
    buf_ack(&a, 3);
    T_EQ(s->refs, 2);
    /* appending after a shared chunk starts an owned chunk */
    T_EQ(buf_append(&b, "!", 1), 0);
    T_EQ(gather(&b, out, sizeof(out)), 11);
    T_MEMEQ(out, "0123456789!", 11);
    buf_free(&b);
    T_EQ(s->refs, 1);
    buf_free(&a);
    T_EQ(s->refs, 1);
    buf_shared_unref(s); /* the last reference: freed (ASan checks) */
}

/* A block filled as bytes arrive: each buffer's chunk grows with it. */
T_TEST(shared_block_grows)
{
    struct buf a;
    struct buf_shared *s = buf_shared_new("ab", 2, 8);
    uint8_t out[16];
    struct iovec iov[4];

    buf_init(&a);
    T_EQ(buf_append_shared(&a, s, 0, 2), 0);
    T_EQ(buf_shared_add(s, "cde", 3), 0);
    T_EQ(buf_append_shared(&a, s, 2, 3), 0);
    T_EQ(buf_peek(&a, iov, 4), 1); /* one chunk, extended */
    T_EQ(gather(&a, out, sizeof(out)), 5);
    T_MEMEQ(out, "abcde", 5);
    T_EQ(s->refs, 2);
    buf_mark_sent(&a, 5);
    T_EQ(buf_shared_add(s, "fgh", 3), 0);
    T_EQ(buf_shared_add(s, "i", 1), -1); /* full */
    T_EQ(buf_append_shared(&a, s, 5, 3), 0); /* after sent bytes: fine */
    T_EQ(gather(&a, out, sizeof(out)), 3);
    T_MEMEQ(out, "fgh", 3);
    buf_mark_sent(&a, 3);
    buf_ack(&a, 8);
    T_EQ(s->refs, 1);
    buf_free(&a);
    buf_shared_unref(s);
}

int main(void)
{
    T_RUN(append_peek_send_ack);
    T_RUN(interleaved_small_writes);
    T_RUN(release_idle);
    T_RUN(shared_blocks);
    T_RUN(shared_block_grows);
    T_DONE();
}
