
/*
 * Copyright (C) AI Gateway authors
 *
 * ai_proxy: sends the AI requests of a location to an OpenAI-compatible
 * provider and streams the answer back.
 *
 *     env OPENAI_API_KEY;
 *
 *     upstream openai {
 *         server api.openai.com:443;
 *         keepalive 16;
 *     }
 *
 *     location /v1/ {
 *         ai_proxy_pass https://openai/v1;
 *         ai_proxy_host api.openai.com;
 *         ai_proxy_key env:OPENAI_API_KEY;
 *     }
 *
 * The AI core has read and parsed the body by the time the content
 * handler runs; this module chooses what goes upstream and hands it to
 * the protocol in ngx_http_ai_proxy_upstream.c.
 */


#include "ngx_http_ai_proxy.h"


#define NGX_HTTP_AI_PROXY_KEY_MAX       (16 * 1024)
#define NGX_HTTP_AI_PROXY_CA_BUNDLE     "/etc/ssl/certs/ca-certificates.crt"


typedef struct {
    ngx_str_t                       name;
    ngx_uint_t                      value;
} ngx_http_ai_proxy_provider_t;


static ngx_int_t ngx_http_ai_proxy_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_ai_proxy_set_uri(ngx_http_request_t *r,
    ngx_http_ai_proxy_ctx_t *ctx, ngx_http_ai_proxy_loc_conf_t *plcf);

static void *ngx_http_ai_proxy_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_ai_proxy_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
#if (NGX_HTTP_SSL)
static ngx_int_t ngx_http_ai_proxy_set_ssl(ngx_conf_t *cf,
    ngx_http_ai_proxy_loc_conf_t *plcf);
#endif

static char *ngx_http_ai_proxy_pass(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ai_proxy_provider(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ai_proxy_key(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_ai_proxy_read_key(ngx_conf_t *cf, ngx_str_t *file,
    ngx_str_t *key);
static char *ngx_http_ai_proxy_host(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


/* indexed by the value */

static ngx_http_ai_proxy_provider_t  ngx_http_ai_proxy_providers[] = {
    { ngx_string("openai"), NGX_HTTP_AI_PROXY_OPENAI },
    { ngx_null_string, 0 }
};


/*
 * Response headers not passed to the client: those NGINX sets itself,
 * the ones that would make NGINX act (X-Accel-*), hop-by-hop ones, and
 * those that belong to the provider's site or account, not the gateway.
 */

static ngx_str_t  ngx_http_ai_proxy_hide_headers[] = {
    ngx_string("Date"),
    ngx_string("Server"),
    ngx_string("X-Pad"),
    ngx_string("X-Accel-Expires"),
    ngx_string("X-Accel-Redirect"),
    ngx_string("X-Accel-Limit-Rate"),
    ngx_string("X-Accel-Buffering"),
    ngx_string("X-Accel-Charset"),
    ngx_string("Connection"),
    ngx_string("Keep-Alive"),
    ngx_string("Transfer-Encoding"),
    ngx_string("Upgrade"),
    ngx_string("Trailer"),
    ngx_string("Set-Cookie"),
    ngx_string("Alt-Svc"),
    ngx_string("Strict-Transport-Security"),
    ngx_string("OpenAI-Organization"),
    ngx_string("OpenAI-Project"),
    ngx_null_string
};


static ngx_command_t  ngx_http_ai_proxy_commands[] = {

    { ngx_string("ai_proxy_pass"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_proxy_pass,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_proxy_provider"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_proxy_provider,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_proxy_key"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_proxy_key,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_proxy_host"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_proxy_host,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_proxy_connect_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_proxy_loc_conf_t, upstream.connect_timeout),
      NULL },

    { ngx_string("ai_proxy_send_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_proxy_loc_conf_t, upstream.send_timeout),
      NULL },

    { ngx_string("ai_proxy_read_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_proxy_loc_conf_t, upstream.read_timeout),
      NULL },

    { ngx_string("ai_proxy_buffer_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_proxy_loc_conf_t, upstream.buffer_size),
      NULL },

#if (NGX_HTTP_SSL)

    { ngx_string("ai_proxy_ssl_verify"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_proxy_loc_conf_t, upstream.ssl_verify),
      NULL },

    { ngx_string("ai_proxy_ssl_verify_depth"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_proxy_loc_conf_t, ssl_verify_depth),
      NULL },

    { ngx_string("ai_proxy_ssl_trusted_certificate"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_proxy_loc_conf_t, ssl_trusted_certificate),
      NULL },

    { ngx_string("ai_proxy_ssl_server_name"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_proxy_loc_conf_t, upstream.ssl_server_name),
      NULL },

    { ngx_string("ai_proxy_ssl_name"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_proxy_loc_conf_t, ssl_name),
      NULL },

#endif

      ngx_null_command
};


static ngx_http_module_t  ngx_http_ai_proxy_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_ai_proxy_create_loc_conf,     /* create location configuration */
    ngx_http_ai_proxy_merge_loc_conf       /* merge location configuration */
};


ngx_module_t  ngx_http_ai_proxy_module = {
    NGX_MODULE_V1,
    &ngx_http_ai_proxy_module_ctx,         /* module context */
    ngx_http_ai_proxy_commands,            /* module directives */
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


static ngx_int_t
ngx_http_ai_proxy_handler(ngx_http_request_t *r)
{
    ngx_int_t                      rc;
    ngx_http_ai_ctx_t             *ai;
    ngx_http_ai_proxy_ctx_t       *ctx;
    ngx_http_ai_proxy_loc_conf_t  *plcf;

    ai = ngx_http_ai_get_ctx(r);

    if (ai == NULL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ai_proxy: the AI core is off in this location "
                      "(\"ai_core off\"?)");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_proxy_module);

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_ai_proxy_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->ai = ai;

    switch (ai->req.endpoint) {

    case NGX_HTTP_AI_EP_CHAT:
    case NGX_HTTP_AI_EP_EMBEDDINGS:

        /* the core allowed POST only and read the body */

        if (ai->req.body.len == 0) {
            return ngx_http_ai_error(r, NGX_HTTP_BAD_REQUEST, NULL, NULL,
                                     NULL, "request body is empty, a JSON "
                                     "object is expected");
        }

        ngx_str_set(&ctx->method, "POST");
        ctx->body = ai->req.body;

        if (ai->req.stream && ai->req.endpoint == NGX_HTTP_AI_EP_CHAT) {
            ngx_str_set(&ctx->accept, "text/event-stream");

        } else {
            ngx_str_set(&ctx->accept, "application/json");
        }

        break;

    case NGX_HTTP_AI_EP_MODELS:

        /* the core allowed GET and HEAD only, a body is not expected */

        rc = ngx_http_discard_request_body(r);

        if (rc != NGX_OK) {
            return rc;
        }

        if (r->method == NGX_HTTP_HEAD) {
            ngx_str_set(&ctx->method, "HEAD");
            ctx->head = 1;

        } else {
            ngx_str_set(&ctx->method, "GET");
        }

        ngx_str_set(&ctx->accept, "application/json");

        break;

    case NGX_HTTP_AI_EP_MESSAGES:
    case NGX_HTTP_AI_EP_GEMINI:

        /* TODO: a translator sets method, uri and body for the target */

        return ngx_http_ai_error(r, NGX_HTTP_NOT_FOUND, NULL, NULL,
                                 "unknown_url", "the %V API (%V) is not "
                                 "supported by this location yet",
                                 ngx_http_ai_format_name(ai->req.format),
                                 &r->uri);

    default: /* NGX_HTTP_AI_EP_UNKNOWN */
        return ngx_http_ai_error(r, NGX_HTTP_NOT_FOUND, NULL, NULL,
                                 "unknown_url", "unknown endpoint %V",
                                 &r->uri);
    }

    if (ngx_http_ai_proxy_set_uri(r, ctx, plcf) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_set_ctx(r, ctx, ngx_http_ai_proxy_module);

    ai->provider = ngx_http_ai_proxy_providers[plcf->provider].name;
    ai->target = plcf->host_header;
    ai->upstream_model = ai->req.model;
    ai->upstream_format = NGX_HTTP_AI_FMT_OPENAI;

    return ngx_http_ai_proxy_upstream(r, ctx);
}


/* the base path of ai_proxy_pass, then the endpoint's own path */

static ngx_int_t
ngx_http_ai_proxy_set_uri(ngx_http_request_t *r, ngx_http_ai_proxy_ctx_t *ctx,
    ngx_http_ai_proxy_loc_conf_t *plcf)
{
    u_char     *p, *last, *id;
    size_t      len, escape;
    ngx_str_t   suffix;

    id = NULL;
    escape = 0;

    switch (ctx->ai->req.endpoint) {

    case NGX_HTTP_AI_EP_CHAT:
        ngx_str_set(&suffix, "/chat/completions");
        break;

    case NGX_HTTP_AI_EP_EMBEDDINGS:
        ngx_str_set(&suffix, "/embeddings");
        break;

    default: /* NGX_HTTP_AI_EP_MODELS: ".../models" or ".../models/{id}" */
        ngx_str_set(&suffix, "/models");

        last = r->uri.data + r->uri.len;

        if (r->uri.len > 1 && last[-1] == '/') {
            last--;
        }

        for (p = last; p > r->uri.data && p[-1] != '/'; p--) {
            /* void */
        }

        if ((size_t) (last - p) != sizeof("models") - 1
            || ngx_strncmp(p, "models", sizeof("models") - 1) != 0)
        {
            id = p;
            len = last - p;
            escape = 2 * ngx_escape_uri(NULL, id, len,
                                        NGX_ESCAPE_URI_COMPONENT);
        }

        break;
    }

    len = plcf->base.len + suffix.len;

    if (id) {
        len += 1 + (r->uri.data + r->uri.len - id) + escape;
    }

    ctx->uri.data = ngx_pnalloc(r->pool, len);
    if (ctx->uri.data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(ctx->uri.data, plcf->base.data, plcf->base.len);
    p = ngx_cpymem(p, suffix.data, suffix.len);

    if (id) {
        last = r->uri.data + r->uri.len;

        if (last[-1] == '/') {
            last--;
        }

        *p++ = '/';
        p = (u_char *) ngx_escape_uri(p, id, last - id,
                                      NGX_ESCAPE_URI_COMPONENT);
    }

    ctx->uri.len = p - ctx->uri.data;

    return NGX_OK;
}


static void *
ngx_http_ai_proxy_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_ai_proxy_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_proxy_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->upstream.upstream = NULL;
     *     conf->upstream.bufs.num = 0;
     *     conf->upstream.store = 0;
     *     conf->upstream.temp_path = NULL;
     *     conf->base = { 0, NULL };
     *     conf->host_header = { 0, NULL };
     *     conf->host = { 0, NULL };
     *     conf->auth = { 0, NULL };
     *     conf->ssl = 0;
     *     conf->ssl_trusted_certificate = { 0, NULL };
     */

    conf->upstream.local = NGX_CONF_UNSET_PTR;
    conf->upstream.socket_keepalive = NGX_CONF_UNSET;
    conf->upstream.next_upstream_tries = NGX_CONF_UNSET_UINT;
    conf->upstream.connect_timeout = NGX_CONF_UNSET_MSEC;
    conf->upstream.send_timeout = NGX_CONF_UNSET_MSEC;
    conf->upstream.read_timeout = NGX_CONF_UNSET_MSEC;
    conf->upstream.next_upstream_timeout = NGX_CONF_UNSET_MSEC;
    conf->upstream.buffer_size = NGX_CONF_UNSET_SIZE;

    conf->upstream.hide_headers = NGX_CONF_UNSET_PTR;
    conf->upstream.pass_headers = NGX_CONF_UNSET_PTR;

#if (NGX_HTTP_SSL)
    conf->upstream.ssl_session_reuse = NGX_CONF_UNSET;
    conf->ssl_name = NGX_CONF_UNSET_PTR;
    conf->upstream.ssl_server_name = NGX_CONF_UNSET;
    conf->upstream.ssl_verify = NGX_CONF_UNSET;
    conf->ssl_verify_depth = NGX_CONF_UNSET_UINT;
#endif

    conf->provider = NGX_CONF_UNSET_UINT;

    /* the hardcoded values: a stream goes as it comes, nothing is stored */

    conf->upstream.buffering = 0;
    conf->upstream.request_buffering = 1;
    conf->upstream.cyclic_temp_file = 0;
    conf->upstream.busy_buffers_size = 0;
    conf->upstream.max_temp_file_size = 0;
    conf->upstream.temp_file_write_size = 0;
    conf->upstream.limit_rate = 0;
    conf->upstream.send_lowat = 0;
    conf->upstream.intercept_errors = 0;
    conf->upstream.intercept_404 = 0;
    conf->upstream.ignore_client_abort = 0;
    conf->upstream.pass_request_headers = 0;
    conf->upstream.pass_request_body = 0;
    conf->upstream.force_ranges = 0;
    conf->upstream.pass_trailers = 0;

    /* a provider does not steer NGINX */

    conf->upstream.ignore_headers = NGX_HTTP_UPSTREAM_IGN_XA_REDIRECT
                                    |NGX_HTTP_UPSTREAM_IGN_XA_EXPIRES
                                    |NGX_HTTP_UPSTREAM_IGN_XA_LIMIT_RATE
                                    |NGX_HTTP_UPSTREAM_IGN_XA_BUFFERING
                                    |NGX_HTTP_UPSTREAM_IGN_XA_CHARSET;

    /*
     * a request that did not reach a server goes to the next one of an
     * upstream{} block; one that was sent is not repeated (POST), as an
     * LLM call is not idempotent
     */

    conf->upstream.next_upstream = NGX_CONF_BITMASK_SET
                                   |NGX_HTTP_UPSTREAM_FT_ERROR
                                   |NGX_HTTP_UPSTREAM_FT_TIMEOUT;

    ngx_str_set(&conf->upstream.module, "ai_proxy");

    return conf;
}


static char *
ngx_http_ai_proxy_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_ai_proxy_loc_conf_t *prev = parent;
    ngx_http_ai_proxy_loc_conf_t *conf = child;

    ngx_hash_init_t                    hash;
#if (NGX_HTTP_SSL)
    ngx_http_compile_complex_value_t   ccv;
#endif

    ngx_conf_merge_ptr_value(conf->upstream.local, prev->upstream.local,
                             NULL);

    ngx_conf_merge_value(conf->upstream.socket_keepalive,
                         prev->upstream.socket_keepalive, 0);

    ngx_conf_merge_uint_value(conf->upstream.next_upstream_tries,
                              prev->upstream.next_upstream_tries, 0);

    ngx_conf_merge_msec_value(conf->upstream.connect_timeout,
                              prev->upstream.connect_timeout, 10000);

    ngx_conf_merge_msec_value(conf->upstream.send_timeout,
                              prev->upstream.send_timeout, 60000);

    ngx_conf_merge_msec_value(conf->upstream.read_timeout,
                              prev->upstream.read_timeout, 300000);

    ngx_conf_merge_msec_value(conf->upstream.next_upstream_timeout,
                              prev->upstream.next_upstream_timeout, 0);

    ngx_conf_merge_size_value(conf->upstream.buffer_size,
                              prev->upstream.buffer_size,
                              (size_t) 16 * 1024);

    if (conf->upstream.buffer_size < 1024) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ai_proxy_buffer_size\" must be at least 1k");
        return NGX_CONF_ERROR;
    }

    ngx_conf_merge_uint_value(conf->provider, prev->provider,
                              NGX_HTTP_AI_PROXY_OPENAI);

    ngx_conf_merge_str_value(conf->auth, prev->auth, "");
    ngx_conf_merge_str_value(conf->host, prev->host, "");

    hash.max_size = 512;
    hash.bucket_size = ngx_align(64, ngx_cacheline_size);
    hash.name = "ai_proxy_headers_hash";

    if (ngx_http_upstream_hide_headers_hash(cf, &conf->upstream,
            &prev->upstream, ngx_http_ai_proxy_hide_headers, &hash)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

#if (NGX_HTTP_SSL)

    ngx_conf_merge_value(conf->upstream.ssl_session_reuse,
                         prev->upstream.ssl_session_reuse, 1);

    ngx_conf_merge_value(conf->upstream.ssl_verify,
                         prev->upstream.ssl_verify, 1);

    ngx_conf_merge_uint_value(conf->ssl_verify_depth,
                              prev->ssl_verify_depth, 3);

    ngx_conf_merge_str_value(conf->ssl_trusted_certificate,
                             prev->ssl_trusted_certificate,
                             NGX_HTTP_AI_PROXY_CA_BUNDLE);

    ngx_conf_merge_value(conf->upstream.ssl_server_name,
                         prev->upstream.ssl_server_name, 1);

    ngx_conf_merge_ptr_value(conf->ssl_name, prev->ssl_name, NULL);

    conf->upstream.ssl_name = conf->ssl_name;

    if (conf->ssl_name == NULL && conf->host.len) {

        /* the TLS name follows "ai_proxy_host" of the same level */

        conf->upstream.ssl_name = ngx_palloc(cf->pool,
                                          sizeof(ngx_http_complex_value_t));
        if (conf->upstream.ssl_name == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

        ccv.cf = cf;
        ccv.value = &conf->host;
        ccv.complex_value = conf->upstream.ssl_name;

        if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

    if (conf->ssl && ngx_http_ai_proxy_set_ssl(cf, conf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

#endif

    return NGX_CONF_OK;
}


#if (NGX_HTTP_SSL)

static ngx_int_t
ngx_http_ai_proxy_set_ssl(ngx_conf_t *cf, ngx_http_ai_proxy_loc_conf_t *plcf)
{
    ngx_str_t            ciphers;
    ngx_pool_cleanup_t  *cln;

    plcf->upstream.ssl = ngx_pcalloc(cf->pool, sizeof(ngx_ssl_t));
    if (plcf->upstream.ssl == NULL) {
        return NGX_ERROR;
    }

    plcf->upstream.ssl->log = cf->log;

    if (ngx_ssl_create(plcf->upstream.ssl,
                       NGX_SSL_TLSv1_2|NGX_SSL_TLSv1_3, NULL)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        ngx_ssl_cleanup_ctx(plcf->upstream.ssl);
        return NGX_ERROR;
    }

    cln->handler = ngx_ssl_cleanup_ctx;
    cln->data = plcf->upstream.ssl;

    ngx_str_set(&ciphers, "DEFAULT");

    if (ngx_ssl_ciphers(cf, plcf->upstream.ssl, &ciphers, 0) != NGX_OK) {
        return NGX_ERROR;
    }

    if (plcf->upstream.ssl_verify) {
        if (plcf->ssl_trusted_certificate.len == 0) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "no \"ai_proxy_ssl_trusted_certificate\" for "
                          "\"ai_proxy_ssl_verify\"");
            return NGX_ERROR;
        }

        if (ngx_ssl_trusted_certificate(cf, plcf->upstream.ssl,
                                        &plcf->ssl_trusted_certificate,
                                        plcf->ssl_verify_depth)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (ngx_ssl_client_session_cache(cf, plcf->upstream.ssl,
                                     plcf->upstream.ssl_session_reuse)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}

#endif


/*
 * ai_proxy_pass http://host[:port][/base];
 * ai_proxy_pass https://upstream_name[/base];
 *
 * The host is resolved or the upstream{} block is found when the
 * configuration is read, as for a static proxy_pass.
 */

static char *
ngx_http_ai_proxy_pass(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_proxy_loc_conf_t *plcf = conf;

    size_t                     add;
    u_short                    port;
    ngx_str_t                 *value, *url, base;
    ngx_url_t                  u;
    ngx_http_core_loc_conf_t  *clcf;

    if (plcf->upstream.upstream) {
        return "is duplicate";
    }

    value = cf->args->elts;
    url = &value[1];

    if (ngx_strncasecmp(url->data, (u_char *) "http://", 7) == 0) {
        add = 7;
        port = 80;

    } else if (ngx_strncasecmp(url->data, (u_char *) "https://", 8) == 0) {

#if (NGX_HTTP_SSL)
        plcf->ssl = 1;

        add = 8;
        port = 443;
#else
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ai_proxy_pass\" with https requires NGINX "
                           "built with SSL support");
        return NGX_CONF_ERROR;
#endif

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid URL prefix in \"ai_proxy_pass %V\", "
                           "\"http://\" or \"https://\" is expected", url);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_script_variables_count(url) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "variables are not supported in "
                           "\"ai_proxy_pass %V\"", url);
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.url.len = url->len - add;
    u.url.data = url->data + add;
    u.default_port = port;
    u.uri_part = 1;
    u.no_resolve = 1;

    plcf->upstream.upstream = ngx_http_upstream_add(cf, &u, 0);
    if (plcf->upstream.upstream == NULL) {
        return NGX_CONF_ERROR;
    }

    /* the base path: "/v1" of "http://host/v1/", empty for "http://host" */

    base = u.uri;

    if (ngx_strlchr(base.data, base.data + base.len, '?')
        || ngx_strlchr(base.data, base.data + base.len, '#'))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "a query string is not allowed in "
                           "\"ai_proxy_pass %V\"", url);
        return NGX_CONF_ERROR;
    }

    while (base.len && base.data[base.len - 1] == '/') {
        base.len--;
    }

    plcf->base = base;

    /* the Host header, as proxy_pass sends it */

    if (u.family == AF_UNIX) {
        ngx_str_set(&plcf->host_header, "localhost");

    } else if (u.no_port || u.port == u.default_port) {
        plcf->host_header = u.host;

    } else {
        plcf->host_header.len = u.host.len + 1 + u.port_text.len;
        plcf->host_header.data = u.host.data;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    clcf->handler = ngx_http_ai_proxy_handler;

    ngx_http_ai_core_enable(cf);

    return NGX_CONF_OK;
}


static char *
ngx_http_ai_proxy_provider(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_proxy_loc_conf_t *plcf = conf;

    ngx_str_t                     *value;
    ngx_http_ai_proxy_provider_t  *p;

    if (plcf->provider != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (p = ngx_http_ai_proxy_providers; p->name.len; p++) {
        if (value[1].len == p->name.len
            && ngx_strncasecmp(value[1].data, p->name.data, p->name.len)
               == 0)
        {
            plcf->provider = p->value;
            return NGX_CONF_OK;
        }
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "unknown provider \"%V\" in \"ai_proxy_provider\", "
                       "the only provider supported is \"openai\" "
                       "(any OpenAI-compatible API)", &value[1]);

    return NGX_CONF_ERROR;
}


/*
 * ai_proxy_key env:NAME | file:/path | off;
 *
 * The key is read when the configuration is read, by the master process:
 * a reload reads it again.  The environment of NGINX is kept by the
 * master on reload but not across a binary upgrade or with
 * "master_process off": "env NAME;" in the main context keeps NAME there.
 * An inline key is refused, so that keys stay out of configuration files,
 * and a key never appears in a message.
 */

static char *
ngx_http_ai_proxy_key(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_proxy_loc_conf_t *plcf = conf;

    char       *env, *rv;
    u_char     *p, *last;
    ngx_str_t  *value, name, key;

    if (plcf->auth.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        ngx_str_set(&plcf->auth, "");
        return NGX_CONF_OK;
    }

    if (value[1].len > 4 && ngx_strncmp(value[1].data, "env:", 4) == 0) {

        /* the token is null-terminated */

        name.data = value[1].data + 4;
        name.len = value[1].len - 4;

        env = getenv((char *) name.data);

        if (env == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"ai_proxy_key\": the environment variable "
                               "\"%V\" is not set", &name);
            return NGX_CONF_ERROR;
        }

        key.data = (u_char *) env;
        key.len = ngx_strlen(env);

    } else if (value[1].len > 5
               && ngx_strncmp(value[1].data, "file:", 5) == 0)
    {
        name.data = value[1].data + 5;
        name.len = value[1].len - 5;

        if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        rv = ngx_http_ai_proxy_read_key(cf, &name, &key);
        if (rv != NGX_CONF_OK) {
            return rv;
        }

    } else {
        /* the value may be a key: it is not shown */

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ai_proxy_key\" must be \"env:NAME\", "
                           "\"file:/path\" or \"off\"; keys are not "
                           "accepted inline");
        return NGX_CONF_ERROR;
    }

    /* white space around the key (the new line of a file) is dropped */

    p = key.data;
    last = key.data + key.len;

    while (p < last && (*p == ' ' || *p == '\t' || *p == CR || *p == LF)) {
        p++;
    }

    while (last > p
           && (last[-1] == ' ' || last[-1] == '\t' || last[-1] == CR
               || last[-1] == LF))
    {
        last--;
    }

    if (p == last) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ai_proxy_key\": the key in %s \"%V\" is empty",
                           value[1].data[0] == 'e' ? "environment variable"
                                                   : "file",
                           &name);
        return NGX_CONF_ERROR;
    }

    key.data = p;
    key.len = last - p;

    for ( /* void */ ; p < last; p++) {
        if (*p <= ' ' || *p == 0x7f) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"ai_proxy_key\": the key in %s \"%V\" has "
                               "white space or control characters",
                               value[1].data[0] == 'e'
                               ? "environment variable" : "file",
                               &name);
            return NGX_CONF_ERROR;
        }
    }

    plcf->auth.len = sizeof("Bearer ") - 1 + key.len;
    plcf->auth.data = ngx_pnalloc(cf->pool, plcf->auth.len);
    if (plcf->auth.data == NULL) {
        return NGX_CONF_ERROR;
    }

    p = ngx_cpymem(plcf->auth.data, "Bearer ", sizeof("Bearer ") - 1);
    ngx_memcpy(p, key.data, key.len);

    if (value[1].data[0] == 'f') {
        /* the copy read from the file */
        ngx_explicit_memzero(key.data, key.len);
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_ai_proxy_read_key(ngx_conf_t *cf, ngx_str_t *file, ngx_str_t *key)
{
    off_t            size;
    ssize_t          n;
    ngx_fd_t         fd;
    ngx_file_info_t  fi;

    fd = ngx_open_file(file->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "\"ai_proxy_key\": cannot read the key file "
                           "\"%V\"", file);
        return NGX_CONF_ERROR;
    }

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "\"ai_proxy_key\": cannot read the key file "
                           "\"%V\"", file);
        goto failed;
    }

    size = ngx_file_size(&fi);

    if (!ngx_is_file(&fi) || size > NGX_HTTP_AI_PROXY_KEY_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ai_proxy_key\": the key file \"%V\" is not "
                           "a regular file of at most %d bytes",
                           file, NGX_HTTP_AI_PROXY_KEY_MAX);
        goto failed;
    }

    key->data = ngx_pnalloc(cf->temp_pool, (size_t) size + 1);
    if (key->data == NULL) {
        goto failed;
    }

    n = ngx_read_fd(fd, key->data, (size_t) size + 1);

    if (n == -1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "\"ai_proxy_key\": cannot read the key file "
                           "\"%V\"", file);
        goto failed;
    }

    if (n > size) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ai_proxy_key\": the key file \"%V\" changed "
                           "while it was read", file);
        goto failed;
    }

    key->len = n;

    if (ngx_close_file(fd) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, cf->log, ngx_errno,
                      ngx_close_file_n " \"%V\" failed", file);
    }

    return NGX_CONF_OK;

failed:

    if (ngx_close_file(fd) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, cf->log, ngx_errno,
                      ngx_close_file_n " \"%V\" failed", file);
    }

    return NGX_CONF_ERROR;
}


/* ai_proxy_host name[:port]; the Host header, and the TLS name by default */

static char *
ngx_http_ai_proxy_host(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_proxy_loc_conf_t *plcf = conf;

    u_char     *p;
    ngx_str_t  *value;

    if (plcf->host.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 0) {
        return "has an empty value";
    }

    for (p = value[1].data; p < value[1].data + value[1].len; p++) {
        if (*p <= ' ' || *p == 0x7f || *p == '/' || *p == '$') {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid host \"%V\" in \"ai_proxy_host\"",
                               &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    plcf->host = value[1];

    return NGX_CONF_OK;
}
