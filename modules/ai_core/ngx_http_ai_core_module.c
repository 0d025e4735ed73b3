
/*
 * Copyright (C) AI Gateway authors
 */


#include "ngx_http_ai_core_module.h"
#include "ngx_http_ai_core_json.h"

#include <openssl/rand.h>


static ngx_int_t ngx_http_ai_core_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_ai_core_not_allowed(ngx_http_request_t *r,
    char *allow);
static void ngx_http_ai_core_identity(ngx_http_request_t *r);
static void ngx_http_ai_core_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_ai_core_process_body(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx);
static ngx_int_t ngx_http_ai_core_collect_body(ngx_http_request_t *r,
    ngx_str_t *body);
static ngx_int_t ngx_http_ai_core_body_room(ngx_http_request_t *r,
    ngx_http_ai_core_ctx_t *cc);
static void ngx_http_ai_core_room_back(void *data);

static ngx_int_t ngx_http_ai_core_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_ai_core_postconfiguration(ngx_conf_t *cf);
static void *ngx_http_ai_core_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_ai_core_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_ai_core_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_ai_core_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);


static ngx_conf_enum_t  ngx_http_ai_auth_modes[] = {
    { ngx_string("off"), NGX_HTTP_AI_AUTH_OFF },
    { ngx_string("optional"), NGX_HTTP_AI_AUTH_OPTIONAL },
    { ngx_string("required"), NGX_HTTP_AI_AUTH_REQUIRED },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_ai_core_commands[] = {

    { ngx_string("ai_core"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_core_loc_conf_t, enable),
      NULL },

    { ngx_string("ai_auth"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_core_loc_conf_t, auth),
      &ngx_http_ai_auth_modes },

    { ngx_string("ai_consumer"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE23,
      ngx_http_ai_consumer,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_consumers_file"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_consumers_file,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_sse_max_event_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_core_loc_conf_t, max_event_size),
      NULL },

    { ngx_string("ai_response_max_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_core_loc_conf_t, max_response_size),
      NULL },

    { ngx_string("ai_price"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_ai_price,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_store"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_ai_store,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_ai_core_module_ctx = {
    ngx_http_ai_core_preconfiguration,     /* preconfiguration */
    ngx_http_ai_core_postconfiguration,    /* postconfiguration */

    ngx_http_ai_core_create_main_conf,     /* create main configuration */
    ngx_http_ai_core_init_main_conf,       /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_ai_core_create_loc_conf,      /* create location configuration */
    ngx_http_ai_core_merge_loc_conf        /* merge location configuration */
};


const ngx_uint_t  ngx_http_ai_core_api_version = NGX_HTTP_AI_CORE_API;


ngx_module_t  ngx_http_ai_core_module = {
    NGX_MODULE_V1,
    &ngx_http_ai_core_module_ctx,          /* module context */
    ngx_http_ai_core_commands,             /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/*
 * The request's context.  A subrequest has none: it must not act on its
 * parent's request.  An internal redirect or error_page clears the
 * modules' contexts; the core's is found again through its pool cleanup
 * (as the realip module does), so that what was read, decided and
 * counted survives them.
 */

ngx_http_ai_ctx_t *
ngx_http_ai_get_ctx(ngx_http_request_t *r)
{
    ngx_http_ai_ctx_t   *ctx;
    ngx_pool_cleanup_t  *cln;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_core_module);

    if (ctx || !(r->internal || r->filter_finalize)) {
        return ctx;
    }

    for (cln = r->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_ai_core_ctx_cleanup) {
            ctx = cln->data;

            if (ctx->request == r) {
                ngx_http_set_ctx(r, ctx, ngx_http_ai_core_module);
                return ctx;
            }
        }
    }

    return NULL;
}


ngx_http_ai_ctx_t *
ngx_http_ai_create_ctx(ngx_http_request_t *r)
{
    ngx_http_ai_ctx_t       *ctx;
    ngx_pool_cleanup_t      *cln;
    ngx_http_ai_core_ctx_t  *cc;

    ctx = ngx_http_ai_get_ctx(r);
    if (ctx) {
        return ctx;
    }

    cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_http_ai_core_ctx_t));
    if (cln == NULL) {
        return NULL;
    }

    cc = cln->data;
    ngx_memzero(cc, sizeof(ngx_http_ai_core_ctx_t));

    ctx = &cc->ai;

    cln->handler = ngx_http_ai_core_ctx_cleanup;

    /*
     * set by ngx_pcalloc():
     *
     *     ctx->consumer = { 0, NULL };
     *     ctx->usage = { 0 };
     *     ...
     */

    ctx->request = r;
    ctx->req.endpoint = ngx_http_ai_endpoint(&r->uri, &ctx->req.format);

    if (ctx->req.endpoint == NGX_HTTP_AI_EP_MODELS
        && ngx_http_ai_core_find_header(r, "anthropic-version",
                                        sizeof("anthropic-version") - 1))
    {
        /* the Anthropic API's model list: its SDK sends the version */
        ctx->req.format = NGX_HTTP_AI_FMT_ANTHROPIC;
    }

    ctx->req.max_tokens = NGX_HTTP_AI_UNSET;
    ctx->upstream_format = ctx->req.format;
    ctx->start = (ngx_msec_t) (r->start_sec * 1000 + r->start_msec);
    cc->status = NGX_DECLINED;

    ngx_http_set_ctx(r, ctx, ngx_http_ai_core_module);

    return ctx;
}


void
ngx_http_ai_core_enable(ngx_conf_t *cf)
{
    ngx_http_ai_core_loc_conf_t  *alcf;

    alcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_ai_core_module);

    if (alcf->enable == NGX_CONF_UNSET) {
        alcf->enable = 1;
    }
}


ngx_int_t
ngx_http_ai_add_event_handler(ngx_conf_t *cf,
    ngx_http_ai_event_handler_pt handler)
{
    ngx_http_ai_event_handler_pt  *h;
    ngx_http_ai_core_main_conf_t  *amcf;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ai_core_module);

    h = ngx_array_push(&amcf->handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = handler;

    return NGX_OK;
}


/*
 * The REWRITE phase handler: the consumer first (no body is read for an
 * unknown key), then the body, read once, then the normalized view.
 * It runs before PREACCESS, so that limits there see the consumer and the
 * request.
 */

static ngx_int_t
ngx_http_ai_core_handler(ngx_http_request_t *r)
{
    ngx_int_t                     rc;
    ngx_uint_t                    format;
    ngx_http_ai_ctx_t            *ctx;
    ngx_http_ai_core_ctx_t       *cc;
    ngx_http_ai_core_loc_conf_t  *alcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_core_module);

    if (!alcf->enable) {
        return NGX_DECLINED;
    }

    if (r != r->main) {
        if (ngx_http_ai_endpoint(&r->uri, &format) == NGX_HTTP_AI_EP_UNKNOWN)
        {
            return NGX_DECLINED;
        }

        /*
         * a subrequest (mirror, auth_request, SSI) shares its parent's
         * body and connection but would need an AI request of its own
         */

        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ai: subrequests to an AI endpoint are not supported: "
                      "\"%V\"", ngx_http_ai_safe_str(r->pool, &r->uri));

        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* found again after an internal redirect too: read and parsed once */

    ctx = ngx_http_ai_get_ctx(r);
    cc = ngx_http_ai_core_ctx(ctx);

    if (ctx && cc->body_read) {
        /*
         * the phases run again: after the body was read, or in another
         * location ("rewrite ... last", an internal redirect), whose
         * router decides anew
         */

        if (cc->status == NGX_DECLINED && cc->route_conf != r->loc_conf) {
            ngx_str_null(&ctx->route_model);

            if (ngx_http_ai_core_route(r, ctx) == NGX_ERROR) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            rc = ngx_http_ai_core_check_model(r, ctx);

            if (rc != NGX_DECLINED) {
                cc->status = rc;
            }
        }

        return cc->status;
    }

    if (ctx == NULL) {
        ctx = ngx_http_ai_create_ctx(r);
        cc = ngx_http_ai_core_ctx(ctx);
        if (ctx == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    rc = ngx_http_ai_core_identify(r, ctx, alcf);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    switch (ctx->req.endpoint) {

    case NGX_HTTP_AI_EP_UNKNOWN:
        /* not an AI request: the location's handler decides */
        return NGX_DECLINED;

    case NGX_HTTP_AI_EP_MODELS:
        if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
            return ngx_http_ai_core_not_allowed(r, "GET, HEAD");
        }

        /* no body: the view (the id in the path) is complete */

        cc->body_read = 1;
        cc->status = NGX_DECLINED;

        rc = ngx_http_ai_core_route(r, ctx);

        if (rc == NGX_ERROR) {
            cc->status = NGX_HTTP_INTERNAL_SERVER_ERROR;

        } else {
            cc->status = ngx_http_ai_core_check_model(r, ctx);
        }

        return cc->status;

    case NGX_HTTP_AI_EP_RESPONSE:
        /* a stored response: read or deleted, no body */

        if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_DELETE))) {
            return ngx_http_ai_core_not_allowed(r, "GET, HEAD, DELETE");
        }

        cc->body_read = 1;
        cc->status = NGX_DECLINED;

        rc = ngx_http_ai_core_route(r, ctx);

        if (rc == NGX_ERROR) {
            cc->status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return cc->status;

    default:
        break;
    }

    if (r->method != NGX_HTTP_POST) {
        return ngx_http_ai_core_not_allowed(r, "POST");
    }

    ngx_http_ai_core_identity(r);

    if (ngx_http_ai_core_body_room(r, cc) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_read_client_request_body(r, ngx_http_ai_core_body_handler);

    if (cc->room) {
        /* the rest is read into the room by a buffer of NGINX's own */
        ngx_http_ai_core_room_back(cc->room);
    }

    if (rc == NGX_HTTP_REQUEST_ENTITY_TOO_LARGE) {
        return ngx_http_ai_error(r, rc, NULL, NULL, "request_too_large",
                                 "request body is larger than %O bytes",
                                 ((ngx_http_core_loc_conf_t *)
                                  ngx_http_get_module_loc_conf(r,
                                                     ngx_http_core_module))
                                 ->client_max_body_size);
    }

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    ngx_http_finalize_request(r, NGX_DONE);

    return NGX_DONE;
}


static ngx_int_t
ngx_http_ai_core_not_allowed(ngx_http_request_t *r, char *allow)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

#if (nginx_version >= 1023000)
    h->next = NULL;
#endif

    h->hash = 1;
    ngx_str_set(&h->key, "Allow");
    h->value.data = (u_char *) allow;
    h->value.len = ngx_strlen(allow);

    return ngx_http_ai_error(r, NGX_HTTP_NOT_ALLOWED, NULL, NULL, NULL,
                             "method %V is not allowed for %V, use %s",
                             &r->method_name, &r->uri, allow);
}


/*
 * The usage is read from the response, so it must come as plain text: a
 * client's Accept-Encoding, which "proxy_pass" would forward, asks for
 * identity instead (the response filters never scan an encoded body).
 */

static void
ngx_http_ai_core_identity(ngx_http_request_t *r)
{
    ngx_table_elt_t  *h;

    h = ngx_http_ai_core_find_header(r, "accept-encoding",
                                     sizeof("accept-encoding") - 1);

    if (h) {
        ngx_str_set(&h->value, "identity");
    }
}


static void
ngx_http_ai_core_body_handler(ngx_http_request_t *r)
{
    ngx_http_ai_ctx_t       *ctx;
    ngx_http_ai_core_ctx_t  *cc;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_core_module);
    cc = ngx_http_ai_core_ctx(ctx);

    if (cc->room) {
        /* read at once, within ngx_http_read_client_request_body() */
        ngx_http_ai_core_room_back(cc->room);
    }

    cc->body_read = 1;
    cc->status = ngx_http_ai_core_process_body(r, ctx);

    r->preserve_body = 1;

    r->write_event_handler = ngx_http_core_run_phases;
    ngx_http_core_run_phases(r);
}


static ngx_int_t
ngx_http_ai_core_process_body(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx)
{
    u_char      *p;
    ngx_int_t    rc;
    ngx_str_t    err, model, *mp;
    const char  *param;

    if (ngx_http_ai_core_collect_body(r, &ctx->req.body) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->req.body.len == 0) {
        return ngx_http_ai_error(r, NGX_HTTP_BAD_REQUEST, NULL, NULL, NULL,
                                 "request body is empty, a JSON object is "
                                 "expected");
    }

    mp = NULL;

    if (ctx->req.endpoint == NGX_HTTP_AI_EP_GEMINI) {
        /* .../models/{model}:generateContent */
        p = ngx_strlchr(r->uri.data, r->uri.data + r->uri.len, ':');
        model.data = p;

        while (model.data > r->uri.data && model.data[-1] != '/') {
            model.data--;
        }

        model.len = p - model.data;
        mp = &model;
    }

    param = NULL;

    rc = ngx_http_ai_parse_request(r->pool, &ctx->req, mp, &param, &err);

    if (rc == NGX_DECLINED) {
        return ngx_http_ai_error(r, NGX_HTTP_BAD_REQUEST, NULL, param, NULL,
                                 "%V", &err);
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* a consumer learns nothing of the texts another sent */

    ctx->req.scope = ctx->consumer.len
                     ? ngx_http_ai_hash_scope(ctx->consumer.data,
                                              ctx->consumer.len)
                     : 0;

    if (mp && (size_t) (r->uri.data + r->uri.len - model.data - model.len)
              >= sizeof(":streamGenerateContent") - 1
        && ngx_strncmp(model.data + model.len, ":streamGenerateContent",
                       sizeof(":streamGenerateContent") - 1)
           == 0)
    {
        /* Gemini streams by URL, not by a body field */
        ctx->req.stream = 1;
    }

    if (ngx_http_ai_core_route(r, ctx) == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_ai_core_check_model(r, ctx);

    if (rc != NGX_DECLINED) {
        return rc;
    }

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai request: model \"%V\" stream:%ui messages:%ui "
                   "text:%uz", ngx_http_ai_safe_str(r->pool, &ctx->req.model),
                   (ngx_uint_t) ctx->req.stream,
                   ctx->req.messages.nelts, ctx->req.text_len);

    return NGX_DECLINED;
}


ngx_int_t
ngx_http_ai_send_answer(ngx_http_request_t *r, ngx_uint_t from,
    ngx_str_t *answer)
{
    ngx_int_t             rc;
    ngx_str_t             out, err, filtered;
    ngx_http_ai_delta_t   abort;
    ngx_buf_t          *b;
    ngx_chain_t         cl;
    ngx_http_ai_ctx_t  *ai;

    ai = ngx_http_ai_get_ctx(r);

    if (ai == NULL) {
        return NGX_DECLINED;
    }

    if (ngx_http_ai_deltas_wanted(r)) {
        /*
         * the delta filters see the answer as the client will get it:
         * whole, in the door's format, then rendered as its stream
         */

        rc = ngx_http_ai_translate_response(r->pool, from, ai->req.format,
                                            &ai->req.model, answer, &out,
                                            &err);
        if (rc != NGX_OK) {
            return (rc == NGX_DECLINED) ? NGX_DECLINED
                                        : NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memzero(&abort, sizeof(ngx_http_ai_delta_t));

        rc = ngx_http_ai_filter_answer(r, ai->req.format, &out, &abort);

        if (rc == NGX_ABORT) {
            return ngx_http_ai_error(r, abort.status, NULL, NULL,
                                     "content_filtered", "%V",
                                     &abort.message);
        }

        if (rc != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        filtered = out;
        answer = &filtered;
        from = ai->req.format;
    }

    if (ai->req.stream && !ai->req.include_usage) {
        /*
         * the client's stream carries no usage: the answer's is what the
         * request used (a limit's settlement, the record)
         */

        (void) ngx_http_ai_usage_parse(from, answer, &ai->usage);
    }

    if (ai->req.stream) {
        rc = ngx_http_ai_render_stream(r->pool, from, ai->req.format,
                                       &ai->req.model, answer,
                                       ai->req.include_usage, &out, &err);
        ngx_str_set(&r->headers_out.content_type, "text/event-stream");

    } else if (answer == &filtered) {
        out = filtered;
        rc = NGX_OK;
        ngx_str_set(&r->headers_out.content_type, "application/json");

    } else {
        rc = ngx_http_ai_translate_response(r->pool, from, ai->req.format,
                                            &ai->req.model, answer, &out,
                                            &err);
        ngx_str_set(&r->headers_out.content_type, "application/json");
    }

    if (rc == NGX_DECLINED) {
        ngx_str_null(&r->headers_out.content_type);
        return NGX_DECLINED;
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = out.data;
    b->last = out.data + out.len;
    b->memory = 1;
    b->last_buf = (r == r->main);
    b->last_in_chain = 1;

    /* what the core watches is in the door's format */
    ai->upstream_format = ai->req.format;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = out.len;
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    cl.buf = b;
    cl.next = NULL;

    return ngx_http_output_filter(r, &cl);
}


void
ngx_http_ai_request_keep(ngx_http_request_t *r)
{
    ngx_http_ai_ctx_t  *ctx;

    ctx = ngx_http_ai_get_ctx(r);

    if (ctx) {
        ngx_http_ai_core_ctx(ctx)->keep_tree = 1;
    }
}


/*
 * A stream's request tree is freed once the response's header went out,
 * unless a module keeps it or the body was changed (the trees retired
 * then may be pointed into until the request ends): a stream may hold
 * its connection for minutes, and the tree, a malloc'd block a little
 * larger than the body (1.3 KB for a 200-byte one), was most of what the
 * gateway held for a stream beyond NGINX's own (bench: 18.9 -> 18.0 kB a
 * stream).  The view keeps its model and user (copied when parsed), the
 * messages' roles (literals, or copies) and count, and text_len; the
 * system text's length is kept for ngx_http_ai_final_usage().
 */

void
ngx_http_ai_core_free_tree(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx)
{
    ngx_uint_t               i;
    ngx_http_ai_message_t   *m;
    ngx_http_ai_core_ctx_t  *cc;

    cc = ngx_http_ai_core_ctx(ctx);

    if ((ctx->req.json == NULL && !ctx->req.lazy) || cc->keep_tree
        || cc->retired)
    {
        return;
    }

    /* a tree not built yet is never built now */

    ctx->req.lazy = 0;

    m = ctx->req.messages.elts;

    for (i = 0; i < ctx->req.messages.nelts; i++) {
        ngx_str_set(&m[i].text, "");
        m[i].json = NULL;
    }

    cc->system_len = ctx->req.system.len;
    ngx_str_set(&ctx->req.system, "");

    if (ctx->req.json) {
        ngx_http_ai_json_delete(ctx->req.json);
        ctx->req.json = NULL;
    }

    cc->tree_freed = 1;

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai: the stream's request tree freed");
}


ngx_int_t
ngx_http_ai_request_set_body(ngx_http_request_t *r, ngx_str_t *body,
    ngx_str_t *err)
{
    ngx_buf_t               *b;
    ngx_chain_t             *cl;
    const char              *param;
    ngx_table_elt_t         *h;
    ngx_http_ai_ctx_t       *ctx;
    ngx_http_ai_request_t    req;
    ngx_http_ai_core_ctx_t  *cc;

    ctx = ngx_http_ai_get_ctx(r);

    if (ctx == NULL || !ctx->req.parsed || r->request_body == NULL) {
        ngx_str_set(err, "no parsed request to change");
        return NGX_DECLINED;
    }

    /* the new view first: a body that does not parse changes nothing */

    ngx_memzero(&req, sizeof(ngx_http_ai_request_t));

    req.endpoint = ctx->req.endpoint;
    req.format = ctx->req.format;
    req.max_tokens = NGX_HTTP_AI_UNSET;
    req.body = *body;

    param = NULL;

    switch (ngx_http_ai_parse_request(r->pool, &req,
                                      (req.endpoint == NGX_HTTP_AI_EP_GEMINI)
                                      ? &ctx->req.model : NULL,
                                      &param, err))
    {
    case NGX_OK:
        break;

    case NGX_DECLINED:
        if (req.json) {
            cJSON_Delete(req.json);
        }

        return NGX_DECLINED;

    default:
        if (req.json) {
            cJSON_Delete(req.json);
        }

        return NGX_ERROR;
    }

    /* the body NGINX holds, for a content handler that sends it itself */

    cl = ngx_alloc_chain_link(r->pool);
    if (cl == NULL) {
        cJSON_Delete(req.json);
        return NGX_ERROR;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        cJSON_Delete(req.json);
        return NGX_ERROR;
    }

    b->start = body->data;
    b->pos = body->data;
    b->last = body->data + body->len;
    b->end = b->last;
    b->memory = 1;
    b->last_buf = 1;
    b->last_in_chain = 1;

    cl->buf = b;
    cl->next = NULL;

    r->request_body->bufs = cl;
    r->request_body->buf = b;
    r->headers_in.content_length_n = body->len;

    if (r->headers_in.content_length) {
        /* $content_length, and what FastCGI and others pass */

        h = r->headers_in.content_length;

        h->value.data = ngx_pnalloc(r->pool, NGX_OFF_T_LEN);
        if (h->value.data == NULL) {
            cJSON_Delete(req.json);
            return NGX_ERROR;
        }

        h->value.len = ngx_sprintf(h->value.data, "%uz", body->len)
                       - h->value.data;
    }

    if (req.endpoint == NGX_HTTP_AI_EP_GEMINI) {
        /* Gemini's stream flag comes from the URI, not the body */
        req.stream = ctx->req.stream;
    }

    /*
     * the old tree goes with the request, last, with the context: what
     * other modules took from it (strings, message nodes) stays valid
     * until then, and what they free of it in their cleanups is freed
     * before (a root has no sibling: the trees are chained by next)
     */

    cc = ngx_http_ai_core_ctx(ctx);

    if (ctx->req.json) {
        ctx->req.json->next = cc->retired;
        cc->retired = ctx->req.json;

    } else {
        /* no tree was built of it: the new one is kept all the same */
        cc->keep_tree = 1;
    }

    req.scope = ctx->req.scope;
    ctx->req = req;

    /* the model may have changed: the router decides again */

    ngx_str_null(&ctx->route_model);

    if (ngx_http_ai_core_route(r, ctx) == NGX_ERROR) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The body read as one run of bytes.  NGINX reads a body into the
 * header's buffer when the rest of it fits there; else into a buffer of
 * its own after the part read with the header, which stays where it is
 * (r->request_body_in_single_buf sizes that buffer for both but does not
 * join them: a TODO in ngx_http_request_body.c, 1.22 and 1.30 alike), and
 * the core had to copy the two into one (1 MB copied for a 1 MB prompt,
 * 17% of its cost: bench, body_1m_gw_min).  So, for a body of a known
 * length that NGINX keeps in memory, the header's buffer is given the room
 * first: its unread bytes (all of them the body's) are moved to a buffer
 * of the body's length on the request's pool, where NGINX reads the rest.
 * NGINX reads the rest through a buffer of its own over that memory
 * (rb->buf), so the header's buffer is given back as soon as
 * ngx_http_read_client_request_body() returns, or when the body handler
 * runs within it, or at the latest when the request's pool goes: with
 * every byte read, as NGINX would leave it.  HTTP/1 only: HTTP/2 and
 * HTTP/3 read a body of a known length into one buffer themselves.
 */

static ngx_int_t
ngx_http_ai_core_body_room(ngx_http_request_t *r, ngx_http_ai_core_ctx_t *cc)
{
    off_t                      len;
    u_char                    *p;
    size_t                     preread;
    ngx_buf_t                 *b;
    ngx_pool_cleanup_t        *cln;
    ngx_http_ai_core_room_t   *room;
    ngx_http_core_loc_conf_t  *clcf;

    b = r->header_in;
    len = r->headers_in.content_length_n;

    if (r != r->main || r->request_body || r->headers_in.chunked || len <= 0
        || r->http_version >= NGX_HTTP_VERSION_20
        || r->request_body_in_file_only || b == NULL)
    {
        return NGX_OK;
    }

    preread = b->last - b->pos;

    if (preread == 0 || (off_t) preread >= len
        || len - (off_t) preread <= b->end - b->last)
    {
        /* none of it read yet, all of it, or the rest fits: one run */
        return NGX_OK;
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (len > (off_t) clcf->client_body_buffer_size) {
        /* NGINX writes it to a file */
        return NGX_OK;
    }

    cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_http_ai_core_room_t));
    if (cln == NULL) {
        return NGX_ERROR;
    }

    p = ngx_pnalloc(r->pool, (size_t) len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    room = cln->data;
    room->buf = b;
    room->start = b->start;
    room->last = b->last;
    room->end = b->end;

    cln->handler = ngx_http_ai_core_room_back;
    cc->room = room;

    ngx_memcpy(p, b->pos, preread);

    b->start = p;
    b->pos = p;
    b->last = p + preread;
    b->end = p + len;

    return NGX_OK;
}


/*
 * the header's buffer as it was, every byte read (all were the body's):
 * NGINX finds no pipelined request in it and reuses or frees its memory
 */

static void
ngx_http_ai_core_room_back(void *data)
{
    ngx_http_ai_core_room_t  *room = data;

    if (room->buf == NULL) {
        return;
    }

    room->buf->start = room->start;
    room->buf->pos = room->last;
    room->buf->last = room->last;
    room->buf->end = room->end;

    room->buf = NULL;
}


static ngx_int_t
ngx_http_ai_core_collect_body(ngx_http_request_t *r, ngx_str_t *body)
{
    u_char       *p;
    off_t         len;
    ssize_t       n;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    body->len = 0;
    body->data = NULL;

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return NGX_OK;
    }

    cl = r->request_body->bufs;

    /*
     * the usual case: buffers in memory that follow each other (one, or
     * the reads into one: ngx_http_ai_core_body_room()), no copy
     */

    for (p = NULL; cl; cl = cl->next) {
        b = cl->buf;

        if (b->in_file) {
            break;
        }

        if (b->last == b->pos) {
            continue;
        }

        if (p == NULL) {
            body->data = b->pos;

        } else if (b->pos != p) {
            break;
        }

        p = b->last;
    }

    if (cl == NULL) {
        body->len = p ? (size_t) (p - body->data) : 0;
        return NGX_OK;
    }

    len = 0;

    cl = r->request_body->bufs;

    for ( /* void */ ; cl; cl = cl->next) {
        len += ngx_buf_size(cl->buf);
    }

    if (len == 0) {
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, (size_t) len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    body->data = p;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (b->in_file) {
            /* the body went to a temporary file: read it back */
            n = ngx_read_file(b->file, p, (size_t) (b->file_last
                                                    - b->file_pos),
                              b->file_pos);

            if (n != b->file_last - b->file_pos) {
                ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                              "ai: could not read the request body from "
                              "\"%V\"", &b->file->name);
                return NGX_ERROR;
            }

            p += n;
            continue;
        }

        if (b->last > b->pos) {
            p = ngx_cpymem(p, b->pos, b->last - b->pos);
        }
    }

    body->len = p - body->data;

    return NGX_OK;
}


/*
 * The request's pool goes: the parsed body with it.  (The completion hook
 * ran in the LOG phase, which NGINX runs for every main request it frees,
 * aborted ones included.)
 */

void
ngx_http_ai_core_ctx_cleanup(void *data)
{
    ngx_http_ai_ctx_t       *ctx = data;
    ngx_http_ai_core_ctx_t  *cc;

    cc = ngx_http_ai_core_ctx(ctx);

    if (ctx->req.json) {
        ngx_http_ai_json_delete(ctx->req.json);
        ctx->req.json = NULL;
    }

    if (cc->retired) {
        /* the trees before, one after the other by their next */
        cJSON_Delete(cc->retired);
        cc->retired = NULL;
    }
}


static ngx_int_t
ngx_http_ai_core_preconfiguration(ngx_conf_t *cf)
{
    /* cJSON's allocations, before any module's first */
    ngx_http_ai_json_hooks();

    if (ngx_http_ai_stores_preconfiguration(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_ai_core_add_variables(cf);
}


static ngx_int_t
ngx_http_ai_core_postconfiguration(ngx_conf_t *cf)
{
    u_char                      key[16];
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    /* ngx_http_ai_hash()'s key, new with each configuration */

    if (RAND_bytes(key, sizeof(key)) != 1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_core: RAND_bytes() failed");
        return NGX_ERROR;
    }

    ngx_http_ai_hash_key(key);

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_REWRITE_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_ai_core_handler;

    if (ngx_http_ai_core_stages_init(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_ai_core_filter_init(cf);
}


static void *
ngx_http_ai_core_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_ai_core_main_conf_t  *amcf;

    amcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_core_main_conf_t));
    if (amcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&amcf->handlers, cf->pool, 4,
                       sizeof(ngx_http_ai_event_handler_pt))
        != NGX_OK
        || ngx_array_init(&amcf->consumers, cf->pool, 4,
                          sizeof(ngx_http_ai_consumer_t))
           != NGX_OK
        || ngx_array_init(&amcf->stores, cf->pool, 4,
                          sizeof(ngx_http_ai_store_t *))
           != NGX_OK
        || ngx_array_init(&amcf->backends, cf->pool, 4,
                          sizeof(ngx_http_ai_store_backend_t *))
           != NGX_OK
        || ngx_array_init(&amcf->prices, cf->pool, 4,
                          sizeof(ngx_http_ai_price_t))
           != NGX_OK
        || ngx_array_init(&amcf->routers, cf->pool, 2,
                          sizeof(ngx_http_ai_route_pt))
           != NGX_OK
        || ngx_array_init(&amcf->stages, cf->pool, 4,
                          sizeof(ngx_http_ai_stage_t))
           != NGX_OK
        || ngx_array_init(&amcf->dones, cf->pool, 4,
                          sizeof(ngx_http_ai_done_t))
           != NGX_OK
        || ngx_array_init(&amcf->deltas, cf->pool, 2,
                          sizeof(ngx_http_ai_delta_filter_t))
           != NGX_OK)
    {
        return NULL;
    }

    amcf->last_counter = &amcf->counters;

    return amcf;
}


static char *
ngx_http_ai_core_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_ai_core_main_conf_t *amcf = conf;

    if (ngx_http_ai_consumers_init(cf, amcf) != NGX_OK
        || ngx_http_ai_stores_check(cf, amcf) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_ai_core_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_ai_core_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_core_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    conf->enable = NGX_CONF_UNSET;
    conf->auth = NGX_CONF_UNSET_UINT;
    conf->max_event_size = NGX_CONF_UNSET_SIZE;
    conf->max_response_size = NGX_CONF_UNSET_SIZE;

    return conf;
}


static char *
ngx_http_ai_core_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_ai_core_loc_conf_t *prev = parent;
    ngx_http_ai_core_loc_conf_t *conf = child;

    ngx_http_ai_core_main_conf_t  *amcf;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_uint_value(conf->auth, prev->auth, NGX_HTTP_AI_AUTH_OFF);
    ngx_conf_merge_size_value(conf->max_event_size, prev->max_event_size,
                              256 * 1024);
    ngx_conf_merge_size_value(conf->max_response_size,
                              prev->max_response_size, 4 * 1024 * 1024);

    if (conf->auth != NGX_HTTP_AI_AUTH_OFF) {
        amcf = ngx_http_conf_get_module_main_conf(cf,
                                                  ngx_http_ai_core_module);

        if (amcf->consumers.nelts == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"ai_auth\" is on but no consumer keys are "
                               "defined: use \"ai_consumer\" or "
                               "\"ai_consumers_file\"");
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}
