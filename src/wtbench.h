/*
 * wtbench: what the load generator's parts share.  wtbench.c owns the
 * arguments, the connections (quic_connect, at most --inflight handshakes
 * at once), the end of a run and the bulk/rps/datagram/sessions modes;
 * wtbench_broadcast.c is --mode broadcast (rooms on a broadcast route).
 * One process, one loop, one clock (quic_now()).
 */
#ifndef WTRELAYD_WTBENCH_H
#define WTRELAYD_WTBENCH_H

#include <ev.h>
#include <netdb.h>
#include <stdint.h>

#include "config.h"
#include "handler.h"
#include "quic.h"
#include "url.h"
#include "wt.h"

#define PATTERN 65536
#define MAX_LAT (8u << 20) /* latency samples kept (a uniform sample past) */

enum mode { M_BULK, M_RPS, M_DGRAM, M_SESSIONS, M_BROADCAST, M_MIXED };

/* broadcast: what a message is */
enum bench_kind { K_DGRAM, K_STREAM, K_BIDI };

struct bconn;

struct bsess {
    struct bconn *c;
    struct wt_session *s;
    int open;
    unsigned active; /* streams in flight */
    unsigned opened; /* bulk: streams opened so far */
    unsigned idx;    /* broadcast: the member's index (stalled ones last) */
};

struct bconn {
    struct quic_conn *qc;
    uint64_t t0, t_ready;
    struct bsess *sess;
    unsigned nsess;
    int stall; /* broadcast: a stalled member's (own endpoint, own limits) */
};

struct wtbench {
    /* options */
    enum mode mode;
    unsigned conns, sessions, streams, inflight;
    uint64_t bytes, requests, size, rate;
    int rate_set, size_set, hold_set;
    double duration, hold, loss;
    double warmup, drain; /* mixed: when RSS is sampled; time to finish */
    struct impair_cfg impair; /* --reorder, --dup, --delay */
    int json, verbose;
    int resume; /* --resume: connections after the first resume its session */
    long server_pid;
    const char *bind; /* --bind: our source address */
    struct wt_connect_opts co;
    struct url url;
    struct addrinfo *ai;
    /* --also URL: more servers (daemons sharing rooms through Redis);
     * connection i goes to server i % (1 + nalso) */
#define BENCH_MAX_ALSO 8
    const char *also[BENCH_MAX_ALSO];
    struct addrinfo *also_ai[BENCH_MAX_ALSO];
    unsigned nalso;
    /* broadcast options */
    enum bench_kind kind;
    unsigned senders, stall;
    int tagged;
    uint64_t stall_window;
    double min_ratio;
    double settle; /* --settle S: wait after every member joined */
    /* state */
    struct ev_loop *loop;
    struct config cfg, stall_cfg;
    uint64_t cfg_wt_data, cfg_wt_streams; /* --wt-max-data, --wt-max-streams */
    struct tls_ctx *tls;
    struct quic_endpoint ep, *stall_ep;
    const struct wt_handler_ops *ops; /* what the sessions run */
    struct bconn *c;                  /* conns, then stall connections */
    unsigned nconns;                  /* conns + stall */
    unsigned started, ready, closed_conns, sess_open, sess_failed;
    unsigned resumed; /* connections whose handshake resumed a session */
    uint64_t t_start, t_first_open, t_all_open, t_end;
    uint64_t tx, rx, streams_done, requests_started, requests_done;
    uint64_t dgrams_sent, dgrams_back, dgrams_dropped, t_last_back;
    uint64_t *lat;
    size_t nlat;
    uint64_t nlat_seen, lat_rng;
    uint64_t errors, mismatches;
    char first_error[256];
    long rss_before, rss_after;
    int stopping, finished;
    ev_timer progress, deadline, pacer, holdw, grace;
    ev_timer ticketw; /* --resume: waits for the first connection's ticket */
    /* --rebind S: every open connection moves to a new source port at S
     * seconds (a NAT rebinding); how many moved, and how many
     * connections ended with an error (at any time) */
    double rebind_s;
    ev_timer rebindw;
    unsigned rebound, conns_lost;
    /* PATTERN bytes twice: any run of up to PATTERN bytes from any offset
     * below PATTERN is contiguous */
    uint8_t pattern[PATTERN * 2];
};

extern struct wtbench B;

uint64_t bench_now(void);
double bench_secs(uint64_t ns);
void bench_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void bench_lat_add(uint64_t ns);
/* Sorts the samples; then bench_pct(p) is the p-th percentile in us. */
void bench_lat_sort(void);
double bench_pct(double p);
/* A field of /proc/PID/status of --server-pid ("VmRSS", "VmHWM") in kB,
 * or -1. */
long bench_server_status_kb(const char *field);
/* The server's CPU time (user + system), seconds, or -1. */
double bench_server_cpu_s(void);
/* Resets the server's VmHWM to its current RSS (so that the peak is this
 * run's); 0, or -1 when the kernel or the permissions do not allow it. */
int bench_server_reset_peak(void);
/* This process's CPU time (user + system), seconds. */
double bench_self_cpu_s(void);
void bench_stop(void);
void bench_check_end(void);
/* A session the server refused: counted, said, and the run may end (the
 * session_rejected of the modes whose sessions need nothing more). */
void bench_session_rejected(struct wt_session *s, int status,
                            const char *why);

/* wtbench_broadcast.c */
extern const struct wt_handler_ops bc_ops;
/* After the arguments: checks them and sets up; -1 with a message. */
int bc_setup(char *err, size_t errlen);
void bc_check_end(void);
/* --duration reached. */
void bc_deadline(void);
void bc_progress(double t);
void bc_report(void);
/* The exit status: 0 or 1. */
int bc_status(void);
void bc_free(void);

/* wtbench_mixed.c: --mode mixed, the soak */
extern const struct wt_handler_ops mx_ops;
int mx_setup(char *err, size_t errlen);
void mx_deadline(void);
void mx_check_end(void);
void mx_progress(double t);
void mx_report(void);
int mx_status(void);
void mx_free(void);

#endif
