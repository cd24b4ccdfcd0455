/*
 * addrlim: per-source-address limits (see addrlim.h).  A chained hash
 * table keyed by SipHash-2-4 (siphash.c), an idle list of entries that only remember
 * a refilling bucket, and the counts.
 */
#include "addrlim.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "siphash.h"

/* Idle entries looked at per admission: amortised clean-up, bounded. */
#define REAP_PER_CALL 4

/* ---- keys ---- */

int addrlim_key_of(const struct sockaddr *sa, struct addrlim_key *k)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

    memset(k, 0, sizeof(*k));
    if (sa->sa_family == AF_INET) {
        memcpy(k->b, mapped, sizeof(mapped));
        memcpy(k->b + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;

        if (memcmp(a, mapped, sizeof(mapped)) == 0) /* IPv4 after all */
            memcpy(k->b, a, 16);
        else
            memcpy(k->b, a, 8); /* the /64 */
        return 0;
    }
    return -1;
}

static int key_is_v4(const struct addrlim_key *k)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

    return memcmp(k->b, mapped, sizeof(mapped)) == 0;
}

const char *addrlim_key_str(const struct addrlim_key *k, char *buf, size_t len)
{
    char a[INET6_ADDRSTRLEN];

    if (key_is_v4(k)) {
        if (!inet_ntop(AF_INET, k->b + 12, a, sizeof(a)))
            snprintf(a, sizeof(a), "?");
        snprintf(buf, len, "%s", a);
    } else {
        if (!inet_ntop(AF_INET6, k->b, a, sizeof(a)))
            snprintf(a, sizeof(a), "?");
        snprintf(buf, len, "%s/64", a);
    }
    return buf;
}

/* ---- the table ---- */

int addrlim_init(struct addrlim *t, size_t nbuckets, const uint8_t key[16])
{
    size_t nb = 16;

    memset(t, 0, sizeof(*t));
    while (nb < nbuckets && nb < ((size_t)1 << 24))
        nb *= 2;
    t->buckets = calloc(nb, sizeof(*t->buckets));
    if (!t->buckets)
        return -1;
    t->nbuckets = nb;
    t->k0 = siphash_le64(key);
    t->k1 = siphash_le64(key + 8);
    return 0;
}

void addrlim_free(struct addrlim *t)
{
    if (!t->buckets)
        return;
    for (size_t i = 0; i < t->nbuckets; i++) {
        struct addrlim_entry *e = t->buckets[i], *next;

        for (; e; e = next) {
            next = e->next;
            free(e);
        }
    }
    free(t->buckets);
    memset(t, 0, sizeof(*t));
}

void addrlim_set_limits(struct addrlim *t, const struct addrlim_limits *l)
{
    t->lim = *l;
    if (t->lim.rate > 0 && t->lim.burst < 1)
        t->lim.burst = 1;
}

static struct addrlim_entry **slot(struct addrlim *t,
                                  const struct addrlim_key *k)
{
    struct addrlim_entry **e =
        &t->buckets[siphash24(t->k0, t->k1, k->b, sizeof(k->b)) &
                    (t->nbuckets - 1)];

    for (; *e; e = &(*e)->next)
        if (memcmp((*e)->key.b, k->b, sizeof(k->b)) == 0)
            break;
    return e;
}

struct addrlim_entry *addrlim_find(struct addrlim *t,
                                   const struct addrlim_key *k)
{
    return t->buckets ? *slot(t, k) : NULL;
}

static void idle_remove(struct addrlim *t, struct addrlim_entry *e)
{
    if (!e->idle)
        return;
    if (e->idle_prev)
        e->idle_prev->idle_next = e->idle_next;
    else
        t->idle_head = e->idle_next;
    if (e->idle_next)
        e->idle_next->idle_prev = e->idle_prev;
    else
        t->idle_tail = e->idle_prev;
    e->idle_prev = e->idle_next = NULL;
    e->idle = 0;
}

static void idle_append(struct addrlim *t, struct addrlim_entry *e)
{
    if (e->idle)
        return;
    e->idle = 1;
    e->idle_next = NULL;
    e->idle_prev = t->idle_tail;
    if (t->idle_tail)
        t->idle_tail->idle_next = e;
    else
        t->idle_head = e;
    t->idle_tail = e;
}

static void entry_delete(struct addrlim *t, struct addrlim_entry *e)
{
    struct addrlim_entry **s = slot(t, &e->key);

    idle_remove(t, e);
    if (*s == e)
        *s = e->next;
    free(e);
    t->n--;
}

/* The bucket now (tokens accrue at `rate` up to `burst`). */
static double refill(const struct addrlim *t, struct addrlim_entry *e,
                     double now)
{
    if (now > e->stamp) {
        e->tokens += (now - e->stamp) * t->lim.rate;
        e->stamp = now;
    }
    if (e->tokens > t->lim.burst)
        e->tokens = t->lim.burst;
    return e->tokens;
}

static int holds_nothing(const struct addrlim_entry *e)
{
    return e->conns == 0 && e->handshakes == 0 && e->sessions == 0;
}

/* An entry that may hold nothing any more: kept on the idle list while
 * its bucket refills, freed once there is nothing to remember. */
static void settle(struct addrlim *t, struct addrlim_entry *e, double now)
{
    if (!holds_nothing(e))
        return;
    if (t->lim.rate > 0 && refill(t, e, now) < t->lim.burst)
        idle_append(t, e);
    else
        entry_delete(t, e);
}

static void reap(struct addrlim *t, double now, int max)
{
    for (int i = 0; i < max && t->idle_head; i++) {
        struct addrlim_entry *e = t->idle_head;

        if (t->lim.rate > 0 && refill(t, e, now) < t->lim.burst)
            break;
        entry_delete(t, e);
    }
}

int addrlim_over_rate(struct addrlim *t, const struct addrlim_key *k,
                      double now)
{
    struct addrlim_entry *e;
    double tokens;

    if (t->lim.rate <= 0 || !(e = addrlim_find(t, k)))
        return 0;
    tokens = e->tokens;
    if (now > e->stamp)
        tokens += (now - e->stamp) * t->lim.rate;
    return tokens < 1;
}

enum addrlim_verdict addrlim_admit(struct addrlim *t,
                                   const struct addrlim_key *k, double now,
                                   struct addrlim_entry **out)
{
    struct addrlim_entry **s, *e;
    enum addrlim_verdict v = ADDRLIM_OK;

    *out = NULL;
    reap(t, now, REAP_PER_CALL);
    s = slot(t, k);
    if (!(e = *s)) {
        if (t->n >= t->lim.capacity) {
            if (!t->idle_head)
                return ADDRLIM_FULL;
            /* the oldest bucket is forgotten: that address starts again
             * with a full one, as any new address does */
            entry_delete(t, t->idle_head);
            t->evicted++;
            s = slot(t, k);
        }
        if (!(e = calloc(1, sizeof(*e))))
            return ADDRLIM_FULL;
        e->key = *k;
        e->tokens = t->lim.burst;
        e->stamp = now;
        *s = e;
        t->n++;
    }
    if (t->lim.rate > 0) {
        if (refill(t, e, now) < 1)
            v = ADDRLIM_RATE;
        else
            e->tokens -= 1;
    }
    if (v == ADDRLIM_OK && t->lim.connections &&
        e->conns >= t->lim.connections)
        v = ADDRLIM_CONNECTIONS;
    if (v == ADDRLIM_OK && t->lim.handshakes &&
        e->handshakes >= t->lim.handshakes)
        v = ADDRLIM_HANDSHAKES;
    if (v != ADDRLIM_OK) {
        settle(t, e, now);
        return v;
    }
    idle_remove(t, e);
    e->conns++;
    e->handshakes++;
    *out = e;
    return ADDRLIM_OK;
}

void addrlim_handshake_done(struct addrlim *t, struct addrlim_entry *e)
{
    (void)t;
    if (e->handshakes)
        e->handshakes--;
}

void addrlim_conn_gone(struct addrlim *t, struct addrlim_entry *e,
                       int in_handshake, double now)
{
    if (in_handshake && e->handshakes)
        e->handshakes--;
    if (e->conns)
        e->conns--;
    settle(t, e, now);
}

int addrlim_session_take(struct addrlim *t, struct addrlim_entry *e)
{
    if (t->lim.sessions && e->sessions >= t->lim.sessions)
        return -1;
    e->sessions++;
    return 0;
}

void addrlim_session_gone(struct addrlim *t, struct addrlim_entry *e,
                          double now)
{
    if (e->sessions)
        e->sessions--;
    settle(t, e, now);
}
