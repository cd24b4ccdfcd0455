/* super: see super.h. */
#include "super.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "cid.h"
#include "log.h"
#include "notify.h"
#include "tls.h"
#include "udp.h"

#define ENV_WORKER "WTRELAYD_WORKER"
/* Tests only: the groups get no steering program (tests/it/86 shows what
 * breaks then), or a supervisor runs even one worker (make bench: the
 * program's cost with workers = 1).  Never in production. */
#define ENV_NO_STEERING "WTRELAYD_NO_STEERING"

/* Restart backoff: doubled for a worker that dies within RUN_OK_S of its
 * start, from BACKOFF_MIN up to BACKOFF_MAX; back to the minimum once it
 * has run that long. */
#define BACKOFF_MIN 0.1
#define BACKOFF_MAX 10.0
#define RUN_OK_S 10.0
/* How long a worker has to answer a request for its metrics (/metrics
 * is answered then, the silent ones reported down), and the largest
 * answer taken. */
#define ASK_TIMEOUT_MS 1000
#define ASK_MAX (16u << 20)
/* Liveness: each worker's loop is pinged every worker_timeout / 5 (0.1 to
 * 1 s); /healthz calls one silent for PING_SILENT pings "not answering",
 * and one silent for worker_timeout is killed. */
#define PING_MIN 0.1
#define PING_MAX 1.0
#define PING_SILENT 2.5
/* How long a reload may take the workers before READY is said anyway. */
#define RELOAD_TIMEOUT_S 10.0

struct worker {
    struct super *s;
    unsigned index;
    pid_t pid;        /* 0: not running */
    int notify_fd;    /* our ends of its socketpairs (-1: none) */
    int ctl_fd;
    ev_io notify_io;
    ev_child child_w;
    ev_timer restart_w;
    int ready;        /* READY=1 heard since its start or the last reload */
    unsigned long long conns, sessions; /* from its last STATUS= */
    unsigned restarts, kills;
    double started, backoff;
    /* its control socket: pings and metrics requests out, answers in */
    ev_io ctl_io;
    double heard;     /* ev_now() of its loop's last answer */
    int killed;       /* killed for its silence: child_cb follows */
    char hdr[48];     /* the answer's header line, so far */
    size_t hl;
    char *body;       /* a metrics page being read: want bytes, got so far */
    size_t want, got;
    unsigned body_seq;
    /* the metrics round under way: asked and not answered yet, or its
     * answer (page NULL with answered: it had none) */
    int asked, answered;
    char *page;
    size_t pagelen;
};

struct super {
    struct ev_loop *loop;
    struct config *cfg; /* as last loaded: the admin view and reloads */
    struct tls_ctx *tls;
    const char *file, *version;
    unsigned n;
    int socks[CONFIG_MAX_LISTEN][CID_MAX_WORKERS];
    size_t nlisten;
    struct worker w[CID_MAX_WORKERS];
    int stopping, reloading, announced;
    struct admin admin;
    ev_signal sigint_w, sigterm_w, sighup_w;
    ev_timer kill_w, reload_w;
    ev_timer ping_w;  /* liveness */
    double pinged;    /* ev_now() at the last ping round */
    unsigned ping_seq;
    ev_timer round_w; /* the metrics round's deadline */
    int round;        /* a metrics round is under way */
    unsigned round_seq;
    char unhealthy[64];
};

/* ---- the merged metrics page (pure) ---- */

struct sbuf {
    char *p;
    size_t n, cap;
    int oom;
};

static void sb_put(struct sbuf *b, const char *p, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        char *q;

        while (cap < b->n + n + 1)
            cap *= 2;
        if (!(q = realloc(b->p, cap))) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void sb_printf(struct sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    int k;

    va_start(ap, fmt);
    k = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (k > 0)
        sb_put(b, tmp, (size_t)k < sizeof(tmp) ? (size_t)k : sizeof(tmp) - 1);
}

/* One family of a page: its name, its HELP/TYPE lines, its samples. */
struct family {
    const char *name;
    size_t namelen;
    const char *hdr, *samples, *end;
};

#define MAX_FAMILIES 1024

/* Splits body[0..len) into families; returns how many (at most max). */
static size_t families(const char *body, size_t len, struct family *f,
                       size_t max)
{
    const char *p = body, *end = body + len;
    size_t n = 0;

    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *next = eol ? eol + 1 : end;

        if ((size_t)(next - p) > 7 && (memcmp(p, "# HELP ", 7) == 0 ||
                                       memcmp(p, "# TYPE ", 7) == 0)) {
            const char *name = p + 7;
            size_t nl = strcspn(name, " \n");

            if (n == 0 || nl != f[n - 1].namelen ||
                memcmp(name, f[n - 1].name, nl) != 0) {
                if (n == max)
                    break;
                f[n++] = (struct family){.name = name, .namelen = nl,
                                         .hdr = p, .samples = next,
                                         .end = next};
            } else if (f[n - 1].samples == p) {
                f[n - 1].samples = next; /* TYPE after HELP */
                f[n - 1].end = next;
            }
        } else if (n > 0 && *p != '#') {
            f[n - 1].end = next;
        }
        p = next;
    }
    return n;
}

/* The samples of f with worker="i" as their first label. */
static void relabel(struct sbuf *b, const struct family *f, size_t i)
{
    const char *p = f->samples;
    char label[32];
    int ll = snprintf(label, sizeof(label), "worker=\"%zu\"", i);

    while (p < f->end) {
        const char *eol = memchr(p, '\n', (size_t)(f->end - p));
        const char *next = eol ? eol + 1 : f->end;
        size_t k = strcspn(p, "{ \n");

        if (p[k] == '{') {
            sb_put(b, p, k + 1);
            sb_put(b, label, (size_t)ll);
            if (p[k + 1] != '}')
                sb_put(b, ",", 1);
            sb_put(b, p + k + 1, (size_t)(next - (p + k + 1)));
        } else if (p[k] == ' ') {
            sb_put(b, p, k);
            sb_put(b, "{", 1);
            sb_put(b, label, (size_t)ll);
            sb_put(b, "}", 1);
            sb_put(b, p + k, (size_t)(next - (p + k)));
        }
        if (next == f->end && (next == p || next[-1] != '\n'))
            sb_put(b, "\n", 1);
        p = next;
    }
}

char *super_metrics_merge(char *const *bodies, const size_t *lens, size_t n,
                          size_t *len)
{
    struct family *fam[CID_MAX_WORKERS] = {0};
    size_t nf[CID_MAX_WORKERS] = {0};
    struct sbuf b = {0};

    if (n > CID_MAX_WORKERS)
        n = CID_MAX_WORKERS;
    for (size_t i = 0; i < n; i++) {
        if (!bodies[i])
            continue;
        if (!(fam[i] = calloc(MAX_FAMILIES, sizeof(*fam[i])))) {
            b.oom = 1;
            break;
        }
        nf[i] = families(bodies[i], lens[i], fam[i], MAX_FAMILIES);
    }
    /* families in the order the first worker that has them lists them;
     * one already written is found among the earlier workers' ones */
    for (size_t i = 0; i < n && !b.oom; i++)
        for (size_t k = 0; k < nf[i]; k++) {
            const struct family *f = &fam[i][k];
            int seen = 0;

            for (size_t j = 0; j < i && !seen; j++)
                for (size_t m = 0; m < nf[j] && !seen; m++)
                    seen = fam[j][m].namelen == f->namelen &&
                           memcmp(fam[j][m].name, f->name, f->namelen) == 0;
            if (seen)
                continue;
            sb_put(&b, f->hdr, (size_t)(f->samples - f->hdr));
            for (size_t j = i; j < n; j++)
                for (size_t m = 0; m < nf[j]; m++)
                    if (fam[j][m].namelen == f->namelen &&
                        memcmp(fam[j][m].name, f->name, f->namelen) == 0) {
                        relabel(&b, &fam[j][m], j);
                        break;
                    }
        }
    for (size_t i = 0; i < n; i++)
        free(fam[i]);
    sb_put(&b, "", 0);
    if (b.oom || !b.p) {
        free(b.p);
        return NULL;
    }
    *len = b.n;
    return b.p;
}

/* ---- the worker's side ---- */

static struct {
    ev_io io;
    const struct quic_endpoint *ep;
    const char *version;
    char in[64];
    size_t inlen;
} wk;

/* Writes all of p, waiting for room at most until the deadline: the
 * supervisor reads while it waits for us. */
static int send_all(int fd, const char *p, size_t n)
{
    struct timespec t0, t;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        long ms;

        if (k > 0) {
            p += k;
            n -= (size_t)k;
            continue;
        }
        if (k < 0 && errno != EAGAIN && errno != EINTR)
            return -1;
        clock_gettime(CLOCK_MONOTONIC, &t);
        ms = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
        if (ms >= ASK_TIMEOUT_MS)
            return -1;
        poll(&(struct pollfd){.fd = fd, .events = POLLOUT}, 1,
             (int)(ASK_TIMEOUT_MS - ms));
    }
    return 0;
}

static void ctl_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    ssize_t k;
    char *eol;

    (void)revents;
    k = recv(w->fd, wk.in + wk.inlen, sizeof(wk.in) - 1 - wk.inlen,
             MSG_DONTWAIT);
    if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR)) {
        ev_io_stop(loop, w); /* the supervisor is gone: PDEATHSIG follows */
        return;
    }
    if (k < 0)
        return;
    wk.inlen += (size_t)k;
    wk.in[wk.inlen] = '\0';
    while ((eol = strchr(wk.in, '\n'))) {
        unsigned seq;
        char hdr[48];
        size_t len = 0;
        char *body = NULL;

        *eol = '\0';
        /* "p SEQ": a ping, answered "p SEQ\n" from this loop (that it
         * turns is what the supervisor checks); "m SEQ": answered
         * "m SEQ LEN\n" and the page */
        if (sscanf(wk.in, "p %u", &seq) == 1) {
            snprintf(hdr, sizeof(hdr), "p %u\n", seq);
            if (send_all(w->fd, hdr, strlen(hdr)) < 0)
                log_warn("ping from the supervisor: not answered");
        } else if (sscanf(wk.in, "m %u", &seq) == 1) {
            body = admin_metrics(wk.ep, wk.version, &len);
            snprintf(hdr, sizeof(hdr), "m %u %zu\n", seq, body ? len : 0);
            if (send_all(w->fd, hdr, strlen(hdr)) < 0 ||
                (body && send_all(w->fd, body, len) < 0))
                log_warn("metrics for the supervisor: not sent");
            free(body);
        }
        wk.inlen -= (size_t)(eol + 1 - wk.in);
        memmove(wk.in, eol + 1, wk.inlen + 1);
    }
    if (wk.inlen == sizeof(wk.in) - 1)
        wk.inlen = 0; /* no request is this long: not our supervisor's */
}

int super_worker_env(struct super_worker_env *env, char *err, size_t errlen)
{
    const char *v = getenv(ENV_WORKER);
    char *copy, *p;
    long ppid;
    int k = 0;

    memset(env, 0, sizeof(*env));
    if (!v)
        return 0;
    if (!(copy = strdup(v))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    /* INDEX/N/PPID/NOTIFYFD/CTLFD/FD,FD,... */
    if (sscanf(copy, "%u/%u/%ld/%d/%d/%n", &env->index, &env->n, &ppid,
               &env->notify_fd, &env->ctl_fd, &k) != 5 || k == 0 ||
        env->n < 1 || env->n > CID_MAX_WORKERS || env->index >= env->n ||
        env->notify_fd < 3 || env->ctl_fd < 3) {
        snprintf(err, errlen, "%s: malformed (%.80s)", ENV_WORKER, v);
        free(copy);
        return -1;
    }
    env->ppid = (pid_t)ppid;
    /* one descriptor or more, comma-separated, nothing else */
    for (p = copy + k;; p++) {
        char *end;
        long fd = strtol(p, &end, 10);

        if (end == p || (*end && *end != ',') || fd < 3 || fd > 65535 ||
            env->nfds == CONFIG_MAX_LISTEN) {
            snprintf(err, errlen, "%s: malformed (%.80s)", ENV_WORKER, v);
            free(copy);
            return -1;
        }
        env->fds[env->nfds++] = (int)fd;
        if (!*end)
            break;
        p = end;
    }
    free(copy);
    unsetenv(ENV_WORKER);
    return 1;
}

static int same_addr(const struct sockaddr_storage *a,
                     const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return 0;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

        return x->sin_port == y->sin_port &&
               x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

    return x->sin6_port == y->sin6_port &&
           memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
}

int super_worker_check(const struct super_worker_env *env,
                       const struct config *cfg, char *err, size_t errlen)
{
    if (env->nfds != cfg->nlisten) {
        snprintf(err, errlen,
                 "listen has %zu addresses, the service was started with "
                 "%zu: a change of listen takes a restart with workers > 1",
                 cfg->nlisten, env->nfds);
        return -1;
    }
    for (size_t i = 0; i < env->nfds; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);

        if (getsockname(env->fds[i], (struct sockaddr *)&ss, &len) < 0 ||
            !same_addr(&ss, &cfg->listen[i].addr)) {
            snprintf(err, errlen,
                     "listen %s is not the address the service was started "
                     "with: a change of listen takes a restart with "
                     "workers > 1",
                     cfg->listen[i].text);
            return -1;
        }
    }
    return 0;
}

int super_worker_start(struct ev_loop *loop, const struct super_worker_env *env,
                       const struct quic_endpoint *ep, const char *version)
{
    /* the service is the supervisor: a worker does not outlive it (and
     * drains like at SIGTERM when it goes) */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != env->ppid)
        return -1;
    fcntl(env->notify_fd, F_SETFD, FD_CLOEXEC);
    fcntl(env->ctl_fd, F_SETFD, FD_CLOEXEC);
    notify_set_fd(env->notify_fd);
    wk.ep = ep;
    wk.version = version;
    ev_io_init(&wk.io, ctl_cb, env->ctl_fd, EV_READ);
    ev_io_start(loop, &wk.io);
    return 0;
}

void super_worker_signals(void)
{
    sigset_t none;

    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

void super_worker_stop(struct ev_loop *loop)
{
    ev_io_stop(loop, &wk.io);
}

/* ---- the supervisor ---- */

static void spawn(struct worker *w);
static void round_check(struct super *s);
static void ctl_cb_super(struct ev_loop *loop, ev_io *io, int revents);

static unsigned running(const struct super *s)
{
    unsigned n = 0;

    for (unsigned i = 0; i < s->n; i++)
        n += s->w[i].pid > 0;
    return n;
}

static void close_worker_fds(struct worker *w)
{
    if (w->notify_fd >= 0) {
        ev_io_stop(w->s->loop, &w->notify_io);
        close(w->notify_fd);
    }
    if (w->ctl_fd >= 0) {
        ev_io_stop(w->s->loop, &w->ctl_io);
        close(w->ctl_fd);
    }
    w->notify_fd = w->ctl_fd = -1;
    free(w->body);
    w->body = NULL;
    w->hl = w->want = w->got = 0;
}

/* Everyone ready: READY=1 for the whole service (at start, and to end a
 * reload). */
static void check_ready(struct super *s)
{
    for (unsigned i = 0; i < s->n; i++)
        if (!s->w[i].ready)
            return;
    if (!s->announced) {
        s->announced = 1;
        log_info("supervisor: all %u workers ready", s->n);
        notify_ready();
    } else if (s->reloading) {
        s->reloading = 0;
        ev_timer_stop(s->loop, &s->reload_w);
        log_info("supervisor: all %u workers reloaded", s->n);
        notify_ready();
    }
}

static void notify_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    struct worker *w = io->data;
    char msg[512];
    ssize_t k;

    (void)loop;
    (void)revents;
    /* a bounded number of lines a wake-up: a chatty worker cannot hold
     * the supervisor */
    for (int i = 0; i < 32; i++) {
        k = recv(w->notify_fd, msg, sizeof(msg) - 1, MSG_DONTWAIT);
        if (k <= 0)
            return;
        msg[k] = '\0';
        if (strcmp(msg, "READY=1") == 0) {
            if (!w->ready && w->s->announced && !w->s->reloading)
                log_info("supervisor: worker %u (pid %d) ready", w->index,
                         (int)w->pid);
            w->ready = 1;
            check_ready(w->s);
        } else if (strncmp(msg, "STATUS=", 7) == 0) {
            const char *c = strchr(msg, ':');

            if (c)
                sscanf(c, ": %llu connections, %llu sessions", &w->conns,
                       &w->sessions);
        }
        /* RELOADING, STOPPING, WATCHDOG: the supervisor says its own */
    }
}

static void restart_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    spawn(t->data);
}

static void child_cb(struct ev_loop *loop, ev_child *c, int revents)
{
    struct worker *w = c->data;
    struct super *s = w->s;
    char how[64];
    double ran = ev_now(loop) - w->started;

    (void)revents;
    ev_child_stop(loop, c);
    close_worker_fds(w);
    w->pid = 0;
    w->ready = 0;
    w->killed = 0;
    if (w->asked) {
        /* it will not answer the round under way: nobody waits for it */
        w->asked = 0;
        round_check(s);
    }
    w->conns = w->sessions = 0;
    if (WIFSIGNALED(c->rstatus))
        snprintf(how, sizeof(how), "killed by signal %d",
                 WTERMSIG(c->rstatus));
    else
        snprintf(how, sizeof(how), "exited with status %d",
                 WEXITSTATUS(c->rstatus));
    if (s->stopping) {
        log_info("supervisor: worker %u %s", w->index, how);
        if (running(s) == 0)
            ev_break(loop, EVBREAK_ALL);
        return;
    }
    /* its socket stays open here: what arrives for it waits in the
     * socket's buffer for the new worker */
    w->backoff = ran < RUN_OK_S
                     ? (w->backoff < BACKOFF_MIN ? BACKOFF_MIN : w->backoff * 2)
                     : BACKOFF_MIN;
    if (w->backoff > BACKOFF_MAX)
        w->backoff = BACKOFF_MAX;
    log_warn("supervisor: worker %u (pid %d) %s after %.1f s; restarting in "
             "%.1f s",
             w->index, (int)c->rpid, how, ran, w->backoff);
    w->restarts++;
    ev_timer_set(&w->restart_w, w->backoff, 0.);
    ev_timer_start(loop, &w->restart_w);
    notify_status();
}

static void spawn(struct worker *w)
{
    struct super *s = w->s;
    int nfd[2] = {-1, -1}, cfd[2] = {-1, -1};
    pid_t pid;

    if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, nfd) < 0 ||
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, cfd) < 0)
        goto fail;
    pid = fork();
    if (pid < 0)
        goto fail;
    if (pid == 0) {
        /* the worker: only async-signal-safe calls up to exec, except
         * setenv (this child has one thread) */
        char env[64 + CONFIG_MAX_LISTEN * 8];
        size_t o;
        sigset_t held;

        /* our own group: a terminal's Ctrl-C reaches the supervisor
         * alone, which forwards it once */
        setpgid(0, 0);
        /* what the supervisor forwards waits until the worker's loop
         * handles it (super_worker_signals()): a SIGHUP before would end
         * the new process */
        sigemptyset(&held);
        sigaddset(&held, SIGHUP);
        sigaddset(&held, SIGTERM);
        sigaddset(&held, SIGINT);
        sigprocmask(SIG_SETMASK, &held, NULL);
        o = (size_t)snprintf(env, sizeof(env), "%u/%u/%ld/%d/%d/", w->index,
                             s->n, (long)getppid(), nfd[1], cfd[1]);
        fcntl(nfd[1], F_SETFD, 0);
        fcntl(cfd[1], F_SETFD, 0);
        for (size_t a = 0; a < s->nlisten; a++) {
            int fd = s->socks[a][w->index];

            fcntl(fd, F_SETFD, 0);
            o += (size_t)snprintf(env + o, sizeof(env) - o, "%s%d",
                                  a ? "," : "", fd);
        }
        setenv(ENV_WORKER, env, 1);
        /* systemd's socket is the supervisor's alone (NotifyAccess=main) */
        unsetenv("NOTIFY_SOCKET");
        unsetenv("WATCHDOG_USEC");
        unsetenv("WATCHDOG_PID");
        execl("/proc/self/exe", "wtrelayd", "-c", s->file, (char *)NULL);
        _exit(127);
    }
    close(nfd[1]);
    close(cfd[1]);
    w->pid = pid;
    w->notify_fd = nfd[0];
    w->ctl_fd = cfd[0];
    w->ready = 0;
    w->started = w->heard = ev_now(s->loop);
    ev_io_init(&w->notify_io, notify_cb, w->notify_fd, EV_READ);
    w->notify_io.data = w;
    ev_io_start(s->loop, &w->notify_io);
    ev_io_init(&w->ctl_io, ctl_cb_super, w->ctl_fd, EV_READ);
    w->ctl_io.data = w;
    ev_io_start(s->loop, &w->ctl_io);
    ev_child_init(&w->child_w, child_cb, pid, 0);
    w->child_w.data = w;
    ev_child_start(s->loop, &w->child_w);
    log_info("supervisor: worker %u started (pid %d)", w->index, (int)pid);
    return;

fail:
    log_error("supervisor: cannot start worker %u: %s", w->index,
              strerror(errno));
    for (int i = 0; i < 2; i++) {
        if (nfd[i] >= 0)
            close(nfd[i]);
        if (cfd[i] >= 0)
            close(cfd[i]);
    }
    w->backoff = BACKOFF_MAX;
    ev_timer_set(&w->restart_w, w->backoff, 0.);
    ev_timer_start(s->loop, &w->restart_w);
}

/* ---- the supervisor's side of the control sockets ---- */

static double ping_interval(const struct super *s)
{
    double p = (double)s->cfg->worker_timeout_ms / 5000.;

    return p < PING_MIN ? PING_MIN : p > PING_MAX ? PING_MAX : p;
}

/* The page of the round under way (s->round_seq): every worker that was
 * asked answered, or the deadline came.  Silent ones are reported down;
 * the waiting /metrics requests get the page. */
static void round_end(struct super *s)
{
    char *bodies[CID_MAX_WORKERS] = {0}, *page;
    size_t lens[CID_MAX_WORKERS] = {0}, len = 0;
    struct sbuf b = {0};

    ev_timer_stop(s->loop, &s->round_w);
    s->round = 0;
    for (unsigned i = 0; i < s->n; i++) {
        struct worker *w = &s->w[i];

        if (w->asked)
            log_warn("supervisor: worker %u did not send its metrics within "
                     "%d ms: reported down",
                     i, ASK_TIMEOUT_MS);
        w->asked = 0;
        bodies[i] = w->page;
        lens[i] = w->pagelen;
    }
    page = super_metrics_merge(bodies, lens, s->n, &len);
    if (page) {
        sb_put(&b, page, len);
        free(page);
        sb_printf(&b, "# HELP wtrelayd_workers Worker processes configured "
                      "(workers = N).\n# TYPE wtrelayd_workers gauge\n"
                      "wtrelayd_workers %u\n",
                  s->n);
        sb_printf(&b, "# HELP wtrelayd_worker_up 1 while the worker runs, "
                      "has said it is ready and answered for this page.\n"
                      "# TYPE wtrelayd_worker_up gauge\n");
        for (unsigned i = 0; i < s->n; i++)
            sb_printf(&b, "wtrelayd_worker_up{worker=\"%u\"} %d\n", i,
                      s->w[i].pid > 0 && s->w[i].ready && s->w[i].answered);
        sb_printf(&b, "# HELP wtrelayd_worker_restarts_total Times the "
                      "supervisor restarted the worker.\n"
                      "# TYPE wtrelayd_worker_restarts_total counter\n");
        for (unsigned i = 0; i < s->n; i++)
            sb_printf(&b, "wtrelayd_worker_restarts_total{worker=\"%u\"} %u\n",
                      i, s->w[i].restarts);
        sb_printf(&b, "# HELP wtrelayd_worker_kills_total Times the "
                      "supervisor killed the worker for not answering "
                      "(worker_timeout).\n"
                      "# TYPE wtrelayd_worker_kills_total counter\n");
        for (unsigned i = 0; i < s->n; i++)
            sb_printf(&b, "wtrelayd_worker_kills_total{worker=\"%u\"} %u\n",
                      i, s->w[i].kills);
    }
    for (unsigned i = 0; i < s->n; i++) {
        free(s->w[i].page);
        s->w[i].page = NULL;
        s->w[i].answered = 0;
    }
    if (!page || b.oom) {
        free(b.p);
        b.p = NULL;
    }
    admin_metrics_answer(&s->admin, b.p, b.n);
    free(b.p);
}

/* Ends the round once no worker that was asked is still to answer. */
static void round_check(struct super *s)
{
    if (!s->round)
        return;
    for (unsigned i = 0; i < s->n; i++)
        if (s->w[i].asked)
            return;
    round_end(s);
}

static void round_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    round_end(t->data);
}

/* A /metrics request (admin, from the loop): every running worker is
 * asked at once and the page made when all answered or at the deadline.
 * A request while a round is under way joins it: many requests cost the
 * workers one round. */
static void metrics_begin(void *arg)
{
    struct super *s = arg;
    char req[32];
    size_t rl;
    int asked = 0;

    if (s->round)
        return;
    s->round = 1;
    rl = (size_t)snprintf(req, sizeof(req), "m %u\n", ++s->round_seq);
    for (unsigned i = 0; i < s->n; i++) {
        struct worker *w = &s->w[i];

        free(w->page);
        w->page = NULL;
        w->asked = w->answered = 0;
        if (w->pid > 0 && w->ctl_fd >= 0 && !w->killed &&
            send(w->ctl_fd, req, rl, MSG_NOSIGNAL | MSG_DONTWAIT) ==
                (ssize_t)rl)
            w->asked = asked = 1;
    }
    /* nobody to wait for: answered at the loop's next turn (never from
     * inside this call, which MHD makes) */
    ev_timer_set(&s->round_w, asked ? ASK_TIMEOUT_MS / 1000. : 0., 0.);
    ev_timer_start(s->loop, &s->round_w);
}

/* A complete answer from the worker's loop. */
static void answer_in(struct worker *w, int metrics, unsigned seq,
                      char *body, size_t len)
{
    struct super *s = w->s;

    w->heard = ev_now(s->loop);
    if (!metrics)
        return;
    if (!s->round || !w->asked || seq != s->round_seq) {
        free(body); /* late: for a round that has ended */
        return;
    }
    w->asked = 0;
    w->answered = 1;
    w->page = body;
    w->pagelen = len;
    round_check(s);
}

/* What the worker sent, in any split: "p SEQ\n", or "m SEQ LEN\n" and LEN
 * bytes.  -1 when it makes no sense (then it is read as silence). */
static int ctl_feed(struct worker *w, const char *p, size_t n)
{
    while (n > 0) {
        unsigned seq;
        size_t len;

        if (w->body) {
            size_t k = w->want - w->got < n ? w->want - w->got : n;

            memcpy(w->body + w->got, p, k);
            w->got += k;
            p += k;
            n -= k;
            if (w->got == w->want) {
                char *body = w->body;

                body[w->want] = '\0';
                w->body = NULL;
                answer_in(w, 1, w->body_seq, body, w->want);
            }
            continue;
        }
        if (*p != '\n') {
            if (w->hl == sizeof(w->hdr) - 1)
                return -1;
            w->hdr[w->hl++] = *p++;
            n--;
            continue;
        }
        p++;
        n--;
        w->hdr[w->hl] = '\0';
        w->hl = 0;
        if (sscanf(w->hdr, "p %u", &seq) == 1) {
            answer_in(w, 0, seq, NULL, 0);
        } else if (sscanf(w->hdr, "m %u %zu", &seq, &len) == 2 &&
                   len <= ASK_MAX) {
            if (len == 0) {
                answer_in(w, 1, seq, NULL, 0); /* it had no page */
                continue;
            }
            if (!(w->body = malloc(len + 1)))
                return -1;
            w->want = len;
            w->got = 0;
            w->body_seq = seq;
        } else {
            return -1;
        }
    }
    return 0;
}

static void ctl_cb_super(struct ev_loop *loop, ev_io *io, int revents)
{
    struct worker *w = io->data;
    char buf[16384];

    (void)revents;
    /* 256 KiB a wake-up at most: a big page does not hold the loop */
    for (int i = 0; i < 16; i++) {
        ssize_t k = recv(w->ctl_fd, buf, sizeof(buf), MSG_DONTWAIT);

        if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR)) {
            ev_io_stop(loop, io); /* it is gone: child_cb follows */
            return;
        }
        if (k < 0)
            return;
        if (ctl_feed(w, buf, (size_t)k) < 0) {
            /* our own program: a bug; what follows cannot be framed,
             * so nothing more is read and the ping timeout ends it */
            log_error("supervisor: worker %u: malformed control message; "
                      "no longer read",
                      w->index);
            ev_io_stop(loop, io);
            free(w->body);
            w->body = NULL;
            return;
        }
    }
}

/*
 * Liveness: a ping to every worker's loop; one whose loop has not
 * answered anything for worker_timeout (stuck in a callback, livelocked,
 * SIGSTOPped) is killed, and child_cb restarts it with the usual backoff.
 * Also while draining: a stuck worker would hold the stop until kill_w.
 */
static void ping_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct super *s = t->data;
    double now = ev_now(loop), iv = ping_interval(s);
    double limit = (double)s->cfg->worker_timeout_ms / 1000.;
    char req[32];
    size_t rl;

    (void)revents;
    /* our own loop did not run for a while (stopped itself, a suspended
     * machine): the workers' silence meanwhile is not theirs */
    if (s->pinged > 0 && now - s->pinged > 2 * iv + 1.) {
        log_warn("supervisor: its own loop stood for %.1f s; the workers' "
                 "silence is counted from now",
                 now - s->pinged);
        for (unsigned i = 0; i < s->n; i++)
            s->w[i].heard = now;
    }
    s->pinged = now;
    rl = (size_t)snprintf(req, sizeof(req), "p %u\n", ++s->ping_seq);
    for (unsigned i = 0; i < s->n; i++) {
        struct worker *w = &s->w[i];

        if (w->pid <= 0 || w->killed)
            continue;
        if (now - w->heard > limit) {
            log_error("supervisor: worker %u (pid %d) has not answered for "
                      "%.1f s (worker_timeout): killed",
                      i, (int)w->pid, now - w->heard);
            w->killed = 1;
            w->kills++;
            kill(w->pid, SIGKILL);
            continue;
        }
        /* a full socket (a worker not reading) loses the ping: its
         * silence is what counts */
        (void)send(w->ctl_fd, req, rl, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    t->repeat = iv;
    ev_timer_again(loop, t);
}

static void view(void *arg, struct admin_view *v)
{
    struct super *s = arg;

    memset(v, 0, sizeof(*v));
    v->cfg = s->cfg;
    v->cert_sha256 = tls_ctx_cert_sha256(s->tls);
    v->cert_hashable = tls_ctx_cert_hashable(s->tls);
    v->cert_not_after = tls_ctx_cert_not_after(s->tls);
    v->draining = s->stopping;
    for (unsigned i = 0; i < s->n; i++)
        v->connections_open += s->w[i].conns;
    v->metrics_begin = metrics_begin;
    v->metrics_arg = s;
    for (unsigned i = 0; i < s->n; i++) {
        const struct worker *w = &s->w[i];

        if (w->pid <= 0 || !w->ready) {
            snprintf(s->unhealthy, sizeof(s->unhealthy), "worker %u down\n",
                     i);
            v->unhealthy = s->unhealthy;
            break;
        }
        if (ev_now(s->loop) - w->heard > PING_SILENT * ping_interval(s)) {
            snprintf(s->unhealthy, sizeof(s->unhealthy),
                     "worker %u not answering\n", i);
            v->unhealthy = s->unhealthy;
            break;
        }
    }
}

static const struct admin_source source = {.view = view};

static void status_text(char *buf, size_t len, void *arg)
{
    struct super *s = arg;
    unsigned long long c = 0, n = 0;

    for (unsigned i = 0; i < s->n; i++) {
        c += s->w[i].conns;
        n += s->w[i].sessions;
    }
    snprintf(buf, len, "%llu connections, %llu sessions (%u of %u workers up)",
             c, n, running(s), s->n);
}

static void kill_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct super *s = t->data;

    (void)loop;
    (void)revents;
    for (unsigned i = 0; i < s->n; i++)
        if (s->w[i].pid > 0) {
            log_warn("supervisor: worker %u still running: killed", i);
            kill(s->w[i].pid, SIGKILL);
        }
}

static void signal_cb(struct ev_loop *loop, ev_signal *sig, int revents)
{
    struct super *s = sig->data;

    (void)revents;
    if (!s->stopping) {
        s->stopping = 1;
        log_info("supervisor: signal %d: stopping %u workers", sig->signum,
                 running(s));
        notify_stopping();
        for (unsigned i = 0; i < s->n; i++)
            ev_timer_stop(loop, &s->w[i].restart_w);
        /* each drains for shutdown_timeout; past that and a margin, the
         * service ends anyway */
        ev_timer_set(&s->kill_w,
                     (double)s->cfg->shutdown_timeout_ms / 1000. + 10., 0.);
        ev_timer_start(loop, &s->kill_w);
    } else {
        log_info("supervisor: signal %d again: workers stop now",
                 sig->signum);
    }
    for (unsigned i = 0; i < s->n; i++)
        if (s->w[i].pid > 0)
            kill(s->w[i].pid, sig->signum);
    if (running(s) == 0)
        ev_break(loop, EVBREAK_ALL);
}

static void reload_timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct super *s = t->data;

    (void)loop;
    (void)revents;
    if (!s->reloading)
        return;
    s->reloading = 0;
    log_warn("supervisor: not every worker said it reloaded within %.0f s",
             RELOAD_TIMEOUT_S);
    notify_ready();
}

/*
 * SIGHUP: the file is checked here first (what would fail in every
 * worker fails once, here, and nothing is forwarded); a good one goes to
 * every worker, each reloading as a single daemon does.  listen cannot
 * change: the groups were bound at start (a restart applies it).
 */
static void sighup_cb(struct ev_loop *loop, ev_signal *sig, int revents)
{
    struct super *s = sig->data;
    char err[CONFIG_ERR_LEN];
    struct config *cfg;
    struct tls_ctx *tls;
    int same;

    (void)revents;
    if (s->stopping) {
        log_warn("SIGHUP: shutting down; reload ignored");
        return;
    }
    notify_reloading();
    log_info("supervisor: SIGHUP: reloading %s in %u workers", s->file, s->n);
    if (!(cfg = config_new(s->file, err, sizeof(err)))) {
        log_error("reload failed, the running configuration stays: %s", err);
        notify_ready();
        return;
    }
    same = cfg->nlisten == s->nlisten;
    for (size_t i = 0; same && i < cfg->nlisten; i++)
        same = config_listen_same(&cfg->listen[i], &s->cfg->listen[i]);
    if (!same) {
        log_error("reload failed, the running configuration stays: listen "
                  "changed; with workers > 1 that takes a restart");
        config_unref(cfg);
        notify_ready();
        return;
    }
    if (!(tls = tls_ctx_new(cfg->cert, cfg->key, err, sizeof(err)))) {
        log_error("reload failed, the running configuration stays: %s", err);
        config_unref(cfg);
        notify_ready();
        return;
    }
    if (cfg->workers != s->n)
        log_warn("supervisor: workers = %llu takes a restart; %u workers "
                 "keep running",
                 (unsigned long long)cfg->workers, s->n);
    admin_reload_check(&s->admin, cfg);
    config_unref(s->cfg);
    s->cfg = cfg;
    tls_ctx_free(s->tls);
    s->tls = tls;
    log_level = cfg->log_level;
    log_format = cfg->log_format;
    s->reloading = 1;
    for (unsigned i = 0; i < s->n; i++)
        if (s->w[i].pid > 0) {
            s->w[i].ready = 0;
            kill(s->w[i].pid, SIGHUP);
        }
    ev_timer_set(&s->reload_w, RELOAD_TIMEOUT_S, 0.);
    ev_timer_start(loop, &s->reload_w);
    check_ready(s);
}

/* Binds the groups: socket i of each is worker i's. */
static int bind_groups(struct super *s, char *err, size_t errlen)
{
    const char *nosteer = getenv(ENV_NO_STEERING);
    int steer = !(nosteer && *nosteer && strcmp(nosteer, "0") != 0);

    for (size_t a = 0; a < s->nlisten; a++) {
        const struct config_listen *l = &s->cfg->listen[a];
        struct udp_sock probe;

        /* SO_REUSEPORT would let us join a group another process of this
         * user already has on the address (a second instance): a plain
         * bind first fails then, "address in use", as without workers */
        if (udp_open(&probe, (const struct sockaddr *)&l->addr, l->addrlen,
                     err, errlen) < 0)
            return -1;
        udp_close(&probe);
        for (unsigned i = 0; i < s->n; i++) {
            struct udp_sock u;

            if (udp_open_reuseport(&u, (const struct sockaddr *)&l->addr,
                                   l->addrlen, err, errlen) < 0)
                return -1;
            s->socks[a][i] = u.fd;
            if (s->cfg->socket_buffer_bytes)
                udp_set_buffers(&u, s->cfg->socket_buffer_bytes);
        }
        if (steer && cid_steer_attach(s->socks[a][0]) < 0) {
            snprintf(err, errlen, "udp %s: SO_ATTACH_REUSEPORT_CBPF: %s",
                     l->text, strerror(errno));
            return -1;
        }
        if (steer)
            log_info("supervisor: udp %s: %u sockets, steered by connection "
                     "ID",
                     l->text, s->n);
        else
            log_warn("supervisor: udp %s: %u sockets NOT steered (%s: for "
                     "tests only; connections break when their address "
                     "changes)",
                     l->text, s->n, ENV_NO_STEERING);
    }
    return 0;
}

int super_run(struct config *cfg, const char *file, const char *version)
{
    static struct super sv;
    struct super *s = &sv;
    char err[CONFIG_ERR_LEN];
    int rv = 1;

    memset(s, 0, sizeof(*s));
    for (size_t a = 0; a < CONFIG_MAX_LISTEN; a++)
        for (unsigned i = 0; i < CID_MAX_WORKERS; i++)
            s->socks[a][i] = -1;
    s->cfg = config_ref(cfg);
    s->file = file;
    s->version = version;
    s->n = (unsigned)cfg->workers;
    s->nlisten = cfg->nlisten;
    for (unsigned i = 0; i < CID_MAX_WORKERS; i++) {
        struct worker *w = &s->w[i];

        w->s = s;
        w->index = i;
        w->notify_fd = w->ctl_fd = -1;
        ev_init(&w->restart_w, restart_cb);
        w->restart_w.data = w;
    }
    log_info("wtrelayd %s: supervisor of %u workers (pid %d)", version, s->n,
             (int)getpid());
    if (!(s->tls = tls_ctx_new(cfg->cert, cfg->key, err, sizeof(err)))) {
        log_error("%s", err);
        goto done;
    }
    s->loop = ev_default_loop(EVFLAG_AUTO);
    if (bind_groups(s, err, sizeof(err)) < 0) {
        log_error("%s", err);
        goto done;
    }
    signal(SIGPIPE, SIG_IGN);
    ev_signal_init(&s->sigint_w, signal_cb, SIGINT);
    ev_signal_init(&s->sigterm_w, signal_cb, SIGTERM);
    ev_signal_init(&s->sighup_w, sighup_cb, SIGHUP);
    s->sigint_w.data = s->sigterm_w.data = s->sighup_w.data = s;
    ev_signal_start(s->loop, &s->sigint_w);
    ev_signal_start(s->loop, &s->sigterm_w);
    ev_signal_start(s->loop, &s->sighup_w);
    ev_init(&s->kill_w, kill_cb);
    s->kill_w.data = s;
    ev_init(&s->reload_w, reload_timeout_cb);
    s->reload_w.data = s;
    ev_init(&s->round_w, round_cb);
    s->round_w.data = s;
    ev_init(&s->ping_w, ping_cb);
    s->ping_w.data = s;
    s->ping_w.repeat = ping_interval(s);
    ev_timer_again(s->loop, &s->ping_w);
    if (admin_start_source(&s->admin, s->loop, cfg, &source, s, version, err,
                           sizeof(err)) < 0) {
        log_error("%s", err);
        goto done;
    }
    notify_init(s->loop, status_text, s);
    for (unsigned i = 0; i < s->n; i++)
        spawn(&s->w[i]);

    ev_run(s->loop, 0);

    rv = 0;
    notify_stop(s->loop);
    ev_timer_stop(s->loop, &s->ping_w);
    ev_timer_stop(s->loop, &s->round_w);
    admin_stop(&s->admin);
    log_info("supervisor: stopped");

done:
    for (unsigned i = 0; i < s->n; i++) {
        if (s->w[i].pid > 0)
            kill(s->w[i].pid, SIGKILL);
        if (s->loop)
            ev_timer_stop(s->loop, &s->w[i].restart_w);
        close_worker_fds(&s->w[i]);
        free(s->w[i].page);
        s->w[i].page = NULL;
    }
    for (size_t a = 0; a < CONFIG_MAX_LISTEN; a++)
        for (unsigned i = 0; i < CID_MAX_WORKERS; i++)
            if (s->socks[a][i] >= 0)
                close(s->socks[a][i]);
    config_unref(s->cfg);
    tls_ctx_free(s->tls);
    return rv;
}
