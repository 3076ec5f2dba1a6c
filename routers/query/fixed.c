/* fixed: every query to one model (the single-model baselines). */
#include <stdlib.h>

#include "routers/query/query_util.h"

typedef struct fixed_state {
    int model;
    rs_query_split split;
} fixed_state;

static const rs_param_def fixed_params[] = {
    {"model", RS_PARAM_STRING, NULL, 0, 0, NULL, "the model: a name of expert_names or an index"},
    RS_QUERY_SPLIT_PARAMS,
};

static int fixed_create(void **state, rs_router_shape *shape, const rs_params *params, const rs_router_setup *setup,
                        rs_error *err)
{
    RS_TRY(rs_query_check_trace(setup, "router fixed", err));
    RS_CHECK(rs_param_is_set(params, "model"), err,
             "router fixed: parameter model is required (a model name or index, e.g. fixed:model=0)");
    fixed_state *s = malloc(sizeof *s);
    RS_CHECK(s, err, "router fixed: out of memory");
    if (rs_query_model(setup->trace, "router fixed", "model", rs_param_str(params, "model"), &s->model, err) != 0 ||
        rs_query_split_init(&s->split, params, "router fixed", err) != 0) {
        free(s);
        return -1;
    }
    shape->kmax = 1;
    *state = s;
    return 0;
}

static void fixed_route_layer(void *state, const rs_chunk *c, int layer, rs_decisions *out)
{
    const fixed_state *s = state;
    for (int t = 0; t < c->n; t++) {
        size_t row = rs_decision_row(c, out, t, layer);
        if (rs_query_is_training(&s->split, c->t0 + t)) {
            rs_query_mark_training(out->ids + row, out->weights + row, 1);
            continue;
        }
        out->ids[row] = s->model;
        out->weights[row] = 1.0f;
    }
}

static void fixed_destroy(void *state) { free(state); }

static const rs_router_type fixed_type = {
    .name = "fixed",
    .summary = "every query to one model (single-model baseline)",
    .formula = "m_t = model",
    .source = "single-model baselines of RouterBench arXiv:2403.12031 and RouteLLM arXiv:2406.18665",
    .params = fixed_params,
    .num_params = sizeof fixed_params / sizeof fixed_params[0],
    .flags = RS_ROUTER_CAUSAL | RS_ROUTER_QUERY,
    .needs = 0,
    .create = fixed_create,
    .route_layer = fixed_route_layer,
    .destroy = fixed_destroy,
};

const rs_router_type *const rs_router_fixed = &fixed_type;
