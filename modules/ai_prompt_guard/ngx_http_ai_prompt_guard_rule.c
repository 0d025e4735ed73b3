
/*
 * Copyright (C) AI Gateway authors
 *
 * The rules on one text: their matches (PCRE2 patterns, compiled at
 * configuration time with JIT, run under a match limit so that a
 * catastrophic pattern is cut off instead of stalling the worker; and the
 * built-in detectors), the overlaps resolved (the earlier match wins, the
 * longer at a tie), and the text rewritten: a masked value becomes a typed
 * placeholder, [EMAIL_1], the same value the same placeholder within the
 * request (kept, so that the answer can be restored); a hashed one
 * [EMAIL_3f2a9c1b], the first 8 hex digits of its MD5 (the same value
 * the same token across requests: a pseudonym, not a secret).  Allow
 * rules only say that they matched.
 *
 * A conversation's history comes again with each of its turns: a text of
 * the history (any message but the last) that the rules found clean is
 * noted in a table of the worker's, and passes unread when it comes
 * again, for the same rules, role and consumer (a text's time to pass
 * would otherwise tell a consumer whether another sent it).
 */


#include "ngx_http_ai_prompt_guard.h"
#include <ngx_md5.h>


/* a text's matches: on the caller's stack, then in the request's pool */

typedef struct {
    ngx_http_ai_pg_match_at_t  *m;
    ngx_uint_t                  n;
    ngx_uint_t                  cap;
    ngx_pool_t                 *pool;
} ngx_http_ai_pg_matches_t;


/*
 * A text known clean: its keyed hash (ngx_http_ai_hash(), which clients
 * cannot make collide) mixed with its consumer's, its length, the rules
 * and the role it was read with.  A slot a text, the last one in it wins.
 */

typedef struct {
    uint64_t                    hash;
    ngx_array_t                *rules;
    uint32_t                    len;
    uint32_t                    role;
} ngx_http_ai_pg_clean_t;


#define NGX_HTTP_AI_PG_CLEAN        4096     /* slots: 96 KB a worker */


static ngx_int_t ngx_http_ai_prompt_guard_room(ngx_http_ai_pg_matches_t *mt);
static ngx_int_t ngx_http_ai_prompt_guard_regex(ngx_http_request_t *r,
    ngx_http_ai_pg_ctx_t *ctx, ngx_http_ai_pg_rule_t *rule, ngx_str_t *text,
    ngx_http_ai_pg_matches_t *mt);
static void ngx_http_ai_prompt_guard_pcre_cleanup(void *data);
static void ngx_http_ai_prompt_guard_detected(ngx_http_ai_pg_ctx_t *ctx,
    ngx_http_ai_pg_match_at_t *m);
static ngx_uint_t ngx_http_ai_prompt_guard_resolve(
    ngx_http_ai_pg_match_at_t *m, ngx_uint_t n);
static ngx_int_t ngx_http_ai_prompt_guard_replace(ngx_http_request_t *r,
    ngx_http_ai_pg_ctx_t *ctx, ngx_http_ai_pg_match_at_t *m, ngx_str_t *text,
    ngx_uint_t keep, size_t *prev, ngx_str_t *out);
static ngx_int_t ngx_http_ai_prompt_guard_value_key(ngx_pool_t *pool,
    ngx_str_t *label, ngx_str_t *value, ngx_str_t *key);
static ngx_int_t ngx_http_ai_prompt_guard_insert(ngx_pool_t *pool,
    ngx_rbtree_t *tree, ngx_str_t *key, ngx_uint_t index);
static int ngx_libc_cdecl ngx_http_ai_prompt_guard_order(const void *one,
    const void *two);


ngx_http_ai_pg_rule_t  ngx_http_ai_pg_too_many = {
    ngx_string("(too many matches)"), ngx_null_string, NULL, 0,
    NGX_HTTP_AI_PG_BLOCK, 0,
    ngx_string("The request has more matches of the gateway's content "
               "policy than it checks in one text."),
    NULL, NULL, 0, 0, 0, 1, 1, 0
};


/*
 * The rules on a text, for a request: the matches, then the text
 * rewritten.  NGX_OK: *out is the text to use (the same memory when
 * nothing changed); NGX_DECLINED: a rule blocks it (ctx->blocked);
 * NGX_ERROR.
 */

static ngx_http_ai_pg_clean_t  ngx_http_ai_pg_clean[NGX_HTTP_AI_PG_CLEAN];


ngx_int_t
ngx_http_ai_prompt_guard_text(ngx_http_request_t *r,
    ngx_http_ai_pg_ctx_t *ctx, ngx_array_t *rules,
    ngx_http_ai_pg_where_t *where, ngx_str_t *text, ngx_str_t *out)
{
    uint64_t                    hash;
    ngx_int_t                   rc;
    ngx_uint_t                  n, allowed, failed;
    ngx_http_ai_pg_clean_t     *c;
    ngx_http_ai_pg_match_at_t   stack[NGX_HTTP_AI_PG_MATCHES], *m;

    *out = *text;
    m = stack;
    c = NULL;
    hash = 0;

    if (!where->last && text->len && text->len <= NGX_MAX_UINT32_VALUE) {
        /* the history: read once */

        /* with the consumer's: one learns nothing of what another sent */

        hash = where->hash ? where->hash
                           : ngx_http_ai_hash(text->data, text->len)
                             ^ ngx_http_ai_get_ctx(r)->req.scope;

        c = &ngx_http_ai_pg_clean[(hash ^ ((uintptr_t) rules >> 4)
                                   ^ where->role)
                                  & (NGX_HTTP_AI_PG_CLEAN - 1)];

        if (c->hash == hash && c->rules == rules && c->len == text->len
            && c->role == where->role)
        {
            return NGX_OK;
        }
    }

    allowed = ctx->allowed;
    failed = ctx->failed;

    rc = ngx_http_ai_prompt_guard_match(r, ctx, rules, where, text, &m, &n);

    if (rc == NGX_OK && n == 0 && c
        && ctx->allowed == allowed && ctx->failed == failed)
    {
        /* clean, and as clean the next time: no allow rule, no limit */

        c->hash = hash;
        c->rules = rules;
        c->len = (uint32_t) text->len;
        c->role = (uint32_t) where->role;
    }

    if (rc != NGX_OK || n == 0) {
        return rc;
    }

    return ngx_http_ai_prompt_guard_apply(r, ctx, m, n, text, 1, out);
}


/*
 * The matches of the rules on a text, in order, without overlaps: *mp is
 * the caller's array of NGX_HTTP_AI_PG_MATCHES, or one of the request's
 * pool when they are more.  NGX_OK, or NGX_DECLINED when a rule blocks
 * (a block rule matched, or a pattern failing closed was cut off) or the
 * text has more than NGX_HTTP_AI_PG_MATCHES_MAX matches: ctx->blocked.
 */

ngx_int_t
ngx_http_ai_prompt_guard_match(ngx_http_request_t *r,
    ngx_http_ai_pg_ctx_t *ctx, ngx_array_t *rules,
    ngx_http_ai_pg_where_t *where, ngx_str_t *text,
    ngx_http_ai_pg_match_at_t **mp, ngx_uint_t *np)
{
    ngx_int_t                   rc;
    ngx_uint_t                  i, j, k, nd, dcap, mask;
    ngx_http_ai_pg_match_t      stack[NGX_HTTP_AI_PG_MATCHES], *dm;
    ngx_http_ai_pg_rule_t     **rp, *rule;
    ngx_http_ai_pg_matches_t    mt;

    *np = 0;

    if (text->len == 0) {
        return NGX_OK;
    }

    rp = rules->elts;

    /* the detectors of every rule that applies, in one pass */

    mask = 0;

    for (i = 0; i < rules->nelts; i++) {
        rule = rp[i];

        if ((rule->roles & where->role) && !(rule->last && !where->last)) {
            mask |= rule->detectors;
        }
    }

    nd = 0;
    dm = stack;
    dcap = NGX_HTTP_AI_PG_MATCHES;

    while (mask) {
        (void) ngx_http_ai_pg_detect(text->data, text->len, mask, dm, dcap,
                                     &nd);

        if (nd < dcap) {
            break;
        }

        /* as many as there was room for: maybe more, again with more room */

        if (dcap > NGX_HTTP_AI_PG_MATCHES_MAX) {
            goto too_many;
        }

        /* one more than the most: the most, but not more, pass */

        dcap = ngx_min(dcap * 16, NGX_HTTP_AI_PG_MATCHES_MAX + 1);

        dm = ngx_palloc(r->pool, dcap * sizeof(ngx_http_ai_pg_match_t));
        if (dm == NULL) {
            return NGX_ERROR;
        }
    }

    mt.m = *mp;
    mt.n = 0;
    mt.cap = NGX_HTTP_AI_PG_MATCHES;
    mt.pool = r->pool;

    for (i = 0; i < rules->nelts; i++) {
        rule = rp[i];

        if (!(rule->roles & where->role) || (rule->last && !where->last)) {
            continue;
        }

        k = mt.n;

        for (j = 0; j < nd; j++) {
            if (!(dm[j].type & rule->detectors)) {
                continue;
            }

            rc = ngx_http_ai_prompt_guard_room(&mt);

            if (rc == NGX_DECLINED) {
                goto too_many;
            }

            if (rc != NGX_OK) {
                return NGX_ERROR;
            }

            mt.m[mt.n].start = dm[j].start;
            mt.m[mt.n].len = dm[j].len;
            mt.m[mt.n].rule = rule;
            mt.m[mt.n].type = dm[j].type;
            mt.n++;
        }

        if (rule->re) {
            rc = ngx_http_ai_prompt_guard_regex(r, ctx, rule, text, &mt);

            if (rc == NGX_ABORT) {
                goto too_many;
            }

            if (rc == NGX_ERROR) {
                return NGX_ERROR;
            }

            if (rc == NGX_DECLINED) {
                /* cut off by the limits: the rule's fail policy */

                if (rule->fail_closed) {
                    ctx->blocked = rule;
                    return NGX_DECLINED;
                }

                mt.n = k;
                continue;
            }
        }

        if (rule->allow) {
            /* it matched or not: nothing to change */
            ctx->allowed += (mt.n > k);
            mt.n = k;
        }
    }

    *mp = mt.m;

    mt.n = ngx_http_ai_prompt_guard_resolve(mt.m, mt.n);

    for (i = 0; i < mt.n; i++) {
        if (mt.m[i].rule->action == NGX_HTTP_AI_PG_BLOCK) {
            ngx_http_ai_counter_incr(mt.m[i].rule->matched, 1);
            ngx_http_ai_prompt_guard_detected(ctx, &mt.m[i]);
            ctx->hits++;
            ctx->first = ctx->first ? ctx->first : mt.m[i].rule;
            ctx->blocked = mt.m[i].rule;
            return NGX_DECLINED;
        }
    }

    *np = mt.n;

    return NGX_OK;

too_many:

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "ai_prompt_guard: a text of %uz bytes has more than %ui "
                  "matches of the rules, it is refused", text->len,
                  (ngx_uint_t) NGX_HTTP_AI_PG_MATCHES_MAX);

    ctx->blocked = &ngx_http_ai_pg_too_many;
    ctx->first = ctx->first ? ctx->first : &ngx_http_ai_pg_too_many;

    return NGX_DECLINED;
}


/*
 * Room for one more match: NGX_OK; NGX_DECLINED when the text has
 * NGX_HTTP_AI_PG_MATCHES_MAX already; NGX_ERROR
 */

static ngx_int_t
ngx_http_ai_prompt_guard_room(ngx_http_ai_pg_matches_t *mt)
{
    ngx_uint_t                  cap;
    ngx_http_ai_pg_match_at_t  *m;

    if (mt->n < mt->cap) {
        return NGX_OK;
    }

    if (mt->cap >= NGX_HTTP_AI_PG_MATCHES_MAX) {
        return NGX_DECLINED;
    }

    cap = ngx_min(mt->cap * 16, NGX_HTTP_AI_PG_MATCHES_MAX);

    m = ngx_palloc(mt->pool, cap * sizeof(ngx_http_ai_pg_match_at_t));
    if (m == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(m, mt->m, mt->n * sizeof(ngx_http_ai_pg_match_at_t));

    mt->m = m;
    mt->cap = cap;

    return NGX_OK;
}


/*
 * A text rewritten for its matches (none blocks): masked values become
 * placeholders, kept for the answer's restore when keep is set (the
 * request), numberless otherwise ([EMAIL]: the answer's own); hashed
 * ones pseudonyms; logged ones stay.  *out is the text itself when
 * nothing changed.
 */

ngx_int_t
ngx_http_ai_prompt_guard_apply(ngx_http_request_t *r,
    ngx_http_ai_pg_ctx_t *ctx, ngx_http_ai_pg_match_at_t *m, ngx_uint_t n,
    ngx_str_t *text, ngx_uint_t keep, ngx_str_t *out)
{
    u_char                 *p;
    size_t                  size, prev;
    ngx_uint_t              i, changed;
    ngx_http_ai_pg_rule_t  *rule;

    *out = *text;
    changed = 0;

    for (i = 0; i < n; i++) {
        rule = m[i].rule;

        ngx_http_ai_counter_incr(rule->matched, 1);
        ngx_http_ai_prompt_guard_detected(ctx, &m[i]);

        if (ctx->first == NULL) {
            ctx->first = rule;
        }

        ctx->hits++;
        changed |= (rule->action != NGX_HTTP_AI_PG_LOG);
    }

    if (!changed) {
        return NGX_OK;
    }

    /* a replacement is at most "[", a label, "_", a number and "]"; a
     * value at least a byte */

    size = text->len + n * (NGX_HTTP_AI_PG_LABEL_LEN + NGX_INT_T_LEN + 3);

    p = ngx_pnalloc(r->pool, size);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->data = p;
    out->len = 0;
    prev = 0;

    for (i = 0; i < n; i++) {
        if (ngx_http_ai_prompt_guard_replace(r, ctx, &m[i], text, keep,
                                             &prev, out)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    /* the rest after the last match */

    p = ngx_cpymem(out->data + out->len, text->data + prev,
                   text->len - prev);
    out->len = p - out->data;

    ctx->changed = 1;

    return NGX_OK;
}


/*
 * A rule's pattern on a text: NGX_OK; NGX_DECLINED, cut off by the
 * limits; NGX_ABORT, too many matches; NGX_ERROR
 */

static ngx_int_t
ngx_http_ai_prompt_guard_regex(ngx_http_request_t *r,
    ngx_http_ai_pg_ctx_t *ctx, ngx_http_ai_pg_rule_t *rule, ngx_str_t *text,
    ngx_http_ai_pg_matches_t *mt)
{
    int                          rc;
    ngx_int_t                    room;
    size_t                       offset;
    PCRE2_SIZE                  *ov;
    ngx_http_ai_pg_loc_conf_t   *plcf;
    ngx_http_ai_pg_main_conf_t  *pmcf;

    pmcf = ngx_http_get_module_main_conf(r, ngx_http_ai_prompt_guard_module);

    offset = 0;

    while (offset <= text->len) {

        /*
         * JIT-compiled: straight to its code, without pcre2_match()'s
         * checks of what is known here (a third of a short text's match
         * was pcre2_match() itself); the same limits, the same answers
         */

        rc = rule->jit ? pcre2_jit_match(rule->re, text->data, text->len,
                                         offset, 0, pmcf->md, pmcf->mctx)
                       : pcre2_match(rule->re, text->data, text->len,
                                     offset, 0, pmcf->md, pmcf->mctx);

        if (rc == PCRE2_ERROR_NOMATCH) {
            return NGX_OK;
        }

        if (rc < 0) {
            /* the match or depth limit, or worse: never the text */

            plcf = ngx_http_get_module_loc_conf(r,
                                            ngx_http_ai_prompt_guard_module);
            ctx->failed++;

            ngx_log_error(plcf->log_level, r->connection->log, 0,
                          "ai_prompt_guard: rule \"%V\" was cut off (PCRE2 "
                          "error %d) on a text of %uz bytes, %s",
                          &rule->name, rc, text->len,
                          rule->fail_closed ? "the request is refused"
                                            : "the rule is skipped");
            return NGX_DECLINED;
        }

        ov = pcre2_get_ovector_pointer(pmcf->md);

        if (ov[1] == ov[0]) {
            /* an empty match changes nothing: not kept, moves on a byte */
            offset = ov[1] + 1;
            continue;
        }

        room = ngx_http_ai_prompt_guard_room(mt);

        if (room != NGX_OK) {
            return (room == NGX_DECLINED) ? NGX_ABORT : NGX_ERROR;
        }

        mt->m[mt->n].start = ov[0];
        mt->m[mt->n].len = ov[1] - ov[0];
        mt->m[mt->n].rule = rule;
        mt->m[mt->n].type = 0;
        mt->n++;

        /* an empty match moves on by a byte */
        offset = (ov[1] > ov[0]) ? ov[1] : ov[1] + 1;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_ai_prompt_guard_compile(ngx_conf_t *cf, ngx_http_ai_pg_rule_t *rule,
    ngx_str_t *pattern)
{
    int                  err;
    u_char               msg[256];
    PCRE2_SIZE           at;
    ngx_pool_cleanup_t  *cln;

    rule->re = pcre2_compile(pattern->data, pattern->len,
                             PCRE2_UTF|PCRE2_UCP|PCRE2_MATCH_INVALID_UTF,
                             &err, &at, NULL);

    if (rule->re == NULL) {
        (void) pcre2_get_error_message(err, msg, sizeof(msg));

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_prompt_guard_rule \"%V\": invalid regex "
                           "\"%V\": %s at offset %uz", &rule->name, pattern,
                           msg, (size_t) at);
        return NGX_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        pcre2_code_free(rule->re);
        return NGX_ERROR;
    }

    cln->handler = ngx_http_ai_prompt_guard_pcre_cleanup;
    cln->data = rule->re;

    /* JIT when the platform has it; the interpreter otherwise */
    rule->jit = (pcre2_jit_compile(rule->re, PCRE2_JIT_COMPLETE) == 0);

    return NGX_OK;
}


static void
ngx_http_ai_prompt_guard_pcre_cleanup(void *data)
{
    pcre2_code_free(data);
}


/* in order of start, without overlaps: the earlier wins, the longer at a
 * tie; returns how many are left */

static ngx_uint_t
ngx_http_ai_prompt_guard_resolve(ngx_http_ai_pg_match_at_t *m, ngx_uint_t n)
{
    ngx_uint_t                 i, j, k;
    ngx_http_ai_pg_match_at_t  t;

    if (n > 64) {
        /*
         * many: sorted in n log n (their order in m, the rules', breaks
         * the ties that qsort() would not keep: noted in rank)
         */

        for (i = 0; i < n; i++) {
            m[i].rank = i;
        }

        ngx_qsort(m, n, sizeof(ngx_http_ai_pg_match_at_t),
                  ngx_http_ai_prompt_guard_order);

    } else {
        for (i = 1; i < n; i++) {
            t = m[i];

            for (j = i; j > 0; j--) {
                if (m[j - 1].start < t.start
                    || (m[j - 1].start == t.start && m[j - 1].len >= t.len))
                {
                    break;
                }

                m[j] = m[j - 1];
            }

            m[j] = t;
        }
    }

    k = 0;

    for (i = 0; i < n; i++) {
        if (m[i].len == 0) {
            continue;
        }

        if (k && m[i].start < m[k - 1].start + m[k - 1].len) {
            continue;
        }

        m[k++] = m[i];
    }

    return k;
}


/*
 * The text before the match and what replaces it, appended to out: the
 * value itself (log), a placeholder (mask), a pseudonym (hash).
 */

static ngx_int_t
ngx_http_ai_prompt_guard_replace(ngx_http_request_t *r,
    ngx_http_ai_pg_ctx_t *ctx, ngx_http_ai_pg_match_at_t *m, ngx_str_t *text,
    ngx_uint_t keep, size_t *prev, ngx_str_t *out)
{
    u_char                      *p, *start, hash[16];
    ngx_md5_t                    md5;
    ngx_str_t                    value, label, key;
    ngx_uint_t                   i, number;
    ngx_http_ai_pg_mask_t       *mask;
    ngx_http_ai_pg_label_t      *lb;
    ngx_http_ai_pg_mask_node_t  *node;

    /* the text since the last match */

    p = out->data + out->len;
    p = ngx_cpymem(p, text->data + *prev, m->start - *prev);

    *prev = m->start + m->len;

    value.data = text->data + m->start;
    value.len = m->len;

    if (m->type) {
        label.data = (u_char *) ngx_http_ai_pg_detector_name(m->type);
        label.len = ngx_strlen(label.data);

    } else {
        label = m->rule->label;
    }

    switch (m->rule->action) {

    case NGX_HTTP_AI_PG_LOG:
        p = ngx_cpymem(p, value.data, value.len);
        break;

    case NGX_HTTP_AI_PG_HASH:
        ngx_md5_init(&md5);
        ngx_md5_update(&md5, value.data, value.len);
        ngx_md5_final(hash, &md5);

        *p++ = '[';
        p = ngx_cpymem(p, label.data, label.len);
        *p++ = '_';
        p = ngx_hex_dump(p, hash, 4);
        *p++ = ']';
        break;

    default: /* NGX_HTTP_AI_PG_MASK */

        if (!keep) {
            *p++ = '[';
            p = ngx_cpymem(p, label.data, label.len);
            *p++ = ']';
            break;
        }

        /* the same value, the same placeholder (looked up in a tree) */

        if (ngx_http_ai_prompt_guard_value_key(r->pool, &label, &value, &key)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        node = (ngx_http_ai_pg_mask_node_t *)
                   ngx_str_rbtree_lookup(&ctx->by_value, &key,
                                         ngx_crc32_short(key.data, key.len));

        if (node) {
            mask = (ngx_http_ai_pg_mask_t *) ctx->masks.elts + node->index;
            p = ngx_cpymem(p, mask->placeholder.data, mask->placeholder.len);
            break;
        }

        /* the label's next number */

        lb = ctx->labels.elts;

        for (i = 0; i < ctx->labels.nelts; i++) {
            if (lb[i].label.len == label.len
                && ngx_strncmp(lb[i].label.data, label.data, label.len) == 0)
            {
                break;
            }
        }

        if (i == ctx->labels.nelts) {
            lb = ngx_array_push(&ctx->labels);
            if (lb == NULL) {
                return NGX_ERROR;
            }

            lb->label = label;
            lb->count = 0;

        } else {
            lb = &lb[i];
        }

        number = ++lb->count;

        mask = ngx_array_push(&ctx->masks);
        if (mask == NULL) {
            return NGX_ERROR;
        }

        start = p;
        p = ngx_sprintf(p, "[%V_%ui]", &label, number);

        mask->placeholder.len = p - start;
        mask->placeholder.data = ngx_pnalloc(r->pool, p - start);
        if (mask->placeholder.data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(mask->placeholder.data, start, p - start);

        mask->value.data = ngx_pnalloc(r->pool, value.len);
        if (mask->value.data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(mask->value.data, value.data, value.len);
        mask->value.len = value.len;

        if (ngx_http_ai_prompt_guard_insert(r->pool, &ctx->by_value, &key,
                                            ctx->masks.nelts - 1)
            != NGX_OK
            || ngx_http_ai_prompt_guard_insert(r->pool, &ctx->by_holder,
                                               &mask->placeholder,
                                               ctx->masks.nelts - 1)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        ctx->longest = ngx_max(ctx->longest, mask->placeholder.len);
        ctx->masked++;
    }

    out->len = p - out->data;

    return NGX_OK;
}


/*
 * How far back a match may reach from the end of a text: the output
 * filter holds that much of a stream back.  Detectors know their longest
 * match (but for the long secrets); a pattern's is unknown, so the
 * location's window.
 */

size_t
ngx_http_ai_prompt_guard_reach(ngx_array_t *rules, size_t window)
{
    size_t                   reach;
    ngx_uint_t               i;
    ngx_http_ai_pg_rule_t  **rp;

    reach = 0;
    rp = rules->elts;

    for (i = 0; i < rules->nelts; i++) {
        if (rp[i]->re) {
            reach = ngx_max(reach, window);
        }

        if (rp[i]->detectors) {
            reach = ngx_max(reach,
                            ngx_http_ai_pg_detect_max_len(rp[i]->detectors
                                                  & ~NGX_HTTP_AI_PG_SECRET));
        }

        /* a key's shape is short; a PEM block or a JWT may be long, and
         * the filter holds them from their start instead */

        if (rp[i]->detectors & NGX_HTTP_AI_PG_SECRET) {
            reach = ngx_max(reach, 256);
        }
    }

    /* the detectors look a little around a match (a word's boundary) */

    return reach ? reach + NGX_HTTP_AI_PG_LOOKAROUND : 0;
}


/* a detector's match counted, for the outcome "guard_detectors" */

static void
ngx_http_ai_prompt_guard_detected(ngx_http_ai_pg_ctx_t *ctx,
    ngx_http_ai_pg_match_at_t *m)
{
    ngx_uint_t  bit;

    if (m->type == 0) {
        return;
    }

    for (bit = 0;
         bit < NGX_HTTP_AI_PG_NDETECTORS
         && !(m->type & ((ngx_uint_t) 1 << bit));
         bit++)
    {
        /* void */
    }

    if (bit < NGX_HTTP_AI_PG_NDETECTORS) {
        ctx->detected[bit]++;
    }
}


/* "EMAIL:2,CARD:1": what the detectors found, NULL if nothing */

u_char *
ngx_http_ai_prompt_guard_counts(ngx_pool_t *pool, ngx_http_ai_pg_ctx_t *ctx,
    size_t *len)
{
    u_char      *p, *start;
    const char  *name;
    ngx_uint_t   bit, n;

    n = 0;

    for (bit = 0; bit < NGX_HTTP_AI_PG_NDETECTORS; bit++) {
        n += (ctx->detected[bit] != 0);
    }

    if (n == 0) {
        /* most requests: nothing found, nothing taken from the pool */
        *len = 0;
        return NULL;
    }

    start = ngx_pnalloc(pool, n * (16 + NGX_INT_T_LEN + 2));
    if (start == NULL) {
        return NULL;
    }

    p = start;

    for (bit = 0; bit < NGX_HTTP_AI_PG_NDETECTORS; bit++) {
        if (ctx->detected[bit] == 0) {
            continue;
        }

        name = ngx_http_ai_pg_detector_name((ngx_uint_t) 1 << bit);

        if (name == NULL) {
            continue;
        }

        if (p != start) {
            *p++ = ',';
        }

        p = ngx_sprintf(p, "%s:%ui", name, ctx->detected[bit]);
    }

    *len = p - start;

    return (p == start) ? NULL : start;
}


/*
 * The matches' order: by start, the longer first, then as they came (the
 * insertion sort's, stable)
 */

static int ngx_libc_cdecl
ngx_http_ai_prompt_guard_order(const void *one, const void *two)
{
    const ngx_http_ai_pg_match_at_t  *a = one, *b = two;

    if (a->start != b->start) {
        return (a->start < b->start) ? -1 : 1;
    }

    if (a->len != b->len) {
        return (a->len > b->len) ? -1 : 1;
    }

    return (a->rank < b->rank) ? -1 : (a->rank > b->rank);
}


/*
 * The masks of a request are found in two trees of ngx_str_node_t, by
 * their label and value (the masking: the same value, the same
 * placeholder) and by their placeholder (the restore)
 */

ngx_http_ai_pg_mask_t *
ngx_http_ai_prompt_guard_holder(ngx_http_ai_pg_ctx_t *ctx, u_char *data,
    size_t len)
{
    ngx_str_t                    key;
    ngx_http_ai_pg_mask_node_t  *node;

    key.data = data;
    key.len = len;

    node = (ngx_http_ai_pg_mask_node_t *)
               ngx_str_rbtree_lookup(&ctx->by_holder, &key,
                                     ngx_crc32_short(data, len));

    if (node == NULL) {
        return NULL;
    }

    return (ngx_http_ai_pg_mask_t *) ctx->masks.elts + node->index;
}


/* LABEL "\0" VALUE: a value's key among the masks, in the pool */

static ngx_int_t
ngx_http_ai_prompt_guard_value_key(ngx_pool_t *pool, ngx_str_t *label,
    ngx_str_t *value, ngx_str_t *key)
{
    u_char  *p;

    key->len = label->len + 1 + value->len;
    key->data = ngx_pnalloc(pool, key->len);
    if (key->data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(key->data, label->data, label->len);
    *p++ = '\0';
    ngx_memcpy(p, value->data, value->len);

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_prompt_guard_insert(ngx_pool_t *pool, ngx_rbtree_t *tree,
    ngx_str_t *key, ngx_uint_t index)
{
    ngx_http_ai_pg_mask_node_t  *node;

    node = ngx_palloc(pool, sizeof(ngx_http_ai_pg_mask_node_t));
    if (node == NULL) {
        return NGX_ERROR;
    }

    node->sn.str = *key;
    node->sn.node.key = ngx_crc32_short(key->data, key->len);
    node->index = index;

    ngx_rbtree_insert(tree, &node->sn.node);

    return NGX_OK;
}
