/*
 * udpblast: the loopback UDP ceiling for make bench, the physical reference
 * next to the QUIC figures.  One sender thread (sendmmsg, or UDP GSO with
 * -g) and one receiver thread (recvmmsg) on 127.0.0.1, for -t seconds;
 * prints one JSON line with what arrived.
 *
 *   udpblast [-t SECONDS] [-s PAYLOAD] [-g]
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

#define BATCH 64
#define BUFSZ (4 * 1024 * 1024)

static double seconds = 3;
static size_t payload = 1200;
static int gso;
static atomic_int stop;
static unsigned long long sent_pkts, recv_pkts, recv_bytes;

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
    double t0, el;

    while ((opt = getopt(argc, argv, "t:s:g")) != -1) {
        switch (opt) {
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
    if (seconds <= 0 || seconds > 60 || payload < 16 || payload > 1472) {
        fprintf(stderr, "udpblast: -t in (0, 60], -s in [16, 1472]\n");
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
           "\"recv_pkts\":%llu,\"recv_mbytes_per_s\":%.1f,"
           "\"recv_gbit_per_s\":%.2f,\"loss_pct\":%.2f}\n",
           payload, gso ? "true" : "false", el, sent_pkts, recv_pkts,
           (double)recv_bytes / el / 1e6, (double)recv_bytes * 8 / el / 1e9,
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
