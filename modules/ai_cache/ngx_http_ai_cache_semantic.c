
/*
 * Copyright (C) AI Gateway authors
 *
 * The semantic cache: on an exact miss, the request's last user message
 * is embedded by an OpenAI-compatible embeddings service (a subrequest to
 * an internal location, in memory and in the background, with a timeout
 * of its own), the embedding is searched in a similarity index in shared
 * memory (ngx_http_ai_cache_vector.c) among the entries of the request's
 * group, and a match at or above the threshold points to the exact-cache
 * entry that answers it.  A miss's embedding is added to the index when
 * its answer is stored, with the entry's TTL.
 *
 * The group is a SHA-256 (64 bits kept) of everything but the last user
 * message: the door, the routed model, the scope and namespaces, every
 * field of the request but those that do not change the answer (stream,
 * stream_options, user), the earlier messages whole and the last one's
 * role.  So a question asked under another system prompt, model, tools,
 * parameters or conversation never matches.
 *
 * The zone holds a small header, a table of the groups read from a
 * remote store, the exact-cache key of each slot of the index (64 hex
 * digits: the payload is only its first 64 bits), then the index.  Every
 * call on the index holds the zone's mutex.
 *
 * With a remote store (Redis), the vectors are shared by the nodes: see
 * ngx_http_ai_cache_semantic_remote() and docs/semantic-index.md.
 *
 *     ai_cache_semantic_zone NAME size=SIZE dim=N [nprobe=N]
 *                            [exact_max=N];                        (http)
 *     ai_cache_semantic ZONE embeddings=URI [model=NAME]
 *                       [threshold=0.95] [timeout=1s]
 *                       [max_text=SIZE] [dimensions=on|off] | off;
 */


#include "ngx_http_ai_cache.h"
#include "ngx_http_ai_cache_vector.h"

#include <openssl/evp.h>


#define NGX_HTTP_AI_SEMANTIC_MAGIC      0x3143455653494141ULL  /* AAISVEC1 */

#define NGX_HTTP_AI_SEMANTIC_START      0
#define NGX_HTTP_AI_SEMANTIC_EMBEDDING  1
#define NGX_HTTP_AI_SEMANTIC_EMBEDDED   2
#define NGX_HTTP_AI_SEMANTIC_COUNTING   3   /* remote: the group's count */
#define NGX_HTTP_AI_SEMANTIC_FETCHING   4   /* remote: its new vectors */
#define NGX_HTTP_AI_SEMANTIC_DONE       5

/* a remote store: the newest vectors of a group fetched at a lookup */
#define NGX_HTTP_AI_SEMANTIC_FETCH      32

/* the groups whose remote vectors a node has read: a direct-mapped
 * table (another group in a slot only costs a fetch again) */
#define NGX_HTTP_AI_SEMANTIC_GROUPS     1024

/* a vector in a remote store: "AIV1", expiry, group, key, dim, floats */
#define NGX_HTTP_AI_SEMANTIC_RECORD     (4 + 8 + 8 + 64 + 4)


typedef struct {
    uint64_t                    group;
    int64_t                     epoch;      /* the counter's expiry, s */
    int64_t                     seen;       /* read up to this record */
} ngx_http_ai_cache_semantic_group_t;


typedef struct {
    ngx_str_t                   name;
    ngx_http_ai_vector_params_t params;
    ngx_shm_zone_t             *shm_zone;
    ngx_slab_pool_t            *shpool;
    void                       *sh;         /* the region, in the zone */
    size_t                      size;       /* of the region */
    ngx_http_ai_cache_semantic_group_t  *groups;
    u_char                     *keys;       /* capacity x 64 hex digits */
    ngx_http_ai_vector_t       *vi;
    ngx_uint_t                  capacity;
} ngx_http_ai_cache_semantic_zone_t;


typedef struct {
    uint64_t                    magic;
    size_t                      size;
    ngx_uint_t                  dim;
    ngx_uint_t                  capacity;
} ngx_http_ai_cache_semantic_sh_t;


struct ngx_http_ai_cache_semantic_ctx_s {
    ngx_http_request_t         *request;
    ngx_http_request_t         *subrequest;
    ngx_http_ai_cache_semantic_conf_t  *conf;
    float                      *vec;        /* dim floats, NULL: none */
    uint64_t                    group;
    ngx_event_t                 timer;
    ngx_uint_t                  state;
    float                       similarity;
    ngx_uint_t                  pending;    /* remote ops under way */
    int64_t                     count;      /* the group's, remote */
    int64_t                     epoch;
    ngx_http_ai_store_op_t     *ops[NGX_HTTP_AI_SEMANTIC_FETCH];
    ngx_uint_t                  nops;
    unsigned                    gave_up:1;
};


static ngx_int_t ngx_http_ai_cache_semantic_group(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ai, ngx_http_ai_cache_loc_conf_t *clcf,
    uint64_t *group);
static ngx_int_t ngx_http_ai_cache_semantic_fetch(ngx_http_request_t *r,
    ngx_http_ai_cache_semantic_ctx_t *sctx, ngx_str_t *text);
static ngx_int_t ngx_http_ai_cache_semantic_fetched(ngx_http_request_t *sr,
    void *data, ngx_int_t rc);
static ngx_int_t ngx_http_ai_cache_semantic_parse(ngx_http_request_t *sr,
    ngx_http_ai_cache_semantic_ctx_t *sctx, const char **why);
static ngx_int_t ngx_http_ai_cache_semantic_search(ngx_http_request_t *r,
    ngx_http_ai_cache_semantic_ctx_t *sctx, ngx_http_ai_cache_ctx_t *ctx);
static ngx_uint_t ngx_http_ai_cache_semantic_remote(
    ngx_http_ai_store_t *store);
static ngx_int_t ngx_http_ai_cache_semantic_count(ngx_http_request_t *r,
    ngx_http_ai_cache_loc_conf_t *clcf,
    ngx_http_ai_cache_semantic_ctx_t *sctx);
static ngx_int_t ngx_http_ai_cache_semantic_fetch_records(
    ngx_http_request_t *r, ngx_http_ai_cache_loc_conf_t *clcf,
    ngx_http_ai_cache_semantic_ctx_t *sctx);
static void ngx_http_ai_cache_semantic_load(ngx_http_request_t *r,
    ngx_http_ai_cache_semantic_ctx_t *sctx);
static void ngx_http_ai_cache_semantic_op_done(ngx_http_ai_store_op_t *op);
static void ngx_http_ai_cache_semantic_share(ngx_http_request_t *r,
    ngx_http_ai_cache_loc_conf_t *clcf, ngx_http_ai_cache_ctx_t *ctx,
    time_t expire);
static void ngx_http_ai_cache_semantic_numbered(ngx_http_ai_store_op_t *op);
static uint64_t ngx_http_ai_cache_semantic_payload(u_char *hex);
static ngx_int_t ngx_http_ai_cache_semantic_lock(
    ngx_http_ai_cache_semantic_zone_t *z);
static void ngx_http_ai_cache_semantic_timeout(ngx_event_t *ev);
static void ngx_http_ai_cache_semantic_cleanup(void *data);
static void ngx_http_ai_cache_semantic_failed(
    ngx_http_ai_cache_semantic_ctx_t *sctx, const char *why);
static ngx_int_t ngx_http_ai_cache_semantic_init_zone(
    ngx_shm_zone_t *shm_zone, void *data);
static ngx_int_t ngx_http_ai_cache_semantic_counters(ngx_conf_t *cf,
    ngx_http_ai_cache_semantic_conf_t *scf);
static ngx_int_t ngx_http_ai_cache_semantic_metrics(ngx_http_request_t *r,
    ngx_chain_t ***out);


/* the configuration cycle the metrics source was registered for:
 * compared, never followed */
static void                   *ngx_http_ai_semantic_metrics_cycle;

static EVP_MD                 *ngx_http_ai_semantic_md;
static EVP_MD_CTX             *ngx_http_ai_semantic_md_ctx;

static ngx_str_t  ngx_http_ai_semantic_content_type =
    ngx_string("Content-Type");
static ngx_str_t  ngx_http_ai_semantic_json =
    ngx_string("application/json");
static ngx_str_t  ngx_http_ai_semantic_post = ngx_string("POST");


/* the CACHE stage's step after an exact miss */

ngx_int_t
ngx_http_ai_cache_semantic_lookup(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ai, ngx_http_ai_cache_loc_conf_t *clcf,
    ngx_http_ai_cache_ctx_t *ctx)
{
    ngx_int_t                           rc;
    ngx_uint_t                          n;
    ngx_http_ai_message_t              *m;
    ngx_http_ai_cache_semantic_ctx_t   *sctx;
    ngx_http_ai_cache_semantic_zone_t  *z;
    ngx_http_ai_cache_semantic_conf_t  *scf;

    scf = clcf->semantic;
    z = scf->shm_zone->data;
    sctx = ctx->semantic;

    if (sctx == NULL) {

        /* the last message, a user's text without images or tool calls */

        n = ai->req.messages.nelts;

        if (z->vi == NULL || n == 0
            || (ai->req.endpoint != NGX_HTTP_AI_EP_CHAT
                && ai->req.endpoint != NGX_HTTP_AI_EP_MESSAGES
                && ai->req.endpoint != NGX_HTTP_AI_EP_GEMINI))
        {
            return NGX_DECLINED;
        }

        m = (ngx_http_ai_message_t *) ai->req.messages.elts + n - 1;

        if (m->role.len != 4 || ngx_strncmp(m->role.data, "user", 4) != 0
            || m->text.len == 0 || m->text.len > scf->max_text
            || m->images || m->tool_calls)
        {
            return NGX_DECLINED;
        }

        sctx = ngx_pcalloc(r->pool, sizeof(ngx_http_ai_cache_semantic_ctx_t));
        if (sctx == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        sctx->request = r;
        sctx->conf = scf;
        ctx->semantic = sctx;

        rc = ngx_http_ai_cache_semantic_group(r, ai, clcf, &sctx->group);

        if (rc != NGX_OK) {
            sctx->state = NGX_HTTP_AI_SEMANTIC_DONE;
            return rc == NGX_DECLINED ? NGX_DECLINED
                                      : NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_http_ai_counter_incr(scf->lookups, 1);

        rc = ngx_http_ai_cache_semantic_fetch(r, sctx, &m->text);

        if (rc == NGX_ERROR) {
            ngx_http_ai_cache_semantic_failed(sctx, "subrequest not started");
            sctx->state = NGX_HTTP_AI_SEMANTIC_DONE;
            return NGX_DECLINED;
        }

        sctx->state = NGX_HTTP_AI_SEMANTIC_EMBEDDING;

        return NGX_AGAIN;
    }

    if (sctx->state == NGX_HTTP_AI_SEMANTIC_EMBEDDING) {
        if (!sctx->gave_up) {
            return NGX_AGAIN;
        }

        /* timed out: a plain miss, the subrequest's answer ignored */
        sctx->state = NGX_HTTP_AI_SEMANTIC_DONE;
        return NGX_DECLINED;
    }

    if (sctx->state == NGX_HTTP_AI_SEMANTIC_COUNTING) {
        if (sctx->pending) {
            return NGX_AGAIN;
        }

        rc = ngx_http_ai_cache_semantic_fetch_records(r, clcf, sctx);

        if (rc == NGX_AGAIN) {
            sctx->state = NGX_HTTP_AI_SEMANTIC_FETCHING;

            /* a store that answered at once: on at once */
            return sctx->pending
                   ? NGX_AGAIN
                   : ngx_http_ai_cache_semantic_lookup(r, ai, clcf, ctx);
        }

        sctx->state = NGX_HTTP_AI_SEMANTIC_DONE;
        return NGX_DECLINED;
    }

    if (sctx->state == NGX_HTTP_AI_SEMANTIC_FETCHING) {
        if (sctx->pending) {
            return NGX_AGAIN;
        }

        sctx->state = NGX_HTTP_AI_SEMANTIC_DONE;

        ngx_http_ai_cache_semantic_load(r, sctx);

        return ngx_http_ai_cache_semantic_search(r, sctx, ctx);
    }

    if (sctx->state != NGX_HTTP_AI_SEMANTIC_EMBEDDED || sctx->vec == NULL) {
        return NGX_DECLINED;
    }

    sctx->state = NGX_HTTP_AI_SEMANTIC_DONE;

    rc = ngx_http_ai_cache_semantic_search(r, sctx, ctx);

    if (rc != NGX_DECLINED
        || !ngx_http_ai_cache_semantic_remote(clcf->store))
    {
        return rc;
    }

    /* not here: what other nodes stored in the group since */

    rc = ngx_http_ai_cache_semantic_count(r, clcf, sctx);

    if (rc == NGX_AGAIN) {
        sctx->state = NGX_HTTP_AI_SEMANTIC_COUNTING;

        return sctx->pending
               ? NGX_AGAIN
               : ngx_http_ai_cache_semantic_lookup(r, ai, clcf, ctx);
    }

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_ai_cache_semantic_search(ngx_http_request_t *r,
    ngx_http_ai_cache_semantic_ctx_t *sctx, ngx_http_ai_cache_ctx_t *ctx)
{
    u_char                             *p;
    ngx_int_t                           rc;
    ngx_http_ai_vector_match_t          match;
    ngx_http_ai_cache_semantic_zone_t  *z;

    z = sctx->conf->shm_zone->data;

    if (ngx_http_ai_cache_semantic_lock(z) != NGX_OK) {
        return NGX_DECLINED;
    }

    rc = ngx_http_ai_vector_search(z->vi, sctx->vec, sctx->group,
                                   ngx_time(), sctx->conf->threshold, 0,
                                   &match);

    if (rc == NGX_OK) {
        p = ngx_pnalloc(r->pool, 4 + NGX_HTTP_AI_CACHE_KEY_LEN);

        if (p) {
            ctx->similar.data = p;
            p = ngx_cpymem(p, "aic:", 4);
            p = ngx_cpymem(p, z->keys + match.slot * NGX_HTTP_AI_CACHE_KEY_LEN,
                           NGX_HTTP_AI_CACHE_KEY_LEN);
            ctx->similar.len = p - ctx->similar.data;
        }
    }

    ngx_shmtx_unlock(&z->shpool->mutex);

    if (rc != NGX_OK) {
        return NGX_DECLINED;
    }

    if (ctx->similar.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    sctx->similarity = match.similarity;

    p = ngx_pnalloc(r->pool, sizeof("semantic; similarity=0.000") - 1);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->match.data = p;
    ctx->match.len = ngx_sprintf(p, "semantic; similarity=%.3f",
                                 (double) match.similarity)
                     - p;

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "ai_cache: semantic match, similarity %.3f",
                  (double) match.similarity);

    ngx_http_ai_counter_incr(sctx->conf->matches, 1);

    return NGX_OK;
}


/*
 * A remote store (Redis) shares the vectors between nodes: each one is
 * a record "aicv:GROUP:N" (N from the counter "aicv:GROUP", which
 * expires after the location's TTL: its expiry tells a new series),
 * with the entry's TTL.  A node that finds no match in its own index
 * reads the group's counter and the records it has not read yet (the
 * newest NGX_HTTP_AI_SEMANTIC_FETCH at most), adds them to its index,
 * and searches again.
 */

static ngx_uint_t
ngx_http_ai_cache_semantic_remote(ngx_http_ai_store_t *store)
{
    return store->backend
           && !(store->backend->name.len == 3
                && ngx_strncmp(store->backend->name.data, "shm", 3) == 0);
}


static ngx_http_ai_store_op_t *
ngx_http_ai_cache_semantic_op(ngx_http_request_t *r,
    ngx_http_ai_cache_loc_conf_t *clcf, ngx_http_ai_cache_semantic_ctx_t *sctx,
    ngx_int_t seq)
{
    u_char                  *p;
    ngx_http_ai_store_op_t  *op;

    op = ngx_http_ai_store_op(clcf->store, r, r->connection->log);
    if (op == NULL) {
        return NULL;
    }

    p = ngx_pnalloc(r->pool, sizeof("aicv::") + 16 + NGX_INT64_LEN);
    if (p == NULL) {
        return NULL;
    }

    op->key.data = p;
    op->key.len = (seq ? ngx_sprintf(p, "aicv:%016uxL:%L", sctx->group,
                                     (int64_t) seq)
                       : ngx_sprintf(p, "aicv:%016uxL", sctx->group))
                  - p;

    op->type = NGX_HTTP_AI_STORE_GET;
    op->pool = r->pool;
    op->handler = ngx_http_ai_cache_semantic_op_done;
    op->data = sctx;

    return op;
}


static ngx_int_t
ngx_http_ai_cache_semantic_count(ngx_http_request_t *r,
    ngx_http_ai_cache_loc_conf_t *clcf, ngx_http_ai_cache_semantic_ctx_t *sctx)
{
    ngx_int_t                rc;
    ngx_http_ai_store_op_t  *op;

    op = ngx_http_ai_cache_semantic_op(r, clcf, sctx, 0);
    if (op == NULL) {
        return NGX_ERROR;
    }

    sctx->ops[0] = op;
    sctx->nops = 1;

    rc = ngx_http_ai_store_run(op);

    if (rc == NGX_AGAIN) {
        sctx->pending = 1;
        return NGX_AGAIN;
    }

    if (rc == NGX_ERROR) {
        op->rc = NGX_ERROR;
    }

    /* at once: as if it came back */
    return NGX_AGAIN;
}


static ngx_int_t
ngx_http_ai_cache_semantic_fetch_records(ngx_http_request_t *r,
    ngx_http_ai_cache_loc_conf_t *clcf, ngx_http_ai_cache_semantic_ctx_t *sctx)
{
    int64_t                              from, n, epoch;
    ngx_int_t                            rc;
    ngx_http_ai_store_op_t              *op;
    ngx_http_ai_cache_semantic_zone_t   *z;
    ngx_http_ai_cache_semantic_group_t  *g;

    op = sctx->ops[0];
    sctx->nops = 0;

    if (op->rc != NGX_OK || !op->counter || op->number <= 0) {
        return NGX_DECLINED;
    }

    n = op->number;
    epoch = (int64_t) ngx_time() + (int64_t) (op->ttl / 1000);

    z = sctx->conf->shm_zone->data;
    g = &z->groups[sctx->group % NGX_HTTP_AI_SEMANTIC_GROUPS];

    ngx_shmtx_lock(&z->shpool->mutex);

    if (g->group == sctx->group && g->epoch > epoch - 3
        && g->epoch < epoch + 3 && g->seen <= n)
    {
        from = g->seen + 1;

    } else {
        from = 1;
    }

    ngx_shmtx_unlock(&z->shpool->mutex);

    if (from < n - NGX_HTTP_AI_SEMANTIC_FETCH + 1) {
        from = n - NGX_HTTP_AI_SEMANTIC_FETCH + 1;
    }

    if (from > n) {
        return NGX_DECLINED;
    }

    sctx->count = n;
    sctx->epoch = epoch;

    for ( /* void */ ; from <= n; from++) {
        op = ngx_http_ai_cache_semantic_op(r, clcf, sctx, from);
        if (op == NULL) {
            break;
        }

        sctx->ops[sctx->nops++] = op;
        sctx->pending++;

        rc = ngx_http_ai_store_run(op);

        if (rc != NGX_AGAIN) {
            sctx->pending--;

            if (rc == NGX_ERROR) {
                op->rc = NGX_ERROR;
            }
        }
    }

    return NGX_AGAIN;
}


static void
ngx_http_ai_cache_semantic_op_done(ngx_http_ai_store_op_t *op)
{
    ngx_http_ai_cache_semantic_ctx_t *sctx = op->data;

    if (sctx->pending && --sctx->pending == 0) {
        ngx_http_ai_resume(sctx->request);
    }
}


/* the records read: into the index, checked (a store is not trusted) */

static void
ngx_http_ai_cache_semantic_load(ngx_http_request_t *r,
    ngx_http_ai_cache_semantic_ctx_t *sctx)
{
    u_char                              *p;
    float                               *vec;
    time_t                               now;
    int64_t                              expire;
    uint32_t                             dim;
    uint64_t                             group;
    ngx_uint_t                           i, j, slot, n;
    ngx_http_ai_store_op_t              *op;
    ngx_http_ai_cache_semantic_zone_t   *z;
    ngx_http_ai_cache_semantic_group_t  *g;

    z = sctx->conf->shm_zone->data;

    vec = ngx_palloc(r->pool, z->params.dim * sizeof(float));
    if (vec == NULL) {
        return;
    }

    now = ngx_time();
    n = 0;

    if (ngx_http_ai_cache_semantic_lock(z) != NGX_OK) {
        return;
    }

    for (i = 0; i < sctx->nops; i++) {
        op = sctx->ops[i];

        if (op->rc != NGX_OK
            || op->value.len != NGX_HTTP_AI_SEMANTIC_RECORD
                                + z->params.dim * sizeof(float)
            || ngx_strncmp(op->value.data, "AIV1", 4) != 0)
        {
            continue;
        }

        p = op->value.data + 4;
        ngx_memcpy(&expire, p, 8);
        ngx_memcpy(&group, p + 8, 8);
        ngx_memcpy(&dim, p + 16 + 64, 4);

        if (group != sctx->group || dim != z->params.dim || expire <= now) {
            continue;
        }

        for (j = 0; j < 64; j++) {
            if (!((p[16 + j] >= '0' && p[16 + j] <= '9')
                  || (p[16 + j] >= 'a' && p[16 + j] <= 'f')))
            {
                break;
            }
        }

        if (j != 64) {
            continue;
        }

        ngx_memcpy(vec, p + 16 + 64 + 4, dim * sizeof(float));

        if (ngx_http_ai_vector_insert(z->vi, vec, group,
                                      ngx_http_ai_cache_semantic_payload(
                                          p + 16),
                                      (time_t) expire, &slot)
            == NGX_OK)
        {
            ngx_memcpy(z->keys + slot * NGX_HTTP_AI_CACHE_KEY_LEN, p + 16,
                       NGX_HTTP_AI_CACHE_KEY_LEN);
            n++;
        }
    }

    g = &z->groups[sctx->group % NGX_HTTP_AI_SEMANTIC_GROUPS];

    if (g->group != sctx->group || g->epoch != sctx->epoch
        || g->seen < sctx->count)
    {
        g->group = sctx->group;
        g->epoch = sctx->epoch;
        g->seen = sctx->count;
    }

    ngx_shmtx_unlock(&z->shpool->mutex);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai_cache: %ui of %ui remote vectors loaded", n,
                   sctx->nops);
}


/* a vector stored: in the remote store too, numbered in its group */

static void
ngx_http_ai_cache_semantic_share(ngx_http_request_t *r,
    ngx_http_ai_cache_loc_conf_t *clcf, ngx_http_ai_cache_ctx_t *ctx,
    time_t expire)
{
    u_char                             *p;
    int64_t                             e;
    uint32_t                            dim;
    ngx_http_ai_store_op_t             *op;
    ngx_http_ai_cache_semantic_ctx_t   *sctx;
    ngx_http_ai_cache_semantic_zone_t  *z;

    sctx = ctx->semantic;
    z = sctx->conf->shm_zone->data;
    dim = (uint32_t) z->params.dim;

    op = ngx_http_ai_store_op(clcf->store, NULL, ngx_cycle->log);
    if (op == NULL) {
        return;
    }

    op->key.data = ngx_pnalloc(op->pool, sizeof("aicv:") + 16);
    op->value.data = ngx_pnalloc(op->pool, NGX_HTTP_AI_SEMANTIC_RECORD
                                           + dim * sizeof(float));
    if (op->key.data == NULL || op->value.data == NULL) {
        return;
    }

    op->key.len = ngx_sprintf(op->key.data, "aicv:%016uxL", sctx->group)
                  - op->key.data;

    e = (int64_t) expire;

    p = ngx_cpymem(op->value.data, "AIV1", 4);
    p = ngx_cpymem(p, &e, 8);
    p = ngx_cpymem(p, &sctx->group, 8);
    p = ngx_cpymem(p, ctx->key, NGX_HTTP_AI_CACHE_KEY_LEN);
    p = ngx_cpymem(p, &dim, 4);
    p = ngx_cpymem(p, sctx->vec, dim * sizeof(float));
    op->value.len = p - op->value.data;

    /* the counter first: its number names the record */

    op->type = NGX_HTTP_AI_STORE_INCR;
    op->delta = 1;
    op->ttl = clcf->ttl;
    op->handler = ngx_http_ai_cache_semantic_numbered;
    op->data = (void *) (uintptr_t) ctx->ttl;

    (void) ngx_http_ai_store_run(op);
}


static void
ngx_http_ai_cache_semantic_numbered(ngx_http_ai_store_op_t *op)
{
    ngx_http_ai_store_op_t  *set;

    if (op->rc != NGX_OK || op->number <= 0) {
        return;
    }

    set = ngx_http_ai_store_op(op->store, NULL, ngx_cycle->log);
    if (set == NULL) {
        return;
    }

    set->key.data = ngx_pnalloc(set->pool, op->key.len + 1 + NGX_INT64_LEN);
    set->value.data = ngx_pnalloc(set->pool, op->value.len);

    if (set->key.data == NULL || set->value.data == NULL) {
        return;
    }

    set->key.len = ngx_sprintf(set->key.data, "%V:%L", &op->key, op->number)
                   - set->key.data;
    ngx_memcpy(set->value.data, op->value.data, op->value.len);
    set->value.len = op->value.len;

    set->type = NGX_HTTP_AI_STORE_SET;
    set->ttl = (ngx_msec_t) (uintptr_t) op->data;

    (void) ngx_http_ai_store_run(set);
}


static uint64_t
ngx_http_ai_cache_semantic_payload(u_char *hex)
{
    uint64_t  payload;

    payload = (uint64_t) ngx_hextoi(hex, 8) << 32;
    payload |= (uint64_t) ngx_hextoi(hex + 8, 8);

    return payload;
}


/* the entry a match pointed to is gone: so is its vector */

void
ngx_http_ai_cache_semantic_forget(ngx_http_request_t *r,
    ngx_http_ai_cache_ctx_t *ctx)
{
    uint64_t                            payload;
    ngx_http_ai_cache_loc_conf_t       *clcf;
    ngx_http_ai_cache_semantic_zone_t  *z;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_cache_module);

    if (clcf->semantic == NULL || ctx->similar.len < 4 + 16) {
        return;
    }

    payload = ngx_http_ai_cache_semantic_payload(ctx->similar.data + 4);

    z = clcf->semantic->shm_zone->data;

    if (ngx_http_ai_cache_semantic_lock(z) != NGX_OK) {
        return;
    }

    (void) ngx_http_ai_vector_delete(z->vi, payload);
    ngx_shmtx_unlock(&z->shpool->mutex);
}


/* a miss's answer was stored: its question's embedding joins the index */

void
ngx_http_ai_cache_semantic_store(ngx_http_request_t *r,
    ngx_http_ai_cache_ctx_t *ctx)
{
    time_t                              now, expire;
    uint64_t                            payload;
    ngx_int_t                           rc;
    ngx_uint_t                          slot;
    ngx_http_ai_cache_loc_conf_t       *clcf;
    ngx_http_ai_cache_semantic_ctx_t   *sctx;
    ngx_http_ai_cache_semantic_zone_t  *z;

    sctx = ctx->semantic;

    if (sctx == NULL || sctx->vec == NULL || ctx->match.len) {
        return;
    }

    payload = ngx_http_ai_cache_semantic_payload(ctx->key);

    z = sctx->conf->shm_zone->data;
    now = ngx_time();
    expire = now + (time_t) (ctx->ttl / 1000);

    if (ngx_http_ai_cache_semantic_lock(z) != NGX_OK) {
        return;
    }

    (void) ngx_http_ai_vector_expire(z->vi, now, 64);

    rc = ngx_http_ai_vector_insert(z->vi, sctx->vec, sctx->group, payload,
                                   expire, &slot);

    if (rc == NGX_OK) {
        ngx_memcpy(z->keys + slot * NGX_HTTP_AI_CACHE_KEY_LEN, ctx->key,
                   NGX_HTTP_AI_CACHE_KEY_LEN);
    }

    ngx_shmtx_unlock(&z->shpool->mutex);

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_cache_module);

    if (rc == NGX_OK && ngx_http_ai_cache_semantic_remote(clcf->store)) {
        ngx_http_ai_cache_semantic_share(r, clcf, ctx, expire);
    }
}


/*
 * The group: SHA-256 of everything that decides the answer but the last
 * user message, 64 bits of it.  Each part with its length first.
 * NGX_DECLINED: a request of more fields than any API has.
 */

static ngx_int_t
ngx_http_ai_cache_semantic_group(ngx_http_request_t *r, ngx_http_ai_ctx_t *ai,
    ngx_http_ai_cache_loc_conf_t *clcf, uint64_t *group)
{
    char              *s;
    cJSON             *json, *c, *keys[64], *last, *role, *t;
    u_char             md[EVP_MAX_MD_SIZE], *p;
    ngx_str_t          ns, *model;
    ngx_uint_t         i, j, nkeys;
    unsigned int       mdlen;
    EVP_MD_CTX        *md_ctx;
    ngx_table_elt_t   *h;

    if (ngx_http_ai_semantic_md == NULL) {
#if (OPENSSL_VERSION_NUMBER >= 0x30000000L)
        ngx_http_ai_semantic_md = EVP_MD_fetch(NULL, "SHA256", NULL);
#else
        ngx_http_ai_semantic_md = (EVP_MD *) EVP_sha256();
#endif
        ngx_http_ai_semantic_md_ctx = EVP_MD_CTX_new();

        if (ngx_http_ai_semantic_md == NULL
            || ngx_http_ai_semantic_md_ctx == NULL)
        {
            return NGX_ERROR;
        }
    }

    json = ngx_http_ai_request_tree(&ai->req);

    if (json == NULL) {
        return NGX_ERROR;
    }

    md_ctx = ngx_http_ai_semantic_md_ctx;

    if (EVP_DigestInit_ex(md_ctx, ngx_http_ai_semantic_md, NULL) != 1) {
        return NGX_ERROR;
    }

    model = ai->route_model.len ? &ai->route_model : &ai->req.model;

    p = ngx_sprintf(md, "g1:%ui:%ui:%uz:", ai->req.format, ai->req.endpoint,
                    model->len);
    EVP_DigestUpdate(md_ctx, md, p - md);
    EVP_DigestUpdate(md_ctx, model->data, model->len);

    if (clcf->per_consumer) {
        ns = ai->consumer;

    } else {
        ngx_str_null(&ns);
    }

    p = ngx_sprintf(md, ":%uz:", ns.len);
    EVP_DigestUpdate(md_ctx, md, p - md);
    EVP_DigestUpdate(md_ctx, ns.data, ns.len);

    ngx_str_null(&ns);

    if (clcf->namespace
        && ngx_http_complex_value(r, clcf->namespace, &ns) != NGX_OK)
    {
        return NGX_ERROR;
    }

    p = ngx_sprintf(md, ":%uz:", ns.len);
    EVP_DigestUpdate(md_ctx, md, p - md);
    EVP_DigestUpdate(md_ctx, ns.data, ns.len);

    h = ngx_http_ai_cache_header(r, "x-ai-cache-namespace", NULL);
    ns.len = h ? h->value.len : 0;

    p = ngx_sprintf(md, ":%uz:", ns.len);
    EVP_DigestUpdate(md_ctx, md, p - md);

    if (h) {
        EVP_DigestUpdate(md_ctx, h->value.data, h->value.len);
    }

    /* the request's fields by name (the order a client writes them in
     * changes nothing), but those that do not change the answer */

    nkeys = 0;

    for (c = json->child; c; c = c->next) {

        if (c->string == NULL
            || ngx_strcmp(c->string, "model") == 0
            || ngx_strcmp(c->string, "stream") == 0
            || ngx_strcmp(c->string, "stream_options") == 0
            || ngx_strcmp(c->string, "user") == 0)
        {
            continue;
        }

        if (nkeys == 64) {
            /* more fields than any API has: not looked up */
            return NGX_DECLINED;
        }

        for (i = nkeys; i > 0; i--) {
            if (ngx_strcmp(keys[i - 1]->string, c->string) <= 0) {
                break;
            }

            keys[i] = keys[i - 1];
        }

        keys[i] = c;
        nkeys++;
    }

    for (i = 0; i < nkeys; i++) {
        c = keys[i];

        p = ngx_sprintf(md, ":%uz:", ngx_strlen(c->string));
        EVP_DigestUpdate(md_ctx, md, p - md);
        EVP_DigestUpdate(md_ctx, c->string, ngx_strlen(c->string));

        if ((ngx_strcmp(c->string, "messages") == 0
             || ngx_strcmp(c->string, "contents") == 0)
            && cJSON_IsArray(c) && c->child)
        {
            /* the earlier messages whole, the last one's role */

            last = c->child->prev;
            j = 0;

            for (t = c->child; t != last; t = t->next) {
                s = cJSON_PrintUnformatted(t);
                if (s == NULL) {
                    return NGX_ERROR;
                }

                p = ngx_sprintf(md, ":m%ui:%uz:", j++, ngx_strlen(s));
                EVP_DigestUpdate(md_ctx, md, p - md);
                EVP_DigestUpdate(md_ctx, s, ngx_strlen(s));
                cJSON_free(s);
            }

            role = cJSON_GetObjectItemCaseSensitive(last, "role");

            p = ngx_sprintf(md, ":last%ui:%s:", j,
                            cJSON_IsString(role) ? role->valuestring : "");
            EVP_DigestUpdate(md_ctx, md, p - md);
            continue;
        }

        s = cJSON_PrintUnformatted(c);
        if (s == NULL) {
            return NGX_ERROR;
        }

        p = ngx_sprintf(md, ":%uz:", ngx_strlen(s));
        EVP_DigestUpdate(md_ctx, md, p - md);
        EVP_DigestUpdate(md_ctx, s, ngx_strlen(s));
        cJSON_free(s);
    }

    if (EVP_DigestFinal_ex(md_ctx, md, &mdlen) != 1 || mdlen < 8) {
        return NGX_ERROR;
    }

    ngx_memcpy(group, md, sizeof(uint64_t));

    return NGX_OK;
}


/* the embedding of text: a subrequest, in memory, in the background */

static ngx_int_t
ngx_http_ai_cache_semantic_fetch(ngx_http_request_t *r,
    ngx_http_ai_cache_semantic_ctx_t *sctx, ngx_str_t *text)
{
    u_char                             *p;
    size_t                              len;
    ngx_buf_t                          *b;
    ngx_chain_t                        *cl;
    ngx_table_elt_t                    *h;
    ngx_pool_cleanup_t                 *cln;
    ngx_http_request_t                 *sr;
    ngx_http_request_body_t            *rb;
    ngx_http_post_subrequest_t         *ps;
    ngx_http_ai_cache_semantic_conf_t  *scf;
    ngx_http_ai_cache_semantic_zone_t  *z;

    scf = sctx->conf;
    z = scf->shm_zone->data;

    len = sizeof("{\"model\":\"\",\"input\":\"\",\"encoding_format\":"
                 "\"base64\",\"dimensions\":}") - 1
          + ngx_http_ai_escape_json(NULL, scf->model.data, scf->model.len)
          + ngx_http_ai_escape_json(NULL, text->data, text->len)
          + NGX_INT_T_LEN;

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(b->last, "{\"model\":\"", 10);
    p = (u_char *) ngx_http_ai_escape_json(p, scf->model.data,
                                           scf->model.len);
    p = ngx_cpymem(p, "\",\"input\":\"", 11);
    p = (u_char *) ngx_http_ai_escape_json(p, text->data, text->len);
    p = ngx_cpymem(p, "\",\"encoding_format\":\"base64\"", 28);

    if (scf->dimensions) {
        p = ngx_sprintf(p, ",\"dimensions\":%ui", z->params.dim);
    }

    *p++ = '}';
    b->last = p;
    b->last_buf = 1;
    b->last_in_chain = 1;

    cl = ngx_alloc_chain_link(r->pool);
    if (cl == NULL) {
        return NGX_ERROR;
    }

    cl->buf = b;
    cl->next = NULL;

    rb = ngx_pcalloc(r->pool, sizeof(ngx_http_request_body_t));
    if (rb == NULL) {
        return NGX_ERROR;
    }

    rb->bufs = cl;

    ps = ngx_palloc(r->pool, sizeof(ngx_http_post_subrequest_t));
    if (ps == NULL) {
        return NGX_ERROR;
    }

    ps->handler = ngx_http_ai_cache_semantic_fetched;
    ps->data = sctx;

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_ai_cache_semantic_cleanup;
    cln->data = sctx;

    /*
     * in the background: the request does not wait for it to end (a
     * timeout, then a plain miss), and its output is never the client's
     */

    if (ngx_http_subrequest(r, &scf->uri, NULL, &sr, ps,
                            NGX_HTTP_SUBREQUEST_IN_MEMORY
                            |NGX_HTTP_SUBREQUEST_BACKGROUND)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    sctx->subrequest = sr;

    sr->method = NGX_HTTP_POST;
    sr->method_name = ngx_http_ai_semantic_post;
    sr->request_body = rb;
    sr->header_only = 0;

    /* its own headers: none of the client's (its key) go to the service */

    ngx_memzero(&sr->headers_in, sizeof(ngx_http_headers_in_t));

    if (ngx_list_init(&sr->headers_in.headers, r->pool, 2,
                      sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    h = ngx_list_push(&sr->headers_in.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key = ngx_http_ai_semantic_content_type;
    h->value = ngx_http_ai_semantic_json;
    h->lowcase_key = (u_char *) "content-type";
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif

    sr->headers_in.content_type = h;
    sr->headers_in.server = r->headers_in.server;
    sr->headers_in.content_length_n = b->last - b->pos;
    sr->headers_in.keep_alive_n = -1;

    sctx->timer.handler = ngx_http_ai_cache_semantic_timeout;
    sctx->timer.data = sctx;
    sctx->timer.log = r->connection->log;

    ngx_add_timer(&sctx->timer, scf->timeout);

    return NGX_OK;
}


/* the subrequest ended: its embedding, or a plain miss */

static ngx_int_t
ngx_http_ai_cache_semantic_fetched(ngx_http_request_t *sr, void *data,
    ngx_int_t rc)
{
    ngx_http_ai_cache_semantic_ctx_t *sctx = data;

    const char  *why;

    if (sctx->gave_up || sctx->state != NGX_HTTP_AI_SEMANTIC_EMBEDDING) {
        return rc;
    }

    if (sctx->timer.timer_set) {
        ngx_del_timer(&sctx->timer);
    }

    why = NULL;

    if (rc == NGX_ERROR || sr->connection->error) {
        why = "the subrequest failed";

    } else if (ngx_http_ai_cache_semantic_parse(sr, sctx, &why) != NGX_OK) {
        sctx->vec = NULL;
    }

    if (why) {
        ngx_http_ai_cache_semantic_failed(sctx, why);
    }

    sctx->state = NGX_HTTP_AI_SEMANTIC_EMBEDDED;

    ngx_http_ai_resume(sctx->request);

    return rc;
}


/*
 * The answer of the embeddings service, hostile: a 200 with one
 * data[0].embedding, base64 (float32, little-endian, as OpenAI sends it)
 * or an array of numbers, of the zone's dimension, every value finite.
 */

static ngx_int_t
ngx_http_ai_cache_semantic_parse(ngx_http_request_t *sr,
    ngx_http_ai_cache_semantic_ctx_t *sctx, const char **why)
{
    float                              *vec, f;
    cJSON                              *json, *data, *emb, *v;
    ngx_str_t                           src, dst;
    ngx_uint_t                          dim, i;
    ngx_http_ai_cache_semantic_zone_t  *z;

    z = sctx->conf->shm_zone->data;
    dim = z->params.dim;

    if (sr->headers_out.status != NGX_HTTP_OK) {
        *why = "the service did not answer 200";
        return NGX_ERROR;
    }

    if (sr->out == NULL || sr->out->buf == NULL
        || sr->out->buf->last == sr->out->buf->pos)
    {
        *why = "an empty answer (or over subrequest_output_buffer_size)";
        return NGX_ERROR;
    }

    json = cJSON_ParseWithLength((char *) sr->out->buf->pos,
                                 sr->out->buf->last - sr->out->buf->pos);
    if (json == NULL) {
        *why = "the answer is not JSON";
        return NGX_ERROR;
    }

    /* base64 without its padding decodes to 2 bytes more at most */
    vec = ngx_palloc(sctx->request->pool, dim * sizeof(float) + 4);
    if (vec == NULL) {
        cJSON_Delete(json);
        *why = "out of memory";
        return NGX_ERROR;
    }

    data = cJSON_GetObjectItemCaseSensitive(json, "data");
    emb = cJSON_IsArray(data) && data->child
          ? cJSON_GetObjectItemCaseSensitive(data->child, "embedding")
          : NULL;

    *why = "no data[0].embedding of the zone's dim";

    if (cJSON_IsString(emb)) {
        src.data = (u_char *) emb->valuestring;
        src.len = ngx_strlen(emb->valuestring);

        if (ngx_base64_decoded_length(src.len) < dim * sizeof(float)
            || src.len > ngx_base64_encoded_length(dim * sizeof(float)))
        {
            goto failed;
        }

        dst.data = (u_char *) vec;

        if (ngx_decode_base64(&dst, &src) != NGX_OK
            || dst.len != dim * sizeof(float))
        {
            goto failed;
        }

    } else if (cJSON_IsArray(emb)) {
        i = 0;

        cJSON_ArrayForEach(v, emb) {
            if (i == dim || !cJSON_IsNumber(v)) {
                goto failed;
            }

            vec[i++] = (float) v->valuedouble;
        }

        if (i != dim) {
            goto failed;
        }

    } else {
        goto failed;
    }

    for (i = 0; i < dim; i++) {
        f = vec[i];

        if (!(f > -1e6f && f < 1e6f)) {     /* NaN, infinite, absurd */
            *why = "an embedding value out of range";
            goto failed;
        }
    }

    cJSON_Delete(json);

    sctx->vec = vec;
    *why = NULL;

    return NGX_OK;

failed:

    cJSON_Delete(json);

    return NGX_ERROR;
}


/*
 * The zone's mutex, if its layout is still this configuration's: a
 * reload that changed the index's parameters lays it out anew while the
 * old workers finish their requests; theirs then decline (NGX_DECLINED,
 * not locked).
 */

static ngx_int_t
ngx_http_ai_cache_semantic_lock(ngx_http_ai_cache_semantic_zone_t *z)
{
    ngx_http_ai_cache_semantic_sh_t  *sh;

    if (z->vi == NULL) {
        return NGX_DECLINED;
    }

    sh = z->sh;

    ngx_shmtx_lock(&z->shpool->mutex);

    if (sh->magic == NGX_HTTP_AI_SEMANTIC_MAGIC
        && sh->dim == z->params.dim && sh->capacity == z->capacity)
    {
        return NGX_OK;
    }

    ngx_shmtx_unlock(&z->shpool->mutex);

    return NGX_DECLINED;
}


static void
ngx_http_ai_cache_semantic_timeout(ngx_event_t *ev)
{
    ngx_http_ai_cache_semantic_ctx_t *sctx = ev->data;

    ngx_http_request_t  *sr;

    sctx->gave_up = 1;

    ngx_http_ai_cache_semantic_failed(sctx, "timed out");

    /*
     * the subrequest is ended now, its upstream closed: the request's
     * own end (its log, the answer stored, the lock released) waits for
     * every subrequest of it
     */

    sr = sctx->subrequest;

    if (sr && sr->upstream && sr->upstream->cleanup
        && *sr->upstream->cleanup)
    {
        (*sr->upstream->cleanup)(sr);
    }

    ngx_http_ai_resume(sctx->request);
}


static void
ngx_http_ai_cache_semantic_cleanup(void *data)
{
    ngx_http_ai_cache_semantic_ctx_t *sctx = data;

    /* the subrequest may outlive the request's answer, not its pool */
    sctx->gave_up = 1;

    if (sctx->timer.timer_set) {
        ngx_del_timer(&sctx->timer);
    }
}


static void
ngx_http_ai_cache_semantic_failed(ngx_http_ai_cache_semantic_ctx_t *sctx,
    const char *why)
{
    ngx_http_ai_counter_incr(sctx->conf->errors, 1);

    ngx_log_error(NGX_LOG_WARN, sctx->request->connection->log, 0,
                  "ai_cache: no embedding for the semantic lookup (%s): "
                  "a plain miss", why);
}


/* configuration */

char *
ngx_http_ai_cache_semantic(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_cache_loc_conf_t *clcf = conf;

    ngx_int_t                           n;
    ngx_str_t                          *value, s;
    ngx_uint_t                          i;
    ngx_shm_zone_t                     *shm_zone;
    ngx_http_ai_cache_semantic_conf_t  *scf;

    if (clcf->semantic != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        if (cf->args->nelts != 2) {
            return "takes no parameters after \"off\"";
        }

        clcf->semantic = NULL;
        return NGX_CONF_OK;
    }

    scf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_cache_semantic_conf_t));
    if (scf == NULL) {
        return NGX_CONF_ERROR;
    }

    scf->threshold = 0.95f;
    scf->timeout = 1000;
    scf->max_text = 8192;
    scf->dimensions = 1;
    ngx_str_set(&scf->model, "text-embedding-3-small");

    shm_zone = ngx_shared_memory_add(cf, &value[1], 0,
                                     &ngx_http_ai_cache_module);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "embeddings=", 11) == 0) {
            scf->uri.data = value[i].data + 11;
            scf->uri.len = value[i].len - 11;

            if (scf->uri.len == 0 || scf->uri.data[0] != '/') {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "model=", 6) == 0) {
            scf->model.data = value[i].data + 6;
            scf->model.len = value[i].len - 6;

            if (scf->model.len == 0) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "threshold=", 10) == 0) {
            s.data = value[i].data + 10;
            s.len = value[i].len - 10;

            n = ngx_atofp(s.data, s.len, 4);

            if (n == NGX_ERROR || n <= 0 || n > 10000) {
                goto invalid;
            }

            scf->threshold = (float) n / 10000;
            continue;
        }

        if (ngx_strncmp(value[i].data, "timeout=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;

            scf->timeout = ngx_parse_time(&s, 0);

            if (scf->timeout == (ngx_msec_t) NGX_ERROR || scf->timeout == 0)
            {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "max_text=", 9) == 0) {
            s.data = value[i].data + 9;
            s.len = value[i].len - 9;

            scf->max_text = ngx_parse_size(&s);

            if (scf->max_text == (size_t) NGX_ERROR || scf->max_text == 0) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strcmp(value[i].data, "dimensions=on") == 0) {
            scf->dimensions = 1;
            continue;
        }

        if (ngx_strcmp(value[i].data, "dimensions=off") == 0) {
            scf->dimensions = 0;
            continue;
        }

        goto invalid;
    }

    if (scf->uri.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_cache_semantic \"%V\": embeddings=URI is "
                           "required (an internal location that proxies "
                           "to an OpenAI-compatible embeddings service)",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    /* the zone is declared by ai_cache_semantic_zone, before or after */

    scf->shm_zone = shm_zone;
    clcf->semantic = scf;

    if (ngx_http_ai_cache_semantic_counters(cf, scf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "ai_cache_semantic: invalid parameter \"%V\" "
                       "(embeddings=/uri, model=name, threshold=0..1, "
                       "timeout=time, max_text=size, dimensions=on|off)",
                       &value[i]);
    return NGX_CONF_ERROR;
}


char *
ngx_http_ai_cache_semantic_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ssize_t                             size;
    ngx_int_t                           n;
    ngx_str_t                          *value, s;
    ngx_uint_t                          i;
    ngx_shm_zone_t                     *shm_zone;
    ngx_http_ai_cache_semantic_zone_t  *z;

    value = cf->args->elts;

    z = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_cache_semantic_zone_t));
    if (z == NULL) {
        return NGX_CONF_ERROR;
    }

    z->name = value[1];
    size = 0;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "size=", 5) == 0) {
            s.data = value[i].data + 5;
            s.len = value[i].len - 5;

            size = ngx_parse_size(&s);

            if (size == NGX_ERROR || size < 256 * 1024) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "dim=", 4) == 0) {
            n = ngx_atoi(value[i].data + 4, value[i].len - 4);

            if (n < NGX_HTTP_AI_VECTOR_DIM_MIN
                || n > NGX_HTTP_AI_VECTOR_DIM_MAX)
            {
                goto invalid;
            }

            z->params.dim = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "nprobe=", 7) == 0) {
            n = ngx_atoi(value[i].data + 7, value[i].len - 7);

            if (n < 1 || n > NGX_HTTP_AI_VECTOR_NPROBE_MAX) {
                goto invalid;
            }

            z->params.nprobe = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "exact_max=", 10) == 0) {
            n = ngx_atoi(value[i].data + 10, value[i].len - 10);

            if (n < 1) {
                goto invalid;
            }

            z->params.exact_max = n;
            continue;
        }

        goto invalid;
    }

    if (size == 0 || z->params.dim == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_cache_semantic_zone \"%V\": size= and dim= "
                           "are required", &value[1]);
        return NGX_CONF_ERROR;
    }

    shm_zone = ngx_shared_memory_add(cf, &value[1], size,
                                     &ngx_http_ai_cache_module);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_cache_semantic_zone \"%V\" is duplicate",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    z->shm_zone = shm_zone;
    shm_zone->init = ngx_http_ai_cache_semantic_init_zone;
    shm_zone->data = z;

    if (ngx_http_ai_semantic_metrics_cycle != cf->cycle) {
        ngx_http_ai_semantic_metrics_cycle = cf->cycle;

        if (ngx_http_ai_add_metrics(cf, ngx_http_ai_cache_semantic_metrics)
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "ai_cache_semantic_zone: invalid parameter \"%V\" "
                       "(size=size of 256k or more, dim=1..%d, "
                       "nprobe=1..%d, exact_max=number)", &value[i],
                       NGX_HTTP_AI_VECTOR_DIM_MAX,
                       NGX_HTTP_AI_VECTOR_NPROBE_MAX);
    return NGX_CONF_ERROR;
}


/*
 * The zone: its header, the keys, then the index, in one region from the
 * slab pool.  Reused on a reload when the index's parameters are the
 * same (ngx_http_ai_vector_attach()), laid out anew otherwise.
 */

static ngx_int_t
ngx_http_ai_cache_semantic_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_ai_cache_semantic_zone_t *oz = data;

    size_t                              size, need, keys, hdr;
    u_char                             *region;
    ngx_uint_t                          lo, hi, mid, capacity;
    ngx_slab_pool_t                    *shpool;
    ngx_http_ai_vector_params_t         params;
    ngx_http_ai_cache_semantic_sh_t    *sh;
    ngx_http_ai_cache_semantic_zone_t  *z;

    z = shm_zone->data;
    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;
    z->shpool = shpool;

    if (oz) {
        sh = oz->sh;
        size = oz->size;

    } else if (shm_zone->shm.exists) {
        sh = shpool->data;
        size = sh->size;

    } else {
        size = (shpool->pfree - 1) * ngx_pagesize;

        sh = ngx_slab_alloc(shpool, size);
        if (sh == NULL) {
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "ai_cache_semantic_zone \"%V\": no memory for "
                          "the index", &shm_zone->shm.name);
            return NGX_ERROR;
        }

        shpool->data = sh;
        sh->magic = 0;
        sh->size = size;
    }

    z->sh = sh;
    z->size = size;

    hdr = ngx_align(sizeof(ngx_http_ai_cache_semantic_sh_t),
                    NGX_HTTP_AI_VECTOR_ALIGN)
          + ngx_align(NGX_HTTP_AI_SEMANTIC_GROUPS
                      * sizeof(ngx_http_ai_cache_semantic_group_t),
                      NGX_HTTP_AI_VECTOR_ALIGN);
    region = (u_char *) sh;

    /* the most entries whose keys and index fit */

    lo = 0;
    hi = size / NGX_HTTP_AI_CACHE_KEY_LEN;

    while (lo < hi) {
        mid = lo + (hi - lo + 1) / 2;

        params = z->params;
        params.capacity = mid;

        keys = ngx_align(mid * NGX_HTTP_AI_CACHE_KEY_LEN,
                         NGX_HTTP_AI_VECTOR_ALIGN);
        need = ngx_http_ai_vector_size(&params);

        if (need && hdr + keys + need <= size) {
            lo = mid;

        } else {
            hi = mid - 1;
        }
    }

    capacity = lo;

    if (capacity == 0) {
        ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                      "ai_cache_semantic_zone \"%V\" is too small for "
                      "one entry of dim %ui", &shm_zone->shm.name,
                      z->params.dim);
        return NGX_ERROR;
    }

    keys = ngx_align(capacity * NGX_HTTP_AI_CACHE_KEY_LEN,
                     NGX_HTTP_AI_VECTOR_ALIGN);

    params = z->params;
    params.capacity = capacity;

    z->groups = (ngx_http_ai_cache_semantic_group_t *)
                (region + ngx_align(sizeof(ngx_http_ai_cache_semantic_sh_t),
                                    NGX_HTTP_AI_VECTOR_ALIGN));
    z->keys = region + hdr;
    z->vi = NULL;

    if (sh->magic == NGX_HTTP_AI_SEMANTIC_MAGIC && sh->dim == params.dim
        && sh->capacity == capacity)
    {
        z->vi = ngx_http_ai_vector_attach(region + hdr + keys,
                                          size - hdr - keys, &params);
    }

    if (z->vi == NULL) {
        sh->magic = 0;

        ngx_memzero(z->groups, NGX_HTTP_AI_SEMANTIC_GROUPS
                               * sizeof(ngx_http_ai_cache_semantic_group_t));

        z->vi = ngx_http_ai_vector_init(region + hdr + keys,
                                        size - hdr - keys, &params,
                                        &capacity);
        if (z->vi == NULL) {
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "ai_cache_semantic_zone \"%V\": the index "
                          "does not fit", &shm_zone->shm.name);
            return NGX_ERROR;
        }

        sh->dim = params.dim;
        sh->capacity = params.capacity;
        sh->magic = NGX_HTTP_AI_SEMANTIC_MAGIC;
    }

    z->capacity = params.capacity;

    ngx_log_error(NGX_LOG_NOTICE, shm_zone->shm.log, 0,
                  "ai_cache_semantic_zone \"%V\": %ui entries of dim %ui",
                  &shm_zone->shm.name, z->capacity, params.dim);

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_cache_semantic_counters(ngx_conf_t *cf,
    ngx_http_ai_cache_semantic_conf_t *scf)
{
    ngx_str_t  name, help;

    /* the configuration's own (a name registered again is the same) */

    ngx_str_set(&name, "ai_cache_semantic_lookups_total");
    ngx_str_set(&help, "semantic cache lookups (an exact miss embedded)");
    scf->lookups = ngx_http_ai_counter_add(cf, &name, &help);

    ngx_str_set(&name, "ai_cache_semantic_matches_total");
    ngx_str_set(&help, "semantic cache matches (a similar question found; "
                       "a hit unless its entry was gone)");
    scf->matches = ngx_http_ai_counter_add(cf, &name, &help);

    ngx_str_set(&name, "ai_cache_semantic_errors_total");
    ngx_str_set(&help, "semantic lookups without an embedding (the "
                       "service failed or timed out): plain misses");
    scf->errors = ngx_http_ai_counter_add(cf, &name, &help);

    if (scf->lookups == NULL || scf->matches == NULL || scf->errors == NULL)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* each zone's index: entries, capacity, evictions (ai_log's /metrics) */

static ngx_int_t
ngx_http_ai_cache_semantic_metrics(ngx_http_request_t *r, ngx_chain_t ***out)
{
    u_char                             *p;
    size_t                              size;
    ngx_buf_t                          *b;
    ngx_uint_t                          i, pass;
    ngx_chain_t                        *cl;
    ngx_list_part_t                    *part;
    ngx_shm_zone_t                     *shm_zone;
    ngx_http_ai_vector_stats_t          st;
    ngx_http_ai_cache_semantic_zone_t  *z;

    static u_char  head[] =
        "# HELP ai_cache_semantic_entries Vectors in the semantic cache's "
        "index (the expired not yet swept included)\n"
        "# TYPE ai_cache_semantic_entries gauge\n"
        "# HELP ai_cache_semantic_capacity Vectors the index holds at most\n"
        "# TYPE ai_cache_semantic_capacity gauge\n"
        "# HELP ai_cache_semantic_evictions_total Vectors evicted to make "
        "room (the oldest first)\n"
        "# TYPE ai_cache_semantic_evictions_total counter\n";

    size = sizeof(head);
    b = NULL;
    p = NULL;

    /* the size of the lines, then the lines */

    for (pass = 0; pass < 2; pass++) {

        part = (ngx_list_part_t *) &ngx_cycle->shared_memory.part;
        shm_zone = part->elts;

        for (i = 0; /* void */ ; i++) {

            if (i >= part->nelts) {
                if (part->next == NULL) {
                    break;
                }

                part = part->next;
                shm_zone = part->elts;
                i = 0;
            }

            if (shm_zone[i].tag != &ngx_http_ai_cache_module
                || shm_zone[i].init != ngx_http_ai_cache_semantic_init_zone
                || shm_zone[i].data == NULL)
            {
                continue;
            }

            z = shm_zone[i].data;

            if (z->vi == NULL) {
                continue;
            }

            if (pass == 0) {
                size += 3 * (64 + z->name.len + NGX_INT64_LEN);
                continue;
            }

            if (ngx_http_ai_cache_semantic_lock(z) != NGX_OK) {
                ngx_memzero(&st, sizeof(ngx_http_ai_vector_stats_t));

            } else {
                ngx_http_ai_vector_stats(z->vi, &st);
                ngx_shmtx_unlock(&z->shpool->mutex);
            }

            p = ngx_sprintf(p, "ai_cache_semantic_entries{zone=\"%V\"} %ui\n"
                            "ai_cache_semantic_capacity{zone=\"%V\"} %ui\n"
                            "ai_cache_semantic_evictions_total{zone=\"%V\"} "
                            "%uL\n",
                            &z->name, st.count, &z->name, st.capacity,
                            &z->name, st.evictions);
        }

        if (pass == 0) {
            if (size == sizeof(head)) {
                return NGX_OK;
            }

            b = ngx_create_temp_buf(r->pool, size);
            if (b == NULL) {
                return NGX_ERROR;
            }

            p = ngx_cpymem(b->last, head, sizeof(head) - 1);
        }
    }

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
