
/*
 * Copyright (C) AI Gateway authors
 *
 * The stream translators' fast path: most events of a translated stream
 * are one text delta, and for those the translator writes the door's
 * event from a template around the text, found by a scanner that neither
 * allocates nor copies (no cJSON tree to build, print and free).  It
 * applies only when the output is the one the general path would write,
 * byte for byte: the text has no escape (then cJSON would print it as it
 * came), the stream's id and model need none, the event has nothing else
 * the general path would act on, and no delta filter is attached.  Any
 * other event goes the general way.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_ai_core_format.h"


#define NGX_HTTP_AI_JSON_DEPTH      64


typedef struct {
    u_char                     *pos;
    u_char                     *end;
    ngx_uint_t                  more;     /* a member is due: after , */
} ngx_http_ai_json_iter_t;


static ngx_inline u_char *ngx_http_ai_json_space(u_char *p, u_char *end);
static u_char *ngx_http_ai_json_skip(u_char *p, u_char *end,
    ngx_uint_t depth, ngx_uint_t strict);
static u_char *ngx_http_ai_json_escape(u_char *p, u_char *end);
static u_char *ngx_http_ai_json_number(u_char *p, u_char *end);
static ngx_int_t ngx_http_ai_json_object(ngx_http_ai_json_iter_t *it,
    u_char *p, u_char *end);
static ngx_int_t ngx_http_ai_json_next(ngx_http_ai_json_iter_t *it,
    ngx_str_t *key, ngx_str_t *value);
static ngx_uint_t ngx_http_ai_json_is(ngx_str_t *s, const char *lit,
    size_t len);
static ngx_int_t ngx_http_ai_json_text(ngx_str_t *value, ngx_str_t *text);
static ngx_uint_t ngx_http_ai_tr_fast_names(ngx_http_ai_stream_t *st);


#define ngx_http_ai_json_key(s, lit)                                         \
    ngx_http_ai_json_is(s, lit, sizeof(lit) - 1)


/*
 * OpenAI chunk -> Anthropic content_block_delta, while a text block is
 * open: {"choices":[{"delta":{"content":"TEXT"}, "finish_reason":null}]}
 * with no error, no usage, nothing else but nulls in the delta.
 * NGX_DECLINED: not for the fast path.
 */

ngx_int_t
ngx_http_ai_tr_fast_openai(ngx_http_ai_stream_t *st, ngx_str_t *data)
{
    int                       n;
    u_char                   *p, *end;
    ngx_int_t                 rc;
    ngx_str_t                 key, value, choices, delta, text, v;
    ngx_http_ai_json_iter_t   top, it;

    if (st->filter || st->aborted || st->done || st->error || !st->started
        || st->block_type != NGX_HTTP_AI_BLOCK_TEXT || st->block < 0)
    {
        return NGX_DECLINED;
    }

    end = data->data + data->len;

    p = ngx_http_ai_json_space(data->data, end);

    if (ngx_http_ai_json_object(&top, p, end) != NGX_OK) {
        return NGX_DECLINED;
    }

    ngx_str_null(&choices);

    while ((rc = ngx_http_ai_json_next(&top, &key, &value)) == NGX_OK) {

        if (ngx_http_ai_json_key(&key, "choices")) {
            choices = value;

        } else if (ngx_http_ai_json_key(&key, "error")) {
            return NGX_DECLINED;

        } else if (ngx_http_ai_json_key(&key, "usage")
                   && !ngx_http_ai_json_key(&value, "null"))
        {
            return NGX_DECLINED;
        }
    }

    if (rc != NGX_DONE
        || ngx_http_ai_json_space(top.pos + 1, end) != end)
    {
        return NGX_DECLINED;
    }

    /* exactly one choice */

    if (choices.len < 2 || choices.data[0] != '[') {
        return NGX_DECLINED;
    }

    end = choices.data + choices.len;
    p = ngx_http_ai_json_space(choices.data + 1, end);

    if (ngx_http_ai_json_object(&it, p, end) != NGX_OK) {
        return NGX_DECLINED;
    }

    ngx_str_null(&delta);

    while ((rc = ngx_http_ai_json_next(&it, &key, &value)) == NGX_OK) {

        if (ngx_http_ai_json_key(&key, "delta")) {
            delta = value;

        } else if (ngx_http_ai_json_key(&key, "finish_reason")
                   && !ngx_http_ai_json_key(&value, "null"))
        {
            return NGX_DECLINED;
        }
    }

    /* the choice was the only one */

    p = (rc == NGX_DONE) ? ngx_http_ai_json_space(it.pos + 1, end) : NULL;

    if (p == NULL || p >= end || *p != ']'
        || delta.len == 0
        || ngx_http_ai_json_object(&it, delta.data, delta.data + delta.len)
           != NGX_OK)
    {
        return NGX_DECLINED;
    }

    ngx_str_null(&text);

    while ((rc = ngx_http_ai_json_next(&it, &key, &v)) == NGX_OK) {

        if (ngx_http_ai_json_key(&key, "content")) {
            if (ngx_http_ai_json_text(&v, &text) != NGX_OK) {
                return NGX_DECLINED;
            }

        } else if (!ngx_http_ai_json_key(&v, "null")) {
            /* a role, tool calls, a refusal: the general path */
            return NGX_DECLINED;
        }
    }

    if (rc != NGX_DONE || text.len == 0) {
        return NGX_DECLINED;
    }

    /* what ngx_http_ai_anthropic_block_delta() prints, from a template */

    n = snprintf(st->fast, sizeof(st->fast), "%lld", (long long) st->block);

    if (ngx_http_ai_tr_out(st, "event: content_block_delta\n"
                           "data: {\"type\":\"content_block_delta\","
                           "\"index\":",
                           sizeof("event: content_block_delta\n"
                                  "data: {\"type\":\"content_block_delta\","
                                  "\"index\":") - 1)
        != NGX_OK
        || ngx_http_ai_tr_out(st, st->fast, n) != NGX_OK
        || ngx_http_ai_tr_out(st, ",\"delta\":{\"type\":\"text_delta\","
                              "\"text\":\"",
                              sizeof(",\"delta\":{\"type\":\"text_delta\","
                                     "\"text\":\"") - 1)
           != NGX_OK
        || ngx_http_ai_tr_out(st, (char *) text.data, text.len) != NGX_OK
        || ngx_http_ai_tr_out(st, "\"}}\n\n", sizeof("\"}}\n\n") - 1)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * Anthropic content_block_delta with a text_delta -> an OpenAI chunk,
 * once the role chunk went: {"type":"content_block_delta","index":N,
 * "delta":{"type":"text_delta","text":"TEXT"}}.  NGX_DECLINED: not for
 * the fast path.
 */

ngx_int_t
ngx_http_ai_tr_fast_anthropic(ngx_http_ai_stream_t *st, ngx_str_t *name,
    ngx_str_t *data)
{
    int                       n;
    u_char                   *p, *end;
    ngx_int_t                 rc;
    ngx_str_t                 key, value, delta, text, type;
    ngx_http_ai_json_iter_t   it;

    if (st->filter || st->aborted || st->done || st->error || !st->role
        || st->door != NGX_HTTP_AI_FMT_OPENAI
        || !ngx_http_ai_json_key(name, "content_block_delta")
        || !ngx_http_ai_tr_fast_names(st))
    {
        return NGX_DECLINED;
    }

    end = data->data + data->len;

    p = ngx_http_ai_json_space(data->data, end);

    if (ngx_http_ai_json_object(&it, p, end) != NGX_OK) {
        return NGX_DECLINED;
    }

    ngx_str_null(&delta);
    ngx_str_null(&type);

    while ((rc = ngx_http_ai_json_next(&it, &key, &value)) == NGX_OK) {

        if (ngx_http_ai_json_key(&key, "delta")) {
            delta = value;

        } else if (ngx_http_ai_json_key(&key, "type")) {
            type = value;
        }
    }

    if (rc != NGX_DONE
        || ngx_http_ai_json_space(it.pos + 1, end) != end
        || !ngx_http_ai_json_key(&type, "\"content_block_delta\"")
        || delta.len == 0
        || ngx_http_ai_json_object(&it, delta.data, delta.data + delta.len)
           != NGX_OK)
    {
        return NGX_DECLINED;
    }

    ngx_str_null(&text);
    ngx_str_null(&type);

    while ((rc = ngx_http_ai_json_next(&it, &key, &value)) == NGX_OK) {

        if (ngx_http_ai_json_key(&key, "type")) {
            type = value;

        } else if (ngx_http_ai_json_key(&key, "text")) {
            if (ngx_http_ai_json_text(&value, &text) != NGX_OK) {
                return NGX_DECLINED;
            }
        }
    }

    if (rc != NGX_DONE || !ngx_http_ai_json_key(&type, "\"text_delta\"")
        || text.len == 0)
    {
        return NGX_DECLINED;
    }

    /* what ngx_http_ai_tr_chunk() and the pivot's printing write */

    n = snprintf(st->fast, sizeof(st->fast), "%lld",
                 (long long) st->created);

    if (ngx_http_ai_tr_out(st, "data: {\"id\":\"",
                           sizeof("data: {\"id\":\"") - 1) != NGX_OK
        || ngx_http_ai_tr_out(st, st->id, ngx_strlen(st->id)) != NGX_OK
        || ngx_http_ai_tr_out(st, "\",\"object\":\"chat.completion.chunk\","
                              "\"created\":",
                              sizeof("\",\"object\":\"chat.completion.chunk\","
                                     "\"created\":") - 1)
           != NGX_OK
        || ngx_http_ai_tr_out(st, st->fast, n) != NGX_OK
        || ngx_http_ai_tr_out(st, ",\"model\":\"", sizeof(",\"model\":\"") - 1)
           != NGX_OK
        || ngx_http_ai_tr_out(st, (char *) st->model.data, st->model.len)
           != NGX_OK
        || ngx_http_ai_tr_out(st, "\",\"choices\":[{\"index\":0,\"delta\":"
                              "{\"content\":\"",
                              sizeof("\",\"choices\":[{\"index\":0,\"delta\":"
                                     "{\"content\":\"") - 1)
           != NGX_OK
        || ngx_http_ai_tr_out(st, (char *) text.data, text.len) != NGX_OK
        || ngx_http_ai_tr_out(st, "\"},\"logprobs\":null,"
                              "\"finish_reason\":null}]}\n\n",
                              sizeof("\"},\"logprobs\":null,"
                                     "\"finish_reason\":null}]}\n\n") - 1)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* a JSON object, checked without a tree (a provider's answer) */

ngx_uint_t
ngx_http_ai_json_is_object(ngx_str_t *s)
{
    u_char  *p, *end;

    end = s->data + s->len;
    p = ngx_http_ai_json_space(s->data, end);

    if (p >= end || *p != '{') {
        return 0;
    }

    p = ngx_http_ai_json_skip(p, end, NGX_HTTP_AI_JSON_DEPTH, 1);

    return p != NULL && ngx_http_ai_json_space(p, end) == end;
}


/* the stream's id and model print as they are (checked once) */

static ngx_uint_t
ngx_http_ai_tr_fast_names(ngx_http_ai_stream_t *st)
{
    u_char  *p, *last;

    if (st->fast_names) {
        return st->fast_names == 1;
    }

    st->fast_names = 2;

    if (st->id == NULL) {
        return 0;
    }

    for (p = (u_char *) st->id; *p; p++) {
        if (*p == '"' || *p == '\\' || *p < 0x20) {
            return 0;
        }
    }

    last = st->model.data + st->model.len;

    for (p = st->model.data; p < last; p++) {
        if (*p == '"' || *p == '\\' || *p < 0x20) {
            return 0;
        }
    }

    st->fast_names = 1;

    return 1;
}


/*
 * a string value with no escape and no control character, its bytes
 * without the quotes: what cJSON would print as it is
 */

static ngx_int_t
ngx_http_ai_json_text(ngx_str_t *value, ngx_str_t *text)
{
    u_char  *p, *last;

    if (value->len < 2 || value->data[0] != '"') {
        return NGX_DECLINED;
    }

    last = value->data + value->len - 1;

    for (p = value->data + 1; p < last; p++) {
        if (*p == '\\' || *p < 0x20) {
            return NGX_DECLINED;
        }
    }

    text->data = value->data + 1;
    text->len = value->len - 2;

    return NGX_OK;
}


static ngx_uint_t
ngx_http_ai_json_is(ngx_str_t *s, const char *lit, size_t len)
{
    return s->len == len && ngx_memcmp(s->data, lit, len) == 0;
}


static ngx_inline u_char *
ngx_http_ai_json_space(u_char *p, u_char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == CR || *p == LF)) {
        p++;
    }

    return p;
}


/*
 * The end of the JSON value at p, NULL if it is not one (or nests deeper
 * than depth).  Strict: strings are checked for their escapes and control
 * characters, numbers for their grammar; else a string is only found its
 * end, a number its characters.
 */

static u_char *
ngx_http_ai_json_skip(u_char *p, u_char *end, ngx_uint_t depth,
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
                if (*p == '\\') {
                    p = ngx_http_ai_json_escape(p, end);
                    if (p == NULL) {
                        return NULL;
                    }

                    continue;
                }

                if (*p == '"') {
                    return p + 1;
                }

                if (*p < 0x20) {
                    return NULL;
                }
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

                p = ngx_http_ai_json_skip(p, end, 0, strict);
                if (p == NULL) {
                    return NULL;
                }

                p = ngx_http_ai_json_space(p, end);

                if (p >= end || *p != ':') {
                    return NULL;
                }

                p = ngx_http_ai_json_space(p + 1, end);
            }

            p = ngx_http_ai_json_skip(p, end, depth - 1, strict);
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
            if (*p == '-' || (*p >= '0' && *p <= '9')) {
                return ngx_http_ai_json_number(p, end);
            }

        } else {
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
        }

        if (end - p >= 4
            && ((p[0] == 'n' && p[1] == 'u' && p[2] == 'l' && p[3] == 'l')
                || (p[0] == 't' && p[1] == 'r' && p[2] == 'u'
                    && p[3] == 'e')))
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
}


/* the escape at p (a backslash): its last byte, NULL if it is not one */

static u_char *
ngx_http_ai_json_escape(u_char *p, u_char *end)
{
    ngx_uint_t  i;

    if (++p >= end) {
        return NULL;
    }

    switch (*p) {

    case '"':
    case '\\':
    case '/':
    case 'b':
    case 'f':
    case 'n':
    case 'r':
    case 't':
        return p;

    case 'u':
        for (i = 0; i < 4; i++) {
            if (++p >= end
                || !((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')
                     || (*p >= 'A' && *p <= 'F')))
            {
                return NULL;
            }
        }

        return p;

    default:
        return NULL;
    }
}


/* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?: its end, or NULL */

static u_char *
ngx_http_ai_json_number(u_char *p, u_char *end)
{
    u_char  *start;

    if (p < end && *p == '-') {
        p++;
    }

    if (p < end && *p == '0') {
        p++;

    } else {
        for (start = p; p < end && *p >= '0' && *p <= '9'; p++) {
            /* void */
        }

        if (p == start) {
            return NULL;
        }
    }

    if (p < end && *p == '.') {
        for (start = ++p; p < end && *p >= '0' && *p <= '9'; p++) {
            /* void */
        }

        if (p == start) {
            return NULL;
        }
    }

    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;

        if (p < end && (*p == '+' || *p == '-')) {
            p++;
        }

        for (start = p; p < end && *p >= '0' && *p <= '9'; p++) {
            /* void */
        }

        if (p == start) {
            return NULL;
        }
    }

    return p;
}


/* the members of the object at p, checked as they are read */

static ngx_int_t
ngx_http_ai_json_object(ngx_http_ai_json_iter_t *it, u_char *p, u_char *end)
{
    if (p == NULL || p >= end || *p != '{') {
        return NGX_DECLINED;
    }

    it->pos = ngx_http_ai_json_space(p + 1, end);
    it->end = end;
    it->more = 0;

    return NGX_OK;
}


/*
 * NGX_OK: the next member; NGX_DONE: the object's end (it->pos at its
 * '}'); NGX_ERROR: not valid JSON
 */

static ngx_int_t
ngx_http_ai_json_next(ngx_http_ai_json_iter_t *it, ngx_str_t *key,
    ngx_str_t *value)
{
    u_char  *p, *end;

    p = it->pos;
    end = it->end;

    if (p >= end) {
        return NGX_ERROR;
    }

    if (*p == '}' && !it->more) {
        return NGX_DONE;
    }

    if (*p != '"') {
        return NGX_ERROR;
    }

    key->data = p + 1;
    p = ngx_http_ai_json_skip(p, end, 0, 0);

    if (p == NULL) {
        return NGX_ERROR;
    }

    key->len = p - 1 - key->data;

    p = ngx_http_ai_json_space(p, end);

    if (p >= end || *p != ':') {
        return NGX_ERROR;
    }

    p = ngx_http_ai_json_space(p + 1, end);

    value->data = p;
    p = ngx_http_ai_json_skip(p, end, NGX_HTTP_AI_JSON_DEPTH, 0);

    if (p == NULL) {
        return NGX_ERROR;
    }

    value->len = p - value->data;

    p = ngx_http_ai_json_space(p, end);

    it->more = (p < end && *p == ',');

    if (it->more) {
        p = ngx_http_ai_json_space(p + 1, end);

    } else if (p >= end || *p != '}') {
        return NGX_ERROR;
    }

    it->pos = p;

    return NGX_OK;
}
