/* utf8: the strict decoder against a reference that decodes the code point
 * and checks its range, for every sequence of one to three bytes and every
 * four-byte lead with each second byte; and whole strings. */
#include "t.h"
#include "utf8.h"

/* The reference: decode, then refuse overlongs, surrogates, > U+10FFFF. */
static size_t ref_len(const uint8_t *p, size_t n)
{
    size_t len;
    uint32_t cp, min;

    if (p[0] < 0x80)
        return 1;
    if ((p[0] & 0xe0) == 0xc0)
        len = 2, cp = p[0] & 0x1f, min = 0x80;
    else if ((p[0] & 0xf0) == 0xe0)
        len = 3, cp = p[0] & 0x0f, min = 0x800;
    else if ((p[0] & 0xf8) == 0xf0)
        len = 4, cp = p[0] & 0x07, min = 0x10000;
    else
        return 0;
    if (n < len)
        return 0;
    for (size_t k = 1; k < len; k++) {
        if ((p[k] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

T_TEST(every_short_sequence)
{
    uint8_t b[4];

    for (uint32_t v = 0; v < 1u << 24; v++) {
        b[0] = (uint8_t)(v >> 16), b[1] = (uint8_t)(v >> 8), b[2] = (uint8_t)v;
        for (size_t n = 1; n <= 3; n++)
            T_EQ(utf8_len(b, n), ref_len(b, n));
    }
    for (uint32_t v = 0; v < 1u << 16; v++) {
        b[0] = (uint8_t)(v >> 8), b[1] = (uint8_t)v, b[2] = 0x80, b[3] = 0xbf;
        T_EQ(utf8_len(b, 4), ref_len(b, 4));
    }
}

T_TEST(strings)
{
    T_CHECK(utf8_valid((const uint8_t *)"", 0));
    T_CHECK(utf8_valid((const uint8_t *)"bye \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 13));
    T_CHECK(!utf8_valid((const uint8_t *)"\xc0\xaf", 2));         /* overlong */
    T_CHECK(!utf8_valid((const uint8_t *)"\xed\xa0\x80", 3));     /* surrogate */
    T_CHECK(!utf8_valid((const uint8_t *)"\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    T_CHECK(!utf8_valid((const uint8_t *)"ok\xe2\x82", 4));       /* cut short */
}

int main(void)
{
    T_RUN(every_short_sequence);
    T_RUN(strings);
    T_DONE();
}
