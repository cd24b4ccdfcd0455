/*
 * addrlim: what one source address may hold and how fast it may come.
 *
 * One entry per source address (an IPv4 address, or an IPv6 /64: one
 * subscriber's usual allocation) counts its connections, the handshakes
 * among them and their WebTransport sessions, and carries a token bucket
 * of new connections.  Pure bookkeeping: no sockets, no clock of its own
 * (the caller passes `now`), no logging; quic_endpoint.c asks and counts.
 *
 * Bounded against an attacker with many addresses (a whole IPv6 /48 is
 * 65536 /64s): the table holds at most `capacity` entries.  An entry with
 * connections is needed; one with none only remembers a bucket that is
 * still refilling, so it waits on an idle list, goes as soon as its bucket
 * is full again, and is the first to be reused when the table is full.
 * The chains are keyed by SipHash-2-4 with a key the caller draws at
 * random for each process, so nobody can aim many addresses at one chain.
 */
#ifndef WTRELAYD_ADDRLIM_H
#define WTRELAYD_ADDRLIM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct addrlim_key {
    uint8_t b[16]; /* IPv4: ::ffff:a.b.c.d; IPv6: the /64, then zeros */
};

/* From the configuration; 0 = no limit of that kind. */
struct addrlim_limits {
    uint64_t connections; /* max_connections_per_address */
    uint64_t handshakes;  /* max_handshakes_per_address */
    uint64_t sessions;    /* max_sessions_per_address */
    double rate;          /* connection_rate_per_address, per second */
    double burst;         /* connection_burst_per_address */
    size_t capacity;      /* entries at most */
};

struct addrlim_entry {
    struct addrlim_key key;
    uint32_t conns, handshakes, sessions;
    double tokens, stamp; /* the bucket held `tokens` at time `stamp` */
    struct addrlim_entry *next;                /* hash chain */
    struct addrlim_entry *idle_prev, *idle_next; /* only while idle */
    int idle;
};

struct addrlim {
    uint64_t k0, k1; /* SipHash key */
    struct addrlim_entry **buckets;
    size_t nbuckets; /* a power of two */
    size_t n;        /* entries */
    size_t evicted;  /* idle entries reused before their bucket was full */
    struct addrlim_entry *idle_head, *idle_tail; /* oldest first */
    struct addrlim_limits lim;
};

enum addrlim_verdict {
    ADDRLIM_OK,
    ADDRLIM_RATE,        /* bucket empty: drop without an answer */
    ADDRLIM_CONNECTIONS, /* max_connections_per_address */
    ADDRLIM_HANDSHAKES,  /* max_handshakes_per_address */
    ADDRLIM_FULL,        /* every entry is held by a live connection */
};

/* nbuckets is rounded up to a power of two.  0, or -1 out of memory. */
int addrlim_init(struct addrlim *t, size_t nbuckets, const uint8_t key[16]);
void addrlim_free(struct addrlim *t);
/* The limits for what comes next (a reload changes them; counts stay). */
void addrlim_set_limits(struct addrlim *t, const struct addrlim_limits *l);

/* The key of a socket address (v4-mapped IPv6 counts as IPv4).  -1 for
 * another family. */
int addrlim_key_of(const struct sockaddr *sa, struct addrlim_key *k);

/* Without changing anything: is this address over its rate now?  (An
 * Initial from it gets no answer at all, not even a Retry.) */
int addrlim_over_rate(struct addrlim *t, const struct addrlim_key *k,
                      double now);

/*
 * A new connection from k: takes a token (refused attempts too, so that
 * an address that keeps trying soon gets no answers), then checks the
 * connection and handshake counts.  ADDRLIM_OK: the connection is counted
 * (and its handshake) in *e, which the caller keeps until
 * addrlim_conn_gone().
 */
enum addrlim_verdict addrlim_admit(struct addrlim *t,
                                   const struct addrlim_key *k, double now,
                                   struct addrlim_entry **e);
void addrlim_handshake_done(struct addrlim *t, struct addrlim_entry *e);
/* The connection ends; in_handshake: it never completed it. */
void addrlim_conn_gone(struct addrlim *t, struct addrlim_entry *e,
                       int in_handshake, double now);
/* A session on one of e's connections: 0, or -1 over
 * max_sessions_per_address (not counted). */
int addrlim_session_take(struct addrlim *t, struct addrlim_entry *e);
/* A session ends.  The entry is settled here too, so it is idled or freed
 * whichever of its connections and sessions ends last. */
void addrlim_session_gone(struct addrlim *t, struct addrlim_entry *e,
                          double now);

/* Lookup only, for tests and logs; NULL when not tracked. */
struct addrlim_entry *addrlim_find(struct addrlim *t,
                                   const struct addrlim_key *k);
/* "192.0.2.7" or "2001:db8:1:2::/64" */
const char *addrlim_key_str(const struct addrlim_key *k, char *buf,
                            size_t len);

#endif
