/* Models of a query trace (unit = query: the "experts" are the candidate
 * models): naming them in parameters, and reading a query's recorded
 * outcomes (which models were evaluated, the oracle's choice). Shared by
 * the query routers and the outcome metric. */
#ifndef ROUTESIM_QUERY_MODELS_H
#define ROUTESIM_QUERY_MODELS_H
#include "routesim/router.h"

/* A model named by its expert_names entry or by its index. */
int rs_query_model(const rs_trace_info *info, const char *router, const char *param, const char *text, int *out,
                   rs_error *err);
/* '|'-separated models ("mixtral|gpt-4" or "0|1"), distinct, at most max. */
int rs_query_model_list(const rs_trace_info *info, const char *router, const char *param, const char *text,
                        int *out, int max, int *count, rs_error *err);

/* 1 when every model's quality is NaN (a query nobody evaluated). */
static inline int rs_query_unscored(const float *quality, int E)
{
    for (int e = 0; e < E; e++)
        if (quality[e] == quality[e])
            return 0;
    return 1;
}

/* The oracle's model for one query (RouterBench convertors/common.py,
 * get_highest_accuracy_lowest_cost): the highest quality among evaluated
 * models, ties to the lower cost, then the lower index. -1 when no model
 * was evaluated. When no model has quality > 0: -1 with skip_none_correct
 * (RouterBench's "no_model_correct": no model, cost 0), else the cheapest
 * evaluated model. cost may be NULL (every model free). */
static inline int rs_query_oracle_choice(const float *q, const float *cost, int E, int skip_none_correct)
{
    int best = -1, cheapest = -1;
    for (int e = 0; e < E; e++) {
        if (q[e] != q[e])
            continue;
        float c = cost ? cost[e] : 0.0f;
        if (best < 0 || q[e] > q[best] || (q[e] == q[best] && c < (cost ? cost[best] : 0.0f)))
            best = e;
        if (cheapest < 0 || c < (cost ? cost[cheapest] : 0.0f))
            cheapest = e;
    }
    if (best < 0 || q[best] > 0)
        return best;
    return skip_none_correct ? -1 : cheapest;
}

#endif
