
/*
 * Copyright (C) AI Gateway authors
 *
 * Private to the format layer's files: the helpers they share, the
 * converters each provider file offers (to and from OpenAI's chat format,
 * the pivot) and the stream translator's state.  The interface is in
 * ngx_http_ai_core.h ("The format layer", "Delta filters").
 */


#ifndef _NGX_HTTP_AI_CORE_FORMAT_H_INCLUDED_
#define _NGX_HTTP_AI_CORE_FORMAT_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_ai_core.h"


/* the highest block or tool call index a stream may use */
#define NGX_HTTP_AI_MAX_INDEX       1024


/* the texts (choices, blocks) whose end a filtered stream tracks: all */
#define NGX_HTTP_AI_MAX_FILTERED    NGX_HTTP_AI_MAX_INDEX

/*
 * the tool calls' arguments it tracks: a slot per call (an OpenAI
 * choice's calls from choice * 16, an Anthropic block's index), the
 * last slot shared by any beyond
 */
#define NGX_HTTP_AI_MAX_TOOL_FILTERED  128

/*
 * the side texts a filtered stream tracks: an OpenAI choice's reasoning
 * (2 * index) and refusal (2 * index + 1), the last slot shared by any
 * beyond; a filter sees them at NGX_HTTP_AI_MAX_FILTERED + that slot
 */
#define NGX_HTTP_AI_MAX_SIDE_FILTERED  (2 * NGX_HTTP_AI_MAX_INDEX)


/* a stream's delta filters: ngx_http_ai_stream_filter() in the core */
typedef ngx_int_t (*ngx_http_ai_tr_filter_pt)(void *data,
    ngx_http_ai_delta_t *delta);


/*
 * The tool an Anthropic target is made to answer with for an OpenAI
 * request's response_format: its input is the answer's JSON text
 */
#define NGX_HTTP_AI_JSON_TOOL       "gateway_json_answer"


/* Anthropic content blocks of the stream translators */
#define NGX_HTTP_AI_BLOCK_NONE      0
#define NGX_HTTP_AI_BLOCK_TEXT      1
#define NGX_HTTP_AI_BLOCK_TOOL      2
#define NGX_HTTP_AI_BLOCK_THINKING  3


struct ngx_http_ai_stream_s {
    ngx_pool_t                 *pool;
    ngx_uint_t                  door;       /* the client's format */
    ngx_uint_t                  target;     /* the upstream's format */
    ngx_str_t                   model;      /* reported to the client */
    time_t                      created;

    u_char                     *buf;        /* output of one event */
    size_t                      len;
    size_t                      size;

    char                       *id;         /* chunk / message id */

    ngx_http_ai_usage_t         usage;

    /* target side: Anthropic events or Gemini chunks -> OpenAI chunks */
    ngx_array_t                 tools;      /* ngx_int_t: block -> tool */
    ngx_uint_t                  ntools;
    ngx_str_t                  *finish;     /* pending finish_reason */

    /* door side: OpenAI chunks -> Anthropic events */
    ngx_array_t                 blocks;     /* ngx_int_t: tool -> block */
    ngx_int_t                   block;      /* open block index, -1 */
    ngx_uint_t                  block_type;
    ngx_uint_t                  nblocks;
    ngx_str_t                  *stop_reason;

    /* delta filters, when attached */
    ngx_http_ai_tr_filter_pt    filter;
    void                       *filter_data;
    ngx_uint_t                  open;       /* texts begun, not ended */
    uint32_t                    opened[NGX_HTTP_AI_MAX_FILTERED / 32];
    ngx_uint_t                  tools_open; /* arguments begun */
    uint32_t                    tools_opened[
                                    NGX_HTTP_AI_MAX_TOOL_FILTERED / 32];
    ngx_uint_t                  side_open;  /* reasoning, refusals */
    uint32_t                    side_opened[
                                    NGX_HTTP_AI_MAX_SIDE_FILTERED / 32];
    uint32_t                    thinking[NGX_HTTP_AI_MAX_FILTERED / 32];
                                            /* Anthropic blocks filtered
                                               as thinking */
    u_char                     *text;       /* NUL-terminated scratch */
    size_t                      text_size;
    ngx_http_ai_delta_t         abort;      /* what a filter ended with */

    void                       *responses;  /* the Responses door's
                                                   state */

    char                        fast[NGX_INT64_LEN + 1];  /* the fast
                                                   path's numbers */
    ngx_uint_t                  fast_names; /* 1: id, model print as they
                                               are; 2: not */
    ngx_str_t                   fast_prefix; /* an event up to its text:
                                               the OpenAI door's chunk, or
                                               the Anthropic door's delta of
                                               block fast_block */
    size_t                      fast_size;
    ngx_int_t                   fast_block;
    ngx_str_t                   fast_head;  /* an OpenAI chunk up to its
                                               choices */
    u_char                     *fast_shape; /* a plain text event's bytes
                                               before its text, then
                                               after it */
    size_t                      fast_shape_head;
    size_t                      fast_shape_tail;
    u_char                     *fast_top;   /* an OpenAI chunk's bytes up
                                               to its choices, read once */
    size_t                      fast_top_len;

    unsigned                    include_usage:1;
    unsigned                    role:1;     /* the pivot's role chunk */
    unsigned                    started:1;  /* message_start */
    unsigned                    finished:1; /* finish chunk sent */
    unsigned                    done:1;     /* closing events sent */
    unsigned                    error:1;    /* an error event sent */
    unsigned                    tool_calls:1;
    unsigned                    json_answer:1;  /* Anthropic's forced tool
                                                   of a response_format */
    unsigned                    aborted:1;  /* by a filter: nothing more */
    unsigned                    changed:1;  /* a filter changed a text */
    unsigned                    plain:1;    /* a whole answer's frame */
    unsigned                    shaped:1;   /* fast_shape holds one */
};


/*
 * a usage object's raw text read in place, as ngx_http_ai_usage_object()
 * reads its cJSON (ngx_http_ai_core_usage.c); NGX_DECLINED: an odd one
 * (an escape, a long number), which only cJSON reads the same
 */
ngx_int_t ngx_http_ai_usage_raw(ngx_uint_t format, ngx_str_t *object,
    ngx_http_ai_usage_t *u);

/*
 * the length of the usage object at p when the core has just read the
 * same bytes into the same usage (ngx_http_ai_usage_raw() of it is then a
 * compare), else 0
 */
size_t ngx_http_ai_usage_known(ngx_uint_t format, u_char *p, u_char *end,
    ngx_http_ai_usage_t *u);


/* helpers (ngx_http_ai_core_format.c) */

ngx_int_t ngx_http_ai_tr_print(ngx_pool_t *pool, cJSON *json,
    ngx_str_t *out);
size_t ngx_http_ai_tr_json_string_size(const u_char *s);
u_char *ngx_http_ai_tr_json_string(u_char *p, const u_char *s);
size_t ngx_http_ai_tr_json_number(u_char *buf, double d);
ngx_int_t ngx_http_ai_tr_error(ngx_pool_t *pool, ngx_str_t *err,
    const char *fmt, const char *arg);
ngx_uint_t ngx_http_ai_tr_is(cJSON *item, const char *s);
const char *ngx_http_ai_tr_string(cJSON *obj, const char *name);
ngx_int_t ngx_http_ai_tr_int(cJSON *obj, const char *name,
    ngx_int_t *value);
cJSON *ngx_http_ai_tr_add_string(cJSON *obj, const char *name,
    const char *s);
cJSON *ngx_http_ai_tr_add_str(cJSON *obj, const char *name, ngx_str_t *s);
cJSON *ngx_http_ai_tr_add_ref(cJSON *obj, const char *name, const char *s);
cJSON *ngx_http_ai_tr_add_int(cJSON *obj, const char *name, ngx_int_t n);
cJSON *ngx_http_ai_tr_add_child(cJSON *obj, const char *name,
    ngx_uint_t array);
cJSON *ngx_http_ai_tr_str(ngx_str_t *s);
cJSON *ngx_http_ai_tr_push(cJSON *array);
ngx_int_t ngx_http_ai_tr_add_copy(cJSON *to, const char *to_name,
    cJSON *from, const char *from_name);
ngx_int_t ngx_http_ai_tr_set(cJSON *obj, const char *name, cJSON *item);
cJSON *ngx_http_ai_tr_parse_args(const char *args);
ngx_int_t ngx_http_ai_tr_data_url(ngx_pool_t *pool, const char *url,
    char **mime, char **data);
char *ngx_http_ai_tr_strdup(ngx_pool_t *pool, const char *s, size_t len);
char *ngx_http_ai_tr_text(ngx_pool_t *pool, cJSON *content,
    const char *type, const char *sep, ngx_uint_t *other);
char *ngx_http_ai_tr_gen_id(ngx_pool_t *pool, const char *prefix);
cJSON *ngx_http_ai_tr_usage_openai(ngx_http_ai_usage_t *u);
ngx_str_t *ngx_http_ai_tr_reason(ngx_uint_t door, ngx_uint_t target,
    const char *reason);
ngx_int_t ngx_http_ai_tr_thinking_budget(cJSON *in, ngx_int_t *budget);
ngx_int_t ngx_http_ai_tr_unsupported(ngx_pool_t *pool, cJSON *in,
    ngx_uint_t to, ngx_str_t *err);
const char *ngx_http_ai_tr_budget_effort(ngx_int_t budget);
char *ngx_http_ai_tr_call_id_sign(ngx_pool_t *pool, const char *id,
    const char *signature);
char *ngx_http_ai_tr_call_id_signature(ngx_pool_t *pool, const char *id);

/* stream output */
ngx_int_t ngx_http_ai_tr_out(ngx_http_ai_stream_t *st, const char *p,
    size_t len);
ngx_int_t ngx_http_ai_tr_out_event(ngx_http_ai_stream_t *st,
    const char *name, cJSON *json);
cJSON *ngx_http_ai_tr_chunk(ngx_http_ai_stream_t *st, cJSON **delta,
    ngx_str_t *finish_reason);
ngx_int_t ngx_http_ai_tr_emit_chunk(ngx_http_ai_stream_t *st, cJSON *chunk);
ngx_int_t ngx_http_ai_tr_emit_call(ngx_http_ai_stream_t *st, ngx_int_t tool,
    cJSON *src, const char *id, const char *args);
ngx_int_t ngx_http_ai_tr_emit_role(ngx_http_ai_stream_t *st);
ngx_int_t ngx_http_ai_tr_emit_finish(ngx_http_ai_stream_t *st,
    ngx_str_t *reason);
ngx_int_t ngx_http_ai_tr_emit_close(ngx_http_ai_stream_t *st);
ngx_int_t ngx_http_ai_tr_emit_error(ngx_http_ai_stream_t *st,
    const char *type, const char *message, const char *code);
ngx_int_t ngx_http_ai_tr_array_set(ngx_array_t *a, ngx_uint_t i,
    ngx_int_t value);
ngx_int_t ngx_http_ai_tr_array_get(ngx_array_t *a, ngx_uint_t i);


/* delta filters (ngx_http_ai_core_format_filter.c) */

ngx_int_t ngx_http_ai_tr_filter_chunk(ngx_http_ai_stream_t *st,
    cJSON *chunk, ngx_uint_t *skip);
ngx_int_t ngx_http_ai_tr_filter_anthropic(ngx_http_ai_stream_t *st,
    cJSON *json, ngx_uint_t *action);
ngx_int_t ngx_http_ai_tr_filter_end(ngx_http_ai_stream_t *st);
ngx_int_t ngx_http_ai_tr_filter_answer(ngx_pool_t *pool, ngx_uint_t format,
    ngx_http_ai_tr_filter_pt filter, void *data, ngx_str_t *body,
    ngx_http_ai_delta_t *abort);
void ngx_http_ai_tr_set_filter(ngx_http_ai_stream_t *st,
    ngx_http_ai_tr_filter_pt filter, void *data);


/* the fast path of text deltas (ngx_http_ai_core_format_fast.c) */

#define NGX_HTTP_AI_FAST_ROLE    0
#define NGX_HTTP_AI_FAST_FINISH  1
#define NGX_HTTP_AI_FAST_USAGE   2

ngx_int_t ngx_http_ai_tr_fast_emit(ngx_http_ai_stream_t *st,
    ngx_uint_t what, ngx_str_t *reason);
int ngx_http_ai_tr_fast_int(char *buf, int64_t v);
ngx_uint_t ngx_http_ai_tr_verbatim(const char *s, size_t len);
ngx_int_t ngx_http_ai_anthropic_start_out(ngx_http_ai_stream_t *st);
ngx_int_t ngx_http_ai_tr_fast_openai(ngx_http_ai_stream_t *st,
    ngx_str_t *data);
ngx_int_t ngx_http_ai_tr_fast_anthropic(ngx_http_ai_stream_t *st,
    ngx_str_t *name, ngx_str_t *data);
ngx_int_t ngx_http_ai_tr_fast_request(ngx_pool_t *pool,
    ngx_http_ai_translate_request_t *req, cJSON *json, ngx_str_t *body);


/* OpenAI (ngx_http_ai_core_format_openai.c) */

ngx_int_t ngx_http_ai_openai_decorate(cJSON *json,
    ngx_http_ai_translate_request_t *req);
ngx_int_t ngx_http_ai_openai_stream_pass(ngx_http_ai_stream_t *st,
    ngx_str_t *name, ngx_str_t *data, cJSON *json);


/* Anthropic (ngx_http_ai_core_format_anthropic.c) */

ngx_int_t ngx_http_ai_anthropic_request_to_openai(ngx_pool_t *pool,
    cJSON *in, cJSON **out, ngx_str_t *err);
ngx_int_t ngx_http_ai_anthropic_request_from_openai(ngx_pool_t *pool,
    cJSON *in, ngx_http_ai_translate_request_t *req, cJSON **out,
    ngx_str_t *err);
ngx_int_t ngx_http_ai_anthropic_decorate(cJSON *json,
    ngx_http_ai_translate_request_t *req);
ngx_int_t ngx_http_ai_anthropic_response_to_openai(ngx_pool_t *pool,
    cJSON *in, ngx_str_t *model, cJSON **out, ngx_str_t *err);
ngx_int_t ngx_http_ai_anthropic_response_from_openai(ngx_pool_t *pool,
    cJSON *in, ngx_str_t *model, cJSON **out, ngx_str_t *err);
ngx_int_t ngx_http_ai_anthropic_stream_to_openai(ngx_http_ai_stream_t *st,
    ngx_str_t *name, cJSON *json);
ngx_int_t ngx_http_ai_anthropic_stream_from_openai(ngx_http_ai_stream_t *st,
    cJSON *chunk);
ngx_int_t ngx_http_ai_anthropic_stream_close(ngx_http_ai_stream_t *st);


/* Gemini (ngx_http_ai_core_format_gemini.c) */

ngx_int_t ngx_http_ai_gemini_request_from_openai(ngx_pool_t *pool,
    cJSON *in, ngx_http_ai_translate_request_t *req, cJSON **out,
    ngx_str_t *err);
ngx_int_t ngx_http_ai_gemini_response_to_openai(ngx_pool_t *pool,
    cJSON *in, ngx_str_t *model, cJSON **out, ngx_str_t *err);
ngx_int_t ngx_http_ai_gemini_stream_to_openai(ngx_http_ai_stream_t *st,
    cJSON *json);


/* OpenAI's Responses API (ngx_http_ai_core_format_responses.c) */

ngx_int_t ngx_http_ai_responses_request_to_openai(ngx_pool_t *pool,
    cJSON *in, cJSON **out, ngx_str_t *err);
ngx_int_t ngx_http_ai_responses_decorate(cJSON *json,
    ngx_http_ai_translate_request_t *req);
ngx_int_t ngx_http_ai_responses_response_from_openai(ngx_pool_t *pool,
    cJSON *in, ngx_str_t *model, cJSON **out, ngx_str_t *err);
ngx_int_t ngx_http_ai_responses_response_to_openai(ngx_pool_t *pool,
    cJSON *in, ngx_str_t *model, cJSON **out, ngx_str_t *err);
ngx_int_t ngx_http_ai_responses_stream_from_openai(ngx_http_ai_stream_t *st,
    cJSON *chunk);
ngx_int_t ngx_http_ai_responses_stream_close(ngx_http_ai_stream_t *st);
ngx_int_t ngx_http_ai_responses_stream_error(ngx_http_ai_stream_t *st,
    const char *message, const char *code);
ngx_int_t ngx_http_ai_responses_stream_pass(ngx_http_ai_stream_t *st,
    ngx_str_t *name, ngx_str_t *data);
ngx_int_t ngx_http_ai_responses_stream_to_openai(ngx_http_ai_stream_t *st,
    ngx_str_t *name, cJSON *json);


#endif /* _NGX_HTTP_AI_CORE_FORMAT_H_INCLUDED_ */
