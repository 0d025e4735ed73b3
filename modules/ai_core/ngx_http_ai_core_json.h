
/*
 * Copyright (C) AI Gateway authors
 *
 * Internal to the core: the JSON scanner (ngx_http_ai_core_json.c).
 */


#ifndef _NGX_HTTP_AI_CORE_JSON_H_INCLUDED_
#define _NGX_HTTP_AI_CORE_JSON_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include <cjson/cJSON.h>

#if (defined __SSE2__ && defined __GNUC__)
#include <emmintrin.h>
#define NGX_HTTP_AI_JSON_SSE2  1
#else
#define NGX_HTTP_AI_JSON_SSE2  0
#endif


#define NGX_HTTP_AI_JSON_DEPTH      64

/*
 * what cJSON accepts (CJSON_NESTING_LIMIT): a strict check that agrees
 * with cJSON uses it
 */
#define NGX_HTTP_AI_JSON_CJSON_DEPTH  1000


/* 8 bytes at a time: the string scan, the token estimate's prose */

#define NGX_HTTP_AI_JSON_ONES   0x0101010101010101ULL
#define NGX_HTTP_AI_JSON_HIGHS  0x8080808080808080ULL

/* the flag (0x80) of each byte of w in [lo, hi]; w has ASCII bytes only */

#define ngx_http_ai_json_range(w, lo, hi)                                    \
    (((w) + NGX_HTTP_AI_JSON_ONES * (0x80 - (lo)))                           \
     & ~((w) + NGX_HTTP_AI_JSON_ONES * (0x7f - (hi))) & NGX_HTTP_AI_JSON_HIGHS)


typedef struct {
    u_char                     *pos;
    u_char                     *end;
    ngx_uint_t                  more;     /* a member is due: after , */
} ngx_http_ai_json_iter_t;


/*
 * A long string without an escape, as the strict scan found it: its
 * opening and closing quotes (the tree is then built without a second
 * scan of its bytes)
 */

#define NGX_HTTP_AI_JSON_LONG      64

typedef struct {
    u_char                     *start;
    u_char                     *quote;
} ngx_http_ai_json_plain_t;


typedef struct {
    size_t                      values;
    size_t                      strings;  /* string values and keys */
    /* the long strings without an escape, in order, up to max_plain */
    ngx_http_ai_json_plain_t   *plain;
    ngx_uint_t                  nplain;
    ngx_uint_t                  max_plain;
} ngx_http_ai_json_count_t;


/*
 * The first byte from p that a JSON string must escape (a control
 * character, '"' or '\\'), or end; also in the public header
 */
u_char *ngx_http_ai_json_plain(u_char *p, u_char *end);

/*
 * The end of the JSON value at p, NULL if it is not one (or nests deeper
 * than depth).  strict: what it accepts cJSON accepts and reads the same
 * (numbers as RFC 8259 writes them, of 63 characters at most; strings
 * without control characters, with valid escapes and surrogate pairs);
 * otherwise strings are checked only where they are used.
 */
u_char *ngx_http_ai_json_skip(u_char *p, u_char *end, ngx_uint_t depth,
    ngx_uint_t strict);

/*
 * the same, adding to count the values and the strings (keys too) seen,
 * and, strict, noting the long strings without an escape (count->plain)
 */
u_char *ngx_http_ai_json_skip_count(u_char *p, u_char *end, ngx_uint_t depth,
    ngx_uint_t strict, ngx_http_ai_json_count_t *count);

#if (NGX_HTTP_AI_JSON_SSE2)

/*
 * A bit for each of the 16 bytes at p that a JSON string must escape: a
 * quote, a backslash, a control character (a byte of 0x1f or less is its
 * own minimum with 0x1f)
 */

static ngx_inline unsigned
ngx_http_ai_json_special16(u_char *p)
{
    __m128i  v;

    v = _mm_loadu_si128((const __m128i *) p);

    return (unsigned) _mm_movemask_epi8(
        _mm_or_si128(
            _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
                         _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))),
            _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v)));
}

#endif


/*
 * The end of the string at p if it ends, with nothing to check or decode,
 * in the sixteen bytes after its quote, as most keys and short values do:
 * one load and three compares, inlined in the strict scan and in the
 * build of a tree; NULL: the caller scans the string
 */

static ngx_inline u_char *
ngx_http_ai_json_short(u_char *p, u_char *end)
{
#if (NGX_HTTP_AI_JSON_SSE2)
    unsigned  mask;

    if (end - p > 16) {
        mask = ngx_http_ai_json_special16(p + 1);

        if (mask) {
            p += 1 + __builtin_ctz(mask);
            return (*p == '"') ? p + 1 : NULL;
        }
    }
#endif

    return NULL;
}

static ngx_inline u_char *
ngx_http_ai_json_space(u_char *p, u_char *end)
{
    /* most values follow their colon or comma at once: one compare */

    while (p < end && *p <= ' '
           && (*p == ' ' || *p == '\t' || *p == CR || *p == LF))
    {
        p++;
    }

    return p;
}

/*
 * cJSON_GetObjectItemCaseSensitive(), the same answer (the first member
 * of that name; NULL at a member without one, as in an array) without a
 * call to strcmp() for each member: most differ in their first byte
 */
static ngx_inline cJSON *
ngx_http_ai_json_item(const cJSON *obj, const char *name)
{
    cJSON  *item;

    if (obj == NULL) {
        return NULL;
    }

    for (item = obj->child; item && item->string; item = item->next) {
        if (item->string[0] == name[0] && strcmp(item->string, name) == 0) {
            return item;
        }
    }

    return NULL;
}

/*
 * the members of the object at p, checked as they are read: strictly, as
 * cJSON would; a key with an escape is refused (NGX_ERROR), as the callers
 * compare keys as they are written and cJSON compares them decoded
 */
static ngx_inline ngx_int_t
ngx_http_ai_json_object(ngx_http_ai_json_iter_t *it, u_char *p, u_char *end)
{
    if (p == NULL || p >= end || *p != '{') {
        return NGX_DECLINED;
    }

    it->pos = ngx_http_ai_json_space(p + 1, end);
    it->end = end;
    it->more = 0;

    return NGX_OK;
}

/*
 * NGX_OK: the next member (its key without the quotes, its value raw);
 * NGX_DONE: the object's end (it->pos at its '}'); NGX_ERROR: not valid
 */
ngx_int_t ngx_http_ai_json_next(ngx_http_ai_json_iter_t *it, ngx_str_t *key,
    ngx_str_t *value);

/*
 * The same in two steps, for a value read in place by the caller: the
 * key (it->pos then at the value), then the value skipped, or its end
 * given (ngx_http_ai_json_after)
 */
ngx_int_t ngx_http_ai_json_member_key(ngx_http_ai_json_iter_t *it,
    ngx_str_t *key);
ngx_int_t ngx_http_ai_json_value(ngx_http_ai_json_iter_t *it,
    ngx_str_t *value);

/*
 * inline: a key of the sixteen bytes after its quote, then its colon, at
 * once; any other through ngx_http_ai_json_member_key()
 */
static ngx_inline ngx_int_t
ngx_http_ai_json_next_key(ngx_http_ai_json_iter_t *it, ngx_str_t *key)
{
    u_char  *p, *q;

    p = it->pos;

    if (p >= it->end) {
        return NGX_ERROR;
    }

    if (*p == '}' && !it->more) {
        return NGX_DONE;
    }

    if (*p == '"') {
        q = ngx_http_ai_json_short(p, it->end);

        if (q && q < it->end && *q == ':') {
            key->data = p + 1;
            key->len = q - 1 - key->data;
            it->pos = ngx_http_ai_json_space(q + 1, it->end);
            return NGX_OK;
        }
    }

    return ngx_http_ai_json_member_key(it, key);
}

/* inline: it is called after each member */
static ngx_inline ngx_int_t
ngx_http_ai_json_after(ngx_http_ai_json_iter_t *it, u_char *p)
{
    p = ngx_http_ai_json_space(p, it->end);

    it->more = (p < it->end && *p == ',');

    if (it->more) {
        p = ngx_http_ai_json_space(p + 1, it->end);

    } else if (p >= it->end || *p != '}') {
        return NGX_ERROR;
    }

    it->pos = p;

    return NGX_OK;
}

/* s is lit: inline, a call each cost a stream's fast path ~300 of them */
static ngx_inline ngx_uint_t
ngx_http_ai_json_is(ngx_str_t *s, const char *lit, size_t len)
{
    /* (the first byte first: most keys of a length differ there) */

    return s->len == len
           && (len == 0
               || (s->data[0] == (u_char) lit[0]
                   && ngx_memcmp(s->data, lit, len) == 0));
}

/*
 * The first (find) or the last (rfind) occurrence of needle (at least 2
 * bytes) in [p, end), NULL if none: memchr on its second byte (after a
 * key's quote, a letter rarer than the quotes) then a compare; glibc's
 * memmem is not vectorized for such needles and cost a stream's event
 * about 700 instructions
 */
u_char *ngx_http_ai_json_find(u_char *p, u_char *end, const char *needle,
    size_t len);
u_char *ngx_http_ai_json_rfind(u_char *p, u_char *end, const char *needle,
    size_t len);

#define ngx_http_ai_json_has(s, lit)                                         \
    (ngx_http_ai_json_find((s)->data, (s)->data + (s)->len, lit,            \
                           sizeof(lit) - 1)                                 \
     != NULL)

/* "key":[] in s, spaces allowed; key is quoted ("\"choices\"") */
ngx_uint_t ngx_http_ai_json_empty_array(ngx_str_t *s, const char *key,
    size_t len);

#define ngx_http_ai_json_key(s, lit)                                         \
    ngx_http_ai_json_is(s, lit, sizeof(lit) - 1)


/*
 * a number's text (at most 63 characters, what cJSON reads of one) as
 * cJSON reads it: digits only, of 15 at most, exactly; else by strtod()
 * (NGINX runs in the "C" locale)
 */
double ngx_http_ai_json_double(u_char *p, size_t len);

/*
 * ngx_http_ai_core_tree.c: cJSON's allocator, installed once (by the core,
 * before any module allocates); a body's tree, the one cJSON would build,
 * built from the scanner's checked text on a pool of its own when a pool
 * is given (freed with cJSON_Delete()), else cJSON's reading; NULL: not
 * JSON, *end where cJSON failed (or NULL)
 */
void ngx_http_ai_json_hooks(void);
cJSON *ngx_http_ai_json_parse(ngx_pool_t *pool, ngx_str_t *body,
    const char **end);

/* cJSON_Delete(), a body's tree without a walk of its nodes if it can */
/*
 * the tree of a body a strict reading took whole, without a scan again
 * (NULL: no memory)
 */
cJSON *ngx_http_ai_json_parse_checked(ngx_pool_t *pool, ngx_str_t *body);

void ngx_http_ai_json_delete(cJSON *json);

/*
 * the checked bytes of a string between its quotes, p to q, decoded into
 * o as cJSON decodes them (no longer than q - p); the end written
 */
u_char *ngx_http_ai_json_unescape(u_char *o, u_char *p, u_char *q);

/* the heap blocks of cJSON alive in the process (test_tree checks it) */
ngx_uint_t ngx_http_ai_json_heap_alive(void);

/*
 * cJSON's allocations from pool (NULL: from the heap) until set again,
 * once the core installed its allocator (ngx_http_ai_core_tree.c);
 * returns the pool before, to be set back.  For trees that live no longer
 * than the pool: a request's, a translation's.
 */
ngx_pool_t *ngx_http_ai_json_on_pool(ngx_pool_t *pool);


#endif /* _NGX_HTTP_AI_CORE_JSON_H_INCLUDED_ */
