/*
 * quic_internal: private to quic_*.c; nothing else includes it (the
 * interface of the module is quic.h).  What quic_endpoint.c (sockets, the
 * CID table, the accept path, address validation, stateless resets, the
 * client role's set-up) and quic_conn.c (one connection: ngtcp2
 * callbacks, lifetime, closing, timers, the write loop) need of each other.
 */
#ifndef WTRELAYD_QUIC_INTERNAL_H
#define WTRELAYD_QUIC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <ngtcp2/ngtcp2.h>

#include "cid.h"
#include "quic.h"
#include "udp.h"

#define SCID_LEN CID_LEN

/* How a new client's address stands (address_check()). */
enum addr_check {
    ADDR_ANSWERED = -1, /* no connection: Retry or INVALID_TOKEN sent, or
                           dropped */
    ADDR_UNPROVEN = 0,  /* go ahead, anti-amplification limit applies */
    ADDR_RETRY = 1,     /* our Retry token */
    ADDR_NEW_TOKEN = 2, /* our NEW_TOKEN token */
};

/* How long a NEW_TOKEN token of ours is honoured (see send_new_token()). */
#define NEW_TOKEN_TIMEOUT (3600 * NGTCP2_SECONDS)

/* ---- quic_endpoint.c: the connection ID table ---- */

/* An empty table of nbuckets (a power of two) under a fresh hash key:
 * 0, or -1 (out of memory, no random bytes). */
int quic_cid_table_init(struct quic_endpoint *ep, size_t nbuckets);
void quic_cid_table_free(struct quic_endpoint *ep);
/* The longest chain (tests: CIDs chosen to collide stay spread). */
size_t quic_cid_longest_chain(const struct quic_endpoint *ep);

int quic_cid_add(struct quic_endpoint *ep, const ngtcp2_cid *cid,
                 struct quic_conn *qc);
void quic_cid_remove(struct quic_endpoint *ep, const ngtcp2_cid *cid);
void quic_cid_remove_conn(struct quic_endpoint *ep, const struct quic_conn *qc);
struct quic_conn *quic_cid_lookup(struct quic_endpoint *ep, const uint8_t *p,
                                  size_t n);
/* Writes every connection that has something to say (the write list). */
void quic_endpoint_flush(struct quic_endpoint *ep);

/* ---- quic_hsq.c: new connections waiting for their handshake ---- */

void quic_hsq_init(struct quic_endpoint *ep);
/* Starts cfg->handshake_threads helper threads (none: handshakes on the
 * loop thread).  0, or -1 with a message in err. */
int quic_hsq_start(struct quic_endpoint *ep, char *err, size_t errlen);
/* The queued first packet of the connection the client calls `dcid`. */
struct quic_hsq_item *quic_hsq_find(const struct quic_endpoint *ep,
                                    const uint8_t *dcid, size_t dcidlen);
/*
 * Queues a copy of a new connection's packet: `alim` is its admission
 * (held until it starts or is dropped), `check` and `odcid` what
 * address_check() found; or, with `lead`, a later packet of the queued
 * connection `lead` (no admission of its own).  0, or -1 when the queue
 * is full (counted as refused: handshake_queue; the caller releases alim).
 */
int quic_hsq_push(struct quic_endpoint *ep, const struct udp_sock *s,
                  const struct udp_addr *local, const struct udp_addr *remote,
                  unsigned ecn, const uint8_t *p, size_t n,
                  const ngtcp2_cid *dcid, enum addr_check check,
                  const ngtcp2_cid *odcid, struct addrlim_entry *alim,
                  struct quic_hsq_item *lead);
/* Drops everything queued and what the helper threads hold, and stops
 * them (shutdown, endpoint freed). */
void quic_hsq_clear(struct quic_endpoint *ep);

/* ---- quic_conn.c ---- */

int quic_fill_random(void *p, size_t n);
/* A connection ID of ours (cid.h): random but for the worker byte. */
int quic_cid_fill(const struct quic_endpoint *ep, ngtcp2_cid *cid, size_t len);
void quic_cb_rand(uint8_t *dest, size_t len, const ngtcp2_rand_ctx *ctx);
void quic_callbacks_init(ngtcp2_callbacks *cb, enum quic_role role);
void quic_path_of(struct quic_conn *qc, ngtcp2_path *path);
struct quic_conn *quic_conn_alloc(struct quic_endpoint *ep,
                                  ngtcp2_settings *settings,
                                  ngtcp2_transport_params *params);
int quic_conn_link(struct quic_conn *qc);
void quic_conn_unmake(struct quic_conn *qc);
/* What making a server connection for a new client's Initial takes:
 * filled on the loop thread, read by quic_conn_make() on any thread. */
struct quic_conn_seed {
    struct quic_endpoint *ep; /* read for what never changes: worker, role */
    struct config *cfg;       /* references: the connection takes them */
    struct tls_ctx *tlsctx;
    uint64_t serial;
    struct udp_sock *sock;
    struct udp_addr local, remote;
    enum addr_check check;
    ngtcp2_cid odcid; /* address_check()'s, for ADDR_RETRY */
};
struct quic_conn *quic_conn_make(const struct quic_conn_seed *sd,
                                 const ngtcp2_pkt_hd *hd);
/* Frees what quic_conn_make() made, registered nowhere (loop thread). */
void quic_conn_discard(struct quic_conn *qc);
/* One packet into ngtcp2 (no loop state: see quic_conn_make()); its
 * result goes to quic_conn_fed() on the loop. */
int quic_conn_feed(struct quic_conn *qc, struct udp_sock *s,
                   const struct udp_addr *local,
                   const struct udp_addr *remote, unsigned ecn,
                   const uint8_t *p, size_t n);
void quic_conn_fed(struct quic_conn *qc, int rv);
void quic_conn_free(struct quic_conn *qc);
void quic_conn_release_tls(struct quic_conn *qc);
/* Writes what the connection has to send into the endpoint's queue. */
void quic_conn_write(struct quic_conn *qc);
/* Sends the queue (before the loop sleeps, before a socket closes).  0,
 * 1 when some socket buffer was full, -1 on other errors (logged). */
int quic_endpoint_tx_flush(struct quic_endpoint *ep);
/* After an event: collects what closed, frees a dead connection or re-arms
 * its timer. */
void quic_conn_settle(struct quic_conn *qc);
void quic_conn_input(struct quic_conn *qc, struct udp_sock *s,
                     const struct udp_addr *local,
                     const struct udp_addr *remote, unsigned ecn,
                     const uint8_t *p, size_t n);
/* The same past the simulated path (loss, impairment). */
void quic_conn_read(struct quic_conn *qc, struct udp_sock *s,
                    const struct udp_addr *local,
                    const struct udp_addr *remote, unsigned ecn,
                    const uint8_t *p, size_t n);

/* ---- quic_impair.c: the clients' simulated path (tests) ---- */

/* A packet the write loop made (tx) or the socket brought (rx), with
 * ep->impairing: 1 when it goes on now as usual, 0 when it was held
 * (copied, delivered at a timer) or dropped. */
int quic_impair_tx(struct quic_conn *qc, const ngtcp2_path *path,
                   unsigned ecn, const uint8_t *p, size_t n);
int quic_impair_rx(struct quic_conn *qc, struct udp_sock *s,
                   const struct udp_addr *local,
                   const struct udp_addr *remote, unsigned ecn,
                   const uint8_t *p, size_t n);
/* What the connection still held is lost with it. */
void quic_impair_free(struct quic_conn *qc);

#endif
