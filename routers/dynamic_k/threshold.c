/* threshold: XMoE's threshold router. Experts are taken in descending p
 * while the probability mass before them is below t, so at least one is
 * always kept and the expert that crosses t is included. Weights are the
 * probabilities (ysngki/XMoE deepspeed_moe/sharded_moe.py,
 * main_thresholdGating: chosen = cumsum - p < threshold, first forced). */
#include <stdlib.h>

#include "routers/common/rank_sort.h"
#include "routers/common/token_row.h"
#include "routers/common/trace_checks.h"
#include "routesim/router.h"

typedef struct threshold_state {
    double t;
} threshold_state;

static const rs_param_def threshold_params[] = {
    {"t", RS_PARAM_FLOAT, "0.9", 0, 1, NULL, "keep experts while the mass before them is below t"},
};

static int threshold_create(void **state, rs_router_shape *shape, const rs_params *params,
                            const rs_router_setup *setup, rs_error *err)
{
    const rs_trace_info *tr = setup->trace;
    RS_TRY(rs_check_experts_at_most("threshold", RS_RANK_MAX_E, tr, err));
    threshold_state *s = malloc(sizeof *s);
    RS_CHECK(s, err, "router threshold: out of memory");
    s->t = rs_param_float(params, "t");
    shape->kmax = tr->num_experts;
    shape->capacity_k = 1; /* XMoE's capacity counts tokens: C = factor * group_tokens / E */
    *state = s;
    return 0;
}

RS_VECTOR_CLONES
static void threshold_route_layer(void *state, const rs_chunk *c, int layer, rs_decisions *out)
{
    const threshold_state *s = state;
    const int E = c->E;
    rs_rank_scratch scratch;
    for (int t = 0; t < c->n; t++) {
        int32_t *ids;
        float *w;
        const float *z = rs_token_row(c, out, t, layer, &ids, &w);
        if (!z)
            continue;
        const float *p = rs_chunk_probs(c, t, layer);
        int ranked = rs_rank_mass_prefix(z, p, E, s->t, &scratch), m = 0;
        double before = 0.0; /* mass of the experts already kept */
        do
            before += p[rs_rank_walk_at(z, E, m++, &ranked, &scratch)];
        while (m < E && before < s->t);
        rs_row_ranked_probs(ids, w, scratch.order, p, m, out->kmax);
    }
}

/* The same walk on the device: experts in (-z, index) order until the
 * mass kept before the next reaches t, weighted by rs_row_ranked_probs. */
static int threshold_route_device(void *state, const rs_device_chunk *c, rs_decisions *out)
{
    const threshold_state *s = state;
    if (c->E > RS_DEVICE_MAX_E)
        return -1;
    const double t = s->t;
    const int E = c->E, kmax = out->kmax;
    const float *logits = c->logits, *probs = c->probs;
    int32_t *ids = out->ids;
    float *weights = out->weights;
    const int64_t rows = (int64_t)c->n * c->L;
#pragma omp target teams distribute parallel for device(c->device) is_device_ptr(logits, probs, ids, weights)
    for (int64_t r = 0; r < rows; r++) {
        const float *z = logits + r * E, *p = probs + r * E;
        int32_t order[RS_DEVICE_MAX_E];
        uint64_t last = 0;
        int m = 0;
        double before = 0.0; /* mass of the experts already kept */
        do {
            order[m] = rs_rank_walk_next(z, E, m, &last);
            before += p[order[m++]];
        } while (m < E && before < t);
        rs_row_ranked_probs(ids + r * kmax, weights + r * kmax, order, p, m, kmax);
    }
    return 0;
}

static void threshold_destroy(void *state) { free(state); }

static const rs_router_type threshold_type = {
    .name = "threshold",
    .summary = "XMoE threshold routing: experts by descending p while the mass before them is below t",
    .formula = "order experts by (-p, index); keep the j-th while sum of p over the experts before it < t "
               "(the first always); w_e = p_e, not renormalised; ids in rank order, -1 padding to E. "
               "With capacity_factor the stage counts tokens, as XMoE: C = capacity_factor * group_tokens / E",
    .source = "XMoE arXiv:2403.18926 (ysngki/XMoE MoE-Megatron-DeepSpeed deepspeed_moe/sharded_moe.py "
              "main_thresholdGating)",
    .params = threshold_params,
    .num_params = sizeof threshold_params / sizeof threshold_params[0],
    .flags = RS_ROUTER_CAUSAL | RS_ROUTER_TOKEN_CHOICE,
    .needs = RS_NEEDS_LOGITS | RS_NEEDS_PROBS,
    .create = threshold_create,
    .route_layer = threshold_route_layer,
    .destroy = threshold_destroy,
    .route_device = threshold_route_device,
};

const rs_router_type *const rs_router_threshold = &threshold_type;
