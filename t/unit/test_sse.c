
/*
 * Unit tests of the incremental SSE parser: every way a stream can be
 * cut into pieces gives the same events.
 */


#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ngx_http_ai_sse.h"


typedef struct {
    char    out[8192];
    size_t  len;
} events_t;


static ngx_int_t
collect(void *data, ngx_str_t *event, ngx_str_t *payload)
{
    events_t  *e = data;

    e->len += snprintf(e->out + e->len, sizeof(e->out) - e->len,
                       "[%.*s|%.*s]", (int) event->len, event->data,
                       (int) payload->len, payload->data);
    return NGX_OK;
}


/* parses s cut every `step` bytes (0: whole), from copies freed at once */

static void
parse_split(const char *s, size_t step, size_t max, events_t *e,
    ngx_uint_t *pending)
{
    size_t                    len, off, n;
    u_char                   *copy;
    ngx_http_ai_sse_parser_t  p;

    ngx_http_ai_sse_init(&p, NULL, max);
    memset(e, 0, sizeof(events_t));

    len = strlen(s);

    for (off = 0; off < len; off += n) {
        n = step ? step : len;
        if (off + n > len) {
            n = len - off;
        }

        copy = malloc(n);
        memcpy(copy, s + off, n);
        assert_int_equal(ngx_http_ai_sse_parse(&p, copy, copy + n, collect,
                                               e), NGX_OK);
        memset(copy, 'Z', n);   /* the input goes away */
        free(copy);
    }

    if (pending) {
        *pending = ngx_http_ai_sse_pending(&p);
    }
}


static void
check_all_splits(const char *s, const char *expected)
{
    size_t    step;
    events_t  e;

    for (step = 0; step <= strlen(s); step++) {
        parse_split(s, step, 65536, &e, NULL);
        if (strcmp(e.out, expected) != 0) {
            fail_msg("split %zu: got %s, expected %s", step, e.out, expected);
        }
    }
}


static void
test_openai_lf(void **state)
{
    check_all_splits("data: {\"a\":1}\n\ndata: {\"b\":2}\n\ndata: [DONE]\n\n",
                     "[|{\"a\":1}][|{\"b\":2}][|[DONE]]");
}


static void
test_crlf_and_cr(void **state)
{
    check_all_splits("data: x\r\n\r\ndata: y\r\rdata: z\n\r\n",
                     "[|x][|y][|z]");
}


static void
test_event_names_and_comments(void **state)
{
    check_all_splits(": keepalive\nevent: message_start\n"
                     "data: {\"type\":\"message_start\"}\n\n"
                     ":ping\n\nevent: ping\ndata: {}\n\n",
                     "[message_start|{\"type\":\"message_start\"}][ping|{}]");
}


static void
test_multiline_data(void **state)
{
    check_all_splits("data: line1\ndata: line2\ndata:line3\n\n",
                     "[|line1\nline2\nline3]");
}


static void
test_fields_ignored_and_no_space(void **state)
{
    check_all_splits("id: 7\nretry: 100\nfoo\ndata:tight\n\n"
                     "event: e\n\n",
                     "[|tight]");
}


static void
test_empty_data_is_dispatched(void **state)
{
    check_all_splits("data:\n\n", "[|]");
}


static void
test_event_over_cap_is_dropped(void **state)
{
    size_t      step;
    events_t    e;
    char        s[512];

    memset(s, 0, sizeof(s));
    strcpy(s, "data: ");
    memset(s + 6, 'x', 100);
    strcat(s, "\n\ndata: small\n\n");

    for (step = 0; step < 40; step++) {
        parse_split(s, step, 64, &e, NULL);
        assert_string_equal(e.out, "[|small]");
    }
}


static void
test_multiline_over_cap_is_dropped(void **state)
{
    events_t  e;

    parse_split("data: 0123456789\ndata: 0123456789\ndata: 0123456789\n\n"
                "data: ok\n\n", 7, 24, &e, NULL);
    assert_string_equal(e.out, "[|ok]");
}


static void
test_pending_at_end(void **state)
{
    events_t    e;
    ngx_uint_t  pending;

    parse_split("data: a\n\ndata: cut", 3, 1024, &e, &pending);
    assert_string_equal(e.out, "[|a]");
    assert_int_equal(pending, 1);

    parse_split("data: a\n\n", 3, 1024, &e, &pending);
    assert_int_equal(pending, 0);
}


static ngx_int_t
stop(void *data, ngx_str_t *event, ngx_str_t *payload)
{
    return NGX_ERROR;
}


static void
test_handler_error_stops(void **state)
{
    u_char                    s[] = "data: a\n\ndata: b\n\n";
    ngx_http_ai_sse_parser_t  p;

    ngx_http_ai_sse_init(&p, NULL, 1024);
    assert_int_equal(ngx_http_ai_sse_parse(&p, s, s + sizeof(s) - 1, stop,
                                           NULL), NGX_ERROR);
}


/* where the events are in the input: the parser's start, end, between */

typedef struct {
    ngx_http_ai_sse_parser_t  *p;
    u_char                    *base;
    char                       out[256];
    size_t                     len;
} bounds_t;


static ngx_int_t
bounds(void *data, ngx_str_t *event, ngx_str_t *payload)
{
    bounds_t  *b = data;

    b->len += snprintf(b->out + b->len, sizeof(b->out) - b->len,
                       "[%.*s %d-%d]", (int) payload->len, payload->data,
                       b->p->start ? (int) (b->p->start - b->base) : -1,
                       (int) (b->p->end - b->base));
    return NGX_OK;
}


static void
test_event_bounds(void **state)
{
    u_char                    i1[] = "data: a\n\n: c\ndata: b";
    u_char                    i2[] = "b\r\n\r\ndata: cc";
    u_char                    i3[] = "\n\n";
    bounds_t                  b;
    ngx_http_ai_sse_parser_t  p;

    ngx_http_ai_sse_init(&p, NULL, 1024);
    memset(&b, 0, sizeof(bounds_t));
    b.p = &p;
    assert_true(p.between);

    b.base = i1;
    assert_int_equal(ngx_http_ai_sse_parse(&p, i1, i1 + sizeof(i1) - 1,
                                           bounds, &b), NGX_OK);
    assert_false(p.between);
    assert_ptr_equal(p.start, i1 + 9);   /* the comment begins the next */

    b.base = i2;
    assert_int_equal(ngx_http_ai_sse_parse(&p, i2, i2 + sizeof(i2) - 1,
                                           bounds, &b), NGX_OK);
    assert_false(p.between);
    assert_ptr_equal(p.start, i2 + 5);

    b.base = i3;
    assert_int_equal(ngx_http_ai_sse_parse(&p, i3, i3 + sizeof(i3) - 1,
                                           bounds, &b), NGX_OK);
    assert_true(p.between);

    assert_string_equal(b.out, "[a 0-9][bb -1-5][cc -1-2]");
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openai_lf),
        cmocka_unit_test(test_crlf_and_cr),
        cmocka_unit_test(test_event_names_and_comments),
        cmocka_unit_test(test_multiline_data),
        cmocka_unit_test(test_fields_ignored_and_no_space),
        cmocka_unit_test(test_empty_data_is_dispatched),
        cmocka_unit_test(test_event_over_cap_is_dropped),
        cmocka_unit_test(test_multiline_over_cap_is_dropped),
        cmocka_unit_test(test_pending_at_end),
        cmocka_unit_test(test_handler_error_stops),
        cmocka_unit_test(test_event_bounds),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
