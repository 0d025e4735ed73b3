/*
 * loadgen: the benchmark's HTTP/1.1 load generator (bench/run builds it).
 *
 * One thread, epoll, non-blocking sockets.  Every response is checked:
 * status 200, complete framing (Content-Length or chunked) and, with -e,
 * a string that must appear in the last bytes of the body (the terminal
 * SSE event, for example).  Anything else counts as an error.
 *
 * Two modes:
 *
 *   closed loop (default): -c connections with keep-alive, each sends the
 *   request again as soon as its response is complete, for -d seconds
 *   after -w seconds of warm-up.  At the end no new request is started and
 *   the requests in flight are awaited (they count).
 *
 *   With -u, the 16 bytes "@@UNIQ@@@@@@@@@@" in the request are replaced by
 *   a counter, different for every request (same length), so that no two
 *   requests are alike (a cache sees misses only); it starts at a random
 *   value, so that no two runs send the same requests either.
 *
 *   streams (-S): -c connections, each sends the request once and reads
 *   the response to its end; used to hold many slow streams open at once.
 *
 * With -P pid,pid... it reads the CPU time of those processes (the NGINX
 * workers) from /proc at the start and the end of the measured period, and
 * samples their RSS every 20 ms.
 *
 * The result is one JSON object on stdout.
 *
 *   loadgen -p PORT -f REQUEST_FILE [-h 127.0.0.1] [-c 50] [-d 5] [-w 1]
 *           [-e EXPECT] [-P PIDS] [-S] [-R CONNECTS_PER_SEC] [-T TIMEOUT] [-u]
 */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HDR_MAX     16384
#define TAIL_MAX    512
#define HIST_US     200000          /* 1 us buckets up to 200 ms */
#define HIST_MS     120000          /* then 1 ms buckets up to 120 s */
#define MAX_PIDS    16

enum {
    ST_IDLE = 0, ST_CONNECTING, ST_WRITING, ST_HEADERS, ST_BODY_CL,
    ST_CHUNK_SIZE, ST_CHUNK_EXT, ST_CHUNK_SIZE_LF, ST_CHUNK_DATA,
    ST_CHUNK_DATA_CR, ST_CHUNK_DATA_LF, ST_TRAILER, ST_TRAILER_LF,
    ST_TRAILER_LINE, ST_DONE
};

typedef struct {
    int         fd;
    int         state;
    int         keepalive;
    int         used;           /* requests sent on this connection */
    size_t      woff;
    char       *hdr;
    char       *req;            /* own copy of the request with -u */
    size_t      hlen;
    int64_t     left;           /* Content-Length or chunk bytes left */
    int         last_chunk;
    char        tail[TAIL_MAX];
    size_t      tlen;
    uint64_t    t0;             /* request start, ns */
    int         status;
    int         headers_seen;
    uint32_t    events;         /* what epoll watches for it */
} conn_t;

static const char  *host = "127.0.0.1";
static int          port;
static char        *req;
static size_t       req_len;
static const char  *expect;
static size_t       expect_len;
static int          nconns = 50;
static double       duration = 5, warmup = 0;
static int          streams_mode;
static int          unique;
static long         uniq_off = -1;
static uint64_t     uniq_next;
static int          connect_rate = 5000;
static double       timeout_s = 60;
static pid_t        pids[MAX_PIDS];
static int          npids;

static int          epfd;
static conn_t      *conns;
static uint32_t    *hist, *hist_ms;
static uint64_t     lat_max, lat_sum, lat_over;

static uint64_t     completed, errors, err_status, err_conn,
                    err_expect, bytes_in, warm_done;
static int          measuring, stopping;
static int          open_conns, headers_open, max_headers_open;
static uint64_t     t_all_open;
static char         first_err[256];

static void on_write(conn_t *c);


static uint64_t
now_ns(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}


static void
note_error(const char *what, conn_t *c)
{
    if (first_err[0] == '\0') {
        snprintf(first_err, sizeof(first_err), "%s (status %d)", what,
                 c ? c->status : 0);
    }
}


/* CPU time (ns) of a process: schedstat (ns), else utime+stime ticks */

static uint64_t
proc_cpu_ns(pid_t pid, uint64_t *ticks_ns)
{
    char      path[64], buf[4096], *p;
    int       fd, i;
    ssize_t   n;
    uint64_t  ns = 0;
    unsigned long long  ut, st;
    long      hz = sysconf(_SC_CLK_TCK);

    *ticks_ns = 0;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
    fd = open(path, O_RDONLY);
    if (fd >= 0) {
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n > 0) {
            buf[n] = '\0';
            p = strrchr(buf, ')');
            /* fields after ")": state(3) ... utime(14) stime(15) */
            for (i = 0; p && i < 12; i++) {
                p = strchr(p + 1, ' ');
            }
            if (p && sscanf(p + 1, "%llu %llu", &ut, &st) == 2) {
                *ticks_ns = (ut + st) * (1000000000ULL / hz);
            }
        }
    }

    snprintf(path, sizeof(path), "/proc/%d/schedstat", (int) pid);
    fd = open(path, O_RDONLY);
    if (fd >= 0) {
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n > 0) {
            buf[n] = '\0';
            ns = strtoull(buf, NULL, 10);
        }
    }

    return ns ? ns : *ticks_ns;
}


static uint64_t
cpu_all(uint64_t *ticks)
{
    int       i;
    uint64_t  sum = 0, t, tsum = 0;

    for (i = 0; i < npids; i++) {
        sum += proc_cpu_ns(pids[i], &t);
        tsum += t;
    }
    *ticks = tsum;
    return sum;
}


static uint64_t
rss_all(void)
{
    char      path[64], buf[4096], *p;
    int       fd, i;
    ssize_t   n;
    uint64_t  sum = 0;

    for (i = 0; i < npids; i++) {
        snprintf(path, sizeof(path), "/proc/%d/status", (int) pids[i]);
        fd = open(path, O_RDONLY);
        if (fd < 0) {
            continue;
        }
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0) {
            continue;
        }
        buf[n] = '\0';
        p = strstr(buf, "VmRSS:");
        if (p) {
            sum += strtoull(p + 6, NULL, 10);     /* kB */
        }
    }
    return sum;
}


static void
conn_close(conn_t *c)
{
    if (c->fd >= 0) {
        epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
        open_conns--;
        if (c->headers_seen) {
            headers_open--;
        }
    }
    c->state = ST_IDLE;
    c->headers_seen = 0;
}


static int
conn_open(conn_t *c)
{
    int                 fd, one = 1;
    struct sockaddr_in  sa;
    struct epoll_event  ev;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        note_error(strerror(errno), NULL);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    inet_pton(AF_INET, host, &sa.sin_addr);

    if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0
        && errno != EINPROGRESS)
    {
        note_error(strerror(errno), NULL);
        close(fd);
        return -1;
    }

    c->fd = fd;
    c->state = ST_CONNECTING;
    c->used = 0;
    open_conns++;

    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP;
    ev.data.ptr = c;
    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
    c->events = ev.events;
    return 0;
}


/* what epoll watches for a connection, changed only when it changes */

static void
watch(conn_t *c, uint32_t events)
{
    struct epoll_event  ev;

    if (c->events == events) {
        return;
    }

    ev.events = events;
    ev.data.ptr = c;
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->events = events;
}


/*
 * A request begins: it is written at once by on_write(), and epoll is
 * asked for EPOLLOUT only if the socket cannot take it all (a syscall
 * less per request each way: the load generator's own CPU, which shares
 * the machine's two cores with the server, is not the bench's to spend)
 */

static void
start_request(conn_t *c)
{
    c->state = ST_WRITING;
    c->woff = 0;
    c->hlen = 0;
    c->tlen = 0;
    c->left = 0;
    c->last_chunk = 0;
    c->status = 0;
    c->keepalive = 1;
    c->t0 = now_ns();
    c->used++;

    if (c->req) {
        char  num[17];

        snprintf(num, sizeof(num), "%016llx",
                 (unsigned long long) uniq_next++);
        memcpy(c->req + uniq_off, num, 16);
    }
}


static void
finish_request(conn_t *c, int ok)
{
    uint64_t  lat;

    if (ok && c->status != 200) {
        ok = 0;
        err_status++;
        note_error("status", c);

    } else if (ok && expect
               && memmem(c->tail, c->tlen, expect, expect_len) == NULL)
    {
        ok = 0;
        err_expect++;
        if (first_err[0] == '\0') {
            snprintf(first_err, sizeof(first_err),
                     "expected string not at the end: ...%.*s",
                     (int) (c->tlen > 120 ? 120 : c->tlen),
                     c->tail + (c->tlen > 120 ? c->tlen - 120 : 0));
        }
    }

    if (measuring || streams_mode) {
        if (ok) {
            completed++;
            lat = (now_ns() - c->t0) / 1000;
            lat_sum += lat;
            if (lat > lat_max) {
                lat_max = lat;
            }
            if (lat < HIST_US) {
                hist[lat]++;
            } else {
                lat_over++;
                hist_ms[lat / 1000 < HIST_MS ? lat / 1000 : HIST_MS - 1]++;
            }

        } else {
            errors++;
        }

    } else if (ok) {
        warm_done++;
    }

    if (c->headers_seen) {
        c->headers_seen = 0;
        headers_open--;
    }

    if (!ok || !c->keepalive || streams_mode || stopping) {
        conn_close(c);
        c->state = ST_DONE;
        return;
    }

    c->state = ST_IDLE;
    start_request(c);
    on_write(c);
}


static void
fail(conn_t *c, const char *what)
{
    err_conn++;
    note_error(what, c);
    if (c->headers_seen) {
        c->headers_seen = 0;
        headers_open--;
    }
    if (measuring || streams_mode) {
        errors++;
    }
    conn_close(c);
    c->state = ST_DONE;
}


static void
add_tail(conn_t *c, const char *p, size_t n)
{
    if (n >= TAIL_MAX) {
        memcpy(c->tail, p + n - TAIL_MAX, TAIL_MAX);
        c->tlen = TAIL_MAX;
        return;
    }
    if (c->tlen + n > TAIL_MAX) {
        size_t  drop = c->tlen + n - TAIL_MAX;

        memmove(c->tail, c->tail + drop, c->tlen - drop);
        c->tlen -= drop;
    }
    memcpy(c->tail + c->tlen, p, n);
    c->tlen += n;
}


/* returns the bytes used of the header data, or 0 if more is needed */

static int
parse_headers(conn_t *c)
{
    char   *end, *line, *next, *colon, *v;
    int     chunked = 0;
    int64_t cl = -1;

    end = memmem(c->hdr, c->hlen, "\r\n\r\n", 4);
    if (end == NULL) {
        return 0;
    }
    *end = '\0';

    if (strncmp(c->hdr, "HTTP/1.", 7) != 0) {
        return -1;
    }
    c->status = atoi(c->hdr + 9);
    if (c->hdr[7] == '0') {
        c->keepalive = 0;
    }

    line = strstr(c->hdr, "\r\n");
    while (line) {
        line += 2;
        next = strstr(line, "\r\n");
        if (next) {
            *next = '\0';
        }
        colon = strchr(line, ':');
        if (colon) {
            *colon = '\0';
            v = colon + 1;
            while (*v == ' ' || *v == '\t') {
                v++;
            }
            if (strcasecmp(line, "content-length") == 0) {
                cl = strtoll(v, NULL, 10);
            } else if (strcasecmp(line, "transfer-encoding") == 0
                       && strcasestr(v, "chunked"))
            {
                chunked = 1;
            } else if (strcasecmp(line, "connection") == 0
                       && strcasestr(v, "close"))
            {
                c->keepalive = 0;
            }
        }
        line = next;
    }

    if (chunked) {
        c->state = ST_CHUNK_SIZE;
        c->left = 0;
    } else if (cl >= 0) {
        c->state = ST_BODY_CL;
        c->left = cl;
    } else {
        return -1;              /* read-until-close is not benchmarked */
    }

    if (!c->headers_seen) {
        c->headers_seen = 1;
        headers_open++;
        if (headers_open > max_headers_open) {
            max_headers_open = headers_open;
        }
    }

    return (int) (end - c->hdr) + 4;
}


/* feeds body bytes; returns 1 when the response is complete, -1 on error */

static int
feed_body(conn_t *c, char *p, size_t n)
{
    size_t  k;
    int     ch;

    while (n) {
        switch (c->state) {

        case ST_BODY_CL:
            k = (size_t) c->left < n ? (size_t) c->left : n;
            add_tail(c, p, k);
            c->left -= k;
            p += k;
            n -= k;
            if (c->left == 0) {
                return n ? -1 : 1;
            }
            break;

        case ST_CHUNK_SIZE:
            ch = *p;
            if (isxdigit(ch)) {
                c->left = c->left * 16
                          + (isdigit(ch) ? ch - '0' : (tolower(ch) - 'a' + 10));
            } else if (ch == ';' || ch == ' ') {
                c->state = ST_CHUNK_EXT;
            } else if (ch == '\r') {
                c->state = ST_CHUNK_SIZE_LF;
            } else {
                return -1;
            }
            p++;
            n--;
            break;

        case ST_CHUNK_EXT:
            if (*p == '\r') {
                c->state = ST_CHUNK_SIZE_LF;
            }
            p++;
            n--;
            break;

        case ST_CHUNK_SIZE_LF:
            if (*p != '\n') {
                return -1;
            }
            p++;
            n--;
            if (c->left == 0) {
                c->state = ST_TRAILER;
            } else {
                c->state = ST_CHUNK_DATA;
            }
            break;

        case ST_CHUNK_DATA:
            k = (size_t) c->left < n ? (size_t) c->left : n;
            add_tail(c, p, k);
            c->left -= k;
            p += k;
            n -= k;
            if (c->left == 0) {
                c->state = ST_CHUNK_DATA_CR;
            }
            break;

        case ST_CHUNK_DATA_CR:
            if (*p != '\r') {
                return -1;
            }
            c->state = ST_CHUNK_DATA_LF;
            p++;
            n--;
            break;

        case ST_CHUNK_DATA_LF:
            if (*p != '\n') {
                return -1;
            }
            c->state = ST_CHUNK_SIZE;
            c->left = 0;
            p++;
            n--;
            break;

        case ST_TRAILER:            /* start of a trailer line */
            if (*p == '\r') {
                c->state = ST_TRAILER_LF;
            } else {
                c->state = ST_TRAILER_LINE;
            }
            p++;
            n--;
            break;

        case ST_TRAILER_LINE:
            if (*p == '\n') {
                c->state = ST_TRAILER;
            }
            p++;
            n--;
            break;

        case ST_TRAILER_LF:
            if (*p != '\n') {
                return -1;
            }
            p++;
            n--;
            return n ? -1 : 1;

        default:
            return -1;
        }
    }

    if (c->state == ST_BODY_CL && c->left == 0) {
        return 1;
    }

    return 0;
}


static char  rbuf[262144];

static void
on_read(conn_t *c)
{
    ssize_t  n;
    int      used, rc;
    size_t   k;

    for ( ;; ) {
        n = read(c->fd, rbuf, sizeof(rbuf));

        if (n == 0) {
            if (c->state == ST_IDLE && c->used) {
                /* the server closed an idle keep-alive connection */
                conn_close(c);
                c->state = ST_DONE;
                return;
            }
            fail(c, "connection closed before the response ended");
            return;
        }

        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                return;
            }
            fail(c, strerror(errno));
            return;
        }

        bytes_in += n;

        if (c->state == ST_WRITING || c->state == ST_IDLE) {
            /* an early answer (an error before the body was read) */
            c->state = ST_HEADERS;
            watch(c, EPOLLIN | EPOLLRDHUP);
        }

        if (c->state == ST_HEADERS) {
            k = (size_t) n;
            if (c->hlen + k > HDR_MAX) {
                fail(c, "response header too large");
                return;
            }
            memcpy(c->hdr + c->hlen, rbuf, k);
            c->hlen += k;

            used = parse_headers(c);
            if (used < 0) {
                fail(c, "bad response header");
                return;
            }
            if (used == 0) {
                continue;
            }

            k = c->hlen - used;
            if (k == 0) {
                if (c->state == ST_BODY_CL && c->left == 0) {
                    /* epoll (level-triggered) tells when more comes */
                    finish_request(c, 1);
                    return;
                }
                continue;
            }
            memmove(rbuf, c->hdr + used, k);
            n = (ssize_t) k;
        }

        rc = feed_body(c, rbuf, (size_t) n);
        if (rc < 0) {
            fail(c, "bad response framing");
            return;
        }
        if (rc == 1) {
            finish_request(c, 1);
            return;
        }

        if ((size_t) n < sizeof(rbuf) && c->state != ST_HEADERS) {
            /*
             * most often all there was (n is the body's part of a read
             * that began with the header): epoll tells when more comes
             */
            return;
        }
    }
}


static void
on_write(conn_t *c)
{
    ssize_t  n;

    if (c->state == ST_CONNECTING) {
        int        err = 0;
        socklen_t  len = sizeof(err);

        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            fail(c, strerror(err));
            return;
        }
        start_request(c);
    }

    if (c->state != ST_WRITING) {
        return;
    }

    while (c->woff < req_len) {
        n = write(c->fd, (c->req ? c->req : req) + c->woff,
                  req_len - c->woff);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                watch(c, EPOLLIN | EPOLLOUT | EPOLLRDHUP);
                return;
            }
            fail(c, strerror(errno));
            return;
        }
        c->woff += n;
    }

    c->state = ST_HEADERS;
    watch(c, EPOLLIN | EPOLLRDHUP);
}


static uint64_t
percentile(uint64_t total, double q)
{
    uint64_t  want, acc = 0;
    int       i;

    if (total == 0) {
        return 0;
    }
    want = (uint64_t) (q * total);
    if (want >= total) {
        want = total - 1;
    }
    for (i = 0; i < HIST_US; i++) {
        acc += hist[i];
        if (acc > want) {
            return i;
        }
    }
    for (i = 0; i < HIST_MS; i++) {
        acc += hist_ms[i];
        if (acc > want) {
            return (uint64_t) i * 1000;
        }
    }
    return lat_max;
}


static char *
read_file(const char *path, size_t *len)
{
    FILE   *f;
    char   *p;
    long    n;

    f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    p = malloc(n + 1);
    if (p == NULL || fread(p, 1, n, f) != (size_t) n) {
        perror(path);
        exit(2);
    }
    fclose(f);
    *len = n;
    return p;
}


static void
json_str(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') {
            printf("\\%c", *s);
        } else if ((unsigned char) *s < 0x20) {
            printf("\\u%04x", *s);
        } else {
            putchar(*s);
        }
    }
    putchar('"');
}


int
main(int argc, char **argv)
{
    int                  opt, i, n, started = 0;
    char                *s, *tok;
    uint64_t             t_start, t_meas = 0, t_end_meas, t_stop, t_now,
                         t_rss = 0, cpu0 = 0, cpu1, tick0 = 0, tick1,
                         rss0 = 0, rss_peak = 0, rss_open = 0, rss_last = 0,
                         t_last_connect;
    double               elapsed;
    struct epoll_event   evs[512];
    struct rlimit        rl;
    conn_t              *c;

    while ((opt = getopt(argc, argv, "h:p:f:c:d:w:e:P:SR:T:u")) != -1) {
        switch (opt) {
        case 'h': host = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'f': req = read_file(optarg, &req_len); break;
        case 'c': nconns = atoi(optarg); break;
        case 'd': duration = atof(optarg); break;
        case 'w': warmup = atof(optarg); break;
        case 'e': expect = optarg; expect_len = strlen(optarg); break;
        case 'S': streams_mode = 1; break;
        case 'u': unique = 1; break;
        case 'R': connect_rate = atoi(optarg); break;
        case 'T': timeout_s = atof(optarg); break;
        case 'P':
            s = strdup(optarg);
            for (tok = strtok(s, ","); tok && npids < MAX_PIDS;
                 tok = strtok(NULL, ","))
            {
                pids[npids++] = atoi(tok);
            }
            break;
        default:
            fprintf(stderr, "usage: loadgen -p PORT -f REQUEST_FILE "
                    "[-h HOST] [-c CONNS] [-d SEC] [-w SEC] [-e EXPECT] "
                    "[-P PIDS] [-S] [-R CONNECTS/S] [-T SEC] [-u]\n");
            return 2;
        }
    }

    if (port == 0 || req == NULL || nconns < 1) {
        fprintf(stderr, "loadgen: -p and -f are required\n");
        return 2;
    }

    signal(SIGPIPE, SIG_IGN);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    conns = calloc(nconns, sizeof(conn_t));
    hist = calloc(HIST_US, sizeof(uint32_t));
    hist_ms = calloc(HIST_MS, sizeof(uint32_t));
    if (conns == NULL || hist == NULL || hist_ms == NULL) {
        return 2;
    }
    if (unique) {
        char  *u = memmem(req, req_len, "@@UNIQ@@@@@@@@@@", 16);

        if (u == NULL) {
            fprintf(stderr, "loadgen: -u without @@UNIQ@@@@@@@@@@ in the "
                    "request\n");
            return 2;
        }
        uniq_off = u - req;

        /*
         * the counter starts at a random place: a run that started at 0
         * would send the requests of the run before it again, and a cache
         * kept between the runs would answer them
         */
        if (getrandom(&uniq_next, sizeof(uniq_next), 0)
            != (ssize_t) sizeof(uniq_next))
        {
            uniq_next = now_ns();
        }
    }

    for (i = 0; i < nconns; i++) {
        conns[i].fd = -1;
        if (unique) {
            conns[i].req = malloc(req_len);
            if (conns[i].req == NULL) {
                return 2;
            }
            memcpy(conns[i].req, req, req_len);
        }
        conns[i].hdr = malloc(HDR_MAX + 1);
        if (conns[i].hdr == NULL) {
            return 2;
        }
    }

    epfd = epoll_create1(EPOLL_CLOEXEC);

    t_start = now_ns();
    t_last_connect = t_start;

    if (streams_mode || warmup <= 0) {
        measuring = 1;
        t_meas = t_start;
        cpu0 = cpu_all(&tick0);
        rss0 = rss_all();
    }

    t_stop = t_meas + (uint64_t) (duration * 1e9);

    for ( ;; ) {
        t_now = now_ns();

        /* open connections, at most connect_rate per second */
        if (started < nconns) {
            uint64_t  allowed;

            allowed = (t_now - t_last_connect) * connect_rate / 1000000000ULL;
            if (allowed == 0 && started == 0) {
                allowed = 1;
            }
            if (allowed > 0) {
                t_last_connect = t_now;
            }
            for (; allowed && started < nconns; allowed--) {
                if (conn_open(&conns[started]) < 0) {
                    err_conn++;
                    errors++;
                    conns[started].state = ST_DONE;
                }
                started++;
            }
        }

        if (!measuring && t_now - t_start >= (uint64_t) (warmup * 1e9)) {
            measuring = 1;
            t_meas = t_now;
            t_stop = t_meas + (uint64_t) (duration * 1e9);
            cpu0 = cpu_all(&tick0);
            rss0 = rss_all();
        }

        if (npids && t_now - t_rss >= 20000000ULL) {
            t_rss = t_now;
            rss_last = rss_all();
            if (measuring && rss_last > rss_peak) {
                rss_peak = rss_last;
            }
        }

        /* every stream has its response header, or has already failed */
        if (streams_mode && started == nconns && t_all_open == 0
            && headers_open > 0
            && (uint64_t) headers_open + completed + errors >= (uint64_t) nconns)
        {
            t_all_open = t_now;
            rss_open = rss_all();
        }

        if (!streams_mode && measuring && !stopping && t_now >= t_stop) {
            stopping = 1;
            /* close the idle ones; the busy ones close when done */
            for (i = 0; i < started; i++) {
                if (conns[i].fd >= 0 && conns[i].state == ST_IDLE) {
                    conn_close(&conns[i]);
                    conns[i].state = ST_DONE;
                }
            }
        }

        if ((stopping || streams_mode) && started == nconns
            && open_conns == 0)
        {
            break;
        }

        if (t_now - t_start > (uint64_t) ((warmup + duration + timeout_s)
                                          * 1e9))
        {
            for (i = 0; i < started; i++) {
                if (conns[i].fd >= 0) {
                    fail(&conns[i], "timeout");
                }
            }
            break;
        }

        n = epoll_wait(epfd, evs, 512, 5);
        for (i = 0; i < n; i++) {
            c = evs[i].data.ptr;
            if (c->fd < 0) {
                continue;
            }
            if (evs[i].events & (EPOLLOUT | EPOLLERR)) {
                on_write(c);
            }
            if (c->fd >= 0
                && (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP
                                     | EPOLLERR)))
            {
                on_read(c);
            }
        }
    }

    t_end_meas = now_ns();
    cpu1 = cpu_all(&tick1);
    elapsed = (t_end_meas - t_meas) / 1e9;

    printf("{\"requests\":%llu,\"errors\":%llu,\"err_status\":%llu,"
           "\"err_expect\":%llu,\"err_conn\":%llu,\"seconds\":%.4f,"
           "\"rps\":%.1f,\"p50_us\":%llu,\"p90_us\":%llu,\"p99_us\":%llu,"
           "\"max_us\":%llu,\"mean_us\":%.1f,\"bytes_in\":%llu,"
           "\"warmup_requests\":%llu,\"conns\":%d",
           (unsigned long long) completed, (unsigned long long) errors,
           (unsigned long long) err_status, (unsigned long long) err_expect,
           (unsigned long long) err_conn, elapsed,
           elapsed > 0 ? completed / elapsed : 0.0,
           (unsigned long long) percentile(completed, 0.50),
           (unsigned long long) percentile(completed, 0.90),
           (unsigned long long) percentile(completed, 0.99),
           (unsigned long long) lat_max,
           completed ? (double) lat_sum / completed : 0.0,
           (unsigned long long) bytes_in, (unsigned long long) warm_done,
           nconns);

    if (npids) {
        printf(",\"cpu_ns\":%llu,\"cpu_tick_ns\":%llu,\"cpu_us_per_req\":%.3f,"
               "\"cpu_util\":%.3f,\"rss0_kb\":%llu,\"rss_peak_kb\":%llu,"
               "\"rss_end_kb\":%llu",
               (unsigned long long) (cpu1 - cpu0),
               (unsigned long long) (tick1 - tick0),
               completed ? (cpu1 - cpu0) / 1000.0 / completed : 0.0,
               elapsed > 0 ? (cpu1 - cpu0) / 1e9 / elapsed : 0.0,
               (unsigned long long) rss0, (unsigned long long) rss_peak,
               (unsigned long long) rss_last);
    }

    if (streams_mode) {
        printf(",\"all_open\":%s,\"all_open_s\":%.3f,\"rss_open_kb\":%llu,"
               "\"max_open\":%d",
               t_all_open ? "true" : "false",
               t_all_open ? (t_all_open - t_meas) / 1e9 : 0.0,
               (unsigned long long) rss_open, max_headers_open);
    }

    printf(",\"first_error\":");
    json_str(first_err);
    printf("}\n");

    return 0;
}
