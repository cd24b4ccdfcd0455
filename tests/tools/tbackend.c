/*
 * tbackend: TCP and UDP backends for testing the forward handler
 * (tests/it/48-forward.sh).  Listens on 127.0.0.1 (port 0: any free one),
 * prints "listening PORT" and serves until killed; each TCP connection is
 * served by a child process of its own.
 *
 *   tbackend tcp PORT MODE      MODE: echo       everything back, then FIN
 *                                     halfclose  read to EOF, then all of it
 *                                                back, then close
 *                                     name:NAME  read to EOF, answer NAME
 *                                     sink       accept, never read
 *                                     flood      accept, write forever
 *                                     reset      read a little, then RST
 *                                     proxy      a PROXY v2 header first:
 *                                                answer what it says (a
 *                                                line), then echo
 *                                     noaccept   never accept (the backlog
 *                                                full: connects time out)
 *                                     evecho     echo, every connection in
 *                                                one epoll loop (benchmarks:
 *                                                no fork per connection)
 *                                     count:FILE read slowly to EOF
 *                                                answering each read with
 *                                                "k", write the byte count
 *                                                (and any error) to FILE
 *   tbackend udp PORT MODE      MODE: echo, or proxy (the first datagram
 *                                     of each peer is a PROXY v2 header:
 *                                     answer what it says, then echo)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proxy.h"

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;

    while (n > 0) {
        ssize_t w = write(fd, c, n);

        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

/* "src=1.2.3.4:5 dst=6.7.8.9:10 authority=A path=P\n" */
static int describe(const struct proxy_info *pi, char *out, size_t cap)
{
    char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
    unsigned sp, dp;

    if (pi->family == AF_INET) {
        const struct sockaddr_in *a = (const void *)&pi->src,
                                 *b = (const void *)&pi->dst;

        inet_ntop(AF_INET, &a->sin_addr, s, sizeof(s));
        inet_ntop(AF_INET, &b->sin_addr, d, sizeof(d));
        sp = ntohs(a->sin_port);
        dp = ntohs(b->sin_port);
    } else if (pi->family == AF_INET6) {
        const struct sockaddr_in6 *a = (const void *)&pi->src,
                                  *b = (const void *)&pi->dst;

        inet_ntop(AF_INET6, &a->sin6_addr, s, sizeof(s));
        inet_ntop(AF_INET6, &b->sin6_addr, d, sizeof(d));
        sp = ntohs(a->sin6_port);
        dp = ntohs(b->sin6_port);
    } else {
        return snprintf(out, cap, "proxy: no addresses\n");
    }
    return snprintf(out, cap, "%s src=%s:%u dst=%s:%u authority=%.*s path=%.*s\n",
                    pi->dgram ? "dgram" : "stream", s, sp, d, dp,
                    (int)pi->authority_len, (const char *)pi->authority,
                    (int)pi->path_len, (const char *)pi->path);
}

static void serve_tcp(int fd, const char *mode)
{
    static char buf[1 << 16];
    ssize_t n;

    if (strcmp(mode, "echo") == 0) {
        while ((n = read(fd, buf, sizeof(buf))) > 0)
            if (write_all(fd, buf, (size_t)n) < 0)
                return;
        shutdown(fd, SHUT_WR);
    } else if (strcmp(mode, "halfclose") == 0 ||
               strncmp(mode, "name:", 5) == 0) {
        size_t cap = 1 << 20, len = 0;
        char *all = malloc(cap);

        while (all && (n = read(fd, all + len, cap - len)) > 0) {
            len += (size_t)n;
            if (len == cap && !(all = realloc(all, cap *= 2)))
                return;
        }
        if (all && n == 0) { /* EOF seen: now the answer */
            if (mode[0] == 'n')
                write_all(fd, mode + 5, strlen(mode + 5));
            else
                write_all(fd, all, len);
        }
        free(all);
    } else if (strncmp(mode, "count:", 6) == 0) {
        unsigned long long total = 0;
        FILE *f;

        /* an answer to every read, as a chatty backend would, and slow
         * reads: the daemon's socket holds bytes not yet sent when the
         * stream ends, and it must read the answers, or its close would
         * be an RST that drops them */
        while ((n = read(fd, buf, sizeof(buf))) > 0) {
            total += (unsigned long long)n;
            if (write_all(fd, "k", 1) < 0)
                break;
            usleep(2000);
        }
        if ((f = fopen(mode + 6, "a"))) {
            fprintf(f, n == 0 ? "%llu\n" : "%llu then %s\n", total,
                    strerror(errno));
            fclose(f);
        }
    } else if (strcmp(mode, "sink") == 0) {
        pause();
    } else if (strcmp(mode, "flood") == 0) {
        memset(buf, 'f', sizeof(buf));
        while (write_all(fd, buf, sizeof(buf)) == 0)
            ;
    } else if (strcmp(mode, "reset") == 0) {
        struct linger l = {1, 0};

        read(fd, buf, 1);
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    } else if (strcmp(mode, "proxy") == 0) {
        size_t len = 0;
        struct proxy_info pi;
        ssize_t h = 0;
        char line[8192];

        while (h == 0 && (n = read(fd, buf + len, sizeof(buf) - len)) > 0) {
            len += (size_t)n;
            h = proxy_v2_decode((uint8_t *)buf, len, &pi);
        }
        if (h <= 0) {
            write_all(fd, "proxy: no header\n", 17);
            return;
        }
        write_all(fd, line, (size_t)describe(&pi, line, sizeof(line)));
        write_all(fd, buf + h, len - (size_t)h);
        while ((n = read(fd, buf, sizeof(buf))) > 0)
            if (write_all(fd, buf, (size_t)n) < 0)
                return;
        shutdown(fd, SHUT_WR);
    }
}

static void serve_udp(int fd, const char *mode)
{
    static uint8_t buf[65536];
    /* the peers already seen (the first datagram of each is the header) */
    struct sockaddr_storage seen[256];
    socklen_t seenlen[256];
    size_t nseen = 0;

    for (;;) {
        struct sockaddr_storage from;
        socklen_t fl = sizeof(from);
        ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from,
                             &fl);
        int first = 1;

        if (n < 0)
            continue;
        for (size_t i = 0; i < nseen; i++)
            if (seenlen[i] == fl && memcmp(&seen[i], &from, fl) == 0)
                first = 0;
        if (first && nseen < 256) {
            seen[nseen] = from;
            seenlen[nseen++] = fl;
        }
        if (strcmp(mode, "proxy") == 0 && first) {
            struct proxy_info pi;
            char line[8192];
            int k = proxy_v2_decode(buf, (size_t)n, &pi) > 0
                        ? describe(&pi, line, sizeof(line))
                        : snprintf(line, sizeof(line), "proxy: no header\n");

            sendto(fd, line, (size_t)k, 0, (struct sockaddr *)&from, fl);
            continue;
        }
        sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, fl);
    }
}

/* An echo server in one epoll loop: a connection's unsent answer (at most
 * one read's worth) stops its reading till written. */
struct ev_conn {
    int fd;
    size_t off, len;
    char buf[1 << 16];
};

static void ev_want(int ep, struct ev_conn *c, uint32_t events)
{
    struct epoll_event e = {.events = events, .data.ptr = c};

    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
}

static void ev_close(struct ev_conn *c)
{
    close(c->fd);
    free(c);
}

static void serve_evecho(int lfd)
{
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = NULL}, evs[64];
    int ep = epoll_create1(0);

    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &e) < 0)
        return;
    for (;;) {
        int n = epoll_wait(ep, evs, 64, -1);

        for (int i = 0; i < n; i++) {
            struct ev_conn *c = evs[i].data.ptr;
            ssize_t k;

            if (!c) {
                int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
                struct epoll_event ce = {.events = EPOLLIN};

                if (fd < 0)
                    continue;
                if (!(c = calloc(1, sizeof(*c)))) {
                    close(fd);
                    continue;
                }
                c->fd = fd;
                ce.data.ptr = c;
                epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ce);
                continue;
            }
            if (c->len == 0) {
                k = read(c->fd, c->buf, sizeof(c->buf));
                if (k == 0) {
                    shutdown(c->fd, SHUT_WR); /* FIN answered: done */
                    ev_close(c);
                    continue;
                }
                if (k < 0) {
                    if (errno != EAGAIN && errno != EINTR)
                        ev_close(c);
                    continue;
                }
                c->off = 0;
                c->len = (size_t)k;
            }
            k = write(c->fd, c->buf + c->off, c->len - c->off);
            if (k < 0 && errno != EAGAIN && errno != EINTR) {
                ev_close(c);
                continue;
            }
            if (k > 0)
                c->off += (size_t)k;
            if (c->off == c->len) {
                c->len = 0;
                ev_want(ep, c, EPOLLIN);
            } else {
                ev_want(ep, c, EPOLLOUT);
            }
        }
    }
}

int main(int argc, char **argv)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t al = sizeof(a);
    int udp, fd;

    if (argc != 4 || (strcmp(argv[1], "tcp") && strcmp(argv[1], "udp"))) {
        fprintf(stderr, "usage: tbackend tcp|udp PORT MODE\n");
        return 2;
    }
    udp = argv[1][0] == 'u';
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)atoi(argv[2]));
    fd = socket(AF_INET, udp ? SOCK_DGRAM : SOCK_STREAM, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &(int){1},
                             sizeof(int)) < 0 ||
        bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &al) < 0 ||
        (!udp && listen(fd, strcmp(argv[3], "noaccept") == 0 ? 0 : 128) < 0)) {
        perror("tbackend");
        return 1;
    }
    printf("listening %u\n", ntohs(a.sin_port));
    fflush(stdout);
    if (udp) {
        serve_udp(fd, argv[3]);
        return 0;
    }
    signal(SIGCHLD, SIG_IGN); /* no zombies */
    signal(SIGPIPE, SIG_IGN);
    if (strcmp(argv[3], "noaccept") == 0) {
        /* fill the accept queue: later SYNs are dropped, connects hang */
        for (int i = 0; i < 4; i++) {
            int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

            connect(c, (struct sockaddr *)&a, sizeof(a));
        }
        for (;;)
            pause();
    }
    if (strcmp(argv[3], "evecho") == 0) {
        serve_evecho(fd);
        return 1;
    }
    for (;;) {
        int c = accept(fd, NULL, NULL);

        if (c < 0)
            continue;
        if (fork() == 0) {
            close(fd);
            serve_tcp(c, argv[3]);
            close(c);
            _exit(0);
        }
        close(c);
    }
}
