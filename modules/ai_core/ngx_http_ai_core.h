
/*
 * Copyright (C) AI Gateway authors
 *
 * The shared AI core: what every AI gateway module may use.
 *
 * The core owns a per-request context (ngx_http_ai_ctx_t).  It reads the
 * request body once, parses the JSON once into a normalized view, finds
 * the consumer, watches the response (plain JSON or SSE) to extract token
 * usage, and exposes $ai_* variables.  Around a request it offers the
 * seams modules plug into, the core knowing none of them:
 *
 *   routing     ngx_http_ai_add_router()   the served model, before ACCESS
 *   stages      ngx_http_ai_add_stage()    GUARD, LIMIT, CACHE, after
 *               ngx_http_ai_resume()       ACCESS; suspend and resume
 *   completion  ngx_http_ai_add_done()     once per request, ai_log last
 *   formats     ngx_http_ai_translate_*()  any format to any door,
 *               ngx_http_ai_stream_*()     streams included
 *   deltas      ngx_http_ai_add_delta_filter()  the answer's text, in
 *                                          order: change, hold, abort
 *   outcomes    ngx_http_ai_set_outcome()  variables, record, metrics
 *   stores      ngx_http_ai_store_op()     shm or a registered backend
 *               ngx_http_ai_store_run()
 *   counters    ngx_http_ai_counter_add()  exported by ai_log
 *   errors      ngx_http_ai_error()        in the door's shape
 *
 * Load order: ngx_http_ai_core_module.so first; every other module calls
 * ngx_http_ai_core_require() in its preconfiguration (the core's symbols
 * are weak references there, see the end of this file).
 */


#ifndef _NGX_HTTP_AI_CORE_H_INCLUDED_
#define _NGX_HTTP_AI_CORE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <cjson/cJSON.h>



/*
 * The version of this interface.  A module built against another one
 * refuses to start (ngx_http_ai_core_require()), naming both.
 */
#define NGX_HTTP_AI_CORE_API            13

extern const ngx_uint_t  ngx_http_ai_core_api_version;


/* endpoint kinds, from the request URI */
#define NGX_HTTP_AI_EP_UNKNOWN          0
#define NGX_HTTP_AI_EP_CHAT             1   /* OpenAI chat/completions */
#define NGX_HTTP_AI_EP_EMBEDDINGS       2   /* OpenAI embeddings */
#define NGX_HTTP_AI_EP_MODELS           3   /* OpenAI models */
#define NGX_HTTP_AI_EP_MESSAGES         4   /* Anthropic messages */
#define NGX_HTTP_AI_EP_GEMINI           5   /* Gemini generateContent */
#define NGX_HTTP_AI_EP_COUNT_TOKENS     6   /* Anthropic messages/
                                               count_tokens */
#define NGX_HTTP_AI_EP_RESPONSES        7   /* OpenAI responses (POST) */
#define NGX_HTTP_AI_EP_RESPONSE         8   /* OpenAI responses/{id}: GET,
                                               DELETE a stored response */


/* wire formats (of a door or of an upstream) */
#define NGX_HTTP_AI_FMT_OPENAI          0
#define NGX_HTTP_AI_FMT_ANTHROPIC       1
#define NGX_HTTP_AI_FMT_GEMINI          2
#define NGX_HTTP_AI_FMT_RESPONSES       3   /* OpenAI's Responses API */


/* ai_auth */
#define NGX_HTTP_AI_AUTH_OFF            0
#define NGX_HTTP_AI_AUTH_OPTIONAL       1
#define NGX_HTTP_AI_AUTH_REQUIRED       2


#define NGX_HTTP_AI_UNSET               -1


typedef struct {
    ngx_str_t                   role;
    ngx_str_t                   text;      /* all text parts, joined by \n */
    cJSON                      *json;      /* the message object */
    ngx_uint_t                  nparts;    /* content parts (1 for strings) */
    uint64_t                    hash;      /* ngx_http_ai_message_hash()'s,
                                              0 until asked */
    unsigned                    images:1;
    unsigned                    tool_calls:1;
    unsigned                    plain:1;   /* text is a string's own bytes
                                              in the body: nothing in it
                                              that JSON escapes */
} ngx_http_ai_message_t;


/* the normalized view of a request, built once by the core */

typedef struct {
    ngx_uint_t                  endpoint;   /* NGX_HTTP_AI_EP_* */
    ngx_uint_t                  format;     /* NGX_HTTP_AI_FMT_*: the door */

    ngx_str_t                   body;       /* the raw body, contiguous */
    cJSON                      *json;       /* parsed body, freed with r;
                                               a stream's: see
                                               ngx_http_ai_request_keep();
                                               NULL until built: read it
                                               with ngx_http_ai_request_
                                               tree() */
    ngx_pool_t                 *pool;       /* the tree is built with */

    ngx_str_t                   model;      /* lives as long as r */
    ngx_str_t                   user;       /* the end user the client
                                               names: OpenAI's "user",
                                               Anthropic's "metadata.
                                               user_id"; its first 256
                                               bytes, as long as r */
    ngx_str_t                   system;     /* top-level system text */
    ngx_array_t                 messages;   /* ngx_http_ai_message_t */

    ngx_int_t                   max_tokens; /* NGX_HTTP_AI_UNSET if absent */
    size_t                      text_len;   /* bytes of text, all messages */
    uint64_t                    scope;      /* its consumer's name, hashed
                                               with a key of its own (not
                                               ngx_http_ai_hash()'s), 0
                                               for none: in the hashes of
                                               its texts */

    unsigned                    stream:1;
    unsigned                    include_usage:1;
    unsigned                    options:1;  /* "stream_options" is there,
                                               null or not */
    unsigned                    tools:1;
    unsigned                    parsed:1;
    unsigned                    lazy:1;     /* the tree is still to build */
    unsigned                    bare:1;     /* read without a tree, and it
                                               holds nothing but "model",
                                               "messages" (each a "role"
                                               and a string "content"),
                                               "stream", "stream_options",
                                               "user" (a string) and one
                                               integer "max_tokens" or
                                               "max_completion_tokens":
                                               a module reads it all from
                                               the view */
} ngx_http_ai_request_t;


/*
 * The largest token count believed from a provider for one request; each
 * field of ngx_http_ai_usage_t is within [0, NGX_HTTP_AI_TOKENS_MAX], so
 * sums of a few of them cannot overflow.
 */
#define NGX_HTTP_AI_TOKENS_MAX          1000000000


/*
 * Usage in one shape for every provider: prompt_tokens is the whole
 * prompt, cached (read from the provider's prompt cache) and written to
 * it included, as OpenAI counts it; cached_tokens and cache_write_tokens
 * are the parts of it that were read from and written to the cache
 * (Anthropic's cache_read_input_tokens and cache_creation_input_tokens,
 * whose input_tokens counts neither; OpenAI's cached_tokens; Gemini's
 * cachedContentTokenCount); reasoning_tokens the part of
 * completion_tokens that was thinking.
 */

typedef struct {
    ngx_int_t                   prompt_tokens;
    ngx_int_t                   completion_tokens;
    ngx_int_t                   total_tokens;
    ngx_int_t                   cached_tokens;
    ngx_int_t                   reasoning_tokens;
    ngx_int_t                   cache_write_tokens;
    unsigned                    found:1;
    unsigned                    invalid:1; /* out-of-range values ignored */
    unsigned                    estimated:1; /* counted locally, see
                                                ngx_http_ai_final_usage() */
    unsigned                    refused:1; /* a count that was not one
                                              (a string, a negative, a
                                              fraction, over the maximum)
                                              ignored: the usage is short */
} ngx_http_ai_usage_t;


typedef struct ngx_http_ai_ctx_s  ngx_http_ai_ctx_t;


/*
 * A response event: one SSE event (stream) or the whole JSON body (plain).
 * Handlers get the JSON with ngx_http_ai_event_json(): it is parsed once,
 * on first use, and freed by the core after the handlers ran.  An event
 * with last set and no data tells that the response ended.
 */

typedef struct {
    ngx_str_t                   name;      /* SSE "event:", may be empty */
    ngx_str_t                   data;      /* SSE data or the whole body */
    cJSON                      *json;
    unsigned                    done:1;    /* "[DONE]" or terminal event */
    unsigned                    last:1;    /* the response ended */
    unsigned                    parsed:1;  /* json was tried */
} ngx_http_ai_event_t;


/*
 * Response event handlers, registered by modules in their
 * postconfiguration; called in registration order for each event of an
 * AI response.  A handler may append output to *out (see
 * ngx_http_ai_ctx_t.rewrite): when any handler of the request set
 * ctx->rewrite, the client gets what the handlers produced instead of
 * the upstream bytes.
 */

typedef ngx_int_t (*ngx_http_ai_event_handler_pt)(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx, ngx_http_ai_event_t *ev, ngx_chain_t ***out);


struct ngx_http_ai_ctx_s {
    ngx_http_request_t         *request;

    ngx_http_ai_request_t       req;

    ngx_str_t                   consumer;     /* "" when anonymous */

    ngx_str_t                   route_model;  /* decided by the router */

    /*
     * set by the module that answers: ai_proxy (the upstream's), a stage
     * that answers (upstream_format: the format of its answer, which the
     * core watches for usage and its end)
     */
    ngx_str_t                   provider;
    ngx_str_t                   target;
    ngx_str_t                   upstream_model;
    ngx_uint_t                  upstream_format;   /* NGX_HTTP_AI_FMT_* */
    ngx_uint_t                  attempts;

    /* response side */
    ngx_http_ai_usage_t         usage;
    size_t                      resp_size;    /* bytes seen from upstream */
    ngx_msec_t                  start;        /* request start, ms */
    ngx_msec_t                  ttft;         /* first body byte - start */
    ngx_msec_t                  total;        /* last body byte - start */

    ngx_array_t                 outcomes;     /* ngx_http_ai_outcome_t */

    /* a module that lets NGINX send an error page says what it is */
    ngx_uint_t                  error_status;
    ngx_str_t                   error_message;

    unsigned                    is_sse:1;
    unsigned                    first_byte:1;
    unsigned                    resp_done:1;  /* terminal event seen */
    unsigned                    resp_last:1;  /* upstream body ended */
    unsigned                    rewrite:1;    /* handlers produce output */
    unsigned                    drop_usage:1; /* an OpenAI stream's usage
                                                 chunk is not the client's:
                                                 cut out, the rest passed
                                                 by reference */
    unsigned                    error:1;      /* the gateway's own error */
    unsigned                    truncated:1;  /* the response was cut */
    unsigned                    too_large:1;  /* body over the parse cap */
    unsigned                    answered:1;   /* a stage answered */

    /* what follows is the core's own state, private */
};


/* the per-request context; NULL if the core is not on for the location */
ngx_http_ai_ctx_t *ngx_http_ai_get_ctx(ngx_http_request_t *r);

/* the context, created if needed (for handlers that run before the core) */
ngx_http_ai_ctx_t *ngx_http_ai_create_ctx(ngx_http_request_t *r);


/*
 * Makes the core process requests of the current location (and of the
 * locations it contains): modules call it from their directive handlers.
 */
void ngx_http_ai_core_enable(ngx_conf_t *cf);


/*
 * Consumers' model allow-lists ("ai_consumer NAME KEY models=GLOB,..."):
 * NGX_OK if the request's consumer may use the model (a routed model,
 * after aliases), NGX_DECLINED if not.  The core refuses a routed model
 * the consumer may not use (403) before ACCESS; a door checks again the
 * model it really serves and filters the model list with it.  With
 * model NULL: NGX_OK if the consumer may use any model (no list).
 */
ngx_int_t ngx_http_ai_consumer_allows(ngx_http_request_t *r,
    ngx_str_t *model);

/*
 * A model pattern of a directive (a shell glob: *, ?, [...]) checked
 * when the configuration is read: NULL if valid, else why not (a regular
 * expression's "^", "$", ".*", "\\", "(", "|", "+", or an unclosed "[").
 */
const char *ngx_http_ai_glob_invalid(ngx_str_t *glob);

/*
 * A model name against such a pattern (NUL-terminated, as a directive's
 * argument is): 1 if it matches, as fnmatch(3) would say of a name
 * without a NUL byte (the core's parse refuses those); a name of 256
 * bytes or more matches nothing.
 */
ngx_uint_t ngx_http_ai_glob_match(ngx_str_t *glob, ngx_str_t *name);


/*
 * Routing: the module that serves a location (ai_proxy) decides, as soon
 * as the request was parsed and before ACCESS and the stages, which model
 * will really be served (aliases resolved) and which targets may serve
 * it; it sets ctx->route_model ($ai_route_model) and keeps its candidates
 * in its own context, and uses that decision at CONTENT instead of
 * deciding again.  So "map", limits, caches and ACLs see the routed
 * model, and an alias cannot bypass them.  A router returns NGX_DECLINED
 * when the location is not its own, NGX_OK otherwise (also when no
 * target serves the model: route_model stays empty and the content
 * handler answers), or NGX_ERROR.  A changed body
 * (ngx_http_ai_request_set_body()) runs the routers again; a router may
 * keep its decision (and set ctx->route_model again) when the body
 * changed under its own content handler, which does not change the model.
 */

typedef ngx_int_t (*ngx_http_ai_route_pt)(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx);

ngx_int_t ngx_http_ai_add_router(ngx_conf_t *cf,
    ngx_http_ai_route_pt handler);


/*
 * Request stages.  After the body was read and parsed, and after ACCESS,
 * the core runs the modules' stages by their declared order, whatever
 * the load order.  A stage returns:
 *   NGX_DECLINED  the next stage runs;
 *   NGX_AGAIN     suspended: the stage calls ngx_http_ai_resume() later
 *                 (from a store callback, a timer, a subrequest's end) and
 *                 is then called again; if the client goes away meanwhile
 *                 the request ends and its pool cleanups run (a stage
 *                 cancels its pending work there);
 *   NGX_DONE      the stage answered and finalizes the request itself;
 *   other         what a content handler returns after it sent an answer
 *                 or an error (ngx_http_ai_error()): the core finalizes
 *                 the request with it.
 */

#define NGX_HTTP_AI_STAGE_GUARD         100
#define NGX_HTTP_AI_STAGE_LIMIT         200
#define NGX_HTTP_AI_STAGE_CACHE         300

typedef ngx_int_t (*ngx_http_ai_stage_pt)(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx);

ngx_int_t ngx_http_ai_add_stage(ngx_conf_t *cf, ngx_uint_t order,
    ngx_http_ai_stage_pt handler);
void ngx_http_ai_resume(ngx_http_request_t *r);


/*
 * The completion hook: each "done" handler is called exactly once per AI
 * request, after it ended however it ended (complete, client abort,
 * upstream failure, gateway error, answered by a stage), in order, with
 * the final usage and status in ctx.  ai_log writes its record from the
 * last one (NGX_HTTP_AI_DONE_LOG).
 */

#define NGX_HTTP_AI_DONE_SETTLE         100
#define NGX_HTTP_AI_DONE_STORE          500
#define NGX_HTTP_AI_DONE_LOG            1000

typedef void (*ngx_http_ai_done_pt)(ngx_http_request_t *r,
    ngx_http_ai_ctx_t *ctx);

ngx_int_t ngx_http_ai_add_done(ngx_conf_t *cf, ngx_uint_t order,
    ngx_http_ai_done_pt handler);


/*
 * Request mutation (masking, decoration): replaces the body the request
 * goes upstream with, on every path (ai_proxy builds each attempt from it,
 * a "proxy_pass" sends it), and what ai_log records; the view (ctx->req)
 * is parsed again from it, and the routers run again (see above).  body
 * must live as long as r.  Returns NGX_OK,
 * NGX_DECLINED if the new body does not parse (err says why; the request
 * is unchanged), or NGX_ERROR.
 */
ngx_int_t ngx_http_ai_request_set_body(ngx_http_request_t *r,
    ngx_str_t *body, ngx_str_t *err);

/*
 * The request's tree (ngx_http_ai_request_tree()) and what of the view
 * points into it (the system text, each message's text and json) are
 * freed, for a stream, once its response's header was sent: a stream
 * holds them for its whole life, which may be minutes.  The tree is NULL
 * then (and never built), the texts empty (ngx_http_ai_estimate_tokens()
 * then counts no text); the model, the user, the roles, the messages'
 * count and text_len stay.  A module that reads the tree or the texts
 * later (in a body filter, a done handler, a variable) calls this before
 * the header, e.g. in its stage.
 * The trees of a changed body (ngx_http_ai_request_set_body()) are
 * always kept.
 */
void ngx_http_ai_request_keep(ngx_http_request_t *r);


/*
 * Outcomes: a module publishes what it decided for a request as a (name,
 * value) pair, e.g. ("cache", "HIT") or ("guard", "blocked"); the core
 * shows it as $ai_outcome_NAME, and ai_log writes every outcome in the
 * record and counts it in the metrics, knowing no module.  Setting a name
 * again replaces its value; both strings must live as long as r.
 */

typedef struct {
    ngx_str_t                   name;
    ngx_str_t                   value;
} ngx_http_ai_outcome_t;

ngx_int_t ngx_http_ai_set_outcome(ngx_http_request_t *r, ngx_str_t *name,
    ngx_str_t *value);

/* the outcomes of r (ngx_http_ai_outcome_t), NULL if none */
ngx_array_t *ngx_http_ai_outcomes(ngx_http_request_t *r);


/*
 * The attempt trail: the module that calls upstreams (ai_proxy) adds an
 * attempt when it starts one and fills it in as it ends; ai_log writes
 * the trail in the record.  key is the key's 1-based index in the
 * target's pool (0: none), never the key; status is the provider's (0:
 * no answer); reason says why the next attempt was made ("" for the
 * attempt that answered); request_id is the provider's (its
 * x-request-id or request-id header).  Strings must live as long as r.
 */

typedef struct {
    ngx_str_t                   target;
    ngx_uint_t                  key;
    ngx_uint_t                  status;
    ngx_msec_t                  start;      /* ngx_current_msec */
    ngx_msec_t                  ms;         /* how long it took */
    ngx_str_t                   reason;
    ngx_str_t                   request_id;
} ngx_http_ai_attempt_t;

/* a new attempt, zeroed; NULL without a context or memory */
ngx_http_ai_attempt_t *ngx_http_ai_add_attempt(ngx_http_request_t *r);

/* the trail (ngx_http_ai_attempt_t), NULL if none */
ngx_array_t *ngx_http_ai_attempts(ngx_http_request_t *r);


/*
 * What the core read of the answer, for the record: the provider's id of
 * it (OpenAI and Anthropic "id", Gemini "responseId"), its finish reason
 * as the provider said it (finish_reason, stop_reason, finishReason),
 * and for a failure the error's code and message: the gateway's own
 * (ngx_http_ai_error_body()) or the provider's error body.  Values are
 * range-checked and copied into r->pool; empty when not known.
 */

typedef struct {
    ngx_str_t                   id;
    ngx_str_t                   finish_reason;
    ngx_str_t                   error_code;
    ngx_str_t                   error_message;
} ngx_http_ai_answer_t;

/* NULL without a context */
ngx_http_ai_answer_t *ngx_http_ai_answer(ngx_http_request_t *r);


/* registration of response event handlers (postconfiguration only) */
ngx_int_t ngx_http_ai_add_event_handler(ngx_conf_t *cf,
    ngx_http_ai_event_handler_pt handler);


/*
 * In rewrite mode, an event handler's output: the bytes are copied into a
 * buffer the core reuses once it was sent, and linked at **out.
 */
ngx_int_t ngx_http_ai_output(ngx_http_request_t *r, u_char *data,
    size_t len, ngx_chain_t ***out);


/*
 * Finalizes r with the gateway's JSON error:
 *   {"error":{"message":..,"type":..,"param":..,"code":..}}
 * (on the Anthropic door also "type":"error" at the top, which both SDKs
 * read).  type NULL picks one from the status; param and code may be NULL.
 * Returns what a phase or content handler should return.
 */
ngx_int_t ngx_http_ai_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *type, const char *param, const char *code,
    const char *fmt, ...);

/* the same body as ngx_http_ai_error(), in a buffer from r->pool */
ngx_buf_t *ngx_http_ai_error_body(ngx_http_request_t *r, ngx_uint_t status,
    const char *type, const char *param, const char *code, ngx_str_t *msg);


/*
 * JSON string content (no quotes) for any bytes: invalid UTF-8 becomes
 * U+FFFD.  With dst NULL returns the length, else the end of the output
 * (as ngx_escape_json()).
 */
uintptr_t ngx_http_ai_escape_json(u_char *dst, u_char *src, size_t size);

/*
 * A client-supplied string made safe for error.log (control bytes and
 * backslashes as \xNN): s itself, or a copy from pool.  Every string a
 * client chose (model, URI, header) goes through it before it is logged.
 */
ngx_str_t *ngx_http_ai_safe_str(ngx_pool_t *pool, ngx_str_t *s);


/*
 * Request normalization (pure: no I/O).  Parses body into req for the
 * endpoint and door format already set in req; on a client error fills
 * *param and *err and returns NGX_DECLINED.  The cJSON tree is owned by
 * the caller, who frees it with cJSON_Delete() (with a pool, the tree is
 * on a pool of its own, destroyed when its root is freed; the core frees
 * a request's tree when the request ends, a stream's when its header was
 * sent: ngx_http_ai_request_keep()).  req->model, req->user and the
 * roles are copies on pool (or literals), not the tree's.
 */
ngx_uint_t ngx_http_ai_endpoint(ngx_str_t *uri, ngx_uint_t *format);
ngx_int_t ngx_http_ai_parse_request(ngx_pool_t *pool,
    ngx_http_ai_request_t *req, ngx_str_t *model_from_uri,
    const char **param, ngx_str_t *err);

/*
 * The request's tree.  An OpenAI chat request is read without one (its
 * view points into the body): the tree is built at the first call, on
 * req->pool, as the parse would have built it, and each message's json
 * set.  NULL: no parsed body, the tree freed (a stream's, after its
 * header: ngx_http_ai_request_keep()), or no memory.  A module reads
 * req->json through this, never directly.
 */
cJSON *ngx_http_ai_request_tree(ngx_http_ai_request_t *req);

/*
 * Usage from a response body or a stream event's data (pure): finds the
 * format's usage object ("usage", or "usageMetadata" for Gemini; the last
 * one, which is where every provider puts it) and parses only that.
 * Fields present are set, others are left alone, so that successive
 * stream events (Anthropic's message_start, then message_delta) add up.
 * Returns NGX_OK if usage was found, NGX_DECLINED if not.
 */
ngx_int_t ngx_http_ai_usage_parse(ngx_uint_t format, ngx_str_t *data,
    ngx_http_ai_usage_t *usage);

/* the same from a usage object already parsed (pure) */
void ngx_http_ai_usage_object(ngx_uint_t format, cJSON *usage,
    ngx_http_ai_usage_t *usage_out);

/* is this stream event the format's terminal event? (pure) */
ngx_uint_t ngx_http_ai_event_is_final(ngx_uint_t format, ngx_str_t *name,
    ngx_str_t *data);

/*
 * The request's usage for accounting (a limit's settlement): the
 * provider's (ctx->usage) for a plain answer or a complete stream that
 * reported it; for a stream that reached the client but was cut, or had
 * no usage event, counted locally, with usage->estimated set: what the
 * provider said at the start (Anthropic's prompt tokens), else a token
 * per 4 bytes of the prompt's text, and a token an event of the answer
 * (the providers stream a token or so an event).  NGX_DECLINED: no usage
 * known.
 */
ngx_int_t ngx_http_ai_final_usage(ngx_http_request_t *r,
    ngx_http_ai_usage_t *usage);

/* the parsed JSON of an event, parsed on first use; NULL if not JSON */
cJSON *ngx_http_ai_event_json(ngx_http_ai_event_t *ev);

/*
 * The cost of the request in US dollars from the "ai_price" table, by the
 * upstream model (or the requested one) and the usage: NGX_OK, or
 * NGX_DECLINED when the model has no price or there is no usage.
 */
ngx_int_t ngx_http_ai_cost(ngx_http_request_t *r, ngx_http_ai_ctx_t *ctx,
    double *cost);

/*
 * The same in micro-dollars, exact and rounded up, for a model and a
 * usage (a reservation's estimate or the final usage): NGX_OK, or
 * NGX_DECLINED when the model has no price.
 */
ngx_int_t ngx_http_ai_cost_micros(ngx_http_request_t *r, ngx_str_t *model,
    ngx_http_ai_usage_t *usage, int64_t *micros);

/*
 * A decimal number with at most 6 decimals and 18 digits ("2.50"), in
 * millionths (2500000): prices, money limits.  NGX_OK or NGX_ERROR.
 */
ngx_int_t ngx_http_ai_parse_micros(ngx_str_t *s, int64_t *value);

/*
 * A number's digits at p, as ngx_sprintf("%uL") writes them but without a
 * format's parse (records, headers and keys written at every request);
 * the end of what it wrote, NGX_INT64_LEN bytes at most.
 */
u_char *ngx_http_ai_digits(u_char *p, uint64_t n);

/*
 * The first byte from p that a JSON string must escape (a control
 * character, '"' or '\\'), or end: the runs a writer of JSON strings
 * copies whole.
 */
u_char *ngx_http_ai_json_plain(u_char *p, u_char *end);

/*
 * SHA-256 of len bytes at data into digest (32 bytes): NGX_OK or
 * NGX_ERROR.  Keys, cache keys: cheaper than an EVP digest of OpenSSL 3.
 */
ngx_int_t ngx_http_ai_sha256(u_char *digest, const void *data, size_t len);

/*
 * SHA-256 of a text written piece by piece: start, add the pieces, end
 * (the digest, 32 bytes); each NGX_OK or NGX_ERROR.  The worker has one
 * such context: start to end within one handler, not across events.
 */
ngx_int_t ngx_http_ai_sha256_start(void);
ngx_int_t ngx_http_ai_sha256_add(const void *data, size_t len);
ngx_int_t ngx_http_ai_sha256_end(u_char *digest);

/*
 * A keyed 64-bit hash of len bytes at data (SipHash-2-4, its key drawn at
 * each configuration load, the same in every worker of it): for a
 * worker's tables of texts that clients choose, which cannot then be made
 * to collide.
 */
uint64_t ngx_http_ai_hash(const u_char *data, size_t len);

/*
 * The keyed hash of a message's text mixed with its request's consumer
 * (req->scope), made once a request: for a worker's tables of what a
 * conversation's history costs to read, where one consumer may not learn
 * from the time a text takes what another sent.
 */
uint64_t ngx_http_ai_message_hash(ngx_http_ai_request_t *req,
    ngx_http_ai_message_t *m);

/*
 * The prompt's tokens estimated from the normalized request, without a
 * vocabulary (pure; docs/estimator.md measures it against o200k): a
 * limit's reservation, the Anthropic door's count_tokens for targets that
 * cannot count.  Rounded up, 15% over on average.
 */
int64_t ngx_http_ai_estimate_tokens(ngx_http_ai_request_t *req);

/* strings for a format ("openai", "anthropic", "gemini") */
ngx_str_t *ngx_http_ai_format_name(ngx_uint_t format);


/* ---------------------------------------------------------------------
 * The format layer: translation between the wire formats
 * (NGX_HTTP_AI_FMT_OPENAI, _ANTHROPIC, _GEMINI), both directions, streams
 * included, through OpenAI's chat format (the pivot): a request goes
 * door -> OpenAI -> target, an answer target -> OpenAI -> door.  Pure:
 * cJSON and a pool in, bytes out; no request, no I/O.  Any module renders
 * with it: ai_proxy the providers' answers, a cache its hits.
 *
 * Every function returns NGX_OK, NGX_DECLINED (the input cannot be
 * translated: *err says why, for a 400 or a 502), or NGX_ERROR (no
 * memory).  Output strings are allocated from the pool.  Inputs are never
 * modified (a request is translated again for each attempt).
 */

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
    ngx_http_ai_request_t      *view;       /* or its view, json NULL: the
                                               tree is built only if the
                                               body must change */

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
 * A complete (non-streamed) successful answer of the target, in the
 * door's format.  model is the name the client asked for (answers report
 * it).
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
 * A complete answer (its format from) rendered as the stream a client of
 * the door (to) gets, without any upstream (a cache hit for a streamed
 * request): the role, the text in pieces of a few words, the tool calls,
 * the finish reason, the usage (OpenAI door: with include_usage) and the
 * closing events.  *out is allocated from the pool.
 */
ngx_int_t ngx_http_ai_render_stream(ngx_pool_t *pool, ngx_uint_t from,
    ngx_uint_t to, ngx_str_t *model, ngx_str_t *in,
    ngx_uint_t include_usage, ngx_str_t *out, ngx_str_t *err);

/*
 * A stage's answer sent to the client (a cache hit): a complete answer in
 * format from, rendered for the request's door, as a stream if the
 * request asked for one, through the delta filters if the request has
 * them (a guard's restore), with its status and headers (a module adds
 * its own headers to r->headers_out before); the core then watches it as
 * it watches a provider's (usage, the outcome's record).  Returns what a
 * stage returns after it answered; NGX_DECLINED, nothing sent, if the
 * answer does not render (an entry of another version).
 */
ngx_int_t ngx_http_ai_send_answer(ngx_http_request_t *r, ngx_uint_t from,
    ngx_str_t *answer);

/*
 * s is one JSON object and nothing else (pure; checked by a scanner,
 * without a cJSON tree; nesting deeper than 64 is refused)
 */
ngx_uint_t ngx_http_ai_json_is_object(ngx_str_t *s);

/* finish_reason <-> stop_reason <-> finishReason */
ngx_str_t *ngx_http_ai_finish_reason(ngx_uint_t from, ngx_uint_t to,
    ngx_str_t *reason);

/*
 * Streams: one translator per answer.  Each upstream SSE event (name,
 * data and its parsed JSON if the caller has it, else NULL: a translator
 * parses what it needs) goes in as it arrives; the
 * complete SSE bytes for the client come out (possibly empty, possibly
 * several events).  Nothing is held back beyond what the format forces
 * (Anthropic's message_start needs the first chunk's id) or a delta
 * filter holds (below).
 *
 *   OpenAI chunks -> Anthropic events: message_start, content_block_start
 *   / _delta / _stop (text and tool_use with input_json_delta),
 *   message_delta (stop_reason, usage), message_stop.
 *   Anthropic events / Gemini chunks -> OpenAI chat.completion.chunk
 *   (role first, content and tool_calls deltas, finish_reason), then, if
 *   include_usage, a usage chunk with "choices":[], then "data: [DONE]".
 *
 * In the same format the translator passes the events as they are (it
 * looks inside an OpenAI event only for an error or the usage chunk, which
 * it drops when the client did not ask for usage), unless delta filters
 * are attached: then it renders the events it filtered.
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


/* ---------------------------------------------------------------------
 * Delta filters: the text of an answer, as the client will get it (after
 * any translation), goes through the modules' filters in their declared
 * order (lowest first), each getting what the one before let through.
 * A filter may
 *   - change the text: delta->text set to memory of its own;
 *   - hold part of it back: it lets less through and keeps the rest (a
 *     bounded window of its own) until the next delta of the same text,
 *     or its end (delta->last), when nothing may stay held;
 *   - end the answer: it returns NGX_ABORT with delta->status and
 *     delta->message; a stream gets an error event in the door's format
 *     and nothing more, a plain answer becomes that error.
 * A text is a choice's content (OpenAI door) or a text block (Anthropic
 * door): delta->index tells which, and a filter keeps its state per index
 * (delta->text, its output, must stay valid until its next call).  A
 * tool call's arguments are a text too (delta->tool set; delta->index
 * the call's, a space of its own): JSON text as the door sends it, in
 * pieces, so what a filter puts in must keep it JSON (a value written
 * into it escaped as in a JSON string).  A filter with nothing to do on
 * arguments returns NGX_OK and leaves them.  A filter returns NGX_OK,
 * NGX_ABORT or NGX_ERROR.
 *
 * The filters run for a request only when a stage called
 * ngx_http_ai_filter_deltas() for it; otherwise the answer is not parsed
 * for them.  ngx_http_ai_stream_filter() attaches the request's filters to
 * a stream, ngx_http_ai_filter_answer() runs them on a plain answer: the
 * module that renders the answer (ai_proxy) calls them.
 */

#define NGX_HTTP_AI_DELTA_GUARD         100
#define NGX_HTTP_AI_DELTA_CACHE         300

typedef struct {
    ngx_str_t                   text;
    ngx_uint_t                  index;
    ngx_uint_t                  status;     /* NGX_ABORT: of the error */
    ngx_str_t                   message;    /* NGX_ABORT: the client's */
    unsigned                    last:1;     /* the text ends here */
    unsigned                    tool:1;     /* a tool call's arguments */
} ngx_http_ai_delta_t;

typedef ngx_int_t (*ngx_http_ai_delta_filter_pt)(ngx_http_request_t *r,
    ngx_http_ai_delta_t *delta);

ngx_int_t ngx_http_ai_add_delta_filter(ngx_conf_t *cf, ngx_uint_t order,
    ngx_http_ai_delta_filter_pt filter);

void ngx_http_ai_filter_deltas(ngx_http_request_t *r);
ngx_uint_t ngx_http_ai_deltas_wanted(ngx_http_request_t *r);

void ngx_http_ai_stream_filter(ngx_http_ai_stream_t *st,
    ngx_http_request_t *r);

/*
 * A complete answer in the door's format through the filters: NGX_OK
 * (*body replaced when a filter changed it), NGX_ABORT (abort->status and
 * ->message say what the client gets instead), NGX_DECLINED (not an
 * answer: left as it is) or NGX_ERROR.
 */
ngx_int_t ngx_http_ai_filter_answer(ngx_http_request_t *r,
    ngx_uint_t format, ngx_str_t *body, ngx_http_ai_delta_t *abort);


/* ---------------------------------------------------------------------
 * Stores: named key/value stores behind one asynchronous interface.
 * Backends register by name ("shm" is built in; a module adds "redis"):
 *
 *     ai_store NAME [backend=shm] [size=10m] [async];       (http)
 *
 * An operation is made bound to a request, or detached (r NULL: it lives
 * in a pool of its own, freed once it completed: a settle made after the
 * response).  A bound operation still pending when its request goes is
 * cancelled: its handler is never called.
 *
 * ngx_http_ai_store_run() returns
 *   NGX_OK     completed at once: op->rc holds the result and the handler
 *              is not called (a detached op's handler always is, and the
 *              op is gone when run() returns: read results there);
 *   NGX_AGAIN  the handler will be called from the event loop;
 *   NGX_ERROR  the operation could not be started.
 * op->rc is then NGX_OK, NGX_DECLINED (GET, DEL: not found; ADD: present;
 * RESERVE: over the limit, nothing changed) or NGX_ERROR.
 *
 * DEL given a value deletes only while the key holds that value, in one
 * step (a lock let go by its holder, not the entry written in its place):
 * a value written by SET or ADD.  ADD with op->get set gives, when the
 * key is present, its value as a GET would (pinned with op->pin), in the
 * same step: a lookup and a lock in one operation.
 *
 * Counters are binary 64-bit integers; INCR of a value that is not a
 * counter is an error.  A GET with op->pin set keeps the entry from
 * eviction (op->value then points into the store, no copy) until
 * ngx_http_ai_store_unpin(), or the end of the request.
 *
 * Windowed counters (INCR and RESERVE with op->window > 0: the limits'
 * counters) are kept by the backend on its own clock (shm: the host's;
 * redis: the server's TIME, one clock for every node), in one of two
 * ways; a key is used with one way and one window only:
 *
 *   sliding   a count per window of that length (window i holds what was
 *             counted in [i * window, (i + 1) * window)); the amount used
 *             is this window's count plus the last window's count times
 *             the part of the last window still inside the sliding window
 *             (rounded down).  op->stamp (out) names the window counted
 *             in; an INCR given op->stamp (a settle) counts in that window
 *             if it is this one or the last one, else nowhere (rc NGX_OK).
 *   bucket    a level that leaks op->limit per op->window, continuously,
 *             never below 0; INCR and RESERVE add to it after the leak.
 *
 * RESERVE applies the delta if the amount used plus it stays within
 * op->limit.  Out: op->number is the amount used (after the op, or as it
 * was when refused), op->ttl the time until it is all gone (the reset),
 * op->retry (RESERVE refused) the time until the same reservation would
 * fit (0: never, the delta is over the limit).  An INCR of 0 reads one
 * (a GET of it is an error).  The backend's keys expire by themselves
 * once they count nothing.
 */

#define NGX_HTTP_AI_STORE_GET           0   /* value or number, ttl left */
#define NGX_HTTP_AI_STORE_SET           1   /* value, ttl */
#define NGX_HTTP_AI_STORE_ADD           2   /* set if absent (a lock) */
#define NGX_HTTP_AI_STORE_DEL           3   /* if value: while it holds it */
#define NGX_HTTP_AI_STORE_INCR          4   /* number += delta */
#define NGX_HTTP_AI_STORE_RESERVE       5   /* the same, within limit */

typedef struct ngx_http_ai_store_s     ngx_http_ai_store_t;
typedef struct ngx_http_ai_store_op_s  ngx_http_ai_store_op_t;

typedef void (*ngx_http_ai_store_handler_pt)(ngx_http_ai_store_op_t *op);

struct ngx_http_ai_store_op_s {
    ngx_uint_t                      type;     /* NGX_HTTP_AI_STORE_* */
    ngx_str_t                       key;
    ngx_str_t                       value;    /* SET, ADD, DEL: in; GET:
                                                 out */
    int64_t                         delta;    /* INCR, RESERVE */
    int64_t                         limit;    /* RESERVE: the ceiling */
    int64_t                         number;   /* the counter's value, out */
    ngx_msec_t                      ttl;      /* in: expiry of an entry
                                                 written (0: none); out
                                                 (GET, INCR, RESERVE):
                                                 time left, 0: none */
    ngx_int_t                       rc;

    ngx_msec_t                      window;   /* windowed counters, above */
    int64_t                         stamp;    /* sliding: the window */
    ngx_msec_t                      retry;    /* RESERVE refused, out */

    ngx_pool_t                     *pool;     /* results are copied here */
    ngx_log_t                      *log;
    ngx_http_ai_store_handler_pt    handler;
    void                           *data;

    /* the core's and the backend's */
    ngx_http_ai_store_t            *store;
    ngx_http_request_t             *request;  /* NULL: detached */
    ngx_event_t                     event;    /* a posted completion */
    void                           *backend_data;

    unsigned                        pin:1;     /* GET: keep it, no copy */
    unsigned                        get:1;     /* ADD: present, its value */
    unsigned                        pinned:1;
    unsigned                        counter:1; /* GET: it is a counter */
    unsigned                        pending:1;
    unsigned                        bucket:1;  /* window: a token bucket */
};

typedef struct {
    ngx_str_t                       name;
    /* parses the parameters of "ai_store", sets store->data */
    char                         *(*conf)(ngx_conf_t *cf,
                                          ngx_http_ai_store_t *store,
                                          ngx_str_t *params,
                                          ngx_uint_t n);
    ngx_int_t                     (*run)(ngx_http_ai_store_t *store,
                                         ngx_http_ai_store_op_t *op);
    void                          (*cancel)(ngx_http_ai_store_t *store,
                                            ngx_http_ai_store_op_t *op);
    void                          (*unpin)(ngx_http_ai_store_t *store,
                                           ngx_http_ai_store_op_t *op);
} ngx_http_ai_store_backend_t;

struct ngx_http_ai_store_s {
    ngx_str_t                       name;
    ngx_http_ai_store_backend_t    *backend;
    void                           *data;     /* the backend's */
    ngx_uint_t                      defined;  /* unsigned  defined:1; */
    u_char                         *file;     /* where first referenced */
    ngx_uint_t                      line;
};

/* a store by name, defined by "ai_store" before or after this call */
ngx_http_ai_store_t *ngx_http_ai_store_add(ngx_conf_t *cf, ngx_str_t *name);

/*
 * A store defined by a module's directive, as "ai_store NAME ARGS" would
 * (args: "backend=NAME" and the backend's parameters); NULL after an
 * nginx -t error was logged.
 */
ngx_http_ai_store_t *ngx_http_ai_store_define(ngx_conf_t *cf,
    ngx_str_t *name, ngx_str_t *args, ngx_uint_t nargs);

/* a backend, from a module's preconfiguration */
ngx_int_t ngx_http_ai_store_backend_add(ngx_conf_t *cf,
    ngx_http_ai_store_backend_t *backend);

/* an operation bound to r, or detached (r NULL); zeroed but for log */
ngx_http_ai_store_op_t *ngx_http_ai_store_op(ngx_http_ai_store_t *store,
    ngx_http_request_t *r, ngx_log_t *log);

ngx_int_t ngx_http_ai_store_run(ngx_http_ai_store_op_t *op);
void ngx_http_ai_store_cancel(ngx_http_ai_store_op_t *op);
void ngx_http_ai_store_unpin(ngx_http_ai_store_op_t *op);

/* for backends: an asynchronous operation completed */
void ngx_http_ai_store_complete(ngx_http_ai_store_op_t *op);


/* ---------------------------------------------------------------------
 * Counters: named monotonic counters in shared memory (summed over the
 * workers), registered at configuration time by any module and exported
 * by whichever module shows metrics (ai_log), which needs not know the
 * module that counts.  The name follows Prometheus conventions and may
 * carry labels: "ai_key_cooldowns_total{target=\"a\"}".
 */

typedef struct ngx_http_ai_counter_s  ngx_http_ai_counter_t;

struct ngx_http_ai_counter_s {
    ngx_str_t                       name;
    ngx_str_t                       help;
    ngx_atomic_t                   *value;    /* in shared memory */
    ngx_http_ai_counter_t          *next;
};

ngx_http_ai_counter_t *ngx_http_ai_counter_add(ngx_conf_t *cf,
    ngx_str_t *name, ngx_str_t *help);

#define ngx_http_ai_counter_incr(c, n)                                        \
    (void) ngx_atomic_fetch_add((c)->value, (n))

/* the first registered counter (a list by ->next), NULL if none */
ngx_http_ai_counter_t *ngx_http_ai_counters(ngx_http_request_t *r);


/*
 * Metric sources: a module with values of its own to show (gauges, such
 * as what is left of each budget) registers a source; the module that
 * serves metrics (ai_log) calls them all with ngx_http_ai_metrics() after
 * the core's counters.  A source appends to *out buffers from r->pool in
 * Prometheus' text format, its "# HELP" and "# TYPE" lines included, and
 * returns NGX_OK or NGX_ERROR.
 */

typedef ngx_int_t (*ngx_http_ai_metrics_pt)(ngx_http_request_t *r,
    ngx_chain_t ***out);

ngx_int_t ngx_http_ai_add_metrics(ngx_conf_t *cf,
    ngx_http_ai_metrics_pt source);
ngx_int_t ngx_http_ai_metrics(ngx_http_request_t *r, ngx_chain_t ***out);


extern ngx_module_t  ngx_http_ai_core_module;


/*
 * In the other modules the core's symbols are weak references: a module
 * loaded without the core, or before it, still loads, and its
 * preconfiguration says what is wrong instead of dlopen() failing on a
 * symbol.  Every function above is listed here.
 */

#ifndef NGX_HTTP_AI_CORE_INTERNAL
#pragma weak ngx_http_ai_core_module
#pragma weak ngx_http_ai_core_api_version
#pragma weak ngx_http_ai_add_attempt
#pragma weak ngx_http_ai_add_done
#pragma weak ngx_http_ai_add_delta_filter
#pragma weak ngx_http_ai_add_event_handler
#pragma weak ngx_http_ai_add_metrics
#pragma weak ngx_http_ai_add_router
#pragma weak ngx_http_ai_add_stage
#pragma weak ngx_http_ai_answer
#pragma weak ngx_http_ai_attempts
#pragma weak ngx_http_ai_core_enable
#pragma weak ngx_http_ai_cost
#pragma weak ngx_http_ai_cost_micros
#pragma weak ngx_http_ai_counter_add
#pragma weak ngx_http_ai_consumer_allows
#pragma weak ngx_http_ai_counters
#pragma weak ngx_http_ai_create_ctx
#pragma weak ngx_http_ai_endpoint
#pragma weak ngx_http_ai_error
#pragma weak ngx_http_ai_error_body
#pragma weak ngx_http_ai_escape_json
#pragma weak ngx_http_ai_estimate_tokens
#pragma weak ngx_http_ai_event_is_final
#pragma weak ngx_http_ai_event_json
#pragma weak ngx_http_ai_filter_answer
#pragma weak ngx_http_ai_final_usage
#pragma weak ngx_http_ai_filter_deltas
#pragma weak ngx_http_ai_finish_reason
#pragma weak ngx_http_ai_deltas_wanted
#pragma weak ngx_http_ai_format_name
#pragma weak ngx_http_ai_get_ctx
#pragma weak ngx_http_ai_glob_invalid
#pragma weak ngx_http_ai_glob_match
#pragma weak ngx_http_ai_json_is_object
#pragma weak ngx_http_ai_metrics
#pragma weak ngx_http_ai_outcomes
#pragma weak ngx_http_ai_parse_micros
#pragma weak ngx_http_ai_digits
#pragma weak ngx_http_ai_json_plain
#pragma weak ngx_http_ai_sha256
#pragma weak ngx_http_ai_sha256_start
#pragma weak ngx_http_ai_sha256_add
#pragma weak ngx_http_ai_sha256_end
#pragma weak ngx_http_ai_hash
#pragma weak ngx_http_ai_message_hash
#pragma weak ngx_http_ai_output
#pragma weak ngx_http_ai_parse_request
#pragma weak ngx_http_ai_render_stream
#pragma weak ngx_http_ai_send_answer
#pragma weak ngx_http_ai_request_keep
#pragma weak ngx_http_ai_request_tree
#pragma weak ngx_http_ai_request_set_body
#pragma weak ngx_http_ai_resume
#pragma weak ngx_http_ai_safe_str
#pragma weak ngx_http_ai_set_outcome
#pragma weak ngx_http_ai_store_add
#pragma weak ngx_http_ai_store_backend_add
#pragma weak ngx_http_ai_store_cancel
#pragma weak ngx_http_ai_store_complete
#pragma weak ngx_http_ai_store_define
#pragma weak ngx_http_ai_store_op
#pragma weak ngx_http_ai_store_run
#pragma weak ngx_http_ai_store_unpin
#pragma weak ngx_http_ai_stream_create
#pragma weak ngx_http_ai_stream_end
#pragma weak ngx_http_ai_stream_event
#pragma weak ngx_http_ai_stream_filter
#pragma weak ngx_http_ai_translate_error
#pragma weak ngx_http_ai_translate_request
#pragma weak ngx_http_ai_translate_response
#pragma weak ngx_http_ai_usage_object
#pragma weak ngx_http_ai_usage_parse
#endif


/* call from a module's preconfiguration, before any other core call */

static ngx_inline ngx_int_t
ngx_http_ai_core_require(ngx_conf_t *cf, const char *module)
{
    const ngx_uint_t  *version;

    version = &ngx_http_ai_core_api_version;

    if (version == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "%s needs ngx_http_ai_core_module: load "
                           "ngx_http_ai_core_module.so before it "
                           "(\"load_module\" lines in order)", module);
        return NGX_ERROR;
    }

    if (*version != NGX_HTTP_AI_CORE_API) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "%s was built for version %ui of the AI core "
                           "interface, the loaded ngx_http_ai_core_module "
                           "has version %ui: build them together", module,
                           (ngx_uint_t) NGX_HTTP_AI_CORE_API, *version);
        return NGX_ERROR;
    }

    return NGX_OK;
}


#endif /* _NGX_HTTP_AI_CORE_H_INCLUDED_ */
