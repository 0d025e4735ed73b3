
/*
 * Copyright (C) AI Gateway authors
 *
 * ngx_http_ai_token_limit_module's own declarations (private).
 */


#ifndef _NGX_HTTP_AI_TOKEN_LIMIT_H_INCLUDED_
#define _NGX_HTTP_AI_TOKEN_LIMIT_H_INCLUDED_


#include "ngx_http_ai_core.h"


/* what a rule counts */
#define NGX_HTTP_AI_TL_TOKENS           0   /* prompt + completion */
#define NGX_HTTP_AI_TL_PROMPT           1
#define NGX_HTTP_AI_TL_COMPLETION       2
#define NGX_HTTP_AI_TL_REQUESTS         3
#define NGX_HTTP_AI_TL_CONCURRENT       4
#define NGX_HTTP_AI_TL_MONEY            5   /* micro-dollars */

/* what an answer a stage gave (a cache hit) is charged */
#define NGX_HTTP_AI_TL_CACHED_FREE      1
#define NGX_HTTP_AI_TL_CACHED_FULL      2


typedef struct {
    ngx_str_t                   name;
    ngx_http_complex_value_t    key;
    ngx_http_ai_store_t        *store;
} ngx_http_ai_tl_zone_t;


typedef struct {
    ngx_http_ai_tl_zone_t      *zone;
    ngx_uint_t                  count;      /* NGX_HTTP_AI_TL_* */
    int64_t                     amount;     /* tokens, requests, micro-USD */
    ngx_msec_t                  window;     /* 0: concurrent requests */
    ngx_str_t                   amount_text; /* as configured, messages */
    ngx_str_t                   per_text;
    ngx_str_t                   prefix;     /* of its keys in the store */
    ngx_http_ai_counter_t      *rejected;
    ngx_http_ai_counter_t      *errors;
    unsigned                    bucket:1;
    unsigned                    fail_closed:1;
    unsigned                    dry_run:1;
    unsigned                    budget:1;   /* no window, topped up */
} ngx_http_ai_tl_rule_t;


/*
 * A budget, as the admin endpoint knows it.  Its counter holds what was
 * spent minus what was topped up, so that one RESERVE against the
 * default amount admits a request: spent + request <= amount + top-ups.
 */

typedef struct {
    ngx_http_ai_tl_zone_t      *zone;
    ngx_uint_t                  count;
    int64_t                     amount;
    ngx_str_t                   prefix;
} ngx_http_ai_tl_budget_t;


typedef struct {
    ngx_array_t                 zones;      /* ngx_http_ai_tl_zone_t * */
    ngx_array_t                 budgets;    /* ngx_http_ai_tl_budget_t */
    ngx_shm_zone_t             *gauges;     /* what is left of budgets */
} ngx_http_ai_tl_main_conf_t;


typedef struct {
    ngx_array_t                *rules;      /* ngx_http_ai_tl_rule_t */
    ngx_int_t                   output;     /* reserved without max_tokens */
    ngx_int_t                   output_max; /* the most reserved */
    ngx_flag_t                  headers;
    ngx_uint_t                  cached;     /* NGX_HTTP_AI_TL_CACHED_* */
    ngx_uint_t                  admin;      /* unsigned  admin:1; the
                                               module's context there is
                                               the admin endpoint's */
} ngx_http_ai_tl_loc_conf_t;


/* a rule's reservation for a request */

typedef struct {
    ngx_http_ai_tl_rule_t      *rule;
    ngx_str_t                   key;        /* in the store */
    int64_t                     reserved;
    int64_t                     stamp;
    int64_t                     used;       /* after the reservation */
    ngx_msec_t                  reset;
    ngx_msec_t                  retry;
    ngx_int_t                   rc;         /* the store's answer */
    unsigned                    started:1;
    unsigned                    done:1;
    unsigned                    held:1;     /* reserved, to settle */
} ngx_http_ai_tl_hold_t;


typedef struct {
    ngx_http_request_t         *request;
    ngx_http_ai_tl_hold_t      *holds;
    ngx_uint_t                  nholds;
    ngx_uint_t                  next;
    ngx_http_ai_tl_hold_t      *refused;
    int64_t                     prompt;     /* estimated */
    int64_t                     output;     /* reserved */
    unsigned                    waiting:1;
    unsigned                    settled:1;
} ngx_http_ai_tl_ctx_t;


char *ngx_http_ai_token_limit_admin(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_ai_token_limit_money(ngx_str_t *s, int64_t *micros);

ngx_int_t ngx_http_ai_token_limit_headers(ngx_http_request_t *r,
    ngx_http_ai_tl_ctx_t *ctx);
u_char *ngx_http_ai_token_limit_duration(u_char *p, ngx_msec_t ms);

ngx_int_t ngx_http_ai_token_limit_gauge_conf(ngx_conf_t *cf,
    ngx_http_ai_tl_main_conf_t *tmcf);
void ngx_http_ai_token_limit_gauge(ngx_http_ai_tl_main_conf_t *tmcf,
    ngx_str_t *zone, ngx_uint_t count, ngx_str_t *key, int64_t remaining);


extern ngx_module_t  ngx_http_ai_token_limit_module;


#endif /* _NGX_HTTP_AI_TOKEN_LIMIT_H_INCLUDED_ */
