
/*
 * Copyright (C) AI Gateway authors
 *
 * The redis backend's private interface: a store's configuration, its
 * connection in a worker (hiredis async on NGINX events) and the records
 * of the commands in flight.
 */


#ifndef _NGX_HTTP_AI_REDIS_H_INCLUDED_
#define _NGX_HTTP_AI_REDIS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "ngx_http_ai_core.h"


#define NGX_HTTP_AI_REDIS_INT64_MAX     0x7fffffffffffffffULL

#define NGX_HTTP_AI_REDIS_BACKOFF_MIN   100
#define NGX_HTTP_AI_REDIS_BACKOFF_MAX   5000
#define NGX_HTTP_AI_REDIS_LOG_INTERVAL  10        /* seconds */

#define NGX_HTTP_AI_REDIS_SCRIPT_GET     0
#define NGX_HTTP_AI_REDIS_SCRIPT_INCR    1
#define NGX_HTTP_AI_REDIS_SCRIPT_WINDOW  2
#define NGX_HTTP_AI_REDIS_SCRIPT_DEL     3
#define NGX_HTTP_AI_REDIS_SCRIPT_ADD     4
#define NGX_HTTP_AI_REDIS_SCRIPTS        5


typedef struct ngx_http_ai_redis_conn_s  ngx_http_ai_redis_conn_t;


typedef struct {
    ngx_str_t                    name;          /* the store's */
    ngx_str_t                    addr_text;     /* host:port, unix:path */
    ngx_str_t                    host;          /* numeric, or a path */
    in_port_t                    port;          /* 0: a unix socket */
    ngx_uint_t                   unix_socket;   /* unsigned  unix:1; */
    ngx_str_t                    user;
    ngx_str_t                    password;      /* never logged */
    ngx_int_t                    db;
    ngx_str_t                    prefix;
    ngx_msec_t                   timeout;
    ngx_msec_t                   connect_timeout;

    ngx_http_ai_counter_t       *errors;

    ngx_http_ai_redis_conn_t    *conn;          /* the worker's */
} ngx_http_ai_redis_store_t;


typedef struct {
    ngx_array_t                  stores;        /* ngx_http_ai_redis_store_t* */
} ngx_http_ai_redis_main_conf_t;


/* a command in flight: hiredis' privdata, cut loose from its op at will */

typedef struct {
    ngx_http_ai_redis_conn_t    *conn;
    ngx_http_ai_store_op_t      *op;            /* NULL: nobody waits */
    ngx_event_t                  timer;
    ngx_queue_t                  queue;         /* in flight, or free */
    ngx_uint_t                   eval;          /* sent as EVAL */
} ngx_http_ai_redis_cmd_t;


struct ngx_http_ai_redis_conn_s {
    ngx_http_ai_redis_store_t   *store;
    redisAsyncContext           *ac;            /* NULL: disconnected */
    ngx_connection_t            *connection;
    ngx_log_t                    log;

    ngx_event_t                  connect_timer;
    ngx_event_t                  reconnect;
    ngx_msec_t                   backoff;
    time_t                       logged;        /* the last error logged */

    ngx_queue_t                  busy;          /* commands in flight */
    ngx_queue_t                  free;

    u_char                      *buf;           /* scratch: keys */
    size_t                       size;

    unsigned                     ready:1;       /* AUTH, SELECT done */
    unsigned                     exiting:1;
};


extern ngx_module_t  ngx_http_ai_redis_module;

extern ngx_str_t     ngx_http_ai_redis_scripts[NGX_HTTP_AI_REDIS_SCRIPTS];
extern u_char        ngx_http_ai_redis_sha[NGX_HTTP_AI_REDIS_SCRIPTS][41];


ngx_int_t ngx_http_ai_redis_init_conn(ngx_http_ai_redis_store_t *rs,
    ngx_cycle_t *cycle);
void ngx_http_ai_redis_close_conn(ngx_http_ai_redis_conn_t *conn);
void ngx_http_ai_redis_connect(ngx_http_ai_redis_conn_t *conn);
void ngx_http_ai_redis_log_error(ngx_http_ai_redis_conn_t *conn,
    const char *fmt, const char *detail);

ngx_http_ai_redis_cmd_t *ngx_http_ai_redis_cmd_get(
    ngx_http_ai_redis_conn_t *conn);
void ngx_http_ai_redis_cmd_free(ngx_http_ai_redis_cmd_t *cmd);
void ngx_http_ai_redis_cmd_drop(ngx_http_ai_redis_cmd_t *cmd);

ngx_int_t ngx_http_ai_redis_run(ngx_http_ai_store_t *store,
    ngx_http_ai_store_op_t *op);
void ngx_http_ai_redis_cancel(ngx_http_ai_store_t *store,
    ngx_http_ai_store_op_t *op);
void ngx_http_ai_redis_unpin(ngx_http_ai_store_t *store,
    ngx_http_ai_store_op_t *op);


#endif /* _NGX_HTTP_AI_REDIS_H_INCLUDED_ */
