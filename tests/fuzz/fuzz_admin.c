/*
 * The admin endpoint's request handling (src/admin.c admin_reply: what
 * libmicrohttpd hands over — the method, the URL path and the Host
 * header — to the reply), without a socket.  The endpoint listens on a
 * loopback address (the Host check against DNS rebinding) or, by the
 * input's first byte, on a non-loopback one.
 *
 * Input: a flags byte, then method NUL url NUL host (no host when the
 * input ends first, and the flags' bit 1 drops it).
 *
 * Properties: only GET and HEAD get anything but 405 (with Allow); on a
 * loopback listen a Host naming anything but a loopback literal or
 * "localhost" gets 403; a reply's status is one the endpoint sends and
 * its body is as long as it says (ASan reads all of it).
 */
#include "admin.h"
#include "config.h"
#include "fuzz.h"
#include "log.h"

static struct config cfg;
static struct config_listen lo, any;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    config_defaults(&cfg);
    if (config_parse_addr("127.0.0.1:8080", &lo) != 0 ||
        config_parse_addr("0.0.0.0:8080", &any) != 0)
        abort();
    log_level = LOG_LVL_ERROR;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    uint8_t flags = fuzz_u8(&in);
    char *method = fuzz_str(&in, 64), *url = fuzz_str(&in, 2048);
    int have_host = in.n > 0 && !(flags & 2);
    char *host = fuzz_str(&in, 1024);
    struct admin_view v = {
        .cfg = &cfg,
        .listen = flags & 1 ? &any : &lo,
        .version = "fuzz",
        .cert_sha256 = "00",
        .cert_hashable = (flags >> 2) & 1,
        .draining = (flags >> 3) & 1,
    };
    struct admin_reply r;
    int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;

    if (admin_reply(&v, method, url, have_host ? host : NULL, &r) == 0) {
        FUZZ_CHECK(r.status == 200 || r.status == 403 || r.status == 404 ||
                   r.status == 405 || r.status == 503);
        FUZZ_CHECK((r.status == 405) == !get);
        if (r.status == 405)
            FUZZ_CHECK(r.allow && strcmp(r.allow, "GET, HEAD") == 0);
        if (get && !(flags & 1) && !have_host)
            FUZZ_CHECK(r.status == 403);
        if (r.status == 200 || r.status == 503)
            FUZZ_CHECK(strcmp(url, "/") == 0 || strcmp(url, "/metrics") == 0 ||
                       strcmp(url, "/healthz") == 0 ||
                       strcmp(url, "/config.json") == 0);
        FUZZ_CHECK(r.body && r.type);
        /* malloc'd bodies are text of their length; the page has no NUL */
        if (r.fixed)
            FUZZ_CHECK(memchr(r.body, 0, r.len) == NULL);
        else
            FUZZ_CHECK(strlen(r.body) == r.len);
        admin_reply_free(&r);
    }
    free(method);
    free(url);
    free(host);
    return 0;
}
