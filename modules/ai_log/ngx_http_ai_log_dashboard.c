
/*
 * Copyright (C) AI Gateway authors
 *
 * The dashboard: "ai_dashboard" serves one self-contained HTML page
 * (modules/ai_log/dashboard.html, compiled in through the generated
 * ngx_http_ai_log_dashboard.h) and, with "?format=json", the JSON feed
 * the page draws from: the history buckets of the metrics zone.
 */


#include "ngx_http_ai_log.h"
#include "ngx_http_ai_log_dashboard.h"


static ngx_int_t ngx_http_ai_log_dashboard_json(ngx_http_request_t *r,
    ngx_http_ai_log_zone_t *zone);
static u_char *ngx_http_ai_log_dashboard_labels(u_char *p,
    ngx_http_ai_log_label_t *labels, ngx_uint_t n);
static u_char *ngx_http_ai_log_dashboard_dims(u_char *p, uint64_t (*v)[3]);
static u_char *ngx_http_ai_log_dashboard_rows(u_char *p, uint32_t *v,
    ngx_uint_t width);
static u_char *ngx_http_ai_log_dashboard_text(ngx_http_ai_log_out_t *o,
    ngx_chain_t *src, const char *key);


#define ngx_http_ai_log_usd(v)  (v) / 1000000000, (v) % 1000000000


ngx_int_t
ngx_http_ai_log_dashboard_handler(ngx_http_request_t *r)
{
    u_char                       *p;
    ngx_int_t                     rc;
    ngx_str_t                     format;
    ngx_table_elt_t              *h;
    ngx_http_ai_log_out_t         o;
    ngx_http_ai_log_main_conf_t  *lmcf;

    rc = ngx_http_ai_log_endpoint_check(r);
    if (rc != NGX_OK) {
        return rc;
    }

    lmcf = ngx_http_get_module_main_conf(r, ngx_http_ai_log_module);

    if (ngx_http_arg(r, (u_char *) "format", 6, &format) == NGX_OK
        && format.len == 4 && ngx_strncmp(format.data, "json", 4) == 0)
    {
        return ngx_http_ai_log_dashboard_json(r, lmcf->zone->data);
    }

    ngx_memzero(&o, sizeof(ngx_http_ai_log_out_t));
    o.pool = r->pool;
    o.last = &o.out;

    p = ngx_http_ai_log_out(&o, sizeof(ngx_http_ai_log_dashboard_html));
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    o.buf->last = ngx_cpymem(p, ngx_http_ai_log_dashboard_html,
                             sizeof(ngx_http_ai_log_dashboard_html) - 1);

    /* the page loads nothing from anywhere but this server */

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

#if (nginx_version >= 1023000)
    h->next = NULL;
#endif

    h->hash = 1;
    ngx_str_set(&h->key, "Content-Security-Policy");
    ngx_str_set(&h->value, "default-src 'none'; connect-src 'self'; "
                "script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                "img-src data:");

    return ngx_http_ai_log_send(r, &o, "text/html; charset=utf-8",
                                sizeof("text/html; charset=utf-8") - 1);
}


static ngx_int_t
ngx_http_ai_log_dashboard_json(ngx_http_request_t *r,
    ngx_http_ai_log_zone_t *zone)
{
    u_char                    *p;
    time_t                     now, oldest;
    ngx_chain_t               *src, **last;
    uint64_t                   requests, prompt, completion, cost, overflow;
    ngx_uint_t                 i, n, b, d, top, nlabels[4], nseries;
    ngx_uint_t                 used[NGX_HTTP_AI_LOG_DIMS];
    ngx_atomic_uint_t          inflight, streams;
    ngx_queue_t               *q;
    ngx_http_ai_log_out_t      o, co;
    ngx_http_ai_log_slot_t    *slots, *slot;
    ngx_http_ai_log_label_t   *labels[4];

    static ngx_uint_t          dims[4] = {
        NGX_HTTP_AI_LOG_MODEL, NGX_HTTP_AI_LOG_CONSUMER,
        NGX_HTTP_AI_LOG_PROVIDER, NGX_HTTP_AI_LOG_TARGET
    };
    ngx_http_ai_log_shctx_t   *sh;
    ngx_http_ai_log_series_t  *s;

    sh = zone->sh;

    slots = ngx_palloc(r->pool, zone->nslots * sizeof(ngx_http_ai_log_slot_t));
    if (slots == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; i < 4; i++) {
        labels[i] = ngx_palloc(r->pool, NGX_HTTP_AI_LOG_TOP
                                        * sizeof(ngx_http_ai_log_label_t));
        if (labels[i] == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    now = ngx_time();
    oldest = now - (time_t) (zone->nslots * zone->interval);

    requests = 0;
    prompt = 0;
    completion = 0;
    cost = 0;

    ngx_shmtx_lock(&zone->shpool->mutex);

    /* the buckets in time order, from the oldest still in the window */

    n = 0;

    for (i = 1; i <= zone->nslots; i++) {
        slot = &sh->slots[(now / zone->interval + i) % zone->nslots];

        if (slot->start && slot->start > oldest && slot->start <= now) {
            slots[n++] = *slot;
        }
    }

    for (i = 0; i < 4; i++) {
        top = (i < 2) ? NGX_HTTP_AI_LOG_TOP : NGX_HTTP_AI_LOG_TOP_GW;
        nlabels[i] = ngx_min(sh->nlabels[dims[i]], top);
        ngx_memcpy(labels[i], sh->labels[dims[i]],
                   nlabels[i] * sizeof(ngx_http_ai_log_label_t));
    }

    /* the label cap and how much of it each label uses (__other__ not) */

    for (d = 0; d < NGX_HTTP_AI_LOG_DIMS; d++) {
        used[d] = sh->nlabels[d] - 1;
    }

    overflow = sh->overflow;
    nseries = sh->nseries;
    inflight = sh->inflight;
    streams = sh->streams;

    for (q = ngx_queue_head(&sh->queue);
         q != ngx_queue_sentinel(&sh->queue);
         q = ngx_queue_next(q))
    {
        s = ngx_queue_data(q, ngx_http_ai_log_series_t, queue);

        ngx_http_ai_log_add(&requests, s->requests);
        ngx_http_ai_log_add(&prompt, s->tokens[NGX_HTTP_AI_LOG_PROMPT]);
        ngx_http_ai_log_add(&completion,
                            s->tokens[NGX_HTTP_AI_LOG_COMPLETION]);
        ngx_http_ai_log_add(&cost, s->cost);
    }

    ngx_http_ai_log_add(&requests, sh->other.requests);
    ngx_http_ai_log_add(&prompt, sh->other.tokens[NGX_HTTP_AI_LOG_PROMPT]);
    ngx_http_ai_log_add(&completion,
                        sh->other.tokens[NGX_HTTP_AI_LOG_COMPLETION]);
    ngx_http_ai_log_add(&cost, sh->other.cost);

    ngx_memzero(&o, sizeof(ngx_http_ai_log_out_t));
    o.pool = r->pool;
    o.last = &o.out;

    p = ngx_http_ai_log_out(&o, 4096 + 4 * NGX_HTTP_AI_LOG_TOP
                                       * (4 + 6 * NGX_HTTP_AI_LOG_LABEL_LEN));
    if (p == NULL) {
        ngx_shmtx_unlock(&zone->shpool->mutex);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(p, "{\"version\":1,\"now\":%T,\"started\":%T,"
                    "\"interval\":%T,\"history\":%T,\"buckets_ms\":[",
                    now, sh->started, zone->interval,
                    (time_t) (zone->nslots * zone->interval));

    ngx_shmtx_unlock(&zone->shpool->mutex);

    for (b = 0; b < NGX_HTTP_AI_LOG_BUCKETS - 1; b++) {
        p = ngx_sprintf(p, b ? ",%uL" : "%uL", ngx_http_ai_log_bounds[b]);
    }

    p = ngx_sprintf(p, "],\"models\":");
    p = ngx_http_ai_log_dashboard_labels(p, labels[0], nlabels[0]);
    p = ngx_sprintf(p, ",\"consumers\":");
    p = ngx_http_ai_log_dashboard_labels(p, labels[1], nlabels[1]);
    p = ngx_sprintf(p, ",\"providers\":");
    p = ngx_http_ai_log_dashboard_labels(p, labels[2], nlabels[2]);
    p = ngx_sprintf(p, ",\"targets\":");
    p = ngx_http_ai_log_dashboard_labels(p, labels[3], nlabels[3]);

    p = ngx_sprintf(p, ",\"labels\":{\"cap\":%ui,\"overflow\":%uL,"
                    "\"series\":%ui,\"used\":{\"model\":%ui,"
                    "\"provider\":%ui,\"consumer\":%ui,\"target\":%ui,"
                    "\"endpoint\":%ui}},\"in_flight\":{\"requests\":%uA,"
                    "\"streams\":%uA}",
                    zone->labels, overflow, nseries,
                    used[NGX_HTTP_AI_LOG_MODEL],
                    used[NGX_HTTP_AI_LOG_PROVIDER],
                    used[NGX_HTTP_AI_LOG_CONSUMER],
                    used[NGX_HTTP_AI_LOG_TARGET],
                    used[NGX_HTTP_AI_LOG_ENDPOINT], inflight, streams);

    p = ngx_sprintf(p, ",\"lifetime\":{\"requests\":%uL,\"prompt_tokens\":%uL,"
                    "\"completion_tokens\":%uL,\"cost_usd\":%uL.%09uL},"
                    "\"slots\":[", requests, prompt, completion,
                    ngx_http_ai_log_usd(cost));

    o.buf->last = p;

    for (i = 0; i < n; i++) {
        slot = &slots[i];

        p = ngx_http_ai_log_out(&o, 2048 + 2 * NGX_HTTP_AI_LOG_BUCKETS * 24
                                    + 4 * NGX_HTTP_AI_LOG_TOP * 128);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        p = ngx_sprintf(p, "%s{\"t\":%T,\"requests\":%uL,\"errors\":%uL,"
                        "\"rejected\":%uL,\"prompt_tokens\":%uL,"
                        "\"completion_tokens\":%uL,\"cost_usd\":%uL.%09uL,"
                        "\"cache_hits\":%uL,\"cache_misses\":%uL,"
                        "\"latency\":[",
                        i ? "," : "", slot->start, slot->requests,
                        slot->errors, slot->rejected, slot->prompt,
                        slot->completion, ngx_http_ai_log_usd(slot->cost),
                        slot->cache_hits, slot->cache_misses);

        for (b = 0; b < NGX_HTTP_AI_LOG_BUCKETS; b++) {
            p = ngx_sprintf(p, b ? ",%uL" : "%uL", slot->latency[b]);
        }

        p = ngx_sprintf(p, "],\"ttft\":[");

        for (b = 0; b < NGX_HTTP_AI_LOG_BUCKETS; b++) {
            p = ngx_sprintf(p, b ? ",%uL" : "%uL", slot->ttft[b]);
        }

        p = ngx_sprintf(p, "],\"models\":");
        p = ngx_http_ai_log_dashboard_dims(p, slot->model);
        p = ngx_sprintf(p, ",\"consumers\":");
        p = ngx_http_ai_log_dashboard_dims(p, slot->consumer);
        p = ngx_sprintf(p, ",\"providers\":");
        p = ngx_http_ai_log_dashboard_rows(p, &slot->provider[0][0], 2);
        p = ngx_sprintf(p, ",\"targets\":");
        p = ngx_http_ai_log_dashboard_rows(p, &slot->target[0][0], 3);

        p = ngx_sprintf(p, ",\"codes\":[");

        for (b = 0; b < NGX_HTTP_AI_LOG_CODES; b++) {
            p = ngx_sprintf(p, b ? ",%uD" : "%uD", slot->codes[b]);
        }

        p = ngx_sprintf(p, "],\"attempts\":%uD,\"fallbacks\":%uD}",
                        slot->attempts, slot->fallbacks);

        o.buf->last = p;
    }

    /* the other modules' metric sources (budgets left), as their text */

    src = NULL;
    last = &src;

    if (ngx_http_ai_metrics(r, &last) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_http_ai_log_dashboard_text(&o, src, "],\"sources\":\"");
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    o.buf->last = p;

    /* the core's counters (the keys' cooldowns...), as /metrics has them */

    ngx_memzero(&co, sizeof(ngx_http_ai_log_out_t));
    co.pool = r->pool;
    co.last = &co.out;

    if (ngx_http_ai_log_prom_counters(r, &co) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_http_ai_log_dashboard_text(&o, co.out, "\",\"counters\":\"");
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    o.buf->last = ngx_cpymem(p, "\"}\n", 3);

    return ngx_http_ai_log_send(r, &o, "application/json",
                                sizeof("application/json") - 1);
}


/* key, then the text of the chain as a JSON string's content */

static u_char *
ngx_http_ai_log_dashboard_text(ngx_http_ai_log_out_t *o, ngx_chain_t *src,
    const char *key)
{
    u_char       *p;
    size_t        len;
    ngx_chain_t  *cl;

    len = ngx_strlen(key);

    for (cl = src; cl; cl = cl->next) {
        len += ngx_http_ai_escape_json(NULL, cl->buf->pos,
                                       cl->buf->last - cl->buf->pos);
    }

    p = ngx_http_ai_log_out(o, len + 32);
    if (p == NULL) {
        return NULL;
    }

    p = ngx_cpymem(p, key, ngx_strlen(key));

    for (cl = src; cl; cl = cl->next) {
        p = (u_char *) ngx_http_ai_escape_json(p, cl->buf->pos,
                                               cl->buf->last - cl->buf->pos);
    }

    return p;
}


/*
 * [[label, n1, n2...], ...] for the labels seen: providers (requests,
 * tokens), targets (requests, errors, fallbacks)
 */

static u_char *
ngx_http_ai_log_dashboard_rows(u_char *p, uint32_t *v, ngx_uint_t width)
{
    ngx_uint_t  i, k, n;

    *p++ = '[';

    for (i = 0, n = 0; i < NGX_HTTP_AI_LOG_TOP_GW; i++, v += width) {
        if (v[0] == 0) {
            continue;
        }

        p = ngx_sprintf(p, "%s[%ui", n++ ? "," : "", i);

        for (k = 0; k < width; k++) {
            p = ngx_sprintf(p, ",%uD", v[k]);
        }

        *p++ = ']';
    }

    *p++ = ']';

    return p;
}


static u_char *
ngx_http_ai_log_dashboard_labels(u_char *p, ngx_http_ai_log_label_t *labels,
    ngx_uint_t n)
{
    ngx_uint_t  i;

    *p++ = '[';

    for (i = 0; i < n; i++) {
        if (i) {
            *p++ = ',';
        }

        p = ngx_http_ai_log_json_string(p, labels[i].data, labels[i].len);
    }

    *p++ = ']';

    return p;
}


/* [[label, requests, tokens, cost], ...] for the labels seen */

static u_char *
ngx_http_ai_log_dashboard_dims(u_char *p, uint64_t (*v)[3])
{
    ngx_uint_t  i, n;

    *p++ = '[';

    for (i = 0, n = 0; i < NGX_HTTP_AI_LOG_TOP; i++) {
        if (v[i][0] == 0) {
            continue;
        }

        p = ngx_sprintf(p, "%s[%ui,%uL,%uL,%uL.%09uL]", n++ ? "," : "", i,
                        v[i][0], v[i][1], ngx_http_ai_log_usd(v[i][2]));
    }

    *p++ = ']';

    return p;
}
