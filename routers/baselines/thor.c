/* thor: THOR's stochastic experts at inference: one expert drawn uniformly
 * at random per token, or one per sequence shared by all its tokens, weight
 * 1. Draws are keyed by (seed, layer, token) or (seed, layer, sequence). */
#include <stdlib.h>

#include "routesim/rng.h"
#include "routesim/router.h"

enum { THOR_TOKEN, THOR_SEQUENCE };

typedef struct thor_state {
    int level;
    uint64_t seed;
} thor_state;

static const rs_param_def thor_params[] = {
    {"level", RS_PARAM_ENUM, "token", 0, 0, "token|sequence", "draw a new expert per token or per sequence"},
    {"seed", RS_PARAM_INT, "0", 0, 9007199254740991.0, NULL, "random seed"},
};

static int thor_create(void **state, rs_router_shape *shape, const rs_params *params, const rs_router_setup *setup,
                       rs_error *err)
{
    (void)setup;
    thor_state *s = malloc(sizeof *s);
    RS_CHECK(s, err, "router thor: out of memory");
    s->level = (int)rs_param_int(params, "level");
    s->seed = (uint64_t)rs_param_int(params, "seed");
    shape->kmax = 1;
    *state = s;
    return 0;
}

static void thor_route_layer(void *state, const rs_chunk *c, int layer, rs_decisions *out)
{
    const thor_state *s = state;
    for (int t = 0; t < c->n; t++) {
        size_t row = rs_decision_row(c, out, t, layer);
        int64_t unit = s->level == THOR_TOKEN ? c->t0 + t : c->first_seq + c->seq_of_token[t];
        rs_rng rng = rs_rng_keyed(s->seed, (uint64_t)layer, (uint64_t)unit);
        out->ids[row] = (int32_t)rs_rng_below(&rng, (uint64_t)c->E);
        out->weights[row] = 1.0f;
    }
}

static void thor_destroy(void *state) { free(state); }

static const rs_router_type thor_type = {
    .name = "thor",
    .summary = "THOR: one uniformly random expert per token or per sequence, weight 1 (baseline)",
    .formula = "e = uniform in [0, E) drawn from the stream keyed by (seed, layer, global token index) for "
               "level = token, (seed, layer, global sequence index) for level = sequence; w = 1",
    .source = "THOR arXiv:2110.04260 (stochastic experts, random routing)",
    .params = thor_params,
    .num_params = sizeof thor_params / sizeof thor_params[0],
    .flags = RS_ROUTER_CAUSAL | RS_ROUTER_STOCHASTIC | RS_ROUTER_TOKEN_CHOICE,
    .needs = 0,
    .create = thor_create,
    .route_layer = thor_route_layer,
    .destroy = thor_destroy,
};

const rs_router_type *const rs_router_thor = &thor_type;
