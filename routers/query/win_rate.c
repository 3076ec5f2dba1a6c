/* win_rate: RouteLLM's rule. The strong model answers when its estimated
 * advantage over the weak one reaches tau; a sweep over tau traces the
 * quality / strong-call curve. tau_quantile sets tau the way RouteLLM's
 * benchmarks do (routellm/evals/benchmarks.py: pd.qcut of the router's
 * win rates into 10 bins, selection win_rate >= threshold, > at the last
 * one), as a quantile of the scores of the evaluated queries. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "routers/query/query_util.h"

typedef struct win_rate_state {
    int strong, weak;
    int margin;
    double tau;
    int strict; /* tau_quantile = 1: no query strictly above the largest score */
    rs_query_split split;
    rs_query_scores scores;
} win_rate_state;

static const rs_param_def win_rate_params[] = {
    {"strong", RS_PARAM_STRING, NULL, 0, 0, NULL,
     "the strong model (name or index); default: the most expensive model by mean cost"},
    {"weak", RS_PARAM_STRING, NULL, 0, 0, NULL, "the weak model (name or index); default: the cheapest"},
    {"tau", RS_PARAM_FLOAT, "0", -1e300, 1e300, NULL, "the strong model answers when w_t >= tau"},
    {"tau_quantile", RS_PARAM_FLOAT, NULL, 0, 1, NULL,
     "instead of tau: the q-quantile of w over the evaluated queries (numpy linear method); q = 1 routes nothing to "
     "the strong model (RouteLLM's last threshold uses >)"},
    {"margin", RS_PARAM_BOOL, "1", 0, 1, NULL,
     "1: w_t = score_t[strong] - score_t[weak] (the estimated advantage); 0: w_t = score_t[strong]"},
    RS_QUERY_SCORE_PARAM,
    RS_QUERY_SPLIT_PARAMS,
};

static void win_rate_destroy(void *state)
{
    win_rate_state *s = state;
    if (s)
        rs_query_scores_free(&s->scores);
    free(s);
}

static inline double win_value(const win_rate_state *s, const float *score)
{
    return s->margin ? (double)score[s->strong] - (double)score[s->weak] : (double)score[s->strong];
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* numpy.quantile(values, q) with the default linear method:
 * virtual index (n - 1) q, then _lerp(a, b, g) = b - (b - a)(1 - g) when
 * g >= 0.5, else a + (b - a) g. values are sorted. */
static double numpy_quantile(const double *v, int64_t n, double q)
{
    double h = (double)(n - 1) * q;
    double lo_f = floor(h);
    int64_t lo = (int64_t)lo_f, hi = lo + 1;
    if (hi > n - 1)
        hi = n - 1;
    if (lo > n - 1)
        lo = n - 1;
    double g = h - lo_f, a = v[lo], b = v[hi], diff = b - a;
    return g >= 0.5 ? b - diff * (1 - g) : a + diff * g;
}

/* tau = the q-quantile of w over the evaluation queries (not training,
 * scored by some model). Holds one double per such query. */
static int quantile_tau(win_rate_state *s, const rs_router_setup *setup, double q, const char *who, rs_error *err)
{
    const rs_trace_info *info = setup->trace;
    const int E = info->num_experts;
    int64_t cap = 0, n = 0;
    double *values = NULL;
    rs_query_scan *scan = NULL;
    RS_TRY(rs_query_scan_open(&scan, info, s->scores.source == RS_SCORE_LOGITS, who, err));
    rs_query_block b;
    int rc;
    while ((rc = rs_query_scan_next(scan, &b, err)) == 1) {
        for (int t = 0; t < b.n; t++) {
            if (rs_query_is_training(&s->split, b.t0 + t) ||
                (b.quality && rs_query_unscored(b.quality + (size_t)t * E, E)))
                continue;
            const float *score =
                s->scores.source == RS_SCORE_LOGITS
                    ? b.logits + (size_t)t * E
                    : s->scores.prior + (size_t)rs_query_domain_row(&s->scores.domains, b.label[t]) * E;
            double w = win_value(s, score);
            if (!isfinite(w)) /* a query with non-finite logits: refused or skipped by the run, never scored */
                continue;
            if (n == cap) {
                cap = cap ? 2 * cap : 4096;
                double *grown = realloc(values, (size_t)cap * sizeof *values);
                if (!grown) {
                    rc = rs_fail(err, "%s: out of memory for the scores of %lld queries", who, (long long)n);
                    break;
                }
                values = grown;
            }
            values[n++] = w;
        }
        if (rc < 0)
            break;
    }
    rs_query_scan_close(scan);
    if (rc == 0 && n == 0)
        rc = rs_fail(err, "%s: tau_quantile: %s has no query to evaluate", who, info->path);
    if (rc == 0) {
        qsort(values, (size_t)n, sizeof *values, compare_doubles);
        s->tau = numpy_quantile(values, n, q);
    }
    free(values);
    return rc < 0 ? -1 : 0;
}

/* strong = the most expensive model by mean cost, weak = the cheapest (ties to the lower index). */
static int default_pair(win_rate_state *s, const rs_router_setup *setup, const char *who, rs_error *err)
{
    const int E = setup->trace->num_experts;
    double *mean = malloc((size_t)E * sizeof *mean);
    RS_CHECK(mean, err, "%s: out of memory", who);
    int has_cost = 0;
    if (rs_query_mean_costs(setup->trace, who, mean, &has_cost, err) != 0) {
        free(mean);
        return -1;
    }
    int strong = s->strong, weak = s->weak;
    for (int e = 0; has_cost && e < E; e++) {
        if (s->strong < 0 && e != weak && (strong < 0 || mean[e] > mean[strong]))
            strong = e;
    }
    for (int e = 0; has_cost && e < E; e++) {
        if (s->weak < 0 && e != strong && (weak < 0 || mean[e] < mean[weak]))
            weak = e;
    }
    free(mean);
    RS_CHECK(has_cost && strong >= 0 && weak >= 0, err,
             "%s: name the strong and weak models (strong=NAME,weak=NAME): %s has no /outcome/cost to tell them apart",
             who, setup->trace->path);
    s->strong = strong;
    s->weak = weak;
    return 0;
}

static int win_rate_create(void **state, rs_router_shape *shape, const rs_params *params,
                           const rs_router_setup *setup, rs_error *err)
{
    static const char *const who = "router win_rate";
    RS_TRY(rs_query_check_trace(setup, who, err));
    RS_CHECK(setup->trace->num_experts >= 2, err, "%s: needs at least two models, %s has %d", who,
             setup->trace->path, setup->trace->num_experts);
    win_rate_state *s = calloc(1, sizeof *s);
    RS_CHECK(s, err, "%s: out of memory", who);
    s->strong = s->weak = -1;
    s->margin = rs_param_bool(params, "margin");
    s->tau = rs_param_float(params, "tau");
    int rc = rs_query_split_init(&s->split, params, who, err);
    if (rc == 0 && rs_param_is_set(params, "strong"))
        rc = rs_query_model(setup->trace, who, "strong", rs_param_str(params, "strong"), &s->strong, err);
    if (rc == 0 && rs_param_is_set(params, "weak"))
        rc = rs_query_model(setup->trace, who, "weak", rs_param_str(params, "weak"), &s->weak, err);
    if (rc == 0 && (s->strong < 0 || s->weak < 0))
        rc = default_pair(s, setup, who, err);
    if (rc == 0 && s->strong == s->weak)
        rc = rs_fail(err, "%s: strong and weak are the same model (%d)", who, s->strong);
    if (rc == 0)
        rc = rs_query_scores_init(&s->scores, params, setup, &s->split, who, &shape->needs, err);
    if (rc == 0 && rs_param_is_set(params, "tau_quantile")) {
        double q = rs_param_float(params, "tau_quantile");
        s->strict = q == 1.0;
        rc = quantile_tau(s, setup, q, who, err);
    }
    if (rc != 0) {
        win_rate_destroy(s);
        return -1;
    }
    shape->kmax = 1;
    *state = s;
    return 0;
}

static void win_rate_route_layer(void *state, const rs_chunk *c, int layer, rs_decisions *out)
{
    const win_rate_state *s = state;
    for (int t = 0; t < c->n; t++) {
        size_t row = rs_decision_row(c, out, t, layer);
        if (rs_query_is_training(&s->split, c->t0 + t)) {
            rs_query_mark_training(out->ids + row, out->weights + row, 1);
            continue;
        }
        double w = win_value(s, rs_query_score_row(&s->scores, c, t));
        int strong = s->strict ? w > s->tau : w >= s->tau;
        out->ids[row] = strong ? s->strong : s->weak;
        out->weights[row] = 1.0f;
    }
}

static const rs_router_type win_rate_type = {
    .name = "win_rate",
    .summary = "the strong model iff its estimated advantage over the weak one reaches tau (RouteLLM)",
    .formula = "m_t = strong if w_t >= tau else weak; w_t = score_t[strong] - score_t[weak] (margin=1) or "
               "score_t[strong]; tau_quantile: tau = that quantile of w over the evaluated queries",
    .source = "RouteLLM arXiv:2406.18665 (lm-sys/RouteLLM routellm/evals/benchmarks.py: thresholds as quantiles)",
    .params = win_rate_params,
    .num_params = sizeof win_rate_params / sizeof win_rate_params[0],
    .flags = RS_ROUTER_CAUSAL | RS_ROUTER_QUERY,
    .needs = 0,
    .create = win_rate_create,
    .route_layer = win_rate_route_layer,
    .destroy = win_rate_destroy,
};

const rs_router_type *const rs_router_win_rate = &win_rate_type;
