
/*
 * Copyright (C) AI Gateway authors
 *
 * Token usage from the providers' responses.  Pure: unit tests link it.
 */


#include "ngx_http_ai_core.h"


static cJSON *ngx_http_ai_find_object(ngx_str_t *data, const char *key,
    size_t len);
static void ngx_http_ai_usage_int(cJSON *obj, const char *name,
    ngx_int_t *value);


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


void
ngx_http_ai_usage_object(ngx_uint_t format, cJSON *usage,
    ngx_http_ai_usage_t *u)
{
    cJSON      *details;
    ngx_int_t   input, cache_read, cache_creation, thoughts, candidates;

    if (!cJSON_IsObject(usage)) {
        return;
    }

    switch (format) {

    case NGX_HTTP_AI_FMT_ANTHROPIC:

        /*
         * input_tokens does not count the cached prompt: the prompt is
         * input + cache reads + cache writes
         */

        input = NGX_HTTP_AI_UNSET;
        cache_read = 0;
        cache_creation = 0;

        ngx_http_ai_usage_int(usage, "input_tokens", &input);
        ngx_http_ai_usage_int(usage, "cache_read_input_tokens", &cache_read);
        ngx_http_ai_usage_int(usage, "cache_creation_input_tokens",
                              &cache_creation);
        ngx_http_ai_usage_int(usage, "output_tokens", &u->completion_tokens);

        if (input != NGX_HTTP_AI_UNSET) {
            u->prompt_tokens = input + cache_read + cache_creation;
            u->cached_tokens = cache_read;
        }

        u->total_tokens = u->prompt_tokens + u->completion_tokens;
        break;

    case NGX_HTTP_AI_FMT_GEMINI:

        candidates = 0;
        thoughts = 0;

        ngx_http_ai_usage_int(usage, "promptTokenCount", &u->prompt_tokens);
        ngx_http_ai_usage_int(usage, "candidatesTokenCount", &candidates);
        ngx_http_ai_usage_int(usage, "thoughtsTokenCount", &thoughts);
        ngx_http_ai_usage_int(usage, "cachedContentTokenCount",
                              &u->cached_tokens);
        ngx_http_ai_usage_int(usage, "totalTokenCount", &u->total_tokens);

        u->completion_tokens = candidates + thoughts;
        u->reasoning_tokens = thoughts;

        if (u->total_tokens == 0) {
            u->total_tokens = u->prompt_tokens + u->completion_tokens;
        }

        break;

    default: /* NGX_HTTP_AI_FMT_OPENAI */

        ngx_http_ai_usage_int(usage, "prompt_tokens", &u->prompt_tokens);
        ngx_http_ai_usage_int(usage, "completion_tokens",
                              &u->completion_tokens);
        ngx_http_ai_usage_int(usage, "total_tokens", &u->total_tokens);

        details = cJSON_GetObjectItemCaseSensitive(usage,
                                                   "prompt_tokens_details");
        if (cJSON_IsObject(details)) {
            ngx_http_ai_usage_int(details, "cached_tokens",
                                  &u->cached_tokens);
        }

        details = cJSON_GetObjectItemCaseSensitive(usage,
                                               "completion_tokens_details");
        if (cJSON_IsObject(details)) {
            ngx_http_ai_usage_int(details, "reasoning_tokens",
                                  &u->reasoning_tokens);
        }

        if (u->total_tokens == 0) {
            u->total_tokens = u->prompt_tokens + u->completion_tokens;
        }
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

    for (p = last - len; p >= data->data; p--) {
        if (*p == '"' && ngx_strncmp(p, key, len) == 0) {
            found = p + len;
            break;
        }
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
ngx_http_ai_usage_int(cJSON *obj, const char *name, ngx_int_t *value)
{
    cJSON  *item;

    item = cJSON_GetObjectItemCaseSensitive(obj, name);

    if (cJSON_IsNumber(item) && item->valuedouble >= 0) {
        *value = (ngx_int_t) item->valuedouble;
    }
}
