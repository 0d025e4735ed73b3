
/*
 * Copyright (C) AI Gateway authors
 *
 * OpenAI's Responses API (the "responses" door) to and from OpenAI's chat
 * format, the pivot: a request's instructions and input items become chat
 * messages, a chat completion becomes a response object, and a stream of
 * chat chunks becomes the Responses API's typed events (response.created,
 * response.output_item.added, response.output_text.delta, ...,
 * response.completed), event by event.  The pass-through of the same
 * format (an OpenAI or Azure target) is in ngx_http_ai_core_format.c.
 * Pure: cJSON and a pool, no request, no I/O.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_ai_core_format.h"


#define NGX_HTTP_AI_RS_NONE         0
#define NGX_HTTP_AI_RS_TEXT         1
#define NGX_HTTP_AI_RS_CALL         2


/* the translator's state for the Responses door */

typedef struct {
    ngx_uint_t                  seq;        /* sequence_number */
    char                       *id;         /* resp_... */
    char                       *item_id;    /* of the open item */
    ngx_uint_t                  item;       /* its output_index */
    ngx_uint_t                  type;       /* NGX_HTTP_AI_RS_* */
    ngx_int_t                   call;       /* the pivot's tool index */
    char                       *call_id;
    char                       *name;
    ngx_uint_t                  noutput;
    u_char                     *output;     /* the items done, printed and
                                               joined by commas */
    size_t                      output_len;
    size_t                      output_size;
    u_char                     *text;       /* the open item's text */
    size_t                      text_len;
    size_t                      text_size;
    ngx_str_t                   finish;     /* the pivot's finish_reason */
    unsigned                    created:1;
} ngx_http_ai_rs_state_t;


static ngx_int_t ngx_http_ai_responses_message(ngx_pool_t *pool,
    cJSON *item, cJSON *messages, ngx_str_t *err);
static cJSON *ngx_http_ai_responses_part(ngx_pool_t *pool, cJSON *part,
    ngx_uint_t assistant, ngx_str_t *err);
static cJSON *ngx_http_ai_responses_last_call(cJSON *messages);
static ngx_int_t ngx_http_ai_responses_tools(ngx_pool_t *pool, cJSON *in,
    cJSON *out, ngx_str_t *err);
static ngx_int_t ngx_http_ai_responses_format(ngx_pool_t *pool, cJSON *in,
    cJSON *out, ngx_str_t *err);
static cJSON *ngx_http_ai_responses_usage(ngx_http_ai_usage_t *u);
static cJSON *ngx_http_ai_responses_object(const char *id, time_t created,
    ngx_str_t *model, const char *status, const char *incomplete,
    cJSON *output, ngx_http_ai_usage_t *usage);
static const char *ngx_http_ai_responses_incomplete(const char *reason);
static ngx_http_ai_rs_state_t *ngx_http_ai_rs_state(
    ngx_http_ai_stream_t *st);
static ngx_int_t ngx_http_ai_rs_event(ngx_http_ai_stream_t *st,
    ngx_http_ai_rs_state_t *rs, const char *type, cJSON *json);
static ngx_int_t ngx_http_ai_rs_start(ngx_http_ai_stream_t *st,
    ngx_http_ai_rs_state_t *rs);
static ngx_int_t ngx_http_ai_rs_open(ngx_http_ai_stream_t *st,
    ngx_http_ai_rs_state_t *rs, ngx_uint_t type, cJSON *call);
static ngx_int_t ngx_http_ai_rs_close(ngx_http_ai_stream_t *st,
    ngx_http_ai_rs_state_t *rs);
static ngx_int_t ngx_http_ai_rs_delta(ngx_http_ai_stream_t *st,
    ngx_http_ai_rs_state_t *rs, const char *s);
static cJSON *ngx_http_ai_rs_item(ngx_http_ai_rs_state_t *rs,
    const char *status);
static cJSON *ngx_http_ai_rs_text_part(ngx_http_ai_rs_state_t *rs);
static ngx_int_t ngx_http_ai_rs_append(ngx_http_ai_stream_t *st,
    ngx_http_ai_rs_state_t *rs, const char *s, size_t len);
static ngx_int_t ngx_http_ai_rs_keep(ngx_http_ai_stream_t *st,
    ngx_http_ai_rs_state_t *rs, cJSON *item);
static u_char *ngx_http_ai_rs_escape(u_char *dst, u_char *src, size_t len);


/* ---------------------------------------------------------------------
 * requests: Responses -> the pivot
 */

ngx_int_t
ngx_http_ai_responses_request_to_openai(ngx_pool_t *pool, cJSON *in,
    cJSON **out, ngx_str_t *err)
{
    cJSON       *pivot, *messages, *msg, *input, *item, *reasoning, *v,
                *options;
    ngx_int_t    rc;
    const char  *s;

    static const char  *refused[] = {
        "previous_response_id", "background", "conversation", "prompt",
        NULL
    };

    static const char  *copied[] = {
        "model", "temperature", "top_p", "parallel_tool_calls", "user",
        "stream", "service_tier", "safety_identifier", "prompt_cache_key",
        NULL
    };

    const char  **name;

    *out = NULL;

    /* the provider's state: not with a stateless translation */

    for (name = refused; *name; name++) {
        v = cJSON_GetObjectItemCaseSensitive(in, *name);

        if (v && !cJSON_IsNull(v) && !cJSON_IsFalse(v)) {
            return ngx_http_ai_tr_error(pool, err,
                                        "\"%s\" is not supported by this "
                                        "target: it is translated from the "
                                        "Responses API, without state on "
                                        "the provider's side", *name);
        }
    }

    pivot = cJSON_CreateObject();
    if (pivot == NULL) {
        return NGX_ERROR;
    }

    rc = NGX_ERROR;

    for (name = copied; *name; name++) {
        if (cJSON_GetObjectItemCaseSensitive(in, *name)
            && ngx_http_ai_tr_add_copy(pivot, *name, in, *name) != NGX_OK)
        {
            goto failed;
        }
    }

    messages = ngx_http_ai_tr_add_child(pivot, "messages", 1);
    if (messages == NULL) {
        goto failed;
    }

    s = ngx_http_ai_tr_string(in, "instructions");

    if (s && *s) {
        msg = ngx_http_ai_tr_push(messages);
        if (msg == NULL
            || ngx_http_ai_tr_add_string(msg, "role", "system") == NULL
            || ngx_http_ai_tr_add_string(msg, "content", s) == NULL)
        {
            goto failed;
        }
    }

    input = cJSON_GetObjectItemCaseSensitive(in, "input");

    if (cJSON_IsString(input)) {
        msg = ngx_http_ai_tr_push(messages);
        if (msg == NULL
            || ngx_http_ai_tr_add_string(msg, "role", "user") == NULL
            || ngx_http_ai_tr_add_string(msg, "content", input->valuestring)
               == NULL)
        {
            goto failed;
        }

    } else {
        cJSON_ArrayForEach(item, input) {
            rc = ngx_http_ai_responses_message(pool, item, messages, err);
            if (rc != NGX_OK) {
                goto failed;
            }
        }

        rc = NGX_ERROR;
    }

    if (cJSON_GetArraySize(messages) == 0) {
        rc = ngx_http_ai_tr_error(pool, err, "\"input\" has no message%s",
                                  NULL);
        goto failed;
    }

    v = cJSON_GetObjectItemCaseSensitive(in, "max_output_tokens");

    if (cJSON_IsNumber(v)
        && ngx_http_ai_tr_add_copy(pivot, "max_completion_tokens", in,
                                   "max_output_tokens")
           != NGX_OK)
    {
        goto failed;
    }

    rc = ngx_http_ai_responses_tools(pool, in, pivot, err);
    if (rc != NGX_OK) {
        goto failed;
    }

    rc = ngx_http_ai_responses_format(pool, in, pivot, err);
    if (rc != NGX_OK) {
        goto failed;
    }

    rc = NGX_ERROR;

    /* reasoning: the effort is the pivot's; a summary has no equivalent */

    reasoning = cJSON_GetObjectItemCaseSensitive(in, "reasoning");
    s = ngx_http_ai_tr_string(reasoning, "effort");

    if (s && ngx_http_ai_tr_add_string(pivot, "reasoning_effort", s) == NULL)
    {
        goto failed;
    }

    /* usage is reported at the stream's end, whatever the client asked */

    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(in, "stream"))) {
        options = ngx_http_ai_tr_add_child(pivot, "stream_options", 0);
        if (options == NULL
            || cJSON_AddTrueToObject(options, "include_usage") == NULL)
        {
            goto failed;
        }
    }

    *out = pivot;

    return NGX_OK;

failed:

    cJSON_Delete(pivot);

    return rc;
}


/* an input item: a message, a function call, its output */

static ngx_int_t
ngx_http_ai_responses_message(ngx_pool_t *pool, cJSON *item,
    cJSON *messages, ngx_str_t *err)
{
    cJSON       *content, *msg, *parts, *part, *p, *calls, *call, *fn, *v;
    ngx_int_t    rc;
    ngx_uint_t   assistant;
    const char  *type, *role, *s;

    type = ngx_http_ai_tr_string(item, "type");

    if (type == NULL || ngx_strcmp(type, "message") == 0) {
        role = ngx_http_ai_tr_string(item, "role");

        if (role == NULL) {
            return ngx_http_ai_tr_error(pool, err, "an input message has no "
                                        "\"role\"%s", NULL);
        }

        assistant = (ngx_strcmp(role, "assistant") == 0);
        content = cJSON_GetObjectItemCaseSensitive(item, "content");

        msg = ngx_http_ai_tr_push(messages);
        if (msg == NULL
            || ngx_http_ai_tr_add_string(msg, "role", role) == NULL)
        {
            return NGX_ERROR;
        }

        if (cJSON_IsString(content)) {
            return ngx_http_ai_tr_add_string(msg, "content",
                                             content->valuestring)
                   ? NGX_OK : NGX_ERROR;
        }

        if (!cJSON_IsArray(content)) {
            return ngx_http_ai_tr_error(pool, err, "an input message's "
                                        "\"content\" must be a string or "
                                        "an array%s", NULL);
        }

        if (assistant) {
            /* the assistant's text: its parts joined */

            s = ngx_http_ai_tr_text(pool, content, "output_text", "", NULL);

            if (s == NULL) {
                return NGX_ERROR;
            }

            return ngx_http_ai_tr_add_string(msg, "content", s)
                   ? NGX_OK : NGX_ERROR;
        }

        parts = ngx_http_ai_tr_add_child(msg, "content", 1);
        if (parts == NULL) {
            return NGX_ERROR;
        }

        cJSON_ArrayForEach(part, content) {
            p = ngx_http_ai_responses_part(pool, part, assistant, err);
            if (p == NULL) {
                return err->len ? NGX_DECLINED : NGX_ERROR;
            }

            cJSON_AddItemToArray(parts, p);
        }

        return NGX_OK;
    }

    if (ngx_strcmp(type, "function_call") == 0) {

        /* consecutive calls are one assistant message's tool_calls */

        msg = ngx_http_ai_responses_last_call(messages);

        if (msg == NULL) {
            msg = ngx_http_ai_tr_push(messages);
            if (msg == NULL
                || ngx_http_ai_tr_add_string(msg, "role", "assistant")
                   == NULL
                || cJSON_AddNullToObject(msg, "content") == NULL)
            {
                return NGX_ERROR;
            }
        }

        calls = cJSON_GetObjectItemCaseSensitive(msg, "tool_calls");

        if (calls == NULL) {
            calls = ngx_http_ai_tr_add_child(msg, "tool_calls", 1);
            if (calls == NULL) {
                return NGX_ERROR;
            }
        }

        if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(item,
                                                             "call_id"))
            || !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(item, "name")))
        {
            return ngx_http_ai_tr_error(pool, err, "a function_call item "
                                        "needs its \"call_id\" and "
                                        "\"name\"%s", NULL);
        }

        call = ngx_http_ai_tr_push(calls);
        if (call == NULL
            || ngx_http_ai_tr_add_copy(call, "id", item, "call_id") != NGX_OK
            || ngx_http_ai_tr_add_string(call, "type", "function") == NULL
            || (fn = ngx_http_ai_tr_add_child(call, "function", 0)) == NULL
            || ngx_http_ai_tr_add_copy(fn, "name", item, "name") != NGX_OK
            || ngx_http_ai_tr_add_copy(fn, "arguments", item, "arguments")
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    if (ngx_strcmp(type, "function_call_output") == 0) {
        v = cJSON_GetObjectItemCaseSensitive(item, "output");

        if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(item,
                                                             "call_id")))
        {
            return ngx_http_ai_tr_error(pool, err, "a function_call_output "
                                        "item needs its \"call_id\"%s",
                                        NULL);
        }

        msg = ngx_http_ai_tr_push(messages);
        if (msg == NULL
            || ngx_http_ai_tr_add_string(msg, "role", "tool") == NULL
            || ngx_http_ai_tr_add_copy(msg, "tool_call_id", item, "call_id")
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (cJSON_IsString(v)) {
            rc = ngx_http_ai_tr_add_copy(msg, "content", item, "output");
            return rc;
        }

        s = cJSON_IsArray(v)
            ? ngx_http_ai_tr_text(pool, v, "input_text", "\n", NULL) : NULL;

        if (s == NULL) {
            return ngx_http_ai_tr_error(pool, err, "a function_call_output "
                                        "item's \"output\" must be a string "
                                        "or text parts%s", NULL);
        }

        return ngx_http_ai_tr_add_string(msg, "content", s)
               ? NGX_OK : NGX_ERROR;
    }

    if (ngx_strcmp(type, "reasoning") == 0) {
        /* a reasoning item of OpenAI's: no other provider can read it */
        return NGX_OK;
    }

    return ngx_http_ai_tr_error(pool, err, "input items of type \"%s\" are "
                                "not supported by this target", type);
}


static cJSON *
ngx_http_ai_responses_part(ngx_pool_t *pool, cJSON *part,
    ngx_uint_t assistant, ngx_str_t *err)
{
    cJSON       *p, *url, *image;
    const char  *type, *s;

    ngx_str_null(err);

    type = ngx_http_ai_tr_string(part, "type");

    if (type == NULL) {
        (void) ngx_http_ai_tr_error(pool, err, "a content part has no "
                                    "\"type\"%s", NULL);
        return NULL;
    }

    p = cJSON_CreateObject();
    if (p == NULL) {
        return NULL;
    }

    if (ngx_strcmp(type, "input_text") == 0
        || ngx_strcmp(type, "output_text") == 0)
    {
        s = ngx_http_ai_tr_string(part, "text");

        if (s == NULL) {
            cJSON_Delete(p);
            (void) ngx_http_ai_tr_error(pool, err, "a text part has no "
                                        "\"text\"%s", NULL);
            return NULL;
        }

        if (ngx_http_ai_tr_add_string(p, "type", "text") == NULL
            || ngx_http_ai_tr_add_string(p, "text", s) == NULL)
        {
            cJSON_Delete(p);
            return NULL;
        }

        return p;
    }

    if (ngx_strcmp(type, "input_image") == 0 && !assistant) {
        url = cJSON_GetObjectItemCaseSensitive(part, "image_url");

        if (!cJSON_IsString(url)) {
            cJSON_Delete(p);
            (void) ngx_http_ai_tr_error(pool, err, "an input_image part needs "
                                        "an \"image_url\" (a URL or a data "
                                        "URL; file_id is not supported by "
                                        "this target)%s", NULL);
            return NULL;
        }

        if (ngx_http_ai_tr_add_string(p, "type", "image_url") == NULL
            || (image = ngx_http_ai_tr_add_child(p, "image_url", 0)) == NULL
            || ngx_http_ai_tr_add_string(image, "url", url->valuestring)
               == NULL
            || (cJSON_GetObjectItemCaseSensitive(part, "detail")
                && ngx_http_ai_tr_add_copy(image, "detail", part, "detail")
                   != NGX_OK))
        {
            cJSON_Delete(p);
            return NULL;
        }

        return p;
    }

    cJSON_Delete(p);

    (void) ngx_http_ai_tr_error(pool, err, "content parts of type \"%s\" are "
                                "not supported by this target", type);
    return NULL;
}


/* the last message, if it is the assistant's tool calls */

static cJSON *
ngx_http_ai_responses_last_call(cJSON *messages)
{
    cJSON  *last;

    last = cJSON_GetArrayItem(messages, cJSON_GetArraySize(messages) - 1);

    if (last && ngx_http_ai_tr_is(cJSON_GetObjectItemCaseSensitive(last,
                                                                   "role"),
                                  "assistant")
        && cJSON_GetObjectItemCaseSensitive(last, "tool_calls"))
    {
        return last;
    }

    return NULL;
}


/* function tools and tool_choice; the hosted tools are OpenAI's own */

static ngx_int_t
ngx_http_ai_responses_tools(ngx_pool_t *pool, cJSON *in, cJSON *out,
    ngx_str_t *err)
{
    cJSON       *tools, *tool, *list, *t, *fn, *choice, *c;
    const char  *type;

    tools = cJSON_GetObjectItemCaseSensitive(in, "tools");

    if (cJSON_IsArray(tools) && cJSON_GetArraySize(tools)) {
        list = ngx_http_ai_tr_add_child(out, "tools", 1);
        if (list == NULL) {
            return NGX_ERROR;
        }

        cJSON_ArrayForEach(tool, tools) {
            type = ngx_http_ai_tr_string(tool, "type");

            if (type == NULL || ngx_strcmp(type, "function") != 0) {
                return ngx_http_ai_tr_error(pool, err, "tools of type \"%s\" "
                                            "are not supported by this "
                                            "target (function tools are)",
                                            type ? type : "");
            }

            if (ngx_http_ai_tr_string(tool, "name") == NULL) {
                return ngx_http_ai_tr_error(pool, err, "a function tool "
                                            "needs its \"name\"%s", NULL);
            }

            t = ngx_http_ai_tr_push(list);
            if (t == NULL
                || ngx_http_ai_tr_add_string(t, "type", "function") == NULL
                || (fn = ngx_http_ai_tr_add_child(t, "function", 0)) == NULL
                || ngx_http_ai_tr_add_copy(fn, "name", tool, "name")
                   != NGX_OK)
            {
                return NGX_ERROR;
            }

            if ((cJSON_GetObjectItemCaseSensitive(tool, "description")
                 && ngx_http_ai_tr_add_copy(fn, "description", tool,
                                            "description") != NGX_OK)
                || (cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(tool,
                                                              "parameters"))
                    && ngx_http_ai_tr_add_copy(fn, "parameters", tool,
                                               "parameters") != NGX_OK)
                || (cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(tool,
                                                                  "strict"))
                    && ngx_http_ai_tr_add_copy(fn, "strict", tool, "strict")
                       != NGX_OK))
            {
                return NGX_ERROR;
            }
        }
    }

    choice = cJSON_GetObjectItemCaseSensitive(in, "tool_choice");

    if (choice == NULL || cJSON_IsNull(choice)) {
        return NGX_OK;
    }

    if (cJSON_IsString(choice)) {
        return ngx_http_ai_tr_add_copy(out, "tool_choice", in, "tool_choice");
    }

    type = ngx_http_ai_tr_string(choice, "type");

    if (type && ngx_strcmp(type, "function") == 0
        && ngx_http_ai_tr_string(choice, "name"))
    {
        c = ngx_http_ai_tr_add_child(out, "tool_choice", 0);
        if (c == NULL
            || ngx_http_ai_tr_add_string(c, "type", "function") == NULL
            || (fn = ngx_http_ai_tr_add_child(c, "function", 0)) == NULL
            || ngx_http_ai_tr_add_copy(fn, "name", choice, "name") != NGX_OK)
        {
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    return ngx_http_ai_tr_error(pool, err, "a \"tool_choice\" of type \"%s\" "
                                "is not supported by this target",
                                type ? type : "");
}


/* text.format: structured output */

static ngx_int_t
ngx_http_ai_responses_format(ngx_pool_t *pool, cJSON *in, cJSON *out,
    ngx_str_t *err)
{
    cJSON       *format, *rf, *schema;
    const char  *type;

    format = cJSON_GetObjectItemCaseSensitive(
                 cJSON_GetObjectItemCaseSensitive(in, "text"), "format");

    if (format == NULL || cJSON_IsNull(format)) {
        return NGX_OK;
    }

    type = ngx_http_ai_tr_string(format, "type");

    if (type == NULL) {
        return ngx_http_ai_tr_error(pool, err, "\"text.format\" needs its "
                                    "\"type\"%s", NULL);
    }

    if (ngx_strcmp(type, "text") == 0) {
        return NGX_OK;
    }

    if (ngx_strcmp(type, "json_object") == 0) {
        rf = ngx_http_ai_tr_add_child(out, "response_format", 0);

        return (rf && ngx_http_ai_tr_add_string(rf, "type", "json_object"))
               ? NGX_OK : NGX_ERROR;
    }

    if (ngx_strcmp(type, "json_schema") != 0) {
        return ngx_http_ai_tr_error(pool, err, "a \"text.format\" of type "
                                    "\"%s\" is not supported", type);
    }

    if (ngx_http_ai_tr_string(format, "name") == NULL
        || !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(format,
                                                            "schema")))
    {
        return ngx_http_ai_tr_error(pool, err, "a json_schema \"text.format\" "
                                    "needs its \"name\" and \"schema\"%s",
                                    NULL);
    }

    rf = ngx_http_ai_tr_add_child(out, "response_format", 0);
    if (rf == NULL
        || ngx_http_ai_tr_add_string(rf, "type", "json_schema") == NULL
        || (schema = ngx_http_ai_tr_add_child(rf, "json_schema", 0)) == NULL
        || ngx_http_ai_tr_add_copy(schema, "name", format, "name") != NGX_OK
        || ngx_http_ai_tr_add_copy(schema, "schema", format, "schema")
           != NGX_OK
        || (cJSON_GetObjectItemCaseSensitive(format, "description")
            && ngx_http_ai_tr_add_copy(schema, "description", format,
                                       "description") != NGX_OK)
        || (cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(format, "strict"))
            && ngx_http_ai_tr_add_copy(schema, "strict", format, "strict")
               != NGX_OK))
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The same format, for an OpenAI or Azure target: the model, the
 * decorations as input messages at the start and the end, "stream".
 */

ngx_int_t
ngx_http_ai_responses_decorate(cJSON *json,
    ngx_http_ai_translate_request_t *req)
{
    cJSON                     *input, *msg, *list;
    ngx_uint_t                 i;
    ngx_http_ai_decoration_t  *d;

    if ((req->prepend && req->prepend->nelts)
        || (req->append && req->append->nelts))
    {
        input = cJSON_GetObjectItemCaseSensitive(json, "input");

        if (cJSON_IsString(input)) {
            list = cJSON_CreateArray();
            msg = cJSON_CreateObject();

            if (list == NULL || msg == NULL
                || ngx_http_ai_tr_add_string(msg, "role", "user") == NULL
                || ngx_http_ai_tr_add_string(msg, "content",
                                             input->valuestring) == NULL)
            {
                cJSON_Delete(list);
                cJSON_Delete(msg);
                return NGX_ERROR;
            }

            cJSON_AddItemToArray(list, msg);

            if (ngx_http_ai_tr_set(json, "input", list) != NGX_OK) {
                return NGX_ERROR;
            }

            input = list;
        }

        if (!cJSON_IsArray(input)) {
            input = cJSON_CreateArray();

            if (ngx_http_ai_tr_set(json, "input", input) != NGX_OK) {
                return NGX_ERROR;
            }
        }

        d = req->prepend ? req->prepend->elts : NULL;

        for (i = 0; req->prepend && i < req->prepend->nelts; i++) {
            msg = cJSON_CreateObject();

            if (msg == NULL
                || ngx_http_ai_tr_add_str(msg, "role", &d[i].role) == NULL
                || ngx_http_ai_tr_add_str(msg, "content", &d[i].content)
                   == NULL
                || !cJSON_InsertItemInArray(input, (int) i, msg))
            {
                cJSON_Delete(msg);
                return NGX_ERROR;
            }
        }

        d = req->append ? req->append->elts : NULL;

        for (i = 0; req->append && i < req->append->nelts; i++) {
            msg = cJSON_CreateObject();

            if (msg == NULL
                || ngx_http_ai_tr_add_str(msg, "role", &d[i].role) == NULL
                || ngx_http_ai_tr_add_str(msg, "content", &d[i].content)
                   == NULL
                || !cJSON_AddItemToArray(input, msg))
            {
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

    if ((req->stream || cJSON_GetObjectItemCaseSensitive(json, "stream"))
        && ngx_http_ai_tr_set(json, "stream", cJSON_CreateBool(req->stream))
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* ---------------------------------------------------------------------
 * answers: the pivot -> a response object, and back
 */

ngx_int_t
ngx_http_ai_responses_response_from_openai(ngx_pool_t *pool, cJSON *in,
    ngx_str_t *model, cJSON **out, ngx_str_t *err)
{
    char                 *id;
    cJSON                *choice, *msg, *output, *item, *content, *part,
                         *calls, *call, *fn, *res;
    ngx_int_t             created;
    const char           *s, *reason, *incomplete;
    ngx_http_ai_usage_t   usage;

    *out = NULL;

    choice = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(in,
                                                                 "choices"),
                                0);
    msg = cJSON_GetObjectItemCaseSensitive(choice, "message");

    if (!cJSON_IsObject(msg)) {
        return ngx_http_ai_tr_error(pool, err, "the answer has no %s",
                                    "message");
    }

    output = cJSON_CreateArray();
    if (output == NULL) {
        return NGX_ERROR;
    }

    s = ngx_http_ai_tr_string(msg, "content");

    if (s && *s) {
        id = ngx_http_ai_tr_gen_id(pool, "msg_");

        item = ngx_http_ai_tr_push(output);
        if (id == NULL || item == NULL
            || ngx_http_ai_tr_add_string(item, "id", id) == NULL
            || ngx_http_ai_tr_add_string(item, "type", "message") == NULL
            || ngx_http_ai_tr_add_string(item, "status", "completed") == NULL
            || ngx_http_ai_tr_add_string(item, "role", "assistant") == NULL
            || (content = ngx_http_ai_tr_add_child(item, "content", 1))
               == NULL
            || (part = ngx_http_ai_tr_push(content)) == NULL
            || ngx_http_ai_tr_add_string(part, "type", "output_text") == NULL
            || ngx_http_ai_tr_add_child(part, "annotations", 1) == NULL
            || ngx_http_ai_tr_add_child(part, "logprobs", 1) == NULL
            || ngx_http_ai_tr_add_string(part, "text", s) == NULL)
        {
            goto failed;
        }
    }

    s = ngx_http_ai_tr_string(msg, "refusal");

    if (s && *s) {
        id = ngx_http_ai_tr_gen_id(pool, "msg_");

        item = ngx_http_ai_tr_push(output);
        if (id == NULL || item == NULL
            || ngx_http_ai_tr_add_string(item, "id", id) == NULL
            || ngx_http_ai_tr_add_string(item, "type", "message") == NULL
            || ngx_http_ai_tr_add_string(item, "status", "completed") == NULL
            || ngx_http_ai_tr_add_string(item, "role", "assistant") == NULL
            || (content = ngx_http_ai_tr_add_child(item, "content", 1))
               == NULL
            || (part = ngx_http_ai_tr_push(content)) == NULL
            || ngx_http_ai_tr_add_string(part, "type", "refusal") == NULL
            || ngx_http_ai_tr_add_string(part, "refusal", s) == NULL)
        {
            goto failed;
        }
    }

    calls = cJSON_GetObjectItemCaseSensitive(msg, "tool_calls");

    cJSON_ArrayForEach(call, calls) {
        fn = cJSON_GetObjectItemCaseSensitive(call, "function");
        s = ngx_http_ai_tr_string(fn, "arguments");

        id = ngx_http_ai_tr_gen_id(pool, "fc_");

        item = ngx_http_ai_tr_push(output);
        if (id == NULL || item == NULL
            || ngx_http_ai_tr_add_string(item, "id", id) == NULL
            || ngx_http_ai_tr_add_string(item, "type", "function_call")
               == NULL
            || ngx_http_ai_tr_add_string(item, "status", "completed") == NULL
            || ngx_http_ai_tr_add_string(item, "arguments", s ? s : "{}")
               == NULL
            || ngx_http_ai_tr_add_copy(item, "call_id", call, "id") != NGX_OK
            || ngx_http_ai_tr_add_copy(item, "name", fn, "name") != NGX_OK)
        {
            goto failed;
        }
    }

    ngx_memzero(&usage, sizeof(ngx_http_ai_usage_t));
    ngx_http_ai_usage_object(NGX_HTTP_AI_FMT_OPENAI,
                             cJSON_GetObjectItemCaseSensitive(in, "usage"),
                             &usage);

    reason = ngx_http_ai_tr_string(choice, "finish_reason");
    incomplete = ngx_http_ai_responses_incomplete(reason);

    created = 0;
    (void) ngx_http_ai_tr_int(in, "created", &created);

    id = ngx_http_ai_tr_gen_id(pool, "resp_");
    if (id == NULL) {
        goto failed;
    }

    res = ngx_http_ai_responses_object(id, created ? created : time(NULL),
                                       model,
                                       incomplete ? "incomplete"
                                                  : "completed",
                                       incomplete, output,
                                       usage.found ? &usage : NULL);
    if (res == NULL) {
        return NGX_ERROR;
    }

    *out = res;

    return NGX_OK;

failed:

    cJSON_Delete(output);
    return NGX_ERROR;
}


/* a response object -> a chat completion: a cache keeps the pivot */

ngx_int_t
ngx_http_ai_responses_response_to_openai(ngx_pool_t *pool, cJSON *in,
    ngx_str_t *model, cJSON **out, ngx_str_t *err)
{
    u_char               *p, *text;
    size_t                len;
    cJSON                *pivot, *choices, *choice, *msg, *item, *part,
                         *calls, *call, *fn;
    ngx_int_t             created;
    const char           *type, *s, *status, *reason;
    ngx_http_ai_usage_t   usage;

    *out = NULL;

    if (!cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(in, "output"))) {
        return ngx_http_ai_tr_error(pool, err, "the response has no %s",
                                    "output");
    }

    /* the text of the message items */

    len = 0;

    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(in, "output")) {
        if (!ngx_http_ai_tr_is(cJSON_GetObjectItemCaseSensitive(item, "type"),
                               "message"))
        {
            continue;
        }

        cJSON_ArrayForEach(part,
                           cJSON_GetObjectItemCaseSensitive(item, "content"))
        {
            s = ngx_http_ai_tr_string(part, "text");
            len += s ? ngx_strlen(s) : 0;
        }
    }

    text = ngx_pnalloc(pool, len + 1);
    if (text == NULL) {
        return NGX_ERROR;
    }

    p = text;

    pivot = cJSON_CreateObject();
    if (pivot == NULL) {
        return NGX_ERROR;
    }

    calls = NULL;

    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(in, "output")) {
        type = ngx_http_ai_tr_string(item, "type");

        if (type && ngx_strcmp(type, "message") == 0) {
            cJSON_ArrayForEach(part,
                               cJSON_GetObjectItemCaseSensitive(item,
                                                                "content"))
            {
                s = ngx_http_ai_tr_string(part, "text");

                if (s) {
                    p = ngx_cpymem(p, s, ngx_strlen(s));
                }
            }

            continue;
        }

        if (type == NULL || ngx_strcmp(type, "function_call") != 0) {
            continue;
        }

        if (calls == NULL) {
            calls = cJSON_CreateArray();
            if (calls == NULL) {
                goto failed;
            }
        }

        call = ngx_http_ai_tr_push(calls);
        if (call == NULL
            || ngx_http_ai_tr_add_copy(call, "id", item, "call_id") != NGX_OK
            || ngx_http_ai_tr_add_string(call, "type", "function") == NULL
            || (fn = ngx_http_ai_tr_add_child(call, "function", 0)) == NULL
            || ngx_http_ai_tr_add_copy(fn, "name", item, "name") != NGX_OK
            || ngx_http_ai_tr_add_copy(fn, "arguments", item, "arguments")
               != NGX_OK)
        {
            goto failed;
        }
    }

    *p = '\0';

    created = 0;
    (void) ngx_http_ai_tr_int(in, "created_at", &created);

    status = ngx_http_ai_tr_string(in, "status");

    if (status && ngx_strcmp(status, "incomplete") == 0) {
        s = ngx_http_ai_tr_string(cJSON_GetObjectItemCaseSensitive(in,
                                                      "incomplete_details"),
                                  "reason");
        reason = (s && ngx_strcmp(s, "content_filter") == 0)
                 ? "content_filter" : "length";

    } else {
        reason = calls ? "tool_calls" : "stop";
    }

    if (ngx_http_ai_tr_add_copy(pivot, "id", in, "id") != NGX_OK
        || ngx_http_ai_tr_add_string(pivot, "object", "chat.completion")
           == NULL
        || ngx_http_ai_tr_add_int(pivot, "created",
                                  created ? created : time(NULL)) == NULL
        || ngx_http_ai_tr_add_str(pivot, "model", model) == NULL
        || (choices = ngx_http_ai_tr_add_child(pivot, "choices", 1)) == NULL
        || (choice = ngx_http_ai_tr_push(choices)) == NULL
        || ngx_http_ai_tr_add_int(choice, "index", 0) == NULL
        || (msg = ngx_http_ai_tr_add_child(choice, "message", 0)) == NULL
        || ngx_http_ai_tr_add_string(msg, "role", "assistant") == NULL
        || ((p == text && calls)
            ? cJSON_AddNullToObject(msg, "content")
            : ngx_http_ai_tr_add_string(msg, "content", (char *) text))
           == NULL
        || ngx_http_ai_tr_add_string(choice, "finish_reason", reason) == NULL)
    {
        goto failed;
    }

    if (calls) {
        cJSON_AddItemToObject(msg, "tool_calls", calls);
        calls = NULL;
    }

    ngx_memzero(&usage, sizeof(ngx_http_ai_usage_t));
    ngx_http_ai_usage_object(NGX_HTTP_AI_FMT_RESPONSES,
                             cJSON_GetObjectItemCaseSensitive(in, "usage"),
                             &usage);

    if (usage.found) {
        item = ngx_http_ai_tr_usage_openai(&usage);
        if (item == NULL) {
            goto failed;
        }

        cJSON_AddItemToObject(pivot, "usage", item);
    }

    *out = pivot;

    return NGX_OK;

failed:

    cJSON_Delete(calls);
    cJSON_Delete(pivot);

    return NGX_ERROR;
}


static cJSON *
ngx_http_ai_responses_usage(ngx_http_ai_usage_t *u)
{
    cJSON  *usage, *details;

    usage = cJSON_CreateObject();
    if (usage == NULL) {
        return NULL;
    }

    if (cJSON_AddNumberToObject(usage, "input_tokens",
                                (double) u->prompt_tokens) == NULL
        || (details = cJSON_AddObjectToObject(usage, "input_tokens_details"))
           == NULL
        || cJSON_AddNumberToObject(details, "cached_tokens",
                                   (double) u->cached_tokens) == NULL
        || cJSON_AddNumberToObject(usage, "output_tokens",
                                   (double) u->completion_tokens) == NULL
        || (details = cJSON_AddObjectToObject(usage, "output_tokens_details"))
           == NULL
        || cJSON_AddNumberToObject(details, "reasoning_tokens",
                                   (double) u->reasoning_tokens) == NULL
        || cJSON_AddNumberToObject(usage, "total_tokens",
                                   (double) (u->prompt_tokens
                                             + u->completion_tokens))
           == NULL)
    {
        cJSON_Delete(usage);
        return NULL;
    }

    return usage;
}


/*
 * A response object as OpenAI writes it; takes output.  The request's
 * parameters are not known here: the defaults are reported.
 */

static cJSON *
ngx_http_ai_responses_object(const char *id, time_t created,
    ngx_str_t *model, const char *status, const char *incomplete,
    cJSON *output, ngx_http_ai_usage_t *usage)
{
    cJSON  *res, *obj, *u;

    res = cJSON_CreateObject();
    if (res == NULL) {
        cJSON_Delete(output);
        return NULL;
    }

    if (ngx_http_ai_tr_add_string(res, "id", id) == NULL
        || ngx_http_ai_tr_add_string(res, "object", "response") == NULL
        || ngx_http_ai_tr_add_int(res, "created_at", (ngx_int_t) created)
           == NULL
        || ngx_http_ai_tr_add_string(res, "status", status) == NULL
        || cJSON_AddNullToObject(res, "error") == NULL)
    {
        goto failed;
    }

    if (incomplete) {
        obj = ngx_http_ai_tr_add_child(res, "incomplete_details", 0);
        if (obj == NULL
            || ngx_http_ai_tr_add_string(obj, "reason", incomplete) == NULL)
        {
            goto failed;
        }

    } else if (cJSON_AddNullToObject(res, "incomplete_details") == NULL) {
        goto failed;
    }

    if (cJSON_AddNullToObject(res, "instructions") == NULL
        || cJSON_AddNullToObject(res, "max_output_tokens") == NULL
        || ngx_http_ai_tr_add_str(res, "model", model) == NULL)
    {
        goto failed;
    }

    cJSON_AddItemToObject(res, "output", output);
    output = NULL;

    if (cJSON_AddTrueToObject(res, "parallel_tool_calls") == NULL
        || cJSON_AddNullToObject(res, "previous_response_id") == NULL
        || (obj = ngx_http_ai_tr_add_child(res, "reasoning", 0)) == NULL
        || cJSON_AddNullToObject(obj, "effort") == NULL
        || cJSON_AddNullToObject(obj, "summary") == NULL
        || cJSON_AddFalseToObject(res, "store") == NULL
        || (obj = ngx_http_ai_tr_add_child(res, "text", 0)) == NULL
        || (obj = ngx_http_ai_tr_add_child(obj, "format", 0)) == NULL
        || ngx_http_ai_tr_add_string(obj, "type", "text") == NULL
        || ngx_http_ai_tr_add_string(res, "tool_choice", "auto") == NULL
        || ngx_http_ai_tr_add_child(res, "tools", 1) == NULL
        || ngx_http_ai_tr_add_string(res, "truncation", "disabled") == NULL)
    {
        goto failed;
    }

    if (usage) {
        u = ngx_http_ai_responses_usage(usage);
        if (u == NULL) {
            goto failed;
        }

        cJSON_AddItemToObject(res, "usage", u);

    } else if (cJSON_AddNullToObject(res, "usage") == NULL) {
        goto failed;
    }

    if (cJSON_AddNullToObject(res, "user") == NULL
        || ngx_http_ai_tr_add_child(res, "metadata", 0) == NULL)
    {
        goto failed;
    }

    return res;

failed:

    cJSON_Delete(output);
    cJSON_Delete(res);

    return NULL;
}


/* incomplete_details.reason for a finish_reason, NULL: complete */

static const char *
ngx_http_ai_responses_incomplete(const char *reason)
{
    if (reason == NULL) {
        return NULL;
    }

    if (ngx_strcmp(reason, "length") == 0) {
        return "max_output_tokens";
    }

    if (ngx_strcmp(reason, "content_filter") == 0) {
        return "content_filter";
    }

    return NULL;
}


/* ---------------------------------------------------------------------
 * streams: the pivot's chunks -> the Responses API's events
 */

static ngx_http_ai_rs_state_t *
ngx_http_ai_rs_state(ngx_http_ai_stream_t *st)
{
    ngx_http_ai_rs_state_t  *rs;

    if (st->responses) {
        return st->responses;
    }

    rs = ngx_pcalloc(st->pool, sizeof(ngx_http_ai_rs_state_t));
    if (rs == NULL) {
        return NULL;
    }

    /* the upstream's own response id, when it is one (filtered) */

    rs->id = (st->id && ngx_strncmp(st->id, "resp_", 5) == 0)
             ? st->id : ngx_http_ai_tr_gen_id(st->pool, "resp_");
    if (rs->id == NULL) {
        return NULL;
    }

    rs->call = -1;
    st->responses = rs;

    return rs;
}


/* an item done, kept as text for the output of response.completed */

static ngx_int_t
ngx_http_ai_rs_keep(ngx_http_ai_stream_t *st, ngx_http_ai_rs_state_t *rs,
    cJSON *item)
{
    char    *s;
    u_char  *p;
    size_t   len, size;

    s = cJSON_PrintUnformatted(item);
    if (s == NULL) {
        return NGX_ERROR;
    }

    len = ngx_strlen(s);

    if (rs->output_len + len + 1 > rs->output_size) {
        size = ngx_max(2 * rs->output_size, rs->output_len + len + 1);

        p = ngx_pnalloc(st->pool, size);
        if (p == NULL) {
            cJSON_free(s);
            return NGX_ERROR;
        }

        if (rs->output) {
            ngx_memcpy(p, rs->output, rs->output_len);
            ngx_pfree(st->pool, rs->output);
        }

        rs->output = p;
        rs->output_size = size;
    }

    if (rs->output_len) {
        rs->output[rs->output_len++] = ',';
    }

    ngx_memcpy(rs->output + rs->output_len, s, len);
    rs->output_len += len;

    cJSON_free(s);

    return NGX_OK;
}


/* "event: TYPE" and its data, with "type" and "sequence_number" first */

static ngx_int_t
ngx_http_ai_rs_event(ngx_http_ai_stream_t *st, ngx_http_ai_rs_state_t *rs,
    const char *type, cJSON *json)
{
    cJSON      *t, *n;
    ngx_int_t   rc;

    if (json == NULL) {
        return NGX_ERROR;
    }

    t = cJSON_CreateString(type);
    n = cJSON_CreateNumber((double) rs->seq++);

    if (t == NULL || n == NULL) {
        cJSON_Delete(t);
        cJSON_Delete(n);
        cJSON_Delete(json);
        return NGX_ERROR;
    }

    /* type, sequence_number, then the rest, as OpenAI writes them */

    cJSON_InsertItemInArray(json, 0, n);
    n->string = (char *) "sequence_number";
    n->type |= cJSON_StringIsConst;

    cJSON_InsertItemInArray(json, 0, t);
    t->string = (char *) "type";
    t->type |= cJSON_StringIsConst;

    rc = ngx_http_ai_tr_out_event(st, type, json);

    cJSON_Delete(json);

    return rc;
}


/* response.created and response.in_progress */

static ngx_int_t
ngx_http_ai_rs_start(ngx_http_ai_stream_t *st, ngx_http_ai_rs_state_t *rs)
{
    cJSON       *json, *res;
    ngx_uint_t   i;

    static const char  *events[] = {
        "response.created", "response.in_progress"
    };

    if (rs->created) {
        return NGX_OK;
    }

    rs->created = 1;

    for (i = 0; i < 2; i++) {
        json = cJSON_CreateObject();
        if (json == NULL) {
            return NGX_ERROR;
        }

        res = ngx_http_ai_responses_object(rs->id, st->created, &st->model,
                                           "in_progress", NULL,
                                           cJSON_CreateArray(), NULL);
        if (res == NULL) {
            cJSON_Delete(json);
            return NGX_ERROR;
        }

        cJSON_AddItemToObject(json, "response", res);

        if (ngx_http_ai_rs_event(st, rs, events[i], json) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* the item being written: a message or a function call */

static cJSON *
ngx_http_ai_rs_item(ngx_http_ai_rs_state_t *rs, const char *status)
{
    cJSON  *item, *content, *part;

    item = cJSON_CreateObject();
    if (item == NULL) {
        return NULL;
    }

    if (ngx_http_ai_tr_add_string(item, "id", rs->item_id) == NULL) {
        goto failed;
    }

    if (rs->type == NGX_HTTP_AI_RS_TEXT) {
        if (ngx_http_ai_tr_add_string(item, "type", "message") == NULL
            || ngx_http_ai_tr_add_string(item, "status", status) == NULL
            || (content = ngx_http_ai_tr_add_child(item, "content", 1))
               == NULL
            || ngx_http_ai_tr_add_string(item, "role", "assistant") == NULL)
        {
            goto failed;
        }

        if (status[0] == 'c') {
            part = ngx_http_ai_rs_text_part(rs);
            if (part == NULL) {
                goto failed;
            }

            cJSON_AddItemToArray(content, part);
        }

        return item;
    }

    if (ngx_http_ai_tr_add_string(item, "type", "function_call") == NULL
        || ngx_http_ai_tr_add_string(item, "status", status) == NULL
        || ngx_http_ai_tr_add_string(item, "arguments",
                                     status[0] == 'c'
                                     ? (char *) rs->text : "")
           == NULL
        || ngx_http_ai_tr_add_string(item, "call_id", rs->call_id) == NULL
        || ngx_http_ai_tr_add_string(item, "name", rs->name) == NULL)
    {
        goto failed;
    }

    return item;

failed:

    cJSON_Delete(item);
    return NULL;
}


static cJSON *
ngx_http_ai_rs_text_part(ngx_http_ai_rs_state_t *rs)
{
    cJSON  *part;

    part = cJSON_CreateObject();

    if (part == NULL
        || ngx_http_ai_tr_add_string(part, "type", "output_text") == NULL
        || ngx_http_ai_tr_add_child(part, "annotations", 1) == NULL
        || ngx_http_ai_tr_add_child(part, "logprobs", 1) == NULL
        || ngx_http_ai_tr_add_string(part, "text",
                                     rs->text ? (char *) rs->text : "")
           == NULL)
    {
        cJSON_Delete(part);
        return NULL;
    }

    return part;
}


static ngx_int_t
ngx_http_ai_rs_open(ngx_http_ai_stream_t *st, ngx_http_ai_rs_state_t *rs,
    ngx_uint_t type, cJSON *call)
{
    cJSON       *json, *item, *fn;
    const char  *s;

    if (ngx_http_ai_rs_close(st, rs) != NGX_OK) {
        return NGX_ERROR;
    }

    rs->type = type;
    rs->item = rs->noutput++;
    rs->text_len = 0;

    if (rs->text) {
        rs->text[0] = '\0';
    }

    if (type == NGX_HTTP_AI_RS_TEXT) {
        rs->item_id = ngx_http_ai_tr_gen_id(st->pool, "msg_");

    } else {
        rs->item_id = ngx_http_ai_tr_gen_id(st->pool, "fc_");

        fn = cJSON_GetObjectItemCaseSensitive(call, "function");

        s = ngx_http_ai_tr_string(call, "id");
        rs->call_id = ngx_http_ai_tr_strdup(st->pool, s ? s : "",
                                            s ? ngx_strlen(s) : 0);

        s = ngx_http_ai_tr_string(fn, "name");
        rs->name = ngx_http_ai_tr_strdup(st->pool, s ? s : "",
                                         s ? ngx_strlen(s) : 0);

        if (rs->call_id == NULL || rs->name == NULL) {
            return NGX_ERROR;
        }
    }

    if (rs->item_id == NULL) {
        return NGX_ERROR;
    }

    json = cJSON_CreateObject();
    item = ngx_http_ai_rs_item(rs, "in_progress");

    if (json == NULL || item == NULL
        || ngx_http_ai_tr_add_int(json, "output_index",
                                  (ngx_int_t) rs->item) == NULL)
    {
        cJSON_Delete(json);
        cJSON_Delete(item);
        return NGX_ERROR;
    }

    cJSON_AddItemToObject(json, "item", item);

    if (ngx_http_ai_rs_event(st, rs, "response.output_item.added", json)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (type != NGX_HTTP_AI_RS_TEXT) {
        return NGX_OK;
    }

    json = cJSON_CreateObject();
    item = ngx_http_ai_rs_text_part(rs);

    if (json == NULL || item == NULL
        || ngx_http_ai_tr_add_string(json, "item_id", rs->item_id) == NULL
        || ngx_http_ai_tr_add_int(json, "output_index",
                                  (ngx_int_t) rs->item) == NULL
        || ngx_http_ai_tr_add_int(json, "content_index", 0) == NULL)
    {
        cJSON_Delete(json);
        cJSON_Delete(item);
        return NGX_ERROR;
    }

    cJSON_AddItemToObject(json, "part", item);

    return ngx_http_ai_rs_event(st, rs, "response.content_part.added", json);
}


/* the open item's .done events; the item joins the output */

static ngx_int_t
ngx_http_ai_rs_close(ngx_http_ai_stream_t *st, ngx_http_ai_rs_state_t *rs)
{
    cJSON  *json, *item;

    if (rs->type == NGX_HTTP_AI_RS_NONE) {
        return NGX_OK;
    }

    if (ngx_http_ai_rs_append(st, rs, "", 0) != NGX_OK) {
        return NGX_ERROR;
    }

    json = cJSON_CreateObject();

    if (json == NULL
        || ngx_http_ai_tr_add_string(json, "item_id", rs->item_id) == NULL
        || ngx_http_ai_tr_add_int(json, "output_index",
                                  (ngx_int_t) rs->item) == NULL)
    {
        cJSON_Delete(json);
        return NGX_ERROR;
    }

    if (rs->type == NGX_HTTP_AI_RS_TEXT) {
        if (ngx_http_ai_tr_add_int(json, "content_index", 0) == NULL
            || ngx_http_ai_tr_add_string(json, "text", (char *) rs->text)
               == NULL
            || ngx_http_ai_tr_add_child(json, "logprobs", 1) == NULL
            || ngx_http_ai_rs_event(st, rs, "response.output_text.done", json)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        json = cJSON_CreateObject();
        item = ngx_http_ai_rs_text_part(rs);

        if (json == NULL || item == NULL
            || ngx_http_ai_tr_add_string(json, "item_id", rs->item_id)
               == NULL
            || ngx_http_ai_tr_add_int(json, "output_index",
                                      (ngx_int_t) rs->item) == NULL
            || ngx_http_ai_tr_add_int(json, "content_index", 0) == NULL)
        {
            cJSON_Delete(json);
            cJSON_Delete(item);
            return NGX_ERROR;
        }

        cJSON_AddItemToObject(json, "part", item);

        if (ngx_http_ai_rs_event(st, rs, "response.content_part.done", json)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

    } else {
        if (ngx_http_ai_tr_add_string(json, "name", rs->name) == NULL
            || ngx_http_ai_tr_add_string(json, "arguments", (char *) rs->text)
               == NULL
            || ngx_http_ai_rs_event(st, rs,
                                    "response.function_call_arguments.done",
                                    json)
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    json = cJSON_CreateObject();
    item = ngx_http_ai_rs_item(rs, "completed");

    if (json == NULL || item == NULL
        || ngx_http_ai_tr_add_int(json, "output_index",
                                  (ngx_int_t) rs->item) == NULL)
    {
        cJSON_Delete(json);
        cJSON_Delete(item);
        return NGX_ERROR;
    }

    cJSON_AddItemToObject(json, "item", item);

    if (ngx_http_ai_rs_keep(st, rs, item) != NGX_OK) {
        cJSON_Delete(json);
        return NGX_ERROR;
    }

    rs->type = NGX_HTTP_AI_RS_NONE;
    rs->call = -1;

    return ngx_http_ai_rs_event(st, rs, "response.output_item.done", json);
}


/* a text or arguments delta, written without a tree: the hot path */

static ngx_int_t
ngx_http_ai_rs_delta(ngx_http_ai_stream_t *st, ngx_http_ai_rs_state_t *rs,
    const char *s)
{
    u_char      *p, *e;
    size_t       len, n;
    ngx_int_t    rc;
    const char  *name;

    len = ngx_strlen(s);

    if (len == 0) {
        return NGX_OK;
    }

    if (ngx_http_ai_rs_append(st, rs, s, len) != NGX_OK) {
        return NGX_ERROR;
    }

    name = (rs->type == NGX_HTTP_AI_RS_TEXT)
           ? "response.output_text.delta"
           : "response.function_call_arguments.delta";

    n = (size_t) ngx_http_ai_rs_escape(NULL, (u_char *) s, len);

    p = ngx_pnalloc(st->pool, 256 + 2 * ngx_strlen(name)
                              + ngx_strlen(rs->item_id) + n);
    if (p == NULL) {
        return NGX_ERROR;
    }

    e = ngx_snprintf(p, 256 + 2 * ngx_strlen(name) + ngx_strlen(rs->item_id),
                     "event: %s\ndata: {\"type\":\"%s\","
                     "\"sequence_number\":%ui,\"item_id\":\"%s\","
                     "\"output_index\":%ui,", name, name, rs->seq++,
                     rs->item_id, rs->item);

    if (rs->type == NGX_HTTP_AI_RS_TEXT) {
        e = ngx_cpymem(e, "\"content_index\":0,",
                       sizeof("\"content_index\":0,") - 1);
    }

    e = ngx_cpymem(e, "\"delta\":\"", sizeof("\"delta\":\"") - 1);
    e = ngx_http_ai_rs_escape(e, (u_char *) s, len);

    if (rs->type == NGX_HTTP_AI_RS_TEXT) {
        e = ngx_cpymem(e, "\",\"logprobs\":[]}\n\n",
                       sizeof("\",\"logprobs\":[]}\n\n") - 1);

    } else {
        e = ngx_cpymem(e, "\"}\n\n", sizeof("\"}\n\n") - 1);
    }

    rc = ngx_http_ai_tr_out(st, (char *) p, e - p);

    ngx_pfree(st->pool, p);

    return rc;
}


/*
 * A JSON string's content, escaped as cJSON prints it: with dst NULL
 * its length (as a pointer from NULL), else the end of the output.
 */

static u_char *
ngx_http_ai_rs_escape(u_char *dst, u_char *src, size_t len)
{
    u_char     c, e, *p, *last;
    size_t     n;

    static const u_char  hex[] = "0123456789abcdef";

    last = src + len;
    n = 0;

    for (p = src; p < last; p++) {
        c = *p;

        switch (c) {
        case '"':
        case '\\':
            e = c;
            break;
        case '\b':
            e = 'b';
            break;
        case '\f':
            e = 'f';
            break;
        case '\n':
            e = 'n';
            break;
        case '\r':
            e = 'r';
            break;
        case '\t':
            e = 't';
            break;
        default:
            e = (c < 0x20) ? 'u' : 0;
        }

        if (e == 0) {
            if (dst) {
                *dst++ = c;
            }

            n++;
            continue;
        }

        if (e != 'u') {
            if (dst) {
                *dst++ = '\\';
                *dst++ = e;
            }

            n += 2;
            continue;
        }

        if (dst) {
            dst = ngx_cpymem(dst, "\\u00", 4);
            *dst++ = hex[c >> 4];
            *dst++ = hex[c & 0xf];
        }

        n += 6;
    }

    return dst ? dst : (u_char *) n;
}


/* the open item's text (or arguments), NUL-terminated */

static ngx_int_t
ngx_http_ai_rs_append(ngx_http_ai_stream_t *st, ngx_http_ai_rs_state_t *rs,
    const char *s, size_t len)
{
    u_char  *p;
    size_t   size;

    if (rs->text_len + len + 1 > rs->text_size) {
        size = ngx_max(2 * rs->text_size, rs->text_len + len + 1);
        size = ngx_max(size, 256);

        p = ngx_pnalloc(st->pool, size);
        if (p == NULL) {
            return NGX_ERROR;
        }

        if (rs->text) {
            ngx_memcpy(p, rs->text, rs->text_len);
            ngx_pfree(st->pool, rs->text);
        }

        rs->text = p;
        rs->text_size = size;
    }

    ngx_memcpy(rs->text + rs->text_len, s, len);
    rs->text_len += len;
    rs->text[rs->text_len] = '\0';

    return NGX_OK;
}


/* a chunk of the pivot: its text, tool calls, finish reason and usage */

ngx_int_t
ngx_http_ai_responses_stream_from_openai(ngx_http_ai_stream_t *st,
    cJSON *chunk)
{
    cJSON                   *choice, *delta, *calls, *call, *fn, *content,
                            *usage;
    ngx_int_t                index;
    const char              *s;
    ngx_http_ai_rs_state_t  *rs;

    rs = ngx_http_ai_rs_state(st);
    if (rs == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_ai_rs_start(st, rs) != NGX_OK) {
        return NGX_ERROR;
    }

    usage = cJSON_GetObjectItemCaseSensitive(chunk, "usage");

    if (cJSON_IsObject(usage)) {
        ngx_http_ai_usage_object(NGX_HTTP_AI_FMT_OPENAI, usage, &st->usage);
    }

    choice = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(chunk,
                                                                 "choices"),
                                0);
    if (choice == NULL) {
        return NGX_OK;
    }

    delta = cJSON_GetObjectItemCaseSensitive(choice, "delta");
    content = cJSON_GetObjectItemCaseSensitive(delta, "content");

    if (cJSON_IsString(content) && content->valuestring[0]) {
        if (rs->type != NGX_HTTP_AI_RS_TEXT
            && ngx_http_ai_rs_open(st, rs, NGX_HTTP_AI_RS_TEXT, NULL)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        if (ngx_http_ai_rs_delta(st, rs, content->valuestring) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    calls = cJSON_GetObjectItemCaseSensitive(delta, "tool_calls");

    cJSON_ArrayForEach(call, calls) {
        index = 0;
        (void) ngx_http_ai_tr_int(call, "index", &index);

        if (rs->type != NGX_HTTP_AI_RS_CALL || rs->call != index) {
            if (ngx_http_ai_rs_open(st, rs, NGX_HTTP_AI_RS_CALL, call)
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            rs->call = index;
            st->tool_calls = 1;
        }

        fn = cJSON_GetObjectItemCaseSensitive(call, "function");
        s = ngx_http_ai_tr_string(fn, "arguments");

        if (s && ngx_http_ai_rs_delta(st, rs, s) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    s = ngx_http_ai_tr_string(choice, "finish_reason");

    if (s && rs->finish.len == 0) {
        rs->finish.len = ngx_strlen(s);
        rs->finish.data = (u_char *) ngx_http_ai_tr_strdup(st->pool, s,
                                                           rs->finish.len);
        if (rs->finish.data == NULL) {
            return NGX_ERROR;
        }

        st->finished = 1;
    }

    return NGX_OK;
}


/* the end: the open item closed, response.completed (or .incomplete) */

ngx_int_t
ngx_http_ai_responses_stream_close(ngx_http_ai_stream_t *st)
{
    u_char                  *p;
    cJSON                   *json, *res, *output;
    const char              *incomplete;
    ngx_http_ai_rs_state_t  *rs;

    rs = ngx_http_ai_rs_state(st);
    if (rs == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_ai_rs_start(st, rs) != NGX_OK
        || ngx_http_ai_rs_close(st, rs) != NGX_OK)
    {
        return NGX_ERROR;
    }

    incomplete = ngx_http_ai_responses_incomplete(
                     rs->finish.len ? (char *) rs->finish.data : NULL);

    /* the items kept as text, "[" and "]" around them: one parse */

    p = ngx_pnalloc(st->pool, rs->output_len + 2);
    if (p == NULL) {
        return NGX_ERROR;
    }

    p[0] = '[';

    if (rs->output_len) {
        ngx_memcpy(p + 1, rs->output, rs->output_len);
    }

    p[rs->output_len + 1] = ']';

    output = cJSON_ParseWithLength((char *) p, rs->output_len + 2);

    ngx_pfree(st->pool, p);

    if (output == NULL) {
        return NGX_ERROR;
    }

    json = cJSON_CreateObject();
    if (json == NULL) {
        cJSON_Delete(output);
        return NGX_ERROR;
    }

    res = ngx_http_ai_responses_object(rs->id, st->created, &st->model,
                                       incomplete ? "incomplete"
                                                  : "completed",
                                       incomplete, output,
                                       st->usage.found ? &st->usage : NULL);
    if (res == NULL) {
        cJSON_Delete(json);
        return NGX_ERROR;
    }

    cJSON_AddItemToObject(json, "response", res);

    return ngx_http_ai_rs_event(st, rs, incomplete ? "response.incomplete"
                                                   : "response.completed",
                                json);
}


/* an error event: {"type":"error","code","message","param"} */

ngx_int_t
ngx_http_ai_responses_stream_error(ngx_http_ai_stream_t *st,
    const char *message, const char *code)
{
    cJSON                   *json;
    ngx_http_ai_rs_state_t  *rs;

    rs = ngx_http_ai_rs_state(st);
    if (rs == NULL) {
        return NGX_ERROR;
    }

    json = cJSON_CreateObject();

    if (json == NULL
        || (code ? ngx_http_ai_tr_add_string(json, "code", code)
                 : cJSON_AddNullToObject(json, "code")) == NULL
        || ngx_http_ai_tr_add_string(json, "message", message) == NULL
        || cJSON_AddNullToObject(json, "param") == NULL)
    {
        cJSON_Delete(json);
        return NGX_ERROR;
    }

    return ngx_http_ai_rs_event(st, rs, "error", json);
}


/*
 * The same format passed through (an OpenAI or Azure target): the events
 * as they are; the end and an error are noted.
 */

ngx_int_t
ngx_http_ai_responses_stream_pass(ngx_http_ai_stream_t *st, ngx_str_t *name,
    ngx_str_t *data)
{
    if (data == NULL) {
        return NGX_OK;
    }

    if ((name->len == sizeof("response.completed") - 1
         && ngx_strncmp(name->data, "response.completed", name->len) == 0)
        || (name->len == sizeof("response.incomplete") - 1
            && ngx_strncmp(name->data, "response.incomplete", name->len)
               == 0))
    {
        st->done = 1;

    } else if ((name->len == sizeof("response.failed") - 1
                && ngx_strncmp(name->data, "response.failed", name->len)
                   == 0)
               || (name->len == 5 && ngx_strncmp(name->data, "error", 5) == 0))
    {
        st->error = 1;
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


/*
 * The Responses API's events -> the pivot's chunks (a cache keeps the
 * stream of an OpenAI target in the pivot's format): the text deltas,
 * the function calls (their start, then their arguments), the end with
 * the finish reason and the usage, an error.
 */

ngx_int_t
ngx_http_ai_responses_stream_to_openai(ngx_http_ai_stream_t *st,
    ngx_str_t *name, cJSON *json)
{
    cJSON       *chunk, *delta, *item, *res, *error;
    ngx_int_t    index, tool;
    const char  *type, *s;

    type = ngx_http_ai_tr_string(json, "type");

    if (type == NULL) {
        return NGX_OK;
    }

    if (ngx_strcmp(type, "response.created") == 0) {
        /* the chunks' id is the response's */

        s = ngx_http_ai_tr_string(cJSON_GetObjectItemCaseSensitive(json,
                                                                "response"),
                                  "id");

        if (s && *s && st->id == NULL) {
            st->id = ngx_http_ai_tr_strdup(st->pool, s, ngx_strlen(s));
            if (st->id == NULL) {
                return NGX_ERROR;
            }
        }

        return ngx_http_ai_tr_emit_role(st);
    }

    if (ngx_strcmp(type, "response.output_text.delta") == 0) {
        s = ngx_http_ai_tr_string(json, "delta");

        if (s == NULL || *s == '\0') {
            return NGX_OK;
        }

        if (ngx_http_ai_tr_emit_role(st) != NGX_OK) {
            return NGX_ERROR;
        }

        chunk = ngx_http_ai_tr_chunk(st, &delta, NULL);
        if (chunk == NULL
            || ngx_http_ai_tr_add_string(delta, "content", s) == NULL)
        {
            cJSON_Delete(chunk);
            return NGX_ERROR;
        }

        return ngx_http_ai_tr_emit_chunk(st, chunk);
    }

    index = -1;

    if (ngx_http_ai_tr_int(json, "output_index", &index) != NGX_OK
        || index > NGX_HTTP_AI_MAX_INDEX)
    {
        index = -1;
    }

    if (ngx_strcmp(type, "response.output_item.added") == 0) {
        item = cJSON_GetObjectItemCaseSensitive(json, "item");

        if (index < 0
            || !ngx_http_ai_tr_is(cJSON_GetObjectItemCaseSensitive(item,
                                                                   "type"),
                                  "function_call"))
        {
            return NGX_OK;
        }

        if (ngx_http_ai_tr_emit_role(st) != NGX_OK) {
            return NGX_ERROR;
        }

        tool = st->ntools++;
        st->tool_calls = 1;

        if (ngx_http_ai_tr_array_set(&st->tools, index, tool) != NGX_OK) {
            return NGX_ERROR;
        }

        return ngx_http_ai_tr_emit_call(st, tool, item, "call_id", NULL);
    }

    if (ngx_strcmp(type, "response.function_call_arguments.delta") == 0) {
        tool = (index < 0) ? -1 : ngx_http_ai_tr_array_get(&st->tools, index);
        s = ngx_http_ai_tr_string(json, "delta");

        if (tool < 0 || s == NULL || *s == '\0') {
            return NGX_OK;
        }

        return ngx_http_ai_tr_emit_call(st, tool, NULL, NULL, s);
    }

    if (ngx_strcmp(type, "response.completed") == 0
        || ngx_strcmp(type, "response.incomplete") == 0)
    {
        res = cJSON_GetObjectItemCaseSensitive(json, "response");

        ngx_http_ai_usage_object(NGX_HTTP_AI_FMT_RESPONSES,
                                 cJSON_GetObjectItemCaseSensitive(res,
                                                                  "usage"),
                                 &st->usage);

        s = ngx_http_ai_tr_string(cJSON_GetObjectItemCaseSensitive(res,
                                                      "incomplete_details"),
                                  "reason");

        if (ngx_http_ai_tr_emit_finish(st,
                ngx_http_ai_tr_reason(NGX_HTTP_AI_FMT_OPENAI,
                                      NGX_HTTP_AI_FMT_OPENAI,
                                      type[9] == 'i'
                                      ? ((s && ngx_strcmp(s, "content_filter")
                                                == 0)
                                         ? "content_filter" : "length")
                                      : "stop"))
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        return ngx_http_ai_tr_emit_close(st);
    }

    if (ngx_strcmp(type, "response.failed") == 0
        || ngx_strcmp(type, "error") == 0)
    {
        error = (type[0] == 'e')
                ? json
                : cJSON_GetObjectItemCaseSensitive(
                      cJSON_GetObjectItemCaseSensitive(json, "response"),
                      "error");

        s = ngx_http_ai_tr_string(error, "message");

        return ngx_http_ai_tr_emit_error(st, "api_error",
                                         s ? s : "the upstream response "
                                                 "failed",
                                         ngx_http_ai_tr_string(error,
                                                               "code"));
    }

    return NGX_OK;
}
