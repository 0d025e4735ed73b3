
/*
 * Copyright (C) AI Gateway authors
 *
 * ngx_http_ai_prompt_guard_module's own declarations (private).
 */


#ifndef _NGX_HTTP_AI_PROMPT_GUARD_H_INCLUDED_
#define _NGX_HTTP_AI_PROMPT_GUARD_H_INCLUDED_


#include "ngx_http_ai_core.h"

#define PCRE2_CODE_UNIT_WIDTH  8
#include <pcre2.h>

#include "ngx_http_ai_prompt_guard_detect.h"


/* the roles a rule applies to */
#define NGX_HTTP_AI_PG_SYSTEM           0x01
#define NGX_HTTP_AI_PG_USER             0x02
#define NGX_HTTP_AI_PG_ASSISTANT        0x04
#define NGX_HTTP_AI_PG_TOOL             0x08
#define NGX_HTTP_AI_PG_ROLES            0x0f

/* what a match does */
#define NGX_HTTP_AI_PG_BLOCK            0
#define NGX_HTTP_AI_PG_MASK             1
#define NGX_HTTP_AI_PG_HASH             2
#define NGX_HTTP_AI_PG_LOG              3

/*
 * the matches of one text: so many on the stack, then in the request's
 * pool, 16 times more each time, up to the most a text may have (a text
 * with more is refused: the rules are not checked in part)
 */
#define NGX_HTTP_AI_PG_MATCHES          256
#define NGX_HTTP_AI_PG_MATCHES_MAX      65536

/* the longest placeholder label: a rule's name, upper-cased */
#define NGX_HTTP_AI_PG_LABEL_LEN        48

/* a count of matches per detector bit (NGX_HTTP_AI_PG_ALL), ctx->detected */
#define NGX_HTTP_AI_PG_NDETECTORS       16


typedef struct {
    ngx_str_t                   name;
    ngx_str_t                   label;      /* placeholders: [LABEL_1] */
    pcre2_code                 *re;         /* regex=, or NULL */
    ngx_uint_t                  detectors;  /* detect=, NGX_HTTP_AI_PG_* */
    ngx_uint_t                  action;
    ngx_uint_t                  roles;
    ngx_str_t                   message;    /* a block's, to the client */
    ngx_http_ai_counter_t      *matched;
    u_char                     *file;       /* where it was defined */
    ngx_uint_t                  line;
    unsigned                    allow:1;
    unsigned                    last:1;     /* scope=last */
    unsigned                    fail_closed:1;
    unsigned                    custom_message:1;
    unsigned                    jit:1;      /* re is JIT-compiled */
} ngx_http_ai_pg_rule_t;


/* a named list of rules (ai_prompt_guard_set), or a rule on its own */

typedef struct {
    ngx_str_t                   name;
    ngx_array_t                 rules;      /* ngx_http_ai_pg_rule_t * */
} ngx_http_ai_pg_set_t;


typedef struct {
    ngx_array_t                 rules;      /* ngx_http_ai_pg_rule_t * */
    ngx_array_t                 sets;       /* ngx_http_ai_pg_set_t * */
    pcre2_match_context        *mctx;
    pcre2_jit_stack            *jit;
    pcre2_match_data           *md;
    ngx_uint_t                  match_limit;
    ngx_uint_t                  depth_limit;
} ngx_http_ai_pg_main_conf_t;


typedef struct {
    ngx_array_t                *input;      /* ngx_http_ai_pg_rule_t * */
    ngx_array_t                *output;
    ngx_flag_t                  restore;
    size_t                      window;     /* output regexes' hold-back */
    size_t                      reach;      /* the output rules' */
    ngx_uint_t                  secrets;    /* unsigned  secrets:1; */
    ngx_uint_t                  allow;      /* input allow rules */
    ngx_uint_t                  log_level;
} ngx_http_ai_pg_loc_conf_t;


/* a value masked in the request: its placeholder and what it stood for */

typedef struct {
    ngx_str_t                   placeholder;
    ngx_str_t                   value;
} ngx_http_ai_pg_mask_t;


/*
 * a mask in a tree of ngx_str_node_t (a lookup is O(log n) whatever the
 * hashes: colliding ones are ordered by their strings)
 */

typedef struct {
    ngx_str_node_t              sn;
    ngx_uint_t                  index;      /* in ctx->masks */
} ngx_http_ai_pg_mask_node_t;


/* a placeholder label's count of values, for the next one's number */

typedef struct {
    ngx_str_t                   label;
    ngx_uint_t                  count;
} ngx_http_ai_pg_label_t;


/* the held text of an answer's text (an index), for the output filter */

typedef struct {
    ngx_uint_t                  index;
    ngx_str_t                   raw;        /* may begin a placeholder */
    ngx_str_t                   out;        /* may begin a match */
    size_t                      raw_size;
    size_t                      out_size;
} ngx_http_ai_pg_text_t;


typedef struct {
    ngx_http_request_t         *request;
    ngx_array_t                 masks;      /* ngx_http_ai_pg_mask_t */
    ngx_rbtree_t                by_value;   /* the masks by their label
                                               and value */
    ngx_rbtree_node_t           value_sentinel;
    ngx_rbtree_t                by_holder;  /* by their placeholder */
    ngx_rbtree_node_t           holder_sentinel;
    ngx_array_t                 labels;     /* ngx_http_ai_pg_label_t */
    ngx_http_ai_pg_rule_t      *blocked;
    ngx_http_ai_pg_rule_t      *first;      /* the first rule that hit */
    ngx_uint_t                  hits;
    ngx_uint_t                  detected[NGX_HTTP_AI_PG_NDETECTORS];
    ngx_uint_t                  masked;
    ngx_uint_t                  allow_rules;
    ngx_uint_t                  allowed;
    ngx_uint_t                  failed;
    size_t                      longest;    /* of the placeholders */
    ngx_array_t                 texts;      /* ngx_http_ai_pg_text_t */
    u_char                     *out;        /* the filter's output */
    size_t                      out_size;
    u_char                     *work[2];    /* held + delta, each step */
    size_t                      work_size[2];
    u_char                     *restored;   /* the restore's output */
    size_t                      restored_size;
    unsigned                    changed:1;
    unsigned                    output:1;   /* the answer is filtered */
    unsigned                    output_blocked:1;
} ngx_http_ai_pg_ctx_t;


/* what blocks a text with more matches than NGX_HTTP_AI_PG_MATCHES_MAX */
extern ngx_http_ai_pg_rule_t  ngx_http_ai_pg_too_many;


/* a match of a rule in a text */

typedef struct {
    size_t                      start;
    size_t                      len;
    ngx_http_ai_pg_rule_t      *rule;
    ngx_uint_t                  type;       /* a detector's, or 0 */
    ngx_uint_t                  rank;       /* its place before a sort */
} ngx_http_ai_pg_match_at_t;


/* a text and where it is: the scan's input */

typedef struct {
    ngx_uint_t                  role;
    uint64_t                    hash;       /* the text's, with its
                                               consumer's, if known: of
                                               the view's message */
    unsigned                    last:1;     /* of the last message */
} ngx_http_ai_pg_where_t;


ngx_http_ai_pg_mask_t *ngx_http_ai_prompt_guard_holder(
    ngx_http_ai_pg_ctx_t *ctx, u_char *data, size_t len);
ngx_int_t ngx_http_ai_prompt_guard_text(ngx_http_request_t *r,
    ngx_http_ai_pg_ctx_t *ctx, ngx_array_t *rules,
    ngx_http_ai_pg_where_t *where, ngx_str_t *text, ngx_str_t *out);
ngx_int_t ngx_http_ai_prompt_guard_match(ngx_http_request_t *r,
    ngx_http_ai_pg_ctx_t *ctx, ngx_array_t *rules,
    ngx_http_ai_pg_where_t *where, ngx_str_t *text,
    ngx_http_ai_pg_match_at_t **m, ngx_uint_t *np);
ngx_int_t ngx_http_ai_prompt_guard_apply(ngx_http_request_t *r,
    ngx_http_ai_pg_ctx_t *ctx, ngx_http_ai_pg_match_at_t *m, ngx_uint_t n,
    ngx_str_t *text, ngx_uint_t keep, ngx_str_t *out);
ngx_int_t ngx_http_ai_prompt_guard_request(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ai, ngx_http_ai_pg_ctx_t *ctx, ngx_array_t *rules);
ngx_int_t ngx_http_ai_prompt_guard_filter(ngx_http_request_t *r,
    ngx_http_ai_delta_t *delta);
ngx_int_t ngx_http_ai_prompt_guard_compile(ngx_conf_t *cf,
    ngx_http_ai_pg_rule_t *rule, ngx_str_t *pattern);
size_t ngx_http_ai_prompt_guard_reach(ngx_array_t *rules, size_t window);
u_char *ngx_http_ai_prompt_guard_counts(ngx_pool_t *pool,
    ngx_http_ai_pg_ctx_t *ctx, size_t *len);


extern ngx_module_t  ngx_http_ai_prompt_guard_module;


#endif /* _NGX_HTTP_AI_PROMPT_GUARD_H_INCLUDED_ */
