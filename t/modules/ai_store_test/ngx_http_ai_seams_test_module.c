
/*
 * Copyright (C) AI Gateway authors
 *
 * Test-only: drives the core's seams from the configuration, so that the
 * suite can check them.
 *
 * Two request stages, registered in the reverse of their order (CACHE
 * first, then GUARD), so that the suite sees the declared order win:
 *
 *   ai_test_stage guard|cache decline | suspend=MS | reject=STATUS
 *                             | answer=TEXT | mutate | render=JSON | keep;
 *
 * render=JSON answers as a cache hit does: JSON is a complete OpenAI
 * answer, rendered by the core's format layer in the door's format, as a
 * stream (ngx_http_ai_render_stream) when the request asked for one.
 *
 * mutate replaces every "secret" in the request body with "[MASKED]"
 * through ngx_http_ai_request_set_body() and declines.
 *
 * keep calls ngx_http_ai_request_keep() and declines.
 *
 * suspend=MS waits on a timer, then resumes through ngx_http_ai_resume();
 * a pool cleanup cancels the timer if the request goes first.  Each stage
 * appends its name and what it did to $ai_test_trace, and publishes what
 * it did last as its outcome ($ai_outcome_guard, $ai_outcome_cache).
 *
 * Where no ai_test_stage is set, the module does nothing.  A completion
 * ("done") handler logs, at notice:
 *   ai_test done: status=S answered=A complete=C trace=T
 *   tree=kept|freed model=M user=U roles=R,...
 * and publishes the outcome ("test_done", "settled"), which ai_log's
 * record, written by the last completion handler, must show.
 */


#include "ngx_http_ai_core.h"


#define NGX_HTTP_AI_TEST_DECLINE   0
#define NGX_HTTP_AI_TEST_SUSPEND   1
#define NGX_HTTP_AI_TEST_REJECT    2
#define NGX_HTTP_AI_TEST_ANSWER    3
#define NGX_HTTP_AI_TEST_MUTATE    4
#define NGX_HTTP_AI_TEST_RENDER    5
#define NGX_HTTP_AI_TEST_KEEP      6

#define NGX_HTTP_AI_TEST_GUARD     0
#define NGX_HTTP_AI_TEST_CACHE     1


typedef struct {
    ngx_uint_t                  action;
    ngx_msec_t                  delay;
    ngx_uint_t                  status;
    ngx_str_t                   text;
} ngx_http_ai_seams_test_action_t;


typedef struct {
    ngx_http_ai_seams_test_action_t  stages[2];
    ngx_uint_t                       on;    /* an ai_test_stage is set */
} ngx_http_ai_seams_test_loc_conf_t;


typedef struct {
    ngx_http_request_t         *request;
    ngx_event_t                 timer;
    u_char                      trace[128];
    u_char                     *last;
    unsigned                    resumed:1;
} ngx_http_ai_seams_test_ctx_t;


static ngx_int_t ngx_http_ai_seams_test_guard(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ai);
static ngx_int_t ngx_http_ai_seams_test_cache(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ai);
static ngx_int_t ngx_http_ai_seams_test_stage(ngx_http_request_t *r,
    ngx_uint_t stage, const char *name);
static ngx_int_t ngx_http_ai_seams_test_act(ngx_http_request_t *r,
    ngx_uint_t stage, const char *name);
static ngx_int_t ngx_http_ai_seams_test_mutate(ngx_http_request_t *r);
static ngx_int_t ngx_http_ai_seams_test_render(ngx_http_request_t *r,
    ngx_str_t *answer);
static ngx_http_ai_seams_test_ctx_t *ngx_http_ai_seams_test_get_ctx(
    ngx_http_request_t *r);
static void ngx_http_ai_seams_test_resume(ngx_event_t *ev);
static void ngx_http_ai_seams_test_cleanup(void *data);
static void ngx_http_ai_seams_test_done(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ai);
static ngx_int_t ngx_http_ai_seams_test_trace_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_ai_seams_test_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_ai_seams_test_postconfiguration(ngx_conf_t *cf);
static void *ngx_http_ai_seams_test_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_ai_seams_test_stage_conf(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);


static ngx_command_t  ngx_http_ai_seams_test_commands[] = {

    { ngx_string("ai_test_stage"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE2,
      ngx_http_ai_seams_test_stage_conf,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_ai_seams_test_module_ctx = {
    ngx_http_ai_seams_test_preconfiguration, /* preconfiguration */
    ngx_http_ai_seams_test_postconfiguration, /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_ai_seams_test_create_loc_conf, /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_ai_seams_test_module = {
    NGX_MODULE_V1,
    &ngx_http_ai_seams_test_module_ctx,    /* module context */
    ngx_http_ai_seams_test_commands,       /* module directives */
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


static ngx_str_t  ngx_http_ai_seams_test_trace_name =
    ngx_string("ai_test_trace");
static ngx_str_t  ngx_http_ai_seams_test_done_name = ngx_string("test_done");
static ngx_str_t  ngx_http_ai_seams_test_done_value = ngx_string("settled");


static ngx_int_t
ngx_http_ai_seams_test_guard(ngx_http_request_t *r, ngx_http_ai_ctx_t *ai)
{
    return ngx_http_ai_seams_test_stage(r, NGX_HTTP_AI_TEST_GUARD, "guard");
}


static ngx_int_t
ngx_http_ai_seams_test_cache(ngx_http_request_t *r, ngx_http_ai_ctx_t *ai)
{
    return ngx_http_ai_seams_test_stage(r, NGX_HTTP_AI_TEST_CACHE, "cache");
}


static ngx_str_t  ngx_http_ai_seams_test_stage_names[] = {
    ngx_string("guard"),
    ngx_string("cache")
};


static ngx_str_t  ngx_http_ai_seams_test_actions[] = {
    ngx_string("declined"),
    ngx_string("suspended"),
    ngx_string("rejected"),
    ngx_string("answered"),
    ngx_string("mutated"),
    ngx_string("rendered"),
    ngx_string("kept")
};


static ngx_int_t
ngx_http_ai_seams_test_stage(ngx_http_request_t *r, ngx_uint_t stage,
    const char *name)
{
    ngx_http_ai_seams_test_loc_conf_t  *tlcf;

    tlcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_seams_test_module);

    if (!tlcf->on) {
        return NGX_DECLINED;
    }

    if (ngx_http_ai_set_outcome(r, &ngx_http_ai_seams_test_stage_names[stage],
                            &ngx_http_ai_seams_test_actions[
                                                tlcf->stages[stage].action])
        == NGX_ERROR)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_ai_seams_test_act(r, stage, name);
}


static ngx_int_t
ngx_http_ai_seams_test_act(ngx_http_request_t *r, ngx_uint_t stage,
    const char *name)
{
    ngx_buf_t                          *b;
    ngx_int_t                           rc;
    ngx_chain_t                         out;
    ngx_pool_cleanup_t                 *cln;
    ngx_http_ai_seams_test_ctx_t       *ctx;
    ngx_http_ai_seams_test_action_t    *a;
    ngx_http_ai_seams_test_loc_conf_t  *tlcf;

    tlcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_seams_test_module);
    a = &tlcf->stages[stage];

    ctx = ngx_http_ai_seams_test_get_ctx(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    switch (a->action) {

    case NGX_HTTP_AI_TEST_SUSPEND:

        if (ctx->resumed) {
            ctx->resumed = 0;
            ctx->last = ngx_slprintf(ctx->last, ctx->trace + sizeof(ctx->trace),
                                     "%s:resumed ", name);
            return NGX_DECLINED;
        }

        cln = ngx_pool_cleanup_add(r->pool, 0);
        if (cln == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        cln->handler = ngx_http_ai_seams_test_cleanup;
        cln->data = ctx;

        ctx->timer.handler = ngx_http_ai_seams_test_resume;
        ctx->timer.data = ctx;
        ctx->timer.log = r->connection->log;

        ngx_add_timer(&ctx->timer, a->delay);

        ctx->last = ngx_slprintf(ctx->last, ctx->trace + sizeof(ctx->trace),
                                 "%s:suspended ", name);
        return NGX_AGAIN;

    case NGX_HTTP_AI_TEST_REJECT:
        ctx->last = ngx_slprintf(ctx->last, ctx->trace + sizeof(ctx->trace),
                                 "%s:rejected ", name);

        return ngx_http_ai_error(r, a->status, NULL, NULL, NULL,
                                 "rejected by the test %s stage", name);

    case NGX_HTTP_AI_TEST_ANSWER:
        ctx->last = ngx_slprintf(ctx->last, ctx->trace + sizeof(ctx->trace),
                                 "%s:answered ", name);

        b = ngx_create_temp_buf(r->pool, a->text.len + 1);
        if (b == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        b->last = ngx_cpymem(b->last, a->text.data, a->text.len);
        *b->last++ = LF;
        b->last_buf = 1;
        b->last_in_chain = 1;

        r->headers_out.status = NGX_HTTP_OK;
        r->headers_out.content_length_n = b->last - b->pos;
        ngx_str_set(&r->headers_out.content_type, "text/plain");

        rc = ngx_http_send_header(r);

        if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
            return rc;
        }

        out.buf = b;
        out.next = NULL;

        return ngx_http_output_filter(r, &out);

    case NGX_HTTP_AI_TEST_MUTATE:
        ctx->last = ngx_slprintf(ctx->last, ctx->trace + sizeof(ctx->trace),
                                 "%s:mutated ", name);

        return ngx_http_ai_seams_test_mutate(r);

    case NGX_HTTP_AI_TEST_RENDER:
        ctx->last = ngx_slprintf(ctx->last, ctx->trace + sizeof(ctx->trace),
                                 "%s:rendered ", name);

        return ngx_http_ai_seams_test_render(r, &a->text);

    case NGX_HTTP_AI_TEST_KEEP:
        ctx->last = ngx_slprintf(ctx->last, ctx->trace + sizeof(ctx->trace),
                                 "%s:kept ", name);

        ngx_http_ai_request_keep(r);
        return NGX_DECLINED;

    default: /* NGX_HTTP_AI_TEST_DECLINE */
        ctx->last = ngx_slprintf(ctx->last, ctx->trace + sizeof(ctx->trace),
                                 "%s:declined ", name);
        return NGX_DECLINED;
    }
}


static ngx_int_t
ngx_http_ai_seams_test_mutate(ngx_http_request_t *r)
{
    u_char             *p, *q, *last, *found;
    size_t              n;
    ngx_str_t           body, err;
    ngx_http_ai_ctx_t  *ai;

    ai = ngx_http_ai_get_ctx(r);

    n = 0;
    p = ai->req.body.data;
    last = p + ai->req.body.len;

    while ((found = ngx_strlcasestrn(p, last, (u_char *) "secret", 6 - 1))) {
        n++;
        p = found + 6;
    }

    body.len = ai->req.body.len + n * (sizeof("[MASKED]") - 1 - 6);
    body.data = ngx_pnalloc(r->pool, body.len);
    if (body.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ai->req.body.data;
    q = body.data;

    while ((found = ngx_strlcasestrn(p, last, (u_char *) "secret", 6 - 1))) {
        q = ngx_cpymem(q, p, found - p);
        q = ngx_cpymem(q, "[MASKED]", sizeof("[MASKED]") - 1);
        p = found + 6;
    }

    ngx_memcpy(q, p, last - p);

    if (ngx_http_ai_request_set_body(r, &body, &err) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "ai_test: the mutated body was refused: %V", &err);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_DECLINED;
}


/* a cache hit: the answer in the door's format, streamed if asked */

static ngx_int_t
ngx_http_ai_seams_test_render(ngx_http_request_t *r, ngx_str_t *answer)
{
    ngx_int_t  rc;

    rc = ngx_http_ai_send_answer(r, NGX_HTTP_AI_FMT_OPENAI, answer);

    return (rc == NGX_DECLINED) ? NGX_HTTP_INTERNAL_SERVER_ERROR : rc;
}


static ngx_http_ai_seams_test_ctx_t *
ngx_http_ai_seams_test_get_ctx(ngx_http_request_t *r)
{
    ngx_http_ai_seams_test_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_seams_test_module);

    if (ctx) {
        return ctx;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_ai_seams_test_ctx_t));
    if (ctx == NULL) {
        return NULL;
    }

    ctx->request = r;
    ctx->last = ctx->trace;

    ngx_http_set_ctx(r, ctx, ngx_http_ai_seams_test_module);

    return ctx;
}


static void
ngx_http_ai_seams_test_resume(ngx_event_t *ev)
{
    ngx_http_ai_seams_test_ctx_t *ctx = ev->data;

    ctx->resumed = 1;

    ngx_http_ai_resume(ctx->request);
}


static void
ngx_http_ai_seams_test_cleanup(void *data)
{
    ngx_http_ai_seams_test_ctx_t *ctx = data;

    if (ctx->timer.timer_set) {
        ngx_del_timer(&ctx->timer);

        ngx_log_error(NGX_LOG_NOTICE, ctx->request->connection->log, 0,
                      "ai_test: a suspended stage was cancelled");
    }
}


static void
ngx_http_ai_seams_test_done(ngx_http_request_t *r, ngx_http_ai_ctx_t *ai)
{
    u_char                             *p, roles[64];
    ngx_str_t                           trace;
    ngx_uint_t                          i;
    ngx_http_ai_message_t              *m;
    ngx_http_ai_seams_test_ctx_t       *ctx;
    ngx_http_ai_seams_test_loc_conf_t  *tlcf;

    tlcf = ngx_http_get_module_loc_conf(r, ngx_http_ai_seams_test_module);

    if (!tlcf->on) {
        return;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_seams_test_module);

    ngx_str_null(&trace);

    if (ctx) {
        trace.data = ctx->trace;
        trace.len = ctx->last - ctx->trace;
    }

    /* before ai_log's record, which must show it */
    (void) ngx_http_ai_set_outcome(r, &ngx_http_ai_seams_test_done_name,
                                   &ngx_http_ai_seams_test_done_value);

    /* what of the view a module may still read once the tree is freed */

    p = roles;
    m = ai->req.parsed ? ai->req.messages.elts : NULL;

    for (i = 0; m && i < ai->req.messages.nelts; i++) {
        p = ngx_slprintf(p, roles + sizeof(roles), "%s%V", i ? "," : "",
                         &m[i].role);
    }

    ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                  "ai_test done: status=%ui answered=%ui complete=%ui "
                  "trace=%V tree=%s model=%V user=%V roles=%*s",
                  r->headers_out.status ? r->headers_out.status
                                        : (ngx_uint_t) r->err_status,
                  (ngx_uint_t) ai->answered, (ngx_uint_t) ai->resp_done,
                  &trace,
                  ngx_http_ai_request_tree(&ai->req) ? "kept" : "freed",
                  &ai->req.model,
                  &ai->req.user, (size_t) (p - roles), roles);
}


static ngx_int_t
ngx_http_ai_seams_test_trace_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_ai_seams_test_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_ai_seams_test_module);

    if (ctx == NULL || ctx->last == ctx->trace) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->data = ctx->trace;
    v->len = ctx->last - ctx->trace - 1;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_seams_test_preconfiguration(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var;

    if (ngx_http_ai_core_require(cf, "ngx_http_ai_seams_test_module")
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    var = ngx_http_add_variable(cf, &ngx_http_ai_seams_test_trace_name,
                                NGX_HTTP_VAR_NOCACHEABLE);
    if (var == NULL) {
        return NGX_ERROR;
    }

    var->get_handler = ngx_http_ai_seams_test_trace_variable;

    return NGX_OK;
}


static ngx_int_t
ngx_http_ai_seams_test_postconfiguration(ngx_conf_t *cf)
{
    /* the reverse of the declared order: the core must sort them */

    if (ngx_http_ai_add_stage(cf, NGX_HTTP_AI_STAGE_CACHE,
                              ngx_http_ai_seams_test_cache)
        != NGX_OK
        || ngx_http_ai_add_stage(cf, NGX_HTTP_AI_STAGE_GUARD,
                                 ngx_http_ai_seams_test_guard)
           != NGX_OK
        || ngx_http_ai_add_done(cf, NGX_HTTP_AI_DONE_SETTLE,
                                ngx_http_ai_seams_test_done)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void *
ngx_http_ai_seams_test_create_loc_conf(ngx_conf_t *cf)
{
    return ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_seams_test_loc_conf_t));
}


static char *
ngx_http_ai_seams_test_stage_conf(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_ai_seams_test_loc_conf_t *tlcf = conf;

    ngx_int_t                         n;
    ngx_str_t                        *value;
    ngx_http_ai_seams_test_action_t  *a;

    value = cf->args->elts;

    tlcf->on = 1;

    if (ngx_strcmp(value[1].data, "guard") == 0) {
        a = &tlcf->stages[NGX_HTTP_AI_TEST_GUARD];

    } else if (ngx_strcmp(value[1].data, "cache") == 0) {
        a = &tlcf->stages[NGX_HTTP_AI_TEST_CACHE];

    } else {
        return "has an unknown stage";
    }

    if (ngx_strcmp(value[2].data, "decline") == 0) {
        a->action = NGX_HTTP_AI_TEST_DECLINE;
        return NGX_CONF_OK;
    }

    if (ngx_strcmp(value[2].data, "mutate") == 0) {
        a->action = NGX_HTTP_AI_TEST_MUTATE;
        return NGX_CONF_OK;
    }

    if (ngx_strcmp(value[2].data, "keep") == 0) {
        a->action = NGX_HTTP_AI_TEST_KEEP;
        return NGX_CONF_OK;
    }

    if (ngx_strncmp(value[2].data, "suspend=", 8) == 0) {
        n = ngx_atoi(value[2].data + 8, value[2].len - 8);
        if (n == NGX_ERROR) {
            return "has an invalid delay";
        }

        a->action = NGX_HTTP_AI_TEST_SUSPEND;
        a->delay = (ngx_msec_t) n;
        return NGX_CONF_OK;
    }

    if (ngx_strncmp(value[2].data, "reject=", 7) == 0) {
        n = ngx_atoi(value[2].data + 7, value[2].len - 7);
        if (n < 400 || n > 599) {
            return "has an invalid status";
        }

        a->action = NGX_HTTP_AI_TEST_REJECT;
        a->status = (ngx_uint_t) n;
        return NGX_CONF_OK;
    }

    if (ngx_strncmp(value[2].data, "render=", 7) == 0) {
        a->action = NGX_HTTP_AI_TEST_RENDER;
        a->text.data = value[2].data + 7;
        a->text.len = value[2].len - 7;
        return NGX_CONF_OK;
    }

    if (ngx_strncmp(value[2].data, "answer=", 7) == 0) {
        a->action = NGX_HTTP_AI_TEST_ANSWER;
        a->text.data = value[2].data + 7;
        a->text.len = value[2].len - 7;
        return NGX_CONF_OK;
    }

    return "has an unknown action";
}
