/* The engine's state, shared by its setup and run loop (engine.c) and its
 * per-chunk work (engine_chunk.c). */
#ifndef ROUTESIM_ENGINE_INTERNAL_H
#define ROUTESIM_ENGINE_INTERNAL_H

#include "routers/common/capacity.h"
#include "sim/engine/chunk_loader.h"
#include "sim/engine/engine.h"
#include "sim/engine/groups.h"

/* Rows of [n, L, width] arrays held for a band of layers: storage for
 * n * band + (L - band) rows, the band's rows back to back after L - band
 * rows of headroom, so that base = storage + (L - band - first) rows lies
 * inside it and base + (t * band + l) rows is token t at layer l of the
 * band (rs_chunk_logits, rs_decision_row with c->L = band). */
typedef struct band_storage {
    void *data;
    size_t rows; /* rows allocated */
} band_storage;

/* One configured router. */
typedef struct router_slot {
    const rs_router_spec *spec;
    void *state;
    rs_router_shape shape;
    rs_capacity capacity; /* the capacity stage after it, if enabled */
    /* The decisions of the layers being routed: the whole chunk [n, L,
     * kmax], or a layer band's rows (see band_storage); after a banded
     * chunk, its every layer (full) when someone reads them whole. */
    rs_decisions dec;
    band_storage ids, weights, dropped;
    rs_decisions full; /* [n, L, kmax] of banded chunks, when needed; NULL ids otherwise */
    size_t full_rows;
    int run; /* its results run; -1: routed only as the reference */
    int on_device; /* --device gpu: routed by its device hook (engine_device.c) */
} router_slot;

/* One (metric parameter combination, router) accumulator. */
typedef struct metric_slot {
    const rs_metric_spec *spec;
    int router;
    void *acc;
    void **slice_acc;        /* accumulators of token slices 1.., merged after each chunk */
    void **blocks;           /* bootstrap: the finished accumulator of each block (NULL if none) */
    unsigned long long keep; /* outputs this combination reports */
    int by;                  /* its tokens: the group e->by_groups[by] of a breakdown; -1 = all */
    rs_metric_setup setup;
    int on_device;   /* --device gpu: measured by its device hook (engine_device.c) */
    int device_done; /* ... and the chunk being processed was */
} metric_slot;

/* One group of a breakdown: the tokens whose `dim` has this value. */
typedef struct by_group {
    rs_breakdown_dim dim;
    int32_t value;
    char key[128]; /* "domain=math", "phase=decode": added to its rows' key */
} by_group;

/* A unit of parallel work: one layer of a slice of the chunk's tokens. */
typedef struct work_item {
    int layer, slice, offset, count;
} work_item;

/* One thread's run of a chunk's work items, [next, end) still to take:
 * the thread takes them first, then what the others leave (padded to a
 * cache line, as threads take from each other's runs). */
typedef struct item_run {
    int next, end;
    char pad[56];
} item_run;

/* Softmax rows of one layer of a work item's tokens and their statistics
 * (the arrays of rs_chunk's probs, lse, mean_logit, log_norm, entropy). */
typedef struct softmax_scratch {
    float *probs;
    double *lse, *mean_logit, *log_norm, *entropy;
} softmax_scratch;

/* What one thread needs for one work item: softmax statistics of its
 * tokens (one layer) and the capacity stage's working space. */
typedef struct thread_scratch {
    softmax_scratch softmax;
    softmax_scratch ref_softmax; /* the same for the paired reference trace's rows */
    int64_t tokens; /* what the arrays above hold */
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
    /* Chunks of more tokens (grown to hold whole token groups) do not fit
     * the budget whole: they are read and routed in bands of layers
     * (engine_band.c). */
    int64_t whole_tokens;
    /* 16-bit traces: a grown chunk of up to this many tokens is kept whole
     * as stored (2 bytes a logit) and widened band by band from memory into
     * cache-sized buffers, so its float32 logits never go out to memory
     * (0: off; chunks past whole_tokens are read from the file in bands). */
    int64_t stored_whole_tokens;
    /* While a chunk of 16-bit logits with no bad word is routed (whole, or
     * such a grown chunk band by band): its stored rows, from which each
     * work item widens its own layer's rows just before routing them (NULL
     * when rows are widened whole, or bands read from the file). */
    const uint16_t *band_source;
    size_t budget;
    double metric_bytes; /* what the metric accumulators keep (engine_metric_bytes.c) */
    const char *largest_metric; /* and the family that keeps most of it, with its bytes */
    double largest_metric_bytes;
    int banded;           /* the chunk being routed is */
    int band_in_memory;   /* and its bands are widened from its stored rows (stored_whole_tokens) */
    int band;             /* its layers per band */
    int band_threads;     /* threads routing a banded chunk: their softmax scratch fits the budget */
    int needs_full;       /* banded chunks keep every layer's decisions (update_chunk, decisions file) */
    band_storage band_logits, band_ids, band_weights; /* the band's logits and recorded top-k */
    uint16_t *band_stored; /* its 16-bit logits as stored */
    size_t band_stored_cells;
    int loaded_band;       /* first layer of the band the buffers hold; -1 none */

    /* The loader whose next chunk one of the threads routing this chunk
     * reads, as one more work item (rs_chunk_loader_read_ahead); NULL when
     * the loader reads ahead itself or not at all. */
    rs_chunk_loader *read_ahead;

    float *bias;
    thread_scratch *scratch; /* [threads] */
    rs_group_buffer groups[RS_GROUP_COUNT];

    router_slot *routers;
    int num_routers; /* the runs, then the hidden reference router if any */
    int num_runs;
    metric_slot *metrics;
    int num_metric_slots;
    rs_counted_run *counted; /* [num_runs]: what needs_counts asked of each run, counted first */
    work_item *items;
    item_run *runs; /* [threads] */
    /* breakdowns (engine_breakdown.c): the groups, and per chunk each
     * group's token mask (the chunk's valid tokens that belong to it) */
    by_group *by_groups;
    int num_by_groups;
    uint8_t *by_masks; /* [num_by_groups][by_mask_tokens] */
    int64_t by_mask_tokens;

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
    /* a block of whole sequences (engine_blocks.c): the pass ends at token
     * `end` (0: the trace's end) and leaves its accumulators unfiled */
    int64_t end;
    int block_pass;
    /* --device gpu (engine_device.c): the device's buffers, and whether
     * the chunk being processed was routed there by its on_device routers */
    struct rs_device_state *device;
    int device_routed;
    const uint16_t *chunk_stored; /* the chunk's 16-bit logits as stored, NULL for float32 (engine_chunk.c) */
    int device_host_probs; /* a routed chunk still needs the CPU's softmax (a CPU router, metric or capacity stage) */
};

/* Buffers for a chunk of n tokens, routed whole or (e->banded) in bands of
 * `band` layers, grown as needed. */
int rs_engine_ensure_capacity(rs_engine *e, int64_t n, int band, rs_error *err);
/* Grows s to hold rows of `width` elements of `size` bytes for n tokens in
 * bands of `band` of L layers. */
int rs_band_storage_reserve(band_storage *s, int64_t n, int band, int L, size_t width, size_t size);
void rs_band_storage_free(band_storage *s);
/* The base pointer of layers [first, first + band) (see band_storage). */
void *rs_band_base(const band_storage *s, int first, int band, int L, size_t width, size_t size);
/* Points every router's dec at layers [first, first + band) of its storage. */
void rs_engine_set_band(rs_engine *e, int first, int band);

/* Turns a loaded chunk into the view routers and metrics see: widens and
 * checks logits, builds token groups. A banded chunk's view has no logits
 * (NULL): its bands are read by rs_engine_route_bands. */
int rs_engine_chunk_view(rs_engine *e, rs_loaded_chunk *b, rs_chunk *c, int64_t *skipped, rs_error *err);

/* The error for the first non-finite logit of a chunk (in token order). */
int rs_engine_nonfinite_error(const rs_engine *e, int64_t token, int layer, int expert, int nan, rs_error *err);

/* Routes and measures one chunk (parallel), then merges slice accumulators.
 * paired: the paired reference trace's view of the same tokens, already
 * routed by e->paired, or NULL. */
int rs_engine_process_chunk(rs_engine *e, const rs_chunk *c, const rs_chunk *paired, rs_error *err);
/* The three steps of rs_engine_process_chunk, for chunks routed in layer
 * bands: creates the accumulators of token slices (*slices of them);
 * routes and measures layers [first, first + view->L) of a view of the
 * chunk (the whole chunk, or a band view); then merges the slices and runs
 * the cross-layer metrics on c (with every layer's decisions). end also
 * cleans up after a failure (rc != 0) and returns rc. */
int rs_engine_chunk_begin(rs_engine *e, const rs_chunk *c, int *slices, rs_error *err);
int rs_engine_process_layers(rs_engine *e, const rs_chunk *view, const rs_chunk *paired, int first, int slices,
                             int threads, rs_error *err);
int rs_engine_chunk_end(rs_engine *e, const rs_chunk *c, const rs_chunk *paired, int slices, int rc, rs_error *err);

/* What the chunk loader of e reads (engine_run.c). */
rs_loader_config rs_engine_loader_config(const rs_engine *e);
/* Files every metric slot's rows in e->results (engine_run.c). */
int rs_engine_file_results(rs_engine *e, rs_error *err);

/* Measures what the metric accumulators of the pass keep (metric_bytes);
 * the check fails, naming the need, when that exceeds the budget
 * (engine_metric_bytes.c). */
int rs_engine_measure_metrics(rs_engine *e, rs_error *err);
int rs_engine_check_metric_bytes(const rs_engine *e, rs_error *err);

/* Layer bands (engine_band.c). Sets whole_tokens, band_threads and checks,
 * before anything is routed, that the largest chunk fits the budget in
 * bands of one layer; fails saying how much memory it needs otherwise. */
int rs_engine_plan_bands(rs_engine *e, int decisions_out, rs_error *err);
/* float32 logits per thread in a band widened from memory: the band's
 * storage (its rows are widened a layer at a time, which the cache holds),
 * and so how many parallel steps a chunk takes. */
#define RS_MEMORY_BAND_BYTES ((size_t)4 << 20)

/* Widens layer l of tokens [offset, offset + n) of chunk or band view c
 * from e->band_source. */
void rs_engine_widen_band_layer(const rs_engine *e, const rs_chunk *c, int l, int offset, int n);

/* Layers per band for a banded chunk of n tokens (e and its paired engine
 * alike); in_memory: its stored rows are in memory, and a band holds about
 * a cache's worth of float32 logits per thread. */
int rs_engine_band_layers(const rs_engine *e, int64_t n, int in_memory);
/* Reads every band of a banded chunk once to check its logits (as
 * widening whole chunks does): fills b->valid (*any_invalid: some token
 * is not), counts skipped tokens or fails naming the first bad value.
 * stored_finite: its stored rows were found free of NaN and infinities,
 * so no band needs reading. */
int rs_engine_check_bands(rs_engine *e, rs_loaded_chunk *b, int band, int stored_finite, int64_t *skipped,
                          int *any_invalid, rs_error *err);
/* Routes and measures a banded chunk c (and its paired view pc, routed
 * first by e->paired), band by band; then every layer's decisions are in
 * each router's dec when needs_full. */
int rs_engine_route_bands(rs_engine *e, rs_loaded_chunk *b, const rs_chunk *c, rs_loaded_chunk *pb,
                          const rs_chunk *pc, int band, rs_error *err);

/* Checkpoints (engine_checkpoint.c): saves the state after the chunk that
 * ends at token `position`, with the run's counts so far. */
int rs_engine_checkpoint_save(rs_engine *e, int64_t position, int64_t skipped, int64_t paired_skipped, int64_t chunks,
                              rs_error *err);

/* Breakdowns (engine_breakdown.c). Finds the groups of every dimension
 * options->breakdown names (the values the trace holds), failing when the
 * trace lacks the dataset a dimension reads. */
int rs_engine_breakdown_setup(rs_engine *e, rs_error *err);
/* Fills each group's token mask for chunk c (after its valid tokens are known). */
int rs_engine_breakdown_masks(rs_engine *e, const rs_chunk *c, rs_error *err);
/* The chunk c as the accumulators of metric slot ms see it: for a group
 * of a breakdown, only its tokens are valid. `offset` is c's first token
 * within the chunk the masks were built for. */
rs_chunk rs_engine_slot_view(const rs_engine *e, const metric_slot *ms, const rs_chunk *c, int offset);

/* Bootstrap (engine_bootstrap.c): blocks of whole sequences as cuts. */
int rs_engine_bootstrap_setup(rs_engine *e, rs_error *err);
/* Refuses, before routing, metrics that could not be bootstrapped: one
 * that follows sequences under batches crossing them, or one that cannot
 * merge. */
int rs_engine_bootstrap_check(rs_engine *e, rs_error *err);
/* Starts the block of the chunk at t0: files away each metric's finished
 * block accumulator and creates a fresh one. */
int rs_engine_bootstrap_enter(rs_engine *e, int64_t t0, rs_error *err);
/* Files one metric slot's rows from its blocks: the point estimate (all
 * blocks merged in order) and basic intervals over resamples. */
int rs_engine_bootstrap_file(rs_engine *e, metric_slot *ms, rs_error *err);

#endif
