
/*
 * Copyright (C) AI Gateway authors
 *
 * ai_proxy: OpenAI's Responses API ("POST .../responses", "GET" and
 * "DELETE .../responses/{id}").  OpenAI and Azure targets get it in its
 * own format (a response lives at the provider, under the key that made
 * it); the others get it translated by the core's format layer, without
 * state.  With "ai_proxy_responses_store", the target and the key that
 * created a response are kept in a core store by its id, with the client's
 * consumer, so that "previous_response_id" and the reads and deletions of
 * a response go where the response is, from any worker, and only for the
 * consumer that made it:
 *
 *     ai_proxy_responses_store NAME [ttl=30d];
 */


#include "ngx_http_ai_proxy.h"


#define NGX_HTTP_AI_PROXY_PIN_PREFIX    "ai_response:"


static ngx_int_t ngx_http_ai_proxy_pin_key(ngx_str_t *id, ngx_pool_t *pool,
    ngx_str_t *key);
static void ngx_http_ai_proxy_pin_done(ngx_http_ai_store_op_t *op);
static ngx_int_t ngx_http_ai_proxy_pin_use(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ai, ngx_http_ai_proxy_ctx_t *ctx, ngx_str_t *value);
static ngx_int_t ngx_http_ai_proxy_not_found(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ai, ngx_str_t *id);


/*
 * The format a target gets a request of the endpoint in: the Responses
 * API itself for OpenAI and Azure (but "responses=chat" ones), else the
 * target's own.
 */

ngx_uint_t
ngx_http_ai_proxy_format(ngx_http_ai_proxy_target_t *t, ngx_uint_t endpoint)
{
    if ((endpoint == NGX_HTTP_AI_EP_RESPONSES
         || endpoint == NGX_HTTP_AI_EP_RESPONSE)
        && (t->provider == NGX_HTTP_AI_PROXY_OPENAI
            || t->provider == NGX_HTTP_AI_PROXY_AZURE)
        && !t->chat_only)
    {
        return NGX_HTTP_AI_FMT_RESPONSES;
    }

    return t->format;
}


/* the {id} of ".../responses/{id}" */

void
ngx_http_ai_proxy_response_id(ngx_http_request_t *r, ngx_str_t *id)
{
    u_char  *p, *last;

    last = r->uri.data + r->uri.len;

    if (last > r->uri.data && last[-1] == '/') {
        last--;
    }

    for (p = last; p > r->uri.data && p[-1] != '/'; p--) { /* void */ }

    id->data = p;
    id->len = last - p;
}


/* the attempt's request to an OpenAI or Azure target, in its format */

ngx_int_t
ngx_http_ai_proxy_prepare_responses(ngx_http_request_t *r,
    ngx_http_ai_proxy_ctx_t *ctx, ngx_str_t *model)
{
    cJSON                            *store;
    u_char                           *p;
    size_t                            len;
    ngx_int_t                         rc;
    ngx_str_t                         id, err, version;
    ngx_http_ai_ctx_t                *ai;
    ngx_http_ai_proxy_target_t       *t;
    ngx_http_ai_translate_request_t   tr;

    ai = ctx->ai;
    t = ctx->target;

    ngx_str_null(&id);
    ngx_str_null(&ctx->body);

    if (ai->req.endpoint == NGX_HTTP_AI_EP_RESPONSE) {
        ngx_http_ai_proxy_response_id(r, &id);

    } else {
        /*
         * "store": false, read now: a stream's request tree is freed at
         * its header, before the event that records the response's id
         */

        store = cJSON_GetObjectItemCaseSensitive(
                    ngx_http_ai_request_tree(&ai->req), "store");
        ctx->no_store = cJSON_IsFalse(store);

        ngx_memzero(&tr, sizeof(ngx_http_ai_translate_request_t));

        tr.from = NGX_HTTP_AI_FMT_RESPONSES;
        tr.to = NGX_HTTP_AI_FMT_RESPONSES;
        tr.endpoint = NGX_HTTP_AI_EP_RESPONSES;
        tr.json = ngx_http_ai_request_tree(&ai->req);
        tr.body = ai->req.body;
        tr.model = *model;
        tr.stream = ai->req.stream;
        tr.prepend = ctx->conf->prepend;
        tr.append = ctx->conf->append;

        rc = ngx_http_ai_translate_request(r->pool, &tr, &ctx->body, &err);

        if (rc == NGX_DECLINED) {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "ai_proxy: the request cannot go to target "
                          "\"%V\": %V", &t->name, &err);

            ai->error_message = err;
            return NGX_DECLINED;
        }

        if (rc != NGX_OK) {
            return NGX_ERROR;
        }
    }

    /*
     * OpenAI: {base}/responses[/{id}]; Azure: {base}/openai/responses
     * [/{id}]?api-version=...; the client's arguments of a GET follow
     */

    version = t->api_version;

    if (version.len == 0) {
        ngx_str_set(&version, "2025-04-01-preview");
    }

    len = t->base.len + sizeof("/openai/responses/") - 1 + 3 * id.len
          + sizeof("?api-version=") - 1 + version.len + 1 + r->args.len;

    ctx->uri.data = ngx_pnalloc(r->pool, len);
    if (ctx->uri.data == NULL) {
        return NGX_ERROR;
    }

    if (t->provider == NGX_HTTP_AI_PROXY_AZURE) {
        p = ngx_sprintf(ctx->uri.data, "%V/openai/responses", &t->base);

    } else {
        p = ngx_sprintf(ctx->uri.data, "%V/responses", &t->base);
    }

    if (id.len) {
        *p++ = '/';
        p = (u_char *) ngx_escape_uri(p, id.data, id.len,
                                      NGX_ESCAPE_URI_COMPONENT);
    }

    if (t->provider == NGX_HTTP_AI_PROXY_AZURE) {
        p = ngx_sprintf(p, "?api-version=%V", &version);
    }

    if (id.len && r->args.len) {
        *p++ = (t->provider == NGX_HTTP_AI_PROXY_AZURE) ? '&' : '?';
        p = ngx_cpymem(p, r->args.data, r->args.len);
    }

    ctx->uri.len = p - ctx->uri.data;

    /* the key: no other header of the provider's */

    if (ctx->key) {
        ctx->headers = ctx->key->header;

    } else {
        ngx_str_set(&ctx->headers, "");
    }

    if (ai->req.stream && ai->req.endpoint == NGX_HTTP_AI_EP_RESPONSES) {
        ngx_str_set(&ctx->accept, "text/event-stream");

    } else {
        ngx_str_set(&ctx->accept, "application/json");
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "ai_proxy: attempt %ui: target \"%V\" key #%ui model "
                  "\"%V\" (responses)", ai->attempts + 1, &t->name,
                  ctx->key ? ctx->key->index : 0, model);

    return NGX_OK;
}


char *
ngx_http_ai_proxy_responses_store(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_ai_proxy_loc_conf_t *plcf = conf;

    ngx_str_t   *value, s;
    ngx_msec_t   ttl;
    ngx_uint_t   i;

    if (plcf->responses_store != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 3 && ngx_strncmp(value[1].data, "off", 3) == 0) {
        plcf->responses_store = NULL;
        return NGX_CONF_OK;
    }

    plcf->responses_store = ngx_http_ai_store_add(cf, &value[1]);
    if (plcf->responses_store == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "ttl=", 4) == 0) {
            s.data = value[i].data + 4;
            s.len = value[i].len - 4;

            ttl = ngx_parse_time(&s, 0);

            if (ttl == (ngx_msec_t) NGX_ERROR || ttl == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"ai_proxy_responses_store\": invalid "
                                   "\"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            plcf->responses_ttl = ttl;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ai_proxy_responses_store\": invalid parameter "
                           "\"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * The stage, before the cache (a continuation is answered by nobody but
 * its consumer's): a new response that names a stored one
 * (previous_response_id) goes to the target and the key that created it;
 * one the store does not hold for the consumer is refused as not found.
 */

ngx_int_t
ngx_http_ai_proxy_pin(ngx_http_request_t *r, ngx_http_ai_ctx_t *ai)
{
    ngx_http_ai_proxy_ctx_t       *ctx;
    ngx_http_ai_proxy_loc_conf_t  *plcf;

    if (ai->req.endpoint != NGX_HTTP_AI_EP_RESPONSES) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_proxy_module);
    plcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_proxy_module);

    if (ctx == NULL || ctx->conf != plcf) {
        return NGX_DECLINED;
    }

    return ngx_http_ai_proxy_pin_lookup(r, ai, ctx);
}


/*
 * The store asked for the target and key of the response a request names
 * (previous_response_id, or .../responses/{id}): NGX_DECLINED, go on
 * (pinned when found); NGX_AGAIN, pending (ngx_http_ai_proxy_pin_done()
 * goes on); else a status: a response the store does not hold for the
 * consumer is answered as OpenAI answers an id it does not know (404 to
 * read or delete it, 400 to continue it); one the store cannot tell of
 * (it failed) 503.
 */

ngx_int_t
ngx_http_ai_proxy_pin_lookup(ngx_http_request_t *r, ngx_http_ai_ctx_t *ai,
    ngx_http_ai_proxy_ctx_t *ctx)
{
    ngx_int_t                      rc;
    ngx_str_t                      id;
    const char                    *s;
    ngx_http_ai_store_op_t        *op;
    ngx_http_ai_proxy_loc_conf_t  *plcf;

    plcf = ctx->conf;

    if (ctx->pin_checked) {
        return NGX_DECLINED;
    }

    if (ai->req.endpoint == NGX_HTTP_AI_EP_RESPONSE) {
        ngx_http_ai_proxy_response_id(r, &id);

    } else if (ai->req.endpoint == NGX_HTTP_AI_EP_RESPONSES
               && ai->req.parsed)
    {
        s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
                                   ngx_http_ai_request_tree(&ai->req),
                                   "previous_response_id"));
        if (s == NULL || *s == '\0') {
            return NGX_DECLINED;
        }

        id.data = (u_char *) s;
        id.len = ngx_strlen(s);

    } else {
        return NGX_DECLINED;
    }

    if (plcf->responses_store == NULL || ctx->candidates == 0) {
        return NGX_DECLINED;
    }

    op = ctx->pin_op;

    if (op == NULL) {
        op = ngx_http_ai_store_op(plcf->responses_store, r,
                                  r->connection->log);
        if (op == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        op->type = NGX_HTTP_AI_STORE_GET;
        op->handler = ngx_http_ai_proxy_pin_done;
        op->data = r;

        if (ngx_http_ai_proxy_pin_key(&id, r->pool, &op->key)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx->pin_op = op;

        rc = ngx_http_ai_store_run(op);

        if (rc == NGX_AGAIN) {
            return NGX_AGAIN;
        }

        if (rc == NGX_ERROR) {
            op->rc = NGX_ERROR;
        }

    } else if (op->pending) {
        return NGX_AGAIN;
    }

    ctx->pin_checked = 1;

    switch (op->rc) {

    case NGX_OK:
        rc = ngx_http_ai_proxy_pin_use(r, ai, ctx, &op->value);

        if (rc == NGX_OK) {
            return NGX_DECLINED;
        }

        if (rc == NGX_ABORT) {
            ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                          "ai_proxy: the response named is another "
                          "consumer's");
            return ngx_http_ai_proxy_not_found(r, ai, &id);
        }

        /* a target of another location or configuration: not here */

        break;

    case NGX_DECLINED:
        break;

    default:
        /* whose the response is cannot be known: not sent anywhere */

        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ai_proxy: the responses store failed; a request "
                      "naming a response is refused");

        if (ai->req.endpoint == NGX_HTTP_AI_EP_RESPONSE) {
            rc = ngx_http_discard_request_body(r);

            if (rc != NGX_OK) {
                return rc;
            }
        }

        return ngx_http_ai_error(r, NGX_HTTP_SERVICE_UNAVAILABLE, NULL, NULL,
                                 NULL, "the responses store is unavailable, "
                                 "a request naming a response cannot be "
                                 "routed");
    }

    /*
     * not found (never made here, another consumer's entry, expired or
     * evicted), or its target is not here: as OpenAI answers an id it
     * does not know, never routed with a key of the gateway's
     */

    return ngx_http_ai_proxy_not_found(r, ai, &id);
}


/*
 * The store answered later: a stage is resumed; a read or a deletion of a
 * response (suspended in the content handler) goes on here.
 */

static void
ngx_http_ai_proxy_pin_done(ngx_http_ai_store_op_t *op)
{
    ngx_int_t                 rc;
    ngx_connection_t         *c;
    ngx_http_request_t       *r;
    ngx_http_ai_ctx_t        *ai;
    ngx_http_ai_proxy_ctx_t  *ctx;

    r = op->data;
    ai = ngx_http_ai_get_ctx(r);

    if (ai == NULL || ai->req.endpoint != NGX_HTTP_AI_EP_RESPONSE) {
        ngx_http_ai_resume(r);
        return;
    }

    c = r->connection;
    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_proxy_module);

    rc = ngx_http_ai_proxy_pin_lookup(r, ai, ctx);

    if (rc == NGX_DECLINED) {
        rc = ngx_http_ai_proxy_go(r, ctx);
    }

    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


/*
 * "TARGET KEY CONSUMER": the candidates become that target, the key that
 * one; NGX_ABORT when the response is another consumer's, NGX_DECLINED
 * when its target is not here.
 */

static ngx_int_t
ngx_http_ai_proxy_pin_use(ngx_http_request_t *r, ngx_http_ai_ctx_t *ai,
    ngx_http_ai_proxy_ctx_t *ctx, ngx_str_t *value)
{
    u_char                       *sp, *ks, *last;
    ngx_int_t                     key;
    ngx_str_t                     name;
    ngx_uint_t                    i;
    ngx_http_ai_proxy_target_t  **t;

    last = value->data + value->len;

    sp = ngx_strlchr(value->data, last, ' ');
    if (sp == NULL) {
        return NGX_DECLINED;
    }

    name.data = value->data;
    name.len = sp - value->data;

    ks = sp + 1;

    sp = ngx_strlchr(ks, last, ' ');
    if (sp == NULL) {
        return NGX_DECLINED;
    }

    key = ngx_atoi(ks, sp - ks);
    if (key == NGX_ERROR) {
        return NGX_DECLINED;
    }

    sp++;

    if ((size_t) (last - sp) != ai->consumer.len
        || (ai->consumer.len
            && ngx_strncmp(sp, ai->consumer.data, ai->consumer.len) != 0))
    {
        return NGX_ABORT;
    }

    t = ctx->conf->targets->elts;

    for (i = 0; i < ctx->conf->targets->nelts; i++) {
        if (t[i]->name.len != name.len
            || ngx_strncmp(t[i]->name.data, name.data, name.len) != 0
            || ngx_http_ai_proxy_format(t[i], NGX_HTTP_AI_EP_RESPONSES)
               != NGX_HTTP_AI_FMT_RESPONSES
            || (ngx_uint_t) key > t[i]->keys.nelts)
        {
            continue;
        }

        ctx->candidates = (uint64_t) 1 << i;
        ctx->pin_key = key;

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "ai_proxy: the response is pinned to target \"%V\" "
                      "key #%i", &t[i]->name, key);

        return NGX_OK;
    }

    return NGX_DECLINED;
}


/*
 * A response the store does not know, or another consumer's: a read or a
 * deletion gets 404, a new response naming it OpenAI's 400.
 */

static ngx_int_t
ngx_http_ai_proxy_not_found(ngx_http_request_t *r, ngx_http_ai_ctx_t *ai,
    ngx_str_t *id)
{
    ngx_int_t  rc;

    if (ai->req.endpoint == NGX_HTTP_AI_EP_RESPONSES) {
        return ngx_http_ai_error(r, NGX_HTTP_BAD_REQUEST,
                                 "invalid_request_error",
                                 "previous_response_id",
                                 "previous_response_not_found",
                                 "Previous response with id '%V' not found.",
                                 ngx_http_ai_safe_str(r->pool, id));
    }

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_ai_error(r, NGX_HTTP_NOT_FOUND, "invalid_request_error",
                             NULL, NULL, "Response with id '%V' not found.",
                             ngx_http_ai_safe_str(r->pool, id));
}


/*
 * A response of an OpenAI or Azure target: its id, its target and key
 * into the store (a detached SET, the answer is not delayed), unless the
 * client asked OpenAI not to store it ("store": false).
 */

void
ngx_http_ai_proxy_pin_record(ngx_http_request_t *r, ngx_http_ai_ctx_t *ai,
    ngx_http_ai_proxy_ctx_t *ctx, ngx_http_ai_event_t *ev)
{
    cJSON                         *json, *res;
    ngx_str_t                      id;
    const char                    *s;
    ngx_http_ai_store_op_t        *op;
    ngx_http_ai_proxy_loc_conf_t  *plcf;

    plcf = ctx->conf;

    if (ctx->pin_recorded || plcf->responses_store == NULL
        || ai->req.endpoint != NGX_HTTP_AI_EP_RESPONSES
        || ai->upstream_format != NGX_HTTP_AI_FMT_RESPONSES
        || ctx->target == NULL
        || r->headers_out.status != NGX_HTTP_OK
        || ev->data.len == 0)
    {
        return;
    }

    if (ai->is_sse) {
        if (!(ev->name.len == sizeof("response.created") - 1
              && ngx_strncmp(ev->name.data, "response.created",
                             ev->name.len) == 0))
        {
            return;
        }

    } else if (!ev->done) {
        return;
    }

    ctx->pin_recorded = 1;

    if (ctx->no_store) {
        return;
    }

    json = ngx_http_ai_event_json(ev);
    res = ai->is_sse ? cJSON_GetObjectItemCaseSensitive(json, "response")
                     : json;

    s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(res, "id"));

    if (s == NULL || *s == '\0' || ngx_strlen(s) > 256) {
        return;
    }

    id.data = (u_char *) s;
    id.len = ngx_strlen(s);

    op = ngx_http_ai_store_op(plcf->responses_store, NULL,
                              ngx_cycle->log);
    if (op == NULL) {
        return;
    }

    op->type = NGX_HTTP_AI_STORE_SET;
    op->ttl = plcf->responses_ttl;

    if (ngx_http_ai_proxy_pin_key(&id, op->pool, &op->key) != NGX_OK)
    {
        goto failed;
    }

    op->value.data = ngx_pnalloc(op->pool,
                                 ctx->target->name.len + 1 + NGX_INT_T_LEN
                                 + 1 + ai->consumer.len);
    if (op->value.data == NULL) {
        goto failed;
    }

    op->value.len = ngx_sprintf(op->value.data, "%V %ui %V",
                                &ctx->target->name,
                                ctx->key ? ctx->key->index : 0,
                                &ai->consumer)
                    - op->value.data;

    /* a detached op completes by itself, its pool freed */

    if (ngx_http_ai_store_run(op) == NGX_ERROR) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ai_proxy: the response id could not be stored");
    }

    return;

failed:

    /* not started: the op's own pool goes with it */
    ngx_destroy_pool(op->pool);
}


/*
 * "ai_response:" ID: the id alone, so that another consumer naming it is
 * told apart from an id the store does not know
 */

static ngx_int_t
ngx_http_ai_proxy_pin_key(ngx_str_t *id, ngx_pool_t *pool, ngx_str_t *key)
{
    u_char  *p;

    key->data = ngx_pnalloc(pool, sizeof(NGX_HTTP_AI_PROXY_PIN_PREFIX) - 1
                                  + id->len);
    if (key->data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(key->data, NGX_HTTP_AI_PROXY_PIN_PREFIX,
                   sizeof(NGX_HTTP_AI_PROXY_PIN_PREFIX) - 1);
    p = ngx_cpymem(p, id->data, id->len);

    key->len = p - key->data;

    return NGX_OK;
}
