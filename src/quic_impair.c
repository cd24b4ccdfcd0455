/*
 * quic_impair: the client endpoint's simulated bad path (tests and
 * benchmarks: --reorder, --dup, --delay beside --loss), one impair.c
 * queue per direction of each connection, emptied by one libev timer per
 * connection.  Only when an impairment is on (ep->impairing): otherwise
 * the write loop and the read path never come here, and nothing is
 * copied.  Held packets go with their connection.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quic_internal.h"

enum { TX, RX };

struct quic_impair {
    struct quic_conn *qc;
    ev_timer timer;
    struct impair_queue q[2];
};

void quic_endpoint_set_impair(struct quic_endpoint *ep,
                              const struct impair_cfg *c, uint64_t seed)
{
    ep->impair = *c;
    ep->impairing = impair_active(c);
    ep->impair_rng = seed ? seed : 0x2545f4914f6cdd1dULL;
}

static int fraction(const char *opt, const char *val, double *out, char *err,
                    size_t errlen)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(val, &end);
    if (errno || end == val || *end || !(v >= 0 && v <= 0.5)) {
        snprintf(err, errlen, "%s is a fraction, 0 to 0.5", opt);
        return -1;
    }
    *out = v;
    return 1;
}

int quic_impair_option(struct impair_cfg *c, const char *opt, const char *val,
                       char *err, size_t errlen)
{
    unsigned long d, j = 0;
    char *end;

    if (strcmp(opt, "--reorder") == 0)
        return fraction(opt, val, &c->reorder, err, errlen);
    if (strcmp(opt, "--dup") == 0)
        return fraction(opt, val, &c->dup, err, errlen);
    if (strcmp(opt, "--delay") != 0)
        return 0;
    errno = 0;
    d = strtoul(val, &end, 10);
    if (!errno && end != val && *end == ':') {
        const char *js = end + 1;

        j = strtoul(js, &end, 10);
        if (end == js)
            end = (char *)val; /* "10:" */
    }
    if (errno || end == val || *end || val[0] == '-' || d > 10000 ||
        j > 10000) {
        snprintf(err, errlen, "%s is MS[:JITTER_MS], each 0 to 10000", opt);
        return -1;
    }
    c->delay_ns = (uint64_t)d * 1000000u;
    c->jitter_ns = (uint64_t)j * 1000000u;
    return 1;
}

void quic_impair_summary(const struct quic_endpoint *ep, char *buf,
                         size_t len, int json)
{
    static const char *dirs[] = {"sent", "received"};
    size_t off = 0;

    for (int d = 0; d < 2 && off < len; d++) {
        const struct impair_stats *st = &ep->impair_stats[d];
        int k;

        k = snprintf(buf + off, len - off,
                     json ? "%s\"%s\":{\"lost\":%llu,\"packets\":%llu,"
                            "\"delayed\":%llu,\"reordered\":%llu,"
                            "\"duplicated\":%llu,\"overflow\":%llu}%s"
                          : "%s%s: %llu lost, %llu impaired: %llu delayed, "
                            "%llu reordered, %llu duplicated, %llu "
                            "dropped (queue full)%s",
                     d == 0 ? (json ? "{" : "") : (json ? "," : "; "),
                     dirs[d], (unsigned long long)ep->lost[d],
                     (unsigned long long)st->packets,
                     (unsigned long long)st->delayed,
                     (unsigned long long)st->reordered,
                     (unsigned long long)st->duplicated,
                     (unsigned long long)st->overflow,
                     d == 1 && json ? "}" : "");
        if (k < 0)
            break;
        off += (size_t)k;
    }
}

static void arm(struct quic_impair *im)
{
    struct ev_loop *loop = im->qc->ep->loop;
    uint64_t a, b, due, now;
    int ha = impair_next_due(&im->q[TX], &a) == 0;
    int hb = impair_next_due(&im->q[RX], &b) == 0;

    ev_timer_stop(loop, &im->timer);
    if (!ha && !hb)
        return;
    due = !ha ? b : !hb ? a : a < b ? a : b;
    now = quic_now();
    ev_timer_set(&im->timer, due <= now ? 0. : (double)(due - now) / 1e9, 0.);
    ev_timer_start(loop, &im->timer);
}

/* Held packets whose time has come: sent, or read as if they had just
 * arrived.  Bounded: each turn takes packets off the queues. */
static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct quic_impair *im = w->data;
    struct quic_conn *qc = im->qc;
    uint64_t now = quic_now();
    struct impair_pkt *k;

    (void)loop;
    (void)revents;
    while ((k = impair_pop(&im->q[TX], now))) {
        if (qc->state != QC_CLOSING && qc->state != QC_DRAINING &&
            qc->state != QC_DEAD)
            udp_send(k->sock, &k->local, &k->remote, k->ecn, k->data, k->len,
                     0); /* a full socket buffer: loss, as in the loop */
        free(k);
    }
    while ((k = impair_pop(&im->q[RX], now))) {
        if (qc->state != QC_DRAINING && qc->state != QC_DEAD)
            quic_conn_read(qc, k->sock, &k->local, &k->remote, k->ecn,
                           k->data, k->len);
        free(k);
    }
    /* what was read is answered (and a dead connection freed) by the
     * endpoint's write round, as after any read */
    arm(im);
}

static struct quic_impair *get(struct quic_conn *qc)
{
    struct quic_impair *im = qc->imp;

    if (im)
        return im;
    if (!(im = malloc(sizeof(*im))))
        return NULL;
    im->qc = qc;
    impair_queue_init(&im->q[TX]);
    impair_queue_init(&im->q[RX]);
    ev_timer_init(&im->timer, timer_cb, 0., 0.);
    im->timer.data = im;
    qc->imp = im;
    return im;
}

static int admit(struct quic_conn *qc, int dir, struct udp_sock *s,
                 const struct udp_addr *local, const struct udp_addr *remote,
                 unsigned ecn, const uint8_t *p, size_t n)
{
    struct quic_endpoint *ep = qc->ep;
    struct quic_impair *im = get(qc);
    struct impair_pkt tmpl;
    int pass;

    if (!im)
        return 1; /* no memory for the simulation: a clean path */
    tmpl.sock = s;
    tmpl.local = *local;
    tmpl.remote = *remote;
    tmpl.ecn = ecn;
    pass = impair_admit(&im->q[dir], &ep->impair, &ep->impair_rng,
                        &ep->impair_stats[dir], quic_now(), &tmpl, p, n);
    if (im->q[dir].n || im->q[dir].nheld)
        arm(im);
    return pass;
}

int quic_impair_tx(struct quic_conn *qc, const ngtcp2_path *path,
                   unsigned ecn, const uint8_t *p, size_t n)
{
    struct udp_addr local, remote;

    memcpy(&local.ss, path->local.addr, path->local.addrlen);
    local.len = path->local.addrlen;
    memcpy(&remote.ss, path->remote.addr, path->remote.addrlen);
    remote.len = path->remote.addrlen;
    return admit(qc, TX, path->user_data ? path->user_data : qc->sock,
                 &local, &remote, ecn, p, n);
}

int quic_impair_rx(struct quic_conn *qc, struct udp_sock *s,
                   const struct udp_addr *local,
                   const struct udp_addr *remote, unsigned ecn,
                   const uint8_t *p, size_t n)
{
    return admit(qc, RX, s, local, remote, ecn, p, n);
}

void quic_impair_free(struct quic_conn *qc)
{
    struct quic_impair *im = qc->imp;

    if (!im)
        return;
    ev_timer_stop(qc->ep->loop, &im->timer);
    impair_queue_free(&im->q[TX]);
    impair_queue_free(&im->q[RX]);
    free(im);
    qc->imp = NULL;
}
