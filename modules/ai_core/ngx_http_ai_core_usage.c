
/*
 * Copyright (C) AI Gateway authors
 *
 * Token usage from the providers' responses.  Pure: unit tests link it.
 */


#define NGX_HTTP_AI_CORE_INTERNAL  1

#include "ngx_http_ai_core.h"


static cJSON *ngx_http_ai_find_object(ngx_str_t *data, const char *key,
    size_t len);
static void ngx_http_ai_usage_int(cJSON *obj, const char *name,
    ngx_int_t *value, ngx_http_ai_usage_t *u);


ngx_int_t
ngx_http_ai_usage_parse(ngx_uint_t format, ngx_str_t *data,
    ngx_http_ai_usage_t *u)
{
    cJSON  *usage;

    if (format == NGX_HTTP_AI_FMT_GEMINI) {
        usage = ngx_http_ai_find_object(data, "\"usageMetadata\"",
                                        sizeof("\"usageMetadata\"") - 1);
    } else {
        usage = ngx_http_ai_find_object(data, "\"usage\"",
                                        sizeof("\"usage\"") - 1);
    }

    if (usage == NULL) {
        return NGX_DECLINED;
    }

    ngx_http_ai_usage_object(format, usage, u);

    cJSON_Delete(usage);

    return NGX_OK;
}


/*
 * A provider's usage is hostile input: a count is taken only when it is
 * an integer in [0, NGX_HTTP_AI_TOKENS_MAX]; anything else (a string,
 * a negative, a fraction, 1e300) is ignored and u->invalid set.  The
 * parts are then made consistent: cached <= prompt, reasoning <=
 * completion, total = prompt + completion.
 */

void
ngx_http_ai_usage_object(ngx_uint_t format, cJSON *usage,
    ngx_http_ai_usage_t *u)
{
    cJSON      *details;
    ngx_int_t   input, cache_read, cache_creation, thoughts, candidates,
                tool_prompt, total;

    if (!cJSON_IsObject(usage)) {
        return;
    }

    total = NGX_HTTP_AI_UNSET;

    switch (format) {

    case NGX_HTTP_AI_FMT_ANTHROPIC:

        /*
         * input_tokens does not count the cached prompt: the prompt is
         * input + cache reads + cache writes
         */

        input = NGX_HTTP_AI_UNSET;
        cache_read = 0;
        cache_creation = 0;

        ngx_http_ai_usage_int(usage, "input_tokens", &input, u);
        ngx_http_ai_usage_int(usage, "cache_read_input_tokens", &cache_read,
                              u);
        ngx_http_ai_usage_int(usage, "cache_creation_input_tokens",
                              &cache_creation, u);
        ngx_http_ai_usage_int(usage, "output_tokens", &u->completion_tokens,
                              u);

        if (input != NGX_HTTP_AI_UNSET) {
            u->prompt_tokens = input + cache_read + cache_creation;
            u->cached_tokens = cache_read;
        }

        break;

    case NGX_HTTP_AI_FMT_GEMINI:

        candidates = 0;
        thoughts = 0;
        tool_prompt = 0;

        ngx_http_ai_usage_int(usage, "promptTokenCount", &u->prompt_tokens,
                              u);
        ngx_http_ai_usage_int(usage, "toolUsePromptTokenCount", &tool_prompt,
                              u);
        ngx_http_ai_usage_int(usage, "candidatesTokenCount", &candidates, u);
        ngx_http_ai_usage_int(usage, "thoughtsTokenCount", &thoughts, u);
        ngx_http_ai_usage_int(usage, "cachedContentTokenCount",
                              &u->cached_tokens, u);
        ngx_http_ai_usage_int(usage, "totalTokenCount", &total, u);

        u->prompt_tokens += tool_prompt;
        u->completion_tokens = candidates + thoughts;
        u->reasoning_tokens = thoughts;
        break;

    default: /* NGX_HTTP_AI_FMT_OPENAI */

        ngx_http_ai_usage_int(usage, "prompt_tokens", &u->prompt_tokens, u);
        ngx_http_ai_usage_int(usage, "completion_tokens",
                              &u->completion_tokens, u);
        ngx_http_ai_usage_int(usage, "total_tokens", &total, u);

        details = cJSON_GetObjectItemCaseSensitive(usage,
                                                   "prompt_tokens_details");
        if (cJSON_IsObject(details)) {
            ngx_http_ai_usage_int(details, "cached_tokens",
                                  &u->cached_tokens, u);
        }

        details = cJSON_GetObjectItemCaseSensitive(usage,
                                               "completion_tokens_details");
        if (cJSON_IsObject(details)) {
            ngx_http_ai_usage_int(details, "reasoning_tokens",
                                  &u->reasoning_tokens, u);
        }
    }

    /* each part is at most NGX_HTTP_AI_TOKENS_MAX: no sum overflows */

    if (u->prompt_tokens > NGX_HTTP_AI_TOKENS_MAX) {
        u->prompt_tokens = NGX_HTTP_AI_TOKENS_MAX;
        u->invalid = 1;
    }

    if (u->completion_tokens > NGX_HTTP_AI_TOKENS_MAX) {
        u->completion_tokens = NGX_HTTP_AI_TOKENS_MAX;
        u->invalid = 1;
    }

    if (u->cached_tokens > u->prompt_tokens) {
        u->cached_tokens = u->prompt_tokens;
        u->invalid = 1;
    }

    if (u->reasoning_tokens > u->completion_tokens) {
        u->reasoning_tokens = u->completion_tokens;
        u->invalid = 1;
    }

    u->total_tokens = u->prompt_tokens + u->completion_tokens;

    if (total != NGX_HTTP_AI_UNSET && total != u->total_tokens
        && total != 0)
    {
        /* a total that is not the sum of its parts is not believed */
        u->invalid = 1;
    }

    u->found = 1;
}


ngx_uint_t
ngx_http_ai_event_is_final(ngx_uint_t format, ngx_str_t *name,
    ngx_str_t *data)
{
    switch (format) {

    case NGX_HTTP_AI_FMT_ANTHROPIC:
        return (name->len == sizeof("message_stop") - 1
                && ngx_strncmp(name->data, "message_stop", name->len) == 0)
               || (name->len == 0
                   && ngx_strnstr(data->data, "\"message_stop\"", data->len)
                      != NULL);

    case NGX_HTTP_AI_FMT_GEMINI:
        return ngx_strnstr(data->data, "\"finishReason\"", data->len) != NULL;

    default: /* NGX_HTTP_AI_FMT_OPENAI */
        return data->len == sizeof("[DONE]") - 1
               && ngx_strncmp(data->data, "[DONE]", data->len) == 0;
    }
}


/*
 * The object after the last occurrence of "key": usage comes after the
 * generated content in every provider's responses, so text that the model
 * wrote cannot pose as the usage that follows it.
 */

static cJSON *
ngx_http_ai_find_object(ngx_str_t *data, const char *key, size_t len)
{
    u_char      *p, *last, *found;
    cJSON       *obj;
    const char  *end;

    if (data->len < len + 2) {
        return NULL;
    }

    last = data->data + data->len;
    found = NULL;

    /* the last occurrence: memmem forward (vectorized), to the end */

    for (p = data->data;
         p < last
         && (p = memmem(p, last - p, key, len)) != NULL;
         p += len)
    {
        found = p + len;
    }

    if (found == NULL) {
        return NULL;
    }

    for (p = found; p < last && (*p == ' ' || *p == '\t' || *p == CR
                                 || *p == LF); p++) { /* void */ }

    if (p == last || *p++ != ':') {
        return NULL;
    }

    for ( /* void */ ; p < last && (*p == ' ' || *p == '\t' || *p == CR
                                    || *p == LF); p++) { /* void */ }

    if (p == last || *p != '{') {
        return NULL;
    }

    obj = cJSON_ParseWithLengthOpts((const char *) p, last - p, &end, 0);

    if (obj && !cJSON_IsObject(obj)) {
        cJSON_Delete(obj);
        return NULL;
    }

    return obj;
}


static void
ngx_http_ai_usage_int(cJSON *obj, const char *name, ngx_int_t *value,
    ngx_http_ai_usage_t *u)
{
    cJSON  *item;

    item = cJSON_GetObjectItemCaseSensitive(obj, name);

    if (item == NULL || cJSON_IsNull(item)) {
        return;
    }

    /* the comparisons are false for NaN, so it is refused too */

    if (cJSON_IsNumber(item)
        && item->valuedouble >= 0
        && item->valuedouble <= (double) NGX_HTTP_AI_TOKENS_MAX
        && item->valuedouble == (double) (ngx_int_t) item->valuedouble)
    {
        *value = (ngx_int_t) item->valuedouble;
        return;
    }

    u->invalid = 1;
}
