/*
 * The INI loader (src/config.c through inih, with our own line reader and
 * every key's validation, and the handlers' route keys): the input is the
 * file.  It is written to a temporary directory that also holds cert.pem
 * and key.pem, so a file naming them gets past the readable-files check
 * to the route and admin checks.  Host names in backend addresses are not
 * resolved (fuzz.h).
 *
 * Properties: a file loads, or fails with "FILE:LINE: message" whose line
 * is within the file; a loaded config is within its own limits; loading
 * the same file twice gives configs that compare as "no change", and the
 * reload's inherit step between them works.  ASan's leak check covers
 * both paths (a failed load frees everything it made).
 */
#include <limits.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"
#include "log.h"

static char dir[PATH_MAX], ini[PATH_MAX + 16];

static void touch(const char *name)
{
    char p[PATH_MAX + 16];
    FILE *f;

    snprintf(p, sizeof(p), "%s/%s", dir, name);
    if (!(f = fopen(p, "w")))
        abort();
    fputs("not read by config_load\n", f);
    fclose(f);
}

static void cleanup(void)
{
    char p[PATH_MAX + 16];

    snprintf(p, sizeof(p), "%s/cert.pem", dir);
    unlink(p);
    snprintf(p, sizeof(p), "%s/key.pem", dir);
    unlink(p);
    unlink(ini);
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    /* run.sh points TMPDIR into its own temporary directory, so that even
     * a crash (no atexit) leaves nothing behind */
    const char *base = getenv("TMPDIR");

    if (!base || !*base)
        base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";

    snprintf(dir, sizeof(dir), "%s/wtrelayd-fuzz-XXXXXX", base);
    if (!mkdtemp(dir))
        abort();
    snprintf(ini, sizeof(ini), "%s/f.ini", dir);
    touch("cert.pem");
    touch("key.pem");
    atexit(cleanup);
    log_level = LOG_LVL_ERROR; /* warnings about odd values: not wanted here */
    return 0;
}

static void write_ini(const uint8_t *p, size_t n)
{
    FILE *f = fopen(ini, "w");

    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0)
        abort();
}

static void check_config(const struct config *c)
{
    uint64_t data, bidi, uni;

    FUZZ_CHECK(c->nlisten >= 1 && c->nlisten <= CONFIG_MAX_LISTEN);
    FUZZ_CHECK(c->cert && c->key);
    for (size_t i = 0; i < c->nlisten; i++) {
        int fam = c->listen[i].addr.ss_family;

        FUZZ_CHECK(fam == AF_INET || fam == AF_INET6);
        FUZZ_CHECK(memchr(c->listen[i].text, 0, sizeof(c->listen[i].text)));
    }
    for (const struct config_route *r = c->routes; r; r = r->next) {
        FUZZ_CHECK(r->path && r->handler && r->norigins <= CONFIG_MAX_ORIGINS);
        /* the route a request for its own path finds: the first of that
         * path (exact match up to '?') */
        FUZZ_CHECK(config_find_route(c, r->path, strlen(r->path)) != NULL);
    }
    config_wt_initial(c, &data, &bidi, &uni);
    FUZZ_CHECK(bidi >= 1 && uni >= 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct config a, b;
    char err[CONFIG_ERR_LEN], err2[CONFIG_ERR_LEN], desc[1024];
    size_t lines = 1;

    if (size > 64 * 1024)
        return 0;
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    write_ini(data, size);
    if (config_load(&a, ini, err, sizeof(err)) < 0) {
        size_t pl = strlen(ini);
        long line;

        FUZZ_CHECK(memchr(err, 0, sizeof(err)));
        FUZZ_CHECK(strncmp(err, ini, pl) == 0 && err[pl] == ':');
        line = strtol(err + pl + 1, NULL, 10);
        FUZZ_CHECK(line >= 0 && (size_t)line <= lines);
        /* the same file, the same error: nothing kept between loads */
        FUZZ_CHECK(config_load(&b, ini, err2, sizeof(err2)) < 0);
        FUZZ_CHECK(strcmp(err, err2) == 0);
        return 0;
    }
    check_config(&a);
    FUZZ_CHECK(config_load(&b, ini, err2, sizeof(err2)) == 0);
    config_describe_changes(&a, &b, desc, sizeof(desc));
    FUZZ_CHECK(strncmp(desc, "no change", 9) == 0);
    config_inherit(&b, &a);
    config_free(&a);
    config_free(&b);
    return 0;
}
