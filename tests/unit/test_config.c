/* Unit tests of src/config.c: every key, every error with file:line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "handler.h"
#include "log.h"
#include "t.h"

static char dir[64];
static char file[128];
static char cert[128];

static void setup(void)
{
    FILE *f;

    snprintf(dir, sizeof(dir), "/tmp/wtrelayd-cfg-XXXXXX");
    if (!mkdtemp(dir))
        abort();
    snprintf(file, sizeof(file), "%s/t.ini", dir);
    snprintf(cert, sizeof(cert), "%s/c.pem", dir);
    f = fopen(cert, "w");
    fputs("x\n", f);
    fclose(f);
}

static void cleanup(void)
{
    unlink(file);
    unlink(cert);
    rmdir(dir);
}

/* Writes `body` (with CERT replaced by the dummy cert path) and loads it. */
static int load(struct config *c, const char *body, char *err)
{
    FILE *f = fopen(file, "w");

    for (const char *p = body; *p; p++) {
        if (strncmp(p, "CERT", 4) == 0) {
            fputs(cert, f);
            p += 3;
        } else {
            fputc(*p, f);
        }
    }
    fclose(f);
    return config_load(c, file, err, CONFIG_ERR_LEN);
}

#define BASE "[server]\ncert = CERT\nkey = CERT\n"

/* Expects failure at `line` with `msg` in the message. */
static int fails_at(const char *body, int line, const char *msg)
{
    struct config c;
    char err[CONFIG_ERR_LEN], want[256];

    if (load(&c, body, err) != -1)
        return 0;
    snprintf(want, sizeof(want), "%s:%d: ", file, line);
    if (strncmp(err, want, strlen(want)) != 0 || !strstr(err, msg)) {
        printf("  got: %s\n  want: %s...%s\n", err, want, msg);
        return 0;
    }
    return 1;
}

T_TEST(full_file)
{
    struct config c;
    char err[CONFIG_ERR_LEN];
    const struct config_route *r;

    T_EQ(load(&c,
              "; comment\n"
              "[server]\n"
              "listen = 127.0.0.1:4433, [::1]:4434\n"
              "listen = 10.0.0.1:1\n"
              "cert = c.pem\n" /* relative to the file */
              "key = CERT\n"
              "log_level = debug\n"
              "max_connections = 7\n"
              "max_sessions_per_connection = 3\n"
              "max_streams_per_session = 100\n"
              "max_buffer_bytes = 64k\n"
              "max_connection_buffer_bytes = 2M\n"
              "max_datagram_queue = 5\n"
              "max_pending_streams = 0\n"
              "pending_timeout = 750ms\n"
              "idle_timeout = 250ms\n"
              "handshake_timeout = 2s\n"
              "shutdown_timeout = 1m\n"
              "retry = on\n"
              "retry_handshakes = 50\n"
              "handshake_queue = 32\n"
              "[route /echo]\n"
              "handler = echo\n"
              "allowed_origins = https://a.example, http://localhost:8080\n"
              "allowed_origins = https://b.example\n" /* adds to the list */
              "max_session_duration = 2s\n"
              "expire_code = 4294967295\n"
              "expire_reason = over and out\n"
              "[route /b]\n"
              "handler = echo\n",
              err),
         0);
    T_EQ(c.nlisten, 3);
    T_STREQ(c.listen[0].text, "127.0.0.1:4433");
    T_STREQ(c.listen[1].text, "[::1]:4434");
    T_EQ(c.listen[1].addr.ss_family, AF_INET6);
    T_STREQ(c.listen[2].text, "10.0.0.1:1");
    T_CHECK(strcmp(c.cert, cert) == 0 || strstr(c.cert, "/c.pem"));
    T_EQ(c.log_level, LOG_LVL_DEBUG);
    T_EQ(c.max_connections, 7);
    T_EQ(c.max_sessions_per_connection, 3);
    T_EQ(c.max_streams_per_session, 100);
    T_EQ(c.max_buffer_bytes, 65536);
    T_EQ(c.max_connection_buffer_bytes, 2 * 1024 * 1024);
    T_EQ(c.max_datagram_queue, 5);
    T_EQ(c.max_pending_streams, 0);
    T_EQ(c.pending_timeout_ms, 750);
    T_EQ(c.idle_timeout_ms, 250);
    T_EQ(c.handshake_timeout_ms, 2000);
    T_EQ(c.shutdown_timeout_ms, 60000);
    T_EQ(c.retry, CONFIG_RETRY_ON);
    T_EQ(c.retry_handshakes, 50);
    T_EQ(c.handshake_queue, 32);
    r = config_find_route(&c, "/echo?x=1", 9);
    T_CHECK(r != NULL);
    T_CHECK(r->handler == handler_find("echo"));
    T_EQ(r->norigins, 3);
    T_STREQ(r->origins[1], "http://localhost:8080");
    T_STREQ(r->origins[2], "https://b.example");
    T_EQ(r->max_session_duration_ms, 2000);
    T_EQ(r->expire_code, 0xffffffffu);
    T_STREQ(r->expire_reason, "over and out");
    T_CHECK(config_find_route(&c, "/b", 2) != NULL);
    T_CHECK(config_find_route(&c, "/echo/", 6) == NULL);
    T_CHECK(config_find_route(&c, "/ech", 4) == NULL);
    config_free(&c);
}

T_TEST(defaults)
{
    struct config c;
    char err[CONFIG_ERR_LEN];

    T_EQ(load(&c, BASE, err), 0);
    T_EQ(c.nlisten, 2);
    T_STREQ(c.listen[0].text, "0.0.0.0:4433");
    T_STREQ(c.listen[1].text, "[::]:4433");
    T_EQ(c.log_level, LOG_LVL_INFO);
    T_EQ(c.max_buffer_bytes, 1024 * 1024);
    T_EQ(c.idle_timeout_ms, 30000);
    T_EQ(c.retry, CONFIG_RETRY_AUTO);
    T_EQ(c.retry_handshakes, 1000);
    T_EQ(c.handshake_queue, 1024);
    T_EQ(c.pending_timeout_ms, 5000);
    T_CHECK(c.routes == NULL);
    config_free(&c);
}

T_TEST(errors_with_lines)
{
    T_CHECK(fails_at(BASE "[servr]\n", 4, "unknown section [servr]"));
    T_CHECK(fails_at(BASE "foo = 1\n", 4, "unknown key 'foo' in [server]"));
    T_CHECK(fails_at(BASE "[route /a]\nhandler = echo\nbar = 2\n", 6,
                     "unknown key 'bar' in [route /a]"));
    T_CHECK(fails_at(BASE "max_buffer_bytes = 12q\n", 4, "not a size"));
    T_CHECK(fails_at(BASE "idle_timeout = 5h\n", 4, "not a duration"));
    T_CHECK(fails_at(BASE "max_connections = 99999999999999999999999\n", 4,
                     "not a whole number"));
    T_CHECK(fails_at(BASE "max_connections = -1\n", 4, "not a whole number"));
    T_CHECK(fails_at(BASE "max_connections = 0\n", 4, "out of range"));
    T_CHECK(fails_at(BASE "pending_timeout = 0\n", 4, "out of range"));
    T_CHECK(fails_at(BASE "max_buffer_bytes = 16G\n", 4, "out of range"));
    T_CHECK(fails_at(BASE "log_level = loud\n", 4, "log_level"));
    T_CHECK(fails_at(BASE "retry = sometimes\n", 4,
                     "retry: 'sometimes' is not one of off, on, auto"));
    T_CHECK(fails_at(BASE "retry_handshakes = 0\n", 4, "out of range"));
    T_CHECK(fails_at(BASE "handshake_queue = 0\n", 4, "out of range"));
    T_CHECK(fails_at(BASE "listen = 1.2.3.4\n", 4, "not an address:port"));
    T_CHECK(fails_at(BASE "listen = [::1]\n", 4, "not an address:port"));
    T_CHECK(fails_at(BASE "listen = 1.2.3.4:0\n", 4, "not an address:port"));
    T_CHECK(fails_at(BASE "listen = 1.2.3.4:70000\n", 4,
                     "not an address:port"));
    T_CHECK(fails_at(BASE "listen = host:443\n", 4, "not an address:port"));
    T_CHECK(fails_at(BASE "listen = 1.2.3.4:1,,1.2.3.4:2\n", 4, "empty item"));
    T_CHECK(fails_at("[server]\ncert = /nonexistent/c.pem\n", 2,
                     "No such file"));
    T_CHECK(fails_at(BASE "[route /a]\nhandler = nope\n", 5,
                     "unknown handler 'nope'"));
    T_CHECK(fails_at(BASE "[route a]\n", 4, "must start with '/'"));
    T_CHECK(fails_at(BASE "[route /a]\nhandler=echo\n[route /a]\n", 6,
                     "already defined on line 4"));
    T_CHECK(fails_at(BASE "[route /a]\n", 4, "has no 'handler'"));
    T_CHECK(fails_at(BASE "garbage line\n", 4, "syntax error"));
    T_CHECK(fails_at("x = 1\n[server]\n", 1, "outside of any section"));
    T_CHECK(fails_at(BASE "[route /a]\nhandler = echo\nexpire_code = 4294967296\n",
                     6, "out of range"));
}

T_TEST(limits)
{
    char body[4096];
    size_t n;

    /* more listen addresses than CONFIG_MAX_LISTEN, one per line */
    n = (size_t)snprintf(body, sizeof(body), "%s", BASE);
    for (int i = 0; i <= CONFIG_MAX_LISTEN; i++)
        n += (size_t)snprintf(body + n, sizeof(body) - n,
                              "listen = 127.0.0.1:%d\n", 1000 + i);
    T_CHECK(fails_at(body, 4 + CONFIG_MAX_LISTEN, "more than"));
    /* a line longer than the INI parser holds */
    n = (size_t)snprintf(body, sizeof(body), "%s[route /a]\nhandler = echo\n"
                                             "expire_reason = ", BASE);
    memset(body + n, 'r', 300);
    strcpy(body + n + 300, "\n");
    T_CHECK(fails_at(body, 6, "line longer than"));
}

T_TEST(missing_pieces)
{
    struct config c;
    char err[CONFIG_ERR_LEN];

    T_EQ(load(&c, "[server]\nkey = CERT\n", err), -1);
    T_CHECK(strstr(err, ":0: ") && strstr(err, "'cert'"));
    T_EQ(config_load(&c, "/nonexistent/wtrelayd.ini", err, sizeof(err)), -1);
    T_CHECK(strstr(err, "/nonexistent/wtrelayd.ini:0: No such file"));
    config_free(&c); /* safe after a failed load */
}

T_TEST(parsers)
{
    uint64_t v;
    struct config_listen l;

    T_EQ(config_parse_size("0", &v), 0);
    T_EQ(v, 0);
    T_EQ(config_parse_size("1k", &v), 0);
    T_EQ(v, 1024);
    T_EQ(config_parse_size("3M", &v), 0);
    T_EQ(v, 3 * 1024 * 1024);
    T_EQ(config_parse_size("1G", &v), 0);
    T_EQ(v, 1024ULL * 1024 * 1024);
    T_EQ(config_parse_size("", &v), -1);
    T_EQ(config_parse_size("k", &v), -1);
    T_EQ(config_parse_size("1kb", &v), -1);
    T_EQ(config_parse_size(" 1", &v), -1);
    T_EQ(config_parse_size("18446744073709551615G", &v), -1);
    T_EQ(config_parse_duration_ms("30s", &v), 0);
    T_EQ(v, 30000);
    T_EQ(config_parse_duration_ms("250ms", &v), 0);
    T_EQ(v, 250);
    T_EQ(config_parse_duration_ms("2m", &v), 0);
    T_EQ(v, 120000);
    T_EQ(config_parse_duration_ms("0", &v), 0);
    T_EQ(v, 0);
    T_EQ(config_parse_duration_ms("5", &v), -1);
    T_EQ(config_parse_duration_ms("5 s", &v), -1);
    T_EQ(config_parse_addr("0.0.0.0:4433", &l), 0);
    T_EQ(l.addr.ss_family, AF_INET);
    T_EQ(config_parse_addr("[::]:1", &l), 0);
    T_EQ(l.addr.ss_family, AF_INET6);
    T_EQ(config_parse_addr("[::1:1", &l), -1);
    T_EQ(config_parse_addr("::1:1", &l), -1);
    T_EQ(config_parse_addr("1.2.3.4:", &l), -1);
    T_EQ(config_parse_addr(":1", &l), -1);
}

T_TEST(log_format_and_credentials)
{
    struct config c;
    char err[CONFIG_ERR_LEN], want[192];

    T_EQ(load(&c, BASE "log_format = json\n", err), 0);
    T_EQ(c.log_format, LOG_FMT_JSON);
    config_free(&c);
    T_CHECK(fails_at(BASE "log_format = xml\n", 4, "log_format"));
    /* ${CREDENTIALS_DIRECTORY}/NAME: systemd's LoadCredential= files */
    unsetenv("CREDENTIALS_DIRECTORY");
    T_CHECK(fails_at("[server]\ncert = ${CREDENTIALS_DIRECTORY}/c.pem\n", 2,
                     "CREDENTIALS_DIRECTORY is not set"));
    setenv("CREDENTIALS_DIRECTORY", dir, 1);
    T_EQ(load(&c,
              "[server]\ncert = ${CREDENTIALS_DIRECTORY}/c.pem\n"
              "key = ${CREDENTIALS_DIRECTORY}/c.pem\n",
              err),
         0);
    snprintf(want, sizeof(want), "%s/c.pem", dir);
    T_STREQ(c.cert, want);
    T_STREQ(c.key, want);
    config_free(&c);
    T_CHECK(fails_at("[server]\ncert = ${CREDENTIALS_DIRECTORY}/none.pem\n", 2,
                     "none.pem"));
    unsetenv("CREDENTIALS_DIRECTORY");
}

T_TEST(protocols)
{
    struct config c;
    char err[CONFIG_ERR_LEN];
    const struct config_route *r;
    char many[512] = BASE "[route /a]\nhandler = echo\nprotocols = p0";

    T_EQ(load(&c,
              BASE "[route /a]\nhandler = echo\n"
                   "protocols = chat.v2, chat.v1 ,*x/y:z\n"
                   "protocol_required = yes\n"
                   "[route /b]\nhandler = echo\n",
              err),
         0);
    r = config_find_route(&c, "/a", 2);
    T_CHECK(r != NULL);
    T_EQ(r->nprotocols, 3);
    T_STREQ(r->protocols[0], "chat.v2");
    T_STREQ(r->protocols[1], "chat.v1");
    T_STREQ(r->protocols[2], "*x/y:z");
    T_EQ(r->protocol_required, 1);
    r = config_find_route(&c, "/b", 2);
    T_EQ(r->nprotocols, 0);
    T_EQ(r->protocol_required, 0);
    config_free(&c);

    T_CHECK(fails_at(BASE "[route /a]\nhandler = echo\nprotocols = 1chat\n",
                     6, "protocols: '1chat' is not a token"));
    T_CHECK(fails_at(BASE "[route /a]\nhandler = echo\nprotocols = a b\n", 6,
                     "is not a token"));
    T_CHECK(fails_at(BASE "[route /a]\nhandler = echo\nprotocols = \"a\"\n",
                     6, "is not a token"));
    T_CHECK(fails_at(BASE "[route /a]\nhandler = echo\nprotocols = a,,b\n", 6,
                     "empty item"));
    T_CHECK(fails_at(BASE "[route /a]\nhandler = echo\nprotocols = a, a\n", 6,
                     "'a' listed twice"));
    T_CHECK(fails_at(BASE "[route /a]\nhandler = echo\nprotocols = "
                          "a123456789012345678901234567890123456789012345678901"
                          "2345678901234\n",
                     6, "at most 64 bytes"));
    T_CHECK(fails_at(BASE "[route /a]\nhandler = echo\n"
                          "protocol_required = maybe\n",
                     6, "protocol_required: 'maybe'"));
    T_CHECK(fails_at(BASE "[route /a]\nhandler = echo\n"
                          "protocol_required = yes\n",
                     4, "protocol_required = yes needs 'protocols'"));
    for (int i = 1; i <= CONFIG_MAX_PROTOCOLS; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), ", p%d", i);
    strcat(many, "\n");
    T_CHECK(fails_at(many, 6, "more than 16 protocols"));
}

T_TEST(cluster)
{
    struct config c;
    struct config_cluster cl;
    char err[CONFIG_ERR_LEN];

    /* absent: no cluster */
    T_EQ(load(&c, BASE, err), 0);
    T_CHECK(c.cluster.redis == NULL);
    config_free(&c);
    /* the defaults and the node id from the host name and pid */
    T_EQ(load(&c, BASE "[cluster]\nredis = redis://127.0.0.1\n", err), 0);
    T_STREQ(c.cluster.redis, "redis://127.0.0.1:6379/0");
    T_STREQ(c.cluster.host, "127.0.0.1");
    T_EQ(c.cluster.port, 6379);
    T_CHECK(c.cluster.password == NULL && c.cluster.unix_path == NULL);
    T_CHECK(strchr(c.cluster.node_id, ':') != NULL);
    T_STREQ(c.cluster.prefix, "wtrelayd");
    T_EQ(c.cluster.max_pending_bytes, 8 * 1024 * 1024);
    T_EQ(c.cluster.heartbeat_ms, 1000);
    T_EQ(c.cluster.node_timeout_ms, 5000);
    config_free(&c);
    T_EQ(load(&c, BASE "[cluster]\nredis = unix:/run/redis.sock?db=3\n"
                       "node_id = edge-1\nprefix = fleet\nheartbeat = 250ms\n"
                       "node_timeout = 2s\nmax_pending_bytes = 1M\n"
                       "max_remote_streams = 10\nmax_remote_members = 20\n",
              err), 0);
    T_STREQ(c.cluster.unix_path, "/run/redis.sock");
    T_EQ(c.cluster.db, 3);
    T_STREQ(c.cluster.node_id, "edge-1");
    T_STREQ(c.cluster.prefix, "fleet");
    T_EQ(c.cluster.heartbeat_ms, 250);
    T_EQ(c.cluster.max_pending_bytes, 1024 * 1024);
    T_EQ(c.cluster.max_remote_streams, 10);
    config_free(&c);
    /* URLs: credentials (masked when shown), IPv6, db */
    memset(&cl, 0, sizeof(cl));
    T_EQ(config_parse_redis("redis://:s3cr@t@127.0.0.1:7000/2", &cl, err, 256), 0);
    T_STREQ(cl.password, "s3cr@t");
    T_CHECK(cl.user == NULL);
    T_EQ(cl.port, 7000);
    T_EQ(cl.db, 2);
    T_STREQ(cl.redis, "redis://:***@127.0.0.1:7000/2");
    T_EQ(config_parse_redis("redis://app:pw@[::1]:6380", &cl, err, 256), 0);
    T_STREQ(cl.user, "app");
    T_STREQ(cl.password, "pw");
    T_STREQ(cl.host, "::1");
    T_STREQ(cl.redis, "redis://app:***@[::1]:6380/0");
    T_EQ(config_parse_redis("redis://localhost:6379", &cl, err, 256), 0);
    T_CHECK(strcmp(cl.host, "127.0.0.1") == 0 || strcmp(cl.host, "::1") == 0);
    T_EQ(config_parse_redis("http://127.0.0.1", &cl, err, 256), -1);
    T_EQ(config_parse_redis("redis://", &cl, err, 256), -1);
    T_EQ(config_parse_redis("redis://127.0.0.1:0", &cl, err, 256), -1);
    T_EQ(config_parse_redis("redis://127.0.0.1:65536", &cl, err, 256), -1);
    T_EQ(config_parse_redis("redis://127.0.0.1:6379/x", &cl, err, 256), -1);
    T_EQ(config_parse_redis("redis://127.0.0.1:6379/1001", &cl, err, 256), -1);
    T_EQ(config_parse_redis("redis://pw@127.0.0.1", &cl, err, 256), -1);
    T_EQ(config_parse_redis("redis://[::1", &cl, err, 256), -1);
    T_EQ(config_parse_redis("unix:relative", &cl, err, 256), -1);
    T_EQ(config_parse_redis("unix:/x?db=", &cl, err, 256), -1);
    config_cluster_free(&cl);
    /* errors name the line */
    T_CHECK(fails_at(BASE "[cluster]\nnode_id = a\n", 4, "needs 'redis'"));
    T_CHECK(fails_at(BASE "[cluster]\nredis = redis://1.2.3.4:99999\n", 5,
                     "port"));
    T_CHECK(fails_at(BASE "[cluster]\nredis = redis://127.0.0.1\nheartbeat "
                          "= 2s\nnode_timeout = 3s\n", 4, "at least twice"));
    T_CHECK(fails_at(BASE "[cluster]\nredis = redis://127.0.0.1\nnode_id = "
                          "a\x01b\n", 6, "printable"));
    T_CHECK(fails_at(BASE "[cluster]\nredis = redis://127.0.0.1\n"
                          "max_pending_bytes = 1k\n", 6, "out of range"));
    T_CHECK(fails_at(BASE "[cluster]\nredis = redis://127.0.0.1\n[cluster]\n",
                     6, "already defined on line 4"));
    T_CHECK(fails_at(BASE "[cluster]\nredis = redis://127.0.0.1\nfoo = 1\n", 6,
                     "unknown key 'foo' in [cluster]"));
}

int main(void)
{
    setup();
    T_RUN(full_file);
    T_RUN(defaults);
    T_RUN(errors_with_lines);
    T_RUN(limits);
    T_RUN(missing_pieces);
    T_RUN(parsers);
    T_RUN(log_format_and_credentials);
    T_RUN(protocols);
    T_RUN(cluster);
    cleanup();
    T_DONE();
}
