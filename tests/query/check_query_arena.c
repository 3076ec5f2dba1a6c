/* outcome.arena_score: RouterArena's score (RouteWorks/RouterArena
 * llm_evaluation/run.py compute_arena_score) as a formula, with the figure
 * S = 0.6586468316 for A = 0.7518957671, c = 8.5434721952 USD per 1,000
 * queries, and through the metric: accuracy over the evaluated queries, cost
 * over every scored query (compute_router_metrics). */
#include <check.h>
#include <math.h>

#include "metrics/arena_score.h"
#include "tests/query/check_query.h"

START_TEST(formula_gives_routerarena_figure)
{
    ck_assert_double_eq_tol(rs_arena_score(0.7518957671, 8.5434721952, RS_ARENA_BETA), 0.6586468316, 5e-11);
    /* the same by hand: C = (log2 200 - log2 8.5434721952) / (log2 200 - log2 0.0044) */
    double C = (log2(200.0) - log2(8.5434721952)) / (log2(200.0) - log2(0.0044));
    ck_assert_double_eq_tol(C, 0.2940145684, 1e-10);
    ck_assert_double_eq_tol(1.1 * 0.7518957671 * C / (0.1 * 0.7518957671 + C), 0.6586468316, 5e-11);
}
END_TEST

START_TEST(formula_clamps_and_refuses_as_routerarena)
{
    /* below c_min: clamped, C = 1, S = 1.1 A / (0.1 A + 1) */
    ck_assert_double_eq_tol(rs_arena_score(0.5, 0.001, 0.1), 0.55 / 1.05, 1e-15);
    ck_assert_double_eq(rs_arena_score(0.5, 0.001, 0.1), rs_arena_score(0.5, 0.0044, 0.1));
    ck_assert_double_eq_tol(rs_arena_score(1.0, 0.0044, 0.1), 1.0, 1e-15);
    /* above c_max: C = 0, S = 0 */
    ck_assert_double_eq(rs_arena_score(0.5, 500, 0.1), 0.0);
    ck_assert_double_eq(rs_arena_score(0.5, 200, 0.1), 0.0);
    /* beta = 0: S = A */
    ck_assert_double_eq_tol(rs_arena_score(0.7, 3.0, 0.0), 0.7, 1e-15);
    /* where compute_arena_score raises (cost <= 0, accuracy outside [0, 1]) or divides by zero: NaN */
    ck_assert(isnan(rs_arena_score(0.5, 0.0, 0.1)));
    ck_assert(isnan(rs_arena_score(0.5, -1.0, 0.1)));
    ck_assert(isnan(rs_arena_score(0.5, NAN, 0.1)));
    ck_assert(isnan(rs_arena_score(1.5, 1.0, 0.1)));
    ck_assert(isnan(rs_arena_score(-0.1, 1.0, 0.1)));
    ck_assert(isnan(rs_arena_score(NAN, 1.0, 0.1)));
    ck_assert(isnan(rs_arena_score(0.0, 300.0, 0.1)));
    ck_assert_double_eq(rs_arena_score(0.0, 1.0, 0.1), 0.0);
}
END_TEST

enum { E = 2 };
static const char *const names[E] = {"a", "b"};

/* The figure through the metric: query 0 answered by model a (accuracy A,
 * cost 2c / 1000), query 1 evaluated on no model. RouterArena averages the
 * accuracy over the one evaluated query and the cost over both: c. */
START_TEST(metric_counts_cost_over_every_query)
{
    const float quality[2 * E] = {0.7518957671f, NAN, NAN, NAN};
    const float cost[2 * E] = {0.0170869443904f, 0.001f, 0, 0};
    const char *path = rs_test_path("arena.h5");
    query_trace q = {.T = 2, .E = E, .quality = quality, .cost = cost, .names = names};
    query_trace_write(path, &q);
    const char *routers[] = {"fixed:model=a", "fixed:model=b"};
    rs_results res;
    query_measure(path, routers, 2, NULL, 1, 0, &res);
    ck_assert_double_eq(query_value(&res, 0, "outcome.queries", ""), 1);
    ck_assert_double_eq(query_value(&res, 0, "outcome.skipped", ""), 1);
    double A = (double)quality[0], c = 1000.0 * (double)cost[0] / 2;
    ck_assert_double_eq_tol(query_value(&res, 0, "outcome.arena_score", "arena_beta=0.1"),
                            rs_arena_score(A, c, 0.1), 1e-15);
    /* float32 storage moves the figure by less than 1e-7 */
    ck_assert_double_eq_tol(query_value(&res, 0, "outcome.arena_score", "arena_beta=0.1"), 0.6586468316, 1e-7);
    /* model b was evaluated nowhere: no accuracy, no score */
    ck_assert(isnan(query_value(&res, 1, "outcome.arena_score", "arena_beta=0.1")));
    rs_results_free(&res);
    /* beta = 0: the accuracy alone */
    query_measure(path, routers, 1, "arena_beta=0", 1, 0, &res);
    ck_assert_double_eq_tol(query_value(&res, 0, "outcome.arena_score", "arena_beta=0"), A, 1e-15);
    rs_results_free(&res);
}
END_TEST

START_TEST(no_cost_no_score)
{
    const float quality[2 * E] = {1, 0, 0, 1};
    const char *path = rs_test_path("free.h5");
    query_trace q = {.T = 2, .E = E, .quality = quality, .names = names};
    query_trace_write(path, &q);
    const char *routers[] = {"oracle"};
    rs_results res;
    query_measure(path, routers, 1, NULL, 1, 0, &res);
    ck_assert_double_eq(query_value(&res, 0, "outcome.quality", ""), 1);
    ck_assert(isnan(query_value(&res, 0, "outcome.arena_score", "arena_beta=0.1")));
    rs_results_free(&res);
}
END_TEST

Suite *query_arena_suite(void)
{
    Suite *s = suite_create("query_arena");
    TCase *tc = tcase_create("query_arena");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, formula_gives_routerarena_figure);
    tcase_add_test(tc, formula_clamps_and_refuses_as_routerarena);
    tcase_add_test(tc, metric_counts_cost_over_every_query);
    tcase_add_test(tc, no_cost_no_score);
    suite_add_tcase(s, tc);
    return s;
}
