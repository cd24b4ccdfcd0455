/* Unit tests of src/u64map.c: put, get, replace, delete (backward shift
 * keeps every other key findable), growth and shrinking, and many random
 * operations against a plain array. */
#include <stdlib.h>
#include <string.h>

#include "t.h"
#include "u64map.h"

T_TEST(basics)
{
    struct u64map m;
    uint64_t v = 0;

    u64map_init(&m, 1, 2);
    T_EQ(u64map_get(&m, 5, &v), 0);
    T_EQ(u64map_del(&m, 5), 0);
    T_EQ(u64map_put(&m, 5, 50), 0);
    T_EQ(u64map_put(&m, 0, 7), 0); /* 0 is a key like any */
    T_EQ(u64map_get(&m, 5, &v), 1);
    T_EQ(v, 50);
    T_EQ(u64map_put(&m, 5, 51), 0);
    T_EQ(u64map_count(&m), 2);
    T_EQ(u64map_get(&m, 5, &v), 1);
    T_EQ(v, 51);
    T_EQ(u64map_get(&m, 0, &v), 1);
    T_EQ(v, 7);
    T_EQ(u64map_del(&m, 5), 1);
    T_EQ(u64map_get(&m, 5, NULL), 0);
    T_EQ(u64map_del(&m, 0), 1);
    T_EQ(u64map_count(&m), 0);
    T_CHECK(m.slots == NULL); /* empty: nothing held */
    u64map_free(&m);
}

T_TEST(grow_and_shrink)
{
    struct u64map m;
    uint64_t v;
    int ok = 1;

    u64map_init(&m, 3, 4);
    for (uint64_t k = 0; k < 100000; k++)
        ok &= u64map_put(&m, k * 0x100000000ULL, k) == 0;
    T_CHECK(ok);
    T_EQ(u64map_count(&m), 100000);
    T_CHECK(m.cap >= 200000 && m.cap <= 262144);
    for (uint64_t k = 0; k < 100000; k++)
        ok &= u64map_get(&m, k * 0x100000000ULL, &v) == 1 && v == k;
    T_CHECK(ok);
    for (uint64_t k = 0; k < 99990; k++)
        ok &= u64map_del(&m, k * 0x100000000ULL) == 1;
    T_CHECK(ok);
    T_EQ(u64map_count(&m), 10);
    T_CHECK(m.cap <= 128); /* gave the memory back */
    for (uint64_t k = 99990; k < 100000; k++)
        ok &= u64map_get(&m, k * 0x100000000ULL, &v) == 1 && v == k;
    T_CHECK(ok);
    u64map_free(&m);
}

/* Random puts and deletes over a small key range (many runs and wraps at
 * the table's end), checked against an array after every step. */
T_TEST(random_against_array)
{
    enum { RANGE = 300, STEPS = 200000 };
    struct u64map m;
    uint64_t ref[RANGE];
    uint8_t in[RANGE] = {0};
    size_t n = 0;
    int ok = 1;

    srand(7);
    u64map_init(&m, 0x1234, 0x5678);
    for (int s = 0; s < STEPS && ok; s++) {
        unsigned k = (unsigned)rand() % RANGE;
        uint64_t v;

        if (rand() % 3) {
            uint64_t val = (uint64_t)rand();

            ok &= u64map_put(&m, k, val) == 0;
            n += !in[k];
            in[k] = 1;
            ref[k] = val;
        } else {
            ok &= u64map_del(&m, k) == in[k];
            n -= in[k];
            in[k] = 0;
        }
        ok &= u64map_count(&m) == n;
        /* every key, present or not, answers as the array does */
        if (s % 97 == 0)
            for (unsigned j = 0; j < RANGE; j++)
                ok &= u64map_get(&m, j, &v) == in[j] && (!in[j] || v == ref[j]);
    }
    T_CHECK(ok);
    u64map_free(&m);
}

int main(void)
{
    T_RUN(basics);
    T_RUN(grow_and_shrink);
    T_RUN(random_against_array);
    T_DONE();
}
