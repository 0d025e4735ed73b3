
/*
 * Copyright (C) AI Gateway authors
 *
 * The prompt's token estimate a reservation is made of, from the core's
 * normalized request, without a tokenizer: BPE tokenizers of the current
 * models (o200k, Claude's, Gemini's) take about 4 bytes of English text
 * a token and 1 to 1.5 tokens a character of CJK (3 bytes in UTF-8), so
 * ASCII bytes count 1/4 and other bytes 1/2, rounded up; each message
 * adds 4 (its role and framing, as OpenAI documents), the request 3; a
 * tool definition counts its JSON's bytes / 4 and 8 more; an image counts
 * 1600 (Anthropic's rule, (width * height) / 750, for its largest image,
 * above OpenAI's 765 for a high-detail 1024x1024).  The error against the
 * providers' counts is measured by bench/estimator (docs/token-limit.md).
 * The estimate errs on the high side for ordinary text; the settlement
 * corrects it either way.
 */


#include "ngx_http_ai_token_limit.h"


#define NGX_HTTP_AI_TL_IMAGE            1600
#define NGX_HTTP_AI_TL_MESSAGE          4
#define NGX_HTTP_AI_TL_PRIMING          3
#define NGX_HTTP_AI_TL_TOOL             8


static int64_t ngx_http_ai_token_limit_text(u_char *p, size_t len);
static int64_t ngx_http_ai_token_limit_parts(cJSON *message);
static int64_t ngx_http_ai_token_limit_json(cJSON *json);


int64_t
ngx_http_ai_token_limit_estimate(ngx_http_ai_request_t *req)
{
    int64_t                 n;
    cJSON                  *tools, *tool;
    ngx_uint_t              i;
    ngx_http_ai_message_t  *m;

    if (req->endpoint == NGX_HTTP_AI_EP_EMBEDDINGS
        || req->messages.nelts == 0)
    {
        /* the text only: 3 bytes a token, whatever its script */
        return (int64_t) (req->text_len + 2) / 3 + 1;
    }

    n = NGX_HTTP_AI_TL_PRIMING;

    if (req->system.len) {
        n += NGX_HTTP_AI_TL_MESSAGE
             + ngx_http_ai_token_limit_text(req->system.data,
                                            req->system.len);
    }

    m = req->messages.elts;

    for (i = 0; i < req->messages.nelts; i++) {
        n += NGX_HTTP_AI_TL_MESSAGE
             + ngx_http_ai_token_limit_text(m[i].text.data, m[i].text.len);

        if (m[i].images || m[i].tool_calls) {
            n += ngx_http_ai_token_limit_parts(m[i].json);
        }
    }

    if (req->tools && req->json) {
        tools = cJSON_GetObjectItemCaseSensitive(req->json, "tools");

        cJSON_ArrayForEach(tool, tools) {
            n += NGX_HTTP_AI_TL_TOOL + ngx_http_ai_token_limit_json(tool);
        }
    }

    return n;
}


static int64_t
ngx_http_ai_token_limit_text(u_char *p, size_t len)
{
    u_char  *last;
    size_t   ascii;

    ascii = 0;

    for (last = p + len; p < last; p++) {
        ascii += (*p < 0x80);
    }

    return (int64_t) ((ascii + 3) / 4 + (len - ascii + 1) / 2);
}


/*
 * What a message holds besides its text: images, and tool calls (their
 * arguments; OpenAI "tool_calls", Anthropic "tool_use" blocks, Gemini
 * "functionCall" parts).
 */

static int64_t
ngx_http_ai_token_limit_parts(cJSON *message)
{
    int64_t   n;
    cJSON    *parts, *part, *type, *calls, *call;

    n = 0;

    if (message == NULL) {
        return 0;
    }

    calls = cJSON_GetObjectItemCaseSensitive(message, "tool_calls");

    cJSON_ArrayForEach(call, calls) {
        n += NGX_HTTP_AI_TL_TOOL + ngx_http_ai_token_limit_json(call);
    }

    parts = cJSON_GetObjectItemCaseSensitive(message, "content");

    if (!cJSON_IsArray(parts)) {
        parts = cJSON_GetObjectItemCaseSensitive(message, "parts");
    }

    cJSON_ArrayForEach(part, parts) {
        type = cJSON_GetObjectItemCaseSensitive(part, "type");

        if (cJSON_IsString(type)) {
            if (ngx_strcmp(type->valuestring, "image_url") == 0
                || ngx_strcmp(type->valuestring, "image") == 0)
            {
                n += NGX_HTTP_AI_TL_IMAGE;

            } else if (ngx_strcmp(type->valuestring, "tool_use") == 0) {
                n += NGX_HTTP_AI_TL_TOOL
                     + ngx_http_ai_token_limit_json(
                           cJSON_GetObjectItemCaseSensitive(part, "input"));
            }

            continue;
        }

        if (cJSON_GetObjectItemCaseSensitive(part, "inlineData")
            || cJSON_GetObjectItemCaseSensitive(part, "inline_data")
            || cJSON_GetObjectItemCaseSensitive(part, "fileData"))
        {
            n += NGX_HTTP_AI_TL_IMAGE;

        } else if (cJSON_GetObjectItemCaseSensitive(part, "functionCall")) {
            n += NGX_HTTP_AI_TL_TOOL + ngx_http_ai_token_limit_json(part);
        }
    }

    return n;
}


/* a JSON value's compact size / 4: tool schemas and arguments */

static int64_t
ngx_http_ai_token_limit_json(cJSON *json)
{
    char     *s;
    int64_t   n;

    if (json == NULL) {
        return 0;
    }

    s = cJSON_PrintUnformatted(json);
    if (s == NULL) {
        return 0;
    }

    n = ngx_http_ai_token_limit_text((u_char *) s, ngx_strlen(s));

    cJSON_free(s);

    return n;
}
