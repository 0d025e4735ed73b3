
/*
 * Copyright (C) AI Gateway authors
 *
 * The gateway's own errors, in the shape the SDKs read:
 *   {"error":{"message":"...","type":"...","param":...,"code":...}}
 * On the Anthropic door the object also has "type":"error" at the top,
 * as Anthropic's errors have; both SDKs then read error.message.
 */


#include "ngx_http_ai_core_module.h"


typedef struct {
    ngx_uint_t   status;
    const char  *type;
    const char  *code;
} ngx_http_ai_error_type_t;


static ngx_http_ai_error_type_t  ngx_http_ai_error_types[] = {
    { NGX_HTTP_BAD_REQUEST, "invalid_request_error", NULL },
    { NGX_HTTP_UNAUTHORIZED, "authentication_error", "invalid_api_key" },
    { NGX_HTTP_FORBIDDEN, "permission_error", NULL },
    { NGX_HTTP_NOT_FOUND, "invalid_request_error", "unknown_url" },
    { NGX_HTTP_NOT_ALLOWED, "invalid_request_error", "method_not_allowed" },
    { NGX_HTTP_REQUEST_TIME_OUT, "timeout_error", "request_timeout" },
    { NGX_HTTP_REQUEST_ENTITY_TOO_LARGE, "invalid_request_error",
      "request_too_large" },
    { NGX_HTTP_REQUEST_URI_TOO_LARGE, "invalid_request_error", NULL },
    { NGX_HTTP_UNSUPPORTED_MEDIA_TYPE, "invalid_request_error", NULL },
    { 429, "rate_limit_error", "rate_limit_exceeded" },
    { NGX_HTTP_BAD_GATEWAY, "api_error", "upstream_error" },
    { NGX_HTTP_SERVICE_UNAVAILABLE, "api_error", "service_unavailable" },
    { NGX_HTTP_GATEWAY_TIME_OUT, "timeout_error", "upstream_timeout" },
    { 0, NULL, NULL }
};


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


static ngx_int_t ngx_http_ai_error_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_ai_error_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static void ngx_http_ai_error_default(ngx_uint_t status, const char **type,
    const char **code);
static u_char *ngx_http_ai_json_string(u_char *p, ngx_str_t *s);
static size_t ngx_http_ai_json_string_len(ngx_str_t *s);


ngx_int_t
ngx_http_ai_error(ngx_http_request_t *r, ngx_uint_t status, const char *type,
    const char *param, const char *code, const char *fmt, ...)
{
    u_char             *p, buf[NGX_MAX_ERROR_STR];
    va_list             args;
    ngx_str_t           msg;
    ngx_buf_t          *b;
    ngx_int_t           rc;
    ngx_chain_t         out;
    ngx_http_ai_ctx_t  *ctx;

    va_start(args, fmt);
    p = ngx_vslprintf(buf, buf + sizeof(buf), fmt, args);
    va_end(args);

    msg.data = buf;
    msg.len = p - buf;

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "ai: %ui: %V", status, &msg);

    if (r->header_sent) {
        /* too late for a status: the caller ends the response */
        return NGX_ERROR;
    }

    ctx = ngx_http_ai_get_ctx(r);
    if (ctx) {
        ctx->error = 1;
    }

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        r->keepalive = 0;
    }

    b = ngx_http_ai_error_body(r, status, type, param, code, &msg);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = status;
    r->headers_out.content_length_n = b->last - b->pos;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    ngx_http_clear_accept_ranges(r);
    ngx_http_clear_last_modified(r);
    ngx_http_clear_etag(r);

    if (r->method == NGX_HTTP_HEAD) {
        r->header_only = 1;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


ngx_buf_t *
ngx_http_ai_error_body(ngx_http_request_t *r, ngx_uint_t status,
    const char *type, const char *param, const char *code, ngx_str_t *msg)
{
    size_t              len;
    ngx_str_t           t, pa, c;
    ngx_buf_t          *b;
    ngx_uint_t          anthropic;
    const char         *dtype, *dcode;
    ngx_http_ai_ctx_t  *ctx;

    ngx_http_ai_error_default(status, &dtype, &dcode);

    if (type == NULL) {
        type = dtype;
    }

    if (code == NULL) {
        code = dcode;
    }

    ctx = ngx_http_ai_get_ctx(r);
    anthropic = (ctx && ctx->req.format == NGX_HTTP_AI_FMT_ANTHROPIC);

    t.data = (u_char *) type;
    t.len = ngx_strlen(type);

    len = sizeof("{\"type\":\"error\",\"error\":{\"message\":,\"type\":,"
                 "\"param\":,\"code\":}}\n") - 1
          + ngx_http_ai_json_string_len(msg)
          + ngx_http_ai_json_string_len(&t) + 2 * sizeof("null");

    if (param) {
        pa.data = (u_char *) param;
        pa.len = ngx_strlen(param);
        len += ngx_http_ai_json_string_len(&pa);
    }

    if (code) {
        c.data = (u_char *) code;
        c.len = ngx_strlen(code);
        len += ngx_http_ai_json_string_len(&c);
    }

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NULL;
    }

    if (anthropic) {
        b->last = ngx_cpymem(b->last, "{\"type\":\"error\",\"error\":{",
                             sizeof("{\"type\":\"error\",\"error\":{") - 1);

    } else {
        b->last = ngx_cpymem(b->last, "{\"error\":{",
                             sizeof("{\"error\":{") - 1);
    }

    b->last = ngx_cpymem(b->last, "\"message\":", sizeof("\"message\":") - 1);
    b->last = ngx_http_ai_json_string(b->last, msg);
    b->last = ngx_cpymem(b->last, ",\"type\":", sizeof(",\"type\":") - 1);
    b->last = ngx_http_ai_json_string(b->last, &t);
    b->last = ngx_cpymem(b->last, ",\"param\":", sizeof(",\"param\":") - 1);
    b->last = param ? ngx_http_ai_json_string(b->last, &pa)
                    : ngx_cpymem(b->last, "null", 4);
    b->last = ngx_cpymem(b->last, ",\"code\":", sizeof(",\"code\":") - 1);
    b->last = code ? ngx_http_ai_json_string(b->last, &c)
                   : ngx_cpymem(b->last, "null", 4);
    b->last = ngx_cpymem(b->last, "}}\n", 3);

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    return b;
}


static void
ngx_http_ai_error_default(ngx_uint_t status, const char **type,
    const char **code)
{
    ngx_http_ai_error_type_t  *et;

    for (et = ngx_http_ai_error_types; et->status; et++) {
        if (et->status == status) {
            *type = et->type;
            *code = et->code;
            return;
        }
    }

    *type = (status >= 500) ? "api_error" : "invalid_request_error";
    *code = NULL;
}


static size_t
ngx_http_ai_json_string_len(ngx_str_t *s)
{
    return 2 + s->len + ngx_escape_json(NULL, s->data, s->len);
}


static u_char *
ngx_http_ai_json_string(u_char *p, ngx_str_t *s)
{
    *p++ = '"';
    p = (u_char *) ngx_escape_json(p, s->data, s->len);
    *p++ = '"';

    return p;
}


/*
 * NGINX's own error pages (413 before the body is read, 502/504 from an
 * upstream, 500 ...) are HTML; on an AI route they become the JSON error.
 */

ngx_int_t
ngx_http_ai_error_filter_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_ai_error_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_ai_error_body_filter;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_error_header_filter(ngx_http_request_t *r)
{
    ngx_buf_t                    *b;
    ngx_str_t                     msg;
    ngx_uint_t                    status;
    ngx_http_ai_ctx_t            *ctx;
    ngx_http_ai_core_loc_conf_t  *alcf;

    if (r != r->main || r->err_status == 0) {
        return ngx_http_next_header_filter(r);
    }

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_core_module);

    if (!alcf->enable) {
        return ngx_http_next_header_filter(r);
    }

    ctx = ngx_http_ai_create_ctx(r);
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    if (ctx->error) {
        return ngx_http_next_header_filter(r);
    }

    if (ctx->error_status) {
        /* a module knows better what went wrong */
        r->headers_out.status = ctx->error_status;
        r->headers_out.status_line.len = 0;
        r->err_status = ctx->error_status;
    }

    status = r->headers_out.status;

    switch (status) {

    case NGX_HTTP_REQUEST_ENTITY_TOO_LARGE:
        ngx_str_set(&msg, "request body is too large");
        break;

    case NGX_HTTP_BAD_GATEWAY:
        ngx_str_set(&msg, "the upstream provider could not be reached or "
                          "sent an invalid response");
        break;

    case NGX_HTTP_GATEWAY_TIME_OUT:
        ngx_str_set(&msg, "the upstream provider timed out");
        break;

    case NGX_HTTP_SERVICE_UNAVAILABLE:
        ngx_str_set(&msg, "the service is temporarily unavailable");
        break;

    case NGX_HTTP_NOT_FOUND:
        ngx_str_set(&msg, "unknown endpoint");
        break;

    case NGX_HTTP_NOT_ALLOWED:
        ngx_str_set(&msg, "method not allowed");
        break;

    case NGX_HTTP_REQUEST_TIME_OUT:
        ngx_str_set(&msg, "the request body was not received in time");
        break;

    default:
        if (status < NGX_HTTP_BAD_REQUEST) {
            /* a redirect or 304: not an error */
            return ngx_http_next_header_filter(r);
        }

        msg.data = ngx_pnalloc(r->pool, NGX_INT_T_LEN + 16);
        if (msg.data == NULL) {
            return NGX_ERROR;
        }

        msg.len = ngx_sprintf(msg.data, "request failed (%ui)", status)
                  - msg.data;
    }

    if (ctx->error_message.len) {
        msg = ctx->error_message;
    }

    b = ngx_http_ai_error_body(r, status, NULL, NULL, NULL, &msg);
    if (b == NULL) {
        return NGX_ERROR;
    }

    ctx->error_body = b;
    ctx->error_page = 1;
    ctx->error = 1;

    r->headers_out.content_length_n = b->last - b->pos;

    if (r->headers_out.content_length) {
        r->headers_out.content_length->hash = 0;
        r->headers_out.content_length = NULL;
    }

    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.charset.len = 0;

    return ngx_http_next_header_filter(r);
}


static ngx_int_t
ngx_http_ai_error_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_chain_t         out, *cl;
    ngx_http_ai_ctx_t  *ctx;

    if (r != r->main) {
        return ngx_http_next_body_filter(r, in);
    }

    ctx = ngx_http_ai_get_ctx(r);

    if (ctx == NULL || !ctx->error_page || in == NULL) {
        return ngx_http_next_body_filter(r, in);
    }

    /* the HTML page is dropped, the JSON body goes once */

    for (cl = in; cl; cl = cl->next) {
        cl->buf->pos = cl->buf->last;

        if (cl->buf->in_file) {
            cl->buf->file_pos = cl->buf->file_last;
        }
    }

    if (ctx->error_body == NULL) {
        return NGX_OK;
    }

    out.buf = ctx->error_body;
    out.next = NULL;

    ctx->error_body = NULL;

    return ngx_http_next_body_filter(r, &out);
}
