/* buf: see buf.h. */
#include "buf.h"

#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "pool.h"

struct buf_chunk {
    struct buf_chunk *next;
    size_t cap, len;      /* a shared chunk is full: cap == len */
    const uint8_t *bytes; /* data, or the shared block's range */
    struct buf_shared *shared;
    uint8_t data[];
};

/* Small first chunks keep idle sessions cheap; bulk streams soon get big
 * chunks so the chain stays short.  The first one is 1 KiB with its
 * header: glibc serves up to 1 032 bytes from its per-thread cache, and
 * 1 024 bytes of data plus the header (1 064) went through the general
 * allocator once a request (an echoed request: one such chunk). */
#define CHUNK_MIN (1024 - sizeof(struct buf_chunk))
#define CHUNK_MAX (64 * 1024)

/* First chunks (one an echoed request), and the header-only chunks that
 * reference a shared block (one a member a relayed message): 1 MiB and
 * 4 096 x 40 bytes kept at most. */
static struct pool first_chunks =
    POOL_INIT(sizeof(struct buf_chunk) + CHUNK_MIN, 1024);
static struct pool ref_chunks = POOL_INIT(sizeof(struct buf_chunk), 4096);

struct buf_shared *buf_shared_new(const void *p, size_t n, size_t cap)
{
    struct buf_shared *s;

    if (cap < n)
        cap = n;
    if (!(s = malloc(sizeof(*s) + cap)))
        return NULL;
    s->refs = 1;
    s->len = n;
    s->cap = cap;
    metrics.buffered_bytes += cap;
    if (n)
        memcpy(s->data, p, n);
    return s;
}

int buf_shared_add(struct buf_shared *s, const void *p, size_t n)
{
    if (n > s->cap - s->len)
        return -1;
    memcpy(s->data + s->len, p, n);
    s->len += n;
    return 0;
}

void buf_shared_ref(struct buf_shared *s)
{
    s->refs++;
}

void buf_shared_unref(struct buf_shared *s)
{
    if (s && --s->refs == 0) {
        metrics.buffered_bytes -= s->cap;
        free(s);
    }
}

/* Memory held is what the daemon's metrics call buffered: a chunk's own
 * bytes, and a shared block once, whatever the number of its users. */
static void chunk_free(struct buf_chunk *c)
{
    if (c->shared) {
        buf_shared_unref(c->shared);
        pool_put(&ref_chunks, c);
        return;
    }
    metrics.buffered_bytes -= c->cap;
    if (c->cap == CHUNK_MIN)
        pool_put(&first_chunks, c);
    else
        free(c);
}

void buf_init(struct buf *b)
{
    memset(b, 0, sizeof(*b));
}

void buf_free(struct buf *b)
{
    struct buf_chunk *c = b->head, *next;

    for (; c; c = next) {
        next = c->next;
        chunk_free(c);
    }
    buf_init(b);
}

/* Links a new chunk at the tail. */
static void chunk_link(struct buf *b, struct buf_chunk *c)
{
    c->next = NULL;
    if (b->tail)
        b->tail->next = c;
    else
        b->head = c;
    b->tail = c;
    if (!b->send) {
        b->send = c;
        b->send_off = 0;
    }
}

int buf_append_shared(struct buf *b, struct buf_shared *s, size_t off,
                      size_t n)
{
    struct buf_chunk *c = b->tail;

    if (n == 0)
        return 0;
    if (c && c->shared == s && c->bytes + c->len == s->data + off) {
        c->cap = c->len += n; /* what follows in the same block */
        b->end += n;
        return 0;
    }
    if (!(c = pool_get(&ref_chunks)))
        return -1;
    c->cap = c->len = n;
    c->bytes = s->data + off;
    c->shared = s;
    buf_shared_ref(s);
    chunk_link(b, c);
    b->end += n;
    return 0;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
    const uint8_t *src = p;

    while (n > 0) {
        struct buf_chunk *c = b->tail;
        size_t room, take;

        if (!c || c->len == c->cap) {
            size_t cap = c && !c->shared ? c->cap * 2 : CHUNK_MIN;

            while (cap < n && cap < CHUNK_MAX)
                cap *= 2;
            if (cap > CHUNK_MAX)
                cap = CHUNK_MAX;
            c = cap == CHUNK_MIN ? pool_get(&first_chunks)
                                 : malloc(sizeof(*c) + cap);
            if (!c)
                return -1; /* already-copied bytes stay: they are valid */
            c->cap = cap;
            metrics.buffered_bytes += cap;
            c->len = 0;
            c->bytes = c->data;
            c->shared = NULL;
            chunk_link(b, c);
        }
        room = c->cap - c->len;
        take = n < room ? n : room;
        memcpy(c->data + c->len, src, take);
        c->len += take;
        src += take;
        n -= take;
        b->end += take;
    }
    return 0;
}

size_t buf_peek(const struct buf *b, struct iovec *iov, size_t niov)
{
    const struct buf_chunk *c = b->send;
    size_t off = b->send_off, k = 0;

    for (; c && k < niov; c = c->next, off = 0) {
        if (c->len == off)
            continue;
        iov[k].iov_base = (void *)(c->bytes + off);
        iov[k].iov_len = c->len - off;
        k++;
    }
    return k;
}

void buf_mark_sent(struct buf *b, size_t n)
{
    b->sent += n;
    while (n > 0 && b->send) {
        size_t left = b->send->len - b->send_off;

        if (n < left) {
            b->send_off += n;
            return;
        }
        n -= left;
        b->send_off += left;
        /* Stay on a chunk that may still be appended to. */
        if (!b->send->next)
            return;
        b->send = b->send->next;
        b->send_off = 0;
    }
}

void buf_release_idle(struct buf *b)
{
    struct buf_chunk *c = b->head, *next;

    if (b->acked != b->end)
        return;
    for (; c; c = next) {
        next = c->next;
        chunk_free(c);
    }
    b->head = b->tail = b->send = NULL;
    b->head_off = b->send_off = 0;
}

void buf_ack(struct buf *b, size_t n)
{
    b->acked += n;
    while (n > 0 && b->head) {
        struct buf_chunk *c = b->head;
        size_t left = c->len - b->head_off;

        if (n < left || (n == left && c == b->tail && c->len < c->cap)) {
            b->head_off += n;
            return;
        }
        n -= left;
        b->head = c->next;
        b->head_off = 0;
        if (b->send == c) {
            b->send = c->next;
            b->send_off = 0;
        }
        if (b->tail == c)
            b->tail = NULL;
        chunk_free(c);
    }
}
