
/*
 * Copyright (C) AI Gateway authors
 *
 * Headers toward the provider beyond the gateway's own (Host, the key,
 * the provider's version, Content-Type, Accept, User-Agent):
 *
 *     ai_proxy_pass_client_headers anthropic-beta openai-organization;
 *     ai_proxy_set_header X-Request-Id $request_id;
 *
 * The client's headers named are passed as they came (each instance);
 * a set header's value is evaluated per request, and not sent when it is
 * empty.  The consumer's credentials (Authorization, x-api-key, api-key,
 * x-goog-api-key, Proxy-Authorization) and the headers the gateway sets
 * or that frame the request are refused when the configuration is read.
 */


#include "ngx_http_ai_proxy.h"


static char *ngx_http_ai_proxy_header_name(ngx_conf_t *cf,
    ngx_command_t *cmd, ngx_str_t *name);
static size_t ngx_http_ai_proxy_header_safe(ngx_str_t *value);


static ngx_str_t  ngx_http_ai_proxy_credentials[] = {
    ngx_string("authorization"),
    ngx_string("proxy-authorization"),
    ngx_string("x-api-key"),
    ngx_string("api-key"),
    ngx_string("x-goog-api-key"),
    ngx_null_string
};


static ngx_str_t  ngx_http_ai_proxy_own_headers[] = {
    ngx_string("host"),
    ngx_string("content-length"),
    ngx_string("content-type"),
    ngx_string("transfer-encoding"),
    ngx_string("connection"),
    ngx_string("keep-alive"),
    ngx_string("upgrade"),
    ngx_string("te"),
    ngx_string("trailer"),
    ngx_string("expect"),
    ngx_string("accept"),
    ngx_string("accept-encoding"),
    ngx_string("user-agent"),
    ngx_string("anthropic-version"),
    ngx_null_string
};


/* ai_proxy_pass_client_headers NAME ...; */

char *
ngx_http_ai_proxy_pass_client_headers(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_ai_proxy_loc_conf_t *plcf = conf;

    char        *rv;
    ngx_str_t   *value, *name;
    ngx_uint_t   i;

    if (plcf->pass_headers != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    plcf->pass_headers = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                          sizeof(ngx_str_t));
    if (plcf->pass_headers == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        rv = ngx_http_ai_proxy_header_name(cf, cmd, &value[i]);
        if (rv != NGX_CONF_OK) {
            return rv;
        }

        name = ngx_array_push(plcf->pass_headers);
        if (name == NULL) {
            return NGX_CONF_ERROR;
        }

        *name = value[i];
    }

    return NGX_CONF_OK;
}


/* ai_proxy_set_header NAME VALUE; (VALUE may have variables) */

char *
ngx_http_ai_proxy_set_header(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_proxy_loc_conf_t *plcf = conf;

    char                              *rv;
    ngx_str_t                         *value;
    ngx_http_ai_proxy_header_t        *h;
    ngx_http_compile_complex_value_t   ccv;

    value = cf->args->elts;

    rv = ngx_http_ai_proxy_header_name(cf, cmd, &value[1]);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    if (plcf->set_headers == NGX_CONF_UNSET_PTR) {
        plcf->set_headers = ngx_array_create(cf->pool, 2,
                                        sizeof(ngx_http_ai_proxy_header_t));
        if (plcf->set_headers == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    h = ngx_array_push(plcf->set_headers);
    if (h == NULL) {
        return NGX_CONF_ERROR;
    }

    h->name = value[1];

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = &value[2];
    ccv.complex_value = &h->value;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* a header name: a token, neither a credential nor the gateway's own */

static char *
ngx_http_ai_proxy_header_name(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_str_t *name)
{
    u_char     *p, c;
    ngx_str_t  *h;

    if (name->len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\": empty header name", &cmd->name);
        return NGX_CONF_ERROR;
    }

    for (p = name->data; p < name->data + name->len; p++) {
        c = *p;

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '-' || c == '_'))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\": invalid header name \"%V\"",
                               &cmd->name, name);
            return NGX_CONF_ERROR;
        }
    }

    for (h = ngx_http_ai_proxy_credentials; h->len; h++) {
        if (h->len == name->len
            && ngx_strncasecmp(h->data, name->data, name->len) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\": the header \"%V\" carries the "
                               "consumer's credentials and never goes "
                               "upstream (the gateway sends the target's "
                               "key)", &cmd->name, name);
            return NGX_CONF_ERROR;
        }
    }

    for (h = ngx_http_ai_proxy_own_headers; h->len; h++) {
        if (h->len == name->len
            && ngx_strncasecmp(h->data, name->data, name->len) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\": the header \"%V\" is set by the "
                               "gateway", &cmd->name, name);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/*
 * The request's extra header lines, once per request (every attempt
 * sends them): "Name: value" CRLF each.
 */

ngx_int_t
ngx_http_ai_proxy_extra_headers(ngx_http_request_t *r,
    ngx_http_ai_proxy_ctx_t *ctx)
{
    u_char                        *p;
    size_t                         len;
    ngx_str_t                     *name, *values;
    ngx_uint_t                     i, j, n;
    ngx_list_part_t               *part;
    ngx_table_elt_t               *h;
    ngx_http_ai_proxy_header_t    *sh;
    ngx_http_ai_proxy_loc_conf_t  *plcf;

    plcf = ctx->conf;

    ngx_str_null(&ctx->extra);

    if (plcf->pass_headers == NULL && plcf->set_headers == NULL) {
        return NGX_OK;
    }

    len = 0;
    values = NULL;

    if (plcf->pass_headers) {
        name = plcf->pass_headers->elts;

        part = &r->headers_in.headers.part;
        h = part->elts;

        for (i = 0; /* void */ ; i++) {

            if (i >= part->nelts) {
                if (part->next == NULL) {
                    break;
                }

                part = part->next;
                h = part->elts;
                i = 0;
            }

            for (j = 0; j < plcf->pass_headers->nelts; j++) {
                if (h[i].key.len == name[j].len
                    && ngx_strncasecmp(h[i].key.data, name[j].data,
                                       name[j].len)
                       == 0)
                {
                    len += name[j].len + sizeof(": " CRLF) - 1
                           + h[i].value.len;
                    break;
                }
            }
        }
    }

    if (plcf->set_headers) {
        sh = plcf->set_headers->elts;
        n = plcf->set_headers->nelts;

        values = ngx_palloc(r->pool, n * sizeof(ngx_str_t));
        if (values == NULL) {
            return NGX_ERROR;
        }

        for (i = 0; i < n; i++) {
            if (ngx_http_complex_value(r, &sh[i].value, &values[i])
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            if (values[i].len && !ngx_http_ai_proxy_header_safe(&values[i]))
            {
                ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                              "ai_proxy: the value of the header \"%V\" "
                              "has control characters, it is not sent",
                              &sh[i].name);
                values[i].len = 0;
            }

            if (values[i].len) {
                len += sh[i].name.len + sizeof(": " CRLF) - 1
                       + values[i].len;
            }
        }
    }

    if (len == 0) {
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ctx->extra.data = p;

    if (plcf->pass_headers) {
        name = plcf->pass_headers->elts;

        part = &r->headers_in.headers.part;
        h = part->elts;

        for (i = 0; /* void */ ; i++) {

            if (i >= part->nelts) {
                if (part->next == NULL) {
                    break;
                }

                part = part->next;
                h = part->elts;
                i = 0;
            }

            for (j = 0; j < plcf->pass_headers->nelts; j++) {
                if (h[i].key.len == name[j].len
                    && ngx_strncasecmp(h[i].key.data, name[j].data,
                                       name[j].len)
                       == 0)
                {
                    p = ngx_cpymem(p, name[j].data, name[j].len);
                    *p++ = ':'; *p++ = ' ';
                    p = ngx_cpymem(p, h[i].value.data, h[i].value.len);
                    *p++ = CR; *p++ = LF;
                    break;
                }
            }
        }
    }

    if (plcf->set_headers) {
        sh = plcf->set_headers->elts;

        for (i = 0; i < plcf->set_headers->nelts; i++) {
            if (values[i].len == 0) {
                continue;
            }

            p = ngx_cpymem(p, sh[i].name.data, sh[i].name.len);
            *p++ = ':'; *p++ = ' ';
            p = ngx_cpymem(p, values[i].data, values[i].len);
            *p++ = CR; *p++ = LF;
        }
    }

    ctx->extra.len = p - ctx->extra.data;

    return NGX_OK;
}


/* a value from variables may hold anything: no CR, LF or NUL goes out */

static size_t
ngx_http_ai_proxy_header_safe(ngx_str_t *value)
{
    u_char  *p;

    for (p = value->data; p < value->data + value->len; p++) {
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f) {
            return 0;
        }
    }

    return 1;
}
