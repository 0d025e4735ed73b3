
/*
 * Copyright (C) AI Gateway authors
 *
 * Protocol translation between the wire formats (NGX_HTTP_AI_FMT_OPENAI,
 * _ANTHROPIC, _GEMINI), both directions, streaming included.  Pure: cJSON
 * and a pool in, bytes out; no NGINX request, no I/O (unit tests link the
 * translate files alone).  OpenAI's chat format is the pivot: a request
 * goes door -> OpenAI -> target, a response target -> OpenAI -> door, so
 * each format needs a converter to and from OpenAI only.
 *
 * Every function returns NGX_OK, NGX_DECLINED (the input cannot be
 * translated: *err says why, for a 400 or a 502), or NGX_ERROR (no
 * memory).  Output strings are allocated from the pool.  Inputs are never
 * modified (a request is translated again for each attempt).
 */


#ifndef _NGX_HTTP_AI_PROXY_TRANSLATE_H_INCLUDED_
#define _NGX_HTTP_AI_PROXY_TRANSLATE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <cjson/cJSON.h>


typedef struct {
    ngx_str_t                   role;       /* "system", "user", ... */
    ngx_str_t                   content;
} ngx_http_ai_decoration_t;


typedef struct {
    ngx_uint_t                  from;       /* the door's format */
    ngx_uint_t                  to;         /* the target's format */
    ngx_uint_t                  endpoint;   /* NGX_HTTP_AI_EP_CHAT ... */

    cJSON                      *json;       /* the client's parsed body */
    ngx_str_t                   body;       /* the client's raw body */

    ngx_str_t                   model;      /* the upstream model name */
    ngx_int_t                   max_tokens; /* default when the target
                                               requires it (Anthropic) */
    unsigned                    stream:1;
    unsigned                    force_usage:1;  /* OpenAI target: ask for
                                                   stream usage */

    ngx_array_t                *prepend;    /* ngx_http_ai_decoration_t */
    ngx_array_t                *append;
} ngx_http_ai_translate_request_t;


/*
 * The body for the target.  When nothing changes (same format, same
 * model, no decoration, no usage to force) *body is req->body: no copy.
 * Gemini has the model and the streaming in the URL, not in the body.
 */
ngx_int_t ngx_http_ai_translate_request(ngx_pool_t *pool,
    ngx_http_ai_translate_request_t *req, ngx_str_t *body, ngx_str_t *err);


/*
 * A complete (non-streamed) successful response body of the target, in
 * the door's format.  model is the name the client asked for (responses
 * report it), id_prefix unused when NULL.
 */
ngx_int_t ngx_http_ai_translate_response(ngx_pool_t *pool, ngx_uint_t from,
    ngx_uint_t to, ngx_str_t *model, ngx_str_t *in, ngx_str_t *out,
    ngx_str_t *err);


/*
 * A provider's error body (any status >= 400) in the door's error shape:
 * OpenAI {"error":{"message","type","param","code"}} or Anthropic
 * {"type":"error","error":{"type","message"}}.  An unparsable body
 * becomes a generic error with the status' type.
 */
ngx_int_t ngx_http_ai_translate_error(ngx_pool_t *pool, ngx_uint_t from,
    ngx_uint_t to, ngx_uint_t status, ngx_str_t *in, ngx_str_t *out);


/*
 * Streams: one translator per response.  Each upstream SSE event (name,
 * data and its parsed JSON, NULL if not JSON) goes in as it arrives; the
 * complete SSE bytes for the client come out (possibly empty, possibly
 * several events).  Nothing is held back beyond what the format forces
 * (e.g. Anthropic's message_start needs the first chunk's id).
 *
 *   OpenAI chunks -> Anthropic events: message_start, content_block_start
 *   / _delta / _stop (text and tool_use with input_json_delta),
 *   message_delta (stop_reason, usage), message_stop.
 *   Anthropic events / Gemini chunks -> OpenAI chat.completion.chunk
 *   (role first, content and tool_calls deltas, finish_reason), then, if
 *   include_usage, a usage chunk with "choices":[], then "data: [DONE]".
 *
 * When from == to == OpenAI the translator only drops the usage chunk if
 * the client did not ask for it (include_usage 0) and passes the rest.
 */

typedef struct ngx_http_ai_stream_s  ngx_http_ai_stream_t;

ngx_http_ai_stream_t *ngx_http_ai_stream_create(ngx_pool_t *pool,
    ngx_uint_t from, ngx_uint_t to, ngx_str_t *model,
    ngx_uint_t include_usage);

/* out points into the stream's own buffer, valid until its next call */
ngx_int_t ngx_http_ai_stream_event(ngx_http_ai_stream_t *st,
    ngx_str_t *name, ngx_str_t *data, cJSON *json, ngx_str_t *out);

/*
 * The upstream stream ended.  complete: its terminal event was seen.  If
 * not complete, out gets an explicit SSE error event in the door's format
 * (never a fake success); if complete, whatever closing events the door
 * still needs (e.g. "data: [DONE]" when the target had none).
 */
ngx_int_t ngx_http_ai_stream_end(ngx_http_ai_stream_t *st,
    ngx_uint_t complete, ngx_str_t *out);


/* finish_reason <-> stop_reason <-> finishReason, exposed for tests */
ngx_str_t *ngx_http_ai_finish_reason(ngx_uint_t from, ngx_uint_t to,
    ngx_str_t *reason);


#endif /* _NGX_HTTP_AI_PROXY_TRANSLATE_H_INCLUDED_ */
