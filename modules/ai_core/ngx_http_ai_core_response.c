
/*
 * Copyright (C) AI Gateway authors
 *
 * The response side: a header and a body filter that watch what the
 * upstream sends on an AI route, without buffering a stream.  TTFT is
 * taken at the first body byte; SSE goes through the incremental parser
 * event by event; a plain JSON body is kept (up to a cap) only when it
 * spans buffers.  Usage is taken from each event; then the modules'
 * event handlers run.  The upstream's bytes pass through untouched unless
 * a module asked to rewrite the response (ctx->rewrite).
 *
 * In rewrite mode the handlers' output replaces the upstream's bytes, in
 * buffers of the request's own free list.  As in NGINX's sub filter, an
 * output buffer shadows the last upstream buffer that went into it, which
 * is released (marked consumed) only when that output was sent: while a
 * slow client has not taken it, NGINX cannot reuse the upstream's buffer
 * and stops reading from the upstream once it is full, so a stream's
 * memory is bounded by what is in flight, not by its length.
 *
 * An OpenAI stream whose client did not ask for usage (ctx->drop_usage)
 * is passed by reference: buffers pointing into the upstream's, the
 * usage-only chunk cut out between them, an unfinished event held (by
 * reference too) until it ends and is known; the same shadows keep the
 * upstream's buffers until what points into them was sent.
 */


#include "ngx_http_ai_core_module.h"
#include "ngx_http_ai_core_json.h"


typedef struct {
    ngx_http_request_t         *request;
    ngx_http_ai_ctx_t          *ctx;
    ngx_chain_t              ***out;
    ngx_buf_t                  *buf;          /* the input being parsed */
    ngx_uint_t                  trim;         /* cutting events out */
} ngx_http_ai_dispatch_t;


static ngx_int_t ngx_http_ai_core_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_ai_core_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_int_t ngx_http_ai_core_sse_event(void *data, ngx_str_t *name,
    ngx_str_t *payload);
static ngx_int_t ngx_http_ai_core_plain(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, ngx_buf_t *b, ngx_chain_t ***out);
static ngx_int_t ngx_http_ai_core_plain_done(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, ngx_chain_t ***out);
static ngx_uint_t ngx_http_ai_core_usage(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, ngx_str_t *data);
static ngx_int_t ngx_http_ai_core_dispatch(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, ngx_http_ai_event_t *ev, ngx_chain_t ***out);
static ngx_chain_t *ngx_http_ai_core_truncated(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, ngx_chain_t *in, ngx_chain_t *last);
static ngx_msec_t ngx_http_ai_core_elapsed(ngx_http_ai_ctx_t *ctx);
static ngx_chain_t *ngx_http_ai_core_out_buf(ngx_http_request_t *r,
    ngx_http_ai_core_ctx_t *cc, size_t size);
static ngx_int_t ngx_http_ai_core_marker(ngx_http_request_t *r,
    ngx_http_ai_core_ctx_t *cc, ngx_buf_t *b, ngx_chain_t ***ll);
static void ngx_http_ai_core_release(ngx_http_request_t *r,
    ngx_http_ai_core_ctx_t *cc);
static ngx_chain_t *ngx_http_ai_core_link(ngx_http_request_t *r,
    ngx_http_ai_core_ctx_t *cc, ngx_buf_t *b);
static ngx_int_t ngx_http_ai_core_trim_event(ngx_http_ai_dispatch_t *d,
    ngx_uint_t drop);
static ngx_int_t ngx_http_ai_core_trim_rest(ngx_http_request_t *r,
    ngx_http_ai_core_ctx_t *cc, ngx_buf_t *b, ngx_chain_t ***out);
static void ngx_http_ai_core_trim_flush(ngx_http_ai_core_ctx_t *cc,
    ngx_chain_t ***out);
static ngx_chain_t *ngx_http_ai_core_ref(ngx_http_request_t *r,
    ngx_http_ai_core_ctx_t *cc, u_char *pos, u_char *last);
static ngx_chain_t *ngx_http_ai_core_error_event(ngx_http_request_t *r);


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


ngx_int_t
ngx_http_ai_core_filter_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_ai_core_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_ai_core_body_filter;

    /* the error filter runs first: a replaced page is not watched */

    return ngx_http_ai_error_filter_init(cf);
}


cJSON *
ngx_http_ai_event_json(ngx_http_ai_event_t *ev)
{
    if (!ev->parsed) {
        ev->parsed = 1;

        if (ev->data.len && !(ev->data.len == 6
                              && ngx_memcmp(ev->data.data, "[DONE]", 6)
                                 == 0))
        {
            ev->json = cJSON_ParseWithLength((const char *) ev->data.data,
                                             ev->data.len);
        }
    }

    return ev->json;
}


static ngx_int_t
ngx_http_ai_core_header_filter(ngx_http_request_t *r)
{
    ngx_int_t                     rc;
    ngx_http_ai_ctx_t            *ctx;
    ngx_http_ai_core_ctx_t       *cc;
    ngx_http_ai_core_loc_conf_t  *alcf;

    if (r != r->main) {
        return ngx_http_next_header_filter(r);
    }

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_core_module);

    if (!alcf->enable) {
        /* e.g. an error_page redirected to a static location */
        return ngx_http_next_header_filter(r);
    }

    ctx = ngx_http_ai_get_ctx(r);
    cc = ngx_http_ai_core_ctx(ctx);

    if (ctx == NULL
        || ctx->error
        || ctx->req.endpoint == NGX_HTTP_AI_EP_UNKNOWN
        || ctx->req.endpoint == NGX_HTTP_AI_EP_MODELS
        || ctx->req.endpoint == NGX_HTTP_AI_EP_COUNT_TOKENS
        || ctx->req.endpoint == NGX_HTTP_AI_EP_RESPONSE)
    {
        /* no answer, no usage */
        return ngx_http_next_header_filter(r);
    }

    if (r->headers_out.content_encoding
        && r->headers_out.content_encoding->hash
        && !(r->headers_out.content_encoding->value.len == 8
             && ngx_strncasecmp(r->headers_out.content_encoding->value.data,
                                (u_char *) "identity", 8)
                == 0))
    {
        /* an encoded body is neither scanned nor appended to */

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "ai: the response is encoded (\"Content-Encoding: "
                      "%V\"), its usage is not counted",
                      ngx_http_ai_safe_str(r->pool,
                                  &r->headers_out.content_encoding->value));

        return ngx_http_next_header_filter(r);
    }

    cc->watch = 1;

    if (r->headers_out.content_type.len >= sizeof("text/event-stream") - 1
        && ngx_strncasecmp(r->headers_out.content_type.data,
                           (u_char *) "text/event-stream",
                           sizeof("text/event-stream") - 1)
           == 0)
    {
        ctx->is_sse = 1;
        ngx_http_ai_sse_init(&cc->sse, r->pool, alcf->max_event_size);

        /* a cut stream gets an error event: the length may not hold */
        ngx_http_clear_content_length(r);
    }

    r->filter_need_in_memory = 1;

    if (ctx->rewrite) {
        ngx_http_clear_content_length(r);
        ngx_http_clear_accept_ranges(r);
        ngx_http_weak_etag(r);
    }

    rc = ngx_http_next_header_filter(r);

    if (ctx->is_sse && r->header_sent && (rc == NGX_OK || rc == NGX_AGAIN))
    {
        /*
         * every module's header filter ran (the core's is the last), and
         * the header went out: no error page or other attempt may follow
         */
        ngx_http_ai_core_free_tree(r, ctx);
    }

    return rc;
}


static ngx_int_t
ngx_http_ai_core_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    size_t                   size;
    ngx_buf_t               *b;
    ngx_int_t                rc;
    ngx_uint_t               seq, trim;
    ngx_chain_t             *cl, *out, **ll, **mark, *last;
    ngx_http_ai_ctx_t       *ctx;
    ngx_http_ai_event_t      ev;
    ngx_http_ai_dispatch_t   d;
    ngx_http_ai_core_ctx_t  *cc;

    if (r != r->main) {
        return ngx_http_next_body_filter(r, in);
    }

    ctx = ngx_http_ai_get_ctx(r);
    cc = ngx_http_ai_core_ctx(ctx);

    if (in == NULL) {
        if (ctx == NULL || cc->busy == NULL) {
            return ngx_http_next_body_filter(r, in);
        }

        /* the client took more: upstream buffers are released */

        rc = ngx_http_next_body_filter(r, NULL);
        ngx_http_ai_core_release(r, cc);

        return rc;
    }

    if (ctx == NULL || !cc->watch || ctx->resp_last) {
        return ngx_http_next_body_filter(r, in);
    }

    if (ctx->is_sse && !ctx->resp_done
        && r->upstream && r->upstream->peer.connection == NULL
        && !r->keepalive && in->next == NULL && in->buf->flush
        && !in->buf->last_buf && ngx_buf_size(in->buf) == 0)
    {
        /*
         * the upstream module failed the response after its header was
         * sent (a stream framed by Content-Length cut short): it flushes
         * and closes; the stream ends as a cut chunked one does
         */

        in->buf->last_buf = 1;
    }

    out = NULL;
    ll = &out;
    cc->last_out = NULL;

    trim = ctx->is_sse && ctx->drop_usage && !ctx->rewrite;

    if (trim && cc->held_last == NULL) {
        cc->held_last = &cc->held;
    }

    for (cl = in; cl; cl = cl->next) {
        b = cl->buf;

        mark = ll;
        seq = cc->out_seq;

        size = ngx_buf_in_memory(b) ? (size_t) (b->last - b->pos) : 0;

        if (size) {
            if (!ctx->first_byte) {
                ctx->first_byte = 1;
                ctx->ttft = ngx_http_ai_core_elapsed(ctx);
            }

            ctx->resp_size += size;

            if (ctx->is_sse) {
                d.request = r;
                d.ctx = ctx;
                d.out = &ll;
                d.buf = b;
                d.trim = trim;

                cc->trim_pos = b->pos;
                cc->trim_ref = NULL;

                rc = ngx_http_ai_sse_parse(&cc->sse, b->pos, b->last,
                                           ngx_http_ai_core_sse_event, &d);

                if (rc == NGX_OK && trim) {
                    rc = ngx_http_ai_core_trim_rest(r, cc, b, &ll);
                }

            } else {
                rc = ngx_http_ai_core_plain(r, ctx, b, &ll);
            }

            if (rc == NGX_ERROR) {
                return NGX_ERROR;
            }
        }

        if (b->last_buf) {
            ctx->resp_last = 1;
            ctx->total = ngx_http_ai_core_elapsed(ctx);

            if (ctx->is_sse && !ctx->resp_done) {
                ctx->truncated = 1;

                ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                              "ai: the upstream stream ended before its "
                              "terminal event, an error event is sent");

                if (!ctx->rewrite && !trim) {
                    in = ngx_http_ai_core_truncated(r, ctx, in, cl);
                    if (in == NULL) {
                        return NGX_ERROR;
                    }
                }
            }

            ngx_memzero(&ev, sizeof(ngx_http_ai_event_t));
            ev.last = 1;

            if (!ctx->is_sse && !ctx->resp_done
                && r->headers_out.content_length_n >= 0
                && (off_t) ctx->resp_size != r->headers_out.content_length_n)
            {
                /* the upstream closed before the whole body */
                ctx->truncated = 1;
            }

            if (!ctx->is_sse && !ctx->resp_done && !ctx->truncated) {

                if (ctx->too_large) {
                    /* complete, though its usage could not be read */
                    ctx->resp_done = 1;

                } else if (ngx_http_ai_core_plain_done(r, ctx, &ll)
                           != NGX_OK)
                {
                    return NGX_ERROR;
                }
            }

            if (ngx_http_ai_core_dispatch(r, ctx, &ev, &ll) != NGX_OK) {
                return NGX_ERROR;
            }
        }

        if (trim) {
            if (b->last_buf || b->last_in_chain) {

                if (cc->held && ctx->truncated && !cc->passing) {
                    /*
                     * a stream cut within an event held whole: the event
                     * is not the client's, the error event says why
                     */

                    *cc->held_last = cc->free;
                    cc->free = cc->held;
                    cc->held = NULL;
                    cc->held_last = &cc->held;
                    cc->held_size = 0;

                } else if (cc->held) {
                    /* the end in an unfinished event: it goes as it is */
                    ngx_http_ai_core_trim_flush(cc, &ll);
                    cc->passing = 1;
                }

                if (b->last_buf && ctx->truncated
                    && r->headers_out.status < NGX_HTTP_SPECIAL_RESPONSE)
                {
                    *ll = ngx_http_ai_core_error_event(r);
                    if (*ll == NULL) {
                        return NGX_ERROR;
                    }

                    ll = &(*ll)->next;
                }

                if (ngx_http_ai_core_marker(r, cc, b, &ll) != NGX_OK) {
                    return NGX_ERROR;
                }
            }

            if (size == 0) {
                b->pos = b->last;

                if (b->in_file) {
                    b->file_pos = b->file_last;
                }
            }

        } else if (ctx->rewrite) {
            /* the handlers' output replaces the upstream bytes */

            if (b->in_file) {
                b->file_pos = b->file_last;
            }

            if (b->last_buf || b->last_in_chain) {
                /* (a flush needs no marker: every output buffer flushes) */

                if (ngx_http_ai_core_marker(r, cc, b, &ll) != NGX_OK) {
                    return NGX_ERROR;
                }

                /* what follows the marker goes after it */
                cc->last_out = NULL;
                cc->out_seq++;
            }

            if (cc->out_seq == seq || !ngx_buf_in_memory(b)) {
                /* nothing made of it: consumed now */
                b->pos = b->last;

            } else {
                /*
                 * the last output buffer holds back the last upstream
                 * buffer that went into it, released when it is sent: the
                 * upstream's buffer is not reused until then, so NGINX
                 * stops reading when it is full
                 */

                if (*mark) {
                    for (last = *mark; last->next; last = last->next) {
                        /* void */
                    }

                } else {
                    last = cc->last_out;   /* appended to */
                }

                if (last->buf->shadow) {
                    last->buf->shadow->pos = last->buf->shadow->last;
                }

                last->buf->shadow = b;
            }
        }
    }

    cc->last_out = NULL;

    if (!ctx->rewrite && !trim) {
        return ngx_http_next_body_filter(r, in);
    }

    rc = ngx_http_next_body_filter(r, out);

    /* what was sent goes back to the free list, its upstream buffer too */

    if (out) {
        for (ll = &cc->busy; *ll; ll = &(*ll)->next) {
            /* void */
        }

        *ll = out;
    }

    ngx_http_ai_core_release(r, cc);

    return rc;
}


/* the end of the upstream's output, or of a chain: an empty marker */

static ngx_int_t
ngx_http_ai_core_marker(ngx_http_request_t *r, ngx_http_ai_core_ctx_t *cc,
    ngx_buf_t *b, ngx_chain_t ***ll)
{
    ngx_chain_t  *cl;

    cl = ngx_http_ai_core_out_buf(r, cc, 0);
    if (cl == NULL) {
        return NGX_ERROR;
    }

    cl->buf->last_buf = b->last_buf;
    cl->buf->last_in_chain = b->last_in_chain;
    cl->buf->flush = !b->last_buf;

    **ll = cl;
    *ll = &cl->next;

    return NGX_OK;
}


static void
ngx_http_ai_core_release(ngx_http_request_t *r, ngx_http_ai_core_ctx_t *cc)
{
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    while (cc->busy) {
        cl = cc->busy;
        b = cl->buf;

        if (ngx_buf_size(b) != 0) {
            break;
        }

        if (b->shadow) {
            b->shadow->pos = b->shadow->last;
            b->shadow = NULL;
        }

        cc->busy = cl->next;

        if (b->tag == (ngx_buf_tag_t) &ngx_http_ai_core_module) {
            cl->next = cc->free;
            cc->free = cl;

        } else if (b->tag == (ngx_buf_tag_t) &ngx_http_ai_core_ref) {
            cl->next = cc->free_refs;
            cc->free_refs = cl;

        } else if (r->upstream && b->tag == r->upstream->output.tag) {
            /* an upstream's buffer passed itself: the link is ours */
            cl->buf = NULL;
            cl->next = cc->free_links;
            cc->free_links = cl;

        } else {
            /* a module's own buffer (a whole answer): not ours to reuse */
            cl->next = NULL;
        }
    }
}


/*
 * Output of the handlers in rewrite mode: buffers from the request's free
 * list (a sent one comes back there), so that memory follows what is in
 * flight to the client, not the number of events.  The events of one call
 * of the filter go into one output buffer while they fit.
 */

ngx_int_t
ngx_http_ai_output(ngx_http_request_t *r, u_char *data, size_t len,
    ngx_chain_t ***out)
{
    ngx_chain_t             *cl;
    ngx_http_ai_ctx_t       *ctx;
    ngx_http_ai_core_ctx_t  *cc;

    if (len == 0) {
        return NGX_OK;
    }

    ctx = ngx_http_ai_get_ctx(r);
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    cc = ngx_http_ai_core_ctx(ctx);

    cl = cc->last_out;

    if (cl && *out == &cl->next
        && (size_t) (cl->buf->end - cl->buf->last) >= len)
    {
        /* one output buffer for a call of the filter, while it fits */
        cl->buf->last = ngx_cpymem(cl->buf->last, data, len);
        cc->out_seq++;
        return NGX_OK;
    }

    cl = ngx_http_ai_core_out_buf(r, cc, len);
    if (cl == NULL) {
        return NGX_ERROR;
    }

    cl->buf->last = ngx_cpymem(cl->buf->pos, data, len);
    cl->buf->flush = 1;

    **out = cl;
    *out = &cl->next;

    cc->last_out = cl;
    cc->out_seq++;

    return NGX_OK;
}


static ngx_chain_t *
ngx_http_ai_core_out_buf(ngx_http_request_t *r, ngx_http_ai_core_ctx_t *cc,
    size_t size)
{
    size_t        cap;
    ngx_buf_t    *b;
    ngx_chain_t  *cl, **ll;

    /* a free buffer large enough, else the first one, grown */

    for (ll = &cc->free; *ll; ll = &(*ll)->next) {
        if ((size_t) ((*ll)->buf->end - (*ll)->buf->start) >= size) {
            break;
        }
    }

    if (*ll == NULL) {
        ll = &cc->free;
    }

    if (*ll) {
        cl = *ll;
        *ll = cl->next;

    } else {
        cl = ngx_alloc_chain_link(r->pool);
        if (cl == NULL) {
            return NULL;
        }

        cl->buf = ngx_calloc_buf(r->pool);
        if (cl->buf == NULL) {
            return NULL;
        }
    }

    b = cl->buf;

    if ((size_t) (b->end - b->start) < size) {

        /*
         * an event's output is most often a few hundred bytes; grown at
         * least twice over, as the one grown stays in the pool
         */
        cap = ngx_max(ngx_max(size, 1024), 2 * (size_t) (b->end - b->start));

        if (b->start) {
            (void) ngx_pfree(r->pool, b->start);
        }

        b->start = ngx_palloc(r->pool, cap);
        if (b->start == NULL) {
            return NULL;
        }

        b->end = b->start + cap;
    }

    b->pos = b->start;
    b->last = b->start;
    b->memory = (size != 0);  /* empty: a flush or last marker */
    b->flush = 0;
    b->last_buf = 0;
    b->last_in_chain = 0;
    b->tag = (ngx_buf_tag_t) &ngx_http_ai_core_module;

    cl->next = NULL;

    return cl;
}


static ngx_int_t
ngx_http_ai_core_sse_event(void *data, ngx_str_t *name, ngx_str_t *payload)
{
    ngx_http_ai_dispatch_t *d = data;

    ngx_uint_t            usage;
    ngx_http_ai_ctx_t    *ctx;
    ngx_http_ai_event_t   ev;

    ctx = d->ctx;

    ngx_memzero(&ev, sizeof(ngx_http_ai_event_t));
    ev.name = *name;
    ev.data = *payload;

    usage = ngx_http_ai_core_usage(d->request, ctx, payload);

    /* the events of the answer, for a usage counted locally */

    if (ctx->upstream_format == NGX_HTTP_AI_FMT_ANTHROPIC
        ? (name->len == sizeof("content_block_delta") - 1
           && ngx_memcmp(name->data, "content_block_delta",
                         sizeof("content_block_delta") - 1) == 0)
        : ctx->upstream_format == NGX_HTTP_AI_FMT_RESPONSES
        ? (name->len > sizeof(".delta") - 1
           && ngx_memcmp(name->data + name->len - (sizeof(".delta") - 1),
                         ".delta", sizeof(".delta") - 1) == 0)
        : !(payload->len == sizeof("[DONE]") - 1
            && ngx_memcmp(payload->data, "[DONE]", sizeof("[DONE]") - 1)
               == 0))
    {
        ngx_http_ai_core_ctx(ctx)->text_events++;
    }

    if (ngx_http_ai_event_is_final(ctx->upstream_format, name, payload)) {
        ev.done = 1;
        ctx->resp_done = 1;
    }

    if (d->trim) {
        /*
         * the usage-only chunk: a usage object (just read) and
         * "choices":[], which no string in the event can hold (its quotes
         * would be escaped); not a chunk with "choices":[] and
         * "usage":null (Azure's first, with its prompt_filter_results),
         * which the translator's general path lets through too
         */

        if (ngx_http_ai_core_trim_event(d,
                usage && ngx_http_ai_json_empty_array(payload, "\"choices\"",
                                                sizeof("\"choices\"") - 1))
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return ngx_http_ai_core_dispatch(d->request, ctx, &ev, d->out);
}


/*
 * A plain body: most often a single buffer, seen whole at last_buf; when
 * it spans buffers it is copied, up to ai_response_max_size.
 */

static ngx_int_t
ngx_http_ai_core_plain(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    ngx_buf_t *b, ngx_chain_t ***out)
{
    u_char                       *p;
    size_t                        size, need, cap;
    ngx_http_ai_core_ctx_t       *cc;
    ngx_http_ai_core_loc_conf_t  *alcf;

    cc = ngx_http_ai_core_ctx(ctx);

    if (ctx->truncated || ctx->too_large) {
        return NGX_OK;
    }

    size = b->last - b->pos;

    if (cc->resp_body.len == 0
        && (b->last_buf || r->headers_out.content_length_n == (off_t) size))
    {
        /* the whole body in one buffer: seen in place, no copy */
        cc->resp_body.data = b->pos;
        cc->resp_body.len = size;
        return ngx_http_ai_core_plain_done(r, ctx, out);
    }

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_core_module);

    need = cc->resp_body.len + size;

    if (need > alcf->max_response_size) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "ai: response body is larger than "
                      "ai_response_max_size (%uz), usage is not extracted",
                      alcf->max_response_size);
        ctx->too_large = 1;
        cc->resp_body.len = 0;
        return NGX_OK;
    }

    if (need > cc->resp_cap) {

        if (r->headers_out.content_length_n >= (off_t) need
            && r->headers_out.content_length_n
               <= (off_t) alcf->max_response_size)
        {
            cap = (size_t) r->headers_out.content_length_n;

        } else {
            cap = ngx_max(need * 2, 4096);
            cap = ngx_min(cap, alcf->max_response_size);
        }

        p = ngx_pnalloc(r->pool, cap);
        if (p == NULL) {
            return NGX_ERROR;
        }

        if (cc->resp_body.len) {
            ngx_memcpy(p, cc->resp_body.data, cc->resp_body.len);
        }

        cc->resp_body.data = p;
        cc->resp_cap = cap;
    }

    ngx_memcpy(cc->resp_body.data + cc->resp_body.len, b->pos, size);
    cc->resp_body.len += size;

    if (r->headers_out.content_length_n == (off_t) cc->resp_body.len) {
        return ngx_http_ai_core_plain_done(r, ctx, out);
    }

    return NGX_OK;
}


/* the plain body is complete: usage, then the handlers, with the body */

static ngx_int_t
ngx_http_ai_core_plain_done(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    ngx_chain_t ***out)
{
    ngx_http_ai_event_t      ev;
    ngx_http_ai_core_ctx_t  *cc;

    cc = ngx_http_ai_core_ctx(ctx);

    ngx_memzero(&ev, sizeof(ngx_http_ai_event_t));

    ev.data = cc->resp_body;
    ev.done = 1;

    ctx->resp_done = 1;

    if (ev.data.len) {
        ngx_http_ai_core_usage(r, ctx, &ev.data);

        if (r->headers_out.status >= NGX_HTTP_BAD_REQUEST) {
            ngx_http_ai_core_answer_error(r, ctx, &ev.data);
        }
    }

    /* the body may live in a buffer that is reused once passed on */
    ngx_str_null(&cc->resp_body);

    return ngx_http_ai_core_dispatch(r, ctx, &ev, out);
}


/*
 * usage, range-checked; a provider that lies is told once a request.
 * 1: the data held a usage object.
 */

static ngx_uint_t
ngx_http_ai_core_usage(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    ngx_str_t *data)
{
    ngx_http_ai_core_ctx_t  *cc;

    static const u_char  tail[] = "\"finish_reason\":null}],\"usage\":null}";

    cc = ngx_http_ai_core_ctx(ctx);

    if (ctx->upstream_format == NGX_HTTP_AI_FMT_OPENAI
        && cc->answer.id.len
        && data->len >= sizeof(tail) - 1
        && ngx_memcmp(data->data + data->len - (sizeof(tail) - 1), tail,
                      sizeof(tail) - 1)
           == 0)
    {
        /*
         * an OpenAI chunk that ends as most of a stream's do: the last
         * finish reason and the last usage are those nulls, so the scans
         * from the end below would find neither (the id is known)
         */
        return 0;
    }

    /* the answer's id and finish reason, for the record */
    ngx_http_ai_core_answer_scan(r, ctx, data);

    if (ngx_http_ai_usage_parse(ctx->upstream_format, data, &ctx->usage)
        != NGX_OK)
    {
        return 0;
    }

    if (ctx->usage.invalid && !cc->usage_warned) {
        cc->usage_warned = 1;

        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "ai: the upstream reported token usage out of range "
                      "or inconsistent, the invalid values are ignored");
    }

    return 1;
}


static ngx_int_t
ngx_http_ai_core_dispatch(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    ngx_http_ai_event_t *ev, ngx_chain_t ***out)
{
    ngx_int_t                      rc;
    ngx_uint_t                     i;
    ngx_http_ai_event_handler_pt  *h;
    ngx_http_ai_core_main_conf_t  *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_core_module);

    h = amcf->handlers.elts;
    rc = NGX_OK;

    for (i = 0; i < amcf->handlers.nelts; i++) {
        rc = h[i](r, ctx, ev, out);

        if (rc != NGX_OK) {
            break;
        }
    }

    if (ev->json) {
        cJSON_Delete(ev->json);
        ev->json = NULL;
    }

    return rc == NGX_ERROR ? NGX_ERROR : NGX_OK;
}


ngx_int_t
ngx_http_ai_final_usage(ngx_http_request_t *r, ngx_http_ai_usage_t *usage)
{
    size_t                   bytes;
    ngx_http_ai_ctx_t       *ctx;
    ngx_http_ai_core_ctx_t  *cc;

    ctx = ngx_http_ai_get_ctx(r);

    if (ctx == NULL) {
        return NGX_DECLINED;
    }

    if (ctx->usage.found && (ctx->resp_done || !ctx->is_sse)) {
        *usage = ctx->usage;
        return NGX_OK;
    }

    cc = ngx_http_ai_core_ctx(ctx);

    if (!ctx->is_sse || !ctx->first_byte) {
        return NGX_DECLINED;
    }

    /*
     * a stream cut, or without a usage event: what the provider said at
     * its start (Anthropic's message_start: the prompt), the rest counted
     */

    *usage = ctx->usage;

    if (!ctx->usage.found) {
        bytes = ctx->req.text_len
                + (cc->tree_freed ? cc->system_len : ctx->req.system.len);

        usage->prompt_tokens = (ngx_int_t) ngx_min(bytes / 4
                                                   + (bytes % 4 != 0),
                                                   NGX_HTTP_AI_TOKENS_MAX);
    }

    if ((ngx_uint_t) usage->completion_tokens < cc->text_events) {
        usage->completion_tokens = (ngx_int_t) ngx_min(cc->text_events,
                                                      NGX_HTTP_AI_TOKENS_MAX);
    }

    usage->total_tokens = usage->prompt_tokens + usage->completion_tokens;
    usage->found = 1;
    usage->estimated = 1;

    return NGX_OK;
}


/*
 * An event of a stream passed by reference ended (the parser's start and
 * end say where): a dropped one is cut out of what goes on; one that
 * began in an earlier buffer has its beginning held, which now goes on,
 * or is dropped too.
 */

static ngx_int_t
ngx_http_ai_core_trim_event(ngx_http_ai_dispatch_t *d, ngx_uint_t drop)
{
    u_char                  *start;
    ngx_chain_t             *cl;
    ngx_http_ai_core_ctx_t  *cc;

    cc = ngx_http_ai_core_ctx(d->ctx);

    start = cc->sse.start;

    if (start == NULL) {
        start = d->buf->pos;

        if (cc->passing) {
            /* its beginning went on as it was: so does its end */
            drop = 0;

        } else if (drop) {
            /* the held copies were never passed on: free again */

            while (cc->held) {
                cl = cc->held;
                cc->held = cl->next;
                cl->next = cc->free;
                cc->free = cl;
            }

            cc->held_last = &cc->held;
            cc->held_size = 0;
        }
    }

    /*
     * (an event held that ended in this buffer unseen, without data or
     * over the cap, goes as it was, before anything of this buffer)
     */

    ngx_http_ai_core_trim_flush(cc, d->out);
    cc->passing = 0;

    if (!drop) {
        return NGX_OK;
    }

    if (start > cc->trim_pos) {
        cl = ngx_http_ai_core_ref(d->request, cc, cc->trim_pos, start);
        if (cl == NULL) {
            return NGX_ERROR;
        }

        **d->out = cl;
        *d->out = &cl->next;
    }

    cc->trim_pos = cc->sse.end;

    return NGX_OK;
}


/*
 * The rest of a buffer passed by reference: what is left goes on, but an
 * unfinished event, which is held, copied (the upstream's buffer must be
 * free to take the event's end); the last piece passed shadows the buffer.
 * An unfinished event that cannot be cut, as the parser skips it (over the
 * cap) or it is larger than the cap, goes on as it is, not held.
 */

static ngx_int_t
ngx_http_ai_core_trim_rest(ngx_http_request_t *r, ngx_http_ai_core_ctx_t *cc,
    ngx_buf_t *b, ngx_chain_t ***out)
{
    u_char       *from;
    ngx_chain_t  *cl;

    if (cc->sse.start) {
        /*
         * an event ended in this buffer: what was held of it, an event no
         * handler saw (without data, or over the cap), goes as it was
         */

        ngx_http_ai_core_trim_flush(cc, out);
        cc->passing = 0;
    }

    from = cc->sse.between ? b->last
                           : (cc->sse.start ? cc->sse.start : b->pos);

    if (!cc->sse.between
        && (cc->passing || cc->sse.overflow || cc->sse.line_overflow
            || cc->held_size + (b->last - from) > cc->sse.max))
    {
        ngx_http_ai_core_trim_flush(cc, out);
        cc->passing = 1;
        from = b->last;
    }

    if (from == b->last && cc->trim_pos == b->pos && from > b->pos
        && !b->last_buf && !b->last_in_chain && !b->in_file && !b->sync)
    {
        /*
         * nothing of it cut or held: the buffer goes on itself, as NGINX
         * passes an upstream's buffer, and is released as it is sent (a
         * stream's events, a buffer each, take a link, not a reference)
         */

        cl = ngx_http_ai_core_link(r, cc, b);
        if (cl == NULL) {
            return NGX_ERROR;
        }

        **out = cl;
        *out = &cl->next;

        return NGX_OK;
    }

    if (from > cc->trim_pos) {
        cl = ngx_http_ai_core_ref(r, cc, cc->trim_pos, from);
        if (cl == NULL) {
            return NGX_ERROR;
        }

        **out = cl;
        *out = &cl->next;
    }

    if (b->last > from) {
        cl = ngx_http_ai_core_out_buf(r, cc, b->last - from);
        if (cl == NULL) {
            return NGX_ERROR;
        }

        cl->buf->last = ngx_cpymem(cl->buf->pos, from, b->last - from);
        cl->buf->flush = 1;

        *cc->held_last = cl;
        cc->held_last = &cl->next;
        cc->held_size += b->last - from;
    }

    if (cc->trim_ref) {
        /*
         * the last piece that points into the buffer, passed here or
         * before a cut event, holds it back until it is sent
         */
        cc->trim_ref->buf->shadow = b;

    } else {
        /* all of it cut out or copied: nothing points into it */
        b->pos = b->last;
    }

    return NGX_OK;
}


/* what is held of an unfinished event goes on */

static void
ngx_http_ai_core_trim_flush(ngx_http_ai_core_ctx_t *cc, ngx_chain_t ***out)
{
    if (cc->held == NULL) {
        return;
    }

    **out = cc->held;
    *out = cc->held_last;

    cc->held = NULL;
    cc->held_last = &cc->held;
    cc->held_size = 0;
}


/* a link of ours for an upstream's buffer passed itself */

static ngx_chain_t *
ngx_http_ai_core_link(ngx_http_request_t *r, ngx_http_ai_core_ctx_t *cc,
    ngx_buf_t *b)
{
    ngx_chain_t  *cl;

    if (cc->free_links) {
        cl = cc->free_links;
        cc->free_links = cl->next;

    } else {
        cl = ngx_alloc_chain_link(r->pool);
        if (cl == NULL) {
            return NULL;
        }
    }

    cl->buf = b;
    cl->next = NULL;

    return cl;
}


/* a buffer pointing into an upstream buffer, from the request's free list */

static ngx_chain_t *
ngx_http_ai_core_ref(ngx_http_request_t *r, ngx_http_ai_core_ctx_t *cc,
    u_char *pos, u_char *last)
{
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    if (cc->free_refs) {
        cl = cc->free_refs;
        cc->free_refs = cl->next;
        b = cl->buf;

    } else {
        cl = ngx_alloc_chain_link(r->pool);
        if (cl == NULL) {
            return NULL;
        }

        b = ngx_alloc_buf(r->pool);
        if (b == NULL) {
            return NULL;
        }

        cl->buf = b;
    }

    ngx_memzero(b, sizeof(ngx_buf_t));

    b->start = pos;
    b->pos = pos;
    b->last = last;
    b->end = last;
    b->memory = 1;
    b->flush = 1;
    b->tag = (ngx_buf_tag_t) &ngx_http_ai_core_ref;

    cl->next = NULL;

    cc->trim_ref = cl;

    return cl;
}


/*
 * The upstream ended a stream before its terminal event (it was cut, or
 * it failed): the client must not take it for a complete answer.  An SSE
 * "error" event goes before the end; both official SDKs raise it.
 */

static ngx_chain_t *
ngx_http_ai_core_truncated(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    ngx_chain_t *in, ngx_chain_t *last)
{
    ngx_chain_t  *out, **ll, *cl, *err;

    if (r->headers_out.status >= NGX_HTTP_SPECIAL_RESPONSE) {
        return in;
    }

    err = ngx_http_ai_core_error_event(r);
    if (err == NULL) {
        return NULL;
    }

    /* a chain of our own: the links before "last", ours, then "last" on */

    out = NULL;
    ll = &out;

    for (cl = in; cl != last; cl = cl->next) {
        *ll = ngx_alloc_chain_link(r->pool);
        if (*ll == NULL) {
            return NULL;
        }

        (*ll)->buf = cl->buf;
        ll = &(*ll)->next;
    }

    *ll = err;
    err->next = last;

    return out;
}


/* "event: error\ndata: {...}\n\n" around the JSON error of a cut stream */

static ngx_chain_t *
ngx_http_ai_core_error_event(ngx_http_request_t *r)
{
    ngx_buf_t    *b;
    ngx_str_t     msg;
    ngx_chain_t  *err;

    ngx_str_set(&msg, "the upstream stream ended before it was complete");

    b = ngx_http_ai_error_body(r, NGX_HTTP_BAD_GATEWAY, NULL, NULL,
                               "stream_truncated", &msg);
    if (b == NULL) {
        return NULL;
    }

    err = ngx_alloc_chain_link(r->pool);
    if (err == NULL) {
        return NULL;
    }

    err->buf = ngx_create_temp_buf(r->pool, (b->last - b->pos)
                                   + sizeof("\nevent: error\ndata: \n\n"));
    if (err->buf == NULL) {
        return NULL;
    }

    b->last--;  /* the error body's own LF */

    err->buf->last = ngx_cpymem(err->buf->last, "\nevent: error\ndata: ",
                                sizeof("\nevent: error\ndata: ") - 1);
    err->buf->last = ngx_cpymem(err->buf->last, b->pos, b->last - b->pos);
    err->buf->last = ngx_cpymem(err->buf->last, "\n\n", 2);
    err->buf->flush = 1;

    err->next = NULL;

    return err;
}


static ngx_msec_t
ngx_http_ai_core_elapsed(ngx_http_ai_ctx_t *ctx)
{
    ngx_time_t  *tp;
    ngx_msec_t   now;

    tp = ngx_timeofday();
    now = (ngx_msec_t) (tp->sec * 1000 + tp->msec);

    return now > ctx->start ? now - ctx->start : 0;
}
