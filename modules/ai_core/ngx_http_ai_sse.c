
/*
 * Copyright (C) AI Gateway authors
 */


#include "ngx_http_ai_sse.h"


static ngx_int_t ngx_http_ai_sse_line(ngx_http_ai_sse_parser_t *p,
    u_char *start, size_t len, ngx_uint_t in_input,
    ngx_http_ai_sse_handler_pt handler, void *data);
static ngx_int_t ngx_http_ai_sse_dispatch(ngx_http_ai_sse_parser_t *p,
    ngx_http_ai_sse_handler_pt handler, void *data);
static ngx_int_t ngx_http_ai_sse_append(ngx_http_ai_sse_parser_t *p,
    u_char **buf, size_t *len, size_t *size, u_char *src, size_t n);


void
ngx_http_ai_sse_init(ngx_http_ai_sse_parser_t *p, ngx_pool_t *pool,
    size_t max)
{
    ngx_memzero(p, sizeof(ngx_http_ai_sse_parser_t));

    p->pool = pool;
    p->max = max;
    p->between = 1;
}


ngx_int_t
ngx_http_ai_sse_parse(ngx_http_ai_sse_parser_t *p, u_char *pos, u_char *last,
    ngx_http_ai_sse_handler_pt handler, void *data)
{
    u_char     *eol, *cr, *start;
    size_t      len;
    ngx_int_t   rc;
    ngx_uint_t  in_input;

    p->start = p->between ? pos : NULL;

    cr = NULL;

    while (pos < last) {

        if (p->cr) {
            /* a CRLF split between two pieces of input */
            p->cr = 0;

            if (*pos == LF) {
                if (p->start == pos) {
                    p->start++;
                }

                pos++;
                continue;
            }
        }

        /*
         * the line's end: an LF, or a CR before it (memchr is vectorized;
         * the next CR is looked for once, not on every line)
         */

        if (*pos == LF || *pos == CR) {
            /* a blank line */
            eol = pos;

        } else {
            eol = memchr(pos, LF, last - pos);

            if (cr == NULL || cr < pos) {
                cr = memchr(pos, CR, last - pos);

                if (cr == NULL) {
                    cr = last;
                }
            }

            if (cr < (eol ? eol : last)) {
                eol = cr;

            } else if (eol == NULL) {
                eol = last;
            }
        }

        if (eol == last) {
            /* an unfinished line: keep it, within the cap */

            if (!p->line_overflow) {
                rc = ngx_http_ai_sse_append(p, &p->line, &p->line_len,
                                            &p->line_size, pos, last - pos);
                if (rc == NGX_ERROR) {
                    return NGX_ERROR;
                }

                if (rc == NGX_DECLINED) {
                    p->line_overflow = 1;
                }
            }

            break;
        }

        if (p->line_len || p->line_overflow) {

            if (!p->line_overflow) {
                rc = ngx_http_ai_sse_append(p, &p->line, &p->line_len,
                                            &p->line_size, pos, eol - pos);
                if (rc == NGX_ERROR) {
                    return NGX_ERROR;
                }

                if (rc == NGX_DECLINED) {
                    p->line_overflow = 1;
                }
            }

            start = p->line;
            len = p->line_len;
            in_input = 0;

        } else {
            start = pos;
            len = eol - pos;
            in_input = 1;
        }

        if (*eol == CR) {
            if (eol + 1 < last) {
                if (eol[1] == LF) {
                    eol++;
                }

            } else {
                p->cr = 1;
            }
        }

        pos = eol + 1;
        p->end = pos;

        if (p->line_overflow) {
            /* a line over the cap spoils its event */
            p->line_overflow = 0;
            p->line_len = 0;
            p->overflow = 1;
            continue;
        }

        rc = ngx_http_ai_sse_line(p, start, len, in_input, handler, data);

        p->line_len = 0;

        if (rc != NGX_OK) {
            return rc;
        }

        if (len == 0) {
            /* a blank line: the next event begins after it */
            p->start = pos;
        }
    }

    p->between = (p->start == last && p->line_len == 0);

    if (p->data_ref.len) {
        /* the input goes away: keep the data of the unfinished event */

        if (ngx_http_ai_sse_append(p, &p->data, &p->data_len, &p->data_size,
                                   p->data_ref.data, p->data_ref.len)
            != NGX_OK)
        {
            p->overflow = 1;
        }

        p->data_ref.len = 0;
        p->data_ref.data = NULL;
    }

    return NGX_OK;
}


ngx_uint_t
ngx_http_ai_sse_pending(ngx_http_ai_sse_parser_t *p)
{
    return (p->has_data || p->line_len || p->overflow) ? 1 : 0;
}


static ngx_int_t
ngx_http_ai_sse_line(ngx_http_ai_sse_parser_t *p, u_char *start, size_t len,
    ngx_uint_t in_input, ngx_http_ai_sse_handler_pt handler, void *data)
{
    u_char  *colon, *value;
    size_t   flen, vlen;

    if (len == 0) {
        return ngx_http_ai_sse_dispatch(p, handler, data);
    }

    if (start[0] == ':') {
        return NGX_OK;                      /* a comment */
    }

    colon = ngx_strlchr(start, start + len, ':');

    if (colon) {
        flen = colon - start;
        value = colon + 1;

        if (value < start + len && *value == ' ') {
            value++;
        }

        vlen = start + len - value;

    } else {
        flen = len;
        value = start + len;
        vlen = 0;
    }

    if (flen == 4 && ngx_memcmp(start, "data", 4) == 0) {

        if (p->overflow) {
            return NGX_OK;
        }

        if (vlen > p->max) {
            /* the same verdict whether or not the line came in one piece */
            p->overflow = 1;
            return NGX_OK;
        }

        if (!p->has_data) {
            p->has_data = 1;

            if (in_input) {
                p->data_ref.data = value;
                p->data_ref.len = vlen;
                return NGX_OK;
            }

            if (vlen == 0) {
                return NGX_OK;
            }

            if (ngx_http_ai_sse_append(p, &p->data, &p->data_len,
                                       &p->data_size, value, vlen)
                != NGX_OK)
            {
                p->overflow = 1;
            }

            return NGX_OK;
        }

        /* a second data line: join with LF, in our own buffer */

        if (p->data_ref.len) {
            if (ngx_http_ai_sse_append(p, &p->data, &p->data_len,
                                       &p->data_size, p->data_ref.data,
                                       p->data_ref.len)
                != NGX_OK)
            {
                p->overflow = 1;
                return NGX_OK;
            }

            p->data_ref.len = 0;
        }

        p->data_ref.data = NULL;

        if (ngx_http_ai_sse_append(p, &p->data, &p->data_len, &p->data_size,
                                   (u_char *) "\n", 1)
            != NGX_OK
            || ngx_http_ai_sse_append(p, &p->data, &p->data_len,
                                      &p->data_size, value, vlen)
               != NGX_OK)
        {
            p->overflow = 1;
        }

        return NGX_OK;
    }

    if (flen == 5 && ngx_memcmp(start, "event", 5) == 0) {
        p->event_len = ngx_min(vlen, NGX_HTTP_AI_SSE_EVENT_LEN);
        ngx_memcpy(p->event, value, p->event_len);
        return NGX_OK;
    }

    /* "id", "retry" and unknown fields are ignored */

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_sse_dispatch(ngx_http_ai_sse_parser_t *p,
    ngx_http_ai_sse_handler_pt handler, void *data)
{
    ngx_int_t  rc;
    ngx_str_t  event, payload;

    rc = NGX_OK;

    if (p->overflow) {
        p->dropped++;

    } else if (p->has_data) {
        event.data = p->event;
        event.len = p->event_len;

        if (p->data_ref.data) {
            payload = p->data_ref;

        } else {
            payload.data = p->data;
            payload.len = p->data_len;
        }

        p->events++;

        rc = handler(data, &event, &payload);
    }

    p->overflow = 0;
    p->has_data = 0;
    p->data_ref.data = NULL;
    p->data_ref.len = 0;
    p->data_len = 0;
    p->event_len = 0;

    return rc;
}


static ngx_int_t
ngx_http_ai_sse_append(ngx_http_ai_sse_parser_t *p, u_char **buf, size_t *len,
    size_t *size, u_char *src, size_t n)
{
    u_char  *nb;
    size_t   ns;

    if (*len + n > p->max) {
        return NGX_DECLINED;
    }

    if (*len + n > *size) {
        ns = ngx_max(*size * 2, *len + n);
        ns = ngx_max(ns, 256);
        ns = ngx_min(ns, p->max);

        nb = ngx_pnalloc(p->pool, ns);
        if (nb == NULL) {
            return NGX_ERROR;
        }

        if (*len) {
            ngx_memcpy(nb, *buf, *len);
        }

        if (*buf) {
            ngx_pfree(p->pool, *buf);
        }

        *buf = nb;
        *size = ns;
    }

    if (n) {
        ngx_memcpy(*buf + *len, src, n);
        *len += n;
    }

    return NGX_OK;
}
