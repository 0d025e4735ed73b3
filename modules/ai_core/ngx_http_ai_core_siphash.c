
/*
 * Copyright (C) AI Gateway authors
 *
 * SipHash-2-4 (Aumasson and Bernstein, 2012), a keyed hash: the buckets
 * of the shared-memory store, and the worker's notes of texts that
 * clients send (ngx_http_ai_hash(), ngx_http_ai_message_hash()).  A
 * store's keys may be chosen by clients (a token limit's key is any
 * variable), and without a secret key whose keys share a bucket can be
 * found offline and chain that bucket without end, under the mutex of
 * every worker; with one they cannot.  Pure: unit tests link it
 * (test_siphash: the reference vectors).
 */


#include "ngx_http_ai_core_module.h"


#define ngx_http_ai_sip_rotl(x, b)                                            \
    (uint64_t) (((x) << (b)) | ((x) >> (64 - (b))))

#define ngx_http_ai_sip_round(v0, v1, v2, v3)                                 \
    v0 += v1; v1 = ngx_http_ai_sip_rotl(v1, 13); v1 ^= v0;                    \
    v0 = ngx_http_ai_sip_rotl(v0, 32);                                        \
    v2 += v3; v3 = ngx_http_ai_sip_rotl(v3, 16); v3 ^= v2;                    \
    v0 += v3; v3 = ngx_http_ai_sip_rotl(v3, 21); v3 ^= v0;                    \
    v2 += v1; v1 = ngx_http_ai_sip_rotl(v1, 17); v1 ^= v2;                    \
    v2 = ngx_http_ai_sip_rotl(v2, 32)


/* 8 bytes as a little-endian number, whatever the machine's order */

static ngx_inline uint64_t
ngx_http_ai_sip_le64(const u_char *p)
{
#if (NGX_HAVE_LITTLE_ENDIAN)
    uint64_t  w;

    ngx_memcpy(&w, p, sizeof(uint64_t));

    return w;
#else
    return (uint64_t) p[0] | (uint64_t) p[1] << 8 | (uint64_t) p[2] << 16
           | (uint64_t) p[3] << 24 | (uint64_t) p[4] << 32
           | (uint64_t) p[5] << 40 | (uint64_t) p[6] << 48
           | (uint64_t) p[7] << 56;
#endif
}


/* ngx_http_ai_hash()'s key: set at each configuration load */
static u_char  ngx_http_ai_key[16];

/* another, for consumers' names: a text and a name never hash alike */
static u_char  ngx_http_ai_scope_key[16];


void
ngx_http_ai_hash_key(const u_char key[16])
{
    ngx_uint_t  i;

    ngx_memcpy(ngx_http_ai_key, key, 16);

    for (i = 0; i < 16; i++) {
        ngx_http_ai_scope_key[i] = (u_char) ~key[i];
    }
}


/*
 * A request's scope (req->scope), its consumer's name hashed with the
 * other key: with one key, the text "a" of consumer "b" and the text "b"
 * of consumer "a" would mix to one hash
 */

uint64_t
ngx_http_ai_hash_scope(const u_char *data, size_t len)
{
    return ngx_http_ai_siphash(ngx_http_ai_scope_key, data, len);
}


uint64_t
ngx_http_ai_hash(const u_char *data, size_t len)
{
    return ngx_http_ai_siphash(ngx_http_ai_key, data, len);
}


uint64_t
ngx_http_ai_message_hash(ngx_http_ai_request_t *req, ngx_http_ai_message_t *m)
{
    /* (a hash of 0 is made again each time it is asked: it does no harm) */

    if (m->hash == 0) {
        m->hash = ngx_http_ai_siphash(ngx_http_ai_key, m->text.data,
                                      m->text.len)
                  ^ req->scope;
    }

    return m->hash;
}


uint64_t
ngx_http_ai_siphash(const u_char key[16], const u_char *data, size_t len)
{
    size_t    i, left;
    uint64_t  k0, k1, v0, v1, v2, v3, m, b;

    k0 = ngx_http_ai_sip_le64(key);
    k1 = ngx_http_ai_sip_le64(key + 8);

    v0 = k0 ^ 0x736f6d6570736575ULL;
    v1 = k1 ^ 0x646f72616e646f6dULL;
    v2 = k0 ^ 0x6c7967656e657261ULL;
    v3 = k1 ^ 0x7465646279746573ULL;

    for (i = 0; i + 8 <= len; i += 8) {
        m = ngx_http_ai_sip_le64(data + i);

        v3 ^= m;
        ngx_http_ai_sip_round(v0, v1, v2, v3);
        ngx_http_ai_sip_round(v0, v1, v2, v3);
        v0 ^= m;
    }

    /* the last 0-7 bytes, and the length's low byte on top */

    b = (uint64_t) len << 56;
    left = len - i;

    while (left) {
        left--;
        b |= (uint64_t) data[i + left] << (8 * left);
    }

    v3 ^= b;
    ngx_http_ai_sip_round(v0, v1, v2, v3);
    ngx_http_ai_sip_round(v0, v1, v2, v3);
    v0 ^= b;

    v2 ^= 0xff;
    ngx_http_ai_sip_round(v0, v1, v2, v3);
    ngx_http_ai_sip_round(v0, v1, v2, v3);
    ngx_http_ai_sip_round(v0, v1, v2, v3);
    ngx_http_ai_sip_round(v0, v1, v2, v3);

    return v0 ^ v1 ^ v2 ^ v3;
}
