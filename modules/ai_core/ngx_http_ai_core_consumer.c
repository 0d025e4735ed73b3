
/*
 * Copyright (C) AI Gateway authors
 *
 * Consumers: client ("virtual") keys mapped to consumer names.  Only the
 * SHA-256 digest of each key is kept; a presented key is hashed, looked up
 * by binary search and compared in constant time.  The key is never
 * logged, and it is not forwarded by ai_proxy.
 *
 * A consumer may be limited to some models ("models=gpt-4o,claude-*"):
 * the routed model (after aliases) is checked, so an alias cannot bypass
 * the list.
 */


/* SHA256_*() without a warning: see ngx_http_ai_sha256() */
#define OPENSSL_SUPPRESS_DEPRECATED

#include "ngx_http_ai_core_module.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>


static ngx_int_t ngx_http_ai_consumer_add(ngx_conf_t *cf,
    ngx_http_ai_core_main_conf_t *amcf, ngx_str_t *name, ngx_str_t *key,
    ngx_str_t *models);
static ngx_array_t *ngx_http_ai_consumer_models(ngx_conf_t *cf,
    ngx_str_t *name, ngx_str_t *value);
static ngx_uint_t ngx_http_ai_model_match(ngx_array_t *globs,
    ngx_str_t *model);
static int ngx_libc_cdecl ngx_http_ai_consumer_cmp(const void *one,
    const void *two);
static ngx_int_t ngx_http_ai_client_key(ngx_http_request_t *r,
    ngx_str_t *key);


char *
ngx_http_ai_consumer(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_core_main_conf_t *amcf = conf;

    u_char     *p;
    ngx_str_t  *value, key, *models;

    value = cf->args->elts;
    key = value[2];
    models = NULL;

    if (cf->args->nelts == 4) {
        if (value[3].len < 7
            || ngx_strncmp(value[3].data, "models=", 7) != 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ai_consumer \"%V\": invalid parameter "
                               "\"%V\" (\"models=GLOB,...\" is expected)",
                               &value[1], &value[3]);
            return NGX_CONF_ERROR;
        }

        models = &value[3];
    }

    if (key.len > 4 && ngx_strncmp(key.data, "env:", 4) == 0) {
        p = (u_char *) getenv((char *) key.data + 4);

        if (p == NULL || *p == '\0') {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ai_consumer \"%V\": environment variable "
                               "\"%s\" is not set (add \"env %s;\" to the "
                               "main context)", &value[1], key.data + 4,
                               key.data + 4);
            return NGX_CONF_ERROR;
        }

        key.data = p;
        key.len = ngx_strlen(p);
    }

    if (ngx_http_ai_consumer_add(cf, amcf, &value[1], &key, models)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * A file of "name key [models=GLOB,...]" lines; "#" starts a comment.
 */

char *
ngx_http_ai_consumers_file(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_core_main_conf_t *amcf = conf;

    u_char           *p, *last, *eol, *start;
    ssize_t           n;
    ngx_fd_t          fd;
    ngx_str_t        *value, file, name, key, content, models, *mp;
    ngx_uint_t        line;
    ngx_file_info_t   fi;

    value = cf->args->elts;
    file = value[1];

    if (ngx_conf_full_name(cf->cycle, &file, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    fd = ngx_open_file(file.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "ai_consumers_file: cannot open \"%V\"", &file);
        return NGX_CONF_ERROR;
    }

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "ai_consumers_file: cannot stat \"%V\"", &file);
        (void) ngx_close_file(fd);
        return NGX_CONF_ERROR;
    }

    content.len = ngx_file_size(&fi);
    content.data = ngx_pnalloc(cf->temp_pool, content.len + 1);
    if (content.data == NULL) {
        (void) ngx_close_file(fd);
        return NGX_CONF_ERROR;
    }

    n = ngx_read_fd(fd, content.data, content.len);

    (void) ngx_close_file(fd);

    if (n != (ssize_t) content.len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "ai_consumers_file: cannot read \"%V\"", &file);
        return NGX_CONF_ERROR;
    }

    p = content.data;
    last = p + content.len;

    for (line = 1; p < last; line++, p = eol + 1) {

        eol = ngx_strlchr(p, last, LF);
        if (eol == NULL) {
            eol = last;
        }

        while (p < eol && (*p == ' ' || *p == '\t')) {
            p++;
        }

        if (p == eol || *p == '#') {
            continue;
        }

        start = p;

        while (p < eol && *p != ' ' && *p != '\t') {
            p++;
        }

        name.data = start;
        name.len = p - start;

        while (p < eol && (*p == ' ' || *p == '\t')) {
            p++;
        }

        start = p;

        while (p < eol && *p != ' ' && *p != '\t' && *p != CR) {
            p++;
        }

        key.data = start;
        key.len = p - start;

        if (key.len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ai_consumers_file: \"%V\", line %ui: "
                               "expected \"name key\"", &file, line);
            return NGX_CONF_ERROR;
        }

        while (p < eol && (*p == ' ' || *p == '\t' || *p == CR)) {
            p++;
        }

        mp = NULL;

        if (p < eol && *p != '#') {
            start = p;

            while (p < eol && *p != ' ' && *p != '\t' && *p != CR) {
                p++;
            }

            models.data = start;
            models.len = p - start;

            while (p < eol && (*p == ' ' || *p == '\t' || *p == CR)) {
                p++;
            }

            if (models.len < 7
                || ngx_strncmp(models.data, "models=", 7) != 0
                || (p < eol && *p != '#'))
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "ai_consumers_file: \"%V\", line %ui: "
                                   "expected \"name key "
                                   "[models=GLOB,...]\"", &file, line);
                return NGX_CONF_ERROR;
            }

            mp = &models;
        }

        if (ngx_http_ai_consumer_add(cf, amcf, &name, &key, mp) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_ai_consumer_add(ngx_conf_t *cf, ngx_http_ai_core_main_conf_t *amcf,
    ngx_str_t *name, ngx_str_t *key, ngx_str_t *models)
{
    ngx_http_ai_consumer_t  *c;

    if (key->len < 8) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the key of consumer \"%V\" is too short "
                           "(at least 8 characters)", name);
        return NGX_ERROR;
    }

    c = ngx_array_push(&amcf->consumers);
    if (c == NULL) {
        return NGX_ERROR;
    }

    c->name.len = name->len;
    c->name.data = ngx_pstrdup(cf->pool, name);
    if (c->name.data == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_ai_sha256(c->digest, key->data, key->len) != NGX_OK) {
        return NGX_ERROR;
    }

    c->models = NULL;

    if (models) {
        c->models = ngx_http_ai_consumer_models(cf, name, models);
        if (c->models == NULL) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* "models=GLOB,...": each NUL-terminated for fnmatch() */

static ngx_array_t *
ngx_http_ai_consumer_models(ngx_conf_t *cf, ngx_str_t *name,
    ngx_str_t *value)
{
    u_char       *p, *last, *start;
    ngx_str_t    *glob;
    const char   *err;
    ngx_array_t  *a;

    a = ngx_array_create(cf->pool, 4, sizeof(ngx_str_t));
    if (a == NULL) {
        return NULL;
    }

    p = value->data + 7;
    last = value->data + value->len;

    while (p < last) {
        start = p;

        while (p < last && *p != ',') {
            p++;
        }

        if (p > start) {
            glob = ngx_array_push(a);
            if (glob == NULL) {
                return NULL;
            }

            glob->len = p - start;
            glob->data = ngx_pnalloc(cf->pool, glob->len + 1);
            if (glob->data == NULL) {
                return NULL;
            }

            ngx_cpystrn(glob->data, start, glob->len + 1);

            err = ngx_http_ai_glob_invalid(glob);

            if (err) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "consumer \"%V\": invalid model pattern "
                                   "\"%V\" in \"models=\": %s", name, glob,
                                   err);
                return NULL;
            }
        }

        p++;
    }

    if (a->nelts == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "consumer \"%V\": empty \"models=\"", name);
        return NULL;
    }

    return a;
}


ngx_int_t
ngx_http_ai_consumer_allows(ngx_http_request_t *r, ngx_str_t *model)
{
    ngx_http_ai_ctx_t       *ctx;
    ngx_http_ai_core_ctx_t  *cc;

    ctx = ngx_http_ai_get_ctx(r);

    if (ctx == NULL) {
        return NGX_OK;
    }

    cc = ngx_http_ai_core_ctx(ctx);

    if (cc->models == NULL) {
        return NGX_OK;
    }

    if (model == NULL) {
        /* may the consumer use any model? */
        return NGX_DECLINED;
    }

    return ngx_http_ai_model_match(cc->models, model) ? NGX_OK : NGX_DECLINED;
}


static ngx_uint_t
ngx_http_ai_model_match(ngx_array_t *globs, ngx_str_t *model)
{
    ngx_str_t  *g;
    ngx_uint_t  i;

    if (model->len == 0) {
        return 0;
    }

    g = globs->elts;

    for (i = 0; i < globs->nelts; i++) {
        if (ngx_http_ai_glob_match(&g[i], model)) {
            return 1;
        }
    }

    return 0;
}


/*
 * After routing: a routed model the consumer may not use is refused
 * here, before ACCESS and the stages (a cache could answer otherwise).
 * Where no router serves the location ("proxy_pass"), the model asked
 * for is the model served.  Returns NGX_DECLINED to go on, or what the
 * phase handler returns.
 */

ngx_int_t
ngx_http_ai_core_check_model(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx)
{
    ngx_str_t               *model;
    ngx_http_ai_core_ctx_t  *cc;

    cc = ngx_http_ai_core_ctx(ctx);

    if (cc->models == NULL) {
        return NGX_DECLINED;
    }

    /* routed to no target: the router's module answers 404 */

    model = cc->routed ? &ctx->route_model : &ctx->req.model;

    if (model->len == 0 || ngx_http_ai_model_match(cc->models, model)) {
        return NGX_DECLINED;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "ai: consumer \"%V\" may not use the model \"%V\"",
                  &ctx->consumer, ngx_http_ai_safe_str(r->pool, model));

    if (ctx->req.model.len
        && (ctx->req.model.len != model->len
            || ngx_strncmp(ctx->req.model.data, model->data, model->len)
               != 0))
    {
        return ngx_http_ai_error(r, NGX_HTTP_FORBIDDEN, NULL, "model",
                                 "model_not_allowed",
                                 "the model \"%V\" (asked as \"%V\") is not "
                                 "allowed for this API key", model,
                                 &ctx->req.model);
    }

    return ngx_http_ai_error(r, NGX_HTTP_FORBIDDEN, NULL, "model",
                             "model_not_allowed",
                             "the model \"%V\" is not allowed for this API "
                             "key", model);
}


ngx_int_t
ngx_http_ai_consumers_init(ngx_conf_t *cf, ngx_http_ai_core_main_conf_t *amcf)
{
    ngx_uint_t               i;
    ngx_http_ai_consumer_t  *c;

    if (amcf->consumers.nelts == 0) {
        return NGX_OK;
    }

    ngx_qsort(amcf->consumers.elts, amcf->consumers.nelts,
              sizeof(ngx_http_ai_consumer_t), ngx_http_ai_consumer_cmp);

    c = amcf->consumers.elts;

    for (i = 1; i < amcf->consumers.nelts; i++) {
        if (ngx_memcmp(c[i - 1].digest, c[i].digest,
                       NGX_HTTP_AI_KEY_DIGEST_LEN)
            == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "consumers \"%V\" and \"%V\" have the same "
                               "key", &c[i - 1].name, &c[i].name);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * Returns NGX_DECLINED to go on, or what the phase handler returns (an
 * error was sent).
 */

ngx_int_t
ngx_http_ai_core_identify(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    ngx_http_ai_core_loc_conf_t *alcf)
{
    u_char                         digest[NGX_HTTP_AI_KEY_DIGEST_LEN];
    ngx_int_t                      lo, hi, mid, cmp;
    ngx_str_t                      key;
    ngx_http_ai_consumer_t        *c;
    ngx_http_ai_core_main_conf_t  *amcf;

    if (alcf->auth == NGX_HTTP_AI_AUTH_OFF) {
        return NGX_DECLINED;
    }

    if (ngx_http_ai_client_key(r, &key) != NGX_OK) {

        if (alcf->auth == NGX_HTTP_AI_AUTH_OPTIONAL) {
            return NGX_DECLINED;
        }

        return ngx_http_ai_error(r, NGX_HTTP_UNAUTHORIZED, NULL, NULL, NULL,
                                 "missing API key: send it in the "
                                 "\"Authorization: Bearer\" or \"x-api-key\" "
                                 "header");
    }

    if (ngx_http_ai_sha256(digest, key.data, key.len) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_core_module);
    c = amcf->consumers.elts;

    lo = 0;
    hi = (ngx_int_t) amcf->consumers.nelts - 1;

    while (lo <= hi) {
        mid = (lo + hi) / 2;

        cmp = ngx_memcmp(digest, c[mid].digest, NGX_HTTP_AI_KEY_DIGEST_LEN);

        if (cmp == 0) {
            break;
        }

        if (cmp < 0) {
            hi = mid - 1;

        } else {
            lo = mid + 1;
        }
    }

    /* the final decision is a constant time comparison */

    if (lo <= hi
        && CRYPTO_memcmp(digest, c[mid].digest, NGX_HTTP_AI_KEY_DIGEST_LEN)
           == 0)
    {
        ctx->consumer = c[mid].name;
        ngx_http_ai_core_ctx(ctx)->models = c[mid].models;

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "ai consumer: \"%V\"", &ctx->consumer);

        return NGX_DECLINED;
    }

    return ngx_http_ai_error(r, NGX_HTTP_UNAUTHORIZED, NULL, NULL, NULL,
                             "invalid API key");
}


static ngx_int_t
ngx_http_ai_client_key(ngx_http_request_t *r, ngx_str_t *key)
{
    ngx_table_elt_t  *h;

    h = r->headers_in.authorization;

    if (h && h->value.len > 7
        && ngx_strncasecmp(h->value.data, (u_char *) "Bearer ", 7) == 0)
    {
        key->data = h->value.data + 7;
        key->len = h->value.len - 7;

        while (key->len && key->data[0] == ' ') {
            key->data++;
            key->len--;
        }

        if (key->len) {
            return NGX_OK;
        }
    }

    h = ngx_http_ai_core_find_header(r, "x-api-key", sizeof("x-api-key") - 1);

    if (h == NULL) {
        h = ngx_http_ai_core_find_header(r, "api-key", sizeof("api-key") - 1);
    }

    if (h == NULL) {
        h = ngx_http_ai_core_find_header(r, "x-goog-api-key",
                                    sizeof("x-goog-api-key") - 1);
    }

    if (h && h->value.len) {
        *key = h->value;
        return NGX_OK;
    }

    return NGX_DECLINED;
}


/* the first request header of the name, given in lower case */

ngx_table_elt_t *
ngx_http_ai_core_find_header(ngx_http_request_t *r, char *name, size_t len)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

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

        if (h[i].key.len == len
            && ngx_strncmp(h[i].lowcase_key, name, len) == 0)
        {
            return &h[i];
        }
    }

    return NULL;
}


/*
 * SHA-256 by OpenSSL's SHA256_*() functions, deprecated in OpenSSL 3 (as
 * other calls NGINX makes are: OPENSSL_SUPPRESS_DEPRECATED above, as in
 * ngx_event_openssl.h): the same code as EVP's, without what EVP costs a
 * digest of a few hundred bytes in OpenSSL 3.0 (a provider's context
 * allocated, cleansed and freed at each EVP_DigestInit_ex(), more than
 * the hashing: bench/README.md).  An OpenSSL built without the
 * deprecated functions gets EVP's digest, fetched once.
 */

/* two contexts: [0] a text at once, [1] a text in steps */

#if (defined OPENSSL_NO_DEPRECATED_3_0)

static EVP_MD_CTX  *ngx_http_ai_sha_ctx[2];


static ngx_int_t
ngx_http_ai_sha_init(ngx_uint_t i)
{
    static EVP_MD  *md;

    if (md == NULL) {
        md = EVP_MD_fetch(NULL, "SHA256", NULL);
        if (md == NULL) {
            return NGX_ERROR;
        }
    }

    if (ngx_http_ai_sha_ctx[i] == NULL) {
        ngx_http_ai_sha_ctx[i] = EVP_MD_CTX_new();
        if (ngx_http_ai_sha_ctx[i] == NULL) {
            return NGX_ERROR;
        }
    }

    return (EVP_DigestInit_ex(ngx_http_ai_sha_ctx[i], md, NULL) == 1)
           ? NGX_OK : NGX_ERROR;
}


static ngx_int_t
ngx_http_ai_sha_update(ngx_uint_t i, const void *data, size_t len)
{
    return (EVP_DigestUpdate(ngx_http_ai_sha_ctx[i], data, len) == 1)
           ? NGX_OK : NGX_ERROR;
}


static ngx_int_t
ngx_http_ai_sha_final(ngx_uint_t i, u_char *digest)
{
    unsigned int  n;

    return (EVP_DigestFinal_ex(ngx_http_ai_sha_ctx[i], digest, &n) == 1
            && n == SHA256_DIGEST_LENGTH)
           ? NGX_OK : NGX_ERROR;
}

#else

static SHA256_CTX  ngx_http_ai_sha_ctx[2];


static ngx_int_t
ngx_http_ai_sha_init(ngx_uint_t i)
{
    return (SHA256_Init(&ngx_http_ai_sha_ctx[i]) == 1) ? NGX_OK : NGX_ERROR;
}


static ngx_int_t
ngx_http_ai_sha_update(ngx_uint_t i, const void *data, size_t len)
{
    return (SHA256_Update(&ngx_http_ai_sha_ctx[i], data, len) == 1)
           ? NGX_OK : NGX_ERROR;
}


static ngx_int_t
ngx_http_ai_sha_final(ngx_uint_t i, u_char *digest)
{
    return (SHA256_Final(digest, &ngx_http_ai_sha_ctx[i]) == 1)
           ? NGX_OK : NGX_ERROR;
}

#endif


ngx_int_t
ngx_http_ai_sha256(u_char *digest, const void *data, size_t len)
{
    if (ngx_http_ai_sha_init(0) != NGX_OK
        || ngx_http_ai_sha_update(0, data, len) != NGX_OK
        || ngx_http_ai_sha_final(0, digest) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* the same in steps: the worker's one context (see ngx_http_ai_core.h) */

ngx_int_t
ngx_http_ai_sha256_start(void)
{
    return ngx_http_ai_sha_init(1);
}


ngx_int_t
ngx_http_ai_sha256_add(const void *data, size_t len)
{
    return ngx_http_ai_sha_update(1, data, len);
}


ngx_int_t
ngx_http_ai_sha256_end(u_char *digest)
{
    return ngx_http_ai_sha_final(1, digest);
}


static int ngx_libc_cdecl
ngx_http_ai_consumer_cmp(const void *one, const void *two)
{
    const ngx_http_ai_consumer_t  *a = one;
    const ngx_http_ai_consumer_t  *b = two;

    return ngx_memcmp(a->digest, b->digest, NGX_HTTP_AI_KEY_DIGEST_LEN);
}
