
/*
 * Unit tests of the protocol translation (ai_proxy's translate files):
 * golden requests, responses and streams per provider pair, round trips,
 * fragments, garbage, truncation and errors.
 *
 * Golden files are in GOLDEN_DIR: an input and its ".expected" output,
 * compared as JSON (key order does not matter; "created" is ignored).
 * GOLDEN_UPDATE=1 in the environment writes the outputs as the expected
 * files instead (to review with git diff).
 */


#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <setjmp.h>
#include <cmocka.h>

#include "ngx_http_ai_core.h"
#include "ngx_http_ai_sse.h"
#include "ngx_http_ai_core_format.h"


extern ngx_uint_t  ngx_stub_pools_created;


#ifndef GOLDEN_DIR
#define GOLDEN_DIR  "t/unit/golden"
#endif


typedef struct {
    ngx_str_t   name;
    ngx_str_t   data;
} sse_event_t;


typedef struct {
    sse_event_t  *ev;
    ngx_uint_t    n;
    ngx_uint_t    size;
} sse_events_t;


typedef struct {
    u_char       *data;
    size_t        len;
    size_t        size;
} buf_t;


static ngx_str_t  empty = ngx_null_string;

/* cJSON allocations not yet freed: the translator must free its trees */
static long       live;


static void *
count_malloc(size_t size)
{
    live++;
    return malloc(size);
}


static void
count_free(void *p)
{
    if (p) {
        live--;
    }

    free(p);
}


/* helpers */

static char *
read_golden(const char *name, size_t *len)
{
    FILE    *f;
    char    *p, path[512];
    long     n;

    snprintf(path, sizeof(path), "%s/%s", GOLDEN_DIR, name);

    f = fopen(path, "rb");
    if (f == NULL) {
        fail_msg("cannot open %s", path);
        return NULL;
    }

    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);

    p = malloc(n + 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, n, f), (size_t) n);
    p[n] = '\0';
    fclose(f);

    if (len) {
        *len = n;
    }

    return p;
}


static int
updating(void)
{
    const char  *v;

    v = getenv("GOLDEN_UPDATE");

    return v && *v == '1';
}


static void
write_golden(const char *name, const char *data, size_t len)
{
    FILE  *f;
    char   path[512];

    snprintf(path, sizeof(path), "%s/%s", GOLDEN_DIR, name);

    f = fopen(path, "wb");
    assert_non_null(f);
    fwrite(data, 1, len, f);
    fclose(f);
}


static void
strip_created(cJSON *json)
{
    if (cJSON_IsObject(json)) {
        cJSON_DeleteItemFromObjectCaseSensitive(json, "created");

        /* the Responses API's, at the top and in an event's response */
        cJSON_DeleteItemFromObjectCaseSensitive(json, "created_at");
        cJSON_DeleteItemFromObjectCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(json, "response"),
            "created_at");
    }
}


/*
 * The ids the Responses translation makes (a prefix and 24 hex digits)
 * become the prefix and 24 "x": the output is then the same every run.
 */

static void
normalize_ids(u_char *data, size_t len)
{
    u_char       *p, *last, *h;
    size_t        n, k;
    ngx_uint_t    i;

    static const char  *prefixes[] = { "resp_", "msg_", "fc_", NULL };

    last = data + len;

    for (i = 0; prefixes[i]; i++) {
        n = strlen(prefixes[i]);

        for (p = data; p + n + 24 <= last; p++) {
            if (memcmp(p, prefixes[i], n) != 0) {
                continue;
            }

            h = p + n;

            for (k = 0; k < 24; k++) {
                if (!((h[k] >= '0' && h[k] <= '9')
                      || (h[k] >= 'a' && h[k] <= 'f')))
                {
                    break;
                }
            }

            if (k == 24 && (h + 24 == last || h[24] == '"')) {
                memset(h, 'x', 24);
            }
        }
    }
}


static void sse_parse(const u_char *p, size_t len, sse_events_t *evs);


/* an SSE output as an expected file, without "created" (it is now) */

static void
write_sse(const char *name, buf_t *b)
{
    FILE          *f;
    char          *s, path[512];
    cJSON         *json;
    ngx_uint_t     i;
    sse_events_t   evs;

    sse_parse(b->data, b->len, &evs);

    snprintf(path, sizeof(path), "%s/%s", GOLDEN_DIR, name);

    f = fopen(path, "wb");
    assert_non_null(f);

    for (i = 0; i < evs.n; i++) {
        if (evs.ev[i].name.len) {
            fprintf(f, "event: %.*s\n", (int) evs.ev[i].name.len,
                    evs.ev[i].name.data);
        }

        json = cJSON_ParseWithLength((char *) evs.ev[i].data.data,
                                     evs.ev[i].data.len);

        if (json == NULL) {
            fprintf(f, "data: %.*s\n\n", (int) evs.ev[i].data.len,
                    evs.ev[i].data.data);
            continue;
        }

        strip_created(json);
        s = cJSON_PrintUnformatted(json);
        fprintf(f, "data: %s\n\n", s);
        cJSON_free(s);
        cJSON_Delete(json);
    }

    fclose(f);
}


/* actual JSON text == expected JSON text, key order aside */

static void
assert_json(const char *what, const u_char *actual, size_t len,
    const char *expected)
{
    char   *s;
    cJSON  *a, *e;

    a = cJSON_ParseWithLength((const char *) actual, len);
    e = cJSON_Parse(expected);

    if (a == NULL) {
        fail_msg("%s: output is not JSON: %.*s", what, (int) len, actual);
    }

    assert_non_null(e);

    strip_created(a);
    strip_created(e);

    if (!cJSON_Compare(a, e, 1)) {
        s = cJSON_Print(a);
        print_error("%s: got\n%s\nexpected\n%s\n", what, s, expected);
        cJSON_free(s);
        cJSON_Delete(a);
        cJSON_Delete(e);
        fail_msg("%s: output differs", what);
    }

    cJSON_Delete(a);
    cJSON_Delete(e);
}


static ngx_int_t
collect(void *data, ngx_str_t *event, ngx_str_t *payload)
{
    sse_events_t  *evs = data;
    sse_event_t   *ev;

    if (evs->n == evs->size) {
        evs->size = evs->size ? 2 * evs->size : 16;
        evs->ev = realloc(evs->ev, evs->size * sizeof(sse_event_t));
        assert_non_null(evs->ev);
    }

    ev = &evs->ev[evs->n++];

    ev->name.len = event->len;
    ev->name.data = malloc(event->len + 1);
    memcpy(ev->name.data, event->data, event->len);

    ev->data.len = payload->len;
    ev->data.data = malloc(payload->len + 1);
    memcpy(ev->data.data, payload->data, payload->len);

    return NGX_OK;
}


static void
sse_parse(const u_char *p, size_t len, sse_events_t *evs)
{
    ngx_http_ai_sse_parser_t  parser;

    memset(evs, 0, sizeof(sse_events_t));
    memset(&parser, 0, sizeof(parser));

    ngx_http_ai_sse_init(&parser, NULL, 1 << 20);
    assert_int_equal(ngx_http_ai_sse_parse(&parser, (u_char *) p,
                                           (u_char *) p + len, collect, evs),
                     NGX_OK);
}


static void
buf_add(buf_t *b, ngx_str_t *s)
{
    if (s->len == 0) {
        return;
    }

    if (b->len + s->len > b->size) {
        b->size = 2 * (b->len + s->len) + 256;
        b->data = realloc(b->data, b->size);
        assert_non_null(b->data);
    }

    memcpy(b->data + b->len, s->data, s->len);
    b->len += s->len;
}


static ngx_int_t
feed(ngx_http_ai_stream_t *st, const char *name, const char *data, buf_t *b)
{
    long        before;
    cJSON      *json;
    ngx_int_t   rc;
    ngx_str_t   n, d, out;

    n.data = (u_char *) name;
    n.len = strlen(name);
    d.data = (u_char *) data;
    d.len = strlen(data);

    json = cJSON_ParseWithLength(data, d.len);

    before = live;
    rc = ngx_http_ai_stream_event(st, &n, &d, json, &out);
    assert_int_equal(live, before);

    cJSON_Delete(json);

    if (rc == NGX_OK) {
        buf_add(b, &out);
    }

    return rc;
}


/* every from in b becomes to, of the same length */

static void
replace_all(buf_t *b, const char *from, const char *to)
{
    u_char  *p, *last;
    size_t   n;

    n = strlen(from);
    assert_int_equal(n, strlen(to));

    last = b->data + b->len;

    for (p = b->data; p + n <= last; p++) {
        if (memcmp(p, from, n) == 0) {
            memcpy(p, to, n);
            p += n - 1;
        }
    }
}


/* an upstream SSE file through a translator, event by event */

static void
run_stream(const char *file, ngx_uint_t door, ngx_uint_t target,
    ngx_uint_t include_usage, ngx_uint_t complete, buf_t *b)
{
    char                  *in;
    size_t                 len;
    ngx_str_t              model, out;
    ngx_uint_t             i;
    sse_events_t           evs;
    ngx_http_ai_stream_t  *st;

    buf_t                  fast;
    ngx_http_ai_stream_t  *sf;

    in = read_golden(file, &len);
    sse_parse((u_char *) in, len, &evs);

    ngx_str_set(&model, "client-model");
    st = ngx_http_ai_stream_create(NULL, target, door, &model,
                                   include_usage);
    assert_non_null(st);

    /*
     * the same stream again with no parsed JSON given (what ai_proxy
     * passes): the translator parses what it needs, text deltas go by its
     * fast path, and it must write the same bytes
     */

    sf = ngx_http_ai_stream_create(NULL, target, door, &model,
                                   include_usage);
    assert_non_null(sf);
    sf->created = st->created;

    memset(b, 0, sizeof(buf_t));
    memset(&fast, 0, sizeof(buf_t));

    for (i = 0; i < evs.n; i++) {
        cJSON  *json;

        long    before;

        json = cJSON_ParseWithLength((const char *) evs.ev[i].data.data,
                                     evs.ev[i].data.len);

        before = live;
        assert_int_equal(ngx_http_ai_stream_event(st, &evs.ev[i].name,
                                                  &evs.ev[i].data, json,
                                                  &out),
                         NGX_OK);
        assert_int_equal(live, before);

        cJSON_Delete(json);

        buf_add(b, &out);

        before = live;
        assert_int_equal(ngx_http_ai_stream_event(sf, &evs.ev[i].name,
                                                  &evs.ev[i].data, NULL,
                                                  &out),
                         NGX_OK);
        assert_int_equal(live, before);

        buf_add(&fast, &out);
    }

    assert_int_equal(ngx_http_ai_stream_end(st, complete, &out), NGX_OK);
    buf_add(b, &out);

    assert_int_equal(ngx_http_ai_stream_end(sf, complete, &out), NGX_OK);
    buf_add(&fast, &out);

    /* generated ids differ: the fast run's are put in the other's place */

    if (st->id && sf->id && strcmp(st->id, sf->id) != 0) {
        replace_all(&fast, sf->id, st->id);
    }

    normalize_ids(b->data, b->len);
    normalize_ids(fast.data, fast.len);

    if (fast.len != b->len || memcmp(fast.data, b->data, b->len) != 0) {
        print_error("%s: with JSON\n%.*s\nwithout\n%.*s\n", file,
                    (int) b->len, b->data, (int) fast.len, fast.data);
        fail();
    }

    /*
     * each event a translator wrote, its JSON as cJSON prints it, byte for
     * byte: what is written without a tree is what the tree would have
     * printed (a stream of the door's own format goes as it came)
     */

    sse_parse(fast.data, fast.len, &evs);

    for (i = 0; door != target && i < evs.n; i++) {
        char   *printed;
        cJSON  *json;

        if (evs.ev[i].data.len == 0 || evs.ev[i].data.data[0] != '{') {
            continue;
        }

        json = cJSON_ParseWithLength((const char *) evs.ev[i].data.data,
                                     evs.ev[i].data.len);
        assert_non_null(json);

        printed = cJSON_PrintUnformatted(json);
        assert_non_null(printed);

        if (strlen(printed) != evs.ev[i].data.len
            || memcmp(printed, evs.ev[i].data.data, evs.ev[i].data.len) != 0)
        {
            print_error("%s: event %u\n%.*s\nnot as cJSON prints it\n%s\n",
                        file, (unsigned) i, (int) evs.ev[i].data.len,
                        evs.ev[i].data.data, printed);
            fail();
        }

        cJSON_free(printed);
        cJSON_Delete(json);
    }

    free(fast.data);

    free(in);
}


/* the events of two SSE texts are the same (data as JSON when it is) */

static void
assert_sse(const char *what, const u_char *actual, size_t len,
    const char *expected)
{
    char          ctx[256];
    ngx_uint_t    i;
    sse_events_t  a, e;

    sse_parse(actual, len, &a);
    sse_parse((u_char *) expected, strlen(expected), &e);

    if (a.n != e.n) {
        print_error("%s: got\n%.*s\n", what, (int) len, actual);
        fail_msg("%s: %u events, expected %u", what, (unsigned) a.n,
                 (unsigned) e.n);
    }

    for (i = 0; i < a.n; i++) {
        snprintf(ctx, sizeof(ctx), "%s: event %u", what, (unsigned) i);

        if (a.ev[i].name.len != e.ev[i].name.len
            || memcmp(a.ev[i].name.data, e.ev[i].name.data, a.ev[i].name.len))
        {
            fail_msg("%s: event name \"%.*s\", expected \"%.*s\"", ctx,
                     (int) a.ev[i].name.len, a.ev[i].name.data,
                     (int) e.ev[i].name.len, e.ev[i].name.data);
        }

        e.ev[i].data.data[e.ev[i].data.len] = '\0';

        if (e.ev[i].data.data[0] != '{') {
            if (a.ev[i].data.len != e.ev[i].data.len
                || memcmp(a.ev[i].data.data, e.ev[i].data.data,
                          a.ev[i].data.len))
            {
                fail_msg("%s: data \"%.*s\", expected \"%s\"", ctx,
                         (int) a.ev[i].data.len, a.ev[i].data.data,
                         e.ev[i].data.data);
            }

            continue;
        }

        assert_json(ctx, a.ev[i].data.data, a.ev[i].data.len,
                    (char *) e.ev[i].data.data);
    }
}


static ngx_uint_t
format(const char *s)
{
    if (strcmp(s, "anthropic") == 0) {
        return NGX_HTTP_AI_FMT_ANTHROPIC;
    }

    if (strcmp(s, "responses") == 0) {
        return NGX_HTTP_AI_FMT_RESPONSES;
    }

    if (strcmp(s, "gemini") == 0) {
        return NGX_HTTP_AI_FMT_GEMINI;
    }

    return NGX_HTTP_AI_FMT_OPENAI;
}


static ngx_array_t *
decorations(cJSON *list)
{
    cJSON                     *item;
    ngx_array_t               *a;
    ngx_http_ai_decoration_t  *d;

    if (!cJSON_IsArray(list)) {
        return NULL;
    }

    a = calloc(1, sizeof(ngx_array_t));
    a->elts = malloc(4 * sizeof(ngx_http_ai_decoration_t));
    a->size = sizeof(ngx_http_ai_decoration_t);
    a->nalloc = 4;

    cJSON_ArrayForEach(item, list) {
        d = ngx_array_push(a);
        d->role.data = (u_char *) cJSON_GetObjectItem(item, "role")
                                      ->valuestring;
        d->role.len = strlen((char *) d->role.data);
        d->content.data = (u_char *) cJSON_GetObjectItem(item, "content")
                                         ->valuestring;
        d->content.len = strlen((char *) d->content.data);
    }

    return a;
}


static ngx_int_t
checked_request(ngx_http_ai_translate_request_t *req, ngx_str_t *body,
    ngx_str_t *err)
{
    long       before;
    ngx_int_t  rc;

    before = live;
    rc = ngx_http_ai_translate_request(NULL, req, body, err);
    assert_int_equal(live, before);

    return rc;
}


/*
 * A request case: {"from","to","model","max_tokens","stream",
 * "force_usage","prepend","append","body"}.
 */

static ngx_int_t
translate_case(cJSON *c, ngx_str_t *body, ngx_str_t *err, char **raw)
{
    cJSON                            *item;
    ngx_http_ai_translate_request_t   req;

    memset(&req, 0, sizeof(req));

    req.from = format(cJSON_GetObjectItem(c, "from")->valuestring);
    req.to = format(cJSON_GetObjectItem(c, "to")->valuestring);
    req.endpoint = (req.from == NGX_HTTP_AI_FMT_ANTHROPIC)
                   ? NGX_HTTP_AI_EP_MESSAGES
                   : (req.from == NGX_HTTP_AI_FMT_RESPONSES)
                     ? NGX_HTTP_AI_EP_RESPONSES : NGX_HTTP_AI_EP_CHAT;

    item = cJSON_GetObjectItem(c, "endpoint");
    if (cJSON_IsString(item) && strcmp(item->valuestring, "embeddings") == 0)
    {
        req.endpoint = NGX_HTTP_AI_EP_EMBEDDINGS;
    }

    item = cJSON_GetObjectItem(c, "model");
    if (cJSON_IsString(item)) {
        req.model.data = (u_char *) item->valuestring;
        req.model.len = strlen(item->valuestring);
    }

    item = cJSON_GetObjectItem(c, "max_tokens");
    req.max_tokens = cJSON_IsNumber(item) ? item->valueint
                                          : NGX_HTTP_AI_UNSET;

    req.stream = cJSON_IsTrue(cJSON_GetObjectItem(c, "stream"));
    req.force_usage = cJSON_IsTrue(cJSON_GetObjectItem(c, "force_usage"));
    req.prepend = decorations(cJSON_GetObjectItem(c, "prepend"));
    req.append = decorations(cJSON_GetObjectItem(c, "append"));

    req.json = cJSON_GetObjectItem(c, "body");
    *raw = cJSON_PrintUnformatted(req.json);
    req.body.data = (u_char *) *raw;
    req.body.len = strlen(*raw);

    return checked_request(&req, body, err);
}


static void
golden_request(const char *name)
{
    char       *in, *before, *after, *raw, *expected, file[256];
    cJSON      *c;
    ngx_str_t   body, err;

    snprintf(file, sizeof(file), "request_%s.json", name);
    in = read_golden(file, NULL);

    c = cJSON_Parse(in);
    assert_non_null(c);

    before = cJSON_PrintUnformatted(c);

    if (translate_case(c, &body, &err, &raw) != NGX_OK) {
        fail_msg("%s: %.*s", name, (int) err.len, err.data);
    }

    /* the client's tree is left as it was */

    after = cJSON_PrintUnformatted(c);
    assert_string_equal(before, after);

    snprintf(file, sizeof(file), "request_%s.expected.json", name);

    if (updating()) {
        c = cJSON_ParseWithLength((char *) body.data, body.len);
        expected = cJSON_Print(c);
        write_golden(file, expected, strlen(expected));

    } else {
        expected = read_golden(file, NULL);
        assert_json(name, body.data, body.len, expected);
    }
}


static void
golden_response(const char *target, const char *kind, const char *door)
{
    long        before;
    char       *in, *expected, file[256], what[256];
    cJSON      *c;
    size_t      len;
    ngx_str_t   body, out, err, model;

    snprintf(file, sizeof(file), "response_%s_%s.json", target, kind);
    in = read_golden(file, &len);

    body.data = (u_char *) in;
    body.len = len;
    ngx_str_set(&model, "client-model");

    snprintf(what, sizeof(what), "response %s %s to %s", target, kind, door);

    before = live;

    if (ngx_http_ai_translate_response(NULL, format(target), format(door),
                                       &model, &body, &out, &err)
        != NGX_OK)
    {
        fail_msg("%s: %.*s", what, (int) err.len, err.data);
    }

    assert_int_equal(live, before);

    normalize_ids(out.data, out.len);

    snprintf(file, sizeof(file), "response_%s_%s.to_%s.expected.json",
             target, kind, door);

    if (updating()) {
        c = cJSON_ParseWithLength((char *) out.data, out.len);
        strip_created(c);
        expected = cJSON_Print(c);
        write_golden(file, expected, strlen(expected));

    } else {
        expected = read_golden(file, NULL);
        assert_json(what, out.data, out.len, expected);
    }
}


static void
golden_stream(const char *target, const char *kind, const char *door,
    ngx_uint_t include_usage)
{
    char   *expected, file[256], in[256], what[256];
    buf_t   b;

    snprintf(in, sizeof(in), "stream_%s_%s.sse", target, kind);
    snprintf(file, sizeof(file), "stream_%s_%s.to_%s%s.expected.sse",
             target, kind, door, include_usage ? "_usage" : "");
    snprintf(what, sizeof(what), "%s", file);

    run_stream(in, format(door), format(target), include_usage, 1, &b);

    if (updating()) {
        write_sse(file, &b);

    } else {
        expected = read_golden(file, NULL);
        assert_sse(what, b.data, b.len, expected);
    }
}


/* tests: requests */

static void
test_request_golden(void **state)
{
    golden_request("openai_to_anthropic_tools");
    golden_request("openai_to_gemini_tools");
    golden_request("anthropic_to_openai_tools");
    golden_request("anthropic_to_gemini_tools");
    golden_request("openai_to_openai_decorate");
    golden_request("anthropic_to_anthropic_decorate");
    golden_request("openai_to_anthropic_decorate");
    golden_request("openai_to_gemini_decorate");
    golden_request("openai_to_anthropic_cache");
    golden_request("openai_to_gemini_cache");
    golden_request("anthropic_to_openai_cache");
    golden_request("anthropic_to_anthropic_cache");
    golden_request("anthropic_to_openai_thinking");
    golden_request("anthropic_to_gemini_thinking");
    golden_request("openai_to_anthropic_thinking");
    golden_request("openai_to_anthropic_budget");
    golden_request("openai_to_gemini_thinking");
    golden_request("openai_to_gemini_none");
    golden_request("openai_to_anthropic_json");
    golden_request("openai_to_anthropic_sampling");
    golden_request("openai_to_gemini_sampling");
    golden_request("responses_to_openai_items");
    golden_request("responses_to_anthropic_tools");
    golden_request("responses_to_gemini_format");
    golden_request("responses_to_responses_decorate");
}


static ngx_int_t
translate(const char *json, ngx_uint_t from, ngx_uint_t to,
    const char *model, ngx_uint_t stream, ngx_str_t *body, ngx_str_t *err,
    ngx_http_ai_translate_request_t *req)
{
    memset(req, 0, sizeof(ngx_http_ai_translate_request_t));

    req->from = from;
    req->to = to;
    req->endpoint = (from == NGX_HTTP_AI_FMT_ANTHROPIC)
                    ? NGX_HTTP_AI_EP_MESSAGES : NGX_HTTP_AI_EP_CHAT;
    req->body.data = (u_char *) json;
    req->body.len = strlen(json);
    req->json = cJSON_Parse(json);
    req->model.data = (u_char *) model;
    req->model.len = strlen(model);
    req->max_tokens = NGX_HTTP_AI_UNSET;
    req->stream = stream;

    return checked_request(req, body, err);
}


/*
 * A request that goes to its own format as it is, or with only the usage
 * to ask for spliced in: no tree is built, so no pool of its own is made
 * for one (a malloc and a free a request saved)
 */

static void
test_request_same_no_pool(void **state)
{
    char                             *json;
    ngx_str_t                         body, err;
    ngx_pool_t                       *pool;
    ngx_uint_t                        created;
    ngx_http_ai_translate_request_t   req;

    pool = ngx_create_pool(1024, NULL);
    assert_non_null(pool);

    json = "{\"model\":\"gpt-4o\",\"stream\":true,\"messages\":[]}";

    memset(&req, 0, sizeof(req));
    req.from = NGX_HTTP_AI_FMT_OPENAI;
    req.to = NGX_HTTP_AI_FMT_OPENAI;
    req.endpoint = NGX_HTTP_AI_EP_CHAT;
    req.body.data = (u_char *) json;
    req.body.len = strlen(json);
    req.json = cJSON_Parse(json);
    ngx_str_set(&req.model, "gpt-4o");
    req.stream = 1;

    created = ngx_stub_pools_created;

    assert_int_equal(ngx_http_ai_translate_request(pool, &req, &body, &err),
                     NGX_OK);
    assert_ptr_equal(body.data, req.body.data);
    assert_int_equal(ngx_stub_pools_created, created);

    req.force_usage = 1;

    assert_int_equal(ngx_http_ai_translate_request(pool, &req, &body, &err),
                     NGX_OK);
    assert_json("spliced", body.data, body.len,
                "{\"model\":\"gpt-4o\",\"stream\":true,\"messages\":[],"
                "\"stream_options\":{\"include_usage\":true}}");
    assert_int_equal(ngx_stub_pools_created, created);

    /* another model: a tree, on a pool of its own */

    ngx_str_set(&req.model, "gpt-4o-mini");

    assert_int_equal(ngx_http_ai_translate_request(pool, &req, &body, &err),
                     NGX_OK);
    assert_int_equal(ngx_stub_pools_created, created + 1);

    cJSON_Delete(req.json);
    ngx_destroy_pool(pool);
}


static void
test_request_fast_path(void **state)
{
    const char                       *json;
    ngx_str_t                         body, err;
    ngx_http_ai_translate_request_t   req;

    json = "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\","
           "\"content\":\"hi\"}]}";

    assert_int_equal(translate(json, NGX_HTTP_AI_FMT_OPENAI,
                               NGX_HTTP_AI_FMT_OPENAI, "gpt-4o", 0, &body,
                               &err, &req),
                     NGX_OK);
    assert_ptr_equal(body.data, req.body.data);
    assert_int_equal(body.len, req.body.len);

    /* the json is not even needed */

    req.json = NULL;
    assert_int_equal(ngx_http_ai_translate_request(NULL, &req, &body, &err),
                     NGX_OK);
    assert_ptr_equal(body.data, req.body.data);

    json = "{\"model\":\"claude-x\",\"max_tokens\":5,\"stream\":true,"
           "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";

    assert_int_equal(translate(json, NGX_HTTP_AI_FMT_ANTHROPIC,
                               NGX_HTTP_AI_FMT_ANTHROPIC, "claude-x", 1,
                               &body, &err, &req),
                     NGX_OK);
    assert_ptr_equal(body.data, req.body.data);

    /* another model: a copy with the model replaced, nothing else */

    assert_int_equal(translate(json, NGX_HTTP_AI_FMT_ANTHROPIC,
                               NGX_HTTP_AI_FMT_ANTHROPIC, "claude-y", 1,
                               &body, &err, &req),
                     NGX_OK);
    assert_ptr_not_equal(body.data, req.body.data);
    assert_json("model", body.data, body.len,
                "{\"model\":\"claude-y\",\"max_tokens\":5,\"stream\":true,"
                "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");

    /* forced usage on a stream is a change */

    json = "{\"model\":\"gpt-4o\",\"stream\":true,\"messages\":[]}";

    memset(&req, 0, sizeof(req));
    req.from = NGX_HTTP_AI_FMT_OPENAI;
    req.to = NGX_HTTP_AI_FMT_OPENAI;
    req.endpoint = NGX_HTTP_AI_EP_CHAT;
    req.body.data = (u_char *) json;
    req.body.len = strlen(json);
    req.json = cJSON_Parse(json);
    ngx_str_set(&req.model, "gpt-4o");
    req.stream = 1;
    req.force_usage = 1;

    assert_int_equal(ngx_http_ai_translate_request(NULL, &req, &body, &err),
                     NGX_OK);
    assert_json("force_usage", body.data, body.len,
                "{\"model\":\"gpt-4o\",\"stream\":true,\"messages\":[],"
                "\"stream_options\":{\"include_usage\":true}}");

    /* spliced into the client's bytes: spaces after the object kept */

    json = "{\"model\":\"gpt-4o\",\"stream\":true,\"messages\":[]} \n";
    req.body.data = (u_char *) json;
    req.body.len = strlen(json);
    cJSON_Delete(req.json);
    req.json = cJSON_Parse(json);

    assert_int_equal(ngx_http_ai_translate_request(NULL, &req, &body, &err),
                     NGX_OK);
    assert_int_equal(body.len, req.body.len + sizeof(",\"stream_options\":"
                                                    "{\"include_usage\":true}")
                               - 1);
    assert_memory_equal(body.data + body.len - 3, "} \n", 3);
    assert_json("force_usage spliced", body.data, body.len,
                "{\"model\":\"gpt-4o\",\"stream\":true,\"messages\":[],"
                "\"stream_options\":{\"include_usage\":true}}");

    /* a client's include_usage false is replaced, by the tree */

    json = "{\"model\":\"gpt-4o\",\"stream\":true,\"stream_options\":"
           "{\"include_usage\":false},\"messages\":[]}";
    req.body.data = (u_char *) json;
    req.body.len = strlen(json);
    cJSON_Delete(req.json);
    req.json = cJSON_Parse(json);

    assert_int_equal(ngx_http_ai_translate_request(NULL, &req, &body, &err),
                     NGX_OK);
    assert_json("force_usage over false", body.data, body.len,
                "{\"model\":\"gpt-4o\",\"stream\":true,\"stream_options\":"
                "{\"include_usage\":true},\"messages\":[]}");
    cJSON_Delete(req.json);
}


static void
test_request_embeddings(void **state)
{
    const char                       *json;
    ngx_str_t                         body, err;
    ngx_http_ai_translate_request_t   req;

    json = "{\"model\":\"emb\",\"input\":[\"a\",\"b\"],\"dimensions\":8}";

    memset(&req, 0, sizeof(req));
    req.from = NGX_HTTP_AI_FMT_OPENAI;
    req.to = NGX_HTTP_AI_FMT_OPENAI;
    req.endpoint = NGX_HTTP_AI_EP_EMBEDDINGS;
    req.body.data = (u_char *) json;
    req.body.len = strlen(json);
    req.json = cJSON_Parse(json);
    ngx_str_set(&req.model, "emb");

    assert_int_equal(ngx_http_ai_translate_request(NULL, &req, &body, &err),
                     NGX_OK);
    assert_ptr_equal(body.data, req.body.data);

    ngx_str_set(&req.model, "text-embedding-3-small");
    assert_int_equal(ngx_http_ai_translate_request(NULL, &req, &body, &err),
                     NGX_OK);
    assert_json("embeddings", body.data, body.len,
                "{\"model\":\"text-embedding-3-small\","
                "\"input\":[\"a\",\"b\"],\"dimensions\":8}");

    req.to = NGX_HTTP_AI_FMT_ANTHROPIC;
    assert_int_equal(ngx_http_ai_translate_request(NULL, &req, &body, &err),
                     NGX_DECLINED);
    assert_true(err.len == strlen("embeddings are not supported by "
                                  "anthropic targets")
                && memcmp(err.data, "embeddings are not supported by "
                          "anthropic targets", err.len) == 0);

    req.to = NGX_HTTP_AI_FMT_GEMINI;
    assert_int_equal(ngx_http_ai_translate_request(NULL, &req, &body, &err),
                     NGX_DECLINED);
    assert_non_null(ngx_strnstr(err.data, "gemini", err.len));
}


static void
expect_declined(const char *json, ngx_uint_t from, ngx_uint_t to,
    const char *needle)
{
    ngx_str_t                         body, err;
    ngx_http_ai_translate_request_t   req;

    if (translate(json, from, to, "m", 0, &body, &err, &req)
        != NGX_DECLINED)
    {
        fail_msg("not declined: %s", json);
    }

    if (ngx_strnstr(err.data, (char *) needle, err.len) == NULL) {
        fail_msg("error \"%.*s\" lacks \"%s\"", (int) err.len, err.data,
                 needle);
    }
}


static void
test_request_refused(void **state)
{
    expect_declined("{\"model\":\"x\",\"max_tokens\":5,\"messages\":["
                    "{\"role\":\"user\",\"content\":[{\"type\":\"image\","
                    "\"source\":{\"type\":\"file\",\"file_id\":\"f\"}}]}]}",
                    NGX_HTTP_AI_FMT_ANTHROPIC, NGX_HTTP_AI_FMT_OPENAI,
                    "image sources of type \"file\"");

    expect_declined("{\"model\":\"x\",\"max_tokens\":5,\"messages\":[],"
                    "\"tools\":[{\"type\":\"web_search_20250305\","
                    "\"name\":\"web_search\"}]}",
                    NGX_HTTP_AI_FMT_ANTHROPIC, NGX_HTTP_AI_FMT_GEMINI,
                    "web_search_20250305");

    expect_declined("{\"model\":\"x\",\"n\":2,\"messages\":[]}",
                    NGX_HTTP_AI_FMT_OPENAI, NGX_HTTP_AI_FMT_ANTHROPIC,
                    "n > 1");

    /* no silent drops: what a target has no equivalent for, named */

    expect_declined("{\"model\":\"x\",\"seed\":7,\"messages\":[]}",
                    NGX_HTTP_AI_FMT_OPENAI, NGX_HTTP_AI_FMT_ANTHROPIC,
                    "\"seed\" is not supported by anthropic targets");

    expect_declined("{\"model\":\"x\",\"logprobs\":true,\"messages\":[]}",
                    NGX_HTTP_AI_FMT_OPENAI, NGX_HTTP_AI_FMT_GEMINI,
                    "\"logprobs\" is not supported by gemini targets");

    expect_declined("{\"model\":\"x\",\"top_logprobs\":2,\"messages\":[]}",
                    NGX_HTTP_AI_FMT_OPENAI, NGX_HTTP_AI_FMT_ANTHROPIC,
                    "\"top_logprobs\" is not supported by anthropic");

    expect_declined("{\"model\":\"x\",\"frequency_penalty\":0.5,"
                    "\"messages\":[]}",
                    NGX_HTTP_AI_FMT_OPENAI, NGX_HTTP_AI_FMT_ANTHROPIC,
                    "\"frequency_penalty\" is not supported by anthropic");

    expect_declined("{\"model\":\"x\",\"logit_bias\":{\"1\":5},"
                    "\"messages\":[]}",
                    NGX_HTTP_AI_FMT_OPENAI, NGX_HTTP_AI_FMT_GEMINI,
                    "\"logit_bias\" is not supported by gemini targets");

    expect_declined("{\"model\":\"x\",\"metadata\":{\"k\":\"v\"},"
                    "\"messages\":[]}",
                    NGX_HTTP_AI_FMT_OPENAI, NGX_HTTP_AI_FMT_ANTHROPIC,
                    "\"metadata\" is not supported by anthropic targets");

    expect_declined("{\"model\":\"x\",\"parallel_tool_calls\":false,"
                    "\"messages\":[]}",
                    NGX_HTTP_AI_FMT_OPENAI, NGX_HTTP_AI_FMT_GEMINI,
                    "\"parallel_tool_calls\" is not supported by gemini");

    expect_declined("{\"model\":\"x\",\"max_tokens\":5,\"top_k\":5,"
                    "\"messages\":[]}",
                    NGX_HTTP_AI_FMT_ANTHROPIC, NGX_HTTP_AI_FMT_OPENAI,
                    "\"top_k\" is not supported by openai targets");

    expect_declined("{\"model\":\"x\",\"response_format\":{\"type\":"
                    "\"json_object\"},\"tools\":[{\"type\":\"function\","
                    "\"function\":{\"name\":\"f\"}}],\"messages\":[]}",
                    NGX_HTTP_AI_FMT_OPENAI, NGX_HTTP_AI_FMT_ANTHROPIC,
                    "\"response_format\" with \"tools\"");

    expect_declined("{\"model\":\"x\",\"response_format\":{\"type\":"
                    "\"json_object\"},\"reasoning_effort\":\"low\","
                    "\"messages\":[]}",
                    NGX_HTTP_AI_FMT_OPENAI, NGX_HTTP_AI_FMT_ANTHROPIC,
                    "\"response_format\" with reasoning");

    expect_declined("{\"model\":\"x\",\"messages\":[{\"role\":\"tool\","
                    "\"tool_call_id\":\"nope\",\"content\":\"x\"}]}",
                    NGX_HTTP_AI_FMT_OPENAI, NGX_HTTP_AI_FMT_GEMINI,
                    "answers no earlier tool call");

    expect_declined("{\"model\":\"x\",\"messages\":[{\"role\":\"user\","
                    "\"content\":[{\"type\":\"image_url\",\"image_url\":"
                    "{\"url\":\"data:image/png,rawbytes\"}}]}]}",
                    NGX_HTTP_AI_FMT_OPENAI, NGX_HTTP_AI_FMT_ANTHROPIC,
                    "base64");

    expect_declined("{\"model\":\"x\",\"messages\":[{\"role\":\"user\","
                    "\"content\":[{\"type\":\"input_audio\",\"input_audio\":"
                    "{\"data\":\"AA==\",\"format\":\"wav\"}}]}]}",
                    NGX_HTTP_AI_FMT_OPENAI, NGX_HTTP_AI_FMT_ANTHROPIC,
                    "input_audio");

    expect_declined("{\"model\":\"x\",\"messages\":[],\"tools\":[{\"type\":"
                    "\"custom\",\"custom\":{\"name\":\"x\"}}]}",
                    NGX_HTTP_AI_FMT_OPENAI, NGX_HTTP_AI_FMT_GEMINI,
                    "tools of type \"custom\"");

    expect_declined("{\"model\":\"x\",\"max_tokens\":5,\"messages\":["
                    "{\"role\":\"user\",\"content\":[{\"type\":\"image\","
                    "\"source\":{\"type\":\"url\"}}]}]}",
                    NGX_HTTP_AI_FMT_ANTHROPIC, NGX_HTTP_AI_FMT_GEMINI,
                    "has no \"url\"");

    expect_declined("{\"model\":\"x\",\"messages\":{}}",
                    NGX_HTTP_AI_FMT_OPENAI, NGX_HTTP_AI_FMT_ANTHROPIC,
                    "messages");
}


/*
 * OpenAI -> Anthropic -> OpenAI keeps the conversation: messages (text,
 * images, tool calls, tool results), tools and tool_choice.
 */

static void
test_request_round_trip(void **state)
{
    char                             *json, *back;
    cJSON                            *orig, *res, *m, *msg;
    ngx_str_t                         body, err, body2;
    ngx_http_ai_translate_request_t   req;

    json = "{\"model\":\"m\",\"messages\":["
           "{\"role\":\"system\",\"content\":\"Be nice.\"},"
           "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hi"
           "\"},{\"type\":\"image_url\",\"image_url\":{\"url\":"
           "\"data:image/gif;base64,R0lGOD\"}}]},"
           "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":"
           "\"call_9\",\"type\":\"function\",\"function\":{\"name\":\"f\","
           "\"arguments\":\"{\\\"a\\\":1}\"}}]},"
           "{\"role\":\"tool\",\"tool_call_id\":\"call_9\",\"content\":\"ok\"},"
           "{\"role\":\"assistant\",\"content\":\"done\"}],"
           "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\","
           "\"description\":\"d\",\"parameters\":{\"type\":\"object\","
           "\"properties\":{\"a\":{\"type\":\"integer\"}}}}}],"
           "\"tool_choice\":\"required\"}";

    assert_int_equal(translate(json, NGX_HTTP_AI_FMT_OPENAI,
                               NGX_HTTP_AI_FMT_ANTHROPIC, "claude", 0,
                               &body, &err, &req),
                     NGX_OK);

    back = malloc(body.len + 1);
    memcpy(back, body.data, body.len);
    back[body.len] = '\0';

    assert_int_equal(translate(back, NGX_HTTP_AI_FMT_ANTHROPIC,
                               NGX_HTTP_AI_FMT_OPENAI, "m", 0, &body2, &err,
                               &req),
                     NGX_OK);

    orig = cJSON_Parse(json);
    res = cJSON_ParseWithLength((char *) body2.data, body2.len);
    assert_non_null(res);

    /* OpenAI's null content of a tool call turn comes back as null */

    assert_true(cJSON_Compare(cJSON_GetObjectItem(orig, "tools"),
                              cJSON_GetObjectItem(res, "tools"), 1));
    assert_true(cJSON_Compare(cJSON_GetObjectItem(orig, "tool_choice"),
                              cJSON_GetObjectItem(res, "tool_choice"), 1));

    m = cJSON_GetObjectItem(res, "messages");
    assert_int_equal(cJSON_GetArraySize(m), 5);

    msg = cJSON_GetArrayItem(m, 0);
    assert_string_equal(cJSON_GetObjectItem(msg, "role")->valuestring,
                        "system");
    assert_string_equal(cJSON_GetObjectItem(msg, "content")->valuestring,
                        "Be nice.");

    assert_true(cJSON_Compare(cJSON_GetArrayItem(
                                  cJSON_GetObjectItem(orig, "messages"), 1),
                              cJSON_GetArrayItem(m, 1), 1));
    assert_true(cJSON_Compare(cJSON_GetArrayItem(
                                  cJSON_GetObjectItem(orig, "messages"), 2),
                              cJSON_GetArrayItem(m, 2), 1));
    assert_true(cJSON_Compare(cJSON_GetArrayItem(
                                  cJSON_GetObjectItem(orig, "messages"), 3),
                              cJSON_GetArrayItem(m, 3), 1));
    assert_true(cJSON_Compare(cJSON_GetArrayItem(
                                  cJSON_GetObjectItem(orig, "messages"), 4),
                              cJSON_GetArrayItem(m, 4), 1));

    cJSON_Delete(orig);
    cJSON_Delete(res);
    free(back);
}


/* tests: responses */

static void
test_response_golden(void **state)
{
    golden_response("anthropic", "text", "openai");
    golden_response("anthropic", "tools", "openai");
    golden_response("gemini", "text", "openai");
    golden_response("gemini", "tools", "openai");
    golden_response("gemini", "text", "anthropic");
    golden_response("gemini", "tools", "anthropic");
    golden_response("openai", "text", "anthropic");
    golden_response("openai", "tools", "anthropic");
    golden_response("anthropic", "cache", "openai");
    golden_response("gemini", "thoughts", "openai");
    golden_response("gemini", "blocked", "openai");
    golden_response("openai", "cache", "anthropic");
    golden_response("anthropic", "thinking", "openai");
    golden_response("gemini", "thinking", "openai");
    golden_response("gemini", "thinking", "anthropic");
    golden_response("openai", "reasoning", "anthropic");
    golden_response("anthropic", "json", "openai");
    golden_response("openai", "text", "responses");
    golden_response("openai", "tools", "responses");
    golden_response("anthropic", "tools", "responses");
    golden_response("gemini", "text", "responses");
    golden_response("responses", "text", "openai");
    golden_response("responses", "tools", "openai");
}


static void
test_response_same_and_bad(void **state)
{
    ngx_str_t  in, out, err, model;

    ngx_str_set(&model, "m");
    ngx_str_set(&in, "{\"id\":\"x\"}");

    assert_int_equal(ngx_http_ai_translate_response(NULL,
                         NGX_HTTP_AI_FMT_OPENAI, NGX_HTTP_AI_FMT_OPENAI,
                         &model, &in, &out, &err),
                     NGX_OK);
    assert_ptr_equal(out.data, in.data);

    ngx_str_set(&in, "{\"candidates\":");
    assert_int_equal(ngx_http_ai_translate_response(NULL,
                         NGX_HTTP_AI_FMT_GEMINI, NGX_HTTP_AI_FMT_OPENAI,
                         &model, &in, &out, &err),
                     NGX_DECLINED);
    assert_non_null(ngx_strnstr(err.data, "not a JSON object", err.len));

    ngx_str_set(&in, "{\"type\":\"message\"}");
    assert_int_equal(ngx_http_ai_translate_response(NULL,
                         NGX_HTTP_AI_FMT_ANTHROPIC, NGX_HTTP_AI_FMT_OPENAI,
                         &model, &in, &out, &err),
                     NGX_DECLINED);

    ngx_str_set(&in, "{\"choices\":[]}");
    assert_int_equal(ngx_http_ai_translate_response(NULL,
                         NGX_HTTP_AI_FMT_OPENAI, NGX_HTTP_AI_FMT_ANTHROPIC,
                         &model, &in, &out, &err),
                     NGX_DECLINED);
}


/* tests: errors */

/* door, target: the client's format, the provider's */

static void
error_case(ngx_uint_t door, ngx_uint_t target, ngx_uint_t status,
    const char *in, const char *expected)
{
    long       before;
    ngx_str_t  body, out;

    body.data = (u_char *) in;
    body.len = strlen(in);

    before = live;
    assert_int_equal(ngx_http_ai_translate_error(NULL, target, door, status,
                                                 &body, &out),
                     NGX_OK);
    assert_int_equal(live, before);
    assert_json(in, out.data, out.len, expected);
}


static void
test_errors(void **state)
{
    char  *a, *g, *o;

    a = read_golden("error_anthropic_529.json", NULL);
    g = read_golden("error_gemini_429.json", NULL);
    o = read_golden("error_openai_401.json", NULL);

    error_case(NGX_HTTP_AI_FMT_OPENAI, NGX_HTTP_AI_FMT_ANTHROPIC, 529, a,
               "{\"error\":{\"message\":\"Overloaded (mock).\","
               "\"type\":\"overloaded_error\",\"param\":null,"
               "\"code\":null}}");

    error_case(NGX_HTTP_AI_FMT_OPENAI, NGX_HTTP_AI_FMT_GEMINI, 429, g,
               "{\"error\":{\"message\":\"Rate limit reached for requests "
               "(mock). Please try again later.\",\"type\":"
               "\"rate_limit_error\",\"param\":null,\"code\":null}}");

    error_case(NGX_HTTP_AI_FMT_ANTHROPIC, NGX_HTTP_AI_FMT_GEMINI, 429, g,
               "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\","
               "\"message\":\"Rate limit reached for requests (mock). "
               "Please try again later.\"}}");

    error_case(NGX_HTTP_AI_FMT_ANTHROPIC, NGX_HTTP_AI_FMT_OPENAI, 401, o,
               "{\"type\":\"error\",\"error\":{\"type\":"
               "\"authentication_error\",\"message\":\"Incorrect API key "
               "provided (mock).\"}}");

    /* the door's own shape passes as it is */

    error_case(NGX_HTTP_AI_FMT_OPENAI, NGX_HTTP_AI_FMT_OPENAI, 401, o, o);
    error_case(NGX_HTTP_AI_FMT_ANTHROPIC, NGX_HTTP_AI_FMT_ANTHROPIC, 529, a,
               a);

    /* not JSON, or no message: a generic one with the status' type */

    error_case(NGX_HTTP_AI_FMT_OPENAI, NGX_HTTP_AI_FMT_GEMINI, 503,
               "<html>Service Unavailable</html>",
               "{\"error\":{\"message\":\"the gemini upstream answered 503\","
               "\"type\":\"api_error\",\"param\":null,\"code\":null}}");

    error_case(NGX_HTTP_AI_FMT_ANTHROPIC, NGX_HTTP_AI_FMT_OPENAI, 404,
               "{\"detail\":\"x\"}",
               "{\"type\":\"error\",\"error\":{\"type\":\"not_found_error\","
               "\"message\":\"the openai upstream answered 404\"}}");

    error_case(NGX_HTTP_AI_FMT_OPENAI, NGX_HTTP_AI_FMT_ANTHROPIC, 403,
               "{\"error\":\"forbidden here\"}",
               "{\"error\":{\"message\":\"forbidden here\",\"type\":"
               "\"permission_error\",\"param\":null,\"code\":null}}");

    error_case(NGX_HTTP_AI_FMT_OPENAI, NGX_HTTP_AI_FMT_ANTHROPIC, 400,
               "{\"type\":\"error\",\"error\":{\"type\":"
               "\"invalid_request_error\",\"message\":\"max_tokens: Field "
               "required\"}}",
               "{\"error\":{\"message\":\"max_tokens: Field required\","
               "\"type\":\"invalid_request_error\",\"param\":null,"
               "\"code\":null}}");

    /* a line of text is the message (the gateway's own, for a 502) */

    error_case(NGX_HTTP_AI_FMT_ANTHROPIC, NGX_HTTP_AI_FMT_OPENAI, 502,
               "the upstream provider sent an answer that cannot be "
               "translated\n",
               "{\"type\":\"error\",\"error\":{\"type\":\"api_error\","
               "\"message\":\"the upstream provider sent an answer that "
               "cannot be translated\"}}");

    error_case(NGX_HTTP_AI_FMT_OPENAI, NGX_HTTP_AI_FMT_ANTHROPIC, 500, "",
               "{\"error\":{\"message\":\"the anthropic upstream answered "
               "500\",\"type\":\"api_error\",\"param\":null,\"code\":null}}");
}


static void
test_finish_reason(void **state)
{
    ngx_str_t   r, *res;
    ngx_uint_t  i;

    /* the door's reason (out) for the target's (in) */

    static struct {
        ngx_uint_t   door, target;
        const char  *in, *out;
    } cases[] = {
        { NGX_HTTP_AI_FMT_OPENAI, NGX_HTTP_AI_FMT_ANTHROPIC, "end_turn",
          "stop" },
        { NGX_HTTP_AI_FMT_OPENAI, NGX_HTTP_AI_FMT_ANTHROPIC, "stop_sequence",
          "stop" },
        { NGX_HTTP_AI_FMT_OPENAI, NGX_HTTP_AI_FMT_ANTHROPIC, "max_tokens",
          "length" },
        { NGX_HTTP_AI_FMT_OPENAI, NGX_HTTP_AI_FMT_ANTHROPIC, "tool_use",
          "tool_calls" },
        { NGX_HTTP_AI_FMT_OPENAI, NGX_HTTP_AI_FMT_ANTHROPIC, "refusal",
          "content_filter" },
        { NGX_HTTP_AI_FMT_OPENAI, NGX_HTTP_AI_FMT_GEMINI, "STOP", "stop" },
        { NGX_HTTP_AI_FMT_OPENAI, NGX_HTTP_AI_FMT_GEMINI, "MAX_TOKENS",
          "length" },
        { NGX_HTTP_AI_FMT_OPENAI, NGX_HTTP_AI_FMT_GEMINI, "SAFETY",
          "content_filter" },
        { NGX_HTTP_AI_FMT_OPENAI, NGX_HTTP_AI_FMT_GEMINI, "RECITATION",
          "content_filter" },
        { NGX_HTTP_AI_FMT_OPENAI, NGX_HTTP_AI_FMT_GEMINI, "BLOCKLIST",
          "content_filter" },
        { NGX_HTTP_AI_FMT_OPENAI, NGX_HTTP_AI_FMT_GEMINI,
          "PROHIBITED_CONTENT", "content_filter" },
        { NGX_HTTP_AI_FMT_OPENAI, NGX_HTTP_AI_FMT_GEMINI, "SPII",
          "content_filter" },
        { NGX_HTTP_AI_FMT_OPENAI, NGX_HTTP_AI_FMT_GEMINI, "OTHER", "stop" },
        { NGX_HTTP_AI_FMT_ANTHROPIC, NGX_HTTP_AI_FMT_OPENAI, "stop",
          "end_turn" },
        { NGX_HTTP_AI_FMT_ANTHROPIC, NGX_HTTP_AI_FMT_OPENAI, "length",
          "max_tokens" },
        { NGX_HTTP_AI_FMT_ANTHROPIC, NGX_HTTP_AI_FMT_OPENAI, "tool_calls",
          "tool_use" },
        { NGX_HTTP_AI_FMT_ANTHROPIC, NGX_HTTP_AI_FMT_OPENAI,
          "content_filter", "refusal" },
        { NGX_HTTP_AI_FMT_ANTHROPIC, NGX_HTTP_AI_FMT_GEMINI, "MAX_TOKENS",
          "max_tokens" },
        { NGX_HTTP_AI_FMT_ANTHROPIC, NGX_HTTP_AI_FMT_GEMINI, "SAFETY",
          "refusal" },
        { NGX_HTTP_AI_FMT_ANTHROPIC, NGX_HTTP_AI_FMT_GEMINI, "STOP",
          "end_turn" },
        { NGX_HTTP_AI_FMT_GEMINI, NGX_HTTP_AI_FMT_OPENAI, "length",
          "MAX_TOKENS" },
        { NGX_HTTP_AI_FMT_GEMINI, NGX_HTTP_AI_FMT_ANTHROPIC, "end_turn",
          "STOP" },
        { NGX_HTTP_AI_FMT_ANTHROPIC, NGX_HTTP_AI_FMT_ANTHROPIC, "pause_turn",
          "pause_turn" },
        { NGX_HTTP_AI_FMT_OPENAI, NGX_HTTP_AI_FMT_OPENAI, "length",
          "length" },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        r.data = (u_char *) cases[i].in;
        r.len = strlen(cases[i].in);

        res = ngx_http_ai_finish_reason(cases[i].target, cases[i].door,
                                        &r);
        assert_non_null(res);

        if (res->len != strlen(cases[i].out)
            || memcmp(res->data, cases[i].out, res->len) != 0)
        {
            fail_msg("%s -> \"%.*s\", expected %s", cases[i].in,
                     (int) res->len, res->data, cases[i].out);
        }
    }

    assert_null(ngx_http_ai_finish_reason(NGX_HTTP_AI_FMT_ANTHROPIC,
                                          NGX_HTTP_AI_FMT_OPENAI, NULL));
    assert_null(ngx_http_ai_finish_reason(NGX_HTTP_AI_FMT_ANTHROPIC,
                                          NGX_HTTP_AI_FMT_OPENAI, &empty));
}


/* tests: streams */

static void
test_stream_golden(void **state)
{
    golden_stream("anthropic", "text", "openai", 1);
    golden_stream("anthropic", "tools", "openai", 1);
    golden_stream("anthropic", "tools", "openai", 0);
    golden_stream("anthropic", "garbage", "openai", 0);
    golden_stream("gemini", "text", "openai", 1);
    golden_stream("gemini", "tools", "openai", 0);
    golden_stream("gemini", "text", "anthropic", 0);
    golden_stream("gemini", "tools", "anthropic", 0);
    golden_stream("openai", "text", "anthropic", 0);
    golden_stream("openai", "tools", "anthropic", 0);
    golden_stream("openai", "text", "openai", 0);
    golden_stream("openai", "tools", "openai", 1);
    golden_stream("gemini", "garbage", "openai", 1);
    golden_stream("anthropic", "tools", "anthropic", 0);
    golden_stream("anthropic", "thinking", "openai", 1);
    golden_stream("gemini", "thinking", "openai", 0);
    golden_stream("gemini", "thinking", "anthropic", 0);
    golden_stream("openai", "reasoning", "anthropic", 0);
    golden_stream("openai", "edges", "anthropic", 0);
    golden_stream("anthropic", "edges", "openai", 1);
    golden_stream("openai", "escapes", "anthropic", 0);
    golden_stream("anthropic", "escapes", "openai", 1);
    golden_stream("openai", "shapes", "anthropic", 0);
    golden_stream("anthropic", "shapes", "openai", 1);
    golden_stream("anthropic", "json", "openai", 0);
    golden_stream("anthropic", "text", "responses", 0);
    golden_stream("anthropic", "tools", "responses", 0);
    golden_stream("gemini", "text", "responses", 0);
    golden_stream("gemini", "tools", "responses", 0);
    golden_stream("openai", "text", "responses", 0);
    golden_stream("openai", "tools", "responses", 0);
    golden_stream("responses", "text", "openai", 1);
    golden_stream("responses", "tools", "openai", 0);
    golden_stream("responses", "text", "responses", 0);
}


/* tool call arguments in many pieces, both ways, come out whole */

static void
test_stream_fragments(void **state)
{
    ngx_str_t              model;
    ngx_uint_t             i;
    sse_events_t           evs;
    buf_t                  b, args, out, text;
    ngx_http_ai_stream_t  *st;
    cJSON                 *json, *tc, *d;
    ngx_str_t              s;

    static const char  *whole =
        "{\"location\": \"Paris, \\\"FR\\\"\",\"n\":[1,2]}";

    static const char *frags[] = {
        "", "{\"loc", "ation\":", " \"Par", "is, \\\"FR\\\"\"", ",\"n\":",
        "[1,", "2]}"
    };

    ngx_str_set(&model, "m");

    /* Anthropic input_json_delta pieces -> OpenAI arguments */

    st = ngx_http_ai_stream_create(NULL, NGX_HTTP_AI_FMT_ANTHROPIC,
                                   NGX_HTTP_AI_FMT_OPENAI, &model, 0);
    memset(&b, 0, sizeof(b));

    assert_int_equal(feed(st, "message_start", "{\"type\":\"message_start\","
                          "\"message\":{\"id\":\"msg_1\",\"usage\":"
                          "{\"input_tokens\":3,\"output_tokens\":1}}}", &b),
                     NGX_OK);
    assert_int_equal(feed(st, "content_block_start",
                          "{\"type\":\"content_block_start\",\"index\":0,"
                          "\"content_block\":{\"type\":\"text\","
                          "\"text\":\"\"}}", &b), NGX_OK);
    assert_int_equal(feed(st, "content_block_delta",
                          "{\"type\":\"content_block_delta\",\"index\":0,"
                          "\"delta\":{\"type\":\"text_delta\","
                          "\"text\":\"Sure.\"}}", &b), NGX_OK);
    assert_int_equal(feed(st, "content_block_stop",
                          "{\"type\":\"content_block_stop\",\"index\":0}", &b),
                     NGX_OK);
    assert_int_equal(feed(st, "content_block_start",
                          "{\"type\":\"content_block_start\",\"index\":1,"
                          "\"content_block\":{\"type\":\"tool_use\","
                          "\"id\":\"toolu_9\",\"name\":\"f\",\"input\":{}}}",
                          &b), NGX_OK);

    for (i = 0; i < sizeof(frags) / sizeof(frags[0]); i++) {
        char  ev[256];

        json = cJSON_CreateObject();
        cJSON_AddStringToObject(json, "type", "content_block_delta");
        cJSON_AddNumberToObject(json, "index", 1);
        d = cJSON_AddObjectToObject(json, "delta");
        cJSON_AddStringToObject(d, "type", "input_json_delta");
        cJSON_AddStringToObject(d, "partial_json", frags[i]);
        assert_true(cJSON_PrintPreallocated(json, ev, sizeof(ev), 0));
        cJSON_Delete(json);

        assert_int_equal(feed(st, "content_block_delta", ev, &b), NGX_OK);
    }

    assert_int_equal(feed(st, "content_block_stop",
                          "{\"type\":\"content_block_stop\",\"index\":1}", &b),
                     NGX_OK);
    assert_int_equal(feed(st, "message_delta", "{\"type\":\"message_delta\","
                          "\"delta\":{\"stop_reason\":\"tool_use\"},"
                          "\"usage\":{\"output_tokens\":9}}", &b), NGX_OK);
    assert_int_equal(feed(st, "message_stop", "{\"type\":\"message_stop\"}",
                          &b), NGX_OK);

    sse_parse(b.data, b.len, &evs);

    memset(&args, 0, sizeof(args));
    memset(&text, 0, sizeof(text));

    for (i = 0; i + 1 < evs.n; i++) {
        json = cJSON_ParseWithLength((char *) evs.ev[i].data.data,
                                     evs.ev[i].data.len);
        assert_non_null(json);

        d = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(json,
                                                                  "choices"),
                                                   0),
                                "delta");

        if (i == 0) {
            assert_string_equal(cJSON_GetObjectItem(d, "role")->valuestring,
                                "assistant");
        }

        if (cJSON_IsString(cJSON_GetObjectItem(d, "content"))) {
            s.data = (u_char *) cJSON_GetObjectItem(d, "content")->valuestring;
            s.len = strlen((char *) s.data);
            buf_add(&text, &s);
        }

        tc = cJSON_GetArrayItem(cJSON_GetObjectItem(d, "tool_calls"), 0);

        if (tc) {
            assert_int_equal(cJSON_GetObjectItem(tc, "index")->valueint, 0);
            s.data = (u_char *) cJSON_GetObjectItem(
                         cJSON_GetObjectItem(tc, "function"), "arguments")
                     ->valuestring;
            s.len = strlen((char *) s.data);
            buf_add(&args, &s);
        }

        cJSON_Delete(json);
    }

    assert_int_equal(evs.ev[evs.n - 1].data.len, 6);
    assert_memory_equal(evs.ev[evs.n - 1].data.data, "[DONE]", 6);

    assert_int_equal(text.len, 5);
    assert_memory_equal(text.data, "Sure.", 5);
    assert_int_equal(args.len, strlen(whole));
    assert_memory_equal(args.data, whole, args.len);

    /* OpenAI arguments pieces (two parallel calls) -> input_json_delta */

    st = ngx_http_ai_stream_create(NULL, NGX_HTTP_AI_FMT_OPENAI,
                                   NGX_HTTP_AI_FMT_ANTHROPIC, &model, 0);
    memset(&b, 0, sizeof(b));

    assert_int_equal(feed(st, "", "{\"id\":\"c1\",\"choices\":[{\"index\":0,"
                          "\"delta\":{\"role\":\"assistant\",\"content\":"
                          "\"Two calls\"}}]}", &b), NGX_OK);
    assert_int_equal(feed(st, "", "{\"id\":\"c1\",\"choices\":[{\"index\":0,"
                          "\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":"
                          "\"call_a\",\"type\":\"function\",\"function\":"
                          "{\"name\":\"f\",\"arguments\":\"\"}}]}}]}", &b),
                     NGX_OK);

    for (i = 0; i < sizeof(frags) / sizeof(frags[0]); i++) {
        char  ev[512];

        json = cJSON_Parse("{\"id\":\"c1\",\"choices\":[{\"index\":0,"
                           "\"delta\":{\"tool_calls\":[{\"index\":0,"
                           "\"function\":{}}]}}]}");
        d = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(
                cJSON_GetObjectItem(cJSON_GetArrayItem(
                    cJSON_GetObjectItem(json, "choices"), 0), "delta"),
                "tool_calls"), 0), "function");
        cJSON_AddStringToObject(d, "arguments", frags[i]);
        assert_true(cJSON_PrintPreallocated(json, ev, sizeof(ev), 0));
        cJSON_Delete(json);

        assert_int_equal(feed(st, "", ev, &b), NGX_OK);
    }

    assert_int_equal(feed(st, "", "{\"id\":\"c1\",\"choices\":[{\"index\":0,"
                          "\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":"
                          "\"call_b\",\"type\":\"function\",\"function\":"
                          "{\"name\":\"g\",\"arguments\":\"{}\"}}]}}]}", &b),
                     NGX_OK);
    assert_int_equal(feed(st, "", "{\"id\":\"c1\",\"choices\":[{\"index\":0,"
                          "\"delta\":{},\"finish_reason\":\"tool_calls\"}]}",
                          &b), NGX_OK);
    assert_int_equal(feed(st, "", "{\"id\":\"c1\",\"choices\":[],\"usage\":"
                          "{\"prompt_tokens\":10,\"completion_tokens\":20,"
                          "\"total_tokens\":30,\"prompt_tokens_details\":"
                          "{\"cached_tokens\":4}}}", &b), NGX_OK);
    assert_int_equal(feed(st, "", "[DONE]", &b), NGX_OK);

    /* after the end, nothing more */

    memset(&out, 0, sizeof(out));
    assert_int_equal(feed(st, "", "{\"id\":\"c1\",\"choices\":[{\"index\":0,"
                          "\"delta\":{\"content\":\"late\"}}]}", &out),
                     NGX_OK);
    assert_int_equal(out.len, 0);

    assert_int_equal(ngx_http_ai_stream_end(st, 1, &s), NGX_OK);
    assert_int_equal(s.len, 0);

    if (updating()) {
        write_sse("stream_openai_fragments.to_anthropic.expected.sse", &b);

    } else {
        assert_sse("openai fragments to anthropic", b.data, b.len,
                   read_golden("stream_openai_fragments.to_anthropic"
                               ".expected.sse", NULL));
    }
}


/* unknown events, comments, non-JSON data: skipped, whatever the pair */

static void
test_stream_garbage(void **state)
{
    ngx_uint_t             door, target;
    ngx_str_t              model, out;
    buf_t                  b;
    ngx_http_ai_stream_t  *st;

    ngx_str_set(&model, "m");

    for (door = 0; door < 2; door++) {
        for (target = 0; target < 3; target++) {
            st = ngx_http_ai_stream_create(NULL, target, door, &model, 1);
            assert_non_null(st);

            memset(&b, 0, sizeof(b));

            assert_int_equal(feed(st, "", "{not json", &b), NGX_OK);
            assert_int_equal(feed(st, "", "this line has no colon", &b),
                             NGX_OK);
            assert_int_equal(feed(st, "mystery", "{\"type\":\"mystery\"}",
                                  &b),
                             NGX_OK);
            assert_int_equal(feed(st, "", "[1,2]", &b), NGX_OK);
            assert_int_equal(feed(st, "ping", "{\"type\": \"ping\"}", &b),
                             NGX_OK);

            if (door == target) {
                /* passed: JSON that the door may know */
                continue;
            }

            if (target == NGX_HTTP_AI_FMT_OPENAI) {
                /* an Anthropic door: message_start only */
                assert_null(ngx_strnstr(b.data, "content_block", b.len));
                continue;
            }

            if (b.len) {
                /* the role chunk, at most */
                assert_non_null(ngx_strnstr(b.data, "\"role\"", b.len));
                assert_null(ngx_strnstr(b.data, "mystery", b.len));
            }

            assert_int_equal(ngx_http_ai_stream_end(st, 0, &out), NGX_OK);
            assert_non_null(ngx_strnstr(out.data, "event: error", out.len));
        }
    }

    /* no stream goes to a Gemini client but a Gemini one */

    st = ngx_http_ai_stream_create(NULL, NGX_HTTP_AI_FMT_OPENAI,
                                   NGX_HTTP_AI_FMT_GEMINI, &model, 1);
    assert_null(st);
}


/* a stream cut upstream ends with the door's error event */

static void
test_stream_truncated(void **state)
{
    buf_t                  b;
    ngx_str_t              out, model;
    sse_events_t           evs;
    ngx_http_ai_stream_t  *st;

    /* a whole stream that ends "incomplete": it ended, no error */

    run_stream("stream_anthropic_text.sse", NGX_HTTP_AI_FMT_OPENAI,
               NGX_HTTP_AI_FMT_ANTHROPIC, 1, 0, &b);

    sse_parse(b.data, b.len, &evs);
    assert_int_equal(evs.n, 8);
    assert_null(ngx_strnstr(b.data, "event: error", b.len));

    /* an Anthropic stream cut after a delta, to the OpenAI door */

    ngx_str_set(&model, "m");

    st = ngx_http_ai_stream_create(NULL, NGX_HTTP_AI_FMT_ANTHROPIC,
                                   NGX_HTTP_AI_FMT_OPENAI, &model, 1);
    memset(&b, 0, sizeof(b));

    feed(st, "message_start", "{\"type\":\"message_start\",\"message\":"
         "{\"id\":\"msg_1\",\"usage\":{\"input_tokens\":3}}}", &b);
    feed(st, "content_block_delta", "{\"type\":\"content_block_delta\","
         "\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"he\"}}",
         &b);

    assert_int_equal(ngx_http_ai_stream_end(st, 0, &out), NGX_OK);
    assert_sse("openai door truncated", out.data, out.len,
               "event: error\ndata: {\"error\":{\"message\":\"the upstream "
               "stream ended before it was complete\",\"type\":"
               "\"api_error\",\"param\":null,\"code\":"
               "\"stream_truncated\"}}\n\n");

    /* once only */

    assert_int_equal(ngx_http_ai_stream_end(st, 0, &out), NGX_OK);
    assert_int_equal(out.len, 0);

    /* the Anthropic door, from OpenAI */

    st = ngx_http_ai_stream_create(NULL, NGX_HTTP_AI_FMT_OPENAI,
                                   NGX_HTTP_AI_FMT_ANTHROPIC, &model, 0);
    memset(&b, 0, sizeof(b));

    feed(st, "", "{\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":"
         "{\"role\":\"assistant\",\"content\":\"he\"}}]}", &b);

    assert_non_null(ngx_strnstr(b.data, "event: message_start", b.len));
    assert_non_null(ngx_strnstr(b.data, "event: content_block_delta", b.len));

    assert_int_equal(ngx_http_ai_stream_end(st, 0, &out), NGX_OK);
    assert_sse("anthropic door truncated", out.data, out.len,
               "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":"
               "\"api_error\",\"message\":\"the upstream stream ended before "
               "it was complete\"}}\n\n");

    /* the same formats: passed through, and the error event at the end */

    st = ngx_http_ai_stream_create(NULL, NGX_HTTP_AI_FMT_OPENAI,
                                   NGX_HTTP_AI_FMT_OPENAI, &model, 0);
    memset(&b, 0, sizeof(b));
    feed(st, "", "{\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":"
         "{\"content\":\"he\"}}]}", &b);
    assert_sse("openai passthrough", b.data, b.len,
               "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":"
               "{\"content\":\"he\"}}]}\n\n");
    assert_int_equal(ngx_http_ai_stream_end(st, 0, &out), NGX_OK);
    assert_non_null(ngx_strnstr(out.data, "stream_truncated", out.len));

    /* a complete OpenAI stream without [DONE] gets one */

    st = ngx_http_ai_stream_create(NULL, NGX_HTTP_AI_FMT_OPENAI,
                                   NGX_HTTP_AI_FMT_OPENAI, &model, 0);
    assert_int_equal(ngx_http_ai_stream_end(st, 1, &out), NGX_OK);
    assert_sse("done", out.data, out.len, "data: [DONE]\n\n");
}


/* an upstream error event becomes the door's error event, and the end */

static void
test_stream_upstream_error(void **state)
{
    buf_t                  b;
    ngx_str_t              out, model;
    ngx_http_ai_stream_t  *st;

    ngx_str_set(&model, "m");

    st = ngx_http_ai_stream_create(NULL, NGX_HTTP_AI_FMT_ANTHROPIC,
                                   NGX_HTTP_AI_FMT_OPENAI, &model, 0);
    memset(&b, 0, sizeof(b));

    feed(st, "message_start", "{\"type\":\"message_start\",\"message\":"
         "{\"id\":\"msg_1\",\"usage\":{\"input_tokens\":3}}}", &b);
    feed(st, "error", "{\"type\":\"error\",\"error\":{\"type\":"
         "\"overloaded_error\",\"message\":\"Overloaded\"}}", &b);

    assert_sse("anthropic error to openai", b.data, b.len,
               "data: {\"id\":\"msg_1\",\"object\":\"chat.completion.chunk\","
               "\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":"
               "\"assistant\",\"content\":\"\"},\"logprobs\":null,"
               "\"finish_reason\":null}]}\n\n"
               "event: error\ndata: {\"error\":{\"message\":\"Overloaded\","
               "\"type\":\"overloaded_error\",\"param\":null,"
               "\"code\":null}}\n\n");

    assert_int_equal(ngx_http_ai_stream_end(st, 0, &out), NGX_OK);
    assert_int_equal(out.len, 0);

    /* an OpenAI error chunk to the Anthropic door */

    st = ngx_http_ai_stream_create(NULL, NGX_HTTP_AI_FMT_OPENAI,
                                   NGX_HTTP_AI_FMT_ANTHROPIC, &model, 0);
    memset(&b, 0, sizeof(b));

    feed(st, "", "{\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}}",
         &b);
    assert_sse("openai error to anthropic", b.data, b.len,
               "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":"
               "\"server_error\",\"message\":\"boom\"}}\n\n");

    /* passed through: the upstream's error event and no other */

    st = ngx_http_ai_stream_create(NULL, NGX_HTTP_AI_FMT_ANTHROPIC,
                                   NGX_HTTP_AI_FMT_ANTHROPIC, &model, 0);
    memset(&b, 0, sizeof(b));

    feed(st, "error", "{\"type\":\"error\",\"error\":{\"type\":"
         "\"overloaded_error\",\"message\":\"Overloaded\"}}", &b);
    assert_sse("anthropic error passed", b.data, b.len,
               "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":"
               "\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n");

    assert_int_equal(ngx_http_ai_stream_end(st, 0, &out), NGX_OK);
    assert_int_equal(out.len, 0);

    /* a Gemini error chunk to the OpenAI door */

    st = ngx_http_ai_stream_create(NULL, NGX_HTTP_AI_FMT_GEMINI,
                                   NGX_HTTP_AI_FMT_OPENAI, &model, 0);
    memset(&b, 0, sizeof(b));

    feed(st, "", "{\"error\":{\"code\":503,\"message\":\"busy\",\"status\":"
         "\"UNAVAILABLE\"}}", &b);
    assert_non_null(ngx_strnstr(b.data, "event: error", b.len));
    assert_non_null(ngx_strnstr(b.data, "busy", b.len));
}


/*
 * Robustness: every value of the golden inputs replaced in turn by a value
 * of another type (null, -1, 1e9, a string, [], {}); every translation
 * must end with NGX_OK or NGX_DECLINED, free its trees, and not crash.
 */

static cJSON *
nth_node(cJSON *node, ngx_uint_t *n, cJSON **parent)
{
    cJSON  *child, *found;

    cJSON_ArrayForEach(child, node) {
        if ((*n)-- == 0) {
            *parent = node;
            return child;
        }

        found = nth_node(child, n, parent);
        if (found) {
            return found;
        }
    }

    return NULL;
}


typedef void (*mutant_pt)(cJSON *json, void *data);


static void
mutate(cJSON *root, mutant_pt handler, void *data)
{
    cJSON       *copy, *node, *parent, *alt;
    ngx_uint_t   i, k, n;

    for (i = 0; /* void */ ; i++) {
        for (k = 0; k < 6; k++) {
            copy = cJSON_Duplicate(root, 1);

            n = i;
            node = nth_node(copy, &n, &parent);

            if (node == NULL) {
                cJSON_Delete(copy);
                return;
            }

            switch (k) {
            case 0:
                alt = cJSON_CreateNull();
                break;
            case 1:
                alt = cJSON_CreateNumber(-1);
                break;
            case 2:
                alt = cJSON_CreateString("x");
                break;
            case 3:
                alt = cJSON_CreateArray();
                break;
            case 4:
                alt = cJSON_CreateNumber(1e9);
                break;
            default:
                alt = cJSON_CreateObject();
            }

            if (cJSON_IsObject(parent)) {
                cJSON_ReplaceItemInObjectCaseSensitive(parent, node->string,
                                                       alt);

            } else {
                cJSON_ReplaceItemViaPointer(parent, node, alt);
            }

            handler(copy, data);

            cJSON_Delete(copy);
        }
    }
}


static void
mutant_request(cJSON *body, void *data)
{
    char                             *raw;
    long                              before;
    ngx_int_t                         rc;
    ngx_str_t                         out, err;
    ngx_uint_t                        to;
    ngx_http_ai_translate_request_t   req;

    raw = cJSON_PrintUnformatted(body);

    for (to = 0; to < 3; to++) {
        memset(&req, 0, sizeof(req));
        req.from = *(ngx_uint_t *) data;
        req.to = to;
        req.endpoint = (req.from == NGX_HTTP_AI_FMT_ANTHROPIC)
                       ? NGX_HTTP_AI_EP_MESSAGES : NGX_HTTP_AI_EP_CHAT;
        req.json = body;
        req.body.data = (u_char *) raw;
        req.body.len = strlen(raw);
        ngx_str_set(&req.model, "m");
        req.max_tokens = 100;
        req.stream = 1;

        before = live;
        rc = ngx_http_ai_translate_request(NULL, &req, &out, &err);

        if (live != before) {
            fail_msg("leak %ld (to %u) for %s", live - before, (unsigned) to,
                     raw + (strlen(raw) > 300 ? strlen(raw) - 300 : 0));
        }

        if (rc != NGX_OK && rc != NGX_DECLINED) {
            fail_msg("rc %d for %s", (int) rc, raw);
        }
    }

    cJSON_free(raw);
}


static void
mutant_response(cJSON *body, void *data)
{
    char        *raw;
    long         before;
    ngx_int_t    rc;
    ngx_str_t    in, out, err, model;
    ngx_uint_t   door;

    raw = cJSON_PrintUnformatted(body);
    in.data = (u_char *) raw;
    in.len = strlen(raw);
    ngx_str_set(&model, "m");

    for (door = 0; door < 2; door++) {
        before = live;
        rc = ngx_http_ai_translate_response(NULL, *(ngx_uint_t *) data, door,
                                            &model, &in, &out, &err);
        assert_int_equal(live, before);

        if (rc != NGX_OK && rc != NGX_DECLINED) {
            fail_msg("rc %d for %s", (int) rc, raw);
        }

        before = live;
        rc = ngx_http_ai_translate_error(NULL, *(ngx_uint_t *) data, door,
                                         500, &in, &out);
        assert_int_equal(live, before);
        assert_int_equal(rc, NGX_OK);
    }

    cJSON_free(raw);
}


typedef struct {
    ngx_http_ai_stream_t  *st;
    ngx_str_t              name;
} mutant_stream_t;


static void
mutant_event(cJSON *json, void *data)
{
    char             *raw;
    long              before;
    ngx_str_t         d, out;
    mutant_stream_t  *ms = data;

    raw = cJSON_PrintUnformatted(json);
    d.data = (u_char *) raw;
    d.len = strlen(raw);

    before = live;
    assert_int_equal(ngx_http_ai_stream_event(ms->st, &ms->name, &d, json,
                                              &out),
                     NGX_OK);
    assert_int_equal(live, before);

    cJSON_free(raw);
}


static void
test_mutants(void **state)
{
    char                  *in, name[256];
    long                   before;
    cJSON                 *c, *json;
    size_t                 len, k;
    u_char                *cut;
    ngx_str_t              model, d, out;
    ngx_uint_t             i, j, door, target;
    sse_events_t           evs;
    mutant_stream_t        ms;
    ngx_http_ai_stream_t  *fast;

    static const char *requests[] = {
        "openai_to_anthropic_tools", "openai_to_gemini_tools",
        "anthropic_to_openai_tools", "anthropic_to_gemini_tools"
    };

    static const char *responses[] = {
        "anthropic_tools", "gemini_tools", "openai_tools",
        "anthropic_cache", "gemini_thoughts", "openai_cache"
    };

    static const char *streams[] = {
        "anthropic_tools", "gemini_tools", "openai_tools"
    };

    for (i = 0; i < sizeof(requests) / sizeof(requests[0]); i++) {
        snprintf(name, sizeof(name), "request_%s.json", requests[i]);
        in = read_golden(name, NULL);
        c = cJSON_Parse(in);

        door = format(cJSON_GetObjectItem(c, "from")->valuestring);
        mutate(cJSON_GetObjectItem(c, "body"), mutant_request, &door);

        cJSON_Delete(c);
        free(in);
    }

    for (i = 0; i < sizeof(responses) / sizeof(responses[0]); i++) {
        snprintf(name, sizeof(name), "response_%s.json", responses[i]);
        in = read_golden(name, NULL);
        c = cJSON_Parse(in);

        target = format(responses[i]);

        if (strncmp(responses[i], "anthropic", 9) == 0) {
            target = NGX_HTTP_AI_FMT_ANTHROPIC;

        } else if (strncmp(responses[i], "gemini", 6) == 0) {
            target = NGX_HTTP_AI_FMT_GEMINI;
        }

        mutate(c, mutant_response, &target);

        cJSON_Delete(c);
        free(in);
    }

    /* each event of a stream mutated, in a stream that goes on */

    ngx_str_set(&model, "m");

    for (i = 0; i < sizeof(streams) / sizeof(streams[0]); i++) {
        snprintf(name, sizeof(name), "stream_%s.sse", streams[i]);
        in = read_golden(name, &len);
        sse_parse((u_char *) in, len, &evs);

        target = (i == 0) ? NGX_HTTP_AI_FMT_ANTHROPIC
                 : (i == 1) ? NGX_HTTP_AI_FMT_GEMINI : NGX_HTTP_AI_FMT_OPENAI;

        for (door = 0; door < 2; door++) {
            ms.st = ngx_http_ai_stream_create(NULL, target, door, &model, 1);
            assert_non_null(ms.st);

            for (j = 0; j < evs.n; j++) {
                json = cJSON_ParseWithLength((char *) evs.ev[j].data.data,
                                             evs.ev[j].data.len);
                if (json == NULL) {
                    continue;
                }

                ms.name = evs.ev[j].name;
                mutate(json, mutant_event, &ms);
                mutant_event(json, &ms);

                cJSON_Delete(json);
            }

            /*
             * every event cut at every length, in a buffer of that length
             * (a sanitizer sees any read past it), without a parsed JSON:
             * the fast path's scanner on what a provider may send
             */

            fast = ngx_http_ai_stream_create(NULL, target, door, &model, 1);
            assert_non_null(fast);

            for (j = 0; j < evs.n; j++) {
                for (k = 0; k <= evs.ev[j].data.len; k++) {
                    cut = malloc(k ? k : 1);
                    assert_non_null(cut);
                    memcpy(cut, evs.ev[j].data.data, k);

                    d.data = cut;
                    d.len = k;

                    before = live;
                    assert_int_equal(ngx_http_ai_stream_event(fast,
                                                  &evs.ev[j].name, &d,
                                                  NULL, &out),
                                     NGX_OK);
                    assert_int_equal(live, before);

                    free(cut);
                }
            }
        }

        free(in);
    }
}


/*
 * OpenAI to OpenAI without a parsed event (what ai_proxy passes): content
 * goes through as it is, the usage-only chunk the client did not ask for
 * is dropped, an error is seen, garbage is not the client's.
 */

static void
test_openai_pass_unparsed(void **state)
{
    ngx_str_t              model, n, d, out;
    ngx_http_ai_stream_t  *st;

    static const char     *evs[][2] = {
        { "{\"choices\":[{\"delta\":{\"content\":\"say \\\"error\\\"\"}}]}",
          "pass" },
        { "{not json", "drop" },
        { "{\"choices\":[],\"usage\":{\"prompt_tokens\":1}}", "drop" },
        { "{\"choices\":[ ],\"usage\":{\"prompt_tokens\":1}}", "drop" },
        { "{\"choices\" : [\n],\"usage\":{\"prompt_tokens\":1}}", "drop" },
        { "[DONE]", "pass" },
    };
    ngx_uint_t             i;

    ngx_str_set(&model, "m");
    ngx_str_null(&n);

    st = ngx_http_ai_stream_create(NULL, NGX_HTTP_AI_FMT_OPENAI,
                                   NGX_HTTP_AI_FMT_OPENAI, &model, 0);
    assert_non_null(st);

    for (i = 0; i < sizeof(evs) / sizeof(evs[0]); i++) {
        d.data = (u_char *) evs[i][0];
        d.len = strlen(evs[i][0]);

        assert_int_equal(ngx_http_ai_stream_event(st, &n, &d, NULL, &out),
                         NGX_OK);

        if (evs[i][1][0] == 'p') {
            assert_int_equal(out.len, d.len + sizeof("data: \n\n") - 1);
            assert_memory_equal(out.data + 6, d.data, d.len);

        } else {
            assert_int_equal(out.len, 0);
        }
    }

    /* an error event is seen without a parse by the caller */

    st = ngx_http_ai_stream_create(NULL, NGX_HTTP_AI_FMT_OPENAI,
                                   NGX_HTTP_AI_FMT_OPENAI, &model, 0);
    d.data = (u_char *) "{\"error\":{\"message\":\"x\"}}";
    d.len = strlen((char *) d.data);

    assert_int_equal(ngx_http_ai_stream_event(st, &n, &d, NULL, &out),
                     NGX_OK);
    assert_true(out.len > 0);

    /* the client has its error event: none is added at the end */

    assert_int_equal(ngx_http_ai_stream_end(st, 0, &out), NGX_OK);
    assert_null(ngx_strnstr(out.data, "stream_truncated", out.len));
}


/* a complete answer rendered as a door's stream (a cache hit) */

static void
render_check(ngx_uint_t from, ngx_uint_t door, const char *answer,
    const char *text, const char *args, const char *reason)
{
    char          got[1024], got_args[256];
    cJSON        *j, *x;
    ngx_str_t     in, out, err, model;
    ngx_uint_t    i, pieces, done, usage;
    const char   *t;
    sse_events_t  evs;

    in.data = (u_char *) answer;
    in.len = strlen(answer);
    ngx_str_set(&model, "client-model");

    assert_int_equal(ngx_http_ai_render_stream(NULL, from, door, &model, &in,
                                               1, &out, &err),
                     NGX_OK);

    sse_parse(out.data, out.len, &evs);

    got[0] = '\0';
    got_args[0] = '\0';
    pieces = 0;
    done = 0;
    usage = 0;
    t = NULL;

    for (i = 0; i < evs.n; i++) {
        if (evs.ev[i].data.len == 6
            && memcmp(evs.ev[i].data.data, "[DONE]", 6) == 0)
        {
            done = 1;
            continue;
        }

        j = cJSON_ParseWithLength((const char *) evs.ev[i].data.data,
                                  evs.ev[i].data.len);
        assert_non_null(j);

        if (door == NGX_HTTP_AI_FMT_OPENAI) {
            x = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);

            if (cJSON_IsString(cJSON_GetObjectItem(cJSON_GetObjectItem(x,
                                                           "delta"), "content"))
                && cJSON_GetObjectItem(cJSON_GetObjectItem(x, "delta"),
                                       "content")->valuestring[0])
            {
                strcat(got, cJSON_GetObjectItem(cJSON_GetObjectItem(x,
                                             "delta"), "content")->valuestring);
                pieces++;
            }

            x = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(x,
                                   "delta"), "tool_calls"), 0);
            x = cJSON_GetObjectItem(cJSON_GetObjectItem(x, "function"),
                                    "arguments");
            if (cJSON_IsString(x)) {
                strcat(got_args, x->valuestring);
            }

            x = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
            if (cJSON_IsString(cJSON_GetObjectItem(x, "finish_reason"))) {
                t = strdup(cJSON_GetObjectItem(x,
                                             "finish_reason")->valuestring);
            }

            if (cJSON_IsObject(cJSON_GetObjectItem(j, "usage"))) {
                usage = 1;
            }

        } else {
            x = cJSON_GetObjectItem(j, "delta");

            if (cJSON_IsString(cJSON_GetObjectItem(x, "text"))) {
                strcat(got, cJSON_GetObjectItem(x, "text")->valuestring);
                pieces++;
            }

            if (cJSON_IsString(cJSON_GetObjectItem(x, "partial_json"))) {
                strcat(got_args,
                       cJSON_GetObjectItem(x, "partial_json")->valuestring);
            }

            if (cJSON_IsString(cJSON_GetObjectItem(x, "stop_reason"))) {
                t = strdup(cJSON_GetObjectItem(x,
                                               "stop_reason")->valuestring);
                usage = cJSON_IsObject(cJSON_GetObjectItem(j, "usage"));
            }

            if (strcmp(cJSON_GetObjectItem(j, "type")->valuestring,
                       "message_stop") == 0)
            {
                done = 1;
            }
        }

        cJSON_Delete(j);
    }

    assert_string_equal(got, text);
    assert_string_equal(got_args, args);
    assert_non_null(t);
    assert_string_equal(t, reason);
    assert_true(pieces >= 2);
    assert_true(usage);
    assert_true(done);

    free((void *) t);
}


static void
test_render_stream(void **state)
{
    static const char  text[] = "Hello there, this answer was cached and "
                                "is long enough to go in pieces, \xc3\xa9t\xc3"
                                "\xa9 \\ \"quoted\"";
    static const char  openai[] =
        "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\","
        "\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,"
        "\"message\":{\"role\":\"assistant\",\"content\":\"Hello there, "
        "this answer was cached and is long enough to go in pieces, \xc3\xa9t"
        "\xc3\xa9 \\\\ \\\"quoted\\\"\",\"tool_calls\":[{\"id\":\"call_1\","
        "\"type\":\"function\",\"function\":{\"name\":\"f\","
        "\"arguments\":\"{\\\"a\\\":1}\"}}]},\"finish_reason\":"
        "\"tool_calls\"}],\"usage\":{\"prompt_tokens\":3,"
        "\"completion_tokens\":4,\"total_tokens\":7}}";
    static const char  anthropic[] =
        "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\","
        "\"model\":\"m\",\"content\":[{\"type\":\"text\",\"text\":"
        "\"Hello there, this answer was cached and is long enough to go "
        "in pieces\"}],\"stop_reason\":\"end_turn\",\"stop_sequence\":null,"
        "\"usage\":{\"input_tokens\":3,\"output_tokens\":4}}";

    render_check(NGX_HTTP_AI_FMT_OPENAI, NGX_HTTP_AI_FMT_OPENAI, openai,
                 text, "{\"a\":1}", "tool_calls");
    render_check(NGX_HTTP_AI_FMT_OPENAI, NGX_HTTP_AI_FMT_ANTHROPIC, openai,
                 text, "{\"a\":1}", "tool_use");
    render_check(NGX_HTTP_AI_FMT_ANTHROPIC, NGX_HTTP_AI_FMT_OPENAI,
                 anthropic, "Hello there, this answer was cached and is "
                 "long enough to go in pieces", "", "stop");
    render_check(NGX_HTTP_AI_FMT_ANTHROPIC, NGX_HTTP_AI_FMT_ANTHROPIC,
                 anthropic, "Hello there, this answer was cached and is "
                 "long enough to go in pieces", "", "end_turn");
}


/*
 * An answer's reasoning rendered as a stream (a cache hit): each thinking
 * block's text, then its signature, a redacted block whole, then the text
 */

static void
golden_render(const char *target, const char *kind, const char *door)
{
    char       *in, *expected, file[256];
    size_t      len;
    buf_t       b;
    ngx_str_t   body, out, err, model;

    snprintf(file, sizeof(file), "response_%s_%s.json", target, kind);
    in = read_golden(file, &len);

    body.data = (u_char *) in;
    body.len = len;
    ngx_str_set(&model, "client-model");

    if (ngx_http_ai_render_stream(NULL, format(target), format(door), &model,
                                  &body, 1, &out, &err)
        != NGX_OK)
    {
        fail_msg("render %s %s: %.*s", target, kind, (int) err.len,
                 err.data);
    }

    snprintf(file, sizeof(file), "render_%s_%s.to_%s.expected.sse",
             target, kind, door);

    if (updating()) {
        b.data = out.data;
        b.len = out.len;
        b.size = out.len;
        write_sse(file, &b);

    } else {
        expected = read_golden(file, NULL);
        assert_sse(file, out.data, out.len, expected);
    }
}


static void
test_render_thinking(void **state)
{
    golden_render("anthropic", "thinking", "openai");
    golden_render("anthropic", "thinking", "anthropic");
    golden_render("openai", "reasoning", "anthropic");
}


/* the scanner that checks a provider's answer without a tree */

static void
test_json_is_object(void **state)
{
    char        deep[2100];
    ngx_str_t   s;
    ngx_uint_t  i;

    static const char  *good[] = {
        "{}", " {\"a\":1} \n", "{\"a\":[1,-2.5e3,true,false,null,\"x\\\"y\"],"
        "\"b\":{\"c\":{}}}", "{\"\\u00e9\":\"\\n\"}",
        "{\"a\":[0,-0,10,1.25,1E+2,2e-3,-0.5E1],\"\\/\\b\\f\\r\\t\":1}", NULL
    };

    static const char  *bad[] = {
        "", "[]", "\"x\"", "{", "{\"a\":}", "{\"a\":1,}", "{\"a\" 1}",
        "{\"a\":1} x", "{\"a\":nul}", "{a:1}", "{\"a\":\"\n\"}",
        "{\"a\":1}{}", "<html>", "{\"ab", "{\"ab\":", "{\"a\":[1,{\"b",
        "{\"a\":\"x", "{\"a\":e}", "{\"a\":-}", "{\"a\":1-2}",
        "{\"a\":.5}", "{\"a\":01}", "{\"a\":1.}", "{\"a\":1e}",
        "{\"a\":+1}", "{\"a\":\"\\x\"}", "{\"a\":\"\\u12\"}", NULL
    };

    for (i = 0; good[i]; i++) {
        s.data = (u_char *) good[i];
        s.len = strlen(good[i]);

        if (!ngx_http_ai_json_is_object(&s)) {
            print_error("not an object: %s\n", good[i]);
            fail();
        }
    }

    for (i = 0; bad[i]; i++) {
        s.data = (u_char *) bad[i];
        s.len = strlen(bad[i]);

        if (ngx_http_ai_json_is_object(&s)) {
            print_error("an object: %s\n", bad[i]);
            fail();
        }
    }

    /* as cJSON: 1000 levels of nesting are read (the object, 999 arrays) */

    for (i = 999; i <= 1000; i++) {
        s.data = (u_char *) deep;
        s.len = 0;

        memcpy(deep, "{\"a\":", 5);
        s.len = 5;
        memset(deep + s.len, '[', i);
        s.len += i;
        deep[s.len++] = '1';
        memset(deep + s.len, ']', i);
        s.len += i;
        deep[s.len++] = '}';

        assert_int_equal(ngx_http_ai_json_is_object(&s), i == 999);
    }
}


/*
 * Gemini's thought signatures through tool call ids: every base64
 * signature comes back as it was, the ids stay within [A-Za-z0-9_-], and
 * an id that only looks like one carries nothing
 */

static void
test_call_id_signature(void **state)
{
    char        *id, *sig;
    ngx_uint_t   i;
    const char  *p;

    static const char  *sigs[] = {
        "c2lnbmF0dXJl", "c2lnbmF0dXJlLV8/+w==", "YQ==", "YWI=", "+/+/",
        "Cs0BAdHtim9x+y/z"
    };

    static const char  *bad[] = {
        "gts", "gts_", "gts0_abc", "gts5_ab", "gtsx_abc", "gts2abc",
        "gts99999999999999999999_a", "call_gts3_abc", "gts3_a\"bcall", "",
        NULL
    };

    for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        id = ngx_http_ai_tr_call_id_sign(NULL, "call_r_0", sigs[i]);
        assert_non_null(id);

        for (p = id; *p; p++) {
            assert_true((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
                        || (*p >= '0' && *p <= '9') || *p == '_'
                        || *p == '-');
        }

        sig = ngx_http_ai_tr_call_id_signature(NULL, id);
        assert_non_null(sig);
        assert_string_equal(sig, sigs[i]);
    }

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_null(ngx_http_ai_tr_call_id_signature(NULL, bad[i]));
    }

    /* a hostile signature is not carried: the id stays as it was */

    assert_string_equal(ngx_http_ai_tr_call_id_sign(NULL, "call_1",
                                                    "ab\"c}"),
                        "call_1");
}


/*
 * The translators print their trees with their own printer: byte for
 * byte what cJSON_PrintUnformatted() prints, on every tree (numbers of
 * every kind, every byte in strings and names, raw values, nesting), and
 * none where cJSON prints none
 */

static unsigned long  prn_state = 777;

static unsigned
prn(unsigned n)
{
    prn_state = prn_state * 6364136223846793005UL + 1442695040888963407UL;
    return (unsigned) ((prn_state >> 33) % n);
}


static cJSON *
prn_tree(unsigned depth)
{
    char         s[24];
    cJSON       *t, *c;
    unsigned     i, n;

    static const double  numbers[] = {
        0.0, -0.0, 1.0, -1.0, 0.1, 0.5, 1e15, 999999999999999.0,
        -999999999999999.0, 1e-7, 123456789012345678.0, 2147483648.0,
        -2147483649.0, 3.141592653589793, 1.0 / 3.0, 5e-324,
        1.7976931348623157e308, 100.0, 7.25e20, -0.000001
    };

    switch ((depth > 4) ? prn(5) : prn(7)) {

    case 0:
        return prn(2) ? cJSON_CreateTrue() : cJSON_CreateFalse();

    case 1:
        return cJSON_CreateNull();

    case 2:
        t = cJSON_CreateNumber(numbers[prn(sizeof(numbers)
                                           / sizeof(numbers[0]))]);
        if (prn(8) == 0) {
            t->valuedouble = (prn(2) ? 1.0 : -1.0) / 0.0;
        } else if (prn(8) == 0) {
            t->valuedouble = (double) prn(4000000) / (prn(999) + 1);
        }
        return t;

    case 3:
    case 4:
        for (i = 0, n = prn(sizeof(s)); i < n; i++) {
            s[i] = (char) (1 + prn(255));
        }
        s[n] = '\0';
        t = cJSON_CreateString(s);
        if (prn(16) == 0) {
            cJSON_free(t->valuestring);
            t->valuestring = NULL;
        }
        return t;

    case 5:
        t = cJSON_CreateArray();
        for (i = 0, n = prn(5); i < n; i++) {
            cJSON_AddItemToArray(t, prn_tree(depth + 1));
        }
        return t;

    default:
        t = cJSON_CreateObject();
        for (i = 0, n = prn(5); i < n; i++) {
            snprintf(s, sizeof(s), "k%u\"\\\n\x01\xc3\xa9", prn(100));
            s[prn(8) + 2] = '\0';
            c = prn_tree(depth + 1);
            cJSON_AddItemToObject(t, s, c);
        }
        if (prn(10) == 0) {
            cJSON_AddItemToObject(t, "raw", cJSON_CreateRaw("{\"x\":[1]}"));
        }
        return t;
    }
}


static void
test_print_as_cjson(void **state)
{
    char        *expected;
    cJSON       *t;
    ngx_str_t    out;
    ngx_uint_t   i;

    for (i = 0; i < 20000; i++) {
        t = prn_tree(0);

        expected = cJSON_PrintUnformatted(t);
        assert_non_null(expected);

        assert_int_equal(ngx_http_ai_tr_print(NULL, t, &out), NGX_OK);

        if (out.len != strlen(expected)
            || memcmp(out.data, expected, out.len) != 0)
        {
            fail_msg("printed \"%.*s\", cJSON \"%s\"", (int) out.len,
                     out.data, expected);
        }

        free(out.data);
        cJSON_free(expected);
        cJSON_Delete(t);
    }

    /* a raw value without its text: neither prints */

    t = cJSON_CreateArray();
    cJSON_AddItemToArray(t, cJSON_CreateRaw("1"));
    cJSON_free(t->child->valuestring);
    t->child->valuestring = NULL;

    assert_null(cJSON_PrintUnformatted(t));
    assert_int_equal(ngx_http_ai_tr_print(NULL, t, &out), NGX_ERROR);

    cJSON_Delete(t);
}


/*
 * The Anthropic request's fast path to OpenAI writes the bytes of the
 * general path (the translation, its decoration, its printer) for every
 * request it takes, and leaves the others to it.
 */

static char *
general_a2o(ngx_http_ai_translate_request_t *req, cJSON *json)
{
    char       *s;
    cJSON      *pivot;
    ngx_str_t   out, err;

    assert_int_equal(ngx_http_ai_anthropic_request_to_openai(NULL, json,
                                                             &pivot, &err),
                     NGX_OK);
    assert_int_equal(ngx_http_ai_openai_decorate(pivot, req), NGX_OK);
    cJSON_DeleteItemFromObjectCaseSensitive(pivot, "thinking");
    assert_int_equal(ngx_http_ai_tr_print(NULL, pivot, &out), NGX_OK);

    s = strndup((char *) out.data, out.len);
    cJSON_Delete(pivot);

    return s;
}


static void
test_fast_request(void **state)
{
    char                             *want;
    cJSON                            *json;
    ngx_int_t                         rc;
    ngx_str_t                         out, err;
    ngx_uint_t                        i, m, s, fast, declined;
    ngx_http_ai_translate_request_t   req;

    static const char  *bodies[] = {
        "{\"model\":\"claude-3-5-sonnet\",\"max_tokens\":1000,"
        "\"stream\":true,\"messages\":[{\"role\":\"user\","
        "\"content\":\"Say hello\"}]}",
        "{\"messages\":[{\"content\":\"a \\\"quote\\\", a \\\\, \\n\\t\\r"
        "\\b\\f \\u0001 \\u00e9 \\u4e2d \\ud83d\\ude00\",\"role\":\"user\"},"
        "{\"role\":\"assistant\",\"content\":\"\"},{\"role\":\"user\","
        "\"content\":\"again\"}],\"system\":\"be \\\"brief\\\"\","
        "\"model\":\"m\",\"temperature\":0.7,\"top_p\":1e-7,"
        "\"max_tokens\":123456789012345678}",
        "{\"model\":\"m\",\"system\":\"\",\"messages\":[],"
        "\"stream\":false,\"temperature\":-0,\"top_p\":1.5e300}",
        "{\"model\":\"m\",\"max_tokens\":0.1,\"stream\":true,"
        "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
        "\"temperature\":1}",
        "{\"stream\":true,\"model\":\"\\u00e9t\\u00e9\",\"messages\":"
        "[{\"role\":\"assistant\",\"content\":\"prefill\"}]}",

        /* the general path's: */
        "{\"model\":\"m\",\"max_tokens\":10,\"metadata\":{\"user_id\":\"u\"},"
        "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
        "{\"model\":\"m\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\","
        "\"content\":[{\"type\":\"text\",\"text\":\"x\"}]}]}",
        "{\"model\":\"m\",\"max_tokens\":10,\"system\":[{\"type\":\"text\","
        "\"text\":\"s\"}],\"messages\":[{\"role\":\"user\","
        "\"content\":\"x\"}]}",
        "{\"model\":\"m\",\"model\":\"n\",\"messages\":[{\"role\":\"user\","
        "\"content\":\"x\"}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\","
        "\"cache_control\":{}}]}",
        "{\"model\":\"m\",\"stream\":null,\"messages\":[{\"role\":\"user\","
        "\"content\":\"x\"}]}",
        "{\"model\":\"m\",\"top_k\":5,\"messages\":[{\"role\":\"user\","
        "\"content\":\"x\"}]}",
        "{\"model\":\"m\",\"stop_sequences\":[\"a\"],\"messages\":"
        "[{\"role\":\"user\",\"content\":\"x\"}]}",
        "{\"model\":\"m\",\"tools\":[],\"messages\":[{\"role\":\"user\","
        "\"content\":\"x\"}]}",
        "{\"model\":\"m\",\"thinking\":{\"type\":\"enabled\","
        "\"budget_tokens\":2048},\"messages\":[{\"role\":\"user\","
        "\"content\":\"x\"}]}"
    };

    static const char  *models[] = { "", "gpt-4o-mini", "a\"b" };

    fast = 0;
    declined = 0;

    for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        json = cJSON_Parse(bodies[i]);
        assert_non_null(json);

        for (m = 0; m < sizeof(models) / sizeof(models[0]); m++) {
            for (s = 0; s < 2; s++) {
                memset(&req, 0, sizeof(req));
                req.from = NGX_HTTP_AI_FMT_ANTHROPIC;
                req.to = NGX_HTTP_AI_FMT_OPENAI;
                req.endpoint = NGX_HTTP_AI_EP_MESSAGES;
                req.json = json;
                req.body.data = (u_char *) bodies[i];
                req.body.len = strlen(bodies[i]);
                req.model.data = (u_char *) models[m];
                req.model.len = strlen(models[m]);
                req.stream = s;

                want = general_a2o(&req, json);

                rc = ngx_http_ai_tr_fast_request(NULL, &req, json, &out);

                if (rc == NGX_OK) {
                    fast++;

                    if (out.len != strlen(want)
                        || memcmp(out.data, want, out.len) != 0)
                    {
                        fail_msg("body %u, model \"%s\", stream %u:\n"
                                 "fast    %.*s\ngeneral %s", (unsigned) i,
                                 models[m], (unsigned) s, (int) out.len,
                                 out.data, want);
                    }

                    free(out.data);

                } else {
                    assert_int_equal(rc, NGX_DECLINED);
                    declined++;

                    if (i < 5 && m < 2 && !(s && strstr(bodies[i],
                                                      "\"stream\"") == NULL))
                    {
                        fail_msg("body %u, model \"%s\", stream %u: not "
                                 "taken", (unsigned) i, models[m],
                                 (unsigned) s);
                    }
                }

                /* and the whole translation: the same bytes */

                rc = checked_request(&req, &out, &err);

                if (rc == NGX_DECLINED) {
                    /* the general path refuses it ("top_k"): so is it */
                    assert_non_null(strstr(bodies[i], "top_k"));
                    free(want);
                    continue;
                }

                assert_int_equal(rc, NGX_OK);
                assert_int_equal(out.len, strlen(want));
                assert_memory_equal(out.data, want, out.len);

                free(want);
            }
        }

        cJSON_Delete(json);
    }

    /* 5 bodies, 2 models each, both ways but one (no "stream" key) */
    assert_int_equal(fast, 5 * 2 * 2 - 2);
    assert_true(declined > 50);
}


static char *
general_o2a(ngx_http_ai_translate_request_t *req, cJSON *json)
{
    char       *s;
    cJSON      *pivot, *target;
    ngx_str_t   out, err;

    pivot = cJSON_Duplicate(json, 1);
    assert_int_equal(ngx_http_ai_openai_decorate(pivot, req), NGX_OK);

    if (ngx_http_ai_tr_unsupported(NULL, pivot, req->to, &err) != NGX_OK
        || ngx_http_ai_anthropic_request_from_openai(NULL, pivot, req,
                                                     &target, &err)
           != NGX_OK)
    {
        cJSON_Delete(pivot);
        return NULL;
    }

    assert_int_equal(ngx_http_ai_tr_print(NULL, target, &out), NGX_OK);

    s = strndup((char *) out.data, out.len);
    cJSON_Delete(target);
    cJSON_Delete(pivot);

    return s;
}


static void
test_fast_request_to_anthropic(void **state)
{
    char                             *want;
    cJSON                            *json;
    ngx_int_t                         rc;
    ngx_str_t                         out, err;
    ngx_uint_t                        i, m, s, x, fast, declined;
    ngx_http_ai_translate_request_t   req;

    static const char  *bodies[] = {
        "{\"model\":\"claude-3-5-sonnet\",\"messages\":[{\"role\":\"user\","
        "\"content\":\"Say hello\"}],\"stream\":true}",
        "{\"messages\":[{\"content\":\"be \\\"brief\\\"\",\"role\":"
        "\"system\"},{\"role\":\"user\",\"content\":\"a \\\"quote\\\", "
        "\\\\ \\n\\t\\u0001 \\u00e9 \\ud83d\\ude00\"},{\"role\":"
        "\"assistant\",\"content\":\"\"},{\"role\":\"assistant\","
        "\"content\":\"yes\"},{\"role\":\"user\",\"content\":\"again\"}],"
        "\"model\":\"m\",\"temperature\":1.7,\"top_p\":1e-7,"
        "\"max_tokens\":1000,\"stream\":false}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":"
        "\"one\"},{\"role\":\"developer\",\"content\":\"\"},{\"role\":"
        "\"developer\",\"content\":\"two\"},{\"role\":\"user\",\"content\":"
        "\"x\"}],\"max_completion_tokens\":12.9,\"max_tokens\":5,"
        "\"temperature\":0.25,\"stream_options\":{\"include_usage\":true},"
        "\"stream\":true}",
        "{\"model\":\"m\",\"messages\":[],\"max_completion_tokens\":-1,"
        "\"max_tokens\":1e300,\"top_p\":-0}",
        "{\"model\":\"\\u00e9\",\"messages\":[{\"role\":\"user\","
        "\"content\":\"\"}]}",

        /* the general path's: */
        "{\"model\":\"m\",\"user\":\"u\",\"messages\":[{\"role\":\"user\","
        "\"content\":\"x\"}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
        "[{\"type\":\"text\",\"text\":\"x\"}]}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"tool\",\"content\":\"x\","
        "\"tool_call_id\":\"c\"}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\","
        "\"name\":\"n\"}]}",
        "{\"model\":\"m\",\"n\":2,\"messages\":[{\"role\":\"user\","
        "\"content\":\"x\"}]}",
        "{\"model\":\"m\",\"seed\":1,\"messages\":[{\"role\":\"user\","
        "\"content\":\"x\"}]}",
        "{\"model\":\"m\",\"stop\":\"s\",\"messages\":[{\"role\":\"user\","
        "\"content\":\"x\"}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
        "\"messages\":[]}",
        "{\"model\":\"m\",\"reasoning_effort\":\"high\",\"messages\":"
        "[{\"role\":\"user\",\"content\":\"x\"}]}"
    };

    static const char  *models[] = { "", "claude-sonnet-4", "a\"b" };

    fast = 0;
    declined = 0;

    for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        json = cJSON_Parse(bodies[i]);
        assert_non_null(json);

        for (m = 0; m < sizeof(models) / sizeof(models[0]); m++) {
            for (x = 0; x < 4; x++) {
                s = x & 1;

                memset(&req, 0, sizeof(req));
                req.from = NGX_HTTP_AI_FMT_OPENAI;
                req.to = NGX_HTTP_AI_FMT_ANTHROPIC;
                req.endpoint = NGX_HTTP_AI_EP_CHAT;
                req.json = json;
                req.body.data = (u_char *) bodies[i];
                req.body.len = strlen(bodies[i]);
                req.model.data = (u_char *) models[m];
                req.model.len = strlen(models[m]);
                req.stream = s;
                req.max_tokens = (x & 2) ? 8192 : 0;

                want = general_o2a(&req, json);

                rc = ngx_http_ai_tr_fast_request(NULL, &req, json, &out);

                if (rc == NGX_OK) {
                    fast++;

                    if (want == NULL || out.len != strlen(want)
                        || memcmp(out.data, want, out.len) != 0)
                    {
                        fail_msg("body %u, model \"%s\", case %u:\n"
                                 "fast    %.*s\ngeneral %s", (unsigned) i,
                                 models[m], (unsigned) x, (int) out.len,
                                 out.data, want ? want : "(refused)");
                    }

                    free(out.data);

                } else {
                    assert_int_equal(rc, NGX_DECLINED);
                    declined++;

                    if (i < 5 && m < 2) {
                        fail_msg("body %u, model \"%s\", case %u: not "
                                 "taken", (unsigned) i, models[m],
                                 (unsigned) x);
                    }
                }

                /* and the whole translation: the same bytes, or refused */

                rc = checked_request(&req, &out, &err);

                if (want == NULL) {
                    assert_int_equal(rc, NGX_DECLINED);
                    continue;
                }

                assert_int_equal(rc, NGX_OK);
                assert_int_equal(out.len, strlen(want));
                assert_memory_equal(out.data, want, out.len);

                free(want);
            }
        }

        cJSON_Delete(json);
    }

    assert_int_equal(fast, 5 * 2 * 4);
    assert_true(declined > 100);
}


int
main(void)
{
    cJSON_Hooks              hooks = { count_malloc, count_free };
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_request_golden),
        cmocka_unit_test(test_request_fast_path),
        cmocka_unit_test(test_request_same_no_pool),
        cmocka_unit_test(test_request_embeddings),
        cmocka_unit_test(test_request_refused),
        cmocka_unit_test(test_request_round_trip),
        cmocka_unit_test(test_response_golden),
        cmocka_unit_test(test_response_same_and_bad),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_finish_reason),
        cmocka_unit_test(test_stream_golden),
        cmocka_unit_test(test_stream_fragments),
        cmocka_unit_test(test_stream_garbage),
        cmocka_unit_test(test_stream_truncated),
        cmocka_unit_test(test_json_is_object),
        cmocka_unit_test(test_render_stream),
        cmocka_unit_test(test_render_thinking),
        cmocka_unit_test(test_stream_upstream_error),
        cmocka_unit_test(test_mutants),
        cmocka_unit_test(test_openai_pass_unparsed),
        cmocka_unit_test(test_call_id_signature),
        cmocka_unit_test(test_print_as_cjson),
        cmocka_unit_test(test_fast_request),
        cmocka_unit_test(test_fast_request_to_anthropic),
    };

    cJSON_InitHooks(&hooks);

    return cmocka_run_group_tests(tests, NULL, NULL);
}
