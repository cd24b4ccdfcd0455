/*
 * quic_hsq: the queue of new connections waiting for their handshake.
 *
 * Why: a new connection's first Initial makes the server's whole first
 * flight at once (an ECDHE key share, the certificate, an ECDSA
 * signature: about a millisecond of CPU here).  Started as they were
 * read, a burst of 64 Initials in the socket's queue kept a request of an
 * established connection waiting behind 64 handshakes, and a flood of
 * Initials made every session's latency its own (issue 12: p99 3.8x the
 * quiet run's).  Now the read path handles established connections'
 * packets at once and only copies a new connection's Initial here (after
 * the stateless checks and the per-address admission, quic_endpoint.c);
 * at the end of each loop turn, after every packet that turn read, the
 * writes due are flushed and ONE handshake starts.  A request arriving
 * meanwhile waits for at most that one handshake; with nothing else to do
 * the loop turns without sleeping (an idle watcher) and handshakes follow
 * each other as fast as before.  Established traffic cannot starve the
 * queue either: every turn starts one, whatever it read.
 *
 * Bounded by handshake_queue packets (and as many times 1500 bytes):
 * past that an Initial is dropped, counted as refused (reason
 * handshake_queue); its client sends it again.  Retry (`retry = auto`)
 * counts queued handshakes as in progress, so a spoofed flood fills the
 * queue no further than retry_handshakes.
 */
#include "quic.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "quic_internal.h"

/* the byte bound: handshake_queue Initials of a common size (a browser's
 * are 1 200 to 1 400 bytes); larger ones take more of it */
#define HSQ_BYTES_PER_ITEM 1500
/* later packets queued behind one new connection's first */
#define HSQ_FOLLOWERS 4

struct quic_hsq_item {
    struct quic_hsq_item *next;
    size_t sock; /* index into ep->socks: checked again when started */
    struct udp_addr local, remote;
    unsigned ecn;
    enum addr_check check;
    ngtcp2_cid odcid;            /* address_check()'s, for ADDR_RETRY */
    ngtcp2_cid dcid;             /* the client's DCID: finds followers */
    struct addrlim_entry *alim;  /* admitted: held until started or dropped */
    int follower;  /* a later packet of a connection queued before it */
    int followers; /* leader: how many such are queued behind it */
    size_t len;
    uint8_t pkt[];
};

static void item_drop(struct quic_endpoint *ep, struct quic_hsq_item *it)
{
    if (it->alim)
        addrlim_conn_gone(&ep->alim, it->alim, 1, ev_now(ep->loop));
    free(it);
}

static struct quic_hsq_item *pop(struct quic_hsq *q)
{
    struct quic_hsq_item *it = q->head;

    if (!it)
        return NULL;
    if (!(q->head = it->next))
        q->tail = NULL;
    q->n--;
    q->bytes -= it->len;
    return it;
}

/* Makes the connection of a queued Initial and feeds it the packet: the
 * costly part of a handshake (quic_conn_input -> GnuTLS). */
static void start_one(struct quic_endpoint *ep, struct quic_hsq_item *it)
{
    struct udp_sock *s = &ep->socks[it->sock];
    struct quic_conn *qc;
    ngtcp2_pkt_hd hd;

    /* removed by a reload meanwhile (retired or closed): as read_pkt()
     * does for a retired socket, nothing new on it */
    if (ep->sock_state[it->sock] != QUIC_SOCK_LISTEN || ep->shutting_down) {
        item_drop(ep, it);
        return;
    }
    qc = quic_cid_lookup(ep, it->dcid.data, it->dcid.datalen);
    if (!qc && !it->follower) {
        if (ngtcp2_accept(&hd, it->pkt, it->len) != 0) {
            item_drop(ep, it); /* it passed when it was read */
            return;
        }
        qc = quic_conn_new(ep, s, &it->local, &it->remote, &hd, &it->odcid,
                           it->check);
        if (!qc) {
            item_drop(ep, it);
            return;
        }
        qc->alim = it->alim;
        it->alim = NULL;
    }
    /* a follower whose connection was not made (its first packet was
     * refused or dropped): dropped too, the client sends it again */
    if (qc)
        quic_conn_input(qc, s, &it->local, &it->remote, it->ecn, it->pkt,
                        it->len);
    item_drop(ep, it);
}

static void stop_watchers(struct quic_endpoint *ep)
{
    ev_check_stop(ep->loop, &ep->hsq.check);
    ev_idle_stop(ep->loop, &ep->hsq.idle);
}

/* Once per loop turn, after that turn's reads (lowest priority): first
 * write what those packets made due, so that answers to established
 * connections do not wait for the handshake; then start one. */
static void check_cb(struct ev_loop *loop, ev_check *w, int revents)
{
    struct quic_endpoint *ep = w->data;
    struct quic_hsq_item *it;

    (void)loop;
    (void)revents;
    quic_endpoint_flush(ep);
    if ((it = pop(&ep->hsq))) {
        /* what a request that arrives now waits for, at most: counted so
         * that operators (and tests/it/76) can see it */
        uint64_t t0 = quic_now();

        start_one(ep, it);
        metrics.handshakes_started++;
        metrics.handshake_start_ns += quic_now() - t0;
    }
    if (!ep->hsq.n)
        stop_watchers(ep);
}

static void idle_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
}

void quic_hsq_init(struct quic_endpoint *ep)
{
    struct quic_hsq *q = &ep->hsq;

    q->head = q->tail = NULL;
    q->n = q->bytes = 0;
    ev_check_init(&q->check, check_cb);
    ev_set_priority(&q->check, EV_MINPRI);
    q->check.data = ep;
    ev_idle_init(&q->idle, idle_cb);
    ev_set_priority(&q->idle, EV_MINPRI);
    q->idle.data = ep;
}

/* A queue of handshake_queue packets at most, walked only for
 * long-header packets of no known connection while it is not empty: a
 * peer sending such junk pays a walk of at most handshake_queue entries
 * each (a hash of the queued DCIDs would make it O(1): not done yet). */
struct quic_hsq_item *quic_hsq_find(const struct quic_endpoint *ep,
                                    const uint8_t *dcid, size_t dcidlen)
{
    struct quic_hsq_item *it;

    for (it = ep->hsq.head; it; it = it->next)
        if (!it->follower && it->dcid.datalen == dcidlen &&
            memcmp(it->dcid.data, dcid, dcidlen) == 0)
            return it;
    return NULL;
}

int quic_hsq_push(struct quic_endpoint *ep, const struct udp_sock *s,
                  const struct udp_addr *local, const struct udp_addr *remote,
                  unsigned ecn, const uint8_t *p, size_t n,
                  const ngtcp2_cid *dcid, enum addr_check check,
                  const ngtcp2_cid *odcid, struct addrlim_entry *alim,
                  struct quic_hsq_item *lead)
{
    struct quic_hsq *q = &ep->hsq;
    uint64_t max = ep->cfg->handshake_queue;
    struct quic_hsq_item *it;

    /* followers are not admitted apart (their leader was): a few each, as
     * a ClientHello in two or three Initials and a retransmission take,
     * so that one admitted connection cannot fill the queue */
    if (q->n >= max || q->bytes + n > max * HSQ_BYTES_PER_ITEM ||
        (lead && lead->followers >= HSQ_FOLLOWERS) ||
        !(it = malloc(sizeof(*it) + n))) {
        metrics.connections_refused[METRICS_REFUSED_HANDSHAKE_QUEUE]++;
        return -1;
    }
    it->next = NULL;
    it->sock = (size_t)(s - ep->socks);
    it->local = *local;
    it->remote = *remote;
    it->ecn = ecn;
    it->check = check;
    if (odcid)
        it->odcid = *odcid;
    else
        memset(&it->odcid, 0, sizeof(it->odcid));
    it->dcid = *dcid;
    it->alim = alim;
    it->follower = lead != NULL;
    it->followers = 0;
    if (lead) {
        lead->followers++;
        log_debug("a later packet of a queued new connection: queued "
                  "behind it (%d)", lead->followers);
    }
    it->len = n;
    memcpy(it->pkt, p, n);
    if (q->tail)
        q->tail->next = it;
    else
        q->head = it;
    q->tail = it;
    q->n++;
    q->bytes += n;
    if (!ev_is_active(&q->check)) {
        ev_check_start(ep->loop, &q->check);
        ev_idle_start(ep->loop, &q->idle);
    }
    return 0;
}

void quic_hsq_clear(struct quic_endpoint *ep)
{
    struct quic_hsq_item *it;

    while ((it = pop(&ep->hsq)))
        item_drop(ep, it);
    if (ep->loop)
        stop_watchers(ep);
}
