/* Unit tests of src/room.c: membership, limits, fan-out through the member
 * callbacks, shared blocks, and the room name from a request's query. */
#include <stdlib.h>
#include <string.h>

#include "room.h"
#include "t.h"

/* A member that records what reaches it. */
struct fake {
    struct room_member m; /* first */
    int dgrams, opens, writes, aborts, dones, joins, leaves;
    uint64_t last_from, last_who;
    size_t last_count;
    uint8_t got[256];
    size_t gotlen;
    int fin;
    uint32_t abort_code;
    int refuse_open;  /* copy_open returns NULL */
    int refuse_write; /* copy_write returns -1 (its copy is gone) */
    size_t room;      /* copy_write takes at most this much in all (0: any) */
    int wait;         /* copy_write answers ROOM_WAIT */
    size_t taken;
    int slows;
    uint64_t lag;   /* the last copy_lag */
    int lag_refuse; /* copy_lag answers -1 past this lag (0: never) */
    struct buf_shared *last_block; /* not a reference: compared only */
    size_t last_off, last_cap;
};

static void f_datagram(struct room_member *to, uint64_t from, const uint8_t *p,
                       size_t n)
{
    struct fake *f = (struct fake *)to;

    f->dgrams++;
    f->last_from = from;
    memcpy(f->got, p, n);
    f->gotlen = n;
}

static void *f_copy_open(struct room_member *to, uint64_t from,
                         struct room_relay *r)
{
    struct fake *f = (struct fake *)to;

    (void)r;
    if (f->refuse_open)
        return NULL;
    f->opens++;
    f->last_from = from;
    f->gotlen = 0;
    f->fin = 0;
    return f; /* the copy is the member itself: one at a time here */
}

static ssize_t f_copy_write(struct room_member *to, void *copy,
                            struct buf_shared *b, size_t off, size_t n,
                            int fin)
{
    struct fake *f = copy;
    size_t take = n;

    (void)to;
    if (f->refuse_write)
        return -1;
    if (f->wait)
        return ROOM_WAIT;
    if (f->room && f->room - f->taken < take)
        take = f->room - f->taken;
    f->taken += take;
    if (take < n)
        fin = 0;
    n = take;
    f->writes++;
    if (n) {
        /* keeps what fits; counts it all */
        if (f->gotlen < sizeof(f->got))
            memcpy(f->got + f->gotlen, b->data + off,
                   n < sizeof(f->got) - f->gotlen ? n
                                                  : sizeof(f->got) - f->gotlen);
        f->gotlen += n;
        f->last_block = b;
        f->last_off = off;
        f->last_cap = b->cap;
    }
    f->fin |= fin;
    return (ssize_t)n;
}

static int f_copy_lag(struct room_member *to, void *copy, uint64_t lag)
{
    struct fake *f = copy;

    (void)to;
    f->lag = lag;
    return f->lag_refuse && lag > (uint64_t)f->lag_refuse ? -1 : 0;
}

static void f_copy_slow(struct room_member *to, void *copy)
{
    (void)to;
    ((struct fake *)copy)->slows++;
}

static void f_copy_abort(struct room_member *to, void *copy, uint32_t code)
{
    struct fake *f = copy;

    (void)to;
    f->aborts++;
    f->abort_code = code;
}

static void f_copy_done(struct room_member *to, void *copy)
{
    (void)to;
    ((struct fake *)copy)->dones++;
}

static void f_presence(struct room_member *to, int joined, uint64_t who,
                       size_t count)
{
    struct fake *f = (struct fake *)to;

    if (joined)
        f->joins++;
    else
        f->leaves++;
    f->last_who = who;
    f->last_count = count;
}

static const struct room_member_ops ops = {
    .datagram = f_datagram,
    .copy_open = f_copy_open,
    .copy_write = f_copy_write,
    .copy_lag = f_copy_lag,
    .copy_slow = f_copy_slow,
    .copy_abort = f_copy_abort,
    .copy_done = f_copy_done,
    .presence = f_presence,
};

/* A sender that records what the relay tells it. */
struct sender {
    uint64_t front;
    int progresses, delivered, gone;
};

static void s_progress(void *p, uint64_t front)
{
    struct sender *x = p;

    x->front = front;
    x->progresses++;
}

static void s_delivered(void *p)
{
    ((struct sender *)p)->delivered++;
}

static void s_gone(void *p)
{
    ((struct sender *)p)->gone++;
}

static const struct room_sender_ops sops = {
    .progress = s_progress,
    .delivered = s_delivered,
    .gone = s_gone,
};

static void fake_init(struct fake *f)
{
    memset(f, 0, sizeof(*f));
    f->m.ops = &ops;
}

T_TEST(join_leave_ids_presence)
{
    struct room_set *rs = room_set_new(10, 10);
    struct fake a, b, c;

    T_CHECK(rs != NULL);
    fake_init(&a);
    fake_init(&b);
    fake_init(&c);
    T_EQ(room_join(rs, "lobby", 5, &a.m), ROOM_OK);
    T_EQ(a.m.id, 1);
    T_EQ(room_set_count(rs), 1);
    T_EQ(room_join(rs, "lobby", 5, &b.m), ROOM_OK);
    T_EQ(b.m.id, 2);
    T_CHECK(a.m.room == b.m.room);
    T_STREQ(room_name(a.m.room), "lobby");
    T_EQ(room_count(a.m.room), 2);
    /* the others hear of a newcomer; the newcomer hears of nobody */
    T_EQ(a.joins, 1);
    T_EQ(a.last_who, 2);
    T_EQ(a.last_count, 2);
    T_EQ(b.joins, 0);
    /* ids are never reused while the room lives */
    room_leave(&a.m);
    T_EQ(b.leaves, 1);
    T_EQ(b.last_who, 1);
    T_EQ(b.last_count, 1);
    T_CHECK(a.m.room == NULL);
    T_EQ(room_join(rs, "lobby", 5, &c.m), ROOM_OK);
    T_EQ(c.m.id, 3);
    /* another name, another room; the default room is the empty name */
    T_EQ(room_join(rs, "", 0, &a.m), ROOM_OK);
    T_CHECK(a.m.room != b.m.room);
    T_EQ(a.m.id, 1);
    T_EQ(room_set_count(rs), 2);
    room_leave(&a.m);
    T_EQ(room_set_count(rs), 1); /* freed with its last member */
    room_leave(&b.m);
    room_leave(&c.m);
    T_EQ(room_set_count(rs), 0);
    room_leave(&c.m); /* twice: nothing */
    room_set_free(rs);
}

T_TEST(limits)
{
    struct room_set *rs = room_set_new(2, 2);
    struct fake f[5];

    for (int i = 0; i < 5; i++)
        fake_init(&f[i]);
    T_EQ(room_join(rs, "a", 1, &f[0].m), ROOM_OK);
    T_EQ(room_join(rs, "a", 1, &f[1].m), ROOM_OK);
    T_EQ(room_join(rs, "a", 1, &f[2].m), ROOM_FULL);
    T_CHECK(f[2].m.room == NULL);
    T_EQ(f[0].joins, 1); /* a refused member is not announced */
    T_EQ(room_join(rs, "b", 1, &f[2].m), ROOM_OK);
    T_EQ(room_join(rs, "c", 1, &f[3].m), ROOM_TOO_MANY);
    T_EQ(room_join(rs, "b", 1, &f[3].m), ROOM_OK); /* existing: fine */
    room_leave(&f[2].m);
    room_leave(&f[3].m);
    T_EQ(room_join(rs, "c", 1, &f[4].m), ROOM_OK); /* "b" went */
    room_leave(&f[4].m);
    room_leave(&f[0].m);
    room_leave(&f[1].m);
    T_EQ(room_set_count(rs), 0);
    room_set_free(rs);
}

/* Many rooms: the table grows and every room stays findable. */
T_TEST(many_rooms)
{
    enum { N = 300 };
    struct room_set *rs = room_set_new(N, 2);
    static struct fake f[N], g[N];
    char name[32];

    for (int i = 0; i < N; i++) {
        fake_init(&f[i]);
        fake_init(&g[i]);
        snprintf(name, sizeof(name), "room-%d", i);
        T_EQ(room_join(rs, name, strlen(name), &f[i].m), ROOM_OK);
    }
    T_EQ(room_set_count(rs), N);
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "room-%d", i);
        T_EQ(room_join(rs, name, strlen(name), &g[i].m), ROOM_OK);
        T_CHECK(g[i].m.room == f[i].m.room);
        T_EQ(g[i].m.id, 2);
    }
    for (int i = 0; i < N; i++) {
        room_leave(&f[i].m);
        room_leave(&g[i].m);
    }
    T_EQ(room_set_count(rs), 0);
    room_set_free(rs);
}

/* Names a client picks so that an unkeyed hash (FNV-1a, as the table had)
 * files them all in one chain: the keyed hash spreads them. */
static uint64_t fnv1a(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;

    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)p[i]) * 1099511628211ULL;
    return h;
}

T_TEST(chosen_names_spread)
{
    enum { N = 1000 };
    struct room_set *rs = room_set_new(N, 2);
    static struct fake f[N];
    char name[32];
    int k = 0;

    for (unsigned i = 0; k < N; i++) {
        snprintf(name, sizeof(name), "r%u", i);
        /* the low 11 bits: one bucket for every table up to 2048 */
        if ((fnv1a(name, strlen(name)) & 2047) != 0)
            continue;
        fake_init(&f[k]);
        T_EQ(room_join(rs, name, strlen(name), &f[k].m), ROOM_OK);
        k++;
    }
    T_EQ(room_set_count(rs), N);
    T_CHECK(room_set_longest_chain(rs) <= 12);
    for (int i = 0; i < N; i++)
        room_leave(&f[i].m);
    room_set_free(rs);
}

T_TEST(datagrams)
{
    struct room_set *rs = room_set_new(10, 10);
    struct fake a, b, c, other;

    fake_init(&a);
    fake_init(&b);
    fake_init(&c);
    fake_init(&other);
    room_join(rs, "r", 1, &a.m);
    room_join(rs, "r", 1, &b.m);
    room_join(rs, "r", 1, &c.m);
    room_join(rs, "s", 1, &other.m);
    room_send_datagram(&a.m, (const uint8_t *)"hi", 2, 0);
    T_EQ(a.dgrams, 0);
    T_EQ(b.dgrams, 1);
    T_EQ(c.dgrams, 1);
    T_EQ(other.dgrams, 0);
    T_EQ(b.last_from, a.m.id);
    T_EQ(b.gotlen, 2);
    T_MEMEQ(b.got, "hi", 2);
    room_send_datagram(&a.m, (const uint8_t *)"x", 1, 1); /* echo_self */
    T_EQ(a.dgrams, 1);
    T_EQ(b.dgrams, 2);
    room_leave(&a.m);
    room_leave(&b.m);
    room_leave(&c.m);
    room_leave(&other.m);
    room_set_free(rs);
}

T_TEST(relay)
{
    struct room_set *rs = room_set_new(10, 10);
    struct fake a, b, c, late;
    struct room_relay *r;
    struct sender snd = {0};

    fake_init(&a);
    fake_init(&b);
    fake_init(&c);
    fake_init(&late);
    room_join(rs, "r", 1, &a.m);
    room_join(rs, "r", 1, &b.m);
    room_join(rs, "r", 1, &c.m);
    r = room_relay_open(&a.m, 0, 1000, &sops, &snd);
    T_CHECK(r != NULL);
    T_EQ(room_relay_copies(r), 2);
    T_EQ(a.opens, 0);
    T_EQ(b.opens, 1);
    T_EQ(b.last_from, a.m.id);
    /* who joins later does not get this stream */
    room_join(rs, "r", 1, &late.m);
    T_EQ(room_relay_write(r, (const uint8_t *)"abc", 3, 0), 0);
    T_EQ(room_relay_write(r, (const uint8_t *)"de", 2, 0), 0);
    T_EQ(late.opens, 0);
    T_EQ(b.gotlen, 5);
    T_MEMEQ(b.got, "abcde", 5);
    T_EQ(snd.front, 5);
    /* held once: both copies see the same block, the bytes following on */
    T_CHECK(b.last_block == c.last_block);
    T_EQ(b.last_off, 3);
    /* a copy that is gone is dropped; the others go on */
    c.refuse_write = 1;
    T_EQ(room_relay_write(r, (const uint8_t *)"f", 1, 0), 0);
    T_EQ(room_relay_copies(r), 1);
    c.refuse_write = 0;
    T_EQ(room_relay_write(r, (const uint8_t *)"g", 1, 1), 0);
    T_EQ(b.gotlen, 7);
    T_MEMEQ(b.got, "abcdefg", 7);
    T_EQ(b.fin, 1);
    T_EQ(c.gotlen, 5); /* nothing after it was dropped */
    T_EQ(c.fin, 0);
    T_EQ(snd.delivered, 1); /* every member left has it all */
    T_EQ(snd.gone, 0);
    room_relay_release(r);  /* nothing left to deliver: freed */
    T_EQ(snd.gone, 1);
    T_EQ(b.dones, 1);
    T_EQ(c.dones, 0); /* it had let go already */
    room_leave(&a.m);
    room_leave(&b.m);
    room_leave(&c.m);
    room_leave(&late.m);
    T_EQ(room_set_count(rs), 0);
    room_set_free(rs);
}

/* The fastest member sets the pace; a member lagging past the limit is
 * slow; one that catches up gets what the relay kept for it. */
T_TEST(relay_pacing)
{
    struct room_set *rs = room_set_new(10, 10);
    struct fake a, b, c, d;
    struct room_relay *r;
    struct sender snd = {0};

    fake_init(&a);
    fake_init(&b);
    fake_init(&c);
    fake_init(&d);
    room_join(rs, "r", 1, &a.m);
    room_join(rs, "r", 1, &b.m);
    room_join(rs, "r", 1, &c.m);
    room_join(rs, "r", 1, &d.m);
    b.room = 6; /* b and c have room for little, d for nothing yet */
    c.room = 4;
    d.room = 1;
    r = room_relay_open(&a.m, 0, 10, &sops, &snd);
    T_EQ(room_relay_write(r, (const uint8_t *)"0123456789", 10, 0), 0);
    T_EQ(b.taken, 6);
    T_EQ(c.taken, 4);
    T_EQ(d.taken, 1);
    T_EQ(snd.front, 6); /* the fastest */
    /* b catches up: the front moves with it */
    b.room = 0;
    room_relay_resume(r, &b);
    T_EQ(b.taken, 10);
    T_EQ(snd.front, 10);
    T_EQ(d.slows, 0); /* 9 behind: still in */
    T_EQ(room_relay_write(r, (const uint8_t *)"ab", 2, 0), 0);
    /* d is 11 behind the front now: slow, and let go */
    T_EQ(d.slows, 1);
    T_EQ(c.slows, 0);
    T_EQ(room_relay_copies(r), 2);
    /* c had room for 4; given more, it gets everything kept for it */
    c.room = 0;
    room_relay_resume(r, &c);
    T_EQ(c.taken, 12);
    T_MEMEQ(c.got, "0123456789ab", 12);
    T_EQ(room_relay_write(r, NULL, 0, 1), 0);
    T_EQ(b.fin, 1);
    T_EQ(c.fin, 1);
    T_EQ(snd.delivered, 1);
    room_relay_release(r);
    T_EQ(snd.gone, 1);
    room_leave(&a.m);
    room_leave(&b.m);
    room_leave(&c.m);
    room_leave(&d.m);
    room_set_free(rs);
}

/* A copy that cannot start yet does not hold the sender back; it may lag
 * up to the limit, and catches up once it starts. */
T_TEST(relay_waiting_copy)
{
    struct room_set *rs = room_set_new(10, 10);
    struct fake a, b, c;
    struct room_relay *r;
    struct sender snd = {0};

    fake_init(&a);
    fake_init(&b);
    fake_init(&c);
    room_join(rs, "r", 1, &a.m);
    room_join(rs, "r", 1, &b.m);
    b.wait = 1;
    r = room_relay_open(&a.m, 0, 8, &sops, &snd);
    T_EQ(room_relay_write(r, (const uint8_t *)"01234", 5, 0), 0);
    T_EQ(snd.front, 5); /* nobody can take it: not held back */
    T_EQ(b.slows, 0);
    b.wait = 0;
    room_relay_resume(r, &b);
    T_EQ(b.taken, 5);
    /* with a taker that has no room, the waiting copy counts no more... */
    b.room = 5;
    room_join(rs, "r", 1, &c.m);
    room_relay_abort(r, 1); /* ended without its end */
    room_relay_release(r);
    c.wait = 1;
    r = room_relay_open(&a.m, 0, 8, &sops, &snd);
    snd.front = 0;
    T_EQ(room_relay_write(r, (const uint8_t *)"abcdefghij", 10, 0), 0);
    /* b took what it had room for (0 here: its 5 are used) */
    T_EQ(snd.front, 0);
    b.room = 0;
    room_relay_resume(r, &b);
    T_EQ(snd.front, 10);
    /* ... and c, waiting, is 10 behind: past the limit of 8, slow */
    T_EQ(c.slows, 1);
    room_relay_abort(r, 1);
    room_relay_release(r);
    room_leave(&a.m);
    room_leave(&b.m);
    room_leave(&c.m);
    T_EQ(room_set_count(rs), 0);
    room_set_free(rs);
}

/* A copy that has everything is done at once (it leaves the relay); the
 * members hear what their copies of complete messages lag behind, and a
 * member that finds it too much has its copy dropped; the copies left
 * carry on once the finished ones have left the relay's array. */
T_TEST(relay_member_lag)
{
    enum { N = 12 };
    struct room_set *rs = room_set_new(10, 20);
    struct fake a, f[N];
    struct room_relay *r;
    struct sender snd = {0};

    fake_init(&a);
    room_join(rs, "r", 1, &a.m);
    for (int i = 0; i < N; i++) {
        fake_init(&f[i]);
        room_join(rs, "r", 1, &f[i].m);
    }
    f[0].room = 1; /* slow: takes 1 byte */
    f[0].taken = 0;
    f[1].room = 2; /* slow too, but its member lets it lag */
    f[1].lag_refuse = 3;
    f[0].lag_refuse = 3;
    r = room_relay_open(&a.m, 0, 100, &sops, &snd);
    T_EQ(room_relay_write(r, (const uint8_t *)"0123", 4, 0), 0);
    /* not complete: nobody is told of a lag yet */
    T_EQ(f[0].lag, 0);
    T_EQ(f[2].dones, 0);
    T_EQ(room_relay_write(r, (const uint8_t *)"456", 3, 1), 0);
    /* the fast ones are done already, not when the relay goes */
    for (int i = 2; i < N; i++)
        T_EQ(f[i].dones, 1);
    /* f[0] lags 6 (> 3: its member drops it), f[1] 5 (> 3 too) */
    T_EQ(f[0].slows, 1);
    T_EQ(f[1].slows, 1);
    T_EQ(room_relay_copies(r), 0);
    T_EQ(snd.delivered, 1); /* every copy left has everything */
    room_relay_release(r);
    T_EQ(snd.gone, 1);

    /* the same, with f[1] kept: it resumes after the others left */
    snd = (struct sender){0};
    f[0].lag_refuse = 0;
    f[1].lag_refuse = 0;
    f[0].room = f[0].taken = 0;
    f[1].room = 1;
    f[1].taken = 0;
    f[0].wait = 1;
    r = room_relay_open(&a.m, 0, 100, &sops, &snd);
    T_EQ(room_relay_write(r, (const uint8_t *)"abcdef", 6, 1), 0);
    T_EQ(f[1].lag, 5);
    T_EQ(f[0].lag, 6); /* waiting: all of it */
    T_EQ(room_relay_copies(r), 2);
    f[1].room = 0;
    room_relay_resume(r, &f[1]);
    T_EQ(f[1].gotlen, 6);
    T_EQ(f[1].fin, 1);
    f[0].wait = 0;
    room_relay_resume(r, &f[0]);
    T_EQ(f[0].fin, 1);
    T_EQ(snd.delivered, 1);
    room_relay_release(r);
    T_EQ(snd.gone, 1);
    room_leave(&a.m);
    for (int i = 0; i < N; i++)
        room_leave(&f[i].m);
    T_EQ(room_set_count(rs), 0);
    room_set_free(rs);
}

/* The sender lets go first: the relay lives on for the copies still
 * taking what it holds, then goes. */
T_TEST(relay_outlives_sender)
{
    struct room_set *rs = room_set_new(10, 10);
    struct fake a, b;
    struct room_relay *r;
    struct sender snd = {0};

    fake_init(&a);
    fake_init(&b);
    room_join(rs, "r", 1, &a.m);
    room_join(rs, "r", 1, &b.m);
    b.room = 2;
    r = room_relay_open(&a.m, 0, 100, &sops, &snd);
    T_EQ(room_relay_write(r, (const uint8_t *)"hello", 5, 1), 0);
    T_EQ(snd.delivered, 0);
    room_relay_release(r);
    T_EQ(snd.gone, 0);
    room_leave(&a.m); /* the sender left too: the room stays for b */
    T_EQ(room_set_count(rs), 1);
    b.room = 0;
    room_relay_resume(r, &b);
    T_EQ(b.gotlen, 5);
    T_EQ(b.fin, 1);
    T_EQ(snd.delivered, 1);
    T_EQ(snd.gone, 1);
    T_EQ(snd.front, 5);
    room_leave(&b.m);
    T_EQ(room_set_count(rs), 0);
    room_set_free(rs);
}

T_TEST(relay_abort_drop_self)
{
    struct room_set *rs = room_set_new(10, 10);
    struct fake a, b, c;
    struct room_relay *r;
    struct sender snd = {0};

    fake_init(&a);
    fake_init(&b);
    fake_init(&c);
    room_join(rs, "r", 1, &a.m);
    room_join(rs, "r", 1, &b.m);
    room_join(rs, "r", 1, &c.m);
    c.refuse_open = 1; /* c cannot take a stream now */
    r = room_relay_open(&a.m, 1, 100, &sops, &snd);
    T_EQ(room_relay_copies(r), 2); /* a itself (echo_self) and b */
    T_EQ(a.opens, 1);
    /* b's copy ended on its side (its session closing) */
    room_relay_drop(r, &b);
    T_EQ(room_relay_copies(r), 1);
    room_relay_write(r, (const uint8_t *)"zz", 2, 0);
    T_EQ(b.writes, 0);
    /* the sender aborts: every copy left is aborted, no done after */
    room_relay_abort(r, 77);
    T_EQ(a.aborts, 1);
    T_EQ(a.abort_code, 77);
    T_EQ(b.aborts, 0);
    T_EQ(room_relay_copies(r), 0);
    T_EQ(snd.front, 2); /* nobody left to wait for: all the credit */
    room_relay_release(r);
    T_EQ(a.dones, 0);
    T_EQ(snd.gone, 1);
    /* no copies at all (alone, or nobody could take it): credit at once */
    c.refuse_open = 1;
    b.refuse_open = 1;
    snd.front = 0;
    r = room_relay_open(&a.m, 0, 100, &sops, &snd);
    T_EQ(room_relay_copies(r), 0);
    room_relay_write(r, (const uint8_t *)"x", 1, 1);
    T_EQ(snd.front, 1);
    room_relay_release(r);
    /* a relay keeps its room while every member leaves */
    b.refuse_open = 0;
    r = room_relay_open(&a.m, 0, 100, &sops, &snd);
    room_leave(&b.m);
    room_leave(&c.m);
    room_leave(&a.m);
    T_EQ(room_set_count(rs), 1);
    room_relay_drop(r, &b);
    room_relay_release(r);
    T_EQ(room_set_count(rs), 0);
    room_set_free(rs);
}

T_TEST(relay_large)
{
    struct room_set *rs = room_set_new(10, 10);
    struct fake a, b;
    struct room_relay *r;
    uint8_t *big = malloc(40000);

    T_CHECK(big != NULL);
    fake_init(&a);
    fake_init(&b);
    room_join(rs, "r", 1, &a.m);
    room_join(rs, "r", 1, &b.m);
    r = room_relay_open(&a.m, 0, 1 << 20, NULL, NULL);
    /* writes larger than a block get a block of their own */
    memset(big, 7, 40000);
    T_EQ(room_relay_write(r, big, 100, 0), 0);
    T_EQ(room_relay_write(r, big, 40000 - 200, 0), 0);
    T_EQ(b.last_off, 0);
    T_CHECK(b.last_cap >= 40000 - 200);
    T_EQ(b.gotlen, 40000 - 100);
    room_relay_abort(r, 1);
    room_relay_release(r);
    room_leave(&a.m);
    room_leave(&b.m);
    room_set_free(rs);
    free(big);
}

static int name_of(const char *path, const char *want)
{
    char out[ROOM_NAME_MAX + 1];
    size_t len;

    if (room_name_from_path(path, "room", out, &len) < 0)
        return want == NULL;
    return want && len == strlen(want) && strcmp(out, want) == 0;
}

T_TEST(names)
{
    char longname[200], out[ROOM_NAME_MAX + 1];
    size_t len;

    T_CHECK(name_of("/chat", ""));
    T_CHECK(name_of("/chat?", ""));
    T_CHECK(name_of("/chat?room=lobby", "lobby"));
    T_CHECK(name_of("/chat?x=1&room=lobby&y=2", "lobby"));
    T_CHECK(name_of("/chat?room=a&room=b", "a")); /* the first */
    T_CHECK(name_of("/chat?rooms=a", ""));        /* another parameter */
    T_CHECK(name_of("/chat?xroom=a", ""));
    T_CHECK(name_of("/chat?room=", ""));
    T_CHECK(name_of("/chat?room", ""));
    T_CHECK(name_of("/chat?room=caf%C3%A9+au+lait", "caf\xc3\xa9 au lait"));
    T_CHECK(name_of("/chat?room=%2f%2F", "//"));
    T_CHECK(name_of("/chat?room=a%26b&c", "a&b"));
    T_CHECK(name_of("/chat?room=x#frag", "x"));
    /* bad: broken escapes, control characters */
    T_CHECK(name_of("/chat?room=%", NULL));
    T_CHECK(name_of("/chat?room=%4", NULL));
    T_CHECK(name_of("/chat?room=%zz", NULL));
    T_CHECK(name_of("/chat?room=a%00b", NULL));
    T_CHECK(name_of("/chat?room=%0a", NULL));
    T_CHECK(name_of("/chat?room=%7F", NULL));
    /* at most ROOM_NAME_MAX bytes, decoded */
    memcpy(longname, "/c?room=", 8);
    memset(longname + 8, 'n', ROOM_NAME_MAX);
    longname[8 + ROOM_NAME_MAX] = 0;
    T_EQ(room_name_from_path(longname, "room", out, &len), 0);
    T_EQ(len, ROOM_NAME_MAX);
    longname[8 + ROOM_NAME_MAX] = 'n';
    longname[9 + ROOM_NAME_MAX] = 0;
    T_EQ(room_name_from_path(longname, "room", out, &len), -1);
    /* another parameter name */
    T_EQ(room_name_from_path("/c?r=1&channel=a%20b", "channel", out, &len), 0);
    T_STREQ(out, "a b");
}

/* The other side (cluster.c): what it is told, and what it delivers. */
static struct {
    int active, inactive, joins, leaves, dgrams, chunks, resets;
    uint64_t last_id, from, sid, off, end;
    size_t n;
    int fin, refuse;
    uint32_t code;
    struct room *room;
} R;

static void r_active(void *ctx, struct room *r, int active)
{
    (void)ctx;
    if (active)
        R.active++;
    else
        R.inactive++;
    R.room = r;
}

static void r_member(void *ctx, struct room *r, int joined, uint64_t id)
{
    (void)ctx;
    (void)r;
    if (joined)
        R.joins++;
    else
        R.leaves++;
    R.last_id = id;
}

static void r_datagram(void *ctx, struct room *r, uint64_t from,
                       const uint8_t *p, size_t n)
{
    (void)ctx;
    (void)r;
    (void)p;
    R.dgrams++;
    R.from = from;
    R.n = n;
}

static int r_chunk(void *ctx, struct room *r, uint64_t from, uint64_t sid,
                   uint64_t off, const uint8_t *p, size_t n, int fin)
{
    (void)ctx;
    (void)r;
    (void)p;
    if (R.refuse)
        return -1;
    R.chunks++;
    R.from = from;
    R.sid = sid;
    R.off = off;
    R.end = off + n;
    R.fin = fin;
    return 0;
}

static void r_reset(void *ctx, struct room *r, uint64_t from, uint64_t sid,
                    uint32_t code)
{
    (void)ctx;
    (void)r;
    (void)from;
    R.resets++;
    R.sid = sid;
    R.code = code;
}

static const struct room_remote_ops rops = {
    .active = r_active,
    .member = r_member,
    .datagram = r_datagram,
    .chunk = r_chunk,
    .reset = r_reset,
};

T_TEST(remote_side)
{
    struct room_set *rs = room_set_new(10, 10);
    struct fake a, b;
    struct room_relay *r, *in;
    struct sender snd = {0};
    uint64_t sid;

    memset(&R, 0, sizeof(R));
    room_set_remote(rs, &rops, NULL, 7ULL << 32);
    T_CHECK(room_set_has_remote(rs));
    fake_init(&a);
    fake_init(&b);
    /* the first member makes the room active; ids start at the base */
    T_EQ(room_join(rs, "r", 1, &a.m), ROOM_OK);
    T_EQ(a.m.id, (7ULL << 32) + 1);
    T_EQ(R.active, 1);
    T_EQ(R.joins, 1);
    T_EQ(room_join(rs, "r", 1, &b.m), ROOM_OK);
    T_EQ(R.active, 1);
    T_EQ(R.joins, 2);
    T_EQ(R.last_id, b.m.id);
    T_EQ(room_name_len(a.m.room), 1);
    /* members elsewhere count, and are announced */
    room_remote_presence(a.m.room, 1, 99);
    T_EQ(a.joins, 2);
    T_EQ(a.last_who, 99);
    T_EQ(a.last_count, 3);
    T_EQ(room_total(a.m.room), 3);
    T_EQ(room_count(a.m.room), 2);
    /* a local datagram goes to the locals and elsewhere */
    room_send_datagram(&a.m, (const uint8_t *)"hi", 2, 0);
    T_EQ(b.dgrams, 1);
    T_EQ(R.dgrams, 1);
    T_EQ(R.from, a.m.id);
    /* one from elsewhere reaches every local member */
    room_remote_datagram(a.m.room, 99, (const uint8_t *)"yo", 2);
    T_EQ(a.dgrams, 1);
    T_EQ(b.dgrams, 2);
    T_EQ(a.last_from, 99);
    /* a local stream is told elsewhere chunk by chunk, offsets in order */
    r = room_relay_open(&a.m, 0, 100, &sops, &snd);
    T_EQ(room_relay_write(r, (const uint8_t *)"abc", 3, 0), 0);
    T_EQ(R.chunks, 1);
    T_EQ(R.off, 0);
    sid = R.sid;
    T_EQ(room_relay_write(r, (const uint8_t *)"de", 2, 1), 0);
    T_EQ(R.chunks, 2);
    T_EQ(R.off, 3);
    T_EQ(R.end, 5);
    T_EQ(R.fin, 1);
    T_EQ(R.sid, sid);
    room_relay_release(r);
    /* another, aborted: the reset goes too, once */
    r = room_relay_open(&a.m, 0, 100, &sops, &snd);
    T_EQ(room_relay_write(r, (const uint8_t *)"x", 1, 0), 0);
    T_CHECK(R.sid != sid);
    room_relay_abort(r, 0xe2);
    T_EQ(R.resets, 1);
    T_EQ(R.code, 0xe2);
    room_relay_abort(r, 0xe2);
    T_EQ(R.resets, 1);
    room_relay_release(r);
    /* the other side refusing a chunk: nothing more of that stream */
    r = room_relay_open(&a.m, 0, 100, &sops, &snd);
    R.refuse = 1;
    T_EQ(room_relay_write(r, (const uint8_t *)"x", 1, 0), 0);
    R.refuse = 0;
    T_EQ(room_relay_write(r, (const uint8_t *)"y", 1, 1), 0);
    T_EQ(R.chunks, 3); /* the x of the aborted one; nothing of this */
    room_relay_release(r);
    /* a stream from elsewhere: to every local member, paced by the
     * fastest until it is `lag` behind the arrivals */
    b.gotlen = 0;
    b.taken = 0;
    b.room = 4;
    in = room_remote_relay_open(a.m.room, 99, 8);
    T_CHECK(in != NULL);
    T_EQ(a.last_from, 99);
    T_EQ(room_relay_write(in, (const uint8_t *)"0123456", 7, 0), 0);
    T_EQ(a.gotlen, 7);
    T_EQ(b.taken, 4);
    T_EQ(b.slows, 0);
    /* a now 7 + 6 = 13 in; b at 4 is 9 behind the fastest: slow */
    T_EQ(room_relay_write(in, (const uint8_t *)"789abc", 6, 0), 0);
    T_EQ(b.slows, 1);
    a.room = a.taken + 1; /* a takes one more byte, then nothing */
    T_EQ(room_relay_write(in, (const uint8_t *)"0123456789", 10, 0), 0);
    /* even the fastest is 9 > 8 behind what arrived: the arrivals set
     * the pace, a is slow too (nothing holds the other daemon back) */
    T_EQ(a.slows, 1);
    T_EQ(room_relay_copies(in), 0);
    room_relay_abort(in, 0xe4);
    room_relay_release(in);
    T_EQ(R.resets, 1); /* not told back elsewhere */
    /* the last local member leaving makes it inactive */
    room_leave(&a.m);
    T_EQ(R.inactive, 0);
    T_EQ(R.leaves, 1);
    room_remote_presence(b.m.room, 0, 99);
    T_EQ(b.last_count, 1);
    room_leave(&b.m);
    T_EQ(R.inactive, 1);
    T_EQ(R.leaves, 2);
    T_EQ(room_set_count(rs), 0);
    room_set_free(rs);
}

int main(void)
{
    T_RUN(join_leave_ids_presence);
    T_RUN(limits);
    T_RUN(many_rooms);
    T_RUN(chosen_names_spread);
    T_RUN(datagrams);
    T_RUN(relay);
    T_RUN(relay_pacing);
    T_RUN(relay_waiting_copy);
    T_RUN(relay_member_lag);
    T_RUN(relay_outlives_sender);
    T_RUN(relay_abort_drop_self);
    T_RUN(relay_large);
    T_RUN(names);
    T_RUN(remote_side);
    T_DONE();
}
