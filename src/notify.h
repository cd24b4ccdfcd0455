/*
 * notify: the systemd service manager protocol (sd_notify(3)): READY,
 * RELOADING, STOPPING, STATUS lines and the watchdog pings, all from the
 * event loop.  Without NOTIFY_SOCKET in the environment every call is a
 * no-op, so the daemon runs the same under systemd, in a terminal or in a
 * test.
 */
#ifndef WTRELAYD_NOTIFY_H
#define WTRELAYD_NOTIFY_H

#include <ev.h>
#include <stddef.h>

/* Seconds between STATUS= updates while nothing else changes. */
#define NOTIFY_STATUS_INTERVAL 5.0

/* Writes the current counts, e.g. "12 connections, 30 sessions", into buf
 * (a NUL-terminated line, no newline). */
typedef void (*notify_status_fn)(char *buf, size_t len, void *arg);

/* Starts the watchdog timer (at half of WATCHDOG_USEC, when systemd asks
 * for pings: sd_watchdog_enabled()) and the STATUS timer.  Returns 0, or
 * 0 without doing anything when there is no NOTIFY_SOCKET. */
int notify_init(struct ev_loop *loop, notify_status_fn status, void *arg);
/* A worker (workers = N): the same lines go to fd, a datagram socket
 * whose other end is the supervisor, which alone speaks to systemd.
 * Before notify_init(). */
void notify_set_fd(int fd);
/* Stops both timers (the loop may then end by itself). */
void notify_stop(struct ev_loop *loop);

/* READY=1 with a fresh STATUS: the configuration is loaded and the sockets
 * are bound (start-up, and after a reload). */
void notify_ready(void);
/* RELOADING=1 with MONOTONIC_USEC (systemd 253's Type=notify-reload wants
 * it; older managers ignore it); notify_ready() ends the reload. */
void notify_reloading(void);
/* STOPPING=1: the drain has begun; STATUS says "draining". */
void notify_stopping(void);
/* STATUS= now, from the status callback (a state change). */
void notify_status(void);

/* For the tests: the watchdog interval in seconds, 0 when off. */
double notify_watchdog_interval(void);

#endif
