/* random: k distinct experts uniformly at random, weights 1/k. A logit-free
 * baseline; draws come from a keyed stream per (seed, layer, token) so they
 * do not depend on threads, chunks or how a run is split. */
#include <stdlib.h>

#include "routers/common/trace_checks.h"
#include "routesim/rng.h"
#include "routesim/router.h"

typedef struct random_state {
    int k;
    uint64_t seed;
} random_state;

static const rs_param_def random_params[] = {
    {"k", RS_PARAM_INT, "2", 1, 1024, NULL, "experts per token"},
    {"seed", RS_PARAM_INT, "0", 0, 9007199254740991.0, NULL, "random seed"},
};

static int random_create(void **state, rs_router_shape *shape, const rs_params *params,
                         const rs_router_setup *setup, rs_error *err)
{
    int k = (int)rs_param_int(params, "k");
    RS_TRY(rs_check_param_experts("random", "k", k, setup->trace, err));
    random_state *s = malloc(sizeof *s);
    RS_CHECK(s, err, "router random: out of memory");
    s->k = k;
    s->seed = (uint64_t)rs_param_int(params, "seed");
    shape->kmax = k;
    *state = s;
    return 0;
}

/* k distinct experts of one (layer, token) by Floyd's algorithm, O(k^2),
 * weight 1/k each: the same function on the CPU and the device. */
static void random_row(int k, int E, uint64_t seed, int layer, int64_t token, int32_t *ids, float *wt)
{
    const float w = 1.0f / (float)k;
    rs_rng rng = rs_rng_keyed(seed, (uint64_t)layer, (uint64_t)token);
    for (int j = E - k, m = 0; j < E; j++, m++) {
        int32_t pick = (int32_t)rs_rng_below(&rng, (uint64_t)j + 1);
        for (int i = 0; i < m; i++) {
            if (ids[i] == pick) {
                pick = j;
                break;
            }
        }
        ids[m] = pick;
        wt[m] = w;
    }
}

static void random_route_layer(void *state, const rs_chunk *c, int layer, rs_decisions *out)
{
    const random_state *s = state;
    for (int t = 0; t < c->n; t++) {
        const size_t row = rs_decision_row(c, out, t, layer);
        random_row(s->k, c->E, s->seed, layer, c->t0 + t, out->ids + row, out->weights + row);
    }
}

static int random_route_device(void *state, const rs_device_chunk *c, rs_decisions *out)
{
    const random_state *s = state;
    const int k = s->k, E = c->E, L = c->L, kmax = out->kmax;
    const uint64_t seed = s->seed;
    const int64_t t0 = c->t0, rows = (int64_t)c->n * L;
    int32_t *ids = out->ids;
    float *weights = out->weights;
#pragma omp target teams distribute parallel for device(c->device) is_device_ptr(ids, weights)
    for (int64_t r = 0; r < rows; r++)
        random_row(k, E, seed, (int)(r % L), t0 + r / L, ids + r * kmax, weights + r * kmax);
    return 0;
}

static void random_destroy(void *state) { free(state); }

static const rs_router_type random_type = {
    .name = "random",
    .summary = "k distinct experts uniformly at random, weights 1/k (baseline)",
    .formula = "S = k distinct experts drawn uniformly (keyed by seed, layer, token); w_e = 1/k",
    .source = "uniform baseline (cf. THOR arXiv:2110.04260, Hash Layers arXiv:2106.04426)",
    .params = random_params,
    .num_params = sizeof random_params / sizeof random_params[0],
    .flags = RS_ROUTER_CAUSAL | RS_ROUTER_STOCHASTIC | RS_ROUTER_TOKEN_CHOICE,
    .needs = 0,
    .create = random_create,
    .route_layer = random_route_layer,
    .destroy = random_destroy,
    .route_device = random_route_device,
};

const rs_router_type *const rs_router_random = &random_type;
