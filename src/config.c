/*
 * config: the INI file -> struct config (see config.h).
 *
 * inih is fed through ini_parse_stream() with our own line reader: Debian's
 * inih is built without INI_HANDLER_LINENO, so the reader counts lines,
 * sees section headers (to create routes and reject unknown sections even
 * when they are empty) and refuses lines longer than inih can hold.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "handler.h"
#include "log.h"
#include "prio.h"
#include "sf.h"

#define LINE_MAX_LEN 4096 /* section header copy; inih caps lines lower */

struct parse {
    struct config *c;
    FILE *f;
    const char *file;
    char *dir; /* the config file's directory, for relative paths */
    int line;
    int err_set;
    char *err;
    size_t errlen;
    struct config_route *route; /* current [route …] section, or NULL */
    int in_server;
    int in_admin;
    int in_cluster;
    int cluster_line; /* of the [cluster] header */
    int admin_line; /* of the [admin] listen key, for messages */
    int cert_line, key_line;
    int workers_line;
    int listen_set; /* the first listen replaces the default */
    char *linebuf;
    size_t linecap;
};

static int fail(struct parse *ps, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct parse *ps, int line, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (ps->err_set)
        return 0;
    ps->err_set = 1;
    n = snprintf(ps->err, ps->errlen, "%s:%d: ", ps->file, line);
    if (n < 0 || (size_t)n >= ps->errlen)
        return 0;
    va_start(ap, fmt);
    vsnprintf(ps->err + n, ps->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return 0; /* inih: 0 = error */
}

/* ---- value parsers ---- */

static int parse_u64(const char *s, uint64_t *out, const char **end)
{
    uint64_t v = 0;
    const char *p = s;

    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
            return -1; /* overflow */
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *out = v;
    *end = p;
    return 0;
}

int config_parse_size(const char *s, uint64_t *out)
{
    uint64_t v, mul = 1;
    const char *e;

    if (parse_u64(s, &v, &e) < 0)
        return -1;
    switch (*e) {
    case 'k':
    case 'K':
        mul = 1024;
        e++;
        break;
    case 'm':
    case 'M':
        mul = 1024 * 1024;
        e++;
        break;
    case 'g':
    case 'G':
        mul = 1024ULL * 1024 * 1024;
        e++;
        break;
    }
    if (*e != '\0' || (v && mul > UINT64_MAX / v))
        return -1;
    *out = v * mul;
    return 0;
}

int config_parse_bool(const char *s)
{
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};

    for (size_t i = 0; i < 4; i++) {
        if (strcmp(s, yes[i]) == 0)
            return 1;
        if (strcmp(s, no[i]) == 0)
            return 0;
    }
    return -1;
}

int config_parse_duration_ms(const char *s, uint64_t *out)
{
    uint64_t v, mul;
    const char *e;

    if (parse_u64(s, &v, &e) < 0)
        return -1;
    if (strcmp(e, "ms") == 0)
        mul = 1;
    else if (strcmp(e, "s") == 0)
        mul = 1000;
    else if (strcmp(e, "m") == 0)
        mul = 60000;
    else if (*e == '\0' && v == 0)
        mul = 1; /* a bare 0 needs no unit */
    else
        return -1;
    if (v && mul > UINT64_MAX / v)
        return -1;
    *out = v * mul;
    return 0;
}

int config_parse_addr(const char *s, struct config_listen *out)
{
    char host[INET6_ADDRSTRLEN + 2];
    const char *colon, *portstr;
    uint64_t port;
    const char *e;
    size_t hl;

    memset(out, 0, sizeof(*out));
    if (strlen(s) >= sizeof(out->text))
        return -1;
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');

        if (!rb || rb[1] != ':')
            return -1;
        hl = (size_t)(rb - s - 1);
        portstr = rb + 2;
        if (hl == 0 || hl >= sizeof(host))
            return -1;
        memcpy(host, s + 1, hl);
        host[hl] = '\0';
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return -1;
        hl = (size_t)(colon - s);
        if (hl == 0 || hl >= sizeof(host))
            return -1;
        memcpy(host, s, hl);
        host[hl] = '\0';
        portstr = colon + 1;
    }
    if (parse_u64(portstr, &port, &e) < 0 || *e != '\0' || port == 0 ||
        port > 65535)
        return -1;
    if (s[0] == '[') {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->addr;

        if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
            return -1;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        out->addrlen = sizeof(*sin6);
    } else {
        struct sockaddr_in *sin = (struct sockaddr_in *)&out->addr;

        if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
            return -1;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        out->addrlen = sizeof(*sin);
    }
    strcpy(out->text, s);
    return 0;
}

/* ---- list values ---- */

static char *trim(char *s)
{
    char *e;

    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        *--e = '\0';
    return s;
}

/* Calls fn for each comma-separated item; stops at the first error.  An
 * empty item ("a,,b", "a,") is an error, not skipped. */
static int each_item(struct parse *ps, const char *key, const char *val,
                     int (*fn)(struct parse *, const char *, void *),
                     void *arg)
{
    char *copy = strdup(val), *p, *comma;
    int rv = 1;

    if (!copy)
        return fail(ps, ps->line, "out of memory");
    for (p = copy; rv; p = comma + 1) {
        char *item;

        comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        item = trim(p);
        if (*item == '\0')
            rv = fail(ps, ps->line, "%s: empty item in list", key);
        else
            rv = fn(ps, item, arg);
        if (!comma)
            break;
    }
    free(copy);
    return rv;
}

static int add_listen(struct parse *ps, const char *item, void *arg)
{
    struct config *c = ps->c;

    (void)arg;
    if (c->nlisten >= CONFIG_MAX_LISTEN)
        return fail(ps, ps->line, "listen: more than %d addresses",
                    CONFIG_MAX_LISTEN);
    if (config_parse_addr(item, &c->listen[c->nlisten]) < 0)
        return fail(ps, ps->line,
                    "listen: '%s' is not an address:port "
                    "(e.g. 0.0.0.0:4433 or [::]:4433)",
                    item);
    c->nlisten++;
    return 1;
}

static int add_origin(struct parse *ps, const char *item, void *arg)
{
    struct config_route *r = arg;

    if (r->norigins >= CONFIG_MAX_ORIGINS)
        return fail(ps, ps->line, "allowed_origins: more than %d origins",
                    CONFIG_MAX_ORIGINS);
    if (!(r->origins[r->norigins] = strdup(item)))
        return fail(ps, ps->line, "out of memory");
    r->norigins++;
    return 1;
}

static int add_protocol(struct parse *ps, const char *item, void *arg)
{
    struct config_route *r = arg;
    size_t len = strlen(item);

    if (r->nprotocols >= CONFIG_MAX_PROTOCOLS)
        return fail(ps, ps->line, "protocols: more than %d protocols",
                    CONFIG_MAX_PROTOCOLS);
    /* A Token (RFC 9651 §3.3.4) fits both header spellings: a String of
     * WT-Available-Protocols and a Token of quiche's. */
    if (len > CONFIG_MAX_PROTOCOL_LEN || !sf_is_token(item, len))
        return fail(ps, ps->line,
                    "protocols: '%s' is not a token of at most %d bytes "
                    "(a letter or '*', then letters, digits and "
                    "!#$%%&'*+-.^_`|~:/)",
                    item, CONFIG_MAX_PROTOCOL_LEN);
    for (size_t i = 0; i < r->nprotocols; i++)
        if (strcmp(r->protocols[i], item) == 0)
            return fail(ps, ps->line, "protocols: '%s' listed twice", item);
    if (!(r->protocols[r->nprotocols] = strdup(item)))
        return fail(ps, ps->line, "out of memory");
    r->nprotocols++;
    return 1;
}

/* ---- keys ---- */

/* Bounded integer keys of [server]: name, field, min, max, kind. */
enum kind { K_COUNT, K_SIZE, K_DURATION };

struct num_key {
    const char *name;
    size_t off;
    uint64_t min, max;
    enum kind kind;
};

#define NUMKEY(n, min, max, kind)                                              \
    {#n, offsetof(struct config, n), min, max, kind}

static const struct num_key server_nums[] = {
    NUMKEY(max_connections, 1, 1000000, K_COUNT),
    NUMKEY(max_sessions_per_connection, 1, 65536, K_COUNT),
    NUMKEY(max_streams_per_session, 1, 1000000, K_COUNT),
    NUMKEY(max_buffer_bytes, 1024, 1ULL << 30, K_SIZE),
    NUMKEY(max_connection_buffer_bytes, 1024, 1ULL << 32, K_SIZE),
    NUMKEY(max_datagram_queue, 1, 1000000, K_COUNT),
    NUMKEY(max_pending_streams, 0, 100000, K_COUNT),
    {"pending_timeout", offsetof(struct config, pending_timeout_ms), 10,
     600000, K_DURATION},
    NUMKEY(socket_buffer_bytes, 0, 1ULL << 30, K_SIZE),
    {"idle_timeout", offsetof(struct config, idle_timeout_ms), 100,
     24ULL * 3600 * 1000, K_DURATION},
    {"handshake_timeout", offsetof(struct config, handshake_timeout_ms), 100,
     600000, K_DURATION},
    {"shutdown_timeout", offsetof(struct config, shutdown_timeout_ms), 0,
     3600000, K_DURATION},
    {"worker_timeout", offsetof(struct config, worker_timeout_ms), 500,
     600000, K_DURATION},
    NUMKEY(retry_handshakes, 1, 1000000, K_COUNT),
    NUMKEY(handshake_queue, 1, 100000, K_COUNT),
    NUMKEY(handshake_threads, 0, 16, K_COUNT),
    NUMKEY(handshake_nice, 0, 19, K_COUNT),
    NUMKEY(loop_slice_us, 0, PRIO_SLICE_MAX_US, K_COUNT),
    NUMKEY(max_connections_per_address, 0, 1000000, K_COUNT),
    NUMKEY(max_handshakes_per_address, 0, 1000000, K_COUNT),
    NUMKEY(max_sessions_per_address, 0, 100000000, K_COUNT),
    NUMKEY(connection_rate_per_address, 0, 1000000, K_COUNT),
    NUMKEY(connection_burst_per_address, 1, 1000000, K_COUNT),
    NUMKEY(wt_initial_max_data, 1, 1ULL << 40, K_SIZE),
    NUMKEY(wt_initial_max_streams_bidi, 1, 1000000, K_COUNT),
    NUMKEY(wt_initial_max_streams_uni, 1, 1000000, K_COUNT),
};

static int set_num(struct parse *ps, const struct num_key *k, const char *val,
                   uint64_t *dst)
{
    static const char *const what[] = {"a whole number", "a size (e.g. 64k, 1M)",
                                       "a duration (e.g. 250ms, 30s, 2m)"};
    uint64_t v;
    int rv;
    const char *e;

    if (k->kind == K_SIZE)
        rv = config_parse_size(val, &v);
    else if (k->kind == K_DURATION)
        rv = config_parse_duration_ms(val, &v);
    else
        rv = (parse_u64(val, &v, &e) == 0 && *e == '\0') ? 0 : -1;
    if (rv < 0)
        return fail(ps, ps->line, "%s: '%s' is not %s", k->name, val,
                    what[k->kind]);
    if (v < k->min || v > k->max) {
        if (k->kind == K_DURATION)
            return fail(ps, ps->line,
                        "%s: %s is out of range (%llums .. %llums)", k->name,
                        val, (unsigned long long)k->min,
                        (unsigned long long)k->max);
        return fail(ps, ps->line, "%s: %s is out of range (%llu .. %llu)",
                    k->name, val, (unsigned long long)k->min,
                    (unsigned long long)k->max);
    }
    *dst = v;
    return 1;
}

/* A path relative to the config file's directory, checked readable. */
/* A path starting with this is under $CREDENTIALS_DIRECTORY. */
#define CRED_VAR "${CREDENTIALS_DIRECTORY}"

static int set_path(struct parse *ps, const char *key, const char *val,
                    char **dst)
{
    char *p;

    if (*val == '\0')
        return fail(ps, ps->line, "%s: empty path", key);
    if (strncmp(val, CRED_VAR "/", strlen(CRED_VAR) + 1) == 0) {
        /* systemd's LoadCredential= puts the files there, readable by the
         * service's (dynamic) user only: the unit names them */
        const char *dir = getenv("CREDENTIALS_DIRECTORY");
        size_t n;

        if (!dir || dir[0] != '/')
            return fail(ps, ps->line,
                        "%s: %s: CREDENTIALS_DIRECTORY is not set (the unit's "
                        "LoadCredential= sets it)",
                        key, val);
        n = strlen(dir) + strlen(val + strlen(CRED_VAR)) + 1;
        p = malloc(n);
        if (p)
            snprintf(p, n, "%s%s", dir, val + strlen(CRED_VAR));
    } else if (val[0] == '/' || !ps->dir) {
        p = strdup(val);
    } else {
        size_t n = strlen(ps->dir) + strlen(val) + 2;

        p = malloc(n);
        if (p)
            snprintf(p, n, "%s/%s", ps->dir, val);
    }
    if (!p)
        return fail(ps, ps->line, "out of memory");
    if (access(p, R_OK) != 0) {
        fail(ps, ps->line, "%s: %s: %s", key, p, strerror(errno));
        free(p);
        return 0;
    }
    free(*dst);
    *dst = p;
    return 1;
}

/* ---- [cluster] ---- */

static int redis_fail(char *err, size_t errlen, const char *why)
{
    snprintf(err, errlen, "%s", why);
    return -1;
}

void config_cluster_free(struct config_cluster *cl)
{
    free(cl->redis);
    free(cl->host);
    free(cl->unix_path);
    free(cl->user);
    free(cl->password);
    free(cl->node_id);
    free(cl->prefix);
    cl->redis = cl->host = cl->unix_path = cl->user = cl->password = NULL;
    cl->node_id = cl->prefix = NULL;
}

int config_parse_redis(const char *s, struct config_cluster *cl, char *err,
                       size_t errlen)
{
    char host[256], shown[512];
    const char *p, *at, *hp, *he, *slash;
    uint64_t port = 6379, db = 0;
    const char *e;

    free(cl->host);
    free(cl->unix_path);
    free(cl->user);
    free(cl->password);
    cl->host = cl->unix_path = cl->user = cl->password = NULL;
    if (strncmp(s, "unix:", 5) == 0) {
        const char *path = s + 5, *q = strchr(path, '?');
        size_t n = q ? (size_t)(q - path) : strlen(path);

        if (n == 0 || path[0] != '/' || n >= 108)
            return redis_fail(err, errlen, "unix:/path (absolute, under "
                                           "108 bytes)");
        if (q && (strncmp(q, "?db=", 4) != 0 ||
                  parse_u64(q + 4, &db, &e) < 0 || *e || db > 1000))
            return redis_fail(err, errlen, "unix:/path?db=N (0 .. 1000)");
        if (!(cl->unix_path = strndup(path, n)))
            return redis_fail(err, errlen, "out of memory");
        cl->db = db;
        snprintf(shown, sizeof(shown), "%s", s);
        goto done;
    }
    if (strncmp(s, "redis://", 8) != 0)
        return redis_fail(err, errlen,
                          "not redis://[[user]:password@]host[:port][/db] "
                          "or unix:/path");
    p = s + 8;
    slash = strchr(p, '/');
    /* the password may hold '@': the last one before the path ends it */
    at = NULL;
    for (const char *q = p; *q && (!slash || q < slash); q++)
        if (*q == '@')
            at = q;
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));

        if (!colon || at == colon + 1)
            return redis_fail(err, errlen,
                              "credentials are [user]:password@");
        if (colon > p && !(cl->user = strndup(p, (size_t)(colon - p))))
            return redis_fail(err, errlen, "out of memory");
        if (!(cl->password = strndup(colon + 1, (size_t)(at - colon - 1))))
            return redis_fail(err, errlen, "out of memory");
        hp = at + 1;
    } else {
        hp = p;
    }
    he = slash ? slash : hp + strlen(hp);
    if (*hp == '[') {
        const char *rb = memchr(hp, ']', (size_t)(he - hp));

        if (!rb || (size_t)(rb - hp - 1) >= sizeof(host) || rb == hp + 1)
            return redis_fail(err, errlen, "bad [IPv6] host");
        memcpy(host, hp + 1, (size_t)(rb - hp - 1));
        host[rb - hp - 1] = 0;
        p = rb + 1;
    } else {
        const char *colon = memchr(hp, ':', (size_t)(he - hp));
        const char *hend = colon ? colon : he;

        if (hend == hp || (size_t)(hend - hp) >= sizeof(host))
            return redis_fail(err, errlen, "no host");
        memcpy(host, hp, (size_t)(hend - hp));
        host[hend - hp] = 0;
        p = hend;
    }
    if (p < he) {
        char num[16];

        if (*p != ':' || he - p - 1 <= 0 || he - p - 1 >= (long)sizeof(num))
            return redis_fail(err, errlen, "bad port");
        memcpy(num, p + 1, (size_t)(he - p - 1));
        num[he - p - 1] = 0;
        if (parse_u64(num, &port, &e) < 0 || *e || port == 0 || port > 65535)
            return redis_fail(err, errlen, "port: 1 .. 65535");
    }
    if (slash && slash[1] &&
        (parse_u64(slash + 1, &db, &e) < 0 || *e || db > 1000))
        return redis_fail(err, errlen, "db: 0 .. 1000");
    {
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
        char num[INET6_ADDRSTRLEN];
        int rv = getaddrinfo(host, NULL, &hints, &ai);

        if (rv != 0 || !ai) {
            snprintf(err, errlen, "%s: %s", host,
                     rv ? gai_strerror(rv) : "no address");
            return -1;
        }
        rv = getnameinfo(ai->ai_addr, ai->ai_addrlen, num, sizeof(num), NULL,
                         0, NI_NUMERICHOST);
        freeaddrinfo(ai);
        if (rv != 0)
            return redis_fail(err, errlen, "cannot print the address");
        if (!(cl->host = strdup(num)))
            return redis_fail(err, errlen, "out of memory");
    }
    cl->port = (int)port;
    cl->db = db;
    snprintf(shown, sizeof(shown), "redis://%s%s%s%s:%d/%llu",
             cl->password ? (cl->user ? cl->user : "") : "",
             cl->password ? ":***@" : "", strchr(cl->host, ':') ? "[" : "",
             cl->host, cl->port, (unsigned long long)cl->db);
    if (strchr(cl->host, ':')) { /* [v6] closes its bracket */
        char *b = strstr(shown, cl->host);

        snprintf(b + strlen(cl->host), sizeof(shown) - (size_t)(b - shown) -
                 strlen(cl->host), "]:%d/%llu", cl->port,
                 (unsigned long long)cl->db);
    }
done:
    free(cl->redis);
    if (!(cl->redis = strdup(shown)))
        return redis_fail(err, errlen, "out of memory");
    return 0;
}

static const struct num_key cluster_nums[] = {
    {"max_pending_bytes", offsetof(struct config, cluster.max_pending_bytes),
     64 * 1024, 1ULL << 32, K_SIZE},
    {"max_remote_streams", offsetof(struct config, cluster.max_remote_streams),
     1, 1000000, K_COUNT},
    {"max_remote_members", offsetof(struct config, cluster.max_remote_members),
     1, 10000000, K_COUNT},
    {"heartbeat", offsetof(struct config, cluster.heartbeat_ms), 100, 60000,
     K_DURATION},
    {"node_timeout", offsetof(struct config, cluster.node_timeout_ms), 300,
     600000, K_DURATION},
};

/* node_id and prefix: printable ASCII, no spaces, 1..64 bytes. */
static int set_word(struct parse *ps, const char *key, const char *val,
                    char **dst)
{
    size_t n = strlen(val);

    if (n == 0 || n > 64)
        return fail(ps, ps->line, "%s: 1 to 64 characters", key);
    for (size_t i = 0; i < n; i++)
        if (val[i] <= 0x20 || val[i] >= 0x7f)
            return fail(ps, ps->line,
                        "%s: printable ASCII without spaces", key);
    free(*dst);
    if (!(*dst = strdup(val)))
        return fail(ps, ps->line, "out of memory");
    return 1;
}

static int cluster_key(struct parse *ps, const char *name, const char *val)
{
    struct config_cluster *cl = &ps->c->cluster;
    char err[256];

    if (strcmp(name, "redis") == 0) {
        if (config_parse_redis(val, cl, err, sizeof(err)) < 0)
            return fail(ps, ps->line, "redis: %s", err);
        cl->line = ps->line;
        return 1;
    }
    if (strcmp(name, "node_id") == 0)
        return set_word(ps, name, val, &cl->node_id);
    if (strcmp(name, "prefix") == 0)
        return set_word(ps, name, val, &cl->prefix);
    for (size_t i = 0; i < sizeof(cluster_nums) / sizeof(cluster_nums[0]); i++)
        if (strcmp(name, cluster_nums[i].name) == 0)
            return set_num(ps, &cluster_nums[i], val,
                           (uint64_t *)((char *)ps->c + cluster_nums[i].off));
    return fail(ps, ps->line, "unknown key '%s' in [cluster]", name);
}

/* After the file: the section is whole (redis set), consistent, and has a
 * node id. */
static void cluster_check(struct parse *ps)
{
    struct config_cluster *cl = &ps->c->cluster;
    char host[64] = "localhost", id[96];

    if (!ps->cluster_line)
        return;
    if (!cl->redis) {
        fail(ps, ps->cluster_line, "[cluster] needs 'redis' "
                                   "(redis://host:port or unix:/path)");
        return;
    }
    if (cl->node_timeout_ms < 2 * cl->heartbeat_ms) {
        fail(ps, ps->cluster_line,
             "[cluster] node_timeout (%llums) must be at least twice "
             "heartbeat (%llums)",
             (unsigned long long)cl->node_timeout_ms,
             (unsigned long long)cl->heartbeat_ms);
        return;
    }
    if (!cl->prefix && !(cl->prefix = strdup("wtrelayd"))) {
        fail(ps, ps->cluster_line, "out of memory");
        return;
    }
    if (!cl->node_id) {
        gethostname(host, sizeof(host) - 1);
        host[sizeof(host) - 1] = 0;
        snprintf(id, sizeof(id), "%s:%ld", host, (long)getpid());
        for (char *q = id; *q; q++)
            if (*q <= 0x20 || *q >= 0x7f)
                *q = '_';
        id[64] = 0;
        if (!(cl->node_id = strdup(id)))
            fail(ps, ps->cluster_line, "out of memory");
    }
}

static int server_key(struct parse *ps, const char *name, const char *val)
{
    struct config *c = ps->c;

    if (strcmp(name, "listen") == 0) {
        if (!ps->listen_set) {
            c->nlisten = 0; /* the file's list replaces the default */
            ps->listen_set = 1;
        }
        return each_item(ps, name, val, add_listen, NULL);
    }
    if (strcmp(name, "cert") == 0) {
        ps->cert_line = ps->line;
        return set_path(ps, name, val, &c->cert);
    }
    if (strcmp(name, "key") == 0) {
        ps->key_line = ps->line;
        return set_path(ps, name, val, &c->key);
    }
    if (strcmp(name, "log_level") == 0) {
        int l = log_level_parse(val);

        if (l < 0)
            return fail(ps, ps->line,
                        "log_level: '%s' is not one of error, warn, info, "
                        "debug",
                        val);
        c->log_level = l;
        return 1;
    }
    if (strcmp(name, "log_format") == 0) {
        int f = log_format_parse(val);

        if (f < 0)
            return fail(ps, ps->line, "log_format: '%s' is not text or json",
                        val);
        c->log_format = f;
        return 1;
    }
    if (strcmp(name, "workers") == 0) {
        static const struct num_key k = {"workers", 0, 1, CONFIG_MAX_WORKERS,
                                         K_COUNT};

        ps->workers_line = ps->line;
        if (strcmp(val, "auto") == 0) {
            long n = sysconf(_SC_NPROCESSORS_ONLN);

            /* one worker per core the machine has now */
            c->workers = n < 1 ? 1
                         : n > CONFIG_MAX_WORKERS ? CONFIG_MAX_WORKERS
                                                  : (uint64_t)n;
            return 1;
        }
        return set_num(ps, &k, val, &c->workers);
    }
    if (strcmp(name, "retry") == 0) {
        static const char *const modes[] = {"off", "on", "auto"};

        for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
            if (strcmp(val, modes[i]) == 0) {
                c->retry = (int)i;
                return 1;
            }
        return fail(ps, ps->line, "retry: '%s' is not one of off, on, auto",
                    val);
    }
    for (size_t i = 0; i < sizeof(server_nums) / sizeof(server_nums[0]); i++)
        if (strcmp(name, server_nums[i].name) == 0)
            return set_num(ps, &server_nums[i], val,
                           (uint64_t *)((char *)c + server_nums[i].off));
    return fail(ps, ps->line, "unknown key '%s' in [server]", name);
}

static uint64_t fnv1a(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 1099511628211ULL;
    return h;
}

int config_addr_is_loopback(const struct config_listen *l)
{
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff,
                                         0xff};

    if (l->addr.ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&l->addr;

        return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
    }
    if (l->addr.ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&l->addr;
        const uint8_t *a = sin6->sin6_addr.s6_addr;

        if (memcmp(a, v4mapped, sizeof(v4mapped)) == 0)
            return a[12] == 127;
        return IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr);
    }
    return 0;
}

static int admin_key(struct parse *ps, const char *name, const char *val)
{
    struct config *c = ps->c;

    if (strcmp(name, "listen") == 0) {
        if (config_parse_addr(val, &c->admin_listen) < 0)
            return fail(ps, ps->line,
                        "listen: '%s' is not ADDRESS:PORT (IPv6 in "
                        "brackets)",
                        val);
        c->admin_on = 1;
        ps->admin_line = ps->line;
        return 1;
    }
    if (strcmp(name, "allow_remote") == 0) {
        int b = config_parse_bool(val);

        if (b < 0)
            return fail(ps, ps->line, "allow_remote: '%s' is not yes or no",
                        val);
        c->admin_allow_remote = b;
        return 1;
    }
    if (strcmp(name, "max_connections") == 0) {
        static const struct num_key k = {"max_connections", 0, 1, 1024,
                                         K_COUNT};

        return set_num(ps, &k, val, &c->admin_max_connections);
    }
    if (strcmp(name, "timeout") == 0) {
        static const struct num_key k = {"timeout", 0, 1000, 600000,
                                         K_DURATION};

        return set_num(ps, &k, val, &c->admin_timeout_ms);
    }
    return fail(ps, ps->line, "unknown key '%s' in [admin]", name);
}

static int route_key(struct parse *ps, const char *name, const char *val)
{
    struct config_route *r = ps->route;
    char err[256];

    /* NUL-separated, so "a=bc" and "ab=c" differ */
    r->digest = fnv1a(r->digest, name, strlen(name) + 1);
    r->digest = fnv1a(r->digest, val, strlen(val) + 1);

    if (strcmp(name, "handler") == 0) {
        if (r->handler)
            return fail(ps, ps->line, "handler: set twice in [route %s]",
                        r->path);
        r->handler = handler_find(val);
        if (!r->handler)
            return fail(ps, ps->line, "handler: unknown handler '%s'", val);
        return 1;
    }
    if (strcmp(name, "allowed_origins") == 0)
        return each_item(ps, name, val, add_origin, r);
    if (strcmp(name, "protocols") == 0) {
        for (size_t i = 0; i < r->nprotocols; i++)
            free(r->protocols[i]);
        r->nprotocols = 0;
        return each_item(ps, name, val, add_protocol, r);
    }
    if (strcmp(name, "protocol_required") == 0) {
        int b = config_parse_bool(val);

        if (b < 0)
            return fail(ps, ps->line, "protocol_required: '%s' is not yes or no",
                        val);
        r->protocol_required = b;
        return 1;
    }
    if (strcmp(name, "max_session_duration") == 0) {
        static const struct num_key k = {"max_session_duration", 0, 0,
                                         365ULL * 24 * 3600 * 1000, K_DURATION};

        return set_num(ps, &k, val, &r->max_session_duration_ms);
    }
    if (strcmp(name, "expire_code") == 0) {
        static const struct num_key k = {"expire_code", 0, 0, UINT32_MAX,
                                         K_COUNT};
        uint64_t v;

        if (!set_num(ps, &k, val, &v))
            return 0;
        r->expire_code = (uint32_t)v;
        return 1;
    }
    if (strcmp(name, "expire_reason") == 0) {
        if (strlen(val) > 1024)
            return fail(ps, ps->line,
                        "expire_reason: longer than 1024 bytes");
        free(r->expire_reason);
        if (!(r->expire_reason = strdup(val)))
            return fail(ps, ps->line, "out of memory");
        return 1;
    }
    if (r->handler && r->handler->configure) {
        err[0] = '\0';
        if (r->handler->configure(r, name, val, err, sizeof(err)) < 0)
            return fail(ps, ps->line, "%s", err);
        return 1;
    }
    return fail(ps, ps->line, "unknown key '%s' in [route %s]%s", name,
                r->path, r->handler ? "" : " (or 'handler' must come first)");
}

static int on_key(void *user, const char *section, const char *name,
                  const char *value)
{
    struct parse *ps = user;

    (void)section; /* the reader tracks sections, with their lines */
    if (ps->err_set)
        return 0;
    if (ps->in_server)
        return server_key(ps, name, value);
    if (ps->in_admin)
        return admin_key(ps, name, value);
    if (ps->in_cluster)
        return cluster_key(ps, name, value);
    if (ps->route)
        return route_key(ps, name, value);
    return fail(ps, ps->line, "key '%s' outside of any section", name);
}

/* ---- sections, seen by the line reader ---- */

static int route_section(struct parse *ps, const char *path)
{
    struct config *c = ps->c;
    struct config_route *r, **tail;

    if (path[0] != '/' || strpbrk(path, " \t?#"))
        return fail(ps, ps->line,
                    "route path '%s' must start with '/' and contain no "
                    "spaces, '?' or '#'",
                    path);
    for (tail = &c->routes; *tail; tail = &(*tail)->next)
        if (strcmp((*tail)->path, path) == 0)
            return fail(ps, ps->line,
                        "route %s is already defined on line %d", path,
                        (*tail)->line);
    r = calloc(1, sizeof(*r));
    if (!r || !(r->path = strdup(path)) ||
        !(r->expire_reason = strdup("session expired"))) {
        if (r)
            free(r->path);
        free(r);
        return fail(ps, ps->line, "out of memory");
    }
    r->line = ps->line;
    r->digest = 1469598103934665603ULL;
    r->refs = 1;
    *tail = r;
    ps->route = r;
    return 1;
}

static void section(struct parse *ps, char *line)
{
    char *end = strchr(line, ']'), *name;

    ps->in_server = 0;
    ps->in_admin = 0;
    ps->in_cluster = 0;
    ps->route = NULL;
    if (!end) {
        fail(ps, ps->line, "section header without ']'");
        return;
    }
    *end = '\0';
    name = trim(line + 1);
    if (strcmp(name, "server") == 0)
        ps->in_server = 1;
    else if (strcmp(name, "admin") == 0)
        ps->in_admin = 1;
    else if (strcmp(name, "cluster") == 0) {
        if (ps->cluster_line)
            fail(ps, ps->line, "[cluster] is already defined on line %d",
                 ps->cluster_line);
        ps->in_cluster = 1;
        ps->cluster_line = ps->line;
    }
    else if (strncmp(name, "route", 5) == 0 && (name[5] == ' ' || name[5] == '\t'))
        route_section(ps, trim(name + 6));
    else
        fail(ps, ps->line,
             "unknown section [%s] (expected [server], [admin], [cluster] "
             "or [route /path])",
             name);
}

static char *reader(char *str, int num, void *stream)
{
    struct parse *ps = stream;
    ssize_t n = getline(&ps->linebuf, &ps->linecap, ps->f);
    char *p;

    if (n < 0)
        return NULL;
    ps->line++;
    if (n > num - 1) { /* inih's line buffer is fixed (INI_MAX_LINE) */
        fail(ps, ps->line,
             "line longer than %d bytes (a long list can go on several "
             "lines of the same key)",
             num - 2);
        str[0] = '\0';
        return str;
    }
    p = ps->linebuf;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '[') {
        char copy[LINE_MAX_LEN];

        snprintf(copy, sizeof(copy), "%s", p);
        copy[strcspn(copy, "\r\n")] = '\0';
        section(ps, copy);
    }
    memcpy(str, ps->linebuf, (size_t)n + 1);
    return str;
}

/* ---- load ---- */

void config_wt_initial(const struct config *c, uint64_t *data, uint64_t *bidi,
                       uint64_t *uni)
{
    uint64_t half = c->max_streams_per_session / 2;

    *data = c->wt_initial_max_data;
    if (*data == 0) {
        *data = 4 * c->max_buffer_bytes;
        if (*data > c->max_connection_buffer_bytes)
            *data = c->max_connection_buffer_bytes;
    }
    *bidi = c->wt_initial_max_streams_bidi
                ? c->wt_initial_max_streams_bidi
                : (c->max_streams_per_session - half ? c->max_streams_per_session - half : 1);
    *uni = c->wt_initial_max_streams_uni ? c->wt_initial_max_streams_uni
                                         : (half ? half : 1);
}

void config_defaults(struct config *c)
{
    memset(c, 0, sizeof(*c));
    config_parse_addr("0.0.0.0:4433", &c->listen[0]);
    config_parse_addr("[::]:4433", &c->listen[1]);
    c->nlisten = 2;
    c->log_level = LOG_LVL_INFO;
    c->log_format = LOG_FMT_TEXT;
    c->max_connections = 1000;
    c->max_sessions_per_connection = 16;
    c->max_streams_per_session = 256;
    c->max_buffer_bytes = 1024 * 1024;
    c->max_connection_buffer_bytes = 16 * 1024 * 1024;
    c->max_datagram_queue = 64;
    c->max_pending_streams = 16;
    c->pending_timeout_ms = 5000;
    c->socket_buffer_bytes = 4 * 1024 * 1024;
    c->idle_timeout_ms = 30000;
    c->handshake_timeout_ms = 10000;
    c->shutdown_timeout_ms = 5000;
    c->workers = 1;
    c->worker_timeout_ms = 10000;
    c->retry = CONFIG_RETRY_AUTO;
    c->retry_handshakes = 1000;
    c->handshake_queue = 1024;
    c->handshake_threads = 1;
    c->handshake_nice = 10;
    c->loop_slice_us = 100;
    /* one address: a twentieth of the slots, a handful of handshakes at
     * once, ten new connections a second after a burst of forty */
    c->max_connections_per_address = 50;
    c->max_handshakes_per_address = 10;
    c->max_sessions_per_address = 200;
    c->connection_rate_per_address = 10;
    c->connection_burst_per_address = 40;
    c->admin_max_connections = 16;
    c->admin_timeout_ms = 10000;
    c->cluster.max_pending_bytes = 8 * 1024 * 1024;
    c->cluster.max_remote_streams = 1024;
    c->cluster.max_remote_members = 100000;
    c->cluster.heartbeat_ms = 1000;
    c->cluster.node_timeout_ms = 5000;
}

int config_load(struct config *c, const char *path, char *err, size_t errlen)
{
    struct parse ps = {.c = c, .file = path, .err = err, .errlen = errlen};
    const char *slash;
    int rv;

    config_defaults(c);
    err[0] = '\0';
    if (!(c->file = strdup(path)))
        return fail(&ps, 0, "out of memory"), -1;
    slash = strrchr(path, '/');
    ps.dir = slash ? strndup(path, (size_t)(slash - path == 0 ? 1 : slash - path))
                   : strdup(".");
    ps.f = fopen(path, "r");
    if (!ps.f) {
        fail(&ps, 0, "%s", strerror(errno));
        goto fail;
    }
    rv = ini_parse_stream(reader, &ps, on_key, &ps);
    if (rv > 0 && !ps.err_set)
        fail(&ps, ps.line > 0 ? rv : 0,
             "syntax error (expected [section] or key = value)");
    if (rv < 0 && !ps.err_set)
        fail(&ps, 0, "cannot parse (out of memory)");
    if (ps.err_set)
        goto fail;
    cluster_check(&ps);
    if (ps.err_set)
        goto fail;
    if (!c->cert)
        fail(&ps, 0, "[server] needs 'cert' (a PEM certificate file)");
    else if (!c->key)
        fail(&ps, 0, "[server] needs 'key' (a PEM private key file)");
    for (struct config_route *r = c->routes; r && !ps.err_set; r = r->next) {
        char herr[CONFIG_ERR_LEN] = "";

        if (!r->handler)
            fail(&ps, r->line, "[route %s] has no 'handler'", r->path);
        else if (r->protocol_required && r->nprotocols == 0)
            fail(&ps, r->line,
                 "[route %s] protocol_required = yes needs 'protocols'",
                 r->path);
        else if (r->handler->route_check &&
                 r->handler->route_check(r, herr, sizeof(herr)) < 0)
            fail(&ps, r->line, "[route %s] %s", r->path, herr);
    }
    /* A room lives in one process: with several workers its members
     * would be split among them unless a cluster ([cluster] redis) joins
     * them. */
    for (struct config_route *r = c->routes;
         r && !ps.err_set && c->workers > 1 && !c->cluster.redis;
         r = r->next)
        if (r->handler && strcmp(r->handler->name, "broadcast") == 0)
            fail(&ps, r->line,
                 "[route %s] broadcast with workers = %llu (line %d) needs "
                 "a [cluster] section: a room would not span the workers",
                 r->path, (unsigned long long)c->workers, ps.workers_line);
    /* Plain HTTP with no authentication: reachable from elsewhere only
     * when the operator says so in as many words. */
    if (!ps.err_set && c->admin_on && !c->admin_allow_remote &&
        !config_addr_is_loopback(&c->admin_listen))
        fail(&ps, ps.admin_line,
             "[admin] listen: %s is not a loopback address; the admin "
             "endpoint has no authentication (set allow_remote = yes to "
             "expose it anyway)",
             c->admin_listen.text);
    if (ps.err_set)
        goto fail;
    fclose(ps.f);
    free(ps.dir);
    free(ps.linebuf);
    return 0;

fail:
    if (ps.f)
        fclose(ps.f);
    free(ps.dir);
    free(ps.linebuf);
    config_free(c);
    return -1;
}

void config_free(struct config *c)
{
    struct config_route *r = c->routes, *next;

    for (; r; r = next) {
        next = r->next;
        config_route_unref(r);
    }
    free(c->file);
    free(c->cert);
    free(c->key);
    config_cluster_free(&c->cluster);
    memset(c, 0, sizeof(*c));
}

static void route_free(struct config_route *r)
{
    if (r->handler && r->handler->route_free)
        r->handler->route_free(r);
    for (size_t i = 0; i < r->norigins; i++)
        free(r->origins[i]);
    for (size_t i = 0; i < r->nprotocols; i++)
        free(r->protocols[i]);
    free(r->expire_reason);
    free(r->path);
    free(r);
}

const struct config_route *config_route_ref(const struct config_route *r)
{
    ((struct config_route *)r)->refs++;
    return r;
}

void config_route_unref(const struct config_route *r)
{
    struct config_route *w = (struct config_route *)r;

    /* unlinked from its config by then: `next` is not followed */
    if (w && --w->refs == 0)
        route_free(w);
}

struct config *config_new(const char *path, char *err, size_t errlen)
{
    struct config *c = malloc(sizeof(*c));

    if (!c) {
        snprintf(err, errlen, "%s:0: out of memory", path);
        return NULL;
    }
    if (config_load(c, path, err, errlen) < 0) {
        free(c);
        return NULL;
    }
    c->refs = 1;
    return c;
}

struct config *config_ref(struct config *c)
{
    if (c->refs)
        c->refs++;
    return c;
}

void config_unref(struct config *c)
{
    if (!c || !c->refs || --c->refs)
        return;
    config_free(c);
    free(c);
}

void config_inherit(struct config *next, const struct config *old)
{
    for (struct config_route *r = next->routes; r; r = r->next) {
        struct config_route *o = old->routes;

        while (o && strcmp(o->path, r->path) != 0)
            o = o->next;
        if (o && o->handler == r->handler && r->handler->route_inherit)
            r->handler->route_inherit(r, o);
    }
}

int config_listen_same(const struct config_listen *a,
                       const struct config_listen *b)
{
    return a->addrlen == b->addrlen &&
           memcmp(&a->addr, &b->addr, a->addrlen) == 0;
}

/* Appends to out (bounded; a cut ends in "..."). */
static void add(char *out, size_t outlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void add(char *out, size_t outlen, const char *fmt, ...)
{
    size_t n = strlen(out);
    va_list ap;
    int w;

    if (n + 1 >= outlen)
        return;
    va_start(ap, fmt);
    w = vsnprintf(out + n, outlen - n, fmt, ap);
    va_end(ap);
    if (w >= 0 && (size_t)w >= outlen - n && outlen >= 4)
        memcpy(out + outlen - 4, "...", 4);
}

static const struct config_route *route_named(const struct config *c,
                                              const char *path)
{
    for (const struct config_route *r = c->routes; r; r = r->next)
        if (strcmp(r->path, path) == 0)
            return r;
    return NULL;
}

static int listen_has(const struct config *c, const struct config_listen *l)
{
    for (size_t i = 0; i < c->nlisten; i++)
        if (config_listen_same(&c->listen[i], l))
            return 1;
    return 0;
}

/* Before an item of `group`: "; group " for its first, `sep` after. */
static void item(char *out, size_t outlen, int *n, const char *group,
                 const char *sep)
{
    if ((*n)++)
        add(out, outlen, "%s", sep);
    else
        add(out, outlen, "%s%s ", out[0] ? "; " : "", group);
}

void config_describe_changes(const struct config *old,
                             const struct config *next, char *out,
                             size_t outlen)
{
    static const char *const modes[] = {"off", "on", "auto"};
    static const char *const levels[] = {"error", "warn", "info", "debug"};
    int n = 0;

    if (!outlen)
        return;
    out[0] = '\0';
    for (const struct config_route *r = next->routes; r; r = r->next) {
        const struct config_route *o = route_named(old, r->path);

        if (!o || o->digest != r->digest) {
            item(out, outlen, &n, "routes", " ");
            add(out, outlen, "%c%s", o ? '~' : '+', r->path);
        }
    }
    for (const struct config_route *o = old->routes; o; o = o->next)
        if (!route_named(next, o->path)) {
            item(out, outlen, &n, "routes", " ");
            add(out, outlen, "-%s", o->path);
        }
    n = 0;
    for (size_t i = 0; i < sizeof(server_nums) / sizeof(server_nums[0]); i++) {
        const struct num_key *k = &server_nums[i];
        uint64_t a = *(const uint64_t *)((const char *)old + k->off);
        uint64_t b = *(const uint64_t *)((const char *)next + k->off);

        if (a != b) {
            item(out, outlen, &n, "limits", ", ");
            add(out, outlen, "%s %llu->%llu%s", k->name, (unsigned long long)a,
                (unsigned long long)b, k->kind == K_DURATION ? "ms" : "");
        }
    }
    if (old->retry != next->retry) {
        item(out, outlen, &n, "limits", ", ");
        add(out, outlen, "retry %s->%s", modes[old->retry], modes[next->retry]);
    }
    if (old->log_level != next->log_level) {
        item(out, outlen, &n, "limits", ", ");
        add(out, outlen, "log_level %s->%s", levels[old->log_level & 3],
            levels[next->log_level & 3]);
    }
    n = 0;
    for (size_t i = 0; i < next->nlisten; i++)
        if (!listen_has(old, &next->listen[i])) {
            item(out, outlen, &n, "listen", " ");
            add(out, outlen, "+%s", next->listen[i].text);
        }
    for (size_t i = 0; i < old->nlisten; i++)
        if (!listen_has(next, &old->listen[i])) {
            item(out, outlen, &n, "listen", " ");
            add(out, outlen, "-%s", old->listen[i].text);
        }
    if (!out[0])
        snprintf(out, outlen, "no change to routes, limits or listen");
}

const struct config_route *config_find_route(const struct config *c,
                                             const char *path, size_t len)
{
    const char *q = memchr(path, '?', len);
    size_t n = q ? (size_t)(q - path) : len;

    for (const struct config_route *r = c->routes; r; r = r->next)
        if (strlen(r->path) == n && memcmp(r->path, path, n) == 0)
            return r;
    return NULL;
}
