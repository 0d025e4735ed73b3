
/*
 * Copyright (C) AI Gateway authors
 *
 * The store: get / set / incr / del with TTL behind one asynchronous
 * interface (see ngx_http_ai_core.h).  The built-in backend is a shared
 * memory zone: an rbtree keyed by a hash of the key with an LRU queue,
 * as in ngx_http_limit_req_module; expired entries go lazily and the
 * least recently used make room when the zone is full.  The zone is
 * reused on reload when its size is unchanged.
 *
 *     ai_store NAME [size=SIZE];
 */


#include "ngx_http_ai_core_module.h"


typedef struct {
    u_char                      color;
    u_char                      dummy;
    u_short                     key_len;
    uint32_t                    value_len;
    uint32_t                    value_cap;
    ngx_queue_t                 queue;
    ngx_msec_t                  expire;        /* 0: never */
    u_char                      data[1];       /* key, then value */
} ngx_http_ai_store_node_t;


typedef struct {
    ngx_rbtree_t                rbtree;
    ngx_rbtree_node_t           sentinel;
    ngx_queue_t                 queue;
} ngx_http_ai_store_shctx_t;


typedef struct {
    ngx_http_ai_store_shctx_t  *sh;
    ngx_slab_pool_t            *shpool;
    ngx_shm_zone_t             *shm_zone;
} ngx_http_ai_store_shm_t;


static ngx_int_t ngx_http_ai_store_shm_get(ngx_http_ai_store_t *store,
    ngx_http_ai_store_op_t *op);
static ngx_int_t ngx_http_ai_store_shm_set(ngx_http_ai_store_t *store,
    ngx_http_ai_store_op_t *op);
static ngx_int_t ngx_http_ai_store_shm_incr(ngx_http_ai_store_t *store,
    ngx_http_ai_store_op_t *op);
static ngx_int_t ngx_http_ai_store_shm_del(ngx_http_ai_store_t *store,
    ngx_http_ai_store_op_t *op);
static ngx_http_ai_store_node_t *ngx_http_ai_store_lookup(
    ngx_http_ai_store_shm_t *shm, ngx_str_t *key, uint32_t hash);
static ngx_http_ai_store_node_t *ngx_http_ai_store_alloc(
    ngx_http_ai_store_shm_t *shm, ngx_str_t *key, uint32_t hash,
    size_t cap);
static void ngx_http_ai_store_free(ngx_http_ai_store_shm_t *shm,
    ngx_http_ai_store_node_t *sn);
static void ngx_http_ai_store_expire(ngx_http_ai_store_shm_t *shm,
    ngx_uint_t n);
static void ngx_http_ai_store_rbtree_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_int_t ngx_http_ai_store_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);


static ngx_http_ai_store_backend_t  ngx_http_ai_store_shm_backend = {
    ngx_string("shm"),
    ngx_http_ai_store_shm_get,
    ngx_http_ai_store_shm_set,
    ngx_http_ai_store_shm_incr,
    ngx_http_ai_store_shm_del
};


#define ngx_http_ai_store_node(n)                                             \
    ((ngx_http_ai_store_node_t *) &(n)->color)

#define ngx_http_ai_store_rbnode(sn)                                          \
    ((ngx_rbtree_node_t *) ((u_char *) (sn)                                   \
                            - offsetof(ngx_rbtree_node_t, color)))


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


char *
ngx_http_ai_store(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ssize_t                   size;
    ngx_str_t                *value, s, zone_name;
    ngx_uint_t                i;
    ngx_shm_zone_t           *shm_zone;
    ngx_http_ai_store_t      *store;
    ngx_http_ai_store_shm_t  *shm;

    value = cf->args->elts;

    size = 10 * 1024 * 1024;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "size=", 5) == 0) {
            s.data = value[i].data + 5;
            s.len = value[i].len - 5;

            size = ngx_parse_size(&s);

            if (size == NGX_ERROR || size < (ssize_t) (8 * ngx_pagesize)) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "ai_store \"%V\": invalid size \"%V\" "
                                   "(at least %uzk)", &value[1], &s,
                                   8 * ngx_pagesize / 1024);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_store \"%V\": invalid parameter \"%V\"",
                           &value[1], &value[i]);
        return NGX_CONF_ERROR;
    }

    store = ngx_http_ai_store_add(cf, &value[1]);
    if (store == NULL) {
        return NGX_CONF_ERROR;
    }

    if (store->defined) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_store \"%V\" is duplicate", &value[1]);
        return NGX_CONF_ERROR;
    }

    shm = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_store_shm_t));
    if (shm == NULL) {
        return NGX_CONF_ERROR;
    }

    zone_name.len = sizeof("ai_store_") - 1 + value[1].len;
    zone_name.data = ngx_pnalloc(cf->pool, zone_name.len);
    if (zone_name.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_sprintf(zone_name.data, "ai_store_%V", &value[1]);

    shm_zone = ngx_shared_memory_add(cf, &zone_name, size,
                                     &ngx_http_ai_core_module);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_store \"%V\": zone \"%V\" is already used",
                           &value[1], &zone_name);
        return NGX_CONF_ERROR;
    }

    shm_zone->init = ngx_http_ai_store_init_zone;
    shm_zone->data = shm;
    shm->shm_zone = shm_zone;

    store->backend = &ngx_http_ai_store_shm_backend;
    store->data = shm;
    store->defined = 1;

    return NGX_CONF_OK;
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


ngx_int_t
ngx_http_ai_store_get(ngx_http_ai_store_t *store, ngx_http_ai_store_op_t *op)
{
    return store->backend->get(store, op);
}


ngx_int_t
ngx_http_ai_store_set(ngx_http_ai_store_t *store, ngx_http_ai_store_op_t *op)
{
    return store->backend->set(store, op);
}


ngx_int_t
ngx_http_ai_store_incr(ngx_http_ai_store_t *store, ngx_http_ai_store_op_t *op)
{
    return store->backend->incr(store, op);
}


ngx_int_t
ngx_http_ai_store_del(ngx_http_ai_store_t *store, ngx_http_ai_store_op_t *op)
{
    return store->backend->del(store, op);
}


static ngx_int_t
ngx_http_ai_store_shm_get(ngx_http_ai_store_t *store,
    ngx_http_ai_store_op_t *op)
{
    uint32_t                   hash;
    ngx_http_ai_store_shm_t   *shm;
    ngx_http_ai_store_node_t  *sn;

    shm = store->data;
    hash = ngx_crc32_short(op->key.data, op->key.len);

    ngx_shmtx_lock(&shm->shpool->mutex);

    sn = ngx_http_ai_store_lookup(shm, &op->key, hash);

    if (sn == NULL) {
        ngx_shmtx_unlock(&shm->shpool->mutex);
        op->rc = NGX_DECLINED;
        return NGX_OK;
    }

    op->value.len = sn->value_len;
    op->value.data = ngx_pnalloc(op->pool, sn->value_len + 1);

    if (op->value.data == NULL) {
        ngx_shmtx_unlock(&shm->shpool->mutex);
        op->rc = NGX_ERROR;
        return NGX_ERROR;
    }

    ngx_memcpy(op->value.data, sn->data + sn->key_len, sn->value_len);
    op->value.data[sn->value_len] = '\0';

    ngx_shmtx_unlock(&shm->shpool->mutex);

    op->rc = NGX_OK;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_store_shm_set(ngx_http_ai_store_t *store,
    ngx_http_ai_store_op_t *op)
{
    uint32_t                   hash;
    ngx_http_ai_store_shm_t   *shm;
    ngx_http_ai_store_node_t  *sn;

    shm = store->data;
    hash = ngx_crc32_short(op->key.data, op->key.len);

    ngx_shmtx_lock(&shm->shpool->mutex);

    ngx_http_ai_store_expire(shm, 1);

    sn = ngx_http_ai_store_lookup(shm, &op->key, hash);

    if (sn && sn->value_cap < op->value.len) {
        ngx_http_ai_store_free(shm, sn);
        sn = NULL;
    }

    if (sn == NULL) {
        sn = ngx_http_ai_store_alloc(shm, &op->key, hash, op->value.len);

        if (sn == NULL) {
            ngx_shmtx_unlock(&shm->shpool->mutex);
            ngx_log_error(NGX_LOG_ERR, op->log, 0,
                          "ai_store \"%V\": no memory for a %uz byte value",
                          &store->name, op->value.len);
            op->rc = NGX_ERROR;
            return NGX_ERROR;
        }
    }

    ngx_memcpy(sn->data + sn->key_len, op->value.data, op->value.len);
    sn->value_len = op->value.len;
    sn->expire = op->ttl ? ngx_current_msec + op->ttl : 0;

    ngx_shmtx_unlock(&shm->shpool->mutex);

    op->rc = NGX_OK;

    return NGX_OK;
}


/* a missing key starts from 0; the TTL is set when the key is created */

static ngx_int_t
ngx_http_ai_store_shm_incr(ngx_http_ai_store_t *store,
    ngx_http_ai_store_op_t *op)
{
    u_char                    *p;
    int64_t                    n;
    uint32_t                   hash;
    ngx_uint_t                 i, neg;
    ngx_http_ai_store_shm_t   *shm;
    ngx_http_ai_store_node_t  *sn;

    shm = store->data;
    hash = ngx_crc32_short(op->key.data, op->key.len);

    ngx_shmtx_lock(&shm->shpool->mutex);

    ngx_http_ai_store_expire(shm, 1);

    sn = ngx_http_ai_store_lookup(shm, &op->key, hash);

    n = 0;

    if (sn) {
        p = sn->data + sn->key_len;
        neg = (sn->value_len && p[0] == '-');

        for (i = neg; i < sn->value_len; i++) {
            if (p[i] < '0' || p[i] > '9') {
                ngx_shmtx_unlock(&shm->shpool->mutex);
                op->rc = NGX_ERROR;
                return NGX_ERROR;
            }

            n = n * 10 + (p[i] - '0');
        }

        if (neg) {
            n = -n;
        }

    } else {
        sn = ngx_http_ai_store_alloc(shm, &op->key, hash, NGX_INT64_LEN);

        if (sn == NULL) {
            ngx_shmtx_unlock(&shm->shpool->mutex);
            ngx_log_error(NGX_LOG_ERR, op->log, 0,
                          "ai_store \"%V\": no memory for a counter",
                          &store->name);
            op->rc = NGX_ERROR;
            return NGX_ERROR;
        }

        sn->expire = op->ttl ? ngx_current_msec + op->ttl : 0;
    }

    n += op->delta;

    if (sn->value_cap < NGX_INT64_LEN) {
        ngx_shmtx_unlock(&shm->shpool->mutex);
        op->rc = NGX_ERROR;
        return NGX_ERROR;
    }

    p = sn->data + sn->key_len;
    sn->value_len = ngx_sprintf(p, "%L", n) - p;

    ngx_shmtx_unlock(&shm->shpool->mutex);

    op->number = n;
    op->rc = NGX_OK;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_store_shm_del(ngx_http_ai_store_t *store,
    ngx_http_ai_store_op_t *op)
{
    uint32_t                   hash;
    ngx_http_ai_store_shm_t   *shm;
    ngx_http_ai_store_node_t  *sn;

    shm = store->data;
    hash = ngx_crc32_short(op->key.data, op->key.len);

    ngx_shmtx_lock(&shm->shpool->mutex);

    sn = ngx_http_ai_store_lookup(shm, &op->key, hash);

    if (sn) {
        ngx_http_ai_store_free(shm, sn);
        op->rc = NGX_OK;

    } else {
        op->rc = NGX_DECLINED;
    }

    ngx_shmtx_unlock(&shm->shpool->mutex);

    return NGX_OK;
}


/* called with the mutex held; an expired entry is removed and not found */

static ngx_http_ai_store_node_t *
ngx_http_ai_store_lookup(ngx_http_ai_store_shm_t *shm, ngx_str_t *key,
    uint32_t hash)
{
    ngx_int_t                  rc;
    ngx_rbtree_node_t         *node, *sentinel;
    ngx_http_ai_store_node_t  *sn;

    node = shm->sh->rbtree.root;
    sentinel = shm->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (hash < node->key) {
            node = node->left;
            continue;
        }

        if (hash > node->key) {
            node = node->right;
            continue;
        }

        /* hash == node->key */

        sn = ngx_http_ai_store_node(node);

        rc = ngx_memn2cmp(key->data, sn->data, key->len,
                          (size_t) sn->key_len);

        if (rc == 0) {
            if (sn->expire && (ngx_msec_int_t) (sn->expire - ngx_current_msec)
                              <= 0)
            {
                ngx_http_ai_store_free(shm, sn);
                return NULL;
            }

            ngx_queue_remove(&sn->queue);
            ngx_queue_insert_head(&shm->sh->queue, &sn->queue);

            return sn;
        }

        node = (rc < 0) ? node->left : node->right;
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
    ngx_rbtree_node_t         *node;
    ngx_http_ai_store_node_t  *sn;

    if (key->len > 65535 || cap > 0xffffffff) {
        return NULL;
    }

    size = offsetof(ngx_rbtree_node_t, color)
           + offsetof(ngx_http_ai_store_node_t, data)
           + key->len + cap;

    node = ngx_slab_alloc_locked(shm->shpool, size);

    /* the zone is full: the least recently used entries make room */

    for (i = 0; node == NULL && i < 64; i++) {

        if (ngx_queue_empty(&shm->sh->queue)) {
            break;
        }

        q = ngx_queue_last(&shm->sh->queue);
        sn = ngx_queue_data(q, ngx_http_ai_store_node_t, queue);

        ngx_http_ai_store_free(shm, sn);

        node = ngx_slab_alloc_locked(shm->shpool, size);
    }

    if (node == NULL) {
        return NULL;
    }

    node->key = hash;

    sn = ngx_http_ai_store_node(node);

    sn->key_len = (u_short) key->len;
    sn->value_len = 0;
    sn->value_cap = (uint32_t) cap;
    sn->expire = 0;
    ngx_memcpy(sn->data, key->data, key->len);

    ngx_rbtree_insert(&shm->sh->rbtree, node);
    ngx_queue_insert_head(&shm->sh->queue, &sn->queue);

    return sn;
}


static void
ngx_http_ai_store_free(ngx_http_ai_store_shm_t *shm,
    ngx_http_ai_store_node_t *sn)
{
    ngx_rbtree_node_t  *node;

    node = ngx_http_ai_store_rbnode(sn);

    ngx_queue_remove(&sn->queue);
    ngx_rbtree_delete(&shm->sh->rbtree, node);
    ngx_slab_free_locked(shm->shpool, node);
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

        ngx_http_ai_store_free(shm, sn);
    }
}


static void
ngx_http_ai_store_rbtree_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t         **p;
    ngx_http_ai_store_node_t   *sn, *snt;

    for ( ;; ) {

        if (node->key < temp->key) {

            p = &temp->left;

        } else if (node->key > temp->key) {

            p = &temp->right;

        } else { /* node->key == temp->key */

            sn = ngx_http_ai_store_node(node);
            snt = ngx_http_ai_store_node(temp);

            p = (ngx_memn2cmp(sn->data, snt->data, sn->key_len,
                              snt->key_len) < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


static ngx_int_t
ngx_http_ai_store_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_ai_store_shm_t  *oshm = data;

    size_t                    len;
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

    ngx_rbtree_init(&shm->sh->rbtree, &shm->sh->sentinel,
                    ngx_http_ai_store_rbtree_insert_value);

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
