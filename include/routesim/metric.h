/* Metric family descriptors.
 *
 * A family (e.g. `load`) is one file under metrics/ with one `static const
 * rs_metric_type` and one line in metrics/registry.def; plugins (shared
 * objects, plugin.h) describe theirs the same way. A family owns one
 * accumulator per (router, parameter combination) that covers all layers.
 * update_layer is called in parallel across layers with disjoint per-layer
 * state; merge combines two accumulators over consecutive token ranges so
 * runs can be split across threads and machines; finalize emits rows. */
#ifndef ROUTESIM_METRIC_H
#define ROUTESIM_METRIC_H

#include "routesim/checkpoint.h"
#include "routesim/chunk.h"
#include "routesim/device.h"
#include "routesim/error.h"
#include "routesim/params.h"

typedef enum rs_layer_aggregate {
    RS_AGG_MEAN, /* layer=all is the mean of the per-layer values */
    RS_AGG_SUM,  /* layer=all is their sum */
    RS_AGG_MAX,  /* layer=all is their maximum */
    RS_AGG_SELF, /* the family emits layer=all itself */
} rs_layer_aggregate;

typedef struct rs_metric_output {
    const char *name;       /* "maxvio": results name it "load.maxvio" */
    const char *definition; /* formula, one line */
    unsigned long long uses_params; /* bit i = the family's params[i] shapes this value (goes in `key`) */
    rs_layer_aggregate aggregate;
    /* Figure axes (plots/): label "hit rate" with unit "%" reads "hit rate (%)".
     * NULL label: figures use the results' name (family.output). */
    const char *label;
    const char *unit;  /* NULL = none */
    double unit_scale; /* results' numbers times this are in `unit`, e.g. 100 for "%" of a share; 0 = 1 */
} rs_metric_output;

/* The whole run of one router, counted in a first pass over the trace
 * before the accumulators that ask for it are created (needs_counts):
 * statistics with the future known, e.g. a placement planned on the run's
 * own loads (oracle). */
typedef struct rs_run_counts {
    int L, E;
    const int64_t *loads;       /* [L][E] kept assignments per expert */
    const int64_t *transitions; /* [L-1][E][E] tokens with expert i at layer l and j at l+1; NULL unless asked */
} rs_run_counts;

enum {
    RS_COUNTS_LOADS = 1u << 0,
    RS_COUNTS_TRANSITIONS = 1u << 1,
};

typedef struct rs_metric_setup {
    const rs_trace_info *trace;
    int batch_tokens; /* the run's batch size */
    int kmax;         /* of the router being measured */
    /* RS_METRIC_REFERENCE families: the trace the reference was routed on
     * (the same trace or a paired one) and the reference router's kmax. */
    const rs_trace_info *reference_trace;
    int reference_kmax;
    /* The scoring of the router being measured and of the reference router
     * (chunk.h rs_scoring): a family that reads probabilities reads the
     * chunk's probs (softmax) for RS_SCORING_SOFTMAX, else the scores of the
     * logits normalised to sum to 1 (metrics/router_probs.h). */
    rs_scoring scoring, reference_scoring;
    /* bit i = outputs[i] goes into the results (config "outputs"); 0 = every
     * output. A family may skip the work of the others (rs_metric_wants). */
    unsigned long long outputs;
    /* What needs_counts asked for, counted over the whole run; NULL when
     * the family asked for nothing. */
    const rs_run_counts *counts;
} rs_metric_setup;

static inline int rs_metric_wants(const rs_metric_setup *setup, int output)
{
    return !setup->outputs || ((setup->outputs >> output) & 1u);
}

/* Where finalize sends its numbers. layer = -1 means "all". extra_key (may
 * be NULL) is appended to the parameter key, e.g. "bin=3" for histograms. */
typedef struct rs_metric_sink rs_metric_sink;
RS_API void rs_metric_emit(rs_metric_sink *sink, int output, int layer, const char *extra_key, double value);

/* Family flags. */
enum {
    /* Order matters (caches, sliding windows): update_layer sees each
     * layer's tokens in token order, whole chunks at a time (never token
     * slices), and merge is only asked at sequence boundaries. A family
     * that looks ahead (Belady, segment caches) buffers a sequence's
     * decisions itself until the sequence ends; a chunk's seq_offsets say
     * where it does. */
    RS_METRIC_SEQUENTIAL = 1u << 0,
    /* Compares each token with a reference run (agreement): update_layer
     * gets the reference's chunk and decisions; runs without a reference
     * make the family's create fail with a message saying how to name one. */
    RS_METRIC_REFERENCE = 1u << 1,
};

/* The reference a run is compared with: the same trace under another
 * router (chunk is the run's own chunk), or a paired trace under a router
 * (chunk holds the paired trace's same tokens). NULL for other families. */
typedef struct rs_metric_ref {
    const rs_chunk *chunk;
    const rs_decisions *dec;
} rs_metric_ref;

typedef struct rs_metric_type {
    const char *name;
    const char *summary;
    const char *source;
    const rs_param_def *params;
    int num_params;
    const rs_metric_output *outputs;
    int num_outputs;
    unsigned needs; /* rs_needs (chunk.h) */
    unsigned flags; /* RS_METRIC_* */

    int (*create)(void **acc, const rs_params *params, const rs_metric_setup *setup, rs_error *err);
    /* One layer of one chunk with the router's decisions (rows of kmax). */
    void (*update_layer)(void *acc, const rs_chunk *chunk, int layer, const rs_decisions *dec,
                         const rs_metric_ref *ref);
    /* Optional: statistics that span layers, after every layer of the
     * chunk; serial within the accumulator (different accumulators run in
     * parallel). */
    void (*update_chunk)(void *acc, const rs_chunk *chunk, const rs_decisions *dec, const rs_metric_ref *ref);
    /* acc covers tokens [a, b), other covers [b, c); afterwards acc covers [a, c). */
    int (*merge)(void *acc, const void *other, rs_error *err);
    /* Optional: closes what waits for tokens beyond acc's range (a batch
     * that spans its end), as if the trace ended there, so acc can be
     * merged with any other in any order: bootstrap resamples merge blocks
     * of whole sequences drawn with replacement. */
    void (*seal)(void *acc);
    void (*finalize)(const void *acc, rs_metric_sink *sink);
    void (*destroy)(void *acc);
    /* Optional: acc has taken its last tokens (a finished bootstrap block,
     * or a sealed copy of one): frees what only further updates need,
     * keeping what merge reads of `other`, so that the many accumulators a
     * bootstrap keeps stay small. acc is afterwards only merged into others
     * (as `other`) and destroyed. Leaves acc whole when it ends inside a
     * sequence. */
    void (*compact)(void *acc);
    /* Optional: saves or restores everything acc carries between chunks
     * (routesim/checkpoint.h), so a pass can resume from a checkpoint. A
     * pass that measures a family without it runs without checkpoints. */
    void (*checkpoint)(void *acc, rs_state_io *io);
    /* Optional: what of the whole run (RS_COUNTS_* bits) create needs in
     * setup->counts with these parameters; 0 = nothing. The engine then
     * routes the trace once more before the pass, with the same router, to
     * count it (a resumed pass counts again). */
    unsigned (*needs_counts)(const rs_params *params);
    /* Optional (--device gpu, docs/gpu.md): adds every (token, layer) of a
     * whole chunk to acc from decisions in device memory (dec: [n, L,
     * kmax], routesim/device.h), as update_layer would, with exact,
     * order-independent sums (integer counts), so the results equal the
     * CPU's. Observed rows are those of valid tokens (chunk->valid, NULL =
     * all). Returns 0, or nonzero having added nothing (the engine then
     * measures the chunk on the CPU from the decisions); the engine asks
     * once with an empty chunk (n = 0), which must change nothing, whether
     * the family takes this accumulator's configuration (acc may be NULL
     * then: answer for any). Used for metrics
     * of a router routed on the device without a capacity stage, outside
     * breakdowns and reference comparisons. */
    int (*update_device)(void *acc, const rs_device_chunk *chunk, const rs_decisions *dec);
} rs_metric_type;

/* Registry: built-ins, then plugins in load order. */
RS_API int rs_metric_count(void);
RS_API const rs_metric_type *rs_metric_at(int index);
RS_API const rs_metric_type *rs_metric_find(const char *name);
/* Adds a plugin's family (plugin.h). Fails on a name already taken or an
 * incomplete descriptor. */
RS_API int rs_metric_register(const rs_metric_type *type, rs_error *err);

#endif
