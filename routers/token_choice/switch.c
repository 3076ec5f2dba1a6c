/* switch: top-1 with w = max p, followed by the capacity stage, which is on
 * by default here (capacity_factor = 1, drop_policy = position): an expert
 * takes the first C tokens of each group that choose it, C = ceil(cf * T / E),
 * and later ones are dropped. A dropped token gets no expert and weight 0,
 * as routers.md defines dropping; HF SwitchTransformersSparseMLP instead
 * passes it through unchanged, scaled by its router probability. */
#include <stdlib.h>

#include "routesim/select.h"
#include "routesim/router.h"

static int switch_create(void **state, rs_router_shape *shape, const rs_params *params, const rs_router_setup *setup,
                         rs_error *err)
{
    (void)params;
    (void)setup;
    (void)err;
    shape->kmax = 1;
    *state = NULL; /* stateless */
    return 0;
}

RS_VECTOR_CLONES
static void switch_route_layer(void *state, const rs_chunk *c, int layer, rs_decisions *out)
{
    (void)state;
    const int E = c->E;
    for (int t = 0; t < c->n; t++) {
        const float *z = rs_chunk_logits(c, t, layer);
        const float *p = rs_chunk_probs(c, t, layer);
        size_t row = rs_decision_row(c, out, t, layer);
        float top;
        rs_topk_indices(z, E, 1, out->ids + row, &top); /* argmax of z = argmax of p; ties to the lower index */
        int32_t best = out->ids[row];
        out->weights[row] = best >= 0 ? p[best] : 0.0f; /* -1 only for NaN rows (skipped) */
    }
}

static void switch_destroy(void *state) { (void)state; }

static const rs_router_type switch_type = {
    .name = "switch",
    .summary = "top-1 of the softmax with expert capacity, earlier tokens first (Switch Transformer)",
    .formula = "S = {argmax p} with ties to the lower index; w = max p; then the capacity stage "
               "(default capacity_factor = 1, drop_policy = position, C = ceil(cf * group_tokens / E))",
    .source = "Switch Transformer arXiv:2101.03961 (HF modeling_switch_transformers "
              "SwitchTransformersTop1Router: argmax, cumsum priority, router_probs = max p)",
    .params = NULL,
    .num_params = 0,
    .flags = RS_ROUTER_CAUSAL | RS_ROUTER_TOKEN_CHOICE,
    .needs = RS_NEEDS_LOGITS | RS_NEEDS_PROBS,
    .capacity_defaults = "capacity_factor=1",
    .create = switch_create,
    .route_layer = switch_route_layer,
    .destroy = switch_destroy,
};

const rs_router_type *const rs_router_switch = &switch_type;
