/* cluster_msg: see cluster_msg.h. */
#include "cluster_msg.h"

#include <stddef.h>
#include <string.h>

#include "wire.h"

struct w {
    uint8_t *p;
    size_t n, cap;
    int bad;
};

static void put_varint(struct w *w, uint64_t v)
{
    ssize_t k = wire_varint_encode(w->p + w->n, w->cap - w->n, v);

    if (k < 0)
        w->bad = 1;
    else
        w->n += (size_t)k;
}

static void put_bytes(struct w *w, const uint8_t *p, size_t n)
{
    if (w->cap - w->n < n) {
        w->bad = 1;
        return;
    }
    if (n)
        memcpy(w->p + w->n, p, n);
    w->n += n;
}

ssize_t cluster_msg_encode(const struct cluster_msg *m, uint8_t *out,
                           size_t cap)
{
    struct w w = {out, 0, cap, 0};
    uint8_t head[CLUSTER_MSG_HEADER];

    head[0] = CLUSTER_MSG_VERSION;
    head[1] = (uint8_t)m->kind;
    for (int i = 0; i < 8; i++)
        head[2 + i] = (uint8_t)(m->origin >> (56 - 8 * i));
    put_bytes(&w, head, sizeof(head));
    switch (m->kind) {
    case CLUSTER_MSG_DGRAM:
        if (m->len > CLUSTER_MSG_MAX_DGRAM)
            return -1;
        put_varint(&w, m->member);
        put_bytes(&w, m->payload, m->len);
        break;
    case CLUSTER_MSG_CHUNK:
        if (m->len > CLUSTER_MSG_MAX_CHUNK || (m->fin != 0 && m->fin != 1))
            return -1;
        put_varint(&w, m->member);
        put_varint(&w, m->stream);
        put_varint(&w, m->offset);
        put_varint(&w, (uint64_t)m->fin);
        put_bytes(&w, m->payload, m->len);
        break;
    case CLUSTER_MSG_RESET:
        put_varint(&w, m->member);
        put_varint(&w, m->stream);
        put_varint(&w, m->code);
        break;
    case CLUSTER_MSG_JOIN:
    case CLUSTER_MSG_LEAVE:
        put_varint(&w, m->member);
        break;
    case CLUSTER_MSG_HELLO:
        if (m->flags & ~7u || m->nids > CLUSTER_MSG_MAX_IDS)
            return -1;
        put_varint(&w, m->flags);
        put_varint(&w, m->nids);
        for (size_t i = 0; i < m->nids; i++)
            put_varint(&w, m->ids[i]);
        break;
    case CLUSTER_MSG_BEAT:
        put_varint(&w, m->count);
        break;
    default:
        return -1;
    }
    return w.bad ? -1 : (ssize_t)w.n;
}

struct r {
    const uint8_t *p;
    size_t n, off;
    int bad;
};

static uint64_t get_varint(struct r *r)
{
    uint64_t v = 0;
    ssize_t k;

    if (r->bad)
        return 0;
    k = wire_varint_decode(r->p + r->off, r->n - r->off, &v);
    if (k <= 0) {
        r->bad = 1;
        return 0;
    }
    r->off += (size_t)k;
    return v;
}

int cluster_msg_decode(const uint8_t *p, size_t n, struct cluster_msg *m)
{
    struct r r = {p, n, CLUSTER_MSG_HEADER, 0};
    uint64_t v;

    memset(m, 0, offsetof(struct cluster_msg, ids));
    if (n < CLUSTER_MSG_HEADER || p[0] != CLUSTER_MSG_VERSION)
        return -1;
    m->kind = p[1];
    for (int i = 0; i < 8; i++)
        m->origin = (m->origin << 8) | p[2 + i];
    switch (m->kind) {
    case CLUSTER_MSG_DGRAM:
    case CLUSTER_MSG_CHUNK:
        m->member = get_varint(&r);
        if (m->kind == CLUSTER_MSG_CHUNK) {
            m->stream = get_varint(&r);
            m->offset = get_varint(&r);
            v = get_varint(&r);
            if (v > 1)
                return -1;
            m->fin = (int)v;
        }
        if (r.bad)
            return -1;
        m->payload = p + r.off;
        m->len = n - r.off;
        if (m->len > (m->kind == CLUSTER_MSG_DGRAM ? CLUSTER_MSG_MAX_DGRAM
                                                   : CLUSTER_MSG_MAX_CHUNK))
            return -1;
        return 0;
    case CLUSTER_MSG_RESET:
        m->member = get_varint(&r);
        m->stream = get_varint(&r);
        v = get_varint(&r);
        if (v > UINT32_MAX)
            return -1;
        m->code = (uint32_t)v;
        break;
    case CLUSTER_MSG_JOIN:
    case CLUSTER_MSG_LEAVE:
        m->member = get_varint(&r);
        break;
    case CLUSTER_MSG_HELLO:
        v = get_varint(&r);
        if (v & ~7ull)
            return -1;
        m->flags = (unsigned)v;
        v = get_varint(&r);
        if (v > CLUSTER_MSG_MAX_IDS)
            return -1;
        m->nids = (size_t)v;
        for (size_t i = 0; i < m->nids && !r.bad; i++)
            m->ids[i] = get_varint(&r);
        break;
    case CLUSTER_MSG_BEAT:
        m->count = get_varint(&r);
        break;
    default:
        return -1;
    }
    return r.bad || r.off != n ? -1 : 0;
}
