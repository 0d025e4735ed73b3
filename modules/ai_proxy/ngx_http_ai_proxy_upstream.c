
/*
 * Copyright (C) AI Gateway authors
 *
 * ai_proxy's upstream protocol: HTTP/1.1 to a provider (any of the
 * formats: the request was built and translated by the balancer), over
 * NGINX's upstream (and so its upstream{} blocks,
 * keepalive pools, TLS and timeouts).
 *
 * The request is built whole: the request line and our own headers in
 * one buffer, then the body as is (no copy).  No header of the client
 * goes upstream but User-Agent: the client's credentials (Authorization,
 * x-api-key, api-key, Cookie) never leave the gateway.
 *
 * The response is not buffered: each read from the provider is passed
 * on at once, so that a stream (SSE) flows event by event (a plain
 * answer is then held whole by the module's filters).  Bodies are
 * delimited by Content-Length, chunked transfer coding, or the close of
 * the connection; a connection is kept (u->keepalive) only when the
 * whole body was read and the provider did not ask to close it.  A
 * stream that fails midway still ends in order, so that the core can
 * close it with an SSE error event.
 */


#include "ngx_http_ai_proxy.h"


static ngx_int_t ngx_http_ai_proxy_create_request(ngx_http_request_t *r);
static ngx_int_t ngx_http_ai_proxy_reinit_request(ngx_http_request_t *r);
static ngx_int_t ngx_http_ai_proxy_process_status_line(ngx_http_request_t *r);
static ngx_int_t ngx_http_ai_proxy_process_header(ngx_http_request_t *r);
static ngx_int_t ngx_http_ai_proxy_headers_done(ngx_http_request_t *r,
    ngx_http_ai_proxy_ctx_t *ctx);
static ngx_int_t ngx_http_ai_proxy_input_filter_init(void *data);
static void ngx_http_ai_proxy_stream_buffer(ngx_http_upstream_t *u,
    ngx_http_ai_proxy_ctx_t *ctx);
static ngx_int_t ngx_http_ai_proxy_copy_filter(void *data, ssize_t bytes);
static ngx_int_t ngx_http_ai_proxy_chunked_filter(void *data, ssize_t bytes);
static void ngx_http_ai_proxy_abort_request(ngx_http_request_t *r);
static void ngx_http_ai_proxy_finalize_request(ngx_http_request_t *r,
    ngx_int_t rc);


ngx_int_t
ngx_http_ai_proxy_upstream(ngx_http_request_t *r,
    ngx_http_ai_proxy_ctx_t *ctx)
{
    ngx_http_upstream_t           *u;
    ngx_http_ai_proxy_loc_conf_t  *plcf;

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_proxy_module);

    if (ngx_http_upstream_create(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    u = r->upstream;

    /* the balancer sets the schema and TLS of each attempt's target */
    ngx_str_set(&u->schema, "http://");

    u->output.tag = (ngx_buf_tag_t) &ngx_http_ai_proxy_module;

    u->conf = &plcf->upstream;

    u->create_request = ngx_http_ai_proxy_create_request;
    u->reinit_request = ngx_http_ai_proxy_reinit_request;
    u->process_header = ngx_http_ai_proxy_process_status_line;
    u->abort_request = ngx_http_ai_proxy_abort_request;
    u->finalize_request = ngx_http_ai_proxy_finalize_request;

    u->input_filter_init = ngx_http_ai_proxy_input_filter_init;
    u->input_filter = ngx_http_ai_proxy_copy_filter;
    u->input_filter_ctx = r;

    u->buffering = 0;

    /*
     * the core read the whole body in the rewrite phase (or there is
     * none): the upstream starts at once
     */

    r->main->count++;

    ngx_http_upstream_init(r);

    return NGX_DONE;
}


/* the request is built for each attempt, by the balancer */

static ngx_int_t
ngx_http_ai_proxy_create_request(ngx_http_request_t *r)
{
    return NGX_OK;
}


ngx_int_t
ngx_http_ai_proxy_build_request(ngx_http_request_t *r,
    ngx_http_ai_proxy_ctx_t *ctx)
{
    size_t                lenua, len;
    ngx_buf_t            *b, *body;
    ngx_chain_t          *cl;
    ngx_table_elt_t      *ua;
    ngx_http_upstream_t  *u;

    u = r->upstream;

    ua = r->headers_in.user_agent;
    lenua = (ua && ua->value.len) ? ua->value.len : 0;

    len = ctx->method.len + 1 + ctx->uri.len + sizeof(" HTTP/1.1" CRLF) - 1
          + sizeof("Host: " CRLF) - 1 + ctx->host.len
          + sizeof("Accept: " CRLF) - 1 + ctx->accept.len
          + ctx->headers.len + ctx->extra.len
          + sizeof(CRLF) - 1;

    if (ctx->body.len) {
        len += sizeof("Content-Type: application/json" CRLF) - 1
               + sizeof("Content-Length: " CRLF) - 1 + NGX_SIZE_T_LEN;
    }

    if (lenua) {
        len += sizeof("User-Agent: " CRLF) - 1 + lenua;
    }

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->last = ngx_cpymem(b->last, ctx->method.data, ctx->method.len);
    *b->last++ = ' ';
    b->last = ngx_cpymem(b->last, ctx->uri.data, ctx->uri.len);
    b->last = ngx_cpymem(b->last, " HTTP/1.1" CRLF,
                         sizeof(" HTTP/1.1" CRLF) - 1);

    b->last = ngx_cpymem(b->last, "Host: ", sizeof("Host: ") - 1);
    b->last = ngx_cpymem(b->last, ctx->host.data, ctx->host.len);
    *b->last++ = CR; *b->last++ = LF;

    if (ctx->body.len) {
        b->last = ngx_cpymem(b->last, "Content-Type: application/json" CRLF,
                             sizeof("Content-Type: application/json" CRLF)
                             - 1);
        b->last = ngx_cpymem(b->last, "Content-Length: ",
                             sizeof("Content-Length: ") - 1);
        b->last = ngx_http_ai_digits(b->last, ctx->body.len);
        *b->last++ = CR; *b->last++ = LF;
    }

    b->last = ngx_cpymem(b->last, "Accept: ", sizeof("Accept: ") - 1);
    b->last = ngx_cpymem(b->last, ctx->accept.data, ctx->accept.len);
    *b->last++ = CR; *b->last++ = LF;

    /* the key and the provider's headers, each line with its CRLF */
    b->last = ngx_cpymem(b->last, ctx->headers.data, ctx->headers.len);

    /* the client's headers passed and the location's set, with CRLFs */
    if (ctx->extra.len) {
        b->last = ngx_cpymem(b->last, ctx->extra.data, ctx->extra.len);
    }

    if (lenua) {
        b->last = ngx_cpymem(b->last, "User-Agent: ",
                             sizeof("User-Agent: ") - 1);
        b->last = ngx_cpymem(b->last, ua->value.data, ua->value.len);
        *b->last++ = CR; *b->last++ = LF;
    }

    *b->last++ = CR; *b->last++ = LF;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai proxy request: \"%V %V\"", &ctx->method, &ctx->uri);

    cl = ngx_alloc_chain_link(r->pool);
    if (cl == NULL) {
        return NGX_ERROR;
    }

    cl->buf = b;
    u->request_bufs = cl;

    if (ctx->body.len) {

        /* the body as it is kept; "start" lets a retry resend it */

        body = ngx_calloc_buf(r->pool);
        if (body == NULL) {
            return NGX_ERROR;
        }

        body->start = ctx->body.data;
        body->pos = body->start;
        body->last = body->start + ctx->body.len;
        body->end = body->last;
        body->memory = 1;

        cl->next = ngx_alloc_chain_link(r->pool);
        if (cl->next == NULL) {
            return NGX_ERROR;
        }

        cl = cl->next;
        cl->buf = body;

        b = body;
    }

    b->flush = 1;
    cl->next = NULL;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_proxy_reinit_request(ngx_http_request_t *r)
{
    ngx_http_upstream_t      *u;
    ngx_http_ai_proxy_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_proxy_module);

    if (ctx == NULL) {
        return NGX_OK;
    }

    u = r->upstream;

    ctx->status.code = 0;
    ctx->status.count = 0;
    ctx->status.start = NULL;
    ctx->status.end = NULL;
    ngx_memzero(&ctx->chunked, sizeof(ngx_http_chunked_t));

    u->process_header = ngx_http_ai_proxy_process_status_line;
    u->input_filter = ngx_http_ai_proxy_copy_filter;
    r->state = 0;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_proxy_process_status_line(ngx_http_request_t *r)
{
    size_t                    len;
    ngx_int_t                 rc;
    ngx_http_upstream_t      *u;
    ngx_http_ai_proxy_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_proxy_module);

    if (ctx == NULL) {
        return NGX_ERROR;
    }

    u = r->upstream;

    rc = ngx_http_parse_status_line(r, &u->buffer, &ctx->status);

    if (rc == NGX_AGAIN) {
        return rc;
    }

    if (rc == NGX_ERROR) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "upstream sent no valid HTTP/1.x status line");
        return NGX_HTTP_UPSTREAM_INVALID_HEADER;
    }

    if (ctx->status.code < NGX_HTTP_OK) {

        /* no 1xx is expected: neither Expect nor Upgrade is sent */

        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "upstream sent unexpected status %ui",
                      ctx->status.code);
        return NGX_HTTP_UPSTREAM_INVALID_HEADER;
    }

    if (u->state && u->state->status == 0) {
        u->state->status = ctx->status.code;
    }

    u->headers_in.status_n = ctx->status.code;

    len = ctx->status.end - ctx->status.start;
    u->headers_in.status_line.len = len;

    u->headers_in.status_line.data = ngx_pnalloc(r->pool, len);
    if (u->headers_in.status_line.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(u->headers_in.status_line.data, ctx->status.start, len);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai proxy status %ui \"%V\"",
                   u->headers_in.status_n, &u->headers_in.status_line);

    if (ctx->status.http_version < NGX_HTTP_VERSION_11) {
        u->headers_in.connection_close = 1;
    }

    u->process_header = ngx_http_ai_proxy_process_header;

    return ngx_http_ai_proxy_process_header(r);
}


/*
 * Header lines go to u->headers_in.headers; the upstream's own handlers
 * (umcf->headers_in_hash) note Content-Length, Transfer-Encoding,
 * Connection, Content-Type ..., and later copy what is not hidden to the
 * client's response.
 */

static ngx_int_t
ngx_http_ai_proxy_process_header(ngx_http_request_t *r)
{
    ngx_int_t                       rc;
    ngx_table_elt_t                *h;
    ngx_http_upstream_t            *u;
    ngx_http_ai_proxy_ctx_t        *ctx;
    ngx_http_upstream_header_t     *hh;
    ngx_http_upstream_main_conf_t  *umcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_proxy_module);

    if (ctx == NULL) {
        return NGX_ERROR;
    }

    umcf = ngx_http_get_module_main_conf(r, ngx_http_upstream_module);

    u = r->upstream;

    for ( ;; ) {

        rc = ngx_http_parse_header_line(r, &u->buffer, 1);

        if (rc == NGX_OK) {

            h = ngx_list_push(&u->headers_in.headers);
            if (h == NULL) {
                return NGX_ERROR;
            }

            h->hash = r->header_hash;
#if (nginx_version >= 1023000)
            h->next = NULL;
#endif

            h->key.len = r->header_name_end - r->header_name_start;
            h->value.len = r->header_end - r->header_start;

            h->key.data = ngx_pnalloc(r->pool,
                               h->key.len + 1 + h->value.len + 1 + h->key.len);
            if (h->key.data == NULL) {
                h->hash = 0;
                return NGX_ERROR;
            }

            h->value.data = h->key.data + h->key.len + 1;
            h->lowcase_key = h->key.data + h->key.len + 1 + h->value.len + 1;

            ngx_memcpy(h->key.data, r->header_name_start, h->key.len);
            h->key.data[h->key.len] = '\0';
            ngx_memcpy(h->value.data, r->header_start, h->value.len);
            h->value.data[h->value.len] = '\0';

            if (h->key.len == r->lowcase_index) {
                ngx_memcpy(h->lowcase_key, r->lowcase_header, h->key.len);

            } else {
                ngx_strlow(h->lowcase_key, h->key.data, h->key.len);
            }

            hh = ngx_hash_find(&umcf->headers_in_hash, h->hash,
                               h->lowcase_key, h->key.len);

            if (hh) {
                rc = hh->handler(r, h, hh->offset);

                if (rc != NGX_OK) {
                    h->hash = 0;
                    return rc;
                }
            }

            ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "ai proxy header: \"%V: %V\"",
                           &h->key, &h->value);

            continue;
        }

        if (rc == NGX_HTTP_PARSE_HEADER_DONE) {

            ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "ai proxy header done");

            return ngx_http_ai_proxy_headers_done(r, ctx);
        }

        if (rc == NGX_AGAIN) {
            return NGX_AGAIN;
        }

        /* rc == NGX_HTTP_PARSE_INVALID_HEADER */

        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "upstream sent invalid header: \"%*s\\x%02xd...\"",
                      r->header_end - r->header_start,
                      r->header_start, *r->header_end);

        return NGX_HTTP_UPSTREAM_INVALID_HEADER;
    }
}


/* how the body ends: the framing is checked strictly (no smuggling) */

static ngx_int_t
ngx_http_ai_proxy_headers_done(ngx_http_request_t *r,
    ngx_http_ai_proxy_ctx_t *ctx)
{
    ngx_uint_t            i, n;
    ngx_list_part_t      *part;
    ngx_table_elt_t      *te, *h;
    ngx_http_upstream_t  *u;

    u = r->upstream;
    te = u->headers_in.transfer_encoding;

    if (u->headers_in.content_length) {

        /* two lengths: which one holds is a matter of opinion */

        n = 0;
        part = &u->headers_in.headers.part;
        h = part->elts;

        for (i = 0; /* void */; i++) {

            if (i >= part->nelts) {
                if (part->next == NULL) {
                    break;
                }

                part = part->next;
                h = part->elts;
                i = 0;
            }

            if (h[i].key.len == sizeof("content-length") - 1
                && ngx_strncmp(h[i].lowcase_key, "content-length",
                               sizeof("content-length") - 1)
                   == 0)
            {
                n++;
            }
        }

        if (n > 1) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "upstream sent duplicate header line: \"%V: %V\"",
                          &u->headers_in.content_length->key,
                          &u->headers_in.content_length->value);
            return NGX_HTTP_UPSTREAM_INVALID_HEADER;
        }
    }

    if (te) {
        if (te->value.len != sizeof("chunked") - 1
            || ngx_strncasecmp(te->value.data, (u_char *) "chunked",
                               sizeof("chunked") - 1)
               != 0)
        {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "upstream sent unknown \"Transfer-Encoding\": "
                          "\"%V\"", &te->value);
            return NGX_HTTP_UPSTREAM_INVALID_HEADER;
        }

        if (u->headers_in.content_length) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "upstream sent \"Content-Length\" and "
                          "\"Transfer-Encoding\" headers at the same time");
            return NGX_HTTP_UPSTREAM_INVALID_HEADER;
        }

        u->headers_in.chunked = 1;
        u->headers_in.content_length_n = -1;

    } else if (u->headers_in.content_length
               && u->headers_in.content_length_n < 0)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "upstream sent invalid \"Content-Length\" header: "
                      "\"%V\"", &u->headers_in.content_length->value);
        return NGX_HTTP_UPSTREAM_INVALID_HEADER;
    }

    /*
     * with no body to read the connection may be kept now: this also
     * holds for HEAD, where the upstream does not read the body at all
     */

    if (u->headers_in.status_n == NGX_HTTP_NO_CONTENT
        || u->headers_in.status_n == NGX_HTTP_NOT_MODIFIED
        || ctx->head
        || (!u->headers_in.chunked && u->headers_in.content_length_n == 0))
    {
        u->keepalive = !u->headers_in.connection_close;
    }

    /* the status may send the request elsewhere, or set up translation */

    return ngx_http_ai_proxy_status(r, ctx);
}


static ngx_int_t
ngx_http_ai_proxy_input_filter_init(void *data)
{
    ngx_http_request_t  *r = data;

    ngx_http_upstream_t      *u;
    ngx_http_ai_proxy_ctx_t  *ctx;

    u = r->upstream;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_proxy_module);

    if (ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai proxy filter init s:%ui h:%d c:%d l:%O",
                   u->headers_in.status_n, ctx->head,
                   u->headers_in.chunked, u->headers_in.content_length_n);

    if (u->headers_in.status_n == NGX_HTTP_NO_CONTENT
        || u->headers_in.status_n == NGX_HTTP_NOT_MODIFIED
        || ctx->head)
    {
        /* no body */

        u->length = 0;
        u->keepalive = !u->headers_in.connection_close;

    } else if (u->headers_in.chunked) {

        /*
         * 1 until the last chunk is seen; for a stream the core watches,
         * -1: if the provider cuts it, the response still ends in order
         * and the core closes it with an SSE error event (and a warning)
         */

        u->input_filter = ngx_http_ai_proxy_chunked_filter;
        u->length = ctx->ai->is_sse ? -1 : 1;

        ngx_http_ai_proxy_stream_buffer(u, ctx);

    } else if (u->headers_in.content_length_n == 0) {

        /* an empty body: the filter is not called */

        u->length = 0;
        u->keepalive = !u->headers_in.connection_close;

    } else {

        /* Content-Length, or -1: the body ends with the connection */

        u->input_filter = ngx_http_ai_proxy_copy_filter;
        u->length = u->headers_in.content_length_n;

        ngx_http_ai_proxy_stream_buffer(u, ctx);
    }

    return NGX_OK;
}


/*
 * A stream whose header came in a page, with what followed it, reads a
 * page at a time from then on, as NGINX's proxy_buffer_size does: the
 * rest of the buffer, there for large headers and for a stream that came
 * whole with its header, is never touched.  Without it, a stream that the
 * provider writes faster than the worker reads fills the whole buffer at
 * each read, and its pages stay with the stream (bench/run's streams of
 * 3003 events).  The reads of a stream spaced as a model writes are
 * smaller than a page anyway.  NGINX tries no next upstream once the
 * header is taken, so no later header read finds the buffer cut.
 */

static void
ngx_http_ai_proxy_stream_buffer(ngx_http_upstream_t *u,
    ngx_http_ai_proxy_ctx_t *ctx)
{
    ngx_buf_t  *b;

    b = &u->buffer;

    if (ctx->ai->is_sse
        && b->start
        && b->end - b->start > (ssize_t) ngx_pagesize
        && b->last - b->start <= (ssize_t) ngx_pagesize)
    {
        b->end = b->start + ngx_pagesize;
    }
}


static ngx_int_t
ngx_http_ai_proxy_copy_filter(void *data, ssize_t bytes)
{
    ngx_http_request_t  *r = data;

    ngx_buf_t            *b;
    ngx_chain_t          *cl, **ll;
    ngx_http_upstream_t  *u;

    u = r->upstream;

    if (u->length == 0) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "upstream sent more data than specified in "
                      "\"Content-Length\" header");
        u->keepalive = 0;
        return NGX_OK;
    }

    for (cl = u->out_bufs, ll = &u->out_bufs; cl; cl = cl->next) {
        ll = &cl->next;
    }

    cl = ngx_chain_get_free_buf(r->pool, &u->free_bufs);
    if (cl == NULL) {
        return NGX_ERROR;
    }

    *ll = cl;

    cl->buf->flush = 1;
    cl->buf->memory = 1;

    b = &u->buffer;

    cl->buf->pos = b->last;
    b->last += bytes;
    cl->buf->last = b->last;
    cl->buf->tag = u->output.tag;

    if (u->length == -1) {
        return NGX_OK;
    }

    if (bytes > u->length) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "upstream sent more data than specified in "
                      "\"Content-Length\" header");

        cl->buf->last = cl->buf->pos + u->length;
        u->length = 0;
        u->keepalive = 0;

        return NGX_OK;
    }

    u->length -= bytes;

    if (u->length == 0) {
        u->keepalive = !u->headers_in.connection_close;
    }

    return NGX_OK;
}


/*
 * The chunks' data of a read goes out as one buffer pointing into
 * u->buffer, flushed to the client at once: each chunk's data is moved
 * down over the chunk framing before it (the bytes the parser has passed),
 * so that a stream's events, a chunk each, are one buffer, not one each
 * (less of the request's pool while they wait to be sent, fewer buffers
 * for the core to read and fewer iovecs to write).
 */

static ngx_int_t
ngx_http_ai_proxy_chunked_filter(void *data, ssize_t bytes)
{
    ngx_http_request_t  *r = data;

    size_t                    n;
    ngx_int_t                 rc;
    ngx_buf_t                *b, *buf;
    ngx_chain_t              *cl, **ll;
    ngx_http_upstream_t      *u;
    ngx_http_ai_proxy_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_proxy_module);

    if (ctx == NULL) {
        return NGX_ERROR;
    }

    u = r->upstream;
    buf = &u->buffer;

    buf->pos = buf->last;
    buf->last += bytes;

    if (u->length == 0) {
        if (!ctx->chunked_broken) {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "upstream sent data after final chunk");
        }

        u->keepalive = 0;
        buf->pos = buf->last;
        return NGX_OK;
    }

    for (cl = u->out_bufs, ll = &u->out_bufs; cl; cl = cl->next) {
        ll = &cl->next;
    }

    b = NULL;

    for ( ;; ) {

#if (nginx_version >= 1027002)
        rc = ngx_http_parse_chunked(r, buf, &ctx->chunked, 0);
#else
        rc = ngx_http_parse_chunked(r, buf, &ctx->chunked);
#endif

        if (rc == NGX_OK) {

            /* a chunk has been parsed successfully: its data of this read */

            if (buf->last - buf->pos >= ctx->chunked.size) {
                n = (size_t) ctx->chunked.size;
                ctx->chunked.size = 0;

            } else {
                n = buf->last - buf->pos;
                ctx->chunked.size -= n;
            }

            if (b == NULL) {
                cl = ngx_chain_get_free_buf(r->pool, &u->free_bufs);
                if (cl == NULL) {
                    return NGX_ERROR;
                }

                *ll = cl;
                ll = &cl->next;

                b = cl->buf;

                b->flush = 1;
                b->memory = 1;

                b->pos = buf->pos;
                b->last = buf->pos;
                b->tag = u->output.tag;

            } else if (b->last != buf->pos) {
                /* after the data before it, over the framing between */
                ngx_memmove(b->last, buf->pos, n);
            }

            b->last += n;
            buf->pos += n;

            continue;
        }

        if (rc == NGX_DONE) {

            /* the last chunk and the trailer have been parsed */

            u->keepalive = !u->headers_in.connection_close;
            u->length = 0;

            if (buf->pos != buf->last) {
                ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                              "upstream sent data after final chunk");
                u->keepalive = 0;
            }

            break;
        }

        if (rc == NGX_AGAIN) {
            break;
        }

        /* invalid response */

        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "upstream sent invalid chunked response");

        if (!ctx->ai->is_sse) {
            return NGX_ERROR;
        }

        /*
         * a stream: the data of this read before the broken framing goes
         * on (NGINX would drop it with the request), then the response
         * ends in order, where the core closes it with its SSE error
         * event, as a stream the provider cut; the rest is not read
         */

        ctx->chunked_broken = 1;

        u->keepalive = 0;
        u->length = 0;
        buf->pos = buf->last;

        break;
    }

    return NGX_OK;
}


static void
ngx_http_ai_proxy_abort_request(ngx_http_request_t *r)
{
    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "abort ai proxy request");
}


static void
ngx_http_ai_proxy_finalize_request(ngx_http_request_t *r, ngx_int_t rc)
{
    ngx_http_upstream_t      *u;
    ngx_http_ai_proxy_ctx_t  *ctx;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "finalize ai proxy request: %i", rc);

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_proxy_module);

    if (ctx == NULL) {
        return;
    }

    ngx_http_ai_proxy_done(r, ctx);

    u = r->upstream;

    /*
     * A plain answer held whole (see the header filter) failed before its
     * end: the client got nothing yet, so it gets an error page, the
     * gateway's JSON error, rather than a cut answer.
     */

    if (ctx->hold
        && !ctx->answered
        && !ctx->passed
        && u->header_sent
        && !r->header_sent
        && (rc == NGX_HTTP_BAD_GATEWAY || rc == NGX_HTTP_GATEWAY_TIME_OUT))
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ai_proxy: the answer of target \"%V\" ended after "
                      "%uz bytes, the client gets %i", &ctx->target->name,
                      ctx->held_len, rc);

        ctx->hold = 0;
        u->header_sent = 0;

        ctx->ai->error_status = rc;

        if (rc == NGX_HTTP_GATEWAY_TIME_OUT) {
            ngx_str_set(&ctx->ai->error_message,
                        "the upstream provider timed out");

        } else {
            ngx_str_set(&ctx->ai->error_message,
                        "the upstream provider's answer was cut short");
        }

        return;
    }

    /*
     * A stream failed after its header went out (the provider timed out,
     * sent a broken chunk ...): the upstream will only flush and close.
     * The end of the response is sent first, so that the core adds its
     * SSE error event and the client gets an error, not a cut stream.
     * Not with a Content-Length: nothing may follow the bytes announced.
     */

    if (u->header_sent
        && (rc == NGX_ERROR || rc >= NGX_HTTP_SPECIAL_RESPONSE)
        && rc != NGX_HTTP_REQUEST_TIME_OUT
        && rc != NGX_HTTP_CLIENT_CLOSED_REQUEST
        && !r->connection->error
        && ctx->ai->is_sse
        && !ctx->ai->resp_last
        && u->headers_in.content_length_n == -1)
    {
        (void) ngx_http_send_special(r, NGX_HTTP_LAST);
    }
}
