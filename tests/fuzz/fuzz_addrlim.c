/*
 * The per-source-address table (src/addrlim.c) under a sequence of events
 * the input chooses, as quic_endpoint.c and wt_session.c drive it: new
 * connections from addresses a peer picks (IPv4, IPv6 in the same or
 * another /64, v4-mapped), handshakes completing, sessions opening and
 * ending, connections ending (their sessions first, as wt_conn_free
 * does), time passing, a reload changing the limits.
 *
 * Input: two bytes of limits, then events of 3 bytes (kind, argument,
 * argument).
 *
 * Properties: every entry's counts are those of a model of the live
 * connections; a refusal is exactly when a limit says so (connections,
 * handshakes, the table full of live entries; the rate only with a rate);
 * the table grows only within its capacity and never loses an entry a
 * live connection holds; once everything has ended, only idle entries remain,
 * and the table frees without a leak.
 */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "addrlim.h"
#include "fuzz.h"

#define MAXCONN 128
#define NADDR 16

struct conn {
    struct addrlim_entry *e;
    int addr;
    int in_handshake;
    unsigned sessions;
};

static struct conn conns[MAXCONN];
static size_t nconns;

/* Address `a` (0..15) as a socket address; `salt` varies what the key
 * must not see (the port; the low 64 bits of an IPv6 address). */
static void sockaddr_of(int a, uint8_t salt, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (a < 6) {
        struct sockaddr_in *s = (void *)ss;

        s->sin_family = AF_INET;
        s->sin_port = htons(salt);
        s->sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)a);
    } else if (a < 8) {
        /* the same as addresses 0 and 1, v4-mapped */
        struct sockaddr_in6 *s = (void *)ss;

        s->sin6_family = AF_INET6;
        s->sin6_addr.s6_addr[10] = s->sin6_addr.s6_addr[11] = 0xff;
        s->sin6_addr.s6_addr[12] = 127;
        s->sin6_addr.s6_addr[15] = (uint8_t)(1 + a - 6);
    } else {
        struct sockaddr_in6 *s = (void *)ss;

        s->sin6_family = AF_INET6;
        s->sin6_addr.s6_addr[0] = 0x20;
        s->sin6_addr.s6_addr[1] = 0x01;
        s->sin6_addr.s6_addr[7] = (uint8_t)a; /* the /64 */
        s->sin6_addr.s6_addr[15] = salt;      /* inside it: the same key */
        s->sin6_port = htons(salt);
    }
}

/* Which model address a key stands for (v4-mapped ones fold to v4). */
static int canon(int a)
{
    return a == 6 ? 0 : a == 7 ? 1 : a;
}

static void model_counts(int a, uint32_t *c, uint32_t *h, uint32_t *s)
{
    *c = *h = *s = 0;
    for (size_t i = 0; i < nconns; i++)
        if (canon(conns[i].addr) == canon(a)) {
            (*c)++;
            *h += (uint32_t)conns[i].in_handshake;
            *s += conns[i].sessions;
        }
}

static void check_all(struct addrlim *t)
{
    size_t idle = 0;

    /* (a reload may lower the capacity under what is held: then the
     * table only shrinks; see the admit case) */
    FUZZ_CHECK(t->n <= NADDR);
    for (int a = 0; a < NADDR; a++) {
        struct sockaddr_storage ss;
        struct addrlim_key k;
        struct addrlim_entry *e;
        uint32_t c, h, s;

        sockaddr_of(a, 0, &ss);
        FUZZ_CHECK(addrlim_key_of((struct sockaddr *)&ss, &k) == 0);
        e = addrlim_find(t, &k);
        model_counts(a, &c, &h, &s);
        if (c || s) {
            FUZZ_CHECK(e && e->conns == c && e->handshakes == h &&
                       e->sessions == s && !e->idle);
        } else if (e) {
            FUZZ_CHECK(e->conns == 0 && e->sessions == 0);
        }
    }
    for (struct addrlim_entry *e = t->idle_head; e; e = e->idle_next) {
        FUZZ_CHECK(e->idle && e->conns == 0 && e->sessions == 0);
        FUZZ_CHECK(e->idle_next ? e->idle_next->idle_prev == e
                                : t->idle_tail == e);
        FUZZ_CHECK(++idle <= t->n);
    }
}

static void set_limits(struct addrlim *t, uint8_t a, uint8_t b)
{
    struct addrlim_limits l = {
        .connections = a & 7,
        .handshakes = (a >> 3) & 3,
        .sessions = (a >> 5) & 7,
        .rate = (b & 7) * 0.5,
        .burst = ((b >> 3) & 7) + 1,
        .capacity = ((b >> 6) & 3) * 3 + 2,
    };

    addrlim_set_limits(t, &l);
}

static void conn_end(struct addrlim *t, size_t i, double now)
{
    /* wt_conn_free first: the connection's sessions end before it does */
    while (conns[i].sessions) {
        addrlim_session_gone(t, conns[i].e, now);
        conns[i].sessions--;
    }
    addrlim_conn_gone(t, conns[i].e, conns[i].in_handshake, now);
    conns[i] = conns[--nconns];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    struct addrlim t;
    static const uint8_t key[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    double now = 1000.0;
    uint8_t l0 = fuzz_u8(&in), l1 = fuzz_u8(&in);

    nconns = 0;
    if (addrlim_init(&t, 4, key) != 0)
        abort();
    set_limits(&t, l0, l1);
    while (in.n >= 3) {
        uint8_t op = fuzz_u8(&in), x = fuzz_u8(&in), y = fuzz_u8(&in);
        size_t i = nconns ? x % nconns : 0;

        switch (op % 8) {
        case 0:
        case 1: { /* a new connection from address x % NADDR */
            struct sockaddr_storage ss;
            struct addrlim_key k;
            struct addrlim_entry *e = NULL, *had;
            enum addrlim_verdict v;
            uint32_t c, h, s;
            int a = x % NADDR, over;
            size_t nbefore = t.n;

            sockaddr_of(a, y, &ss);
            FUZZ_CHECK(addrlim_key_of((struct sockaddr *)&ss, &k) == 0);
            model_counts(a, &c, &h, &s);
            had = addrlim_find(&t, &k);
            over = addrlim_over_rate(&t, &k, now);
            if (over)
                FUZZ_CHECK(t.lim.rate > 0 && had);
            v = addrlim_admit(&t, &k, now, &e);
            if (over)
                FUZZ_CHECK(v == ADDRLIM_RATE);
            if (v == ADDRLIM_RATE)
                FUZZ_CHECK(t.lim.rate > 0 && had);
            if (v == ADDRLIM_CONNECTIONS)
                FUZZ_CHECK(t.lim.connections && c >= t.lim.connections);
            if (v == ADDRLIM_HANDSHAKES)
                FUZZ_CHECK(t.lim.handshakes && h >= t.lim.handshakes);
            if (v == ADDRLIM_FULL) /* (an idle `had` may have been reaped) */
                FUZZ_CHECK(!addrlim_find(&t, &k) && t.n >= t.lim.capacity &&
                           !t.idle_head);
            if (t.n > nbefore)
                FUZZ_CHECK(t.n <= t.lim.capacity); /* grown within it */
            if (v == ADDRLIM_OK) {
                FUZZ_CHECK(e && (!t.lim.connections || c < t.lim.connections));
                FUZZ_CHECK(!t.lim.handshakes || h < t.lim.handshakes);
                if (nconns == MAXCONN) {
                    addrlim_conn_gone(&t, e, 1, now);
                    break;
                }
                conns[nconns++] = (struct conn){e, a, 1, 0};
            } else {
                FUZZ_CHECK(e == NULL);
                if (v != ADDRLIM_RATE && v != ADDRLIM_FULL && !t.lim.rate &&
                    !had)
                    FUZZ_CHECK(0); /* a fresh address refused by a count */
            }
            break;
        }
        case 2: /* the handshake completes */
            if (nconns && conns[i].in_handshake) {
                addrlim_handshake_done(&t, conns[i].e);
                conns[i].in_handshake = 0;
            }
            break;
        case 3: /* the connection ends */
            if (nconns)
                conn_end(&t, i, now);
            break;
        case 4: { /* a session opens on it */
            uint32_t c, h, s;

            if (!nconns)
                break;
            model_counts(conns[i].addr, &c, &h, &s);
            if (addrlim_session_take(&t, conns[i].e) == 0) {
                FUZZ_CHECK(!t.lim.sessions || s < t.lim.sessions);
                conns[i].sessions++;
            } else {
                FUZZ_CHECK(t.lim.sessions && s >= t.lim.sessions);
            }
            break;
        }
        case 5: /* a session ends */
            if (nconns && conns[i].sessions) {
                addrlim_session_gone(&t, conns[i].e, now);
                conns[i].sessions--;
            }
            break;
        case 6: /* time passes: up to 25.5 s */
            now += y / 10.0;
            break;
        case 7: /* a reload: new limits, the counts stay */
            set_limits(&t, x, y);
            break;
        }
        check_all(&t);
    }
    while (nconns)
        conn_end(&t, nconns - 1, now);
    check_all(&t);
    for (struct addrlim_entry *e = t.idle_head; e; e = e->idle_next)
        FUZZ_CHECK(e->conns == 0);
    addrlim_free(&t);
    return 0;
}
