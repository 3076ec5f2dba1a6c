/* topk: S = TopK(p, k); w = p_S, renormalised over S when renorm = 1, times
 * scale. Mixtral (renorm) and OLMoE / Qwen2-MoE (no renorm) ship this rule. */
#include <stdlib.h>

#include "routers/common/trace_checks.h"
#include "routesim/select.h"
#include "routesim/router.h"

typedef struct topk_state {
    int k, renorm;
    float scale;
} topk_state;

static const rs_param_def topk_params[] = {
    {"k", RS_PARAM_INT, "2", 1, 1024, NULL, "experts per token"},
    {"renorm", RS_PARAM_BOOL, "1", 0, 1, NULL, "renormalise the k weights to sum to 1"},
    {"scale", RS_PARAM_FLOAT, "1", 0, 1e6, NULL, "multiplies the weights (routed_scaling_factor)"},
};

static int topk_create(void **state, rs_router_shape *shape, const rs_params *params, const rs_router_setup *setup,
                       rs_error *err)
{
    int k = (int)rs_param_int(params, "k");
    RS_TRY(rs_check_param_experts("topk", "k", k, setup->trace, err));
    topk_state *s = malloc(sizeof *s);
    RS_CHECK(s, err, "router topk: out of memory");
    s->k = k;
    s->renorm = rs_param_bool(params, "renorm");
    s->scale = (float)rs_param_float(params, "scale");
    shape->kmax = s->k;
    *state = s;
    return 0;
}

/* w of one row from its selected ids: the same function on the CPU and on
 * the device (topk_route_device). */
static void topk_weights(int k, int renorm, float scale, const float *p, const int32_t *ids, float *w)
{
    /* ids < 0 only for rows with NaN logits, which the engine then discards */
    double norm = 1.0;
    if (renorm) {
        double sum = 0.0;
        for (int j = 0; j < k; j++)
            sum += ids[j] >= 0 ? p[ids[j]] : 0.0f;
        norm = sum > 0.0 ? 1.0 / sum : 0.0;
    }
    for (int j = 0; j < k; j++)
        w[j] = ids[j] >= 0 ? (float)((double)p[ids[j]] * norm * scale) : 0.0f;
}

RS_VECTOR_CLONES
static void topk_route_layer(void *state, const rs_chunk *c, int layer, rs_decisions *out)
{
    const topk_state *s = state;
    const int E = c->E, k = s->k;
    float vals[1024];
    for (int t = 0; t < c->n; t++) {
        const float *z = rs_chunk_logits(c, t, layer);
        const float *p = rs_chunk_probs(c, t, layer);
        int32_t *ids = out->ids + rs_decision_row(c, out, t, layer);
        float *w = out->weights + rs_decision_row(c, out, t, layer);
        /* Selecting on z equals selecting on p (softmax is monotone) and
         * never invents ties from float rounding of p. */
        rs_topk_indices(z, E, k, ids, vals);
        topk_weights(k, s->renorm, s->scale, p, ids, w);
    }
}

/* The device's selection is the insertion of select.h, which gives the
 * ids rs_topk_indices gives (its contract); its scratch bounds k. */
static int topk_route_device(void *state, const rs_device_chunk *c, rs_decisions *out)
{
    const topk_state *s = state;
    const int k = s->k, renorm = s->renorm, E = c->E, L = c->L, kmax = out->kmax;
    if (k > RS_DEVICE_MAX_K)
        return -1;
    const float scale = s->scale;
    const float *logits = c->logits, *probs = c->probs;
    int32_t *ids = out->ids;
    float *weights = out->weights;
    const int64_t rows = (int64_t)c->n * L;
#pragma omp target teams distribute parallel for device(c->device) is_device_ptr(logits, probs, ids, weights)
    for (int64_t r = 0; r < rows; r++) {
        const float *z = logits + r * E;
        int32_t *row_ids = ids + r * kmax;
        float vals[RS_DEVICE_MAX_K];
        rs_topk_insert_row(z, E, k, row_ids, vals);
        topk_weights(k, renorm, scale, probs + r * E, row_ids, weights + r * kmax);
    }
    return 0;
}

static void topk_destroy(void *state) { free(state); }

static const rs_router_type topk_type = {
    .name = "topk",
    .summary = "top-k of the softmax, optionally renormalised (Mixtral, OLMoE, Qwen-MoE)",
    .formula = "S = TopK(p, k) with ties to the lower index; w_e = p_e / sum_{S} p (renorm = 1) or p_e (renorm = 0), times scale",
    .source = "Mixtral arXiv:2401.04088 (HF MixtralSparseMoeBlock); no renorm: OLMoE arXiv:2409.02060, Qwen2-MoE",
    .params = topk_params,
    .num_params = sizeof topk_params / sizeof topk_params[0],
    .flags = RS_ROUTER_CAUSAL | RS_ROUTER_TOKEN_CHOICE,
    .needs = RS_NEEDS_LOGITS | RS_NEEDS_PROBS,
    .create = topk_create,
    .route_layer = topk_route_layer,
    .destroy = topk_destroy,
    .route_device = topk_route_device,
};

const rs_router_type *const rs_router_topk = &topk_type;
