/* log: see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "utf8.h"

int log_level = LOG_LVL_INFO;
int log_format = LOG_FMT_TEXT;
int log_worker = -1;
static int journal; /* stderr is the journal's stream */

static const char *const names[] = {"error", "warn", "info", "debug"};
/* syslog priorities: LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG */
static const char prio[] = {'3', '4', '6', '7'};

/* Output line: the message, its fields, their escapes (6 bytes a byte at
 * worst in JSON); longer lines are cut, still well-formed. */
#define MSG_MAX 2048
#define LINE_MAX_OUT (MSG_MAX * 6 + 4096)
/* what stays free for ending a cut line: ",\"truncated\":true}\n" */
#define TAIL 32

int log_level_parse(const char *s)
{
    for (int i = 0; i < (int)(sizeof(names) / sizeof(names[0])); i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

int log_format_parse(const char *s)
{
    if (strcmp(s, "text") == 0)
        return LOG_FMT_TEXT;
    if (strcmp(s, "json") == 0)
        return LOG_FMT_JSON;
    return -1;
}

void log_init(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;

    journal = 0;
    /* sd_journal_stream_fd(3): "DEVICE:INODE" of the stream; compare with
     * stderr, as a redirected stderr inherits the variable but is no
     * longer the journal */
    if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2)
        return;
    if (fstat(STDERR_FILENO, &st) == 0 && (unsigned long long)st.st_dev == dev &&
        (unsigned long long)st.st_ino == ino)
        journal = 1;
}

/* C0, DEL and C1 controls (U+0080..U+009F: 0xc2 0x80..0x9f) are escaped
 * in both shapes: a terminal reading the log must not act on them. */
static int is_c1(const unsigned char *p, size_t len)
{
    return len == 2 && p[0] == 0xc2 && p[1] < 0xa0;
}

/* *whole = 0 when dst was too small for all of src. */
static size_t escape(char *dst, size_t cap, const char *src, size_t n, int json,
                     int quote, int *whole)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)src;
    size_t o = 0, i = 0;

    if (cap == 0) {
        *whole = n == 0;
        return 0;
    }
    while (i < n) {
        char e[16];
        size_t el = 0, len = utf8_len(p + i, n - i), k;

        if (len == 1 && p[i] >= 0x20 && p[i] != 0x7f &&
            !((json || quote) && (p[i] == '"' || p[i] == '\\'))) {
            e[el++] = (char)p[i];
        } else if (len == 1 && (p[i] == '"' || p[i] == '\\')) {
            e[el++] = '\\';
            e[el++] = (char)p[i];
        } else if (len > 1 && !is_c1(p + i, len)) {
            memcpy(e, p + i, len);
            el = len;
        } else if (json && len == 0) {
            memcpy(e, "\\ufffd", 6); /* one replacement per bad byte */
            el = 6;
            len = 1;
        } else if (json) {
            /* a control character, C0 or C1 (len 1 or 2) */
            unsigned cp = len == 1 ? p[i] : p[i + 1];
            const char *s = cp == '\n' ? "\\n" : cp == '\r' ? "\\r"
                          : cp == '\t' ? "\\t" : cp == '\b' ? "\\b"
                          : cp == '\f' ? "\\f" : NULL;

            if (s) {
                el = strlen(s);
                memcpy(e, s, el);
            } else {
                el = (size_t)snprintf(e, sizeof(e), "\\u%04x", cp);
            }
        } else {
            /* text: every byte of it as \xNN */
            if (len == 0)
                len = 1;
            for (k = 0; k < len; k++) {
                e[el++] = '\\';
                e[el++] = 'x';
                e[el++] = hex[p[i + k] >> 4];
                e[el++] = hex[p[i + k] & 15];
            }
        }
        if (o + el >= cap) /* whole escapes only, and room for the NUL */
            break;
        memcpy(dst + o, e, el);
        o += el;
        i += len;
    }
    dst[o] = '\0';
    *whole = i == n;
    return o;
}

size_t log_json_escape(char *dst, size_t cap, const char *p, size_t n)
{
    int whole;

    return escape(dst, cap, p, n, 1, 1, &whole);
}

size_t log_text_escape(char *dst, size_t cap, const char *p, size_t n)
{
    int whole;

    return escape(dst, cap, p, n, 0, 1, &whole);
}

/* A line being built; `cut` once something did not fit. */
struct line {
    char b[LINE_MAX_OUT];
    size_t o;
    int cut;
};

/* Appends printf output; never past LINE_MAX_OUT - TAIL. */
static void put(struct line *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void put(struct line *l, const char *fmt, ...)
{
    size_t room = LINE_MAX_OUT - TAIL - l->o;
    va_list ap;
    int k;

    if (l->cut)
        return;
    va_start(ap, fmt);
    k = vsnprintf(l->b + l->o, room, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= room) {
        l->cut = 1;
        return;
    }
    l->o += (size_t)k;
}

static void put_esc(struct line *l, const char *p, size_t n, int json,
                    int quote)
{
    int whole;

    if (l->cut)
        return;
    l->o += escape(l->b + l->o, LINE_MAX_OUT - TAIL - l->o, p, n, json, quote,
                   &whole);
    l->cut = !whole;
}

static void emit(int level, const struct log_field *f, size_t nf,
                 const char *fmt, va_list ap)
{
    char msg[MSG_MAX];
    struct line l;
    struct timespec ts;
    struct tm tm;
    size_t safe, i;
    int json = log_format == LOG_FMT_JSON, m;

    m = vsnprintf(msg, sizeof(msg), fmt, ap);
    if (m < 0)
        m = 0;
    if ((size_t)m >= sizeof(msg))
        m = (int)sizeof(msg) - 1;
    l.o = 0;
    l.cut = 0;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    if (journal)
        put(&l, "<%c>", prio[level]);
    if (json) {
        put(&l,
            "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\",",
            tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
            tm.tm_sec, ts.tv_nsec / 1000000, names[level]);
        if (log_worker >= 0)
            put(&l, "\"worker\":%d,", log_worker);
        put(&l, "\"msg\":\"");
        /* fits whole: MSG_MAX escaped at 6 bytes a byte < LINE_MAX_OUT */
        put_esc(&l, msg, (size_t)m, 1, 1);
        put(&l, "\"");
    } else {
        if (!journal)
            put(&l, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s ",
                tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, names[level]);
        if (log_worker >= 0)
            put(&l, "worker %d: ", log_worker);
        put_esc(&l, msg, (size_t)m, 0, 0);
    }
    safe = l.o;
    for (i = 0; i < nf && !l.cut; i++) {
        put(&l, json ? ",\"%s\":" : " %s=", f[i].key);
        switch (f[i].type) {
        case LOG_F_STR:
            put(&l, "\"");
            put_esc(&l, f[i].s ? f[i].s : "", f[i].s ? f[i].len : 0, json, 1);
            put(&l, "\"");
            break;
        case LOG_F_UINT:
            put(&l, "%llu", (unsigned long long)f[i].u);
            break;
        default:
            put(&l, json ? "%.3f" : "%.3fs", f[i].d);
            break;
        }
        if (!l.cut)
            safe = l.o;
    }
    /* a line that did not fit ends after its last whole field, and says
     * so: JSON stays one valid object (TAIL keeps the room for this) */
    if (l.cut) {
        const char *t = json ? ",\"truncated\":true" : " truncated=1";

        l.o = safe;
        memcpy(l.b + l.o, t, strlen(t));
        l.o += strlen(t);
    }
    if (json)
        l.b[l.o++] = '}';
    l.b[l.o++] = '\n';
    /* One write per line so lines from a crash or a pipe never interleave. */
    fwrite(l.b, 1, l.o, stderr);
}

void log_msg(int level, const char *fmt, ...)
{
    va_list ap;

    if (level > log_level)
        return;
    va_start(ap, fmt);
    emit(level, NULL, 0, fmt, ap);
    va_end(ap);
}

void log_fields(int level, const struct log_field *f, size_t n,
                const char *fmt, ...)
{
    va_list ap;

    if (level > log_level)
        return;
    va_start(ap, fmt);
    emit(level, f, n, fmt, ap);
    va_end(ap);
}
