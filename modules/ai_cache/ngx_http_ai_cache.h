
/*
 * Copyright (C) AI Gateway authors
 *
 * ngx_http_ai_cache_module's own declarations (private).
 */


#ifndef _NGX_HTTP_AI_CACHE_H_INCLUDED_
#define _NGX_HTTP_AI_CACHE_H_INCLUDED_


#include "ngx_http_ai_core.h"


/* X-AI-Cache-Status */
#define NGX_HTTP_AI_CACHE_MISS          1
#define NGX_HTTP_AI_CACHE_HIT           2
#define NGX_HTTP_AI_CACHE_BYPASS        3

/* an entry: "AIC1", its creation time (8 bytes), then the answer */
#define NGX_HTTP_AI_CACHE_MAGIC         "AIC1"
#define NGX_HTTP_AI_CACHE_HEADER        12
#define NGX_HTTP_AI_CACHE_LOCK          "1"   /* the entry's value while
                                                 it is a coalescing lock:
                                                 shorter than a header */

#define NGX_HTTP_AI_CACHE_KEY_LEN       64  /* SHA-256, hex */


typedef struct {
    u_char                     *data;
    size_t                      len;
    size_t                      cap;
} ngx_http_ai_cache_str_t;


typedef struct {
    ngx_uint_t                  index;
    ngx_http_ai_cache_str_t     id;
    ngx_http_ai_cache_str_t     name;
    ngx_http_ai_cache_str_t     arguments;
} ngx_http_ai_cache_call_t;


typedef struct {
    ngx_uint_t                  index;
    ngx_http_ai_cache_str_t     content;
    ngx_http_ai_cache_str_t     reasoning;
    ngx_http_ai_cache_str_t     finish;
    ngx_array_t                 calls;      /* ngx_http_ai_cache_call_t */
} ngx_http_ai_cache_choice_t;


/* ai_cache_semantic (ngx_http_ai_cache_semantic.c) */

typedef struct {
    ngx_shm_zone_t             *shm_zone;   /* ai_cache_semantic_zone */
    ngx_str_t                   uri;        /* the embeddings location */
    ngx_str_t                   model;
    float                       threshold;
    ngx_msec_t                  timeout;
    size_t                      max_text;   /* longer: not looked up */
    ngx_flag_t                  dimensions; /* send "dimensions" */
    ngx_http_ai_counter_t      *lookups;
    ngx_http_ai_counter_t      *matches;
    ngx_http_ai_counter_t      *errors;
} ngx_http_ai_cache_semantic_conf_t;


typedef struct ngx_http_ai_cache_semantic_ctx_s
    ngx_http_ai_cache_semantic_ctx_t;


typedef struct {
    ngx_http_ai_store_t        *store;
    ngx_http_ai_cache_semantic_conf_t  *semantic;   /* NULL: off */
    ngx_msec_t                  ttl;
    size_t                      max_size;
    ngx_flag_t                  per_consumer;
    ngx_http_complex_value_t   *namespace;
    ngx_int_t                   last_messages;  /* 0: all */
    ngx_flag_t                  ignore_system;
    double                      temperature_max; /* < 0: any */
    ngx_flag_t                  lock;
    ngx_msec_t                  lock_timeout;
    ngx_uint_t                  enabled;    /* unsigned  enabled:1; */
} ngx_http_ai_cache_loc_conf_t;


typedef struct {
    ngx_http_request_t         *request;
    ngx_uint_t                  status;     /* NGX_HTTP_AI_CACHE_* */
    u_char                      key[NGX_HTTP_AI_CACHE_KEY_LEN + 1];
    ngx_str_t                   entry;      /* the store's key, and the
                                               coalescing lock's */
    ngx_msec_t                  ttl;
    time_t                      age;

    ngx_http_ai_store_op_t     *op;         /* the last one, done */

    ngx_http_ai_cache_semantic_ctx_t  *semantic;
    ngx_str_t                   similar;    /* a semantic match's entry */
    ngx_str_t                   match;      /* X-AI-Cache-Match */
    ngx_event_t                 wait;       /* for a coalesced request */
    ngx_msec_t                  waited;

    /* the answer of a miss, merged */
    ngx_str_t                   answer;     /* a plain one, translated */
    ngx_http_ai_stream_t       *stream;     /* to OpenAI chunks */
    ngx_http_ai_cache_str_t     id;
    ngx_http_ai_cache_str_t     usage;
    time_t                      created;
    ngx_array_t                 choices;    /* ngx_http_ai_cache_choice_t */
    size_t                      size;
    size_t                      max_size;

    unsigned                    phase:3;
    unsigned                    waiting:1;
    unsigned                    locked:1;   /* this request holds the lock */
    unsigned                    capture:1;
    unsigned                    given_up:1;
    unsigned                    no_store:1;
} ngx_http_ai_cache_ctx_t;


ngx_int_t ngx_http_ai_cache_event(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ai, ngx_http_ai_event_t *ev, ngx_chain_t ***out);
ngx_int_t ngx_http_ai_cache_answer(ngx_http_request_t *r,
    ngx_http_ai_cache_ctx_t *ctx, ngx_str_t *answer);
ngx_table_elt_t *ngx_http_ai_cache_header(ngx_http_request_t *r,
    const char *name, const char *word);
ngx_int_t ngx_http_ai_cache_semantic_lookup(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ai, ngx_http_ai_cache_loc_conf_t *clcf,
    ngx_http_ai_cache_ctx_t *ctx);
void ngx_http_ai_cache_semantic_forget(ngx_http_request_t *r,
    ngx_http_ai_cache_ctx_t *ctx);
void ngx_http_ai_cache_semantic_store(ngx_http_request_t *r,
    ngx_http_ai_cache_ctx_t *ctx);
char *ngx_http_ai_cache_semantic(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_ai_cache_semantic_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_ai_cache_key(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ai, ngx_http_ai_cache_loc_conf_t *clcf,
    ngx_http_ai_cache_ctx_t *ctx);


extern ngx_module_t  ngx_http_ai_cache_module;


#endif /* _NGX_HTTP_AI_CACHE_H_INCLUDED_ */
