
/*
 * Copyright (C) AI Gateway authors
 *
 * Token usage from the providers' responses.  Pure: unit tests link it.
 */


#define NGX_HTTP_AI_CORE_INTERNAL  1

#include "ngx_http_ai_core.h"
#include "ngx_http_ai_core_json.h"
#include "ngx_http_ai_core_format.h"


/*
 * A usage object, as a cJSON tree, or as its text read by the scanner
 * (the hot path: every event of a stream, every answer)
 */

#define NGX_HTTP_AI_USAGE_MEMBERS  16

typedef struct {
    cJSON                      *json;
    ngx_str_t                   raw;
    ngx_uint_t                  odd;      /* raw: an escape, a long number:
                                             cJSON's reading decides */
    ngx_uint_t                  strict;   /* raw: not checked before: its
                                             members are, as they are
                                             read */
    u_char                     *last;     /* strict: the object's end, once
                                             read */

    /* raw: its members, read once (the first ones, in order) */
    ngx_uint_t                  nmembers;
    ngx_str_t                   keys[NGX_HTTP_AI_USAGE_MEMBERS];
    ngx_str_t                   values[NGX_HTTP_AI_USAGE_MEMBERS];
    unsigned                    read:1;
    unsigned                    more:1;   /* members beyond those */
} ngx_http_ai_usage_src_t;


/*
 * The last usage object read in place, and what it made of which usage:
 * the core reads an event's usage for the request, then a translator the
 * same bytes for the door, and the second read is a compare.  Keyed by
 * the object's bytes and the usage it was read into, not by an address
 * (buffers are reused): a pure function's last answer, one a worker.
 */

#define NGX_HTTP_AI_USAGE_MEMO  512

typedef struct {
    ngx_uint_t                  format;
    size_t                      len;
    ngx_http_ai_usage_t         before;
    ngx_http_ai_usage_t         after;
    u_char                      bytes[NGX_HTTP_AI_USAGE_MEMO];
} ngx_http_ai_usage_memo_t;


static u_char *ngx_http_ai_find_object(ngx_str_t *data, const char *key,
    size_t len);
static void ngx_http_ai_usage_remember(ngx_uint_t format, u_char *p,
    size_t len, ngx_http_ai_usage_t *before, ngx_http_ai_usage_t *after);
static ngx_uint_t ngx_http_ai_usage_same(ngx_http_ai_usage_t *a,
    ngx_http_ai_usage_t *b);
static void ngx_http_ai_usage_read(ngx_uint_t format,
    ngx_http_ai_usage_src_t *src, ngx_http_ai_usage_t *u);
static void ngx_http_ai_usage_int(ngx_http_ai_usage_src_t *src,
    const char *name, ngx_int_t *value, ngx_http_ai_usage_t *u);
static ngx_uint_t ngx_http_ai_usage_child(ngx_http_ai_usage_src_t *src,
    const char *name, ngx_http_ai_usage_src_t *child);
static ngx_int_t ngx_http_ai_usage_member(ngx_http_ai_usage_src_t *src,
    const char *name, ngx_str_t *value);
static ngx_int_t ngx_http_ai_usage_scan(ngx_http_ai_usage_src_t *src);


static ngx_http_ai_usage_memo_t  ngx_http_ai_usage_memo;


ngx_int_t
ngx_http_ai_usage_parse(ngx_uint_t format, ngx_str_t *data,
    ngx_http_ai_usage_t *u)
{
    u_char                   *p, *end;
    const char               *stop;
    ngx_http_ai_usage_t       copy;
    ngx_http_ai_usage_src_t   src;

    if (format == NGX_HTTP_AI_FMT_GEMINI) {
        p = ngx_http_ai_find_object(data, "\"usageMetadata\"",
                                    sizeof("\"usageMetadata\"") - 1);
    } else {
        p = ngx_http_ai_find_object(data, "\"usage\"",
                                    sizeof("\"usage\"") - 1);
    }

    if (p == NULL) {
        return NGX_DECLINED;
    }

    end = data->data + data->len;

    if (ngx_http_ai_usage_known(format, p, end, u)) {
        /* the bytes just read, into the same usage: a cache's answer */
        *u = ngx_http_ai_usage_memo.after;
        return NGX_OK;
    }

    /*
     * the object read in place, checked strictly as its members are read
     * (one pass); an odd one, or one that does not check, by cJSON, as it
     * always was
     */

    ngx_memzero(&src, sizeof(ngx_http_ai_usage_src_t));
    src.raw.data = p;
    src.raw.len = end - p;
    src.strict = 1;

    copy = *u;
    ngx_http_ai_usage_read(format, &src, &copy);

    if (!src.odd) {
        if (src.last) {
            ngx_http_ai_usage_remember(format, p, src.last - p, u, &copy);
        }

        *u = copy;
        return NGX_OK;
    }

    src.json = cJSON_ParseWithLengthOpts((const char *) src.raw.data,
                                         end - src.raw.data, &stop, 0);

    if (!cJSON_IsObject(src.json)) {
        cJSON_Delete(src.json);
        return NGX_DECLINED;
    }

    ngx_http_ai_usage_object(format, src.json, u);

    cJSON_Delete(src.json);

    return NGX_OK;
}


ngx_int_t
ngx_http_ai_usage_raw(ngx_uint_t format, ngx_str_t *object,
    ngx_http_ai_usage_t *u)
{
    ngx_http_ai_usage_t       copy;
    ngx_http_ai_usage_src_t   src;

    if (object->len
        && ngx_http_ai_usage_known(format, object->data,
                                   object->data + object->len, u)
           == object->len)
    {
        /* the bytes just read, into the same usage: the same answer */
        *u = ngx_http_ai_usage_memo.after;
        return NGX_OK;
    }

    /* checked strictly as it is read, to its end, which must be its own */

    ngx_memzero(&src, sizeof(ngx_http_ai_usage_src_t));
    src.raw = *object;
    src.strict = 1;

    copy = *u;
    ngx_http_ai_usage_read(format, &src, &copy);

    if (src.odd || src.last != object->data + object->len) {
        return NGX_DECLINED;
    }

    *u = copy;

    return NGX_OK;
}


static void
ngx_http_ai_usage_remember(ngx_uint_t format, u_char *p, size_t len,
    ngx_http_ai_usage_t *before, ngx_http_ai_usage_t *after)
{
    ngx_http_ai_usage_memo_t  *m;

    m = &ngx_http_ai_usage_memo;

    if (len == 0 || len > NGX_HTTP_AI_USAGE_MEMO) {
        m->len = 0;
        return;
    }

    m->format = format;
    m->len = len;
    m->before = *before;
    m->after = *after;
    ngx_memcpy(m->bytes, p, len);
}


static ngx_uint_t
ngx_http_ai_usage_same(ngx_http_ai_usage_t *a, ngx_http_ai_usage_t *b)
{
    /* field by field: the flags share a word with padding */

    return a->prompt_tokens == b->prompt_tokens
           && a->completion_tokens == b->completion_tokens
           && a->total_tokens == b->total_tokens
           && a->cached_tokens == b->cached_tokens
           && a->reasoning_tokens == b->reasoning_tokens
           && a->cache_write_tokens == b->cache_write_tokens
           && a->found == b->found
           && a->invalid == b->invalid
           && a->refused == b->refused
           && a->estimated == b->estimated;
}


/*
 * The usage object the text at p begins with, when it is the one last
 * read in place into the same usage: its length (an object ends where its
 * bytes say, so a text that begins with the same bytes holds the same
 * object), else 0.  A translator finds its event's usage at once.
 */

size_t
ngx_http_ai_usage_known(ngx_uint_t format, u_char *p, u_char *end,
    ngx_http_ai_usage_t *u)
{
    ngx_http_ai_usage_memo_t  *m;

    m = &ngx_http_ai_usage_memo;

    if (m->len && format == m->format && (size_t) (end - p) >= m->len
        && ngx_http_ai_usage_same(u, &m->before)
        && ngx_memcmp(p, m->bytes, m->len) == 0)
    {
        return m->len;
    }

    return 0;
}


/*
 * A provider's usage is hostile input: a count is taken only when it is
 * an integer in [0, NGX_HTTP_AI_TOKENS_MAX]; anything else (a string,
 * a negative, a fraction, 1e300) is ignored and u->invalid set.  The
 * parts are then made consistent: cached + cache writes <= prompt,
 * reasoning <= completion, total = prompt + completion.
 */

void
ngx_http_ai_usage_object(ngx_uint_t format, cJSON *usage,
    ngx_http_ai_usage_t *u)
{
    ngx_http_ai_usage_src_t  src;

    if (!cJSON_IsObject(usage)) {
        return;
    }

    ngx_memzero(&src, sizeof(ngx_http_ai_usage_src_t));
    src.json = usage;

    ngx_http_ai_usage_read(format, &src, u);
}


static void
ngx_http_ai_usage_read(ngx_uint_t format, ngx_http_ai_usage_src_t *usage,
    ngx_http_ai_usage_t *u)
{
    ngx_int_t                 input, cache_read, cache_creation, thoughts,
                              candidates, tool_prompt, total;
    ngx_http_ai_usage_src_t   details;

    total = NGX_HTTP_AI_UNSET;

    switch (format) {

    case NGX_HTTP_AI_FMT_ANTHROPIC:

        /*
         * input_tokens does not count the cached prompt: the prompt is
         * input + cache reads + cache writes
         */

        input = NGX_HTTP_AI_UNSET;
        cache_read = u->cached_tokens;        /* an event that does not */
        cache_creation = u->cache_write_tokens;      /* say keeps them */

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
            u->cache_write_tokens = cache_creation;
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

    case NGX_HTTP_AI_FMT_RESPONSES:

        ngx_http_ai_usage_int(usage, "input_tokens", &u->prompt_tokens, u);
        ngx_http_ai_usage_int(usage, "output_tokens", &u->completion_tokens,
                              u);
        ngx_http_ai_usage_int(usage, "total_tokens", &total, u);

        if (ngx_http_ai_usage_child(usage, "input_tokens_details", &details))
        {
            ngx_http_ai_usage_int(&details, "cached_tokens",
                                  &u->cached_tokens, u);
            usage->odd |= details.odd;
        }

        if (ngx_http_ai_usage_child(usage, "output_tokens_details",
                                    &details))
        {
            ngx_http_ai_usage_int(&details, "reasoning_tokens",
                                  &u->reasoning_tokens, u);
            usage->odd |= details.odd;
        }

        break;

    default: /* NGX_HTTP_AI_FMT_OPENAI */

        ngx_http_ai_usage_int(usage, "prompt_tokens", &u->prompt_tokens, u);
        ngx_http_ai_usage_int(usage, "completion_tokens",
                              &u->completion_tokens, u);
        ngx_http_ai_usage_int(usage, "total_tokens", &total, u);

        if (ngx_http_ai_usage_child(usage, "prompt_tokens_details",
                                    &details))
        {
            ngx_http_ai_usage_int(&details, "cached_tokens",
                                  &u->cached_tokens, u);
            usage->odd |= details.odd;
        }

        if (ngx_http_ai_usage_child(usage, "completion_tokens_details",
                                    &details))
        {
            ngx_http_ai_usage_int(&details, "reasoning_tokens",
                                  &u->reasoning_tokens, u);
            usage->odd |= details.odd;
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

    if (u->cache_write_tokens > u->prompt_tokens - u->cached_tokens) {
        u->cache_write_tokens = u->prompt_tokens - u->cached_tokens;
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
                && ngx_memcmp(name->data, "message_stop",
                              sizeof("message_stop") - 1) == 0)
               || (name->len == 0
                   && ngx_http_ai_json_find(data->data,
                                            data->data + data->len,
                                            "\"message_stop\"",
                                            sizeof("\"message_stop\"") - 1)
                      != NULL);

    case NGX_HTTP_AI_FMT_GEMINI:
        return ngx_http_ai_json_find(data->data, data->data + data->len,
                                     "\"finishReason\"",
                                     sizeof("\"finishReason\"") - 1)
               != NULL;

    case NGX_HTTP_AI_FMT_RESPONSES:
        /* response.completed, .incomplete, .failed; an error event */
#define ngx_http_ai_name_is(s)                                               \
        (name->len == sizeof(s) - 1                                          \
         && ngx_memcmp(name->data, s, sizeof(s) - 1) == 0)

        return ngx_http_ai_name_is("response.completed")
               || ngx_http_ai_name_is("response.incomplete")
               || ngx_http_ai_name_is("response.failed")
               || ngx_http_ai_name_is("error");
#undef ngx_http_ai_name_is

    default: /* NGX_HTTP_AI_FMT_OPENAI */
        return data->len == sizeof("[DONE]") - 1
               && ngx_memcmp(data->data, "[DONE]", sizeof("[DONE]") - 1)
                  == 0;
    }
}


/*
 * The object after the last occurrence of "key": usage comes after the
 * generated content in every provider's responses, so text that the model
 * wrote cannot pose as the usage that follows it.
 */

static u_char *
ngx_http_ai_find_object(ngx_str_t *data, const char *key, size_t len)
{
    u_char  *p, *last, *found;

    if (data->len < len + 2) {
        return NULL;
    }

    last = data->data + data->len;

    /*
     * the last occurrence, from the end: the providers put usage last, so
     * it is found near the end of an event, most often at once
     */

    found = ngx_http_ai_json_rfind(data->data, last, key, len);

    if (found == NULL) {
        return NULL;
    }

    found += len;

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

    return p;
}


static void
ngx_http_ai_usage_int(ngx_http_ai_usage_src_t *src, const char *name,
    ngx_int_t *value, ngx_http_ai_usage_t *u)
{
    cJSON     *item;
    double     v;
    ngx_str_t  raw;

    if (src->json) {
        item = ngx_http_ai_json_item(src->json, name);

        if (item == NULL || cJSON_IsNull(item)) {
            return;
        }

        if (!cJSON_IsNumber(item)) {
            u->invalid = 1;
            u->refused = 1;
            return;
        }

        v = item->valuedouble;

    } else {
        if (ngx_http_ai_usage_member(src, name, &raw) != NGX_OK
            || ngx_http_ai_json_key(&raw, "null"))
        {
            return;
        }

        if (raw.data[0] == '"' || raw.data[0] == '{' || raw.data[0] == '['
            || raw.data[0] == 't' || raw.data[0] == 'f')
        {
            /* a string, an object, an array, true, false */
            u->invalid = 1;
            u->refused = 1;
            return;
        }

        if ((raw.data[0] < '0' || raw.data[0] > '9') && raw.data[0] != '-') {
            /* not JSON's number ("+1", ".5"): as cJSON would take it */
            src->odd = 1;
            return;
        }

        if (raw.len >= 64) {
            /* cJSON reads 63 characters of a number at most */
            src->odd = 1;
            return;
        }

        v = ngx_http_ai_json_double(raw.data, raw.len);
    }

    /* the comparisons are false for NaN, so it is refused too */

    if (v >= 0 && v <= (double) NGX_HTTP_AI_TOKENS_MAX
        && v == (double) (ngx_int_t) v)
    {
        *value = (ngx_int_t) v;
        return;
    }

    u->invalid = 1;
    u->refused = 1;
}


/* an object member that is an object itself */

static ngx_uint_t
ngx_http_ai_usage_child(ngx_http_ai_usage_src_t *src, const char *name,
    ngx_http_ai_usage_src_t *child)
{
    ngx_str_t  raw;

    ngx_memzero(child, sizeof(ngx_http_ai_usage_src_t));

    if (src->json) {
        child->json = ngx_http_ai_json_item(src->json, name);
        return cJSON_IsObject(child->json);
    }

    if (ngx_http_ai_usage_member(src, name, &raw) != NGX_OK
        || raw.data[0] != '{')
    {
        return 0;
    }

    child->raw = raw;

    return 1;
}


/*
 * The members of a usage object's text, the first ones, in order, in one
 * loop (json_next() per member cost an answer's usage about 4,000
 * instructions).  A key with an escape, or a string value with one, makes
 * the object odd (cJSON reads it).  A text checked before (a strict
 * ngx_http_ai_json_skip() of the object, or its parent's) is not checked
 * again; with src->strict each value is checked (a strict skip) as it is
 * read, the object to its end, and a text that does not check is odd too.
 */

static ngx_int_t
ngx_http_ai_usage_scan(ngx_http_ai_usage_src_t *src)
{
    u_char  *p, *q, *k, *end;

    p = src->raw.data;
    end = p + src->raw.len;

    if (p == NULL || p >= end || *p != '{') {
        goto invalid;
    }

    for (p++; /* void */; p++) {

        p = ngx_http_ai_json_space(p, end);

        if (p >= end || *p != '"') {
            /* the end ('}'), or not what a checked text holds */

            if (p < end && *p == '}'
                && (src->nmembers == 0 || !src->strict))
            {
                /* {}, or a checked text's end (no "," before a "}") */
                src->last = p + 1;
                return NGX_OK;
            }

            goto invalid;
        }

        k = p + 1;

        q = memchr(k, '"', end - k);
        if (q == NULL) {
            goto invalid;
        }

        if (memchr(k, '\\', q - k) != NULL) {
            src->odd = 1;
            return NGX_DECLINED;
        }

        p = ngx_http_ai_json_space(q + 1, end);

        if (p >= end || *p != ':') {
            goto invalid;
        }

        p = ngx_http_ai_json_space(p + 1, end);

        if (p >= end) {
            goto invalid;
        }

        if (src->nmembers == NGX_HTTP_AI_USAGE_MEMBERS) {
            src->more = 1;

            if (src->strict) {
                /* the rest is checked here, at once */

                src->last = ngx_http_ai_json_skip(src->raw.data, end,
                                                  NGX_HTTP_AI_JSON_CJSON_DEPTH,
                                                  1);
                if (src->last == NULL) {
                    goto invalid;
                }
            }

            return NGX_OK;
        }

        src->keys[src->nmembers].data = k;
        src->keys[src->nmembers].len = q - k;
        src->values[src->nmembers].data = p;

        if (src->strict) {
            q = ngx_http_ai_json_skip(p, end,
                                      NGX_HTTP_AI_JSON_CJSON_DEPTH - 1, 1);
            if (q == NULL) {
                goto invalid;
            }

            if (*p == '"' && memchr(p + 1, '\\', q - p - 2) != NULL) {
                src->odd = 1;
                return NGX_DECLINED;
            }

            goto next;
        }

        switch (*p) {

        case '"':
            q = memchr(p + 1, '"', end - p - 1);
            if (q == NULL) {
                return NGX_DECLINED;
            }

            if (memchr(p + 1, '\\', q - p - 1) != NULL) {
                src->odd = 1;
                return NGX_DECLINED;
            }

            q++;
            break;

        case '{':
        case '[':
            q = ngx_http_ai_json_skip(p, end, NGX_HTTP_AI_JSON_CJSON_DEPTH, 0);
            if (q == NULL) {
                return NGX_DECLINED;
            }

            break;

        default:
            /* a number or a literal: up to what ends a value */

            for (q = p;
                 q < end && *q != ',' && *q != '}' && *q != ' '
                 && *q != '\t' && *q != CR && *q != LF;
                 q++)
            {
                /* void */
            }

            if (q == p) {
                return NGX_DECLINED;
            }
        }

    next:

        src->values[src->nmembers].len = q - p;
        src->nmembers++;

        p = ngx_http_ai_json_space(q, end);

        if (p >= end || *p != ',') {
            if (p < end && *p == '}') {
                src->last = p + 1;
                return NGX_OK;
            }

            goto invalid;
        }
    }

invalid:

    if (src->strict) {
        /* cJSON reads what does not check: most likely it refuses it */
        src->odd = 1;
    }

    return NGX_DECLINED;
}


/*
 * The first member named name, as cJSON finds it; a key with an escape
 * (cJSON would decode it) or a string value with one makes the object
 * odd: cJSON reads it instead.  The members are read once, on the first
 * call, and looked up in that list after.
 */

static ngx_int_t
ngx_http_ai_usage_member(ngx_http_ai_usage_src_t *src, const char *name,
    ngx_str_t *value)
{
    size_t                   len;
    ngx_int_t                rc;
    ngx_str_t                key, v;
    ngx_uint_t               i;
    ngx_http_ai_json_iter_t  it;

    len = ngx_strlen(name);

    if (!src->read) {
        src->read = 1;

        /* (what could be read is looked in, as json_next() left it) */

        if (ngx_http_ai_usage_scan(src) != NGX_OK && src->odd) {
            return NGX_DECLINED;
        }
    }

    for (i = 0; i < src->nmembers; i++) {
        if (src->keys[i].len == len
            && ngx_memcmp(src->keys[i].data, name, len) == 0)
        {
            *value = src->values[i];
            return NGX_OK;
        }
    }

    if (!src->more
        || ngx_http_ai_json_object(&it, src->raw.data,
                                   src->raw.data + src->raw.len)
           != NGX_OK)
    {
        return NGX_DECLINED;
    }

    /* an object of many members: the rest, as they come */

    while ((rc = ngx_http_ai_json_next(&it, &key, &v)) == NGX_OK) {

        if (ngx_strlchr(key.data, key.data + key.len, '\\')
            || (v.data[0] == '"'
                && ngx_strlchr(v.data, v.data + v.len, '\\')))
        {
            src->odd = 1;
            return NGX_DECLINED;
        }

        if (key.len == len && ngx_memcmp(key.data, name, len) == 0) {
            *value = v;
            return NGX_OK;
        }
    }

    if (rc == NGX_ERROR) {
        /* (a checked text: a key with an escape, which cJSON reads) */
        src->odd = 1;
    }

    return NGX_DECLINED;
}
