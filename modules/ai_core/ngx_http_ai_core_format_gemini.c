
/*
 * Copyright (C) AI Gateway authors
 *
 * Gemini's generateContent from OpenAI's chat format (requests), and to
 * it (responses, streamed chunks).  Gemini is a target only: the doors
 * speak OpenAI or Anthropic.
 *
 *   system/developer messages   ->  systemInstruction
 *   user / assistant / tool     ->  contents of role user / model / user
 *   text, image_url, file,      ->  text, inlineData (data: URLs),
 *   input_audio parts               fileData (other URLs, by extension)
 *   assistant tool_calls        ->  functionCall parts
 *   tool messages               ->  functionResponse parts, named after
 *                                   the call they answer
 *   tools, tool_choice          ->  functionDeclarations, toolConfig
 *   temperature, top_p, top_k,  ->  generationConfig
 *   stop, seed, n,
 *   max_(completion_)tokens,
 *   response_format
 *   reasoning_effort, thinking  ->  thinkingConfig (thinkingBudget,
 *                                   includeThoughts)
 *   reasoning_content           <-  thought parts (answers)
 *   tool call ids               <-> thoughtSignature of functionCall
 *                                   parts, carried in the ids
 *
 * Schemas (tool parameters, response_format) are cut down to the OpenAPI
 * subset that Gemini takes: unknown keywords (additionalProperties,
 * $schema, ...) are dropped, ["T", "null"] becomes T with nullable.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_ai_core_format.h"


typedef struct {
    const char                 *ext;
    const char                 *mime;
} ngx_http_ai_gemini_mime_t;


static ngx_int_t ngx_http_ai_gemini_parts(ngx_pool_t *pool, cJSON *content,
    cJSON *parts, ngx_str_t *err);
static ngx_int_t ngx_http_ai_gemini_url_part(ngx_pool_t *pool,
    const char *url, const char *dflt, cJSON *parts, ngx_str_t *err);
static const char *ngx_http_ai_gemini_mime(const char *url,
    const char *dflt);
static ngx_int_t ngx_http_ai_gemini_model_parts(ngx_pool_t *pool,
    cJSON *msg, cJSON *parts);
static ngx_int_t ngx_http_ai_gemini_function_response(ngx_pool_t *pool,
    cJSON *messages, cJSON *msg, cJSON *parts, ngx_str_t *err);
static cJSON *ngx_http_ai_gemini_content(cJSON *contents, const char *role);
static ngx_int_t ngx_http_ai_gemini_config(ngx_pool_t *pool, cJSON *in,
    cJSON *res, ngx_str_t *err);
static ngx_int_t ngx_http_ai_gemini_tools(ngx_pool_t *pool, cJSON *in,
    cJSON *res, ngx_str_t *err);
static cJSON *ngx_http_ai_gemini_schema(cJSON *schema);
static char *ngx_http_ai_gemini_call_id(ngx_pool_t *pool, cJSON *part,
    const char *response_id, ngx_uint_t n);


static ngx_http_ai_gemini_mime_t  ngx_http_ai_gemini_mimes[] = {
    { ".png", "image/png" },
    { ".jpg", "image/jpeg" },
    { ".jpeg", "image/jpeg" },
    { ".gif", "image/gif" },
    { ".webp", "image/webp" },
    { ".heic", "image/heic" },
    { ".heif", "image/heif" },
    { ".pdf", "application/pdf" },
    { ".mp3", "audio/mp3" },
    { ".wav", "audio/wav" },
    { ".mp4", "video/mp4" },
    { NULL, NULL }
};


/* the schema keywords Gemini knows, kept as they are */

static const char  *ngx_http_ai_gemini_keywords[] = {
    "title", "description", "nullable", "required", "minItems", "maxItems",
    "minProperties", "maxProperties", "minLength", "maxLength", "pattern",
    "minimum", "maximum", "example", "default", "propertyOrdering",
    NULL
};


ngx_int_t
ngx_http_ai_gemini_request_from_openai(ngx_pool_t *pool, cJSON *in,
    ngx_http_ai_translate_request_t *req, cJSON **out, ngx_str_t *err)
{
    cJSON       *res, *contents, *system, *sparts, *messages, *msg;
    cJSON       *content, *parts, *part;
    ngx_int_t    rc;
    const char  *role, *text;

    res = cJSON_CreateObject();
    if (res == NULL) {
        return NGX_ERROR;
    }

    rc = NGX_ERROR;

    contents = cJSON_AddArrayToObject(res, "contents");
    system = cJSON_AddObjectToObject(res, "systemInstruction");
    sparts = system ? cJSON_AddArrayToObject(system, "parts") : NULL;

    if (contents == NULL || sparts == NULL) {
        goto failed;
    }

    messages = cJSON_GetObjectItemCaseSensitive(in, "messages");

    cJSON_ArrayForEach(msg, messages) {
        role = ngx_http_ai_tr_string(msg, "role");
        if (role == NULL) {
            role = "";
        }

        content = cJSON_GetObjectItemCaseSensitive(msg, "content");

        if (ngx_strcmp(role, "system") == 0
            || ngx_strcmp(role, "developer") == 0)
        {
            if (cJSON_IsString(content)) {
                if (*content->valuestring == '\0') {
                    continue;
                }

                part = ngx_http_ai_tr_push(sparts);
                if (part == NULL
                    || ngx_http_ai_tr_add_string(part, "text",
                                                 content->valuestring)
                       == NULL)
                {
                    goto failed;
                }

                continue;
            }

            cJSON_ArrayForEach(part, content) {
                text = ngx_http_ai_tr_string(part, "text");

                if (text == NULL) {
                    ngx_str_set(err, "system messages may hold text only");
                    rc = NGX_DECLINED;
                    goto failed;
                }

                part = ngx_http_ai_tr_push(sparts);
                if (part == NULL
                    || ngx_http_ai_tr_add_string(part, "text", text) == NULL)
                {
                    goto failed;
                }
            }

            continue;
        }

        if (ngx_strcmp(role, "user") == 0) {
            parts = ngx_http_ai_gemini_content(contents, "user");
            if (parts == NULL) {
                goto failed;
            }

            rc = ngx_http_ai_gemini_parts(pool, content, parts, err);

        } else if (ngx_strcmp(role, "assistant") == 0) {
            parts = ngx_http_ai_gemini_content(contents, "model");
            if (parts == NULL) {
                goto failed;
            }

            rc = ngx_http_ai_gemini_model_parts(pool, msg, parts);

        } else if (ngx_strcmp(role, "tool") == 0) {
            parts = ngx_http_ai_gemini_content(contents, "user");
            if (parts == NULL) {
                goto failed;
            }

            rc = ngx_http_ai_gemini_function_response(pool, messages, msg,
                                                      parts, err);

        } else {
            rc = ngx_http_ai_tr_error(pool, err,
                                      "messages of role \"%s\" cannot be "
                                      "translated", role);
        }

        if (rc != NGX_OK) {
            goto failed;
        }

        rc = NGX_ERROR;

        /* a content left without parts (an empty assistant message) */

        content = cJSON_GetArrayItem(contents,
                                     cJSON_GetArraySize(contents) - 1);

        if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(content,
                                                                 "parts"))
            == 0)
        {
            cJSON_DeleteItemFromArray(contents,
                                      cJSON_GetArraySize(contents) - 1);
        }
    }

    if (cJSON_GetArraySize(sparts) == 0) {
        cJSON_DeleteItemFromObjectCaseSensitive(res, "systemInstruction");
    }

    rc = ngx_http_ai_gemini_config(pool, in, res, err);
    if (rc != NGX_OK) {
        goto failed;
    }

    rc = ngx_http_ai_gemini_tools(pool, in, res, err);
    if (rc != NGX_OK) {
        goto failed;
    }

    *out = res;

    return NGX_OK;

failed:

    cJSON_Delete(res);

    return rc;
}


/*
 * The parts of the content of role "role" at the end of contents: the
 * last one if it has that role (Gemini wants turns to alternate, and the
 * answers to parallel calls in one turn), else a new one.
 */

static cJSON *
ngx_http_ai_gemini_content(cJSON *contents, const char *role)
{
    cJSON  *last, *parts;

    last = cJSON_GetArrayItem(contents, cJSON_GetArraySize(contents) - 1);

    if (last && ngx_http_ai_tr_is(cJSON_GetObjectItemCaseSensitive(last,
                                                                   "role"),
                                  role))
    {
        return cJSON_GetObjectItemCaseSensitive(last, "parts");
    }

    last = ngx_http_ai_tr_push(contents);
    if (last == NULL
        || ngx_http_ai_tr_add_string(last, "role", role) == NULL)
    {
        return NULL;
    }

    parts = cJSON_AddArrayToObject(last, "parts");

    return parts;
}


static ngx_int_t
ngx_http_ai_gemini_parts(ngx_pool_t *pool, cJSON *content, cJSON *parts,
    ngx_str_t *err)
{
    char        *mime;
    cJSON       *part, *p, *type, *item, *inline_data;
    ngx_int_t    rc;
    const char  *text, *url, *data, *format;

    if (cJSON_IsString(content)) {
        part = ngx_http_ai_tr_push(parts);
        if (part == NULL
            || ngx_http_ai_tr_add_string(part, "text", content->valuestring)
               == NULL)
        {
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    if (!cJSON_IsArray(content)) {
        ngx_str_set(err, "a message content must be a string or an array");
        return NGX_DECLINED;
    }

    cJSON_ArrayForEach(p, content) {
        type = cJSON_GetObjectItemCaseSensitive(p, "type");

        if (ngx_http_ai_tr_is(type, "text")) {
            text = ngx_http_ai_tr_string(p, "text");

            part = ngx_http_ai_tr_push(parts);
            if (part == NULL
                || ngx_http_ai_tr_add_string(part, "text", text) == NULL)
            {
                return NGX_ERROR;
            }

            continue;
        }

        if (ngx_http_ai_tr_is(type, "image_url")) {
            item = cJSON_GetObjectItemCaseSensitive(p, "image_url");
            url = cJSON_IsString(item) ? item->valuestring
                                       : ngx_http_ai_tr_string(item, "url");

            rc = ngx_http_ai_gemini_url_part(pool, url, "image/jpeg", parts,
                                             err);
            if (rc != NGX_OK) {
                return rc;
            }

            continue;
        }

        if (ngx_http_ai_tr_is(type, "file")) {
            item = cJSON_GetObjectItemCaseSensitive(p, "file");
            url = ngx_http_ai_tr_string(item, "file_data");

            if (url == NULL) {
                ngx_str_set(err, "file parts without \"file_data\" (file "
                                 "ids) cannot be translated");
                return NGX_DECLINED;
            }

            rc = ngx_http_ai_gemini_url_part(pool, url, "application/pdf",
                                             parts, err);
            if (rc != NGX_OK) {
                return rc;
            }

            continue;
        }

        if (ngx_http_ai_tr_is(type, "input_audio")) {
            item = cJSON_GetObjectItemCaseSensitive(p, "input_audio");
            data = ngx_http_ai_tr_string(item, "data");
            format = ngx_http_ai_tr_string(item, "format");

            if (data == NULL) {
                ngx_str_set(err, "an input_audio part has no \"data\"");
                return NGX_DECLINED;
            }

            if (format == NULL) {
                format = "wav";
            }

            mime = ngx_pnalloc(pool, sizeof("audio/") + ngx_strlen(format));
            if (mime == NULL) {
                return NGX_ERROR;
            }

            ngx_memcpy(mime, "audio/", sizeof("audio/") - 1);
            ngx_memcpy(mime + sizeof("audio/") - 1, format,
                       ngx_strlen(format) + 1);

            part = ngx_http_ai_tr_push(parts);
            if (part == NULL
                || (inline_data = cJSON_AddObjectToObject(part, "inlineData"))
                   == NULL
                || ngx_http_ai_tr_add_string(inline_data, "mimeType", mime)
                   == NULL
                || ngx_http_ai_tr_add_string(inline_data, "data", data)
                   == NULL)
            {
                return NGX_ERROR;
            }

            continue;
        }

        return ngx_http_ai_tr_error(pool, err,
                                    "content parts of type \"%s\" are not "
                                    "supported by gemini targets",
                                    cJSON_IsString(type) ? type->valuestring
                                                         : "?");
    }

    return NGX_OK;
}


/*
 * A data: URL as inlineData; another URL as fileData, its media type
 * guessed from its extension (Gemini fetches Files API and, on recent
 * models, public URLs; it answers a clear error for others).
 */

static ngx_int_t
ngx_http_ai_gemini_url_part(ngx_pool_t *pool, const char *url,
    const char *dflt, cJSON *parts, ngx_str_t *err)
{
    char       *mime, *data;
    cJSON      *part, *d;
    ngx_int_t   rc;

    if (url == NULL) {
        ngx_str_set(err, "an image_url part has no \"url\"");
        return NGX_DECLINED;
    }

    rc = ngx_http_ai_tr_data_url(pool, url, &mime, &data);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_ABORT) {
        ngx_str_set(err, "only base64 data: URLs can be translated");
        return NGX_DECLINED;
    }

    part = ngx_http_ai_tr_push(parts);
    if (part == NULL) {
        return NGX_ERROR;
    }

    if (rc == NGX_OK) {
        d = cJSON_AddObjectToObject(part, "inlineData");
        if (d == NULL
            || ngx_http_ai_tr_add_string(d, "mimeType", mime) == NULL
            || ngx_http_ai_tr_add_string(d, "data", data) == NULL)
        {
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    d = cJSON_AddObjectToObject(part, "fileData");
    if (d == NULL
        || ngx_http_ai_tr_add_string(d, "mimeType",
                                     ngx_http_ai_gemini_mime(url, dflt))
           == NULL
        || ngx_http_ai_tr_add_string(d, "fileUri", url) == NULL)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static const char *
ngx_http_ai_gemini_mime(const char *url, const char *dflt)
{
    size_t                      len, n, i;
    const char                 *end;
    ngx_http_ai_gemini_mime_t  *m;

    for (end = url; *end && *end != '?' && *end != '#'; end++) {
        /* void */
    }

    len = end - url;

    for (m = ngx_http_ai_gemini_mimes; m->ext; m++) {
        n = ngx_strlen(m->ext);

        if (len <= n) {
            continue;
        }

        for (i = 0; i < n; i++) {
            if (ngx_tolower(end[i - n]) != m->ext[i]) {
                break;
            }
        }

        if (i == n) {
            return m->mime;
        }
    }

    return dflt;
}


static ngx_int_t
ngx_http_ai_gemini_model_parts(ngx_pool_t *pool, cJSON *msg, cJSON *parts)
{
    char        *sig;
    cJSON       *content, *p, *part, *calls, *call, *fn, *fc, *args;
    const char  *text;

    content = cJSON_GetObjectItemCaseSensitive(msg, "content");

    if (cJSON_IsString(content) && *content->valuestring) {
        part = ngx_http_ai_tr_push(parts);
        if (part == NULL
            || ngx_http_ai_tr_add_string(part, "text", content->valuestring)
               == NULL)
        {
            return NGX_ERROR;
        }

    } else if (cJSON_IsArray(content)) {
        cJSON_ArrayForEach(p, content) {
            text = ngx_http_ai_tr_string(p, "text");
            if (text == NULL) {
                text = ngx_http_ai_tr_string(p, "refusal");
            }

            if (text == NULL || *text == '\0') {
                continue;
            }

            part = ngx_http_ai_tr_push(parts);
            if (part == NULL
                || ngx_http_ai_tr_add_string(part, "text", text) == NULL)
            {
                return NGX_ERROR;
            }
        }
    }

    calls = cJSON_GetObjectItemCaseSensitive(msg, "tool_calls");

    cJSON_ArrayForEach(call, calls) {
        fn = cJSON_GetObjectItemCaseSensitive(call, "function");

        part = ngx_http_ai_tr_push(parts);
        if (part == NULL
            || (fc = cJSON_AddObjectToObject(part, "functionCall")) == NULL
            || ngx_http_ai_tr_add_copy(fc, "name", fn, "name") != NGX_OK)
        {
            return NGX_ERROR;
        }

        /* the thought signature Gemini gave the call, from its id */

        sig = ngx_http_ai_tr_call_id_signature(pool,
                                         ngx_http_ai_tr_string(call, "id"));

        if (sig && ngx_http_ai_tr_add_string(part, "thoughtSignature", sig)
                   == NULL)
        {
            return NGX_ERROR;
        }

        args = ngx_http_ai_tr_parse_args(ngx_http_ai_tr_string(fn,
                                                               "arguments"));
        if (args == NULL) {
            return NGX_ERROR;
        }

        cJSON_AddItemToObject(fc, "args", args);
    }

    return NGX_OK;
}


/*
 * A tool message as a functionResponse, which names the function: the
 * name of the assistant's call with the same id (or the message's own
 * "name").  The response is the content if it is a JSON object, else
 * {"output": content}, as Gemini reads it.
 */

static ngx_int_t
ngx_http_ai_gemini_function_response(ngx_pool_t *pool, cJSON *messages,
    cJSON *msg, cJSON *parts, ngx_str_t *err)
{
    char        *text;
    cJSON       *m, *call, *part, *fr, *response;
    const char  *id, *name, *s;

    id = ngx_http_ai_tr_string(msg, "tool_call_id");
    name = NULL;

    if (id) {
        cJSON_ArrayForEach(m, messages) {
            if (m == msg) {
                break;
            }

            cJSON_ArrayForEach(call,
                          cJSON_GetObjectItemCaseSensitive(m, "tool_calls"))
            {
                s = ngx_http_ai_tr_string(call, "id");

                if (s && ngx_strcmp(s, id) == 0) {
                    name = ngx_http_ai_tr_string(
                               cJSON_GetObjectItemCaseSensitive(call,
                                                                "function"),
                               "name");
                }
            }
        }
    }

    if (name == NULL) {
        name = ngx_http_ai_tr_string(msg, "name");
    }

    if (name == NULL) {
        return ngx_http_ai_tr_error(pool, err,
                                    "the tool message \"%s\" answers no "
                                    "earlier tool call",
                                    id ? id : "?");
    }

    text = ngx_http_ai_tr_text(pool,
                               cJSON_GetObjectItemCaseSensitive(msg,
                                                                "content"),
                               "text", "\n", NULL);
    if (text == NULL) {
        return NGX_ERROR;
    }

    response = cJSON_Parse(text);

    if (!cJSON_IsObject(response)) {
        cJSON_Delete(response);

        response = cJSON_CreateObject();
        if (response == NULL
            || ngx_http_ai_tr_add_string(response, "output", text) == NULL)
        {
            cJSON_Delete(response);
            return NGX_ERROR;
        }
    }

    part = ngx_http_ai_tr_push(parts);
    if (part == NULL
        || (fr = cJSON_AddObjectToObject(part, "functionResponse")) == NULL
        || ngx_http_ai_tr_add_string(fr, "name", name) == NULL)
    {
        cJSON_Delete(response);
        return NGX_ERROR;
    }

    cJSON_AddItemToObject(fr, "response", response);

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_gemini_config(ngx_pool_t *pool, cJSON *in, cJSON *res,
    ngx_str_t *err)
{
    cJSON       *config, *item, *stop, *format, *schema;
    ngx_int_t    max;
    const char  *type;

    config = cJSON_CreateObject();
    if (config == NULL) {
        return NGX_ERROR;
    }

    cJSON_AddItemToObject(res, "generationConfig", config);

    if (ngx_http_ai_tr_add_copy(config, "temperature", in, "temperature")
        != NGX_OK
        || ngx_http_ai_tr_add_copy(config, "topP", in, "top_p") != NGX_OK
        || ngx_http_ai_tr_add_copy(config, "topK", in, "top_k") != NGX_OK
        || ngx_http_ai_tr_add_copy(config, "candidateCount", in, "n")
           != NGX_OK
        || ngx_http_ai_tr_add_copy(config, "presencePenalty", in,
                                   "presence_penalty") != NGX_OK
        || ngx_http_ai_tr_add_copy(config, "frequencyPenalty", in,
                                   "frequency_penalty") != NGX_OK
        || ngx_http_ai_tr_add_copy(config, "seed", in, "seed") != NGX_OK)
    {
        return NGX_ERROR;
    }

    if ((ngx_http_ai_tr_int(in, "max_completion_tokens", &max) == NGX_OK
         || ngx_http_ai_tr_int(in, "max_tokens", &max) == NGX_OK)
        && cJSON_AddNumberToObject(config, "maxOutputTokens", (double) max)
           == NULL)
    {
        return NGX_ERROR;
    }

    stop = cJSON_GetObjectItemCaseSensitive(in, "stop");

    if (cJSON_IsString(stop)) {
        item = cJSON_AddArrayToObject(config, "stopSequences");
        if (item == NULL) {
            return NGX_ERROR;
        }

        cJSON_AddItemToArray(item, cJSON_CreateString(stop->valuestring));

    } else if (cJSON_IsArray(stop) && cJSON_GetArraySize(stop) > 0) {
        if (ngx_http_ai_tr_add_copy(config, "stopSequences", in, "stop")
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    format = cJSON_GetObjectItemCaseSensitive(in, "response_format");
    type = ngx_http_ai_tr_string(format, "type");

    if (type && (ngx_strcmp(type, "json_object") == 0
                 || ngx_strcmp(type, "json_schema") == 0))
    {
        if (ngx_http_ai_tr_add_string(config, "responseMimeType",
                                      "application/json") == NULL)
        {
            return NGX_ERROR;
        }

        schema = cJSON_GetObjectItemCaseSensitive(
                     cJSON_GetObjectItemCaseSensitive(format, "json_schema"),
                     "schema");

        if (cJSON_IsObject(schema)
            && ngx_http_ai_tr_set(config, "responseSchema",
                                  ngx_http_ai_gemini_schema(schema))
               != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    /* thinking: the budget, and the thoughts in the answer when on */

    if (ngx_http_ai_tr_thinking_budget(in, &max) == NGX_OK) {
        item = cJSON_AddObjectToObject(config, "thinkingConfig");
        if (item == NULL
            || ngx_http_ai_tr_add_int(item, "thinkingBudget", max) == NULL
            || (max > 0 && cJSON_AddTrueToObject(item, "includeThoughts")
                           == NULL))
        {
            return NGX_ERROR;
        }
    }

    if (cJSON_GetArraySize(config) == 0) {
        cJSON_DeleteItemFromObjectCaseSensitive(res, "generationConfig");
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_gemini_tools(ngx_pool_t *pool, cJSON *in, cJSON *res,
    ngx_str_t *err)
{
    cJSON       *tools, *tool, *list, *t, *decls, *d, *fn, *params, *props;
    cJSON       *choice, *config, *fcc, *names;
    const char  *type, *mode, *name;

    tools = cJSON_GetObjectItemCaseSensitive(in, "tools");

    if (cJSON_IsArray(tools) && cJSON_GetArraySize(tools) > 0) {
        list = cJSON_AddArrayToObject(res, "tools");
        t = list ? ngx_http_ai_tr_push(list) : NULL;
        decls = t ? cJSON_AddArrayToObject(t, "functionDeclarations") : NULL;

        if (decls == NULL) {
            return NGX_ERROR;
        }

        cJSON_ArrayForEach(tool, tools) {
            type = ngx_http_ai_tr_string(tool, "type");
            fn = cJSON_GetObjectItemCaseSensitive(tool, "function");

            if (type == NULL || ngx_strcmp(type, "function") != 0
                || !cJSON_IsObject(fn))
            {
                return ngx_http_ai_tr_error(pool, err,
                                            "tools of type \"%s\" are not "
                                            "supported by gemini targets",
                                            type ? type : "?");
            }

            d = ngx_http_ai_tr_push(decls);
            if (d == NULL
                || ngx_http_ai_tr_add_copy(d, "name", fn, "name") != NGX_OK
                || ngx_http_ai_tr_add_copy(d, "description", fn,
                                           "description") != NGX_OK)
            {
                return NGX_ERROR;
            }

            /* Gemini refuses an object schema without properties */

            params = cJSON_GetObjectItemCaseSensitive(fn, "parameters");
            props = cJSON_GetObjectItemCaseSensitive(params, "properties");

            if (cJSON_IsObject(params) && cJSON_GetArraySize(props) > 0
                && ngx_http_ai_tr_set(d, "parameters",
                                      ngx_http_ai_gemini_schema(params))
                   != NGX_OK)
            {
                return NGX_ERROR;
            }
        }
    }

    choice = cJSON_GetObjectItemCaseSensitive(in, "tool_choice");
    name = NULL;

    if (cJSON_IsString(choice)) {
        mode = choice->valuestring;

        if (ngx_strcmp(mode, "none") == 0) {
            mode = "NONE";

        } else if (ngx_strcmp(mode, "required") == 0) {
            mode = "ANY";

        } else {
            mode = "AUTO";
        }

    } else if (cJSON_IsObject(choice)) {
        name = ngx_http_ai_tr_string(
                   cJSON_GetObjectItemCaseSensitive(choice, "function"),
                   "name");

        if (name == NULL) {
            ngx_str_set(err, "tool_choice names no function");
            return NGX_DECLINED;
        }

        mode = "ANY";

    } else {
        return NGX_OK;
    }

    config = cJSON_AddObjectToObject(res, "toolConfig");
    fcc = config ? cJSON_AddObjectToObject(config, "functionCallingConfig")
                 : NULL;

    if (fcc == NULL || ngx_http_ai_tr_add_string(fcc, "mode", mode) == NULL) {
        return NGX_ERROR;
    }

    if (name) {
        names = cJSON_AddArrayToObject(fcc, "allowedFunctionNames");
        if (names == NULL
            || !cJSON_AddItemToArray(names, cJSON_CreateString(name)))
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* a JSON Schema as Gemini's Schema (an OpenAPI 3.0 subset) */

static cJSON *
ngx_http_ai_gemini_schema(cJSON *schema)
{
    u_char       *p;
    cJSON        *res, *item, *type, *t, *props, *prop, *list, *s;
    ngx_uint_t    nullable, strings;
    const char  **k, *format, *q;
    u_char        buf[16];

    res = cJSON_CreateObject();
    if (res == NULL) {
        return NULL;
    }

    if (!cJSON_IsObject(schema)) {
        return res;
    }

    nullable = 0;
    type = cJSON_GetObjectItemCaseSensitive(schema, "type");

    if (cJSON_IsArray(type)) {
        t = NULL;

        cJSON_ArrayForEach(item, type) {
            if (ngx_http_ai_tr_is(item, "null")) {
                nullable = 1;

            } else if (t == NULL && cJSON_IsString(item)) {
                t = item;
            }
        }

        type = t;
    }

    if (cJSON_IsString(type) && ngx_strlen(type->valuestring) < sizeof(buf))
    {
        for (p = buf, q = type->valuestring; *q; p++, q++) {
            *p = ngx_toupper(*q);
        }

        *p = '\0';

        if (ngx_http_ai_tr_add_string(res, "type", (char *) buf) == NULL) {
            goto failed;
        }
    }

    for (k = ngx_http_ai_gemini_keywords; *k; k++) {
        if (ngx_http_ai_tr_add_copy(res, *k, schema, *k) != NGX_OK) {
            goto failed;
        }
    }

    if (nullable && cJSON_GetObjectItemCaseSensitive(res, "nullable") == NULL
        && cJSON_AddTrueToObject(res, "nullable") == NULL)
    {
        goto failed;
    }

    format = ngx_http_ai_tr_string(schema, "format");

    if (format
        && (ngx_strcmp(format, "date-time") == 0
            || ngx_strcmp(format, "enum") == 0
            || ngx_strcmp(format, "int32") == 0
            || ngx_strcmp(format, "int64") == 0
            || ngx_strcmp(format, "float") == 0
            || ngx_strcmp(format, "double") == 0)
        && ngx_http_ai_tr_add_string(res, "format", format) == NULL)
    {
        goto failed;
    }

    /* enum: strings only; const: a one-value enum */

    item = cJSON_GetObjectItemCaseSensitive(schema, "enum");
    strings = cJSON_IsArray(item);

    cJSON_ArrayForEach(s, item) {
        if (!cJSON_IsString(s)) {
            strings = 0;
        }
    }

    if (strings) {
        if (ngx_http_ai_tr_add_copy(res, "enum", schema, "enum") != NGX_OK) {
            goto failed;
        }

    } else {
        item = cJSON_GetObjectItemCaseSensitive(schema, "const");

        if (cJSON_IsString(item)) {
            list = cJSON_AddArrayToObject(res, "enum");
            if (list == NULL
                || !cJSON_AddItemToArray(list,
                                     cJSON_CreateString(item->valuestring)))
            {
                goto failed;
            }
        }
    }

    /* Gemini's enums are of strings, and say so */

    if (cJSON_GetObjectItemCaseSensitive(res, "enum")
        && cJSON_GetObjectItemCaseSensitive(res, "type") == NULL
        && ngx_http_ai_tr_add_string(res, "type", "STRING") == NULL)
    {
        goto failed;
    }

    props = cJSON_GetObjectItemCaseSensitive(schema, "properties");

    if (cJSON_IsObject(props)) {
        list = cJSON_AddObjectToObject(res, "properties");
        if (list == NULL) {
            goto failed;
        }

        cJSON_ArrayForEach(prop, props) {
            if (prop->string == NULL) {
                continue;
            }

            item = ngx_http_ai_gemini_schema(prop);
            if (item == NULL) {
                goto failed;
            }

            if (!cJSON_AddItemToObject(list, prop->string, item)) {
                cJSON_Delete(item);
                goto failed;
            }
        }
    }

    item = cJSON_GetObjectItemCaseSensitive(schema, "items");

    if (cJSON_IsObject(item)
        && ngx_http_ai_tr_set(res, "items", ngx_http_ai_gemini_schema(item))
           != NGX_OK)
    {
        goto failed;
    }

    item = cJSON_GetObjectItemCaseSensitive(schema, "anyOf");

    if (!cJSON_IsArray(item)) {
        item = cJSON_GetObjectItemCaseSensitive(schema, "oneOf");
    }

    if (cJSON_IsArray(item)) {
        list = cJSON_AddArrayToObject(res, "anyOf");
        if (list == NULL) {
            goto failed;
        }

        cJSON_ArrayForEach(s, item) {
            t = ngx_http_ai_gemini_schema(s);
            if (t == NULL) {
                goto failed;
            }

            cJSON_AddItemToArray(list, t);
        }
    }

    return res;

failed:

    cJSON_Delete(res);
    return NULL;
}


/* responses: Gemini -> OpenAI */

ngx_int_t
ngx_http_ai_gemini_response_to_openai(ngx_pool_t *pool, cJSON *in,
    ngx_str_t *model, cJSON **out, ngx_str_t *err)
{
    char                 *id, *text, *p, *args;
    cJSON                *res, *cand, *parts, *part, *choices, *choice, *msg;
    cJSON                *calls, *call, *fc, *fn, *usage;
    size_t                len;
    ngx_str_t            *reason;
    ngx_uint_t            n;
    const char           *s, *rid;
    ngx_http_ai_usage_t   u;

    cand = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(in,
                                                               "candidates"),
                              0);

    if (cand == NULL
        && !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(in,
                                                        "promptFeedback")))
    {
        ngx_str_set(err, "the gemini response has no candidates");
        return NGX_DECLINED;
    }

    parts = cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(cand, "content"), "parts");

    res = cJSON_CreateObject();
    if (res == NULL) {
        return NGX_ERROR;
    }

    rid = ngx_http_ai_tr_string(in, "responseId");
    id = rid ? (char *) rid : ngx_http_ai_tr_gen_id(pool, "chatcmpl-");

    if (id == NULL
        || ngx_http_ai_tr_add_string(res, "id", id) == NULL
        || ngx_http_ai_tr_add_string(res, "object", "chat.completion") == NULL
        || cJSON_AddNumberToObject(res, "created", (double) time(NULL))
           == NULL)
    {
        goto failed;
    }

    if (model && model->len) {
        if (ngx_http_ai_tr_add_str(res, "model", model) == NULL) {
            goto failed;
        }

    } else if (ngx_http_ai_tr_add_copy(res, "model", in, "modelVersion")
               != NGX_OK)
    {
        goto failed;
    }

    choices = cJSON_AddArrayToObject(res, "choices");
    choice = choices ? ngx_http_ai_tr_push(choices) : NULL;

    if (choice == NULL
        || cJSON_AddNumberToObject(choice, "index", 0) == NULL
        || (msg = cJSON_AddObjectToObject(choice, "message")) == NULL
        || ngx_http_ai_tr_add_string(msg, "role", "assistant") == NULL)
    {
        goto failed;
    }

    /* the text parts, one after the other; thoughts are not the answer */

    len = 0;

    cJSON_ArrayForEach(part, parts) {
        s = ngx_http_ai_tr_string(part, "text");

        if (s && !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(part,
                                                                "thought")))
        {
            len += ngx_strlen(s);
        }
    }

    text = ngx_pnalloc(pool, len + 1);
    if (text == NULL) {
        goto failed;
    }

    p = text;

    cJSON_ArrayForEach(part, parts) {
        s = ngx_http_ai_tr_string(part, "text");

        if (s && !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(part,
                                                                "thought")))
        {
            p = (char *) ngx_cpymem(p, s, ngx_strlen(s));
        }
    }

    *p = '\0';

    calls = NULL;
    n = 0;

    cJSON_ArrayForEach(part, parts) {
        fc = cJSON_GetObjectItemCaseSensitive(part, "functionCall");
        if (!cJSON_IsObject(fc)) {
            continue;
        }

        if (calls == NULL) {
            calls = cJSON_AddArrayToObject(msg, "tool_calls");
            if (calls == NULL) {
                goto failed;
            }
        }

        id = ngx_http_ai_gemini_call_id(pool, part, rid, n++);
        args = cJSON_PrintUnformatted(
                             cJSON_GetObjectItemCaseSensitive(fc, "args"));

        call = ngx_http_ai_tr_push(calls);
        if (id == NULL
            || call == NULL
            || ngx_http_ai_tr_add_string(call, "id", id) == NULL
            || ngx_http_ai_tr_add_string(call, "type", "function") == NULL
            || (fn = cJSON_AddObjectToObject(call, "function")) == NULL
            || ngx_http_ai_tr_add_copy(fn, "name", fc, "name") != NGX_OK
            || ngx_http_ai_tr_add_string(fn, "arguments", args ? args : "{}")
               == NULL)
        {
            cJSON_free(args);
            goto failed;
        }

        cJSON_free(args);
    }

    if (*text == '\0' && (calls || cand == NULL)) {
        if (cJSON_AddNullToObject(msg, "content") == NULL) {
            goto failed;
        }

    } else if (ngx_http_ai_tr_add_string(msg, "content", text) == NULL) {
        goto failed;
    }

    if (cJSON_AddNullToObject(msg, "refusal") == NULL
        || cJSON_AddNullToObject(choice, "logprobs") == NULL)
    {
        goto failed;
    }

    /* the thoughts (their summaries) as OpenAI-compatible servers do */

    len = 0;

    cJSON_ArrayForEach(part, parts) {
        s = ngx_http_ai_tr_string(part, "text");

        if (s && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(part,
                                                               "thought")))
        {
            len += ngx_strlen(s);
        }
    }

    if (len) {
        text = ngx_pnalloc(pool, len + 1);
        if (text == NULL) {
            goto failed;
        }

        p = text;

        cJSON_ArrayForEach(part, parts) {
            s = ngx_http_ai_tr_string(part, "text");

            if (s && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(part,
                                                                  "thought")))
            {
                p = (char *) ngx_cpymem(p, s, ngx_strlen(s));
            }
        }

        *p = '\0';

        if (ngx_http_ai_tr_add_string(msg, "reasoning_content", text)
            == NULL)
        {
            goto failed;
        }
    }

    s = ngx_http_ai_tr_string(cand, "finishReason");

    reason = ngx_http_ai_tr_reason(NGX_HTTP_AI_FMT_OPENAI,
                                   NGX_HTTP_AI_FMT_GEMINI,
                                   cand ? (s ? s : "STOP") : "SAFETY");

    if (calls && reason->len == sizeof("stop") - 1
        && ngx_strncmp(reason->data, "stop", reason->len) == 0)
    {
        reason = ngx_http_ai_tr_reason(NGX_HTTP_AI_FMT_OPENAI,
                                       NGX_HTTP_AI_FMT_ANTHROPIC,
                                       "tool_use");
    }

    if (ngx_http_ai_tr_add_str(choice, "finish_reason", reason) == NULL) {
        goto failed;
    }

    usage = cJSON_GetObjectItemCaseSensitive(in, "usageMetadata");

    if (cJSON_IsObject(usage)) {
        ngx_memzero(&u, sizeof(ngx_http_ai_usage_t));
        ngx_http_ai_usage_object(NGX_HTTP_AI_FMT_GEMINI, usage, &u);

        usage = ngx_http_ai_tr_usage_openai(&u);
        if (usage == NULL) {
            goto failed;
        }

        cJSON_AddItemToObject(res, "usage", usage);
    }

    *out = res;

    return NGX_OK;

failed:

    cJSON_Delete(res);

    return NGX_ERROR;
}


/*
 * The id of a functionCall part's call: the call's own id, or
 * "call_<responseId>_<n>", or a random one; with the part's thought
 * signature in it, if it has one (ngx_http_ai_tr_call_id_sign())
 */

static char *
ngx_http_ai_gemini_call_id(ngx_pool_t *pool, cJSON *part,
    const char *response_id, ngx_uint_t n)
{
    char        *id;
    size_t       len;
    const char  *s, *sig;

    s = ngx_http_ai_tr_string(cJSON_GetObjectItemCaseSensitive(part,
                                                               "functionCall"),
                              "id");

    if (s && *s) {
        id = (char *) s;

    } else if (response_id == NULL) {
        id = ngx_http_ai_tr_gen_id(pool, "call_");

    } else {
        len = sizeof("call__") + ngx_strlen(response_id) + NGX_INT_T_LEN;

        id = ngx_pnalloc(pool, len);
        if (id == NULL) {
            return NULL;
        }

        *ngx_snprintf((u_char *) id, len - 1, "call_%s_%ui", response_id,
                      n) = '\0';
    }

    sig = ngx_http_ai_tr_string(part, "thoughtSignature");

    if (id == NULL || sig == NULL || *sig == '\0') {
        return id;
    }

    return ngx_http_ai_tr_call_id_sign(pool, id, sig);
}


/* streams: Gemini chunks -> OpenAI chunks */

ngx_int_t
ngx_http_ai_gemini_stream_to_openai(ngx_http_ai_stream_t *st, cJSON *json)
{
    char        *id, *args;
    cJSON       *error, *usage, *cand, *parts, *part, *fc, *chunk, *delta;
    cJSON       *calls, *call, *fn;
    ngx_str_t   *reason;
    const char  *s, *text;

    error = cJSON_GetObjectItemCaseSensitive(json, "error");

    if (cJSON_IsObject(error)) {
        s = ngx_http_ai_tr_string(error, "message");

        return ngx_http_ai_tr_emit_error(st, "api_error",
                                         s ? s : "upstream error", NULL);
    }

    usage = cJSON_GetObjectItemCaseSensitive(json, "usageMetadata");
    if (cJSON_IsObject(usage)) {
        ngx_http_ai_usage_object(NGX_HTTP_AI_FMT_GEMINI, usage, &st->usage);
    }

    s = ngx_http_ai_tr_string(json, "responseId");

    if (s && st->id == NULL) {
        st->id = ngx_http_ai_tr_strdup(st->pool, s, ngx_strlen(s));
        if (st->id == NULL) {
            return NGX_ERROR;
        }
    }

    if (ngx_http_ai_tr_emit_role(st) != NGX_OK) {
        return NGX_ERROR;
    }

    cand = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(json,
                                                               "candidates"),
                              0);
    parts = cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(cand, "content"), "parts");

    cJSON_ArrayForEach(part, parts) {
        text = ngx_http_ai_tr_string(part, "text");

        if (text) {
            if (*text == '\0') {
                continue;
            }

            chunk = ngx_http_ai_tr_chunk(st, &delta, NULL);
            if (chunk == NULL
                || ngx_http_ai_tr_add_string(delta,
                       cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(part,
                                                                 "thought"))
                       ? "reasoning_content" : "content", text)
                   == NULL)
            {
                cJSON_Delete(chunk);
                return NGX_ERROR;
            }

            if (ngx_http_ai_tr_emit_chunk(st, chunk) != NGX_OK) {
                return NGX_ERROR;
            }

            continue;
        }

        fc = cJSON_GetObjectItemCaseSensitive(part, "functionCall");
        if (!cJSON_IsObject(fc)) {
            continue;
        }

        /* a whole call per part: one delta with all its arguments */

        id = ngx_http_ai_gemini_call_id(st->pool, part,
                                        ngx_http_ai_tr_string(json,
                                                              "responseId"),
                                        st->ntools);
        if (id == NULL) {
            return NGX_ERROR;
        }

        args = cJSON_PrintUnformatted(
                             cJSON_GetObjectItemCaseSensitive(fc, "args"));

        chunk = ngx_http_ai_tr_chunk(st, &delta, NULL);
        if (chunk == NULL
            || (calls = cJSON_AddArrayToObject(delta, "tool_calls")) == NULL
            || (call = ngx_http_ai_tr_push(calls)) == NULL
            || cJSON_AddNumberToObject(call, "index", (double) st->ntools)
               == NULL
            || ngx_http_ai_tr_add_string(call, "id", id) == NULL
            || ngx_http_ai_tr_add_string(call, "type", "function") == NULL
            || (fn = cJSON_AddObjectToObject(call, "function")) == NULL
            || ngx_http_ai_tr_add_copy(fn, "name", fc, "name") != NGX_OK
            || ngx_http_ai_tr_add_string(fn, "arguments", args ? args : "{}")
               == NULL)
        {
            cJSON_free(args);
            cJSON_Delete(chunk);
            return NGX_ERROR;
        }

        cJSON_free(args);

        st->ntools++;
        st->tool_calls = 1;

        if (ngx_http_ai_tr_emit_chunk(st, chunk) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    s = ngx_http_ai_tr_string(cand, "finishReason");

    if (s == NULL) {
        s = ngx_http_ai_tr_string(
                cJSON_GetObjectItemCaseSensitive(json, "promptFeedback"),
                "blockReason");
        if (s == NULL) {
            return NGX_OK;
        }

        s = "SAFETY";
    }

    reason = ngx_http_ai_tr_reason(NGX_HTTP_AI_FMT_OPENAI,
                                   NGX_HTTP_AI_FMT_GEMINI, s);
    st->finish = reason;

    if (ngx_http_ai_tr_emit_finish(st, reason) != NGX_OK) {
        return NGX_ERROR;
    }

    /* Gemini's last chunk is the one with finishReason */

    return ngx_http_ai_tr_emit_close(st);
}
