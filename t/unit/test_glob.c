
/*
 * Unit tests of the model patterns: ngx_http_ai_glob_match() says what
 * fnmatch(3) says for every pattern and name below (its own comparison
 * for names and trailing stars, fnmatch for the rest), and
 * ngx_http_ai_glob_invalid() refuses what is not a glob.
 */


#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <fnmatch.h>

#include "ngx_http_ai_core_module.h"


static const char  *globs[] = {
    "gpt-4o", "gpt-4o*", "gpt-4o-mini*", "gpt-*", "*", "g*", "gpt-4o?",
    "gpt-?o*", "*mini", "gpt-[34]o*", "gpt-4o*x", "claude-*-latest",
    "a\\*b", "o[!1]*", "**", "gpt-4o-mini", "o3*", "[a-z]*", "x", "o"
};

static const char  *names[] = {
    "gpt-4o", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", "gpt-4", "gpt-4o1",
    "gpt-3o", "gpt-4ox", "claude-3-5-sonnet-latest", "claude-3", "a*b",
    "ab", "o3", "o1-mini", "o3-mini", "x", "", "GPT-4O", "mini", "o",
    "gpt-4o\xc3\xa9", "4o"
};


static void
test_as_fnmatch(void **state)
{
    int         expect;
    ngx_str_t   g, n;
    ngx_uint_t  i, j, got;

    for (i = 0; i < sizeof(globs) / sizeof(globs[0]); i++) {
        g.data = (u_char *) globs[i];
        g.len = strlen(globs[i]);

        for (j = 0; j < sizeof(names) / sizeof(names[0]); j++) {
            n.data = (u_char *) names[j];
            n.len = strlen(names[j]);

            expect = fnmatch(globs[i], names[j], 0) == 0;
            got = ngx_http_ai_glob_match(&g, &n);

            if ((int) got != expect) {
                fail_msg("\"%s\" against \"%s\": %d, fnmatch says %d",
                         globs[i], names[j], (int) got, expect);
            }
        }
    }
}


/* the name is a slice: what follows it is not part of it */

static void
test_slice(void **state)
{
    ngx_str_t   g, n;
    ngx_uint_t  i;

    static const struct {
        const char  *glob;
        ngx_uint_t   match;
    } cases[] = {
        { "gpt-4o", 1 }, { "gpt-4o-mini", 0 }, { "gpt-4o?", 0 },
        { "gpt-4o*", 1 }
    };

    n.data = (u_char *) "gpt-4o-mini";
    n.len = 6;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        g.data = (u_char *) cases[i].glob;
        g.len = strlen(cases[i].glob);

        if (ngx_http_ai_glob_match(&g, &n) != cases[i].match) {
            fail_msg("\"%s\" against \"gpt-4o\" cut from \"gpt-4o-mini\"",
                     cases[i].glob);
        }
    }
}


static void
test_long_name(void **state)
{
    u_char     buf[300];
    ngx_str_t  g, n;

    memset(buf, 'a', sizeof(buf));

    g.data = (u_char *) "a*";
    g.len = 2;
    n.data = buf;

    n.len = NGX_HTTP_AI_MODEL_MAX - 1;
    assert_int_equal(ngx_http_ai_glob_match(&g, &n), 1);

    n.len = NGX_HTTP_AI_MODEL_MAX;
    assert_int_equal(ngx_http_ai_glob_match(&g, &n), 0);
}


static void
test_invalid(void **state)
{
    ngx_str_t    g;
    ngx_uint_t   i;
    const char  *bad[] = { "^gpt", "gpt$", "gpt.*", "gpt-(4|5)", "gpt+",
                           "gpt[4", "a b", "" };
    const char  *good[] = { "gpt-4o", "gpt-*", "o[13]*", "gpt-4o.1",
                            "?" };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        g.data = (u_char *) bad[i];
        g.len = strlen(bad[i]);

        if (ngx_http_ai_glob_invalid(&g) == NULL) {
            fail_msg("\"%s\" was taken", bad[i]);
        }
    }

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        g.data = (u_char *) good[i];
        g.len = strlen(good[i]);

        if (ngx_http_ai_glob_invalid(&g) != NULL) {
            fail_msg("\"%s\" was refused", good[i]);
        }
    }
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_as_fnmatch),
        cmocka_unit_test(test_slice),
        cmocka_unit_test(test_long_name),
        cmocka_unit_test(test_invalid),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
