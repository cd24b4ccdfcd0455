/* udp: see udp.h. */
#include "udp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

static int open_sock(struct udp_sock *s, const struct sockaddr *sa,
                     socklen_t salen, int reuseport, char *err, size_t errlen)
{
    int fd, on = 1;
    char a[80];

    s->fd = -1;
    s->family = sa->sa_family;
    fd = socket(sa->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail;
    if (sa->sa_family == AF_INET6) {
        /* "[::]" and "0.0.0.0" on the same port are two sockets. */
        if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) < 0 ||
            setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof(on)) <
                0 ||
            setsockopt(fd, IPPROTO_IPV6, IPV6_RECVTCLASS, &on, sizeof(on)) < 0)
            goto fail;
    } else {
        if (setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &on, sizeof(on)) < 0 ||
            setsockopt(fd, IPPROTO_IP, IP_RECVTOS, &on, sizeof(on)) < 0)
            goto fail;
    }
    if (reuseport &&
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) < 0)
        goto fail;
    if (bind(fd, sa, salen) < 0)
        goto fail;
    /* Coalesced receive and segmented send: one system call for a burst
     * of packets.  Both are optional (old kernels). */
    setsockopt(fd, SOL_UDP, UDP_GRO, &on, sizeof(on));
    s->gso = 1;
    s->bound.len = sizeof(s->bound.ss);
    if (getsockname(fd, (struct sockaddr *)&s->bound.ss, &s->bound.len) < 0)
        goto fail;
    s->fd = fd;
    return 0;

fail:
    snprintf(err, errlen, "%s: %s", udp_addr_str(sa, a, sizeof(a)),
             strerror(errno));
    if (fd >= 0)
        close(fd);
    return -1;
}

int udp_open(struct udp_sock *s, const struct sockaddr *sa, socklen_t salen,
             char *err, size_t errlen)
{
    return open_sock(s, sa, salen, 0, err, errlen);
}

int udp_open_reuseport(struct udp_sock *s, const struct sockaddr *sa,
                       socklen_t salen, char *err, size_t errlen)
{
    return open_sock(s, sa, salen, 1, err, errlen);
}

int udp_adopt(struct udp_sock *s, int fd, char *err, size_t errlen)
{
    int type = 0;
    socklen_t tl = sizeof(type);

    s->fd = -1;
    s->gso = 1;
    s->bound.len = sizeof(s->bound.ss);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 ||
        getsockname(fd, (struct sockaddr *)&s->bound.ss, &s->bound.len) < 0) {
        snprintf(err, errlen, "inherited socket %d: %s", fd, strerror(errno));
        return -1;
    }
    if (type != SOCK_DGRAM) {
        snprintf(err, errlen, "inherited socket %d is not a UDP socket", fd);
        return -1;
    }
    s->family = s->bound.ss.ss_family;
    /* exec cleared nothing the supervisor set; our copy must not leak
     * into what this process might start */
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    s->fd = fd;
    return 0;
}

int udp_connect(struct udp_sock *s, const struct sockaddr *sa, socklen_t salen,
                const struct sockaddr *local, char *err, size_t errlen)
{
    struct sockaddr_storage any;
    socklen_t anylen;

    /* Bound to the wildcard (or `local`) and an ephemeral port, then
     * connected: the kernel picks the source address, and filters what
     * arrives. */
    memset(&any, 0, sizeof(any));
    any.ss_family = sa->sa_family;
    anylen = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                       : sizeof(struct sockaddr_in);
    if (local) {
        if (local->sa_family != sa->sa_family) {
            snprintf(err, errlen, "the bind address is not of the server's "
                                  "address family");
            return -1;
        }
        memcpy(&any, local, anylen);
    }
    if (udp_open(s, (struct sockaddr *)&any, anylen, err, errlen) < 0)
        return -1;
    if (connect(s->fd, sa, salen) < 0) {
        char a[80];

        snprintf(err, errlen, "connect %s: %s", udp_addr_str(sa, a, sizeof(a)),
                 strerror(errno));
        udp_close(s);
        return -1;
    }
    s->bound.len = sizeof(s->bound.ss);
    if (getsockname(s->fd, (struct sockaddr *)&s->bound.ss, &s->bound.len) <
        0) {
        snprintf(err, errlen, "getsockname: %s", strerror(errno));
        udp_close(s);
        return -1;
    }
    return 0;
}

int udp_set_buffers(struct udp_sock *s, size_t bytes)
{
    int v = bytes > 0x3fffffff ? 0x3fffffff : (int)bytes, got = 0;
    socklen_t len = sizeof(got);

    if (v > 0) {
        /* A burst of handshakes is ~100 Initials of 1200 bytes at once:
         * the default ~208 KiB drops some, and each drop costs a 1 s PTO. */
        if (setsockopt(s->fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v)) < 0)
            setsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
        if (setsockopt(s->fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof(v)) < 0)
            setsockopt(s->fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
    }
    getsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &got, &len);
    return got;
}

void udp_close(struct udp_sock *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
}

#define CMSG_RX_SPACE                                                          \
    (CMSG_SPACE(sizeof(struct in6_pktinfo)) + CMSG_SPACE(sizeof(int)) +        \
     CMSG_SPACE(sizeof(int)))

/* The local address, ECN bits and GRO segment size of a received message. */
static void rx_cmsgs(const struct udp_sock *s, struct msghdr *m,
                     struct udp_msg *u)
{
    u->local = s->bound;
    u->ecn = 0;
    u->seg = u->len;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
        if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
            int g = 0;

            memcpy(&g, CMSG_DATA(c), sizeof(g));
            if (g > 0 && (size_t)g < u->len)
                u->seg = (size_t)g;
        } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
            struct in_pktinfo pi;
            struct sockaddr_in *sin = (struct sockaddr_in *)&u->local.ss;

            memcpy(&pi, CMSG_DATA(c), sizeof(pi));
            sin->sin_addr = pi.ipi_addr;
        } else if (c->cmsg_level == IPPROTO_IPV6 &&
                   c->cmsg_type == IPV6_PKTINFO) {
            struct in6_pktinfo pi;
            struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&u->local.ss;

            memcpy(&pi, CMSG_DATA(c), sizeof(pi));
            sin6->sin6_addr = pi.ipi6_addr;
        } else if ((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TOS) ||
                   (c->cmsg_level == IPPROTO_IPV6 &&
                    c->cmsg_type == IPV6_TCLASS)) {
            int v = 0;

            memcpy(&v, CMSG_DATA(c),
                   c->cmsg_len - CMSG_LEN(0) < sizeof(v)
                       ? c->cmsg_len - CMSG_LEN(0)
                       : sizeof(v));
            u->ecn = (unsigned)v & 0x3;
        }
    }
}

int udp_recv_batch(struct udp_sock *s, struct udp_msg *msgs, size_t n)
{
    struct mmsghdr mm[UDP_BATCH];
    struct iovec iov[UDP_BATCH];
    union {
        struct cmsghdr align;
        uint8_t b[CMSG_RX_SPACE];
    } cbuf[UDP_BATCH];
    int got;

    if (n > UDP_BATCH)
        n = UDP_BATCH;
    memset(mm, 0, sizeof(mm[0]) * n);
    for (size_t i = 0; i < n; i++) {
        iov[i].iov_base = msgs[i].buf;
        iov[i].iov_len = msgs[i].cap;
        mm[i].msg_hdr.msg_name = &msgs[i].remote.ss;
        mm[i].msg_hdr.msg_namelen = sizeof(msgs[i].remote.ss);
        mm[i].msg_hdr.msg_iov = &iov[i];
        mm[i].msg_hdr.msg_iovlen = 1;
        mm[i].msg_hdr.msg_control = cbuf[i].b;
        mm[i].msg_hdr.msg_controllen = sizeof(cbuf[i].b);
    }
    do
        got = recvmmsg(s->fd, mm, (unsigned)n, 0, NULL);
    while (got < 0 && errno == EINTR);
    if (got < 0)
        return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
    for (int i = 0; i < got; i++) {
        msgs[i].len = mm[i].msg_len;
        msgs[i].remote.len = mm[i].msg_hdr.msg_namelen;
        rx_cmsgs(s, &mm[i].msg_hdr, &msgs[i]);
    }
    return got;
}

#define CMSG_TX_SPACE                                                          \
    (CMSG_SPACE(sizeof(struct in6_pktinfo)) + CMSG_SPACE(sizeof(uint16_t)) +  \
     CMSG_SPACE(sizeof(int)))

/* m's control messages: the source address, the GSO segment size (when
 * gso_size > 0) and the ECN codepoint (when ecn != 0), in cbuf. */
static void tx_cmsgs(const struct udp_sock *s, struct msghdr *m, uint8_t *cbuf,
                     const struct udp_addr *local, unsigned ecn,
                     size_t gso_size)
{
    struct cmsghdr *c;
    size_t clen = 0;

    memset(cbuf, 0, CMSG_TX_SPACE);
    m->msg_control = cbuf;
    m->msg_controllen = CMSG_TX_SPACE;
    c = CMSG_FIRSTHDR(m);
    /* Answer from the address the client wrote to (wildcard binds). */
    if (s->family == AF_INET) {
        struct in_pktinfo pi = {0};

        pi.ipi_spec_dst = ((const struct sockaddr_in *)&local->ss)->sin_addr;
        c->cmsg_level = IPPROTO_IP;
        c->cmsg_type = IP_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof(pi));
        memcpy(CMSG_DATA(c), &pi, sizeof(pi));
    } else {
        struct in6_pktinfo pi = {0};

        pi.ipi6_addr = ((const struct sockaddr_in6 *)&local->ss)->sin6_addr;
        c->cmsg_level = IPPROTO_IPV6;
        c->cmsg_type = IPV6_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof(pi));
        memcpy(CMSG_DATA(c), &pi, sizeof(pi));
    }
    clen += CMSG_SPACE(c->cmsg_len - CMSG_LEN(0));
    if (gso_size > 0) {
        uint16_t seg = (uint16_t)gso_size;

        c = CMSG_NXTHDR(m, c);
        c->cmsg_level = SOL_UDP;
        c->cmsg_type = UDP_SEGMENT;
        c->cmsg_len = CMSG_LEN(sizeof(seg));
        memcpy(CMSG_DATA(c), &seg, sizeof(seg));
        clen += CMSG_SPACE(sizeof(seg));
    }
    if (ecn) {
        /* ECN codepoint for ngtcp2's ECN validation and congestion signal */
        int tos = (int)(ecn & 0x3);

        c = CMSG_NXTHDR(m, c);
        c->cmsg_level = s->family == AF_INET ? IPPROTO_IP : IPPROTO_IPV6;
        c->cmsg_type = s->family == AF_INET ? IP_TOS : IPV6_TCLASS;
        c->cmsg_len = CMSG_LEN(sizeof(tos));
        memcpy(CMSG_DATA(c), &tos, sizeof(tos));
        clen += CMSG_SPACE(sizeof(tos));
    }
    m->msg_controllen = clen;
}

/* GSO refused by the kernel or the device for this send. */
static int gso_refused(int err)
{
    return err == EIO || err == EINVAL || err == EOPNOTSUPP;
}

int udp_send(struct udp_sock *s, const struct udp_addr *local,
             const struct udp_addr *remote, unsigned ecn, const uint8_t *p,
             size_t len, size_t gso_size)
{
    union {
        struct cmsghdr align;
        uint8_t b[CMSG_TX_SPACE];
    } cbuf;
    struct iovec iov = {.iov_base = (void *)p, .iov_len = len};
    struct msghdr m = {
        .msg_name = (void *)&remote->ss,
        .msg_namelen = remote->len,
        .msg_iov = &iov,
        .msg_iovlen = 1,
    };
    ssize_t n;

    if (gso_size >= len)
        gso_size = 0;
    if (gso_size > 0 && !s->gso) {
        /* no GSO here: one datagram at a time */
        for (size_t off = 0; off < len; off += gso_size) {
            int rv = udp_send(s, local, remote, ecn, p + off,
                              len - off < gso_size ? len - off : gso_size, 0);

            if (rv != 0)
                return rv;
        }
        return 0;
    }
    tx_cmsgs(s, &m, cbuf.b, local, ecn, gso_size);
    do
        n = sendmsg(s->fd, &m, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)
            return 1;
        if (gso_size > 0 && s->gso && gso_refused(errno)) {
            s->gso = 0; /* the kernel or the device refuses it */
            return udp_send(s, local, remote, ecn, p, len, gso_size);
        }
        return -1;
    }
    return 0;
}

/* The datagrams of a message: its GSO segments. */
static size_t out_datagrams(const struct udp_out *o)
{
    return o->seg > 0 && o->seg < o->len ? (o->len + o->seg - 1) / o->seg
                                         : 1;
}

int udp_send_many(struct udp_sock *s, const struct udp_out *o, size_t n,
                  struct udp_sent *st)
{
    struct mmsghdr mm[UDP_SEND_BATCH];
    struct iovec iov[UDP_SEND_BATCH];
    union {
        struct cmsghdr align;
        uint8_t b[CMSG_TX_SPACE];
    } cbuf[UDP_SEND_BATCH];
    size_t i = 0;
    int rv = 0;

    memset(st, 0, sizeof(*st));
    if (n > UDP_SEND_BATCH)
        n = UDP_SEND_BATCH;
    memset(mm, 0, sizeof(mm[0]) * n);
    for (size_t k = 0; k < n; k++) {
        size_t seg = o[k].seg < o[k].len ? o[k].seg : 0;

        iov[k].iov_base = (void *)o[k].p;
        iov[k].iov_len = o[k].len;
        mm[k].msg_hdr.msg_name = (void *)&o[k].remote.ss;
        mm[k].msg_hdr.msg_namelen = o[k].remote.len;
        mm[k].msg_hdr.msg_iov = &iov[k];
        mm[k].msg_hdr.msg_iovlen = 1;
        tx_cmsgs(s, &mm[k].msg_hdr, cbuf[k].b, &o[k].local, o[k].ecn,
                 s->gso ? seg : 0);
    }
    while (i < n) {
        int r;

        if (!s->gso && o[i].seg > 0 && o[i].seg < o[i].len) {
            /* no GSO (any more): this one a datagram at a time */
            r = udp_send(s, &o[i].local, &o[i].remote, o[i].ecn, o[i].p,
                         o[i].len, o[i].seg);
            st->calls += out_datagrams(&o[i]);
            if (r == 0) {
                st->bytes += o[i].len;
                st->datagrams += out_datagrams(&o[i]);
            } else {
                rv = r;
            }
            i++;
            continue;
        }
        do
            r = sendmmsg(s->fd, mm + i, (unsigned)(n - i), 0);
        while (r < 0 && errno == EINTR);
        st->calls++;
        if (r > 0) {
            for (size_t k = i; k < i + (size_t)r; k++) {
                st->bytes += o[k].len;
                st->datagrams += out_datagrams(&o[k]);
            }
            i += (size_t)r;
            continue;
        }
        /* message i failed: errno is its own */
        if (r < 0 && o[i].seg > 0 && o[i].seg < o[i].len && s->gso &&
            gso_refused(errno)) {
            s->gso = 0; /* the kernel or the device refuses it */
            continue;   /* sent again above, a datagram at a time */
        }
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
                      errno == ENOBUFS))
            return 1; /* the socket buffer is full: the rest is lost too */
        rv = -1;      /* this destination's: the others still go */
        i++;
    }
    return rv;
}

const char *udp_addr_str(const struct sockaddr *sa, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN] = "?";

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
        snprintf(buf, len, "%s:%u", host, ntohs(sin->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

        inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
        snprintf(buf, len, "[%s]:%u", host, ntohs(sin6->sin6_port));
    } else {
        snprintf(buf, len, "(family %d)", sa->sa_family);
    }
    return buf;
}
