/* Unit tests of the connection ID table (src/quic_endpoint.c): CIDs a
 * client chooses (its first DCID is kept for its handshake) so that an
 * unkeyed hash (FNV-1a, as the table had) files them in one chain stay
 * spread under the keyed one, and every one is found and removed. */
#include <stdlib.h>
#include <string.h>

#include "quic.h"
#include "quic_internal.h"
#include "t.h"

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;

    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return h;
}

T_TEST(chosen_cids_spread)
{
    enum { N = 1000 };
    static struct quic_endpoint ep;
    static ngtcp2_cid cids[N];
    int dummy, ok = 1;
    struct quic_conn *qc = (struct quic_conn *)&dummy;

    srand(11);
    T_EQ(quic_cid_table_init(&ep, 64), 0);
    for (int k = 0; k < N;) {
        ngtcp2_cid *c = &cids[k];

        c->datalen = 8;
        for (int i = 0; i < 8; i++)
            c->data[i] = (uint8_t)rand();
        /* the low 11 bits: one bucket for every table up to 2048 */
        if ((fnv1a(c->data, c->datalen) & 2047) != 0)
            continue;
        ok &= quic_cid_add(&ep, c, qc) == 0;
        k++;
    }
    T_CHECK(ok);
    T_EQ(ep.ncids, N);
    T_CHECK(quic_cid_longest_chain(&ep) <= 12);
    for (int k = 0; k < N; k++)
        ok &= quic_cid_lookup(&ep, cids[k].data, cids[k].datalen) == qc;
    T_CHECK(ok);
    for (int k = 0; k < N; k++)
        quic_cid_remove(&ep, &cids[k]);
    T_EQ(ep.ncids, 0);
    T_CHECK(quic_cid_lookup(&ep, cids[0].data, cids[0].datalen) == NULL);
    quic_cid_table_free(&ep);
}

int main(void)
{
    T_RUN(chosen_cids_spread);
    T_DONE();
}
