/* bandit: online model selection with bandit feedback, as in LLM Bandit's
 * online simulation (arXiv 2502.02743): queries arrive in trace order; the
 * policy picks a model, observes only that model's recorded quality, and
 * updates. reward = quality - pref * cost. Arms are the models, kept per
 * domain with per_domain = 1. State runs in token order (the engine hands a
 * stateful router whole chunks in order), draws are keyed by (seed, query):
 * decisions are identical for any chunk size or thread count. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "routers/query/query_util.h"

enum { POLICY_EPS_GREEDY, POLICY_UCB, POLICY_THOMPSON };

typedef struct bandit_arm {
    int64_t pulls; /* updates (observed rewards) */
    double reward; /* their sum, in token order */
} bandit_arm;

typedef struct bandit_state {
    int E, policy, per_domain;
    double pref, epsilon, ucb_c, sigma;
    uint64_t seed;
    rs_query_split split;
    rs_query_domains domains;
    bandit_arm *arms;    /* [(num_labels + 1) * E] */
    int64_t *bucket_pulls; /* [num_labels + 1] */
} bandit_state;

static const rs_param_def bandit_params[] = {
    {"policy", RS_PARAM_ENUM, "eps_greedy", 0, 0, "eps_greedy|ucb|thompson",
     "eps_greedy: explore uniformly with probability epsilon; ucb: UCB1; thompson: Gaussian Thompson sampling"},
    {"pref", RS_PARAM_FLOAT, "0", 0, 1e300, NULL, "cost preference: reward = quality - pref * cost"},
    {"epsilon", RS_PARAM_FLOAT, "0.1", 0, 1, NULL, "eps_greedy: exploration probability"},
    {"ucb_c", RS_PARAM_FLOAT, "1.4142135623730951", 0, 1e300, NULL,
     "ucb: exploration weight c in mean + c sqrt(ln N / n)"},
    {"sigma", RS_PARAM_FLOAT, "0.5", 1e-12, 1e300, NULL,
     "thompson: reward noise sd; arm posterior N(sum / (n + 1), sigma^2 / (n + 1)) from a N(0, sigma^2) prior"},
    {"per_domain", RS_PARAM_BOOL, "0", 0, 1, NULL, "1: separate arms per domain (/sequences/domain)"},
    {"seed", RS_PARAM_INT, "0", 0, 9007199254740991.0, NULL, "random seed"},
    RS_QUERY_SPLIT_PARAMS,
};

static void bandit_destroy(void *state)
{
    bandit_state *s = state;
    if (s) {
        free(s->arms);
        free(s->bucket_pulls);
    }
    free(s);
}

static int bandit_create(void **state, rs_router_shape *shape, const rs_params *params, const rs_router_setup *setup,
                         rs_error *err)
{
    static const char *const who = "router bandit";
    RS_TRY(rs_query_check_trace(setup, who, err));
    const rs_trace_info *info = setup->trace;
    bandit_state *s = calloc(1, sizeof *s);
    RS_CHECK(s, err, "%s: out of memory", who);
    const char *policy = rs_param_str(params, "policy");
    s->policy = strcmp(policy, "ucb") == 0 ? POLICY_UCB : strcmp(policy, "thompson") == 0 ? POLICY_THOMPSON
                                                                                          : POLICY_EPS_GREEDY;
    s->E = info->num_experts;
    s->pref = rs_param_float(params, "pref");
    s->epsilon = rs_param_float(params, "epsilon");
    s->ucb_c = rs_param_float(params, "ucb_c");
    s->sigma = rs_param_float(params, "sigma");
    s->per_domain = rs_param_bool(params, "per_domain");
    s->seed = (uint64_t)rs_param_int(params, "seed");
    int rc = rs_query_split_init(&s->split, params, who, err);
    if (rc == 0 && s->per_domain && !info->has_domain)
        rc = rs_fail(err, "%s: per_domain=1 needs /sequences/domain, which %s lacks", who, info->path);
    if (rc == 0 && s->per_domain)
        rc = rs_query_domains_scan(&s->domains, info, who, err);
    if (rc == 0) {
        size_t buckets = (size_t)s->domains.num_labels + 1;
        s->arms = calloc(buckets * (size_t)s->E, sizeof *s->arms);
        s->bucket_pulls = calloc(buckets, sizeof *s->bucket_pulls);
        if (!s->arms || !s->bucket_pulls)
            rc = rs_fail(err, "%s: out of memory", who);
    }
    if (rc != 0) {
        bandit_destroy(s);
        return -1;
    }
    shape->kmax = 1;
    *state = s;
    return 0;
}

static inline double arm_mean(const bandit_arm *a) { return (double)a->reward / (double)a->pulls; }

/* A standard normal draw (Box-Muller) from two keyed values. */
static double normal_draw(const rs_rng *rng, uint64_t i)
{
    double u1 = ((double)(rs_rng_at(rng, 2 * i) >> 11) + 1.0) * 0x1.0p-53; /* (0, 1] */
    double u2 = (double)(rs_rng_at(rng, 2 * i + 1) >> 11) * 0x1.0p-53;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static int choose(const bandit_state *s, const bandit_arm *arms, int64_t bucket_pulls, rs_rng *rng)
{
    const int E = s->E;
    if (s->policy != POLICY_THOMPSON)
        for (int e = 0; e < E; e++) /* every arm once first, in index order */
            if (arms[e].pulls == 0)
                return e;
    int best = 0;
    double best_value = -INFINITY;
    if (s->policy == POLICY_EPS_GREEDY) {
        if (rs_rng_uniform(rng) < s->epsilon)
            return (int)rs_rng_below(rng, (uint64_t)E);
        for (int e = 0; e < E; e++) {
            double v = arm_mean(&arms[e]);
            if (v > best_value) {
                best_value = v;
                best = e;
            }
        }
    } else if (s->policy == POLICY_UCB) {
        double log_total = log((double)bucket_pulls);
        for (int e = 0; e < E; e++) {
            double v = arm_mean(&arms[e]) + s->ucb_c * sqrt(log_total / (double)arms[e].pulls);
            if (v > best_value) {
                best_value = v;
                best = e;
            }
        }
    } else {
        for (int e = 0; e < E; e++) {
            double n1 = (double)arms[e].pulls + 1.0;
            double v = arms[e].reward / n1 + s->sigma / sqrt(n1) * normal_draw(rng, (uint64_t)e);
            if (v > best_value) {
                best_value = v;
                best = e;
            }
        }
    }
    return best;
}

static void bandit_route_layer(void *state, const rs_chunk *c, int layer, rs_decisions *out)
{
    bandit_state *s = state;
    const int E = s->E;
    for (int t = 0; t < c->n; t++) {
        size_t row = rs_decision_row(c, out, t, layer);
        int bucket = s->per_domain ? rs_query_domain_row(&s->domains, rs_query_domain(c, t)) : 0;
        bandit_arm *arms = s->arms + (size_t)bucket * (size_t)E;
        rs_rng rng = rs_rng_keyed(s->seed, (uint64_t)layer, (uint64_t)(c->t0 + t));
        int arm = choose(s, arms, s->bucket_pulls[bucket], &rng);
        float q = c->quality[(size_t)t * (size_t)E + (size_t)arm];
        if (q == q && (!c->valid || c->valid[t])) { /* only recorded outcomes teach it */
            arms[arm].pulls++;
            arms[arm].reward += (double)q - s->pref * (double)rs_query_cost(c, t, arm);
            s->bucket_pulls[bucket]++;
        }
        if (rs_query_is_training(&s->split, c->t0 + t)) { /* learned from, not evaluated */
            rs_query_mark_training(out->ids + row, out->weights + row, 1);
            continue;
        }
        out->ids[row] = arm;
        out->weights[row] = 1.0f;
    }
}

static void bandit_checkpoint(void *state, rs_state_io *io)
{
    bandit_state *s = state;
    size_t buckets = (size_t)s->domains.num_labels + 1;
    RS_STATE_ARRAY(io, s->arms, buckets * (size_t)s->E);
    RS_STATE_ARRAY(io, s->bucket_pulls, buckets);
}

static const rs_router_type bandit_type = {
    .name = "bandit",
    .summary = "online bandit over models (eps-greedy, UCB1, Thompson): choose, observe the recorded quality, update",
    .formula = "arm per query from the policy's statistics of earlier queries (per domain with per_domain=1); "
               "reward = quality - pref * cost of the chosen model only",
    .source = "LLM Bandit arXiv:2502.02743 (online simulation); UCB1 (Auer et al. 2002); Thompson sampling",
    .params = bandit_params,
    .num_params = sizeof bandit_params / sizeof bandit_params[0],
    .flags = RS_ROUTER_CAUSAL | RS_ROUTER_STATEFUL | RS_ROUTER_STOCHASTIC | RS_ROUTER_QUERY,
    .needs = RS_NEEDS_OUTCOME,
    .create = bandit_create,
    .route_layer = bandit_route_layer,
    .destroy = bandit_destroy,
    .checkpoint = bandit_checkpoint,
};

const rs_router_type *const rs_router_bandit = &bandit_type;
