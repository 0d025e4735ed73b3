
/*
 * Copyright (C) AI Gateway authors
 *
 * ai_proxy: what its files share.  ngx_http_ai_proxy_module.c holds the
 * module, its directives, the content handler and the response
 * translation; ngx_http_ai_proxy_target.c the targets, keys, routing,
 * balancing and retries; ngx_http_ai_proxy_models.c the model list;
 * ngx_http_ai_proxy_headers.c the headers passed or set toward the
 * provider; ngx_http_ai_proxy_upstream.c speaks HTTP/1.1 to the provider
 * through NGINX's upstream machinery.  The translation
 * between the formats is the core's format layer.
 */


#ifndef _NGX_HTTP_AI_PROXY_H_INCLUDED_
#define _NGX_HTTP_AI_PROXY_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ai_core.h"


/* providers: the wire format, where the key goes, the URL of a call */
#define NGX_HTTP_AI_PROXY_OPENAI        0
#define NGX_HTTP_AI_PROXY_AZURE         1
#define NGX_HTTP_AI_PROXY_ANTHROPIC     2
#define NGX_HTTP_AI_PROXY_GEMINI        3


/* ai_proxy_next_upstream */
#define NGX_HTTP_AI_PROXY_FT_ERROR      0x0001
#define NGX_HTTP_AI_PROXY_FT_TIMEOUT    0x0002
#define NGX_HTTP_AI_PROXY_FT_429        0x0004
#define NGX_HTTP_AI_PROXY_FT_5XX        0x0008
#define NGX_HTTP_AI_PROXY_FT_AUTH       0x0010     /* 401, 403 */
#define NGX_HTTP_AI_PROXY_FT_OFF        0x0020


/* ai_proxy_balance */
#define NGX_HTTP_AI_PROXY_RR            0
#define NGX_HTTP_AI_PROXY_LEAST_CONN    1
#define NGX_HTTP_AI_PROXY_LATENCY       2


#define NGX_HTTP_AI_PROXY_MAX_TARGETS   64


/* what a target serves: "endpoints=chat,embeddings" */
#define NGX_HTTP_AI_PROXY_EP_CHAT       0x0001
#define NGX_HTTP_AI_PROXY_EP_EMBEDDINGS 0x0002


typedef struct ngx_http_ai_proxy_resolve_s  ngx_http_ai_proxy_resolve_t;


/* a key's state, in the shared zone (ngx_http_ai_proxy_keys.c) */
typedef struct {
    ngx_atomic_t                    until;     /* ngx_msec_t: out until
                                                  then; 0: usable */
    ngx_atomic_t                    disabled;  /* by a 401 or 403 */
} ngx_http_ai_proxy_key_state_t;


typedef struct {
    ngx_str_t                       header;    /* "Name: value" CRLF */
    ngx_uint_t                      index;     /* 1-based, for logs */
    uint32_t                        sum;       /* a checksum of the key */
    ngx_http_ai_proxy_key_state_t  *state;     /* shared, or the worker's
                                                  without the zone */
} ngx_http_ai_proxy_key_t;


typedef struct {
    ngx_str_t                       name;
    ngx_uint_t                      provider;  /* NGX_HTTP_AI_PROXY_* */
    ngx_uint_t                      format;    /* NGX_HTTP_AI_FMT_* */

    ngx_http_upstream_srv_conf_t   *upstream;
    ngx_str_t                       base;      /* the URL's path */
    ngx_str_t                       host;      /* the Host header */
    ngx_str_t                       api_version;
    unsigned                        ssl:1;

    ngx_http_ai_proxy_resolve_t    *resolve;   /* resolved again, or NULL */

    ngx_array_t                     keys;      /* ngx_http_ai_proxy_key_t */
    ngx_uint_t                      next_key;

    ngx_array_t                    *models;    /* ngx_str_t globs, or any */
    ngx_str_t                       model;     /* the model it is sent */
    ngx_int_t                       weight;
    ngx_uint_t                      backup;    /* only when no other is left */
    ngx_uint_t                      endpoints; /* NGX_HTTP_AI_PROXY_EP_*,
                                                  0: the default */
    ngx_uint_t                      chat_only; /* "responses=chat": the
                                                  Responses API translated
                                                  to chat completions */

    /* balancing state, per worker */
    ngx_int_t                       current_weight;
    ngx_uint_t                      inflight;
    ngx_msec_t                      ewma;      /* TTFT, ms; 0: unknown */
    ngx_msec_t                      failed_at; /* the last attempt failed
                                                  without an answer; 0: no */

    ngx_http_ai_counter_t          *cooldowns;
    ngx_http_ai_counter_t          *disables;

    u_char                         *file;
    ngx_uint_t                      line;
} ngx_http_ai_proxy_target_t;


typedef struct {
    ngx_array_t                     targets;   /* ai_target: target * */
    ngx_array_t                     all;       /* and ai_proxy_pass's */
    void                           *keys_sh;   /* the keys' shared state */
    ngx_array_t                     resolved;  /* resolve * */
    void                           *addrs_sh;  /* their addresses */
} ngx_http_ai_proxy_main_conf_t;


typedef struct {
    ngx_str_t                       from;
    ngx_str_t                       to;
} ngx_http_ai_proxy_alias_t;


typedef struct {
    ngx_str_t                       name;
    ngx_http_complex_value_t        value;
} ngx_http_ai_proxy_header_t;


typedef struct {
    ngx_http_upstream_conf_t        upstream;

    /* "ai_proxy_pass" and its settings: one target of the location */
    ngx_str_t                       url;
    ngx_uint_t                      provider;
    ngx_array_t                    *keys;      /* ngx_str_t, raw keys */
    ngx_str_t                       host;      /* "ai_proxy_host" */

    ngx_array_t                    *names;     /* "ai_proxy": ngx_str_t */
    ngx_array_t                    *targets;   /* target * */
    ngx_http_upstream_srv_conf_t   *balancer;  /* over the targets */

    ngx_array_t                    *aliases;   /* alias */
    ngx_array_t                    *declared;  /* "ai_proxy_models" */
    ngx_array_t                    *pass_headers;  /* ngx_str_t, lower */
    ngx_array_t                    *set_headers;   /* header_t */
    ngx_array_t                    *drop_fields;   /* ngx_str_t */
    ngx_array_t                    *prepend;   /* ngx_http_ai_decoration_t */
    ngx_array_t                    *append;
    ngx_uint_t                      balance;
    ngx_uint_t                      next;      /* NGX_HTTP_AI_PROXY_FT_* */
    ngx_uint_t                      tries;
    ngx_msec_t                      deadline;
    ngx_msec_t                      key_cooldown;
    ngx_msec_t                      key_disable;
    ngx_int_t                       max_tokens;
    size_t                          response_max_size;

    ngx_http_ai_store_t            *responses_store;  /* response ids ->
                                                         target and key */
    ngx_msec_t                      responses_ttl;

    unsigned                        door:1;
    unsigned                        any_ssl:1;

#if (NGX_HTTP_SSL)
    ngx_http_complex_value_t       *ssl_name;     /* "ai_proxy_ssl_name" */
    ngx_uint_t                      ssl_verify_depth;
    ngx_str_t                       ssl_trusted_certificate;
#endif
} ngx_http_ai_proxy_loc_conf_t;


/*
 * The state of one request.  Each attempt (a target and a key) gets its
 * own method, uri, body and headers, built by the balancer when it picks
 * the target; the rest is the protocol's state.
 */

typedef struct {
    ngx_http_ai_ctx_t              *ai;
    ngx_http_request_t             *request;
    ngx_http_ai_proxy_loc_conf_t   *conf;

    ngx_str_t                       model;        /* after aliases */

    ngx_str_t                       method;
    ngx_str_t                       uri;
    ngx_str_t                       body;         /* no body if empty */
    ngx_str_t                       accept;
    ngx_str_t                       host;
    ngx_str_t                       headers;      /* key and provider's */
    ngx_str_t                       extra;        /* the client's passed,
                                                     the location's set */

    ngx_http_ai_proxy_target_t     *target;       /* of this attempt */
    ngx_uint_t                      index;        /* of the target */
    ngx_http_ai_proxy_key_t        *key;
    uint64_t                        candidates;   /* bit per target */
    uint64_t                        failed;
    ngx_uint_t                      tries;        /* attempts left */
    ngx_msec_t                      first_start;

    ngx_http_ai_stream_t           *stream;       /* the translator */

    /* the Responses API: a stored response's target and key */
    ngx_http_ai_store_op_t         *pin_op;
    ngx_uint_t                      pin_key;      /* 1-based, 0: any */

    /* a plain answer, held whole before its header goes out */
    u_char                         *held;
    size_t                          held_len;
    size_t                          held_size;
    ngx_str_t                       plain;        /* what the client gets,
                                                     when rewritten */

    /* the balancer of the target's upstream, called by ours */
    ngx_event_get_peer_pt           inner_get;
    ngx_event_free_peer_pt          inner_free;
#if (NGX_HTTP_SSL)
    ngx_event_set_peer_session_pt   inner_set_session;
    ngx_event_save_peer_session_pt  inner_save_session;
#endif
    void                           *inner_data;
    ngx_uint_t                      inner_tries;  /* its servers left */

    /* the address resolved at run time, for this attempt */
    ngx_sockaddr_t                  sockaddr;
    socklen_t                       socklen;
    ngx_str_t                       addr_text;
    u_char                          addr_buf[NGX_SOCKADDR_STRLEN];

    ngx_http_status_t               status;
    ngx_http_chunked_t              chunked;

    unsigned                        head:1;
    unsigned                        key_failure:1;
    unsigned                        counted:1;    /* inflight */
    unsigned                        translate:1;  /* rewrite the response */
    unsigned                        inner_retry:1; /* same target, next
                                                      server */
    unsigned                        prepared:1;   /* the first attempt */
    unsigned                        hold:1;       /* the header is held */
    unsigned                        passed:1;     /* too large to hold: it
                                                     goes as it comes */
    unsigned                        answered:1;   /* the rest is dropped */
    unsigned                        pin_checked:1;
    unsigned                        pin_recorded:1;
    unsigned                        no_store:1;   /* "store": false */
    unsigned                        chunked_broken:1; /* the rest dropped */
    unsigned                        going:1;      /* the content handler
                                                     has it */
} ngx_http_ai_proxy_ctx_t;


/* ngx_http_ai_proxy_target.c */
char *ngx_http_ai_target(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
ngx_http_ai_proxy_target_t *ngx_http_ai_proxy_target_create(ngx_conf_t *cf,
    ngx_str_t *name, ngx_str_t *url, ngx_uint_t provider, ngx_str_t *host);
char *ngx_http_ai_proxy_target_key(ngx_conf_t *cf,
    ngx_http_ai_proxy_target_t *t, ngx_str_t *key);
char *ngx_http_ai_proxy_key_value(ngx_conf_t *cf, const char *directive,
    ngx_str_t *value, ngx_str_t *key);
ngx_int_t ngx_http_ai_proxy_provider_value(ngx_str_t *name);
char *ngx_http_ai_proxy_targets_init(ngx_conf_t *cf,
    ngx_http_ai_proxy_loc_conf_t *plcf);
ngx_int_t ngx_http_ai_proxy_route(ngx_http_request_t *r,
    ngx_http_ai_proxy_ctx_t *ctx, ngx_str_t *model);
uint64_t ngx_http_ai_proxy_served(ngx_http_ai_proxy_loc_conf_t *plcf,
    ngx_uint_t endpoint, ngx_str_t *model);
ngx_str_t *ngx_http_ai_proxy_resolve_alias(
    ngx_http_ai_proxy_loc_conf_t *plcf, ngx_str_t *model);
ngx_int_t ngx_http_ai_proxy_first(ngx_http_request_t *r,
    ngx_http_ai_proxy_ctx_t *ctx);

/* ngx_http_ai_proxy_keys.c */
ngx_int_t ngx_http_ai_proxy_keys_zone(ngx_conf_t *cf);
ngx_msec_t ngx_http_ai_proxy_key_out(ngx_http_ai_proxy_key_t *k,
    ngx_uint_t *revoked);
void ngx_http_ai_proxy_key_set_out(ngx_http_ai_proxy_key_t *k,
    ngx_msec_t ms, ngx_uint_t revoked);

/* ngx_http_ai_proxy_resolve.c */
ngx_int_t ngx_http_ai_proxy_resolve_conf(ngx_conf_t *cf,
    ngx_http_ai_proxy_target_t *t);
ngx_int_t ngx_http_ai_proxy_resolve_zone(ngx_conf_t *cf);
ngx_int_t ngx_http_ai_proxy_resolve_init_process(ngx_cycle_t *cycle);
void ngx_http_ai_proxy_resolve_peer(ngx_http_ai_proxy_ctx_t *ctx,
    ngx_peer_connection_t *pc);

/* ngx_http_ai_proxy_module.c */
ngx_int_t ngx_http_ai_proxy_go(ngx_http_request_t *r,
    ngx_http_ai_proxy_ctx_t *ctx);

/* ngx_http_ai_proxy_responses.c */
ngx_int_t ngx_http_ai_proxy_pin_lookup(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ai, ngx_http_ai_proxy_ctx_t *ctx);
ngx_uint_t ngx_http_ai_proxy_format(ngx_http_ai_proxy_target_t *t,
    ngx_uint_t endpoint);
ngx_int_t ngx_http_ai_proxy_prepare_responses(ngx_http_request_t *r,
    ngx_http_ai_proxy_ctx_t *ctx, ngx_str_t *model);
char *ngx_http_ai_proxy_responses_store(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_ai_proxy_pin(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ai);
void ngx_http_ai_proxy_pin_record(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ai, ngx_http_ai_proxy_ctx_t *ctx,
    ngx_http_ai_event_t *ev);
void ngx_http_ai_proxy_response_id(ngx_http_request_t *r, ngx_str_t *id);
ngx_int_t ngx_http_ai_proxy_unavailable(ngx_http_request_t *r,
    ngx_http_ai_proxy_ctx_t *ctx);
ngx_int_t ngx_http_ai_proxy_status(ngx_http_request_t *r,
    ngx_http_ai_proxy_ctx_t *ctx);
void ngx_http_ai_proxy_done(ngx_http_request_t *r,
    ngx_http_ai_proxy_ctx_t *ctx);
ngx_int_t ngx_http_ai_proxy_key_metrics(ngx_http_request_t *r,
    ngx_chain_t ***out);

/* ngx_http_ai_proxy_models.c */
ngx_int_t ngx_http_ai_proxy_models(ngx_http_request_t *r,
    ngx_http_ai_proxy_loc_conf_t *plcf);
void ngx_http_ai_proxy_model_id(ngx_http_request_t *r, ngx_str_t *id);
char *ngx_http_ai_proxy_models_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_ai_proxy_models_check(ngx_conf_t *cf,
    ngx_http_ai_proxy_loc_conf_t *plcf);

/* ngx_http_ai_proxy_headers.c */
char *ngx_http_ai_proxy_pass_client_headers(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
char *ngx_http_ai_proxy_set_header(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_ai_proxy_extra_headers(ngx_http_request_t *r,
    ngx_http_ai_proxy_ctx_t *ctx);

/* ngx_http_ai_proxy_fields.c */
char *ngx_http_ai_proxy_drop_fields_set(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_ai_proxy_drop_fields(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ai, ngx_http_ai_proxy_loc_conf_t *plcf);

/* ngx_http_ai_proxy_upstream.c */
ngx_int_t ngx_http_ai_proxy_build_request(ngx_http_request_t *r,
    ngx_http_ai_proxy_ctx_t *ctx);
ngx_int_t ngx_http_ai_proxy_upstream(ngx_http_request_t *r,
    ngx_http_ai_proxy_ctx_t *ctx);


extern ngx_module_t  ngx_http_ai_proxy_module;


#endif /* _NGX_HTTP_AI_PROXY_H_INCLUDED_ */
