
/*
 * Unit tests of endpoint classification and request normalization.
 */


#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <dirent.h>
#include <time.h>

#include "ngx_http_ai_core.h"
#include "ngx_http_ai_core_json.h"


static void as_cjson(const char *body, size_t len);


static ngx_int_t parse_n(ngx_uint_t endpoint, u_char *body, size_t len,
    ngx_http_ai_request_t *req, const char **param, ngx_str_t *err);


static ngx_int_t
parse(ngx_uint_t endpoint, const char *body, ngx_http_ai_request_t *req,
    const char **param, ngx_str_t *err)
{
    return parse_n(endpoint, (u_char *) body, strlen(body), req, param, err);
}


static ngx_int_t
parse_n(ngx_uint_t endpoint, u_char *body, size_t len,
    ngx_http_ai_request_t *req, const char **param, ngx_str_t *err)
{
    ngx_str_t  *mp, model;

    memset(req, 0, sizeof(ngx_http_ai_request_t));
    req->endpoint = endpoint;
    req->max_tokens = NGX_HTTP_AI_UNSET;
    req->body.data = body;
    req->body.len = len;

    *param = NULL;
    ngx_str_set(&model, "gemini-x");
    mp = (endpoint == NGX_HTTP_AI_EP_GEMINI) ? &model : NULL;

    return ngx_http_ai_parse_request(NULL, req, mp, param, err);
}


static void
assert_str(ngx_str_t *s, const char *expected)
{
    if (s->len != strlen(expected)
        || memcmp(s->data, expected, s->len) != 0)
    {
        fail_msg("got \"%.*s\", expected \"%s\"", (int) s->len, s->data,
                 expected);
    }
}


static void
test_endpoints(void **state)
{
    ngx_str_t   uri;
    ngx_uint_t  fmt;

    ngx_str_set(&uri, "/v1/chat/completions");
    assert_int_equal(ngx_http_ai_endpoint(&uri, &fmt), NGX_HTTP_AI_EP_CHAT);
    assert_int_equal(fmt, NGX_HTTP_AI_FMT_OPENAI);

    ngx_str_set(&uri, "/openai/deployments/d1/chat/completions/");
    assert_int_equal(ngx_http_ai_endpoint(&uri, &fmt), NGX_HTTP_AI_EP_CHAT);

    ngx_str_set(&uri, "/v1/embeddings");
    assert_int_equal(ngx_http_ai_endpoint(&uri, &fmt),
                     NGX_HTTP_AI_EP_EMBEDDINGS);

    ngx_str_set(&uri, "/v1/models");
    assert_int_equal(ngx_http_ai_endpoint(&uri, &fmt), NGX_HTTP_AI_EP_MODELS);

    ngx_str_set(&uri, "/v1/models/gpt-4o");
    assert_int_equal(ngx_http_ai_endpoint(&uri, &fmt), NGX_HTTP_AI_EP_MODELS);

    ngx_str_set(&uri, "/v1/messages");
    assert_int_equal(ngx_http_ai_endpoint(&uri, &fmt),
                     NGX_HTTP_AI_EP_MESSAGES);
    assert_int_equal(fmt, NGX_HTTP_AI_FMT_ANTHROPIC);

    ngx_str_set(&uri, "/v1beta/models/gemini-2.0-flash:generateContent");
    assert_int_equal(ngx_http_ai_endpoint(&uri, &fmt), NGX_HTTP_AI_EP_GEMINI);
    assert_int_equal(fmt, NGX_HTTP_AI_FMT_GEMINI);

    ngx_str_set(&uri, "/v1/audio/speech");
    assert_int_equal(ngx_http_ai_endpoint(&uri, &fmt),
                     NGX_HTTP_AI_EP_UNKNOWN);

    ngx_str_set(&uri, "/");
    assert_int_equal(ngx_http_ai_endpoint(&uri, &fmt),
                     NGX_HTTP_AI_EP_UNKNOWN);
}


static void
test_chat_view(void **state)
{
    ngx_str_t               err;
    const char             *param;
    ngx_http_ai_message_t  *m;
    ngx_http_ai_request_t   req;

    assert_int_equal(parse(NGX_HTTP_AI_EP_CHAT,
        "{\"model\":\"gpt-4o\",\"stream\":true,"
        "\"stream_options\":{\"include_usage\":true},\"max_tokens\":99,"
        "\"messages\":[{\"role\":\"system\",\"content\":\"be nice\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"x\"}},"
        "{\"type\":\"text\",\"text\":\"b\"}]},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[]}],"
        "\"tools\":[{\"type\":\"function\"}]}  \n",
        &req, &param, &err), NGX_OK);

    assert_str(&req.model, "gpt-4o");
    assert_true(req.stream);
    assert_true(req.include_usage);
    assert_true(req.tools);
    assert_int_equal(req.max_tokens, 99);
    assert_int_equal(req.messages.nelts, 3);

    m = req.messages.elts;
    assert_str(&m[0].role, "system");
    assert_str(&m[0].text, "be nice");
    assert_str(&m[1].text, "a\nb");
    assert_int_equal(m[1].nparts, 3);
    assert_true(m[1].images);
    assert_true(m[2].tool_calls);
    assert_int_equal(req.text_len, 7 + 3);

    cJSON_Delete(req.json);
}


static void
test_max_completion_tokens_wins(void **state)
{
    ngx_str_t               err;
    const char             *param;
    ngx_http_ai_request_t   req;

    assert_int_equal(parse(NGX_HTTP_AI_EP_CHAT,
        "{\"model\":\"o3\",\"max_tokens\":5,\"max_completion_tokens\":50,"
        "\"messages\":[{\"role\":\"developer\",\"content\":\"x\"}]}",
        &req, &param, &err), NGX_OK);
    assert_int_equal(req.max_tokens, 50);
    cJSON_Delete(req.json);
}


static void
test_errors(void **state)
{
    ngx_str_t               err;
    const char             *param;
    ngx_http_ai_request_t   req;

    assert_int_equal(parse(NGX_HTTP_AI_EP_CHAT, "{\"model\":", &req, &param,
                           &err), NGX_DECLINED);
    assert_non_null(strstr((char *) err.data, "not valid JSON"));

    assert_int_equal(parse(NGX_HTTP_AI_EP_CHAT, "{} x", &req, &param, &err),
                     NGX_DECLINED);
    cJSON_Delete(req.json);

    assert_int_equal(parse(NGX_HTTP_AI_EP_CHAT,
                           "{\"model\":\"m\",\"messages\":{}}",
                           &req, &param, &err), NGX_DECLINED);
    assert_string_equal(param, "messages");
    assert_str(&err, "'messages' must be an array");
    cJSON_Delete(req.json);

    assert_int_equal(parse(NGX_HTTP_AI_EP_CHAT,
                           "{\"model\":\"m\",\"messages\":[]}",
                           &req, &param, &err), NGX_DECLINED);
    assert_str(&err, "'messages' must not be empty");
    cJSON_Delete(req.json);

    assert_int_equal(parse(NGX_HTTP_AI_EP_CHAT,
                           "{\"model\":\"m\",\"messages\":[{\"content\":\"x\"}]}",
                           &req, &param, &err), NGX_DECLINED);
    assert_string_equal(param, "messages");
    assert_str(&err, "'role' is required");
    cJSON_Delete(req.json);

    assert_int_equal(parse(NGX_HTTP_AI_EP_CHAT,
                           "{\"model\":\"m\",\"messages\":[{\"role\":\"user\","
                           "\"content\":[{\"type\":\"text\",\"text\":1}]}]}",
                           &req, &param, &err), NGX_DECLINED);
    assert_str(&err, "a content part's 'text' must be a string");
    cJSON_Delete(req.json);

    assert_int_equal(parse(NGX_HTTP_AI_EP_CHAT,
                           "{\"model\":\"m\",\"max_tokens\":1.5,"
                           "\"messages\":[{\"role\":\"user\",\"content\":\"\"}]}",
                           &req, &param, &err), NGX_DECLINED);
    assert_string_equal(param, "max_tokens");
    cJSON_Delete(req.json);
}


static void
test_anthropic_view(void **state)
{
    ngx_str_t               err;
    const char             *param;
    ngx_http_ai_message_t  *m;
    ngx_http_ai_request_t   req;

    assert_int_equal(parse(NGX_HTTP_AI_EP_MESSAGES,
        "{\"model\":\"claude\",\"max_tokens\":10,\"stream\":true,"
        "\"system\":\"sys\",\"messages\":[{\"role\":\"user\",\"content\":"
        "[{\"type\":\"text\",\"text\":\"hi\"},{\"type\":\"image\","
        "\"source\":{}}]}]}", &req, &param, &err), NGX_OK);

    assert_str(&req.system, "sys");
    assert_int_equal(req.max_tokens, 10);
    m = req.messages.elts;
    assert_str(&m[0].text, "hi");
    assert_true(m[0].images);
    cJSON_Delete(req.json);

    assert_int_equal(parse(NGX_HTTP_AI_EP_MESSAGES,
        "{\"model\":\"claude\",\"max_tokens\":10,\"messages\":"
        "[{\"role\":\"system\",\"content\":\"x\"}]}", &req, &param, &err),
        NGX_DECLINED);
    cJSON_Delete(req.json);
}


static void
test_gemini_view(void **state)
{
    ngx_str_t               err;
    const char             *param;
    ngx_http_ai_message_t  *m;
    ngx_http_ai_request_t   req;

    assert_int_equal(parse(NGX_HTTP_AI_EP_GEMINI,
        "{\"systemInstruction\":{\"parts\":[{\"text\":\"sys\"}]},"
        "\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"a\"},"
        "{\"inlineData\":{}}]},{\"parts\":[{\"text\":\"b\"}]}],"
        "\"generationConfig\":{\"maxOutputTokens\":7}}",
        &req, &param, &err), NGX_OK);

    assert_str(&req.model, "gemini-x");
    assert_str(&req.system, "sys");
    assert_int_equal(req.max_tokens, 7);
    assert_int_equal(req.messages.nelts, 2);
    m = req.messages.elts;
    assert_true(m[0].images);
    assert_str(&m[1].role, "user");
    cJSON_Delete(req.json);
}


static void
test_embeddings_view(void **state)
{
    ngx_str_t               err;
    const char             *param;
    ngx_http_ai_request_t   req;

    assert_int_equal(parse(NGX_HTTP_AI_EP_EMBEDDINGS,
        "{\"model\":\"e\",\"input\":[\"abc\",\"de\",[1,2]]}",
        &req, &param, &err), NGX_OK);
    assert_int_equal(req.text_len, 6);
    cJSON_Delete(req.json);
}


/*
 * A field twice: the error names the first of the checked fields (in the
 * parser's order, not the body's) that came twice; a field not checked
 * may repeat; many members are read in one pass.
 */

static void
test_duplicates(void **state)
{
    char                   *body, *p;
    ngx_str_t               err;
    ngx_uint_t              i;
    const char             *param;
    ngx_http_ai_request_t   req;

    assert_int_equal(parse(NGX_HTTP_AI_EP_CHAT,
        "{\"stream\":true,\"stream\":false,\"model\":\"a\","
        "\"model\":\"b\",\"messages\":[]}",
        &req, &param, &err), NGX_DECLINED);
    assert_string_equal(param, "model");
    assert_int_equal(strncmp((char *) err.data, "'model' must not appear "
                             "twice", 29), 0);

    assert_int_equal(parse(NGX_HTTP_AI_EP_CHAT,
        "{\"model\":\"a\",\"messages\":[{\"role\":\"user\","
        "\"content\":\"x\",\"tool_call_id\":\"1\","
        "\"tool_call_id\":\"2\"}]}",
        &req, &param, &err), NGX_DECLINED);
    assert_string_equal(param, "messages");
    assert_int_equal(strncmp((char *) err.data, "'tool_call_id' must not",
                             23), 0);

    /* "temperature" is not one of them: twice is the provider's affair */

    assert_int_equal(parse(NGX_HTTP_AI_EP_CHAT,
        "{\"model\":\"a\",\"temperature\":1,\"temperature\":2,"
        "\"messages\":[{\"role\":\"user\",\"content\":\"x\","
        "\"name\":\"n\",\"name\":\"m\"}]}",
        &req, &param, &err), NGX_OK);
    cJSON_Delete(req.json);

    /* 20,000 members, the last a second "messages" */

    body = malloc(20000 * 16 + 64);
    assert_non_null(body);

    p = body + sprintf(body, "{\"model\":\"a\",\"messages\":[]");

    for (i = 0; i < 20000; i++) {
        p += sprintf(p, ",\"x%05u\":%u", (unsigned) i, (unsigned) i);
    }

    sprintf(p, ",\"messages\":[]}");

    assert_int_equal(parse(NGX_HTTP_AI_EP_CHAT, body, &req, &param, &err),
                     NGX_DECLINED);
    assert_string_equal(param, "messages");

    free(body);
}


/*
 * The request's tree is built by the core from a text the strict scanner
 * checked, not by cJSON: it must be the tree cJSON builds, node for node
 * (types, names, strings, numbers, the links and the first child's prev),
 * on every text, and a text cJSON refuses must be refused the same.
 */

static void
same_tree(cJSON *a, cJSON *b, const char *body)
{
    cJSON       *x, *y;
    ngx_uint_t   n, i, j;

    if (a == NULL || b == NULL) {
        if (a != b) {
            fail_msg("one tree of two for %s", body);
        }

        return;
    }

    if (a->type != b->type
        || (a->string == NULL) != (b->string == NULL)
        || (a->string && strcmp(a->string, b->string) != 0)
        || (a->valuestring == NULL) != (b->valuestring == NULL)
        || (a->valuestring && strcmp(a->valuestring, b->valuestring) != 0)
        || a->valueint != b->valueint
        || memcmp(&a->valuedouble, &b->valuedouble, sizeof(double)) != 0)
    {
        fail_msg("nodes differ (type %d/%d, \"%s\"/\"%s\", %d/%d, %.17g/%.17g)"
                 " in %s", a->type, b->type,
                 a->valuestring ? a->valuestring : "",
                 b->valuestring ? b->valuestring : "",
                 a->valueint, b->valueint, a->valuedouble, b->valuedouble,
                 body);
    }

    for (n = 0, x = a->child, y = b->child; x || y;
         n++, x = x->next, y = y->next)
    {
        if (x == NULL || y == NULL) {
            fail_msg("children differ in %s", body);
        }

        same_tree(x, y, body);
    }

    /* the links: prev is the one before, the first's the last */

    for (i = 0, x = a->child, y = b->child; x; i++, x = x->next,
         y = y->next)
    {
        cJSON  *px, *py;

        px = x->prev;
        py = y->prev;

        for (j = 0; j < n; j++) {
            cJSON  *cx, *cy;
            ngx_uint_t  k;

            for (k = 0, cx = a->child; k < j; k++) { cx = cx->next; }
            for (k = 0, cy = b->child; k < j; k++) { cy = cy->next; }

            if ((cx == px) != (cy == py)) {
                fail_msg("prev links differ in %s", body);
            }
        }

        if ((px == NULL) != (py == NULL)) {
            fail_msg("prev links differ in %s", body);
        }
    }
}


/*
 * ngx_http_ai_json_plain() stops where a byte at a time would: at the
 * first control character, quote or backslash, in words and in the tail,
 * whatever the bytes around it (UTF-8's high bytes among them)
 */

static void
test_json_plain(void **state)
{
    u_char       buf[160], *want, *p;
    size_t       len, i, j, f, b;

    static const u_char  fill[] = { 'a', ' ', '!', 0x7f, 0x80, 0xc3, 0xff,
                                    '[', ']', 0x21, 0x23, 0x5b, 0x5d };
    static const u_char  byte[] = { 0x00, 0x01, 0x0a, 0x1f, '"', '\\',
                                    0x20, 0x22 ^ 0x80, 0x5c ^ 0x80, 0x9f };

    /*
     * every length to 40 (the 16- and 8-byte steps, the last bytes), then
     * around 64 and 128 and to 160 (the 64-byte blocks after the first 64)
     */

    for (len = 0; len <= sizeof(buf);
         len += (len < 40 || (len >= 60 && len < 72) || len >= 120) ? 1 : 5)
    {
        for (f = 0; f < sizeof(fill); f++) {
            memset(buf, fill[f], sizeof(buf));
            assert_ptr_equal(ngx_http_ai_json_plain(buf, buf + len),
                             buf + len);

            for (i = 0; i < len; i++) {
                for (b = 0; b < sizeof(byte); b++) {
                    memset(buf, fill[f], sizeof(buf));
                    buf[i] = byte[b];

                    for (j = i + 1; j < len; j += 3) {
                        /* a second one after: the first is the answer */
                        buf[j] = (j % 2) ? '"' : fill[f];
                    }

                    for (want = buf; want < buf + len; want++) {
                        if (*want < 0x20 || *want == '"' || *want == '\\') {
                            break;
                        }
                    }

                    p = ngx_http_ai_json_plain(buf, buf + len);

                    if (p != want) {
                        fail_msg("length %zu, fill 0x%02x, 0x%02x at %zu: "
                                 "%td, want %td", len, fill[f], byte[b], i,
                                 p - buf, want - buf);
                    }
                }
            }
        }
    }
}


/*
 * What the strict scan of a 1 MB prompt costs (printed; the least of 5
 * passes, the machine is shared), against the loop a byte at a time over
 * its strings that it was: AI_JSON_BENCH=1 build/test_request
 */

static double
elapsed(struct timespec *a)
{
    struct timespec  b;

    clock_gettime(CLOCK_MONOTONIC, &b);

    return (b.tv_sec - a->tv_sec) * 1e3 + (b.tv_nsec - a->tv_nsec) / 1e6;
}


static void
test_json_scan_speed(void **state)
{
    u_char           *body, *p, *end, *last;
    size_t            len, n;
    double            t, scan, bytes;
    ngx_uint_t        pass;
    struct timespec   a;

    static const char  words[] = "the quick brown fox jumps over the lazy "
                                 "dog while the gateway counts every "
                                 "token of it ";

    if (getenv("AI_JSON_BENCH") == NULL) {
        skip();
    }

    len = 1024 * 1024;
    body = malloc(len + 128);
    assert_non_null(body);

    p = (u_char *) stpcpy((char *) body, "{\"model\":\"gpt-4o\",\"messages\":"
                          "[{\"role\":\"user\",\"content\":\"");

    for (n = 0; p + sizeof(words) < body + len; n++) {
        p = ngx_cpymem(p, words, sizeof(words) - 1);
    }

    p = (u_char *) stpcpy((char *) p, "\"}]}");
    end = p;

    scan = bytes = 1e9;

    for (pass = 0; pass < 5; pass++) {
        clock_gettime(CLOCK_MONOTONIC, &a);
        last = ngx_http_ai_json_skip(body, end, NGX_HTTP_AI_JSON_CJSON_DEPTH,
                                     1);
        t = elapsed(&a);
        assert_ptr_equal(last, end);
        scan = (t < scan) ? t : scan;

        clock_gettime(CLOCK_MONOTONIC, &a);
        for (p = body; p < end && *p >= 0x20; p++) {
            if (*p == '\\') {
                break;
            }
        }
        t = elapsed(&a);
        assert_ptr_equal(p, end);
        bytes = (t < bytes) ? t : bytes;
    }

    printf("strict scan of %zu bytes: %.3f ms; a byte at a time: %.3f ms\n",
           (size_t) (end - body), scan, bytes);

    free(body);
}


/*
 * what the strict scan counts for the tree's pool: a value each (the
 * body, containers, members' values, elements), a string each (string
 * values and keys), whatever the spaces
 */

static void
test_json_count(void **state)
{
    u_char                    *p, *end, *last;
    ngx_uint_t                 i;
    ngx_http_ai_json_count_t   count;

    static const struct {
        const char  *text;
        size_t       values;
        size_t       strings;
    } cases[] = {
        { "{\"a\":[1,\"x\"],\"b\":{}}", 5, 3 },
        { " { \"a\" : [ ] , \"b\" : null } ", 3, 2 },
        { "[\"s\",\"t\\\"u\",true,-1.5e3,[[]]]", 7, 2 },
        { "\"alone\"", 1, 1 },
        { "42", 1, 0 }
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        p = (u_char *) cases[i].text;
        end = p + strlen(cases[i].text);
        p = ngx_http_ai_json_space(p, end);

        ngx_memzero(&count, sizeof(ngx_http_ai_json_count_t));

        last = ngx_http_ai_json_skip_count(p, end,
                                           NGX_HTTP_AI_JSON_CJSON_DEPTH, 1,
                                           &count);
        assert_ptr_equal(ngx_http_ai_json_space(last, end), end);

        if (count.values != cases[i].values
            || count.strings != cases[i].strings)
        {
            fail_msg("%s: %zu values, %zu strings; want %zu, %zu",
                     cases[i].text, count.values, count.strings,
                     cases[i].values, cases[i].strings);
        }
    }
}


/*
 * The strict scan notes the long strings without an escape, values and
 * keys, in order, with their quotes, up to max_plain; not those with an
 * escape, a control character or of NGX_HTTP_AI_JSON_LONG bytes or less
 */

static void
test_json_plain_noted(void **state)
{
    char                      *q;
    u_char                    *p, *end, *last;
    ngx_http_ai_json_plain_t   plain[4];
    ngx_http_ai_json_count_t   count;

    static char        text[4096];
    static const char  long65[] =
        "0123456789012345678901234567890123456789012345678901234567890123";

    /* a long key, a long value, a long one with an escape, a short one */

    q = text;
    q += sprintf(q, "{\"k%s\":\"v%s\",\"e\":\"%s\\n%s\",\"s\":\"%.*s\","
                 "\"a\":[\"w%s\"]}", long65, long65, long65, long65,
                 NGX_HTTP_AI_JSON_LONG - 1, long65, long65);

    p = (u_char *) text;
    end = p + (q - text);

    ngx_memzero(&count, sizeof(ngx_http_ai_json_count_t));
    count.plain = plain;
    count.max_plain = 4;

    last = ngx_http_ai_json_skip_count(p, end, NGX_HTTP_AI_JSON_CJSON_DEPTH,
                                       1, &count);
    assert_ptr_equal(last, end);
    assert_int_equal(count.nplain, 3);

    assert_ptr_equal(plain[0].start, (u_char *) strstr(text, "\"k0"));
    assert_ptr_equal(plain[0].quote, plain[0].start + 1 + 1 + 64);
    assert_ptr_equal(plain[1].start, (u_char *) strstr(text, "\"v0"));
    assert_int_equal(*plain[1].quote, '"');
    assert_ptr_equal(plain[2].start, (u_char *) strstr(text, "\"w0"));
    assert_ptr_equal(plain[2].quote, plain[2].start + 1 + 1 + 64);

    /* up to max_plain: the rest scanned as before, the same end */

    count.nplain = 0;
    count.max_plain = 2;

    last = ngx_http_ai_json_skip_count(p, end, NGX_HTTP_AI_JSON_CJSON_DEPTH,
                                       1, &count);
    assert_ptr_equal(last, end);
    assert_int_equal(count.nplain, 2);

    /* a control character, an unfinished string: refused as before */

    q = text;
    q += sprintf(q, "{\"a\":\"%s\x01\"}", long65);
    end = (u_char *) q;
    count.nplain = 0;
    count.max_plain = 4;

    assert_null(ngx_http_ai_json_skip_count(p, end,
                                            NGX_HTTP_AI_JSON_CJSON_DEPTH, 1,
                                            &count));

    q = text;
    q += sprintf(q, "{\"a\":\"%s", long65);
    end = (u_char *) q;

    assert_null(ngx_http_ai_json_skip_count(p, end,
                                            NGX_HTTP_AI_JSON_CJSON_DEPTH, 1,
                                            &count));
}


/*
 * The tree of long strings, keys and values, with escapes or not (first,
 * in the middle, last), more than the scan notes, is cJSON's
 */

static void
test_tree_long_strings(void **state)
{
    char        *q;
    size_t       n, i, k;
    static char          text[400000], s[80000];
    static const size_t  lens[] = { 63, 64, 65, 66, 100, 1000, 70000 };
    static const char   *escs[] = { "", "\\n", "\\u00e9", "\\\"" };

    for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        for (k = 0; k < sizeof(escs) / sizeof(escs[0]); k++) {

            for (n = 0; n < lens[i]; n++) {
                s[n] = 'a' + n % 26;
            }

            s[n] = '\0';

            q = text;
            q += sprintf(q, "{\"model\":\"m\",\"%s\":\"%s%s\",", s,
                         escs[k], s);
            q += sprintf(q, "\"b\":[\"%s%s%s\",\"%s%s\"],\"c\":\"x\"}",
                         s, escs[k], s, s, escs[k]);

            as_cjson(text, q - text);
        }
    }

    /* 300 long strings: more than the scan notes for the tree */

    for (n = 0; n < 100; n++) {
        s[n] = 'A' + n % 26;
    }

    s[n] = '\0';

    q = text;
    q += sprintf(q, "{\"model\":\"m\",\"a\":[");

    for (i = 0; i < 300; i++) {
        q += sprintf(q, "%s\"%s%zu%s\"", i ? "," : "", s, i,
                     (i % 7 == 0) ? "\\t" : "");
    }

    q += sprintf(q, "]}");

    as_cjson(text, q - text);
}


/* ngx_http_ai_json_item() finds what cJSON finds, in every container */

static void
same_items(cJSON *j)
{
    cJSON       *item;
    ngx_uint_t   i;

    static const char  *absent[] = { "", "model", "zz", "a", "\"" };

    if (j == NULL) {
        return;
    }

    for (i = 0; i < sizeof(absent) / sizeof(absent[0]); i++) {
        assert_ptr_equal(ngx_http_ai_json_item(j, absent[i]),
                         cJSON_GetObjectItemCaseSensitive(j, absent[i]));
    }

    for (item = j->child; item; item = item->next) {
        if (item->string) {
            assert_ptr_equal(ngx_http_ai_json_item(j, item->string),
                             cJSON_GetObjectItemCaseSensitive(j,
                                                              item->string));
        }

        same_items(item);
    }
}


static void
as_cjson(const char *body, size_t len)
{
    cJSON                  *c;
    ngx_str_t               err;
    const char             *param, *end;
    ngx_http_ai_request_t   req;

    memset(&req, 0, sizeof(ngx_http_ai_request_t));
    req.endpoint = NGX_HTTP_AI_EP_CHAT;
    req.max_tokens = NGX_HTTP_AI_UNSET;
    req.body.data = (u_char *) body;
    req.body.len = len;
    param = NULL;

    (void) ngx_http_ai_parse_request(NULL, &req, NULL, &param, &err);

    if (memchr(body, '\0', len) || strstr(body, "\\u0000")) {
        /* refused before any parse */
        cJSON_Delete(req.json);
        return;
    }

    end = NULL;
    c = cJSON_ParseWithLengthOpts(body, len, &end, 0);

    same_tree(ngx_http_ai_request_tree(&req), c, body);
    same_items(c);

    cJSON_Delete(c);
    cJSON_Delete(req.json);
}


/* a random JSON text, valid most times: a value at depth d */

static unsigned long  rnd_state = 12345;

static unsigned
rnd(unsigned n)
{
    rnd_state = rnd_state * 6364136223846793005UL + 1442695040888963407UL;
    return (unsigned) ((rnd_state >> 33) % n);
}


static void
rnd_space(char **p)
{
    static const char  ws[] = " \t\r\n";

    while (rnd(4) == 0) {
        *(*p)++ = ws[rnd(4)];
    }
}


static void
rnd_string(char **p)
{
    unsigned     i, n;
    static const char  *pieces[] = {
        "a", "Z", "0", " ", "\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n",
        "\\r", "\\t", "\\u00e9", "\\u20AC", "\\ud83d\\ude00", "\\u0041",
        "\xc3\xa9", "\xe2\x82\xac", "\\uDBFF\\uDFFF", "\\u007f", "x"
    };

    *(*p)++ = '"';

    for (i = 0, n = rnd(6); i < n; i++) {
        *p = stpcpy(*p, pieces[rnd(sizeof(pieces) / sizeof(pieces[0]))]);
    }

    *(*p)++ = '"';
}


static void
rnd_value(char **p, char *end, unsigned d)
{
    unsigned     i, n, k;
    static const char  *numbers[] = {
        "0", "-0", "1", "42", "-17", "1.5", "-0.25", "1e3", "1E+2", "2e-3",
        "123456789012345", "1234567890123456", "12345678901234567890",
        "1e400", "-1e400", "2147483647", "2147483648", "-2147483649",
        "0.1", "3.141592653589793238", "5e-324", "1.7976931348623157e308"
    };

    if (*p > end - 200) {
        *p = stpcpy(*p, "null");
        return;
    }

    k = (d > 6) ? rnd(5) : rnd(7);

    switch (k) {
    case 0:
        *p = stpcpy(*p, rnd(2) ? "true" : "false");
        break;
    case 1:
        *p = stpcpy(*p, "null");
        break;
    case 2:
        *p = stpcpy(*p, numbers[rnd(sizeof(numbers) / sizeof(numbers[0]))]);
        break;
    case 3:
    case 4:
        rnd_string(p);
        break;
    case 5:
        *(*p)++ = '[';
        rnd_space(p);
        for (i = 0, n = rnd(5); i < n; i++) {
            if (i) { *(*p)++ = ','; rnd_space(p); }
            rnd_value(p, end, d + 1);
            rnd_space(p);
        }
        *(*p)++ = ']';
        break;
    default:
        *(*p)++ = '{';
        rnd_space(p);
        for (i = 0, n = rnd(5); i < n; i++) {
            if (i) { *(*p)++ = ','; rnd_space(p); }
            if (rnd(4) == 0) { *p = stpcpy(*p, "\"model\""); }
            else { rnd_string(p); }
            rnd_space(p);
            *(*p)++ = ':';
            rnd_space(p);
            rnd_value(p, end, d + 1);
            rnd_space(p);
        }
        *(*p)++ = '}';
    }

    **p = '\0';
}


static void
test_tree_as_cjson(void **state)
{
    char            buf[8192], *p, *name, path[512];
    FILE           *f;
    size_t          len, i;
    unsigned        n;
    DIR            *dir;
    struct dirent  *de;

    static const char  *texts[] = {
        "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\","
            "\"content\":\"hi\"}]}",
        " \t\r\n{ \"a\" : [ 1 , 2 ] , \"b\" : { } , \"c\" : [ ] } \n",
        "{\"a\":1,\"a\":2,\"a\":\"x\"}",
        "{\"s\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\u20ac\\ud83d\\ude00\"}",
        "{\"k\\u00e9y\":1,\"\\\"\":2}",
        "[1,2,3]", "\"just a string\"", "42", "true", "null",
        "{\"n\":[0,-0,1e3,1E+2,-1.5e-3,123456789012345,1234567890123456,"
            "12345678901234567890,1e400,-1e400,2147483648,-2147483649]}",
        "{\"a\":1} x", "{\"a\":1}{\"b\":2}", "{\"a\":1,}", "{\"a\" 1}",
        "{\"a\":01}", "{\"a\":1.}", "{\"a\":.5}", "{\"a\":+1}",
        "{\"a\":\"\\x\"}", "{\"a\":\"\\ud800\"}", "{\"a\":\"\\udc00\"}",
        "{\"a\":\"\\uZZZZ\"}", "{\"a\":\"tab\there\"}", "{\"a\":tru}",
        "\xef\xbb\xbf{\"a\":1}", "\x0b{\"a\":1}", "{\"a\":[1 2]}", "", "   ",
        "{\"a\":\"\xff\xfe\"}",
        "{\"a\":1234567890123456789012345678901234567890123456789012345678901"
            "234567890}",
        /* strings ending, or not, in the sixteen bytes after their quote */
        "{\"a\":\"tab\there\",\"b\":\"more text after it, long enough\"}",
        "{\"k\x01y\":1,\"b\":\"more text after it, long enough\"}",
        "{\"a\":\"x\\n\\\"y\",\"b\":\"more text after it, long enough\"}",
        "{\"a\":\"0123456789abcde\",\"b\":\"more text after it, long\"}",
        "{\"a\":\"0123456789abcdef\",\"b\":\"more text after it, long\"}",
        "{\"a\":\"0123456789abcdef\x1f\",\"b\":\"more text after it\"}",
        "{\"a\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\",\"b\":\"more text\"}",
        NULL
    };

    for (i = 0; texts[i]; i++) {
        as_cjson(texts[i], strlen(texts[i]));
    }

    /* 1,000 nested arrays cJSON reads, 1,001 it refuses */

    for (n = 1000; n <= 1001; n++) {
        p = buf;
        for (i = 0; i < n; i++) { *p++ = '['; }
        for (i = 0; i < n; i++) { *p++ = ']'; }
        *p = '\0';
        as_cjson(buf, p - buf);
    }

    /* every golden request */

    dir = opendir(GOLDEN_DIR);
    assert_non_null(dir);

    while ((de = readdir(dir)) != NULL) {
        name = de->d_name;

        if (strncmp(name, "request_", 8) != 0
            || strstr(name, ".json") == NULL)
        {
            continue;
        }

        snprintf(path, sizeof(path), "%s/%s", GOLDEN_DIR, name);
        f = fopen(path, "r");
        assert_non_null(f);
        len = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[len] = '\0';

        as_cjson(buf, len);
    }

    closedir(dir);

    /* random texts, and each cut short and with a byte changed */

    for (n = 0; n < 20000; n++) {
        p = buf;
        rnd_space(&p);
        rnd_value(&p, buf + sizeof(buf) - 1, 0);
        rnd_space(&p);
        *p = '\0';
        len = p - buf;

        as_cjson(buf, len);

        if (len > 1) {
            as_cjson(buf, rnd(len));

            i = rnd(len);
            buf[i] = "{}[]\",:\\ 0e.-tnu"[rnd(17)];
            as_cjson(buf, len);
        }
    }
}


/*
 * An OpenAI chat request is read without a tree when it has the usual
 * shape (ngx_http_ai_chat_text()): its view must be the one the tree
 * gives, field for field, and its tree, built later, cJSON's; any other
 * text must get the tree's answer.  The tree's view is had by a first
 * member whose key has an escape, which the reading without a tree
 * declines.
 */

/* memcmp() of no bytes at NULL is undefined: an empty string is any */

static ngx_uint_t
same_str(ngx_str_t *a, ngx_str_t *b)
{
    return a->len == b->len
           && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}


/* the view's bare, from cJSON's tree of a body read without one */

static ngx_uint_t
bare_of(cJSON *root)
{
    cJSON       *item, *m, *f;
    ngx_uint_t   users, counts, content;

    users = 0;
    counts = 0;

    for (item = root->child; item; item = item->next) {
        if (strcmp(item->string, "model") == 0
            || strcmp(item->string, "stream") == 0
            || strcmp(item->string, "stream_options") == 0)
        {
            continue;
        }

        if (strcmp(item->string, "user") == 0) {
            if (!cJSON_IsString(item) || ++users > 1) {
                return 0;
            }

            continue;
        }

        if (strcmp(item->string, "max_tokens") == 0
            || strcmp(item->string, "max_completion_tokens") == 0)
        {
            if (cJSON_IsNull(item) || ++counts > 1) {
                return 0;
            }

            continue;
        }

        if (strcmp(item->string, "messages") != 0) {
            return 0;
        }

        for (m = item->child; m; m = m->next) {
            content = 0;

            for (f = m->child; f; f = f->next) {
                if (strcmp(f->string, "content") == 0 && cJSON_IsString(f)) {
                    content = 1;

                } else if (strcmp(f->string, "role") != 0) {
                    return 0;
                }
            }

            if (!content) {
                return 0;
            }
        }
    }

    return 1;
}


static void
same_view(const char *body)
{
    char                   *other;
    cJSON                  *c, *msg;
    ngx_int_t               rc, rc2;
    ngx_str_t               err, err2;
    ngx_uint_t              i;
    const char             *param, *param2, *brace;
    ngx_http_ai_message_t  *m, *m2;
    ngx_http_ai_request_t   req, req2;

    rc = parse(NGX_HTTP_AI_EP_CHAT, body, &req, &param, &err);

    brace = strchr(body, '{');
    assert_non_null(brace);

    other = malloc(strlen(body) + 16);
    assert_non_null(other);

    sprintf(other, "%.*s{\"\\u0078\":0,%s", (int) (brace - body), body,
            brace + 1);

    rc2 = parse(NGX_HTTP_AI_EP_CHAT, other, &req2, &param2, &err2);

    if (rc != rc2) {
        fail_msg("%d without a tree, %d with one, for %s", (int) rc,
                 (int) rc2, body);
    }

    assert_false(req2.lazy);

    if (rc != NGX_OK) {
        if ((param == NULL) != (param2 == NULL)
            || (param && strcmp(param, param2) != 0))
        {
            fail_msg("\"%s\" and \"%s\" for %s", param ? param : "",
                     param2 ? param2 : "", body);
        }

        cJSON_Delete(req.json);
        cJSON_Delete(req2.json);
        free(other);
        return;
    }

    if (!same_str(&req.model, &req2.model)
        || !same_str(&req.user, &req2.user)
        || req.stream != req2.stream
        || req.include_usage != req2.include_usage
        || req.options != req2.options
        || req.tools != req2.tools
        || req.max_tokens != req2.max_tokens
        || req.text_len != req2.text_len
        || req.messages.nelts != req2.messages.nelts)
    {
        fail_msg("another view for %s", body);
    }

    m = req.messages.elts;
    m2 = req2.messages.elts;

    for (i = 0; i < req.messages.nelts; i++) {
        if (m[i].role.data != m2[i].role.data
            || !same_str(&m[i].text, &m2[i].text)
            || m[i].nparts != m2[i].nparts
            || m[i].images != m2[i].images
            || m[i].tool_calls != m2[i].tool_calls
            || (req.lazy && m[i].json != NULL))
        {
            fail_msg("another message %u for %s", (unsigned) i, body);
        }

        /* a plain text: the body's own bytes, nothing JSON escapes */

        if (m[i].plain
            && (m[i].text.data < req.body.data
                || m[i].text.data + m[i].text.len
                   > req.body.data + req.body.len
                || ngx_http_ai_json_plain(m[i].text.data,
                                          m[i].text.data + m[i].text.len)
                   != m[i].text.data + m[i].text.len))
        {
            fail_msg("message %u is not plain for %s", (unsigned) i, body);
        }
    }

    /* its tree, when asked for: cJSON's, each message's json set */

    c = cJSON_Parse(body);

    assert_false(req2.bare);

    if (req.bare != (req.lazy && bare_of(c))) {
        fail_msg("bare %u for %s", (unsigned) req.bare, body);
    }

    same_tree(ngx_http_ai_request_tree(&req), c, body);
    assert_false(req.lazy);

    msg = cJSON_GetObjectItemCaseSensitive(req.json, "messages")->child;

    for (i = 0; i < req.messages.nelts; i++, msg = msg->next) {
        assert_ptr_equal(m[i].json, msg);
    }

    cJSON_Delete(c);
    cJSON_Delete(req.json);
    cJSON_Delete(req2.json);
    free(other);
}


/* body read as the tree reads it, and without a tree when lazy */

static void
read_as(const char *body, ngx_uint_t lazy)
{
    ngx_str_t               err;
    const char             *param;
    ngx_http_ai_request_t   req;

    same_view(body);

    assert_int_equal(parse(NGX_HTTP_AI_EP_CHAT, body, &req, &param, &err),
                     NGX_OK);
    assert_int_equal(req.lazy, lazy);
    assert_true(lazy ? req.json == NULL : req.json != NULL);

    cJSON_Delete(req.json);
}


static void
test_chat_without_tree(void **state)
{
    char                   *body, *p;
    size_t                  len, cut;
    u_char                 *buf;
    ngx_int_t               rc;
    ngx_str_t               err;
    ngx_uint_t              i, n;
    const char             *param;
    ngx_http_ai_request_t   req;

    static const char  *bodies[] = {
        /* read without a tree */
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
            "\"hi\"}]}",
        " {\"model\":\"gpt-4o\",\"stream\":true,\"stream_options\":"
            "{\"include_usage\":true},\"max_tokens\":99,\"messages\":["
            "{\"role\":\"system\",\"content\":\"be nice\"},{\"role\":\"user\","
            "\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":"
            "\"image_url\",\"image_url\":{\"url\":\"x\"}},{\"type\":\"text\","
            "\"text\":\"b\"}]},{\"role\":\"assistant\",\"content\":null,"
            "\"tool_calls\":[]}],\"tools\":[{\"type\":\"function\"}]} \r\n",
        "{\"messages\":[{\"content\":\"escapes: \\n\\t\\\"\\\\\\/\\u00e9"
            "\\ud83d\\ude00 and a long text after them, longer than sixteen"
            "\",\"role\":\"developer\"}],\"model\":\"m\",\"user\":\"u1\"}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
            "\"seventeen bytes, then an escape \\\" and text\"},{\"role\":"
            "\"user\",\"content\":[{\"text\":\"a long text part without one "
            "at all\"}]}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
            "\"seventeen bytes, then a tab \t\"}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"tool\",\"content\":[]},"
            "{\"role\":\"function\",\"content\":[{\"text\":\"\"},"
            "{\"text\":\"\"}]},{\"role\":\"assistant\",\"tool_calls\":null}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":["
            "{\"type\":\"image\",\"source\":{}},{\"inlineData\":1},"
            "{\"text\":\"t\\u0041\",\"image_url\":{}},{\"type\":\"text\","
            "\"text\":\"x\"}]},{\"role\":\"user\",\"content\":[{\"type\":"
            "\"image\"}]},{\"role\":\"user\",\"content\":[{\"inline_data\":"
            "{}}]},{\"role\":\"user\",\"content\":[{\"type\":7}]}]}",
        "{\"model\":\"m\",\"stream\":false,\"stream_options\":null,"
            "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
        "{\"model\":\"m\",\"stream\":null,\"stream_options\":{},"
            "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
        "{\"model\":\"m\",\"stream\":true,\"stream_options\":{\"include_usage"
            "\":false,\"other\":[1,{\"a\":2}]},\"messages\":[{\"role\":"
            "\"user\",\"content\":\"x\"}]}",
        "{\"model\":\"m\",\"max_tokens\":0,\"max_completion_tokens\":1e3,"
            "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
        "{\"model\":\"m\",\"max_tokens\":2147483647,\"tools\":[],"
            "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
        "{\"model\":\"m\",\"max_tokens\":null,\"tools\":null,\"user\":7,"
            "\"user\":\"second\",\"messages\":[{\"role\":\"user\","
            "\"content\":\"x\",\"name\":\"n\",\"name\":\"n\"}],\"t\":1,"
            "\"t\":2}",
        "{\"model\":\"m\",\"user\":\"\",\"messages\":[{\"role\":\"user\","
            "\"content\":\"x\"}],\"metadata\":{\"user_id\":\"no\"}}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
            "\"extra\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}",
        /* bare or not */
        "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\","
            "\"content\":\"x\"},{\"content\":\"y\\u00e9\",\"role\":"
            "\"assistant\"}],\"user\":\"u\",\"stream\":null}",
        "{\"model\":\"m\",\"max_completion_tokens\":7,\"messages\":[{\"role\":"
            "\"user\",\"content\":\"x\"}],\"stream_options\":{}}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
            "\"temperature\":0.5}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"},"
            "{\"role\":\"user\"}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
            "null}]}",

        /* the tree reads them: the same view, or the same refusal */
        "{\"model\":\"m\\u0031\",\"messages\":[{\"role\":\"user\","
            "\"content\":\"x\"}]}",
        "{\"model\":\"m\",\"user\":\"\\u0041\",\"messages\":[{\"role\":"
            "\"user\",\"content\":\"x\"}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"us\\u0065r\","
            "\"content\":\"x\"}]}",
        "{\"model\":\"m\",\"max_completion_tokens\":5,\"max_tokens\":\"a\","
            "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
        "{\"model\":\"m\",\"max_tokens\":2147483648,\"messages\":[{\"role\":"
            "\"user\",\"content\":\"x\"}]}",
        "{\"model\":\"m\",\"max_tokens\":-1,\"messages\":[{\"role\":\"user\","
            "\"content\":\"x\"}]}",
        "{\"model\":\"m\",\"max_tokens\":1.5,\"messages\":[{\"role\":\"user\","
            "\"content\":\"x\"}]}",
        "{\"model\":\"m\",\"model\":\"n\",\"messages\":[{\"role\":\"user\","
            "\"content\":\"x\"}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"role\":\"user\","
            "\"content\":\"x\"}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":1}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"robot\",\"content\":"
            "\"x\"}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"model\",\"content\":"
            "\"x\"}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":null,\"content\":\"x\"}]}",
        "{\"model\":\"m\",\"messages\":[{\"content\":\"x\"}]}",
        "{\"model\":\"m\",\"messages\":[]}",
        "{\"model\":\"m\",\"messages\":{}}",
        "{\"model\":\"m\",\"messages\":[\"x\"]}",
        "{\"model\":\"\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]"
            "} x",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"},]"
            "}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
            "[{},]}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[1]}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
            "[{\"text\":null}]}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
            "[{\"text\":\"a\",\"text\":\"b\"}]}]}",
        "{\"model\":\"m\",\"stream\":1,\"messages\":[{\"role\":\"user\","
            "\"content\":\"x\"}]}",
        "{\"model\":\"m\",\"stream_options\":{\"include_usage\":1},"
            "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
        "{\"model\":\"m\",\"stream_options\":[],"
            "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
        "{\"model\":\"m\",\"tools\":{},"
            "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\","
            "\"tool_calls\":[],\"tool_calls\":[]}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
            "\"x\":[1,]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
            "\"\t\"}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"\\x\""
            "}]}",

        /* the compact shape, {"role":"R","content":"..."}, and near it */
        "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":"
            "\"\"},{\"role\":\"developer\",\"content\":\"d\"},{\"role\":"
            "\"tool\",\"content\":\"t\"},{\"role\":\"function\",\"content\":"
            "\"f\"},{\"role\":\"assistant\",\"content\":\"a \\\"quoted\\\" "
            "\\n text, escaped\"},{\"role\":\"user\",\"content\":\"u\"}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
            "\"x\" },{\"role\":\"user\",\"content\":\"y\",\"name\":\"n\"},"
            "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":"
            "\"p\"}]},{\"role\":\"user\" ,\"content\":\"z\"}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"users\",\"content\":"
            "\"x\"}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"us\",\"content\":"
            "\"x\"}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
            "\"x\"}}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
            "\"x\",\"role\":\"user\"}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
            "\"\\u00\"}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
            "\"x\",}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
            "\"x\"],\"t\":1}",

        /* a \u0000 wherever it is: refused by both */
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
            "\"a\\u0000b\"}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
            "[{\"text\":\"\\u0000\"}]}]}",
        "{\"model\":\"m\",\"tools\":[{\"d\":\"\\u0000\"}],\"messages\":"
            "[{\"role\":\"user\",\"content\":\"x\"}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
            "\"x\",\"name\":\"\\u0000\"}]}",
        "{\"model\":\"m\",\"stream_options\":{\"o\":\"\\\\\\u0000\"},"
            "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
        /* an escaped backslash, then u0000: no NUL */
        "{\"model\":\"m\",\"x\":\"\\\\u0000\",\"messages\":[{\"role\":"
            "\"user\",\"content\":\"\\\\u0000\"}]}",
        NULL
    };

    for (i = 0; bodies[i]; i++) {
        same_view(bodies[i]);
    }

    /* which were read without a tree */

    read_as(bodies[1], 1);
    read_as(bodies[20], 0);     /* the first of those the tree reads */

    /* the compact shape, and messages near it, each read on its own way */

    n = 0;

    for (i = 0; bodies[i]; i++) {
        if (strstr(bodies[i], "{\"role\":\"developer\",\"content\":\"d\"}")
            || strstr(bodies[i], "{\"role\":\"user\" ,\"content\""))
        {
            read_as(bodies[i], 1);
            n++;
        }
    }

    assert_int_equal(n, 2);

    /* bare: the first, the first of the five above */

    for (i = 0; i < 2; i++) {
        assert_int_equal(parse(NGX_HTTP_AI_EP_CHAT, bodies[i ? 15 : 0], &req,
                               &param, &err),
                         NGX_OK);
        assert_true(req.bare);
    }

    assert_int_equal(parse(NGX_HTTP_AI_EP_CHAT, bodies[1], &req, &param,
                           &err),
                     NGX_OK);
    assert_false(req.bare);

    for (i = 0; bodies[i]; i++) {
        if (strstr(bodies[i], "\\u0000") == NULL) {
            continue;
        }

        rc = parse(NGX_HTTP_AI_EP_CHAT, bodies[i], &req, &param, &err);

        if (bodies[i + 1] == NULL) {
            /* the last, an escaped backslash: read without a tree */
            assert_int_equal(rc, NGX_OK);
            assert_true(req.lazy);
            continue;
        }

        assert_int_equal(rc, NGX_DECLINED);
        assert_non_null(memmem(err.data, err.len, "NUL character", 13));
        cJSON_Delete(req.json);
    }

    assert_int_equal(parse(NGX_HTTP_AI_EP_CHAT, bodies[2], &req, &param,
                           &err), NGX_OK);
    assert_true(req.lazy);
    assert_str(&req.user, "u1");

    /*
     * every cut of the bodies read without a tree, each in a buffer of
     * its length (the byte after it is not the literal's NUL): none is
     * read past its end (AddressSanitizer, in the sanitizer pass)
     */

    for (i = 0; i < 15; i++) {
        len = strlen(bodies[i]);

        for (cut = 0; cut < len; cut++) {
            buf = malloc(cut ? cut : 1);
            assert_non_null(buf);

            memcpy(buf, bodies[i], cut);

            (void) parse_n(NGX_HTTP_AI_EP_CHAT, buf, cut, &req, &param,
                           &err);
            cJSON_Delete(req.json);
            free(buf);
        }
    }

    /* deeper than it reads, 17 text parts: the tree reads them */

    body = malloc(4096);
    assert_non_null(body);

    p = body + sprintf(body, "{\"model\":\"m\",\"messages\":[{\"role\":"
                             "\"user\",\"content\":\"x\"}],\"deep\":");
    for (i = 0; i < 70; i++) {
        *p++ = '[';
    }
    for (i = 0; i < 70; i++) {
        *p++ = ']';
    }
    strcpy(p, "}");

    read_as(body, 0);

    p = body + sprintf(body, "{\"model\":\"m\",\"messages\":[{\"role\":"
                             "\"user\",\"content\":[");
    for (i = 0; i < 17; i++) {
        p += sprintf(p, "%s{\"text\":\"p%u\"}", i ? "," : "", (unsigned) i);
    }
    strcpy(p, "]}]}");

    read_as(body, 0);

    /* 16 are read without it */

    p = body + sprintf(body, "{\"model\":\"m\",\"messages\":[{\"role\":"
                             "\"user\",\"content\":[");
    for (i = 0; i < 16; i++) {
        p += sprintf(p, "%s{\"text\":\"p%u\\n\"}", i ? "," : "",
                     (unsigned) i);
    }
    strcpy(p, "]}]}");

    read_as(body, 1);

    free(body);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_endpoints),
        cmocka_unit_test(test_chat_view),
        cmocka_unit_test(test_max_completion_tokens_wins),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_anthropic_view),
        cmocka_unit_test(test_gemini_view),
        cmocka_unit_test(test_embeddings_view),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_tree_as_cjson),
        cmocka_unit_test(test_chat_without_tree),
        cmocka_unit_test(test_json_plain),
        cmocka_unit_test(test_json_count),
        cmocka_unit_test(test_json_plain_noted),
        cmocka_unit_test(test_tree_long_strings),
        cmocka_unit_test(test_json_scan_speed),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
