/*
 * pool: bounded free lists of fixed-size blocks, for the loop's
 * allocations that come and go once a request (a stream, its echo state,
 * a send chunk, a datagram).
 *
 * glibc's per-thread cache keeps 7 blocks of a size; a turn of the loop
 * that serves 50 requests frees 50 streams, and the rest went through the
 * general allocator's bins (malloc and free were a tenth of the daemon's
 * CPU in request/response).  A pool keeps up to `max` blocks for the next
 * turn: memory held at most max x size, freed to the system at exit.
 *
 * Only the thread that called pool_thread_own() (the loop: one a
 * process, each worker being a process of its own) keeps blocks; any
 * other thread (the handshake threads) gets plain malloc and free, so a
 * pool needs no lock.  A kept block's old bytes stay: users clear what
 * they read before writing it.  Under AddressSanitizer every block is malloc'd
 * and freed, so that a use after free is still caught.
 */
#ifndef WTRELAYD_POOL_H
#define WTRELAYD_POOL_H

#include <stddef.h>

struct pool {
    size_t size; /* bytes of a block: at least a pointer's */
    size_t max;  /* blocks kept at most */
    void *free;  /* kept blocks, linked through their first bytes */
    size_t n;    /* how many */
    struct pool *next; /* pools holding blocks, for pool_drain_all() */
    int listed;
};

#define POOL_INIT(sz, mx) {.size = (sz), .max = (mx)}

/* The calling thread is the one whose blocks are kept (the loop). */
void pool_thread_own(void);
/* 1 when the calling thread keeps blocks (it owns the pools and this is
 * no AddressSanitizer build). */
int pool_keeps(void);
/* A block of p->size bytes (contents undefined), or NULL. */
void *pool_get(struct pool *p);
/* Takes back a block pool_get(p) gave (NULL: nothing). */
void pool_put(struct pool *p, void *b);
/* Frees every kept block of every pool (at exit). */
void pool_drain_all(void);

#endif
