/* Unit tests of src/url.c. */
#include <string.h>

#include "t.h"
#include "url.h"

T_TEST(good)
{
    struct url u;

    T_EQ(url_parse("https://127.0.0.1:4433/echo", &u), 0);
    T_STREQ(u.host, "127.0.0.1");
    T_STREQ(u.port, "4433");
    T_STREQ(u.path, "/echo");
    T_STREQ(u.authority, "127.0.0.1:4433");

    T_EQ(url_parse("https://[::1]:4433/a/b?c=d", &u), 0);
    T_STREQ(u.host, "::1");
    T_STREQ(u.port, "4433");
    T_STREQ(u.path, "/a/b?c=d");
    T_STREQ(u.authority, "[::1]:4433");

    T_EQ(url_parse("https://localhost", &u), 0);
    T_STREQ(u.host, "localhost");
    T_STREQ(u.port, "443");
    T_STREQ(u.path, "/");

    T_EQ(url_parse("https://[::1]/x", &u), 0);
    T_STREQ(u.port, "443");
}

T_TEST(bad)
{
    struct url u;
    char big[2000];

    T_EQ(url_parse("http://localhost:4433/echo", &u), -1);
    T_EQ(url_parse("https://", &u), -1);
    T_EQ(url_parse("https://:4433/echo", &u), -1);
    T_EQ(url_parse("https://host:/echo", &u), -1);
    T_EQ(url_parse("https://host:44x3/echo", &u), -1);
    T_EQ(url_parse("https://[::1/echo", &u), -1);
    T_EQ(url_parse("https://[::1]x/echo", &u), -1);
    T_EQ(url_parse("https://host?x", &u), -1);
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    memcpy(big, "https://", 8);
    T_EQ(url_parse(big, &u), -1); /* host too long */
    memcpy(big, "https://h/", 10);
    T_EQ(url_parse(big, &u), -1); /* path too long */
}

int main(void)
{
    T_RUN(good);
    T_RUN(bad);
    T_DONE();
}
