/*
 * tcprr: the ceiling of "one TCP connection per request" on this machine,
 * for make bench's forward rows.  N requests, C at once, against a TCP
 * echo server on 127.0.0.1:PORT: each one connects, writes SIZE bytes,
 * shuts its side, reads the answer to EOF and closes, exactly what the
 * forward handler does for a short stream.  Prints one JSON line.
 *
 *   tcprr -p PORT [-n N] [-c C] [-s SIZE]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct req {
    int fd;
    int connected;
    size_t got;
    uint64_t t0;
};

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

static struct sockaddr_in dst;
static size_t size = 32;
static char payload[65536];

/* Starts request r: 0, or -1 when no socket could be had. */
static int req_start(int ep, struct req *r)
{
    struct epoll_event e = {.events = EPOLLOUT, .data.ptr = r};

    r->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (r->fd < 0)
        return -1;
    r->connected = 0;
    r->got = 0;
    r->t0 = now_ns();
    if (connect(r->fd, (struct sockaddr *)&dst, sizeof(dst)) < 0 &&
        errno != EINPROGRESS) {
        close(r->fd);
        return -1;
    }
    return epoll_ctl(ep, EPOLL_CTL_ADD, r->fd, &e);
}

int main(int argc, char **argv)
{
    unsigned long n = 100000, c = 100, done = 0, started = 0, failed = 0;
    int ep, opt, port = 0;
    struct req *reqs;
    uint64_t *lat, t0, el;
    static char buf[65536];

    while ((opt = getopt(argc, argv, "p:n:c:s:")) != -1) {
        if (opt == 'p')
            port = atoi(optarg);
        else if (opt == 'n')
            n = strtoul(optarg, NULL, 10);
        else if (opt == 'c')
            c = strtoul(optarg, NULL, 10);
        else if (opt == 's')
            size = strtoul(optarg, NULL, 10);
        else
            return 2;
    }
    if (port <= 0 || n == 0 || c == 0 || c > 10000 || size == 0 ||
        size > sizeof(payload)) {
        fprintf(stderr, "usage: tcprr -p PORT [-n N] [-c C<=10000] "
                        "[-s SIZE<=65536]\n");
        return 2;
    }
    if (c > n)
        c = n;
    dst.sin_family = AF_INET;
    dst.sin_port = htons((uint16_t)port);
    dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    memset(payload, 'r', size);
    ep = epoll_create1(0);
    reqs = calloc(c, sizeof(*reqs));
    lat = calloc(n, sizeof(*lat));
    if (ep < 0 || !reqs || !lat)
        return 1;
    t0 = now_ns();
    for (unsigned long i = 0; i < c; i++, started++)
        if (req_start(ep, &reqs[i]) < 0)
            return 1;
    /* bounded: every request ends (EOF or error) or the run stops at 60 s */
    while (done + failed < n && now_ns() - t0 < 60000000000ull) {
        struct epoll_event evs[256];
        int k = epoll_wait(ep, evs, 256, 1000);

        for (int i = 0; i < k; i++) {
            struct req *r = evs[i].data.ptr;
            ssize_t m;
            int err = 0;
            socklen_t el2 = sizeof(err);

            if (!r->connected) {
                struct epoll_event e = {.events = EPOLLIN, .data.ptr = r};

                getsockopt(r->fd, SOL_SOCKET, SO_ERROR, &err, &el2);
                if (err || write(r->fd, payload, size) != (ssize_t)size) {
                    failed++;
                    goto next;
                }
                shutdown(r->fd, SHUT_WR);
                r->connected = 1;
                epoll_ctl(ep, EPOLL_CTL_MOD, r->fd, &e);
                continue;
            }
            m = read(r->fd, buf, sizeof(buf));
            if (m > 0) {
                r->got += (size_t)m;
                continue;
            }
            if (m < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (m == 0 && r->got == size)
                lat[done++] = now_ns() - r->t0;
            else
                failed++;
        next:
            close(r->fd);
            if (started < n) {
                started++;
                if (req_start(ep, r) < 0)
                    failed++;
            }
        }
    }
    el = now_ns() - t0;
    qsort(lat, done, sizeof(*lat), cmp_u64);
    printf("{\"tool\":\"tcprr\",\"requests\":%lu,\"concurrency\":%lu,"
           "\"size\":%zu,\"done\":%lu,\"failed\":%lu,\"seconds\":%.3f,"
           "\"rps\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f}\n",
           n, c, size, done, failed, (double)el / 1e9,
           el ? (double)done / ((double)el / 1e9) : 0.,
           done ? (double)lat[done / 2] / 1e3 : 0.,
           done ? (double)lat[(done * 99) / 100] / 1e3 : 0.);
    return failed ? 1 : 0;
}
