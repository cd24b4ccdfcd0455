/*
 * url: the https://HOST:PORT/PATH targets of the client programs.  Pure
 * parsing, no sockets (unit-tested).
 */
#ifndef WTRELAYD_URL_H
#define WTRELAYD_URL_H

struct url {
    char authority[300]; /* "host:port" as written (what :authority says) */
    char host[256];      /* without brackets */
    char port[16];       /* "443" when absent */
    char path[1024];     /* "/" when absent */
};

/* 0, or -1 when `s` is not https://HOST[:PORT][/PATH] or a part is too
 * long.  An IPv6 host is written in brackets: https://[::1]:4433/echo. */
int url_parse(const char *s, struct url *u);

#endif
