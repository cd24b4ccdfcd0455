/*
 * cluster_msg: what daemons sharing rooms through Redis say to each other
 * (cluster.c publishes and reads them): a pure codec, no I/O, no
 * allocation, no globals.  Every byte read here came from Redis, which
 * any node (a buggy one, a compromised one) can write to: the decoder
 * checks every length and value and refuses anything it does not know.
 *
 * A message (one Redis pub/sub message on the room's channel):
 *   version (1 byte, CLUSTER_MSG_VERSION), kind (1 byte),
 *   origin (8 bytes, big-endian: the publishing process's instance id),
 *   then, by kind, QUIC varints and the rest as payload:
 *   DGRAM  member, payload (<= CLUSTER_MSG_MAX_DGRAM)
 *   CHUNK  member, stream, offset, fin (0|1), payload (<= CLUSTER_MSG_MAX_CHUNK)
 *   RESET  member, stream, code (< 2^32)
 *   JOIN   member                 LEAVE  member
 *   HELLO  flags (ASK|FIRST|LAST), n (<= CLUSTER_MSG_MAX_IDS), n members
 *   BEAT   members (the origin's count in the room: a heartbeat)
 * Nothing may follow the last field of a kind without a payload.
 */
#ifndef WTRELAYD_CLUSTER_MSG_H
#define WTRELAYD_CLUSTER_MSG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CLUSTER_MSG_VERSION 1
#define CLUSTER_MSG_HEADER 10
#define CLUSTER_MSG_MAX_DGRAM 65535
#define CLUSTER_MSG_MAX_CHUNK 16384
#define CLUSTER_MSG_MAX_IDS 128
/* the largest message any kind can make */
#define CLUSTER_MSG_MAX (CLUSTER_MSG_HEADER + 4 * 8 + 1 + CLUSTER_MSG_MAX_DGRAM)

enum cluster_msg_kind {
    CLUSTER_MSG_DGRAM = 1,
    CLUSTER_MSG_CHUNK,
    CLUSTER_MSG_RESET,
    CLUSTER_MSG_JOIN,
    CLUSTER_MSG_LEAVE,
    CLUSTER_MSG_HELLO,
    CLUSTER_MSG_BEAT,
};

/* HELLO flags: answer with your own HELLO; the first and the last part of
 * the origin's member list (a list longer than CLUSTER_MSG_MAX_IDS comes
 * in parts; the receiver replaces what it knew once the last arrives). */
#define CLUSTER_HELLO_ASK 1u
#define CLUSTER_HELLO_FIRST 2u
#define CLUSTER_HELLO_LAST 4u

struct cluster_msg {
    int kind;
    uint64_t origin;
    uint64_t member; /* DGRAM, CHUNK, RESET, JOIN, LEAVE */
    uint64_t stream, offset; /* CHUNK, RESET (stream) */
    uint32_t code;           /* RESET */
    int fin;                 /* CHUNK */
    const uint8_t *payload;  /* DGRAM, CHUNK: into the decoded buffer */
    size_t len;
    unsigned flags; /* HELLO */
    uint64_t count; /* BEAT */
    size_t nids;    /* HELLO */
    uint64_t ids[CLUSTER_MSG_MAX_IDS];
};

/* Bytes of m encoded into out (cap bytes), or -1 when m is not valid or
 * does not fit. */
ssize_t cluster_msg_encode(const struct cluster_msg *m, uint8_t *out,
                           size_t cap);
/* 0 with m filled (payload pointing into p), or -1: not a message of
 * this version, unknown kind, a field out of range, bytes missing or
 * left over. */
int cluster_msg_decode(const uint8_t *p, size_t n, struct cluster_msg *m);

#endif
