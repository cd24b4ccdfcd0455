/*
 * super: workers = N.  The supervisor is a small process with no QUIC in
 * it: it binds N SO_REUSEPORT sockets per listen address in a fixed order
 * (socket i of each group is worker i's), attaches the connection-ID
 * steering program (cid.h) to each group, and starts N workers, each this
 * same program run again (exec) as a whole single-loop daemon on its own
 * sockets.  It keeps every socket open for the life of the service (a
 * group's indices would shift if one closed), restarts a worker that dies
 * (bounded backoff; the others are not touched), forwards SIGHUP and
 * SIGTERM/SIGINT, speaks sd_notify for the whole service, and serves the
 * admin endpoint with every worker's figures labelled worker="i".
 *
 * A worker learns what it is from WTRELAYD_WORKER in its environment
 * (super_worker_env()); its notify lines reach the supervisor over a
 * datagram socketpair, and the supervisor pings its loop and asks it for
 * its metrics over a stream socketpair, never waiting for the answer: a
 * worker whose loop stays silent for worker_timeout is killed and
 * restarted, and /metrics is answered when all have answered or at a
 * deadline, the silent ones reported down.
 */
#ifndef WTRELAYD_SUPER_H
#define WTRELAYD_SUPER_H

#include <ev.h>
#include <stddef.h>
#include <sys/types.h>

#include "config.h"

struct quic_endpoint;

/* Runs the supervisor of cfg->workers workers until the service stops;
 * returns the process's exit status.  `file` is the configuration each
 * worker loads. */
int super_run(struct config *cfg, const char *file, const char *version);

/* What a worker was given by its supervisor. */
struct super_worker_env {
    unsigned index, n;
    pid_t ppid;
    int notify_fd, ctl_fd;
    int fds[CONFIG_MAX_LISTEN]; /* the socket of cfg->listen[i] */
    size_t nfds;
};

/* 1 when this process is a worker (env filled in, the variable removed
 * from the environment), 0 when not, -1 with a message in err when the
 * variable is malformed. */
int super_worker_env(struct super_worker_env *env, char *err, size_t errlen);
/* The worker's sockets are those of cfg's listen addresses, in order: 0,
 * or -1 with a message in err (the file's listen changed since the
 * supervisor started: a restart applies it). */
int super_worker_check(const struct super_worker_env *env,
                       const struct config *cfg, char *err, size_t errlen);
/* A worker's side: dies with its supervisor, answers its requests for
 * metrics from the loop.  After quic_server_init_fds(). */
int super_worker_start(struct ev_loop *loop, const struct super_worker_env *env,
                       const struct quic_endpoint *ep, const char *version);
/* The signals the supervisor forwards are held from the worker's fork
 * until its loop has watchers for them: this lets them in (pending ones
 * are handled then). */
void super_worker_signals(void);
void super_worker_stop(struct ev_loop *loop);

/* The per-worker figures joined into one Prometheus page: every sample of
 * body i gets the label worker="i", each family's HELP/TYPE once and its
 * samples together.  malloc'd (length in *len), NULL when out of memory.
 * A NULL body (a worker that did not answer) is skipped. */
char *super_metrics_merge(char *const *bodies, const size_t *lens, size_t n,
                          size_t *len);

#endif
