/*
 * proxy: the PROXY protocol version 2 header (haproxy's
 * doc/proxy-protocol.txt), which the forward handler writes at the start of
 * each backend connection (and as the first datagram to a UDP backend):
 * who the client is, and TLVs with the request's :authority and :path.
 * Pure: no I/O, no allocation.  The decoder is for tests and for backends
 * written against this daemon.
 */
#ifndef WTRELAYD_PROXY_H
#define WTRELAYD_PROXY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#define PROXY_V2_SIG "\r\n\r\n\0\r\nQUIT\n"
#define PROXY_V2_SIGLEN 12
#define PROXY_TLV_AUTHORITY 0x02 /* PP2_TYPE_AUTHORITY */
/* The request's :path, query included: a custom type (0xE0..0xEF are for
 * applications). */
#define PROXY_TLV_WT_PATH 0xE0
/* The longest header the encoder writes: addresses, and both TLVs at the
 * longest the forward handler sends. */
#define PROXY_V2_MAX (16 + 36 + 3 + 1024 + 3 + 4096)

/* Writes the header for a connection from `src` to `dst` (both AF_INET or
 * both AF_INET6), over a stream (TCP) or datagrams (UDP), with the TLVs
 * that are not NULL.  Returns its length, or -1 when it does not fit
 * `cap` or the addresses do not match. */
ssize_t proxy_v2_encode(uint8_t *buf, size_t cap, const struct sockaddr *src,
                        const struct sockaddr *dst, int dgram,
                        const char *authority, const char *path);

struct proxy_info {
    int family; /* AF_INET, AF_INET6, or 0 (LOCAL / UNSPEC) */
    int dgram;
    struct sockaddr_storage src, dst;
    const uint8_t *authority, *path; /* in the buffer, not terminated */
    size_t authority_len, path_len;
};

/* Reads a header at the start of buf: its length, 0 when more bytes are
 * needed, -1 when it is not a valid v2 header. */
ssize_t proxy_v2_decode(const uint8_t *buf, size_t len, struct proxy_info *out);

#endif
