
/*
 * Copyright (C) AI Gateway authors
 *
 * Anthropic's Messages API to and from OpenAI's chat format: requests,
 * responses and streams.
 *
 *   system (string or text blocks)   <->  system messages (hoisted)
 *   text / image / document blocks   <->  text / image_url / file parts
 *   tool_use blocks                  <->  assistant tool_calls
 *   tool_result blocks (user)        <->  tool messages
 *   tools (input_schema)             <->  function tools (parameters)
 *   tool_choice auto/any/tool/none   <->  auto/required/function/none
 *   stop_sequences, metadata.user_id <->  stop, user
 *   top_k                            <->  top_k (not OpenAI's: refused
 *                                          for OpenAI targets)
 *   a forced tool, its input as the  <-   response_format json_schema,
 *   answer's text                          json_object
 *   cache_control (blocks, tools)     <-   cache_control of parts,
 *                                          messages, tools (as LiteLLM
 *                                          takes them; other targets
 *                                          have no equivalent: dropped)
 *
 *   thinking {budget_tokens}        <->  reasoning_effort (the nearest
 *                                          level), the exact object kept
 *                                          for Gemini targets
 *   thinking, redacted_thinking      <->  reasoning_content, and the
 *   blocks of answers                     blocks with their signatures
 *                                          in thinking_blocks (LiteLLM's
 *                                          names), which an OpenAI client
 *                                          sends back for the next turn
 *
 * The thinking blocks of an Anthropic door's history go to no other
 * format (only an Anthropic target can check their signatures); server
 * tools, Files API references and other blocks that OpenAI cannot carry
 * are refused (NGX_DECLINED).
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_ai_core_format.h"


/* a block of the stream that is a response_format's answer */
#define NGX_HTTP_AI_ANTHROPIC_JSON  -2


static ngx_int_t ngx_http_ai_anthropic_user_to_openai(ngx_pool_t *pool,
    cJSON *messages, cJSON *content, ngx_str_t *err);
static ngx_int_t ngx_http_ai_anthropic_assistant_to_openai(ngx_pool_t *pool,
    cJSON *messages, cJSON *content, ngx_str_t *err);
static ngx_int_t ngx_http_ai_anthropic_block_to_part(ngx_pool_t *pool,
    cJSON *block, cJSON *parts, ngx_str_t *err);
static cJSON *ngx_http_ai_anthropic_data_url(cJSON *source);
static ngx_int_t ngx_http_ai_anthropic_tools_to_openai(ngx_pool_t *pool,
    cJSON *in, cJSON *res, ngx_str_t *err);
static ngx_int_t ngx_http_ai_anthropic_system_from_openai(ngx_pool_t *pool,
    cJSON *msg, cJSON *system, ngx_str_t *err);
static ngx_int_t ngx_http_ai_anthropic_content_from_openai(ngx_pool_t *pool,
    cJSON *content, cJSON *blocks, ngx_str_t *err);
static ngx_int_t ngx_http_ai_anthropic_part_to_block(ngx_pool_t *pool,
    cJSON *part, cJSON *blocks, ngx_str_t *err);
static cJSON *ngx_http_ai_anthropic_assistant_from_openai(ngx_pool_t *pool,
    cJSON *msg, ngx_uint_t answer, ngx_str_t *err);
static ngx_int_t ngx_http_ai_anthropic_thinking_from_openai(cJSON *msg,
    cJSON *blocks, ngx_uint_t answer);
static ngx_int_t ngx_http_ai_anthropic_thinking_request(cJSON *in,
    cJSON *res);
static ngx_int_t ngx_http_ai_anthropic_json_tool(ngx_pool_t *pool,
    cJSON *in, cJSON *res, ngx_str_t *err);
static ngx_uint_t ngx_http_ai_anthropic_is_json_tool(cJSON *block);
static ngx_int_t ngx_http_ai_anthropic_thinking_to_openai(ngx_pool_t *pool,
    cJSON *content, cJSON *msg);
static ngx_int_t ngx_http_ai_anthropic_thinking_chunk(
    ngx_http_ai_stream_t *st, cJSON *from);
static cJSON *ngx_http_ai_anthropic_tool_result(ngx_pool_t *pool,
    cJSON *msg);
static ngx_int_t ngx_http_ai_anthropic_tools_from_openai(ngx_pool_t *pool,
    cJSON *in, cJSON *res, ngx_str_t *err);
static cJSON *ngx_http_ai_anthropic_text_block(const char *text);
static ngx_int_t ngx_http_ai_anthropic_cache_control(cJSON *from,
    cJSON *block);
static cJSON *ngx_http_ai_anthropic_blocks(cJSON *msg);
static cJSON *ngx_http_ai_anthropic_message(ngx_str_t *role,
    ngx_str_t *text);
static cJSON *ngx_http_ai_anthropic_usage_object(ngx_http_ai_usage_t *u,
    ngx_uint_t start);
static ngx_int_t ngx_http_ai_anthropic_usage_out(ngx_http_ai_stream_t *st,
    ngx_http_ai_usage_t *u, ngx_uint_t start);
static ngx_int_t ngx_http_ai_anthropic_start(ngx_http_ai_stream_t *st,
    cJSON *chunk);
static ngx_int_t ngx_http_ai_anthropic_block_start(ngx_http_ai_stream_t *st,
    ngx_uint_t type, cJSON *tool_call);
static ngx_int_t ngx_http_ai_anthropic_block_delta(ngx_http_ai_stream_t *st,
    ngx_int_t index, const char *type, const char *name, const char *value);
static ngx_int_t ngx_http_ai_anthropic_block_stop(ngx_http_ai_stream_t *st);


/* requests: Anthropic -> OpenAI */

ngx_int_t
ngx_http_ai_anthropic_request_to_openai(ngx_pool_t *pool, cJSON *in,
    cJSON **out, ngx_str_t *err)
{
    char        *text;
    cJSON       *res, *messages, *system, *msg, *m, *stop, *metadata;
    ngx_int_t    rc, budget;
    const char  *role, *user;

    res = cJSON_CreateObject();
    if (res == NULL) {
        return NGX_ERROR;
    }

    rc = NGX_ERROR;

    if (ngx_http_ai_tr_add_copy(res, "model", in, "model") != NGX_OK) {
        goto failed;
    }

    messages = cJSON_AddArrayToObject(res, "messages");
    if (messages == NULL) {
        goto failed;
    }

    /* the system prompt: one system message, blocks joined */

    system = cJSON_GetObjectItemCaseSensitive(in, "system");

    if (cJSON_IsString(system) || cJSON_IsArray(system)) {
        text = ngx_http_ai_tr_text(pool, system, "text", "\n", NULL);
        if (text == NULL) {
            goto failed;
        }

        msg = ngx_http_ai_tr_push(messages);
        if (msg == NULL
            || ngx_http_ai_tr_add_string(msg, "role", "system") == NULL
            || ngx_http_ai_tr_add_string(msg, "content", text) == NULL)
        {
            goto failed;
        }
    }

    m = cJSON_GetObjectItemCaseSensitive(in, "messages");

    if (!cJSON_IsArray(m)) {
        ngx_str_set(err, "\"messages\" must be an array");
        rc = NGX_DECLINED;
        goto failed;
    }

    cJSON_ArrayForEach(msg, m) {
        role = ngx_http_ai_tr_string(msg, "role");

        if (role && ngx_strcmp(role, "user") == 0) {
            rc = ngx_http_ai_anthropic_user_to_openai(pool, messages,
                     cJSON_GetObjectItemCaseSensitive(msg, "content"), err);

        } else if (role && ngx_strcmp(role, "assistant") == 0) {
            rc = ngx_http_ai_anthropic_assistant_to_openai(pool, messages,
                     cJSON_GetObjectItemCaseSensitive(msg, "content"), err);

        } else {
            ngx_str_set(err, "a message role must be \"user\" or "
                             "\"assistant\"");
            rc = NGX_DECLINED;
        }

        if (rc != NGX_OK) {
            goto failed;
        }
    }

    rc = NGX_ERROR;

    if (ngx_http_ai_tr_add_copy(res, "max_completion_tokens", in,
                                "max_tokens") != NGX_OK
        || ngx_http_ai_tr_add_copy(res, "thinking", in, "thinking") != NGX_OK
        || ngx_http_ai_tr_add_copy(res, "temperature", in, "temperature")
           != NGX_OK
        || ngx_http_ai_tr_add_copy(res, "top_p", in, "top_p") != NGX_OK
        || ngx_http_ai_tr_add_copy(res, "top_k", in, "top_k") != NGX_OK
        || ngx_http_ai_tr_add_copy(res, "stream", in, "stream") != NGX_OK)
    {
        goto failed;
    }

    stop = cJSON_GetObjectItemCaseSensitive(in, "stop_sequences");

    if (cJSON_IsArray(stop) && cJSON_GetArraySize(stop) > 0
        && ngx_http_ai_tr_add_copy(res, "stop", in, "stop_sequences")
           != NGX_OK)
    {
        goto failed;
    }

    if (ngx_http_ai_tr_thinking_budget(in, &budget) == NGX_OK && budget > 0
        && ngx_http_ai_tr_add_string(res, "reasoning_effort",
                                     ngx_http_ai_tr_budget_effort(budget))
           == NULL)
    {
        goto failed;
    }

    metadata = cJSON_GetObjectItemCaseSensitive(in, "metadata");
    user = ngx_http_ai_tr_string(metadata, "user_id");

    if (user && ngx_http_ai_tr_add_string(res, "user", user) == NULL) {
        goto failed;
    }

    rc = ngx_http_ai_anthropic_tools_to_openai(pool, in, res, err);
    if (rc != NGX_OK) {
        goto failed;
    }

    *out = res;

    return NGX_OK;

failed:

    cJSON_Delete(res);

    return rc;
}


/*
 * A user message: its tool_result blocks become tool messages (first, as
 * Anthropic puts them), the rest one user message after them.
 */

static ngx_int_t
ngx_http_ai_anthropic_user_to_openai(ngx_pool_t *pool, cJSON *messages,
    cJSON *content, ngx_str_t *err)
{
    char        *text;
    cJSON       *msg, *parts, *block, *inner, *c;
    ngx_int_t    rc;
    ngx_uint_t   other;
    const char  *id;

    msg = NULL;

    if (cJSON_IsString(content)) {
        msg = ngx_http_ai_tr_push(messages);
        if (msg == NULL
            || ngx_http_ai_tr_add_string(msg, "role", "user") == NULL
            || ngx_http_ai_tr_add_string(msg, "content", content->valuestring)
               == NULL)
        {
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    if (!cJSON_IsArray(content)) {
        ngx_str_set(err, "a message content must be a string or an array");
        return NGX_DECLINED;
    }

    parts = cJSON_CreateArray();
    if (parts == NULL) {
        return NGX_ERROR;
    }

    rc = NGX_ERROR;

    cJSON_ArrayForEach(block, content) {

        if (!ngx_http_ai_tr_is(cJSON_GetObjectItemCaseSensitive(block, "type"),
                               "tool_result"))
        {
            rc = ngx_http_ai_anthropic_block_to_part(pool, block, parts, err);
            if (rc != NGX_OK) {
                goto failed;
            }

            continue;
        }

        id = ngx_http_ai_tr_string(block, "tool_use_id");
        c = cJSON_GetObjectItemCaseSensitive(block, "content");

        other = 0;
        text = ngx_http_ai_tr_text(pool, c, "text", "\n", &other);
        if (text == NULL) {
            goto failed;
        }

        msg = ngx_http_ai_tr_push(messages);
        if (msg == NULL
            || ngx_http_ai_tr_add_string(msg, "role", "tool") == NULL
            || ngx_http_ai_tr_add_string(msg, "tool_call_id", id) == NULL
            || ngx_http_ai_tr_add_string(msg, "content", text) == NULL)
        {
            goto failed;
        }

        if (other) {
            /* images of a tool result: tool messages are text only */

            cJSON_ArrayForEach(inner, c) {
                if (ngx_http_ai_tr_is(
                        cJSON_GetObjectItemCaseSensitive(inner, "type"),
                        "text"))
                {
                    continue;
                }

                rc = ngx_http_ai_anthropic_block_to_part(pool, inner, parts,
                                                         err);
                if (rc != NGX_OK) {
                    goto failed;
                }
            }
        }
    }

    if (cJSON_GetArraySize(parts) == 0) {
        cJSON_Delete(parts);
        return NGX_OK;
    }

    msg = ngx_http_ai_tr_push(messages);
    if (msg == NULL
        || ngx_http_ai_tr_add_string(msg, "role", "user") == NULL)
    {
        goto failed;
    }

    /* a text alone: a string, which any OpenAI-compatible server takes */

    block = cJSON_GetArrayItem(parts, 0);

    if (cJSON_GetArraySize(parts) == 1
        && ngx_http_ai_tr_is(cJSON_GetObjectItemCaseSensitive(block, "type"),
                             "text"))
    {
        if (ngx_http_ai_tr_add_copy(msg, "content", block, "text")
            != NGX_OK)
        {
            goto failed;
        }

        cJSON_Delete(parts);
        return NGX_OK;
    }

    cJSON_AddItemToObject(msg, "content", parts);

    return NGX_OK;

failed:

    cJSON_Delete(parts);

    return rc;
}


static ngx_int_t
ngx_http_ai_anthropic_assistant_to_openai(ngx_pool_t *pool, cJSON *messages,
    cJSON *content, ngx_str_t *err)
{
    char        *text, *args;
    cJSON       *msg, *calls, *call, *fn, *block, *type;
    ngx_uint_t   other;

    msg = ngx_http_ai_tr_push(messages);
    if (msg == NULL
        || ngx_http_ai_tr_add_string(msg, "role", "assistant") == NULL)
    {
        return NGX_ERROR;
    }

    if (cJSON_IsString(content)) {
        return ngx_http_ai_tr_add_string(msg, "content", content->valuestring)
               ? NGX_OK : NGX_ERROR;
    }

    if (!cJSON_IsArray(content)) {
        ngx_str_set(err, "a message content must be a string or an array");
        return NGX_DECLINED;
    }

    other = 0;
    text = ngx_http_ai_tr_text(pool, content, "text", "", &other);
    if (text == NULL) {
        return NGX_ERROR;
    }

    if (other == 0) {
        return ngx_http_ai_tr_add_string(msg, "content", text)
               ? NGX_OK : NGX_ERROR;
    }

    if (*text) {
        if (ngx_http_ai_tr_add_string(msg, "content", text) == NULL) {
            return NGX_ERROR;
        }

    } else if (cJSON_AddNullToObject(msg, "content") == NULL) {
        return NGX_ERROR;
    }

    calls = NULL;

    cJSON_ArrayForEach(block, content) {
        type = cJSON_GetObjectItemCaseSensitive(block, "type");

        if (ngx_http_ai_tr_is(type, "text")
            || ngx_http_ai_tr_is(type, "thinking")
            || ngx_http_ai_tr_is(type, "redacted_thinking"))
        {
            continue;
        }

        if (!ngx_http_ai_tr_is(type, "tool_use")) {
            return ngx_http_ai_tr_error(pool, err,
                                        "assistant content blocks of type "
                                        "\"%s\" cannot be translated",
                                        cJSON_IsString(type)
                                        ? type->valuestring : "?");
        }

        if (calls == NULL) {
            calls = cJSON_AddArrayToObject(msg, "tool_calls");
            if (calls == NULL) {
                return NGX_ERROR;
            }
        }

        call = ngx_http_ai_tr_push(calls);
        if (call == NULL
            || ngx_http_ai_tr_add_copy(call, "id", block, "id") != NGX_OK
            || ngx_http_ai_tr_add_string(call, "type", "function") == NULL)
        {
            return NGX_ERROR;
        }

        fn = cJSON_AddObjectToObject(call, "function");
        if (fn == NULL
            || ngx_http_ai_tr_add_copy(fn, "name", block, "name") != NGX_OK)
        {
            return NGX_ERROR;
        }

        args = cJSON_PrintUnformatted(
                         cJSON_GetObjectItemCaseSensitive(block, "input"));

        if (ngx_http_ai_tr_add_string(fn, "arguments", args ? args : "{}")
            == NULL)
        {
            cJSON_free(args);
            return NGX_ERROR;
        }

        cJSON_free(args);
    }

    return NGX_OK;
}


/* a user content block as an OpenAI content part */

static ngx_int_t
ngx_http_ai_anthropic_block_to_part(ngx_pool_t *pool, cJSON *block,
    cJSON *parts, ngx_str_t *err)
{
    cJSON       *part, *type, *source, *image, *file, *url;
    const char  *stype;

    type = cJSON_GetObjectItemCaseSensitive(block, "type");
    source = cJSON_GetObjectItemCaseSensitive(block, "source");
    stype = ngx_http_ai_tr_string(source, "type");

    if (ngx_http_ai_tr_is(type, "text")) {
        part = ngx_http_ai_tr_push(parts);
        if (part == NULL
            || ngx_http_ai_tr_add_string(part, "type", "text") == NULL
            || ngx_http_ai_tr_add_copy(part, "text", block, "text") != NGX_OK)
        {
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    if (ngx_http_ai_tr_is(type, "image")) {

        if (stype && ngx_strcmp(stype, "url") == 0) {
            url = cJSON_GetObjectItemCaseSensitive(source, "url");

            if (!cJSON_IsString(url)) {
                ngx_str_set(err, "an image source of type \"url\" has no "
                                 "\"url\"");
                return NGX_DECLINED;
            }

            url = cJSON_CreateString(url->valuestring);

        } else if (stype && ngx_strcmp(stype, "base64") == 0) {
            url = ngx_http_ai_anthropic_data_url(source);

        } else {
            return ngx_http_ai_tr_error(pool, err,
                                        "image sources of type \"%s\" "
                                        "cannot be translated",
                                        stype ? stype : "?");
        }

        if (url == NULL) {
            return NGX_ERROR;
        }

        part = ngx_http_ai_tr_push(parts);
        if (part == NULL
            || ngx_http_ai_tr_add_string(part, "type", "image_url") == NULL
            || (image = cJSON_AddObjectToObject(part, "image_url")) == NULL)
        {
            cJSON_Delete(url);
            return NGX_ERROR;
        }

        return ngx_http_ai_tr_set(image, "url", url);
    }

    if (ngx_http_ai_tr_is(type, "document")) {

        if (stype && ngx_strcmp(stype, "text") == 0) {
            part = ngx_http_ai_tr_push(parts);
            if (part == NULL
                || ngx_http_ai_tr_add_string(part, "type", "text") == NULL
                || ngx_http_ai_tr_add_copy(part, "text", source, "data")
                   != NGX_OK)
            {
                return NGX_ERROR;
            }

            return NGX_OK;
        }

        if (stype == NULL || ngx_strcmp(stype, "base64") != 0) {
            return ngx_http_ai_tr_error(pool, err,
                                        "document sources of type \"%s\" "
                                        "cannot be translated",
                                        stype ? stype : "?");
        }

        url = ngx_http_ai_anthropic_data_url(source);
        if (url == NULL) {
            return NGX_ERROR;
        }

        part = ngx_http_ai_tr_push(parts);
        if (part == NULL
            || ngx_http_ai_tr_add_string(part, "type", "file") == NULL
            || (file = cJSON_AddObjectToObject(part, "file")) == NULL
            || ngx_http_ai_tr_add_copy(file, "filename", block, "title")
               != NGX_OK)
        {
            cJSON_Delete(url);
            return NGX_ERROR;
        }

        return ngx_http_ai_tr_set(file, "file_data", url);
    }

    return ngx_http_ai_tr_error(pool, err,
                                "content blocks of type \"%s\" cannot be "
                                "translated",
                                cJSON_IsString(type) ? type->valuestring
                                                     : "?");
}


/* "data:MEDIA;base64,DATA" of a base64 source */

static cJSON *
ngx_http_ai_anthropic_data_url(cJSON *source)
{
    char        *url, *p;
    cJSON       *item;
    size_t       mlen, dlen;
    const char  *media, *data;

    media = ngx_http_ai_tr_string(source, "media_type");
    data = ngx_http_ai_tr_string(source, "data");

    if (media == NULL) {
        media = "application/octet-stream";
    }

    if (data == NULL) {
        data = "";
    }

    mlen = ngx_strlen(media);
    dlen = ngx_strlen(data);

    url = malloc(sizeof("data:;base64,") + mlen + dlen);
    if (url == NULL) {
        return NULL;
    }

    p = (char *) ngx_cpymem(url, "data:", 5);
    p = (char *) ngx_cpymem(p, media, mlen);
    p = (char *) ngx_cpymem(p, ";base64,", 8);
    p = (char *) ngx_cpymem(p, data, dlen);
    *p = '\0';

    item = cJSON_CreateString(url);

    free(url);

    return item;
}


static ngx_int_t
ngx_http_ai_anthropic_tools_to_openai(ngx_pool_t *pool, cJSON *in,
    cJSON *res, ngx_str_t *err)
{
    cJSON       *tools, *tool, *list, *t, *fn, *choice, *c;
    const char  *type;

    tools = cJSON_GetObjectItemCaseSensitive(in, "tools");

    if (cJSON_IsArray(tools) && cJSON_GetArraySize(tools) > 0) {
        list = cJSON_AddArrayToObject(res, "tools");
        if (list == NULL) {
            return NGX_ERROR;
        }

        cJSON_ArrayForEach(tool, tools) {
            type = ngx_http_ai_tr_string(tool, "type");

            if (type && ngx_strcmp(type, "custom") != 0) {
                return ngx_http_ai_tr_error(pool, err,
                                            "tools of type \"%s\" cannot "
                                            "be translated", type);
            }

            t = ngx_http_ai_tr_push(list);
            if (t == NULL
                || ngx_http_ai_tr_add_string(t, "type", "function") == NULL)
            {
                return NGX_ERROR;
            }

            fn = cJSON_AddObjectToObject(t, "function");
            if (fn == NULL
                || ngx_http_ai_tr_add_copy(fn, "name", tool, "name") != NGX_OK
                || ngx_http_ai_tr_add_copy(fn, "description", tool,
                                           "description") != NGX_OK
                || ngx_http_ai_tr_add_copy(fn, "parameters", tool,
                                           "input_schema") != NGX_OK)
            {
                return NGX_ERROR;
            }
        }
    }

    choice = cJSON_GetObjectItemCaseSensitive(in, "tool_choice");
    if (!cJSON_IsObject(choice)) {
        return NGX_OK;
    }

    type = ngx_http_ai_tr_string(choice, "type");

    if (type == NULL) {
        return NGX_OK;

    } else if (ngx_strcmp(type, "auto") == 0) {
        c = cJSON_CreateString("auto");

    } else if (ngx_strcmp(type, "any") == 0) {
        c = cJSON_CreateString("required");

    } else if (ngx_strcmp(type, "none") == 0) {
        c = cJSON_CreateString("none");

    } else if (ngx_strcmp(type, "tool") == 0) {
        c = cJSON_CreateObject();
        if (c == NULL) {
            return NGX_ERROR;
        }

        fn = NULL;

        if (ngx_http_ai_tr_add_string(c, "type", "function") == NULL
            || (fn = cJSON_AddObjectToObject(c, "function")) == NULL
            || ngx_http_ai_tr_add_copy(fn, "name", choice, "name") != NGX_OK)
        {
            cJSON_Delete(c);
            return NGX_ERROR;
        }

    } else {
        return ngx_http_ai_tr_error(pool, err,
                                    "tool_choice of type \"%s\" cannot be "
                                    "translated", type);
    }

    if (ngx_http_ai_tr_set(res, "tool_choice", c) != NGX_OK) {
        return NGX_ERROR;
    }

    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(choice,
                                                 "disable_parallel_tool_use"))
        && cJSON_AddFalseToObject(res, "parallel_tool_calls") == NULL)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* requests: OpenAI -> Anthropic */

ngx_int_t
ngx_http_ai_anthropic_request_from_openai(ngx_pool_t *pool, cJSON *in,
    ngx_http_ai_translate_request_t *req, cJSON **out, ngx_str_t *err)
{
    cJSON       *res, *system, *messages, *msg, *m, *last, *blocks, *block;
    cJSON       *stop, *item, *metadata;
    ngx_int_t    rc, max;
    const char  *role, *s;

    item = cJSON_GetObjectItemCaseSensitive(in, "n");

    if (cJSON_IsNumber(item) && item->valuedouble > 1) {
        ngx_str_set(err, "n > 1 is not supported by anthropic targets");
        return NGX_DECLINED;
    }

    res = cJSON_CreateObject();
    if (res == NULL) {
        return NGX_ERROR;
    }

    rc = NGX_ERROR;

    if (ngx_http_ai_tr_add_copy(res, "model", in, "model") != NGX_OK) {
        goto failed;
    }

    system = cJSON_AddArrayToObject(res, "system");
    if (system == NULL) {
        goto failed;
    }

    /* Anthropic requires max_tokens */

    if (ngx_http_ai_tr_int(in, "max_completion_tokens", &max) != NGX_OK
        && ngx_http_ai_tr_int(in, "max_tokens", &max) != NGX_OK)
    {
        max = (req->max_tokens > 0) ? req->max_tokens : 4096;
    }

    if (cJSON_AddNumberToObject(res, "max_tokens", (double) max) == NULL) {
        goto failed;
    }

    messages = cJSON_AddArrayToObject(res, "messages");
    if (messages == NULL) {
        goto failed;
    }

    m = cJSON_GetObjectItemCaseSensitive(in, "messages");

    cJSON_ArrayForEach(msg, m) {
        role = ngx_http_ai_tr_string(msg, "role");
        if (role == NULL) {
            role = "";
        }

        if (ngx_strcmp(role, "system") == 0
            || ngx_strcmp(role, "developer") == 0)
        {
            rc = ngx_http_ai_anthropic_system_from_openai(pool, msg, system,
                                                          err);
            if (rc != NGX_OK) {
                goto failed;
            }

            rc = NGX_ERROR;
            continue;
        }

        last = cJSON_GetArrayItem(messages,
                                  cJSON_GetArraySize(messages) - 1);

        if (ngx_strcmp(role, "tool") == 0) {
            block = ngx_http_ai_anthropic_tool_result(pool, msg);
            if (block == NULL
                || ngx_http_ai_anthropic_cache_control(msg, block) != NGX_OK)
            {
                cJSON_Delete(block);
                goto failed;
            }

            /* consecutive tool results go in one user message */

            blocks = ngx_http_ai_anthropic_blocks(last);

            if (blocks == NULL
                || !ngx_http_ai_tr_is(cJSON_GetObjectItemCaseSensitive(
                                          cJSON_GetArrayItem(blocks, 0),
                                          "type"),
                                      "tool_result"))
            {
                last = ngx_http_ai_tr_push(messages);
                if (last == NULL
                    || ngx_http_ai_tr_add_string(last, "role", "user")
                       == NULL
                    || (blocks = cJSON_AddArrayToObject(last, "content"))
                       == NULL)
                {
                    cJSON_Delete(block);
                    goto failed;
                }
            }

            cJSON_AddItemToArray(blocks, block);
            continue;
        }

        if (ngx_strcmp(role, "user") == 0) {
            item = cJSON_GetObjectItemCaseSensitive(msg, "content");
            blocks = ngx_http_ai_anthropic_blocks(last);

            if (blocks
                && ngx_http_ai_tr_is(cJSON_GetObjectItemCaseSensitive(
                                         cJSON_GetArrayItem(blocks, 0),
                                         "type"),
                                     "tool_result"))
            {
                /* the user's words after tool results: the same turn */

                rc = ngx_http_ai_anthropic_content_from_openai(pool, item,
                                                               blocks, err);
                if (rc != NGX_OK) {
                    goto failed;
                }

                rc = NGX_ERROR;

                if (ngx_http_ai_anthropic_cache_control(msg,
                        cJSON_GetArrayItem(blocks,
                                           cJSON_GetArraySize(blocks) - 1))
                    != NGX_OK)
                {
                    goto failed;
                }

                continue;
            }

            last = ngx_http_ai_tr_push(messages);
            if (last == NULL
                || ngx_http_ai_tr_add_string(last, "role", "user") == NULL)
            {
                goto failed;
            }

            if (cJSON_IsString(item)
                && cJSON_GetObjectItemCaseSensitive(msg, "cache_control")
                   == NULL)
            {
                if (ngx_http_ai_tr_add_string(last, "content",
                                              item->valuestring)
                    == NULL)
                {
                    goto failed;
                }

                continue;
            }

            blocks = cJSON_AddArrayToObject(last, "content");
            if (blocks == NULL) {
                goto failed;
            }

            rc = ngx_http_ai_anthropic_content_from_openai(pool, item,
                                                           blocks, err);
            if (rc != NGX_OK) {
                goto failed;
            }

            rc = NGX_ERROR;

            /* a message's breakpoint (LiteLLM's): its last block's */

            if (ngx_http_ai_anthropic_cache_control(msg,
                    cJSON_GetArrayItem(blocks,
                                       cJSON_GetArraySize(blocks) - 1))
                != NGX_OK)
            {
                goto failed;
            }

            continue;
        }

        if (ngx_strcmp(role, "assistant") == 0) {
            item = ngx_http_ai_anthropic_assistant_from_openai(pool, msg, 0,
                                                               err);
            if (item == NULL) {
                rc = err->len ? NGX_DECLINED : NGX_ERROR;
                goto failed;
            }

            if (cJSON_IsNull(item)) {
                /* nothing said: Anthropic refuses empty messages */
                cJSON_Delete(item);
                continue;
            }

            cJSON_AddItemToArray(messages, item);
            continue;
        }

        rc = ngx_http_ai_tr_error(pool, err,
                                  "messages of role \"%s\" cannot be "
                                  "translated", role);
        goto failed;
    }

    if (cJSON_GetArraySize(system) == 0) {
        cJSON_DeleteItemFromObjectCaseSensitive(res, "system");

    } else if (cJSON_GetArraySize(system) == 1
               && cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(system,
                                                                      0),
                                                   "cache_control")
                  == NULL)
    {
        /* a single text: a string, as most clients send it */

        s = ngx_http_ai_tr_string(cJSON_GetArrayItem(system, 0), "text");

        if (ngx_http_ai_tr_set(res, "system", cJSON_CreateString(s))
            != NGX_OK)
        {
            goto failed;
        }
    }

    item = cJSON_GetObjectItemCaseSensitive(in, "temperature");

    if (cJSON_IsNumber(item)
        && cJSON_AddNumberToObject(res, "temperature",
                                   item->valuedouble > 1.0
                                   ? 1.0 : item->valuedouble)
           == NULL)
    {
        goto failed;
    }

    if (ngx_http_ai_tr_add_copy(res, "top_p", in, "top_p") != NGX_OK
        || ngx_http_ai_tr_add_copy(res, "top_k", in, "top_k") != NGX_OK
        || ngx_http_ai_anthropic_thinking_request(in, res) != NGX_OK)
    {
        goto failed;
    }

    stop = cJSON_GetObjectItemCaseSensitive(in, "stop");

    if (cJSON_IsString(stop)) {
        item = cJSON_AddArrayToObject(res, "stop_sequences");
        if (item == NULL) {
            goto failed;
        }

        cJSON_AddItemToArray(item, cJSON_CreateString(stop->valuestring));

    } else if (cJSON_IsArray(stop) && cJSON_GetArraySize(stop) > 0) {
        if (ngx_http_ai_tr_add_copy(res, "stop_sequences", in, "stop")
            != NGX_OK)
        {
            goto failed;
        }
    }

    s = ngx_http_ai_tr_string(in, "user");

    if (s) {
        metadata = cJSON_AddObjectToObject(res, "metadata");
        if (metadata == NULL
            || ngx_http_ai_tr_add_string(metadata, "user_id", s) == NULL)
        {
            goto failed;
        }
    }

    if (req->stream && cJSON_AddTrueToObject(res, "stream") == NULL) {
        goto failed;
    }

    rc = ngx_http_ai_anthropic_tools_from_openai(pool, in, res, err);
    if (rc != NGX_OK) {
        goto failed;
    }

    rc = ngx_http_ai_anthropic_json_tool(pool, in, res, err);
    if (rc != NGX_OK) {
        goto failed;
    }

    *out = res;

    return NGX_OK;

failed:

    cJSON_Delete(res);

    return rc;
}


/* the texts of a system or developer message, as text blocks */

static ngx_int_t
ngx_http_ai_anthropic_system_from_openai(ngx_pool_t *pool, cJSON *msg,
    cJSON *system, ngx_str_t *err)
{
    cJSON  *content, *part, *block;

    content = cJSON_GetObjectItemCaseSensitive(msg, "content");

    if (cJSON_IsString(content)) {
        if (*content->valuestring == '\0') {
            return NGX_OK;
        }

        block = ngx_http_ai_anthropic_text_block(content->valuestring);
        if (block == NULL) {
            return NGX_ERROR;
        }

        cJSON_AddItemToArray(system, block);

        return ngx_http_ai_anthropic_cache_control(msg, block);
    }

    block = NULL;

    cJSON_ArrayForEach(part, content) {
        if (!ngx_http_ai_tr_is(cJSON_GetObjectItemCaseSensitive(part, "type"),
                               "text"))
        {
            ngx_str_set(err, "system messages may hold text only");
            return NGX_DECLINED;
        }

        block = ngx_http_ai_anthropic_text_block(
                                      ngx_http_ai_tr_string(part, "text"));
        if (block == NULL) {
            return NGX_ERROR;
        }

        cJSON_AddItemToArray(system, block);

        if (ngx_http_ai_anthropic_cache_control(part, block) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    /* a message's breakpoint is its last block's */

    if (block) {
        return ngx_http_ai_anthropic_cache_control(msg, block);
    }

    return NGX_OK;
}


/* an OpenAI user content as content blocks added to blocks */

static ngx_int_t
ngx_http_ai_anthropic_content_from_openai(ngx_pool_t *pool, cJSON *content,
    cJSON *blocks, ngx_str_t *err)
{
    cJSON      *part, *block;
    ngx_int_t   rc;

    if (cJSON_IsString(content)) {
        if (*content->valuestring == '\0') {
            return NGX_OK;
        }

        block = ngx_http_ai_anthropic_text_block(content->valuestring);
        if (block == NULL) {
            return NGX_ERROR;
        }

        cJSON_AddItemToArray(blocks, block);

        return NGX_OK;
    }

    if (!cJSON_IsArray(content)) {
        ngx_str_set(err, "a message content must be a string or an array");
        return NGX_DECLINED;
    }

    cJSON_ArrayForEach(part, content) {
        rc = ngx_http_ai_anthropic_part_to_block(pool, part, blocks, err);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_anthropic_part_to_block(ngx_pool_t *pool, cJSON *part,
    cJSON *blocks, ngx_str_t *err)
{
    char        *mime, *data;
    cJSON       *type, *block, *source, *image, *file;
    ngx_int_t    rc;
    const char  *text, *url, *kind;

    type = cJSON_GetObjectItemCaseSensitive(part, "type");

    if (ngx_http_ai_tr_is(type, "text")) {
        text = ngx_http_ai_tr_string(part, "text");

        if (text == NULL || *text == '\0') {
            return NGX_OK;
        }

        block = ngx_http_ai_anthropic_text_block(text);
        if (block == NULL) {
            return NGX_ERROR;
        }

        cJSON_AddItemToArray(blocks, block);

        return ngx_http_ai_anthropic_cache_control(part, block);
    }

    if (ngx_http_ai_tr_is(type, "image_url")) {
        image = cJSON_GetObjectItemCaseSensitive(part, "image_url");
        url = cJSON_IsString(image) ? image->valuestring
                                    : ngx_http_ai_tr_string(image, "url");
        kind = "image";

    } else if (ngx_http_ai_tr_is(type, "file")) {
        file = cJSON_GetObjectItemCaseSensitive(part, "file");
        url = ngx_http_ai_tr_string(file, "file_data");
        kind = "document";

        if (url == NULL) {
            ngx_str_set(err, "file parts without \"file_data\" (file ids) "
                             "cannot be translated");
            return NGX_DECLINED;
        }

    } else {
        return ngx_http_ai_tr_error(pool, err,
                                    "content parts of type \"%s\" are not "
                                    "supported by anthropic targets",
                                    cJSON_IsString(type) ? type->valuestring
                                                         : "?");
    }

    if (url == NULL) {
        ngx_str_set(err, "an image_url part has no \"url\"");
        return NGX_DECLINED;
    }

    block = ngx_http_ai_tr_push(blocks);
    if (block == NULL
        || ngx_http_ai_tr_add_string(block, "type", kind) == NULL
        || (source = cJSON_AddObjectToObject(block, "source")) == NULL
        || ngx_http_ai_anthropic_cache_control(part, block) != NGX_OK)
    {
        return NGX_ERROR;
    }

    rc = ngx_http_ai_tr_data_url(pool, url, &mime, &data);

    switch (rc) {

    case NGX_OK:
        if (ngx_http_ai_tr_add_string(source, "type", "base64") == NULL
            || ngx_http_ai_tr_add_string(source, "media_type", mime) == NULL
            || ngx_http_ai_tr_add_string(source, "data", data) == NULL)
        {
            return NGX_ERROR;
        }

        return NGX_OK;

    case NGX_DECLINED:
        if (ngx_http_ai_tr_add_string(source, "type", "url") == NULL
            || ngx_http_ai_tr_add_string(source, "url", url) == NULL)
        {
            return NGX_ERROR;
        }

        return NGX_OK;

    case NGX_ABORT:
        ngx_str_set(err, "only base64 data: URLs can be translated");
        return NGX_DECLINED;

    default:
        return NGX_ERROR;
    }
}


/*
 * An assistant message as Anthropic's; the cJSON null when it says
 * nothing; NULL with err set when it cannot be translated, NULL alone on
 * no memory.
 */

static cJSON *
ngx_http_ai_anthropic_assistant_from_openai(ngx_pool_t *pool, cJSON *msg,
    ngx_uint_t answer, ngx_str_t *err)
{
    cJSON       *res, *content, *blocks, *part, *block, *calls, *call, *fn;
    cJSON       *input;
    const char  *text, *refusal;

    content = cJSON_GetObjectItemCaseSensitive(msg, "content");
    calls = cJSON_GetObjectItemCaseSensitive(msg, "tool_calls");
    refusal = ngx_http_ai_tr_string(msg, "refusal");

    res = cJSON_CreateObject();
    if (res == NULL) {
        return NULL;
    }

    if (ngx_http_ai_tr_add_string(res, "role", "assistant") == NULL) {
        goto failed;
    }

    if (cJSON_IsString(content) && cJSON_GetArraySize(calls) == 0
        && refusal == NULL
        && cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(msg,
                                                     "thinking_blocks")) == 0
        && (!answer
            || ngx_http_ai_tr_string(msg, "reasoning_content") == NULL))
    {
        if (*content->valuestring == '\0') {
            cJSON_Delete(res);
            return cJSON_CreateNull();
        }

        if (ngx_http_ai_tr_add_string(res, "content", content->valuestring)
            == NULL)
        {
            goto failed;
        }

        return res;
    }

    blocks = cJSON_AddArrayToObject(res, "content");
    if (blocks == NULL
        || ngx_http_ai_anthropic_thinking_from_openai(msg, blocks, answer)
           != NGX_OK)
    {
        goto failed;
    }

    if (cJSON_IsString(content) && *content->valuestring) {
        block = ngx_http_ai_anthropic_text_block(content->valuestring);
        if (block == NULL) {
            goto failed;
        }

        cJSON_AddItemToArray(blocks, block);

    } else if (cJSON_IsArray(content)) {
        cJSON_ArrayForEach(part, content) {
            text = ngx_http_ai_tr_string(part, "text");
            if (text == NULL) {
                text = ngx_http_ai_tr_string(part, "refusal");
            }

            if (text == NULL || *text == '\0') {
                continue;
            }

            block = ngx_http_ai_anthropic_text_block(text);
            if (block == NULL) {
                goto failed;
            }

            cJSON_AddItemToArray(blocks, block);
        }
    }

    if (refusal && *refusal) {
        block = ngx_http_ai_anthropic_text_block(refusal);
        if (block == NULL) {
            goto failed;
        }

        cJSON_AddItemToArray(blocks, block);
    }

    cJSON_ArrayForEach(call, calls) {
        fn = cJSON_GetObjectItemCaseSensitive(call, "function");

        block = ngx_http_ai_tr_push(blocks);
        if (block == NULL
            || ngx_http_ai_tr_add_string(block, "type", "tool_use") == NULL
            || ngx_http_ai_tr_add_string(block, "id",
                                         ngx_http_ai_tr_string(call, "id"))
               == NULL
            || ngx_http_ai_tr_add_string(block, "name",
                                         ngx_http_ai_tr_string(fn, "name"))
               == NULL)
        {
            goto failed;
        }

        input = ngx_http_ai_tr_parse_args(ngx_http_ai_tr_string(fn,
                                                                "arguments"));
        if (input == NULL) {
            goto failed;
        }

        cJSON_AddItemToObject(block, "input", input);
    }

    if (cJSON_GetArraySize(blocks) == 0) {
        cJSON_Delete(res);
        return cJSON_CreateNull();
    }

    return res;

failed:

    cJSON_Delete(res);
    return NULL;
}


static cJSON *
ngx_http_ai_anthropic_tool_result(ngx_pool_t *pool, cJSON *msg)
{
    char   *text;
    cJSON  *block;

    text = ngx_http_ai_tr_text(pool,
                               cJSON_GetObjectItemCaseSensitive(msg,
                                                                "content"),
                               "text", "\n", NULL);
    if (text == NULL) {
        return NULL;
    }

    block = cJSON_CreateObject();
    if (block == NULL) {
        return NULL;
    }

    if (ngx_http_ai_tr_add_string(block, "type", "tool_result") == NULL
        || ngx_http_ai_tr_add_string(block, "tool_use_id",
                                 ngx_http_ai_tr_string(msg, "tool_call_id"))
           == NULL
        || ngx_http_ai_tr_add_string(block, "content", text) == NULL)
    {
        cJSON_Delete(block);
        return NULL;
    }

    return block;
}


static ngx_int_t
ngx_http_ai_anthropic_tools_from_openai(ngx_pool_t *pool, cJSON *in,
    cJSON *res, ngx_str_t *err)
{
    cJSON       *tools, *tool, *list, *t, *fn, *schema, *choice, *c;
    const char  *type, *name;

    tools = cJSON_GetObjectItemCaseSensitive(in, "tools");
    list = NULL;

    if (cJSON_IsArray(tools) && cJSON_GetArraySize(tools) > 0) {
        list = cJSON_AddArrayToObject(res, "tools");
        if (list == NULL) {
            return NGX_ERROR;
        }

        cJSON_ArrayForEach(tool, tools) {
            type = ngx_http_ai_tr_string(tool, "type");
            fn = cJSON_GetObjectItemCaseSensitive(tool, "function");

            if (type == NULL || ngx_strcmp(type, "function") != 0
                || !cJSON_IsObject(fn))
            {
                return ngx_http_ai_tr_error(pool, err,
                                            "tools of type \"%s\" are not "
                                            "supported by anthropic targets",
                                            type ? type : "?");
            }

            t = ngx_http_ai_tr_push(list);
            if (t == NULL
                || ngx_http_ai_tr_add_copy(t, "name", fn, "name") != NGX_OK
                || ngx_http_ai_tr_add_copy(t, "description", fn,
                                           "description") != NGX_OK)
            {
                return NGX_ERROR;
            }

            schema = cJSON_GetObjectItemCaseSensitive(fn, "parameters");

            if (cJSON_IsObject(schema)) {
                schema = cJSON_Duplicate(schema, 1);

            } else {
                schema = cJSON_Parse("{\"type\":\"object\","
                                     "\"properties\":{}}");
            }

            if (ngx_http_ai_tr_set(t, "input_schema", schema) != NGX_OK
                || ngx_http_ai_anthropic_cache_control(tool, t) != NGX_OK)
            {
                return NGX_ERROR;
            }
        }
    }

    choice = cJSON_GetObjectItemCaseSensitive(in, "tool_choice");
    c = NULL;

    if (cJSON_IsString(choice)) {
        type = choice->valuestring;

        if (ngx_strcmp(type, "required") == 0) {
            type = "any";

        } else if (ngx_strcmp(type, "none") != 0) {
            type = "auto";
        }

        c = cJSON_CreateObject();
        if (c == NULL
            || ngx_http_ai_tr_add_string(c, "type", type) == NULL)
        {
            cJSON_Delete(c);
            return NGX_ERROR;
        }

    } else if (cJSON_IsObject(choice)) {
        name = ngx_http_ai_tr_string(
                   cJSON_GetObjectItemCaseSensitive(choice, "function"),
                   "name");

        if (name == NULL) {
            ngx_str_set(err, "tool_choice names no function");
            return NGX_DECLINED;
        }

        c = cJSON_CreateObject();
        if (c == NULL
            || ngx_http_ai_tr_add_string(c, "type", "tool") == NULL
            || ngx_http_ai_tr_add_string(c, "name", name) == NULL)
        {
            cJSON_Delete(c);
            return NGX_ERROR;
        }
    }

    if (cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(in,
                                                       "parallel_tool_calls"))
        && list)
    {
        if (c == NULL) {
            c = cJSON_CreateObject();
            if (c == NULL
                || ngx_http_ai_tr_add_string(c, "type", "auto") == NULL)
            {
                cJSON_Delete(c);
                return NGX_ERROR;
            }
        }

        if (!ngx_http_ai_tr_is(cJSON_GetObjectItemCaseSensitive(c, "type"),
                               "none")
            && cJSON_AddTrueToObject(c, "disable_parallel_tool_use") == NULL)
        {
            cJSON_Delete(c);
            return NGX_ERROR;
        }
    }

    if (c == NULL) {
        return NGX_OK;
    }

    return ngx_http_ai_tr_set(res, "tool_choice", c);
}


/*
 * response_format for an Anthropic target: one tool whose input schema is
 * the format's (any object for json_object), which the model is made to
 * call; its input is then the answer's text (as LiteLLM does).  Anthropic
 * cannot force a tool while thinking, and the client's own tools would
 * never be called: both are refused.
 */

static ngx_int_t
ngx_http_ai_anthropic_json_tool(ngx_pool_t *pool, cJSON *in, cJSON *res,
    ngx_str_t *err)
{
    cJSON       *format, *schema, *tools, *tool, *choice;
    const char  *type;

    format = cJSON_GetObjectItemCaseSensitive(in, "response_format");
    type = ngx_http_ai_tr_string(format, "type");

    if (type == NULL || ngx_strcmp(type, "text") == 0) {
        return NGX_OK;
    }

    if (ngx_strcmp(type, "json_object") != 0
        && ngx_strcmp(type, "json_schema") != 0)
    {
        return ngx_http_ai_tr_error(pool, err,
                                    "response_format of type \"%s\" is not "
                                    "supported by anthropic targets", type);
    }

    if (cJSON_GetObjectItemCaseSensitive(res, "tools")) {
        ngx_str_set(err, "\"response_format\" with \"tools\" is not "
                         "supported by anthropic targets");
        return NGX_DECLINED;
    }

    if (cJSON_GetObjectItemCaseSensitive(res, "thinking")) {
        ngx_str_set(err, "\"response_format\" with reasoning is not "
                         "supported by anthropic targets");
        return NGX_DECLINED;
    }

    schema = cJSON_GetObjectItemCaseSensitive(
                 cJSON_GetObjectItemCaseSensitive(format, "json_schema"),
                 "schema");

    schema = cJSON_IsObject(schema)
             ? cJSON_Duplicate(schema, 1)
             : cJSON_Parse("{\"type\":\"object\"}");

    tools = cJSON_AddArrayToObject(res, "tools");
    tool = tools ? ngx_http_ai_tr_push(tools) : NULL;

    if (schema == NULL || tool == NULL
        || ngx_http_ai_tr_add_string(tool, "name", NGX_HTTP_AI_JSON_TOOL)
           == NULL
        || ngx_http_ai_tr_add_string(tool, "description",
                                     "Give the answer with this tool: its "
                                     "input is the answer.")
           == NULL)
    {
        cJSON_Delete(schema);
        return NGX_ERROR;
    }

    cJSON_AddItemToObject(tool, "input_schema", schema);

    choice = cJSON_CreateObject();
    if (choice == NULL
        || ngx_http_ai_tr_add_string(choice, "type", "tool") == NULL
        || ngx_http_ai_tr_add_string(choice, "name", NGX_HTTP_AI_JSON_TOOL)
           == NULL)
    {
        cJSON_Delete(choice);
        return NGX_ERROR;
    }

    return ngx_http_ai_tr_set(res, "tool_choice", choice);
}


static ngx_uint_t
ngx_http_ai_anthropic_is_json_tool(cJSON *block)
{
    return ngx_http_ai_tr_is(cJSON_GetObjectItemCaseSensitive(block, "type"),
                             "tool_use")
           && ngx_http_ai_tr_is(cJSON_GetObjectItemCaseSensitive(block,
                                                                 "name"),
                                NGX_HTTP_AI_JSON_TOOL);
}


/*
 * A thinking request for an Anthropic target: the client's thinking
 * object (an OpenAI client may send Anthropic's), else one with the
 * budget of its reasoning effort.  Anthropic wants max_tokens above the
 * budget (the answer's tokens come on top of it), temperature 1 and
 * top_p from 0.95: what the client asked otherwise is left out.  In a
 * tool loop whose assistant turn came back without its signed thinking
 * blocks (an OpenAI client that keeps only content and tool_calls),
 * Anthropic refuses thinking: that turn goes without it.
 */

static ngx_int_t
ngx_http_ai_anthropic_thinking_request(cJSON *in, cJSON *res)
{
    cJSON      *thinking, *max, *messages, *msg;
    ngx_int_t   budget, i;

    if (ngx_http_ai_tr_thinking_budget(in, &budget) != NGX_OK
        || budget == 0)
    {
        return NGX_OK;
    }

    messages = cJSON_GetObjectItemCaseSensitive(in, "messages");

    for (i = cJSON_GetArraySize(messages) - 1; i >= 0; i--) {
        msg = cJSON_GetArrayItem(messages, (int) i);

        if (!ngx_http_ai_tr_is(cJSON_GetObjectItemCaseSensitive(msg, "role"),
                               "tool"))
        {
            break;
        }
    }

    if (i >= 0 && i < cJSON_GetArraySize(messages) - 1
        && cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(msg,
                                                     "tool_calls")) > 0
        && cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(msg,
                                                 "thinking_blocks")) == 0)
    {
        return NGX_OK;
    }

    thinking = cJSON_CreateObject();
    if (thinking == NULL
        || ngx_http_ai_tr_add_string(thinking, "type", "enabled") == NULL
        || ngx_http_ai_tr_add_int(thinking, "budget_tokens", budget) == NULL)
    {
        cJSON_Delete(thinking);
        return NGX_ERROR;
    }

    cJSON_AddItemToObject(res, "thinking", thinking);

    max = cJSON_GetObjectItemCaseSensitive(res, "max_tokens");

    if (cJSON_IsNumber(max) && max->valuedouble <= (double) budget) {
        cJSON_SetNumberValue(max, max->valuedouble + (double) budget);
    }

    max = cJSON_GetObjectItemCaseSensitive(res, "temperature");

    if (cJSON_IsNumber(max) && max->valuedouble != 1.0) {
        cJSON_DeleteItemFromObjectCaseSensitive(res, "temperature");
    }

    max = cJSON_GetObjectItemCaseSensitive(res, "top_p");

    if (cJSON_IsNumber(max) && max->valuedouble < 0.95) {
        cJSON_DeleteItemFromObjectCaseSensitive(res, "top_p");
    }

    return NGX_OK;
}


/*
 * The thinking of an OpenAI assistant message as the first blocks: the
 * blocks of "thinking_blocks" as they are (their signatures are what
 * Anthropic checks when a client sends them back); in an answer for the
 * Anthropic door, else the "reasoning_content" (an OpenAI-compatible
 * server's, Gemini's thoughts) as a thinking block without a signature.
 */

static ngx_int_t
ngx_http_ai_anthropic_thinking_from_openai(cJSON *msg, cJSON *blocks,
    ngx_uint_t answer)
{
    cJSON       *list, *block, *copy;
    ngx_uint_t   n;
    const char  *s;

    list = cJSON_GetObjectItemCaseSensitive(msg, "thinking_blocks");
    n = 0;

    cJSON_ArrayForEach(block, list) {
        s = ngx_http_ai_tr_string(block, "type");

        if (s == NULL
            || (ngx_strcmp(s, "thinking") != 0
                && ngx_strcmp(s, "redacted_thinking") != 0))
        {
            continue;
        }

        copy = cJSON_Duplicate(block, 1);
        if (copy == NULL) {
            return NGX_ERROR;
        }

        cJSON_AddItemToArray(blocks, copy);
        n++;
    }

    s = ngx_http_ai_tr_string(msg, "reasoning_content");

    if (n || !answer || s == NULL || *s == '\0') {
        return NGX_OK;
    }

    block = ngx_http_ai_tr_push(blocks);
    if (block == NULL
        || ngx_http_ai_tr_add_string(block, "type", "thinking") == NULL
        || ngx_http_ai_tr_add_string(block, "thinking", s) == NULL
        || ngx_http_ai_tr_add_string(block, "signature", "") == NULL)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static cJSON *
ngx_http_ai_anthropic_text_block(const char *text)
{
    cJSON  *block;

    block = cJSON_CreateObject();
    if (block == NULL) {
        return NULL;
    }

    if (ngx_http_ai_tr_add_string(block, "type", "text") == NULL
        || ngx_http_ai_tr_add_string(block, "text", text) == NULL)
    {
        cJSON_Delete(block);
        return NULL;
    }

    return block;
}


/*
 * A prompt caching breakpoint: the "cache_control" object of an OpenAI
 * part, message or tool (a client written for Anthropic's caching sends
 * it there, as LiteLLM takes it) copied to the Anthropic block or tool
 */

static ngx_int_t
ngx_http_ai_anthropic_cache_control(cJSON *from, cJSON *block)
{
    cJSON  *cc;

    cc = cJSON_GetObjectItemCaseSensitive(from, "cache_control");

    if (!cJSON_IsObject(cc) || block == NULL
        || cJSON_GetObjectItemCaseSensitive(block, "cache_control"))
    {
        return NGX_OK;
    }

    cc = cJSON_Duplicate(cc, 1);
    if (cc == NULL) {
        return NGX_ERROR;
    }

    cJSON_AddItemToObject(block, "cache_control", cc);

    return NGX_OK;
}


/* the content blocks of a user message being built, NULL if none */

static cJSON *
ngx_http_ai_anthropic_blocks(cJSON *msg)
{
    cJSON  *content;

    if (msg == NULL
        || !ngx_http_ai_tr_is(cJSON_GetObjectItemCaseSensitive(msg, "role"),
                              "user"))
    {
        return NULL;
    }

    content = cJSON_GetObjectItemCaseSensitive(msg, "content");

    return cJSON_IsArray(content) ? content : NULL;
}


/*
 * Anthropic to Anthropic: the client's body with the target's model and
 * the decorations; system ones join the top-level system prompt.
 */

ngx_int_t
ngx_http_ai_anthropic_decorate(cJSON *json,
    ngx_http_ai_translate_request_t *req)
{
    cJSON                     *messages, *system, *blocks, *item, *stream;
    ngx_int_t                  n, s;
    ngx_uint_t                 i, k;
    ngx_array_t               *a;
    ngx_http_ai_decoration_t  *d;

    messages = cJSON_GetObjectItemCaseSensitive(json, "messages");
    if (!cJSON_IsArray(messages)) {
        return NGX_DECLINED;
    }

    blocks = NULL;

    for (k = 0; k < 2; k++) {
        a = (k == 0) ? req->prepend : req->append;

        if (a == NULL) {
            continue;
        }

        d = a->elts;
        n = 0;
        s = 0;

        for (i = 0; i < a->nelts; i++) {

            if (d[i].role.len == sizeof("system") - 1
                && ngx_strncmp(d[i].role.data, "system", d[i].role.len) == 0)
            {
                if (blocks == NULL) {
                    /* the system prompt as blocks */

                    system = cJSON_GetObjectItemCaseSensitive(json, "system");

                    if (cJSON_IsArray(system)) {
                        blocks = system;

                    } else {
                        blocks = cJSON_CreateArray();
                        if (blocks == NULL) {
                            return NGX_ERROR;
                        }

                        if (cJSON_IsString(system) && *system->valuestring) {
                            item = ngx_http_ai_anthropic_text_block(
                                                        system->valuestring);
                            if (item == NULL) {
                                cJSON_Delete(blocks);
                                return NGX_ERROR;
                            }

                            cJSON_AddItemToArray(blocks, item);
                        }

                        if (ngx_http_ai_tr_set(json, "system", blocks)
                            != NGX_OK)
                        {
                            return NGX_ERROR;
                        }
                    }
                }

                item = cJSON_CreateObject();
                if (item == NULL) {
                    return NGX_ERROR;
                }

                if (ngx_http_ai_tr_add_string(item, "type", "text") == NULL
                    || ngx_http_ai_tr_add_str(item, "text", &d[i].content)
                       == NULL)
                {
                    cJSON_Delete(item);
                    return NGX_ERROR;
                }

                if (k == 0) {
                    cJSON_InsertItemInArray(blocks, (int) s++, item);

                } else {
                    cJSON_AddItemToArray(blocks, item);
                }

                continue;
            }

            item = ngx_http_ai_anthropic_message(&d[i].role, &d[i].content);
            if (item == NULL) {
                return NGX_ERROR;
            }

            if (k == 0) {
                cJSON_InsertItemInArray(messages, (int) n++, item);

            } else {
                cJSON_AddItemToArray(messages, item);
            }
        }
    }

    if (req->model.len
        && ngx_http_ai_tr_set(json, "model", ngx_http_ai_tr_str(&req->model))
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    stream = cJSON_GetObjectItemCaseSensitive(json, "stream");

    if ((req->stream || stream)
        && ngx_http_ai_tr_set(json, "stream", cJSON_CreateBool(req->stream))
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static cJSON *
ngx_http_ai_anthropic_message(ngx_str_t *role, ngx_str_t *text)
{
    cJSON  *msg;

    msg = cJSON_CreateObject();
    if (msg == NULL) {
        return NULL;
    }

    if (ngx_http_ai_tr_add_str(msg, "role", role) == NULL
        || ngx_http_ai_tr_add_str(msg, "content", text) == NULL)
    {
        cJSON_Delete(msg);
        return NULL;
    }

    return msg;
}


/* responses: Anthropic -> OpenAI */

ngx_int_t
ngx_http_ai_anthropic_response_to_openai(ngx_pool_t *pool, cJSON *in,
    ngx_str_t *model, cJSON **out, ngx_str_t *err)
{
    char                 *text, *args, *id;
    cJSON                *res, *choices, *choice, *msg, *content, *block;
    cJSON                *calls, *call, *fn, *usage;
    ngx_str_t            *reason;
    ngx_uint_t            other, json;
    const char           *s;
    ngx_http_ai_usage_t   u;

    content = cJSON_GetObjectItemCaseSensitive(in, "content");

    if (!cJSON_IsArray(content)) {
        ngx_str_set(err, "the anthropic response has no content");
        return NGX_DECLINED;
    }

    res = cJSON_CreateObject();
    if (res == NULL) {
        return NGX_ERROR;
    }

    s = ngx_http_ai_tr_string(in, "id");
    id = s ? (char *) s : ngx_http_ai_tr_gen_id(pool, "chatcmpl-");

    if (id == NULL
        || ngx_http_ai_tr_add_string(res, "id", id) == NULL
        || ngx_http_ai_tr_add_string(res, "object", "chat.completion") == NULL
        || cJSON_AddNumberToObject(res, "created", (double) time(NULL))
           == NULL)
    {
        goto failed;
    }

    if (model && model->len) {
        if (ngx_http_ai_tr_add_str(res, "model", model) == NULL) {
            goto failed;
        }

    } else if (ngx_http_ai_tr_add_copy(res, "model", in, "model") != NGX_OK) {
        goto failed;
    }

    choices = cJSON_AddArrayToObject(res, "choices");
    choice = choices ? ngx_http_ai_tr_push(choices) : NULL;

    if (choice == NULL
        || cJSON_AddNumberToObject(choice, "index", 0) == NULL
        || (msg = cJSON_AddObjectToObject(choice, "message")) == NULL
        || ngx_http_ai_tr_add_string(msg, "role", "assistant") == NULL)
    {
        goto failed;
    }

    other = 0;
    text = ngx_http_ai_tr_text(pool, content, "text", "", &other);
    if (text == NULL) {
        goto failed;
    }

    calls = NULL;
    json = 0;

    cJSON_ArrayForEach(block, content) {
        if (ngx_http_ai_anthropic_is_json_tool(block)) {
            /* a response_format's answer: its input is the text */

            args = cJSON_PrintUnformatted(
                             cJSON_GetObjectItemCaseSensitive(block, "input"));
            if (args == NULL) {
                cJSON_Delete(calls);
                goto failed;
            }

            text = ngx_http_ai_tr_strdup(pool, args, ngx_strlen(args));
            cJSON_free(args);

            if (text == NULL) {
                cJSON_Delete(calls);
                goto failed;
            }

            json = 1;
            continue;
        }

        if (!ngx_http_ai_tr_is(cJSON_GetObjectItemCaseSensitive(block, "type"),
                               "tool_use"))
        {
            continue;
        }

        if (calls == NULL) {
            calls = cJSON_CreateArray();
            if (calls == NULL) {
                goto failed;
            }
        }

        call = ngx_http_ai_tr_push(calls);
        if (call == NULL
            || ngx_http_ai_tr_add_copy(call, "id", block, "id") != NGX_OK
            || ngx_http_ai_tr_add_string(call, "type", "function") == NULL
            || (fn = cJSON_AddObjectToObject(call, "function")) == NULL
            || ngx_http_ai_tr_add_copy(fn, "name", block, "name") != NGX_OK)
        {
            cJSON_Delete(calls);
            goto failed;
        }

        args = cJSON_PrintUnformatted(
                         cJSON_GetObjectItemCaseSensitive(block, "input"));

        if (ngx_http_ai_tr_add_string(fn, "arguments", args ? args : "{}")
            == NULL)
        {
            cJSON_free(args);
            cJSON_Delete(calls);
            goto failed;
        }

        cJSON_free(args);
    }

    if (*text == '\0' && calls) {
        if (cJSON_AddNullToObject(msg, "content") == NULL) {
            cJSON_Delete(calls);
            goto failed;
        }

    } else if (ngx_http_ai_tr_add_string(msg, "content", text) == NULL) {
        cJSON_Delete(calls);
        goto failed;
    }

    if (calls) {
        cJSON_AddItemToObject(msg, "tool_calls", calls);
    }

    if (cJSON_AddNullToObject(msg, "refusal") == NULL
        || ngx_http_ai_anthropic_thinking_to_openai(pool, content, msg)
           != NGX_OK
        || cJSON_AddNullToObject(choice, "logprobs") == NULL)
    {
        goto failed;
    }

    s = ngx_http_ai_tr_string(in, "stop_reason");

    if (json && s && ngx_strcmp(s, "tool_use") == 0) {
        s = "end_turn";
    }

    reason = ngx_http_ai_tr_reason(NGX_HTTP_AI_FMT_OPENAI,
                                   NGX_HTTP_AI_FMT_ANTHROPIC,
                                   s ? s : (calls ? "tool_use" : "end_turn"));

    if (ngx_http_ai_tr_add_str(choice, "finish_reason", reason) == NULL) {
        goto failed;
    }

    usage = cJSON_GetObjectItemCaseSensitive(in, "usage");

    if (cJSON_IsObject(usage)) {
        ngx_memzero(&u, sizeof(ngx_http_ai_usage_t));
        ngx_http_ai_usage_object(NGX_HTTP_AI_FMT_ANTHROPIC, usage, &u);

        usage = ngx_http_ai_tr_usage_openai(&u);
        if (usage == NULL) {
            goto failed;
        }

        cJSON_AddItemToObject(res, "usage", usage);
    }

    *out = res;

    return NGX_OK;

failed:

    cJSON_Delete(res);

    return NGX_ERROR;
}


/*
 * An answer's thinking for an OpenAI client: the text of its thinking
 * blocks in "reasoning_content", and the blocks (signatures, redacted
 * ones) in "thinking_blocks", for the client to send back
 */

static ngx_int_t
ngx_http_ai_anthropic_thinking_to_openai(ngx_pool_t *pool, cJSON *content,
    cJSON *msg)
{
    char        *text, *p;
    cJSON       *block, *list, *copy;
    size_t       len;
    const char  *s, *type;

    len = 0;
    list = NULL;

    cJSON_ArrayForEach(block, content) {
        type = ngx_http_ai_tr_string(block, "type");

        if (type == NULL
            || (ngx_strcmp(type, "thinking") != 0
                && ngx_strcmp(type, "redacted_thinking") != 0))
        {
            continue;
        }

        s = ngx_http_ai_tr_string(block, "thinking");
        len += s ? ngx_strlen(s) : 0;

        if (list == NULL) {
            list = cJSON_AddArrayToObject(msg, "thinking_blocks");
            if (list == NULL) {
                return NGX_ERROR;
            }
        }

        copy = cJSON_Duplicate(block, 1);
        if (copy == NULL) {
            return NGX_ERROR;
        }

        cJSON_AddItemToArray(list, copy);
    }

    if (list == NULL) {
        return NGX_OK;
    }

    text = ngx_pnalloc(pool, len + 1);
    if (text == NULL) {
        return NGX_ERROR;
    }

    p = text;

    cJSON_ArrayForEach(block, list) {
        s = ngx_http_ai_tr_string(block, "thinking");

        if (s) {
            p = (char *) ngx_cpymem(p, s, ngx_strlen(s));
        }
    }

    *p = '\0';

    return ngx_http_ai_tr_add_string(msg, "reasoning_content", text)
           ? NGX_OK : NGX_ERROR;
}


static cJSON *
ngx_http_ai_anthropic_usage_object(ngx_http_ai_usage_t *u, ngx_uint_t start)
{
    cJSON      *usage;
    ngx_int_t   input;

    usage = cJSON_CreateObject();
    if (usage == NULL) {
        return NULL;
    }

    input = u->prompt_tokens - u->cached_tokens - u->cache_write_tokens;

    if ((start || u->found)
        && ngx_http_ai_tr_add_int(usage, "input_tokens",
                                  input > 0 ? input : 0)
           == NULL)
    {
        cJSON_Delete(usage);
        return NULL;
    }

    if (ngx_http_ai_tr_add_int(usage, "output_tokens",
                               start ? 0 : u->completion_tokens)
        == NULL)
    {
        cJSON_Delete(usage);
        return NULL;
    }

    if ((start || u->found)
        && (ngx_http_ai_tr_add_int(usage, "cache_creation_input_tokens",
                                   u->cache_write_tokens)
            == NULL
            || ngx_http_ai_tr_add_int(usage, "cache_read_input_tokens",
                                      u->cached_tokens)
               == NULL))
    {
        cJSON_Delete(usage);
        return NULL;
    }

    return usage;
}


/* responses: OpenAI -> Anthropic */

ngx_int_t
ngx_http_ai_anthropic_response_from_openai(ngx_pool_t *pool, cJSON *in,
    ngx_str_t *model, cJSON **out, ngx_str_t *err)
{
    char                 *id;
    cJSON                *res, *choice, *msg, *blocks, *usage, *content;
    ngx_str_t            *reason;
    const char           *s;
    ngx_http_ai_usage_t   u;

    choice = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(in,
                                                                 "choices"),
                                0);
    msg = cJSON_GetObjectItemCaseSensitive(choice, "message");

    if (!cJSON_IsObject(msg)) {
        ngx_str_set(err, "the upstream response has no message");
        return NGX_DECLINED;
    }

    res = cJSON_CreateObject();
    if (res == NULL) {
        return NGX_ERROR;
    }

    s = ngx_http_ai_tr_string(in, "id");
    id = s ? (char *) s : ngx_http_ai_tr_gen_id(pool, "msg_");

    if (id == NULL
        || ngx_http_ai_tr_add_string(res, "id", id) == NULL
        || ngx_http_ai_tr_add_string(res, "type", "message") == NULL
        || ngx_http_ai_tr_add_string(res, "role", "assistant") == NULL)
    {
        goto failed;
    }

    if (model && model->len) {
        if (ngx_http_ai_tr_add_str(res, "model", model) == NULL) {
            goto failed;
        }

    } else if (ngx_http_ai_tr_add_copy(res, "model", in, "model") != NGX_OK) {
        goto failed;
    }

    content = ngx_http_ai_anthropic_assistant_from_openai(pool, msg, 1, err);
    if (content == NULL) {
        goto failed;
    }

    blocks = cJSON_DetachItemFromObjectCaseSensitive(content, "content");
    cJSON_Delete(content);

    if (cJSON_IsString(blocks)) {
        content = ngx_http_ai_anthropic_text_block(blocks->valuestring);
        cJSON_Delete(blocks);

        blocks = cJSON_CreateArray();
        if (blocks == NULL || content == NULL) {
            cJSON_Delete(blocks);
            cJSON_Delete(content);
            goto failed;
        }

        cJSON_AddItemToArray(blocks, content);

    } else if (blocks == NULL) {
        blocks = cJSON_CreateArray();
        if (blocks == NULL) {
            goto failed;
        }
    }

    cJSON_AddItemToObject(res, "content", blocks);

    s = ngx_http_ai_tr_string(choice, "finish_reason");
    reason = ngx_http_ai_tr_reason(NGX_HTTP_AI_FMT_ANTHROPIC,
                                   NGX_HTTP_AI_FMT_OPENAI, s ? s : "stop");

    if (ngx_http_ai_tr_add_str(res, "stop_reason", reason) == NULL
        || cJSON_AddNullToObject(res, "stop_sequence") == NULL)
    {
        goto failed;
    }

    ngx_memzero(&u, sizeof(ngx_http_ai_usage_t));
    ngx_http_ai_usage_object(NGX_HTTP_AI_FMT_OPENAI,
                             cJSON_GetObjectItemCaseSensitive(in, "usage"),
                             &u);
    u.found = 1;

    usage = ngx_http_ai_anthropic_usage_object(&u, 0);
    if (usage == NULL) {
        goto failed;
    }

    cJSON_AddItemToObject(res, "usage", usage);

    *out = res;

    return NGX_OK;

failed:

    cJSON_Delete(res);

    return err->len ? NGX_DECLINED : NGX_ERROR;
}


/* streams: Anthropic events -> OpenAI chunks */

ngx_int_t
ngx_http_ai_anthropic_stream_to_openai(ngx_http_ai_stream_t *st,
    ngx_str_t *name, cJSON *json)
{
    cJSON       *msg, *block, *delta, *d, *usage, *chunk;
    ngx_int_t    index, tool;
    const char  *type, *s, *error;

    type = ngx_http_ai_tr_string(json, "type");
    if (type == NULL) {
        return NGX_OK;
    }

    if (ngx_strcmp(type, "message_start") == 0) {
        msg = cJSON_GetObjectItemCaseSensitive(json, "message");
        s = ngx_http_ai_tr_string(msg, "id");

        if (s && st->id == NULL) {
            st->id = ngx_http_ai_tr_strdup(st->pool, s, ngx_strlen(s));
            if (st->id == NULL) {
                return NGX_ERROR;
            }
        }

        usage = cJSON_GetObjectItemCaseSensitive(msg, "usage");
        if (cJSON_IsObject(usage)) {
            ngx_http_ai_usage_object(NGX_HTTP_AI_FMT_ANTHROPIC, usage,
                                     &st->usage);
        }

        return ngx_http_ai_tr_emit_role(st);
    }

    if (ngx_strcmp(type, "error") == 0) {
        d = cJSON_GetObjectItemCaseSensitive(json, "error");
        error = ngx_http_ai_tr_string(d, "type");
        s = ngx_http_ai_tr_string(d, "message");

        return ngx_http_ai_tr_emit_error(st, error ? error : "api_error",
                                         s ? s : "upstream error", NULL);
    }

    if (ngx_http_ai_tr_emit_role(st) != NGX_OK) {
        return NGX_ERROR;
    }

    index = -1;
    ngx_http_ai_tr_int(json, "index", &index);

    if (index > NGX_HTTP_AI_MAX_INDEX) {
        index = -1;
    }

    if (ngx_strcmp(type, "content_block_start") == 0) {
        block = cJSON_GetObjectItemCaseSensitive(json, "content_block");
        s = ngx_http_ai_tr_string(block, "type");

        if (s && ngx_strcmp(s, "text") == 0) {
            s = ngx_http_ai_tr_string(block, "text");

            if (s == NULL || *s == '\0') {
                return NGX_OK;
            }

            chunk = ngx_http_ai_tr_chunk(st, &delta, NULL);
            if (chunk == NULL
                || ngx_http_ai_tr_add_string(delta, "content", s) == NULL)
            {
                cJSON_Delete(chunk);
                return NGX_ERROR;
            }

            return ngx_http_ai_tr_emit_chunk(st, chunk);
        }

        if (s && ngx_strcmp(s, "redacted_thinking") == 0) {
            return ngx_http_ai_anthropic_thinking_chunk(st, block);
        }

        if (s && ngx_strcmp(s, "thinking") == 0) {
            s = ngx_http_ai_tr_string(block, "thinking");

            if (s == NULL || *s == '\0') {
                return NGX_OK;
            }

            chunk = ngx_http_ai_tr_chunk(st, &delta, NULL);
            if (chunk == NULL
                || ngx_http_ai_tr_add_string(delta, "reasoning_content", s)
                   == NULL)
            {
                cJSON_Delete(chunk);
                return NGX_ERROR;
            }

            return ngx_http_ai_tr_emit_chunk(st, chunk);
        }

        if (s == NULL || ngx_strcmp(s, "tool_use") != 0 || index < 0) {
            /* server tools: not for an OpenAI client */
            return NGX_OK;
        }

        if (ngx_http_ai_anthropic_is_json_tool(block)) {
            /* a response_format's answer: its input is the text */
            st->json_answer = 1;
            return ngx_http_ai_tr_array_set(&st->tools, index,
                                            NGX_HTTP_AI_ANTHROPIC_JSON);
        }

        tool = st->ntools++;
        st->tool_calls = 1;

        if (ngx_http_ai_tr_array_set(&st->tools, index, tool) != NGX_OK) {
            return NGX_ERROR;
        }

        return ngx_http_ai_tr_emit_call(st, tool, block, "id", NULL);
    }

    if (ngx_strcmp(type, "content_block_delta") == 0) {
        d = cJSON_GetObjectItemCaseSensitive(json, "delta");
        s = ngx_http_ai_tr_string(d, "type");

        if (s && ngx_strcmp(s, "text_delta") == 0) {
            s = ngx_http_ai_tr_string(d, "text");

            if (s == NULL || *s == '\0') {
                return NGX_OK;
            }

            chunk = ngx_http_ai_tr_chunk(st, &delta, NULL);
            if (chunk == NULL
                || ngx_http_ai_tr_add_string(delta, "content", s) == NULL)
            {
                cJSON_Delete(chunk);
                return NGX_ERROR;
            }

            return ngx_http_ai_tr_emit_chunk(st, chunk);
        }

        if (s && ngx_strcmp(s, "thinking_delta") == 0) {
            s = ngx_http_ai_tr_string(d, "thinking");

            if (s == NULL || *s == '\0') {
                return NGX_OK;
            }

            chunk = ngx_http_ai_tr_chunk(st, &delta, NULL);
            if (chunk == NULL
                || ngx_http_ai_tr_add_string(delta, "reasoning_content", s)
                   == NULL)
            {
                cJSON_Delete(chunk);
                return NGX_ERROR;
            }

            return ngx_http_ai_tr_emit_chunk(st, chunk);
        }

        if (s && ngx_strcmp(s, "signature_delta") == 0) {
            return ngx_http_ai_anthropic_thinking_chunk(st, d);
        }

        if (s == NULL || ngx_strcmp(s, "input_json_delta") != 0
            || index < 0)
        {
            return NGX_OK;
        }

        tool = ngx_http_ai_tr_array_get(&st->tools, index);
        s = ngx_http_ai_tr_string(d, "partial_json");

        if (tool == NGX_HTTP_AI_ANTHROPIC_JSON && s && *s) {
            chunk = ngx_http_ai_tr_chunk(st, &delta, NULL);
            if (chunk == NULL
                || ngx_http_ai_tr_add_string(delta, "content", s) == NULL)
            {
                cJSON_Delete(chunk);
                return NGX_ERROR;
            }

            return ngx_http_ai_tr_emit_chunk(st, chunk);
        }

        if (tool < 0 || s == NULL || *s == '\0') {
            return NGX_OK;
        }

        return ngx_http_ai_tr_emit_call(st, tool, NULL, NULL, s);
    }

    if (ngx_strcmp(type, "message_delta") == 0) {
        usage = cJSON_GetObjectItemCaseSensitive(json, "usage");
        if (cJSON_IsObject(usage)) {
            ngx_http_ai_usage_object(NGX_HTTP_AI_FMT_ANTHROPIC, usage,
                                     &st->usage);
        }

        d = cJSON_GetObjectItemCaseSensitive(json, "delta");
        s = ngx_http_ai_tr_string(d, "stop_reason");

        if (s == NULL) {
            return NGX_OK;
        }

        if (st->json_answer && ngx_strcmp(s, "tool_use") == 0) {
            s = "end_turn";
        }

        st->finish = ngx_http_ai_tr_reason(NGX_HTTP_AI_FMT_OPENAI,
                                           NGX_HTTP_AI_FMT_ANTHROPIC, s);

        return ngx_http_ai_tr_emit_finish(st, st->finish);
    }

    if (ngx_strcmp(type, "message_stop") == 0) {
        if (ngx_http_ai_tr_emit_finish(st, st->finish
                                           ? st->finish
                                           : ngx_http_ai_tr_reason(
                                                 NGX_HTTP_AI_FMT_OPENAI,
                                                 NGX_HTTP_AI_FMT_ANTHROPIC,
                                                 "end_turn"))
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        return ngx_http_ai_tr_emit_close(st);
    }

    /* ping, content_block_stop, unknown events */

    return NGX_OK;
}


/*
 * A thinking block's signature (signature_delta) or a redacted block
 * (content_block_start) in a chunk of their own for an OpenAI client:
 * "thinking_blocks": [{"type":"thinking","thinking":"","signature":..}]
 * or [{"type":"redacted_thinking","data":..}]; the text came in
 * reasoning_content deltas before
 */

static ngx_int_t
ngx_http_ai_anthropic_thinking_chunk(ngx_http_ai_stream_t *st, cJSON *from)
{
    cJSON       *chunk, *delta, *list, *block;
    const char  *s;

    chunk = ngx_http_ai_tr_chunk(st, &delta, NULL);
    if (chunk == NULL
        || (list = cJSON_AddArrayToObject(delta, "thinking_blocks")) == NULL
        || (block = ngx_http_ai_tr_push(list)) == NULL)
    {
        cJSON_Delete(chunk);
        return NGX_ERROR;
    }

    s = ngx_http_ai_tr_string(from, "data");

    if (ngx_http_ai_tr_is(cJSON_GetObjectItemCaseSensitive(from, "type"),
                          "redacted_thinking"))
    {
        if (ngx_http_ai_tr_add_string(block, "type", "redacted_thinking")
            == NULL
            || ngx_http_ai_tr_add_string(block, "data", s ? s : "") == NULL)
        {
            cJSON_Delete(chunk);
            return NGX_ERROR;
        }

    } else {
        s = ngx_http_ai_tr_string(from, "signature");

        if (ngx_http_ai_tr_add_string(block, "type", "thinking") == NULL
            || ngx_http_ai_tr_add_string(block, "thinking", "") == NULL
            || ngx_http_ai_tr_add_string(block, "signature", s ? s : "")
               == NULL)
        {
            cJSON_Delete(chunk);
            return NGX_ERROR;
        }
    }

    return ngx_http_ai_tr_emit_chunk(st, chunk);
}


/* streams: OpenAI chunks -> Anthropic events */

ngx_int_t
ngx_http_ai_anthropic_stream_from_openai(ngx_http_ai_stream_t *st,
    cJSON *chunk)
{
    cJSON       *error, *choice, *delta, *calls, *call, *fn;
    ngx_int_t    index, block;
    const char  *s, *type;

    error = cJSON_GetObjectItemCaseSensitive(chunk, "error");

    if (cJSON_IsObject(error)) {
        type = ngx_http_ai_tr_string(error, "type");
        s = ngx_http_ai_tr_string(error, "message");

        return ngx_http_ai_tr_emit_error(st, type ? type : "api_error",
                                         s ? s : "upstream error", NULL);
    }

    ngx_http_ai_usage_object(NGX_HTTP_AI_FMT_OPENAI,
                             cJSON_GetObjectItemCaseSensitive(chunk, "usage"),
                             &st->usage);

    if (ngx_http_ai_anthropic_start(st, chunk) != NGX_OK) {
        return NGX_ERROR;
    }

    choice = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(chunk,
                                                                 "choices"),
                                0);
    if (choice == NULL) {
        return NGX_OK;
    }

    delta = cJSON_GetObjectItemCaseSensitive(choice, "delta");

    /* thinking first: reasoning_content, a signature, redacted blocks */

    s = ngx_http_ai_tr_string(delta, "reasoning_content");

    if (s && *s) {
        if (st->block_type != NGX_HTTP_AI_BLOCK_THINKING
            && ngx_http_ai_anthropic_block_start(st,
                                                 NGX_HTTP_AI_BLOCK_THINKING,
                                                 NULL)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (ngx_http_ai_anthropic_block_delta(st, st->block,
                                              "thinking_delta", "thinking",
                                              s)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    calls = cJSON_GetObjectItemCaseSensitive(delta, "thinking_blocks");

    cJSON_ArrayForEach(call, calls) {
        type = ngx_http_ai_tr_string(call, "type");

        if (type && ngx_strcmp(type, "redacted_thinking") == 0) {
            if (ngx_http_ai_anthropic_block_start(st,
                                                  NGX_HTTP_AI_BLOCK_THINKING,
                                                  call)
                != NGX_OK
                || ngx_http_ai_anthropic_block_stop(st) != NGX_OK)
            {
                return NGX_ERROR;
            }

            continue;
        }

        s = ngx_http_ai_tr_string(call, "signature");

        if (s == NULL || *s == '\0') {
            continue;
        }

        if (st->block_type != NGX_HTTP_AI_BLOCK_THINKING
            && ngx_http_ai_anthropic_block_start(st,
                                                 NGX_HTTP_AI_BLOCK_THINKING,
                                                 NULL)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        /* the signature ends its block: the next thought is another */

        if (ngx_http_ai_anthropic_block_delta(st, st->block,
                                              "signature_delta", "signature",
                                              s)
            != NGX_OK
            || ngx_http_ai_anthropic_block_stop(st) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    s = ngx_http_ai_tr_string(delta, "content");
    if (s == NULL || *s == '\0') {
        s = ngx_http_ai_tr_string(delta, "refusal");
    }

    if (s && *s) {
        if (st->block_type != NGX_HTTP_AI_BLOCK_TEXT
            && ngx_http_ai_anthropic_block_start(st, NGX_HTTP_AI_BLOCK_TEXT,
                                                 NULL)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (ngx_http_ai_anthropic_block_delta(st, st->block, "text_delta",
                                              "text", s)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    calls = cJSON_GetObjectItemCaseSensitive(delta, "tool_calls");

    cJSON_ArrayForEach(call, calls) {
        index = 0;
        ngx_http_ai_tr_int(call, "index", &index);

        if (index > NGX_HTTP_AI_MAX_INDEX) {
            continue;
        }

        block = ngx_http_ai_tr_array_get(&st->blocks, index);

        if (block < 0) {
            if (ngx_http_ai_anthropic_block_start(st, NGX_HTTP_AI_BLOCK_TOOL,
                                                  call)
                != NGX_OK
                || ngx_http_ai_tr_array_set(&st->blocks, index, st->block)
                   != NGX_OK)
            {
                return NGX_ERROR;
            }

            block = st->block;
        }

        fn = cJSON_GetObjectItemCaseSensitive(call, "function");
        s = ngx_http_ai_tr_string(fn, "arguments");

        if (s && *s
            && ngx_http_ai_anthropic_block_delta(st, block,
                                                 "input_json_delta",
                                                 "partial_json", s)
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    s = ngx_http_ai_tr_string(choice, "finish_reason");

    if (s) {
        if (ngx_http_ai_anthropic_block_stop(st) != NGX_OK) {
            return NGX_ERROR;
        }

        st->stop_reason = ngx_http_ai_tr_reason(NGX_HTTP_AI_FMT_ANTHROPIC,
                                                NGX_HTTP_AI_FMT_OPENAI, s);
    }

    return NGX_OK;
}


/* the end: the open block, message_delta and message_stop */

ngx_int_t
ngx_http_ai_anthropic_stream_close(ngx_http_ai_stream_t *st)
{
    if (ngx_http_ai_anthropic_start(st, NULL) != NGX_OK
        || ngx_http_ai_anthropic_block_stop(st) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (st->stop_reason == NULL) {
        st->stop_reason = ngx_http_ai_tr_reason(NGX_HTTP_AI_FMT_ANTHROPIC,
                                                NGX_HTTP_AI_FMT_OPENAI,
                                                st->tool_calls ? "tool_calls"
                                                               : "stop");
    }

    /*
     * written as cJSON would print the tree, without one: the stop
     * reason is one of the tables' names, which need no escape
     */

    if (ngx_http_ai_tr_out(st, "event: message_delta\n"
                           "data: {\"type\":\"message_delta\","
                           "\"delta\":{\"stop_reason\":\"",
                           sizeof("event: message_delta\n"
                                  "data: {\"type\":\"message_delta\","
                                  "\"delta\":{\"stop_reason\":\"") - 1)
        != NGX_OK
        || ngx_http_ai_tr_out(st, (char *) st->stop_reason->data,
                              st->stop_reason->len)
           != NGX_OK
        || ngx_http_ai_tr_out(st, "\",\"stop_sequence\":null},\"usage\":",
                              sizeof("\",\"stop_sequence\":null},"
                                     "\"usage\":") - 1)
           != NGX_OK
        || ngx_http_ai_anthropic_usage_out(st, &st->usage, 0) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_ai_tr_out(st, "}\n\n"
                                "event: message_stop\n"
                                "data: {\"type\":\"message_stop\"}\n\n",
                            sizeof("}\n\n"
                                   "event: message_stop\n"
                                   "data: {\"type\":\"message_stop\"}\n\n")
                            - 1);
}


/* message_start, once, with the prompt's tokens when they are known */

static ngx_int_t
ngx_http_ai_anthropic_start(ngx_http_ai_stream_t *st, cJSON *chunk)
{
    const char  *s;

    if (st->started) {
        return NGX_OK;
    }

    if (st->id == NULL) {
        s = ngx_http_ai_tr_string(chunk, "id");

        st->id = s ? ngx_http_ai_tr_strdup(st->pool, s, ngx_strlen(s))
                   : ngx_http_ai_tr_gen_id(st->pool, "msg_");
        if (st->id == NULL) {
            return NGX_ERROR;
        }
    }

    return ngx_http_ai_anthropic_start_out(st);
}


/*
 * message_start itself (st->id set); printed without a tree when the id
 * and the model print as they are, else through cJSON, which escapes
 */

ngx_int_t
ngx_http_ai_anthropic_start_out(ngx_http_ai_stream_t *st)
{
    cJSON      *json, *msg, *usage;
    ngx_int_t   rc;

    st->started = 1;

    if (ngx_http_ai_tr_verbatim(st->id, ngx_strlen(st->id))
        && ngx_http_ai_tr_verbatim((char *) st->model.data,
                                   st->model.len))
    {
        if (ngx_http_ai_tr_out(st, "event: message_start\n"
                               "data: {\"type\":\"message_start\","
                               "\"message\":{\"id\":\"",
                               sizeof("event: message_start\n"
                                      "data: {\"type\":\"message_start\","
                                      "\"message\":{\"id\":\"") - 1)
            != NGX_OK
            || ngx_http_ai_tr_out(st, st->id, ngx_strlen(st->id)) != NGX_OK
            || ngx_http_ai_tr_out(st, "\",\"type\":\"message\","
                                  "\"role\":\"assistant\",\"model\":\"",
                                  sizeof("\",\"type\":\"message\","
                                         "\"role\":\"assistant\","
                                         "\"model\":\"") - 1)
               != NGX_OK
            || ngx_http_ai_tr_out(st, (char *) st->model.data, st->model.len)
               != NGX_OK
            || ngx_http_ai_tr_out(st, "\",\"content\":[],\"stop_reason\":null,"
                                  "\"stop_sequence\":null,\"usage\":",
                                  sizeof("\",\"content\":[],"
                                         "\"stop_reason\":null,"
                                         "\"stop_sequence\":null,"
                                         "\"usage\":") - 1)
               != NGX_OK
            || ngx_http_ai_anthropic_usage_out(st, &st->usage, 1) != NGX_OK)
        {
            return NGX_ERROR;
        }

        return ngx_http_ai_tr_out(st, "}}\n\n", sizeof("}}\n\n") - 1);
    }

    json = cJSON_CreateObject();
    if (json == NULL) {
        return NGX_ERROR;
    }

    rc = NGX_ERROR;

    if (ngx_http_ai_tr_add_string(json, "type", "message_start") == NULL
        || (msg = cJSON_AddObjectToObject(json, "message")) == NULL
        || ngx_http_ai_tr_add_string(msg, "id", st->id) == NULL
        || ngx_http_ai_tr_add_string(msg, "type", "message") == NULL
        || ngx_http_ai_tr_add_string(msg, "role", "assistant") == NULL
        || ngx_http_ai_tr_add_str(msg, "model", &st->model) == NULL
        || cJSON_AddArrayToObject(msg, "content") == NULL
        || cJSON_AddNullToObject(msg, "stop_reason") == NULL
        || cJSON_AddNullToObject(msg, "stop_sequence") == NULL
        || (usage = ngx_http_ai_anthropic_usage_object(&st->usage, 1))
           == NULL)
    {
        goto done;
    }

    cJSON_AddItemToObject(msg, "usage", usage);

    rc = ngx_http_ai_tr_out_event(st, "message_start", json);

done:

    cJSON_Delete(json);

    return rc;
}


/* the usage object as ngx_http_ai_anthropic_usage_object() prints it */

static ngx_int_t
ngx_http_ai_anthropic_usage_out(ngx_http_ai_stream_t *st,
    ngx_http_ai_usage_t *u, ngx_uint_t start)
{
    int        n;
    char       num[NGX_INT64_LEN + 1];
    ngx_int_t  input;

    input = u->prompt_tokens - u->cached_tokens - u->cache_write_tokens;

    if (ngx_http_ai_tr_out(st, "{", 1) != NGX_OK) {
        return NGX_ERROR;
    }

    if (start || u->found) {
        n = ngx_http_ai_tr_fast_int(num, (int64_t) (input > 0 ? input : 0));

        if (ngx_http_ai_tr_out(st, "\"input_tokens\":",
                               sizeof("\"input_tokens\":") - 1)
            != NGX_OK
            || ngx_http_ai_tr_out(st, num, n) != NGX_OK
            || ngx_http_ai_tr_out(st, ",", 1) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    n = ngx_http_ai_tr_fast_int(num, (int64_t) (start ? 0
                                                : u->completion_tokens));

    if (ngx_http_ai_tr_out(st, "\"output_tokens\":",
                           sizeof("\"output_tokens\":") - 1)
        != NGX_OK
        || ngx_http_ai_tr_out(st, num, n) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (start || u->found) {
        n = ngx_http_ai_tr_fast_int(num, (int64_t) u->cache_write_tokens);

        if (ngx_http_ai_tr_out(st, ",\"cache_creation_input_tokens\":",
                               sizeof(",\"cache_creation_input_tokens\":")
                               - 1)
            != NGX_OK
            || ngx_http_ai_tr_out(st, num, n) != NGX_OK)
        {
            return NGX_ERROR;
        }

        n = ngx_http_ai_tr_fast_int(num, (int64_t) u->cached_tokens);

        if (ngx_http_ai_tr_out(st, ",\"cache_read_input_tokens\":",
                               sizeof(",\"cache_read_input_tokens\":") - 1)
            != NGX_OK
            || ngx_http_ai_tr_out(st, num, n) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return ngx_http_ai_tr_out(st, "}", 1);
}


static ngx_int_t
ngx_http_ai_anthropic_block_start(ngx_http_ai_stream_t *st, ngx_uint_t type,
    cJSON *tool_call)
{
    char        *id;
    cJSON       *json, *block, *fn;
    ngx_int_t    rc;
    const char  *s;

    if (ngx_http_ai_anthropic_block_stop(st) != NGX_OK) {
        return NGX_ERROR;
    }

    st->block = st->nblocks++;
    st->block_type = type;

    json = cJSON_CreateObject();
    if (json == NULL) {
        return NGX_ERROR;
    }

    rc = NGX_ERROR;

    if (ngx_http_ai_tr_add_string(json, "type", "content_block_start") == NULL
        || ngx_http_ai_tr_add_int(json, "index", st->block) == NULL
        || (block = cJSON_AddObjectToObject(json, "content_block")) == NULL)
    {
        goto done;
    }

    if (type == NGX_HTTP_AI_BLOCK_TEXT) {
        if (ngx_http_ai_tr_add_string(block, "type", "text") == NULL
            || ngx_http_ai_tr_add_string(block, "text", "") == NULL)
        {
            goto done;
        }

    } else if (type == NGX_HTTP_AI_BLOCK_THINKING && tool_call) {
        /* a redacted block, whole */

        s = ngx_http_ai_tr_string(tool_call, "data");

        if (ngx_http_ai_tr_add_string(block, "type", "redacted_thinking")
            == NULL
            || ngx_http_ai_tr_add_string(block, "data", s ? s : "") == NULL)
        {
            goto done;
        }

    } else if (type == NGX_HTTP_AI_BLOCK_THINKING) {
        if (ngx_http_ai_tr_add_string(block, "type", "thinking") == NULL
            || ngx_http_ai_tr_add_string(block, "thinking", "") == NULL
            || ngx_http_ai_tr_add_string(block, "signature", "") == NULL)
        {
            goto done;
        }

    } else {
        st->tool_calls = 1;

        fn = cJSON_GetObjectItemCaseSensitive(tool_call, "function");
        s = ngx_http_ai_tr_string(tool_call, "id");
        id = s ? (char *) s : ngx_http_ai_tr_gen_id(st->pool, "toolu_");

        if (id == NULL
            || ngx_http_ai_tr_add_string(block, "type", "tool_use") == NULL
            || ngx_http_ai_tr_add_string(block, "id", id) == NULL
            || ngx_http_ai_tr_add_string(block, "name",
                                         ngx_http_ai_tr_string(fn, "name"))
               == NULL
            || cJSON_AddObjectToObject(block, "input") == NULL)
        {
            goto done;
        }
    }

    rc = ngx_http_ai_tr_out_event(st, "content_block_start", json);

done:

    cJSON_Delete(json);

    return rc;
}


static ngx_int_t
ngx_http_ai_anthropic_block_delta(ngx_http_ai_stream_t *st, ngx_int_t index,
    const char *type, const char *name, const char *value)
{
    cJSON      *json, *delta;
    ngx_int_t   rc;

    json = cJSON_CreateObject();
    if (json == NULL) {
        return NGX_ERROR;
    }

    rc = NGX_ERROR;

    /* printed at once: the value (the pivot's) is referenced */

    if (ngx_http_ai_tr_add_ref(json, "type", "content_block_delta") == NULL
        || ngx_http_ai_tr_add_int(json, "index", index) == NULL
        || (delta = ngx_http_ai_tr_add_child(json, "delta", 0)) == NULL
        || ngx_http_ai_tr_add_ref(delta, "type", type) == NULL
        || ngx_http_ai_tr_add_ref(delta, name, value) == NULL)
    {
        goto done;
    }

    rc = ngx_http_ai_tr_out_event(st, "content_block_delta", json);

done:

    cJSON_Delete(json);

    return rc;
}


static ngx_int_t
ngx_http_ai_anthropic_block_stop(ngx_http_ai_stream_t *st)
{
    cJSON      *json;
    ngx_int_t   rc;

    if (st->block < 0) {
        return NGX_OK;
    }

    json = cJSON_CreateObject();
    if (json == NULL) {
        return NGX_ERROR;
    }

    rc = NGX_ERROR;

    if (ngx_http_ai_tr_add_string(json, "type", "content_block_stop") != NULL
        && ngx_http_ai_tr_add_int(json, "index", st->block) != NULL)
    {
        rc = ngx_http_ai_tr_out_event(st, "content_block_stop", json);
    }

    cJSON_Delete(json);

    st->block = -1;
    st->block_type = NGX_HTTP_AI_BLOCK_NONE;

    return rc;
}
