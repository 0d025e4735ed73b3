
/*
 * Copyright (C) AI Gateway authors
 *
 * Internal to ai_log: what its files share.  The module reads the core's
 * per-request context in the LOG phase, writes one JSON record per AI
 * request (file or syslog) and adds the request to aggregates kept in
 * shared memory, which the Prometheus endpoint and the dashboard show.
 */


#ifndef _NGX_HTTP_AI_LOG_H_INCLUDED_
#define _NGX_HTTP_AI_LOG_H_INCLUDED_


#include "ngx_http_ai_core.h"


#define NGX_HTTP_AI_LOG_LABEL_LEN      64   /* bytes kept of a label value */
#define NGX_HTTP_AI_LOG_BUCKETS        13   /* histogram buckets, +Inf last */
#define NGX_HTTP_AI_LOG_TOP            16   /* labels per history bucket */
#define NGX_HTTP_AI_LOG_TOP_GW         8    /* providers, targets there */
#define NGX_HTTP_AI_LOG_SMALL          32   /* cache, limit, guard values */

#define NGX_HTTP_AI_LOG_MODEL          0
#define NGX_HTTP_AI_LOG_PROVIDER       1
#define NGX_HTTP_AI_LOG_CONSUMER       2
#define NGX_HTTP_AI_LOG_TARGET         3
#define NGX_HTTP_AI_LOG_ENDPOINT       4
#define NGX_HTTP_AI_LOG_DIMS           5
#define NGX_HTTP_AI_LOG_TUPLE          (NGX_HTTP_AI_LOG_DIMS + 1)
/* a series' key: its labels' ids and its status, uint16_t each */
#define NGX_HTTP_AI_LOG_TUPLE_SIZE     (NGX_HTTP_AI_LOG_TUPLE * 2)

/* the first stage: counts the request in flight */
#define NGX_HTTP_AI_LOG_STAGE_INFLIGHT 1

/* the gateway's overhead histogram: finer buckets, 1 ms to 1 s, +Inf */
#define NGX_HTTP_AI_LOG_OBUCKETS       11

/* the attempts' outcomes by target: a small table, __other__ beyond */
#define NGX_HTTP_AI_LOG_ATTEMPTS       64

/* the statuses of the dashboard: 2xx, 3xx, 4xx, 429, 499, 5xx */
#define NGX_HTTP_AI_LOG_CODES          6

/* the version ai_build_info reports */
#define NGX_HTTP_AI_LOG_VERSION        "0.1.0"

#define NGX_HTTP_AI_LOG_PROMPT         0
#define NGX_HTTP_AI_LOG_COMPLETION     1
#define NGX_HTTP_AI_LOG_CACHED         2
#define NGX_HTTP_AI_LOG_REASONING      3
#define NGX_HTTP_AI_LOG_TOTAL          4
#define NGX_HTTP_AI_LOG_TOKEN_TYPES    4    /* counted in the metrics */

/*
 * What a provider reports is hostile input: a token count is kept within
 * [0, 2^40] and a cost within [0, 10^9] USD, so that no sum of them and
 * no conversion of them can overflow (10^9 USD is 10^18 nano-dollars).
 */
#define NGX_HTTP_AI_LOG_TOKENS_MAX     ((uint64_t) 1 << 40)
#define NGX_HTTP_AI_LOG_COST_MAX       1e9


/* the file buffer, attached to ngx_open_file_t.data */

typedef struct {
    u_char                     *start;
    u_char                     *pos;
    u_char                     *last;
    ngx_event_t                *event;
    ngx_msec_t                  flush;
} ngx_http_ai_log_buf_t;


typedef struct {
    ngx_open_file_t            *file;
    ngx_syslog_peer_t          *syslog;
    ngx_http_complex_value_t   *filter;
    time_t                      error_time;
} ngx_http_ai_log_sink_t;


typedef struct {
    ngx_str_t                   name;        /* lowercase */
    size_t                      max;
} ngx_http_ai_log_header_t;


typedef struct {
    ngx_shm_zone_t             *zone;        /* ai_metrics_zone */
    ngx_int_t                   request_id;  /* $request_id */
    ngx_flag_t                  response_body;
    ngx_flag_t                  endpoints;   /* ai_metrics, ai_dashboard */
    ngx_flag_t                  server_timing;  /* used somewhere */
} ngx_http_ai_log_main_conf_t;


typedef struct {
    ngx_array_t                *sinks;       /* ngx_http_ai_log_sink_t */
    ngx_flag_t                  off;
    ngx_array_t                *headers;     /* ngx_http_ai_log_header_t */
    ngx_flag_t                  request_body;
    size_t                      request_body_max;
    ngx_flag_t                  response_body;
    size_t                      response_body_max;
    ngx_flag_t                  server_timing;
} ngx_http_ai_log_loc_conf_t;


/* per request, only where response bodies are logged */

typedef struct {
    u_char                     *data;
    size_t                      len;
    size_t                      cap;
    unsigned                    truncated:1;
    unsigned                    tool:1;      /* a tool call was last */
} ngx_http_ai_log_ctx_t;


/* what the record and the metrics say of a request, computed once */

typedef struct {
    ngx_http_ai_ctx_t          *ai;
    ngx_str_t                  *model;       /* routed model, or NULL */
    ngx_uint_t                  status;
    ngx_uint_t                  attempts;
    ngx_msec_t                  latency;     /* ms, start to log */
    ngx_msec_t                  ttft;        /* ms, when first_byte */
    ngx_msec_t                  overhead;    /* ms, latency - upstream */
    ngx_str_t                   endpoint;    /* "chat", ... or "" */
    ngx_array_t                *trail;       /* ngx_http_ai_attempt_t */
    uint64_t                    tokens[NGX_HTTP_AI_LOG_TOKEN_TYPES + 1];
                                             /* in range, when usage.found */
    double                      cost;        /* USD, when has_cost */
    double                      tps;         /* output tokens/s, has_tps */

    /*
     * the outcomes the record and the metrics have keys and families for,
     * by their conventional names: "cache", "guard", "guard_rule",
     * "limit" (empty when no module published one); every outcome is in
     * the record's "outcomes" too
     */
    ngx_str_t                   cache;
    ngx_str_t                   guard;
    ngx_str_t                   guard_rule;
    ngx_str_t                   limit;

    unsigned                    model_new:1; /* may be a new label value */
    unsigned                    has_cost:1;
    unsigned                    has_tps:1;
    unsigned                    aborted:1;   /* the client went away */
    unsigned                    rejected:1;  /* the gateway said no (4xx) */
    unsigned                    error:1;     /* any other failure */
    unsigned                    fallback:1;  /* answered after a failure */
} ngx_http_ai_log_record_t;


/* shared memory */

typedef struct {
    uint32_t                    hash;
    u_char                      len;
    u_char                      data[NGX_HTTP_AI_LOG_LABEL_LEN];
} ngx_http_ai_log_label_t;


typedef struct {
    uint64_t                    count[NGX_HTTP_AI_LOG_BUCKETS];
    uint64_t                    sum;         /* ms */
} ngx_http_ai_log_hist_t;


typedef struct {
    ngx_rbtree_node_t           node;
    ngx_queue_t                 queue;
    uint16_t                    label[NGX_HTTP_AI_LOG_DIMS];
    uint16_t                    status;      /* right after the labels */
    uint64_t                    requests;
    uint64_t                    tokens[NGX_HTTP_AI_LOG_TOKEN_TYPES];
    uint64_t                    cost;        /* nano-dollars */
    ngx_http_ai_log_hist_t      duration;
    ngx_http_ai_log_hist_t      ttft;
} ngx_http_ai_log_series_t;


typedef struct {
    uint16_t                    verdict;
    uint16_t                    rule;
    uint64_t                    count;
} ngx_http_ai_log_guard_t;


/* attempts by target (a label id) and outcome (a small label id) */

typedef struct {
    uint16_t                    target;
    uint16_t                    outcome;
    uint64_t                    count;
} ngx_http_ai_log_attempt_t;


/* a history bucket: one interval (a minute by default) */

typedef struct {
    time_t                      start;       /* 0: empty */
    uint64_t                    requests;
    uint64_t                    errors;
    uint64_t                    rejected;
    uint64_t                    prompt;
    uint64_t                    completion;
    uint64_t                    cost;
    uint64_t                    cache_hits;
    uint64_t                    cache_misses;
    uint64_t                    latency[NGX_HTTP_AI_LOG_BUCKETS];
    uint64_t                    ttft[NGX_HTTP_AI_LOG_BUCKETS];
    uint64_t                    model[NGX_HTTP_AI_LOG_TOP][3];
    uint64_t                    consumer[NGX_HTTP_AI_LOG_TOP][3];

    /*
     * the gateway's views, compact (32 bits saturate: an interval's
     * counts), so that a zone sized for the history before them still
     * holds it: requests and tokens by provider; requests, errors and
     * fallbacks by target
     */
    uint32_t                    provider[NGX_HTTP_AI_LOG_TOP_GW][2];
    uint32_t                    target[NGX_HTTP_AI_LOG_TOP_GW][3];
    uint32_t                    codes[NGX_HTTP_AI_LOG_CODES];
    uint32_t                    attempts;
    uint32_t                    fallbacks;
} ngx_http_ai_log_slot_t;


/*
 * The layout of the zone: a reload that loads a build with another
 * layout (an upgrade) starts the metrics again instead of reading the
 * old zone with the new structures.  It is the first field, where an
 * older layout had its label cap (never this large).
 */
#define NGX_HTTP_AI_LOG_LAYOUT         0x61690002


typedef struct {
    ngx_uint_t                  layout;      /* NGX_HTTP_AI_LOG_LAYOUT */
    ngx_uint_t                  label_cap;   /* the zone's parameters */
    ngx_uint_t                  nslots;
    time_t                      interval;
    time_t                      started;
    ngx_rbtree_t                rbtree;
    ngx_rbtree_node_t           sentinel;
    ngx_queue_t                 queue;       /* series, oldest first */
    ngx_uint_t                  nseries;
    uint64_t                    overflow;    /* requests put in __other__ */
    ngx_http_ai_log_series_t    other;       /* when the zone is full */
    ngx_uint_t                  nlabels[NGX_HTTP_AI_LOG_DIMS];
    ngx_http_ai_log_label_t    *labels[NGX_HTTP_AI_LOG_DIMS];
    ngx_uint_t                  nsmall;
    ngx_http_ai_log_label_t     small[NGX_HTTP_AI_LOG_SMALL];
    uint64_t                    cache[NGX_HTTP_AI_LOG_SMALL];
    uint64_t                    limit[NGX_HTTP_AI_LOG_SMALL];
    ngx_uint_t                  nguard;
    ngx_http_ai_log_guard_t     guard[NGX_HTTP_AI_LOG_SMALL];
    ngx_uint_t                  nattempts;
    ngx_http_ai_log_attempt_t   attempts[NGX_HTTP_AI_LOG_ATTEMPTS];
    uint64_t                    fallbacks[NGX_HTTP_AI_LOG_ATTEMPTS];
                                             /* by target label id, capped */
    uint64_t                    overhead[NGX_HTTP_AI_LOG_OBUCKETS];
    uint64_t                    overhead_sum;   /* ms */
    ngx_atomic_t                inflight;       /* requests */
    ngx_atomic_t                streams;        /* of which streams */
    ngx_http_ai_log_slot_t     *slots;
} ngx_http_ai_log_shctx_t;


typedef struct {
    ngx_http_ai_log_shctx_t    *sh;
    ngx_slab_pool_t            *shpool;
    ngx_uint_t                  labels;      /* cap per label */
    ngx_uint_t                  nslots;
    time_t                      interval;    /* seconds per slot */
    ngx_str_t                   name;
} ngx_http_ai_log_zone_t;


/* a growing output: a chain of pool buffers */

typedef struct {
    ngx_pool_t                 *pool;
    ngx_chain_t                *out;
    ngx_chain_t               **last;
    ngx_buf_t                  *buf;
    off_t                       size;
} ngx_http_ai_log_out_t;


/* counters saturate: a hostile value can pin them, never wrap them */

static ngx_inline void
ngx_http_ai_log_add(uint64_t *counter, uint64_t n)
{
    *counter = (*counter > UINT64_MAX - n) ? UINT64_MAX : *counter + n;
}


static ngx_inline void
ngx_http_ai_log_add32(uint32_t *counter, uint64_t n)
{
    *counter = (n > UINT32_MAX || *counter > UINT32_MAX - n)
               ? UINT32_MAX : *counter + (uint32_t) n;
}


extern ngx_module_t  ngx_http_ai_log_module;

extern uint64_t  ngx_http_ai_log_bounds[NGX_HTTP_AI_LOG_BUCKETS - 1];
extern uint64_t  ngx_http_ai_log_obounds[NGX_HTTP_AI_LOG_OBUCKETS - 1];


/* ngx_http_ai_log_record.c */
char *ngx_http_ai_log_set_sink(ngx_conf_t *cf,
    ngx_http_ai_log_loc_conf_t *lcf);
ngx_int_t ngx_http_ai_log_write(ngx_http_request_t *r,
    ngx_http_ai_log_loc_conf_t *lcf, ngx_http_ai_log_record_t *rec);
ngx_int_t ngx_http_ai_log_body_event(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ai, ngx_http_ai_event_t *ev, ngx_chain_t ***out);
size_t ngx_http_ai_log_json_len(size_t len);
u_char *ngx_http_ai_log_json_string(u_char *p, u_char *s, size_t len);

/* ngx_http_ai_log_metrics.c */
char *ngx_http_ai_log_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
void ngx_http_ai_log_metrics_add(ngx_http_request_t *r,
    ngx_shm_zone_t *shm_zone, ngx_http_ai_log_record_t *rec);
ngx_int_t ngx_http_ai_log_metrics_handler(ngx_http_request_t *r);
ngx_uint_t ngx_http_ai_log_bucket(ngx_msec_t ms);
ngx_int_t ngx_http_ai_log_prom_counters(ngx_http_request_t *r,
    ngx_http_ai_log_out_t *o);
u_char *ngx_http_ai_log_out(ngx_http_ai_log_out_t *o, size_t size);
ngx_int_t ngx_http_ai_log_send(ngx_http_request_t *r,
    ngx_http_ai_log_out_t *o, const char *type, size_t type_len);
ngx_int_t ngx_http_ai_log_endpoint_check(ngx_http_request_t *r);

/* ngx_http_ai_log_timing.c */
ngx_int_t ngx_http_ai_log_inflight_stage(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ai);
ngx_int_t ngx_http_ai_log_timing_init(ngx_conf_t *cf);
ngx_msec_t ngx_http_ai_log_upstream_time(ngx_http_request_t *r);

/* ngx_http_ai_log_dashboard.c */
ngx_int_t ngx_http_ai_log_dashboard_handler(ngx_http_request_t *r);


#endif /* _NGX_HTTP_AI_LOG_H_INCLUDED_ */
