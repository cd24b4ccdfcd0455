/* proxy: see proxy.h. */
#include "proxy.h"

#include <netinet/in.h>
#include <string.h>

static size_t put16(uint8_t *p, size_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    return 2;
}

static size_t get16(const uint8_t *p)
{
    return (size_t)p[0] << 8 | p[1];
}

/* One TLV; 0 when it does not fit. */
static size_t tlv(uint8_t *p, size_t cap, uint8_t type, const char *v)
{
    size_t n = strlen(v);

    if (n > 0xffff || cap < 3 + n)
        return 0;
    p[0] = type;
    put16(p + 1, n);
    memcpy(p + 3, v, n);
    return 3 + n;
}

ssize_t proxy_v2_encode(uint8_t *buf, size_t cap, const struct sockaddr *src,
                        const struct sockaddr *dst, int dgram,
                        const char *authority, const char *path)
{
    size_t o = 16, n;

    if (cap < 16 + 36 || src->sa_family != dst->sa_family)
        return -1;
    memcpy(buf, PROXY_V2_SIG, PROXY_V2_SIGLEN);
    buf[12] = 0x21; /* version 2, PROXY */
    if (src->sa_family == AF_INET) {
        const struct sockaddr_in *s = (const void *)src, *d = (const void *)dst;

        buf[13] = dgram ? 0x12 : 0x11;
        memcpy(buf + o, &s->sin_addr, 4);
        memcpy(buf + o + 4, &d->sin_addr, 4);
        memcpy(buf + o + 8, &s->sin_port, 2);
        memcpy(buf + o + 10, &d->sin_port, 2);
        o += 12;
    } else if (src->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const void *)src,
                                  *d = (const void *)dst;

        buf[13] = dgram ? 0x22 : 0x21;
        memcpy(buf + o, &s->sin6_addr, 16);
        memcpy(buf + o + 16, &d->sin6_addr, 16);
        memcpy(buf + o + 32, &s->sin6_port, 2);
        memcpy(buf + o + 34, &d->sin6_port, 2);
        o += 36;
    } else {
        return -1;
    }
    if (authority) {
        if (!(n = tlv(buf + o, cap - o, PROXY_TLV_AUTHORITY, authority)))
            return -1;
        o += n;
    }
    if (path) {
        if (!(n = tlv(buf + o, cap - o, PROXY_TLV_WT_PATH, path)))
            return -1;
        o += n;
    }
    if (o - 16 > 0xffff)
        return -1;
    put16(buf + 14, o - 16);
    return (ssize_t)o;
}

ssize_t proxy_v2_decode(const uint8_t *buf, size_t len, struct proxy_info *out)
{
    size_t body, o = 16, alen = 0;
    int fam;

    memset(out, 0, sizeof(*out));
    if (len < 16)
        return memcmp(buf, PROXY_V2_SIG, len < PROXY_V2_SIGLEN
                                             ? len
                                             : PROXY_V2_SIGLEN) == 0
                   ? 0
                   : -1;
    if (memcmp(buf, PROXY_V2_SIG, PROXY_V2_SIGLEN) != 0 ||
        (buf[12] & 0xf0) != 0x20 || (buf[12] & 0x0f) > 1)
        return -1;
    body = get16(buf + 14);
    if (len < 16 + body)
        return 0;
    fam = buf[13] >> 4;
    out->dgram = (buf[13] & 0x0f) == 2;
    if ((buf[12] & 0x0f) == 1 && fam == 1) {
        struct sockaddr_in *s = (void *)&out->src, *d = (void *)&out->dst;

        alen = 12;
        if (body < alen)
            return -1;
        out->family = AF_INET;
        s->sin_family = d->sin_family = AF_INET;
        memcpy(&s->sin_addr, buf + o, 4);
        memcpy(&d->sin_addr, buf + o + 4, 4);
        memcpy(&s->sin_port, buf + o + 8, 2);
        memcpy(&d->sin_port, buf + o + 10, 2);
    } else if ((buf[12] & 0x0f) == 1 && fam == 2) {
        struct sockaddr_in6 *s = (void *)&out->src, *d = (void *)&out->dst;

        alen = 36;
        if (body < alen)
            return -1;
        out->family = AF_INET6;
        s->sin6_family = d->sin6_family = AF_INET6;
        memcpy(&s->sin6_addr, buf + o, 16);
        memcpy(&d->sin6_addr, buf + o + 16, 16);
        memcpy(&s->sin6_port, buf + o + 32, 2);
        memcpy(&d->sin6_port, buf + o + 34, 2);
    }
    /* TLVs after the addresses (LOCAL / unknown families: skipped whole) */
    for (o = 16 + alen; alen && o < 16 + body;) {
        size_t n;

        if (16 + body - o < 3 || (n = get16(buf + o + 1)) > 16 + body - o - 3)
            return -1;
        if (buf[o] == PROXY_TLV_AUTHORITY) {
            out->authority = buf + o + 3;
            out->authority_len = n;
        } else if (buf[o] == PROXY_TLV_WT_PATH) {
            out->path = buf + o + 3;
            out->path_len = n;
        }
        o += 3 + n;
    }
    return (ssize_t)(16 + body);
}
