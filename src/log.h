/*
 * log: leveled logging to stderr (systemd's journal picks it up from there).
 * One line per event, prefixed with the level; no allocation.
 */
#ifndef WTRELAYD_LOG_H
#define WTRELAYD_LOG_H

enum log_level {
    LOG_LVL_ERROR = 0,
    LOG_LVL_WARN = 1,
    LOG_LVL_INFO = 2,
    LOG_LVL_DEBUG = 3,
};

extern int log_level;

/* "error", "warn", "info", "debug" -> level; -1 when unknown. */
int log_level_parse(const char *s);
void log_msg(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...)                                                         \
    do {                                                                       \
        if (log_level >= LOG_LVL_DEBUG)                                        \
            log_msg(LOG_LVL_DEBUG, __VA_ARGS__);                               \
    } while (0)

#endif
