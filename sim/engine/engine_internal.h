/* The engine's state, shared by its setup and run loop (engine.c) and its
 * per-chunk work (engine_chunk.c). */
#ifndef ROUTESIM_ENGINE_INTERNAL_H
#define ROUTESIM_ENGINE_INTERNAL_H

#include "routers/common/capacity.h"
#include "sim/engine/chunk_loader.h"
#include "sim/engine/engine.h"
#include "sim/engine/groups.h"

/* One configured router. */
typedef struct router_slot {
    const rs_router_spec *spec;
    void *state;
    rs_router_shape shape;
    rs_capacity capacity; /* the capacity stage after it, if enabled */
    rs_decisions dec;     /* [capacity, L, kmax] */
    int run;              /* its results run; -1: routed only as the reference */
} router_slot;

/* One (metric parameter combination, router) accumulator. */
typedef struct metric_slot {
    const rs_metric_spec *spec;
    int router;
    void *acc;
    void **slice_acc;        /* accumulators of token slices 1.., merged after each chunk */
    void **blocks;           /* bootstrap: the finished accumulator of each block (NULL if none) */
    unsigned long long keep; /* outputs this combination reports */
    rs_metric_setup setup;
} metric_slot;

/* A unit of parallel work: one layer of a slice of the chunk's tokens. */
typedef struct work_item {
    int layer, slice, offset, count;
} work_item;

/* What one thread needs for one work item: softmax statistics of its
 * tokens (one layer) and the capacity stage's working space. */
typedef struct thread_scratch {
    float *probs;
    double *lse, *mean_logit;
    float *ref_probs; /* the same for the paired reference trace's rows */
    double *ref_lse, *ref_mean_logit;
    rs_capacity_scratch capacity;
} thread_scratch;

struct rs_engine {
    rs_trace *trace;
    const rs_trace_info *info;
    const rs_engine_options *opt;
    rs_results *results;
    int L, E, threads;
    unsigned needs;
    unsigned group_modes; /* bit rs_group: groups built per chunk, chunk boundaries */
    int sliceable;        /* every router is per token and stateless, and no capacity stage */
    int max_slices;
    int64_t chunk_tokens;
    int64_t capacity; /* tokens the decision buffers and scratch hold */

    float *bias;
    thread_scratch *scratch; /* [threads] */
    rs_group_buffer groups[RS_GROUP_COUNT];

    router_slot *routers;
    int num_routers; /* the runs, then the hidden reference router if any */
    int num_runs;
    metric_slot *metrics;
    int num_metric_slots;
    work_item *items;

    /* agreement metrics' reference: a router slot of this engine, or the
     * only router of `paired`, an engine on the paired trace whose chunks
     * have the same boundaries as this one's */
    int ref_router; /* -1 = none here */
    struct rs_engine *paired;
    rs_engine_options paired_options;
    int ref_probs;         /* reference metrics want the paired trace's softmax */
    /* bootstrap blocks: chunks never cross cuts[i] (token offsets); the
     * chunk starting at t belongs to block #{cuts <= t} */
    int64_t *cuts_owned;
    const int64_t *cuts;
    int num_cuts;
    int block; /* of the chunk being measured */
    unsigned extra_needs;  /* asked of a paired engine by its owner */
    /* a pass resumed from a checkpoint: its first token and the counts so far */
    int64_t start;
    int64_t resumed_skipped, resumed_paired_skipped, resumed_chunks;
};

/* Buffers for chunks of n tokens (grown when groups outlast the budget). */
int rs_engine_ensure_capacity(rs_engine *e, int64_t n, rs_error *err);

/* Turns a loaded chunk into the view routers and metrics see: widens and
 * checks logits, builds token groups. */
int rs_engine_chunk_view(rs_engine *e, rs_loaded_chunk *b, rs_chunk *c, int64_t *skipped, rs_error *err);

/* Routes and measures one chunk (parallel), then merges slice accumulators.
 * paired: the paired reference trace's view of the same tokens, already
 * routed by e->paired, or NULL. */
int rs_engine_process_chunk(rs_engine *e, const rs_chunk *c, const rs_chunk *paired, rs_error *err);

/* Checkpoints (engine_checkpoint.c): saves the state after the chunk that
 * ends at token `position`, with the run's counts so far. */
int rs_engine_checkpoint_save(rs_engine *e, int64_t position, int64_t skipped, int64_t paired_skipped, int64_t chunks,
                              rs_error *err);

/* Bootstrap (engine_bootstrap.c): blocks of whole sequences as cuts. */
int rs_engine_bootstrap_setup(rs_engine *e, rs_error *err);
/* Starts the block of the chunk at t0: files away each metric's finished
 * block accumulator and creates a fresh one. */
int rs_engine_bootstrap_enter(rs_engine *e, int64_t t0, rs_error *err);
/* Files one metric slot's rows from its blocks: the point estimate (all
 * blocks merged in order) and basic intervals over resamples. */
int rs_engine_bootstrap_file(rs_engine *e, metric_slot *ms, rs_error *err);

#endif
