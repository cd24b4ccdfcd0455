/*
 * mktoken CERT KEY [new-token [ADDR]]: prints, in hex, a Retry token that wtrelayd, loaded with
 * this key, can decrypt but must refuse, and the connection ID it is bound
 * to: the token names a client address (192.0.2.1:9) no test client has.
 * The integration tests send it with wtclient --token --dcid to drive the
 * INVALID_TOKEN path, which forged bytes never reach (ngtcp2 authenticates
 * the connection ID, so those are merely unreadable).  With "new-token":
 * a NEW_TOKEN token for that address instead (no connection ID), which the
 * daemon must ignore; with an IPv4 ADDR too, a NEW_TOKEN token for that
 * address, which a daemon holding this key (or, after a reload to another
 * key, still holding it as the old secret) accepts in place of a Retry.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include <ngtcp2/ngtcp2_crypto.h>

#include "quic.h"
#include "tls.h"

int main(int argc, char **argv)
{
    uint8_t token[NGTCP2_CRYPTO_MAX_RETRY_TOKENLEN2];
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(9)};
    ngtcp2_cid scid = {.datalen = 18}, odcid = {.datalen = 8};
    struct tls_ctx *ctx;
    ngtcp2_ssize n;
    char err[256];

    if (argc < 3 || argc > 5 ||
        (argc >= 4 && strcmp(argv[3], "new-token") != 0)) {
        fprintf(stderr, "usage: mktoken CERT KEY [new-token [ADDR]]\n");
        return 2;
    }
    ctx = tls_ctx_new(argv[1], argv[2], err, sizeof(err));
    if (!ctx) {
        fprintf(stderr, "mktoken: %s\n", err);
        return 1;
    }
    if (inet_pton(AF_INET, argc == 5 ? argv[4] : "192.0.2.1", &sa.sin_addr) !=
        1) {
        fprintf(stderr, "mktoken: not an IPv4 address: %s\n", argv[4]);
        tls_ctx_free(ctx);
        return 2;
    }
    memset(scid.data, 0x5c, scid.datalen);
    memset(odcid.data, 0x0d, odcid.datalen);
    if (argc >= 4)
        n = ngtcp2_crypto_generate_regular_token(
            token, tls_ctx_secret(ctx), 32, (const ngtcp2_sockaddr *)&sa,
            sizeof(sa), quic_now());
    else
        n = ngtcp2_crypto_generate_retry_token2(
            token, tls_ctx_secret(ctx), 32, NGTCP2_PROTO_VER_V1,
            (const ngtcp2_sockaddr *)&sa, sizeof(sa), &scid, &odcid,
            quic_now());
    tls_ctx_free(ctx);
    if (n < 0) {
        fprintf(stderr, "mktoken: cannot make a token\n");
        return 1;
    }
    for (ngtcp2_ssize i = 0; i < n; i++)
        printf("%02x", token[i]);
    printf(" ");
    for (size_t i = 0; i < scid.datalen; i++)
        printf("%02x", scid.data[i]);
    printf("\n");
    return 0;
}
