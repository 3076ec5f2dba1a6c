/* gumbel_topk: Gumbel top-k, i.e. k draws without replacement from
 * softmax(z / tau). Selection uses z / tau + Gumbel noise keyed by (seed,
 * layer, token); the combine weights are the router's own probabilities of
 * the chosen experts, as GShard's sampled second expert and DeepSpeed's
 * RSample keep the gate values (fairseq top2gating, DeepSpeed
 * sharded_moe.py top2gating with noisy_gate_policy 'RSample'). */
#include <math.h>
#include <stdlib.h>

#include "routers/common/rank_sort.h"
#include "routers/common/token_row.h"
#include "routers/common/trace_checks.h"
#include "routesim/fastmath.h"
#include "routesim/rng.h"
#include "routesim/router.h"

typedef struct gumbel_state {
    int k, renorm;
    double tau;
    uint64_t seed;
} gumbel_state;

static const rs_param_def gumbel_params[] = {
    {"k", RS_PARAM_INT, "2", 1, RS_RANK_MAX_E, NULL, "experts per token"},
    {"tau", RS_PARAM_FLOAT, "1", 1e-6, 1e6, NULL, "temperature of the sampling distribution softmax(z / tau)"},
    {"renorm", RS_PARAM_BOOL, "1", 0, 1, NULL, "renormalise the k weights to sum to 1"},
    {"seed", RS_PARAM_INT, "0", 0, 9007199254740991.0, NULL, "random seed"},
};

static int gumbel_create(void **state, rs_router_shape *shape, const rs_params *params,
                         const rs_router_setup *setup, rs_error *err)
{
    const rs_trace_info *tr = setup->trace;
    int k = (int)rs_param_int(params, "k");
    RS_TRY(rs_check_experts_at_most("gumbel_topk", RS_RANK_MAX_E, tr, err));
    RS_TRY(rs_check_param_experts("gumbel_topk", "k", k, tr, err));
    gumbel_state *s = malloc(sizeof *s);
    RS_CHECK(s, err, "router gumbel_topk: out of memory");
    s->k = k;
    s->tau = rs_param_float(params, "tau");
    s->renorm = rs_param_bool(params, "renorm");
    s->seed = (uint64_t)rs_param_int(params, "seed");
    shape->kmax = k;
    *state = s;
    return 0;
}

RS_VECTOR_CLONES
static void gumbel_route_layer(void *state, const rs_chunk *c, int layer, rs_decisions *out)
{
    const gumbel_state *s = state;
    const int E = c->E, k = s->k;
    rs_rank_scratch scratch;
    float perturbed[RS_RANK_MAX_E];
    for (int t = 0; t < c->n; t++) {
        int32_t *ids;
        float *w;
        const float *z = rs_token_row(c, out, t, layer, &ids, &w);
        if (!z)
            continue;
        const float *p = rs_chunk_probs(c, t, layer);
        rs_rng rng = rs_rng_keyed(s->seed, (uint64_t)layer, (uint64_t)(c->t0 + t));
        const float inv_tau = (float)(1.0 / s->tau);
        if (s->tau == 1.0) {
            /* exp is monotone: TopK(z + g) = TopK(e^z / (-log U)) = TopK(p / (-log U)),
             * one logarithm per expert instead of two */
#pragma omp simd
            for (int e = 0; e < E; e++) {
                uint64_t draw = rs_rng_at(&rng, (uint64_t)(e >> 1)) << (24 * (e & 1));
                float u = rs_rng_unit_float(draw) + 0x1p-25f; /* (0, 1), never 0 or 1 */
                perturbed[e] = p[e] / -rs_fast_logf(u);
            }
        } else {
#pragma omp simd
            for (int e = 0; e < E; e++) {
                /* draw e/2 holds two 24-bit uniforms: experts 2i and 2i+1 */
                uint64_t draw = rs_rng_at(&rng, (uint64_t)(e >> 1)) << (24 * (e & 1));
                float u = rs_rng_unit_float(draw) + 0x1p-25f;
                perturbed[e] = z[e] * inv_tau - rs_fast_logf(-rs_fast_logf(u));
            }
        }
        rs_rank_top(perturbed, E, k, &scratch);
        double norm = 1.0;
        if (s->renorm) {
            double sum = 0.0;
            for (int j = 0; j < k; j++)
                sum += p[scratch.order[j]];
            norm = sum > 0.0 ? 1.0 / sum : 0.0;
        }
        for (int j = 0; j < k; j++) {
            ids[j] = scratch.order[j];
            w[j] = (float)((double)p[ids[j]] * norm);
        }
    }
}

static void gumbel_destroy(void *state) { free(state); }

static const rs_router_type gumbel_type = {
    .name = "gumbel_topk",
    .summary = "Gumbel top-k: k experts sampled without replacement from softmax(z / tau)",
    .formula = "g_e = -log(-log U_e), U_e uniform in (0, 1): 24 bits of draw floor(e / 2) of the stream keyed by seed, layer, token (bits 40-63 for even e, 16-39 for odd e); "
               "S = TopK(z / tau + g, k), ties to the lower index, in that order (at tau = 1 computed as TopK(p / (-log U)), "
               "the same order by monotonicity, so experts with p = 0 in float tie at the bottom); w_e = p_e / sum_S p (renorm = 1) "
               "or p_e, with p = softmax(z)",
    .source = "Gumbel top-k (Kool et al. arXiv:1903.06059); GShard sampling arXiv:2006.16668, DeepSpeed RSample "
              "(deepspeed/moe/sharded_moe.py top2gating)",
    .params = gumbel_params,
    .num_params = sizeof gumbel_params / sizeof gumbel_params[0],
    .flags = RS_ROUTER_CAUSAL | RS_ROUTER_STOCHASTIC | RS_ROUTER_TOKEN_CHOICE,
    .needs = RS_NEEDS_LOGITS | RS_NEEDS_PROBS,
    .create = gumbel_create,
    .route_layer = gumbel_route_layer,
    .destroy = gumbel_destroy,
};

const rs_router_type *const rs_router_gumbel_topk = &gumbel_type;
