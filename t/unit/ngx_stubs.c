
/*
 * Copyright (C) AI Gateway authors
 *
 * The few NGINX functions that the core's pure files call, for unit
 * tests that link those files alone: pool allocations come from malloc
 * (freed at exit), ngx_snprintf supports the formats the files use.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <stdio.h>
#include <stdarg.h>


/* NGINX's, set at its start: the pages of x86-64 and most others */
ngx_uint_t  ngx_pagesize = 4096;


/*
 * What an allocation takes of a pool's first block as NGINX's pools give
 * it (ngx_palloc.c: small ones aligned or not, a large one its record),
 * counted in d.failed for the pools made here, whose size is in max
 */

static void
ngx_stub_take(ngx_pool_t *pool, size_t size, ngx_uint_t align)
{
    if (pool == NULL || pool->max == 0) {
        return;
    }

    if (align) {
        pool->d.failed = ngx_align(pool->d.failed, NGX_ALIGNMENT);
    }

    if (size > ngx_min(pool->max - sizeof(ngx_pool_t),
                       NGX_MAX_ALLOC_FROM_POOL))
    {
        pool->d.failed = ngx_align(pool->d.failed, NGX_ALIGNMENT)
                         + sizeof(ngx_pool_large_t);
        return;
    }

    pool->d.failed += size;
}


void *
ngx_palloc(ngx_pool_t *pool, size_t size)
{
    ngx_stub_take(pool, size, 1);
    return malloc(size ? size : 1);
}


void *
ngx_pnalloc(ngx_pool_t *pool, size_t size)
{
    ngx_stub_take(pool, size, 0);
    return malloc(size ? size : 1);
}


void *
ngx_pcalloc(ngx_pool_t *pool, size_t size)
{
    ngx_stub_take(pool, size, 1);
    return calloc(1, size ? size : 1);
}


ngx_int_t
ngx_pfree(ngx_pool_t *pool, void *p)
{
    free(p);
    return NGX_OK;
}


/* a pool of its own (a translation's trees): nothing comes from it here */

ngx_uint_t   ngx_stub_pools_created;
ngx_pool_t  *ngx_stub_last_pool;

ngx_pool_t *
ngx_create_pool(size_t size, ngx_log_t *log)
{
    ngx_pool_t  *pool;

    ngx_stub_pools_created++;

    pool = calloc(1, sizeof(ngx_pool_t));
    if (pool == NULL) {
        return NULL;
    }

    /* its size, and what its first block holds already: the pool */
    pool->max = size;
    pool->d.failed = sizeof(ngx_pool_t);

    ngx_stub_last_pool = pool;

    return pool;
}


ngx_uint_t  ngx_stub_pools_destroyed;

void
ngx_destroy_pool(ngx_pool_t *pool)
{
    ngx_stub_pools_destroyed++;

    if (pool == ngx_stub_last_pool) {
        ngx_stub_last_pool = NULL;
    }

    free(pool);
}


void *
ngx_array_push(ngx_array_t *a)
{
    void  *elt, *new;

    if (a->nelts == a->nalloc) {
        new = realloc(a->elts, 2 * a->size * a->nalloc);
        if (new == NULL) {
            return NULL;
        }

        a->elts = new;
        a->nalloc *= 2;
    }

    elt = (u_char *) a->elts + a->size * a->nelts;
    a->nelts++;

    return elt;
}


u_char *
ngx_strnstr(u_char *s1, char *s2, size_t len)
{
    size_t  n;

    n = strlen(s2);

    while (len >= n) {
        if (*s1 == '\0') {
            return NULL;
        }

        if (memcmp(s1, s2, n) == 0) {
            return s1;
        }

        s1++;
        len--;
    }

    return NULL;
}


/* %s, %V, %uz, %ui, %i, %d only */

u_char * ngx_cdecl
ngx_snprintf(u_char *buf, size_t max, const char *fmt, ...)
{
    int         n;
    u_char     *p, *last;
    va_list     args;
    ngx_str_t  *v;

    p = buf;
    last = buf + max;

    va_start(args, fmt);

    while (*fmt && p < last) {

        if (*fmt != '%') {
            *p++ = *fmt++;
            continue;
        }

        fmt++;

        if (fmt[0] == 'u' && (fmt[1] == 'z' || fmt[1] == 'i')) {
            n = snprintf((char *) p, last - p, "%zu", va_arg(args, size_t));
            fmt += 2;

        } else if (fmt[0] == 'i') {
            n = snprintf((char *) p, last - p, "%ld",
                         (long) va_arg(args, ngx_int_t));
            fmt++;

        } else if (fmt[0] == 'd') {
            n = snprintf((char *) p, last - p, "%d", va_arg(args, int));
            fmt++;

        } else if (fmt[0] == 's') {
            n = snprintf((char *) p, last - p, "%s", va_arg(args, char *));
            fmt++;

        } else if (fmt[0] == 'V') {
            v = va_arg(args, ngx_str_t *);
            n = snprintf((char *) p, last - p, "%.*s", (int) v->len,
                         v->data);
            fmt++;

        } else {
            n = 0;
        }

        p += ngx_min((size_t) n, (size_t) (last - p));
    }

    va_end(args);

    return p;
}


/*
 * ngx_http_ai_core_price.c's directive and lookup, not called by the unit
 * tests: they link it for its writing of numbers
 */

ngx_module_t  ngx_http_ai_core_module;


void ngx_cdecl
ngx_conf_log_error(ngx_uint_t level, ngx_conf_t *cf, ngx_err_t err,
    const char *fmt, ...)
{
}
