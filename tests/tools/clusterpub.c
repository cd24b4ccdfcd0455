/*
 * clusterpub: a hostile daemon on Redis, for tests/it/99-cluster-hostile.sh.
 * Publishes well-formed cluster messages (src/cluster_msg.c) on one room's
 * channel as a made-up origin, pipelined, as fast as Redis takes them:
 *
 *   clusterpub HOST PORT PREFIX PATH ROOM ORIGIN hello N BASE
 *       a HELLO list of N member ids BASE, BASE+1, ... (in parts)
 *   clusterpub HOST PORT PREFIX PATH ROOM ORIGIN joins N BASE
 *       N JOINs of the ids BASE, BASE+1, ... (again and again: N may
 *       exceed any list; ids wrap at 100 000)
 *   clusterpub HOST PORT PREFIX PATH ROOM ORIGIN streams N SID0 MEMBER
 *       N streams opened (a first chunk, no FIN) from MEMBER
 *   clusterpub HOST PORT PREFIX PATH ROOM ORIGIN beat COUNT
 *
 * Exit 0 once Redis has answered every PUBLISH.
 */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_msg.h"

static redisContext *rc;
static char chan[512];
static size_t clen;
static uint8_t buf[CLUSTER_MSG_MAX];
static unsigned long queued;

static void pub(const struct cluster_msg *m)
{
    ssize_t n = cluster_msg_encode(m, buf, sizeof(buf));

    if (n < 0) {
        fprintf(stderr, "clusterpub: cannot encode\n");
        exit(2);
    }
    redisAppendCommand(rc, "PUBLISH %b %b", chan, clen, buf, (size_t)n);
    /* a bounded pipeline: replies read every 256 */
    if (++queued % 256 == 0)
        for (int i = 0; i < 256; i++) {
            void *r;

            if (redisGetReply(rc, &r) != REDIS_OK) {
                fprintf(stderr, "clusterpub: %s\n", rc->errstr);
                exit(1);
            }
            freeReplyObject(r);
        }
}

int main(int argc, char **argv)
{
    static struct cluster_msg m;
    unsigned long long n, base;
    const char *cmd;

    if (argc < 9) {
        fprintf(stderr, "usage: clusterpub HOST PORT PREFIX PATH ROOM ORIGIN "
                        "hello|joins|streams|beat ARGS\n");
        return 2;
    }
    /* prefix ":" path NUL room, as cluster.c names a room's channel */
    clen = (size_t)snprintf(chan, sizeof(chan), "%s:%s", argv[3], argv[4]);
    if (clen + 1 + strlen(argv[5]) > sizeof(chan))
        return 2;
    chan[clen++] = 0;
    memcpy(chan + clen, argv[5], strlen(argv[5]));
    clen += strlen(argv[5]);
    if (!(rc = redisConnect(argv[1], atoi(argv[2]))) || rc->err) {
        fprintf(stderr, "clusterpub: cannot connect to Redis\n");
        return 1;
    }
    m.origin = strtoull(argv[6], NULL, 0);
    cmd = argv[7];
    n = strtoull(argv[8], NULL, 0);
    base = argc > 9 ? strtoull(argv[9], NULL, 0) : 0;
    if (strcmp(cmd, "hello") == 0) {
        unsigned long long done = 0;

        m.kind = CLUSTER_MSG_HELLO;
        do {
            m.nids = 0;
            while (m.nids < CLUSTER_MSG_MAX_IDS && done < n)
                m.ids[m.nids++] = base + done++;
            m.flags = (done == m.nids ? CLUSTER_HELLO_FIRST : 0) |
                      (done == n ? CLUSTER_HELLO_LAST : 0);
            pub(&m);
        } while (done < n);
    } else if (strcmp(cmd, "joins") == 0) {
        m.kind = CLUSTER_MSG_JOIN;
        for (unsigned long long i = 0; i < n; i++) {
            m.member = base + i % 100000;
            pub(&m);
        }
    } else if (strcmp(cmd, "streams") == 0) {
        static const uint8_t data[32] = "hostile stream, never ending..";

        m.kind = CLUSTER_MSG_CHUNK;
        m.member = argc > 10 ? strtoull(argv[10], NULL, 0) : 1;
        m.payload = data;
        m.len = sizeof(data);
        for (unsigned long long i = 0; i < n; i++) {
            m.stream = base + i;
            pub(&m);
        }
    } else if (strcmp(cmd, "beat") == 0) {
        m.kind = CLUSTER_MSG_BEAT;
        m.count = n;
        pub(&m);
    } else {
        fprintf(stderr, "clusterpub: unknown command %s\n", cmd);
        return 2;
    }
    for (unsigned long i = queued - queued % 256; i < queued; i++) {
        void *r;

        if (redisGetReply(rc, &r) != REDIS_OK)
            return 1;
        freeReplyObject(r);
    }
    redisFree(rc);
    printf("published %lu\n", queued);
    return 0;
}
