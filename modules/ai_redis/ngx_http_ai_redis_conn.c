
/*
 * Copyright (C) AI Gateway authors
 *
 * A store's connection in a worker: a hiredis async context whose socket
 * is an ngx_connection_t on the worker's event loop (hiredis 0.14 has no
 * timers: the connect timeout, the commands' timeouts and the reconnect
 * backoff are NGINX timers).  On each (re)connect AUTH and SELECT go
 * first; a lost connection is made again after 100 ms, doubling up to
 * 5 s, and meanwhile an operation fails at once.  Errors are logged at
 * most once per 10 s by store.
 */


#include "ngx_http_ai_redis.h"

#include <sys/socket.h>
#include <hiredis/sds.h>


static void ngx_http_ai_redis_add_read(void *data);
static void ngx_http_ai_redis_del_read(void *data);
static void ngx_http_ai_redis_add_write(void *data);
static void ngx_http_ai_redis_del_write(void *data);
static void ngx_http_ai_redis_cleanup(void *data);
static void ngx_http_ai_redis_read_handler(ngx_event_t *ev);
static void ngx_http_ai_redis_write_handler(ngx_event_t *ev);
static void ngx_http_ai_redis_connected(const redisAsyncContext *ac,
    int status);
static void ngx_http_ai_redis_disconnected(const redisAsyncContext *ac,
    int status);
static void ngx_http_ai_redis_hello_send(ngx_http_ai_redis_conn_t *conn);
static void ngx_http_ai_redis_hello(redisAsyncContext *ac, void *reply,
    void *data);
static void ngx_http_ai_redis_script_loaded(redisAsyncContext *ac,
    void *reply, void *data);
static void ngx_http_ai_redis_connect_timeout(ngx_event_t *ev);
static void ngx_http_ai_redis_reconnect(ngx_event_t *ev);
static void ngx_http_ai_redis_schedule(ngx_http_ai_redis_conn_t *conn);
static u_char *ngx_http_ai_redis_log_conn(ngx_log_t *log, u_char *buf,
    size_t len);


/* the privdata of AUTH and SELECT, which tells them apart */

static u_char  ngx_http_ai_redis_auth_tag;
static u_char  ngx_http_ai_redis_select_tag;


ngx_int_t
ngx_http_ai_redis_init_conn(ngx_http_ai_redis_store_t *rs,
    ngx_cycle_t *cycle)
{
    ngx_http_ai_redis_conn_t  *conn;

    conn = ngx_pcalloc(cycle->pool, sizeof(ngx_http_ai_redis_conn_t));
    if (conn == NULL) {
        return NGX_ERROR;
    }

    conn->store = rs;

    conn->log = *cycle->log;
    conn->log.handler = ngx_http_ai_redis_log_conn;
    conn->log.data = rs;
    conn->log.action = NULL;

    ngx_queue_init(&conn->busy);
    ngx_queue_init(&conn->free);

    conn->connect_timer.handler = ngx_http_ai_redis_connect_timeout;
    conn->connect_timer.data = conn;
    conn->connect_timer.log = &conn->log;
    conn->connect_timer.cancelable = 1;

    conn->reconnect.handler = ngx_http_ai_redis_reconnect;
    conn->reconnect.data = conn;
    conn->reconnect.log = &conn->log;
    conn->reconnect.cancelable = 1;

    conn->backoff = NGX_HTTP_AI_REDIS_BACKOFF_MIN;

    rs->conn = conn;

    ngx_http_ai_redis_connect(conn);

    return NGX_OK;
}


/* the worker exits: nobody waits any more, the socket is closed */

void
ngx_http_ai_redis_close_conn(ngx_http_ai_redis_conn_t *conn)
{
    ngx_queue_t              *q;
    ngx_http_ai_redis_cmd_t  *cmd;

    conn->exiting = 1;

    for (q = ngx_queue_head(&conn->busy);
         q != ngx_queue_sentinel(&conn->busy);
         q = ngx_queue_next(q))
    {
        cmd = ngx_queue_data(q, ngx_http_ai_redis_cmd_t, queue);
        ngx_http_ai_redis_cmd_drop(cmd);
    }

    if (conn->connect_timer.timer_set) {
        ngx_del_timer(&conn->connect_timer);
    }

    if (conn->reconnect.timer_set) {
        ngx_del_timer(&conn->reconnect);
    }

    if (conn->ac) {
        redisAsyncFree(conn->ac);
        conn->ac = NULL;
    }

    while (!ngx_queue_empty(&conn->free)) {
        q = ngx_queue_head(&conn->free);
        ngx_queue_remove(q);
        ngx_free(ngx_queue_data(q, ngx_http_ai_redis_cmd_t, queue));
    }

    if (conn->buf) {
        ngx_free(conn->buf);
        conn->buf = NULL;
    }
}


void
ngx_http_ai_redis_connect(ngx_http_ai_redis_conn_t *conn)
{
    ngx_connection_t           *c;
    redisAsyncContext          *ac;
    ngx_http_ai_redis_store_t  *rs;

    rs = conn->store;

    conn->ready = 0;

    if (rs->unix_socket) {
        ac = redisAsyncConnectUnix((char *) rs->host.data);

    } else {
        /* a numeric address: no name is resolved here */
        ac = redisAsyncConnect((char *) rs->host.data, rs->port);
    }

    if (ac == NULL) {
        ngx_log_error(NGX_LOG_ALERT, &conn->log, 0,
                      "redisAsyncConnect() failed: no memory");
        ngx_http_ai_redis_schedule(conn);
        return;
    }

    if (ac->err) {
        ngx_http_ai_redis_log_error(conn, "connect() failed: %s",
                                    ac->errstr);
        redisAsyncFree(ac);
        ngx_http_ai_redis_schedule(conn);
        return;
    }

    c = ngx_get_connection(ac->c.fd, &conn->log);
    if (c == NULL) {
        redisAsyncFree(ac);
        ngx_http_ai_redis_schedule(conn);
        return;
    }

    c->data = conn;
    c->read->handler = ngx_http_ai_redis_read_handler;
    c->write->handler = ngx_http_ai_redis_write_handler;
    c->read->log = &conn->log;
    c->write->log = &conn->log;

    conn->ac = ac;
    conn->connection = c;

    ac->data = conn;
    ac->ev.data = conn;
    ac->ev.addRead = ngx_http_ai_redis_add_read;
    ac->ev.delRead = ngx_http_ai_redis_del_read;
    ac->ev.addWrite = ngx_http_ai_redis_add_write;
    ac->ev.delWrite = ngx_http_ai_redis_del_write;
    ac->ev.cleanup = ngx_http_ai_redis_cleanup;

    ngx_log_debug2(NGX_LOG_DEBUG_EVENT, &conn->log, 0,
                   "ai redis connect fd:%d %V", c->fd, &rs->addr_text);

    /* this adds the write event: the connection is made when writable */

    redisAsyncSetConnectCallback(ac, ngx_http_ai_redis_connected);
    redisAsyncSetDisconnectCallback(ac, ngx_http_ai_redis_disconnected);

    ngx_add_timer(&conn->connect_timer, rs->connect_timeout);

    /*
     * AUTH and SELECT are queued now, before any operation: they go first
     * once connected
     */

    ngx_http_ai_redis_hello_send(conn);
}


static void
ngx_http_ai_redis_hello_send(ngx_http_ai_redis_conn_t *conn)
{
    int                         argc;
    u_char                      db[NGX_INT_T_LEN];
    size_t                      argvlen[3];
    ngx_uint_t                  i;
    const char                 *argv[3];
    ngx_http_ai_redis_store_t  *rs;

    rs = conn->store;

    if (rs->password.len) {
        argc = 0;
        argv[argc] = "AUTH";
        argvlen[argc++] = 4;

        if (rs->user.len) {
            argv[argc] = (const char *) rs->user.data;
            argvlen[argc++] = rs->user.len;
        }

        argv[argc] = (const char *) rs->password.data;
        argvlen[argc++] = rs->password.len;

        (void) redisAsyncCommandArgv(conn->ac, ngx_http_ai_redis_hello,
                                     &ngx_http_ai_redis_auth_tag,
                                     argc, argv, argvlen);
    }

    if (rs->db) {
        argv[0] = "SELECT";
        argvlen[0] = 6;
        argv[1] = (const char *) db;
        argvlen[1] = ngx_sprintf(db, "%i", rs->db) - db;

        (void) redisAsyncCommandArgv(conn->ac, ngx_http_ai_redis_hello,
                                     &ngx_http_ai_redis_select_tag,
                                     2, argv, argvlen);
    }

    /* the scripts, for EVALSHA; their digests once known */

    for (i = 0; i < NGX_HTTP_AI_REDIS_SCRIPTS; i++) {
        argv[0] = "SCRIPT";
        argvlen[0] = 6;
        argv[1] = "LOAD";
        argvlen[1] = 4;
        argv[2] = (const char *) ngx_http_ai_redis_scripts[i].data;
        argvlen[2] = ngx_http_ai_redis_scripts[i].len;

        (void) redisAsyncCommandArgv(conn->ac,
                                     ngx_http_ai_redis_script_loaded,
                                     (void *) (uintptr_t) i, 3, argv,
                                     argvlen);
    }
}


static void
ngx_http_ai_redis_hello(redisAsyncContext *ac, void *reply, void *data)
{
    redisReply                *rr = reply;
    ngx_http_ai_redis_conn_t  *conn;

    conn = ac->data;

    if (rr == NULL || conn == NULL || conn->exiting) {
        return;
    }

    if (rr->type == REDIS_REPLY_ERROR) {
        /* the reply names no secret */
        ngx_http_ai_redis_log_error(conn,
                                    data == &ngx_http_ai_redis_auth_tag
                                    ? "AUTH failed: %s"
                                    : "SELECT failed: %s", rr->str);

        redisAsyncDisconnect(ac);
        return;
    }
}


static void
ngx_http_ai_redis_script_loaded(redisAsyncContext *ac, void *reply,
    void *data)
{
    redisReply                *rr = reply;
    ngx_uint_t                 i;
    ngx_http_ai_redis_conn_t  *conn;

    conn = ac->data;

    if (rr == NULL || conn == NULL || conn->exiting) {
        return;
    }

    i = (ngx_uint_t) (uintptr_t) data;

    if (rr->type == REDIS_REPLY_STRING && rr->len == 40) {
        ngx_memcpy(ngx_http_ai_redis_sha[i], rr->str, 40);
        ngx_http_ai_redis_sha[i][40] = '\0';
    }

    if (i == NGX_HTTP_AI_REDIS_SCRIPTS - 1 && !conn->ready
        && rr->type != REDIS_REPLY_ERROR)
    {
        /* all that the connection needed went through */

        conn->ready = 1;
        conn->backoff = NGX_HTTP_AI_REDIS_BACKOFF_MIN;

        ngx_log_debug1(NGX_LOG_DEBUG_EVENT, &conn->log, 0,
                       "ai redis ready %V", &conn->store->addr_text);
    }
}


static void
ngx_http_ai_redis_connected(const redisAsyncContext *ac, int status)
{
    ngx_http_ai_redis_conn_t  *conn;

    conn = ac->data;

    if (conn == NULL) {
        return;
    }

    if (conn->connect_timer.timer_set) {
        ngx_del_timer(&conn->connect_timer);
    }

    if (status != REDIS_OK) {
        /* the context is freed after this, in the cleanup */
        ngx_http_ai_redis_log_error(conn, "connect() failed: %s",
                                    ac->errstr);
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, &conn->log, 0,
                   "ai redis connected %V", &conn->store->addr_text);
}


static void
ngx_http_ai_redis_disconnected(const redisAsyncContext *ac, int status)
{
    ngx_http_ai_redis_conn_t  *conn;

    conn = ac->data;

    if (conn == NULL || conn->exiting) {
        return;
    }

    if (status != REDIS_OK) {
        ngx_http_ai_redis_log_error(conn, "connection lost: %s",
                                    ac->errstr);
    }
}


static void
ngx_http_ai_redis_connect_timeout(ngx_event_t *ev)
{
    ngx_http_ai_redis_conn_t  *conn;

    conn = ev->data;

    ngx_http_ai_redis_log_error(conn, "connect() failed: %s", "timed out");

    if (conn->ac) {
        /* the cleanup schedules the next attempt */
        redisAsyncFree(conn->ac);
    }
}


static void
ngx_http_ai_redis_reconnect(ngx_event_t *ev)
{
    ngx_http_ai_redis_conn_t  *conn;

    conn = ev->data;

    ngx_http_ai_redis_connect(conn);
}


static void
ngx_http_ai_redis_schedule(ngx_http_ai_redis_conn_t *conn)
{
    if (conn->exiting || conn->reconnect.timer_set) {
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, &conn->log, 0,
                   "ai redis reconnect in %M", conn->backoff);

    ngx_add_timer(&conn->reconnect, conn->backoff);

    conn->backoff *= 2;

    if (conn->backoff > NGX_HTTP_AI_REDIS_BACKOFF_MAX) {
        conn->backoff = NGX_HTTP_AI_REDIS_BACKOFF_MAX;
    }
}


/* the event library interface of hiredis */

static void
ngx_http_ai_redis_add_read(void *data)
{
    ngx_http_ai_redis_conn_t *conn = data;

    ngx_connection_t  *c;

    c = conn->connection;

    if (c == NULL || c->read->active) {
        return;
    }

    if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
        ngx_log_error(NGX_LOG_ALERT, &conn->log, 0,
                      "ai redis: cannot add a read event");
    }
}


static void
ngx_http_ai_redis_del_read(void *data)
{
    ngx_http_ai_redis_conn_t *conn = data;

    ngx_connection_t  *c;

    c = conn->connection;

    /* an edge-triggered event stays: a reply is always awaited anyway */

    if (c == NULL || (ngx_event_flags & NGX_USE_CLEAR_EVENT)
        || !c->read->active)
    {
        return;
    }

    (void) ngx_del_event(c->read, NGX_READ_EVENT, 0);
}


static void
ngx_http_ai_redis_add_write(void *data)
{
    ngx_http_ai_redis_conn_t *conn = data;

    ngx_connection_t  *c;

    c = conn->connection;

    if (c == NULL) {
        return;
    }

    if (c->write->ready) {
        /* no new edge will come for a socket writable already */
        if (!c->write->posted) {
            ngx_post_event(c->write, &ngx_posted_events);
        }

        return;
    }

    if (!c->write->active) {
        if (ngx_handle_write_event(c->write, 0) != NGX_OK) {
            ngx_log_error(NGX_LOG_ALERT, &conn->log, 0,
                          "ai redis: cannot add a write event");
        }
    }
}


static void
ngx_http_ai_redis_del_write(void *data)
{
    ngx_http_ai_redis_conn_t *conn = data;

    ngx_connection_t  *c;

    c = conn->connection;

    if (c == NULL) {
        return;
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    if ((ngx_event_flags & NGX_USE_CLEAR_EVENT) || !c->write->active) {
        return;
    }

    (void) ngx_del_event(c->write, NGX_WRITE_EVENT, 0);
}


/*
 * hiredis frees the context (an error, a disconnect, our free): the
 * ngx_connection_t goes (hiredis closes the socket), and unless the
 * worker exits another connection is made after the backoff
 */

static void
ngx_http_ai_redis_cleanup(void *data)
{
    ngx_http_ai_redis_conn_t *conn = data;

    ngx_connection_t  *c;

    c = conn->connection;

    conn->ac = NULL;
    conn->connection = NULL;
    conn->ready = 0;

    if (conn->connect_timer.timer_set) {
        ngx_del_timer(&conn->connect_timer);
    }

    if (c) {
        if (c->read->timer_set) {
            ngx_del_timer(c->read);
        }

        if (c->write->timer_set) {
            ngx_del_timer(c->write);
        }

        if (ngx_del_conn) {
            (void) ngx_del_conn(c, NGX_CLOSE_EVENT);

        } else {
            if (c->read->active || c->read->disabled) {
                (void) ngx_del_event(c->read, NGX_READ_EVENT,
                                     NGX_CLOSE_EVENT);
            }

            if (c->write->active || c->write->disabled) {
                (void) ngx_del_event(c->write, NGX_WRITE_EVENT,
                                     NGX_CLOSE_EVENT);
            }
        }

        if (c->read->posted) {
            ngx_delete_posted_event(c->read);
        }

        if (c->write->posted) {
            ngx_delete_posted_event(c->write);
        }

        c->read->closed = 1;
        c->write->closed = 1;

        ngx_free_connection(c);

        /* hiredis closes it */
        c->fd = (ngx_socket_t) -1;
    }

    ngx_http_ai_redis_schedule(conn);
}


static void
ngx_http_ai_redis_read_handler(ngx_event_t *ev)
{
    int                        fd;
    char                       ch;
    ssize_t                    n;
    ngx_err_t                  err;
    ngx_connection_t          *c;
    redisAsyncContext         *ac;
    ngx_http_ai_redis_conn_t  *conn;

    c = ev->data;
    conn = c->data;

    for ( ;; ) {
        ac = conn->ac;

        if (ac == NULL) {
            return;
        }

        fd = ac->c.fd;

        /* reads up to 16 KB, calls the callbacks, may free the context */
        redisAsyncHandleRead(ac);

        if (conn->ac != ac) {
            return;
        }

        /*
         * an edge-triggered event is not reported again for what is left
         * in the socket: read on while there is more
         */

        n = recv(fd, &ch, 1, MSG_PEEK|MSG_DONTWAIT);

        if (n < 0) {
            err = ngx_socket_errno;

            if (err == NGX_EAGAIN || err == NGX_EINTR) {
                ev->ready = 0;
                return;
            }
        }

        /* more, the end or an error: the next read sees which */
    }
}


static void
ngx_http_ai_redis_write_handler(ngx_event_t *ev)
{
    ngx_connection_t          *c;
    redisAsyncContext         *ac;
    ngx_http_ai_redis_conn_t  *conn;

    c = ev->data;
    conn = c->data;

    if (conn->ac == NULL) {
        return;
    }

    ac = conn->ac;

    /* the connection made, or the output buffer written */
    redisAsyncHandleWrite(ac);

    if (conn->ac == ac && sdslen(ac->c.obuf)) {
        /* the socket is full: the next edge tells when it is not */
        ev->ready = 0;

        if (ev->posted) {
            ngx_delete_posted_event(ev);
        }
    }
}


/* at most once per interval, so that a lost Redis does not flood */

void
ngx_http_ai_redis_log_error(ngx_http_ai_redis_conn_t *conn, const char *fmt,
    const char *detail)
{
    time_t  now;

    now = ngx_time();

    if (conn->logged && now - conn->logged < NGX_HTTP_AI_REDIS_LOG_INTERVAL) {
        ngx_log_debug1(NGX_LOG_DEBUG_EVENT, &conn->log, 0, fmt, detail);
        return;
    }

    conn->logged = now;

    ngx_log_error(NGX_LOG_ERR, &conn->log, 0, fmt, detail);
}


static u_char *
ngx_http_ai_redis_log_conn(ngx_log_t *log, u_char *buf, size_t len)
{
    ngx_http_ai_redis_store_t *rs = log->data;

    return ngx_snprintf(buf, len, ", ai_store \"%V\", redis %V",
                        &rs->name, &rs->addr_text);
}
