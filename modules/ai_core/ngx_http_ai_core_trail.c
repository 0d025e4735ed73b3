
/*
 * Copyright (C) AI Gateway authors
 *
 * What the record tells of a request beyond its usage: the attempt trail
 * (kept for the module that calls upstreams), and what the core reads of
 * the answer as it watches it: the provider's id of the answer, its
 * finish reason, and a failure's error code and message.
 *
 * The answer's id and finish reason are found by a scan of the bytes the
 * core sees anyway (no JSON tree): a key is a quoted name followed by a
 * colon, which no string value can hold unescaped.  The values are
 * hostile input: only short runs of plain characters are kept.
 */


#include "ngx_http_ai_core_module.h"
#include "ngx_http_ai_core_json.h"


#define NGX_HTTP_AI_ID_MAX          128
#define NGX_HTTP_AI_REASON_MAX      32
#define NGX_HTTP_AI_CODE_MAX        64
#define NGX_HTTP_AI_MESSAGE_MAX     512


static ngx_int_t ngx_http_ai_core_scan(ngx_str_t *data, const char *key,
    size_t klen, size_t max, ngx_uint_t last, ngx_str_t *value);
static ngx_int_t ngx_http_ai_core_keep(ngx_http_request_t *r, ngx_str_t *dst,
    u_char *src, size_t len, size_t max);
static ngx_int_t ngx_http_ai_core_keep_json(ngx_http_request_t *r,
    ngx_str_t *dst, cJSON *item, size_t max);


ngx_http_ai_attempt_t *
ngx_http_ai_add_attempt(ngx_http_request_t *r)
{
    ngx_http_ai_ctx_t       *ctx;
    ngx_http_ai_attempt_t   *a;
    ngx_http_ai_core_ctx_t  *cc;

    ctx = ngx_http_ai_get_ctx(r);

    if (ctx == NULL) {
        return NULL;
    }

    cc = ngx_http_ai_core_ctx(ctx);

    if (cc->attempts == NULL) {
        cc->attempts = ngx_array_create(r->pool, 2,
                                        sizeof(ngx_http_ai_attempt_t));
        if (cc->attempts == NULL) {
            return NULL;
        }
    }

    a = ngx_array_push(cc->attempts);
    if (a == NULL) {
        return NULL;
    }

    ngx_memzero(a, sizeof(ngx_http_ai_attempt_t));

    return a;
}


ngx_array_t *
ngx_http_ai_attempts(ngx_http_request_t *r)
{
    ngx_http_ai_ctx_t  *ctx;

    ctx = ngx_http_ai_get_ctx(r);

    if (ctx == NULL || ngx_http_ai_core_ctx(ctx)->attempts == NULL
        || ngx_http_ai_core_ctx(ctx)->attempts->nelts == 0)
    {
        return NULL;
    }

    return ngx_http_ai_core_ctx(ctx)->attempts;
}


ngx_http_ai_answer_t *
ngx_http_ai_answer(ngx_http_request_t *r)
{
    ngx_http_ai_ctx_t  *ctx;

    ctx = ngx_http_ai_get_ctx(r);

    if (ctx == NULL) {
        return NULL;
    }

    return &ngx_http_ai_core_ctx(ctx)->answer;
}


/*
 * An answer's event (or whole body), in the upstream's format: its id
 * (the first one seen: a stream repeats it, or has it in its first
 * event) and its finish reason (the last one seen that is not null).
 */

void
ngx_http_ai_core_answer_scan(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    ngx_str_t *data)
{
    ngx_str_t              v;
    ngx_http_ai_answer_t  *an;

    an = &ngx_http_ai_core_ctx(ctx)->answer;

    switch (ctx->upstream_format) {

    case NGX_HTTP_AI_FMT_ANTHROPIC:
        if (an->id.len == 0
            && ngx_http_ai_core_scan(data, "\"id\"", 4,
                                     NGX_HTTP_AI_ID_MAX, 0, &v)
               == NGX_OK)
        {
            (void) ngx_http_ai_core_keep(r, &an->id, v.data, v.len,
                                         NGX_HTTP_AI_ID_MAX);
        }

        if (ngx_http_ai_core_scan(data, "\"stop_reason\"", 13,
                                  NGX_HTTP_AI_REASON_MAX, 1, &v)
            == NGX_OK)
        {
            (void) ngx_http_ai_core_keep(r, &an->finish_reason, v.data,
                                         v.len, NGX_HTTP_AI_REASON_MAX);
        }

        return;

    case NGX_HTTP_AI_FMT_GEMINI:
        if (an->id.len == 0
            && ngx_http_ai_core_scan(data, "\"responseId\"", 12,
                                     NGX_HTTP_AI_ID_MAX, 0, &v)
               == NGX_OK)
        {
            (void) ngx_http_ai_core_keep(r, &an->id, v.data, v.len,
                                         NGX_HTTP_AI_ID_MAX);
        }

        if (ngx_http_ai_core_scan(data, "\"finishReason\"", 14,
                                  NGX_HTTP_AI_REASON_MAX, 1, &v)
            == NGX_OK)
        {
            (void) ngx_http_ai_core_keep(r, &an->finish_reason, v.data,
                                         v.len, NGX_HTTP_AI_REASON_MAX);
        }

        return;

    default:
        if (an->id.len == 0
            && ngx_http_ai_core_scan(data, "\"id\"", 4,
                                     NGX_HTTP_AI_ID_MAX, 0, &v)
               == NGX_OK)
        {
            (void) ngx_http_ai_core_keep(r, &an->id, v.data, v.len,
                                         NGX_HTTP_AI_ID_MAX);
        }

        if (ngx_http_ai_core_scan(data, "\"finish_reason\"", 15,
                                  NGX_HTTP_AI_REASON_MAX, 1, &v)
            == NGX_OK)
        {
            (void) ngx_http_ai_core_keep(r, &an->finish_reason, v.data,
                                         v.len, NGX_HTTP_AI_REASON_MAX);
        }
    }
}


/*
 * A provider's error body (a status of 400 or more): its code and
 * message.  OpenAI {"error":{"message","type","code"}}, Anthropic
 * {"type":"error","error":{"type","message"}}, Gemini
 * {"error":{"code":429,"message","status"}}.  A rare path: parsed.
 */

void
ngx_http_ai_core_answer_error(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    ngx_str_t *data)
{
    cJSON                 *json, *err, *code;
    ngx_http_ai_answer_t  *an;

    an = &ngx_http_ai_core_ctx(ctx)->answer;

    if (ctx->error || data->len == 0) {
        return;
    }

    json = cJSON_ParseWithLength((char *) data->data, data->len);
    if (json == NULL) {
        return;
    }

    err = ngx_http_ai_json_item(json, "error");

    if (cJSON_IsObject(err)) {
        code = ngx_http_ai_json_item(err, "code");

        if (!cJSON_IsString(code)) {
            code = ngx_http_ai_json_item(err, "status");
        }

        if (!cJSON_IsString(code)) {
            code = ngx_http_ai_json_item(err, "type");
        }

        (void) ngx_http_ai_core_keep_json(r, &an->error_code, code,
                                          NGX_HTTP_AI_CODE_MAX);
        (void) ngx_http_ai_core_keep_json(r, &an->error_message,
                            ngx_http_ai_json_item(err, "message"),
                            NGX_HTTP_AI_MESSAGE_MAX);

    } else if (cJSON_IsString(err)) {
        (void) ngx_http_ai_core_keep_json(r, &an->error_message, err,
                                          NGX_HTTP_AI_MESSAGE_MAX);
    }

    cJSON_Delete(json);
}


/* the gateway's own error: what the client is told */

void
ngx_http_ai_core_gateway_error(ngx_http_request_t *r, const char *code,
    ngx_str_t *msg)
{
    ngx_http_ai_ctx_t     *ctx;
    ngx_http_ai_answer_t  *an;

    ctx = ngx_http_ai_get_ctx(r);

    if (ctx == NULL || r != r->main) {
        return;
    }

    an = &ngx_http_ai_core_ctx(ctx)->answer;

    ngx_str_null(&an->error_code);

    if (code) {
        (void) ngx_http_ai_core_keep(r, &an->error_code, (u_char *) code,
                                     ngx_strlen(code), NGX_HTTP_AI_CODE_MAX);
    }

    (void) ngx_http_ai_core_keep(r, &an->error_message, msg->data, msg->len,
                                 NGX_HTTP_AI_MESSAGE_MAX);
}


/*
 * The value of the first key, given quoted ("id"), that is a string of
 * at most max characters of [A-Za-z0-9_.:-]; with last set, of the last
 * key only, found from the end, where every provider puts the finish
 * reason (null until the stream's end, so an event costs one search; a
 * string equal to the key's name is passed over).  A key cannot be
 * matched inside a string, whose quotes are escaped.
 */

static ngx_int_t
ngx_http_ai_core_scan(ngx_str_t *data, const char *key, size_t klen,
    size_t max, ngx_uint_t last, ngx_str_t *value)
{
    u_char  *k, *q, *from, *to, *end, *start, c;

    end = data->data + data->len;
    from = data->data;
    to = end;

    for ( ;; ) {
        if (last) {
            k = ngx_http_ai_json_rfind(data->data, to, key, klen);
            if (k == NULL) {
                return NGX_DECLINED;
            }

            /* the next search ends before this occurrence */
            to = k + klen - 1;

        } else {
            k = ngx_http_ai_json_find(from, end, key, klen);
            if (k == NULL) {
                return NGX_DECLINED;
            }

            from = k + 1;
        }

        q = ngx_http_ai_json_space(k + klen, end);

        if (q >= end || *q != ':') {
            /* a string, not a key ("title":"finishReason"): an earlier */
            continue;
        }

        q = ngx_http_ai_json_space(q + 1, end);

        if (q >= end || *q != '"') {
            goto next;
        }

        start = ++q;

        while (q < end && (size_t) (q - start) <= max) {
            c = *q;

            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
                  || (c >= '0' && c <= '9') || c == '_' || c == '-'
                  || c == '.' || c == ':'))
            {
                break;
            }

            q++;
        }

        if (q < end && *q == '"' && q > start && (size_t) (q - start) <= max)
        {
            value->data = start;
            value->len = q - start;
            return NGX_OK;
        }

    next:

        if (last) {
            return NGX_DECLINED;
        }
    }
}


/* a copy into r's pool, cut to max bytes (never within a character) */

static ngx_int_t
ngx_http_ai_core_keep(ngx_http_request_t *r, ngx_str_t *dst, u_char *src,
    size_t len, size_t max)
{
    u_char  *p;

    if (len > max) {
        len = max;

        /* back to the start of a UTF-8 character */
        while (len && (src[len] & 0xc0) == 0x80) {
            len--;
        }
    }

    if (len == 0) {
        return NGX_OK;
    }

    if (dst->len == len && ngx_strncmp(dst->data, src, len) == 0) {
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, src, len);

    dst->data = p;
    dst->len = len;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_core_keep_json(ngx_http_request_t *r, ngx_str_t *dst,
    cJSON *item, size_t max)
{
    if (!cJSON_IsString(item) || item->valuestring == NULL) {
        return NGX_OK;
    }

    return ngx_http_ai_core_keep(r, dst, (u_char *) item->valuestring,
                                 ngx_strlen(item->valuestring), max);
}
