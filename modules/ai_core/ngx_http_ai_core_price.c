
/*
 * Copyright (C) AI Gateway authors
 *
 * The price table, for the cost of a request (logs, metrics, budgets):
 *
 *     ai_price MODEL input=USD output=USD [cached=USD] [cache_write=USD];
 *
 * prices are per million tokens; MODEL is a shell glob (fnmatch), the
 * first match wins.  Prompt tokens read from the provider's prompt cache
 * cost the "cached" price, those written to it the "cache_write" price
 * (both default to the input price), the rest of the prompt the input
 * price: each prompt token is priced once, whatever the provider's way
 * of counting (see ngx_http_ai_usage_t).  Prices are kept as integers
 * (micro-dollars per million tokens: at most 6 decimals, at most $1000
 * per million tokens) so that a cost is exact and limits and budgets
 * never drift.
 */


#include "ngx_http_ai_core_module.h"


static ngx_int_t ngx_http_ai_price_value(ngx_str_t *s, int64_t *value);
static ngx_http_ai_price_t *ngx_http_ai_price_find(ngx_http_request_t *r,
    ngx_str_t *model);
static int64_t ngx_http_ai_price_pico(ngx_http_ai_price_t *price,
    ngx_http_ai_usage_t *u);


char *
ngx_http_ai_price(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_core_main_conf_t *amcf = conf;

    int64_t              *v;
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
    price->cache_write = -1;

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

        } else if (ngx_strncmp(value[i].data, "cache_write=", 12) == 0) {
            v = &price->cache_write;
            s.data = value[i].data + 12;

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
                               "(US dollars per million tokens, e.g. 2.50, "
                               "at most 6 decimals and 1000)",
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

    if (price->cache_write < 0) {
        price->cache_write = price->input;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_ai_price_value(ngx_str_t *s, int64_t *value)
{
    /* at most $1000 per million tokens: a cost cannot overflow */

    if (ngx_http_ai_parse_micros(s, value) != NGX_OK
        || *value > 1000000000)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_ai_parse_micros(ngx_str_t *s, int64_t *value)
{
    u_char      *p, *last;
    ngx_uint_t   digits, frac, dot;

    *value = 0;
    digits = 0;
    frac = 0;
    dot = 0;

    last = s->data + s->len;

    for (p = s->data; p < last; p++) {

        if (*p == '.' && !dot) {
            dot = 1;
            continue;
        }

        if (*p < '0' || *p > '9' || (dot && ++frac > 6) || ++digits > 18) {
            return NGX_ERROR;
        }

        *value = *value * 10 + (*p - '0');
    }

    /* 18 digits at most, of which 6 decimals: below 2^63 */

    while (frac++ < 6) {
        *value *= 10;
    }

    return digits ? NGX_OK : NGX_ERROR;
}


/*
 * Two digits a step, from the end, into the length counted first: no
 * copy and half the divisions (each a multiplication) of a digit a step
 */

static const u_char  ngx_http_ai_digit_pairs[] =
    "00010203040506070809101112131415161718192021222324252627282930313233"
    "34353637383940414243444546474849505152535455565758596061626364656667"
    "6869707172737475767778798081828384858687888990919293949596979899";


u_char *
ngx_http_ai_digits(u_char *p, uint64_t n)
{
    size_t       len;
    u_char      *q;
    uint64_t     m;
    ngx_uint_t   i;

    if (n < 10) {
        *p = (u_char) ('0' + n);
        return p + 1;
    }

    len = 1;

    for (m = n; m >= 10000; m /= 10000) {
        len += 4;
    }

    len += (m >= 10) + (m >= 100) + (m >= 1000);

    q = p + len;

    while (n >= 100) {
        i = (ngx_uint_t) (n % 100) * 2;
        n /= 100;

        *--q = ngx_http_ai_digit_pairs[i + 1];
        *--q = ngx_http_ai_digit_pairs[i];
    }

    if (n >= 10) {
        i = (ngx_uint_t) n * 2;

        *--q = ngx_http_ai_digit_pairs[i + 1];
        *--q = ngx_http_ai_digit_pairs[i];

    } else {
        *--q = (u_char) ('0' + n);
    }

    return p + len;
}


static ngx_http_ai_price_t *
ngx_http_ai_price_find(ngx_http_request_t *r, ngx_str_t *model)
{
    ngx_uint_t                     i;
    ngx_http_ai_price_t           *price;
    ngx_http_ai_core_main_conf_t  *amcf;

    if (model->len == 0) {
        return NULL;
    }

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_core_module);
    price = amcf->prices.elts;

    for (i = 0; i < amcf->prices.nelts; i++) {
        if (ngx_http_ai_glob_match(&price[i].model, model)) {
            return &price[i];
        }
    }

    return NULL;
}


ngx_int_t
ngx_http_ai_cost_micros(ngx_http_request_t *r, ngx_str_t *model,
    ngx_http_ai_usage_t *usage, int64_t *micros)
{
    int64_t               pico;
    ngx_http_ai_price_t  *price;

    price = ngx_http_ai_price_find(r, model);
    if (price == NULL) {
        return NGX_DECLINED;
    }

    pico = ngx_http_ai_price_pico(price, usage);

    /* rounded up: a limit never undercounts */

    *micros = (pico + 999999) / 1000000;

    return NGX_OK;
}


ngx_int_t
ngx_http_ai_cost(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx, double *cost)
{
    ngx_str_t            *model;
    ngx_http_ai_price_t  *price;

    if (!ctx->usage.found) {
        return NGX_DECLINED;
    }

    model = ctx->upstream_model.len ? &ctx->upstream_model : &ctx->req.model;

    price = ngx_http_ai_price_find(r, model);
    if (price == NULL) {
        return NGX_DECLINED;
    }

    *cost = (double) ngx_http_ai_price_pico(price, &ctx->usage) / 1e12;

    return NGX_OK;
}


/*
 * The cost in 10^-12 USD: the prompt's tokens read from the cache at the
 * cached price, those written to it at the cache write price, the rest
 * at the input price, each token once; the completion (reasoning
 * included) at the output price.  Tokens <= 10^9
 * (NGX_HTTP_AI_TOKENS_MAX), prices <= 10^9: each product < 10^18, the
 * sum of four < 2^63.
 */

static int64_t
ngx_http_ai_price_pico(ngx_http_ai_price_t *price, ngx_http_ai_usage_t *u)
{
    int64_t  prompt, cached, written;

    prompt = ngx_max(u->prompt_tokens, 0);

    cached = ngx_min(u->cached_tokens, prompt);
    cached = ngx_max(cached, 0);

    written = ngx_min(u->cache_write_tokens, prompt - cached);
    written = ngx_max(written, 0);

    return (prompt - cached - written) * price->input
           + cached * price->cached
           + written * price->cache_write
           + ngx_max(u->completion_tokens, 0) * price->output;
}
