
/*
 * Copyright (C) AI Gateway authors
 *
 * ngx_http_ai_prompt_guard_module: rules on what goes to the model and on
 * what comes back, in every door and through translation:
 *
 *     ai_prompt_guard_rule NAME regex=PATTERN | detect=NAME[,NAME...]
 *                          [type=deny|allow] [action=block|mask|hash|log]
 *                          [roles=all|system,user,assistant,tool]
 *                          [scope=all|last] [message=TEXT]
 *                          [fail=open|closed];                     (http)
 *     ai_prompt_guard_set NAME RULE|SET ...;                       (http)
 *     ai_prompt_guard RULE|SET ... | off;
 *     ai_prompt_guard_output RULE|SET ... | off;
 *     ai_prompt_guard_restore on|off;
 *     ai_prompt_guard_window SIZE;
 *     ai_prompt_guard_log_level LEVEL;
 *     ai_prompt_guard_match_limit NUMBER;                          (http)
 *
 * The core's GUARD stage runs the input rules on every text of the
 * request (ngx_http_ai_prompt_guard_request.c) and blocks it, or hands the
 * core the masked body; the output rules and the restore of placeholders
 * run as a delta filter (ngx_http_ai_prompt_guard_output.c).  The verdict
 * is the outcome "guard" (passed, logged, masked, blocked), the first rule
 * that hit "guard_rule", what the detectors found "guard_detectors"
 * ("EMAIL:2,CARD:1"); log lines name rules, never what matched.
 */


#include "ngx_http_ai_prompt_guard.h"


static ngx_int_t ngx_http_ai_prompt_guard_stage(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ai);
static ngx_int_t ngx_http_ai_prompt_guard_block(ngx_http_request_t *r,
    ngx_http_ai_pg_ctx_t *ctx);
static void ngx_http_ai_prompt_guard_done(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ai);
static void ngx_http_ai_prompt_guard_detectors(ngx_http_request_t *r,
    ngx_http_ai_pg_ctx_t *ctx);
static void ngx_http_ai_prompt_guard_outcome(ngx_http_request_t *r,
    const char *name, ngx_str_t *value);

static char *ngx_http_ai_prompt_guard_rule(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_ai_prompt_guard_set(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_ai_prompt_guard_rules(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_ai_prompt_guard_add(ngx_conf_t *cf,
    ngx_http_ai_pg_main_conf_t *pmcf, ngx_array_t *to, ngx_str_t *name,
    const char *directive);
static ngx_int_t ngx_http_ai_prompt_guard_roles(ngx_str_t *s,
    ngx_uint_t *roles);
static char *ngx_http_ai_prompt_guard_log_level(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static void ngx_http_ai_prompt_guard_pcre_free(void *data);
static ngx_int_t ngx_http_ai_prompt_guard_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_ai_prompt_guard_postconfiguration(ngx_conf_t *cf);
static void *ngx_http_ai_prompt_guard_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_ai_prompt_guard_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_ai_prompt_guard_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);


static ngx_str_t  ngx_http_ai_prompt_guard_help =
    ngx_string("Matches of each prompt guard rule");

static ngx_str_t  ngx_http_ai_prompt_guard_default_message =
    ngx_string("The request was blocked by the gateway's content policy.");

static ngx_conf_num_bounds_t  ngx_http_ai_prompt_guard_limit_bounds = {
    ngx_conf_check_num_bounds, 1000, 100000000
};


static ngx_command_t  ngx_http_ai_prompt_guard_commands[] = {

    { ngx_string("ai_prompt_guard_rule"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_ai_prompt_guard_rule,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_prompt_guard_set"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_ai_prompt_guard_set,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_prompt_guard"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_ai_prompt_guard_rules,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_pg_loc_conf_t, input),
      NULL },

    { ngx_string("ai_prompt_guard_output"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_ai_prompt_guard_rules,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_pg_loc_conf_t, output),
      NULL },

    { ngx_string("ai_prompt_guard_restore"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_pg_loc_conf_t, restore),
      NULL },

    { ngx_string("ai_prompt_guard_window"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_ai_pg_loc_conf_t, window),
      NULL },

    { ngx_string("ai_prompt_guard_log_level"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_ai_prompt_guard_log_level,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("ai_prompt_guard_match_limit"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_ai_pg_main_conf_t, match_limit),
      &ngx_http_ai_prompt_guard_limit_bounds },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_ai_prompt_guard_module_ctx = {
    ngx_http_ai_prompt_guard_preconfiguration, /* preconfiguration */
    ngx_http_ai_prompt_guard_postconfiguration, /* postconfiguration */

    ngx_http_ai_prompt_guard_create_main_conf, /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_ai_prompt_guard_create_loc_conf, /* create location conf */
    ngx_http_ai_prompt_guard_merge_loc_conf /* merge location configuration */
};


ngx_module_t  ngx_http_ai_prompt_guard_module = {
    NGX_MODULE_V1,
    &ngx_http_ai_prompt_guard_module_ctx,  /* module context */
    ngx_http_ai_prompt_guard_commands,     /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/* the GUARD stage */

static ngx_int_t
ngx_http_ai_prompt_guard_stage(ngx_http_request_t *r, ngx_http_ai_ctx_t *ai)
{
    ngx_int_t                   rc;
    ngx_str_t                   v;
    ngx_http_ai_pg_ctx_t       *ctx;
    ngx_http_ai_pg_loc_conf_t  *plcf;

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_prompt_guard_module);

    if (plcf->input == NULL && plcf->output == NULL) {
        return NGX_DECLINED;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_ai_pg_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_array_init(&ctx->masks, r->pool, 4,
                       sizeof(ngx_http_ai_pg_mask_t))
        != NGX_OK
        || ngx_array_init(&ctx->texts, r->pool, 1,
                          sizeof(ngx_http_ai_pg_text_t))
           != NGX_OK
        || ngx_array_init(&ctx->labels, r->pool, 2,
                          sizeof(ngx_http_ai_pg_label_t))
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_rbtree_init(&ctx->by_value, &ctx->value_sentinel,
                    ngx_str_rbtree_insert_value);
    ngx_rbtree_init(&ctx->by_holder, &ctx->holder_sentinel,
                    ngx_str_rbtree_insert_value);

    ctx->request = r;
    ngx_http_set_ctx(r, ctx, ngx_http_ai_prompt_guard_module);

    if (plcf->input) {
        rc = ngx_http_ai_prompt_guard_request(r, ai, ctx, plcf->input);

        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (rc == NGX_DECLINED
            || (plcf->allow && ctx->allowed == 0))
        {
            return ngx_http_ai_prompt_guard_block(r, ctx);
        }

        if (ctx->masked) {
            ngx_str_set(&v, "masked");

        } else if (ctx->hits) {
            ngx_str_set(&v, "logged");

        } else {
            ngx_str_set(&v, "passed");
        }

        ngx_http_ai_prompt_guard_outcome(r, "guard", &v);
        ngx_http_ai_prompt_guard_detectors(r, ctx);

        if (ctx->first) {
            ngx_http_ai_prompt_guard_outcome(r, "guard_rule",
                                             &ctx->first->name);

            ngx_log_error(plcf->log_level, r->connection->log, 0,
                          "ai_prompt_guard: %V by rule \"%V\" (%ui matches)",
                          &v, &ctx->first->name, ctx->hits);
        }
    }

    if (plcf->output || (plcf->restore && ctx->masks.nelts)) {
        ctx->output = 1;
        ngx_http_ai_filter_deltas(r);
    }

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_ai_prompt_guard_block(ngx_http_request_t *r,
    ngx_http_ai_pg_ctx_t *ctx)
{
    ngx_str_t                   v, *message, name;
    ngx_http_ai_pg_loc_conf_t  *plcf;

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_prompt_guard_module);

    ngx_str_set(&v, "blocked");
    ngx_http_ai_prompt_guard_outcome(r, "guard", &v);
    ngx_http_ai_prompt_guard_detectors(r, ctx);

    if (ctx->blocked) {
        name = ctx->blocked->name;
        message = &ctx->blocked->message;

    } else {
        /* allow rules exist and none matched */
        ngx_str_set(&name, "(no allow rule matched)");
        message = &ngx_http_ai_prompt_guard_default_message;
    }

    if (ctx->blocked) {
        ngx_http_ai_prompt_guard_outcome(r, "guard_rule", &name);
    }

    ngx_log_error(plcf->log_level, r->connection->log, 0,
                  "ai_prompt_guard: request blocked by rule \"%V\"", &name);

    return ngx_http_ai_error(r, NGX_HTTP_BAD_REQUEST, NULL, NULL,
                             "content_filtered", "%V", message);
}


static void
ngx_http_ai_prompt_guard_done(ngx_http_request_t *r, ngx_http_ai_ctx_t *ai)
{
    ngx_str_t              v;
    ngx_http_ai_pg_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_prompt_guard_module);

    if (ctx && ctx->output_blocked) {
        ngx_str_set(&v, "output_blocked");
        ngx_http_ai_prompt_guard_outcome(r, "guard", &v);
        ngx_http_ai_prompt_guard_detectors(r, ctx);

        if (ctx->blocked) {
            ngx_http_ai_prompt_guard_outcome(r, "guard_rule",
                                             &ctx->blocked->name);
        }
    }
}


static void
ngx_http_ai_prompt_guard_detectors(ngx_http_request_t *r,
    ngx_http_ai_pg_ctx_t *ctx)
{
    ngx_str_t  v;

    v.data = ngx_http_ai_prompt_guard_counts(r->pool, ctx, &v.len);

    if (v.data) {
        ngx_http_ai_prompt_guard_outcome(r, "guard_detectors", &v);
    }
}


static void
ngx_http_ai_prompt_guard_outcome(ngx_http_request_t *r, const char *name,
    ngx_str_t *value)
{
    ngx_str_t  n;

    n.data = (u_char *) name;
    n.len = ngx_strlen(name);

    (void) ngx_http_ai_set_outcome(r, &n, value);
}


/* configuration */

static char *
ngx_http_ai_prompt_guard_rule(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_pg_main_conf_t *pmcf = conf;

    u_char                  *p, *c;
    ngx_str_t               *value, s, pattern, counter;
    ngx_uint_t               i, d;
    ngx_http_ai_pg_rule_t   *rule, **rp;

    value = cf->args->elts;

    if (value[1].len == 0 || value[1].len > NGX_HTTP_AI_PG_LABEL_LEN) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_prompt_guard_rule: the name \"%V\" is not 1 "
                           "to %d characters", &value[1],
                           NGX_HTTP_AI_PG_LABEL_LEN);
        return NGX_CONF_ERROR;
    }

    for (i = 0; i < value[1].len; i++) {
        c = &value[1].data[i];

        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z')
              || (*c >= '0' && *c <= '9') || *c == '_' || *c == '-'))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ai_prompt_guard_rule \"%V\": a name has "
                               "letters, digits, \"_\" and \"-\" only",
                               &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    rp = pmcf->rules.elts;

    for (i = 0; i < pmcf->rules.nelts; i++) {
        if (rp[i]->name.len == value[1].len
            && ngx_strncmp(rp[i]->name.data, value[1].data, value[1].len)
               == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ai_prompt_guard_rule \"%V\" is duplicate",
                               &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    rule = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_pg_rule_t));
    if (rule == NULL) {
        return NGX_CONF_ERROR;
    }

    rule->name = value[1];
    rule->action = NGX_HTTP_AI_PG_BLOCK;
    rule->roles = NGX_HTTP_AI_PG_ROLES;
    rule->message = ngx_http_ai_prompt_guard_default_message;
    rule->file = cf->conf_file->file.name.data;
    rule->line = cf->conf_file->line;

    /* the placeholder label: the name, upper-cased, "-" as "_" */

    rule->label.data = ngx_pnalloc(cf->pool, value[1].len);
    if (rule->label.data == NULL) {
        return NGX_CONF_ERROR;
    }

    rule->label.len = value[1].len;

    for (i = 0; i < value[1].len; i++) {
        rule->label.data[i] = (value[1].data[i] == '-')
                              ? '_' : ngx_toupper(value[1].data[i]);
    }

    ngx_str_null(&pattern);

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "regex=", 6) == 0) {
            pattern.data = value[i].data + 6;
            pattern.len = value[i].len - 6;

            if (pattern.len == 0) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "detect=", 7) == 0) {
            p = value[i].data + 7;

            while (p < value[i].data + value[i].len) {
                s.data = p;

                while (p < value[i].data + value[i].len && *p != ',') {
                    p++;
                }

                s.len = p - s.data;
                p++;

                d = ngx_http_ai_pg_detector(s.data, s.len);

                if (d == 0) {
                    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                       "ai_prompt_guard_rule \"%V\": "
                                       "unknown detector \"%V\"",
                                       &value[1], &s);
                    return NGX_CONF_ERROR;
                }

                rule->detectors |= d;
            }

            continue;
        }

        if (ngx_strcmp(value[i].data, "type=deny") == 0) {
            rule->allow = 0;
            continue;
        }

        if (ngx_strcmp(value[i].data, "type=allow") == 0) {
            rule->allow = 1;
            continue;
        }

        if (ngx_strcmp(value[i].data, "action=block") == 0) {
            rule->action = NGX_HTTP_AI_PG_BLOCK;
            continue;
        }

        if (ngx_strcmp(value[i].data, "action=mask") == 0) {
            rule->action = NGX_HTTP_AI_PG_MASK;
            continue;
        }

        if (ngx_strcmp(value[i].data, "action=hash") == 0) {
            rule->action = NGX_HTTP_AI_PG_HASH;
            continue;
        }

        if (ngx_strcmp(value[i].data, "action=log") == 0) {
            rule->action = NGX_HTTP_AI_PG_LOG;
            continue;
        }

        if (ngx_strncmp(value[i].data, "roles=", 6) == 0) {
            s.data = value[i].data + 6;
            s.len = value[i].len - 6;

            if (ngx_http_ai_prompt_guard_roles(&s, &rule->roles) != NGX_OK) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strcmp(value[i].data, "scope=all") == 0) {
            rule->last = 0;
            continue;
        }

        if (ngx_strcmp(value[i].data, "scope=last") == 0) {
            rule->last = 1;
            continue;
        }

        if (ngx_strncmp(value[i].data, "message=", 8) == 0
            && value[i].len > 8)
        {
            rule->message.data = value[i].data + 8;
            rule->message.len = value[i].len - 8;
            rule->custom_message = 1;
            continue;
        }

        if (ngx_strcmp(value[i].data, "fail=open") == 0) {
            rule->fail_closed = 0;
            continue;
        }

        if (ngx_strcmp(value[i].data, "fail=closed") == 0) {
            rule->fail_closed = 1;
            continue;
        }

        goto invalid;
    }

    if ((pattern.len == 0) == (rule->detectors == 0)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "ai_prompt_guard_rule \"%V\": one of \"regex=\" "
                           "and \"detect=\" is required", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (pattern.len
        && ngx_http_ai_prompt_guard_compile(cf, rule, &pattern) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    counter.data = ngx_pnalloc(cf->pool, 64 + value[1].len);
    if (counter.data == NULL) {
        return NGX_CONF_ERROR;
    }

    counter.len = ngx_sprintf(counter.data,
                              "ai_prompt_guard_matches_total{rule=\"%V\"}",
                              &value[1])
                  - counter.data;

    rule->matched = ngx_http_ai_counter_add(cf, &counter,
                                            &ngx_http_ai_prompt_guard_help);
    if (rule->matched == NULL) {
        return NGX_CONF_ERROR;
    }

    rp = ngx_array_push(&pmcf->rules);
    if (rp == NULL) {
        return NGX_CONF_ERROR;
    }

    *rp = rule;

    return NGX_CONF_OK;

invalid:

    /* the parameter's name only: a pattern may be a secret of its own */

    p = ngx_strlchr(value[i].data, value[i].data + value[i].len, '=');

    s.data = value[i].data;
    s.len = p ? (size_t) (p - value[i].data + 1) : value[i].len;

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "ai_prompt_guard_rule \"%V\": invalid parameter "
                       "\"%V%s\"", &value[1], &s, p ? "..." : "");
    return NGX_CONF_ERROR;
}


static ngx_int_t
ngx_http_ai_prompt_guard_roles(ngx_str_t *s, ngx_uint_t *roles)
{
    u_char     *p, *last;
    ngx_str_t   r;

    if (s->len == 3 && ngx_strncmp(s->data, "all", 3) == 0) {
        *roles = NGX_HTTP_AI_PG_ROLES;
        return NGX_OK;
    }

    *roles = 0;
    p = s->data;
    last = p + s->len;

    while (p < last) {
        r.data = p;

        while (p < last && *p != ',') {
            p++;
        }

        r.len = p - r.data;
        p++;

        if (r.len == 6 && ngx_strncmp(r.data, "system", 6) == 0) {
            *roles |= NGX_HTTP_AI_PG_SYSTEM;

        } else if (r.len == 4 && ngx_strncmp(r.data, "user", 4) == 0) {
            *roles |= NGX_HTTP_AI_PG_USER;

        } else if (r.len == 9 && ngx_strncmp(r.data, "assistant", 9) == 0) {
            *roles |= NGX_HTTP_AI_PG_ASSISTANT;

        } else if (r.len == 4 && ngx_strncmp(r.data, "tool", 4) == 0) {
            *roles |= NGX_HTTP_AI_PG_TOOL;

        } else {
            return NGX_ERROR;
        }
    }

    return *roles ? NGX_OK : NGX_ERROR;
}


static char *
ngx_http_ai_prompt_guard_set(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_pg_main_conf_t *pmcf = conf;

    ngx_str_t              *value;
    ngx_uint_t              i;
    ngx_http_ai_pg_set_t   *set, **sp;

    value = cf->args->elts;

    sp = pmcf->sets.elts;

    for (i = 0; i < pmcf->sets.nelts; i++) {
        if (sp[i]->name.len == value[1].len
            && ngx_strncmp(sp[i]->name.data, value[1].data, value[1].len)
               == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ai_prompt_guard_set \"%V\" is duplicate",
                               &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    set = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_pg_set_t));
    if (set == NULL) {
        return NGX_CONF_ERROR;
    }

    set->name = value[1];

    if (ngx_array_init(&set->rules, cf->pool, 4,
                       sizeof(ngx_http_ai_pg_rule_t *))
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    for (i = 2; i < cf->args->nelts; i++) {
        if (ngx_http_ai_prompt_guard_add(cf, pmcf, &set->rules, &value[i],
                                         "ai_prompt_guard_set")
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    sp = ngx_array_push(&pmcf->sets);
    if (sp == NULL) {
        return NGX_CONF_ERROR;
    }

    *sp = set;

    return NGX_CONF_OK;
}


/* ai_prompt_guard, ai_prompt_guard_output: rules and sets, or off */

static char *
ngx_http_ai_prompt_guard_rules(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    char  *p = conf;

    ngx_str_t                    *value;
    ngx_uint_t                    i;
    ngx_array_t                 **rules;
    ngx_http_ai_pg_main_conf_t   *pmcf;

    rules = (ngx_array_t **) (p + cmd->offset);

    if (*rules != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        *rules = NULL;
        return NGX_CONF_OK;
    }

    pmcf = ngx_http_conf_get_module_main_conf(cf,
                                             ngx_http_ai_prompt_guard_module);

    *rules = ngx_array_create(cf->pool, 4, sizeof(ngx_http_ai_pg_rule_t *));
    if (*rules == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 1; i < cf->args->nelts; i++) {
        if (ngx_http_ai_prompt_guard_add(cf, pmcf, *rules, &value[i],
                                         (char *) cmd->name.data)
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    ngx_http_ai_core_enable(cf);

    return NGX_CONF_OK;
}


/* a rule, or a set's rules, appended once each */

static ngx_int_t
ngx_http_ai_prompt_guard_add(ngx_conf_t *cf,
    ngx_http_ai_pg_main_conf_t *pmcf, ngx_array_t *to, ngx_str_t *name,
    const char *directive)
{
    ngx_uint_t               i, j, k, found;
    ngx_array_t              one;
    ngx_http_ai_pg_set_t   **sp;
    ngx_http_ai_pg_rule_t  **rp, **add, **tp;

    found = 0;
    add = NULL;
    k = 0;

    rp = pmcf->rules.elts;

    for (i = 0; i < pmcf->rules.nelts; i++) {
        if (rp[i]->name.len == name->len
            && ngx_strncmp(rp[i]->name.data, name->data, name->len) == 0)
        {
            one.elts = &rp[i];
            one.nelts = 1;
            add = one.elts;
            k = 1;
            found = 1;
            break;
        }
    }

    sp = pmcf->sets.elts;

    for (i = 0; !found && i < pmcf->sets.nelts; i++) {
        if (sp[i]->name.len == name->len
            && ngx_strncmp(sp[i]->name.data, name->data, name->len) == 0)
        {
            add = sp[i]->rules.elts;
            k = sp[i]->rules.nelts;
            found = 1;
        }
    }

    if (!found) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "%s: unknown rule or set \"%V\" (define it with "
                           "ai_prompt_guard_rule or ai_prompt_guard_set "
                           "before)", directive, name);
        return NGX_ERROR;
    }

    for (j = 0; j < k; j++) {
        tp = to->elts;

        for (i = 0; i < to->nelts; i++) {
            if (tp[i] == add[j]) {
                break;
            }
        }

        if (i < to->nelts) {
            continue;
        }

        tp = ngx_array_push(to);
        if (tp == NULL) {
            return NGX_ERROR;
        }

        *tp = add[j];
    }

    return NGX_OK;
}


static char *
ngx_http_ai_prompt_guard_log_level(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_ai_pg_loc_conf_t *plcf = conf;

    ngx_str_t   *value;
    ngx_uint_t   i;

    static const char  *levels[] = {
        "", "emerg", "alert", "crit", "error", "warn", "notice", "info",
        "debug"
    };

    if (plcf->log_level != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (i = 1; i < sizeof(levels) / sizeof(levels[0]); i++) {
        if (ngx_strcmp(value[1].data, levels[i]) == 0) {
            plcf->log_level = i;
            return NGX_CONF_OK;
        }
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "ai_prompt_guard_log_level: invalid value \"%V\"",
                       &value[1]);
    return NGX_CONF_ERROR;
}


static ngx_int_t
ngx_http_ai_prompt_guard_preconfiguration(ngx_conf_t *cf)
{
    return ngx_http_ai_core_require(cf, "ngx_http_ai_prompt_guard_module");
}


static ngx_int_t
ngx_http_ai_prompt_guard_postconfiguration(ngx_conf_t *cf)
{
    ngx_pool_cleanup_t          *cln;
    ngx_http_ai_pg_main_conf_t  *pmcf;

    pmcf = ngx_http_conf_get_module_main_conf(cf,
                                             ngx_http_ai_prompt_guard_module);

    if (ngx_http_ai_add_stage(cf, NGX_HTTP_AI_STAGE_GUARD,
                              ngx_http_ai_prompt_guard_stage)
        != NGX_OK
        || ngx_http_ai_add_delta_filter(cf, NGX_HTTP_AI_DELTA_GUARD,
                                        ngx_http_ai_prompt_guard_filter)
           != NGX_OK
        || ngx_http_ai_add_done(cf, NGX_HTTP_AI_DONE_STORE,
                                ngx_http_ai_prompt_guard_done)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (pmcf->rules.nelts == 0) {
        return NGX_OK;
    }

    /* one match data and context for the worker: a match at a time */

    ngx_conf_init_uint_value(pmcf->match_limit, 100000);

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    cln->handler = ngx_http_ai_prompt_guard_pcre_free;
    cln->data = pmcf;

    pmcf->md = pcre2_match_data_create(1, NULL);
    pmcf->mctx = pcre2_match_context_create(NULL);
    pmcf->jit = pcre2_jit_stack_create(32 * 1024, 512 * 1024, NULL);

    if (pmcf->md == NULL || pmcf->mctx == NULL) {
        return NGX_ERROR;
    }

    /* a catastrophic pattern is cut off, JIT or not */

    pcre2_set_match_limit(pmcf->mctx, pmcf->match_limit);
    pcre2_set_depth_limit(pmcf->mctx, pmcf->match_limit / 10);

    if (pmcf->jit) {
        pcre2_jit_stack_assign(pmcf->mctx, NULL, pmcf->jit);
    }

    return NGX_OK;
}


static void
ngx_http_ai_prompt_guard_pcre_free(void *data)
{
    ngx_http_ai_pg_main_conf_t *pmcf = data;

    if (pmcf->md) {
        pcre2_match_data_free(pmcf->md);
    }

    if (pmcf->mctx) {
        pcre2_match_context_free(pmcf->mctx);
    }

    if (pmcf->jit) {
        pcre2_jit_stack_free(pmcf->jit);
    }
}


static void *
ngx_http_ai_prompt_guard_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_ai_pg_main_conf_t  *pmcf;

    pmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_pg_main_conf_t));
    if (pmcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&pmcf->rules, cf->pool, 8,
                       sizeof(ngx_http_ai_pg_rule_t *))
        != NGX_OK
        || ngx_array_init(&pmcf->sets, cf->pool, 4,
                          sizeof(ngx_http_ai_pg_set_t *))
           != NGX_OK)
    {
        return NULL;
    }

    pmcf->match_limit = NGX_CONF_UNSET_UINT;

    return pmcf;
}


static void *
ngx_http_ai_prompt_guard_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_ai_pg_loc_conf_t  *plcf;

    plcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_pg_loc_conf_t));
    if (plcf == NULL) {
        return NULL;
    }

    plcf->input = NGX_CONF_UNSET_PTR;
    plcf->output = NGX_CONF_UNSET_PTR;
    plcf->restore = NGX_CONF_UNSET;
    plcf->window = NGX_CONF_UNSET_SIZE;
    plcf->log_level = NGX_CONF_UNSET_UINT;

    return plcf;
}


static char *
ngx_http_ai_prompt_guard_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_ai_pg_loc_conf_t *prev = parent;
    ngx_http_ai_pg_loc_conf_t *conf = child;

    ngx_uint_t               i;
    ngx_http_ai_pg_rule_t  **rp;

    ngx_conf_merge_ptr_value(conf->input, prev->input, NULL);
    ngx_conf_merge_ptr_value(conf->output, prev->output, NULL);
    ngx_conf_merge_value(conf->restore, prev->restore, 1);
    ngx_conf_merge_size_value(conf->window, prev->window, 256);
    ngx_conf_merge_uint_value(conf->log_level, prev->log_level,
                              NGX_LOG_WARN);

    conf->allow = 0;

    if (conf->input) {
        rp = conf->input->elts;

        for (i = 0; i < conf->input->nelts; i++) {
            conf->allow += rp[i]->allow;
        }
    }

    conf->reach = 0;
    conf->secrets = 0;

    if (conf->output) {
        conf->reach = ngx_http_ai_prompt_guard_reach(conf->output,
                                                     conf->window);
        rp = conf->output->elts;

        for (i = 0; i < conf->output->nelts; i++) {
            conf->secrets |= (rp[i]->detectors & NGX_HTTP_AI_PG_SECRET) != 0;
        }
    }

    return NGX_CONF_OK;
}
