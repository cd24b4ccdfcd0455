/* metrics: see metrics.h. */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

struct metrics metrics;

static struct metrics_route routes[METRICS_MAX_ROUTES];
static size_t nroutes;
static char overflow_path[] = "(other)", none_path[] = "(none)";
static struct metrics_route overflow = {.path = overflow_path};
static struct metrics_route none = {.path = none_path};

struct metrics_route *metrics_route(const char *path)
{
    if (!path)
        return &none;
    for (size_t i = 0; i < nroutes; i++)
        if (strcmp(routes[i].path, path) == 0)
            return &routes[i];
    if (nroutes == METRICS_MAX_ROUTES)
        return &overflow;
    if (!(routes[nroutes].path = strdup(path)))
        return &overflow;
    return &routes[nroutes++];
}

void metrics_add_routes(const struct config *c)
{
    for (const struct config_route *r = c->routes; r; r = r->next)
        metrics_route(r->path);
}

void metrics_session_rejected(struct metrics_route *r, int status)
{
    for (size_t i = 0; i < METRICS_MAX_STATUSES; i++) {
        if (r->rejected[i].status == status) {
            r->rejected[i].n++;
            return;
        }
        if (r->rejected[i].status == 0) {
            r->rejected[i].status = status;
            r->rejected[i].n = 1;
            return;
        }
    }
    r->rejected_other++;
}

void metrics_reset(void)
{
    for (size_t i = 0; i < nroutes; i++)
        free(routes[i].path);
    memset(routes, 0, sizeof(routes));
    nroutes = 0;
    memset(&metrics, 0, sizeof(metrics));
    overflow = (struct metrics_route){.path = overflow_path};
    none = (struct metrics_route){.path = none_path};
}

uint64_t metrics_rss(void)
{
    unsigned long long size, resident;
    FILE *f = fopen("/proc/self/statm", "r");
    long page = sysconf(_SC_PAGESIZE);
    int n;

    if (!f)
        return 0;
    n = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    if (n != 2 || page <= 0)
        return 0;
    return (uint64_t)resident * (uint64_t)page;
}

/* ---- rendering ---- */

/* The body grows as it is written; past this something is wrong (the
 * route table bounds the output well below it). */
#define OUT_MAX (8u << 20)

struct out {
    char *p;
    size_t len, cap;
    int failed;
};

static void put(struct out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (o->failed)
        return;
    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->failed = 1;
            return;
        }
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = o->cap * 2;
        char *p;

        while (cap - o->len <= (size_t)n)
            cap *= 2;
        if (cap > OUT_MAX || !(p = realloc(o->p, cap))) {
            o->failed = 1;
            return;
        }
        o->p = p;
        o->cap = cap;
    }
}

/* A label value, escaped as the exposition format says: \\, \" and \n. */
static void put_label(struct out *o, const char *s)
{
    char buf[512];
    size_t k = 0;

    for (; *s && k < sizeof(buf) - 3; s++) {
        if (*s == '\\' || *s == '"') {
            buf[k++] = '\\';
            buf[k++] = *s;
        } else if (*s == '\n') {
            buf[k++] = '\\';
            buf[k++] = 'n';
        } else {
            buf[k++] = *s;
        }
    }
    buf[k] = '\0';
    put(o, "%s", buf);
}

static void head(struct out *o, const char *name, const char *type,
                 const char *help)
{
    put(o, "# HELP wtrelayd_%s %s\n# TYPE wtrelayd_%s %s\n", name, help, name,
        type);
}

static void one(struct out *o, const char *name, const char *type,
                const char *help, uint64_t v)
{
    head(o, name, type, help);
    put(o, "wtrelayd_%s %llu\n", name, (unsigned long long)v);
}

/* The routes a per-route family lists: every entry, the "(none)" and
 * overflow ones only once they counted something. */
static size_t route_list(const struct metrics_route **list)
{
    size_t n = 0;

    for (size_t i = 0; i < nroutes; i++)
        list[n++] = &routes[i];
    list[n++] = &none;
    list[n++] = &overflow;
    return n;
}

static int route_used(const struct metrics_route *r)
{
    if (r != &none && r != &overflow)
        return 1;
    return r->sessions_total || r->rejected[0].n || r->rejected_other ||
           r->backend_total || r->rooms || r->members;
}

/* Which routes a family lists: all, or those of one handler. */
enum rkind { RK_ALL, RK_BROADCAST, RK_FORWARD };

static int route_listed(const struct metrics_route *r, enum rkind k)
{
    if (!route_used(r))
        return 0;
    return k == RK_ALL || (k == RK_BROADCAST && r->broadcast) ||
           (k == RK_FORWARD && r->forward);
}

enum rfield { RF_SESS_OPEN, RF_SESS_TOTAL, RF_ROOMS, RF_MEMBERS, RF_BE_OPEN,
              RF_BE_TOTAL };

static uint64_t rfield(const struct metrics_route *r, enum rfield f)
{
    switch (f) {
    case RF_SESS_OPEN: return r->sessions_open;
    case RF_SESS_TOTAL: return r->sessions_total;
    case RF_ROOMS: return r->rooms;
    case RF_MEMBERS: return r->members;
    case RF_BE_OPEN: return r->backend_open;
    case RF_BE_TOTAL: return r->backend_total;
    }
    return 0;
}

static void per_route(struct out *o, const struct metrics_route **list,
                      size_t n, const char *name, const char *type,
                      const char *help, enum rfield f, enum rkind k)
{
    head(o, name, type, help);
    for (size_t i = 0; i < n; i++) {
        if (!route_listed(list[i], k))
            continue;
        put(o, "wtrelayd_%s{route=\"", name);
        put_label(o, list[i]->path);
        put(o, "\"} %llu\n", (unsigned long long)rfield(list[i], f));
    }
}

char *metrics_render(const struct metrics_gauges *g, size_t *len)
{
    static const char *const refused[] = {
        "max_connections",         "shutting_down",
        "invalid_token",           "max_connections_per_address",
        "max_handshakes_per_address", "connection_rate_per_address",
        "address_table_full",      "handshake_queue"};
    static const char *const hs[] = {"timeout", "tls", "peer_closed",
                                     "protocol"};
    static const char *const be[] = {"refused", "timeout", "reset", "limit",
                                     "resource"};
    const struct metrics_route *list[METRICS_MAX_ROUTES + 2];
    size_t n = route_list(list);
    struct out o = {.cap = 8192};

    if (!(o.p = malloc(o.cap)))
        return NULL;
    o.p[0] = '\0';

    head(&o, "build_info", "gauge", "Always 1; the version is a label.");
    put(&o, "wtrelayd_build_info{version=\"");
    put_label(&o, g->version ? g->version : "");
    put(&o, "\"} 1\n");
    one(&o, "draining", "gauge",
        "1 while shutting down (GOAWAY sent, sessions draining).",
        (uint64_t)(g->draining != 0));

    one(&o, "connections_open", "gauge", "QUIC connections now.",
        g->connections_open);
    one(&o, "connections_total", "counter", "QUIC connections accepted.",
        metrics.connections_total);
    head(&o, "connections_refused_total", "counter",
         "New connections refused, by reason.");
    for (size_t i = 0; i < METRICS_REFUSED_N; i++)
        put(&o, "wtrelayd_connections_refused_total{reason=\"%s\"} %llu\n",
            refused[i], (unsigned long long)metrics.connections_refused[i]);

    one(&o, "handshakes_in_progress", "gauge",
        "Connections still in their handshake.", g->handshakes_in_progress);
    one(&o, "handshakes_queued", "gauge",
        "New connections waiting for their handshake to start.",
        g->handshakes_queued);
    one(&o, "handshakes_started_total", "counter",
        "Handshakes started from the queue (first flights made).",
        metrics.handshakes_started);
    head(&o, "handshake_start_seconds_total", "counter",
         "Time the loop spent starting those handshakes, during which it "
         "serves nothing else (with handshake_threads: making the first "
         "flight is the threads', linking the connection the loop's).");
    put(&o, "wtrelayd_handshake_start_seconds_total %.6f\n",
        (double)metrics.handshake_start_ns / 1e9);
    head(&o, "handshake_thread_seconds_total", "counter",
         "Time the handshake threads spent making first flights (key "
         "exchange, signature) off the loop.");
    put(&o, "wtrelayd_handshake_thread_seconds_total %.6f\n",
        (double)metrics.handshake_thread_ns / 1e9);
    one(&o, "handshakes_completed_total", "counter",
        "QUIC/TLS handshakes completed.", metrics.handshakes_completed);
    one(&o, "handshakes_resumed_total", "counter",
        "Handshakes completed that resumed a TLS session (a ticket).",
        metrics.handshakes_resumed);
    head(&o, "handshakes_failed_total", "counter",
         "Connections that ended before their handshake completed, by "
         "reason.");
    for (size_t i = 0; i < METRICS_HS_N; i++)
        put(&o, "wtrelayd_handshakes_failed_total{reason=\"%s\"} %llu\n",
            hs[i], (unsigned long long)metrics.handshakes_failed[i]);
    one(&o, "addresses_tracked", "gauge",
        "Source addresses (IPv4, IPv6 /64) the per-address limits track.",
        g->addresses_tracked);
    one(&o, "sessions_refused_per_address_total", "counter",
        "Session requests answered 429 over max_sessions_per_address.",
        metrics.sessions_refused_address);
    one(&o, "retry_sent_total", "counter",
        "QUIC Retry packets sent (address validation).", metrics.retry_sent);
    one(&o, "stateless_resets_sent_total", "counter",
        "Stateless resets sent for unknown connections.",
        metrics.stateless_resets_sent);

    per_route(&o, list, n, "sessions_open", "gauge",
              "WebTransport sessions now, by route.", RF_SESS_OPEN, RK_ALL);
    per_route(&o, list, n, "sessions_total", "counter",
              "WebTransport sessions accepted, by route.", RF_SESS_TOTAL, RK_ALL);
    head(&o, "sessions_rejected_total", "counter",
         "Session requests answered with an error status, by route "
         "(\"(none)\": no route matched or none was looked up).");
    for (size_t i = 0; i < n; i++) {
        const struct metrics_route *r = list[i];

        for (size_t k = 0; k < METRICS_MAX_STATUSES && r->rejected[k].n; k++) {
            put(&o, "wtrelayd_sessions_rejected_total{route=\"");
            put_label(&o, r->path);
            put(&o, "\",status=\"%d\"} %llu\n", r->rejected[k].status,
                (unsigned long long)r->rejected[k].n);
        }
        if (r->rejected_other) {
            put(&o, "wtrelayd_sessions_rejected_total{route=\"");
            put_label(&o, r->path);
            put(&o, "\",status=\"other\"} %llu\n",
                (unsigned long long)r->rejected_other);
        }
    }

    one(&o, "streams_open", "gauge", "WebTransport streams now.",
        metrics.streams_open);
    one(&o, "streams_total", "counter",
        "WebTransport streams of sessions, both directions.",
        metrics.streams_total);
    one(&o, "stream_bytes_received_total", "counter",
        "WebTransport stream payload bytes received.",
        metrics.stream_bytes_received);
    one(&o, "stream_bytes_sent_total", "counter",
        "WebTransport stream payload bytes queued for sending.",
        metrics.stream_bytes_sent);
    one(&o, "datagrams_received_total", "counter",
        "WebTransport datagrams received for open sessions.",
        metrics.datagrams_received);
    one(&o, "datagrams_sent_total", "counter",
        "WebTransport datagrams queued for sending.", metrics.datagrams_sent);
    one(&o, "datagrams_dropped_total", "counter",
        "Datagrams dropped on the way out (full queue, too large for the "
        "path).",
        metrics.datagrams_dropped);
    one(&o, "udp_bytes_received_total", "counter",
        "UDP payload bytes received.", metrics.udp_bytes_received);
    one(&o, "udp_bytes_sent_total", "counter", "UDP payload bytes sent.",
        metrics.udp_bytes_sent);
    one(&o, "udp_datagrams_sent_total", "counter",
        "UDP datagrams of connections sent.", metrics.udp_datagrams_sent);
    one(&o, "udp_send_calls_total", "counter",
        "System calls that sent connections' UDP datagrams (sendmmsg).",
        metrics.udp_send_calls);
    one(&o, "buffered_bytes", "gauge",
        "Bytes held in stream send buffers (relayed blocks once) and "
        "datagram queues.",
        metrics.buffered_bytes);

    per_route(&o, list, n, "broadcast_rooms", "gauge",
              "Broadcast rooms now, by route.", RF_ROOMS, RK_BROADCAST);
    per_route(&o, list, n, "broadcast_members", "gauge",
              "Broadcast room members now, by route.", RF_MEMBERS, RK_BROADCAST);
    per_route(&o, list, n, "forward_backend_connections", "gauge",
              "Forward backend connections now, lingering ones included.",
              RF_BE_OPEN, RK_FORWARD);
    per_route(&o, list, n, "forward_backend_connections_total", "counter",
              "Forward backend connections made.", RF_BE_TOTAL, RK_FORWARD);
    head(&o, "forward_backend_errors_total", "counter",
         "Forward streams reset for a backend's sake, by reason.");
    for (size_t i = 0; i < n; i++) {
        if (!route_listed(list[i], RK_FORWARD))
            continue;
        for (size_t k = 0; k < METRICS_BE_N; k++) {
            put(&o, "wtrelayd_forward_backend_errors_total{route=\"");
            put_label(&o, list[i]->path);
            put(&o, "\",reason=\"%s\"} %llu\n", be[k],
                (unsigned long long)list[i]->backend_errors[k]);
        }
    }

    if (metrics.cluster_on) {
        static const char *const cl[] = {"redis_down", "max_pending_bytes",
                                         "stream_cut", "limit", "malformed"};

        one(&o, "cluster_up", "gauge",
            "1 while both Redis connections ([cluster]) are up.",
            metrics.cluster_up);
        one(&o, "cluster_connects_total", "counter",
            "Times the Redis connections came up.", metrics.cluster_connects);
        one(&o, "cluster_published_total", "counter",
            "Messages published to Redis.", metrics.cluster_published);
        one(&o, "cluster_published_bytes_total", "counter",
            "Bytes of messages published to Redis.",
            metrics.cluster_published_bytes);
        one(&o, "cluster_received_total", "counter",
            "Messages received from Redis (our own included).",
            metrics.cluster_received);
        head(&o, "cluster_dropped_total", "counter",
             "Cluster messages dropped, by reason.");
        for (size_t i = 0; i < METRICS_CL_N; i++)
            put(&o, "wtrelayd_cluster_dropped_total{reason=\"%s\"} %llu\n",
                cl[i], (unsigned long long)metrics.cluster_dropped[i]);
        one(&o, "cluster_pending_bytes", "gauge",
            "Bytes published that Redis has not answered yet.",
            metrics.cluster_pending_bytes);
        one(&o, "cluster_rooms", "gauge",
            "Rooms with local members, subscribed in Redis.",
            metrics.cluster_rooms);
        one(&o, "cluster_remote_members", "gauge",
            "Members on other daemons in the local rooms.",
            metrics.cluster_remote_members);
        one(&o, "cluster_daemons", "gauge",
            "Other daemons heard from in the local rooms.",
            metrics.cluster_daemons);
        one(&o, "cluster_remote_streams", "gauge",
            "Other daemons' streams being relayed here.",
            metrics.cluster_remote_streams);
        one(&o, "cluster_nodes_expired_total", "counter",
            "Daemons let go of in a room for want of heartbeats.",
            metrics.cluster_nodes_expired);
        one(&o, "cluster_streams_cut_total", "counter",
            "Streams cut between daemons (not published whole, or gone "
            "quiet).",
            metrics.cluster_streams_cut);
    }

    one(&o, "resident_memory_bytes", "gauge",
        "Resident set size (/proc/self/statm).", g->resident_bytes);
    head(&o, "certificate_expiry_seconds", "gauge",
         "The certificate's notAfter, in unix seconds.");
    put(&o, "wtrelayd_certificate_expiry_seconds %lld\n",
        (long long)g->cert_not_after);

    if (o.failed) {
        free(o.p);
        return NULL;
    }
    *len = o.len;
    return o.p;
}
