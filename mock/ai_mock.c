/*
 * ai_mock.c - fast, deterministic mock LLM provider (OpenAI, Anthropic,
 * Gemini wire formats) for tests, demos and benchmarks.
 *
 *   ai_mock -l 127.0.0.1:PORT [-w WORKERS] [-k REQUIRED_KEY]
 *
 * Single-threaded epoll loop per process, non-blocking sockets, HTTP/1.1
 * keepalive + pipelining, Content-Length and chunked request bodies, timers
 * in a min-heap.  See README.md for the exact behaviour.
 *
 * Build: cc -O2 -Wall -Wextra -Werror -o ai_mock ai_mock.c -lcjson
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#define MAX_HEAD      (64 * 1024)
#define MAX_BODY      (64LL * 1024 * 1024)
#define IN_LIMIT      ((size_t) (MAX_HEAD + 2 * MAX_BODY))
#define PIPE_CAP      (64 * 1024)
#define IN_INIT       4096
#define MAXH          128
#define MAX_WORDS_BEH 100000
#define LU_MAX        64
#define MAX_DELAY_MS  3600000L

static const char TOOL_ARGS[] = "{\"location\":\"Paris\",\"unit\":\"celsius\"}";

/* reasoning: the thinking text (one token a word), its signatures */
static const char *const THINK_WORDS[] = {
    "mock ", "thinking: ", "step ", "one, ", "step ", "two."
};
#define THINK_TOKENS  6
static const char THINK_TEXT[] = "mock thinking: step one, step two.";
static const char MOCK_SIG[] = "bW9jay1zaWduYXR1cmUtYW50aHJvcGlj";
static const char MOCK_GSIG[] = "bW9jay90aG91Z2h0+/8=";
static const char *const TOOL_FRAGS[3] = {
    "{\"location\":", "\"Paris\",", "\"unit\":\"celsius\"}"
};

/* ------------------------------------------------------------------ */
/* growable byte buffer                                                */

typedef struct {
    char   *p;
    size_t  len, cap;
} buf_t;

static void
die_oom(void)
{
    fputs("ai_mock: out of memory\n", stderr);
    exit(1);
}

static void
b_reserve(buf_t *b, size_t extra)
{
    size_t  nc;
    char   *p;

    if (b->len + extra <= b->cap) {
        return;
    }
    nc = b->cap ? b->cap : 256;
    while (nc < b->len + extra) {
        nc *= 2;
    }
    p = realloc(b->p, nc);
    if (p == NULL) {
        die_oom();
    }
    b->p = p;
    b->cap = nc;
}

static inline void
b_add(buf_t *b, const void *s, size_t n)
{
    b_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

#define B_LIT(b, s) b_add((b), (s), sizeof(s) - 1)

static void
b_cstr(buf_t *b, const char *s)
{
    b_add(b, s, strlen(s));
}

static void
b_int(buf_t *b, long long v)
{
    char  t[32], *e = t + sizeof(t), *q = e;
    int   neg = v < 0;
    unsigned long long u = neg ? 0ULL - (unsigned long long) v
                               : (unsigned long long) v;

    do {
        *--q = (char) ('0' + u % 10);
        u /= 10;
    } while (u);
    if (neg) {
        *--q = '-';
    }
    b_add(b, q, (size_t) (e - q));
}

static void b_fmt(buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
b_fmt(buf_t *b, const char *fmt, ...)
{
    va_list  ap;
    char     tmp[256];
    int      n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0) {
        return;
    }
    if ((size_t) n < sizeof(tmp)) {
        b_add(b, tmp, (size_t) n);
        return;
    }
    b_reserve(b, (size_t) n + 1);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t) n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t) n;
}

/* JSON string literal (quoted, escaped); bytes >= 0x80 pass through */
static void
b_jstr(buf_t *b, const char *s, size_t n)
{
    static const char  hex[] = "0123456789abcdef";
    size_t             i = 0, blk, k;
    char              *o;

    b_reserve(b, 1);
    b->p[b->len++] = '"';
    while (i < n) {
        blk = n - i;
        if (blk > 4096) {
            blk = 4096;
        }
        b_reserve(b, blk * 6);
        o = b->p + b->len;
        for (k = 0; k < blk; k++) {
            unsigned char ch = (unsigned char) s[i + k];
            switch (ch) {
            case '"':  *o++ = '\\'; *o++ = '"'; break;
            case '\\': *o++ = '\\'; *o++ = '\\'; break;
            case '\n': *o++ = '\\'; *o++ = 'n'; break;
            case '\r': *o++ = '\\'; *o++ = 'r'; break;
            case '\t': *o++ = '\\'; *o++ = 't'; break;
            case '\b': *o++ = '\\'; *o++ = 'b'; break;
            case '\f': *o++ = '\\'; *o++ = 'f'; break;
            default:
                if (ch < 0x20 || ch == 0x7f) {
                    *o++ = '\\'; *o++ = 'u'; *o++ = '0'; *o++ = '0';
                    *o++ = hex[ch >> 4]; *o++ = hex[ch & 15];
                } else {
                    *o++ = (char) ch;
                }
            }
        }
        b->len = (size_t) (o - b->p);
        i += blk;
    }
    b_reserve(b, 1);
    b->p[b->len++] = '"';
}

static void
b_jcstr(buf_t *b, const char *s)
{
    if (s == NULL) {
        B_LIT(b, "null");
    } else {
        b_jstr(b, s, strlen(s));
    }
}

/* ------------------------------------------------------------------ */
/* globals                                                             */

static volatile sig_atomic_t  g_stop;
static volatile sig_atomic_t  g_chld;
static const char            *g_key;      /* -k */
static int                    g_ep = -1;
static int                    g_spare = -1;

static unsigned long  g_reqno;            /* every request, for ids */
static unsigned long  g_count;            /* non-/mock requests */
static int            g_have_last;
static buf_t          g_last_head, g_last_body;

static buf_t  g_body, g_ev, g_pref, g_lu, g_reply;
static int    g_lu_n;
static int   *g_wst, *g_wen, g_wcap, g_nw;

typedef struct ff_s {
    struct ff_s *next;
    long         n;
    char         key[];
} ff_t;
static ff_t *g_ff;

static struct {
    int type;
    int fd;
} g_lis = { 1, -1 };

static long long
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------ */
/* HTTP request                                                        */

typedef struct {
    const char *n, *v;
    size_t      nl, vl;
} hdr_t;

typedef struct {
    const char *method, *uri, *path, *query;
    size_t      mlen, ulen, plen, qlen;
    int         minor;
    hdr_t       h[MAXH];
    int         nh;
    long long   clen;
    int         chunked, expect, conn_close, conn_ka;
    const char *body;
    size_t      blen;
} req_t;

static req_t g_req, g_lreq;

static int
ci_contains(const char *s, size_t n, const char *needle)
{
    size_t m = strlen(needle), i;

    if (m > n) {
        return 0;
    }
    for (i = 0; i + m <= n; i++) {
        if (strncasecmp(s + i, needle, m) == 0) {
            return 1;
        }
    }
    return 0;
}

static int
hname_is(const hdr_t *h, const char *name, size_t len)
{
    return h->nl == len && strncasecmp(h->n, name, len) == 0;
}

#define HNAME(h, lit) hname_is((h), (lit), sizeof(lit) - 1)

static int
parse_head(const char *p, size_t n, req_t *q)
{
    const char *end = p + n, *ls = p, *nl, *le, *sp1, *u, *sp2, *ver, *qm;
    const char *colon, *v, *ve;
    hdr_t      *h;

    q->nh = 0;
    q->clen = -1;
    q->chunked = q->expect = q->conn_close = q->conn_ka = 0;
    q->body = NULL;
    q->blen = 0;

    nl = memchr(ls, '\n', (size_t) (end - ls));
    if (nl == NULL) {
        return -1;
    }
    le = nl;
    if (le > ls && le[-1] == '\r') {
        le--;
    }
    sp1 = memchr(ls, ' ', (size_t) (le - ls));
    if (sp1 == NULL || sp1 == ls) {
        return -1;
    }
    u = sp1 + 1;
    while (u < le && *u == ' ') {
        u++;
    }
    sp2 = memchr(u, ' ', (size_t) (le - u));
    if (sp2 == NULL || sp2 == u) {
        return -1;
    }
    ver = sp2 + 1;
    while (ver < le && *ver == ' ') {
        ver++;
    }
    if (le - ver < 8 || memcmp(ver, "HTTP/1.", 7) != 0) {
        return -1;
    }
    q->minor = ver[7] == '0' ? 0 : 1;
    q->method = ls;
    q->mlen = (size_t) (sp1 - ls);
    q->uri = u;
    q->ulen = (size_t) (sp2 - u);
    qm = memchr(u, '?', q->ulen);
    q->path = u;
    q->plen = qm ? (size_t) (qm - u) : q->ulen;
    q->query = qm ? qm + 1 : u + q->ulen;
    q->qlen = qm ? (size_t) (sp2 - qm - 1) : 0;

    ls = nl + 1;
    while (ls < end) {
        nl = memchr(ls, '\n', (size_t) (end - ls));
        if (nl == NULL) {
            return -1;
        }
        le = nl;
        if (le > ls && le[-1] == '\r') {
            le--;
        }
        if (le == ls) {
            break;
        }
        colon = memchr(ls, ':', (size_t) (le - ls));
        if (colon == NULL || colon == ls || q->nh >= MAXH) {
            return -1;
        }
        h = &q->h[q->nh++];
        h->n = ls;
        h->nl = (size_t) (colon - ls);
        while (h->nl && (h->n[h->nl - 1] == ' ' || h->n[h->nl - 1] == '\t')) {
            h->nl--;
        }
        v = colon + 1;
        while (v < le && (*v == ' ' || *v == '\t')) {
            v++;
        }
        ve = le;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) {
            ve--;
        }
        h->v = v;
        h->vl = (size_t) (ve - v);

        if (HNAME(h, "content-length")) {
            long long cl = 0;
            size_t    i;
            if (h->vl == 0 || h->vl > 18) {
                return -1;
            }
            for (i = 0; i < h->vl; i++) {
                if (h->v[i] < '0' || h->v[i] > '9') {
                    return -1;
                }
                cl = cl * 10 + (h->v[i] - '0');
            }
            if (q->clen >= 0 && q->clen != cl) {
                return -1;
            }
            q->clen = cl;
        } else if (HNAME(h, "transfer-encoding")) {
            if (ci_contains(h->v, h->vl, "chunked")) {
                q->chunked = 1;
            } else if (!(h->vl == 8 && strncasecmp(h->v, "identity", 8) == 0)) {
                return -1;
            }
        } else if (HNAME(h, "connection")) {
            if (ci_contains(h->v, h->vl, "close")) {
                q->conn_close = 1;
            }
            if (ci_contains(h->v, h->vl, "keep-alive")) {
                q->conn_ka = 1;
            }
        } else if (HNAME(h, "expect")) {
            if (ci_contains(h->v, h->vl, "100-continue")) {
                q->expect = 1;
            }
        }
        ls = nl + 1;
    }
    return 0;
}

static const hdr_t *
hdr_get(const req_t *q, const char *name)
{
    size_t len = strlen(name);
    int    i;

    for (i = 0; i < q->nh; i++) {
        if (hname_is(&q->h[i], name, len)) {
            return &q->h[i];
        }
    }
    return NULL;
}

static int
hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* URL-decode s[0..n) into dst (size dsz, NUL-terminated) */
static size_t
url_decode(const char *s, size_t n, char *dst, size_t dsz, int plus)
{
    size_t i, o = 0;

    for (i = 0; i < n && o + 1 < dsz; i++) {
        if (s[i] == '%' && i + 2 < n
            && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0)
        {
            dst[o++] = (char) (hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else if (plus && s[i] == '+') {
            dst[o++] = ' ';
        } else {
            dst[o++] = s[i];
        }
    }
    dst[o] = '\0';
    return o;
}

/* query parameter lookup; decoded into dst */
static int
query_get(const req_t *q, const char *name, char *dst, size_t dsz)
{
    size_t      nl = strlen(name);
    const char *s = q->query, *e = q->query + q->qlen, *amp;

    while (s < e) {
        amp = memchr(s, '&', (size_t) (e - s));
        if (amp == NULL) {
            amp = e;
        }
        if ((size_t) (amp - s) > nl && memcmp(s, name, nl) == 0 && s[nl] == '=') {
            url_decode(s + nl + 1, (size_t) (amp - s - nl - 1), dst, dsz, 1);
            return 1;
        }
        if ((size_t) (amp - s) == nl && memcmp(s, name, nl) == 0) {
            dst[0] = '\0';
            return 1;
        }
        s = amp + 1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* connections                                                         */

enum { ST_HEAD, ST_BODY, ST_CHUNK };
enum { CK_SIZE, CK_DATA, CK_DATA_CRLF, CK_TRAILER, CK_DONE };

typedef struct {
    size_t end;
    int    delay;
} seg_t;

typedef struct conn_s {
    int        type;             /* 0: connection */
    int        fd;
    buf_t      in;
    size_t     rpos;             /* start of current request in in */
    int        st;
    size_t     scan;             /* offsets below are relative to rpos */
    size_t     head_len;
    long long  clen;
    size_t     ck_src, ck_dst;
    int        ck_state;
    long long  ck_rem;
    unsigned   eof:1, rd_ready:1, rdhup:1, resp_pending:1, resp_close:1,
               close_after:1, timer_fired:1, sent_continue:1, expect:1;
    buf_t      out;
    size_t     out_sent, out_avail;
    seg_t     *segs;
    int        nsegs, segcap, seg_idx;
    long long  deadline;
    int        heap_idx;
} conn_t;

/* timer min-heap */
static conn_t **g_heap;
static int      g_hn, g_hcap;

static void
heap_swap(int i, int j)
{
    conn_t *t = g_heap[i];
    g_heap[i] = g_heap[j];
    g_heap[j] = t;
    g_heap[i]->heap_idx = i;
    g_heap[j]->heap_idx = j;
}

static void
heap_up(int i)
{
    while (i > 0) {
        int p = (i - 1) / 2;
        if (g_heap[p]->deadline <= g_heap[i]->deadline) {
            break;
        }
        heap_swap(i, p);
        i = p;
    }
}

static void
heap_down(int i)
{
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < g_hn && g_heap[l]->deadline < g_heap[m]->deadline) m = l;
        if (r < g_hn && g_heap[r]->deadline < g_heap[m]->deadline) m = r;
        if (m == i) {
            break;
        }
        heap_swap(i, m);
        i = m;
    }
}

static void
heap_add(conn_t *c)
{
    if (g_hn == g_hcap) {
        g_hcap = g_hcap ? g_hcap * 2 : 1024;
        g_heap = realloc(g_heap, sizeof(conn_t *) * (size_t) g_hcap);
        if (g_heap == NULL) {
            die_oom();
        }
    }
    g_heap[g_hn] = c;
    c->heap_idx = g_hn++;
    heap_up(c->heap_idx);
}

static void
heap_del(conn_t *c)
{
    int i = c->heap_idx;

    if (i < 0) {
        return;
    }
    g_hn--;
    if (i != g_hn) {
        g_heap[i] = g_heap[g_hn];
        g_heap[i]->heap_idx = i;
        heap_down(i);
        heap_up(i);
    }
    c->heap_idx = -1;
}

static void
conn_close(conn_t *c)
{
    heap_del(c);
    close(c->fd);
    free(c->in.p);
    free(c->out.p);
    free(c->segs);
    free(c);
}

static void
seg_mark(conn_t *c, int delay)
{
    if (delay <= 0 && c->nsegs > 0) {
        c->segs[c->nsegs - 1].end = c->out.len;
        return;
    }
    if (c->nsegs == c->segcap) {
        c->segcap = c->segcap ? c->segcap * 2 : 4;
        c->segs = realloc(c->segs, sizeof(seg_t) * (size_t) c->segcap);
        if (c->segs == NULL) {
            die_oom();
        }
    }
    c->segs[c->nsegs].end = c->out.len;
    c->segs[c->nsegs].delay = delay;
    c->nsegs++;
}

/* make the next segments of the current response available for sending */
static void
release(conn_t *c)
{
    while (c->seg_idx < c->nsegs) {
        seg_t *s = &c->segs[c->seg_idx];
        if (s->delay > 0 && !c->timer_fired) {
            c->deadline = now_ms() + s->delay;
            heap_add(c);
            return;
        }
        c->timer_fired = 0;
        c->out_avail = s->end;
        c->seg_idx++;
    }
    c->nsegs = c->seg_idx = 0;
    c->resp_pending = 0;
    c->timer_fired = 0;
    if (c->resp_close) {
        c->close_after = 1;
    }
}

/* ------------------------------------------------------------------ */
/* behaviour spec                                                      */

typedef struct {
    int  status, retry_after, delay_headers, delay_chunks, disconnect_after;
    int  malformed, garbage, words, usage, fail_first;
    int  html, echo_key, cl_stream, reasoning_content;
    long cache_read, cache_write;
    char usage_prompt[32], usage_completion[32], usage_total[32];
} beh_t;

static void
beh_init(beh_t *b)
{
    memset(b, 0, sizeof(*b));
    b->retry_after = -1;
    b->disconnect_after = -1;
    b->words = -1;
    b->usage = 1;
}

static long
clampl(long v, long lo, long hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

static void
beh_parse(beh_t *b, const char *s, size_t n)
{
    const char *e = s + n, *p = s, *ie, *eq;
    char        key[32], val[32];
    size_t      kl, vl;
    long        v;

    while (p < e) {
        ie = p;
        while (ie < e && *ie != ',' && *ie != ';' && *ie != '&') {
            ie++;
        }
        eq = memchr(p, '=', (size_t) (ie - p));
        if (eq != NULL) {
            while (p < eq && *p == ' ') p++;
            kl = (size_t) (eq - p);
            while (kl && p[kl - 1] == ' ') kl--;
            vl = (size_t) (ie - eq - 1);
            if (kl && kl < sizeof(key) && vl < sizeof(val)) {
                memcpy(key, p, kl);
                key[kl] = '\0';
                memcpy(val, eq + 1, vl);
                val[vl] = '\0';
                v = strtol(val, NULL, 10);
                if (!strcmp(key, "status")) {
                    b->status = (int) clampl(v, 0, 999);
                } else if (!strcmp(key, "retry_after")) {
                    b->retry_after = (int) clampl(v, 0, 86400 * 365);
                } else if (!strcmp(key, "delay_headers_ms")) {
                    b->delay_headers = (int) clampl(v, 0, MAX_DELAY_MS);
                } else if (!strcmp(key, "delay_chunks_ms")) {
                    b->delay_chunks = (int) clampl(v, 0, MAX_DELAY_MS);
                } else if (!strcmp(key, "disconnect_after")) {
                    b->disconnect_after = (int) clampl(v, -1, INT_MAX);
                } else if (!strcmp(key, "malformed")) {
                    b->malformed = v != 0;
                } else if (!strcmp(key, "garbage_sse")) {
                    b->garbage = v != 0;
                } else if (!strcmp(key, "words")) {
                    b->words = (int) clampl(v, 0, MAX_WORDS_BEH);
                } else if (!strcmp(key, "usage")) {
                    b->usage = v != 0;
                } else if (!strcmp(key, "fail_first")) {
                    b->fail_first = (int) clampl(v, 0, INT_MAX);
                } else if (!strcmp(key, "html")) {
                    b->html = v != 0;
                } else if (!strcmp(key, "echo_key")) {
                    b->echo_key = v != 0;
                } else if (!strcmp(key, "cl_stream")) {
                    b->cl_stream = v != 0;
                } else if (!strcmp(key, "reasoning_content")) {
                    b->reasoning_content = v != 0;
                } else if (!strcmp(key, "cache_read")) {
                    b->cache_read = clampl(v, 0, 1000000000L);
                } else if (!strcmp(key, "cache_write")) {
                    b->cache_write = clampl(v, 0, 1000000000L);
                } else if (!strcmp(key, "usage_prompt")) {
                    memcpy(b->usage_prompt, val, vl + 1);
                } else if (!strcmp(key, "usage_completion")) {
                    memcpy(b->usage_completion, val, vl + 1);
                } else if (!strcmp(key, "usage_total")) {
                    memcpy(b->usage_total, val, vl + 1);
                }
            }
        }
        p = ie + 1;
    }
}

/* ------------------------------------------------------------------ */
/* per-request context and response writing                            */

enum { PV_OPENAI, PV_ANTHROPIC, PV_GEMINI };

typedef struct {
    conn_t        *c;
    req_t         *q;
    int            prov;
    unsigned long  reqno;
    beh_t          beh;
    char           model[256];   /* reported model (before '~') */
    char           mkey[512];    /* raw model string, fail_first key */
    int            close, http10, chunked;
    int            measure;      /* cl_stream: first pass, bytes counted */
    long long      measured;
    long long      cl_len;       /* cl_stream: Content-Length, or -1 */
    char           extra[256];   /* extra header lines "\r\nName: v" */
    size_t         extra_len;
    long long      created;
} rq_t;

static const char *
reason(int st)
{
    switch (st) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 529: return "Overloaded";
    default:  return "Unknown";
    }
}

static void
resp_head(rq_t *r, int st, const char *ctype, long long clen)
{
    buf_t *o = &r->c->out;

    B_LIT(o, "HTTP/1.1 ");
    b_int(o, st);
    B_LIT(o, " ");
    b_cstr(o, reason(st));
    B_LIT(o, "\r\nContent-Type: ");
    b_cstr(o, ctype);
    if (clen >= 0) {
        B_LIT(o, "\r\nContent-Length: ");
        b_int(o, clen);
    } else if (r->chunked) {
        B_LIT(o, "\r\nTransfer-Encoding: chunked");
    }
    B_LIT(o, "\r\nx-request-id: mock-");
    b_int(o, (long long) r->reqno);
    if (r->extra_len) {
        b_add(o, r->extra, r->extra_len);
    }
    if (r->close) {
        B_LIT(o, "\r\nConnection: close");
    } else if (r->http10) {
        B_LIT(o, "\r\nConnection: keep-alive");
    }
    B_LIT(o, "\r\n\r\n");
}

/* complete (Content-Length) response; success=1 enables malformed and
 * disconnect_after behaviours */
static void
finish_plain(rq_t *r, int st, const char *ctype, const char *body,
    size_t blen, int success)
{
    size_t send_len = blen;
    int    cut = 0;

    if (success && r->beh.malformed) {
        blen = send_len = blen / 2;
    }
    if (success && r->beh.disconnect_after >= 0) {
        send_len = blen / 2;
        cut = 1;
    }
    resp_head(r, st, ctype, (long long) blen);
    b_add(&r->c->out, body, send_len);
    seg_mark(r->c, r->beh.delay_headers);
    if (cut) {
        r->close = 1;
    }
}

static void
add_extra(rq_t *r, const char *fmt, long v)
{
    int n = snprintf(r->extra + r->extra_len, sizeof(r->extra) - r->extra_len,
                     fmt, v);
    if (n > 0 && (size_t) n < sizeof(r->extra) - r->extra_len) {
        r->extra_len += (size_t) n;
    }
}

static const char *
default_msg(int st)
{
    switch (st) {
    case 400: return "Invalid request (mock).";
    case 401: return "Incorrect API key provided (mock).";
    case 403: return "Permission denied (mock).";
    case 404: return "The requested resource was not found (mock).";
    case 408: return "Request timed out (mock).";
    case 413: return "Request too large (mock).";
    case 429: return "Rate limit reached for requests (mock). Please try again later.";
    case 500: return "The server had an error while processing your request (mock).";
    case 502: return "Bad gateway (mock).";
    case 503: return "The service is temporarily unavailable (mock).";
    case 504: return "Gateway timeout (mock).";
    case 529: return "Overloaded (mock).";
    default:  return "Injected error (mock).";
    }
}

static const char *
anthropic_type(int st)
{
    switch (st) {
    case 400: return "invalid_request_error";
    case 401: return "authentication_error";
    case 402: return "billing_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 529: return "overloaded_error";
    default:  return st >= 500 ? "api_error" : "invalid_request_error";
    }
}

static const char *
gemini_status(int st)
{
    switch (st) {
    case 400: return "INVALID_ARGUMENT";
    case 401: return "UNAUTHENTICATED";
    case 403: return "PERMISSION_DENIED";
    case 404: return "NOT_FOUND";
    case 409: return "ABORTED";
    case 429: return "RESOURCE_EXHAUSTED";
    case 499: return "CANCELLED";
    case 500: return "INTERNAL";
    case 501: return "UNIMPLEMENTED";
    case 503: return "UNAVAILABLE";
    case 504: return "DEADLINE_EXCEEDED";
    default:  return st >= 500 ? "INTERNAL" : "FAILED_PRECONDITION";
    }
}

static void
b_html(buf_t *b, const char *s)
{
    for ( /* void */ ; *s; s++) {
        switch (*s) {
        case '&': B_LIT(b, "&amp;"); break;
        case '<': B_LIT(b, "&lt;"); break;
        case '>': B_LIT(b, "&gt;"); break;
        case '"': B_LIT(b, "&quot;"); break;
        default:  b_add(b, s, 1);
        }
    }
}

/* html=1: an HTML page, as a web server or a proxy in front of a provider
 * sends; msg NULL: no message */
static void
send_html(rq_t *r, int st, const char *msg)
{
    buf_t *b = &g_body;

    b->len = 0;
    B_LIT(b, "<html>\r\n<head><title>");
    b_int(b, st);
    B_LIT(b, " ");
    b_cstr(b, reason(st));
    B_LIT(b, "</title></head>\r\n<body>\r\n<center><h1>");
    b_int(b, st);
    B_LIT(b, " ");
    b_cstr(b, reason(st));
    B_LIT(b, "</h1></center>\r\n");
    if (msg) {
        B_LIT(b, "<p>");
        b_html(b, msg);
        B_LIT(b, "</p>\r\n");
    }
    B_LIT(b, "<hr><center>ai_mock</center>\r\n</body>\r\n</html>\r\n");
    finish_plain(r, st, "text/html", b->p, b->len, 0);
}

/*
 * Error in the provider's format.  msg NULL: default text.  code: NULL ->
 * default for status, "" -> JSON null (OpenAI only).  param NULL -> null.
 */
static void
send_error(rq_t *r, int st, const char *msg, const char *param,
    const char *code)
{
    buf_t *b = &g_body;

    b->len = 0;
    if (msg == NULL) {
        msg = default_msg(st);
    }
    if (st >= 400 && r->beh.retry_after >= 0) {
        add_extra(r, "\r\nRetry-After: %ld", r->beh.retry_after);
        if (r->prov == PV_OPENAI) {
            add_extra(r, "\r\nx-ratelimit-reset-requests: %lds",
                      r->beh.retry_after);
        }
    }
    if (r->beh.html) {
        send_html(r, st, msg);
        return;
    }
    if (r->prov == PV_ANTHROPIC) {
        B_LIT(b, "{\"type\":\"error\",\"error\":{\"type\":");
        b_jcstr(b, anthropic_type(st));
        B_LIT(b, ",\"message\":");
        b_jcstr(b, msg);
        B_LIT(b, "}}");
        finish_plain(r, st, "application/json", b->p, b->len, 0);
        return;
    }
    if (r->prov == PV_GEMINI) {
        B_LIT(b, "{\"error\":{\"code\":");
        b_int(b, st);
        B_LIT(b, ",\"message\":");
        b_jcstr(b, msg);
        B_LIT(b, ",\"status\":");
        b_jcstr(b, gemini_status(st));
        B_LIT(b, "}}");
        finish_plain(r, st, "application/json; charset=UTF-8", b->p, b->len, 0);
        return;
    }
    {
        const char *type, *dcode = NULL;
        if (st == 429) {
            type = "rate_limit_error";
            dcode = "rate_limit_exceeded";
        } else if (st == 401) {
            type = "invalid_request_error";
            dcode = "invalid_api_key";
        } else if (st == 403) {
            type = "permission_error";
            dcode = "permission_denied";
        } else if (st == 404) {
            type = "invalid_request_error";
            dcode = "model_not_found";
        } else if (st >= 500) {
            type = "server_error";
        } else {
            type = "invalid_request_error";
        }
        if (code == NULL) {
            code = dcode;
        } else if (code[0] == '\0') {
            code = NULL;
        }
        B_LIT(b, "{\"error\":{\"message\":");
        b_jcstr(b, msg);
        B_LIT(b, ",\"type\":");
        b_jcstr(b, type);
        B_LIT(b, ",\"param\":");
        b_jcstr(b, param);
        B_LIT(b, ",\"code\":");
        b_jcstr(b, code);
        B_LIT(b, "}}");
        finish_plain(r, st, "application/json", b->p, b->len, 0);
    }
}

/* ------------------------------------------------------------------ */
/* streaming                                                           */

enum { EV_INIT, EV_CONTENT, EV_TAIL };

typedef struct {
    rq_t       *r;
    int         nev, ncontent, stopped, sse;
    const char *le;
} st_t;

static void
out_chunk(rq_t *r, const char *d, size_t n)
{
    buf_t *o = &r->c->out;
    char   h[24];
    int    hl;

    if (n == 0) {
        return;
    }
    if (r->measure) {
        r->measured += (long long) n;
        return;
    }
    if (r->chunked) {
        hl = snprintf(h, sizeof(h), "%zx\r\n", n);
        b_add(o, h, (size_t) hl);
        b_add(o, d, n);
        B_LIT(o, "\r\n");
    } else {
        b_add(o, d, n);
    }
}

static void
st_begin(st_t *s, rq_t *r, const char *ctype, int sse, const char *le)
{
    memset(s, 0, sizeof(*s));
    s->r = r;
    s->sse = sse;
    s->le = le;
    if (r->measure) {
        return;
    }
    if (!r->chunked && r->cl_len < 0) {
        r->close = 1;
    }
    resp_head(r, 200, ctype, r->cl_len);
}

/* emit the event held in g_ev */
static void
st_emit(st_t *s, int kind)
{
    rq_t  *r = s->r;
    buf_t *e = &g_ev;
    int    delay;

    if (s->stopped) {
        return;
    }
    if (!r->measure && r->beh.disconnect_after >= 0
        && (kind == EV_TAIL
            || (kind == EV_CONTENT && s->ncontent >= r->beh.disconnect_after)))
    {
        s->stopped = 1;
        return;
    }
    delay = s->nev == 0 ? r->beh.delay_headers : r->beh.delay_chunks;
    if (s->nev > 0 && s->sse && r->beh.garbage) {
        buf_t *g = &g_pref;     /* scratch; prefixes are rebuilt per event */
        size_t save = g->len;
        const char *le = s->le;
        if (s->nev == 1) {
            b_fmt(g, ": keepalive%s%sthis line has no colon%s%sdata: {not json%s%s",
                  le, le, le, le, le, le);
        } else {
            b_fmt(g, ": keepalive%s%s", le, le);
        }
        out_chunk(r, g->p + save, g->len - save);
        g->len = save;
    }
    if (kind == EV_CONTENT && r->beh.malformed && s->ncontent == 0) {
        e->len /= 2;
        b_cstr(e, s->le);
        b_cstr(e, s->le);
    }
    out_chunk(r, e->p, e->len);
    if (!r->measure) {
        seg_mark(r->c, delay);
    }
    s->nev++;
    if (kind == EV_CONTENT) {
        s->ncontent++;
    }
}

static void
st_end(st_t *s)
{
    rq_t *r = s->r;

    if (r->measure) {
        return;
    }
    if (s->nev == 0) {
        seg_mark(r->c, r->beh.delay_headers);
    }
    if (r->beh.disconnect_after >= 0) {
        s->stopped = 1;
    }
    if (s->stopped) {
        r->close = 1;
        return;
    }
    if (r->cl_len >= 0) {
        /* cl_stream: the Content-Length ends it */
    } else if (r->chunked) {
        B_LIT(&r->c->out, "0\r\n\r\n");
        seg_mark(r->c, 0);
    } else {
        r->close = 1;
    }
}

/*
 * cl_stream=1: the stream goes with a Content-Length, the length of the
 * whole stream, measured by a first pass that only counts the bytes
 */
static void
cl_measure(rq_t *r, int on)
{
    if (on) {
        r->measure = 1;
        r->measured = 0;
        return;
    }
    r->measure = 0;
    r->cl_len = r->measured;
    r->chunked = 0;
}

/* ------------------------------------------------------------------ */
/* conversation analysis                                               */

typedef struct {
    long  words;
    int   nmsgs;
    int   last_user_idx, last_idx, last_is_user, last_toolres, kw;
} conv_t;

typedef struct {
    long        P, C;
    int         nw;
    int         fin;            /* 0 stop, 1 length, 2 tool */
    const char *tool;
    int         think;          /* thinking tokens (in C), 0: none */
    int         thoughts;       /* the thinking text is shown */
} gen_t;

/* thinking: THINK_TOKENS more completion tokens, all reasoning */
static void
gen_think(gen_t *g, int shown)
{
    g->think = THINK_TOKENS;
    g->thoughts = shown;
    g->C += THINK_TOKENS;
}

static int
is_ws(int ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v'
           || ch == '\f';
}

static long
count_words(const char *s)
{
    long n = 0;
    int  in = 0, ws;

    for (; *s; s++) {
        ws = is_ws((unsigned char) *s);
        if (!ws && !in) {
            n++;
        }
        in = !ws;
    }
    return n;
}

static void
lu_add(const char *s)
{
    const char *w;

    while (*s && g_lu_n < LU_MAX) {
        while (*s && is_ws((unsigned char) *s)) s++;
        if (!*s) {
            break;
        }
        w = s;
        while (*s && !is_ws((unsigned char) *s)) s++;
        if (g_lu.len) {
            B_LIT(&g_lu, " ");
        }
        b_add(&g_lu, w, (size_t) (s - w));
        g_lu_n++;
    }
}

static void
conv_init(conv_t *cv)
{
    memset(cv, 0, sizeof(*cv));
    cv->last_user_idx = -1;
    cv->last_idx = -1;
    g_lu.len = 0;
    g_lu_n = 0;
}

static void
conv_text(conv_t *cv, int idx, const char *s)
{
    if (s == NULL) {
        return;
    }
    cv->words += count_words(s);
    if (idx >= 0 && idx == cv->last_user_idx) {
        lu_add(s);
    }
    if (idx >= 0 && idx == cv->last_idx && !cv->kw) {
        cv->kw = strcasestr(s, "tool") != NULL || strcasestr(s, "weather") != NULL;
    }
}

static void
conv_walk(conv_t *cv, int idx, const cJSON *j)
{
    const cJSON *ch;

    if (cJSON_IsString(j)) {
        conv_text(cv, idx, j->valuestring);
    } else if (cJSON_IsArray(j) || cJSON_IsObject(j)) {
        cJSON_ArrayForEach(ch, j) {
            conv_walk(cv, idx, ch);
        }
    }
}

static cJSON *
jget(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

static cJSON *
jget2(const cJSON *o, const char *k1, const char *k2)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k1);
    return v ? v : cJSON_GetObjectItemCaseSensitive(o, k2);
}

static const char *
jstr(const cJSON *o, const char *k)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int
role_is(const cJSON *m, const char *role, int missing_ok)
{
    const char *r = jstr(m, "role");
    if (r == NULL) {
        return missing_ok;
    }
    return strcmp(r, role) == 0;
}

/* text blocks: string, or array of {type:text,text} */
static void
conv_blocks_text(conv_t *cv, int idx, const cJSON *ct)
{
    const cJSON *p;
    const char  *t, *tx;

    if (cJSON_IsString(ct)) {
        conv_text(cv, idx, ct->valuestring);
    } else if (cJSON_IsArray(ct)) {
        cJSON_ArrayForEach(p, ct) {
            if (cJSON_IsString(p)) {
                conv_text(cv, idx, p->valuestring);
                continue;
            }
            t = jstr(p, "type");
            tx = jstr(p, "text");
            if (tx && (t == NULL || !strcmp(t, "text") || !strcmp(t, "input_text"))) {
                conv_text(cv, idx, tx);
            }
        }
    }
}

static void
conv_openai(conv_t *cv, const cJSON *msgs)
{
    const cJSON *m;
    int          i = 0, n = cJSON_GetArraySize(msgs);

    cv->last_idx = n - 1;
    cJSON_ArrayForEach(m, msgs) {
        if (role_is(m, "user", 0)) {
            cv->last_user_idx = i;
            if (i == n - 1) {
                cv->last_is_user = 1;
            }
        }
        i++;
    }
    i = 0;
    cJSON_ArrayForEach(m, msgs) {
        conv_blocks_text(cv, i, jget(m, "content"));
        cv->nmsgs++;
        i++;
    }
}

static void
conv_anthropic(conv_t *cv, const cJSON *root, const cJSON *msgs)
{
    const cJSON *m, *ct, *p, *sys;
    const char  *t;
    int          i = 0, n = cJSON_GetArraySize(msgs);

    sys = jget(root, "system");
    if (cJSON_IsString(sys) || cJSON_IsArray(sys)) {
        conv_blocks_text(cv, -2, sys);
        cv->nmsgs++;
    }
    cv->last_idx = n - 1;
    cJSON_ArrayForEach(m, msgs) {
        if (role_is(m, "user", 0)) {
            cv->last_user_idx = i;
            if (i == n - 1) {
                cv->last_is_user = 1;
            }
        }
        i++;
    }
    i = 0;
    cJSON_ArrayForEach(m, msgs) {
        ct = jget(m, "content");
        if (cJSON_IsString(ct)) {
            conv_text(cv, i, ct->valuestring);
        } else if (cJSON_IsArray(ct)) {
            cJSON_ArrayForEach(p, ct) {
                t = jstr(p, "type");
                if (t && !strcmp(t, "text")) {
                    conv_text(cv, i, jstr(p, "text"));
                } else if (t && !strcmp(t, "tool_result")) {
                    conv_blocks_text(cv, i, jget(p, "content"));
                    if (i == n - 1) {
                        cv->last_toolres = 1;
                    }
                }
            }
        }
        cv->nmsgs++;
        i++;
    }
}

static void
conv_gemini(conv_t *cv, const cJSON *root, const cJSON *contents)
{
    const cJSON *m, *p, *sys, *parts, *fr;
    int          i = 0, n = cJSON_GetArraySize(contents);

    sys = jget2(root, "systemInstruction", "system_instruction");
    if (cJSON_IsObject(sys)) {
        parts = jget(sys, "parts");
        cJSON_ArrayForEach(p, parts) {
            conv_text(cv, -2, jstr(p, "text"));
        }
        cv->nmsgs++;
    } else if (cJSON_IsString(sys)) {
        conv_text(cv, -2, sys->valuestring);
        cv->nmsgs++;
    }
    cv->last_idx = n - 1;
    cJSON_ArrayForEach(m, contents) {
        if (role_is(m, "user", 1)) {
            cv->last_user_idx = i;
            if (i == n - 1) {
                cv->last_is_user = 1;
            }
        }
        i++;
    }
    i = 0;
    cJSON_ArrayForEach(m, contents) {
        parts = jget(m, "parts");
        cJSON_ArrayForEach(p, parts) {
            const char *tx = jstr(p, "text");
            if (tx) {
                conv_text(cv, i, tx);
            }
            fr = jget2(p, "functionResponse", "function_response");
            if (fr) {
                conv_walk(cv, i, jget(fr, "response"));
                if (i == n - 1) {
                    cv->last_toolres = 1;
                }
            }
        }
        cv->nmsgs++;
        i++;
    }
}

/* structured output asked for: the reply is a JSON object */
static int g_json_reply;

static void
build_reply(const rq_t *r)
{
    size_t i;
    int    k;

    g_reply.len = 0;
    if (g_json_reply) {
        B_LIT(&g_reply, "{\"answer\": \"mock reply\"}");
    } else if (r->beh.words >= 0) {
        for (k = 1; k <= r->beh.words; k++) {
            if (k > 1) {
                B_LIT(&g_reply, " ");
            }
            B_LIT(&g_reply, "w");
            b_int(&g_reply, k);
        }
    } else {
        B_LIT(&g_reply, "mock reply:");
        if (g_lu.len) {
            B_LIT(&g_reply, " ");
            b_add(&g_reply, g_lu.p, g_lu.len);
        }
    }
    g_nw = 0;
    i = 0;
    while (i < g_reply.len) {
        while (i < g_reply.len && g_reply.p[i] == ' ') i++;
        if (i >= g_reply.len) {
            break;
        }
        if (g_nw == g_wcap) {
            g_wcap = g_wcap ? g_wcap * 2 : 128;
            g_wst = realloc(g_wst, sizeof(int) * (size_t) g_wcap);
            g_wen = realloc(g_wen, sizeof(int) * (size_t) g_wcap);
            if (g_wst == NULL || g_wen == NULL) {
                die_oom();
            }
        }
        g_wst[g_nw] = (int) i;
        while (i < g_reply.len && g_reply.p[i] != ' ') i++;
        g_wen[g_nw++] = (int) i;
    }
}

static void
gen_compute(const rq_t *r, const conv_t *cv, const char *tool, long maxtok,
    gen_t *g)
{
    memset(g, 0, sizeof(*g));
    g->P = cv->words + cv->nmsgs;
    if (g->P < 1) {
        g->P = 1;
    }
    if (tool && cv->last_is_user && !cv->last_toolres && cv->kw) {
        g->tool = tool;
        g->fin = 2;
        g->C = 12;
        return;
    }
    build_reply(r);
    g->nw = g_nw;
    if (maxtok >= 0 && g->nw >= maxtok) {
        g->nw = (int) maxtok;
        g->fin = 1;
    }
    g->C = g->nw;
}

static size_t
reply_len(const gen_t *g)
{
    return g->nw ? (size_t) g_wen[g->nw - 1] : 0;
}

/* word i including its trailing space (except the last) */
static void
word_span(const gen_t *g, int i, const char **p, size_t *n)
{
    int end = i < g->nw - 1 ? g_wst[i + 1] : g_wen[i];
    *p = g_reply.p + g_wst[i];
    *n = (size_t) (end - g_wst[i]);
}

static long
jnum(const cJSON *o, const char *k, long dflt)
{
    cJSON *v = jget(o, k);
    return cJSON_IsNumber(v) ? (long) v->valuedouble : dflt;
}

/* ------------------------------------------------------------------ */
/* common request steps                                                */

static void
set_model(rq_t *r, const char *raw)
{
    const char *t;
    size_t      n;

    if (raw == NULL) {
        return;
    }
    snprintf(r->mkey, sizeof(r->mkey), "%s", raw);
    t = strchr(raw, '~');
    n = t ? (size_t) (t - raw) : strlen(raw);
    if (n >= sizeof(r->model)) {
        n = sizeof(r->model) - 1;
    }
    memcpy(r->model, raw, n);
    r->model[n] = '\0';
    if (t) {
        beh_parse(&r->beh, t + 1, strlen(t + 1));
    }
}

static long
ff_incr(const char *key)
{
    ff_t *f;

    for (f = g_ff; f; f = f->next) {
        if (!strcmp(f->key, key)) {
            return ++f->n;
        }
    }
    f = malloc(sizeof(ff_t) + strlen(key) + 1);
    if (f == NULL) {
        die_oom();
    }
    strcpy(f->key, key);
    f->n = 1;
    f->next = g_ff;
    g_ff = f;
    return 1;
}

static void send_key_error(rq_t *r);

/* injected failure; returns 1 when an error response was written */
static int
inject(rq_t *r)
{
    if (r->beh.echo_key) {
        send_key_error(r);
        return 1;
    }
    if (r->beh.fail_first > 0) {
        if (ff_incr(r->mkey) <= r->beh.fail_first) {
            send_error(r, r->beh.status >= 400 ? r->beh.status : 503, NULL,
                       NULL, NULL);
            return 1;
        }
        return 0;
    }
    if (r->beh.status >= 400) {
        send_error(r, r->beh.status, NULL, NULL, NULL);
        return 1;
    }
    if (r->beh.html) {
        send_html(r, 200, NULL);
        return 1;
    }
    return 0;
}

static cJSON *
parse_body(rq_t *r)
{
    cJSON *root = NULL;

    if (r->q->blen) {
        root = cJSON_ParseWithLength(r->q->body, r->q->blen);
    }
    if (cJSON_IsObject(root)) {
        return root;
    }
    cJSON_Delete(root);
    if (r->prov == PV_ANTHROPIC) {
        send_error(r, 400, "There was an error parsing the body of your request: invalid JSON", NULL, NULL);
    } else if (r->prov == PV_GEMINI) {
        send_error(r, 400, "Invalid JSON payload received.", NULL, NULL);
    } else {
        send_error(r, 400, "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)", NULL, "");
    }
    return NULL;
}

/* the request's key, as a provider reads it; NULL if there is none */
static const char *
req_key(rq_t *r, size_t *klp, char *qk, size_t qsz)
{
    const hdr_t *h;
    const char  *k = NULL;
    size_t       kl = 0;

    h = hdr_get(r->q, "authorization");
    if (h && h->vl >= 7 && strncasecmp(h->v, "Bearer ", 7) == 0) {
        k = h->v + 7;
        kl = h->vl - 7;
        while (kl && *k == ' ') {
            k++;
            kl--;
        }
    } else if ((h = hdr_get(r->q, "x-api-key")) != NULL
               || (h = hdr_get(r->q, "api-key")) != NULL
               || (h = hdr_get(r->q, "x-goog-api-key")) != NULL)
    {
        k = h->v;
        kl = h->vl;
    } else if (query_get(r->q, "key", qk, qsz)) {
        k = qk;
        kl = strlen(qk);
    }

    *klp = kl;
    return k;
}

/* echo_key=1: a 401 (or the injected status) whose message holds the key,
 * as OpenAI's does */
static void
send_key_error(rq_t *r)
{
    const char *k;
    size_t      kl;
    char        qk[512], msg[768];

    k = req_key(r, &kl, qk, sizeof(qk));
    if (k == NULL) {
        k = "(none)";
        kl = 6;
    }
    if (kl > 512) {
        kl = 512;
    }
    if (r->prov == PV_ANTHROPIC) {
        snprintf(msg, sizeof(msg), "invalid x-api-key: %.*s", (int) kl, k);
    } else if (r->prov == PV_GEMINI) {
        snprintf(msg, sizeof(msg), "API key not valid: %.*s. Please pass a "
                 "valid API key.", (int) kl, k);
    } else {
        snprintf(msg, sizeof(msg), "Incorrect API key provided: %.*s. You "
                 "can find your API key at "
                 "https://platform.openai.com/account/api-keys.", (int) kl, k);
    }
    send_error(r, r->beh.status >= 400 ? r->beh.status : 401, msg, NULL, NULL);
}

/* returns 1 when an auth error was written */
static int
check_auth(rq_t *r)
{
    const char  *k;
    size_t       kl;
    char         qk[512];

    k = req_key(r, &kl, qk, sizeof(qk));

    if (k && kl >= 3 && memcmp(k, "bad", 3) == 0) {
        goto invalid;
    }
    if (k && kl >= 9 && memcmp(k, "forbidden", 9) == 0) {
        if (r->prov == PV_ANTHROPIC) {
            send_error(r, 403, "Your API key does not have permission to use the specified resource.", NULL, NULL);
        } else if (r->prov == PV_GEMINI) {
            send_error(r, 403, "Permission denied: API key is not authorized for this request.", NULL, NULL);
        } else {
            send_error(r, 403, "You are not allowed to perform this request with this API key.", NULL, NULL);
        }
        return 1;
    }
    if (g_key) {
        if (k == NULL) {
            if (r->prov == PV_ANTHROPIC) {
                send_error(r, 401, "x-api-key header is required", NULL, NULL);
            } else if (r->prov == PV_GEMINI) {
                send_error(r, 401, "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.", NULL, NULL);
            } else {
                send_error(r, 401, "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).", NULL, "");
            }
            return 1;
        }
        if (kl != strlen(g_key) || memcmp(k, g_key, kl) != 0) {
            goto invalid;
        }
    }
    return 0;

invalid:
    if (r->beh.echo_key) {
        send_key_error(r);
        return 1;
    }
    if (r->prov == PV_ANTHROPIC) {
        send_error(r, 401, "invalid x-api-key", NULL, NULL);
    } else if (r->prov == PV_GEMINI) {
        send_error(r, 401, "API key not valid. Please pass a valid API key.", NULL, NULL);
    } else {
        send_error(r, 401, "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.", NULL, NULL);
    }
    return 1;
}

/* ------------------------------------------------------------------ */
/* OpenAI                                                              */

/*
 * usage_prompt, usage_completion, usage_total: a token given in the spec
 * goes verbatim where the count would be
 */
static void
b_tok(buf_t *b, const char *tok, long v)
{
    if (tok[0]) {
        b_cstr(b, tok);
    } else {
        b_int(b, v);
    }
}

/* a token's value when it is a plain integer, else 0 */
static long long
tok_int(const char *tok, long v)
{
    char      *end;
    long long  n;

    if (tok[0] == '\0') {
        return v;
    }
    errno = 0;
    n = strtoll(tok, &end, 10);
    return (errno || *end) ? 0 : n;
}

static void
b_total(buf_t *b, const beh_t *be, long P, long C)
{
    if (be->usage_total[0]) {
        b_cstr(b, be->usage_total);
    } else {
        b_int(b, tok_int(be->usage_prompt, P)
                 + tok_int(be->usage_completion, C));
    }
}

/*
 * cache_read=R, cache_write=W: the prompt had R tokens more read from the
 * provider's cache and W more written to it.  OpenAI's prompt_tokens
 * counts them all (cached_tokens: R; there is no count of writes),
 * Anthropic's input_tokens neither (cache_read_input_tokens,
 * cache_creation_input_tokens), Gemini's promptTokenCount all
 * (cachedContentTokenCount: R)
 */
static void
oa_usage(buf_t *b, const beh_t *be, long P, long C, long R)
{
    P += be->cache_read + be->cache_write;
    B_LIT(b, "{\"prompt_tokens\":");
    b_tok(b, be->usage_prompt, P);
    B_LIT(b, ",\"completion_tokens\":");
    b_tok(b, be->usage_completion, C);
    B_LIT(b, ",\"total_tokens\":");
    b_total(b, be, P, C);
    B_LIT(b, ",\"prompt_tokens_details\":{\"cached_tokens\":");
    b_int(b, be->cache_read);
    B_LIT(b, ",\"audio_tokens\":0},"
             "\"completion_tokens_details\":{\"reasoning_tokens\":");
    b_int(b, R);
    B_LIT(b, ",\"audio_tokens\":0,"
             "\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}}");
}

static const char *
oa_finish(const gen_t *g)
{
    return g->fin == 2 ? "\"tool_calls\"" : g->fin == 1 ? "\"length\"" : "\"stop\"";
}

/* g_ev = prefix + '{"index":0,"delta":' ; caller adds delta then oa_ev_end */
static void
oa_ev_start(void)
{
    g_ev.len = 0;
    b_add(&g_ev, g_pref.p, g_pref.len);
    B_LIT(&g_ev, "{\"index\":0,\"delta\":");
}

static void
oa_ev_end(const char *fr, int usage_null)
{
    B_LIT(&g_ev, ",\"logprobs\":null,\"finish_reason\":");
    b_cstr(&g_ev, fr);
    B_LIT(&g_ev, "}]");
    if (usage_null) {
        B_LIT(&g_ev, ",\"usage\":null");
    }
    B_LIT(&g_ev, "}\n\n");
}

static void
oa_stream(rq_t *r, const gen_t *g, int include_usage)
{
    st_t        s;
    int         un = include_usage && r->beh.usage, i;
    const char *wp;
    size_t      wn;

    g_pref.len = 0;
    B_LIT(&g_pref, "data: {\"id\":\"chatcmpl-mock");
    b_int(&g_pref, (long long) r->reqno);
    B_LIT(&g_pref, "\",\"object\":\"chat.completion.chunk\",\"created\":");
    b_int(&g_pref, r->created);
    B_LIT(&g_pref, ",\"model\":");
    b_jcstr(&g_pref, r->model);
    B_LIT(&g_pref, ",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_mock\",\"choices\":[");
    size_t pref_len = g_pref.len;

    st_begin(&s, r, "text/event-stream; charset=utf-8", 1, "\n");

    oa_ev_start();
    if (g->tool && !g->thoughts) {
        B_LIT(&g_ev, "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"index\":0,"
                     "\"id\":\"call_mock_1\",\"type\":\"function\",\"function\":{\"name\":");
        b_jcstr(&g_ev, g->tool);
        B_LIT(&g_ev, ",\"arguments\":\"\"}}],\"refusal\":null}");
    } else if (g->tool) {
        B_LIT(&g_ev, "{\"role\":\"assistant\",\"content\":null,\"refusal\":null}");
    } else {
        B_LIT(&g_ev, "{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null}");
    }
    oa_ev_end("null", un);
    st_emit(&s, EV_INIT);

    for (i = 0; g->thoughts && i < THINK_TOKENS; i++) {
        g_pref.len = pref_len;
        oa_ev_start();
        B_LIT(&g_ev, "{\"reasoning_content\":");
        b_jcstr(&g_ev, THINK_WORDS[i]);
        B_LIT(&g_ev, "}");
        oa_ev_end("null", un);
        st_emit(&s, EV_CONTENT);
    }

    if (g->tool && g->thoughts) {
        /* the call begins after the reasoning */
        g_pref.len = pref_len;
        oa_ev_start();
        B_LIT(&g_ev, "{\"tool_calls\":[{\"index\":0,\"id\":\"call_mock_1\",\"type\":\"function\","
                     "\"function\":{\"name\":");
        b_jcstr(&g_ev, g->tool);
        B_LIT(&g_ev, ",\"arguments\":\"\"}}]}");
        oa_ev_end("null", un);
        st_emit(&s, EV_CONTENT);
    }

    if (g->tool) {
        for (i = 0; i < 3; i++) {
            g_pref.len = pref_len;
            oa_ev_start();
            B_LIT(&g_ev, "{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":");
            b_jcstr(&g_ev, TOOL_FRAGS[i]);
            B_LIT(&g_ev, "}}]}");
            oa_ev_end("null", un);
            st_emit(&s, EV_CONTENT);
        }
    } else {
        for (i = 0; i < g->nw && !s.stopped; i++) {
            g_pref.len = pref_len;
            word_span(g, i, &wp, &wn);
            oa_ev_start();
            B_LIT(&g_ev, "{\"content\":");
            b_jstr(&g_ev, wp, wn);
            B_LIT(&g_ev, "}");
            oa_ev_end("null", un);
            st_emit(&s, EV_CONTENT);
        }
    }
    g_pref.len = pref_len;
    oa_ev_start();
    B_LIT(&g_ev, "{}");
    oa_ev_end(oa_finish(g), un);
    st_emit(&s, EV_TAIL);

    if (un) {
        g_pref.len = pref_len;
        g_ev.len = 0;
        b_add(&g_ev, g_pref.p, g_pref.len);
        B_LIT(&g_ev, "],\"usage\":");
        oa_usage(&g_ev, &r->beh, g->P, g->C, g->think);
        B_LIT(&g_ev, "}\n\n");
        st_emit(&s, EV_TAIL);
    }
    g_ev.len = 0;
    B_LIT(&g_ev, "data: [DONE]\n\n");
    st_emit(&s, EV_TAIL);
    st_end(&s);
}

static void
h_openai_chat(rq_t *r)
{
    cJSON       *root, *msgs, *tools, *so;
    const char  *model, *tool = NULL, *tc;
    conv_t       cv;
    gen_t        g;
    long         maxtok;
    buf_t       *b = &g_body;

    root = parse_body(r);
    if (root == NULL) {
        return;
    }
    model = jstr(root, "model");
    set_model(r, model);
    if (inject(r)) {
        goto done;
    }
    if (model == NULL) {
        send_error(r, 400, "you must provide a model parameter", NULL, "");
        goto done;
    }
    msgs = jget(root, "messages");
    if (!cJSON_IsArray(msgs)) {
        send_error(r, 400, "Missing required parameter: 'messages'.", "messages",
                   "missing_required_parameter");
        goto done;
    }
    if (cJSON_GetArraySize(msgs) == 0) {
        send_error(r, 400, "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
                   "messages", "empty_array");
        goto done;
    }
    conv_init(&cv);
    conv_openai(&cv, msgs);

    tools = jget(root, "tools");
    tc = jstr(root, "tool_choice");
    if (cJSON_IsArray(tools) && cJSON_GetArraySize(tools) > 0
        && !(tc && !strcmp(tc, "none")))
    {
        cJSON *t0 = cJSON_GetArrayItem(tools, 0);
        tool = jstr(jget(t0, "function"), "name");
        if (tool == NULL) {
            tool = jstr(t0, "name");
        }
    }
    maxtok = jnum(root, "max_completion_tokens", -1);
    if (maxtok < 0) {
        maxtok = jnum(root, "max_tokens", -1);
    }
    tc = jstr(jget(root, "response_format"), "type");
    g_json_reply = tc && (!strcmp(tc, "json_schema") || !strcmp(tc, "json_object"));
    gen_compute(r, &cv, tool, maxtok, &g);
    g_json_reply = 0;

    /*
     * a reasoning model: reasoning_tokens in the usage; the thinking
     * text only as OpenAI-compatible servers send it (reasoning_content)
     */
    tc = jstr(root, "reasoning_effort");
    if (tc && strcmp(tc, "none") != 0) {
        gen_think(&g, r->beh.reasoning_content);
    }

    if (cJSON_IsTrue(jget(root, "stream"))) {
        so = jget(root, "stream_options");
        if (r->beh.cl_stream) {
            cl_measure(r, 1);
            oa_stream(r, &g, cJSON_IsTrue(jget(so, "include_usage")));
            cl_measure(r, 0);
        }
        oa_stream(r, &g, cJSON_IsTrue(jget(so, "include_usage")));
        goto done;
    }

    b->len = 0;
    B_LIT(b, "{\"id\":\"chatcmpl-mock");
    b_int(b, (long long) r->reqno);
    B_LIT(b, "\",\"object\":\"chat.completion\",\"created\":");
    b_int(b, r->created);
    B_LIT(b, ",\"model\":");
    b_jcstr(b, r->model);
    B_LIT(b, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
    if (g.tool) {
        B_LIT(b, "null,\"tool_calls\":[{\"id\":\"call_mock_1\",\"type\":\"function\",\"function\":{\"name\":");
        b_jcstr(b, g.tool);
        B_LIT(b, ",\"arguments\":");
        b_jcstr(b, TOOL_ARGS);
        B_LIT(b, "}}]");
    } else {
        b_jstr(b, g_reply.p, reply_len(&g));
    }
    if (g.thoughts) {
        B_LIT(b, ",\"reasoning_content\":");
        b_jcstr(b, THINK_TEXT);
    }
    B_LIT(b, ",\"refusal\":null,\"annotations\":[]},\"logprobs\":null,\"finish_reason\":");
    b_cstr(b, oa_finish(&g));
    B_LIT(b, "}]");
    if (r->beh.usage) {
        B_LIT(b, ",\"usage\":");
        oa_usage(b, &r->beh, g.P, g.C, g.think);
    }
    B_LIT(b, ",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_mock\"}");
    finish_plain(r, 200, "application/json", b->p, b->len, 1);

done:
    cJSON_Delete(root);
}

static uint32_t
fnv1a(const unsigned char *s, size_t n)
{
    uint32_t h = 2166136261u;
    size_t   i;

    for (i = 0; i < n; i++) {
        h ^= s[i];
        h *= 16777619u;
    }
    return h;
}

/* ------------------------------------------------------------------ */
/* OpenAI Responses API                                                */

/*
 * A response's id carries a hash of the key that made it, so that a
 * response is found (previous_response_id, GET, DELETE) only with that
 * key, as at OpenAI, where a response lives in its project.
 */
static unsigned
rs_key_hash(rq_t *r)
{
    const char *k;
    size_t      kl;
    char        qk[512];

    k = req_key(r, &kl, qk, sizeof(qk));
    return k ? (unsigned) fnv1a((const unsigned char *) k, kl) : 0;
}

static int
rs_id_ok(rq_t *r, const char *id)
{
    const char *u;
    char        h[16];

    if (id == NULL || strncmp(id, "resp_mock", 9) != 0) {
        return 0;
    }
    u = strrchr(id, '_');
    snprintf(h, sizeof(h), "%08x", rs_key_hash(r));
    return u && strcmp(u + 1, h) == 0;
}

static void
rs_id(buf_t *b, rq_t *r)
{
    char h[16];

    snprintf(h, sizeof(h), "%08x", rs_key_hash(r));
    B_LIT(b, "resp_mock");
    b_int(b, (long long) r->reqno);
    B_LIT(b, "_");
    b_cstr(b, h);
}

static void
rs_usage(buf_t *b, const beh_t *be, long P, long C)
{
    B_LIT(b, "{\"input_tokens\":");
    b_tok(b, be->usage_prompt, P);
    B_LIT(b, ",\"input_tokens_details\":{\"cached_tokens\":0},\"output_tokens\":");
    b_tok(b, be->usage_completion, C);
    B_LIT(b, ",\"output_tokens_details\":{\"reasoning_tokens\":0},\"total_tokens\":");
    b_total(b, be, P, C);
    B_LIT(b, "}");
}

/* the message or function call item; done: its final state */
static void
rs_item(buf_t *b, rq_t *r, const gen_t *g, int done)
{
    if (g->tool) {
        B_LIT(b, "{\"id\":\"fc_mock");
        b_int(b, (long long) r->reqno);
        B_LIT(b, "\",\"type\":\"function_call\",\"status\":");
        b_cstr(b, done ? "\"completed\"" : "\"in_progress\"");
        B_LIT(b, ",\"arguments\":");
        b_jcstr(b, done ? TOOL_ARGS : "");
        B_LIT(b, ",\"call_id\":\"call_mock_1\",\"name\":");
        b_jcstr(b, g->tool);
        B_LIT(b, "}");
        return;
    }
    B_LIT(b, "{\"id\":\"msg_mock");
    b_int(b, (long long) r->reqno);
    B_LIT(b, "\",\"type\":\"message\",\"status\":");
    b_cstr(b, !done ? "\"in_progress\"" : g->fin == 1 ? "\"incomplete\"" : "\"completed\"");
    B_LIT(b, ",\"content\":[");
    if (done) {
        B_LIT(b, "{\"type\":\"output_text\",\"annotations\":[],\"logprobs\":[],\"text\":");
        b_jstr(b, g_reply.p, reply_len(g));
        B_LIT(b, "}");
    }
    B_LIT(b, "],\"role\":\"assistant\"}");
}

/* the response object; state 0 in progress, 1 final */
static void
rs_object(buf_t *b, rq_t *r, const gen_t *g, const cJSON *root, int final)
{
    char *s;

    B_LIT(b, "{\"id\":\"");
    rs_id(b, r);
    B_LIT(b, "\",\"object\":\"response\",\"created_at\":");
    b_int(b, r->created);
    B_LIT(b, ",\"status\":");
    b_cstr(b, !final ? "\"in_progress\"" : g->fin == 1 ? "\"incomplete\"" : "\"completed\"");
    B_LIT(b, ",\"background\":false,\"error\":null,\"incomplete_details\":");
    b_cstr(b, final && g->fin == 1 ? "{\"reason\":\"max_output_tokens\"}" : "null");
    B_LIT(b, ",\"instructions\":");
    b_jcstr(b, jstr(root, "instructions"));
    B_LIT(b, ",\"max_output_tokens\":");
    if (cJSON_IsNumber(jget(root, "max_output_tokens"))) {
        b_int(b, jnum(root, "max_output_tokens", 0));
    } else {
        B_LIT(b, "null");
    }
    B_LIT(b, ",\"model\":");
    b_jcstr(b, r->model);
    B_LIT(b, ",\"output\":[");
    if (final) {
        rs_item(b, r, g, 1);
    }
    B_LIT(b, "],\"parallel_tool_calls\":true,\"previous_response_id\":");
    b_jcstr(b, jstr(root, "previous_response_id"));
    B_LIT(b, ",\"reasoning\":{\"effort\":");
    b_jcstr(b, jstr(jget(root, "reasoning"), "effort"));
    B_LIT(b, ",\"summary\":null},\"service_tier\":\"default\",\"store\":");
    b_cstr(b, cJSON_IsFalse(jget(root, "store")) ? "false" : "true");
    B_LIT(b, ",\"temperature\":1.0,\"text\":");
    if (jget(root, "text")) {
        s = cJSON_PrintUnformatted(jget(root, "text"));
        b_cstr(b, s ? s : "null");
        free(s);
    } else {
        B_LIT(b, "{\"format\":{\"type\":\"text\"}}");
    }
    B_LIT(b, ",\"tool_choice\":\"auto\",\"tools\":");
    if (cJSON_IsArray(jget(root, "tools"))) {
        s = cJSON_PrintUnformatted(jget(root, "tools"));
        b_cstr(b, s ? s : "[]");
        free(s);
    } else {
        B_LIT(b, "[]");
    }
    B_LIT(b, ",\"top_p\":1.0,\"truncation\":\"disabled\",\"usage\":");
    if (final && r->beh.usage) {
        rs_usage(b, &r->beh, g->P, g->C);
    } else {
        B_LIT(b, "null");
    }
    B_LIT(b, ",\"user\":null,\"metadata\":");
    if (cJSON_IsObject(jget(root, "metadata"))) {
        s = cJSON_PrintUnformatted(jget(root, "metadata"));
        b_cstr(b, s ? s : "{}");
        free(s);
    } else {
        B_LIT(b, "{}");
    }
    B_LIT(b, "}");
}

static int g_rs_seq;

/* g_ev = "event: NAME\ndata: {"type":NAME,"sequence_number":N" */
static void
rs_ev(const char *name)
{
    g_ev.len = 0;
    B_LIT(&g_ev, "event: ");
    b_cstr(&g_ev, name);
    B_LIT(&g_ev, "\ndata: {\"type\":\"");
    b_cstr(&g_ev, name);
    B_LIT(&g_ev, "\",\"sequence_number\":");
    b_int(&g_ev, g_rs_seq++);
}

static void
rs_item_ref(rq_t *r, const gen_t *g)
{
    B_LIT(&g_ev, ",\"item_id\":\"");
    b_cstr(&g_ev, g->tool ? "fc_mock" : "msg_mock");
    b_int(&g_ev, (long long) r->reqno);
    B_LIT(&g_ev, "\",\"output_index\":0");
}

static void
rs_stream(rq_t *r, const gen_t *g, const cJSON *root)
{
    st_t        s;
    int         i;
    const char *wp;
    size_t      wn;

    g_rs_seq = 0;
    st_begin(&s, r, "text/event-stream; charset=utf-8", 1, "\n");

    rs_ev("response.created");
    B_LIT(&g_ev, ",\"response\":");
    rs_object(&g_ev, r, g, root, 0);
    B_LIT(&g_ev, "}\n\n");
    st_emit(&s, EV_INIT);

    rs_ev("response.in_progress");
    B_LIT(&g_ev, ",\"response\":");
    rs_object(&g_ev, r, g, root, 0);
    B_LIT(&g_ev, "}\n\n");
    st_emit(&s, EV_INIT);

    rs_ev("response.output_item.added");
    B_LIT(&g_ev, ",\"output_index\":0,\"item\":");
    rs_item(&g_ev, r, g, 0);
    B_LIT(&g_ev, "}\n\n");
    st_emit(&s, EV_INIT);

    if (g->tool) {
        for (i = 0; i < 3; i++) {
            rs_ev("response.function_call_arguments.delta");
            rs_item_ref(r, g);
            B_LIT(&g_ev, ",\"delta\":");
            b_jcstr(&g_ev, TOOL_FRAGS[i]);
            B_LIT(&g_ev, "}\n\n");
            st_emit(&s, EV_CONTENT);
        }
        rs_ev("response.function_call_arguments.done");
        rs_item_ref(r, g);
        B_LIT(&g_ev, ",\"name\":");
        b_jcstr(&g_ev, g->tool);
        B_LIT(&g_ev, ",\"arguments\":");
        b_jcstr(&g_ev, TOOL_ARGS);
        B_LIT(&g_ev, "}\n\n");
        st_emit(&s, EV_TAIL);

    } else {
        rs_ev("response.content_part.added");
        rs_item_ref(r, g);
        B_LIT(&g_ev, ",\"content_index\":0,\"part\":{\"type\":\"output_text\",\"annotations\":[],\"logprobs\":[],\"text\":\"\"}}\n\n");
        st_emit(&s, EV_INIT);

        for (i = 0; i < g->nw && !s.stopped; i++) {
            word_span(g, i, &wp, &wn);
            rs_ev("response.output_text.delta");
            rs_item_ref(r, g);
            B_LIT(&g_ev, ",\"content_index\":0,\"delta\":");
            b_jstr(&g_ev, wp, wn);
            B_LIT(&g_ev, ",\"logprobs\":[]}\n\n");
            st_emit(&s, EV_CONTENT);
        }

        rs_ev("response.output_text.done");
        rs_item_ref(r, g);
        B_LIT(&g_ev, ",\"content_index\":0,\"text\":");
        b_jstr(&g_ev, g_reply.p, reply_len(g));
        B_LIT(&g_ev, ",\"logprobs\":[]}\n\n");
        st_emit(&s, EV_TAIL);

        rs_ev("response.content_part.done");
        rs_item_ref(r, g);
        B_LIT(&g_ev, ",\"content_index\":0,\"part\":{\"type\":\"output_text\",\"annotations\":[],\"logprobs\":[],\"text\":");
        b_jstr(&g_ev, g_reply.p, reply_len(g));
        B_LIT(&g_ev, "}}\n\n");
        st_emit(&s, EV_TAIL);
    }

    rs_ev("response.output_item.done");
    B_LIT(&g_ev, ",\"output_index\":0,\"item\":");
    rs_item(&g_ev, r, g, 1);
    B_LIT(&g_ev, "}\n\n");
    st_emit(&s, EV_TAIL);

    rs_ev(g->fin == 1 ? "response.incomplete" : "response.completed");
    B_LIT(&g_ev, ",\"response\":");
    rs_object(&g_ev, r, g, root, 1);
    B_LIT(&g_ev, "}\n\n");
    st_emit(&s, EV_TAIL);
    st_end(&s);
}

/* the conversation of a Responses request */
static void
conv_responses(conv_t *cv, const cJSON *root, const cJSON *input)
{
    const cJSON *it;
    const char  *t;
    int          i = 0, n;

    /* the instructions count as the system message of a chat */
    if (jstr(root, "instructions")) {
        conv_text(cv, -1, jstr(root, "instructions"));
        cv->nmsgs++;
    }
    if (cJSON_IsString(input)) {
        cv->last_user_idx = 0;
        cv->last_idx = 0;
        cv->last_is_user = 1;
        conv_text(cv, 0, input->valuestring);
        cv->nmsgs++;
        return;
    }
    n = cJSON_GetArraySize(input);
    cv->last_idx = n - 1;
    cJSON_ArrayForEach(it, input) {
        t = jstr(it, "type");
        if ((t == NULL || !strcmp(t, "message")) && role_is(it, "user", 0)) {
            cv->last_user_idx = i;
            if (i == n - 1) {
                cv->last_is_user = 1;
            }
        }
        if (t && !strcmp(t, "function_call_output") && i == n - 1) {
            cv->last_toolres = 1;
            cv->last_is_user = 1;
        }
        i++;
    }
    i = 0;
    cJSON_ArrayForEach(it, input) {
        t = jstr(it, "type");
        if (t == NULL || !strcmp(t, "message")) {
            conv_blocks_text(cv, i, jget(it, "content"));
        } else if (!strcmp(t, "function_call_output")) {
            conv_text(cv, i, jstr(it, "output"));
        } else if (!strcmp(t, "function_call")) {
            conv_text(cv, i, jstr(it, "arguments"));
        }
        cv->nmsgs++;
        i++;
    }
}

static void
h_openai_responses(rq_t *r)
{
    cJSON       *root, *input, *tools, *fmt;
    const char  *model, *tool = NULL, *tc, *prev, *ft;
    conv_t       cv;
    gen_t        g;
    long         maxtok;
    buf_t       *b = &g_body;
    char         msg[600];

    root = parse_body(r);
    if (root == NULL) {
        return;
    }
    model = jstr(root, "model");
    set_model(r, model);
    if (inject(r)) {
        goto done;
    }
    if (model == NULL) {
        send_error(r, 400, "Missing required parameter: 'model'.", "model",
                   "missing_required_parameter");
        goto done;
    }
    input = jget(root, "input");
    prev = jstr(root, "previous_response_id");
    if (!cJSON_IsString(input) && !cJSON_IsArray(input) && prev == NULL) {
        send_error(r, 400, "Missing required parameter: 'input'.", "input",
                   "missing_required_parameter");
        goto done;
    }
    if (prev && !rs_id_ok(r, prev)) {
        snprintf(msg, sizeof(msg), "Previous response with id '%.500s' not found.", prev);
        send_error(r, 400, msg, "previous_response_id", "previous_response_not_found");
        goto done;
    }
    conv_init(&cv);
    conv_responses(&cv, root, input);

    tools = jget(root, "tools");
    tc = jstr(root, "tool_choice");
    if (cJSON_IsArray(tools) && cJSON_GetArraySize(tools) > 0
        && !(tc && !strcmp(tc, "none")))
    {
        tool = jstr(cJSON_GetArrayItem(tools, 0), "name");
    }
    fmt = jget(jget(root, "text"), "format");
    ft = jstr(fmt, "type");
    g_json_reply = ft && (!strcmp(ft, "json_schema") || !strcmp(ft, "json_object"));
    maxtok = jnum(root, "max_output_tokens", -1);
    gen_compute(r, &cv, tool, maxtok, &g);
    g_json_reply = 0;

    if (cJSON_IsTrue(jget(root, "stream"))) {
        if (r->beh.cl_stream) {
            cl_measure(r, 1);
            rs_stream(r, &g, root);
            cl_measure(r, 0);
        }
        rs_stream(r, &g, root);
        goto done;
    }

    b->len = 0;
    rs_object(b, r, &g, root, 1);
    finish_plain(r, 200, "application/json", b->p, b->len, 1);

done:
    cJSON_Delete(root);
}

/* GET and DELETE .../responses/{id} */
static void
h_openai_response_id(rq_t *r, const char *id, int del)
{
    buf_t  *b = &g_body;
    gen_t   g;
    conv_t  cv;
    cJSON  *root;
    char    msg[600];

    if (inject(r)) {
        return;
    }
    if (!rs_id_ok(r, id)) {
        snprintf(msg, sizeof(msg), "Response with id '%.500s' not found.", id);
        send_error(r, 404, msg, NULL, "");
        return;
    }
    b->len = 0;
    if (del) {
        B_LIT(b, "{\"id\":");
        b_jcstr(b, id);
        B_LIT(b, ",\"object\":\"response.deleted\",\"deleted\":true}");
        finish_plain(r, 200, "application/json", b->p, b->len, 1);
        return;
    }
    /* the stored response: as it was made, the mock's reply */
    snprintf(r->model, sizeof(r->model), "%s", "gpt-4o");
    r->reqno = strtoul(id + 9, NULL, 10);
    conv_init(&cv);
    gen_compute(r, &cv, NULL, -1, &g);
    root = cJSON_CreateObject();
    rs_object(b, r, &g, root, 1);
    cJSON_Delete(root);
    finish_plain(r, 200, "application/json", b->p, b->len, 1);
}


static int
is_wordch(unsigned char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z')
           || (ch >= 'A' && ch <= 'Z') || ch >= 0x80;
}

static double
my_sqrt(double x)
{
    double r, n;
    int    i;

    if (x <= 0) {
        return 0;
    }
    r = x > 1 ? x : 1;
    for (i = 0; i < 200; i++) {
        n = 0.5 * (r + x / r);
        if (n == r) {
            break;
        }
        r = n;
    }
    return r;
}

/*
 * words that carry no topic: left out of the embedding, so that
 * rephrasings which only change them ("What is the capital of France?",
 * "france: tell me its capital") get the same vector
 */
static const char *const stop_words[] = {
    "a", "about", "all", "am", "an", "and", "any", "are", "as", "at", "be",
    "been", "but", "by", "can", "could", "describe", "did", "do", "does",
    "explain", "for", "from", "give", "had", "has", "have", "how", "i",
    "if", "in", "into", "is", "it", "its", "just", "know", "let", "like",
    "may", "me", "might", "must", "my", "need", "of", "on", "or", "our",
    "please", "s", "shall", "should", "show", "so", "some", "t", "tell",
    "than", "that", "the", "their", "them", "then", "there", "these",
    "they", "this", "those", "to", "us", "want", "was", "we", "were",
    "what", "whats", "when", "where", "which", "who", "why", "will",
    "with", "would", "you", "your", NULL
};

static int
is_stop_word(const unsigned char *w, size_t wl)
{
    const char *const *sw;

    for (sw = stop_words; *sw; sw++) {
        if (strlen(*sw) == wl && memcmp(*sw, w, wl) == 0) {
            return 1;
        }
    }
    return 0;
}

/*
 * bag-of-words embedding into v[dims] (see README "Embeddings"); returns
 * the word count, stop words included
 */
static long
embed(const char *s, int dims, double *v)
{
    unsigned char  w[256];
    size_t         wl;
    long           nw = 0, nf = 0;
    double         norm = 0, wt;
    const unsigned char *p;
    uint32_t       h;
    int            i, pass;

    for (i = 0; i < dims; i++) {
        v[i] = 0;
    }

    /* pass 0: the words that are not stop words; pass 1, when pass 0
       found none: all words */
    for (pass = 0; pass < 2 && nf == 0; pass++) {
        p = (const unsigned char *) s;
        nw = 0;
        while (*p) {
            while (*p && !is_wordch(*p)) p++;
            if (!*p) {
                break;
            }
            wl = 0;
            while (*p && is_wordch(*p)) {
                if (wl < sizeof(w)) {
                    w[wl++] = (*p >= 'A' && *p <= 'Z') ? (unsigned char) (*p + 32) : *p;
                }
                p++;
            }
            nw++;
            if (pass == 0 && is_stop_word(w, wl)) {
                continue;
            }
            /* plural: "capitals" is "capital", "class" stays */
            if (wl > 3 && w[wl - 1] == 's' && w[wl - 2] != 's') {
                wl--;
            }
            /* longer words are rarer: they weigh more, like an IDF */
            wt = wl > 12 ? 10.0 : (wl < 3 ? 1.0 : (double) wl - 2.0);
            h = fnv1a(w, wl);
            v[h % (uint32_t) dims] += (h >> 31) ? -wt : wt;
            nf++;
        }
    }
    for (i = 0; i < dims; i++) {
        norm += v[i] * v[i];
    }
    norm = my_sqrt(norm);
    if (norm > 0) {
        for (i = 0; i < dims; i++) {
            v[i] /= norm;
        }
    }
    return nw;
}

static void
b_base64(buf_t *b, const unsigned char *d, size_t n)
{
    static const char t[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i;
    char   o[4];

    for (i = 0; i + 2 < n; i += 3) {
        o[0] = t[d[i] >> 2];
        o[1] = t[((d[i] & 3) << 4) | (d[i + 1] >> 4)];
        o[2] = t[((d[i + 1] & 15) << 2) | (d[i + 2] >> 6)];
        o[3] = t[d[i + 2] & 63];
        b_add(b, o, 4);
    }
    if (n - i == 1) {
        o[0] = t[d[i] >> 2];
        o[1] = t[(d[i] & 3) << 4];
        o[2] = '=';
        o[3] = '=';
        b_add(b, o, 4);
    } else if (n - i == 2) {
        o[0] = t[d[i] >> 2];
        o[1] = t[((d[i] & 3) << 4) | (d[i + 1] >> 4)];
        o[2] = t[(d[i + 1] & 15) << 2];
        o[3] = '=';
        b_add(b, o, 4);
    }
}

static void
h_openai_embeddings(rq_t *r)
{
    cJSON       *root, *input, *it;
    const char  *model, *fmt;
    long         dims, total = 0;
    int          b64, idx = 0, i;
    double      *v = NULL;
    float       *f = NULL;
    buf_t       *b = &g_body;
    char         num[32];

    root = parse_body(r);
    if (root == NULL) {
        return;
    }
    model = jstr(root, "model");
    set_model(r, model);
    if (inject(r)) {
        goto done;
    }
    if (model == NULL) {
        send_error(r, 400, "you must provide a model parameter", NULL, "");
        goto done;
    }
    input = jget(root, "input");
    if (cJSON_IsArray(input)) {
        if (cJSON_GetArraySize(input) == 0) {
            send_error(r, 400, "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.", "input", "");
            goto done;
        }
        cJSON_ArrayForEach(it, input) {
            if (!cJSON_IsString(it)) {
                send_error(r, 400, "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.", "input", "");
                goto done;
            }
        }
    } else if (!cJSON_IsString(input)) {
        send_error(r, 400, "'input' is a required property", "input", "");
        goto done;
    }
    dims = jnum(root, "dimensions", 64);
    if (dims < 1 || dims > 8192) {
        send_error(r, 400, "Invalid 'dimensions': must be between 1 and 8192.", "dimensions", "");
        goto done;
    }
    fmt = jstr(root, "encoding_format");
    b64 = fmt && !strcmp(fmt, "base64");
    v = malloc(sizeof(double) * (size_t) dims);
    f = malloc(sizeof(float) * (size_t) dims);
    if (v == NULL || f == NULL) {
        die_oom();
    }

    b->len = 0;
    B_LIT(b, "{\"object\":\"list\",\"data\":[");
    it = cJSON_IsArray(input) ? input->child : input;
    for (; it; it = cJSON_IsArray(input) ? it->next : NULL) {
        total += embed(it->valuestring, (int) dims, v);
        if (idx) {
            B_LIT(b, ",");
        }
        B_LIT(b, "{\"object\":\"embedding\",\"index\":");
        b_int(b, idx);
        B_LIT(b, ",\"embedding\":");
        if (b64) {
            for (i = 0; i < dims; i++) {
                f[i] = (float) v[i];
            }
            B_LIT(b, "\"");
            b_base64(b, (const unsigned char *) f, sizeof(float) * (size_t) dims);
            B_LIT(b, "\"");
        } else {
            B_LIT(b, "[");
            for (i = 0; i < dims; i++) {
                int n = snprintf(num, sizeof(num), i ? ",%.8g" : "%.8g", (double) (float) v[i]);
                b_add(b, num, (size_t) n);
            }
            B_LIT(b, "]");
        }
        B_LIT(b, "}");
        idx++;
    }
    B_LIT(b, "],\"model\":");
    b_jcstr(b, r->model);
    if (r->beh.usage) {
        B_LIT(b, ",\"usage\":{\"prompt_tokens\":");
        b_tok(b, r->beh.usage_prompt, total);
        B_LIT(b, ",\"total_tokens\":");
        b_total(b, &r->beh, total, 0);
        B_LIT(b, "}");
    }
    B_LIT(b, "}");
    finish_plain(r, 200, "application/json", b->p, b->len, 1);

done:
    free(v);
    free(f);
    cJSON_Delete(root);
}

static void
h_openai_models(rq_t *r)
{
    static const char body[] =
        "{\"object\":\"list\",\"data\":["
        "{\"id\":\"gpt-4o\",\"object\":\"model\",\"created\":1715367049,\"owned_by\":\"system\"},"
        "{\"id\":\"gpt-4o-mini\",\"object\":\"model\",\"created\":1721172741,\"owned_by\":\"system\"},"
        "{\"id\":\"gpt-4.1\",\"object\":\"model\",\"created\":1744316542,\"owned_by\":\"system\"},"
        "{\"id\":\"o3-mini\",\"object\":\"model\",\"created\":1737146383,\"owned_by\":\"system\"},"
        "{\"id\":\"text-embedding-3-small\",\"object\":\"model\",\"created\":1705948997,\"owned_by\":\"system\"}"
        "]}";

    snprintf(r->mkey, sizeof(r->mkey), "%.*s", (int) r->q->plen, r->q->path);
    if (inject(r)) {
        return;
    }
    finish_plain(r, 200, "application/json", body, sizeof(body) - 1, 1);
}

/* ------------------------------------------------------------------ */
/* Anthropic                                                           */

static void
an_ev(const char *name)
{
    g_ev.len = 0;
    B_LIT(&g_ev, "event: ");
    b_cstr(&g_ev, name);
    B_LIT(&g_ev, "\ndata: ");
}

static void
an_usage(buf_t *b, const beh_t *be, long P, long C)
{
    B_LIT(b, "{\"input_tokens\":");
    b_tok(b, be->usage_prompt, P);
    B_LIT(b, ",\"cache_creation_input_tokens\":");
    b_int(b, be->cache_write);
    B_LIT(b, ",\"cache_read_input_tokens\":");
    b_int(b, be->cache_read);
    B_LIT(b, ",\"output_tokens\":");
    b_tok(b, be->usage_completion, C);
    B_LIT(b, "}");
}

static const char *
an_stop(const gen_t *g)
{
    return g->fin == 2 ? "\"tool_use\"" : g->fin == 1 ? "\"max_tokens\"" : "\"end_turn\"";
}

static void
an_stream(rq_t *r, const gen_t *g)
{
    st_t        s;
    int         i, bi = g->think ? 1 : 0;
    const char *wp;
    size_t      wn;

    st_begin(&s, r, "text/event-stream", 1, "\n");

    an_ev("message_start");
    B_LIT(&g_ev, "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_mock");
    b_int(&g_ev, (long long) r->reqno);
    B_LIT(&g_ev, "\",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    b_jcstr(&g_ev, r->model);
    B_LIT(&g_ev, ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null");
    if (r->beh.usage) {
        B_LIT(&g_ev, ",\"usage\":");
        an_usage(&g_ev, &r->beh, g->P, 1);
    }
    B_LIT(&g_ev, "}}\n\n");
    st_emit(&s, EV_INIT);

    if (g->think) {
        an_ev("content_block_start");
        B_LIT(&g_ev, "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":"
                     "{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}}\n\n");
        st_emit(&s, EV_INIT);
        for (i = 0; i < THINK_TOKENS; i++) {
            an_ev("content_block_delta");
            B_LIT(&g_ev, "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":");
            b_jcstr(&g_ev, THINK_WORDS[i]);
            B_LIT(&g_ev, "}}\n\n");
            st_emit(&s, EV_INIT);
        }
        an_ev("content_block_delta");
        B_LIT(&g_ev, "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":");
        b_jcstr(&g_ev, MOCK_SIG);
        B_LIT(&g_ev, "}}\n\n");
        st_emit(&s, EV_INIT);
        an_ev("content_block_stop");
        B_LIT(&g_ev, "{\"type\":\"content_block_stop\",\"index\":0}\n\n");
        st_emit(&s, EV_INIT);
    }

    an_ev("content_block_start");
    if (g->tool) {
        B_LIT(&g_ev, "{\"type\":\"content_block_start\",\"index\":");
        b_int(&g_ev, bi);
        B_LIT(&g_ev, ",\"content_block\":"
                     "{\"type\":\"tool_use\",\"id\":\"toolu_mock_1\",\"name\":");
        b_jcstr(&g_ev, g->tool);
        B_LIT(&g_ev, ",\"input\":{}}}\n\n");
    } else {
        B_LIT(&g_ev, "{\"type\":\"content_block_start\",\"index\":");
        b_int(&g_ev, bi);
        B_LIT(&g_ev, ",\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n");
    }
    st_emit(&s, EV_INIT);

    an_ev("ping");
    B_LIT(&g_ev, "{\"type\": \"ping\"}\n\n");
    st_emit(&s, EV_INIT);

    if (g->tool) {
        for (i = 0; i < 3; i++) {
            an_ev("content_block_delta");
            B_LIT(&g_ev, "{\"type\":\"content_block_delta\",\"index\":");
            b_int(&g_ev, bi);
            B_LIT(&g_ev, ",\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":");
            b_jcstr(&g_ev, TOOL_FRAGS[i]);
            B_LIT(&g_ev, "}}\n\n");
            st_emit(&s, EV_CONTENT);
        }
    } else {
        for (i = 0; i < g->nw && !s.stopped; i++) {
            word_span(g, i, &wp, &wn);
            an_ev("content_block_delta");
            B_LIT(&g_ev, "{\"type\":\"content_block_delta\",\"index\":");
            b_int(&g_ev, bi);
            B_LIT(&g_ev, ",\"delta\":{\"type\":\"text_delta\",\"text\":");
            b_jstr(&g_ev, wp, wn);
            B_LIT(&g_ev, "}}\n\n");
            st_emit(&s, EV_CONTENT);
        }
    }

    an_ev("content_block_stop");
    B_LIT(&g_ev, "{\"type\":\"content_block_stop\",\"index\":");
    b_int(&g_ev, bi);
    B_LIT(&g_ev, "}\n\n");
    st_emit(&s, EV_TAIL);

    an_ev("message_delta");
    B_LIT(&g_ev, "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":");
    b_cstr(&g_ev, an_stop(g));
    B_LIT(&g_ev, ",\"stop_sequence\":null}");
    if (r->beh.usage) {
        B_LIT(&g_ev, ",\"usage\":{\"output_tokens\":");
        b_tok(&g_ev, r->beh.usage_completion, g->C);
        B_LIT(&g_ev, "}");
    }
    B_LIT(&g_ev, "}\n\n");
    st_emit(&s, EV_TAIL);

    an_ev("message_stop");
    B_LIT(&g_ev, "{\"type\":\"message_stop\"}\n\n");
    st_emit(&s, EV_TAIL);
    st_end(&s);
}

/*
 * Extended thinking, checked as Anthropic does: budget_tokens >= 1024 and
 * below max_tokens, temperature 1 if any, and when a tool loop goes on
 * (the last message gives tool results), the assistant message before it
 * starts with a thinking block; every thinking block's signature must be
 * the mock's.  Returns non-zero when an error was sent.
 */
static int
an_thinking(rq_t *r, const cJSON *root, const cJSON *msgs, long max,
    gen_t *g)
{
    const cJSON *th, *m, *ct, *b, *last, *prev;
    const char  *t;
    long         budget;
    int          i, j, n;
    char         msg[512];

    th = jget(root, "thinking");
    t = jstr(th, "type");
    if (t == NULL || strcmp(t, "enabled") != 0) {
        return 0;
    }
    budget = jnum(th, "budget_tokens", -1);
    if (budget < 1024) {
        send_error(r, 400, "thinking.enabled.budget_tokens: Input should be "
                   "greater than or equal to 1024", NULL, NULL);
        return 1;
    }
    if (max <= budget) {
        send_error(r, 400, "`max_tokens` must be greater than "
                   "`thinking.budget_tokens`. Please consult our "
                   "documentation at https://docs.claude.com/en/docs/"
                   "build-with-claude/extended-thinking#max-tokens-and-"
                   "context-window-size", NULL, NULL);
        return 1;
    }
    th = jget(root, "temperature");
    if (cJSON_IsNumber(th) && th->valuedouble != 1.0) {
        send_error(r, 400, "`temperature` may only be set to 1 when "
                   "thinking is enabled or in interleaved thinking mode. "
                   "Please consult our documentation at https://"
                   "docs.claude.com/en/docs/build-with-claude/"
                   "extended-thinking#feature-compatibility", NULL, NULL);
        return 1;
    }

    i = 0;
    cJSON_ArrayForEach(m, msgs) {
        j = 0;
        cJSON_ArrayForEach(b, jget(m, "content")) {
            t = jstr(b, "type");
            if (t && !strcmp(t, "thinking")
                && (jstr(b, "signature") == NULL
                    || strcmp(jstr(b, "signature"), MOCK_SIG) != 0))
            {
                snprintf(msg, sizeof(msg), "messages.%d.content.%d: Invalid "
                         "`signature` in `thinking` block", i, j);
                send_error(r, 400, msg, NULL, NULL);
                return 1;
            }
            j++;
        }
        i++;
    }

    n = cJSON_GetArraySize(msgs);
    last = cJSON_GetArrayItem(msgs, n - 1);
    prev = n >= 2 ? cJSON_GetArrayItem(msgs, n - 2) : NULL;
    ct = jget(last, "content");
    b = cJSON_GetArrayItem(ct, 0);
    t = jstr(b, "type");
    if (role_is(last, "user", 0) && t && !strcmp(t, "tool_result")
        && prev && role_is(prev, "assistant", 0))
    {
        b = cJSON_GetArrayItem(jget(prev, "content"), 0);
        t = jstr(b, "type");
        if (t == NULL
            || (strcmp(t, "thinking") != 0
                && strcmp(t, "redacted_thinking") != 0))
        {
            snprintf(msg, sizeof(msg), "messages.%d.content.0.type: Expected "
                     "`thinking` or `redacted_thinking`, but found `%s`. "
                     "When `thinking` is enabled, a final `assistant` "
                     "message must start with a thinking block (preceeding "
                     "the lastmost set of `tool_use` and `tool_result` "
                     "blocks). We recommend you include thinking blocks "
                     "from previous turns. To avoid this requirement, "
                     "disable `thinking`. Please consult our documentation "
                     "at https://docs.claude.com/en/docs/build-with-claude/"
                     "extended-thinking", n - 2, t ? t : "text");
            send_error(r, 400, msg, NULL, NULL);
            return 1;
        }
    }

    gen_think(g, 1);
    return 0;
}

static void
h_anthropic(rq_t *r)
{
    cJSON       *root, *msgs, *tools, *mt, *tc;
    const char  *model, *tool = NULL, *tct;
    conv_t       cv;
    gen_t        g;
    buf_t       *b = &g_body;

    root = parse_body(r);
    if (root == NULL) {
        return;
    }
    model = jstr(root, "model");
    set_model(r, model);
    if (inject(r)) {
        goto done;
    }
    if (hdr_get(r->q, "anthropic-version") == NULL) {
        send_error(r, 400, "anthropic-version: header is required", NULL, NULL);
        goto done;
    }
    if (model == NULL) {
        send_error(r, 400, "model: Field required", NULL, NULL);
        goto done;
    }
    mt = jget(root, "max_tokens");
    if (!cJSON_IsNumber(mt)) {
        send_error(r, 400, "max_tokens: Field required", NULL, NULL);
        goto done;
    }
    msgs = jget(root, "messages");
    if (!cJSON_IsArray(msgs)) {
        send_error(r, 400, "messages: Field required", NULL, NULL);
        goto done;
    }
    conv_init(&cv);
    conv_anthropic(&cv, root, msgs);

    tools = jget(root, "tools");
    tc = jget(root, "tool_choice");
    tct = jstr(tc, "type");
    if (cJSON_IsArray(tools) && cJSON_GetArraySize(tools) > 0
        && !(tct && !strcmp(tct, "none")))
    {
        tool = jstr(cJSON_GetArrayItem(tools, 0), "name");
        if (tct && (!strcmp(tct, "any") || !strcmp(tct, "tool"))) {
            /* a forced tool is called, whatever the words */
            if (!strcmp(tct, "tool") && jstr(tc, "name")) {
                tool = jstr(tc, "name");
            }
            cv.last_is_user = 1;
            cv.last_toolres = 0;
            cv.kw = 1;
        }
    }
    gen_compute(r, &cv, tool, (long) mt->valuedouble, &g);

    if (an_thinking(r, root, msgs, (long) mt->valuedouble, &g) != 0) {
        goto done;
    }

    if (cJSON_IsTrue(jget(root, "stream"))) {
        if (r->beh.cl_stream) {
            cl_measure(r, 1);
            an_stream(r, &g);
            cl_measure(r, 0);
        }
        an_stream(r, &g);
        goto done;
    }

    b->len = 0;
    B_LIT(b, "{\"id\":\"msg_mock");
    b_int(b, (long long) r->reqno);
    B_LIT(b, "\",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    b_jcstr(b, r->model);
    B_LIT(b, ",\"content\":[");
    if (g.think) {
        B_LIT(b, "{\"type\":\"thinking\",\"thinking\":");
        b_jcstr(b, THINK_TEXT);
        B_LIT(b, ",\"signature\":");
        b_jcstr(b, MOCK_SIG);
        B_LIT(b, "},");
    }
    if (g.tool) {
        B_LIT(b, "{\"type\":\"tool_use\",\"id\":\"toolu_mock_1\",\"name\":");
        b_jcstr(b, g.tool);
        B_LIT(b, ",\"input\":");
        b_cstr(b, TOOL_ARGS);
        B_LIT(b, "}]");
    } else {
        B_LIT(b, "{\"type\":\"text\",\"text\":");
        b_jstr(b, g_reply.p, reply_len(&g));
        B_LIT(b, "}]");
    }
    B_LIT(b, ",\"stop_reason\":");
    b_cstr(b, an_stop(&g));
    B_LIT(b, ",\"stop_sequence\":null");
    if (r->beh.usage) {
        B_LIT(b, ",\"usage\":");
        an_usage(b, &r->beh, g.P, g.C);
    }
    B_LIT(b, "}");
    finish_plain(r, 200, "application/json", b->p, b->len, 1);

done:
    cJSON_Delete(root);
}

/*
 * POST .../messages/count_tokens: {"input_tokens":P}, P the prompt's
 * tokens as a messages request counts them (max_tokens not needed)
 */
static void
h_anthropic_count(rq_t *r)
{
    cJSON       *root, *msgs;
    const char  *model;
    conv_t       cv;
    gen_t        g;
    buf_t       *b = &g_body;

    root = parse_body(r);
    if (root == NULL) {
        return;
    }
    model = jstr(root, "model");
    set_model(r, model);
    if (inject(r)) {
        goto done;
    }
    if (hdr_get(r->q, "anthropic-version") == NULL) {
        send_error(r, 400, "anthropic-version: header is required", NULL, NULL);
        goto done;
    }
    if (model == NULL) {
        send_error(r, 400, "model: Field required", NULL, NULL);
        goto done;
    }
    msgs = jget(root, "messages");
    if (!cJSON_IsArray(msgs)) {
        send_error(r, 400, "messages: Field required", NULL, NULL);
        goto done;
    }
    conv_init(&cv);
    conv_anthropic(&cv, root, msgs);
    gen_compute(r, &cv, NULL, -1, &g);

    b->len = 0;
    B_LIT(b, "{\"input_tokens\":");
    b_tok(b, r->beh.usage_prompt, g.P);
    B_LIT(b, "}");
    finish_plain(r, 200, "application/json", b->p, b->len, 1);

done:
    cJSON_Delete(root);
}

/* ------------------------------------------------------------------ */
/* Gemini                                                              */

static void
gm_usage(buf_t *b, const beh_t *be, long P, long C, long T)
{
    P += be->cache_read + be->cache_write;
    B_LIT(b, "{\"promptTokenCount\":");
    b_tok(b, be->usage_prompt, P);
    B_LIT(b, ",\"candidatesTokenCount\":");
    b_tok(b, be->usage_completion, C);
    B_LIT(b, ",\"totalTokenCount\":");
    b_total(b, be, P, C + T);
    if (T) {
        B_LIT(b, ",\"thoughtsTokenCount\":");
        b_int(b, T);
    }
    if (be->cache_read) {
        B_LIT(b, ",\"cachedContentTokenCount\":");
        b_int(b, be->cache_read);
    }
    B_LIT(b, ",\"promptTokensDetails\":[{\"modality\":\"TEXT\",\"tokenCount\":");
    b_tok(b, be->usage_prompt, P);
    B_LIT(b, "}]}");
}

/* one GenerateContentResponse object; text==NULL -> functionCall */
/*
 * one GenerateContentResponse object; text==NULL -> functionCall (with
 * the thought signature when thinking), C the candidates' tokens (not
 * the thoughts'); GM_THOUGHT: the thought part first, GM_ONLY: alone
 */
#define GM_THOUGHT  1
#define GM_ONLY     2
static void
gm_obj(buf_t *b, rq_t *r, const gen_t *g, const char *text, size_t tlen,
    const char *finish, long C, int flags)
{
    B_LIT(b, "{\"candidates\":[{\"content\":{\"parts\":[");
    if (flags & GM_THOUGHT) {
        B_LIT(b, "{\"text\":");
        b_jcstr(b, THINK_TEXT);
        B_LIT(b, ",\"thought\":true}");
        if (!(flags & GM_ONLY)) {
            B_LIT(b, ",");
        }
    }
    if (flags & GM_ONLY) {
        /* nothing more */
    } else if (text == NULL) {
        B_LIT(b, "{\"functionCall\":{\"name\":");
        b_jcstr(b, g->tool);
        B_LIT(b, ",\"args\":");
        b_cstr(b, TOOL_ARGS);
        B_LIT(b, "}");
        if (g->think) {
            B_LIT(b, ",\"thoughtSignature\":");
            b_jcstr(b, MOCK_GSIG);
        }
        B_LIT(b, "}");
    } else {
        B_LIT(b, "{\"text\":");
        b_jstr(b, text, tlen);
        B_LIT(b, "}");
    }
    B_LIT(b, "],\"role\":\"model\"}");
    if (finish) {
        B_LIT(b, ",\"finishReason\":\"");
        b_cstr(b, finish);
        B_LIT(b, "\"");
    }
    B_LIT(b, ",\"index\":0}]");
    if (r->beh.usage) {
        B_LIT(b, ",\"usageMetadata\":");
        gm_usage(b, &r->beh, g->P, C, g->think);
    }
    B_LIT(b, ",\"modelVersion\":");
    b_jcstr(b, r->model);
    B_LIT(b, ",\"responseId\":\"mock");
    b_int(b, (long long) r->reqno);
    B_LIT(b, "\"}");
}

static void
gm_stream(rq_t *r, const gen_t *g, int sse)
{
    st_t        s;
    int         i;
    const char *wp, *fin = g->fin == 1 ? "MAX_TOKENS" : "STOP";
    size_t      wn;

    st_begin(&s, r, sse ? "text/event-stream" : "application/json; charset=UTF-8",
             sse, "\r\n");

#define GM_EV_START() do {                                            \
        g_ev.len = 0;                                                 \
        if (sse) B_LIT(&g_ev, "data: ");                              \
        else if (s.nev == 0) B_LIT(&g_ev, "[");                       \
        else B_LIT(&g_ev, ",\r\n");                                   \
    } while (0)
#define GM_EV_END() do { if (sse) B_LIT(&g_ev, "\r\n\r\n"); } while (0)

    if (g->thoughts) {
        GM_EV_START();
        gm_obj(&g_ev, r, g, NULL, 0, NULL, 0, GM_THOUGHT | GM_ONLY);
        GM_EV_END();
        st_emit(&s, EV_INIT);
    }
    if (g->tool) {
        GM_EV_START();
        gm_obj(&g_ev, r, g, NULL, 0, "STOP", g->C - g->think, 0);
        GM_EV_END();
        st_emit(&s, EV_CONTENT);
    } else if (g->nw == 0) {
        GM_EV_START();
        gm_obj(&g_ev, r, g, "", 0, fin, 0, 0);
        GM_EV_END();
        st_emit(&s, EV_CONTENT);
    } else {
        for (i = 0; i < g->nw && !s.stopped; i++) {
            word_span(g, i, &wp, &wn);
            GM_EV_START();
            gm_obj(&g_ev, r, g, wp, wn, i == g->nw - 1 ? fin : NULL, i + 1,
                   0);
            GM_EV_END();
            st_emit(&s, EV_CONTENT);
        }
    }
    if (!sse) {
        g_ev.len = 0;
        B_LIT(&g_ev, "]");
        st_emit(&s, EV_TAIL);
    }
#undef GM_EV_START
#undef GM_EV_END
    st_end(&s);
}

/*
 * thinkingConfig: thinkingBudget 0 turns thinking off, anything else (or
 * none) on; includeThoughts shows the thoughts.  With thinking on, as
 * Gemini 3 does, the first functionCall part of each model turn must
 * carry the thought signature it was given.  Returns non-zero when an
 * error was sent.
 */
static int
gm_thinking(rq_t *r, const cJSON *gc, const cJSON *contents, gen_t *g)
{
    const cJSON *tc, *c, *p, *fc;
    const char  *sig;
    int          i;
    char         msg[512];

    tc = jget2(gc, "thinkingConfig", "thinking_config");
    if (!cJSON_IsObject(tc) || jnum(tc, "thinkingBudget", -1) == 0) {
        return 0;
    }

    i = 0;
    cJSON_ArrayForEach(c, contents) {
        cJSON_ArrayForEach(p, jget(c, "parts")) {
            fc = jget(p, "functionCall");
            if (!cJSON_IsObject(fc)) {
                continue;
            }
            sig = jstr(p, "thoughtSignature");
            if (sig == NULL) {
                snprintf(msg, sizeof(msg), "Function call is missing a "
                         "thought_signature in functionCall parts. This is "
                         "required for tools to work correctly, and missing "
                         "thought_signature may lead to degraded model "
                         "performance. Additional data, function call "
                         "`default_api:%s` , position %d. Please refer to "
                         "https://ai.google.dev/gemini-api/docs/"
                         "thought-signatures for more details.",
                         jstr(fc, "name") ? jstr(fc, "name") : "", i + 1);
                send_error(r, 400, msg, NULL, NULL);
                return 1;
            }
            if (strcmp(sig, MOCK_GSIG) != 0) {
                send_error(r, 400, "Corrupted thought signature.", NULL,
                           NULL);
                return 1;
            }
            break;  /* the first call of a turn */
        }
        i++;
    }

    gen_think(g, cJSON_IsTrue(jget(tc, "includeThoughts")));
    return 0;
}

static void
h_gemini(rq_t *r, const char *mraw, int stream, int sse)
{
    cJSON       *root, *contents, *gc, *tools, *t, *fd;
    const char  *tool = NULL;
    conv_t       cv;
    gen_t        g;
    long         maxtok = -1;
    buf_t       *b = &g_body;

    root = parse_body(r);
    if (root == NULL) {
        return;
    }
    set_model(r, mraw);
    if (inject(r)) {
        goto done;
    }
    contents = jget(root, "contents");
    if (!cJSON_IsArray(contents) || cJSON_GetArraySize(contents) == 0) {
        send_error(r, 400, "* GenerateContentRequest.contents: contents is not specified\n", NULL, NULL);
        goto done;
    }
    conv_init(&cv);
    conv_gemini(&cv, root, contents);

    tools = jget(root, "tools");
    cJSON_ArrayForEach(t, tools) {
        fd = jget2(t, "functionDeclarations", "function_declarations");
        if (cJSON_IsArray(fd) && cJSON_GetArraySize(fd) > 0) {
            tool = jstr(cJSON_GetArrayItem(fd, 0), "name");
            break;
        }
    }
    gc = jget2(root, "generationConfig", "generation_config");
    if (cJSON_IsObject(gc)) {
        maxtok = jnum(gc, "maxOutputTokens", -1);
        if (maxtok < 0) {
            maxtok = jnum(gc, "max_output_tokens", -1);
        }
        g_json_reply = jget2(gc, "responseSchema", "response_schema") != NULL
                       || jget2(gc, "responseJsonSchema", "response_json_schema") != NULL;
    }
    gen_compute(r, &cv, tool, maxtok, &g);
    g_json_reply = 0;

    if (gm_thinking(r, gc, contents, &g) != 0) {
        goto done;
    }

    if (stream) {
        if (r->beh.cl_stream) {
            cl_measure(r, 1);
            gm_stream(r, &g, sse);
            cl_measure(r, 0);
        }
        gm_stream(r, &g, sse);
        goto done;
    }
    b->len = 0;
    if (g.tool) {
        gm_obj(b, r, &g, NULL, 0, "STOP", g.C - g.think,
               g.thoughts ? GM_THOUGHT : 0);
    } else {
        gm_obj(b, r, &g, g_reply.p, reply_len(&g),
               g.fin == 1 ? "MAX_TOKENS" : "STOP", g.C - g.think,
               g.thoughts ? GM_THOUGHT : 0);
    }
    finish_plain(r, 200, "application/json; charset=UTF-8", b->p, b->len, 1);

done:
    cJSON_Delete(root);
}

/* ------------------------------------------------------------------ */
/* /mock/ endpoints                                                    */

static void
h_mock(rq_t *r)
{
    req_t       *q = r->q, *l = &g_lreq;
    buf_t       *b = &g_body;
    const char  *p = q->path;
    size_t       n = q->plen;
    int          i, j, first = 1;
    char         lname[256];
    ff_t        *f;

    b->len = 0;
    if (n == 10 && !memcmp(p, "/mock/last", 10)) {
        if (!g_have_last || parse_head(g_last_head.p, g_last_head.len, l) < 0) {
            B_LIT(b, "{}");
        } else {
            B_LIT(b, "{\"method\":");
            b_jstr(b, l->method, l->mlen);
            B_LIT(b, ",\"uri\":");
            b_jstr(b, l->uri, l->ulen);
            B_LIT(b, ",\"headers\":{");
            for (i = 0; i < l->nh; i++) {
                for (j = 0; j < i; j++) {
                    if (l->h[j].nl == l->h[i].nl
                        && !strncasecmp(l->h[j].n, l->h[i].n, l->h[i].nl)) {
                        break;
                    }
                }
                if (j < i) {
                    continue;     /* already emitted (joined) */
                }
                size_t nl = l->h[i].nl < sizeof(lname) ? l->h[i].nl : sizeof(lname) - 1;
                size_t k;
                for (k = 0; k < nl; k++) {
                    char ch = l->h[i].n[k];
                    lname[k] = (ch >= 'A' && ch <= 'Z') ? (char) (ch + 32) : ch;
                }
                if (!first) {
                    B_LIT(b, ",");
                }
                first = 0;
                b_jstr(b, lname, nl);
                B_LIT(b, ":");
                g_ev.len = 0;
                b_add(&g_ev, l->h[i].v, l->h[i].vl);
                for (j = i + 1; j < l->nh; j++) {
                    if (l->h[j].nl == l->h[i].nl
                        && !strncasecmp(l->h[j].n, l->h[i].n, l->h[i].nl)) {
                        B_LIT(&g_ev, ", ");
                        b_add(&g_ev, l->h[j].v, l->h[j].vl);
                    }
                }
                b_jstr(b, g_ev.p, g_ev.len);
            }
            B_LIT(b, "},\"body\":");
            b_jstr(b, g_last_body.p, g_last_body.len);
            B_LIT(b, "}");
        }
    } else if (n == 11 && !memcmp(p, "/mock/count", 11)) {
        B_LIT(b, "{\"requests\":");
        b_int(b, (long long) g_count);
        B_LIT(b, "}");
    } else if (n == 11 && !memcmp(p, "/mock/reset", 11)) {
        g_count = 0;
        g_have_last = 0;
        g_last_head.len = g_last_body.len = 0;
        while ((f = g_ff) != NULL) {
            g_ff = f->next;
            free(f);
        }
        B_LIT(b, "{\"reset\":true}");
    } else {
        send_error(r, 404, "Unknown mock endpoint.", NULL, "");
        return;
    }
    finish_plain(r, 200, "application/json", b->p, b->len, 0);
}

/* ------------------------------------------------------------------ */
/* routing                                                             */

static int
ends_with(const char *p, size_t n, const char *suf)
{
    size_t m = strlen(suf);
    return n >= m && memcmp(p + n - m, suf, m) == 0;
}

static void
route(rq_t *r)
{
    req_t      *q = r->q;
    const char *p = q->path;
    size_t      n = q->plen, ms, me;
    const hdr_t *xm;
    int         post = q->mlen == 4 && !memcmp(q->method, "POST", 4);
    int         get = q->mlen == 3 && !memcmp(q->method, "GET", 3);
    int         gstream = -1, sse = 0;
    char        mraw[512], tmp[64];
    enum { E_NONE, E_CHAT, E_EMB, E_MODELS, E_ANTH, E_GEM, E_COUNT, E_RESP,
           E_RESP_ID } ep = E_NONE;
    int         del = q->mlen == 6 && !memcmp(q->method, "DELETE", 6);
    const char *rid = NULL;
    char        idbuf[512];

    if (ends_with(p, n, ":streamGenerateContent")) {
        gstream = 1;
        me = n - (sizeof(":streamGenerateContent") - 1);
    } else if (ends_with(p, n, ":generateContent")) {
        gstream = 0;
        me = n - (sizeof(":generateContent") - 1);
    } else {
        me = 0;
    }
    if (gstream >= 0 && post) {
        ep = E_GEM;
    } else if (post && ends_with(p, n, "/chat/completions")) {
        ep = E_CHAT;
    } else if (post && ends_with(p, n, "/embeddings")) {
        ep = E_EMB;
    } else if (post && ends_with(p, n, "/messages")) {
        ep = E_ANTH;
    } else if (post && ends_with(p, n, "/messages/count_tokens")) {
        ep = E_COUNT;
    } else if (get && ends_with(p, n, "/models")) {
        ep = E_MODELS;
    } else if (post && ends_with(p, n, "/responses")) {
        ep = E_RESP;
    } else if ((get || del) && (rid = memmem(p, n, "/responses/", 11)) != NULL) {
        rid += 11;
        snprintf(idbuf, sizeof(idbuf), "%.*s", (int) (p + n - rid), rid);
        ep = E_RESP_ID;
    }

    r->prov = (ep == E_ANTH || ep == E_COUNT) ? PV_ANTHROPIC
              : ep == E_GEM ? PV_GEMINI : PV_OPENAI;
    if (ep == E_NONE) {
        char msg[300];
        snprintf(msg, sizeof(msg), "Invalid URL (%.*s %.*s)", (int) q->mlen,
                 q->method, (int) (q->plen > 200 ? 200 : q->plen), q->path);
        send_error(r, 404, msg, NULL, "");
        return;
    }
    xm = hdr_get(q, "x-mock");
    if (xm) {
        beh_parse(&r->beh, xm->v, xm->vl);
    }
    if (check_auth(r)) {
        return;
    }
    switch (ep) {
    case E_CHAT:   h_openai_chat(r); break;
    case E_EMB:    h_openai_embeddings(r); break;
    case E_MODELS: h_openai_models(r); break;
    case E_ANTH:   h_anthropic(r); break;
    case E_COUNT:  h_anthropic_count(r); break;
    case E_RESP:   h_openai_responses(r); break;
    case E_RESP_ID: h_openai_response_id(r, idbuf, del); break;
    case E_GEM:
        ms = me;
        while (ms > 0 && p[ms - 1] != '/') {
            ms--;
        }
        url_decode(p + ms, me - ms, mraw, sizeof(mraw), 0);
        if (query_get(q, "alt", tmp, sizeof(tmp)) && !strcmp(tmp, "sse")) {
            sse = 1;
        }
        h_gemini(r, mraw, gstream, sse);
        break;
    default:
        break;
    }
}

static void
dispatch(conn_t *c, req_t *q)
{
    rq_t r;

    memset(&r, 0, sizeof(r));
    r.c = c;
    r.q = q;
    r.prov = PV_OPENAI;
    r.reqno = ++g_reqno;
    r.http10 = q->minor == 0;
    r.chunked = !r.http10;
    r.close = q->conn_close || (r.http10 && !q->conn_ka) || c->eof;
    r.created = (long long) time(NULL);
    r.cl_len = -1;
    beh_init(&r.beh);
    c->resp_close = 0;

    if (q->plen >= 6 && !memcmp(q->path, "/mock/", 6)) {
        h_mock(&r);
    } else {
        g_count++;
        g_have_last = 1;
        g_last_head.len = 0;
        b_add(&g_last_head, c->in.p + c->rpos, c->head_len);
        g_last_body.len = 0;
        b_add(&g_last_body, q->body, q->blen);
        route(&r);
    }
    if (r.close) {
        c->resp_close = 1;
    }
    c->resp_pending = 1;
    release(c);
}

/* fatal protocol error: OpenAI-shaped error and close */
static void
raw_error(conn_t *c, int st, const char *msg)
{
    rq_t r;

    memset(&r, 0, sizeof(r));
    r.c = c;
    r.prov = PV_OPENAI;
    r.reqno = ++g_reqno;
    r.close = 1;
    r.chunked = 1;
    r.cl_len = -1;
    beh_init(&r.beh);
    send_error(&r, st, msg, NULL, "");
    c->resp_close = 1;
    c->resp_pending = 1;
    release(c);
}

/* ------------------------------------------------------------------ */
/* request framing                                                     */

static int
chunk_decode(conn_t *c)
{
    char      *base = c->in.p + c->rpos;
    size_t     avail = c->in.len - c->rpos, j, k, have, n;
    char      *nl;
    long long  v;
    int        nd, d;

    for (;;) {
        switch (c->ck_state) {
        case CK_SIZE:
            nl = memchr(base + c->ck_src, '\n', avail - c->ck_src);
            if (nl == NULL) {
                return avail - c->ck_src > 1024 ? -1 : 0;
            }
            j = (size_t) (nl - base);
            v = 0;
            nd = 0;
            for (k = c->ck_src; k < j; k++) {
                d = hexval((unsigned char) base[k]);
                if (d < 0) {
                    break;
                }
                v = v * 16 + d;
                nd++;
                if (v > MAX_BODY) {
                    return -2;
                }
            }
            if (nd == 0) {
                return -1;
            }
            c->ck_src = j + 1;
            if (v == 0) {
                c->ck_state = CK_TRAILER;
            } else {
                if ((long long) (c->ck_dst - c->head_len) + v > MAX_BODY) {
                    return -2;
                }
                c->ck_rem = v;
                c->ck_state = CK_DATA;
            }
            break;
        case CK_DATA:
            have = avail - c->ck_src;
            if (have == 0) {
                return 0;
            }
            n = have < (size_t) c->ck_rem ? have : (size_t) c->ck_rem;
            if (c->ck_dst != c->ck_src) {
                memmove(base + c->ck_dst, base + c->ck_src, n);
            }
            c->ck_dst += n;
            c->ck_src += n;
            c->ck_rem -= (long long) n;
            if (c->ck_rem) {
                return 0;
            }
            c->ck_state = CK_DATA_CRLF;
            break;
        case CK_DATA_CRLF:
            nl = memchr(base + c->ck_src, '\n', avail - c->ck_src);
            if (nl == NULL) {
                return avail - c->ck_src > 1 ? -1 : 0;
            }
            j = (size_t) (nl - base);
            if (j - c->ck_src > 1) {
                return -1;
            }
            c->ck_src = j + 1;
            c->ck_state = CK_SIZE;
            break;
        case CK_TRAILER:
            nl = memchr(base + c->ck_src, '\n', avail - c->ck_src);
            if (nl == NULL) {
                return avail - c->ck_src > MAX_HEAD ? -1 : 0;
            }
            j = (size_t) (nl - base);
            k = j - c->ck_src;
            c->ck_src = j + 1;
            if (k == 0 || (k == 1 && base[j - 1] == '\r')) {
                c->ck_state = CK_DONE;
                return 1;
            }
            break;
        default:
            return 1;
        }
    }
}

static void
maybe_continue(conn_t *c)
{
    if (c->expect && !c->sent_continue) {
        B_LIT(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
        c->out_avail = c->out.len;
        c->sent_continue = 1;
    }
}

/* 1: a response was queued; 0: need more input */
static int
try_request(conn_t *c)
{
    int     parsed_now = 0, rc;
    char   *base, *nl;
    size_t  avail, i, j, hend = 0, consumed, blen;

    if (c->st == ST_HEAD) {
        if (c->scan == 0) {
            while (c->rpos < c->in.len
                   && (c->in.p[c->rpos] == '\r' || c->in.p[c->rpos] == '\n')) {
                c->rpos++;
            }
        }
        base = c->in.p + c->rpos;
        avail = c->in.len - c->rpos;
        i = c->scan;
        while (i < avail) {
            nl = memchr(base + i, '\n', avail - i);
            if (nl == NULL) {
                i = avail;
                break;
            }
            j = (size_t) (nl - base);
            if ((j >= 1 && base[j - 1] == '\n')
                || (j >= 2 && base[j - 1] == '\r' && base[j - 2] == '\n')) {
                hend = j + 1;
                break;
            }
            i = j + 1;
        }
        if (!hend) {
            c->scan = i;
            if (avail > MAX_HEAD) {
                raw_error(c, 431, "Request header too large.");
                return 1;
            }
            if (c->rpos == c->in.len) {
                c->rpos = c->in.len = 0;
            }
            return 0;
        }
        c->head_len = hend;
        if (parse_head(base, hend, &g_req) < 0) {
            raw_error(c, 400, "Malformed HTTP request.");
            return 1;
        }
        parsed_now = 1;
        c->expect = g_req.expect != 0;
        if (g_req.chunked) {
            c->st = ST_CHUNK;
            c->ck_src = c->ck_dst = hend;
            c->ck_state = CK_SIZE;
            c->ck_rem = 0;
        } else {
            if (g_req.clen > MAX_BODY) {
                raw_error(c, 413, "Request body too large (max 64 MB).");
                return 1;
            }
            c->clen = g_req.clen > 0 ? g_req.clen : 0;
            c->st = ST_BODY;
        }
    }

    avail = c->in.len - c->rpos;
    if (c->st == ST_BODY) {
        if (avail < c->head_len + (size_t) c->clen) {
            maybe_continue(c);
            return 0;
        }
        consumed = c->head_len + (size_t) c->clen;
        blen = (size_t) c->clen;
    } else {
        rc = chunk_decode(c);
        if (rc == 0) {
            maybe_continue(c);
            return 0;
        }
        if (rc < 0) {
            raw_error(c, rc == -2 ? 413 : 400, rc == -2
                      ? "Request body too large (max 64 MB)."
                      : "Malformed chunked request body.");
            return 1;
        }
        consumed = c->ck_src;
        blen = c->ck_dst - c->head_len;
    }
    base = c->in.p + c->rpos;
    if (!parsed_now) {
        (void) parse_head(base, c->head_len, &g_req);
    }
    g_req.body = base + c->head_len;
    g_req.blen = blen;
    dispatch(c, &g_req);
    c->rpos += consumed;
    c->st = ST_HEAD;
    c->scan = 0;
    c->sent_continue = 0;
    c->expect = 0;
    if (c->rpos == c->in.len) {
        c->rpos = c->in.len = 0;
    }
    return 1;
}

/* ------------------------------------------------------------------ */
/* I/O                                                                 */

/* -1 error, 0 ok (drained / eof), 2 stopped reading (backpressure) */
static int
conn_read(conn_t *c)
{
    ssize_t n;
    size_t  space, want;

    for (;;) {
        if (c->in.len == c->in.cap) {
            if (c->resp_pending && c->in.len - c->rpos >= PIPE_CAP) {
                return 2;
            }
            if (c->st == ST_CHUNK && c->ck_src > c->ck_dst) {
                /* reclaim chunk framing already decoded in place */
                char *b = c->in.p + c->rpos;
                memmove(b + c->ck_dst, b + c->ck_src,
                        c->in.len - c->rpos - c->ck_src);
                c->in.len -= c->ck_src - c->ck_dst;
                c->ck_src = c->ck_dst;
            }
            if (c->rpos > 0) {
                memmove(c->in.p, c->in.p + c->rpos, c->in.len - c->rpos);
                c->in.len -= c->rpos;
                c->rpos = 0;
            }
            if (c->in.len == c->in.cap) {
                if (c->in.cap >= IN_LIMIT) {
                    return 2;
                }
                want = c->in.cap ? c->in.cap * 2 : IN_INIT;
                if (c->st == ST_BODY && c->head_len + (size_t) c->clen > want) {
                    want = c->head_len + (size_t) c->clen;
                }
                if (want > IN_LIMIT) {
                    want = IN_LIMIT;
                }
                char *np = realloc(c->in.p, want);
                if (np == NULL) {
                    return -1;
                }
                c->in.p = np;
                c->in.cap = want;
            }
        }
        space = c->in.cap - c->in.len;
        n = read(c->fd, c->in.p + c->in.len, space);
        if (n > 0) {
            c->in.len += (size_t) n;
            if ((size_t) n < space && !c->rdhup) {
                c->rd_ready = 0;
                return 0;
            }
            continue;
        }
        if (n == 0) {
            c->eof = 1;
            c->rd_ready = 0;
            return 0;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            c->rd_ready = 0;
            return 0;
        }
        return -1;
    }
}

/* -1 error (caller closes), 1 connection closed, 0 ok */
static int
conn_flush(conn_t *c)
{
    ssize_t n;

    while (c->out_sent < c->out_avail) {
        n = send(c->fd, c->out.p + c->out_sent, c->out_avail - c->out_sent,
                 MSG_NOSIGNAL);
        if (n > 0) {
            c->out_sent += (size_t) n;
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return 0;
        }
        return -1;
    }
    if (!c->resp_pending && c->out_sent == c->out.len) {
        c->out.len = c->out_sent = c->out_avail = 0;
        if (c->out.cap > 256 * 1024) {
            free(c->out.p);
            c->out.p = NULL;
            c->out.cap = 0;
        }
        if (c->close_after) {
            conn_close(c);
            return 1;
        }
    }
    return 0;
}

static void
conn_drive(conn_t *c)
{
    int rr, fr;

    for (;;) {
        rr = 0;
        if (c->rd_ready && !c->eof) {
            rr = conn_read(c);
            if (rr < 0) {
                conn_close(c);
                return;
            }
        }
        while (!c->resp_pending && !c->close_after) {
            if (!try_request(c)) {
                break;
            }
        }
        fr = conn_flush(c);
        if (fr < 0) {
            conn_close(c);
            return;
        }
        if (fr > 0) {
            return;
        }
        if (c->eof && !c->resp_pending && c->out_sent == c->out.len) {
            conn_close(c);
            return;
        }
        if (!c->resp_pending && c->rpos == c->in.len && c->in.cap > 256 * 1024) {
            free(c->in.p);
            c->in.p = NULL;
            c->in.cap = c->in.len = c->rpos = 0;
        }
        if (!c->rd_ready || c->eof || rr == 2) {
            return;
        }
    }
}

static void
conn_event(conn_t *c, uint32_t ev)
{
    if (ev & (EPOLLERR | EPOLLHUP)) {
        conn_close(c);
        return;
    }
    if (ev & EPOLLRDHUP) {
        c->rdhup = 1;
    }
    if (ev & (EPOLLIN | EPOLLRDHUP)) {
        c->rd_ready = 1;
    }
    conn_drive(c);
}

static void
do_accept(void)
{
    int                 fd, one = 1;
    conn_t             *c;
    struct epoll_event  ev;

    for (;;) {
        fd = accept4(g_lis.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) {
                continue;
            }
            if ((errno == EMFILE || errno == ENFILE) && g_spare >= 0) {
                close(g_spare);
                fd = accept(g_lis.fd, NULL, NULL);
                if (fd >= 0) {
                    close(fd);
                }
                g_spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
            }
            return;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c = calloc(1, sizeof(*c));
        if (c == NULL) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->heap_idx = -1;
        ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
        ev.data.ptr = c;
        if (epoll_ctl(g_ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            close(fd);
            free(c);
        }
    }
}

static void
worker_loop(void)
{
    struct epoll_event  evs[512], ev;
    sigset_t            block, waitmask;
    long long           d, now;
    int                 n, i, timeout;
    conn_t             *c;

    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigprocmask(SIG_BLOCK, &block, &waitmask);
    sigdelset(&waitmask, SIGTERM);
    sigdelset(&waitmask, SIGINT);

    g_ep = epoll_create1(EPOLL_CLOEXEC);
    if (g_ep < 0) {
        perror("ai_mock: epoll_create1");
        exit(1);
    }
    g_spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
    ev.events = EPOLLIN;
    ev.data.ptr = &g_lis;
    if (epoll_ctl(g_ep, EPOLL_CTL_ADD, g_lis.fd, &ev) < 0) {
        perror("ai_mock: epoll_ctl");
        exit(1);
    }
    while (!g_stop) {
        timeout = -1;
        if (g_hn) {
            d = g_heap[0]->deadline - now_ms();
            timeout = d < 0 ? 0 : (d > INT_MAX ? INT_MAX : (int) d);
        }
        n = epoll_pwait(g_ep, evs, 512, timeout, &waitmask);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            perror("ai_mock: epoll_wait");
            exit(1);
        }
        for (i = 0; i < n; i++) {
            if (*(int *) evs[i].data.ptr == 1) {
                do_accept();
            } else {
                conn_event(evs[i].data.ptr, evs[i].events);
            }
        }
        if (g_hn) {
            now = now_ms();
            while (g_hn && g_heap[0]->deadline <= now) {
                c = g_heap[0];
                heap_del(c);
                c->timer_fired = 1;
                release(c);
                conn_drive(c);
            }
        }
    }
}

/* ------------------------------------------------------------------ */
/* startup                                                             */

static void
on_signal(int sig)
{
    if (sig == SIGCHLD) {
        g_chld = 1;
    } else {
        g_stop = 1;
    }
}

static int
make_listener(const char *spec)
{
    char             host[256], *port;
    struct addrinfo  hints, *res, *ai;
    int              fd = -1, one = 1, rc;
    const char      *h;

    snprintf(host, sizeof(host), "%s", spec);
    port = strrchr(host, ':');
    if (port == NULL) {
        port = host;
        h = NULL;
    } else {
        *port++ = '\0';
        h = host;
        if (h[0] == '[') {
            h++;
            if (host[strlen(host) - 1] == ']') {
                host[strlen(host) - 1] = '\0';
            }
        }
        if (h[0] == '\0' || !strcmp(h, "*")) {
            h = NULL;
        }
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    rc = getaddrinfo(h, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "ai_mock: bad listen address '%s': %s\n", spec,
                gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd < 0) {
            continue;
        }
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 4096) == 0) {
            break;
        }
        close(fd);
        fd = -1;
    }
    if (fd < 0) {
        fprintf(stderr, "ai_mock: cannot listen on %s: %s\n", spec, strerror(errno));
    }
    freeaddrinfo(res);
    return fd;
}

static void
usage(void)
{
    fputs("usage: ai_mock -l HOST:PORT [-w WORKERS] [-k REQUIRED_KEY]\n", stderr);
    exit(2);
}

int
main(int argc, char **argv)
{
    const char       *listen_spec = NULL;
    int               workers = 1, opt, i, fd, status, alive;
    struct rlimit     rl;
    struct sigaction  sa;
    sigset_t          block, oldmask;
    pid_t            *pids, parent, pid;

    while ((opt = getopt(argc, argv, "l:w:k:h")) != -1) {
        switch (opt) {
        case 'l': listen_spec = optarg; break;
        case 'w': workers = atoi(optarg); break;
        case 'k': g_key = optarg; break;
        default:  usage();
        }
    }
    if (listen_spec == NULL || workers < 1 || workers > 256 || optind != argc) {
        usage();
    }

    signal(SIGPIPE, SIG_IGN);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            rl.rlim_cur = 1048576;
            setrlimit(RLIMIT_NOFILE, &rl);
        }
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    fd = make_listener(listen_spec);
    if (fd < 0) {
        return 1;
    }
    if (workers == 1) {
        g_lis.fd = fd;
        worker_loop();
        return 0;
    }

    sigaction(SIGCHLD, &sa, NULL);
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGCHLD);
    sigprocmask(SIG_BLOCK, &block, &oldmask);

    pids = calloc((size_t) workers, sizeof(pid_t));
    if (pids == NULL) {
        die_oom();
    }
    parent = getpid();
    for (i = 0; i < workers; i++) {
        pid = fork();
        if (pid < 0) {
            perror("ai_mock: fork");
            g_stop = 1;
            break;
        }
        if (pid == 0) {
            signal(SIGCHLD, SIG_DFL);
            prctl(PR_SET_PDEATHSIG, SIGTERM);
            if (getppid() != parent) {
                _exit(0);
            }
            if (i > 0) {
                int nfd = make_listener(listen_spec);
                if (nfd < 0) {
                    _exit(1);
                }
                close(fd);
                fd = nfd;
            }
            sigprocmask(SIG_SETMASK, &oldmask, NULL);
            g_lis.fd = fd;
            worker_loop();
            _exit(0);
        }
        pids[i] = pid;
    }
    close(fd);

    alive = i;
    while (!g_stop && alive == workers) {
        sigsuspend(&oldmask);
        if (g_chld) {
            g_chld = 0;
            while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
                for (i = 0; i < workers; i++) {
                    if (pids[i] == pid) {
                        pids[i] = 0;
                        alive--;
                    }
                }
                if (!g_stop && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
                    fprintf(stderr, "ai_mock: worker %d exited unexpectedly (status %d)\n",
                            (int) pid, status);
                }
            }
        }
    }
    for (i = 0; i < workers; i++) {
        if (pids[i] > 0) {
            kill(pids[i], SIGTERM);
        }
    }
    for (i = 0; i < workers; i++) {
        if (pids[i] > 0) {
            waitpid(pids[i], NULL, 0);
        }
    }
    free(pids);
    return g_stop ? 0 : 1;
}
