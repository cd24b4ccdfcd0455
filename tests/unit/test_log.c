/* Unit tests of src/log.c: the escapers with hostile bytes, and whole
 * lines (text, json, journal) as they reach stderr. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "t.h"

/* ---- a strict checker for what the json shape must be ---- */

static int utf8_ok(const unsigned char *p, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned c = p[i], len, cp, k;

        if (c < 0x80) {
            i++;
            continue;
        }
        len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
        if (len == 0 || c > 0xf4 || i + len > n)
            return 0;
        cp = c & (0x3f >> (len - 1));
        for (k = 1; k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
            (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += len;
    }
    return 1;
}

/* A JSON string at *p (RFC 8259 §7); advances past it. */
static int json_string(const char **p)
{
    const char *s = *p;

    if (*s++ != '"')
        return 0;
    while (*s != '"') {
        unsigned char c = (unsigned char)*s;

        if (c < 0x20 || c == 0x7f)
            return 0;
        if (c == '\\') {
            s++;
            if (*s == 'u') {
                for (int k = 1; k <= 4; k++)
                    if (!strchr("0123456789abcdefABCDEF", s[k]) || !s[k])
                        return 0;
                s += 5;
                continue;
            }
            if (!*s || !strchr("\"\\/bfnrt", *s))
                return 0;
        }
        s++;
    }
    *p = s + 1;
    return 1;
}

/* One object of string, number and true members, then "\n" and nothing. */
static int json_line(const char *s)
{
    if (!utf8_ok((const unsigned char *)s, strlen(s)) || *s++ != '{')
        return 0;
    for (;;) {
        if (!json_string(&s) || *s++ != ':')
            return 0;
        if (*s == '"') {
            if (!json_string(&s))
                return 0;
        } else if (strncmp(s, "true", 4) == 0) {
            s += 4;
        } else {
            char *end;

            strtod(s, &end);
            if (end == s)
                return 0;
            s = end;
        }
        if (*s == '}')
            break;
        if (*s++ != ',')
            return 0;
    }
    return strcmp(s, "}\n") == 0;
}

/* ---- the escapers ---- */

T_TEST(json_escape_basic)
{
    char out[256];
    size_t n;

    n = log_json_escape(out, sizeof(out), "a\"b\\c\n\r\t\b\f", 10);
    T_STREQ(out, "a\\\"b\\\\c\\n\\r\\t\\b\\f");
    T_EQ(n, strlen(out));
    log_json_escape(out, sizeof(out), "\0\x01\x1f\x7f", 4);
    T_STREQ(out, "\\u0000\\u0001\\u001f\\u007f");
    /* valid UTF-8 passes, C1 controls do not */
    log_json_escape(out, sizeof(out), "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14);
    T_STREQ(out, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    log_json_escape(out, sizeof(out), "\xc2\x9b[31m", 6);
    T_STREQ(out, "\\u009b[31m");
}

T_TEST(json_escape_invalid_utf8)
{
    static const struct {
        const char *in;
        size_t n;
        const char *out;
    } cases[] = {
        {"\x80", 1, "\\ufffd"},                      /* stray continuation */
        {"\xc0\xaf", 2, "\\ufffd\\ufffd"},           /* overlong '/' */
        {"\xe0\x80\xaf", 3, "\\ufffd\\ufffd\\ufffd"}, /* overlong, 3 bytes */
        {"\xed\xa0\x80", 3, "\\ufffd\\ufffd\\ufffd"}, /* a surrogate */
        {"\xf4\x90\x80\x80", 4, "\\ufffd\\ufffd\\ufffd\\ufffd"}, /* > U+10FFFF */
        {"\xf5", 1, "\\ufffd"},
        {"\xff\xfe", 2, "\\ufffd\\ufffd"},
        {"a\xe2\x82", 3, "a\\ufffd\\ufffd"},           /* cut sequence */
        {"\xe2\x82" "a", 3, "\\ufffd\\ufffda"},
    };
    char out[64];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        log_json_escape(out, sizeof(out), cases[i].in, cases[i].n);
        T_STREQ(out, cases[i].out);
    }
}

T_TEST(json_escape_every_byte)
{
    /* all 256 byte values, alone and in pairs: always a valid JSON
     * string body */
    char in[2], out[64], wrapped[80];

    for (int a = 0; a < 256; a++)
        for (int b = 0; b < 256; b++) {
            const char *p = wrapped;

            in[0] = (char)a;
            in[1] = (char)b;
            log_json_escape(out, sizeof(out), in, 2);
            snprintf(wrapped, sizeof(wrapped), "\"%s\"", out);
            T_CHECK(json_string(&p) && *p == '\0');
            T_CHECK(utf8_ok((const unsigned char *)out, strlen(out)));
        }
}

T_TEST(escape_never_cuts_an_escape)
{
    char out[8];

    /* "\\u0001" is 6 bytes: 1 + 6 fits in 8 with the NUL, the next does not */
    T_EQ(log_json_escape(out, sizeof(out), "a\x01\x01", 3), 7u);
    T_STREQ(out, "a\\u0001");
    T_EQ(log_json_escape(out, sizeof(out), "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac", 9), 6u);
    T_STREQ(out, "\xe2\x82\xac\xe2\x82\xac");
    T_EQ(log_json_escape(out, 0, "abc", 3), 0u);
}

T_TEST(text_escape)
{
    char out[128];

    log_text_escape(out, sizeof(out), "a\"b\\c\nd\x1b[2J\x80\xc2\x9b", 14);
    T_STREQ(out, "a\\\"b\\\\c\\x0ad\\x1b[2J\\x80\\xc2\\x9b");
    log_text_escape(out, sizeof(out), "caf\xc3\xa9", 5);
    T_STREQ(out, "caf\xc3\xa9");
}

/* ---- whole lines: stderr into a file ---- */

static char captured[65536];

static int capture(void (*fn)(void))
{
    FILE *f = tmpfile();
    int saved = dup(2), n;

    if (!f || saved < 0)
        return -1;
    fflush(stderr);
    dup2(fileno(f), 2);
    fn();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(f);
    n = (int)fread(captured, 1, sizeof(captured) - 1, f);
    captured[n < 0 ? 0 : n] = '\0';
    fclose(f);
    return n;
}

static const char hostile[] = "bye\n2024-01-01T00:00:00.000Z error forged\"}\x01\xff\xc2\x85";

static void log_hostile(void)
{
    struct log_field f[] = {
        LOG_UINT("code", 4242),
        LOG_STR("reason", hostile, sizeof(hostile) - 1),
        LOG_SEC("duration", 1.5),
    };

    log_fields(LOG_LVL_INFO, f, 3, "session %d: closed by %s:", 4, "peer\n");
}

T_TEST(json_line_hostile)
{
    log_format = LOG_FMT_JSON;
    T_CHECK(capture(log_hostile) > 0);
    log_format = LOG_FMT_TEXT;
    T_CHECK(json_line(captured));
    T_CHECK(strstr(captured, "\"level\":\"info\""));
    T_CHECK(strstr(captured, "\"msg\":\"session 4: closed by peer\\n:\""));
    T_CHECK(strstr(captured, "\"code\":4242,"));
    T_CHECK(strstr(captured, "\"duration\":1.500"));
    T_CHECK(strstr(captured, "forged\\\"}\\u0001\\ufffd\\u0085\""));
}

T_TEST(text_line_hostile)
{
    T_CHECK(capture(log_hostile) > 0);
    /* one line: the forged line stays inside the quoted reason */
    T_CHECK(strchr(captured, '\n') == captured + strlen(captured) - 1);
    T_CHECK(strstr(captured, " info session 4: closed by peer\\x0a: code=4242 "
                             "reason=\"bye\\x0a2024-01-01T00:00:00.000Z error "
                             "forged\\\"}\\x01\\xff\\xc2\\x85\" duration=1.500s\n"));
}

static void log_huge(void)
{
    static char big[40000];
    struct log_field f[] = {
        LOG_UINT("code", 7),
        LOG_STR("reason", big, sizeof(big)),
        LOG_UINT("after", 1),
    };

    memset(big, 1, sizeof(big)); /* 6 bytes each in JSON */
    log_fields(LOG_LVL_INFO, f, 3, "huge");
}

T_TEST(json_line_cut)
{
    int n;

    log_format = LOG_FMT_JSON;
    n = capture(log_huge);
    log_format = LOG_FMT_TEXT;
    T_CHECK(n > 0 && n < 20000);
    T_CHECK(json_line(captured));
    T_CHECK(strstr(captured, "\"code\":7,\"truncated\":true}\n"));
}

static void log_plain(void)
{
    log_warn("careful");
    log_debug("not shown at info");
}

T_TEST(journal_prefix)
{
    struct stat st;
    char env[64];

    /* JOURNAL_STREAM naming another file: still text with timestamps */
    setenv("JOURNAL_STREAM", "1:1", 1);
    log_init();
    T_CHECK(capture(log_plain) > 0);
    T_CHECK(captured[0] == '2' && strstr(captured, "Z warn careful\n"));
    /* naming stderr (the file capture() puts there: fd 3 here, same
     * file): priority prefix, no timestamp */
    {
        FILE *f = tmpfile();
        int saved = dup(2), n;

        T_CHECK(f && saved >= 0);
        fstat(fileno(f), &st);
        snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
                 (unsigned long long)st.st_ino);
        setenv("JOURNAL_STREAM", env, 1);
        dup2(fileno(f), 2);
        log_init();
        log_plain();
        log_error("bad");
        fflush(stderr);
        dup2(saved, 2);
        close(saved);
        rewind(f);
        n = (int)fread(captured, 1, sizeof(captured) - 1, f);
        captured[n < 0 ? 0 : n] = '\0';
        fclose(f);
    }
    unsetenv("JOURNAL_STREAM");
    log_init();
    T_STREQ(captured, "<4>careful\n<3>bad\n");
}

T_TEST(parse)
{
    T_EQ(log_format_parse("text"), LOG_FMT_TEXT);
    T_EQ(log_format_parse("json"), LOG_FMT_JSON);
    T_EQ(log_format_parse("JSON"), -1);
    T_EQ(log_level_parse("debug"), LOG_LVL_DEBUG);
}

int main(void)
{
    T_RUN(json_escape_basic);
    T_RUN(json_escape_invalid_utf8);
    T_RUN(json_escape_every_byte);
    T_RUN(escape_never_cuts_an_escape);
    T_RUN(text_escape);
    T_RUN(json_line_hostile);
    T_RUN(text_line_hostile);
    T_RUN(json_line_cut);
    T_RUN(journal_prefix);
    T_RUN(parse);
    T_DONE();
}
