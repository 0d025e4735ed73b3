
/*
 * Copyright (C) AI Gateway authors
 *
 * Request fields the operator lets go quietly:
 *
 *     ai_proxy_drop_fields seed logprobs top_logprobs;
 *
 * A field a target's format cannot carry is refused with a 400 naming it
 * and the target (the format layer); a field listed here is taken out of
 * the request first, for every target, through the core's request
 * mutation (so that what goes upstream and what ai_log records agree).
 * The fields that make a request (model, messages, input, contents,
 * stream, system, ...) cannot be listed.
 */


#include "ngx_http_ai_proxy.h"


static const char  *ngx_http_ai_proxy_kept_fields[] = {
    "model", "messages", "input", "contents", "stream", "system",
    "instructions", "systemInstruction", "system_instruction", "tools",
    "prompt", NULL
};


/* ai_proxy_drop_fields NAME ...; */

char *
ngx_http_ai_proxy_drop_fields_set(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_ai_proxy_loc_conf_t *plcf = conf;

    u_char      *p;
    ngx_str_t   *value, *name;
    ngx_uint_t   i, k;

    if (plcf->drop_fields != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    plcf->drop_fields = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                         sizeof(ngx_str_t));
    if (plcf->drop_fields == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        for (p = value[i].data; p < value[i].data + value[i].len; p++) {
            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
                  || (*p >= '0' && *p <= '9') || *p == '_'))
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "ai_proxy_drop_fields: invalid field "
                                   "name \"%V\" (a top-level member of the "
                                   "request: letters, digits, \"_\")",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }
        }

        for (k = 0; ngx_http_ai_proxy_kept_fields[k]; k++) {
            if (ngx_strlen(ngx_http_ai_proxy_kept_fields[k]) == value[i].len
                && ngx_strncmp(value[i].data,
                               ngx_http_ai_proxy_kept_fields[k],
                               value[i].len)
                   == 0)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "ai_proxy_drop_fields: \"%V\" makes the "
                                   "request and cannot be dropped",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }
        }

        if (value[i].len == 0) {
            return "has an empty field name";
        }

        name = ngx_array_push(plcf->drop_fields);
        if (name == NULL) {
            return NGX_CONF_ERROR;
        }

        *name = value[i];
    }

    return NGX_CONF_OK;
}


/*
 * The listed fields out of the request, when it has any of them: a copy
 * of its tree without them becomes its body.  NGX_OK, or NGX_ERROR.
 */

ngx_int_t
ngx_http_ai_proxy_drop_fields(ngx_http_request_t *r, ngx_http_ai_ctx_t *ai,
    ngx_http_ai_proxy_loc_conf_t *plcf)
{
    char        *s, name[64];
    cJSON       *json, *copy;
    ngx_str_t   *field, body, err;
    ngx_uint_t   i, found;

    if (plcf->drop_fields == NULL) {
        return NGX_OK;
    }

    json = ngx_http_ai_request_tree(&ai->req);

    if (!cJSON_IsObject(json)) {
        return NGX_OK;
    }

    field = plcf->drop_fields->elts;
    found = 0;

    for (i = 0; i < plcf->drop_fields->nelts; i++) {
        if (field[i].len >= sizeof(name)) {
            continue;
        }

        ngx_memcpy(name, field[i].data, field[i].len);
        name[field[i].len] = '\0';

        if (cJSON_GetObjectItemCaseSensitive(json, name)) {
            found = 1;
            break;
        }
    }

    if (!found) {
        return NGX_OK;
    }

    copy = cJSON_Duplicate(json, 1);
    if (copy == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < plcf->drop_fields->nelts; i++) {
        if (field[i].len >= sizeof(name)) {
            continue;
        }

        ngx_memcpy(name, field[i].data, field[i].len);
        name[field[i].len] = '\0';

        /* every member so named: a client may send one twice */

        while (cJSON_GetObjectItemCaseSensitive(copy, name)) {
            cJSON_DeleteItemFromObjectCaseSensitive(copy, name);
        }
    }

    s = cJSON_PrintUnformatted(copy);
    cJSON_Delete(copy);

    if (s == NULL) {
        return NGX_ERROR;
    }

    body.len = ngx_strlen(s);
    body.data = ngx_pnalloc(r->pool, body.len);

    if (body.data == NULL) {
        cJSON_free(s);
        return NGX_ERROR;
    }

    ngx_memcpy(body.data, s, body.len);
    cJSON_free(s);

    switch (ngx_http_ai_request_set_body(r, &body, &err)) {

    case NGX_OK:
        break;

    case NGX_DECLINED:
        /*
         * the door needs a field listed ("max_tokens" of an Anthropic
         * request): the request goes on as it came
         */

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "ai_proxy_drop_fields: the request needs a field "
                      "listed, it is kept: %V", &err);
        return NGX_OK;

    default:
        return NGX_ERROR;
    }

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai_proxy: fields dropped from the request");

    return NGX_OK;
}
