/* target: see target.h. */
#include "target.h"

#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

int target_parse(const char *s, enum target_kind want, struct target *t,
                 char *err, size_t errlen)
{
    const char *rest, *colon;
    char host[256], port[8];
    struct addrinfo hints, *ai = NULL;
    size_t hl;
    int rv;

    memset(t, 0, sizeof(*t));
    if (strlen(s) >= sizeof(t->text)) {
        snprintf(err, errlen, "%.40s...: too long", s);
        return -1;
    }
    strcpy(t->text, s);
    if (want == TARGET_TCP && strncmp(s, "unix:", 5) == 0) {
        struct sockaddr_un *un = (struct sockaddr_un *)&t->addr;
        size_t n = strlen(s + 5);

        if (n == 0 || n >= sizeof(un->sun_path) || s[5] != '/') {
            snprintf(err, errlen, "%s: unix:/absolute/path, at most %zu "
                                  "bytes",
                     s, sizeof(un->sun_path) - 1);
            return -1;
        }
        un->sun_family = AF_UNIX;
        memcpy(un->sun_path, s + 5, n + 1);
        t->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
        t->kind = TARGET_UNIX;
        return 0;
    }
    if (strncmp(s, want == TARGET_UDP ? "udp://" : "tcp://", 6) != 0) {
        snprintf(err, errlen, "%s: want %s", s,
                 want == TARGET_UDP ? "udp://HOST:PORT"
                                    : "tcp://HOST:PORT or unix:/path");
        return -1;
    }
    rest = s + 6;
    if (rest[0] == '[') {
        const char *rb = strchr(rest, ']');

        if (!rb || rb[1] != ':')
            goto bad;
        hl = (size_t)(rb - rest - 1);
        colon = rb + 1;
        rest++;
    } else {
        if (!(colon = strrchr(rest, ':')))
            goto bad;
        hl = (size_t)(colon - rest);
    }
    if (hl == 0 || hl >= sizeof(host) || strlen(colon + 1) == 0 ||
        strlen(colon + 1) >= sizeof(port) ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
        atoi(colon + 1) < 1 || atoi(colon + 1) > 65535)
        goto bad;
    memcpy(host, rest, hl);
    host[hl] = 0;
    strcpy(port, colon + 1);
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = want == TARGET_UDP ? SOCK_DGRAM : SOCK_STREAM;
    if ((rv = getaddrinfo(host, port, &hints, &ai)) != 0 || !ai) {
        snprintf(err, errlen, "%s: %s", s, gai_strerror(rv));
        if (ai)
            freeaddrinfo(ai);
        return -1;
    }
    /* the first address: the resolver's order (one per name; list several
     * backends for several addresses) */
    memcpy(&t->addr, ai->ai_addr, ai->ai_addrlen);
    t->len = ai->ai_addrlen;
    t->kind = want;
    freeaddrinfo(ai);
    return 0;

bad:
    snprintf(err, errlen, "%s: want %s://HOST:PORT ([IPv6] in brackets)", s,
             want == TARGET_UDP ? "udp" : "tcp");
    return -1;
}
