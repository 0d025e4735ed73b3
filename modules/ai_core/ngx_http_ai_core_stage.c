
/*
 * Copyright (C) AI Gateway authors
 *
 * The request's life around the modules: the request stages, run by one
 * PRECONTENT handler in their declared order (after ACCESS, so that
 * allow/deny and auth_request are never bypassed by a stage's answer, and
 * whatever the load order or "satisfy"); the suspension of a stage and
 * its resumption on a posted event; and the completion hook, called once
 * per request from the core's LOG handler (NGINX runs the LOG phase for
 * every main request it frees, aborted ones included).
 */


#include "ngx_http_ai_core_module.h"


static ngx_int_t ngx_http_ai_core_stages_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_ai_core_log_handler(ngx_http_request_t *r);


ngx_int_t
ngx_http_ai_add_stage(ngx_conf_t *cf, ngx_uint_t order,
    ngx_http_ai_stage_pt handler)
{
    ngx_http_ai_stage_t           *st;
    ngx_http_ai_core_main_conf_t  *amcf;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ai_core_module);

    st = ngx_http_ai_core_insert(&amcf->stages, order);
    if (st == NULL) {
        return NGX_ERROR;
    }

    st->order = order;
    st->handler = handler;

    return NGX_OK;
}


ngx_int_t
ngx_http_ai_add_router(ngx_conf_t *cf, ngx_http_ai_route_pt handler)
{
    ngx_http_ai_route_pt          *h;
    ngx_http_ai_core_main_conf_t  *amcf;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ai_core_module);

    h = ngx_array_push(&amcf->routers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = handler;

    return NGX_OK;
}


/* the request's view is complete: the location's router decides */

ngx_int_t
ngx_http_ai_core_route(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx)
{
    ngx_int_t                      rc;
    ngx_uint_t                     i;
    ngx_http_ai_route_pt          *h;
    ngx_http_ai_core_ctx_t        *cc;
    ngx_http_ai_core_main_conf_t  *amcf;

    cc = ngx_http_ai_core_ctx(ctx);

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_core_module);

    cc->route_conf = r->loc_conf;
    cc->routed = 0;

    h = amcf->routers.elts;

    for (i = 0; i < amcf->routers.nelts; i++) {
        rc = h[i](r, ctx);

        if (rc != NGX_DECLINED) {
            cc->routed = (rc == NGX_OK);
            return rc;
        }
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_ai_add_done(ngx_conf_t *cf, ngx_uint_t order,
    ngx_http_ai_done_pt handler)
{
    ngx_http_ai_done_t            *d;
    ngx_http_ai_core_main_conf_t  *amcf;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ai_core_module);

    d = ngx_http_ai_core_insert(&amcf->dones, order);
    if (d == NULL) {
        return NGX_ERROR;
    }

    d->order = order;
    d->handler = handler;

    return NGX_OK;
}


/*
 * An element at its place by order, after those of the same order (so
 * that registration decides only among equals).  Every element type
 * (stages, completion handlers, delta filters) starts with its order.
 */

void *
ngx_http_ai_core_insert(ngx_array_t *a, ngx_uint_t order)
{
    u_char      *p, *elts;
    ngx_uint_t   i;

    if (ngx_array_push(a) == NULL) {
        return NULL;
    }

    elts = a->elts;

    for (i = 0; i < a->nelts - 1; i++) {
        if (*(ngx_uint_t *) (elts + i * a->size) > order) {
            break;
        }
    }

    p = elts + i * a->size;

    ngx_memmove(p + a->size, p, (a->nelts - 1 - i) * a->size);
    ngx_memzero(p, a->size);

    return p;
}


ngx_int_t
ngx_http_ai_core_stages_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PRECONTENT_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_ai_core_stages_handler;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_ai_core_log_handler;

    return NGX_OK;
}


/*
 * The stages of an AI request whose body was parsed.  A stage returns
 * NGX_DECLINED (the next one runs), NGX_AGAIN (suspended: it calls
 * ngx_http_ai_resume() later and is called again), NGX_DONE (it finalizes
 * the request itself), or what a content handler returns after it sent
 * an answer or an error (the core finalizes the request with it).
 */

static ngx_int_t
ngx_http_ai_core_stages_handler(ngx_http_request_t *r)
{
    ngx_int_t                      rc;
    ngx_http_ai_ctx_t             *ctx;
    ngx_http_ai_stage_t           *st;
    ngx_http_ai_core_ctx_t        *cc;
    ngx_http_ai_core_main_conf_t  *amcf;

    if (r != r->main) {
        return NGX_DECLINED;
    }

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_core_module);

    if (amcf->stages.nelts == 0) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_ai_get_ctx(r);
    cc = ngx_http_ai_core_ctx(ctx);

    if (ctx == NULL || !ctx->req.parsed || ctx->error) {
        return NGX_DECLINED;
    }

    st = amcf->stages.elts;

    while (cc->stage < amcf->stages.nelts) {

        cc->suspended = 0;
        cc->in_stage = 1;
        cc->resumed = 0;

        rc = st[cc->stage].handler(r, ctx);

        cc->in_stage = 0;

        if (rc == NGX_DECLINED) {
            cc->stage++;
            continue;
        }

        if (rc == NGX_AGAIN && cc->resumed) {
            /* resumed before it returned: called again at once */
            continue;
        }

        if (rc == NGX_AGAIN) {
            /* the client may go away meanwhile: then the request ends */

            cc->suspended = 1;
            r->read_event_handler = ngx_http_test_reading;
            r->write_event_handler = ngx_http_request_empty_handler;

            return NGX_AGAIN;
        }

        cc->stage = amcf->stages.nelts;
        ctx->answered = 1;

        if (rc != NGX_DONE) {
            ngx_http_finalize_request(r, rc);
        }

        return NGX_DONE;
    }

    return NGX_DECLINED;
}


void
ngx_http_ai_resume(ngx_http_request_t *r)
{
    ngx_http_ai_ctx_t       *ctx;
    ngx_http_ai_core_ctx_t  *cc;

    ctx = ngx_http_ai_get_ctx(r);
    cc = ngx_http_ai_core_ctx(ctx);

    if (ctx == NULL) {
        return;
    }

    if (cc->in_stage) {
        /* from the stage's own stack, before it returned NGX_AGAIN */
        cc->resumed = 1;
        return;
    }

    if (!cc->suspended) {
        return;
    }

    cc->suspended = 0;

    /* on a posted event: never from within the caller's own stack */

    r->write_event_handler = ngx_http_core_run_phases;
    ngx_post_event(r->connection->write, &ngx_posted_events);
}


/*
 * The completion hook: every "done" handler once, in order, with the
 * request's final state.  ai_log is the last of them.
 */

void
ngx_http_ai_core_done(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx)
{
    ngx_uint_t                     i;
    ngx_http_ai_done_t            *d;
    ngx_http_ai_core_ctx_t        *cc;
    ngx_http_ai_core_main_conf_t  *amcf;

    cc = ngx_http_ai_core_ctx(ctx);

    if (cc->done) {
        return;
    }

    cc->done = 1;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_core_module);

    d = amcf->dones.elts;

    for (i = 0; i < amcf->dones.nelts; i++) {
        d[i].handler(r, ctx);
    }
}


static ngx_int_t
ngx_http_ai_core_log_handler(ngx_http_request_t *r)
{
    ngx_http_ai_ctx_t  *ctx;

    if (r != r->main) {
        return NGX_OK;
    }

    ctx = ngx_http_ai_get_ctx(r);

    if (ctx) {
        ngx_http_ai_core_done(r, ctx);
    }

    return NGX_OK;
}
