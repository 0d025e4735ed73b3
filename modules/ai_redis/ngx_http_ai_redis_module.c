
/*
 * Copyright (C) AI Gateway authors
 *
 * ngx_http_ai_redis_module: the "redis" backend of the core's stores.
 *
 *     ai_store NAME backend=redis server=HOST:PORT|unix:PATH
 *              [password=SECRET|password=env:VAR|password=file:PATH]
 *              [user=NAME] [db=N] [prefix=STR] [timeout=100ms]
 *              [connect_timeout=1s];
 *
 * The address is resolved here, at configuration time; a worker connects
 * to the numeric address with one connection per store, made in
 * init_process and closed in exit_process.  The password is read here
 * too (from the environment or a file if so asked) and never logged.
 */


#include "ngx_http_ai_redis.h"


static char *ngx_http_ai_redis_conf(ngx_conf_t *cf,
    ngx_http_ai_store_t *store, ngx_str_t *params, ngx_uint_t n);
static char *ngx_http_ai_redis_server(ngx_conf_t *cf,
    ngx_http_ai_redis_store_t *rs, ngx_str_t *value);
static char *ngx_http_ai_redis_password(ngx_conf_t *cf,
    ngx_http_ai_redis_store_t *rs, ngx_str_t *value);
static ngx_int_t ngx_http_ai_redis_preconfiguration(ngx_conf_t *cf);
static void *ngx_http_ai_redis_create_main_conf(ngx_conf_t *cf);
static ngx_int_t ngx_http_ai_redis_init_process(ngx_cycle_t *cycle);
static void ngx_http_ai_redis_exit_process(ngx_cycle_t *cycle);


static ngx_http_ai_store_backend_t  ngx_http_ai_redis_backend = {
    ngx_string("redis"),
    ngx_http_ai_redis_conf,
    ngx_http_ai_redis_run,
    ngx_http_ai_redis_cancel,
    ngx_http_ai_redis_unpin
};


static ngx_http_module_t  ngx_http_ai_redis_module_ctx = {
    ngx_http_ai_redis_preconfiguration,    /* preconfiguration */
    NULL,                                  /* postconfiguration */

    ngx_http_ai_redis_create_main_conf,    /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_ai_redis_module = {
    NGX_MODULE_V1,
    &ngx_http_ai_redis_module_ctx,         /* module context */
    NULL,                                  /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_ai_redis_init_process,        /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_ai_redis_exit_process,        /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static char *
ngx_http_ai_redis_conf(ngx_conf_t *cf, ngx_http_ai_store_t *store,
    ngx_str_t *params, ngx_uint_t n)
{
    u_char                         *p;
    ngx_str_t                       s, name, help;
    ngx_int_t                       v;
    ngx_uint_t                      i;
    ngx_http_ai_redis_store_t      *rs, **rsp;
    ngx_http_ai_redis_main_conf_t  *rmcf;

    rmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_ai_redis_module);

    rs = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_redis_store_t));
    if (rs == NULL) {
        return NGX_CONF_ERROR;
    }

    rs->name = store->name;
    rs->timeout = 100;
    rs->connect_timeout = 1000;
    ngx_str_set(&rs->prefix, "ai:");

    for (i = 0; i < n; i++) {

        if (ngx_strncmp(params[i].data, "server=", 7) == 0) {
            s.data = params[i].data + 7;
            s.len = params[i].len - 7;

            if (ngx_http_ai_redis_server(cf, rs, &s) != NGX_CONF_OK) {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(params[i].data, "password=", 9) == 0) {
            s.data = params[i].data + 9;
            s.len = params[i].len - 9;

            if (ngx_http_ai_redis_password(cf, rs, &s) != NGX_CONF_OK) {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(params[i].data, "user=", 5) == 0) {
            rs->user.data = params[i].data + 5;
            rs->user.len = params[i].len - 5;

            if (rs->user.len == 0) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(params[i].data, "db=", 3) == 0) {
            v = ngx_atoi(params[i].data + 3, params[i].len - 3);

            if (v == NGX_ERROR || v > 65535) {
                goto invalid;
            }

            rs->db = v;
            continue;
        }

        if (ngx_strncmp(params[i].data, "prefix=", 7) == 0) {
            rs->prefix.data = params[i].data + 7;
            rs->prefix.len = params[i].len - 7;
            continue;
        }

        if (ngx_strncmp(params[i].data, "timeout=", 8) == 0) {
            s.data = params[i].data + 8;
            s.len = params[i].len - 8;

            rs->timeout = ngx_parse_time(&s, 0);

            if (rs->timeout == (ngx_msec_t) NGX_ERROR || rs->timeout == 0) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(params[i].data, "connect_timeout=", 16) == 0) {
            s.data = params[i].data + 16;
            s.len = params[i].len - 16;

            rs->connect_timeout = ngx_parse_time(&s, 0);

            if (rs->connect_timeout == (ngx_msec_t) NGX_ERROR
                || rs->connect_timeout == 0)
            {
                goto invalid;
            }

            continue;
        }

        /* its name only: it may be a misspelt password= */

        p = ngx_strlchr(params[i].data, params[i].data + params[i].len, '=');

        s.data = params[i].data;
        s.len = p ? (size_t) (p - s.data) : params[i].len;

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_store \"%V\": invalid parameter \"%V%s\" "
                           "of backend=redis", &store->name, &s,
                           p ? "=..." : "");
        return NGX_CONF_ERROR;

    invalid:

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_store \"%V\": invalid value \"%V\"",
                           &store->name, &params[i]);
        return NGX_CONF_ERROR;
    }

    if (rs->host.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_store \"%V\": backend=redis needs "
                           "\"server=HOST:PORT\" or \"server=unix:PATH\"",
                           &store->name);
        return NGX_CONF_ERROR;
    }

    if (rs->user.len && rs->password.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_store \"%V\": \"user=%V\" needs a password",
                           &store->name, &rs->user);
        return NGX_CONF_ERROR;
    }

    /* the counter of failed operations, by store */

    name.len = sizeof("ai_store_errors_total{store=\"\"}") - 1
               + store->name.len;
    name.data = ngx_pnalloc(cf->pool, name.len);
    if (name.data == NULL) {
        return NGX_CONF_ERROR;
    }

    p = ngx_sprintf(name.data, "ai_store_errors_total{store=\"%V\"}",
                    &store->name);
    name.len = p - name.data;

    ngx_str_set(&help, "Store operations that failed (redis backend).");

    rs->errors = ngx_http_ai_counter_add(cf, &name, &help);
    if (rs->errors == NULL) {
        return NGX_CONF_ERROR;
    }

    rsp = ngx_array_push(&rmcf->stores);
    if (rsp == NULL) {
        return NGX_CONF_ERROR;
    }

    *rsp = rs;
    store->data = rs;

    return NGX_CONF_OK;
}


/* HOST:PORT (resolved now, a numeric address kept) or unix:PATH */

static char *
ngx_http_ai_redis_server(ngx_conf_t *cf, ngx_http_ai_redis_store_t *rs,
    ngx_str_t *value)
{
    u_char     *p;
    size_t      len;
    ngx_url_t   u;

    rs->addr_text.len = value->len;
    rs->addr_text.data = ngx_pstrdup(cf->pool, value);
    if (rs->addr_text.data == NULL) {
        return NGX_CONF_ERROR;
    }

    if (value->len > 5 && ngx_strncmp(value->data, "unix:", 5) == 0) {
        len = value->len - 5;

        if (len >= sizeof(((struct sockaddr_un *) 0)->sun_path)) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ai_store \"%V\": invalid server \"%V\" "
                               "(the path is too long)", &rs->name, value);
            return NGX_CONF_ERROR;
        }

        rs->host.data = ngx_pnalloc(cf->pool, len + 1);
        if (rs->host.data == NULL) {
            return NGX_CONF_ERROR;
        }

        p = ngx_cpymem(rs->host.data, value->data + 5, len);
        *p = '\0';
        rs->host.len = len;
        rs->unix_socket = 1;

        return NGX_CONF_OK;
    }

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.url = *value;
    u.default_port = 6379;

    if (ngx_parse_url(cf->pool, &u) != NGX_OK || u.naddrs == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_store \"%V\": invalid server \"%V\" (%s)",
                           &rs->name, value,
                           u.err ? u.err : "no address");
        return NGX_CONF_ERROR;
    }

    if (u.family == AF_UNIX) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_store \"%V\": invalid server \"%V\"",
                           &rs->name, value);
        return NGX_CONF_ERROR;
    }

    /* the first address, numeric: a worker never resolves a name */

    rs->host.data = ngx_pnalloc(cf->pool, NGX_SOCKADDR_STRLEN + 1);
    if (rs->host.data == NULL) {
        return NGX_CONF_ERROR;
    }

    rs->host.len = ngx_sock_ntop(u.addrs[0].sockaddr, u.addrs[0].socklen,
                                 rs->host.data, NGX_SOCKADDR_STRLEN, 0);
    rs->host.data[rs->host.len] = '\0';
    rs->port = u.port;

    return NGX_CONF_OK;
}


/* SECRET, env:VAR or file:PATH; the value itself is never shown */

static char *
ngx_http_ai_redis_password(ngx_conf_t *cf, ngx_http_ai_redis_store_t *rs,
    ngx_str_t *value)
{
    char         *env;
    u_char       *p, *name;
    ssize_t       n;
    ngx_str_t     path;
    ngx_file_t    file;
    ngx_err_t     err;
    u_char        buf[1024];

    if (value->len > 4 && ngx_strncmp(value->data, "env:", 4) == 0) {
        name = ngx_pnalloc(cf->pool, value->len - 4 + 1);
        if (name == NULL) {
            return NGX_CONF_ERROR;
        }

        p = ngx_cpymem(name, value->data + 4, value->len - 4);
        *p = '\0';

        env = getenv((char *) name);

        if (env == NULL || *env == '\0') {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ai_store \"%V\": invalid password: the "
                               "environment variable \"%s\" is not set",
                               &rs->name, name);
            return NGX_CONF_ERROR;
        }

        rs->password.len = ngx_strlen(env);
        rs->password.data = ngx_pnalloc(cf->pool, rs->password.len);
        if (rs->password.data == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memcpy(rs->password.data, env, rs->password.len);

        return NGX_CONF_OK;
    }

    if (value->len > 5 && ngx_strncmp(value->data, "file:", 5) == 0) {
        path.data = value->data + 5;
        path.len = value->len - 5;

        if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(&file, sizeof(ngx_file_t));

        file.name = path;
        file.log = cf->log;
        file.fd = ngx_open_file(path.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

        if (file.fd == NGX_INVALID_FILE) {
            err = ngx_errno;
            ngx_conf_log_error(NGX_LOG_EMERG, cf, err,
                               "ai_store \"%V\": invalid password: cannot "
                               "open \"%V\"", &rs->name, &path);
            return NGX_CONF_ERROR;
        }

        n = ngx_read_file(&file, buf, sizeof(buf), 0);

        if (ngx_close_file(file.fd) == NGX_FILE_ERROR) {
            ngx_conf_log_error(NGX_LOG_ALERT, cf, ngx_errno,
                               ngx_close_file_n " \"%V\" failed", &path);
        }

        if (n == NGX_ERROR) {
            return NGX_CONF_ERROR;
        }

        /* the first line */

        p = ngx_strlchr(buf, buf + n, LF);
        if (p) {
            n = p - buf;
        }

        if (n > 0 && buf[n - 1] == CR) {
            n--;
        }

        if (n <= 0 || n == (ssize_t) sizeof(buf)) {
            ngx_explicit_memzero(buf, sizeof(buf));
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ai_store \"%V\": invalid password: \"%V\" "
                               "is empty or too long", &rs->name, &path);
            return NGX_CONF_ERROR;
        }

        rs->password.len = n;
        rs->password.data = ngx_pnalloc(cf->pool, n);
        if (rs->password.data == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memcpy(rs->password.data, buf, n);
        ngx_explicit_memzero(buf, sizeof(buf));

        return NGX_CONF_OK;
    }

    if (value->len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_store \"%V\": invalid password: empty",
                           &rs->name);
        return NGX_CONF_ERROR;
    }

    rs->password = *value;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_ai_redis_preconfiguration(ngx_conf_t *cf)
{
    if (ngx_http_ai_core_require(cf, "ngx_http_ai_redis_module") != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_ai_store_backend_add(cf, &ngx_http_ai_redis_backend);
}


static void *
ngx_http_ai_redis_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_ai_redis_main_conf_t  *rmcf;

    rmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_redis_main_conf_t));
    if (rmcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&rmcf->stores, cf->pool, 2,
                       sizeof(ngx_http_ai_redis_store_t *))
        != NGX_OK)
    {
        return NULL;
    }

    return rmcf;
}


static ngx_int_t
ngx_http_ai_redis_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                      i;
    ngx_http_ai_redis_store_t     **rsp;
    ngx_http_ai_redis_main_conf_t  *rmcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    rmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_ai_redis_module);
    if (rmcf == NULL) {
        return NGX_OK;
    }

    rsp = rmcf->stores.elts;

    for (i = 0; i < rmcf->stores.nelts; i++) {
        if (ngx_http_ai_redis_init_conn(rsp[i], cycle) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static void
ngx_http_ai_redis_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                      i;
    ngx_http_ai_redis_store_t     **rsp;
    ngx_http_ai_redis_main_conf_t  *rmcf;

    rmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_ai_redis_module);
    if (rmcf == NULL) {
        return;
    }

    rsp = rmcf->stores.elts;

    for (i = 0; i < rmcf->stores.nelts; i++) {
        if (rsp[i]->conn) {
            ngx_http_ai_redis_close_conn(rsp[i]->conn);
            rsp[i]->conn = NULL;
        }
    }
}
