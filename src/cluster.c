/* cluster: see cluster.h. */
#include "cluster.h"

#include <hiredis/adapters/libev.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "cluster_msg.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "room.h"
#include "siphash.h"
#include "u64map.h"

/* Control messages (join, leave, hello, heartbeat, reset) may go this
 * far past max_pending_bytes: a stream refused for room still gets its
 * reset out, a busy daemon still says it is alive. */
#define CONTROL_SLACK (64 * 1024)
/* Other daemons known per room (a hostile publisher cannot make more). */
#define MAX_NODES 256
#define BACKOFF_MIN 0.1
#define BACKOFF_MAX 5.0
/* A HELLO asking for the others' members, at most this often per room. */
#define ASK_EVERY 0.5

/* A route's rooms: the remote ops' context. */
struct scope {
    char *path;
    uint64_t lag;
    void (*after)(void);
    struct scope *next;
};

/* Another daemon, in all the rooms that know it: how many of them, and
 * its streams relayed here (its share of max_remote_streams). */
struct origin {
    uint64_t inst;
    size_t rooms, nstreams;
};

/* Another daemon, as one room knows it: its members there.  Ids and
 * stream ids are chosen by whoever publishes on Redis (a trust boundary):
 * both are found through keyed hash maps, never by a scan. */
struct node {
    uint64_t inst;
    struct origin *o;
    ev_tstamp seen;
    uint64_t *ids;
    uint8_t *stale;    /* inside a HELLO list: not yet named again */
    struct u64map idx; /* member id -> its place in ids */
    struct u64map streams; /* stream id -> its struct rstream */
    size_t n, cap;
    int in_list;
    LIST_ENTRY(node) link;
};

/* Another daemon's stream, relayed to the local members. */
struct rstream {
    uint64_t sid, next;
    struct node *node;
    struct room_relay *relay;
    ev_tstamp at;
    LIST_ENTRY(rstream) link;
};

/* A room with local members, and its channel. */
struct croom {
    struct room *room;
    struct scope *scope;
    char *chan;
    size_t clen;
    int subscribed; /* confirmed since the last connect */
    ev_tstamp asked, answered;
    int answer_due;
    LIST_HEAD(, node) nodes;
    size_t nnodes, nremote;
    LIST_HEAD(, rstream) streams;
    struct croom *hnext;
    LIST_ENTRY(croom) link;
};

static struct {
    struct ev_loop *loop;
    struct config *cfg; /* as started: a reload does not change it */
    const struct config_cluster *cc;
    redisAsyncContext *pub, *sub;
    int pub_ok, sub_ok, up, was_up;
    int clash_logged, setup_logged;
    ev_timer retry, beat;
    double backoff;
    uint64_t instance, id_base;
    uint64_t pending;
    struct croom **buckets;
    size_t nbuckets, nrooms;
    LIST_HEAD(, croom) rooms;
    size_t nstreams;
    size_t nsending;       /* origins with a stream relayed here now */
    struct u64map origins; /* instance -> struct origin */
    uint64_t hk0, hk1;     /* the maps' SipHash key */
    struct scope *scopes;
    uint8_t buf[CLUSTER_MSG_MAX];
} C;

int cluster_on(void)
{
    return C.cc != NULL;
}

int cluster_up(void)
{
    return C.up;
}

/* Keyed (channels carry room names, which clients choose). */
static uint64_t chan_hash(const char *p, size_t n)
{
    return siphash24(C.hk0, C.hk1, (const uint8_t *)p, n);
}

static struct croom **bucket(const char *chan, size_t n)
{
    return &C.buckets[chan_hash(chan, n) & (C.nbuckets - 1)];
}

static void table_grow(void)
{
    size_t nb = C.nbuckets * 2;
    struct croom **nt, *r;

    if (C.nrooms < C.nbuckets || !(nt = calloc(nb, sizeof(*nt))))
        return;
    LIST_FOREACH(r, &C.rooms, link) {
        struct croom **b = &nt[chan_hash(r->chan, r->clen) & (nb - 1)];

        r->hnext = *b;
        *b = r;
    }
    free(C.buckets);
    C.buckets = nt;
    C.nbuckets = nb;
}

/* Another local room (a route replaced by a reload) on the same channel. */
static struct croom *chan_other(const struct croom *self)
{
    for (struct croom *r = *bucket(self->chan, self->clen); r; r = r->hnext)
        if (r != self && r->clen == self->clen &&
            memcmp(r->chan, self->chan, r->clen) == 0)
            return r;
    return NULL;
}

/* ---- publishing ---- */

static void on_published(redisAsyncContext *ac, void *reply, void *priv)
{
    size_t n = (size_t)(uintptr_t)priv;

    (void)ac;
    (void)reply;
    C.pending -= n < C.pending ? n : C.pending;
    metrics.cluster_pending_bytes = C.pending;
}

/* 0, or -1 when it cannot go now (Redis down, over the bound). */
static int publish(struct croom *r, const struct cluster_msg *m)
{
    ssize_t n;
    uint64_t limit = C.cc->max_pending_bytes;

    if (m->kind != CLUSTER_MSG_DGRAM && m->kind != CLUSTER_MSG_CHUNK)
        limit += CONTROL_SLACK;
    if (!C.up) {
        metrics.cluster_dropped[METRICS_CL_DOWN]++;
        return -1;
    }
    if ((n = cluster_msg_encode(m, C.buf, sizeof(C.buf))) < 0)
        return -1;
    if (C.pending + (uint64_t)n > limit) {
        metrics.cluster_dropped[METRICS_CL_PENDING]++;
        return -1;
    }
    if (redisAsyncCommand(C.pub, on_published, (void *)(uintptr_t)n,
                          "PUBLISH %b %b", r->chan, r->clen, C.buf,
                          (size_t)n) != REDIS_OK) {
        metrics.cluster_dropped[METRICS_CL_DOWN]++;
        return -1;
    }
    C.pending += (uint64_t)n;
    metrics.cluster_pending_bytes = C.pending;
    metrics.cluster_published++;
    metrics.cluster_published_bytes += (uint64_t)n;
    return 0;
}

static struct cluster_msg *msg(int kind)
{
    static struct cluster_msg m;

    memset(&m, 0, offsetof(struct cluster_msg, ids));
    m.kind = kind;
    m.origin = C.instance;
    return &m;
}

/* Our members in the room, in parts (flags: ASK or not). */
static void hello(struct croom *r, unsigned flags)
{
    size_t total = room_count(r->room), done = 0;

    r->answered = ev_now(C.loop);
    r->answer_due = 0;
    if (flags & CLUSTER_HELLO_ASK)
        r->asked = r->answered;
    do {
        struct cluster_msg *m = msg(CLUSTER_MSG_HELLO);

        m->nids = room_member_ids(r->room, done, m->ids, CLUSTER_MSG_MAX_IDS);
        m->flags = flags | (done == 0 ? CLUSTER_HELLO_FIRST : 0);
        done += m->nids;
        if (done >= total || m->nids == 0)
            m->flags |= CLUSTER_HELLO_LAST;
        if (publish(r, m) < 0)
            return;
        if (m->nids == 0)
            break;
    } while (done < total);
}

/* ---- the other daemons, as a room knows them ---- */

static struct origin *origin_get(uint64_t inst)
{
    struct origin *o;
    uint64_t v;

    if (u64map_get(&C.origins, inst, &v))
        return (struct origin *)(uintptr_t)v;
    if (!(o = calloc(1, sizeof(*o))))
        return NULL;
    o->inst = inst;
    if (u64map_put(&C.origins, inst, (uint64_t)(uintptr_t)o) < 0) {
        free(o);
        return NULL;
    }
    metrics.cluster_daemons = u64map_count(&C.origins);
    return o;
}

static void origin_put(struct origin *o)
{
    if (--o->rooms)
        return;
    u64map_del(&C.origins, o->inst);
    metrics.cluster_daemons = u64map_count(&C.origins);
    free(o);
}

/* (At most MAX_NODES a room: a short list.) */
static struct node *node_get(struct croom *r, uint64_t inst, int create)
{
    struct node *n;

    LIST_FOREACH(n, &r->nodes, link)
        if (n->inst == inst)
            return n;
    if (!create || r->nnodes >= MAX_NODES || !(n = calloc(1, sizeof(*n))))
        return NULL;
    if (!(n->o = origin_get(inst))) {
        free(n);
        return NULL;
    }
    n->o->rooms++;
    n->inst = inst;
    u64map_init(&n->idx, C.hk0, C.hk1);
    u64map_init(&n->streams, C.hk0, C.hk1);
    LIST_INSERT_HEAD(&r->nodes, n, link);
    r->nnodes++;
    return n;
}

static ssize_t node_find(const struct node *n, uint64_t id)
{
    uint64_t i;

    return u64map_get(&n->idx, id, &i) ? (ssize_t)i : -1;
}

static void node_add(struct croom *r, struct node *n, uint64_t id)
{
    ssize_t i = node_find(n, id);

    if (i >= 0) {
        n->stale[i] = 0;
        return;
    }
    if ((id >> 32) == (C.id_base >> 32) && !C.clash_logged) {
        C.clash_logged = 1;
        log_warn("cluster: another daemon gives out member ids of this "
                 "daemon's node number (%llu): ids may repeat in a room; "
                 "restart one of them",
                 (unsigned long long)(C.id_base >> 32));
    }
    if (r->nremote >= C.cc->max_remote_members) {
        metrics.cluster_dropped[METRICS_CL_LIMIT]++;
        return;
    }
    if (n->n == n->cap) {
        size_t nc = n->cap ? n->cap * 2 : 8;
        uint64_t *ids = realloc(n->ids, nc * sizeof(*ids));
        uint8_t *st;

        if (!ids)
            return;
        n->ids = ids;
        if (!(st = realloc(n->stale, nc)))
            return;
        n->stale = st;
        n->cap = nc;
    }
    if (u64map_put(&n->idx, id, n->n) < 0)
        return;
    n->ids[n->n] = id;
    n->stale[n->n] = 0;
    n->n++;
    r->nremote++;
    metrics.cluster_remote_members++;
    room_remote_presence(r->room, 1, id);
}

static void node_del_at(struct croom *r, struct node *n, size_t i, int tell)
{
    uint64_t id = n->ids[i];

    u64map_del(&n->idx, id);
    n->ids[i] = n->ids[n->n - 1];
    n->stale[i] = n->stale[n->n - 1];
    n->n--;
    if (i < n->n)
        u64map_put(&n->idx, n->ids[i], i); /* replaces: cannot fail */
    r->nremote--;
    metrics.cluster_remote_members--;
    if (tell)
        room_remote_presence(r->room, 0, id);
}

static void stream_end(struct croom *r, struct rstream *s, int abort_code)
{
    struct room_relay *rl = s->relay;

    (void)r;
    LIST_REMOVE(s, link);
    u64map_del(&s->node->streams, s->sid);
    if (--s->node->o->nstreams == 0)
        C.nsending--;
    C.nstreams--;
    metrics.cluster_remote_streams = C.nstreams;
    free(s);
    if (abort_code)
        room_relay_abort(rl, (uint32_t)abort_code);
    room_relay_release(rl);
}

/* A daemon gone from the room (its heartbeats stopped): its members leave,
 * its streams are aborted (tell: the local members hear of it). */
static void node_free(struct croom *r, struct node *n, int tell)
{
    struct rstream *s, *next;

    for (s = LIST_FIRST(&r->streams); s; s = next) {
        next = LIST_NEXT(s, link);
        if (s->node == n)
            stream_end(r, s, CLUSTER_CODE_GONE);
    }
    while (n->n)
        node_del_at(r, n, n->n - 1, tell);
    LIST_REMOVE(n, link);
    r->nnodes--;
    origin_put(n->o);
    u64map_free(&n->idx);
    u64map_free(&n->streams);
    free(n->ids);
    free(n->stale);
    free(n);
}

/* ---- what arrives ---- */

static struct rstream *stream_find(struct node *n, uint64_t sid)
{
    uint64_t v;

    return u64map_get(&n->streams, sid, &v) ? (struct rstream *)(uintptr_t)v
                                             : NULL;
}

/* The streams one other daemon may have relayed here at once: a share of
 * max_remote_streams, one of (daemons sending streams now, counting this
 * one + 1), so that one daemon's senders (a client opening streams as
 * fast as it may) cannot take every slot: the others, and one that starts
 * next, keep theirs.  Daemons merely heard of (a heartbeat, a member) do
 * not count: a quiet cluster of twenty must not cut a busy daemon to a
 * twenty-first, nor may a publisher naming made-up daemons cut everyone's
 * share.  (A share only bounds new streams: a daemon over a share that
 * shrank keeps what it has until those streams end.) */
static size_t stream_share(const struct origin *o)
{
    size_t n = C.nsending + (o->nstreams ? 0 : 1) + 1;
    size_t share = C.cc->max_remote_streams / n;

    return share ? share : 1;
}

static void on_chunk(struct croom *r, struct node *n,
                     const struct cluster_msg *m)
{
    struct rstream *s = stream_find(n, m->stream);

    if (!s) {
        /* a stream starts at 0: anything else is the rest of one that was
         * cut, refused or reset here */
        if (m->offset != 0) {
            metrics.cluster_dropped[METRICS_CL_CUT]++;
            return;
        }
        if (C.nstreams >= C.cc->max_remote_streams ||
            n->o->nstreams >= stream_share(n->o)) {
            metrics.cluster_dropped[METRICS_CL_LIMIT]++;
            return;
        }
        if (!(s = calloc(1, sizeof(*s))))
            return;
        if (u64map_put(&n->streams, m->stream, (uint64_t)(uintptr_t)s) < 0 ||
            !(s->relay = room_remote_relay_open(r->room, m->member,
                                                r->scope->lag))) {
            u64map_del(&n->streams, m->stream);
            free(s);
            return;
        }
        s->node = n;
        s->sid = m->stream;
        LIST_INSERT_HEAD(&r->streams, s, link);
        if (n->o->nstreams++ == 0)
            C.nsending++;
        C.nstreams++;
        metrics.cluster_remote_streams = C.nstreams;
    }
    s->at = ev_now(C.loop);
    if (m->offset != s->next) {
        metrics.cluster_dropped[METRICS_CL_CUT]++;
        stream_end(r, s, CLUSTER_CODE_CUT);
        return;
    }
    s->next += m->len;
    if (room_relay_write(s->relay, m->payload, m->len, m->fin) < 0)
        stream_end(r, s, CLUSTER_CODE_CUT);
    else if (m->fin)
        stream_end(r, s, 0);
}

static void on_hello(struct croom *r, struct node *n,
                     const struct cluster_msg *m)
{
    if (m->flags & CLUSTER_HELLO_FIRST) {
        if (n->n)
            memset(n->stale, 1, n->n);
        n->in_list = 1;
    }
    for (size_t i = 0; i < m->nids; i++)
        node_add(r, n, m->ids[i]);
    if ((m->flags & CLUSTER_HELLO_LAST) && n->in_list) {
        n->in_list = 0;
        for (size_t i = n->n; i-- > 0;)
            if (n->stale[i])
                node_del_at(r, n, i, 1);
    }
    if (m->flags & CLUSTER_HELLO_ASK) {
        /* answered at once, or with the next heartbeat when asked too
         * often (a flood of questions costs one answer a beat) */
        if (ev_now(C.loop) - r->answered >= ASK_EVERY)
            hello(r, 0);
        else
            r->answer_due = 1;
    }
}

static void on_room_msg(struct croom *r, const struct cluster_msg *m)
{
    struct node *n = node_get(r, m->origin, 1);
    ssize_t i;

    if (!n) {
        metrics.cluster_dropped[METRICS_CL_LIMIT]++;
        return;
    }
    n->seen = ev_now(C.loop);
    switch (m->kind) {
    case CLUSTER_MSG_DGRAM:
        room_remote_datagram(r->room, m->member, m->payload, m->len);
        break;
    case CLUSTER_MSG_CHUNK:
        on_chunk(r, n, m);
        break;
    case CLUSTER_MSG_RESET: {
        struct rstream *s = stream_find(n, m->stream);

        if (s)
            stream_end(r, s, m->code ? (int)m->code : CLUSTER_CODE_GONE);
        break;
    }
    case CLUSTER_MSG_JOIN:
        node_add(r, n, m->member);
        break;
    case CLUSTER_MSG_LEAVE:
        if ((i = node_find(n, m->member)) >= 0)
            node_del_at(r, n, (size_t)i, 1);
        break;
    case CLUSTER_MSG_HELLO:
        on_hello(r, n, m);
        break;
    case CLUSTER_MSG_BEAT:
        /* a count that differs: something was missed (Redis was away) */
        if (m->count != n->n && ev_now(C.loop) - r->asked >= ASK_EVERY)
            hello(r, CLUSTER_HELLO_ASK);
        break;
    }
}

static void after(struct scope *sc)
{
    if (sc && sc->after)
        sc->after();
}

static void on_message(const char *chan, size_t clen, const uint8_t *p,
                       size_t n)
{
    static struct cluster_msg m;
    struct croom *r, *next;
    struct scope *sc = NULL;

    metrics.cluster_received++;
    if (cluster_msg_decode(p, n, &m) < 0) {
        metrics.cluster_dropped[METRICS_CL_MALFORMED]++;
        return;
    }
    if (m.origin == C.instance)
        return; /* our own */
    for (r = *bucket(chan, clen); r; r = next) {
        next = r->hnext;
        if (r->clen != clen || memcmp(r->chan, chan, clen) != 0 ||
            !r->subscribed)
            continue;
        sc = r->scope;
        on_room_msg(r, &m);
    }
    after(sc);
}

static void on_subscribed(const char *chan, size_t clen)
{
    for (struct croom *r = *bucket(chan, clen); r; r = r->hnext)
        if (r->clen == clen && memcmp(r->chan, chan, clen) == 0 &&
            !r->subscribed) {
            r->subscribed = 1;
            /* the others' members; ours for them */
            hello(r, CLUSTER_HELLO_ASK);
        }
}

static void on_sub(redisAsyncContext *ac, void *reply, void *priv)
{
    redisReply *rp = reply, **e;

    (void)ac;
    (void)priv;
    if (!rp || rp->type != REDIS_REPLY_ARRAY || rp->elements != 3)
        return;
    e = rp->element;
    if (e[0]->type != REDIS_REPLY_STRING || e[1]->type != REDIS_REPLY_STRING)
        return;
    if (strcmp(e[0]->str, "message") == 0 && e[2]->type == REDIS_REPLY_STRING)
        on_message(e[1]->str, e[1]->len, (const uint8_t *)e[2]->str,
                   e[2]->len);
    else if (strcmp(e[0]->str, "subscribe") == 0)
        on_subscribed(e[1]->str, e[1]->len);
}

static void subscribe(struct croom *r)
{
    if (C.sub && C.sub_ok)
        redisAsyncCommand(C.sub, on_sub, NULL, "SUBSCRIBE %b", r->chan,
                          r->clen);
}

/* ---- rooms: the remote ops ---- */

static void rm_active(void *ctx, struct room *room, int active)
{
    struct scope *sc = ctx;
    struct croom *r = room_remote_data(room), **b, *o;
    const char *name = room_name(room);
    size_t nlen = room_name_len(room), plen = strlen(sc->path);
    size_t pre;

    if (!C.cc)
        return;
    pre = strlen(C.cc->prefix);
    if (active) {
        if (r || !(r = calloc(1, sizeof(*r))))
            return;
        /* prefix ":" path NUL name: a path has no NUL, a name no control
         * character, so no two rooms share a channel */
        r->clen = pre + 1 + plen + 1 + nlen;
        if (!(r->chan = malloc(r->clen))) {
            free(r);
            return;
        }
        memcpy(r->chan, C.cc->prefix, pre);
        r->chan[pre] = ':';
        memcpy(r->chan + pre + 1, sc->path, plen);
        r->chan[pre + 1 + plen] = 0;
        memcpy(r->chan + pre + 2 + plen, name, nlen);
        r->room = room;
        r->scope = sc;
        LIST_INIT(&r->nodes);
        LIST_INIT(&r->streams);
        room_set_remote_data(room, r);
        b = bucket(r->chan, r->clen);
        r->hnext = *b;
        *b = r;
        LIST_INSERT_HEAD(&C.rooms, r, link);
        C.nrooms++;
        table_grow();
        metrics.cluster_rooms = C.nrooms;
        if ((o = chan_other(r)) && o->subscribed) {
            r->subscribed = 1;
            hello(r, CLUSTER_HELLO_ASK);
        } else {
            subscribe(r);
        }
        return;
    }
    if (!r)
        return;
    room_set_remote_data(room, NULL);
    while (!LIST_EMPTY(&r->streams))
        stream_end(r, LIST_FIRST(&r->streams), CLUSTER_CODE_GONE);
    while (!LIST_EMPTY(&r->nodes))
        node_free(r, LIST_FIRST(&r->nodes), 0);
    for (b = bucket(r->chan, r->clen); *b != r; b = &(*b)->hnext)
        ;
    *b = r->hnext;
    LIST_REMOVE(r, link);
    C.nrooms--;
    metrics.cluster_rooms = C.nrooms;
    if (!chan_other(r) && C.sub && C.sub_ok)
        redisAsyncCommand(C.sub, on_sub, NULL, "UNSUBSCRIBE %b", r->chan,
                          r->clen);
    free(r->chan);
    free(r);
}

static void rm_member(void *ctx, struct room *room, int joined, uint64_t id)
{
    struct croom *r = room_remote_data(room);
    struct cluster_msg *m = msg(joined ? CLUSTER_MSG_JOIN : CLUSTER_MSG_LEAVE);

    (void)ctx;
    if (!r)
        return;
    m->member = id;
    publish(r, m);
}

static void rm_datagram(void *ctx, struct room *room, uint64_t from,
                        const uint8_t *p, size_t n)
{
    struct croom *r = room_remote_data(room);
    struct cluster_msg *m = msg(CLUSTER_MSG_DGRAM);

    (void)ctx;
    if (!r || n > CLUSTER_MSG_MAX_DGRAM)
        return;
    m->member = from;
    m->payload = p;
    m->len = n;
    publish(r, m);
}

static void rm_reset(void *ctx, struct room *room, uint64_t from,
                     uint64_t sid, uint32_t code)
{
    struct croom *r = room_remote_data(room);
    struct cluster_msg *m = msg(CLUSTER_MSG_RESET);

    (void)ctx;
    if (!r)
        return;
    m->member = from;
    m->stream = sid;
    m->code = code;
    publish(r, m);
}

static int rm_chunk(void *ctx, struct room *room, uint64_t from, uint64_t sid,
                    uint64_t off, const uint8_t *p, size_t n, int fin)
{
    struct croom *r = room_remote_data(room);

    if (!r)
        return -1;
    do {
        struct cluster_msg *m = msg(CLUSTER_MSG_CHUNK);
        size_t k = n > CLUSTER_MSG_MAX_CHUNK ? CLUSTER_MSG_MAX_CHUNK : n;

        m->member = from;
        m->stream = sid;
        m->offset = off;
        m->payload = p;
        m->len = k;
        m->fin = fin && k == n;
        if (publish(r, m) < 0) {
            /* the others would see a gap: they are told it is cut */
            metrics.cluster_streams_cut++;
            rm_reset(ctx, room, from, sid, CLUSTER_CODE_CUT);
            return -1;
        }
        p += k;
        n -= k;
        off += k;
    } while (n);
    return 0;
}

static const struct room_remote_ops remote_ops = {
    .active = rm_active,
    .member = rm_member,
    .datagram = rm_datagram,
    .chunk = rm_chunk,
    .reset = rm_reset,
};

void cluster_attach(struct room_set *rs, const char *route_path, uint64_t lag,
                    void (*after_fn)(void))
{
    struct scope *sc;

    if (!C.cc || room_set_has_remote(rs))
        return;
    for (sc = C.scopes; sc; sc = sc->next)
        if (strcmp(sc->path, route_path) == 0)
            break;
    if (!sc) {
        if (!(sc = calloc(1, sizeof(*sc))) ||
            !(sc->path = strdup(route_path))) {
            free(sc);
            return;
        }
        sc->next = C.scopes;
        C.scopes = sc;
    }
    sc->lag = lag;
    sc->after = after_fn;
    room_set_remote(rs, &remote_ops, sc, C.id_base);
}

/* ---- connections ---- */

static void connect_both(void);

static void set_state(void)
{
    int up = C.pub && C.sub && C.pub_ok && C.sub_ok;

    if (up == C.up)
        return;
    C.up = up;
    metrics.cluster_up = (uint64_t)up;
    if (up) {
        C.backoff = BACKOFF_MIN;
        C.setup_logged = 0;
        metrics.cluster_connects++;
        log_info("cluster: connected to %s as node %s", C.cc->redis,
                 C.cc->node_id);
        C.was_up = 1;
    }
}

/* One connection failed or closed: both go, and come back after a
 * while.  Logged once per change of state. */
static void lost(const char *why)
{
    redisAsyncContext *p = C.pub, *s = C.sub;
    struct croom *r;

    if (C.up || !C.was_up)
        log_warn("cluster: %s %s (%s); local rooms go on, retrying",
                 C.up ? "lost" : "cannot reach", C.cc->redis, why);
    C.was_up = 2; /* logged: quiet until it is up again */
    C.pub = C.sub = NULL;
    C.pub_ok = C.sub_ok = 0;
    C.up = 0;
    metrics.cluster_up = 0;
    LIST_FOREACH(r, &C.rooms, link)
        r->subscribed = 0;
    /* freeing runs their callbacks (NULL replies): pending goes to 0 */
    if (p)
        redisAsyncFree(p);
    if (s)
        redisAsyncFree(s);
    C.pending = 0;
    metrics.cluster_pending_bytes = 0;
    if (!ev_is_active(&C.retry)) {
        ev_timer_set(&C.retry, C.backoff, 0.);
        ev_timer_start(C.loop, &C.retry);
        C.backoff = C.backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : C.backoff * 2;
    }
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    if (status != REDIS_OK) {
        /* hiredis frees it after this callback */
        if (ac == C.pub)
            C.pub = NULL;
        else if (ac == C.sub)
            C.sub = NULL;
        lost(ac->errstr);
        return;
    }
    /* up once PING answers: AUTH and SELECT, sent first, went through */
}

static void on_setup(redisAsyncContext *ac, void *reply, void *priv);

static void on_ready(redisAsyncContext *ac, void *reply, void *priv)
{
    redisReply *rp = reply;

    if (!rp)
        return; /* freed */
    if (rp->type != REDIS_REPLY_STATUS || strcmp(rp->str, "PONG") != 0) {
        on_setup(ac, reply, priv); /* NOAUTH: a password is wanted */
        return;
    }
    if (ac == C.pub) {
        C.pub_ok = 1;
    } else if (ac == C.sub) {
        struct croom *r;

        C.sub_ok = 1;
        LIST_FOREACH(r, &C.rooms, link)
            subscribe(r);
    }
    set_state();
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    (void)status;
    if (ac != C.pub && ac != C.sub)
        return; /* one we freed */
    if (ac == C.pub)
        C.pub = NULL;
    else
        C.sub = NULL;
    lost(ac->errstr[0] ? ac->errstr : "connection closed");
}

static void on_setup(redisAsyncContext *ac, void *reply, void *priv)
{
    redisReply *rp = reply;

    (void)priv;
    if (rp && rp->type == REDIS_REPLY_ERROR) {
        /* once until it works (a wrong password is retried quietly) */
        if (!C.setup_logged)
            log_warn("cluster: %s: %s", C.cc->redis, rp->str);
        C.setup_logged = 1;
        redisAsyncDisconnect(ac);
    }
}

static redisAsyncContext *connect_one(void)
{
    const struct config_cluster *cc = C.cc;
    redisAsyncContext *ac = cc->unix_path ? redisAsyncConnectUnix(cc->unix_path)
                                          : redisAsyncConnect(cc->host, cc->port);

    if (!ac)
        return NULL;
    if (ac->err) {
        log_debug("cluster: %s: %s", cc->redis, ac->errstr);
        redisAsyncFree(ac);
        return NULL;
    }
    if (redisLibevAttach(C.loop, ac) != REDIS_OK) {
        redisAsyncFree(ac);
        return NULL;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    if (cc->password) {
        if (cc->user)
            redisAsyncCommand(ac, on_setup, NULL, "AUTH %s %s", cc->user,
                              cc->password);
        else
            redisAsyncCommand(ac, on_setup, NULL, "AUTH %s", cc->password);
    }
    if (cc->db)
        redisAsyncCommand(ac, on_setup, NULL, "SELECT %d", (int)cc->db);
    redisAsyncCommand(ac, on_ready, NULL, "PING");
    return ac;
}

static void connect_both(void)
{
    C.pub = connect_one();
    C.sub = C.pub ? connect_one() : NULL;
    if (!C.pub || !C.sub)
        lost("cannot start a connection");
}

static void retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    if (!C.pub && !C.sub)
        connect_both();
}

/* Each heartbeat: say we are alive in every room, answer questions held
 * back, and let go of daemons and streams that went quiet. */
static void beat_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    ev_tstamp now = ev_now(loop), timeout = (double)C.cc->node_timeout_ms / 1e3;
    struct croom *r;
    struct scope *sc = NULL;

    (void)w;
    (void)revents;
    LIST_FOREACH(r, &C.rooms, link) {
        struct node *n, *nn;
        struct rstream *s, *sn;

        if (r->subscribed) {
            struct cluster_msg *m = msg(CLUSTER_MSG_BEAT);

            m->count = room_count(r->room);
            publish(r, m);
            if (r->answer_due)
                hello(r, 0);
        }
        for (n = LIST_FIRST(&r->nodes); n; n = nn) {
            nn = LIST_NEXT(n, link);
            if (now - n->seen > timeout) {
                if (n->n)
                    log_info("cluster: room \"%s\": no word from a daemon "
                             "for %.1fs: its %zu members leave",
                             room_name(r->room), now - n->seen, n->n);
                metrics.cluster_nodes_expired++;
                node_free(r, n, 1);
                sc = r->scope;
            }
        }
        for (s = LIST_FIRST(&r->streams); s; s = sn) {
            sn = LIST_NEXT(s, link);
            if (now - s->at > timeout) {
                metrics.cluster_streams_cut++;
                stream_end(r, s, CLUSTER_CODE_GONE);
                sc = r->scope;
            }
        }
    }
    after(sc);
}

int cluster_start(struct ev_loop *loop, struct config *cfg)
{
    if (!cfg->cluster.redis)
        return 0;
    memset(&C, 0, sizeof(C));
    /* the tables' key: no publisher or client can choose ids or room
     * names that share a slot run or a chain */
    if (siphash_key_new(&C.hk0, &C.hk1) < 0) {
        log_error("cluster: no random bytes for the hash key");
        return -1;
    }
    C.loop = loop;
    C.cfg = config_ref(cfg);
    C.cc = &cfg->cluster;
    LIST_INIT(&C.rooms);
    C.nbuckets = 64;
    if (!(C.buckets = calloc(C.nbuckets, sizeof(*C.buckets))))
        return -1;
    /* this process's id in every message (its own come back: ignored);
     * member ids start at a 20-bit number from it, so that ids of
     * different daemons differ and stay below 2^53 (exact in JavaScript) */
    if (getrandom(&C.instance, sizeof(C.instance), 0) != sizeof(C.instance))
        C.instance = (uint64_t)time(NULL) * 2654435761u ^ (uint64_t)getpid();
    u64map_init(&C.origins, C.hk0, C.hk1);
    C.id_base = ((C.instance >> 20) & 0xfffff) << 32;
    if (!C.id_base)
        C.id_base = 1ULL << 32;
    C.backoff = BACKOFF_MIN;
    metrics.cluster_on = 1;
    ev_timer_init(&C.retry, retry_cb, 0., 0.);
    ev_timer_init(&C.beat, beat_cb, (double)C.cc->heartbeat_ms / 1e3,
                  (double)C.cc->heartbeat_ms / 1e3);
    ev_timer_start(loop, &C.beat);
    log_info("cluster: node %s, redis %s", C.cc->node_id, C.cc->redis);
    connect_both();
    return 0;
}

void cluster_stop(void)
{
    redisAsyncContext *p = C.pub, *s = C.sub;
    struct scope *sc, *next;

    if (!C.cc)
        return;
    ev_timer_stop(C.loop, &C.retry);
    ev_timer_stop(C.loop, &C.beat);
    C.pub = C.sub = NULL;
    C.up = 0;
    if (p)
        redisAsyncFree(p);
    if (s)
        redisAsyncFree(s);
    /* rooms go with their last members, before this */
    free(C.buckets);
    u64map_free(&C.origins);
    for (sc = C.scopes; sc; sc = next) {
        next = sc->next;
        free(sc->path);
        free(sc);
    }
    config_unref(C.cfg);
    memset(&C, 0, sizeof(C));
}
