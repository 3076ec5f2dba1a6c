/* One cache domain of the `cache` metric family: the stream of batches one
 * cache serves (one layer's, or every layer's for the global pool), run
 * through every simulation the configuration asks for (the policy, Belady
 * for belady_gap, the hit-rate curve) and counted per layer.
 *
 * Online policies run as batches arrive. Policies that look ahead (belady,
 * sch) need the rest of the segment (a sequence, or the whole run with
 * reset=never): its batches are buffered, 2 bytes per object id, and
 * replayed when the segment ends. */
#ifndef ROUTESIM_METRICS_CACHE_DOMAIN_H
#define ROUTESIM_METRICS_CACHE_DOMAIN_H

#include <stddef.h>
#include <stdint.h>

#include "metrics/cache_sim.h"
#include "metrics/cache_stack.h"

typedef enum cache_curve {
    CACHE_CURVE_NONE,
    CACHE_CURVE_LRU,      /* one pass: LRU stack distances */
    CACHE_CURVE_BELADY,   /* one pass: Belady (OPT) stack distances */
    CACHE_CURVE_STATIC,   /* from access counts */
    CACHE_CURVE_PER_SIZE, /* one simulation per size, in the same pass */
} cache_curve;

typedef struct cache_domain_config {
    cache_policy policy;
    int capacity;      /* slots: C, or C * L for the global pool */
    int nobj;          /* objects served: E, or L * E */
    int E;             /* objects per layer */
    int nlayers;       /* layers counted separately: 1, or L */
    int stride;        /* batches per token: 1, or L (batch b is layer b % L) */
    int m;             /* sch: lookahead segment in tokens */
    int gap;           /* also run Belady at the same capacity */
    int prefetch;      /* batches come with prefetch sets */
    cache_curve curve;
    int curve_sizes;   /* curve over C = 1..curve_sizes ... */
    int size_step;     /* ... of C * size_step slots */
    uint64_t seed;     /* random policy */
    size_t max_buffer; /* bytes the segment buffer may hold */
} cache_domain_config;

typedef struct cache_counts {
    int64_t accesses, hits, warm_hits, prefetched, belady_hits;
} cache_counts;

typedef struct cache_domain {
    cache_domain_config cfg;
    int lookahead; /* some simulation needs the segment's future */
    int open;      /* a segment started and has not ended */
    int lost;      /* a segment outgrew max_buffer: lookahead results are unknown */
    int plain;     /* lru, fifo or lfu alone: no lookahead, curve or prefetch */

    cache_sim main;      /* the policy (unless static) */
    cache_sim oracle;    /* Belady for belady_gap (gap, policy not belady) */
    cache_stack stack;   /* curve LRU / BELADY */
    cache_sim *sizes;    /* curve PER_SIZE: [curve_sizes] */

    /* warm start */
    uint32_t *seen; /* [nobj] == epoch: seen in this segment */
    uint32_t epoch;
    int64_t distinct;

    /* results per counted layer */
    cache_counts *counts;  /* [nlayers] */
    int64_t *dist_hist;    /* [nlayers][nobj + 1] stack distances, 0 = not in the stack */
    int64_t *size_hits;    /* [nlayers][curve_sizes] PER_SIZE hits */
    int64_t *obj_accesses; /* static: [nobj] */
    int64_t *obj_warm;     /* static: [nobj] accesses that are warm-start hits */

    /* the segment, for lookahead */
    uint16_t *seg_objs, *seg_n, *seg_pf, *seg_pf_n;
    size_t seg_objs_len, seg_objs_cap, seg_batches, seg_batches_cap, seg_pf_len, seg_pf_cap;
    uint32_t *link;     /* flush: per buffered access, the next batch using its object */
    size_t link_cap;
    uint64_t *next_use; /* [nobj] */
    uint32_t *window;   /* [nobj] */
    uint32_t *last_use; /* [nobj] flush scratch */

    /* per-batch scratch */
    int32_t *objs, *pf, *dist; /* [nobj] */
    uint8_t *hit;              /* [nobj] */
} cache_domain;

int rs_cache_domain_init(cache_domain *d, const cache_domain_config *cfg);
void rs_cache_domain_free(cache_domain *d);

/* A segment starts: empty caches. */
void rs_cache_domain_begin(cache_domain *d);
/* One token's batch: n distinct objects, and n_pf distinct objects to
 * prefetch first. token keys the random policy's draws; layer is the
 * batch's layer (for those draws). */
void rs_cache_domain_push(cache_domain *d, const int32_t *objs, int n, const int32_t *pf, int n_pf, int64_t token,
                       int layer);
/* The segment ends: replays it for the lookahead simulations. */
void rs_cache_domain_end(cache_domain *d);

/* Between segments: frees all but the counts (what a merge reads of
 * other); d may then only be merged into another domain. */
void rs_cache_domain_compact(cache_domain *d);
/* Saves or restores everything but scratch: the caches, counts and the
 * open segment's buffer (routesim/checkpoint.h). */
void rs_cache_domain_checkpoint(cache_domain *d, rs_state_io *io);

/* Appends other's counts (other follows d; both end on a segment boundary). */
void rs_cache_domain_merge(cache_domain *d, const cache_domain *other);

/* The policy's hits and warm-start hits per counted layer ([nlayers] each;
 * static: from the access counts). -1 when out of memory. */
int rs_cache_domain_results(const cache_domain *d, int64_t *hits, int64_t *warm);
/* Curve hits [nlayers][curve_sizes]: entry c is the hits with (c + 1) * size_step slots. */
void rs_cache_domain_curve(const cache_domain *d, int64_t *hits);

#endif
