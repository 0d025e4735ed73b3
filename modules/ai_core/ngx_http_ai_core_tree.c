
/*
 * Copyright (C) AI Gateway authors
 *
 * cJSON trees: the allocator cJSON uses once the core loaded, and a
 * request's tree built from the text the strict JSON scanner checked
 * (ngx_http_ai_core_json.c), the tree cJSON would build, on a pool of its
 * own.  Pure: unit tests link it.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_ai_core_json.h"


static void *ngx_http_ai_json_alloc(size_t size);
static void ngx_http_ai_json_free(void *p);
static void ngx_http_ai_json_destroy(void *root);
static size_t ngx_http_ai_json_tree_size(ngx_http_ai_json_count_t *count,
    size_t len);
static cJSON *ngx_http_ai_json_tree(u_char *p, u_char *last);
static ngx_int_t ngx_http_ai_json_node(cJSON *item, u_char **pp,
    u_char *end);
static u_char *ngx_http_ai_json_number(cJSON *item, u_char *p,
    u_char *end);
static char *ngx_http_ai_json_decode(u_char **pp, u_char *end);
static ngx_uint_t ngx_http_ai_json_hex(u_char *p);
static u_char *ngx_http_ai_json_utf8(u_char *o, ngx_uint_t c);


/*
 * cJSON allocates through ngx_http_ai_json_alloc() once the core loaded
 * (ngx_http_ai_json_hooks()): from a pool while one is set
 * (ngx_http_ai_json_on_pool()), else from the heap.  A block is tagged
 * with where it came from, so that cJSON_free() frees a heap block and
 * leaves a pool's to its pool: trees of both kinds may be mixed and are
 * deleted as before.  The pools: a translation's own, destroyed when it
 * is done; and a request's tree's own, sized from the body, whose root is
 * tagged so that freeing it, the last free of cJSON_Delete(), destroys
 * the pool (no malloc a node, no pool block of the request's taken for a
 * stream's whole life).
 */

#define NGX_HTTP_AI_JSON_HEAP   0x68656170
#define NGX_HTTP_AI_JSON_POOL   0x706f6f6c
#define NGX_HTTP_AI_JSON_ROOT   0x726f6f74      /* frees its pool */

typedef union {
    uint32_t                    tag;
    uint64_t                    align;
} ngx_http_ai_json_block_t;

/*
 * a request's tree's root, first on its pool: the pool, the block's tag
 * just before the node, as every block has it
 */

typedef struct {
    ngx_pool_t                 *pool;
    ngx_http_ai_json_block_t    block;
    cJSON                       root;
} ngx_http_ai_json_root_t;

static ngx_uint_t   ngx_http_ai_json_hooked;
static ngx_pool_t  *ngx_http_ai_json_pool;

/*
 * the long strings without an escape that the strict scan noted, for the
 * tree built next (a worker parses one body at a time): copied as they
 * are, without a scan of their bytes again; "next" is the one to come
 */
#define NGX_HTTP_AI_JSON_PLAIN  256

static ngx_http_ai_json_plain_t
    ngx_http_ai_json_plains[NGX_HTTP_AI_JSON_PLAIN];
static ngx_uint_t  ngx_http_ai_json_nplains;
static ngx_uint_t  ngx_http_ai_json_plain_next;
/*
 * the heap blocks alive: none is in a body's tree while it is 0 (a body's
 * tree is never linked into another; ngx_http_ai_json_delete())
 */
static ngx_uint_t   ngx_http_ai_json_heap;


/* cJSON_malloc(), without its call through the hooks once they are ours */

#define ngx_http_ai_json_tree_alloc(size)                                    \
    (ngx_http_ai_json_hooked ? ngx_http_ai_json_alloc(size)                 \
                             : cJSON_malloc(size))


/*
 * A body's tree: the one the scanner's text builds, on a pool of its own
 * sized from what the scanner counted in the body (with a pool to log to;
 * not on the request's, where a pool block more for each of thousands of
 * streams held open cost more than the mallocs it saves: bench, 19.6 ->
 * 22.3 kB a stream at 9,000), freed with the tree's root; else cJSON's
 * reading, on the heap.  NULL: not JSON (*end: where cJSON failed, or
 * NULL).
 */

cJSON *
ngx_http_ai_json_parse(ngx_pool_t *pool, ngx_str_t *body, const char **end)
{
    u_char                    *p, *last, *e;
    cJSON                     *json;
    ngx_pool_t                *prev, *tree;
    ngx_http_ai_json_count_t   count;

    /*
     * the strict scanner first: a text it takes is one that cJSON reads
     * the same, and the tree is built without checking again
     */

    e = body->data + body->len;
    p = ngx_http_ai_json_space(body->data, e);
    last = NULL;

    if (p < e) {
        ngx_memzero(&count, sizeof(ngx_http_ai_json_count_t));
        count.plain = ngx_http_ai_json_plains;
        count.max_plain = NGX_HTTP_AI_JSON_PLAIN;

        last = ngx_http_ai_json_skip_count(p, e, NGX_HTTP_AI_JSON_CJSON_DEPTH,
                                           1, &count);
    }

    if (last) {
        ngx_http_ai_json_nplains = count.nplain;
        ngx_http_ai_json_plain_next = 0;

        tree = NULL;

        if (pool && ngx_http_ai_json_hooked) {
            tree = ngx_create_pool(ngx_http_ai_json_tree_size(&count,
                                                              body->len),
                                   pool->log);
        }

        prev = ngx_http_ai_json_on_pool(tree);

        json = ngx_http_ai_json_tree(p, last);

        (void) ngx_http_ai_json_on_pool(prev);

        ngx_http_ai_json_nplains = 0;

        if (json) {
            *end = (const char *) last;
            return json;
        }

        if (tree) {
            ngx_destroy_pool(tree);
        }
    }

    /* what the scanner does not take, cJSON reads (and says where) */

    prev = ngx_http_ai_json_on_pool(NULL);

    json = cJSON_ParseWithLengthOpts((const char *) body->data, body->len,
                                     end, 0);

    (void) ngx_http_ai_json_on_pool(prev);

    return json;
}


/*
 * The tree of a body that a strict reading already took whole (a chat
 * request read without a tree: ngx_http_ai_request_tree()), built without
 * a scan again, on a pool sized from the body's length: a chat request of
 * short messages takes some four times its length, one of long texts
 * little more than its length; a pool too small takes another block of
 * its size.  512 + 3 times the length kept a stream's worker RSS where it
 * was with the counted size (bench: 200 streams of 3,003 events, 18.6 -
 * 19.1 kB a stream, against 19.1 - 19.8 with 1024 + 4 times)
 */

cJSON *
ngx_http_ai_json_parse_checked(ngx_pool_t *pool, ngx_str_t *body)
{
    u_char      *p, *e;
    cJSON       *json;
    ngx_pool_t  *prev, *tree;

    e = body->data + body->len;
    p = ngx_http_ai_json_space(body->data, e);

    if (p == e) {
        return NULL;
    }

    /* no long string noted: each is scanned for its end as it is copied */

    ngx_http_ai_json_nplains = 0;
    ngx_http_ai_json_plain_next = 0;

    tree = NULL;

    if (pool && ngx_http_ai_json_hooked) {
        tree = ngx_create_pool(ngx_min(NGX_DEFAULT_POOL_SIZE,
                                       ngx_align(512 + 3 * body->len,
                                                 NGX_POOL_ALIGNMENT)),
                               pool->log);
        if (tree == NULL) {
            return NULL;
        }
    }

    prev = ngx_http_ai_json_on_pool(tree);

    json = ngx_http_ai_json_tree(p, e);

    (void) ngx_http_ai_json_on_pool(prev);

    if (json == NULL && tree) {
        ngx_destroy_pool(tree);
    }

    return json;
}


ngx_pool_t *
ngx_http_ai_json_on_pool(ngx_pool_t *pool)
{
    ngx_pool_t  *prev;

    prev = ngx_http_ai_json_pool;
    ngx_http_ai_json_pool = ngx_http_ai_json_hooked ? pool : NULL;

    return prev;
}


void
ngx_http_ai_json_hooks(void)
{
    cJSON_Hooks  hooks;

    if (ngx_http_ai_json_hooked) {
        return;
    }

    hooks.malloc_fn = ngx_http_ai_json_alloc;
    hooks.free_fn = ngx_http_ai_json_free;

    cJSON_InitHooks(&hooks);

    ngx_http_ai_json_hooked = 1;
}


static void *
ngx_http_ai_json_alloc(size_t size)
{
    ngx_http_ai_json_block_t  *b;

    if (size > NGX_MAX_SIZE_T_VALUE - sizeof(ngx_http_ai_json_block_t)) {
        return NULL;
    }

    if (ngx_http_ai_json_pool) {
        b = ngx_palloc(ngx_http_ai_json_pool,
                       sizeof(ngx_http_ai_json_block_t) + size);
        if (b == NULL) {
            return NULL;
        }

        b->tag = NGX_HTTP_AI_JSON_POOL;

    } else {
        b = malloc(sizeof(ngx_http_ai_json_block_t) + size);
        if (b == NULL) {
            return NULL;
        }

        b->tag = NGX_HTTP_AI_JSON_HEAP;
        ngx_http_ai_json_heap++;
    }

    return b + 1;
}


static void
ngx_http_ai_json_free(void *p)
{
    ngx_http_ai_json_block_t  *b;

    if (p == NULL) {
        return;
    }

    b = (ngx_http_ai_json_block_t *) p - 1;

    if (b->tag == NGX_HTTP_AI_JSON_HEAP) {
        b->tag = 0;
        ngx_http_ai_json_heap--;
        free(b);
        return;
    }

    if (b->tag == NGX_HTTP_AI_JSON_ROOT) {
        /* a request's tree's root: the pool it and its nodes are on */
        ngx_http_ai_json_destroy(p);
        return;
    }

    /* a pool's block goes with its pool */
}


/*
 * cJSON_Delete() of a tree, but that of a body's tree on its own pool is
 * the pool's destruction alone while no heap block is alive in the worker:
 * then none is linked to it (a member a module set), and cJSON_Delete()
 * would only have walked its nodes to free the root last.
 */

void
ngx_http_ai_json_delete(cJSON *json)
{
    ngx_http_ai_json_block_t  *b;

    if (json == NULL) {
        return;
    }

    b = (ngx_http_ai_json_block_t *) json - 1;

    if (b->tag == NGX_HTTP_AI_JSON_ROOT && ngx_http_ai_json_heap == 0
        && json->next == NULL)
    {
        ngx_http_ai_json_destroy(json);
        return;
    }

    cJSON_Delete(json);
}


ngx_uint_t
ngx_http_ai_json_heap_alive(void)
{
    return ngx_http_ai_json_heap;
}


/* a body's tree's root: the pool it and its nodes are on destroyed */

static void
ngx_http_ai_json_destroy(void *root)
{
    ngx_http_ai_json_root_t  *r;

    r = (ngx_http_ai_json_root_t *)
            ((u_char *) root - offsetof(ngx_http_ai_json_root_t, root));

    r->block.tag = 0;
    ngx_destroy_pool(r->pool);
}


/*
 * The size of a pool that holds a body's tree in its first block, but for
 * its long strings (larger than a pool's small allocations, each its
 * own): its nodes (a value each) and strings (values and keys) as the
 * scanner counted them, their blocks' tags and alignment (a string's NUL
 * in it), and the text's bytes for the strings'.  A tree of more than
 * 16 KB gets blocks of 16 KB.
 */

static size_t
ngx_http_ai_json_tree_size(ngx_http_ai_json_count_t *count, size_t len)
{
    size_t  size;

    if (len >= NGX_DEFAULT_POOL_SIZE) {
        /* its text alone fills a block */
        return NGX_DEFAULT_POOL_SIZE;
    }

    size = sizeof(ngx_pool_t) + sizeof(ngx_http_ai_json_root_t)
           + count->values * ngx_align(sizeof(ngx_http_ai_json_block_t)
                                       + sizeof(cJSON), NGX_ALIGNMENT)
           + count->strings * (sizeof(ngx_http_ai_json_block_t)
                               + NGX_ALIGNMENT)
           + len;

    /*
     * a multiple of the pool's alignment: ngx_palloc() checks the room
     * left after it aligns, which past an unaligned end wraps around
     */

    return ngx_min(ngx_align(size, NGX_POOL_ALIGNMENT),
                   NGX_DEFAULT_POOL_SIZE);
}


/*
 * The request's tree as cJSON builds it (the same nodes, linked the same
 * way, the same strings and numbers), built from the value from p to last
 * that the strict scanner checked: strings copied whole where they have
 * no escape.  NULL: no memory (cJSON reads it then).
 */

static cJSON *
ngx_http_ai_json_tree(u_char *p, u_char *last)
{
    cJSON                    *json;
    ngx_http_ai_json_root_t  *r;

    if (ngx_http_ai_json_pool) {
        /*
         * the root, first on a tree's own pool, with the pool before it:
         * cJSON_Delete() frees the root last, and the pool with it
         */

        r = ngx_palloc(ngx_http_ai_json_pool,
                       sizeof(ngx_http_ai_json_root_t));
        if (r == NULL) {
            return NULL;
        }

        r->pool = ngx_http_ai_json_pool;
        r->block.tag = NGX_HTTP_AI_JSON_POOL;   /* ROOT once built */
        json = &r->root;

    } else {
        r = NULL;

        json = cJSON_malloc(sizeof(cJSON));
        if (json == NULL) {
            return NULL;
        }
    }

    ngx_memzero(json, sizeof(cJSON));

    if (ngx_http_ai_json_node(json, &p, last) != NGX_OK) {
        /* what was built is linked to it */
        cJSON_Delete(json);
        return NULL;
    }

    if (r) {
        r->block.tag = NGX_HTTP_AI_JSON_ROOT;
    }

    return json;
}


/*
 * A value of a checked text at *pp into item, as cJSON's parse_value()
 * makes it; a container's nodes are linked to it as they are made, so
 * that a failure leaves a tree to delete
 */

static ngx_int_t
ngx_http_ai_json_node(cJSON *item, u_char **pp, u_char *end)
{
    u_char  *p, close;
    cJSON   *child, *last;

    p = *pp;

    switch (*p) {

    case '{':
    case '[':
        close = (*p == '{') ? '}' : ']';
        item->type = (*p == '{') ? cJSON_Object : cJSON_Array;

        p = ngx_http_ai_json_space(p + 1, end);

        for (last = NULL; *p != close; /* void */) {

            child = ngx_http_ai_json_tree_alloc(sizeof(cJSON));
            if (child == NULL) {
                return NGX_ERROR;
            }

            ngx_memzero(child, sizeof(cJSON));

            if (last == NULL) {
                item->child = child;

            } else {
                last->next = child;
                child->prev = last;
            }

            /* cJSON: the first's prev is the last (appending is O(1)) */
            item->child->prev = child;
            last = child;

            if (close == '}') {
                /* the name, then the value, in one node */

                child->string = ngx_http_ai_json_decode(&p, end);
                if (child->string == NULL) {
                    return NGX_ERROR;
                }

                p = ngx_http_ai_json_space(p, end);    /* then ':' */
                p = ngx_http_ai_json_space(p + 1, end);
            }

            if (ngx_http_ai_json_node(child, &p, end) != NGX_OK) {
                return NGX_ERROR;
            }

            p = ngx_http_ai_json_space(p, end);

            if (*p == ',') {
                p = ngx_http_ai_json_space(p + 1, end);
            }
        }

        *pp = p + 1;
        return NGX_OK;

    case '"':
        item->type = cJSON_String;
        item->valuestring = ngx_http_ai_json_decode(pp, end);

        return (item->valuestring == NULL) ? NGX_ERROR : NGX_OK;

    case 't':
        item->type = cJSON_True;
        item->valueint = 1;
        *pp = p + 4;
        return NGX_OK;

    case 'f':
        item->type = cJSON_False;
        *pp = p + 5;
        return NGX_OK;

    case 'n':
        item->type = cJSON_NULL;
        *pp = p + 4;
        return NGX_OK;

    default:
        *pp = ngx_http_ai_json_number(item, p, end);
        return NGX_OK;
    }
}


/* a checked number (of 63 characters at most), as cJSON reads it */

static u_char *
ngx_http_ai_json_number(cJSON *item, u_char *p, u_char *end)
{
    u_char  *q;
    double   d;

    for (q = p; q < end && ((*q >= '0' && *q <= '9') || *q == '-'
                            || *q == '+' || *q == '.' || *q == 'e'
                            || *q == 'E');
         q++)
    {
        /* void */
    }

    d = ngx_http_ai_json_double(p, q - p);

    item->type = cJSON_Number;
    item->valuedouble = d;
    item->valueint = (d >= INT_MAX) ? INT_MAX
                     : (d <= (double) INT_MIN) ? INT_MIN : (int) d;

    return q;
}


/* a checked string at *pp, decoded as cJSON's parse_string() does */

static char *
ngx_http_ai_json_decode(u_char **pp, u_char *end)
{
    u_char  *p, *q, *o, *s;

    p = *pp + 1;

    /* checked: the first special byte is its quote or an escape's */

    q = ngx_http_ai_json_short(*pp, end);

    if (q) {
        q--;

    } else if (ngx_http_ai_json_plain_next < ngx_http_ai_json_nplains
               && ngx_http_ai_json_plains[ngx_http_ai_json_plain_next].start
                  == *pp)
    {
        /* a long one the scan found without an escape: its quote */
        q = ngx_http_ai_json_plains[ngx_http_ai_json_plain_next++].quote;

    } else {
        q = ngx_http_ai_json_plain(p, end);
        if (q >= end) {
            return NULL;
        }
    }

    if (*q == '"') {
        /* no escape: as it is */

        s = ngx_http_ai_json_tree_alloc(q - p + 1);
        if (s == NULL) {
            return NULL;
        }

        ngx_memcpy(s, p, q - p);
        s[q - p] = '\0';

        *pp = q + 1;
        return (char *) s;
    }

    /* its end: the first quote not escaped */

    for (q = p; *q != '"'; q++) {
        if (*q == '\\') {
            q++;
        }
    }

    /* decoded it is no longer than written */

    s = ngx_http_ai_json_tree_alloc(q - p + 1);
    if (s == NULL) {
        return NULL;
    }

    o = ngx_http_ai_json_unescape(s, p, q);

    *o = '\0';

    *pp = q + 1;

    return (char *) s;
}


/*
 * The checked bytes of a string from p to q (without its quotes) decoded
 * into o, as cJSON's parse_string() decodes them; the end of what was
 * written, which is no longer than q - p
 */

u_char *
ngx_http_ai_json_unescape(u_char *o, u_char *p, u_char *q)
{
    ngx_uint_t  c;

    while (p < q) {

        if (*p != '\\') {
            *o++ = *p++;
            continue;
        }

        switch (p[1]) {

        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;

        case 'u':
            c = ngx_http_ai_json_hex(p + 2);

            if (c >= 0xd800 && c <= 0xdbff) {
                /* a pair (checked) */
                c = 0x10000 + (((c & 0x3ff) << 10)
                               | (ngx_http_ai_json_hex(p + 8) & 0x3ff));
                p += 6;
            }

            o = ngx_http_ai_json_utf8(o, c);
            p += 6;
            continue;

        default:                            /* " \\ / */
            *o++ = p[1];
        }

        p += 2;
    }

    return o;
}


/* four hex digits (checked) */

static ngx_uint_t
ngx_http_ai_json_hex(u_char *p)
{
    u_char      ch;
    ngx_uint_t  i, c;

    for (c = 0, i = 0; i < 4; i++) {
        ch = p[i] | 0x20;
        c = c * 16 + ((ch >= 'a') ? ch - 'a' + 10 : ch - '0');
    }

    return c;
}


/* a code point as cJSON writes it in UTF-8 (0 as one byte 0) */

static u_char *
ngx_http_ai_json_utf8(u_char *o, ngx_uint_t c)
{
    if (c < 0x80) {
        *o++ = (u_char) c;

    } else if (c < 0x800) {
        *o++ = (u_char) (0xc0 | (c >> 6));
        *o++ = (u_char) (0x80 | (c & 0x3f));

    } else if (c < 0x10000) {
        *o++ = (u_char) (0xe0 | (c >> 12));
        *o++ = (u_char) (0x80 | ((c >> 6) & 0x3f));
        *o++ = (u_char) (0x80 | (c & 0x3f));

    } else {
        *o++ = (u_char) (0xf0 | (c >> 18));
        *o++ = (u_char) (0x80 | ((c >> 12) & 0x3f));
        *o++ = (u_char) (0x80 | ((c >> 6) & 0x3f));
        *o++ = (u_char) (0x80 | (c & 0x3f));
    }

    return o;
}
