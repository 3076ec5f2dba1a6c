/* cascade: FrugalGPT's LLM cascade. Models are tried in order, cheapest
 * first; the first whose score reaches its threshold answers. Every model
 * tried is paid: the decision lists them all in the order tried, the
 * answering one with weight 1 and the others with weight 0. */
#include <stdlib.h>

#include "routers/query/query_util.h"

enum { MAX_CASCADE = 1024 };

typedef struct cascade_state {
    int length;             /* models in the cascade */
    int fixed_order;        /* 1: order[] below; 0: every model, each query's cheapest first */
    int order[MAX_CASCADE];
    double threshold[MAX_CASCADE]; /* by position in the cascade; the last model always answers */
    rs_query_split split;
    rs_query_scores scores;
} cascade_state;

static const rs_param_def cascade_params[] = {
    {"order", RS_PARAM_STRING, NULL, 0, 0, NULL,
     "models to try, separated by '|' (names or indices); default: every model, each query's cheapest first "
     "(ties to the lower index)"},
    {"threshold", RS_PARAM_FLOAT, "0.5", -1e300, 1e300, NULL,
     "a model answers when its score >= threshold (sweep it for a curve)"},
    {"thresholds", RS_PARAM_STRING, NULL, 0, 0, NULL,
     "instead of threshold: one per position in the cascade but the last, separated by '|'"},
    RS_QUERY_SCORE_PARAM,
    RS_QUERY_SPLIT_PARAMS,
};

static void cascade_destroy(void *state)
{
    cascade_state *s = state;
    if (s)
        rs_query_scores_free(&s->scores);
    free(s);
}

static int cascade_create(void **state, rs_router_shape *shape, const rs_params *params,
                          const rs_router_setup *setup, rs_error *err)
{
    static const char *const who = "router cascade";
    RS_TRY(rs_query_check_trace(setup, who, err));
    const rs_trace_info *info = setup->trace;
    RS_CHECK(info->num_experts <= MAX_CASCADE || rs_param_is_set(params, "order"), err,
             "%s: %d models; a cascade over more than %d needs an explicit order", who, info->num_experts, MAX_CASCADE);
    cascade_state *s = calloc(1, sizeof *s);
    RS_CHECK(s, err, "%s: out of memory", who);
    int rc = rs_query_split_init(&s->split, params, who, err);
    s->length = info->num_experts;
    if (rc == 0 && rs_param_is_set(params, "order")) {
        s->fixed_order = 1;
        rc = rs_query_model_list(info, who, "order", rs_param_str(params, "order"), s->order, MAX_CASCADE, &s->length,
                                 err);
    }
    for (int i = 0; i < s->length; i++)
        s->threshold[i] = rs_param_float(params, "threshold");
    if (rc == 0 && rs_param_is_set(params, "thresholds")) {
        int count = 0;
        rc = rs_query_number_list(who, "thresholds", rs_param_str(params, "thresholds"), s->threshold, MAX_CASCADE,
                                  &count, err);
        if (rc == 0 && count != s->length - 1)
            rc = rs_fail(err, "%s: parameter thresholds has %d values; a cascade of %d models needs %d (the last "
                         "model always answers)", who, count, s->length, s->length - 1);
    }
    if (rc == 0)
        rc = rs_query_scores_init(&s->scores, params, setup, &s->split, who, &shape->needs, err);
    if (rc != 0) {
        cascade_destroy(s);
        return -1;
    }
    shape->kmax = s->length;
    *state = s;
    return 0;
}

static void cascade_route_layer(void *state, const rs_chunk *c, int layer, rs_decisions *out)
{
    const cascade_state *s = state;
    const int K = out->kmax;
    for (int t = 0; t < c->n; t++) {
        size_t row = rs_decision_row(c, out, t, layer);
        int32_t *ids = out->ids + row;
        float *w = out->weights + row;
        if (rs_query_is_training(&s->split, c->t0 + t)) {
            rs_query_mark_training(ids, w, K);
            continue;
        }
        if (s->fixed_order) {
            for (int i = 0; i < K; i++)
                ids[i] = s->order[i];
        } else { /* insertion sort by (cost, index): stable, so ties keep the lower index first */
            for (int e = 0; e < K; e++) {
                float ce = rs_query_cost(c, t, e);
                int i = e;
                while (i > 0 && rs_query_cost(c, t, ids[i - 1]) > ce) {
                    ids[i] = ids[i - 1];
                    i--;
                }
                ids[i] = e;
            }
        }
        const float *score = rs_query_score_row(&s->scores, c, t);
        int stop = 0;
        while (stop < K - 1 && !((double)score[ids[stop]] >= s->threshold[stop]))
            stop++;
        for (int i = 0; i < K; i++) {
            w[i] = i == stop ? 1.0f : 0.0f;
            if (i > stop)
                ids[i] = -1;
        }
    }
}

static const rs_router_type cascade_type = {
    .name = "cascade",
    .summary = "try models cheapest first, stop at the first whose score reaches its threshold; pay every model tried",
    .formula = "m_t = first model i in the order with score_t[i] >= threshold_i (the last always answers); the "
               "decision lists every model tried, the answer with weight 1, the others 0",
    .source = "FrugalGPT arXiv:2305.05176 (LLM cascade); routers.md section G",
    .params = cascade_params,
    .num_params = sizeof cascade_params / sizeof cascade_params[0],
    .flags = RS_ROUTER_CAUSAL | RS_ROUTER_QUERY,
    .needs = RS_WANTS_OUTCOME, /* costs, when the trace has them */
    .create = cascade_create,
    .route_layer = cascade_route_layer,
    .destroy = cascade_destroy,
};

const rs_router_type *const rs_router_cascade = &cascade_type;
