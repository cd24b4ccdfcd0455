/*
 * handler_broadcast: rooms where what one member sends reaches every other
 * member.  Each session joins the room its request names (room.h keeps the
 * members and fans out); this file is the session and stream side: a
 * member's datagrams and streams go to the room, and what the room hands
 * a member goes out on its session — datagrams as datagrams, streams (uni
 * or bidi) as uni streams the server opens, relayed as their bytes arrive.
 *
 * Bytes are held once for all receivers (shared blocks, buf.h).  Each
 * member may have max_queue_bytes of relayed data not yet acknowledged;
 * what it has no room for the room keeps for it, and the sender's
 * flow-control credit returns as soon as the fastest member has the bytes
 * (room.h).  A member that falls max_queue_bytes behind the fastest is
 * slow: `slow = drop` resets its copy of the stream (its datagrams are
 * dropped while its queue is full), `slow = disconnect` closes its
 * session.  So the slowest member never sets the pace, and what the daemon
 * holds stays bounded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <ev.h>

#include "cluster.h"
#include "config.h"
#include "handler.h"
#include "log.h"
#include "metrics.h"
#include "room.h"
#include "wire.h"
#include "wt.h"

/* WebTransport application error codes (README, broadcast) */
/* stream codes below 256: draft-02 browsers carry no more (Firefox shows
 * a larger code as 0); session codes (CLOSE capsule) are 32-bit there */
#define BC_SLOW 0xe1    /* your copy reset: over max_queue_bytes */
#define BC_GONE 0xe2    /* the sender left before its stream ended */
#define BC_REFUSED 0xe3 /* the sender's stream was not relayed */
#define BC_CLOSE_SLOW 0x42520004 /* session closed (slow = disconnect) */

/* What a copy costs a member's budget besides its bytes (so that many
 * small or empty streams count too): about what its state takes. */
#define COPY_COST 256

/* Seconds a member whose copies lag more than max_queue_bytes in all may
 * go without taking or having acknowledged anything before it is slow:
 * one that reads lags only for a moment (a faster member's head start),
 * one that stopped does not recover. */
#define SLOW_GRACE 1.0

enum { SLOW_DROP, SLOW_DISCONNECT };

struct bc_conf {
    char *room_param;
    int echo_self, tag, announce, slow;
    uint64_t max_members, max_rooms, max_queue_bytes, max_relays;
    struct room_set *rooms;
    struct metrics_route *metrics; /* rooms and members, by route path */
};

struct bc_copy;
struct bc_in;

struct bc_member {
    struct room_member rm; /* first: the room hands this back */
    struct wt_session *s;
    const struct bc_conf *conf;
    uint64_t queued; /* relayed, not yet acknowledged (+ COPY_COST each) */
    uint64_t lag;    /* what its copies lag behind the fastest, in all */
    LIST_HEAD(, bc_copy) copies;      /* relayed streams it receives */
    TAILQ_HEAD(, bc_copy) waiting;    /* ... of them, waiting for a stream */
    LIST_HEAD(, bc_in) sends;         /* its own streams, being relayed */
    size_t nrelays;                   /* ... of them, still relaying */
    int closed, doomed, shed;
    ev_tstamp progress_at; /* it last took or had acknowledged bytes */
    int blocked; /* a copy took less than offered: resume when room frees */
    uint64_t dgrams_dropped, streams_dropped, announces_dropped;
    LIST_ENTRY(bc_member) d_link; /* doomed: closed after the fan-out */
    LIST_ENTRY(bc_member) s_link; /* shed: its backlog dropped after it */
};

/* One member's copy of a relayed stream (a server-opened uni stream). */
struct bc_copy {
    int kind; /* KIND_COPY */
    struct bc_member *to;
    struct room_relay *relay; /* NULL once the room is done with it */
    struct wt_stream *out;    /* NULL while waiting for a stream */
    uint64_t written, acked;  /* handler bytes on `out` (tag included) */
    uint64_t charged;         /* of `to->queued`, what this copy holds */
    uint64_t lag;             /* of `to->lag`, this copy's */
    uint8_t tag[8];
    uint8_t taglen;
    int is_waiting;
    LIST_ENTRY(bc_copy) m_link;
    TAILQ_ENTRY(bc_copy) w_link;
};

/* A member's own stream being relayed. */
struct bc_in {
    int kind; /* KIND_IN */
    struct bc_member *from;
    struct wt_session *s;     /* NULL once the session ended */
    struct wt_stream *in;     /* NULL once its stream closed */
    struct room_relay *relay; /* NULL once freed */
    uint64_t received, credited;
    int fin;     /* its end arrived */
    int kept;    /* closed with uncredited bytes: they are the session's */
    int relayed; /* counted in from->nrelays */
    LIST_ENTRY(bc_in) link;
};

enum { KIND_COPY = 1, KIND_IN };

static LIST_HEAD(, bc_member) doomed = LIST_HEAD_INITIALIZER(doomed);
static LIST_HEAD(, bc_member) shed = LIST_HEAD_INITIALIZER(shed);

static struct bc_member *member_of(struct room_member *rm)
{
    return (struct bc_member *)rm;
}

static int kind_of(const struct wt_stream *st)
{
    return st->hdata ? *(const int *)st->hdata : 0;
}

/* ---- configuration ---- */

static struct bc_conf *conf_get(struct config_route *r, char *err,
                                size_t errlen)
{
    struct bc_conf *c = r->handler_conf;

    if (c)
        return c;
    if (!(c = calloc(1, sizeof(*c))) || !(c->room_param = strdup("room"))) {
        free(c);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->max_members = 1000;
    c->max_rooms = 1000;
    c->max_queue_bytes = 1024 * 1024;
    c->max_relays = 64;
    c->slow = SLOW_DROP;
    r->handler_conf = c;
    return c;
}

static int bc_configure(struct config_route *r, const char *key,
                        const char *val, char *err, size_t errlen)
{
    struct bc_conf *c = conf_get(r, err, errlen);
    int *flag = NULL, b;
    uint64_t *num = NULL, v, lo = 1, hi = 1000000;

    if (!c)
        return -1;
    if (strcmp(key, "room_param") == 0) {
        if (!*val || strlen(val) > 64 || strpbrk(val, "&=?#%+ ")) {
            snprintf(err, errlen, "room_param: a query parameter name");
            return -1;
        }
        free(c->room_param);
        if (!(c->room_param = strdup(val))) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        return 0;
    }
    if (strcmp(key, "slow") == 0) {
        if (strcmp(val, "drop") == 0)
            c->slow = SLOW_DROP;
        else if (strcmp(val, "disconnect") == 0)
            c->slow = SLOW_DISCONNECT;
        else {
            snprintf(err, errlen, "slow: drop or disconnect");
            return -1;
        }
        return 0;
    }
    if (strcmp(key, "echo_self") == 0)
        flag = &c->echo_self;
    else if (strcmp(key, "tag") == 0)
        flag = &c->tag;
    else if (strcmp(key, "announce") == 0)
        flag = &c->announce;
    if (flag) {
        if ((b = config_parse_bool(val)) < 0) {
            snprintf(err, errlen, "%s: yes or no", key);
            return -1;
        }
        *flag = b;
        return 0;
    }
    if (strcmp(key, "max_members") == 0)
        num = &c->max_members;
    else if (strcmp(key, "max_rooms") == 0)
        num = &c->max_rooms;
    else if (strcmp(key, "max_relays") == 0)
        num = &c->max_relays;
    else if (strcmp(key, "max_queue_bytes") == 0) {
        num = &c->max_queue_bytes;
        lo = 1024;
        hi = 1ULL << 32;
    }
    if (!num) {
        snprintf(err, errlen, "unknown key '%s' for handler broadcast", key);
        return -1;
    }
    if (config_parse_size(val, &v) < 0 || v < lo || v > hi) {
        snprintf(err, errlen, "%s: a number from %llu to %llu", key,
                 (unsigned long long)lo, (unsigned long long)hi);
        return -1;
    }
    *num = v;
    return 0;
}

static int bc_route_check(struct config_route *r, char *err, size_t errlen)
{
    struct bc_conf *c = conf_get(r, err, errlen);

    if (!c)
        return -1;
    /* announcements come on streams of their own, told apart from
     * relayed ones by the member id 0 that starts them */
    if (c->announce && !c->tag) {
        snprintf(err, errlen, "announce = yes needs tag = yes (receivers "
                              "tell announcements by their member id 0)");
        return -1;
    }
    if (!(c->rooms = room_set_new(c->max_rooms, c->max_members))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    c->metrics = metrics_route(r->path);
    c->metrics->broadcast = 1;
    return 0;
}

void handler_broadcast_flags(const struct config_route *r, int *tag,
                             int *announce)
{
    const struct bc_conf *c = r->handler_conf;

    *tag = c ? c->tag : 0;
    *announce = c ? c->announce : 0;
}

static void bc_route_free(struct config_route *r)
{
    struct bc_conf *c = r->handler_conf;

    if (!c)
        return;
    room_set_free(c->rooms);
    free(c->room_param);
    free(c);
    r->handler_conf = NULL;
}

/*
 * Reload: the new route takes over its predecessor's rooms, so that a
 * member who joins "lobby" after the reload meets those who joined before
 * (two rooms of one name would split the users).  The set is shared: the
 * old route keeps it for its members until they leave.  Joins from now on
 * count against the new max_rooms and max_members; every member keeps the
 * settings of the route it joined on (tag, announce, echo_self,
 * max_queue_bytes, max_relays, slow), which only concern what it sends and
 * receives itself.
 */
static void bc_route_inherit(struct config_route *r, struct config_route *old)
{
    struct bc_conf *c = r->handler_conf, *o = old->handler_conf;

    if (!c || !o || !o->rooms)
        return;
    room_set_free(c->rooms); /* new and empty */
    c->rooms = room_set_ref(o->rooms);
    room_set_limits(c->rooms, c->max_rooms, c->max_members);
}

/* ---- members ---- */

static void doom(struct bc_member *m)
{
    if (m->doomed || m->closed)
        return;
    m->doomed = 1;
    LIST_INSERT_HEAD(&doomed, m, d_link);
}

static void copy_drop(struct bc_copy *c, uint32_t code);

/* Closes the sessions of members found too slow during a fan-out, once
 * it is over (the room's member list must not change under it). */
static void bury(void)
{
    struct bc_member *m;

    /* slow members (slow = drop) lose every copy that lags; a drop may
     * end other copies (the relay settles), so the search starts over
     * each time: each round ends one copy */
    while ((m = LIST_FIRST(&shed))) {
        struct bc_copy *c;

        LIST_REMOVE(m, s_link);
        m->shed = 0;
        for (;;) {
            struct room_relay *r;

            LIST_FOREACH(c, &m->copies, m_link)
                if (c->relay && c->lag)
                    break;
            if (!c)
                break;
            r = c->relay;
            c->relay = NULL;
            room_relay_drop(r, c); /* may end others: never c */
            m->streams_dropped++;
            copy_drop(c, BC_SLOW);
        }
    }

    while ((m = LIST_FIRST(&doomed))) {
        LIST_REMOVE(m, d_link);
        m->doomed = 0;
        char who[128];

        log_info("%s: member %llu of room \"%s\": over max_queue_bytes "
                 "(%llu), disconnected",
                 wt_session_name(m->s, who, sizeof(who)),
                 (unsigned long long)m->rm.id,
                 m->rm.room ? room_name(m->rm.room) : "",
                 (unsigned long long)m->conf->max_queue_bytes);
        static const char why[] = "too slow: relay queue over max_queue_bytes";
        wt_session_close(m->s, BC_CLOSE_SLOW, why, sizeof(why) - 1);
    }
}

static void member_free_if_done(struct bc_member *m)
{
    if (m->closed && LIST_EMPTY(&m->copies) && LIST_EMPTY(&m->sends))
        free(m);
}

/* What the copy lags: a waiting one also costs its place in line, so
 * that many empty messages count too. */
static void copy_set_lag(struct bc_copy *c, uint64_t lag)
{
    if (!c->out)
        lag += COPY_COST;
    c->to->lag = c->to->lag - c->lag + lag;
    c->lag = lag;
}

/* The room is done with the copy: it lags no more. */
static void copy_clear_lag(struct bc_copy *c)
{
    c->to->lag -= c->lag;
    c->lag = 0;
}

static void uncharge(struct bc_copy *c, uint64_t n)
{
    if (n > c->charged)
        n = c->charged;
    c->charged -= n;
    c->to->queued -= n;
}

/* ---- copies: what a member receives ---- */

static void copy_unwait(struct bc_copy *c)
{
    if (!c->is_waiting)
        return;
    TAILQ_REMOVE(&c->to->waiting, c, w_link);
    c->is_waiting = 0;
}

static void copy_free(struct bc_copy *c)
{
    struct bc_member *m = c->to;

    if (c->relay)
        room_relay_drop(c->relay, c);
    copy_unwait(c);
    uncharge(c, c->charged);
    copy_clear_lag(c);
    LIST_REMOVE(c, m_link);
    free(c);
    member_free_if_done(m);
}

/* The copy will carry no more (the room has let go of it): its stream is
 * reset (freed when the stream closes), or, still waiting, it goes now. */
static void copy_drop(struct bc_copy *c, uint32_t code)
{
    c->relay = NULL;
    copy_clear_lag(c);
    if (c->out)
        wt_stream_reset(c->out, code);
    else
        copy_free(c);
}

/* Its stream is open: the tag first (owned bytes, a few). */
static int copy_attach(struct bc_copy *c, struct wt_stream *out)
{
    c->out = out;
    out->hdata = c;
    if (c->taglen && wt_stream_write(out, c->tag, c->taglen, 0) < 0)
        return -1;
    c->written += c->taglen;
    return 0;
}

static void *bc_copy_open(struct room_member *rm, uint64_t from,
                          struct room_relay *r)
{
    struct bc_member *m = member_of(rm);
    struct bc_copy *c;
    struct wt_stream *out;
    ssize_t t;

    if (m->closed || m->doomed || !(c = calloc(1, sizeof(*c))))
        return NULL;
    c->kind = KIND_COPY;
    c->to = m;
    c->relay = r;
    LIST_INSERT_HEAD(&m->copies, c, m_link);
    /* a copy costs a little even empty: many of them count too */
    m->queued += COPY_COST;
    c->charged = COPY_COST;
    if (m->conf->tag && (t = wire_varint_encode(c->tag, sizeof(c->tag),
                                                from)) > 0)
        c->taglen = (uint8_t)t;
    if ((out = wt_session_open_stream(m->s, 0))) {
        if (copy_attach(c, out) < 0) {
            m->streams_dropped++;
            copy_drop(c, BC_SLOW); /* the room never had it */
            return NULL;
        }
    } else {
        /* no stream slot now (the member's limit): it lags until one
         * frees (session_streams_available) */
        TAILQ_INSERT_TAIL(&m->waiting, c, w_link);
        c->is_waiting = 1;
    }
    return c;
}

/* Takes what the member has room for: its budget, and its stream's. */
static ssize_t bc_copy_write(struct room_member *rm, void *copy,
                             struct buf_shared *b, size_t off, size_t n,
                             int fin)
{
    struct bc_copy *c = copy;
    struct bc_member *m = member_of(rm);
    uint64_t budget = m->conf->max_queue_bytes;
    size_t k = n, room;

    if (m->doomed)
        return -1; /* its session is closing */
    if (!c->out)
        return ROOM_WAIT; /* until a stream slot frees */
    if (m->queued >= budget)
        k = 0;
    else if (budget - m->queued < k)
        k = (size_t)(budget - m->queued);
    if ((room = wt_stream_room(c->out)) < k)
        k = room;
    if ((k && wt_stream_write_shared(c->out, b, off, k, fin && k == n) < 0) ||
        (!k && !n && fin && wt_stream_write(c->out, NULL, 0, 1) < 0)) {
        m->streams_dropped++; /* out of memory, or the stream stopped */
        copy_drop(c, BC_SLOW);
        return -1;
    }
    m->queued += k;
    c->charged += k;
    c->written += k;
    if (k)
        m->progress_at = ev_now(wt_session_loop(m->s));
    if (k < n)
        m->blocked = 1;
    return (ssize_t)k;
}

/* Every copy may lag max_queue_bytes behind the fastest (the room's own
 * check).  A member's copies of complete messages together may lag that
 * much too, for SLOW_GRACE without progress: past that it has stopped
 * reading (its copies stalled, or waiting for stream slots it never
 * frees), whatever the sizes of the messages, and it is slow: this copy
 * goes, and with slow = drop every other that lags (in bury). */
static int bc_copy_lag(struct room_member *rm, void *copy, uint64_t lag)
{
    struct bc_member *m = member_of(rm);

    copy_set_lag(copy, lag);
    if (!((struct bc_copy *)copy)->lag ||
        m->lag <= m->conf->max_queue_bytes ||
        ev_now(wt_session_loop(m->s)) - m->progress_at < SLOW_GRACE)
        return 0;
    if (m->conf->slow == SLOW_DROP && !m->shed) {
        m->shed = 1;
        LIST_INSERT_HEAD(&shed, m, s_link);
    }
    return -1;
}

static void bc_copy_slow(struct room_member *rm, void *copy)
{
    struct bc_member *m = member_of(rm);

    log_debug("broadcast: member %llu: a copy slow (it lags %llu bytes, "
              "the member %llu in all)",
              (unsigned long long)m->rm.id,
              (unsigned long long)((struct bc_copy *)copy)->lag,
              (unsigned long long)m->lag);
    m->streams_dropped++;
    if (m->conf->slow == SLOW_DISCONNECT) {
        ((struct bc_copy *)copy)->relay = NULL;
        copy_clear_lag(copy);
        doom(m);
    } else {
        copy_drop(copy, BC_SLOW);
    }
}

static void bc_copy_abort(struct room_member *rm, void *copy, uint32_t code)
{
    (void)rm;
    copy_drop(copy, code);
}

static void bc_copy_done(struct room_member *rm, void *copy)
{
    struct bc_copy *c = copy;

    (void)rm;
    c->relay = NULL;
    copy_clear_lag(c);
}

/* The member has room again (acknowledgements, a stream slot): its copies
 * take what their relays hold for them. */
static void member_resume(struct bc_member *m)
{
    struct bc_copy *c, *next;

    if (!m->blocked)
        return;
    m->blocked = 0;
    /* resuming a copy can end that copy (never another of m's) */
    for (c = LIST_FIRST(&m->copies); c; c = next) {
        next = LIST_NEXT(c, m_link);
        if (c->relay && c->out)
            room_relay_resume(c->relay, c);
    }
}

static void bc_streams_available(struct wt_session *s)
{
    struct bc_member *m = s->hdata;
    struct bc_copy *c;
    struct wt_stream *out;

    while (m && (c = TAILQ_FIRST(&m->waiting))) {
        if (!(out = wt_session_open_stream(s, 0)))
            break;
        copy_unwait(c);
        if (copy_attach(c, out) < 0) {
            m->streams_dropped++;
            if (c->relay)
                room_relay_drop(c->relay, c);
            copy_drop(c, BC_SLOW);
        }
        m->blocked = 1;
    }
    if (m)
        member_resume(m);
    bury();
}

/* ---- datagrams and announcements ---- */

static void bc_room_datagram(struct room_member *rm, uint64_t from,
                             const uint8_t *p, size_t n)
{
    struct bc_member *m = member_of(rm);
    static uint8_t buf[8 + 65536];
    ssize_t t = 0;

    if (m->doomed || m->queued > m->conf->max_queue_bytes || n > 65535) {
        m->dgrams_dropped++;
        return;
    }
    if (m->conf->tag)
        t = wire_varint_encode(buf, 8, from);
    if (t < 0) {
        m->dgrams_dropped++;
        return;
    }
    memcpy(buf + t, p, n);
    /* datagrams have no flow control: a full queue drops (counted) */
    if (wt_session_send_datagram(m->s, buf, (size_t)t + n) < 0)
        m->dgrams_dropped++;
}

/* A small message on a uni stream of its own: member id 0 (the room),
 * then JSON.  Lost, and counted, when the member has no stream slot. */
static void announce(struct bc_member *m, const char *type, uint64_t id,
                     size_t count)
{
    char msg[128];
    int n = snprintf(msg + 1, sizeof(msg) - 1,
                     "{\"type\":\"%s\",\"id\":%llu,\"members\":%zu}", type,
                     (unsigned long long)id, count);
    struct wt_stream *out;

    msg[0] = 0x00; /* varint 0: from the room itself */
    if (n < 0 || !(out = wt_session_open_stream(m->s, 0)) ||
        wt_stream_write(out, (const uint8_t *)msg, (size_t)n + 1, 1) < 0)
        m->announces_dropped++;
}

static void bc_presence(struct room_member *rm, int joined, uint64_t who,
                        size_t count)
{
    struct bc_member *m = member_of(rm);

    if (m->conf->announce && !m->closed)
        announce(m, joined ? "join" : "leave", who, count);
}

static const struct room_member_ops member_ops = {
    .datagram = bc_room_datagram,
    .copy_open = bc_copy_open,
    .copy_write = bc_copy_write,
    .copy_lag = bc_copy_lag,
    .copy_slow = bc_copy_slow,
    .copy_abort = bc_copy_abort,
    .copy_done = bc_copy_done,
    .presence = bc_presence,
};

/* ---- what a member sends ---- */

static void in_free(struct bc_in *in)
{
    struct bc_member *m = in->from;

    LIST_REMOVE(in, link);
    free(in);
    member_free_if_done(m);
}

/* The fastest member has the first `front` bytes: the sender's credit. */
static void in_progress(void *sender, uint64_t front)
{
    struct bc_in *in = sender;
    uint64_t n;

    if (front > in->received)
        front = in->received;
    if (front <= in->credited)
        return;
    n = front - in->credited;
    in->credited = front;
    if (in->in)
        wt_stream_consume(in->in, (size_t)n);
    else if (in->kept && in->s)
        wt_session_release(in->s, n, 0);
}

/* Every member has the whole message: a bidi stream's FIN tells the
 * sender (its acknowledgement). */
static void in_delivered(void *sender)
{
    struct bc_in *in = sender;

    if (in->in && wt_stream_is_bidi(in->in))
        wt_stream_write(in->in, NULL, 0, 1);
}

/* The sender's stream has ended (its end, or the relay is gone): it no
 * longer counts against max_relays.  What the relay still holds for
 * slower members is bounded by their lag. */
static void in_unrelay(struct bc_in *in)
{
    if (in->relayed) {
        in->relayed = 0;
        in->from->nrelays--;
    }
}

static void in_gone(void *sender)
{
    struct bc_in *in = sender;

    in->relay = NULL;
    in_unrelay(in);
    if (in->in)
        return; /* its stream_close frees it */
    if (in->kept && in->s)
        wt_session_release(in->s, in->received - in->credited, 1);
    in_free(in);
}

static const struct room_sender_ops sender_ops = {
    .progress = in_progress,
    .delivered = in_delivered,
    .gone = in_gone,
};

/* ---- sessions ---- */

static int bc_session_open(struct wt_session *s)
{
    const struct bc_conf *conf = s->route->handler_conf;
    const char *path = wt_session_path(s);
    char name[ROOM_NAME_MAX + 1];
    size_t len;
    struct bc_member *m;
    char who[128];
    int rv;

    if (!conf || !path)
        return 503;
    if (room_name_from_path(path, conf->room_param, name, &len) < 0)
        return 400;
    if (!(m = calloc(1, sizeof(*m))))
        return 503;
    m->s = s;
    m->conf = conf;
    m->rm.ops = &member_ops;
    m->progress_at = ev_now(wt_session_loop(s));
    LIST_INIT(&m->copies);
    TAILQ_INIT(&m->waiting);
    LIST_INIT(&m->sends);
    /* [cluster]: the route's rooms span the daemons sharing its Redis */
    cluster_attach(conf->rooms, s->route->path, conf->max_queue_bytes, bury);
    rv = room_join(conf->rooms, name, len, &m->rm);
    if (rv != ROOM_OK) {
        free(m);
        return rv == ROOM_FULL ? 429 : 503;
    }
    s->hdata = m;
    conf->metrics->members++;
    if (room_count(m->rm.room) == 1)
        conf->metrics->rooms++;
    log_info("%s: member %llu of room \"%s\" (%zu members)",
             wt_session_name(s, who, sizeof(who)),
             (unsigned long long)m->rm.id, name, room_count(m->rm.room));
    if (conf->announce)
        announce(m, "welcome", m->rm.id, room_total(m->rm.room));
    return 0;
}

static void bc_session_close(struct wt_session *s, uint32_t code,
                             const char *reason, size_t reasonlen)
{
    struct bc_member *m = s->hdata;
    struct bc_copy *c;
    struct bc_in *in, *next;
    char who[128];

    (void)code;
    (void)reason;
    (void)reasonlen;
    if (!m)
        return;
    if (m->doomed) {
        LIST_REMOVE(m, d_link);
        m->doomed = 0;
    }
    if (m->shed) {
        LIST_REMOVE(m, s_link);
        m->shed = 0;
    }
    /* what it sends ends for everybody, what it receives ends for it;
     * then it leaves (room_leave's contract) */
    for (in = LIST_FIRST(&m->sends); in; in = next) {
        next = LIST_NEXT(in, link);
        /* its credit goes back with the session; a complete message goes
         * on to the members still taking it, an incomplete one is
         * aborted (which may free `in`) */
        in->s = NULL;
        in->kept = 0;
        if (in->relay && !in->fin)
            room_relay_abort(in->relay, BC_GONE);
    }
    LIST_FOREACH(c, &m->copies, m_link) {
        if (c->relay)
            room_relay_drop(c->relay, c);
        c->relay = NULL;
    }
    log_info("%s: member %llu left room \"%s\" (%llu datagrams, %llu "
             "streams, %llu announcements dropped for it)",
             wt_session_name(s, who, sizeof(who)),
             (unsigned long long)m->rm.id,
             m->rm.room ? room_name(m->rm.room) : "",
             (unsigned long long)m->dgrams_dropped,
             (unsigned long long)m->streams_dropped,
             (unsigned long long)m->announces_dropped);
    /* copies still waiting have no stream to end them */
    while ((c = TAILQ_FIRST(&m->waiting)))
        copy_free(c);
    m->closed = 1;
    m->conf->metrics->members--;
    if (m->rm.room && room_count(m->rm.room) == 1)
        m->conf->metrics->rooms--;
    room_leave(&m->rm);
    s->hdata = NULL;
    member_free_if_done(m);
}

/* ---- streams ---- */

static void bc_stream_open(struct wt_stream *st)
{
    struct bc_member *m = wt_stream_session(st)->hdata;
    struct bc_in *in;

    if (wt_stream_is_local(st) || !m)
        return;
    if (!(in = calloc(1, sizeof(*in)))) {
        wt_stream_reset(st, BC_REFUSED);
        return;
    }
    in->kind = KIND_IN;
    in->from = m;
    in->s = wt_stream_session(st);
    in->in = st;
    LIST_INSERT_HEAD(&m->sends, in, link);
    st->hdata = in;
    /* each relay holds a stream slot on every member: one sender may
     * hold max_relays of them, not starve the room of streams */
    if (m->nrelays >= m->conf->max_relays ||
        !(in->relay = room_relay_open(&m->rm, m->conf->echo_self,
                                      m->conf->max_queue_bytes, &sender_ops,
                                      in))) {
        wt_stream_reset(st, BC_REFUSED);
        return;
    }
    m->nrelays++;
    in->relayed = 1;
    bury();
}

static void bc_stream_data(struct wt_stream *st, const uint8_t *p, size_t n,
                           int fin)
{
    struct bc_in *in = st->hdata;

    if (kind_of(st) != KIND_IN)
        return;
    in->received += n;
    in->fin |= fin;
    if (!in->relay) { /* refused or aborted: read and dropped */
        in_progress(in, in->received);
        return;
    }
    if (room_relay_write(in->relay, p, n, fin) < 0) {
        room_relay_abort(in->relay, BC_REFUSED);
        wt_stream_reset(st, BC_REFUSED);
    } else if (fin) {
        in_unrelay(in);
    }
    bury();
}

static void bc_stream_reset(struct wt_stream *st, uint32_t code)
{
    struct bc_in *in = st->hdata;

    if (kind_of(st) == KIND_IN && in->relay)
        room_relay_abort(in->relay, code ? code : BC_GONE);
    wt_stream_reset(st, code);
}

static void bc_stream_stop_sending(struct wt_stream *st, uint32_t code)
{
    /* A receiver stopped reading its copy: that copy is over.  (A sender
     * that stops reading its bidi stream only gives up the FIN that would
     * have acknowledged its message: the relay goes on.) */
    if (kind_of(st) != KIND_COPY)
        return;
    ((struct bc_copy *)st->hdata)->to->streams_dropped++;
    wt_stream_reset(st, code);
}

static void bc_stream_writable(struct wt_stream *st)
{
    struct bc_copy *c = st->hdata;
    uint64_t acked;

    if (kind_of(st) != KIND_COPY)
        return;
    acked = wt_stream_acked(st);
    if (acked > c->acked) {
        uncharge(c, acked - c->acked);
        c->acked = acked;
        c->to->progress_at = ev_now(wt_session_loop(c->to->s));
    }
    member_resume(c->to);
    bury();
}

static void bc_stream_close(struct wt_stream *st)
{
    int kind = kind_of(st);

    if (kind == KIND_COPY) {
        copy_free(st->hdata);
    } else if (kind == KIND_IN) {
        struct bc_in *in = st->hdata;
        struct room_relay *r = in->relay;

        in->in = NULL;
        if (!r) {
            in_free(in);
        } else {
            /* ended without its end: the copies are aborted; with bytes
             * the relay still holds, their credit waits for it (kept) */
            if (!in->fin)
                room_relay_abort(r, BC_GONE);
            if (in->credited < in->received) {
                wt_stream_keep(st);
                in->kept = 1;
            }
            room_relay_release(r); /* may free `in` (in_gone) */
        }
    }
    st->hdata = NULL;
}

static void bc_datagram(struct wt_session *s, const uint8_t *p, size_t n)
{
    struct bc_member *m = s->hdata;

    if (!m)
        return;
    room_send_datagram(&m->rm, p, n, m->conf->echo_self);
    bury();
}

const struct wt_handler_ops handler_broadcast = {
    .name = "broadcast",
    .configure = bc_configure,
    .route_check = bc_route_check,
    .route_free = bc_route_free,
    .route_inherit = bc_route_inherit,
    .session_open = bc_session_open,
    .session_close = bc_session_close,
    .session_streams_available = bc_streams_available,
    .stream_open = bc_stream_open,
    .stream_data = bc_stream_data,
    .stream_reset = bc_stream_reset,
    .stream_stop_sending = bc_stream_stop_sending,
    .stream_writable = bc_stream_writable,
    .stream_close = bc_stream_close,
    .datagram = bc_datagram,
};
