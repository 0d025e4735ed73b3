
/*
 * Copyright (C) AI Gateway authors
 *
 * The input guard on a request: every text of the parsed body, with its
 * role and whether it is in the last message, goes through the rules, in
 * each door's format:
 *
 *   OpenAI     messages[].content (a string, or text and refusal
 *              parts), the assistant's tool_calls[].function.arguments
 *              and function_call.arguments, "tool" and "function"
 *              messages as tool results; embeddings' input
 *   Anthropic  system, messages[].content (a string or blocks): text,
 *              tool_use input, tool_result content, document (its text
 *              source, its content's blocks, title and context),
 *              search_result (its title and content's blocks)
 *   Gemini     systemInstruction, contents[].parts[].text, functionCall
 *              args ("model" is the assistant), functionResponse
 *   Responses  instructions, input (a string, or items: messages' content,
 *              function_call arguments, function_call_output output)
 *
 * The members' names of tool arguments and results are texts too.  A
 * value nested deeper than NGX_HTTP_AI_PG_DEPTH is refused, not passed
 * unread.
 *
 * A text the rules changed replaces its string in the tree, and the new
 * body goes to the core (ngx_http_ai_request_set_body()): what reaches the
 * provider and what ai_log records is the masked request.
 */


#include "ngx_http_ai_prompt_guard.h"


typedef struct {
    ngx_http_request_t         *request;
    ngx_http_ai_pg_ctx_t       *ctx;
    ngx_array_t                *rules;
    ngx_http_ai_pg_where_t      where;
} ngx_http_ai_pg_walk_t;


static ngx_int_t ngx_http_ai_prompt_guard_view(ngx_http_ai_pg_walk_t *w,
    ngx_http_ai_request_t *req);
static ngx_int_t ngx_http_ai_prompt_guard_openai(ngx_http_ai_pg_walk_t *w,
    cJSON *root);
static ngx_int_t ngx_http_ai_prompt_guard_anthropic(
    ngx_http_ai_pg_walk_t *w, cJSON *root);
static ngx_int_t ngx_http_ai_prompt_guard_gemini(ngx_http_ai_pg_walk_t *w,
    cJSON *root);
static ngx_int_t ngx_http_ai_prompt_guard_responses(
    ngx_http_ai_pg_walk_t *w, cJSON *root);
static ngx_int_t ngx_http_ai_prompt_guard_content(ngx_http_ai_pg_walk_t *w,
    cJSON *parent, const char *name, const char *text_key);
static ngx_int_t ngx_http_ai_prompt_guard_block(ngx_http_ai_pg_walk_t *w,
    cJSON *block, ngx_uint_t role, ngx_uint_t depth);
static ngx_int_t ngx_http_ai_prompt_guard_blocks(ngx_http_ai_pg_walk_t *w,
    cJSON *parent, const char *name, ngx_uint_t role, ngx_uint_t depth);
static ngx_int_t ngx_http_ai_prompt_guard_strings(ngx_http_ai_pg_walk_t *w,
    cJSON *value, ngx_uint_t depth);
static ngx_int_t ngx_http_ai_prompt_guard_string(ngx_http_ai_pg_walk_t *w,
    cJSON *item);
static ngx_int_t ngx_http_ai_prompt_guard_name(ngx_http_ai_pg_walk_t *w,
    cJSON *item);
static ngx_int_t ngx_http_ai_prompt_guard_twice(ngx_http_ai_pg_walk_t *w,
    cJSON *object);
static ngx_int_t ngx_http_ai_prompt_guard_arguments(
    ngx_http_ai_pg_walk_t *w, cJSON *parent);
static ngx_int_t ngx_http_ai_prompt_guard_objects(ngx_http_ai_pg_walk_t *w,
    cJSON *value, ngx_uint_t depth);
static int ngx_libc_cdecl ngx_http_ai_prompt_guard_names(const void *one,
    const void *two);
static ngx_int_t ngx_http_ai_prompt_guard_replace(ngx_http_ai_pg_walk_t *w,
    char **s, ngx_str_t *out);
static void ngx_http_ai_prompt_guard_free(void *data);
static ngx_uint_t ngx_http_ai_prompt_guard_role(cJSON *message);
static ngx_uint_t ngx_http_ai_pg_role(u_char *s, size_t len);
static cJSON *ngx_http_ai_pg_item(cJSON *object, const char *name);


#define ngx_http_ai_pg_is(item, s)                                           \
    (cJSON_IsString(item) && ngx_strcmp((item)->valuestring, s) == 0)

/* the deepest value read: a request nesting deeper is refused */
#define NGX_HTTP_AI_PG_DEPTH  64


/* what blocks an object whose masked names would make two of one name */
static ngx_http_ai_pg_rule_t  ngx_http_ai_pg_twice = {
    ngx_string("(two members of one name)"), ngx_null_string, NULL, 0,
    NGX_HTTP_AI_PG_BLOCK, 0,
    ngx_string("Masking the request would give an object two members of "
               "one name."),
    NULL, NULL, 0, 0, 0, 1, 1, 0
};


/* what blocks a request nesting a value deeper than the guard reads */
static ngx_http_ai_pg_rule_t  ngx_http_ai_pg_too_deep = {
    ngx_string("(too deep)"), ngx_null_string, NULL, 0,
    NGX_HTTP_AI_PG_BLOCK, 0,
    ngx_string("The request nests a value deeper than the gateway's "
               "content policy checks."),
    NULL, NULL, 0, 0, 0, 1, 1, 0
};


/*
 * NGX_OK (the request may go, changed or not), NGX_DECLINED (a rule
 * blocks it: ctx->blocked), NGX_ERROR.
 */

ngx_int_t
ngx_http_ai_prompt_guard_request(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ai, ngx_http_ai_pg_ctx_t *ctx, ngx_array_t *rules)
{
    char                   *s;
    cJSON                  *json;
    ngx_int_t               rc;
    ngx_str_t               body, err;
    ngx_http_ai_pg_walk_t   w;

    w.request = r;
    w.ctx = ctx;
    w.rules = rules;
    w.where.role = NGX_HTTP_AI_PG_USER;
    w.where.hash = 0;
    w.where.last = 1;

    if (ai->req.bare) {
        /* the texts from the view; the tree built if one is changed */

        rc = ngx_http_ai_prompt_guard_view(&w, &ai->req);

        if (rc != NGX_OK || !ctx->changed) {
            return rc;
        }

        goto changed;
    }

    json = ngx_http_ai_request_tree(&ai->req);

    if (json == NULL) {
        return NGX_OK;
    }

    switch (ai->req.format) {

    case NGX_HTTP_AI_FMT_ANTHROPIC:
        rc = ngx_http_ai_prompt_guard_anthropic(&w, json);
        break;

    case NGX_HTTP_AI_FMT_GEMINI:
        rc = ngx_http_ai_prompt_guard_gemini(&w, json);
        break;

    case NGX_HTTP_AI_FMT_RESPONSES:
        rc = ngx_http_ai_prompt_guard_responses(&w, json);
        break;

    default: /* NGX_HTTP_AI_FMT_OPENAI */
        rc = ngx_http_ai_prompt_guard_openai(&w, json);
    }

    if (rc != NGX_OK || !ctx->changed) {
        return rc;
    }

changed:

    /* the masked body: what the provider gets and ai_log records */

    json = ngx_http_ai_request_tree(&ai->req);
    if (json == NULL) {
        return NGX_ERROR;
    }

    s = cJSON_PrintUnformatted(json);
    if (s == NULL) {
        return NGX_ERROR;
    }

    body.len = ngx_strlen(s);
    body.data = ngx_pnalloc(r->pool, body.len);

    if (body.data == NULL) {
        cJSON_free(s);
        return NGX_ERROR;
    }

    ngx_memcpy(body.data, s, body.len);
    cJSON_free(s);

    rc = ngx_http_ai_request_set_body(r, &body, &err);

    if (rc == NGX_DECLINED) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "ai_prompt_guard: the masked request does not parse: "
                      "%V", &err);
        return NGX_ERROR;
    }

    return rc;
}


/*
 * A bare chat request: each message's text from the view, as the walk of
 * the tree reads its string content; a text the rules change is written
 * to its message in the tree, built then
 */

static ngx_int_t
ngx_http_ai_prompt_guard_view(ngx_http_ai_pg_walk_t *w,
    ngx_http_ai_request_t *req)
{
    cJSON                  *json, *message, *content;
    ngx_int_t               rc;
    ngx_str_t               out;
    ngx_uint_t              i, k;
    ngx_http_ai_message_t  *m;

    m = req->messages.elts;
    message = NULL;
    k = 0;

    for (i = 0; i < req->messages.nelts; i++) {
        w->where.role = ngx_http_ai_pg_role(m[i].role.data, m[i].role.len);
        w->where.last = (i == req->messages.nelts - 1);

        /* made once, for the token estimate's notes too */

        w->where.hash = (w->where.last || m[i].text.len == 0)
                        ? 0 : ngx_http_ai_message_hash(req, &m[i]);

        rc = ngx_http_ai_prompt_guard_text(w->request, w->ctx, w->rules,
                                           &w->where, &m[i].text, &out);

        w->where.hash = 0;

        if (rc != NGX_OK || out.data == m[i].text.data) {
            if (rc != NGX_OK) {
                return rc;
            }

            continue;
        }

        if (message == NULL) {
            json = ngx_http_ai_request_tree(req);
            message = ngx_http_ai_pg_item(json, "messages");

            if (message == NULL) {
                return NGX_ERROR;
            }

            message = message->child;
        }

        for ( /* void */ ; k < i && message; k++) {
            message = message->next;
        }

        content = ngx_http_ai_pg_item(message, "content");

        if (!cJSON_IsString(content)) {
            return NGX_ERROR;
        }

        rc = ngx_http_ai_prompt_guard_replace(w, &content->valuestring, &out);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_prompt_guard_openai(ngx_http_ai_pg_walk_t *w, cJSON *root)
{
    cJSON      *messages, *m, *calls, *call, *f, *last;
    ngx_int_t   rc;

    messages = ngx_http_ai_pg_item(root, "messages");

    if (!cJSON_IsArray(messages)) {
        /* embeddings: their input is the user's */
        return ngx_http_ai_prompt_guard_content(w, root, "input", "text");
    }

    last = cJSON_GetArrayItem(messages, cJSON_GetArraySize(messages) - 1);

    cJSON_ArrayForEach(m, messages) {
        w->where.role = ngx_http_ai_prompt_guard_role(m);
        w->where.last = (m == last);

        rc = ngx_http_ai_prompt_guard_content(w, m, "content", "text");
        if (rc != NGX_OK) {
            return rc;
        }

        calls = ngx_http_ai_pg_item(m, "tool_calls");

        cJSON_ArrayForEach(call, calls) {
            f = ngx_http_ai_pg_item(call, "function");

            rc = ngx_http_ai_prompt_guard_arguments(w, f);
            if (rc != NGX_OK) {
                return rc;
            }
        }

        /* the deprecated single call */

        f = ngx_http_ai_pg_item(m, "function_call");

        rc = ngx_http_ai_prompt_guard_arguments(w, f);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_prompt_guard_anthropic(ngx_http_ai_pg_walk_t *w, cJSON *root)
{
    cJSON       *messages, *m, *content, *block, *last;
    ngx_int_t    rc;
    ngx_uint_t   role;

    messages = ngx_http_ai_pg_item(root, "messages");
    last = cJSON_GetArrayItem(messages, cJSON_GetArraySize(messages) - 1);

    w->where.role = NGX_HTTP_AI_PG_SYSTEM;
    w->where.last = 0;

    rc = ngx_http_ai_prompt_guard_content(w, root, "system", "text");
    if (rc != NGX_OK) {
        return rc;
    }

    cJSON_ArrayForEach(m, messages) {
        role = ngx_http_ai_prompt_guard_role(m);
        w->where.last = (m == last);

        content = ngx_http_ai_pg_item(m, "content");

        if (!cJSON_IsArray(content)) {
            w->where.role = role;

            rc = ngx_http_ai_prompt_guard_content(w, m, "content", "text");
            if (rc != NGX_OK) {
                return rc;
            }

            continue;
        }

        cJSON_ArrayForEach(block, content) {
            rc = ngx_http_ai_prompt_guard_block(w, block, role, 0);
            if (rc != NGX_OK) {
                return rc;
            }
        }
    }

    return NGX_OK;
}


/*
 * An Anthropic content block: a text, a tool call's input, a tool result,
 * a document, a search result (the last three hold blocks in turn)
 */

static ngx_int_t
ngx_http_ai_prompt_guard_block(ngx_http_ai_pg_walk_t *w, cJSON *block,
    ngx_uint_t role, ngx_uint_t depth)
{
    cJSON      *type, *source, *st;
    ngx_int_t   rc;

    if (depth > NGX_HTTP_AI_PG_DEPTH) {
        w->ctx->blocked = &ngx_http_ai_pg_too_deep;
        return NGX_DECLINED;
    }

    type = ngx_http_ai_pg_item(block, "type");
    w->where.role = role;

    if (!cJSON_IsString(type)) {
        return NGX_OK;
    }

    switch (type->valuestring[0]) {

    case 't':
        if (ngx_strcmp(type->valuestring, "text") == 0) {
            return ngx_http_ai_prompt_guard_content(w, block, "text", NULL);
        }

        if (ngx_strcmp(type->valuestring, "tool_use") == 0) {
            return ngx_http_ai_prompt_guard_strings(w,
                       ngx_http_ai_pg_item(block, "input"), depth + 1);
        }

        if (ngx_strcmp(type->valuestring, "tool_result") == 0) {
            return ngx_http_ai_prompt_guard_blocks(w, block, "content",
                                                   NGX_HTTP_AI_PG_TOOL,
                                                   depth + 1);
        }

        return NGX_OK;

    case 'd':
        if (ngx_strcmp(type->valuestring, "document") != 0) {
            return NGX_OK;
        }

        rc = ngx_http_ai_prompt_guard_content(w, block, "title", NULL);

        if (rc == NGX_OK) {
            w->where.role = role;
            rc = ngx_http_ai_prompt_guard_content(w, block, "context", NULL);
        }

        if (rc != NGX_OK) {
            return rc;
        }

        source = ngx_http_ai_pg_item(block, "source");
        st = ngx_http_ai_pg_item(source, "type");

        if (ngx_http_ai_pg_is(st, "text")) {
            w->where.role = role;
            return ngx_http_ai_prompt_guard_content(w, source, "data", NULL);
        }

        if (ngx_http_ai_pg_is(st, "content")) {
            return ngx_http_ai_prompt_guard_blocks(w, source, "content", role,
                                                   depth + 1);
        }

        /* base64 (a PDF), a URL, a file: not text the gateway reads */

        return NGX_OK;

    case 's':
        if (ngx_strcmp(type->valuestring, "search_result") != 0) {
            return NGX_OK;
        }

        rc = ngx_http_ai_prompt_guard_content(w, block, "title", NULL);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_ai_prompt_guard_blocks(w, block, "content", role,
                                               depth + 1);

    default:
        return NGX_OK;
    }
}


/* parent[name]: a string, or an array of blocks, with their role */

static ngx_int_t
ngx_http_ai_prompt_guard_blocks(ngx_http_ai_pg_walk_t *w, cJSON *parent,
    const char *name, ngx_uint_t role, ngx_uint_t depth)
{
    cJSON      *item, *block;
    ngx_int_t   rc;

    item = ngx_http_ai_pg_item(parent, name);
    w->where.role = role;

    if (cJSON_IsString(item)) {
        return ngx_http_ai_prompt_guard_string(w, item);
    }

    cJSON_ArrayForEach(block, item) {
        if (cJSON_IsString(block)) {
            w->where.role = role;
            rc = ngx_http_ai_prompt_guard_string(w, block);

        } else {
            rc = ngx_http_ai_prompt_guard_block(w, block, role, depth);
        }

        if (rc != NGX_OK) {
            return rc;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_prompt_guard_responses(ngx_http_ai_pg_walk_t *w, cJSON *root)
{
    cJSON       *input, *item, *type, *last;
    ngx_int_t    rc;

    w->where.role = NGX_HTTP_AI_PG_SYSTEM;
    w->where.last = 0;

    rc = ngx_http_ai_prompt_guard_content(w, root, "instructions", NULL);
    if (rc != NGX_OK) {
        return rc;
    }

    input = ngx_http_ai_pg_item(root, "input");

    if (!cJSON_IsArray(input)) {
        w->where.role = NGX_HTTP_AI_PG_USER;
        w->where.last = 1;

        return ngx_http_ai_prompt_guard_content(w, root, "input", NULL);
    }

    last = cJSON_GetArrayItem(input, cJSON_GetArraySize(input) - 1);

    cJSON_ArrayForEach(item, input) {
        type = ngx_http_ai_pg_item(item, "type");
        w->where.last = (item == last);

        if (type == NULL || ngx_http_ai_pg_is(type, "message")) {
            w->where.role = ngx_http_ai_prompt_guard_role(item);
            rc = ngx_http_ai_prompt_guard_content(w, item, "content", "text");

        } else if (ngx_http_ai_pg_is(type, "function_call")) {
            w->where.role = NGX_HTTP_AI_PG_ASSISTANT;
            rc = ngx_http_ai_prompt_guard_arguments(w, item);

        } else if (ngx_http_ai_pg_is(type, "function_call_output")) {
            w->where.role = NGX_HTTP_AI_PG_TOOL;
            rc = ngx_http_ai_prompt_guard_content(w, item, "output", "text");

        } else {
            rc = NGX_OK;
        }

        if (rc != NGX_OK) {
            return rc;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_prompt_guard_gemini(ngx_http_ai_pg_walk_t *w, cJSON *root)
{
    cJSON       *contents, *c, *parts, *part, *si, *item, *last;
    ngx_int_t    rc;
    ngx_uint_t   role;

    si = ngx_http_ai_pg_item(root, "systemInstruction");
    if (si == NULL) {
        si = ngx_http_ai_pg_item(root, "system_instruction");
    }

    w->where.role = NGX_HTTP_AI_PG_SYSTEM;
    w->where.last = 0;

    parts = ngx_http_ai_pg_item(si, "parts");

    cJSON_ArrayForEach(part, parts) {
        rc = ngx_http_ai_prompt_guard_content(w, part, "text", NULL);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    contents = ngx_http_ai_pg_item(root, "contents");
    last = cJSON_GetArrayItem(contents, cJSON_GetArraySize(contents) - 1);

    cJSON_ArrayForEach(c, contents) {
        role = ngx_http_ai_prompt_guard_role(c);
        w->where.last = (c == last);

        parts = ngx_http_ai_pg_item(c, "parts");

        cJSON_ArrayForEach(part, parts) {
            w->where.role = role;

            if ((item = ngx_http_ai_pg_item(part, "text"))) {
                rc = ngx_http_ai_prompt_guard_string(w, item);

            } else if ((item = ngx_http_ai_pg_item(part, "functionCall"))) {
                w->where.role = NGX_HTTP_AI_PG_ASSISTANT;
                rc = ngx_http_ai_prompt_guard_strings(w,
                         ngx_http_ai_pg_item(item, "args"), 0);

            } else if ((item = ngx_http_ai_pg_item(part,
                                                   "functionResponse")))
            {
                w->where.role = NGX_HTTP_AI_PG_TOOL;
                rc = ngx_http_ai_prompt_guard_strings(w,
                     ngx_http_ai_pg_item(item, "response"), 0);

            } else {
                rc = NGX_OK;
            }

            if (rc != NGX_OK) {
                return rc;
            }
        }
    }

    return NGX_OK;
}


/*
 * parent[name]: a string, or (text_key set) an array of parts whose
 * text_key strings are the text; OpenAI's embeddings input is an array of
 * strings.
 */

static ngx_int_t
ngx_http_ai_prompt_guard_content(ngx_http_ai_pg_walk_t *w, cJSON *parent,
    const char *name, const char *text_key)
{
    cJSON      *item, *part, *text;
    ngx_int_t   rc;

    item = ngx_http_ai_pg_item(parent, name);

    if (cJSON_IsString(item)) {
        return ngx_http_ai_prompt_guard_string(w, item);
    }

    if (text_key == NULL || !cJSON_IsArray(item)) {
        return NGX_OK;
    }

    cJSON_ArrayForEach(part, item) {

        if (cJSON_IsString(part)) {
            rc = ngx_http_ai_prompt_guard_string(w, part);

        } else {
            text = ngx_http_ai_pg_item(part, text_key);
            rc = cJSON_IsString(text) ? ngx_http_ai_prompt_guard_string(w, text)
                                      : NGX_OK;

            /* an assistant's refusal part (whatever else it holds) */

            text = ngx_http_ai_pg_item(part, "refusal");

            if (rc == NGX_OK && cJSON_IsString(text)) {
                rc = ngx_http_ai_prompt_guard_string(w, text);
            }
        }

        if (rc != NGX_OK) {
            return rc;
        }
    }

    return NGX_OK;
}


/* every string in a value (tool arguments as objects), depth-bounded */

static ngx_int_t
ngx_http_ai_prompt_guard_strings(ngx_http_ai_pg_walk_t *w, cJSON *value,
    ngx_uint_t depth)
{
    char        *name;
    cJSON       *item;
    ngx_int_t    rc;
    ngx_uint_t   renamed;

    if (value == NULL) {
        return NGX_OK;
    }

    if (depth > NGX_HTTP_AI_PG_DEPTH) {
        w->ctx->blocked = &ngx_http_ai_pg_too_deep;
        return NGX_DECLINED;
    }

    if (cJSON_IsString(value)) {
        return ngx_http_ai_prompt_guard_string(w, value);
    }

    renamed = 0;

    cJSON_ArrayForEach(item, value) {
        if (cJSON_IsObject(value)) {
            name = item->string;

            rc = ngx_http_ai_prompt_guard_name(w, item);
            if (rc != NGX_OK) {
                return rc;
            }

            renamed |= (item->string != name);
        }

        rc = ngx_http_ai_prompt_guard_strings(w, item, depth + 1);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    if (renamed) {
        rc = ngx_http_ai_prompt_guard_twice(w, value);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    return NGX_OK;
}


/*
 * A tool call's arguments, JSON text: masked as a text, then, when it
 * changed, read as JSON, so that masked names that collide are refused
 * as in an object's (the JSON does not parse: as it came from the client)
 */

static ngx_int_t
ngx_http_ai_prompt_guard_arguments(ngx_http_ai_pg_walk_t *w, cJSON *parent)
{
    char       *before;
    cJSON      *item, *json;
    ngx_int_t   rc;

    item = ngx_http_ai_pg_item(parent, "arguments");

    if (!cJSON_IsString(item)) {
        return NGX_OK;
    }

    before = item->valuestring;

    rc = ngx_http_ai_prompt_guard_string(w, item);

    if (rc != NGX_OK || item->valuestring == before) {
        return rc;
    }

    json = cJSON_Parse(item->valuestring);

    if (json == NULL) {
        return NGX_OK;
    }

    rc = ngx_http_ai_prompt_guard_objects(w, json, 0);

    cJSON_Delete(json);

    return rc;
}


/* every object of a value checked for two members of one name */

static ngx_int_t
ngx_http_ai_prompt_guard_objects(ngx_http_ai_pg_walk_t *w, cJSON *value,
    ngx_uint_t depth)
{
    cJSON      *item;
    ngx_int_t   rc;

    if (depth > NGX_HTTP_AI_PG_DEPTH) {
        w->ctx->blocked = &ngx_http_ai_pg_too_deep;
        return NGX_DECLINED;
    }

    if (cJSON_IsObject(value)) {
        rc = ngx_http_ai_prompt_guard_twice(w, value);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    cJSON_ArrayForEach(item, value) {
        rc = ngx_http_ai_prompt_guard_objects(w, item, depth + 1);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    return NGX_OK;
}


/*
 * An object whose members' names were masked: two of one name now (a
 * name that was a placeholder already) would be read as one by the
 * provider, the other lost: refused.  Their names sorted, in n log n.
 */

static ngx_int_t
ngx_http_ai_prompt_guard_twice(ngx_http_ai_pg_walk_t *w, cJSON *object)
{
    char        **names;
    cJSON        *item;
    ngx_uint_t    i, n;

    n = (ngx_uint_t) cJSON_GetArraySize(object);

    names = ngx_palloc(w->request->pool, n * sizeof(char *));
    if (names == NULL) {
        return NGX_ERROR;
    }

    i = 0;

    cJSON_ArrayForEach(item, object) {
        if (item->string && i < n) {
            names[i++] = item->string;
        }
    }

    n = i;

    ngx_qsort(names, n, sizeof(char *), ngx_http_ai_prompt_guard_names);

    for (i = 1; i < n; i++) {
        if (ngx_strcmp(names[i - 1], names[i]) == 0) {
            w->ctx->blocked = &ngx_http_ai_pg_twice;
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


static int ngx_libc_cdecl
ngx_http_ai_prompt_guard_names(const void *one, const void *two)
{
    return ngx_strcmp(*(char **) one, *(char **) two);
}


/* one string of the tree through the rules, replaced when they change it */

static ngx_int_t
ngx_http_ai_prompt_guard_string(ngx_http_ai_pg_walk_t *w, cJSON *item)
{
    ngx_int_t  rc;
    ngx_str_t  text, out;

    if (!cJSON_IsString(item)) {
        return NGX_OK;
    }

    text.data = (u_char *) item->valuestring;
    text.len = ngx_strlen(item->valuestring);

    rc = ngx_http_ai_prompt_guard_text(w->request, w->ctx, w->rules,
                                       &w->where, &text, &out);

    if (rc != NGX_OK || out.data == text.data) {
        return rc;
    }

    return ngx_http_ai_prompt_guard_replace(w, &item->valuestring, &out);
}


/* a member's name through the rules, as a string */

static ngx_int_t
ngx_http_ai_prompt_guard_name(ngx_http_ai_pg_walk_t *w, cJSON *item)
{
    ngx_int_t  rc;
    ngx_str_t  text, out;

    if (item->string == NULL || (item->type & cJSON_StringIsConst)) {
        return NGX_OK;
    }

    text.data = (u_char *) item->string;
    text.len = ngx_strlen(item->string);

    rc = ngx_http_ai_prompt_guard_text(w->request, w->ctx, w->rules,
                                       &w->where, &text, &out);

    if (rc != NGX_OK || out.data == text.data) {
        return rc;
    }

    return ngx_http_ai_prompt_guard_replace(w, &item->string, &out);
}


/*
 * A string of the tree replaced: cJSON wants a C string of its own; the
 * old one is freed with the request: the core's view of the request
 * points into it until the new body is parsed
 */

static ngx_int_t
ngx_http_ai_prompt_guard_replace(ngx_http_ai_pg_walk_t *w, char **s,
    ngx_str_t *out)
{
    u_char              *p;
    ngx_pool_cleanup_t  *cln;

    cln = ngx_pool_cleanup_add(w->request->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    p = (u_char *) cJSON_malloc(out->len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, out->data, out->len);
    p[out->len] = '\0';

    cln->handler = ngx_http_ai_prompt_guard_free;
    cln->data = *s;

    *s = (char *) p;

    return NGX_OK;
}


static void
ngx_http_ai_prompt_guard_free(void *data)
{
    cJSON_free(data);
}


/* a message's role: "model" is the assistant, tool results the tool's */

static ngx_uint_t
ngx_http_ai_prompt_guard_role(cJSON *message)
{
    cJSON  *role;

    role = ngx_http_ai_pg_item(message, "role");

    if (!cJSON_IsString(role)) {
        return NGX_HTTP_AI_PG_USER;
    }

    return ngx_http_ai_pg_role((u_char *) role->valuestring,
                               ngx_strlen(role->valuestring));
}


static ngx_uint_t
ngx_http_ai_pg_role(u_char *s, size_t len)
{
    /* one comparison by the first letter, for each of a conversation's */

    switch (len ? s[0] : '\0') {

    case 's':
        return (len == 6 && ngx_strncmp(s, "system", 6) == 0)
               ? NGX_HTTP_AI_PG_SYSTEM : NGX_HTTP_AI_PG_USER;
    case 'd':
        return (len == 9 && ngx_strncmp(s, "developer", 9) == 0)
               ? NGX_HTTP_AI_PG_SYSTEM : NGX_HTTP_AI_PG_USER;
    case 'a':
        return (len == 9 && ngx_strncmp(s, "assistant", 9) == 0)
               ? NGX_HTTP_AI_PG_ASSISTANT : NGX_HTTP_AI_PG_USER;
    case 'm':
        return (len == 5 && ngx_strncmp(s, "model", 5) == 0)
               ? NGX_HTTP_AI_PG_ASSISTANT : NGX_HTTP_AI_PG_USER;
    case 't':
        return (len == 4 && ngx_strncmp(s, "tool", 4) == 0)
               ? NGX_HTTP_AI_PG_TOOL : NGX_HTTP_AI_PG_USER;
    case 'f':
        return (len == 8 && ngx_strncmp(s, "function", 8) == 0)
               ? NGX_HTTP_AI_PG_TOOL : NGX_HTTP_AI_PG_USER;
    default:
        return NGX_HTTP_AI_PG_USER;
    }
}


/*
 * cJSON_GetObjectItemCaseSensitive(), but a member's name is compared
 * only when its first byte is the name's: the walk looks up "role",
 * "content" and "tool_calls" in every message of a conversation
 */

static cJSON *
ngx_http_ai_pg_item(cJSON *object, const char *name)
{
    cJSON  *item;

    if (object == NULL) {
        return NULL;
    }

    /* as cJSON: the members have names, an array's elements have none */

    for (item = object->child; item && item->string; item = item->next) {
        if (item->string[0] == name[0]
            && ngx_strcmp(item->string, name) == 0)
        {
            return item;
        }
    }

    return NULL;
}
