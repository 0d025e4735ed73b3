
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
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ngx_http_ai_core_json.h"


extern ngx_uint_t  ngx_stub_pools_destroyed;


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


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_delete),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
