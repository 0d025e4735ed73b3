
/*
 * Copyright (C) AI Gateway authors
 *
 * The prompt's token estimate (a limit's reservation, the Anthropic
 * door's count_tokens answered by the gateway), from the core's
 * normalized request, without a vocabulary: one pass over the text
 * counting the pieces a BPE tokenizer of the current models (OpenAI's
 * o200k) splits text into before it merges them, as they cost about a
 * token each:
 *
 *   a word (ASCII and 2-byte UTF-8 letters: Latin accents, Greek,
 *   Cyrillic), with one punctuation byte or space before it   1
 *   a run of digits                                  a token per 3 digits
 *   a run of punctuation                             a token per 3 bytes
 *   whitespace but a single space before something   1 a run
 *   3-byte characters (CJK, Hangul)                  a token per 1.5
 *   4-byte characters (emoji)                        1.5 each
 *
 * Each message adds 4 (its role and framing, as OpenAI documents), the
 * request 3; a tool definition and a tool call in the history count the
 * pieces of their compact JSON; an image counts 1600 (Anthropic's rule,
 * (width * height) / 750, for its largest image, above OpenAI's 765 for a
 * high-detail 1024x1024).  The sum is raised by 15%, a margin for the
 * unseen.  Measured against o200k on 44 real-shaped requests
 * (bench/estimator, docs/estimator.md): mean error +14%, the worst
 * under-estimate -10% (base64 and URLs); English +15%, CJK +10%, code
 * +8%, tool definitions over by about 60%.  A limit's settlement corrects
 * the estimate either way.  Pure: unit tests may link it.
 */


#define NGX_HTTP_AI_CORE_INTERNAL  1

#include "ngx_http_ai_core.h"
#include "ngx_http_ai_core_module.h"
#include "ngx_http_ai_core_json.h"


/* AVX2 where the processor has it (checked once): prose 32 bytes a step */
#if (NGX_HAVE_LITTLE_ENDIAN && NGX_HTTP_AI_JSON_SSE2                       \
     && defined __x86_64__ && (__GNUC__ >= 5 || defined __clang__))
#include <immintrin.h>
#define NGX_HTTP_AI_EST_AVX2            1
#else
#define NGX_HTTP_AI_EST_AVX2            0
#endif


#define NGX_HTTP_AI_EST_IMAGE           1600
#define NGX_HTTP_AI_EST_MESSAGE         4
#define NGX_HTTP_AI_EST_PRIMING         3
#define NGX_HTTP_AI_EST_TOOL            0   /* its JSON says enough */

#define NGX_HTTP_AI_EST_NOTED           4096     /* slots: 64 KB a worker */


/*
 * A text's estimate, noted by its hash (ngx_http_ai_message_hash(): with
 * its consumer's) and its length.  A slot a text, the last one in it wins.
 */

typedef struct {
    uint64_t                    hash;
    uint32_t                    len;
    uint32_t                    tokens;
} ngx_http_ai_est_noted_t;


static int64_t ngx_http_ai_estimate_message(ngx_http_ai_message_t *m);
static int64_t ngx_http_ai_estimate_parts(cJSON *message);
#if (NGX_HTTP_AI_EST_AVX2)
static u_char *ngx_http_ai_estimate_prose32(u_char *p, u_char *start,
    u_char *last, int64_t *n) __attribute__((target("avx2")));

static ngx_int_t  ngx_http_ai_est_avx2 = -1;
#endif
static int64_t ngx_http_ai_estimate_json(cJSON *json);


static ngx_http_ai_est_noted_t  ngx_http_ai_est_noted[NGX_HTTP_AI_EST_NOTED];


int64_t
ngx_http_ai_estimate_tokens(ngx_http_ai_request_t *req)
{
    int64_t                 n;
    cJSON                  *tools, *tool;
    ngx_uint_t              i;
    ngx_http_ai_message_t  *m;

    if (req->endpoint == NGX_HTTP_AI_EP_EMBEDDINGS
        || req->messages.nelts == 0)
    {
        /* the text only: 3 bytes a token, whatever its script */
        return (int64_t) (req->text_len + 2) / 3 + 1;
    }

    n = NGX_HTTP_AI_EST_PRIMING;

    if (req->system.len) {
        n += NGX_HTTP_AI_EST_MESSAGE
             + ngx_http_ai_estimate_text(req->system.data,
                                            req->system.len);
    }

    m = req->messages.elts;

    for (i = 0; i < req->messages.nelts; i++) {
        n += NGX_HTTP_AI_EST_MESSAGE + ngx_http_ai_estimate_message(&m[i]);

        if (m[i].images || m[i].tool_calls) {
            if (m[i].json == NULL) {
                /* a chat request's tree, built for its parts */
                (void) ngx_http_ai_request_tree(req);
            }

            n += ngx_http_ai_estimate_parts(m[i].json);
        }
    }

    if (req->tools && ngx_http_ai_request_tree(req)) {
        tools = cJSON_GetObjectItemCaseSensitive(req->json, "tools");

        cJSON_ArrayForEach(tool, tools) {
            n += NGX_HTTP_AI_EST_TOOL + ngx_http_ai_estimate_json(tool);
        }
    }

    /* 15% more, rounded up: a margin for the unseen */

    return (n * 115 + 99) / 100;
}


/*
 * A message's text.  A conversation's history comes again with each of
 * its turns: a text whose hash is known (ai_prompt_guard asked for it, to
 * read the history once too) is read once in the worker, then looked up.
 * A hash is not made for this alone: prose is read faster than hashed.
 */

static int64_t
ngx_http_ai_estimate_message(ngx_http_ai_message_t *m)
{
    int64_t                   n;
    ngx_http_ai_est_noted_t  *e;

    if (m->hash == 0 || m->text.len > NGX_MAX_UINT32_VALUE) {
        return ngx_http_ai_estimate_text(m->text.data, m->text.len);
    }

    e = &ngx_http_ai_est_noted[m->hash & (NGX_HTTP_AI_EST_NOTED - 1)];

    if (e->hash == m->hash && e->len == m->text.len) {
        return e->tokens;
    }

    n = ngx_http_ai_estimate_text(m->text.data, m->text.len);

    if (n <= NGX_MAX_UINT32_VALUE) {
        e->hash = m->hash;
        e->len = (uint32_t) m->text.len;
        e->tokens = (uint32_t) n;
    }

    return n;
}


/*
 * The length of the letter at p: 1 for an ASCII letter, 2 for a 2-byte
 * UTF-8 character (Latin accents, Greek, Cyrillic: letters for o200k's
 * pieces), 0 for anything else.
 */

static ngx_inline ngx_uint_t
ngx_http_ai_estimate_letter(u_char *p, u_char *last)
{
    u_char  c;

    c = *p | 0x20;

    if (c >= 'a' && c <= 'z') {
        return 1;
    }

    if (*p >= 0xc0 && *p < 0xe0 && p + 1 < last
        && p[1] >= 0x80 && p[1] < 0xc0)
    {
        return 2;
    }

    return 0;
}


#if (NGX_HAVE_LITTLE_ENDIAN)

#define ngx_http_ai_est_ascii_letter(c)                                      \
    ((u_char) (((c) | 0x20) - 'a') <= 'z' - 'a')


/*
 * Prose, 8 bytes at a time: while a word of the text holds ASCII letters
 * and single spaces only, the pieces begun in it are counted at once, as
 * the loop below would count them: a letter that follows no letter, or a
 * capital that follows a small letter ([A-Z]*[a-z]*), begins a piece; a
 * single space joins the word after it.  A word ending in a space is
 * taken only if a letter follows (a longer run of whitespace counts).
 * Called at a piece's start; stops at a word's start, the piece there
 * begun then finished as the loop below finishes it, so that the loop
 * goes on at a piece's start.  Most of an English text goes through
 * here: AI_JSON_BENCH=1 build/test_estimate prints the cost of 1 MB of
 * prose both ways (about 1 ms against 4 ms).
 */

static u_char *
ngx_http_ai_estimate_prose(u_char *p, u_char *start, u_char *last,
    int64_t *n)
{
    u_char    *from, prev;
    uint64_t   w, lower, upper, space, letter, after, after_lower, begins;

    from = p;

    while (last - p > 8) {

#if (NGX_HTTP_AI_EST_AVX2)
        if (p - from == 8 && last - p > 32) {
            /*
             * a word of prose taken: the rest 32 bytes a step, the 8-byte
             * steps going on where they stop (a short text, or one of
             * digits and signs, does not pay for their start)
             */

            if (ngx_http_ai_est_avx2 == -1) {
                ngx_http_ai_est_avx2 = __builtin_cpu_supports("avx2") ? 1 : 0;
            }

            if (ngx_http_ai_est_avx2) {
                p = ngx_http_ai_estimate_prose32(p, start, last, n);

                if (last - p <= 8) {
                    break;
                }
            }
        }
#endif

        ngx_memcpy(&w, p, sizeof(uint64_t));

        if (w & NGX_HTTP_AI_JSON_HIGHS) {
            break;
        }

        lower = ngx_http_ai_json_range(w, 'a', 'z');
        upper = ngx_http_ai_json_range(w, 'A', 'Z');
        space = ngx_http_ai_json_range(w, ' ', ' ');
        letter = lower | upper;

        if ((letter | space) != NGX_HTTP_AI_JSON_HIGHS
            || (space & (space >> 8))
            || ((space >> 63) && !ngx_http_ai_est_ascii_letter(p[8])))
        {
            break;
        }

        prev = (p > start) ? p[-1] : '\0';

        if ((space & 0x80)
            && (prev == ' ' || prev == '\n' || prev == '\t' || prev == '\r'))
        {
            break;
        }

        after = (letter << 8)
                | (ngx_http_ai_est_ascii_letter(prev) ? 0x80 : 0);
        after_lower = (lower << 8)
                      | ((prev >= 'a' && prev <= 'z') ? 0x80 : 0);

        begins = (letter & ~after) | (upper & after_lower);

        /* one per flag: the flags summed into the top byte */

        *n += (int64_t) (((begins >> 7) * NGX_HTTP_AI_JSON_ONES) >> 56);

        p += 8;
    }

    if (p == from || !ngx_http_ai_est_ascii_letter(p[-1])) {
        return p;
    }

    /* the piece the last word ended in goes on as the loop's would */

    if (p[-1] >= 'A' && p[-1] <= 'Z') {
        while (p < last && *p >= 'A' && *p <= 'Z') {
            p++;
        }
    }

    while (p < last && ngx_http_ai_estimate_letter(p, last)
           && !(*p >= 'A' && *p <= 'Z'))
    {
        p += ngx_http_ai_estimate_letter(p, last);
    }

    return p;
}



#if (NGX_HTTP_AI_EST_AVX2)

/*
 * The loop above, 32 bytes a step with AVX2: a block is taken whole if
 * the 8-byte steps would take each of its four words (then the pieces
 * they would count begin in it), else it is left to them; a flag per byte
 * in a 32-bit mask, the mask shifted by one for the byte before.  1 MB of
 * prose: AI_JSON_BENCH=1 build/test_estimate.
 */

static u_char *
ngx_http_ai_estimate_prose32(u_char *p, u_char *start, u_char *last,
    int64_t *n)
{
    u_char    prev;
    uint32_t  lower, upper, space, letter, after, after_lower, begins;
    __m256i   v, a1, z1, A1, Z1, sp;

    a1 = _mm256_set1_epi8('a' - 1);
    z1 = _mm256_set1_epi8('z' + 1);
    A1 = _mm256_set1_epi8('A' - 1);
    Z1 = _mm256_set1_epi8('Z' + 1);
    sp = _mm256_set1_epi8(' ');

    while (last - p > 32) {
        v = _mm256_loadu_si256((const __m256i *) p);

        if (_mm256_movemask_epi8(v)) {
            /* a byte over 0x7f */
            break;
        }

        /* ASCII bytes only: the signed compares are the unsigned ones */

        lower = (uint32_t) _mm256_movemask_epi8(
                    _mm256_and_si256(_mm256_cmpgt_epi8(v, a1),
                                     _mm256_cmpgt_epi8(z1, v)));
        upper = (uint32_t) _mm256_movemask_epi8(
                    _mm256_and_si256(_mm256_cmpgt_epi8(v, A1),
                                     _mm256_cmpgt_epi8(Z1, v)));
        space = (uint32_t) _mm256_movemask_epi8(_mm256_cmpeq_epi8(v, sp));
        letter = lower | upper;

        if ((letter | space) != 0xffffffff
            || (space & (space >> 1))
            || ((space >> 31) && !ngx_http_ai_est_ascii_letter(p[32])))
        {
            break;
        }

        prev = (p > start) ? p[-1] : '\0';

        if ((space & 1)
            && (prev == ' ' || prev == '\n' || prev == '\t' || prev == '\r'))
        {
            break;
        }

        after = (letter << 1) | (ngx_http_ai_est_ascii_letter(prev) ? 1 : 0);
        after_lower = (lower << 1) | ((prev >= 'a' && prev <= 'z') ? 1 : 0);

        begins = (letter & ~after) | (upper & after_lower);

        *n += __builtin_popcount(begins);

        p += 32;
    }

    return p;
}

#endif

#endif


/* the pieces of a text */

int64_t
ngx_http_ai_estimate_text(u_char *p, size_t len)
{
    u_char      *start, *last, *q, c;
    int64_t      n, c3, c4;
    ngx_uint_t   l;

    n = 0;
    c3 = 0;
    c4 = 0;

    start = p;
    last = p + len;

    while (p < last) {
        c = *p;

#if (NGX_HAVE_LITTLE_ENDIAN)
        if (last - p > 8 && (c == ' ' || ngx_http_ai_est_ascii_letter(c))) {
            q = ngx_http_ai_estimate_prose(p, start, last, &n);

            if (q != p) {
                p = q;
                continue;
            }
        }
#endif

        l = ngx_http_ai_estimate_letter(p, last);

        if (l == 0 && c >= 0x80) {
            /* CJK, emoji: counted by their lead bytes */
            c4 += (c >= 0xf0);
            c3 += (c >= 0xe0 && c < 0xf0);
            p++;
            continue;
        }

        if (l) {
            /* [A-Z]*[a-z]*: a word piece */

            while (p < last && *p >= 'A' && *p <= 'Z') {
                p++;
            }

            while (p < last && ngx_http_ai_estimate_letter(p, last)
                   && !(*p >= 'A' && *p <= 'Z'))
            {
                p += ngx_http_ai_estimate_letter(p, last);
            }

            n++;
            continue;
        }

        q = p;

        if (c >= '0' && c <= '9') {
            while (p < last && *p >= '0' && *p <= '9') {
                p++;
            }

            n += (p - q + 2) / 3;
            continue;
        }

        if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
            while (p < last
                   && (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r'))
            {
                p++;
            }

            /* a single space before a word or punctuation joins it */

            if (!(p - q == 1 && c == ' ' && p < last)) {
                n++;
            }

            continue;
        }

        while (p < last && *p < 0x80
               && !ngx_http_ai_estimate_letter(p, last)
               && !(*p >= '0' && *p <= '9')
               && *p != ' ' && *p != '\n' && *p != '\t' && *p != '\r')
        {
            p++;
        }

        /* one punctuation byte before a word joins it */

        if (p - q == 1 && p < last && ngx_http_ai_estimate_letter(p, last)) {
            continue;
        }

        n += (p - q + 2) / 3;
    }

    /* a token per 1.5 CJK characters, 1.5 tokens an emoji */

    return n + (c3 * 2 + 2) / 3 + (c4 * 3 + 1) / 2;
}


/*
 * What a message holds besides its text: images, and tool calls (their
 * arguments; OpenAI "tool_calls", Anthropic "tool_use" blocks, Gemini
 * "functionCall" parts).
 */

static int64_t
ngx_http_ai_estimate_parts(cJSON *message)
{
    int64_t   n;
    cJSON    *parts, *part, *type, *calls, *call;

    n = 0;

    if (message == NULL) {
        return 0;
    }

    calls = cJSON_GetObjectItemCaseSensitive(message, "tool_calls");

    cJSON_ArrayForEach(call, calls) {
        n += NGX_HTTP_AI_EST_TOOL + ngx_http_ai_estimate_json(call);
    }

    parts = cJSON_GetObjectItemCaseSensitive(message, "content");

    if (!cJSON_IsArray(parts)) {
        parts = cJSON_GetObjectItemCaseSensitive(message, "parts");
    }

    cJSON_ArrayForEach(part, parts) {
        type = cJSON_GetObjectItemCaseSensitive(part, "type");

        if (cJSON_IsString(type)) {
            if (ngx_strcmp(type->valuestring, "image_url") == 0
                || ngx_strcmp(type->valuestring, "image") == 0)
            {
                n += NGX_HTTP_AI_EST_IMAGE;

            } else if (ngx_strcmp(type->valuestring, "tool_use") == 0) {
                n += NGX_HTTP_AI_EST_TOOL
                     + ngx_http_ai_estimate_json(
                           cJSON_GetObjectItemCaseSensitive(part, "input"));
            }

            continue;
        }

        if (cJSON_GetObjectItemCaseSensitive(part, "inlineData")
            || cJSON_GetObjectItemCaseSensitive(part, "inline_data")
            || cJSON_GetObjectItemCaseSensitive(part, "fileData"))
        {
            n += NGX_HTTP_AI_EST_IMAGE;

        } else if (cJSON_GetObjectItemCaseSensitive(part, "functionCall")) {
            n += NGX_HTTP_AI_EST_TOOL + ngx_http_ai_estimate_json(part);
        }
    }

    return n;
}


/* a JSON value's compact size / 4: tool schemas and arguments */

static int64_t
ngx_http_ai_estimate_json(cJSON *json)
{
    char     *s;
    int64_t   n;

    if (json == NULL) {
        return 0;
    }

    s = cJSON_PrintUnformatted(json);
    if (s == NULL) {
        return 0;
    }

    n = ngx_http_ai_estimate_text((u_char *) s, ngx_strlen(s));

    cJSON_free(s);

    return n;
}
