
/*
 * Copyright (C) AI Gateway authors
 *
 * Where a request's time goes: the requests and streams in flight (two
 * gauges of the metrics zone, counted from the first stage to the end
 * of the request), the time spent with the upstreams, and the
 * "Server-Timing" header ("ai_server_timing on") that tells a client the
 * gateway's own time and the upstream's.
 */


#include "ngx_http_ai_log.h"


typedef struct {
    ngx_atomic_t               *inflight;
    ngx_atomic_t               *streams;
} ngx_http_ai_log_inflight_t;


static void ngx_http_ai_log_inflight_cleanup(void *data);
static ngx_int_t ngx_http_ai_log_timing_filter(ngx_http_request_t *r);


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;


/*
 * The first stage: the request is in flight until its pool goes (a pool
 * cleanup, which runs once however the request ends, internal redirects
 * included).  A stage may run again after a redirect: counted once.
 */

ngx_int_t
ngx_http_ai_log_inflight_stage(ngx_http_request_t *r, ngx_http_ai_ctx_t *ai)
{
    ngx_pool_cleanup_t           *cln;
    ngx_http_ai_log_zone_t       *zone;
    ngx_http_ai_log_inflight_t   *in;
    ngx_http_ai_log_main_conf_t  *lmcf;

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_ai_log_module);

    if (lmcf->zone == NULL || r != r->main) {
        return NGX_DECLINED;
    }

    for (cln = r->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_ai_log_inflight_cleanup) {
            return NGX_DECLINED;
        }
    }

    zone = lmcf->zone->data;

    cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_http_ai_log_inflight_t));
    if (cln == NULL) {
        return NGX_ERROR;
    }

    in = cln->data;
    in->inflight = &zone->sh->inflight;
    in->streams = ai->req.stream ? &zone->sh->streams : NULL;

    (void) ngx_atomic_fetch_add(in->inflight, 1);

    if (in->streams) {
        (void) ngx_atomic_fetch_add(in->streams, 1);
    }

    cln->handler = ngx_http_ai_log_inflight_cleanup;

    return NGX_DECLINED;
}


static void
ngx_http_ai_log_inflight_cleanup(void *data)
{
    ngx_http_ai_log_inflight_t *in = data;

    (void) ngx_atomic_fetch_add(in->inflight, -1);

    if (in->streams) {
        (void) ngx_atomic_fetch_add(in->streams, -1);
    }
}


/*
 * The time spent with upstreams so far: each server tried until its
 * response ended, and the one at hand since it started.
 */

ngx_msec_t
ngx_http_ai_log_upstream_time(ngx_http_request_t *r)
{
    ngx_msec_t                  ms;
    ngx_uint_t                  i;
    ngx_msec_int_t              d;
    ngx_http_upstream_state_t  *state;

    ms = 0;

    if (r->upstream_states == NULL) {
        return 0;
    }

    state = r->upstream_states->elts;

    for (i = 0; i < r->upstream_states->nelts; i++) {

        if (state[i].response_time != (ngx_msec_t) -1) {
            ms += state[i].response_time;
            continue;
        }

        if (i == r->upstream_states->nelts - 1 && r->upstream
            && r->upstream->start_time)
        {
            d = (ngx_msec_int_t) (ngx_current_msec
                                  - r->upstream->start_time);
            ms += (d > 0) ? (ngx_msec_t) d : 0;
        }
    }

    return ms;
}


ngx_int_t
ngx_http_ai_log_timing_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_ai_log_timing_filter;

    return NGX_OK;
}


/* Server-Timing: gateway;dur=N, upstream;dur=N (ms, as the header says) */

static ngx_int_t
ngx_http_ai_log_timing_filter(ngx_http_request_t *r)
{
    ngx_msec_t                   upstream, total;
    ngx_time_t                  *tp;
    ngx_msec_int_t               ms;
    ngx_table_elt_t             *h;
    ngx_http_ai_log_loc_conf_t  *lcf;

    if (r != r->main) {
        return ngx_http_next_header_filter(r);
    }

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_log_module);

    if (!lcf->server_timing || ngx_http_ai_get_ctx(r) == NULL) {
        return ngx_http_next_header_filter(r);
    }

    tp = ngx_timeofday();

    ms = (ngx_msec_int_t) ((tp->sec - r->start_sec) * 1000
                           + (tp->msec - r->start_msec));
    total = (ngx_msec_t) ngx_max(ms, 0);

    upstream = ngx_http_ai_log_upstream_time(r);

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->value.data = ngx_pnalloc(r->pool, sizeof("gateway;dur=, upstream;dur=")
                                         + 2 * NGX_TIME_T_LEN);
    if (h->value.data == NULL) {
        h->hash = 0;
        return NGX_ERROR;
    }

    h->hash = 1;
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif
    ngx_str_set(&h->key, "Server-Timing");
    h->value.len = ngx_sprintf(h->value.data, "gateway;dur=%M, upstream;dur=%M",
                               total > upstream ? total - upstream : 0,
                               upstream)
                   - h->value.data;

    return ngx_http_next_header_filter(r);
}
