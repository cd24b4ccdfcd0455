/* siphash: the published test vectors. */
#include "t.h"

#include "siphash.h"

/* SipHash-2-4 paper, Appendix A: key 00..0f, message 00..0e (15 bytes) */
T_TEST(siphash_vectors)
{
    uint8_t m[64];
    uint64_t k0 = 0x0706050403020100ULL, k1 = 0x0f0e0d0c0b0a0908ULL;

    for (int i = 0; i < 64; i++)
        m[i] = (uint8_t)i;
    T_EQ(siphash24(k0, k1, m, 15), 0xa129ca6149be45e5ULL);
    /* reference implementation's vectors[0] and [8] (empty, 8 bytes) */
    T_EQ(siphash24(k0, k1, m, 0), 0x726fdb47dd0e0e31ULL);
    T_EQ(siphash24(k0, k1, m, 8), 0x93f5f5799a932462ULL);
    /* another key, another hash */
    T_CHECK(siphash24(k0 + 1, k1, m, 16) != siphash24(k0, k1, m, 16));
}

int main(void)
{
    T_RUN(siphash_vectors);
    T_DONE();
}
