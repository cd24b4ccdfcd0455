/*
 * quic_endpoint: the endpoint side of quic.h.  Owns the sockets and their
 * reads, the table that finds a connection by destination connection ID,
 * the accept path (version negotiation, refusals, address validation by
 * Retry and NEW_TOKEN tokens), stateless resets, the once-per-loop-turn
 * flush of the write list, and the client role's connected sockets.  One
 * connection's own life is quic_conn.c.
 */
#include "quic.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ngtcp2/ngtcp2_crypto.h>

#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "quic_internal.h"
#include "siphash.h"
#include "tls.h"
#include "wire.h"

/* recvmmsg calls per readiness event: UDP_BATCH messages each, a fair
 * share before other sockets and timers get their turn */
#define MAX_READS 8

struct quic_cid_entry {
    ngtcp2_cid cid;
    struct quic_conn *qc;
    struct quic_cid_entry *next;
};

/* ---- connection ID table ---- */

/* Keyed: a client's first DCID (the odcid, kept in the table for its
 * handshake) is its own choice; with a hash anyone can compute, clients
 * could file many in one chain and make every lookup there walk it. */
static size_t cid_hash(const struct quic_endpoint *ep, const uint8_t *p,
                       size_t n)
{
    return (size_t)siphash24(ep->cid_k0, ep->cid_k1, p, n);
}

int quic_cid_table_init(struct quic_endpoint *ep, size_t nbuckets)
{
    ep->ncid_buckets = nbuckets;
    ep->ncids = 0;
    if (!(ep->cids = calloc(nbuckets, sizeof(*ep->cids))) ||
        siphash_key_new(&ep->cid_k0, &ep->cid_k1) < 0) {
        free(ep->cids);
        ep->cids = NULL;
        return -1;
    }
    return 0;
}

void quic_cid_table_free(struct quic_endpoint *ep)
{
    if (!ep->cids)
        return;
    for (size_t i = 0; i < ep->ncid_buckets; i++) {
        struct quic_cid_entry *e = ep->cids[i], *next;

        for (; e; e = next) {
            next = e->next;
            free(e);
        }
    }
    free(ep->cids);
    ep->cids = NULL;
    ep->ncids = 0;
}

size_t quic_cid_longest_chain(const struct quic_endpoint *ep)
{
    size_t most = 0;

    for (size_t i = 0; i < ep->ncid_buckets; i++) {
        size_t n = 0;

        for (const struct quic_cid_entry *e = ep->cids[i]; e; e = e->next)
            n++;
        if (n > most)
            most = n;
    }
    return most;
}

static struct quic_cid_entry **cid_slot(struct quic_endpoint *ep,
                                        const uint8_t *p, size_t n)
{
    struct quic_cid_entry **e =
        &ep->cids[cid_hash(ep, p, n) & (ep->ncid_buckets - 1)];

    for (; *e; e = &(*e)->next)
        if ((*e)->cid.datalen == n && memcmp((*e)->cid.data, p, n) == 0)
            break;
    return e;
}

static int cid_grow(struct quic_endpoint *ep)
{
    size_t nb = ep->ncid_buckets * 2;
    struct quic_cid_entry **nt = calloc(nb, sizeof(*nt));

    if (!nt)
        return -1;
    for (size_t i = 0; i < ep->ncid_buckets; i++) {
        struct quic_cid_entry *e = ep->cids[i], *next;

        for (; e; e = next) {
            size_t b = cid_hash(ep, e->cid.data, e->cid.datalen) & (nb - 1);

            next = e->next;
            e->next = nt[b];
            nt[b] = e;
        }
    }
    free(ep->cids);
    ep->cids = nt;
    ep->ncid_buckets = nb;
    return 0;
}

int quic_cid_add(struct quic_endpoint *ep, const ngtcp2_cid *cid,
                 struct quic_conn *qc)
{
    struct quic_cid_entry **slot, *e;

    if (ep->ncids >= ep->ncid_buckets && cid_grow(ep) < 0)
        return -1;
    slot = cid_slot(ep, cid->data, cid->datalen);
    if (*slot) {
        (*slot)->qc = qc;
        return 0;
    }
    e = malloc(sizeof(*e));
    if (!e)
        return -1;
    e->cid = *cid;
    e->qc = qc;
    e->next = NULL;
    *slot = e;
    ep->ncids++;
    return 0;
}

void quic_cid_remove(struct quic_endpoint *ep, const ngtcp2_cid *cid)
{
    struct quic_cid_entry **slot = cid_slot(ep, cid->data, cid->datalen), *e;

    if (!(e = *slot))
        return;
    *slot = e->next;
    free(e);
    ep->ncids--;
}

/* Every entry of a connection, the slow way (when its CIDs cannot be
 * listed): none may outlive it. */
void quic_cid_remove_conn(struct quic_endpoint *ep, const struct quic_conn *qc)
{
    for (size_t i = 0; i < ep->ncid_buckets; i++) {
        struct quic_cid_entry **e = &ep->cids[i];

        while (*e) {
            if ((*e)->qc == qc) {
                struct quic_cid_entry *gone = *e;

                *e = gone->next;
                free(gone);
                ep->ncids--;
            } else {
                e = &(*e)->next;
            }
        }
    }
}

static struct quic_conn *cid_find(struct quic_endpoint *ep, const uint8_t *p,
                                  size_t n)
{
    struct quic_cid_entry *e = *cid_slot(ep, p, n);

    return e ? e->qc : NULL;
}

struct quic_conn *quic_cid_lookup(struct quic_endpoint *ep, const uint8_t *p,
                                  size_t n)
{
    return cid_find(ep, p, n);
}

/* ---- reading ---- */

static void send_version_negotiation(struct quic_endpoint *ep,
                                     struct udp_sock *s,
                                     const struct udp_addr *local,
                                     const struct udp_addr *remote,
                                     const ngtcp2_version_cid *vc)
{
    uint8_t out[256], rnd;
    uint32_t sv[] = {NGTCP2_PROTO_VER_V1, NGTCP2_PROTO_VER_V2};
    ngtcp2_ssize n;

    quic_cb_rand(&rnd, 1, NULL);
    n = ngtcp2_pkt_write_version_negotiation(out, sizeof(out), rnd, vc->scid,
                                             vc->scidlen, vc->dcid,
                                             vc->dcidlen, sv, 2);
    if (n > 0)
        udp_send(s, local, remote, 0, out, (size_t)n, 0);
    (void)ep;
}

/* A CONNECTION_CLOSE with `code` answering an Initial, without making a
 * connection: CONNECTION_REFUSED (over max_connections, shutting down) or
 * INVALID_TOKEN. */
static void send_initial_close(struct udp_sock *s,
                               const struct udp_addr *local,
                               const struct udp_addr *remote,
                               const ngtcp2_pkt_hd *hd, uint64_t code)
{
    uint8_t out[NGTCP2_MAX_UDP_PAYLOAD_SIZE];
    ngtcp2_ssize n;

    /* The client's own DCID keys the Initial packet: the only keys it can
     * decrypt with before it has heard from us. */
    n = ngtcp2_crypto_write_connection_close(out, sizeof(out), hd->version,
                                             &hd->scid, &hd->dcid, code, NULL,
                                             0);
    if (n > 0)
        udp_send(s, local, remote, 0, out, (size_t)n, 0);
}

/*
 * Address validation (RFC 9000 §8.1.2).  Until a client has proved that it
 * receives at the address it sends from, a spoofed Initial costs us a
 * connection's state and a TLS handshake; a Retry costs the client one
 * round trip and us nothing but this stateless token.  `retry = auto`
 * (the default) spends that round trip only while retry_handshakes or more
 * handshakes are in progress, which a flood of spoofed Initials causes and
 * normal load does not.
 */
#define RETRY_TOKEN_TIMEOUT (10 * NGTCP2_SECONDS)

static void send_retry(struct quic_endpoint *ep, struct udp_sock *s,
                       const struct udp_addr *local,
                       const struct udp_addr *remote, const ngtcp2_pkt_hd *hd,
                       const char *peer)
{
    uint8_t token[NGTCP2_CRYPTO_MAX_RETRY_TOKENLEN2];
    uint8_t out[NGTCP2_MAX_UDP_PAYLOAD_SIZE];
    ngtcp2_ssize tokenlen, n;
    ngtcp2_cid scid;

    /* the client's next Initial comes back to this worker */
    if (quic_cid_fill(ep, &scid, SCID_LEN) < 0)
        return;
    tokenlen = ngtcp2_crypto_generate_retry_token2(
        token, ep->static_secret, sizeof(ep->static_secret), hd->version,
        (const ngtcp2_sockaddr *)&remote->ss, remote->len, &scid, &hd->dcid,
        quic_now());
    if (tokenlen < 0)
        return;
    n = ngtcp2_crypto_write_retry(out, sizeof(out), hd->version, &hd->scid,
                                  &scid, &hd->dcid, token, (size_t)tokenlen);
    if (n <= 0)
        return;
    log_debug("retry sent to %s (%zu handshakes in progress)", peer,
              ep->nhandshakes);
    metrics.retry_sent++;
    udp_send(s, local, remote, 0, out, (size_t)n, 0);
}

/*
 * What a new client's Initial needs before it gets a connection (see
 * enum addr_check; on ADDR_RETRY *odcid is the DCID of its first Initial).
 * A Retry token is honoured in every mode: the client has already accepted
 * our Retry and checks that the handshake says so.
 */
static enum addr_check address_check(struct quic_endpoint *ep,
                                     struct udp_sock *s,
                                     const struct udp_addr *local,
                                     const struct udp_addr *remote,
                                     const ngtcp2_pkt_hd *hd,
                                     ngtcp2_cid *odcid)
{
    const struct config *cfg = ep->cfg;
    char a[80];
    /* for the debug lines only: not formatted otherwise */
    const char *peer =
        log_level >= LOG_LVL_DEBUG
            ? udp_addr_str((const struct sockaddr *)&remote->ss, a, sizeof(a))
            : "";
    int rv;

    if (hd->tokenlen && hd->token[0] == NGTCP2_CRYPTO_TOKEN_MAGIC_REGULAR) {
        if (ngtcp2_crypto_verify_regular_token(
                hd->token, hd->tokenlen, ep->static_secret,
                sizeof(ep->static_secret),
                (const ngtcp2_sockaddr *)&remote->ss, remote->len,
                NEW_TOKEN_TIMEOUT, quic_now()) == 0 ||
            (quic_endpoint_old_secret(ep) &&
             ngtcp2_crypto_verify_regular_token(
                 hd->token, hd->tokenlen, ep->old_secret,
                 sizeof(ep->old_secret),
                 (const ngtcp2_sockaddr *)&remote->ss, remote->len,
                 NEW_TOKEN_TIMEOUT, quic_now()) == 0)) {
            log_debug("%s: address validated by a NEW_TOKEN token", peer);
            return ADDR_NEW_TOKEN;
        }
        /* expired, another address, not ours: as if there were none
         * (RFC 9000 §8.1.3: never a reason to close) */
        log_debug("%s: NEW_TOKEN token not valid here, ignored", peer);
    } else if (hd->tokenlen &&
               hd->token[0] == NGTCP2_CRYPTO_TOKEN_MAGIC_RETRY2) {
        rv = ngtcp2_crypto_verify_retry_token2(
            odcid, hd->token, hd->tokenlen, ep->static_secret,
            sizeof(ep->static_secret), hd->version,
            (const ngtcp2_sockaddr *)&remote->ss, remote->len, &hd->dcid,
            RETRY_TOKEN_TIMEOUT, quic_now());
        if (rv != 0 && quic_endpoint_old_secret(ep))
            rv = ngtcp2_crypto_verify_retry_token2(
                odcid, hd->token, hd->tokenlen, ep->old_secret,
                sizeof(ep->old_secret), hd->version,
                (const ngtcp2_sockaddr *)&remote->ss, remote->len, &hd->dcid,
                RETRY_TOKEN_TIMEOUT, quic_now());
        if (rv == 0)
            return ADDR_RETRY;
        if (rv == NGTCP2_CRYPTO_ERR_VERIFY_TOKEN) {
            /* ours, but expired or for another address: the client cannot
             * take a second Retry, so it is told (RFC 9000 §8.1.2) */
            log_debug("%s: retry token expired or not for this address",
                      peer);
            metrics.connections_refused[METRICS_REFUSED_INVALID_TOKEN]++;
            send_initial_close(s, local, remote, hd, NGTCP2_INVALID_TOKEN);
            return ADDR_ANSWERED;
        }
        /* unreadable: as if there were none */
        log_debug("%s: unreadable retry token ignored", peer);
    }
    if (cfg->retry == CONFIG_RETRY_ON ||
        (cfg->retry == CONFIG_RETRY_AUTO &&
         ep->nhandshakes + ep->hsq.n >= cfg->retry_handshakes)) {
        if (hd->type == NGTCP2_PKT_INITIAL)
            send_retry(ep, s, local, remote, hd, peer);
        return ADDR_ANSWERED; /* 0-RTT before the Initial: dropped */
    }
    return ADDR_UNPROVEN;
}

/*
 * A short-header packet for a connection this process does not have: the
 * daemon was restarted, or the connection is gone and the peer missed the
 * close.  A stateless reset (RFC 9000 §10.3) tells the peer now rather than
 * after its idle timeout; the token matches the one we handed out because
 * static_secret survives restarts (tls_ctx_secret).  Each reset is smaller
 * than the packet that caused it, so two endpoints cannot keep resetting
 * each other, and at most RESETS_PER_S leave per second, so a flood of
 * unknown packets costs bounded work and sends bounded bytes.
 */
#define RESETS_PER_S 1000
/* ngtcp2_pkt_write_stateless_reset() writes randlen + token bytes (the
 * first byte is one of the random ones).  The smallest packet a peer can
 * send us is 1 + our CID + 4 (packet number) + 16 (sample): 39 bytes, and
 * the reset must be one byte shorter than a trigger of up to 43 bytes;
 * larger ones get 42 bytes, the size of a short packet with a 20-byte
 * CID and a minimal payload, as RFC 9000 §10.3 suggests. */
#define RESET_MIN_TRIGGER (SCID_LEN + 21)
#define RESET_MAX_RANDLEN (NGTCP2_MAX_CIDLEN + 22 - NGTCP2_STATELESS_RESET_TOKENLEN)

static void send_stateless_reset(struct quic_endpoint *ep, struct udp_sock *s,
                                 const struct udp_addr *local,
                                 const struct udp_addr *remote,
                                 const uint8_t *dcid, size_t dcidlen,
                                 size_t pktlen, const uint8_t *secret)
{
    uint8_t token[NGTCP2_STATELESS_RESET_TOKENLEN], rnd[RESET_MAX_RANDLEN];
    uint8_t out[RESET_MAX_RANDLEN + NGTCP2_STATELESS_RESET_TOKENLEN];
    size_t randlen = RESET_MAX_RANDLEN;
    double now = ev_now(ep->loop);
    ngtcp2_ssize n;
    ngtcp2_cid cid;

    if (pktlen < RESET_MIN_TRIGGER || dcidlen != SCID_LEN)
        return;
    if (now - ep->reset_window >= 1.0) {
        ep->reset_window = now;
        ep->resets = 0;
    }
    if (ep->resets >= RESETS_PER_S)
        return;
    if (pktlen - 1 < RESET_MAX_RANDLEN + NGTCP2_STATELESS_RESET_TOKENLEN)
        randlen = pktlen - 1 - NGTCP2_STATELESS_RESET_TOKENLEN;
    ngtcp2_cid_init(&cid, dcid, dcidlen);
    if (ngtcp2_crypto_generate_stateless_reset_token(token, secret, 32,
                                                     &cid) != 0 ||
        quic_fill_random(rnd, randlen) < 0)
        return;
    n = ngtcp2_pkt_write_stateless_reset(out, sizeof(out), token, rnd,
                                         randlen);
    if (n <= 0)
        return;
    ep->resets++;
    metrics.stateless_resets_sent++;
    if (log_level >= LOG_LVL_DEBUG) {
        char a[80];

        log_debug("stateless reset to %s: no connection for its %zu-byte "
                  "packet",
                  udp_addr_str((const struct sockaddr *)&remote->ss, a,
                               sizeof(a)),
                  pktlen);
    }
    udp_send(s, local, remote, 0, out, (size_t)n, 0);
}

/*
 * A new connection refused (or dropped) by the per-address limits:
 * counted, and logged at debug with the address, REFUSE_LOG_PER_S lines a
 * second at most (a flood must not flood the log); the next line that
 * gets out says how many were left out.
 */
#define REFUSE_LOG_PER_S 10

static void refuse_note(struct quic_endpoint *ep, const struct addrlim_key *k,
                        enum addrlim_verdict v)
{
    static const char *const why[] = {
        [ADDRLIM_RATE] = "over connection_rate_per_address: dropped",
        [ADDRLIM_CONNECTIONS] = "max_connections_per_address reached",
        [ADDRLIM_HANDSHAKES] = "max_handshakes_per_address reached",
        [ADDRLIM_FULL] = "the address table is full",
    };
    static const enum metrics_refused label[] = {
        [ADDRLIM_RATE] = METRICS_REFUSED_ADDR_RATE,
        [ADDRLIM_CONNECTIONS] = METRICS_REFUSED_ADDR_CONNECTIONS,
        [ADDRLIM_HANDSHAKES] = METRICS_REFUSED_ADDR_HANDSHAKES,
        [ADDRLIM_FULL] = METRICS_REFUSED_ADDR_TABLE_FULL,
    };
    double now = ev_now(ep->loop);
    char a[80];

    metrics.connections_refused[label[v]]++;
    if (log_level < LOG_LVL_DEBUG)
        return;
    if (now - ep->alim_log_window >= 1.0) {
        ep->alim_log_window = now;
        ep->alim_logged = 0;
    }
    if (ep->alim_logged >= REFUSE_LOG_PER_S) {
        ep->alim_unlogged++;
        return;
    }
    ep->alim_logged++;
    if (ep->alim_unlogged)
        log_debug("refusing a connection from %s: %s (and %llu more "
                  "refusals not logged)",
                  addrlim_key_str(k, a, sizeof(a)), why[v],
                  (unsigned long long)ep->alim_unlogged);
    else
        log_debug("refusing a connection from %s: %s",
                  addrlim_key_str(k, a, sizeof(a)), why[v]);
    ep->alim_unlogged = 0;
}

/* The per-address limits of a configuration.  The table holds every
 * address with a connection (max_connections at most) and as many again
 * that only remember a refilling bucket. */
static void alim_limits(struct quic_endpoint *ep, const struct config *cfg)
{
    struct addrlim_limits l = {
        .connections = cfg->max_connections_per_address,
        .handshakes = cfg->max_handshakes_per_address,
        .sessions = cfg->max_sessions_per_address,
        .rate = (double)cfg->connection_rate_per_address,
        .burst = (double)cfg->connection_burst_per_address,
        .capacity = 2 * cfg->max_connections + 1024,
    };

    addrlim_set_limits(&ep->alim, &l);
}

static void read_pkt(struct quic_endpoint *ep, struct udp_sock *s,
                     const struct udp_addr *local,
                     const struct udp_addr *remote, unsigned ecn,
                     const uint8_t *p, size_t n)
{
    ngtcp2_version_cid vc;
    struct quic_conn *qc;
    int rv;

    rv = ngtcp2_pkt_decode_version_cid(&vc, p, n, SCID_LEN);
    if (rv == NGTCP2_ERR_VERSION_NEGOTIATION) {
        send_version_negotiation(ep, s, local, remote, &vc);
        return;
    }
    if (rv != 0)
        return; /* not QUIC, or garbage: silently dropped */

    qc = cid_find(ep, vc.dcid, vc.dcidlen);
    if (!qc && ep->role == QUIC_SERVER) {
        ngtcp2_pkt_hd hd;
        ngtcp2_cid odcid, dcid;
        enum addr_check check;
        struct addrlim_key key;
        struct addrlim_entry *entry = NULL;
        struct quic_hsq_item *lead;
        int have_key;

        /* a later packet of a connection still waiting in the queue (a
         * ClientHello in two Initials, a retransmission): behind it.  Only
         * long headers can be one (a client has no CID of ours before its
         * handshake starts), so short-header junk never walks the queue. */
        if ((p[0] & 0x80) && ep->hsq.n &&
            (lead = quic_hsq_find(ep, vc.dcid, vc.dcidlen))) {
            ngtcp2_cid_init(&dcid, vc.dcid, vc.dcidlen);
            quic_hsq_push(ep, s, local, remote, ecn, p, n, &dcid,
                          ADDR_UNPROVEN, NULL, NULL, lead);
            return;
        }
        if (ngtcp2_accept(&hd, p, n) != 0) {
            /* not a valid Initial: no state is created */
            if (!(p[0] & 0x80)) {
                send_stateless_reset(ep, s, local, remote, vc.dcid,
                                     vc.dcidlen, n, ep->static_secret);
                /* the CID may have been issued under the previous key:
                 * a second reset, each smaller than the trigger, each
                 * within the rate limit (RFC 9000 §10.3 allows 3x) */
                if (quic_endpoint_old_secret(ep))
                    send_stateless_reset(ep, s, local, remote, vc.dcid,
                                         vc.dcidlen, n, ep->old_secret);
            }
            return;
        }
        /* an address a reload removed: its socket lives on only for the
         * connections it already has */
        if (ep->sock_state[s - ep->socks] == QUIC_SOCK_RETIRED)
            return;
        have_key = addrlim_key_of((const struct sockaddr *)&remote->ss,
                                  &key) == 0;
        if (have_key && addrlim_over_rate(&ep->alim, &key, ev_now(ep->loop))) {
            /* no answer at all, not even a Retry: whatever sends
             * faster than its rate gets nothing back to amplify */
            refuse_note(ep, &key, ADDRLIM_RATE);
            return;
        }
        if (ep->shutting_down ||
            ep->nconns + ep->hsq.n >= ep->cfg->max_connections) {
            log_debug("refusing a connection: %s",
                      ep->shutting_down ? "shutting down"
                                         : "max_connections reached");
            metrics.connections_refused[ep->shutting_down
                                            ? METRICS_REFUSED_SHUTTING_DOWN
                                            : METRICS_REFUSED_MAX_CONNECTIONS]++;
            send_initial_close(s, local, remote, &hd,
                               NGTCP2_CONNECTION_REFUSED);
            return;
        }
        check = address_check(ep, s, local, remote, &hd, &odcid);
        if (check == ADDR_ANSWERED)
            return;
        if (have_key) {
            enum addrlim_verdict v =
                addrlim_admit(&ep->alim, &key, ev_now(ep->loop), &entry);

            if (v != ADDRLIM_OK) {
                refuse_note(ep, &key, v);
                if (v != ADDRLIM_RATE)
                    send_initial_close(s, local, remote, &hd,
                                       NGTCP2_CONNECTION_REFUSED);
                return;
            }
        }
        /* the handshake itself starts from the queue, between the
         * packets of established connections (quic_hsq.c) */
        if (quic_hsq_push(ep, s, local, remote, ecn, p, n, &hd.dcid, check,
                          &odcid, entry, NULL) < 0 &&
            entry)
            addrlim_conn_gone(&ep->alim, entry, 1, ev_now(ep->loop));
        return;
    }
    if (!qc)
        return;

    quic_conn_input(qc, s, local, remote, ecn, p, n);
}

static void rx_init(struct quic_endpoint *ep)
{
    for (size_t i = 0; i < UDP_BATCH; i++) {
        ep->rx[i].buf = ep->rxbuf[i];
        ep->rx[i].cap = sizeof(ep->rxbuf[i]);
    }
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct quic_endpoint *ep = w->data;
    struct udp_sock *s = &ep->socks[w - ep->io];

    (void)loop;
    (void)revents;
    for (int i = 0; i < MAX_READS; i++) {
        int got = udp_recv_batch(s, ep->rx, UDP_BATCH);

        for (int k = 0; k < got; k++) {
            const struct udp_msg *m = &ep->rx[k];

            metrics.udp_bytes_received += m->len;
            /* GRO: several packets of one sender in one message */
            for (size_t off = 0; off < m->len; off += m->seg)
                read_pkt(ep, s, &m->local, &m->remote, m->ecn, m->buf + off,
                         m->len - off < m->seg ? m->len - off : m->seg);
        }
        if (got < UDP_BATCH)
            break;
    }
}

/* Once per loop turn, before sleeping: write every connection that has
 * something to say, then collect what was closed meanwhile. */
/*
 * Round robin: each round takes the connections dirty now and writes each
 * once (a pacing quantum at most); what their writing makes dirty again
 * waits for the next round, so one busy connection cannot hold the others
 * back.  Rounds are bounded: what is left is written at its timer or the
 * next loop turn.
 */
#define PREPARE_ROUNDS 256

void quic_endpoint_flush(struct quic_endpoint *ep)
{
    for (int r = 0; r < PREPARE_ROUNDS && ep->dirty; r++) {
        ep->round = ep->dirty;
        ep->dirty = NULL;
        while (ep->round) {
            struct quic_conn *qc = ep->round;

            ep->round = qc->dirty_next;
            qc->dirty = 0;
            /* both done here, outside ngtcp2's and nghttp3's callbacks */
            if (qc->tls_release)
                quic_conn_release_tls(qc);
            if (qc->ready == 1 && qc->state == QC_ACTIVE) {
                qc->ready = 2;
                if (qc->ops && qc->ops->ready)
                    qc->ops->ready(qc);
            }
            quic_conn_write(qc);
            quic_conn_settle(qc);
        }
        /* what the round wrote leaves before the next round writes */
        quic_endpoint_tx_flush(ep);
    }
    quic_endpoint_tx_flush(ep); /* timers', written since the last turn */
}

static void prepare_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)loop;
    (void)revents;
    quic_endpoint_flush(w->data);
}

/* Binds slot i to l (not yet read: sock_start()).  0 or -1 with err. */
static int sock_open(struct quic_endpoint *ep, size_t i,
                     const struct config_listen *l, const struct config *cfg,
                     int fd, char *err, size_t errlen)
{
    char a[80];

    if (fd >= 0 ? udp_adopt(&ep->socks[i], fd, err, errlen) < 0
                : udp_open(&ep->socks[i], (const struct sockaddr *)&l->addr,
                           l->addrlen, err, errlen) < 0)
        return -1;
    ep->sock_addr[i] = *l;
    if (cfg->socket_buffer_bytes &&
        (size_t)udp_set_buffers(&ep->socks[i], cfg->socket_buffer_bytes) <
            cfg->socket_buffer_bytes)
        log_warn("udp %s: receive buffer capped by net.core.rmem_max",
                 udp_addr_str((struct sockaddr *)&ep->socks[i].bound.ss, a,
                              sizeof(a)));
    return 0;
}

static void sock_start(struct quic_endpoint *ep, size_t i)
{
    char a[80];

    ev_io_init(&ep->io[i], io_cb, ep->socks[i].fd, EV_READ);
    ep->io[i].data = ep;
    ev_io_start(ep->loop, &ep->io[i]);
    ep->sock_state[i] = QUIC_SOCK_LISTEN;
    log_info("listening on udp %s",
             udp_addr_str((struct sockaddr *)&ep->socks[i].bound.ss, a,
                          sizeof(a)));
}

static void sock_close(struct quic_endpoint *ep, size_t i)
{
    if (ep->sock_state[i] == QUIC_SOCK_FREE)
        return;
    quic_endpoint_tx_flush(ep);
    ev_io_stop(ep->loop, &ep->io[i]);
    udp_close(&ep->socks[i]);
    ep->sock_state[i] = QUIC_SOCK_FREE;
}

int quic_server_init(struct quic_endpoint *ep, struct ev_loop *loop,
                     struct config *cfg, struct tls_ctx *tls, char *err,
                     size_t errlen)
{
    return quic_server_init_fds(ep, loop, cfg, tls, NULL, err, errlen);
}

int quic_server_init_fds(struct quic_endpoint *ep, struct ev_loop *loop,
                         struct config *cfg, struct tls_ctx *tls,
                         const int *fds, char *err, size_t errlen)
{
    memset(ep, 0, sizeof(*ep));
    LIST_INIT(&ep->conns);
    ep->loop = loop;
    pool_thread_own(); /* the loop's thread: its streams come from pools */
    rx_init(ep);
    quic_hsq_init(ep);
    ep->cfg = config_ref(cfg);
    ep->tls = tls_ctx_ref(tls);
    if (quic_cid_table_init(ep, 256) < 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    memcpy(ep->static_secret, tls_ctx_secret(tls), sizeof(ep->static_secret));
    {
        uint8_t key[16];

        /* a key nobody outside knows: no address can be chosen to land
         * in a given chain of the table */
        if (quic_fill_random(key, sizeof(key)) < 0 ||
            addrlim_init(&ep->alim, 2 * cfg->max_connections + 1024, key) <
                0) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        alim_limits(ep, cfg);
    }
    for (size_t i = 0; i < cfg->nlisten; i++) {
        if (sock_open(ep, i, &cfg->listen[i], cfg, fds ? fds[i] : -1, err,
                      errlen) < 0)
            goto fail;
        sock_start(ep, i);
    }
    ev_prepare_init(&ep->prepare, prepare_cb);
    ep->prepare.data = ep;
    ev_prepare_start(loop, &ep->prepare);
    if (quic_hsq_start(ep, err, errlen) < 0)
        goto fail;
    return 0;

fail:
    quic_endpoint_free(ep);
    return -1;
}

void quic_server_close_all(struct quic_endpoint *ep)
{
    struct quic_conn *qc, *next;

    for (qc = LIST_FIRST(&ep->conns); qc; qc = next) {
        next = LIST_NEXT(qc, link);
        if (qc->state == QC_HANDSHAKE || qc->state == QC_ACTIVE) {
            quic_conn_write(qc); /* flush CLOSE capsules already queued */
            quic_conn_close_app(qc, WIRE_H3_NO_ERROR, "server shutting down");
        }
    }
    quic_endpoint_tx_flush(ep);
}

void quic_server_shutdown(struct quic_endpoint *ep)
{
    struct quic_conn *qc;

    ep->shutting_down = 1;
    quic_hsq_clear(ep); /* not started: their clients retry, and are refused */
    LIST_FOREACH(qc, &ep->conns, link) {
        if (qc->state != QC_ACTIVE && qc->state != QC_HANDSHAKE)
            continue;
        h3_goaway(qc);
        wt_conn_drain(qc);
        quic_conn_want_write(qc);
    }
    if (ep->nconns == 0)
        ev_break(ep->loop, EVBREAK_ALL);
}

/* Does slot i's address appear in cfg? */
static int sock_wanted(const struct quic_endpoint *ep, size_t i,
                       const struct config *cfg)
{
    for (size_t k = 0; k < cfg->nlisten; k++)
        if (config_listen_same(&ep->sock_addr[i], &cfg->listen[k]))
            return 1;
    return 0;
}

static size_t sock_users(const struct quic_endpoint *ep, size_t i)
{
    const struct quic_conn *qc;
    size_t n = 0;

    LIST_FOREACH(qc, &ep->conns, link)
        n += qc->sock == &ep->socks[i];
    return n;
}

void quic_endpoint_sweep(struct quic_endpoint *ep)
{
    for (size_t i = 0; i < QUIC_MAX_SOCKS; i++)
        if (ep->sock_state[i] == QUIC_SOCK_RETIRED && sock_users(ep, i) == 0) {
            log_info("udp %s: closed (its last connection ended)",
                     ep->sock_addr[i].text);
            sock_close(ep, i);
        }
}

int quic_endpoint_old_secret(const struct quic_endpoint *ep)
{
    return ep->old_secret_until > 0 && ev_now(ep->loop) < ep->old_secret_until;
}

int quic_server_reload(struct quic_endpoint *ep, struct config *cfg,
                       struct tls_ctx *tls, char *err, size_t errlen)
{
    int fresh[QUIC_MAX_SOCKS] = {0};
    const uint8_t *secret = tls_ctx_secret(tls);

    /* First what can fail: bind the new addresses (a retired socket of
     * the same address is simply taken back).  Any failure undoes them. */
    for (size_t k = 0; k < cfg->nlisten; k++) {
        size_t i, slot = QUIC_MAX_SOCKS;

        for (i = 0; i < QUIC_MAX_SOCKS; i++) {
            if (ep->sock_state[i] != QUIC_SOCK_FREE &&
                config_listen_same(&ep->sock_addr[i], &cfg->listen[k]))
                break;
            if (ep->sock_state[i] == QUIC_SOCK_FREE && !fresh[i] &&
                slot == QUIC_MAX_SOCKS)
                slot = i;
        }
        if (i < QUIC_MAX_SOCKS)
            continue;
        if (slot == QUIC_MAX_SOCKS) {
            snprintf(err, errlen,
                     "listen %s: no socket free (removed addresses are "
                     "still held by their connections)",
                     cfg->listen[k].text);
            goto undo;
        }
        if (sock_open(ep, slot, &cfg->listen[k], cfg, -1, err, errlen) < 0)
            goto undo;
        fresh[slot] = 1;
    }

    /* Then commit: nothing below fails. */
    for (size_t i = 0; i < QUIC_MAX_SOCKS; i++) {
        if (fresh[i]) {
            sock_start(ep, i);
        } else if (ep->sock_state[i] == QUIC_SOCK_LISTEN &&
                   !sock_wanted(ep, i, cfg)) {
            ep->sock_state[i] = QUIC_SOCK_RETIRED;
            log_info("udp %s: no longer listening (%zu connections keep "
                     "it until they end)",
                     ep->sock_addr[i].text, sock_users(ep, i));
        } else if (ep->sock_state[i] == QUIC_SOCK_RETIRED &&
                   sock_wanted(ep, i, cfg)) {
            ep->sock_state[i] = QUIC_SOCK_LISTEN;
            log_info("udp %s: listening again", ep->sock_addr[i].text);
        }
    }
    if (memcmp(secret, ep->static_secret, sizeof(ep->static_secret)) != 0) {
        /* tokens live an hour at most (NEW_TOKEN_TIMEOUT); past that the
         * previous key's secret has nothing left to validate */
        memcpy(ep->old_secret, ep->static_secret, sizeof(ep->old_secret));
        ep->old_secret_until =
            ev_now(ep->loop) + (double)NEW_TOKEN_TIMEOUT / NGTCP2_SECONDS;
        memcpy(ep->static_secret, secret, sizeof(ep->static_secret));
        log_info("new key: tokens and stateless resets of the previous "
                 "one are still honoured for an hour");
    }
    config_unref(ep->cfg);
    ep->cfg = config_ref(cfg);
    alim_limits(ep, cfg); /* counts stay: they are live connections */
    tls_ctx_free(ep->tls);
    ep->tls = tls_ctx_ref(tls);
    quic_endpoint_sweep(ep);
    return 0;

undo:
    for (size_t i = 0; i < QUIC_MAX_SOCKS; i++)
        if (fresh[i])
            udp_close(&ep->socks[i]);
    return -1;
}

void quic_endpoint_free(struct quic_endpoint *ep)
{
    quic_hsq_clear(ep);
    while (!LIST_EMPTY(&ep->conns))
        quic_conn_free(LIST_FIRST(&ep->conns));
    for (size_t i = 0; i < QUIC_MAX_SOCKS; i++)
        sock_close(ep, i);
    config_unref(ep->cfg);
    ep->cfg = NULL;
    tls_ctx_free(ep->tls);
    ep->tls = NULL;
    if (ep->loop)
        ev_prepare_stop(ep->loop, &ep->prepare);
    quic_cid_table_free(ep);
    addrlim_free(&ep->alim);
    pool_drain_all();
}

/* ---- client role ---- */

static void client_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct quic_conn *qc = w->data;
    struct quic_endpoint *ep = qc->ep;

    (void)loop;
    (void)revents;
    for (int i = 0; i < MAX_READS; i++) {
        int got = udp_recv_batch(&qc->own_sock, ep->rx, UDP_BATCH);

        for (int k = 0; k < got; k++) {
            const struct udp_msg *m = &ep->rx[k];

            for (size_t off = 0; off < m->len; off += m->seg) {
                if (qc->state == QC_DEAD || qc->state == QC_DRAINING)
                    return;
                /* rebound (a NAT's new port): ngtcp2 keeps the path it
                 * knows, as behind a real NAT */
                quic_conn_input(qc, &qc->own_sock,
                                qc->rebinds ? &qc->local : &m->local,
                                &m->remote,
                                m->ecn, m->buf + off,
                                m->len - off < m->seg ? m->len - off : m->seg);
            }
        }
        if (got < UDP_BATCH)
            break;
    }
}

int quic_conn_rebind(struct quic_conn *qc, char *err, size_t errlen)
{
    struct quic_endpoint *ep = qc->ep;
    struct udp_sock fresh;

    if (udp_connect(&fresh, (const struct sockaddr *)&qc->remote.ss,
                    qc->remote.len,
                    ep->bind_addr.ss_family
                        ? (const struct sockaddr *)&ep->bind_addr
                        : NULL,
                    err, errlen) < 0)
        return -1;
    udp_set_buffers(&fresh, ep->cfg->socket_buffer_bytes);
    ev_io_stop(ep->loop, &qc->io);
    udp_close(&qc->own_sock);
    qc->own_sock = fresh;
    qc->rebinds++;
    ev_io_set(&qc->io, qc->own_sock.fd, EV_READ);
    ev_io_start(ep->loop, &qc->io);
    quic_conn_want_write(qc);
    return 0;
}

void quic_client_init(struct quic_endpoint *ep, struct ev_loop *loop,
                      struct config *cfg, struct tls_ctx *tls)
{
    memset(ep, 0, sizeof(*ep));
    LIST_INIT(&ep->conns);
    ep->role = QUIC_CLIENT;
    ep->loop = loop;
    pool_thread_own();
    rx_init(ep);
    ep->cfg = config_ref(cfg);
    ep->tls = tls ? tls_ctx_ref(tls) : NULL;
    quic_cid_table_init(ep, 64); /* (a failure shows at the first add) */
    if (quic_fill_random(ep->static_secret, sizeof(ep->static_secret)) < 0)
        memset(ep->static_secret, 0x5a, sizeof(ep->static_secret));
    ev_prepare_init(&ep->prepare, prepare_cb);
    ep->prepare.data = ep;
    ev_prepare_start(loop, &ep->prepare);
}

int quic_client_bind(struct quic_endpoint *ep, const char *addr)
{
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ep->bind_addr;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ep->bind_addr;

    memset(&ep->bind_addr, 0, sizeof(ep->bind_addr));
    if (inet_pton(AF_INET, addr, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, addr, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        return 0;
    }
    return -1;
}

struct quic_conn *quic_connect(struct quic_endpoint *ep,
                               const struct sockaddr *remote, socklen_t len,
                               const char *host,
                               const struct quic_conn_ops *ops, void *app,
                               char *err, size_t errlen)
{
    ngtcp2_settings settings;
    ngtcp2_transport_params params;
    ngtcp2_callbacks cb;
    ngtcp2_path path;
    ngtcp2_cid dcid;
    struct quic_conn *qc;

    if (!ep->cids) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    qc = quic_conn_alloc(ep, &settings, &params);
    if (!qc) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    qc->ops = ops;
    qc->app = app;
    if (udp_connect(&qc->own_sock, remote, len,
                    ep->bind_addr.ss_family
                        ? (const struct sockaddr *)&ep->bind_addr
                        : NULL,
                    err, errlen) < 0)
        goto fail;
    qc->sock = &qc->own_sock;
    udp_set_buffers(&qc->own_sock, ep->cfg->socket_buffer_bytes);
    qc->local = qc->own_sock.bound;
    memcpy(&qc->remote.ss, remote, len);
    qc->remote.len = len;
    udp_addr_str(remote, qc->peer, sizeof(qc->peer));
    if (!(qc->host = strdup(host ? host : ""))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    dcid.datalen = SCID_LEN;
    if (ep->dcidlen >= NGTCP2_MIN_INITIAL_DCIDLEN &&
        ep->dcidlen <= NGTCP2_MAX_CIDLEN)
        ngtcp2_cid_init(&dcid, ep->dcid, ep->dcidlen);
    else if (quic_fill_random(dcid.data, dcid.datalen) < 0) {
        snprintf(err, errlen, "no randomness");
        goto fail;
    }
    settings.token = ep->token;
    settings.tokenlen = ep->tokenlen;
    quic_path_of(qc, &path);
    quic_callbacks_init(&cb, QUIC_CLIENT);
    if (ngtcp2_conn_client_new(&qc->conn, &dcid, &qc->scid, &path,
                               NGTCP2_PROTO_VER_V1, &cb, &settings, &params,
                               NULL, qc) != 0) {
        snprintf(err, errlen, "ngtcp2_conn_client_new failed");
        goto fail;
    }
    qc->tls = tls_session_new(qc->tlsctx, &qc->conn_ref, host);
    if (qc->tls)
        ngtcp2_conn_set_tls_native_handle(qc->conn, qc->tls);
    if (!qc->tls || quic_conn_link(qc) < 0) {
        snprintf(err, errlen, "TLS session set-up failed");
        goto fail;
    }
    ev_io_init(&qc->io, client_io_cb, qc->own_sock.fd, EV_READ);
    qc->io.data = qc;
    ev_io_start(ep->loop, &qc->io);
    quic_conn_want_write(qc); /* the Initial */
    return qc;

fail:
    quic_conn_unmake(qc);
    return NULL;
}
