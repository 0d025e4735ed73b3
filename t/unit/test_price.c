
/*
 * Unit tests of the writing of numbers and of prices: ngx_http_ai_digits()
 * writes what printf("%llu") writes, and only that, for every number up to
 * a million, each power of ten and its neighbours, the largest, and a
 * million more drawn at random; ngx_http_ai_parse_micros() reads prices
 * with at most 6 decimals and 18 digits, exactly.
 */


#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>

#include "ngx_http_ai_core_module.h"


static void
check_digits(uint64_t n)
{
    int      len;
    u_char  *end, buf[NGX_INT64_LEN + 8];
    char     expect[32];

    len = snprintf(expect, sizeof(expect), "%llu", (unsigned long long) n);

    ngx_memset(buf, 'x', sizeof(buf));

    end = ngx_http_ai_digits(buf, n);

    assert_int_equal(end - buf, len);
    assert_memory_equal(buf, expect, len);

    /* nothing written past the end */
    assert_int_equal(buf[len], 'x');
}


static void
test_digits(void **state)
{
    uint64_t    n, p, x;
    ngx_uint_t  i;

    for (n = 0; n <= 1000000; n++) {
        check_digits(n);
    }

    for (p = 1; ; p *= 10) {
        check_digits(p - 1);
        check_digits(p);
        check_digits(p + 1);

        if (p > UINT64_MAX / 10) {
            break;
        }
    }

    check_digits(UINT64_MAX);
    check_digits(UINT64_MAX - 1);
    check_digits((uint64_t) INT64_MAX);
    check_digits((uint64_t) INT64_MAX + 1);

    /* xorshift64: numbers of every length */

    x = 88172645463325252ULL;

    for (i = 0; i < 1000000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;

        check_digits(x >> (i % 64));
    }
}


static void
test_micros(void **state)
{
    int64_t     v;
    ngx_str_t   s;
    ngx_uint_t  i;

    static const struct {
        const char  *text;
        ngx_int_t    rc;
        int64_t      value;
    } c[] = {
        { "0", NGX_OK, 0 },
        { "2.5", NGX_OK, 2500000 },
        { "0.000001", NGX_OK, 1 },
        { "1000", NGX_OK, 1000000000 },
        { ".5", NGX_OK, 500000 },
        { "5.", NGX_OK, 5000000 },
        { "999999999999.999999", NGX_OK, 999999999999999999LL },
        { "0.0000001", NGX_ERROR, 0 },
        { "1000000000000.000000", NGX_ERROR, 0 },
        { "1.2.3", NGX_ERROR, 0 },
        { "-1", NGX_ERROR, 0 },
        { "1e3", NGX_ERROR, 0 },
        { ".", NGX_ERROR, 0 },
        { "", NGX_ERROR, 0 },
    };

    for (i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        s.data = (u_char *) c[i].text;
        s.len = ngx_strlen(c[i].text);

        assert_int_equal(ngx_http_ai_parse_micros(&s, &v), c[i].rc);

        if (c[i].rc == NGX_OK) {
            assert_true(v == c[i].value);
        }
    }
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_digits),
        cmocka_unit_test(test_micros),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
