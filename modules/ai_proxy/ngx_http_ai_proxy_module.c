
/*
 * Copyright (C) AI Gateway authors
 *
 * ai_proxy: the OpenAI-compatible door (and the Anthropic one) to many
 * providers.
 *
 *     env OPENAI_API_KEY;
 *     env ANTHROPIC_API_KEY;
 *
 *     ai_target openai https://api.openai.com/v1
 *               key=env:OPENAI_API_KEY models=gpt-*,o*;
 *     ai_target claude https://api.anthropic.com provider=anthropic
 *               key=env:ANTHROPIC_API_KEY models=claude-*;
 *
 *     location /v1/ {
 *         ai_proxy openai claude;
 *         ai_proxy_alias fast gpt-4o-mini;
 *     }
 *
 * or, for one OpenAI-compatible provider:
 *
 *     location /v1/ {
 *         ai_proxy_pass https://api.openai.com/v1;
 *         ai_proxy_key env:OPENAI_API_KEY;
 *     }
 *
 * The AI core has read and parsed the body by the time the content
 * handler runs.  ngx_http_ai_proxy_target.c picks the target and key of
 * each attempt and builds its request; ngx_http_ai_proxy_upstream.c
 * speaks HTTP/1.1 to the provider; ngx_http_ai_proxy_translate*.c
 * translate between the formats.
 */


#include "ngx_http_ai_proxy.h"


#define NGX_HTTP_AI_PROXY_CA_BUNDLE     "/etc/ssl/certs/ca-certificates.crt"


static ngx_int_t ngx_http_ai_proxy_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_ai_proxy_count_tokens(ngx_http_request_t *r,
    ngx_http_ai_proxy_ctx_t *ctx);
static ngx_int_t ngx_http_ai_proxy_event(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ai, ngx_http_ai_event_t *ev, ngx_chain_t ***out);
static ngx_int_t ngx_http_ai_proxy_output(ngx_http_request_t *r,
    ngx_str_t *s, ngx_chain_t ***out);
static ngx_int_t ngx_http_ai_proxy_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_ai_proxy_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_int_t ngx_http_ai_proxy_hold(ngx_http_request_t *r,
    ngx_http_ai_proxy_ctx_t *ctx, ngx_buf_t *b);
static ngx_int_t ngx_http_ai_proxy_answer(ngx_http_request_t *r,
    ngx_http_ai_proxy_ctx_t *ctx);
static ngx_int_t ngx_http_ai_proxy_pass_held(ngx_http_request_t *r,
    ngx_http_ai_proxy_ctx_t *ctx, ngx_chain_t *rest);
static ngx_int_t ngx_http_ai_proxy_gateway_error(ngx_http_request_t *r,
    ngx_http_ai_proxy_ctx_t *ctx, ngx_uint_t status, const char *code,
    ngx_str_t *msg);
static void ngx_http_ai_proxy_mask_key(ngx_http_ai_proxy_ctx_t *ctx,
    ngx_str_t *body);
static ngx_int_t ngx_http_ai_proxy_merge_targets(ngx_conf_t *cf,
    ngx_http_ai_proxy_loc_conf_t *conf);
static ngx_int_t ngx_http_ai_proxy_targets_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_ai_proxy_key_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_ai_proxy_router(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ai);
static ngx_http_ai_proxy_ctx_t *ngx_http_ai_proxy_decide(
    ngx_http_request_t *r, ngx_http_ai_ctx_t *ai,
    ngx_http_ai_proxy_loc_conf_t *plcf);
static ngx_int_t ngx_http_ai_proxy_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_ai_proxy_postconfiguration(ngx_conf_t *cf);
static void *ngx_http_ai_proxy_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_ai_proxy_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_ai_proxy_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
#if (NGX_HTTP_SSL)
static ngx_int_t ngx_http_ai_proxy_set_ssl(ngx_conf_t *cf,
    ngx_http_ai_proxy_loc_conf_t *plcf);
#endif
static char *ngx_http_ai_proxy(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ai_proxy_pass(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ai_proxy_provider(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ai_proxy_key(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ai_proxy_host(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ai_proxy_alias(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ai_proxy_decoration(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ai_proxy_door(ngx_conf_t *cf);
static char *ngx_http_ai_proxy_other_handler(ngx_conf_t *cf,
    ngx_http_core_loc_conf_t *clcf);


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


static ngx_str_t  ngx_http_ai_proxy_hide_headers[] = {
    ngx_string("Date"),
    ngx_string("Server"),
    ngx_string("X-Pad"),
    ngx_string("X-Accel-Expires"),
    ngx_string("X-Accel-Redirect"),
    ngx_string("X-Accel-Limit-Rate"),
    ngx_string("X-Accel-Buffering"),
    ngx_string("X-Accel-Charset"),
    ngx_string("Connection"),
    ngx_string("Keep-Alive"),
    ngx_string("Transfer-Encoding"),
    ngx_string("Set-Cookie"),
    ngx_string("Alt-Svc"),
    ngx_string("Strict-Transport-Security"),
    ngx_string("OpenAI-Organization"),
    ngx_string("OpenAI-Project"),
    ngx_null_string
};


static ngx_conf_enum_t  ngx_http_ai_proxy_balance_methods[] = {
    { ngx_string("round_robin"), NGX_HTTP_AI_PROXY_RR },
    { ngx_string("least_conn"), NGX_HTTP_AI_PROXY_LEAST_CONN },
    { ngx_string("latency"), NGX_HTTP_AI_PROXY_LATENCY },
    { ngx_null_string, 0 }
};


static ngx_conf_bitmask_t  ngx_http_ai_proxy_next_upstream_masks[] = {
    { ngx_string("error"), NGX_HTTP_AI_PROXY_FT_ERROR },
    { ngx_string("timeout"), NGX_HTTP_AI_PROXY_FT_TIMEOUT },
    { ngx_string("http_429"), NGX_HTTP_AI_PROXY_FT_429 },
    { ngx_string("http_5xx"), NGX_HTTP_AI_PROXY_FT_5XX },
    { ngx_string("http_401"), NGX_HTTP_AI_PROXY_FT_AUTH },
    { ngx_string("http_403"), NGX_HTTP_AI_PROXY_FT_AUTH },
    { ngx_string("off"), NGX_HTTP_AI_PROXY_FT_OFF },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_ai_proxy_commands[] = {

    { ngx_string("ai_target"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_ai_target,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_proxy"),
      NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_ai_proxy,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_proxy_pass"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_proxy_pass,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_proxy_provider"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_proxy_provider,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_proxy_key"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_proxy_key,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_proxy_host"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_proxy_host,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_proxy_alias"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE2,
      ngx_http_ai_proxy_alias,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_proxy_models"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_ai_proxy_models_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_proxy_pass_client_headers"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_ai_proxy_pass_client_headers,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_proxy_drop_fields"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_ai_proxy_drop_fields_set,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_proxy_set_header"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE2,
      ngx_http_ai_proxy_set_header,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_proxy_prepend"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE2,
      ngx_http_ai_proxy_decoration,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_proxy_loc_conf_t, prepend),
      NULL },

    { ngx_string("ai_proxy_append"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE2,
      ngx_http_ai_proxy_decoration,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_proxy_loc_conf_t, append),
      NULL },

    { ngx_string("ai_proxy_responses_store"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_ai_proxy_responses_store,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_proxy_balance"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_proxy_loc_conf_t, balance),
      &ngx_http_ai_proxy_balance_methods },

    { ngx_string("ai_proxy_next_upstream"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_conf_set_bitmask_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_proxy_loc_conf_t, next),
      &ngx_http_ai_proxy_next_upstream_masks },

    { ngx_string("ai_proxy_next_upstream_tries"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_proxy_loc_conf_t, tries),
      NULL },

    { ngx_string("ai_proxy_next_upstream_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_proxy_loc_conf_t, deadline),
      NULL },

    { ngx_string("ai_proxy_key_cooldown"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_proxy_loc_conf_t, key_cooldown),
      NULL },

    { ngx_string("ai_proxy_key_disable"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_proxy_loc_conf_t, key_disable),
      NULL },

    { ngx_string("ai_proxy_max_tokens"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_proxy_loc_conf_t, max_tokens),
      NULL },

    { ngx_string("ai_proxy_connect_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_proxy_loc_conf_t, upstream.connect_timeout),
      NULL },

    { ngx_string("ai_proxy_send_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_proxy_loc_conf_t, upstream.send_timeout),
      NULL },

    { ngx_string("ai_proxy_read_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_proxy_loc_conf_t, upstream.read_timeout),
      NULL },

    { ngx_string("ai_proxy_response_max_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_proxy_loc_conf_t, response_max_size),
      NULL },

    { ngx_string("ai_proxy_buffer_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_proxy_loc_conf_t, upstream.buffer_size),
      NULL },

#if (NGX_HTTP_SSL)

    { ngx_string("ai_proxy_ssl_verify"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_proxy_loc_conf_t, upstream.ssl_verify),
      NULL },

    { ngx_string("ai_proxy_ssl_verify_depth"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_proxy_loc_conf_t, ssl_verify_depth),
      NULL },

    { ngx_string("ai_proxy_ssl_trusted_certificate"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_proxy_loc_conf_t, ssl_trusted_certificate),
      NULL },

    { ngx_string("ai_proxy_ssl_server_name"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_proxy_loc_conf_t, upstream.ssl_server_name),
      NULL },

    { ngx_string("ai_proxy_ssl_name"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_proxy_loc_conf_t, ssl_name),
      NULL },

#endif

      ngx_null_command
};


static ngx_http_module_t  ngx_http_ai_proxy_module_ctx = {
    ngx_http_ai_proxy_preconfiguration,    /* preconfiguration */
    ngx_http_ai_proxy_postconfiguration,   /* postconfiguration */

    ngx_http_ai_proxy_create_main_conf,    /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_ai_proxy_create_loc_conf,     /* create location configuration */
    ngx_http_ai_proxy_merge_loc_conf       /* merge location configuration */
};


ngx_module_t  ngx_http_ai_proxy_module = {
    NGX_MODULE_V1,
    &ngx_http_ai_proxy_module_ctx,         /* module context */
    ngx_http_ai_proxy_commands,            /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_ai_proxy_resolve_init_process, /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_int_t
ngx_http_ai_proxy_handler(ngx_http_request_t *r)
{
    ngx_int_t                      rc;
    ngx_http_ai_ctx_t             *ai;
    ngx_http_ai_proxy_ctx_t       *ctx;
    ngx_http_ai_proxy_loc_conf_t  *plcf;

    ai = ngx_http_ai_get_ctx(r);

    if (ai == NULL && r != r->main) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ai_proxy: subrequests (mirror, auth_request, SSI) "
                      "are not supported: \"%V\"",
                      ngx_http_ai_safe_str(r->pool, &r->uri));
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ai == NULL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ai_proxy: the AI core is off in this location "
                      "(\"ai_core off\"?)");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_proxy_module);

    switch (ai->req.endpoint) {

    case NGX_HTTP_AI_EP_CHAT:
    case NGX_HTTP_AI_EP_EMBEDDINGS:
    case NGX_HTTP_AI_EP_MESSAGES:
    case NGX_HTTP_AI_EP_COUNT_TOKENS:
    case NGX_HTTP_AI_EP_RESPONSES:

        /* the core allowed POST only and read and parsed the body */

        if (!ai->req.parsed) {
            return ngx_http_ai_error(r, NGX_HTTP_BAD_REQUEST, NULL, NULL,
                                     NULL, "request body is empty, a JSON "
                                     "object is expected");
        }

        break;

    case NGX_HTTP_AI_EP_MODELS:

        /* the core allowed GET and HEAD only, a body is not expected */

        rc = ngx_http_discard_request_body(r);

        if (rc != NGX_OK) {
            return rc;
        }

        rc = ngx_http_ai_proxy_models(r, plcf);

        if (rc != NGX_DECLINED) {
            return rc;
        }

        break;

    case NGX_HTTP_AI_EP_RESPONSE:

        /* the core allowed GET, HEAD and DELETE: no body */

        rc = ngx_http_discard_request_body(r);

        if (rc != NGX_OK) {
            return rc;
        }

        break;

    case NGX_HTTP_AI_EP_GEMINI:
        return ngx_http_ai_error(r, NGX_HTTP_NOT_FOUND, NULL, NULL,
                                 "unknown_url", "the Gemini API (%V) is not "
                                 "a door of this gateway: use the OpenAI "
                                 "or the Anthropic API", &r->uri);

    default: /* NGX_HTTP_AI_EP_UNKNOWN */
        return ngx_http_ai_error(r, NGX_HTTP_NOT_FOUND, NULL, NULL,
                                 "unknown_url", "unknown endpoint %V",
                                 &r->uri);
    }

    /* the core's router decided already, unless the context was lost */

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_proxy_module);

    if (ctx == NULL || ctx->conf != plcf) {
        ctx = ngx_http_ai_proxy_decide(r, ai, plcf);
        if (ctx == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (ai->req.endpoint == NGX_HTTP_AI_EP_RESPONSE) {
        /* a stored response: where it lives, from the store */

        rc = ngx_http_ai_proxy_pin_lookup(r, ai, ctx);

        if (rc == NGX_AGAIN) {
            r->main->count++;
            return NGX_DONE;
        }

        if (rc != NGX_DECLINED) {
            return rc;
        }
    }

    return ngx_http_ai_proxy_go(r, ctx);
}


/* the request routed: its first attempt, prepared, and the upstream */

ngx_int_t
ngx_http_ai_proxy_go(ngx_http_request_t *r, ngx_http_ai_proxy_ctx_t *ctx)
{
    ngx_int_t           rc;
    ngx_str_t           model;
    ngx_http_ai_ctx_t  *ai;

    ai = ctx->ai;

    /*
     * the decision holds from here: a body changed now (the fields
     * dropped below) keeps its model, and the router keeps this context
     */

    ctx->going = 1;

    if (ctx->candidates == 0 && ai->req.endpoint == NGX_HTTP_AI_EP_RESPONSE)
    {
        /* no target here keeps responses */
        ngx_http_ai_proxy_response_id(r, &model);

        return ngx_http_ai_error(r, NGX_HTTP_NOT_FOUND,
                                 "invalid_request_error", NULL, NULL,
                                 "Response with id '%V' not found.",
                                 ngx_http_ai_safe_str(r->pool, &model));
    }

    if (ctx->candidates == 0) {
        model = ai->req.model;

        if (ai->req.endpoint == NGX_HTTP_AI_EP_MODELS) {
            ngx_http_ai_proxy_model_id(r, &model);
        }

        return ngx_http_ai_error(r, NGX_HTTP_NOT_FOUND, NULL, "model",
                                 "model_not_found",
                                 "the model \"%V\" is not served here",
                                 &model);
    }

    /* the core checked the routed model; a stage may have changed it */

    if (ctx->model.len
        && ngx_http_ai_consumer_allows(r, &ctx->model) != NGX_OK)
    {
        return ngx_http_ai_error(r, NGX_HTTP_FORBIDDEN, NULL, "model",
                                 "model_not_allowed",
                                 "the model \"%V\" is not allowed for this "
                                 "API key", &ctx->model);
    }

    /* the client's headers passed and the location's set, for every try */

    if (ngx_http_ai_proxy_extra_headers(r, ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the fields the operator lets go, before any attempt is built */

    if (ngx_http_ai_proxy_drop_fields(r, ai, ctx->conf) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ai->req.endpoint == NGX_HTTP_AI_EP_COUNT_TOKENS) {
        rc = ngx_http_ai_proxy_count_tokens(r, ctx);

        if (rc != NGX_DECLINED) {
            return rc;
        }
    }

    /*
     * the first attempt is picked and prepared now: a request that no
     * target can take is refused by the gateway, without an attempt
     */

    rc = ngx_http_ai_proxy_first(r, ctx);

    switch (rc) {

    case NGX_OK:
        break;

    case NGX_BUSY:
        return ngx_http_ai_proxy_unavailable(r, ctx);

    case NGX_DECLINED:
        return ngx_http_ai_error(r, NGX_HTTP_BAD_REQUEST, NULL, NULL, NULL,
                                 "%V", &ai->error_message);

    default:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_ai_proxy_upstream(r, ctx);
}


/*
 * The core's router: as soon as the request is parsed, the model that
 * will be served (after aliases) and the targets that may serve it, so
 * that $ai_route_model is known to ACCESS, maps and the stages.
 */

static ngx_int_t
ngx_http_ai_proxy_router(ngx_http_request_t *r, ngx_http_ai_ctx_t *ai)
{
    ngx_http_core_loc_conf_t      *clcf;
    ngx_http_ai_proxy_ctx_t       *ctx;
    ngx_http_ai_proxy_loc_conf_t  *plcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (clcf->handler != ngx_http_ai_proxy_handler) {
        return NGX_DECLINED;
    }

    switch (ai->req.endpoint) {

    case NGX_HTTP_AI_EP_CHAT:
    case NGX_HTTP_AI_EP_EMBEDDINGS:
    case NGX_HTTP_AI_EP_MESSAGES:
    case NGX_HTTP_AI_EP_COUNT_TOKENS:
    case NGX_HTTP_AI_EP_MODELS:
    case NGX_HTTP_AI_EP_RESPONSES:
    case NGX_HTTP_AI_EP_RESPONSE:
        break;

    default:
        return NGX_DECLINED;
    }

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_proxy_module);

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_proxy_module);

    if (ctx == NULL || !ctx->going || ctx->conf != plcf) {
        /*
         * a new decision, but not for a body the content handler changed
         * (ngx_http_ai_proxy_drop_fields()): the same model, and the
         * context it goes on with holds what it prepared (headers, the
         * first attempt's pick)
         */

        ctx = ngx_http_ai_proxy_decide(r, ai, plcf);
        if (ctx == NULL) {
            return NGX_ERROR;
        }
    }

    if (ctx->candidates) {
        ai->route_model = ctx->model;
    }

    return NGX_OK;
}


static ngx_http_ai_proxy_ctx_t *
ngx_http_ai_proxy_decide(ngx_http_request_t *r, ngx_http_ai_ctx_t *ai,
    ngx_http_ai_proxy_loc_conf_t *plcf)
{
    ngx_str_t                 model;
    ngx_http_ai_proxy_ctx_t  *ctx;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_ai_proxy_ctx_t));
    if (ctx == NULL) {
        return NULL;
    }

    ctx->ai = ai;
    ctx->request = r;
    ctx->conf = plcf;

    model = ai->req.model;

    if (ai->req.endpoint == NGX_HTTP_AI_EP_MODELS) {
        if (r->method == NGX_HTTP_HEAD) {
            ngx_str_set(&ctx->method, "HEAD");
            ctx->head = 1;

        } else {
            ngx_str_set(&ctx->method, "GET");
        }

        /* ".../models/{id}" is routed as a request for that model */
        ngx_http_ai_proxy_model_id(r, &model);

    } else if (ai->req.endpoint == NGX_HTTP_AI_EP_RESPONSE) {
        /* a stored response: no model, the targets that keep them */

        if (r->method == NGX_HTTP_DELETE) {
            ngx_str_set(&ctx->method, "DELETE");

        } else if (r->method == NGX_HTTP_HEAD) {
            ngx_str_set(&ctx->method, "HEAD");
            ctx->head = 1;

        } else {
            ngx_str_set(&ctx->method, "GET");
        }

        ngx_str_null(&model);

    } else {
        ngx_str_set(&ctx->method, "POST");
    }

    ngx_http_set_ctx(r, ctx, ngx_http_ai_proxy_module);

    /* no target serves it: ctx->candidates is 0, CONTENT answers 404 */
    (void) ngx_http_ai_proxy_route(r, ctx, &model);

    return ctx;
}


/*
 * POST .../messages/count_tokens: Anthropic's own count when an Anthropic
 * target serves the model (the candidates are cut down to those:
 * NGX_DECLINED, the request goes on); otherwise the gateway's estimate
 * (ngx_http_ai_estimate_tokens()), said so by "X-AI-Token-Estimate: true".
 */

static ngx_int_t
ngx_http_ai_proxy_count_tokens(ngx_http_request_t *r,
    ngx_http_ai_proxy_ctx_t *ctx)
{
    u_char                       *p;
    int64_t                       n;
    uint64_t                      anthropic;
    ngx_buf_t                    *b;
    ngx_int_t                     rc;
    ngx_uint_t                    i;
    ngx_chain_t                   out;
    ngx_table_elt_t              *h;
    ngx_http_ai_proxy_target_t  **t;

    t = ctx->conf->targets->elts;
    anthropic = 0;

    for (i = 0; i < ctx->conf->targets->nelts; i++) {
        if ((ctx->candidates & ((uint64_t) 1 << i))
            && t[i]->provider == NGX_HTTP_AI_PROXY_ANTHROPIC)
        {
            anthropic |= (uint64_t) 1 << i;
        }
    }

    if (anthropic) {
        ctx->candidates = anthropic;
        return NGX_DECLINED;
    }

    n = ngx_http_ai_estimate_tokens(&ctx->ai->req);

    p = ngx_pnalloc(r->pool, sizeof("{\"input_tokens\":}") + NGX_INT64_LEN);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = p;
    b->last = ngx_sprintf(p, "{\"input_tokens\":%L}", n);
    b->memory = 1;
    b->last_buf = (r == r->main);
    b->last_in_chain = 1;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "X-AI-Token-Estimate");
    ngx_str_set(&h->value, "true");

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = b->last - b->pos;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/*
 * The response, when it goes to the client in another format (or the
 * stream's usage chunk the client did not ask for is dropped): each
 * event of the upstream's response is translated as it comes.
 */

static ngx_int_t
ngx_http_ai_proxy_event(ngx_http_request_t *r, ngx_http_ai_ctx_t *ai,
    ngx_http_ai_event_t *ev, ngx_chain_t ***out)
{
    cJSON                    *json;
    ngx_str_t                 s, err, model;
    ngx_int_t                 rc;
    ngx_uint_t                status;
    ngx_http_ai_proxy_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_proxy_module);

    if (ctx == NULL) {
        return NGX_OK;
    }

    /* a response stored by OpenAI: where it lives, for what follows */
    ngx_http_ai_proxy_pin_record(r, ai, ctx, ev);

    if (!ctx->translate) {
        return NGX_OK;
    }

    status = r->headers_out.status;
    model = ai->req.model;
    ngx_str_null(&s);

    if (ai->is_sse && status < NGX_HTTP_SPECIAL_RESPONSE) {

        if (ctx->stream == NULL) {
            ctx->stream = ngx_http_ai_stream_create(r->pool,
                                                    ai->upstream_format,
                                                    ai->req.format, &model,
                                                    ai->req.include_usage);
            if (ctx->stream == NULL) {
                return NGX_ERROR;
            }

            /* the modules' delta filters, when a stage asked for them */
            ngx_http_ai_stream_filter(ctx->stream, r);
        }

        if (ev->data.len) {
            /*
             * OpenAI to OpenAI: the stream looks inside an event only when
             * it must (an error, the usage chunk), unless another handler
             * parsed it already
             */

            /* the translator parses what it needs, if not parsed yet */
            json = ev->parsed ? ev->json : NULL;

            rc = ngx_http_ai_stream_event(ctx->stream, &ev->name, &ev->data,
                                          json, &s);

        } else if (ev->last) {
            rc = ngx_http_ai_stream_end(ctx->stream, ai->resp_done, &s);

        } else {
            return NGX_OK;
        }

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        /* s is the stream's scratch: copied into a reusable buffer */

        return ngx_http_ai_output(r, s.data, s.len, out);
    }

    if (ev->last || !ev->done) {
        /* the plain body comes whole, in the event before the last */
        return NGX_OK;
    }

    if (ctx->hold) {
        /* the filter translated the whole body before the header */
        return ngx_http_ai_proxy_output(r, &ctx->plain, out);
    }

    if (status >= NGX_HTTP_SPECIAL_RESPONSE) {
        rc = ngx_http_ai_translate_error(r->pool, ai->upstream_format,
                                         ai->req.format, status, &ev->data,
                                         &s);

    } else {
        rc = ngx_http_ai_translate_response(r->pool, ai->upstream_format,
                                            ai->req.format, &model,
                                            &ev->data, &s, &err);

        if (rc == NGX_DECLINED) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "ai_proxy: the answer of target \"%V\" cannot "
                          "be translated: %V", &ctx->target->name, &err);

            ngx_str_set(&err, "the upstream provider sent an answer that "
                              "cannot be translated");

            rc = ngx_http_ai_translate_error(r->pool, NGX_HTTP_AI_FMT_OPENAI,
                                             ai->req.format,
                                             NGX_HTTP_BAD_GATEWAY, &err, &s);
        }
    }

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    return ngx_http_ai_proxy_output(r, &s, out);
}


static ngx_int_t
ngx_http_ai_proxy_output(ngx_http_request_t *r, ngx_str_t *s,
    ngx_chain_t ***out)
{
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    if (s->len == 0) {
        return NGX_OK;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = s->data;
    b->last = s->data + s->len;
    b->start = b->pos;
    b->end = b->last;
    b->memory = 1;
    b->flush = 1;

    cl = ngx_alloc_chain_link(r->pool);
    if (cl == NULL) {
        return NGX_ERROR;
    }

    cl->buf = b;
    cl->next = NULL;

    **out = cl;
    *out = &cl->next;

    return NGX_OK;
}


/*
 * A plain answer (not SSE) is held whole before its header goes out: its
 * status and body must be checked, and translated, before the client
 * gets a status.  A 2xx that is not JSON or cannot be translated is a
 * 502, a provider's error body (an HTML page ...) is put in the door's
 * error shape with its status.  A stream goes as it comes.
 */

static ngx_int_t
ngx_http_ai_proxy_header_filter(ngx_http_request_t *r)
{
    ngx_str_t                *ct;
    ngx_http_ai_proxy_ctx_t  *ctx;

    if (r != r->main || r->upstream == NULL || r->err_status) {
        return ngx_http_next_header_filter(r);
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_proxy_module);

    if (ctx == NULL || ctx->head || ctx->ai->error) {
        return ngx_http_next_header_filter(r);
    }

    ct = &r->headers_out.content_type;

    if (ct->len >= sizeof("text/event-stream") - 1
        && ngx_strncasecmp(ct->data, (u_char *) "text/event-stream",
                           sizeof("text/event-stream") - 1)
           == 0)
    {
        return ngx_http_next_header_filter(r);
    }

    ctx->hold = 1;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_proxy_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    off_t                     size;
    ngx_uint_t                last;
    ngx_chain_t              *cl;
    ngx_http_ai_proxy_ctx_t  *ctx;

    if (r != r->main || in == NULL) {
        return ngx_http_next_body_filter(r, in);
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_proxy_module);

    if (ctx == NULL || !ctx->hold || ctx->passed) {
        return ngx_http_next_body_filter(r, in);
    }

    last = 0;

    for (cl = in; cl; cl = cl->next) {

        if (ctx->answered) {
            /* the client got its answer: the rest is read and dropped */
            cl->buf->pos = cl->buf->last;
            continue;
        }

        size = ngx_buf_size(cl->buf);

        if (size && (!ngx_buf_in_memory(cl->buf)
                     || (size_t) size > ctx->conf->response_max_size
                                        - ctx->held_len))
        {
            /* too large to hold (the upstream's buffers are in memory) */
            return ngx_http_ai_proxy_pass_held(r, ctx, cl);
        }

        if (size && ngx_http_ai_proxy_hold(r, ctx, cl->buf) != NGX_OK) {
            return NGX_ERROR;
        }

        /* consumed: the upstream reuses its buffer */
        cl->buf->pos = cl->buf->last;

        if (cl->buf->last_buf) {
            last = 1;
        }
    }

    if (!last || ctx->answered) {
        return NGX_OK;
    }

    return ngx_http_ai_proxy_answer(r, ctx);
}


static ngx_int_t
ngx_http_ai_proxy_hold(ngx_http_request_t *r, ngx_http_ai_proxy_ctx_t *ctx,
    ngx_buf_t *b)
{
    u_char  *p;
    size_t   size, need;

    size = b->last - b->pos;
    need = ctx->held_len + size;

    if (need > ctx->held_size) {

        if (r->headers_out.content_length_n >= (off_t) need
            && r->headers_out.content_length_n
               <= (off_t) ctx->conf->response_max_size)
        {
            /* the whole body at once */
            need = (size_t) r->headers_out.content_length_n;

        } else {
            need = ngx_max(need, ngx_min(2 * ctx->held_size,
                                         ctx->conf->response_max_size));
            need = ngx_max(need, 4096);
        }

        p = ngx_pnalloc(r->pool, need);
        if (p == NULL) {
            return NGX_ERROR;
        }

        if (ctx->held_len) {
            ngx_memcpy(p, ctx->held, ctx->held_len);
        }

        ctx->held = p;
        ctx->held_size = need;
    }

    ngx_memcpy(ctx->held + ctx->held_len, b->pos, size);
    ctx->held_len += size;

    return NGX_OK;
}


/*
 * The answer is complete: the client gets it as it is, in the door's
 * format (rewritten through the core's event handler, which then reads
 * usage from the provider's bytes), or the gateway's error.
 */

static ngx_int_t
ngx_http_ai_proxy_answer(ngx_http_request_t *r, ngx_http_ai_proxy_ctx_t *ctx)
{
    ngx_int_t                    rc;
    ngx_str_t                    body, err, msg, filtered;
    ngx_buf_t                   *b;
    ngx_uint_t                   status, door;
    ngx_chain_t                  out;
    ngx_http_ai_ctx_t           *ai;
    ngx_http_ai_delta_t          abort;
    ngx_http_ai_proxy_target_t  *t;

    ai = ctx->ai;
    t = ctx->target;
    door = ai->req.format;
    status = r->headers_out.status;

    body.data = ctx->held;
    body.len = ctx->held_len;

    ngx_str_null(&ctx->plain);

    if (status >= NGX_HTTP_OK && status < NGX_HTTP_SPECIAL_RESPONSE) {

        if (ai->upstream_format != door
            && ai->req.endpoint != NGX_HTTP_AI_EP_MODELS)
        {
            rc = ngx_http_ai_translate_response(r->pool, ai->upstream_format,
                                                door,
                                                &ai->req.model, &body,
                                                &ctx->plain, &err);

            if (rc == NGX_ERROR) {
                return NGX_ERROR;
            }

            if (rc == NGX_DECLINED) {
                ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                              "ai_proxy: the answer of target \"%V\" cannot "
                              "be translated: %V", &t->name, &err);

                ngx_str_set(&msg, "the upstream provider sent an answer "
                                  "that cannot be translated");

                return ngx_http_ai_proxy_gateway_error(r, ctx,
                                                       NGX_HTTP_BAD_GATEWAY,
                                                       NULL, &msg);
            }

        } else {
            if (!ngx_http_ai_json_is_object(&body)) {

                ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                              "ai_proxy: target \"%V\" sent an answer that "
                              "is not JSON (%ui, %uz bytes)", &t->name,
                              status, body.len);

                ngx_str_set(&msg, "the upstream provider sent an answer "
                                  "that is not JSON");

                return ngx_http_ai_proxy_gateway_error(r, ctx,
                                                       NGX_HTTP_BAD_GATEWAY,
                                                       NULL, &msg);
            }

            if (ctx->translate) {
                /* a plain answer to a stream: nothing to drop */
                ctx->plain = body;
            }
        }

        /* the modules' delta filters on the answer, in the door's format */

        if (ngx_http_ai_deltas_wanted(r)
            && ai->req.endpoint != NGX_HTTP_AI_EP_MODELS
            && ai->req.endpoint != NGX_HTTP_AI_EP_EMBEDDINGS)
        {
            filtered = ctx->plain.data ? ctx->plain : body;

            rc = ngx_http_ai_filter_answer(r, door, &filtered, &abort);

            if (rc == NGX_ERROR) {
                return NGX_ERROR;
            }

            if (rc == NGX_ABORT) {
                /*
                 * the answer the client does not get was made and is
                 * paid for: its usage counts (limits, the record)
                 */

                (void) ngx_http_ai_usage_parse(ai->upstream_format, &body,
                                               &ai->usage);

                return ngx_http_ai_proxy_gateway_error(r, ctx, abort.status,
                                                       "content_filtered",
                                                       &abort.message);
            }

            if (rc == NGX_OK && filtered.data != body.data
                && filtered.data != ctx->plain.data)
            {
                ctx->plain = filtered;
                ctx->translate = 1;
                ai->rewrite = 1;
            }
        }

    } else {
        /* an error (the status policy let only 4xx and 5xx through) */

        ngx_http_ai_proxy_mask_key(ctx, &body);

        rc = ngx_http_ai_translate_error(r->pool, ai->upstream_format, door,
                                         status, &body, &ctx->plain);
        if (rc != NGX_OK) {
            return NGX_ERROR;
        }

        if (ctx->plain.data == body.data && ctx->plain.len == body.len) {
            /* already the door's shape */
            ngx_str_null(&ctx->plain);

        } else {
            /* an HTML page, another shape or format: rewritten */
            ctx->translate = 1;
            ai->rewrite = 1;
        }
    }

    if (ctx->plain.data) {
        ngx_str_set(&r->headers_out.content_type, "application/json");
        r->headers_out.content_type_len = r->headers_out.content_type.len;
        r->headers_out.content_type_lowcase = NULL;
        r->headers_out.charset.len = 0;

        if (r->headers_out.content_encoding) {
            r->headers_out.content_encoding->hash = 0;
            r->headers_out.content_encoding = NULL;
        }
    }

    /* the length is known now, whatever the provider's framing */

    ngx_http_clear_content_length(r);
    r->headers_out.content_length_n = body.len;

    ctx->answered = 1;

    rc = ngx_http_next_header_filter(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = body.data;
    b->last = body.data + body.len;
    b->start = b->pos;
    b->end = b->last;
    b->memory = body.len ? 1 : 0;
    b->last_buf = 1;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_next_body_filter(r, &out);
}


/*
 * Over ai_proxy_response_max_size: a 2xx in the door's format goes on as
 * it comes, unchecked; what would have to be translated or is an error
 * cannot be, and is the gateway's error.
 */

static ngx_int_t
ngx_http_ai_proxy_pass_held(ngx_http_request_t *r,
    ngx_http_ai_proxy_ctx_t *ctx, ngx_chain_t *rest)
{
    ngx_int_t     rc;
    ngx_str_t     msg;
    ngx_buf_t    *b;
    ngx_uint_t    status;
    ngx_chain_t  *cl, out;

    status = r->headers_out.status;

    if (ctx->translate || status < NGX_HTTP_OK
        || status >= NGX_HTTP_SPECIAL_RESPONSE)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ai_proxy: the answer of target \"%V\" (%ui) is "
                      "larger than ai_proxy_response_max_size (%uz)",
                      &ctx->target->name, status,
                      ctx->conf->response_max_size);

        for (cl = rest; cl; cl = cl->next) {
            cl->buf->pos = cl->buf->last;
        }

        ngx_str_set(&msg, "the upstream provider's answer is too large");

        return ngx_http_ai_proxy_gateway_error(r, ctx,
                                               status >= NGX_HTTP_BAD_REQUEST
                                               ? status
                                               : NGX_HTTP_BAD_GATEWAY,
                                               NULL, &msg);
    }

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "ai_proxy: the answer of target \"%V\" is larger than "
                  "ai_proxy_response_max_size (%uz), it goes unchecked",
                  &ctx->target->name, ctx->conf->response_max_size);

    ctx->passed = 1;

    rc = ngx_http_next_header_filter(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    if (ctx->held_len == 0) {
        return ngx_http_next_body_filter(r, rest);
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = ctx->held;
    b->last = ctx->held + ctx->held_len;
    b->start = b->pos;
    b->end = b->last;
    b->memory = 1;

    out.buf = b;
    out.next = rest;

    return ngx_http_next_body_filter(r, &out);
}


/* the gateway's error instead of the provider's answer, in the door's shape */

static ngx_int_t
ngx_http_ai_proxy_gateway_error(ngx_http_request_t *r,
    ngx_http_ai_proxy_ctx_t *ctx, ngx_uint_t status, const char *code,
    ngx_str_t *msg)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    ctx->answered = 1;
    ctx->ai->error = 1;

    b = ngx_http_ai_error_body(r, status, NULL, NULL, code, msg);
    if (b == NULL) {
        return NGX_ERROR;
    }

    r->headers_out.status = status;
    r->headers_out.status_line.len = 0;
    r->headers_out.status_line.data = NULL;

    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.charset.len = 0;

    if (r->headers_out.content_encoding) {
        r->headers_out.content_encoding->hash = 0;
        r->headers_out.content_encoding = NULL;
    }

    ngx_http_clear_content_length(r);
    ngx_http_clear_accept_ranges(r);
    ngx_http_clear_last_modified(r);
    ngx_http_clear_etag(r);

    r->headers_out.content_length_n = b->last - b->pos;

    rc = ngx_http_next_header_filter(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_next_body_filter(r, &out);
}


/*
 * A provider's error body may quote the key it was sent: the key is
 * masked before the body goes anywhere
 */

static void
ngx_http_ai_proxy_mask_key(ngx_http_ai_proxy_ctx_t *ctx, ngx_str_t *body)
{
    u_char     *p, *last;
    ngx_str_t   key;

    if (ctx->key == NULL) {
        return;
    }

    /* "Name: value" CRLF, and "Bearer value": the key is the last word */

    key.data = ctx->key->header.data;
    key.len = ctx->key->header.len - 2;

    for (p = key.data + key.len; p > key.data && p[-1] != ' '; p--) {
        /* void */
    }

    key.len = key.data + key.len - p;
    key.data = p;

    if (key.len == 0) {
        return;
    }

    last = body->data + body->len;

    for (p = body->data; p + key.len <= last; p++) {

        if (*p == key.data[0] && ngx_strncmp(p, key.data, key.len) == 0) {
            ngx_memset(p, '*', key.len);
            p += key.len - 1;
        }
    }
}


/* $ai_proxy_key: which key of the target's pool, "2" (never the key) */

static ngx_int_t
ngx_http_ai_proxy_key_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                   *p;
    ngx_http_ai_proxy_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_proxy_module);

    if (ctx == NULL || ctx->key == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->len = ngx_sprintf(p, "%ui", ctx->key->index) - p;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = p;

    return NGX_OK;
}


/*
 * $ai_proxy_targets: the targets the router chose for the request, by
 * name, comma-separated, in the location's order ("main,backup"); known
 * as soon as the request is parsed, before ACCESS and the stages
 */

static ngx_int_t
ngx_http_ai_proxy_targets_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                       *p;
    size_t                        len;
    ngx_uint_t                    i;
    ngx_http_ai_proxy_ctx_t      *ctx;
    ngx_http_ai_proxy_target_t  **t;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_proxy_module);

    if (ctx == NULL || ctx->candidates == 0 || ctx->conf->targets == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    t = ctx->conf->targets->elts;
    len = 0;

    for (i = 0; i < ctx->conf->targets->nelts && i < 64; i++) {
        if (ctx->candidates & ((uint64_t) 1 << i)) {
            len += t[i]->name.len + 1;
        }
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->data = p;

    for (i = 0; i < ctx->conf->targets->nelts && i < 64; i++) {
        if (ctx->candidates & ((uint64_t) 1 << i)) {
            if (p != v->data) {
                *p++ = ',';
            }

            p = ngx_cpymem(p, t[i]->name.data, t[i]->name.len);
        }
    }

    v->len = p - v->data;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = (v->len == 0);

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_proxy_preconfiguration(ngx_conf_t *cf)
{
    ngx_str_t             name;
    ngx_http_variable_t  *var;

    if (ngx_http_ai_core_require(cf, "ngx_http_ai_proxy_module") != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_str_set(&name, "ai_proxy_key");

    var = ngx_http_add_variable(cf, &name, NGX_HTTP_VAR_NOCACHEABLE);
    if (var == NULL) {
        return NGX_ERROR;
    }

    var->get_handler = ngx_http_ai_proxy_key_variable;

    ngx_str_set(&name, "ai_proxy_targets");

    var = ngx_http_add_variable(cf, &name, NGX_HTTP_VAR_NOCACHEABLE);
    if (var == NULL) {
        return NGX_ERROR;
    }

    var->get_handler = ngx_http_ai_proxy_targets_variable;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_proxy_postconfiguration(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_ai_proxy_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_ai_proxy_body_filter;

    if (ngx_http_ai_add_router(cf, ngx_http_ai_proxy_router) != NGX_OK) {
        return NGX_ERROR;
    }

    /* the keys' states, shared by the workers */

    if (ngx_http_ai_proxy_keys_zone(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    /* the targets' addresses, when they are resolved again */

    if (ngx_http_ai_proxy_resolve_zone(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    /* and shown by the module that serves metrics */

    if (ngx_http_ai_add_metrics(cf, ngx_http_ai_proxy_key_metrics)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    /*
     * a stored response's target, key and consumer, before the cache: no
     * entry answers a consumer that names another consumer's response
     */

    if (ngx_http_ai_add_stage(cf, NGX_HTTP_AI_STAGE_CACHE - 50,
                              ngx_http_ai_proxy_pin)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_ai_add_event_handler(cf, ngx_http_ai_proxy_event);
}


static void *
ngx_http_ai_proxy_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_ai_proxy_main_conf_t  *pmcf;

    pmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_proxy_main_conf_t));
    if (pmcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&pmcf->targets, cf->pool, 4,
                       sizeof(ngx_http_ai_proxy_target_t *))
        != NGX_OK)
    {
        return NULL;
    }

    if (ngx_array_init(&pmcf->all, cf->pool, 4,
                       sizeof(ngx_http_ai_proxy_target_t *))
        != NGX_OK)
    {
        return NULL;
    }

    if (ngx_array_init(&pmcf->resolved, cf->pool, 1,
                       sizeof(ngx_http_ai_proxy_resolve_t *))
        != NGX_OK)
    {
        return NULL;
    }

    return pmcf;
}


static void *
ngx_http_ai_proxy_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_ai_proxy_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_proxy_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->upstream.upstream = NULL;
     *     conf->upstream.bufs.num = 0;
     *     conf->upstream.store = 0;
     *     conf->upstream.temp_path = NULL;
     *     conf->url = { 0, NULL };
     *     conf->host = { 0, NULL };
     *     conf->names = NULL;
     *     conf->targets = NULL;
     *     conf->next = 0;
     *     conf->door = 0;
     *     conf->ssl_trusted_certificate = { 0, NULL };
     */

    conf->upstream.local = NGX_CONF_UNSET_PTR;
    conf->upstream.socket_keepalive = NGX_CONF_UNSET;
    conf->upstream.next_upstream_tries = NGX_CONF_UNSET_UINT;
    conf->upstream.connect_timeout = NGX_CONF_UNSET_MSEC;
    conf->upstream.send_timeout = NGX_CONF_UNSET_MSEC;
    conf->upstream.read_timeout = NGX_CONF_UNSET_MSEC;
    conf->upstream.next_upstream_timeout = NGX_CONF_UNSET_MSEC;
    conf->upstream.buffer_size = NGX_CONF_UNSET_SIZE;

    conf->upstream.hide_headers = NGX_CONF_UNSET_PTR;
    conf->upstream.pass_headers = NGX_CONF_UNSET_PTR;

#if (NGX_HTTP_SSL)
    conf->upstream.ssl_session_reuse = NGX_CONF_UNSET;
    conf->ssl_name = NGX_CONF_UNSET_PTR;
    conf->upstream.ssl_server_name = NGX_CONF_UNSET;
    conf->upstream.ssl_verify = NGX_CONF_UNSET;
    conf->ssl_verify_depth = NGX_CONF_UNSET_UINT;
#endif

    conf->provider = NGX_CONF_UNSET_UINT;
    conf->responses_store = NGX_CONF_UNSET_PTR;
    conf->responses_ttl = NGX_CONF_UNSET_MSEC;
    conf->keys = NGX_CONF_UNSET_PTR;
    conf->aliases = NGX_CONF_UNSET_PTR;
    conf->declared = NGX_CONF_UNSET_PTR;
    conf->pass_headers = NGX_CONF_UNSET_PTR;
    conf->drop_fields = NGX_CONF_UNSET_PTR;
    conf->set_headers = NGX_CONF_UNSET_PTR;
    conf->prepend = NGX_CONF_UNSET_PTR;
    conf->append = NGX_CONF_UNSET_PTR;
    conf->balance = NGX_CONF_UNSET_UINT;
    conf->tries = NGX_CONF_UNSET_UINT;
    conf->deadline = NGX_CONF_UNSET_MSEC;
    conf->key_cooldown = NGX_CONF_UNSET_MSEC;
    conf->key_disable = NGX_CONF_UNSET_MSEC;
    conf->max_tokens = NGX_CONF_UNSET;
    conf->response_max_size = NGX_CONF_UNSET_SIZE;

    /* the hardcoded values: a stream goes as it comes, nothing is stored */

    conf->upstream.buffering = 0;
    conf->upstream.request_buffering = 1;
    conf->upstream.cyclic_temp_file = 0;
    conf->upstream.busy_buffers_size = 0;
    conf->upstream.max_temp_file_size = 0;
    conf->upstream.temp_file_write_size = 0;
    conf->upstream.limit_rate = 0;
    conf->upstream.send_lowat = 0;
    conf->upstream.intercept_errors = 0;
    conf->upstream.intercept_404 = 0;
    conf->upstream.ignore_client_abort = 0;
    conf->upstream.pass_request_headers = 0;
    conf->upstream.pass_request_body = 0;
    conf->upstream.force_ranges = 0;
    conf->upstream.pass_trailers = 0;

    /* a provider does not steer NGINX */

    conf->upstream.ignore_headers = NGX_HTTP_UPSTREAM_IGN_XA_REDIRECT
                                    |NGX_HTTP_UPSTREAM_IGN_XA_EXPIRES
                                    |NGX_HTTP_UPSTREAM_IGN_XA_LIMIT_RATE
                                    |NGX_HTTP_UPSTREAM_IGN_XA_BUFFERING
                                    |NGX_HTTP_UPSTREAM_IGN_XA_CHARSET;

    /* set from "ai_proxy_next_upstream" when merged */
    conf->upstream.next_upstream = 0;

    ngx_str_set(&conf->upstream.module, "ai_proxy");

    return conf;
}


static char *
ngx_http_ai_proxy_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_ai_proxy_loc_conf_t *prev = parent;
    ngx_http_ai_proxy_loc_conf_t *conf = child;

    ngx_hash_init_t            hash;
    ngx_http_core_loc_conf_t  *clcf;

    ngx_conf_merge_ptr_value(conf->upstream.local, prev->upstream.local,
                             NULL);

    ngx_conf_merge_value(conf->upstream.socket_keepalive,
                         prev->upstream.socket_keepalive, 0);


    ngx_conf_merge_msec_value(conf->upstream.connect_timeout,
                              prev->upstream.connect_timeout, 10000);

    ngx_conf_merge_msec_value(conf->upstream.send_timeout,
                              prev->upstream.send_timeout, 60000);

    ngx_conf_merge_msec_value(conf->upstream.read_timeout,
                              prev->upstream.read_timeout, 300000);


    /*
     * not a page, as proxy_buffer_size: a stream that arrives in bursts
     * would take more reads and writes (docs/directives.md)
     */
    ngx_conf_merge_size_value(conf->upstream.buffer_size,
                              prev->upstream.buffer_size,
                              (size_t) 16 * 1024);

    if (conf->upstream.buffer_size < 1024) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ai_proxy_buffer_size\" must be at least 1k");
        return NGX_CONF_ERROR;
    }

    ngx_conf_merge_uint_value(conf->provider, prev->provider,
                              NGX_HTTP_AI_PROXY_OPENAI);
    ngx_conf_merge_ptr_value(conf->keys, prev->keys, NULL);
    ngx_conf_merge_str_value(conf->host, prev->host, "");
    ngx_conf_merge_ptr_value(conf->aliases, prev->aliases, NULL);
    ngx_conf_merge_ptr_value(conf->declared, prev->declared, NULL);
    ngx_conf_merge_ptr_value(conf->pass_headers, prev->pass_headers, NULL);
    ngx_conf_merge_ptr_value(conf->drop_fields, prev->drop_fields, NULL);
    ngx_conf_merge_ptr_value(conf->set_headers, prev->set_headers, NULL);
    ngx_conf_merge_ptr_value(conf->responses_store, prev->responses_store,
                             NULL);
    ngx_conf_merge_msec_value(conf->responses_ttl, prev->responses_ttl,
                              (ngx_msec_t) 30 * 86400 * 1000);
    ngx_conf_merge_ptr_value(conf->prepend, prev->prepend, NULL);
    ngx_conf_merge_ptr_value(conf->append, prev->append, NULL);
    ngx_conf_merge_uint_value(conf->balance, prev->balance,
                              NGX_HTTP_AI_PROXY_RR);
    ngx_conf_merge_bitmask_value(conf->next, prev->next,
                                 (NGX_CONF_BITMASK_SET
                                  |NGX_HTTP_AI_PROXY_FT_ERROR
                                  |NGX_HTTP_AI_PROXY_FT_TIMEOUT
                                  |NGX_HTTP_AI_PROXY_FT_429
                                  |NGX_HTTP_AI_PROXY_FT_5XX
                                  |NGX_HTTP_AI_PROXY_FT_AUTH));
    ngx_conf_merge_uint_value(conf->tries, prev->tries, 3);
    ngx_conf_merge_msec_value(conf->deadline, prev->deadline, 60000);
    ngx_conf_merge_msec_value(conf->key_cooldown, prev->key_cooldown,
                              30000);
    ngx_conf_merge_msec_value(conf->key_disable, prev->key_disable,
                              300000);
    ngx_conf_merge_value(conf->max_tokens, prev->max_tokens, 4096);
    ngx_conf_merge_size_value(conf->response_max_size,
                              prev->response_max_size,
                              (size_t) 4 * 1024 * 1024);

    if (conf->next & NGX_HTTP_AI_PROXY_FT_OFF) {
        conf->next = NGX_CONF_BITMASK_SET;
        conf->tries = 1;
    }

    /*
     * NGINX's next upstream machinery does the retries: a status that
     * calls for one is passed to it as an invalid header (see
     * ngx_http_ai_proxy_status()), and an LLM call that was sent may be
     * sent again elsewhere
     */

    conf->upstream.next_upstream = NGX_CONF_BITMASK_SET
                                   |NGX_HTTP_UPSTREAM_FT_INVALID_HEADER
                                   |NGX_HTTP_UPSTREAM_FT_NON_IDEMPOTENT;

    if (conf->next & NGX_HTTP_AI_PROXY_FT_ERROR) {
        conf->upstream.next_upstream |= NGX_HTTP_UPSTREAM_FT_ERROR;
    }

    if (conf->next & NGX_HTTP_AI_PROXY_FT_TIMEOUT) {
        conf->upstream.next_upstream |= NGX_HTTP_UPSTREAM_FT_TIMEOUT;
    }

    conf->upstream.next_upstream_tries = conf->tries;
    conf->upstream.next_upstream_timeout = conf->deadline;

    if (conf->door) {
        clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

        if (clcf->handler != ngx_http_ai_proxy_handler) {
            /* "proxy_pass" or another content handler came after */
            return ngx_http_ai_proxy_other_handler(cf, clcf);
        }

        if (ngx_http_ai_proxy_merge_targets(cf, conf) != NGX_OK
            || ngx_http_ai_proxy_models_check(cf, conf) != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    hash.max_size = 512;
    hash.bucket_size = ngx_align(64, ngx_cacheline_size);
    hash.name = "ai_proxy_headers_hash";

    if (ngx_http_upstream_hide_headers_hash(cf, &conf->upstream,
            &prev->upstream, ngx_http_ai_proxy_hide_headers, &hash)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

#if (NGX_HTTP_SSL)

    ngx_conf_merge_value(conf->upstream.ssl_session_reuse,
                         prev->upstream.ssl_session_reuse, 1);

    ngx_conf_merge_value(conf->upstream.ssl_verify,
                         prev->upstream.ssl_verify, 1);

    ngx_conf_merge_uint_value(conf->ssl_verify_depth,
                              prev->ssl_verify_depth, 3);

    ngx_conf_merge_str_value(conf->ssl_trusted_certificate,
                             prev->ssl_trusted_certificate,
                             NGX_HTTP_AI_PROXY_CA_BUNDLE);

    ngx_conf_merge_value(conf->upstream.ssl_server_name,
                         prev->upstream.ssl_server_name, 1);

    /* by default the TLS name is the target's host (set per attempt) */

    ngx_conf_merge_ptr_value(conf->ssl_name, prev->ssl_name, NULL);

    conf->upstream.ssl_name = conf->ssl_name;

    if (conf->any_ssl && ngx_http_ai_proxy_set_ssl(cf, conf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

#endif

    return NGX_CONF_OK;
}


#if (NGX_HTTP_SSL)

static ngx_int_t
ngx_http_ai_proxy_set_ssl(ngx_conf_t *cf, ngx_http_ai_proxy_loc_conf_t *plcf)
{
    ngx_str_t            ciphers;
    ngx_pool_cleanup_t  *cln;

    plcf->upstream.ssl = ngx_pcalloc(cf->pool, sizeof(ngx_ssl_t));
    if (plcf->upstream.ssl == NULL) {
        return NGX_ERROR;
    }

    plcf->upstream.ssl->log = cf->log;

    if (ngx_ssl_create(plcf->upstream.ssl,
                       NGX_SSL_TLSv1_2|NGX_SSL_TLSv1_3, NULL)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        ngx_ssl_cleanup_ctx(plcf->upstream.ssl);
        return NGX_ERROR;
    }

    cln->handler = ngx_ssl_cleanup_ctx;
    cln->data = plcf->upstream.ssl;

    ngx_str_set(&ciphers, "DEFAULT");

    if (ngx_ssl_ciphers(cf, plcf->upstream.ssl, &ciphers, 0) != NGX_OK) {
        return NGX_ERROR;
    }

    if (plcf->upstream.ssl_verify) {
        if (plcf->ssl_trusted_certificate.len == 0) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "no \"ai_proxy_ssl_trusted_certificate\" for "
                          "\"ai_proxy_ssl_verify\"");
            return NGX_ERROR;
        }

        if (ngx_ssl_trusted_certificate(cf, plcf->upstream.ssl,
                                        &plcf->ssl_trusted_certificate,
                                        plcf->ssl_verify_depth)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (ngx_ssl_client_session_cache(cf, plcf->upstream.ssl,
                                     plcf->upstream.ssl_session_reuse)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}

#endif



/*
 * The targets of a door: those named by "ai_proxy", or the one of
 * "ai_proxy_pass", which gets the location's provider, keys and host.
 */

static ngx_int_t
ngx_http_ai_proxy_merge_targets(ngx_conf_t *cf,
    ngx_http_ai_proxy_loc_conf_t *conf)
{
    ngx_str_t                       *name, *key;
    ngx_uint_t                       i, j;
    ngx_http_ai_proxy_target_t     **all, **tp, *t;
    ngx_http_ai_proxy_main_conf_t   *pmcf;

    if (conf->names) {
        pmcf = ngx_http_conf_get_module_main_conf(cf,
                                                  ngx_http_ai_proxy_module);

        conf->targets = ngx_array_create(cf->pool, conf->names->nelts,
                                         sizeof(ngx_http_ai_proxy_target_t *));
        if (conf->targets == NULL) {
            return NGX_ERROR;
        }

        name = conf->names->elts;
        all = pmcf->targets.elts;

        for (i = 0; i < conf->names->nelts; i++) {

            for (j = 0; j < pmcf->targets.nelts; j++) {
                if (all[j]->name.len == name[i].len
                    && ngx_strncmp(all[j]->name.data, name[i].data,
                                   name[i].len)
                       == 0)
                {
                    break;
                }
            }

            if (j == pmcf->targets.nelts) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "unknown target \"%V\" in \"ai_proxy\" "
                                   "(define it with \"ai_target\" in the "
                                   "http block)", &name[i]);
                return NGX_ERROR;
            }

            tp = ngx_array_push(conf->targets);
            if (tp == NULL) {
                return NGX_ERROR;
            }

            *tp = all[j];
        }

    } else {
        /* "ai_proxy_pass" made the one target */

        t = *(ngx_http_ai_proxy_target_t **) conf->targets->elts;

        t->provider = conf->provider;
        t->format = (conf->provider == NGX_HTTP_AI_PROXY_ANTHROPIC)
                    ? NGX_HTTP_AI_FMT_ANTHROPIC
                    : (conf->provider == NGX_HTTP_AI_PROXY_GEMINI)
                      ? NGX_HTTP_AI_FMT_GEMINI : NGX_HTTP_AI_FMT_OPENAI;

        if (conf->host.len) {
            t->host = conf->host;
        }

        if (conf->keys) {
            key = conf->keys->elts;

            for (i = 0; i < conf->keys->nelts; i++) {
                if (ngx_http_ai_proxy_target_key(cf, t, &key[i])
                    != NGX_CONF_OK)
                {
                    return NGX_ERROR;
                }
            }
        }
    }

    tp = conf->targets->elts;

    for (i = 0; i < conf->targets->nelts; i++) {
        if (tp[i]->ssl) {
            conf->any_ssl = 1;
        }
    }

    if (ngx_http_ai_proxy_targets_init(cf, conf) != NGX_CONF_OK) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* ai_proxy NAME ...; the door, with targets defined by "ai_target" */

static char *
ngx_http_ai_proxy(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_proxy_loc_conf_t *plcf = conf;

    ngx_str_t   *value, *name;
    ngx_uint_t   i;

    if (plcf->door) {
        return "is duplicate";
    }

    plcf->names = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                   sizeof(ngx_str_t));
    if (plcf->names == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        name = ngx_array_push(plcf->names);
        if (name == NULL) {
            return NGX_CONF_ERROR;
        }

        *name = value[i];
    }

    return ngx_http_ai_proxy_door(cf);
}


/* ai_proxy_pass http(s)://host[:port][/base] | http(s)://upstream[/base]; */

static char *
ngx_http_ai_proxy_pass(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_proxy_loc_conf_t *plcf = conf;

    ngx_str_t                    *value;
    ngx_http_ai_proxy_target_t  **tp, *t;

    if (plcf->door) {
        return "is duplicate";
    }

    value = cf->args->elts;

    t = ngx_http_ai_proxy_target_create(cf, NULL, &value[1],
                                        NGX_HTTP_AI_PROXY_OPENAI, NULL);
    if (t == NULL) {
        return NGX_CONF_ERROR;
    }

    plcf->targets = ngx_array_create(cf->pool, 1,
                                     sizeof(ngx_http_ai_proxy_target_t *));
    if (plcf->targets == NULL) {
        return NGX_CONF_ERROR;
    }

    tp = ngx_array_push(plcf->targets);
    if (tp == NULL) {
        return NGX_CONF_ERROR;
    }

    *tp = t;

    return ngx_http_ai_proxy_door(cf);
}


static char *
ngx_http_ai_proxy_door(ngx_conf_t *cf)
{
    ngx_http_core_loc_conf_t      *clcf;
    ngx_http_ai_proxy_loc_conf_t  *plcf;

    plcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_ai_proxy_module);
    plcf->door = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler && clcf->handler != ngx_http_ai_proxy_handler) {
        /* "proxy_pass" or another content handler came before */
        return ngx_http_ai_proxy_other_handler(cf, clcf);
    }

    clcf->handler = ngx_http_ai_proxy_handler;

    ngx_http_ai_core_enable(cf);

    return NGX_CONF_OK;
}


/*
 * A location has one content handler: with "ai_proxy" and "proxy_pass"
 * (or another) one of them would be silently ignored.
 */

static char *
ngx_http_ai_proxy_other_handler(ngx_conf_t *cf,
    ngx_http_core_loc_conf_t *clcf)
{
    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"ai_proxy\" or \"ai_proxy_pass\" cannot be used "
                       "with another content handler (\"proxy_pass\", "
                       "\"fastcgi_pass\", \"uwsgi_pass\", \"scgi_pass\", "
                       "\"grpc_pass\" ...) in the location \"%V\"",
                       &clcf->name);

    return NGX_CONF_ERROR;
}


static char *
ngx_http_ai_proxy_provider(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_proxy_loc_conf_t *plcf = conf;

    ngx_int_t   provider;
    ngx_str_t  *value;

    if (plcf->provider != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    provider = ngx_http_ai_proxy_provider_value(&value[1]);

    if (provider == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown provider \"%V\" in \"ai_proxy_provider\""
                           " (openai, azure, anthropic or gemini; "
                           "\"openai\" serves any OpenAI-compatible API)",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    plcf->provider = provider;

    return NGX_CONF_OK;
}


/*
 * ai_proxy_key env:NAME | file:/path | off;  (several make a pool)
 */

static char *
ngx_http_ai_proxy_key(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_proxy_loc_conf_t *plcf = conf;

    char       *rv;
    ngx_str_t  *value, *key, k;

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        if (plcf->keys != NGX_CONF_UNSET_PTR) {
            return "is duplicate";
        }

        plcf->keys = NULL;
        return NGX_CONF_OK;
    }

    /* checked now, for the message; the target reads it again */

    rv = ngx_http_ai_proxy_key_value(cf, "ai_proxy_key", &value[1], &k);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    if (plcf->keys == NGX_CONF_UNSET_PTR || plcf->keys == NULL) {
        plcf->keys = ngx_array_create(cf->pool, 2, sizeof(ngx_str_t));
        if (plcf->keys == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    key = ngx_array_push(plcf->keys);
    if (key == NULL) {
        return NGX_CONF_ERROR;
    }

    *key = value[1];

    return NGX_CONF_OK;
}


/* ai_proxy_host name[:port]; the Host header, and the TLS name */

static char *
ngx_http_ai_proxy_host(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_proxy_loc_conf_t *plcf = conf;

    u_char     *p;
    ngx_str_t  *value;

    if (plcf->host.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 0) {
        return "has an empty value";
    }

    for (p = value[1].data; p < value[1].data + value[1].len; p++) {
        if (*p <= ' ' || *p == 0x7f || *p == '/' || *p == '$') {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid host \"%V\" in \"ai_proxy_host\"",
                               &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    plcf->host = value[1];

    return NGX_CONF_OK;
}


/* ai_proxy_alias CLIENT_MODEL UPSTREAM_MODEL; */

static char *
ngx_http_ai_proxy_alias(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_proxy_loc_conf_t *plcf = conf;

    ngx_str_t                  *value;
    ngx_http_ai_proxy_alias_t  *alias;

    if (plcf->aliases == NGX_CONF_UNSET_PTR) {
        plcf->aliases = ngx_array_create(cf->pool, 4,
                                         sizeof(ngx_http_ai_proxy_alias_t));
        if (plcf->aliases == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    value = cf->args->elts;

    alias = ngx_array_push(plcf->aliases);
    if (alias == NULL) {
        return NGX_CONF_ERROR;
    }

    alias->from = value[1];
    alias->to = value[2];

    return NGX_CONF_OK;
}


/* ai_proxy_prepend | ai_proxy_append ROLE TEXT; */

static char *
ngx_http_ai_proxy_decoration(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    ngx_str_t                  *value;
    ngx_array_t               **a;
    ngx_http_ai_decoration_t   *d;

    value = cf->args->elts;

    if (!((value[1].len == 6 && ngx_strcmp(value[1].data, "system") == 0)
          || (value[1].len == 4 && ngx_strcmp(value[1].data, "user") == 0)
          || (value[1].len == 9
              && ngx_strcmp(value[1].data, "assistant") == 0)))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid role \"%V\" in \"%V\" (system, user "
                           "or assistant)", &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    a = (ngx_array_t **) (p + cmd->offset);

    if (*a == NGX_CONF_UNSET_PTR) {
        *a = ngx_array_create(cf->pool, 2, sizeof(ngx_http_ai_decoration_t));
        if (*a == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    d = ngx_array_push(*a);
    if (d == NULL) {
        return NGX_CONF_ERROR;
    }

    d->role = value[1];
    d->content = value[2];

    return NGX_CONF_OK;
}
