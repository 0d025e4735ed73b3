
/*
 * Unit tests of the token estimate's text count: the prose path
 * (ngx_http_ai_estimate_prose(), 8 bytes at a time) gives the count that
 * the byte-at-a-time loop below gives, which is the loop the estimator
 * had before it and which docs/estimator.md measured; on random texts of
 * letters, spaces, digits, punctuation, whitespace and UTF-8, at every
 * alignment, and on the benchmark's prose.  AI_JSON_BENCH=1 prints the
 * cost of 1 MB of prose with both.
 */


#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <time.h>

#include "ngx_http_ai_core_module.h"


static ngx_uint_t
ref_letter(u_char *p, u_char *last)
{
    u_char  c;

    c = *p | 0x20;

    if (c >= 'a' && c <= 'z') {
        return 1;
    }

    if (*p >= 0xc0 && *p < 0xe0 && p + 1 < last
        && p[1] >= 0x80 && p[1] < 0xc0)
    {
        return 2;
    }

    return 0;
}


/* the estimator's loop before the prose path, as it was */

static int64_t
ref_text(u_char *p, size_t len)
{
    u_char      *last, *q, c;
    int64_t      n, c3, c4;
    ngx_uint_t   l;

    n = 0;
    c3 = 0;
    c4 = 0;

    last = p + len;

    while (p < last) {
        c = *p;
        l = ref_letter(p, last);

        if (l == 0 && c >= 0x80) {
            c4 += (c >= 0xf0);
            c3 += (c >= 0xe0 && c < 0xf0);
            p++;
            continue;
        }

        if (l) {
            while (p < last && *p >= 'A' && *p <= 'Z') {
                p++;
            }

            while (p < last && ref_letter(p, last)
                   && !(*p >= 'A' && *p <= 'Z'))
            {
                p += ref_letter(p, last);
            }

            n++;
            continue;
        }

        q = p;

        if (c >= '0' && c <= '9') {
            while (p < last && *p >= '0' && *p <= '9') {
                p++;
            }

            n += (p - q + 2) / 3;
            continue;
        }

        if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
            while (p < last
                   && (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r'))
            {
                p++;
            }

            if (!(p - q == 1 && c == ' ' && p < last)) {
                n++;
            }

            continue;
        }

        while (p < last && *p < 0x80
               && !ref_letter(p, last)
               && !(*p >= '0' && *p <= '9')
               && *p != ' ' && *p != '\n' && *p != '\t' && *p != '\r')
        {
            p++;
        }

        if (p - q == 1 && p < last && ref_letter(p, last)) {
            continue;
        }

        n += (p - q + 2) / 3;
    }

    return n + (c3 * 2 + 2) / 3 + (c4 * 3 + 1) / 2;
}


static const char  *pieces[] = {
    "a", "b", "z", "A", "Z", "the", "The", "THE", "quick", "QUICK", "qUiCk",
    "aB", "Ab", "abC", " ", " ", " ", "  ", "\n", "\t", " \n", ",", ".",
    "!?", "'", "-", "0", "42", "12345", "_", "\xc3\xa9", "caf\xc3\xa9",
    "\xc3\x89t\xc3\xa9", "\xe4\xb8\xad", "\xf0\x9f\x98\x80", "\xc3",
    "\x80", "@", "[", "`", "{", "~", "\x7f", "\r\n"
};


static void
check(u_char *p, size_t len)
{
    int64_t  got, expect;

    got = ngx_http_ai_estimate_text(p, len);
    expect = ref_text(p, len);

    if (got != expect) {
        fail_msg("\"%.*s\" (%zu bytes): %lld pieces, the loop counts %lld",
                 (int) len, p, len, (long long) got, (long long) expect);
    }
}


static void
test_random(void **state)
{
    u_char      buf[512];
    size_t      len, k, off;
    ngx_uint_t  i, j, letters;

    srandom(11);

    for (i = 0; i < 200000; i++) {
        len = 0;
        off = random() % 8;
        letters = random() % 4;

        for (j = 0; len < 200; j++) {
            /* mostly words and single spaces, as prose is */
            if (letters && random() % 4) {
                k = random() % 14;
            } else {
                k = random() % (sizeof(pieces) / sizeof(pieces[0]));
            }

            memcpy(buf + off + len, pieces[k], strlen(pieces[k]));
            len += strlen(pieces[k]);

            if (random() % 100 == 0) {
                break;
            }
        }

        /* every end: the prose path's last word and the text's end */

        for (k = len; k + 12 > len && k > 0; k--) {
            check(buf + off, k);
        }

        check(buf + off + 1, len > 0 ? len - 1 : 0);
    }
}


static void
test_prose(void **state)
{
    size_t       n;
    u_char      *p;
    ngx_uint_t   i;
    const char  *words = "the quick brown fox jumps over the lazy dog while "
                         "the gateway counts every token of it ";

    n = 1 << 20;
    p = malloc(n);
    assert_non_null(p);

    for (i = 0; i < n; i++) {
        p[i] = words[i % strlen(words)];
    }

    check(p, n);
    check(p + 3, n - 7);

    /* 'pieces' as a real text has them: one per word, more for capitals */

    assert_int_equal(ngx_http_ai_estimate_text((u_char *) "Hello world", 11),
                     2);
    assert_int_equal(ngx_http_ai_estimate_text(
                         (u_char *) "the quick brown fox jumps", 25), 5);
    assert_int_equal(ngx_http_ai_estimate_text(
                         (u_char *) "theQuickBrownFox jumpsOver", 26), 6);
    assert_int_equal(ngx_http_ai_estimate_text(
                         (u_char *) "the quick brown fox  jumps", 26), 6);

    if (getenv("AI_JSON_BENCH")) {
        struct timespec  t0, t1, t2;
        int64_t          a, b;

        clock_gettime(CLOCK_MONOTONIC, &t0);
        a = ngx_http_ai_estimate_text(p, n);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        b = ref_text(p, n);
        clock_gettime(CLOCK_MONOTONIC, &t2);

        print_message("1 MB of prose: %lld pieces in %.3f ms, the loop a "
                      "byte at a time %lld in %.3f ms\n", (long long) a,
                      (t1.tv_sec - t0.tv_sec) * 1e3
                      + (t1.tv_nsec - t0.tv_nsec) / 1e6, (long long) b,
                      (t2.tv_sec - t1.tv_sec) * 1e3
                      + (t2.tv_nsec - t1.tv_nsec) / 1e6);
    }

    free(p);
}


/*
 * A history's texts whose hashes are known are read once, then looked up
 * by hash and length; one without a hash is always read
 */

static void
test_noted(void **state)
{
    int64_t                 n, m;
    uint64_t                h;
    ngx_http_ai_request_t   req;
    ngx_http_ai_message_t   msg[3];
    u_char                  one[] = "the first text of a conversation, "
                                    "noted once: 1234 5678";
    u_char                  two[] = "the second one";
    u_char                  three[] = "the last message";

    static u_char  key[16] = "sixteen byte key";

    ngx_http_ai_hash_key(key);

    ngx_memzero(&req, sizeof(ngx_http_ai_request_t));
    ngx_memzero(msg, sizeof(msg));

    req.endpoint = NGX_HTTP_AI_EP_CHAT;
    req.scope = 7;
    req.messages.elts = msg;
    req.messages.nelts = 3;

    msg[0].text.data = one;
    msg[0].text.len = sizeof(one) - 1;
    msg[1].text.data = two;
    msg[1].text.len = sizeof(two) - 1;
    msg[2].text.data = three;
    msg[2].text.len = sizeof(three) - 1;

    n = ngx_http_ai_estimate_tokens(&req);

    /* with the hashes: the same estimate, the texts noted */

    h = ngx_http_ai_message_hash(&req, &msg[0]);
    assert_true(h != 0);
    assert_true(msg[0].hash == h);
    assert_true(ngx_http_ai_message_hash(&req, &msg[0]) == h);
    (void) ngx_http_ai_message_hash(&req, &msg[1]);

    assert_int_equal(ngx_http_ai_estimate_tokens(&req), n);

    /* another text of that length under the first one's hash: looked up */

    ngx_memset(one, '!', sizeof(one) - 1);

    assert_int_equal(ngx_http_ai_estimate_tokens(&req), n);

    /* without its hash it is read */

    msg[0].hash = 0;
    m = ngx_http_ai_estimate_tokens(&req);
    assert_true(m != n);

    /* another consumer, another hash for the same text */

    h = msg[1].hash;
    msg[1].hash = 0;
    req.scope = 8;
    assert_true(ngx_http_ai_message_hash(&req, &msg[1]) != h);

    /*
     * the text "alice" of consumer "carol" and the text "carol" of
     * consumer "alice": two hashes (with one key for both, one)
     */

    msg[1].text.data = (u_char *) "alice";
    msg[1].text.len = 5;
    msg[1].hash = 0;
    req.scope = ngx_http_ai_hash_scope((u_char *) "carol", 5);
    h = ngx_http_ai_message_hash(&req, &msg[1]);

    msg[1].text.data = (u_char *) "carol";
    msg[1].hash = 0;
    req.scope = ngx_http_ai_hash_scope((u_char *) "alice", 5);
    assert_true(ngx_http_ai_message_hash(&req, &msg[1]) != h);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_prose),
        cmocka_unit_test(test_noted),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
