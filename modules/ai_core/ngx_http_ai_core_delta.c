
/*
 * Copyright (C) AI Gateway authors
 *
 * Delta filters: the registry, the per-request switch, and the runner
 * that the format layer calls for each text of an answer (see "Delta
 * filters" in ngx_http_ai_core.h; where the texts are in each format is
 * ngx_http_ai_core_format_filter.c).
 */


#include "ngx_http_ai_core_module.h"
#include "ngx_http_ai_core_format.h"


static ngx_int_t ngx_http_ai_core_run_deltas(void *data,
    ngx_http_ai_delta_t *delta);


ngx_int_t
ngx_http_ai_add_delta_filter(ngx_conf_t *cf, ngx_uint_t order,
    ngx_http_ai_delta_filter_pt filter)
{
    ngx_http_ai_delta_filter_t    *f;
    ngx_http_ai_core_main_conf_t  *amcf;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ai_core_module);

    f = ngx_http_ai_core_insert(&amcf->deltas, order);
    if (f == NULL) {
        return NGX_ERROR;
    }

    f->order = order;
    f->handler = filter;

    return NGX_OK;
}


void
ngx_http_ai_filter_deltas(ngx_http_request_t *r)
{
    ngx_http_ai_ctx_t  *ctx;

    ctx = ngx_http_ai_get_ctx(r);

    if (ctx) {
        ngx_http_ai_core_ctx(ctx)->deltas = 1;
    }
}


ngx_uint_t
ngx_http_ai_deltas_wanted(ngx_http_request_t *r)
{
    ngx_http_ai_ctx_t             *ctx;
    ngx_http_ai_core_main_conf_t  *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_core_module);

    if (amcf->deltas.nelts == 0) {
        return 0;
    }

    ctx = ngx_http_ai_get_ctx(r);

    return ctx && ngx_http_ai_core_ctx(ctx)->deltas;
}


void
ngx_http_ai_stream_filter(ngx_http_ai_stream_t *st, ngx_http_request_t *r)
{
    if (ngx_http_ai_deltas_wanted(r)) {
        ngx_http_ai_tr_set_filter(st, ngx_http_ai_core_run_deltas, r);
    }
}


ngx_int_t
ngx_http_ai_filter_answer(ngx_http_request_t *r, ngx_uint_t format,
    ngx_str_t *body, ngx_http_ai_delta_t *abort)
{
    if (!ngx_http_ai_deltas_wanted(r)) {
        return NGX_OK;
    }

    return ngx_http_ai_tr_filter_answer(r->pool, format,
                                        ngx_http_ai_core_run_deltas, r,
                                        body, abort);
}


/* the filters in their order, each on what the one before let through */

static ngx_int_t
ngx_http_ai_core_run_deltas(void *data, ngx_http_ai_delta_t *delta)
{
    ngx_http_request_t *r = data;

    ngx_int_t                      rc;
    ngx_uint_t                     i;
    ngx_http_ai_delta_filter_t    *f;
    ngx_http_ai_core_main_conf_t  *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_core_module);

    f = amcf->deltas.elts;

    for (i = 0; i < amcf->deltas.nelts; i++) {
        rc = f[i].handler(r, delta);

        if (rc == NGX_OK) {
            continue;
        }

        if (rc == NGX_ABORT) {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "ai: a delta filter ended the answer");
            return NGX_ABORT;
        }

        return NGX_ERROR;
    }

    return NGX_OK;
}
