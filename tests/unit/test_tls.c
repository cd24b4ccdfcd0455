/* Unit tests of the pure part of src/tls.c. */
#include <stdint.h>
#include <string.h>

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

int main(void)
{
    T_RUN(cert_hash_parse);
    T_DONE();
}
