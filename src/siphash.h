/*
 * siphash: SipHash-2-4, keyed (128-bit key), for hash tables whose keys
 * come from peers (see siphash.c).
 */
#ifndef WTRELAYD_SIPHASH_H
#define WTRELAYD_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/* The 64-bit hash of p[0..n) under the key (k0, k1). */
uint64_t siphash24(uint64_t k0, uint64_t k1, const uint8_t *p, size_t n);
/* A fresh secret key from the kernel: 0, or -1 when it gave none. */
int siphash_key_new(uint64_t *k0, uint64_t *k1);
/* Eight bytes, little-endian (how SipHash reads its key and message). */
uint64_t siphash_le64(const uint8_t *p);

#endif
