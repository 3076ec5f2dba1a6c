/* cost_aware: the model with the best score net of its cost,
 * argmax_e score_e - lambda * cost_e (RouterBench's willingness-to-pay
 * routers: one lambda is one point, a sweep over lambda traces the
 * cost-quality curve). */
#include <stdlib.h>

#include "routers/query/query_util.h"

typedef struct cost_aware_state {
    double lambda;
    rs_query_split split;
    rs_query_scores scores;
} cost_aware_state;

static const rs_param_def cost_aware_params[] = {
    {"lambda", RS_PARAM_FLOAT, "0", 0, 1e300, NULL,
     "price of one unit of cost in units of score (willingness to pay is 1 / lambda)"},
    RS_QUERY_SCORE_PARAM,
    RS_QUERY_SPLIT_PARAMS,
};

static void cost_aware_destroy(void *state)
{
    cost_aware_state *s = state;
    if (s)
        rs_query_scores_free(&s->scores);
    free(s);
}

static int cost_aware_create(void **state, rs_router_shape *shape, const rs_params *params,
                             const rs_router_setup *setup, rs_error *err)
{
    static const char *const who = "router cost_aware";
    RS_TRY(rs_query_check_trace(setup, who, err));
    cost_aware_state *s = calloc(1, sizeof *s);
    RS_CHECK(s, err, "%s: out of memory", who);
    s->lambda = rs_param_float(params, "lambda");
    if (rs_query_split_init(&s->split, params, who, err) != 0 ||
        rs_query_scores_init(&s->scores, params, setup, &s->split, who, &shape->needs, err) != 0) {
        cost_aware_destroy(s);
        return -1;
    }
    shape->kmax = 1;
    *state = s;
    return 0;
}

static void cost_aware_route_layer(void *state, const rs_chunk *c, int layer, rs_decisions *out)
{
    const cost_aware_state *s = state;
    const int E = c->E;
    for (int t = 0; t < c->n; t++) {
        size_t row = rs_decision_row(c, out, t, layer);
        if (rs_query_is_training(&s->split, c->t0 + t)) {
            rs_query_mark_training(out->ids + row, out->weights + row, 1);
            continue;
        }
        const float *score = rs_query_score_row(&s->scores, c, t);
        int best = 0;
        double best_value = (double)score[0] - s->lambda * (double)rs_query_cost(c, t, 0);
        for (int e = 1; e < E; e++) { /* strict: ties go to the lower index */
            double v = (double)score[e] - s->lambda * (double)rs_query_cost(c, t, e);
            if (v > best_value) {
                best_value = v;
                best = e;
            }
        }
        out->ids[row] = best;
        out->weights[row] = 1.0f;
    }
}

static const rs_router_type cost_aware_type = {
    .name = "cost_aware",
    .summary = "the model with the best score net of lambda times its cost (sweep lambda for a curve)",
    .formula = "m_t = argmax_e score_t[e] - lambda * cost_t[e], ties to the lower index; score = logits or the "
               "domain prior (mean training quality of e in the query's domain)",
    .source = "RouterBench arXiv:2403.12031 (willingness-to-pay routers, withmartian/routerbench routers/)",
    .params = cost_aware_params,
    .num_params = sizeof cost_aware_params / sizeof cost_aware_params[0],
    .flags = RS_ROUTER_CAUSAL | RS_ROUTER_QUERY,
    .needs = RS_WANTS_OUTCOME, /* costs, when the trace has them */
    .create = cost_aware_create,
    .route_layer = cost_aware_route_layer,
    .destroy = cost_aware_destroy,
};

const rs_router_type *const rs_router_cost_aware = &cost_aware_type;
