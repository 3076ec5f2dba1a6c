/* random_mix: each query to a random model with given probabilities
 * (RouterBench's zero router: mixing models at random traces the straight
 * line between their points). Draws are keyed by (seed, query), so they do
 * not depend on threads or chunks. */
#include <stdlib.h>

#include "routers/query/query_util.h"

enum { MAX_MODELS = 4096 };

typedef struct mix_state {
    int E;
    uint64_t seed;
    rs_query_split split;
    double *cumulative; /* [E] running sums of the normalised weights */
} mix_state;

static const rs_param_def mix_params[] = {
    {"weights", RS_PARAM_STRING, NULL, 0, 0, NULL,
     "probability of each model in index order, separated by '|' (e.g. 0.7|0.3; normalised); default uniform"},
    {"seed", RS_PARAM_INT, "0", 0, 9007199254740991.0, NULL, "random seed"},
    RS_QUERY_SPLIT_PARAMS,
};

static void mix_destroy(void *state)
{
    mix_state *s = state;
    if (s)
        free(s->cumulative);
    free(s);
}

static int mix_create(void **state, rs_router_shape *shape, const rs_params *params, const rs_router_setup *setup,
                      rs_error *err)
{
    static const char *const who = "router random_mix";
    RS_TRY(rs_query_check_trace(setup, who, err));
    const int E = setup->trace->num_experts;
    mix_state *s = calloc(1, sizeof *s);
    RS_CHECK(s, err, "%s: out of memory", who);
    s->E = E;
    s->seed = (uint64_t)rs_param_int(params, "seed");
    s->cumulative = malloc((size_t)E * sizeof *s->cumulative);
    if (!s->cumulative || rs_query_split_init(&s->split, params, who, err) != 0) {
        mix_destroy(s);
        return err && err->msg[0] ? -1 : rs_fail(err, "%s: out of memory", who);
    }
    int count = E;
    if (rs_param_is_set(params, "weights")) {
        if (E > MAX_MODELS || rs_query_number_list(who, "weights", rs_param_str(params, "weights"), s->cumulative, E,
                                                   &count, err) != 0) {
            mix_destroy(s);
            return err && err->msg[0] ? -1 : rs_fail(err, "%s: parameter weights: at most %d models", who, MAX_MODELS);
        }
        if (count != E) {
            mix_destroy(s);
            return rs_fail(err, "%s: parameter weights has %d values, the trace has %d models", who, count, E);
        }
    } else {
        for (int e = 0; e < E; e++)
            s->cumulative[e] = 1.0;
    }
    double total = 0;
    for (int e = 0; e < E; e++) {
        if (!(s->cumulative[e] >= 0)) {
            double v = s->cumulative[e];
            mix_destroy(s);
            return rs_fail(err, "%s: parameter weights: %g for model %d is negative", who, v, e);
        }
        total += s->cumulative[e];
    }
    if (!(total > 0)) {
        mix_destroy(s);
        return rs_fail(err, "%s: parameter weights: every weight is 0", who);
    }
    int last = 0;
    for (int e = 0; e < E; e++)
        last = s->cumulative[e] > 0 ? e : last;
    double run = 0;
    for (int e = 0; e < E; e++) {
        run += s->cumulative[e];
        /* exactly 1 from the last model with weight on, so every draw u < 1 lands on a weighted model */
        s->cumulative[e] = e >= last ? 1.0 : run / total;
    }
    shape->kmax = 1;
    *state = s;
    return 0;
}

static void mix_route_layer(void *state, const rs_chunk *c, int layer, rs_decisions *out)
{
    const mix_state *s = state;
    for (int t = 0; t < c->n; t++) {
        size_t row = rs_decision_row(c, out, t, layer);
        if (rs_query_is_training(&s->split, c->t0 + t)) {
            rs_query_mark_training(out->ids + row, out->weights + row, 1);
            continue;
        }
        rs_rng rng = rs_rng_keyed(s->seed, (uint64_t)layer, (uint64_t)(c->t0 + t));
        double u = rs_rng_uniform(&rng);
        int e = 0;
        /* the first model whose cumulative share exceeds u: a zero-weight model never is */
        while (e < s->E - 1 && !(u < s->cumulative[e]))
            e++;
        out->ids[row] = e;
        out->weights[row] = 1.0f;
    }
}

static const rs_router_type mix_type = {
    .name = "random_mix",
    .summary = "each query to a random model with given probabilities (RouterBench zero router)",
    .formula = "m_t ~ Categorical(weights / sum weights), keyed by (seed, query)",
    .source = "RouterBench arXiv:2403.12031 (the zero router: random mixtures of models); RouteLLM's random router",
    .params = mix_params,
    .num_params = sizeof mix_params / sizeof mix_params[0],
    .flags = RS_ROUTER_CAUSAL | RS_ROUTER_STOCHASTIC | RS_ROUTER_QUERY,
    .needs = 0,
    .create = mix_create,
    .route_layer = mix_route_layer,
    .destroy = mix_destroy,
};

const rs_router_type *const rs_router_random_mix = &mix_type;
