/* Every query router (RS_ROUTER_QUERY, covered here instead of by
 * check_router_invariance.c, whose token trace has no outcomes) gives
 * bit-identical decisions whatever the thread count and chunk size, on a
 * query trace with logits, domains, per-query costs and missing qualities;
 * the outcome family's results do not move either. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/query/check_query.h"

enum { T = 300, E = 4, D = 5 };

static const char *trace_path(void)
{
    static char path[1024];
    if (path[0])
        return path;
    snprintf(path, sizeof path, "%s", rs_test_path("invariance.h5"));
    float *q = malloc((size_t)T * E * sizeof *q), *c = malloc((size_t)T * E * sizeof *c);
    float *z = rs_test_random_logits(T, 1, E, 41);
    int32_t *domain = malloc((size_t)T * sizeof *domain);
    for (int t = 0; t < T; t++) {
        domain[t] = (t / 11 + t % 3) % D;
        for (int e = 0; e < E; e++) {
            int i = t * E + e;
            q[i] = (i * 7919) % 13 == 0 ? NAN : (float)((i * 31 + domain[t] * (e + 1)) % 5) / 4.0f;
            c[i] = (float)(e * e + 1) * (float)(1 + (t * 5) % 3) / 4.0f;
        }
    }
    for (int e = 0; e < E; e++)
        q[17 * E + e] = NAN; /* a query nobody was evaluated on */
    for (int i = 0; i < T * E; i += 9)
        z[i] = z[i + 1 < T * E ? i + 1 : i]; /* exact ties in the scores */
    query_trace qt = {.T = T, .E = E, .quality = q, .cost = c, .logits = z, .domain = domain, .num_domains = D};
    query_trace_write(path, &qt);
    free(q);
    free(c);
    free(z);
    free(domain);
    return path;
}

/* The specs each query router is checked with (its features exercised). */
static const struct {
    const char *router, *specs[4];
} cases[] = {
    {"oracle", {"oracle:train_share=0.3", "oracle:none_correct=cheapest"}},
    {"fixed", {"fixed:model=1,train_share=0.3,split_seed=2"}},
    {"random_mix", {"random_mix:weights=1|2|3|0,seed=4", "random_mix:train_share=0.2"}},
    {"cost_aware", {"cost_aware:lambda=0.2", "cost_aware:score=domain_prior,train_share=0.5,lambda=0.1"}},
    {"win_rate", {"win_rate:tau_quantile=0.3", "win_rate:score=domain_prior,train_share=0.4,tau_quantile=0.6"}},
    {"cascade", {"cascade:threshold=0.4", "cascade:score=domain_prior,train_share=0.5,order=3|1|0"}},
    {"bandit",
     {"bandit:policy=eps_greedy,epsilon=0.2,pref=0.1,seed=3,per_domain=1", "bandit:policy=ucb,pref=0.05",
      "bandit:policy=thompson,seed=5,per_domain=1,train_share=0.2"}},
};
enum { NUM_CASES = sizeof cases / sizeof cases[0] };

static void check_invariant(const char *spec)
{
    static const int runs[][2] = {{1, 1}, {3, 7}, {2, 50}, {4, 1000}};
    query_decisions want = query_route(trace_path(), spec, 1, 1000);
    for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
        query_decisions got = query_route(trace_path(), spec, runs[r][0], runs[r][1]);
        ck_assert_int_eq(got.kmax, want.kmax);
        size_t cells = (size_t)T * (size_t)want.kmax;
        ck_assert_msg(memcmp(got.ids, want.ids, cells * sizeof *got.ids) == 0,
                      "%s: ids differ with %d threads, chunk %d", spec, runs[r][0], runs[r][1]);
        ck_assert_msg(memcmp(got.weights, want.weights, cells * sizeof *got.weights) == 0,
                      "%s: weights differ with %d threads, chunk %d", spec, runs[r][0], runs[r][1]);
        query_decisions_free(&got);
    }
    query_decisions_free(&want);
}

START_TEST(every_query_router_is_invariant)
{
    const rs_router_type *type = rs_router_at(_i);
    if (!(type->flags & RS_ROUTER_QUERY))
        return;
    int found = 0;
    for (int c = 0; c < NUM_CASES; c++) {
        if (strcmp(cases[c].router, type->name) != 0)
            continue;
        found = 1;
        for (int s = 0; s < 4 && cases[c].specs[s]; s++)
            check_invariant(cases[c].specs[s]);
    }
    if (!found) /* a query router added later: its defaults at least */
        check_invariant(type->name);
}
END_TEST

START_TEST(outcome_results_are_invariant)
{
    const char *routers[] = {"oracle", "cascade:threshold=0.4", "win_rate:tau_quantile=0.5",
                             "bandit:policy=ucb,per_domain=1", "cost_aware:score=domain_prior,train_share=0.5"};
    static const int runs[][2] = {{2, 1}, {3, 13}, {1, 299}};
    rs_results want;
    query_measure(trace_path(), routers, 5, "none_correct=cheapest", 1, 1000, &want);
    for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
        rs_results got;
        query_measure(trace_path(), routers, 5, "none_correct=cheapest", runs[r][0], runs[r][1], &got);
        ck_assert_uint_eq(got.num_rows, want.num_rows);
        for (size_t i = 0; i < want.num_rows; i++) {
            const rs_result_row *a = &want.rows[i], *b = &got.rows[i];
            ck_assert_str_eq(a->metric, b->metric);
            ck_assert_str_eq(a->key, b->key);
            ck_assert_msg(memcmp(&a->value, &b->value, sizeof a->value) == 0 || (isnan(a->value) && isnan(b->value)),
                          "%s %s: %.17g vs %.17g with %d threads, chunk %d", a->metric, a->key, a->value, b->value,
                          runs[r][0], runs[r][1]);
        }
        rs_results_free(&got);
    }
    rs_results_free(&want);
}
END_TEST

Suite *query_invariance_suite(void)
{
    Suite *s = suite_create("query_invariance");
    TCase *tc = tcase_create("query_invariance");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, every_query_router_is_invariant, 0, rs_router_count());
    tcase_add_test(tc, outcome_results_are_invariant);
    suite_add_tcase(s, tc);
    return s;
}
