/*
 * u64map: a map from 64-bit keys to 64-bit values (open addressing, linear
 * probing, SipHash-keyed) for ids a peer chooses: lookups stay O(1)
 * whatever keys arrive, since without the key nobody can aim them at one
 * run of slots.  At most half full; shrinks when mostly empty, so a burst
 * of keys leaves no large table behind.  No iteration: owners keep their
 * own list or array of what they store.
 */
#ifndef WTRELAYD_U64MAP_H
#define WTRELAYD_U64MAP_H

#include <stddef.h>
#include <stdint.h>

struct u64map_slot {
    uint64_t key, val;
};

struct u64map {
    uint64_t k0, k1;
    struct u64map_slot *slots;
    uint8_t *used;
    size_t cap, n; /* cap: 0 or a power of two */
};

/* An empty map hashing under the key (k0, k1); allocates nothing. */
void u64map_init(struct u64map *m, uint64_t k0, uint64_t k1);
void u64map_free(struct u64map *m);
/* 1 with *val set (val may be NULL), or 0 when key is absent. */
int u64map_get(const struct u64map *m, uint64_t key, uint64_t *val);
/* Sets key to val (replacing).  0, or -1 when out of memory (the map is
 * unchanged). */
int u64map_put(struct u64map *m, uint64_t key, uint64_t val);
/* 1 when key was there (now removed), 0 when absent. */
int u64map_del(struct u64map *m, uint64_t key);

static inline size_t u64map_count(const struct u64map *m)
{
    return m->n;
}

#endif
