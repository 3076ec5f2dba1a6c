/* Counting a run's loads and transitions (run_counts.h). Integer counts:
 * the same for any chunking, thread count and merge order. */
#include <stdlib.h>
#include <string.h>

#include "metrics/layer_transitions.h"
#include "metrics/run_counts.h"
#include "routesim/router.h"

enum { PARAM_WHAT };

static const rs_param_def counts_params[] = {
    [PARAM_WHAT] = {"what", RS_PARAM_INT, "1", 1, 3, NULL,
                    "RS_COUNTS_* bits: 1 loads, 2 transitions (loads are always counted)"},
};

static const rs_metric_output counts_outputs[] = {
    {"assignments", "kept assignments of the layer", 0, RS_AGG_SUM, .label = "assignments"},
};

typedef struct counts_acc {
    rs_run_counts view;
    int64_t *loads;       /* [L][E] */
    int64_t *transitions; /* [L-1][E][E] or NULL */
} counts_acc;

static size_t transition_cells(const counts_acc *a)
{
    return a->transitions && a->view.L > 1 ? (size_t)(a->view.L - 1) * (size_t)a->view.E * (size_t)a->view.E : 0;
}

static void counts_destroy(void *p)
{
    counts_acc *a = p;
    if (a) {
        free(a->loads);
        free(a->transitions);
    }
    free(a);
}

static int counts_create(void **out, const rs_params *params, const rs_metric_setup *setup, rs_error *err)
{
    const int L = setup->trace->num_layers, E = setup->trace->num_experts;
    const unsigned what = (unsigned)rs_param_int(params, "what");
    counts_acc *a = calloc(1, sizeof *a);
    RS_CHECK(a, err, "counting the run: out of memory");
    a->view.L = L;
    a->view.E = E;
    a->loads = calloc((size_t)L * (size_t)E, sizeof *a->loads);
    int ok = a->loads != NULL;
    if (ok && (what & RS_COUNTS_TRANSITIONS)) {
        a->transitions = calloc(L > 1 ? (size_t)(L - 1) * (size_t)E * (size_t)E : 1, sizeof *a->transitions);
        ok = a->transitions != NULL;
    }
    if (!ok) {
        counts_destroy(a);
        return rs_fail(err, "counting the run: out of memory for %d layers x %d experts", L, E);
    }
    a->view.loads = a->loads;
    a->view.transitions = a->transitions;
    *out = a;
    return 0;
}

static void counts_update_layer(void *p, const rs_chunk *c, int layer, const rs_decisions *dec,
                                const rs_metric_ref *ref)
{
    (void)ref;
    counts_acc *a = p;
    int64_t *loads = a->loads + (size_t)layer * (size_t)a->view.E;
    const int K = dec->kmax;
    for (int t = 0; t < c->n; t++) {
        if (!rs_row_observed(c, dec, t, layer))
            continue;
        const int32_t *ids = dec->ids + rs_decision_row(c, dec, t, layer);
        for (int x = 0; x < K; x++)
            if (ids[x] >= 0)
                loads[ids[x]]++;
    }
}

/* Transitions need two layers of a token: after every layer of the chunk. */
static void counts_update_chunk(void *p, const rs_chunk *c, const rs_decisions *dec, const rs_metric_ref *ref)
{
    (void)ref;
    counts_acc *a = p;
    if (!a->transitions)
        return;
    const int E = a->view.E;
    for (int l = 0; l + 1 < a->view.L; l++) {
        int64_t *A = a->transitions + (size_t)l * (size_t)E * (size_t)E;
        rs_count_layer_transitions(A, E, c, dec, l);
    }
}

static int counts_merge(void *p, const void *q, rs_error *err)
{
    counts_acc *a = p;
    const counts_acc *b = q;
    RS_CHECK(a->view.L == b->view.L && a->view.E == b->view.E && !a->transitions == !b->transitions, err,
             "counting the run: merging unlike accumulators");
    for (size_t i = 0; i < (size_t)a->view.L * (size_t)a->view.E; i++)
        a->loads[i] += b->loads[i];
    for (size_t i = 0; i < transition_cells(a); i++)
        a->transitions[i] += b->transitions[i];
    return 0;
}

static void counts_finalize(const void *p, rs_metric_sink *sink)
{
    const counts_acc *a = p;
    for (int l = 0; l < a->view.L; l++) {
        int64_t n = 0;
        for (int e = 0; e < a->view.E; e++)
            n += a->loads[(size_t)l * (size_t)a->view.E + e];
        rs_metric_emit(sink, 0, l, NULL, (double)n);
    }
}

static void counts_checkpoint(void *p, rs_state_io *io)
{
    counts_acc *a = p;
    RS_STATE_ARRAY(io, a->loads, (size_t)a->view.L * (size_t)a->view.E);
    RS_STATE_ARRAY(io, a->transitions, transition_cells(a));
}

const rs_run_counts *rs_run_counts_of(const void *acc) { return &((const counts_acc *)acc)->view; }

static const rs_metric_type counts_type = {
    .name = "run_counts",
    .summary = "kept assignments per layer and expert, and layer-to-layer transitions, of a whole run",
    .source = "routesim",
    .params = counts_params,
    .num_params = sizeof counts_params / sizeof counts_params[0],
    .outputs = counts_outputs,
    .num_outputs = sizeof counts_outputs / sizeof counts_outputs[0],
    .needs = 0,
    .create = counts_create,
    .update_layer = counts_update_layer,
    .update_chunk = counts_update_chunk,
    .merge = counts_merge,
    .finalize = counts_finalize,
    .destroy = counts_destroy,
    .checkpoint = counts_checkpoint,
};

const rs_metric_type *const rs_run_counts_type = &counts_type;
