/* utf8: see utf8.h. */
#include "utf8.h"

size_t utf8_len(const uint8_t *p, size_t n)
{
    uint8_t c = p[0], lo = 0x80, hi = 0xbf;
    size_t len, i;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4;
    else
        return 0;
    /* the second byte's range is what rules out overlong forms (e0, f0),
     * surrogates (ed) and code points past U+10FFFF (f4) */
    if (c == 0xe0)
        lo = 0xa0;
    else if (c == 0xed)
        hi = 0x9f;
    else if (c == 0xf0)
        lo = 0x90;
    else if (c == 0xf4)
        hi = 0x8f;
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return len;
}

int utf8_valid(const uint8_t *p, size_t n)
{
    size_t i = 0, len;

    while (i < n) {
        if (!(len = utf8_len(p + i, n - i)))
            return 0;
        i += len;
    }
    return 1;
}
