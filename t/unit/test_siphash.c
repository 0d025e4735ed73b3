
/*
 * Unit tests of ngx_http_ai_siphash(): SipHash-2-4's reference vectors
 * (key 00..0f, messages 00..len-1: the first and last lengths of a
 * block, a block and its tail), and a key that changes every bucket.
 */


#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>

#include "ngx_http_ai_core_module.h"


static void
test_vectors(void **state)
{
    u_char      key[16], msg[16];
    ngx_uint_t  i;

    static const struct {
        size_t    len;
        uint64_t  hash;
    } v[] = {
        { 0, 0x726fdb47dd0e0e31ULL },
        { 1, 0x74f839c593dc67fdULL },
        { 2, 0x0d6c8009d9a94f5aULL },
        { 3, 0x85676696d7fb7e2dULL },
        { 7, 0xab0200f58b01d137ULL },
        { 8, 0x93f5f5799a932462ULL },
        { 9, 0x9e0082df0ba9e4b0ULL },
        { 15, 0xa129ca6149be45e5ULL }
    };

    for (i = 0; i < 16; i++) {
        key[i] = (u_char) i;
        msg[i] = (u_char) i;
    }

    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        if (ngx_http_ai_siphash(key, msg, v[i].len) != v[i].hash) {
            fail_msg("%zu bytes: %016llx, the reference %016llx", v[i].len,
                     (unsigned long long) ngx_http_ai_siphash(key, msg,
                                                              v[i].len),
                     (unsigned long long) v[i].hash);
        }
    }
}


/* another key: the same keys land in other buckets */

static void
test_keyed(void **state)
{
    u_char      a[16], b[16], k[32];
    ngx_uint_t  i, same;

    for (i = 0; i < 16; i++) {
        a[i] = (u_char) i;
        b[i] = (u_char) (i + 1);
    }

    same = 0;

    for (i = 0; i < 1000; i++) {
        snprintf((char *) k, sizeof(k), "limit:%u", (unsigned) i);

        same += (ngx_http_ai_siphash(a, k, ngx_strlen(k)) & 1023)
                == (ngx_http_ai_siphash(b, k, ngx_strlen(k)) & 1023);
    }

    /* about one in 1024 by chance */
    assert_true(same < 10);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_keyed),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
