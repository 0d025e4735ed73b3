
/*
 * Copyright (C) AI Gateway authors
 *
 * The record: one line of JSON per request, written to a file (through
 * NGINX's open files, so "nginx -s reopen" reopens it; optionally
 * buffered with a flush timer, as access_log) or sent to syslog (UDP,
 * non-blocking).  Strings are escaped as JSON and always valid UTF-8;
 * values that are not known are null.  Keys of the client and of the
 * upstream are never part of it: no header is logged unless named by
 * ai_log_metadata_header, which refuses the ones that carry keys.
 */


#include "ngx_http_ai_log.h"


#define ngx_http_ai_log_lit(p, s)  ngx_cpymem(p, s, sizeof(s) - 1)

#define ngx_http_ai_log_hex(c)                                                \
    (((c) >= '0' && (c) <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f'))


static u_char *ngx_http_ai_log_str(u_char *p, ngx_str_t *s);
static size_t ngx_http_ai_log_outcomes_len(ngx_http_request_t *r);
static u_char *ngx_http_ai_log_outcomes(u_char *p, ngx_http_request_t *r);
static u_char *ngx_http_ai_log_time(u_char *p, ngx_http_request_t *r);
static ngx_http_variable_value_t *ngx_http_ai_log_request_id(
    ngx_http_request_t *r, ngx_int_t index);
static u_char *ngx_http_ai_log_int(u_char *p, int64_t n);
static u_char *ngx_http_ai_log_fixed(u_char *p, double f, ngx_uint_t width);
static void ngx_http_ai_log_user(ngx_http_ai_ctx_t *ai, ngx_str_t *user);
static size_t ngx_http_ai_log_trail_len(ngx_array_t *trail);
static u_char *ngx_http_ai_log_trail(u_char *p, ngx_array_t *trail);
static size_t ngx_http_ai_log_metadata_len(ngx_http_request_t *r,
    ngx_http_ai_log_loc_conf_t *lcf);
static u_char *ngx_http_ai_log_metadata(u_char *p, ngx_http_request_t *r,
    ngx_http_ai_log_loc_conf_t *lcf);
static ngx_table_elt_t *ngx_http_ai_log_find_header(ngx_http_request_t *r,
    ngx_str_t *name);
static u_char *ngx_http_ai_log_json_value(u_char *p, u_char *end,
    ngx_uint_t depth);
static u_char *ngx_http_ai_log_json_skip(u_char *p, u_char *end);
static u_char *ngx_http_ai_log_json_str(u_char *p, u_char *end);
static u_char *ngx_http_ai_log_json_number(u_char *p, u_char *end);
static void ngx_http_ai_log_sink_write(ngx_http_request_t *r,
    ngx_http_ai_log_sink_t *sink, u_char *buf, size_t len);
static void ngx_http_ai_log_write_fd(ngx_open_file_t *file, ngx_log_t *log,
    u_char *buf, size_t len, time_t *error_time);
static void ngx_http_ai_log_flush(ngx_open_file_t *file, ngx_log_t *log);
static void ngx_http_ai_log_flush_handler(ngx_event_t *ev);
static ngx_int_t ngx_http_ai_log_append(ngx_http_request_t *r,
    ngx_http_ai_log_ctx_t *ctx, size_t max, u_char *data, size_t len);
static ngx_int_t ngx_http_ai_log_delta(ngx_http_request_t *r,
    ngx_http_ai_log_ctx_t *ctx, size_t max, ngx_uint_t format, cJSON *json);
static ngx_int_t ngx_http_ai_log_delta_openai(ngx_http_request_t *r,
    ngx_http_ai_log_ctx_t *ctx, size_t max, cJSON *json);
static ngx_int_t ngx_http_ai_log_delta_responses(ngx_http_request_t *r,
    ngx_http_ai_log_ctx_t *ctx, size_t max, cJSON *json);
static ngx_int_t ngx_http_ai_log_delta_anthropic(ngx_http_request_t *r,
    ngx_http_ai_log_ctx_t *ctx, size_t max, cJSON *json);
static ngx_int_t ngx_http_ai_log_delta_gemini(ngx_http_request_t *r,
    ngx_http_ai_log_ctx_t *ctx, size_t max, cJSON *json);
static ngx_uint_t ngx_http_ai_log_first(cJSON *item);
static ngx_int_t ngx_http_ai_log_tool_call(ngx_http_request_t *r,
    ngx_http_ai_log_ctx_t *ctx, size_t max, cJSON *call, ngx_uint_t object);
static ngx_int_t ngx_http_ai_log_text(ngx_http_request_t *r,
    ngx_http_ai_log_ctx_t *ctx, size_t max, cJSON *item);
static ngx_int_t ngx_http_ai_log_append_str(ngx_http_request_t *r,
    ngx_http_ai_log_ctx_t *ctx, size_t max, cJSON *item);


/* ai_log PATH|syslog:... [buffer=SIZE [flush=TIME]] [if=COND] */

char *
ngx_http_ai_log_set_sink(ngx_conf_t *cf, ngx_http_ai_log_loc_conf_t *lcf)
{
    ssize_t                            size;
    ngx_str_t                         *value, s;
    ngx_msec_t                         flush;
    ngx_uint_t                         i;
    ngx_http_ai_log_buf_t             *buffer;
    ngx_http_ai_log_sink_t            *sink;
    ngx_http_compile_complex_value_t   ccv;

    value = cf->args->elts;

    if (lcf->sinks == NULL) {
        lcf->sinks = ngx_array_create(cf->pool, 2,
                                      sizeof(ngx_http_ai_log_sink_t));
        if (lcf->sinks == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    sink = ngx_array_push(lcf->sinks);
    if (sink == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(sink, sizeof(ngx_http_ai_log_sink_t));

    if (ngx_strncmp(value[1].data, "syslog:", 7) == 0) {

        sink->syslog = ngx_pcalloc(cf->pool, sizeof(ngx_syslog_peer_t));
        if (sink->syslog == NULL) {
            return NGX_CONF_ERROR;
        }

        if (ngx_syslog_process_conf(cf, sink->syslog) != NGX_CONF_OK) {
            return NGX_CONF_ERROR;
        }

    } else {

        if (ngx_strlchr(value[1].data, value[1].data + value[1].len, '$')) {
            return "does not support variables in the file name";
        }

        sink->file = ngx_conf_open_file(cf->cycle, &value[1]);
        if (sink->file == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    size = 0;
    flush = 0;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "buffer=", 7) == 0) {
            s.len = value[i].len - 7;
            s.data = value[i].data + 7;

            size = ngx_parse_size(&s);

            if (size == NGX_ERROR || size == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid buffer size \"%V\"", &s);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "flush=", 6) == 0) {
            s.len = value[i].len - 6;
            s.data = value[i].data + 6;

            flush = ngx_parse_time(&s, 0);

            if (flush == (ngx_msec_t) NGX_ERROR || flush == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid flush time \"%V\"", &s);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "if=", 3) == 0) {
            s.len = value[i].len - 3;
            s.data = value[i].data + 3;

            ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

            ccv.cf = cf;
            ccv.value = &s;
            ccv.complex_value = ngx_palloc(cf->pool,
                                           sizeof(ngx_http_complex_value_t));
            if (ccv.complex_value == NULL) {
                return NGX_CONF_ERROR;
            }

            if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
                return NGX_CONF_ERROR;
            }

            sink->filter = ccv.complex_value;

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (flush && size == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"flush=\" needs \"buffer=\" in \"ai_log %V\"",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    if (size == 0) {
        return NGX_CONF_OK;
    }

    if (sink->syslog) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"ai_log\" to syslog cannot be buffered");
        return NGX_CONF_ERROR;
    }

    if (sink->file->data) {
        buffer = sink->file->data;

        if (sink->file->flush != ngx_http_ai_log_flush
            || buffer->last - buffer->start != size
            || buffer->flush != flush)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\" is already buffered with other "
                               "parameters (by ai_log or access_log)",
                               &value[1]);
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    buffer = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_log_buf_t));
    if (buffer == NULL) {
        return NGX_CONF_ERROR;
    }

    buffer->start = ngx_pnalloc(cf->pool, size);
    if (buffer->start == NULL) {
        return NGX_CONF_ERROR;
    }

    buffer->pos = buffer->start;
    buffer->last = buffer->start + size;

    if (flush) {
        buffer->event = ngx_pcalloc(cf->pool, sizeof(ngx_event_t));
        if (buffer->event == NULL) {
            return NGX_CONF_ERROR;
        }

        buffer->event->data = sink->file;
        buffer->event->handler = ngx_http_ai_log_flush_handler;
        buffer->event->log = &cf->cycle->new_log;
        buffer->event->cancelable = 1;

        buffer->flush = flush;
    }

    /* NGINX calls it before a reopen and when a worker exits */
    sink->file->flush = ngx_http_ai_log_flush;
    sink->file->data = buffer;

    return NGX_CONF_OK;
}


ngx_int_t
ngx_http_ai_log_write(ngx_http_request_t *r, ngx_http_ai_log_loc_conf_t *lcf,
    ngx_http_ai_log_record_t *rec)
{
    u_char                       *line, *p;
    size_t                        len, hlen;
    ngx_str_t                     val, *s, user, request_id, code, msg;
    ngx_uint_t                    i, any, syslog;
    ngx_array_t                  *trail;
    ngx_http_ai_ctx_t            *ai;
    ngx_http_ai_log_buf_t        *buffer;
    ngx_http_ai_answer_t         *answer, none;
    ngx_http_ai_attempt_t        *a;
    ngx_http_ai_usage_t           usage;
    ngx_http_ai_log_ctx_t        *ctx;
    ngx_http_ai_log_sink_t       *sink;
    ngx_http_core_loc_conf_t     *clcf;
    ngx_http_variable_value_t    *vv;
    ngx_http_ai_log_main_conf_t  *lmcf;

    ai = rec->ai;
    sink = lcf->sinks->elts;

    any = 0;
    syslog = 0;

    for (i = 0; i < lcf->sinks->nelts; i++) {

        if (sink[i].filter) {
            if (ngx_http_complex_value(r, sink[i].filter, &val) != NGX_OK) {
                return NGX_ERROR;
            }

            if (val.len == 0 || (val.len == 1 && val.data[0] == '0')) {
                continue;
            }
        }

        any = 1;

        if (sink[i].syslog) {
            syslog = 1;
        }
    }

    if (!any) {
        return NGX_OK;
    }

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_ai_log_module);
    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    vv = ngx_http_ai_log_request_id(r, lmcf->request_id);

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_log_module);

    answer = ngx_http_ai_answer(r);

    if (answer == NULL) {
        ngx_memzero(&none, sizeof(ngx_http_ai_answer_t));
        answer = &none;
    }

    trail = ngx_http_ai_attempts(r);

    /* the provider's request id: that of the attempt that answered */

    ngx_str_null(&request_id);

    if (trail) {
        a = trail->elts;
        request_id = a[trail->nelts - 1].request_id;
    }

    ngx_http_ai_log_user(ai, &user);

    /* an upper bound: every string may grow 6 times when escaped */

    len = 1280 + 24 * 16
          + ngx_http_ai_log_json_len(vv && !vv->not_found ? vv->len : 0)
          + ngx_http_ai_log_json_len(ai->consumer.len)
          + ngx_http_ai_log_json_len(r->connection->addr_text.len)
          + ngx_http_ai_log_json_len(clcf->name.len)
          + ngx_http_ai_log_json_len(ai->req.model.len)
          + ngx_http_ai_log_json_len(ai->upstream_model.len)
          + ngx_http_ai_log_json_len(ai->provider.len)
          + ngx_http_ai_log_json_len(ai->target.len)
          + ngx_http_ai_log_json_len(rec->cache.len)
          + ngx_http_ai_log_json_len(rec->guard.len)
          + ngx_http_ai_log_json_len(rec->guard_rule.len)
          + ngx_http_ai_log_json_len(rec->limit.len)
          + ngx_http_ai_log_outcomes_len(r)
          + ngx_http_ai_log_json_len(user.len)
          + ngx_http_ai_log_json_len(request_id.len)
          + ngx_http_ai_log_json_len(answer->id.len)
          + ngx_http_ai_log_json_len(answer->finish_reason.len)
          + ngx_http_ai_log_json_len(answer->error_code.len)
          + ngx_http_ai_log_json_len(answer->error_message.len)
          + 128
          + ngx_http_ai_log_trail_len(trail)
          + ngx_http_ai_log_metadata_len(r, lcf);

    if (lcf->request_body) {
        len += 64 + ngx_http_ai_log_json_len(ngx_min(ai->req.body.len,
                                                 lcf->request_body_max));
    }

    if (lcf->response_body) {
        len += 64 + ngx_http_ai_log_json_len(ctx ? ctx->len : 0);
    }

    hlen = syslog ? 64 + NGX_MAXHOSTNAMELEN : 0;

    /*
     * one buffered file, as most often: the record is made in its buffer,
     * as NGINX's access log does, not in the request's pool and copied
     */

    buffer = NULL;

    if (lcf->sinks->nelts == 1 && !syslog) {
        buffer = sink[0].file->data;
    }

    if (buffer && len + 1 > (size_t) (buffer->last - buffer->start)) {
        /*
         * its bound is larger than the whole buffer (bodies in the
         * record): made in the pool, then buffered if it fits after all
         */
        buffer = NULL;
    }

    if (buffer && len + 1 > (size_t) (buffer->last - buffer->pos)) {
        ngx_http_ai_log_flush(sink[0].file, r->connection->log);
    }

    if (buffer) {
        line = buffer->pos;

    } else {
        line = ngx_pnalloc(r->pool, hlen + len);
        if (line == NULL) {
            return NGX_ERROR;
        }
    }

    p = line + hlen;

    p = ngx_http_ai_log_lit(p, "{\"time\":\"");
    p = ngx_http_ai_log_time(p, r);

    p = ngx_http_ai_log_lit(p, "\",\"request_id\":");

    if (vv && !vv->not_found) {
        val.data = vv->data;
        val.len = vv->len;
        p = ngx_http_ai_log_str(p, &val);

    } else {
        p = ngx_http_ai_log_lit(p, "null");
    }

    p = ngx_http_ai_log_lit(p, ",\"consumer\":");
    p = ngx_http_ai_log_str(p, &ai->consumer);

    p = ngx_http_ai_log_lit(p, ",\"client\":");
    p = ngx_http_ai_log_str(p, &r->connection->addr_text);

    p = ngx_http_ai_log_lit(p, ",\"route\":");
    p = ngx_http_ai_log_str(p, &clcf->name);

    p = ngx_http_ai_log_lit(p, ",\"endpoint\":");

    switch (ai->req.endpoint) {
    case NGX_HTTP_AI_EP_CHAT:
        p = ngx_http_ai_log_lit(p, "\"chat\"");
        break;
    case NGX_HTTP_AI_EP_EMBEDDINGS:
        p = ngx_http_ai_log_lit(p, "\"embeddings\"");
        break;
    case NGX_HTTP_AI_EP_MODELS:
        p = ngx_http_ai_log_lit(p, "\"models\"");
        break;
    case NGX_HTTP_AI_EP_MESSAGES:
        p = ngx_http_ai_log_lit(p, "\"messages\"");
        break;
    case NGX_HTTP_AI_EP_GEMINI:
        p = ngx_http_ai_log_lit(p, "\"generate_content\"");
        break;
    case NGX_HTTP_AI_EP_COUNT_TOKENS:
        p = ngx_http_ai_log_lit(p, "\"count_tokens\"");
        break;
    case NGX_HTTP_AI_EP_RESPONSES:
        p = ngx_http_ai_log_lit(p, "\"responses\"");
        break;
    case NGX_HTTP_AI_EP_RESPONSE:
        p = ngx_http_ai_log_lit(p, "\"response\"");
        break;
    default:
        p = ngx_http_ai_log_lit(p, "null");
    }

    p = ngx_http_ai_log_lit(p, ",\"model\":");
    p = ngx_http_ai_log_str(p, &ai->req.model);

    p = ngx_http_ai_log_lit(p, ",\"upstream_model\":");
    p = ngx_http_ai_log_str(p, &ai->upstream_model);

    p = ngx_http_ai_log_lit(p, ",\"provider\":");
    p = ngx_http_ai_log_str(p, &ai->provider);

    p = ngx_http_ai_log_lit(p, ",\"target\":");
    p = ngx_http_ai_log_str(p, &ai->target);

    p = ngx_http_ai_log_lit(p, ",\"attempts\":");
    p = ngx_http_ai_digits(p, rec->attempts);
    p = ngx_http_ai_log_lit(p, ",\"status\":");
    p = ngx_http_ai_digits(p, rec->status);

    if (ai->resp_done) {
        p = ngx_http_ai_log_lit(p, ",\"complete\":true");

    } else {
        p = ngx_http_ai_log_lit(p, ",\"complete\":false");
    }

    p = ngx_http_ai_log_lit(p, ",\"stream\":");

    if (ai->req.parsed) {
        if (ai->req.stream) {
            p = ngx_http_ai_log_lit(p, "true");

        } else {
            p = ngx_http_ai_log_lit(p, "false");
        }

    } else {
        p = ngx_http_ai_log_lit(p, "null");
    }

    if (ai->usage.found) {
        p = ngx_http_ai_log_lit(p, ",\"prompt_tokens\":");
        p = ngx_http_ai_digits(p, rec->tokens[NGX_HTTP_AI_LOG_PROMPT]);
        p = ngx_http_ai_log_lit(p, ",\"completion_tokens\":");
        p = ngx_http_ai_digits(p, rec->tokens[NGX_HTTP_AI_LOG_COMPLETION]);
        p = ngx_http_ai_log_lit(p, ",\"cached_tokens\":");
        p = ngx_http_ai_digits(p, rec->tokens[NGX_HTTP_AI_LOG_CACHED]);
        p = ngx_http_ai_log_lit(p, ",\"reasoning_tokens\":");
        p = ngx_http_ai_digits(p, rec->tokens[NGX_HTTP_AI_LOG_REASONING]);
        p = ngx_http_ai_log_lit(p, ",\"total_tokens\":");
        p = ngx_http_ai_digits(p, rec->tokens[NGX_HTTP_AI_LOG_TOTAL]);

    } else {
        p = ngx_http_ai_log_lit(p, ",\"prompt_tokens\":null,"
                                "\"completion_tokens\":null,"
                                "\"cached_tokens\":null,"
                                "\"reasoning_tokens\":null,"
                                "\"total_tokens\":null");
    }

    /* where usage comes from; a stream without any: counted locally */

    if (ngx_http_ai_final_usage(r, &usage) != NGX_OK) {
        p = ngx_http_ai_log_lit(p, ",\"usage_source\":null");

    } else if (!usage.estimated) {
        p = ngx_http_ai_log_lit(p, ",\"usage_source\":\"provider\"");

    } else {
        p = ngx_http_ai_log_lit(p, ",\"usage_source\":\"estimated\","
                                "\"estimated_tokens\":{\"prompt_tokens\":");
        p = ngx_http_ai_log_int(p, usage.prompt_tokens);
        p = ngx_http_ai_log_lit(p, ",\"completion_tokens\":");
        p = ngx_http_ai_log_int(p, usage.completion_tokens);
        *p++ = '}';
    }

    if (rec->has_cost) {
        p = ngx_http_ai_log_lit(p, ",\"cost_usd\":");
        p = ngx_http_ai_log_fixed(p, rec->cost, 9);

    } else {
        p = ngx_http_ai_log_lit(p, ",\"cost_usd\":null");
    }

    p = ngx_http_ai_log_lit(p, ",\"latency_ms\":");
    p = ngx_http_ai_digits(p, rec->latency);

    if (ai->first_byte) {
        p = ngx_http_ai_log_lit(p, ",\"ttft_ms\":");
        p = ngx_http_ai_digits(p, rec->ttft);

    } else {
        p = ngx_http_ai_log_lit(p, ",\"ttft_ms\":null");
    }

    if (rec->has_tps) {
        p = ngx_http_ai_log_lit(p, ",\"output_tokens_per_second\":");
        p = ngx_http_ai_log_fixed(p, rec->tps, 2);

    } else {
        p = ngx_http_ai_log_lit(p, ",\"output_tokens_per_second\":null");
    }

    p = ngx_http_ai_log_lit(p, ",\"cache_status\":");
    p = ngx_http_ai_log_str(p, &rec->cache);

    p = ngx_http_ai_log_lit(p, ",\"guard_verdict\":");
    p = ngx_http_ai_log_str(p, &rec->guard);

    p = ngx_http_ai_log_lit(p, ",\"guard_rule\":");
    p = ngx_http_ai_log_str(p, &rec->guard_rule);

    p = ngx_http_ai_log_lit(p, ",\"limit_status\":");
    p = ngx_http_ai_log_str(p, &rec->limit);

    /*
     * what an on-call engineer looks for, after the keys existing
     * readers find together
     */

    p = ngx_http_ai_log_lit(p, ",\"user\":");
    p = ngx_http_ai_log_str(p, &user);

    p = ngx_http_ai_log_lit(p, ",\"finish_reason\":");
    p = ngx_http_ai_log_str(p, &answer->finish_reason);

    p = ngx_http_ai_log_lit(p, ",\"trail\":");
    p = ngx_http_ai_log_trail(p, trail);

    p = ngx_http_ai_log_lit(p, ",\"provider_request_id\":");
    p = ngx_http_ai_log_str(p, &request_id);

    p = ngx_http_ai_log_lit(p, ",\"response_id\":");
    p = ngx_http_ai_log_str(p, &answer->id);

    if (ai->error) {
        p = ngx_http_ai_log_lit(p, ",\"gateway_error\":true");

    } else {
        p = ngx_http_ai_log_lit(p, ",\"gateway_error\":false");
    }

    /*
     * a failure's code and message: the gateway's, or the provider's; a
     * stream the upstream cut after its 200 went out is one too
     */

    if (rec->status >= NGX_HTTP_BAD_REQUEST
        || (ai->truncated && !rec->aborted))
    {
        code = answer->error_code;
        msg = answer->error_message;

        if (code.len == 0 && rec->status < NGX_HTTP_BAD_REQUEST) {
            ngx_str_set(&code, "stream_truncated");
            ngx_str_set(&msg, "the upstream stream ended before it was "
                              "complete");
        }

        p = ngx_http_ai_log_lit(p, ",\"error_code\":");
        p = ngx_http_ai_log_str(p, &code);

        p = ngx_http_ai_log_lit(p, ",\"error_message\":");
        p = ngx_http_ai_log_str(p, &msg);

    } else {
        p = ngx_http_ai_log_lit(p, ",\"error_code\":null"
                                   ",\"error_message\":null");
    }

    p = ngx_http_ai_log_lit(p, ",\"outcomes\":");
    p = ngx_http_ai_log_outcomes(p, r);

    p = ngx_http_ai_log_lit(p, ",\"metadata\":");
    p = ngx_http_ai_log_metadata(p, r, lcf);

    if (lcf->request_body) {
        /*
         * The body as the core holds it, which is what goes upstream: a
         * guard that masks the prompt replaces it there.
         */

        s = &ai->req.body;

        p = ngx_http_ai_log_lit(p, ",\"request_body\":");

        if (s->len) {
            p = ngx_http_ai_log_json_string(p, s->data,
                                       ngx_min(s->len, lcf->request_body_max));

        } else {
            p = ngx_http_ai_log_lit(p, "null");
        }

        if (s->len > lcf->request_body_max) {
            p = ngx_http_ai_log_lit(p, ",\"request_body_truncated\":true");

        } else {
            p = ngx_http_ai_log_lit(p, ",\"request_body_truncated\":false");
        }
    }

    if (lcf->response_body) {
        p = ngx_http_ai_log_lit(p, ",\"response_body\":");

        if (ctx && ctx->len) {
            p = ngx_http_ai_log_json_string(p, ctx->data, ctx->len);

        } else {
            p = ngx_http_ai_log_lit(p, "null");
        }

        if (ctx && ctx->truncated) {
            p = ngx_http_ai_log_lit(p, ",\"response_body_truncated\":true");

        } else {
            p = ngx_http_ai_log_lit(p, ",\"response_body_truncated\":false");
        }
    }

    *p++ = '}';

    if (buffer) {
        /* (its filter, if any, let it through above) */

        if (buffer->event && buffer->pos == buffer->start) {
            ngx_add_timer(buffer->event, buffer->flush);
        }

        *p++ = LF;
        buffer->pos = p;

        return NGX_OK;
    }

    for (i = 0; i < lcf->sinks->nelts; i++) {

        if (sink[i].filter) {
            if (ngx_http_complex_value(r, sink[i].filter, &val) != NGX_OK) {
                return NGX_ERROR;
            }

            if (val.len == 0 || (val.len == 1 && val.data[0] == '0')) {
                continue;
            }
        }

        if (sink[i].syslog) {
            ngx_http_ai_log_sink_write(r, &sink[i], line + hlen,
                                       p - line - hlen);

        } else {
            /* the line feed goes after the record, which has room left */
            *p = LF;
            ngx_http_ai_log_sink_write(r, &sink[i], line + hlen,
                                       p + 1 - line - hlen);
        }
    }

    return NGX_OK;
}


/*
 * The client's "user": OpenAI's "user", Anthropic's "metadata.user_id"
 * (a client's string: cut to 256 bytes, escaped when written)
 */

static void
ngx_http_ai_log_user(ngx_http_ai_ctx_t *ai, ngx_str_t *user)
{
    if (!ai->req.parsed) {
        ngx_str_null(user);
        return;
    }

    /* the view's, copied when parsed: a stream's tree is gone by now */

    *user = ai->req.user;
}


/*
 * [{"target":..,"key":N,"upstream_status":N,"ms":N,"reason":..,
 *   "request_id":..}]:
 * the key is its index in the target's pool, never the key
 */

static size_t
ngx_http_ai_log_trail_len(ngx_array_t *trail)
{
    size_t                  len;
    ngx_uint_t              i;
    ngx_http_ai_attempt_t  *a;

    len = 2;

    if (trail == NULL) {
        return len;
    }

    a = trail->elts;

    for (i = 0; i < trail->nelts; i++) {
        len += sizeof("{\"target\":,\"key\":,\"upstream_status\":,\"ms\":,"
                      "\"reason\":,\"request_id\":},") - 1
               + 3 * NGX_INT_T_LEN
               + ngx_http_ai_log_json_len(a[i].target.len)
               + ngx_http_ai_log_json_len(a[i].reason.len)
               + ngx_http_ai_log_json_len(a[i].request_id.len);
    }

    return len;
}


static u_char *
ngx_http_ai_log_trail(u_char *p, ngx_array_t *trail)
{
    ngx_uint_t              i;
    ngx_http_ai_attempt_t  *a;

    *p++ = '[';

    if (trail) {
        a = trail->elts;

        for (i = 0; i < trail->nelts; i++) {
            if (i) {
                *p++ = ',';
            }

            p = ngx_http_ai_log_lit(p, "{\"target\":");
            p = ngx_http_ai_log_str(p, &a[i].target);

            if (a[i].key) {
                p = ngx_http_ai_log_lit(p, ",\"key\":");
                p = ngx_http_ai_digits(p, a[i].key);

            } else {
                p = ngx_http_ai_log_lit(p, ",\"key\":null");
            }

            p = ngx_http_ai_log_lit(p, ",\"upstream_status\":");

            if (a[i].status) {
                p = ngx_http_ai_digits(p, a[i].status);

            } else {
                p = ngx_http_ai_log_lit(p, "null");
            }

            p = ngx_http_ai_log_lit(p, ",\"ms\":");
            p = ngx_http_ai_digits(p, a[i].ms);
            p = ngx_http_ai_log_lit(p, ",\"reason\":");
            p = ngx_http_ai_log_str(p, &a[i].reason);

            p = ngx_http_ai_log_lit(p, ",\"request_id\":");
            p = ngx_http_ai_log_str(p, &a[i].request_id);

            *p++ = '}';
        }
    }

    *p++ = ']';

    return p;
}


size_t
ngx_http_ai_log_json_len(size_t len)
{
    return 2 + len * 6;
}


/* a JSON string, null when empty */

static u_char *
ngx_http_ai_log_str(u_char *p, ngx_str_t *s)
{
    if (s->len == 0) {
        return ngx_http_ai_log_lit(p, "null");
    }

    return ngx_http_ai_log_json_string(p, s->data, s->len);
}


#if (defined __SSE2__)
#include <emmintrin.h>
#define NGX_HTTP_AI_LOG_SSE2  1
#else
#define NGX_HTTP_AI_LOG_SSE2  0
#endif


/*
 * Copies from s to *dst the bytes a record's string holds as they are,
 * up to the first one it cannot: a control character, DEL, a quote, a
 * backslash or a byte of UTF-8 (which is checked); returns it, or end.
 * Sixteen bytes a step with SSE2, each step stored whole (the room for a
 * string is 6 bytes a byte: what follows the first such byte is written
 * over), the rest a byte at a time: most strings of a record are short,
 * and a call to memcpy() cost more than their copy.
 */

static ngx_inline u_char *
ngx_http_ai_log_copy(u_char **dst, u_char *s, u_char *end)
{
    u_char    *p, c;
#if (NGX_HTTP_AI_LOG_SSE2)
    __m128i    v;
    unsigned   m;

    p = *dst;

    while (end - s >= 16) {
        v = _mm_loadu_si128((const __m128i *) s);

        /* as signed bytes, those of UTF-8 are below 0x20 too */

        m = (unsigned) _mm_movemask_epi8(
                _mm_or_si128(
                    _mm_or_si128(_mm_cmplt_epi8(v, _mm_set1_epi8(0x20)),
                                 _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f))),
                    _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
                                 _mm_cmpeq_epi8(v, _mm_set1_epi8('\\')))));

        _mm_storeu_si128((__m128i *) p, v);

        if (m) {
            m = __builtin_ctz(m);
            *dst = p + m;
            return s + m;
        }

        s += 16;
        p += 16;
    }
#else
    p = *dst;
#endif

    while (s < end) {
        c = *s;

        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
            break;
        }

        *p++ = c;
        s++;
    }

    *dst = p;

    return s;
}


/*
 * A quoted JSON string.  Invalid UTF-8 becomes U+FFFD; a sequence cut at
 * the end (a value cut to its cap) is dropped, so the line is valid JSON
 * whatever the bytes.
 */

u_char *
ngx_http_ai_log_json_string(u_char *p, u_char *s, size_t len)
{
    u_char    *end, *next, c;
    uint32_t   u;

    static u_char  hex[] = "0123456789abcdef";

    end = s + len;

    *p++ = '"';

    while (s < end) {
        s = ngx_http_ai_log_copy(&p, s, end);

        if (s == end) {
            break;
        }

        c = *s;

        if (c < 0x80) {
            s++;

            switch (c) {
            case '"':
            case '\\':
                *p++ = '\\';
                *p++ = c;
                break;
            case '\n':
                *p++ = '\\';
                *p++ = 'n';
                break;
            case '\r':
                *p++ = '\\';
                *p++ = 'r';
                break;
            case '\t':
                *p++ = '\\';
                *p++ = 't';
                break;
            default:
                if (c < 0x20 || c == 0x7f) {
                    p = ngx_http_ai_log_lit(p, "\\u00");
                    *p++ = hex[c >> 4];
                    *p++ = hex[c & 0xf];

                } else {
                    *p++ = c;
                }
            }

            continue;
        }

        next = s;
        u = ngx_utf8_decode(&next, end - s);

        if (u == 0xfffffffe) {
            /* incomplete at the end */
            break;
        }

        if (u > 0x10ffff || (u >= 0xd800 && u <= 0xdfff)) {
            p = ngx_http_ai_log_lit(p, "\\ufffd");
            s++;
            continue;
        }

        while (s < next) {
            *p++ = *s++;
        }
    }

    *p++ = '"';

    return p;
}


/*
 * What the modules decided (the core's outcomes), as an object:
 * {"guard":"blocked","cache":"MISS"}, or {} when none.
 */

static size_t
ngx_http_ai_log_outcomes_len(ngx_http_request_t *r)
{
    size_t                  len;
    ngx_uint_t              i;
    ngx_array_t            *a;
    ngx_http_ai_outcome_t  *o;

    len = 2;
    a = ngx_http_ai_outcomes(r);

    if (a) {
        o = a->elts;

        for (i = 0; i < a->nelts; i++) {
            len += 2 + ngx_http_ai_log_json_len(o[i].name.len)
                   + ngx_http_ai_log_json_len(o[i].value.len);
        }
    }

    return len;
}


static u_char *
ngx_http_ai_log_outcomes(u_char *p, ngx_http_request_t *r)
{
    ngx_uint_t              i;
    ngx_array_t            *a;
    ngx_http_ai_outcome_t  *o;

    *p++ = '{';

    a = ngx_http_ai_outcomes(r);

    if (a) {
        o = a->elts;

        for (i = 0; i < a->nelts; i++) {
            if (i) {
                *p++ = ',';
            }

            p = ngx_http_ai_log_json_string(p, o[i].name.data,
                                            o[i].name.len);
            *p++ = ':';
            p = ngx_http_ai_log_json_string(p, o[i].value.data,
                                            o[i].value.len);
        }
    }

    *p++ = '}';

    return p;
}


/* ISO 8601 in UTC with milliseconds: when the request started */

static u_char *
ngx_http_ai_log_time(u_char *p, ngx_http_request_t *r)
{
    ngx_tm_t  tm;

    static time_t  sec = -1;
    static u_char  text[sizeof("1970-01-01T00:00:00") - 1];

    /* the second's text made once a second (ngx_sprintf() is slow) */

    if (r->start_sec != sec) {
        ngx_gmtime(r->start_sec, &tm);

        (void) ngx_sprintf(text, "%4d-%02d-%02dT%02d:%02d:%02d",
                           tm.ngx_tm_year, tm.ngx_tm_mon, tm.ngx_tm_mday,
                           tm.ngx_tm_hour, tm.ngx_tm_min, tm.ngx_tm_sec);
        sec = r->start_sec;
    }

    p = ngx_cpymem(p, text, sizeof(text));

    *p++ = '.';
    *p++ = (u_char) ('0' + r->start_msec / 100 % 10);
    *p++ = (u_char) ('0' + r->start_msec / 10 % 10);
    *p++ = (u_char) ('0' + r->start_msec % 10);
    *p++ = 'Z';

    return p;
}


/*
 * $request_id as NGINX makes it, 16 random bytes in hex, the bytes taken
 * from a worker's store that RAND_bytes() fills 4 KB at a time: a call
 * of OpenSSL's generator for 256 requests, not one a request (about
 * 9,000 instructions each).  Set as the variable's value, so the access
 * log and every other reader of $request_id get the same id.
 */

#define NGX_HTTP_AI_LOG_IDS  4096

static ngx_http_variable_value_t *
ngx_http_ai_log_request_id(ngx_http_request_t *r, ngx_int_t index)
{
#if (NGX_OPENSSL)
    u_char                     *id;
    ngx_http_variable_value_t  *vv;

    static size_t  used = NGX_HTTP_AI_LOG_IDS;
    static u_char  random[NGX_HTTP_AI_LOG_IDS];

    vv = &r->variables[index];

    if (vv->valid || vv->not_found) {
        return ngx_http_get_indexed_variable(r, index);
    }

    if (used == NGX_HTTP_AI_LOG_IDS) {
        if (RAND_bytes(random, NGX_HTTP_AI_LOG_IDS) != 1) {
            /* NGINX's own way */
            return ngx_http_get_indexed_variable(r, index);
        }

        used = 0;
    }

    id = ngx_pnalloc(r->pool, 32);
    if (id == NULL) {
        return NULL;
    }

    ngx_hex_dump(id, random + used, 16);
    ngx_memzero(random + used, 16);
    used += 16;

    vv->len = 32;
    vv->valid = 1;
    vv->no_cacheable = 0;
    vv->not_found = 0;
    vv->data = id;

    return vv;

#else

    return ngx_http_get_indexed_variable(r, index);

#endif
}


static u_char *
ngx_http_ai_log_int(u_char *p, int64_t n)
{
    if (n < 0) {
        *p++ = '-';
        return ngx_http_ai_digits(p, (uint64_t) 0 - (uint64_t) n);
    }

    return ngx_http_ai_digits(p, (uint64_t) n);
}


/* a number with width decimals, as ngx_sprintf("%.Nf") writes it */

static u_char *
ngx_http_ai_log_fixed(u_char *p, double f, ngx_uint_t width)
{
    u_char      *q;
    uint64_t     whole, frac, scale;
    ngx_uint_t   n;

    if (f < 0) {
        *p++ = '-';
        f = -f;
    }

    whole = (int64_t) f;

    scale = 1;

    for (n = width; n; n--) {
        scale *= 10;
    }

    frac = (uint64_t) ((f - (double) whole) * scale + 0.5);

    if (frac == scale) {
        whole++;
        frac = 0;
    }

    p = ngx_http_ai_digits(p, whole);

    *p++ = '.';

    /* the fraction's digits, zeros before them to width */

    q = p + width;

    for (n = width; n; n--) {
        *--q = (u_char) ('0' + frac % 10);
        frac /= 10;
    }

    return p + width;
}


static size_t
ngx_http_ai_log_metadata_len(ngx_http_request_t *r,
    ngx_http_ai_log_loc_conf_t *lcf)
{
    size_t                     len;
    ngx_uint_t                 i;
    ngx_table_elt_t           *h;
    ngx_http_ai_log_header_t  *hdr;

    if (lcf->headers == NULL) {
        return 4;
    }

    len = 2;
    hdr = lcf->headers->elts;

    for (i = 0; i < lcf->headers->nelts; i++) {
        h = ngx_http_ai_log_find_header(r, &hdr[i].name);

        if (h) {
            len += ngx_http_ai_log_json_len(hdr[i].name.len) + 2
                   + ngx_http_ai_log_json_len(ngx_min(h->value.len,
                                                      hdr[i].max));
        }
    }

    return len;
}


/*
 * "metadata": {"header": value, ...} or null: a value that is valid JSON
 * (an object, say) within its cap is kept as is, anything else becomes a
 * string, cut to the cap.
 */

static u_char *
ngx_http_ai_log_metadata(u_char *p, ngx_http_request_t *r,
    ngx_http_ai_log_loc_conf_t *lcf)
{
    u_char                    *start, *end;
    ngx_uint_t                 i, n;
    ngx_table_elt_t           *h;
    ngx_http_ai_log_header_t  *hdr;

    if (lcf->headers == NULL) {
        return ngx_http_ai_log_lit(p, "null");
    }

    start = p;
    n = 0;
    hdr = lcf->headers->elts;

    *p++ = '{';

    for (i = 0; i < lcf->headers->nelts; i++) {
        h = ngx_http_ai_log_find_header(r, &hdr[i].name);

        if (h == NULL) {
            continue;
        }

        if (n++) {
            *p++ = ',';
        }

        p = ngx_http_ai_log_json_string(p, hdr[i].name.data,
                                        hdr[i].name.len);
        *p++ = ':';

        end = h->value.data + h->value.len;

        if (h->value.len <= hdr[i].max
            && ngx_http_ai_log_json_skip(
                   ngx_http_ai_log_json_value(
                       ngx_http_ai_log_json_skip(h->value.data, end),
                       end, 0),
                   end)
               == end)
        {
            /* header values hold no CR or LF: the line stays one line */
            p = ngx_cpymem(p, h->value.data, h->value.len);

        } else {
            p = ngx_http_ai_log_json_string(p, h->value.data,
                                        ngx_min(h->value.len, hdr[i].max));
        }
    }

    if (n == 0) {
        return ngx_http_ai_log_lit(start, "null");
    }

    *p++ = '}';

    return p;
}


static ngx_table_elt_t *
ngx_http_ai_log_find_header(ngx_http_request_t *r, ngx_str_t *name)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == name->len
            && ngx_strncasecmp(h[i].key.data, name->data, name->len) == 0)
        {
            return &h[i];
        }
    }
}


/*
 * A strict JSON validator (RFC 8259, valid UTF-8 in strings, depth at
 * most 32): returns the end of the value, or NULL.  No allocation.
 */

static u_char *
ngx_http_ai_log_json_value(u_char *p, u_char *end, ngx_uint_t depth)
{
    u_char  close;

    if (p == NULL || p >= end || depth > 32) {
        return NULL;
    }

    switch (*p) {

    case '{':
    case '[':
        close = (*p == '{') ? '}' : ']';

        p = ngx_http_ai_log_json_skip(p + 1, end);

        if (p < end && *p == close) {
            return p + 1;
        }

        for ( ;; ) {

            if (close == '}') {
                if (p >= end || *p != '"') {
                    return NULL;
                }

                p = ngx_http_ai_log_json_skip(
                        ngx_http_ai_log_json_str(p, end), end);

                if (p == NULL || p >= end || *p != ':') {
                    return NULL;
                }

                p = ngx_http_ai_log_json_skip(p + 1, end);
            }

            p = ngx_http_ai_log_json_skip(
                    ngx_http_ai_log_json_value(p, end, depth + 1), end);

            if (p == NULL || p >= end) {
                return NULL;
            }

            if (*p == close) {
                return p + 1;
            }

            if (*p != ',') {
                return NULL;
            }

            p = ngx_http_ai_log_json_skip(p + 1, end);
        }

    case '"':
        return ngx_http_ai_log_json_str(p, end);

    case 't':
        if (end - p >= 4 && ngx_strncmp(p, "true", 4) == 0) {
            return p + 4;
        }

        return NULL;

    case 'f':
        if (end - p >= 5 && ngx_strncmp(p, "false", 5) == 0) {
            return p + 5;
        }

        return NULL;

    case 'n':
        if (end - p >= 4 && ngx_strncmp(p, "null", 4) == 0) {
            return p + 4;
        }

        return NULL;

    default:
        return ngx_http_ai_log_json_number(p, end);
    }
}


static u_char *
ngx_http_ai_log_json_skip(u_char *p, u_char *end)
{
    if (p == NULL) {
        return NULL;
    }

    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
    {
        p++;
    }

    return p;
}


static u_char *
ngx_http_ai_log_json_str(u_char *p, u_char *end)
{
    u_char      *next;
    uint32_t     u;
    ngx_uint_t   i;

    if (p == NULL || p >= end || *p != '"') {
        return NULL;
    }

    p++;

    while (p < end) {

        if (*p == '"') {
            return p + 1;
        }

        if (*p < 0x20) {
            return NULL;
        }

        if (*p == '\\') {
            if (++p >= end) {
                return NULL;
            }

            switch (*p) {
            case '"': case '\\': case '/': case 'b':
            case 'f': case 'n': case 'r': case 't':
                p++;
                continue;

            case 'u':
                for (i = 1; i <= 4; i++) {
                    if (p + i >= end || !ngx_http_ai_log_hex(p[i])) {
                        return NULL;
                    }
                }

                p += 5;
                continue;

            default:
                return NULL;
            }
        }

        if (*p < 0x80) {
            p++;
            continue;
        }

        next = p;
        u = ngx_utf8_decode(&next, end - p);

        if (u > 0x10ffff || (u >= 0xd800 && u <= 0xdfff)) {
            return NULL;
        }

        p = next;
    }

    return NULL;
}


static u_char *
ngx_http_ai_log_json_number(u_char *p, u_char *end)
{
    u_char  *start;

    if (p < end && *p == '-') {
        p++;
    }

    if (p >= end) {
        return NULL;
    }

    if (*p == '0') {
        p++;

    } else if (*p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }

    } else {
        return NULL;
    }

    if (p < end && *p == '.') {
        start = ++p;

        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }

        if (p == start) {
            return NULL;
        }
    }

    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;

        if (p < end && (*p == '+' || *p == '-')) {
            p++;
        }

        start = p;

        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }

        if (p == start) {
            return NULL;
        }
    }

    return p;
}


static void
ngx_http_ai_log_sink_write(ngx_http_request_t *r,
    ngx_http_ai_log_sink_t *sink, u_char *buf, size_t len)
{
    u_char                 *p;
    ssize_t                 n;
    ngx_http_ai_log_buf_t  *buffer;
    u_char                  header[64 + NGX_MAXHOSTNAMELEN];

    if (sink->syslog) {
        /* the header goes just before the record: room was left for it */

        p = ngx_syslog_add_header(sink->syslog, header);
        n = p - header;

        ngx_memcpy(buf - n, header, n);

        n = ngx_syslog_send(sink->syslog, buf - n, n + len);

        if (n < 0) {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "ai_log: send() to syslog failed");
        }

        return;
    }

    buffer = sink->file->data;

    if (buffer) {

        if (len > (size_t) (buffer->last - buffer->pos)) {
            ngx_http_ai_log_flush(sink->file, r->connection->log);
        }

        if (len <= (size_t) (buffer->last - buffer->pos)) {

            if (buffer->event && buffer->pos == buffer->start) {
                ngx_add_timer(buffer->event, buffer->flush);
            }

            buffer->pos = ngx_cpymem(buffer->pos, buf, len);

            return;
        }
    }

    ngx_http_ai_log_write_fd(sink->file, r->connection->log, buf, len,
                             &sink->error_time);
}


static void
ngx_http_ai_log_write_fd(ngx_open_file_t *file, ngx_log_t *log, u_char *buf,
    size_t len, time_t *error_time)
{
    time_t   now;
    ssize_t  n;

    n = ngx_write_fd(file->fd, buf, len);

    if (n == (ssize_t) len) {
        return;
    }

    now = ngx_time();

    if (error_time && now - *error_time < 60) {
        return;
    }

    if (error_time) {
        *error_time = now;
    }

    if (n == -1) {
        ngx_log_error(NGX_LOG_ALERT, log, ngx_errno,
                      ngx_write_fd_n " to \"%V\" failed", &file->name);
        return;
    }

    ngx_log_error(NGX_LOG_ALERT, log, 0,
                  ngx_write_fd_n " to \"%V\" was incomplete: %z of %uz",
                  &file->name, n, len);
}


static void
ngx_http_ai_log_flush(ngx_open_file_t *file, ngx_log_t *log)
{
    size_t                  len;
    ngx_http_ai_log_buf_t  *buffer;

    buffer = file->data;

    len = buffer->pos - buffer->start;

    if (len) {
        ngx_http_ai_log_write_fd(file, log, buffer->start, len, NULL);
        buffer->pos = buffer->start;
    }

    if (buffer->event && buffer->event->timer_set) {
        ngx_del_timer(buffer->event);
    }
}


static void
ngx_http_ai_log_flush_handler(ngx_event_t *ev)
{
    ngx_http_ai_log_flush(ev->data, ev->log);
}


/*
 * The response event handler, registered only when some location logs
 * response bodies: it keeps the plain body, or the text of a stream's
 * deltas, up to the cap.
 */

ngx_int_t
ngx_http_ai_log_body_event(ngx_http_request_t *r, ngx_http_ai_ctx_t *ai,
    ngx_http_ai_event_t *ev, ngx_chain_t ***out)
{
    cJSON                       *json;
    ngx_http_ai_log_ctx_t       *ctx;
    ngx_http_ai_log_loc_conf_t  *lcf;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_log_module);

    if (!lcf->response_body || ev->last || ev->data.len == 0) {
        return NGX_OK;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_log_module);

    if (ctx == NULL) {
        ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_ai_log_ctx_t));
        if (ctx == NULL) {
            return NGX_ERROR;
        }

        ngx_http_set_ctx(r, ctx, ngx_http_ai_log_module);
    }

    if (ctx->truncated) {
        return NGX_OK;
    }

    if (!ai->is_sse) {
        return ngx_http_ai_log_append(r, ctx, lcf->response_body_max,
                                      ev->data.data, ev->data.len);
    }

    json = ngx_http_ai_event_json(ev);

    if (json == NULL) {
        return NGX_OK;
    }

    return ngx_http_ai_log_delta(r, ctx, lcf->response_body_max,
                                 ai->upstream_format, json);
}


static ngx_int_t
ngx_http_ai_log_append(ngx_http_request_t *r, ngx_http_ai_log_ctx_t *ctx,
    size_t max, u_char *data, size_t len)
{
    u_char  *p;
    size_t   cap;

    if (ctx->len + len > max) {
        len = max - ctx->len;
        ctx->truncated = 1;
    }

    if (len == 0) {
        return NGX_OK;
    }

    if (ctx->len + len > ctx->cap) {
        cap = ngx_max(ctx->cap * 2, ctx->len + len);
        cap = ngx_max(cap, 1024);
        cap = ngx_min(cap, max);

        p = ngx_pnalloc(r->pool, cap);
        if (p == NULL) {
            return NGX_ERROR;
        }

        if (ctx->len) {
            ngx_memcpy(p, ctx->data, ctx->len);
        }

        ctx->data = p;
        ctx->cap = cap;
    }

    ngx_memcpy(ctx->data + ctx->len, data, len);
    ctx->len += len;

    return NGX_OK;
}


/*
 * The output of a stream event, in the upstream's format: the text of
 * every part, and each tool call as "[tool_call NAME] " followed by its
 * arguments (streamed fragments as they come, or Gemini's whole object).
 * Only the first choice (candidate) is kept: with n > 1 the others would
 * interleave with it.
 */

static ngx_int_t
ngx_http_ai_log_delta(ngx_http_request_t *r, ngx_http_ai_log_ctx_t *ctx,
    size_t max, ngx_uint_t format, cJSON *json)
{
    switch (format) {

    case NGX_HTTP_AI_FMT_ANTHROPIC:
        return ngx_http_ai_log_delta_anthropic(r, ctx, max, json);

    case NGX_HTTP_AI_FMT_GEMINI:
        return ngx_http_ai_log_delta_gemini(r, ctx, max, json);

    case NGX_HTTP_AI_FMT_RESPONSES:
        return ngx_http_ai_log_delta_responses(r, ctx, max, json);

    default:
        return ngx_http_ai_log_delta_openai(r, ctx, max, json);
    }
}


/*
 * The Responses API: response.output_text.delta {"delta":..};
 * response.output_item.added {"item":{"type":"function_call","name":..}};
 * response.function_call_arguments.delta {"delta":..}
 */

static ngx_int_t
ngx_http_ai_log_delta_responses(ngx_http_request_t *r,
    ngx_http_ai_log_ctx_t *ctx, size_t max, cJSON *json)
{
    cJSON       *item;
    const char  *type;

    type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(json,
                                                                 "type"));
    if (type == NULL) {
        return NGX_OK;
    }

    if (ngx_strcmp(type, "response.output_text.delta") == 0
        || ngx_strcmp(type, "response.function_call_arguments.delta") == 0)
    {
        return ngx_http_ai_log_text(r, ctx, max,
                             cJSON_GetObjectItemCaseSensitive(json, "delta"));
    }

    if (ngx_strcmp(type, "response.output_item.added") == 0) {
        item = cJSON_GetObjectItemCaseSensitive(json, "item");

        if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(item, "type"))
            && ngx_strcmp(cJSON_GetObjectItemCaseSensitive(item, "type")
                              ->valuestring, "function_call") == 0)
        {
            return ngx_http_ai_log_tool_call(r, ctx, max, item, 0);
        }
    }

    return NGX_OK;
}


/*
 * {"choices":[{"index":0,"delta":{"content":..,"refusal":..,
 *   "tool_calls":[{"index":0,"function":{"name":..,"arguments":..}}]}}]}
 * (and the older "function_call":{"name":..,"arguments":..})
 */

static ngx_int_t
ngx_http_ai_log_delta_openai(ngx_http_request_t *r,
    ngx_http_ai_log_ctx_t *ctx, size_t max, cJSON *json)
{
    cJSON      *choice, *delta, *call, *fn;
    ngx_int_t   rc;

    cJSON_ArrayForEach(choice,
                       cJSON_GetObjectItemCaseSensitive(json, "choices"))
    {
        if (!ngx_http_ai_log_first(choice)) {
            continue;
        }

        delta = cJSON_GetObjectItemCaseSensitive(choice, "delta");

        rc = ngx_http_ai_log_text(r, ctx, max,
                         cJSON_GetObjectItemCaseSensitive(delta, "content"));
        if (rc != NGX_OK) {
            return rc;
        }

        rc = ngx_http_ai_log_text(r, ctx, max,
                         cJSON_GetObjectItemCaseSensitive(delta, "refusal"));
        if (rc != NGX_OK) {
            return rc;
        }

        fn = cJSON_GetObjectItemCaseSensitive(delta, "function_call");

        if (cJSON_IsObject(fn)) {
            rc = ngx_http_ai_log_tool_call(r, ctx, max, fn, 0);
            if (rc != NGX_OK) {
                return rc;
            }
        }

        cJSON_ArrayForEach(call,
                     cJSON_GetObjectItemCaseSensitive(delta, "tool_calls"))
        {
            fn = cJSON_GetObjectItemCaseSensitive(call, "function");

            rc = ngx_http_ai_log_tool_call(r, ctx, max, fn, 0);
            if (rc != NGX_OK) {
                return rc;
            }
        }
    }

    return NGX_OK;
}


/*
 * content_block_start: {"content_block":{"type":"text","text":..}} or
 * {"content_block":{"type":"tool_use","name":..,"input":{}}};
 * content_block_delta: {"delta":{"type":"text_delta","text":..}} or
 * {"delta":{"type":"input_json_delta","partial_json":..}}
 */

static ngx_int_t
ngx_http_ai_log_delta_anthropic(ngx_http_request_t *r,
    ngx_http_ai_log_ctx_t *ctx, size_t max, cJSON *json)
{
    cJSON      *block, *delta;
    ngx_int_t   rc;

    block = cJSON_GetObjectItemCaseSensitive(json, "content_block");

    if (cJSON_IsObject(block)) {
        rc = ngx_http_ai_log_text(r, ctx, max,
                            cJSON_GetObjectItemCaseSensitive(block, "text"));
        if (rc != NGX_OK) {
            return rc;
        }

        rc = ngx_http_ai_log_tool_call(r, ctx, max, block, 1);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    delta = cJSON_GetObjectItemCaseSensitive(json, "delta");

    rc = ngx_http_ai_log_text(r, ctx, max,
                            cJSON_GetObjectItemCaseSensitive(delta, "text"));
    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_ai_log_append_str(r, ctx, max,
                    cJSON_GetObjectItemCaseSensitive(delta, "partial_json"));
}


/*
 * {"candidates":[{"index":0,"content":{"parts":[{"text":..},
 *   {"functionCall":{"name":..,"args":{..}}},..]}}]}
 */

static ngx_int_t
ngx_http_ai_log_delta_gemini(ngx_http_request_t *r,
    ngx_http_ai_log_ctx_t *ctx, size_t max, cJSON *json)
{
    cJSON      *candidate, *content, *part, *fn;
    ngx_int_t   rc;

    cJSON_ArrayForEach(candidate,
                       cJSON_GetObjectItemCaseSensitive(json, "candidates"))
    {
        if (!ngx_http_ai_log_first(candidate)) {
            continue;
        }

        content = cJSON_GetObjectItemCaseSensitive(candidate, "content");

        cJSON_ArrayForEach(part,
                          cJSON_GetObjectItemCaseSensitive(content, "parts"))
        {
            rc = ngx_http_ai_log_text(r, ctx, max,
                             cJSON_GetObjectItemCaseSensitive(part, "text"));
            if (rc != NGX_OK) {
                return rc;
            }

            fn = cJSON_GetObjectItemCaseSensitive(part, "functionCall");

            if (cJSON_IsObject(fn)) {
                rc = ngx_http_ai_log_tool_call(r, ctx, max, fn, 1);
                if (rc != NGX_OK) {
                    return rc;
                }
            }
        }
    }

    return NGX_OK;
}


/* a choice or candidate of index 0, or without an index */

static ngx_uint_t
ngx_http_ai_log_first(cJSON *item)
{
    cJSON  *index;

    index = cJSON_GetObjectItemCaseSensitive(item, "index");

    return !cJSON_IsNumber(index) || index->valuedouble == 0;
}


/*
 * A tool call, or a fragment of one: "[tool_call NAME] " when the name
 * comes (on a line of its own if text came before), then the arguments:
 * a string fragment (OpenAI "arguments"), or an object (Anthropic
 * "input", when not empty; Gemini "args") as JSON.
 */

static ngx_int_t
ngx_http_ai_log_tool_call(ngx_http_request_t *r, ngx_http_ai_log_ctx_t *ctx,
    size_t max, cJSON *call, ngx_uint_t object)
{
    char       *s;
    cJSON      *name, *args;
    ngx_int_t   rc;

    name = cJSON_GetObjectItemCaseSensitive(call, "name");

    if (cJSON_IsString(name) && name->valuestring) {

        if (ctx->len && ctx->data[ctx->len - 1] != '\n') {
            rc = ngx_http_ai_log_append(r, ctx, max, (u_char *) "\n", 1);
            if (rc != NGX_OK) {
                return rc;
            }
        }

        rc = ngx_http_ai_log_append(r, ctx, max, (u_char *) "[tool_call ",
                                    sizeof("[tool_call ") - 1);
        if (rc != NGX_OK) {
            return rc;
        }

        rc = ngx_http_ai_log_append_str(r, ctx, max, name);
        if (rc != NGX_OK) {
            return rc;
        }

        rc = ngx_http_ai_log_append(r, ctx, max, (u_char *) "] ", 2);
        if (rc != NGX_OK) {
            return rc;
        }

        ctx->tool = 1;
    }

    if (!object) {
        return ngx_http_ai_log_append_str(r, ctx, max,
                           cJSON_GetObjectItemCaseSensitive(call, "arguments"));
    }

    args = cJSON_GetObjectItemCaseSensitive(call, "input");

    if (args == NULL) {
        args = cJSON_GetObjectItemCaseSensitive(call, "args");
    }

    /* Anthropic's stream starts with "input":{}, its deltas follow */

    if (!cJSON_IsObject(args) || args->child == NULL) {
        return NGX_OK;
    }

    s = cJSON_PrintUnformatted(args);
    if (s == NULL) {
        return NGX_ERROR;
    }

    rc = ngx_http_ai_log_append(r, ctx, max, (u_char *) s, ngx_strlen(s));

    cJSON_free(s);

    return rc;
}


/* text: on a line of its own after a tool call */

static ngx_int_t
ngx_http_ai_log_text(ngx_http_request_t *r, ngx_http_ai_log_ctx_t *ctx,
    size_t max, cJSON *item)
{
    ngx_int_t  rc;

    if (!cJSON_IsString(item) || item->valuestring == NULL
        || item->valuestring[0] == '\0')
    {
        return NGX_OK;
    }

    if (ctx->tool) {
        ctx->tool = 0;

        rc = ngx_http_ai_log_append(r, ctx, max, (u_char *) "\n", 1);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    return ngx_http_ai_log_append_str(r, ctx, max, item);
}


static ngx_int_t
ngx_http_ai_log_append_str(ngx_http_request_t *r,
    ngx_http_ai_log_ctx_t *ctx, size_t max, cJSON *item)
{
    if (!cJSON_IsString(item) || item->valuestring == NULL) {
        return NGX_OK;
    }

    return ngx_http_ai_log_append(r, ctx, max, (u_char *) item->valuestring,
                                  ngx_strlen(item->valuestring));
}
