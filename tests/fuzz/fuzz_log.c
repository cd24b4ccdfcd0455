/*
 * The log escapers (src/log.c log_json_escape, log_text_escape): every
 * peer string that reaches a log line (paths, origins, close reasons,
 * room names) goes through one of them.
 *
 * Input: two bytes of output capacity, then the string (any bytes).
 *
 * Properties: the output is NUL-terminated within the capacity and as
 * long as returned; it holds no control character (C0, DEL, C1) and is
 * valid UTF-8; a smaller capacity gives a prefix of the full output that
 * ends between escapes; unescaped, the full JSON output of valid UTF-8 is
 * the input again, and the full text output of anything is.
 */
#include "fuzz.h"
#include "log.h"

#define BIG (6 * 4096 + 16)

static char full[BIG], part[BIG];
static uint8_t back[4 * 4096 + 16];

/* Strict UTF-8 (RFC 3629), no C0, DEL or C1 controls. */
static int clean_utf8(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint8_t c = p[i];
        size_t len;
        uint32_t cp;

        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f)
                return 0;
            i++;
            continue;
        }
        len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
        if (len == 0 || c > 0xf4 || n - i < len)
            return 0;
        cp = c & (0x7f >> len);
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
            (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp < 0xa0))
            return 0;
        i += len;
    }
    return 1;
}

/* Valid UTF-8, controls allowed: what JSON carries back unchanged. */
static int utf8_only(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint8_t c = p[i];
        size_t len;
        uint32_t cp;

        if (c < 0x80) {
            i++;
            continue;
        }
        len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
        if (len == 0 || c > 0xf4 || n - i < len)
            return 0;
        cp = c & (0x7f >> len);
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
            (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += len;
    }
    return 1;
}

static int hexv(char c)
{
    return c >= '0' && c <= '9' ? c - '0'
         : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* A JSON string body back to bytes; -1 on a bad escape. */
static long json_unescape(const char *s, size_t n, uint8_t *out)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned cp = 0;

        if (s[i] == '"')
            return -1; /* a raw quote would end the string */
        if (s[i] != '\\') {
            out[o++] = (uint8_t)s[i];
            continue;
        }
        if (++i >= n)
            return -1;
        switch (s[i]) {
        case '"': case '\\': case '/': out[o++] = (uint8_t)s[i]; continue;
        case 'n': out[o++] = '\n'; continue;
        case 'r': out[o++] = '\r'; continue;
        case 't': out[o++] = '\t'; continue;
        case 'b': out[o++] = '\b'; continue;
        case 'f': out[o++] = '\f'; continue;
        case 'u': break;
        default: return -1;
        }
        if (n - i < 5)
            return -1;
        for (int k = 1; k <= 4; k++) {
            int h = hexv(s[i + k]);

            if (h < 0)
                return -1;
            cp = cp << 4 | (unsigned)h;
        }
        i += 4;
        if (cp >= 0xd800 && cp <= 0xdfff)
            return -1; /* never written alone */
        if (cp < 0x80) {
            out[o++] = (uint8_t)cp;
        } else if (cp < 0x800) {
            out[o++] = (uint8_t)(0xc0 | cp >> 6);
            out[o++] = (uint8_t)(0x80 | (cp & 0x3f));
        } else {
            out[o++] = (uint8_t)(0xe0 | cp >> 12);
            out[o++] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
            out[o++] = (uint8_t)(0x80 | (cp & 0x3f));
        }
    }
    return (long)o;
}

/* The text shape back to bytes: \" \\ \xNN; -1 on anything else. */
static long text_unescape(const char *s, size_t n, uint8_t *out)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\') {
            out[o++] = (uint8_t)s[i];
            continue;
        }
        if (++i >= n)
            return -1;
        if (s[i] == '"' || s[i] == '\\') {
            out[o++] = (uint8_t)s[i];
        } else if (s[i] == 'x' && n - i >= 3 && hexv(s[i + 1]) >= 0 &&
                   hexv(s[i + 2]) >= 0) {
            out[o++] = (uint8_t)(hexv(s[i + 1]) * 16 + hexv(s[i + 2]));
            i += 2;
        } else {
            return -1;
        }
    }
    return (long)o;
}

static void check(int json, const char *p, size_t n, size_t cap)
{
    size_t (*esc)(char *, size_t, const char *, size_t) =
        json ? log_json_escape : log_text_escape;
    size_t fl = esc(full, sizeof(full), p, n), pl;
    long bl;

    FUZZ_CHECK(fl < sizeof(full) && full[fl] == 0 && strlen(full) == fl);
    FUZZ_CHECK(clean_utf8((const uint8_t *)full, fl));
    bl = json ? json_unescape(full, fl, back) : text_unescape(full, fl, back);
    FUZZ_CHECK(bl >= 0);
    if (!json || utf8_only((const uint8_t *)p, n))
        FUZZ_CHECK((size_t)bl == n && memcmp(back, p, n) == 0);
    /* a smaller buffer: a prefix of the same output, cut between escapes */
    memset(part, 'Z', cap + 1);
    pl = esc(part, cap, p, n);
    if (cap == 0) {
        FUZZ_CHECK(pl == 0 && part[0] == 'Z'); /* nothing written at all */
        return;
    }
    FUZZ_CHECK(pl < cap && part[pl] == 0 && pl <= fl);
    FUZZ_CHECK(memcmp(part, full, pl) == 0);
    FUZZ_CHECK(json ? json_unescape(part, pl, back) >= 0
                    : text_unescape(part, pl, back) >= 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    size_t cap = (size_t)fuzz_u8(&in) << 8;

    cap |= fuzz_u8(&in);
    if (in.n > 4096)
        return 0;
    if (cap >= BIG)
        cap = BIG - 1;
    check(1, (const char *)in.p, in.n, cap);
    check(0, (const char *)in.p, in.n, cap);
    return 0;
}
