
/*
 * Copyright (C) AI Gateway authors
 *
 * An incremental Server-Sent Events parser.  It is fed the bytes of a
 * stream as they arrive, in pieces of any size, and calls a handler for
 * each complete event.  It keeps only what an unfinished line or event
 * needs, up to a cap; an event over the cap is skipped and counted.
 * Lines end in LF, CRLF or CR; comment lines are ignored; several
 * "data:" lines join with LF, as the WHATWG specification says.
 *
 * Pure: it uses only the pool it is given, so unit tests link it alone.
 */


#ifndef _NGX_HTTP_AI_SSE_H_INCLUDED_
#define _NGX_HTTP_AI_SSE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


#define NGX_HTTP_AI_SSE_EVENT_LEN  64


typedef ngx_int_t (*ngx_http_ai_sse_handler_pt)(void *data, ngx_str_t *event,
    ngx_str_t *payload);


typedef struct {
    ngx_pool_t                 *pool;
    size_t                      max;         /* cap: a line, an event */

    u_char                     *line;        /* unfinished line */
    size_t                      line_len;
    size_t                      line_size;

    u_char                     *data;        /* data of the current event */
    size_t                      data_len;
    size_t                      data_size;
    ngx_str_t                   data_ref;    /* data in the input, no copy */

    u_char                      event[NGX_HTTP_AI_SSE_EVENT_LEN];
    size_t                      event_len;

    ngx_uint_t                  events;      /* events dispatched */
    ngx_uint_t                  dropped;     /* events over the cap */

    /*
     * Where events are in the input, for a caller that cuts events out of
     * the stream: start is where the current event began in the input
     * being parsed (NULL: in an earlier one); end, while the handler
     * runs, is just past the blank line that ended it; after a call,
     * between says that no event was left unfinished.
     */
    u_char                     *start;
    u_char                     *end;

    unsigned                    cr:1;        /* input ended after a CR */
    unsigned                    has_data:1;
    unsigned                    overflow:1;  /* current event over the cap */
    unsigned                    line_overflow:1;
    unsigned                    between:1;
} ngx_http_ai_sse_parser_t;


void ngx_http_ai_sse_init(ngx_http_ai_sse_parser_t *p, ngx_pool_t *pool,
    size_t max);

/*
 * Parses [pos, last).  Returns NGX_OK, or NGX_ERROR if the handler
 * returned NGX_ERROR or memory ran out.  Input may be freed on return.
 */
ngx_int_t ngx_http_ai_sse_parse(ngx_http_ai_sse_parser_t *p, u_char *pos,
    u_char *last, ngx_http_ai_sse_handler_pt handler, void *data);

/* the stream ended: 1 if an unfinished event was pending (and dropped) */
ngx_uint_t ngx_http_ai_sse_pending(ngx_http_ai_sse_parser_t *p);


#endif /* _NGX_HTTP_AI_SSE_H_INCLUDED_ */
