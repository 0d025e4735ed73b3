
/*
 * Copyright (C) AI Gateway authors
 *
 * The format layer's side of the delta filters: where the text of an
 * answer is in each door's format, streamed or whole, and how a filtered
 * text, a released one or an abort is rendered there.  The filters
 * themselves are called through st->filter (the core's runner), so these
 * files stay pure.
 *
 * In a stream the filters see the text as the client will get it: the
 * pivot chunk of a translated stream (before its rendering in the door's
 * format), the door's own events when the target speaks it.  A text ends
 * (delta->last) with its choice's finish_reason (OpenAI), its block's
 * content_block_stop (Anthropic), or the stream's end, whichever comes
 * first.  The doors are OpenAI's and Anthropic's: a Gemini target's
 * answer is filtered as the pivot it is translated to.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_ai_core_format.h"


/* a text's index, up to the last one tracked */
#define ngx_http_ai_tr_slot(i)                                                \
    ((i) < NGX_HTTP_AI_MAX_FILTERED ? (i) : NGX_HTTP_AI_MAX_FILTERED - 1)

#define ngx_http_ai_tr_is_open(st, i)                                         \
    ((st)->opened[ngx_http_ai_tr_slot(i) / 32]                               \
     & ((uint32_t) 1 << (ngx_http_ai_tr_slot(i) % 32)))


static ngx_int_t ngx_http_ai_tr_filter_text(ngx_http_ai_stream_t *st,
    cJSON *parent, const char *name, ngx_uint_t index, ngx_uint_t last,
    ngx_uint_t *empty);
static ngx_int_t ngx_http_ai_tr_filter_run(ngx_http_ai_stream_t *st,
    ngx_http_ai_delta_t *d);
static char *ngx_http_ai_tr_cstr(ngx_http_ai_stream_t *st, ngx_str_t *s);
static ngx_uint_t ngx_http_ai_tr_index(cJSON *obj, const char *name,
    ngx_uint_t dflt);
static ngx_uint_t ngx_http_ai_tr_only(cJSON *obj, const char *name);
static void ngx_http_ai_tr_set_open(ngx_http_ai_stream_t *st,
    ngx_uint_t index, ngx_uint_t open);
static cJSON *ngx_http_ai_tr_first(ngx_http_ai_stream_t *st, cJSON *obj,
    const char *name);
static ngx_int_t ngx_http_ai_tr_flush_anthropic(ngx_http_ai_stream_t *st,
    ngx_uint_t index);


/*
 * An OpenAI chunk (the pivot, or the door's own): each choice's content.
 * *skip: nothing is left to send (all of it held, nothing else in it).
 */

ngx_int_t
ngx_http_ai_tr_filter_chunk(ngx_http_ai_stream_t *st, cJSON *chunk,
    ngx_uint_t *skip)
{
    cJSON       *choices, *choice, *delta, *content, *finish, *usage;
    ngx_int_t    rc;
    ngx_uint_t   i, index, last, empty, kept;

    *skip = 0;

    choices = ngx_http_ai_tr_first(st, chunk, "choices");

    if (!cJSON_IsArray(choices) || cJSON_GetArraySize(choices) == 0) {
        return NGX_OK;
    }

    kept = 0;
    i = 0;

    cJSON_ArrayForEach(choice, choices) {

        (void) ngx_http_ai_tr_first(st, choice, "index");
        index = ngx_http_ai_tr_index(choice, "index", i++);

        delta = ngx_http_ai_tr_first(st, choice, "delta");
        content = cJSON_IsObject(delta)
                  ? ngx_http_ai_tr_first(st, delta, "content")
                  : NULL;
        finish = ngx_http_ai_tr_first(st, choice, "finish_reason");

        /*
         * a text ends with its choice, or where a tool call begins: what
         * is held goes before the call (the Anthropic door closes the
         * text block there)
         */

        last = cJSON_IsString(finish)
               || (cJSON_IsObject(delta)
                   && cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(
                                             delta, "tool_calls"))
                      > 0);

        if (!cJSON_IsObject(delta)
            || (!(cJSON_IsString(content) && content->valuestring[0])
                && !(last && ngx_http_ai_tr_is_open(st, index))))
        {
            /* no text, nothing held: as it is */
            kept = 1;
            continue;
        }

        rc = ngx_http_ai_tr_filter_text(st, delta, "content", index, last,
                                        &empty);
        if (rc != NGX_OK) {
            return rc;
        }

        if (!empty || last || !ngx_http_ai_tr_only(delta, "content")) {
            kept = 1;
        }
    }

    usage = cJSON_GetObjectItemCaseSensitive(chunk, "usage");

    *skip = !kept && !cJSON_IsObject(usage);

    return NGX_OK;
}


/*
 * An Anthropic event of a stream from an Anthropic target: text deltas
 * filtered, a block's held text released before its content_block_stop.
 * *action: 0 the event goes as it came, 1 rendered from json (changed),
 * 2 dropped.
 */

ngx_int_t
ngx_http_ai_tr_filter_anthropic(ngx_http_ai_stream_t *st, cJSON *json,
    ngx_uint_t *action)
{
    cJSON       *type, *delta;
    ngx_int_t    rc;
    ngx_uint_t   index, empty, i;

    *action = 0;

    st->changed = 0;

    type = ngx_http_ai_tr_first(st, json, "type");
    (void) ngx_http_ai_tr_first(st, json, "index");
    index = ngx_http_ai_tr_index(json, "index", 0);

    if (ngx_http_ai_tr_is(type, "content_block_delta")) {
        delta = ngx_http_ai_tr_first(st, json, "delta");

        if (!ngx_http_ai_tr_is(ngx_http_ai_tr_first(st, delta, "type"),
                               "text_delta"))
        {
            *action = st->changed ? 1 : 0;
            return NGX_OK;
        }

        rc = ngx_http_ai_tr_filter_text(st, delta, "text", index, 0, &empty);
        if (rc != NGX_OK) {
            return rc;
        }

        *action = empty ? 2 : (st->changed ? 1 : 0);

        return NGX_OK;
    }

    if (st->changed) {
        /* duplicate members dropped: the event as the filters saw it */
        *action = 1;
    }

    if (ngx_http_ai_tr_is(type, "content_block_stop")) {
        return ngx_http_ai_tr_flush_anthropic(st, index);
    }

    if (ngx_http_ai_tr_is(type, "message_delta")
        || ngx_http_ai_tr_is(type, "message_stop"))
    {
        for (i = 0; st->open && i < NGX_HTTP_AI_MAX_FILTERED; i++) {
            if (ngx_http_ai_tr_is_open(st, i)) {
                rc = ngx_http_ai_tr_flush_anthropic(st, i);
                if (rc != NGX_OK) {
                    return rc;
                }
            }
        }
    }

    return NGX_OK;
}


/*
 * The stream ends complete: whatever is still held goes out, in the
 * door's format, before the closing events.
 */

ngx_int_t
ngx_http_ai_tr_filter_end(ngx_http_ai_stream_t *st)
{
    cJSON                *chunk, *delta, *choices, *choice;
    ngx_int_t             rc;
    ngx_uint_t            i;
    ngx_http_ai_delta_t   d;

    for (i = 0; st->open && i < NGX_HTTP_AI_MAX_FILTERED; i++) {

        if (!ngx_http_ai_tr_is_open(st, i)) {
            continue;
        }

        if (st->door == NGX_HTTP_AI_FMT_ANTHROPIC
            && st->target == NGX_HTTP_AI_FMT_ANTHROPIC)
        {
            rc = ngx_http_ai_tr_flush_anthropic(st, i);
            if (rc != NGX_OK) {
                return rc;
            }

            continue;
        }

        ngx_http_ai_tr_set_open(st, i, 0);

        ngx_memzero(&d, sizeof(ngx_http_ai_delta_t));
        d.index = i;
        d.last = 1;

        rc = ngx_http_ai_tr_filter_run(st, &d);
        if (rc != NGX_OK || d.text.len == 0) {
            return rc;
        }

        chunk = ngx_http_ai_tr_chunk(st, &delta, NULL);
        if (chunk == NULL) {
            return NGX_ERROR;
        }

        choices = cJSON_GetObjectItemCaseSensitive(chunk, "choices");
        choice = cJSON_GetArrayItem(choices, 0);

        if (ngx_http_ai_tr_add_string(delta, "content",
                                      ngx_http_ai_tr_cstr(st, &d.text))
            == NULL
            || (choice
                && ngx_http_ai_tr_set(choice, "index",
                                      cJSON_CreateNumber((double) i))
                   != NGX_OK))
        {
            cJSON_Delete(chunk);
            return NGX_ERROR;
        }

        if (st->door == NGX_HTTP_AI_FMT_ANTHROPIC) {
            rc = ngx_http_ai_anthropic_stream_from_openai(st, chunk);

        } else {
            rc = ngx_http_ai_tr_out_event(st, NULL, chunk);
        }

        cJSON_Delete(chunk);

        if (rc != NGX_OK) {
            return rc;
        }
    }

    return NGX_OK;
}


/*
 * A complete answer in the door's format through the filters: each text
 * once, as its whole (delta->last).  NGX_DECLINED: not an answer (not a
 * JSON object).
 */

ngx_int_t
ngx_http_ai_tr_filter_answer(ngx_pool_t *pool, ngx_uint_t format,
    ngx_http_ai_tr_filter_pt filter, void *data, ngx_str_t *body,
    ngx_http_ai_delta_t *abort)
{
    cJSON                 *json, *list, *item, *msg, *part;
    ngx_int_t              rc;
    ngx_uint_t             i, empty;
    ngx_http_ai_stream_t   st;

    json = cJSON_ParseWithLength((const char *) body->data, body->len);

    if (!cJSON_IsObject(json)) {
        cJSON_Delete(json);
        return NGX_DECLINED;
    }

    /* a stream's frame for the helpers: its scratch and its filter */

    ngx_memzero(&st, sizeof(ngx_http_ai_stream_t));
    st.pool = pool;
    st.door = format;
    st.target = format;
    st.filter = filter;
    st.filter_data = data;
    st.plain = 1;

    rc = NGX_OK;
    i = 0;

    switch (format) {

    case NGX_HTTP_AI_FMT_ANTHROPIC:
        list = ngx_http_ai_tr_first(&st, json, "content");

        cJSON_ArrayForEach(item, list) {
            if (ngx_http_ai_tr_is(ngx_http_ai_tr_first(&st, item, "type"),
                                  "text"))
            {
                rc = ngx_http_ai_tr_filter_text(&st, item, "text", i, 1,
                                                &empty);
                if (rc != NGX_OK) {
                    break;
                }
            }

            i++;
        }

        break;

    case NGX_HTTP_AI_FMT_RESPONSES:

        /* the output_text parts of the message items, an item a text */

        list = ngx_http_ai_tr_first(&st, json, "output");

        cJSON_ArrayForEach(item, list) {
            msg = ngx_http_ai_tr_first(&st, item, "content");

            cJSON_ArrayForEach(part, msg) {
                if (rc == NGX_OK
                    && ngx_http_ai_tr_is(ngx_http_ai_tr_first(&st, part,
                                                              "type"),
                                         "output_text"))
                {
                    rc = ngx_http_ai_tr_filter_text(&st, part, "text", i, 1,
                                                    &empty);
                }
            }

            if (rc != NGX_OK) {
                break;
            }

            i++;
        }

        break;

    default: /* NGX_HTTP_AI_FMT_OPENAI */
        list = ngx_http_ai_tr_first(&st, json, "choices");

        cJSON_ArrayForEach(item, list) {
            msg = ngx_http_ai_tr_first(&st, item, "message");
            (void) ngx_http_ai_tr_first(&st, item, "index");

            if (cJSON_IsString(ngx_http_ai_tr_first(&st, msg, "content")))
            {
                rc = ngx_http_ai_tr_filter_text(&st, msg, "content",
                                        ngx_http_ai_tr_index(item, "index", i),
                                        1, &empty);
                if (rc != NGX_OK) {
                    break;
                }
            }

            i++;
        }
    }

    if (rc == NGX_ABORT) {
        *abort = st.abort;

    } else if (rc == NGX_OK
               && (st.changed
                   || ngx_strnstr(body->data, "\\u0000", body->len)))
    {
        /* changed, or a \u0000 hid a string's rest from cJSON */
        rc = ngx_http_ai_tr_print(pool, json, body);
    }

    cJSON_Delete(json);

    return rc;
}


/*
 * One text through the filters: parent[name] replaced when they changed
 * it.  An abort is rendered here, in a stream, as the door's error event.
 */

static ngx_int_t
ngx_http_ai_tr_filter_text(ngx_http_ai_stream_t *st, cJSON *parent,
    const char *name, ngx_uint_t index, ngx_uint_t last, ngx_uint_t *empty)
{
    char                 *s;
    cJSON                *item, *text;
    ngx_int_t             rc;
    ngx_http_ai_delta_t   d;

    *empty = 1;

    item = ngx_http_ai_tr_first(st, parent, name);

    ngx_memzero(&d, sizeof(ngx_http_ai_delta_t));
    d.index = index;
    d.last = last;

    if (cJSON_IsString(item)) {
        d.text.data = (u_char *) item->valuestring;
        d.text.len = ngx_strlen(item->valuestring);
    }

    rc = ngx_http_ai_tr_filter_run(st, &d);
    if (rc != NGX_OK) {
        return rc;
    }

    if (last) {
        ngx_http_ai_tr_set_open(st, index, 0);

    } else {
        ngx_http_ai_tr_set_open(st, index, 1);
    }

    *empty = (d.text.len == 0);

    if (cJSON_IsString(item) && d.text.data == (u_char *) item->valuestring
        && d.text.len == ngx_strlen(item->valuestring))
    {
        /* let through as it was */
        return NGX_OK;
    }

    if (!cJSON_IsString(item) && d.text.len == 0) {
        return NGX_OK;
    }

    s = ngx_http_ai_tr_cstr(st, &d.text);
    if (s == NULL) {
        return NGX_ERROR;
    }

    text = cJSON_CreateString(s);
    if (text == NULL) {
        return NGX_ERROR;
    }

    st->changed = 1;

    return ngx_http_ai_tr_set(parent, name, text);
}


/* the filters; an abort is the door's error event (a stream) */

static ngx_int_t
ngx_http_ai_tr_filter_run(ngx_http_ai_stream_t *st, ngx_http_ai_delta_t *d)
{
    char       *msg;
    ngx_int_t   rc;

    rc = st->filter(st->filter_data, d);

    if (rc == NGX_OK) {
        return NGX_OK;
    }

    if (rc != NGX_ABORT) {
        return NGX_ERROR;
    }

    if (d->status < 400 || d->status > 599) {
        d->status = 400;
    }

    if (d->message.len == 0) {
        ngx_str_set(&d->message, "the answer was stopped by a filter");
    }

    st->abort = *d;
    st->aborted = 1;

    if (st->plain) {
        /* a plain answer: its module renders the error */
        return NGX_ABORT;
    }

    msg = ngx_http_ai_tr_cstr(st, &d->message);
    if (msg == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_ai_tr_emit_error(st, d->status < 500
                                      ? "invalid_request_error"
                                      : "api_error",
                                  msg, "content_filtered")
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_ABORT;
}


/* a block's held text, as a text delta event, before the block's end */

static ngx_int_t
ngx_http_ai_tr_flush_anthropic(ngx_http_ai_stream_t *st, ngx_uint_t index)
{
    char                 *s;
    cJSON                *json, *delta;
    ngx_int_t             rc;
    ngx_http_ai_delta_t   d;

    if (!ngx_http_ai_tr_is_open(st, index)) {
        return NGX_OK;
    }

    ngx_http_ai_tr_set_open(st, index, 0);

    ngx_memzero(&d, sizeof(ngx_http_ai_delta_t));
    d.index = index;
    d.last = 1;

    rc = ngx_http_ai_tr_filter_run(st, &d);
    if (rc != NGX_OK || d.text.len == 0) {
        return rc;
    }

    s = ngx_http_ai_tr_cstr(st, &d.text);
    if (s == NULL) {
        return NGX_ERROR;
    }

    json = cJSON_CreateObject();
    if (json == NULL) {
        return NGX_ERROR;
    }

    rc = NGX_ERROR;

    if (ngx_http_ai_tr_add_string(json, "type", "content_block_delta")
        != NULL
        && cJSON_AddNumberToObject(json, "index", (double) index) != NULL
        && (delta = cJSON_AddObjectToObject(json, "delta")) != NULL
        && ngx_http_ai_tr_add_string(delta, "type", "text_delta") != NULL
        && ngx_http_ai_tr_add_string(delta, "text", s) != NULL)
    {
        rc = ngx_http_ai_tr_out_event(st, "content_block_delta", json);
    }

    cJSON_Delete(json);

    return rc;
}


/* a NUL-terminated copy in the stream's scratch, reused event to event */

static char *
ngx_http_ai_tr_cstr(ngx_http_ai_stream_t *st, ngx_str_t *s)
{
    u_char  *p;
    size_t   size;

    if (s->len + 1 > st->text_size) {
        size = ngx_max(s->len + 1, 2 * st->text_size);
        size = ngx_max(size, 256);

        p = ngx_pnalloc(st->pool, size);
        if (p == NULL) {
            return NULL;
        }

        if (st->text) {
            ngx_pfree(st->pool, st->text);
        }

        st->text = p;
        st->text_size = size;
    }

    if (s->len) {
        /* a filter that let nothing through may give no memory at all */
        ngx_memcpy(st->text, s->data, s->len);
    }

    st->text[s->len] = '\0';

    return (char *) st->text;
}


static ngx_uint_t
ngx_http_ai_tr_index(cJSON *obj, const char *name, ngx_uint_t dflt)
{
    ngx_int_t  n;

    if (ngx_http_ai_tr_int(obj, name, &n) == NGX_OK
        && n < NGX_HTTP_AI_MAX_INDEX)
    {
        return (ngx_uint_t) n;
    }

    return dflt;
}


/* obj holds no other member than name */

static ngx_uint_t
ngx_http_ai_tr_only(cJSON *obj, const char *name)
{
    cJSON  *item;

    cJSON_ArrayForEach(item, obj) {
        if (item->string == NULL || ngx_strcmp(item->string, name) != 0) {
            return 0;
        }
    }

    return 1;
}


/*
 * obj[name], the first of its members so named: the others, which a
 * client's parser may take instead (the last one, in most), are dropped,
 * and the event is rendered anew (st->changed) as the filters saw it
 */

static cJSON *
ngx_http_ai_tr_first(ngx_http_ai_stream_t *st, cJSON *obj, const char *name)
{
    cJSON  *item, *first, *next;

    if (!cJSON_IsObject(obj)) {
        return NULL;
    }

    first = NULL;

    for (item = obj->child; item; item = next) {
        next = item->next;

        if (item->string == NULL || ngx_strcmp(item->string, name) != 0) {
            continue;
        }

        if (first == NULL) {
            first = item;
            continue;
        }

        cJSON_Delete(cJSON_DetachItemViaPointer(obj, item));
        st->changed = 1;
    }

    return first;
}


/* a text begun (open) or ended: st->open counts the texts begun */

static void
ngx_http_ai_tr_set_open(ngx_http_ai_stream_t *st, ngx_uint_t index,
    ngx_uint_t open)
{
    uint32_t    bit;
    ngx_uint_t  slot;

    slot = ngx_http_ai_tr_slot(index);
    bit = (uint32_t) 1 << (slot % 32);

    if (open && !(st->opened[slot / 32] & bit)) {
        st->opened[slot / 32] |= bit;
        st->open++;

    } else if (!open && (st->opened[slot / 32] & bit)) {
        st->opened[slot / 32] &= ~bit;
        st->open--;
    }
}
