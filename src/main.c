/*
 * main: arguments, signals, configuration, the event loop — nothing else.
 */
#include <ev.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "cluster.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "prio.h"
#include "quic.h"
#include "super.h"
#include "tls.h"
#include "version.h"

/* where `make install` puts the configuration (and the unit reads it) */
#define DEFAULT_CONFIG "/etc/wtrelayd/wtrelayd.ini"

static struct quic_endpoint server;
static const char *config_file;
static struct admin admin;
static ev_signal sigint_w, sigterm_w, sighup_w;
static ev_timer shutdown_w, final_w, poll_w, cert_w;
static int signals_seen;
/* workers = N: what this worker was given (is_worker), else unused */
static struct super_worker_env worker;
static int is_worker;

static void usage(FILE *f)
{
    fprintf(f, "usage: wtrelayd [-t] [-c FILE]\n"
               "  -c, --config FILE  configuration file (INI; default "
               DEFAULT_CONFIG ")\n"
               "  -t, --test         check the configuration and exit\n"
               "  -V, --version      print the version and exit\n"
               "  -h, --help         print this help and exit\n"
               "See wtrelayd(8) and wtrelayd.ini(5).\n");
}

static void final_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    quic_server_close_all(&server);
    notify_stop(loop);
    ev_break(loop, EVBREAK_ALL);
}

/* Sessions had their grace: close them with a CLOSE capsule, give the
 * capsules a moment to leave, then close the connections. */
static void close_sessions(struct ev_loop *loop)
{
    struct quic_conn *qc;

    ev_timer_stop(loop, &shutdown_w);
    ev_timer_stop(loop, &poll_w);
    LIST_FOREACH(qc, &server.conns, link) {
        wt_conn_close_sessions(qc, 0, "server shutting down");
        quic_conn_want_write(qc);
    }
    ev_timer_set(&final_w, 0.2, 0.);
    ev_timer_start(loop, &final_w);
}

static void shutdown_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    log_info("shutdown timeout: closing the remaining sessions");
    close_sessions(loop);
}

static void poll_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct quic_conn *qc;
    size_t open = 0;

    (void)w;
    (void)revents;
    LIST_FOREACH(qc, &server.conns, link)
        open += wt_conn_open_sessions(qc);
    if (open == 0)
        close_sessions(loop);
}

static double mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/*
 * SIGHUP: the config file, certificate and key are read again.  Anything
 * wrong in them (file:line, or the TLS error) leaves the running
 * configuration in force.  A good one serves new connections and sessions;
 * established ones keep what they started with (README, Reload).
 */
static void cert_cb(struct ev_loop *loop, ev_timer *w, int revents);

/* The loop thread's scheduling slice (prio.h).  A kernel or a sandbox
 * that refuses it leaves the default: the daemon serves either way. */
static void loop_slice(const struct config *cfg)
{
    unsigned us = (unsigned)cfg->loop_slice_us;
    int rv = prio_set_slice(us);

    if (rv == 1 && us)
        log_info("loop thread: a scheduling slice of %u us", us);
    else if (rv == 0 && us)
        log_info("loop thread: this kernel keeps its own scheduling slice "
                 "(loop_slice_us takes Linux 6.12 or later)");
    else if (rv < 0)
        log_warn("loop thread: scheduling slice %u us not set (%s): the "
                 "kernel's default stays", us, strerror(-rv));
}

static void reload(void)
{
    char err[CONFIG_ERR_LEN], what[1024], oldhash[65];
    struct config *cfg = NULL, *old = NULL;
    struct tls_ctx *tls = NULL;
    double t0 = mono_ms();

    if (server.shutting_down) {
        log_warn("SIGHUP: shutting down; reload ignored");
        return;
    }
    /* reload starts */
    notify_reloading();
    log_info("SIGHUP: reloading %s", config_file);
    if (!(cfg = config_new(config_file, err, sizeof(err)))) {
        log_error("reload failed, the running configuration stays: %s", err);
        goto done;
    }
    if (!(tls = tls_ctx_new(cfg->cert, cfg->key, err, sizeof(err)))) {
        log_error("reload failed, the running configuration stays: %s", err);
        goto done;
    }
    if (is_worker && super_worker_check(&worker, cfg, err, sizeof(err)) < 0) {
        log_error("reload failed, the running configuration stays: %s", err);
        goto done;
    }
    old = config_ref(server.cfg);
    snprintf(oldhash, sizeof(oldhash), "%s", tls_ctx_cert_sha256(server.tls));
    config_describe_changes(old, cfg, what, sizeof(what));
    if (quic_server_reload(&server, cfg, tls, err, sizeof(err)) < 0) {
        log_error("reload failed, the running configuration stays: %s", err);
        goto done;
    }
    config_inherit(cfg, old);
    /* the cluster keeps the connection it has: [cluster] is read at start */
    if ((cfg->cluster.redis == NULL) != (old->cluster.redis == NULL) ||
        (cfg->cluster.redis && (strcmp(cfg->cluster.redis, old->cluster.redis) ||
                                strcmp(cfg->cluster.node_id, old->cluster.node_id))))
        log_warn("reload: [cluster] changed; it takes effect at the next "
                 "start");
    if (cfg->handshake_threads != old->handshake_threads)
        log_warn("reload: handshake_threads changed; it takes effect at the "
                 "next start");
    if (cfg->handshake_nice != old->handshake_nice)
        log_warn("reload: handshake_nice changed; it takes effect at the "
                 "next start");
    if (cfg->loop_slice_us != old->loop_slice_us)
        loop_slice(cfg);
    log_level = cfg->log_level;
    log_format = cfg->log_format;
    if (strcmp(oldhash, tls_ctx_cert_sha256(tls)) != 0)
        log_info("reload: certificate sha-256 %s -> %s", oldhash,
                 tls_ctx_cert_sha256(tls));
    else
        log_info("reload: certificate unchanged (sha-256 %s)", oldhash);
    log_info("reloaded in %.2f ms: %s", mono_ms() - t0, what);
    metrics_add_routes(cfg); /* new routes' series start at zero */
    if (!is_worker) /* the supervisor's endpoint, with workers */
        admin_reload_check(&admin, cfg);
    cert_cb(server.loop, &cert_w, 0); /* a new certificate's expiry */

done:
    /* reload ends, applied or not: serving either way */
    notify_ready();
    config_unref(old);
    config_unref(cfg);
    tls_ctx_free(tls);
}

/* A certificate that expires within a week is said at start and daily
 * (the metric wtrelayd_certificate_expiry_seconds has the date too). */
#define CERT_WARN_S (7 * 86400)

static void cert_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    int64_t until = tls_ctx_cert_not_after(server.tls);
    int64_t left = until - (int64_t)time(NULL);
    time_t t = (time_t)until;
    struct tm tm;
    char date[64] = "?";

    (void)loop;
    (void)w;
    (void)revents;
    if (left >= CERT_WARN_S)
        return;
    if (gmtime_r(&t, &tm))
        strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S UTC", &tm);
    if (left < 0)
        log_warn("certificate %s expired on %s", server.cfg->cert, date);
    else
        log_warn("certificate %s expires in %.1f days, on %s: renew it",
                 server.cfg->cert, (double)left / 86400., date);
}

static void sighup_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    reload();
}

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)revents;
    if (signals_seen++) {
        log_info("signal %d again: stopping now", w->signum);
        quic_server_close_all(&server);
        notify_stop(loop);
        ev_break(loop, EVBREAK_ALL);
        return;
    }
    log_info("signal %d: shutting down (sessions get %.1fs to finish)",
             w->signum, (double)server.cfg->shutdown_timeout_ms / 1000.);
    quic_server_shutdown(&server);
    notify_stopping();
    ev_timer_set(&shutdown_w, (double)server.cfg->shutdown_timeout_ms / 1000.,
                 0.);
    ev_timer_start(loop, &shutdown_w);
    ev_timer_set(&poll_w, 0.05, 0.1);
    ev_timer_start(loop, &poll_w);
}

/* STATUS= text: what `systemctl status` shows beside the state. */
static void status_text(char *buf, size_t len, void *arg)
{
    struct quic_endpoint *ep = arg;
    struct quic_conn *qc;
    size_t sessions = 0;

    LIST_FOREACH(qc, &ep->conns, link)
        sessions += wt_conn_open_sessions(qc);
    snprintf(buf, len, "%zu connections, %zu sessions", ep->nconns, sessions);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"test", no_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    struct config *cfg;
    struct tls_ctx *tls;
    struct ev_loop *loop;
    char err[CONFIG_ERR_LEN];
    const char *file = DEFAULT_CONFIG;
    int check = 0, c;

    log_init();
    while ((c = getopt_long(argc, argv, "c:thV", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            file = optarg;
            break;
        case 't':
            check = 1;
            break;
        case 'V':
            printf("wtrelayd %s\n", WTRELAYD_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    if (!(cfg = config_new(file, err, sizeof(err)))) {
        /* at boot under systemd this is the line `journalctl -p err`
         * must show: through the log, with its priority */
        if (check)
            fprintf(stderr, "wtrelayd: %s\n", err);
        else
            log_error("%s", err);
        return 1;
    }
    if (check) {
        printf("wtrelayd: %s: configuration OK\n", file);
        config_unref(cfg);
        return 0;
    }
    if ((is_worker = super_worker_env(&worker, err, sizeof(err))) < 0) {
        log_error("%s", err);
        config_unref(cfg);
        return 1;
    }
    if (is_worker) {
        log_worker = (int)worker.index;
        if (super_worker_check(&worker, cfg, err, sizeof(err)) < 0) {
            log_error("%s", err);
            config_unref(cfg);
            return 1;
        }
    } else if (cfg->workers > 1 || getenv("WTRELAYD_SUPERVISE")) {
        /* workers = N: this process supervises, the workers serve
         * (WTRELAYD_SUPERVISE: one worker under a supervisor, for make
         * bench's figure of the steering program's cost) */
        int rv;

        log_level = cfg->log_level;
        log_format = cfg->log_format;
        if (cfg->workers < 1)
            cfg->workers = 1;
        rv = super_run(cfg, file, WTRELAYD_VERSION);
        config_unref(cfg);
        return rv;
    }
    config_file = file;
    log_level = cfg->log_level;
    log_format = cfg->log_format;
    metrics_add_routes(cfg);
    tls = tls_ctx_new(cfg->cert, cfg->key, err, sizeof(err));
    if (!tls) {
        log_error("%s", err);
        config_unref(cfg);
        return 1;
    }
    log_info("wtrelayd %s: certificate sha-256 %s", WTRELAYD_VERSION,
             tls_ctx_cert_sha256(tls));
    signal(SIGPIPE, SIG_IGN);
    /* (the handshake threads, started below, put the default back) */
    loop_slice(cfg);
    loop = ev_default_loop(EVFLAG_AUTO);
    if (quic_server_init_fds(&server, loop, cfg, tls,
                             is_worker ? worker.fds : NULL, err,
                             sizeof(err)) < 0) {
        log_error("%s", err);
        tls_ctx_free(tls);
        config_unref(cfg);
        return 1;
    }
    server.worker = is_worker ? worker.index : 0;
    /* Redis is reached in the background: local rooms work meanwhile */
    if (cluster_start(loop, cfg) < 0) {
        log_error("cluster: out of memory");
        quic_endpoint_free(&server);
        tls_ctx_free(tls);
        config_unref(cfg);
        return 1;
    }
    if (is_worker &&
        super_worker_start(loop, &worker, &server, WTRELAYD_VERSION) < 0) {
        log_error("worker: the supervisor is gone");
        cluster_stop();
        quic_endpoint_free(&server);
        tls_ctx_free(tls);
        config_unref(cfg);
        return 1;
    }
    /* the endpoint holds its own references from here on */
    tls_ctx_free(tls);
    config_unref(cfg);
    ev_signal_init(&sigint_w, signal_cb, SIGINT);
    ev_signal_init(&sigterm_w, signal_cb, SIGTERM);
    ev_signal_start(loop, &sigint_w);
    ev_signal_start(loop, &sigterm_w);
    ev_signal_init(&sighup_w, sighup_cb, SIGHUP);
    ev_signal_start(loop, &sighup_w);
    if (is_worker)
        super_worker_signals();
    ev_init(&shutdown_w, shutdown_cb);
    ev_init(&final_w, final_cb);
    ev_init(&poll_w, poll_cb);
    ev_timer_init(&cert_w, cert_cb, 86400., 86400.);
    ev_timer_start(loop, &cert_w);
    cert_cb(loop, &cert_w, 0);
    if (!is_worker && admin_start(&admin, loop, &server, WTRELAYD_VERSION,
                                  err, sizeof(err)) < 0) {
        log_error("%s", err);
        quic_endpoint_free(&server);
        return 1;
    }
    /* sockets bound, configuration in force: systemd may start what
     * depends on us (Type=notify) */
    notify_init(loop, status_text, &server);
    notify_ready();

    ev_run(loop, 0);

    admin_stop(&admin);
    if (is_worker)
        super_worker_stop(loop);
    quic_endpoint_free(&server);
    cluster_stop();
    log_info("stopped");
    return 0;
}
