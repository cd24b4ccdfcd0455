/*
 * HTTP Structured Fields as the subprotocol negotiation reads them
 * (src/sf.c: sf_list_parse for WT-Available-Protocols / quiche's
 * WebTransport-Subprotocols-Available, sf_item_parse for WT-Protocol),
 * and their serialisation (sf_append).  The header values are the
 * peer's.
 *
 * Input: a flags byte (bit 0: Tokens rather than Strings; bits 1-5: the
 * most members taken; bit 6: a small output buffer), then the field.
 *
 * Properties: a parsed List has at most the members asked for, each a
 * NUL-terminated value inside the output buffer that is a valid String
 * (resp. Token); serialised again and parsed, it gives the same values;
 * an Item likewise; a List of one member parses as the Item does.
 */
#include "fuzz.h"
#include "sf.h"

#define MAXV 32

static char out[8192], out2[8192], ser[16384];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    uint8_t flags = fuzz_u8(&in);
    enum sf_type type = flags & 1 ? SF_TOKEN : SF_STRING;
    size_t max = (flags >> 1) & 31, outlen = flags & 64 ? 64 : sizeof(out);
    const char *f = (const char *)in.p;
    struct sf_value v[MAXV], v2[MAXV], item;
    size_t count = 99, c2 = 0;
    ssize_t used = 0;
    int rv;

    if (in.n > 4096)
        return 0;
    rv = sf_list_parse(f, in.n, type, out, outlen, v, max, &count);
    FUZZ_CHECK(rv == 0 || rv == SF_ERR_SYNTAX || rv == SF_ERR_TYPE ||
               rv == SF_ERR_LIMIT);
    if (rv == 0) {
        FUZZ_CHECK(count <= max);
        for (size_t i = 0; i < count; i++) {
            FUZZ_CHECK(v[i].s >= out && v[i].s + v[i].len < out + outlen);
            FUZZ_CHECK(v[i].s[v[i].len] == '\0' && strlen(v[i].s) == v[i].len);
            FUZZ_CHECK(type == SF_TOKEN ? sf_is_token(v[i].s, v[i].len)
                                        : sf_is_string(v[i].s, v[i].len));
            used = sf_append(ser, sizeof(ser), (size_t)used, type, v[i].s,
                             v[i].len);
            FUZZ_CHECK(used > 0);
        }
        FUZZ_CHECK(sf_list_parse(ser, (size_t)used, type, out2, sizeof(out2),
                                 v2, MAXV, &c2) == 0);
        FUZZ_CHECK(c2 == count);
        for (size_t i = 0; i < count; i++)
            FUZZ_CHECK(v2[i].len == v[i].len &&
                       memcmp(v2[i].s, v[i].s, v[i].len) == 0);
    }
    rv = sf_item_parse(f, in.n, type, out, outlen, &item);
    FUZZ_CHECK(rv == 0 || rv == SF_ERR_SYNTAX || rv == SF_ERR_TYPE ||
               rv == SF_ERR_LIMIT);
    if (rv == 0) {
        struct sf_value l[2], again;
        size_t n = 0;
        char one[8192];

        FUZZ_CHECK(item.s >= out && item.s + item.len < out + outlen &&
                   strlen(item.s) == item.len);
        used = sf_append(ser, sizeof(ser), 0, type, item.s, item.len);
        FUZZ_CHECK(used > 0);
        FUZZ_CHECK(sf_item_parse(ser, (size_t)used, type, out2, sizeof(out2),
                                 &again) == 0);
        FUZZ_CHECK(again.len == item.len &&
                   memcmp(again.s, item.s, item.len) == 0);
        /* the same bytes as a List: one member, the same value */
        FUZZ_CHECK(sf_list_parse(f, in.n, type, one, sizeof(one), l, 2, &n) ==
                   0);
        FUZZ_CHECK(n == 1 && l[0].len == item.len &&
                   memcmp(l[0].s, item.s, item.len) == 0);
    }
    return 0;
}
