/* Helpers shared by the locality routers (section E of docs/routers.md):
 * sequence starts, token validity, rank-ordered selections and the
 * per-layer LRU expert cache of cache_prior and cache_maxrank. */
#ifndef ROUTESIM_ROUTERS_LOCALITY_H
#define ROUTESIM_ROUTERS_LOCALITY_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "routesim/checkpoint.h"
#include "routesim/chunk.h"

/* 1 when chunk token t is the first token of its sequence: per-sequence
 * state (caches, previous tokens) starts afresh there. */
static inline int rs_starts_sequence(const rs_chunk *c, int t)
{
    return c->t0 + t == c->seq_offsets[c->seq_of_token[t]];
}

/* Skipped tokens (non-finite logits) get no experts and change no state. */
static inline int rs_token_valid(const rs_chunk *c, int t) { return !c->valid || c->valid[t]; }

/* Sorts ids[0..n) by (-score[id], id), the order every router lists its
 * experts in. n is small (at most a few hundred): insertion sort. */
static inline void rs_sort_by_score(int32_t *ids, int n, const float *score)
{
    for (int i = 1; i < n; i++) {
        int32_t e = ids[i];
        float x = score[e];
        int j = i;
        while (j > 0 && (score[ids[j - 1]] < x || (score[ids[j - 1]] == x && ids[j - 1] > e))) {
            ids[j] = ids[j - 1];
            j--;
        }
        ids[j] = e;
    }
}

/* Combine weights p_S, divided by sum p_S when renorm is set. */
static inline void rs_weights_from_probs(const float *p, const int32_t *ids, int n, int renorm, float *w)
{
    double norm = 1.0;
    if (renorm) {
        double sum = 0.0;
        for (int j = 0; j < n; j++)
            sum += p[ids[j]];
        norm = sum > 0.0 ? 1.0 / sum : 0.0;
    }
    for (int j = 0; j < n; j++)
        w[j] = (float)((double)p[ids[j]] * norm);
}

/* One layer's LRU cache of expert ids, updated with the batch rule of
 * docs/metrics.md ("Expert cache simulation"): a token's experts are
 * accessed together; in slot order a hit is touched and a miss is inserted,
 * evicting the least recently used cached expert outside the current batch
 * (none available: the miss is not cached). stamp[e] = 0 means not cached. */
typedef struct rs_expert_lru {
    int capacity, count;
    uint64_t clock;
    uint64_t *stamp;  /* [E] last touch, 0 = not cached */
    uint8_t *in_batch; /* [E] scratch */
} rs_expert_lru;

static inline int rs_lru_cached(const rs_expert_lru *c, int e) { return c->stamp[e] != 0; }

static inline void rs_lru_reset(rs_expert_lru *c, int E)
{
    memset(c->stamp, 0, (size_t)E * sizeof *c->stamp);
    c->count = 0;
    c->clock = 0;
}

static inline void rs_lru_access(rs_expert_lru *c, int E, const int32_t *ids, int n)
{
    for (int j = 0; j < n; j++)
        if (ids[j] >= 0)
            c->in_batch[ids[j]] = 1;
    for (int j = 0; j < n; j++) {
        int e = ids[j];
        if (e < 0)
            continue;
        if (c->stamp[e]) {
            c->stamp[e] = ++c->clock;
            continue;
        }
        if (c->count < c->capacity) {
            c->stamp[e] = ++c->clock;
            c->count++;
            continue;
        }
        int victim = -1;
        for (int x = 0; x < E; x++)
            if (c->stamp[x] && !c->in_batch[x] && (victim < 0 || c->stamp[x] < c->stamp[victim]))
                victim = x;
        if (victim >= 0) {
            c->stamp[victim] = 0;
            c->stamp[e] = ++c->clock;
        }
    }
    for (int j = 0; j < n; j++)
        if (ids[j] >= 0)
            c->in_batch[ids[j]] = 0;
}

/* Saves or restores the cache (routesim/checkpoint.h); in_batch is scratch. */
static inline void rs_lru_checkpoint(rs_expert_lru *c, int E, rs_state_io *io)
{
    RS_STATE(io, c->count);
    RS_STATE(io, c->clock);
    RS_STATE_ARRAY(io, c->stamp, E);
}

#endif
