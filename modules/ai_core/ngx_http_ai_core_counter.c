
/*
 * Copyright (C) AI Gateway authors
 *
 * Named counters in one shared memory zone: an ngx_atomic_t each, so a
 * worker adds without a lock.  A counter may be registered at any time
 * during configuration (a module's directive or postconfiguration): the
 * zone is added with the first one and grows with each, and the values
 * get their place when the zone is initialized, after all of them.
 *
 * In the zone each counter is a slot found by name, never moved nor
 * freed: a reload keeps every value by its name, the old workers that
 * still count while they finish count in the same slots, and a counter
 * that a reload removed keeps its slot for when it comes back.
 */


#include "ngx_http_ai_core_module.h"


/* room for a counter in the zone: its slot and its name, rounded up */
#define NGX_HTTP_AI_COUNTER_ROOM  256


typedef struct ngx_http_ai_counter_slot_s  ngx_http_ai_counter_slot_t;

struct ngx_http_ai_counter_slot_s {
    ngx_atomic_t                    value;
    ngx_http_ai_counter_slot_t     *next;
    size_t                          len;
    u_char                          name[1];
};


typedef struct {
    ngx_http_ai_counter_slot_t     *slots;
} ngx_http_ai_counters_shctx_t;


static ngx_int_t ngx_http_ai_counters_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);


ngx_http_ai_counter_t *
ngx_http_ai_counter_add(ngx_conf_t *cf, ngx_str_t *name, ngx_str_t *help)
{
    ngx_str_t                      zname;
    ngx_http_ai_counter_t         *c;
    ngx_http_ai_core_main_conf_t  *amcf;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ai_core_module);

    for (c = amcf->counters; c; c = c->next) {
        if (c->name.len == name->len
            && ngx_strncmp(c->name.data, name->data, name->len) == 0)
        {
            return c;
        }
    }

    c = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_counter_t));
    if (c == NULL) {
        return NULL;
    }

    c->name = *name;
    c->help = *help;

    *amcf->last_counter = c;
    amcf->last_counter = &c->next;
    amcf->ncounters++;

    if (amcf->counters_zone == NULL) {
        ngx_str_set(&zname, "ai_core_counters");

        amcf->counters_zone = ngx_shared_memory_add(cf, &zname, 0,
                                                    &ngx_http_ai_core_module);
        if (amcf->counters_zone == NULL) {
            return NULL;
        }

        amcf->counters_zone->init = ngx_http_ai_counters_init_zone;
        amcf->counters_zone->data = amcf;
    }

    /*
     * the size grows in steps of 64 counters, so that a reload which
     * adds a few reuses the zone and its values
     */

    amcf->counters_zone->shm.size = 8 * ngx_pagesize
                        + ngx_align(amcf->ncounters, 64)
                          * NGX_HTTP_AI_COUNTER_ROOM;

    return c;
}


ngx_http_ai_counter_t *
ngx_http_ai_counters(ngx_http_request_t *r)
{
    ngx_http_ai_core_main_conf_t  *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_core_module);

    return amcf->counters;
}


ngx_int_t
ngx_http_ai_add_metrics(ngx_conf_t *cf, ngx_http_ai_metrics_pt source)
{
    ngx_http_ai_metrics_pt        *h;
    ngx_http_ai_core_main_conf_t  *amcf;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ai_core_module);

    if (amcf->metrics.elts == NULL
        && ngx_array_init(&amcf->metrics, cf->pool, 2,
                          sizeof(ngx_http_ai_metrics_pt))
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    h = ngx_array_push(&amcf->metrics);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = source;

    return NGX_OK;
}


ngx_int_t
ngx_http_ai_metrics(ngx_http_request_t *r, ngx_chain_t ***out)
{
    ngx_uint_t                     i;
    ngx_http_ai_metrics_pt        *h;
    ngx_http_ai_core_main_conf_t  *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_core_module);

    h = amcf->metrics.elts;

    for (i = 0; i < amcf->metrics.nelts; i++) {
        if (h[i](r, out) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_counters_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_slab_pool_t               *shpool;
    ngx_http_ai_counter_t         *c;
    ngx_http_ai_counter_slot_t    *slot;
    ngx_http_ai_core_main_conf_t  *amcf;
    ngx_http_ai_counters_shctx_t  *sh;

    amcf = shm_zone->data;
    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists || shpool->data) {
        /* a reload (or a worker of Windows): the slots are there */
        sh = shpool->data;

    } else {
        sh = ngx_slab_calloc(shpool, sizeof(ngx_http_ai_counters_shctx_t));
        if (sh == NULL) {
            return NGX_ERROR;
        }

        shpool->data = sh;
        shpool->log_nomem = 0;
    }

    for (c = amcf->counters; c; c = c->next) {

        for (slot = sh->slots; slot; slot = slot->next) {
            if (slot->len == c->name.len
                && ngx_memcmp(slot->name, c->name.data, c->name.len) == 0)
            {
                break;
            }
        }

        if (slot == NULL) {
            slot = ngx_slab_calloc(shpool,
                                   offsetof(ngx_http_ai_counter_slot_t, name)
                                   + c->name.len);
            if (slot == NULL) {
                ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                              "ai: no room for the counter \"%V\" in the "
                              "\"ai_core_counters\" zone", &c->name);
                return NGX_ERROR;
            }

            slot->len = c->name.len;
            ngx_memcpy(slot->name, c->name.data, c->name.len);

            slot->next = sh->slots;
            sh->slots = slot;
        }

        c->value = &slot->value;
    }

    return NGX_OK;
}
