/* noisy_topk: noisy top-k gating with a fixed noise scale. Gaussian noise
 * N(0, sigma^2) is added to every logit, the k largest noisy logits are
 * kept and softmaxed among themselves (Shazeer et al.: G = Softmax(KeepTopK(H,
 * k)), H = z + N(0, 1) * sigma; the paper learns sigma per expert, a trace
 * has no hidden state to learn it from). Noise is keyed by (seed, layer,
 * token): one Box-Muller pair per two experts, in expert order. */
#include <math.h>
#include <stdlib.h>

#include "routers/common/rank_sort.h"
#include "routers/common/token_row.h"
#include "routers/common/trace_checks.h"
#include "routesim/fastmath.h"
#include "routesim/rng.h"
#include "routesim/router.h"

typedef struct noisy_state {
    int k;
    double sigma;
    uint64_t seed;
} noisy_state;

static const rs_param_def noisy_params[] = {
    {"k", RS_PARAM_INT, "2", 1, RS_RANK_MAX_E, NULL, "experts per token"},
    {"sigma", RS_PARAM_FLOAT, "1", 0, 1e6, NULL, "standard deviation of the noise added to the logits"},
    {"seed", RS_PARAM_INT, "0", 0, 9007199254740991.0, NULL, "random seed"},
};

static int noisy_create(void **state, rs_router_shape *shape, const rs_params *params, const rs_router_setup *setup,
                        rs_error *err)
{
    const rs_trace_info *tr = setup->trace;
    int k = (int)rs_param_int(params, "k");
    RS_TRY(rs_check_experts_at_most("noisy_topk", RS_RANK_MAX_E, tr, err));
    RS_TRY(rs_check_param_experts("noisy_topk", "k", k, tr, err));
    noisy_state *s = malloc(sizeof *s);
    RS_CHECK(s, err, "router noisy_topk: out of memory");
    s->k = k;
    s->sigma = rs_param_float(params, "sigma");
    s->seed = (uint64_t)rs_param_int(params, "seed");
    shape->kmax = k;
    *state = s;
    return 0;
}

/* N(0, sigma^2) for every expert: Box-Muller on independent draws of the
 * token's keyed stream (draws 2i and 2i+1 give the cosine for expert 2i and
 * the sine for expert 2i+1). Each expert recomputes its pair's transform so
 * the loop has unit stride and vectorizes; the values are the same. */
__attribute__((always_inline)) static inline void add_noise(const float *z, int E, float sigma, const rs_rng *rng,
                                                            float *noisy)
{
#pragma omp simd
    for (int e = 0; e < E; e++) {
        uint64_t pair = (uint64_t)(e >> 1);
        float u1 = 1.0f - rs_rng_unit_float(rs_rng_at(rng, 2 * pair)); /* (0, 1] */
        float u2 = rs_rng_unit_float(rs_rng_at(rng, 2 * pair + 1));
        float radius = sigma * sqrtf(-2.0f * rs_fast_logf(u1));
        float sine, cosine;
        rs_fast_sincos_turns(u2, &sine, &cosine);
        noisy[e] = z[e] + radius * ((e & 1) ? sine : cosine);
    }
}

RS_VECTOR_CLONES
static void noisy_route_layer(void *state, const rs_chunk *c, int layer, rs_decisions *out)
{
    const noisy_state *s = state;
    const int E = c->E, k = s->k;
    rs_rank_scratch scratch;
    float noisy[RS_RANK_MAX_E];
    for (int t = 0; t < c->n; t++) {
        int32_t *ids;
        float *w;
        const float *z = rs_token_row(c, out, t, layer, &ids, &w);
        if (!z)
            continue;
        rs_rng rng = rs_rng_keyed(s->seed, (uint64_t)layer, (uint64_t)(c->t0 + t));
        add_noise(z, E, (float)s->sigma, &rng, noisy);
        rs_rank_top(noisy, E, k, &scratch);
        rs_row_ranked_softmax(ids, w, scratch.order, noisy, k);
    }
}

static void noisy_destroy(void *state) { free(state); }

static const rs_router_type noisy_type = {
    .name = "noisy_topk",
    .summary = "noisy top-k gating: TopK(z + N(0, sigma^2)), softmax over the k noisy logits",
    .formula = "h = z + sigma * n, n ~ N(0, 1) per expert (Box-Muller from the stream keyed by seed, layer, token); "
               "S = TopK(h, k), ties to the lower index; w = softmax(h_S); sigma = 0 is topk with renorm = 1",
    .source = "Shazeer et al. arXiv:1701.06538 (noisy top-k gating, here with a fixed sigma)",
    .params = noisy_params,
    .num_params = sizeof noisy_params / sizeof noisy_params[0],
    .flags = RS_ROUTER_CAUSAL | RS_ROUTER_STOCHASTIC | RS_ROUTER_TOKEN_CHOICE,
    .needs = RS_NEEDS_LOGITS,
    .create = noisy_create,
    .route_layer = noisy_route_layer,
    .destroy = noisy_destroy,
};

const rs_router_type *const rs_router_noisy_topk = &noisy_type;
