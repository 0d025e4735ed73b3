
/*
 * Copyright (C) AI Gateway authors
 *
 * $ai_* variables.  Values change while the response goes, so none is
 * cached; a value not known (yet) is "not found" ("-" in access logs).
 */


#include "ngx_http_ai_core_module.h"


static ngx_int_t ngx_http_ai_variable_str(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_ai_variable_model(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_ai_variable_stream(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_ai_variable_usage(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_ai_variable_msec(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_ai_variable_attempts(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_ai_variable_cost(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_ai_variable_endpoint(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_ai_variable_outcome(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_ai_variable_usage_source(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


static ngx_str_t  ngx_http_ai_endpoint_names[] = {
    ngx_null_string,
    ngx_string("chat"),
    ngx_string("embeddings"),
    ngx_string("models"),
    ngx_string("messages"),
    ngx_string("generate_content"),
    ngx_string("count_tokens"),
    ngx_string("responses"),
    ngx_string("response")
};


static ngx_http_variable_t  ngx_http_ai_core_vars[] = {

    { ngx_string("ai_model"), NULL, ngx_http_ai_variable_model,
      0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_stream"), NULL, ngx_http_ai_variable_stream,
      0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_endpoint"), NULL, ngx_http_ai_variable_endpoint,
      0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_consumer"), NULL, ngx_http_ai_variable_str,
      offsetof(ngx_http_ai_ctx_t, consumer), NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_provider"), NULL, ngx_http_ai_variable_str,
      offsetof(ngx_http_ai_ctx_t, provider), NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_target"), NULL, ngx_http_ai_variable_str,
      offsetof(ngx_http_ai_ctx_t, target), NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_route_model"), NULL, ngx_http_ai_variable_str,
      offsetof(ngx_http_ai_ctx_t, route_model), NGX_HTTP_VAR_NOCACHEABLE,
      0 },

    { ngx_string("ai_upstream_model"), NULL, ngx_http_ai_variable_str,
      offsetof(ngx_http_ai_ctx_t, upstream_model),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_attempts"), NULL, ngx_http_ai_variable_attempts,
      0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_prompt_tokens"), NULL, ngx_http_ai_variable_usage,
      offsetof(ngx_http_ai_usage_t, prompt_tokens),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_completion_tokens"), NULL, ngx_http_ai_variable_usage,
      offsetof(ngx_http_ai_usage_t, completion_tokens),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_total_tokens"), NULL, ngx_http_ai_variable_usage,
      offsetof(ngx_http_ai_usage_t, total_tokens),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_cached_tokens"), NULL, ngx_http_ai_variable_usage,
      offsetof(ngx_http_ai_usage_t, cached_tokens),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_reasoning_tokens"), NULL, ngx_http_ai_variable_usage,
      offsetof(ngx_http_ai_usage_t, reasoning_tokens),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_cache_write_tokens"), NULL, ngx_http_ai_variable_usage,
      offsetof(ngx_http_ai_usage_t, cache_write_tokens),
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_usage_source"), NULL,
      ngx_http_ai_variable_usage_source, 0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_cost"), NULL, ngx_http_ai_variable_cost,
      0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_ttft"), NULL, ngx_http_ai_variable_msec,
      offsetof(ngx_http_ai_ctx_t, ttft), NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("ai_response_time"), NULL, ngx_http_ai_variable_msec,
      offsetof(ngx_http_ai_ctx_t, total), NGX_HTTP_VAR_NOCACHEABLE, 0 },

    /* $ai_outcome_NAME: what the module that owns NAME published */
    { ngx_string("ai_outcome_"), NULL, ngx_http_ai_variable_outcome, 0,
      NGX_HTTP_VAR_NOCACHEABLE|NGX_HTTP_VAR_PREFIX, 0 },

      ngx_http_null_variable
};


ngx_int_t
ngx_http_ai_core_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_ai_core_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_variable_value(ngx_http_variable_value_t *v, ngx_str_t *s)
{
    if (s->len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = s->len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = s->data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_variable_str(ngx_http_request_t *r, ngx_http_variable_value_t *v,
    uintptr_t data)
{
    ngx_http_ai_ctx_t  *ctx;

    ctx = ngx_http_ai_get_ctx(r);

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    return ngx_http_ai_variable_value(v, (ngx_str_t *) ((char *) ctx + data));
}


static ngx_int_t
ngx_http_ai_variable_model(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_ai_ctx_t  *ctx;

    ctx = ngx_http_ai_get_ctx(r);

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    return ngx_http_ai_variable_value(v, &ctx->req.model);
}


static ngx_int_t
ngx_http_ai_variable_stream(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t           s;
    ngx_http_ai_ctx_t  *ctx;

    ctx = ngx_http_ai_get_ctx(r);

    if (ctx == NULL || !ctx->req.parsed) {
        v->not_found = 1;
        return NGX_OK;
    }

    if (ctx->req.stream) {
        ngx_str_set(&s, "true");

    } else {
        ngx_str_set(&s, "false");
    }

    return ngx_http_ai_variable_value(v, &s);
}


static ngx_int_t
ngx_http_ai_variable_endpoint(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_ai_ctx_t  *ctx;

    ctx = ngx_http_ai_get_ctx(r);

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    return ngx_http_ai_variable_value(v,
                                &ngx_http_ai_endpoint_names[ctx->req.endpoint]);
}


static ngx_int_t
ngx_http_ai_variable_number(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, ngx_int_t n)
{
    u_char  *p;

    p = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->len = ngx_sprintf(p, "%i", n) - p;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = p;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_variable_usage(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_ai_ctx_t  *ctx;

    ctx = ngx_http_ai_get_ctx(r);

    if (ctx == NULL || !ctx->usage.found) {
        v->not_found = 1;
        return NGX_OK;
    }

    return ngx_http_ai_variable_number(r, v,
                                *(ngx_int_t *) ((char *) &ctx->usage + data));
}


/* "provider", "estimated" (counted locally), or not found */

static ngx_int_t
ngx_http_ai_variable_usage_source(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_ai_usage_t  usage;

    if (ngx_http_ai_final_usage(r, &usage) != NGX_OK) {
        v->not_found = 1;
        return NGX_OK;
    }

    if (usage.estimated) {
        v->data = (u_char *) "estimated";
        v->len = sizeof("estimated") - 1;

    } else {
        v->data = (u_char *) "provider";
        v->len = sizeof("provider") - 1;
    }

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_variable_attempts(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_ai_ctx_t  *ctx;

    ctx = ngx_http_ai_get_ctx(r);

    if (ctx == NULL || ctx->attempts == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    return ngx_http_ai_variable_number(r, v, ctx->attempts);
}


/* seconds with milliseconds, as $upstream_response_time */

static ngx_int_t
ngx_http_ai_variable_msec(ngx_http_request_t *r, ngx_http_variable_value_t *v,
    uintptr_t data)
{
    u_char             *p;
    ngx_msec_t          ms;
    ngx_http_ai_ctx_t  *ctx;

    ctx = ngx_http_ai_get_ctx(r);

    if (ctx == NULL || !ctx->first_byte) {
        v->not_found = 1;
        return NGX_OK;
    }

    ms = *(ngx_msec_t *) ((char *) ctx + data);

    if (data == offsetof(ngx_http_ai_ctx_t, total) && !ctx->resp_last) {
        v->not_found = 1;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN + 4);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->len = ngx_sprintf(p, "%T.%03M", (time_t) ms / 1000, ms % 1000) - p;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = p;

    return NGX_OK;
}


/* US dollars with 6 decimals */

static ngx_int_t
ngx_http_ai_variable_cost(ngx_http_request_t *r, ngx_http_variable_value_t *v,
    uintptr_t data)
{
    u_char             *p;
    double              cost;
    ngx_http_ai_ctx_t  *ctx;

    ctx = ngx_http_ai_get_ctx(r);

    if (ctx == NULL || ngx_http_ai_cost(r, ctx, &cost) != NGX_OK) {
        v->not_found = 1;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, NGX_INT64_LEN + 8);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->len = ngx_sprintf(p, "%.6f", cost) - p;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = p;

    return NGX_OK;
}


/*
 * Outcomes: what a module decided for the request, as (name, value),
 * published through one call and read generically by the variables, the
 * record and the metrics.  A name is set once; setting it again replaces
 * its value.  Both strings must live as long as the request.
 */

ngx_int_t
ngx_http_ai_set_outcome(ngx_http_request_t *r, ngx_str_t *name,
    ngx_str_t *value)
{
    ngx_uint_t              i;
    ngx_http_ai_ctx_t      *ctx;
    ngx_http_ai_outcome_t  *o;

    ctx = ngx_http_ai_get_ctx(r);
    if (ctx == NULL) {
        return NGX_DECLINED;
    }

    if (ctx->outcomes.elts == NULL
        && ngx_array_init(&ctx->outcomes, r->pool, 4,
                          sizeof(ngx_http_ai_outcome_t))
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    o = ctx->outcomes.elts;

    for (i = 0; i < ctx->outcomes.nelts; i++) {
        if (o[i].name.len == name->len
            && ngx_strncmp(o[i].name.data, name->data, name->len) == 0)
        {
            o[i].value = *value;
            return NGX_OK;
        }
    }

    o = ngx_array_push(&ctx->outcomes);
    if (o == NULL) {
        return NGX_ERROR;
    }

    o->name = *name;
    o->value = *value;

    return NGX_OK;
}


ngx_array_t *
ngx_http_ai_outcomes(ngx_http_request_t *r)
{
    ngx_http_ai_ctx_t  *ctx;

    ctx = ngx_http_ai_get_ctx(r);

    if (ctx == NULL || ctx->outcomes.nelts == 0) {
        return NULL;
    }

    return &ctx->outcomes;
}


static ngx_int_t
ngx_http_ai_variable_outcome(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t *var = (ngx_str_t *) data;

    ngx_str_t               name;
    ngx_uint_t              i;
    ngx_array_t            *a;
    ngx_http_ai_outcome_t  *o;

    name.data = var->data + sizeof("ai_outcome_") - 1;
    name.len = var->len - (sizeof("ai_outcome_") - 1);

    a = ngx_http_ai_outcomes(r);

    if (a) {
        o = a->elts;

        for (i = 0; i < a->nelts; i++) {
            if (o[i].name.len == name.len
                && ngx_strncasecmp(o[i].name.data, name.data, name.len) == 0)
            {
                return ngx_http_ai_variable_value(v, &o[i].value);
            }
        }
    }

    v->not_found = 1;

    return NGX_OK;
}
