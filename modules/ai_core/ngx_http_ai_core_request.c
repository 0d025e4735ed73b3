
/*
 * Copyright (C) AI Gateway authors
 *
 * The normalized request view.  Pure: the body in, the view out, using
 * only the given pool (unit tests link this file alone).
 */


#define NGX_HTTP_AI_CORE_INTERNAL  1

#include "ngx_http_ai_core.h"
#include "ngx_http_ai_core_json.h"


typedef struct {
    ngx_str_t   suffix;
    ngx_uint_t  endpoint;
    ngx_uint_t  format;
} ngx_http_ai_endpoint_t;


static ngx_int_t ngx_http_ai_role_own(ngx_pool_t *pool, ngx_str_t *role);
static ngx_int_t ngx_http_ai_parse_chat(ngx_pool_t *pool,
    ngx_http_ai_request_t *req, const char **param, ngx_str_t *err);
static ngx_int_t ngx_http_ai_chat_text(ngx_pool_t *pool,
    ngx_http_ai_request_t *req, ngx_str_t *user);
static ngx_int_t ngx_http_ai_chat_messages(ngx_pool_t *pool,
    ngx_http_ai_request_t *req, u_char **pp, u_char *end);
static ngx_int_t ngx_http_ai_chat_compact(ngx_pool_t *pool,
    ngx_http_ai_message_t *m, u_char **pp, u_char *end);
static ngx_int_t ngx_http_ai_chat_message(ngx_pool_t *pool,
    ngx_http_ai_message_t *m, u_char **pp, u_char *end, ngx_uint_t *bare);
static ngx_int_t ngx_http_ai_chat_content(ngx_pool_t *pool,
    ngx_http_ai_message_t *m, u_char **pp, u_char *end);
static u_char *ngx_http_ai_chat_options(ngx_http_ai_request_t *req,
    u_char *p, u_char *end);
static u_char *ngx_http_ai_chat_int(u_char *p, u_char *end,
    ngx_int_t *value);
static u_char *ngx_http_ai_text_string(u_char *p, u_char *end,
    ngx_str_t *s, ngx_uint_t *escaped);
static u_char *ngx_http_ai_text_skip(u_char *p, u_char *end,
    ngx_uint_t depth);
static ngx_int_t ngx_http_ai_text_field(ngx_str_t *key, const char **names,
    uint32_t *seen);
static ngx_int_t ngx_http_ai_parse_embeddings(ngx_http_ai_request_t *req,
    const char **param, ngx_str_t *err);
static ngx_int_t ngx_http_ai_parse_anthropic(ngx_pool_t *pool,
    ngx_http_ai_request_t *req, const char **param, ngx_str_t *err);
static ngx_int_t ngx_http_ai_parse_gemini(ngx_pool_t *pool,
    ngx_http_ai_request_t *req, const char **param, ngx_str_t *err);
static ngx_int_t ngx_http_ai_parse_responses(ngx_pool_t *pool,
    ngx_http_ai_request_t *req, const char **param, ngx_str_t *err);
static ngx_int_t ngx_http_ai_responses_item(ngx_pool_t *pool,
    ngx_http_ai_request_t *req, cJSON *item, const char **param,
    ngx_str_t *err);
static ngx_int_t ngx_http_ai_content(ngx_pool_t *pool, cJSON *content,
    ngx_http_ai_message_t *m, const char *text_key, const char **param,
    ngx_str_t *err);
static ngx_int_t ngx_http_ai_get_string(cJSON *obj, const char *name,
    ngx_uint_t required, ngx_str_t *value, const char **param,
    ngx_str_t *err);
static ngx_int_t ngx_http_ai_get_bool(cJSON *obj, const char *name,
    ngx_uint_t *value, const char **param, ngx_str_t *err);
static ngx_int_t ngx_http_ai_get_int(cJSON *obj, const char *name,
    ngx_int_t *value, const char **param, ngx_str_t *err);
static ngx_int_t ngx_http_ai_unique(cJSON *obj, const char **names,
    const char **param, ngx_str_t *err);
static ngx_uint_t ngx_http_ai_has_nul(ngx_str_t *body);
static ngx_uint_t ngx_http_ai_nul_escape(u_char *p, u_char *last);
static ngx_int_t ngx_http_ai_invalid(ngx_str_t *err, const char **param,
    const char *name, const char *msg);


/*
 * The fields the gateway acts on: each may appear once in its object, so
 * that what the gateway routes, prices, logs and guards is what the
 * provider reads (a provider may keep the last of duplicate keys).  At
 * most 32 in a list (ngx_http_ai_unique() keeps a bit for each).
 */

static const char  *ngx_http_ai_request_fields[] = {
    "model", "messages", "stream", "stream_options", "max_tokens",
    "max_completion_tokens", "tools", "tool_choice", "system", "input",
    "contents", "systemInstruction", "system_instruction",
    "generationConfig", "instructions", "max_output_tokens",
    "previous_response_id", NULL
};

static const char  *ngx_http_ai_message_fields[] = {
    "role", "content", "parts", "tool_calls", "tool_call_id", NULL
};

static const char  *ngx_http_ai_option_fields[] = {
    "include_usage", "maxOutputTokens", NULL
};


/* the roles a door names: an accepted role points to its literal here */

static ngx_str_t  ngx_http_ai_roles[] = {
    ngx_string("user"),
    ngx_string("assistant"),
    ngx_string("system"),
    ngx_string("developer"),
    ngx_string("tool"),
    ngx_string("function"),
    ngx_string("model")            /* Gemini's, not a chat message's */
};

#define NGX_HTTP_AI_CHAT_ROLES  6


/* the values of a chat request nest no deeper than this to be read fast */

#define NGX_HTTP_AI_CHAT_DEPTH  NGX_HTTP_AI_JSON_DEPTH

/* the texts of a message's parts joined without a tree, at most */

#define NGX_HTTP_AI_CHAT_PARTS  16

/* a key as it is written (without an escape) is the literal s */

#define ngx_http_ai_key_is(key, s)                                           \
    ((key)->len == sizeof(s) - 1                                             \
     && ngx_memcmp((key)->data, s, sizeof(s) - 1) == 0)


static ngx_http_ai_endpoint_t  ngx_http_ai_endpoints[] = {
    { ngx_string("/chat/completions"), NGX_HTTP_AI_EP_CHAT,
      NGX_HTTP_AI_FMT_OPENAI },
    { ngx_string("/embeddings"), NGX_HTTP_AI_EP_EMBEDDINGS,
      NGX_HTTP_AI_FMT_OPENAI },
    { ngx_string("/models"), NGX_HTTP_AI_EP_MODELS,
      NGX_HTTP_AI_FMT_OPENAI },
    { ngx_string("/messages"), NGX_HTTP_AI_EP_MESSAGES,
      NGX_HTTP_AI_FMT_ANTHROPIC },
    { ngx_string("/messages/count_tokens"), NGX_HTTP_AI_EP_COUNT_TOKENS,
      NGX_HTTP_AI_FMT_ANTHROPIC },
    { ngx_string(":generateContent"), NGX_HTTP_AI_EP_GEMINI,
      NGX_HTTP_AI_FMT_GEMINI },
    { ngx_string(":streamGenerateContent"), NGX_HTTP_AI_EP_GEMINI,
      NGX_HTTP_AI_FMT_GEMINI },
    { ngx_string("/responses"), NGX_HTTP_AI_EP_RESPONSES,
      NGX_HTTP_AI_FMT_RESPONSES },
    { ngx_null_string, 0, 0 }
};


static ngx_str_t  ngx_http_ai_format_names[] = {
    ngx_string("openai"),
    ngx_string("anthropic"),
    ngx_string("gemini"),
    ngx_string("responses")
};


ngx_str_t *
ngx_http_ai_format_name(ngx_uint_t format)
{
    return &ngx_http_ai_format_names[format];
}


ngx_uint_t
ngx_http_ai_endpoint(ngx_str_t *uri, ngx_uint_t *format)
{
    size_t                   len;
    u_char                  *p, *last;
    ngx_http_ai_endpoint_t  *ep;

    len = uri->len;
    last = uri->data + len;

    /* a trailing slash is forgiven, as the providers do */
    if (len > 1 && last[-1] == '/') {
        last--;
        len--;
    }

    for (ep = ngx_http_ai_endpoints; ep->suffix.len; ep++) {
        if (len >= ep->suffix.len
            && ngx_strncmp(last - ep->suffix.len, ep->suffix.data,
                           ep->suffix.len)
               == 0)
        {
            if (ep->endpoint == NGX_HTTP_AI_EP_GEMINI) {
                /* only .../models/{model}:generateContent is Gemini's */

                last -= ep->suffix.len;

                for (p = last; p > uri->data && p[-1] != '/'; p--) {
                    /* void */
                }

                if (p == last || p - uri->data < 8
                    || ngx_strncmp(p - 8, "/models/", 8) != 0)
                {
                    break;
                }
            }

            *format = ep->format;
            return ep->endpoint;
        }
    }

    /* GET .../models/{id} */

    for (p = last; p > uri->data && p[-1] != '/'; p--) { /* void */ }

    /* GET, DELETE .../responses/{id} */

    if (p - uri->data > 11 && p < last
        && ngx_strncmp(p - 11, "/responses/", 11) == 0)
    {
        *format = NGX_HTTP_AI_FMT_RESPONSES;
        return NGX_HTTP_AI_EP_RESPONSE;
    }

    if (p - uri->data > 8 && p < last
        && ngx_strncmp(p - 8, "/models/", 8) == 0)
    {
        *format = NGX_HTTP_AI_FMT_OPENAI;
        return NGX_HTTP_AI_EP_MODELS;
    }

    *format = NGX_HTTP_AI_FMT_OPENAI;

    return NGX_HTTP_AI_EP_UNKNOWN;
}


ngx_int_t
ngx_http_ai_parse_request(ngx_pool_t *pool, ngx_http_ai_request_t *req,
    ngx_str_t *model_from_uri, const char **param, ngx_str_t *err)
{
    cJSON                  *json, *item;
    u_char                 *p;
    ngx_str_t               user;
    const char             *end;
    ngx_int_t               rc;
    ngx_uint_t              stream;
    ngx_http_ai_request_t   saved;

    ngx_str_null(&user);

    if (req->endpoint == NGX_HTTP_AI_EP_CHAT) {
        /*
         * the common shape of a chat request is read without a tree: a
         * NUL byte it refuses as any byte JSON does not allow there, a
         * \u0000 escape in the strings with an escape it reads or skips
         */

        saved = *req;

        rc = ngx_http_ai_chat_text(pool, req, &user);

        if (rc == NGX_OK) {
            req->pool = pool;
            req->lazy = 1;
            goto parsed;
        }

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        /* any other: the tree reads it, and says what is wrong */

        *req = saved;
        ngx_str_null(&user);
    }

    if (ngx_http_ai_has_nul(&req->body)) {
        ngx_str_set(err, "the request body contains a NUL character "
                         "(\\u0000), which is not accepted");
        return NGX_DECLINED;
    }

    end = NULL;

    json = ngx_http_ai_json_parse(pool, &req->body, &end);

    if (json == NULL) {
        if (end == NULL) {
            end = cJSON_GetErrorPtr();
        }

        err->data = ngx_pnalloc(pool, 80);
        if (err->data == NULL) {
            return NGX_ERROR;
        }

        err->len = ngx_snprintf(err->data, 80,
                                "the request body is not valid JSON "
                                "(error at byte %uz)",
                                (end && (u_char *) end >= req->body.data
                                 && (u_char *) end
                                    <= req->body.data + req->body.len)
                                ? (size_t) ((u_char *) end - req->body.data)
                                : req->body.len)
                   - err->data;
        return NGX_DECLINED;
    }

    req->json = json;

    if (end && (u_char *) end < req->body.data + req->body.len) {
        /* trailing bytes after the value: only white space is allowed */

        while ((u_char *) end < req->body.data + req->body.len) {
            if (*end != ' ' && *end != '\t' && *end != '\r' && *end != '\n'
                && *end != '\0')
            {
                ngx_str_set(err, "the request body is not valid JSON "
                                 "(unexpected data after the object)");
                return NGX_DECLINED;
            }

            end++;
        }
    }

    if (!cJSON_IsObject(json)) {
        ngx_str_set(err, "the request body must be a JSON object");
        return NGX_DECLINED;
    }

    if (ngx_http_ai_unique(json, ngx_http_ai_request_fields, param, err)
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    if (ngx_array_init(&req->messages, pool, 4,
                       sizeof(ngx_http_ai_message_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    stream = 0;

    if (ngx_http_ai_get_bool(json, "stream", &stream, param, err) != NGX_OK) {
        return NGX_DECLINED;
    }

    req->stream = stream;

    switch (req->endpoint) {

    case NGX_HTTP_AI_EP_CHAT:
        rc = ngx_http_ai_parse_chat(pool, req, param, err);
        break;

    case NGX_HTTP_AI_EP_EMBEDDINGS:
        rc = ngx_http_ai_parse_embeddings(req, param, err);
        break;

    case NGX_HTTP_AI_EP_MESSAGES:
    case NGX_HTTP_AI_EP_COUNT_TOKENS:
        rc = ngx_http_ai_parse_anthropic(pool, req, param, err);
        break;

    case NGX_HTTP_AI_EP_GEMINI:
        if (model_from_uri) {
            req->model = *model_from_uri;
        }

        rc = ngx_http_ai_parse_gemini(pool, req, param, err);
        break;

    case NGX_HTTP_AI_EP_RESPONSES:
        rc = ngx_http_ai_parse_responses(pool, req, param, err);
        break;

    default:
        rc = NGX_OK;
    }

    if (rc != NGX_OK) {
        return rc;
    }

    if (req->format == NGX_HTTP_AI_FMT_ANTHROPIC) {
        item = ngx_http_ai_json_item(ngx_http_ai_json_item(json, "metadata"),
                                     "user_id");

    } else {
        item = ngx_http_ai_json_item(json, "user");
    }

    if (cJSON_IsString(item) && item->valuestring) {
        user.data = (u_char *) item->valuestring;
        user.len = ngx_strlen(item->valuestring);
    }

parsed:

    /*
     * the model and the user outlive the tree, which a stream frees at
     * its header (ngx_http_ai_request_keep()): modules keep them by value
     */

    if (req->model.len) {
        p = ngx_pnalloc(pool, req->model.len + 1);
        if (p == NULL) {
            return NGX_ERROR;
        }

        *ngx_cpymem(p, req->model.data, req->model.len) = '\0';
        req->model.data = p;
    }

    if (user.len) {
        /* a client's string: its first 256 bytes */

        req->user.len = ngx_min(user.len, 256);

        req->user.data = ngx_pnalloc(pool, req->user.len);
        if (req->user.data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(req->user.data, user.data, req->user.len);
    }

    req->parsed = 1;

    return NGX_OK;
}


cJSON *
ngx_http_ai_request_tree(ngx_http_ai_request_t *req)
{
    cJSON                  *json, *msg;
    ngx_uint_t              i;
    ngx_http_ai_message_t  *m;

    if (!req->lazy) {
        return req->json;
    }

    req->lazy = 0;

    /* the text was read whole and strictly: the tree is built at once */

    json = ngx_http_ai_json_parse_checked(req->pool, &req->body);
    if (json == NULL) {
        return NULL;
    }

    req->json = json;

    /* the messages, one for each of the view's, in order */

    msg = ngx_http_ai_json_item(json, "messages");
    msg = msg ? msg->child : NULL;

    m = req->messages.elts;

    for (i = 0; i < req->messages.nelts && msg; i++, msg = msg->next) {
        m[i].json = msg;
    }

    return json;
}


/*
 * A message's role, once accepted: a literal (a copy, for one no door
 * names), so that it outlives the tree too
 */

static ngx_int_t
ngx_http_ai_role_own(ngx_pool_t *pool, ngx_str_t *role)
{
    u_char      *p;
    ngx_uint_t   i;

    for (i = 0; i < sizeof(ngx_http_ai_roles) / sizeof(ngx_str_t); i++) {
        if (role->len == ngx_http_ai_roles[i].len
            && ngx_strncmp(role->data, ngx_http_ai_roles[i].data, role->len)
               == 0)
        {
            role->data = ngx_http_ai_roles[i].data;
            return NGX_OK;
        }
    }

    p = ngx_pnalloc(pool, role->len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    *ngx_cpymem(p, role->data, role->len) = '\0';
    role->data = p;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_parse_chat(ngx_pool_t *pool, ngx_http_ai_request_t *req,
    const char **param, ngx_str_t *err)
{
    cJSON                  *json, *messages, *msg, *so, *tools;
    ngx_uint_t              include;
    ngx_http_ai_message_t  *m;

    json = req->json;

    if (ngx_http_ai_get_string(json, "model", 1, &req->model, param, err)
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    messages = ngx_http_ai_json_item(json, "messages");

    if (messages == NULL) {
        return ngx_http_ai_invalid(err, param, "messages",
                                   "'messages' is required");
    }

    if (!cJSON_IsArray(messages)) {
        return ngx_http_ai_invalid(err, param, "messages",
                                   "'messages' must be an array");
    }

    if (cJSON_GetArraySize(messages) == 0) {
        return ngx_http_ai_invalid(err, param, "messages",
                                   "'messages' must not be empty");
    }

    cJSON_ArrayForEach(msg, messages) {

        if (!cJSON_IsObject(msg)) {
            return ngx_http_ai_invalid(err, param, "messages",
                                       "each message must be an object");
        }

        m = ngx_array_push(&req->messages);
        if (m == NULL) {
            return NGX_ERROR;
        }

        ngx_memzero(m, sizeof(ngx_http_ai_message_t));
        m->json = msg;

        if (ngx_http_ai_unique(msg, ngx_http_ai_message_fields, param, err)
            != NGX_OK)
        {
            *param = (req->endpoint == NGX_HTTP_AI_EP_GEMINI) ? "contents"
                                                              : "messages";
            return NGX_DECLINED;
        }

        if (ngx_http_ai_get_string(msg, "role", 1, &m->role, param, err)
            != NGX_OK)
        {
            *param = "messages";
            return NGX_DECLINED;
        }

        if (!((m->role.len == 4 && ngx_strncmp(m->role.data, "user", 4) == 0)
              || (m->role.len == 6
                  && ngx_strncmp(m->role.data, "system", 6) == 0)
              || (m->role.len == 9
                  && ngx_strncmp(m->role.data, "assistant", 9) == 0)
              || (m->role.len == 4
                  && ngx_strncmp(m->role.data, "tool", 4) == 0)
              || (m->role.len == 9
                  && ngx_strncmp(m->role.data, "developer", 9) == 0)
              || (m->role.len == 8
                  && ngx_strncmp(m->role.data, "function", 8) == 0)))
        {
            return ngx_http_ai_invalid(err, param, "messages",
                                       "a message has an unknown 'role': "
                                       "expected system, developer, user, "
                                       "assistant or tool");
        }

        if (ngx_http_ai_role_own(pool, &m->role) != NGX_OK) {
            return NGX_ERROR;
        }

        if (ngx_http_ai_content(pool, ngx_http_ai_json_item(msg, "content"),
                                m, "text", param, err)
            != NGX_OK)
        {
            return NGX_DECLINED;
        }

        if (ngx_http_ai_json_item(msg, "tool_calls")) {
            m->tool_calls = 1;
        }

        req->text_len += m->text.len;
    }

    if (ngx_http_ai_get_int(json, "max_completion_tokens", &req->max_tokens,
                            param, err)
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    if (req->max_tokens == NGX_HTTP_AI_UNSET
        && ngx_http_ai_get_int(json, "max_tokens", &req->max_tokens, param,
                               err)
           != NGX_OK)
    {
        return NGX_DECLINED;
    }

    so = ngx_http_ai_json_item(json, "stream_options");

    req->options = (so != NULL);

    if (so && !cJSON_IsNull(so)) {
        if (!cJSON_IsObject(so)) {
            return ngx_http_ai_invalid(err, param, "stream_options",
                                       "'stream_options' must be an object");
        }

        include = 0;

        if (ngx_http_ai_unique(so, ngx_http_ai_option_fields, param, err)
            != NGX_OK)
        {
            *param = "stream_options";
            return NGX_DECLINED;
        }

        if (ngx_http_ai_get_bool(so, "include_usage", &include, param, err)
            != NGX_OK)
        {
            *param = "stream_options";
            return NGX_DECLINED;
        }

        req->include_usage = include;
    }

    tools = ngx_http_ai_json_item(json, "tools");

    if (tools && !cJSON_IsNull(tools)) {
        if (!cJSON_IsArray(tools)) {
            return ngx_http_ai_invalid(err, param, "tools",
                                       "'tools' must be an array");
        }

        req->tools = cJSON_GetArraySize(tools) > 0;
    }

    return NGX_OK;
}


/*
 * A chat request read from its text in one strict pass, without a tree:
 * the view ngx_http_ai_parse_chat() gives, but for req->json and each
 * message's json, which ngx_http_ai_request_tree() builds if a module
 * asks for them; a text without an escape points into the body.  It takes
 * the shape clients send: NGX_DECLINED for anything else (not JSON, a
 * field of another type, a key with an escape, a duplicate, nesting
 * deeper than NGX_HTTP_AI_CHAT_DEPTH, many text parts), which the tree
 * reads then, saying what is wrong; so that what is accepted here is
 * what the tree accepts, and reads the same.
 */

static ngx_int_t
ngx_http_ai_chat_text(ngx_pool_t *pool, ngx_http_ai_request_t *req,
    ngx_str_t *user)
{
    u_char                   *p, *q, *end;
    uint32_t                  seen;
    ngx_int_t                 rc, max_tokens, max_completion;
    ngx_str_t                 key;
    ngx_uint_t                escaped, user_seen;
    ngx_http_ai_json_iter_t   it;

    end = req->body.data + req->body.len;

    p = ngx_http_ai_json_space(req->body.data, end);

    if (ngx_http_ai_json_object(&it, p, end) != NGX_OK) {
        return NGX_DECLINED;
    }

    if (ngx_array_init(&req->messages, pool, 4,
                       sizeof(ngx_http_ai_message_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    seen = 0;
    user_seen = 0;
    max_tokens = NGX_HTTP_AI_UNSET;
    max_completion = NGX_HTTP_AI_UNSET;

    /* bare till a member the view does not hold comes */
    req->bare = 1;

    for ( ;; ) {

        rc = ngx_http_ai_json_next_key(&it, &key);

        if (rc == NGX_DONE) {
            break;
        }

        if (rc != NGX_OK
            || ngx_http_ai_text_field(&key, ngx_http_ai_request_fields,
                                      &seen)
               != NGX_OK)
        {
            return NGX_DECLINED;
        }

        p = it.pos;

        if (p >= end) {
            return NGX_DECLINED;
        }

        if (ngx_http_ai_key_is(&key, "model")) {
            p = ngx_http_ai_text_string(p, end, &req->model, &escaped);

            if (p == NULL || escaped || req->model.len == 0) {
                return NGX_DECLINED;
            }

        } else if (ngx_http_ai_key_is(&key, "messages")) {
            rc = ngx_http_ai_chat_messages(pool, req, &p, end);

            if (rc != NGX_OK) {
                return rc;
            }

        } else if (ngx_http_ai_key_is(&key, "stream")) {
            if (*p == 't') {
                req->stream = 1;

            } else if (*p != 'f' && *p != 'n') {
                return NGX_DECLINED;
            }

            p = ngx_http_ai_json_skip(p, end, 1, 1);

        } else if (ngx_http_ai_key_is(&key, "stream_options")) {
            req->options = 1;
            p = ngx_http_ai_chat_options(req, p, end);

        } else if (ngx_http_ai_key_is(&key, "max_tokens")) {
            req->bare &= (*p != 'n');
            p = ngx_http_ai_chat_int(p, end, &max_tokens);

        } else if (ngx_http_ai_key_is(&key, "max_completion_tokens")) {
            req->bare &= (*p != 'n');
            p = ngx_http_ai_chat_int(p, end, &max_completion);

        } else if (ngx_http_ai_key_is(&key, "tools")) {
            req->bare = 0;

            if (*p == '[') {
                q = ngx_http_ai_json_space(p + 1, end);
                req->tools = (q < end && *q != ']');

            } else if (*p != 'n') {
                return NGX_DECLINED;
            }

            p = ngx_http_ai_text_skip(p, end, NGX_HTTP_AI_CHAT_DEPTH - 1);

        } else if (ngx_http_ai_key_is(&key, "user") && !user_seen) {
            /* the first "user", as the tree's lookup finds it */

            user_seen = 1;

            if (*p == '"') {
                p = ngx_http_ai_text_string(p, end, user, &escaped);

                if (p == NULL || escaped) {
                    return NGX_DECLINED;
                }

            } else {
                req->bare = 0;
                p = ngx_http_ai_text_skip(p, end, NGX_HTTP_AI_CHAT_DEPTH - 1);
            }

        } else {
            req->bare = 0;
            p = ngx_http_ai_text_skip(p, end, NGX_HTTP_AI_CHAT_DEPTH - 1);
        }

        if (p == NULL || ngx_http_ai_json_after(&it, p) != NGX_OK) {
            return NGX_DECLINED;
        }
    }

    /* the object's end, then white space only */

    if (ngx_http_ai_json_space(it.pos + 1, end) != end
        || req->model.len == 0 || req->messages.nelts == 0)
    {
        return NGX_DECLINED;
    }

    req->max_tokens = (max_completion != NGX_HTTP_AI_UNSET) ? max_completion
                                                           : max_tokens;

    if (max_completion != NGX_HTTP_AI_UNSET && max_tokens != NGX_HTTP_AI_UNSET)
    {
        /* a key keeps one of them, the view the other */
        req->bare = 0;
    }

    return NGX_OK;
}


/* the messages at *pp, an array of one message at least */

static ngx_int_t
ngx_http_ai_chat_messages(ngx_pool_t *pool, ngx_http_ai_request_t *req,
    u_char **pp, u_char *end)
{
    u_char                 *p;
    ngx_int_t               rc;
    ngx_uint_t              bare;
    ngx_http_ai_message_t  *m;

    p = *pp;

    if (*p != '[') {
        return NGX_DECLINED;
    }

    bare = 1;

    p = ngx_http_ai_json_space(p + 1, end);

    for ( ;; ) {

        if (p >= end || *p != '{') {
            return NGX_DECLINED;
        }

        if (req->messages.nelts < req->messages.nalloc) {
            /* ngx_array_push() inline, but when it grows */
            m = (ngx_http_ai_message_t *) req->messages.elts
                + req->messages.nelts++;

        } else {
            m = ngx_array_push(&req->messages);
            if (m == NULL) {
                return NGX_ERROR;
            }
        }

        ngx_memzero(m, sizeof(ngx_http_ai_message_t));

        rc = ngx_http_ai_chat_compact(pool, m, &p, end);

        if (rc == NGX_DECLINED) {
            ngx_memzero(m, sizeof(ngx_http_ai_message_t));
            rc = ngx_http_ai_chat_message(pool, m, &p, end, &bare);
        }

        if (rc != NGX_OK) {
            return rc;
        }

        req->text_len += m->text.len;

        p = ngx_http_ai_json_space(p, end);

        if (p >= end) {
            return NGX_DECLINED;
        }

        if (*p == ']') {
            req->bare &= bare;
            *pp = p + 1;
            return NGX_OK;
        }

        if (*p != ',') {
            return NGX_DECLINED;
        }

        p = ngx_http_ai_json_space(p + 1, end);
    }
}


/*
 * A message as clients most often write it, {"role":"R","content":"..."}
 * without white space, read without the iterator: what the general
 * reading gives for it, *bare unchanged; NGX_DECLINED, *pp unchanged, for
 * any other, which the general reading reads from the same place
 */

static ngx_int_t
ngx_http_ai_chat_compact(ngx_pool_t *pool, ngx_http_ai_message_t *m,
    u_char **pp, u_char *end)
{
    u_char     *p;
    ngx_int_t   rc;
    ngx_str_t  *role;

    static const char  head[] = "{\"role\":\"";
    static const char  middle[] = "\",\"content\":\"";

    p = *pp;

    if ((size_t) (end - p) < sizeof(head) - 1 + sizeof(middle) - 1 + 4
        || ngx_memcmp(p, head, sizeof(head) - 1) != 0)
    {
        return NGX_DECLINED;
    }

    p += sizeof(head) - 1;

    /* the chat roles differ in their first letters */

    for (role = ngx_http_ai_roles;
         role < ngx_http_ai_roles + NGX_HTTP_AI_CHAT_ROLES;
         role++)
    {
        if (role->data[0] == *p) {
            break;
        }
    }

    if (role == ngx_http_ai_roles + NGX_HTTP_AI_CHAT_ROLES
        || (size_t) (end - p) <= role->len + sizeof(middle) - 1
        || ngx_memcmp(p, role->data, role->len) != 0
        || ngx_memcmp(p + role->len, middle, sizeof(middle) - 1) != 0)
    {
        return NGX_DECLINED;
    }

    /* at the content's opening quote */

    p += role->len + sizeof(middle) - 2;

    rc = ngx_http_ai_chat_content(pool, m, &p, end);

    if (rc != NGX_OK) {
        return rc;
    }

    if (p >= end || *p != '}') {
        return NGX_DECLINED;
    }

    m->role = *role;
    *pp = p + 1;

    return NGX_OK;
}


/*
 * a message, the object at *pp: its role, its text, its tool calls; *bare
 * cleared unless it holds a role and a string content only
 */

static ngx_int_t
ngx_http_ai_chat_message(ngx_pool_t *pool, ngx_http_ai_message_t *m,
    u_char **pp, u_char *end, ngx_uint_t *bare)
{
    u_char                   *p;
    uint32_t                  seen;
    ngx_int_t                 rc;
    ngx_str_t                 key, role;
    ngx_uint_t                i, escaped, content;
    ngx_http_ai_json_iter_t   it;

    if (ngx_http_ai_json_object(&it, *pp, end) != NGX_OK) {
        return NGX_DECLINED;
    }

    seen = 0;
    content = 0;

    for ( ;; ) {

        rc = ngx_http_ai_json_next_key(&it, &key);

        if (rc == NGX_DONE) {
            break;
        }

        if (rc != NGX_OK) {
            return NGX_DECLINED;
        }

        p = it.pos;

        /* each of the message's fields once: its own, then the others */

        if (ngx_http_ai_key_is(&key, "role")) {
            if (m->role.len) {
                return NGX_DECLINED;
            }

            p = ngx_http_ai_text_string(p, end, &role, &escaped);

            if (p == NULL || escaped) {
                return NGX_DECLINED;
            }

            /* the chat roles differ in their first letters */

            for (i = 0; i < NGX_HTTP_AI_CHAT_ROLES; i++) {
                if (role.len == ngx_http_ai_roles[i].len
                    && role.data[0] == ngx_http_ai_roles[i].data[0]
                    && ngx_memcmp(role.data, ngx_http_ai_roles[i].data,
                                  role.len)
                       == 0)
                {
                    m->role = ngx_http_ai_roles[i];
                    break;
                }
            }

            if (i == NGX_HTTP_AI_CHAT_ROLES) {
                return NGX_DECLINED;
            }

        } else if (ngx_http_ai_key_is(&key, "content")) {
            if (content) {
                return NGX_DECLINED;
            }

            content = 1;

            if (p >= end || *p != '"') {
                *bare = 0;
            }

            rc = ngx_http_ai_chat_content(pool, m, &p, end);

            if (rc != NGX_OK) {
                return rc;
            }

        } else if (ngx_http_ai_key_is(&key, "tool_calls")) {
            if (m->tool_calls) {
                return NGX_DECLINED;
            }

            m->tool_calls = 1;
            *bare = 0;

            p = ngx_http_ai_text_skip(p, end, NGX_HTTP_AI_CHAT_DEPTH - 3);

        } else {
            if (ngx_http_ai_text_field(&key, ngx_http_ai_message_fields,
                                       &seen)
                != NGX_OK)
            {
                return NGX_DECLINED;
            }

            *bare = 0;

            p = ngx_http_ai_text_skip(p, end, NGX_HTTP_AI_CHAT_DEPTH - 3);
        }

        if (p == NULL || ngx_http_ai_json_after(&it, p) != NGX_OK) {
            return NGX_DECLINED;
        }
    }

    if (m->role.len == 0) {
        return NGX_DECLINED;
    }

    if (!content) {
        *bare = 0;
    }

    *pp = it.pos + 1;

    return NGX_OK;
}


/*
 * A message's content at *pp: null, a string, or parts, whose texts are
 * joined by LF as ngx_http_ai_content() joins them
 */

static ngx_int_t
ngx_http_ai_chat_content(ngx_pool_t *pool, ngx_http_ai_message_t *m,
    u_char **pp, u_char *end)
{
    u_char                   *p, *o;
    size_t                    len;
    uint32_t                  seen;
    ngx_int_t                 rc;
    ngx_str_t                 key, type, texts[NGX_HTTP_AI_CHAT_PARTS];
    ngx_uint_t                i, n, escaped, any_escaped, image;
    ngx_http_ai_json_iter_t   it;

    static const char  *part_fields[] = {
        "text", "type", NULL
    };

    p = *pp;

    if (p >= end) {
        return NGX_DECLINED;
    }

    if (*p == 'n') {
        *pp = ngx_http_ai_json_skip(p, end, 1, 1);
        return NGX_OK;
    }

    if (*p == '"') {
        p = ngx_http_ai_text_string(p, end, &m->text, &escaped);

        if (p == NULL) {
            return NGX_DECLINED;
        }

        if (escaped) {
            o = ngx_pnalloc(pool, m->text.len);
            if (o == NULL) {
                return NGX_ERROR;
            }

            m->text.len = ngx_http_ai_json_unescape(o, m->text.data,
                                                    m->text.data
                                                    + m->text.len)
                          - o;
            m->text.data = o;

        } else {
            m->plain = 1;
        }

        m->nparts = 1;
        *pp = p;

        return NGX_OK;
    }

    if (*p != '[') {
        return NGX_DECLINED;
    }

    /* the parts: each an object; the texts noted, then joined */

    n = 0;
    len = 0;
    any_escaped = 0;

    p = ngx_http_ai_json_space(p + 1, end);

    while (p < end && *p != ']') {

        if (ngx_http_ai_json_object(&it, p, end) != NGX_OK) {
            return NGX_DECLINED;
        }

        m->nparts++;

        seen = 0;
        image = 0;
        ngx_str_null(&type);

        for ( ;; ) {

            rc = ngx_http_ai_json_next_key(&it, &key);

            if (rc == NGX_DONE) {
                break;
            }

            if (rc != NGX_OK
                || ngx_http_ai_text_field(&key, part_fields, &seen)
                   != NGX_OK)
            {
                return NGX_DECLINED;
            }

            p = it.pos;

            if (p >= end) {
                return NGX_DECLINED;
            }

            if (ngx_http_ai_key_is(&key, "text")) {
                if (n == NGX_HTTP_AI_CHAT_PARTS) {
                    return NGX_DECLINED;
                }

                p = ngx_http_ai_text_string(p, end, &texts[n], &escaped);

                if (p == NULL) {
                    return NGX_DECLINED;
                }

                len += texts[n].len + 1;
                any_escaped |= escaped;
                n++;

            } else if (ngx_http_ai_key_is(&key, "type") && *p == '"') {
                p = ngx_http_ai_text_string(p, end, &type, &escaped);

                if (p == NULL || escaped) {
                    return NGX_DECLINED;
                }

            } else {
                image |= ngx_http_ai_key_is(&key, "image_url")
                         || ngx_http_ai_key_is(&key, "inlineData")
                         || ngx_http_ai_key_is(&key, "inline_data");

                p = ngx_http_ai_text_skip(p, end, NGX_HTTP_AI_CHAT_DEPTH - 5);
            }

            if (p == NULL || ngx_http_ai_json_after(&it, p) != NGX_OK) {
                return NGX_DECLINED;
            }
        }

        /* a part with a text is a text, whatever else it holds */

        if (!(seen & 1)
            && (image || (type.len == 5
                          && ngx_strncmp(type.data, "image", 5) == 0)))
        {
            m->images = 1;
        }

        p = ngx_http_ai_json_space(it.pos + 1, end);

        if (p < end && *p == ',') {
            p = ngx_http_ai_json_space(p + 1, end);

            if (p < end && *p == ']') {
                return NGX_DECLINED;
            }

        } else if (p >= end || *p != ']') {
            return NGX_DECLINED;
        }
    }

    if (p >= end) {
        return NGX_DECLINED;
    }

    *pp = p + 1;

    if (n == 1 && !any_escaped) {
        m->text = texts[0];
        m->plain = 1;
        return NGX_OK;
    }

    if (n == 0) {
        return NGX_OK;
    }

    o = ngx_pnalloc(pool, len);
    if (o == NULL) {
        return NGX_ERROR;
    }

    m->text.data = o;

    for (i = 0; i < n; i++) {
        if (o != m->text.data) {
            /* as the tree's join: between texts, after a first not empty */
            *o++ = LF;
        }

        o = ngx_http_ai_json_unescape(o, texts[i].data,
                                      texts[i].data + texts[i].len);
    }

    m->text.len = o - m->text.data;

    return NGX_OK;
}


/* stream_options at p: null, or an object; its include_usage */

static u_char *
ngx_http_ai_chat_options(ngx_http_ai_request_t *req, u_char *p, u_char *end)
{
    uint32_t                  seen;
    ngx_int_t                 rc;
    ngx_str_t                 key;
    ngx_http_ai_json_iter_t   it;

    if (*p == 'n') {
        return ngx_http_ai_json_skip(p, end, 1, 1);
    }

    if (ngx_http_ai_json_object(&it, p, end) != NGX_OK) {
        return NULL;
    }

    seen = 0;

    for ( ;; ) {

        rc = ngx_http_ai_json_next_key(&it, &key);

        if (rc == NGX_DONE) {
            return it.pos + 1;
        }

        if (rc != NGX_OK
            || ngx_http_ai_text_field(&key, ngx_http_ai_option_fields, &seen)
               != NGX_OK)
        {
            return NULL;
        }

        p = it.pos;

        if (p >= end) {
            return NULL;
        }

        if (ngx_http_ai_key_is(&key, "include_usage")) {
            if (*p == 't') {
                req->include_usage = 1;

            } else if (*p != 'f' && *p != 'n') {
                return NULL;
            }

            p = ngx_http_ai_json_skip(p, end, 1, 1);

        } else {
            p = ngx_http_ai_text_skip(p, end, NGX_HTTP_AI_CHAT_DEPTH - 2);
        }

        if (p == NULL || ngx_http_ai_json_after(&it, p) != NGX_OK) {
            return NULL;
        }
    }
}


/*
 * a token count at p: null (left unset), or an integer in [0, 2^31 - 1]
 * read as ngx_http_ai_get_int() reads it; NULL for anything else
 */

static u_char *
ngx_http_ai_chat_int(u_char *p, u_char *end, ngx_int_t *value)
{
    u_char  *q;
    double   d;

    q = ngx_http_ai_json_skip(p, end, 1, 1);

    if (q == NULL || *p == 'n') {
        return q;
    }

    if (*p != '-' && (*p < '0' || *p > '9')) {
        return NULL;
    }

    d = ngx_http_ai_json_double(p, q - p);

    if (!(d >= 0) || d > (double) NGX_MAX_INT32_VALUE
        || d != (double) (ngx_int_t) d)
    {
        return NULL;
    }

    *value = (ngx_int_t) d;

    return q;
}


/*
 * The string at p, checked strictly: its bytes between the quotes in *s,
 * and *escaped if it has an escape to decode; the byte after it, or NULL
 * if it is no valid string
 */

static u_char *
ngx_http_ai_text_string(u_char *p, u_char *end, ngx_str_t *s,
    ngx_uint_t *escaped)
{
    u_char    *q;
#if (NGX_HTTP_AI_JSON_SSE2)
    unsigned   mask;
#endif

    if (p >= end || *p != '"') {
        return NULL;
    }

    s->data = p + 1;
    *escaped = 0;

#if (NGX_HTTP_AI_JSON_SSE2)

    if (end - p > 16) {
        /* ngx_http_ai_json_short(), and the bytes it read not again */

        mask = ngx_http_ai_json_special16(p + 1);

        if (mask == 0) {
            q = ngx_http_ai_json_plain(p + 17, end);

        } else {
            q = p + 1 + __builtin_ctz(mask);
        }

    } else {
        q = ngx_http_ai_json_plain(p + 1, end);
    }

#else
    q = ngx_http_ai_json_plain(p + 1, end);
#endif

    if (q < end && *q == '"') {
        s->len = q - s->data;
        return q + 1;
    }

    if (q >= end || *q != '\\') {
        return NULL;
    }

    /* an escape: the string checked whole, from its quote */

    q = ngx_http_ai_json_skip(p, end, 1, 1);

    if (q == NULL || ngx_http_ai_nul_escape(p, q)) {
        return NULL;
    }

    s->len = q - 1 - s->data;
    *escaped = 1;

    return q;
}


/*
 * The value at p skipped, checked strictly; NULL if it is not one, or if
 * it holds a \u0000 escape (which the tree's reading refuses)
 */

static u_char *
ngx_http_ai_text_skip(u_char *p, u_char *end, ngx_uint_t depth)
{
    u_char  *q;

    q = ngx_http_ai_json_skip(p, end, depth, 1);

    if (q == NULL || ngx_http_ai_nul_escape(p, q)) {
        return NULL;
    }

    return q;
}


/*
 * A key of an object against the fields that may appear once in it:
 * NGX_DECLINED if it is one of them and came before (*seen has a bit for
 * each)
 */

static ngx_int_t
ngx_http_ai_text_field(ngx_str_t *key, const char **names, uint32_t *seen)
{
    size_t      j;
    ngx_uint_t  i;

    for (i = 0; names[i]; i++) {

        if ((u_char) names[i][0] != key->data[0]) {
            continue;
        }

        /* a name's NUL differs from any byte of a key without one */

        for (j = 1; j < key->len && (u_char) names[i][j] == key->data[j];
             j++)
        {
            /* void */
        }

        if (j == key->len && names[i][j] == '\0') {
            if (*seen & (1u << i)) {
                return NGX_DECLINED;
            }

            *seen |= 1u << i;
            break;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_parse_embeddings(ngx_http_ai_request_t *req, const char **param,
    ngx_str_t *err)
{
    cJSON  *input, *item;

    if (ngx_http_ai_get_string(req->json, "model", 1, &req->model, param,
                               err)
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    input = ngx_http_ai_json_item(req->json, "input");

    if (input == NULL) {
        return ngx_http_ai_invalid(err, param, "input",
                                   "'input' is required");
    }

    if (cJSON_IsString(input)) {
        req->text_len = ngx_strlen(input->valuestring);
        return NGX_OK;
    }

    if (!cJSON_IsArray(input)) {
        return ngx_http_ai_invalid(err, param, "input",
                                   "'input' must be a string or an array");
    }

    cJSON_ArrayForEach(item, input) {
        if (cJSON_IsString(item)) {
            req->text_len += ngx_strlen(item->valuestring);

        } else if (cJSON_IsNumber(item) || cJSON_IsArray(item)) {
            /* token ids: counted as one byte each for estimators */
            req->text_len++;

        } else {
            return ngx_http_ai_invalid(err, param, "input",
                                       "'input' items must be strings or "
                                       "token arrays");
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_parse_anthropic(ngx_pool_t *pool, ngx_http_ai_request_t *req,
    const char **param, ngx_str_t *err)
{
    cJSON                  *json, *messages, *msg, *system, *tools;
    ngx_http_ai_message_t  *m, sys;

    json = req->json;

    if (ngx_http_ai_get_string(json, "model", 1, &req->model, param, err)
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    if (ngx_http_ai_get_int(json, "max_tokens", &req->max_tokens, param, err)
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    if (req->max_tokens == NGX_HTTP_AI_UNSET
        && req->endpoint == NGX_HTTP_AI_EP_MESSAGES)
    {
        /* count_tokens takes a message without it */
        return ngx_http_ai_invalid(err, param, "max_tokens",
                                   "'max_tokens' is required");
    }

    system = ngx_http_ai_json_item(json, "system");

    if (system && !cJSON_IsNull(system)) {
        ngx_memzero(&sys, sizeof(ngx_http_ai_message_t));

        if (ngx_http_ai_content(pool, system, &sys, "text", param, err)
            != NGX_OK)
        {
            *param = "system";
            return NGX_DECLINED;
        }

        req->system = sys.text;
        req->text_len += sys.text.len;
    }

    messages = ngx_http_ai_json_item(json, "messages");

    if (messages == NULL) {
        return ngx_http_ai_invalid(err, param, "messages",
                                   "'messages' is required");
    }

    if (!cJSON_IsArray(messages)) {
        return ngx_http_ai_invalid(err, param, "messages",
                                   "'messages' must be an array");
    }

    cJSON_ArrayForEach(msg, messages) {

        if (!cJSON_IsObject(msg)) {
            return ngx_http_ai_invalid(err, param, "messages",
                                       "each message must be an object");
        }

        m = ngx_array_push(&req->messages);
        if (m == NULL) {
            return NGX_ERROR;
        }

        ngx_memzero(m, sizeof(ngx_http_ai_message_t));
        m->json = msg;

        if (ngx_http_ai_unique(msg, ngx_http_ai_message_fields, param, err)
            != NGX_OK)
        {
            *param = (req->endpoint == NGX_HTTP_AI_EP_GEMINI) ? "contents"
                                                              : "messages";
            return NGX_DECLINED;
        }

        if (ngx_http_ai_get_string(msg, "role", 1, &m->role, param, err)
            != NGX_OK)
        {
            *param = "messages";
            return NGX_DECLINED;
        }

        if (!((m->role.len == 4 && ngx_strncmp(m->role.data, "user", 4) == 0)
              || (m->role.len == 9
                  && ngx_strncmp(m->role.data, "assistant", 9) == 0)))
        {
            return ngx_http_ai_invalid(err, param, "messages",
                                       "a message has an unknown 'role': "
                                       "expected user or assistant");
        }

        if (ngx_http_ai_role_own(pool, &m->role) != NGX_OK) {
            return NGX_ERROR;
        }

        if (ngx_http_ai_content(pool, ngx_http_ai_json_item(msg, "content"),
                                m, "text", param, err)
            != NGX_OK)
        {
            return NGX_DECLINED;
        }

        req->text_len += m->text.len;
    }

    tools = ngx_http_ai_json_item(json, "tools");

    if (tools && !cJSON_IsNull(tools)) {
        if (!cJSON_IsArray(tools)) {
            return ngx_http_ai_invalid(err, param, "tools",
                                       "'tools' must be an array");
        }

        req->tools = cJSON_GetArraySize(tools) > 0;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_parse_gemini(ngx_pool_t *pool, ngx_http_ai_request_t *req,
    const char **param, ngx_str_t *err)
{
    cJSON                  *json, *contents, *msg, *si, *gc, *tools;
    ngx_http_ai_message_t  *m, sys;

    json = req->json;

    si = ngx_http_ai_json_item(json, "systemInstruction");
    if (si == NULL) {
        si = ngx_http_ai_json_item(json, "system_instruction");
    }

    if (si && !cJSON_IsNull(si)) {
        if (!cJSON_IsObject(si)) {
            return ngx_http_ai_invalid(err, param, "systemInstruction",
                                       "'systemInstruction' must be an "
                                       "object");
        }

        ngx_memzero(&sys, sizeof(ngx_http_ai_message_t));

        if (ngx_http_ai_content(pool,
                                ngx_http_ai_json_item(si, "parts"),
                                &sys, "text", param, err)
            != NGX_OK)
        {
            *param = "systemInstruction";
            return NGX_DECLINED;
        }

        req->system = sys.text;
        req->text_len += sys.text.len;
    }

    contents = ngx_http_ai_json_item(json, "contents");

    if (contents == NULL) {
        return ngx_http_ai_invalid(err, param, "contents",
                                   "'contents' is required");
    }

    if (!cJSON_IsArray(contents)) {
        return ngx_http_ai_invalid(err, param, "contents",
                                   "'contents' must be an array");
    }

    cJSON_ArrayForEach(msg, contents) {

        if (!cJSON_IsObject(msg)) {
            return ngx_http_ai_invalid(err, param, "contents",
                                       "each content must be an object");
        }

        m = ngx_array_push(&req->messages);
        if (m == NULL) {
            return NGX_ERROR;
        }

        ngx_memzero(m, sizeof(ngx_http_ai_message_t));
        m->json = msg;

        if (ngx_http_ai_unique(msg, ngx_http_ai_message_fields, param, err)
            != NGX_OK)
        {
            *param = (req->endpoint == NGX_HTTP_AI_EP_GEMINI) ? "contents"
                                                              : "messages";
            return NGX_DECLINED;
        }

        if (ngx_http_ai_get_string(msg, "role", 0, &m->role, param, err)
            != NGX_OK)
        {
            *param = "contents";
            return NGX_DECLINED;
        }

        if (m->role.len == 0) {
            ngx_str_set(&m->role, "user");

        } else if (ngx_http_ai_role_own(pool, &m->role) != NGX_OK) {
            return NGX_ERROR;
        }

        if (ngx_http_ai_content(pool,
                                ngx_http_ai_json_item(msg, "parts"),
                                m, "text", param, err)
            != NGX_OK)
        {
            *param = "contents";
            return NGX_DECLINED;
        }

        req->text_len += m->text.len;
    }

    gc = ngx_http_ai_json_item(json, "generationConfig");

    if (gc && cJSON_IsObject(gc)
        && ngx_http_ai_unique(gc, ngx_http_ai_option_fields, param, err)
           != NGX_OK)
    {
        *param = "generationConfig";
        return NGX_DECLINED;
    }

    if (gc && cJSON_IsObject(gc)
        && ngx_http_ai_get_int(gc, "maxOutputTokens", &req->max_tokens,
                               param, err)
           != NGX_OK)
    {
        return NGX_DECLINED;
    }

    tools = ngx_http_ai_json_item(json, "tools");
    req->tools = (tools && cJSON_IsArray(tools)
                  && cJSON_GetArraySize(tools) > 0);

    return NGX_OK;
}


/*
 * Message content: a string, null, or an array of parts; the text of the
 * text parts is joined with LF into m->text (no copy for a plain string).
 */

/*
 * OpenAI's Responses API: "instructions" is the system text, "input" a
 * string (one user message) or a list of items: messages (input_text,
 * output_text, input_image parts), function calls (the assistant's, their
 * arguments as the text) and their outputs (a "tool" message); other
 * items (reasoning) count no text.
 */

static ngx_int_t
ngx_http_ai_parse_responses(ngx_pool_t *pool, ngx_http_ai_request_t *req,
    const char **param, ngx_str_t *err)
{
    cJSON                  *json, *input, *item, *tools;
    ngx_str_t               prev;
    ngx_http_ai_message_t  *m;

    json = req->json;

    if (ngx_http_ai_get_string(json, "model", 1, &req->model, param, err)
        != NGX_OK
        || ngx_http_ai_get_string(json, "instructions", 0, &req->system,
                                  param, err)
           != NGX_OK)
    {
        return NGX_DECLINED;
    }

    ngx_str_null(&prev);

    if (ngx_http_ai_get_string(json, "previous_response_id", 0, &prev,
                               param, err)
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    input = ngx_http_ai_json_item(json, "input");

    if (input == NULL || cJSON_IsNull(input)) {
        if (prev.len == 0) {
            return ngx_http_ai_invalid(err, param, "input", NULL);
        }

    } else if (cJSON_IsString(input)) {
        m = ngx_array_push(&req->messages);
        if (m == NULL) {
            return NGX_ERROR;
        }

        ngx_memzero(m, sizeof(ngx_http_ai_message_t));
        ngx_str_set(&m->role, "user");
        m->json = input;
        m->nparts = 1;
        m->text.data = (u_char *) input->valuestring;
        m->text.len = ngx_strlen(input->valuestring);

        req->text_len += m->text.len;

    } else if (cJSON_IsArray(input)) {

        if (cJSON_GetArraySize(input) == 0 && prev.len == 0) {
            return ngx_http_ai_invalid(err, param, "input",
                                       "'input' must not be empty");
        }

        cJSON_ArrayForEach(item, input) {
            if (ngx_http_ai_responses_item(pool, req, item, param, err)
                != NGX_OK)
            {
                return NGX_DECLINED;
            }
        }

    } else {
        return ngx_http_ai_invalid(err, param, "input",
                                   "'input' must be a string or an array "
                                   "of items");
    }

    if (ngx_http_ai_get_int(json, "max_output_tokens", &req->max_tokens,
                            param, err)
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    tools = ngx_http_ai_json_item(json, "tools");

    if (tools && !cJSON_IsNull(tools)) {
        if (!cJSON_IsArray(tools)) {
            return ngx_http_ai_invalid(err, param, "tools",
                                       "'tools' must be an array");
        }

        req->tools = cJSON_GetArraySize(tools) > 0;
    }

    /* usage is in every stream's last event */
    req->include_usage = 1;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_responses_item(ngx_pool_t *pool, ngx_http_ai_request_t *req,
    cJSON *item, const char **param, ngx_str_t *err)
{
    cJSON                  *type, *content, *text;
    ngx_str_t               role;
    ngx_http_ai_message_t  *m;

    if (!cJSON_IsObject(item)) {
        return ngx_http_ai_invalid(err, param, "input",
                                   "each input item must be an object");
    }

    if (ngx_http_ai_unique(item, ngx_http_ai_message_fields, param, err)
        != NGX_OK)
    {
        *param = "input";
        return NGX_DECLINED;
    }

    type = ngx_http_ai_json_item(item, "type");

    if (type && !cJSON_IsString(type)) {
        return ngx_http_ai_invalid(err, param, "input",
                                   "an input item's 'type' must be a "
                                   "string");
    }

    ngx_str_null(&role);

    if (type == NULL || ngx_strcmp(type->valuestring, "message") == 0) {

        if (ngx_http_ai_get_string(item, "role", 1, &role, param, err)
            != NGX_OK)
        {
            *param = "input";
            return NGX_DECLINED;
        }

        if (!((role.len == 4 && ngx_strncmp(role.data, "user", 4) == 0)
              || (role.len == 6 && ngx_strncmp(role.data, "system", 6) == 0)
              || (role.len == 9
                  && ngx_strncmp(role.data, "assistant", 9) == 0)
              || (role.len == 9
                  && ngx_strncmp(role.data, "developer", 9) == 0)))
        {
            return ngx_http_ai_invalid(err, param, "input",
                                       "an input message has an unknown "
                                       "'role': expected system, developer, "
                                       "user or assistant");
        }

        if (ngx_http_ai_role_own(pool, &role) != NGX_OK) {
            return NGX_ERROR;
        }

        content = ngx_http_ai_json_item(item, "content");

        if (content == NULL) {
            return ngx_http_ai_invalid(err, param, "input",
                                       "an input message needs its "
                                       "'content'");
        }

        m = ngx_array_push(&req->messages);
        if (m == NULL) {
            return NGX_ERROR;
        }

        ngx_memzero(m, sizeof(ngx_http_ai_message_t));
        m->json = item;
        m->role = role;

        if (ngx_http_ai_content(pool, content, m, "text", param, err)
            != NGX_OK)
        {
            *param = "input";
            return NGX_DECLINED;
        }

        req->text_len += m->text.len;

        return NGX_OK;
    }

    if (ngx_strcmp(type->valuestring, "function_call") == 0) {
        ngx_str_set(&role, "assistant");
        text = ngx_http_ai_json_item(item, "arguments");

    } else if (ngx_strcmp(type->valuestring, "function_call_output") == 0) {
        ngx_str_set(&role, "tool");
        text = ngx_http_ai_json_item(item, "output");

    } else {
        /* reasoning, item references ...: no text of their own */
        return NGX_OK;
    }

    m = ngx_array_push(&req->messages);
    if (m == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(m, sizeof(ngx_http_ai_message_t));
    m->json = item;
    m->role = role;
    m->tool_calls = (role.len == 9);

    if (cJSON_IsString(text)) {
        m->text.data = (u_char *) text->valuestring;
        m->text.len = ngx_strlen(text->valuestring);
        m->nparts = 1;

    } else if (cJSON_IsArray(text)) {
        if (ngx_http_ai_content(pool, text, m, "text", param, err) != NGX_OK)
        {
            *param = "input";
            return NGX_DECLINED;
        }

    } else {
        return ngx_http_ai_invalid(err, param, "input",
                                   m->tool_calls
                                   ? "a function_call item needs its "
                                     "'arguments' (a string)"
                                   : "a function_call_output item needs its "
                                     "'output'");
    }

    req->text_len += m->text.len;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_content(ngx_pool_t *pool, cJSON *content, ngx_http_ai_message_t *m,
    const char *text_key, const char **param, ngx_str_t *err)
{
    u_char  *p;
    size_t   len;
    cJSON   *part, *text, *type;

    if (content == NULL || cJSON_IsNull(content)) {
        return NGX_OK;
    }

    if (cJSON_IsString(content)) {
        m->text.data = (u_char *) content->valuestring;
        m->text.len = ngx_strlen(content->valuestring);
        m->nparts = 1;
        return NGX_OK;
    }

    if (!cJSON_IsArray(content)) {
        return ngx_http_ai_invalid(err, param, "messages",
                                   "message 'content' must be a string or "
                                   "an array of parts");
    }

    len = 0;

    cJSON_ArrayForEach(part, content) {

        if (!cJSON_IsObject(part)) {
            return ngx_http_ai_invalid(err, param, "messages",
                                       "each content part must be an "
                                       "object");
        }

        m->nparts++;

        text = ngx_http_ai_json_item(part, text_key);

        if (text) {
            if (!cJSON_IsString(text)) {
                return ngx_http_ai_invalid(err, param, "messages",
                                           "a content part's 'text' must be "
                                           "a string");
            }

            len += ngx_strlen(text->valuestring) + 1;
            continue;
        }

        type = ngx_http_ai_json_item(part, "type");

        if (ngx_http_ai_json_item(part, "image_url")
            || ngx_http_ai_json_item(part, "inlineData")
            || ngx_http_ai_json_item(part, "inline_data")
            || (cJSON_IsString(type)
                && ngx_strcmp(type->valuestring, "image") == 0))
        {
            m->images = 1;
        }
    }

    if (len == 0) {
        return NGX_OK;
    }

    p = ngx_pnalloc(pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    m->text.data = p;

    cJSON_ArrayForEach(part, content) {
        text = ngx_http_ai_json_item(part, text_key);

        if (text) {
            if (p != m->text.data) {
                *p++ = LF;
            }

            p = ngx_cpymem(p, text->valuestring,
                           ngx_strlen(text->valuestring));
        }
    }

    m->text.len = p - m->text.data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_get_string(cJSON *obj, const char *name, ngx_uint_t required,
    ngx_str_t *value, const char **param, ngx_str_t *err)
{
    cJSON  *item;

    item = ngx_http_ai_json_item(obj, name);

    if (item == NULL || cJSON_IsNull(item)) {
        if (!required) {
            return NGX_OK;
        }

        return ngx_http_ai_invalid(err, param, name, NULL);
    }

    if (!cJSON_IsString(item)) {
        return ngx_http_ai_invalid(err, param, name, "must be a string");
    }

    value->data = (u_char *) item->valuestring;
    value->len = ngx_strlen(item->valuestring);

    if (required && value->len == 0) {
        return ngx_http_ai_invalid(err, param, name, "must not be empty");
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_get_bool(cJSON *obj, const char *name, ngx_uint_t *value,
    const char **param, ngx_str_t *err)
{
    cJSON  *item;

    item = ngx_http_ai_json_item(obj, name);

    if (item == NULL || cJSON_IsNull(item)) {
        return NGX_OK;
    }

    if (!cJSON_IsBool(item)) {
        return ngx_http_ai_invalid(err, param, name, "must be a boolean");
    }

    *value = cJSON_IsTrue(item) ? 1 : 0;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_get_int(cJSON *obj, const char *name, ngx_int_t *value,
    const char **param, ngx_str_t *err)
{
    cJSON  *item;

    item = ngx_http_ai_json_item(obj, name);

    if (item == NULL || cJSON_IsNull(item)) {
        return NGX_OK;
    }

    /* the range is checked before the conversion; NaN fails it too */

    if (!cJSON_IsNumber(item) || !(item->valuedouble >= 0)) {
        return ngx_http_ai_invalid(err, param, name,
                                   "must be a non-negative integer");
    }

    if (item->valuedouble > (double) NGX_MAX_INT32_VALUE) {
        return ngx_http_ai_invalid(err, param, name,
                                   "must be at most 2147483647");
    }

    if (item->valuedouble != (double) (ngx_int_t) item->valuedouble) {
        return ngx_http_ai_invalid(err, param, name,
                                   "must be a non-negative integer");
    }

    *value = (ngx_int_t) item->valuedouble;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_unique(cJSON *obj, const char **names, const char **param,
    ngx_str_t *err)
{
    cJSON        *item;
    uint32_t      seen, twice;
    ngx_uint_t    i;
    const char   *s;

    /*
     * one pass over the members, each looked up in the names (at most
     * 32 of them) by its first byte first: linear in the members, however
     * many a client sends
     */

    seen = 0;
    twice = 0;

    cJSON_ArrayForEach(item, obj) {
        s = item->string;

        if (s == NULL) {
            continue;
        }

        for (i = 0; names[i]; i++) {
            if (names[i][0] == s[0] && ngx_strcmp(names[i], s) == 0) {
                twice |= seen & (1u << i);
                seen |= 1u << i;
                break;
            }
        }
    }

    if (twice == 0) {
        return NGX_OK;
    }

    /* the first of the names (in their order) that came twice */

    for (i = 0; (twice & (1u << i)) == 0; i++) { /* void */ }

    return ngx_http_ai_invalid(err, param, names[i],
                               "must not appear twice in an object");
}


/*
 * A NUL byte, or a \u0000 escape (not itself escaped): C strings would
 * end there, so the gateway's view of a field would differ from
 * what the provider reads.
 */

static ngx_uint_t
ngx_http_ai_has_nul(ngx_str_t *body)
{
    if (body->len == 0) {
        return 0;
    }

    if (memchr(body->data, '\0', body->len)) {
        return 1;
    }

    return ngx_http_ai_nul_escape(body->data, body->data + body->len);
}


/* a \u0000 escape from p to last (not itself escaped) */

static ngx_uint_t
ngx_http_ai_nul_escape(u_char *p, u_char *last)
{
    u_char  *q;

    for ( /* void */ ;
         (p = memchr(p, '\\', last - p)) != NULL && last - p >= 6;
         p = q)
    {
        /* a run of backslashes: an odd one escapes what follows */

        for (q = p; q < last && *q == '\\'; q++) { /* void */ }

        if (((q - p) & 1)
            && last - q >= 5
            && q[0] == 'u' && q[1] == '0' && q[2] == '0'
            && q[3] == '0' && q[4] == '0')
        {
            return 1;
        }
    }

    return 0;
}


/*
 * The message is msg itself, or "'name' is required" when msg is NULL,
 * or "'name' must ..." when msg starts with "must".  A built message lives
 * in static storage: a worker handles one request at a time here.
 */

static ngx_int_t
ngx_http_ai_invalid(ngx_str_t *err, const char **param, const char *name,
    const char *msg)
{
    static u_char  buf[256];

    *param = name;

    if (msg && ngx_strncmp(msg, "must", 4) != 0) {
        err->data = (u_char *) msg;
        err->len = ngx_strlen(msg);
        return NGX_DECLINED;
    }

    err->data = buf;
    err->len = ngx_snprintf(buf, sizeof(buf), "'%s' %s", name,
                            msg ? msg : "is required")
               - buf;

    return NGX_DECLINED;
}
