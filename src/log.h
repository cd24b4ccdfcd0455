/*
 * log: leveled logging to stderr (systemd's journal picks it up from there).
 * One line per event; no allocation.  Three shapes: text (a timestamp, the
 * level, the message), journal (a syslog priority prefix "<6>" and no
 * timestamp: journald stamps lines itself), json (one object a line).
 * Every byte of a message is treated as hostile: control characters and
 * invalid UTF-8 never reach the output raw, so a peer's string cannot
 * forge or break a line.
 */
#ifndef WTRELAYD_LOG_H
#define WTRELAYD_LOG_H

#include <stddef.h>
#include <stdint.h>

enum log_level {
    LOG_LVL_ERROR = 0,
    LOG_LVL_WARN = 1,
    LOG_LVL_INFO = 2,
    LOG_LVL_DEBUG = 3,
};

enum log_format {
    LOG_FMT_TEXT = 0,
    LOG_FMT_JSON = 1,
};

extern int log_level;
extern int log_format;
/* workers = N: this process's index, said on every line ("worker 1: "
 * before the message; "worker":1 in JSON); -1 (default): not a worker. */
extern int log_worker;

/* "error", "warn", "info", "debug" -> level; -1 when unknown. */
int log_level_parse(const char *s);
/* "text", "json" -> format; -1 when unknown. */
int log_format_parse(const char *s);
/* Priority prefixes instead of timestamps when stderr is the journal
 * (JOURNAL_STREAM names stderr's device and inode: sd-daemon(3)). */
void log_init(void);

void log_msg(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A field of a structured line: text "key=value" after the message (strings
 * quoted), json a member of the object. */
enum { LOG_F_STR, LOG_F_UINT, LOG_F_SEC };
struct log_field {
    const char *key; /* a literal: never escaped */
    int type;
    const char *s; /* LOG_F_STR: s[0..len) — any bytes */
    size_t len;
    uint64_t u; /* LOG_F_UINT */
    double d;   /* LOG_F_SEC: seconds, printed with ms precision */
};
#define LOG_STR(k, p, n) {.key = (k), .type = LOG_F_STR, .s = (p), .len = (n)}
#define LOG_UINT(k, v) {.key = (k), .type = LOG_F_UINT, .u = (v)}
#define LOG_SEC(k, v) {.key = (k), .type = LOG_F_SEC, .d = (v)}

void log_fields(int level, const struct log_field *f, size_t n,
                const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* JSON string body of p[0..n) (no quotes) into dst, NUL-terminated: '"',
 * '\\' and control characters escaped (\n, \u00XX ...), invalid UTF-8
 * (stray continuation bytes, overlong forms, surrogates, > U+10FFFF,
 * truncated sequences) replaced by \ufffd one byte at a time.  Never cuts
 * an escape in half; stops when dst is full.  Returns the length written. */
size_t log_json_escape(char *dst, size_t cap, const char *p, size_t n);
/* The same for text lines: '"' and '\\' escaped, other bytes that are not
 * printable UTF-8 as \xNN. */
size_t log_text_escape(char *dst, size_t cap, const char *p, size_t n);

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...)                                                         \
    do {                                                                       \
        if (log_level >= LOG_LVL_DEBUG)                                        \
            log_msg(LOG_LVL_DEBUG, __VA_ARGS__);                               \
    } while (0)

#endif
