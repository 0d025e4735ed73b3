
/*
 * Copyright (C) AI Gateway authors
 *
 * Test-only: a delta filter driven from the configuration, so that the
 * suite can check the core's response pipeline.
 *
 *   ai_test_delta mask=TEXT | abort=TEXT [status=N];
 *
 * Its GUARD stage asks for the delta filters (ngx_http_ai_filter_deltas);
 * its filter (NGX_HTTP_AI_DELTA_GUARD) replaces every TEXT of the answer
 * with "[MASKED]", or ends the answer (NGX_ABORT, status N, default 400)
 * at the first TEXT.  A TEXT may be split across deltas: the filter holds
 * back the end of a delta that may begin TEXT (at most its length - 1
 * bytes, per text), until the next delta or the text's end.
 *
 * A completion handler logs, at notice:
 *   ai_test delta: calls=N held_max=M
 * the number of filter calls and the most it held back at once.
 */


#include "ngx_http_ai_core.h"


#define NGX_HTTP_AI_DELTA_TEST_TEXTS  4


typedef struct {
    ngx_str_t                   text;
    ngx_uint_t                  abort;
    ngx_uint_t                  status;
} ngx_http_ai_delta_test_loc_conf_t;


typedef struct {
    u_char                     *held[NGX_HTTP_AI_DELTA_TEST_TEXTS];
    size_t                      held_len[NGX_HTTP_AI_DELTA_TEST_TEXTS];
    u_char                     *work;        /* held + delta */
    size_t                      work_size;
    u_char                     *out;         /* what goes on */
    size_t                      out_size;
    ngx_uint_t                  calls;
    size_t                      held_max;
} ngx_http_ai_delta_test_ctx_t;


static ngx_int_t ngx_http_ai_delta_test_stage(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ai);
static ngx_int_t ngx_http_ai_delta_test_filter(ngx_http_request_t *r,
    ngx_http_ai_delta_t *delta);
static u_char *ngx_http_ai_delta_test_buf(ngx_pool_t *pool, u_char **buf,
    size_t *size, size_t need);
static void ngx_http_ai_delta_test_done(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ai);
static ngx_int_t ngx_http_ai_delta_test_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_ai_delta_test_postconfiguration(ngx_conf_t *cf);
static void *ngx_http_ai_delta_test_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_ai_delta_test_conf(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


static ngx_command_t  ngx_http_ai_delta_test_commands[] = {

    { ngx_string("ai_test_delta"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_ai_delta_test_conf,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_ai_delta_test_module_ctx = {
    ngx_http_ai_delta_test_preconfiguration, /* preconfiguration */
    ngx_http_ai_delta_test_postconfiguration, /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_ai_delta_test_create_loc_conf, /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_ai_delta_test_module = {
    NGX_MODULE_V1,
    &ngx_http_ai_delta_test_module_ctx,    /* module context */
    ngx_http_ai_delta_test_commands,       /* module directives */
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
ngx_http_ai_delta_test_stage(ngx_http_request_t *r, ngx_http_ai_ctx_t *ai)
{
    ngx_http_ai_delta_test_ctx_t       *ctx;
    ngx_http_ai_delta_test_loc_conf_t  *dlcf;

    dlcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_delta_test_module);

    if (dlcf->text.len == 0) {
        return NGX_DECLINED;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_ai_delta_test_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_set_ctx(r, ctx, ngx_http_ai_delta_test_module);

    ngx_http_ai_filter_deltas(r);

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_ai_delta_test_filter(ngx_http_request_t *r,
    ngx_http_ai_delta_t *delta)
{
    u_char                             *s, *o;
    size_t                              len, i, n, w, room;
    ngx_uint_t                          t;
    ngx_http_ai_delta_test_ctx_t       *ctx;
    ngx_http_ai_delta_test_loc_conf_t  *dlcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_delta_test_module);

    if (ctx == NULL || delta->tool) {
        /* texts only: a tool call's arguments are the guard's (t/070) */
        return NGX_OK;
    }

    dlcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_delta_test_module);

    ctx->calls++;

    t = delta->index < NGX_HTTP_AI_DELTA_TEST_TEXTS
        ? delta->index : NGX_HTTP_AI_DELTA_TEST_TEXTS - 1;
    w = dlcf->text.len;

    /* what was held, then the delta */

    len = ctx->held_len[t] + delta->text.len;

    s = ngx_http_ai_delta_test_buf(r->pool, &ctx->work, &ctx->work_size,
                                   len);
    if (s == NULL) {
        return NGX_ERROR;
    }

    if (ctx->held_len[t]) {
        ngx_memcpy(s, ctx->held[t], ctx->held_len[t]);
    }

    if (delta->text.len) {
        ngx_memcpy(s + ctx->held_len[t], delta->text.data, delta->text.len);
    }

    /* "[MASKED]" is 8 bytes: at most that much per byte of the text */

    room = len * 8 + 1;

    o = ngx_http_ai_delta_test_buf(r->pool, &ctx->out, &ctx->out_size, room);
    if (o == NULL) {
        return NGX_ERROR;
    }

    n = 0;
    i = 0;

    while (i < len) {

        if (len - i >= w && ngx_memcmp(s + i, dlcf->text.data, w) == 0) {

            if (dlcf->abort) {
                delta->status = dlcf->status;
                ngx_str_set(&delta->message,
                            "the answer was stopped by ai_test_delta");
                return NGX_ABORT;
            }

            n = ngx_cpymem(o + n, "[MASKED]", 8) - o;
            i += w;
            continue;
        }

        if (!delta->last && len - i < w
            && ngx_memcmp(s + i, dlcf->text.data, len - i) == 0)
        {
            /* may begin TEXT: held until the next delta */
            break;
        }

        o[n++] = s[i++];
    }

    /* the window: at most w - 1 bytes, in a buffer of its own */

    if (ctx->held[t] == NULL) {
        ctx->held[t] = ngx_pnalloc(r->pool, w);
        if (ctx->held[t] == NULL) {
            return NGX_ERROR;
        }
    }

    ctx->held_len[t] = len - i;
    ngx_memcpy(ctx->held[t], s + i, len - i);

    if (ctx->held_len[t] > ctx->held_max) {
        ctx->held_max = ctx->held_len[t];
    }

    if (n == delta->text.len && ctx->held_len[t] == 0
        && (n == 0 || ngx_memcmp(o, delta->text.data, n) == 0))
    {
        /* nothing masked, held or released: let through as it came */
        return NGX_OK;
    }

    delta->text.data = o;
    delta->text.len = n;

    return NGX_OK;
}


/* a buffer of the request's, grown when needed, reused call to call */

static u_char *
ngx_http_ai_delta_test_buf(ngx_pool_t *pool, u_char **buf, size_t *size,
    size_t need)
{
    if (need > *size || *buf == NULL) {
        need = ngx_max(need, 2 * *size);
        need = ngx_max(need, 64);

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


static void
ngx_http_ai_delta_test_done(ngx_http_request_t *r, ngx_http_ai_ctx_t *ai)
{
    ngx_http_ai_delta_test_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_delta_test_module);

    if (ctx == NULL) {
        return;
    }

    ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                  "ai_test delta: calls=%ui held_max=%uz",
                  ctx->calls, ctx->held_max);
}


static ngx_int_t
ngx_http_ai_delta_test_preconfiguration(ngx_conf_t *cf)
{
    return ngx_http_ai_core_require(cf, "ngx_http_ai_delta_test_module");
}


static ngx_int_t
ngx_http_ai_delta_test_postconfiguration(ngx_conf_t *cf)
{
    if (ngx_http_ai_add_stage(cf, NGX_HTTP_AI_STAGE_GUARD,
                              ngx_http_ai_delta_test_stage)
        != NGX_OK
        || ngx_http_ai_add_delta_filter(cf, NGX_HTTP_AI_DELTA_GUARD,
                                        ngx_http_ai_delta_test_filter)
           != NGX_OK
        || ngx_http_ai_add_done(cf, NGX_HTTP_AI_DONE_SETTLE,
                                ngx_http_ai_delta_test_done)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void *
ngx_http_ai_delta_test_create_loc_conf(ngx_conf_t *cf)
{
    return ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_delta_test_loc_conf_t));
}


static char *
ngx_http_ai_delta_test_conf(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_delta_test_loc_conf_t *dlcf = conf;

    ngx_int_t   n;
    ngx_str_t  *value;

    value = cf->args->elts;

    dlcf->status = NGX_HTTP_BAD_REQUEST;

    if (ngx_strncmp(value[1].data, "mask=", 5) == 0) {
        dlcf->text.data = value[1].data + 5;
        dlcf->text.len = value[1].len - 5;

    } else if (ngx_strncmp(value[1].data, "abort=", 6) == 0) {
        dlcf->text.data = value[1].data + 6;
        dlcf->text.len = value[1].len - 6;
        dlcf->abort = 1;

    } else {
        return "has an unknown action";
    }

    if (dlcf->text.len == 0) {
        return "has an empty text";
    }

    if (cf->args->nelts == 3) {
        if (ngx_strncmp(value[2].data, "status=", 7) != 0) {
            return "has an unknown parameter";
        }

        n = ngx_atoi(value[2].data + 7, value[2].len - 7);
        if (n < 400 || n > 599) {
            return "has an invalid status";
        }

        dlcf->status = (ngx_uint_t) n;
    }

    return NGX_CONF_OK;
}
