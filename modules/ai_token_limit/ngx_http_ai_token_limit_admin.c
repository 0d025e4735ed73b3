
/*
 * Copyright (C) AI Gateway authors
 *
 * The budgets' admin endpoint (JSON), in a location of its own that the
 * operator protects (allow/deny, auth_request, a listen of its own):
 *
 *     GET  ...?zone=Z&key=K[&count=tokens]          what is left
 *     POST {"zone":"Z","key":"K"[,"count":"money"],
 *           "action":"top_up"|"set"|"reset"[,"amount":N]}
 *
 * top_up adds to what is left, set makes it the amount, reset forgets
 * the key (back to the configured amount).  Money amounts are US dollars.
 * Every answer is the budget's state:
 *
 *     {"zone":"Z","key":"K","count":"tokens","amount":A,"remaining":R}
 */


#include "ngx_http_ai_token_limit.h"


#define NGX_HTTP_AI_TL_READ             0
#define NGX_HTTP_AI_TL_TOP_UP           1
#define NGX_HTTP_AI_TL_SET              2
#define NGX_HTTP_AI_TL_RESET            3


typedef struct {
    ngx_http_ai_tl_budget_t    *budget;
    ngx_str_t                   name;        /* the client's key */
    ngx_str_t                   key;         /* in the store */
    ngx_uint_t                  action;
    int64_t                     amount;
    ngx_uint_t                  step;
    int64_t                     number;
    ngx_int_t                   rc;
    unsigned                    waiting:1;
    unsigned                    failed:1;
} ngx_http_ai_tl_admin_ctx_t;


static ngx_int_t ngx_http_ai_token_limit_admin_handler(
    ngx_http_request_t *r);
static void ngx_http_ai_token_limit_admin_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_ai_token_limit_admin_parse(ngx_http_request_t *r,
    ngx_http_ai_tl_admin_ctx_t *ctx, ngx_str_t *zone, ngx_str_t *count,
    ngx_str_t *body);
static ngx_int_t ngx_http_ai_token_limit_admin_start(ngx_http_request_t *r,
    ngx_http_ai_tl_admin_ctx_t *ctx, ngx_str_t *zone, ngx_str_t *count);
static ngx_int_t ngx_http_ai_token_limit_admin_run(ngx_http_request_t *r,
    ngx_http_ai_tl_admin_ctx_t *ctx);
static void ngx_http_ai_token_limit_admin_done(ngx_http_ai_store_op_t *op);
static ngx_int_t ngx_http_ai_token_limit_admin_send(ngx_http_request_t *r,
    ngx_http_ai_tl_admin_ctx_t *ctx);
static u_char *ngx_http_ai_token_limit_admin_amount(u_char *p,
    ngx_http_ai_tl_budget_t *b, int64_t n);


static const char  *ngx_http_ai_tl_admin_counts[] = {
    "tokens", "prompt", "completion", "requests", "concurrent", "money"
};


char *
ngx_http_ai_token_limit_admin(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_tl_loc_conf_t *tlcf = conf;

    ngx_http_core_loc_conf_t  *clcf;

    tlcf->admin = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_ai_token_limit_admin_handler;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_ai_token_limit_admin_handler(ngx_http_request_t *r)
{
    u_char                      *dst, *src;
    ngx_int_t                    rc;
    ngx_str_t                    zone, count, key;
    ngx_http_ai_tl_admin_ctx_t  *ctx;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_ai_tl_admin_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_set_ctx(r, ctx, ngx_http_ai_token_limit_module);

    if (r->method == NGX_HTTP_POST) {
        rc = ngx_http_read_client_request_body(r,
                                       ngx_http_ai_token_limit_admin_body);

        if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
            return rc;
        }

        return NGX_DONE;
    }

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return ngx_http_ai_error(r, NGX_HTTP_NOT_ALLOWED, NULL, NULL, NULL,
                                 "GET to read a budget, POST to change it");
    }

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_arg(r, (u_char *) "zone", 4, &zone) != NGX_OK
        || ngx_http_arg(r, (u_char *) "key", 3, &key) != NGX_OK)
    {
        return ngx_http_ai_error(r, NGX_HTTP_BAD_REQUEST, NULL, NULL, NULL,
                                 "\"zone\" and \"key\" are required");
    }

    if (ngx_http_arg(r, (u_char *) "count", 5, &count) != NGX_OK) {
        ngx_str_null(&count);
    }

    /* the key as given, unescaped */

    ctx->name.data = ngx_pnalloc(r->pool, key.len);
    if (ctx->name.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    dst = ctx->name.data;
    src = key.data;

    ngx_unescape_uri(&dst, &src, key.len, NGX_UNESCAPE_URI);
    ctx->name.len = dst - ctx->name.data;

    ctx->action = NGX_HTTP_AI_TL_READ;

    rc = ngx_http_ai_token_limit_admin_start(r, ctx, &zone, &count);

    if (rc == NGX_DONE) {
        r->main->count++;
    }

    return rc;
}


static void
ngx_http_ai_token_limit_admin_body(ngx_http_request_t *r)
{
    u_char                      *p;
    size_t                       len;
    ngx_int_t                    rc;
    ngx_str_t                    body, zone, count;
    ngx_chain_t                 *cl;
    ngx_http_ai_tl_admin_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_token_limit_module);

    if (r->request_body == NULL || r->request_body->temp_file) {
        ngx_http_finalize_request(r,
            ngx_http_ai_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE, NULL,
                              NULL, NULL, "the request is too large"));
        return;
    }

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        len += cl->buf->last - cl->buf->pos;
    }

    body.data = ngx_pnalloc(r->pool, len + 1);
    if (body.data == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    p = body.data;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        p = ngx_cpymem(p, cl->buf->pos, cl->buf->last - cl->buf->pos);
    }

    *p = '\0';
    body.len = len;

    /* NGX_DONE: answered, with ctx->rc */

    if (ngx_http_ai_token_limit_admin_parse(r, ctx, &zone, &count, &body)
        == NGX_DONE)
    {
        ngx_http_finalize_request(r, ctx->rc);
        return;
    }

    rc = ngx_http_ai_token_limit_admin_start(r, ctx, &zone, &count);

    if (rc == NGX_DONE) {
        /* an operation is under way: its handler finalizes */
        return;
    }

    ngx_http_finalize_request(r, rc);
}


/* NGX_OK, or NGX_DONE: answered (an error), ctx->rc to finalize with */

static ngx_int_t
ngx_http_ai_token_limit_admin_parse(ngx_http_request_t *r,
    ngx_http_ai_tl_admin_ctx_t *ctx, ngx_str_t *zone, ngx_str_t *count,
    ngx_str_t *body)
{
    u_char      *p;
    cJSON       *json, *z, *k, *c, *a, *n;
    ngx_str_t    s;
    const char  *param, *msg;

    param = NULL;

    json = cJSON_ParseWithLength((char *) body->data, body->len);

    if (json == NULL || !cJSON_IsObject(json)) {
        msg = "the body is not a JSON object";
        goto invalid;
    }

    z = cJSON_GetObjectItemCaseSensitive(json, "zone");
    k = cJSON_GetObjectItemCaseSensitive(json, "key");
    c = cJSON_GetObjectItemCaseSensitive(json, "count");
    a = cJSON_GetObjectItemCaseSensitive(json, "action");
    n = cJSON_GetObjectItemCaseSensitive(json, "amount");

    if (!cJSON_IsString(z) || !cJSON_IsString(k) || !cJSON_IsString(a)
        || (c && !cJSON_IsString(c)))
    {
        msg = "\"zone\", \"key\" and \"action\" are required strings";
        goto invalid;
    }

    if (ngx_strcmp(a->valuestring, "top_up") == 0) {
        ctx->action = NGX_HTTP_AI_TL_TOP_UP;

    } else if (ngx_strcmp(a->valuestring, "set") == 0) {
        ctx->action = NGX_HTTP_AI_TL_SET;

    } else if (ngx_strcmp(a->valuestring, "reset") == 0) {
        ctx->action = NGX_HTTP_AI_TL_RESET;

    } else {
        param = "action";
        msg = "\"action\" is \"top_up\", \"set\" or \"reset\"";
        goto invalid;
    }

    if (ctx->action != NGX_HTTP_AI_TL_RESET) {
        /* tokens or dollars, as micro-units (tokens are scaled back when
         * the budget is known) */

        param = "amount";
        msg = "\"amount\" is required: a number, not negative";

        if (cJSON_IsNumber(n) && n->valuedouble >= 0
            && n->valuedouble < 1e12)
        {
            /* exact for the numbers JSON writers print */
            s.data = (u_char *) ngx_pnalloc(r->pool, 64);
            if (s.data == NULL) {
                goto failed;
            }

            s.len = snprintf((char *) s.data, 64, "%.6f", n->valuedouble);

        } else if (cJSON_IsString(n)) {
            s.data = (u_char *) n->valuestring;
            s.len = ngx_strlen(n->valuestring);

        } else {
            goto invalid;
        }

        if (ngx_http_ai_token_limit_money(&s, &ctx->amount) != NGX_OK) {
            msg = "invalid \"amount\"";
            goto invalid;
        }
    }

    /* the strings outlive the tree */

    s.len = ngx_strlen(z->valuestring) + ngx_strlen(k->valuestring)
            + (c ? ngx_strlen(c->valuestring) : 0);

    p = ngx_pnalloc(r->pool, s.len + 1);
    if (p == NULL) {
        goto failed;
    }

    zone->data = p;
    zone->len = ngx_strlen(z->valuestring);
    p = ngx_cpymem(p, z->valuestring, zone->len);

    ctx->name.data = p;
    ctx->name.len = ngx_strlen(k->valuestring);
    p = ngx_cpymem(p, k->valuestring, ctx->name.len);

    count->data = p;
    count->len = c ? ngx_strlen(c->valuestring) : 0;

    if (c) {
        ngx_memcpy(p, c->valuestring, count->len);
    }

    cJSON_Delete(json);

    return NGX_OK;

invalid:

    cJSON_Delete(json);

    ctx->rc = ngx_http_ai_error(r, NGX_HTTP_BAD_REQUEST, NULL, param, NULL,
                                "%s", msg);
    return NGX_DONE;

failed:

    cJSON_Delete(json);

    ctx->rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
    return NGX_DONE;
}


static ngx_int_t
ngx_http_ai_token_limit_admin_start(ngx_http_request_t *r,
    ngx_http_ai_tl_admin_ctx_t *ctx, ngx_str_t *zone, ngx_str_t *count)
{
    u_char                      *p;
    ngx_uint_t                   i, c;
    ngx_http_ai_tl_budget_t     *b;
    ngx_http_ai_tl_main_conf_t  *tmcf;

    tmcf = ngx_http_get_module_main_conf(r, ngx_http_ai_token_limit_module);

    c = NGX_HTTP_AI_TL_TOKENS;

    if (count->len) {
        for (c = 0; c < 6; c++) {
            if (ngx_strlen(ngx_http_ai_tl_admin_counts[c]) == count->len
                && ngx_strncmp(ngx_http_ai_tl_admin_counts[c], count->data,
                               count->len)
                   == 0)
            {
                break;
            }
        }
    }

    b = tmcf->budgets.elts;

    for (i = 0; i < tmcf->budgets.nelts; i++) {
        if (b[i].count == c
            && b[i].zone->name.len == zone->len
            && ngx_strncmp(b[i].zone->name.data, zone->data, zone->len) == 0)
        {
            ctx->budget = &b[i];
            break;
        }
    }

    if (ctx->budget == NULL) {
        return ngx_http_ai_error(r, NGX_HTTP_NOT_FOUND, NULL, "zone",
                                 "budget_not_found", "no budget \"%V\" "
                                 "counting %s", zone,
                                 c < 6 ? ngx_http_ai_tl_admin_counts[c]
                                       : "that");
    }

    if (ctx->name.len == 0 || ctx->name.len > 1024) {
        return ngx_http_ai_error(r, NGX_HTTP_BAD_REQUEST, NULL, "key", NULL,
                                 "\"key\" must be 1 to 1024 bytes");
    }

    if (ctx->budget->count != NGX_HTTP_AI_TL_MONEY) {
        /* amounts were read as micro-units */

        if (ctx->amount % 1000000) {
            return ngx_http_ai_error(r, NGX_HTTP_BAD_REQUEST, NULL,
                                     "amount", NULL, "a token \"amount\" "
                                     "is a whole number");
        }

        ctx->amount /= 1000000;
    }

    ctx->key.len = ctx->budget->prefix.len + ctx->name.len;
    ctx->key.data = ngx_pnalloc(r->pool, ctx->key.len);
    if (ctx->key.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(ctx->key.data, ctx->budget->prefix.data,
                   ctx->budget->prefix.len);
    ngx_memcpy(p, ctx->name.data, ctx->name.len);

    return ngx_http_ai_token_limit_admin_run(r, ctx);
}


/*
 * The steps of an action: read is INCR 0; top_up INCR -amount; set is
 * DEL then INCR (budget - amount); reset DEL then INCR 0.  Returns
 * NGX_DONE while a step is under way, else what the handler returns.
 */

static ngx_int_t
ngx_http_ai_token_limit_admin_run(ngx_http_request_t *r,
    ngx_http_ai_tl_admin_ctx_t *ctx)
{
    ngx_int_t                rc;
    ngx_http_ai_store_op_t  *op;

    for ( ;; ) {

        if (ctx->failed) {
            return ngx_http_ai_error(r, NGX_HTTP_SERVICE_UNAVAILABLE, NULL,
                                     NULL, NULL, "the store of \"%V\" "
                                     "failed", &ctx->budget->zone->name);
        }

        if (ctx->step == 2
            || (ctx->step == 1 && ctx->action != NGX_HTTP_AI_TL_SET
                && ctx->action != NGX_HTTP_AI_TL_RESET))
        {
            return ngx_http_ai_token_limit_admin_send(r, ctx);
        }

        op = ngx_http_ai_store_op(ctx->budget->zone->store, r,
                                  r->connection->log);
        if (op == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        op->key = ctx->key;
        op->pool = r->pool;
        op->handler = ngx_http_ai_token_limit_admin_done;
        op->data = ctx;
        op->type = NGX_HTTP_AI_STORE_INCR;

        if (ctx->step == 0) {
            switch (ctx->action) {

            case NGX_HTTP_AI_TL_TOP_UP:
                op->delta = -ctx->amount;
                break;

            case NGX_HTTP_AI_TL_SET:
            case NGX_HTTP_AI_TL_RESET:
                op->type = NGX_HTTP_AI_STORE_DEL;
                break;

            default: /* NGX_HTTP_AI_TL_READ */
                op->delta = 0;
            }

        } else {
            op->delta = (ctx->action == NGX_HTTP_AI_TL_SET)
                        ? ctx->budget->amount - ctx->amount : 0;
        }

        rc = ngx_http_ai_store_run(op);

        if (rc == NGX_AGAIN) {
            ctx->waiting = 1;
            return NGX_DONE;
        }

        if (rc == NGX_ERROR) {
            op->rc = NGX_ERROR;
        }

        ngx_http_ai_token_limit_admin_done(op);
    }
}


static void
ngx_http_ai_token_limit_admin_done(ngx_http_ai_store_op_t *op)
{
    ngx_int_t                    rc;
    ngx_http_request_t          *r;
    ngx_http_ai_tl_admin_ctx_t  *ctx;

    ctx = op->data;
    r = op->request;

    if (op->rc == NGX_ERROR) {
        ctx->failed = 1;

    } else if (op->type == NGX_HTTP_AI_STORE_INCR) {
        ctx->number = op->number;

        ngx_http_ai_token_limit_gauge(
            ngx_http_get_module_main_conf(r, ngx_http_ai_token_limit_module),
            &ctx->budget->zone->name, ctx->budget->count, &ctx->name,
            ctx->budget->amount - op->number);
    }

    ctx->step++;

    if (!ctx->waiting) {
        return;
    }

    ctx->waiting = 0;

    rc = ngx_http_ai_token_limit_admin_run(r, ctx);

    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }
}


static ngx_int_t
ngx_http_ai_token_limit_admin_send(ngx_http_request_t *r,
    ngx_http_ai_tl_admin_ctx_t *ctx)
{
    u_char                   *p;
    ngx_int_t                 rc;
    ngx_buf_t                *b;
    ngx_chain_t               out;
    ngx_http_ai_tl_budget_t  *budget;

    budget = ctx->budget;

    b = ngx_create_temp_buf(r->pool, 128 + budget->zone->name.len * 6
                                     + ctx->name.len * 6 + 2 * NGX_INT64_LEN);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(b->last, "{\"zone\":\"", 9);
    p = (u_char *) ngx_http_ai_escape_json(p, budget->zone->name.data,
                                           budget->zone->name.len);
    p = ngx_cpymem(p, "\",\"key\":\"", 9);
    p = (u_char *) ngx_http_ai_escape_json(p, ctx->name.data,
                                           ctx->name.len);
    p = ngx_sprintf(p, "\",\"count\":\"%s\",\"amount\":",
                    ngx_http_ai_tl_admin_counts[budget->count]);
    p = ngx_http_ai_token_limit_admin_amount(p, budget, budget->amount);
    p = ngx_cpymem(p, ",\"remaining\":", 13);
    p = ngx_http_ai_token_limit_admin_amount(p, budget,
                                             budget->amount - ctx->number);
    p = ngx_cpymem(p, "}\n", 2);

    b->last = p;
    b->last_buf = (r == r->main);
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


/* tokens as an integer, money as dollars with 6 decimals */

static u_char *
ngx_http_ai_token_limit_admin_amount(u_char *p, ngx_http_ai_tl_budget_t *b,
    int64_t n)
{
    if (b->count != NGX_HTTP_AI_TL_MONEY) {
        return ngx_sprintf(p, "%L", n);
    }

    if (n < 0) {
        *p++ = '-';
        n = -n;
    }

    return ngx_sprintf(p, "%L.%06L", n / 1000000, n % 1000000);
}
