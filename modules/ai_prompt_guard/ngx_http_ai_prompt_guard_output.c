
/*
 * Copyright (C) AI Gateway authors
 *
 * The output guard: a delta filter (the core's response pipeline) on each
 * text of the answer as the client will get it, after any translation,
 * plain or streamed.  Two steps, each with a hold-back of its own per
 * text:
 *
 *   restore   the placeholders the request's masking made ([EMAIL_1])
 *             become their values again; the end of a delta that may
 *             begin one (a "[" with no "]" after it, within the longest
 *             placeholder) waits for the next delta;
 *   rules     the output rules on the restored text: a block rule ends
 *             the answer (the core sends the door's error event, or the
 *             error instead of a plain answer), mask and hash rewrite; the
 *             end of the text within the rules' reach (the longest match
 *             a detector can make, or ai_prompt_guard_window for
 *             patterns) waits, so a match split across events is seen
 *             whole, and the stream is held no longer than that; a PEM
 *             block or a JWT begun and not yet ended waits from its
 *             start (up to the longest secret).
 *
 * At a text's end (delta->last) nothing stays held.  A tool call's
 * arguments (delta->tool) are a text of their own, JSON text: a value
 * restored there is escaped as in a JSON string, and the rules see the
 * arguments as the input guard does.
 */


#include "ngx_http_ai_prompt_guard.h"


static ngx_str_t  ngx_http_ai_prompt_guard_stopped =
    ngx_string("The answer was stopped by the gateway's content policy.");


static ngx_http_ai_pg_text_t *ngx_http_ai_prompt_guard_state(
    ngx_http_ai_pg_ctx_t *ctx, ngx_uint_t index);
static u_char *ngx_http_ai_prompt_guard_buf(ngx_pool_t *pool, u_char **buf,
    size_t *size, size_t need);
static ngx_int_t ngx_http_ai_prompt_guard_join(ngx_http_request_t *r,
    ngx_http_ai_pg_ctx_t *ctx, ngx_uint_t step, ngx_str_t *held,
    ngx_str_t *more, ngx_str_t *work);
static ngx_int_t ngx_http_ai_prompt_guard_restore(ngx_http_request_t *r,
    ngx_http_ai_pg_ctx_t *ctx, ngx_str_t *text, ngx_uint_t json,
    ngx_str_t *out);
static ngx_int_t ngx_http_ai_prompt_guard_hold(ngx_pool_t *pool,
    ngx_str_t *held, size_t *size, u_char *p, size_t len);
static ngx_http_ai_pg_mask_t *ngx_http_ai_prompt_guard_placeholder(
    ngx_http_ai_pg_ctx_t *ctx, u_char *p, u_char *last);
static size_t ngx_http_ai_prompt_guard_unfinished(ngx_str_t *work);


ngx_int_t
ngx_http_ai_prompt_guard_filter(ngx_http_request_t *r,
    ngx_http_ai_delta_t *delta)
{
    size_t                      cut, i, j, reach;
    ngx_int_t                   rc;
    ngx_str_t                   work, text, out;
    ngx_uint_t                  n, k;
    ngx_http_ai_pg_ctx_t       *ctx;
    ngx_http_ai_pg_text_t      *t;
    ngx_http_ai_pg_where_t      where;
    ngx_http_ai_pg_loc_conf_t  *plcf;
    ngx_http_ai_pg_match_at_t   stack[NGX_HTTP_AI_PG_MATCHES], *m;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_prompt_guard_module);

    if (ctx == NULL || !ctx->output) {
        return NGX_OK;
    }

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_prompt_guard_module);

    /* a state per text: the arguments' indexes are a space of their own */

    t = ngx_http_ai_prompt_guard_state(ctx, 2 * delta->index + delta->tool);
    if (t == NULL) {
        return NGX_ERROR;
    }

    text = delta->text;

    /* 1. the placeholders restored */

    if (plcf->restore && ctx->masks.nelts) {

        if (ngx_http_ai_prompt_guard_join(r, ctx, 0, &t->raw, &text, &work)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        cut = work.len;

        if (!delta->last) {
            /* the first "[" near the end that no "]" closes */

            i = (work.len >= ctx->longest) ? work.len - ctx->longest + 1 : 0;

            for ( /* void */ ; i < work.len; i++) {
                if (work.data[i] != '[') {
                    continue;
                }

                for (j = i + 1; j < work.len && work.data[j] != ']'; j++) {
                    /* void */
                }

                if (j == work.len) {
                    cut = i;
                    break;
                }
            }
        }

        text.data = work.data;
        text.len = cut;

        if (ngx_http_ai_prompt_guard_restore(r, ctx, &text, delta->tool,
                                             &text)
            != NGX_OK
            || ngx_http_ai_prompt_guard_hold(r->pool, &t->raw, &t->raw_size,
                                             work.data + cut, work.len - cut)
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    /* 2. the output rules */

    if (plcf->output) {

        if (ngx_http_ai_prompt_guard_join(r, ctx, 1, &t->out, &text, &work)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        where.role = NGX_HTTP_AI_PG_ASSISTANT;
        where.last = 1;

        m = stack;

        rc = ngx_http_ai_prompt_guard_match(r, ctx, plcf->output, &where,
                                            &work, &m, &n);

        if (rc == NGX_DECLINED) {
            ngx_log_error(plcf->log_level, r->connection->log, 0,
                          "ai_prompt_guard: output rule \"%V\" stopped the "
                          "answer", &ctx->blocked->name);

            ctx->output_blocked = 1;
            delta->status = NGX_HTTP_BAD_REQUEST;
            delta->message = ctx->blocked->custom_message
                             ? ctx->blocked->message
                             : ngx_http_ai_prompt_guard_stopped;

            return NGX_ABORT;
        }

        if (rc != NGX_OK) {
            return NGX_ERROR;
        }

        /* what may still grow waits: the reach, and a match crossing it */

        reach = plcf->reach;
        cut = work.len;

        if (!delta->last) {
            cut = (work.len > reach) ? work.len - reach : 0;

            for (k = 0; k < n; k++) {
                if (m[k].start < cut && m[k].start + m[k].len > cut) {
                    cut = m[k].start;
                    break;
                }
            }

            if (plcf->secrets) {
                cut = ngx_min(cut, ngx_http_ai_prompt_guard_unfinished(&work));
            }
        }

        for (k = 0; k < n && m[k].start + m[k].len <= cut; k++) {
            /* void */
        }

        text.data = work.data;
        text.len = cut;

        if (ngx_http_ai_prompt_guard_apply(r, ctx, m, k, &text, 0, &out)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (ngx_http_ai_prompt_guard_hold(r->pool, &t->out, &t->out_size,
                                          work.data + cut, work.len - cut)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        text = out;
    }

    if (text.data == delta->text.data && text.len == delta->text.len) {
        return NGX_OK;
    }

    /* the output, valid until the next call */

    if (text.len == 0) {
        ngx_str_set(&delta->text, "");
        return NGX_OK;
    }

    if (ngx_http_ai_prompt_guard_buf(r->pool, &ctx->out, &ctx->out_size,
                                     text.len)
        == NULL)
    {
        return NGX_ERROR;
    }

    ngx_memcpy(ctx->out, text.data, text.len);

    delta->text.data = ctx->out;
    delta->text.len = text.len;

    return NGX_OK;
}


static ngx_http_ai_pg_text_t *
ngx_http_ai_prompt_guard_state(ngx_http_ai_pg_ctx_t *ctx, ngx_uint_t index)
{
    ngx_uint_t              i;
    ngx_http_ai_pg_text_t  *t;

    t = ctx->texts.elts;

    for (i = 0; i < ctx->texts.nelts; i++) {
        if (t[i].index == index) {
            return &t[i];
        }
    }

    t = ngx_array_push(&ctx->texts);
    if (t == NULL) {
        return NULL;
    }

    ngx_memzero(t, sizeof(ngx_http_ai_pg_text_t));
    t->index = index;

    return t;
}


/*
 * what was held, then more: in work, the step's buffer of the request,
 * reused delta to delta (a stream's deltas allocate nothing once it is
 * large enough)
 */

static ngx_int_t
ngx_http_ai_prompt_guard_join(ngx_http_request_t *r,
    ngx_http_ai_pg_ctx_t *ctx, ngx_uint_t step, ngx_str_t *held,
    ngx_str_t *more, ngx_str_t *work)
{
    if (held->len == 0) {
        *work = *more;
        return NGX_OK;
    }

    work->len = held->len + more->len;
    work->data = ngx_http_ai_prompt_guard_buf(r->pool, &ctx->work[step],
                                              &ctx->work_size[step],
                                              work->len);
    if (work->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(work->data, held->data, held->len);

    if (more->len) {
        ngx_memcpy(work->data + held->len, more->data, more->len);
    }

    return NGX_OK;
}


/* a buffer of the request's, grown when needed, reused call to call */

static u_char *
ngx_http_ai_prompt_guard_buf(ngx_pool_t *pool, u_char **buf, size_t *size,
    size_t need)
{
    if (need > *size || *buf == NULL) {
        need = ngx_max(need, 2 * *size);
        need = ngx_max(need, 256);

        if (*buf) {
            ngx_pfree(pool, *buf);
        }

        *buf = ngx_pnalloc(pool, need);
        if (*buf == NULL) {
            return NULL;
        }

        *size = need;
    }

    return *buf;
}


/* the held part, copied into the text's own buffer */

static ngx_int_t
ngx_http_ai_prompt_guard_hold(ngx_pool_t *pool, ngx_str_t *held,
    size_t *size, u_char *p, size_t len)
{
    u_char  *buf;

    if (len > *size) {
        buf = ngx_pnalloc(pool, ngx_max(len, 64));
        if (buf == NULL) {
            return NGX_ERROR;
        }

        if (held->data && *size) {
            ngx_pfree(pool, held->data);
        }

        *size = ngx_max(len, 64);
        held->data = buf;
    }

    if (len) {
        ngx_memmove(held->data, p, len);
    }

    held->len = len;

    return NGX_OK;
}


/*
 * the request's placeholders in a text, back to their values (escaped as
 * in a JSON string when the text is JSON)
 */

static ngx_int_t
ngx_http_ai_prompt_guard_restore(ngx_http_request_t *r,
    ngx_http_ai_pg_ctx_t *ctx, ngx_str_t *text, ngx_uint_t json,
    ngx_str_t *out)
{
    u_char                 *p, *q, *last, *o;
    size_t                  size;
    ngx_http_ai_pg_mask_t  *mask;

    p = ngx_strlchr(text->data, text->data + text->len, '[');

    if (p == NULL) {
        *out = *text;
        return NGX_OK;
    }

    last = text->data + text->len;

    /*
     * the size of what is written, exactly: a value may be longer than its
     * placeholder (one of a long pattern's), and an answer may hold many
     */

    size = text->len;

    for (q = p; q; q = ngx_strlchr(q + 1, last, '[')) {
        mask = ngx_http_ai_prompt_guard_placeholder(ctx, q, last);

        if (mask) {
            size += (json ? ngx_escape_json(NULL, mask->value.data,
                                            mask->value.len)
                          : 0)
                    + mask->value.len;
        }
    }

    o = ngx_http_ai_prompt_guard_buf(r->pool, &ctx->restored,
                                     &ctx->restored_size, size);
    if (o == NULL) {
        return NGX_ERROR;
    }

    q = text->data;
    out->data = o;

    while (p) {
        o = ngx_cpymem(o, q, p - q);
        q = p;

        mask = ngx_http_ai_prompt_guard_placeholder(ctx, p, last);

        if (mask) {
            if (json) {
                o = (u_char *) ngx_escape_json(o, mask->value.data,
                                               mask->value.len);

            } else {
                o = ngx_cpymem(o, mask->value.data, mask->value.len);
            }

            q = p + mask->placeholder.len;

        } else {
            *o++ = *p;
            q = p + 1;
        }

        p = ngx_strlchr(q, last, '[');
    }

    o = ngx_cpymem(o, q, last - q);
    out->len = o - out->data;

    return NGX_OK;
}


/*
 * Where a long secret may have begun and not ended yet: a PEM block
 * without its END line, a JWT ("eyJ" and base64url or dots) running to
 * the end; the text's length if none, or if it began too far back.
 */

static size_t
ngx_http_ai_prompt_guard_unfinished(ngx_str_t *work)
{
    u_char  *p, *q, *last, *begin, c;

    last = work->data + work->len;
    begin = NULL;

    for (p = work->data;
         (q = ngx_strlcasestrn(p, last, (u_char *) "-----begin", 10 - 1));
         p = q + 1)
    {
        begin = q;
    }

    if (begin && ngx_strlcasestrn(begin, last, (u_char *) "-----end", 8 - 1)
                 == NULL
        && (size_t) (last - begin) < NGX_HTTP_AI_PG_SECRET_MAX)
    {
        return begin - work->data;
    }

    /* a JWT: the last "eyJ" from which only base64url and dots run */

    for (p = last; p > work->data; p--) {
        c = p[-1];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
        {
            break;
        }
    }

    q = ngx_strlcasestrn(p, last, (u_char *) "eyJ", 3 - 1);

    if (q && ngx_strncmp(q, "eyJ", 3) == 0
        && (size_t) (last - q) < NGX_HTTP_AI_PG_SECRET_MAX)
    {
        return q - work->data;
    }

    return work->len;
}


/* the mask whose placeholder is at p: "[" to the first "]", no longer
 * than the longest placeholder */

static ngx_http_ai_pg_mask_t *
ngx_http_ai_prompt_guard_placeholder(ngx_http_ai_pg_ctx_t *ctx, u_char *p,
    u_char *last)
{
    u_char  *e;

    e = ngx_strlchr(p + 1, ngx_min(last, p + ctx->longest), ']');

    if (e == NULL) {
        return NULL;
    }

    return ngx_http_ai_prompt_guard_holder(ctx, p, e + 1 - p);
}
