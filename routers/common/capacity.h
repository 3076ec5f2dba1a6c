/* The capacity stage: after a token-choice router, each expert takes at
 * most C assignments per token group and the rest are dropped
 * (docs/routers.md#capacity). Its settings are parameters of every
 * token-choice router (capacity_factor, capacity_rounding, min_capacity,
 * drop_policy, drop_seed, group, renorm_after_drop). */
#ifndef ROUTESIM_CAPACITY_H
#define ROUTESIM_CAPACITY_H

#include <stddef.h>
#include <stdint.h>

#include "routesim/chunk.h"
#include "routesim/params.h"

extern const rs_param_def rs_capacity_param_defs[];
extern const int rs_capacity_num_params;

typedef enum rs_drop_policy {
    RS_DROP_POSITION, /* earlier tokens first, all rank-1 choices before rank-2 (GShard, Switch) */
    RS_DROP_PROBS,    /* per expert the highest-weight assignments (Megatron "probs") */
    RS_DROP_PRIORITY, /* tokens by their top-1 weight, then as position (V-MoE BPR) */
    RS_DROP_RANDOM,   /* per expert a random subset (DeepSpeed random token selection) */
} rs_drop_policy;

typedef struct rs_capacity {
    int enabled; /* capacity_factor is set */
    double factor;
    int rounding; /* 0 ceil, 1 floor, 2 round (half away from zero) */
    int64_t min_capacity;
    rs_drop_policy policy;
    uint64_t seed;
    rs_group group;
    int renorm;
    int k; /* k of the formula; 0: the decision row width */
} rs_capacity;

/* Reads the stage's settings from a router's parameters (absent ones off). */
void rs_capacity_from_params(rs_capacity *cap, const rs_params *p);

/* C for a group of n tokens with k experts each among E. */
int64_t rs_capacity_of(const rs_capacity *cap, int64_t n, int k, int E);

/* Per-thread scratch, grown on demand (start zeroed). */
typedef struct rs_capacity_scratch {
    int64_t *count; /* [E] */
    struct rs_capacity_entry *entries;
    int32_t *order;
    size_t capacity[3]; /* of count, entries, order */
} rs_capacity_scratch;

void rs_capacity_scratch_free(rs_capacity_scratch *s);

/* Applies the stage to every group of one layer of a chunk. Returns -1 only
 * when scratch memory cannot be had. */
int rs_capacity_apply(const rs_capacity *cap, const rs_chunk *c, int layer, const rs_groups *groups,
                      rs_decisions *dec, rs_capacity_scratch *s);

#endif
