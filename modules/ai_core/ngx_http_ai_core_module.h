
/*
 * Copyright (C) AI Gateway authors
 *
 * Internal to the core: what its files share.  Other modules include
 * ngx_http_ai_core.h only.
 */


#ifndef _NGX_HTTP_AI_CORE_MODULE_H_INCLUDED_
#define _NGX_HTTP_AI_CORE_MODULE_H_INCLUDED_


#define NGX_HTTP_AI_CORE_INTERNAL  1

#include "ngx_http_ai_core.h"


#include "ngx_http_ai_sse.h"


#define NGX_HTTP_AI_KEY_DIGEST_LEN  32
#define NGX_HTTP_AI_MODEL_MAX       256


/* the context with the core's private state after what modules see */

/* the header's buffer as NGINX made it, while the body is read in room */

typedef struct {
    ngx_buf_t                  *buf;          /* NULL once given back */
    u_char                     *start;
    u_char                     *last;
    u_char                     *end;
} ngx_http_ai_core_room_t;


typedef struct {
    ngx_http_ai_ctx_t           ai;

    ngx_http_ai_sse_parser_t    sse;
    ngx_str_t                   resp_body;    /* plain body, when split */
    size_t                      resp_cap;
    ngx_uint_t                  stage;        /* the next stage to run */
    ngx_int_t                   status;       /* the REWRITE handler's */
    ngx_buf_t                  *error_body;   /* replaces an error page */
    ngx_array_t                *models;       /* the consumer's allowed
                                                 models, NULL: any */
    void                      **route_conf;   /* the location routed for */
    ngx_chain_t                *free;         /* rewrite mode's output */
    ngx_chain_t                *busy;
    ngx_chain_t                *last_out;     /* the current output buffer */
    ngx_uint_t                  out_seq;      /* outputs made, a counter */
    ngx_uint_t                  text_events;  /* a stream's answer events */
    ngx_array_t                *attempts;     /* ngx_http_ai_attempt_t */
    ngx_http_ai_answer_t        answer;
    cJSON                      *retired;      /* the request's trees before
                                                 a change, by their next */
    size_t                      system_len;   /* the view's system text,
                                                 once the tree was freed */
    ngx_http_ai_core_room_t    *room;         /* the body read in one run */

    /* cutting events out of a stream passed by reference (drop_usage) */
    u_char                     *trim_pos;     /* the next byte to pass */
    ngx_chain_t                *trim_ref;     /* the last ref into it */
    ngx_chain_t                *held;         /* an unfinished event */
    ngx_chain_t               **held_last;
    size_t                      held_size;
    ngx_chain_t                *free_refs;
    ngx_chain_t                *free_links;   /* for upstream buffers
                                                 passed themselves */

    unsigned                    body_read:1;
    unsigned                    routed:1;     /* a router took the request */
    unsigned                    watch:1;      /* response is an AI response */
    unsigned                    error_page:1; /* an NGINX page replaced */
    unsigned                    error_from_page:1;
    unsigned                    usage_warned:1;
    unsigned                    suspended:1;  /* a stage waits */
    unsigned                    in_stage:1;
    unsigned                    resumed:1;
    unsigned                    done:1;       /* the completion hook ran */
    unsigned                    deltas:1;     /* the delta filters run */
    unsigned                    passing:1;    /* the unfinished event went
                                                 on as it is */
    unsigned                    keep_tree:1;  /* ngx_http_ai_request_keep() */
    unsigned                    tree_freed:1; /* at a stream's header */
} ngx_http_ai_core_ctx_t;


#define ngx_http_ai_core_ctx(ctx)  ((ngx_http_ai_core_ctx_t *) (ctx))


typedef struct {
    ngx_str_t                   name;
    u_char                      digest[NGX_HTTP_AI_KEY_DIGEST_LEN];
    ngx_array_t                *models;       /* globs, NULL: any model */
} ngx_http_ai_consumer_t;


typedef struct {
    ngx_str_t                   model;        /* a glob, NUL-terminated */
    int64_t                     input;        /* micro-USD per million */
    int64_t                     output;       /* tokens, i.e. USD per */
    int64_t                     cached;       /* token in 10^-12 */
    int64_t                     cache_write;
} ngx_http_ai_price_t;


typedef struct {
    ngx_uint_t                  order;
    ngx_http_ai_stage_pt        handler;
} ngx_http_ai_stage_t;


typedef struct {
    ngx_uint_t                  order;
    ngx_http_ai_done_pt         handler;
} ngx_http_ai_done_t;


typedef struct {
    ngx_uint_t                  order;
    ngx_http_ai_delta_filter_pt handler;
} ngx_http_ai_delta_filter_t;


typedef struct {
    ngx_array_t                 handlers;     /* event handlers */
    ngx_array_t                 routers;      /* ngx_http_ai_route_pt */
    ngx_array_t                 stages;       /* ngx_http_ai_stage_t */
    ngx_array_t                 dones;        /* ngx_http_ai_done_t */
    ngx_array_t                 deltas;       /* ngx_http_ai_delta_filter_t */
    ngx_array_t                 prices;       /* ngx_http_ai_price_t */
    ngx_http_ai_counter_t      *counters;
    ngx_http_ai_counter_t     **last_counter;
    ngx_array_t                 metrics;      /* ngx_http_ai_metrics_pt */
    ngx_uint_t                  ncounters;
    ngx_shm_zone_t             *counters_zone;
    ngx_array_t                 consumers;    /* ngx_http_ai_consumer_t */
    ngx_array_t                 stores;       /* ngx_http_ai_store_t * */
    ngx_array_t                 backends;     /* store backends, by ptr */
} ngx_http_ai_core_main_conf_t;


typedef struct {
    ngx_flag_t                  enable;
    ngx_uint_t                  auth;
    size_t                      max_event_size;
    size_t                      max_response_size;
} ngx_http_ai_core_loc_conf_t;


void ngx_http_ai_core_free_tree(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx);
ngx_int_t ngx_http_ai_core_identify(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, ngx_http_ai_core_loc_conf_t *alcf);
ngx_table_elt_t *ngx_http_ai_core_find_header(ngx_http_request_t *r,
    char *name, size_t len);
char *ngx_http_ai_consumer(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_ai_consumers_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_ai_consumers_init(ngx_conf_t *cf,
    ngx_http_ai_core_main_conf_t *amcf);
ngx_int_t ngx_http_ai_core_check_model(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx);

ngx_int_t ngx_http_ai_core_filter_init(ngx_conf_t *cf);
ngx_int_t ngx_http_ai_core_stages_init(ngx_conf_t *cf);
void ngx_http_ai_core_done(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx);
void *ngx_http_ai_core_insert(ngx_array_t *a, ngx_uint_t order);
ngx_int_t ngx_http_ai_core_route(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx);
void ngx_http_ai_core_ctx_cleanup(void *data);
ngx_int_t ngx_http_ai_error_filter_init(ngx_conf_t *cf);
ngx_int_t ngx_http_ai_core_add_variables(ngx_conf_t *cf);

void ngx_http_ai_core_answer_scan(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, ngx_str_t *data);
void ngx_http_ai_core_answer_error(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, ngx_str_t *data);
void ngx_http_ai_core_gateway_error(ngx_http_request_t *r,
    const char *code, ngx_str_t *msg);

int64_t ngx_http_ai_estimate_text(u_char *p, size_t len);
void ngx_http_ai_hash_key(const u_char key[16]);
uint64_t ngx_http_ai_hash_scope(const u_char *data, size_t len);
uint64_t ngx_http_ai_siphash(const u_char key[16], const u_char *data,
    size_t len);


char *ngx_http_ai_price(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);

char *ngx_http_ai_store(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
ngx_int_t ngx_http_ai_stores_preconfiguration(ngx_conf_t *cf);
ngx_int_t ngx_http_ai_stores_check(ngx_conf_t *cf,
    ngx_http_ai_core_main_conf_t *amcf);


#endif /* _NGX_HTTP_AI_CORE_MODULE_H_INCLUDED_ */
