/* group_limited: DeepSeek-V2's group-limited greedy routing. The E experts
 * form n_group consecutive groups; a group scores the largest p inside it;
 * the topk_group best groups stay and S = TopK of p over their experts;
 * w = p_S * scale, not renormalised (DeepSeek-V2: norm_topk_prob = false,
 * routed_scaling_factor = 16). Scores compare on z: softmax is monotone, so
 * max p and TopK(p) rank exactly as max z and TopK(z). */
#include <stdlib.h>
#include <string.h>

#include "routers/common/score_select.h"
#include "routers/common/trace_checks.h"
#include "routesim/select.h"
#include "routesim/router.h"

typedef struct group_limited_state {
    int k, n_group, topk_group;
    float scale;
} group_limited_state;

static const rs_param_def group_limited_params[] = {
    {"n_group", RS_PARAM_INT, "8", 1, RS_MAX_GROUPS, NULL, "groups of consecutive experts (must divide E)"},
    {"topk_group", RS_PARAM_INT, "3", 1, RS_MAX_GROUPS, NULL, "groups kept per token, by their largest p"},
    {"k", RS_PARAM_INT, "6", 1, 1024, NULL, "experts per token, from the kept groups"},
    {"scale", RS_PARAM_FLOAT, "16", 0, 1e6, NULL, "multiplies the weights (routed_scaling_factor)"},
};

static int group_limited_create(void **state, rs_router_shape *shape, const rs_params *params,
                                const rs_router_setup *setup, rs_error *err)
{
    const int E = setup->trace->num_experts;
    const char *path = setup->trace->path;
    int k = (int)rs_param_int(params, "k");
    int n_group = (int)rs_param_int(params, "n_group");
    int topk_group = (int)rs_param_int(params, "topk_group");
    RS_TRY(rs_check_experts_at_most("group_limited", RS_ROW_MAX_E, setup->trace, err));
    RS_CHECK(E % n_group == 0, err, "router group_limited: n_group=%d does not divide num_experts=%d of %s", n_group,
             E, path);
    RS_CHECK(topk_group <= n_group, err, "router group_limited: topk_group=%d exceeds n_group=%d", topk_group,
             n_group);
    RS_CHECK(k <= topk_group * (E / n_group), err,
             "router group_limited: k=%d exceeds the %d experts of topk_group=%d groups of %d (num_experts=%d of %s)",
             k, topk_group * (E / n_group), topk_group, E / n_group, E, path);
    group_limited_state *s = malloc(sizeof *s);
    RS_CHECK(s, err, "router group_limited: out of memory");
    s->k = k;
    s->n_group = n_group;
    s->topk_group = topk_group;
    s->scale = (float)rs_param_float(params, "scale");
    shape->kmax = k;
    *state = s;
    return 0;
}

/* The row to select from: z, with the groups outside the topk_group best
 * (by their largest z, the order of their largest p) masked; the same
 * arithmetic on the CPU and the device. */
__attribute__((always_inline)) static inline void group_limited_mask(const group_limited_state *s, const float *z,
                                                                     int E, float *row, double *group_score,
                                                                     uint8_t *keep)
{
    const int size = E / s->n_group;
    memcpy(row, z, (size_t)E * sizeof *row);
    rs_group_scores(row, s->n_group, size, 0, group_score);
    rs_keep_top_groups(group_score, s->n_group, s->topk_group, keep);
    rs_mask_groups(row, s->n_group, size, keep);
}

__attribute__((always_inline)) static inline void group_limited_weights(const group_limited_state *s, const float *p,
                                                                        const int32_t *ids, float *w)
{
    for (int j = 0; j < s->k; j++)
        w[j] = ids[j] >= 0 ? p[ids[j]] * s->scale : 0.0f; /* -1 only for NaN rows (skipped) */
}

RS_VECTOR_CLONES
static void group_limited_route_layer(void *state, const rs_chunk *c, int layer, rs_decisions *out)
{
    const group_limited_state *s = state;
    const int E = c->E, k = s->k;
    const int every_group = s->topk_group == s->n_group, size = E / s->n_group;
    float row[RS_ROW_MAX_E], vals[1024];
    double group_score[RS_MAX_GROUPS];
    uint8_t keep[RS_MAX_GROUPS];
    for (int t = 0; t < c->n; t++) {
        const float *z = rs_chunk_logits(c, t, layer);
        const float *p = rs_chunk_probs(c, t, layer);
        int32_t *ids = out->ids + rs_decision_row(c, out, t, layer);
        float *w = out->weights + rs_decision_row(c, out, t, layer);
        if (every_group) {
            rs_topk_indices(z, E, k, ids, vals);
        } else {
            /* the device's group_limited_mask, ranking only the kept groups */
            const int finite = rs_group_scores(z, s->n_group, size, 0, group_score);
            rs_keep_top_groups(group_score, s->n_group, s->topk_group, keep);
            rs_topk_in_groups(z, s->n_group, size, keep, finite, k, row, ids, vals);
        }
        group_limited_weights(s, p, ids, w);
    }
}

static int group_limited_route_device(void *state, const rs_device_chunk *c, rs_decisions *out)
{
    const group_limited_state *s = state;
    if (s->k > RS_DEVICE_MAX_K || c->E > RS_DEVICE_MAX_E || s->n_group > RS_DEVICE_MAX_GROUPS)
        return -1;
    const group_limited_state params = *s;
    const int E = c->E, kmax = out->kmax, every_group = s->topk_group == s->n_group;
    const float *logits = c->logits, *probs = c->probs;
    int32_t *ids = out->ids;
    float *weights = out->weights;
    const int64_t rows = (int64_t)c->n * c->L;
#pragma omp target teams distribute parallel for device(c->device) is_device_ptr(logits, probs, ids, weights)
    for (int64_t r = 0; r < rows; r++) {
        float row[RS_DEVICE_MAX_E], vals[RS_DEVICE_MAX_K];
        double group_score[RS_DEVICE_MAX_GROUPS];
        uint8_t keep[RS_DEVICE_MAX_GROUPS];
        const float *z = logits + r * E;
        if (!every_group) {
            group_limited_mask(&params, z, E, row, group_score, keep);
            z = row;
        }
        rs_topk_insert_row(z, E, params.k, ids + r * kmax, vals);
        group_limited_weights(&params, probs + r * E, ids + r * kmax, weights + r * kmax);
    }
    return 0;
}

static void group_limited_destroy(void *state) { free(state); }

static const rs_router_type group_limited_type = {
    .name = "group_limited",
    .summary = "top-k of the softmax within the topk_group groups with the largest p (DeepSeek-V2)",
    .formula = "groups of E / n_group consecutive experts; score_g = max_{e in g} p_e; G = TopK(score, topk_group); "
               "S = TopK(p restricted to G, k); w_e = p_e * scale (no renormalisation); ties to the lower index",
    .source = "DeepSeek-V2 arXiv:2405.04434 (DeepSeek-V3 inference/model.py Gate.forward without bias; "
              "vLLM fused_moe grouped_topk, scoring_func = softmax)",
    .params = group_limited_params,
    .num_params = sizeof group_limited_params / sizeof group_limited_params[0],
    .flags = RS_ROUTER_CAUSAL | RS_ROUTER_TOKEN_CHOICE,
    .needs = RS_NEEDS_LOGITS | RS_NEEDS_PROBS,
    .create = group_limited_create,
    .route_layer = group_limited_route_layer,
    .destroy = group_limited_destroy,
    .route_device = group_limited_route_device,
};

const rs_router_type *const rs_router_group_limited = &group_limited_type;
