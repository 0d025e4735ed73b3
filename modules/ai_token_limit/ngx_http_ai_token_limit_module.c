
/*
 * Copyright (C) AI Gateway authors
 *
 * ngx_http_ai_token_limit_module: limits on tokens, requests, concurrent
 * requests and money, per any key, reserved before a request goes
 * upstream and settled exactly after, however it ended:
 *
 *     ai_token_limit_zone NAME key=KEY [store=STORE | size=SIZE];  (http)
 *     ai_token_limit ZONE AMOUNT [count=tokens|prompt|completion|
 *                    requests|concurrent|money] [per=WINDOW]
 *                    [algorithm=sliding|bucket] [fail=open|closed]
 *                    [dry_run];
 *     ai_token_budget ZONE AMOUNT [count=tokens|prompt|completion|money]
 *                     [fail=open|closed] [dry_run];
 *     ai_token_limit_output DEFAULT [max=N];
 *     ai_token_limit_headers on|off;
 *     ai_token_limit_cached free|full;
 *     ai_token_limit_admin;                  (location: budgets, JSON)
 *
 * The core's LIMIT stage reserves, rule by rule, the request's estimate
 * (its prompt, estimated, and the output it may produce) with the store's
 * atomic RESERVE, which refuses what does not fit; a refusal releases
 * what the earlier rules reserved and answers 429 in the door's shape.
 * The core's completion hook replaces each reservation with what the
 * request really used (the provider's usage, or the local count of a cut
 * stream), so under concurrency the admitted total exceeds a limit by no
 * more than what is reserved and still in flight.
 */


#include "ngx_http_ai_token_limit.h"


static ngx_int_t ngx_http_ai_token_limit_stage(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ai);
static ngx_int_t ngx_http_ai_token_limit_start(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ai, ngx_http_ai_tl_ctx_t *ctx,
    ngx_http_ai_tl_hold_t *h);
static int64_t ngx_http_ai_token_limit_amount(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ai, ngx_http_ai_tl_ctx_t *ctx,
    ngx_http_ai_tl_rule_t *rule, ngx_http_ai_usage_t *usage);
static void ngx_http_ai_token_limit_reserved(ngx_http_ai_store_op_t *op);
static ngx_int_t ngx_http_ai_token_limit_refuse(ngx_http_request_t *r,
    ngx_http_ai_tl_ctx_t *ctx, ngx_http_ai_tl_hold_t *h);
static ngx_int_t ngx_http_ai_token_limit_unavailable(ngx_http_request_t *r,
    ngx_http_ai_tl_ctx_t *ctx, ngx_http_ai_tl_hold_t *h);
static void ngx_http_ai_token_limit_done(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ai);
static void ngx_http_ai_token_limit_release(ngx_http_request_t *r,
    ngx_http_ai_tl_ctx_t *ctx);
static void ngx_http_ai_token_limit_settle(ngx_http_request_t *r,
    ngx_http_ai_tl_hold_t *h, int64_t delta);
static void ngx_http_ai_token_limit_settled(ngx_http_ai_store_op_t *op);
static void ngx_http_ai_token_limit_budget_seen(ngx_http_request_t *r,
    ngx_http_ai_tl_rule_t *rule, ngx_str_t *key, int64_t used);
static void ngx_http_ai_token_limit_outcome(ngx_http_request_t *r,
    const char *value);

static char *ngx_http_ai_token_limit_zone(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_ai_token_limit(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_ai_token_limit_add_budget(ngx_conf_t *cf,
    ngx_http_ai_tl_main_conf_t *tmcf, ngx_http_ai_tl_rule_t *rule);
static char *ngx_http_ai_token_limit_output(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_ai_token_limit_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_ai_token_limit_postconfiguration(ngx_conf_t *cf);
static void *ngx_http_ai_token_limit_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_ai_token_limit_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_ai_token_limit_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);


typedef struct {
    ngx_str_t                   name;
    ngx_uint_t                  value;
} ngx_http_ai_tl_name_t;


static ngx_http_ai_tl_name_t  ngx_http_ai_token_limit_counts[] = {
    { ngx_string("tokens"), NGX_HTTP_AI_TL_TOKENS },
    { ngx_string("prompt"), NGX_HTTP_AI_TL_PROMPT },
    { ngx_string("completion"), NGX_HTTP_AI_TL_COMPLETION },
    { ngx_string("requests"), NGX_HTTP_AI_TL_REQUESTS },
    { ngx_string("concurrent"), NGX_HTTP_AI_TL_CONCURRENT },
    { ngx_string("money"), NGX_HTTP_AI_TL_MONEY },
    { ngx_null_string, 0 }
};


static ngx_http_ai_tl_name_t  ngx_http_ai_token_limit_windows[] = {
    { ngx_string("second"), 1000 },
    { ngx_string("minute"), 60 * 1000 },
    { ngx_string("hour"), 60 * 60 * 1000 },
    { ngx_string("day"), 24 * 60 * 60 * 1000 },
    { ngx_string("month"), (ngx_uint_t) 30 * 24 * 60 * 60 * 1000 },
    { ngx_null_string, 0 }
};


static const char  *ngx_http_ai_token_limit_units[] = {
    "tokens", "prompt tokens", "completion tokens", "requests",
    "concurrent requests", "US dollars"
};


static ngx_conf_enum_t  ngx_http_ai_token_limit_cached[] = {
    { ngx_string("free"), NGX_HTTP_AI_TL_CACHED_FREE },
    { ngx_string("full"), NGX_HTTP_AI_TL_CACHED_FULL },
    { ngx_null_string, 0 }
};


static ngx_str_t  ngx_http_ai_token_limit_help[] = {
    ngx_string("Requests over a limit (dry-run rules included)"),
    ngx_string("Limit store operations that failed")
};


static ngx_command_t  ngx_http_ai_token_limit_commands[] = {

    { ngx_string("ai_token_limit_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE23,
      ngx_http_ai_token_limit_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_token_limit"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_2MORE,
      ngx_http_ai_token_limit,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_token_budget"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_2MORE,
      ngx_http_ai_token_limit,
      NGX_HTTP_LOC_CONF_OFFSET,
      1,
      NULL },

    { ngx_string("ai_token_limit_admin"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_ai_token_limit_admin,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_token_limit_output"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF
                        |NGX_CONF_TAKE12,
      ngx_http_ai_token_limit_output,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_token_limit_cached"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_tl_loc_conf_t, cached),
      &ngx_http_ai_token_limit_cached },

    { ngx_string("ai_token_limit_headers"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_tl_loc_conf_t, headers),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_ai_token_limit_module_ctx = {
    ngx_http_ai_token_limit_preconfiguration, /* preconfiguration */
    ngx_http_ai_token_limit_postconfiguration, /* postconfiguration */

    ngx_http_ai_token_limit_create_main_conf, /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_ai_token_limit_create_loc_conf, /* create location configuration */
    ngx_http_ai_token_limit_merge_loc_conf /* merge location configuration */
};


ngx_module_t  ngx_http_ai_token_limit_module = {
    NGX_MODULE_V1,
    &ngx_http_ai_token_limit_module_ctx,   /* module context */
    ngx_http_ai_token_limit_commands,      /* module directives */
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


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;


/* the LIMIT stage: the location's rules reserved one after the other */

static ngx_int_t
ngx_http_ai_token_limit_stage(ngx_http_request_t *r, ngx_http_ai_ctx_t *ai)
{
    ngx_int_t                   rc;
    ngx_uint_t                  i;
    ngx_http_ai_tl_ctx_t       *ctx;
    ngx_http_ai_tl_hold_t      *h;
    ngx_http_ai_tl_rule_t      *rules;
    ngx_http_ai_tl_loc_conf_t  *tlcf;

    tlcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_token_limit_module);

    if (tlcf->rules == NULL) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_token_limit_module);

    if (ctx == NULL) {
        ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_ai_tl_ctx_t));
        if (ctx == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx->nholds = tlcf->rules->nelts;
        ctx->holds = ngx_pcalloc(r->pool,
                                 ctx->nholds * sizeof(ngx_http_ai_tl_hold_t));
        if (ctx->holds == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        rules = tlcf->rules->elts;

        for (i = 0; i < ctx->nholds; i++) {
            ctx->holds[i].rule = &rules[i];
        }

        ctx->request = r;
        ctx->prompt = ngx_http_ai_estimate_tokens(&ai->req);

        if (ai->req.endpoint == NGX_HTTP_AI_EP_COUNT_TOKENS) {
            /* counting runs no model: a request, no tokens */
            ctx->prompt = 0;
            ctx->output = 0;

        } else if (ai->req.max_tokens != NGX_HTTP_AI_UNSET) {
            ctx->output = ngx_min(ai->req.max_tokens, tlcf->output_max);

        } else if (ai->req.endpoint == NGX_HTTP_AI_EP_EMBEDDINGS) {
            ctx->output = 0;

        } else {
            ctx->output = ngx_min(tlcf->output, tlcf->output_max);
        }

        ngx_http_set_ctx(r, ctx, ngx_http_ai_token_limit_module);

        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "ai_token_limit: %ui rules, prompt ~%L, output %L",
                       ctx->nholds, ctx->prompt, ctx->output);
    }

    if (ctx->waiting) {
        return NGX_AGAIN;
    }

    while (ctx->next < ctx->nholds) {
        h = &ctx->holds[ctx->next];

        if (!h->started) {
            rc = ngx_http_ai_token_limit_start(r, ai, ctx, h);

            if (rc == NGX_AGAIN) {
                return NGX_AGAIN;
            }

            if (rc != NGX_OK) {
                return rc;
            }

            if (!h->done) {
                /* no key: the rule does not apply */
                ctx->next++;
                continue;
            }
        }

        ctx->next++;

        if (h->rc == NGX_OK) {
            h->held = (h->reserved != 0);
            continue;
        }

        if (h->rc == NGX_DECLINED) {
            ngx_http_ai_counter_incr(h->rule->rejected, 1);

            if (h->rule->dry_run) {
                ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                              "ai_token_limit \"%V\": over %V %s per %V "
                              "(dry run)", &h->rule->zone->name,
                              &h->rule->amount_text,
                              ngx_http_ai_token_limit_units[h->rule->count],
                              &h->rule->per_text);
                ngx_http_ai_token_limit_outcome(r, "dry_run");
                continue;
            }

            return ngx_http_ai_token_limit_refuse(r, ctx, h);
        }

        /* the store failed */

        ngx_http_ai_counter_incr(h->rule->errors, 1);

        if (h->rule->fail_closed) {
            return ngx_http_ai_token_limit_unavailable(r, ctx, h);
        }

        ngx_http_ai_token_limit_outcome(r, "store_error");
    }

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_ai_token_limit_start(ngx_http_request_t *r, ngx_http_ai_ctx_t *ai,
    ngx_http_ai_tl_ctx_t *ctx, ngx_http_ai_tl_hold_t *h)
{
    u_char                  *p;
    ngx_int_t                rc;
    ngx_str_t                key;
    ngx_http_ai_usage_t      usage;
    ngx_http_ai_tl_rule_t   *rule;
    ngx_http_ai_store_op_t  *op;

    rule = h->rule;
    h->started = 1;

    if (ngx_http_complex_value(r, &rule->zone->key, &key) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (key.len == 0) {
        return NGX_OK;
    }

    if (key.len > 1024) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ai_token_limit \"%V\": a key of %uz bytes is too "
                      "long, the rule is not applied", &rule->zone->name,
                      key.len);
        return NGX_OK;
    }

    h->key.len = rule->prefix.len + key.len;
    h->key.data = ngx_pnalloc(r->pool, h->key.len);
    if (h->key.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(h->key.data, rule->prefix.data, rule->prefix.len);
    ngx_memcpy(p, key.data, key.len);

    ngx_memzero(&usage, sizeof(ngx_http_ai_usage_t));
    usage.prompt_tokens = ctx->prompt;
    usage.completion_tokens = ctx->output;
    usage.total_tokens = ctx->prompt + ctx->output;

    h->reserved = ngx_http_ai_token_limit_amount(r, ai, ctx, rule, &usage);

    op = ngx_http_ai_store_op(rule->zone->store, r, r->connection->log);
    if (op == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    op->type = NGX_HTTP_AI_STORE_RESERVE;
    op->key = h->key;
    op->delta = h->reserved;
    op->limit = rule->amount;
    op->window = rule->window;
    op->bucket = rule->bucket;
    op->pool = r->pool;
    op->handler = ngx_http_ai_token_limit_reserved;
    op->data = h;

    rc = ngx_http_ai_store_run(op);

    if (rc == NGX_AGAIN) {
        ctx->waiting = 1;
        return NGX_AGAIN;
    }

    if (rc == NGX_ERROR) {
        op->rc = NGX_ERROR;
    }

    ngx_http_ai_token_limit_reserved(op);

    return NGX_OK;
}


/* what a rule counts of a usage (an estimate, or the final usage) */

static int64_t
ngx_http_ai_token_limit_amount(ngx_http_request_t *r, ngx_http_ai_ctx_t *ai,
    ngx_http_ai_tl_ctx_t *ctx, ngx_http_ai_tl_rule_t *rule,
    ngx_http_ai_usage_t *usage)
{
    int64_t     micros;
    ngx_str_t  *model;

    switch (rule->count) {

    case NGX_HTTP_AI_TL_PROMPT:
        return usage->prompt_tokens;

    case NGX_HTTP_AI_TL_COMPLETION:
        return usage->completion_tokens;

    case NGX_HTTP_AI_TL_REQUESTS:
    case NGX_HTTP_AI_TL_CONCURRENT:
        return 1;

    case NGX_HTTP_AI_TL_MONEY:
        model = ai->upstream_model.len ? &ai->upstream_model
                : ai->route_model.len ? &ai->route_model : &ai->req.model;

        if (ngx_http_ai_cost_micros(r, model, usage, &micros) != NGX_OK) {
            /* no price: counts nothing */
            return 0;
        }

        return micros;

    default: /* NGX_HTTP_AI_TL_TOKENS */
        return (int64_t) usage->prompt_tokens + usage->completion_tokens;
    }
}


static void
ngx_http_ai_token_limit_reserved(ngx_http_ai_store_op_t *op)
{
    ngx_http_ai_tl_ctx_t   *ctx;
    ngx_http_ai_tl_hold_t  *h;

    h = op->data;

    h->rc = op->rc;
    h->done = 1;
    h->stamp = op->stamp;
    h->used = op->number;
    h->reset = op->ttl;
    h->retry = op->retry;

    if (h->rule->budget && op->rc != NGX_ERROR && op->request) {
        ngx_http_ai_token_limit_budget_seen(op->request, h->rule, &op->key,
                                            op->number);
    }

    if (op->request == NULL) {
        return;
    }

    ctx = ngx_http_get_module_ctx(op->request,
                                  ngx_http_ai_token_limit_module);

    if (ctx && ctx->waiting) {
        ctx->waiting = 0;
        ngx_http_ai_resume(op->request);
    }
}


static ngx_int_t
ngx_http_ai_token_limit_refuse(ngx_http_request_t *r,
    ngx_http_ai_tl_ctx_t *ctx, ngx_http_ai_tl_hold_t *h)
{
    u_char                 *p;
    ngx_table_elt_t        *ra;
    ngx_http_ai_tl_rule_t  *rule;

    rule = h->rule;
    ctx->refused = h;

    ngx_http_ai_token_limit_release(r, ctx);
    ngx_http_ai_token_limit_outcome(r, "rejected");

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "ai_token_limit \"%V\": over %V %s per %V, refused",
                  &rule->zone->name, &rule->amount_text,
                  ngx_http_ai_token_limit_units[rule->count],
                  &rule->per_text);

    if (rule->budget) {
        /* as OpenAI tells a spent quota */
        return ngx_http_ai_error(r, NGX_HTTP_TOO_MANY_REQUESTS, NULL, NULL,
                                 "insufficient_quota",
                                 "Budget \"%V\" exhausted: the request "
                                 "may use more than is left.",
                                 &rule->zone->name);
    }

    if (h->retry) {
        ra = ngx_list_push(&r->headers_out.headers);
        if (ra == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ra->hash = 1;
        ngx_str_set(&ra->key, "Retry-After");
        ra->value.data = p;
        ra->value.len = ngx_sprintf(p, "%M", (h->retry + 999) / 1000) - p;
#if (nginx_version >= 1023000)
        ra->next = NULL;
#endif

        return ngx_http_ai_error(r, NGX_HTTP_TOO_MANY_REQUESTS, NULL, NULL,
                                 "rate_limit_exceeded",
                                 "Rate limit reached for \"%V\": %V %s per "
                                 "%V. Try again in %Ms.",
                                 &rule->zone->name, &rule->amount_text,
                                 ngx_http_ai_token_limit_units[rule->count],
                                 &rule->per_text, (h->retry + 999) / 1000);
    }

    if (rule->count == NGX_HTTP_AI_TL_CONCURRENT) {
        return ngx_http_ai_error(r, NGX_HTTP_TOO_MANY_REQUESTS, NULL, NULL,
                                 "rate_limit_exceeded",
                                 "Limit reached for \"%V\": %V concurrent "
                                 "requests.", &rule->zone->name,
                                 &rule->amount_text);
    }

    /* more than the limit itself: it never fits */

    return ngx_http_ai_error(r, NGX_HTTP_TOO_MANY_REQUESTS, NULL, NULL,
                             "rate_limit_exceeded",
                             "Request too large for \"%V\": %V %s per %V, "
                             "the request may use more. Reduce the prompt "
                             "or max_tokens.", &rule->zone->name,
                             &rule->amount_text,
                             ngx_http_ai_token_limit_units[rule->count],
                             &rule->per_text);
}


static ngx_int_t
ngx_http_ai_token_limit_unavailable(ngx_http_request_t *r,
    ngx_http_ai_tl_ctx_t *ctx, ngx_http_ai_tl_hold_t *h)
{
    ngx_http_ai_token_limit_release(r, ctx);
    ngx_http_ai_token_limit_outcome(r, "store_error");

    return ngx_http_ai_error(r, NGX_HTTP_SERVICE_UNAVAILABLE, NULL, NULL,
                             "limit_unavailable",
                             "The limit \"%V\" cannot be checked now; try "
                             "again later.", &h->rule->zone->name);
}


/* the completion hook: each reservation replaced with what was used */

static void
ngx_http_ai_token_limit_done(ngx_http_request_t *r, ngx_http_ai_ctx_t *ai)
{
    int64_t                     used;
    ngx_int_t                   rc;
    ngx_uint_t                  i, keep;
    ngx_http_ai_usage_t         usage;
    ngx_http_ai_tl_ctx_t       *ctx;
    ngx_http_ai_tl_hold_t      *h;
    ngx_http_ai_tl_loc_conf_t  *tlcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_token_limit_module);

    if (ctx == NULL || ctx->settled) {
        return;
    }

    ctx->settled = 1;

    if (ctx->waiting) {
        /* a reservation was under way when the request went: the core
         * cancelled it, whatever it did stays until its window ends */
        ctx->waiting = 0;
    }

    tlcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_token_limit_module);

    /*
     * Another stage's answer (a cache hit) costs nothing unless told so,
     * then what its usage says.  No usage: an answer that reached the
     * client without one keeps its reservation (the provider charged
     * something); anything else (an error, a request never sent) used
     * nothing.  A usage with a count that was not one (a negative, a
     * string, over the maximum) is short: such an answer keeps its
     * reservation too, or what the counts that were read say if more.
     */

    if (ai->answered && tlcf->cached == NGX_HTTP_AI_TL_CACHED_FREE) {
        rc = NGX_DECLINED;

    } else {
        rc = ngx_http_ai_final_usage(r, &usage);
    }

    keep = ((rc != NGX_OK || usage.refused) && !ai->answered && !ai->error
            && ai->provider.len
            && r->headers_out.status >= 200 && r->headers_out.status < 300);

    if (rc != NGX_OK) {
        ngx_memzero(&usage, sizeof(ngx_http_ai_usage_t));
    }

    for (i = 0; i < ctx->nholds; i++) {
        h = &ctx->holds[i];

        if (!h->held) {
            continue;
        }

        h->held = 0;

        switch (h->rule->count) {

        case NGX_HTTP_AI_TL_CONCURRENT:
            used = 0;
            break;

        case NGX_HTTP_AI_TL_REQUESTS:
            used = h->reserved;
            break;

        default:
            used = ngx_http_ai_token_limit_amount(r, ai, ctx, h->rule,
                                                  &usage);

            if (keep && used < h->reserved) {
                used = h->reserved;
            }
        }

        ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "ai_token_limit \"%V\": reserved %L, used %L%s",
                       &h->rule->zone->name, h->reserved, used,
                       usage.estimated ? " (estimated)" : "");

        if (used != h->reserved) {
            ngx_http_ai_token_limit_settle(r, h, used - h->reserved);
        }
    }
}


/* a refusal: what the earlier rules reserved is given back */

static void
ngx_http_ai_token_limit_release(ngx_http_request_t *r,
    ngx_http_ai_tl_ctx_t *ctx)
{
    ngx_uint_t              i;
    ngx_http_ai_tl_hold_t  *h;

    ctx->settled = 1;

    for (i = 0; i < ctx->nholds; i++) {
        h = &ctx->holds[i];

        if (h->held) {
            h->held = 0;
            ngx_http_ai_token_limit_settle(r, h, -h->reserved);
        }
    }
}


/* detached: it completes even after the request is gone */

static void
ngx_http_ai_token_limit_settle(ngx_http_request_t *r,
    ngx_http_ai_tl_hold_t *h, int64_t delta)
{
    ngx_http_ai_store_op_t  *op;

    op = ngx_http_ai_store_op(h->rule->zone->store, NULL, ngx_cycle->log);
    if (op == NULL) {
        return;
    }

    op->key.data = ngx_pnalloc(op->pool, h->key.len);
    if (op->key.data == NULL) {
        return;
    }

    ngx_memcpy(op->key.data, h->key.data, h->key.len);
    op->key.len = h->key.len;

    op->type = NGX_HTTP_AI_STORE_INCR;
    op->delta = delta;
    op->window = h->rule->window;
    op->bucket = h->rule->bucket;
    op->stamp = h->stamp;
    op->handler = ngx_http_ai_token_limit_settled;
    op->data = h->rule;

    (void) ngx_http_ai_store_run(op);
}


static void
ngx_http_ai_token_limit_settled(ngx_http_ai_store_op_t *op)
{
    ngx_http_ai_tl_rule_t  *rule = op->data;

    if (rule->budget && op->rc == NGX_OK) {
        ngx_http_ai_token_limit_budget_seen(NULL, rule, &op->key,
                                            op->number);
    }

    if (op->rc == NGX_ERROR) {
        ngx_http_ai_counter_incr(rule->errors, 1);

        ngx_log_error(NGX_LOG_ERR, op->log, 0,
                      "ai_token_limit \"%V\": a settlement of %L failed in "
                      "the store \"%V\"", &rule->zone->name, op->delta,
                      &rule->zone->store->name);
    }
}


/* what is left of a budget's key, for the metrics */

static void
ngx_http_ai_token_limit_budget_seen(ngx_http_request_t *r,
    ngx_http_ai_tl_rule_t *rule, ngx_str_t *key, int64_t used)
{
    ngx_str_t                    k;
    ngx_http_ai_tl_main_conf_t  *tmcf;

    tmcf = r ? ngx_http_get_module_main_conf(r, ngx_http_ai_token_limit_module)
             : ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                             ngx_http_ai_token_limit_module);

    if (tmcf == NULL || key->len < rule->prefix.len) {
        return;
    }

    k.data = key->data + rule->prefix.len;
    k.len = key->len - rule->prefix.len;

    ngx_http_ai_token_limit_gauge(tmcf, &rule->zone->name, rule->count, &k,
                                  rule->amount - used);
}


static void
ngx_http_ai_token_limit_outcome(ngx_http_request_t *r, const char *value)
{
    ngx_str_t  name, v;

    ngx_str_set(&name, "limit");
    v.data = (u_char *) value;
    v.len = ngx_strlen(value);

    (void) ngx_http_ai_set_outcome(r, &name, &v);
}


/* the rate limit headers on every answer of a limited location */

static ngx_int_t
ngx_http_ai_token_limit_header_filter(ngx_http_request_t *r)
{
    ngx_http_ai_tl_ctx_t       *ctx;
    ngx_http_ai_tl_loc_conf_t  *tlcf;

    tlcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_token_limit_module);

    if (r != r->main || tlcf->admin) {
        return ngx_http_next_header_filter(r);
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_token_limit_module);

    if (ctx && tlcf->headers
        && ngx_http_ai_token_limit_headers(r, ctx) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_next_header_filter(r);
}


/* configuration */

static char *
ngx_http_ai_token_limit_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_tl_main_conf_t *tmcf = conf;

    ngx_str_t                         *value, s, store, size, param;
    ngx_uint_t                         i, sized;
    ngx_http_ai_tl_zone_t             *zone, **zp;
    ngx_http_compile_complex_value_t   ccv;

    value = cf->args->elts;

    zp = tmcf->zones.elts;

    for (i = 0; i < tmcf->zones.nelts; i++) {
        if (zp[i]->name.len == value[1].len
            && ngx_strncmp(zp[i]->name.data, value[1].data, value[1].len)
               == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ai_token_limit_zone \"%V\" is duplicate",
                               &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    zone = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_tl_zone_t));
    if (zone == NULL) {
        return NGX_CONF_ERROR;
    }

    zone->name = value[1];

    ngx_str_null(&store);
    ngx_str_set(&size, "size=10m");
    sized = 0;
    s.len = 0;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "key=", 4) == 0) {
            s.data = value[i].data + 4;
            s.len = value[i].len - 4;
            continue;
        }

        if (ngx_strncmp(value[i].data, "store=", 6) == 0
            && value[i].len > 6)
        {
            store.data = value[i].data + 6;
            store.len = value[i].len - 6;
            continue;
        }

        if (ngx_strncmp(value[i].data, "size=", 5) == 0) {
            size = value[i];
            sized = 1;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_token_limit_zone \"%V\": invalid parameter "
                           "\"%V\"", &value[1], &value[i]);
        return NGX_CONF_ERROR;
    }

    if (s.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_token_limit_zone \"%V\": \"key=\" is "
                           "required (e.g. key=$ai_consumer)", &value[1]);
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = &s;
    ccv.complex_value = &zone->key;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (store.len) {
        if (sized) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ai_token_limit_zone \"%V\": \"size=\" is "
                               "the size of a store of its own, not with "
                               "\"store=\"", &value[1]);
            return NGX_CONF_ERROR;
        }

        zone->store = ngx_http_ai_store_add(cf, &store);

    } else {
        /* a shared memory store of its own, named after the zone */
        param = size;
        zone->store = ngx_http_ai_store_define(cf, &value[1], &param, 1);
    }

    if (zone->store == NULL) {
        return NGX_CONF_ERROR;
    }

    zp = ngx_array_push(&tmcf->zones);
    if (zp == NULL) {
        return NGX_CONF_ERROR;
    }

    *zp = zone;

    return NGX_CONF_OK;
}


static char *
ngx_http_ai_token_limit(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_tl_loc_conf_t *tlcf = conf;

    u_char                      *p;
    ngx_int_t                    n;
    ngx_str_t                   *value, s;
    ngx_uint_t                   i;
    ngx_msec_t                   ms;
    ngx_http_ai_tl_name_t       *nm;
    ngx_http_ai_tl_rule_t       *rule;
    ngx_http_ai_tl_zone_t      **zp;
    ngx_http_ai_tl_main_conf_t  *tmcf;

    value = cf->args->elts;

    tmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_ai_token_limit_module);

    if (tlcf->rules == NULL) {
        tlcf->rules = ngx_array_create(cf->pool, 2,
                                       sizeof(ngx_http_ai_tl_rule_t));
        if (tlcf->rules == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    rule = ngx_array_push(tlcf->rules);
    if (rule == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(rule, sizeof(ngx_http_ai_tl_rule_t));

    zp = tmcf->zones.elts;

    for (i = 0; i < tmcf->zones.nelts; i++) {
        if (zp[i]->name.len == value[1].len
            && ngx_strncmp(zp[i]->name.data, value[1].data, value[1].len)
               == 0)
        {
            rule->zone = zp[i];
            break;
        }
    }

    if (rule->zone == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "%V: unknown zone \"%V\" (define it with "
                           "ai_token_limit_zone before)", &cmd->name,
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    rule->count = NGX_HTTP_AI_TL_TOKENS;
    rule->window = 60 * 1000;
    ngx_str_set(&rule->per_text, "minute");
    rule->amount_text = value[2];
    rule->budget = (cmd->offset == 1);

    for (i = 3; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "count=", 6) == 0) {
            s.data = value[i].data + 6;
            s.len = value[i].len - 6;

            for (nm = ngx_http_ai_token_limit_counts; nm->name.len; nm++) {
                if (nm->name.len == s.len
                    && ngx_strncmp(nm->name.data, s.data, s.len) == 0)
                {
                    break;
                }
            }

            if (nm->name.len == 0) {
                goto invalid;
            }

            rule->count = nm->value;
            continue;
        }

        if (ngx_strncmp(value[i].data, "per=", 4) == 0 && !rule->budget) {
            s.data = value[i].data + 4;
            s.len = value[i].len - 4;

            for (nm = ngx_http_ai_token_limit_windows; nm->name.len; nm++) {
                if (nm->name.len == s.len
                    && ngx_strncmp(nm->name.data, s.data, s.len) == 0)
                {
                    break;
                }
            }

            if (nm->name.len) {
                ms = nm->value;

            } else {
                ms = ngx_parse_time(&s, 0);

                if (ms == (ngx_msec_t) NGX_ERROR || ms < 1000) {
                    goto invalid;
                }
            }

            rule->window = ms;
            rule->per_text = s;
            continue;
        }

        if (ngx_strcmp(value[i].data, "fail=open") == 0) {
            rule->fail_closed = 0;
            continue;
        }

        if (ngx_strcmp(value[i].data, "fail=closed") == 0) {
            rule->fail_closed = 1;
            continue;
        }

        if (ngx_strcmp(value[i].data, "dry_run") == 0) {
            rule->dry_run = 1;
            continue;
        }

        if (rule->budget) {
            goto invalid;
        }

        if (ngx_strcmp(value[i].data, "algorithm=sliding") == 0) {
            rule->bucket = 0;
            continue;
        }

        if (ngx_strcmp(value[i].data, "algorithm=bucket") == 0) {
            rule->bucket = 1;
            continue;
        }

        goto invalid;
    }

    if (rule->count == NGX_HTTP_AI_TL_MONEY) {
        if (ngx_http_ai_token_limit_money(&value[2], &rule->amount)
            != NGX_OK
            || rule->amount == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "%V \"%V\": invalid amount \"%V\" (US "
                               "dollars, e.g. 25 or 0.50)", &cmd->name,
                               &value[1], &value[2]);
            return NGX_CONF_ERROR;
        }

    } else {
        n = ngx_atoi(value[2].data, value[2].len);

        if (n == NGX_ERROR || n == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "%V \"%V\": invalid amount \"%V\" (a "
                               "positive number)", &cmd->name, &value[1],
                               &value[2]);
            return NGX_CONF_ERROR;
        }

        rule->amount = n;
    }

    if (rule->budget) {
        if (rule->count == NGX_HTTP_AI_TL_REQUESTS
            || rule->count == NGX_HTTP_AI_TL_CONCURRENT)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ai_token_budget \"%V\": a budget counts "
                               "tokens or money, not \"%V\"", &value[1],
                               &ngx_http_ai_token_limit_counts[rule->count]
                                .name);
            return NGX_CONF_ERROR;
        }

        rule->window = 0;
        ngx_str_set(&rule->per_text, "budget");
    }

    if (rule->count == NGX_HTTP_AI_TL_CONCURRENT) {
        if (rule->bucket) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ai_token_limit \"%V\": concurrent requests "
                               "have no window, \"algorithm=bucket\" does "
                               "not apply", &value[1]);
            return NGX_CONF_ERROR;
        }

        rule->window = 0;
        ngx_str_set(&rule->per_text, "moment");
    }

    /* its keys: "tl:ZONE:COUNT:WINDOW:" and the key */

    rule->prefix.data = ngx_pnalloc(cf->pool, 3 + value[1].len + 3
                                              + NGX_INT_T_LEN + 2 + 2);
    if (rule->prefix.data == NULL) {
        return NGX_CONF_ERROR;
    }

    p = ngx_sprintf(rule->prefix.data, "tl:%V:%ui:%M%s:", &value[1],
                    rule->count, rule->window, rule->bucket ? "b" : "");
    rule->prefix.len = p - rule->prefix.data;

    if (rule->budget
        && ngx_http_ai_token_limit_add_budget(cf, tmcf, rule) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    /* counters, labelled by the zone and what it counts */

    s.data = ngx_pnalloc(cf->pool, 128 + value[1].len);
    if (s.data == NULL) {
        return NGX_CONF_ERROR;
    }

    s.len = ngx_sprintf(s.data, "ai_token_limit_rejected_total{limit=\"%V\","
                        "count=\"%V\"}", &value[1],
                        &ngx_http_ai_token_limit_counts[rule->count].name)
            - s.data;

    rule->rejected = ngx_http_ai_counter_add(cf, &s,
                                             &ngx_http_ai_token_limit_help[0]);
    if (rule->rejected == NULL) {
        return NGX_CONF_ERROR;
    }

    s.data = ngx_pnalloc(cf->pool, 128 + value[1].len);
    if (s.data == NULL) {
        return NGX_CONF_ERROR;
    }

    s.len = ngx_sprintf(s.data, "ai_token_limit_store_errors_total{limit=\""
                        "%V\"}", &value[1])
            - s.data;

    rule->errors = ngx_http_ai_counter_add(cf, &s,
                                           &ngx_http_ai_token_limit_help[1]);
    if (rule->errors == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_http_ai_core_enable(cf);

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "%V \"%V\": invalid parameter \"%V\"", &cmd->name,
                       &value[1], &value[i]);
    return NGX_CONF_ERROR;
}


/* the same budget in several locations is one budget */

static ngx_int_t
ngx_http_ai_token_limit_add_budget(ngx_conf_t *cf,
    ngx_http_ai_tl_main_conf_t *tmcf, ngx_http_ai_tl_rule_t *rule)
{
    ngx_uint_t                i;
    ngx_http_ai_tl_budget_t  *b;

    b = tmcf->budgets.elts;

    for (i = 0; i < tmcf->budgets.nelts; i++) {
        if (b[i].zone == rule->zone && b[i].count == rule->count) {

            if (b[i].amount != rule->amount) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "ai_token_budget \"%V\": another amount "
                                   "of the same budget is set elsewhere",
                                   &rule->zone->name);
                return NGX_ERROR;
            }

            return NGX_OK;
        }
    }

    b = ngx_array_push(&tmcf->budgets);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->zone = rule->zone;
    b->count = rule->count;
    b->amount = rule->amount;
    b->prefix = rule->prefix;

    return NGX_OK;
}


static char *
ngx_http_ai_token_limit_output(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_ai_tl_loc_conf_t *tlcf = conf;

    ngx_str_t  *value;

    if (tlcf->output != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    tlcf->output = ngx_atoi(value[1].data, value[1].len);

    if (tlcf->output == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_token_limit_output: invalid number \"%V\"",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    if (cf->args->nelts == 3) {
        if (ngx_strncmp(value[2].data, "max=", 4) != 0
            || (tlcf->output_max = ngx_atoi(value[2].data + 4,
                                            value[2].len - 4))
               == NGX_ERROR)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ai_token_limit_output: invalid parameter "
                               "\"%V\" (max=N)", &value[2]);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/* US dollars (or tokens), "$" allowed, as micro-units */

ngx_int_t
ngx_http_ai_token_limit_money(ngx_str_t *s, int64_t *micros)
{
    ngx_str_t  v;

    v = *s;

    if (v.len && v.data[0] == '$') {
        v.data++;
        v.len--;
    }

    return ngx_http_ai_parse_micros(&v, micros);
}


static ngx_int_t
ngx_http_ai_token_limit_preconfiguration(ngx_conf_t *cf)
{
    return ngx_http_ai_core_require(cf, "ngx_http_ai_token_limit_module");
}


static ngx_int_t
ngx_http_ai_token_limit_postconfiguration(ngx_conf_t *cf)
{
    ngx_http_ai_tl_main_conf_t  *tmcf;

    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_ai_token_limit_header_filter;

    tmcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_ai_token_limit_module);

    if (ngx_http_ai_add_stage(cf, NGX_HTTP_AI_STAGE_LIMIT,
                              ngx_http_ai_token_limit_stage)
        != NGX_OK
        || ngx_http_ai_add_done(cf, NGX_HTTP_AI_DONE_SETTLE,
                                ngx_http_ai_token_limit_done)
           != NGX_OK
        || ngx_http_ai_token_limit_gauge_conf(cf, tmcf) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void *
ngx_http_ai_token_limit_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_ai_tl_main_conf_t  *tmcf;

    tmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_tl_main_conf_t));
    if (tmcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&tmcf->zones, cf->pool, 4,
                       sizeof(ngx_http_ai_tl_zone_t *))
        != NGX_OK)
    {
        return NULL;
    }

    if (ngx_array_init(&tmcf->budgets, cf->pool, 4,
                       sizeof(ngx_http_ai_tl_budget_t))
        != NGX_OK)
    {
        return NULL;
    }

    return tmcf;
}


static void *
ngx_http_ai_token_limit_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_ai_tl_loc_conf_t  *tlcf;

    tlcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_tl_loc_conf_t));
    if (tlcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     tlcf->rules = NULL;
     */

    tlcf->output = NGX_CONF_UNSET;
    tlcf->output_max = NGX_CONF_UNSET;
    tlcf->headers = NGX_CONF_UNSET;
    tlcf->cached = NGX_CONF_UNSET_UINT;

    return tlcf;
}


static char *
ngx_http_ai_token_limit_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_ai_tl_loc_conf_t *prev = parent;
    ngx_http_ai_tl_loc_conf_t *conf = child;

    /* as limit_req: the rules of the nearest level that has any */

    if (conf->rules == NULL) {
        conf->rules = prev->rules;
    }

    ngx_conf_merge_value(conf->output, prev->output, 4096);
    ngx_conf_merge_value(conf->output_max, prev->output_max, 32768);
    ngx_conf_merge_value(conf->headers, prev->headers, 1);
    ngx_conf_merge_uint_value(conf->cached, prev->cached,
                              NGX_HTTP_AI_TL_CACHED_FREE);

    return NGX_CONF_OK;
}
