
/*
 * Copyright (C) AI Gateway authors
 *
 * ai_proxy: what its two files share.  ngx_http_ai_proxy_module.c holds
 * the module, its directives and the content handler, which decides what
 * goes upstream (method, path, body); ngx_http_ai_proxy_upstream.c speaks
 * HTTP/1.1 to the provider through NGINX's upstream machinery.
 */


#ifndef _NGX_HTTP_AI_PROXY_H_INCLUDED_
#define _NGX_HTTP_AI_PROXY_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_ai_core.h"


/* ai_proxy_provider values */
#define NGX_HTTP_AI_PROXY_OPENAI        0


typedef struct {
    ngx_http_upstream_conf_t        upstream;

    ngx_str_t                       base;         /* URL path, no "/" at end */
    ngx_str_t                       host_header;  /* host[:port] of the URL */
    ngx_str_t                       host;         /* "ai_proxy_host" */
    ngx_str_t                       auth;         /* "Bearer KEY" or empty */

    ngx_uint_t                      provider;

#if (NGX_HTTP_SSL)
    ngx_uint_t                      ssl;          /* https:// */
    ngx_http_complex_value_t       *ssl_name;     /* "ai_proxy_ssl_name" */
    ngx_uint_t                      ssl_verify_depth;
    ngx_str_t                       ssl_trusted_certificate;
#endif
} ngx_http_ai_proxy_loc_conf_t;


/*
 * The request of one upstream exchange.  The content handler fills
 * method, uri and body (by default: the client's body to base path plus
 * the endpoint's suffix); a format translator may replace them before
 * the upstream starts.  The rest is the protocol's state.
 */

typedef struct {
    ngx_http_ai_ctx_t              *ai;

    ngx_str_t                       method;
    ngx_str_t                       uri;
    ngx_str_t                       body;         /* no body if empty */
    ngx_str_t                       accept;

    ngx_http_status_t               status;
    ngx_http_chunked_t              chunked;

    ngx_uint_t                      attempts;     /* ai->attempts before */
    ngx_uint_t                      states;       /* upstream states before */

    unsigned                        head:1;
} ngx_http_ai_proxy_ctx_t;


ngx_int_t ngx_http_ai_proxy_upstream(ngx_http_request_t *r,
    ngx_http_ai_proxy_ctx_t *ctx);


extern ngx_module_t  ngx_http_ai_proxy_module;


#endif /* _NGX_HTTP_AI_PROXY_H_INCLUDED_ */
