
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


/* what NGINX's own error pages mean, for those it sends on an AI route */

typedef struct {
    ngx_uint_t   status;
    ngx_str_t    reason;
} ngx_http_ai_error_reason_t;


static ngx_http_ai_error_reason_t  ngx_http_ai_error_reasons[] = {
    { 401, ngx_string("unauthorized") },
    { 403, ngx_string("forbidden") },
    { 406, ngx_string("not acceptable") },
    { 409, ngx_string("conflict") },
    { 410, ngx_string("gone") },
    { 411, ngx_string("length required: send a Content-Length or a "
                      "chunked body") },
    { 412, ngx_string("precondition failed") },
    { 414, ngx_string("request URI too long") },
    { 415, ngx_string("unsupported media type") },
    { 416, ngx_string("range not satisfiable") },
    { 421, ngx_string("misdirected request") },
    { 429, ngx_string("too many requests") },
    { 500, ngx_string("internal server error") },
    { 501, ngx_string("not implemented (an unsupported method or "
                      "Transfer-Encoding)") },
    { 505, ngx_string("HTTP version not supported") },
    { 507, ngx_string("insufficient storage") },
    { 0, ngx_null_string }
};


/*
 * $limit_req_status and $limit_conn_status (NGINX 1.17.6+) are kept in
 * the request; their values are private to those modules, and stable
 */
#define NGX_HTTP_AI_LIMIT_REQ_REJECTED   3
#define NGX_HTTP_AI_LIMIT_CONN_REJECTED  2


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


static ngx_int_t ngx_http_ai_error_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_ai_error_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static void ngx_http_ai_error_reason(ngx_uint_t status, ngx_str_t *msg);
static ngx_uint_t ngx_http_ai_error_refusal(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *msg, const char **type, const char **code);
static ngx_buf_t *ngx_http_ai_error_from_page(ngx_http_request_t *r,
    ngx_buf_t *page);
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
                  "ai: %ui: %V", status, ngx_http_ai_safe_str(r->pool, &msg));

    if (r->header_sent) {
        /* too late for a status: the caller ends the response */
        return NGX_ERROR;
    }

    ctx = ngx_http_ai_get_ctx(r);
    if (ctx) {
        ctx->error = 1;
    }

    if (status == NGX_HTTP_REQUEST_ENTITY_TOO_LARGE
        || (r->request_body
            && (r->reading_body || r->request_body->rest)))
    {
        /*
         * the body was not read whole: what is left of it must not be
         * taken for the next request on this connection, as NGINX's own
         * special responses do
         */
        r->keepalive = 0;

    } else if (ngx_http_discard_request_body(r) != NGX_OK) {
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

    /* what the record says of the failure */
    ngx_http_ai_core_gateway_error(r, code ? code : type, msg);

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
ngx_http_ai_error_reason(ngx_uint_t status, ngx_str_t *msg)
{
    ngx_http_ai_error_reason_t  *er;

    static u_char  buf[sizeof("request failed (999)")];

    for (er = ngx_http_ai_error_reasons; er->status; er++) {
        if (er->status == status) {
            *msg = er->reason;
            return;
        }
    }

    msg->data = buf;
    msg->len = ngx_snprintf(buf, sizeof(buf), "request failed (%03ui)",
                            status % 1000)
               - buf;
}


/*
 * "<html>\r\n<head><title>400 Request Header Or Cookie Too Large</title>"
 * gives "request header or cookie too large"; "bad request" otherwise.
 */

static ngx_buf_t *
ngx_http_ai_error_from_page(ngx_http_request_t *r, ngx_buf_t *page)
{
    u_char     *p, *last, *start, *end;
    ngx_str_t   msg;

    ngx_str_set(&msg, "bad request");

    if (ngx_buf_in_memory(page) && page->last > page->pos) {
        p = page->pos;
        last = page->last;

        start = ngx_strlcasestrn(p, last, (u_char *) "<title>",
                                 sizeof("<title>") - 1 - 1);

        if (start) {
            start += sizeof("<title>") - 1;

            while (start < last && (*start == ' ' || (*start >= '0'
                                                     && *start <= '9')))
            {
                start++;
            }

            end = ngx_strlcasestrn(start, last, (u_char *) "</title>",
                                   sizeof("</title>") - 1 - 1);

            if (end && end > start && end - start < 128) {
                msg.len = end - start;
                msg.data = ngx_pnalloc(r->pool, msg.len);
                if (msg.data == NULL) {
                    return NULL;
                }

                ngx_strlow(msg.data, start, msg.len);
            }
        }
    }

    return ngx_http_ai_error_body(r, NGX_HTTP_BAD_REQUEST, NULL, NULL, NULL,
                                  &msg);
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
    return 2 + ngx_http_ai_escape_json(NULL, s->data, s->len);
}


static u_char *
ngx_http_ai_json_string(u_char *p, ngx_str_t *s)
{
    *p++ = '"';
    p = (u_char *) ngx_http_ai_escape_json(p, s->data, s->len);
    *p++ = '"';

    return p;
}


/*
 * JSON string content: quotes, backslashes and control bytes escaped,
 * invalid or cut UTF-8 replaced with U+FFFD, so the output is valid
 * JSON whatever the input.  With dst NULL, returns the output's length.
 */

uintptr_t
ngx_http_ai_escape_json(u_char *dst, u_char *src, size_t size)
{
    u_char    *end, *next, c;
    size_t     len;
    uint32_t   u;

    static u_char  hex[] = "0123456789abcdef";

    end = src + size;
    len = 0;

    while (src < end) {
        c = *src;

        if (c < 0x80) {
            src++;

            if (c == '"' || c == '\\' || c == '\n' || c == '\r'
                || c == '\t')
            {
                len += 2;

                if (dst) {
                    *dst++ = '\\';
                    *dst++ = (c == '\n') ? 'n' : (c == '\r') ? 'r'
                                                 : (c == '\t') ? 't' : c;
                }

            } else if (c < 0x20 || c == 0x7f) {
                len += 6;

                if (dst) {
                    dst = ngx_cpymem(dst, "\\u00", 4);
                    *dst++ = hex[c >> 4];
                    *dst++ = hex[c & 0xf];
                }

            } else {
                len++;

                if (dst) {
                    *dst++ = c;
                }
            }

            continue;
        }

        next = src;
        u = ngx_utf8_decode(&next, end - src);

        if (u > 0x10ffff || (u >= 0xd800 && u <= 0xdfff)) {
            /* invalid, or a sequence cut at the end */
            len += 6;

            if (dst) {
                dst = ngx_cpymem(dst, "\\ufffd", 6);
            }

            src++;
            continue;
        }

        len += next - src;

        if (dst) {
            dst = ngx_cpymem(dst, src, next - src);
        }

        src = next;
    }

    return dst ? (uintptr_t) dst : (uintptr_t) len;
}


/*
 * A client's string for error.log: control bytes and backslashes become
 * \xNN, so that no client can write a line of its own (CR, LF) or forge
 * an escape.  Returns s itself when it needs nothing.
 */

ngx_str_t *
ngx_http_ai_safe_str(ngx_pool_t *pool, ngx_str_t *s)
{
    u_char     *p, *q, *end, c;
    size_t      n;
    ngx_str_t  *safe;

    static ngx_str_t  failed = ngx_string("(unprintable)");
    static u_char     hex[] = "0123456789abcdef";

    n = 0;
    end = s->data + s->len;

    for (p = s->data; p < end; p++) {
        if (*p < 0x20 || *p == 0x7f || *p == '\\') {
            n++;
        }
    }

    if (n == 0) {
        return s;
    }

    safe = ngx_palloc(pool, sizeof(ngx_str_t));
    if (safe == NULL) {
        return &failed;
    }

    safe->data = ngx_pnalloc(pool, s->len + 3 * n);
    if (safe->data == NULL) {
        return &failed;
    }

    q = safe->data;

    for (p = s->data; p < end; p++) {
        c = *p;

        if (c < 0x20 || c == 0x7f || c == '\\') {
            *q++ = '\\';
            *q++ = 'x';
            *q++ = hex[c >> 4];
            *q++ = hex[c & 0xf];
            continue;
        }

        *q++ = c;
    }

    safe->len = q - safe->data;

    return safe;
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
    const char                   *type, *code;
    ngx_http_ai_ctx_t            *ctx;
    ngx_http_ai_core_ctx_t       *cc;
    ngx_http_ai_core_loc_conf_t  *alcf;

    if (r != r->main || r->err_status == 0) {
        return ngx_http_next_header_filter(r);
    }

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_core_module);

    if (!alcf->enable) {
        return ngx_http_next_header_filter(r);
    }

    ctx = ngx_http_ai_create_ctx(r);
    cc = ngx_http_ai_core_ctx(ctx);
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
    type = NULL;
    code = NULL;

    if (ngx_http_ai_error_refusal(r, status, &msg, &type, &code)) {
        goto body;
    }

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

    case NGX_HTTP_BAD_REQUEST:
        /*
         * NGINX answers many problems with 400 (a header too large, an
         * invalid header or request line, a bad Content-Length...): its
         * page's title names which, so the body is made from the page
         */
        if (ctx->error_message.len == 0 && !r->header_only) {
            cc->error_page = 1;
            ctx->error = 1;
            cc->error_from_page = 1;

            ngx_http_clear_content_length(r);

            goto json;
        }

        ngx_str_set(&msg, "bad request");
        break;

    default:
        if (status < NGX_HTTP_BAD_REQUEST) {
            /* a redirect or 304: not an error */
            return ngx_http_next_header_filter(r);
        }

        ngx_http_ai_error_reason(status, &msg);
    }

    if (ctx->error_message.len) {
        msg = ctx->error_message;
    }

body:

    b = ngx_http_ai_error_body(r, status, type, NULL, code, &msg);
    if (b == NULL) {
        return NGX_ERROR;
    }

    cc->error_body = b;
    cc->error_page = 1;
    ctx->error = 1;

    r->headers_out.content_length_n = b->last - b->pos;

    if (r->headers_out.content_length) {
        r->headers_out.content_length->hash = 0;
        r->headers_out.content_length = NULL;
    }

json:

    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.charset.len = 0;

    return ngx_http_next_header_filter(r);
}


/*
 * What refused the request, when NGINX knows: limit_req and limit_conn
 * note their refusal in the request (whatever status they were given),
 * and a 403 of the ACCESS phase comes from its rules (allow/deny,
 * auth_request).  limit_req does not expose when the next request would
 * pass, so no Retry-After is set here ("add_header Retry-After N always"
 * does it).
 */

static ngx_uint_t
ngx_http_ai_error_refusal(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *msg, const char **type, const char **code)
{
    ngx_http_core_main_conf_t  *cmcf;

    if (status < NGX_HTTP_BAD_REQUEST) {
        return 0;
    }

    if (r->main->limit_req_status == NGX_HTTP_AI_LIMIT_REQ_REJECTED) {
        ngx_str_set(msg, "rate limited by limit_req");
        *type = "rate_limit_error";
        *code = "rate_limit_exceeded";
        return 1;
    }

    if (r->main->limit_conn_status == NGX_HTTP_AI_LIMIT_CONN_REJECTED) {
        ngx_str_set(msg, "too many connections (limit_conn)");
        *type = "rate_limit_error";
        *code = "too_many_connections";
        return 1;
    }

    if (status != NGX_HTTP_FORBIDDEN) {
        return 0;
    }

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_core_module);

    /* the request is finalized where the phase engine stopped */

    if (r->phase_handler >= 0
        && cmcf->phase_engine.handlers[r->phase_handler].checker
           == ngx_http_core_access_phase)
    {
        ngx_str_set(msg, "forbidden by access rules");
        *code = "forbidden";
        return 1;
    }

    return 0;
}


static ngx_int_t
ngx_http_ai_error_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_chain_t              out, *cl;
    ngx_http_ai_ctx_t       *ctx;
    ngx_http_ai_core_ctx_t  *cc;

    if (r != r->main) {
        return ngx_http_next_body_filter(r, in);
    }

    ctx = ngx_http_ai_get_ctx(r);
    cc = ngx_http_ai_core_ctx(ctx);

    if (ctx == NULL || !cc->error_page || in == NULL) {
        return ngx_http_next_body_filter(r, in);
    }

    /* the HTML page is dropped, the JSON body goes once */

    if (cc->error_from_page) {
        cc->error_from_page = 0;
        cc->error_body = ngx_http_ai_error_from_page(r, in->buf);

        if (cc->error_body == NULL) {
            return NGX_ERROR;
        }
    }

    for (cl = in; cl; cl = cl->next) {
        cl->buf->pos = cl->buf->last;

        if (cl->buf->in_file) {
            cl->buf->file_pos = cl->buf->file_last;
        }
    }

    if (cc->error_body == NULL) {
        return NGX_OK;
    }

    out.buf = cc->error_body;
    out.next = NULL;

    cc->error_body = NULL;

    return ngx_http_next_body_filter(r, &out);
}
