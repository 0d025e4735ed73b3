
/*
 * Copyright (C) AI Gateway authors
 *
 * A JSON scanner that neither allocates nor copies: the end of a value,
 * the members of an object one by one, integers.  For the hot paths that
 * need a few fields of a provider's event or answer (a stream's text
 * deltas, usage, the check of a plain answer) without building a cJSON
 * tree.  Pure: unit tests link it alone.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_ai_core_json.h"


/*
 * AVX2, where the processor has it (checked once, at the first long
 * string): a long string's bytes 64 at a time
 */
#if (NGX_HTTP_AI_JSON_SSE2 && defined __x86_64__                             \
     && (__GNUC__ >= 5 || defined __clang__))
#include <immintrin.h>
#define NGX_HTTP_AI_JSON_AVX2  1
#else
#define NGX_HTTP_AI_JSON_AVX2  0
#endif


static ngx_inline u_char *ngx_http_ai_json_string(u_char *p, u_char *end,
    ngx_uint_t strict);
static ngx_inline u_char *ngx_http_ai_json_counted(u_char *p, u_char *end,
    ngx_http_ai_json_count_t *count);
static u_char *ngx_http_ai_json_number(u_char *p, u_char *end);
static u_char *ngx_http_ai_json_literal(u_char *p, u_char *end);
static u_char *ngx_http_ai_json_escape(u_char *p, u_char *end);
static ngx_uint_t ngx_http_ai_json_hex4(u_char *p, u_char *end);
#if (NGX_HTTP_AI_JSON_AVX2)
static u_char *ngx_http_ai_json_plain64(u_char *p, u_char *end)
    __attribute__((target("avx2")));
#endif


/* in a string: the quote, the backslash and the control characters */
static const u_char  ngx_http_ai_json_special[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,   /* '"' */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,   /* '\\' */
};


/*
 * The first byte from p that a JSON string cannot hold as it is: a
 * control character, a quote or a backslash; end if none.  Sixteen bytes
 * at a time with SSE2 (x86-64 has it always), then eight at a time while
 * a word has none (the tests of "Bit Twiddling Hacks"), the first one
 * found by its lowest flag, the last bytes one by one.  Most keys and
 * short values end in their first sixteen bytes: one load, three
 * compares.  AI_JSON_BENCH=1 build/test_request times the scan of a 1 MB
 * prompt against a loop a byte at a time.
 */

u_char *
ngx_http_ai_json_plain(u_char *p, u_char *end)
{
    uint64_t  w, q, b, m;

#if (NGX_HTTP_AI_JSON_SSE2)
    unsigned    mask;
    ngx_uint_t  n;

#if (NGX_HTTP_AI_JSON_AVX2)
    static ngx_int_t  avx2 = -1;
#endif

    /* the first 64 bytes, where most strings end, 16 at a time */

    for (n = 0; n < 4 && end - p >= 16; n++) {
        mask = ngx_http_ai_json_special16(p);

        if (mask) {
            return p + __builtin_ctz(mask);
        }

        p += 16;
    }

#if (NGX_HTTP_AI_JSON_AVX2)

    if (end - p >= 64) {
        if (avx2 == -1) {
            avx2 = __builtin_cpu_supports("avx2") ? 1 : 0;
        }

        if (avx2) {
            p = ngx_http_ai_json_plain64(p, end);
        }
    }

#endif

    while (end - p >= 16) {
        mask = ngx_http_ai_json_special16(p);

        if (mask) {
            return p + __builtin_ctz(mask);
        }

        p += 16;
    }
#endif

    while (end - p >= 8) {
        ngx_memcpy(&w, p, sizeof(uint64_t));

        q = w ^ (NGX_HTTP_AI_JSON_ONES * '"');
        b = w ^ (NGX_HTTP_AI_JSON_ONES * '\\');

        m = (((w - NGX_HTTP_AI_JSON_ONES * 0x20) & ~w)
             | ((q - NGX_HTTP_AI_JSON_ONES) & ~q)
             | ((b - NGX_HTTP_AI_JSON_ONES) & ~b))
            & NGX_HTTP_AI_JSON_HIGHS;

        if (m) {
#if (NGX_HAVE_LITTLE_ENDIAN && defined __GNUC__)
            /*
             * the lowest byte flagged is the first special one (a borrow
             * runs upwards only, from a special byte)
             */
            return p + (__builtin_ctzll(m) >> 3);
#else
            break;
#endif
        }

        p += 8;
    }

    while (p < end && !ngx_http_ai_json_special[*p]) {
        p++;
    }

    return p;
}


#if (NGX_HTTP_AI_JSON_AVX2)

/*
 * The bytes from p, 64 at a time with AVX2, up to the block of 64 with a
 * byte a string must escape (then that byte) or to the last 63 bytes
 * (then where they start): a long string's scan at some 20 bytes a cycle
 * against 5 with SSE2 (1 MB: bench, body_1m_gw_min)
 */

static u_char *
ngx_http_ai_json_plain64(u_char *p, u_char *end)
{
    __m256i   quote, bslash, ctl, v0, v1, s0, s1;
    unsigned  m;

    quote = _mm256_set1_epi8('"');
    bslash = _mm256_set1_epi8('\\');
    ctl = _mm256_set1_epi8(0x1f);

    while (end - p >= 64) {
        v0 = _mm256_loadu_si256((const __m256i *) p);
        v1 = _mm256_loadu_si256((const __m256i *) (p + 32));

        s0 = _mm256_or_si256(
                 _mm256_or_si256(_mm256_cmpeq_epi8(v0, quote),
                                 _mm256_cmpeq_epi8(v0, bslash)),
                 _mm256_cmpeq_epi8(_mm256_min_epu8(v0, ctl), v0));

        s1 = _mm256_or_si256(
                 _mm256_or_si256(_mm256_cmpeq_epi8(v1, quote),
                                 _mm256_cmpeq_epi8(v1, bslash)),
                 _mm256_cmpeq_epi8(_mm256_min_epu8(v1, ctl), v1));

        if (!_mm256_testz_si256(_mm256_or_si256(s0, s1),
                                _mm256_or_si256(s0, s1)))
        {
            m = (unsigned) _mm256_movemask_epi8(s0);

            if (m) {
                return p + __builtin_ctz(m);
            }

            m = (unsigned) _mm256_movemask_epi8(s1);

            return p + 32 + __builtin_ctz(m);
        }

        p += 64;
    }

    return p;
}

#endif


/* a JSON object, checked without a tree (a provider's answer) */

ngx_uint_t
ngx_http_ai_json_is_object(ngx_str_t *s)
{
    u_char  *p, *end;

    end = s->data + s->len;
    p = ngx_http_ai_json_space(s->data, end);

    if (p >= end || *p != '{') {
        return 0;
    }

    p = ngx_http_ai_json_skip(p, end, NGX_HTTP_AI_JSON_CJSON_DEPTH, 1);

    return p != NULL && ngx_http_ai_json_space(p, end) == end;
}


/*
 * The end of the JSON value at p, NULL if it is not one (or nests deeper
 * than depth).  Strings are checked for their quotes and control
 * characters, the literals and numbers for their characters.
 */

u_char *
ngx_http_ai_json_skip(u_char *p, u_char *end, ngx_uint_t depth,
    ngx_uint_t strict)
{
    return ngx_http_ai_json_skip_count(p, end, depth, strict, NULL);
}


/* the closing bracket of the container open at level (1 the outermost) */

#define ngx_http_ai_json_closer(objects, level)                              \
    ((level) == 0 ? '\0'                                                     \
     : ((objects)[((level) - 1) / 8] & (1 << (((level) - 1) % 8))) ? '}'     \
     : ']')


/* the same, counting the values and strings (keys too) if count is set */

u_char *
ngx_http_ai_json_skip_count(u_char *p, u_char *end, ngx_uint_t depth,
    ngx_uint_t strict, ngx_http_ai_json_count_t *count)
{
    u_char      *start, *q, close;
    ngx_uint_t   level;
    u_char       objects[(NGX_HTTP_AI_JSON_CJSON_DEPTH + 7) / 8];

    /*
     * One loop, no recursion: the open containers are a stack of bits in
     * objects[] (1: an object, 0: an array), level of them, and close is
     * the innermost one's closing bracket; a call per value cost more
     * than the scan of most values
     */

    level = 0;
    close = '\0';

    if (depth > NGX_HTTP_AI_JSON_CJSON_DEPTH) {
        depth = NGX_HTTP_AI_JSON_CJSON_DEPTH;
    }

value:

    if (p == NULL || p >= end) {
        return NULL;
    }

    if (count) {
        count->values++;
        count->strings += (*p == '"');
    }

    switch (*p) {

    case '"':
        q = strict ? ngx_http_ai_json_short(p, end) : NULL;

        if (q) {
            p = q;

        } else if (strict && count && count->plain) {
            p = ngx_http_ai_json_counted(p, end, count);

        } else {
            p = ngx_http_ai_json_string(p, end, strict);
        }

        if (p == NULL) {
            return NULL;
        }

        break;

    case '{':
    case '[':
        if (level == depth) {
            return NULL;
        }

        close = (*p == '{') ? '}' : ']';

        if (close == '}') {
            objects[level / 8] |= (u_char) (1 << (level % 8));

        } else {
            objects[level / 8] &= (u_char) ~(1 << (level % 8));
        }

        level++;

        p = ngx_http_ai_json_space(p + 1, end);

        if (p < end && *p == close) {
            p++;
            level--;
            close = ngx_http_ai_json_closer(objects, level);
            break;
        }

        if (close == ']') {
            goto value;
        }

        goto key;

    default:
        if (strict) {
            p = ngx_http_ai_json_number(p, end);
            if (p == NULL) {
                return NULL;
            }

            break;
        }

        start = p;

        while (p < end
               && ((*p >= '0' && *p <= '9') || *p == '-' || *p == '+'
                   || *p == '.' || *p == 'e' || *p == 'E'))
        {
            p++;
        }

        if (p == start) {
            p = ngx_http_ai_json_literal(p, end);
            if (p == NULL) {
                return NULL;
            }
        }
    }

    /* after a value: the end, or what follows it in its container */

    while (level) {
        p = ngx_http_ai_json_space(p, end);

        if (p >= end) {
            return NULL;
        }

        if (*p == close) {
            p++;
            level--;
            close = ngx_http_ai_json_closer(objects, level);
            continue;
        }

        if (*p != ',') {
            return NULL;
        }

        p = ngx_http_ai_json_space(p + 1, end);

        if (close == ']') {
            goto value;
        }

        goto key;
    }

    return p;

key:

    /* an object's member: its key, the colon, then its value */

    if (p >= end || *p != '"') {
        return NULL;
    }

    if (count) {
        count->strings++;
    }

    q = strict ? ngx_http_ai_json_short(p, end) : NULL;

    if (q == NULL) {
        q = (strict && count && count->plain)
            ? ngx_http_ai_json_counted(p, end, count)
            : ngx_http_ai_json_string(p, end, strict);

        if (q == NULL) {
            return NULL;
        }
    }

    p = ngx_http_ai_json_space(q, end);

    if (p >= end || *p != ':') {
        return NULL;
    }

    p = ngx_http_ai_json_space(p + 1, end);

    goto value;
}


/*
 * The end of the string at p, strict, as ngx_http_ai_json_string() finds
 * it; a long one without an escape is noted in count->plain
 */

static ngx_inline u_char *
ngx_http_ai_json_counted(u_char *p, u_char *end,
    ngx_http_ai_json_count_t *count)
{
    u_char  *q;

    q = ngx_http_ai_json_plain(p + 1, end);

    if (q < end && *q == '"') {
        if (q - p > NGX_HTTP_AI_JSON_LONG
            && count->nplain < count->max_plain)
        {
            count->plain[count->nplain].start = p;
            count->plain[count->nplain].quote = q;
            count->nplain++;
        }

        return q + 1;
    }

    /* an escape (or what ends it badly): the rest from there, not again */

    return ngx_http_ai_json_string(q - 1, end, 1);
}


/* the end of the string at p (its quote) */

static ngx_inline u_char *
ngx_http_ai_json_string(u_char *p, u_char *end, ngx_uint_t strict)
{
    u_char  *q, *start;

    if (strict) {
        for (p++; p < end; p++) {

            p = ngx_http_ai_json_plain(p, end);

            if (p >= end) {
                return NULL;
            }

            if (*p == '\\') {
                p = ngx_http_ai_json_escape(p, end);
                if (p == NULL) {
                    return NULL;
                }

                continue;
            }

            if (*p == '"') {
                return p + 1;
            }

            return NULL;            /* a control character */
        }

        return NULL;
    }

    /*
     * the next quote not escaped (an odd run of backslashes before it);
     * what a string holds is checked only where it is used
     * (ngx_http_ai_json_text())
     */

    for (p++; p < end; p = q + 1) {
        q = memchr(p, '"', end - p);
        if (q == NULL) {
            return NULL;
        }

        for (start = q; start > p && start[-1] == '\\'; start--) {
            /* void */
        }

        if ((q - start) % 2 == 0) {
            return q + 1;
        }
    }

    return NULL;
}


/*
 * A number as JSON writes it (RFC 8259), of 63 characters at most: then
 * cJSON reads it too, and reads it whole (it reads 63 characters of a
 * number at most); the literals follow
 */

static u_char *
ngx_http_ai_json_number(u_char *p, u_char *end)
{
    u_char  *start;

    start = p;

    if (p < end && *p == '-') {
        p++;
    }

    if (p < end && *p == '0') {
        p++;

    } else if (p < end && *p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }

    } else {
        return ngx_http_ai_json_literal(start, end);
    }

    if (p < end && *p == '.') {
        if (++p >= end || *p < '0' || *p > '9') {
            return NULL;
        }

        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
    }

    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;

        if (p < end && (*p == '+' || *p == '-')) {
            p++;
        }

        if (p >= end || *p < '0' || *p > '9') {
            return NULL;
        }

        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
    }

    if (p - start > 63
        || (p < end && ((*p >= '0' && *p <= '9') || *p == '+' || *p == '-'
                        || *p == '.' || *p == 'e' || *p == 'E')))
    {
        return NULL;
    }

    return p;
}


static u_char *
ngx_http_ai_json_literal(u_char *p, u_char *end)
{
    if (end - p >= 4
        && ((p[0] == 'n' && p[1] == 'u' && p[2] == 'l' && p[3] == 'l')
            || (p[0] == 't' && p[1] == 'r' && p[2] == 'u' && p[3] == 'e')))
    {
        return p + 4;
    }

    if (end - p >= 5 && p[0] == 'f' && p[1] == 'a' && p[2] == 'l'
        && p[3] == 's' && p[4] == 'e')
    {
        return p + 5;
    }

    return NULL;
}


/*
 * An escape in a string, p at its backslash: its last character, NULL if
 * cJSON would refuse it (an unknown escape, \u without four hex digits, a
 * surrogate without its pair)
 */

static u_char *
ngx_http_ai_json_escape(u_char *p, u_char *end)
{
    ngx_uint_t  c;

    if (p + 1 >= end) {
        return NULL;
    }

    switch (p[1]) {

    case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r':
    case 't':
        return p + 1;

    case 'u':
        c = ngx_http_ai_json_hex4(p + 2, end);

        if (c >= 0xdc00 && c <= 0xdfff) {
            return NULL;                    /* a second half alone */
        }

        if (c >= 0xd800 && c <= 0xdbff) {
            if (p + 7 >= end || p[6] != '\\' || p[7] != 'u') {
                return NULL;
            }

            c = ngx_http_ai_json_hex4(p + 8, end);

            if (c < 0xdc00 || c > 0xdfff) {
                return NULL;
            }

            return p + 11;
        }

        return (c == (ngx_uint_t) -1) ? NULL : p + 5;

    default:
        return NULL;
    }
}


static ngx_uint_t
ngx_http_ai_json_hex4(u_char *p, u_char *end)
{
    u_char      ch;
    ngx_uint_t  i, c;

    if (end - p < 4) {
        return (ngx_uint_t) -1;
    }

    c = 0;

    for (i = 0; i < 4; i++) {
        ch = p[i] | 0x20;

        if (p[i] >= '0' && p[i] <= '9') {
            c = c * 16 + (p[i] - '0');

        } else if (ch >= 'a' && ch <= 'f') {
            c = c * 16 + (ch - 'a' + 10);

        } else {
            return (ngx_uint_t) -1;
        }
    }

    return c;
}


u_char *
ngx_http_ai_json_find(u_char *p, u_char *end, const char *needle, size_t len)
{
    u_char  *q;

    if (p == NULL || end - p < (ssize_t) len) {
        return NULL;
    }

    /* q: where the needle's second byte can be */

    for (q = p + 1;
         (q = memchr(q, needle[1], (end - q) - (len - 2))) != NULL;
         q++)
    {
        if (q[-1] == (u_char) needle[0]
            && ngx_memcmp(q + 1, needle + 2, len - 2) == 0)
        {
            return q - 1;
        }

        if (end - q - 1 < (ssize_t) (len - 1)) {
            return NULL;
        }
    }

    return NULL;
}


u_char *
ngx_http_ai_json_rfind(u_char *p, u_char *end, const char *needle,
    size_t len)
{
    u_char  *q;

    if (p == NULL || end - p < (ssize_t) len) {
        return NULL;
    }

    /* the last place the needle's second byte can be, and before */

    for (end = end - len + 2;
         end > p + 1 && (q = memrchr(p + 1, needle[1], end - (p + 1)))
                        != NULL;
         end = q)
    {
        if (q[-1] == (u_char) needle[0]
            && ngx_memcmp(q + 1, needle + 2, len - 2) == 0)
        {
            return q - 1;
        }
    }

    return NULL;
}


/*
 * key (quoted) appears with an empty array, "key":[], spaces allowed
 * anywhere between: found without a parse (in JSON text a key's quotes
 * cannot be a string's, whose quotes are escaped)
 */

ngx_uint_t
ngx_http_ai_json_empty_array(ngx_str_t *s, const char *key, size_t len)
{
    u_char  *p, *last;

    last = s->data + s->len;

    for (p = s->data;
         p < last && (p = ngx_http_ai_json_find(p, last, key, len)) != NULL;
         /* void */)
    {
        p = ngx_http_ai_json_space(p + len, last);

        if (p >= last || *p++ != ':') {
            continue;
        }

        p = ngx_http_ai_json_space(p, last);

        if (p >= last || *p++ != '[') {
            continue;
        }

        p = ngx_http_ai_json_space(p, last);

        if (p < last && *p == ']') {
            return 1;
        }
    }

    return 0;
}


/*
 * NGX_OK: the next member; NGX_DONE: the object's end (it->pos at its
 * '}'); NGX_ERROR: not valid JSON
 */

ngx_int_t
ngx_http_ai_json_next(ngx_http_ai_json_iter_t *it, ngx_str_t *key,
    ngx_str_t *value)
{
    u_char  *p, *end;

    /*
     * ngx_http_ai_json_next_key(), ngx_http_ai_json_value() and
     * ngx_http_ai_json_after() in one: a member is a few bytes, and the
     * calls cost as much as its scan
     */

    p = it->pos;
    end = it->end;

    if (p >= end) {
        return NGX_ERROR;
    }

    if (*p == '}' && !it->more) {
        return NGX_DONE;
    }

    if (*p != '"') {
        return NGX_ERROR;
    }

    key->data = p + 1;

    p = ngx_http_ai_json_string(p, end, 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    key->len = p - 1 - key->data;

    if (memchr(key->data, '\\', key->len) != NULL) {
        return NGX_ERROR;
    }

    p = ngx_http_ai_json_space(p, end);

    if (p >= end || *p != ':') {
        return NGX_ERROR;
    }

    p = ngx_http_ai_json_space(p + 1, end);

    value->data = p;

    p = (p < end && *p == '"')
        ? ngx_http_ai_json_string(p, end, 1)
        : ngx_http_ai_json_skip(p, end, NGX_HTTP_AI_JSON_DEPTH, 1);

    if (p == NULL) {
        return NGX_ERROR;
    }

    value->len = p - value->data;

    p = ngx_http_ai_json_space(p, end);

    it->more = (p < end && *p == ',');

    if (it->more) {
        p = ngx_http_ai_json_space(p + 1, end);

    } else if (p >= end || *p != '}') {
        return NGX_ERROR;
    }

    it->pos = p;

    return NGX_OK;
}


ngx_int_t
ngx_http_ai_json_member_key(ngx_http_ai_json_iter_t *it, ngx_str_t *key)
{
    u_char  *p, *q, *end;

    p = it->pos;
    end = it->end;

    if (p >= end) {
        return NGX_ERROR;
    }

    if (*p == '}' && !it->more) {
        return NGX_DONE;
    }

    if (*p != '"') {
        return NGX_ERROR;
    }

    key->data = p + 1;

    /* most keys end in their first sixteen bytes, without an escape */

    q = ngx_http_ai_json_short(p, end);

    if (q) {
        p = q;

    } else {
        p = ngx_http_ai_json_string(p, end, 1);

        if (p == NULL) {
            return NGX_ERROR;
        }

        if (memchr(key->data, '\\', p - 1 - key->data) != NULL) {
            return NGX_ERROR;
        }
    }

    key->len = p - 1 - key->data;

    if (p < end && *p == ':') {
        it->pos = ngx_http_ai_json_space(p + 1, end);
        return NGX_OK;
    }

    p = ngx_http_ai_json_space(p, end);

    if (p >= end || *p != ':') {
        return NGX_ERROR;
    }

    it->pos = ngx_http_ai_json_space(p + 1, end);

    return NGX_OK;
}


ngx_int_t
ngx_http_ai_json_value(ngx_http_ai_json_iter_t *it, ngx_str_t *value)
{
    u_char  *p;

    value->data = it->pos;

    p = (it->pos < it->end && *it->pos == '"')
        ? ngx_http_ai_json_string(it->pos, it->end, 1)
        : ngx_http_ai_json_skip(it->pos, it->end, NGX_HTTP_AI_JSON_DEPTH, 1);

    if (p == NULL) {
        return NGX_ERROR;
    }

    value->len = p - value->data;

    return ngx_http_ai_json_after(it, p);
}


double
ngx_http_ai_json_double(u_char *p, size_t len)
{
    char      buf[64];
    size_t    i;
    int64_t   n;

    for (n = 0, i = 0; len <= 15 && i < len && p[i] >= '0' && p[i] <= '9';
         i++)
    {
        n = n * 10 + (p[i] - '0');
    }

    if (len <= 15 && i == len) {
        /* digits only: the integer strtod() reads, exactly */
        return (double) n;
    }

    len = ngx_min(len, sizeof(buf) - 1);

    ngx_memcpy(buf, p, len);
    buf[len] = '\0';

    return strtod(buf, NULL);
}
