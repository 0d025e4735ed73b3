
/*
 * Copyright (C) AI Gateway authors
 *
 * The similarity index of ai_cache's semantic cache: fixed-dimension
 * float32 vectors, each with a group hash, a payload and an expiry time,
 * in ONE contiguous region the caller provides (a shared memory zone).
 *
 * Pure code: no allocation, no logging, no static state, no pointer
 * inside the region (offsets and slot numbers only), so the region may
 * be mapped at any address by any process.  The layout is
 * self-describing and versioned: after a reload the zone's memory is
 * reused through ngx_http_ai_vector_attach(), which checks the magic,
 * the version, the size and the parameters.
 *
 * Locking: nothing here locks.  The caller holds the zone's mutex
 * (ngx_shmtx_lock(&shpool->mutex)) around every call that takes an
 * index, searches included: a search reads lists that an insert in
 * another worker rewrites (an insert or a delete moves entries between
 * blocks).  Every call is bounded: an insert costs about 2 * nlist dot
 * products, a search nlist + the entries of the group in the nprobe
 * lists probed, or those of all entries when exact; see the .c.
 *
 * Similarity: cosine.  Vectors are normalized on insert (so cosine is a
 * dot product), queries need not be normalized.  A search returns the
 * top-1 entry of the same group, not expired, whose similarity is at
 * least the threshold.
 *
 * Exact scan up to exact_max live entries (default 4096), an inverted
 * file index (IVF, spherical k-means kept up online) above it: see the
 * comment at the top of ngx_http_ai_cache_vector.c for why IVF and not
 * HNSW, and docs/semantic-index.md for the measured recall and times.
 *
 * Eviction: FIFO.  When no slot is free, an insert evicts the oldest
 * entry (expired or not).  Searches do not change the index (no LRU
 * touch): a hit resolves to an exact-cache entry that has its own TTL,
 * and a read-only search never dirties another worker's cache lines.
 */


#ifndef _NGX_HTTP_AI_CACHE_VECTOR_H_INCLUDED_
#define _NGX_HTTP_AI_CACHE_VECTOR_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


#define NGX_HTTP_AI_VECTOR_DIM_MIN        1
#define NGX_HTTP_AI_VECTOR_DIM_MAX        8192

/* the defaults of the parameters left 0 */
#define NGX_HTTP_AI_VECTOR_EXACT_MAX      4096
#define NGX_HTTP_AI_VECTOR_NPROBE         16

#define NGX_HTTP_AI_VECTOR_NLIST_MAX      4096
#define NGX_HTTP_AI_VECTOR_NPROBE_MAX     64

/* the region's start must be aligned so */
#define NGX_HTTP_AI_VECTOR_ALIGN          64

/* ngx_http_ai_vector_search() flags */
#define NGX_HTTP_AI_VECTOR_EXACT          0x01  /* scan all, even above
                                                   exact_max */
#define NGX_HTTP_AI_VECTOR_APPROX         0x02  /* probe the lists, even
                                                   at or below exact_max
                                                   (measurements) */


typedef struct ngx_http_ai_vector_s  ngx_http_ai_vector_t;


typedef struct {
    ngx_uint_t                  dim;        /* required */
    ngx_uint_t                  capacity;   /* 0: as many as fit */
    ngx_uint_t                  exact_max;  /* 0: EXACT_MAX */
    ngx_uint_t                  nlist;      /* 0: about sqrt(capacity),
                                               16 .. NLIST_MAX */
    ngx_uint_t                  nprobe;     /* 0: NPROBE; <= NPROBE_MAX
                                               and <= nlist */
} ngx_http_ai_vector_params_t;


typedef struct {
    float                       similarity;
    uint64_t                    payload;
    ngx_uint_t                  slot;
    time_t                      expire;
    ngx_uint_t                  scanned;    /* dot products computed,
                                               centroids included */
} ngx_http_ai_vector_match_t;


typedef struct {
    ngx_uint_t                  dim;
    ngx_uint_t                  capacity;
    ngx_uint_t                  count;      /* live entries (the
                                               expired not yet swept
                                               included) */
    ngx_uint_t                  nlist;
    ngx_uint_t                  nprobe;
    ngx_uint_t                  exact_max;
    ngx_uint_t                  centroids;  /* lists seeded so far */
    size_t                      size;       /* bytes of the region used */
    size_t                      entry_size; /* bytes per entry: vector,
                                               slot, hash bucket, share
                                               of its block; size /
                                               capacity adds the fixed
                                               parts */
    uint64_t                    inserts;
    uint64_t                    evictions;
} ngx_http_ai_vector_stats_t;


/*
 * Bytes of a region for params->capacity entries (the params as given,
 * defaults applied), 0 if the params are invalid or capacity is 0.
 */
size_t ngx_http_ai_vector_size(ngx_http_ai_vector_params_t *params);

/*
 * Lays out an empty index over region[0 .. size): as many entries as fit
 * (or params->capacity, when set and it fits).  The region must be
 * aligned on NGX_HTTP_AI_VECTOR_ALIGN.  Returns the index (the region
 * itself) and sets *capacity, or NULL when the params are invalid, the
 * region is misaligned, or it is too small for 1 entry (or for
 * params->capacity): ngx_http_ai_vector_size() tells what is needed.
 */
ngx_http_ai_vector_t *ngx_http_ai_vector_init(void *region, size_t size,
    ngx_http_ai_vector_params_t *params, ngx_uint_t *capacity);

/*
 * The index already laid out in the region (a reload reusing the zone),
 * when its magic, version, size, dimension and params (the defaults
 * applied; capacity 0 accepts any) are those asked for; NULL otherwise,
 * and the caller calls ngx_http_ai_vector_init() (the entries are lost).
 */
ngx_http_ai_vector_t *ngx_http_ai_vector_attach(void *region, size_t size,
    ngx_http_ai_vector_params_t *params);

/*
 * Adds vec (dim floats, any norm but not zero nor NaN) with its group,
 * payload and absolute expiry time; an entry of the same payload is
 * replaced.  When the index is full, the oldest entry is evicted.
 * Returns NGX_OK and the slot in *slot (may be NULL), or NGX_ERROR for a
 * zero or non-finite vector.
 */
ngx_int_t ngx_http_ai_vector_insert(ngx_http_ai_vector_t *vi,
    const float *vec, uint64_t group, uint64_t payload, time_t expire,
    ngx_uint_t *slot);

/*
 * The entry of the group, with expire > now, most similar to vec, if its
 * similarity is >= threshold: NGX_OK and *match.  NGX_DECLINED when
 * there is none (match->scanned is still set), NGX_ERROR for a zero or
 * non-finite vec.  Read only.
 */
ngx_int_t ngx_http_ai_vector_search(ngx_http_ai_vector_t *vi,
    const float *vec, uint64_t group, time_t now, float threshold,
    ngx_uint_t flags, ngx_http_ai_vector_match_t *match);

/* removes the entry of the payload: NGX_OK, or NGX_DECLINED if none */
ngx_int_t ngx_http_ai_vector_delete(ngx_http_ai_vector_t *vi,
    uint64_t payload);

/*
 * Removes the expired entries (expire <= now) among the next max slots,
 * round-robin from where the last sweep stopped; returns how many.  A
 * timer may call it with max = a few thousand; expired entries never
 * match anyway.
 */
ngx_uint_t ngx_http_ai_vector_expire(ngx_http_ai_vector_t *vi, time_t now,
    ngx_uint_t max);

void ngx_http_ai_vector_stats(ngx_http_ai_vector_t *vi,
    ngx_http_ai_vector_stats_t *stats);


#endif /* _NGX_HTTP_AI_CACHE_VECTOR_H_INCLUDED_ */
