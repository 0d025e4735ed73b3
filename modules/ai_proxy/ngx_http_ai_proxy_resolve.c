
/*
 * Copyright (C) AI Gateway authors
 *
 * Targets' host names resolved again while NGINX runs, when the location
 * has a "resolver": a provider's addresses change.
 *
 *     resolver 127.0.0.53 valid=30s;
 *     ai_target openai https://api.openai.com/v1 key=env:OPENAI_API_KEY;
 *
 * The name is resolved when the configuration is read, as for any URL;
 * then, in the workers, by NGINX's resolver (never getaddrinfo), in the
 * background, again when the answer's TTL (or the resolver's valid=)
 * ends.  The addresses are kept in the shared memory zone
 * "ai_proxy_addrs", one entry per host and port, so that one worker
 * resolves a name for all (the first whose timer finds it due) and all
 * connect to the same addresses, in turn.  Until the first answer, and
 * while the resolver fails, the addresses known last are used.
 *
 * Targets whose host is an address, a UNIX socket or an upstream{} block
 * are left as they are.
 */


#include "ngx_http_ai_proxy.h"


#define NGX_HTTP_AI_PROXY_MAX_ADDRS      8
#define NGX_HTTP_AI_PROXY_RESOLVE_RETRY  10000   /* ms, after a failure */


typedef struct {
    ngx_queue_t                     queue;
    ngx_atomic_t                    next;     /* ngx_msec_t: resolve then */
    ngx_uint_t                      naddrs;   /* 0: the configuration's */
    ngx_uint_t                      current;  /* the next one, in turn */
    ngx_sockaddr_t                  addrs[NGX_HTTP_AI_PROXY_MAX_ADDRS];
    socklen_t                       socklens[NGX_HTTP_AI_PROXY_MAX_ADDRS];
    size_t                          len;
    u_char                          name[1];  /* host:port */
} ngx_http_ai_proxy_addrs_node_t;


struct ngx_http_ai_proxy_resolve_s {
    ngx_str_t                       host;
    in_port_t                       port;
    ngx_str_t                       name;     /* host:port */
    ngx_resolver_t                 *resolver;
    ngx_msec_t                      timeout;
    ngx_slab_pool_t                *shpool;
    ngx_http_ai_proxy_addrs_node_t *node;
    ngx_event_t                     event;
    ngx_log_t                      *log;
};


static ngx_int_t ngx_http_ai_proxy_addrs_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_ai_proxy_resolve_timer(ngx_event_t *ev);
static void ngx_http_ai_proxy_resolve_handler(ngx_resolver_ctx_t *ctx);


/*
 * From the location's merge: the target is resolved again if the
 * location has a resolver and the target's host is a name.
 */

ngx_int_t
ngx_http_ai_proxy_resolve_conf(ngx_conf_t *cf, ngx_http_ai_proxy_target_t *t)
{
    ngx_str_t                       *host;
    ngx_http_upstream_srv_conf_t    *us;
    ngx_http_core_loc_conf_t        *clcf;
    ngx_http_ai_proxy_resolve_t     *rs, **rsp;
    ngx_http_ai_proxy_main_conf_t   *pmcf;

    if (t->resolve) {
        return NGX_OK;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->resolver == NULL || clcf->resolver->connections.nelts == 0) {
        return NGX_OK;
    }

    us = t->upstream;
    host = &us->host;

    /* an upstream{} block, a UNIX socket, an address: nothing to do */

    if (us->srv_conf || us->port == 0 || host->len == 0
        || host->data[0] == '['
        || ngx_inet_addr(host->data, host->len) != INADDR_NONE)
    {
        return NGX_OK;
    }

    rs = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_proxy_resolve_t));
    if (rs == NULL) {
        return NGX_ERROR;
    }

    rs->host = *host;
    rs->port = us->port;
    rs->resolver = clcf->resolver;
    rs->timeout = clcf->resolver_timeout;

    rs->name.data = ngx_pnalloc(cf->pool, host->len + sizeof(":65535") - 1);
    if (rs->name.data == NULL) {
        return NGX_ERROR;
    }

    rs->name.len = ngx_sprintf(rs->name.data, "%V:%d", host, (int) rs->port)
                   - rs->name.data;

    pmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ai_proxy_module);

    rsp = ngx_array_push(&pmcf->resolved);
    if (rsp == NULL) {
        return NGX_ERROR;
    }

    *rsp = rs;
    t->resolve = rs;

    return NGX_OK;
}


/* the zone, when a target is resolved again: from the postconfiguration */

ngx_int_t
ngx_http_ai_proxy_resolve_zone(ngx_conf_t *cf)
{
    size_t                           size;
    ngx_str_t                        name;
    ngx_shm_zone_t                  *shm_zone;
    ngx_http_ai_proxy_main_conf_t   *pmcf;

    pmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ai_proxy_module);

    if (pmcf->resolved.nelts == 0) {
        return NGX_OK;
    }

    size = 65536 * (1 + (pmcf->resolved.nelts - 1) / 32);

    ngx_str_set(&name, "ai_proxy_addrs");

    shm_zone = ngx_shared_memory_add(cf, &name, size,
                                     &ngx_http_ai_proxy_module);
    if (shm_zone == NULL) {
        return NGX_ERROR;
    }

    shm_zone->init = ngx_http_ai_proxy_addrs_init_zone;
    shm_zone->data = pmcf;

    return NGX_OK;
}


/* in the master: each host:port its entry, kept from the previous load */

static ngx_int_t
ngx_http_ai_proxy_addrs_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_ai_proxy_main_conf_t  *opmcf = data;

    ngx_uint_t                       i;
    ngx_queue_t                     *q, *nodes;
    ngx_slab_pool_t                 *shpool;
    ngx_http_ai_proxy_resolve_t    **rs;
    ngx_http_ai_proxy_main_conf_t   *pmcf;
    ngx_http_ai_proxy_addrs_node_t  *node;

    pmcf = shm_zone->data;
    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (opmcf) {
        nodes = opmcf->addrs_sh;

    } else if (shm_zone->shm.exists) {
        nodes = shpool->data;

    } else {
        nodes = ngx_slab_alloc(shpool, sizeof(ngx_queue_t));
        if (nodes == NULL) {
            return NGX_ERROR;
        }

        ngx_queue_init(nodes);

        shpool->data = nodes;
        shpool->log_nomem = 0;
    }

    pmcf->addrs_sh = nodes;

    rs = pmcf->resolved.elts;

    for (i = 0; i < pmcf->resolved.nelts; i++) {
        rs[i]->shpool = shpool;

        for (q = ngx_queue_head(nodes);
             q != ngx_queue_sentinel(nodes);
             q = ngx_queue_next(q))
        {
            node = ngx_queue_data(q, ngx_http_ai_proxy_addrs_node_t, queue);

            if (node->len == rs[i]->name.len
                && ngx_memcmp(node->name, rs[i]->name.data, node->len) == 0)
            {
                break;
            }
        }

        if (q == ngx_queue_sentinel(nodes)) {
            node = ngx_slab_calloc(shpool,
                                   sizeof(ngx_http_ai_proxy_addrs_node_t)
                                   + rs[i]->name.len);
            if (node == NULL) {
                ngx_log_error(NGX_LOG_WARN, shm_zone->shm.log, 0,
                              "ai_proxy: the zone \"%V\" is full, \"%V\" "
                              "is not resolved again", &shm_zone->shm.name,
                              &rs[i]->name);
                continue;
            }

            node->len = rs[i]->name.len;
            ngx_memcpy(node->name, rs[i]->name.data, node->len);

            ngx_queue_insert_tail(nodes, &node->queue);
        }

        rs[i]->node = node;
    }

    return NGX_OK;
}


/* in each worker: the timers */

ngx_int_t
ngx_http_ai_proxy_resolve_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                       i;
    ngx_http_ai_proxy_resolve_t    **rs;
    ngx_http_ai_proxy_main_conf_t   *pmcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    pmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_ai_proxy_module);
    if (pmcf == NULL) {
        return NGX_OK;
    }

    rs = pmcf->resolved.elts;

    for (i = 0; i < pmcf->resolved.nelts; i++) {
        if (rs[i]->node == NULL) {
            continue;
        }

        rs[i]->log = cycle->log;
        rs[i]->event.handler = ngx_http_ai_proxy_resolve_timer;
        rs[i]->event.data = rs[i];
        rs[i]->event.log = cycle->log;
        rs[i]->event.cancelable = 1;

        /*
         * the name was resolved when the configuration was read: again
         * in a second (unless a worker did already), not all at once
         */
        ngx_add_timer(&rs[i]->event, 1000 + ngx_random() % 100);
    }

    return NGX_OK;
}


static void
ngx_http_ai_proxy_resolve_timer(ngx_event_t *ev)
{
    ngx_http_ai_proxy_resolve_t *rs = ev->data;

    ngx_msec_t           next;
    ngx_msec_int_t       left;
    ngx_resolver_ctx_t  *ctx;

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    next = (ngx_msec_t) rs->node->next;
    left = (ngx_msec_int_t) (next - ngx_current_msec);

    if (next && left > 0) {
        /* another worker resolved it, or resolves it */
        ngx_add_timer(ev, (ngx_msec_t) left + ngx_random() % 100);
        return;
    }

    /* this worker does: the others wait for it, or for its timeout */

    if (!ngx_atomic_cmp_set(&rs->node->next, next,
                            ngx_current_msec + rs->timeout + 1000))
    {
        ngx_add_timer(ev, 100);
        return;
    }

    ctx = ngx_resolve_start(rs->resolver, NULL);

    if (ctx == NULL || ctx == NGX_NO_RESOLVER) {
        ngx_log_error(NGX_LOG_WARN, ev->log, 0,
                      "ai_proxy: cannot resolve \"%V\" again",
                      &rs->host);
        rs->node->next = ngx_current_msec + NGX_HTTP_AI_PROXY_RESOLVE_RETRY;
        ngx_add_timer(ev, NGX_HTTP_AI_PROXY_RESOLVE_RETRY);
        return;
    }

    ctx->name = rs->host;
    ctx->handler = ngx_http_ai_proxy_resolve_handler;
    ctx->data = rs;
    ctx->timeout = rs->timeout;
    ctx->cancelable = 1;

    if (ngx_resolve_name(ctx) != NGX_OK) {
        /* the context is freed */
        ngx_log_error(NGX_LOG_WARN, ev->log, 0,
                      "ai_proxy: cannot resolve \"%V\" again",
                      &rs->host);
        rs->node->next = ngx_current_msec + NGX_HTTP_AI_PROXY_RESOLVE_RETRY;
        ngx_add_timer(ev, NGX_HTTP_AI_PROXY_RESOLVE_RETRY);
    }
}


static void
ngx_http_ai_proxy_resolve_handler(ngx_resolver_ctx_t *ctx)
{
    ngx_http_ai_proxy_resolve_t *rs = ctx->data;

    time_t                           valid;
    ngx_uint_t                       i, n;
    ngx_msec_t                       wait;
    ngx_http_ai_proxy_addrs_node_t  *node;

    node = rs->node;

    if (ctx->state) {
        ngx_log_error(NGX_LOG_WARN, rs->log, 0,
                      "ai_proxy: \"%V\" could not be resolved (%i: %s), "
                      "the addresses known last are used", &rs->host,
                      ctx->state, ngx_resolver_strerror(ctx->state));

        wait = NGX_HTTP_AI_PROXY_RESOLVE_RETRY;
        goto done;
    }

    n = ngx_min(ctx->naddrs, NGX_HTTP_AI_PROXY_MAX_ADDRS);

    ngx_shmtx_lock(&rs->shpool->mutex);

    for (i = 0; i < n; i++) {
        if (ctx->addrs[i].socklen > sizeof(ngx_sockaddr_t)) {
            break;
        }

        ngx_memcpy(&node->addrs[i], ctx->addrs[i].sockaddr,
                   ctx->addrs[i].socklen);
        node->socklens[i] = ctx->addrs[i].socklen;
        ngx_inet_set_port(&node->addrs[i].sockaddr, rs->port);
    }

    node->naddrs = i;

    ngx_shmtx_unlock(&rs->shpool->mutex);

    /* the answer's TTL, or the resolver's valid= */

    valid = ctx->valid - ngx_time();

    if (valid < 1) {
        valid = 1;
    }

    wait = (ngx_msec_t) valid * 1000;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, rs->log, 0,
                   "ai_proxy: \"%V\" resolved: %ui addresses for %T s",
                   &rs->host, n, valid);

done:

    node->next = ngx_current_msec + wait;

    ngx_resolve_name_done(ctx);

    if (!(ngx_exiting || ngx_terminate || ngx_quit)) {
        ngx_add_timer(&rs->event, wait);
    }
}


/*
 * The balancer picked a server of the target's upstream: its address
 * becomes the next one resolved, when there is one.
 */

void
ngx_http_ai_proxy_resolve_peer(ngx_http_ai_proxy_ctx_t *ctx,
    ngx_peer_connection_t *pc)
{
    ngx_uint_t                       i;
    ngx_http_ai_proxy_resolve_t     *rs;
    ngx_http_ai_proxy_addrs_node_t  *node;

    rs = ctx->target->resolve;

    if (rs == NULL || rs->node == NULL || rs->node->naddrs == 0) {
        return;
    }

    node = rs->node;

    ngx_shmtx_lock(&rs->shpool->mutex);

    if (node->naddrs == 0) {
        ngx_shmtx_unlock(&rs->shpool->mutex);
        return;
    }

    i = node->current++ % node->naddrs;

    ngx_memcpy(&ctx->sockaddr, &node->addrs[i], node->socklens[i]);
    ctx->socklen = node->socklens[i];

    ngx_shmtx_unlock(&rs->shpool->mutex);

    ctx->addr_text.data = ctx->addr_buf;
    ctx->addr_text.len = ngx_sock_ntop(&ctx->sockaddr.sockaddr, ctx->socklen,
                                       ctx->addr_buf, NGX_SOCKADDR_STRLEN, 1);

    pc->sockaddr = &ctx->sockaddr.sockaddr;
    pc->socklen = ctx->socklen;
    pc->name = &ctx->addr_text;
}
