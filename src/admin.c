/* admin: see admin.h. */
#include "admin.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cluster.h"
#include "config.h"
#include "handler.h"
#include "log.h"
#include "metrics.h"
#include "quic.h"
#include "tls.h"

/* www/demo.html, made into a C array by the Makefile */
#include "demo_html.h"

/* ---- replies (no I/O) ---- */

static int set_text(struct admin_reply *r, int status, const char *text)
{
    r->status = status;
    r->type = "text/plain; charset=utf-8";
    r->len = strlen(text);
    if (!(r->body = strdup(text)))
        return -1;
    return 0;
}

/*
 * A page on a loopback address answers only requests that name a loopback
 * host: a web page elsewhere that gets its own name resolved to 127.0.0.1
 * (DNS rebinding) then cannot read the endpoint through the visitor's
 * browser.  Anything that is not an IP literal or "localhost" is refused.
 */
static int host_ok(const struct config_listen *listen, const char *host)
{
    char h[256];
    struct config_listen l;
    const char *end;
    size_t n;

    if (!config_addr_is_loopback(listen))
        return 1; /* allow_remote: the operator decides who may reach it */
    if (!host)
        return 0;
    if (host[0] == '[') {
        end = strchr(host, ']');
        if (!end)
            return 0;
        end++;
    } else {
        end = strchr(host, ':');
        if (!end)
            end = host + strlen(host);
    }
    n = (size_t)(end - host);
    if (n == 0 || n >= sizeof(h) - 8)
        return 0;
    memcpy(h, host, n);
    h[n] = '\0';
    if (strcasecmp(h, "localhost") == 0)
        return 1;
    strcat(h, ":1"); /* config_parse_addr wants a port */
    return config_parse_addr(h, &l) == 0 && config_addr_is_loopback(&l);
}

/* A JSON string (route paths come from the operator's file, but are
 * escaped all the same). */
static size_t json_str(char *out, size_t cap, const char *s)
{
    size_t k = 0;

    if (!s)
        return (size_t)snprintf(out, cap, "null");
    if (cap < 3)
        return cap;
    out[k++] = '"';
    for (; *s && k + 8 < cap; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\') {
            out[k++] = '\\';
            out[k++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            k += (size_t)snprintf(out + k, cap - k, "\\u%04x", c);
        } else {
            out[k++] = (char)c;
        }
    }
    out[k++] = '"';
    out[k] = '\0';
    return k;
}

static const struct config_route *first_route(const struct config *cfg,
                                              const struct wt_handler_ops *h)
{
    for (const struct config_route *r = cfg->routes; r; r = r->next)
        if (r->handler == h)
            return r;
    return NULL;
}

static uint16_t udp_port(const struct config *cfg)
{
    const struct sockaddr_storage *ss;

    if (cfg->nlisten == 0)
        return 0;
    ss = &cfg->listen[0].addr;
    if (ss->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)ss)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

/* What the demo page needs to connect: the daemon's UDP port, the
 * certificate's hash when browsers take it that way, the first echo and
 * broadcast routes. */
static int config_json(const struct admin_view *v, struct admin_reply *r)
{
    const struct config_route *echo = first_route(v->cfg, &handler_echo);
    const struct config_route *chat = first_route(v->cfg, &handler_broadcast);
    int tag = 0, announce = 0;
    char ver[128], hash[80], e[600], c[600];
    size_t cap = 2048;

    if (chat)
        handler_broadcast_flags(chat, &tag, &announce);
    json_str(ver, sizeof(ver), v->version);
    json_str(hash, sizeof(hash), v->cert_hashable ? v->cert_sha256 : NULL);
    json_str(e, sizeof(e), echo ? echo->path : NULL);
    json_str(c, sizeof(c), chat ? chat->path : NULL);
    if (!(r->body = malloc(cap)))
        return -1;
    r->len = (size_t)snprintf(
        r->body, cap,
        "{\"version\":%s,\"port\":%u,\"hash\":%s,\"certificate_expiry\":%lld,"
        "\"echo\":%s,\"chat\":%s,\"tag\":%s,\"announce\":%s,"
        "\"draining\":%s}\n",
        ver, udp_port(v->cfg), hash, (long long)v->cert_not_after, e, c,
        tag ? "true" : "false", announce ? "true" : "false",
        v->draining ? "true" : "false");
    r->status = 200;
    r->type = "application/json";
    return 0;
}

int admin_reply(const struct admin_view *v, const char *method,
                const char *url, const char *host, struct admin_reply *r)
{
    memset(r, 0, sizeof(*r));
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        r->allow = "GET, HEAD";
        return set_text(r, 405, "method not allowed\n");
    }
    if (!host_ok(v->listen, host))
        return set_text(r, 403, "host not allowed\n");
    if (strcmp(url, "/metrics") == 0 && v->metrics_begin) {
        r->status = ADMIN_LATER;
        return 0;
    }
    if (strcmp(url, "/metrics") == 0) {
        struct metrics_gauges g = {
            .version = v->version,
            .connections_open = v->connections_open,
            .handshakes_in_progress = v->handshakes_in_progress,
            .handshakes_queued = v->handshakes_queued,
            .addresses_tracked = v->addresses_tracked,
            .resident_bytes = metrics_rss(),
            .cert_not_after = v->cert_not_after,
            .draining = v->draining,
        };

        if (!(r->body = metrics_render(&g, &r->len)))
            return -1;
        r->status = 200;
        r->type = "text/plain; version=0.0.4; charset=utf-8";
        return 0;
    }
    if (strcmp(url, "/healthz") == 0) {
        /* Redis away is not unhealthy (local rooms go on): a detail line */
        if (v->draining)
            return set_text(r, 503, "draining\n");
        if (v->unhealthy)
            return set_text(r, 503, v->unhealthy);
        if (v->cluster == 1)
            return set_text(r, 200, "ok\ncluster: up\n");
        if (v->cluster == 2)
            return set_text(r, 200, "ok\ncluster: down (redis unreachable)\n");
        return set_text(r, 200, "ok\n");
    }
    if (strcmp(url, "/config.json") == 0)
        return config_json(v, r);
    if (strcmp(url, "/") == 0) {
        r->status = 200;
        r->type = "text/html; charset=utf-8";
        r->body = (char *)demo_html;
        r->len = sizeof(demo_html);
        r->fixed = 1;
        return 0;
    }
    return set_text(r, 404, "not found\n");
}

void admin_reply_free(struct admin_reply *r)
{
    if (!r->fixed)
        free(r->body);
    r->body = NULL;
}

/* ---- I/O: libmicrohttpd in our loop ---- */

static void view_of_ep(const struct quic_endpoint *ep, const char *version,
                       struct admin_view *v)
{
    memset(v, 0, sizeof(*v));
    v->cfg = ep->cfg;
    v->version = version;
    v->cert_sha256 = tls_ctx_cert_sha256(ep->tls);
    v->cert_hashable = tls_ctx_cert_hashable(ep->tls);
    v->cert_not_after = tls_ctx_cert_not_after(ep->tls);
    v->draining = ep->shutting_down;
    v->connections_open = ep->nconns;
    v->handshakes_in_progress = ep->nhandshakes;
    v->handshakes_queued = ep->hsq.n;
    v->addresses_tracked = ep->alim.n;
    v->cluster = cluster_on() ? (cluster_up() ? 1 : 2) : 0;
}

static void view_of(const struct admin *a, struct admin_view *v)
{
    if (a->src)
        a->src->view(a->src_arg, v);
    else
        view_of_ep(a->ep, a->version, v);
    v->listen = &a->listen;
    v->version = a->version;
}

char *admin_metrics(const struct quic_endpoint *ep, const char *version,
                    size_t *len)
{
    struct admin_view v;
    struct admin_reply r;

    view_of_ep(ep, version, &v);
    v.listen = &ep->cfg->admin_listen;
    /* the Host check would refuse a request without one: not a request */
    if (admin_reply(&v, "GET", "/metrics", "localhost", &r) < 0)
        return NULL;
    if (r.status != 200) {
        admin_reply_free(&r);
        return NULL;
    }
    *len = r.len;
    return r.body;
}

static void run(struct admin *a);

/* A supervisor's /metrics request, suspended until the page is there
 * (MHD's con_cls; freed when the request completes). */
struct admin_wait {
    struct admin_wait *next, **pprev; /* in a->waiting while waiting */
    struct MHD_Connection *c;
    int answered;
    char *body; /* NULL when answered: no page (503) */
    size_t len;
};

static void wait_unlink(struct admin_wait *w)
{
    if (!w->pprev)
        return;
    *w->pprev = w->next;
    if (w->next)
        w->next->pprev = w->pprev;
    w->next = NULL;
    w->pprev = NULL;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct admin_wait *w = *con_cls;

    (void)cls;
    (void)c;
    (void)toe;
    if (!w)
        return;
    wait_unlink(w);
    free(w->body);
    free(w);
    *con_cls = NULL;
}

/* A suspended request's turn again: the page, or 503. */
static int answered_reply(struct admin_wait *w, struct admin_reply *r)
{
    memset(r, 0, sizeof(*r));
    if (!w->body)
        return set_text(r, 503, "metrics unavailable\n");
    r->status = 200;
    r->type = "text/plain; version=0.0.4; charset=utf-8";
    r->body = w->body;
    r->len = w->len;
    w->body = NULL;
    return 0;
}

void admin_metrics_answer(struct admin *a, const char *page, size_t len)
{
    struct admin_wait *w;

    if (!a->mhd)
        return;
    while ((w = a->waiting)) {
        wait_unlink(w);
        w->answered = 1;
        /* each its own copy: MHD frees a response's body with it */
        if (page && (w->body = malloc(len ? len : 1))) {
            memcpy(w->body, page, len);
            w->len = len;
        }
        MHD_resume_connection(w->c);
    }
    run(a);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version,
                                  const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct admin *a = cls;
    struct admin_view v;
    struct admin_reply r;
    struct MHD_Response *resp;
    enum MHD_Result ret;

    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    if (*con_cls) {
        struct admin_wait *w = *con_cls;

        if (!w->answered)
            return MHD_YES; /* not ours to answer yet */
        if (answered_reply(w, &r) < 0)
            return MHD_NO;
    } else {
        view_of(a, &v);
        if (admin_reply(&v, method, url,
                        MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                    MHD_HTTP_HEADER_HOST),
                        &r) < 0)
            return MHD_NO; /* out of memory: the connection is closed */
        if (r.status == ADMIN_LATER) {
            /* the supervisor's loop goes on while its workers are asked:
             * the request waits, suspended, for admin_metrics_answer() */
            struct admin_wait *w = calloc(1, sizeof(*w));

            if (!w)
                return MHD_NO;
            w->c = c;
            w->next = a->waiting;
            if (w->next)
                w->next->pprev = &w->next;
            w->pprev = &a->waiting;
            a->waiting = w;
            *con_cls = w;
            MHD_suspend_connection(c);
            v.metrics_begin(v.metrics_arg);
            return MHD_YES;
        }
    }
    resp = MHD_create_response_from_buffer(
        r.len, r.body, r.fixed ? MHD_RESPMEM_PERSISTENT : MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        admin_reply_free(&r);
        return MHD_NO;
    }
    if (r.type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r.type);
    if (r.allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r.allow);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    /* the demo page: nothing from elsewhere, no framing */
    MHD_add_response_header(resp, "Content-Security-Policy",
                            "default-src 'none'; script-src 'unsafe-inline'; "
                            "style-src 'unsafe-inline'; connect-src 'self' "
                            "https:; frame-ancestors 'none'");
    ret = MHD_queue_response(c, (unsigned)r.status, resp);
    MHD_destroy_response(resp);
    if (log_level >= LOG_LVL_DEBUG)
        log_debug("admin: %s %.200s: %d", method, url, r.status);
    return ret;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char buf[256];

    (void)cls;
    vsnprintf(buf, sizeof(buf), fmt, ap);
    buf[strcspn(buf, "\n")] = '\0';
    log_debug("admin: %s", buf);
}

/* Runs what is due and sets the timer for what comes next. */
static void run(struct admin *a)
{
    MHD_UNSIGNED_LONG_LONG ms;

    MHD_run(a->mhd);
    ev_timer_stop(a->loop, &a->timer);
    if (MHD_get_timeout(a->mhd, &ms) == MHD_YES) {
        ev_timer_set(&a->timer, (ev_tstamp)ms / 1000., 0.);
        ev_timer_start(a->loop, &a->timer);
    }
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    run(w->data);
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    run(w->data);
}

static int start(struct admin *a, const struct config *cfg, char *err,
                 size_t errlen);

int admin_start(struct admin *a, struct ev_loop *loop,
                struct quic_endpoint *ep, const char *version, char *err,
                size_t errlen)
{
    memset(a, 0, sizeof(*a));
    a->loop = loop;
    a->ep = ep;
    a->version = version;
    return start(a, ep->cfg, err, errlen);
}

int admin_start_source(struct admin *a, struct ev_loop *loop,
                       const struct config *cfg,
                       const struct admin_source *src, void *arg,
                       const char *version, char *err, size_t errlen)
{
    memset(a, 0, sizeof(*a));
    a->loop = loop;
    a->src = src;
    a->src_arg = arg;
    a->version = version;
    return start(a, cfg, err, errlen);
}

static int start(struct admin *a, const struct config *cfg, char *err,
                 size_t errlen)
{
    const union MHD_DaemonInfo *info;
    unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;

    /* a supervisor answers /metrics once its workers have */
    if (a->src)
        flags |= MHD_ALLOW_SUSPEND_RESUME;
    unsigned timeout_s = (unsigned)((cfg->admin_timeout_ms + 999) / 1000);
    unsigned per_ip = (unsigned)((cfg->admin_max_connections + 1) / 2);

    if (!cfg->admin_on)
        return 0;
    a->listen = cfg->admin_listen;
    if (cfg->admin_listen.addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* Bounds: connections at once (one client address gets half, so one
     * cannot lock out the others), each one's life without progress, and
     * its memory, which caps the request headers (past it: 431). */
    a->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, a, MHD_OPTION_EXTERNAL_LOGGER,
        mhd_log, NULL, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
        MHD_OPTION_SOCK_ADDR,
        (const struct sockaddr *)&cfg->admin_listen.addr,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->admin_max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip ? per_ip : 1,
        MHD_OPTION_CONNECTION_TIMEOUT, timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16384,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 16u, MHD_OPTION_STRICT_FOR_CLIENT, 1,
        MHD_OPTION_END);
    if (!a->mhd) {
        snprintf(err, errlen, "admin: cannot listen on tcp %s",
                 cfg->admin_listen.text);
        return -1;
    }
    info = MHD_get_daemon_info(a->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    if (!info || info->epoll_fd < 0) {
        snprintf(err, errlen, "admin: no epoll descriptor");
        MHD_stop_daemon(a->mhd);
        a->mhd = NULL;
        return -1;
    }
    ev_io_init(&a->io, io_cb, info->epoll_fd, EV_READ);
    a->io.data = a;
    ev_io_start(a->loop, &a->io);
    ev_init(&a->timer, timer_cb);
    a->timer.data = a;
    run(a);
    log_info("admin: listening on tcp %s (/metrics, /healthz, demo page /)",
             cfg->admin_listen.text);
    if (!config_addr_is_loopback(&cfg->admin_listen))
        log_warn("admin: %s is not a loopback address: anyone who reaches "
                 "it reads the metrics (no authentication)",
                 cfg->admin_listen.text);
    return 0;
}

void admin_reload_check(const struct admin *a, const struct config *cfg)
{
    if (!cfg->admin_on && !a->mhd)
        return;
    if (cfg->admin_on && a->mhd &&
        config_listen_same(&cfg->admin_listen, &a->listen))
        return;
    if (a->mhd)
        log_warn("admin: [admin] changed; the endpoint stays on tcp %s "
                 "until a restart",
                 a->listen.text);
    else
        log_warn("admin: [admin] added; the endpoint starts at a restart");
}

void admin_stop(struct admin *a)
{
    if (!a->mhd)
        return;
    /* MHD must not be stopped with a request suspended */
    if (a->waiting)
        admin_metrics_answer(a, NULL, 0);
    ev_io_stop(a->loop, &a->io);
    ev_timer_stop(a->loop, &a->timer);
    MHD_stop_daemon(a->mhd);
    a->mhd = NULL;
}
