/* topp: dynamic top-p routing (Harder Tasks Need More Experts). Experts
 * are taken in descending p until the cumulative sum first exceeds p; that
 * expert is kept too. Weights are the probabilities themselves, not
 * renormalised (ZhenweiAn/Dynamic_MoE modeling_moe.py,
 * top_p_sampling_batched_all_sequence). */
#include <stdlib.h>

#include "routers/common/rank_sort.h"
#include "routers/common/token_row.h"
#include "routers/common/trace_checks.h"
#include "routesim/router.h"

typedef struct topp_state {
    double p;
} topp_state;

static const rs_param_def topp_params[] = {
    {"p", RS_PARAM_FLOAT, "0.4", 0, 1, NULL, "cumulative probability to exceed (top_p_threshold)"},
};

static int topp_create(void **state, rs_router_shape *shape, const rs_params *params, const rs_router_setup *setup,
                       rs_error *err)
{
    const rs_trace_info *tr = setup->trace;
    RS_TRY(rs_check_experts_at_most("topp", RS_RANK_MAX_E, tr, err));
    topp_state *s = malloc(sizeof *s);
    RS_CHECK(s, err, "router topp: out of memory");
    s->p = rs_param_float(params, "p");
    shape->kmax = tr->num_experts;
    *state = s;
    return 0;
}

RS_VECTOR_CLONES
static void topp_route_layer(void *state, const rs_chunk *c, int layer, rs_decisions *out)
{
    const topp_state *s = state;
    const int E = c->E;
    rs_rank_scratch scratch;
    for (int t = 0; t < c->n; t++) {
        int32_t *ids;
        float *w;
        const float *z = rs_token_row(c, out, t, layer, &ids, &w);
        if (!z)
            continue;
        const float *p = rs_chunk_probs(c, t, layer);
        int ranked = rs_rank_mass_prefix(z, p, E, s->p, &scratch), m = 0;
        double cum = 0.0;
        while (m < E) {
            cum += p[rs_rank_walk_at(z, E, m++, &ranked, &scratch)];
            if (cum > s->p)
                break;
        }
        rs_row_ranked_probs(ids, w, scratch.order, p, m, out->kmax);
    }
}

/* The same walk on the device: experts in (-z, index) order until their
 * cumulative p exceeds p, weighted by rs_row_ranked_probs. */
static int topp_route_device(void *state, const rs_device_chunk *c, rs_decisions *out)
{
    const topp_state *s = state;
    if (c->E > RS_DEVICE_MAX_E)
        return -1;
    const double top_p = s->p;
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
        double cum = 0.0;
        while (m < E) {
            order[m] = rs_rank_walk_next(z, E, m, &last);
            cum += p[order[m++]];
            if (cum > top_p)
                break;
        }
        rs_row_ranked_probs(ids + r * kmax, weights + r * kmax, order, p, m, kmax);
    }
    return 0;
}

static void topp_destroy(void *state) { free(state); }

static const rs_router_type topp_type = {
    .name = "topp",
    .summary = "dynamic top-p: experts by descending p until their sum exceeds p (Dynamic_MoE)",
    .formula = "order experts by (-p, index); S = the shortest prefix whose sum exceeds p (all E when none does; "
               "p = 0 gives top-1); w_e = p_e, not renormalised; ids in rank order, -1 padding to E",
    .source = "Harder Tasks Need More Experts arXiv:2403.07652 (ZhenweiAn/Dynamic_MoE modeling/modeling_moe.py "
              "top_p_sampling_batched_all_sequence)",
    .params = topp_params,
    .num_params = sizeof topp_params / sizeof topp_params[0],
    .flags = RS_ROUTER_CAUSAL | RS_ROUTER_TOKEN_CHOICE,
    .needs = RS_NEEDS_LOGITS | RS_NEEDS_PROBS,
    .create = topp_create,
    .route_layer = topp_route_layer,
    .destroy = topp_destroy,
    .route_device = topp_route_device,
};

const rs_router_type *const rs_router_topp = &topp_type;
