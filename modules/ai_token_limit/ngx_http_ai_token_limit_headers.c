
/*
 * Copyright (C) AI Gateway authors
 *
 * The rate limit headers, as OpenAI sends them, for the tightest limit of
 * each kind the request was counted against (the least left):
 *
 *     x-ratelimit-limit-tokens        x-ratelimit-limit-requests
 *     x-ratelimit-remaining-tokens    x-ratelimit-remaining-requests
 *     x-ratelimit-reset-tokens        x-ratelimit-reset-requests
 *
 * (tokens: the rules counting tokens, prompt or completion tokens;
 * requests: the rules counting requests).  The provider's own headers of
 * a kind are hidden when the gateway sends its own: the client sees one
 * answer to "how much is left".
 */


#include "ngx_http_ai_token_limit.h"


static ngx_http_ai_tl_hold_t *ngx_http_ai_token_limit_tightest(
    ngx_http_ai_tl_ctx_t *ctx, ngx_uint_t requests);
static ngx_int_t ngx_http_ai_token_limit_set(ngx_http_request_t *r,
    ngx_http_ai_tl_hold_t *h, ngx_uint_t kind);
static ngx_int_t ngx_http_ai_token_limit_header(ngx_http_request_t *r,
    ngx_str_t *name, u_char *value, size_t len);
static void ngx_http_ai_token_limit_hide(ngx_http_request_t *r,
    ngx_uint_t kind);


/* by kind (tokens, requests): the suffix, and the three names */

static ngx_str_t  ngx_http_ai_token_limit_kinds[] = {
    ngx_string("tokens"),
    ngx_string("requests")
};

static ngx_str_t  ngx_http_ai_token_limit_names[][3] = {
    { ngx_string("x-ratelimit-limit-tokens"),
      ngx_string("x-ratelimit-remaining-tokens"),
      ngx_string("x-ratelimit-reset-tokens") },
    { ngx_string("x-ratelimit-limit-requests"),
      ngx_string("x-ratelimit-remaining-requests"),
      ngx_string("x-ratelimit-reset-requests") }
};


ngx_int_t
ngx_http_ai_token_limit_headers(ngx_http_request_t *r,
    ngx_http_ai_tl_ctx_t *ctx)
{
    ngx_http_ai_tl_hold_t  *h;

    h = ngx_http_ai_token_limit_tightest(ctx, 0);

    if (h && ngx_http_ai_token_limit_set(r, h, 0) != NGX_OK) {
        return NGX_ERROR;
    }

    h = ngx_http_ai_token_limit_tightest(ctx, 1);

    if (h && ngx_http_ai_token_limit_set(r, h, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_http_ai_tl_hold_t *
ngx_http_ai_token_limit_tightest(ngx_http_ai_tl_ctx_t *ctx,
    ngx_uint_t requests)
{
    int64_t                 left, least;
    ngx_uint_t              i, count;
    ngx_http_ai_tl_hold_t  *h, *tightest;

    tightest = NULL;
    least = 0;

    for (i = 0; i < ctx->nholds; i++) {
        h = &ctx->holds[i];
        count = h->rule->count;

        if (!h->done || h->rc == NGX_ERROR) {
            continue;
        }

        if (requests ? (count != NGX_HTTP_AI_TL_REQUESTS)
                     : (count > NGX_HTTP_AI_TL_COMPLETION))
        {
            continue;
        }

        left = h->rule->amount - h->used;

        if (tightest == NULL || left < least) {
            tightest = h;
            least = left;
        }
    }

    return tightest;
}


static ngx_int_t
ngx_http_ai_token_limit_set(ngx_http_request_t *r, ngx_http_ai_tl_hold_t *h,
    ngx_uint_t kind)
{
    u_char      buf[NGX_INT64_LEN + 32], *p;
    int64_t     left;
    ngx_str_t  *names;

    names = ngx_http_ai_token_limit_names[kind];

    ngx_http_ai_token_limit_hide(r, kind);

    p = buf;

    if (h->rule->amount < 0) {
        /* (not from a configuration: amounts are checked positive) */
        *p++ = '-';
    }

    p = ngx_http_ai_digits(p, h->rule->amount < 0
                                       ? (uint64_t) 0 - h->rule->amount
                                       : (uint64_t) h->rule->amount);

    if (ngx_http_ai_token_limit_header(r, &names[0], buf, p - buf)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    left = h->rule->amount - h->used;
    p = ngx_http_ai_digits(buf, left > 0 ? left : 0);

    if (ngx_http_ai_token_limit_header(r, &names[1], buf, p - buf)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    p = ngx_http_ai_token_limit_duration(buf, h->reset);

    return ngx_http_ai_token_limit_header(r, &names[2], buf, p - buf);
}


static ngx_int_t
ngx_http_ai_token_limit_header(ngx_http_request_t *r, ngx_str_t *name,
    u_char *value, size_t len)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->value.data = ngx_pnalloc(r->pool, len);
    if (h->value.data == NULL) {
        h->hash = 0;
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key = *name;
    h->value.len = len;
    ngx_memcpy(h->value.data, value, len);
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif

    return NGX_OK;
}


/* the provider's x-ratelimit-*-KIND headers */

static void
ngx_http_ai_token_limit_hide(ngx_http_request_t *r, ngx_uint_t kind)
{
    size_t            n;
    u_char           *suffix;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    n = ngx_http_ai_token_limit_kinds[kind].len;
    suffix = ngx_http_ai_token_limit_kinds[kind].data;

    part = &r->headers_out.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].hash && h[i].key.len > 12 + n
            && ngx_strncasecmp(h[i].key.data, (u_char *) "x-ratelimit-", 12)
               == 0
            && ngx_strncasecmp(h[i].key.data + h[i].key.len - n, suffix,
                               n)
               == 0)
        {
            h[i].hash = 0;
        }
    }
}


/* as OpenAI writes a reset time: "20ms", "1s", "6m0s", "1h30m0s" */

u_char *
ngx_http_ai_token_limit_duration(u_char *p, ngx_msec_t ms)
{
    ngx_msec_t  s;
    ngx_uint_t  hours;

    if (ms < 1000) {
        p = ngx_http_ai_digits(p, ms);
        *p++ = 'm';
        *p++ = 's';
        return p;
    }

    s = (ms + 999) / 1000;
    hours = (s >= 3600);

    if (hours) {
        p = ngx_http_ai_digits(p, s / 3600);
        *p++ = 'h';
        s %= 3600;
    }

    if (s >= 60 || hours) {
        p = ngx_http_ai_digits(p, s / 60);
        *p++ = 'm';
        s %= 60;
    }

    p = ngx_http_ai_digits(p, s);
    *p++ = 's';

    return p;
}

