
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
    cJSON        *json, *user;
    u_char       *p;
    const char   *end;
    ngx_int_t     rc;
    ngx_uint_t    stream;

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

    if (req->format == NGX_HTTP_AI_FMT_ANTHROPIC) {
        user = ngx_http_ai_json_item(ngx_http_ai_json_item(json, "metadata"),
                                     "user_id");

    } else {
        user = ngx_http_ai_json_item(json, "user");
    }

    if (cJSON_IsString(user) && user->valuestring && user->valuestring[0]) {
        /* a client's string: its first 256 bytes */

        req->user.len = ngx_min(ngx_strlen(user->valuestring), 256);

        req->user.data = ngx_pnalloc(pool, req->user.len);
        if (req->user.data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(req->user.data, user->valuestring, req->user.len);
    }

    req->parsed = 1;

    return NGX_OK;
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

    static ngx_str_t  roles[] = {
        ngx_string("user"),
        ngx_string("assistant"),
        ngx_string("system"),
        ngx_string("developer"),
        ngx_string("tool"),
        ngx_string("function"),
        ngx_string("model")
    };

    for (i = 0; i < sizeof(roles) / sizeof(ngx_str_t); i++) {
        if (role->len == roles[i].len
            && ngx_strncmp(role->data, roles[i].data, role->len) == 0)
        {
            role->data = roles[i].data;
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
