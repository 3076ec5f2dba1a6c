/* sqrt_softplus: the DeepSeek-V4 scoring as vLLM's dsv4 top-k kernel runs
 * it. s = sqrt(softplus(z)), with softplus(z) = z above 20 as the kernel
 * computes it; the selection bias b (/router/bias) is added when the trace
 * has one: S = TopK(s + b, k); w = s_S / sum_S s * scale. No expert groups. */
#include <math.h>
#include <stdlib.h>

#include "routers/common/score_select.h"
#include "routers/common/trace_checks.h"
#include "routesim/select.h"
#include "routesim/fastmath.h"
#include "routesim/router.h"

typedef struct sqrt_softplus_state {
    int k;
    double scale;
} sqrt_softplus_state;

static const rs_param_def sqrt_softplus_params[] = {
    {"k", RS_PARAM_INT, "6", 1, 1024, NULL, "experts per token"},
    {"scale", RS_PARAM_FLOAT, "1.5", 0, 1e6,
     NULL, "multiplies the renormalised weights (routed_scaling_factor; 1.5 in DeepSeek-V4-Flash)"},
};

static int sqrt_softplus_create(void **state, rs_router_shape *shape, const rs_params *params,
                                const rs_router_setup *setup, rs_error *err)
{
    int k = (int)rs_param_int(params, "k");
    RS_TRY(rs_check_experts_at_most("sqrt_softplus", RS_ROW_MAX_E, setup->trace, err));
    RS_TRY(rs_check_param_experts("sqrt_softplus", "k", k, setup->trace, err));
    sqrt_softplus_state *s = malloc(sizeof *s);
    RS_CHECK(s, err, "router sqrt_softplus: out of memory");
    s->k = k;
    s->scale = rs_param_float(params, "scale");
    if (setup->trace->has_bias)
        shape->needs |= RS_NEEDS_BIAS;
    shape->kmax = k;
    shape->scoring = RS_SCORING_SQRT_SOFTPLUS;
    *state = s;
    return 0;
}

/* s = sqrt(softplus(z)) and the biased s + b of one row (b may be NULL);
 * softplus(z) = z above 20, as the kernel; float32 like it. The same
 * arithmetic on the CPU and the device. */
__attribute__((always_inline)) static inline void sqrt_softplus_scores(const float *z, const float *b, int E,
                                                                       float *score, float *biased)
{
#pragma omp simd
    for (int e = 0; e < E; e++) {
        float sp = z[e] > 20.0f ? z[e] : rs_fast_softplusf(z[e]);
        score[e] = sqrtf(sp);
        biased[e] = b ? score[e] + b[e] : score[e];
    }
}

__attribute__((always_inline)) static inline void sqrt_softplus_weights(int k, double scale, const float *score,
                                                                        const int32_t *ids, float *w)
{
    float sum = 0.0f;
    for (int j = 0; j < k; j++)
        sum += ids[j] >= 0 ? score[ids[j]] : 0.0f;
    for (int j = 0; j < k; j++)
        w[j] = ids[j] >= 0 && sum > 0.0f ? score[ids[j]] / sum * scale : 0.0f;
}

RS_VECTOR_CLONES
static void sqrt_softplus_route_layer(void *state, const rs_chunk *c, int layer, rs_decisions *out)
{
    const sqrt_softplus_state *s = state;
    const int E = c->E, k = s->k;
    const float *b = c->bias ? c->bias + (size_t)layer * (size_t)E : NULL;
    float score[RS_ROW_MAX_E], biased[RS_ROW_MAX_E], vals[1024];
    for (int t = 0; t < c->n; t++) {
        const float *z = rs_chunk_logits(c, t, layer);
        int32_t *ids = out->ids + rs_decision_row(c, out, t, layer);
        float *w = out->weights + rs_decision_row(c, out, t, layer);
        sqrt_softplus_scores(z, b, E, score, biased);
        rs_topk_indices(biased, E, k, ids, vals);
        sqrt_softplus_weights(k, s->scale, score, ids, w);
    }
}

static int sqrt_softplus_route_device(void *state, const rs_device_chunk *c, rs_decisions *out)
{
    const sqrt_softplus_state *s = state;
    if (s->k > RS_DEVICE_MAX_K || c->E > RS_DEVICE_MAX_E)
        return -1;
    const int k = s->k, E = c->E, L = c->L, kmax = out->kmax;
    const double scale = s->scale;
    const float *logits = c->logits, *bias = c->bias;
    int32_t *ids = out->ids;
    float *weights = out->weights;
    const int64_t rows = (int64_t)c->n * L;
#pragma omp target teams distribute parallel for device(c->device) is_device_ptr(logits, bias, ids, weights)
    for (int64_t r = 0; r < rows; r++) {
        float score[RS_DEVICE_MAX_E], biased[RS_DEVICE_MAX_E], vals[RS_DEVICE_MAX_K];
        sqrt_softplus_scores(logits + r * E, bias ? bias + (r % L) * E : NULL, E, score, biased);
        rs_topk_insert_row(biased, E, k, ids + r * kmax, vals);
        sqrt_softplus_weights(k, scale, score, ids + r * kmax, weights + r * kmax);
    }
    return 0;
}

static void sqrt_softplus_destroy(void *state) { free(state); }

static const rs_router_type sqrt_softplus_type = {
    .name = "sqrt_softplus",
    .summary = "top-k of sqrt(softplus(z)) plus the selection bias if the trace has one, renormalised (DeepSeek-V4)",
    .formula = "s = sqrt(softplus(z)) (softplus(z) = z for z > 20); S = TopK(s + b, k) (b = /router/bias, else 0); "
               "w_e = s_e / sum_S s * scale; ties to the lower index",
    .source = "DeepSeek-V4 (no arXiv paper; vLLM fused_moe/router/dsv4_topk.py _dsv4_topk_kernel)",
    .params = sqrt_softplus_params,
    .num_params = sizeof sqrt_softplus_params / sizeof sqrt_softplus_params[0],
    .flags = RS_ROUTER_CAUSAL | RS_ROUTER_TOKEN_CHOICE,
    .needs = RS_NEEDS_LOGITS,
    .create = sqrt_softplus_create,
    .route_layer = sqrt_softplus_route_layer,
    .destroy = sqrt_softplus_destroy,
    .route_device = sqrt_softplus_route_device,
};

const rs_router_type *const rs_router_sqrt_softplus = &sqrt_softplus_type;
