
/*
 * Copyright (C) AI Gateway authors
 *
 * What is left of each budget, by key, as this node last saw it (at a
 * reservation, a settlement, an admin call): a shared memory zone of its
 * own, an rbtree keyed by a hash of (zone, count, key) with an LRU queue
 * as limit_req's, bounded (the least recently updated keys go first when
 * it is full), kept across reloads.  The core's metric sources show it
 * through ai_metrics:
 *
 *     ai_token_budget_remaining{budget="team",count="tokens",key="alice"}
 *
 * A budget kept in Redis is updated by every node: each shows what it saw
 * last.  The key is shown: key budgets on names ($ai_consumer), never on
 * secrets.
 */


#include "ngx_http_ai_token_limit.h"


#define NGX_HTTP_AI_TL_GAUGE_SIZE       (1024 * 1024)


typedef struct {
    u_char                      color;
    u_char                      count;
    u_short                     zone_len;
    u_short                     key_len;
    ngx_queue_t                 queue;
    int64_t                     remaining;
    u_char                      data[1];    /* the zone's name, the key */
} ngx_http_ai_tl_gauge_node_t;


typedef struct {
    ngx_rbtree_t                rbtree;
    ngx_rbtree_node_t           sentinel;
    ngx_queue_t                 queue;
} ngx_http_ai_tl_gauge_sh_t;


typedef struct {
    ngx_http_ai_tl_gauge_sh_t  *sh;
    ngx_slab_pool_t            *shpool;
} ngx_http_ai_tl_gauge_t;


static ngx_int_t ngx_http_ai_token_limit_gauge_init(ngx_shm_zone_t *zone,
    void *data);
static void ngx_http_ai_token_limit_gauge_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_int_t ngx_http_ai_token_limit_gauge_metrics(ngx_http_request_t *r,
    ngx_chain_t ***out);
static u_char *ngx_http_ai_token_limit_gauge_label(u_char *p, u_char *s,
    size_t len);


static const char  *ngx_http_ai_tl_gauge_counts[] = {
    "tokens", "prompt", "completion", "requests", "concurrent", "money"
};


ngx_int_t
ngx_http_ai_token_limit_gauge_conf(ngx_conf_t *cf,
    ngx_http_ai_tl_main_conf_t *tmcf)
{
    ngx_str_t                name;
    ngx_http_ai_tl_gauge_t  *g;

    if (tmcf->budgets.nelts == 0) {
        return NGX_OK;
    }

    g = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_tl_gauge_t));
    if (g == NULL) {
        return NGX_ERROR;
    }

    ngx_str_set(&name, "ai_token_limit_budgets");

    tmcf->gauges = ngx_shared_memory_add(cf, &name, NGX_HTTP_AI_TL_GAUGE_SIZE,
                                         &ngx_http_ai_token_limit_module);
    if (tmcf->gauges == NULL) {
        return NGX_ERROR;
    }

    tmcf->gauges->init = ngx_http_ai_token_limit_gauge_init;
    tmcf->gauges->data = g;

    return ngx_http_ai_add_metrics(cf, ngx_http_ai_token_limit_gauge_metrics);
}


static ngx_int_t
ngx_http_ai_token_limit_gauge_init(ngx_shm_zone_t *zone, void *data)
{
    ngx_http_ai_tl_gauge_t *og = data;

    ngx_http_ai_tl_gauge_t  *g;

    g = zone->data;

    if (og) {
        g->sh = og->sh;
        g->shpool = og->shpool;
        return NGX_OK;
    }

    g->shpool = (ngx_slab_pool_t *) zone->shm.addr;

    if (zone->shm.exists) {
        g->sh = g->shpool->data;
        return NGX_OK;
    }

    g->sh = ngx_slab_alloc(g->shpool, sizeof(ngx_http_ai_tl_gauge_sh_t));
    if (g->sh == NULL) {
        return NGX_ERROR;
    }

    g->shpool->data = g->sh;

    ngx_rbtree_init(&g->sh->rbtree, &g->sh->sentinel,
                    ngx_http_ai_token_limit_gauge_insert);
    ngx_queue_init(&g->sh->queue);

    g->shpool->log_nomem = 0;

    return NGX_OK;
}


/* a budget's key and what is left of it, as just seen */

void
ngx_http_ai_token_limit_gauge(ngx_http_ai_tl_main_conf_t *tmcf,
    ngx_str_t *zone, ngx_uint_t count, ngx_str_t *key, int64_t remaining)
{
    size_t                        n;
    uint32_t                      hash;
    ngx_int_t                     rc;
    ngx_queue_t                  *q;
    ngx_rbtree_node_t            *node, *sentinel;
    ngx_http_ai_tl_gauge_t       *g;
    ngx_http_ai_tl_gauge_node_t  *gn;

    if (tmcf->gauges == NULL || key->len > 1024 || zone->len > 255) {
        return;
    }

    g = tmcf->gauges->data;

    ngx_crc32_init(hash);
    ngx_crc32_update(&hash, zone->data, zone->len);
    ngx_crc32_update(&hash, (u_char *) &count, sizeof(ngx_uint_t));
    ngx_crc32_update(&hash, key->data, key->len);
    ngx_crc32_final(hash);

    ngx_shmtx_lock(&g->shpool->mutex);

    node = g->sh->rbtree.root;
    sentinel = g->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (hash != node->key) {
            node = (hash < node->key) ? node->left : node->right;
            continue;
        }

        gn = (ngx_http_ai_tl_gauge_node_t *) &node->color;

        rc = (ngx_int_t) count - gn->count;

        if (rc == 0) {
            rc = ngx_memn2cmp(zone->data, gn->data, zone->len, gn->zone_len);
        }

        if (rc == 0) {
            rc = ngx_memn2cmp(key->data, gn->data + gn->zone_len, key->len,
                              gn->key_len);
        }

        if (rc == 0) {
            gn->remaining = remaining;
            ngx_queue_remove(&gn->queue);
            ngx_queue_insert_head(&g->sh->queue, &gn->queue);
            ngx_shmtx_unlock(&g->shpool->mutex);
            return;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    n = offsetof(ngx_rbtree_node_t, color)
        + offsetof(ngx_http_ai_tl_gauge_node_t, data)
        + zone->len + key->len;

    node = ngx_slab_alloc_locked(g->shpool, n);

    while (node == NULL && !ngx_queue_empty(&g->sh->queue)) {
        /* full: the least recently updated key goes */

        q = ngx_queue_last(&g->sh->queue);
        gn = ngx_queue_data(q, ngx_http_ai_tl_gauge_node_t, queue);

        ngx_queue_remove(q);

        node = (ngx_rbtree_node_t *)
                   ((u_char *) gn - offsetof(ngx_rbtree_node_t, color));

        ngx_rbtree_delete(&g->sh->rbtree, node);
        ngx_slab_free_locked(g->shpool, node);

        node = ngx_slab_alloc_locked(g->shpool, n);
    }

    if (node == NULL) {
        ngx_shmtx_unlock(&g->shpool->mutex);
        return;
    }

    node->key = hash;

    gn = (ngx_http_ai_tl_gauge_node_t *) &node->color;
    gn->count = (u_char) count;
    gn->zone_len = (u_short) zone->len;
    gn->key_len = (u_short) key->len;
    gn->remaining = remaining;

    ngx_memcpy(gn->data, zone->data, zone->len);
    ngx_memcpy(gn->data + zone->len, key->data, key->len);

    ngx_rbtree_insert(&g->sh->rbtree, node);
    ngx_queue_insert_head(&g->sh->queue, &gn->queue);

    ngx_shmtx_unlock(&g->shpool->mutex);
}


static void
ngx_http_ai_token_limit_gauge_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_int_t                     rc;
    ngx_rbtree_node_t           **p;
    ngx_http_ai_tl_gauge_node_t  *gn, *gt;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else { /* node->key == temp->key */

            gn = (ngx_http_ai_tl_gauge_node_t *) &node->color;
            gt = (ngx_http_ai_tl_gauge_node_t *) &temp->color;

            rc = (ngx_int_t) gn->count - gt->count;

            if (rc == 0) {
                rc = ngx_memn2cmp(gn->data, gt->data, gn->zone_len,
                                  gt->zone_len);
            }

            if (rc == 0) {
                rc = ngx_memn2cmp(gn->data + gn->zone_len,
                                  gt->data + gt->zone_len, gn->key_len,
                                  gt->key_len);
            }

            p = (rc < 0) ? &temp->left : &temp->right;
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


/* the metric source: every key's line, money in US dollars */

static ngx_int_t
ngx_http_ai_token_limit_gauge_metrics(ngx_http_request_t *r,
    ngx_chain_t ***out)
{
    u_char                       *p;
    int64_t                       v;
    size_t                        size;
    ngx_buf_t                    *b;
    ngx_queue_t                  *q;
    ngx_chain_t                  *cl;
    ngx_http_ai_tl_gauge_t       *g;
    ngx_http_ai_tl_gauge_node_t  *gn;
    ngx_http_ai_tl_main_conf_t   *tmcf;

    static u_char  head[] =
        "# HELP ai_token_budget_remaining What is left of each budget by "
        "key (tokens, or US dollars), as this node last saw it\n"
        "# TYPE ai_token_budget_remaining gauge\n";

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_ai_token_limit_module);

    if (tmcf->gauges == NULL) {
        return NGX_OK;
    }

    g = tmcf->gauges->data;

    ngx_shmtx_lock(&g->shpool->mutex);

    /* the size first, under the lock, then the lines */

    size = sizeof(head);

    for (q = ngx_queue_head(&g->sh->queue);
         q != ngx_queue_sentinel(&g->sh->queue);
         q = ngx_queue_next(q))
    {
        gn = ngx_queue_data(q, ngx_http_ai_tl_gauge_node_t, queue);
        size += 96 + (gn->zone_len + gn->key_len) * 4 + NGX_INT64_LEN;
    }

    b = ngx_create_temp_buf(r->pool, size);
    if (b == NULL) {
        ngx_shmtx_unlock(&g->shpool->mutex);
        return NGX_ERROR;
    }

    p = ngx_cpymem(b->last, head, sizeof(head) - 1);

    for (q = ngx_queue_head(&g->sh->queue);
         q != ngx_queue_sentinel(&g->sh->queue);
         q = ngx_queue_next(q))
    {
        gn = ngx_queue_data(q, ngx_http_ai_tl_gauge_node_t, queue);

        p = ngx_cpymem(p, "ai_token_budget_remaining{budget=\"", 34);
        p = ngx_http_ai_token_limit_gauge_label(p, gn->data, gn->zone_len);
        p = ngx_sprintf(p, "\",count=\"%s\",key=\"",
                        gn->count < 6 ? ngx_http_ai_tl_gauge_counts[gn->count]
                                      : "tokens");
        p = ngx_http_ai_token_limit_gauge_label(p, gn->data + gn->zone_len,
                                                gn->key_len);

        v = gn->remaining;

        if (gn->count == NGX_HTTP_AI_TL_MONEY) {
            p = ngx_sprintf(p, "\"} %s%L.%06L\n", v < 0 ? "-" : "",
                            (v < 0 ? -v : v) / 1000000,
                            (v < 0 ? -v : v) % 1000000);

        } else {
            p = ngx_sprintf(p, "\"} %L\n", v);
        }
    }

    ngx_shmtx_unlock(&g->shpool->mutex);

    b->last = p;

    cl = ngx_alloc_chain_link(r->pool);
    if (cl == NULL) {
        return NGX_ERROR;
    }

    cl->buf = b;
    cl->next = NULL;

    **out = cl;
    *out = &cl->next;

    return NGX_OK;
}


/*
 * A label value: backslash, quote and line feed escaped; other control
 * bytes and every non-ASCII byte (a key may be any bytes, Prometheus
 * wants UTF-8) as "_"
 */

static u_char *
ngx_http_ai_token_limit_gauge_label(u_char *p, u_char *s, size_t len)
{
    u_char  *last;

    for (last = s + len; s < last; s++) {

        if (*s == '\\' || *s == '"') {
            *p++ = '\\';
            *p++ = *s;

        } else if (*s == '\n') {
            *p++ = '\\';
            *p++ = 'n';

        } else if (*s < 0x20 || *s >= 0x7f) {
            *p++ = '_';

        } else {
            *p++ = *s;
        }
    }

    return p;
}
