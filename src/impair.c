/*
 * impair: the scheduling of a simulated bad path (see impair.h).
 *
 * In-order packets (delayed ones, duplicates) wait in a ring whose due
 * times never decrease: a packet's due time is at least the one before
 * it, so a jitter spreads packets out but never reorders them — only
 * --reorder does, and then boundedly (1..3 packets, or a few ms).
 * Reordered packets wait apart, each counting the later packets that must
 * go first.
 */
#include <stdlib.h>
#include <string.h>

#include "impair.h"

int impair_active(const struct impair_cfg *c)
{
    return c->reorder > 0 || c->dup > 0 || c->delay_ns > 0 || c->jitter_ns > 0;
}

double impair_uniform(uint64_t *s)
{
    /* xorshift64, as quic_conn.c's loss */
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (double)(*s >> 11) / 9007199254740992.0;
}

void impair_queue_init(struct impair_queue *q)
{
    memset(q, 0, sizeof(*q));
}

void impair_queue_free(struct impair_queue *q)
{
    for (size_t i = 0; i < q->n; i++)
        free(q->ring[(q->head + i) % IMPAIR_MAX_HELD]);
    for (size_t i = 0; i < q->nheld; i++)
        free(q->held[i]);
    impair_queue_init(q);
}

/* A copy of the packet, or NULL when the queue is full (or no memory). */
static struct impair_pkt *copy(struct impair_queue *q,
                               const struct impair_pkt *tmpl,
                               const uint8_t *p, size_t n, uint64_t due)
{
    struct impair_pkt *k;

    if (q->n + q->nheld >= IMPAIR_MAX_HELD || q->bytes + n > IMPAIR_MAX_BYTES)
        return NULL;
    if (!(k = malloc(sizeof(*k) + n)))
        return NULL;
    *k = *tmpl;
    k->due = due;
    k->seq = q->seq++;
    k->after = 0;
    k->len = n;
    memcpy(k->data, p, n);
    q->bytes += n;
    return k;
}

static int push_in_order(struct impair_queue *q, struct impair_pkt *k)
{
    if (k->due < q->floor)
        k->due = q->floor;
    q->floor = k->due;
    q->ring[(q->head + q->n) % IMPAIR_MAX_HELD] = k;
    q->n++;
    return 0;
}

/* A packet with sequence `seq` went: reordered ones from before it have
 * one later packet fewer to wait for. */
static void went(struct impair_queue *q, uint64_t seq)
{
    for (size_t i = 0; i < q->nheld; i++)
        if (q->held[i]->seq < seq && q->held[i]->after > 0)
            q->held[i]->after--;
}

int impair_admit(struct impair_queue *q, const struct impair_cfg *c,
                 uint64_t *rng, struct impair_stats *st, uint64_t now,
                 const struct impair_pkt *tmpl, const uint8_t *p, size_t n)
{
    int reorder = c->reorder > 0 && impair_uniform(rng) < c->reorder;
    int dup = c->dup > 0 && impair_uniform(rng) < c->dup;
    uint64_t due = now + c->delay_ns;
    struct impair_pkt *k;
    int pass = 0;

    st->packets++;
    if (c->jitter_ns) {
        double j = (impair_uniform(rng) * 2 - 1) * (double)c->jitter_ns;

        due = j < 0 && (uint64_t)-j > due - now ? now
                                                : (uint64_t)((double)due + j);
    }
    if (due < q->floor)
        due = q->floor; /* in order behind what is already held */
    if (reorder) {
        if (q->nheld < IMPAIR_MAX_REORDER &&
            (k = copy(q, tmpl, p, n, due + IMPAIR_REORDER_WAIT_NS))) {
            k->after = 1 + (unsigned)(impair_uniform(rng) * 3);
            q->held[q->nheld++] = k;
            st->reordered++;
        } else {
            st->overflow++;
        }
    } else if (due <= now) {
        /* no delay: it goes now, past any reordered one it overtakes */
        pass = 1;
        went(q, q->seq++);
    } else if ((k = copy(q, tmpl, p, n, due))) {
        push_in_order(q, k);
        st->delayed++;
    } else {
        st->overflow++;
    }
    if (dup) {
        if ((k = copy(q, tmpl, p, n, due))) {
            push_in_order(q, k);
            st->duplicated++;
        } else {
            st->overflow++;
        }
    }
    return pass;
}

struct impair_pkt *impair_pop(struct impair_queue *q, uint64_t now)
{
    struct impair_pkt *k;

    for (size_t i = 0; i < q->nheld; i++) {
        k = q->held[i];
        if (k->after == 0 || k->due <= now) {
            memmove(&q->held[i], &q->held[i + 1],
                    (q->nheld - i - 1) * sizeof(q->held[0]));
            q->nheld--;
            q->bytes -= k->len;
            return k;
        }
    }
    if (!q->n || q->ring[q->head]->due > now)
        return NULL;
    k = q->ring[q->head];
    q->head = (q->head + 1) % IMPAIR_MAX_HELD;
    q->n--;
    q->bytes -= k->len;
    went(q, k->seq);
    return k;
}

int impair_next_due(const struct impair_queue *q, uint64_t *due)
{
    int any = 0;
    uint64_t d = UINT64_MAX;

    for (size_t i = 0; i < q->nheld; i++) {
        uint64_t t = q->held[i]->after == 0 ? 0 : q->held[i]->due;

        if (t < d)
            d = t;
        any = 1;
    }
    if (q->n && q->ring[q->head]->due < d) {
        d = q->ring[q->head]->due;
        any = 1;
    } else if (q->n) {
        any = 1;
    }
    if (!any)
        return -1;
    *due = d;
    return 0;
}
