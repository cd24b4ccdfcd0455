/* room: see room.h. */
#include "room.h"

#include <stdlib.h>
#include <string.h>

#include "siphash.h"

struct room {
    struct room_set *set;
    struct room *next; /* hash chain */
    LIST_HEAD(, room_member) members;
    size_t count;
    size_t nrelays;   /* open relays of its members */
    uint64_t next_id; /* member ids are never reused in a room's life */
    size_t remote;    /* members elsewhere (room_remote_presence) */
    void *remote_data;
    int hold;         /* inside a remote callback: relays do not free it */
    size_t len;
    char name[ROOM_NAME_MAX + 1];
};

struct room_set {
    unsigned refs;
    struct room **buckets;
    size_t nbuckets, nrooms;
    size_t max_rooms, max_members;
    const struct room_remote_ops *rops; /* NULL: local only */
    void *rctx;
    uint64_t id_base;
    uint64_t k0, k1; /* the name hash's key */
};

/* Ids of local relays' streams as the other daemons know them. */
static uint64_t relay_seq;

/* Keyed: room names come from request URLs, and with a hash anyone can
 * compute a client could pick max_rooms names that share one chain, so
 * that every join walks all of them. */
static size_t name_hash(const struct room_set *rs, const char *p, size_t n)
{
    return (size_t)siphash24(rs->k0, rs->k1, (const uint8_t *)p, n);
}

struct room_set *room_set_new(size_t max_rooms, size_t max_members)
{
    struct room_set *rs = calloc(1, sizeof(*rs));

    if (!rs)
        return NULL;
    rs->nbuckets = 16;
    rs->buckets = calloc(rs->nbuckets, sizeof(*rs->buckets));
    if (!rs->buckets || siphash_key_new(&rs->k0, &rs->k1) < 0) {
        free(rs->buckets);
        free(rs);
        return NULL;
    }
    rs->max_rooms = max_rooms;
    rs->max_members = max_members;
    rs->refs = 1;
    return rs;
}

struct room_set *room_set_ref(struct room_set *rs)
{
    rs->refs++;
    return rs;
}

void room_set_limits(struct room_set *rs, size_t max_rooms,
                     size_t max_members)
{
    rs->max_rooms = max_rooms;
    rs->max_members = max_members;
}

void room_set_free(struct room_set *rs)
{
    if (!rs || --rs->refs)
        return;
    free(rs->buckets);
    free(rs);
}

size_t room_set_count(const struct room_set *rs)
{
    return rs->nrooms;
}

size_t room_set_longest_chain(const struct room_set *rs)
{
    size_t most = 0;

    for (size_t i = 0; i < rs->nbuckets; i++) {
        size_t n = 0;

        for (const struct room *r = rs->buckets[i]; r; r = r->next)
            n++;
        if (n > most)
            most = n;
    }
    return most;
}

static struct room **room_slot(struct room_set *rs, const char *name,
                               size_t len)
{
    struct room **r = &rs->buckets[name_hash(rs, name, len) & (rs->nbuckets - 1)];

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
            size_t b = name_hash(rs, r->name, r->len) & (nb - 1);

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
    m->id = rs->id_base + ++r->next_id;
    r->count++;
    /* the others first: the newcomer hears only of later arrivals */
    LIST_FOREACH(o, &r->members, link)
        if (o->ops->presence)
            o->ops->presence(o, 1, m->id, r->count + r->remote);
    LIST_INSERT_HEAD(&r->members, m, link);
    if (rs->rops) {
        if (r->count == 1)
            rs->rops->active(rs->rctx, r, 1);
        rs->rops->member(rs->rctx, r, 1, m->id);
    }
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
            o->ops->presence(o, 0, m->id, r->count + r->remote);
    if (r->set->rops) {
        /* the remote side lets go of its relays here: the room stays */
        r->hold++;
        r->set->rops->member(r->set->rctx, r, 0, m->id);
        if (r->count == 0) {
            r->set->rops->active(r->set->rctx, r, 0);
            r->remote = 0;
        }
        r->hold--;
    }
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
    if (from->room->set->rops)
        from->room->set->rops->datagram(from->room->set->rctx, from->room,
                                        from->id, p, n);
}

/* ---- relays ---- */

struct room_copy {
    struct room_member *to;
    void *copy;    /* the member's; NULL: gone */
    uint64_t pos;  /* relay bytes it has taken */
    int fin_sent;  /* ... and the end */
    int waiting;   /* it cannot start yet: not a taker (ROOM_WAIT) */
};

/* Bytes [start, start + b->len) of the relay, in a shared block. */
struct room_block {
    struct buf_shared *b;
    uint64_t start;
};

struct room_relay {
    struct room *room;
    uint64_t from;
    uint64_t lag;
    const struct room_sender_ops *sops;
    void *sender;
    struct room_copy *copies;
    size_t ncopies, live;
    /* what some live copy has yet to take, oldest first; the last block
     * is filled as bytes arrive (RELAY_BLOCK), so a member's send buffer
     * holds one chunk per block, not one per packet */
    struct room_block *blocks;
    size_t nblocks, capblocks;
    uint64_t end;    /* bytes received */
    uint64_t front;  /* most any live copy has taken (end when none) */
    int fin;         /* the sender's end arrived */
    int delivered;   /* sops->delivered was called */
    int released;    /* the sender let go (room_relay_release) */
    int finished;    /* some copy took everything */
    int busy;        /* inside pump: frees wait */
    int remote_in;   /* from another daemon: the arrivals set the pace */
    int remote_out;  /* a local member's, told to the other daemons */
    uint64_t sid;    /* ... as their stream `sid` */
};

/* Relayed bytes are copied once into blocks that grow with the stream:
 * the first twice its first bytes (at least RELAY_BLOCK_MIN), each next
 * twice the last, up to RELAY_BLOCK (or a write's size, when larger): a
 * short message holds little more than its bytes, what it costs members
 * waiting for it stays near what they are charged, and a long stream's
 * copies hold one chunk per block in their send buffers. */
#define RELAY_BLOCK (16 * 1024)
#define RELAY_BLOCK_MIN 256

static void relay_free(struct room_relay *r)
{
    struct room *rm = r->room;

    for (size_t i = 0; i < r->ncopies; i++) {
        struct room_copy *c = &r->copies[i];

        if (c->copy && c->to->ops->copy_done)
            c->to->ops->copy_done(c->to, c->copy);
    }
    for (size_t i = 0; i < r->nblocks; i++)
        buf_shared_unref(r->blocks[i].b);
    if (r->sops && r->sops->gone)
        r->sops->gone(r->sender);
    free(r->blocks);
    free(r->copies);
    free(r);
    /* the room may have emptied while this relay kept it */
    if (--rm->nrelays == 0 && rm->count == 0 && !rm->hold) {
        struct room_set *rs = rm->set;

        *room_slot(rs, rm->name, rm->len) = rm->next;
        rs->nrooms--;
        free(rm);
    }
}

/* A relay of `from`'s stream to every member of rm but `skip`. */
static struct room_relay *relay_new(struct room *rm, uint64_t from,
                                    const struct room_member *skip,
                                    uint64_t lag,
                                    const struct room_sender_ops *sops,
                                    void *sender)
{
    struct room_relay *r;
    struct room_member *to;

    if (!(r = calloc(1, sizeof(*r))))
        return NULL;
    r->room = rm;
    r->from = from;
    r->lag = lag;
    r->sops = sops;
    r->sender = sender;
    if (rm->count && !(r->copies = calloc(rm->count, sizeof(*r->copies)))) {
        free(r);
        return NULL;
    }
    rm->nrelays++;
    LIST_FOREACH(to, &rm->members, link) {
        void *copy;

        if (to == skip || !(copy = to->ops->copy_open(to, r->from, r)))
            continue;
        r->copies[r->ncopies++] = (struct room_copy){to, copy, 0, 0, 0};
        r->live++;
    }
    return r;
}

struct room_relay *room_relay_open(struct room_member *from, int self,
                                   uint64_t lag,
                                   const struct room_sender_ops *sops,
                                   void *sender)
{
    struct room_relay *r;

    if (!from->room ||
        !(r = relay_new(from->room, from->id, self ? NULL : from, lag, sops,
                        sender)))
        return NULL;
    if (from->room->set->rops) {
        r->remote_out = 1;
        r->sid = ++relay_seq;
    }
    return r;
}

static void copy_gone(struct room_relay *r, struct room_copy *c)
{
    c->copy = NULL;
    r->live--;
}

/* Offers a copy what the relay holds past its position. */
static void pump(struct room_relay *r, struct room_copy *c)
{
    size_t i = 0;

    /* the block holding c->pos (blocks are in order, contiguous) */
    while (i < r->nblocks &&
           r->blocks[i].start + r->blocks[i].b->len <= c->pos)
        i++;
    while (c->copy && !c->fin_sent) {
        struct buf_shared *b = i < r->nblocks ? r->blocks[i].b : NULL;
        size_t off = b ? (size_t)(c->pos - r->blocks[i].start) : 0;
        size_t n = b ? b->len - off : 0;
        int fin = r->fin && c->pos + n == r->end;
        ssize_t took;

        if (n == 0 && !fin)
            break;
        took = c->to->ops->copy_write(c->to, c->copy, b, off, n, fin);
        c->waiting = took == ROOM_WAIT;
        if (c->waiting)
            break;
        if (took < 0) {
            copy_gone(r, c);
            break;
        }
        c->pos += (uint64_t)took;
        if ((size_t)took < n)
            break; /* no room: resumed later */
        if (fin) {
            /* it has everything: the relay is over for it */
            void *copy = c->copy;

            c->fin_sent = 1;
            r->finished = 1;
            copy_gone(r, c);
            if (c->to->ops->copy_done)
                c->to->ops->copy_done(c->to, copy);
            break;
        }
        i++;
    }
}

/* After copies moved: the fastest sets the front (the sender's credit),
 * who lags too far is slow, what nobody needs goes, and the end may be
 * delivered. */
static void settle(struct room_relay *r)
{
    uint64_t front = 0, low = r->end;
    int all_fin = 1;
    size_t k = 0, j = 0;
    int takers = 0;

    /* the pace: the fastest copy that can take bytes at all, or the end
     * once one has taken everything (it left); with none (every copy
     * waits to start, or none is left) the sender is not held back:
     * waiting copies lag, each costing its member's budget.  Copies that
     * were dropped or aborted set no pace. */
    for (size_t i = 0; i < r->ncopies; i++) {
        struct room_copy *c = &r->copies[i];

        if (c->copy && !c->waiting) {
            takers = 1;
            if (c->pos > front)
                front = c->pos;
        }
    }
    /* another daemon's stream has no flow control back to its sender:
     * once even the fastest copy is lag behind what arrived, the
     * arrivals set the pace (what the relay holds stays under 2 x lag) */
    if (!takers || r->finished ||
        (r->remote_in && r->end - front > r->lag))
        front = r->end;
    for (size_t i = 0; i < r->ncopies; i++) {
        struct room_copy *c = &r->copies[i];

        if (!c->copy)
            continue;
        /* its member's lag counts complete messages only: on one still
         * arriving the sender sets the pace as much as the fastest */
        if (front - c->pos > r->lag ||
            (c->to->ops->copy_lag &&
             c->to->ops->copy_lag(c->to, c->copy,
                                  r->fin ? front - c->pos : 0) < 0)) {
            void *copy = c->copy;

            copy_gone(r, c);
            c->to->ops->copy_slow(c->to, copy);
            continue;
        }
        if (c->pos < low)
            low = c->pos;
        all_fin &= c->fin_sent;
    }
    /* copies gone or done leave the array once they are most of it: a
     * relay that a few slow members still take costs about what they
     * do, not what the whole room did */
    if (r->ncopies >= 8 && r->live * 2 < r->ncopies) {
        for (size_t i = 0; i < r->ncopies; i++)
            if (r->copies[i].copy)
                r->copies[j++] = r->copies[i];
        r->ncopies = j;
    }
    /* blocks every live copy is past */
    while (k < r->nblocks &&
           r->blocks[k].start + r->blocks[k].b->len <= low &&
           (k + 1 < r->nblocks || r->blocks[k].b->len == r->blocks[k].b->cap ||
            r->live == 0))
        buf_shared_unref(r->blocks[k++].b);
    if (k) {
        memmove(r->blocks, r->blocks + k, (r->nblocks - k) * sizeof(*r->blocks));
        r->nblocks -= k;
    }
    if (front > r->front) {
        r->front = front;
        if (r->sops && r->sops->progress)
            r->sops->progress(r->sender, front);
    }
    if (r->fin && all_fin && !r->delivered) {
        r->delivered = 1;
        if (r->sops && r->sops->delivered)
            r->sops->delivered(r->sender);
    }
}

/* Frees the relay once the sender let go and no live copy needs more. */
static void maybe_free(struct room_relay *r)
{
    int needed = 0;

    for (size_t i = 0; i < r->ncopies && !needed; i++)
        needed = r->copies[i].copy && !r->copies[i].fin_sent;
    if (r->released && !needed && !r->busy)
        relay_free(r);
}

/* Room for n more bytes in the relay's blocks. */
static int stage(struct room_relay *r, const uint8_t *p, size_t n)
{
    struct room_block *last = r->nblocks ? &r->blocks[r->nblocks - 1] : NULL;
    size_t cap;

    if (last && buf_shared_add(last->b, p, n) == 0)
        return 0;
    cap = last ? last->b->cap * 2 : n * 2;
    if (cap > RELAY_BLOCK)
        cap = RELAY_BLOCK;
    if (cap < RELAY_BLOCK_MIN)
        cap = RELAY_BLOCK_MIN;
    if (cap < n)
        cap = n;
    if (r->nblocks == r->capblocks) {
        size_t nc = r->capblocks ? r->capblocks * 2 : 4;
        struct room_block *nb = realloc(r->blocks, nc * sizeof(*nb));

        if (!nb)
            return -1;
        r->blocks = nb;
        r->capblocks = nc;
    }
    last = &r->blocks[r->nblocks];
    if (!(last->b = buf_shared_new(p, n, cap)))
        return -1;
    last->start = r->end;
    r->nblocks++;
    return 0;
}

int room_relay_write(struct room_relay *r, const uint8_t *p, size_t n,
                     int fin)
{
    if (r->fin || (!n && !fin))
        return 0;
    if (n && stage(r, p, n) < 0)
        return -1;
    if (r->remote_out) {
        struct room *rm = r->room;

        if (rm->set->rops->chunk(rm->set->rctx, rm, r->from, r->sid, r->end,
                                 p, n, fin) < 0)
            r->remote_out = 0;
    }
    r->end += n;
    r->fin = fin;
    r->busy = 1;
    for (size_t i = 0; i < r->ncopies; i++)
        pump(r, &r->copies[i]);
    settle(r);
    r->busy = 0;
    maybe_free(r);
    return 0;
}

void room_relay_resume(struct room_relay *r, void *copy)
{
    for (size_t i = 0; i < r->ncopies; i++) {
        if (r->copies[i].copy == copy) {
            r->busy = 1;
            pump(r, &r->copies[i]);
            settle(r);
            r->busy = 0;
            maybe_free(r);
            return;
        }
    }
}

void room_relay_abort(struct room_relay *r, uint32_t code)
{
    if (r->remote_out) {
        struct room *rm = r->room;

        r->remote_out = 0;
        rm->set->rops->reset(rm->set->rctx, rm, r->from, r->sid, code);
    }
    r->busy = 1;
    for (size_t i = 0; i < r->ncopies; i++) {
        struct room_copy *c = &r->copies[i];
        void *copy = c->copy;

        if (!copy)
            continue;
        copy_gone(r, c); /* aborted: the room lets go of it */
        c->to->ops->copy_abort(c->to, copy, code);
    }
    r->busy = 0;
    maybe_free(r);
}

void room_relay_release(struct room_relay *r)
{
    if (!r)
        return;
    r->released = 1;
    maybe_free(r);
}

void room_relay_drop(struct room_relay *r, void *copy)
{
    for (size_t i = 0; i < r->ncopies; i++) {
        if (r->copies[i].copy == copy) {
            copy_gone(r, &r->copies[i]);
            if (!r->busy) {
                r->busy = 1;
                settle(r); /* the front may move, blocks may go */
                r->busy = 0;
                maybe_free(r);
            }
            return;
        }
    }
}

size_t room_relay_copies(const struct room_relay *r)
{
    return r->live;
}

/* ---- the other side ---- */

void room_set_remote(struct room_set *rs, const struct room_remote_ops *ops,
                     void *ctx, uint64_t id_base)
{
    rs->rops = ops;
    rs->rctx = ctx;
    rs->id_base = id_base;
}

int room_set_has_remote(const struct room_set *rs)
{
    return rs->rops != NULL;
}

void *room_remote_data(const struct room *r)
{
    return r->remote_data;
}

void room_set_remote_data(struct room *r, void *data)
{
    r->remote_data = data;
}

size_t room_name_len(const struct room *r)
{
    return r->len;
}

size_t room_member_ids(const struct room *r, size_t skip, uint64_t *ids,
                       size_t max)
{
    const struct room_member *m;
    size_t i = 0, n = 0;

    LIST_FOREACH(m, &r->members, link)
        if (i++ >= skip && n < max)
            ids[n++] = m->id;
    return n;
}

size_t room_total(const struct room *r)
{
    return r->count + r->remote;
}

void room_remote_datagram(struct room *r, uint64_t from, const uint8_t *p,
                          size_t n)
{
    struct room_member *to;

    LIST_FOREACH(to, &r->members, link)
        if (to->ops->datagram)
            to->ops->datagram(to, from, p, n);
}

void room_remote_presence(struct room *r, int joined, uint64_t who)
{
    struct room_member *o;

    if (joined)
        r->remote++;
    else if (r->remote)
        r->remote--;
    LIST_FOREACH(o, &r->members, link)
        if (o->ops->presence)
            o->ops->presence(o, joined, who, r->count + r->remote);
}

struct room_relay *room_remote_relay_open(struct room *r, uint64_t from,
                                          uint64_t lag)
{
    struct room_relay *rl = relay_new(r, from, NULL, lag, NULL, NULL);

    if (rl)
        rl->remote_in = 1;
    return rl;
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
