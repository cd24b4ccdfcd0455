/*
 * udp: the daemon's UDP sockets.  Binds each listen address, learns the
 * local address of every received datagram (IP_PKTINFO / IPV6_RECVPKTINFO,
 * so wildcard binds answer from the address the client used), and sends
 * datagrams back from that address.  Knows nothing of QUIC.
 */
#ifndef WTRELAYD_UDP_H
#define WTRELAYD_UDP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct udp_addr {
    struct sockaddr_storage ss;
    socklen_t len;
};

struct udp_sock {
    int fd;
    int family;
    int gso; /* the kernel takes UDP_SEGMENT on this socket */
    struct udp_addr bound; /* the address as bound (port filled in) */
};

/* Opens and binds a non-blocking socket.  0, or -1 with a message in err. */
int udp_open(struct udp_sock *s, const struct sockaddr *sa, socklen_t salen,
             char *err, size_t errlen);
/* The same with SO_REUSEPORT (workers = N: each worker's socket of one
 * address is one of the address's group). */
int udp_open_reuseport(struct udp_sock *s, const struct sockaddr *sa,
                       socklen_t salen, char *err, size_t errlen);
/* Takes over a socket opened and bound by udp_open*() in another process
 * (a worker's inherited socket).  0, or -1 with a message in err. */
int udp_adopt(struct udp_sock *s, int fd, char *err, size_t errlen);
/* A client socket: ephemeral port, connected to `sa`; `bound` is the
 * local address the kernel chose.  `local` (or NULL: the wildcard) is the
 * source address to bind first (its port 0). */
int udp_connect(struct udp_sock *s, const struct sockaddr *sa, socklen_t salen,
                const struct sockaddr *local, char *err, size_t errlen);
void udp_close(struct udp_sock *s);
/* Kernel buffers of `bytes` each way (0: the system default).  As root
 * past net.core.rmem_max/wmem_max; otherwise capped by them.  Returns the
 * receive buffer size the kernel reports (it doubles what it is asked). */
int udp_set_buffers(struct udp_sock *s, size_t bytes);

#define UDP_BATCH 8

/* One received message: with GRO several coalesced datagrams of one sender,
 * each `seg` bytes (the last may be shorter); else seg == len. */
struct udp_msg {
    uint8_t *buf; /* in: where it goes */
    size_t cap;
    size_t len, seg;
    struct udp_addr local; /* the address it was sent to */
    struct udp_addr remote;
    unsigned ecn; /* ECN bits of the IP header */
};

/* Receives up to n (<= UDP_BATCH) messages in one system call (recvmmsg).
 * Returns how many, 0 when nothing is pending (EAGAIN), -1 on a socket
 * error. */
int udp_recv_batch(struct udp_sock *s, struct udp_msg *msgs, size_t n);

/*
 * Sends `len` bytes as one datagram, or as several of `gso_size` bytes each
 * (the last may be shorter) when gso_size > 0 and < len: one system call
 * (UDP GSO), or one per datagram where the kernel refuses GSO.  Returns 0,
 * 1 when the socket buffer is full (EAGAIN: try again later), -1 on other
 * errors.
 */
int udp_send(struct udp_sock *s, const struct udp_addr *local,
             const struct udp_addr *remote, unsigned ecn, const uint8_t *p,
             size_t len, size_t gso_size);

/* One datagram, or a run of `seg`-byte datagrams (GSO; 0: one), in a
 * batch for udp_send_many(). */
struct udp_out {
    const uint8_t *p;
    size_t len, seg;
    unsigned ecn;
    struct udp_addr local, remote;
};

#define UDP_SEND_BATCH 64

/* What udp_send_many() did: bytes and datagrams (GSO segments each
 * counted) that went, system calls made. */
struct udp_sent {
    size_t bytes, datagrams, calls;
};

/*
 * Sends up to UDP_SEND_BATCH messages of one socket in as few system
 * calls as the kernel allows (sendmmsg).  A message the kernel refuses
 * is lost and the next ones still go; a full socket buffer loses the
 * rest.  Returns 0, 1 when the socket buffer was full, -1 when some
 * message failed otherwise; *st says what went.
 */
int udp_send_many(struct udp_sock *s, const struct udp_out *o, size_t n,
                  struct udp_sent *st);

/* "127.0.0.1:4433" / "[::1]:4433" into buf. */
const char *udp_addr_str(const struct sockaddr *sa, char *buf, size_t len);

#endif
