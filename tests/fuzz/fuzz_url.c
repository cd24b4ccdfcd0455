/*
 * Strings a peer or an operator writes that name a place: client URLs
 * (src/url.c), the broadcast room of a request path (room.c's
 * room_name_from_path: percent-decoding), backend targets (src/target.c:
 * tcp://, udp://, unix:), listen addresses and the other config scalars
 * (config_parse_addr, _size, _duration_ms, _bool).  Host names are not
 * resolved (fuzz.h).
 *
 * Input: a room parameter name, NUL, then the string itself.
 *
 * Properties: a parsed URL is its parts again (https:// authority path);
 * a room name is at most ROOM_NAME_MAX bytes with no control character
 * and no NUL; a target keeps its text and an address of its own kind; a
 * listen address printed back parses to the same address.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include "config.h"
#include "fuzz.h"
#include "room.h"
#include "target.h"
#include "url.h"

static void check_url(const char *s)
{
    struct url u;
    char again[2048];
    const char *p;

    if (url_parse(s, &u) != 0)
        return;
    FUZZ_CHECK(u.host[0] && u.path[0] == '/' && u.port[0]);
    FUZZ_CHECK(strspn(u.port, "0123456789") == strlen(u.port));
    p = s + 8 + strlen(u.authority);
    FUZZ_CHECK(strncmp(s, "https://", 8) == 0 &&
               strncmp(s + 8, u.authority, strlen(u.authority)) == 0);
    FUZZ_CHECK(*p ? strcmp(p, u.path) == 0 : strcmp(u.path, "/") == 0);
    if (u.authority[0] == '[')
        snprintf(again, sizeof(again), "[%s]", u.host);
    else
        snprintf(again, sizeof(again), "%s", u.host);
    FUZZ_CHECK(strncmp(u.authority, again, strlen(again)) == 0);
    FUZZ_CHECK(strchr(u.authority, '/') == NULL);
}

static void check_room(const char *path, const char *param)
{
    char out[ROOM_NAME_MAX + 1];
    size_t len = 99999;

    if (!param[0])
        param = "room";
    if (room_name_from_path(path, param, out, &len) != 0)
        return;
    FUZZ_CHECK(len <= ROOM_NAME_MAX && strlen(out) == len);
    for (size_t i = 0; i < len; i++)
        FUZZ_CHECK((uint8_t)out[i] >= 0x20 && out[i] != 0x7f);
    if (!strchr(path, '?'))
        FUZZ_CHECK(len == 0);
}

static void check_target(const char *s, enum target_kind want)
{
    struct target t;
    char err[256];
    int fam;

    err[0] = 0;
    if (target_parse(s, want, &t, err, sizeof(err)) != 0) {
        FUZZ_CHECK(err[0] && memchr(err, 0, sizeof(err)));
        return;
    }
    FUZZ_CHECK(strcmp(t.text, s) == 0);
    FUZZ_CHECK(t.len > 0 && t.len <= sizeof(t.addr));
    fam = t.addr.ss_family;
    if (t.kind == TARGET_UNIX) {
        const struct sockaddr_un *un = (const void *)&t.addr;

        FUZZ_CHECK(want == TARGET_TCP && fam == AF_UNIX);
        FUZZ_CHECK(un->sun_path[0] == '/' &&
                   memchr(un->sun_path, 0, sizeof(un->sun_path)));
    } else {
        FUZZ_CHECK(t.kind == want && (fam == AF_INET || fam == AF_INET6));
    }
}

static void check_listen(const char *s)
{
    struct config_listen l, l2;
    char host[INET6_ADDRSTRLEN], again[INET6_ADDRSTRLEN + 16];
    unsigned port;

    if (config_parse_addr(s, &l) != 0)
        return;
    FUZZ_CHECK(memchr(l.text, 0, sizeof(l.text)));
    if (l.addr.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const void *)&l.addr;

        FUZZ_CHECK(l.addrlen == sizeof(*a));
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        port = ntohs(a->sin_port);
        snprintf(again, sizeof(again), "%s:%u", host, port);
    } else {
        const struct sockaddr_in6 *a = (const void *)&l.addr;

        FUZZ_CHECK(l.addr.ss_family == AF_INET6 && l.addrlen == sizeof(*a));
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        port = ntohs(a->sin6_port);
        snprintf(again, sizeof(again), "[%s]:%u", host, port);
    }
    FUZZ_CHECK(config_parse_addr(again, &l2) == 0);
    FUZZ_CHECK(config_listen_same(&l, &l2));
    FUZZ_CHECK(config_addr_is_loopback(&l) == config_addr_is_loopback(&l2));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    char *param = fuzz_str(&in, 64), *s = fuzz_str(&in, 4096);
    uint64_t v;

    check_url(s);
    check_room(s, param);
    check_target(s, TARGET_TCP);
    check_target(s, TARGET_UDP);
    check_listen(s);
    if (config_parse_size(s, &v) == 0 && strspn(s, "0123456789") == strlen(s))
        FUZZ_CHECK(v == strtoull(s, NULL, 10));
    (void)config_parse_duration_ms(s, &v);
    FUZZ_CHECK(config_parse_bool(s) >= -1 && config_parse_bool(s) <= 1);
    free(param);
    free(s);
    return 0;
}
