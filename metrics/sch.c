/* sch: Segment Cache best Hit rate (Liang et al., arXiv:2505.16056;
 * reference ljcleo/moe-lrc src/41_sch_calc.py calc_fsf, authoritative). Per
 * layer a cache of C = rho k experts, emptied at every sequence start, that
 * on a miss evicts the expert used least in the next m-1 tokens (then the
 * least recent); the value is the mean over sequences of the sequence's hit
 * rate. layer=all is one cache of rho k L slots shared by all layers, a
 * token's accesses at every layer forming one batch (moe-lrc's model-level
 * run over ids layer * E + expert). The rule and its equivalence with
 * calc_fsf are in sch_cache.h. */
#include <math.h>
#include <stdlib.h>

#include "metrics/nominal_k.h"
#include "metrics/sch_cache.h"
#include "routesim/metric.h"

enum { OUT_SCH, OUT_SLOTS };
enum { PARAM_M, PARAM_RHO, PARAM_K };

static const rs_param_def sch_params[] = {
    [PARAM_M] = {"m", RS_PARAM_INT, "16", 1, 1 << 16, NULL,
                 "segment length: a miss looks at the expert uses of the next m-1 tokens"},
    [PARAM_RHO] = {"rho", RS_PARAM_FLOAT, "2", 0, 1e6, NULL,
                   "cache ratio: C = rho k slots per layer (rho k L for layer=all); rho k must be whole"},
    [PARAM_K] = {"k", RS_PARAM_INT, NULL, 1, 1 << 16, NULL,
                 "k of C = rho k (unset: the router's k; routers whose rows can hold every expert use the "
                 "trace's top_k)"},
};

#define SCH_KEY ((1ull << PARAM_M) | (1ull << PARAM_RHO) | (1ull << PARAM_K))

static const rs_metric_output sch_outputs[] = {
    [OUT_SCH] = {"sch",
                 "mean over sequences of the hit rate of a rho k-slot cache evicting the expert least used in the next "
                 "m-1 tokens (moe-lrc calc_fsf); layer=all: one rho k L-slot cache for all layers",
                 SCH_KEY, RS_AGG_SELF, .label = "SCH hit rate", .unit = "%", .unit_scale = 100},
    [OUT_SLOTS] = {"slots", "the cache size C = rho k (layer=all: rho k L), capped at the experts it serves",
                   (1ull << PARAM_RHO) | (1ull << PARAM_K), RS_AGG_SELF, .label = "cache slots"},
};

typedef struct sch_acc {
    int L, E, kmax;
    rs_sch_cache *layers;
    rs_sch_cache model;
} sch_acc;

static void sch_destroy(void *p)
{
    sch_acc *a = p;
    if (!a)
        return;
    for (int l = 0; a->layers && l < a->L; l++)
        rs_sch_cache_free(&a->layers[l]);
    free(a->layers);
    rs_sch_cache_free(&a->model);
    free(a);
}

/* k of C = rho k: the parameter, else the router's nominal k (nominal_k.h). */
static int resolve_k(const rs_params *params, const rs_metric_setup *setup)
{
    if (rs_param_is_set(params, "k"))
        return (int)rs_param_int(params, "k");
    return rs_metric_nominal_k(setup);
}

static int sch_create(void **out, const rs_params *params, const rs_metric_setup *setup, rs_error *err)
{
    const rs_trace_info *tr = setup->trace;
    const int L = tr->num_layers, E = tr->num_experts;
    const int k = resolve_k(params, setup);
    const double rho = rs_param_float(params, "rho");
    const double want = rho * (double)k;
    const double slots = floor(want + 0.5);
    RS_CHECK(k >= 1, err, "metric sch: the router selects no expert (k = %d); set parameter k", k);
    RS_CHECK(fabs(want - slots) <= 1e-9 * (want > 1 ? want : 1), err,
             "metric sch: parameter rho=%g gives rho * k = %g slots with k = %d; rho k must be a whole number", rho,
             want, k);
    RS_CHECK(slots >= 1, err, "metric sch: parameter rho=%g gives no cache slot (rho * k = %g with k = %d)", rho, want,
             k);
    const int64_t C = (int64_t)slots, model_ids = (int64_t)E * L;
    RS_CHECK(model_ids <= 1 << 30 && (int64_t)setup->kmax * L <= 1 << 30, err,
             "metric sch: %d layers x %d experts is too large for the shared cache", L, E);
    const int m = (int)rs_param_int(params, "m");
    sch_acc *a = calloc(1, sizeof *a);
    RS_CHECK(a, err, "metric sch: out of memory");
    a->L = L;
    a->E = E;
    a->kmax = setup->kmax;
    a->layers = calloc((size_t)L, sizeof *a->layers);
    int ok = a->layers != NULL;
    for (int l = 0; ok && l < L; l++)
        ok = rs_sch_cache_init(&a->layers[l], E, a->kmax, (int)(C < E ? C : E), m, tr->num_tokens) == 0;
    if (ok) {
        int64_t model_slots = C * L < model_ids ? C * L : model_ids;
        ok = rs_sch_cache_init(&a->model, (int)model_ids, a->kmax * L, (int)model_slots, m, tr->num_tokens) == 0;
    }
    if (!ok) {
        sch_destroy(a);
        return rs_fail(err, "metric sch: out of memory");
    }
    *out = a;
    return 0;
}

/* Skipped tokens (invalid logits) are absent from the sequence: they take
 * no place in the look-ahead. */
static void sch_update_layer(void *p, const rs_chunk *c, int layer, const rs_decisions *dec, const rs_metric_ref *ref)
{
    (void)ref;
    sch_acc *a = p;
    rs_sch_feed(&a->layers[layer], c, dec, layer);
}

/* The shared cache: a token's batch is its ids at every layer, in layer
 * order, as id layer * E + expert. */
static void sch_update_chunk(void *p, const rs_chunk *c, const rs_decisions *dec, const rs_metric_ref *ref)
{
    (void)ref;
    sch_acc *a = p;
    rs_sch_feed(&a->model, c, dec, -1);
}

static void sch_compact(void *p)
{
    sch_acc *a = p;
    for (int l = 0; l < a->L; l++)
        rs_sch_cache_compact(&a->layers[l]);
    rs_sch_cache_compact(&a->model);
}

static int sch_merge(void *p, const void *q, rs_error *err)
{
    sch_acc *a = p;
    const sch_acc *b = q;
    RS_CHECK(a->L == b->L && a->E == b->E && a->kmax == b->kmax && a->model.slots == b->model.slots &&
                 a->model.lookahead == b->model.lookahead && a->model.ring_rows == b->model.ring_rows,
             err, "metric sch: merging unlike accumulators");
    for (int l = 0; l < a->L; l++)
        RS_CHECK(rs_sch_cache_merge(&a->layers[l], &b->layers[l]) == 0, err,
                 "metric sch: merge inside a sequence (ranges must split at sequence boundaries)");
    RS_CHECK(rs_sch_cache_merge(&a->model, &b->model) == 0, err,
             "metric sch: merge inside a sequence (ranges must split at sequence boundaries)");
    return 0;
}

static void sch_finalize(const void *p, rs_metric_sink *sink)
{
    const sch_acc *a = p;
    for (int l = 0; l < a->L; l++) {
        rs_metric_emit(sink, OUT_SCH, l, NULL, rs_sch_cache_value(&a->layers[l]));
        rs_metric_emit(sink, OUT_SLOTS, l, NULL, (double)a->layers[l].slots);
    }
    rs_metric_emit(sink, OUT_SCH, -1, NULL, rs_sch_cache_value(&a->model));
    rs_metric_emit(sink, OUT_SLOTS, -1, NULL, (double)a->model.slots);
}

static void sch_checkpoint(void *p, rs_state_io *io)
{
    sch_acc *a = p;
    for (int l = 0; l < a->L; l++)
        rs_sch_cache_checkpoint(&a->layers[l], io);
    rs_sch_cache_checkpoint(&a->model, io);
}

static const rs_metric_type sch_type = {
    .name = "sch",
    .summary = "local routing consistency: hit rate of a per-sequence expert cache that looks m-1 tokens ahead (SCH)",
    .source = "Liang et al. arXiv:2505.16056; ljcleo/moe-lrc src/41_sch_calc.py (calc_fsf)",
    .params = sch_params,
    .num_params = sizeof sch_params / sizeof sch_params[0],
    .outputs = sch_outputs,
    .num_outputs = sizeof sch_outputs / sizeof sch_outputs[0],
    .needs = 0,
    .flags = RS_METRIC_SEQUENTIAL,
    .create = sch_create,
    .update_layer = sch_update_layer,
    .update_chunk = sch_update_chunk,
    .merge = sch_merge,
    .compact = sch_compact,
    .finalize = sch_finalize,
    .destroy = sch_destroy,
    .checkpoint = sch_checkpoint,
};

const rs_metric_type *const rs_metric_sch = &sch_type;
