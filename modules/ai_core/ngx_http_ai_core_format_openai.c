
/*
 * Copyright (C) AI Gateway authors
 *
 * OpenAI's chat format, the pivot of the translation: the changes a
 * request gets on its way to any target (model, decorations, streaming
 * options) and the OpenAI stream passed to the OpenAI door.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_ai_core_format.h"
#include "ngx_http_ai_core_json.h"


static cJSON *ngx_http_ai_openai_message(ngx_http_ai_decoration_t *d);
static ngx_uint_t ngx_http_ai_openai_object(ngx_str_t *data);
static ngx_uint_t ngx_http_ai_openai_may_matter(ngx_str_t *data);


/*
 * The target's model, the prepended and appended messages, "stream", and
 * "stream_options" (only with "stream": OpenAI refuses it otherwise; usage
 * asked for when forced, and always for another door, whose stream end
 * reports usage).  NGX_DECLINED: no "messages" array.
 */

ngx_int_t
ngx_http_ai_openai_decorate(cJSON *json, ngx_http_ai_translate_request_t *req)
{
    cJSON                     *messages, *msg, *stream, *options;
    ngx_uint_t                 i;
    ngx_http_ai_decoration_t  *d;

    messages = ngx_http_ai_json_item(json, "messages");
    if (!cJSON_IsArray(messages)) {
        return NGX_DECLINED;
    }

    if (req->prepend) {
        d = req->prepend->elts;

        for (i = 0; i < req->prepend->nelts; i++) {
            msg = ngx_http_ai_openai_message(&d[i]);
            if (msg == NULL) {
                return NGX_ERROR;
            }

            if (!cJSON_InsertItemInArray(messages, (int) i, msg)) {
                cJSON_Delete(msg);
                return NGX_ERROR;
            }
        }
    }

    if (req->append) {
        d = req->append->elts;

        for (i = 0; i < req->append->nelts; i++) {
            msg = ngx_http_ai_openai_message(&d[i]);
            if (msg == NULL) {
                return NGX_ERROR;
            }

            if (!cJSON_AddItemToArray(messages, msg)) {
                cJSON_Delete(msg);
                return NGX_ERROR;
            }
        }
    }

    if (req->model.len
        && ngx_http_ai_tr_set(json, "model", ngx_http_ai_tr_str(&req->model))
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    stream = ngx_http_ai_json_item(json, "stream");

    if ((req->stream || stream)
        && ngx_http_ai_tr_set(json, "stream", cJSON_CreateBool(req->stream))
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (!req->stream) {
        cJSON_DeleteItemFromObjectCaseSensitive(json, "stream_options");
        return NGX_OK;
    }

    if (req->to != NGX_HTTP_AI_FMT_OPENAI
        || (!req->force_usage && req->from == NGX_HTTP_AI_FMT_OPENAI))
    {
        return NGX_OK;
    }

    options = ngx_http_ai_json_item(json, "stream_options");

    if (!cJSON_IsObject(options)) {
        options = cJSON_CreateObject();

        if (ngx_http_ai_tr_set(json, "stream_options", options) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return ngx_http_ai_tr_set(options, "include_usage", cJSON_CreateTrue());
}


static cJSON *
ngx_http_ai_openai_message(ngx_http_ai_decoration_t *d)
{
    cJSON  *msg;

    msg = cJSON_CreateObject();
    if (msg == NULL) {
        return NULL;
    }

    if (ngx_http_ai_tr_add_str(msg, "role", &d->role) == NULL
        || ngx_http_ai_tr_add_str(msg, "content", &d->content) == NULL)
    {
        cJSON_Delete(msg);
        return NULL;
    }

    return msg;
}


/*
 * OpenAI to the OpenAI door: the events as they are, but the usage chunk
 * when the client did not ask for it (the gateway did) and what is not
 * JSON.
 */

/* "{...}", leading and trailing white space aside */

static ngx_uint_t
ngx_http_ai_openai_object(ngx_str_t *data)
{
    u_char  *p, *last;

    p = data->data;
    last = p + data->len;

    while (p < last && (*p == ' ' || *p == '\t')) {
        p++;
    }

    while (last > p && (last[-1] == ' ' || last[-1] == '\t'
                        || last[-1] == CR || last[-1] == LF))
    {
        last--;
    }

    return last - p >= 2 && *p == '{' && last[-1] == '}';
}


static ngx_uint_t
ngx_http_ai_openai_may_matter(ngx_str_t *data)
{
    return ngx_http_ai_json_has(data, "\"error\"")
           || ngx_http_ai_json_empty_array(data, "\"choices\"",
                                           sizeof("\"choices\"") - 1);
}


ngx_int_t
ngx_http_ai_openai_stream_pass(ngx_http_ai_stream_t *st, ngx_str_t *name,
    ngx_str_t *data, cJSON *json)
{
    cJSON       *choices, *parsed;
    ngx_int_t    drop, rc;
    ngx_uint_t   skip;

    if (data == NULL) {
        return NGX_OK;
    }

    if (data->len == sizeof("[DONE]") - 1
        && ngx_strncmp(data->data, "[DONE]", data->len) == 0)
    {
        if (st->filter && st->open && !st->error) {
            /* texts the upstream did not end: what is held goes first */
            rc = ngx_http_ai_tr_filter_end(st);
            if (rc != NGX_OK) {
                return rc == NGX_ABORT ? NGX_OK : rc;
            }
        }

        st->done = 1;

    } else if (json == NULL && !ngx_http_ai_openai_object(data)) {
        /* not a JSON object: not the client's */
        return NGX_OK;

    } else if (json || st->filter || ngx_http_ai_openai_may_matter(data)) {

        /*
         * Only an error or a usage-only chunk needs a look inside: an
         * event that has neither "error" nor "choices":[] (quoted as
         * such, which text in a string cannot be) goes as it is, unparsed
         */

        parsed = NULL;

        if (json == NULL) {
            json = cJSON_ParseWithLength((const char *) data->data,
                                         data->len);
            parsed = json;
        }

        drop = !cJSON_IsObject(json);

        if (drop) {
            /* nothing */

        } else if (cJSON_IsObject(ngx_http_ai_json_item(json, "error"))) {
            /* the client has its error event: none at the end */
            st->error = 1;

        } else if (!st->include_usage) {
            choices = ngx_http_ai_json_item(json, "choices");

            drop = (cJSON_IsArray(choices)
                    && cJSON_GetArraySize(choices) == 0
                    && cJSON_IsObject(ngx_http_ai_json_item(json, "usage")));
        }

        if (!drop && st->filter && !st->error) {
            /* the delta filters: a changed chunk is rendered anew */

            st->changed = 0;

            rc = ngx_http_ai_tr_filter_chunk(st, json, &skip);

            /*
             * (a \u0000 hides the rest of a string from cJSON, and so
             * from the filters: the event goes as they saw it)
             */

            if (rc == NGX_OK && !skip
                && (st->changed
                    || ngx_http_ai_json_has(data, "\\u0000")))
            {
                rc = ngx_http_ai_tr_out_event(st, NULL, json);
                skip = 1;
            }

            if (rc != NGX_OK || skip) {
                cJSON_Delete(parsed);
                return rc == NGX_ABORT ? NGX_OK : rc;
            }
        }

        if (parsed) {
            cJSON_Delete(parsed);
        }

        if (drop) {
            return NGX_OK;
        }
    }

    if (name->len) {
        if (ngx_http_ai_tr_out(st, "event: ", 7) != NGX_OK
            || ngx_http_ai_tr_out(st, (char *) name->data, name->len)
               != NGX_OK
            || ngx_http_ai_tr_out(st, "\n", 1) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (ngx_http_ai_tr_out(st, "data: ", 6) != NGX_OK
        || ngx_http_ai_tr_out(st, (char *) data->data, data->len) != NGX_OK
        || ngx_http_ai_tr_out(st, "\n\n", 2) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}
