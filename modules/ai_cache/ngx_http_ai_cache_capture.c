
/*
 * Copyright (C) AI Gateway authors
 *
 * The answer of a miss, kept as it passes (a response event handler of
 * the core), in OpenAI's chat format, the format layer's pivot, whatever
 * the target's: a plain answer translated whole; a stream's events (an
 * Anthropic or a Gemini stream translated to OpenAI chunks first) merged
 * into one chat.completion: each choice's content and reasoning, its
 * tool calls by index (id, name, arguments), its finish reason, and the
 * usage.  Any door renders it on a hit, streamed or whole.  What passes
 * the entry's maximum size is given up: the answer is not stored.
 */


#include "ngx_http_ai_cache.h"


static ngx_int_t ngx_http_ai_cache_chunk(ngx_http_request_t *r,
    ngx_http_ai_cache_ctx_t *ctx, cJSON *chunk);
static ngx_int_t ngx_http_ai_cache_append(ngx_http_request_t *r,
    ngx_http_ai_cache_ctx_t *ctx, ngx_http_ai_cache_str_t *to,
    const char *s);
static ngx_http_ai_cache_choice_t *ngx_http_ai_cache_choice(
    ngx_http_request_t *r, ngx_http_ai_cache_ctx_t *ctx, ngx_uint_t index);
static ngx_int_t ngx_http_ai_cache_sse(ngx_http_request_t *r,
    ngx_http_ai_cache_ctx_t *ctx, ngx_str_t *sse);


ngx_int_t
ngx_http_ai_cache_event(ngx_http_request_t *r, ngx_http_ai_ctx_t *ai,
    ngx_http_ai_event_t *ev, ngx_chain_t ***out)
{
    cJSON                    *json;
    ngx_str_t                 err, sse;
    ngx_http_ai_cache_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_cache_module);

    if (ctx == NULL || !ctx->capture || ctx->given_up || ev->last) {
        return NGX_OK;
    }

    ctx->size += ev->data.len;

    if (ctx->size > ctx->max_size) {
        ctx->given_up = 1;
        return NGX_OK;
    }

    if (!ai->is_sse) {
        /* a plain answer, translated whole */

        if (ngx_http_ai_translate_response(r->pool, ai->upstream_format,
                                           NGX_HTTP_AI_FMT_OPENAI,
                                           &ai->req.model, &ev->data,
                                           &ctx->answer, &err)
            != NGX_OK)
        {
            ctx->given_up = 1;
        }

        return NGX_OK;
    }

    if (ai->upstream_format != NGX_HTTP_AI_FMT_OPENAI) {

        if (ctx->stream == NULL) {
            ctx->stream = ngx_http_ai_stream_create(r->pool,
                                                    ai->upstream_format,
                                                    NGX_HTTP_AI_FMT_OPENAI,
                                                    &ai->req.model, 1);
            if (ctx->stream == NULL) {
                return NGX_ERROR;
            }
        }

        if (ngx_http_ai_stream_event(ctx->stream, &ev->name, &ev->data,
                                     NULL, &sse)
            != NGX_OK)
        {
            ctx->given_up = 1;
            return NGX_OK;
        }

        return ngx_http_ai_cache_sse(r, ctx, &sse);
    }

    if (ev->done) {
        return NGX_OK;
    }

    json = ngx_http_ai_event_json(ev);

    if (json == NULL) {
        if (ev->data.len) {
            /* what it said is not known: the merged answer would miss it */
            ctx->given_up = 1;
        }

        return NGX_OK;
    }

    return ngx_http_ai_cache_chunk(r, ctx, json);
}


/* the OpenAI chunks of a translated event: "data: {...}\n\n" each */

static ngx_int_t
ngx_http_ai_cache_sse(ngx_http_request_t *r, ngx_http_ai_cache_ctx_t *ctx,
    ngx_str_t *sse)
{
    u_char     *p, *q, *last;
    cJSON      *json;
    ngx_int_t   rc;

    p = sse->data;
    last = p + sse->len;

    while (p < last) {
        q = ngx_strlchr(p, last, '\n');
        if (q == NULL) {
            q = last;
        }

        if (q - p > 6 && ngx_strncmp(p, "data: ", 6) == 0 && p[6] == '{') {
            json = cJSON_ParseWithLength((char *) p + 6, q - p - 6);

            if (json == NULL) {
                ctx->given_up = 1;
                return NGX_OK;
            }

            rc = ngx_http_ai_cache_chunk(r, ctx, json);
            cJSON_Delete(json);

            if (rc != NGX_OK) {
                return rc;
            }
        }

        p = q + 1;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_cache_chunk(ngx_http_request_t *r, ngx_http_ai_cache_ctx_t *ctx,
    cJSON *chunk)
{
    char                        *s;
    cJSON                       *item, *choices, *c, *delta, *calls, *call,
                                *f, *v;
    ngx_uint_t                   i, index;
    ngx_http_ai_cache_call_t    *tc;
    ngx_http_ai_cache_choice_t  *ch;

    if (ctx->id.len == 0) {
        item = cJSON_GetObjectItemCaseSensitive(chunk, "id");

        if (cJSON_IsString(item)
            && ngx_http_ai_cache_append(r, ctx, &ctx->id, item->valuestring)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        item = cJSON_GetObjectItemCaseSensitive(chunk, "created");
        ctx->created = cJSON_IsNumber(item) ? (time_t) item->valuedouble
                                            : ngx_time();
    }

    item = cJSON_GetObjectItemCaseSensitive(chunk, "usage");

    if (cJSON_IsObject(item)) {
        s = cJSON_PrintUnformatted(item);
        if (s == NULL) {
            return NGX_ERROR;
        }

        ctx->usage.len = 0;

        if (ngx_http_ai_cache_append(r, ctx, &ctx->usage, s) != NGX_OK) {
            cJSON_free(s);
            return NGX_ERROR;
        }

        cJSON_free(s);
    }

    choices = cJSON_GetObjectItemCaseSensitive(chunk, "choices");

    cJSON_ArrayForEach(c, choices) {
        item = cJSON_GetObjectItemCaseSensitive(c, "index");
        index = (cJSON_IsNumber(item) && item->valuedouble >= 0
                 && item->valuedouble < 64)
                ? (ngx_uint_t) item->valuedouble : 0;

        ch = ngx_http_ai_cache_choice(r, ctx, index);
        if (ch == NULL) {
            return NGX_ERROR;
        }

        item = cJSON_GetObjectItemCaseSensitive(c, "finish_reason");

        if (cJSON_IsString(item)) {
            ch->finish.len = 0;

            if (ngx_http_ai_cache_append(r, ctx, &ch->finish,
                                         item->valuestring)
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }

        delta = cJSON_GetObjectItemCaseSensitive(c, "delta");

        v = cJSON_GetObjectItemCaseSensitive(delta, "content");

        if (cJSON_IsString(v)
            && ngx_http_ai_cache_append(r, ctx, &ch->content, v->valuestring)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        v = cJSON_GetObjectItemCaseSensitive(delta, "reasoning_content");

        if (cJSON_IsString(v)
            && ngx_http_ai_cache_append(r, ctx, &ch->reasoning,
                                        v->valuestring)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        calls = cJSON_GetObjectItemCaseSensitive(delta, "tool_calls");

        cJSON_ArrayForEach(call, calls) {
            item = cJSON_GetObjectItemCaseSensitive(call, "index");
            index = (cJSON_IsNumber(item) && item->valuedouble >= 0
                     && item->valuedouble < 128)
                    ? (ngx_uint_t) item->valuedouble : 0;

            tc = ch->calls.elts;

            for (i = 0; i < ch->calls.nelts; i++) {
                if (tc[i].index == index) {
                    break;
                }
            }

            if (i == ch->calls.nelts) {
                tc = ngx_array_push(&ch->calls);
                if (tc == NULL) {
                    return NGX_ERROR;
                }

                ngx_memzero(tc, sizeof(ngx_http_ai_cache_call_t));
                tc->index = index;

            } else {
                tc = &tc[i];
            }

            v = cJSON_GetObjectItemCaseSensitive(call, "id");

            if (cJSON_IsString(v) && tc->id.len == 0
                && ngx_http_ai_cache_append(r, ctx, &tc->id, v->valuestring)
                   != NGX_OK)
            {
                return NGX_ERROR;
            }

            f = cJSON_GetObjectItemCaseSensitive(call, "function");

            v = cJSON_GetObjectItemCaseSensitive(f, "name");

            if (cJSON_IsString(v)
                && ngx_http_ai_cache_append(r, ctx, &tc->name,
                                            v->valuestring)
                   != NGX_OK)
            {
                return NGX_ERROR;
            }

            v = cJSON_GetObjectItemCaseSensitive(f, "arguments");

            if (cJSON_IsString(v)
                && ngx_http_ai_cache_append(r, ctx, &tc->arguments,
                                            v->valuestring)
                   != NGX_OK)
            {
                return NGX_ERROR;
            }
        }
    }

    return NGX_OK;
}


static ngx_http_ai_cache_choice_t *
ngx_http_ai_cache_choice(ngx_http_request_t *r, ngx_http_ai_cache_ctx_t *ctx,
    ngx_uint_t index)
{
    ngx_uint_t                   i;
    ngx_http_ai_cache_choice_t  *ch;

    if (ctx->choices.elts == NULL
        && ngx_array_init(&ctx->choices, r->pool, 1,
                          sizeof(ngx_http_ai_cache_choice_t))
           != NGX_OK)
    {
        return NULL;
    }

    ch = ctx->choices.elts;

    for (i = 0; i < ctx->choices.nelts; i++) {
        if (ch[i].index == index) {
            return &ch[i];
        }
    }

    ch = ngx_array_push(&ctx->choices);
    if (ch == NULL) {
        return NULL;
    }

    ngx_memzero(ch, sizeof(ngx_http_ai_cache_choice_t));
    ch->index = index;

    if (ngx_array_init(&ch->calls, r->pool, 1,
                       sizeof(ngx_http_ai_cache_call_t))
        != NGX_OK)
    {
        return NULL;
    }

    return ch;
}


/* s appended to a growing string of the request's, kept NUL-terminated */

static ngx_int_t
ngx_http_ai_cache_append(ngx_http_request_t *r, ngx_http_ai_cache_ctx_t *ctx,
    ngx_http_ai_cache_str_t *to, const char *s)
{
    u_char  *p;
    size_t   len, cap;

    len = ngx_strlen(s);

    if (len == 0) {
        return NGX_OK;
    }

    if (to->len + len + 1 > to->cap) {
        for (cap = 64; cap < to->len + len + 1; cap *= 2) { /* void */ }

        p = ngx_pnalloc(r->pool, cap);
        if (p == NULL) {
            return NGX_ERROR;
        }

        if (to->len) {
            ngx_memcpy(p, to->data, to->len);
        }

        to->data = p;
        to->cap = cap;
    }

    ngx_memcpy(to->data + to->len, s, len);
    to->len += len;
    to->data[to->len] = '\0';

    return NGX_OK;
}


/* the merged stream as one chat.completion, or NULL */

ngx_int_t
ngx_http_ai_cache_answer(ngx_http_request_t *r, ngx_http_ai_cache_ctx_t *ctx,
    ngx_str_t *answer)
{
    char                        *s;
    cJSON                       *root, *choices, *c, *msg, *calls, *call,
                                *f, *usage;
    ngx_uint_t                   i, j;
    ngx_http_ai_cache_call_t    *tc;
    ngx_http_ai_cache_choice_t  *ch;

    if (ctx->answer.len) {
        *answer = ctx->answer;
        return NGX_OK;
    }

    if (ctx->choices.nelts == 0) {
        return NGX_DECLINED;
    }

#define ngx_http_ai_cache_cstr(pool, s)                                      \
    ((s)->len ? (char *) (s)->data : "")

    root = cJSON_CreateObject();
    if (root == NULL) {
        return NGX_ERROR;
    }

    cJSON_AddStringToObject(root, "id",
                            ctx->id.len ? ngx_http_ai_cache_cstr(r->pool,
                                                                 &ctx->id)
                                        : "chatcmpl-cache");
    cJSON_AddStringToObject(root, "object", "chat.completion");
    cJSON_AddNumberToObject(root, "created", (double) ctx->created);
    cJSON_AddStringToObject(root, "model", "");

    choices = cJSON_AddArrayToObject(root, "choices");
    ch = ctx->choices.elts;

    for (i = 0; choices && i < ctx->choices.nelts; i++) {
        c = cJSON_CreateObject();
        if (c == NULL) {
            break;
        }

        cJSON_AddItemToArray(choices, c);
        cJSON_AddNumberToObject(c, "index", (double) ch[i].index);

        msg = cJSON_AddObjectToObject(c, "message");
        cJSON_AddStringToObject(msg, "role", "assistant");

        if (ch[i].content.len || ch[i].calls.nelts == 0) {
            cJSON_AddStringToObject(msg, "content",
                          ngx_http_ai_cache_cstr(r->pool, &ch[i].content));

        } else {
            cJSON_AddNullToObject(msg, "content");
        }

        if (ch[i].reasoning.len) {
            cJSON_AddStringToObject(msg, "reasoning_content",
                          ngx_http_ai_cache_cstr(r->pool, &ch[i].reasoning));
        }

        if (ch[i].calls.nelts) {
            calls = cJSON_AddArrayToObject(msg, "tool_calls");
            tc = ch[i].calls.elts;

            for (j = 0; calls && j < ch[i].calls.nelts; j++) {
                call = cJSON_CreateObject();
                if (call == NULL) {
                    break;
                }

                cJSON_AddItemToArray(calls, call);
                cJSON_AddStringToObject(call, "id",
                                ngx_http_ai_cache_cstr(r->pool, &tc[j].id));
                cJSON_AddStringToObject(call, "type", "function");

                f = cJSON_AddObjectToObject(call, "function");
                cJSON_AddStringToObject(f, "name",
                              ngx_http_ai_cache_cstr(r->pool, &tc[j].name));
                cJSON_AddStringToObject(f, "arguments",
                         ngx_http_ai_cache_cstr(r->pool, &tc[j].arguments));
            }
        }

        if (ch[i].finish.len) {
            cJSON_AddStringToObject(c, "finish_reason",
                              ngx_http_ai_cache_cstr(r->pool, &ch[i].finish));

        } else {
            cJSON_AddNullToObject(c, "finish_reason");
        }
    }

    if (ctx->usage.len) {
        usage = cJSON_ParseWithLength((char *) ctx->usage.data,
                                      ctx->usage.len);
        if (usage) {
            cJSON_AddItemToObject(root, "usage", usage);
        }
    }

#undef ngx_http_ai_cache_cstr

    s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);

    if (s == NULL) {
        return NGX_ERROR;
    }

    answer->len = ngx_strlen(s);
    answer->data = ngx_pnalloc(r->pool, answer->len);

    if (answer->data == NULL) {
        cJSON_free(s);
        return NGX_ERROR;
    }

    ngx_memcpy(answer->data, s, answer->len);
    cJSON_free(s);

    return NGX_OK;
}
