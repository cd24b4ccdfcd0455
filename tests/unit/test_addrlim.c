/* Unit tests of src/addrlim.c: keys (IPv4, v4-mapped, IPv6 /64), the
 * counts and their limits, the token bucket, entries freed when they hold
 * nothing, the bound on the table under many addresses. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "addrlim.h"
#include "t.h"

static const uint8_t KEY[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

static struct addrlim_key v4(const char *s)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    struct addrlim_key k;

    inet_pton(AF_INET, s, &a.sin_addr);
    addrlim_key_of((struct sockaddr *)&a, &k);
    return k;
}

static struct addrlim_key v6(const char *s)
{
    struct sockaddr_in6 a = {.sin6_family = AF_INET6};
    struct addrlim_key k;

    inet_pton(AF_INET6, s, &a.sin6_addr);
    addrlim_key_of((struct sockaddr *)&a, &k);
    return k;
}

static void setup(struct addrlim *t, uint64_t conns, uint64_t hs,
                  uint64_t sess, double rate, double burst, size_t cap)
{
    struct addrlim_limits l = {conns, hs, sess, rate, burst, cap};

    addrlim_init(t, 64, KEY);
    addrlim_set_limits(t, &l);
}

T_TEST(keys)
{
    struct addrlim_key a = v4("192.0.2.7"), b = v6("::ffff:192.0.2.7");
    struct addrlim_key c = v6("2001:db8:1:2:aaaa::1"), d = v6("2001:db8:1:2:bbbb::9");
    struct addrlim_key e = v6("2001:db8:1:3::1");
    struct sockaddr_un_like { sa_family_t f; char p[20]; } u = {AF_UNIX, ""};
    struct addrlim_key x;
    char buf[80];

    T_MEMEQ(a.b, b.b, 16); /* v4-mapped is the IPv4 address */
    T_MEMEQ(c.b, d.b, 16); /* one /64 */
    T_CHECK(memcmp(c.b, e.b, 16) != 0);
    T_CHECK(memcmp(a.b, v4("192.0.2.8").b, 16) != 0);
    T_STREQ(addrlim_key_str(&a, buf, sizeof(buf)), "192.0.2.7");
    T_STREQ(addrlim_key_str(&c, buf, sizeof(buf)), "2001:db8:1:2::/64");
    T_EQ(addrlim_key_of((struct sockaddr *)&u, &x), -1);
}

T_TEST(connection_cap)
{
    struct addrlim t;
    struct addrlim_key a = v4("10.0.0.1"), b = v4("10.0.0.2");
    struct addrlim_entry *e[4], *f;

    setup(&t, 3, 0, 0, 0, 0, 100);
    for (int i = 0; i < 3; i++) {
        T_EQ(addrlim_admit(&t, &a, 0, &e[i]), ADDRLIM_OK);
        addrlim_handshake_done(&t, e[i]);
    }
    T_EQ(addrlim_admit(&t, &a, 0, &e[3]), ADDRLIM_CONNECTIONS);
    T_CHECK(e[3] == NULL);
    T_EQ(addrlim_admit(&t, &b, 0, &f), ADDRLIM_OK); /* another address */
    T_EQ(e[0]->conns, 3u);
    addrlim_conn_gone(&t, e[0], 0, 1);
    T_EQ(addrlim_admit(&t, &a, 1, &e[3]), ADDRLIM_OK); /* its slot freed */
    addrlim_conn_gone(&t, e[1], 0, 1);
    addrlim_conn_gone(&t, e[2], 0, 1);
    addrlim_conn_gone(&t, e[3], 1, 1);
    T_CHECK(addrlim_find(&t, &a) == NULL); /* no rate: nothing to remember */
    addrlim_conn_gone(&t, f, 1, 1);
    T_EQ(t.n, 0u);
    addrlim_free(&t);
}

T_TEST(handshake_cap)
{
    struct addrlim t;
    struct addrlim_key a = v4("10.0.0.1");
    struct addrlim_entry *e1, *e2, *e3;

    setup(&t, 10, 2, 0, 0, 0, 100);
    T_EQ(addrlim_admit(&t, &a, 0, &e1), ADDRLIM_OK);
    T_EQ(addrlim_admit(&t, &a, 0, &e2), ADDRLIM_OK);
    T_EQ(addrlim_admit(&t, &a, 0, &e3), ADDRLIM_HANDSHAKES);
    addrlim_handshake_done(&t, e1); /* one completes: room for one more */
    T_EQ(addrlim_admit(&t, &a, 0, &e3), ADDRLIM_OK);
    T_EQ(e1->handshakes, 2u);
    T_EQ(e1->conns, 3u);
    addrlim_conn_gone(&t, e2, 1, 0); /* a half-open one times out */
    T_EQ(e1->handshakes, 1u);
    addrlim_conn_gone(&t, e1, 0, 0);
    addrlim_conn_gone(&t, e3, 1, 0);
    T_EQ(t.n, 0u);
    addrlim_free(&t);
}

T_TEST(session_cap)
{
    struct addrlim t;
    struct addrlim_key a = v4("10.0.0.1");
    struct addrlim_entry *e1, *e2;

    setup(&t, 10, 0, 3, 0, 0, 100);
    T_EQ(addrlim_admit(&t, &a, 0, &e1), ADDRLIM_OK);
    T_EQ(addrlim_admit(&t, &a, 0, &e2), ADDRLIM_OK);
    T_CHECK(e1 == e2); /* across connections */
    T_EQ(addrlim_session_take(&t, e1), 0);
    T_EQ(addrlim_session_take(&t, e1), 0);
    T_EQ(addrlim_session_take(&t, e2), 0);
    T_EQ(addrlim_session_take(&t, e2), -1);
    T_EQ(e1->sessions, 3u);
    addrlim_session_gone(&t, e1, 0);
    T_EQ(addrlim_session_take(&t, e2), 0);
    addrlim_free(&t);
}

/* Whichever ends last, a connection or a session, frees the entry: none is
 * left holding nothing, off the idle list, until the table is full. */
T_TEST(session_outlives_connection)
{
    struct addrlim t;
    struct addrlim_key a = v4("10.0.0.2");
    struct addrlim_entry *e;

    setup(&t, 10, 0, 3, 0, 0, 100);
    T_EQ(addrlim_admit(&t, &a, 0, &e), ADDRLIM_OK);
    addrlim_handshake_done(&t, e);
    T_EQ(addrlim_session_take(&t, e), 0);
    addrlim_conn_gone(&t, e, 0, 0);
    T_CHECK(addrlim_find(&t, &a) == e); /* its session still counts */
    addrlim_session_gone(&t, e, 0);
    T_CHECK(addrlim_find(&t, &a) == NULL);
    T_EQ(t.n, 0u);
    addrlim_free(&t);
}

T_TEST(token_bucket)
{
    struct addrlim t;
    struct addrlim_key a = v4("10.0.0.1");
    struct addrlim_entry *e;
    int ok = 0;

    setup(&t, 0, 0, 0, 10, 5, 100); /* 10/s, burst 5 */
    T_CHECK(!addrlim_over_rate(&t, &a, 0)); /* unknown: not over */
    for (int i = 0; i < 8; i++) {
        if (addrlim_admit(&t, &a, 0, &e) == ADDRLIM_OK) {
            ok++;
            addrlim_conn_gone(&t, e, 1, 0); /* refused and closed at once */
        }
    }
    T_EQ(ok, 5); /* the burst */
    T_CHECK(addrlim_over_rate(&t, &a, 0));
    T_CHECK(addrlim_over_rate(&t, &a, 0.05)); /* half a token */
    T_CHECK(!addrlim_over_rate(&t, &a, 0.1)); /* one token */
    T_EQ(addrlim_admit(&t, &a, 0.1, &e), ADDRLIM_OK);
    addrlim_conn_gone(&t, e, 1, 0.1);
    T_EQ(addrlim_admit(&t, &a, 0.1, &e), ADDRLIM_RATE);
    /* the entry remembers its empty bucket though it holds nothing */
    T_CHECK(addrlim_find(&t, &a) != NULL);
    /* refilled to the burst, and no more */
    ok = 0;
    for (int i = 0; i < 8; i++) {
        if (addrlim_admit(&t, &a, 100, &e) == ADDRLIM_OK) {
            ok++;
            addrlim_conn_gone(&t, e, 1, 100);
        }
    }
    T_EQ(ok, 5);
    addrlim_free(&t);
}

/* An address whose bucket is full again holds nothing worth keeping. */
T_TEST(idle_entries_go)
{
    struct addrlim t;
    struct addrlim_entry *e;
    char s[32];

    setup(&t, 0, 0, 0, 10, 2, 1000);
    for (int i = 0; i < 100; i++) {
        struct addrlim_key k;

        snprintf(s, sizeof(s), "10.1.%d.%d", i / 200, i % 200);
        k = v4(s);
        T_EQ(addrlim_admit(&t, &k, 0, &e), ADDRLIM_OK);
        addrlim_conn_gone(&t, e, 1, 0);
    }
    T_EQ(t.n, 100u); /* their buckets are refilling */
    for (int i = 0; i < 100; i++) { /* later: reaped as others come */
        struct addrlim_key k;

        snprintf(s, sizeof(s), "10.2.%d.%d", i / 200, i % 200);
        k = v4(s);
        T_EQ(addrlim_admit(&t, &k, 10, &e), ADDRLIM_OK);
        addrlim_conn_gone(&t, e, 1, 10);
    }
    T_CHECK(t.n <= 100u + 100u - 4u * 25u); /* four reaped per admission */
    addrlim_free(&t);
}

/* Many addresses (a /48's worth of /64s) cannot grow the table past its
 * capacity; live connections keep their entries; a table full of live
 * connections refuses. */
T_TEST(bounded_under_many_addresses)
{
    struct addrlim t;
    struct addrlim_entry *e, *live[10];
    char s[64];
    int full = 0;

    setup(&t, 0, 0, 0, 1, 5, 50);
    for (int i = 0; i < 10; i++) {
        struct addrlim_key k;

        snprintf(s, sizeof(s), "2001:db8:0:%x::1", i);
        k = v6(s);
        T_EQ(addrlim_admit(&t, &k, 0, &live[i]), ADDRLIM_OK);
    }
    for (int i = 0; i < 65536; i++) {
        struct addrlim_key k;

        snprintf(s, sizeof(s), "2001:db8:1:%x::1", i);
        k = v6(s);
        if (addrlim_admit(&t, &k, 0, &e) == ADDRLIM_OK)
            addrlim_conn_gone(&t, e, 1, 0);
        else
            full++;
        T_CHECK(t.n <= 50);
    }
    T_EQ(full, 0); /* idle buckets were forgotten, oldest first */
    T_CHECK(t.evicted > 60000);
    for (int i = 0; i < 10; i++) { /* the live ones are all still there */
        struct addrlim_key k;

        snprintf(s, sizeof(s), "2001:db8:0:%x::1", i);
        k = v6(s);
        T_CHECK(addrlim_find(&t, &k) == live[i]);
    }
    /* 50 live connections: the 51st address finds no room */
    for (int i = 0; i < 40; i++) {
        struct addrlim_key k;

        snprintf(s, sizeof(s), "2001:db8:2:%x::1", i);
        k = v6(s);
        T_EQ(addrlim_admit(&t, &k, 0, &e), ADDRLIM_OK);
    }
    {
        struct addrlim_key k = v6("2001:db8:3::1");

        T_EQ(addrlim_admit(&t, &k, 0, &e), ADDRLIM_FULL);
    }
    T_EQ(t.n, 50u);
    addrlim_free(&t); /* frees the live ones too (ASan: no leak) */
}

int main(void)
{
    T_RUN(keys);
    T_RUN(connection_cap);
    T_RUN(handshake_cap);
    T_RUN(session_cap);
    T_RUN(session_outlives_connection);
    T_RUN(token_bucket);
    T_RUN(idle_entries_go);
    T_RUN(bounded_under_many_addresses);
    T_DONE();
}
