/*
 * The PROXY protocol v2 header the forward handler writes to a backend
 * (src/proxy.c), round trip: addresses, ports, stream or datagram and
 * the :authority and :path TLVs from the input are encoded, then decoded
 * by proxy_v2_decode (what a backend written against the daemon reads)
 * and compared.  The decoder is also fed the raw input, whole and cut.
 *
 * Input: one flags byte (IPv6, datagram, authority present, path
 * present), 36 bytes of addresses and ports, then authority NUL path.
 *
 * Properties: what was written is what is read back, and nothing more;
 * every cut of a written header asks for more bytes; the decoder reads
 * only inside the header length it returns and points the TLVs into it.
 */
#include <netinet/in.h>

#include "fuzz.h"
#include "proxy.h"

static uint8_t buf[PROXY_V2_MAX + 64];

static void check_decoded(const uint8_t *p, size_t n)
{
    struct proxy_info pi;
    ssize_t r = proxy_v2_decode(p, n, &pi);

    FUZZ_CHECK(r >= -1);
    if (r <= 0)
        return;
    FUZZ_CHECK(r >= 16 && (size_t)r <= n);
    if (pi.authority)
        FUZZ_CHECK(pi.authority >= p + 16 &&
                   pi.authority + pi.authority_len <= p + r);
    if (pi.path)
        FUZZ_CHECK(pi.path >= p + 16 && pi.path + pi.path_len <= p + r);
    /* a cut header is incomplete or not a header: never a shorter one */
    for (size_t cut = 0; cut < (size_t)r && cut < 64; cut++) {
        struct proxy_info q;
        ssize_t c = proxy_v2_decode(p, cut, &q);

        FUZZ_CHECK(c == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    uint8_t flags = fuzz_u8(&in), a[36];
    struct sockaddr_storage src, dst;
    struct proxy_info pi;
    char *auth, *path;
    ssize_t n, r;
    int v6 = flags & 1, dgram = (flags >> 1) & 1;

    check_decoded(data, size);
    for (size_t i = 0; i < sizeof(a); i++)
        a[i] = fuzz_u8(&in);
    auth = fuzz_str(&in, 1024);
    path = fuzz_str(&in, 4096);
    memset(&src, 0, sizeof(src));
    memset(&dst, 0, sizeof(dst));
    if (v6) {
        struct sockaddr_in6 *s = (void *)&src, *d = (void *)&dst;

        s->sin6_family = d->sin6_family = AF_INET6;
        memcpy(&s->sin6_addr, a, 16);
        memcpy(&d->sin6_addr, a + 16, 16);
        memcpy(&s->sin6_port, a + 32, 2);
        memcpy(&d->sin6_port, a + 34, 2);
    } else {
        struct sockaddr_in *s = (void *)&src, *d = (void *)&dst;

        s->sin_family = d->sin_family = AF_INET;
        memcpy(&s->sin_addr, a, 4);
        memcpy(&d->sin_addr, a + 4, 4);
        memcpy(&s->sin_port, a + 8, 2);
        memcpy(&d->sin_port, a + 10, 2);
    }
    n = proxy_v2_encode(buf, sizeof(buf), (struct sockaddr *)&src,
                        (struct sockaddr *)&dst, dgram,
                        flags & 4 ? auth : NULL, flags & 8 ? path : NULL);
    FUZZ_CHECK(n > 0 && (size_t)n <= PROXY_V2_MAX);
    r = proxy_v2_decode(buf, (size_t)n, &pi);
    FUZZ_CHECK(r == n);
    FUZZ_CHECK(pi.family == (v6 ? AF_INET6 : AF_INET) && pi.dgram == dgram);
    if (v6) {
        const struct sockaddr_in6 *s = (void *)&pi.src, *d = (void *)&pi.dst;

        FUZZ_CHECK(memcmp(&s->sin6_addr, a, 16) == 0 &&
                   memcmp(&d->sin6_addr, a + 16, 16) == 0 &&
                   memcmp(&s->sin6_port, a + 32, 2) == 0 &&
                   memcmp(&d->sin6_port, a + 34, 2) == 0);
    } else {
        const struct sockaddr_in *s = (void *)&pi.src, *d = (void *)&pi.dst;

        FUZZ_CHECK(memcmp(&s->sin_addr, a, 4) == 0 &&
                   memcmp(&d->sin_addr, a + 4, 4) == 0 &&
                   memcmp(&s->sin_port, a + 8, 2) == 0 &&
                   memcmp(&d->sin_port, a + 10, 2) == 0);
    }
    if (flags & 4)
        FUZZ_CHECK(pi.authority && pi.authority_len == strlen(auth) &&
                   memcmp(pi.authority, auth, pi.authority_len) == 0);
    else
        FUZZ_CHECK(!pi.authority);
    if (flags & 8)
        FUZZ_CHECK(pi.path && pi.path_len == strlen(path) &&
                   memcmp(pi.path, path, pi.path_len) == 0);
    else
        FUZZ_CHECK(!pi.path);
    check_decoded(buf, (size_t)n);
    /* too small a buffer: refused whole, never a cut header */
    FUZZ_CHECK(proxy_v2_encode(buf, (size_t)n - 1, (struct sockaddr *)&src,
                               (struct sockaddr *)&dst, dgram,
                               flags & 4 ? auth : NULL,
                               flags & 8 ? path : NULL) == -1);
    free(auth);
    free(path);
    return 0;
}
