
/*
 * Copyright (C) AI Gateway authors
 *
 * ngx_http_ai_log_module: directives, configuration and the LOG phase
 * handler.  For every request that has the core's context (an AI route,
 * including the ones the gateway rejected and the ones the client
 * abandoned) it computes the record once, adds it to the metrics zone
 * and writes it to the location's sinks.
 */


#include "ngx_http_ai_log.h"

#include <math.h>


static void ngx_http_ai_log_done(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ai);
static void ngx_http_ai_log_fill(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ai, ngx_http_ai_log_record_t *rec);
static void ngx_http_ai_log_usage(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ai, ngx_http_ai_log_record_t *rec);
static void ngx_http_ai_log_cost(ngx_http_request_t *r,
    ngx_http_ai_log_record_t *rec);

static char *ngx_http_ai_log_set_log(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ai_log_metadata_header(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_ai_log_body(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ai_log_endpoint(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ai_log_server_timing(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);

static ngx_int_t ngx_http_ai_log_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_ai_log_postconfiguration(ngx_conf_t *cf);
static void *ngx_http_ai_log_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_ai_log_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_ai_log_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);


/* headers that carry keys: never logged */

static ngx_str_t  ngx_http_ai_log_secret_headers[] = {
    ngx_string("authorization"),
    ngx_string("proxy-authorization"),
    ngx_string("x-api-key"),
    ngx_string("api-key"),
    ngx_string("x-goog-api-key"),
    ngx_string("cookie"),
    ngx_null_string
};


static ngx_command_t  ngx_http_ai_log_commands[] = {

    { ngx_string("ai_log"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_ai_log_set_log,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_log_metadata_header"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_ai_log_metadata_header,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_server_timing"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_http_ai_log_server_timing,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_log_loc_conf_t, server_timing),
      NULL },

    { ngx_string("ai_log_request_body"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_ai_log_body,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_log_loc_conf_t, request_body),
      NULL },

    { ngx_string("ai_log_response_body"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_ai_log_body,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_log_loc_conf_t, response_body),
      NULL },

    { ngx_string("ai_metrics_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_ai_log_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_ai_log_endpoint,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      ngx_http_ai_log_metrics_handler },

    { ngx_string("ai_dashboard"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_ai_log_endpoint,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      ngx_http_ai_log_dashboard_handler },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_ai_log_module_ctx = {
    ngx_http_ai_log_preconfiguration,      /* preconfiguration */
    ngx_http_ai_log_postconfiguration,     /* postconfiguration */

    ngx_http_ai_log_create_main_conf,      /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_ai_log_create_loc_conf,       /* create location configuration */
    ngx_http_ai_log_merge_loc_conf         /* merge location configuration */
};


ngx_module_t  ngx_http_ai_log_module = {
    NGX_MODULE_V1,
    &ngx_http_ai_log_module_ctx,           /* module context */
    ngx_http_ai_log_commands,              /* module directives */
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


/*
 * The last of the core's completion handlers: the record and the metrics
 * see what every other module settled, however the request ended.
 */

static void
ngx_http_ai_log_done(ngx_http_request_t *r, ngx_http_ai_ctx_t *ai)
{
    ngx_uint_t                    write;
    ngx_http_ai_log_record_t      rec;
    ngx_http_ai_log_loc_conf_t   *lcf;
    ngx_http_ai_log_main_conf_t  *lmcf;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_log_module);
    lmcf = ngx_http_get_module_main_conf(r, ngx_http_ai_log_module);

    write = (!lcf->off && lcf->sinks != NULL);

    if (!write && lmcf->zone == NULL) {
        return;
    }

    ngx_http_ai_log_fill(r, ai, &rec);

    if (lmcf->zone) {
        ngx_http_ai_log_metrics_add(r, lmcf->zone, &rec);
    }

    if (write) {
        (void) ngx_http_ai_log_write(r, lcf, &rec);
    }
}


typedef struct {
    ngx_str_t                   name;
    size_t                      offset;
} ngx_http_ai_log_outcome_key_t;


static ngx_http_ai_log_outcome_key_t  ngx_http_ai_log_outcome_keys[] = {
    { ngx_string("cache"), offsetof(ngx_http_ai_log_record_t, cache) },
    { ngx_string("guard"), offsetof(ngx_http_ai_log_record_t, guard) },
    { ngx_string("guard_rule"),
      offsetof(ngx_http_ai_log_record_t, guard_rule) },
    { ngx_string("limit"), offsetof(ngx_http_ai_log_record_t, limit) },
    { ngx_null_string, 0 }
};


static void
ngx_http_ai_log_fill(ngx_http_request_t *r, ngx_http_ai_ctx_t *ai,
    ngx_http_ai_log_record_t *rec)
{
    ngx_uint_t                      i, status;
    ngx_msec_t                      end, span, upstream;
    ngx_time_t                     *tp;
    ngx_array_t                    *a;
    ngx_msec_int_t                  ms;
    ngx_http_ai_outcome_t          *o;
    ngx_http_ai_log_outcome_key_t  *k;

    ngx_memzero(rec, sizeof(ngx_http_ai_log_record_t));

    rec->ai = ai;

    a = ngx_http_ai_outcomes(r);

    if (a) {
        o = a->elts;

        for (i = 0; i < a->nelts; i++) {
            for (k = ngx_http_ai_log_outcome_keys; k->name.len; k++) {
                if (o[i].name.len == k->name.len
                    && ngx_strncmp(o[i].name.data, k->name.data,
                                   k->name.len)
                       == 0)
                {
                    *(ngx_str_t *) ((u_char *) rec + k->offset) =
                                                                 o[i].value;
                    break;
                }
            }
        }
    }

    status = r->err_status ? r->err_status : r->headers_out.status;

    /*
     * The model label of the metrics, which no client may choose: a
     * request the gateway answered before routing it (an unknown model,
     * a bad request or key) has none; a routed one has the model sent
     * upstream, which becomes a new label value only when the upstream
     * served it (a provider refuses the models it does not have).
     */

    if (ai->target.len || ai->upstream_model.len || r->upstream) {
        rec->model = ai->upstream_model.len ? &ai->upstream_model
                                            : &ai->req.model;
        rec->model_new = (status >= NGX_HTTP_OK
                          && status < NGX_HTTP_SPECIAL_RESPONSE
                          && !ai->error);
    }

    /*
     * A client that went away: NGINX keeps the status of a response whose
     * header was sent (200 for a stream cut by the client); the record
     * says 499, as NGINX does when nothing was sent yet.
     */

    if (r->connection->error && status < NGX_HTTP_BAD_REQUEST) {
        status = NGX_HTTP_CLIENT_CLOSED_REQUEST;
    }

    rec->status = status;
    rec->aborted = (status == NGX_HTTP_CLIENT_CLOSED_REQUEST);

    rec->attempts = ai->attempts;

    if (rec->attempts == 0 && r->upstream_states) {
        /* a plain proxy_pass: one state per server tried */
        rec->attempts = r->upstream_states->nelts;
    }

    rec->trail = ngx_http_ai_attempts(r);
    rec->fallback = (rec->trail && rec->trail->nelts > 1);

    switch (ai->req.endpoint) {
    case NGX_HTTP_AI_EP_CHAT:
        ngx_str_set(&rec->endpoint, "chat");
        break;
    case NGX_HTTP_AI_EP_EMBEDDINGS:
        ngx_str_set(&rec->endpoint, "embeddings");
        break;
    case NGX_HTTP_AI_EP_MODELS:
        ngx_str_set(&rec->endpoint, "models");
        break;
    case NGX_HTTP_AI_EP_MESSAGES:
        ngx_str_set(&rec->endpoint, "messages");
        break;
    case NGX_HTTP_AI_EP_GEMINI:
        ngx_str_set(&rec->endpoint, "generate_content");
        break;
    case NGX_HTTP_AI_EP_COUNT_TOKENS:
        ngx_str_set(&rec->endpoint, "count_tokens");
        break;
    case NGX_HTTP_AI_EP_RESPONSES:
        ngx_str_set(&rec->endpoint, "responses");
        break;
    case NGX_HTTP_AI_EP_RESPONSE:
        ngx_str_set(&rec->endpoint, "response");
        break;
    }

    tp = ngx_timeofday();

    ms = (ngx_msec_int_t) ((tp->sec - r->start_sec) * 1000
                           + (tp->msec - r->start_msec));
    rec->latency = (ngx_msec_t) ngx_max(ms, 0);

    /* the gateway's own time: all but the time spent with upstreams */

    upstream = ngx_http_ai_log_upstream_time(r);

    rec->overhead = rec->latency > upstream ? rec->latency - upstream : 0;

    if (ai->first_byte) {
        rec->ttft = ai->ttft;
    }

    if (ai->usage.found) {
        ngx_http_ai_log_usage(r, ai, rec);
    }

    if (ngx_http_ai_cost(r, ai, &rec->cost) == NGX_OK) {
        ngx_http_ai_log_cost(r, rec);
    }

    if (ai->usage.found && rec->tokens[NGX_HTTP_AI_LOG_COMPLETION] > 0
        && ai->first_byte)
    {
        end = ai->resp_last ? ai->total : rec->latency;

        /* a stream generates after its first byte; a plain body before */
        span = (ai->is_sse && end > ai->ttft) ? end - ai->ttft : end;

        if (span > 0) {
            rec->tps = (double) rec->tokens[NGX_HTTP_AI_LOG_COMPLETION]
                       * 1000 / span;
            rec->has_tps = 1;
        }
    }

    if (status >= NGX_HTTP_BAD_REQUEST
        && status < NGX_HTTP_INTERNAL_SERVER_ERROR
        && !rec->aborted && ai->error)
    {
        rec->rejected = 1;

    } else if (status >= NGX_HTTP_BAD_REQUEST || ai->truncated) {
        rec->error = 1;
    }
}


/*
 * The usage as the provider reported it is hostile input: each count is
 * kept within [0, 2^40], so that what is derived from it (sums, tokens
 * per second, the conversions of ngx_sprintf()) stays in range.
 */

static void
ngx_http_ai_log_usage(ngx_http_request_t *r, ngx_http_ai_ctx_t *ai,
    ngx_http_ai_log_record_t *rec)
{
    ngx_int_t    v[NGX_HTTP_AI_LOG_TOKEN_TYPES + 1];
    ngx_uint_t   i, bad;

    static ngx_uint_t  warned;

    v[NGX_HTTP_AI_LOG_PROMPT] = ai->usage.prompt_tokens;
    v[NGX_HTTP_AI_LOG_COMPLETION] = ai->usage.completion_tokens;
    v[NGX_HTTP_AI_LOG_CACHED] = ai->usage.cached_tokens;
    v[NGX_HTTP_AI_LOG_REASONING] = ai->usage.reasoning_tokens;
    v[NGX_HTTP_AI_LOG_TOTAL] = ai->usage.total_tokens;

    bad = 0;

    for (i = 0; i < NGX_HTTP_AI_LOG_TOKEN_TYPES + 1; i++) {

        if (v[i] < 0) {
            rec->tokens[i] = 0;
            bad = 1;

        } else if ((uint64_t) v[i] > NGX_HTTP_AI_LOG_TOKENS_MAX) {
            rec->tokens[i] = NGX_HTTP_AI_LOG_TOKENS_MAX;
            bad = 1;

        } else {
            rec->tokens[i] = (uint64_t) v[i];
        }
    }

    if (bad && !warned) {
        warned = 1;

        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "ai_log: token counts out of range from the upstream "
                      "(prompt %i, completion %i, cached %i, reasoning %i, "
                      "total %i) are kept within 0 and 2^40 "
                      "(said once per worker)",
                      v[NGX_HTTP_AI_LOG_PROMPT],
                      v[NGX_HTTP_AI_LOG_COMPLETION],
                      v[NGX_HTTP_AI_LOG_CACHED],
                      v[NGX_HTTP_AI_LOG_REASONING],
                      v[NGX_HTTP_AI_LOG_TOTAL]);
    }
}


/*
 * The cost, from the core's price table and the usage: NaN, infinite and
 * negative costs count as 0, finite ones are kept within 10^9 USD.
 */

static void
ngx_http_ai_log_cost(ngx_http_request_t *r, ngx_http_ai_log_record_t *rec)
{
    char    *what;
    double   cost;

    static ngx_uint_t  warned;

    cost = rec->cost;

    rec->has_cost = 1;

    if (isnan(cost) || isinf(cost) || cost < 0) {
        what = isnan(cost) ? "NaN" : isinf(cost) ? "infinite" : "negative";
        rec->cost = 0;

    } else if (cost > NGX_HTTP_AI_LOG_COST_MAX) {
        what = "over 1e9 USD";
        rec->cost = NGX_HTTP_AI_LOG_COST_MAX;

    } else {
        return;
    }

    if (!warned) {
        warned = 1;

        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "ai_log: a cost out of range (%s) is counted as "
                      "%.0f USD (said once per worker)", what, rec->cost);
    }
}


static char *
ngx_http_ai_log_set_log(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_log_loc_conf_t *lcf = conf;

    ngx_str_t  *value;

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {

        if (cf->args->nelts != 2) {
            return "has invalid parameters after \"off\"";
        }

        lcf->off = 1;

        return NGX_CONF_OK;
    }

    return ngx_http_ai_log_set_sink(cf, lcf);
}


static char *
ngx_http_ai_log_metadata_header(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_ai_log_loc_conf_t *lcf = conf;

    ssize_t                    size;
    ngx_str_t                 *value, s;
    ngx_uint_t                 i;
    ngx_http_ai_log_header_t  *h;

    value = cf->args->elts;

    if (value[1].len == 0) {
        return "has an empty header name";
    }

    ngx_strlow(value[1].data, value[1].data, value[1].len);

    for (i = 0; ngx_http_ai_log_secret_headers[i].len; i++) {
        if (value[1].len == ngx_http_ai_log_secret_headers[i].len
            && ngx_strncmp(value[1].data,
                           ngx_http_ai_log_secret_headers[i].data,
                           value[1].len)
               == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"ai_log_metadata_header\": \"%V\" carries "
                               "keys and is never logged", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    if (lcf->headers == NGX_CONF_UNSET_PTR) {
        lcf->headers = ngx_array_create(cf->pool, 2,
                                        sizeof(ngx_http_ai_log_header_t));
        if (lcf->headers == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    h = ngx_array_push(lcf->headers);
    if (h == NULL) {
        return NGX_CONF_ERROR;
    }

    h->name = value[1];
    h->max = 4096;

    if (cf->args->nelts == 3) {
        if (ngx_strncmp(value[2].data, "max=", 4) != 0) {
            return "has an invalid parameter, \"max=SIZE\" is expected";
        }

        s.data = value[2].data + 4;
        s.len = value[2].len - 4;

        size = ngx_parse_size(&s);
        if (size == NGX_ERROR || size == 0) {
            return "has an invalid \"max=\" size";
        }

        h->max = (size_t) size;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_ai_log_body(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    size_t                       *max;
    ssize_t                       size;
    ngx_str_t                    *value, s;
    ngx_flag_t                   *fp;
    ngx_http_ai_log_main_conf_t  *lmcf;

    fp = (ngx_flag_t *) (p + cmd->offset);

    /* request_body_max follows request_body, the same for responses */
    max = (size_t *) (p + cmd->offset + sizeof(ngx_flag_t));

    if (*fp != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "on") == 0) {
        *fp = 1;

    } else if (ngx_strcmp(value[1].data, "off") == 0) {
        *fp = 0;

    } else {
        return "has an invalid value, \"on\" or \"off\" is expected";
    }

    /* the cap goes with the directive: "on" alone is the default cap */
    *max = 65536;

    if (cf->args->nelts == 3) {
        if (ngx_strncmp(value[2].data, "max=", 4) != 0) {
            return "has an invalid parameter, \"max=SIZE\" is expected";
        }

        s.data = value[2].data + 4;
        s.len = value[2].len - 4;

        size = ngx_parse_size(&s);
        if (size == NGX_ERROR || size == 0) {
            return "has an invalid \"max=\" size";
        }

        *max = (size_t) size;
    }

    if (*fp && cmd->offset
               == offsetof(ngx_http_ai_log_loc_conf_t, response_body))
    {
        lmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ai_log_module);
        lmcf->response_body = 1;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_ai_log_endpoint(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t     *clcf;
    ngx_http_ai_log_main_conf_t  *lmcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler) {
        return "is duplicate or the location has another handler";
    }

    clcf->handler = (ngx_http_handler_pt) cmd->post;

    lmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ai_log_module);
    lmcf->endpoints = 1;

    return NGX_CONF_OK;
}


/* ai_server_timing on|off: the header filter is added only when used */

static char *
ngx_http_ai_log_server_timing(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    char                         *rv;
    ngx_http_ai_log_loc_conf_t   *lcf;
    ngx_http_ai_log_main_conf_t  *lmcf;

    lcf = conf;

    rv = ngx_conf_set_flag_slot(cf, cmd, conf);

    if (rv == NGX_CONF_OK && lcf->server_timing == 1) {
        lmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ai_log_module);
        lmcf->server_timing = 1;
    }

    return rv;
}


static ngx_int_t
ngx_http_ai_log_preconfiguration(ngx_conf_t *cf)
{
    return ngx_http_ai_core_require(cf, "ngx_http_ai_log_module");
}


static ngx_int_t
ngx_http_ai_log_postconfiguration(ngx_conf_t *cf)
{
    ngx_str_t                     name;
    ngx_http_ai_log_main_conf_t  *lmcf;

    lmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ai_log_module);

    if (lmcf->endpoints && lmcf->zone == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ai_metrics\" and \"ai_dashboard\" need an "
                           "\"ai_metrics_zone\" in the http block");
        return NGX_ERROR;
    }

    ngx_str_set(&name, "request_id");

    lmcf->request_id = ngx_http_get_variable_index(cf, &name);
    if (lmcf->request_id == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (ngx_http_ai_add_done(cf, NGX_HTTP_AI_DONE_LOG, ngx_http_ai_log_done)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* the requests and streams in flight, from the stages on */

    if (lmcf->zone
        && ngx_http_ai_add_stage(cf, NGX_HTTP_AI_LOG_STAGE_INFLIGHT,
                                 ngx_http_ai_log_inflight_stage)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (lmcf->server_timing && ngx_http_ai_log_timing_init(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    /* the fast path: no event handler unless response bodies are logged */

    if (lmcf->response_body
        && ngx_http_ai_add_event_handler(cf, ngx_http_ai_log_body_event)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void *
ngx_http_ai_log_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_ai_log_main_conf_t  *lmcf;

    lmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_log_main_conf_t));
    if (lmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     lmcf->zone = NULL;
     *     lmcf->response_body = 0;
     *     lmcf->endpoints = 0;
     */

    return lmcf;
}


static void *
ngx_http_ai_log_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_ai_log_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_log_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->sinks = NULL;
     *     conf->off = 0;
     */

    conf->headers = NGX_CONF_UNSET_PTR;
    conf->request_body = NGX_CONF_UNSET;
    conf->request_body_max = NGX_CONF_UNSET_SIZE;
    conf->response_body = NGX_CONF_UNSET;
    conf->response_body_max = NGX_CONF_UNSET_SIZE;
    conf->server_timing = NGX_CONF_UNSET;

    return conf;
}


static char *
ngx_http_ai_log_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_ai_log_loc_conf_t *prev = parent;
    ngx_http_ai_log_loc_conf_t *conf = child;

    if (conf->sinks == NULL && !conf->off) {
        conf->sinks = prev->sinks;
        conf->off = prev->off;
    }

    ngx_conf_merge_ptr_value(conf->headers, prev->headers, NULL);

    ngx_conf_merge_value(conf->request_body, prev->request_body, 0);
    ngx_conf_merge_size_value(conf->request_body_max,
                              prev->request_body_max, 65536);

    ngx_conf_merge_value(conf->response_body, prev->response_body, 0);
    ngx_conf_merge_size_value(conf->response_body_max,
                              prev->response_body_max, 65536);
    ngx_conf_merge_value(conf->server_timing, prev->server_timing, 0);

    return NGX_CONF_OK;
}
