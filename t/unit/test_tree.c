
/*
 * Unit tests of a body's tree on a pool of its own, with the core's
 * allocator installed (as the core does before any module allocates):
 * ngx_http_ai_json_delete() leaves nothing of the heap alive, whether the
 * tree holds members of the heap or not, and destroys its pool once.
 * Alone in its binary: the allocator, once installed, is cJSON's for
 * every tree after.
 */


#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ngx_http_ai_core_json.h"


extern ngx_uint_t   ngx_stub_pools_destroyed;
extern ngx_pool_t  *ngx_stub_last_pool;


static cJSON *
parse(ngx_pool_t *pool)
{
    cJSON       *json;
    ngx_str_t    body;
    const char  *end;

    ngx_str_set(&body, "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":"
                "\"user\",\"content\":\"hi\"}],\"n\":[1,2.5,true,null]}");

    json = ngx_http_ai_json_parse(pool, &body, &end);
    assert_non_null(json);
    assert_ptr_equal(end, body.data + body.len);

    return json;
}


/* the tree deleted: its pool destroyed that many times, no heap alive */

static void
deleted(cJSON *json, ngx_uint_t pools)
{
    ngx_uint_t  destroyed;

    destroyed = ngx_stub_pools_destroyed;
    ngx_http_ai_json_delete(json);
    assert_int_equal(ngx_stub_pools_destroyed, destroyed + pools);
    assert_int_equal(ngx_http_ai_json_heap_alive(), 0);
}


static void
test_delete(void **state)
{
    cJSON       *json, *item;
    ngx_pool_t  *pool, *prev;

    ngx_http_ai_json_hooks();

    pool = ngx_create_pool(1024, NULL);
    assert_non_null(pool);

    /* the tree alone: nothing of the heap */

    json = parse(pool);
    assert_int_equal(ngx_http_ai_json_heap_alive(), 0);
    deleted(json, 1);

    /* a member a module set from the heap (a masked text) */

    json = parse(pool);

    prev = ngx_http_ai_json_on_pool(NULL);
    item = cJSON_CreateString("masked");
    assert_non_null(item);
    cJSON_AddItemToObject(json, "guarded", item);
    (void) ngx_http_ai_json_on_pool(prev);

    /* the node, its string, its name */
    assert_int_equal(ngx_http_ai_json_heap_alive(), 3);
    deleted(json, 1);

    /* a tree of the heap (no pool): deleted as cJSON does */

    json = parse(NULL);
    assert_true(ngx_http_ai_json_heap_alive() > 0);
    deleted(json, 0);

    ngx_destroy_pool(pool);
}


/*
 * A body's tree fits the first block of its pool, sized from what the
 * scanner counted: every allocation of the build, as NGINX's pools give
 * it (ngx_stubs.c), on texts of every kind: long and escaped strings, keys
 * and values of every length about the pool's alignment, empty strings,
 * numbers, nesting, spaces.
 */

static unsigned long  rnd_state = 4242;

static unsigned
rnd(unsigned n)
{
    rnd_state = rnd_state * 6364136223846793005UL + 1442695040888963407UL;
    return (unsigned) ((rnd_state >> 33) % n);
}


static char *
rnd_string(char *p)
{
    unsigned  n, i;

    static const char  *pieces[] = { "a", "hello ", "\\n", "\\\"",
                                     "\\u00e9", "\\ud83d\\ude00",
                                     "\xc3\xa9", "0123456789abcdef", "/" };

    *p++ = '"';

    n = rnd(4) ? rnd(12) : rnd(600);

    for (i = 0; i < n; i++) {
        p = stpcpy(p, pieces[rnd(sizeof(pieces) / sizeof(pieces[0]))]);
    }

    *p++ = '"';

    return p;
}


static char *
rnd_value(char *p, unsigned d)
{
    unsigned  n, i;

    switch (d < 5 ? rnd(6) : 3 + rnd(3)) {

    case 0:
    case 1:
        *p++ = '{';
        n = rnd(6);
        for (i = 0; i < n; i++) {
            if (i) {
                *p++ = ',';
            }
            p = rnd_string(p);
            p = stpcpy(p, rnd(2) ? ":" : " : ");
            p = rnd_value(p, d + 1);
        }
        *p++ = '}';
        return p;

    case 2:
        *p++ = '[';
        n = rnd(6);
        for (i = 0; i < n; i++) {
            if (i) {
                p = stpcpy(p, rnd(2) ? "," : " ,\n ");
            }
            p = rnd_value(p, d + 1);
        }
        *p++ = ']';
        return p;

    case 3:
        return rnd_string(p);

    case 4:
        return p + sprintf(p, "%d", (int) rnd(100000) - 50000);

    default:
        return stpcpy(p, rnd(2) ? "true" : "null");
    }
}


static void
fits(ngx_pool_t *pool, const char *text, size_t len)
{
    cJSON       *json;
    ngx_str_t    body;
    ngx_pool_t  *tree;
    const char  *end;

    body.data = (u_char *) text;
    body.len = len;

    ngx_stub_last_pool = NULL;

    json = ngx_http_ai_json_parse(pool, &body, &end);
    assert_non_null(json);

    tree = ngx_stub_last_pool;
    assert_non_null(tree);

    /* a tree of more than 16 KB has blocks of 16 KB: not these */
    assert_true(tree->max < NGX_DEFAULT_POOL_SIZE);

    if (tree->d.failed > tree->max) {
        fail_msg("the tree took %zu bytes of a pool of %zu: %.*s",
                 (size_t) tree->d.failed, tree->max, (int) len, text);
    }

    ngx_http_ai_json_delete(json);
}


static void
test_fits(void **state)
{
    char        *buf, *p;
    size_t       i;
    unsigned     n;
    ngx_pool_t  *pool;

    static const char  *texts[] = {
        "{}", "[]", "\"\"", "{\"\":\"\"}", "[1,2,3]", "true",
        "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"system\","
            "\"content\":\"You are a helpful assistant.\"},{\"role\":"
            "\"user\",\"content\":\"Say hello to the benchmark x\"}],"
            "\"stream\":true}",
        "{\"a\":\"1234567\",\"ab\":\"12345678\",\"abc\":\"123456789\"}",
        "{\"s\":\"\\u00e9\\ud83d\\ude00\\n\\t\\\"\\\\\"}",
        NULL
    };

    ngx_http_ai_json_hooks();

    pool = ngx_create_pool(1024, NULL);
    assert_non_null(pool);

    for (i = 0; texts[i]; i++) {
        fits(pool, texts[i], strlen(texts[i]));
    }

    buf = malloc(256 * 1024);
    assert_non_null(buf);

    for (n = 0; n < 20000; n++) {
        p = rnd_value(buf, 0);
        *p = '\0';

        if (p - buf >= NGX_DEFAULT_POOL_SIZE / 2) {
            continue;
        }

        fits(pool, buf, p - buf);
    }

    free(buf);
    ngx_destroy_pool(pool);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_delete),
        cmocka_unit_test(test_fits),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
