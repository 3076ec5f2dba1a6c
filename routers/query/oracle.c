/* oracle: per query the model with the best recorded quality (RouterBench's
 * oracle, convertors/common.py). An upper bound, not a router: it reads the
 * outcomes it is scored on. */
#include <stdlib.h>
#include <string.h>

#include "routers/query/query_util.h"

typedef struct oracle_state {
    int skip_none_correct;
    rs_query_split split;
} oracle_state;

static const rs_param_def oracle_params[] = {
    {"none_correct", RS_PARAM_ENUM, "skip", 0, 0, "skip|cheapest",
     "when no model has quality > 0: skip = no model (quality 0, cost 0, as RouterBench counts) or the cheapest"},
    RS_QUERY_SPLIT_PARAMS,
};

static int oracle_create(void **state, rs_router_shape *shape, const rs_params *params,
                         const rs_router_setup *setup, rs_error *err)
{
    RS_TRY(rs_query_check_trace(setup, "router oracle", err));
    oracle_state *s = malloc(sizeof *s);
    RS_CHECK(s, err, "router oracle: out of memory");
    s->skip_none_correct = strcmp(rs_param_str(params, "none_correct"), "skip") == 0;
    if (rs_query_split_init(&s->split, params, "router oracle", err) != 0) {
        free(s);
        return -1;
    }
    shape->kmax = 1;
    *state = s;
    return 0;
}

static void oracle_route_layer(void *state, const rs_chunk *c, int layer, rs_decisions *out)
{
    const oracle_state *s = state;
    const int E = c->E;
    for (int t = 0; t < c->n; t++) {
        size_t row = rs_decision_row(c, out, t, layer);
        int32_t *ids = out->ids + row;
        float *w = out->weights + row;
        if (rs_query_is_training(&s->split, c->t0 + t)) {
            rs_query_mark_training(ids, w, 1);
            continue;
        }
        const float *cost = c->cost ? c->cost + (size_t)t * (size_t)E : NULL;
        ids[0] = rs_query_oracle_choice(c->quality + (size_t)t * (size_t)E, cost, E, s->skip_none_correct);
        w[0] = ids[0] >= 0 ? 1.0f : 0.0f;
    }
}

static void oracle_destroy(void *state) { free(state); }

static const rs_router_type oracle_type = {
    .name = "oracle",
    .summary = "per query the model with the best recorded quality, ties to the cheapest (upper bound)",
    .formula = "m_t = argmax_e quality_t[e] over evaluated models, ties to the lower cost_t[e] then the lower index; "
               "no model has quality > 0: no model (none_correct=skip) or the cheapest",
    .source = "RouterBench arXiv:2403.12031 (withmartian/routerbench convertors/common.py, "
              "generate_oracle_routing_results)",
    .params = oracle_params,
    .num_params = sizeof oracle_params / sizeof oracle_params[0],
    .flags = RS_ROUTER_CAUSAL | RS_ROUTER_QUERY,
    .needs = RS_NEEDS_OUTCOME,
    .create = oracle_create,
    .route_layer = oracle_route_layer,
    .destroy = oracle_destroy,
};

const rs_router_type *const rs_router_oracle = &oracle_type;
