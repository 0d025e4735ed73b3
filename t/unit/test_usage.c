
/*
 * Unit tests of usage extraction and terminal events, per provider.
 */


#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ngx_http_ai_core.h"
#include "ngx_http_ai_core_json.h"
#include "ngx_http_ai_core_format.h"


static ngx_int_t
usage(ngx_uint_t format, const char *s, ngx_http_ai_usage_t *u)
{
    ngx_str_t  data;

    data.data = (u_char *) s;
    data.len = strlen(s);

    return ngx_http_ai_usage_parse(format, &data, u);
}


static void
test_openai_plain(void **state)
{
    ngx_http_ai_usage_t  u;

    memset(&u, 0, sizeof(u));
    assert_int_equal(usage(NGX_HTTP_AI_FMT_OPENAI,
        "{\"id\":\"x\",\"choices\":[{\"message\":{\"content\":"
        "\"\\\"usage\\\": {\\\"prompt_tokens\\\": 999}\"}}],"
        "\"usage\": {\"prompt_tokens\":12,\"completion_tokens\":5,"
        "\"total_tokens\":17,\"prompt_tokens_details\":{\"cached_tokens\":4},"
        "\"completion_tokens_details\":{\"reasoning_tokens\":2}}}", &u),
        NGX_OK);

    assert_true(u.found);
    assert_int_equal(u.prompt_tokens, 12);
    assert_int_equal(u.completion_tokens, 5);
    assert_int_equal(u.total_tokens, 17);
    assert_int_equal(u.cached_tokens, 4);
    assert_int_equal(u.reasoning_tokens, 2);
}


static void
test_many_members(void **state)
{
    ngx_http_ai_usage_t  u;

    /* more members than the reader lists at once: the rest still found,
     * the first of a name twice still the one taken, an escape past the
     * list still sends the object to cJSON (the same figures) */

    memset(&u, 0, sizeof(u));
    assert_int_equal(usage(NGX_HTTP_AI_FMT_OPENAI,
        "{\"usage\":{\"a1\":1,\"a2\":2,\"a3\":3,\"a4\":4,\"a5\":5,\"a6\":6,"
        "\"a7\":7,\"a8\":8,\"a9\":9,\"a10\":10,\"a11\":11,\"a12\":12,"
        "\"prompt_tokens\":12,\"a14\":14,\"a15\":15,\"a16\":16,"
        "\"completion_tokens\":5,\"prompt_tokens\":99,\"a19\":19,"
        "\"total_tokens\":17}}", &u),
        NGX_OK);

    assert_true(u.found);
    assert_int_equal(u.prompt_tokens, 12);
    assert_int_equal(u.completion_tokens, 5);
    assert_int_equal(u.total_tokens, 17);
    assert_false(u.invalid);

    memset(&u, 0, sizeof(u));
    assert_int_equal(usage(NGX_HTTP_AI_FMT_OPENAI,
        "{\"usage\":{\"a1\":1,\"a2\":2,\"a3\":3,\"a4\":4,\"a5\":5,\"a6\":6,"
        "\"a7\":7,\"a8\":8,\"a9\":9,\"a10\":10,\"a11\":11,\"a12\":12,"
        "\"a13\":13,\"a14\":14,\"a15\":15,\"a16\":16,\"a\\u0031\":1,"
        "\"prompt_tokens\":12,\"completion_tokens\":5,"
        "\"total_tokens\":17}}", &u),
        NGX_OK);

    assert_true(u.found);
    assert_int_equal(u.prompt_tokens, 12);
    assert_int_equal(u.completion_tokens, 5);
    assert_int_equal(u.total_tokens, 17);
}


static void
test_openai_stream(void **state)
{
    ngx_str_t            name, data;
    ngx_http_ai_usage_t  u;

    memset(&u, 0, sizeof(u));

    assert_int_equal(usage(NGX_HTTP_AI_FMT_OPENAI,
        "{\"choices\":[{\"delta\":{\"content\":\"hi\"}}],\"usage\":null}", &u),
        NGX_DECLINED);
    assert_false(u.found);

    assert_int_equal(usage(NGX_HTTP_AI_FMT_OPENAI,
        "{\"choices\":[],\"usage\":{\"prompt_tokens\":3,"
        "\"completion_tokens\":4,\"total_tokens\":7}}", &u), NGX_OK);
    assert_int_equal(u.total_tokens, 7);

    ngx_str_null(&name);
    ngx_str_set(&data, "[DONE]");
    assert_true(ngx_http_ai_event_is_final(NGX_HTTP_AI_FMT_OPENAI, &name,
                                           &data));
    ngx_str_set(&data, "{\"choices\":[]}");
    assert_false(ngx_http_ai_event_is_final(NGX_HTTP_AI_FMT_OPENAI, &name,
                                            &data));
}


static void
test_anthropic_stream_adds_up(void **state)
{
    ngx_str_t            name, data;
    ngx_http_ai_usage_t  u;

    memset(&u, 0, sizeof(u));

    assert_int_equal(usage(NGX_HTTP_AI_FMT_ANTHROPIC,
        "{\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":"
        "{\"input_tokens\":10,\"cache_creation_input_tokens\":2,"
        "\"cache_read_input_tokens\":5,\"output_tokens\":1}}}", &u), NGX_OK);
    assert_int_equal(u.prompt_tokens, 17);
    assert_int_equal(u.cached_tokens, 5);
    assert_int_equal(u.cache_write_tokens, 2);

    assert_int_equal(usage(NGX_HTTP_AI_FMT_ANTHROPIC,
        "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},"
        "\"usage\":{\"output_tokens\":15}}", &u), NGX_OK);
    assert_int_equal(u.prompt_tokens, 17);
    assert_int_equal(u.completion_tokens, 15);
    assert_int_equal(u.total_tokens, 32);
    assert_int_equal(u.cached_tokens, 5);
    assert_int_equal(u.cache_write_tokens, 2);

    /*
     * today's message_delta repeats input_tokens (cumulative) and may
     * leave the cache counts out: they are kept, not zeroed
     */

    assert_int_equal(usage(NGX_HTTP_AI_FMT_ANTHROPIC,
        "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},"
        "\"usage\":{\"input_tokens\":10,\"output_tokens\":16}}", &u), NGX_OK);
    assert_int_equal(u.prompt_tokens, 17);
    assert_int_equal(u.cached_tokens, 5);
    assert_int_equal(u.cache_write_tokens, 2);

    /* OpenAI's prompt counts its cached tokens, and no writes */

    memset(&u, 0, sizeof(u));

    assert_int_equal(usage(NGX_HTTP_AI_FMT_OPENAI,
        "{\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":1,"
        "\"total_tokens\":11,\"prompt_tokens_details\":"
        "{\"cached_tokens\":8}}}", &u), NGX_OK);
    assert_int_equal(u.prompt_tokens, 10);
    assert_int_equal(u.cached_tokens, 8);
    assert_int_equal(u.cache_write_tokens, 0);
    assert_false(u.invalid);

    ngx_str_set(&name, "message_stop");
    ngx_str_set(&data, "{\"type\":\"message_stop\"}");
    assert_true(ngx_http_ai_event_is_final(NGX_HTTP_AI_FMT_ANTHROPIC, &name,
                                           &data));
    ngx_str_set(&name, "content_block_stop");
    assert_false(ngx_http_ai_event_is_final(NGX_HTTP_AI_FMT_ANTHROPIC, &name,
                                            &data));
}


/* the Responses API: usage in response.completed, after the output */

static void
test_responses(void **state)
{
    ngx_str_t            name, data;
    ngx_http_ai_usage_t  u;

    memset(&u, 0, sizeof(u));

    /* response.created says "usage":null: nothing found */

    assert_int_equal(usage(NGX_HTTP_AI_FMT_RESPONSES,
        "{\"type\":\"response.created\",\"response\":{\"id\":\"r\","
        "\"output\":[],\"usage\":null,\"user\":null}}", &u), NGX_DECLINED);

    assert_int_equal(usage(NGX_HTTP_AI_FMT_RESPONSES,
        "{\"type\":\"response.completed\",\"response\":{\"output\":[{"
        "\"content\":[{\"text\":\"\\\"usage\\\":{\\\"input_tokens\\\":1}\"}]}],"
        "\"usage\":{\"input_tokens\":100,\"input_tokens_details\":"
        "{\"cached_tokens\":40},\"output_tokens\":30,"
        "\"output_tokens_details\":{\"reasoning_tokens\":12},"
        "\"total_tokens\":130},\"user\":null,\"metadata\":{}}}", &u),
        NGX_OK);
    assert_int_equal(u.prompt_tokens, 100);
    assert_int_equal(u.cached_tokens, 40);
    assert_int_equal(u.completion_tokens, 30);
    assert_int_equal(u.reasoning_tokens, 12);
    assert_int_equal(u.total_tokens, 130);
    assert_false(u.invalid);

    ngx_str_set(&data, "{}");
    ngx_str_set(&name, "response.completed");
    assert_true(ngx_http_ai_event_is_final(NGX_HTTP_AI_FMT_RESPONSES, &name,
                                           &data));
    ngx_str_set(&name, "response.incomplete");
    assert_true(ngx_http_ai_event_is_final(NGX_HTTP_AI_FMT_RESPONSES, &name,
                                           &data));
    ngx_str_set(&name, "response.c");
    assert_false(ngx_http_ai_event_is_final(NGX_HTTP_AI_FMT_RESPONSES, &name,
                                            &data));
    ngx_str_set(&name, "response.output_text.done");
    assert_false(ngx_http_ai_event_is_final(NGX_HTTP_AI_FMT_RESPONSES, &name,
                                            &data));
}


static void
test_gemini(void **state)
{
    ngx_str_t            name, data;
    ngx_http_ai_usage_t  u;

    memset(&u, 0, sizeof(u));

    assert_int_equal(usage(NGX_HTTP_AI_FMT_GEMINI,
        "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"x\"}]},"
        "\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":8,"
        "\"candidatesTokenCount\":3,\"thoughtsTokenCount\":2,"
        "\"totalTokenCount\":13}}", &u), NGX_OK);
    assert_int_equal(u.prompt_tokens, 8);
    assert_int_equal(u.completion_tokens, 5);
    assert_int_equal(u.reasoning_tokens, 2);
    assert_int_equal(u.total_tokens, 13);

    ngx_str_null(&name);
    ngx_str_set(&data, "{\"candidates\":[{\"finishReason\":\"STOP\"}]}");
    assert_true(ngx_http_ai_event_is_final(NGX_HTTP_AI_FMT_GEMINI, &name,
                                           &data));
}


static void
test_garbage(void **state)
{
    ngx_http_ai_usage_t  u;

    memset(&u, 0, sizeof(u));
    assert_int_equal(usage(NGX_HTTP_AI_FMT_OPENAI, "{\"usage\":", &u),
                     NGX_DECLINED);
    assert_int_equal(usage(NGX_HTTP_AI_FMT_OPENAI, "{\"usage\":[1]}", &u),
                     NGX_DECLINED);
    assert_int_equal(usage(NGX_HTTP_AI_FMT_OPENAI, "{\"usage\":{\"prompt_"
                           "tokens\":\"x\"", &u), NGX_DECLINED);
    assert_int_equal(usage(NGX_HTTP_AI_FMT_OPENAI, "", &u), NGX_DECLINED);
    assert_false(u.found);
}


/* a provider's usage is hostile input: only sane integers are believed */

static void
test_hostile(void **state)
{
    ngx_http_ai_usage_t  u;

    memset(&u, 0, sizeof(u));
    assert_int_equal(usage(NGX_HTTP_AI_FMT_OPENAI,
        "{\"usage\":{\"prompt_tokens\":1e300,\"completion_tokens\":-5,"
        "\"total_tokens\":\"12\",\"prompt_tokens_details\":"
        "{\"cached_tokens\":1e19}}}", &u), NGX_OK);
    assert_true(u.found);
    assert_true(u.invalid);
    assert_int_equal(u.prompt_tokens, 0);
    assert_int_equal(u.completion_tokens, 0);
    assert_int_equal(u.total_tokens, 0);
    assert_int_equal(u.cached_tokens, 0);

    memset(&u, 0, sizeof(u));
    assert_int_equal(usage(NGX_HTTP_AI_FMT_OPENAI,
        "{\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4,"
        "\"total_tokens\":999,\"prompt_tokens_details\":"
        "{\"cached_tokens\":9},\"completion_tokens_details\":"
        "{\"reasoning_tokens\":2.5}}}", &u), NGX_OK);
    assert_true(u.invalid);
    assert_int_equal(u.total_tokens, 7);     /* the sum, not the claim */
    assert_int_equal(u.cached_tokens, 3);    /* at most the prompt */
    assert_int_equal(u.reasoning_tokens, 0);

    memset(&u, 0, sizeof(u));
    assert_int_equal(usage(NGX_HTTP_AI_FMT_ANTHROPIC,
        "{\"usage\":{\"input_tokens\":1000000000,"
        "\"cache_read_input_tokens\":1000000000,"
        "\"output_tokens\":9223372036854775807}}", &u), NGX_OK);
    assert_true(u.invalid);
    assert_int_equal(u.prompt_tokens, NGX_HTTP_AI_TOKENS_MAX);
    assert_int_equal(u.completion_tokens, 0);
    assert_int_equal(u.total_tokens, NGX_HTTP_AI_TOKENS_MAX);

    memset(&u, 0, sizeof(u));
    assert_int_equal(usage(NGX_HTTP_AI_FMT_GEMINI,
        "{\"usageMetadata\":{\"promptTokenCount\":8,"
        "\"toolUsePromptTokenCount\":2,\"candidatesTokenCount\":5,"
        "\"totalTokenCount\":15}}", &u), NGX_OK);
    assert_false(u.invalid);
    assert_int_equal(u.prompt_tokens, 10);
    assert_int_equal(u.total_tokens, 15);
}


/*
 * The usage of an event is read in place by the scanner; it must say
 * exactly what cJSON's reading of the same object says, odd objects
 * (escapes, numbers cJSON reads its own way) left to cJSON
 */

static void
test_scanner_as_cjson(void **state)
{
    char                  event[1024];
    cJSON                *json;
    ngx_str_t             d;
    ngx_uint_t            i, f, raw;
    const char           *end;
    ngx_http_ai_usage_t   a, b, r, c;

    static const char    *objects[] = {
        "{\"prompt_tokens\":3,\"completion_tokens\":4,\"total_tokens\":7}",
        "{\"prompt_tokens\":3,\"completion_tokens\":4,\"total_tokens\":9}",
        "{\"prompt_tokens\":1e3,\"completion_tokens\":2.0,"
            "\"total_tokens\":1002}",
        "{\"prompt_tokens\":1.5,\"completion_tokens\":-1}",
        "{\"prompt_tokens\":9e18,\"completion_tokens\":1e300}",
        "{\"prompt_tokens\":\"12\",\"completion_tokens\":null}",
        "{\"prompt_tokens\":true,\"completion_tokens\":[1],"
            "\"total_tokens\":{}}",
        "{\"prompt_tokens\":5,\"prompt_tokens\":6}",
        "{\"prompt_tokens\":10,\"prompt_tokens_details\":"
            "{\"cached_tokens\":4},\"completion_tokens_details\":"
            "{\"reasoning_tokens\":2},\"completion_tokens\":3}",
        "{\"prompt_tokens\":10,\"prompt_tokens_details\":"
            "{\"cached_tokens\":40},\"completion_tokens_details\":7}",
        "{\"prompt\\u005ftokens\":8,\"completion_tokens\":1}",
        "{\"prompt_tokens\":\"a\\\"b\",\"completion_tokens\":1}",
        "{\"prompt_tokens\":+1,\"completion_tokens\":.5}",
        "{\"prompt_tokens\":-0,\"completion_tokens\":0.0e0}",
        "{\"prompt_tokens\":000000000000000000000000000000000000000000"
            "0000000000000000000000000000000000000000000000001}",
        "{\"input_tokens\":3,\"cache_read_input_tokens\":2,"
            "\"cache_creation_input_tokens\":1,\"output_tokens\":5}",
        "{\"input_tokens\":null,\"output_tokens\":7}",
        "{\"promptTokenCount\":4,\"candidatesTokenCount\":5,"
            "\"thoughtsTokenCount\":2,\"toolUsePromptTokenCount\":1,"
            "\"cachedContentTokenCount\":3,\"totalTokenCount\":12}",
        "{ \"prompt_tokens\" : 3 , \"completion_tokens\" :4 }",
        "{\"prompt_tokens\":01,\"completion_tokens\":1.}",
        "{\"input_tokens\":2,\"x\":1.2.3,\"output_tokens\":1}",
        "{\"input_tokens\":2,\"x\":\"\\ud800\",\"output_tokens\":1}",
        "{\"input_tokens\":2,\"x\":\"\\ud83d\\ude00\\q\",\"output_tokens\":1}",
        "{\"input_tokens\":2,\"x\":\"\\ud83d\\ude00\",\"output_tokens\":1}",
        "{\"promptTokenCount\":1,\"x\":[[[[[[[[[[1]]]]]]]]]],"
            "\"totalTokenCount\":1}",
        "{}",

        /* what the one strict pass must refuse as cJSON does */
        "{\"prompt_tokens\":3,}",
        "{\"prompt_tokens\":3, }",
        "{,}",
        "{\"prompt_tokens\" 3}",
        "{\"prompt_tokens\":3 \"completion_tokens\":1}",
        "{\"prompt_tokens\":tru,\"completion_tokens\":1}",
        "{\"prompt_tokens\":3,\"completion_tokens\":nulls}",
        "{\"prompt_tokens\":3,\"x\":[1,]}",
        "{\"prompt_tokens\":3,\"prompt_tokens_details\":"
            "{\"cached_tokens\":1,}}",
        "{\"prompt_tokens\":3,\"x\":\"a\tb\",\"completion_tokens\":1}",
        "{\"prompt_tokens\":3,\"completion_tokens\":1}x",
        "{\"a1\":1,\"a2\":2,\"a3\":3,\"a4\":4,\"a5\":5,\"a6\":6,"
            "\"a7\":7,\"a8\":8,\"a9\":9,\"b1\":1,\"b2\":2,\"b3\":3,"
            "\"b4\":4,\"b5\":5,\"b6\":6,\"b7\":7,\"prompt_tokens\":3,"
            "\"completion_tokens\":4}",
        "{\"a1\":1,\"a2\":2,\"a3\":3,\"a4\":4,\"a5\":5,\"a6\":6,"
            "\"a7\":7,\"a8\":8,\"a9\":9,\"b1\":1,\"b2\":2,\"b3\":3,"
            "\"b4\":4,\"b5\":5,\"b6\":6,\"b7\":7,\"prompt_tokens\":3,"
            "\"completion_tokens\":4,\"z\":1.}",
        "{\"prompt_tokens\":3,\"completion_tokens\":4,\"a1\":1,"
            "\"a2\":2,\"a3\":3,\"a4\":4,\"a5\":5,\"a6\":6,\"a7\":7,"
            "\"a8\":8,\"a9\":9,\"b1\":1,\"b2\":2,\"b3\":3,\"b4\":4,"
            "\"b5\":5,\"b6\":6,\"b7\":[}",
        NULL
    };

    raw = 0;

    for (f = 0; f <= NGX_HTTP_AI_FMT_GEMINI; f++) {
        for (i = 0; objects[i]; i++) {

            snprintf(event, sizeof(event), "{\"x\":1,\"%s\":%s}",
                     f == NGX_HTTP_AI_FMT_GEMINI ? "usageMetadata" : "usage",
                     objects[i]);

            /*
             * first the object alone, as the fast paths read it: the
             * same, or declined (cJSON reads it then); never taken when
             * cJSON would not read exactly that text (before the event's
             * read, whose answer a read of the same bytes takes after)
             */

            d.data = (u_char *) objects[i];
            d.len = strlen(objects[i]);
            memset(&r, 0, sizeof(r));

            json = cJSON_ParseWithLengthOpts(objects[i], d.len, &end, 0);

            if (ngx_http_ai_usage_raw(f, &d, &r) == NGX_OK) {
                if (json == NULL || end != objects[i] + d.len) {
                    fail_msg("format %d, %s: taken raw, not by cJSON",
                             (int) f, objects[i]);
                }

                memset(&c, 0, sizeof(c));
                ngx_http_ai_usage_object(f, json, &c);

                if (memcmp(&r, &c, sizeof(r)) != 0) {
                    fail_msg("format %d, %s: raw differs", (int) f,
                             objects[i]);
                }

                raw++;
            }

            cJSON_Delete(json);

            d.data = (u_char *) event;
            d.len = strlen(event);

            memset(&a, 0, sizeof(a));
            memset(&b, 0, sizeof(b));

            json = cJSON_ParseWithLengthOpts(objects[i], strlen(objects[i]),
                                             &end, 0);

            /* not JSON for cJSON: no usage either way */

            assert_int_equal(ngx_http_ai_usage_parse(f, &d, &a),
                             json ? NGX_OK : NGX_DECLINED);

            ngx_http_ai_usage_object(f, json, &b);
            cJSON_Delete(json);

            if (memcmp(&a, &b, sizeof(a)) != 0) {
                print_error("format %d, %s: scanner %d %d %d %d %d %d "
                            "inv %d, cJSON %d %d %d %d %d %d inv %d\n",
                            (int) f, objects[i], (int) a.prompt_tokens,
                            (int) a.completion_tokens, (int) a.total_tokens,
                            (int) a.cached_tokens, (int) a.reasoning_tokens,
                            (int) a.cache_write_tokens,
                            (int) a.invalid, (int) b.prompt_tokens,
                            (int) b.completion_tokens, (int) b.total_tokens,
                            (int) b.cached_tokens, (int) b.reasoning_tokens,
                            (int) b.cache_write_tokens,
                            (int) b.invalid);
                fail();
            }
        }
    }

    /* most are read raw: those with no escape, no odd number */
    assert_true(raw >= 50);
}


/*
 * ngx_http_ai_json_find and _rfind against a naive search: every needle
 * of a small alphabet at every length, in haystacks built so that
 * matches sit at the start, at the end, overlap and nearly match
 */

static u_char *
naive(u_char *p, u_char *end, const char *n, size_t len, int last)
{
    u_char  *q, *found;

    found = NULL;

    for (q = p; q + len <= end; q++) {
        if (memcmp(q, n, len) == 0) {
            if (!last) {
                return q;
            }

            found = q;
        }
    }

    return found;
}


static void
test_find(void **state)
{
    u_char      hay[16];
    char        needle[5];
    size_t      h, n, i, hl, nl, count;
    const char  *abc = "\"ab";

    for (hl = 0, count = 1; hl <= 8; hl++, count *= 3) {
        for (h = 0; h < count; h++) {           /* 3^hl haystacks */
            for (i = 0, n = h; i < hl; i++, n /= 3) {
                hay[i] = abc[n % 3];
            }

            for (nl = 2; nl <= 4; nl++) {
                for (n = 0; n < 81; n++) {      /* 3^4 needles */
                    size_t  k, m;

                    for (k = 0, m = n; k < nl; k++, m /= 3) {
                        needle[k] = abc[m % 3];
                    }

                    assert_ptr_equal(
                        ngx_http_ai_json_find(hay, hay + hl, needle, nl),
                        naive(hay, hay + hl, needle, nl, 0));
                    assert_ptr_equal(
                        ngx_http_ai_json_rfind(hay, hay + hl, needle, nl),
                        naive(hay, hay + hl, needle, nl, 1));
                }
            }
        }
    }
}


/*
 * ngx_http_ai_json_skip on strings against a byte-at-a-time reference:
 * every length to 24, a quote, a backslash pair, an escaped quote, a
 * control character or a UTF-8 byte at every offset (eight bytes are
 * looked at a time), strict and not, closed and cut
 */

static u_char *
ref_string(u_char *p, u_char *end, int strict)
{
    for (p++; p < end; p++) {
        if (*p == '"') {
            return p + 1;
        }

        if (*p == '\\') {
            if (p + 1 >= end) {
                return NULL;
            }

            if (strict && p[1] != '"' && p[1] != '\\' && p[1] != 'n') {
                return NULL;
            }

            p++;
            continue;
        }

        if (strict && *p < 0x20) {
            return NULL;
        }
    }

    return NULL;
}


static void
test_skip_strings(void **state)
{
    u_char       buf[40], *end, *got, *want;
    size_t       len, at, k, n;
    int          strict, closed;
    const char  *ins[] = { "\\\"", "\\\\", "\\n", "\x01", "\xc3\xa9", "\"" };

    for (len = 0; len <= 24; len++) {
        for (at = 0; at <= len; at++) {
            for (k = 0; k < sizeof(ins) / sizeof(ins[0]); k++) {
                for (closed = 0; closed < 2; closed++) {
                    n = 0;
                    buf[n++] = '"';

                    memset(buf + n, 'a', at);
                    n += at;

                    memcpy(buf + n, ins[k], strlen(ins[k]));
                    n += strlen(ins[k]);

                    memset(buf + n, 'b', len - at);
                    n += len - at;

                    if (closed) {
                        buf[n++] = '"';
                    }

                    end = buf + n;

                    for (strict = 0; strict < 2; strict++) {
                        got = ngx_http_ai_json_skip(buf, end, 0, strict);
                        want = ref_string(buf, end, strict);

                        if (got != want) {
                            print_error("len %zu at %zu insert %zu closed %d "
                                        "strict %d: %td, want %td\n",
                                        len, at, k, closed, strict,
                                        got ? got - buf : -1,
                                        want ? want - buf : -1);
                        }

                        assert_ptr_equal(got, want);
                    }
                }
            }
        }
    }
}


/*
 * ngx_http_ai_json_skip (one loop) against the recursive scanner it
 * replaced, kept here as the reference: random texts of JSON's pieces,
 * well-formed or not, every depth limit to 4, strict and not, every
 * prefix (a value cut anywhere)
 */

static u_char *ref_json_skip(u_char *p, u_char *end, ngx_uint_t depth,
    ngx_uint_t strict);
static u_char *ref_json_number(u_char *p, u_char *end);
static u_char *ref_json_literal(u_char *p, u_char *end);
static u_char *ref_json_escape(u_char *p, u_char *end);
static ngx_uint_t ref_json_hex4(u_char *p, u_char *end);


static const u_char  ref_json_special[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,   /* '"' */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,   /* '\\' */
};

static u_char *
ref_json_skip(u_char *p, u_char *end, ngx_uint_t depth,
    ngx_uint_t strict)
{
    u_char  *start, *q, close;

    if (p == NULL || p >= end) {
        return NULL;
    }

    switch (*p) {

    case '"':
        if (strict) {
            for (p++; p < end; p++) {

                /* the plain characters, a table lookup each */
                while (p < end && !ref_json_special[*p]) {
                    p++;
                }

                if (p >= end) {
                    return NULL;
                }

                if (*p == '\\') {
                    p = ref_json_escape(p, end);
                    if (p == NULL) {
                        return NULL;
                    }

                    continue;
                }

                if (*p == '"') {
                    return p + 1;
                }

                return NULL;            /* a control character */
            }

            return NULL;
        }

        /*
         * the next quote not escaped (an odd run of backslashes before
         * it); what a string holds is checked only where it is used
         * (ngx_http_ai_json_text())
         */

        for (p++; p < end; p = q + 1) {
            q = memchr(p, '"', end - p);
            if (q == NULL) {
                return NULL;
            }

            for (start = q; start > p && start[-1] == '\\'; start--) {
                /* void */
            }

            if ((q - start) % 2 == 0) {
                return q + 1;
            }
        }

        return NULL;

    case '{':
    case '[':
        if (depth == 0) {
            return NULL;
        }

        close = (*p == '{') ? '}' : ']';

        p = ngx_http_ai_json_space(p + 1, end);

        if (p < end && *p == close) {
            return p + 1;
        }

        for ( ;; ) {
            if (close == '}') {
                if (p >= end || *p != '"') {
                    return NULL;
                }

                p = ref_json_skip(p, end, 0, strict);
                if (p == NULL) {
                    return NULL;
                }

                p = ngx_http_ai_json_space(p, end);

                if (p >= end || *p != ':') {
                    return NULL;
                }

                p = ngx_http_ai_json_space(p + 1, end);
            }

            p = ref_json_skip(p, end, depth - 1, strict);
            if (p == NULL) {
                return NULL;
            }

            p = ngx_http_ai_json_space(p, end);

            if (p >= end) {
                return NULL;
            }

            if (*p == close) {
                return p + 1;
            }

            if (*p != ',') {
                return NULL;
            }

            p = ngx_http_ai_json_space(p + 1, end);
        }

    default:
        if (strict) {
            return ref_json_number(p, end);
        }

        start = p;

        while (p < end
               && ((*p >= '0' && *p <= '9') || *p == '-' || *p == '+'
                   || *p == '.' || *p == 'e' || *p == 'E'))
        {
            p++;
        }

        if (p > start) {
            return p;
        }

        return ref_json_literal(p, end);
    }
}


static u_char *
ref_json_number(u_char *p, u_char *end)
{
    u_char  *start;

    start = p;

    if (p < end && *p == '-') {
        p++;
    }

    if (p < end && *p == '0') {
        p++;

    } else if (p < end && *p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }

    } else {
        return ref_json_literal(start, end);
    }

    if (p < end && *p == '.') {
        if (++p >= end || *p < '0' || *p > '9') {
            return NULL;
        }

        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
    }

    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;

        if (p < end && (*p == '+' || *p == '-')) {
            p++;
        }

        if (p >= end || *p < '0' || *p > '9') {
            return NULL;
        }

        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
    }

    if (p - start > 63
        || (p < end && ((*p >= '0' && *p <= '9') || *p == '+' || *p == '-'
                        || *p == '.' || *p == 'e' || *p == 'E')))
    {
        return NULL;
    }

    return p;
}


static u_char *
ref_json_literal(u_char *p, u_char *end)
{
    if (end - p >= 4
        && ((p[0] == 'n' && p[1] == 'u' && p[2] == 'l' && p[3] == 'l')
            || (p[0] == 't' && p[1] == 'r' && p[2] == 'u' && p[3] == 'e')))
    {
        return p + 4;
    }

    if (end - p >= 5 && p[0] == 'f' && p[1] == 'a' && p[2] == 'l'
        && p[3] == 's' && p[4] == 'e')
    {
        return p + 5;
    }

    return NULL;
}


static u_char *
ref_json_escape(u_char *p, u_char *end)
{
    ngx_uint_t  c;

    if (p + 1 >= end) {
        return NULL;
    }

    switch (p[1]) {

    case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r':
    case 't':
        return p + 1;

    case 'u':
        c = ref_json_hex4(p + 2, end);

        if (c >= 0xdc00 && c <= 0xdfff) {
            return NULL;                    /* a second half alone */
        }

        if (c >= 0xd800 && c <= 0xdbff) {
            if (p + 7 >= end || p[6] != '\\' || p[7] != 'u') {
                return NULL;
            }

            c = ref_json_hex4(p + 8, end);

            if (c < 0xdc00 || c > 0xdfff) {
                return NULL;
            }

            return p + 11;
        }

        return (c == (ngx_uint_t) -1) ? NULL : p + 5;

    default:
        return NULL;
    }
}


static ngx_uint_t
ref_json_hex4(u_char *p, u_char *end)
{
    u_char      ch;
    ngx_uint_t  i, c;

    if (end - p < 4) {
        return (ngx_uint_t) -1;
    }

    c = 0;

    for (i = 0; i < 4; i++) {
        ch = p[i] | 0x20;

        if (p[i] >= '0' && p[i] <= '9') {
            c = c * 16 + (p[i] - '0');

        } else if (ch >= 'a' && ch <= 'f') {
            c = c * 16 + (ch - 'a' + 10);

        } else {
            return (ngx_uint_t) -1;
        }
    }

    return c;
}


static void
test_skip_as_before(void **state)
{
    u_char       buf[256];
    size_t       n, len, cut, i, k;
    ngx_uint_t   depth, strict;
    unsigned     seed;
    const char  *pieces[] = {
        "{", "}", "[", "]", ":", ",", " ", "\n", "\"a\"", "\"key\"",
        "\"b\\\"c\"", "\"\\u00e9\"", "\"\\ud83d\\ude00\"", "\"\\ud800\"",
        "\"\\x\"", "\"\x01\"", "\"\\\\\"", "1", "-0.5e+3", "01", "+1",
        "1.", "1e", "null", "tru", "true", "false", "\"", "\\", "{\"k\":",
        "[1,", "{\"a\":[{\"b\":null}]}", "-", "0", "12345678901234567890"
    };

    seed = 1;

    for (i = 0; i < 200000; i++) {
        len = 0;
        n = 1 + (seed = seed * 1103515245 + 12345) % 12;

        while (n--) {
            k = (seed = seed * 1103515245 + 12345) % (sizeof(pieces)
                                                    / sizeof(pieces[0]));

            if (len + strlen(pieces[k]) >= sizeof(buf)) {
                break;
            }

            memcpy(buf + len, pieces[k], strlen(pieces[k]));
            len += strlen(pieces[k]);
        }

        for (cut = (i % 8 == 0) ? 0 : len; cut <= len; cut++) {
            for (depth = 0; depth <= 4; depth++) {
                for (strict = 0; strict < 2; strict++) {
                    u_char  *got, *want;

                    got = ngx_http_ai_json_skip(buf, buf + cut, depth, strict);
                    want = ref_json_skip(buf, buf + cut, depth, strict);

                    if (got != want) {
                        print_error("\"%.*s\" depth %d strict %d: %td, "
                                    "want %td\n", (int) cut, buf,
                                    (int) depth, (int) strict,
                                    got ? got - buf : -1,
                                    want ? want - buf : -1);
                    }

                    assert_ptr_equal(got, want);
                }
            }
        }
    }
}


/*
 * A translator's read of the usage the core has just read is a compare:
 * the answer of the last read in place is taken for the same bytes into
 * the same usage only (not for other bytes of the same length, another
 * usage before, another format).
 */

static void
test_memo(void **state)
{
    cJSON                *json;
    ngx_str_t             d, o;
    ngx_http_ai_usage_t   a, r, c;

    static const char  *event =
        "{\"id\":\"x\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,"
        "\"completion_tokens\":5,\"total_tokens\":17,"
        "\"prompt_tokens_details\":{\"cached_tokens\":4}}}";
    static const char  *same =
        "{\"prompt_tokens\":12,\"completion_tokens\":5,\"total_tokens\":17,"
        "\"prompt_tokens_details\":{\"cached_tokens\":4}}";
    static const char  *other =
        "{\"prompt_tokens\":21,\"completion_tokens\":5,\"total_tokens\":26,"
        "\"prompt_tokens_details\":{\"cached_tokens\":4}}";

    d.data = (u_char *) event;
    d.len = strlen(event);

    memset(&a, 0, sizeof(a));
    assert_int_equal(ngx_http_ai_usage_parse(NGX_HTTP_AI_FMT_OPENAI, &d, &a),
                     NGX_OK);
    assert_int_equal(a.prompt_tokens, 12);

    /* the same bytes into the same usage: the same answer */

    o.data = (u_char *) same;
    o.len = strlen(same);
    memset(&r, 0, sizeof(r));
    assert_int_equal(ngx_http_ai_usage_raw(NGX_HTTP_AI_FMT_OPENAI, &o, &r),
                     NGX_OK);
    assert_memory_equal(&r, &a, sizeof(r));

    /* other bytes of the same length: read */

    assert_int_equal(strlen(other), strlen(same));
    o.data = (u_char *) other;
    memset(&r, 0, sizeof(r));
    assert_int_equal(ngx_http_ai_usage_raw(NGX_HTTP_AI_FMT_OPENAI, &o, &r),
                     NGX_OK);
    assert_int_equal(r.prompt_tokens, 21);
    assert_int_equal(r.total_tokens, 26);

    /* the same bytes into another usage: read, as cJSON reads it */

    o.data = (u_char *) same;
    memset(&r, 0, sizeof(r));
    r.reasoning_tokens = 3;
    r.completion_tokens = 9;
    assert_int_equal(ngx_http_ai_usage_raw(NGX_HTTP_AI_FMT_OPENAI, &o, &r),
                     NGX_OK);

    json = cJSON_Parse(same);
    memset(&c, 0, sizeof(c));
    c.reasoning_tokens = 3;
    c.completion_tokens = 9;
    ngx_http_ai_usage_object(NGX_HTTP_AI_FMT_OPENAI, json, &c);
    cJSON_Delete(json);

    assert_memory_equal(&r, &c, sizeof(r));
    assert_int_equal(r.reasoning_tokens, 3);
    assert_int_equal(r.completion_tokens, 5);

    /* the same bytes read as another format */

    o.data = (u_char *) same;
    memset(&r, 0, sizeof(r));
    assert_int_equal(ngx_http_ai_usage_raw(NGX_HTTP_AI_FMT_ANTHROPIC, &o,
                                           &r),
                     NGX_OK);
    assert_int_equal(r.prompt_tokens, 0);
    assert_int_equal(r.completion_tokens, 0);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openai_plain),
        cmocka_unit_test(test_many_members),
        cmocka_unit_test(test_openai_stream),
        cmocka_unit_test(test_anthropic_stream_adds_up),
        cmocka_unit_test(test_gemini),
        cmocka_unit_test(test_responses),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_scanner_as_cjson),
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_skip_strings),
        cmocka_unit_test(test_skip_as_before),
        cmocka_unit_test(test_memo),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
