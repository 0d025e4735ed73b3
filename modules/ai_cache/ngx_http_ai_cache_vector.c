
/*
 * Copyright (C) AI Gateway authors
 *
 * The similarity index of ai_cache's semantic cache.
 *
 * Layout of the region (every part at an offset aligned on 64 bytes,
 * recorded in the header; no pointer is stored anywhere):
 *
 *     header     ngx_http_ai_vector_t: magic, version, size, params,
 *                counters, the free, age and block lists' ends,
 *                cursors, the offsets of the parts below
 *     slots      capacity * ngx_http_ai_vector_slot_t (48 bytes): group,
 *                payload, expire, where the vector is (list, block,
 *                position), age links, payload hash chain
 *     buckets    capacity * uint32_t: heads of the payload hash chains
 *     lists      nlist * ngx_http_ai_vector_list_t: first block, count
 *     centroids  nlist * stride floats: the normalized centroids
 *     sums       nlist * stride floats: the sums of the lists' vectors
 *     blocks     nblocks * ngx_http_ai_vector_block_t (336 bytes): next
 *                block of the list, count, and for each of its
 *                NGX_HTTP_AI_VECTOR_BLOCK entries the group, the
 *                expiry and the slot
 *     vectors    nblocks * NGX_HTTP_AI_VECTOR_BLOCK * stride floats,
 *                normalized: the vectors of block b are at
 *                b * NGX_HTTP_AI_VECTOR_BLOCK * stride, one after
 *                another
 *
 * stride is dim rounded up to 16 floats (64 bytes), the padding zeroed.
 * nblocks is capacity / NGX_HTTP_AI_VECTOR_BLOCK + nlist, enough for
 * every list to hold one block not full.  Slot and block numbers are
 * uint32_t, NGX_HTTP_AI_VECTOR_NONE is "none".
 *
 * An IVF list is a chain of blocks of 16 entries whose vectors, groups
 * and expiry times are contiguous: a scan reads memory in order and the
 * hardware prefetcher keeps up (a first version chained single slots
 * spread over the region; its lookups were about 3 times as slow for as
 * many entries read).  Only the first block of a list may be not full:
 * an entry removed elsewhere is replaced by the last one of the first
 * block (its vector copied, its slot told).
 *
 * Why IVF and not HNSW.  Both were considered; IVF (an inverted file:
 * nlist cells, each a list of its entries, probed for the nprobe cells
 * whose centroids are nearest to the query) fits this use better:
 *
 *  - group filter: an entry only matches a query of the same group (the
 *    model, the system prompt and the conversation shape).  With IVF the
 *    filter costs nothing in recall: the lists probed are chosen by the
 *    vector alone, and every entry in them is looked at, so a group that
 *    holds 0.1% of the entries is found as well as one that holds all
 *    (and the group test comes before the dot product, so other groups'
 *    entries cost little).  A filtered HNSW search walks a graph most of
 *    whose nodes are of other groups: with a small group it stops before
 *    reaching the group's nodes (recall falls with the group's share),
 *    and one graph per group needs a group table and per-group memory
 *    in the zone;
 *  - deletions and eviction: a cache evicts and expires all the time.
 *    Removing an IVF entry is O(1) (one vector copied), and the index
 *    stays as good as before.  HNSW has no real deletion: deleted nodes
 *    stay as tombstones or their neighbours' links must be repaired, and
 *    a graph under constant churn degrades;
 *  - shared memory: IVF needs about 25 bytes per entry beyond the vector
 *    and its slot, fixed; HNSW needs 2M links on layer 0 (128 bytes with
 *    M = 16) plus upper layers of random height, which need a second
 *    allocator in the zone;
 *  - bounded work under the zone's mutex: an IVF insert costs about
 *    2 * nlist dot products whatever happens; an HNSW insert costs
 *    efConstruction searches plus neighbour pruning.
 *
 * HNSW wins on lookup time at equal recall for large indexes (fewer dot
 * products); at the sizes of a cache zone (10^4..10^5 entries) an IVF
 * lookup is tens to hundreds of microseconds, small next to the
 * embeddings request that precedes it.
 *
 * Training.  There is no k-means pass (it would hold the mutex for
 * seconds at 100k entries).  The centroids are kept up online, a
 * spherical k-means spread over the inserts:
 *
 *  - an insert goes to the list of the nearest centroid; when that one's
 *    similarity is below NGX_HTTP_AI_VECTOR_SEED and a list is empty,
 *    the vector seeds that list instead (the first inserts seed the
 *    lists; a list emptied by eviction is reused for a new region);
 *  - each list keeps the sum of its vectors; its centroid is the
 *    normalized sum, updated on every insert and removal (the M step);
 *  - each insert also moves one older entry, round-robin, to the list of
 *    its nearest centroid if it changed (the E step, one entry at a
 *    time).
 *
 * Search: up to exact_max live entries, an exact scan of all blocks in
 * use; above it, the query is compared to the centroids of the
 * non-empty lists, and the blocks of the nprobe nearest lists are
 * scanned.  The dot product is computed for the group's entries not
 * expired only.  It is written with 4 independent vector sums (gcc and
 * clang vector extension; elsewhere 8 scalar sums that gcc -O2
 * vectorizes), so its result differs from a sequential sum in the last
 * bits only.
 *
 * Limits: the recall of the approximate search is below 1 (measured in
 * docs/semantic-index.md, with the parameters to raise it); if the early
 * inserts all come from one region of the space, the lists there are
 * long until eviction empties some (then reseeded), which costs lookup
 * time, not recall.  The float sums drift after many millions of
 * additions and subtractions; they only steer entries to lists, never
 * decide a match.  A process that dies holding the mutex in the middle
 * of an insert leaves the index inconsistent, as with any structure in
 * a zone; the next reload's attach keeps it, a restart (or a change of
 * the parameters) lays it out anew.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_ai_cache_vector.h"


#define NGX_HTTP_AI_VECTOR_MAGIC    0x5645434149474e58ULL  /* "XNGIACEV" */
#define NGX_HTTP_AI_VECTOR_VERSION  2

#define NGX_HTTP_AI_VECTOR_NONE     0xffffffff

/* entries per block */
#define NGX_HTTP_AI_VECTOR_BLOCK    8

/* a vector less similar than this to every centroid seeds an empty list */
#define NGX_HTTP_AI_VECTOR_SEED     0.9f

/* the slots looked at per insert to find one to reassign */
#define NGX_HTTP_AI_VECTOR_REASSIGN_LOOK  8

#define ngx_http_ai_vector_align(n)                                          \
    (((n) + NGX_HTTP_AI_VECTOR_ALIGN - 1)                                    \
     & ~((uint64_t) NGX_HTTP_AI_VECTOR_ALIGN - 1))


typedef struct {
    uint64_t                    group;
    uint64_t                    payload;
    int64_t                     expire;
    uint32_t                    list;      /* NONE: the slot is free */
    uint32_t                    block;
    uint32_t                    pos;
    uint32_t                    aprev;     /* age list; free list: anext */
    uint32_t                    anext;
    uint32_t                    hnext;     /* payload hash chain */
} ngx_http_ai_vector_slot_t;


typedef struct {
    uint32_t                    next;      /* of the list; free list */
    uint32_t                    count;     /* 0: the block is free */
    uint64_t                    group[NGX_HTTP_AI_VECTOR_BLOCK];
    int64_t                     expire[NGX_HTTP_AI_VECTOR_BLOCK];
    uint32_t                    slot[NGX_HTTP_AI_VECTOR_BLOCK];
} ngx_http_ai_vector_block_t;


typedef struct {
    uint32_t                    head;      /* first block */
    uint32_t                    count;
} ngx_http_ai_vector_list_t;


struct ngx_http_ai_vector_s {
    uint64_t                    magic;
    uint32_t                    version;
    uint32_t                    header_size;
    uint64_t                    size;       /* of the region */
    uint64_t                    used;       /* bytes laid out */

    uint32_t                    dim;
    uint32_t                    stride;
    uint32_t                    capacity;
    uint32_t                    nlist;
    uint32_t                    nprobe;
    uint32_t                    exact_max;
    uint32_t                    nblocks;

    uint32_t                    count;
    uint32_t                    hwm;        /* slots ever used */
    uint32_t                    free;       /* free slots */
    uint32_t                    free_block;
    uint32_t                    oldest;     /* age list */
    uint32_t                    newest;
    uint32_t                    reassign;   /* cursors */
    uint32_t                    sweep;
    uint32_t                    lists_used;

    uint64_t                    inserts;
    uint64_t                    evictions;

    uint64_t                    off_slots;
    uint64_t                    off_buckets;
    uint64_t                    off_lists;
    uint64_t                    off_centroids;
    uint64_t                    off_sums;
    uint64_t                    off_blocks;
    uint64_t                    off_vectors;
};


typedef struct {
    ngx_uint_t                  dim;
    ngx_uint_t                  stride;
    ngx_uint_t                  capacity;
    ngx_uint_t                  nlist;
    ngx_uint_t                  nprobe;
    ngx_uint_t                  exact_max;
    ngx_uint_t                  nblocks;
} ngx_http_ai_vector_conf_t;


static ngx_int_t ngx_http_ai_vector_conf(ngx_http_ai_vector_params_t *params,
    ngx_uint_t capacity, ngx_http_ai_vector_conf_t *conf);
static uint64_t ngx_http_ai_vector_layout(ngx_http_ai_vector_conf_t *conf,
    ngx_http_ai_vector_t *vi);
static float ngx_http_ai_vector_dot(const float *a, const float *b,
    ngx_uint_t n);
static float ngx_http_ai_vector_norm(const float *v, ngx_uint_t n);
static double ngx_http_ai_vector_sqrt(double x);
static ngx_uint_t ngx_http_ai_vector_nearest(ngx_http_ai_vector_t *vi,
    const float *v, float *dot);
static void ngx_http_ai_vector_list_add(ngx_http_ai_vector_t *vi,
    uint32_t s, uint32_t l, const float *vec, float scale);
static void ngx_http_ai_vector_list_remove_at(ngx_http_ai_vector_t *vi,
    uint32_t l, uint32_t b, uint32_t pos);
static void ngx_http_ai_vector_list_remove(ngx_http_ai_vector_t *vi,
    uint32_t s);
static void ngx_http_ai_vector_centroid(ngx_http_ai_vector_t *vi,
    uint32_t l);
static void ngx_http_ai_vector_remove(ngx_http_ai_vector_t *vi, uint32_t s);
static void ngx_http_ai_vector_reassign(ngx_http_ai_vector_t *vi);
static uint32_t ngx_http_ai_vector_lookup(ngx_http_ai_vector_t *vi,
    uint64_t payload);
static void ngx_http_ai_vector_scan(ngx_http_ai_vector_t *vi,
    const float *vec, uint64_t group, time_t now, uint32_t b,
    float *best, uint32_t *found);


#define ngx_http_ai_vector_slots(vi)                                         \
    ((ngx_http_ai_vector_slot_t *) ((u_char *) (vi) + (vi)->off_slots))
#define ngx_http_ai_vector_buckets(vi)                                       \
    ((uint32_t *) ((u_char *) (vi) + (vi)->off_buckets))
#define ngx_http_ai_vector_lists(vi)                                         \
    ((ngx_http_ai_vector_list_t *) ((u_char *) (vi) + (vi)->off_lists))
#define ngx_http_ai_vector_blocks(vi)                                        \
    ((ngx_http_ai_vector_block_t *) ((u_char *) (vi) + (vi)->off_blocks))
#define ngx_http_ai_vector_centroid_at(vi, l)                                \
    ((float *) ((u_char *) (vi) + (vi)->off_centroids)                       \
     + (size_t) (l) * (vi)->stride)
#define ngx_http_ai_vector_sum_at(vi, l)                                     \
    ((float *) ((u_char *) (vi) + (vi)->off_sums)                            \
     + (size_t) (l) * (vi)->stride)
#define ngx_http_ai_vector_at(vi, b, pos)                                    \
    ((float *) ((u_char *) (vi) + (vi)->off_vectors)                         \
     + ((size_t) (b) * NGX_HTTP_AI_VECTOR_BLOCK + (pos)) * (vi)->stride)
#define ngx_http_ai_vector_of(vi, slot)                                      \
    ngx_http_ai_vector_at(vi, (slot)->block, (slot)->pos)

#define ngx_http_ai_vector_bucket(vi, payload)                               \
    ((ngx_uint_t) (((payload) * 0x9e3779b97f4a7c15ULL) >> 17)                \
     % (vi)->capacity)


static ngx_int_t
ngx_http_ai_vector_conf(ngx_http_ai_vector_params_t *params,
    ngx_uint_t capacity, ngx_http_ai_vector_conf_t *conf)
{
    ngx_uint_t  n;

    if (params->dim < NGX_HTTP_AI_VECTOR_DIM_MIN
        || params->dim > NGX_HTTP_AI_VECTOR_DIM_MAX
        || capacity == 0
        || capacity >= NGX_HTTP_AI_VECTOR_NONE
        || params->nlist > NGX_HTTP_AI_VECTOR_NLIST_MAX
        || params->nprobe > NGX_HTTP_AI_VECTOR_NPROBE_MAX
        || params->exact_max >= NGX_HTTP_AI_VECTOR_NONE)
    {
        return NGX_ERROR;
    }

    conf->dim = params->dim;
    conf->stride = (params->dim + 15) & ~(ngx_uint_t) 15;
    conf->capacity = capacity;

    conf->exact_max = params->exact_max ? params->exact_max
                                        : NGX_HTTP_AI_VECTOR_EXACT_MAX;

    if (params->nlist) {
        conf->nlist = params->nlist;

    } else {
        /* about sqrt(capacity) */

        n = 1;
        while (n * n < capacity) {
            n++;
        }

        conf->nlist = ngx_max(n, 16);
        conf->nlist = ngx_min(conf->nlist, NGX_HTTP_AI_VECTOR_NLIST_MAX);
    }

    conf->nprobe = params->nprobe ? params->nprobe
                                  : NGX_HTTP_AI_VECTOR_NPROBE;
    conf->nprobe = ngx_min(conf->nprobe, conf->nlist);

    conf->nblocks = (capacity + NGX_HTTP_AI_VECTOR_BLOCK - 1)
                    / NGX_HTTP_AI_VECTOR_BLOCK + conf->nlist;

    return NGX_OK;
}


/* the region's size for conf; sets the offsets in vi unless NULL */

static uint64_t
ngx_http_ai_vector_layout(ngx_http_ai_vector_conf_t *conf,
    ngx_http_ai_vector_t *vi)
{
    uint64_t  off, slots, buckets, lists, centroids, sums, blocks, vectors;

    off = ngx_http_ai_vector_align(sizeof(ngx_http_ai_vector_t));

    slots = off;
    off = ngx_http_ai_vector_align(off + (uint64_t) conf->capacity
                                         * sizeof(ngx_http_ai_vector_slot_t));
    buckets = off;
    off = ngx_http_ai_vector_align(off + (uint64_t) conf->capacity
                                         * sizeof(uint32_t));
    lists = off;
    off = ngx_http_ai_vector_align(off + (uint64_t) conf->nlist
                                         * sizeof(ngx_http_ai_vector_list_t));
    centroids = off;
    off += (uint64_t) conf->nlist * conf->stride * sizeof(float);
    sums = off;
    off += (uint64_t) conf->nlist * conf->stride * sizeof(float);
    blocks = off;
    off = ngx_http_ai_vector_align(off + (uint64_t) conf->nblocks
                                         * sizeof(ngx_http_ai_vector_block_t));
    vectors = off;
    off += (uint64_t) conf->nblocks * NGX_HTTP_AI_VECTOR_BLOCK
           * conf->stride * sizeof(float);

    if (vi) {
        vi->off_slots = slots;
        vi->off_buckets = buckets;
        vi->off_lists = lists;
        vi->off_centroids = centroids;
        vi->off_sums = sums;
        vi->off_blocks = blocks;
        vi->off_vectors = vectors;
        vi->used = off;
    }

    return off;
}


size_t
ngx_http_ai_vector_size(ngx_http_ai_vector_params_t *params)
{
    uint64_t                   size;
    ngx_http_ai_vector_conf_t  conf;

    if (ngx_http_ai_vector_conf(params, params->capacity, &conf) != NGX_OK) {
        return 0;
    }

    size = ngx_http_ai_vector_layout(&conf, NULL);

    if (size > (uint64_t) NGX_MAX_SIZE_T_VALUE) {
        return 0;
    }

    return (size_t) size;
}


ngx_http_ai_vector_t *
ngx_http_ai_vector_init(void *region, size_t size,
    ngx_http_ai_vector_params_t *params, ngx_uint_t *capacity)
{
    uint32_t                     i;
    ngx_uint_t                   lo, hi, mid, per;
    ngx_http_ai_vector_t        *vi;
    ngx_http_ai_vector_conf_t    conf;
    ngx_http_ai_vector_list_t   *lists;
    ngx_http_ai_vector_block_t  *blocks;

    if (region == NULL
        || ((uintptr_t) region & (NGX_HTTP_AI_VECTOR_ALIGN - 1)))
    {
        return NULL;
    }

    if (ngx_http_ai_vector_conf(params, 1, &conf) != NGX_OK) {
        return NULL;
    }

    if (params->capacity) {
        if (ngx_http_ai_vector_conf(params, params->capacity, &conf)
            != NGX_OK
            || ngx_http_ai_vector_layout(&conf, NULL) > size)
        {
            return NULL;
        }

    } else {
        /* the largest capacity that fits: a binary search */

        per = sizeof(ngx_http_ai_vector_slot_t) + sizeof(uint32_t)
              + conf.stride * sizeof(float);

        lo = 0;
        hi = size / per + 1;
        hi = ngx_min(hi, NGX_HTTP_AI_VECTOR_NONE - 1);

        while (lo < hi) {
            mid = lo + (hi - lo + 1) / 2;

            if (ngx_http_ai_vector_conf(params, mid, &conf) == NGX_OK
                && ngx_http_ai_vector_layout(&conf, NULL) <= size)
            {
                lo = mid;

            } else {
                hi = mid - 1;
            }
        }

        if (lo == 0
            || ngx_http_ai_vector_conf(params, lo, &conf) != NGX_OK)
        {
            return NULL;
        }
    }

    vi = region;

    ngx_memzero(vi, sizeof(ngx_http_ai_vector_t));

    vi->header_size = sizeof(ngx_http_ai_vector_t);
    vi->size = size;
    vi->dim = (uint32_t) conf.dim;
    vi->stride = (uint32_t) conf.stride;
    vi->capacity = (uint32_t) conf.capacity;
    vi->nlist = (uint32_t) conf.nlist;
    vi->nprobe = (uint32_t) conf.nprobe;
    vi->exact_max = (uint32_t) conf.exact_max;
    vi->nblocks = (uint32_t) conf.nblocks;

    vi->free = NGX_HTTP_AI_VECTOR_NONE;
    vi->oldest = NGX_HTTP_AI_VECTOR_NONE;
    vi->newest = NGX_HTTP_AI_VECTOR_NONE;

    (void) ngx_http_ai_vector_layout(&conf, vi);

    /* the slots are set when first used (below hwm) */

    ngx_memset(ngx_http_ai_vector_buckets(vi), 0xff,
               conf.capacity * sizeof(uint32_t));

    lists = ngx_http_ai_vector_lists(vi);

    for (i = 0; i < conf.nlist; i++) {
        lists[i].head = NGX_HTTP_AI_VECTOR_NONE;
        lists[i].count = 0;
    }

    ngx_memzero(ngx_http_ai_vector_centroid_at(vi, 0),
                2 * conf.nlist * conf.stride * sizeof(float));

    blocks = ngx_http_ai_vector_blocks(vi);

    for (i = 0; i < conf.nblocks; i++) {
        blocks[i].next = (i + 1 < conf.nblocks) ? i + 1
                                                : NGX_HTTP_AI_VECTOR_NONE;
        blocks[i].count = 0;
    }

    vi->free_block = 0;

    /* the last: a region is an index only once laid out */

    vi->version = NGX_HTTP_AI_VECTOR_VERSION;
    vi->magic = NGX_HTTP_AI_VECTOR_MAGIC;

    if (capacity) {
        *capacity = conf.capacity;
    }

    return vi;
}


ngx_http_ai_vector_t *
ngx_http_ai_vector_attach(void *region, size_t size,
    ngx_http_ai_vector_params_t *params)
{
    ngx_http_ai_vector_t       *vi;
    ngx_http_ai_vector_conf_t   conf;

    vi = region;

    if (vi == NULL
        || ((uintptr_t) region & (NGX_HTTP_AI_VECTOR_ALIGN - 1))
        || size < sizeof(ngx_http_ai_vector_t)
        || vi->magic != NGX_HTTP_AI_VECTOR_MAGIC
        || vi->version != NGX_HTTP_AI_VECTOR_VERSION
        || vi->header_size != sizeof(ngx_http_ai_vector_t)
        || vi->size != size
        || vi->used > size)
    {
        return NULL;
    }

    if (params->capacity && params->capacity != vi->capacity) {
        return NULL;
    }

    if (ngx_http_ai_vector_conf(params, vi->capacity, &conf) != NGX_OK
        || conf.dim != vi->dim
        || conf.nlist != vi->nlist
        || conf.nblocks != vi->nblocks
        || ngx_http_ai_vector_layout(&conf, NULL) != vi->used)
    {
        return NULL;
    }

    /* the search parameters may change without a new layout */

    vi->nprobe = (uint32_t) conf.nprobe;
    vi->exact_max = (uint32_t) conf.exact_max;

    return vi;
}


#if (__GNUC__ >= 4 || __clang__)

/*
 * gcc -O2 vectorizes the 8 sums of the portable loop below into 2 SSE
 * registers, whose adds then wait on each other; 4 registers written
 * with the vector extension of gcc and clang are 1.7 times as fast on
 * vectors in L2, 1.2 times in L3 (the scan is memory bound there)
 */

typedef float  ngx_http_ai_vector_v4_t __attribute__((vector_size(16)));


static float
ngx_http_ai_vector_dot(const float *a, const float *b, ngx_uint_t n)
{
    float                    s;
    ngx_uint_t               i;
    ngx_http_ai_vector_v4_t  s0, s1, s2, s3, x, y;

    s0 = s1 = s2 = s3 = (ngx_http_ai_vector_v4_t) { 0.0f, 0.0f, 0.0f, 0.0f };

    for (i = 0; i + 16 <= n; i += 16) {
        ngx_memcpy(&x, &a[i], 16);
        ngx_memcpy(&y, &b[i], 16);
        s0 += x * y;
        ngx_memcpy(&x, &a[i + 4], 16);
        ngx_memcpy(&y, &b[i + 4], 16);
        s1 += x * y;
        ngx_memcpy(&x, &a[i + 8], 16);
        ngx_memcpy(&y, &b[i + 8], 16);
        s2 += x * y;
        ngx_memcpy(&x, &a[i + 12], 16);
        ngx_memcpy(&y, &b[i + 12], 16);
        s3 += x * y;
    }

    s0 = (s0 + s1) + (s2 + s3);
    s = (s0[0] + s0[1]) + (s0[2] + s0[3]);

    for ( /* void */ ; i < n; i++) {
        s += a[i] * b[i];
    }

    return s;
}

#else

static float
ngx_http_ai_vector_dot(const float *a, const float *b, ngx_uint_t n)
{
    float       s0, s1, s2, s3, s4, s5, s6, s7;
    ngx_uint_t  i;

    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0f;

    for (i = 0; i + 8 <= n; i += 8) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
        s4 += a[i + 4] * b[i + 4];
        s5 += a[i + 5] * b[i + 5];
        s6 += a[i + 6] * b[i + 6];
        s7 += a[i + 7] * b[i + 7];
    }

    for ( /* void */ ; i < n; i++) {
        s0 += a[i] * b[i];
    }

    return ((s0 + s4) + (s1 + s5)) + ((s2 + s6) + (s3 + s7));
}

#endif


/* the norm, or 0 for a zero, infinite or NaN vector (or one so large) */

static float
ngx_http_ai_vector_norm(const float *v, ngx_uint_t n)
{
    double      s;
    ngx_uint_t  i;

    s = 0.0;

    for (i = 0; i < n; i++) {
        s += (double) v[i] * v[i];
    }

    if (!(s > 1e-30) || s > 1e30) {
        return 0.0f;
    }

    return (float) ngx_http_ai_vector_sqrt(s);
}


/*
 * sqrt() without libm (a dynamic module cannot count on nginx linking
 * it): a first guess from the exponent halved, then Newton; x is
 * within 1e-30 .. 1e30
 */

static double
ngx_http_ai_vector_sqrt(double x)
{
    double      r;
    uint64_t    u;
    ngx_uint_t  i;

    ngx_memcpy(&u, &x, sizeof(double));
    u = (u >> 1) + (0x3ff0000000000000ULL >> 1);
    ngx_memcpy(&r, &u, sizeof(double));

    for (i = 0; i < 6; i++) {
        r = 0.5 * (r + x / r);
    }

    return r;
}


/* the list whose centroid has the largest dot product with v (any norm) */

static ngx_uint_t
ngx_http_ai_vector_nearest(ngx_http_ai_vector_t *vi, const float *v,
    float *dot)
{
    float                       d, best;
    uint32_t                    l, found;
    ngx_http_ai_vector_list_t  *lists;

    lists = ngx_http_ai_vector_lists(vi);

    best = 0.0f;
    found = NGX_HTTP_AI_VECTOR_NONE;

    for (l = 0; l < vi->nlist; l++) {
        if (lists[l].count == 0) {
            continue;
        }

        d = ngx_http_ai_vector_dot(v, ngx_http_ai_vector_centroid_at(vi, l),
                                   vi->dim);

        if (found == NGX_HTTP_AI_VECTOR_NONE || d > best) {
            best = d;
            found = l;
        }
    }

    *dot = best;

    return found;
}


/* stores vec * scale for slot s at the end of list l */

static void
ngx_http_ai_vector_list_add(ngx_http_ai_vector_t *vi, uint32_t s,
    uint32_t l, const float *vec, float scale)
{
    float                       *sum, *v;
    uint32_t                     i, b, pos;
    ngx_http_ai_vector_slot_t   *slot;
    ngx_http_ai_vector_list_t   *list;
    ngx_http_ai_vector_block_t  *blocks;

    slot = &ngx_http_ai_vector_slots(vi)[s];
    list = &ngx_http_ai_vector_lists(vi)[l];
    blocks = ngx_http_ai_vector_blocks(vi);

    b = list->head;

    if (b == NGX_HTTP_AI_VECTOR_NONE
        || blocks[b].count == NGX_HTTP_AI_VECTOR_BLOCK)
    {
        /*
         * a free block is there: the lists hold count + 1 entries at
         * most (a reassign adds before it removes), in nblocks - nlist
         * full blocks and one not full per list
         */

        b = vi->free_block;
        vi->free_block = blocks[b].next;

        blocks[b].next = list->head;
        blocks[b].count = 0;
        list->head = b;
    }

    pos = blocks[b].count++;

    blocks[b].group[pos] = slot->group;
    blocks[b].expire[pos] = slot->expire;
    blocks[b].slot[pos] = s;

    slot->list = l;
    slot->block = b;
    slot->pos = pos;

    v = ngx_http_ai_vector_at(vi, b, pos);

    for (i = 0; i < vi->dim; i++) {
        v[i] = vec[i] * scale;
    }

    for ( /* void */ ; i < vi->stride; i++) {
        v[i] = 0.0f;
    }

    if (list->count++ == 0) {
        vi->lists_used++;
    }

    sum = ngx_http_ai_vector_sum_at(vi, l);

    for (i = 0; i < vi->dim; i++) {
        sum[i] += v[i];
    }

    ngx_http_ai_vector_centroid(vi, l);
}


/*
 * removes the entry at block b, position pos of list l: the last entry
 * of the list's first block takes its place, so that only the first
 * block is not full
 */

static void
ngx_http_ai_vector_list_remove_at(ngx_http_ai_vector_t *vi, uint32_t l,
    uint32_t b, uint32_t pos)
{
    float                       *sum, *v;
    uint32_t                     i, h, last, m;
    ngx_http_ai_vector_slot_t   *slots;
    ngx_http_ai_vector_list_t   *list;
    ngx_http_ai_vector_block_t  *blocks;

    slots = ngx_http_ai_vector_slots(vi);
    list = &ngx_http_ai_vector_lists(vi)[l];
    blocks = ngx_http_ai_vector_blocks(vi);

    v = ngx_http_ai_vector_at(vi, b, pos);
    sum = ngx_http_ai_vector_sum_at(vi, l);

    for (i = 0; i < vi->dim; i++) {
        sum[i] -= v[i];
    }

    h = list->head;
    last = blocks[h].count - 1;

    if (h != b || last != pos) {
        m = blocks[h].slot[last];

        ngx_memcpy(v, ngx_http_ai_vector_at(vi, h, last),
                   vi->stride * sizeof(float));

        blocks[b].group[pos] = blocks[h].group[last];
        blocks[b].expire[pos] = blocks[h].expire[last];
        blocks[b].slot[pos] = m;

        slots[m].block = b;
        slots[m].pos = pos;
    }

    if (--blocks[h].count == 0) {
        list->head = blocks[h].next;
        blocks[h].next = vi->free_block;
        vi->free_block = h;
    }

    if (--list->count == 0) {
        vi->lists_used--;

        /* exact zero: no drift carried over to the next seed */
        ngx_memzero(sum, vi->dim * sizeof(float));
        return;
    }

    ngx_http_ai_vector_centroid(vi, l);
}


static void
ngx_http_ai_vector_list_remove(ngx_http_ai_vector_t *vi, uint32_t s)
{
    ngx_http_ai_vector_slot_t  *slot;

    slot = &ngx_http_ai_vector_slots(vi)[s];

    ngx_http_ai_vector_list_remove_at(vi, slot->list, slot->block,
                                      slot->pos);

    slot->list = NGX_HTTP_AI_VECTOR_NONE;
}


static void
ngx_http_ai_vector_centroid(ngx_http_ai_vector_t *vi, uint32_t l)
{
    float     *c, *sum, norm, inv;
    uint32_t   i;

    sum = ngx_http_ai_vector_sum_at(vi, l);

    norm = ngx_http_ai_vector_norm(sum, vi->dim);
    if (norm < 1e-6f) {
        /* opposite vectors cancelled out: keep the centroid */
        return;
    }

    c = ngx_http_ai_vector_centroid_at(vi, l);
    inv = 1.0f / norm;

    for (i = 0; i < vi->dim; i++) {
        c[i] = sum[i] * inv;
    }
}


static uint32_t
ngx_http_ai_vector_lookup(ngx_http_ai_vector_t *vi, uint64_t payload)
{
    uint32_t                    s;
    ngx_http_ai_vector_slot_t  *slots;

    slots = ngx_http_ai_vector_slots(vi);

    s = ngx_http_ai_vector_buckets(vi)[ngx_http_ai_vector_bucket(vi,
                                                                 payload)];

    while (s != NGX_HTTP_AI_VECTOR_NONE && slots[s].payload != payload) {
        s = slots[s].hnext;
    }

    return s;
}


static void
ngx_http_ai_vector_remove(ngx_http_ai_vector_t *vi, uint32_t s)
{
    uint32_t                   *p;
    ngx_http_ai_vector_slot_t  *slots, *slot;

    slots = ngx_http_ai_vector_slots(vi);
    slot = &slots[s];

    ngx_http_ai_vector_list_remove(vi, s);

    /* the age list */

    if (slot->aprev != NGX_HTTP_AI_VECTOR_NONE) {
        slots[slot->aprev].anext = slot->anext;

    } else {
        vi->oldest = slot->anext;
    }

    if (slot->anext != NGX_HTTP_AI_VECTOR_NONE) {
        slots[slot->anext].aprev = slot->aprev;

    } else {
        vi->newest = slot->aprev;
    }

    /* the hash chain */

    p = &ngx_http_ai_vector_buckets(vi)[ngx_http_ai_vector_bucket(vi,
                                                            slot->payload)];

    while (*p != s) {
        p = &slots[*p].hnext;
    }

    *p = slot->hnext;

    slot->anext = vi->free;
    vi->free = s;
    vi->count--;
}


/* the E step of the online k-means: one entry to its nearest list */

static void
ngx_http_ai_vector_reassign(ngx_http_ai_vector_t *vi)
{
    float                       dot;
    uint32_t                    s, l, ol, ob, op;
    ngx_uint_t                  n;
    ngx_http_ai_vector_slot_t  *slots;

    if (vi->lists_used < 2) {
        return;
    }

    slots = ngx_http_ai_vector_slots(vi);

    for (n = 0; n < NGX_HTTP_AI_VECTOR_REASSIGN_LOOK; n++) {
        s = vi->reassign++;

        if (vi->reassign >= vi->hwm) {
            vi->reassign = 0;
        }

        if (s >= vi->hwm || slots[s].list == NGX_HTTP_AI_VECTOR_NONE) {
            continue;
        }

        ol = slots[s].list;
        ob = slots[s].block;
        op = slots[s].pos;

        l = (uint32_t) ngx_http_ai_vector_nearest(vi,
                                        ngx_http_ai_vector_at(vi, ob, op),
                                        &dot);

        if (l != ol && l != NGX_HTTP_AI_VECTOR_NONE) {
            /* copied to the new list first, then removed from the old */

            ngx_http_ai_vector_list_add(vi, s, l,
                                        ngx_http_ai_vector_at(vi, ob, op),
                                        1.0f);
            ngx_http_ai_vector_list_remove_at(vi, ol, ob, op);
        }

        return;
    }
}


ngx_int_t
ngx_http_ai_vector_insert(ngx_http_ai_vector_t *vi, const float *vec,
    uint64_t group, uint64_t payload, time_t expire, ngx_uint_t *slot)
{
    float                      norm, inv, dot;
    uint32_t                   s, l, *bucket;
    ngx_http_ai_vector_slot_t  *slots;
    ngx_http_ai_vector_list_t  *lists;

    norm = ngx_http_ai_vector_norm(vec, vi->dim);
    if (norm == 0.0f) {
        return NGX_ERROR;
    }

    inv = 1.0f / norm;

    slots = ngx_http_ai_vector_slots(vi);

    s = ngx_http_ai_vector_lookup(vi, payload);
    if (s != NGX_HTTP_AI_VECTOR_NONE) {
        ngx_http_ai_vector_remove(vi, s);
    }

    /* a free slot, a new one, or the oldest entry's */

    if (vi->free != NGX_HTTP_AI_VECTOR_NONE) {
        s = vi->free;
        vi->free = slots[s].anext;

    } else if (vi->hwm < vi->capacity) {
        s = vi->hwm++;

    } else {
        s = vi->oldest;
        ngx_http_ai_vector_remove(vi, s);
        vi->evictions++;

        /* the slot just freed */
        vi->free = slots[s].anext;
    }

    slots[s].group = group;
    slots[s].payload = payload;
    slots[s].expire = (int64_t) expire;

    /* the age list: the newest at the tail */

    slots[s].anext = NGX_HTTP_AI_VECTOR_NONE;
    slots[s].aprev = vi->newest;

    if (vi->newest != NGX_HTTP_AI_VECTOR_NONE) {
        slots[vi->newest].anext = s;

    } else {
        vi->oldest = s;
    }

    vi->newest = s;

    /* the hash chain */

    bucket = &ngx_http_ai_vector_buckets(vi)[ngx_http_ai_vector_bucket(vi,
                                                                   payload)];
    slots[s].hnext = *bucket;
    *bucket = s;

    /* the list: the nearest centroid's, or an empty one seeded */

    l = (uint32_t) ngx_http_ai_vector_nearest(vi, vec, &dot);

    if (l == NGX_HTTP_AI_VECTOR_NONE
        || (dot * inv < NGX_HTTP_AI_VECTOR_SEED
            && vi->lists_used < vi->nlist))
    {
        lists = ngx_http_ai_vector_lists(vi);

        for (l = 0; lists[l].count; l++) { /* void */ }
    }

    ngx_http_ai_vector_list_add(vi, s, l, vec, inv);

    vi->count++;
    vi->inserts++;

    ngx_http_ai_vector_reassign(vi);

    if (slot) {
        *slot = s;
    }

    return NGX_OK;
}


/* the group's entries of block b not expired: contiguous vectors */

static ngx_inline void
ngx_http_ai_vector_scan(ngx_http_ai_vector_t *vi, const float *vec,
    uint64_t group, time_t now, uint32_t b, float *best, uint32_t *found)
{
    float                        d;
    uint32_t                     pos;
    ngx_http_ai_vector_block_t  *blk;

    blk = &ngx_http_ai_vector_blocks(vi)[b];

    for (pos = 0; pos < blk->count; pos++) {
        if (blk->group[pos] != group || blk->expire[pos] <= (int64_t) now) {
            continue;
        }

        d = ngx_http_ai_vector_dot(vec, ngx_http_ai_vector_at(vi, b, pos),
                                   vi->dim);

        if (d > *best) {
            *best = d;
            *found = blk->slot[pos];
        }
    }
}


ngx_int_t
ngx_http_ai_vector_search(ngx_http_ai_vector_t *vi, const float *vec,
    uint64_t group, time_t now, float threshold, ngx_uint_t flags,
    ngx_http_ai_vector_match_t *match)
{
    float                        norm, best, d;
    float                        top[NGX_HTTP_AI_VECTOR_NPROBE_MAX];
    uint32_t                     b, l, found, ntop, j;
    uint32_t                     tops[NGX_HTTP_AI_VECTOR_NPROBE_MAX];
    ngx_uint_t                   scanned;
    ngx_http_ai_vector_slot_t   *slots;
    ngx_http_ai_vector_list_t   *lists;
    ngx_http_ai_vector_block_t  *blocks;

    match->scanned = 0;

    norm = ngx_http_ai_vector_norm(vec, vi->dim);
    if (norm == 0.0f) {
        return NGX_ERROR;
    }

    slots = ngx_http_ai_vector_slots(vi);
    lists = ngx_http_ai_vector_lists(vi);
    blocks = ngx_http_ai_vector_blocks(vi);

    best = -2.0f * norm;
    found = NGX_HTTP_AI_VECTOR_NONE;
    scanned = 0;

    if ((flags & NGX_HTTP_AI_VECTOR_EXACT)
        || (vi->count <= vi->exact_max
            && !(flags & NGX_HTTP_AI_VECTOR_APPROX)))
    {
        /* all lists */

        for (l = 0; l < vi->nlist; l++) {
            for (b = lists[l].head;
                 b != NGX_HTTP_AI_VECTOR_NONE;
                 b = blocks[b].next)
            {
                ngx_http_ai_vector_scan(vi, vec, group, now, b, &best,
                                        &found);
            }

            scanned += lists[l].count;
        }

    } else {

        /* the nprobe lists whose centroids are the nearest */

        ntop = 0;

        for (l = 0; l < vi->nlist; l++) {
            if (lists[l].count == 0) {
                continue;
            }

            d = ngx_http_ai_vector_dot(vec,
                                       ngx_http_ai_vector_centroid_at(vi, l),
                                       vi->dim);
            scanned++;

            if (ntop == vi->nprobe && d <= top[ntop - 1]) {
                continue;
            }

            j = (ntop < vi->nprobe) ? ntop++ : ntop - 1;

            while (j > 0 && top[j - 1] < d) {
                top[j] = top[j - 1];
                tops[j] = tops[j - 1];
                j--;
            }

            top[j] = d;
            tops[j] = l;
        }

        for (j = 0; j < ntop; j++) {
            for (b = lists[tops[j]].head;
                 b != NGX_HTTP_AI_VECTOR_NONE;
                 b = blocks[b].next)
            {
                ngx_http_ai_vector_scan(vi, vec, group, now, b, &best,
                                        &found);
            }

            scanned += lists[tops[j]].count;
        }
    }

    match->scanned = scanned;

    if (found == NGX_HTTP_AI_VECTOR_NONE) {
        return NGX_DECLINED;
    }

    match->similarity = best / norm;

    if (match->similarity < threshold) {
        return NGX_DECLINED;
    }

    match->payload = slots[found].payload;
    match->slot = found;
    match->expire = (time_t) slots[found].expire;

    return NGX_OK;
}


ngx_int_t
ngx_http_ai_vector_delete(ngx_http_ai_vector_t *vi, uint64_t payload)
{
    uint32_t  s;

    s = ngx_http_ai_vector_lookup(vi, payload);
    if (s == NGX_HTTP_AI_VECTOR_NONE) {
        return NGX_DECLINED;
    }

    ngx_http_ai_vector_remove(vi, s);

    return NGX_OK;
}


ngx_uint_t
ngx_http_ai_vector_expire(ngx_http_ai_vector_t *vi, time_t now,
    ngx_uint_t max)
{
    uint32_t                    s;
    ngx_uint_t                  n, removed;
    ngx_http_ai_vector_slot_t  *slots;

    slots = ngx_http_ai_vector_slots(vi);
    removed = 0;

    max = ngx_min(max, vi->hwm);

    for (n = 0; n < max; n++) {
        s = vi->sweep++;

        if (vi->sweep >= vi->hwm) {
            vi->sweep = 0;
        }

        if (slots[s].list != NGX_HTTP_AI_VECTOR_NONE
            && slots[s].expire <= (int64_t) now)
        {
            ngx_http_ai_vector_remove(vi, s);
            removed++;
        }
    }

    return removed;
}


void
ngx_http_ai_vector_stats(ngx_http_ai_vector_t *vi,
    ngx_http_ai_vector_stats_t *stats)
{
    stats->dim = vi->dim;
    stats->capacity = vi->capacity;
    stats->count = vi->count;
    stats->nlist = vi->nlist;
    stats->nprobe = vi->nprobe;
    stats->exact_max = vi->exact_max;
    stats->centroids = vi->lists_used;
    stats->size = vi->used;
    stats->entry_size = sizeof(ngx_http_ai_vector_slot_t) + sizeof(uint32_t)
                        + vi->stride * sizeof(float)
                        + sizeof(ngx_http_ai_vector_block_t)
                          / NGX_HTTP_AI_VECTOR_BLOCK;
    stats->inserts = vi->inserts;
    stats->evictions = vi->evictions;
}
