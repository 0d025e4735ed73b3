
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
 *
 * A tool call's arguments are a text of their own (delta->tool), ending
 * where the next call of its choice begins, with the choice's
 * finish_reason (OpenAI), with its block (Anthropic) or with the stream;
 * what was held of them goes out, as an arguments delta of the call,
 * before the next call's first one.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_ai_core_format.h"
#include "ngx_http_ai_core_json.h"


/* a text's index, up to the last one tracked */
#define ngx_http_ai_tr_slot(i)                                                \
    ((i) < NGX_HTTP_AI_MAX_FILTERED ? (i) : NGX_HTTP_AI_MAX_FILTERED - 1)

#define ngx_http_ai_tr_is_open(st, i)                                         \
    ((st)->opened[ngx_http_ai_tr_slot(i) / 32]                               \
     & ((uint32_t) 1 << (ngx_http_ai_tr_slot(i) % 32)))

/* an OpenAI choice's side text (0 reasoning, 1 refusal): its slot */
#define ngx_http_ai_tr_side_slot(i, k)                                        \
    (2 * (i) + (k) < NGX_HTTP_AI_MAX_SIDE_FILTERED                           \
     ? 2 * (i) + (k) : NGX_HTTP_AI_MAX_SIDE_FILTERED - 1)

#define ngx_http_ai_tr_side_is_open(st, slot)                                 \
    ((st)->side_opened[(slot) / 32] & ((uint32_t) 1 << ((slot) % 32)))

#define ngx_http_ai_tr_is_thinking(st, i)                                     \
    ((st)->thinking[ngx_http_ai_tr_slot(i) / 32]                             \
     & ((uint32_t) 1 << (ngx_http_ai_tr_slot(i) % 32)))

/* the side texts of an OpenAI delta, by their slot's parity */
static const char  *ngx_http_ai_tr_sides[] = {
    "reasoning_content", "refusal"
};

/* a tool call's slot, up to the last one tracked */
#define ngx_http_ai_tr_tool_slot(i)                                           \
    ((i) < NGX_HTTP_AI_MAX_TOOL_FILTERED                                      \
     ? (i) : NGX_HTTP_AI_MAX_TOOL_FILTERED - 1)

#define ngx_http_ai_tr_tool_is_open(st, i)                                    \
    ((st)->tools_opened[ngx_http_ai_tr_tool_slot(i) / 32]                    \
     & ((uint32_t) 1 << (ngx_http_ai_tr_tool_slot(i) % 32)))

/* the slots of an OpenAI choice's tool calls */
#define NGX_HTTP_AI_TOOLS_PER_CHOICE  16


static ngx_int_t ngx_http_ai_tr_filter_text(ngx_http_ai_stream_t *st,
    cJSON *parent, const char *name, ngx_uint_t index, ngx_uint_t last,
    ngx_uint_t tool, ngx_uint_t *empty);
static ngx_int_t ngx_http_ai_tr_filter_calls(ngx_http_ai_stream_t *st,
    cJSON *delta, cJSON *calls, ngx_uint_t choice, ngx_uint_t finish,
    ngx_uint_t *held);
static ngx_int_t ngx_http_ai_tr_release_calls(ngx_http_ai_stream_t *st,
    cJSON *delta, cJSON **calls, ngx_uint_t *pos, ngx_uint_t choice,
    ngx_uint_t except);
static ngx_int_t ngx_http_ai_tr_filter_input(ngx_http_ai_stream_t *st,
    cJSON *block, ngx_uint_t index);
static ngx_uint_t ngx_http_ai_tr_bare_call(cJSON *call);
static ngx_uint_t ngx_http_ai_tr_empty_delta(cJSON *delta);
static ngx_int_t ngx_http_ai_tr_release_text(ngx_http_ai_stream_t *st,
    ngx_uint_t index, ngx_uint_t choice_index, const char *name);
static ngx_int_t ngx_http_ai_tr_filter_run(ngx_http_ai_stream_t *st,
    ngx_http_ai_delta_t *d);
static char *ngx_http_ai_tr_cstr(ngx_http_ai_stream_t *st, ngx_str_t *s);
static ngx_uint_t ngx_http_ai_tr_index(cJSON *obj, const char *name,
    ngx_uint_t dflt);
static ngx_uint_t ngx_http_ai_tr_only(cJSON *obj, const char *name);
static void ngx_http_ai_tr_set_open(ngx_http_ai_stream_t *st,
    ngx_uint_t index, ngx_uint_t open, ngx_uint_t tool);
static cJSON *ngx_http_ai_tr_first(ngx_http_ai_stream_t *st, cJSON *obj,
    const char *name);
static ngx_int_t ngx_http_ai_tr_flush_anthropic(ngx_http_ai_stream_t *st,
    ngx_uint_t index, ngx_uint_t tool);
static ngx_int_t ngx_http_ai_tr_flush_all_anthropic(
    ngx_http_ai_stream_t *st);


/*
 * An OpenAI chunk (the pivot, or the door's own): each choice's content.
 * *skip: nothing is left to send (all of it held, nothing else in it).
 */

ngx_int_t
ngx_http_ai_tr_filter_chunk(ngx_http_ai_stream_t *st, cJSON *chunk,
    ngx_uint_t *skip)
{
    cJSON       *choices, *choice, *delta, *content, *finish, *usage, *calls,
                *side, *blocks;
    ngx_int_t    rc;
    ngx_uint_t   i, k, index, last, empty, kept, keep, held, slot, filtered,
                 side_last, ends;

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

        if (!cJSON_IsObject(delta)) {
            /* no text, nothing held: as it is */
            kept = 1;
            continue;
        }

        content = ngx_http_ai_tr_first(st, delta, "content");
        calls = ngx_http_ai_tr_first(st, delta, "tool_calls");
        finish = ngx_http_ai_tr_first(st, choice, "finish_reason");

        /*
         * a text ends with its choice, or where a tool call begins: what
         * is held goes before the call (the Anthropic door closes the
         * text block there)
         */

        last = cJSON_IsString(finish) || cJSON_GetArraySize(calls) > 0;

        keep = 1;
        filtered = 0;

        /*
         * the reasoning, then the refusal: each a text that ends with the
         * choice, the reasoning also where the content or a call begins,
         * or its signature comes (thinking_blocks): what is held of it goes
         * in this chunk, before its content or its signature
         */

        side_last = last || (cJSON_IsString(content)
                             && content->valuestring[0])
                    || ngx_http_ai_json_item(delta, "thinking_blocks")
                       != NULL;

        for (k = 0; k < 2; k++) {
            side = ngx_http_ai_tr_first(st, delta, ngx_http_ai_tr_sides[k]);
            slot = ngx_http_ai_tr_side_slot(index, k);
            ends = (k == 0) ? side_last : (ngx_uint_t) cJSON_IsString(finish);

            if ((cJSON_IsString(side) && side->valuestring[0])
                || (ends && ngx_http_ai_tr_side_is_open(st, slot)))
            {
                rc = ngx_http_ai_tr_filter_text(st, delta,
                                                ngx_http_ai_tr_sides[k],
                                                NGX_HTTP_AI_MAX_FILTERED
                                                + slot, ends, 0, &empty);
                if (rc != NGX_OK) {
                    return rc;
                }

                filtered = 1;
            }
        }

        blocks = ngx_http_ai_json_item(delta, "thinking_blocks");

        if (blocks && blocks->next) {
            /* the thinking's text before its signature, in this chunk too */
            cJSON_DetachItemViaPointer(delta, blocks);
            cJSON_AddItemToArray(delta, blocks);
        }

        if ((cJSON_IsString(content) && content->valuestring[0])
            || (last && ngx_http_ai_tr_is_open(st, index)))
        {
            rc = ngx_http_ai_tr_filter_text(st, delta, "content", index,
                                            last, 0, &empty);
            if (rc != NGX_OK) {
                return rc;
            }

            keep = !empty || last || !ngx_http_ai_tr_only(delta, "content");
        }

        if (filtered) {
            /* all of its texts held: sent if anything else is */
            keep = keep && (last || !ngx_http_ai_tr_empty_delta(delta));
        }

        if (cJSON_IsArray(calls)
            || (cJSON_IsString(finish) && st->tools_open))
        {
            rc = ngx_http_ai_tr_filter_calls(st, delta, calls, index,
                                             cJSON_IsString(finish), &held);
            if (rc != NGX_OK) {
                return rc;
            }

            if (held) {
                /* all its arguments held: sent if anything else is */
                keep = cJSON_IsString(finish)
                       || !ngx_http_ai_tr_empty_delta(delta);
            }
        }

        if (keep) {
            kept = 1;
        }
    }

    usage = ngx_http_ai_json_item(chunk, "usage");

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
    ngx_uint_t   index, empty;

    *action = 0;

    st->changed = 0;

    type = ngx_http_ai_tr_first(st, json, "type");
    (void) ngx_http_ai_tr_first(st, json, "index");
    index = ngx_http_ai_tr_index(json, "index", 0);

    if (ngx_http_ai_tr_is(type, "content_block_delta")) {
        delta = ngx_http_ai_tr_first(st, json, "delta");
        type = ngx_http_ai_tr_first(st, delta, "type");

        if (ngx_http_ai_tr_is(type, "text_delta")) {
            rc = ngx_http_ai_tr_filter_text(st, delta, "text", index, 0, 0,
                                            &empty);

        } else if (ngx_http_ai_tr_is(type, "thinking_delta")) {
            st->thinking[ngx_http_ai_tr_slot(index) / 32] |=
                (uint32_t) 1 << (ngx_http_ai_tr_slot(index) % 32);

            rc = ngx_http_ai_tr_filter_text(st, delta, "thinking", index, 0,
                                            0, &empty);

        } else if (ngx_http_ai_tr_is(type, "input_json_delta")) {
            rc = ngx_http_ai_tr_filter_text(st, delta, "partial_json",
                                            index, 0, 1, &empty);

        } else {
            if (ngx_http_ai_tr_is(type, "signature_delta")
                && ngx_http_ai_tr_is_thinking(st, index))
            {
                /* the thinking held goes before its signature */

                rc = ngx_http_ai_tr_flush_anthropic(st, index, 0);
                if (rc != NGX_OK) {
                    return rc;
                }
            }

            *action = st->changed ? 1 : 0;
            return NGX_OK;
        }

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
        rc = ngx_http_ai_tr_flush_anthropic(st, index, 0);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_ai_tr_flush_anthropic(st, index, 1);
    }

    if (ngx_http_ai_tr_is(type, "message_delta")
        || ngx_http_ai_tr_is(type, "message_stop"))
    {
        return ngx_http_ai_tr_flush_all_anthropic(st);
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
    cJSON       *chunk, *delta, *choices, *choice, *calls;
    ngx_int_t    rc;
    ngx_uint_t   i, pos;

    if (st->door == NGX_HTTP_AI_FMT_ANTHROPIC
        && st->target == NGX_HTTP_AI_FMT_ANTHROPIC)
    {
        return ngx_http_ai_tr_flush_all_anthropic(st);
    }

    /* the side texts (reasoning, refusals) still held, a chunk each */

    for (i = 0; st->side_open && i < NGX_HTTP_AI_MAX_SIDE_FILTERED; i++) {

        if (!ngx_http_ai_tr_side_is_open(st, i)) {
            continue;
        }

        rc = ngx_http_ai_tr_release_text(st, NGX_HTTP_AI_MAX_FILTERED + i,
                                         i / 2, ngx_http_ai_tr_sides[i % 2]);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    for (i = 0; st->open && i < NGX_HTTP_AI_MAX_FILTERED; i++) {

        if (!ngx_http_ai_tr_is_open(st, i)) {
            continue;
        }

        rc = ngx_http_ai_tr_release_text(st, i, i, "content");
        if (rc != NGX_OK) {
            return rc;
        }
    }

    /* the tool calls' held arguments, a chunk per choice */

    for (i = 0; st->tools_open && i < NGX_HTTP_AI_MAX_TOOL_FILTERED;
         i += NGX_HTTP_AI_TOOLS_PER_CHOICE)
    {
        chunk = ngx_http_ai_tr_chunk(st, &delta, NULL);
        if (chunk == NULL) {
            return NGX_ERROR;
        }

        choices = ngx_http_ai_json_item(chunk, "choices");
        choice = cJSON_GetArrayItem(choices, 0);

        calls = NULL;
        pos = 0;

        rc = ngx_http_ai_tr_release_calls(st, delta, &calls, &pos,
                                          i / NGX_HTTP_AI_TOOLS_PER_CHOICE,
                                          NGX_HTTP_AI_MAX_TOOL_FILTERED);

        if (rc == NGX_OK && calls && choice
            && ngx_http_ai_tr_set(choice, "index",
                  cJSON_CreateNumber((double)
                                     (i / NGX_HTTP_AI_TOOLS_PER_CHOICE)))
               != NGX_OK)
        {
            rc = NGX_ERROR;
        }

        if (rc == NGX_OK && calls) {
            if (st->door == NGX_HTTP_AI_FMT_ANTHROPIC) {
                rc = ngx_http_ai_anthropic_stream_from_openai(st, chunk);

            } else {
                rc = ngx_http_ai_tr_out_event(st, NULL, chunk);
            }
        }

        cJSON_Delete(chunk);

        if (rc != NGX_OK) {
            return rc;
        }
    }

    return NGX_OK;
}


/*
 * A text still held at the stream's end (its filter index), released as a
 * chunk of its choice with the text in the delta's name, in the door's
 * format
 */

static ngx_int_t
ngx_http_ai_tr_release_text(ngx_http_ai_stream_t *st, ngx_uint_t index,
    ngx_uint_t choice_index, const char *name)
{
    cJSON                *chunk, *delta, *choices, *choice;
    ngx_int_t             rc;
    ngx_http_ai_delta_t   d;

    ngx_http_ai_tr_set_open(st, index, 0, 0);

    ngx_memzero(&d, sizeof(ngx_http_ai_delta_t));
    d.index = index;
    d.last = 1;

    rc = ngx_http_ai_tr_filter_run(st, &d);
    if (rc != NGX_OK || d.text.len == 0) {
        return rc;
    }

    chunk = ngx_http_ai_tr_chunk(st, &delta, NULL);
    if (chunk == NULL) {
        return NGX_ERROR;
    }

    choices = ngx_http_ai_json_item(chunk, "choices");
    choice = cJSON_GetArrayItem(choices, 0);

    if (ngx_http_ai_tr_add_string(delta, name,
                                  ngx_http_ai_tr_cstr(st, &d.text))
        == NULL
        || (choice
            && ngx_http_ai_tr_set(choice, "index",
                                  cJSON_CreateNumber((double) choice_index))
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

    return rc;
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
    cJSON                 *json, *list, *item, *msg, *type, *calls, *part;
    ngx_int_t              rc;
    ngx_uint_t             i, k, index, empty;
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
            type = ngx_http_ai_tr_first(&st, item, "type");

            if (ngx_http_ai_tr_is(type, "text")) {
                rc = ngx_http_ai_tr_filter_text(&st, item, "text", i, 1, 0,
                                                &empty);

            } else if (ngx_http_ai_tr_is(type, "thinking")) {
                rc = ngx_http_ai_tr_filter_text(&st, item, "thinking", i, 1,
                                                0, &empty);

            } else if (ngx_http_ai_tr_is(type, "tool_use")) {
                rc = ngx_http_ai_tr_filter_input(&st, item, i);
            }

            if (rc != NGX_OK) {
                break;
            }

            i++;
        }

        break;

    case NGX_HTTP_AI_FMT_RESPONSES:

        /*
         * the output_text parts of the message items, an item a text;
         * a function_call item's arguments
         */

        list = ngx_http_ai_tr_first(&st, json, "output");

        cJSON_ArrayForEach(item, list) {
            msg = ngx_http_ai_tr_first(&st, item, "content");

            cJSON_ArrayForEach(part, msg) {
                type = ngx_http_ai_tr_first(&st, part, "type");

                if (rc != NGX_OK) {
                    break;
                }

                if (ngx_http_ai_tr_is(type, "output_text")
                    || ngx_http_ai_tr_is(type, "reasoning_text"))
                {
                    rc = ngx_http_ai_tr_filter_text(&st, part, "text", i, 1,
                                                    0, &empty);

                } else if (ngx_http_ai_tr_is(type, "refusal")) {
                    rc = ngx_http_ai_tr_filter_text(&st, part, "refusal", i,
                                                    1, 0, &empty);
                }
            }

            /* a reasoning item's summary */

            msg = ngx_http_ai_tr_first(&st, item, "summary");

            cJSON_ArrayForEach(part, msg) {
                if (rc == NGX_OK && cJSON_IsString(ngx_http_ai_json_item(part, "text"))) {
                    rc = ngx_http_ai_tr_filter_text(&st, part, "text", i, 1,
                                                    0, &empty);
                }
            }

            if (rc == NGX_OK
                && ngx_http_ai_tr_is(ngx_http_ai_tr_first(&st, item, "type"),
                                     "function_call")
                && cJSON_IsString(ngx_http_ai_tr_first(&st, item,
                                                       "arguments")))
            {
                rc = ngx_http_ai_tr_filter_text(&st, item, "arguments",
                                                ngx_http_ai_tr_tool_slot(i),
                                                1, 1, &empty);
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
            index = ngx_http_ai_tr_index(item, "index", i++);

            if (cJSON_IsString(ngx_http_ai_tr_first(&st, msg, "content")))
            {
                rc = ngx_http_ai_tr_filter_text(&st, msg, "content", index,
                                                1, 0, &empty);
                if (rc != NGX_OK) {
                    break;
                }
            }

            /*
             * the reasoning and the refusal the client reads too, each a
             * text of its own (indexes past the contents')
             */

            for (k = 0; rc == NGX_OK && k < 2; k++) {
                if (cJSON_IsString(ngx_http_ai_tr_first(&st, msg,
                                                   ngx_http_ai_tr_sides[k])))
                {
                    rc = ngx_http_ai_tr_filter_text(&st, msg,
                             ngx_http_ai_tr_sides[k],
                             NGX_HTTP_AI_MAX_FILTERED
                             + ngx_http_ai_tr_side_slot(index, k),
                             1, 0, &empty);
                }
            }

            if (rc != NGX_OK) {
                break;
            }

            calls = ngx_http_ai_tr_first(&st, msg, "tool_calls");

            if (cJSON_IsArray(calls)) {
                rc = ngx_http_ai_tr_filter_calls(&st, msg, calls, index, 1,
                                                 &empty);
                if (rc != NGX_OK) {
                    break;
                }
            }
        }
    }

    if (rc == NGX_ABORT) {
        *abort = st.abort;

    } else if (rc == NGX_OK
               && (st.changed
                   || ngx_http_ai_json_has(body, "\\u0000")))
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
    const char *name, ngx_uint_t index, ngx_uint_t last, ngx_uint_t tool,
    ngx_uint_t *empty)
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
    d.tool = tool;

    if (cJSON_IsString(item)) {
        d.text.data = (u_char *) item->valuestring;
        d.text.len = ngx_strlen(item->valuestring);
    }

    rc = ngx_http_ai_tr_filter_run(st, &d);
    if (rc != NGX_OK) {
        return rc;
    }

    ngx_http_ai_tr_set_open(st, index, !last, tool);

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


/*
 * A block's held text or arguments, as a delta event of the block,
 * before its end
 */

static ngx_int_t
ngx_http_ai_tr_flush_anthropic(ngx_http_ai_stream_t *st, ngx_uint_t index,
    ngx_uint_t tool)
{
    char                 *s;
    cJSON                *json, *delta;
    ngx_int_t             rc;
    ngx_uint_t            thinking;
    ngx_http_ai_delta_t   d;

    if (tool ? !ngx_http_ai_tr_tool_is_open(st, index)
             : !ngx_http_ai_tr_is_open(st, index))
    {
        return NGX_OK;
    }

    ngx_http_ai_tr_set_open(st, index, 0, tool);

    thinking = !tool && ngx_http_ai_tr_is_thinking(st, index);

    ngx_memzero(&d, sizeof(ngx_http_ai_delta_t));
    d.index = index;
    d.last = 1;
    d.tool = tool;

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
        && ngx_http_ai_tr_add_string(delta, "type",
                                     tool ? "input_json_delta"
                                     : thinking ? "thinking_delta"
                                     : "text_delta")
           != NULL
        && ngx_http_ai_tr_add_string(delta, tool ? "partial_json"
                                            : thinking ? "thinking" : "text",
                                     s)
           != NULL)
    {
        rc = ngx_http_ai_tr_out_event(st, "content_block_delta", json);
    }

    cJSON_Delete(json);

    return rc;
}


/* every block's held text and arguments, at the message's end */

static ngx_int_t
ngx_http_ai_tr_flush_all_anthropic(ngx_http_ai_stream_t *st)
{
    ngx_int_t   rc;
    ngx_uint_t  i;

    for (i = 0; st->open && i < NGX_HTTP_AI_MAX_FILTERED; i++) {
        rc = ngx_http_ai_tr_flush_anthropic(st, i, 0);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    for (i = 0; st->tools_open && i < NGX_HTTP_AI_MAX_TOOL_FILTERED; i++) {
        rc = ngx_http_ai_tr_flush_anthropic(st, i, 1);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    return NGX_OK;
}


/*
 * An OpenAI choice's tool calls (a chunk's delta, or a whole message):
 * each call's arguments through the filters, the held arguments of the
 * choice's other calls released (as arguments deltas of theirs) before a
 * call's first, and all of them at the choice's end (finish).  A call
 * whose arguments were all held, with nothing else in it, is dropped;
 * *held: all of them were.
 */

static ngx_int_t
ngx_http_ai_tr_filter_calls(ngx_http_ai_stream_t *st, cJSON *delta,
    cJSON *calls, ngx_uint_t choice, ngx_uint_t finish, ngx_uint_t *held)
{
    cJSON       *call, *next, *fn;
    ngx_int_t    rc;
    ngx_uint_t   pos, slot, empty, had;

    *held = 0;

    if (!cJSON_IsArray(calls)) {
        calls = NULL;
    }

    had = (cJSON_GetArraySize(calls) > 0);
    pos = 0;

    for (call = calls ? calls->child : NULL; call; call = next) {
        next = call->next;

        (void) ngx_http_ai_tr_first(st, call, "index");
        slot = ngx_http_ai_tr_tool_slot(choice * NGX_HTTP_AI_TOOLS_PER_CHOICE
                                  + ngx_http_ai_tr_index(call, "index", 0));

        rc = ngx_http_ai_tr_release_calls(st, delta, &calls, &pos, choice,
                                          slot);
        if (rc != NGX_OK) {
            return rc;
        }

        fn = ngx_http_ai_tr_first(st, call, "function");

        if (cJSON_IsString(ngx_http_ai_tr_first(st, fn, "arguments"))) {
            rc = ngx_http_ai_tr_filter_text(st, fn, "arguments", slot,
                                            st->plain, 1, &empty);
            if (rc != NGX_OK) {
                return rc;
            }

            if (empty && !st->plain && ngx_http_ai_tr_bare_call(call)) {
                cJSON_Delete(cJSON_DetachItemViaPointer(calls, call));
                st->changed = 1;
                continue;
            }
        }

        pos++;
    }

    if (finish) {
        rc = ngx_http_ai_tr_release_calls(st, delta, &calls, &pos, choice,
                                          NGX_HTTP_AI_MAX_TOOL_FILTERED);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    if (had && cJSON_GetArraySize(calls) == 0) {
        cJSON_DeleteItemFromObjectCaseSensitive(delta, "tool_calls");
        *held = 1;
    }

    return NGX_OK;
}


/*
 * The held arguments of a choice's calls but one (except), each as an
 * arguments delta of its call inserted at *pos of calls (made when there
 * are none)
 */

static ngx_int_t
ngx_http_ai_tr_release_calls(ngx_http_ai_stream_t *st, cJSON *delta,
    cJSON **calls, ngx_uint_t *pos, ngx_uint_t choice, ngx_uint_t except)
{
    char                 *s;
    cJSON                *call, *fn;
    ngx_int_t             rc;
    ngx_uint_t            slot, first, end;
    ngx_http_ai_delta_t   d;

    first = ngx_http_ai_tr_tool_slot(choice * NGX_HTTP_AI_TOOLS_PER_CHOICE);
    end = ngx_min(first + NGX_HTTP_AI_TOOLS_PER_CHOICE,
                  NGX_HTTP_AI_MAX_TOOL_FILTERED);

    for (slot = first; st->tools_open && slot < end; slot++) {

        if (slot == except || !ngx_http_ai_tr_tool_is_open(st, slot)) {
            continue;
        }

        ngx_http_ai_tr_set_open(st, slot, 0, 1);

        ngx_memzero(&d, sizeof(ngx_http_ai_delta_t));
        d.index = slot;
        d.last = 1;
        d.tool = 1;

        rc = ngx_http_ai_tr_filter_run(st, &d);
        if (rc != NGX_OK) {
            return rc;
        }

        if (d.text.len == 0) {
            continue;
        }

        s = ngx_http_ai_tr_cstr(st, &d.text);
        if (s == NULL) {
            return NGX_ERROR;
        }

        if (*calls == NULL) {
            *calls = cJSON_AddArrayToObject(delta, "tool_calls");
            if (*calls == NULL) {
                return NGX_ERROR;
            }
        }

        call = cJSON_CreateObject();
        if (call == NULL) {
            return NGX_ERROR;
        }

        if (cJSON_AddNumberToObject(call, "index", (double) (slot - first))
            == NULL
            || (fn = cJSON_AddObjectToObject(call, "function")) == NULL
            || ngx_http_ai_tr_add_string(fn, "arguments", s) == NULL
            || !cJSON_InsertItemInArray(*calls, (int) *pos, call))
        {
            cJSON_Delete(call);
            return NGX_ERROR;
        }

        (*pos)++;
        st->changed = 1;
    }

    return NGX_OK;
}


/*
 * A tool_use block's input (an object) through the filters, as its JSON
 * text: the block's input is what they let through, parsed again
 */

static ngx_int_t
ngx_http_ai_tr_filter_input(ngx_http_ai_stream_t *st, cJSON *block,
    ngx_uint_t index)
{
    char                 *s;
    cJSON                *input, *json;
    ngx_int_t             rc;
    ngx_http_ai_delta_t   d;

    input = ngx_http_ai_tr_first(st, block, "input");

    if (!cJSON_IsObject(input)) {
        return NGX_OK;
    }

    s = cJSON_PrintUnformatted(input);
    if (s == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(&d, sizeof(ngx_http_ai_delta_t));
    d.index = ngx_http_ai_tr_tool_slot(index);
    d.last = 1;
    d.tool = 1;
    d.text.data = (u_char *) s;
    d.text.len = ngx_strlen(s);

    rc = ngx_http_ai_tr_filter_run(st, &d);

    if (rc == NGX_OK
        && (d.text.data != (u_char *) s || d.text.len != ngx_strlen(s)))
    {
        json = cJSON_ParseWithLength((const char *) d.text.data, d.text.len);

        if (!cJSON_IsObject(json)) {
            cJSON_Delete(json);
            rc = NGX_ERROR;

        } else {
            rc = ngx_http_ai_tr_set(block, "input", json);
            st->changed = 1;
        }
    }

    cJSON_free(s);

    return rc;
}


/* a call that carries arguments only, and its index */

static ngx_uint_t
ngx_http_ai_tr_bare_call(cJSON *call)
{
    cJSON  *item;

    cJSON_ArrayForEach(item, call) {
        if (item->string == NULL) {
            return 0;
        }

        if (ngx_strcmp(item->string, "index") == 0) {
            continue;
        }

        if (ngx_strcmp(item->string, "function") != 0
            || !ngx_http_ai_tr_only(item, "arguments"))
        {
            return 0;
        }
    }

    return 1;
}


/* a delta that carries nothing: no member, or an empty content only */

static ngx_uint_t
ngx_http_ai_tr_empty_delta(cJSON *delta)
{
    cJSON  *item;

    cJSON_ArrayForEach(item, delta) {
        if (item->string == NULL
            || (ngx_strcmp(item->string, "content") != 0
                && ngx_strcmp(item->string, "reasoning_content") != 0
                && ngx_strcmp(item->string, "refusal") != 0)
            || !(cJSON_IsNull(item)
                 || (cJSON_IsString(item) && item->valuestring[0] == '\0')))
        {
            return 0;
        }
    }

    return 1;
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


/*
 * a text or a call's arguments (tool) begun (open) or ended: st->open and
 * st->tools_open count those begun
 */

static void
ngx_http_ai_tr_set_open(ngx_http_ai_stream_t *st, ngx_uint_t index,
    ngx_uint_t open, ngx_uint_t tool)
{
    uint32_t     bit, *word;
    ngx_uint_t   slot, *count;

    if (tool) {
        slot = ngx_http_ai_tr_tool_slot(index);
        word = &st->tools_opened[slot / 32];
        count = &st->tools_open;

    } else if (index >= NGX_HTTP_AI_MAX_FILTERED) {
        /* a side text: its slot past the texts' */
        slot = ngx_min(index - NGX_HTTP_AI_MAX_FILTERED,
                       NGX_HTTP_AI_MAX_SIDE_FILTERED - 1);
        word = &st->side_opened[slot / 32];
        count = &st->side_open;

    } else {
        slot = ngx_http_ai_tr_slot(index);
        word = &st->opened[slot / 32];
        count = &st->open;
    }

    bit = (uint32_t) 1 << (slot % 32);

    if (open && !(*word & bit)) {
        *word |= bit;
        (*count)++;

    } else if (!open && (*word & bit)) {
        *word &= ~bit;
        (*count)--;
    }
}
