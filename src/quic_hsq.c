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
 * With helper threads (handshake_threads, default 1) even that one
 * handshake leaves the loop: a thread makes the connection and feeds it
 * its first packets (the key exchange and signature: ~330 us here), then
 * hands it back (offload.c), and the loop only links it (a few us) and
 * writes its first flight.  The loop gives the threads two connections
 * each at a time and keeps the rest queued; packets that come for a
 * connection meanwhile wait beside it (`late`, within HSQ_FOLLOWERS) and
 * go to the thread too, once (a ClientHello's second Initial is where
 * GnuTLS does its work), or are read on the loop once it is linked.  The thread touches the item and what it
 * makes, nothing else (quic_conn_make()); a reload or a shutdown while it
 * works is seen when it hands the connection back (may_start()).
 *
 * Bounded by handshake_queue packets (and as many times 1500 bytes):
 * past that an Initial is dropped, counted as refused (reason
 * handshake_queue); its client sends it again.  Retry (`retry = auto`)
 * counts queued handshakes as in progress, so a spoofed flood fills the
 * queue no further than retry_handshakes.
 */
#include "quic.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "quic_internal.h"
#include "tls.h"

/* the byte bound: handshake_queue Initials of a common size (a browser's
 * are 1 200 to 1 400 bytes); larger ones take more of it */
#define HSQ_BYTES_PER_ITEM 1500
/* later packets queued behind one new connection's first */
#define HSQ_FOLLOWERS 4

struct quic_hsq_item {
    struct quic_hsq_item *next; /* the queue (leaders only) */
    size_t sock; /* index into ep->socks: checked again when started */
    struct udp_addr local, remote;
    unsigned ecn;
    enum addr_check check;
    ngtcp2_cid odcid;            /* address_check()'s, for ADDR_RETRY */
    ngtcp2_cid dcid;             /* the client's DCID: finds followers */
    struct addrlim_entry *alim;  /* admitted: held until started or dropped */
    int followers; /* leader: how many such are queued behind it */
    /* leader: its followers, in their order; they are counted in the
     * queue's n and bytes but are not in the queue itself */
    struct quic_hsq_item *chain, **chain_tail;
    /* what its connection is made of; the references are the item's
     * until the connection takes them */
    struct quic_conn_seed seed;
    /* with helper threads (leaders): while a thread makes its connection
     * (inflight), the thread owns job..ns and the chain; the loop keeps
     * the rest, and queues followers that come meanwhile on `late` */
    struct offload_job job;
    struct quic_conn *qc; /* made, not yet linked */
    int rv;               /* what feeding its packets answered */
    uint64_t ns;          /* the thread's time on it */
    int refed; /* a second round in the thread for its `late` packets */
    int inflight;
    struct quic_hsq_item *inflight_next;
    struct quic_hsq_item *late, **late_tail;
    size_t len;
    uint8_t pkt[];
};

static void drop_chain(struct quic_endpoint *ep, struct quic_hsq_item *f)
{
    struct quic_hsq_item *next;

    for (; f; f = next) {
        next = f->next;
        ep->hsq.n--;
        ep->hsq.bytes -= f->len;
        free(f);
    }
}

/* Drops a leader, its followers and what it still holds. */
static void item_drop(struct quic_endpoint *ep, struct quic_hsq_item *it)
{
    drop_chain(ep, it->chain);
    drop_chain(ep, it->late);
    config_unref(it->seed.cfg);
    tls_ctx_free(it->seed.tlsctx);
    if (it->alim)
        addrlim_conn_gone(&ep->alim, it->alim, 1, ev_now(ep->loop));
    ep->hsq.n--;
    ep->hsq.bytes -= it->len;
    free(it);
}

static struct quic_hsq_item *pop(struct quic_hsq *q)
{
    struct quic_hsq_item *it = q->head;

    if (!it)
        return NULL;
    if (!(q->head = it->next))
        q->tail = NULL;
    it->next = NULL;
    return it; /* still counted: item_drop() */
}

/* Makes the connection of a queued Initial and feeds it its packets (the
 * first one's followers too): the costly part of a handshake
 * (ngtcp2_conn_server_new, then quic_conn_feed -> GnuTLS: the key
 * exchange, the certificate's signature).  Touches nothing of the loop's
 * but the item.  it->rv: the first error ngtcp2 gave, 0 for none. */
static void make_and_feed(struct quic_hsq_item *it)
{
    const struct quic_hsq_item *p;
    ngtcp2_pkt_hd hd;

    if (!it->qc) {
        it->rv = 0;
        if (ngtcp2_accept(&hd, it->pkt, it->len) != 0)
            return; /* it passed when it was read */
        if (!(it->qc = quic_conn_make(&it->seed, &hd)))
            return;
        it->seed.cfg = NULL; /* the connection's now */
        it->seed.tlsctx = NULL;
        it->rv = quic_conn_feed(it->qc, it->seed.sock, &it->local,
                                &it->remote, it->ecn, it->pkt, it->len);
    }
    for (p = it->chain; p && it->rv == 0; p = p->next)
        it->rv = quic_conn_feed(it->qc, it->seed.sock, &p->local,
                                &p->remote, p->ecn, p->pkt, p->len);
}

/* What make_and_feed() made joins the endpoint (loop thread), then
 * reads what came for it meanwhile; the next flush writes its first
 * flight. */
static void link_made(struct quic_endpoint *ep, struct quic_hsq_item *it)
{
    struct quic_conn *qc = it->qc;
    const struct quic_hsq_item *f;

    it->qc = NULL;
    if (quic_conn_link(qc) < 0) {
        quic_conn_unmake(qc);
        return;
    }
    qc->alim = it->alim;
    it->alim = NULL;
    quic_conn_fed(qc, it->rv);
    for (f = it->late; f; f = f->next)
        quic_conn_input(qc, &ep->socks[f->sock], &f->local, &f->remote,
                        f->ecn, f->pkt, f->len);
}

/* Loop thread: the references and the serial are taken here. */
static void seed_of(struct quic_endpoint *ep, struct quic_hsq_item *it)
{
    struct quic_conn_seed *sd = &it->seed;

    sd->ep = ep;
    sd->cfg = config_ref(ep->cfg);
    sd->tlsctx = tls_ctx_ref(ep->tls);
    sd->serial = ++ep->next_serial;
    sd->sock = &ep->socks[it->sock];
    sd->local = it->local;
    sd->remote = it->remote;
    sd->check = it->check;
    sd->odcid = it->odcid;
}

/* removed by a reload meanwhile (retired or closed): as read_pkt() does
 * for a retired socket, nothing new on it */
static int may_start(const struct quic_endpoint *ep,
                     const struct quic_hsq_item *it)
{
    return ep->sock_state[it->sock] == QUIC_SOCK_LISTEN &&
           !ep->shutting_down && !ep->hsq.stopping;
}

/* handshake_threads = 0: all of it on the loop thread */
static void start_one(struct quic_endpoint *ep, struct quic_hsq_item *it)
{
    if (may_start(ep, it)) {
        seed_of(ep, it);
        make_and_feed(it);
        if (it->qc)
            link_made(ep, it);
    }
    item_drop(ep, it);
}

/* ---- helper threads (handshake_threads) ---- */

#define ITEM_OF(j)                                                            \
    ((struct quic_hsq_item *)(void *)((char *)(j) -                           \
                                      offsetof(struct quic_hsq_item, job)))

/* Helper thread: the item's seed, packets and chain, nothing else. */
static void work_cb(struct offload_job *j)
{
    struct quic_hsq_item *it = ITEM_OF(j);
    uint64_t t0 = quic_now();

    make_and_feed(it);
    it->ns += quic_now() - t0;
}

static void submit(struct quic_endpoint *ep, struct quic_hsq_item *it)
{
    struct quic_hsq *q = &ep->hsq;

    it->inflight = 1;
    it->inflight_next = q->inflight;
    q->inflight = it;
    offload_submit(&q->pool, &it->job);
}

/* Loop thread: a connection comes back made (or not), and joins. */
static void done_cb(struct offload_job *j, int worked, void *arg)
{
    struct quic_endpoint *ep = arg;
    struct quic_hsq_item *it = ITEM_OF(j), **p;
    uint64_t t0 = quic_now();

    for (p = &ep->hsq.inflight; *p && *p != it; p = &(*p)->inflight_next)
        ;
    if (*p)
        *p = it->inflight_next;
    it->inflight = 0;
    if (worked && it->qc && may_start(ep, it) && it->late && it->rv == 0 &&
        !it->refed && !offload_full(&ep->hsq.pool)) {
        /* packets came while the thread worked: a ClientHello's second
         * Initial is where GnuTLS does the costly part, so they go to the
         * thread too, once (the fed ones go now) */
        drop_chain(ep, it->chain);
        it->chain = it->late;
        it->chain_tail = it->late_tail;
        it->late = NULL;
        it->late_tail = &it->late;
        it->refed = 1;
        log_debug("a new connection's later packets: to the handshake "
                  "thread too");
        submit(ep, it);
        return;
    }
    if (worked && it->qc && may_start(ep, it)) {
        link_made(ep, it);
        /* what the loop itself spent on it (a request arriving meanwhile
         * waits for this much), and what the thread did */
        metrics.handshakes_started++;
        metrics.handshake_start_ns += quic_now() - t0;
        metrics.handshake_thread_ns += it->ns;
    }
    if (it->qc) { /* not wanted any more: registered nowhere */
        quic_conn_discard(it->qc);
        it->qc = NULL;
    }
    item_drop(ep, it);
}

static void dispatch(struct quic_endpoint *ep, struct quic_hsq_item *it)
{
    if (!may_start(ep, it)) {
        item_drop(ep, it);
        return;
    }
    seed_of(ep, it);
    submit(ep, it);
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
    if (offload_running(&ep->hsq.pool)) {
        /* as many as the threads take; the rest wait for a thread to
         * hand one back (done_cb, then this again, in the same turn).
         * Meanwhile the loop may sleep: the hand-back wakes it. */
        while (!offload_full(&ep->hsq.pool) && (it = pop(&ep->hsq)))
            dispatch(ep, it);
        ev_idle_stop(ep->loop, &ep->hsq.idle);
        if (!ep->hsq.head)
            stop_watchers(ep);
        return;
    }
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
    q->inflight = NULL;
    q->stopping = 0;
    ev_check_init(&q->check, check_cb);
    ev_set_priority(&q->check, EV_MINPRI);
    q->check.data = ep;
    ev_idle_init(&q->idle, idle_cb);
    ev_set_priority(&q->idle, EV_MINPRI);
    q->idle.data = ep;
}

int quic_hsq_start(struct quic_endpoint *ep, char *err, size_t errlen)
{
    unsigned n = (unsigned)ep->cfg->handshake_threads;

    if (n == 0)
        return 0;
    /* two jobs a thread: one it makes, one waiting for it, so that it
     * never waits for the loop; the rest stay in the queue, counted */
    return offload_start(&ep->hsq.pool, ep->loop, n,
                         (unsigned)ep->cfg->handshake_nice, 2 * (size_t)n,
                         work_cb, done_cb, ep, err, errlen);
}

static int same_dcid(const struct quic_hsq_item *it, const uint8_t *dcid,
                     size_t dcidlen)
{
    return it->dcid.datalen == dcidlen &&
           memcmp(it->dcid.data, dcid, dcidlen) == 0;
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
        if (same_dcid(it, dcid, dcidlen))
            return it;
    /* 2 x handshake_threads at most */
    for (it = ep->hsq.inflight; it; it = it->inflight_next)
        if (same_dcid(it, dcid, dcidlen))
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
    it->followers = 0;
    it->chain = it->late = NULL;
    it->chain_tail = &it->chain;
    it->late_tail = &it->late;
    memset(&it->seed, 0, sizeof(it->seed));
    it->qc = NULL;
    it->ns = 0;
    it->refed = it->inflight = 0;
    it->len = n;
    memcpy(it->pkt, p, n);
    if (lead) {
        /* fed right after its leader, in the same turn */
        lead->followers++;
        if (lead->inflight) { /* the thread reads the chain: not that */
            *lead->late_tail = it;
            lead->late_tail = &it->next;
        } else {
            *lead->chain_tail = it;
            lead->chain_tail = &it->next;
        }
        log_debug("a later packet of a queued new connection: queued "
                  "behind it (%d)", lead->followers);
    } else if (q->tail) {
        q->tail->next = it;
        q->tail = it;
    } else {
        q->head = q->tail = it;
    }
    q->n++;
    q->bytes += n;
    /* check_cb runs after the turn's reads: a check watcher started
     * during them waits for the next turn, so the idle watcher keeps
     * that turn from sleeping (with threads: unless they are all busy,
     * and their hand-back wakes the loop) */
    if (!lead) {
        if (!ev_is_active(&q->check))
            ev_check_start(ep->loop, &q->check);
        if (!ev_is_active(&q->idle) &&
            !(offload_running(&q->pool) && offload_full(&q->pool)))
            ev_idle_start(ep->loop, &q->idle);
    }
    return 0;
}

void quic_hsq_clear(struct quic_endpoint *ep)
{
    struct quic_hsq_item *it;

    while ((it = pop(&ep->hsq)))
        item_drop(ep, it);
    /* and what the threads hold: joined, their connections discarded */
    ep->hsq.stopping = 1;
    offload_stop(&ep->hsq.pool);
    ep->hsq.stopping = 0;
    if (ep->loop)
        stop_watchers(ep);
}
