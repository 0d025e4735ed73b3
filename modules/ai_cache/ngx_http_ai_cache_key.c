
/*
 * Copyright (C) AI Gateway authors
 *
 * The key of an answer: SHA-256 of what decides it.  The kind of endpoint
 * (chat or embeddings: not the door, so that an answer cached from one
 * door serves the other); the routed model (after aliases: two names of
 * one model share entries, two models never do); the scope (the consumer,
 * unless shared) and the namespace (the location's, and the client's
 * X-AI-Cache-Namespace header); and the request in OpenAI's format (the
 * format layer's pivot: an Anthropic request as its OpenAI translation),
 * after the guard's masking, every field included (messages, tools,
 * sampling and format parameters) but those that do not change the answer
 * (stream, stream_options, user), with its keys sorted (the order a client
 * writes them in changes nothing) and max_completion_tokens read as
 * max_tokens.  ai_cache_last_messages N keys on the
 * last N messages only, ai_cache_ignore_system off the system prompt.
 *
 * The request is not copied: its tree is written in that canonical form
 * into a buffer of the worker's, hashed each time it fills (a long text's
 * runs hashed where they are).  A bare chat request (see
 * ngx_http_ai_request_t) is written from the core's view, without a tree:
 * the same bytes.
 */


#include "ngx_http_ai_cache.h"

#include <openssl/sha.h>


/* the canonical form's writer: a buffer of the worker's, hashed when full */

typedef struct {
    u_char                     *pos;
    u_char                     *last;
    ngx_uint_t                  failed;     /* too deep, or the hash */
} ngx_http_ai_cache_canon_t;


/* an object's member as written: its name (renamed at the top) */

typedef struct {
    const char                 *name;
    cJSON                      *item;
} ngx_http_ai_cache_member_t;


#define NGX_HTTP_AI_CACHE_CANON_DEPTH   64
#define NGX_HTTP_AI_CACHE_MEMBERS       32   /* sorted on the stack */


#define NGX_HTTP_AI_CACHE_BUF           16384


static u_char  *ngx_http_ai_cache_buf;


static void ngx_http_ai_cache_canon(ngx_http_ai_cache_canon_t *c,
    cJSON *json, ngx_uint_t depth, ngx_uint_t format,
    ngx_http_ai_cache_loc_conf_t *clcf);
static void ngx_http_ai_cache_object(ngx_http_ai_cache_canon_t *c,
    cJSON *json, ngx_uint_t depth, ngx_uint_t format,
    ngx_http_ai_cache_loc_conf_t *clcf);
static void ngx_http_ai_cache_messages(ngx_http_ai_cache_canon_t *c,
    cJSON *messages, ngx_http_ai_cache_loc_conf_t *clcf);
static void ngx_http_ai_cache_view(ngx_http_ai_cache_canon_t *c,
    ngx_http_ai_request_t *req, ngx_http_ai_cache_loc_conf_t *clcf);
static ngx_uint_t ngx_http_ai_cache_system(ngx_str_t *role);
static ngx_uint_t ngx_http_ai_cache_system_of(cJSON *message);
static void ngx_http_ai_cache_string(ngx_http_ai_cache_canon_t *c,
    const char *s);
static void ngx_http_ai_cache_text(ngx_http_ai_cache_canon_t *c,
    u_char *p, size_t len);
static void ngx_http_ai_cache_put(ngx_http_ai_cache_canon_t *c,
    const void *data, size_t len);
static ngx_inline void ngx_http_ai_cache_char(ngx_http_ai_cache_canon_t *c,
    u_char ch);
static void ngx_http_ai_cache_uint(ngx_http_ai_cache_canon_t *c,
    uint64_t n);
static void ngx_http_ai_cache_part(ngx_http_ai_cache_canon_t *c,
    ngx_str_t *s);


ngx_int_t
ngx_http_ai_cache_key(ngx_http_request_t *r, ngx_http_ai_ctx_t *ai,
    ngx_http_ai_cache_loc_conf_t *clcf, ngx_http_ai_cache_ctx_t *ctx)
{
    cJSON                            *json, *parsed;
    u_char                            md[SHA256_DIGEST_LENGTH], *p;
    ngx_str_t                         ns, *model, body, err;
    ngx_uint_t                        format;
    ngx_http_ai_cache_canon_t         c;
    ngx_http_ai_translate_request_t   tr;
    ngx_table_elt_t                  *h;

    model = ai->route_model.len ? &ai->route_model : &ai->req.model;

    /* the request in the pivot format, whatever the door's (an OpenAI
     * request is its own) */

    parsed = NULL;
    json = NULL;
    format = ai->req.format;

    if (!ai->req.bare) {
        json = ngx_http_ai_request_tree(&ai->req);
    }

    if (format != NGX_HTTP_AI_FMT_OPENAI) {
        ngx_memzero(&tr, sizeof(ngx_http_ai_translate_request_t));
        tr.from = ai->req.format;
        tr.to = NGX_HTTP_AI_FMT_OPENAI;
        tr.endpoint = ai->req.endpoint;
        tr.json = json;
        tr.body = ai->req.body;
        tr.model = *model;
        tr.max_tokens = NGX_HTTP_AI_UNSET;

        if (ngx_http_ai_translate_request(r->pool, &tr, &body, &err)
            == NGX_OK)
        {
            parsed = cJSON_ParseWithLength((char *) body.data, body.len);

            if (parsed) {
                json = parsed;
                format = NGX_HTTP_AI_FMT_OPENAI;
            }
        }
    }

    if (json == NULL && !ai->req.bare) {
        return NGX_ERROR;
    }

    /*
     * the preimage in the worker's buffer, hashed at once: each part with
     * its length first (no two keys run into each other), then the
     * request's canonical form:
     *
     *     v2:chat:FORMAT:LEN:MODEL:LEN:SCOPE:LEN:NAMESPACE:LEN:HEADER:{...}
     */

    if (ngx_http_ai_cache_buf == NULL) {
        ngx_http_ai_cache_buf = ngx_alloc(NGX_HTTP_AI_CACHE_BUF,
                                          ngx_cycle->log);
        if (ngx_http_ai_cache_buf == NULL) {
            goto failed;
        }
    }

    if (ngx_http_ai_sha256_start() != NGX_OK) {
        goto failed;
    }

    c.pos = ngx_http_ai_cache_buf;
    c.last = ngx_http_ai_cache_buf + NGX_HTTP_AI_CACHE_BUF;
    c.failed = 0;

    if (ai->req.endpoint == NGX_HTTP_AI_EP_EMBEDDINGS) {
        ngx_http_ai_cache_put(&c, "v2:embeddings:", 14);

    } else {
        ngx_http_ai_cache_put(&c, "v2:chat:", 8);
    }

    ngx_http_ai_cache_uint(&c, format);
    ngx_http_ai_cache_part(&c, model);

    if (!clcf->per_consumer) {
        ngx_str_null(&ns);

    } else {
        ns = ai->consumer;
    }

    ngx_http_ai_cache_part(&c, &ns);

    ngx_str_null(&ns);

    if (clcf->namespace
        && ngx_http_complex_value(r, clcf->namespace, &ns) != NGX_OK)
    {
        goto failed;
    }

    ngx_http_ai_cache_part(&c, &ns);

    h = ngx_http_ai_cache_header(r, "x-ai-cache-namespace", NULL);

    if (h) {
        ngx_http_ai_cache_part(&c, &h->value);

    } else {
        ngx_str_null(&ns);
        ngx_http_ai_cache_part(&c, &ns);
    }

    if (json) {
        ngx_http_ai_cache_canon(&c, json, 0, format, clcf);

    } else {
        ngx_http_ai_cache_view(&c, &ai->req, clcf);
    }

    if (c.failed) {
        goto failed;
    }

    cJSON_Delete(parsed);
    parsed = NULL;

    if (ngx_http_ai_sha256_add(ngx_http_ai_cache_buf,
                               c.pos - ngx_http_ai_cache_buf)
        != NGX_OK
        || ngx_http_ai_sha256_end(md) != NGX_OK)
    {
        return NGX_ERROR;
    }

    p = ngx_hex_dump(ctx->key, md, SHA256_DIGEST_LENGTH);
    *p = '\0';

    return NGX_OK;

failed:

    cJSON_Delete(parsed);

    return NGX_ERROR;
}


/*
 * A value in the canonical form: compact JSON, every object's members in
 * the order of their names (a name twice: both, as they came), numbers as
 * their double's shortest exact form ("%.17g": 1, 1.0 and 1e0 are one
 * value).  At the top, the fields that do not change the answer are left
 * out, and the key's options applied.
 */

static void
ngx_http_ai_cache_canon(ngx_http_ai_cache_canon_t *c, cJSON *json,
    ngx_uint_t depth, ngx_uint_t format, ngx_http_ai_cache_loc_conf_t *clcf)
{
    u_char   num[NGX_INT64_LEN + 32];
    cJSON   *item;
    size_t   n;

    if (depth > NGX_HTTP_AI_CACHE_CANON_DEPTH) {
        c->failed = 1;
        return;
    }

    switch (json->type & 0xff) {

    case cJSON_False:
        ngx_http_ai_cache_put(c, "false", 5);
        return;

    case cJSON_True:
        ngx_http_ai_cache_put(c, "true", 4);
        return;

    case cJSON_NULL:
        ngx_http_ai_cache_put(c, "null", 4);
        return;

    case cJSON_Number:
        if (json->valuedouble == (double) (int64_t) json->valuedouble
            && json->valuedouble > -9007199254740992.0
            && json->valuedouble < 9007199254740992.0)
        {
            /* an integer (1, 1.0, 1e0): as one */

            if (json->valuedouble < 0) {
                num[0] = '-';
                n = ngx_http_ai_digits(num + 1,
                                       (uint64_t) -json->valuedouble)
                    - num;

            } else {
                n = ngx_http_ai_digits(num, (uint64_t) json->valuedouble)
                    - num;
            }

        } else {
            n = snprintf((char *) num, sizeof(num), "%.17g",
                         json->valuedouble);
            n = ngx_min(n, sizeof(num) - 1);
        }

        ngx_http_ai_cache_put(c, num, n);
        return;

    case cJSON_String:
    case cJSON_Raw:
        ngx_http_ai_cache_string(c, json->valuestring);
        return;

    case cJSON_Array:
        ngx_http_ai_cache_char(c, '[');

        for (item = json->child; item; item = item->next) {
            ngx_http_ai_cache_canon(c, item, depth + 1, format, clcf);

            if (item->next) {
                ngx_http_ai_cache_char(c, ',');
            }
        }

        ngx_http_ai_cache_char(c, ']');
        return;

    case cJSON_Object:
        ngx_http_ai_cache_object(c, json, depth, format, clcf);
        return;

    default:
        c->failed = 1;
    }
}


static void
ngx_http_ai_cache_object(ngx_http_ai_cache_canon_t *c, cJSON *json,
    ngx_uint_t depth, ngx_uint_t format, ngx_http_ai_cache_loc_conf_t *clcf)
{
    cJSON                       *item;
    ngx_uint_t                   n, i, j, max_tokens;
    const char                  *name, *messages;
    ngx_http_ai_cache_member_t   stack[NGX_HTTP_AI_CACHE_MEMBERS], *m, t;

    n = 0;
    max_tokens = 0;

    for (item = json->child; item; item = item->next) {
        n++;

        if (depth == 0 && item->string && item->string[0] == 'm'
            && ngx_strcmp(item->string, "max_tokens") == 0)
        {
            max_tokens = 1;
        }
    }

    if (n <= NGX_HTTP_AI_CACHE_MEMBERS) {
        m = stack;

    } else {
        m = ngx_alloc(n * sizeof(ngx_http_ai_cache_member_t),
                      ngx_cycle->log);
        if (m == NULL) {
            c->failed = 1;
            return;
        }
    }

    messages = (format == NGX_HTTP_AI_FMT_GEMINI) ? "contents" : "messages";

    /* the members written, with their names; sorted by insertion */

    n = 0;

    for (item = json->child; item; item = item->next) {
        name = item->string ? item->string : "";

        if (depth == 0
            && (name[0] == 'm' || name[0] == 's' || name[0] == 'u'))
        {
            /* the model: the routed one is in the key already */

            if (ngx_strcmp(name, "model") == 0
                || ngx_strcmp(name, "stream") == 0
                || ngx_strcmp(name, "stream_options") == 0
                || ngx_strcmp(name, "user") == 0
                || (clcf->ignore_system
                    && (ngx_strcmp(name, "system") == 0
                        || ngx_strcmp(name, "systemInstruction") == 0
                        || ngx_strcmp(name, "system_instruction") == 0)))
            {
                continue;
            }

            if (ngx_strcmp(name, "max_completion_tokens") == 0) {
                if (max_tokens) {
                    continue;
                }

                name = "max_tokens";
            }
        }

        for (i = n; i > 0 && ngx_strcmp(m[i - 1].name, name) > 0; i--) {
            /* void */
        }

        for (j = n; j > i; j--) {
            m[j] = m[j - 1];
        }

        t.name = name;
        t.item = item;
        m[i] = t;
        n++;
    }

    ngx_http_ai_cache_char(c, '{');

    for (i = 0; i < n; i++) {
        if (i) {
            ngx_http_ai_cache_char(c, ',');
        }

        ngx_http_ai_cache_string(c, m[i].name);
        ngx_http_ai_cache_char(c, ':');

        if (depth == 0 && cJSON_IsArray(m[i].item)
            && ngx_strcmp(m[i].name, messages) == 0
            && (clcf->ignore_system || clcf->last_messages > 0))
        {
            ngx_http_ai_cache_messages(c, m[i].item, clcf);
            continue;
        }

        ngx_http_ai_cache_canon(c, m[i].item, depth + 1, format, clcf);
    }

    ngx_http_ai_cache_char(c, '}');

    if (m != stack) {
        ngx_free(m);
    }
}


/* the messages, without the system prompt's, the last N of them */

static void
ngx_http_ai_cache_messages(ngx_http_ai_cache_canon_t *c, cJSON *messages,
    ngx_http_ai_cache_loc_conf_t *clcf)
{
    cJSON       *m;
    ngx_uint_t   n, skip, i, first;

    n = 0;

    for (m = messages->child; m; m = m->next) {
        if (clcf->ignore_system && ngx_http_ai_cache_system_of(m)) {
            continue;
        }

        n++;
    }

    skip = (clcf->last_messages > 0
            && n > (ngx_uint_t) clcf->last_messages)
           ? n - (ngx_uint_t) clcf->last_messages : 0;

    ngx_http_ai_cache_char(c, '[');

    i = 0;
    first = 1;

    for (m = messages->child; m; m = m->next) {
        if (clcf->ignore_system && ngx_http_ai_cache_system_of(m)) {
            continue;
        }

        if (i++ < skip) {
            continue;
        }

        if (!first) {
            ngx_http_ai_cache_char(c, ',');
        }

        first = 0;

        ngx_http_ai_cache_canon(c, m, 2, NGX_HTTP_AI_FMT_OPENAI, clcf);
    }

    ngx_http_ai_cache_char(c, ']');
}


/*
 * A bare chat request's canonical form, from the view: what
 * ngx_http_ai_cache_canon() writes from its tree, which holds no other
 * member.  The members in the order of their names: "max_tokens" (either
 * of the two), "messages"; a message's: "content", "role".
 */

static void
ngx_http_ai_cache_view(ngx_http_ai_cache_canon_t *c,
    ngx_http_ai_request_t *req, ngx_http_ai_cache_loc_conf_t *clcf)
{
    ngx_uint_t              i, n, skip, first;
    ngx_http_ai_message_t  *m;

    ngx_http_ai_cache_char(c, '{');

    if (req->max_tokens != NGX_HTTP_AI_UNSET) {
        ngx_http_ai_cache_put(c, "\"max_tokens\":", 13);
        ngx_http_ai_cache_put(c, NULL, NGX_INT64_LEN + 1);

        if (c->failed) {
            return;
        }

        c->pos = ngx_http_ai_digits(c->pos, (uint64_t) req->max_tokens);
        *c->pos++ = ',';
    }

    ngx_http_ai_cache_put(c, "\"messages\":[", 12);

    m = req->messages.elts;

    /* as ngx_http_ai_cache_messages(): no system prompt, the last N */

    n = 0;

    for (i = 0; i < req->messages.nelts; i++) {
        n += !(clcf->ignore_system && ngx_http_ai_cache_system(&m[i].role));
    }

    skip = (clcf->last_messages > 0 && n > (ngx_uint_t) clcf->last_messages)
           ? n - (ngx_uint_t) clcf->last_messages : 0;

    first = 1;

    for (i = 0; i < req->messages.nelts; i++) {
        if (clcf->ignore_system && ngx_http_ai_cache_system(&m[i].role)) {
            continue;
        }

        if (skip) {
            skip--;
            continue;
        }

        ngx_http_ai_cache_put(c, first ? "{\"content\":" : ",{\"content\":",
                              first ? 11 : 12);
        first = 0;

        if (m[i].plain) {
            /* as the body wrote it: nothing to escape */
            ngx_http_ai_cache_char(c, '"');
            ngx_http_ai_cache_put(c, m[i].text.data, m[i].text.len);
            ngx_http_ai_cache_char(c, '"');

        } else {
            ngx_http_ai_cache_text(c, m[i].text.data, m[i].text.len);
        }

        /* the roles of a chat message: letters only */

        ngx_http_ai_cache_put(c, ",\"role\":\"", 9);
        ngx_http_ai_cache_put(c, m[i].role.data, m[i].role.len);
        ngx_http_ai_cache_put(c, "\"}", 2);
    }

    ngx_http_ai_cache_put(c, "]}", 2);
}


/* a role whose message ai_cache_ignore_system leaves out */

static ngx_uint_t
ngx_http_ai_cache_system(ngx_str_t *role)
{
    return (role->len == 6 && ngx_strncmp(role->data, "system", 6) == 0)
           || (role->len == 9 && ngx_strncmp(role->data, "developer", 9) == 0);
}


/* the same, of a message of the tree */

static ngx_uint_t
ngx_http_ai_cache_system_of(cJSON *message)
{
    cJSON      *role;
    ngx_str_t   s;

    role = cJSON_GetObjectItemCaseSensitive(message, "role");

    if (!cJSON_IsString(role)) {
        return 0;
    }

    s.data = (u_char *) role->valuestring;
    s.len = ngx_strlen(role->valuestring);

    return ngx_http_ai_cache_system(&s);
}


/*
 * A string, quoted, escaped as JSON (a byte for a byte, but the specials):
 * the runs between specials put whole (a long one hashed where it is)
 */

static void
ngx_http_ai_cache_string(ngx_http_ai_cache_canon_t *c, const char *s)
{
    ngx_http_ai_cache_text(c, (u_char *) s, ngx_strlen(s));
}


static void
ngx_http_ai_cache_text(ngx_http_ai_cache_canon_t *c, u_char *p, size_t len)
{
    u_char   *q, *end;

    static u_char  hex[] = "0123456789abcdef";

    end = p + len;

    ngx_http_ai_cache_char(c, '"');

    for ( ;; ) {
        q = ngx_http_ai_json_plain(p, end);

        ngx_http_ai_cache_put(c, p, q - p);

        if (q == end) {
            break;
        }

        /* a special: up to 6 bytes for it */

        ngx_http_ai_cache_put(c, NULL, 6);

        if (c->failed) {
            return;
        }

        *c->pos++ = '\\';

        if (*q == '"' || *q == '\\') {
            *c->pos++ = *q;

        } else {
            *c->pos++ = 'u';
            *c->pos++ = '0';
            *c->pos++ = '0';
            *c->pos++ = hex[*q >> 4];
            *c->pos++ = hex[*q & 0xf];
        }

        p = q + 1;
    }

    ngx_http_ai_cache_char(c, '"');
}


/* a length or a number, in decimal, and a colon */

static void
ngx_http_ai_cache_uint(ngx_http_ai_cache_canon_t *c, uint64_t n)
{
    ngx_http_ai_cache_put(c, NULL, NGX_INT64_LEN + 1);

    if (c->failed) {
        return;
    }

    c->pos = ngx_http_ai_digits(c->pos, n);
    *c->pos++ = ':';
}


/* a part of the preimage: its length, a colon, itself, a colon */

static void
ngx_http_ai_cache_part(ngx_http_ai_cache_canon_t *c, ngx_str_t *s)
{
    ngx_http_ai_cache_uint(c, s->len);
    ngx_http_ai_cache_put(c, s->data, s->len);
    ngx_http_ai_cache_char(c, ':');
}


static void
ngx_http_ai_cache_put(ngx_http_ai_cache_canon_t *c, const void *data,
    size_t len)
{
    if (c->failed || len == 0) {
        return;
    }

    /* data NULL: room for len bytes (a few), nothing written */

    if ((size_t) (c->last - c->pos) < len) {

        /* the buffer hashed, and empty again */

        if (ngx_http_ai_sha256_add(ngx_http_ai_cache_buf,
                                   c->pos - ngx_http_ai_cache_buf)
            != NGX_OK)
        {
            goto failed;
        }

        c->pos = ngx_http_ai_cache_buf;

        if (len > NGX_HTTP_AI_CACHE_BUF / 2) {
            /* a long run: hashed where it is */

            if (data == NULL
                || ngx_http_ai_sha256_add(data, len) != NGX_OK)
            {
                goto failed;
            }

            return;
        }
    }

    if (data) {
        c->pos = ngx_cpymem(c->pos, data, len);
    }

    return;

failed:

    c->failed = 1;
    c->pos = ngx_http_ai_cache_buf;
    c->last = c->pos;               /* ngx_http_ai_cache_char() comes here */
}


/* a byte: most of the punctuation, written in place while there is room */

static ngx_inline void
ngx_http_ai_cache_char(ngx_http_ai_cache_canon_t *c, u_char ch)
{
    if (c->pos < c->last) {
        *c->pos++ = ch;
        return;
    }

    ngx_http_ai_cache_put(c, &ch, 1);
}
