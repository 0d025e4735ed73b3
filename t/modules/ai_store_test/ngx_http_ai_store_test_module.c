
/*
 * Copyright (C) AI Gateway authors
 *
 * Test-only: "ai_store_test NAME;" answers
 *   GET /?op=get|set|add|del|incr|reserve&key=K[&value=V][&delta=N]
 *        [&limit=N][&ttl=MS][&pin=MS][&showttl=1][&get=1]
 *        [&window=MS[&bucket=1][&stamp=N]]
 * with {"rc":"ok"|"not_found"|"error","value":..,"number":..,"ttl":..}
 * (windowed counters add "stamp" and, refused, "retry"; showttl shows
 * their ttl too)
 * through the core's asynchronous store interface (NGX_AGAIN is handled,
 * so any backend can be driven).  pin=MS pins what a get found and
 * answers from it MS later; get=1 makes an add give the value present
 * (as "value", with rc "not_found"); detached=N also adds N to the key
 * with a detached operation, not awaited.
 *
 * "ai_store_test_late_counter NAME;" (http) registers a core counter in
 * the postconfiguration, after the core's own configuration is done, and
 * counts every request in it (PREACCESS phase).
 */


#include "ngx_http_ai_core.h"


typedef struct {
    ngx_http_ai_store_t        *store;
    ngx_http_ai_counter_t      *ops;
} ngx_http_ai_store_test_loc_conf_t;


typedef struct {
    ngx_str_t                   late_name;
    ngx_http_ai_counter_t      *late;
} ngx_http_ai_store_test_main_conf_t;


typedef struct {
    ngx_http_ai_store_op_t     *op;
    ngx_str_t                   name;
    ngx_http_request_t         *request;
    ngx_msec_t                  hold;      /* pin=MS: answer after MS */
    ngx_event_t                 timer;
    unsigned                    show_ttl:1;
} ngx_http_ai_store_test_ctx_t;


typedef struct {
    ngx_str_t                   name;
    ngx_uint_t                  type;
} ngx_http_ai_store_test_op_t;


static ngx_http_ai_store_test_op_t  ngx_http_ai_store_test_ops[] = {
    { ngx_string("get"), NGX_HTTP_AI_STORE_GET },
    { ngx_string("set"), NGX_HTTP_AI_STORE_SET },
    { ngx_string("add"), NGX_HTTP_AI_STORE_ADD },
    { ngx_string("del"), NGX_HTTP_AI_STORE_DEL },
    { ngx_string("incr"), NGX_HTTP_AI_STORE_INCR },
    { ngx_string("reserve"), NGX_HTTP_AI_STORE_RESERVE },
    { ngx_null_string, 0 }
};


static ngx_int_t ngx_http_ai_store_test_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_ai_store_test_hold(ngx_http_request_t *r,
    ngx_http_ai_store_test_ctx_t *ctx);
static int64_t ngx_http_ai_store_test_int(ngx_str_t *val);
static void ngx_http_ai_store_test_done(ngx_http_ai_store_op_t *op);
static void ngx_http_ai_store_test_held(ngx_event_t *ev);
static void ngx_http_ai_store_test_cleanup(void *data);
static ngx_int_t ngx_http_ai_store_test_send(ngx_http_request_t *r,
    ngx_http_ai_store_test_ctx_t *ctx);
static ngx_int_t ngx_http_ai_store_test_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_ai_store_test_late(ngx_http_request_t *r);
static ngx_int_t ngx_http_ai_store_test_postconfiguration(ngx_conf_t *cf);
static void *ngx_http_ai_store_test_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_ai_store_test_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_ai_store_test(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


static ngx_command_t  ngx_http_ai_store_test_commands[] = {

    { ngx_string("ai_store_test"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_store_test,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_store_test_late_counter"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_ai_store_test_main_conf_t, late_name),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_ai_store_test_module_ctx = {
    ngx_http_ai_store_test_preconfiguration, /* preconfiguration */
    ngx_http_ai_store_test_postconfiguration, /* postconfiguration */

    ngx_http_ai_store_test_create_main_conf, /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_ai_store_test_create_loc_conf, /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_ai_store_test_module = {
    NGX_MODULE_V1,
    &ngx_http_ai_store_test_module_ctx,    /* module context */
    ngx_http_ai_store_test_commands,       /* module directives */
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
ngx_http_ai_store_test_handler(ngx_http_request_t *r)
{
    ngx_int_t                           rc;
    ngx_str_t                           val;
    ngx_http_ai_store_op_t             *op, *settle;
    ngx_http_ai_store_test_op_t        *t;
    ngx_http_ai_store_test_ctx_t       *ctx;
    ngx_http_ai_store_test_loc_conf_t  *slcf;

    slcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_store_test_module);

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_ai_store_test_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->request = r;

    ctx->op = ngx_http_ai_store_op(slcf->store, r, r->connection->log);
    if (ctx->op == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    op = ctx->op;
    op->handler = ngx_http_ai_store_test_done;
    op->data = ctx;

    if (ngx_http_arg(r, (u_char *) "op", 2, &ctx->name) != NGX_OK
        || ngx_http_arg(r, (u_char *) "key", 3, &op->key) != NGX_OK)
    {
        return NGX_HTTP_BAD_REQUEST;
    }

    if (ngx_http_arg(r, (u_char *) "value", 5, &op->value) != NGX_OK) {
        ngx_str_null(&op->value);
    }

    if (ngx_http_arg(r, (u_char *) "delta", 5, &val) == NGX_OK) {
        op->delta = ngx_http_ai_store_test_int(&val);
    }

    if (ngx_http_arg(r, (u_char *) "limit", 5, &val) == NGX_OK) {
        op->limit = ngx_http_ai_store_test_int(&val);
    }

    if (ngx_http_arg(r, (u_char *) "ttl", 3, &val) == NGX_OK) {
        op->ttl = (ngx_msec_t) ngx_atoi(val.data, val.len);
    }

    if (ngx_http_arg(r, (u_char *) "window", 6, &val) == NGX_OK) {
        op->window = (ngx_msec_t) ngx_atoi(val.data, val.len);
    }

    if (ngx_http_arg(r, (u_char *) "bucket", 6, &val) == NGX_OK) {
        op->bucket = 1;
    }

    if (ngx_http_arg(r, (u_char *) "stamp", 5, &val) == NGX_OK) {
        op->stamp = ngx_http_ai_store_test_int(&val);
    }

    if (ngx_http_arg(r, (u_char *) "pin", 3, &val) == NGX_OK) {
        op->pin = 1;
        ctx->hold = (ngx_msec_t) ngx_atoi(val.data, val.len);
    }

    if (ngx_http_arg(r, (u_char *) "showttl", 7, &val) == NGX_OK) {
        ctx->show_ttl = 1;
    }

    if (ngx_http_arg(r, (u_char *) "get", 3, &val) == NGX_OK) {
        op->get = 1;
    }

    for (t = ngx_http_ai_store_test_ops; t->name.len; t++) {
        if (t->name.len == ctx->name.len
            && ngx_strncmp(t->name.data, ctx->name.data, t->name.len) == 0)
        {
            break;
        }
    }

    if (t->name.len == 0) {
        return NGX_HTTP_BAD_REQUEST;
    }

    op->type = t->type;

    rc = ngx_http_ai_store_run(op);

    if (ngx_http_arg(r, (u_char *) "detached", 8, &val) == NGX_OK) {
        /* a settle after the answer: an op of its own, not awaited */

        settle = ngx_http_ai_store_op(slcf->store, NULL, ngx_cycle->log);
        if (settle == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        settle->type = NGX_HTTP_AI_STORE_INCR;
        settle->delta = ngx_http_ai_store_test_int(&val);

        settle->key.data = ngx_pstrdup(settle->pool, &op->key);
        if (settle->key.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        settle->key.len = op->key.len;

        if (ngx_http_ai_store_run(settle) == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    /* a core counter, for the metrics exporters' tests */
    ngx_http_ai_counter_incr(slcf->ops, 1);

    if (rc == NGX_AGAIN) {
        r->main->count++;
        return NGX_DONE;
    }

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (op->pinned && ctx->hold) {
        /* the answer is sent from the pinned value after a while */
        return ngx_http_ai_store_test_hold(r, ctx);
    }

    return ngx_http_ai_store_test_send(r, ctx);
}


static ngx_int_t
ngx_http_ai_store_test_hold(ngx_http_request_t *r,
    ngx_http_ai_store_test_ctx_t *ctx)
{
    ngx_pool_cleanup_t  *cln;

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_ai_store_test_cleanup;
    cln->data = ctx;

    ctx->timer.handler = ngx_http_ai_store_test_held;
    ctx->timer.data = ctx;
    ctx->timer.log = r->connection->log;

    ngx_add_timer(&ctx->timer, ctx->hold);

    r->main->count++;

    return NGX_DONE;
}


static void
ngx_http_ai_store_test_held(ngx_event_t *ev)
{
    ngx_http_ai_store_test_ctx_t *ctx = ev->data;

    ngx_http_finalize_request(ctx->request,
                              ngx_http_ai_store_test_send(ctx->request, ctx));
}


static void
ngx_http_ai_store_test_cleanup(void *data)
{
    ngx_http_ai_store_test_ctx_t *ctx = data;

    if (ctx->timer.timer_set) {
        ngx_del_timer(&ctx->timer);
    }
}


static int64_t
ngx_http_ai_store_test_int(ngx_str_t *val)
{
    if (val->len && val->data[0] == '-') {
        return -ngx_atoof(val->data + 1, val->len - 1);
    }

    return ngx_atoof(val->data, val->len);
}


static void
ngx_http_ai_store_test_done(ngx_http_ai_store_op_t *op)
{
    ngx_http_ai_store_test_ctx_t *ctx = op->data;

    ngx_http_finalize_request(ctx->request,
                              ngx_http_ai_store_test_send(ctx->request, ctx));
}


static ngx_int_t
ngx_http_ai_store_test_send(ngx_http_request_t *r,
    ngx_http_ai_store_test_ctx_t *ctx)
{
    ngx_int_t                rc;
    ngx_buf_t               *b;
    ngx_chain_t              out;
    const char              *res;
    ngx_http_ai_store_op_t  *op;

    op = ctx->op;

    res = (op->rc == NGX_OK) ? "ok"
          : (op->rc == NGX_DECLINED) ? "not_found" : "error";

    b = ngx_create_temp_buf(r->pool, 128 + op->value.len * 6
                                     + 5 * NGX_INT64_LEN);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_sprintf(b->last, "{\"rc\":\"%s\"", res);

    if ((op->rc == NGX_OK && op->type == NGX_HTTP_AI_STORE_GET)
        || (op->rc == NGX_DECLINED && op->type == NGX_HTTP_AI_STORE_ADD
            && op->get))
    {
        b->last = ngx_cpymem(b->last, ",\"value\":\"", 10);

        if (op->counter) {
            /* a counter is binary: shown as its number */
            b->last = ngx_sprintf(b->last, "%L", op->number);

        } else {
            b->last = (u_char *) ngx_escape_json(b->last, op->value.data,
                                                 op->value.len);
        }

        *b->last++ = '"';
    }

    if (op->type == NGX_HTTP_AI_STORE_INCR
        || op->type == NGX_HTTP_AI_STORE_RESERVE)
    {
        if (op->rc != NGX_ERROR) {
            b->last = ngx_sprintf(b->last, ",\"number\":%L", op->number);
        }
    }

    if (op->window && op->rc != NGX_ERROR) {
        if (!op->bucket && op->rc == NGX_OK) {
            b->last = ngx_sprintf(b->last, ",\"stamp\":%L", op->stamp);
        }

        if (op->rc == NGX_DECLINED) {
            b->last = ngx_sprintf(b->last, ",\"retry\":%M", op->retry);
        }

        if (ctx->show_ttl) {
            b->last = ngx_sprintf(b->last, ",\"ttl\":%M", op->ttl);
        }

    } else if ((op->rc == NGX_OK || op->get) && op->ttl && ctx->show_ttl) {
        b->last = ngx_sprintf(b->last, ",\"ttl\":%M", op->ttl);
    }

    if (op->pinned) {
        b->last = ngx_cpymem(b->last, ",\"pinned\":true", 14);
    }

    b->last = ngx_cpymem(b->last, "}\n", 2);
    b->last_buf = 1;
    b->last_in_chain = 1;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = b->last - b->pos;
    ngx_str_set(&r->headers_out.content_type, "application/json");

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


static ngx_int_t
ngx_http_ai_store_test_preconfiguration(ngx_conf_t *cf)
{
    return ngx_http_ai_core_require(cf, "ngx_http_ai_store_test_module");
}


static ngx_int_t
ngx_http_ai_store_test_late(ngx_http_request_t *r)
{
    ngx_http_ai_store_test_main_conf_t  *smcf;

    smcf = ngx_http_get_module_main_conf(r, ngx_http_ai_store_test_module);

    if (smcf->late && r == r->main) {
        ngx_http_ai_counter_incr(smcf->late, 1);
    }

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_ai_store_test_postconfiguration(ngx_conf_t *cf)
{
    ngx_str_t                            help;
    ngx_http_handler_pt                 *h;
    ngx_http_core_main_conf_t           *cmcf;
    ngx_http_ai_store_test_main_conf_t  *smcf;

    smcf = ngx_http_conf_get_module_main_conf(cf,
                                              ngx_http_ai_store_test_module);

    if (smcf->late_name.len == 0) {
        return NGX_OK;
    }

    ngx_str_set(&help, "Registered in a postconfiguration.");

    smcf->late = ngx_http_ai_counter_add(cf, &smcf->late_name, &help);
    if (smcf->late == NULL) {
        return NGX_ERROR;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PREACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_ai_store_test_late;

    return NGX_OK;
}


static void *
ngx_http_ai_store_test_create_main_conf(ngx_conf_t *cf)
{
    return ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_store_test_main_conf_t));
}


static void *
ngx_http_ai_store_test_create_loc_conf(ngx_conf_t *cf)
{
    return ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_store_test_loc_conf_t));
}


static char *
ngx_http_ai_store_test(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_store_test_loc_conf_t *slcf = conf;

    ngx_str_t                 *value, name, help;
    ngx_http_core_loc_conf_t  *clcf;

    value = cf->args->elts;

    ngx_str_set(&name, "ai_store_test_ops_total");
    ngx_str_set(&help, "Operations of the test-only store module.");

    slcf->ops = ngx_http_ai_counter_add(cf, &name, &help);
    if (slcf->ops == NULL) {
        return NGX_CONF_ERROR;
    }

    slcf->store = ngx_http_ai_store_add(cf, &value[1]);
    if (slcf->store == NULL) {
        return NGX_CONF_ERROR;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_ai_store_test_handler;

    return NGX_CONF_OK;
}
