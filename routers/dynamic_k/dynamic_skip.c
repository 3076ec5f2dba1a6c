/* dynamic_skip: NAEE's dynamic expert skipping. Top-k by p (Mixtral top-2);
 * an expert after the first is skipped when its weight is below beta times
 * the top-1 weight, and the survivors are renormalised
 * (Lucky-Lance/Expert_Sparsity model/modeling_mixtral.py,
 * DynamicSkippingMixtralSparseMoeBlock.forward: routing_weights[:, 1] <
 * beta * routing_weights[:, 0]; beta calibrated per layer as the median of
 * w2 / w1 by method/dynamic_skipping.py). */
#include <math.h>
#include <stdlib.h>

#include "routers/common/rank_sort.h"
#include "routers/common/token_row.h"
#include "routers/common/trace_checks.h"
#include "routesim/router.h"

typedef struct skip_state {
    int k;
    double beta;
} skip_state;

static const rs_param_def skip_params[] = {
    {"beta", RS_PARAM_FLOAT, "0.5", 0, 1e6, NULL, "skip an expert whose weight is below beta * top-1 weight"},
    {"k", RS_PARAM_INT, "2", 1, RS_RANK_MAX_E, NULL, "experts before skipping (NAEE: Mixtral's 2)"},
};

static int skip_create(void **state, rs_router_shape *shape, const rs_params *params, const rs_router_setup *setup,
                       rs_error *err)
{
    const rs_trace_info *tr = setup->trace;
    int k = (int)rs_param_int(params, "k");
    RS_TRY(rs_check_experts_at_most("dynamic_skip", RS_RANK_MAX_E, tr, err));
    RS_TRY(rs_check_param_experts("dynamic_skip", "k", k, tr, err));
    skip_state *s = malloc(sizeof *s);
    RS_CHECK(s, err, "router dynamic_skip: out of memory");
    s->k = k;
    s->beta = rs_param_float(params, "beta");
    shape->kmax = k;
    *state = s;
    return 0;
}

RS_VECTOR_CLONES
static void skip_route_layer(void *state, const rs_chunk *c, int layer, rs_decisions *out)
{
    const skip_state *s = state;
    const int E = c->E;
    rs_rank_scratch scratch;
    for (int t = 0; t < c->n; t++) {
        int32_t *ids;
        float *w;
        const float *z = rs_token_row(c, out, t, layer, &ids, &w);
        if (!z)
            continue;
        rs_rank_top(z, E, s->k, &scratch);
        /* p_j / p_1 = exp(z_j - z_1): the comparison and the renormalisation need only ratios */
        double top = z[scratch.order[0]], sum = 0.0;
        int m = 0;
        for (int j = 0; j < s->k; j++) {
            double ratio = exp((double)z[scratch.order[j]] - top);
            if (j > 0 && ratio < s->beta)
                continue;
            ids[m] = scratch.order[j];
            scratch.vals[m++] = (float)ratio;
            sum += ratio;
        }
        for (int j = 0; j < m; j++)
            w[j] = (float)(scratch.vals[j] / sum);
        rs_pad_row(ids, w, m, out->kmax);
    }
}

static void skip_destroy(void *state) { free(state); }

static const rs_router_type skip_type = {
    .name = "dynamic_skip",
    .summary = "NAEE dynamic skipping: top-k, drop experts whose weight is below beta * the top-1 weight",
    .formula = "S0 = TopK(p, k) in rank order; keep the first and every e with p_e >= beta * p_first; "
               "w_e = p_e / sum over the kept p; -1 padding to k",
    .source = "NAEE arXiv:2402.14800 (Lucky-Lance/Expert_Sparsity model/modeling_mixtral.py "
              "DynamicSkippingMixtralSparseMoeBlock.forward)",
    .params = skip_params,
    .num_params = sizeof skip_params / sizeof skip_params[0],
    .flags = RS_ROUTER_CAUSAL | RS_ROUTER_TOKEN_CHOICE,
    .needs = RS_NEEDS_LOGITS,
    .create = skip_create,
    .route_layer = skip_route_layer,
    .destroy = skip_destroy,
};

const rs_router_type *const rs_router_dynamic_skip = &skip_type;
