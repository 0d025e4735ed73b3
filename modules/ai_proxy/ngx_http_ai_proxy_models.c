
/*
 * Copyright (C) AI Gateway authors
 *
 * The model list of a location: GET .../models and .../models/{id}.
 *
 *     ai_proxy_models gpt-4o gpt-4o-mini;   # what "models=gpt-*" serves
 *
 * The list is the aliases, the models declared with "ai_proxy_models"
 * and the plain names of the targets' "models=" (not their globs), each
 * once, those the consumer may use only, in OpenAI's shape, or in
 * Anthropic's on the Anthropic door (its SDK sends "anthropic-version").
 * {id} is answered for any model the location serves (a glob's too).
 * With nothing declared (targets without "models=", no alias) and no
 * allow-list for the consumer, the OpenAI-compatible target is asked, as
 * it knows its own list.
 *
 * When the configuration is read, each alias and each declared model
 * must be served by a target of the location.
 */


#include "ngx_http_ai_proxy.h"


#define NGX_HTTP_AI_PROXY_CREATED_AT    "1970-01-01T00:00:00Z"


typedef struct {
    ngx_str_t                       id;
    ngx_str_t                       owner;    /* the target's name */
} ngx_http_ai_proxy_model_t;


static ngx_uint_t ngx_http_ai_proxy_glob(ngx_str_t *m);
static ngx_uint_t ngx_http_ai_proxy_models_local(ngx_http_request_t *r,
    ngx_http_ai_proxy_loc_conf_t *plcf);
static ngx_int_t ngx_http_ai_proxy_models_add(ngx_http_request_t *r,
    ngx_http_ai_proxy_loc_conf_t *plcf, ngx_array_t *list, ngx_str_t *id);
static ngx_str_t *ngx_http_ai_proxy_owner(ngx_http_ai_proxy_loc_conf_t *plcf,
    uint64_t served);
static ngx_int_t ngx_http_ai_proxy_models_send(ngx_http_request_t *r,
    ngx_array_t *list, ngx_uint_t one);


/*
 * GET .../models and .../models/{id}: answered here, or NGX_DECLINED to
 * ask the target (nothing declared, see above).
 */

ngx_int_t
ngx_http_ai_proxy_models(ngx_http_request_t *r,
    ngx_http_ai_proxy_loc_conf_t *plcf)
{
    uint64_t                      served;
    ngx_str_t                     id, *to, *m;
    ngx_uint_t                    i, j;
    ngx_array_t                   list;
    ngx_http_ai_proxy_model_t    *model;
    ngx_http_ai_proxy_alias_t    *alias;
    ngx_http_ai_proxy_target_t  **t;

    if (!ngx_http_ai_proxy_models_local(r, plcf)) {
        return NGX_DECLINED;
    }

    if (ngx_array_init(&list, r->pool, 8, sizeof(ngx_http_ai_proxy_model_t))
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_ai_proxy_model_id(r, &id);

    if (id.len) {
        to = ngx_http_ai_proxy_resolve_alias(plcf, &id);
        served = ngx_http_ai_proxy_served(plcf, NGX_HTTP_AI_EP_UNKNOWN, to);

        if (served == 0) {
            return ngx_http_ai_error(r, NGX_HTTP_NOT_FOUND, NULL, "model",
                                     "model_not_found",
                                     "the model \"%V\" is not served here",
                                     &id);
        }

        if (ngx_http_ai_consumer_allows(r, to) != NGX_OK) {
            return ngx_http_ai_error(r, NGX_HTTP_FORBIDDEN, NULL, "model",
                                     "model_not_allowed",
                                     "the model \"%V\" is not allowed for "
                                     "this API key", to);
        }

        model = ngx_array_push(&list);
        if (model == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        model->id = id;
        model->owner = *ngx_http_ai_proxy_owner(plcf, served);

        return ngx_http_ai_proxy_models_send(r, &list, 1);
    }

    if (plcf->aliases) {
        alias = plcf->aliases->elts;

        for (i = 0; i < plcf->aliases->nelts; i++) {
            if (ngx_http_ai_proxy_models_add(r, plcf, &list, &alias[i].from)
                != NGX_OK)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
        }
    }

    if (plcf->declared) {
        m = plcf->declared->elts;

        for (i = 0; i < plcf->declared->nelts; i++) {
            if (ngx_http_ai_proxy_models_add(r, plcf, &list, &m[i])
                != NGX_OK)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
        }
    }

    t = plcf->targets->elts;

    for (i = 0; i < plcf->targets->nelts; i++) {
        if (t[i]->models == NULL) {
            continue;
        }

        m = t[i]->models->elts;

        for (j = 0; j < t[i]->models->nelts; j++) {

            if (ngx_http_ai_proxy_glob(&m[j])) {
                continue;
            }

            if (ngx_http_ai_proxy_models_add(r, plcf, &list, &m[j])
                != NGX_OK)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
        }
    }

    return ngx_http_ai_proxy_models_send(r, &list, 0);
}


/*
 * Answered here unless nothing is declared, the consumer may use any
 * model and the door is OpenAI's: then the target's own list is better.
 */

static ngx_uint_t
ngx_http_ai_proxy_models_local(ngx_http_request_t *r,
    ngx_http_ai_proxy_loc_conf_t *plcf)
{
    ngx_str_t                    *m;
    ngx_uint_t                    i, j;
    ngx_http_ai_ctx_t            *ai;
    ngx_http_ai_proxy_target_t  **t;

    ai = ngx_http_ai_get_ctx(r);

    if (plcf->declared || plcf->aliases
        || ai->req.format != NGX_HTTP_AI_FMT_OPENAI
        || ngx_http_ai_consumer_allows(r, NULL) != NGX_OK)
    {
        return 1;
    }

    t = plcf->targets->elts;

    for (i = 0; i < plcf->targets->nelts; i++) {
        if (t[i]->models == NULL) {
            continue;
        }

        m = t[i]->models->elts;

        for (j = 0; j < t[i]->models->nelts; j++) {
            if (!ngx_http_ai_proxy_glob(&m[j])) {
                return 1;
            }
        }
    }

    return 0;
}


/* a model of the list: once, if served, and if the consumer may use it */

static ngx_int_t
ngx_http_ai_proxy_models_add(ngx_http_request_t *r,
    ngx_http_ai_proxy_loc_conf_t *plcf, ngx_array_t *list, ngx_str_t *id)
{
    uint64_t                    served;
    ngx_str_t                  *to;
    ngx_uint_t                  i;
    ngx_http_ai_proxy_model_t  *model;

    model = list->elts;

    for (i = 0; i < list->nelts; i++) {
        if (model[i].id.len == id->len
            && ngx_strncmp(model[i].id.data, id->data, id->len) == 0)
        {
            return NGX_OK;
        }
    }

    to = ngx_http_ai_proxy_resolve_alias(plcf, id);
    served = ngx_http_ai_proxy_served(plcf, NGX_HTTP_AI_EP_UNKNOWN, to);

    if (served == 0 || ngx_http_ai_consumer_allows(r, to) != NGX_OK) {
        return NGX_OK;
    }

    model = ngx_array_push(list);
    if (model == NULL) {
        return NGX_ERROR;
    }

    model->id = *id;
    model->owner = *ngx_http_ai_proxy_owner(plcf, served);

    return NGX_OK;
}


/* the first target that serves it */

static ngx_str_t *
ngx_http_ai_proxy_owner(ngx_http_ai_proxy_loc_conf_t *plcf, uint64_t served)
{
    ngx_uint_t                    i;
    ngx_http_ai_proxy_target_t  **t;

    t = plcf->targets->elts;

    for (i = 0; i < plcf->targets->nelts; i++) {
        if (served & ((uint64_t) 1 << i)) {
            return &t[i]->name;
        }
    }

    return &t[0]->name;
}


/*
 * OpenAI:    {"object":"list","data":[{"id":..,"object":"model",
 *             "created":0,"owned_by":..}]}, or the model object
 * Anthropic: {"data":[{"type":"model","id":..,"display_name":..,
 *             "created_at":..}],"has_more":false,"first_id":..,
 *             "last_id":..}, or the model object
 */

static ngx_int_t
ngx_http_ai_proxy_models_send(ngx_http_request_t *r, ngx_array_t *list,
    ngx_uint_t one)
{
    size_t                      len;
    ngx_buf_t                  *b;
    ngx_int_t                   rc;
    ngx_uint_t                  i, anthropic;
    ngx_chain_t                 out;
    ngx_http_ai_ctx_t          *ai;
    ngx_http_ai_proxy_model_t  *model;

    ai = ngx_http_ai_get_ctx(r);
    anthropic = (ai->req.format == NGX_HTTP_AI_FMT_ANTHROPIC);

    model = list->elts;

    len = sizeof("{\"data\":[],\"has_more\":false,\"first_id\":,"
                 "\"last_id\":,\"object\":\"list\"}\n") - 1
          + 4 * sizeof("\"null\"");

    for (i = 0; i < list->nelts; i++) {
        len += sizeof(",{\"type\":\"model\",\"id\":\"\",\"display_name\":\"\","
                      "\"created_at\":\"" NGX_HTTP_AI_PROXY_CREATED_AT
                      "\",\"object\":\"model\",\"created\":0,"
                      "\"owned_by\":\"\"}") - 1
               + 3 * ngx_http_ai_escape_json(NULL, model[i].id.data,
                                             model[i].id.len)
               + ngx_http_ai_escape_json(NULL, model[i].owner.data,
                                         model[i].owner.len);
    }

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (!one) {
        b->last = anthropic ? ngx_cpymem(b->last, "{\"data\":[", 9)
                            : ngx_cpymem(b->last,
                                         "{\"object\":\"list\",\"data\":[",
                                         sizeof("{\"object\":\"list\","
                                                "\"data\":[") - 1);
    }

    for (i = 0; i < list->nelts; i++) {

        if (i) {
            *b->last++ = ',';
        }

        if (anthropic) {
            b->last = ngx_cpymem(b->last, "{\"type\":\"model\",\"id\":\"",
                                 sizeof("{\"type\":\"model\",\"id\":\"") - 1);
            b->last = (u_char *) ngx_http_ai_escape_json(b->last,
                                                         model[i].id.data,
                                                         model[i].id.len);
            b->last = ngx_cpymem(b->last, "\",\"display_name\":\"",
                                 sizeof("\",\"display_name\":\"") - 1);
            b->last = (u_char *) ngx_http_ai_escape_json(b->last,
                                                         model[i].id.data,
                                                         model[i].id.len);
            b->last = ngx_cpymem(b->last, "\",\"created_at\":\""
                                 NGX_HTTP_AI_PROXY_CREATED_AT "\"}",
                                 sizeof("\",\"created_at\":\""
                                        NGX_HTTP_AI_PROXY_CREATED_AT "\"}")
                                 - 1);
            continue;
        }

        b->last = ngx_cpymem(b->last, "{\"id\":\"", 7);
        b->last = (u_char *) ngx_http_ai_escape_json(b->last,
                                                     model[i].id.data,
                                                     model[i].id.len);
        b->last = ngx_cpymem(b->last, "\",\"object\":\"model\",\"created\":0,"
                             "\"owned_by\":\"",
                             sizeof("\",\"object\":\"model\",\"created\":0,"
                                    "\"owned_by\":\"") - 1);
        b->last = (u_char *) ngx_http_ai_escape_json(b->last,
                                                     model[i].owner.data,
                                                     model[i].owner.len);
        b->last = ngx_cpymem(b->last, "\"}", 2);
    }

    if (!one && anthropic) {
        b->last = ngx_cpymem(b->last, "],\"has_more\":false,\"first_id\":",
                             sizeof("],\"has_more\":false,\"first_id\":")
                             - 1);

        if (list->nelts) {
            *b->last++ = '"';
            b->last = (u_char *) ngx_http_ai_escape_json(b->last,
                                                         model[0].id.data,
                                                         model[0].id.len);
            b->last = ngx_cpymem(b->last, "\",\"last_id\":\"",
                                 sizeof("\",\"last_id\":\"") - 1);
            i = list->nelts - 1;
            b->last = (u_char *) ngx_http_ai_escape_json(b->last,
                                                         model[i].id.data,
                                                         model[i].id.len);
            b->last = ngx_cpymem(b->last, "\"}", 2);

        } else {
            b->last = ngx_cpymem(b->last, "null,\"last_id\":null}",
                                 sizeof("null,\"last_id\":null}") - 1);
        }

    } else if (!one) {
        b->last = ngx_cpymem(b->last, "]}", 2);
    }

    *b->last++ = LF;

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = b->last - b->pos;
    ngx_str_set(&r->headers_out.content_type, "application/json");

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


/* the {id} of ".../models/{id}" (the URI is decoded); empty for the list */

void
ngx_http_ai_proxy_model_id(ngx_http_request_t *r, ngx_str_t *id)
{
    u_char  *p, *last;

    ngx_str_null(id);

    last = r->uri.data + r->uri.len;

    if (r->uri.len > 1 && last[-1] == '/') {
        last--;
    }

    for (p = last; p > r->uri.data && p[-1] != '/'; p--) {
        /* void */
    }

    if ((size_t) (p - r->uri.data) > sizeof("/models/") - 1
        && ngx_strncmp(p - (sizeof("/models/") - 1), "/models/",
                       sizeof("/models/") - 1)
           == 0
        && p < last)
    {
        id->data = p;
        id->len = last - p;
    }
}


/* a glob is not a model */

static ngx_uint_t
ngx_http_ai_proxy_glob(ngx_str_t *m)
{
    return ngx_strlchr(m->data, m->data + m->len, '*')
           || ngx_strlchr(m->data, m->data + m->len, '?')
           || ngx_strlchr(m->data, m->data + m->len, '[');
}


/* ai_proxy_models NAME ...; the models listed for the targets' globs */

char *
ngx_http_ai_proxy_models_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_ai_proxy_loc_conf_t *plcf = conf;

    ngx_str_t   *value, *m;
    ngx_uint_t   i;

    if (plcf->declared != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    plcf->declared = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                      sizeof(ngx_str_t));
    if (plcf->declared == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_http_ai_proxy_glob(&value[i])) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"ai_proxy_models\" lists models, not "
                               "patterns: \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        m = ngx_array_push(plcf->declared);
        if (m == NULL) {
            return NGX_CONF_ERROR;
        }

        *m = value[i];
    }

    return NGX_CONF_OK;
}


/*
 * A location with targets: every alias and every declared model must be
 * served by one of them (an alias to a model no target serves would only
 * ever answer 404).
 */

ngx_int_t
ngx_http_ai_proxy_models_check(ngx_conf_t *cf,
    ngx_http_ai_proxy_loc_conf_t *plcf)
{
    ngx_str_t                  *m;
    ngx_uint_t                  i;
    ngx_http_ai_proxy_alias_t  *alias;

    if (plcf->aliases) {
        alias = plcf->aliases->elts;

        for (i = 0; i < plcf->aliases->nelts; i++) {
            if (ngx_http_ai_proxy_served(plcf, NGX_HTTP_AI_EP_UNKNOWN,
                                         &alias[i].to)
                == 0)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"ai_proxy_alias %V %V\": no target of "
                                   "this location serves the model \"%V\"",
                                   &alias[i].from, &alias[i].to,
                                   &alias[i].to);
                return NGX_ERROR;
            }
        }
    }

    if (plcf->declared) {
        m = plcf->declared->elts;

        for (i = 0; i < plcf->declared->nelts; i++) {
            if (ngx_http_ai_proxy_served(plcf, NGX_HTTP_AI_EP_UNKNOWN,
                                         ngx_http_ai_proxy_resolve_alias(
                                             plcf, &m[i]))
                == 0)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"ai_proxy_models\": no target of this "
                                   "location serves the model \"%V\"",
                                   &m[i]);
                return NGX_ERROR;
            }
        }
    }

    return NGX_OK;
}
