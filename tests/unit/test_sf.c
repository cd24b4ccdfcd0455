/* Unit tests of src/sf.c: the Lists and Items of subprotocol negotiation,
 * well-formed and hostile. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sf.h"
#include "t.h"

static char buf[512];
static struct sf_value v[8];
static size_t n;

static int list(const char *s, enum sf_type t)
{
    return sf_list_parse(s, strlen(s), t, buf, sizeof(buf), v, 8, &n);
}

T_TEST(list_of_strings)
{
    T_EQ(list("\"chat.v2\", \"chat.v1\"", SF_STRING), 0);
    T_EQ(n, 2);
    T_STREQ(v[0].s, "chat.v2");
    T_EQ(v[0].len, 7);
    T_STREQ(v[1].s, "chat.v1");
    /* no space, tabs around the comma, surrounding whitespace */
    T_EQ(list(" \"a\",\"b\"\t,  \"c\" ", SF_STRING), 0);
    T_EQ(n, 3);
    T_STREQ(v[2].s, "c");
    /* escapes are removed; an empty string is a value */
    T_EQ(list("\"q\\\"x\\\\y\", \"\"", SF_STRING), 0);
    T_EQ(n, 2);
    T_STREQ(v[0].s, "q\"x\\y");
    T_EQ(v[1].len, 0);
    /* parameters are parsed and ignored */
    T_EQ(list("\"a\";q=1;v=\"x\";t=tok;b;d=1.5;n=-3;by=:AAE=:;f=?0, \"b\";x",
              SF_STRING),
         0);
    T_EQ(n, 2);
    T_STREQ(v[0].s, "a");
    T_STREQ(v[1].s, "b");
}

T_TEST(list_empty)
{
    /* Safari is reported to send an empty WT-Available-Protocols */
    T_EQ(list("", SF_STRING), 0);
    T_EQ(n, 0);
    T_EQ(list("   ", SF_STRING), 0);
    T_EQ(n, 0);
}

T_TEST(list_of_tokens)
{
    T_EQ(list("chat.v2, chat/v1, *star, a:b", SF_TOKEN), 0);
    T_EQ(n, 4);
    T_STREQ(v[0].s, "chat.v2");
    T_STREQ(v[1].s, "chat/v1");
    T_STREQ(v[2].s, "*star");
    T_STREQ(v[3].s, "a:b");
}

T_TEST(list_wrong_type)
{
    /* RFC: any other type makes the whole field ignored */
    T_EQ(list("\"a\", b", SF_STRING), SF_ERR_TYPE);
    T_EQ(list("a, \"b\"", SF_TOKEN), SF_ERR_TYPE);
    T_EQ(list("\"a\", 1", SF_STRING), SF_ERR_TYPE);
    T_EQ(list("\"a\", ?1", SF_STRING), SF_ERR_TYPE);
    T_EQ(list("\"a\", :AAA=:", SF_STRING), SF_ERR_TYPE);
    T_EQ(list("(\"a\" \"b\")", SF_STRING), SF_ERR_TYPE);
    T_EQ(list("@12345", SF_STRING), SF_ERR_TYPE);
}

T_TEST(list_malformed)
{
    static const char *const bad[] = {
        "\"a\",",          /* trailing comma */
        ",\"a\"",          /* leading comma */
        "\"a\",,\"b\"",    /* empty member */
        "\"a\" \"b\"",     /* no comma */
        "\"a",             /* unterminated */
        "\"a\\x\"",        /* bad escape */
        "\"a\\",           /* escape at the end */
        "\"a\tb\"",        /* control inside a string */
        "\"\xc3\xa9\"",    /* non-ASCII inside a string */
        "\"a\";",          /* parameter without a key */
        "\"a\";K=1",       /* uppercase key */
        "\"a\";k=",        /* parameter without a value */
        "\"a\";k=1.",      /* decimal without fraction */
        "\"a\";k=1234567890123456", /* 16-digit integer */
        "\"a\";k=1.2345",  /* 4 fraction digits */
        "\"a\";k=:ab*:",   /* not base64 */
        "\"a\";k=?2",      /* not a boolean */
        "\"a\";k=%\"\x01\"", /* control in a display string */
        "\"a\" ;k=1",      /* space before ';' */
        "!",               /* not an item */
        "\xff",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        T_EQ(list(bad[i], SF_STRING), SF_ERR_SYNTAX);
    T_EQ(list("a,", SF_TOKEN), SF_ERR_SYNTAX);
    T_EQ(list("a b", SF_TOKEN), SF_ERR_SYNTAX);
    T_EQ(list("a\x7f", SF_TOKEN), SF_ERR_SYNTAX);
}

T_TEST(list_limits)
{
    char big[600];
    size_t k;

    /* 9 members where 8 fit */
    T_EQ(list("a,b,c,d,e,f,g,h,i", SF_TOKEN), SF_ERR_LIMIT);
    T_EQ(list("a,b,c,d,e,f,g,h", SF_TOKEN), 0);
    T_EQ(n, 8);
    /* a value longer than the output buffer */
    big[0] = '"';
    for (k = 1; k < sizeof(big) - 2; k++)
        big[k] = 'x';
    big[k++] = '"';
    big[k] = '\0';
    T_EQ(list(big, SF_STRING), SF_ERR_LIMIT);
    /* the input is not NUL-terminated: only inlen bytes are read */
    T_EQ(sf_list_parse("\"ab\"XYZ", 4, SF_STRING, buf, sizeof(buf), v, 8, &n),
         0);
    T_STREQ(v[0].s, "ab");
    T_EQ(sf_list_parse("\"ab", 3, SF_STRING, buf, sizeof(buf), v, 8, &n),
         SF_ERR_SYNTAX);
    /* exactly enough room: "ab" and its NUL */
    T_EQ(sf_list_parse("\"ab\"", 4, SF_STRING, buf, 3, v, 8, &n), 0);
    T_EQ(sf_list_parse("\"ab\"", 4, SF_STRING, buf, 2, v, 8, &n),
         SF_ERR_LIMIT);
}

T_TEST(item)
{
    struct sf_value x;

    T_EQ(sf_item_parse("\"chat.v2\"", 9, SF_STRING, buf, sizeof(buf), &x), 0);
    T_STREQ(x.s, "chat.v2");
    T_EQ(sf_item_parse("\"a\";p=1", 7, SF_STRING, buf, sizeof(buf), &x), 0);
    T_STREQ(x.s, "a");
    T_EQ(sf_item_parse("chat", 4, SF_TOKEN, buf, sizeof(buf), &x), 0);
    T_STREQ(x.s, "chat");
    T_EQ(sf_item_parse("chat", 4, SF_STRING, buf, sizeof(buf), &x),
         SF_ERR_TYPE);
    T_EQ(sf_item_parse("", 0, SF_STRING, buf, sizeof(buf), &x), SF_ERR_SYNTAX);
    /* a List is not an Item (two field lines combined) */
    T_EQ(sf_item_parse("\"a\", \"b\"", 8, SF_STRING, buf, sizeof(buf), &x),
         SF_ERR_SYNTAX);
}

T_TEST(serialise)
{
    char out[32];
    ssize_t k;

    k = sf_append(out, sizeof(out), 0, SF_STRING, "chat.v2", 7);
    T_EQ(k, 9);
    k = sf_append(out, sizeof(out), (size_t)k, SF_STRING, "a\"b\\", 4);
    T_STREQ(out, "\"chat.v2\", \"a\\\"b\\\\\"");
    /* round trip */
    T_EQ(list(out, SF_STRING), 0);
    T_EQ(n, 2);
    T_STREQ(v[1].s, "a\"b\\");
    k = sf_append(out, sizeof(out), 0, SF_TOKEN, "chat.v2", 7);
    T_STREQ(out, "chat.v2");
    T_EQ(sf_append(out, sizeof(out), 0, SF_TOKEN, "2chat", 5), -1);
    T_EQ(sf_append(out, sizeof(out), 0, SF_TOKEN, "", 0), -1);
    T_EQ(sf_append(out, sizeof(out), 0, SF_STRING, "\n", 1), -1);
    /* does not fit: -1, never past the buffer */
    T_EQ(sf_append(out, 9, 0, SF_STRING, "chat.v2", 7), -1);
    T_EQ(sf_append(out, 10, 0, SF_STRING, "chat.v2", 7), 9);
    T_CHECK(sf_is_token("a:b/c", 5));
    T_CHECK(!sf_is_token("a b", 3));
    T_CHECK(sf_is_string("a b", 3));
    T_CHECK(!sf_is_string("a\x80", 2));
}

/* Random bytes never crash the parser or make it write out of bounds
 * (ASan watches), and what it accepts re-serialises to something it
 * accepts again. */
T_TEST(fuzz)
{
    static const char alphabet[] = "\"\\,;=:()?*-.@% \tab019AZ\x01\x7f\xff";
    uint64_t x = 0x9e3779b97f4a7c15ULL;

    for (int round = 0; round < 200000; round++) {
        char in[24], out[64], again[128];
        struct sf_value vs[4];
        size_t len, cnt = 0, used = 0;
        int rv;

        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        len = x % sizeof(in);
        for (size_t k = 0; k < len; k++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            in[k] = alphabet[x % (sizeof(alphabet) - 1)];
        }
        rv = sf_list_parse(in, len, (round & 1) ? SF_TOKEN : SF_STRING, out,
                           sizeof(out), vs, 4, &cnt);
        T_CHECK(rv == 0 || rv == SF_ERR_SYNTAX || rv == SF_ERR_TYPE ||
                rv == SF_ERR_LIMIT);
        if (rv != 0)
            continue;
        for (size_t k = 0; k < cnt; k++) {
            ssize_t r = sf_append(again, sizeof(again), used,
                                  (round & 1) ? SF_TOKEN : SF_STRING, vs[k].s,
                                  vs[k].len);
            T_CHECK(r > 0);
            used = (size_t)r;
        }
        if (cnt) {
            struct sf_value ws[4];
            char o2[128];
            size_t c2;

            T_EQ(sf_list_parse(again, used, (round & 1) ? SF_TOKEN : SF_STRING,
                               o2, sizeof(o2), ws, 4, &c2),
                 0);
            T_EQ(c2, cnt);
            for (size_t k = 0; k < cnt; k++)
                T_CHECK(ws[k].len == vs[k].len &&
                        memcmp(ws[k].s, vs[k].s, vs[k].len) == 0);
        }
    }
}

int main(void)
{
    T_RUN(list_of_strings);
    T_RUN(list_empty);
    T_RUN(list_of_tokens);
    T_RUN(list_wrong_type);
    T_RUN(list_malformed);
    T_RUN(list_limits);
    T_RUN(item);
    T_RUN(serialise);
    T_RUN(fuzz);
    T_DONE();
}
