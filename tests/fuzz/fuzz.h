/*
 * fuzz: what the libFuzzer targets (tests/fuzz/fuzz_*.c) share.  Each
 * target is one binary built by `make fuzz-build` against the library's
 * objects compiled by clang with ASan, UBSan and libFuzzer's coverage.
 *
 * A target checks properties, not just "no crash": a round trip, the same
 * answer whatever the input's splits.  FUZZ_CHECK aborts, so libFuzzer
 * keeps the input that broke the property as a crash file.
 */
#ifndef WTRELAYD_FUZZ_H
#define WTRELAYD_FUZZ_H

#include <netdb.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(c)                                                          \
    do {                                                                       \
        if (!(c)) {                                                            \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__,  \
                    #c);                                                       \
            abort();                                                           \
        }                                                                      \
    } while (0)

/*
 * Linked with -Wl,--wrap=getaddrinfo: a fuzzed host name must not become
 * a DNS query (slow, and traffic off the machine).  Numeric hosts and
 * ports still go through the real resolver; names fail as unknown.
 */
int __real_getaddrinfo(const char *node, const char *service,
                       const struct addrinfo *hints, struct addrinfo **res);
int __wrap_getaddrinfo(const char *node, const char *service,
                       const struct addrinfo *hints, struct addrinfo **res);
int __wrap_getaddrinfo(const char *node, const char *service,
                       const struct addrinfo *hints, struct addrinfo **res)
{
    struct addrinfo h;

    if (hints)
        h = *hints;
    else
        memset(&h, 0, sizeof(h));
    h.ai_flags |= AI_NUMERICHOST | AI_NUMERICSERV;
    return __real_getaddrinfo(node, service, &h, res);
}

/* The input taken apart in order; what is missing reads as zeros. */
struct fuzz_in {
    const uint8_t *p;
    size_t n;
};

static inline uint8_t fuzz_u8(struct fuzz_in *in)
{
    uint8_t v = 0;

    if (in->n) {
        v = in->p[0];
        in->p++;
        in->n--;
    }
    return v;
}

static inline uint64_t fuzz_u64(struct fuzz_in *in)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++)
        v = v << 8 | fuzz_u8(in);
    return v;
}

/* The bytes up to the next NUL (or the end) as a fresh C string, at most
 * `max` bytes of it; the caller frees it. */
static inline char *fuzz_str(struct fuzz_in *in, size_t max)
{
    const uint8_t *z = in->n ? memchr(in->p, 0, in->n) : NULL;
    size_t len = z ? (size_t)(z - in->p) : in->n;
    char *s;

    if (len > max)
        len = max;
    if (!(s = malloc(len + 1)))
        abort();
    memcpy(s, in->p, len);
    s[len] = '\0';
    in->p += len;
    in->n -= len;
    if (in->n && in->p[0] == 0) {
        in->p++;
        in->n--;
    }
    return s;
}

#endif
