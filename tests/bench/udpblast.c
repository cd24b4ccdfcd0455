/*
 * udpblast: the loopback UDP ceiling for make bench, the physical reference
 * next to the QUIC figures.  One sender thread (sendmmsg, or UDP GSO with
 * -g) and one receiver thread (recvmmsg) on 127.0.0.1, for -t seconds;
 * prints one JSON line with what arrived.
 *
 *   udpblast [-t SECONDS] [-s PAYLOAD] [-g]
 *   udpblast -p COUNT [-r RATE] [-s PAYLOAD]
 *
 * -p: COUNT ping-pongs of one datagram between two threads instead, the
 * loopback round trip that a QUIC datagram echo is compared with.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

#define BATCH 64
#define BUFSZ (4 * 1024 * 1024)

static double seconds = 3;
static long ping_rate = 1000;
static size_t payload = 1200;
static int gso;
static atomic_int stop;
static unsigned long long sent_pkts, recv_pkts, recv_bytes;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static void *ponger(void *arg)
{
    int fd = *(int *)arg;
    unsigned char buf[2048];
    struct sockaddr_in from;

    while (!atomic_load(&stop)) {
        socklen_t flen = sizeof(from);
        ssize_t n = recvfrom(fd, buf, sizeof(buf), 0,
                             (struct sockaddr *)&from, &flen);

        if (n > 0)
            sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, flen);
    }
    return NULL;
}

static double now(void);

/* COUNT round trips, one at a time; the echo side is another process,
 * as the daemon is for wtbench. */
static int pingpong(int rx, int tx, long count)
{
    double *rtt = calloc((size_t)count, sizeof(double));
    unsigned char buf[2048] = {0};
    pid_t child;
    long got = 0;

    if (!rtt || (child = fork()) < 0) {
        free(rtt);
        return -1;
    }
    if (child == 0) {
        alarm(120); /* bounded even if the parent dies */
        ponger(&rx);
        _exit(0);
    }
    for (long i = 0; i < count; i++) {
        double t0;
        /* paced like wtbench's datagram mode: idle between round trips
         * is part of what a round trip costs */
        struct timespec gap = {0, (long)(1e9 / (double)ping_rate)};

        nanosleep(&gap, NULL);
        t0 = now();

        if (send(tx, buf, payload, 0) < 0 || recv(tx, buf, sizeof(buf), 0) < 0)
            continue; /* lost: the receive timeout ends the wait */
        rtt[got++] = (now() - t0) * 1e6;
    }
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    qsort(rtt, (size_t)got, sizeof(double), cmp_double);
    if (got)
        printf("{\"mode\":\"pingpong\",\"payload\":%zu,\"rate\":%ld,"
               "\"n\":%ld,\"p50_us\":%.1f,\"p99_us\":%.1f,"
               "\"max_us\":%.1f}\n",
               payload, ping_rate, got, rtt[(got - 1) / 2],
               rtt[(got * 99 - 1) / 100], rtt[got - 1]);
    free(rtt);
    return got ? 0 : -1;
}

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void bufs(int fd)
{
    int v = BUFSZ;

    /* as root past rmem_max; otherwise whatever the system allows */
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v)) < 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof(v)) < 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
}

static void *receiver(void *arg)
{
    int fd = *(int *)arg;
    static unsigned char data[BATCH][2048];
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    struct timespec tmo = {0, 100 * 1000 * 1000};

    for (int i = 0; i < BATCH; i++) {
        iov[i].iov_base = data[i];
        iov[i].iov_len = sizeof(data[i]);
        memset(&msgs[i], 0, sizeof(msgs[i]));
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    /* the socket has a receive timeout: the loop sees `stop` */
    while (!atomic_load(&stop)) {
        int n = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, &tmo);

        if (n <= 0)
            continue;
        recv_pkts += (unsigned long long)n;
        for (int i = 0; i < n; i++)
            recv_bytes += msgs[i].msg_len;
    }
    return NULL;
}

static int send_batch(int fd, unsigned char *buf)
{
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    int n;

    if (gso) {
        /* one send of BATCH segments, split by the kernel */
        union {
            struct cmsghdr align;
            char b[CMSG_SPACE(sizeof(uint16_t))];
        } cb;
        /* a GSO send is one UDP datagram to the stack: at most 64 KiB */
        size_t nseg = 65000 / payload < BATCH ? 65000 / payload : BATCH;
        struct iovec v = {buf, payload * nseg};
        struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1,
                           .msg_control = cb.b,
                           .msg_controllen = sizeof(cb.b)};
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        uint16_t seg = (uint16_t)payload;

        c->cmsg_level = SOL_UDP;
        c->cmsg_type = UDP_SEGMENT;
        c->cmsg_len = CMSG_LEN(sizeof(seg));
        memcpy(CMSG_DATA(c), &seg, sizeof(seg));
        if (sendmsg(fd, &m, 0) < 0)
            return errno == EAGAIN || errno == ENOBUFS ? 0 : -1;
        sent_pkts += nseg;
        return 0;
    }
    for (int i = 0; i < BATCH; i++) {
        iov[i].iov_base = buf + (size_t)i * payload;
        iov[i].iov_len = payload;
        memset(&msgs[i], 0, sizeof(msgs[i]));
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    n = sendmmsg(fd, msgs, BATCH, 0);
    if (n < 0)
        return errno == EAGAIN || errno == ENOBUFS ? 0 : -1;
    sent_pkts += (unsigned long long)n;
    return 0;
}

int main(int argc, char **argv)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t alen = sizeof(a);
    struct timeval rto = {0, 100 * 1000};
    unsigned char *buf = NULL;
    pthread_t th;
    int rx = -1, tx = -1, opt, rv = 1, started = 0;
    long pings = 0;
    double t0, el;

    while ((opt = getopt(argc, argv, "t:s:gp:r:")) != -1) {
        switch (opt) {
        case 'r':
            ping_rate = atol(optarg);
            break;
        case 'p':
            pings = atol(optarg);
            break;
        case 't':
            seconds = atof(optarg);
            break;
        case 's':
            payload = (size_t)atol(optarg);
            break;
        case 'g':
            gso = 1;
            break;
        default:
            fprintf(stderr, "usage: udpblast [-t SECONDS] [-s PAYLOAD] [-g]\n");
            return 2;
        }
    }
    if (seconds <= 0 || seconds > 60 || payload < 16 || payload > 1472 ||
        pings < 0 || pings > 10000000 || ping_rate < 1 ||
        ping_rate > 1000000) {
        fprintf(stderr, "udpblast: -t in (0, 60], -s in [16, 1472], "
                        "-p up to 10000000\n");
        return 2;
    }
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if ((rx = socket(AF_INET, SOCK_DGRAM, 0)) < 0 ||
        (tx = socket(AF_INET, SOCK_DGRAM, 0)) < 0 ||
        bind(rx, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        getsockname(rx, (struct sockaddr *)&a, &alen) < 0 ||
        connect(tx, (struct sockaddr *)&a, sizeof(a)) < 0) {
        perror("udpblast: socket");
        goto done;
    }
    bufs(rx);
    bufs(tx);
    setsockopt(rx, SOL_SOCKET, SO_RCVTIMEO, &rto, sizeof(rto));
    if (pings) {
        setsockopt(tx, SOL_SOCKET, SO_RCVTIMEO, &rto, sizeof(rto));
        if (payload == 1200)
            payload = 64;
        rv = pingpong(rx, tx, pings) == 0 ? 0 : 1;
        goto done;
    }
    if (!(buf = calloc(BATCH, payload))) {
        perror("udpblast");
        goto done;
    }
    if (pthread_create(&th, NULL, receiver, &rx) != 0) {
        perror("udpblast: pthread_create");
        goto done;
    }
    started = 1;
    t0 = now();
    while (now() - t0 < seconds) {
        if (send_batch(tx, buf) < 0) {
            if (gso && errno != EAGAIN) {
                fprintf(stderr, "udpblast: GSO send: %s\n", strerror(errno));
                goto done;
            }
            perror("udpblast: send");
            goto done;
        }
    }
    el = now() - t0;
    usleep(200 * 1000); /* what is in the socket buffer still counts */
    atomic_store(&stop, 1);
    pthread_join(th, NULL);
    started = 0;
    printf("{\"payload\":%zu,\"gso\":%s,\"seconds\":%.2f,\"sent_pkts\":%llu,"
           "\"recv_pkts\":%llu,\"recv_pkts_per_s\":%.0f,"
           "\"recv_mbytes_per_s\":%.1f,"
           "\"recv_gbit_per_s\":%.2f,\"loss_pct\":%.2f}\n",
           payload, gso ? "true" : "false", el, sent_pkts, recv_pkts,
           (double)recv_pkts / el, (double)recv_bytes / el / 1e6,
           (double)recv_bytes * 8 / el / 1e9,
           sent_pkts ? 100.0 * (double)(sent_pkts - recv_pkts) /
                           (double)sent_pkts
                     : 0.0);
    rv = 0;
done:
    if (started) {
        atomic_store(&stop, 1);
        pthread_join(th, NULL);
    }
    free(buf);
    if (rx >= 0)
        close(rx);
    if (tx >= 0)
        close(tx);
    return rv;
}
