/* The placement metric's accumulator, shared by its two files:
 * placement_metric.c (measuring, merging, reporting) and
 * placement_metric_state.c (parameters, planning, load statistics,
 * checkpoints). */
#ifndef ROUTESIM_PLACEMENT_METRIC_INTERNAL_H
#define ROUTESIM_PLACEMENT_METRIC_INTERNAL_H

#include <stdint.h>

#include "metrics/placement/comm_model.h"
#include "metrics/placement/dispatch.h"
#include "metrics/placement/placement.h"
#include "routesim/metric.h"
#include "routesim/xsum.h"

enum {
    PARAM_POLICY,
    PARAM_FILE,
    PARAM_LOADS,
    PARAM_DEVICES,
    PARAM_NODES,
    PARAM_GROUPS,
    PARAM_REPLICAS,
    PARAM_STATS,
    PARAM_WINDOW,
    PARAM_REBALANCE_EVERY,
    PARAM_TRAIN_TOKENS,
    PARAM_SOURCE,
    PARAM_DISPATCH,
    PARAM_HIDDEN_SIZE,
    PARAM_BYTES_PER_ELEMENT,
    PARAM_NVLINK_GBPS,
    PARAM_NET_GBPS,
    PARAM_LATENCY_US,
    PARAM_EXPERT_BYTES,
    PARAM_PER_DEVICE,
    PARAM_BALANCE_SLACK,
    PARAM_ITERATIONS,
    PARAM_SEED,
    PLACEMENT_NUM_PARAMS
};

extern const rs_param_def rs_placement_metric_params[PLACEMENT_NUM_PARAMS];

/* Where the placement comes from. */
typedef enum placement_stats_mode {
    PLACEMENT_STATS_ONCE,    /* planned at create: a load-agnostic policy, or stats=oracle (the run's counts, a loads file) */
    PLACEMENT_STATS_HISTORY, /* contiguous first, replanned every rebalance_every tokens from the last window */
    PLACEMENT_STATS_SPLIT,   /* planned on the first train_tokens, which are not measured */
} placement_stats_mode;

/* A contiguous range of tokens holds at most two partial batches (its
 * first and last); merging adds a third for a moment. */
enum { PLACEMENT_OPEN_BATCHES = 3 };

/* A batch of batch_tokens tokens this accumulator has seen part of. */
typedef struct placement_batch {
    int64_t index;    /* batch number from the trace start; -1 = slot unused */
    int64_t tokens;   /* of the batch, seen here */
    int64_t *load;    /* [L][G] assignments each device served */
    int64_t *traffic; /* [L][G][4] intra-node sent, received, inter-node sent, received */
} placement_batch;

/* One layer's totals over finished batches (and tokens). */
typedef struct placement_sums {
    rs_xsum imbalance; /* max/mean - 1 of each batch with assignments */
    rs_xsum seconds;   /* modelled all-to-all time of each such batch */
    int64_t assignments, cross_device, cross_node;
    int64_t load_total, load_max; /* over batches: balancedness */
    int64_t hops, hop_base;       /* assignments at this layer changing device from the layer before, of all */
    int64_t moves;                /* slots whose expert a rebalance changed */
} placement_sums;

typedef struct placement_acc {
    int L, E, G, N, K, B; /* B: batch_tokens; K: decision row width */
    int R;
    const rs_placement_policy *policy;
    rs_placement_options options;
    char *path; /* policy file */
    rs_comm_model model;
    rs_dispatch_rule rule;
    int by_token; /* source = token (else sequence) */
    int per_device;
    double expert_bytes;
    placement_stats_mode stats;
    int64_t rebalance_batches, window_batches, train_tokens;
    int needs_transitions; /* the policy plans from layer-to-layer transitions */

    /* what is measured */
    placement_sums *sums; /* [L] */
    int64_t *device_load; /* [L][G] over finished batches */
    placement_batch open[PLACEMENT_OPEN_BATCHES];
    int64_t cur_batch; /* batch of the last token seen, -1 before any */
    int failed;        /* a replan ran out of memory: every value is NaN */
    int planned;       /* split: the plan from the training tokens is made */
    int compacted;     /* compact ran: only what merge reads is left */

    /* the placement in force and its dispatch tables (NULL before a split plan) */
    rs_placement *place;
    rs_dispatch dispatch;

    /* load statistics (history: the window's sums; split: the training sums) */
    int64_t *stat_loads;        /* [L][E] */
    int64_t *stat_transitions;  /* [L-1][E][E] when the policy needs them */
    int64_t *batch_loads;       /* history: [L][E] of the batch being measured */
    int64_t *batch_transitions; /* history: [L-1][E][E] */
    int32_t *ring;              /* history: [window_batches][L][E] the last batches' loads */
    int32_t *transition_ring;   /* history: [window_batches][L-1][E][E] */
    int64_t ring_next;          /* batches pushed so far */

    /* scratch */
    int32_t *node_of;       /* [G] */
    rs_comm_traffic *comm;  /* [G] */
    int32_t *row_devices;   /* [2][K]: a token's devices at the layer before and this one */
    double *plan_loads, *plan_transitions;
} placement_acc;

int rs_placement_acc_create(void **acc, const rs_params *params, const rs_metric_setup *setup, rs_error *err);
/* RS_COUNTS_* the engine must count first: stats=oracle of a policy planned
 * from loads, without loads=FILE. */
unsigned rs_placement_acc_needs_counts(const rs_params *params);
void rs_placement_acc_destroy(void *acc);
void rs_placement_acc_compact(void *acc);
void rs_placement_acc_checkpoint(void *acc, rs_state_io *io);
/* 0 when parts of the trace merge exactly under a's parameters, else -1 saying why. */
int rs_placement_acc_mergeable(const placement_acc *a, rs_error *err);

/* Plans from the statistics collected (history: the window; split: the
 * training tokens) and puts the plan in force; count_moves adds the slots
 * that changed to each layer's moves. Sets failed when out of memory. */
void rs_placement_acc_replan(placement_acc *a, int count_moves);
/* Adds tokens [t0, t1)'s expert loads (and transitions) to loads, transitions. */
void rs_placement_acc_count(const placement_acc *a, const rs_chunk *c, const rs_decisions *dec, int t0, int t1,
                            int64_t *loads, int64_t *transitions);
/* history: the batch just finished enters the window (its oldest batch leaves). */
void rs_placement_acc_push_history(placement_acc *a);

#endif
