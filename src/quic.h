/*
 * quic: ngtcp2 connections.  Owns the listening sockets, the table that
 * finds a connection by destination connection ID, one timer per
 * connection, the accept path and the single write loop of each
 * connection (nghttp3's streams, the control stream, WebTransport streams,
 * datagrams).  Everything above QUIC lives in h3.c and wt.c.
 */
#ifndef WTRELAYD_QUIC_H
#define WTRELAYD_QUIC_H

#include <ev.h>
#include <stdint.h>
#include <sys/queue.h>

#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>

#include "addrlim.h"
#include "config.h"
#include "h3.h"
#include "impair.h"
#include "offload.h"
#include "udp.h"
#include "wt.h"

struct tls_ctx;
struct quic_cid_entry;
struct quic_conn;

enum quic_role { QUIC_SERVER, QUIC_CLIENT };

/* What a client application hears of one of its connections. */
struct quic_conn_ops {
    /* The handshake is done, the certificate checked and the server's
     * SETTINGS arrived: sessions may be opened (wt_session_connect). */
    void (*ready)(struct quic_conn *qc);
    /* The connection ended; `why` is readable ("" for a clean close by us).
     * The connection is freed right after this returns. */
    void (*closed)(struct quic_conn *qc, const char *why);
};

enum quic_conn_state {
    QC_HANDSHAKE,
    QC_ACTIVE,
    QC_CLOSING,  /* we sent CONNECTION_CLOSE; wait 3 PTO, then free */
    QC_DRAINING, /* the peer closed; wait 3 PTO, then free */
    QC_DEAD,     /* freed at the end of the current event */
};

struct quic_conn {
    struct quic_endpoint *ep;
    /* References to what the connection was accepted under: its limits
     * (transport parameters, SETTINGS, per-session limits) and the
     * credentials its TLS session points at.  A reload changes neither. */
    struct config *cfg;
    struct tls_ctx *tlsctx;
    uint64_t serial; /* for logs: "conn 12" */
    ngtcp2_conn *conn;
    ngtcp2_crypto_conn_ref conn_ref;
    void *tls;       /* NULL once the handshake is complete */
    int tls_release; /* handshake complete: free tls before the next write */
    int resumed;     /* the handshake resumed a TLS session (a ticket) */
    ngtcp2_cid scid;  /* our first connection ID */
    ngtcp2_cid odcid; /* the client's first DCID: also finds us */
    /* the path ngtcp2 has validated and uses (updated after each packet
     * it accepted), for what is sent outside the write loop */
    struct udp_sock *sock;
    struct udp_addr local, remote;
    char peer[64];
    enum quic_conn_state state;
    /* Set by wt_conn_free(): the sessions being torn down end because
     * the connection itself ends (closed, reset, timed out), not by a
     * capsule. */
    int ending;
    int counted; /* in ep->nhandshakes */
    /* server: made by quic_conn_make(), maybe on a helper thread, and
     * not linked yet; h3_due: its HTTP/3 state is to be made on the
     * loop (cb_recv_tx_key) */
    int unlinked, h3_due;
    /* server: its source address's entry in ep->alim (the address it
     * came from: a migration later does not move it), counted until
     * quic_conn_free() */
    struct addrlim_entry *alim;
    ev_timer timer;
    /* set by quic_conn_write() for the quic_conn_settle() right after
     * it: the expiry to arm when nothing was left to write (0: ask
     * ngtcp2) */
    ngtcp2_tstamp quiet_expiry;
    ngtcp2_ccerr last_error;
    uint8_t *closebuf; /* the CONNECTION_CLOSE packet, resent on input */
    size_t closelen;
    unsigned close_in; /* packets received since: resent on 1, 2, 4, ... */
    int dirty; /* on the server's write list */
    struct quic_impair *imp; /* clients, for tests: held packets */
    struct h3_conn h3;
    struct wt_conn wt;
    /* client connections */
    const struct quic_conn_ops *ops;
    void *app;
    struct udp_sock own_sock; /* connected to the server */
    ev_io io;
    char *host;     /* for SNI and the certificate check */
    int ready;      /* 1: SETTINGS seen, ops->ready due; 2: called */
    unsigned rebinds; /* quic_conn_rebind() calls */
    char why[300];  /* why the connection ended, for ops->closed */
    LIST_ENTRY(quic_conn) link;   /* all connections */
    struct quic_conn *dirty_next; /* write list */
};

/*
 * New connections waiting for their handshake (quic_hsq.c).  A handshake
 * costs a TLS key exchange and a signature, about a millisecond of CPU;
 * packets of established connections are handled as they are read, and
 * handshakes start one per loop turn from this queue in between, so a
 * burst of new clients delays an established one by one handshake at
 * most.  Bounded by handshake_queue packets.
 */
struct quic_hsq_item;
struct quic_hsq {
    struct quic_hsq_item *head, *tail;
    size_t n;     /* packets queued, or in a helper thread's hands */
    size_t bytes; /* their sizes */
    /* handshake_threads: the threads, and the new connections they make
     * (at most 2 a thread) */
    struct offload pool;
    struct quic_hsq_item *inflight;
    int stopping; /* quic_hsq_clear(): what the threads give back goes */
    ev_check check; /* after each turn's reads: start one handshake */
    ev_idle idle;   /* while the queue is not empty: the loop polls, does
                       not sleep */
};

/* Listening sockets: one slot per address, and as many again for
 * addresses a reload removed whose connections still use them. */
#define QUIC_MAX_SOCKS (2 * CONFIG_MAX_LISTEN)
enum { QUIC_SOCK_FREE, QUIC_SOCK_LISTEN, QUIC_SOCK_RETIRED };

struct quic_endpoint {
    enum quic_role role;
    struct ev_loop *loop;
    struct config *cfg;  /* in force for new connections and sessions */
    struct tls_ctx *tls; /* ... and for new connections' handshakes */
    struct udp_sock socks[QUIC_MAX_SOCKS];
    ev_io io[QUIC_MAX_SOCKS];
    /* QUIC_SOCK_*: a retired socket (its address removed by a reload)
     * accepts no new connection and is closed with its last one */
    uint8_t sock_state[QUIC_MAX_SOCKS];
    struct config_listen sock_addr[QUIC_MAX_SOCKS]; /* as configured */
    ev_prepare prepare; /* flushes the write list once per loop turn */
    uint8_t static_secret[32]; /* server: tls_ctx_secret(); client: random */
    /* A reload with a new key: the previous secret still validates tokens
     * and still signs stateless resets (beside the new one) until then
     * (ev_now time), so what was handed out before keeps working. */
    uint8_t old_secret[32];
    double old_secret_until;
    double reset_window;       /* start of the current second of resets */
    unsigned resets;           /* stateless resets sent in that second */
    struct quic_cid_entry **cids; /* chained hash of connection IDs */
    size_t ncid_buckets, ncids;
    uint64_t cid_k0, cid_k1; /* its key: clients choose their first DCIDs */
    LIST_HEAD(, quic_conn) conns;
    struct quic_conn *dirty;
    struct quic_conn *round; /* the dirty ones prepare_cb is writing */
    size_t nconns;
    size_t nhandshakes; /* server connections still in their handshake */
    struct addrlim alim; /* server: per source address limits */
    struct quic_hsq hsq; /* server: handshakes waiting to start */
    double alim_log_window;  /* start of the second of refusal lines */
    unsigned alim_logged;    /* refusal lines in it */
    uint64_t alim_unlogged;  /* refusals not logged since the last line */
    uint64_t next_serial;
    int shutting_down;
    /* server: this process's index among the workers (workers = N; 0
     * with one), written into every connection ID it issues (cid.h) */
    unsigned worker;
    double loss; /* simulated loss, each way (clients, for tests) */
    /* clients, for tests: a simulated bad path beside the loss
     * (quic_impair.c); index 0 what we send, 1 what we receive */
    struct impair_cfg impair;
    int impairing; /* impair_active(&impair): else no copy, no timer */
    uint64_t impair_rng;
    struct impair_stats impair_stats[2];
    uint64_t lost[2]; /* packets the simulated loss dropped, each way */
    /* clients, for tests of the server: a token for the first Initial,
     * and a fixed first DCID instead of a random one */
    const uint8_t *token, *dcid;
    size_t tokenlen, dcidlen;
    /* clients: keep the server's newest NEW_TOKEN token for the next
     * connection, as browsers do */
    int keep_tokens;
    /* clients: the source address to send from (--bind); family 0: any */
    struct sockaddr_storage bind_addr;
    uint8_t token_buf[256];
    uint64_t loss_state;
    struct udp_msg rx[UDP_BATCH]; /* recvmmsg into rxbuf */
    uint8_t rxbuf[UDP_BATCH][65536];
    /* Packets written and not yet sent: the connections written in a
     * loop turn queue their messages here (quic_conn_write), and they
     * leave together, in sendmmsg calls, before the loop sleeps. */
    uint8_t txbuf[256 * 1024];
    size_t txlen; /* bytes of txbuf the queue holds */
    struct udp_out txq[UDP_SEND_BATCH];
    struct udp_sock *txsock[UDP_SEND_BATCH];
    size_t ntxq;
};

/* The endpoint takes its own references to cfg and tls. */
int quic_server_init(struct quic_endpoint *ep, struct ev_loop *loop,
                     struct config *cfg, struct tls_ctx *tls, char *err,
                     size_t errlen);
/* A worker's start (workers = N): fds[i] is the socket the supervisor
 * bound for cfg->listen[i], taken over instead of binding one. */
int quic_server_init_fds(struct quic_endpoint *ep, struct ev_loop *loop,
                         struct config *cfg, struct tls_ctx *tls,
                         const int *fds, char *err, size_t errlen);
/*
 * Reload: new connections and sessions get `cfg` and `tls` (the endpoint
 * takes references) from now on; running ones keep theirs.  Addresses new
 * in cfg are bound, removed ones stop accepting connections (their socket
 * closes with its last connection).  On error (a bind fails, no socket
 * slot) nothing changed: -1 with a message in err.
 */
/* Clients: send from this IP address (a literal, v4 or v6).  0, or -1
 * when it is not one. */
int quic_client_bind(struct quic_endpoint *ep, const char *addr);
int quic_server_reload(struct quic_endpoint *ep, struct config *cfg,
                       struct tls_ctx *tls, char *err, size_t errlen);
/* Retired sockets no connection uses any more are closed. */
void quic_endpoint_sweep(struct quic_endpoint *ep);
/* Does the old secret (previous key) still count? */
int quic_endpoint_old_secret(const struct quic_endpoint *ep);
/* Frees every connection (client ones tell ops->closed) and the sockets. */
void quic_endpoint_free(struct quic_endpoint *ep);
/* Starts a graceful shutdown: GOAWAY + DRAIN, then close every session.
 * The loop ends by itself once the last connection is gone. */
void quic_server_shutdown(struct quic_endpoint *ep);
/* Closes every connection now (CONNECTION_CLOSE sent, no waiting). */
void quic_server_close_all(struct quic_endpoint *ep);

/*
 * A client endpoint: connections made with quic_connect(), each on its own
 * connected UDP socket.  `cfg` supplies the buffer and stream limits (its
 * listen and route parts are unused).
 */
void quic_client_init(struct quic_endpoint *ep, struct ev_loop *loop,
                      struct config *cfg, struct tls_ctx *tls);
/* Starts a connection; `host` is sent as SNI and checked against the
 * certificate.  NULL with a message in err. */
struct quic_conn *quic_connect(struct quic_endpoint *ep,
                               const struct sockaddr *remote, socklen_t len,
                               const char *host,
                               const struct quic_conn_ops *ops, void *app,
                               char *err, size_t errlen);
/* A client connection moves to a new UDP socket (a new source port)
 * without telling ngtcp2, as when a NAT rebinds: the server sees the
 * connection come from a new address (tests: wtbench --rebind).  0, or
 * -1 with a message in err (the old socket is kept). */
int quic_conn_rebind(struct quic_conn *qc, char *err, size_t errlen);
/* Drops a fraction p of this endpoint's packets in each direction, as a
 * lossy path would (clients: tests and benchmarks; no netem needed). */
void quic_endpoint_set_loss(struct quic_endpoint *ep, double p, uint64_t seed);
/* Also reorders, duplicates and delays this endpoint's packets in each
 * direction (impair.h), from a seeded generator. */
void quic_endpoint_set_impair(struct quic_endpoint *ep,
                              const struct impair_cfg *c, uint64_t seed);
/* "--reorder P", "--dup P", "--delay MS[:JITTER_MS]" of the clients into
 * c: 1 when `opt` is one of them (value taken), 0 when not, -1 (with a
 * message in err) for a bad value. */
/* The simulated path's counters (loss, impair_stats), both ways, as
 * text or as a JSON object. */
void quic_impair_summary(const struct quic_endpoint *ep, char *buf,
                         size_t len, int json);
int quic_impair_option(struct impair_cfg *c, const char *opt, const char *val,
                       char *err, size_t errlen);
/* For h3.c: the peer's SETTINGS arrived. */
void quic_conn_settings_received(struct quic_conn *qc);

/* Something was queued on this connection: write before the loop sleeps. */
void quic_conn_want_write(struct quic_conn *qc);
/* Closes the connection with an HTTP/3 application error. */
void quic_conn_close_app(struct quic_conn *qc, uint64_t code,
                         const char *reason);
/* Current timestamp in ngtcp2's clock (nanoseconds, monotonic). */
uint64_t quic_now(void);

#endif
