
/*
 * Copyright (C) AI Gateway authors
 *
 * Stores: the registry of backends, the operations' life (bound to a
 * request or detached, cancelled, pinned), and the built-in backend, a
 * shared memory zone: a hash table of the keys with an LRU queue.  Its
 * buckets (a pointer for every 512 bytes of the zone) hold short chains:
 * a lookup reads a bucket and an entry or two, where a tree of the 30,000
 * answers of a 64 MB cache zone read some 20 entries, each one a cache
 * miss (9% of a worker's time on the full chain, by perf).  A key's
 * bucket is its SipHash under a random key of the zone's, so that keys
 * chosen by clients (a limit's key may be any variable) cannot be made
 * to share one.  Expired entries go lazily and the least recently used
 * make room when the zone is full; a pinned entry (a GET with op->pin) is
 * never evicted nor freed while in use: replaced or deleted meanwhile, it
 * is only unlinked, and freed at its last unpin.  The zone is reused on
 * reload when its size is unchanged.
 *
 *     ai_store NAME [backend=shm] [size=SIZE] [async];
 *
 * "async" (for tests) completes every operation through a posted event,
 * as a remote backend would, so that the NGX_AGAIN path is exercised.
 */


#include "ngx_http_ai_core_module.h"

#include <openssl/rand.h>


#define NGX_HTTP_AI_STORE_COUNTER   0x01
#define NGX_HTTP_AI_STORE_STALE     0x02
#define NGX_HTTP_AI_STORE_WINDOW    0x04   /* and COUNTER */

#define NGX_HTTP_AI_STORE_MAX       0x7fffffffffffffffLL


#define NGX_HTTP_AI_STORE_BUCKET    512    /* of the zone, per bucket: an
                                              answer takes 1-2 KB, a
                                              counter 128 bytes */


typedef struct ngx_http_ai_store_node_s  ngx_http_ai_store_node_t;

struct ngx_http_ai_store_node_s {
    ngx_http_ai_store_node_t   *next;          /* in its bucket */
    uint32_t                    hash;
    u_char                      flags;
    u_short                     key_len;
    uint32_t                    value_len;
    uint32_t                    value_cap;
    uint32_t                    count;         /* pins */
    ngx_queue_t                 queue;
    ngx_msec_t                  expire;        /* 0: never */
    u_char                      data[1];       /* key, then value */
};


typedef struct {
    ngx_queue_t                 queue;
    ngx_uint_t                  mask;          /* buckets - 1 */
    ngx_http_ai_store_node_t  **buckets;
    u_char                      key[16];       /* SipHash's, random */
} ngx_http_ai_store_shctx_t;


#define NGX_HTTP_AI_STORE_MEMO      96     /* the longest key noted */


typedef struct {
    ngx_http_ai_store_shctx_t  *sh;
    ngx_slab_pool_t            *shpool;
    ngx_shm_zone_t             *shm_zone;
    ngx_uint_t                  async;         /* unsigned  async:1; */

    /*
     * the worker's last key and its hash: a request's operations come in
     * runs on one key (a cache's lookup, lock and answer, a limit's
     * reservation and settlement)
     */
    size_t                      memo_len;
    uint32_t                    memo_hash;
    u_char                      memo[NGX_HTTP_AI_STORE_MEMO];
} ngx_http_ai_store_shm_t;


static ngx_pool_t *ngx_http_ai_store_pool(ngx_log_t *log);
static void ngx_http_ai_store_op_cleanup(void *data);
static void ngx_http_ai_store_op_free(ngx_http_ai_store_op_t *op);

static char *ngx_http_ai_store_shm_conf(ngx_conf_t *cf,
    ngx_http_ai_store_t *store, ngx_str_t *params, ngx_uint_t n);
static ngx_int_t ngx_http_ai_store_shm_run(ngx_http_ai_store_t *store,
    ngx_http_ai_store_op_t *op);
static void ngx_http_ai_store_shm_cancel(ngx_http_ai_store_t *store,
    ngx_http_ai_store_op_t *op);
static void ngx_http_ai_store_shm_unpin(ngx_http_ai_store_t *store,
    ngx_http_ai_store_op_t *op);
static void ngx_http_ai_store_shm_posted(ngx_event_t *ev);
static void ngx_http_ai_store_shm_op(ngx_http_ai_store_shm_t *shm,
    ngx_http_ai_store_op_t *op);
static void ngx_http_ai_store_shm_get(ngx_http_ai_store_shm_t *shm,
    ngx_http_ai_store_op_t *op, ngx_http_ai_store_node_t *sn);
static ngx_http_ai_store_node_t *ngx_http_ai_store_shm_write(
    ngx_http_ai_store_shm_t *shm, ngx_http_ai_store_op_t *op,
    ngx_http_ai_store_node_t *sn, uint32_t hash, size_t len);
static void ngx_http_ai_store_shm_incr(ngx_http_ai_store_shm_t *shm,
    ngx_http_ai_store_op_t *op, ngx_http_ai_store_node_t *sn,
    uint32_t hash);
static void ngx_http_ai_store_shm_window(ngx_http_ai_store_shm_t *shm,
    ngx_http_ai_store_op_t *op, ngx_http_ai_store_node_t *sn,
    uint32_t hash);
static int64_t ngx_http_ai_store_add_sat(int64_t n, int64_t delta);
static void ngx_http_ai_store_sliding(ngx_http_ai_store_op_t *op,
    int64_t *w, int64_t now);
static void ngx_http_ai_store_bucket(ngx_http_ai_store_op_t *op,
    int64_t *w, int64_t now);
static ngx_msec_t ngx_http_ai_store_ttl_left(ngx_http_ai_store_node_t *sn);
static ngx_http_ai_store_node_t *ngx_http_ai_store_lookup(
    ngx_http_ai_store_shm_t *shm, ngx_str_t *key, uint32_t hash);
static ngx_http_ai_store_node_t *ngx_http_ai_store_alloc(
    ngx_http_ai_store_shm_t *shm, ngx_str_t *key, uint32_t hash,
    size_t cap);
static void ngx_http_ai_store_unlink(ngx_http_ai_store_shm_t *shm,
    ngx_http_ai_store_node_t *sn);
static void ngx_http_ai_store_expire(ngx_http_ai_store_shm_t *shm,
    ngx_uint_t n);
static ngx_int_t ngx_http_ai_store_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);


static ngx_http_ai_store_backend_t  ngx_http_ai_store_shm_backend = {
    ngx_string("shm"),
    ngx_http_ai_store_shm_conf,
    ngx_http_ai_store_shm_run,
    ngx_http_ai_store_shm_cancel,
    ngx_http_ai_store_shm_unpin
};


/*
 * The pools of detached ops, reset and kept for the next ones: a worker
 * runs a few a request (a limit's settlement, the cache's entry and its
 * lock), each a malloc'd pool of its own before.
 */

#define NGX_HTTP_AI_STORE_POOLS     8

static ngx_pool_t  *ngx_http_ai_store_pools[NGX_HTTP_AI_STORE_POOLS];
static ngx_uint_t   ngx_http_ai_store_npools;


/* the registry */

ngx_int_t
ngx_http_ai_store_backend_add(ngx_conf_t *cf,
    ngx_http_ai_store_backend_t *backend)
{
    ngx_http_ai_store_backend_t   **bp;
    ngx_http_ai_core_main_conf_t   *amcf;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ai_core_module);

    bp = ngx_array_push(&amcf->backends);
    if (bp == NULL) {
        return NGX_ERROR;
    }

    *bp = backend;

    return NGX_OK;
}


ngx_int_t
ngx_http_ai_stores_preconfiguration(ngx_conf_t *cf)
{
    return ngx_http_ai_store_backend_add(cf, &ngx_http_ai_store_shm_backend);
}


ngx_http_ai_store_t *
ngx_http_ai_store_add(ngx_conf_t *cf, ngx_str_t *name)
{
    ngx_uint_t                     i;
    ngx_http_ai_store_t           *store, **sp;
    ngx_http_ai_core_main_conf_t  *amcf;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ai_core_module);

    sp = amcf->stores.elts;

    for (i = 0; i < amcf->stores.nelts; i++) {
        if (sp[i]->name.len == name->len
            && ngx_strncmp(sp[i]->name.data, name->data, name->len) == 0)
        {
            return sp[i];
        }
    }

    store = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_store_t));
    if (store == NULL) {
        return NULL;
    }

    store->name = *name;
    store->file = cf->conf_file->file.name.data;
    store->line = cf->conf_file->line;

    sp = ngx_array_push(&amcf->stores);
    if (sp == NULL) {
        return NULL;
    }

    *sp = store;

    return store;
}


/* ai_store NAME [backend=NAME] [parameters of the backend] */

char *
ngx_http_ai_store(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_str_t  *value;

    value = cf->args->elts;

    if (ngx_http_ai_store_define(cf, &value[1], &value[2],
                                 cf->args->nelts - 2)
        == NULL)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


ngx_http_ai_store_t *
ngx_http_ai_store_define(ngx_conf_t *cf, ngx_str_t *name, ngx_str_t *args,
    ngx_uint_t nargs)
{
    ngx_str_t                      backend_name, *params;
    ngx_uint_t                     i, n;
    ngx_http_ai_store_t           *store;
    ngx_http_ai_core_main_conf_t  *amcf;
    ngx_http_ai_store_backend_t  **bp, *backend;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ai_core_module);

    ngx_str_set(&backend_name, "shm");

    params = ngx_palloc(cf->pool, (nargs + 1) * sizeof(ngx_str_t));
    if (params == NULL) {
        return NULL;
    }

    n = 0;

    for (i = 0; i < nargs; i++) {
        if (args[i].len >= 8
            && ngx_strncmp(args[i].data, "backend=", 8) == 0)
        {
            backend_name.data = args[i].data + 8;
            backend_name.len = args[i].len - 8;
            continue;
        }

        params[n++] = args[i];
    }

    backend = NULL;
    bp = amcf->backends.elts;

    for (i = 0; i < amcf->backends.nelts; i++) {
        if (bp[i]->name.len == backend_name.len
            && ngx_strncmp(bp[i]->name.data, backend_name.data,
                           backend_name.len)
               == 0)
        {
            backend = bp[i];
            break;
        }
    }

    if (backend == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_store \"%V\": unknown backend \"%V\" (is its "
                           "module loaded?)", name, &backend_name);
        return NULL;
    }

    store = ngx_http_ai_store_add(cf, name);
    if (store == NULL) {
        return NULL;
    }

    if (store->defined) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_store \"%V\" is duplicate", name);
        return NULL;
    }

    store->backend = backend;
    store->defined = 1;

    if (backend->conf(cf, store, params, n) != NGX_CONF_OK) {
        return NULL;
    }

    return store;
}


ngx_int_t
ngx_http_ai_stores_check(ngx_conf_t *cf, ngx_http_ai_core_main_conf_t *amcf)
{
    ngx_uint_t            i;
    ngx_http_ai_store_t **sp;

    sp = amcf->stores.elts;

    for (i = 0; i < amcf->stores.nelts; i++) {
        if (!sp[i]->defined) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "unknown ai_store \"%V\" in %s:%ui (define it with "
                          "\"ai_store %V size=...;\" in the http block)",
                          &sp[i]->name, sp[i]->file, sp[i]->line,
                          &sp[i]->name);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* operations */

ngx_http_ai_store_op_t *
ngx_http_ai_store_op(ngx_http_ai_store_t *store, ngx_http_request_t *r,
    ngx_log_t *log)
{
    ngx_pool_t              *pool;
    ngx_pool_cleanup_t      *cln;
    ngx_http_ai_store_op_t  *op;

    if (r) {
        cln = ngx_pool_cleanup_add(r->pool, sizeof(ngx_http_ai_store_op_t));
        if (cln == NULL) {
            return NULL;
        }

        op = cln->data;
        ngx_memzero(op, sizeof(ngx_http_ai_store_op_t));

        cln->handler = ngx_http_ai_store_op_cleanup;

        op->pool = r->pool;
        op->request = r;

    } else {
        /* detached: a pool of its own, freed once the op completed */

        pool = ngx_http_ai_store_pool(log);
        if (pool == NULL) {
            return NULL;
        }

        op = ngx_pcalloc(pool, sizeof(ngx_http_ai_store_op_t));
        if (op == NULL) {
            ngx_destroy_pool(pool);
            return NULL;
        }

        op->pool = pool;
    }

    op->store = store;
    op->log = log;

    return op;
}


ngx_int_t
ngx_http_ai_store_run(ngx_http_ai_store_op_t *op)
{
    ngx_int_t  rc;

    op->rc = NGX_ERROR;
    op->pending = 1;

    rc = op->store->backend->run(op->store, op);

    if (rc == NGX_AGAIN) {
        return NGX_AGAIN;
    }

    op->pending = 0;

    if (op->request == NULL) {
        /* a detached op always ends in its handler, then goes */

        if (op->handler) {
            op->handler(op);
        }

        ngx_http_ai_store_op_free(op);
        return rc == NGX_ERROR ? NGX_ERROR : NGX_OK;
    }

    return rc;
}


void
ngx_http_ai_store_complete(ngx_http_ai_store_op_t *op)
{
    ngx_connection_t  *c;

    if (!op->pending) {
        /* cancelled */
        return;
    }

    op->pending = 0;

    if (op->request) {
        /*
         * the handler may end the request, and the op with it; run from
         * a bare event, it runs what the request posted (as the upstream
         * module does), or a finalized request would wait
         */

        c = op->request->connection;

        if (op->handler) {
            op->handler(op);
        }

        ngx_http_run_posted_requests(c);

        return;
    }

    if (op->handler) {
        op->handler(op);
    }

    ngx_http_ai_store_op_free(op);
}


void
ngx_http_ai_store_cancel(ngx_http_ai_store_op_t *op)
{
    if (op->pending) {
        op->pending = 0;
        op->store->backend->cancel(op->store, op);
    }
}


void
ngx_http_ai_store_unpin(ngx_http_ai_store_op_t *op)
{
    if (op->pinned) {
        op->pinned = 0;
        op->store->backend->unpin(op->store, op);
    }
}


/* the request goes: what it still waits for is cancelled, pins released */

static void
ngx_http_ai_store_op_cleanup(void *data)
{
    ngx_http_ai_store_op_t *op = data;

    ngx_http_ai_store_cancel(op);
    ngx_http_ai_store_unpin(op);
}


static void
ngx_http_ai_store_op_free(ngx_http_ai_store_op_t *op)
{
    ngx_pool_t  *pool;

    ngx_http_ai_store_unpin(op);

    pool = op->pool;

    if (pool->cleanup == NULL
        && ngx_http_ai_store_npools < NGX_HTTP_AI_STORE_POOLS)
    {
        /* kept for the next op: its large blocks freed, the rest reused */
        ngx_reset_pool(pool);
        ngx_http_ai_store_pools[ngx_http_ai_store_npools++] = pool;
        return;
    }

    ngx_destroy_pool(pool);
}


static ngx_pool_t *
ngx_http_ai_store_pool(ngx_log_t *log)
{
    ngx_pool_t  *pool;

    if (ngx_http_ai_store_npools == 0) {
        return ngx_create_pool(1024, log);
    }

    pool = ngx_http_ai_store_pools[--ngx_http_ai_store_npools];
    pool->log = log;

    return pool;
}


/* the shared memory backend */

static char *
ngx_http_ai_store_shm_conf(ngx_conf_t *cf, ngx_http_ai_store_t *store,
    ngx_str_t *params, ngx_uint_t n)
{
    ssize_t                   size;
    ngx_str_t                 s, zone_name;
    ngx_uint_t                i;
    ngx_shm_zone_t           *shm_zone;
    ngx_http_ai_store_shm_t  *shm;

    shm = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_store_shm_t));
    if (shm == NULL) {
        return NGX_CONF_ERROR;
    }

    shm->memo_len = (size_t) -1;                  /* none: no key matches */

    size = 10 * 1024 * 1024;

    for (i = 0; i < n; i++) {

        if (ngx_strncmp(params[i].data, "size=", 5) == 0) {
            s.data = params[i].data + 5;
            s.len = params[i].len - 5;

            size = ngx_parse_size(&s);

            if (size == NGX_ERROR || size < (ssize_t) (8 * ngx_pagesize)) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "ai_store \"%V\": invalid size \"%V\" "
                                   "(at least %uzk)", &store->name, &s,
                                   8 * ngx_pagesize / 1024);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (params[i].len == 5
            && ngx_strncmp(params[i].data, "async", 5) == 0)
        {
            shm->async = 1;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_store \"%V\": invalid parameter \"%V\"",
                           &store->name, &params[i]);
        return NGX_CONF_ERROR;
    }

    zone_name.len = sizeof("ai_store_") - 1 + store->name.len;
    zone_name.data = ngx_pnalloc(cf->pool, zone_name.len);
    if (zone_name.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_sprintf(zone_name.data, "ai_store_%V", &store->name);

    shm_zone = ngx_shared_memory_add(cf, &zone_name, size,
                                     &ngx_http_ai_core_module);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_store \"%V\": zone \"%V\" is already used",
                           &store->name, &zone_name);
        return NGX_CONF_ERROR;
    }

    shm_zone->init = ngx_http_ai_store_init_zone;
    shm_zone->data = shm;
    shm->shm_zone = shm_zone;

    store->data = shm;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_ai_store_shm_run(ngx_http_ai_store_t *store,
    ngx_http_ai_store_op_t *op)
{
    ngx_http_ai_store_shm_t  *shm;

    shm = store->data;

    ngx_http_ai_store_shm_op(shm, op);

    if (!shm->async) {
        /* completed, op->rc says how */
        return NGX_OK;
    }

    /* the test mode: done now, told on a posted event */

    op->event.handler = ngx_http_ai_store_shm_posted;
    op->event.data = op;
    op->event.log = op->log;

    ngx_post_event(&op->event, &ngx_posted_events);

    return NGX_AGAIN;
}


static void
ngx_http_ai_store_shm_posted(ngx_event_t *ev)
{
    ngx_http_ai_store_op_t *op = ev->data;

    ngx_http_ai_store_complete(op);
}


static void
ngx_http_ai_store_shm_cancel(ngx_http_ai_store_t *store,
    ngx_http_ai_store_op_t *op)
{
    if (op->event.posted) {
        ngx_delete_posted_event(&op->event);
    }
}


static void
ngx_http_ai_store_shm_unpin(ngx_http_ai_store_t *store,
    ngx_http_ai_store_op_t *op)
{
    ngx_http_ai_store_shm_t   *shm;
    ngx_http_ai_store_node_t  *sn;

    shm = store->data;
    sn = op->backend_data;

    ngx_shmtx_lock(&shm->shpool->mutex);

    if (--sn->count == 0 && (sn->flags & NGX_HTTP_AI_STORE_STALE)) {
        ngx_slab_free_locked(shm->shpool, sn);
    }

    ngx_shmtx_unlock(&shm->shpool->mutex);
}


static void
ngx_http_ai_store_shm_op(ngx_http_ai_store_shm_t *shm,
    ngx_http_ai_store_op_t *op)
{
    uint32_t                   hash;
    ngx_http_ai_store_node_t  *sn;

    if (op->key.len == shm->memo_len
        && ngx_memcmp(op->key.data, shm->memo, op->key.len) == 0)
    {
        hash = shm->memo_hash;

    } else {
        hash = (uint32_t) ngx_http_ai_siphash(shm->sh->key, op->key.data,
                                              op->key.len);

        if (op->key.len <= NGX_HTTP_AI_STORE_MEMO) {
            ngx_memcpy(shm->memo, op->key.data, op->key.len);
            shm->memo_len = op->key.len;
            shm->memo_hash = hash;
        }
    }

    ngx_shmtx_lock(&shm->shpool->mutex);

    if (op->type != NGX_HTTP_AI_STORE_GET) {
        ngx_http_ai_store_expire(shm, 1);
    }

    sn = ngx_http_ai_store_lookup(shm, &op->key, hash);

    switch (op->type) {

    case NGX_HTTP_AI_STORE_GET:
        ngx_http_ai_store_shm_get(shm, op, sn);
        break;

    case NGX_HTTP_AI_STORE_ADD:
        if (sn) {
            if (op->get) {
                /* its value, as a GET gives it */
                ngx_http_ai_store_shm_get(shm, op, sn);

                if (op->rc == NGX_OK) {
                    op->rc = NGX_DECLINED;
                }

                break;
            }

            op->rc = NGX_DECLINED;
            break;
        }

        /* fall through */

    case NGX_HTTP_AI_STORE_SET:
        sn = ngx_http_ai_store_shm_write(shm, op, sn, hash, op->value.len);

        if (sn) {
            ngx_memcpy(sn->data + sn->key_len, op->value.data,
                       op->value.len);
            sn->value_len = op->value.len;
            op->rc = NGX_OK;
        }

        break;

    case NGX_HTTP_AI_STORE_DEL:
        if (sn == NULL
            || (op->value.len
                && ((sn->flags & NGX_HTTP_AI_STORE_COUNTER)
                    || sn->value_len != op->value.len
                    || ngx_memcmp(sn->data + sn->key_len, op->value.data,
                                  op->value.len)
                       != 0)))
        {
            /* none, or another value than the one given */
            op->rc = NGX_DECLINED;
            break;
        }

        ngx_http_ai_store_unlink(shm, sn);
        op->rc = NGX_OK;
        break;

    default: /* NGX_HTTP_AI_STORE_INCR, NGX_HTTP_AI_STORE_RESERVE */

        if (op->window) {
            ngx_http_ai_store_shm_window(shm, op, sn, hash);

        } else {
            ngx_http_ai_store_shm_incr(shm, op, sn, hash);
        }
    }

    ngx_shmtx_unlock(&shm->shpool->mutex);
}


static void
ngx_http_ai_store_shm_get(ngx_http_ai_store_shm_t *shm,
    ngx_http_ai_store_op_t *op, ngx_http_ai_store_node_t *sn)
{
    u_char  *v;

    if (sn == NULL) {
        op->rc = NGX_DECLINED;
        return;
    }

    if (sn->flags & NGX_HTTP_AI_STORE_WINDOW) {
        /* read with an INCR of 0 */
        op->rc = NGX_ERROR;
        return;
    }

    op->ttl = ngx_http_ai_store_ttl_left(sn);
    v = sn->data + sn->key_len;

    if (sn->flags & NGX_HTTP_AI_STORE_COUNTER) {
        ngx_memcpy(&op->number, v, sizeof(int64_t));
        op->counter = 1;
        op->rc = NGX_OK;
        return;
    }

    if (op->pin) {
        /* no copy: the entry stays until it is unpinned */
        sn->count++;
        op->pinned = 1;
        op->backend_data = sn;
        op->value.data = v;
        op->value.len = sn->value_len;
        op->rc = NGX_OK;
        return;
    }

    op->value.len = sn->value_len;
    op->value.data = ngx_pnalloc(op->pool, sn->value_len + 1);

    if (op->value.data == NULL) {
        op->rc = NGX_ERROR;
        return;
    }

    ngx_memcpy(op->value.data, v, sn->value_len);
    op->value.data[sn->value_len] = '\0';

    op->rc = NGX_OK;
}


/*
 * A node to write len bytes into: sn itself if it has room and is not in
 * use, else a new one in its place.  The TTL is the op's.
 */

static ngx_http_ai_store_node_t *
ngx_http_ai_store_shm_write(ngx_http_ai_store_shm_t *shm,
    ngx_http_ai_store_op_t *op, ngx_http_ai_store_node_t *sn, uint32_t hash,
    size_t len)
{
    if (sn && (sn->value_cap < len || sn->count)) {
        ngx_http_ai_store_unlink(shm, sn);
        sn = NULL;
    }

    if (sn == NULL) {
        sn = ngx_http_ai_store_alloc(shm, &op->key, hash, len);

        if (sn == NULL) {
            ngx_log_error(NGX_LOG_ERR, op->log, 0,
                          "ai_store \"%V\": no memory for a %uz byte value",
                          &op->store->name, len);
            op->rc = NGX_ERROR;
            return NULL;
        }
    }

    sn->flags &= ~NGX_HTTP_AI_STORE_COUNTER;
    sn->expire = op->ttl ? ngx_current_msec + op->ttl : 0;

    return sn;
}


/*
 * A missing key starts from 0, with the op's TTL; RESERVE applies the
 * delta only if the result stays within op->limit.
 */

static void
ngx_http_ai_store_shm_incr(ngx_http_ai_store_shm_t *shm,
    ngx_http_ai_store_op_t *op, ngx_http_ai_store_node_t *sn, uint32_t hash)
{
    int64_t  n;

    if (sn && (sn->flags & (NGX_HTTP_AI_STORE_COUNTER
                            |NGX_HTTP_AI_STORE_WINDOW))
              != NGX_HTTP_AI_STORE_COUNTER)
    {
        op->rc = NGX_ERROR;
        return;
    }

    n = 0;

    if (sn) {
        ngx_memcpy(&n, sn->data + sn->key_len, sizeof(int64_t));
    }

    /* n + delta > limit, without an overflow */

    if (op->type == NGX_HTTP_AI_STORE_RESERVE && op->delta > 0
        && (n > op->limit
            || (uint64_t) op->delta > (uint64_t) op->limit - (uint64_t) n))
    {
        op->number = n;
        op->ttl = sn ? ngx_http_ai_store_ttl_left(sn) : 0;
        op->rc = NGX_DECLINED;
        return;
    }

    /* saturating: a counter never wraps */

    if (op->delta > 0 && n > NGX_HTTP_AI_STORE_MAX - op->delta) {
        n = NGX_HTTP_AI_STORE_MAX;

    } else if (op->delta < 0 && n < -NGX_HTTP_AI_STORE_MAX - op->delta) {
        n = -NGX_HTTP_AI_STORE_MAX;

    } else {
        n += op->delta;
    }

    if (sn == NULL) {
        sn = ngx_http_ai_store_shm_write(shm, op, NULL, hash,
                                         sizeof(int64_t));
        if (sn == NULL) {
            return;
        }

        sn->flags |= NGX_HTTP_AI_STORE_COUNTER;
        sn->value_len = sizeof(int64_t);
    }

    ngx_memcpy(sn->data + sn->key_len, &n, sizeof(int64_t));

    op->number = n;
    op->ttl = ngx_http_ai_store_ttl_left(sn);
    op->rc = NGX_OK;
}


/*
 * A windowed counter: three numbers, the sliding window's (the window's
 * index, its count, the last window's count) or the bucket's (the level
 * in thousandths, so that slow leaks are not lost to rounding, and the
 * time of the last leak), on the host's clock.
 */

static void
ngx_http_ai_store_shm_window(ngx_http_ai_store_shm_t *shm,
    ngx_http_ai_store_op_t *op, ngx_http_ai_store_node_t *sn, uint32_t hash)
{
    int64_t     w[3], now;
    ngx_time_t  *tp;

    if (sn && !(sn->flags & NGX_HTTP_AI_STORE_WINDOW)) {
        op->rc = NGX_ERROR;
        return;
    }

    if (sn) {
        ngx_memcpy(w, sn->data + sn->key_len, sizeof(w));

    } else {
        w[0] = 0;
        w[1] = 0;
        w[2] = 0;
    }

    tp = ngx_timeofday();
    now = (int64_t) tp->sec * 1000 + tp->msec;

    if (op->bucket) {
        ngx_http_ai_store_bucket(op, w, now);

    } else {
        ngx_http_ai_store_sliding(op, w, now);
    }

    if (op->rc != NGX_OK) {
        return;
    }

    if (sn == NULL) {
        sn = ngx_http_ai_store_shm_write(shm, op, NULL, hash, sizeof(w));
        if (sn == NULL) {
            return;
        }

        sn->flags |= NGX_HTTP_AI_STORE_COUNTER|NGX_HTTP_AI_STORE_WINDOW;
        sn->value_len = sizeof(w);
    }

    ngx_memcpy(sn->data + sn->key_len, w, sizeof(w));

    /* kept while it counts anything: until its reset, and the last
     * window's count for one more window */

    sn->expire = ngx_current_msec + op->ttl + (op->bucket ? 1 : op->window);
}


static int64_t
ngx_http_ai_store_add_sat(int64_t n, int64_t delta)
{
    if (delta > 0 && n > NGX_HTTP_AI_STORE_MAX - delta) {
        return NGX_HTTP_AI_STORE_MAX;
    }

    if (delta < 0 && n < -NGX_HTTP_AI_STORE_MAX - delta) {
        return -NGX_HTTP_AI_STORE_MAX;
    }

    return n + delta;
}


static void
ngx_http_ai_store_sliding(ngx_http_ai_store_op_t *op, int64_t *w,
    int64_t now)
{
    double   left, t;
    int64_t  win, i, used, end, *n;

    win = op->window;
    i = now / win;

    /* move to this window */

    if (w[0] == i - 1) {
        w[2] = w[1];
        w[1] = 0;

    } else if (w[0] != i) {
        w[2] = 0;
        w[1] = 0;
    }

    w[0] = i;

    end = (i + 1) * win - now;                 /* ms to the window's end */
    left = (double) end / win;                 /* the last window's part */
    used = ngx_http_ai_store_add_sat(w[1], (int64_t) (w[2] * left));

    if (op->type == NGX_HTTP_AI_STORE_RESERVE && op->delta > 0
        && (used > op->limit
            || (uint64_t) op->delta > (uint64_t) op->limit - (uint64_t) used))
    {
        op->number = used;
        op->rc = NGX_DECLINED;

        if (op->delta > op->limit) {
            op->retry = 0;

        } else if (w[1] + op->delta <= op->limit) {
            /* fits once enough of the last window slid out */
            t = end - (double) (op->limit - op->delta - w[1]) * win / w[2];
            op->retry = (ngx_msec_t) t + 1;

        } else {
            /* after this window, once enough of it slid out */
            t = win - (double) (op->limit - op->delta) * win / w[1];
            op->retry = (ngx_msec_t) (end + t) + 1;
        }

        op->ttl = (ngx_msec_t) (w[1] ? end + win : end);

        return;
    }

    n = &w[1];

    if (op->type == NGX_HTTP_AI_STORE_INCR && op->stamp) {
        /* a settle: in the window it was reserved in */

        if (op->stamp == i - 1) {
            n = &w[2];

        } else if (op->stamp != i) {
            n = NULL;
        }
    }

    if (n) {
        *n = ngx_http_ai_store_add_sat(*n, op->delta);

        if (*n < 0) {
            *n = 0;
        }
    }

    op->stamp = i;
    op->number = ngx_http_ai_store_add_sat(w[1], (int64_t) (w[2] * left));
    op->ttl = (ngx_msec_t) (w[1] ? end + win : (w[2] ? end : 0));
    op->rc = NGX_OK;
}


static void
ngx_http_ai_store_bucket(ngx_http_ai_store_op_t *op, int64_t *w,
    int64_t now)
{
    double   leak, level, limit;

    limit = (double) (op->limit > 0 ? op->limit : 1);

    level = (double) w[0] / 1000;

    if (now > w[1]) {
        leak = (double) (now - w[1]) * limit / op->window;
        level = (level > leak) ? level - leak : 0;
    }

    if (op->type == NGX_HTTP_AI_STORE_RESERVE && op->delta > 0
        && level + op->delta > op->limit)
    {
        op->number = (int64_t) level;
        op->rc = NGX_DECLINED;
        op->retry = (op->delta > op->limit)
                    ? 0
                    : (ngx_msec_t) ((level + op->delta - op->limit)
                                    * op->window / limit) + 1;
        op->ttl = (ngx_msec_t) (level * op->window / limit) + 1;

        return;
    }

    level += op->delta;

    if (level < 0) {
        level = 0;

    } else if (level > 9e15) {
        level = 9e15;                          /* thousandths in int64 */
    }

    w[0] = (int64_t) (level * 1000);
    w[1] = now;

    op->number = (int64_t) level;
    op->ttl = (level > 0) ? (ngx_msec_t) (level * op->window / limit) + 1
                          : 0;
    op->rc = NGX_OK;
}


static ngx_msec_t
ngx_http_ai_store_ttl_left(ngx_http_ai_store_node_t *sn)
{
    ngx_msec_int_t  left;

    if (sn->expire == 0) {
        return 0;
    }

    left = (ngx_msec_int_t) (sn->expire - ngx_current_msec);

    return left > 0 ? (ngx_msec_t) left : 1;
}


/* called with the mutex held; an expired entry is removed and not found */

static ngx_http_ai_store_node_t *
ngx_http_ai_store_lookup(ngx_http_ai_store_shm_t *shm, ngx_str_t *key,
    uint32_t hash)
{
    ngx_http_ai_store_node_t  *sn;

    for (sn = shm->sh->buckets[hash & shm->sh->mask]; sn; sn = sn->next) {

        if (sn->hash != hash || sn->key_len != key->len
            || ngx_memcmp(sn->data, key->data, key->len) != 0)
        {
            continue;
        }

        if (sn->expire && (ngx_msec_int_t) (sn->expire - ngx_current_msec)
                          <= 0)
        {
            ngx_http_ai_store_unlink(shm, sn);
            return NULL;
        }

        ngx_queue_remove(&sn->queue);
        ngx_queue_insert_head(&shm->sh->queue, &sn->queue);

        return sn;
    }

    return NULL;
}


static ngx_http_ai_store_node_t *
ngx_http_ai_store_alloc(ngx_http_ai_store_shm_t *shm, ngx_str_t *key,
    uint32_t hash, size_t cap)
{
    size_t                     size;
    ngx_uint_t                 i;
    ngx_queue_t               *q;
    ngx_http_ai_store_node_t  *sn, *old, **bucket;

    if (key->len > 65535 || cap > 0xffffffff) {
        return NULL;
    }

    size = offsetof(ngx_http_ai_store_node_t, data) + key->len + cap;

    sn = ngx_slab_alloc_locked(shm->shpool, size);

    /*
     * the zone is full: the least recently used entries make room, but
     * never one that is in use
     */

    q = ngx_queue_last(&shm->sh->queue);

    for (i = 0; sn == NULL && i < 64; i++) {

        if (q == ngx_queue_sentinel(&shm->sh->queue)) {
            break;
        }

        old = ngx_queue_data(q, ngx_http_ai_store_node_t, queue);
        q = ngx_queue_prev(q);

        if (old->count) {
            continue;
        }

        ngx_http_ai_store_unlink(shm, old);

        sn = ngx_slab_alloc_locked(shm->shpool, size);
    }

    if (sn == NULL) {
        return NULL;
    }

    sn->hash = hash;
    sn->flags = 0;
    sn->key_len = (u_short) key->len;
    sn->value_len = 0;
    sn->value_cap = (uint32_t) cap;
    sn->count = 0;
    sn->expire = 0;
    ngx_memcpy(sn->data, key->data, key->len);

    bucket = &shm->sh->buckets[hash & shm->sh->mask];

    sn->next = *bucket;
    *bucket = sn;

    ngx_queue_insert_head(&shm->sh->queue, &sn->queue);

    return sn;
}


/* out of its bucket and the queue; freed now, or at its last unpin */

static void
ngx_http_ai_store_unlink(ngx_http_ai_store_shm_t *shm,
    ngx_http_ai_store_node_t *sn)
{
    ngx_http_ai_store_node_t  **p;

    for (p = &shm->sh->buckets[sn->hash & shm->sh->mask];
         *p != sn;
         p = &(*p)->next)
    {
        /* void */
    }

    *p = sn->next;

    ngx_queue_remove(&sn->queue);

    if (sn->count) {
        sn->flags |= NGX_HTTP_AI_STORE_STALE;
        return;
    }

    ngx_slab_free_locked(shm->shpool, sn);
}


/* removes up to n expired entries from the cold end of the queue */

static void
ngx_http_ai_store_expire(ngx_http_ai_store_shm_t *shm, ngx_uint_t n)
{
    ngx_queue_t               *q;
    ngx_http_ai_store_node_t  *sn;

    while (n--) {

        if (ngx_queue_empty(&shm->sh->queue)) {
            return;
        }

        q = ngx_queue_last(&shm->sh->queue);
        sn = ngx_queue_data(q, ngx_http_ai_store_node_t, queue);

        if (sn->expire == 0
            || (ngx_msec_int_t) (sn->expire - ngx_current_msec) > 0)
        {
            return;
        }

        ngx_http_ai_store_unlink(shm, sn);
    }
}


static ngx_int_t
ngx_http_ai_store_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_ai_store_shm_t  *oshm = data;

    size_t                    len;
    ngx_uint_t                n;
    ngx_http_ai_store_shm_t  *shm;

    shm = shm_zone->data;

    if (oshm) {
        /* a reload: the entries live on */
        shm->sh = oshm->sh;
        shm->shpool = oshm->shpool;
        return NGX_OK;
    }

    shm->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        shm->sh = shm->shpool->data;
        return NGX_OK;
    }

    shm->sh = ngx_slab_alloc(shm->shpool, sizeof(ngx_http_ai_store_shctx_t));
    if (shm->sh == NULL) {
        return NGX_ERROR;
    }

    shm->shpool->data = shm->sh;

    /* a bucket for every NGX_HTTP_AI_STORE_BUCKET bytes, a power of 2 */

    for (n = 16; n * 2 * NGX_HTTP_AI_STORE_BUCKET <= shm_zone->shm.size;
         n *= 2)
    {
        /* void */
    }

    shm->sh->buckets = ngx_slab_calloc(shm->shpool,
                                       n * sizeof(ngx_http_ai_store_node_t *));
    if (shm->sh->buckets == NULL) {
        return NGX_ERROR;
    }

    shm->sh->mask = n - 1;

    if (RAND_bytes(shm->sh->key, sizeof(shm->sh->key)) != 1) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "ai_store \"%V\": RAND_bytes() failed",
                      &shm_zone->shm.name);
        return NGX_ERROR;
    }

    ngx_queue_init(&shm->sh->queue);

    len = sizeof(" in ai_store \"\"") + shm_zone->shm.name.len;

    shm->shpool->log_ctx = ngx_slab_alloc(shm->shpool, len);
    if (shm->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(shm->shpool->log_ctx, " in ai_store \"%V\"%Z",
                &shm_zone->shm.name);

    shm->shpool->log_nomem = 0;

    return NGX_OK;
}
