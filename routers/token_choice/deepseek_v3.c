/* deepseek_v3: DeepSeek-V3's sigmoid routing with a selection bias
 * (auxiliary-loss-free balancing, "noaux_tc"). s = sigmoid(z) and the biased
 * s' = s + b (b = /router/bias of the layer) choose; the unbiased s weigh:
 *
 *   score_g = sum of the two largest s' in group g; G = TopK(score, topk_group);
 *   S = TopK(s' restricted to G, k); w = s_S / sum_S s * scale.
 *
 * Experts outside the kept groups can never be chosen, as in routers.md, the
 * official Gate and vLLM (which fill them with -inf). Some HF versions of
 * modeling_deepseek_v3 fill 0 instead, which differs when a biased score is
 * negative. */
#include <stdlib.h>

#include "routers/common/score_select.h"
#include "routers/common/trace_checks.h"
#include "routesim/select.h"
#include "routesim/fastmath.h"
#include "routesim/router.h"

typedef struct deepseek_v3_state {
    int k, n_group, topk_group;
    float scale;
} deepseek_v3_state;

static const rs_param_def deepseek_v3_params[] = {
    {"n_group", RS_PARAM_INT, "8", 1, RS_MAX_GROUPS, NULL, "groups of consecutive experts (must divide E)"},
    {"topk_group", RS_PARAM_INT, "4", 1, RS_MAX_GROUPS, NULL,
     "groups kept per token, by the sum of their two largest biased scores"},
    {"k", RS_PARAM_INT, "8", 1, 1024, NULL, "experts per token, from the kept groups"},
    {"scale", RS_PARAM_FLOAT, "2.5", 0, 1e6, NULL, "multiplies the renormalised weights (routed_scaling_factor)"},
};

static int deepseek_v3_create(void **state, rs_router_shape *shape, const rs_params *params,
                              const rs_router_setup *setup, rs_error *err)
{
    const int E = setup->trace->num_experts;
    const char *path = setup->trace->path;
    int k = (int)rs_param_int(params, "k");
    int n_group = (int)rs_param_int(params, "n_group");
    int topk_group = (int)rs_param_int(params, "topk_group");
    RS_CHECK(setup->trace->has_bias, err,
             "router deepseek_v3: %s: /router/bias: missing dataset (the selection bias, e_score_correction_bias)",
             path);
    RS_CHECK(E % n_group == 0, err, "router deepseek_v3: n_group=%d does not divide num_experts=%d of %s", n_group, E,
             path);
    RS_CHECK(n_group == 1 || E / n_group >= 2, err,
             "router deepseek_v3: n_group=%d leaves 1 expert per group of num_experts=%d of %s (a group scores "
             "its two largest)",
             n_group, E, path);
    RS_CHECK(topk_group <= n_group, err, "router deepseek_v3: topk_group=%d exceeds n_group=%d", topk_group, n_group);
    RS_TRY(rs_check_experts_at_most("deepseek_v3", RS_ROW_MAX_E, setup->trace, err));
    RS_CHECK(k <= topk_group * (E / n_group), err,
             "router deepseek_v3: k=%d exceeds the %d experts of topk_group=%d groups of %d (num_experts=%d of %s)", k,
             topk_group * (E / n_group), topk_group, E / n_group, E, path);
    deepseek_v3_state *s = malloc(sizeof *s);
    RS_CHECK(s, err, "router deepseek_v3: out of memory");
    s->k = k;
    s->n_group = n_group;
    s->topk_group = topk_group;
    s->scale = rs_param_float(params, "scale");
    shape->kmax = k;
    shape->scoring = RS_SCORING_SIGMOID;
    *state = s;
    return 0;
}

/* The row's scores s and biased scores s' (float32 throughout, as the
 * official gate computes). */
__attribute__((always_inline)) static inline void deepseek_v3_sigmoid(const float *z, const float *b, int E,
                                                                      float *score, float *biased)
{
#pragma omp simd
    for (int e = 0; e < E; e++) {
        score[e] = rs_fast_sigmoidf(z[e]);
        biased[e] = score[e] + b[e];
    }
}

/* The scores and the group step on s', masking the groups not kept: the
 * same arithmetic on the CPU and the device. */
__attribute__((always_inline)) static inline void deepseek_v3_scores(const deepseek_v3_state *s, const float *z,
                                                                     const float *b, int E, float *score,
                                                                     float *biased, double *group_score, uint8_t *keep)
{
    deepseek_v3_sigmoid(z, b, E, score, biased);
    if (s->n_group > 1) {
        const int size = E / s->n_group;
        rs_group_scores(biased, s->n_group, size, 1, group_score);
        rs_keep_top_groups(group_score, s->n_group, s->topk_group, keep);
        rs_mask_groups(biased, s->n_group, size, keep);
    }
}

/* w = s_S / sum_S s * scale */
__attribute__((always_inline)) static inline void deepseek_v3_weights(const deepseek_v3_state *s, const float *score,
                                                                      const int32_t *ids, float *w)
{
    float sum = 0.0f;
    for (int j = 0; j < s->k; j++)
        sum += ids[j] >= 0 ? score[ids[j]] : 0.0f; /* -1 only for NaN rows (skipped) */
    for (int j = 0; j < s->k; j++)
        w[j] = ids[j] >= 0 && sum > 0.0f ? score[ids[j]] / sum * s->scale : 0.0f;
}

RS_VECTOR_CLONES
static void deepseek_v3_route_layer(void *state, const rs_chunk *c, int layer, rs_decisions *out)
{
    const deepseek_v3_state *s = state;
    const int E = c->E, k = s->k;
    const float *b = c->bias + (size_t)layer * (size_t)E;
    float score[RS_ROW_MAX_E], biased[RS_ROW_MAX_E], row[RS_ROW_MAX_E], vals[1024];
    double group_score[RS_MAX_GROUPS];
    uint8_t keep[RS_MAX_GROUPS];
    for (int t = 0; t < c->n; t++) {
        const float *z = rs_chunk_logits(c, t, layer);
        int32_t *ids = out->ids + rs_decision_row(c, out, t, layer);
        float *w = out->weights + rs_decision_row(c, out, t, layer);
        deepseek_v3_sigmoid(z, b, E, score, biased);
        if (s->n_group > 1) { /* deepseek_v3_scores' group step, ranking only the kept groups */
            const int size = E / s->n_group;
            const int finite = rs_group_scores(biased, s->n_group, size, 1, group_score);
            rs_keep_top_groups(group_score, s->n_group, s->topk_group, keep);
            rs_topk_in_groups(biased, s->n_group, size, keep, finite, k, row, ids, vals);
        } else {
            rs_topk_indices(biased, E, k, ids, vals);
        }
        deepseek_v3_weights(s, score, ids, w);
    }
}

static int deepseek_v3_route_device(void *state, const rs_device_chunk *c, rs_decisions *out)
{
    const deepseek_v3_state *s = state;
    if (s->k > RS_DEVICE_MAX_K || c->E > RS_DEVICE_MAX_E || s->n_group > RS_DEVICE_MAX_GROUPS)
        return -1;
    const deepseek_v3_state params = *s;
    const int E = c->E, L = c->L, kmax = out->kmax;
    const float *logits = c->logits, *bias = c->bias;
    int32_t *ids = out->ids;
    float *weights = out->weights;
    const int64_t rows = (int64_t)c->n * L;
#pragma omp target teams distribute parallel for device(c->device) is_device_ptr(logits, bias, ids, weights)
    for (int64_t r = 0; r < rows; r++) {
        float score[RS_DEVICE_MAX_E], biased[RS_DEVICE_MAX_E], vals[RS_DEVICE_MAX_K];
        double group_score[RS_DEVICE_MAX_GROUPS];
        uint8_t keep[RS_DEVICE_MAX_GROUPS];
        deepseek_v3_scores(&params, logits + r * E, bias + (r % L) * E, E, score, biased, group_score, keep);
        rs_topk_insert_row(biased, E, params.k, ids + r * kmax, vals);
        deepseek_v3_weights(&params, score, ids + r * kmax, weights + r * kmax);
    }
    return 0;
}

static void deepseek_v3_destroy(void *state) { free(state); }

static const rs_router_type deepseek_v3_type = {
    .name = "deepseek_v3",
    .summary = "sigmoid scores plus a selection bias, top-k within the best groups, renormalised (DeepSeek-V3)",
    .formula = "s = sigmoid(z); s' = s + b (b = /router/bias); score_g = sum of the two largest s' in group g; "
               "G = TopK(score, topk_group); S = TopK(s' restricted to G, k); w_e = s_e / sum_S s * scale; "
               "ties to the lower index",
    .source = "DeepSeek-V3 arXiv:2412.19437 (deepseek-ai/DeepSeek-V3 inference/model.py Gate.forward; "
              "vLLM fused_moe grouped_topk with e_score_correction_bias)",
    .params = deepseek_v3_params,
    .num_params = sizeof deepseek_v3_params / sizeof deepseek_v3_params[0],
    .flags = RS_ROUTER_CAUSAL | RS_ROUTER_TOKEN_CHOICE,
    .needs = RS_NEEDS_LOGITS | RS_NEEDS_BIAS,
    .create = deepseek_v3_create,
    .route_layer = deepseek_v3_route_layer,
    .destroy = deepseek_v3_destroy,
    .route_device = deepseek_v3_route_device,
};

const rs_router_type *const rs_router_deepseek_v3 = &deepseek_v3_type;
