/* The query-level routers (routers.md section G) on small traces whose
 * decisions are worked out by hand in the comments, plus their errors. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "routers/query/query_util.h"
#include "tests/query/check_query.h"

enum { E = 3 };
static const char *const names3[E] = {"small", "medium", "large"};

/* Six queries; costs per query. Query 3 nobody evaluated, query 5 nobody got right. */
static const float quality6[6 * E] = {1, 0, 1, 0, 0, 1, 0.5f, 0.25f, 0, NAN, NAN, NAN, 1, NAN, 0, 0, 0, 0};
static const float cost6[6 * E] = {1, 2, 3, 1, 2, 3, 0.5f, 2, 3, 1, 1, 1, 0, 2, 0.25f, 1, 2, 3};
/* Scores for cost_aware / win_rate / cascade. */
static const float logits6[6 * E] = {0.2f, 0.5f, 0.9f, 0.5f, 0.5f, 0.5f, 0.7f, 0.1f, 0.1f,
                                     0.1f, 0.2f, 0.3f, 0,    0.4f, 0.3f, 0,    0.6f, -0.2f};

static const char *trace6(void)
{
    static char path[1024];
    if (!path[0]) {
        snprintf(path, sizeof path, "%s", rs_test_path("six.h5"));
        query_trace q = {.T = 6, .E = E, .quality = quality6, .cost = cost6, .logits = logits6, .names = names3};
        query_trace_write(path, &q);
    }
    return path;
}

static void expect_ids(const char *spec, const int32_t *want, int T)
{
    query_decisions d = query_route(trace6(), spec, 1, 0);
    ck_assert_int_eq(d.T, T);
    for (int t = 0; t < T; t++)
        ck_assert_msg(d.ids[t * d.kmax] == want[t], "%s: query %d got %d, want %d", spec, t, d.ids[t * d.kmax],
                      want[t]);
    query_decisions_free(&d);
}

START_TEST(oracle_by_hand)
{
    /* query 0: models 0 and 2 score 1, model 0 is cheaper (1 < 3); 1: model 2; 2: model 0 (0.5);
     * 3: nobody evaluated -> none; 4: model 0 (1; model 1 NaN); 5: nobody > 0 -> none (skip) */
    const int32_t skip[6] = {0, 2, 0, -1, 0, -1};
    expect_ids("oracle", skip, 6);
    /* none_correct=cheapest: query 5 goes to model 0 (cost 1 < 2 < 3) */
    const int32_t cheapest[6] = {0, 2, 0, -1, 0, 0};
    expect_ids("oracle:none_correct=cheapest", cheapest, 6);
}
END_TEST

START_TEST(oracle_ties)
{
    /* by hand: row 0 all 1, costs 2,1,1 -> model 1 (cheapest, then lower index);
     * row 1: 0.5, 0.5, 0.2 with costs 1,1,0 -> model 0 (cost tie -> lower index);
     * row 2: 0, NaN, 0: nobody right; cheapest evaluated is model 2 (cost 2 < 3; model 1 is NaN) */
    const float q[3 * E] = {1, 1, 1, 0.5f, 0.5f, 0.2f, 0, NAN, 0};
    const float c[3 * E] = {2, 1, 1, 1, 1, 0, 3, 0, 2};
    const char *path = rs_test_path("ties.h5");
    query_trace qt = {.T = 3, .E = E, .quality = q, .cost = c};
    query_trace_write(path, &qt);
    query_decisions d = query_route(path, "oracle:none_correct=cheapest", 1, 0);
    ck_assert_int_eq(d.ids[0], 1);
    ck_assert_int_eq(d.ids[1], 0);
    ck_assert_int_eq(d.ids[2], 2);
    ck_assert(d.weights[0] == 1.0f);
    query_decisions_free(&d);
    d = query_route(path, "oracle", 1, 0);
    ck_assert_int_eq(d.ids[2], -1);
    ck_assert(d.weights[2] == 0.0f);
    query_decisions_free(&d);
}
END_TEST

START_TEST(fixed_by_name_and_index)
{
    const int32_t medium[6] = {1, 1, 1, 1, 1, 1}, large[6] = {2, 2, 2, 2, 2, 2};
    expect_ids("fixed:model=medium", medium, 6);
    expect_ids("fixed:model=2", large, 6);
    query_route_fails(trace6(), "fixed:model=huge", "'huge' is not a model of");
    query_route_fails(trace6(), "fixed:model=3", "models: small, medium, large");
    query_route_fails(trace6(), "fixed", "parameter model is required");
}
END_TEST

START_TEST(random_mix_follows_its_weights)
{
    const int32_t zero[6] = {0, 0, 0, 0, 0, 0}, two[6] = {2, 2, 2, 2, 2, 2};
    expect_ids("random_mix:weights=1|0|0", zero, 6);
    expect_ids("random_mix:weights=0|0|5", two, 6);
    query_route_fails(trace6(), "random_mix:weights=1|2", "has 2 values, the trace has 3 models");
    query_route_fails(trace6(), "random_mix:weights=1|-1|0", "negative");
    query_route_fails(trace6(), "random_mix:weights=0|0|0", "every weight is 0");
    /* shares on many queries: within 5 binomial standard deviations of 0.2 / 0.3 / 0.5 */
    enum { N = 20000 };
    float *q = malloc((size_t)N * E * sizeof *q);
    for (int i = 0; i < N * E; i++)
        q[i] = (float)(i % 2);
    const char *path = rs_test_path("many.h5");
    query_trace qt = {.T = N, .E = E, .quality = q};
    query_trace_write(path, &qt);
    free(q);
    query_decisions a = query_route(path, "random_mix:weights=2|3|5,seed=7", 1, 0);
    query_decisions b = query_route(path, "random_mix:weights=2|3|5,seed=7", 2, 333);
    query_decisions c = query_route(path, "random_mix:weights=2|3|5,seed=8", 1, 0);
    int counts[E] = {0}, differ = 0;
    for (int t = 0; t < N; t++) {
        counts[a.ids[t]]++;
        ck_assert_int_eq(a.ids[t], b.ids[t]); /* same seed: same draws, whatever the chunks and threads */
        differ += a.ids[t] != c.ids[t];
    }
    const double want[E] = {0.2, 0.3, 0.5};
    for (int e = 0; e < E; e++)
        ck_assert_msg(fabs(counts[e] - N * want[e]) < 5 * sqrt(N * want[e] * (1 - want[e])), "model %d: %d of %d", e,
                      counts[e], N);
    ck_assert_int_gt(differ, N / 3); /* another seed: other draws */
    query_decisions_free(&a);
    query_decisions_free(&b);
    query_decisions_free(&c);
}
END_TEST

START_TEST(cost_aware_by_hand)
{
    /* lambda = 0: argmax of the logits, ties to the lower index:
     * rows 0.2 .5 .9 -> 2; .5 .5 .5 -> 0; .7 .1 .1 -> 0; .1 .2 .3 -> 2; 0 .4 .3 -> 1; 0 .6 -.2 -> 1 */
    const int32_t free_[6] = {2, 0, 0, 2, 1, 1};
    expect_ids("cost_aware:lambda=0", free_, 6);
    /* lambda = 0.5, value = score - 0.5 cost:
     * row 0: .2-.5=-.3, .5-1=-.5, .9-1.5=-.6 -> 0; row 1: .5-.5, .5-1, .5-1.5 -> 0;
     * row 2: .7-.25=.45, .1-1, .1-1.5 -> 0; row 3 (costs 1 1 1): .1-.5, .2-.5, .3-.5 -> 2;
     * row 4 (costs 0 2 .25): 0, .4-1, .3-.125=.175 -> 2; row 5 (costs 1 2 3): -.5, -.4, -1.7 -> 1 */
    const int32_t priced[6] = {0, 0, 0, 2, 2, 1};
    expect_ids("cost_aware:lambda=0.5", priced, 6);
    query_route_fails(trace6(), "cost_aware:score=domain_prior", "set train_share");
}
END_TEST

START_TEST(win_rate_by_hand)
{
    /* strong = large (2), weak = small (0), w = score[2] - score[0]:
     * rows: .7, 0, -.6, .2, .3, -.2. tau = 0.1: strong on rows 0, 3, 4 */
    const int32_t tau[6] = {2, 0, 0, 2, 2, 0};
    expect_ids("win_rate:strong=large,weak=small,tau=0.1", tau, 6);
    /* the same pair by default: large has the largest mean cost (13.25/6), small the lowest (4.5/6) */
    expect_ids("win_rate:tau=0.1", tau, 6);
    /* margin=0: w = score[2]: .9 .5 .1 .3 .3 -.2; tau = 0.4 -> rows 0, 1 */
    const int32_t plain[6] = {2, 2, 0, 0, 0, 0};
    expect_ids("win_rate:strong=2,weak=0,margin=0,tau=0.4", plain, 6);
    /* tau_quantile over the evaluated queries (query 3 has no quality: left out):
     * w of queries 0,1,2,4,5 sorted: -.6, -.2, 0, .3, .7. q = 0.5 -> index 2 -> tau = 0 -> rows 0, 1, 4 (and 3: .2) */
    const int32_t median[6] = {2, 2, 0, 2, 2, 0};
    expect_ids("win_rate:tau_quantile=0.5", median, 6);
    /* q = 0 -> tau = -0.6 -> every query strong; q = 1 -> tau = 0.7 with > -> none (RouteLLM's last threshold) */
    const int32_t all[6] = {2, 2, 2, 2, 2, 2}, none[6] = {0, 0, 0, 0, 0, 0};
    expect_ids("win_rate:tau_quantile=0", all, 6);
    expect_ids("win_rate:tau_quantile=1", none, 6);
    /* q = 0.25 -> virtual index 1 -> tau = -0.2 -> every w >= -0.2: all but row 2 */
    const int32_t quarter[6] = {2, 2, 0, 2, 2, 2};
    expect_ids("win_rate:tau_quantile=0.25", quarter, 6);
    query_route_fails(trace6(), "win_rate:strong=small,weak=0", "the same model");
}
END_TEST

START_TEST(win_rate_needs_a_pair_without_costs)
{
    const char *path = rs_test_path("nocost.h5");
    query_trace qt = {.T = 6, .E = E, .quality = quality6, .logits = logits6};
    query_trace_write(path, &qt);
    query_route_fails(path, "win_rate", "name the strong and weak models");
    query_decisions d = query_route(path, "win_rate:strong=2,weak=0,tau=0.1", 1, 0);
    ck_assert_int_eq(d.ids[0], 2);
    query_decisions_free(&d);
}
END_TEST

START_TEST(cascade_pays_every_model_tried)
{
    /* order small, medium, large; threshold 0.5 on the logits:
     * row 0 (.2 .5 .9): small fails, medium .5 >= .5 answers -> ids 0 1, weights 0 1
     * row 2 (.7 ...): small answers -> ids 0, weight 1
     * row 3 (.1 .2 .3): nobody reaches .5 -> the last (large) answers -> ids 0 1 2, weights 0 0 1 */
    query_decisions d = query_route(trace6(), "cascade:order=small|medium|large,threshold=0.5", 1, 0);
    ck_assert_int_eq(d.kmax, 3);
    const int32_t *r0 = d.ids, *r2 = d.ids + 6, *r3 = d.ids + 9;
    ck_assert(r0[0] == 0 && r0[1] == 1 && r0[2] == -1);
    ck_assert(d.weights[0] == 0 && d.weights[1] == 1 && d.weights[2] == 0);
    ck_assert(r2[0] == 0 && r2[1] == -1 && r2[2] == -1 && d.weights[6] == 1);
    ck_assert(r3[0] == 0 && r3[1] == 1 && r3[2] == 2 && d.weights[9] == 0 && d.weights[10] == 0 &&
              d.weights[11] == 1);
    query_decisions_free(&d);
    /* default order: each query's cheapest first. Row 4 costs 0, 2, 0.25 -> order 0, 2, 1;
     * scores 0, .4, .3 with thresholds by position .35 | .25: model 0 (0 < .35), model 2 (.3 >= .25) answers */
    d = query_route(trace6(), "cascade:thresholds=0.35|0.25", 1, 0);
    const int32_t *r4 = d.ids + 12;
    ck_assert(r4[0] == 0 && r4[1] == 2 && r4[2] == -1);
    ck_assert(d.weights[12] == 0 && d.weights[13] == 1);
    /* row 3 (costs 1 1 1: index order), scores .1 .2 .3: 0 fails .35, 1 fails .25, 2 answers */
    ck_assert(d.ids[9] == 0 && d.ids[10] == 1 && d.ids[11] == 2);
    query_decisions_free(&d);
    query_route_fails(trace6(), "cascade:thresholds=0.5", "needs 2 (the last model always answers)");
    query_route_fails(trace6(), "cascade:order=small|small", "listed twice");
}
END_TEST

START_TEST(bandit_by_hand)
{
    /* two models, epsilon 0 (greedy after trying each once, in index order):
     * t0: untried 0, q 0; t1: untried 1, q 1; t2: means 0 | 1 -> 1 (q 0, mean .5); t3: 0 | .5 -> 1 (q 1);
     * t4: 1 (q 1); t5: 1 */
    const float q[6 * 2] = {0, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0};
    const char *path = rs_test_path("bandit.h5");
    const float model_cost[2] = {0, 1};
    query_trace qt = {.T = 6, .E = 2, .quality = q, .model_cost = model_cost};
    query_trace_write(path, &qt);
    query_decisions d = query_route(path, "bandit:epsilon=0", 1, 0);
    const int32_t greedy[6] = {0, 1, 1, 1, 1, 1};
    for (int t = 0; t < 6; t++)
        ck_assert_int_eq(d.ids[t], greedy[t]);
    query_decisions_free(&d);
    /* pref 0.9, cost of model 1 = 1: its rewards are q - 0.9.
     * t0: 0 (r 0); t1: 1 (r .1); t2: 0 | .1 -> 1 (q 0, r -.9, mean -.4); t3: 0 | -.4 -> 0 (r 0);
     * t4: 0 (q 1, mean .5); t5: 0 */
    d = query_route(path, "bandit:epsilon=0,pref=0.9", 1, 1);
    const int32_t priced[6] = {0, 1, 1, 0, 0, 0};
    for (int t = 0; t < 6; t++)
        ck_assert_int_eq(d.ids[t], priced[t]);
    query_decisions_free(&d);
    /* per domain: domains alternate, so each domain tries model 0, then 1, on its own */
    const int32_t domain[6] = {0, 1, 0, 1, 0, 1};
    const char *dpath = rs_test_path("bandit_domains.h5");
    query_trace dq = {.T = 6, .E = 2, .quality = q, .domain = domain, .num_domains = 2};
    query_trace_write(dpath, &dq);
    d = query_route(dpath, "bandit:epsilon=0,per_domain=1", 1, 0);
    ck_assert(d.ids[0] == 0 && d.ids[1] == 0 && d.ids[2] == 1 && d.ids[3] == 1);
    query_decisions_free(&d);
    query_route_fails(path, "bandit:per_domain=1", "needs /sequences/domain");
}
END_TEST

START_TEST(training_split_is_shared_and_marked)
{
    enum { N = 4000 };
    float *q = malloc((size_t)N * E * sizeof *q);
    for (int i = 0; i < N * E; i++)
        q[i] = (float)((i * 7) % 5) / 4.0f;
    const char *path = rs_test_path("split.h5");
    query_trace qt = {.T = N, .E = E, .quality = q};
    query_trace_write(path, &qt);
    free(q);
    query_decisions a = query_route(path, "oracle:train_share=0.3,split_seed=5", 1, 0);
    query_decisions b = query_route(path, "fixed:model=1,train_share=0.3,split_seed=5", 2, 97);
    int training = 0;
    rs_query_split split = {0.3, 5};
    for (int t = 0; t < N; t++) {
        int marked = a.ids[t] == RS_ID_TRAINING;
        ck_assert_int_eq(marked, b.ids[t] == RS_ID_TRAINING); /* the same split for every router */
        ck_assert_int_eq(marked, rs_query_is_training(&split, t));
        training += marked;
    }
    ck_assert_msg(fabs(training - 0.3 * N) < 5 * sqrt(N * 0.3 * 0.7), "%d training queries of %d", training, N);
    query_decisions_free(&a);
    query_decisions_free(&b);
    query_route_fails(path, "fixed:model=0,train_share=1", "leaves no query to evaluate");
}
END_TEST

/* domain_prior: a model's mean quality over the training queries of the
 * query's domain, computed here from the definition and the split. */
START_TEST(domain_prior_from_the_training_split)
{
    enum { N = 400, D = 3 };
    float *q = malloc((size_t)N * E * sizeof *q);
    int32_t *domain = malloc((size_t)N * sizeof *domain);
    for (int t = 0; t < N; t++) {
        domain[t] = (t / 7) % D;
        for (int e = 0; e < E; e++) /* model e is best in domain e, with noise from the query index */
            q[t * E + e] = (float)(((t * 13 + e * 5) % 10 < (e == domain[t] ? 8 : 5)));
    }
    q[5 * E + 1] = NAN; /* not evaluated: left out of the mean */
    const char *path = rs_test_path("prior.h5");
    query_trace qt = {.T = N, .E = E, .quality = q, .domain = domain, .num_domains = D};
    query_trace_write(path, &qt);
    rs_query_split split = {0.5, 3};
    double sum[D][E] = {{0}}, count[D][E] = {{0}};
    for (int t = 0; t < N; t++)
        for (int e = 0; e < E; e++)
            if (rs_query_is_training(&split, t) && !isnan(q[t * E + e])) {
                sum[domain[t]][e] += q[t * E + e];
                count[domain[t]][e] += 1;
            }
    query_decisions d = query_route(path, "cost_aware:train_share=0.5,split_seed=3", 1, 0);
    for (int t = 0; t < N; t++) {
        if (rs_query_is_training(&split, t)) {
            ck_assert_int_eq(d.ids[t], RS_ID_TRAINING);
            continue;
        }
        int best = 0;
        float best_prior = (float)(sum[domain[t]][0] / count[domain[t]][0]);
        for (int e = 1; e < E; e++) {
            float prior = (float)(sum[domain[t]][e] / count[domain[t]][e]);
            if (prior > best_prior) {
                best_prior = prior;
                best = e;
            }
        }
        ck_assert_int_eq(d.ids[t], best);
    }
    query_decisions_free(&d);
    free(q);
    free(domain);
}
END_TEST

START_TEST(query_routers_refuse_token_traces)
{
    const char *path = rs_test_path("tokens.h5");
    float *z = rs_test_random_logits(10, 2, 4, 1);
    const int64_t offsets[2] = {0, 10};
    rs_test_trace tt = {.T = 10, .L = 2, .E = 4, .num_seq = 1, .offsets = offsets, .logits = z};
    rs_test_write_trace(path, &tt);
    free(z);
    for (int r = 0; r < rs_router_count(); r++) {
        const rs_router_type *type = rs_router_at(r);
        if (!(type->flags & RS_ROUTER_QUERY))
            continue;
        char spec[128];
        snprintf(spec, sizeof spec, "%s%s", type->name, strcmp(type->name, "fixed") == 0 ? ":model=0" : "");
        query_route_fails(path, spec, "routes whole queries among models");
    }
}
END_TEST

START_TEST(score_sources_need_their_data)
{
    const char *path = rs_test_path("outcome_only.h5");
    query_trace qt = {.T = 6, .E = E, .quality = quality6, .cost = cost6};
    query_trace_write(path, &qt);
    query_route_fails(path, "cost_aware:score=logits", "score=logits needs /router/logits");
    query_route_fails(path, "cascade", "set train_share"); /* auto -> domain_prior without a split */
    query_decisions d = query_route(path, "cascade:train_share=0.5", 1, 0);
    query_decisions_free(&d);
}
END_TEST

Suite *query_routers_suite(void)
{
    Suite *s = suite_create("query_routers");
    TCase *tc = tcase_create("query_routers");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, oracle_by_hand);
    tcase_add_test(tc, oracle_ties);
    tcase_add_test(tc, fixed_by_name_and_index);
    tcase_add_test(tc, random_mix_follows_its_weights);
    tcase_add_test(tc, cost_aware_by_hand);
    tcase_add_test(tc, win_rate_by_hand);
    tcase_add_test(tc, win_rate_needs_a_pair_without_costs);
    tcase_add_test(tc, cascade_pays_every_model_tried);
    tcase_add_test(tc, bandit_by_hand);
    tcase_add_test(tc, training_split_is_shared_and_marked);
    tcase_add_test(tc, domain_prior_from_the_training_split);
    tcase_add_test(tc, query_routers_refuse_token_traces);
    tcase_add_test(tc, score_sources_need_their_data);
    suite_add_tcase(s, tc);
    return s;
}
