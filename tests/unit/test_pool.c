/* Unit tests of src/pool.c: bounded free lists, kept by one thread only. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"
#include "t.h"

static struct pool p16 = POOL_INIT(16, 3);
static struct pool p64 = POOL_INIT(64, 2);

/* what a thread that does not own the pools did to them */
static size_t helper_n;
static void *helper(void *arg)
{
    void *b = pool_get(&p16);

    (void)arg;
    if (b) {
        memset(b, 0xa5, 16); /* a whole block of its own */
        pool_put(&p16, b);
    }
    helper_n = p16.n;
    return NULL;
}

T_TEST(unowned_is_malloc)
{
    void *b = pool_get(&p16);

    /* before pool_thread_own(): nothing is kept */
    T_CHECK(b != NULL);
    T_EQ(pool_keeps(), 0);
    pool_put(&p16, b);
    T_EQ(p16.n, 0);
    T_CHECK(p16.free == NULL);
    pool_put(&p16, NULL);
}

T_TEST(kept_up_to_max)
{
    void *b[5];

    pool_thread_own();
    for (size_t i = 0; i < 5; i++) {
        T_CHECK((b[i] = pool_get(&p16)) != NULL);
        memset(b[i], (int)i, 16);
    }
    for (size_t i = 0; i < 5; i++)
        pool_put(&p16, b[i]);
    if (!pool_keeps()) { /* AddressSanitizer: every block freed */
        T_EQ(p16.n, 0);
        return;
    }
    T_EQ(p16.n, 3); /* the bound: the last two were freed */
    /* the last kept comes back first, and the count follows */
    T_CHECK(pool_get(&p16) == b[2]);
    T_EQ(p16.n, 2);
    T_CHECK(pool_get(&p16) == b[1]);
    T_CHECK(pool_get(&p16) == b[0]);
    T_EQ(p16.n, 0);
    /* empty again: a new block */
    T_CHECK((b[3] = pool_get(&p16)) != NULL);
    pool_put(&p16, b[0]);
    pool_put(&p16, b[1]);
    pool_put(&p16, b[2]);
    pool_put(&p16, b[3]);
    T_EQ(p16.n, 3);
}

T_TEST(other_threads_keep_nothing)
{
    pthread_t t;
    size_t before = p16.n;

    T_EQ(pthread_create(&t, NULL, helper, NULL), 0);
    T_EQ(pthread_join(t, NULL), 0);
    /* the helper neither took a kept block nor kept its own */
    T_EQ(helper_n, before);
    T_EQ(p16.n, before);
}

T_TEST(drain_all)
{
    void *a = pool_get(&p64), *b = pool_get(&p64);

    T_CHECK(a && b);
    pool_put(&p64, a);
    pool_put(&p64, b);
    T_EQ(p64.n, pool_keeps() ? 2 : 0);
    pool_drain_all();
    T_EQ(p16.n, 0);
    T_EQ(p64.n, 0);
    T_CHECK(p16.free == NULL && p64.free == NULL);
    /* and they work after it */
    a = pool_get(&p64);
    T_CHECK(a != NULL);
    pool_put(&p64, a);
    T_EQ(p64.n, pool_keeps() ? 1 : 0);
    pool_drain_all();
    T_EQ(p64.n, 0);
}

int main(void)
{
    T_RUN(unowned_is_malloc);
    T_RUN(kept_up_to_max);
    T_RUN(other_threads_keep_nothing);
    T_RUN(drain_all);
    T_DONE();
}
