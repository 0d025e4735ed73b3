
/*
 * Copyright (C) AI Gateway authors
 *
 * Named counters in one shared memory zone: an ngx_atomic_t each, so a
 * worker adds without a lock.  The zone is sized at configuration time
 * from the registered counters and reused on reload when they are the
 * same (the values live on).
 */


#include "ngx_http_ai_core_module.h"


static ngx_int_t ngx_http_ai_counters_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);


ngx_http_ai_counter_t *
ngx_http_ai_counter_add(ngx_conf_t *cf, ngx_str_t *name, ngx_str_t *help)
{
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
ngx_http_ai_counters_init(ngx_conf_t *cf, ngx_http_ai_core_main_conf_t *amcf)
{
    size_t           size;
    ngx_str_t        name;
    ngx_shm_zone_t  *shm_zone;

    if (amcf->ncounters == 0) {
        return NGX_OK;
    }

    /* a page per 512 counters plus the slab pool's own pages */
    size = 8 * ngx_pagesize
           + ngx_align(amcf->ncounters * sizeof(ngx_atomic_t), ngx_pagesize);

    ngx_str_set(&name, "ai_core_counters");

    shm_zone = ngx_shared_memory_add(cf, &name, size,
                                     &ngx_http_ai_core_module);
    if (shm_zone == NULL) {
        return NGX_ERROR;
    }

    shm_zone->init = ngx_http_ai_counters_init_zone;
    shm_zone->data = amcf;
    amcf->counters_zone = shm_zone;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_counters_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_ai_core_main_conf_t  *oamcf = data;

    ngx_uint_t                     i;
    ngx_atomic_t                  *values;
    ngx_slab_pool_t               *shpool;
    ngx_http_ai_counter_t         *c, *oc;
    ngx_http_ai_core_main_conf_t  *amcf;

    amcf = shm_zone->data;
    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (oamcf && oamcf->ncounters == amcf->ncounters) {
        /* a reload: the same counters in the same order keep counting */

        for (c = amcf->counters, oc = oamcf->counters;
             c && oc;
             c = c->next, oc = oc->next)
        {
            if (c->name.len != oc->name.len
                || ngx_strncmp(c->name.data, oc->name.data, c->name.len)
                   != 0)
            {
                break;
            }
        }

        if (c == NULL) {
            for (c = amcf->counters, oc = oamcf->counters; c;
                 c = c->next, oc = oc->next)
            {
                c->value = oc->value;
            }

            return NGX_OK;
        }
    }

    values = ngx_slab_calloc(shpool, amcf->ncounters * sizeof(ngx_atomic_t));
    if (values == NULL) {
        return NGX_ERROR;
    }

    for (i = 0, c = amcf->counters; c; c = c->next, i++) {
        c->value = &values[i];
    }

    return NGX_OK;
}
