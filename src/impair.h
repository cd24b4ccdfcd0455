/*
 * impair: a simulated bad path for the test and benchmark clients
 * (wtclient, wtbench: --reorder, --dup, --delay), one queue per direction
 * of a connection.  Pure scheduling: it decides, from a seeded generator
 * so that runs repeat, whether a packet passes now, is held back (a delay,
 * a jitter, a reordering) or is also delivered a second time, keeps the
 * held copies in a bounded queue, and says which are due at a given time.
 * No sockets, no timers: quic_conn.c sends or reads what comes out, at a
 * libev timer armed for impair_next_due().  Loss stays quic_conn.c's own
 * (--loss), so that a run with only loss is what it always was.
 */
#ifndef WTRELAYD_IMPAIR_H
#define WTRELAYD_IMPAIR_H

#include <stddef.h>
#include <stdint.h>

#include "udp.h"

/* Held packets per direction of a connection, and their bytes: past
 * either, a packet that would be held is dropped (counted: overflow). */
#define IMPAIR_MAX_HELD 1024
#define IMPAIR_MAX_BYTES (2u << 20)
/* Reordered packets held at once per direction (within IMPAIR_MAX_HELD). */
#define IMPAIR_MAX_REORDER 32
/* A reordered packet goes after 1..3 later ones, or this long after it
 * would have gone, whichever comes first (a quiet path). */
#define IMPAIR_REORDER_WAIT_NS (5 * 1000000ull)

struct impair_cfg {
    double reorder; /* fraction of packets held back behind later ones */
    double dup;     /* fraction delivered twice */
    uint64_t delay_ns, jitter_ns; /* every packet: delay +- jitter */
};

/* Per direction, summed over an endpoint's connections. */
struct impair_stats {
    uint64_t packets;    /* that reached the impairment (after --loss) */
    uint64_t delayed;    /* held for the delay */
    uint64_t reordered;  /* held back behind later packets */
    uint64_t duplicated; /* a second copy made */
    uint64_t overflow;   /* dropped: the queue was full */
};

/* A held packet: where it goes (or came from), its bytes. */
struct impair_pkt {
    uint64_t due;  /* ns: goes at this time at the latest */
    uint64_t seq;  /* order of admission */
    unsigned after; /* reordered: later packets still to go first */
    void *sock;
    struct udp_addr local, remote;
    unsigned ecn;
    size_t len;
    uint8_t data[];
};

struct impair_queue {
    /* in-order packets (due never decreases): a ring */
    struct impair_pkt *ring[IMPAIR_MAX_HELD];
    size_t head, n;
    /* reordered ones, in admission order */
    struct impair_pkt *held[IMPAIR_MAX_REORDER];
    size_t nheld;
    size_t bytes;
    uint64_t floor; /* the last in-order due: jitter never reorders */
    uint64_t seq;
};

int impair_active(const struct impair_cfg *c);
/* A uniform double in [0, 1) from a xorshift64 state (never 0). */
double impair_uniform(uint64_t *state);

void impair_queue_init(struct impair_queue *q);
/* Frees every held packet (a connection's end: they are lost). */
void impair_queue_free(struct impair_queue *q);

/*
 * A packet reaches the path at `now` (ns).  Returns 1 when it passes at
 * once (the caller delivers p itself, as without impairment), 0 when it
 * is held or dropped (the queue was full).  A duplicate, a delay or a
 * reordering copies the packet (p is not kept).  `tmpl` gives the
 * address fields of the held copies.
 */
int impair_admit(struct impair_queue *q, const struct impair_cfg *c,
                 uint64_t *rng, struct impair_stats *st, uint64_t now,
                 const struct impair_pkt *tmpl, const uint8_t *p, size_t n);
/* The next packet due at `now`, or NULL; the caller frees it (free()). */
struct impair_pkt *impair_pop(struct impair_queue *q, uint64_t now);
/* When the next held packet is due (ns): 0 and *due, or -1 when none. */
int impair_next_due(const struct impair_queue *q, uint64_t *due);

#endif
