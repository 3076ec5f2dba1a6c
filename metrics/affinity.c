/* affinity: how a token's experts at one layer predict its experts at the
 * next (layer_affinity, affinity_predictability) and which experts a layer
 * picks together (coactivation); docs/metrics.md#locality-and-affinity.
 *
 * Transition counts A_l[i][j] need two layers of the same token, so they
 * are counted in update_chunk, after every layer of the chunk is routed;
 * co-activation counts need one layer and are counted in update_layer. All
 * counts are integers: values do not depend on chunking or merge order. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/layer_transitions.h"
#include "routesim/metric.h"
#include "routesim/router.h"

enum { OUT_LAYER_AFFINITY, OUT_AFFINITY_PREDICTABILITY, OUT_COACTIVATION_ENTROPY, OUT_COACTIVATION };
enum { PARAM_SUCCESSORS, PARAM_MATRIX };

/* matrix=1 emits E (E - 1) / 2 rows per layer; beyond this the results
 * table is too large to be useful (and slow to file). */
enum { MATRIX_MAX_EXPERTS = 32 };

static const rs_param_def affinity_params[] = {
    [PARAM_SUCCESSORS] = {"successors", RS_PARAM_INT, NULL, 1, 1024, NULL,
                          "successors per expert for affinity_predictability (default: the router's kmax)"},
    [PARAM_MATRIX] = {"matrix", RS_PARAM_BOOL, "0", 0, 1, NULL,
                      "also emit the coactivation matrix (one row per expert pair and layer; E <= 32)"},
};

static const rs_metric_output affinity_outputs[] = {
    [OUT_LAYER_AFFINITY] = {"layer_affinity",
                            "H(expert at l+1 | expert at l) / log E over all (i in S_t^l, j in S_t^l+1) pairs; "
                            "reported at layer l",
                            0, RS_AGG_MEAN, .label = "H(next-layer expert | expert) / log E"},
    [OUT_AFFINITY_PREDICTABILITY] = {"affinity_predictability",
                                     "share of (i, j) transitions l -> l+1 whose j is among the `successors` most "
                                     "frequent successors of i (ExFlow); reported at layer l",
                                     1ull << PARAM_SUCCESSORS, RS_AGG_MEAN, .label = "successor predictability",
                                     .unit = "%", .unit_scale = 100},
    [OUT_COACTIVATION_ENTROPY] = {"coactivation_entropy",
                                  "entropy of the distribution of expert pairs chosen together / log(E (E-1) / 2) "
                                  "(1 = every pair equally often)",
                                  0, RS_AGG_MEAN, .label = "co-activation entropy (1 = uniform)"},
    [OUT_COACTIVATION] = {"coactivation",
                          "share of tokens whose S_t holds both i and j (key i=..;j=.., i < j; with matrix=1)", 0,
                          RS_AGG_MEAN, .label = NULL},
};

typedef struct affinity_acc {
    int L, E;
    int successors;
    int matrix;
    size_t pairs;         /* E (E - 1) / 2 */
    int64_t *transitions; /* [L - 1][E][E] */
    int64_t *coactive;    /* [L][pairs]: pair (i < j) at tri_index(i, j) */
    int64_t *tokens;      /* [L] valid tokens */
} affinity_acc;

static void affinity_destroy(void *p)
{
    affinity_acc *a = p;
    if (a) {
        free(a->transitions);
        free(a->coactive);
        free(a->tokens);
    }
    free(a);
}

static int affinity_create(void **out, const rs_params *params, const rs_metric_setup *setup, rs_error *err)
{
    const int E = setup->trace->num_experts, L = setup->trace->num_layers;
    int matrix = rs_param_bool(params, "matrix");
    if (matrix && E > MATRIX_MAX_EXPERTS)
        return rs_fail(err,
                       "metric affinity: parameter matrix=1 emits E (E-1)/2 rows per layer and is limited to "
                       "E <= %d (the trace has %d experts); coactivation_entropy summarises the matrix",
                       MATRIX_MAX_EXPERTS, E);
    affinity_acc *a = calloc(1, sizeof *a);
    RS_CHECK(a, err, "metric affinity: out of memory");
    a->L = L;
    a->E = E;
    a->matrix = matrix;
    a->successors = rs_param_is_set(params, "successors") ? (int)rs_param_int(params, "successors")
                                                          : (setup->kmax > 0 ? setup->kmax : 1);
    a->pairs = (size_t)E * (size_t)(E - 1) / 2;
    size_t transitions = L > 1 ? (size_t)(L - 1) * (size_t)E * (size_t)E : 0;
    a->transitions = calloc(transitions ? transitions : 1, sizeof *a->transitions);
    a->coactive = calloc(a->pairs ? (size_t)L * a->pairs : 1, sizeof *a->coactive);
    a->tokens = calloc((size_t)L, sizeof *a->tokens);
    if (!a->transitions || !a->coactive || !a->tokens) {
        affinity_destroy(a);
        return rs_fail(err, "metric affinity: out of memory (%zu transition and %zu pair counters)", transitions,
                       (size_t)L * a->pairs);
    }
    *out = a;
    return 0;
}

/* Row-major index of pair (i, j), i < j, in the upper triangle of E x E. */
static inline size_t tri_index(int i, int j, int E)
{
    return (size_t)i * (size_t)(2 * E - i - 1) / 2 + (size_t)(j - i - 1);
}

static void affinity_update_layer(void *p, const rs_chunk *c, int layer, const rs_decisions *dec,
                                  const rs_metric_ref *ref)
{
    (void)ref;
    affinity_acc *a = p;
    int64_t *pairs = a->coactive + (size_t)layer * a->pairs;
    const int K = dec->kmax, E = a->E;
    int64_t tokens = 0;
    for (int t = 0; t < c->n; t++) {
        if (!rs_row_observed(c, dec, t, layer))
            continue;
        tokens++;
        const int32_t *ids = dec->ids + rs_decision_row(c, dec, t, layer);
        for (int x = 0; x < K; x++) {
            if (ids[x] < 0)
                continue;
            for (int y = x + 1; y < K; y++) {
                if (ids[y] < 0 || ids[y] == ids[x])
                    continue;
                int i = ids[x] < ids[y] ? ids[x] : ids[y], j = ids[x] < ids[y] ? ids[y] : ids[x];
                pairs[tri_index(i, j, E)]++;
            }
        }
    }
    a->tokens[layer] += tokens;
}

/* Transitions between consecutive layers: all pairs of a token's experts. */
static void affinity_update_chunk(void *p, const rs_chunk *c, const rs_decisions *dec, const rs_metric_ref *ref)
{
    (void)ref;
    affinity_acc *a = p;
    const int E = a->E;
    for (int l = 0; l + 1 < a->L; l++) { /* layer outer: one E x E table stays in cache */
        int64_t *A = a->transitions + (size_t)l * (size_t)E * (size_t)E;
        rs_count_layer_transitions(A, E, c, dec, l);
    }
}

static int affinity_merge(void *p, const void *q, rs_error *err)
{
    affinity_acc *a = p;
    const affinity_acc *b = q;
    RS_CHECK(a->L == b->L && a->E == b->E, err, "metric affinity: merging unlike accumulators");
    size_t transitions = a->L > 1 ? (size_t)(a->L - 1) * (size_t)a->E * (size_t)a->E : 0;
    for (size_t i = 0; i < transitions; i++)
        a->transitions[i] += b->transitions[i];
    for (size_t i = 0; i < (size_t)a->L * a->pairs; i++)
        a->coactive[i] += b->coactive[i];
    for (int l = 0; l < a->L; l++)
        a->tokens[l] += b->tokens[l];
    return 0;
}

/* A normalised entropy is at most 1; uniform counts can round to 1 + 2^-52. */
static double unit_cap(double v) { return v > 1.0 ? 1.0 : v; }

static int descending(const void *x, const void *y)
{
    int64_t u = *(const int64_t *)x, v = *(const int64_t *)y;
    return (u < v) - (u > v);
}

/* Conditional entropy H(J | I) / log E and the share of transitions the
 * `successors` most frequent successors of each i cover. */
static void transition_stats(const int64_t *A, int E, int successors, int64_t *sorted, double *entropy,
                             double *predictability)
{
    int64_t total = 0, covered = 0;
    double h = 0.0;
    for (int i = 0; i < E; i++) {
        const int64_t *row = A + (size_t)i * (size_t)E;
        int64_t row_total = 0;
        for (int j = 0; j < E; j++)
            row_total += row[j];
        if (row_total == 0)
            continue;
        total += row_total;
        for (int j = 0; j < E; j++)
            if (row[j] > 0) /* -P(i,j) log P(j|i), scaled by the total below */
                h += (double)row[j] * log((double)row_total / (double)row[j]);
        memcpy(sorted, row, (size_t)E * sizeof *sorted);
        qsort(sorted, (size_t)E, sizeof *sorted, descending);
        for (int j = 0; j < successors && j < E; j++)
            covered += sorted[j];
    }
    *entropy = total > 0 && E > 1 ? unit_cap(h / (double)total / log((double)E)) : NAN;
    *predictability = total > 0 ? (double)covered / (double)total : NAN;
}

static void affinity_finalize(const void *p, rs_metric_sink *sink)
{
    const affinity_acc *a = p;
    const int E = a->E;
    int64_t *sorted = malloc((size_t)E * sizeof *sorted);
    for (int l = 0; l + 1 < a->L && sorted; l++) {
        double h, covered;
        transition_stats(a->transitions + (size_t)l * (size_t)E * (size_t)E, E, a->successors, sorted, &h,
                         &covered);
        rs_metric_emit(sink, OUT_LAYER_AFFINITY, l, NULL, h);
        rs_metric_emit(sink, OUT_AFFINITY_PREDICTABILITY, l, NULL, covered);
    }
    free(sorted);
    for (int l = 0; l < a->L; l++) {
        const int64_t *pairs = a->coactive + (size_t)l * a->pairs;
        int64_t total = 0;
        for (size_t x = 0; x < a->pairs; x++)
            total += pairs[x];
        double h = 0.0;
        for (size_t x = 0; x < a->pairs; x++)
            if (pairs[x] > 0)
                h += (double)pairs[x] * log((double)total / (double)pairs[x]);
        rs_metric_emit(sink, OUT_COACTIVATION_ENTROPY, l, NULL,
                       total > 0 && a->pairs > 1 ? unit_cap(h / (double)total / log((double)a->pairs)) : NAN);
    }
    if (!a->matrix)
        return;
    char key[64];
    for (int i = 0; i < E; i++) {
        for (int j = i + 1; j < E; j++) {
            snprintf(key, sizeof key, "i=%d;j=%d", i, j);
            for (int l = 0; l < a->L; l++) {
                int64_t n = a->tokens[l];
                rs_metric_emit(sink, OUT_COACTIVATION, l, key,
                               n > 0 ? (double)a->coactive[(size_t)l * a->pairs + tri_index(i, j, E)] / (double)n
                                     : NAN);
            }
        }
    }
}

static void affinity_checkpoint(void *p, rs_state_io *io)
{
    affinity_acc *a = p;
    RS_STATE_ARRAY(io, a->transitions, a->L > 1 ? (size_t)(a->L - 1) * (size_t)a->E * (size_t)a->E : 0);
    RS_STATE_ARRAY(io, a->coactive, (size_t)a->L * a->pairs);
    RS_STATE_ARRAY(io, a->tokens, a->L);
}

static const rs_metric_type affinity_type = {
    .name = "affinity",
    .summary = "layer-to-layer expert affinity (conditional entropy, predictability) and expert co-activation",
    .source = "ExFlow arXiv:2401.08383 (inter-layer expert affinity P(E_{l+1} | E_l)); metrics.md",
    .params = affinity_params,
    .num_params = sizeof affinity_params / sizeof affinity_params[0],
    .outputs = affinity_outputs,
    .num_outputs = sizeof affinity_outputs / sizeof affinity_outputs[0],
    .needs = 0, /* decisions only */
    .create = affinity_create,
    .update_layer = affinity_update_layer,
    .update_chunk = affinity_update_chunk,
    .merge = affinity_merge,
    .finalize = affinity_finalize,
    .destroy = affinity_destroy,
    .checkpoint = affinity_checkpoint,
};

const rs_metric_type *const rs_metric_affinity = &affinity_type;
