/* buf: see buf.h. */
#include "buf.h"

#include <stdlib.h>
#include <string.h>

struct buf_chunk {
    struct buf_chunk *next;
    size_t cap, len;
    uint8_t data[];
};

/* Small first chunks keep idle sessions cheap; bulk streams soon get big
 * chunks so the chain stays short. */
#define CHUNK_MIN 1024
#define CHUNK_MAX (64 * 1024)

void buf_init(struct buf *b)
{
    memset(b, 0, sizeof(*b));
}

void buf_free(struct buf *b)
{
    struct buf_chunk *c = b->head, *next;

    for (; c; c = next) {
        next = c->next;
        free(c);
    }
    buf_init(b);
}

int buf_append(struct buf *b, const void *p, size_t n)
{
    const uint8_t *src = p;

    while (n > 0) {
        struct buf_chunk *c = b->tail;
        size_t room, take;

        if (!c || c->len == c->cap) {
            size_t cap = c ? c->cap * 2 : CHUNK_MIN;

            while (cap < n && cap < CHUNK_MAX)
                cap *= 2;
            if (cap > CHUNK_MAX)
                cap = CHUNK_MAX;
            c = malloc(sizeof(*c) + cap);
            if (!c)
                return -1; /* already-copied bytes stay: they are valid */
            c->next = NULL;
            c->cap = cap;
            c->len = 0;
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
        iov[k].iov_base = (void *)(c->data + off);
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
        free(c);
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
        free(c);
    }
}
