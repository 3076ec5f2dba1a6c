/* sparsemixer: the inference rule of Phi-3.5-MoE (GRIN). Two rounds, each
 * picking the largest remaining logit and weighting it by a softmax over
 * only the experts whose logits lie within a relative distance 2 eps of it:
 *
 *   e1 = argmax z; keep j with (z_e1 - z_j) / max(|z_j|, z_e1) <= 2 eps;
 *   w1 = softmax(kept z)[e1]; then without e1 the same for e2, w2.
 *
 * The weights are not renormalised; w1 + w2 may exceed 1. Training-time
 * Gumbel sampling and the Heun gradient trick do not change inference. */
#include <math.h>
#include <stdlib.h>

#include "routesim/select.h"
#include "routesim/fastmath.h"
#include "routesim/router.h"

typedef struct sparsemixer_state {
    double threshold; /* 2 eps */
} sparsemixer_state;

static const rs_param_def sparsemixer_params[] = {
    {"eps", RS_PARAM_FLOAT, "0.01", 0, 1e6, NULL,
     "jitter eps: experts further than 2 eps (relative) below the winner are masked (router_jitter_noise)"},
};

static int sparsemixer_create(void **state, rs_router_shape *shape, const rs_params *params,
                              const rs_router_setup *setup, rs_error *err)
{
    RS_CHECK(setup->trace->num_experts >= 2, err,
             "router sparsemixer: picks 2 experts, but %s has num_experts=%d", setup->trace->path,
             setup->trace->num_experts);
    sparsemixer_state *s = malloc(sizeof *s);
    RS_CHECK(s, err, "router sparsemixer: out of memory");
    s->threshold = 2.0 * rs_param_float(params, "eps");
    shape->kmax = 2;
    *state = s;
    return 0;
}

/* softmax over the unmasked experts (never `skip`) at the winner: 1 / sum
 * exp(z_j - top). HF computes (top - z_j) / clamp(|z_j|, min=top); a 0/0
 * there (z_j = top = 0) compares false and keeps j, as here. */
/* 1 / sum over unmasked j of exp(z_j - top): the softmax weight of the
 * expert scoring `top` once experts too far below it are masked. Float32
 * like the reference; fixed lanes keep the sum's order the same on every
 * vector width. */
__attribute__((always_inline)) static inline float masked_softmax_at_top(const float *z, int E, int skip, float top, float threshold)
{
    float lane[RS_LANES] = {0};
    for (int b = 0; b < E; b += RS_LANES) {
        int kept[RS_LANES], any = 0;
        for (int j = 0; j < RS_LANES; j++) {
            int e = b + j;
            float zj = e < E ? z[e] : top;
            float factor = fabsf(zj) > top ? fabsf(zj) : top;
            int masked = factor > 0.0f && (top - zj) / factor > threshold;
            kept[j] = e < E && e != skip && !masked;
            any |= kept[j];
        }
        if (!any) /* the block would add +0 to every lane (lanes are >= +0): the same bits */
            continue;
#pragma omp simd
        for (int j = 0; j < RS_LANES; j++) {
            int e = b + j;
            float zj = e < E ? z[e] : top;
            lane[j] += kept[j] ? rs_fast_expf(zj - top) : 0.0f;
        }
    }
    double sum = 0.0;
    for (int j = 0; j < RS_LANES; j++)
        sum += lane[j];
    return sum > 0.0 ? (float)(1.0 / sum) : 0.0f;
}

RS_VECTOR_CLONES
static void sparsemixer_route_layer(void *state, const rs_chunk *c, int layer, rs_decisions *out)
{
    const sparsemixer_state *s = state;
    const int E = c->E;
    for (int t = 0; t < c->n; t++) {
        const float *z = rs_chunk_logits(c, t, layer);
        int32_t *ids = out->ids + rs_decision_row(c, out, t, layer);
        float *w = out->weights + rs_decision_row(c, out, t, layer);
        /* e1 = argmax z and e2 = argmax z without e1 are the top two (ties to the lower index) */
        float vals[2];
        rs_topk_indices(z, E, 2, ids, vals);
        int e1 = ids[0], e2 = ids[1];
        if (e1 < 0 || e2 < 0) { /* only for NaN rows, which the engine skips */
            rs_pad_row(ids, w, 0, 2);
            continue;
        }
        w[0] = masked_softmax_at_top(z, E, -1, z[e1], (float)s->threshold);
        w[1] = masked_softmax_at_top(z, E, e1, z[e2], (float)s->threshold);
    }
}

static void sparsemixer_destroy(void *state) { free(state); }

static const rs_router_type sparsemixer_type = {
    .name = "sparsemixer",
    .summary = "two rounds of argmax, each weighted by a softmax over the experts close to the winner (Phi-3.5-MoE)",
    .formula = "e1 = argmax z; M1 = {j : (z_e1 - z_j) / max(|z_j|, z_e1) > 2 eps}; w1 = softmax(z masked on M1)[e1]; "
               "e2, w2 likewise with e1 removed; no renormalisation",
    .source = "GRIN / Phi-3.5-MoE arXiv:2409.12136 (HF modeling_phimoe sparsemixer, inference path)",
    .params = sparsemixer_params,
    .num_params = sizeof sparsemixer_params / sizeof sparsemixer_params[0],
    .flags = RS_ROUTER_CAUSAL | RS_ROUTER_TOKEN_CHOICE,
    .needs = RS_NEEDS_LOGITS,
    .create = sparsemixer_create,
    .route_layer = sparsemixer_route_layer,
    .destroy = sparsemixer_destroy,
};

const rs_router_type *const rs_router_sparsemixer = &sparsemixer_type;
