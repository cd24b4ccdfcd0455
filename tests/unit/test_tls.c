/* Unit tests of src/tls.c that need no sockets. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "t.h"
#include "tls.h"

T_TEST(cert_hash_parse)
{
    uint8_t h[32];
    const char *hex =
        "33687519b8721442af06917f0c2b01e426c24de358e7fccb2d0119ea6930b8dc";

    T_EQ(tls_cert_hash_parse(hex, h), 0);
    T_EQ(h[0], 0x33);
    T_EQ(h[31], 0xdc);
    /* openssl's colon form and upper case */
    T_EQ(tls_cert_hash_parse("33:68:75:19:B8:72:14:42:AF:06:91:7F:0C:2B:01:E4:"
                             "26:C2:4D:E3:58:E7:FC:CB:2D:01:19:EA:69:30:B8:DC",
                             h),
         0);
    T_EQ(h[4], 0xb8);
    T_EQ(tls_cert_hash_parse("", h), -1);
    T_EQ(tls_cert_hash_parse("3368", h), -1);                 /* short */
    T_EQ(tls_cert_hash_parse("zz687519b8721442af06917f0c2b01e426c24de358e7fccb"
                             "2d0119ea6930b8dc",
                             h),
         -1);                                                 /* not hex */
    T_EQ(tls_cert_hash_parse("33687519b8721442af06917f0c2b01e426c24de358e7fccb"
                             "2d0119ea6930b8dc00",
                             h),
         -1);                                                 /* long */
}

/* A test-only key pair (never used anywhere else) and the secret derived
 * from the key, computed independently with
 *   printf 'wtrelayd stateless reset secret v1' |
 *     openssl dgst -sha256 -mac HMAC -macopt hexkey:$(xxd -p key.pem | tr -d '\n')
 * The value is pinned: a new derivation would make a restarted (upgraded)
 * daemon's stateless resets unrecognisable to the old process's clients. */
static const char test_key[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgNsgAMNtODf2rZTDY\n"
    "qpvAQHhQIUUTc4vdQVOF8yWetfGhRANCAAT/dfziJCytm/cRvhwAhOw6ADDDucOQ\n"
    "NcnenIBUb/1+evtqGnKnPgm7F8tQDSr/OP9sXH+v/E0SPxN26r/7h2FZ\n"
    "-----END PRIVATE KEY-----\n";
static const char test_cert[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBkTCCATegAwIBAgIUYs6crLarJbdl5Dy5ZVbQkoL8CEkwCgYIKoZIzj0EAwIw\n"
    "HTEbMBkGA1UEAwwSd3RyZWxheWQtdW5pdC10ZXN0MCAXDTI2MTEyNjA2MDk1N1oY\n"
    "DzIxMjYxMTAyMDYwOTU3WjAdMRswGQYDVQQDDBJ3dHJlbGF5ZC11bml0LXRlc3Qw\n"
    "WTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAT/dfziJCytm/cRvhwAhOw6ADDDucOQ\n"
    "NcnenIBUb/1+evtqGnKnPgm7F8tQDSr/OP9sXH+v/E0SPxN26r/7h2FZo1MwUTAd\n"
    "BgNVHQ4EFgQU5GdVYcJ8ChIJXmIhQ0ix966EjVIwHwYDVR0jBBgwFoAU5GdVYcJ8\n"
    "ChIJXmIhQ0ix966EjVIwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBF\n"
    "AiBn9VW0EnYHoNv1qsh+7YzLf4FhXZrd0hBUJw1MY9YRqQIhAOUqNPS52zybCfkY\n"
    "NRVCZs2brOYbxNiYXJJS1FQmcyvZ\n"
    "-----END CERTIFICATE-----\n";

static int write_file(const char *path, const char *s)
{
    FILE *f = fopen(path, "w");

    if (!f)
        return -1;
    fputs(s, f);
    return fclose(f);
}

T_TEST(secret_from_key)
{
    static const uint8_t want[32] = {0xd4, 0x06, 0x19, 0xf8, 0xc2, 0xb4, 0x31, 0x3b, 0xbc, 0x97, 0x00, 0x05, 0x4e, 0xe7, 0x1e, 0xd6, 0x16, 0x48, 0x72, 0x89, 0xcf, 0x8a, 0xec, 0x62, 0x6f, 0x06, 0x67, 0xa2, 0x4b, 0x7c, 0x68, 0x07};
    char dir[] = "/tmp/wtrelayd-unit.XXXXXX", cert[64], key[64], err[256];
    struct tls_ctx *a, *b;

    T_CHECK(mkdtemp(dir) != NULL);
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    T_EQ(write_file(cert, test_cert), 0);
    T_EQ(write_file(key, test_key), 0);
    a = tls_ctx_new(cert, key, err, sizeof(err));
    b = tls_ctx_new(cert, key, err, sizeof(err));
    unlink(cert);
    unlink(key);
    rmdir(dir);
    T_CHECK(a && b);
    T_MEMEQ(tls_ctx_secret(a), want, 32);
    T_MEMEQ(tls_ctx_secret(b), want, 32);
    /* notAfter 2126-11-02 06:09:57 UTC; ECDSA P-256 but valid 100 years:
     * browsers would not take it by hash */
    T_EQ(tls_ctx_cert_not_after(a), 4949273397LL);
    T_EQ(tls_ctx_cert_hashable(a), 0);
    tls_ctx_free(a);
    tls_ctx_free(b);
}

int main(void)
{
    T_RUN(cert_hash_parse);
    T_RUN(secret_from_key);
    T_DONE();
}
