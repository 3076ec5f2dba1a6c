/* The streaming engine: one pass over a trace feeds every configured router
 * and, for each router, every metric.
 *
 *   trace --chunk--> [float32 logits, softmax] --> routers (parallel over
 *   router x layer) --> decisions --> metrics (parallel over metric x router
 *   x layer, token slices merged in order) --> accumulators --> results
 *
 * Memory is bounded by the chunk budget, not the trace length: a chunk that
 * must hold whole token groups beyond the budget is routed in bands of
 * layers (engine_band.c), and what does not fit one layer at a time is
 * refused before routing. Results do not depend on the thread count, chunk
 * size or bands: every sum is exact and every stateful computation runs in
 * token order within its layer. */
#ifndef ROUTESIM_ENGINE_H
#define ROUTESIM_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "sim/results/results.h"
#include "sim/config/breakdown.h"
#include "sim/config/spec.h"
#include "workloads/trace/decisions_file.h"
#include "workloads/trace/trace.h"

#define RS_DEFAULT_MEMORY_BUDGET ((size_t)64 << 20)
#define RS_MAX_CHUNK_TOKENS (1 << 20)

/* Checkpoints of a pass (engine_checkpoint.c): after a chunk, when
 * `seconds` have passed since the last one or `chunks` chunks were routed,
 * the state of every router and accumulator and the position are saved to
 * `path` (a temporary file, then renamed), so that rs_engine_resume can
 * continue a pass that was killed. Saves are skipped when some router or
 * metric family cannot save its state (rs_engine_checkpointable). */
typedef struct rs_engine_checkpoint {
    const char *path; /* NULL: no checkpoints */
    const char *key;  /* what the pass's numbers depend on; a checkpoint saved under another key is not used */
    double seconds;   /* 0: not by time */
    int64_t chunks;   /* 0: not by count */
    /* Called after each save; nonzero stops the run there with an error, as
     * a kill would (tests). */
    int (*saved)(void *ctx, int64_t position);
    void *saved_ctx;
} rs_engine_checkpoint;

typedef struct rs_engine_options {
    int threads;            /* 0 = OpenMP's default */
    int64_t chunk_tokens;   /* 0 = derive from memory_budget */
    size_t memory_budget;   /* bytes for chunk buffers, and again for a pass's metric accumulators; 0 = RS_DEFAULT_MEMORY_BUDGET */
    /* A chunk that must hold more tokens than the budget allows whole (token
     * groups) is read and routed in bands of layers, as many as the budget
     * holds; band_layers > 0 sets that number instead, for chunks larger
     * than chunk_tokens. */
    int band_layers;
    int batch_tokens;       /* group size for maxvio_batch and batch-grouped routers */
    int skip_nonfinite;     /* skip tokens with NaN/inf logits instead of failing */
    int progress;           /* -1 automatic, 0 off, 1 on */
    const char *progress_label;
    /* What agreement metrics compare each run with: a router on the same
     * trace (a configured run when its label or spec matches, else routed
     * alongside without results of its own), or on reference_trace, a
     * paired trace with the same tokens, streamed in lock step. NULL = none. */
    const rs_router_spec *reference;
    rs_trace *reference_trace;
    /* Bootstrap over sequences: `bootstrap` resamples (0 = none) of blocks
     * of whole sequences (at most bootstrap_blocks, 0 = 200), giving every
     * result row a basic interval at bootstrap_level (0 = 0.95): rows with
     * stat=ci_low / stat=ci_high added to the key. */
    int bootstrap;
    int bootstrap_blocks;
    double bootstrap_level;
    uint64_t bootstrap_seed;
    rs_engine_checkpoint checkpoint;
    /* Created only to measure rs_engine_metric_bytes: families that need
     * counts of the whole run (needs_counts) get zeros instead of a
     * counting pass. */
    int measure_only;
    /* Breakdowns (bits 1 << rs_breakdown_dim): every metric also measured
     * on each group of tokens of each dimension (a domain, a phase), its
     * rows keyed DIM=VALUE; the whole run's rows are kept. 0 = none. */
    unsigned breakdown;
    /* RS_DEVICE_GPU: softmax and the routers with a device hook run on the
     * OpenMP offload device, with the CPU's results (docs/gpu.md). */
    int device;
} rs_engine_options;

enum { RS_DEVICE_CPU = 0, RS_DEVICE_GPU = 1 };

typedef struct rs_engine_stats {
    int64_t tokens;
    int64_t skipped_tokens;
    int64_t reference_skipped_tokens; /* of the paired reference trace */
    int64_t chunk_tokens;   /* what the memory budget allows */
    int64_t largest_chunk;  /* tokens of the largest chunk read: more when groups must stay whole */
    int64_t chunks;
    int64_t banded_chunks;  /* chunks routed in layer bands read from the file (the budget held them only so) */
    int64_t memory_banded_chunks; /* chunks kept as stored 16-bit logits and widened band by band from memory */
    int band_layers;        /* the fewest layers per band among them */
    int layers;             /* of the trace: a band of them all holds the chunk whole */
    int threads;
    double seconds;         /* the whole run */
    double read_seconds;    /* reading, widening and validating chunks */
    double compute_seconds; /* routing and measuring */
    int64_t resumed_at;     /* the token a checkpoint let the pass start at, 0 = the start */
    int64_t checkpoints;    /* checkpoints saved */
    double checkpoint_seconds; /* spent saving them */
} rs_engine_stats;

typedef struct rs_engine rs_engine;

/* Creates every router and metric accumulator for the trace, checking that
 * the trace has what each needs; adds one run per router to results. The
 * specs, options and results must outlive the engine. */
int rs_engine_create(rs_engine **out, rs_trace *trace, const rs_router_spec *routers, int num_routers,
                     const rs_metric_spec *metrics, int num_metrics, const rs_engine_options *options,
                     rs_results *results, rs_error *err);
/* Most experts router r gives one token (the decisions row width). */
/* Bytes the metric accumulators of the engine's runs keep during its pass
 * (bootstrap blocks included); rs_engine_run refuses, before routing, a
 * pass whose accumulators exceed the memory budget. */
double rs_engine_metric_bytes(const rs_engine *e);
int rs_engine_router_kmax(const rs_engine *e, int router);
/* The results run of router r (the index of its spec). */
int rs_engine_router_run(const rs_engine *e, int router);
/* Whether every router and metric family can save its state (a pass of
 * them can be checkpointed); if not, *why names the first that cannot. */
int rs_engine_checkpointable(const rs_engine *e, char *why, size_t size);
/* Restores the checkpoint options->checkpoint names, if one was saved
 * under its key: returns 1 (rs_engine_run then starts where it was
 * saved), or 0 when there is none, with note->msg saying why a file that
 * exists was not used (empty when there is no file). Returns -1 when the
 * file turned out damaged after the engine's state was partly overwritten:
 * err says why, and the engine must be destroyed and created anew. */
int rs_engine_resume(rs_engine *e, rs_error *note, rs_error *err);
/* The first token rs_engine_run routes: 0, or where a resumed pass was saved. */
int64_t rs_engine_start_token(const rs_engine *e);
/* Streams the whole trace once, then files every metric's rows in results.
 * decisions_out, if not NULL, receives router 0's decisions. */
int rs_engine_run(rs_engine *e, rs_decisions_writer *decisions_out, rs_engine_stats *stats, rs_error *err);
void rs_engine_destroy(rs_engine *e);

/* Blocks of whole sequences (engine_blocks.c): a pass cut at sequence
 * starts, each block routed by an engine of its own, the accumulators
 * merged in block order. Block k of n holds the sequences from
 * rs_block_first_sequence(S, n, k) = k S / n (rounded down) to the next
 * block's first; rs_block_tokens gives its tokens [*t_begin, *t_end). */
int64_t rs_block_first_sequence(int64_t num_sequences, int num_blocks, int block);
int rs_block_tokens(rs_trace *trace, int num_blocks, int block, int64_t *t_begin, int64_t *t_end, rs_error *err);
/* Whether blocks starting at tokens starts[0..n) (after 0) give the whole
 * pass's results: 1, or 0 with *why naming what would change them (a
 * router that carries state from one chunk to the next or cannot save it,
 * token groups that cross a block's start, a metric that cannot save or
 * merge its accumulators, bootstrap); -1 with err on failure. */
int rs_engine_blocks_check(rs_engine *e, const int64_t *starts, int n, char *why, size_t size, rs_error *err);
/* Routes the tokens [t_begin, t_end) of a block only (a fresh engine), and
 * leaves its accumulators unfiled, for rs_engine_blocks_save or _merge. */
int rs_engine_run_block(rs_engine *e, int64_t t_begin, int64_t t_end, rs_engine_stats *stats, rs_error *err);
/* A routed block's accumulators as bytes (*bytes: caller frees). */
int rs_engine_blocks_save(rs_engine *e, char **bytes, size_t *len, rs_error *err);
/* Merges the accumulators of the next block, saved by an engine created
 * alike, after those e holds. */
int rs_engine_blocks_merge(rs_engine *e, const char *bytes, size_t len, rs_error *err);
/* Files every metric's rows once the last block is merged. */
int rs_engine_blocks_file(rs_engine *e, rs_error *err);

/* A run's counts (rs_run_counts) with the arrays they point into. */
typedef struct rs_counted_run {
    rs_run_counts counts;
    int64_t *loads, *transitions;
} rs_counted_run;

/* Routes the whole trace with one router and counts its kept assignments
 * per layer and expert and, with RS_COUNTS_TRANSITIONS in what, its
 * layer-to-layer transitions (the first pass of families that ask with
 * needs_counts; `routesim place` plans from it). */
int rs_engine_count_run(rs_trace *trace, const rs_router_spec *router, const rs_engine_options *options,
                        unsigned what, rs_counted_run *out, rs_error *err);
void rs_counted_run_free(rs_counted_run *c);

#endif
