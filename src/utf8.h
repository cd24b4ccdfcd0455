/*
 * utf8: strict UTF-8 (RFC 3629 §4: no overlong forms, no surrogates,
 * nothing past U+10FFFF), for what peers send: CLOSE reasons (wire.c) and
 * the bytes the log escapes (log.c).  Pure functions, no allocation.
 */
#ifndef WTRELAYD_UTF8_H
#define WTRELAYD_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Length (1..4) of the valid sequence at p[0..n), n > 0; 0 when invalid
 * or cut short. */
size_t utf8_len(const uint8_t *p, size_t n);
/* 1 when all of p[0..n) is valid UTF-8, else 0. */
int utf8_valid(const uint8_t *p, size_t n);

#endif
