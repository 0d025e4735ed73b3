
/*
 * Copyright (C) AI Gateway authors
 *
 * Protocol translation: the dispatch through the OpenAI pivot, errors,
 * finish reasons, the stream translator's frame and the helpers that the
 * provider files share.  Pure: cJSON and a pool, no request, no I/O.
 *
 * Naming: in the public calls "from" is the format of what comes in and
 * "to" the format of what goes out: a request goes from the door to the
 * target, a response, an error, a stream and a finish reason from the
 * target to the door.  Inside, "door" and "target" say which is which.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_ai_core_format.h"
#include "ngx_http_ai_core_json.h"

#include <math.h>
#include <float.h>


typedef struct {
    ngx_str_t                   name;
    ngx_str_t                  *value;
} ngx_http_ai_tr_reason_t;


/* a request translated with its trees on a pool: up to this size */
#define NGX_HTTP_AI_TR_POOL_MAX  65536


static ngx_int_t ngx_http_ai_tr_request(ngx_pool_t *pool,
    ngx_http_ai_translate_request_t *req, ngx_str_t *body, ngx_str_t *err);
static u_char *ngx_http_ai_tr_room(ngx_http_ai_stream_t *st, size_t len);
static size_t ngx_http_ai_tr_json_size(cJSON *item);
static u_char *ngx_http_ai_tr_json_write(u_char *p, cJSON *item);
static ngx_int_t ngx_http_ai_translate_embeddings(ngx_pool_t *pool,
    ngx_http_ai_translate_request_t *req, cJSON *json, ngx_str_t *body,
    ngx_str_t *err);
static ngx_int_t ngx_http_ai_tr_as_is_view(ngx_pool_t *pool,
    ngx_http_ai_translate_request_t *req, ngx_str_t *body);
static ngx_int_t ngx_http_ai_tr_as_is(ngx_pool_t *pool,
    ngx_http_ai_translate_request_t *req, cJSON *json, ngx_str_t *body);
static ngx_uint_t ngx_http_ai_translate_add_usage(
    ngx_http_ai_translate_request_t *req, cJSON *json);
static ngx_int_t ngx_http_ai_tr_splice_usage(ngx_pool_t *pool,
    ngx_str_t *in, ngx_str_t *out);
static ngx_uint_t ngx_http_ai_translate_unchanged(
    ngx_http_ai_translate_request_t *req, cJSON *json);
static ngx_uint_t ngx_http_ai_tr_model_is(cJSON *json, ngx_str_t *model);
static ngx_int_t ngx_http_ai_tr_passthrough(ngx_http_ai_stream_t *st,
    ngx_str_t *name, ngx_str_t *data, cJSON *json);
static ngx_uint_t ngx_http_ai_tr_same(ngx_http_ai_stream_t *st);
static ngx_int_t ngx_http_ai_tr_result(ngx_http_ai_stream_t *st,
    ngx_int_t rc, ngx_str_t *out);
static ngx_uint_t ngx_http_ai_tr_plain(ngx_str_t *in, u_char *buf,
    size_t size);
static ngx_int_t ngx_http_ai_tr_render_thinking(ngx_http_ai_stream_t *st,
    cJSON *msg);
static ngx_int_t ngx_http_ai_tr_thinking_chunk(ngx_http_ai_stream_t *st,
    const char *text, cJSON *block);
static const char *ngx_http_ai_tr_status_type(ngx_uint_t status);
static const char *ngx_http_ai_tr_gemini_status(ngx_uint_t status);
static ngx_str_t *ngx_http_ai_tr_reason_find(ngx_http_ai_tr_reason_t *r,
    const char *reason, ngx_str_t *dflt);


static ngx_str_t  ngx_http_ai_stop = ngx_string("stop");
static ngx_str_t  ngx_http_ai_length = ngx_string("length");
static ngx_str_t  ngx_http_ai_tool_calls = ngx_string("tool_calls");
static ngx_str_t  ngx_http_ai_content_filter = ngx_string("content_filter");
static ngx_str_t  ngx_http_ai_end_turn = ngx_string("end_turn");
static ngx_str_t  ngx_http_ai_max_tokens = ngx_string("max_tokens");
static ngx_str_t  ngx_http_ai_tool_use = ngx_string("tool_use");
static ngx_str_t  ngx_http_ai_refusal = ngx_string("refusal");
static ngx_str_t  ngx_http_ai_g_stop = ngx_string("STOP");
static ngx_str_t  ngx_http_ai_g_max_tokens = ngx_string("MAX_TOKENS");
static ngx_str_t  ngx_http_ai_g_safety = ngx_string("SAFETY");


static ngx_http_ai_tr_reason_t  ngx_http_ai_anthropic_reasons[] = {
    { ngx_string("end_turn"), &ngx_http_ai_stop },
    { ngx_string("stop_sequence"), &ngx_http_ai_stop },
    { ngx_string("pause_turn"), &ngx_http_ai_stop },
    { ngx_string("max_tokens"), &ngx_http_ai_length },
    { ngx_string("model_context_window_exceeded"), &ngx_http_ai_length },
    { ngx_string("tool_use"), &ngx_http_ai_tool_calls },
    { ngx_string("refusal"), &ngx_http_ai_content_filter },
    { ngx_null_string, NULL }
};


static ngx_http_ai_tr_reason_t  ngx_http_ai_gemini_reasons[] = {
    { ngx_string("STOP"), &ngx_http_ai_stop },
    { ngx_string("MAX_TOKENS"), &ngx_http_ai_length },
    { ngx_string("SAFETY"), &ngx_http_ai_content_filter },
    { ngx_string("RECITATION"), &ngx_http_ai_content_filter },
    { ngx_string("BLOCKLIST"), &ngx_http_ai_content_filter },
    { ngx_string("PROHIBITED_CONTENT"), &ngx_http_ai_content_filter },
    { ngx_string("SPII"), &ngx_http_ai_content_filter },
    { ngx_string("IMAGE_SAFETY"), &ngx_http_ai_content_filter },
    { ngx_null_string, NULL }
};


static ngx_http_ai_tr_reason_t  ngx_http_ai_openai_reasons[] = {
    { ngx_string("stop"), &ngx_http_ai_stop },
    { ngx_string("length"), &ngx_http_ai_length },
    { ngx_string("tool_calls"), &ngx_http_ai_tool_calls },
    { ngx_string("function_call"), &ngx_http_ai_tool_calls },
    { ngx_string("content_filter"), &ngx_http_ai_content_filter },
    { ngx_null_string, NULL }
};


static ngx_http_ai_tr_reason_t  ngx_http_ai_openai_anthropic_reasons[] = {
    { ngx_string("stop"), &ngx_http_ai_end_turn },
    { ngx_string("length"), &ngx_http_ai_max_tokens },
    { ngx_string("tool_calls"), &ngx_http_ai_tool_use },
    { ngx_string("function_call"), &ngx_http_ai_tool_use },
    { ngx_string("content_filter"), &ngx_http_ai_refusal },
    { ngx_null_string, NULL }
};


static ngx_http_ai_tr_reason_t  ngx_http_ai_openai_gemini_reasons[] = {
    { ngx_string("stop"), &ngx_http_ai_g_stop },
    { ngx_string("length"), &ngx_http_ai_g_max_tokens },
    { ngx_string("tool_calls"), &ngx_http_ai_g_stop },
    { ngx_string("function_call"), &ngx_http_ai_g_stop },
    { ngx_string("content_filter"), &ngx_http_ai_g_safety },
    { ngx_null_string, NULL }
};


ngx_int_t
ngx_http_ai_translate_request(ngx_pool_t *pool,
    ngx_http_ai_translate_request_t *req, ngx_str_t *body, ngx_str_t *err)
{
    ngx_int_t    rc;
    ngx_pool_t  *prev, *tmp;

    if (req->json == NULL && req->view) {
        /* a chat request read without a tree: one only if it changes */

        rc = ngx_http_ai_tr_as_is_view(pool, req, body);

        if (rc != NGX_DECLINED) {
            return rc;
        }

        req->json = ngx_http_ai_request_tree(req->view);
    }

    /*
     * the trees of a request's translation on a pool of their own, freed
     * at once with it (no malloc and free a node, nothing kept as long as
     * the request), unless the request is large; what the translation
     * writes is on the request's pool
     */

    if (req->json && cJSON_IsObject(req->json)) {
        /* a plain request, written straight from the client's tree */

        ngx_str_null(err);

        rc = ngx_http_ai_tr_fast_request(pool, req, req->json, body);

        if (rc != NGX_DECLINED) {
            return rc;
        }

        /* the same format, no tree: without the pool made for trees */

        rc = ngx_http_ai_tr_as_is(pool, req, req->json, body);

        if (rc != NGX_DECLINED) {
            return rc;
        }
    }

    tmp = NULL;

    if (pool && req->body.len <= NGX_HTTP_AI_TR_POOL_MAX) {
        tmp = ngx_create_pool(NGX_DEFAULT_POOL_SIZE, pool->log);
    }

    prev = ngx_http_ai_json_on_pool(tmp);

    rc = ngx_http_ai_tr_request(pool, req, body, err);

    (void) ngx_http_ai_json_on_pool(prev);

    if (tmp) {
        ngx_destroy_pool(tmp);
    }

    return rc;
}


static ngx_int_t
ngx_http_ai_tr_request(ngx_pool_t *pool, ngx_http_ai_translate_request_t *req,
    ngx_str_t *body, ngx_str_t *err)
{
    cJSON      *json, *parsed, *pivot, *target;
    ngx_int_t   rc;

    ngx_str_null(err);

    if (req->from > NGX_HTTP_AI_FMT_RESPONSES
        || req->to > NGX_HTTP_AI_FMT_RESPONSES)
    {
        ngx_str_set(err, "unknown wire format");
        return NGX_DECLINED;
    }

    if (req->to == NGX_HTTP_AI_FMT_RESPONSES
        && req->from != NGX_HTTP_AI_FMT_RESPONSES)
    {
        ngx_str_set(err, "only the Responses API goes to a Responses "
                         "target");
        return NGX_DECLINED;
    }

    parsed = NULL;
    json = req->json;

    if (json == NULL) {
        parsed = cJSON_ParseWithLength((const char *) req->body.data,
                                       req->body.len);
        json = parsed;
    }

    if (!cJSON_IsObject(json)) {
        cJSON_Delete(parsed);
        ngx_str_set(err, "the request body must be a JSON object");
        return NGX_DECLINED;
    }

    pivot = NULL;
    target = NULL;

    if (req->endpoint == NGX_HTTP_AI_EP_EMBEDDINGS) {
        rc = ngx_http_ai_translate_embeddings(pool, req, json, body, err);
        goto done;
    }

    if (req->endpoint == NGX_HTTP_AI_EP_COUNT_TOKENS
        && (req->from != NGX_HTTP_AI_FMT_ANTHROPIC
            || req->to != NGX_HTTP_AI_FMT_ANTHROPIC))
    {
        ngx_str_set(err, "count_tokens goes to anthropic targets only");
        rc = NGX_DECLINED;
        goto done;
    }

    if (req->endpoint != NGX_HTTP_AI_EP_CHAT
        && req->endpoint != NGX_HTTP_AI_EP_MESSAGES
        && req->endpoint != NGX_HTTP_AI_EP_COUNT_TOKENS
        && req->endpoint != NGX_HTTP_AI_EP_GEMINI
        && req->endpoint != NGX_HTTP_AI_EP_RESPONSES)
    {
        ngx_str_set(err, "this endpoint cannot be translated");
        rc = NGX_DECLINED;
        goto done;
    }

    if (req->from == NGX_HTTP_AI_FMT_GEMINI) {

        if (req->to == NGX_HTTP_AI_FMT_GEMINI) {
            /* the model and the streaming are in the URL */
            *body = req->body;
            rc = NGX_OK;
            goto done;
        }

        rc = ngx_http_ai_tr_error(pool, err,
                                  "requests of the gemini door cannot go "
                                  "to %s targets",
                       (char *) ngx_http_ai_format_name(req->to)->data);
        goto done;
    }

    rc = ngx_http_ai_tr_as_is(pool, req, json, body);

    if (rc != NGX_DECLINED) {
        goto done;
    }

    if (req->from == req->to) {

        /* the same format: the client's fields are kept as they are */

        target = cJSON_Duplicate(json, 1);
        if (target == NULL) {
            rc = NGX_ERROR;
            goto done;
        }

        if (req->from == NGX_HTTP_AI_FMT_OPENAI) {
            rc = ngx_http_ai_openai_decorate(target, req);

        } else if (req->from == NGX_HTTP_AI_FMT_RESPONSES) {
            rc = ngx_http_ai_responses_decorate(target, req);

        } else {
            rc = ngx_http_ai_anthropic_decorate(target, req);
        }

        if (rc == NGX_DECLINED) {
            ngx_str_set(err, "\"messages\" must be an array");
        }

        goto print;
    }

    if (req->from == NGX_HTTP_AI_FMT_OPENAI) {
        pivot = cJSON_Duplicate(json, 1);
        rc = (pivot == NULL) ? NGX_ERROR : NGX_OK;

    } else if (req->from == NGX_HTTP_AI_FMT_RESPONSES) {
        rc = ngx_http_ai_responses_request_to_openai(pool, json, &pivot,
                                                     err);

    } else {
        rc = ngx_http_ai_anthropic_request_to_openai(pool, json, &pivot, err);
    }

    if (rc != NGX_OK) {
        goto done;
    }

    rc = ngx_http_ai_openai_decorate(pivot, req);
    if (rc != NGX_OK) {
        if (rc == NGX_DECLINED) {
            ngx_str_set(err, "\"messages\" must be an array");
        }

        goto done;
    }

    switch (req->to) {

    case NGX_HTTP_AI_FMT_OPENAI:
        target = pivot;
        pivot = NULL;

        /* the door's exact thinking budget: not OpenAI's (its effort is) */
        cJSON_DeleteItemFromObjectCaseSensitive(target, "thinking");

        if (ngx_http_ai_json_item(target, "top_k")) {
            ngx_str_set(err, "\"top_k\" is not supported by openai "
                             "targets");
            rc = NGX_DECLINED;
        }

        break;

    case NGX_HTTP_AI_FMT_ANTHROPIC:
        rc = ngx_http_ai_tr_unsupported(pool, pivot, req->to, err);

        if (rc == NGX_OK) {
            rc = ngx_http_ai_anthropic_request_from_openai(pool, pivot, req,
                                                           &target, err);
        }

        break;

    default: /* NGX_HTTP_AI_FMT_GEMINI */
        rc = ngx_http_ai_tr_unsupported(pool, pivot, req->to, err);

        if (rc == NGX_OK) {
            rc = ngx_http_ai_gemini_request_from_openai(pool, pivot, req,
                                                        &target, err);
        }
    }

print:

    if (rc == NGX_OK) {
        rc = ngx_http_ai_tr_print(pool, target, body);
    }

done:

    cJSON_Delete(target);
    cJSON_Delete(pivot);
    cJSON_Delete(parsed);

    return rc;
}


static ngx_int_t
ngx_http_ai_translate_embeddings(ngx_pool_t *pool,
    ngx_http_ai_translate_request_t *req, cJSON *json, ngx_str_t *body,
    ngx_str_t *err)
{
    cJSON      *copy;
    ngx_int_t   rc;

    if (req->to != NGX_HTTP_AI_FMT_OPENAI
        || req->from != NGX_HTTP_AI_FMT_OPENAI)
    {
        return ngx_http_ai_tr_error(pool, err,
                                 "embeddings are not supported by %s targets",
                       (char *) ngx_http_ai_format_name(req->to)->data);
    }

    if (req->model.len == 0 || ngx_http_ai_tr_model_is(json, &req->model)) {
        *body = req->body;
        return NGX_OK;
    }

    copy = cJSON_Duplicate(json, 1);
    if (copy == NULL) {
        return NGX_ERROR;
    }

    rc = NGX_ERROR;

    if (ngx_http_ai_tr_set(copy, "model", ngx_http_ai_tr_str(&req->model))
        == NGX_OK)
    {
        rc = ngx_http_ai_tr_print(pool, copy, body);
    }

    cJSON_Delete(copy);

    return rc;
}


/*
 * OpenAI to OpenAI, a stream whose client did not ask for usage (no
 * "stream_options" at all), nothing else to change
 */

static ngx_uint_t
ngx_http_ai_translate_add_usage(ngx_http_ai_translate_request_t *req,
    cJSON *json)
{
    if (req->from != NGX_HTTP_AI_FMT_OPENAI
        || req->to != NGX_HTTP_AI_FMT_OPENAI
        || !req->stream || !req->force_usage
        || (req->prepend && req->prepend->nelts)
        || (req->append && req->append->nelts)
        || (req->model.len && !ngx_http_ai_tr_model_is(json, &req->model))
        || !cJSON_IsTrue(ngx_http_ai_json_item(json, "stream"))
        || ngx_http_ai_json_item(json, "stream_options"))
    {
        return 0;
    }

    return 1;
}


/*
 * A request to its own format that needs no tree: the client's bytes as
 * they are, or with only the usage to ask for spliced in instead of a
 * tree printed again (the OpenAI SDK's default); NGX_DECLINED otherwise.
 * The general path's first step, and the fast path's before it makes a
 * pool for trees: the refusals that path makes before this step (a
 * Gemini door, count_tokens of another format, an endpoint that cannot be
 * translated) are those of the conditions here.
 */

static ngx_int_t
ngx_http_ai_tr_as_is(ngx_pool_t *pool, ngx_http_ai_translate_request_t *req,
    cJSON *json, ngx_str_t *body)
{
    if (req->from != req->to
        || req->from > NGX_HTTP_AI_FMT_RESPONSES
        || req->from == NGX_HTTP_AI_FMT_GEMINI
        || !(req->endpoint == NGX_HTTP_AI_EP_CHAT
             || req->endpoint == NGX_HTTP_AI_EP_MESSAGES
             || req->endpoint == NGX_HTTP_AI_EP_RESPONSES
             || req->endpoint == NGX_HTTP_AI_EP_GEMINI
             || (req->endpoint == NGX_HTTP_AI_EP_COUNT_TOKENS
                 && req->from == NGX_HTTP_AI_FMT_ANTHROPIC)))
    {
        return NGX_DECLINED;
    }

    if (ngx_http_ai_translate_unchanged(req, json)) {
        *body = req->body;
        return NGX_OK;
    }

    if (ngx_http_ai_translate_add_usage(req, json)) {
        return ngx_http_ai_tr_splice_usage(pool, &req->body, body);
    }

    return NGX_DECLINED;
}


/*
 * ngx_http_ai_tr_as_is() for an OpenAI chat request to an OpenAI target
 * decided from the client's view, without its tree: the same answers
 * (ngx_http_ai_translate_unchanged(), ngx_http_ai_translate_add_usage())
 * from the fields the view read
 */

static ngx_int_t
ngx_http_ai_tr_as_is_view(ngx_pool_t *pool,
    ngx_http_ai_translate_request_t *req, ngx_str_t *body)
{
    ngx_http_ai_request_t  *view;

    view = req->view;

    if (req->from != NGX_HTTP_AI_FMT_OPENAI
        || req->to != NGX_HTTP_AI_FMT_OPENAI
        || req->endpoint != NGX_HTTP_AI_EP_CHAT
        || (req->prepend && req->prepend->nelts)
        || (req->append && req->append->nelts)
        || (req->model.len
            && (req->model.len != view->model.len
                || ngx_strncmp(req->model.data, view->model.data,
                               req->model.len)
                   != 0))
        || req->stream != view->stream)
    {
        return NGX_DECLINED;
    }

    if (!req->stream) {
        /* stream_options without a stream: dropped, by the tree */

        if (view->options) {
            return NGX_DECLINED;
        }

        *body = req->body;
        return NGX_OK;
    }

    if (!req->force_usage || view->include_usage) {
        *body = req->body;
        return NGX_OK;
    }

    if (view->options) {
        return NGX_DECLINED;
    }

    return ngx_http_ai_tr_splice_usage(pool, &req->body, body);
}


/* ,"stream_options":{"include_usage":true} before the object's end */

static ngx_int_t
ngx_http_ai_tr_splice_usage(ngx_pool_t *pool, ngx_str_t *in, ngx_str_t *out)
{
    u_char  *p, *last, *end;

    static const char  usage[] = ",\"stream_options\":{\"include_usage\":true}";

    last = in->data + in->len;

    for (end = last; end > in->data; end--) {
        if (end[-1] == '}') {
            break;
        }
    }

    if (end == in->data) {
        return NGX_ERROR;
    }

    end--;

    p = ngx_pnalloc(pool, in->len + sizeof(usage) - 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->data = p;

    p = ngx_cpymem(p, in->data, end - in->data);
    p = ngx_cpymem(p, usage, sizeof(usage) - 1);
    p = ngx_cpymem(p, end, last - end);

    out->len = p - out->data;

    return NGX_OK;
}


static ngx_uint_t
ngx_http_ai_translate_unchanged(ngx_http_ai_translate_request_t *req,
    cJSON *json)
{
    cJSON  *stream, *options;

    if ((req->prepend && req->prepend->nelts)
        || (req->append && req->append->nelts))
    {
        return 0;
    }

    if (req->model.len && !ngx_http_ai_tr_model_is(json, &req->model)) {
        return 0;
    }

    stream = ngx_http_ai_json_item(json, "stream");

    if ((cJSON_IsTrue(stream) ? 1 : 0) != req->stream) {
        return 0;
    }

    if (req->from == NGX_HTTP_AI_FMT_OPENAI) {
        options = ngx_http_ai_json_item(json, "stream_options");

        if (req->stream && req->force_usage
            && !cJSON_IsTrue(ngx_http_ai_json_item(options, "include_usage")))
        {
            return 0;
        }

        if (!req->stream && options) {
            return 0;
        }
    }

    return 1;
}


static ngx_uint_t
ngx_http_ai_tr_model_is(cJSON *json, ngx_str_t *model)
{
    const char  *s;

    s = ngx_http_ai_tr_string(json, "model");

    return s && ngx_strlen(s) == model->len
           && ngx_strncmp(s, model->data, model->len) == 0;
}


ngx_int_t
ngx_http_ai_translate_response(ngx_pool_t *pool, ngx_uint_t from,
    ngx_uint_t to, ngx_str_t *model, ngx_str_t *in, ngx_str_t *out,
    ngx_str_t *err)
{
    cJSON       *json, *pivot, *res;
    ngx_int_t    rc;
    ngx_uint_t   target, door;

    ngx_str_null(err);

    target = from;
    door = to;

    if (target == door) {
        *out = *in;
        return NGX_OK;
    }

    if (door == NGX_HTTP_AI_FMT_GEMINI
        || door > NGX_HTTP_AI_FMT_RESPONSES
        || target > NGX_HTTP_AI_FMT_RESPONSES)
    {
        ngx_str_set(err, "this response cannot be translated");
        return NGX_DECLINED;
    }

    json = cJSON_ParseWithLength((const char *) in->data, in->len);

    if (!cJSON_IsObject(json)) {
        cJSON_Delete(json);
        return ngx_http_ai_tr_error(pool, err,
                                    "the %s response is not a JSON object",
                            (char *) ngx_http_ai_format_name(target)->data);
    }

    pivot = NULL;
    res = NULL;

    switch (target) {

    case NGX_HTTP_AI_FMT_ANTHROPIC:
        rc = ngx_http_ai_anthropic_response_to_openai(pool, json, model,
                                                      &pivot, err);
        break;

    case NGX_HTTP_AI_FMT_GEMINI:
        rc = ngx_http_ai_gemini_response_to_openai(pool, json, model,
                                                   &pivot, err);
        break;

    case NGX_HTTP_AI_FMT_RESPONSES:
        rc = ngx_http_ai_responses_response_to_openai(pool, json, model,
                                                      &pivot, err);
        break;

    default: /* NGX_HTTP_AI_FMT_OPENAI: the pivot itself */
        pivot = json;
        json = NULL;
        rc = NGX_OK;
    }

    if (rc != NGX_OK) {
        goto done;
    }

    if (door == NGX_HTTP_AI_FMT_ANTHROPIC) {
        rc = ngx_http_ai_anthropic_response_from_openai(pool, pivot, model,
                                                        &res, err);
        if (rc != NGX_OK) {
            goto done;
        }

    } else if (door == NGX_HTTP_AI_FMT_RESPONSES) {
        rc = ngx_http_ai_responses_response_from_openai(pool, pivot, model,
                                                        &res, err);
        if (rc != NGX_OK) {
            goto done;
        }

    } else {
        res = pivot;
        pivot = NULL;
    }

    rc = ngx_http_ai_tr_print(pool, res, out);

done:

    cJSON_Delete(res);
    cJSON_Delete(pivot);
    cJSON_Delete(json);

    return rc;
}


ngx_int_t
ngx_http_ai_translate_error(ngx_pool_t *pool, ngx_uint_t from,
    ngx_uint_t to, ngx_uint_t status, ngx_str_t *in, ngx_str_t *out)
{
    u_char      *p, buf[256];
    cJSON       *json, *error, *res, *obj;
    ngx_int_t    rc;
    ngx_uint_t   target, door;
    const char  *message, *type;

    /* the Responses API's errors are OpenAI's */

    target = (from == NGX_HTTP_AI_FMT_RESPONSES) ? NGX_HTTP_AI_FMT_OPENAI
                                                 : from;
    door = (to == NGX_HTTP_AI_FMT_RESPONSES) ? NGX_HTTP_AI_FMT_OPENAI : to;

    json = (in && in->len)
           ? cJSON_ParseWithLength((const char *) in->data, in->len) : NULL;

    error = ngx_http_ai_json_item(json, "error");
    message = NULL;

    if (cJSON_IsObject(error)) {
        message = ngx_http_ai_tr_string(error, "message");

        if (target == door && message) {
            /* already the door's shape */

            if (door != NGX_HTTP_AI_FMT_ANTHROPIC
                || ngx_http_ai_tr_is(ngx_http_ai_json_item(json, "type"),
                                     "error"))
            {
                cJSON_Delete(json);
                *out = *in;
                return NGX_OK;
            }
        }

    } else if (cJSON_IsString(error)) {
        message = error->valuestring;

    } else if (json) {
        message = ngx_http_ai_tr_string(json, "message");

    } else if (in && ngx_http_ai_tr_plain(in, buf, sizeof(buf))) {
        /* a short line of text: the message itself */
        message = (const char *) buf;
    }

    if (message == NULL || *message == '\0') {
        p = ngx_snprintf(buf, sizeof(buf) - 1, "the %s upstream answered %ui",
                         (char *) ngx_http_ai_format_name(target)->data,
                         status);
        *p = '\0';
        message = (const char *) buf;
    }

    type = ngx_http_ai_tr_status_type(status);

    res = cJSON_CreateObject();
    if (res == NULL) {
        cJSON_Delete(json);
        return NGX_ERROR;
    }

    rc = NGX_ERROR;

    switch (door) {

    case NGX_HTTP_AI_FMT_ANTHROPIC:
        if (ngx_http_ai_tr_add_string(res, "type", "error") == NULL) {
            goto done;
        }

        obj = cJSON_AddObjectToObject(res, "error");
        if (obj == NULL
            || ngx_http_ai_tr_add_string(obj, "type", type) == NULL
            || ngx_http_ai_tr_add_string(obj, "message", message) == NULL)
        {
            goto done;
        }

        break;

    case NGX_HTTP_AI_FMT_GEMINI:
        obj = cJSON_AddObjectToObject(res, "error");
        if (obj == NULL
            || cJSON_AddNumberToObject(obj, "code", status) == NULL
            || ngx_http_ai_tr_add_string(obj, "message", message) == NULL
            || ngx_http_ai_tr_add_string(obj, "status",
                                     ngx_http_ai_tr_gemini_status(status))
               == NULL)
        {
            goto done;
        }

        break;

    default: /* NGX_HTTP_AI_FMT_OPENAI */
        obj = cJSON_AddObjectToObject(res, "error");
        if (obj == NULL
            || ngx_http_ai_tr_add_string(obj, "message", message) == NULL
            || ngx_http_ai_tr_add_string(obj, "type", type) == NULL
            || cJSON_AddNullToObject(obj, "param") == NULL
            || cJSON_AddNullToObject(obj, "code") == NULL)
        {
            goto done;
        }
    }

    rc = ngx_http_ai_tr_print(pool, res, out);

done:

    cJSON_Delete(res);
    cJSON_Delete(json);

    return rc;
}


/* a body of printable text that fits in buf (not an HTML page) */

static ngx_uint_t
ngx_http_ai_tr_plain(ngx_str_t *in, u_char *buf, size_t size)
{
    size_t   len;
    u_char  *p, *last;

    p = in->data;
    last = in->data + in->len;

    while (p < last && (*p == ' ' || *p == CR || *p == LF || *p == '\t')) {
        p++;
    }

    while (last > p
           && (last[-1] == ' ' || last[-1] == CR || last[-1] == LF
               || last[-1] == '\t'))
    {
        last--;
    }

    len = last - p;

    if (len == 0 || len >= size || *p == '<' || *p == '{' || *p == '[') {
        return 0;
    }

    for (last = p + len; p < last; p++) {
        if (*p < 0x20 && *p != '\t') {
            return 0;
        }
    }

    ngx_memcpy(buf, last - len, len);
    buf[len] = '\0';

    return 1;
}


static const char *
ngx_http_ai_tr_status_type(ngx_uint_t status)
{
    switch (status) {
    case 400:
        return "invalid_request_error";
    case 401:
        return "authentication_error";
    case 403:
        return "permission_error";
    case 404:
        return "not_found_error";
    case 413:
        return "request_too_large";
    case 429:
        return "rate_limit_error";
    case 529:
        return "overloaded_error";
    }

    return (status >= 500) ? "api_error" : "invalid_request_error";
}


static const char *
ngx_http_ai_tr_gemini_status(ngx_uint_t status)
{
    switch (status) {
    case 400:
        return "INVALID_ARGUMENT";
    case 401:
        return "UNAUTHENTICATED";
    case 403:
        return "PERMISSION_DENIED";
    case 404:
        return "NOT_FOUND";
    case 429:
        return "RESOURCE_EXHAUSTED";
    case 503:
    case 529:
        return "UNAVAILABLE";
    case 504:
        return "DEADLINE_EXCEEDED";
    }

    return (status >= 500) ? "INTERNAL" : "INVALID_ARGUMENT";
}


/*
 * A finish reason of format "from" in the words of format "to" (target to
 * door, as responses go): the pointer to a static string, the reason
 * itself when the formats are the same, NULL for no reason.
 */

ngx_str_t *
ngx_http_ai_finish_reason(ngx_uint_t from, ngx_uint_t to, ngx_str_t *reason)
{
    u_char  buf[64];

    if (reason == NULL || reason->len == 0) {
        return NULL;
    }

    if (from == to) {
        return reason;
    }

    if (reason->len >= sizeof(buf)) {
        return ngx_http_ai_tr_reason(to, from, "");
    }

    ngx_memcpy(buf, reason->data, reason->len);
    buf[reason->len] = '\0';

    return ngx_http_ai_tr_reason(to, from, (const char *) buf);
}


ngx_str_t *
ngx_http_ai_tr_reason(ngx_uint_t door, ngx_uint_t target, const char *reason)
{
    ngx_str_t  *openai;

    switch (target) {

    case NGX_HTTP_AI_FMT_ANTHROPIC:
        openai = ngx_http_ai_tr_reason_find(ngx_http_ai_anthropic_reasons,
                                            reason, &ngx_http_ai_stop);
        break;

    case NGX_HTTP_AI_FMT_GEMINI:
        openai = ngx_http_ai_tr_reason_find(ngx_http_ai_gemini_reasons,
                                            reason, &ngx_http_ai_stop);
        break;

    default: /* NGX_HTTP_AI_FMT_OPENAI */
        openai = NULL;
    }

    if (openai) {
        reason = (const char *) openai->data;
    }

    switch (door) {

    case NGX_HTTP_AI_FMT_ANTHROPIC:
        return ngx_http_ai_tr_reason_find(
                                     ngx_http_ai_openai_anthropic_reasons,
                                     reason, &ngx_http_ai_end_turn);

    case NGX_HTTP_AI_FMT_GEMINI:
        return ngx_http_ai_tr_reason_find(ngx_http_ai_openai_gemini_reasons,
                                          reason, &ngx_http_ai_g_stop);

    default: /* NGX_HTTP_AI_FMT_OPENAI */
        return openai ? openai
                      : ngx_http_ai_tr_reason_find(ngx_http_ai_openai_reasons,
                                                   reason, &ngx_http_ai_stop);
    }
}


static ngx_str_t *
ngx_http_ai_tr_reason_find(ngx_http_ai_tr_reason_t *r, const char *reason,
    ngx_str_t *dflt)
{
    size_t  len;

    len = ngx_strlen(reason);

    for ( /* void */ ; r->name.len; r++) {
        if (r->name.len == len
            && ngx_strncmp(r->name.data, reason, len) == 0)
        {
            return r->value;
        }
    }

    return dflt;
}


/* streams */

ngx_http_ai_stream_t *
ngx_http_ai_stream_create(ngx_pool_t *pool, ngx_uint_t from, ngx_uint_t to,
    ngx_str_t *model, ngx_uint_t include_usage)
{
    ngx_http_ai_stream_t  *st;

    /* from: the upstream's format, to: the client's */

    if (from > NGX_HTTP_AI_FMT_RESPONSES || to > NGX_HTTP_AI_FMT_RESPONSES
        || (to == NGX_HTTP_AI_FMT_GEMINI && from != NGX_HTTP_AI_FMT_GEMINI))
    {
        return NULL;
    }

    st = ngx_pcalloc(pool, sizeof(ngx_http_ai_stream_t));
    if (st == NULL) {
        return NULL;
    }

    st->pool = pool;
    st->door = to;
    st->target = from;
    st->include_usage = include_usage ? 1 : 0;
    st->created = time(NULL);
    st->block = -1;
    st->fast_block = -1;

    if (model && model->len) {
        st->model.data = (u_char *) ngx_http_ai_tr_strdup(pool,
                                                   (char *) model->data,
                                                   model->len);
        if (st->model.data == NULL) {
            return NULL;
        }

        st->model.len = model->len;

    } else {
        ngx_str_set(&st->model, "");
    }

    if (ngx_array_init(&st->tools, pool, 4, sizeof(ngx_int_t)) != NGX_OK
        || ngx_array_init(&st->blocks, pool, 4, sizeof(ngx_int_t)) != NGX_OK)
    {
        return NULL;
    }

    return st;
}


void
ngx_http_ai_tr_set_filter(ngx_http_ai_stream_t *st,
    ngx_http_ai_tr_filter_pt filter, void *data)
{
    st->filter = filter;
    st->filter_data = data;
}


ngx_int_t
ngx_http_ai_stream_event(ngx_http_ai_stream_t *st, ngx_str_t *name,
    ngx_str_t *data, cJSON *json, ngx_str_t *out)
{
    cJSON      *parsed;
    ngx_int_t   rc;
    ngx_str_t   empty;
    ngx_uint_t  skip;

    st->len = 0;

    if (st->aborted) {
        /* a filter ended the answer: the rest is not the client's */
        return ngx_http_ai_tr_result(st, NGX_OK, out);
    }

    if (name == NULL) {
        ngx_str_null(&empty);
        name = &empty;
    }

    if (ngx_http_ai_tr_same(st)) {
        /*
         * OpenAI's events are looked into only when they must be (its
         * pass-through parses itself); the other formats' always are
         */

        parsed = NULL;

        if (json == NULL && st->door != NGX_HTTP_AI_FMT_OPENAI
            && st->door != NGX_HTTP_AI_FMT_RESPONSES && data)
        {
            parsed = cJSON_ParseWithLength((const char *) data->data,
                                           data->len);
            json = parsed;
        }

        rc = ngx_http_ai_tr_passthrough(st, name, data, json);

        cJSON_Delete(parsed);

        return ngx_http_ai_tr_result(st, rc, out);
    }

    if (st->done || st->error) {
        /* whatever follows the end is not the client's */
        return ngx_http_ai_tr_result(st, NGX_OK, out);
    }

    /*
     * a text delta goes by the fast path; the rest is parsed here when
     * the caller did not have it parsed already
     */

    parsed = NULL;

    if (json == NULL && data && data->len
        && !(data->len == sizeof("[DONE]") - 1
             && ngx_strncmp(data->data, "[DONE]", data->len) == 0))
    {
        rc = NGX_DECLINED;

        if (st->target == NGX_HTTP_AI_FMT_ANTHROPIC) {
            rc = ngx_http_ai_tr_fast_anthropic(st, name, data);

        } else if (st->target == NGX_HTTP_AI_FMT_OPENAI) {
            rc = ngx_http_ai_tr_fast_openai(st, data);
        }

        if (rc != NGX_DECLINED) {
            return ngx_http_ai_tr_result(st, rc, out);
        }

        parsed = cJSON_ParseWithLength((const char *) data->data, data->len);
        json = parsed;
    }

    switch (st->target) {

    case NGX_HTTP_AI_FMT_ANTHROPIC:
        rc = (json == NULL)
             ? NGX_OK : ngx_http_ai_anthropic_stream_to_openai(st, name, json);
        break;

    case NGX_HTTP_AI_FMT_GEMINI:
        rc = (json == NULL)
             ? NGX_OK : ngx_http_ai_gemini_stream_to_openai(st, json);
        break;

    case NGX_HTTP_AI_FMT_RESPONSES:
        rc = (json == NULL)
             ? NGX_OK
             : ngx_http_ai_responses_stream_to_openai(st, name, json);
        break;

    default: /* NGX_HTTP_AI_FMT_OPENAI, the door Anthropic or Responses */

        if (data && data->len == sizeof("[DONE]") - 1
            && ngx_strncmp(data->data, "[DONE]", data->len) == 0)
        {
            rc = ngx_http_ai_tr_emit_close(st);

        } else if (cJSON_IsObject(json)) {
            skip = 0;
            rc = st->filter ? ngx_http_ai_tr_filter_chunk(st, json, &skip)
                            : NGX_OK;

            if (rc == NGX_OK && !skip) {
                rc = (st->door == NGX_HTTP_AI_FMT_RESPONSES)
                     ? ngx_http_ai_responses_stream_from_openai(st, json)
                     : ngx_http_ai_anthropic_stream_from_openai(st, json);
            }

        } else {
            rc = NGX_OK;
        }
    }

    cJSON_Delete(parsed);

    return ngx_http_ai_tr_result(st, rc, out);
}


ngx_int_t
ngx_http_ai_stream_end(ngx_http_ai_stream_t *st, ngx_uint_t complete,
    ngx_str_t *out)
{
    ngx_int_t  rc;

    st->len = 0;

    if (st->done || st->error || st->aborted) {
        return ngx_http_ai_tr_result(st, NGX_OK, out);
    }

    if (!complete) {
        rc = ngx_http_ai_tr_emit_error(st, "api_error",
                                 "the upstream stream ended before it was "
                                 "complete", "stream_truncated");
        return ngx_http_ai_tr_result(st, rc, out);
    }

    if (ngx_http_ai_tr_same(st)) {
        rc = NGX_OK;

        if (st->filter && st->open) {
            /* a text the upstream did not end: what is held goes */
            rc = ngx_http_ai_tr_filter_end(st);
            if (rc != NGX_OK) {
                return ngx_http_ai_tr_result(st, rc == NGX_ABORT ? NGX_OK
                                                                 : rc,
                                             out);
            }
        }

        if (st->door == NGX_HTTP_AI_FMT_OPENAI) {
            rc = ngx_http_ai_tr_out(st, "data: [DONE]\n\n",
                                    sizeof("data: [DONE]\n\n") - 1);
            st->done = 1;
        }

        return ngx_http_ai_tr_result(st, rc, out);
    }

    if (st->door == NGX_HTTP_AI_FMT_OPENAI && !st->finished) {
        rc = ngx_http_ai_tr_emit_finish(st, st->finish ? st->finish
                                                       : &ngx_http_ai_stop);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    rc = ngx_http_ai_tr_emit_close(st);

    return ngx_http_ai_tr_result(st, rc, out);
}


/* the most bytes of text in one rendered event */
#define NGX_HTTP_AI_RENDER_PIECE    64


ngx_int_t
ngx_http_ai_render_stream(ngx_pool_t *pool, ngx_uint_t from, ngx_uint_t to,
    ngx_str_t *model, ngx_str_t *in, ngx_uint_t include_usage,
    ngx_str_t *out, ngx_str_t *err)
{
    u_char                *p, *last, *cut;
    char                   piece[NGX_HTTP_AI_RENDER_PIECE + 1];
    cJSON                 *pivot, *choice, *msg, *calls, *call, *fn, *chunk,
                          *delta, *list, *item, *f;
    size_t                 n;
    ngx_int_t              rc;
    ngx_str_t              text, reason;
    ngx_uint_t             i;
    const char            *s;
    ngx_http_ai_stream_t  *st;

    ngx_str_null(err);

    if (to == NGX_HTTP_AI_FMT_GEMINI || to > NGX_HTTP_AI_FMT_RESPONSES) {
        ngx_str_set(err, "a stream is rendered for the OpenAI, the "
                         "Anthropic or the Responses door");
        return NGX_DECLINED;
    }

    /* the answer in the pivot's format */

    if (from == NGX_HTTP_AI_FMT_OPENAI) {
        text = *in;

    } else {
        rc = ngx_http_ai_translate_response(pool, from,
                                            NGX_HTTP_AI_FMT_OPENAI, model, in,
                                            &text, err);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    pivot = cJSON_ParseWithLength((const char *) text.data, text.len);

    choice = cJSON_GetArrayItem(ngx_http_ai_json_item(pivot, "choices"), 0);
    msg = ngx_http_ai_json_item(choice, "message");

    if (!cJSON_IsObject(msg)) {
        cJSON_Delete(pivot);
        return ngx_http_ai_tr_error(pool, err, "the answer has no %s",
                                    "message");
    }

    st = ngx_http_ai_stream_create(pool, NGX_HTTP_AI_FMT_OPENAI, to, model,
                                   include_usage);
    if (st == NULL) {
        cJSON_Delete(pivot);
        return NGX_ERROR;
    }

    s = ngx_http_ai_tr_string(pivot, "id");

    if (s && *s) {
        st->id = ngx_http_ai_tr_strdup(pool, s, ngx_strlen(s));
        if (st->id == NULL) {
            cJSON_Delete(pivot);
            return NGX_ERROR;
        }
    }

    ngx_http_ai_usage_object(NGX_HTTP_AI_FMT_OPENAI,
                             ngx_http_ai_json_item(pivot, "usage"),
                             &st->usage);

    /* the events accumulate in the stream's buffer: one output */

    st->len = 0;

    rc = ngx_http_ai_tr_emit_role(st);

    if (rc == NGX_OK) {
        rc = ngx_http_ai_tr_render_thinking(st, msg);
    }

    /* the text in pieces of a few words, cut after a space or a character */

    s = ngx_http_ai_tr_string(msg, "content");

    p = (u_char *) s;
    last = p ? p + ngx_strlen(s) : NULL;

    while (rc == NGX_OK && p && p < last) {
        cut = NULL;

        for (n = 0; p + n < last && n < NGX_HTTP_AI_RENDER_PIECE; n++) {
            if (n >= 16 && p[n - 1] == ' ') {
                cut = p + n;
                break;
            }
        }

        if (cut == NULL) {
            cut = p + n;

            /* within a UTF-8 character: back to its first byte */
            while (cut < last && cut > p + 1 && (*cut & 0xc0) == 0x80) {
                cut--;
            }
        }

        ngx_memcpy(piece, p, cut - p);
        piece[cut - p] = '\0';
        p = cut;

        chunk = ngx_http_ai_tr_chunk(st, &delta, NULL);
        if (chunk == NULL
            || ngx_http_ai_tr_add_string(delta, "content", piece) == NULL)
        {
            cJSON_Delete(chunk);
            rc = NGX_ERROR;
            break;
        }

        rc = ngx_http_ai_tr_emit_chunk(st, chunk);
    }

    /* the tool calls: a call's start, then its arguments */

    calls = ngx_http_ai_json_item(msg, "tool_calls");
    i = 0;

    cJSON_ArrayForEach(call, calls) {
        if (rc != NGX_OK) {
            break;
        }

        fn = ngx_http_ai_json_item(call, "function");

        chunk = ngx_http_ai_tr_chunk(st, &delta, NULL);
        if (chunk == NULL
            || (list = cJSON_AddArrayToObject(delta, "tool_calls")) == NULL
            || (item = ngx_http_ai_tr_push(list)) == NULL
            || cJSON_AddNumberToObject(item, "index", (double) i) == NULL
            || ngx_http_ai_tr_add_copy(item, "id", call, "id") != NGX_OK
            || ngx_http_ai_tr_add_string(item, "type", "function") == NULL
            || (f = cJSON_AddObjectToObject(item, "function")) == NULL
            || ngx_http_ai_tr_add_copy(f, "name", fn, "name") != NGX_OK
            || ngx_http_ai_tr_add_string(f, "arguments", "") == NULL)
        {
            cJSON_Delete(chunk);
            rc = NGX_ERROR;
            break;
        }

        rc = ngx_http_ai_tr_emit_chunk(st, chunk);

        s = ngx_http_ai_tr_string(fn, "arguments");

        if (rc == NGX_OK && s && *s) {
            chunk = ngx_http_ai_tr_chunk(st, &delta, NULL);
            if (chunk == NULL
                || (list = cJSON_AddArrayToObject(delta, "tool_calls"))
                   == NULL
                || (item = ngx_http_ai_tr_push(list)) == NULL
                || cJSON_AddNumberToObject(item, "index", (double) i) == NULL
                || (f = cJSON_AddObjectToObject(item, "function")) == NULL
                || ngx_http_ai_tr_add_string(f, "arguments", s) == NULL)
            {
                cJSON_Delete(chunk);
                rc = NGX_ERROR;
                break;
            }

            rc = ngx_http_ai_tr_emit_chunk(st, chunk);
        }

        i++;
    }

    /* the end: the finish reason, the usage, the closing events */

    s = ngx_http_ai_tr_string(choice, "finish_reason");

    reason.data = (u_char *) (s ? s : "stop");
    reason.len = ngx_strlen(reason.data);

    if (rc == NGX_OK) {
        rc = ngx_http_ai_tr_emit_finish(st, &reason);
    }

    if (rc == NGX_OK) {
        rc = ngx_http_ai_tr_emit_close(st);
    }

    cJSON_Delete(pivot);

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    out->data = st->buf;
    out->len = st->len;

    return NGX_OK;
}


/*
 * A rendered answer's reasoning, before its text: each of its
 * thinking_blocks (the text, then the signature: a block ends with it; a
 * redacted block whole), or its reasoning_content alone
 */

static ngx_int_t
ngx_http_ai_tr_render_thinking(ngx_http_ai_stream_t *st, cJSON *msg)
{
    cJSON       *blocks, *block;
    ngx_int_t    rc;
    const char  *s;

    blocks = ngx_http_ai_json_item(msg, "thinking_blocks");

    if (cJSON_GetArraySize(blocks) == 0) {
        s = ngx_http_ai_tr_string(msg, "reasoning_content");

        if (s == NULL || *s == '\0') {
            return NGX_OK;
        }

        return ngx_http_ai_tr_thinking_chunk(st, s, NULL);
    }

    cJSON_ArrayForEach(block, blocks) {
        s = ngx_http_ai_tr_string(block, "thinking");

        if (s && *s) {
            rc = ngx_http_ai_tr_thinking_chunk(st, s, NULL);
            if (rc != NGX_OK) {
                return rc;
            }
        }

        if (ngx_http_ai_tr_is(ngx_http_ai_json_item(block, "type"),
                              "redacted_thinking")
            || (ngx_http_ai_tr_string(block, "signature")
                && *ngx_http_ai_tr_string(block, "signature")))
        {
            rc = ngx_http_ai_tr_thinking_chunk(st, NULL, block);
            if (rc != NGX_OK) {
                return rc;
            }
        }
    }

    return NGX_OK;
}


/* a pivot chunk of reasoning text, or of a block's signature */

static ngx_int_t
ngx_http_ai_tr_thinking_chunk(ngx_http_ai_stream_t *st, const char *text,
    cJSON *block)
{
    cJSON  *chunk, *delta, *list, *copy;

    chunk = ngx_http_ai_tr_chunk(st, &delta, NULL);
    if (chunk == NULL) {
        return NGX_ERROR;
    }

    if (text) {
        if (ngx_http_ai_tr_add_string(delta, "reasoning_content", text)
            == NULL)
        {
            cJSON_Delete(chunk);
            return NGX_ERROR;
        }

    } else {
        list = cJSON_AddArrayToObject(delta, "thinking_blocks");
        copy = cJSON_Duplicate(block, 1);

        if (list == NULL || copy == NULL) {
            cJSON_Delete(copy);
            cJSON_Delete(chunk);
            return NGX_ERROR;
        }

        cJSON_AddItemToArray(list, copy);

        if (ngx_http_ai_tr_is(ngx_http_ai_json_item(copy, "type"),
                              "thinking")
            && ngx_http_ai_tr_set(copy, "thinking", cJSON_CreateString(""))
               != NGX_OK)
        {
            cJSON_Delete(chunk);
            return NGX_ERROR;
        }
    }

    return ngx_http_ai_tr_emit_chunk(st, chunk);
}


/*
 * The events pass as they are in the same format; but a Responses stream
 * with delta filters goes through the pivot and back (its events repeat
 * the text they carry: the filters' text must be in each of them).
 */

static ngx_uint_t
ngx_http_ai_tr_same(ngx_http_ai_stream_t *st)
{
    return st->door == st->target
           && !(st->door == NGX_HTTP_AI_FMT_RESPONSES && st->filter);
}


static ngx_int_t
ngx_http_ai_tr_passthrough(ngx_http_ai_stream_t *st, ngx_str_t *name,
    ngx_str_t *data, cJSON *json)
{
    cJSON       *type;
    ngx_int_t    rc;
    ngx_uint_t   action;

    if (st->door == NGX_HTTP_AI_FMT_OPENAI) {
        return ngx_http_ai_openai_stream_pass(st, name, data, json);
    }

    if (st->door == NGX_HTTP_AI_FMT_RESPONSES) {
        return ngx_http_ai_responses_stream_pass(st, name, data);
    }

    if (json == NULL || data == NULL) {
        return NGX_OK;
    }

    if (cJSON_IsObject(ngx_http_ai_json_item(json, "error"))) {
        st->error = 1;
    }

    if (st->door == NGX_HTTP_AI_FMT_ANTHROPIC) {
        type = ngx_http_ai_json_item(json, "type");

        if (ngx_http_ai_tr_is(type, "message_stop")) {
            st->done = 1;

        } else if (ngx_http_ai_tr_is(type, "error")) {
            /* the client has its error event: none at the end */
            st->error = 1;
        }

        if (st->filter && !st->error) {
            rc = ngx_http_ai_tr_filter_anthropic(st, json, &action);

            if (rc != NGX_OK || action == 2) {
                return rc == NGX_ABORT ? NGX_OK : rc;
            }

            if (action == 1
                || ngx_http_ai_json_has(data, "\\u0000"))
            {
                /* changed, or a \u0000 hid a string's rest from cJSON */
                return ngx_http_ai_tr_out_event(st, type->valuestring, json);
            }
        }

        if (name->len) {
            if (ngx_http_ai_tr_out(st, "event: ", 7) != NGX_OK
                || ngx_http_ai_tr_out(st, (char *) name->data, name->len)
                   != NGX_OK
                || ngx_http_ai_tr_out(st, "\n", 1) != NGX_OK)
            {
                return NGX_ERROR;
            }
        }

    }

    if (ngx_http_ai_tr_out(st, "data: ", 6) != NGX_OK
        || ngx_http_ai_tr_out(st, (char *) data->data, data->len) != NGX_OK
        || ngx_http_ai_tr_out(st, "\n\n", 2) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_tr_result(ngx_http_ai_stream_t *st, ngx_int_t rc, ngx_str_t *out)
{
    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (st->len == 0) {
        out->data = (u_char *) "";
        out->len = 0;
        return NGX_OK;
    }

    /* valid until the next call on the stream: the caller copies it */

    out->data = st->buf;
    out->len = st->len;

    return NGX_OK;
}


ngx_int_t
ngx_http_ai_tr_out(ngx_http_ai_stream_t *st, const char *p, size_t len)
{
    u_char  *o;

    o = ngx_http_ai_tr_room(st, len);
    if (o == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(o, p, len);
    st->len += len;

    return NGX_OK;
}


/* room for len more bytes of an event's output, where they go */

static u_char *
ngx_http_ai_tr_room(ngx_http_ai_stream_t *st, size_t len)
{
    u_char  *buf;
    size_t   size;

    if (st->len + len > st->size) {
        size = ngx_max(2 * st->size, st->len + len);
        size = ngx_max(size, 1024);

        buf = ngx_pnalloc(st->pool, size);
        if (buf == NULL) {
            return NULL;
        }

        if (st->buf) {
            ngx_memcpy(buf, st->buf, st->len);
            ngx_pfree(st->pool, st->buf);
        }

        st->buf = buf;
        st->size = size;
    }

    return st->buf + st->len;
}


/* "event: name\n" when name, "data: JSON\n\n" */

ngx_int_t
ngx_http_ai_tr_out_event(ngx_http_ai_stream_t *st, const char *name,
    cJSON *json)
{
    u_char  *p;
    size_t   size;

    size = ngx_http_ai_tr_json_size(json);
    if (size == 0) {
        return NGX_ERROR;
    }

    if (name) {
        if (ngx_http_ai_tr_out(st, "event: ", 7) != NGX_OK
            || ngx_http_ai_tr_out(st, name, ngx_strlen(name)) != NGX_OK
            || ngx_http_ai_tr_out(st, "\n", 1) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (ngx_http_ai_tr_out(st, "data: ", 6) != NGX_OK) {
        return NGX_ERROR;
    }

    /* the tree printed in place */

    p = ngx_http_ai_tr_room(st, size);
    if (p == NULL) {
        return NGX_ERROR;
    }

    (void) ngx_http_ai_tr_json_write(p, json);
    st->len += size;

    return ngx_http_ai_tr_out(st, "\n\n", 2);
}


/* an OpenAI chat.completion.chunk with one choice; *delta is its delta */

cJSON *
ngx_http_ai_tr_chunk(ngx_http_ai_stream_t *st, cJSON **delta,
    ngx_str_t *finish_reason)
{
    cJSON  *chunk, *choices, *choice;

    if (st->id == NULL) {
        st->id = ngx_http_ai_tr_gen_id(st->pool, "chatcmpl-");
        if (st->id == NULL) {
            return NULL;
        }
    }

    chunk = cJSON_CreateObject();
    if (chunk == NULL) {
        return NULL;
    }

    /* the strings are the stream's: referenced, not copied */

    if (ngx_http_ai_tr_add_ref(chunk, "id", st->id) == NULL
        || ngx_http_ai_tr_add_ref(chunk, "object", "chat.completion.chunk")
           == NULL
        || ngx_http_ai_tr_add_int(chunk, "created", (ngx_int_t) st->created)
           == NULL
        || ngx_http_ai_tr_add_ref(chunk, "model", (char *) st->model.data)
           == NULL)
    {
        goto failed;
    }

    choices = ngx_http_ai_tr_add_child(chunk, "choices", 1);
    if (choices == NULL) {
        goto failed;
    }

    if (delta == NULL) {
        return chunk;
    }

    choice = cJSON_CreateObject();
    if (choice == NULL) {
        goto failed;
    }

    cJSON_AddItemToArray(choices, choice);

    if (ngx_http_ai_tr_add_int(choice, "index", 0) == NULL) {
        goto failed;
    }

    *delta = ngx_http_ai_tr_add_child(choice, "delta", 0);
    if (*delta == NULL || cJSON_AddNullToObject(choice, "logprobs") == NULL) {
        goto failed;
    }

    if (finish_reason) {
        if (ngx_http_ai_tr_add_str(choice, "finish_reason", finish_reason)
            == NULL)
        {
            goto failed;
        }

    } else if (cJSON_AddNullToObject(choice, "finish_reason") == NULL) {
        goto failed;
    }

    return chunk;

failed:

    cJSON_Delete(chunk);
    return NULL;
}


/*
 * A chunk of the pivot goes to the door: as it is for the OpenAI door
 * (but the usage chunk only if the client asked for it), through the
 * Anthropic event builder for the Anthropic door.  Takes the chunk.
 */

/*
 * A pivot chunk of tool call "tool": its beginning (its id src[id], its
 * name src["name"], no arguments yet) or, src NULL, a piece of its
 * arguments
 */

ngx_int_t
ngx_http_ai_tr_emit_call(ngx_http_ai_stream_t *st, ngx_int_t tool,
    cJSON *src, const char *id, const char *args)
{
    cJSON  *chunk, *delta, *calls, *call, *fn;

    chunk = ngx_http_ai_tr_chunk(st, &delta, NULL);

    if (chunk == NULL
        || (calls = cJSON_AddArrayToObject(delta, "tool_calls")) == NULL
        || (call = ngx_http_ai_tr_push(calls)) == NULL
        || cJSON_AddNumberToObject(call, "index", (double) tool) == NULL
        || (src
            && (ngx_http_ai_tr_add_copy(call, "id", src, id) != NGX_OK
                || ngx_http_ai_tr_add_string(call, "type", "function")
                   == NULL))
        || (fn = cJSON_AddObjectToObject(call, "function")) == NULL
        || (src && ngx_http_ai_tr_add_copy(fn, "name", src, "name") != NGX_OK)
        || ngx_http_ai_tr_add_string(fn, "arguments", src ? "" : args)
           == NULL)
    {
        cJSON_Delete(chunk);
        return NGX_ERROR;
    }

    return ngx_http_ai_tr_emit_chunk(st, chunk);
}


ngx_int_t
ngx_http_ai_tr_emit_chunk(ngx_http_ai_stream_t *st, cJSON *chunk)
{
    cJSON       *choices;
    ngx_int_t    rc;
    ngx_uint_t   skip;

    if (chunk == NULL) {
        return NGX_ERROR;
    }

    if (st->filter && !st->aborted) {
        rc = ngx_http_ai_tr_filter_chunk(st, chunk, &skip);

        if (rc != NGX_OK || skip) {
            cJSON_Delete(chunk);
            return rc == NGX_ABORT ? NGX_OK : rc;
        }
    }

    if (st->aborted) {
        rc = NGX_OK;

    } else if (st->door == NGX_HTTP_AI_FMT_ANTHROPIC) {
        rc = ngx_http_ai_anthropic_stream_from_openai(st, chunk);

    } else if (st->door == NGX_HTTP_AI_FMT_RESPONSES) {
        rc = ngx_http_ai_responses_stream_from_openai(st, chunk);

    } else {
        choices = ngx_http_ai_json_item(chunk, "choices");

        if (!st->include_usage && cJSON_GetArraySize(choices) == 0) {
            rc = NGX_OK;

        } else {
            rc = ngx_http_ai_tr_out_event(st, NULL, chunk);
        }
    }

    cJSON_Delete(chunk);

    return rc;
}


ngx_int_t
ngx_http_ai_tr_emit_role(ngx_http_ai_stream_t *st)
{
    cJSON      *chunk, *delta;
    ngx_int_t   rc;

    if (st->role) {
        return NGX_OK;
    }

    st->role = 1;

    rc = ngx_http_ai_tr_fast_emit(st, NGX_HTTP_AI_FAST_ROLE, NULL);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    chunk = ngx_http_ai_tr_chunk(st, &delta, NULL);
    if (chunk == NULL
        || ngx_http_ai_tr_add_string(delta, "role", "assistant") == NULL
        || ngx_http_ai_tr_add_string(delta, "content", "") == NULL)
    {
        cJSON_Delete(chunk);
        return NGX_ERROR;
    }

    return ngx_http_ai_tr_emit_chunk(st, chunk);
}


ngx_int_t
ngx_http_ai_tr_emit_finish(ngx_http_ai_stream_t *st, ngx_str_t *reason)
{
    cJSON      *delta;
    ngx_int_t   rc;

    if (st->finished) {
        return NGX_OK;
    }

    if (ngx_http_ai_tr_emit_role(st) != NGX_OK) {
        return NGX_ERROR;
    }

    st->finished = 1;

    if (reason == &ngx_http_ai_stop && st->tool_calls) {
        reason = &ngx_http_ai_tool_calls;
    }

    if (reason) {
        rc = ngx_http_ai_tr_fast_emit(st, NGX_HTTP_AI_FAST_FINISH, reason);
        if (rc != NGX_DECLINED) {
            return rc;
        }
    }

    return ngx_http_ai_tr_emit_chunk(st, ngx_http_ai_tr_chunk(st, &delta,
                                                              reason));
}


/* the end: the usage chunk and [DONE], or Anthropic's closing events */

ngx_int_t
ngx_http_ai_tr_emit_close(ngx_http_ai_stream_t *st)
{
    cJSON      *chunk, *usage;
    ngx_int_t   rc;

    if (st->done || st->aborted) {
        return NGX_OK;
    }

    if (st->filter && st->open) {
        /* texts the upstream did not end: what is held goes first */
        rc = ngx_http_ai_tr_filter_end(st);
        if (rc != NGX_OK) {
            return rc == NGX_ABORT ? NGX_OK : rc;
        }
    }

    if (st->door == NGX_HTTP_AI_FMT_ANTHROPIC) {
        st->done = 1;
        return ngx_http_ai_anthropic_stream_close(st);
    }

    if (st->door == NGX_HTTP_AI_FMT_RESPONSES) {
        st->done = 1;
        return ngx_http_ai_responses_stream_close(st);
    }

    if (st->usage.found && st->include_usage) {
        rc = ngx_http_ai_tr_fast_emit(st, NGX_HTTP_AI_FAST_USAGE, NULL);

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc == NGX_DECLINED) {
            chunk = ngx_http_ai_tr_chunk(st, NULL, NULL);
            if (chunk == NULL) {
                return NGX_ERROR;
            }

            usage = ngx_http_ai_tr_usage_openai(&st->usage);
            if (usage == NULL) {
                cJSON_Delete(chunk);
                return NGX_ERROR;
            }

            cJSON_AddItemToObject(chunk, "usage", usage);

            if (ngx_http_ai_tr_emit_chunk(st, chunk) != NGX_OK) {
                return NGX_ERROR;
            }
        }
    }

    st->done = 1;

    return ngx_http_ai_tr_out(st, "data: [DONE]\n\n",
                              sizeof("data: [DONE]\n\n") - 1);
}


ngx_int_t
ngx_http_ai_tr_emit_error(ngx_http_ai_stream_t *st, const char *type,
    const char *message, const char *code)
{
    cJSON      *json, *error;
    ngx_int_t   rc;

    st->error = 1;

    json = cJSON_CreateObject();
    if (json == NULL) {
        return NGX_ERROR;
    }

    rc = NGX_ERROR;

    switch (st->door) {

    case NGX_HTTP_AI_FMT_RESPONSES:
        rc = ngx_http_ai_responses_stream_error(st, message, code);
        break;

    case NGX_HTTP_AI_FMT_ANTHROPIC:
        if (ngx_http_ai_tr_add_string(json, "type", "error") == NULL) {
            goto done;
        }

        error = cJSON_AddObjectToObject(json, "error");
        if (error == NULL
            || ngx_http_ai_tr_add_string(error, "type", type) == NULL
            || ngx_http_ai_tr_add_string(error, "message", message) == NULL)
        {
            goto done;
        }

        rc = ngx_http_ai_tr_out_event(st, "error", json);
        break;

    case NGX_HTTP_AI_FMT_GEMINI:
        error = cJSON_AddObjectToObject(json, "error");
        if (error == NULL
            || cJSON_AddNumberToObject(error, "code", 500) == NULL
            || ngx_http_ai_tr_add_string(error, "message", message) == NULL
            || ngx_http_ai_tr_add_string(error, "status", "INTERNAL") == NULL)
        {
            goto done;
        }

        rc = ngx_http_ai_tr_out_event(st, NULL, json);
        break;

    default: /* NGX_HTTP_AI_FMT_OPENAI */
        error = cJSON_AddObjectToObject(json, "error");
        if (error == NULL
            || ngx_http_ai_tr_add_string(error, "message", message) == NULL
            || ngx_http_ai_tr_add_string(error, "type", type) == NULL
            || cJSON_AddNullToObject(error, "param") == NULL
            || (code ? ngx_http_ai_tr_add_string(error, "code", code)
                     : cJSON_AddNullToObject(error, "code")) == NULL)
        {
            goto done;
        }

        rc = ngx_http_ai_tr_out_event(st, "error", json);
    }

done:

    cJSON_Delete(json);

    return rc;
}


ngx_int_t
ngx_http_ai_tr_array_set(ngx_array_t *a, ngx_uint_t i, ngx_int_t value)
{
    ngx_int_t  *p;

    while (a->nelts <= i) {
        p = ngx_array_push(a);
        if (p == NULL) {
            return NGX_ERROR;
        }

        *p = -1;
    }

    ((ngx_int_t *) a->elts)[i] = value;

    return NGX_OK;
}


ngx_int_t
ngx_http_ai_tr_array_get(ngx_array_t *a, ngx_uint_t i)
{
    return (i < a->nelts) ? ((ngx_int_t *) a->elts)[i] : -1;
}


/* helpers */

ngx_int_t
ngx_http_ai_tr_print(ngx_pool_t *pool, cJSON *json, ngx_str_t *out)
{
    size_t  len;

    len = ngx_http_ai_tr_json_size(json);
    if (len == 0) {
        return NGX_ERROR;
    }

    out->data = ngx_pnalloc(pool, len);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    out->len = ngx_http_ai_tr_json_write(out->data, json) - out->data;

    return NGX_OK;
}


/*
 * A tree printed as cJSON_PrintUnformatted() prints it (cJSON 1.7.15),
 * byte for byte, but without its buffer grown by copies and the copy at
 * the end: its size first, then into memory of that size.  0: a tree
 * cJSON would not print (a raw value without its text, an unknown type).
 */

static size_t
ngx_http_ai_tr_json_size(cJSON *item)
{
    size_t   size, n;
    cJSON   *child;
    u_char   num[32];

    switch (item->type & 0xff) {

    case cJSON_NULL:
    case cJSON_True:
        return 4;

    case cJSON_False:
        return 5;

    case cJSON_Number:
        return ngx_http_ai_tr_json_number(num, item->valuedouble);

    case cJSON_Raw:
        return item->valuestring ? ngx_strlen(item->valuestring) : 0;

    case cJSON_String:
        return ngx_http_ai_tr_json_string_size((u_char *) item->valuestring);

    case cJSON_Array:
    case cJSON_Object:
        size = 2;

        for (child = item->child; child; child = child->next) {

            if ((item->type & 0xff) == cJSON_Object) {
                size += ngx_http_ai_tr_json_string_size(
                                              (u_char *) child->string) + 1;
            }

            n = ngx_http_ai_tr_json_size(child);
            if (n == 0) {
                return 0;
            }

            size += n + (child->next ? 1 : 0);
        }

        return size;

    default:
        return 0;
    }
}


static u_char *
ngx_http_ai_tr_json_write(u_char *p, cJSON *item)
{
    cJSON   *child;
    u_char   num[32];

    switch (item->type & 0xff) {

    case cJSON_NULL:
        return ngx_cpymem(p, "null", 4);

    case cJSON_True:
        return ngx_cpymem(p, "true", 4);

    case cJSON_False:
        return ngx_cpymem(p, "false", 5);

    case cJSON_Number:
        /* (formatted aside: the formatting ends with a NUL) */
        return ngx_cpymem(p, num,
                          ngx_http_ai_tr_json_number(num, item->valuedouble));

    case cJSON_Raw:
        return ngx_cpymem(p, item->valuestring, ngx_strlen(item->valuestring));

    case cJSON_String:
        return ngx_http_ai_tr_json_string(p, (u_char *) item->valuestring);

    default: /* cJSON_Array, cJSON_Object: sized before */

        *p++ = ((item->type & 0xff) == cJSON_Object) ? '{' : '[';

        for (child = item->child; child; child = child->next) {

            if ((item->type & 0xff) == cJSON_Object) {
                p = ngx_http_ai_tr_json_string(p, (u_char *) child->string);
                *p++ = ':';
            }

            p = ngx_http_ai_tr_json_write(p, child);

            if (child->next) {
                *p++ = ',';
            }
        }

        *p++ = ((item->type & 0xff) == cJSON_Object) ? '}' : ']';

        return p;
    }
}


/* a string as cJSON's print_string_ptr() writes it (NULL: "") */

size_t
ngx_http_ai_tr_json_string_size(const u_char *s)
{
    size_t  size;

    if (s == NULL) {
        return 2;
    }

    for (size = 2; *s; s++) {
        if (*s > 31 && *s != '"' && *s != '\\') {
            size++;

        } else {
            size += (*s == '"' || *s == '\\' || *s == '\b' || *s == '\f'
                     || *s == '\n' || *s == '\r' || *s == '\t') ? 2 : 6;
        }
    }

    return size;
}


u_char *
ngx_http_ai_tr_json_string(u_char *p, const u_char *s)
{
    static u_char  hex[] = "0123456789abcdef";

    *p++ = '"';

    for ( /* void */ ; s && *s; s++) {

        if (*s > 31 && *s != '"' && *s != '\\') {
            *p++ = *s;
            continue;
        }

        *p++ = '\\';

        switch (*s) {
        case '"':  *p++ = '"'; break;
        case '\\': *p++ = '\\'; break;
        case '\b': *p++ = 'b'; break;
        case '\f': *p++ = 'f'; break;
        case '\n': *p++ = 'n'; break;
        case '\r': *p++ = 'r'; break;
        case '\t': *p++ = 't'; break;
        default:
            *p++ = 'u';
            *p++ = '0';
            *p++ = '0';
            *p++ = hex[*s >> 4];
            *p++ = hex[*s & 0xf];
        }
    }

    *p++ = '"';

    return p;
}


/*
 * A number as cJSON's print_number() writes it: "null" for NaN and the
 * infinities; "%1.15g" when it reads back the same, else "%1.17g" (an
 * integer below 10^15 is its digits: what "%1.15g" writes, without
 * snprintf() and the read back); into buf of 32 bytes, its length
 */

size_t
ngx_http_ai_tr_json_number(u_char *buf, double d)
{
    int       n;
    double    test, max;

    if (isnan(d) || isinf(d)) {
        ngx_memcpy(buf, "null", 4);
        return 4;
    }

    if (d > -1e15 && d < 1e15 && d == (double) (int64_t) d
        && (d != 0 || !signbit(d)))
    {
        return ngx_http_ai_tr_fast_int((char *) buf, (int64_t) d);
    }

    n = snprintf((char *) buf, 32, "%1.15g", d);

    test = strtod((char *) buf, NULL);
    max = (fabs(test) > fabs(d)) ? fabs(test) : fabs(d);

    if (!(fabs(test - d) <= max * DBL_EPSILON)) {
        n = snprintf((char *) buf, 32, "%1.17g", d);
    }

    return (n > 0 && n < 32) ? (size_t) n : 0;
}


/* *err = fmt with one "%s"; always NGX_DECLINED but on no memory */

ngx_int_t
ngx_http_ai_tr_error(ngx_pool_t *pool, ngx_str_t *err, const char *fmt,
    const char *arg)
{
    size_t  len;

    len = ngx_strlen(fmt) + (arg ? ngx_strlen(arg) : 0);

    err->data = ngx_pnalloc(pool, len);
    if (err->data == NULL) {
        return NGX_ERROR;
    }

    err->len = ngx_snprintf(err->data, len, fmt, arg ? arg : "")
               - err->data;

    return NGX_DECLINED;
}


ngx_uint_t
ngx_http_ai_tr_is(cJSON *item, const char *s)
{
    return cJSON_IsString(item) && item->valuestring
           && ngx_strcmp(item->valuestring, s) == 0;
}


const char *
ngx_http_ai_tr_string(cJSON *obj, const char *name)
{
    cJSON  *item;

    item = ngx_http_ai_json_item(obj, name);

    return cJSON_IsString(item) ? item->valuestring : NULL;
}


ngx_int_t
ngx_http_ai_tr_int(cJSON *obj, const char *name, ngx_int_t *value)
{
    cJSON  *item;

    item = ngx_http_ai_json_item(obj, name);

    /* (a provider's 1e300 is refused, not converted out of range) */

    if (!cJSON_IsNumber(item) || item->valuedouble < 0
        || item->valuedouble >= (double) NGX_MAX_INT_T_VALUE)
    {
        return NGX_DECLINED;
    }

    *value = (ngx_int_t) item->valuedouble;

    return NGX_OK;
}


cJSON *
ngx_http_ai_tr_add_string(cJSON *obj, const char *name, const char *s)
{
    cJSON  *item;

    /* names are literals: not copied (nor freed) */

    item = cJSON_CreateString(s ? s : "");
    if (item == NULL) {
        return NULL;
    }

    if (!cJSON_AddItemToObjectCS(obj, name, item)) {
        cJSON_Delete(item);
        return NULL;
    }

    return item;
}


/*
 * obj[name] = s without a copy: s outlives obj (a literal, or a string of
 * the stream's pool, or of a tree printed before it goes)
 */

cJSON *
ngx_http_ai_tr_add_ref(cJSON *obj, const char *name, const char *s)
{
    cJSON  *item;

    item = cJSON_CreateStringReference(s);
    if (item == NULL) {
        return NULL;
    }

    if (!cJSON_AddItemToObjectCS(obj, name, item)) {
        cJSON_Delete(item);
        return NULL;
    }

    return item;
}


/*
 * obj[name] = an integer, printed as it is: cJSON prints its numbers with
 * sprintf("%1.15g") and checks them with sscanf, a cost on every event
 */

cJSON *
ngx_http_ai_tr_add_int(cJSON *obj, const char *name, ngx_int_t n)
{
    char    buf[NGX_INT64_LEN + 1];
    cJSON  *item;

    /* (libc's: the format files link without NGINX's core) */
    snprintf(buf, sizeof(buf), "%lld", (long long) n);

    item = cJSON_CreateRaw(buf);
    if (item == NULL) {
        return NULL;
    }

    if (!cJSON_AddItemToObjectCS(obj, name, item)) {
        cJSON_Delete(item);
        return NULL;
    }

    return item;
}


/* obj[name] = a new object or array, the name a literal */

cJSON *
ngx_http_ai_tr_add_child(cJSON *obj, const char *name, ngx_uint_t array)
{
    cJSON  *item;

    item = array ? cJSON_CreateArray() : cJSON_CreateObject();
    if (item == NULL) {
        return NULL;
    }

    if (!cJSON_AddItemToObjectCS(obj, name, item)) {
        cJSON_Delete(item);
        return NULL;
    }

    return item;
}


cJSON *
ngx_http_ai_tr_add_str(cJSON *obj, const char *name, ngx_str_t *s)
{
    cJSON  *item;

    item = ngx_http_ai_tr_str(s);
    if (item == NULL) {
        return NULL;
    }

    if (!cJSON_AddItemToObjectCS(obj, name, item)) {
        cJSON_Delete(item);
        return NULL;
    }

    return item;
}


/* a cJSON string of an ngx_str_t */

cJSON *
ngx_http_ai_tr_str(ngx_str_t *s)
{
    char   *p;
    cJSON  *item;

    p = malloc(s->len + 1);
    if (p == NULL) {
        return NULL;
    }

    ngx_memcpy(p, s->data, s->len);
    p[s->len] = '\0';

    item = cJSON_CreateString(p);

    free(p);

    return item;
}


/* a new object at the end of array */

cJSON *
ngx_http_ai_tr_push(cJSON *array)
{
    cJSON  *obj;

    obj = cJSON_CreateObject();
    if (obj == NULL) {
        return NULL;
    }

    if (!cJSON_AddItemToArray(array, obj)) {
        cJSON_Delete(obj);
        return NULL;
    }

    return obj;
}


/* a copy of from[from_name], if there is one, as to[to_name] */

ngx_int_t
ngx_http_ai_tr_add_copy(cJSON *to, const char *to_name, cJSON *from,
    const char *from_name)
{
    cJSON  *item, *copy;

    item = ngx_http_ai_json_item(from, from_name);
    if (item == NULL || cJSON_IsNull(item)) {
        return NGX_OK;
    }

    copy = cJSON_Duplicate(item, 1);
    if (copy == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_ai_tr_set(to, to_name, copy);
}


/* sets obj[name] = item (replacing), takes item */

ngx_int_t
ngx_http_ai_tr_set(cJSON *obj, const char *name, cJSON *item)
{
    if (item == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_ai_json_item(obj, name)) {
        if (!cJSON_ReplaceItemInObjectCaseSensitive(obj, name, item)) {
            cJSON_Delete(item);
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    if (!cJSON_AddItemToObject(obj, name, item)) {
        cJSON_Delete(item);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * Tool call arguments (a JSON string) as an object: "" is {}, text that
 * is not a JSON object is kept under "arguments" rather than lost.
 */

cJSON *
ngx_http_ai_tr_parse_args(const char *args)
{
    cJSON  *json, *obj;

    if (args == NULL || *args == '\0') {
        return cJSON_CreateObject();
    }

    json = cJSON_Parse(args);

    if (cJSON_IsObject(json)) {
        return json;
    }

    cJSON_Delete(json);

    obj = cJSON_CreateObject();
    if (obj == NULL) {
        return NULL;
    }

    if (cJSON_AddStringToObject(obj, "arguments", args) == NULL) {
        cJSON_Delete(obj);
        return NULL;
    }

    return obj;
}


/*
 * "data:image/png;base64,AAAA": the media type and the base64 data.
 * NGX_DECLINED if url is not a data: URL, NGX_ABORT if it is one that is
 * not base64.
 */

ngx_int_t
ngx_http_ai_tr_data_url(ngx_pool_t *pool, const char *url, char **mime,
    char **data)
{
    const char  *p, *comma, *semi;

    if (ngx_strncmp(url, "data:", 5) != 0) {
        return NGX_DECLINED;
    }

    p = url + 5;

    comma = ngx_strchr(p, ',');
    if (comma == NULL) {
        return NGX_ABORT;
    }

    for (semi = p; semi < comma && *semi != ';'; semi++) { /* void */ }

    if (comma - semi != sizeof(";base64") - 1
        || ngx_strncmp(semi, ";base64", sizeof(";base64") - 1) != 0)
    {
        return NGX_ABORT;
    }

    if (semi == p) {
        *mime = "application/octet-stream";

    } else {
        *mime = ngx_http_ai_tr_strdup(pool, p, semi - p);
        if (*mime == NULL) {
            return NGX_ERROR;
        }
    }

    *data = (char *) comma + 1;

    return NGX_OK;
}


char *
ngx_http_ai_tr_strdup(ngx_pool_t *pool, const char *s, size_t len)
{
    char  *p;

    p = ngx_pnalloc(pool, len + 1);
    if (p == NULL) {
        return NULL;
    }

    ngx_memcpy(p, s, len);
    p[len] = '\0';

    return p;
}


/*
 * The text of a content: a string, or the "text" of its parts whose
 * "type" is type, joined by sep; *other counts the parts of other types.
 * "" for null; NULL on no memory.
 */

char *
ngx_http_ai_tr_text(ngx_pool_t *pool, cJSON *content, const char *type,
    const char *sep, ngx_uint_t *other)
{
    char        *p, *s;
    cJSON       *part;
    size_t       len, n;
    const char  *text;

    if (cJSON_IsString(content)) {
        return content->valuestring;
    }

    if (!cJSON_IsArray(content)) {
        return "";
    }

    len = 0;
    n = ngx_strlen(sep);

    cJSON_ArrayForEach(part, content) {
        text = ngx_http_ai_tr_string(part, "text");

        if (text && ngx_http_ai_tr_is(ngx_http_ai_json_item(part, "type"),
                                      type))
        {
            len += ngx_strlen(text) + n;

        } else if (other) {
            (*other)++;
        }
    }

    s = ngx_pnalloc(pool, len + 1);
    if (s == NULL) {
        return NULL;
    }

    p = s;

    cJSON_ArrayForEach(part, content) {
        text = ngx_http_ai_tr_string(part, "text");

        if (text && ngx_http_ai_tr_is(ngx_http_ai_json_item(part, "type"),
                                      type))
        {
            if (p != s) {
                p = (char *) ngx_cpymem(p, sep, n);
            }

            p = (char *) ngx_cpymem(p, text, ngx_strlen(text));
        }
    }

    *p = '\0';

    return s;
}


char *
ngx_http_ai_tr_gen_id(ngx_pool_t *pool, const char *prefix)
{
    char               *id, *p;
    size_t              len;
    uint64_t            v;
    ngx_uint_t          i;
    static uint64_t     seq;
    static const char   hex[] = "0123456789abcdef";

    len = ngx_strlen(prefix);

    id = ngx_pnalloc(pool, len + 24 + 1);
    if (id == NULL) {
        return NULL;
    }

    p = (char *) ngx_cpymem(id, prefix, len);

    v = ((uint64_t) time(NULL) << 20) ^ ((uint64_t) random() << 8) ^ ++seq;

    for (i = 0; i < 16; i++) {
        *p++ = hex[(v >> (60 - 4 * i)) & 0xf];
    }

    v = (uint64_t) random();

    for (i = 0; i < 8; i++) {
        *p++ = hex[(v >> (28 - 4 * i)) & 0xf];
    }

    *p = '\0';

    return id;
}


/* OpenAI's usage object */

cJSON *
ngx_http_ai_tr_usage_openai(ngx_http_ai_usage_t *u)
{
    cJSON  *usage, *details;

    usage = cJSON_CreateObject();
    if (usage == NULL) {
        return NULL;
    }

    if (cJSON_AddNumberToObject(usage, "prompt_tokens", u->prompt_tokens)
        == NULL
        || cJSON_AddNumberToObject(usage, "completion_tokens",
                                   u->completion_tokens) == NULL
        || cJSON_AddNumberToObject(usage, "total_tokens",
                                   u->total_tokens ? u->total_tokens
                                   : u->prompt_tokens + u->completion_tokens)
           == NULL)
    {
        goto failed;
    }

    details = cJSON_AddObjectToObject(usage, "prompt_tokens_details");
    if (details == NULL
        || cJSON_AddNumberToObject(details, "cached_tokens",
                                   u->cached_tokens) == NULL)
    {
        goto failed;
    }

    details = cJSON_AddObjectToObject(usage, "completion_tokens_details");
    if (details == NULL
        || cJSON_AddNumberToObject(details, "reasoning_tokens",
                                   u->reasoning_tokens) == NULL)
    {
        goto failed;
    }

    return usage;

failed:

    cJSON_Delete(usage);
    return NULL;
}




/*
 * Reasoning: OpenAI's effort levels as thinking budgets, Google's
 * documented mapping of them for Gemini (low 1024, medium 8192, high
 * 24576 tokens; none: no thinking), minimal as low (Anthropic's least
 * budget is 1024).  The budget of a thinking request, from the pivot:
 * Anthropic's "thinking" object (an Anthropic door's, or an OpenAI
 * client's, as LiteLLM takes it) first, else "reasoning_effort".
 * Returns NGX_OK with *budget (0: thinking off), or NGX_DECLINED when
 * the request says nothing of reasoning.
 */

ngx_int_t
ngx_http_ai_tr_thinking_budget(cJSON *in, ngx_int_t *budget)
{
    cJSON       *thinking;
    const char  *s;

    thinking = ngx_http_ai_json_item(in, "thinking");
    s = ngx_http_ai_tr_string(thinking, "type");

    if (s) {
        if (ngx_strcmp(s, "enabled") == 0
            && ngx_http_ai_tr_int(thinking, "budget_tokens", budget)
               == NGX_OK
            && *budget > 0)
        {
            return NGX_OK;
        }

        if (ngx_strcmp(s, "disabled") == 0) {
            *budget = 0;
            return NGX_OK;
        }
    }

    s = ngx_http_ai_tr_string(in, "reasoning_effort");

    if (s == NULL) {
        return NGX_DECLINED;
    }

    if (ngx_strcmp(s, "none") == 0) {
        *budget = 0;

    } else if (ngx_strcmp(s, "minimal") == 0 || ngx_strcmp(s, "low") == 0) {
        *budget = 1024;

    } else if (ngx_strcmp(s, "medium") == 0) {
        *budget = 8192;

    } else if (ngx_strcmp(s, "high") == 0) {
        *budget = 24576;

    } else {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* a budget as the nearest effort: below 4096 low, below 16384 medium */

const char *
ngx_http_ai_tr_budget_effort(ngx_int_t budget)
{
    if (budget < 4096) {
        return "low";
    }

    if (budget < 16384) {
        return "medium";
    }

    return "high";
}


/*
 * Gemini's thought signature of a function call, carried through the
 * call's id, which every client sends back with the call: "gts" N "_"
 * SIGNATURE ID, the signature (N bytes) in base64url (no padding), so
 * that the id stays within [A-Za-z0-9_-] (Anthropic's pattern for tool
 * use ids).  The signature of an id that carries one, as Gemini's base64,
 * or NULL.
 */

char *
ngx_http_ai_tr_call_id_sign(ngx_pool_t *pool, const char *id,
    const char *signature)
{
    u_char      *p, *d;
    size_t       slen, ilen, n;
    ngx_uint_t   i;

    slen = ngx_strlen(signature);
    ilen = ngx_strlen(id);

    /* a provider's answer is hostile: base64 only, else no signature */

    for (i = 0; i < slen; i++) {
        if (!((signature[i] >= 'A' && signature[i] <= 'Z')
              || (signature[i] >= 'a' && signature[i] <= 'z')
              || (signature[i] >= '0' && signature[i] <= '9')
              || signature[i] == '+' || signature[i] == '/'
              || signature[i] == '='))
        {
            return (char *) id;
        }
    }

    /* signature without '=': 3 + NGX_SIZE_T_LEN + 1 + slen + ilen */

    p = ngx_pnalloc(pool, sizeof("gts_") + NGX_SIZE_T_LEN + slen + ilen);
    if (p == NULL) {
        return NULL;
    }

    for (n = slen; n && signature[n - 1] == '='; n--) { /* void */ }

    d = ngx_snprintf(p, sizeof("gts_") + NGX_SIZE_T_LEN, "gts%uz_", n);

    for (i = 0; i < n; i++) {
        switch (signature[i]) {
        case '+':
            *d++ = '-';
            break;
        case '/':
            *d++ = '_';
            break;
        default:
            *d++ = signature[i];
        }
    }

    d = ngx_cpymem(d, id, ilen);
    *d = '\0';

    return (char *) p;
}


char *
ngx_http_ai_tr_call_id_signature(ngx_pool_t *pool, const char *id)
{
    char        *sig;
    size_t       n, len, i;
    const char  *p;

    if (id == NULL || ngx_strncmp(id, "gts", 3) != 0) {
        return NULL;
    }

    n = 0;

    for (p = id + 3; *p >= '0' && *p <= '9'; p++) {
        n = n * 10 + (*p - '0');

        if (n > 1024 * 1024) {
            return NULL;
        }
    }

    if (p == id + 3 || *p++ != '_' || ngx_strlen(p) < n || n == 0) {
        return NULL;
    }

    len = (n + 3) / 4 * 4;

    sig = ngx_pnalloc(pool, len + 1);
    if (sig == NULL) {
        return NULL;
    }

    for (i = 0; i < n; i++) {
        switch (p[i]) {
        case '-':
            sig[i] = '+';
            break;
        case '_':
            sig[i] = '/';
            break;
        default:
            if (!((p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= 'a' && p[i] <= 'z')
                  || (p[i] >= '0' && p[i] <= '9')))
            {
                /* not an id of ours */
                return NULL;
            }

            sig[i] = p[i];
        }
    }

    for ( /* void */ ; i < len; i++) {
        sig[i] = '=';
    }

    sig[len] = '\0';

    return sig;
}


/*
 * No silent drops: the fields of an OpenAI request that a target has no
 * equivalent for, when they ask for something (a seed, log
 * probabilities, penalties, biases, metadata for stored completions,
 * one call at a time), are refused with a message that names the field
 * and the target.  What a target does carry is mapped by its file.
 */

typedef struct {
    const char                 *name;
    ngx_uint_t                  targets;    /* bit per format: refused */
    ngx_uint_t                  when;       /* NGX_HTTP_AI_TR_ASKS_* */
} ngx_http_ai_tr_field_t;

#define NGX_HTTP_AI_TR_ASKS_SET     0   /* present, not null */
#define NGX_HTTP_AI_TR_ASKS_TRUE    1   /* true */
#define NGX_HTTP_AI_TR_ASKS_FALSE   2   /* false */
#define NGX_HTTP_AI_TR_ASKS_VALUE   3   /* a non-zero number, a non-empty
                                           object */

#define NGX_HTTP_AI_TR_A            (1 << NGX_HTTP_AI_FMT_ANTHROPIC)
#define NGX_HTTP_AI_TR_G            (1 << NGX_HTTP_AI_FMT_GEMINI)


static ngx_http_ai_tr_field_t  ngx_http_ai_tr_fields[] = {
    { "seed", NGX_HTTP_AI_TR_A, NGX_HTTP_AI_TR_ASKS_SET },
    { "logprobs", NGX_HTTP_AI_TR_A | NGX_HTTP_AI_TR_G,
      NGX_HTTP_AI_TR_ASKS_TRUE },
    { "top_logprobs", NGX_HTTP_AI_TR_A | NGX_HTTP_AI_TR_G,
      NGX_HTTP_AI_TR_ASKS_SET },
    { "logit_bias", NGX_HTTP_AI_TR_A | NGX_HTTP_AI_TR_G,
      NGX_HTTP_AI_TR_ASKS_VALUE },
    { "presence_penalty", NGX_HTTP_AI_TR_A, NGX_HTTP_AI_TR_ASKS_VALUE },
    { "frequency_penalty", NGX_HTTP_AI_TR_A, NGX_HTTP_AI_TR_ASKS_VALUE },
    { "metadata", NGX_HTTP_AI_TR_A | NGX_HTTP_AI_TR_G,
      NGX_HTTP_AI_TR_ASKS_VALUE },
    { "store", NGX_HTTP_AI_TR_A | NGX_HTTP_AI_TR_G,
      NGX_HTTP_AI_TR_ASKS_TRUE },
    { "parallel_tool_calls", NGX_HTTP_AI_TR_G, NGX_HTTP_AI_TR_ASKS_FALSE },
    { NULL, 0, 0 }
};


ngx_int_t
ngx_http_ai_tr_unsupported(ngx_pool_t *pool, cJSON *in, ngx_uint_t to,
    ngx_str_t *err)
{
    cJSON                   *item;
    ngx_uint_t               asks;
    ngx_http_ai_tr_field_t  *f;

    for (f = ngx_http_ai_tr_fields; f->name; f++) {

        if (!(f->targets & (1 << to))) {
            continue;
        }

        item = ngx_http_ai_json_item(in, f->name);

        if (item == NULL || cJSON_IsNull(item)) {
            continue;
        }

        switch (f->when) {

        case NGX_HTTP_AI_TR_ASKS_TRUE:
            asks = cJSON_IsTrue(item);
            break;

        case NGX_HTTP_AI_TR_ASKS_FALSE:
            asks = cJSON_IsFalse(item);
            break;

        case NGX_HTTP_AI_TR_ASKS_VALUE:
            asks = cJSON_IsNumber(item) ? item->valuedouble != 0
                   : cJSON_IsObject(item) ? cJSON_GetArraySize(item) > 0
                   : 1;
            break;

        default: /* NGX_HTTP_AI_TR_ASKS_SET */
            asks = 1;
        }

        if (asks) {
            err->data = ngx_pnalloc(pool, 64 + ngx_strlen(f->name));
            if (err->data == NULL) {
                return NGX_ERROR;
            }

            err->len = ngx_snprintf(err->data, 64 + ngx_strlen(f->name),
                                    "\"%s\" is not supported by %s "
                                    "targets", f->name,
                                    (char *) ngx_http_ai_format_name(to)
                                             ->data)
                       - err->data;

            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}
