/* url: see url.h. */
#include "url.h"

#include <stdio.h>
#include <string.h>

static int copy(char *dst, size_t cap, const char *p, size_t n)
{
    if (n >= cap)
        return -1;
    memcpy(dst, p, n);
    dst[n] = '\0';
    return 0;
}

int url_parse(const char *s, struct url *u)
{
    const char *h, *p, *e, *port = NULL;

    memset(u, 0, sizeof(*u));
    if (strncmp(s, "https://", 8) != 0)
        return -1;
    h = s + 8;
    p = h + strcspn(h, "/?#");
    if (*p && *p != '/')
        return -1; /* "https://host?x": no path */
    if (copy(u->authority, sizeof(u->authority), h, (size_t)(p - h)) < 0 ||
        copy(u->path, sizeof(u->path), *p ? p : "/", *p ? strlen(p) : 1) < 0)
        return -1;
    if (h[0] == '[') {
        e = memchr(h, ']', (size_t)(p - h));
        if (!e || copy(u->host, sizeof(u->host), h + 1, (size_t)(e - h - 1)) < 0)
            return -1;
        e++;
        if (e < p && *e != ':')
            return -1;
    } else {
        e = memchr(h, ':', (size_t)(p - h));
        if (!e)
            e = p;
        if (copy(u->host, sizeof(u->host), h, (size_t)(e - h)) < 0)
            return -1;
    }
    if (e < p)
        port = e + 1;
    if (port) {
        if (port == p || copy(u->port, sizeof(u->port), port, (size_t)(p - port)) < 0 ||
            strspn(u->port, "0123456789") != strlen(u->port))
            return -1;
    } else {
        snprintf(u->port, sizeof(u->port), "443");
    }
    return u->host[0] ? 0 : -1;
}
