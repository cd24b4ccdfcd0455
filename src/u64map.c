/* u64map: see u64map.h. */
#include "u64map.h"

#include <stdlib.h>
#include <string.h>

#include "siphash.h"

#define MIN_CAP 8

static size_t home(const struct u64map *m, uint64_t key)
{
    uint8_t b[8];

    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(key >> (8 * i));
    return (size_t)siphash24(m->k0, m->k1, b, sizeof(b)) & (m->cap - 1);
}

/* The slot holding key, or the empty one where it would go. */
static size_t probe(const struct u64map *m, uint64_t key)
{
    size_t i = home(m, key);

    while (m->used[i] && m->slots[i].key != key)
        i = (i + 1) & (m->cap - 1);
    return i;
}

static int resize(struct u64map *m, size_t cap)
{
    struct u64map old = *m;

    m->slots = malloc(cap * sizeof(*m->slots));
    m->used = calloc(cap, 1);
    if (!m->slots || !m->used) {
        free(m->slots);
        free(m->used);
        *m = old;
        return -1;
    }
    m->cap = cap;
    for (size_t i = 0; i < old.cap; i++) {
        size_t j;

        if (!old.used[i])
            continue;
        j = probe(m, old.slots[i].key);
        m->used[j] = 1;
        m->slots[j] = old.slots[i];
    }
    free(old.slots);
    free(old.used);
    return 0;
}

void u64map_init(struct u64map *m, uint64_t k0, uint64_t k1)
{
    memset(m, 0, sizeof(*m));
    m->k0 = k0;
    m->k1 = k1;
}

void u64map_free(struct u64map *m)
{
    free(m->slots);
    free(m->used);
    u64map_init(m, m->k0, m->k1);
}

int u64map_get(const struct u64map *m, uint64_t key, uint64_t *val)
{
    size_t i;

    if (!m->n)
        return 0;
    i = probe(m, key);
    if (!m->used[i])
        return 0;
    if (val)
        *val = m->slots[i].val;
    return 1;
}

int u64map_put(struct u64map *m, uint64_t key, uint64_t val)
{
    size_t i;

    if (m->cap) {
        i = probe(m, key);
        if (m->used[i]) {
            m->slots[i].val = val;
            return 0;
        }
    }
    /* at most half full: probe runs stay short */
    if ((m->n + 1) * 2 > m->cap &&
        resize(m, m->cap ? m->cap * 2 : MIN_CAP) < 0)
        return -1;
    i = probe(m, key);
    m->used[i] = 1;
    m->slots[i].key = key;
    m->slots[i].val = val;
    m->n++;
    return 0;
}

int u64map_del(struct u64map *m, uint64_t key)
{
    size_t i, j, mask;

    if (!m->n)
        return 0;
    i = probe(m, key);
    if (!m->used[i])
        return 0;
    mask = m->cap - 1;
    /* backward shift: every later member of the run that may live in the
     * hole moves into it, so no tombstones pile up */
    for (j = (i + 1) & mask; m->used[j]; j = (j + 1) & mask) {
        size_t h = home(m, m->slots[j].key);

        /* j's home lies cyclically in (i, j]: it must stay */
        if (i <= j ? (i < h && h <= j) : (i < h || h <= j))
            continue;
        m->slots[i] = m->slots[j];
        i = j;
    }
    m->used[i] = 0;
    m->n--;
    if (m->n == 0) {
        u64map_free(m);
    } else if (m->cap > MIN_CAP && m->n * 8 < m->cap) {
        resize(m, m->cap / 2); /* failing to shrink is harmless */
    }
    return 1;
}
