/* pool: see pool.h. */
#include "pool.h"

#include <stdlib.h>

#if defined(__SANITIZE_ADDRESS__)
#define POOL_OFF 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define POOL_OFF 1
#endif
#endif
#ifndef POOL_OFF
#define POOL_OFF 0
#endif

static _Thread_local int owner;
static struct pool *listed; /* the owner's pools that held a block */

void pool_thread_own(void)
{
    owner = 1;
}

int pool_keeps(void)
{
    return owner && !POOL_OFF;
}

void *pool_get(struct pool *p)
{
    void *b;

    if (!pool_keeps() || !(b = p->free))
        return malloc(p->size);
    p->free = *(void **)b;
    p->n--;
    return b;
}

void pool_put(struct pool *p, void *b)
{
    if (!b)
        return;
    if (!pool_keeps() || p->n >= p->max) {
        free(b);
        return;
    }
    if (!p->listed) {
        p->listed = 1;
        p->next = listed;
        listed = p;
    }
    *(void **)b = p->free;
    p->free = b;
    p->n++;
}

void pool_drain_all(void)
{
    if (!owner)
        return;
    while (listed) {
        struct pool *p = listed;

        listed = p->next;
        while (p->free) {
            void *b = p->free;

            p->free = *(void **)b;
            free(b);
        }
        p->n = 0;
        p->listed = 0;
    }
}
