/* pnorm_topk: S = TopK(p, k); w = p_S / ||p_S||_p. DBRX normalises its
 * top-4 softmax weights by their L1 norm (moe_normalize_expert_weights = 1);
 * other p give the other norms HF DbrxRouter allows through torch.norm. */
#include <math.h>
#include <stdlib.h>

#include "routers/common/trace_checks.h"
#include "routesim/select.h"
#include "routesim/router.h"

typedef struct pnorm_state {
    int k;
    double p;
} pnorm_state;

static const rs_param_def pnorm_params[] = {
    {"k", RS_PARAM_INT, "4", 1, 1024, NULL, "experts per token"},
    {"p", RS_PARAM_FLOAT, "1", 1, 1000, NULL, "order of the norm the k weights are divided by (1 = L1, as DBRX)"},
};

static int pnorm_create(void **state, rs_router_shape *shape, const rs_params *params, const rs_router_setup *setup,
                        rs_error *err)
{
    int k = (int)rs_param_int(params, "k");
    RS_TRY(rs_check_param_experts("pnorm_topk", "k", k, setup->trace, err));
    pnorm_state *s = malloc(sizeof *s);
    RS_CHECK(s, err, "router pnorm_topk: out of memory");
    s->k = k;
    s->p = rs_param_float(params, "p");
    shape->kmax = k;
    *state = s;
    return 0;
}

/* ||x||_p of k positive values, scaled by the largest so no power overflows. */
static double pnorm(const double *x, int k, double p)
{
    double largest = 0.0, sum = 0.0;
    for (int j = 0; j < k; j++)
        largest = x[j] > largest ? x[j] : largest;
    if (!(largest > 0.0))
        return 0.0;
    if (p == 1.0) {
        for (int j = 0; j < k; j++)
            sum += x[j];
        return sum;
    }
    for (int j = 0; j < k; j++)
        sum += pow(x[j] / largest, p);
    return largest * pow(sum, 1.0 / p);
}

/* w of one row from its selected ids: the picked p over their p-norm. The
 * same function on the CPU and, for p = 1 (no pow), on the device. */
__attribute__((always_inline)) static inline void pnorm_weights(int k, double p, const float *prob,
                                                                const int32_t *ids, double *picked, float *w)
{
    for (int j = 0; j < k; j++)
        picked[j] = ids[j] >= 0 ? prob[ids[j]] : 0.0; /* -1 only for NaN rows (skipped) */
    double norm = pnorm(picked, k, p);
    double inv = norm > 0.0 ? 1.0 / norm : 0.0;
    for (int j = 0; j < k; j++)
        w[j] = (float)(picked[j] * inv);
}

static void pnorm_route_layer(void *state, const rs_chunk *c, int layer, rs_decisions *out)
{
    const pnorm_state *s = state;
    const int E = c->E, k = s->k;
    float vals[1024];
    double picked[1024];
    for (int t = 0; t < c->n; t++) {
        const float *z = rs_chunk_logits(c, t, layer);
        const float *prob = rs_chunk_probs(c, t, layer);
        int32_t *ids = out->ids + rs_decision_row(c, out, t, layer);
        float *w = out->weights + rs_decision_row(c, out, t, layer);
        rs_topk_indices(z, E, k, ids, vals); /* softmax is monotone: select on z */
        pnorm_weights(k, s->p, prob, ids, picked, w);
    }
}

/* p != 1 needs libm's pow, whose bits the device's library need not
 * share: such a router runs on the CPU. */
static int pnorm_route_device(void *state, const rs_device_chunk *c, rs_decisions *out)
{
    const pnorm_state *s = state;
    if (s->k > RS_DEVICE_MAX_K || s->p != 1.0)
        return -1;
    const int k = s->k, E = c->E, kmax = out->kmax;
    const float *logits = c->logits, *probs = c->probs;
    int32_t *ids = out->ids;
    float *weights = out->weights;
    const int64_t rows = (int64_t)c->n * c->L;
#pragma omp target teams distribute parallel for device(c->device) is_device_ptr(logits, probs, ids, weights)
    for (int64_t r = 0; r < rows; r++) {
        float vals[RS_DEVICE_MAX_K];
        double picked[RS_DEVICE_MAX_K];
        rs_topk_insert_row(logits + r * E, E, k, ids + r * kmax, vals);
        pnorm_weights(k, 1.0, probs + r * E, ids + r * kmax, picked, weights + r * kmax);
    }
    return 0;
}

static void pnorm_destroy(void *state) { free(state); }

static const rs_router_type pnorm_type = {
    .name = "pnorm_topk",
    .summary = "top-k of the softmax, weights divided by their p-norm (DBRX: L1)",
    .formula = "S = TopK(p, k) with ties to the lower index; w_e = p_e / ||p_S||_p, "
               "||x||_p = (sum_S x^p)^(1/p)",
    .source = "DBRX (databricks/dbrx, no arXiv paper; HF modeling_dbrx DbrxRouter.forward: "
              "torch.norm(top_weights, p=moe_normalize_expert_weights); megablocks LearnedRouter)",
    .params = pnorm_params,
    .num_params = sizeof pnorm_params / sizeof pnorm_params[0],
    .flags = RS_ROUTER_CAUSAL | RS_ROUTER_TOKEN_CHOICE,
    .needs = RS_NEEDS_LOGITS | RS_NEEDS_PROBS,
    .create = pnorm_create,
    .route_layer = pnorm_route_layer,
    .destroy = pnorm_destroy,
    .route_device = pnorm_route_device,
};

const rs_router_type *const rs_router_pnorm_topk = &pnorm_type;
