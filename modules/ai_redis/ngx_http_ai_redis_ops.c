
/*
 * Copyright (C) AI Gateway authors
 *
 * The redis backend's operations.  A key is PREFIX{KEY} (a hash tag: the
 * keys of a windowed counter share a slot); a sliding window keeps a
 * count per window in PREFIX{KEY}:INDEX, a token bucket a hash in
 * PREFIX{KEY}.  GET, ADD giving the value present, DEL of a value, the
 * counters and the windowed counters are Lua scripts, sent with EVALSHA
 * (EVAL until the digest is known, and again on a NOSCRIPT reply); the
 * windowed ones take the time from the server's TIME, one clock for every
 * node, and follow the shm backend's arithmetic
 * (ngx_http_ai_store_sliding(), ngx_http_ai_store_bucket()).
 *
 * Each command has a record of the backend's, the privdata of hiredis:
 * it points to the op until the op completes, times out or is cancelled,
 * and lives on until hiredis calls back, whatever the op became.
 */


#include "ngx_http_ai_redis.h"


static ngx_int_t ngx_http_ai_redis_send(ngx_http_ai_redis_cmd_t *cmd);
static u_char *ngx_http_ai_redis_key(ngx_http_ai_redis_conn_t *conn,
    ngx_str_t *key, size_t *len);
static void ngx_http_ai_redis_reply(redisAsyncContext *ac, void *reply,
    void *data);
static void ngx_http_ai_redis_result(ngx_http_ai_store_op_t *op,
    redisReply *rr);
static void ngx_http_ai_redis_get_result(ngx_http_ai_store_op_t *op,
    redisReply *rr);
static void ngx_http_ai_redis_counter_result(ngx_http_ai_store_op_t *op,
    redisReply *rr);
static ngx_int_t ngx_http_ai_redis_int(redisReply *rr, int64_t *n);
static ngx_int_t ngx_http_ai_redis_atoi(u_char *p, size_t len, int64_t *n);
static void ngx_http_ai_redis_timeout(ngx_event_t *ev);
static void ngx_http_ai_redis_posted(ngx_event_t *ev);


/*
 * GET: the value and the time it has left; a hash (a bucket) is an
 * error, as the shm backend's windowed counters are
 */

static char  ngx_http_ai_redis_script_get[] =
    "local v = redis.call('GET', KEYS[1])\n"
    "if not v then return false end\n"
    "return {v, redis.call('PTTL', KEYS[1])}\n";


/*
 * ADD given op->get: when present, the value and the time it has left, as
 * GET gives them; else false, once set (ARGV value, ttl; 0: none)
 */

static char  ngx_http_ai_redis_script_add[] =
    "local v = redis.call('GET', KEYS[1])\n"
    "if v then return {v, redis.call('PTTL', KEYS[1])} end\n"
    "if ARGV[2] == '0' then\n"
    "    redis.call('SET', KEYS[1], ARGV[1])\n"
    "else\n"
    "    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
    "end\n"
    "return false\n";


/* DEL given a value: only while the key holds it (GET of a hash fails) */

static char  ngx_http_ai_redis_script_del[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
    "    return redis.call('DEL', KEYS[1])\n"
    "end\n"
    "return 0\n";


/*
 * INCR and RESERVE: ARGV delta, limit, ttl (of a new key), reserve;
 * saturating at +-(2^63 - 1), as the shm backend does; the number is
 * returned as a string, exact
 */

static char  ngx_http_ai_redis_script_incr[] =
    "local k = KEYS[1]\n"
    "local v = redis.call('GET', k)\n"
    "local d = ARGV[1]\n"
    "local max = '9223372036854775807'\n"
    "if v and not string.find(v, '^-?%d+$') then\n"
    "  return redis.error_reply('ERR not a counter')\n"
    "end\n"
    "if ARGV[4] == '1' and tonumber(d) > 0 then\n"
    "  local n = tonumber(v or '0')\n"
    "  if n > tonumber(ARGV[2]) - tonumber(d) then\n"
    "    local t = 0\n"
    "    if v then t = redis.call('PTTL', k) end\n"
    "    if t < 0 then t = 0 end\n"
    "    return {0, v or '0', t}\n"
    "  end\n"
    "end\n"
    "local r = redis.pcall('INCRBY', k, d)\n"
    "if type(r) == 'table' and r.err then\n"
    "  if not string.find(r.err, 'overflow') then return r end\n"
    "  if tonumber(d) > 0 then\n"
    "    redis.call('SET', k, max, 'KEEPTTL')\n"
    "  else\n"
    "    redis.call('SET', k, '-' .. max, 'KEEPTTL')\n"
    "  end\n"
    "end\n"
    "local n = redis.call('GET', k)\n"
    "if n == '-9223372036854775808' then\n"
    "  n = '-' .. max\n"
    "  redis.call('SET', k, n, 'KEEPTTL')\n"
    "end\n"
    "if not v and tonumber(ARGV[3]) > 0 then\n"
    "  redis.call('PEXPIRE', k, ARGV[3])\n"
    "end\n"
    "local t = redis.call('PTTL', k)\n"
    "if t < 0 then t = 0 end\n"
    "return {1, n, t}\n";


/*
 * The windowed counters, INCR and RESERVE: ARGV delta, limit, window,
 * reserve, bucket, stamp; returns {applied, number, ttl, stamp, retry}
 */

static char  ngx_http_ai_redis_script_window[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local d = tonumber(ARGV[1])\n"
    "local limit = tonumber(ARGV[2])\n"
    "local win = tonumber(ARGV[3])\n"
    "local reserve = ARGV[4] == '1'\n"
    "local k = KEYS[1]\n"
    "local big = 9007199254740992\n"
    "if ARGV[5] == '1' then\n"
    "  local lim = limit\n"
    "  if lim <= 0 then lim = 1 end\n"
    "  local h = redis.call('HMGET', k, 'l', 't')\n"
    "  local level = (tonumber(h[1]) or 0) / 1000\n"
    "  local last = tonumber(h[2]) or 0\n"
    "  if now > last then\n"
    "    local leak = (now - last) * lim / win\n"
    "    if level > leak then level = level - leak else level = 0 end\n"
    "  end\n"
    "  if reserve and d > 0 and level + d > limit then\n"
    "    local retry = 0\n"
    "    if d <= limit then\n"
    "      retry = math.floor((level + d - limit) * win / lim) + 1\n"
    "    end\n"
    "    return {0, math.floor(level), math.floor(level * win / lim) + 1,\n"
    "            0, retry}\n"
    "  end\n"
    "  level = level + d\n"
    "  if level < 0 then level = 0 elseif level > 9e15 then level = 9e15 end\n"
    "  local ttl = 0\n"
    "  if level > 0 then ttl = math.floor(level * win / lim) + 1 end\n"
    "  redis.call('HSET', k, 'l', string.format('%.0f',\n"
    "             math.floor(level * 1000)), 't', string.format('%.0f', now))\n"
    "  redis.call('PEXPIRE', k, ttl + 1)\n"
    "  return {1, math.floor(level), ttl, 0, 0}\n"
    "end\n"
    "local i = math.floor(now / win)\n"
    "local kc = k .. ':' .. string.format('%.0f', i)\n"
    "local kl = k .. ':' .. string.format('%.0f', i - 1)\n"
    "local c = tonumber(redis.call('GET', kc) or '0')\n"
    "local l = tonumber(redis.call('GET', kl) or '0')\n"
    "if not c or not l then\n"
    "  return redis.error_reply('ERR not a windowed counter')\n"
    "end\n"
    "local e = (i + 1) * win - now\n"
    "local left = e / win\n"
    "local used = c + math.floor(l * left)\n"
    "if reserve and d > 0 and used + d > limit then\n"
    "  local retry = 0\n"
    "  if d > limit then\n"
    "    retry = 0\n"
    "  elseif c + d <= limit then\n"
    "    retry = math.floor(e - (limit - d - c) * win / l) + 1\n"
    "  else\n"
    "    retry = math.floor(e + (win - (limit - d) * win / c)) + 1\n"
    "  end\n"
    "  local ttl = e\n"
    "  if c ~= 0 then ttl = e + win end\n"
    "  return {0, used, ttl, 0, retry}\n"
    "end\n"
    "local s = tonumber(ARGV[6])\n"
    "local w = 'c'\n"
    "if not reserve and s ~= 0 then\n"
    "  if s == i - 1 then w = 'l' elseif s ~= i then w = nil end\n"
    "end\n"
    "if w == 'c' then\n"
    "  c = math.min(math.max(c + d, 0), big)\n"
    "  if d ~= 0 then\n"
    "    redis.call('SET', kc, string.format('%.0f', c), 'PX', e + win)\n"
    "  end\n"
    "elseif w == 'l' then\n"
    "  l = math.min(math.max(l + d, 0), big)\n"
    "  if d ~= 0 then\n"
    "    redis.call('SET', kl, string.format('%.0f', l), 'PX', e)\n"
    "  end\n"
    "end\n"
    "local ttl = 0\n"
    "if c ~= 0 then ttl = e + win elseif l ~= 0 then ttl = e end\n"
    "return {1, c + math.floor(l * left), ttl, i, 0}\n";


ngx_str_t  ngx_http_ai_redis_scripts[NGX_HTTP_AI_REDIS_SCRIPTS] = {
    { sizeof(ngx_http_ai_redis_script_get) - 1,
      (u_char *) ngx_http_ai_redis_script_get },
    { sizeof(ngx_http_ai_redis_script_incr) - 1,
      (u_char *) ngx_http_ai_redis_script_incr },
    { sizeof(ngx_http_ai_redis_script_window) - 1,
      (u_char *) ngx_http_ai_redis_script_window },
    { sizeof(ngx_http_ai_redis_script_del) - 1,
      (u_char *) ngx_http_ai_redis_script_del },
    { sizeof(ngx_http_ai_redis_script_add) - 1,
      (u_char *) ngx_http_ai_redis_script_add }
};

/* the digests, from SCRIPT LOAD; empty: EVAL */
u_char  ngx_http_ai_redis_sha[NGX_HTTP_AI_REDIS_SCRIPTS][41];


ngx_int_t
ngx_http_ai_redis_run(ngx_http_ai_store_t *store, ngx_http_ai_store_op_t *op)
{
    ngx_http_ai_redis_cmd_t    *cmd;
    ngx_http_ai_redis_conn_t   *conn;
    ngx_http_ai_redis_store_t  *rs;

    rs = store->data;
    conn = rs->conn;

    if (conn == NULL || conn->ac == NULL) {
        /* disconnected (logged then): fails at once */
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, op->log, 0,
                       "ai redis \"%V\": not connected", &rs->name);
        goto failed;
    }

    cmd = ngx_http_ai_redis_cmd_get(conn);
    if (cmd == NULL) {
        goto failed;
    }

    cmd->op = op;

    if (ngx_http_ai_redis_send(cmd) != NGX_OK) {
        cmd->op = NULL;
        ngx_http_ai_redis_cmd_free(cmd);
        goto failed;
    }

    op->backend_data = cmd;

    ngx_add_timer(&cmd->timer, rs->timeout);

    return NGX_AGAIN;

failed:

    /* rc NGX_ERROR, told as any other answer */

    ngx_http_ai_counter_incr(rs->errors, 1);

    op->rc = NGX_ERROR;

    op->event.handler = ngx_http_ai_redis_posted;
    op->event.data = op;
    op->event.log = op->log;

    ngx_post_event(&op->event, &ngx_posted_events);

    return NGX_AGAIN;
}


void
ngx_http_ai_redis_cancel(ngx_http_ai_store_t *store,
    ngx_http_ai_store_op_t *op)
{
    ngx_http_ai_redis_cmd_t  *cmd;

    cmd = op->backend_data;

    if (cmd) {
        /* the reply, when it comes, finds nobody */
        ngx_http_ai_redis_cmd_drop(cmd);
    }

    if (op->event.posted) {
        ngx_delete_posted_event(&op->event);
    }
}


void
ngx_http_ai_redis_unpin(ngx_http_ai_store_t *store,
    ngx_http_ai_store_op_t *op)
{
    /* a GET always copies: nothing is ever pinned */
}


ngx_http_ai_redis_cmd_t *
ngx_http_ai_redis_cmd_get(ngx_http_ai_redis_conn_t *conn)
{
    ngx_queue_t              *q;
    ngx_http_ai_redis_cmd_t  *cmd;

    if (!ngx_queue_empty(&conn->free)) {
        q = ngx_queue_head(&conn->free);
        ngx_queue_remove(q);
        cmd = ngx_queue_data(q, ngx_http_ai_redis_cmd_t, queue);

    } else {
        cmd = ngx_alloc(sizeof(ngx_http_ai_redis_cmd_t), &conn->log);
        if (cmd == NULL) {
            return NULL;
        }
    }

    ngx_memzero(cmd, sizeof(ngx_http_ai_redis_cmd_t));

    cmd->conn = conn;
    cmd->timer.handler = ngx_http_ai_redis_timeout;
    cmd->timer.data = cmd;
    cmd->timer.log = &conn->log;

    ngx_queue_insert_tail(&conn->busy, &cmd->queue);

    return cmd;
}


void
ngx_http_ai_redis_cmd_free(ngx_http_ai_redis_cmd_t *cmd)
{
    if (cmd->timer.timer_set) {
        ngx_del_timer(&cmd->timer);
    }

    ngx_queue_remove(&cmd->queue);
    ngx_queue_insert_head(&cmd->conn->free, &cmd->queue);
}


/* the op goes its way: the command's reply will find nobody */

void
ngx_http_ai_redis_cmd_drop(ngx_http_ai_redis_cmd_t *cmd)
{
    if (cmd->op) {
        cmd->op->backend_data = NULL;
        cmd->op = NULL;
    }

    if (cmd->timer.timer_set) {
        ngx_del_timer(&cmd->timer);
    }
}


static ngx_int_t
ngx_http_ai_redis_send(ngx_http_ai_redis_cmd_t *cmd)
{
    int                        argc, rc;
    u_char                    *p, *key;
    u_char                     num[6][NGX_INT64_LEN + 1];
    size_t                     argvlen[12], len;
    ngx_uint_t                 s;
    const char                *argv[12];
    ngx_http_ai_store_op_t    *op;
    ngx_http_ai_redis_conn_t  *conn;

    op = cmd->op;
    conn = cmd->conn;

    key = ngx_http_ai_redis_key(conn, &op->key, &len);
    if (key == NULL) {
        return NGX_ERROR;
    }

    argc = 0;

#define ngx_http_ai_redis_arg(s, l)                                           \
    argv[argc] = (const char *) (s); argvlen[argc++] = (l)

#define ngx_http_ai_redis_num(i, fmt, v)                                      \
    p = ngx_sprintf(num[i], fmt, v);                                          \
    ngx_http_ai_redis_arg(num[i], p - num[i])

    switch (op->type) {

    case NGX_HTTP_AI_STORE_ADD:
        if (op->get) {
            goto script;
        }

        /* fall through */

    case NGX_HTTP_AI_STORE_SET:
        ngx_http_ai_redis_arg("SET", 3);
        ngx_http_ai_redis_arg(key, len);
        ngx_http_ai_redis_arg(op->value.data, op->value.len);

        if (op->type == NGX_HTTP_AI_STORE_ADD) {
            ngx_http_ai_redis_arg("NX", 2);
        }

        if (op->ttl) {
            ngx_http_ai_redis_arg("PX", 2);
            ngx_http_ai_redis_num(0, "%M", op->ttl);
        }

        break;

    case NGX_HTTP_AI_STORE_DEL:
        if (op->value.len == 0) {
            ngx_http_ai_redis_arg("DEL", 3);
            ngx_http_ai_redis_arg(key, len);
            break;
        }

        /* fall through */

    default: /* GET, INCR, RESERVE, DEL of a value, ADD given get */
    script:

        if (op->type == NGX_HTTP_AI_STORE_GET) {
            s = NGX_HTTP_AI_REDIS_SCRIPT_GET;

        } else if (op->type == NGX_HTTP_AI_STORE_ADD) {
            s = NGX_HTTP_AI_REDIS_SCRIPT_ADD;

        } else if (op->type == NGX_HTTP_AI_STORE_DEL) {
            s = NGX_HTTP_AI_REDIS_SCRIPT_DEL;

        } else if (op->window) {
            s = NGX_HTTP_AI_REDIS_SCRIPT_WINDOW;

        } else {
            s = NGX_HTTP_AI_REDIS_SCRIPT_INCR;
        }

        if (cmd->eval || ngx_http_ai_redis_sha[s][0] == '\0') {
            cmd->eval = 1;
            ngx_http_ai_redis_arg("EVAL", 4);
            ngx_http_ai_redis_arg(ngx_http_ai_redis_scripts[s].data,
                                  ngx_http_ai_redis_scripts[s].len);

        } else {
            ngx_http_ai_redis_arg("EVALSHA", 7);
            ngx_http_ai_redis_arg(ngx_http_ai_redis_sha[s], 40);
        }

        ngx_http_ai_redis_arg("1", 1);
        ngx_http_ai_redis_arg(key, len);

        if (s == NGX_HTTP_AI_REDIS_SCRIPT_GET) {
            break;
        }

        if (s == NGX_HTTP_AI_REDIS_SCRIPT_DEL) {
            ngx_http_ai_redis_arg(op->value.data, op->value.len);
            break;
        }

        if (s == NGX_HTTP_AI_REDIS_SCRIPT_ADD) {
            ngx_http_ai_redis_arg(op->value.data, op->value.len);
            ngx_http_ai_redis_num(0, "%M", op->ttl);
            break;
        }

        ngx_http_ai_redis_num(0, "%L", op->delta);
        ngx_http_ai_redis_num(1, "%L", op->limit);

        if (s == NGX_HTTP_AI_REDIS_SCRIPT_INCR) {
            ngx_http_ai_redis_num(2, "%M", op->ttl);
            ngx_http_ai_redis_arg(op->type == NGX_HTTP_AI_STORE_RESERVE
                                  ? "1" : "0", 1);
            break;
        }

        ngx_http_ai_redis_num(2, "%M", op->window);
        ngx_http_ai_redis_arg(op->type == NGX_HTTP_AI_STORE_RESERVE
                              ? "1" : "0", 1);
        ngx_http_ai_redis_arg(op->bucket ? "1" : "0", 1);
        ngx_http_ai_redis_num(3, "%L", op->stamp);
    }

#undef ngx_http_ai_redis_num
#undef ngx_http_ai_redis_arg

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, op->log, 0,
                   "ai redis %s type:%ui key:\"%V\"",
                   argv[0], op->type, &op->key);

    rc = redisAsyncCommandArgv(conn->ac, ngx_http_ai_redis_reply, cmd, argc,
                               argv, argvlen);

    return rc == REDIS_OK ? NGX_OK : NGX_ERROR;
}


/* PREFIX{KEY}, in the connection's scratch buffer */

static u_char *
ngx_http_ai_redis_key(ngx_http_ai_redis_conn_t *conn, ngx_str_t *key,
    size_t *len)
{
    u_char                     *p;
    size_t                      size;
    ngx_http_ai_redis_store_t  *rs;

    rs = conn->store;

    size = rs->prefix.len + key->len + 2;

    if (size > conn->size) {
        p = ngx_alloc(ngx_max(size, 256), &conn->log);
        if (p == NULL) {
            return NULL;
        }

        if (conn->buf) {
            ngx_free(conn->buf);
        }

        conn->buf = p;
        conn->size = ngx_max(size, 256);
    }

    p = ngx_cpymem(conn->buf, rs->prefix.data, rs->prefix.len);
    *p++ = '{';
    p = ngx_cpymem(p, key->data, key->len);
    *p++ = '}';

    *len = p - conn->buf;

    return conn->buf;
}


static void
ngx_http_ai_redis_reply(redisAsyncContext *ac, void *reply, void *data)
{
    redisReply                 *rr = reply;
    ngx_http_ai_redis_cmd_t    *cmd = data;

    ngx_http_ai_store_op_t     *op;
    ngx_http_ai_redis_conn_t   *conn;
    ngx_http_ai_redis_store_t  *rs;

    conn = cmd->conn;
    rs = conn->store;
    op = cmd->op;

    if (op == NULL || conn->exiting) {
        /* cancelled or timed out: a late reply */
        ngx_http_ai_redis_cmd_free(cmd);
        return;
    }

    if (rr && rr->type == REDIS_REPLY_ERROR && !cmd->eval
        && ngx_strncmp(rr->str, "NOSCRIPT", 8) == 0)
    {
        /* the script cache was flushed: the script itself, which loads it */

        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, op->log, 0,
                       "ai redis NOSCRIPT, EVAL");

        cmd->eval = 1;

        if (ngx_http_ai_redis_send(cmd) == NGX_OK) {
            return;
        }
    }

    ngx_http_ai_redis_cmd_drop(cmd);
    ngx_http_ai_redis_cmd_free(cmd);

    op->rc = NGX_ERROR;

    if (rr == NULL) {
        /* the connection went, logged there */

    } else if (rr->type == REDIS_REPLY_ERROR) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, op->log, 0,
                       "ai redis error reply: %s", rr->str);

    } else {
        ngx_http_ai_redis_result(op, rr);
    }

    if (op->rc == NGX_ERROR) {
        ngx_http_ai_counter_incr(rs->errors, 1);
    }

    /* told from the event loop, not from within hiredis */

    op->event.handler = ngx_http_ai_redis_posted;
    op->event.data = op;
    op->event.log = op->log;

    ngx_post_event(&op->event, &ngx_posted_events);
}


static void
ngx_http_ai_redis_result(ngx_http_ai_store_op_t *op, redisReply *rr)
{
    switch (op->type) {

    case NGX_HTTP_AI_STORE_GET:
        ngx_http_ai_redis_get_result(op, rr);
        break;

    case NGX_HTTP_AI_STORE_ADD:
        if (op->get) {
            /* present: its value (NGX_DECLINED); nil: set */

            if (rr->type == REDIS_REPLY_NIL) {
                op->rc = NGX_OK;
                break;
            }

            ngx_http_ai_redis_get_result(op, rr);

            if (op->rc == NGX_OK) {
                op->rc = NGX_DECLINED;
            }

            break;
        }

        /* fall through */

    case NGX_HTTP_AI_STORE_SET:
        if (rr->type == REDIS_REPLY_STATUS) {
            op->rc = NGX_OK;

        } else if (rr->type == REDIS_REPLY_NIL) {
            /* ADD: present */
            op->rc = NGX_DECLINED;
        }

        break;

    case NGX_HTTP_AI_STORE_DEL:
        if (rr->type == REDIS_REPLY_INTEGER) {
            op->rc = rr->integer ? NGX_OK : NGX_DECLINED;
        }

        break;

    default: /* NGX_HTTP_AI_STORE_INCR, NGX_HTTP_AI_STORE_RESERVE */
        ngx_http_ai_redis_counter_result(op, rr);
    }
}


static void
ngx_http_ai_redis_get_result(ngx_http_ai_store_op_t *op, redisReply *rr)
{
    int64_t      ttl;
    redisReply  *v;

    if (rr->type == REDIS_REPLY_NIL) {
        op->rc = NGX_DECLINED;
        return;
    }

    if (rr->type != REDIS_REPLY_ARRAY || rr->elements != 2
        || rr->element[0]->type != REDIS_REPLY_STRING
        || ngx_http_ai_redis_int(rr->element[1], &ttl) != NGX_OK)
    {
        return;
    }

    v = rr->element[0];

    op->value.len = v->len;
    op->value.data = ngx_pnalloc(op->pool, v->len + 1);
    if (op->value.data == NULL) {
        return;
    }

    ngx_memcpy(op->value.data, v->str, v->len);
    op->value.data[v->len] = '\0';

    /* a counter is kept as its decimal string: it is both */

    if (ngx_http_ai_redis_atoi(op->value.data, op->value.len, &op->number)
        == NGX_OK)
    {
        op->counter = 1;
    }

    op->ttl = ttl > 0 ? (ngx_msec_t) ttl : 0;
    op->rc = NGX_OK;
}


/* {applied, number, ttl[, stamp, retry]} */

static void
ngx_http_ai_redis_counter_result(ngx_http_ai_store_op_t *op, redisReply *rr)
{
    int64_t  ok, number, ttl, stamp, retry;

    if (rr->type != REDIS_REPLY_ARRAY
        || rr->elements != (size_t) (op->window ? 5 : 3)
        || ngx_http_ai_redis_int(rr->element[0], &ok) != NGX_OK
        || ngx_http_ai_redis_int(rr->element[1], &number) != NGX_OK
        || ngx_http_ai_redis_int(rr->element[2], &ttl) != NGX_OK)
    {
        return;
    }

    op->number = number;
    op->ttl = ttl > 0 ? (ngx_msec_t) ttl : 0;

    if (op->window) {
        if (ngx_http_ai_redis_int(rr->element[3], &stamp) != NGX_OK
            || ngx_http_ai_redis_int(rr->element[4], &retry) != NGX_OK)
        {
            return;
        }

        if (ok) {
            op->stamp = stamp;

        } else {
            op->retry = retry > 0 ? (ngx_msec_t) retry : 0;
        }
    }

    op->rc = ok ? NGX_OK : NGX_DECLINED;
}


static ngx_int_t
ngx_http_ai_redis_int(redisReply *rr, int64_t *n)
{
    if (rr->type == REDIS_REPLY_INTEGER) {
        *n = rr->integer;
        return NGX_OK;
    }

    if (rr->type == REDIS_REPLY_STRING) {
        return ngx_http_ai_redis_atoi((u_char *) rr->str, rr->len, n);
    }

    return NGX_ERROR;
}


/* a decimal int64 as Redis writes it: no "+", no leading zero */

static ngx_int_t
ngx_http_ai_redis_atoi(u_char *p, size_t len, int64_t *n)
{
    u_char    *last;
    uint64_t   v, max;
    ngx_uint_t neg;

    if (len == 0 || len > NGX_INT64_LEN) {
        return NGX_ERROR;
    }

    last = p + len;
    neg = 0;

    if (*p == '-') {
        neg = 1;
        p++;
    }

    if (p == last || (*p == '0' && (last - p > 1 || neg))) {
        return NGX_ERROR;
    }

    max = NGX_HTTP_AI_REDIS_INT64_MAX + neg;
    v = 0;

    for ( /* void */ ; p < last; p++) {
        if (*p < '0' || *p > '9') {
            return NGX_ERROR;
        }

        if (v > (max - (*p - '0')) / 10) {
            return NGX_ERROR;
        }

        v = v * 10 + (*p - '0');
    }

    *n = neg ? (int64_t) (0 - v) : (int64_t) v;

    return NGX_OK;
}


static void
ngx_http_ai_redis_timeout(ngx_event_t *ev)
{
    ngx_http_ai_redis_cmd_t *cmd = ev->data;

    ngx_http_ai_store_op_t    *op;
    ngx_http_ai_redis_conn_t  *conn;

    conn = cmd->conn;
    op = cmd->op;

    /* the command stays in flight: its late reply finds nobody */

    ngx_http_ai_redis_cmd_drop(cmd);

    if (op == NULL) {
        return;
    }

    ngx_http_ai_redis_log_error(conn, "%s", "a command timed out");
    ngx_http_ai_counter_incr(conn->store->errors, 1);

    op->rc = NGX_ERROR;

    ngx_http_ai_store_complete(op);
}


static void
ngx_http_ai_redis_posted(ngx_event_t *ev)
{
    ngx_http_ai_store_op_t *op = ev->data;

    ngx_http_ai_store_complete(op);
}
