/*
 * notifylisten: a stand-in for systemd's end of NOTIFY_SOCKET
 * (sd_notify(3)), for tests/it/50-notify.sh.
 *
 *   notifylisten SOCKET SECONDS [READY-COMMAND]
 *
 * Binds an AF_UNIX datagram socket at SOCKET and prints every message it
 * receives as one line, "MS MESSAGE", MS the CLOCK_MONOTONIC time in
 * milliseconds and the message's newlines shown as '|'.  When a message
 * carries READY=1 the first time, it runs READY-COMMAND (sh -c) at once
 * and prints "MS ready-command exit N": what a unit ordered after ours
 * would see.  Exits after SECONDS, or at SIGTERM.
 */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    char buf[4096];
    long long end;
    int fd, ready = 0;

    if (argc < 3 || argc > 4 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "usage: notifylisten SOCKET SECONDS [READY-COMMAND]\n");
        return 2;
    }
    signal(SIGTERM, on_term);
    strcpy(sa.sun_path, argv[1]);
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        perror("notifylisten: bind");
        return 1;
    }
    printf("%lld listening\n", now_ms());
    fflush(stdout);
    end = now_ms() + atoll(argv[2]) * 1000;
    while (!stop && now_ms() < end) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t n;

        if (poll(&p, 1, 100) <= 0)
            continue;
        n = recv(fd, buf, sizeof(buf) - 1, 0);
        if (n < 0)
            continue;
        buf[n] = '\0';
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] == '\n' || buf[i] == '\0')
                buf[i] = '|';
        printf("%lld %s\n", now_ms(), buf);
        fflush(stdout);
        if (!ready && argc == 4 &&
            (strncmp(buf, "READY=1", 7) == 0 || strstr(buf, "|READY=1"))) {
            int st = system(argv[3]);

            ready = 1;
            printf("%lld ready-command exit %d\n", now_ms(),
                   WIFEXITED(st) ? WEXITSTATUS(st) : 128);
            fflush(stdout);
        }
    }
    unlink(argv[1]);
    return 0;
}
