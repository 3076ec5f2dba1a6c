/* round_robin: experts in turn by global token index, a perfectly balanced
 * logit-free baseline. */
#include <stdlib.h>

#include "routers/common/trace_checks.h"
#include "routesim/router.h"

typedef struct round_robin_state {
    int k;
} round_robin_state;

static const rs_param_def round_robin_params[] = {
    {"k", RS_PARAM_INT, "1", 1, 1024, NULL, "experts per token (consecutive ones)"},
};

static int round_robin_create(void **state, rs_router_shape *shape, const rs_params *params,
                              const rs_router_setup *setup, rs_error *err)
{
    int k = (int)rs_param_int(params, "k");
    RS_TRY(rs_check_param_experts("round_robin", "k", k, setup->trace, err));
    round_robin_state *s = malloc(sizeof *s);
    RS_CHECK(s, err, "router round_robin: out of memory");
    s->k = k;
    shape->kmax = k;
    *state = s;
    return 0;
}

static void round_robin_route_layer(void *state, const rs_chunk *c, int layer, rs_decisions *out)
{
    const round_robin_state *s = state;
    const int E = c->E, k = s->k;
    const float w = 1.0f / (float)k;
    for (int t = 0; t < c->n; t++) {
        int32_t *ids = out->ids + rs_decision_row(c, out, t, layer);
        float *wt = out->weights + rs_decision_row(c, out, t, layer);
        int64_t first = (c->t0 + t) % E * k % E; /* (t * k) mod E without overflow */
        for (int j = 0; j < k; j++) {
            ids[j] = (int32_t)((first + j) % E);
            wt[j] = w;
        }
    }
}

static void round_robin_destroy(void *state) { free(state); }

static const rs_router_type round_robin_type = {
    .name = "round_robin",
    .summary = "experts in turn: token t gets experts t*k .. t*k+k-1 mod E, weights 1/k (baseline)",
    .formula = "S = {(t k + j) mod E : j < k}, t the global token index; w_e = 1/k (k = 1: e = t mod E, w = 1)",
    .source = "round-robin baseline (perfect balance, no logits)",
    .params = round_robin_params,
    .num_params = sizeof round_robin_params / sizeof round_robin_params[0],
    .flags = RS_ROUTER_CAUSAL | RS_ROUTER_TOKEN_CHOICE,
    .needs = 0,
    .create = round_robin_create,
    .route_layer = round_robin_route_layer,
    .destroy = round_robin_destroy,
};

const rs_router_type *const rs_router_round_robin = &round_robin_type;
