
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


static ngx_int_t ngx_http_ai_parse_chat(ngx_pool_t *pool,
    ngx_http_ai_request_t *req, const char **param, ngx_str_t *err);
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
static ngx_int_t ngx_http_ai_invalid(ngx_str_t *err, const char **param,
    const char *name, const char *msg);
static void *ngx_http_ai_json_alloc(size_t size);
static void ngx_http_ai_json_free(void *p);
static size_t ngx_http_ai_json_tree_size(u_char *p, u_char *end);
static cJSON *ngx_http_ai_json_tree(u_char *p, u_char *end,
    const char **stop);
static ngx_int_t ngx_http_ai_json_node(cJSON *item, u_char **pp,
    u_char *end);
static u_char *ngx_http_ai_json_number(cJSON *item, u_char *p,
    u_char *end);
static char *ngx_http_ai_json_decode(u_char **pp, u_char *end);
static ngx_uint_t ngx_http_ai_json_hex(u_char *p);
static u_char *ngx_http_ai_json_utf8(u_char *o, ngx_uint_t c);


/*
 * cJSON allocates through ngx_http_ai_json_alloc() once the core loaded
 * (ngx_http_ai_json_hooks()): from a pool while one is set
 * (ngx_http_ai_json_on_pool()), else from the heap.  A block is tagged
 * with where it came from, so that cJSON_free() frees a heap block and
 * leaves a pool's to its pool: trees of both kinds may be mixed and are
 * deleted as before.  The pools: a translation's own, destroyed when it
 * is done; and a request's tree's own, sized from the body, whose root is
 * tagged so that freeing it, the last free of cJSON_Delete(), destroys
 * the pool (no malloc a node, no pool block of the request's taken for a
 * stream's whole life).
 */

#define NGX_HTTP_AI_JSON_HEAP   0x68656170
#define NGX_HTTP_AI_JSON_POOL   0x706f6f6c
#define NGX_HTTP_AI_JSON_ROOT   0x726f6f74      /* frees its pool */

typedef union {
    uint32_t                    tag;
    uint64_t                    align;
} ngx_http_ai_json_block_t;

/*
 * a request's tree's root, first on its pool: the pool, the block's tag
 * just before the node, as every block has it
 */

typedef struct {
    ngx_pool_t                 *pool;
    ngx_http_ai_json_block_t    block;
    cJSON                       root;
} ngx_http_ai_json_root_t;

static ngx_uint_t   ngx_http_ai_json_hooked;
static ngx_pool_t  *ngx_http_ai_json_pool;


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
    cJSON        *json;
    ngx_pool_t   *prev, *tree;
    const char   *end;
    ngx_int_t     rc;
    ngx_uint_t    stream;

    if (ngx_http_ai_has_nul(&req->body)) {
        ngx_str_set(err, "the request body contains a NUL character "
                         "(\\u0000), which is not accepted");
        return NGX_DECLINED;
    }

    end = NULL;

    /*
     * the tree on a pool of its own, sized from the body: not on the
     * request's, where a pool block more for each of thousands of streams
     * held open cost more than the mallocs it saves (bench: 19.6 -> 22.3
     * kB a stream at 9,000); freed with the tree's root
     */

    tree = NULL;

    if (pool && ngx_http_ai_json_hooked) {
        tree = ngx_create_pool(ngx_http_ai_json_tree_size(req->body.data,
                                                          req->body.data
                                                          + req->body.len),
                               pool->log);
    }

    prev = ngx_http_ai_json_on_pool(tree);

    json = ngx_http_ai_json_tree(req->body.data,
                                 req->body.data + req->body.len, &end);

    (void) ngx_http_ai_json_on_pool(prev);

    if (json == NULL && tree) {
        ngx_destroy_pool(tree);
    }

    if (json == NULL) {
        /* what the scanner does not take, cJSON reads (and says where) */

        prev = ngx_http_ai_json_on_pool(NULL);

        json = cJSON_ParseWithLengthOpts((const char *) req->body.data,
                                         req->body.len, &end, 0);

        (void) ngx_http_ai_json_on_pool(prev);
    }

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

    if (rc == NGX_OK) {
        req->parsed = 1;
    }

    return rc;
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

    messages = cJSON_GetObjectItemCaseSensitive(json, "messages");

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

        if (ngx_http_ai_content(pool, cJSON_GetObjectItemCaseSensitive(msg,
                                                                  "content"),
                                m, "text", param, err)
            != NGX_OK)
        {
            return NGX_DECLINED;
        }

        if (cJSON_GetObjectItemCaseSensitive(msg, "tool_calls")) {
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

    so = cJSON_GetObjectItemCaseSensitive(json, "stream_options");

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

    tools = cJSON_GetObjectItemCaseSensitive(json, "tools");

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

    input = cJSON_GetObjectItemCaseSensitive(req->json, "input");

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

    system = cJSON_GetObjectItemCaseSensitive(json, "system");

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

    messages = cJSON_GetObjectItemCaseSensitive(json, "messages");

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

        if (ngx_http_ai_content(pool, cJSON_GetObjectItemCaseSensitive(msg,
                                                                  "content"),
                                m, "text", param, err)
            != NGX_OK)
        {
            return NGX_DECLINED;
        }

        req->text_len += m->text.len;
    }

    tools = cJSON_GetObjectItemCaseSensitive(json, "tools");

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

    si = cJSON_GetObjectItemCaseSensitive(json, "systemInstruction");
    if (si == NULL) {
        si = cJSON_GetObjectItemCaseSensitive(json, "system_instruction");
    }

    if (si && !cJSON_IsNull(si)) {
        if (!cJSON_IsObject(si)) {
            return ngx_http_ai_invalid(err, param, "systemInstruction",
                                       "'systemInstruction' must be an "
                                       "object");
        }

        ngx_memzero(&sys, sizeof(ngx_http_ai_message_t));

        if (ngx_http_ai_content(pool,
                                cJSON_GetObjectItemCaseSensitive(si, "parts"),
                                &sys, "text", param, err)
            != NGX_OK)
        {
            *param = "systemInstruction";
            return NGX_DECLINED;
        }

        req->system = sys.text;
        req->text_len += sys.text.len;
    }

    contents = cJSON_GetObjectItemCaseSensitive(json, "contents");

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
        }

        if (ngx_http_ai_content(pool,
                                cJSON_GetObjectItemCaseSensitive(msg, "parts"),
                                m, "text", param, err)
            != NGX_OK)
        {
            *param = "contents";
            return NGX_DECLINED;
        }

        req->text_len += m->text.len;
    }

    gc = cJSON_GetObjectItemCaseSensitive(json, "generationConfig");

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

    tools = cJSON_GetObjectItemCaseSensitive(json, "tools");
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

    input = cJSON_GetObjectItemCaseSensitive(json, "input");

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

    tools = cJSON_GetObjectItemCaseSensitive(json, "tools");

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

    type = cJSON_GetObjectItemCaseSensitive(item, "type");

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

        content = cJSON_GetObjectItemCaseSensitive(item, "content");

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
        text = cJSON_GetObjectItemCaseSensitive(item, "arguments");

    } else if (ngx_strcmp(type->valuestring, "function_call_output") == 0) {
        ngx_str_set(&role, "tool");
        text = cJSON_GetObjectItemCaseSensitive(item, "output");

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

        text = cJSON_GetObjectItemCaseSensitive(part, text_key);

        if (text) {
            if (!cJSON_IsString(text)) {
                return ngx_http_ai_invalid(err, param, "messages",
                                           "a content part's 'text' must be "
                                           "a string");
            }

            len += ngx_strlen(text->valuestring) + 1;
            continue;
        }

        type = cJSON_GetObjectItemCaseSensitive(part, "type");

        if (cJSON_GetObjectItemCaseSensitive(part, "image_url")
            || cJSON_GetObjectItemCaseSensitive(part, "inlineData")
            || cJSON_GetObjectItemCaseSensitive(part, "inline_data")
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
        text = cJSON_GetObjectItemCaseSensitive(part, text_key);

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

    item = cJSON_GetObjectItemCaseSensitive(obj, name);

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

    item = cJSON_GetObjectItemCaseSensitive(obj, name);

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

    item = cJSON_GetObjectItemCaseSensitive(obj, name);

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
 * end there, so the gateway's view of a field would differ from what the
 * provider reads.
 */

static ngx_uint_t
ngx_http_ai_has_nul(ngx_str_t *body)
{
    u_char  *p, *q, *last;

    last = body->data + body->len;

    if (body->len == 0) {
        return 0;
    }

    if (memchr(body->data, '\0', body->len)) {
        return 1;
    }

    for (p = body->data;
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


ngx_pool_t *
ngx_http_ai_json_on_pool(ngx_pool_t *pool)
{
    ngx_pool_t  *prev;

    prev = ngx_http_ai_json_pool;
    ngx_http_ai_json_pool = ngx_http_ai_json_hooked ? pool : NULL;

    return prev;
}


void
ngx_http_ai_json_hooks(void)
{
    cJSON_Hooks  hooks;

    if (ngx_http_ai_json_hooked) {
        return;
    }

    hooks.malloc_fn = ngx_http_ai_json_alloc;
    hooks.free_fn = ngx_http_ai_json_free;

    cJSON_InitHooks(&hooks);

    ngx_http_ai_json_hooked = 1;
}


static void *
ngx_http_ai_json_alloc(size_t size)
{
    ngx_http_ai_json_block_t  *b;

    if (size > NGX_MAX_SIZE_T_VALUE - sizeof(ngx_http_ai_json_block_t)) {
        return NULL;
    }

    if (ngx_http_ai_json_pool) {
        b = ngx_palloc(ngx_http_ai_json_pool,
                       sizeof(ngx_http_ai_json_block_t) + size);
        if (b == NULL) {
            return NULL;
        }

        b->tag = NGX_HTTP_AI_JSON_POOL;

    } else {
        b = malloc(sizeof(ngx_http_ai_json_block_t) + size);
        if (b == NULL) {
            return NULL;
        }

        b->tag = NGX_HTTP_AI_JSON_HEAP;
    }

    return b + 1;
}


static void
ngx_http_ai_json_free(void *p)
{
    ngx_http_ai_json_block_t  *b;

    if (p == NULL) {
        return;
    }

    b = (ngx_http_ai_json_block_t *) p - 1;

    if (b->tag == NGX_HTTP_AI_JSON_HEAP) {
        b->tag = 0;
        free(b);
        return;
    }

    if (b->tag == NGX_HTTP_AI_JSON_ROOT) {
        /* a request's tree's root: the pool it and its nodes are on */
        b->tag = 0;
        ngx_destroy_pool(((ngx_http_ai_json_root_t *)
                              ((u_char *) p
                               - offsetof(ngx_http_ai_json_root_t, root)))
                         ->pool);
        return;
    }

    /* a pool's block goes with its pool */
}


/*
 * The size of a pool that holds a body's tree in its first block, but for
 * its long strings (larger than a pool's small allocations, each its
 * own): a bound on its nodes (a value follows a "{", a "[" or a ",", or
 * is the body) and strings (each quoted), their blocks' tags and
 * alignment (a string's NUL in it), and the text's bytes for the
 * strings'.  A tree of more than 16 KB gets blocks of 16 KB.
 */

static size_t
ngx_http_ai_json_tree_size(u_char *p, u_char *end)
{
    size_t   nodes, strings, size;
    u_char  *start;

    start = p;
    nodes = 1;
    strings = 0;

    for ( /* void */ ; p < end; p++) {

        switch (*p) {

        case '"':
            strings++;

            for (p++; p < end && *p != '"'; p++) {
                if (*p == '\\') {
                    p++;
                }
            }

            break;

        case '{':
        case '[':
        case ',':
            nodes++;
            break;
        }
    }

    size = sizeof(ngx_pool_t) + sizeof(ngx_http_ai_json_root_t)
           + nodes * ngx_align(sizeof(ngx_http_ai_json_block_t)
                               + sizeof(cJSON), NGX_ALIGNMENT)
           + strings * (sizeof(ngx_http_ai_json_block_t) + NGX_ALIGNMENT)
           + (end - start);

    return ngx_min(size, NGX_DEFAULT_POOL_SIZE);
}


/*
 * The request's tree as cJSON builds it (the same nodes, linked the same
 * way, the same strings and numbers), built from a text the strict
 * scanner checked first: then it is one that cJSON reads the same, and
 * the tree is built without checking again, strings copied whole where
 * they have no escape.  NULL: not such a text (or no memory): cJSON reads
 * it.  *stop: the end of the value, as cJSON_ParseWithLengthOpts() sets
 * it.
 */

static cJSON *
ngx_http_ai_json_tree(u_char *p, u_char *end, const char **stop)
{
    cJSON                    *json;
    u_char                   *last;
    ngx_http_ai_json_root_t  *r;

    p = ngx_http_ai_json_space(p, end);

    if (p == end) {
        return NULL;
    }

    last = ngx_http_ai_json_skip(p, end, NGX_HTTP_AI_JSON_CJSON_DEPTH, 1);

    if (last == NULL) {
        return NULL;
    }

    if (ngx_http_ai_json_pool) {
        /*
         * the root, first on a tree's own pool, with the pool before it:
         * cJSON_Delete() frees the root last, and the pool with it
         */

        r = ngx_palloc(ngx_http_ai_json_pool,
                       sizeof(ngx_http_ai_json_root_t));
        if (r == NULL) {
            return NULL;
        }

        r->pool = ngx_http_ai_json_pool;
        r->block.tag = NGX_HTTP_AI_JSON_POOL;   /* ROOT once built */
        json = &r->root;

    } else {
        r = NULL;

        json = cJSON_malloc(sizeof(cJSON));
        if (json == NULL) {
            return NULL;
        }
    }

    ngx_memzero(json, sizeof(cJSON));

    if (ngx_http_ai_json_node(json, &p, last) != NGX_OK) {
        /* what was built is linked to it */
        cJSON_Delete(json);
        return NULL;
    }

    if (r) {
        r->block.tag = NGX_HTTP_AI_JSON_ROOT;
    }

    *stop = (const char *) last;

    return json;
}


/*
 * A value of a checked text at *pp into item, as cJSON's parse_value()
 * makes it; a container's nodes are linked to it as they are made, so
 * that a failure leaves a tree to delete
 */

static ngx_int_t
ngx_http_ai_json_node(cJSON *item, u_char **pp, u_char *end)
{
    u_char  *p, close;
    cJSON   *child, *last;

    p = *pp;

    switch (*p) {

    case '{':
    case '[':
        close = (*p == '{') ? '}' : ']';
        item->type = (*p == '{') ? cJSON_Object : cJSON_Array;

        p = ngx_http_ai_json_space(p + 1, end);

        for (last = NULL; *p != close; /* void */) {

            child = cJSON_malloc(sizeof(cJSON));
            if (child == NULL) {
                return NGX_ERROR;
            }

            ngx_memzero(child, sizeof(cJSON));

            if (last == NULL) {
                item->child = child;

            } else {
                last->next = child;
                child->prev = last;
            }

            /* cJSON: the first's prev is the last (appending is O(1)) */
            item->child->prev = child;
            last = child;

            if (close == '}') {
                /* the name, then the value, in one node */

                child->string = ngx_http_ai_json_decode(&p, end);
                if (child->string == NULL) {
                    return NGX_ERROR;
                }

                p = ngx_http_ai_json_space(p, end);    /* then ':' */
                p = ngx_http_ai_json_space(p + 1, end);
            }

            if (ngx_http_ai_json_node(child, &p, end) != NGX_OK) {
                return NGX_ERROR;
            }

            p = ngx_http_ai_json_space(p, end);

            if (*p == ',') {
                p = ngx_http_ai_json_space(p + 1, end);
            }
        }

        *pp = p + 1;
        return NGX_OK;

    case '"':
        item->type = cJSON_String;
        item->valuestring = ngx_http_ai_json_decode(pp, end);

        return (item->valuestring == NULL) ? NGX_ERROR : NGX_OK;

    case 't':
        item->type = cJSON_True;
        item->valueint = 1;
        *pp = p + 4;
        return NGX_OK;

    case 'f':
        item->type = cJSON_False;
        *pp = p + 5;
        return NGX_OK;

    case 'n':
        item->type = cJSON_NULL;
        *pp = p + 4;
        return NGX_OK;

    default:
        *pp = ngx_http_ai_json_number(item, p, end);
        return NGX_OK;
    }
}


/* a checked number (of 63 characters at most), as cJSON reads it */

static u_char *
ngx_http_ai_json_number(cJSON *item, u_char *p, u_char *end)
{
    size_t    n;
    u_char   *q;
    double    d;
    int64_t   v;
    char      num[64];

    for (q = p; q < end && ((*q >= '0' && *q <= '9') || *q == '-'
                            || *q == '+' || *q == '.' || *q == 'e'
                            || *q == 'E');
         q++)
    {
        /* void */
    }

    n = q - p;

    for (v = 0, q = p; n <= 15 && q < p + n && *q >= '0' && *q <= '9'; q++)
    {
        v = v * 10 + (*q - '0');
    }

    if (n <= 15 && q == p + n) {
        /* digits only: the integer strtod() reads, exactly */
        d = (double) v;

    } else {
        /* as cJSON reads it (NGINX runs in the "C" locale) */
        ngx_memcpy(num, p, n);
        num[n] = '\0';
        d = strtod(num, NULL);
    }

    item->type = cJSON_Number;
    item->valuedouble = d;
    item->valueint = (d >= INT_MAX) ? INT_MAX
                     : (d <= (double) INT_MIN) ? INT_MIN : (int) d;

    return p + n;
}


/* a checked string at *pp, decoded as cJSON's parse_string() does */

static char *
ngx_http_ai_json_decode(u_char **pp, u_char *end)
{
    u_char      *p, *q, *o, *s;
    ngx_uint_t   c;

    p = *pp + 1;

    q = memchr(p, '"', end - p);
    if (q == NULL) {
        return NULL;
    }

    if (memchr(p, '\\', q - p) == NULL) {
        /* no escape: as it is */

        s = cJSON_malloc(q - p + 1);
        if (s == NULL) {
            return NULL;
        }

        ngx_memcpy(s, p, q - p);
        s[q - p] = '\0';

        *pp = q + 1;
        return (char *) s;
    }

    /* its end: the first quote not escaped */

    for (q = p; *q != '"'; q++) {
        if (*q == '\\') {
            q++;
        }
    }

    /* decoded it is no longer than written */

    s = cJSON_malloc(q - p + 1);
    if (s == NULL) {
        return NULL;
    }

    for (o = s; p < q; /* void */) {

        if (*p != '\\') {
            *o++ = *p++;
            continue;
        }

        switch (p[1]) {

        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;

        case 'u':
            c = ngx_http_ai_json_hex(p + 2);

            if (c >= 0xd800 && c <= 0xdbff) {
                /* a pair (checked) */
                c = 0x10000 + (((c & 0x3ff) << 10)
                               | (ngx_http_ai_json_hex(p + 8) & 0x3ff));
                p += 6;
            }

            o = ngx_http_ai_json_utf8(o, c);
            p += 6;
            continue;

        default:                            /* " \\ / */
            *o++ = p[1];
        }

        p += 2;
    }

    *o = '\0';

    *pp = q + 1;

    return (char *) s;
}


/* four hex digits (checked) */

static ngx_uint_t
ngx_http_ai_json_hex(u_char *p)
{
    u_char      ch;
    ngx_uint_t  i, c;

    for (c = 0, i = 0; i < 4; i++) {
        ch = p[i] | 0x20;
        c = c * 16 + ((ch >= 'a') ? ch - 'a' + 10 : ch - '0');
    }

    return c;
}


/* a code point as cJSON writes it in UTF-8 (0 as one byte 0) */

static u_char *
ngx_http_ai_json_utf8(u_char *o, ngx_uint_t c)
{
    if (c < 0x80) {
        *o++ = (u_char) c;

    } else if (c < 0x800) {
        *o++ = (u_char) (0xc0 | (c >> 6));
        *o++ = (u_char) (0x80 | (c & 0x3f));

    } else if (c < 0x10000) {
        *o++ = (u_char) (0xe0 | (c >> 12));
        *o++ = (u_char) (0x80 | ((c >> 6) & 0x3f));
        *o++ = (u_char) (0x80 | (c & 0x3f));

    } else {
        *o++ = (u_char) (0xf0 | (c >> 18));
        *o++ = (u_char) (0x80 | ((c >> 12) & 0x3f));
        *o++ = (u_char) (0x80 | ((c >> 6) & 0x3f));
        *o++ = (u_char) (0x80 | (c & 0x3f));
    }

    return o;
}
