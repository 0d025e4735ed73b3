
/*
 * Copyright (C) AI Gateway authors
 *
 * Targets, key pools, routing, balancing and fallback.
 *
 *     ai_target NAME URL [provider=openai|azure|anthropic|gemini]
 *               [key=env:NAME|file:/path]... [models=GLOB,...]
 *               [model=NAME] [weight=N] [host=NAME] [api_version=V]
 *               [endpoints=chat,embeddings] [backup];
 *
 * A backup target without "models=" serves only the requests a primary
 * target of the location could have served; a target sent one model
 * ("model=") serves chat only unless "endpoints=" says otherwise, so an
 * embeddings request never goes to a chat model.
 *
 * A location's targets are balanced by one upstream balancer of our own
 * (ngx_http_ai_proxy_init_peer): each attempt picks a target among those
 * serving the model, and a key of its pool, then asks the target's own
 * upstream balancer for the server (so "keepalive" of an upstream{} block
 * works as usual), and builds the request for that target: its URL, its
 * key, the body translated to its format.  A failed attempt goes to the
 * next through NGINX's next upstream machinery, within a number of tries
 * and a deadline; the status of a provider's answer (429, 5xx, 401, 403)
 * is turned into a next attempt by ngx_http_ai_proxy_status().
 */


#include "ngx_http_ai_proxy.h"


#define NGX_HTTP_AI_PROXY_KEY_MAX       (16 * 1024)

/* "latency": how long a target that failed without an answer comes last */
#define NGX_HTTP_AI_PROXY_FAIL_TIME     10000


typedef struct {
    ngx_str_t                       name;
    ngx_uint_t                      format;
    char                           *key_header;    /* before the key */
} ngx_http_ai_proxy_provider_t;


static ngx_int_t ngx_http_ai_proxy_init_peer(ngx_http_request_t *r,
    ngx_http_upstream_srv_conf_t *us);
static ngx_int_t ngx_http_ai_proxy_get_peer(ngx_peer_connection_t *pc,
    void *data);
static ngx_int_t ngx_http_ai_proxy_inner_get(ngx_peer_connection_t *pc,
    ngx_http_ai_proxy_ctx_t *ctx);
static void ngx_http_ai_proxy_free_peer(ngx_peer_connection_t *pc,
    void *data, ngx_uint_t state);
#if (NGX_HTTP_SSL)
static ngx_int_t ngx_http_ai_proxy_set_session(ngx_peer_connection_t *pc,
    void *data);
static void ngx_http_ai_proxy_save_session(ngx_peer_connection_t *pc,
    void *data);
#endif
static ngx_http_ai_proxy_key_t *ngx_http_ai_proxy_pick_key(
    ngx_http_ai_proxy_target_t *t);
static ngx_msec_t ngx_http_ai_proxy_latency(ngx_http_ai_proxy_target_t *t);
static ngx_int_t ngx_http_ai_proxy_pick(ngx_http_request_t *r,
    ngx_http_ai_proxy_ctx_t *ctx, ngx_uint_t dry);
static ngx_int_t ngx_http_ai_proxy_prepare(ngx_http_request_t *r,
    ngx_http_ai_proxy_ctx_t *ctx);
static ngx_int_t ngx_http_ai_proxy_serves(ngx_http_ai_proxy_target_t *t,
    ngx_uint_t endpoint, ngx_str_t *model);
static ngx_uint_t ngx_http_ai_proxy_valid_status(ngx_uint_t status);
static ngx_int_t ngx_http_ai_proxy_refused(ngx_http_request_t *r,
    ngx_http_ai_proxy_ctx_t *ctx, ngx_uint_t status);
static ngx_msec_t ngx_http_ai_proxy_retry_after(ngx_http_request_t *r);
static ngx_uint_t ngx_http_ai_proxy_cooling(ngx_http_ai_proxy_ctx_t *ctx,
    ngx_msec_t *wait);
static ngx_http_ai_attempt_t *ngx_http_ai_proxy_attempt(
    ngx_http_request_t *r, ngx_http_ai_proxy_ctx_t *ctx);
static void ngx_http_ai_proxy_request_id(ngx_http_request_t *r,
    ngx_str_t *id);
static ngx_int_t ngx_http_ai_proxy_retry_header(ngx_http_request_t *r,
    ngx_msec_t wait);
static ngx_int_t ngx_http_ai_proxy_cooling_error(ngx_http_request_t *r,
    ngx_http_ai_proxy_ctx_t *ctx);
static char *ngx_http_ai_proxy_read_key(ngx_conf_t *cf, ngx_str_t *file,
    ngx_str_t *key);


static ngx_http_ai_proxy_provider_t  ngx_http_ai_proxy_providers[] = {
    { ngx_string("openai"), NGX_HTTP_AI_FMT_OPENAI,
      "Authorization: Bearer " },
    { ngx_string("azure"), NGX_HTTP_AI_FMT_OPENAI, "api-key: " },
    { ngx_string("anthropic"), NGX_HTTP_AI_FMT_ANTHROPIC, "x-api-key: " },
    { ngx_string("gemini"), NGX_HTTP_AI_FMT_GEMINI, "x-goog-api-key: " },
    { ngx_null_string, 0, NULL }
};


ngx_int_t
ngx_http_ai_proxy_provider_value(ngx_str_t *name)
{
    ngx_uint_t  i;

    for (i = 0; ngx_http_ai_proxy_providers[i].name.len; i++) {
        if (name->len == ngx_http_ai_proxy_providers[i].name.len
            && ngx_strncasecmp(name->data,
                               ngx_http_ai_proxy_providers[i].name.data,
                               name->len)
               == 0)
        {
            return i;
        }
    }

    return NGX_ERROR;
}


char *
ngx_http_ai_target(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_proxy_main_conf_t *pmcf = conf;

    char                         *rv;
    u_char                       *p, *last, *start;
    ngx_int_t                     provider, n;
    ngx_str_t                    *value, s, host, *glob;
    ngx_uint_t                    i, k;
    const char                   *err;
    ngx_http_ai_proxy_target_t   *t, **tp;

    value = cf->args->elts;

    tp = pmcf->targets.elts;

    for (i = 0; i < pmcf->targets.nelts; i++) {
        if (tp[i]->name.len == value[1].len
            && ngx_strncmp(tp[i]->name.data, value[1].data, value[1].len)
               == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ai_target \"%V\" is duplicate", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    provider = NGX_HTTP_AI_PROXY_OPENAI;
    ngx_str_null(&host);

    /* the provider and the host first: the URL's defaults depend on them */

    for (i = 3; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "provider=", 9) == 0) {
            s.data = value[i].data + 9;
            s.len = value[i].len - 9;

            provider = ngx_http_ai_proxy_provider_value(&s);

            if (provider == NGX_ERROR) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "ai_target \"%V\": unknown provider "
                                   "\"%V\" (openai, azure, anthropic or "
                                   "gemini; \"openai\" serves any "
                                   "OpenAI-compatible API)", &value[1], &s);
                return NGX_CONF_ERROR;
            }

        } else if (ngx_strncmp(value[i].data, "host=", 5) == 0) {
            host.data = value[i].data + 5;
            host.len = value[i].len - 5;
        }
    }

    t = ngx_http_ai_proxy_target_create(cf, &value[1], &value[2], provider,
                                        &host);
    if (t == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 3; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "provider=", 9) == 0
            || ngx_strncmp(value[i].data, "host=", 5) == 0)
        {
            continue;
        }

        if (ngx_strncmp(value[i].data, "key=", 4) == 0) {
            s.data = value[i].data + 4;
            s.len = value[i].len - 4;

            if (s.len > 4 && ngx_strncmp(s.data, "env:", 4) == 0
                && getenv((char *) s.data + 4) == NULL)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "ai_target \"%V\": the environment "
                                   "variable \"%s\" of \"%V\" is not set "
                                   "(set it for NGINX, and \"env %s;\" in "
                                   "the main context keeps it)", &value[1],
                                   s.data + 4, &value[i], s.data + 4);
                return NGX_CONF_ERROR;
            }

            rv = ngx_http_ai_proxy_target_key(cf, t, &s);
            if (rv != NGX_CONF_OK) {
                return rv;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "models=", 7) == 0) {
            t->models = ngx_array_create(cf->pool, 4, sizeof(ngx_str_t));
            if (t->models == NULL) {
                return NGX_CONF_ERROR;
            }

            p = value[i].data + 7;
            last = value[i].data + value[i].len;

            while (p < last) {
                start = p;

                while (p < last && *p != ',') {
                    p++;
                }

                if (p > start) {
                    glob = ngx_array_push(t->models);
                    if (glob == NULL) {
                        return NGX_CONF_ERROR;
                    }

                    /* NUL-terminated for ngx_http_ai_glob_match() */
                    glob->len = p - start;
                    glob->data = ngx_pnalloc(cf->pool, glob->len + 1);
                    if (glob->data == NULL) {
                        return NGX_CONF_ERROR;
                    }

                    ngx_cpystrn(glob->data, start, glob->len + 1);

                    err = ngx_http_ai_glob_invalid(glob);

                    if (err) {
                        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                           "ai_target \"%V\": invalid model "
                                           "pattern \"%V\" in \"models=\": "
                                           "%s", &value[1], glob, err);
                        return NGX_CONF_ERROR;
                    }
                }

                p++;
            }

            if (t->models->nelts == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "ai_target \"%V\": empty \"models=\"",
                                   &value[1]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "model=", 6) == 0
            && value[i].len > 6)
        {
            t->model.data = value[i].data + 6;
            t->model.len = value[i].len - 6;
            continue;
        }

        if (ngx_strncmp(value[i].data, "weight=", 7) == 0) {
            n = ngx_atoi(value[i].data + 7, value[i].len - 7);

            if (n == NGX_ERROR || n == 0 || n > 1000) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "ai_target \"%V\": invalid weight in "
                                   "\"%V\" (1 to 1000)", &value[1],
                                   &value[i]);
                return NGX_CONF_ERROR;
            }

            t->weight = n;
            continue;
        }

        if (value[i].len == 6 && ngx_strcmp(value[i].data, "backup") == 0) {
            t->backup = 1;
            continue;
        }

        if (ngx_strncmp(value[i].data, "endpoints=", 10) == 0) {
            p = value[i].data + 10;
            last = value[i].data + value[i].len;

            while (p < last) {
                start = p;

                while (p < last && *p != ',') {
                    p++;
                }

                if (p - start == 4 && ngx_strncmp(start, "chat", 4) == 0) {
                    t->endpoints |= NGX_HTTP_AI_PROXY_EP_CHAT;

                } else if (p - start == 10
                           && ngx_strncmp(start, "embeddings", 10) == 0)
                {
                    t->endpoints |= NGX_HTTP_AI_PROXY_EP_EMBEDDINGS;

                } else {
                    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                       "ai_target \"%V\": invalid \"%V\" "
                                       "(chat, embeddings, or both "
                                       "separated by a comma)", &value[1],
                                       &value[i]);
                    return NGX_CONF_ERROR;
                }

                p++;
            }

            if (t->endpoints == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "ai_target \"%V\": empty \"endpoints=\"",
                                   &value[1]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "responses=", 10) == 0) {
            s.data = value[i].data + 10;
            s.len = value[i].len - 10;

            if (s.len == 6 && ngx_strncmp(s.data, "native", 6) == 0) {
                t->chat_only = 0;

            } else if (s.len == 4 && ngx_strncmp(s.data, "chat", 4) == 0) {
                t->chat_only = 1;

            } else {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "ai_target \"%V\": invalid \"%V\" "
                                   "(\"native\" or \"chat\")", &value[1],
                                   &value[i]);
                return NGX_CONF_ERROR;
            }

            if (provider != NGX_HTTP_AI_PROXY_OPENAI
                && provider != NGX_HTTP_AI_PROXY_AZURE)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "ai_target \"%V\": \"responses=\" is for "
                                   "openai and azure targets", &value[1]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "api_version=", 12) == 0
            && value[i].len > 12)
        {
            t->api_version.data = value[i].data + 12;
            t->api_version.len = value[i].len - 12;

            for (k = 0; k < t->api_version.len; k++) {
                if (!((t->api_version.data[k] >= '0'
                       && t->api_version.data[k] <= '9')
                      || (t->api_version.data[k] >= 'a'
                          && t->api_version.data[k] <= 'z')
                      || t->api_version.data[k] == '-'))
                {
                    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                       "ai_target \"%V\": invalid "
                                       "\"%V\"", &value[1], &value[i]);
                    return NGX_CONF_ERROR;
                }
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_target \"%V\": invalid parameter \"%V\"",
                           &value[1], &value[i]);
        return NGX_CONF_ERROR;
    }

    if ((t->endpoints & NGX_HTTP_AI_PROXY_EP_EMBEDDINGS)
        && t->format != NGX_HTTP_AI_FMT_OPENAI)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_target \"%V\": embeddings are OpenAI's API "
                           "only, the provider \"%V\" has none", &value[1],
                           &ngx_http_ai_proxy_providers[t->provider].name);
        return NGX_CONF_ERROR;
    }

    tp = ngx_array_push(&pmcf->targets);
    if (tp == NULL) {
        return NGX_CONF_ERROR;
    }

    *tp = t;

    return NGX_CONF_OK;
}


/*
 * A target from its URL: the host is resolved or the upstream{} block is
 * found when the configuration is read, as for a static proxy_pass.
 */

ngx_http_ai_proxy_target_t *
ngx_http_ai_proxy_target_create(ngx_conf_t *cf, ngx_str_t *name,
    ngx_str_t *url, ngx_uint_t provider, ngx_str_t *host)
{
    size_t                       add;
    u_char                      *p;
    u_short                      port;
    ngx_str_t                    base, cname, help;
    ngx_url_t                       u;
    ngx_http_ai_proxy_target_t     *t, **tp;
    ngx_http_ai_proxy_main_conf_t  *pmcf;

    t = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_proxy_target_t));
    if (t == NULL) {
        return NULL;
    }

    /* every target, for the keys' shared state */

    pmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ai_proxy_module);

    tp = ngx_array_push(&pmcf->all);
    if (tp == NULL) {
        return NULL;
    }

    *tp = t;

    if (name) {
        t->name = *name;
    }

    t->provider = provider;
    t->format = ngx_http_ai_proxy_providers[provider].format;
    t->weight = 1;
    t->file = cf->conf_file->file.name.data;
    t->line = cf->conf_file->line;

    if (ngx_array_init(&t->keys, cf->pool, 1,
                       sizeof(ngx_http_ai_proxy_key_t))
        != NGX_OK)
    {
        return NULL;
    }

    if (ngx_strncasecmp(url->data, (u_char *) "http://", 7) == 0) {
        add = 7;
        port = 80;

    } else if (ngx_strncasecmp(url->data, (u_char *) "https://", 8) == 0) {

#if (NGX_HTTP_SSL)
        t->ssl = 1;
        add = 8;
        port = 443;
#else
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the https URL of \"%V\" requires NGINX built "
                           "with SSL support", name);
        return NULL;
#endif

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid URL prefix in \"%V\", \"http://\" or "
                           "\"https://\" is expected", url);
        return NULL;
    }

    if (ngx_http_script_variables_count(url) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "variables are not supported in the URL \"%V\"",
                           url);
        return NULL;
    }

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.url.len = url->len - add;
    u.url.data = url->data + add;
    u.default_port = port;
    u.uri_part = 1;
    u.no_resolve = 1;

    t->upstream = ngx_http_upstream_add(cf, &u, 0);
    if (t->upstream == NULL) {
        return NULL;
    }

    base = u.uri;

    if (ngx_strlchr(base.data, base.data + base.len, '?')
        || ngx_strlchr(base.data, base.data + base.len, '#'))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "a query string is not allowed in the URL "
                           "\"%V\"", url);
        return NULL;
    }

    while (base.len && base.data[base.len - 1] == '/') {
        base.len--;
    }

    t->base = base;

    if (host && host->len) {
        for (p = host->data; p < host->data + host->len; p++) {
            if (*p <= ' ' || *p == 0x7f || *p == '/' || *p == '$') {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid host \"%V\" for \"%V\"", host,
                                   name);
                return NULL;
            }
        }

        t->host = *host;

    } else if (u.family == AF_UNIX) {
        ngx_str_set(&t->host, "localhost");

    } else if (u.no_port || u.port == u.default_port) {
        t->host = u.host;

    } else {
        t->host.len = u.host.len + 1 + u.port_text.len;
        t->host.data = u.host.data;
    }

    if (name == NULL) {
        /* the target of "ai_proxy_pass" is known by its host */
        t->name = t->host;
        name = &t->name;
    }

    /* counters for the metrics: cooldowns and disabled keys, by target */

    cname.len = sizeof("ai_key_cooldowns_total{target=\"\"}") - 1
                + name->len;
    cname.data = ngx_pnalloc(cf->pool, cname.len);
    if (cname.data == NULL) {
        return NULL;
    }

    ngx_sprintf(cname.data, "ai_key_cooldowns_total{target=\"%V\"}", name);
    ngx_str_set(&help, "Upstream keys cooled down after a 429.");

    t->cooldowns = ngx_http_ai_counter_add(cf, &cname, &help);
    if (t->cooldowns == NULL) {
        return NULL;
    }

    cname.len = sizeof("ai_key_disables_total{target=\"\"}") - 1 + name->len;
    cname.data = ngx_pnalloc(cf->pool, cname.len);
    if (cname.data == NULL) {
        return NULL;
    }

    ngx_sprintf(cname.data, "ai_key_disables_total{target=\"%V\"}", name);
    ngx_str_set(&help, "Upstream keys taken out after a 401 or 403.");

    t->disables = ngx_http_ai_counter_add(cf, &cname, &help);
    if (t->disables == NULL) {
        return NULL;
    }

    return t;
}


char *
ngx_http_ai_proxy_target_key(ngx_conf_t *cf, ngx_http_ai_proxy_target_t *t,
    ngx_str_t *value)
{
    char                     *rv, *prefix;
    u_char                   *p;
    size_t                    len;
    ngx_str_t                 key;
    ngx_http_ai_proxy_key_t  *k;

    rv = ngx_http_ai_proxy_key_value(cf, "key", value, &key);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    prefix = ngx_http_ai_proxy_providers[t->provider].key_header;
    len = ngx_strlen(prefix);

    k = ngx_array_push(&t->keys);
    if (k == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(k, sizeof(ngx_http_ai_proxy_key_t));

    /* the worker's own until the shared zone gives the key its node */

    k->state = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_proxy_key_state_t));
    if (k->state == NULL) {
        return NGX_CONF_ERROR;
    }

    k->index = t->keys.nelts;
    k->header.len = len + key.len + 2;
    k->header.data = ngx_pnalloc(cf->pool, k->header.len);
    if (k->header.data == NULL) {
        return NGX_CONF_ERROR;
    }

    p = ngx_cpymem(k->header.data, prefix, len);
    p = ngx_cpymem(p, key.data, key.len);
    *p++ = CR; *p = LF;

    /* the shared state of a key that changed starts again */
    k->sum = ngx_crc32_long(k->header.data, k->header.len);

    return NGX_CONF_OK;
}


/*
 * env:NAME | file:/path: the key is read when the configuration is read,
 * by the master process (a reload reads it again; "env NAME;" keeps NAME
 * for the workers).  An inline key is refused, so that keys stay out of
 * configuration files, and a key never appears in a message.
 */

char *
ngx_http_ai_proxy_key_value(ngx_conf_t *cf, const char *directive,
    ngx_str_t *value, ngx_str_t *key)
{
    char       *env, *rv, *what;
    u_char     *p, *last;
    ngx_str_t   name;

    if (value->len > 4 && ngx_strncmp(value->data, "env:", 4) == 0) {

        name.data = value->data + 4;
        name.len = value->len - 4;

        /* the token of the directive is NUL-terminated; "key=" too */

        env = getenv((char *) name.data);

        if (env == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%s\": the environment variable \"%V\" is "
                               "not set", directive, &name);
            return NGX_CONF_ERROR;
        }

        key->data = (u_char *) env;
        key->len = ngx_strlen(env);
        what = "environment variable";

    } else if (value->len > 5 && ngx_strncmp(value->data, "file:", 5) == 0) {

        name.data = value->data + 5;
        name.len = value->len - 5;

        if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        rv = ngx_http_ai_proxy_read_key(cf, &name, key);
        if (rv != NGX_CONF_OK) {
            return rv;
        }

        what = "file";

    } else {
        /* the value may be a key: it is not shown */

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%s\" must be \"env:NAME\", \"file:/path\"%s; "
                           "keys are not accepted inline", directive,
                           ngx_strcmp(directive, "ai_proxy_key") == 0
                           ? " or \"off\"" : "");
        return NGX_CONF_ERROR;
    }

    /* white space around the key (the new line of a file) is dropped */

    p = key->data;
    last = key->data + key->len;

    while (p < last && (*p == ' ' || *p == '\t' || *p == CR || *p == LF)) {
        p++;
    }

    while (last > p
           && (last[-1] == ' ' || last[-1] == '\t' || last[-1] == CR
               || last[-1] == LF))
    {
        last--;
    }

    if (p == last) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%s\": the key in %s \"%V\" is empty",
                           directive, what, &name);
        return NGX_CONF_ERROR;
    }

    key->data = p;
    key->len = last - p;

    for ( /* void */ ; p < last; p++) {
        if (*p <= ' ' || *p == 0x7f) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%s\": the key in %s \"%V\" has white "
                               "space or control characters", directive,
                               what, &name);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_ai_proxy_read_key(ngx_conf_t *cf, ngx_str_t *file, ngx_str_t *key)
{
    off_t            size;
    ssize_t          n;
    ngx_fd_t         fd;
    ngx_file_info_t  fi;

    fd = ngx_open_file(file->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "cannot read the key file \"%V\"", file);
        return NGX_CONF_ERROR;
    }

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "cannot read the key file \"%V\"", file);
        goto failed;
    }

    size = ngx_file_size(&fi);

    if (!ngx_is_file(&fi) || size > NGX_HTTP_AI_PROXY_KEY_MAX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the key file \"%V\" is not a regular file of "
                           "at most %d bytes", file,
                           NGX_HTTP_AI_PROXY_KEY_MAX);
        goto failed;
    }

    key->data = ngx_pnalloc(cf->pool, (size_t) size + 1);
    if (key->data == NULL) {
        goto failed;
    }

    n = ngx_read_fd(fd, key->data, (size_t) size + 1);

    if (n == -1 || n > size) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "cannot read the key file \"%V\"", file);
        goto failed;
    }

    key->len = n;

    if (ngx_close_file(fd) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, cf->log, ngx_errno,
                      ngx_close_file_n " \"%V\" failed", file);
    }

    return NGX_CONF_OK;

failed:

    if (ngx_close_file(fd) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, cf->log, ngx_errno,
                      ngx_close_file_n " \"%V\" failed", file);
    }

    return NGX_CONF_ERROR;
}


/*
 * The location's balancer: an upstream of our own whose peers are the
 * targets.  The upstream machinery calls it for each attempt.
 */

char *
ngx_http_ai_proxy_targets_init(ngx_conf_t *cf,
    ngx_http_ai_proxy_loc_conf_t *plcf)
{
    ngx_uint_t                     i;
    ngx_http_ai_proxy_target_t   **t;
    ngx_http_upstream_srv_conf_t  *us;

    if (plcf->targets->nelts > NGX_HTTP_AI_PROXY_MAX_TARGETS) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "too many targets in a location (%ui, at most "
                           "%d)", plcf->targets->nelts,
                           NGX_HTTP_AI_PROXY_MAX_TARGETS);
        return NGX_CONF_ERROR;
    }

    /* with a "resolver", the targets' names are resolved again */

    t = plcf->targets->elts;

    for (i = 0; i < plcf->targets->nelts; i++) {
        if (ngx_http_ai_proxy_resolve_conf(cf, t[i]) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

    us = ngx_pcalloc(cf->pool, sizeof(ngx_http_upstream_srv_conf_t));
    if (us == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_str_set(&us->host, "ai_targets");
    us->peer.init = ngx_http_ai_proxy_init_peer;
    us->peer.data = plcf;
    us->file_name = cf->conf_file->file.name.data;
    us->line = cf->conf_file->line;

    plcf->balancer = us;
    plcf->upstream.upstream = us;

    return NGX_CONF_OK;
}


/*
 * The candidates for the request's model (the id of ".../models/{id}",
 * empty for the model list), after aliases: NGX_DECLINED if no target
 * serves it.
 */

ngx_int_t
ngx_http_ai_proxy_route(ngx_http_request_t *r, ngx_http_ai_proxy_ctx_t *ctx,
    ngx_str_t *model)
{
    ngx_http_ai_proxy_loc_conf_t  *plcf;

    plcf = ctx->conf;

    ctx->model = *ngx_http_ai_proxy_resolve_alias(plcf, model);

    ctx->candidates = ngx_http_ai_proxy_served(plcf, ctx->ai->req.endpoint,
                                               &ctx->model);

    if (ctx->candidates == 0) {
        return NGX_DECLINED;
    }

    ctx->tries = plcf->tries;

    return NGX_OK;
}


/* the model an alias stands for, or the model itself */

ngx_str_t *
ngx_http_ai_proxy_resolve_alias(ngx_http_ai_proxy_loc_conf_t *plcf,
    ngx_str_t *model)
{
    ngx_uint_t                  i;
    ngx_http_ai_proxy_alias_t  *alias;

    if (plcf->aliases == NULL || plcf->aliases == NGX_CONF_UNSET_PTR) {
        return model;
    }

    alias = plcf->aliases->elts;

    for (i = 0; i < plcf->aliases->nelts; i++) {
        if (alias[i].from.len == model->len
            && ngx_strncmp(alias[i].from.data, model->data, model->len)
               == 0)
        {
            return &alias[i].to;
        }
    }

    return model;
}


/*
 * The targets of the location that may serve the model (a bit each) for
 * the endpoint (NGX_HTTP_AI_EP_UNKNOWN: any).  A backup target without
 * "models=" only backs up a model some primary target serves: a model no
 * primary serves is refused (404) instead of silently going to it.
 */

uint64_t
ngx_http_ai_proxy_served(ngx_http_ai_proxy_loc_conf_t *plcf,
    ngx_uint_t endpoint, ngx_str_t *model)
{
    uint64_t                      served, pending;
    ngx_uint_t                    i, primaries, primary;
    ngx_http_ai_proxy_target_t  **t;

    t = plcf->targets->elts;
    served = 0;
    pending = 0;
    primaries = 0;
    primary = 0;

    for (i = 0; i < plcf->targets->nelts; i++) {

        if (!t[i]->backup) {
            primaries = 1;
        }

        if (!ngx_http_ai_proxy_serves(t[i], endpoint, model)) {
            continue;
        }

        if (t[i]->backup && t[i]->models == NULL) {
            pending |= (uint64_t) 1 << i;
            continue;
        }

        served |= (uint64_t) 1 << i;

        if (!t[i]->backup) {
            primary = 1;
        }
    }

    if (primary || !primaries) {
        served |= pending;
    }

    return served;
}


static ngx_int_t
ngx_http_ai_proxy_serves(ngx_http_ai_proxy_target_t *t, ngx_uint_t endpoint,
    ngx_str_t *model)
{
    ngx_str_t  *glob;
    ngx_uint_t  i, endpoints;

    endpoints = t->endpoints;

    if (endpoints == 0) {
        /*
         * by default: chat, and embeddings for an OpenAI-compatible API
         * unless the target is sent one (chat) model
         */

        endpoints = NGX_HTTP_AI_PROXY_EP_CHAT;

        if (t->format == NGX_HTTP_AI_FMT_OPENAI && t->model.len == 0) {
            endpoints |= NGX_HTTP_AI_PROXY_EP_EMBEDDINGS;
        }
    }

    switch (endpoint) {

    case NGX_HTTP_AI_EP_EMBEDDINGS:
        if (!(endpoints & NGX_HTTP_AI_PROXY_EP_EMBEDDINGS)) {
            return 0;
        }

        break;

    case NGX_HTTP_AI_EP_MODELS:
        if (t->format != NGX_HTTP_AI_FMT_OPENAI) {
            /* OpenAI's API only */
            return 0;
        }

        break;

    case NGX_HTTP_AI_EP_UNKNOWN:
        /* any endpoint: the model list, the configuration's checks */
        break;

    default: /* chat, messages, and any other door to a chat model */
        if (!(endpoints & NGX_HTTP_AI_PROXY_EP_CHAT)) {
            return 0;
        }
    }

    if (endpoint == NGX_HTTP_AI_EP_RESPONSE) {
        /* a stored response: only where responses are stored */
        return ngx_http_ai_proxy_format(t, endpoint)
               == NGX_HTTP_AI_FMT_RESPONSES;
    }

    if (t->models == NULL
        || (endpoint == NGX_HTTP_AI_EP_MODELS && model->len == 0))
    {
        /* the model list: any OpenAI target knows its own */
        return 1;
    }

    if (model->len == 0) {
        return 0;
    }

    glob = t->models->elts;

    for (i = 0; i < t->models->nelts; i++) {
        if (ngx_http_ai_glob_match(&glob[i], model)) {
            return 1;
        }
    }

    return 0;
}


static ngx_int_t
ngx_http_ai_proxy_init_peer(ngx_http_request_t *r,
    ngx_http_upstream_srv_conf_t *us)
{
    ngx_http_ai_proxy_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_proxy_module);

    r->upstream->peer.get = ngx_http_ai_proxy_get_peer;
    r->upstream->peer.free = ngx_http_ai_proxy_free_peer;
    r->upstream->peer.data = ctx;
    r->upstream->peer.tries = ctx->tries;
#if (NGX_HTTP_SSL)
    r->upstream->peer.set_session = ngx_http_ai_proxy_set_session;
    r->upstream->peer.save_session = ngx_http_ai_proxy_save_session;
#endif

    ctx->first_start = ngx_current_msec;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_proxy_get_peer(ngx_peer_connection_t *pc, void *data)
{
    ngx_http_ai_proxy_ctx_t *ctx = data;

    u_char                        *p;
    ngx_int_t                      rc;
    ngx_http_request_t            *r;
    ngx_http_upstream_t           *u;
    ngx_uint_t                     last_index;
    ngx_str_t                      last_name, last_provider, last_model;
    ngx_uint_t                     last_format;
    ngx_http_ai_proxy_key_t       *last_key;
    ngx_http_ai_proxy_target_t    *last_target;
    ngx_http_upstream_srv_conf_t  *us;

    r = ctx->request;
    u = r->upstream;

    /* what an earlier attempt left for an error page does not hold now */

    ctx->ai->error_status = 0;
    ngx_str_null(&ctx->ai->error_message);

    if (ctx->inner_retry) {
        /* the same target and request: its balancer has another server */

        ctx->inner_retry = 0;

        return ngx_http_ai_proxy_inner_get(pc, ctx);
    }

    if (ctx->prepared) {
        /* the first attempt: picked and prepared by the content handler */
        ctx->prepared = 0;

    } else {
        /* the attempt that failed, as the logs show it if none follows */
        last_target = ctx->target;
        last_index = ctx->index;
        last_key = ctx->key;
        last_name = ctx->ai->target;
        last_provider = ctx->ai->provider;
        last_model = ctx->ai->upstream_model;
        last_format = ctx->ai->upstream_format;

        for ( ;; ) {
            rc = ngx_http_ai_proxy_pick(r, ctx, 0);

            if (rc != NGX_OK) {
                ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                              "ai_proxy: no target left for model \"%V\" "
                              "(failed, cannot carry the request, or all "
                              "keys cooling down)", &ctx->model);

                ctx->target = last_target;
                ctx->index = last_index;
                ctx->key = last_key;
                ctx->ai->target = last_name;
                ctx->ai->provider = last_provider;
                ctx->ai->upstream_model = last_model;
                ctx->ai->upstream_format = last_format;
                ngx_str_null(&ctx->ai->error_message);

                if (ngx_http_ai_proxy_cooling_error(r, ctx) != NGX_OK) {
                    return NGX_ERROR;
                }

                return NGX_BUSY;
            }

            rc = ngx_http_ai_proxy_prepare(r, ctx);

            if (rc != NGX_DECLINED) {
                break;
            }

            /*
             * the first attempt's target could carry the request, this
             * one cannot: not the client's fault (a 400), the target is
             * out for this request
             */

            ctx->failed |= (uint64_t) 1 << ctx->index;
        }

        if (rc != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (ngx_http_ai_proxy_build_request(r, ctx) != NGX_OK) {
        return NGX_ERROR;
    }

    /* the target's own balancer (round robin, keepalive ...) */

    us = ctx->target->upstream;

    /* the round robin's init takes u->peer.data as its own if set */
    u->peer.data = NULL;

    if (us->peer.init(r, us) != NGX_OK) {
        return NGX_ERROR;
    }

    ctx->inner_get = u->peer.get;
    ctx->inner_free = u->peer.free;
    ctx->inner_data = u->peer.data;
#if (NGX_HTTP_SSL)
    ctx->inner_set_session = u->peer.set_session;
    ctx->inner_save_session = u->peer.save_session;

    u->peer.set_session = ngx_http_ai_proxy_set_session;
    u->peer.save_session = ngx_http_ai_proxy_save_session;

    /* the TLS name: the target's host, without the port */

    u->ssl = ctx->target->ssl;
    u->ssl_name = ctx->target->host;

    p = ngx_strlchr(u->ssl_name.data, u->ssl_name.data + u->ssl_name.len,
                    ':');
    if (p) {
        u->ssl_name.len = p - u->ssl_name.data;
    }

    if (u->ssl) {
        ngx_str_set(&u->schema, "https://");

    } else {
        ngx_str_set(&u->schema, "http://");
    }
#endif

    u->peer.get = ngx_http_ai_proxy_get_peer;
    u->peer.free = ngx_http_ai_proxy_free_peer;
    u->peer.data = ctx;

    ctx->inner_tries = pc->tries;

    return ngx_http_ai_proxy_inner_get(pc, ctx);
}


/*
 * The target's balancer gives the server: only then is it an attempt,
 * counted in $ai_attempts (a request refused before, by the gateway, has
 * none).  A connection refused by the server is an attempt.
 */

static ngx_int_t
ngx_http_ai_proxy_inner_get(ngx_peer_connection_t *pc,
    ngx_http_ai_proxy_ctx_t *ctx)
{
    ngx_int_t               rc;
    ngx_http_ai_attempt_t  *a;

    rc = ctx->inner_get(pc, ctx->inner_data);
    pc->tries = ctx->tries;

    if (rc == NGX_OK) {
        /* the address resolved last, when the name is resolved again */
        ngx_http_ai_proxy_resolve_peer(ctx, pc);
    }

    if (rc == NGX_OK || rc == NGX_DONE) {
        ctx->target->inflight++;
        ctx->counted = 1;
        ctx->ai->attempts++;

        /* the trail the record shows: target, key index, how it went */

        a = ngx_http_ai_add_attempt(ctx->request);

        if (a) {
            a->target = ctx->target->name;
            a->key = ctx->key ? ctx->key->index : 0;
            a->start = ngx_current_msec;
        }
    }

    return rc;
}


/* the attempt at hand: the last of the trail */

static ngx_http_ai_attempt_t *
ngx_http_ai_proxy_attempt(ngx_http_request_t *r, ngx_http_ai_proxy_ctx_t *ctx)
{
    ngx_array_t            *trail;
    ngx_http_ai_attempt_t  *a;

    trail = ngx_http_ai_attempts(r);

    if (trail == NULL || trail->nelts != ctx->ai->attempts) {
        return NULL;
    }

    a = trail->elts;

    return &a[trail->nelts - 1];
}


/*
 * The provider's id of the request (OpenAI and Azure "x-request-id",
 * Anthropic "request-id"): hostile input, kept only when it is a short
 * run of visible characters.
 */

static void
ngx_http_ai_proxy_request_id(ngx_http_request_t *r, ngx_str_t *id)
{
    u_char           *p;
    ngx_uint_t        i, j;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->upstream->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (!((h[i].key.len == sizeof("x-request-id") - 1
               && ngx_strncmp(h[i].lowcase_key, "x-request-id",
                              sizeof("x-request-id") - 1)
                  == 0)
              || (h[i].key.len == sizeof("request-id") - 1
                  && ngx_strncmp(h[i].lowcase_key, "request-id",
                                 sizeof("request-id") - 1)
                     == 0)))
        {
            continue;
        }

        if (h[i].value.len == 0 || h[i].value.len > 128) {
            return;
        }

        for (j = 0; j < h[i].value.len; j++) {
            if (h[i].value.data[j] <= 0x20 || h[i].value.data[j] >= 0x7f
                || h[i].value.data[j] == '"' || h[i].value.data[j] == '\\')
            {
                return;
            }
        }

        p = ngx_pnalloc(r->pool, h[i].value.len);
        if (p == NULL) {
            return;
        }

        ngx_memcpy(p, h[i].value.data, h[i].value.len);

        id->data = p;
        id->len = h[i].value.len;

        return;
    }
}


/*
 * The first attempt's target and request, picked and prepared by the
 * content handler before the upstream starts, so that a request that no
 * target can take now is refused without an attempt: a candidate that
 * cannot carry the request is passed over for the next; NGX_BUSY when
 * those that can have no usable key, NGX_DECLINED when none can carry it
 * (ai->error_message says why, for the last one tried).
 */

ngx_int_t
ngx_http_ai_proxy_first(ngx_http_request_t *r, ngx_http_ai_proxy_ctx_t *ctx)
{
    ngx_int_t  rc;

    for ( ;; ) {
        rc = ngx_http_ai_proxy_pick(r, ctx, 0);

        if (rc != NGX_OK) {
            /*
             * none left: every candidate cannot carry the request (the
             * last one's reason), or those that can have no usable key
             */
            return ((ctx->candidates & ~ctx->failed) == 0) ? NGX_DECLINED
                                                             : NGX_BUSY;
        }

        rc = ngx_http_ai_proxy_prepare(r, ctx);

        if (rc != NGX_DECLINED) {
            break;
        }

        /* this target cannot carry the request: another one may */
        ctx->failed |= (uint64_t) 1 << ctx->index;
    }

    if (rc != NGX_OK) {
        return rc;
    }

    ngx_str_null(&ctx->ai->error_message);
    ctx->prepared = 1;

    return NGX_OK;
}


/*
 * No candidate has a usable key: 503 with Retry-After (the first key
 * back, in seconds, rounded up) while keys cool down after a 429, or 502
 * when the provider refused them all (401, 403): the gateway's
 * credentials must be fixed, the client can do nothing about it.
 */

ngx_int_t
ngx_http_ai_proxy_unavailable(ngx_http_request_t *r,
    ngx_http_ai_proxy_ctx_t *ctx)
{
    ngx_msec_t  wait;

    if (ngx_http_ai_proxy_cooling(ctx, &wait)) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ai_proxy: no target left for model \"%V\" "
                      "(all keys are cooling down)", &ctx->model);

        if (ngx_http_ai_proxy_retry_header(r, wait) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_ai_error(r, NGX_HTTP_SERVICE_UNAVAILABLE, NULL, NULL,
                                 NULL, "no upstream target is available for "
                                 "this model now (all keys are cooling "
                                 "down), retry later");
    }

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "ai_proxy: no target left for model \"%V\" (the provider "
                  "refused every key)", &ctx->model);

    return ngx_http_ai_error(r, NGX_HTTP_BAD_GATEWAY, NULL, NULL, NULL,
                             "the upstream provider refused the gateway's "
                             "credentials");
}


/*
 * Does a key of a candidate only cool down (after a 429, not taken out
 * after a 401 or 403)?  *wait: the shortest time left of those, in ms.
 */

static ngx_uint_t
ngx_http_ai_proxy_cooling(ngx_http_ai_proxy_ctx_t *ctx, ngx_msec_t *wait)
{
    ngx_msec_t                     left;
    ngx_uint_t                     i, j, found, revoked;
    ngx_http_ai_proxy_key_t       *k;
    ngx_http_ai_proxy_target_t   **t;

    t = ctx->conf->targets->elts;
    found = 0;
    *wait = 0;

    for (i = 0; i < ctx->conf->targets->nelts; i++) {

        if (!(ctx->candidates & ((uint64_t) 1 << i))) {
            continue;
        }

        k = t[i]->keys.elts;

        for (j = 0; j < t[i]->keys.nelts; j++) {

            revoked = 0;
            left = ngx_http_ai_proxy_key_out(&k[j], &revoked);

            if (left == 0 || revoked) {
                continue;
            }

            if (!found || left < *wait) {
                *wait = left;
            }

            found = 1;
        }
    }

    return found;
}


/*
 * An attempt failed and no target is left while some candidate's keys
 * cool down: the error page is a 503 with Retry-After (the first key
 * back), as when all keys cool down, rather than the failure's 502.
 */

static ngx_int_t
ngx_http_ai_proxy_cooling_error(ngx_http_request_t *r,
    ngx_http_ai_proxy_ctx_t *ctx)
{
    ngx_msec_t  wait;

    if (!ngx_http_ai_proxy_cooling(ctx, &wait)) {
        return NGX_OK;
    }

    if (ngx_http_ai_proxy_retry_header(r, wait) != NGX_OK) {
        return NGX_ERROR;
    }

    ctx->ai->error_status = NGX_HTTP_SERVICE_UNAVAILABLE;
    ngx_str_set(&ctx->ai->error_message,
                "no upstream target is available for this model now (an "
                "attempt failed and the other keys are cooling down), retry "
                "later");

    return NGX_OK;
}


/* Retry-After: seconds, rounded up */

static ngx_int_t
ngx_http_ai_proxy_retry_header(ngx_http_request_t *r, ngx_msec_t wait)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->value.data = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
    if (h->value.data == NULL) {
        h->hash = 0;
        return NGX_ERROR;
    }

    h->hash = 1;
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif
    ngx_str_set(&h->key, "Retry-After");
    h->value.len = ngx_sprintf(h->value.data, "%M", (wait + 999) / 1000)
                   - h->value.data;

    return NGX_OK;
}


static void
ngx_http_ai_proxy_free_peer(ngx_peer_connection_t *pc, void *data,
    ngx_uint_t state)
{
    ngx_http_ai_proxy_ctx_t *ctx = data;

    ngx_http_ai_attempt_t  *a;

    if (ctx->counted) {
        ctx->counted = 0;
        ctx->target->inflight--;

        a = ngx_http_ai_proxy_attempt(ctx->request, ctx);

        if (a && (state & NGX_PEER_FAILED) && a->status == 0) {
            /* no answer: the connection failed or timed out */
            a->ms = ngx_current_msec - a->start;

            if (pc->connection && (pc->connection->read->timedout
                                   || pc->connection->write->timedout))
            {
                ngx_str_set(&a->reason, "timeout");

            } else {
                ngx_str_set(&a->reason, "error");
            }
        }
    }

    if (ctx->inner_free) {
        /* the target's balancer counts its own tries */
        pc->tries = ctx->inner_tries;
        ctx->inner_free(pc, ctx->inner_data, state);
        ctx->inner_tries = pc->tries;
    }

    if ((state & NGX_PEER_FAILED) && !ctx->key_failure) {

        if (ctx->inner_tries) {
            /* the target has another server (an upstream{} block) */
            ctx->inner_retry = 1;

        } else {
            /* the target failed, not the key: not again for this request */
            ctx->failed |= (uint64_t) 1 << ctx->index;

            /* and last for a while for "latency", which cannot measure it */
            ctx->target->failed_at = ngx_current_msec;
        }
    }

    if (ctx->tries) {
        ctx->tries--;
    }

    if (ctx->tries && (state & NGX_PEER_FAILED) && !ctx->inner_retry
        && ngx_http_ai_proxy_pick(ctx->request, ctx, 1) != NGX_OK)
    {
        /*
         * no target left: the failure at hand is the answer, unless
         * other keys only cool down
         */

        ctx->tries = 0;

        (void) ngx_http_ai_proxy_cooling_error(ctx->request, ctx);
    }

    if (ctx->tries == 0) {
        ctx->inner_retry = 0;
    }

    ctx->key_failure = 0;

    pc->tries = ctx->tries;
}


#if (NGX_HTTP_SSL)

static ngx_int_t
ngx_http_ai_proxy_set_session(ngx_peer_connection_t *pc, void *data)
{
    ngx_http_ai_proxy_ctx_t *ctx = data;

    if (ctx->inner_set_session == NULL) {
        return NGX_OK;
    }

    return ctx->inner_set_session(pc, ctx->inner_data);
}


static void
ngx_http_ai_proxy_save_session(ngx_peer_connection_t *pc, void *data)
{
    ngx_http_ai_proxy_ctx_t *ctx = data;

    if (ctx->inner_save_session) {
        ctx->inner_save_session(pc, ctx->inner_data);
    }
}

#endif


/*
 * The target of this attempt: among the candidates not failed for this
 * request and with a key to use, by the location's balancing method.
 */

static ngx_int_t
ngx_http_ai_proxy_pick(ngx_http_request_t *r, ngx_http_ai_proxy_ctx_t *ctx,
    ngx_uint_t dry)
{
    ngx_int_t                      total;
    uint64_t                       failed;
    ngx_uint_t                     i, n, index, backup;
    ngx_http_ai_proxy_key_t       *key;
    ngx_http_ai_proxy_target_t   **t, *best;
    ngx_http_ai_proxy_loc_conf_t  *plcf;

    plcf = ctx->conf;
    t = plcf->targets->elts;
    n = plcf->targets->nelts;

    best = NULL;
    total = 0;
    index = 0;
    failed = ctx->failed;

    if (dry && !ctx->key_failure) {
        /* would another attempt have a target? this one is out then */

        if (ctx->inner_tries > 1) {
            return NGX_OK;
        }

        failed |= (uint64_t) 1 << ctx->index;
    }

    /* the backup targets only when no other is left */

    for (backup = 0; backup < 2 && best == NULL; backup++) {
        for (i = 0; i < n; i++) {

            if (!(ctx->candidates & ((uint64_t) 1 << i))
                || (failed & ((uint64_t) 1 << i))
                || t[i]->backup != backup)
            {
                continue;
            }

            if (t[i]->keys.nelts && ctx->pin_key == 0
                && ngx_http_ai_proxy_pick_key(t[i]) == NULL)
            {
                continue;
            }

            if (t[i]->keys.nelts && ctx->pin_key && ctx->key_failure
                && ngx_http_ai_proxy_key_out((ngx_http_ai_proxy_key_t *)
                                             t[i]->keys.elts
                                             + (ctx->pin_key - 1)
                                               % t[i]->keys.nelts, NULL))
            {
                /*
                 * the only key that reaches a stored response was just
                 * rate limited or refused: not again in this request
                 */
                continue;
            }

            if (dry) {
                return NGX_OK;
            }

            switch (plcf->balance) {

            case NGX_HTTP_AI_PROXY_LEAST_CONN:
                if (best == NULL
                    || t[i]->inflight * best->weight
                       < best->inflight * t[i]->weight)
                {
                    best = t[i];
                    index = i;
                }

                break;

            case NGX_HTTP_AI_PROXY_LATENCY:
                /*
                 * an unknown latency first: it is how it gets known; but
                 * a target that failed without an answer in the last
                 * NGX_HTTP_AI_PROXY_FAIL_TIME comes last, or it would
                 * stay first (no answer, no measure) and every request
                 * would try it
                 */

                if (best == NULL
                    || ngx_http_ai_proxy_latency(t[i])
                       < ngx_http_ai_proxy_latency(best))
                {
                    best = t[i];
                    index = i;
                }

                break;

            default: /* NGX_HTTP_AI_PROXY_RR: smooth weighted round robin */
                t[i]->current_weight += t[i]->weight;
                total += t[i]->weight;

                if (best == NULL
                    || t[i]->current_weight > best->current_weight)
                {
                    best = t[i];
                    index = i;
                }
            }
        }
    }

    if (best == NULL) {
        return dry ? NGX_DECLINED : NGX_BUSY;
    }

    if (plcf->balance == NGX_HTTP_AI_PROXY_RR) {
        best->current_weight -= total;
    }

    key = NULL;

    if (best->keys.nelts && ctx->pin_key) {
        /* the key the response was created with: its state is there */
        key = (ngx_http_ai_proxy_key_t *) best->keys.elts
              + (ctx->pin_key - 1) % best->keys.nelts;

    } else if (best->keys.nelts) {
        key = ngx_http_ai_proxy_pick_key(best);
        best->next_key = (key->index) % best->keys.nelts;
    }

    ctx->target = best;
    ctx->index = index;
    ctx->key = key;

    return NGX_OK;
}


/*
 * "latency": a target's average time to first token, or, for a target
 * whose last attempt failed without an answer less than
 * NGX_HTTP_AI_PROXY_FAIL_TIME ago, more than any
 */

static ngx_msec_t
ngx_http_ai_proxy_latency(ngx_http_ai_proxy_target_t *t)
{
    if (t->failed_at
        && ngx_current_msec - t->failed_at < NGX_HTTP_AI_PROXY_FAIL_TIME)
    {
        return ((ngx_msec_t) 1 << 40) + t->ewma;
    }

    return t->ewma;
}


static ngx_http_ai_proxy_key_t *
ngx_http_ai_proxy_pick_key(ngx_http_ai_proxy_target_t *t)
{
    ngx_uint_t                i, n;
    ngx_http_ai_proxy_key_t  *k;

    k = t->keys.elts;
    n = t->keys.nelts;

    for (i = 0; i < n; i++) {
        k = (ngx_http_ai_proxy_key_t *) t->keys.elts + (t->next_key + i) % n;

        if (ngx_http_ai_proxy_key_out(k, NULL) == 0) {
            return k;
        }
    }

    return NULL;
}


/* the request for the target: URL, headers and the translated body */

static ngx_int_t
ngx_http_ai_proxy_prepare(ngx_http_request_t *r, ngx_http_ai_proxy_ctx_t *ctx)
{
    u_char                           *p;
    size_t                            len;
    ngx_int_t                         rc;
    ngx_str_t                         model, err, path, version;
    ngx_uint_t                        format;
    ngx_http_ai_ctx_t                *ai;
    ngx_http_ai_proxy_target_t       *t;
    ngx_http_ai_translate_request_t   tr;

    ai = ctx->ai;
    t = ctx->target;

    if (ai->req.endpoint == NGX_HTTP_AI_EP_MODELS) {
        /* the model the client named (after aliases), not the one run */
        model = ctx->model;

    } else {
        model = t->model.len ? t->model : ctx->model;
    }

    format = ngx_http_ai_proxy_format(t, ai->req.endpoint);

    ai->target = t->name;
    ai->provider = ngx_http_ai_proxy_providers[t->provider].name;
    ai->upstream_model = model;
    ai->upstream_format = format;

    ctx->host = t->host;

    if (format == NGX_HTTP_AI_FMT_RESPONSES) {
        /* the Responses API of OpenAI or Azure: its own paths */
        return ngx_http_ai_proxy_prepare_responses(r, ctx, &model);
    }

    /* the body */

    if (ai->req.endpoint == NGX_HTTP_AI_EP_MODELS) {
        ngx_str_null(&ctx->body);

    } else {
        ngx_memzero(&tr, sizeof(ngx_http_ai_translate_request_t));

        tr.from = ai->req.format;
        tr.to = format;
        tr.endpoint = ai->req.endpoint;
        tr.json = ai->req.json;
        tr.view = &ai->req;
        tr.body = ai->req.body;
        tr.model = model;
        tr.max_tokens = ctx->conf->max_tokens;
        tr.stream = ai->req.stream;
        tr.force_usage = (t->format == NGX_HTTP_AI_FMT_OPENAI
                          && ai->req.stream
                          && ai->req.endpoint == NGX_HTTP_AI_EP_CHAT);
        tr.prepend = ctx->conf->prepend;
        tr.append = ctx->conf->append;

        rc = ngx_http_ai_translate_request(r->pool, &tr, &ctx->body, &err);

        if (rc == NGX_DECLINED) {
            /* the client asked what this target cannot do: a 400 */

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

    /* the path */

    switch (t->provider) {

    case NGX_HTTP_AI_PROXY_AZURE:
        version = t->api_version;

        if (version.len == 0) {
            ngx_str_set(&version, "2024-10-21");
        }

        if (ai->req.endpoint == NGX_HTTP_AI_EP_MODELS) {

            /* "/openai/models", or "/openai/models/{id}" */

            len = t->base.len + sizeof("/openai/models/") - 1
                  + 3 * model.len + sizeof("?api-version=") - 1
                  + version.len;

            ctx->uri.data = ngx_pnalloc(r->pool, len);
            if (ctx->uri.data == NULL) {
                return NGX_ERROR;
            }

            p = ngx_sprintf(ctx->uri.data, "%V/openai/models", &t->base);

            if (model.len) {
                *p++ = '/';
                p = (u_char *) ngx_escape_uri(p, model.data, model.len,
                                              NGX_ESCAPE_URI_COMPONENT);
            }

            p = ngx_sprintf(p, "?api-version=%V", &version);

            ctx->uri.len = p - ctx->uri.data;
            break;
        }

        if (ai->req.endpoint == NGX_HTTP_AI_EP_EMBEDDINGS) {
            ngx_str_set(&path, "/embeddings");

        } else {
            ngx_str_set(&path, "/chat/completions");
        }

        len = t->base.len + sizeof("/openai/deployments/") - 1
              + 3 * model.len + path.len + sizeof("?api-version=") - 1
              + version.len;

        ctx->uri.data = ngx_pnalloc(r->pool, len);
        if (ctx->uri.data == NULL) {
            return NGX_ERROR;
        }

        p = ngx_sprintf(ctx->uri.data, "%V/openai/deployments/", &t->base);
        p = (u_char *) ngx_escape_uri(p, model.data, model.len,
                                      NGX_ESCAPE_URI_COMPONENT);
        p = ngx_sprintf(p, "%V?api-version=%V", &path, &version);

        ctx->uri.len = p - ctx->uri.data;
        break;

    case NGX_HTTP_AI_PROXY_ANTHROPIC:
        ctx->uri.data = ngx_pnalloc(r->pool,
                                    t->base.len
                                    + sizeof("/v1/messages/count_tokens"));
        if (ctx->uri.data == NULL) {
            return NGX_ERROR;
        }

        if (t->base.len >= 3
            && ngx_strncmp(t->base.data + t->base.len - 3, "/v1", 3) == 0)
        {
            p = ngx_sprintf(ctx->uri.data, "%V/messages", &t->base);

        } else {
            p = ngx_sprintf(ctx->uri.data, "%V/v1/messages", &t->base);
        }

        if (ai->req.endpoint == NGX_HTTP_AI_EP_COUNT_TOKENS) {
            p = ngx_cpymem(p, "/count_tokens", sizeof("/count_tokens") - 1);
        }

        ctx->uri.len = p - ctx->uri.data;
        break;

    case NGX_HTTP_AI_PROXY_GEMINI:
        len = t->base.len + sizeof("/v1beta/models/") - 1 + 3 * model.len
              + sizeof(":streamGenerateContent?alt=sse") - 1;

        ctx->uri.data = ngx_pnalloc(r->pool, len);
        if (ctx->uri.data == NULL) {
            return NGX_ERROR;
        }

        if ((t->base.len >= 3
             && ngx_strncmp(t->base.data + t->base.len - 3, "/v1", 3) == 0)
            || (t->base.len >= 7
                && ngx_strncmp(t->base.data + t->base.len - 7, "/v1beta",
                               7) == 0))
        {
            p = ngx_sprintf(ctx->uri.data, "%V/models/", &t->base);

        } else {
            p = ngx_sprintf(ctx->uri.data, "%V/v1beta/models/", &t->base);
        }

        p = (u_char *) ngx_escape_uri(p, model.data, model.len,
                                      NGX_ESCAPE_URI_COMPONENT);

        if (ai->req.stream) {
            p = ngx_cpymem(p, ":streamGenerateContent?alt=sse",
                           sizeof(":streamGenerateContent?alt=sse") - 1);

        } else {
            p = ngx_cpymem(p, ":generateContent",
                           sizeof(":generateContent") - 1);
        }

        ctx->uri.len = p - ctx->uri.data;
        break;

    default: /* NGX_HTTP_AI_PROXY_OPENAI */

        if (ai->req.endpoint == NGX_HTTP_AI_EP_MODELS) {

            /* "{base}/models", or "{base}/models/{id}" */

            len = t->base.len + sizeof("/models/") - 1 + 3 * model.len;

            ctx->uri.data = ngx_pnalloc(r->pool, len);
            if (ctx->uri.data == NULL) {
                return NGX_ERROR;
            }

            p = ngx_sprintf(ctx->uri.data, "%V/models", &t->base);

            if (model.len) {
                *p++ = '/';
                p = (u_char *) ngx_escape_uri(p, model.data, model.len,
                                              NGX_ESCAPE_URI_COMPONENT);
            }

            ctx->uri.len = p - ctx->uri.data;
            break;

        } else if (ai->req.endpoint == NGX_HTTP_AI_EP_EMBEDDINGS) {
            ngx_str_set(&path, "/embeddings");

        } else {
            ngx_str_set(&path, "/chat/completions");
        }

        ctx->uri.data = ngx_pnalloc(r->pool, t->base.len + path.len);
        if (ctx->uri.data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(ngx_cpymem(ctx->uri.data, t->base.data, t->base.len),
                   path.data, path.len);

        ctx->uri.len = t->base.len + path.len;
    }

    /* the key and the provider's own headers */

    len = ctx->key ? ctx->key->header.len : 0;

    if (t->provider == NGX_HTTP_AI_PROXY_ANTHROPIC) {
        len += sizeof("anthropic-version: 2023-06-01" CRLF) - 1;
    }

    ctx->headers.data = ngx_pnalloc(r->pool, len);
    if (ctx->headers.data == NULL) {
        return NGX_ERROR;
    }

    p = ctx->headers.data;

    if (ctx->key) {
        p = ngx_cpymem(p, ctx->key->header.data, ctx->key->header.len);
    }

    if (t->provider == NGX_HTTP_AI_PROXY_ANTHROPIC) {
        p = ngx_cpymem(p, "anthropic-version: 2023-06-01" CRLF,
                       sizeof("anthropic-version: 2023-06-01" CRLF) - 1);
    }

    ctx->headers.len = p - ctx->headers.data;

    if (ai->req.stream && ai->req.endpoint != NGX_HTTP_AI_EP_MODELS) {
        ngx_str_set(&ctx->accept, "text/event-stream");

    } else {
        ngx_str_set(&ctx->accept, "application/json");
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "ai_proxy: attempt %ui: target \"%V\" key #%ui model "
                  "\"%V\"", ai->attempts + 1, &t->name,
                  ctx->key ? ctx->key->index : 0, &model);

    return NGX_OK;
}


/*
 * The provider answered: its status may take the key out or cool it
 * down, and may send the request to the next attempt (the upstream
 * machinery takes NGX_HTTP_UPSTREAM_INVALID_HEADER for that).  Otherwise
 * the answer goes to the client, translated if the formats differ.
 */

ngx_int_t
ngx_http_ai_proxy_status(ngx_http_request_t *r, ngx_http_ai_proxy_ctx_t *ctx)
{
    ngx_uint_t                     status, retry, ft;
    ngx_msec_t                     cool;
    ngx_http_upstream_t           *u;
    ngx_http_ai_attempt_t         *a;
    ngx_http_ai_proxy_key_t       *key;
    ngx_http_ai_proxy_target_t    *t;
    ngx_http_ai_proxy_loc_conf_t  *plcf;

    u = r->upstream;
    plcf = ctx->conf;
    t = ctx->target;
    key = ctx->key;
    status = u->headers_in.status_n;

    a = ngx_http_ai_proxy_attempt(r, ctx);

    if (a) {
        a->status = status;
        a->ms = ngx_current_msec - a->start;
        ngx_http_ai_proxy_request_id(r, &a->request_id);
    }

    if (!ngx_http_ai_proxy_valid_status(status)) {

        if (a) {
            ngx_str_set(&a->reason, "invalid_status");
        }

        /*
         * nothing the client could act on: an invalid answer, another
         * attempt while one is allowed, else the gateway's 502
         */

        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ai_proxy: target \"%V\" sent an invalid status "
                      "(%ui)", &t->name, status);

        ctx->ai->error_status = NGX_HTTP_BAD_GATEWAY;

        ctx->ai->error_message.data = ngx_pnalloc(r->pool,
                                 sizeof("the upstream provider sent an "
                                        "invalid status ()") - 1
                                 + NGX_INT_T_LEN);
        if (ctx->ai->error_message.data == NULL) {
            return NGX_ERROR;
        }

        ctx->ai->error_message.len =
            ngx_sprintf(ctx->ai->error_message.data, "the upstream provider "
                        "sent an invalid status (%03ui)", status)
            - ctx->ai->error_message.data;

        return NGX_HTTP_UPSTREAM_INVALID_HEADER;
    }

    ft = 0;

    if (status == NGX_HTTP_UNAUTHORIZED || status == NGX_HTTP_FORBIDDEN) {
        ft = NGX_HTTP_AI_PROXY_FT_AUTH;

        if (key) {
            ngx_http_ai_proxy_key_set_out(key, plcf->key_disable, 1);
            ctx->key_failure = 1;
            ngx_http_ai_counter_incr(t->disables, 1);

            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "ai_proxy: target \"%V\" refused key #%ui "
                          "(%ui), it is out for %M ms", &t->name,
                          key->index, status, plcf->key_disable);
        }

    } else if (status == 429) {
        ft = NGX_HTTP_AI_PROXY_FT_429;

        if (key) {
            cool = ngx_http_ai_proxy_retry_after(r);

            if (cool == 0) {
                cool = plcf->key_cooldown;
            }

            ngx_http_ai_proxy_key_set_out(key, cool, 0);
            ctx->key_failure = 1;
            ngx_http_ai_counter_incr(t->cooldowns, 1);

            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "ai_proxy: target \"%V\" rate limited key #%ui, "
                          "it cools down for %M ms", &t->name, key->index,
                          cool);
        }

    } else if (status >= 500) {
        ft = NGX_HTTP_AI_PROXY_FT_5XX;
    }

    retry = ft
            && (plcf->next & ft)
            && ctx->tries > 1
            && (plcf->deadline == 0
                || ngx_current_msec - ctx->first_start < plcf->deadline)
            && ngx_http_ai_proxy_pick(r, ctx, 1) == NGX_OK;

    if (retry) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "ai_proxy: target \"%V\" answered %ui, the request "
                      "goes to the next attempt", &t->name, status);

        if (a) {
            if (ft == NGX_HTTP_AI_PROXY_FT_AUTH) {
                ngx_str_set(&a->reason, "key_refused");

            } else if (ft == NGX_HTTP_AI_PROXY_FT_429) {
                ngx_str_set(&a->reason, "rate_limited");

            } else {
                ngx_str_set(&a->reason, "server_error");
            }
        }

        return NGX_HTTP_UPSTREAM_INVALID_HEADER;
    }

    if (ft == NGX_HTTP_AI_PROXY_FT_AUTH) {
        if (a) {
            ngx_str_set(&a->reason, "key_refused");
        }

        return ngx_http_ai_proxy_refused(r, ctx, status);
    }

    ctx->key_failure = 0;

    /* the answer goes to the client: in the door's format */

    if (ctx->ai->req.format != ctx->ai->upstream_format
        || (ctx->ai->req.stream && status < NGX_HTTP_SPECIAL_RESPONSE
            && ngx_http_ai_deltas_wanted(r)))
    {
        ctx->translate = 1;
        ctx->ai->rewrite = 1;

    } else if (ctx->ai->req.stream && !ctx->ai->req.include_usage
               && t->format == NGX_HTTP_AI_FMT_OPENAI
               && ctx->ai->req.endpoint == NGX_HTTP_AI_EP_CHAT
               && status < NGX_HTTP_SPECIAL_RESPONSE)
    {
        /* the usage chunk asked for the gateway: the core cuts it out */
        ctx->ai->drop_usage = 1;
    }

    return NGX_OK;
}


/*
 * The provider refused the gateway's credentials (401, 403) and no other
 * attempt is left.  Its body, which may echo the key ("Incorrect API key
 * provided: sk-..."), is not the client's business and is never read:
 * the client gets the gateway's error, 502, or 503 with Retry-After while
 * other keys only cool down.  The error page comes from the upstream
 * machinery, which gets no more tries.
 */

static ngx_int_t
ngx_http_ai_proxy_refused(ngx_http_request_t *r,
    ngx_http_ai_proxy_ctx_t *ctx, ngx_uint_t status)
{
    u_char             *p;
    size_t              len;
    ngx_msec_t          wait;
    ngx_uint_t          cooling;
    ngx_http_ai_ctx_t  *ai;

    ai = ctx->ai;

    cooling = ngx_http_ai_proxy_cooling(ctx, &wait);

    len = sizeof("the upstream provider refused the gateway's credentials "
                 "(000) and the other keys are cooling down, retry later")
          - 1;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ai->error_message.data = p;

    p = ngx_sprintf(p, "the upstream provider refused the gateway's "
                    "credentials (%03ui)", status);

    if (cooling) {
        if (ngx_http_ai_proxy_retry_header(r, wait) != NGX_OK) {
            return NGX_ERROR;
        }

        p = ngx_cpymem(p, " and the other keys are cooling down, retry later",
                       sizeof(" and the other keys are cooling down, retry "
                              "later") - 1);

        ai->error_status = NGX_HTTP_SERVICE_UNAVAILABLE;

    } else {
        ai->error_status = NGX_HTTP_BAD_GATEWAY;
    }

    ai->error_message.len = p - ai->error_message.data;

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "ai_proxy: target \"%V\" refused the gateway's "
                  "credentials (%ui), the client gets %ui", &ctx->target->name,
                  status, ai->error_status);

    /* no other attempt: NGINX's upstream finalizes with an error page */
    ctx->tries = 0;

    return NGX_HTTP_UPSTREAM_INVALID_HEADER;
}


/*
 * The statuses that go to the client (and then in the door's shape): a
 * success, or an error about the request or the provider's state.  Not
 * 1xx, 3xx (a provider's redirect is not followed), what is no HTTP
 * status, nor what concerns the gateway's own connection to the provider
 * (407, 411, 421, 426, 505): the client can do nothing about those.  401
 * and 403 are the gateway's credentials (ngx_http_ai_proxy_refused()).
 */

static ngx_uint_t
ngx_http_ai_proxy_valid_status(ngx_uint_t status)
{
    switch (status) {

    case 407:                                /* Proxy Authentication */
    case NGX_HTTP_LENGTH_REQUIRED:           /* 411 */
    case NGX_HTTP_MISDIRECTED_REQUEST:       /* 421 */
    case 426:                                /* Upgrade Required */
    case NGX_HTTP_VERSION_NOT_SUPPORTED:     /* 505 */
        return 0;
    }

    return (status >= NGX_HTTP_OK && status < NGX_HTTP_SPECIAL_RESPONSE)
           || (status >= NGX_HTTP_BAD_REQUEST && status < 600);
}


/* Retry-After: seconds (an HTTP date is not worth it here) */

static ngx_msec_t
ngx_http_ai_proxy_retry_after(ngx_http_request_t *r)
{
    ngx_int_t         n;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->upstream->headers_in.headers.part;
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

        if (h[i].key.len == sizeof("Retry-After") - 1
            && ngx_strncasecmp(h[i].key.data, (u_char *) "Retry-After",
                               sizeof("Retry-After") - 1)
               == 0)
        {
            n = ngx_atoi(h[i].value.data, h[i].value.len);

            if (n > 0 && n <= 86400) {
                return (ngx_msec_t) n * 1000;
            }

            return 0;
        }
    }

    return 0;
}


/* the request ended: the target's latency for the "latency" balancing */

void
ngx_http_ai_proxy_done(ngx_http_request_t *r, ngx_http_ai_proxy_ctx_t *ctx)
{
    ngx_http_ai_proxy_target_t  *t;

    t = ctx->target;

    if (t == NULL || !ctx->ai->first_byte) {
        return;
    }

    t->failed_at = 0;

    /* EWMA with a weight of 1/4 for the new sample */

    if (t->ewma == 0) {
        t->ewma = ctx->ai->ttft ? ctx->ai->ttft : 1;

    } else {
        t->ewma = (3 * t->ewma + (ctx->ai->ttft ? ctx->ai->ttft : 1)) / 4;
    }
}


/*
 * The keys of each "ai_target" by state, a metric source: "usable",
 * "cooling" (after a 429, until its cooldown ends) and "revoked" (after
 * a 401 or 403, until ai_proxy_key_disable ends).  Key state is shared
 * by the workers (ngx_http_ai_proxy_keys.c): every worker answers the
 * same.
 */

ngx_int_t
ngx_http_ai_proxy_key_metrics(ngx_http_request_t *r, ngx_chain_t ***out)
{
    u_char                          *p;
    size_t                           len;
    ngx_buf_t                       *b;
    ngx_uint_t                       i, j, n[3], revoked;
    ngx_chain_t                     *cl;
    ngx_http_ai_proxy_key_t         *k;
    ngx_http_ai_proxy_target_t     **t;
    ngx_http_ai_proxy_main_conf_t   *pmcf;

    static const char  *states[] = { "usable", "cooling", "revoked" };

    pmcf = ngx_http_get_module_main_conf(r, ngx_http_ai_proxy_module);

    if (pmcf == NULL || pmcf->targets.nelts == 0) {
        return NGX_OK;
    }

    t = pmcf->targets.elts;

    len = sizeof("# HELP ai_upstream_keys Keys of each target by state "
                 "(usable, cooling, revoked), shared by the workers.\n"
                 "# TYPE ai_upstream_keys gauge\n");

    for (i = 0; i < pmcf->targets.nelts; i++) {
        len += 3 * (sizeof("ai_upstream_keys{target=\"\",state=\"revoked\"} "
                           "\n")
                    + t[i]->name.len + NGX_INT_T_LEN);
    }

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(b->last, "# HELP ai_upstream_keys Keys of each target by "
                    "state (usable, cooling, revoked), shared by the "
                    "workers.\n# TYPE ai_upstream_keys gauge\n");

    for (i = 0; i < pmcf->targets.nelts; i++) {
        n[0] = n[1] = n[2] = 0;

        k = t[i]->keys.elts;

        for (j = 0; j < t[i]->keys.nelts; j++) {
            revoked = 0;

            if (ngx_http_ai_proxy_key_out(&k[j], &revoked) == 0) {
                n[0]++;

            } else {
                n[revoked ? 2 : 1]++;
            }
        }

        for (j = 0; j < 3; j++) {
            /* the name as the key counters have it */
            p = ngx_sprintf(p, "ai_upstream_keys{target=\"%V\",state=\"%s\"} "
                            "%ui\n", &t[i]->name, states[j], n[j]);
        }
    }

    b->last = p;

    cl = ngx_alloc_chain_link(r->pool);
    if (cl == NULL) {
        return NGX_ERROR;
    }

    cl->buf = b;
    cl->next = NULL;

    **out = cl;
    *out = &cl->next;

    return NGX_OK;
}
