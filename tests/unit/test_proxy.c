/* Unit tests of src/proxy.c (PROXY v2 headers) and src/target.c (backend
 * addresses). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

#include "proxy.h"
#include "t.h"
#include "target.h"

static struct sockaddr_in v4(const char *a, int port)
{
    struct sockaddr_in s = {.sin_family = AF_INET, .sin_port = htons(port)};

    inet_pton(AF_INET, a, &s.sin_addr);
    return s;
}

T_TEST(encode_v4_bytes)
{
    struct sockaddr_in s = v4("192.0.2.1", 50000), d = v4("198.51.100.7", 443);
    uint8_t b[PROXY_V2_MAX];
    ssize_t n = proxy_v2_encode(b, sizeof(b), (struct sockaddr *)&s,
                                (struct sockaddr *)&d, 0, "h.example", "/p?q");
    static const uint8_t want[] = {
        '\r', '\n', '\r', '\n', 0, '\r', '\n', 'Q', 'U', 'I', 'T', '\n',
        0x21, 0x11, 0x00, 12 + 3 + 9 + 3 + 4, /* v2 PROXY, TCP/IPv4, len */
        192, 0, 2, 1, 198, 51, 100, 7, 0xc3, 0x50, 0x01, 0xbb,
        0x02, 0x00, 9, 'h', '.', 'e', 'x', 'a', 'm', 'p', 'l', 'e',
        0xe0, 0x00, 4, '/', 'p', '?', 'q'};

    T_EQ(n, sizeof(want));
    T_MEMEQ(b, want, sizeof(want));
}

T_TEST(round_trip_v6_dgram)
{
    struct sockaddr_in6 s = {.sin6_family = AF_INET6, .sin6_port = htons(7)};
    struct sockaddr_in6 d = {.sin6_family = AF_INET6, .sin6_port = htons(9)};
    struct proxy_info pi;
    uint8_t b[PROXY_V2_MAX];
    ssize_t n;

    inet_pton(AF_INET6, "2001:db8::1", &s.sin6_addr);
    inet_pton(AF_INET6, "::1", &d.sin6_addr);
    n = proxy_v2_encode(b, sizeof(b), (struct sockaddr *)&s,
                        (struct sockaddr *)&d, 1, NULL, "/x");
    T_CHECK(n > 0);
    T_EQ(b[13], 0x22);
    /* every shorter prefix asks for more */
    for (ssize_t k = 0; k < n; k++)
        T_EQ(proxy_v2_decode(b, (size_t)k, &pi), 0);
    T_EQ(proxy_v2_decode(b, (size_t)n, &pi), n);
    T_EQ(pi.family, AF_INET6);
    T_EQ(pi.dgram, 1);
    T_MEMEQ(&((struct sockaddr_in6 *)&pi.src)->sin6_addr, &s.sin6_addr, 16);
    T_EQ(((struct sockaddr_in6 *)&pi.dst)->sin6_port, htons(9));
    T_CHECK(pi.authority == NULL);
    T_EQ(pi.path_len, 2);
    T_MEMEQ(pi.path, "/x", 2);
}

T_TEST(encode_limits)
{
    struct sockaddr_in s = v4("127.0.0.1", 1);
    struct sockaddr_in6 d = {.sin6_family = AF_INET6};
    uint8_t b[PROXY_V2_MAX];
    char big[5000];

    /* families must match; the buffer must hold it */
    T_EQ(proxy_v2_encode(b, sizeof(b), (struct sockaddr *)&s,
                         (struct sockaddr *)&d, 0, NULL, NULL),
         -1);
    T_EQ(proxy_v2_encode(b, 20, (struct sockaddr *)&s, (struct sockaddr *)&s,
                         0, NULL, NULL),
         -1);
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    T_EQ(proxy_v2_encode(b, 100, (struct sockaddr *)&s, (struct sockaddr *)&s,
                         0, big, NULL),
         -1);
    T_EQ(proxy_v2_encode(b, sizeof(b), (struct sockaddr *)&s,
                         (struct sockaddr *)&s, 0, NULL, NULL),
         28);
}

T_TEST(decode_rejects)
{
    struct sockaddr_in s = v4("127.0.0.1", 1);
    struct proxy_info pi;
    uint8_t b[PROXY_V2_MAX];
    ssize_t n = proxy_v2_encode(b, sizeof(b), (struct sockaddr *)&s,
                                (struct sockaddr *)&s, 0, "a", "b");

    T_CHECK(n > 0);
    T_EQ(proxy_v2_decode((const uint8_t *)"GET / HTTP/1.1\r\n", 16, &pi), -1);
    T_EQ(proxy_v2_decode((const uint8_t *)"\r\n\r\nx", 5, &pi), -1);
    b[12] = 0x31; /* version 3 */
    T_EQ(proxy_v2_decode(b, (size_t)n, &pi), -1);
    b[12] = 0x21;
    b[n - 2] = 0xff; /* a TLV running past the header */
    b[16 + 12 + 1] = 0xff;
    T_EQ(proxy_v2_decode(b, (size_t)n, &pi), -1);
}

T_TEST(targets)
{
    struct target t;
    char err[200];

    T_EQ(target_parse("tcp://127.0.0.1:9000", TARGET_TCP, &t, err,
                      sizeof(err)),
         0);
    T_EQ(t.kind, TARGET_TCP);
    T_EQ(t.addr.ss_family, AF_INET);
    T_EQ(((struct sockaddr_in *)&t.addr)->sin_port, htons(9000));
    T_EQ(target_parse("tcp://[::1]:1", TARGET_TCP, &t, err, sizeof(err)), 0);
    T_EQ(t.addr.ss_family, AF_INET6);
    T_EQ(target_parse("udp://127.0.0.2:53", TARGET_UDP, &t, err, sizeof(err)),
         0);
    T_EQ(t.kind, TARGET_UDP);
    T_EQ(target_parse("unix:/run/x.sock", TARGET_TCP, &t, err, sizeof(err)),
         0);
    T_EQ(t.kind, TARGET_UNIX);
    T_STREQ(((struct sockaddr_un *)&t.addr)->sun_path, "/run/x.sock");
    T_EQ(target_parse("localhost:1", TARGET_TCP, &t, err, sizeof(err)), -1);
    T_EQ(target_parse("udp://127.0.0.1:1", TARGET_TCP, &t, err, sizeof(err)),
         -1);
    T_EQ(target_parse("tcp://127.0.0.1:1", TARGET_UDP, &t, err, sizeof(err)),
         -1);
    T_EQ(target_parse("unix:/x", TARGET_UDP, &t, err, sizeof(err)), -1);
    T_EQ(target_parse("unix:relative", TARGET_TCP, &t, err, sizeof(err)), -1);
    T_EQ(target_parse("tcp://127.0.0.1:0", TARGET_TCP, &t, err, sizeof(err)),
         -1);
    T_EQ(target_parse("tcp://127.0.0.1:65536", TARGET_TCP, &t, err,
                      sizeof(err)),
         -1);
    T_EQ(target_parse("tcp://127.0.0.1:", TARGET_TCP, &t, err, sizeof(err)),
         -1);
    T_EQ(target_parse("tcp://:80", TARGET_TCP, &t, err, sizeof(err)), -1);
    T_EQ(target_parse("tcp://[::1:80", TARGET_TCP, &t, err, sizeof(err)), -1);
    T_EQ(target_parse("tcp://no.such.host.invalid:80", TARGET_TCP, &t, err,
                      sizeof(err)),
         -1);
    T_CHECK(strstr(err, "no.such.host.invalid") != NULL);
}

int main(void)
{
    T_RUN(encode_v4_bytes);
    T_RUN(round_trip_v6_dgram);
    T_RUN(encode_limits);
    T_RUN(decode_rejects);
    T_RUN(targets);
    T_DONE();
}
