
/*
 * Copyright (C) AI Gateway authors
 *
 * The stream translators' fast path: most events of a translated stream
 * are one text delta, and for those the translator writes the door's
 * event from a template around the text, found by a scanner that neither
 * allocates nor copies (no cJSON tree to build, print and free).  It
 * applies only when the output is the one the general path would write,
 * byte for byte: the text has no escape (then cJSON would print it as it
 * came), the stream's id and model need none, the event has nothing else
 * the general path would act on, and no delta filter is attached.  Any
 * other event goes the general way.
 *
 * A stream's text events differ in their text only (the same id, model,
 * index, the same nulls): once the scanner read one as a plain text
 * event, its bytes before and after the text are kept (its shape), and
 * an event of those same bytes around a text that needs no escape is that
 * event with another text: it is written at once, not read again.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_ai_core_format.h"
#include "ngx_http_ai_core_json.h"


/* a member a plain request may have: its name and cJSON types */

typedef struct {
    const char                 *name;
    int                         type;
} ngx_http_ai_tr_fast_field_t;


#define NGX_HTTP_AI_FAST_ROLE_OTHER   0
#define NGX_HTTP_AI_FAST_ROLE_NONE    1
#define NGX_HTTP_AI_FAST_ROLE_SYSTEM  2
#define NGX_HTTP_AI_FAST_ROLE_TURN    3


static ngx_int_t ngx_http_ai_tr_fast_message_start(ngx_http_ai_stream_t *st,
    ngx_str_t *msg);
static ngx_int_t ngx_http_ai_tr_fast_anthropic_delta(
    ngx_http_ai_stream_t *st, ngx_str_t *name, ngx_str_t *data);
static ngx_int_t ngx_http_ai_json_text(ngx_str_t *value, ngx_str_t *text);
static ngx_int_t ngx_http_ai_tr_fast_to_openai(ngx_pool_t *pool,
    ngx_http_ai_translate_request_t *req, cJSON *json, ngx_str_t *body);
static ngx_int_t ngx_http_ai_tr_fast_to_anthropic(ngx_pool_t *pool,
    ngx_http_ai_translate_request_t *req, cJSON *json, ngx_str_t *body);
static ngx_int_t ngx_http_ai_tr_fast_fields(cJSON *json,
    const ngx_http_ai_tr_fast_field_t *t, cJSON **found);
static ngx_int_t ngx_http_ai_tr_fast_message(cJSON *m, cJSON **role,
    cJSON **content);
static ngx_uint_t ngx_http_ai_tr_fast_role(cJSON *role, cJSON *content);
static size_t ngx_http_ai_tr_fast_message_size(cJSON *role, cJSON *content);
static u_char *ngx_http_ai_tr_fast_message_write(u_char *p, cJSON *role,
    cJSON *content);
static u_char *ngx_http_ai_tr_fast_begin(ngx_pool_t *pool,
    ngx_http_ai_translate_request_t *req, cJSON *model, size_t len,
    ngx_str_t *body);
static ngx_uint_t ngx_http_ai_tr_fast_names(ngx_http_ai_stream_t *st);
static ngx_int_t ngx_http_ai_tr_fast_prefix(ngx_http_ai_stream_t *st,
    const char *head, const char *num, size_t n, const char *tail);
static ngx_int_t ngx_http_ai_tr_fast_chunk(ngx_http_ai_stream_t *st);
static ngx_int_t ngx_http_ai_tr_fast_head(ngx_http_ai_stream_t *st);
static ngx_int_t ngx_http_ai_tr_fast_shape(ngx_http_ai_stream_t *st,
    ngx_str_t *data, ngx_str_t *text);
static ngx_int_t ngx_http_ai_tr_fast_learn(ngx_http_ai_stream_t *st,
    ngx_str_t *data, ngx_str_t *token);
static ngx_int_t ngx_http_ai_tr_fast_text(ngx_http_ai_stream_t *st,
    ngx_str_t *text, const char *tail, size_t len);


/* the longest shape kept: an event's bytes but its text */
#define NGX_HTTP_AI_TR_SHAPE_MAX  1024

/* an OpenAI text chunk after its text */
#define NGX_HTTP_AI_TR_CHUNK_TAIL                                            \
    "\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n"


/*
 * OpenAI chunk -> Anthropic events, once message_start went: a chunk of
 * one choice whose delta holds text and nothing else but nulls, or none
 * (the finish chunk), with a finish reason or not; or the usage chunk
 * ("choices":[] and a usage object).  Written as the general path writes
 * them (ngx_http_ai_anthropic_stream_from_openai()): the text block begun
 * if none is open, the text's content_block_delta, the block's stop at
 * the finish; the usage taken as ngx_http_ai_usage_object() takes it.
 * NGX_DECLINED: not for the fast path (a role, tool calls, thinking, an
 * escape, an error, several choices: the general path).
 */

ngx_int_t
ngx_http_ai_tr_fast_openai(ngx_http_ai_stream_t *st, ngx_str_t *data)
{
    int                       n;
    u_char                   *p, *end;
    ngx_int_t                 rc;
    ngx_str_t                 key, value, delta, text, v, finish, usage, id,
                              content;
    size_t                    at, known;
    ngx_uint_t                choices, empty, seen, reasons, ids,
                              contents, resume;
    ngx_http_ai_usage_t       u;
    ngx_http_ai_json_iter_t   top, it;
    u_char                    reason[32];

    if (st->filter || st->aborted || st->done || st->error
        || st->door != NGX_HTTP_AI_FMT_ANTHROPIC
        || (st->block >= 0 && st->block_type != NGX_HTTP_AI_BLOCK_TEXT))
    {
        return NGX_DECLINED;
    }

    if (st->shaped && st->started && st->block >= 0
        && st->fast_block == st->block
        && ngx_http_ai_tr_fast_shape(st, data, &text) == NGX_OK)
    {
        /* the last text event's shape: a text in the open block */
        return ngx_http_ai_tr_fast_text(st, &text, "\"}}\n\n",
                                        sizeof("\"}}\n\n") - 1);
    }

    end = data->data + data->len;

    /*
     * the bytes before the choices of an event read before: its members
     * there are read as they were (an id, no usage), the walk begins at
     * the choices
     */

    resume = (st->started && st->fast_top_len
              && data->len > st->fast_top_len
              && ngx_memcmp(data->data, st->fast_top, st->fast_top_len)
                 == 0);

    if (resume) {
        top.pos = data->data + st->fast_top_len;
        top.end = end;
        top.more = 0;

    } else {
        p = ngx_http_ai_json_space(data->data, end);

        if (ngx_http_ai_json_object(&top, p, end) != NGX_OK) {
            return NGX_DECLINED;
        }
    }

    at = 0;

    ngx_str_null(&delta);
    ngx_str_null(&finish);
    ngx_str_null(&usage);
    ngx_str_null(&content);
    choices = 0;
    empty = 0;
    seen = 0;
    reasons = 0;
    ids = 0;
    ngx_str_null(&id);

    for ( ;; ) {

        if (resume) {
            resume = 0;
            ngx_str_set(&key, "choices");

        } else if ((rc = ngx_http_ai_json_next_key(&top, &key)) != NGX_OK) {
            break;
        }

        if (!ngx_http_ai_json_key(&key, "choices")) {

            if (seen == 0 && top.pos < end && *top.pos == '{'
                && ngx_http_ai_json_key(&key, "usage")
                && (known = ngx_http_ai_usage_known(NGX_HTTP_AI_FMT_OPENAI,
                                                    top.pos, end,
                                                    &st->usage)))
            {
                /* the usage the core has just read: not scanned again */

                usage.data = top.pos;
                usage.len = known;
                seen++;

                if (ngx_http_ai_json_after(&top, top.pos + known) != NGX_OK)
                {
                    return NGX_DECLINED;
                }

                continue;
            }

            if (ngx_http_ai_json_value(&top, &value) != NGX_OK
                || ngx_http_ai_json_key(&key, "error"))
            {
                return NGX_DECLINED;
            }

            if (ngx_http_ai_json_key(&key, "id") && ids++ == 0) {
                id = value;
            }

            if (ngx_http_ai_json_key(&key, "usage")) {

                /* once (cJSON takes the first), null or an object */

                if (seen++) {
                    return NGX_DECLINED;
                }

                if (ngx_http_ai_json_key(&value, "null")) {
                    continue;
                }

                if (value.data[0] != '{') {
                    return NGX_DECLINED;
                }

                usage = value;
            }

            continue;
        }

        /*
         * the choices read in place, not skipped first: none, or exactly
         * one, an object, whose delta is kept (a key twice: cJSON takes
         * the first, the general path)
         */

        if (choices++) {
            return NGX_DECLINED;
        }

        p = top.pos;

        if (p >= end || *p != '[') {
            return NGX_DECLINED;
        }

        if (seen == 0) {
            /* what comes before: members of no effect but an id */
            at = p - data->data;
        }

        p = ngx_http_ai_json_space(p + 1, end);

        if (p < end && *p == ']') {
            empty = 1;

            if (ngx_http_ai_json_after(&top, p + 1) != NGX_OK) {
                return NGX_DECLINED;
            }

            continue;
        }

        if (ngx_http_ai_json_object(&it, p, end) != NGX_OK) {
            return NGX_DECLINED;
        }

        while ((rc = ngx_http_ai_json_next(&it, &key, &value)) == NGX_OK) {

            if (ngx_http_ai_json_key(&key, "delta")) {
                if (delta.len) {
                    return NGX_DECLINED;
                }

                delta = value;

            } else if (ngx_http_ai_json_key(&key, "finish_reason")) {
                if (reasons++) {
                    return NGX_DECLINED;
                }

                if (ngx_http_ai_json_key(&value, "null")) {
                    continue;
                }

                /* a string printed as it is, short: else the general way */

                if (ngx_http_ai_json_text(&value, &finish) != NGX_OK
                    || finish.len >= sizeof(reason))
                {
                    return NGX_DECLINED;
                }
            }
        }

        p = (rc == NGX_DONE) ? ngx_http_ai_json_space(it.pos + 1, end)
                             : NULL;

        if (p == NULL || p >= end || *p != ']'
            || ngx_http_ai_json_after(&top, p + 1) != NGX_OK)
        {
            return NGX_DECLINED;
        }
    }

    if (rc != NGX_DONE
        || ngx_http_ai_json_space(top.pos + 1, end) != end
        || choices != 1)
    {
        return NGX_DECLINED;
    }

    ngx_str_null(&text);

    if (!empty) {

        /* a choice: its delta an object (or absent at the finish) */

        if (delta.len == 0) {
            if (finish.data == NULL) {
                return NGX_DECLINED;
            }

        } else {
            if (ngx_http_ai_json_object(&it, delta.data,
                                        delta.data + delta.len)
                != NGX_OK)
            {
                return NGX_DECLINED;
            }

            contents = 0;

            while ((rc = ngx_http_ai_json_next(&it, &key, &v)) == NGX_OK) {

                if (ngx_http_ai_json_key(&key, "content")) {

                    /* once (cJSON takes the first, a null too) */

                    if (contents++) {
                        return NGX_DECLINED;
                    }

                    if (ngx_http_ai_json_key(&v, "null")) {
                        continue;
                    }

                    if (ngx_http_ai_json_text(&v, &text) != NGX_OK) {
                        return NGX_DECLINED;
                    }

                    content = v;
                    continue;
                }

                if (ngx_http_ai_json_key(&v, "null")
                    || ngx_http_ai_json_key(&key, "role"))
                {
                    /* (the role is not the Anthropic door's) */
                    continue;
                }

                /* tool calls, a refusal, thinking: the general path */
                return NGX_DECLINED;
            }

            if (rc != NGX_DONE) {
                return NGX_DECLINED;
            }
        }
    }

    if (usage.len) {
        u = st->usage;

        if (ngx_http_ai_usage_raw(NGX_HTTP_AI_FMT_OPENAI, &usage, &u)
            != NGX_OK)
        {
            /* an odd one (an escape, a long number): cJSON reads it */
            return NGX_DECLINED;
        }

        st->usage = u;
    }

    if (!st->started) {
        /*
         * message_start, as ngx_http_ai_anthropic_start() makes it: the
         * chunk's id (a string printed as it is), or a new one
         */

        if (st->id == NULL) {
            if (id.len && id.data[0] == '"') {
                if (ngx_http_ai_json_text(&id, &v) != NGX_OK) {
                    return NGX_DECLINED;
                }

                st->id = ngx_http_ai_tr_strdup(st->pool, (char *) v.data,
                                               v.len);

            } else {
                st->id = ngx_http_ai_tr_gen_id(st->pool, "msg_");
            }

            if (st->id == NULL) {
                return NGX_ERROR;
            }
        }

        if (ngx_http_ai_anthropic_start_out(st) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (text.len) {

        if (st->block < 0) {
            /* what ngx_http_ai_anthropic_block_start() prints for text */

            st->block = st->nblocks++;
            st->block_type = NGX_HTTP_AI_BLOCK_TEXT;

            n = ngx_http_ai_tr_fast_int(st->fast, (int64_t) st->block);

            if (ngx_http_ai_tr_out(st, "event: content_block_start\n"
                                   "data: {\"type\":\"content_block_start\","
                                   "\"index\":",
                                   sizeof("event: content_block_start\n"
                                          "data: {\"type\":"
                                          "\"content_block_start\","
                                          "\"index\":") - 1)
                != NGX_OK
                || ngx_http_ai_tr_out(st, st->fast, n) != NGX_OK
                || ngx_http_ai_tr_out(st, ",\"content_block\":{\"type\":"
                                      "\"text\",\"text\":\"\"}}\n\n",
                                      sizeof(",\"content_block\":{\"type\":"
                                             "\"text\",\"text\":\"\"}}\n\n")
                                      - 1)
                   != NGX_OK)
            {
                return NGX_ERROR;
            }
        }

        if (finish.data == NULL && usage.len == 0
            && ngx_http_ai_tr_fast_learn(st, data, &content) != NGX_OK)
        {
            return NGX_ERROR;
        }

        /*
         * what ngx_http_ai_anthropic_block_delta() prints: all but the
         * text made once a block
         */

        if (st->fast_block != st->block) {
            n = ngx_http_ai_tr_fast_int(st->fast, (int64_t) st->block);

            if (ngx_http_ai_tr_fast_prefix(st, "event: content_block_delta\n"
                                   "data: {\"type\":\"content_block_delta\","
                                   "\"index\":", st->fast, n,
                                   ",\"delta\":{\"type\":\"text_delta\","
                                   "\"text\":\"")
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            st->fast_block = st->block;
        }

        if (ngx_http_ai_tr_fast_text(st, &text, "\"}}\n\n",
                                     sizeof("\"}}\n\n") - 1)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (finish.data) {

        if (st->block >= 0) {
            /* what ngx_http_ai_anthropic_block_stop() prints */

            n = ngx_http_ai_tr_fast_int(st->fast, (int64_t) st->block);

            st->block = -1;
            st->block_type = NGX_HTTP_AI_BLOCK_NONE;

            if (ngx_http_ai_tr_out(st, "event: content_block_stop\n"
                                   "data: {\"type\":\"content_block_stop\","
                                   "\"index\":",
                                   sizeof("event: content_block_stop\n"
                                          "data: {\"type\":"
                                          "\"content_block_stop\","
                                          "\"index\":") - 1)
                != NGX_OK
                || ngx_http_ai_tr_out(st, st->fast, n) != NGX_OK
                || ngx_http_ai_tr_out(st, "}\n\n", sizeof("}\n\n") - 1)
                   != NGX_OK)
            {
                return NGX_ERROR;
            }
        }

        ngx_memcpy(reason, finish.data, finish.len);
        reason[finish.len] = '\0';

        st->stop_reason = ngx_http_ai_tr_reason(NGX_HTTP_AI_FMT_ANTHROPIC,
                                                NGX_HTTP_AI_FMT_OPENAI,
                                                (const char *) reason);
    }

    if (at && st->fast_top_len == 0 && st->started) {
        /* the bytes before the choices, kept for the events after */

        st->fast_top = ngx_pnalloc(st->pool, at);
        if (st->fast_top == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(st->fast_top, data->data, at);
        st->fast_top_len = at;
    }

    return NGX_OK;
}


/*
 * Anthropic event -> OpenAI chunks, once the role chunk went: a text
 * delta (ngx_http_ai_tr_fast_anthropic_delta()), or one of the events
 * around the text that need no tree: ping, content_block_stop, a text
 * block's start with no text (nothing written), message_delta (its usage
 * taken, the finish chunk written), message_stop (the close).  As
 * ngx_http_ai_anthropic_stream_to_openai() does them, by the data's
 * "type", not the event's name.  NGX_DECLINED: not for the fast path.
 */

ngx_int_t
ngx_http_ai_tr_fast_anthropic(ngx_http_ai_stream_t *st, ngx_str_t *name,
    ngx_str_t *data)
{
    u_char                   *p, *end;
    ngx_int_t                 rc;
    ngx_str_t                 key, value, type, block, delta, usage, s, msg;
    ngx_uint_t                types, blocks, deltas, usages, stops, msgs;
    ngx_http_ai_usage_t       u;
    ngx_http_ai_json_iter_t   it;
    u_char                    reason[32];

    if (st->filter || st->aborted || st->done || st->error
        || st->door != NGX_HTTP_AI_FMT_OPENAI)
    {
        return NGX_DECLINED;
    }

    if (ngx_http_ai_json_key(name, "content_block_delta")) {
        return ngx_http_ai_tr_fast_anthropic_delta(st, name, data);
    }

    end = data->data + data->len;

    p = ngx_http_ai_json_space(data->data, end);

    if (ngx_http_ai_json_object(&it, p, end) != NGX_OK) {
        return NGX_DECLINED;
    }

    ngx_str_null(&type);
    ngx_str_null(&block);
    ngx_str_null(&delta);
    ngx_str_null(&usage);
    ngx_str_null(&msg);
    types = 0;
    blocks = 0;
    deltas = 0;
    usages = 0;
    msgs = 0;

    /* each member once (cJSON takes the first of a name twice) */

    while ((rc = ngx_http_ai_json_next(&it, &key, &value)) == NGX_OK) {

        if (ngx_http_ai_json_key(&key, "type")) {
            if (types++) {
                return NGX_DECLINED;
            }

            type = value;

        } else if (ngx_http_ai_json_key(&key, "content_block")) {
            if (blocks++) {
                return NGX_DECLINED;
            }

            block = value;

        } else if (ngx_http_ai_json_key(&key, "delta")) {
            if (deltas++) {
                return NGX_DECLINED;
            }

            delta = value;

        } else if (ngx_http_ai_json_key(&key, "usage")) {
            if (usages++) {
                return NGX_DECLINED;
            }

            usage = value;

        } else if (ngx_http_ai_json_key(&key, "message")) {
            if (msgs++) {
                return NGX_DECLINED;
            }

            msg = value;
        }
    }

    if (rc != NGX_DONE || ngx_http_ai_json_space(it.pos + 1, end) != end) {
        return NGX_DECLINED;
    }

    if (ngx_http_ai_json_key(&type, "\"message_start\"")) {
        return ngx_http_ai_tr_fast_message_start(st, &msg);
    }

    if (!st->role) {
        /* (the general path writes the role chunk first) */
        return NGX_DECLINED;
    }

    if (ngx_http_ai_json_key(&type, "\"ping\"")
        || ngx_http_ai_json_key(&type, "\"content_block_stop\""))
    {
        return NGX_OK;
    }

    if (ngx_http_ai_json_key(&type, "\"message_stop\"")) {
        if (ngx_http_ai_tr_emit_finish(st, st->finish
                                           ? st->finish
                                           : ngx_http_ai_tr_reason(
                                                 NGX_HTTP_AI_FMT_OPENAI,
                                                 NGX_HTTP_AI_FMT_ANTHROPIC,
                                                 "end_turn"))
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        return ngx_http_ai_tr_emit_close(st);
    }

    if (ngx_http_ai_json_key(&type, "\"content_block_start\"")) {

        /* a text block, empty: nothing to write (else the general way) */

        if (ngx_http_ai_json_object(&it, block.data, block.data + block.len)
            != NGX_OK)
        {
            return NGX_DECLINED;
        }

        ngx_str_null(&type);
        ngx_str_null(&s);
        types = 0;
        stops = 0;

        while ((rc = ngx_http_ai_json_next(&it, &key, &value)) == NGX_OK) {

            if (ngx_http_ai_json_key(&key, "type")) {
                if (types++) {
                    return NGX_DECLINED;
                }

                type = value;

            } else if (ngx_http_ai_json_key(&key, "text")) {
                if (stops++) {
                    return NGX_DECLINED;
                }

                s = value;
            }
        }

        if (rc != NGX_DONE || !ngx_http_ai_json_key(&type, "\"text\"")
            || !(s.len == 0 || ngx_http_ai_json_key(&s, "\"\"")
                 || ngx_http_ai_json_key(&s, "null")))
        {
            return NGX_DECLINED;
        }

        return NGX_OK;
    }

    if (!ngx_http_ai_json_key(&type, "\"message_delta\"")) {
        return NGX_DECLINED;
    }

    /* message_delta: the usage, then the stop reason's finish chunk */

    if (usage.len && !ngx_http_ai_json_key(&usage, "null")) {
        if (usage.data[0] != '{') {
            return NGX_DECLINED;
        }

        u = st->usage;

        if (ngx_http_ai_usage_raw(NGX_HTTP_AI_FMT_ANTHROPIC, &usage, &u)
            != NGX_OK)
        {
            return NGX_DECLINED;
        }
    }

    ngx_str_null(&s);

    if (delta.len && delta.data[0] == '{') {

        if (ngx_http_ai_json_object(&it, delta.data, delta.data + delta.len)
            != NGX_OK)
        {
            return NGX_DECLINED;
        }

        stops = 0;

        while ((rc = ngx_http_ai_json_next(&it, &key, &value)) == NGX_OK) {

            if (!ngx_http_ai_json_key(&key, "stop_reason")) {
                continue;
            }

            if (stops++) {
                return NGX_DECLINED;
            }

            if (value.data[0] == '"'
                && (ngx_http_ai_json_text(&value, &s) != NGX_OK
                    || s.len >= sizeof(reason)))
            {
                return NGX_DECLINED;
            }
        }

        if (rc != NGX_DONE) {
            return NGX_DECLINED;
        }
    }

    if (usage.len && !ngx_http_ai_json_key(&usage, "null")) {
        st->usage = u;
    }

    if (s.data == NULL) {
        return NGX_OK;
    }

    ngx_memcpy(reason, s.data, s.len);
    reason[s.len] = '\0';

    if (st->json_answer && ngx_strcmp(reason, "tool_use") == 0) {
        ngx_memcpy(reason, "end_turn", sizeof("end_turn"));
    }

    st->finish = ngx_http_ai_tr_reason(NGX_HTTP_AI_FMT_OPENAI,
                                       NGX_HTTP_AI_FMT_ANTHROPIC,
                                       (const char *) reason);

    return ngx_http_ai_tr_emit_finish(st, st->finish);
}


/*
 * Anthropic content_block_delta with a text_delta -> an OpenAI chunk,
 * once the role chunk went: {"type":"content_block_delta","index":N,
 * "delta":{"type":"text_delta","text":"TEXT"}}.  NGX_DECLINED: not for
 * the fast path.
 */

static ngx_int_t
ngx_http_ai_tr_fast_anthropic_delta(ngx_http_ai_stream_t *st, ngx_str_t *name,
    ngx_str_t *data)
{
    u_char                   *p, *end;
    ngx_int_t                 rc;
    ngx_str_t                 key, value, delta, text, type, token;
    ngx_http_ai_json_iter_t   it;

    if (st->filter || st->aborted || st->done || st->error || !st->role
        || st->door != NGX_HTTP_AI_FMT_OPENAI
        || !ngx_http_ai_json_key(name, "content_block_delta")
        || !ngx_http_ai_tr_fast_names(st))
    {
        return NGX_DECLINED;
    }

    if (st->shaped && st->fast_prefix.len
        && ngx_http_ai_tr_fast_shape(st, data, &text) == NGX_OK)
    {
        /* the last text delta's shape */
        goto text;
    }

    end = data->data + data->len;

    p = ngx_http_ai_json_space(data->data, end);

    if (ngx_http_ai_json_object(&it, p, end) != NGX_OK) {
        return NGX_DECLINED;
    }

    ngx_str_null(&delta);
    ngx_str_null(&type);

    while ((rc = ngx_http_ai_json_next(&it, &key, &value)) == NGX_OK) {

        if (ngx_http_ai_json_key(&key, "delta")) {
            if (delta.len) {
                return NGX_DECLINED;
            }

            delta = value;

        } else if (ngx_http_ai_json_key(&key, "type")) {
            if (type.len) {
                return NGX_DECLINED;
            }

            type = value;
        }
    }

    if (rc != NGX_DONE
        || ngx_http_ai_json_space(it.pos + 1, end) != end
        || !ngx_http_ai_json_key(&type, "\"content_block_delta\"")
        || delta.len == 0
        || ngx_http_ai_json_object(&it, delta.data, delta.data + delta.len)
           != NGX_OK)
    {
        return NGX_DECLINED;
    }

    ngx_str_null(&text);
    ngx_str_null(&type);

    while ((rc = ngx_http_ai_json_next(&it, &key, &value)) == NGX_OK) {

        if (ngx_http_ai_json_key(&key, "type")) {
            if (type.len) {
                return NGX_DECLINED;
            }

            type = value;

        } else if (ngx_http_ai_json_key(&key, "text")) {
            if (text.data || ngx_http_ai_json_text(&value, &text) != NGX_OK) {
                return NGX_DECLINED;
            }

            token = value;
        }
    }

    if (rc != NGX_DONE || !ngx_http_ai_json_key(&type, "\"text_delta\"")
        || text.len == 0)
    {
        return NGX_DECLINED;
    }

    /*
     * what ngx_http_ai_tr_chunk() and the pivot's printing write: all but
     * the text made once a stream (its id, created and model are set)
     */

    if (st->fast_prefix.len == 0 && ngx_http_ai_tr_fast_chunk(st) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_ai_tr_fast_learn(st, data, &token) != NGX_OK) {
        return NGX_ERROR;
    }

text:

    return ngx_http_ai_tr_fast_text(st, &text, NGX_HTTP_AI_TR_CHUNK_TAIL,
                                    sizeof(NGX_HTTP_AI_TR_CHUNK_TAIL) - 1);
}


/*
 * an integer in decimal, as "%lld" prints it, into buf (NGX_INT64_LEN + 1
 * bytes); its length (snprintf() cost more than the rest of an event)
 */

int
ngx_http_ai_tr_fast_int(char *buf, int64_t v)
{
    char      tmp[NGX_INT64_LEN], *p;
    int       n;
    uint64_t  u;

    u = (v < 0) ? (uint64_t) 0 - (uint64_t) v : (uint64_t) v;
    p = tmp + sizeof(tmp);

    do {
        *--p = (char) ('0' + u % 10);
        u /= 10;
    } while (u);

    if (v < 0) {
        *--p = '-';
    }

    n = (int) (tmp + sizeof(tmp) - p);
    ngx_memcpy(buf, p, n);
    buf[n] = '\0';

    return n;
}


/*
 * The event as the kept shape with a text in it: the same bytes before
 * and after a text that needs no escape (no quote, backslash or control
 * character: then it is one string, which cJSON would print as it came).
 */

static ngx_int_t
ngx_http_ai_tr_fast_shape(ngx_http_ai_stream_t *st, ngx_str_t *data,
    ngx_str_t *text)
{
    size_t  head, tail;

    head = st->fast_shape_head;
    tail = st->fast_shape_tail;

    if (data->len <= head + tail
        || ngx_memcmp(data->data, st->fast_shape, head) != 0
        || ngx_memcmp(data->data + data->len - tail,
                      st->fast_shape + head, tail)
           != 0)
    {
        return NGX_DECLINED;
    }

    text->data = data->data + head;
    text->len = data->len - head - tail;

    return ngx_http_ai_tr_verbatim((char *) text->data, text->len)
           ? NGX_OK : NGX_DECLINED;
}


/* a text delta's event: its prefix made once, the text, its tail */

static ngx_int_t
ngx_http_ai_tr_fast_text(ngx_http_ai_stream_t *st, ngx_str_t *text,
    const char *tail, size_t len)
{
    if (ngx_http_ai_tr_out(st, (char *) st->fast_prefix.data,
                           st->fast_prefix.len)
        != NGX_OK
        || ngx_http_ai_tr_out(st, (char *) text->data, text->len) != NGX_OK
        || ngx_http_ai_tr_out(st, tail, len) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The shape of a plain text event the scanner read, kept: its bytes
 * around the text's string token (token: the quotes included), in a
 * buffer of the stream's made once
 */

static ngx_int_t
ngx_http_ai_tr_fast_learn(ngx_http_ai_stream_t *st, ngx_str_t *data,
    ngx_str_t *token)
{
    size_t  head, tail;

    head = token->data + 1 - data->data;
    tail = data->data + data->len - (token->data + token->len - 1);

    if (head + tail > NGX_HTTP_AI_TR_SHAPE_MAX) {
        st->shaped = 0;
        return NGX_OK;
    }

    if (st->fast_shape == NULL) {
        st->fast_shape = ngx_pnalloc(st->pool, NGX_HTTP_AI_TR_SHAPE_MAX);
        if (st->fast_shape == NULL) {
            return NGX_ERROR;
        }
    }

    ngx_memcpy(st->fast_shape, data->data, head);
    ngx_memcpy(st->fast_shape + head, token->data + token->len - 1, tail);

    st->fast_shape_head = head;
    st->fast_shape_tail = tail;
    st->shaped = 1;

    return NGX_OK;
}


/* an Anthropic text delta's event up to its text: head, num, tail */

static ngx_int_t
ngx_http_ai_tr_fast_prefix(ngx_http_ai_stream_t *st, const char *head,
    const char *num, size_t n, const char *tail)
{
    u_char  *p;
    size_t   hlen, tlen;

    hlen = ngx_strlen(head);
    tlen = ngx_strlen(tail);

    if (st->fast_prefix.data == NULL || st->fast_size < hlen + n + tlen) {
        st->fast_size = hlen + n + tlen + NGX_INT64_LEN;

        st->fast_prefix.data = ngx_pnalloc(st->pool, st->fast_size);
        if (st->fast_prefix.data == NULL) {
            return NGX_ERROR;
        }
    }

    p = ngx_cpymem(st->fast_prefix.data, head, hlen);
    p = ngx_cpymem(p, num, n);
    p = ngx_cpymem(p, tail, tlen);

    st->fast_prefix.len = p - st->fast_prefix.data;

    return NGX_OK;
}


/* an OpenAI text chunk up to its text: the head, then the choice's */

static ngx_int_t
ngx_http_ai_tr_fast_chunk(ngx_http_ai_stream_t *st)
{
    u_char  *p;

    static const char  tail[] = "{\"index\":0,\"delta\":{\"content\":\"";

    if (ngx_http_ai_tr_fast_head(st) != NGX_OK) {
        return NGX_ERROR;
    }

    p = ngx_pnalloc(st->pool, st->fast_head.len + sizeof(tail) - 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    st->fast_prefix.data = p;

    p = ngx_cpymem(p, st->fast_head.data, st->fast_head.len);
    p = ngx_cpymem(p, tail, sizeof(tail) - 1);

    st->fast_prefix.len = p - st->fast_prefix.data;
    st->fast_size = st->fast_prefix.len;

    return NGX_OK;
}


/*
 * An OpenAI chunk's head, up to its choices, made once a stream: its id,
 * created and model (which print as they are: checked by the caller)
 */

static ngx_int_t
ngx_http_ai_tr_fast_head(ngx_http_ai_stream_t *st)
{
    int      n;
    u_char  *p;
    size_t   idlen, size;
    char     num[NGX_INT64_LEN + 1];

    static const char  head[] = "data: {\"id\":\"";
    static const char  object[] = "\",\"object\":\"chat.completion.chunk\","
                                  "\"created\":";
    static const char  model[] = ",\"model\":\"";
    static const char  choices[] = "\",\"choices\":[";

    if (st->fast_head.data) {
        return NGX_OK;
    }

    idlen = ngx_strlen(st->id);

    n = ngx_http_ai_tr_fast_int(num, (int64_t) st->created);

    size = sizeof(head) - 1 + idlen + sizeof(object) - 1 + n
           + sizeof(model) - 1 + st->model.len + sizeof(choices) - 1;

    p = ngx_pnalloc(st->pool, size);
    if (p == NULL) {
        return NGX_ERROR;
    }

    st->fast_head.data = p;

    p = ngx_cpymem(p, head, sizeof(head) - 1);
    p = ngx_cpymem(p, st->id, idlen);
    p = ngx_cpymem(p, object, sizeof(object) - 1);
    p = ngx_cpymem(p, num, n);
    p = ngx_cpymem(p, model, sizeof(model) - 1);
    p = ngx_cpymem(p, st->model.data, st->model.len);
    p = ngx_cpymem(p, choices, sizeof(choices) - 1);

    st->fast_head.len = p - st->fast_head.data;

    return NGX_OK;
}


/*
 * message_start: the message's id (a string printed as it is) when the
 * stream has none, its usage, then the role chunk, as
 * ngx_http_ai_anthropic_stream_to_openai() does
 */

static ngx_int_t
ngx_http_ai_tr_fast_message_start(ngx_http_ai_stream_t *st, ngx_str_t *msg)
{
    ngx_int_t                 rc;
    ngx_str_t                 key, value, id, usage, text;
    ngx_uint_t                ids, usages;
    ngx_http_ai_usage_t       u;
    ngx_http_ai_json_iter_t   it;

    if (msg->len == 0 || msg->data[0] != '{') {
        /* no message object: no id, no usage, the role chunk */
        return ngx_http_ai_tr_emit_role(st);
    }

    if (ngx_http_ai_json_object(&it, msg->data, msg->data + msg->len)
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    ngx_str_null(&id);
    ngx_str_null(&usage);
    ids = 0;
    usages = 0;

    while ((rc = ngx_http_ai_json_next(&it, &key, &value)) == NGX_OK) {

        if (ngx_http_ai_json_key(&key, "id") && ids++ == 0) {
            id = value;

        } else if (ngx_http_ai_json_key(&key, "usage") && usages++ == 0) {
            usage = value;
        }
    }

    if (rc != NGX_DONE) {
        return NGX_DECLINED;
    }

    ngx_str_null(&text);

    if (id.len && id.data[0] == '"'
        && ngx_http_ai_json_text(&id, &text) != NGX_OK)
    {
        return NGX_DECLINED;
    }

    if (usage.len && usage.data[0] == '{') {
        u = st->usage;

        if (ngx_http_ai_usage_raw(NGX_HTTP_AI_FMT_ANTHROPIC, &usage, &u)
            != NGX_OK)
        {
            return NGX_DECLINED;
        }

        st->usage = u;
    }

    if (text.data && st->id == NULL) {
        st->id = ngx_http_ai_tr_strdup(st->pool, (char *) text.data,
                                       text.len);
        if (st->id == NULL) {
            return NGX_ERROR;
        }
    }

    return ngx_http_ai_tr_emit_role(st);
}


/*
 * The OpenAI door's chunks around the text, written as
 * ngx_http_ai_tr_chunk() and cJSON would print them (role, finish, usage)
 * when no filter is attached and the stream's id and model print as they
 * are: the chunk's head (its id, created, model) made once a stream.
 * NGX_DECLINED: the tree's way.
 */

ngx_int_t
ngx_http_ai_tr_fast_emit(ngx_http_ai_stream_t *st, ngx_uint_t what,
    ngx_str_t *reason)
{
    int                   n;
    ngx_http_ai_usage_t  *u;
    char                  num[NGX_INT64_LEN + 1];

    if (st->filter || st->aborted || st->door != NGX_HTTP_AI_FMT_OPENAI
        || (reason && !ngx_http_ai_tr_verbatim((char *) reason->data,
                                               reason->len)))
    {
        return NGX_DECLINED;
    }

    if (st->id == NULL) {
        st->id = ngx_http_ai_tr_gen_id(st->pool, "chatcmpl-");
        if (st->id == NULL) {
            return NGX_ERROR;
        }
    }

    if (st->fast_head.data == NULL
        && (!ngx_http_ai_tr_verbatim(st->id, ngx_strlen(st->id))
            || !ngx_http_ai_tr_verbatim((char *) st->model.data,
                                        st->model.len)))
    {
        return NGX_DECLINED;
    }

    if (ngx_http_ai_tr_fast_head(st) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_ai_tr_out(st, (char *) st->fast_head.data,
                           st->fast_head.len)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    switch (what) {

    case NGX_HTTP_AI_FAST_ROLE:
        return ngx_http_ai_tr_out(st, "{\"index\":0,\"delta\":{\"role\":"
                                  "\"assistant\",\"content\":\"\"},"
                                  "\"logprobs\":null,\"finish_reason\":null}"
                                  "]}\n\n",
                                  sizeof("{\"index\":0,\"delta\":{\"role\":"
                                         "\"assistant\",\"content\":\"\"},"
                                         "\"logprobs\":null,"
                                         "\"finish_reason\":null}]}\n\n")
                                  - 1);

    case NGX_HTTP_AI_FAST_FINISH:
        if (ngx_http_ai_tr_out(st, "{\"index\":0,\"delta\":{},"
                               "\"logprobs\":null,\"finish_reason\":\"",
                               sizeof("{\"index\":0,\"delta\":{},"
                                      "\"logprobs\":null,"
                                      "\"finish_reason\":\"") - 1)
            != NGX_OK
            || ngx_http_ai_tr_out(st, (char *) reason->data, reason->len)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        return ngx_http_ai_tr_out(st, "\"}]}\n\n", sizeof("\"}]}\n\n") - 1);

    default: /* NGX_HTTP_AI_FAST_USAGE */

        /* cJSON prints these numbers (below 2^53) as integers */

        u = &st->usage;

        n = ngx_http_ai_tr_fast_int(num, (int64_t) u->prompt_tokens);

        if (ngx_http_ai_tr_out(st, "],\"usage\":{\"prompt_tokens\":",
                               sizeof("],\"usage\":{\"prompt_tokens\":") - 1)
            != NGX_OK
            || ngx_http_ai_tr_out(st, num, n) != NGX_OK)
        {
            return NGX_ERROR;
        }

        n = ngx_http_ai_tr_fast_int(num, (int64_t) u->completion_tokens);

        if (ngx_http_ai_tr_out(st, ",\"completion_tokens\":",
                               sizeof(",\"completion_tokens\":") - 1)
            != NGX_OK
            || ngx_http_ai_tr_out(st, num, n) != NGX_OK)
        {
            return NGX_ERROR;
        }

        n = ngx_http_ai_tr_fast_int(num, (int64_t) (u->total_tokens
                                    ? u->total_tokens
                                    : u->prompt_tokens
                                      + u->completion_tokens));

        if (ngx_http_ai_tr_out(st, ",\"total_tokens\":",
                               sizeof(",\"total_tokens\":") - 1)
            != NGX_OK
            || ngx_http_ai_tr_out(st, num, n) != NGX_OK)
        {
            return NGX_ERROR;
        }

        n = ngx_http_ai_tr_fast_int(num, (int64_t) u->cached_tokens);

        if (ngx_http_ai_tr_out(st, ",\"prompt_tokens_details\":"
                               "{\"cached_tokens\":",
                               sizeof(",\"prompt_tokens_details\":"
                                      "{\"cached_tokens\":") - 1)
            != NGX_OK
            || ngx_http_ai_tr_out(st, num, n) != NGX_OK)
        {
            return NGX_ERROR;
        }

        n = ngx_http_ai_tr_fast_int(num, (int64_t) u->reasoning_tokens);

        if (ngx_http_ai_tr_out(st, "},\"completion_tokens_details\":"
                               "{\"reasoning_tokens\":",
                               sizeof("},\"completion_tokens_details\":"
                                      "{\"reasoning_tokens\":") - 1)
            != NGX_OK
            || ngx_http_ai_tr_out(st, num, n) != NGX_OK)
        {
            return NGX_ERROR;
        }

        return ngx_http_ai_tr_out(st, "}}}\n\n", sizeof("}}}\n\n") - 1);
    }
}


/*
 * A plain request translated without trees: an Anthropic one to an
 * OpenAI target, an OpenAI one to an Anthropic target.  NGX_DECLINED:
 * the general path.
 */

ngx_int_t
ngx_http_ai_tr_fast_request(ngx_pool_t *pool,
    ngx_http_ai_translate_request_t *req, cJSON *json, ngx_str_t *body)
{
    if ((req->prepend && req->prepend->nelts)
        || (req->append && req->append->nelts)
        || !ngx_http_ai_tr_verbatim((char *) req->model.data,
                                    req->model.len))
    {
        /* decorations; a model name the printer would escape (or cut) */
        return NGX_DECLINED;
    }

    if (req->from == NGX_HTTP_AI_FMT_ANTHROPIC
        && req->to == NGX_HTTP_AI_FMT_OPENAI
        && req->endpoint == NGX_HTTP_AI_EP_MESSAGES)
    {
        return ngx_http_ai_tr_fast_to_openai(pool, req, json, body);
    }

    if (req->from == NGX_HTTP_AI_FMT_OPENAI
        && req->to == NGX_HTTP_AI_FMT_ANTHROPIC
        && req->endpoint == NGX_HTTP_AI_EP_CHAT)
    {
        return ngx_http_ai_tr_fast_to_anthropic(pool, req, json, body);
    }

    return NGX_DECLINED;
}


/*
 * An Anthropic request to an OpenAI target, written straight from the
 * client's tree when it holds only what the general path copies as it
 * is: the model (a string), a system prompt (a string), messages of a
 * role ("user" or "assistant") and a string content, max_tokens,
 * temperature and top_p (numbers), stream (true or false), each once.
 * The bytes are those the general path prints (the request translated
 * by ngx_http_ai_anthropic_request_to_openai(), decorated by
 * ngx_http_ai_openai_decorate(), printed by ngx_http_ai_tr_print()):
 * the keys in its order, the strings and numbers as its printer writes
 * them (test_fast_request compares the two).  NGX_DECLINED: anything
 * else, decorations included, goes the general way.
 */

#define NGX_HTTP_AI_FAST_MODEL     0
#define NGX_HTTP_AI_FAST_MESSAGES  1
#define NGX_HTTP_AI_FAST_STREAM    2
#define NGX_HTTP_AI_FAST_SYSTEM    3     /* Anthropic's; OpenAI's options */
#define NGX_HTTP_AI_FAST_MAX       4
#define NGX_HTTP_AI_FAST_MAX2      5     /* OpenAI's max_tokens */
#define NGX_HTTP_AI_FAST_TEMP      6
#define NGX_HTTP_AI_FAST_TOP_P     7
#define NGX_HTTP_AI_FAST_FIELDS    8

#define NGX_HTTP_AI_FAST_BOOL      (cJSON_True|cJSON_False)

static const ngx_http_ai_tr_fast_field_t  ngx_http_ai_tr_fast_anthropic_in[] =
{
    { "model", cJSON_String },
    { "messages", cJSON_Array },
    { "stream", NGX_HTTP_AI_FAST_BOOL },
    { "system", cJSON_String },
    { "max_tokens", cJSON_Number },
    { NULL, 0 },
    { "temperature", cJSON_Number },
    { "top_p", cJSON_Number },
    { NULL, 0 }
};

static const ngx_http_ai_tr_fast_field_t  ngx_http_ai_tr_fast_openai_in[] = {
    { "model", cJSON_String },
    { "messages", cJSON_Array },
    { "stream", NGX_HTTP_AI_FAST_BOOL },
    { "stream_options", cJSON_Object },
    { "max_completion_tokens", cJSON_Number },
    { "max_tokens", cJSON_Number },
    { "temperature", cJSON_Number },
    { "top_p", cJSON_Number },
    { NULL, 0 }
};


static ngx_int_t
ngx_http_ai_tr_fast_to_openai(ngx_pool_t *pool,
    ngx_http_ai_translate_request_t *req, cJSON *json, ngx_str_t *body)
{
    size_t       len, nlen[3];
    u_char      *p, num[3][32];
    cJSON       *m, *role, *content, *f[NGX_HTTP_AI_FAST_FIELDS];
    ngx_uint_t   i, n;

    /* the numbers, in the general path's order, and their OpenAI keys */

    static const ngx_uint_t   nums[3] = {
        NGX_HTTP_AI_FAST_MAX, NGX_HTTP_AI_FAST_TEMP, NGX_HTTP_AI_FAST_TOP_P
    };
    static const char        *keys[3] = {
        ",\"max_completion_tokens\":", ",\"temperature\":", ",\"top_p\":"
    };

    if (ngx_http_ai_tr_fast_fields(json, ngx_http_ai_tr_fast_anthropic_in, f)
        != NGX_OK
        || f[NGX_HTTP_AI_FAST_MODEL] == NULL
        || f[NGX_HTTP_AI_FAST_MESSAGES] == NULL
        || (f[NGX_HTTP_AI_FAST_STREAM] == NULL && req->stream))
    {
        return NGX_DECLINED;
    }

    /* the size first: {"model":M,"messages":[...],...} */

    len = sizeof(",\"messages\":[]}") - 1;

    if (f[NGX_HTTP_AI_FAST_SYSTEM]) {
        len += sizeof("{\"role\":\"system\",\"content\":},") - 1
               + ngx_http_ai_tr_json_string_size(
                     (u_char *) f[NGX_HTTP_AI_FAST_SYSTEM]->valuestring);
    }

    n = 0;

    for (m = f[NGX_HTTP_AI_FAST_MESSAGES]->child; m; m = m->next) {

        if (ngx_http_ai_tr_fast_message(m, &role, &content) != NGX_OK
            || (ngx_strcmp(role->valuestring, "user") != 0
                && ngx_strcmp(role->valuestring, "assistant") != 0))
        {
            return NGX_DECLINED;
        }

        len += ngx_http_ai_tr_fast_message_size(role, content) + 1;
        n++;
    }

    for (i = 0; i < 3; i++) {
        m = f[nums[i]];

        if (m) {
            nlen[i] = ngx_http_ai_tr_json_number(num[i], m->valuedouble);
            if (nlen[i] == 0) {
                return NGX_DECLINED;
            }

            len += ngx_strlen(keys[i]) + nlen[i];
        }
    }

    if (f[NGX_HTTP_AI_FAST_STREAM]) {
        len += sizeof(",\"stream\":true,\"stream_options\":"
                      "{\"include_usage\":true}") - 1;
    }

    p = ngx_http_ai_tr_fast_begin(pool, req, f[NGX_HTTP_AI_FAST_MODEL], len,
                                  body);
    if (p == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(p, ",\"messages\":[", sizeof(",\"messages\":[") - 1);

    if (f[NGX_HTTP_AI_FAST_SYSTEM]) {
        p = ngx_cpymem(p, "{\"role\":\"system\",\"content\":",
                       sizeof("{\"role\":\"system\",\"content\":") - 1);
        p = ngx_http_ai_tr_json_string(p,
                       (u_char *) f[NGX_HTTP_AI_FAST_SYSTEM]->valuestring);
        *p++ = '}';

        if (n) {
            *p++ = ',';
        }
    }

    for (m = f[NGX_HTTP_AI_FAST_MESSAGES]->child; m; m = m->next) {
        (void) ngx_http_ai_tr_fast_message(m, &role, &content);

        p = ngx_http_ai_tr_fast_message_write(p, role, content);

        if (m->next) {
            *p++ = ',';
        }
    }

    *p++ = ']';

    for (i = 0; i < 3; i++) {
        if (f[nums[i]]) {
            p = ngx_cpymem(p, keys[i], ngx_strlen(keys[i]));
            p = ngx_cpymem(p, num[i], nlen[i]);
        }
    }

    if (f[NGX_HTTP_AI_FAST_STREAM]) {
        if (req->stream) {
            p = ngx_cpymem(p, ",\"stream\":true,\"stream_options\":"
                           "{\"include_usage\":true}",
                           sizeof(",\"stream\":true,\"stream_options\":"
                                  "{\"include_usage\":true}") - 1);

        } else {
            p = ngx_cpymem(p, ",\"stream\":false",
                           sizeof(",\"stream\":false") - 1);
        }
    }

    *p++ = '}';

    body->len = p - body->data;

    return NGX_OK;
}


/*
 * An OpenAI request to an Anthropic target, written straight from the
 * client's tree when it holds only the model (a string), messages of a
 * role ("system", "developer", "user" or "assistant") and a string
 * content, max_tokens or max_completion_tokens, temperature and top_p
 * (numbers), stream (true or false) and stream_options (an object, not
 * Anthropic's), each once.  The bytes are those of the general path
 * (decorated by ngx_http_ai_openai_decorate(), translated by
 * ngx_http_ai_anthropic_request_from_openai(), printed): the system
 * texts one string or text blocks, the required max_tokens, a
 * temperature of at most 1, an empty assistant message left out
 * (test_fast_request_to_anthropic).
 */

static ngx_int_t
ngx_http_ai_tr_fast_to_anthropic(ngx_pool_t *pool,
    ngx_http_ai_translate_request_t *req, cJSON *json, ngx_str_t *body)
{
    size_t       len, nlen[3], slen;
    u_char      *p, num[3][32];
    cJSON       *m, *role, *content, *max, *f[NGX_HTTP_AI_FAST_FIELDS];
    ngx_int_t    value;
    ngx_uint_t   nsystem, first, pass;

    if (ngx_http_ai_tr_fast_fields(json, ngx_http_ai_tr_fast_openai_in, f)
        != NGX_OK
        || f[NGX_HTTP_AI_FAST_MODEL] == NULL
        || f[NGX_HTTP_AI_FAST_MESSAGES] == NULL)
    {
        return NGX_DECLINED;
    }

    /* max_tokens: as ngx_http_ai_tr_int() takes one, or the default */

    max = f[NGX_HTTP_AI_FAST_MAX];

    if (max == NULL || max->valuedouble < 0
        || max->valuedouble >= (double) NGX_MAX_INT_T_VALUE)
    {
        max = f[NGX_HTTP_AI_FAST_MAX2];
    }

    if (max && max->valuedouble >= 0
        && max->valuedouble < (double) NGX_MAX_INT_T_VALUE)
    {
        value = (ngx_int_t) max->valuedouble;

    } else {
        value = (req->max_tokens > 0) ? req->max_tokens : 4096;
    }

    nlen[0] = ngx_http_ai_tr_json_number(num[0], (double) value);
    nlen[1] = 0;
    nlen[2] = 0;

    if (f[NGX_HTTP_AI_FAST_TEMP]) {
        nlen[1] = ngx_http_ai_tr_json_number(num[1],
                      ngx_min(f[NGX_HTTP_AI_FAST_TEMP]->valuedouble, 1.0));
        if (nlen[1] == 0) {
            return NGX_DECLINED;
        }
    }

    if (f[NGX_HTTP_AI_FAST_TOP_P]) {
        nlen[2] = ngx_http_ai_tr_json_number(num[2],
                                  f[NGX_HTTP_AI_FAST_TOP_P]->valuedouble);
        if (nlen[2] == 0) {
            return NGX_DECLINED;
        }
    }

    if (nlen[0] == 0) {
        return NGX_DECLINED;
    }

    len = sizeof(",\"max_tokens\":,\"messages\":[]}") - 1 + nlen[0];

    nsystem = 0;
    slen = 0;

    for (m = f[NGX_HTTP_AI_FAST_MESSAGES]->child; m; m = m->next) {

        if (ngx_http_ai_tr_fast_message(m, &role, &content) != NGX_OK) {
            return NGX_DECLINED;
        }

        switch (ngx_http_ai_tr_fast_role(role, content)) {

        case NGX_HTTP_AI_FAST_ROLE_SYSTEM:
            nsystem++;
            slen += ngx_http_ai_tr_json_string_size(
                                            (u_char *) content->valuestring);
            break;

        case NGX_HTTP_AI_FAST_ROLE_TURN:
            len += ngx_http_ai_tr_fast_message_size(role, content) + 1;
            break;

        case NGX_HTTP_AI_FAST_ROLE_NONE:
            break;

        default:
            return NGX_DECLINED;
        }
    }

    if (nsystem == 1) {
        len += sizeof(",\"system\":") - 1 + slen;

    } else if (nsystem) {
        len += sizeof(",\"system\":[]") - 1
               + nsystem * (sizeof("{\"type\":\"text\",\"text\":},") - 1)
               + slen;
    }

    len += sizeof(",\"temperature\":") - 1 + nlen[1]
           + sizeof(",\"top_p\":") - 1 + nlen[2]
           + sizeof(",\"stream\":true") - 1;

    p = ngx_http_ai_tr_fast_begin(pool, req, f[NGX_HTTP_AI_FAST_MODEL], len,
                                  body);
    if (p == NULL) {
        return NGX_ERROR;
    }

    /* the system texts, then the turns */

    for (pass = 0; pass < 2; pass++) {

        if (pass == 0 && nsystem) {
            p = ngx_cpymem(p, ",\"system\":", sizeof(",\"system\":") - 1);

            if (nsystem > 1) {
                *p++ = '[';
            }

        } else if (pass == 1) {
            p = ngx_cpymem(p, ",\"max_tokens\":",
                           sizeof(",\"max_tokens\":") - 1);
            p = ngx_cpymem(p, num[0], nlen[0]);
            p = ngx_cpymem(p, ",\"messages\":[", sizeof(",\"messages\":[") - 1);
        }

        first = 1;

        for (m = f[NGX_HTTP_AI_FAST_MESSAGES]->child; m; m = m->next) {
            (void) ngx_http_ai_tr_fast_message(m, &role, &content);

            if (ngx_http_ai_tr_fast_role(role, content)
                != (pass ? NGX_HTTP_AI_FAST_ROLE_TURN
                         : NGX_HTTP_AI_FAST_ROLE_SYSTEM))
            {
                continue;
            }

            if (!first) {
                *p++ = ',';
            }

            first = 0;

            if (pass) {
                p = ngx_http_ai_tr_fast_message_write(p, role, content);
                continue;
            }

            if (nsystem > 1) {
                p = ngx_cpymem(p, "{\"type\":\"text\",\"text\":",
                               sizeof("{\"type\":\"text\",\"text\":") - 1);
            }

            p = ngx_http_ai_tr_json_string(p,
                                           (u_char *) content->valuestring);

            if (nsystem > 1) {
                *p++ = '}';
            }
        }

        if (pass == 1 || nsystem > 1) {
            *p++ = ']';
        }
    }

    if (f[NGX_HTTP_AI_FAST_TEMP]) {
        p = ngx_cpymem(p, ",\"temperature\":", sizeof(",\"temperature\":") - 1);
        p = ngx_cpymem(p, num[1], nlen[1]);
    }

    if (f[NGX_HTTP_AI_FAST_TOP_P]) {
        p = ngx_cpymem(p, ",\"top_p\":", sizeof(",\"top_p\":") - 1);
        p = ngx_cpymem(p, num[2], nlen[2]);
    }

    if (req->stream) {
        p = ngx_cpymem(p, ",\"stream\":true", sizeof(",\"stream\":true") - 1);
    }

    *p++ = '}';

    body->len = p - body->data;

    return NGX_OK;
}


/*
 * the members of a plain request: each of a name the table has, of its
 * type, once (found[] by the table's order); NGX_DECLINED: any other
 */

static ngx_int_t
ngx_http_ai_tr_fast_fields(cJSON *json, const ngx_http_ai_tr_fast_field_t *t,
    cJSON **found)
{
    cJSON       *item;
    ngx_uint_t   i;

    for (i = 0; i < NGX_HTTP_AI_FAST_FIELDS; i++) {
        found[i] = NULL;
    }

    for (item = json->child; item; item = item->next) {

        if (item->string == NULL) {
            return NGX_DECLINED;
        }

        for (i = 0; i < NGX_HTTP_AI_FAST_FIELDS; i++) {
            if (t[i].name && ngx_strcmp(item->string, t[i].name) == 0) {
                break;
            }
        }

        if (i == NGX_HTTP_AI_FAST_FIELDS || found[i] != NULL
            || !(item->type & 0xff & t[i].type))
        {
            return NGX_DECLINED;
        }

        found[i] = item;
    }

    return NGX_OK;
}


/* a message of a role and a string content, nothing else */

static ngx_int_t
ngx_http_ai_tr_fast_message(cJSON *m, cJSON **role, cJSON **content)
{
    cJSON  *k;

    if (!cJSON_IsObject(m)) {
        return NGX_DECLINED;
    }

    *role = NULL;
    *content = NULL;

    for (k = m->child; k; k = k->next) {
        if (k->string && ngx_strcmp(k->string, "role") == 0
            && *role == NULL)
        {
            *role = k;

        } else if (k->string && ngx_strcmp(k->string, "content") == 0
                   && *content == NULL)
        {
            *content = k;

        } else {
            return NGX_DECLINED;
        }
    }

    if (!cJSON_IsString(*role) || !cJSON_IsString(*content)) {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * an OpenAI message as Anthropic's request has it: a system text (not
 * empty), a turn (an empty assistant one is left out), or neither
 */

static ngx_uint_t
ngx_http_ai_tr_fast_role(cJSON *role, cJSON *content)
{
    const char  *r;

    r = role->valuestring;

    if (ngx_strcmp(r, "system") == 0 || ngx_strcmp(r, "developer") == 0) {
        return *content->valuestring ? NGX_HTTP_AI_FAST_ROLE_SYSTEM
                                     : NGX_HTTP_AI_FAST_ROLE_NONE;
    }

    if (ngx_strcmp(r, "user") == 0) {
        return NGX_HTTP_AI_FAST_ROLE_TURN;
    }

    if (ngx_strcmp(r, "assistant") == 0) {
        return *content->valuestring ? NGX_HTTP_AI_FAST_ROLE_TURN
                                     : NGX_HTTP_AI_FAST_ROLE_NONE;
    }

    return NGX_HTTP_AI_FAST_ROLE_OTHER;
}


/* {"role":"R","content":C} */

static size_t
ngx_http_ai_tr_fast_message_size(cJSON *role, cJSON *content)
{
    return sizeof("{\"role\":\"\",\"content\":}") - 1
           + ngx_strlen(role->valuestring)
           + ngx_http_ai_tr_json_string_size((u_char *) content->valuestring);
}


static u_char *
ngx_http_ai_tr_fast_message_write(u_char *p, cJSON *role, cJSON *content)
{
    p = ngx_cpymem(p, "{\"role\":\"", sizeof("{\"role\":\"") - 1);
    p = ngx_cpymem(p, role->valuestring, ngx_strlen(role->valuestring));
    p = ngx_cpymem(p, "\",\"content\":", sizeof("\",\"content\":") - 1);
    p = ngx_http_ai_tr_json_string(p, (u_char *) content->valuestring);
    *p++ = '}';

    return p;
}


/*
 * the body's memory, for the rest's len bytes too, and its beginning:
 * the target's model as the decoration sets it, else the client's
 */

static u_char *
ngx_http_ai_tr_fast_begin(ngx_pool_t *pool,
    ngx_http_ai_translate_request_t *req, cJSON *model, size_t len,
    ngx_str_t *body)
{
    u_char  *p;

    len += sizeof("{\"model\":") - 1
           + (req->model.len
              ? req->model.len + 2
              : ngx_http_ai_tr_json_string_size(
                                             (u_char *) model->valuestring));

    p = ngx_pnalloc(pool, len);
    if (p == NULL) {
        return NULL;
    }

    body->data = p;

    p = ngx_cpymem(p, "{\"model\":", sizeof("{\"model\":") - 1);

    if (req->model.len == 0) {
        return ngx_http_ai_tr_json_string(p, (u_char *) model->valuestring);
    }

    *p++ = '"';
    p = ngx_cpymem(p, req->model.data, req->model.len);
    *p++ = '"';

    return p;
}


/*
 * a string cJSON prints as it is: no quote, no backslash, no control
 * character (nor a NUL, where cJSON's copy would end)
 */

ngx_uint_t
ngx_http_ai_tr_verbatim(const char *s, size_t len)
{
    u_char  *p, *last;

    last = (u_char *) s + len;

    for (p = (u_char *) s; p < last; p++) {
        if (*p == '"' || *p == '\\' || *p < 0x20) {
            return 0;
        }
    }

    return 1;
}


/* the stream's id and model print as they are (checked once) */

static ngx_uint_t
ngx_http_ai_tr_fast_names(ngx_http_ai_stream_t *st)
{
    if (st->fast_names == 0) {
        st->fast_names = (st->id
                          && ngx_http_ai_tr_verbatim(st->id,
                                                     ngx_strlen(st->id))
                          && ngx_http_ai_tr_verbatim((char *) st->model.data,
                                                     st->model.len))
                         ? 1 : 2;
    }

    return st->fast_names == 1;
}


/*
 * a string value with no escape and no control character, its bytes
 * without the quotes: what cJSON would print as it is
 */

static ngx_int_t
ngx_http_ai_json_text(ngx_str_t *value, ngx_str_t *text)
{
    if (value->len < 2 || value->data[0] != '"'
        || !ngx_http_ai_tr_verbatim((char *) value->data + 1, value->len - 2))
    {
        return NGX_DECLINED;
    }

    text->data = value->data + 1;
    text->len = value->len - 2;

    return NGX_OK;
}
