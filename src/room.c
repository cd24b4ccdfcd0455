/* room: see room.h. */
#include "room.h"

#include <stdlib.h>
#include <string.h>

struct room {
    struct room_set *set;
    struct room *next; /* hash chain */
    LIST_HEAD(, room_member) members;
    size_t count;
    size_t nrelays;   /* open relays of its members */
    uint64_t next_id; /* member ids are never reused in a room's life */
    size_t len;
    char name[ROOM_NAME_MAX + 1];
};

struct room_set {
    struct room **buckets;
    size_t nbuckets, nrooms;
    size_t max_rooms, max_members;
};

/* One relayed stream: its copies, one per member that took it. */
struct room_copy_ref {
    struct room_member *to;
    void *copy; /* NULL: gone */
};

struct room_relay {
    struct room *room;
    uint64_t from;
    struct room_copy_ref *refs;
    size_t nrefs, live;
    /* the block being filled: bytes as they arrive, handed to every copy
     * by reference (buf.h), so a member's chunk grows with the block */
    struct buf_shared *block;
};

/* Relayed bytes are copied once into blocks of this size (or the write's,
 * when larger): small enough for short messages, large enough that a
 * member's send buffer holds one chunk per block, not one per packet. */
#define RELAY_BLOCK (16 * 1024)

static size_t name_hash(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */

    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)p[i]) * 1099511628211ULL;
    return (size_t)h;
}

struct room_set *room_set_new(size_t max_rooms, size_t max_members)
{
    struct room_set *rs = calloc(1, sizeof(*rs));

    if (!rs)
        return NULL;
    rs->nbuckets = 16;
    rs->buckets = calloc(rs->nbuckets, sizeof(*rs->buckets));
    if (!rs->buckets) {
        free(rs);
        return NULL;
    }
    rs->max_rooms = max_rooms;
    rs->max_members = max_members;
    return rs;
}

void room_set_free(struct room_set *rs)
{
    if (!rs)
        return;
    free(rs->buckets);
    free(rs);
}

size_t room_set_count(const struct room_set *rs)
{
    return rs->nrooms;
}

static struct room **room_slot(struct room_set *rs, const char *name,
                               size_t len)
{
    struct room **r = &rs->buckets[name_hash(name, len) & (rs->nbuckets - 1)];

    for (; *r; r = &(*r)->next)
        if ((*r)->len == len && memcmp((*r)->name, name, len) == 0)
            break;
    return r;
}

/* More buckets as rooms come (a failed grow only makes chains longer). */
static void set_grow(struct room_set *rs)
{
    size_t nb = rs->nbuckets * 2;
    struct room **nt;

    if (rs->nrooms < rs->nbuckets || !(nt = calloc(nb, sizeof(*nt))))
        return;
    for (size_t i = 0; i < rs->nbuckets; i++) {
        struct room *r = rs->buckets[i], *next;

        for (; r; r = next) {
            size_t b = name_hash(r->name, r->len) & (nb - 1);

            next = r->next;
            r->next = nt[b];
            nt[b] = r;
        }
    }
    free(rs->buckets);
    rs->buckets = nt;
    rs->nbuckets = nb;
}

int room_join(struct room_set *rs, const char *name, size_t len,
              struct room_member *m)
{
    struct room **slot, *r;
    struct room_member *o;

    if (len > ROOM_NAME_MAX)
        return ROOM_NOMEM;
    slot = room_slot(rs, name, len);
    if (!(r = *slot)) {
        if (rs->nrooms >= rs->max_rooms)
            return ROOM_TOO_MANY;
        if (!(r = calloc(1, sizeof(*r))))
            return ROOM_NOMEM;
        r->set = rs;
        LIST_INIT(&r->members);
        memcpy(r->name, name, len);
        r->len = len;
        *slot = r;
        rs->nrooms++;
        set_grow(rs);
    } else if (r->count >= rs->max_members) {
        return ROOM_FULL;
    }
    m->room = r;
    m->id = ++r->next_id;
    r->count++;
    /* the others first: the newcomer hears only of later arrivals */
    LIST_FOREACH(o, &r->members, link)
        if (o->ops->presence)
            o->ops->presence(o, 1, m->id, r->count);
    LIST_INSERT_HEAD(&r->members, m, link);
    return ROOM_OK;
}

void room_leave(struct room_member *m)
{
    struct room *r = m->room;
    struct room_member *o;

    if (!r)
        return;
    LIST_REMOVE(m, link);
    m->room = NULL;
    r->count--;
    LIST_FOREACH(o, &r->members, link)
        if (o->ops->presence)
            o->ops->presence(o, 0, m->id, r->count);
    if (r->count == 0 && r->nrelays == 0) {
        struct room_set *rs = r->set;

        *room_slot(rs, r->name, r->len) = r->next;
        rs->nrooms--;
        free(r);
    }
}

size_t room_count(const struct room *r)
{
    return r->count;
}

const char *room_name(const struct room *r)
{
    return r->name;
}

void room_send_datagram(struct room_member *from, const uint8_t *p, size_t n,
                        int self)
{
    struct room_member *to;

    if (!from->room)
        return;
    LIST_FOREACH(to, &from->room->members, link)
        if ((to != from || self) && to->ops->datagram)
            to->ops->datagram(to, from->id, p, n);
}

struct room_relay *room_relay_open(struct room_member *from, int self)
{
    struct room *rm = from->room;
    struct room_relay *r;
    struct room_member *to;

    if (!rm || !(r = calloc(1, sizeof(*r))))
        return NULL;
    r->room = rm;
    r->from = from->id;
    if (rm->count && !(r->refs = calloc(rm->count, sizeof(*r->refs)))) {
        free(r);
        return NULL;
    }
    rm->nrelays++;
    LIST_FOREACH(to, &rm->members, link) {
        void *copy;

        if ((to == from && !self) || !(copy = to->ops->copy_open(to, r->from)))
            continue;
        r->refs[r->nrefs].to = to;
        r->refs[r->nrefs].copy = copy;
        r->nrefs++;
        r->live++;
    }
    return r;
}

/* The bytes to hand out, in the current block (a new one when full). */
static int relay_stage(struct room_relay *r, const uint8_t *p, size_t n,
                       size_t *off)
{
    if (r->block && buf_shared_add(r->block, p, n) == 0) {
        *off = r->block->len - n;
        return 0;
    }
    buf_shared_unref(r->block); /* the copies keep what they still need */
    r->block = buf_shared_new(p, n, n > RELAY_BLOCK ? n : RELAY_BLOCK);
    *off = 0;
    return r->block ? 0 : -1;
}

int room_relay_write(struct room_relay *r, const uint8_t *p, size_t n,
                     int fin)
{
    size_t off = 0;

    if (!n && !fin)
        return 0;
    if (n && relay_stage(r, p, n, &off) < 0)
        return -1;
    for (size_t i = 0; i < r->nrefs; i++) {
        struct room_copy_ref *c = &r->refs[i];

        if (!c->copy)
            continue;
        if (c->to->ops->copy_write(c->to, c->copy, n ? r->block : NULL, off, n,
                                   fin) < 0) {
            c->copy = NULL; /* the member let go of it */
            r->live--;
        }
    }
    return 0;
}

void room_relay_abort(struct room_relay *r, uint32_t code)
{
    for (size_t i = 0; i < r->nrefs; i++) {
        struct room_copy_ref *c = &r->refs[i];
        void *copy = c->copy;

        if (!copy)
            continue;
        c->copy = NULL; /* aborted: the room is done with it */
        r->live--;
        c->to->ops->copy_abort(c->to, copy, code);
    }
}

void room_relay_close(struct room_relay *r)
{
    struct room *rm;

    if (!r)
        return;
    rm = r->room;
    for (size_t i = 0; i < r->nrefs; i++) {
        struct room_copy_ref *c = &r->refs[i];

        if (c->copy && c->to->ops->copy_done)
            c->to->ops->copy_done(c->to, c->copy);
    }
    buf_shared_unref(r->block);
    free(r->refs);
    free(r);
    /* the room may have emptied while this relay kept it */
    if (--rm->nrelays == 0 && rm->count == 0) {
        struct room_set *rs = rm->set;

        *room_slot(rs, rm->name, rm->len) = rm->next;
        rs->nrooms--;
        free(rm);
    }
}

void room_relay_drop(struct room_relay *r, void *copy)
{
    for (size_t i = 0; i < r->nrefs; i++) {
        if (r->refs[i].copy == copy) {
            r->refs[i].copy = NULL;
            r->live--;
            return;
        }
    }
}

size_t room_relay_copies(const struct room_relay *r)
{
    return r->live;
}

/* ---- the room a request names ---- */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int room_name_from_path(const char *path, const char *param, char *out,
                        size_t *len)
{
    const char *q = strchr(path, '?');
    size_t plen = strlen(param), n = 0;

    *len = 0;
    out[0] = 0;
    if (!q)
        return 0;
    q++;
    /* the first parameter of that name */
    while (*q) {
        const char *amp = strchr(q, '&');
        const char *end = amp ? amp : q + strlen(q);

        if ((size_t)(end - q) >= plen + 1 && memcmp(q, param, plen) == 0 &&
            q[plen] == '=') {
            for (const char *v = q + plen + 1; v < end; v++) {
                int c = (uint8_t)*v;

                if (c == '%') {
                    int hi = v + 2 < end ? hexval(v[1]) : -1;
                    int lo = v + 2 < end ? hexval(v[2]) : -1;

                    if (hi < 0 || lo < 0)
                        return -1;
                    c = hi * 16 + lo;
                    v += 2;
                } else if (c == '+') {
                    c = ' ';
                } else if (c == '#') {
                    break; /* a fragment never reaches a server, but */
                }
                if (c < 0x20 || c == 0x7f || n == ROOM_NAME_MAX)
                    return -1;
                out[n++] = (char)c;
            }
            out[n] = 0;
            *len = n;
            return 0;
        }
        if (!amp)
            break;
        q = amp + 1;
    }
    return 0;
}
