/* What routers and metrics see: the trace's fixed facts (rs_trace_info) and
 * one block of consecutive tokens (rs_chunk), as plain arrays.
 *
 * Layouts are the trace's own: token-major, then layer, then expert, so
 * logits of token t (0-based inside the chunk) at layer l start at
 * logits[(t * L + l) * E]. */
#ifndef ROUTESIM_CHUNK_H
#define ROUTESIM_CHUNK_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct rs_trace_info {
    const char *path;
    int64_t num_tokens;    /* T */
    int64_t num_sequences; /* S */
    int num_layers;        /* L */
    int num_experts;       /* E */
    int recorded_k;        /* K of /router/topk_ids, 0 if absent */
    const char *unit;      /* "token" or "query" */
    const char *model;     /* "" if absent */
    const char *scoring;   /* "" if absent */
    int top_k;             /* the model's own k, 0 if absent */
    int norm_topk;         /* -1 if absent */
    int has_logits;
    int has_topk_weights;
    int has_token_ids;
    int has_phase;
    int has_bias;
    int has_domain;
    /* unit = query outcomes (docs/trace-format.md): */
    int has_quality;               /* /outcome/quality [T, E] */
    int has_cost;                  /* /outcome/cost, [T, E] or [E] (read as [n, E] either way) */
    int64_t num_unscored;          /* queries whose quality is NaN for every model */
    const char *const *expert_names; /* [E] root attribute expert_names, or NULL */
    /* Grouped routing (DeepSeek-V2/V3), root attributes n_group, topk_group
     * and routed_scaling_factor: 0 where absent. */
    int n_group, topk_group;
    double routed_scaling_factor;
} rs_trace_info;

/* What a router or metric reads from the chunk; the engine checks the trace
 * has it and computes derived arrays only when someone needs them. */
enum rs_needs {
    RS_NEEDS_LOGITS = 1u << 0,
    RS_NEEDS_PROBS = 1u << 1, /* softmax + log-sum-exp of the logits (implies logits) */
    RS_NEEDS_TOKEN_IDS = 1u << 2,
    RS_NEEDS_BIAS = 1u << 3,
    RS_NEEDS_TOPK = 1u << 4, /* recorded /router/topk_ids */
    RS_WANTS_PROBS = 1u << 5, /* softmax when the trace has logits; fine without */
    RS_NEEDS_OUTCOME = 1u << 6, /* /outcome/quality (and /outcome/cost when present): chunk quality, cost */
    RS_WANTS_OUTCOME = 1u << 7, /* outcomes when the trace has them; fine without */
    RS_WANTS_TOKEN_IDS = 1u << 8, /* token ids when the trace has them; fine without */
    RS_WANTS_PHASE = 1u << 9,     /* /tokens/phase (chunk phase) when the trace has it; fine without */
};

/* A router's scoring function: what its scores are, and so the probability
 * distribution metrics read for it (docs/metrics.md, "Router
 * probabilities"): softmax(z), or the scores normalised to sum to 1. */
typedef enum rs_scoring {
    RS_SCORING_SOFTMAX = 0,    /* p = softmax(z): the chunk's probs */
    RS_SCORING_SIGMOID,        /* s = sigmoid(z) (DeepSeek-V3, Llama 4) */
    RS_SCORING_SQRT_SOFTPLUS,  /* s = sqrt(softplus(z)) (DeepSeek-V4) */
} rs_scoring;

/* The scoring a trace's root attribute `scoring` names ("" or unknown: softmax). */
static inline rs_scoring rs_scoring_of_name(const char *name)
{
    if (name && strcmp(name, "sigmoid") == 0)
        return RS_SCORING_SIGMOID;
    if (name && strcmp(name, "sqrt_softplus") == 0)
        return RS_SCORING_SQRT_SOFTPLUS;
    return RS_SCORING_SOFTMAX;
}

/* Token groups for batch-level rules and the capacity stage. */
typedef enum rs_group {
    RS_GROUP_NONE,     /* per token */
    RS_GROUP_SEQUENCE, /* whole sequences */
    RS_GROUP_BATCH,    /* batch_tokens consecutive tokens, counted from the trace start */
    RS_GROUP_STEP,     /* decode steps: sequences batched greedily up to batch_tokens tokens move
                          together, step i holding the i-th token of each sequence of the batch */
    RS_GROUP_COUNT
} rs_group;

/* The groups of one mode within a chunk: group g holds the chunk-relative
 * tokens tokens[start[g] .. start[g+1]) in token order. Chunks end on group
 * boundaries, so a chunk holds whole groups. */
typedef struct rs_groups {
    int count;
    const int32_t *start;  /* count + 1 */
    const int32_t *tokens; /* start[count] entries */
} rs_groups;

typedef struct rs_chunk {
    int64_t t0; /* global index of the first token */
    int n;      /* tokens in this chunk */
    /* L: layers each token's rows hold. The model's layer count, except in
     * a layer band view: a chunk too large for the memory budget is routed
     * a few layers at a time, and route_layer / update_layer then see rows
     * of the band's L layers only (layer arguments stay the model's, and
     * rs_chunk_logits, rs_decision_row index them correctly). Read only the
     * layer you are given; the model's count is in rs_trace_info. */
    int L, E;

    /* float32 logits: token t (0-based in the chunk) at layer l is the row
     * rs_chunk_logits(c, t, l) of E values. NULL when the trace has none,
     * in prepare_chunk for 16-bit traces (widened layer by layer as they
     * are routed), and in update_chunk of a chunk routed in layer bands. */
    const float *logits;
    /* Softmax statistics of the logits, for the layer being routed or
     * measured (route_layer / update_layer): probabilities (rs_chunk_probs),
     * log-sum-exp and expected logit sum_e p_e z_e (rs_chunk_stat). NULL
     * unless a router or metric asked for them (RS_NEEDS_PROBS), and NULL in
     * update_chunk. The engine computes them per layer for the tokens in
     * view, into scratch space: hence the strides. lse and mean_logit
     * include the row's maximum; log_norm (lse - max_e z_e) and entropy
     * (-sum_e p_e log p_e, nats) are computed without it, so they stay
     * exact where the maximum dwarfs them (constant logits of 1e20). */
    const float *probs;
    const double *lse;
    const double *mean_logit;
    const double *log_norm;
    const double *entropy;
    size_t stat_token_stride, stat_layer_stride;
    /* 1 = the token's logits are finite; NULL = every token is valid. Invalid
     * tokens (0: skipped by request) get no experts. In what a metric sees,
     * RS_TOKEN_OUTSIDE marks a token the view leaves out (a breakdown
     * measures the other groups with it): not data at all, where an invalid
     * token is missing data. Read it with rs_row_observed and rs_token_in_view. */
    const uint8_t *valid;

    const int32_t *token_ids; /* [n] or NULL */
    const uint8_t *phase;     /* [n] or NULL */

    /* Sequences overlapping the chunk: seq_offsets[0..num_seq] are the global
     * token offsets of sequences first_seq .. first_seq+num_seq, so the
     * sequence of global token g is the s with seq_offsets[s] <= g < seq_offsets[s+1]. */
    int64_t first_seq;
    int num_seq;
    const int64_t *seq_offsets;
    const int32_t *seq_of_token; /* [n] index into the window above (0..num_seq-1) */
    const int32_t *domain;       /* [num_seq] or NULL */

    /* Recorded top-k [n, L, K] with -1 padding (rows of the band's layers
     * in a band view, NULL in prepare_chunk of a banded chunk); weights may
     * be NULL. */
    int recorded_k;
    const int32_t *recorded_ids;
    const float *recorded_weights;

    const float *bias; /* [L, E] selection bias, or NULL */

    /* groups[mode] for each mode a router or the capacity stage asked for,
     * else NULL; NULL in views of part of a chunk. */
    const rs_groups *groups[RS_GROUP_COUNT];
    int batch_tokens; /* the run's batch size */

    /* unit = query: each model's recorded quality [n, E] (NaN = not
     * evaluated) and cost [n, E] (a per-model cost repeated per query); NULL
     * unless someone asked for outcomes (RS_NEEDS_OUTCOME / RS_WANTS_OUTCOME)
     * and the trace has them. */
    const float *quality;
    const float *cost;
} rs_chunk;

static inline const float *rs_chunk_logits(const rs_chunk *c, int t, int l)
{
    return c->logits + ((size_t)t * (size_t)c->L + (size_t)l) * (size_t)c->E;
}

/* Index of (t, l) into lse, mean_logit, log_norm and entropy; times E into probs. */
static inline size_t rs_chunk_stat(const rs_chunk *c, int t, int l)
{
    return (size_t)t * c->stat_token_stride + (size_t)l * c->stat_layer_stride;
}

static inline const float *rs_chunk_probs(const rs_chunk *c, int t, int l)
{
    return c->probs + rs_chunk_stat(c, t, l) * (size_t)c->E;
}

/* One router's decisions for a chunk: [n, L, kmax], -1 padding, weight 0
 * there; token t at layer l starts at index ((t * L) + l) * kmax. */
typedef struct rs_decisions {
    int kmax;
    int32_t *ids;
    float *weights;
    /* 1 where the capacity stage dropped a requested assignment (its id is
     * then -1); NULL when no capacity stage ran. Requested = kept + dropped. */
    uint8_t *dropped;
} rs_decisions;

/* unit = query: ids[0] of a row set to RS_ID_TRAINING marks a query the
 * router fitted itself on (the training split of a domain_prior score);
 * outcome metrics leave it out. Other metrics see a row without experts. */
#define RS_ID_TRAINING (-2)

/* ids[0] of a row set to RS_ID_UNOBSERVED (the rest -1) marks a (token,
 * layer) not observed: a token skipped for its non-finite logits (the
 * engine marks its rows), or one the trace recorded nothing for (replay of
 * a /router/topk_ids row of -1 only). It is missing data, not a token that
 * chose no expert: every metric leaves it out (rs_row_observed). */
#define RS_ID_UNOBSERVED (-3)

static inline size_t rs_decision_row(const rs_chunk *c, const rs_decisions *d, int t, int l)
{
    return ((size_t)t * (size_t)c->L + (size_t)l) * (size_t)d->kmax;
}

/* valid[t] of a token outside a metric's view: a breakdown's group
 * measures only its own tokens (docs/metrics.md, "Breakdowns"). */
#define RS_TOKEN_OUTSIDE 2

/* 0 when the view leaves token t out; a token in view may still be
 * unobserved (what counts of skipped tokens count). */
static inline int rs_token_in_view(const rs_chunk *c, int t)
{
    return !c->valid || c->valid[t] != RS_TOKEN_OUTSIDE;
}

/* 1 when token t at layer l was observed: its logits were valid (not
 * skipped) and its row is not marked RS_ID_UNOBSERVED. Metrics count only
 * observed (token, layer)s, in numerators and denominators alike, and read
 * the observed tokens of a sequence as consecutive (docs/metrics.md). */
static inline int rs_row_observed(const rs_chunk *c, const rs_decisions *d, int t, int l)
{
    if (c->valid && c->valid[t] != 1)
        return 0;
    return d->kmax <= 0 || d->ids[rs_decision_row(c, d, t, l)] != RS_ID_UNOBSERVED;
}

#endif
