/*
 * t.h: the unit-test runner.  Each test is a function; T_RUN runs it and
 * prints "ok name" or "FAIL name: file:line: expr" — the lines tests/run.sh
 * counts.  A test program exits non-zero when any test failed.
 */
#ifndef WTRELAYD_T_H
#define WTRELAYD_T_H

#include <stdio.h>
#include <string.h>

static int t_failed_now;
static int t_failures;

#define T_CHECK(cond)                                                          \
    do {                                                                       \
        if (!(cond)) {                                                         \
            if (!t_failed_now)                                                 \
                printf("FAIL %s: %s:%d: %s\n", t_name, __FILE__, __LINE__,     \
                       #cond);                                                 \
            t_failed_now = 1;                                                  \
            return;                                                            \
        }                                                                      \
    } while (0)

#define T_EQ(a, b) T_CHECK((a) == (b))
#define T_MEMEQ(a, b, n) T_CHECK(memcmp((a), (b), (n)) == 0)
#define T_STREQ(a, b) T_CHECK(strcmp((a), (b)) == 0)

/* Every test function takes the name so T_CHECK can print it. */
#define T_TEST(fn) static void fn(const char *t_name)

#define T_RUN(fn)                                                              \
    do {                                                                       \
        t_failed_now = 0;                                                      \
        fn(#fn);                                                               \
        if (t_failed_now)                                                      \
            t_failures++;                                                      \
        else                                                                   \
            printf("ok %s\n", #fn);                                            \
    } while (0)

#define T_DONE() return t_failures ? 1 : 0

#endif
