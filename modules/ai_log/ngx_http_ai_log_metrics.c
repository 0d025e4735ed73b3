
/*
 * Copyright (C) AI Gateway authors
 *
 * The metrics zone: aggregates of every AI request, shared by the
 * workers and kept across reloads (as limit_req's zones: a zone of the
 * same name and size is reused), and the Prometheus text exposition.
 *
 * A series is a (model, provider, consumer, status) tuple.  Each label
 * keeps at most "labels=N" distinct values; later values are counted as
 * "__other__", and so is everything once the zone is full, so that the
 * cardinality is bounded.  The history is a ring of fixed buckets (one
 * minute each, 24 hours by default) for the dashboard.  Everything is
 * updated under the zone's mutex, once per request in the LOG phase.
 */


#include "ngx_http_ai_log.h"


#define NGX_HTTP_AI_LOG_OTHER  "__other__"
#define NGX_HTTP_AI_LOG_NONE   ((ngx_uint_t) -1)


typedef struct {
    ngx_uint_t                  nlabels[NGX_HTTP_AI_LOG_DIMS];
    ngx_http_ai_log_label_t    *labels[NGX_HTTP_AI_LOG_DIMS];
    ngx_http_ai_log_series_t   *series;
    ngx_uint_t                  nseries;
    uint64_t                    overflow;
    ngx_uint_t                  nsmall;
    ngx_http_ai_log_label_t     small[NGX_HTTP_AI_LOG_SMALL];
    uint64_t                    cache[NGX_HTTP_AI_LOG_SMALL];
    uint64_t                    limit[NGX_HTTP_AI_LOG_SMALL];
    ngx_uint_t                  nguard;
    ngx_http_ai_log_guard_t     guard[NGX_HTTP_AI_LOG_SMALL];
    ngx_uint_t                  nattempts;
    ngx_http_ai_log_attempt_t   attempts[NGX_HTTP_AI_LOG_ATTEMPTS];
    uint64_t                    fallbacks[NGX_HTTP_AI_LOG_ATTEMPTS];
    uint64_t                    overhead[NGX_HTTP_AI_LOG_OBUCKETS];
    uint64_t                    overhead_sum;
    ngx_atomic_uint_t           inflight;
    ngx_atomic_uint_t           streams;
} ngx_http_ai_log_snapshot_t;


static ngx_int_t ngx_http_ai_log_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_ai_log_rbtree_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static void ngx_http_ai_log_label_set(ngx_http_ai_log_label_t *label,
    u_char *data, size_t len);
static ngx_uint_t ngx_http_ai_log_label_id(ngx_http_ai_log_label_t *labels,
    ngx_uint_t *n, ngx_uint_t max, ngx_str_t *value, ngx_uint_t add);
static uint64_t ngx_http_ai_log_nano(double usd);
static ngx_http_ai_log_series_t *ngx_http_ai_log_series(
    ngx_http_ai_log_zone_t *zone, uint16_t *tuple);
static ngx_int_t ngx_http_ai_log_snapshot(ngx_http_request_t *r,
    ngx_http_ai_log_zone_t *zone, ngx_http_ai_log_snapshot_t *snap);
static u_char *ngx_http_ai_log_prom_value(u_char *p,
    ngx_http_ai_log_label_t *label);
static ngx_int_t ngx_http_ai_log_prom_family(ngx_http_ai_log_out_t *o,
    ngx_http_ai_log_snapshot_t *snap, u_char **sets, ngx_uint_t family);
static ngx_int_t ngx_http_ai_log_prom_small(ngx_http_ai_log_out_t *o,
    ngx_http_ai_log_snapshot_t *snap);
static ngx_int_t ngx_http_ai_log_prom_gateway(ngx_http_ai_log_out_t *o,
    ngx_http_ai_log_snapshot_t *snap);
static void ngx_http_ai_log_attempts_add(ngx_http_ai_log_zone_t *zone,
    ngx_http_ai_log_record_t *rec, ngx_uint_t target);


/* histogram bucket bounds, ms (the last bucket is +Inf) */

uint64_t  ngx_http_ai_log_bounds[NGX_HTTP_AI_LOG_BUCKETS - 1] = {
    25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000
};


static char  *ngx_http_ai_log_le[NGX_HTTP_AI_LOG_BUCKETS] = {
    "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30",
    "60", "120", "+Inf"
};


/* the gateway's overhead: 1 ms to 1 s */

uint64_t  ngx_http_ai_log_obounds[NGX_HTTP_AI_LOG_OBUCKETS - 1] = {
    1, 2, 5, 10, 25, 50, 100, 250, 500, 1000
};


static char  *ngx_http_ai_log_ole[NGX_HTTP_AI_LOG_OBUCKETS] = {
    "0.001", "0.002", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
    "0.5", "1", "+Inf"
};


static char  *ngx_http_ai_log_dim_names[NGX_HTTP_AI_LOG_DIMS] = {
    "model", "provider", "consumer", "target", "endpoint"
};


static char  *ngx_http_ai_log_token_types[NGX_HTTP_AI_LOG_TOKEN_TYPES] = {
    "prompt", "completion", "cached", "reasoning"
};


/* the model label of requests the gateway did not route */

static ngx_str_t  ngx_http_ai_log_unrouted = ngx_string("");


/* ai_metrics_zone NAME SIZE [labels=N] [history=TIME] [interval=TIME] */

char *
ngx_http_ai_log_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_log_main_conf_t *lmcf = conf;

    size_t                   need;
    time_t                   history, interval;
    ssize_t                  size;
    ngx_str_t               *value, s;
    ngx_int_t                n;
    ngx_uint_t               i, labels;
    ngx_shm_zone_t          *shm_zone;
    ngx_http_ai_log_zone_t  *zone;

    if (lmcf->zone) {
        return "is duplicate";
    }

    value = cf->args->elts;

    size = ngx_parse_size(&value[2]);

    if (size == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\"", &value[2]);
        return NGX_CONF_ERROR;
    }

    labels = 64;
    history = 86400;
    interval = 60;

    for (i = 3; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "labels=", 7) == 0) {
            n = ngx_atoi(value[i].data + 7, value[i].len - 7);

            if (n == NGX_ERROR || n < 1 || n > 65000) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\", 1 to 65000 is expected",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }

            labels = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "history=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;

            history = ngx_parse_time(&s, 1);

            if (history == (time_t) NGX_ERROR || history == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "interval=", 9) == 0) {
            s.data = value[i].data + 9;
            s.len = value[i].len - 9;

            interval = ngx_parse_time(&s, 1);

            if (interval == (time_t) NGX_ERROR || interval == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (history < interval || history / interval > 100000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"history=\" must hold 1 to 100000 intervals");
        return NGX_CONF_ERROR;
    }

    /* the labels, the series and the history */

    need = sizeof(ngx_http_ai_log_shctx_t)
           + (history / interval) * sizeof(ngx_http_ai_log_slot_t)
           + NGX_HTTP_AI_LOG_DIMS * (labels + 1)
             * sizeof(ngx_http_ai_log_label_t)
           + 256 * sizeof(ngx_http_ai_log_series_t)
           + 16 * ngx_pagesize;

    if ((size_t) size < need) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_metrics_zone \"%V\" is too small for "
                           "labels=%ui and %T history intervals: at least "
                           "%uzk is needed", &value[1], labels,
                           history / interval, need / 1024 + 1);
        return NGX_CONF_ERROR;
    }

    zone = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_log_zone_t));
    if (zone == NULL) {
        return NGX_CONF_ERROR;
    }

    zone->labels = labels;
    zone->nslots = history / interval;
    zone->interval = interval;
    zone->name = value[1];

    shm_zone = ngx_shared_memory_add(cf, &value[1], size,
                                     &ngx_http_ai_log_module);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is already used", &value[1]);
        return NGX_CONF_ERROR;
    }

    shm_zone->init = ngx_http_ai_log_init_zone;
    shm_zone->data = zone;

    lmcf->zone = shm_zone;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_ai_log_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_ai_log_zone_t *ozone = data;

    size_t                    len;
    ngx_uint_t                d;
    ngx_slab_pool_t          *shpool;
    ngx_http_ai_log_zone_t   *zone;
    ngx_http_ai_log_shctx_t  *sh;

    zone = shm_zone->data;

    if (ozone) {
        /* a reload: the same zone goes on counting */

        zone->shpool = ozone->shpool;

        if (ozone->sh->layout == NGX_HTTP_AI_LOG_LAYOUT
            && ozone->sh->label_cap == zone->labels
            && ozone->sh->nslots == zone->nslots
            && ozone->sh->interval == zone->interval)
        {
            zone->sh = ozone->sh;
            return NGX_OK;
        }

        ngx_log_error(NGX_LOG_NOTICE, shm_zone->shm.log, 0,
                      "ai_metrics_zone \"%V\": parameters changed, the "
                      "metrics start again", &shm_zone->shm.name);

    } else {
        zone->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

        if (shm_zone->shm.exists) {
            zone->sh = zone->shpool->data;
            return NGX_OK;
        }
    }

    shpool = zone->shpool;

    sh = ngx_slab_calloc(shpool, sizeof(ngx_http_ai_log_shctx_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    sh->layout = NGX_HTTP_AI_LOG_LAYOUT;
    sh->label_cap = zone->labels;
    sh->nslots = zone->nslots;
    sh->interval = zone->interval;
    sh->started = ngx_time();

    ngx_rbtree_init(&sh->rbtree, &sh->sentinel,
                    ngx_http_ai_log_rbtree_insert);
    ngx_queue_init(&sh->queue);

    for (d = 0; d < NGX_HTTP_AI_LOG_DIMS; d++) {
        sh->labels[d] = ngx_slab_calloc(shpool, (zone->labels + 1)
                                        * sizeof(ngx_http_ai_log_label_t));
        if (sh->labels[d] == NULL) {
            return NGX_ERROR;
        }

        ngx_http_ai_log_label_set(&sh->labels[d][0],
                                  (u_char *) NGX_HTTP_AI_LOG_OTHER,
                                  sizeof(NGX_HTTP_AI_LOG_OTHER) - 1);
        sh->nlabels[d] = 1;
    }

    ngx_http_ai_log_label_set(&sh->small[0], (u_char *) NGX_HTTP_AI_LOG_OTHER,
                              sizeof(NGX_HTTP_AI_LOG_OTHER) - 1);
    sh->nsmall = 1;
    sh->nguard = 1;         /* guard[0]: __other__, __other__ */
    sh->nattempts = 1;      /* attempts[0]: __other__, __other__ */

    sh->slots = ngx_slab_calloc(shpool,
                                zone->nslots * sizeof(ngx_http_ai_log_slot_t));
    if (sh->slots == NULL) {
        return NGX_ERROR;
    }

    zone->sh = sh;
    shpool->data = sh;

    /* a full zone is expected: the requests go to __other__, said once */
    shpool->log_nomem = 0;

    len = sizeof(" in ai_metrics_zone \"\"") + shm_zone->shm.name.len;

    shpool->log_ctx = ngx_slab_alloc(shpool, len);
    if (shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(shpool->log_ctx, " in ai_metrics_zone \"%V\"%Z",
                &shm_zone->shm.name);

    return NGX_OK;
}


/* ordered by the key (a hash of the tuple), then by the tuple */

static void
ngx_http_ai_log_rbtree_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t         **p;
    ngx_http_ai_log_series_t   *s, *t;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else {
            s = (ngx_http_ai_log_series_t *) node;
            t = (ngx_http_ai_log_series_t *) temp;

            p = (ngx_memcmp(s->label, t->label, NGX_HTTP_AI_LOG_TUPLE_SIZE) < 0)
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


/* an empty value may have no data: no NULL goes to memcpy() */

static void
ngx_http_ai_log_label_set(ngx_http_ai_log_label_t *label, u_char *data,
    size_t len)
{
    len = ngx_min(len, NGX_HTTP_AI_LOG_LABEL_LEN);

    if (len) {
        ngx_memcpy(label->data, data, len);
    }

    label->len = (u_char) len;
    label->hash = len ? ngx_murmur_hash2(data, len) : 0;
}


/*
 * The id of a label value; 0 (__other__) when the label is full.  A value
 * not seen yet is added only with "add": else NGX_HTTP_AI_LOG_NONE.
 */

static ngx_uint_t
ngx_http_ai_log_label_id(ngx_http_ai_log_label_t *labels, ngx_uint_t *n,
    ngx_uint_t max, ngx_str_t *value, ngx_uint_t add)
{
    size_t      len;
    uint32_t    hash;
    ngx_uint_t  i;

    len = ngx_min(value->len, NGX_HTTP_AI_LOG_LABEL_LEN);
    hash = len ? ngx_murmur_hash2(value->data, len) : 0;

    for (i = 1; i < *n; i++) {
        if (labels[i].hash == hash && labels[i].len == len
            && (len == 0
                || ngx_memcmp(labels[i].data, value->data, len) == 0))
        {
            return i;
        }
    }

    if (!add) {
        return NGX_HTTP_AI_LOG_NONE;
    }

    if (*n > max) {
        return 0;
    }

    ngx_http_ai_log_label_set(&labels[*n], value->data, len);

    return (*n)++;
}


static ngx_http_ai_log_series_t *
ngx_http_ai_log_series(ngx_http_ai_log_zone_t *zone, uint16_t *tuple)
{
    ngx_int_t                  rc;
    ngx_rbtree_key_t           key;
    ngx_rbtree_node_t         *node, *sentinel;
    ngx_http_ai_log_shctx_t   *sh;
    ngx_http_ai_log_series_t  *s;

    sh = zone->sh;

    key = ngx_murmur_hash2((u_char *) tuple, NGX_HTTP_AI_LOG_TUPLE_SIZE);

    node = sh->rbtree.root;
    sentinel = sh->rbtree.sentinel;

    while (node != sentinel) {

        if (key < node->key) {
            node = node->left;
            continue;
        }

        if (key > node->key) {
            node = node->right;
            continue;
        }

        s = (ngx_http_ai_log_series_t *) node;

        rc = ngx_memcmp(tuple, s->label, NGX_HTTP_AI_LOG_TUPLE_SIZE);

        if (rc == 0) {
            return s;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    s = ngx_slab_alloc_locked(zone->shpool, sizeof(ngx_http_ai_log_series_t));
    if (s == NULL) {
        return NULL;
    }

    ngx_memzero(s, sizeof(ngx_http_ai_log_series_t));

    ngx_memcpy(s->label, tuple, NGX_HTTP_AI_LOG_TUPLE_SIZE);
    s->node.key = key;

    ngx_rbtree_insert(&sh->rbtree, &s->node);
    ngx_queue_insert_tail(&sh->queue, &s->queue);
    sh->nseries++;

    return s;
}


ngx_uint_t
ngx_http_ai_log_bucket(ngx_msec_t ms)
{
    ngx_uint_t  i;

    for (i = 0; i < NGX_HTTP_AI_LOG_BUCKETS - 1; i++) {
        if (ms <= ngx_http_ai_log_bounds[i]) {
            break;
        }
    }

    return i;
}


void
ngx_http_ai_log_metrics_add(ngx_http_request_t *r, ngx_shm_zone_t *shm_zone,
    ngx_http_ai_log_record_t *rec)
{
    time_t                     now, start;
    uint16_t                   tuple[NGX_HTTP_AI_LOG_TUPLE];
    uint64_t                   cost, tokens;
    ngx_str_t                 *values[NGX_HTTP_AI_LOG_DIMS];
    ngx_uint_t                 d, lb, tb, ob, m, c, id, rule, overflow, i, t;
    ngx_uint_t                 code;
    ngx_http_ai_ctx_t         *ai;
    ngx_http_ai_log_slot_t    *slot;
    ngx_http_ai_log_zone_t    *zone;
    ngx_http_ai_log_shctx_t   *sh;
    ngx_http_ai_log_series_t  *s;

    static time_t              nomem;

    zone = shm_zone->data;
    sh = zone->sh;
    ai = rec->ai;

    values[NGX_HTTP_AI_LOG_MODEL] = rec->model ? rec->model
                                               : &ngx_http_ai_log_unrouted;
    values[NGX_HTTP_AI_LOG_PROVIDER] = &ai->provider;
    values[NGX_HTTP_AI_LOG_CONSUMER] = &ai->consumer;
    values[NGX_HTTP_AI_LOG_TARGET] = &ai->target;
    values[NGX_HTTP_AI_LOG_ENDPOINT] = &rec->endpoint;

    cost = rec->has_cost ? ngx_http_ai_log_nano(rec->cost) : 0;

    tokens = 0;

    if (ai->usage.found) {
        tokens = rec->tokens[NGX_HTTP_AI_LOG_PROMPT];
        ngx_http_ai_log_add(&tokens, rec->tokens[NGX_HTTP_AI_LOG_COMPLETION]);
    }

    lb = ngx_http_ai_log_bucket(rec->latency);
    tb = ngx_http_ai_log_bucket(rec->ttft);

    for (ob = 0; ob < NGX_HTTP_AI_LOG_OBUCKETS - 1; ob++) {
        if (rec->overhead <= ngx_http_ai_log_obounds[ob]) {
            break;
        }
    }

    if (rec->status >= 500) {
        code = 5;

    } else if (rec->status == NGX_HTTP_CLIENT_CLOSED_REQUEST) {
        code = 4;

    } else if (rec->status == 429) {
        code = 3;

    } else if (rec->status >= 400) {
        code = 2;

    } else if (rec->status >= 300) {
        code = 1;

    } else {
        code = 0;
    }

    now = ngx_time();
    start = now - now % zone->interval;

    overflow = 0;

    ngx_shmtx_lock(&zone->shpool->mutex);

    for (d = 0; d < NGX_HTTP_AI_LOG_DIMS; d++) {

        /*
         * A model value that no upstream served yet does not become a
         * label: it is counted with the requests that were not routed.
         */

        id = ngx_http_ai_log_label_id(sh->labels[d], &sh->nlabels[d],
                                      zone->labels, values[d],
                                      d != NGX_HTTP_AI_LOG_MODEL
                                      || rec->model == NULL
                                      || rec->model_new);

        if (id == NGX_HTTP_AI_LOG_NONE) {
            id = ngx_http_ai_log_label_id(sh->labels[d], &sh->nlabels[d],
                                          zone->labels,
                                          &ngx_http_ai_log_unrouted, 1);
        }

        tuple[d] = (uint16_t) id;

        if (id == 0) {
            overflow = 1;
        }
    }

    tuple[NGX_HTTP_AI_LOG_DIMS] = (uint16_t) ngx_min(rec->status, 999);

    s = ngx_http_ai_log_series(zone, tuple);

    if (s == NULL) {
        s = &sh->other;
        overflow = 1;

        if (nomem != now / 60) {
            nomem = now / 60;
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "ai_metrics_zone \"%V\" is full, requests are "
                          "counted as \"" NGX_HTTP_AI_LOG_OTHER "\"",
                          &shm_zone->shm.name);
        }
    }

    if (overflow) {
        ngx_http_ai_log_add(&sh->overflow, 1);
    }

    ngx_http_ai_log_add(&s->requests, 1);

    if (ai->usage.found) {
        for (t = 0; t < NGX_HTTP_AI_LOG_TOKEN_TYPES; t++) {
            ngx_http_ai_log_add(&s->tokens[t], rec->tokens[t]);
        }
    }

    ngx_http_ai_log_add(&s->cost, cost);

    ngx_http_ai_log_add(&s->duration.count[lb], 1);
    ngx_http_ai_log_add(&s->duration.sum, rec->latency);

    if (ai->first_byte) {
        ngx_http_ai_log_add(&s->ttft.count[tb], 1);
        ngx_http_ai_log_add(&s->ttft.sum, rec->ttft);
    }

    /* the gateway's overhead, the attempts and the fallbacks */

    ngx_http_ai_log_add(&sh->overhead[ob], 1);
    ngx_http_ai_log_add(&sh->overhead_sum, rec->overhead);

    if (rec->trail) {
        ngx_http_ai_log_attempts_add(zone, rec,
                                     tuple[NGX_HTTP_AI_LOG_TARGET]);
    }

    /* the outcomes of the cache, the guard and the limits */

    if (rec->cache.len) {
        id = ngx_http_ai_log_label_id(sh->small, &sh->nsmall,
                                      NGX_HTTP_AI_LOG_SMALL - 1,
                                      &rec->cache, 1);
        ngx_http_ai_log_add(&sh->cache[id], 1);
    }

    if (rec->limit.len) {
        id = ngx_http_ai_log_label_id(sh->small, &sh->nsmall,
                                      NGX_HTTP_AI_LOG_SMALL - 1,
                                      &rec->limit, 1);
        ngx_http_ai_log_add(&sh->limit[id], 1);
    }

    if (rec->guard.len) {
        id = ngx_http_ai_log_label_id(sh->small, &sh->nsmall,
                                      NGX_HTTP_AI_LOG_SMALL - 1,
                                      &rec->guard, 1);
        rule = ngx_http_ai_log_label_id(sh->small, &sh->nsmall,
                                        NGX_HTTP_AI_LOG_SMALL - 1,
                                        &rec->guard_rule, 1);

        for (i = 1; i < sh->nguard; i++) {
            if (sh->guard[i].verdict == id && sh->guard[i].rule == rule) {
                break;
            }
        }

        if (i == sh->nguard) {
            if (i < NGX_HTTP_AI_LOG_SMALL) {
                sh->guard[i].verdict = (uint16_t) id;
                sh->guard[i].rule = (uint16_t) rule;
                sh->nguard++;

            } else {
                i = 0;
            }
        }

        ngx_http_ai_log_add(&sh->guard[i].count, 1);
    }

    /* the history */

    slot = &sh->slots[(now / zone->interval) % zone->nslots];

    if (slot->start != start) {
        ngx_memzero(slot, sizeof(ngx_http_ai_log_slot_t));
        slot->start = start;
    }

    ngx_http_ai_log_add(&slot->requests, 1);
    ngx_http_ai_log_add(&slot->errors, rec->error);
    ngx_http_ai_log_add(&slot->rejected, rec->rejected);

    if (ai->usage.found) {
        ngx_http_ai_log_add(&slot->prompt, rec->tokens[NGX_HTTP_AI_LOG_PROMPT]);
        ngx_http_ai_log_add(&slot->completion,
                            rec->tokens[NGX_HTTP_AI_LOG_COMPLETION]);
    }

    ngx_http_ai_log_add(&slot->cost, cost);

    if (rec->cache.len == 3
        && ngx_strncasecmp(rec->cache.data, (u_char *) "HIT", 3) == 0)
    {
        ngx_http_ai_log_add(&slot->cache_hits, 1);

    } else if (rec->cache.len == 4
               && ngx_strncasecmp(rec->cache.data, (u_char *) "MISS",
                                  4)
                  == 0)
    {
        ngx_http_ai_log_add(&slot->cache_misses, 1);
    }

    ngx_http_ai_log_add(&slot->latency[lb], 1);

    if (ai->first_byte) {
        ngx_http_ai_log_add(&slot->ttft[tb], 1);
    }

    m = tuple[NGX_HTTP_AI_LOG_MODEL];
    m = (m < NGX_HTTP_AI_LOG_TOP) ? m : 0;

    ngx_http_ai_log_add(&slot->model[m][0], 1);
    ngx_http_ai_log_add(&slot->model[m][1], tokens);
    ngx_http_ai_log_add(&slot->model[m][2], cost);

    c = tuple[NGX_HTTP_AI_LOG_CONSUMER];
    c = (c < NGX_HTTP_AI_LOG_TOP) ? c : 0;

    ngx_http_ai_log_add(&slot->consumer[c][0], 1);
    ngx_http_ai_log_add(&slot->consumer[c][1], tokens);
    ngx_http_ai_log_add(&slot->consumer[c][2], cost);

    c = tuple[NGX_HTTP_AI_LOG_PROVIDER];
    c = (c < NGX_HTTP_AI_LOG_TOP_GW) ? c : 0;

    ngx_http_ai_log_add32(&slot->provider[c][0], 1);
    ngx_http_ai_log_add32(&slot->provider[c][1], tokens);

    c = tuple[NGX_HTTP_AI_LOG_TARGET];
    c = (c < NGX_HTTP_AI_LOG_TOP_GW) ? c : 0;

    ngx_http_ai_log_add32(&slot->target[c][0], 1);
    ngx_http_ai_log_add32(&slot->target[c][1], rec->error);
    ngx_http_ai_log_add32(&slot->target[c][2], rec->fallback);

    ngx_http_ai_log_add32(&slot->codes[code], 1);
    ngx_http_ai_log_add32(&slot->attempts, rec->attempts);
    ngx_http_ai_log_add32(&slot->fallbacks, rec->fallback);

    ngx_shmtx_unlock(&zone->shpool->mutex);
}


/*
 * Each attempt of the trail by its target and outcome ("ok" for the one
 * that answered, else why the next one was made); a request answered
 * after a failed attempt is a fallback, by the target that answered.
 * Called with the zone locked.
 */

static void
ngx_http_ai_log_attempts_add(ngx_http_ai_log_zone_t *zone,
    ngx_http_ai_log_record_t *rec, ngx_uint_t target)
{
    ngx_str_t                  ok, *outcome;
    ngx_uint_t                 i, j, t, o;
    ngx_http_ai_attempt_t     *a;
    ngx_http_ai_log_shctx_t   *sh;

    sh = zone->sh;
    a = rec->trail->elts;

    ngx_str_set(&ok, "ok");

    for (i = 0; i < rec->trail->nelts; i++) {

        t = ngx_http_ai_log_label_id(sh->labels[NGX_HTTP_AI_LOG_TARGET],
                                     &sh->nlabels[NGX_HTTP_AI_LOG_TARGET],
                                     zone->labels, &a[i].target, 1);

        outcome = a[i].reason.len ? &a[i].reason : &ok;

        o = ngx_http_ai_log_label_id(sh->small, &sh->nsmall,
                                     NGX_HTTP_AI_LOG_SMALL - 1, outcome, 1);

        for (j = 1; j < sh->nattempts; j++) {
            if (sh->attempts[j].target == t && sh->attempts[j].outcome == o) {
                break;
            }
        }

        if (j == sh->nattempts) {
            if (j < NGX_HTTP_AI_LOG_ATTEMPTS) {
                sh->attempts[j].target = (uint16_t) t;
                sh->attempts[j].outcome = (uint16_t) o;
                sh->nattempts++;

            } else {
                j = 0;
            }
        }

        ngx_http_ai_log_add(&sh->attempts[j].count, 1);
    }

    if (rec->fallback) {
        t = (target < NGX_HTTP_AI_LOG_ATTEMPTS) ? target : 0;
        ngx_http_ai_log_add(&sh->fallbacks[t], 1);
    }
}


/*
 * USD to nano-dollars, for a value the record code kept in range; checked
 * again here, as a conversion of a double out of range is undefined.
 */

static uint64_t
ngx_http_ai_log_nano(double usd)
{
    if (!(usd >= 0 && usd <= NGX_HTTP_AI_LOG_COST_MAX)) {
        return 0;
    }

    return (uint64_t) (usd * 1e9 + 0.5);
}


/* a copy of the aggregates, taken under the lock, formatted without it */

static ngx_int_t
ngx_http_ai_log_snapshot(ngx_http_request_t *r, ngx_http_ai_log_zone_t *zone,
    ngx_http_ai_log_snapshot_t *snap)
{
    size_t                     size;
    ngx_uint_t                 d, n;
    ngx_queue_t               *q;
    ngx_http_ai_log_shctx_t   *sh;
    ngx_http_ai_log_series_t  *s;

    sh = zone->sh;

    /* room for the series that may come while we allocate */

    n = sh->nseries + 64;

    snap->series = ngx_palloc(r->pool,
                              (n + 1) * sizeof(ngx_http_ai_log_series_t));
    if (snap->series == NULL) {
        return NGX_ERROR;
    }

    size = (zone->labels + 1) * sizeof(ngx_http_ai_log_label_t);

    for (d = 0; d < NGX_HTTP_AI_LOG_DIMS; d++) {
        snap->labels[d] = ngx_palloc(r->pool, size);
        if (snap->labels[d] == NULL) {
            return NGX_ERROR;
        }
    }

    ngx_shmtx_lock(&zone->shpool->mutex);

    for (d = 0; d < NGX_HTTP_AI_LOG_DIMS; d++) {
        snap->nlabels[d] = sh->nlabels[d];
        ngx_memcpy(snap->labels[d], sh->labels[d],
                   sh->nlabels[d] * sizeof(ngx_http_ai_log_label_t));
    }

    snap->nseries = 0;

    for (q = ngx_queue_head(&sh->queue);
         q != ngx_queue_sentinel(&sh->queue) && snap->nseries < n;
         q = ngx_queue_next(q))
    {
        s = ngx_queue_data(q, ngx_http_ai_log_series_t, queue);
        snap->series[snap->nseries++] = *s;
    }

    if (sh->other.requests) {
        snap->series[snap->nseries++] = sh->other;
    }

    snap->overflow = sh->overflow;
    snap->nsmall = sh->nsmall;
    ngx_memcpy(snap->small, sh->small, sizeof(sh->small));
    ngx_memcpy(snap->cache, sh->cache, sizeof(sh->cache));
    ngx_memcpy(snap->limit, sh->limit, sizeof(sh->limit));
    snap->nguard = sh->nguard;
    ngx_memcpy(snap->guard, sh->guard, sizeof(sh->guard));
    snap->nattempts = sh->nattempts;
    ngx_memcpy(snap->attempts, sh->attempts, sizeof(sh->attempts));
    ngx_memcpy(snap->fallbacks, sh->fallbacks, sizeof(sh->fallbacks));
    ngx_memcpy(snap->overhead, sh->overhead, sizeof(sh->overhead));
    snap->overhead_sum = sh->overhead_sum;
    snap->inflight = sh->inflight;
    snap->streams = sh->streams;

    ngx_shmtx_unlock(&zone->shpool->mutex);

    return NGX_OK;
}


ngx_int_t
ngx_http_ai_log_metrics_handler(ngx_http_request_t *r)
{
    u_char                       *p, **sets;
    ngx_int_t                     rc;
    ngx_uint_t                    i, f, d, other;
    ngx_http_ai_log_out_t         o;
    ngx_http_ai_log_zone_t       *zone;
    ngx_http_ai_log_series_t     *s;
    ngx_http_ai_log_snapshot_t    snap;
    ngx_http_ai_log_main_conf_t  *lmcf;

    rc = ngx_http_ai_log_endpoint_check(r);
    if (rc != NGX_OK) {
        return rc;
    }

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_ai_log_module);
    zone = lmcf->zone->data;

    if (ngx_http_ai_log_snapshot(r, zone, &snap) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the label set of each series, escaped once */

    sets = ngx_palloc(r->pool, (snap.nseries + 1) * sizeof(u_char *));
    if (sets == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; i < snap.nseries; i++) {
        s = &snap.series[i];

        p = ngx_pnalloc(r->pool, NGX_HTTP_AI_LOG_DIMS
                                 * (16 + 4 * NGX_HTTP_AI_LOG_LABEL_LEN * 2)
                                 + 32);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        sets[i] = p;
        other = (s->status == 0);

        for (d = 0; d < NGX_HTTP_AI_LOG_DIMS; d++) {
            p = ngx_sprintf(p, "%s%s=\"", d ? "\"," : "",
                            ngx_http_ai_log_dim_names[d]);
            p = ngx_http_ai_log_prom_value(p, &snap.labels[d][s->label[d]]);

            if (s->label[d]) {
                other = 0;
            }
        }

        if (s == &snap.series[snap.nseries - 1] && other) {
            p = ngx_sprintf(p, "\",status=\"" NGX_HTTP_AI_LOG_OTHER "\"%Z");

        } else {
            p = ngx_sprintf(p, "\",status=\"%03ud\"%Z", s->status);
        }
    }

    ngx_memzero(&o, sizeof(ngx_http_ai_log_out_t));
    o.pool = r->pool;
    o.last = &o.out;

    for (f = 0; f < 5; f++) {
        if (ngx_http_ai_log_prom_family(&o, &snap, sets, f) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (ngx_http_ai_log_prom_small(&o, &snap) != NGX_OK
        || ngx_http_ai_log_prom_gateway(&o, &snap) != NGX_OK
        || ngx_http_ai_log_prom_counters(r, &o) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the other modules' sources, last: their buffers follow ours */

    if (ngx_http_ai_metrics(r, &o.last) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_ai_log_send(r, &o,
                               "text/plain; version=0.0.4; charset=utf-8",
                               sizeof("text/plain; version=0.0.4; "
                                      "charset=utf-8") - 1);
}


/*
 * A label value: backslash, quote and line feed escaped; invalid UTF-8
 * becomes U+FFFD and a sequence cut at the end is dropped.
 */

static u_char *
ngx_http_ai_log_prom_value(u_char *p, ngx_http_ai_log_label_t *label)
{
    u_char    *s, *end, *next;
    uint32_t   u;

    s = label->data;
    end = s + label->len;

    while (s < end) {

        if (*s < 0x80) {
            if (*s == '\\' || *s == '"') {
                *p++ = '\\';
                *p++ = *s;

            } else if (*s == '\n') {
                *p++ = '\\';
                *p++ = 'n';

            } else {
                *p++ = *s;
            }

            s++;
            continue;
        }

        next = s;
        u = ngx_utf8_decode(&next, end - s);

        if (u == 0xfffffffe) {
            break;
        }

        if (u > 0x10ffff || (u >= 0xd800 && u <= 0xdfff)) {
            p = ngx_cpymem(p, "\xef\xbf\xbd", 3);
            s++;
            continue;
        }

        while (s < next) {
            *p++ = *s++;
        }
    }

    return p;
}


static ngx_int_t
ngx_http_ai_log_prom_family(ngx_http_ai_log_out_t *o,
    ngx_http_ai_log_snapshot_t *snap, u_char **sets, ngx_uint_t family)
{
    u_char                    *p;
    uint64_t                   n, count;
    ngx_uint_t                 i, t, b;
    ngx_http_ai_log_hist_t    *h;
    ngx_http_ai_log_series_t  *s;

    static char  *heads[] = {
        "# HELP ai_requests_total AI requests by model, provider, consumer, "
        "target, endpoint and status.\n# TYPE ai_requests_total counter\n",

        "# HELP ai_tokens_total Tokens reported by the providers, by type "
        "(prompt, completion, cached, reasoning).\n"
        "# TYPE ai_tokens_total counter\n",

        "# HELP ai_cost_usd_total Cost in US dollars, from the ai_price "
        "table.\n# TYPE ai_cost_usd_total counter\n",

        "# HELP ai_request_duration_seconds Time from the request to the "
        "last byte of the response.\n"
        "# TYPE ai_request_duration_seconds histogram\n",

        "# HELP ai_time_to_first_token_seconds Time from the request to the "
        "first byte of the response body.\n"
        "# TYPE ai_time_to_first_token_seconds histogram\n"
    };

    static char  *names[] = {
        NULL, NULL, NULL,
        "ai_request_duration_seconds", "ai_time_to_first_token_seconds"
    };

    p = ngx_http_ai_log_out(o, 512);
    if (p == NULL) {
        return NGX_ERROR;
    }

    o->buf->last = ngx_sprintf(p, "%s", heads[family]);

    for (i = 0; i < snap->nseries; i++) {
        s = &snap->series[i];

        /* a line: the label set, a few names, 20 digits */
        p = ngx_http_ai_log_out(o, ngx_strlen(sets[i]) + 128);
        if (p == NULL) {
            return NGX_ERROR;
        }

        switch (family) {

        case 0:
            p = ngx_sprintf(p, "ai_requests_total{%s} %uL\n", sets[i],
                            s->requests);
            break;

        case 1:
            o->buf->last = p;

            for (t = 0; t < NGX_HTTP_AI_LOG_TOKEN_TYPES; t++) {
                p = ngx_http_ai_log_out(o, ngx_strlen(sets[i]) + 128);
                if (p == NULL) {
                    return NGX_ERROR;
                }

                o->buf->last = ngx_sprintf(p,
                                          "ai_tokens_total{%s,type=\"%s\"} "
                                          "%uL\n", sets[i],
                                          ngx_http_ai_log_token_types[t],
                                          s->tokens[t]);
            }

            continue;

        case 2:
            p = ngx_sprintf(p, "ai_cost_usd_total{%s} %uL.%09uL\n", sets[i],
                            s->cost / 1000000000, s->cost % 1000000000);
            break;

        default:
            h = (family == 3) ? &s->duration : &s->ttft;
            count = 0;
            o->buf->last = p;

            for (b = 0; b < NGX_HTTP_AI_LOG_BUCKETS; b++) {
                ngx_http_ai_log_add(&count, h->count[b]);

                p = ngx_http_ai_log_out(o, ngx_strlen(sets[i]) + 128);
                if (p == NULL) {
                    return NGX_ERROR;
                }

                o->buf->last = ngx_sprintf(p, "%s_bucket{%s,le=\"%s\"} "
                                           "%uL\n", names[family], sets[i],
                                           ngx_http_ai_log_le[b], count);
            }

            p = ngx_http_ai_log_out(o, 2 * ngx_strlen(sets[i]) + 256);
            if (p == NULL) {
                return NGX_ERROR;
            }

            n = h->sum;

            p = ngx_sprintf(p, "%s_sum{%s} %uL.%03uL\n%s_count{%s} %uL\n",
                            names[family], sets[i], n / 1000, n % 1000,
                            names[family], sets[i], count);
        }

        o->buf->last = p;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_log_prom_small(ngx_http_ai_log_out_t *o,
    ngx_http_ai_log_snapshot_t *snap)
{
    u_char      *p;
    ngx_uint_t   i;

    /* at most 3 * 32 lines of two escaped labels */

    p = ngx_http_ai_log_out(o, 4096 + 3 * NGX_HTTP_AI_LOG_SMALL
                               * (128 + 2 * 4 * NGX_HTTP_AI_LOG_LABEL_LEN));
    if (p == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(p, "# HELP ai_cache_requests_total Requests by the "
                    "cache's status (HIT, MISS...).\n"
                    "# TYPE ai_cache_requests_total counter\n");

    for (i = 0; i < snap->nsmall; i++) {
        if (snap->cache[i]) {
            p = ngx_cpymem(p, "ai_cache_requests_total{cache_status=\"", 38);
            p = ngx_http_ai_log_prom_value(p, &snap->small[i]);
            p = ngx_sprintf(p, "\"} %uL\n", snap->cache[i]);
        }
    }

    p = ngx_sprintf(p, "# HELP ai_guard_verdicts_total Requests by the "
                    "guard's verdict and rule.\n"
                    "# TYPE ai_guard_verdicts_total counter\n");

    for (i = 0; i < snap->nguard; i++) {
        if (snap->guard[i].count) {
            p = ngx_cpymem(p, "ai_guard_verdicts_total{verdict=\"", 33);
            p = ngx_http_ai_log_prom_value(p,
                                       &snap->small[snap->guard[i].verdict]);
            p = ngx_cpymem(p, "\",rule=\"", 8);
            p = ngx_http_ai_log_prom_value(p,
                                       &snap->small[snap->guard[i].rule]);
            p = ngx_sprintf(p, "\"} %uL\n", snap->guard[i].count);
        }
    }

    p = ngx_sprintf(p, "# HELP ai_rate_limit_total Requests by the token "
                    "limit's outcome.\n"
                    "# TYPE ai_rate_limit_total counter\n");

    for (i = 0; i < snap->nsmall; i++) {
        if (snap->limit[i]) {
            p = ngx_cpymem(p, "ai_rate_limit_total{limit_status=\"", 34);
            p = ngx_http_ai_log_prom_value(p, &snap->small[i]);
            p = ngx_sprintf(p, "\"} %uL\n", snap->limit[i]);
        }
    }

    p = ngx_sprintf(p, "# HELP ai_metrics_label_overflow_total Requests "
                    "counted with \"" NGX_HTTP_AI_LOG_OTHER "\" labels "
                    "(a label cap or the zone was full).\n"
                    "# TYPE ai_metrics_label_overflow_total counter\n"
                    "ai_metrics_label_overflow_total %uL\n"
                    "# HELP ai_metrics_series Series kept in the metrics "
                    "zone.\n# TYPE ai_metrics_series gauge\n"
                    "ai_metrics_series %ui\n",
                    snap->overflow, snap->nseries);

    o->buf->last = p;

    return NGX_OK;
}


/*
 * The gateway's own families: the attempts and fallbacks by target, the
 * requests and streams in flight, the overhead histogram, the build.
 */

static ngx_int_t
ngx_http_ai_log_prom_gateway(ngx_http_ai_log_out_t *o,
    ngx_http_ai_log_snapshot_t *snap)
{
    u_char                   *p;
    uint64_t                  count;
    ngx_uint_t                i, b;
    ngx_http_ai_log_label_t  *targets;

    targets = snap->labels[NGX_HTTP_AI_LOG_TARGET];

    p = ngx_http_ai_log_out(o, 8192 + 2 * NGX_HTTP_AI_LOG_ATTEMPTS
                               * (128 + 2 * 4 * NGX_HTTP_AI_LOG_LABEL_LEN));
    if (p == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(p, "# HELP ai_upstream_attempts_total Upstream attempts "
                    "by target and outcome (ok, or why the next attempt "
                    "was made).\n"
                    "# TYPE ai_upstream_attempts_total counter\n");

    for (i = 0; i < snap->nattempts; i++) {
        if (snap->attempts[i].count == 0
            || snap->attempts[i].target
               >= snap->nlabels[NGX_HTTP_AI_LOG_TARGET])
        {
            continue;
        }

        p = ngx_cpymem(p, "ai_upstream_attempts_total{target=\"",
                       sizeof("ai_upstream_attempts_total{target=\"") - 1);
        p = ngx_http_ai_log_prom_value(p, &targets[snap->attempts[i].target]);
        p = ngx_cpymem(p, "\",outcome=\"", sizeof("\",outcome=\"") - 1);
        p = ngx_http_ai_log_prom_value(p,
                                    &snap->small[snap->attempts[i].outcome]);
        p = ngx_sprintf(p, "\"} %uL\n", snap->attempts[i].count);
    }

    p = ngx_sprintf(p, "# HELP ai_fallbacks_total Requests answered after "
                    "a failed attempt, by the target that answered.\n"
                    "# TYPE ai_fallbacks_total counter\n");

    for (i = 0; i < NGX_HTTP_AI_LOG_ATTEMPTS; i++) {
        if (snap->fallbacks[i] == 0
            || i >= snap->nlabels[NGX_HTTP_AI_LOG_TARGET])
        {
            continue;
        }

        p = ngx_cpymem(p, "ai_fallbacks_total{target=\"",
                       sizeof("ai_fallbacks_total{target=\"") - 1);
        p = ngx_http_ai_log_prom_value(p, &targets[i]);
        p = ngx_sprintf(p, "\"} %uL\n", snap->fallbacks[i]);
    }

    p = ngx_sprintf(p, "# HELP ai_requests_in_flight AI requests between "
                    "their first stage and their end.\n"
                    "# TYPE ai_requests_in_flight gauge\n"
                    "ai_requests_in_flight %uA\n"
                    "# HELP ai_streams_in_flight Streamed AI requests in "
                    "flight.\n# TYPE ai_streams_in_flight gauge\n"
                    "ai_streams_in_flight %uA\n"
                    "# HELP ai_gateway_overhead_seconds Time spent in the "
                    "gateway, not waiting for an upstream.\n"
                    "# TYPE ai_gateway_overhead_seconds histogram\n",
                    snap->inflight, snap->streams);

    count = 0;

    for (b = 0; b < NGX_HTTP_AI_LOG_OBUCKETS; b++) {
        ngx_http_ai_log_add(&count, snap->overhead[b]);

        p = ngx_sprintf(p, "ai_gateway_overhead_seconds_bucket{le=\"%s\"} "
                        "%uL\n", ngx_http_ai_log_ole[b], count);
    }

    p = ngx_sprintf(p, "ai_gateway_overhead_seconds_sum %uL.%03uL\n"
                    "ai_gateway_overhead_seconds_count %uL\n"
                    "# HELP ai_build_info The gateway's version.\n"
                    "# TYPE ai_build_info gauge\n"
                    "ai_build_info{version=\"" NGX_HTTP_AI_LOG_VERSION "\","
                    "nginx_version=\"" NGINX_VERSION "\",core_api=\"%ui\"} 1\n",
                    snap->overhead_sum / 1000, snap->overhead_sum % 1000,
                    count, (ngx_uint_t) NGX_HTTP_AI_CORE_API);

    o->buf->last = p;

    return NGX_OK;
}


/* the core's counters, whichever module registered them */

ngx_int_t
ngx_http_ai_log_prom_counters(ngx_http_request_t *r, ngx_http_ai_log_out_t *o)
{
    u_char                 *p, *seen;
    size_t                  len, blen;
    ngx_uint_t              n, i, j;
    ngx_http_ai_counter_t  *c, *c2, *first;

    first = ngx_http_ai_counters(r);

    n = 0;

    for (c = first; c; c = c->next) {
        n++;
    }

    if (n == 0) {
        return NGX_OK;
    }

    seen = ngx_pcalloc(r->pool, n);
    if (seen == NULL) {
        return NGX_ERROR;
    }

    for (c = first, i = 0; c; c = c->next, i++) {

        if (seen[i]) {
            continue;
        }

        /* the family: the name before its labels */

        p = ngx_strlchr(c->name.data, c->name.data + c->name.len, '{');
        blen = p ? (size_t) (p - c->name.data) : c->name.len;

        len = 2 * blen + c->help.len + 64;

        p = ngx_http_ai_log_out(o, len);
        if (p == NULL) {
            return NGX_ERROR;
        }

        o->buf->last = ngx_sprintf(p, "# HELP %*s %V\n# TYPE %*s counter\n",
                                   blen, c->name.data, &c->help,
                                   blen, c->name.data);

        for (c2 = c, j = i; c2; c2 = c2->next, j++) {

            if (seen[j]
                || c2->name.len < blen
                || ngx_strncmp(c2->name.data, c->name.data, blen) != 0
                || (c2->name.len > blen && c2->name.data[blen] != '{'))
            {
                continue;
            }

            seen[j] = 1;

            p = ngx_http_ai_log_out(o, c2->name.len + 32);
            if (p == NULL) {
                return NGX_ERROR;
            }

            o->buf->last = ngx_sprintf(p, "%V %uA\n", &c2->name,
                                       *c2->value);
        }
    }

    return NGX_OK;
}


/* room for size bytes at o->buf->last; the caller moves last */

u_char *
ngx_http_ai_log_out(ngx_http_ai_log_out_t *o, size_t size)
{
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    if (o->buf && (size_t) (o->buf->end - o->buf->last) >= size) {
        return o->buf->last;
    }

    b = ngx_create_temp_buf(o->pool, ngx_max(size, 32768));
    if (b == NULL) {
        return NULL;
    }

    cl = ngx_alloc_chain_link(o->pool);
    if (cl == NULL) {
        return NULL;
    }

    cl->buf = b;
    cl->next = NULL;

    *o->last = cl;
    o->last = &cl->next;
    o->buf = b;

    return b->last;
}


ngx_int_t
ngx_http_ai_log_send(ngx_http_request_t *r, ngx_http_ai_log_out_t *o,
    const char *type, size_t type_len)
{
    off_t             len;
    ngx_int_t         rc;
    ngx_chain_t      *cl;
    ngx_table_elt_t  *h;

    if (o->out == NULL && ngx_http_ai_log_out(o, 1) == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = 0;

    for (cl = o->out; cl; cl = cl->next) {
        len += cl->buf->last - cl->buf->pos;

        if (cl->next == NULL) {
            cl->buf->last_buf = (r == r->main) ? 1 : 0;
            cl->buf->last_in_chain = 1;
        }
    }

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = len;
    r->headers_out.content_type.data = (u_char *) type;
    r->headers_out.content_type.len = type_len;
    r->headers_out.content_type_len = type_len;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

#if (nginx_version >= 1023000)
    h->next = NULL;
#endif

    h->hash = 1;
    ngx_str_set(&h->key, "Cache-Control");
    ngx_str_set(&h->value, "no-store");

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    return ngx_http_output_filter(r, o->out);
}


ngx_int_t
ngx_http_ai_log_endpoint_check(ngx_http_request_t *r)
{
    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    return ngx_http_discard_request_body(r);
}
