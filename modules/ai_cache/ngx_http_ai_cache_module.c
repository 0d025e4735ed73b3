
/*
 * Copyright (C) AI Gateway authors
 *
 * ngx_http_ai_cache_module: the exact cache of AI answers, in any store of
 * the core (shared memory, Redis):
 *
 *     ai_cache STORE | off;
 *     ai_cache_ttl TIME;                      (1h)
 *     ai_cache_scope shared | consumer;       (shared)
 *     ai_cache_namespace VALUE;
 *     ai_cache_max_size SIZE;                 (1m: an entry's largest)
 *     ai_cache_last_messages N;               (0: all of them)
 *     ai_cache_ignore_system on | off;        (off)
 *     ai_cache_temperature_max NUMBER;        (any)
 *     ai_cache_lock on | off [timeout=TIME];  (on, 10s)
 *     ai_cache_semantic ZONE embeddings=URI [threshold=N] ... | off;
 *     ai_cache_semantic_zone NAME size=SIZE dim=N ...;       (http)
 *
 * The core's CACHE stage (after the guard and the limits) looks the
 * request's key up (ngx_http_ai_cache_key.c): a hit is the stored answer
 * rendered by the core's format layer in the door's format, streamed or
 * whole, without an upstream; a miss goes on, its answer kept as it passes
 * (ngx_http_ai_cache_capture.c) and stored by the completion hook if it
 * was complete and successful.  While a miss is under way, identical
 * requests wait for its answer (a lock in the store: the entry's own key
 * ADDed with a short value and a TTL, so across workers and nodes, and
 * the answer's SET takes its place), then are hits, or go on themselves
 * after the lock's timeout.  The lookup is that ADD, which gives the
 * value present instead (the store's ADD with op->get): a miss is two
 * operations on one key, the lock and the answer, a hit one.  Clients
 * steer it with headers: X-AI-Cache: bypass | no-store, X-AI-Cache-TTL:
 * SECONDS, X-AI-Cache-Namespace: NAME, and Cache-Control: no-cache (look
 * up nothing) / no-store (store nothing).
 * Answers carry X-AI-Cache-Status (HIT, MISS, BYPASS) and, on a hit, Age;
 * the outcome "cache" says the same.
 */


#include "ngx_http_ai_cache.h"


#define NGX_HTTP_AI_CACHE_START         0
#define NGX_HTTP_AI_CACHE_LOOKED        1
#define NGX_HTTP_AI_CACHE_LOCKING       2
#define NGX_HTTP_AI_CACHE_WAITING       3
#define NGX_HTTP_AI_CACHE_SEMANTIC      5
#define NGX_HTTP_AI_CACHE_SIMILAR       6

#define NGX_HTTP_AI_CACHE_POLL          50


static ngx_int_t ngx_http_ai_cache_stage(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ai);
static ngx_int_t ngx_http_ai_cache_start(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ai, ngx_http_ai_cache_loc_conf_t *clcf,
    ngx_http_ai_cache_ctx_t *ctx);
static ngx_uint_t ngx_http_ai_cache_stored(ngx_str_t *value);
static ngx_int_t ngx_http_ai_cache_op(ngx_http_request_t *r,
    ngx_http_ai_cache_ctx_t *ctx, ngx_uint_t type, ngx_str_t *key);
static void ngx_http_ai_cache_op_done(ngx_http_ai_store_op_t *op);
static ngx_int_t ngx_http_ai_cache_hit(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ai, ngx_http_ai_cache_ctx_t *ctx, ngx_str_t *entry);
static ngx_int_t ngx_http_ai_cache_miss(ngx_http_request_t *r,
    ngx_http_ai_cache_ctx_t *ctx, ngx_uint_t status);
static void ngx_http_ai_cache_poll(ngx_event_t *ev);
static void ngx_http_ai_cache_cleanup(void *data);
static void ngx_http_ai_cache_done(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ai);
static ngx_int_t ngx_http_ai_cache_detached(ngx_http_request_t *r,
    ngx_http_ai_cache_loc_conf_t *clcf, ngx_uint_t type, ngx_str_t *key,
    ngx_str_t *answer, ngx_msec_t ttl);
static ngx_int_t ngx_http_ai_cache_status(ngx_http_request_t *r,
    ngx_http_ai_cache_ctx_t *ctx);

static char *ngx_http_ai_cache(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ai_cache_lock(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ai_cache_temperature(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_ai_cache_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_ai_cache_postconfiguration(ngx_conf_t *cf);
static void *ngx_http_ai_cache_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_ai_cache_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);


static ngx_conf_enum_t  ngx_http_ai_cache_scopes[] = {
    { ngx_string("shared"), 0 },
    { ngx_string("consumer"), 1 },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_ai_cache_commands[] = {

    { ngx_string("ai_cache"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_cache,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_cache_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_cache_loc_conf_t, ttl),
      NULL },

    { ngx_string("ai_cache_scope"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_cache_loc_conf_t, per_consumer),
      &ngx_http_ai_cache_scopes },

    { ngx_string("ai_cache_namespace"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_cache_loc_conf_t, namespace),
      NULL },

    { ngx_string("ai_cache_max_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_cache_loc_conf_t, max_size),
      NULL },

    { ngx_string("ai_cache_last_messages"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_cache_loc_conf_t, last_messages),
      NULL },

    { ngx_string("ai_cache_ignore_system"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_cache_loc_conf_t, ignore_system),
      NULL },

    { ngx_string("ai_cache_temperature_max"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_cache_temperature,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_cache_semantic"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_ai_cache_semantic,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_cache_semantic_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_ai_cache_semantic_zone,
      0,
      0,
      NULL },

    { ngx_string("ai_cache_lock"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_ai_cache_lock,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_ai_cache_module_ctx = {
    ngx_http_ai_cache_preconfiguration,    /* preconfiguration */
    ngx_http_ai_cache_postconfiguration,   /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_ai_cache_create_loc_conf,     /* create location configuration */
    ngx_http_ai_cache_merge_loc_conf       /* merge location configuration */
};


ngx_module_t  ngx_http_ai_cache_module = {
    NGX_MODULE_V1,
    &ngx_http_ai_cache_module_ctx,         /* module context */
    ngx_http_ai_cache_commands,            /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_str_t  ngx_http_ai_cache_outcome = ngx_string("cache");
static ngx_str_t  ngx_http_ai_cache_status_key =
    ngx_string("X-AI-Cache-Status");
static ngx_str_t  ngx_http_ai_cache_age_key = ngx_string("Age");
static ngx_str_t  ngx_http_ai_cache_match_key =
    ngx_string("X-AI-Cache-Match");

static ngx_str_t  ngx_http_ai_cache_statuses[] = {
    ngx_null_string,
    ngx_string("MISS"),
    ngx_string("HIT"),
    ngx_string("BYPASS")
};


/* the CACHE stage */

static ngx_int_t
ngx_http_ai_cache_stage(ngx_http_request_t *r, ngx_http_ai_ctx_t *ai)
{
    ngx_int_t                      rc;
    ngx_http_ai_store_op_t        *op;
    ngx_http_ai_cache_ctx_t       *ctx;
    ngx_http_ai_cache_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_cache_module);

    if (!clcf->enabled) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_cache_module);

    if (ctx == NULL) {
        ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_ai_cache_ctx_t));
        if (ctx == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx->request = r;
        ctx->max_size = clcf->max_size;
        ngx_http_set_ctx(r, ctx, ngx_http_ai_cache_module);

        rc = ngx_http_ai_cache_start(r, ai, clcf, ctx);

        if (rc != NGX_OK) {
            return rc;
        }
    }

    if (ctx->waiting) {
        return NGX_AGAIN;
    }

    op = ctx->op;

    switch (ctx->phase) {

    case NGX_HTTP_AI_CACHE_LOOKED:

        if (op->rc == NGX_OK && ngx_http_ai_cache_stored(&op->value)) {
            return ngx_http_ai_cache_hit(r, ai, ctx, &op->value);
        }

        if (clcf->semantic) {
            /* a question asked before in other words */
            ctx->phase = NGX_HTTP_AI_CACHE_SEMANTIC;
            return ngx_http_ai_cache_stage(r, ai);
        }

        goto lock;

    case NGX_HTTP_AI_CACHE_SEMANTIC:

        rc = ngx_http_ai_cache_semantic_lookup(r, ai, clcf, ctx);

        if (rc == NGX_OK) {
            ctx->phase = NGX_HTTP_AI_CACHE_SIMILAR;

            rc = ngx_http_ai_cache_op(r, ctx, NGX_HTTP_AI_STORE_GET,
                                      &ctx->similar);
            if (rc != NGX_OK) {
                return rc;
            }

            return ngx_http_ai_cache_stage(r, ai);
        }

        if (rc != NGX_DECLINED) {
            return rc;
        }

        goto lock;

    case NGX_HTTP_AI_CACHE_SIMILAR:

        if (op->rc == NGX_OK && ngx_http_ai_cache_stored(&op->value)) {
            return ngx_http_ai_cache_hit(r, ai, ctx, &op->value);
        }

        /* the entry it pointed to is gone */
        ngx_http_ai_cache_semantic_forget(r, ctx);
        ngx_str_null(&ctx->match);

    lock:

        if (!clcf->lock || ctx->no_store) {
            return ngx_http_ai_cache_miss(r, ctx, NGX_HTTP_AI_CACHE_MISS);
        }

        /*
         * the first of identical requests takes the lock; an answer
         * stored meanwhile is a hit
         */

        ctx->phase = NGX_HTTP_AI_CACHE_LOCKING;

        rc = ngx_http_ai_cache_op(r, ctx, NGX_HTTP_AI_STORE_ADD,
                                  &ctx->entry);

        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_ai_cache_stage(r, ai);

    case NGX_HTTP_AI_CACHE_LOCKING:

        if (op->rc == NGX_OK) {
            ctx->locked = 1;
            return ngx_http_ai_cache_miss(r, ctx, NGX_HTTP_AI_CACHE_MISS);
        }

        if (op->rc == NGX_ERROR) {
            return ngx_http_ai_cache_miss(r, ctx, NGX_HTTP_AI_CACHE_MISS);
        }

        /* present: an answer, or the lock of another one under way */

        if (ngx_http_ai_cache_stored(&op->value)) {
            return ngx_http_ai_cache_hit(r, ai, ctx, &op->value);
        }

        ngx_http_ai_store_unpin(op);

        if (ctx->waited >= clcf->lock_timeout) {
            /* the first one did not answer in time: on our own */
            return ngx_http_ai_cache_miss(r, ctx, NGX_HTTP_AI_CACHE_MISS);
        }

        /* its answer is waited for */

        ctx->phase = NGX_HTTP_AI_CACHE_WAITING;
        ngx_add_timer(&ctx->wait, NGX_HTTP_AI_CACHE_POLL);
        ctx->waited += NGX_HTTP_AI_CACHE_POLL;

        return NGX_AGAIN;

    case NGX_HTTP_AI_CACHE_WAITING:

        /*
         * the timer fired: look again, and take the lock if it is gone,
         * as the first one may have ended without an answer (an error,
         * its client gone, not stored): then this one goes on in its
         * place, the others wait
         */

        ctx->phase = NGX_HTTP_AI_CACHE_LOCKING;

        rc = ngx_http_ai_cache_op(r, ctx, NGX_HTTP_AI_STORE_ADD, &ctx->entry);

        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_ai_cache_stage(r, ai);

    default:
        return NGX_DECLINED;
    }
}


/* the key and the client's wishes; the first lookup */

static ngx_int_t
ngx_http_ai_cache_start(ngx_http_request_t *r, ngx_http_ai_ctx_t *ai,
    ngx_http_ai_cache_loc_conf_t *clcf, ngx_http_ai_cache_ctx_t *ctx)
{
    u_char              *p;
    cJSON               *t;
    ngx_int_t            n;
    ngx_table_elt_t     *h;
    ngx_pool_cleanup_t  *cln;

    ctx->ttl = clcf->ttl;

    if ((!ai->req.bare && ngx_http_ai_request_tree(&ai->req) == NULL)
        || ai->req.endpoint == NGX_HTTP_AI_EP_MODELS
        || ai->req.endpoint == NGX_HTTP_AI_EP_UNKNOWN
        || ai->req.endpoint == NGX_HTTP_AI_EP_COUNT_TOKENS)
    {
        return NGX_DECLINED;
    }

    if (ai->req.endpoint == NGX_HTTP_AI_EP_RESPONSES
        && !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(
                              ngx_http_ai_request_tree(&ai->req), "store")))
    {
        /*
         * the provider keeps the response it makes, to be read and
         * continued by its id: a hit would have no such id
         */

        ctx->no_store = 1;
        return ngx_http_ai_cache_miss(r, ctx, NGX_HTTP_AI_CACHE_BYPASS);
    }

    ctx->no_store =
        ngx_http_ai_cache_header(r, "x-ai-cache", "no-store") != NULL
        || ngx_http_ai_cache_header(r, "cache-control", "no-store") != NULL;

    h = ngx_http_ai_cache_header(r, "x-ai-cache-ttl", NULL);

    if (h) {
        n = ngx_atoi(h->value.data, h->value.len);

        if (n > 0 && n < 365 * 86400) {
            ctx->ttl = ngx_min((ngx_msec_t) n * 1000, clcf->ttl);
        }
    }

    if (ngx_http_ai_cache_key(r, ai, clcf, ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_pnalloc(r->pool, 4 + NGX_HTTP_AI_CACHE_KEY_LEN);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->entry.data = p;
    p = ngx_cpymem(p, "aic:", 4);
    p = ngx_cpymem(p, ctx->key, NGX_HTTP_AI_CACHE_KEY_LEN);
    ctx->entry.len = p - ctx->entry.data;

    /* a bare request has no temperature */

    t = ai->req.bare ? NULL
                     : cJSON_GetObjectItemCaseSensitive(
                           ngx_http_ai_request_tree(&ai->req), "temperature");

    if (ngx_http_ai_cache_header(r, "x-ai-cache", "bypass") != NULL
        || ngx_http_ai_cache_header(r, "cache-control", "no-cache") != NULL
        || (clcf->temperature_max >= 0 && cJSON_IsNumber(t)
            && t->valuedouble > clcf->temperature_max))
    {
        return ngx_http_ai_cache_miss(r, ctx, NGX_HTTP_AI_CACHE_BYPASS);
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_ai_cache_cleanup;
    cln->data = ctx;

    ctx->wait.handler = ngx_http_ai_cache_poll;
    ctx->wait.data = ctx;
    ctx->wait.log = r->connection->log;

    if (clcf->lock && !ctx->no_store && !clcf->semantic) {
        /* the lookup and the lock in one operation */
        ctx->phase = NGX_HTTP_AI_CACHE_LOCKING;
        return ngx_http_ai_cache_op(r, ctx, NGX_HTTP_AI_STORE_ADD,
                                    &ctx->entry);
    }

    ctx->phase = NGX_HTTP_AI_CACHE_LOOKED;

    return ngx_http_ai_cache_op(r, ctx, NGX_HTTP_AI_STORE_GET, &ctx->entry);
}


/* an entry's value that is an answer, not a lock */

static ngx_uint_t
ngx_http_ai_cache_stored(ngx_str_t *value)
{
    return value->len > NGX_HTTP_AI_CACHE_HEADER
           && ngx_strncmp(value->data, NGX_HTTP_AI_CACHE_MAGIC, 4) == 0;
}


/* an operation bound to r: NGX_OK when done (ctx->op), or NGX_AGAIN */

static ngx_int_t
ngx_http_ai_cache_op(ngx_http_request_t *r, ngx_http_ai_cache_ctx_t *ctx,
    ngx_uint_t type, ngx_str_t *key)
{
    ngx_int_t                      rc;
    ngx_http_ai_store_op_t        *op;
    ngx_http_ai_cache_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_cache_module);

    op = ngx_http_ai_store_op(clcf->store, r, r->connection->log);
    if (op == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    op->type = type;
    op->key = *key;
    op->pool = r->pool;
    op->handler = ngx_http_ai_cache_op_done;
    op->data = ctx;

    /* a hit is read in place, without a copy (shm), until the request
     * ends: its rendering is what the client gets */
    op->pin = 1;

    if (type == NGX_HTTP_AI_STORE_ADD) {
        /*
         * the lock: shorter than an entry's header, never a hit; the
         * value present instead, if any, is read as a GET reads it
         */
        ngx_str_set(&op->value, NGX_HTTP_AI_CACHE_LOCK);
        op->ttl = clcf->lock_timeout;
        op->get = 1;
    }

    ctx->op = op;

    rc = ngx_http_ai_store_run(op);

    if (rc == NGX_AGAIN) {
        ctx->waiting = 1;
        return NGX_AGAIN;
    }

    if (rc == NGX_ERROR) {
        op->rc = NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_ai_cache_op_done(ngx_http_ai_store_op_t *op)
{
    ngx_http_ai_cache_ctx_t  *ctx = op->data;

    ctx->waiting = 0;
    ngx_http_ai_resume(ctx->request);
}


static void
ngx_http_ai_cache_poll(ngx_event_t *ev)
{
    ngx_http_ai_cache_ctx_t  *ctx = ev->data;

    ngx_http_ai_resume(ctx->request);
}


static void
ngx_http_ai_cache_cleanup(void *data)
{
    ngx_http_ai_cache_ctx_t  *ctx = data;

    if (ctx->wait.timer_set) {
        ngx_del_timer(&ctx->wait);
    }
}


/* a hit: the stored answer, rendered for the door, streamed or whole */

static ngx_int_t
ngx_http_ai_cache_hit(ngx_http_request_t *r, ngx_http_ai_ctx_t *ai,
    ngx_http_ai_cache_ctx_t *ctx, ngx_str_t *entry)
{
    time_t            created;
    ngx_int_t         rc;
    ngx_str_t         answer;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    ngx_memcpy(&created, entry->data + 4, sizeof(time_t));

    answer.data = entry->data + NGX_HTTP_AI_CACHE_HEADER;
    answer.len = entry->len - NGX_HTTP_AI_CACHE_HEADER;

    ctx->age = ngx_time() - created;

    if (ctx->age < 0) {
        ctx->age = 0;
    }

    /* our headers first; hidden if the entry does not render */

    ctx->status = NGX_HTTP_AI_CACHE_HIT;

    if (ngx_http_ai_cache_status(r, ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    (void) ngx_http_ai_set_outcome(r, &ngx_http_ai_cache_outcome,
                                   &ngx_http_ai_cache_statuses[ctx->status]);

    rc = ngx_http_ai_send_answer(r, NGX_HTTP_AI_FMT_OPENAI, &answer);

    if (rc != NGX_DECLINED) {
        return rc;
    }

    /* an entry that does not render (stored by another version) */

    part = &r->headers_out.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.data == ngx_http_ai_cache_status_key.data
            || h[i].key.data == ngx_http_ai_cache_age_key.data
            || h[i].key.data == ngx_http_ai_cache_match_key.data)
        {
            h[i].hash = 0;
        }
    }

    return ngx_http_ai_cache_miss(r, ctx, NGX_HTTP_AI_CACHE_MISS);
}


/* on to the upstream, the answer kept to be stored (unless told not) */

static ngx_int_t
ngx_http_ai_cache_miss(ngx_http_request_t *r, ngx_http_ai_cache_ctx_t *ctx,
    ngx_uint_t status)
{
    ctx->status = status;
    ctx->phase = NGX_HTTP_AI_CACHE_START;
    ctx->capture = !ctx->no_store;

    (void) ngx_http_ai_set_outcome(r, &ngx_http_ai_cache_outcome,
                                   &ngx_http_ai_cache_statuses[status]);

    if (ngx_http_ai_cache_status(r, ctx) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_DECLINED;
}


/* X-AI-Cache-Status, and Age on a hit */

static ngx_int_t
ngx_http_ai_cache_status(ngx_http_request_t *r, ngx_http_ai_cache_ctx_t *ctx)
{
    u_char           *p;
    ngx_uint_t        status;
    ngx_table_elt_t  *h;

    status = ctx->status ? ctx->status : NGX_HTTP_AI_CACHE_HIT;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key = ngx_http_ai_cache_status_key;
    h->value = ngx_http_ai_cache_statuses[status];
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif

    if (status != NGX_HTTP_AI_CACHE_HIT) {
        return NGX_OK;
    }

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key = ngx_http_ai_cache_age_key;
    h->value.data = p;
    h->value.len = ngx_sprintf(p, "%T", ctx->age) - p;
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif

    if (ctx->match.len == 0) {
        return NGX_OK;
    }

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key = ngx_http_ai_cache_match_key;
    h->value = ctx->match;
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif

    return NGX_OK;
}


/* the completion hook: a complete, successful answer is stored */

static void
ngx_http_ai_cache_done(ngx_http_request_t *r, ngx_http_ai_ctx_t *ai)
{
    ngx_int_t                      rc;
    ngx_str_t                      answer;
    ngx_http_ai_cache_ctx_t       *ctx;
    ngx_http_ai_cache_loc_conf_t  *clcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_cache_module);

    if (ctx == NULL) {
        return;
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_cache_module);

    rc = NGX_ERROR;

    if (ctx->capture && !ctx->given_up && !ai->error && !ai->truncated
        && !ai->answered && r->headers_out.status == NGX_HTTP_OK
        && (!ai->is_sse || ai->resp_done)
        && ngx_http_ai_cache_answer(r, ctx, &answer) == NGX_OK
        && answer.len + NGX_HTTP_AI_CACHE_HEADER <= ctx->max_size)
    {
        /* in the lock's place, if this request held it */

        rc = ngx_http_ai_cache_detached(r, clcf, NGX_HTTP_AI_STORE_SET,
                                        &ctx->entry, &answer, ctx->ttl);

        if (rc != NGX_ERROR) {
            /* its question's embedding, for the next one in other words */
            ngx_http_ai_cache_semantic_store(r, ctx);
        }
    }

    if (ctx->locked && rc != NGX_OK) {

        /*
         * not stored, or to be stored by a remote store, where the write
         * may yet fail: the lock let go while it is one, not an answer
         * stored in its place since (by this request, a bypass, or one
         * that took the lock when it timed out); the waiting ones go on,
         * one of them in this one's place
         */

        (void) ngx_http_ai_cache_detached(r, clcf, NGX_HTTP_AI_STORE_DEL,
                                          &ctx->entry, NULL, 0);
    }

    ctx->locked = 0;
}


/*
 * An operation of the store that outlives the request, on copies in a
 * pool of its own: answer, if given, is stored as an entry (the header,
 * then it); a DEL deletes the lock only.  NGX_OK: done; NGX_AGAIN: under
 * way (a remote store); NGX_ERROR: it could not be made or failed at once.
 */

static ngx_int_t
ngx_http_ai_cache_detached(ngx_http_request_t *r,
    ngx_http_ai_cache_loc_conf_t *clcf, ngx_uint_t type, ngx_str_t *key,
    ngx_str_t *answer, ngx_msec_t ttl)
{
    u_char                  *p;
    time_t                   now;
    ngx_http_ai_store_op_t  *op;

    op = ngx_http_ai_store_op(clcf->store, NULL, ngx_cycle->log);
    if (op == NULL) {
        return NGX_ERROR;
    }

    op->type = type;
    op->ttl = ttl;

    p = ngx_pnalloc(op->pool, key->len
                              + (answer ? NGX_HTTP_AI_CACHE_HEADER
                                          + answer->len
                                        : 0));
    if (p == NULL) {
        /* nothing refers to it yet */
        ngx_destroy_pool(op->pool);
        return NGX_ERROR;
    }

    op->key.data = p;
    op->key.len = key->len;
    p = ngx_cpymem(p, key->data, key->len);

    if (type == NGX_HTTP_AI_STORE_DEL) {
        /* the lock only */
        ngx_str_set(&op->value, NGX_HTTP_AI_CACHE_LOCK);
    }

    if (answer) {
        now = ngx_time();

        op->value.data = p;
        op->value.len = NGX_HTTP_AI_CACHE_HEADER + answer->len;

        p = ngx_cpymem(p, NGX_HTTP_AI_CACHE_MAGIC, 4);
        p = ngx_cpymem(p, &now, sizeof(time_t));
        ngx_memcpy(op->value.data + NGX_HTTP_AI_CACHE_HEADER, answer->data,
                   answer->len);
    }

    return ngx_http_ai_store_run(op);
}


/*
 * The first request header of the lower-case name, and, when word is
 * given, of those the first that holds it, in any case (Cache-Control:
 * no-cache): every field of the name is read, as a list may come in
 * several (RFC 9110 5.3).  NULL if none.
 */

ngx_table_elt_t *
ngx_http_ai_cache_header(ngx_http_request_t *r, const char *name,
    const char *word)
{
    size_t            len;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    len = ngx_strlen(name);

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == len
            && ngx_strncmp(h[i].lowcase_key, name, len) == 0
            && (word == NULL
                || ngx_strlcasestrn(h[i].value.data,
                                    h[i].value.data + h[i].value.len,
                                    (u_char *) word, ngx_strlen(word) - 1)
                   != NULL))
        {
            return &h[i];
        }
    }
}


/* configuration */

static char *
ngx_http_ai_cache(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_cache_loc_conf_t *clcf = conf;

    ngx_str_t  *value;

    if (clcf->enabled != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        clcf->enabled = 0;
        return NGX_CONF_OK;
    }

    clcf->store = ngx_http_ai_store_add(cf, &value[1]);
    if (clcf->store == NULL) {
        return NGX_CONF_ERROR;
    }

    clcf->enabled = 1;

    ngx_http_ai_core_enable(cf);

    return NGX_CONF_OK;
}


static char *
ngx_http_ai_cache_lock(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_cache_loc_conf_t *clcf = conf;

    ngx_str_t  *value, s;

    if (clcf->lock != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "on") == 0) {
        clcf->lock = 1;

    } else if (ngx_strcmp(value[1].data, "off") == 0) {
        clcf->lock = 0;

    } else {
        goto invalid;
    }

    if (cf->args->nelts == 3) {
        if (ngx_strncmp(value[2].data, "timeout=", 8) != 0) {
            goto invalid;
        }

        s.data = value[2].data + 8;
        s.len = value[2].len - 8;

        clcf->lock_timeout = ngx_parse_time(&s, 0);

        if (clcf->lock_timeout == (ngx_msec_t) NGX_ERROR) {
            goto invalid;
        }
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "ai_cache_lock: invalid parameter \"%V\" (on | off "
                       "[timeout=time])", &value[cf->args->nelts - 1]);
    return NGX_CONF_ERROR;
}


static char *
ngx_http_ai_cache_temperature(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_ai_cache_loc_conf_t *clcf = conf;

    int64_t     v;
    ngx_str_t  *value;

    value = cf->args->elts;

    if (ngx_http_ai_parse_micros(&value[1], &v) != NGX_OK || v > 2000000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_cache_temperature_max: invalid value \"%V\" "
                           "(0 to 2)", &value[1]);
        return NGX_CONF_ERROR;
    }

    clcf->temperature_max = (double) v / 1000000;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_ai_cache_preconfiguration(ngx_conf_t *cf)
{
    return ngx_http_ai_core_require(cf, "ngx_http_ai_cache_module");
}


static ngx_int_t
ngx_http_ai_cache_postconfiguration(ngx_conf_t *cf)
{
    if (ngx_http_ai_add_stage(cf, NGX_HTTP_AI_STAGE_CACHE,
                              ngx_http_ai_cache_stage)
        != NGX_OK
        || ngx_http_ai_add_done(cf, NGX_HTTP_AI_DONE_STORE,
                                ngx_http_ai_cache_done)
           != NGX_OK
        || ngx_http_ai_add_event_handler(cf, ngx_http_ai_cache_event)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void *
ngx_http_ai_cache_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_ai_cache_loc_conf_t  *clcf;

    clcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_cache_loc_conf_t));
    if (clcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     clcf->store = NULL;
     *     clcf->namespace = NULL;
     */

    clcf->enabled = NGX_CONF_UNSET_UINT;
    clcf->ttl = NGX_CONF_UNSET_MSEC;
    clcf->max_size = NGX_CONF_UNSET_SIZE;
    clcf->per_consumer = NGX_CONF_UNSET;
    clcf->last_messages = NGX_CONF_UNSET;
    clcf->ignore_system = NGX_CONF_UNSET;
    clcf->temperature_max = -2;
    clcf->lock = NGX_CONF_UNSET;
    clcf->lock_timeout = NGX_CONF_UNSET_MSEC;
    clcf->semantic = NGX_CONF_UNSET_PTR;

    return clcf;
}


static char *
ngx_http_ai_cache_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_ai_cache_loc_conf_t *prev = parent;
    ngx_http_ai_cache_loc_conf_t *conf = child;

    if (conf->enabled == NGX_CONF_UNSET_UINT) {
        conf->enabled = (prev->enabled == NGX_CONF_UNSET_UINT)
                        ? 0 : prev->enabled;
        conf->store = prev->store;
    }

    if (conf->namespace == NULL) {
        conf->namespace = prev->namespace;
    }

    if (conf->temperature_max == -2) {
        conf->temperature_max = (prev->temperature_max == -2)
                                ? -1 : prev->temperature_max;
    }

    ngx_conf_merge_ptr_value(conf->semantic, prev->semantic, NULL);
    ngx_conf_merge_msec_value(conf->ttl, prev->ttl, 3600000);
    ngx_conf_merge_size_value(conf->max_size, prev->max_size, 1024 * 1024);
    ngx_conf_merge_value(conf->per_consumer, prev->per_consumer, 0);
    ngx_conf_merge_value(conf->last_messages, prev->last_messages, 0);
    ngx_conf_merge_value(conf->ignore_system, prev->ignore_system, 0);
    ngx_conf_merge_value(conf->lock, prev->lock, 1);
    ngx_conf_merge_msec_value(conf->lock_timeout, prev->lock_timeout, 10000);

    return NGX_CONF_OK;
}
