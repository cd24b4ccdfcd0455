/*
 * cluster.c's state as other daemons drive it through Redis (a trust
 * boundary): any sequence of messages on a room's channel — HELLO lists,
 * joins and leaves, datagrams, stream chunks in any order, resets — from
 * a few made-up daemons, mixed with local members joining, leaving and
 * speaking, and with Redis answering (or not) what the daemon sent.
 *
 * No Redis here: hiredis's connect, command and free calls are wrapped
 * (-Wl,--wrap, see the Makefile).  Commands are recorded; "answer" replays
 * what Redis would say (PONG, subscribe confirmations, PUBLISH counts)
 * through the callbacks cluster.c gave, and messages reach it through
 * the subscribed connection's callback as a real "message" reply.
 *
 * Properties: no memory error or leak (the sanitizers), and once every
 * local member has left, nothing is left over: no room, no other daemon,
 * no remote member, no remote stream (the gauges say 0).
 */
#include <ev.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdarg.h>

#include "cluster.h"
#include "cluster_msg.h"
#include "config.h"
#include "fuzz.h"
#include "log.h"
#include "metrics.h"
#include "room.h"

/* ---- Redis, recorded ---- */

#define MAX_CMDS 4096

struct cmd {
    redisAsyncContext *ac;
    redisCallbackFn *fn;
    void *priv;
    int kind; /* 'P'ING, 'S'UBSCRIBE, 'U'NSUBSCRIBE, 'B' PUBLISH, other */
    char chan[300];
    size_t clen;
};

static struct cmd cmds[MAX_CMDS];
static size_t ncmds;
static redisAsyncContext *sub_ac; /* the subscribed one: the second made */
static int nmade;
static redisDisconnectCallback *on_disc[2];

redisAsyncContext *__real_redisAsyncConnect(const char *ip, int port);
redisAsyncContext *__wrap_redisAsyncConnect(const char *ip, int port);
redisAsyncContext *__wrap_redisAsyncConnect(const char *ip, int port)
{
    redisAsyncContext *ac = calloc(1, sizeof(*ac));

    (void)ip;
    (void)port;
    if (!ac)
        abort();
    ac->c.fd = -1;
    /* cluster.c makes the publishing connection first */
    if (nmade++ % 2 == 1)
        sub_ac = ac;
    return ac;
}

int __wrap_redisAsyncSetConnectCallback(redisAsyncContext *ac,
                                        redisConnectCallback *fn);
int __wrap_redisAsyncSetConnectCallback(redisAsyncContext *ac,
                                        redisConnectCallback *fn)
{
    (void)ac;
    (void)fn;
    return REDIS_OK;
}

int __wrap_redisAsyncSetDisconnectCallback(redisAsyncContext *ac,
                                           redisDisconnectCallback *fn);
int __wrap_redisAsyncSetDisconnectCallback(redisAsyncContext *ac,
                                           redisDisconnectCallback *fn)
{
    on_disc[ac == sub_ac] = fn;
    return REDIS_OK;
}

int __wrap_redisAsyncCommand(redisAsyncContext *ac, redisCallbackFn *fn,
                             void *priv, const char *format, ...);
int __wrap_redisAsyncCommand(redisAsyncContext *ac, redisCallbackFn *fn,
                             void *priv, const char *format, ...)
{
    struct cmd *c;
    va_list ap;

    if (ncmds == MAX_CMDS)
        return REDIS_ERR; /* as hiredis does when it cannot queue */
    c = &cmds[ncmds++];
    memset(c, 0, sizeof(*c));
    c->ac = ac;
    c->fn = fn;
    c->priv = priv;
    c->kind = format[0];
    if (strncmp(format, "PUBLISH", 7) == 0)
        c->kind = 'B';
    if (c->kind == 'S' || c->kind == 'U') {
        const char *p;
        size_t n;

        va_start(ap, format);
        p = va_arg(ap, const char *);
        n = va_arg(ap, size_t);
        va_end(ap);
        FUZZ_CHECK(n <= sizeof(c->chan));
        memcpy(c->chan, p, n);
        c->clen = n;
    }
    return REDIS_OK;
}

/* Pending callbacks get NULL replies, as hiredis gives them when freed. */
static void drop_cmds_of(redisAsyncContext *ac)
{
    size_t k = 0;

    for (size_t i = 0; i < ncmds; i++) {
        struct cmd c = cmds[i];

        if (c.ac != ac) {
            cmds[k++] = c;
            continue;
        }
        if (c.fn)
            c.fn(ac, NULL, c.priv);
    }
    ncmds = k;
}

void __wrap_redisAsyncFree(redisAsyncContext *ac);
void __wrap_redisAsyncFree(redisAsyncContext *ac)
{
    drop_cmds_of(ac);
    if (ac->ev.cleanup)
        ac->ev.cleanup(ac->ev.data);
    if (ac == sub_ac)
        sub_ac = NULL;
    free(ac);
}

void __wrap_redisAsyncDisconnect(redisAsyncContext *ac);
void __wrap_redisAsyncDisconnect(redisAsyncContext *ac)
{
    redisDisconnectCallback *fn = on_disc[ac == sub_ac];

    if (fn)
        fn(ac, REDIS_OK);
    __wrap_redisAsyncFree(ac);
}

/* ---- replies ---- */

static redisReply *str_reply(const char *p, size_t n)
{
    static redisReply r[4];
    static int next;
    redisReply *x = &r[next++ % 4];

    memset(x, 0, sizeof(*x));
    x->type = REDIS_REPLY_STRING;
    x->str = (char *)p;
    x->len = n;
    return x;
}

static void push(redisAsyncContext *ac, redisCallbackFn *fn, const char *what,
                 const char *chan, size_t clen, const uint8_t *p, size_t n)
{
    redisReply arr = {.type = REDIS_REPLY_ARRAY, .elements = 3};
    redisReply *e[3];

    e[0] = str_reply(what, strlen(what));
    e[1] = str_reply(chan, clen);
    e[2] = str_reply((const char *)p, n);
    arr.element = e;
    fn(ac, &arr, NULL);
}

/* Redis answers everything queued so far (one pass: what the answers
 * make cluster.c send waits for the next). */
static redisCallbackFn *sub_fn;

static void answer(void)
{
    size_t n = ncmds;
    static struct cmd batch[MAX_CMDS];

    memcpy(batch, cmds, n * sizeof(*cmds));
    memmove(cmds, cmds + n, (ncmds - n) * sizeof(*cmds));
    ncmds -= n;
    for (size_t i = 0; i < n; i++) {
        struct cmd *c = &batch[i];
        redisReply r = {0};

        if (!c->fn)
            continue;
        switch (c->kind) {
        case 'P':
            r.type = REDIS_REPLY_STATUS;
            r.str = (char *)"PONG";
            r.len = 4;
            c->fn(c->ac, &r, c->priv);
            break;
        case 'S':
            sub_fn = c->fn;
            push(c->ac, c->fn, "subscribe", c->chan, c->clen,
                 (const uint8_t *)"1", 1);
            break;
        case 'B':
            r.type = REDIS_REPLY_INTEGER;
            r.integer = 1;
            c->fn(c->ac, &r, c->priv);
            break;
        default:
            break;
        }
    }
}

/* ---- local members ---- */

#define NMEMBERS 6
#define NROOMS 3
#define MAX_COPIES 64

struct member {
    struct room_member m; /* first */
    int in;
    struct room_relay *copies[MAX_COPIES];
    uint8_t live[MAX_COPIES];
};

static struct member members[NMEMBERS];

static void m_datagram(struct room_member *to, uint64_t from,
                       const uint8_t *p, size_t n)
{
    (void)to;
    (void)from;
    (void)p;
    (void)n;
}

static void *m_copy_open(struct room_member *to, uint64_t from,
                         struct room_relay *r)
{
    struct member *m = (struct member *)to;

    (void)from;
    for (size_t i = 0; i < MAX_COPIES; i++)
        if (!m->live[i]) {
            m->live[i] = 1;
            m->copies[i] = r;
            return &m->live[i];
        }
    return NULL;
}

static ssize_t m_copy_write(struct room_member *to, void *copy,
                            struct buf_shared *b, size_t off, size_t n,
                            int fin)
{
    (void)to;
    (void)fin;
    FUZZ_CHECK(*(uint8_t *)copy == 1);
    FUZZ_CHECK(n == 0 || (b && off + n <= b->len)); /* (an empty end: no block) */
    return (ssize_t)n;
}

static void m_copy_gone(struct room_member *to, void *copy)
{
    (void)to;
    FUZZ_CHECK(*(uint8_t *)copy == 1);
    *(uint8_t *)copy = 0;
}

static void m_copy_abort(struct room_member *to, void *copy, uint32_t code)
{
    (void)code;
    m_copy_gone(to, copy);
}

static void m_presence(struct room_member *to, int joined, uint64_t who,
                       size_t count)
{
    (void)to;
    (void)joined;
    (void)who;
    (void)count;
}

static const struct room_member_ops member_ops = {
    .datagram = m_datagram,
    .copy_open = m_copy_open,
    .copy_write = m_copy_write,
    .copy_slow = m_copy_gone,
    .copy_abort = m_copy_abort,
    .copy_done = m_copy_gone,
    .presence = m_presence,
};

static struct room_set *rooms;

static void leave(struct member *m)
{
    if (!m->in)
        return;
    for (size_t i = 0; i < MAX_COPIES; i++)
        if (m->live[i]) {
            m->live[i] = 0;
            room_relay_drop(m->copies[i], &m->live[i]);
        }
    room_leave(&m->m);
    m->in = 0;
}

/* ---- the run ---- */

static struct config cfg;

static void setup(void)
{
    static int done;

    if (done++)
        return;
    log_level = LOG_LVL_ERROR;
    config_defaults(&cfg); /* refs 0: never freed */
    cfg.cluster.redis = (char *)"redis://127.0.0.1:1";
    cfg.cluster.host = (char *)"127.0.0.1";
    cfg.cluster.port = 1;
    cfg.cluster.node_id = (char *)"fuzz";
    cfg.cluster.prefix = (char *)"p";
    cfg.cluster.max_remote_streams = 8;
    cfg.cluster.max_remote_members = 300;
    cfg.cluster.max_pending_bytes = 64 * 1024;
    FUZZ_CHECK(cluster_start(ev_default_loop(0), &cfg) == 0);
    rooms = room_set_new(NROOMS, NMEMBERS);
    FUZZ_CHECK(rooms);
    cluster_attach(rooms, "/r", 4096, NULL);
    answer(); /* PONGs: both connections up */
    FUZZ_CHECK(cluster_up());
}

static void chan_of(unsigned room, char *out, size_t *len)
{
    /* as cluster.c names it: prefix ":" path NUL name */
    memcpy(out, "p:/r\0r", 6);
    out[6] = (char)('0' + room);
    *len = 7;
}

static void deliver(unsigned room, const uint8_t *p, size_t n)
{
    char chan[16];
    size_t clen;

    if (!sub_fn || !sub_ac)
        return;
    chan_of(room, chan, &clen);
    push(sub_ac, sub_fn, "message", chan, clen, p, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t buf[CLUSTER_MSG_MAX];
    static const uint64_t origins[3] = {0x1111, 0x2222, 0x3333};
    struct fuzz_in in = {data, size};
    int steps = 0;

    setup();
    while (in.n && steps++ < 400) {
        uint8_t op = fuzz_u8(&in);
        struct member *m = &members[fuzz_u8(&in) % NMEMBERS];
        unsigned room = fuzz_u8(&in) % NROOMS;

        switch (op % 8) {
        case 0: { /* a local member joins */
            char name[2] = {'r', (char)('0' + room)};

            if (m->in)
                break;
            m->m.ops = &member_ops;
            if (room_join(rooms, name, 2, &m->m) == ROOM_OK)
                m->in = 1;
            break;
        }
        case 1:
            leave(m);
            break;
        case 2: /* Redis answers */
            answer();
            break;
        case 3: { /* raw bytes on the room's channel */
            size_t n = fuzz_u8(&in);

            if (n > in.n)
                n = in.n;
            deliver(room, in.p, n);
            in.p += n;
            in.n -= n;
            break;
        }
        case 4:
        case 5: { /* a well-formed message from one of three daemons */
            static struct cluster_msg msg;
            static const uint8_t payload[600];
            ssize_t n;

            memset(&msg, 0, offsetof(struct cluster_msg, ids));
            msg.kind = 1 + fuzz_u8(&in) % 7;
            msg.origin = origins[fuzz_u8(&in) % 3];
            msg.member = fuzz_u8(&in);
            msg.stream = fuzz_u8(&in) % 16;
            msg.offset = (uint64_t)fuzz_u8(&in) * 8;
            msg.fin = fuzz_u8(&in) & 1;
            msg.code = fuzz_u8(&in);
            msg.payload = payload;
            msg.len = (size_t)fuzz_u8(&in) * 2;
            msg.flags = fuzz_u8(&in) & 7;
            msg.count = fuzz_u8(&in);
            msg.nids = fuzz_u8(&in) % (CLUSTER_MSG_MAX_IDS + 1);
            for (size_t i = 0; i < msg.nids; i++)
                msg.ids[i] = (uint64_t)fuzz_u8(&in) * 7 + i;
            if ((n = cluster_msg_encode(&msg, buf, sizeof(buf))) > 0)
                deliver(room, buf, (size_t)n);
            break;
        }
        case 6: /* a local member speaks: published */
            if (m->in) {
                uint8_t d[32] = {0};

                room_send_datagram(&m->m, d, sizeof(d), 0);
            }
            break;
        case 7: { /* a local member's stream, relayed and published */
            struct room_relay *r;

            if (!m->in || !(r = room_relay_open(&m->m, 0, 4096, NULL, NULL)))
                break;
            room_relay_write(r, (const uint8_t *)"hello", 5, fuzz_u8(&in) & 1);
            if (fuzz_u8(&in) & 1)
                room_relay_abort(r, 7);
            room_relay_release(r);
            break;
        }
        }
    }
    /* everyone leaves: nothing of the others may be left */
    for (size_t i = 0; i < NMEMBERS; i++)
        leave(&members[i]);
    answer();
    answer();
    FUZZ_CHECK(room_set_count(rooms) == 0);
    FUZZ_CHECK(metrics.cluster_rooms == 0);
    FUZZ_CHECK(metrics.cluster_remote_members == 0);
    FUZZ_CHECK(metrics.cluster_remote_streams == 0);
    FUZZ_CHECK(metrics.cluster_daemons == 0);
    return 0;
}
