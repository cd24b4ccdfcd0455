/*
 * target: the address of a backend as a config names it — tcp://HOST:PORT,
 * udp://HOST:PORT (IPv4, [IPv6], or a host name, resolved here: when the
 * config is loaded, never per connection) and unix:/path.
 */
#ifndef WTRELAYD_TARGET_H
#define WTRELAYD_TARGET_H

#include <stddef.h>
#include <sys/socket.h>

enum target_kind { TARGET_TCP, TARGET_UDP, TARGET_UNIX };

struct target {
    enum target_kind kind;
    struct sockaddr_storage addr;
    socklen_t len;
    char text[128]; /* as written, for logs */
};

/* Parses (and resolves) one address; `want` is the scheme it must have,
 * TARGET_TCP also taking unix:.  0, or -1 with a message in err. */
int target_parse(const char *s, enum target_kind want, struct target *t,
                 char *err, size_t errlen);

#endif
