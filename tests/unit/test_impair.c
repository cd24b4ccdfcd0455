/* Unit tests of src/impair.c: the simulated path's scheduling, without
 * sockets or timers (time is a number the test advances). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "impair.h"
#include "t.h"

#define MS 1000000ull

/* A delivered packet: its number (the first 4 bytes) and when. */
struct seen {
    uint32_t num;
    uint64_t at;
};

static struct impair_pkt tmpl;

/* Admits packet `num` at `now`; a packet passing at once is delivered. */
static void admit(struct impair_queue *q, const struct impair_cfg *c,
                  uint64_t *rng, struct impair_stats *st, uint64_t now,
                  uint32_t num, struct seen *out, size_t *nout)
{
    uint8_t p[100];

    memset(p, (int)num, sizeof(p));
    memcpy(p, &num, 4);
    if (impair_admit(q, c, rng, st, now, &tmpl, p, sizeof(p)))
        out[(*nout)++] = (struct seen){num, now};
}

/* Delivers everything due at `now`, checking the copy is intact. */
static int drain(struct impair_queue *q, uint64_t now, struct seen *out,
                 size_t *nout)
{
    struct impair_pkt *k;

    while ((k = impair_pop(q, now))) {
        uint32_t num;

        memcpy(&num, k->data, 4);
        if (k->len != 100 || k->data[99] != (uint8_t)num) {
            free(k);
            return -1;
        }
        out[(*nout)++] = (struct seen){num, now};
        free(k);
    }
    return 0;
}

T_TEST(off_passes_everything)
{
    struct impair_queue q;
    struct impair_cfg c = {0};
    struct impair_stats st = {0};
    uint64_t rng = 1, due;
    struct seen out[100];
    size_t n = 0;

    impair_queue_init(&q);
    T_CHECK(!impair_active(&c));
    for (uint32_t i = 0; i < 100; i++)
        admit(&q, &c, &rng, &st, i * MS, i, out, &n);
    T_EQ(n, 100);
    T_EQ(impair_next_due(&q, &due), -1);
    T_EQ(st.packets, 100);
    T_EQ(st.delayed + st.reordered + st.duplicated + st.overflow, 0);
}

/* Delay with jitter: nothing early, nothing later than delay + jitter
 * past the one before, and never out of order. */
T_TEST(delay_jitter_in_order)
{
    struct impair_queue q;
    struct impair_cfg c = {.delay_ns = 10 * MS, .jitter_ns = 5 * MS};
    struct impair_stats st = {0};
    uint64_t rng = 7, due, t;
    static struct seen out[2000];
    size_t n = 0;
    uint64_t sent[1000];

    impair_queue_init(&q);
    /* a packet every 0.1 ms; delivered at 0.05 ms steps */
    for (t = 0; n < 1000 && t < 1000 * MS; t += MS / 20) {
        if (t % (MS / 10) == 0 && t / (MS / 10) < 1000) {
            uint32_t i = (uint32_t)(t / (MS / 10));

            sent[i] = t;
            admit(&q, &c, &rng, &st, t, i, out, &n);
        }
        T_EQ(drain(&q, t, out, &n), 0);
    }
    T_EQ(n, 1000);
    T_EQ(st.delayed, 1000);
    for (size_t i = 0; i < n; i++) {
        T_EQ(out[i].num, i);                          /* in order */
        T_CHECK(out[i].at >= sent[i] + 5 * MS);       /* delay - jitter */
        if (i > 0)                                    /* bounded wait */
            T_CHECK(out[i].at <= (sent[i] + 15 * MS > out[i - 1].at
                                      ? sent[i] + 15 * MS
                                      : out[i - 1].at) + MS / 20);
    }
    T_EQ(impair_next_due(&q, &due), -1);
    T_EQ(q.bytes, 0);
}

/* Reordered packets go after 1..3 later ones (the path is busy), and
 * only those are out of order. */
T_TEST(reorder_bounded)
{
    struct impair_queue q;
    struct impair_cfg c = {.reorder = 0.2};
    struct impair_stats st = {0};
    uint64_t rng = 99;
    static struct seen out[5000];
    size_t n = 0;
    int pos[5000];
    uint8_t held[5000];

    impair_queue_init(&q);
    for (uint32_t i = 0; i < 5000; i++) {
        size_t before = n;

        admit(&q, &c, &rng, &st, i * 1000, i, out, &n);
        held[i] = n == before;
        T_EQ(drain(&q, i * 1000, out, &n), 0);
    }
    T_EQ(drain(&q, UINT64_MAX / 2, out, &n), 0);
    T_EQ(n, 5000);
    T_CHECK(st.reordered > 800 && st.reordered < 1200);
    for (size_t i = 0; i < n; i++)
        pos[out[i].num] = (int)i;
    {
        size_t moved = 0;

        for (uint32_t i = 0; i < 5000; i++) {
            size_t later_before = 0;

            for (int k = 0; k < pos[i]; k++)
                if (out[k].num > i && !held[out[k].num])
                    later_before++;
            /* only reordered packets move, and by 3 packets at most (and
             * the reordered ones behind it that were let go first) */
            T_CHECK(later_before <= 3);
            moved += later_before > 0;
        }
        /* the last few found no later packets to wait for */
        T_CHECK(moved <= st.reordered && moved + 3 >= st.reordered);
    }
}

/* A quiet path: a reordered packet with nothing behind it still goes,
 * IMPAIR_REORDER_WAIT_NS late. */
T_TEST(reorder_quiet_path)
{
    struct impair_queue q;
    struct impair_cfg c = {.reorder = 1.0};
    struct impair_stats st = {0};
    uint64_t rng = 5, due;
    struct seen out[4];
    size_t n = 0;

    impair_queue_init(&q);
    admit(&q, &c, &rng, &st, 0, 1, out, &n);
    T_EQ(n, 0);
    T_EQ(impair_next_due(&q, &due), 0);
    T_EQ(due, IMPAIR_REORDER_WAIT_NS);
    T_EQ(drain(&q, due - 1, out, &n), 0);
    T_EQ(n, 0);
    T_EQ(drain(&q, due, out, &n), 0);
    T_EQ(n, 1);
}

T_TEST(dup_twice_intact)
{
    struct impair_queue q;
    struct impair_cfg c = {.dup = 1.0};
    struct impair_stats st = {0};
    uint64_t rng = 3;
    struct seen out[200];
    size_t n = 0;
    int count[100] = {0};

    impair_queue_init(&q);
    for (uint32_t i = 0; i < 100; i++) {
        admit(&q, &c, &rng, &st, i * MS, i, out, &n);
        T_EQ(drain(&q, i * MS, out, &n), 0);
    }
    T_EQ(n, 200);
    for (size_t i = 0; i < n; i++)
        count[out[i].num]++;
    for (int i = 0; i < 100; i++)
        T_EQ(count[i], 2);
    T_EQ(st.duplicated, 100);
}

/* Full: held packets and bytes stay within their bounds, the rest is
 * dropped and counted; freeing the queue frees them (ASan checks). */
T_TEST(bounded_and_counted)
{
    struct impair_queue q;
    struct impair_cfg c = {.delay_ns = 1000 * MS, .reorder = 0.1, .dup = 0.1};
    struct impair_stats st = {0};
    uint64_t rng = 11, held;
    struct seen out[8];
    size_t n = 0;

    impair_queue_init(&q);
    for (uint32_t i = 0; i < 5000; i++)
        admit(&q, &c, &rng, &st, i, i, out, &n);
    T_EQ(n, 0);
    held = q.n + q.nheld;
    T_CHECK(held <= IMPAIR_MAX_HELD);
    T_CHECK(q.nheld <= IMPAIR_MAX_REORDER);
    T_CHECK(q.bytes <= IMPAIR_MAX_BYTES);
    T_EQ(st.delayed + st.reordered + st.duplicated, held);
    T_CHECK(st.overflow >= 5000 - IMPAIR_MAX_HELD);
    impair_queue_free(&q);
    T_EQ(q.n + q.nheld, 0);
}

/* The same seed, the same decisions. */
T_TEST(seeded_repeatable)
{
    struct impair_cfg c = {.delay_ns = 2 * MS, .jitter_ns = MS, .reorder = 0.1,
                           .dup = 0.05};
    static struct seen a[3000], b[3000];
    size_t na = 0, nb = 0;

    for (int run = 0; run < 2; run++) {
        struct impair_queue q;
        struct impair_stats st = {0};
        uint64_t rng = 42;
        struct seen *out = run ? b : a;
        size_t *n = run ? &nb : &na;

        impair_queue_init(&q);
        for (uint32_t i = 0; i < 1000; i++) {
            admit(&q, &c, &rng, &st, i * MS / 4, i, out, n);
            T_EQ(drain(&q, i * MS / 4, out, n), 0);
        }
        T_EQ(drain(&q, UINT64_MAX / 2, out, n), 0);
        impair_queue_free(&q);
    }
    T_EQ(na, nb);
    T_CHECK(na > 1000);
    for (size_t i = 0; i < na; i++) {
        T_EQ(a[i].num, b[i].num);
        T_EQ(a[i].at, b[i].at);
    }
}

int main(void)
{
    T_RUN(off_passes_everything);
    T_RUN(delay_jitter_in_order);
    T_RUN(reorder_bounded);
    T_RUN(reorder_quiet_path);
    T_RUN(dup_twice_intact);
    T_RUN(bounded_and_counted);
    T_RUN(seeded_repeatable);
    T_DONE();
}
