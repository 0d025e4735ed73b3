
/*
 * Copyright (C) AI Gateway authors
 *
 * The state of the keys of every target, shared by the workers: a key
 * cooling down after a 429 (until its Retry-After ends) or taken out
 * after a 401 or 403 is out for every worker, so a revoked key is tried
 * once per NGINX, not once per worker.
 *
 * The state lives in a shared memory zone, "ai_proxy_keys", added when a
 * target has keys; its size follows the number of keys (64k for each
 * 256).  Each key has a node there, found by the target's name and the
 * key's index (1-based) when the configuration is read: the key itself is
 * never stored, only a checksum of it, so that a key changed in its file
 * ("file:", read again on a reload) starts usable.  The zone is kept
 * across reloads (as long as its size stays), and with it the state of
 * each key that did not change.  The workers use their key's node
 * directly; a state is two words, written and read without a lock.
 */


#include "ngx_http_ai_proxy.h"


#define NGX_HTTP_AI_PROXY_KEYS_PER_64K  256


typedef struct {
    ngx_queue_t                     queue;
    ngx_http_ai_proxy_key_state_t   state;
    ngx_uint_t                      generation;  /* the last load using it */
    ngx_uint_t                      index;
    uint32_t                        sum;
    size_t                          len;
    u_char                          name[1];
} ngx_http_ai_proxy_key_node_t;


typedef struct {
    ngx_queue_t                     nodes;
    ngx_uint_t                      generation;  /* of the configuration
                                                    loads */
} ngx_http_ai_proxy_keys_sh_t;


static ngx_int_t ngx_http_ai_proxy_keys_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_http_ai_proxy_key_state_t *ngx_http_ai_proxy_key_node(
    ngx_slab_pool_t *shpool, ngx_http_ai_proxy_keys_sh_t *sh,
    ngx_http_ai_proxy_target_t *t, ngx_http_ai_proxy_key_t *k);


/* the zone, when a target has keys: from the postconfiguration */

ngx_int_t
ngx_http_ai_proxy_keys_zone(ngx_conf_t *cf)
{
    size_t                           size;
    ngx_str_t                        name;
    ngx_uint_t                       i, n;
    ngx_shm_zone_t                  *shm_zone;
    ngx_http_ai_proxy_target_t     **t;
    ngx_http_ai_proxy_main_conf_t   *pmcf;

    pmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ai_proxy_module);

    t = pmcf->all.elts;
    n = 0;

    for (i = 0; i < pmcf->all.nelts; i++) {
        n += t[i]->keys.nelts;
    }

    if (n == 0) {
        return NGX_OK;
    }

    /* a size that stays while keys are added or removed: state is kept */

    size = 65536 * (1 + (n - 1) / NGX_HTTP_AI_PROXY_KEYS_PER_64K);

    ngx_str_set(&name, "ai_proxy_keys");

    shm_zone = ngx_shared_memory_add(cf, &name, size,
                                     &ngx_http_ai_proxy_module);
    if (shm_zone == NULL) {
        return NGX_ERROR;
    }

    shm_zone->init = ngx_http_ai_proxy_keys_init_zone;
    shm_zone->data = pmcf;

    return NGX_OK;
}


/*
 * In the master process, when the configuration is loaded: each key gets
 * its node, kept from the previous load when the zone is.
 */

static ngx_int_t
ngx_http_ai_proxy_keys_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_ai_proxy_main_conf_t  *opmcf = data;

    ngx_uint_t                       i, j;
    ngx_slab_pool_t                 *shpool;
    ngx_http_ai_proxy_key_t         *k;
    ngx_http_ai_proxy_target_t     **t;
    ngx_http_ai_proxy_keys_sh_t     *sh;
    ngx_http_ai_proxy_main_conf_t   *pmcf;
    ngx_http_ai_proxy_key_state_t   *state;

    pmcf = shm_zone->data;
    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (opmcf) {
        sh = opmcf->keys_sh;

    } else if (shm_zone->shm.exists) {
        sh = shpool->data;

    } else {
        sh = ngx_slab_alloc(shpool, sizeof(ngx_http_ai_proxy_keys_sh_t));
        if (sh == NULL) {
            return NGX_ERROR;
        }

        ngx_queue_init(&sh->nodes);
        sh->generation = 0;

        shpool->data = sh;
        shpool->log_nomem = 0;
    }

    pmcf->keys_sh = sh;
    sh->generation++;

    t = pmcf->all.elts;

    for (i = 0; i < pmcf->all.nelts; i++) {
        k = t[i]->keys.elts;

        for (j = 0; j < t[i]->keys.nelts; j++) {
            state = ngx_http_ai_proxy_key_node(shpool, sh, t[i], &k[j]);

            if (state == NULL) {
                ngx_log_error(NGX_LOG_WARN, shm_zone->shm.log, 0,
                              "ai_proxy: the zone \"%V\" is full, the "
                              "state of key #%ui of target \"%V\" is kept "
                              "by each worker", &shm_zone->shm.name,
                              k[j].index, &t[i]->name);
                continue;
            }

            k[j].state = state;
        }
    }

    return NGX_OK;
}


/*
 * The node of a key: the same name, index and checksum (the key did not
 * change); else a node of the same name and index no target of this load
 * took yet, its state reset (the key changed); else a new one.
 */

static ngx_http_ai_proxy_key_state_t *
ngx_http_ai_proxy_key_node(ngx_slab_pool_t *shpool,
    ngx_http_ai_proxy_keys_sh_t *sh, ngx_http_ai_proxy_target_t *t,
    ngx_http_ai_proxy_key_t *k)
{
    ngx_queue_t                   *q;
    ngx_http_ai_proxy_key_node_t  *node, *reuse;

    reuse = NULL;

    for (q = ngx_queue_head(&sh->nodes);
         q != ngx_queue_sentinel(&sh->nodes);
         q = ngx_queue_next(q))
    {
        node = ngx_queue_data(q, ngx_http_ai_proxy_key_node_t, queue);

        if (node->index != k->index
            || node->len != t->name.len
            || ngx_memcmp(node->name, t->name.data, t->name.len) != 0)
        {
            continue;
        }

        if (node->sum == k->sum) {
            node->generation = sh->generation;
            return &node->state;
        }

        if (reuse == NULL && node->generation != sh->generation) {
            reuse = node;
        }
    }

    if (reuse) {
        /*
         * the key changed; a worker of the previous load may still write
         * the old key's state here until it exits
         */

        reuse->sum = k->sum;
        reuse->generation = sh->generation;
        reuse->state.disabled = 0;
        reuse->state.until = 0;

        return &reuse->state;
    }

    node = ngx_slab_alloc(shpool, sizeof(ngx_http_ai_proxy_key_node_t)
                                  + t->name.len);
    if (node == NULL) {
        return NULL;
    }

    node->state.until = 0;
    node->state.disabled = 0;
    node->generation = sh->generation;
    node->index = k->index;
    node->sum = k->sum;
    node->len = t->name.len;
    ngx_memcpy(node->name, t->name.data, t->name.len);

    ngx_queue_insert_tail(&sh->nodes, &node->queue);

    return &node->state;
}


/* the time the key is still out, ms; 0: usable.  *revoked: by 401, 403 */

ngx_msec_t
ngx_http_ai_proxy_key_out(ngx_http_ai_proxy_key_t *k, ngx_uint_t *revoked)
{
    ngx_msec_t       until;
    ngx_msec_int_t   left;

    until = (ngx_msec_t) k->state->until;

    if (until == 0) {
        return 0;
    }

    left = (ngx_msec_int_t) (until - ngx_current_msec);

    if (left <= 0) {
        /* over: cleared, so that the clock never wraps back into it */
        (void) ngx_atomic_cmp_set(&k->state->until, until, 0);
        return 0;
    }

    if (revoked) {
        /* written before the time: see ngx_http_ai_proxy_key_set_out() */
        ngx_memory_barrier();
        *revoked = k->state->disabled ? 1 : 0;
    }

    return (ngx_msec_t) left;
}


/* the key out for every worker: a cooldown, or revoked */

void
ngx_http_ai_proxy_key_set_out(ngx_http_ai_proxy_key_t *k, ngx_msec_t ms,
    ngx_uint_t revoked)
{
    ngx_msec_t  until;

    until = ngx_current_msec + ms;

    if (until == 0) {
        until = 1;
    }

    /* the kind first: a reader seeing the time sees the kind */
    k->state->disabled = revoked;
    ngx_memory_barrier();
    k->state->until = until;
}
