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
 * past it, `slow = drop` resets that member's copy of the stream (and
 * drops its datagrams), `slow = disconnect` closes its session.  The
 * sender's flow-control credit returns as soon as every member that keeps
 * up has the bytes queued, so the slowest member never sets the pace.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "config.h"
#include "handler.h"
#include "log.h"
#include "room.h"
#include "wire.h"
#include "wt.h"

/* WebTransport application error codes (README, broadcast) */
#define BC_SLOW 0x42520001    /* your copy reset: over max_queue_bytes */
#define BC_GONE 0x42520002    /* the sender left before its stream ended */
#define BC_REFUSED 0x42520003 /* the sender's stream was not relayed */
#define BC_CLOSE_SLOW 0x42520004 /* session closed (slow = disconnect) */

/* What a copy costs a member's budget besides its bytes (so that many
 * small or empty streams count too). */
#define COPY_COST 64

enum { SLOW_DROP, SLOW_DISCONNECT };

struct bc_conf {
    char *room_param;
    int echo_self, tag, announce, slow;
    uint64_t max_members, max_rooms, max_queue_bytes;
    struct room_set *rooms;
};

struct bc_copy;
struct bc_in;

struct bc_member {
    struct room_member rm; /* first: the room hands this back */
    struct wt_session *s;
    const struct bc_conf *conf;
    uint64_t queued; /* relayed, not yet acknowledged (+ COPY_COST each) */
    LIST_HEAD(, bc_copy) copies;      /* relayed streams it receives */
    TAILQ_HEAD(, bc_copy) waiting;    /* ... of them, waiting for a stream */
    LIST_HEAD(, bc_in) sends;         /* its own streams, being relayed */
    int closed, doomed;
    uint64_t dgrams_dropped, streams_dropped, announces_dropped;
    LIST_ENTRY(bc_member) d_link; /* doomed: closed after the fan-out */
};

/* A piece of a relayed stream waiting for the member's stream to open. */
struct bc_piece {
    struct buf_shared *b;
    size_t off, n;
};

/* One member's copy of a relayed stream (a server-opened uni stream). */
struct bc_copy {
    int kind; /* KIND_COPY */
    struct bc_member *to;
    struct room_relay *relay; /* NULL once the room is done with it */
    struct wt_stream *out;    /* NULL while waiting for a stream */
    uint64_t written, acked;  /* handler bytes on `out` (tag included) */
    uint64_t charged;         /* of `to->queued`, what this copy holds */
    uint8_t tag[8];
    uint8_t taglen;
    /* while waiting */
    struct bc_piece *pieces;
    size_t npieces, cap;
    int fin;
    LIST_ENTRY(bc_copy) m_link;
    TAILQ_ENTRY(bc_copy) w_link;
    int is_waiting;
};

/* A member's own stream being relayed. */
struct bc_in {
    int kind; /* KIND_IN */
    struct bc_member *from;
    struct wt_stream *in;
    struct room_relay *relay; /* NULL once ended */
    LIST_ENTRY(bc_in) link;
};

enum { KIND_COPY = 1, KIND_IN };

static LIST_HEAD(, bc_member) doomed = LIST_HEAD_INITIALIZER(doomed);

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
    return 0;
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

/* ---- members ---- */

static void doom(struct bc_member *m)
{
    if (m->doomed || m->closed)
        return;
    m->doomed = 1;
    LIST_INSERT_HEAD(&doomed, m, d_link);
}

/* Closes the sessions of members found too slow during a fan-out, once
 * it is over (the room's member list must not change under it). */
static void bury(void)
{
    struct bc_member *m;

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

/* Takes n bytes of budget for a copy; 0, or -1 when over budget (the
 * member is then dealt with as `slow` says). */
static int charge(struct bc_copy *c, uint64_t n)
{
    struct bc_member *m = c->to;

    if (m->queued + n > m->conf->max_queue_bytes) {
        if (m->conf->slow == SLOW_DISCONNECT)
            doom(m);
        return -1;
    }
    m->queued += n;
    c->charged += n;
    return 0;
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
    for (size_t i = 0; i < c->npieces; i++)
        buf_shared_unref(c->pieces[i].b);
    free(c->pieces);
    uncharge(c, c->charged);
    LIST_REMOVE(c, m_link);
    free(c);
    member_free_if_done(m);
}

/* The copy will carry no more: its stream is reset (freed when the stream
 * closes), or, still waiting, it goes now. */
static void copy_drop(struct bc_copy *c, uint32_t code)
{
    c->relay = NULL; /* the room forgets it too (copy_write's -1, abort) */
    if (c->out)
        wt_stream_reset(c->out, code);
    else
        copy_free(c);
}

/* Writes what a waiting copy held, once its stream is open. */
static int copy_attach(struct bc_copy *c, struct wt_stream *out)
{
    c->out = out;
    out->hdata = c;
    if (c->taglen && wt_stream_write(out, c->tag, c->taglen, 0) < 0)
        return -1;
    c->written += c->taglen;
    for (size_t i = 0; i < c->npieces; i++) {
        struct bc_piece *p = &c->pieces[i];

        if (wt_stream_write_shared(out, p->b, p->off, p->n,
                                   c->fin && i + 1 == c->npieces) < 0)
            return -1;
        c->written += p->n;
        buf_shared_unref(p->b);
        p->b = NULL;
    }
    if (c->fin && c->npieces == 0 && wt_stream_write(out, NULL, 0, 1) < 0)
        return -1;
    c->npieces = 0;
    return 0;
}

static void *bc_copy_open(struct room_member *rm, uint64_t from)
{
    struct bc_member *m = member_of(rm);
    struct bc_copy *c;
    struct wt_stream *out;
    ssize_t t;

    if (m->closed || m->doomed || !(c = calloc(1, sizeof(*c))))
        return NULL;
    c->kind = KIND_COPY;
    c->to = m;
    LIST_INSERT_HEAD(&m->copies, c, m_link);
    if (charge(c, COPY_COST) < 0) {
        m->streams_dropped++;
        copy_free(c);
        return NULL;
    }
    if (m->conf->tag && (t = wire_varint_encode(c->tag, sizeof(c->tag),
                                                from)) > 0)
        c->taglen = (uint8_t)t;
    if ((out = wt_session_open_stream(m->s, 0))) {
        if (copy_attach(c, out) < 0) {
            m->streams_dropped++;
            copy_drop(c, BC_SLOW);
            return NULL;
        }
    } else {
        /* no stream slot now (the member's limit): wait for one */
        TAILQ_INSERT_TAIL(&m->waiting, c, w_link);
        c->is_waiting = 1;
    }
    return c;
}

/* Keeps a piece for a waiting copy (merged with the previous one when it
 * follows it in the same block). */
static int copy_hold(struct bc_copy *c, struct buf_shared *b, size_t off,
                     size_t n)
{
    struct bc_piece *last = c->npieces ? &c->pieces[c->npieces - 1] : NULL;

    if (last && last->b == b && last->off + last->n == off) {
        last->n += n;
        return 0;
    }
    if (c->npieces == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 4;
        struct bc_piece *p = realloc(c->pieces, cap * sizeof(*p));

        if (!p)
            return -1;
        c->pieces = p;
        c->cap = cap;
    }
    buf_shared_ref(b);
    c->pieces[c->npieces++] = (struct bc_piece){b, off, n};
    return 0;
}

static int bc_copy_write(struct room_member *rm, void *copy,
                         struct buf_shared *b, size_t off, size_t n, int fin)
{
    struct bc_copy *c = copy;
    struct bc_member *m = member_of(rm);
    int rv;

    if (m->doomed || charge(c, n) < 0) {
        m->streams_dropped++;
        copy_drop(c, BC_SLOW);
        return -1;
    }
    if (!c->out) {
        rv = n ? copy_hold(c, b, off, n) : 0;
        c->fin |= fin;
    } else {
        rv = n ? wt_stream_write_shared(c->out, b, off, n, fin)
               : wt_stream_write(c->out, NULL, 0, fin);
        if (rv == 0)
            c->written += n;
    }
    if (rv < 0) { /* the stream's own buffer limit, or out of memory */
        m->streams_dropped++;
        copy_drop(c, BC_SLOW);
        return -1;
    }
    return 0;
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
}

static void bc_streams_available(struct wt_session *s)
{
    struct bc_member *m = s->hdata;
    struct bc_copy *c;
    struct wt_stream *out;

    while (m && (c = TAILQ_FIRST(&m->waiting))) {
        if (!(out = wt_session_open_stream(s, 0)))
            return;
        copy_unwait(c);
        if (copy_attach(c, out) < 0) {
            m->streams_dropped++;
            copy_drop(c, BC_SLOW);
        }
    }
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
    .copy_abort = bc_copy_abort,
    .copy_done = bc_copy_done,
    .presence = bc_presence,
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
    LIST_INIT(&m->copies);
    TAILQ_INIT(&m->waiting);
    LIST_INIT(&m->sends);
    rv = room_join(conf->rooms, name, len, &m->rm);
    if (rv != ROOM_OK) {
        free(m);
        return rv == ROOM_FULL ? 429 : 503;
    }
    s->hdata = m;
    log_info("%s: member %llu of room \"%s\" (%zu members)",
             wt_session_name(s, who, sizeof(who)),
             (unsigned long long)m->rm.id, name, room_count(m->rm.room));
    if (conf->announce)
        announce(m, "welcome", m->rm.id, room_count(m->rm.room));
    return 0;
}

static void bc_session_close(struct wt_session *s, uint32_t code,
                             const char *reason, size_t reasonlen)
{
    struct bc_member *m = s->hdata;
    struct bc_copy *c;
    struct bc_in *in;
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
    /* what it sends ends for everybody, what it receives ends for it;
     * then it leaves (room_leave's contract) */
    LIST_FOREACH(in, &m->sends, link) {
        if (!in->relay)
            continue;
        room_relay_abort(in->relay, BC_GONE);
        room_relay_close(in->relay);
        in->relay = NULL;
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
    in->in = st;
    LIST_INSERT_HEAD(&m->sends, in, link);
    st->hdata = in;
    if (!(in->relay = room_relay_open(&m->rm, m->conf->echo_self))) {
        wt_stream_reset(st, BC_REFUSED);
        return;
    }
    bury();
}

static void bc_stream_data(struct wt_stream *st, const uint8_t *p, size_t n,
                           int fin)
{
    struct bc_in *in = st->hdata;

    if (kind_of(st) != KIND_IN || !in->relay)
        return;
    if (room_relay_write(in->relay, p, n, fin) < 0) {
        room_relay_abort(in->relay, BC_REFUSED);
        room_relay_close(in->relay);
        in->relay = NULL;
        wt_stream_reset(st, BC_REFUSED);
        bury();
        return;
    }
    /* every member that keeps up has the bytes queued: credit now */
    wt_stream_consume(st, n);
    if (fin) {
        room_relay_close(in->relay);
        in->relay = NULL;
        /* a bidi stream's FIN tells the sender its message is out */
        if (wt_stream_is_bidi(st))
            wt_stream_write(st, NULL, 0, 1);
    }
    bury();
}

static void bc_stream_reset(struct wt_stream *st, uint32_t code)
{
    struct bc_in *in = st->hdata;

    if (kind_of(st) == KIND_IN && in->relay) {
        room_relay_abort(in->relay, code);
        room_relay_close(in->relay);
        in->relay = NULL;
    }
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
    }
}

static void bc_stream_close(struct wt_stream *st)
{
    int kind = kind_of(st);

    if (kind == KIND_COPY) {
        copy_free(st->hdata);
    } else if (kind == KIND_IN) {
        struct bc_in *in = st->hdata;
        struct bc_member *m = in->from;

        if (in->relay) {
            room_relay_abort(in->relay, BC_GONE);
            room_relay_close(in->relay);
        }
        LIST_REMOVE(in, link);
        free(in);
        member_free_if_done(m);
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
