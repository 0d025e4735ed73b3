
/*
 * Copyright (C) AI Gateway authors
 *
 * The price table, for the cost of a request (logs, metrics, budgets):
 *
 *     ai_price MODEL input=USD output=USD [cached=USD];
 *
 * prices are per million tokens; MODEL is a shell glob (fnmatch), the
 * first match wins.  Cached prompt tokens cost the "cached" price
 * (default: the input price).
 */


#include "ngx_http_ai_core_module.h"

#include <fnmatch.h>


static ngx_int_t ngx_http_ai_price_value(ngx_str_t *s, double *value);


char *
ngx_http_ai_price(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_core_main_conf_t *amcf = conf;

    double               *v;
    ngx_str_t            *value, s;
    ngx_uint_t            i;
    ngx_http_ai_price_t  *price;

    value = cf->args->elts;

    price = ngx_array_push(&amcf->prices);
    if (price == NULL) {
        return NGX_CONF_ERROR;
    }

    price->model = value[1];        /* NUL-terminated by the parser */
    price->input = -1;
    price->output = -1;
    price->cached = -1;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "input=", 6) == 0) {
            v = &price->input;
            s.data = value[i].data + 6;

        } else if (ngx_strncmp(value[i].data, "output=", 7) == 0) {
            v = &price->output;
            s.data = value[i].data + 7;

        } else if (ngx_strncmp(value[i].data, "cached=", 7) == 0) {
            v = &price->cached;
            s.data = value[i].data + 7;

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ai_price \"%V\": invalid parameter \"%V\"",
                               &value[1], &value[i]);
            return NGX_CONF_ERROR;
        }

        s.len = value[i].data + value[i].len - s.data;

        if (ngx_http_ai_price_value(&s, v) != NGX_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ai_price \"%V\": invalid price \"%V\" "
                               "(US dollars per million tokens, e.g. 2.50)",
                               &value[1], &value[i]);
            return NGX_CONF_ERROR;
        }
    }

    if (price->input < 0 || price->output < 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_price \"%V\": \"input=\" and \"output=\" are "
                           "required", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (price->cached < 0) {
        price->cached = price->input;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_ai_price_value(ngx_str_t *s, double *value)
{
    u_char      *p, *last;
    double       scale;
    ngx_uint_t   digits, dot;

    *value = 0;
    scale = 1;
    digits = 0;
    dot = 0;

    last = s->data + s->len;

    for (p = s->data; p < last; p++) {

        if (*p == '.' && !dot) {
            dot = 1;
            continue;
        }

        if (*p < '0' || *p > '9') {
            return NGX_ERROR;
        }

        digits++;

        if (dot) {
            scale /= 10;
            *value += (*p - '0') * scale;

        } else {
            *value = *value * 10 + (*p - '0');
        }
    }

    return digits ? NGX_OK : NGX_ERROR;
}


ngx_int_t
ngx_http_ai_cost(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx, double *cost)
{
    u_char                         name[256];
    ngx_str_t                     *model;
    ngx_int_t                      cached;
    ngx_uint_t                     i;
    ngx_http_ai_price_t           *price;
    ngx_http_ai_core_main_conf_t  *amcf;

    if (!ctx->usage.found) {
        return NGX_DECLINED;
    }

    model = ctx->upstream_model.len ? &ctx->upstream_model : &ctx->req.model;

    if (model->len == 0 || model->len >= sizeof(name)) {
        return NGX_DECLINED;
    }

    ngx_memcpy(name, model->data, model->len);
    name[model->len] = '\0';

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_core_module);
    price = amcf->prices.elts;

    for (i = 0; i < amcf->prices.nelts; i++) {

        if (fnmatch((char *) price[i].model.data, (char *) name, 0) != 0) {
            continue;
        }

        cached = ngx_min(ctx->usage.cached_tokens, ctx->usage.prompt_tokens);

        *cost = ((ctx->usage.prompt_tokens - cached) * price[i].input
                 + cached * price[i].cached
                 + ctx->usage.completion_tokens * price[i].output)
                / 1000000.0;

        return NGX_OK;
    }

    return NGX_DECLINED;
}
