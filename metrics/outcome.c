/* outcome: what query routing buys (unit = query traces with
 * /outcome/quality): the quality of the answers, what the calls cost, and
 * how far that is from the per-query oracle and the single models
 * (docs/metrics.md "Query routing").
 *
 * Per decision row: the answer is the listed model with the largest weight
 * (the first on ties), and every listed model is paid (a cascade lists the
 * models it tried with weight 0). A row without models answers nothing:
 * quality 0, cost 0 (RouterBench's "no model"). A query is left out
 * (`skipped`) when it was not observed (invalid token, a row marked
 * RS_ID_UNOBSERVED), every model's quality is NaN, or its answer's quality
 * is NaN; a row starting with RS_ID_TRAINING is a
 * query the router fitted itself on (`training`), also left out. Every
 * value below is over the same evaluated queries. Sums are exact (64.64
 * fixed point), so results do not depend on chunks, threads or merge order.
 * arena_score is RouterArena's score of the same mean quality and of the
 * cost per 1,000 queries counted as RouterArena counts it: over every query
 * scored, skipped ones included at cost 0 (metrics/arena_score.h).
 * Memory: O(E). Without outcomes (token traces) every value is NaN. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/arena_score.h"
#include "workloads/trace/query_models.h"
#include "routesim/metric.h"
#include "routesim/router.h"
#include "routesim/xsum.h"

enum {
    OUT_QUERIES,
    OUT_TRAINING,
    OUT_SKIPPED,
    OUT_QUALITY,
    OUT_COST_TOTAL,
    OUT_COST_MEAN,
    OUT_ORACLE_QUALITY,
    OUT_ORACLE_COST,
    OUT_ORACLE_GAP,
    OUT_RECOVERED,
    OUT_MODEL_QUALITY,
    OUT_MODEL_COST,
    OUT_SHARE,
    OUT_STRONG_CALLS,
    OUT_STRONG_QUALITY,
    OUT_WEAK_QUALITY,
    OUT_ARENA_SCORE,
};
enum { PARAM_NONE_CORRECT, PARAM_STRONG, PARAM_WEAK, PARAM_P, PARAM_ARENA_BETA };

static const rs_param_def outcome_params[] = {
    [PARAM_NONE_CORRECT] = {"none_correct", RS_PARAM_ENUM, "skip", 0, 0, "skip|cheapest",
                            "oracle_*: a query no model gets right (quality > 0) costs nothing and scores 0 "
                            "(skip, RouterBench) or goes to the cheapest model"},
    [PARAM_STRONG] = {"strong", RS_PARAM_STRING, NULL, 0, 0, NULL,
                      "strong model of strong_* and the curves (name or index); default: the best single model"},
    [PARAM_WEAK] = {"weak", RS_PARAM_STRING, NULL, 0, 0, NULL,
                    "weak model of weak_quality and the curves; default: the worst single model"},
    [PARAM_P] = {"p", RS_PARAM_FLOAT, "0.5", 1e-9, 1, NULL,
                 "curve.cpt: share of the weak-to-strong quality gap to reach (RouteLLM CPT(p))"},
    [PARAM_ARENA_BETA] = {"arena_beta", RS_PARAM_FLOAT, "0.1", 0, 1e6, NULL,
                          "arena_score: RouterArena's beta, the weight of accuracy against cost (0.1 on its "
                          "leaderboard)"},
};

#define USES(p) (1ull << (p))

static const rs_metric_output outcome_outputs[] = {
    [OUT_QUERIES] = {"queries", "queries evaluated (not training, not skipped)", 0, RS_AGG_SELF,
                     .label = "queries evaluated"},
    [OUT_TRAINING] = {"training", "queries the router fitted itself on (its training split), left out", 0, RS_AGG_SELF,
                      .label = NULL},
    [OUT_SKIPPED] = {"skipped",
                     "queries left out: not observed (invalid token), every model's quality NaN, or the answer's quality NaN", 0,
                     RS_AGG_SELF, .label = NULL},
    [OUT_QUALITY] = {"quality", "mean quality of the answering model (0 when the row names no model)", 0, RS_AGG_SELF,
                     .label = "mean quality"},
    [OUT_COST_TOTAL] = {"cost_total", "sum over queries of the cost of every model called (NaN without /outcome/cost)",
                        0, RS_AGG_SELF, .label = "total cost"},
    [OUT_COST_MEAN] = {"cost_mean", "cost_total / queries", 0, RS_AGG_SELF, .label = "mean cost per query"},
    [OUT_ORACLE_QUALITY] = {"oracle_quality",
                            "mean quality of the per-query oracle (best model, ties to the cheapest, then the lower "
                            "index)",
                            USES(PARAM_NONE_CORRECT), RS_AGG_SELF, .label = "oracle quality"},
    [OUT_ORACLE_COST] = {"oracle_cost", "mean cost per query of the oracle's model (0 for a query it skips)",
                         USES(PARAM_NONE_CORRECT), RS_AGG_SELF, .label = "oracle cost"},
    [OUT_ORACLE_GAP] = {"oracle_gap", "oracle_quality - quality", USES(PARAM_NONE_CORRECT), RS_AGG_SELF,
                        .label = "quality gap to the oracle"},
    [OUT_RECOVERED] = {"recovered",
                       "(quality - q_weakest) / (oracle_quality - q_weakest), q_weakest = the worst model_quality",
                       USES(PARAM_NONE_CORRECT), RS_AGG_SELF, .label = "oracle gap recovered", .unit = "%",
                       .unit_scale = 100},
    [OUT_MODEL_QUALITY] = {"model_quality",
                           "per model (key model=NAME): its mean quality over the evaluated queries it was "
                           "evaluated on",
                           0, RS_AGG_SELF, .label = "model quality"},
    [OUT_MODEL_COST] = {"model_cost", "per model: its mean cost over the same queries (the single-model point)", 0,
                        RS_AGG_SELF, .label = "model cost per query"},
    [OUT_SHARE] = {"share", "per model: share of evaluated queries it answered", 0, RS_AGG_SELF,
                   .label = "queries answered", .unit = "%", .unit_scale = 100},
    [OUT_STRONG_CALLS] = {"strong_calls",
                          "share of evaluated queries on which the strong model was called (RouteLLM's "
                          "x axis)",
                          USES(PARAM_STRONG), RS_AGG_SELF, .label = "strong-model calls", .unit = "%",
                          .unit_scale = 100},
    [OUT_STRONG_QUALITY] = {"strong_quality", "model_quality of the strong model", USES(PARAM_STRONG), RS_AGG_SELF,
                            .label = NULL},
    [OUT_WEAK_QUALITY] = {"weak_quality", "model_quality of the weak model", USES(PARAM_WEAK), RS_AGG_SELF,
                          .label = NULL},
    [OUT_ARENA_SCORE] = {"arena_score",
                         "RouterArena's (1 + beta) A C / (beta A + C), A = quality, C = (log2 200 - log2 c) / "
                         "(log2 200 - log2 0.0044), c = 1000 cost_total / (queries + skipped) clamped to [0.0044, "
                         "200] (costs in USD)",
                         USES(PARAM_ARENA_BETA), RS_AGG_SELF, .label = "arena score"},
};

typedef struct model_stats {
    rs_xsum quality, cost; /* over evaluated queries where the model was evaluated */
    int64_t answered, called;
} model_stats;

typedef struct outcome_acc {
    int E, has_quality, has_cost;
    int skip_none_correct;
    int strong, weak; /* -1: the best / worst single model */
    double arena_beta;
    const char *const *names;
    int64_t queries, training, skipped;
    rs_xsum quality, cost, oracle_quality, oracle_cost;
    model_stats *models; /* [E] */
} outcome_acc;

static void outcome_destroy(void *p)
{
    outcome_acc *a = p;
    if (a)
        free(a->models);
    free(a);
}

static int outcome_create(void **out, const rs_params *params, const rs_metric_setup *setup, rs_error *err)
{
    const rs_trace_info *info = setup->trace;
    outcome_acc *a = calloc(1, sizeof *a);
    RS_CHECK(a, err, "metric outcome: out of memory");
    a->E = info->num_experts;
    a->has_quality = info->has_quality;
    a->has_cost = info->has_cost;
    a->names = info->expert_names;
    a->skip_none_correct = strcmp(rs_param_str(params, "none_correct"), "skip") == 0;
    a->strong = a->weak = -1;
    a->arena_beta = rs_param_float(params, "arena_beta");
    int rc = 0;
    if (rs_param_is_set(params, "strong"))
        rc = rs_query_model(info, "metric outcome", "strong", rs_param_str(params, "strong"), &a->strong, err);
    if (rc == 0 && rs_param_is_set(params, "weak"))
        rc = rs_query_model(info, "metric outcome", "weak", rs_param_str(params, "weak"), &a->weak, err);
    if (rc == 0 && !(a->models = calloc((size_t)a->E, sizeof *a->models)))
        rc = rs_fail(err, "metric outcome: out of memory");
    if (rc != 0) {
        outcome_destroy(a);
        return -1;
    }
    *out = a;
    return 0;
}

/* The answer of a decision row: the listed model with the largest weight, the first on ties; -1 if none. */
static int answer_of(const int32_t *ids, const float *w, int k)
{
    int best = -1;
    for (int j = 0; j < k; j++)
        if (ids[j] >= 0 && (best < 0 || w[j] > w[best]))
            best = j;
    return best < 0 ? -1 : ids[best];
}

static void outcome_update_layer(void *acc, const rs_chunk *c, int layer, const rs_decisions *dec,
                                 const rs_metric_ref *ref)
{
    (void)ref;
    outcome_acc *a = acc;
    if (!c->quality) /* no outcomes: nothing to measure */
        return;
    const int E = a->E, K = dec->kmax;
    for (int t = 0; t < c->n; t++) {
        const size_t row = rs_decision_row(c, dec, t, layer);
        const int32_t *ids = dec->ids + row;
        const float *q = c->quality + (size_t)t * (size_t)E;
        const float *cost = c->cost ? c->cost + (size_t)t * (size_t)E : NULL;
        if (!rs_row_observed(c, dec, t, layer)) { /* a skipped token, or its replayed row */
            a->skipped += rs_token_in_view(c, t);
            continue;
        }
        if (ids[0] == RS_ID_TRAINING) {
            a->training++;
            continue;
        }
        int answer = answer_of(ids, dec->weights + row, K);
        if (rs_query_unscored(q, E) || (answer >= 0 && q[answer] != q[answer])) {
            a->skipped++;
            continue;
        }
        a->queries++;
        rs_xsum_add(&a->quality, answer >= 0 ? (double)q[answer] : 0.0);
        double paid = 0;
        for (int j = 0; j < K; j++) {
            if (ids[j] < 0)
                continue;
            paid += cost ? (double)cost[ids[j]] : 0.0;
            a->models[ids[j]].called++;
        }
        rs_xsum_add(&a->cost, paid);
        if (answer >= 0)
            a->models[answer].answered++;
        for (int e = 0; e < E; e++) {
            if (q[e] != q[e])
                continue;
            rs_xsum_add(&a->models[e].quality, (double)q[e]);
            rs_xsum_add(&a->models[e].cost, cost ? (double)cost[e] : 0.0);
        }
        int o = rs_query_oracle_choice(q, cost, E, a->skip_none_correct);
        rs_xsum_add(&a->oracle_quality, o >= 0 ? (double)q[o] : 0.0);
        rs_xsum_add(&a->oracle_cost, o >= 0 && cost ? (double)cost[o] : 0.0);
    }
}

static int outcome_merge(void *acc, const void *other, rs_error *err)
{
    (void)err;
    outcome_acc *a = acc;
    const outcome_acc *b = other;
    a->queries += b->queries;
    a->training += b->training;
    a->skipped += b->skipped;
    rs_xsum_merge(&a->quality, &b->quality);
    rs_xsum_merge(&a->cost, &b->cost);
    rs_xsum_merge(&a->oracle_quality, &b->oracle_quality);
    rs_xsum_merge(&a->oracle_cost, &b->oracle_cost);
    for (int e = 0; e < a->E; e++) {
        rs_xsum_merge(&a->models[e].quality, &b->models[e].quality);
        rs_xsum_merge(&a->models[e].cost, &b->models[e].cost);
        a->models[e].answered += b->models[e].answered;
        a->models[e].called += b->models[e].called;
    }
    return 0;
}

static double model_quality(const outcome_acc *a, int e) { return rs_xsum_mean(&a->models[e].quality); }

/* Default strong = the best single model (ties to the lower index), weak =
 * the worst other one (ties to the higher index). */
static void resolve_pair(const outcome_acc *a, int *strong, int *weak)
{
    *strong = a->strong;
    *weak = a->weak;
    for (int e = 0; e < a->E && a->strong < 0; e++) {
        double v = model_quality(a, e);
        if (!isnan(v) && e != *weak && (*strong < 0 || v > model_quality(a, *strong)))
            *strong = e;
    }
    for (int e = 0; e < a->E && a->weak < 0; e++) {
        double v = model_quality(a, e);
        if (!isnan(v) && e != *strong && (*weak < 0 || v <= model_quality(a, *weak)))
            *weak = e;
    }
}

static void model_key(const outcome_acc *a, int e, char *key, size_t size)
{
    const char *name = a->names ? a->names[e] : NULL;
    if (name && strlen(name) + 7 <= size)
        snprintf(key, size, "model=%s", name);
    else
        snprintf(key, size, "model=%d", e);
}

static void outcome_finalize(const void *acc, rs_metric_sink *sink)
{
    const outcome_acc *a = acc;
    const double n = (double)a->queries;
    double quality = NAN, cost_total = NAN, oracle_quality = NAN, oracle_cost = NAN;
    if (a->has_quality && a->queries > 0) {
        quality = rs_xsum_value(&a->quality) / n;
        oracle_quality = rs_xsum_value(&a->oracle_quality) / n;
        if (a->has_cost)
            oracle_cost = rs_xsum_value(&a->oracle_cost) / n;
    }
    if (a->has_quality && a->has_cost)
        cost_total = rs_xsum_value(&a->cost);
    rs_metric_emit(sink, OUT_QUERIES, -1, NULL, (double)a->queries);
    rs_metric_emit(sink, OUT_TRAINING, -1, NULL, (double)a->training);
    rs_metric_emit(sink, OUT_SKIPPED, -1, NULL, (double)a->skipped);
    rs_metric_emit(sink, OUT_QUALITY, -1, NULL, quality);
    rs_metric_emit(sink, OUT_COST_TOTAL, -1, NULL, cost_total);
    rs_metric_emit(sink, OUT_COST_MEAN, -1, NULL, a->queries > 0 ? cost_total / n : NAN);
    rs_metric_emit(sink, OUT_ORACLE_QUALITY, -1, NULL, oracle_quality);
    rs_metric_emit(sink, OUT_ORACLE_COST, -1, NULL, oracle_cost);
    rs_metric_emit(sink, OUT_ORACLE_GAP, -1, NULL, oracle_quality - quality);
    double weakest = NAN;
    for (int e = 0; e < a->E; e++) {
        double v = model_quality(a, e);
        if (!isnan(v) && (isnan(weakest) || v < weakest))
            weakest = v;
    }
    double span = oracle_quality - weakest;
    rs_metric_emit(sink, OUT_RECOVERED, -1, NULL, span != 0 ? (quality - weakest) / span : NAN);
    int strong = -1, weak = -1;
    if (a->has_quality) {
        char key[64];
        for (int e = 0; e < a->E; e++) {
            model_key(a, e, key, sizeof key);
            const model_stats *m = &a->models[e];
            rs_metric_emit(sink, OUT_MODEL_QUALITY, -1, key, rs_xsum_mean(&m->quality));
            rs_metric_emit(sink, OUT_MODEL_COST, -1, key, a->has_cost ? rs_xsum_mean(&m->cost) : NAN);
            rs_metric_emit(sink, OUT_SHARE, -1, key, a->queries > 0 ? (double)m->answered / n : NAN);
        }
        resolve_pair(a, &strong, &weak);
    }
    rs_metric_emit(sink, OUT_STRONG_CALLS, -1, NULL,
                   strong >= 0 && a->queries > 0 ? (double)a->models[strong].called / n : NAN);
    rs_metric_emit(sink, OUT_STRONG_QUALITY, -1, NULL, strong >= 0 ? model_quality(a, strong) : NAN);
    rs_metric_emit(sink, OUT_WEAK_QUALITY, -1, NULL, weak >= 0 ? model_quality(a, weak) : NAN);
    /* llm_evaluation/run.py compute_router_metrics: accuracy averaged over the
     * evaluated queries, cost summed over them and divided by every query
     * (len(predictions)): a skipped query counts at cost 0 */
    const int64_t scored = a->queries + a->skipped;
    double cost_per_1k = scored > 0 ? cost_total / (double)scored * 1000.0 : NAN;
    rs_metric_emit(sink, OUT_ARENA_SCORE, -1, NULL, rs_arena_score(quality, cost_per_1k, a->arena_beta));
}

static void outcome_checkpoint(void *p, rs_state_io *io)
{
    outcome_acc *a = p;
    RS_STATE(io, a->queries);
    RS_STATE(io, a->training);
    RS_STATE(io, a->skipped);
    RS_STATE(io, a->quality);
    RS_STATE(io, a->cost);
    RS_STATE(io, a->oracle_quality);
    RS_STATE(io, a->oracle_cost);
    RS_STATE_ARRAY(io, a->models, a->E);
}

static const rs_metric_type outcome_type = {
    .name = "outcome",
    .summary = "query routing (unit = query): quality and cost of the answers, oracle gap, share of the oracle "
               "recovered, single-model points",
    .source = "RouterBench arXiv:2403.12031 (withmartian/routerbench convertors/common.py oracle); RouteLLM "
              "arXiv:2406.18665 (lm-sys/RouteLLM routellm/evals/evaluate.py); RouterArena arXiv:2510.00202 "
              "(RouteWorks/RouterArena llm_evaluation/run.py compute_arena_score); metrics.md \"Oracle gaps\"",
    .params = outcome_params,
    .num_params = sizeof outcome_params / sizeof outcome_params[0],
    .outputs = outcome_outputs,
    .num_outputs = sizeof outcome_outputs / sizeof outcome_outputs[0],
    .needs = RS_WANTS_OUTCOME,
    .create = outcome_create,
    .update_layer = outcome_update_layer,
    .merge = outcome_merge,
    .finalize = outcome_finalize,
    .destroy = outcome_destroy,
    .checkpoint = outcome_checkpoint,
};

const rs_metric_type *const rs_metric_outcome = &outcome_type;
