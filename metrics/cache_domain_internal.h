/* What the cache domain's two files share (cache_domain.c: the domain and
 * its online policies; cache_replay.c: the replay of the segment buffer
 * for the policies that look ahead). */
#ifndef ROUTESIM_METRICS_CACHE_DOMAIN_INTERNAL_H
#define ROUTESIM_METRICS_CACHE_DOMAIN_INTERNAL_H

#include "metrics/cache_domain.h"

static inline int is_lookahead(cache_policy p) { return p == CACHE_BELADY || p == CACHE_SCH; }

static inline int layer_of(const cache_domain *d, int32_t obj) { return d->cfg.nlayers == 1 ? 0 : obj / d->cfg.E; }

/* The policy's batch results: hits, and warm-start hits (a first access to
 * an object while fewer than `capacity` distinct objects have been seen in
 * the segment counts as a hit, in slot order). Once `capacity` objects were
 * seen no access is a warm-start hit but a hit, so only the hits are
 * counted (hits: the batch's, as rs_cache_sim_batch returned them). */
__attribute__((always_inline)) static inline void count_main(cache_domain *d, const int32_t *objs, int n,
                                                             const uint8_t *hit, int hits, int loaded, int layer)
{
    cache_counts *k = &d->counts[layer];
    k->accesses += n;
    k->prefetched += loaded;
    k->hits += hits;
    if (d->distinct >= d->cfg.capacity && !d->obj_accesses) {
        k->warm_hits += hits;
        return;
    }
    int warm = 0;
    for (int i = 0; i < n; i++) {
        int first = 0;
        if (d->seen[objs[i]] != d->epoch) {
            d->seen[objs[i]] = d->epoch;
            first = d->distinct++ < d->cfg.capacity;
            if (d->obj_warm)
                d->obj_warm[objs[i]] += first;
        }
        warm += hit[i] | first;
    }
    if (d->obj_accesses) /* static */
        for (int i = 0; i < n; i++)
            d->obj_accesses[objs[i]]++;
    k->warm_hits += warm;
}

/* The stack-distance histogram's counts of a batch (curve = lru, belady). */
void rs_cache_domain_count_stack(cache_domain *d, const int32_t *objs, int n, const uint64_t *next_use);

/* One batch through each cache size of a per-size curve. */
void rs_cache_domain_run_sizes(cache_domain *d, const int32_t *objs, int n, const int32_t *pf, int n_pf,
                               const cache_future *f, uint64_t seed, int64_t token, int layer);

/* Replays the buffered segment for the simulations that look ahead. */
void rs_cache_replay(cache_domain *d);

#endif
