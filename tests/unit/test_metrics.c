/* Unit tests of src/metrics.c and admin_reply() (src/admin.c): the
 * Prometheus body and what each request gets, without sockets. */
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "config.h"
#include "metrics.h"
#include "t.h"

/* The body contains this exact line. */
static int has_line(const char *body, const char *line)
{
    size_t n = strlen(line);

    for (const char *p = body; (p = strstr(p, line)); p += n)
        if ((p == body || p[-1] == '\n') && p[n] == '\n')
            return 1;
    return 0;
}

T_TEST(render_counters)
{
    struct metrics_gauges g = {.version = "1.2.3", .connections_open = 3,
                               .handshakes_queued = 2, .resident_bytes = 4096,
                               .cert_not_after = 1800000000};
    struct metrics_route *echo;
    size_t len;
    char *b;

    metrics_reset();
    metrics.connections_total = 7;
    metrics.connections_refused[METRICS_REFUSED_MAX_CONNECTIONS] = 2;
    metrics.handshakes_failed[METRICS_HS_TLS] = 1;
    metrics.connections_refused[METRICS_REFUSED_HANDSHAKE_QUEUE] = 9;
    metrics.handshakes_started = 3;
    metrics.handshake_start_ns = 1500000; /* 1.5 ms */
    metrics.datagrams_dropped = 5;
    echo = metrics_route("/echo");
    T_CHECK(echo == metrics_route("/echo")); /* one entry per path */
    echo->sessions_total = 4;
    echo->sessions_open = 1;
    metrics_session_rejected(echo, 429);
    metrics_session_rejected(echo, 429);
    metrics_session_rejected(metrics_route(NULL), 404);
    b = metrics_render(&g, &len);
    T_CHECK(b != NULL);
    T_EQ(strlen(b), len);
    T_CHECK(has_line(b, "wtrelayd_build_info{version=\"1.2.3\"} 1"));
    T_CHECK(has_line(b, "# TYPE wtrelayd_connections_total counter"));
    T_CHECK(has_line(b, "wtrelayd_connections_total 7"));
    T_CHECK(has_line(b, "wtrelayd_connections_open 3"));
    T_CHECK(has_line(
        b, "wtrelayd_connections_refused_total{reason=\"max_connections\"} 2"));
    T_CHECK(has_line(b, "wtrelayd_handshakes_failed_total{reason=\"tls\"} 1"));
    T_CHECK(has_line(
        b, "wtrelayd_connections_refused_total{reason=\"handshake_queue\"} 9"));
    T_CHECK(has_line(b, "wtrelayd_handshakes_queued 2"));
    T_CHECK(has_line(b, "wtrelayd_handshakes_started_total 3"));
    T_CHECK(has_line(b, "wtrelayd_handshake_start_seconds_total 0.001500"));
    T_CHECK(has_line(b, "wtrelayd_datagrams_dropped_total 5"));
    T_CHECK(has_line(b, "wtrelayd_sessions_total{route=\"/echo\"} 4"));
    T_CHECK(has_line(b, "wtrelayd_sessions_open{route=\"/echo\"} 1"));
    T_CHECK(has_line(
        b, "wtrelayd_sessions_rejected_total{route=\"/echo\",status=\"429\"} 2"));
    T_CHECK(has_line(
        b, "wtrelayd_sessions_rejected_total{route=\"(none)\",status=\"404\"} 1"));
    T_CHECK(has_line(b, "wtrelayd_resident_memory_bytes 4096"));
    T_CHECK(has_line(b, "wtrelayd_certificate_expiry_seconds 1800000000"));
    /* an echo route is no broadcast or forward route */
    T_CHECK(!strstr(b, "wtrelayd_broadcast_rooms{"));
    T_CHECK(!strstr(b, "wtrelayd_forward_backend_errors_total{"));
    free(b);
    metrics_reset();
}

T_TEST(render_escapes_labels)
{
    struct metrics_gauges g = {.version = "v\"\\\n"};
    struct metrics_route *r;
    size_t len;
    char *b;

    metrics_reset();
    r = metrics_route("/a\"b\\c\nd");
    r->broadcast = 1;
    r->members = 2;
    b = metrics_render(&g, &len);
    T_CHECK(b != NULL);
    T_CHECK(has_line(b, "wtrelayd_build_info{version=\"v\\\"\\\\\\n\"} 1"));
    T_CHECK(has_line(b, "wtrelayd_broadcast_members{route=\"/a\\\"b\\\\c\\nd\"} 2"));
    free(b);
    metrics_reset();
}

T_TEST(route_table_bounded)
{
    char path[32];
    struct metrics_route *last = NULL;

    metrics_reset();
    for (int i = 0; i < METRICS_MAX_ROUTES + 10; i++) {
        snprintf(path, sizeof(path), "/r%d", i);
        last = metrics_route(path);
        T_CHECK(last != NULL);
    }
    T_STREQ(last->path, "(other)");
    T_STREQ(metrics_route("/r0")->path, "/r0");
    /* more statuses than slots: the rest are "other" */
    for (int s = 400; s < 400 + METRICS_MAX_STATUSES + 3; s++)
        metrics_session_rejected(last, s);
    T_EQ(last->rejected_other, 3);
    metrics_reset();
}

static void view_init(struct admin_view *v, struct config *c)
{
    config_defaults(c);
    config_parse_addr("127.0.0.1:8080", &c->admin_listen);
    c->admin_on = 1;
    memset(v, 0, sizeof(*v));
    v->cfg = c;
    v->listen = &c->admin_listen;
    v->version = "0.0.0";
    v->cert_sha256 = "ab";
}

T_TEST(admin_replies)
{
    struct config c;
    struct admin_view v;
    struct admin_reply r;

    view_init(&v, &c);
    T_EQ(admin_reply(&v, "POST", "/metrics", "127.0.0.1:8080", &r), 0);
    T_EQ(r.status, 405);
    T_STREQ(r.allow, "GET, HEAD");
    admin_reply_free(&r);
    T_EQ(admin_reply(&v, "GET", "/nope", "localhost:8080", &r), 0);
    T_EQ(r.status, 404);
    admin_reply_free(&r);
    T_EQ(admin_reply(&v, "HEAD", "/healthz", "[::1]:8080", &r), 0);
    T_EQ(r.status, 200);
    admin_reply_free(&r);
    v.draining = 1;
    T_EQ(admin_reply(&v, "GET", "/healthz", "127.0.0.1", &r), 0);
    T_EQ(r.status, 503);
    admin_reply_free(&r);
    /* DNS rebinding: a name that is not ours, or none */
    T_EQ(admin_reply(&v, "GET", "/metrics", "evil.example:8080", &r), 0);
    T_EQ(r.status, 403);
    admin_reply_free(&r);
    T_EQ(admin_reply(&v, "GET", "/metrics", NULL, &r), 0);
    T_EQ(r.status, 403);
    admin_reply_free(&r);
    T_EQ(admin_reply(&v, "GET", "/metrics", "127.0.0.1.evil.example", &r), 0);
    T_EQ(r.status, 403);
    admin_reply_free(&r);
    T_EQ(admin_reply(&v, "GET", "/", "localhost", &r), 0);
    T_EQ(r.status, 200);
    T_CHECK(r.fixed && r.len > 100 && memmem(r.body, r.len, "WebTransport", 12));
    admin_reply_free(&r);
    config_free(&c);
}

T_TEST(admin_config_json)
{
    struct config c;
    struct admin_view v;
    struct admin_reply r;

    view_init(&v, &c);
    v.cert_hashable = 0; /* not eligible: no hash, the trust store decides */
    T_EQ(admin_reply(&v, "GET", "/config.json", "127.0.0.1", &r), 0);
    T_EQ(r.status, 200);
    T_CHECK(strstr(r.body, "\"hash\":null"));
    T_CHECK(strstr(r.body, "\"port\":4433"));
    T_CHECK(strstr(r.body, "\"echo\":null,\"chat\":null"));
    admin_reply_free(&r);
    v.cert_hashable = 1;
    T_EQ(admin_reply(&v, "GET", "/config.json", "127.0.0.1", &r), 0);
    T_CHECK(strstr(r.body, "\"hash\":\"ab\""));
    admin_reply_free(&r);
    config_free(&c);
}

int main(void)
{
    T_RUN(render_counters);
    T_RUN(render_escapes_labels);
    T_RUN(route_table_bounded);
    T_RUN(admin_replies);
    T_RUN(admin_config_json);
    T_DONE();
}
