/* relu: ReMoE's ReLU router. Every expert with a positive (shifted) logit
 * is active and weighted by it; a token may get no expert. ReMoE controls
 * sparsity with an L1 penalty during training, so at inference the gate is
 * just ReLU(z - tau). */
#include <math.h>
#include <stdlib.h>

#include "routers/common/rank_sort.h"
#include "routers/common/token_row.h"
#include "routers/common/trace_checks.h"
#include "routesim/router.h"

typedef struct relu_state {
    double tau;
    float kept_from; /* the least float above tau: (double)z > tau is z >= kept_from */
} relu_state;

static const rs_param_def relu_params[] = {
    {"tau", RS_PARAM_FLOAT, "0", -1e30, 1e30, NULL, "logit threshold: experts with z > tau, weight z - tau"},
};

static int relu_create(void **state, rs_router_shape *shape, const rs_params *params, const rs_router_setup *setup,
                       rs_error *err)
{
    const rs_trace_info *tr = setup->trace;
    RS_TRY(rs_check_experts_at_most("relu", RS_RANK_MAX_E, tr, err));
    relu_state *s = malloc(sizeof *s);
    RS_CHECK(s, err, "router relu: out of memory");
    s->tau = rs_param_float(params, "tau");
    /* the nearest float to tau, or the next one up when that is not above tau */
    s->kept_from = (float)s->tau;
    if ((double)s->kept_from <= s->tau)
        s->kept_from = nextafterf(s->kept_from, INFINITY);
    shape->kmax = tr->num_experts;
    *state = s;
    return 0;
}

RS_VECTOR_CLONES
static void relu_route_layer(void *state, const rs_chunk *c, int layer, rs_decisions *out)
{
    const relu_state *s = state;
    const int E = c->E;
    rs_rank_scratch scratch;
    int32_t active[RS_RANK_MAX_E + RS_LANES];
    float active_z[RS_RANK_MAX_E + RS_LANES];
    for (int t = 0; t < c->n; t++) {
        int32_t *ids;
        float *w;
        const float *z = rs_token_row(c, out, t, layer, &ids, &w);
        if (!z)
            continue;
        int m = rs_gather_at_least(z, E, s->kept_from, active, active_z);
        rs_rank_gathered(active_z, active, m, ids, &scratch);
        for (int j = 0; j < m; j++)
            w[j] = (float)((double)z[ids[j]] - s->tau);
        rs_pad_row(ids, w, m, out->kmax);
    }
}

static void relu_destroy(void *state) { free(state); }

static const rs_router_type relu_type = {
    .name = "relu",
    .summary = "ReMoE: every expert with z > tau, weighted by z - tau (0..E experts)",
    .formula = "S = {e : z_e > tau}; w_e = z_e - tau (ReLU gate, not normalised); a token may get no expert; "
               "ids in (-z, index) order, -1 padding to E",
    .source = "ReMoE arXiv:2412.14711 (ReLU routing: gates = ReLU(W x), sparsity from L1 regularisation)",
    .params = relu_params,
    .num_params = sizeof relu_params / sizeof relu_params[0],
    .flags = RS_ROUTER_CAUSAL | RS_ROUTER_TOKEN_CHOICE,
    .needs = RS_NEEDS_LOGITS,
    .create = relu_create,
    .route_layer = relu_route_layer,
    .destroy = relu_destroy,
};

const rs_router_type *const rs_router_relu = &relu_type;
