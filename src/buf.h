/*
 * buf: a send buffer whose bytes stay put until the peer acknowledges them.
 *
 * ngtcp2 and nghttp3 keep pointers into data they were given until it is
 * acknowledged (for retransmission), so bytes are appended into a chain of
 * chunks that are never moved or reallocated; a chunk is freed only once
 * every byte in it is acknowledged.  Three positions advance monotonically:
 * acked <= sent <= end (stream offsets relative to the buffer's start).
 *
 * A chunk may also hold no bytes of its own but a range of a shared block
 * (struct buf_shared, reference-counted): relayed data fanned out to many
 * streams is held once, whatever the number of buffers sending it.
 */
#ifndef WTRELAYD_BUF_H
#define WTRELAYD_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct buf_chunk;

/* Bytes held once for every buffer that sends them.  Filled from the
 * start (len grows up to cap); bytes once handed out never change. */
struct buf_shared {
    unsigned refs;
    size_t len, cap;
    uint8_t data[];
};

/* A block of cap bytes holding a copy of the first n (n <= cap), with one
 * reference (the caller's); NULL when out of memory. */
struct buf_shared *buf_shared_new(const void *p, size_t n, size_t cap);
/* Copies n more bytes in; -1 when they do not fit. */
int buf_shared_add(struct buf_shared *s, const void *p, size_t n);
void buf_shared_ref(struct buf_shared *s);
void buf_shared_unref(struct buf_shared *s);

struct buf {
    struct buf_chunk *head; /* oldest chunk holding unacked bytes */
    struct buf_chunk *tail;
    struct buf_chunk *send; /* chunk holding the next unsent byte */
    size_t head_off;        /* acked bytes at the start of head */
    size_t send_off;        /* sent bytes at the start of send */
    uint64_t acked, sent, end;
};

void buf_init(struct buf *b);
void buf_free(struct buf *b);
/* Copies n bytes in.  -1 when out of memory (nothing appended). */
int buf_append(struct buf *b, const void *p, size_t n);
/* Appends bytes [off, off + n) of a shared block, by reference (the block
 * lives until the buffer has them acknowledged); bytes that follow the
 * previous ones in the same block extend its chunk.  -1 when out of
 * memory. */
int buf_append_shared(struct buf *b, struct buf_shared *s, size_t off,
                      size_t n);
/* Fills up to niov vectors with unsent bytes; returns how many. */
size_t buf_peek(const struct buf *b, struct iovec *iov, size_t niov);
void buf_mark_sent(struct buf *b, size_t n);
/* The next n unsent bytes are no longer wanted by anyone. */
void buf_ack(struct buf *b, size_t n);
/* Frees the chunks when every byte is acknowledged (buffers that are mostly
 * idle: control streams, capsules); offsets carry on. */
void buf_release_idle(struct buf *b);

static inline uint64_t buf_unsent(const struct buf *b)
{
    return b->end - b->sent;
}
static inline uint64_t buf_unacked(const struct buf *b)
{
    return b->end - b->acked;
}

#endif
