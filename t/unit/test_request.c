
/*
 * Unit tests of endpoint classification and request normalization.
 */


#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ngx_http_ai_core.h"


static ngx_int_t
parse(ngx_uint_t endpoint, const char *body, ngx_http_ai_request_t *req,
    const char **param, ngx_str_t *err)
{
    ngx_str_t  *mp, model;

    memset(req, 0, sizeof(ngx_http_ai_request_t));
    req->endpoint = endpoint;
    req->max_tokens = NGX_HTTP_AI_UNSET;
    req->body.data = (u_char *) body;
    req->body.len = strlen(body);

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
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
