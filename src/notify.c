/* notify: see notify.h.  Owns the watchdog and STATUS timers. */
#include "notify.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "log.h"

static struct {
    int on; /* NOTIFY_SOCKET was set at notify_init(), or fd */
    int fd; /* a worker's line to its supervisor (-1: systemd's socket) */
    const char *state;
    notify_status_fn status;
    void *arg;
    double watchdog; /* ping interval, s; 0 = off */
    ev_timer watchdog_w, status_w;
} nt = {.state = "starting", .fd = -1};

static void send_line(const char *msg)
{
    int rv;

    if (!nt.on)
        return;
    if (nt.fd >= 0) {
        /* one datagram a message; a supervisor that stopped reading
         * costs a lost line, never a blocked loop */
        rv = send(nt.fd, msg, strlen(msg), MSG_DONTWAIT | MSG_NOSIGNAL) < 0
                 ? -errno
                 : 0;
    } else {
        /* a manager that went away must not stop the daemon: noted,
         * ignored */
        rv = sd_notify(0, msg);
    }
    if (rv < 0)
        log_debug("sd_notify: error %d", rv);
    else if (strncmp(msg, "WATCHDOG=", 9) != 0 && strncmp(msg, "STATUS=", 7) != 0)
        log_debug("sd_notify: %.*s", (int)strcspn(msg, "\n"), msg);
}

void notify_status(void)
{
    char counts[160], line[224];

    if (!nt.on)
        return;
    counts[0] = '\0';
    if (nt.status)
        nt.status(counts, sizeof(counts), nt.arg);
    snprintf(line, sizeof(line), "STATUS=%s%s%s", nt.state,
             counts[0] ? ": " : "", counts);
    send_line(line);
}

static void watchdog_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    /* from the loop itself: a loop stuck in one callback sends nothing,
     * and systemd kills and restarts it after WatchdogSec */
    send_line("WATCHDOG=1");
}

static void status_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    notify_status();
}

int notify_init(struct ev_loop *loop, notify_status_fn status, void *arg)
{
    uint64_t usec = 0;
    const char *sock = getenv("NOTIFY_SOCKET");

    nt.on = (sock && *sock) || nt.fd >= 0;
    nt.status = status;
    nt.arg = arg;
    if (!nt.on)
        return 0;
    /* > 0 only when WATCHDOG_USEC is set and WATCHDOG_PID, if set, is us */
    if (nt.fd < 0 && sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
        /* sd_watchdog_enabled(3): ping at half the interval */
        nt.watchdog = (double)usec / 2e6;
        ev_timer_init(&nt.watchdog_w, watchdog_cb, 0., nt.watchdog);
        ev_timer_start(loop, &nt.watchdog_w);
    }
    ev_timer_init(&nt.status_w, status_cb, NOTIFY_STATUS_INTERVAL,
                  NOTIFY_STATUS_INTERVAL);
    ev_timer_start(loop, &nt.status_w);
    if (nt.fd >= 0)
        log_debug("notify: to the supervisor");
    else
        log_debug("notify: NOTIFY_SOCKET set, watchdog every %.3f s",
                  nt.watchdog);
    return 0;
}

void notify_set_fd(int fd)
{
    nt.fd = fd;
}

void notify_stop(struct ev_loop *loop)
{
    if (!nt.on)
        return;
    ev_timer_stop(loop, &nt.watchdog_w);
    ev_timer_stop(loop, &nt.status_w);
}

void notify_ready(void)
{
    nt.state = "serving";
    send_line("READY=1");
    notify_status();
}

void notify_reloading(void)
{
    char line[64];
    struct timespec ts;

    nt.state = "reloading";
    clock_gettime(CLOCK_MONOTONIC, &ts);
    snprintf(line, sizeof(line), "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)ts.tv_sec * 1000000ULL +
                 (unsigned long long)ts.tv_nsec / 1000ULL);
    send_line(line);
    notify_status();
}

void notify_stopping(void)
{
    nt.state = "draining";
    send_line("STOPPING=1");
    notify_status();
}

double notify_watchdog_interval(void)
{
    return nt.on ? nt.watchdog : 0.;
}
