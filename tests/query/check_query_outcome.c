/* The outcome family: hand-computed values on a six-query trace, the
 * cascade's paid-for models, training and skipped queries, merges, token
 * traces without outcomes, and identical results.csv across threads and
 * chunk sizes from the CLI. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "routers/query/query_util.h"
#include "routesim/metric.h"
#include "core/metric_sink.h"
#include "tests/query/check_query.h"

enum { T = 6, E = 3 };
static const char *const names3[E] = {"small", "medium", "large"};
static const float quality6[T * E] = {1, 0, 1, 0, 0, 1, 0.5f, 0.25f, 0, NAN, NAN, NAN, 1, NAN, 0, 0, 0, 0};
static const float cost6[T * E] = {1, 2, 3, 1, 2, 3, 0.5f, 2, 3, 1, 1, 1, 0, 2, 0.25f, 1, 2, 3};
static const float logits6[T * E] = {0.2f, 0.5f, 0.9f, 0.5f, 0.5f, 0.5f, 0.7f, 0.1f, 0.1f,
                                     0.1f, 0.2f, 0.3f, 0,    0.4f, 0.3f, 0,    0.6f, -0.2f};

static const char *trace6(void)
{
    static char path[1024];
    if (!path[0]) {
        snprintf(path, sizeof path, "%s", rs_test_path("six.h5"));
        query_trace q = {.T = T, .E = E, .quality = quality6, .cost = cost6, .logits = logits6, .names = names3};
        query_trace_write(path, &q);
    }
    return path;
}

#define EXPECT(res, run, metric, key, want) \
    ck_assert_double_eq_tol(query_value(res, run, metric, key), (want), 1e-12)

START_TEST(fixed_model_by_hand)
{
    const char *routers[] = {"fixed:model=large"};
    rs_results res;
    query_measure(trace6(), routers, 1, NULL, 1, 0, &res);
    /* evaluated: queries 0 1 2 4 5 (3: every model NaN -> skipped).
     * large answers 1 1 0 0 0 -> quality 2/5; costs 3 3 3 .25 3 -> 12.25, mean 2.45.
     * oracle: models 0 2 0 0 none -> 1 1 .5 1 0 = 3.5/5; its costs 1 3 .5 0 0 -> 4.5/5 */
    EXPECT(&res, 0, "outcome.queries", "", 5);
    EXPECT(&res, 0, "outcome.skipped", "", 1);
    EXPECT(&res, 0, "outcome.training", "", 0);
    EXPECT(&res, 0, "outcome.quality", "", 0.4);
    EXPECT(&res, 0, "outcome.cost_total", "", 12.25);
    EXPECT(&res, 0, "outcome.cost_mean", "", 2.45);
    EXPECT(&res, 0, "outcome.oracle_quality", "none_correct=skip", 0.7);
    EXPECT(&res, 0, "outcome.oracle_cost", "none_correct=skip", 0.9);
    EXPECT(&res, 0, "outcome.oracle_gap", "none_correct=skip", 0.3);
    /* single models over the evaluated queries they were evaluated on:
     * small 1 0 .5 1 0 -> .5; medium 0 0 .25 (NaN) 0 -> .0625; large .4.
     * recovered = (.4 - .0625) / (.7 - .0625) */
    EXPECT(&res, 0, "outcome.model_quality", "model=small", 0.5);
    EXPECT(&res, 0, "outcome.model_quality", "model=medium", 0.0625);
    EXPECT(&res, 0, "outcome.model_quality", "model=large", 0.4);
    EXPECT(&res, 0, "outcome.model_cost", "model=small", 3.5 / 5);
    EXPECT(&res, 0, "outcome.model_cost", "model=medium", 2.0);
    EXPECT(&res, 0, "outcome.recovered", "none_correct=skip", 0.3375 / 0.6375);
    EXPECT(&res, 0, "outcome.share", "model=large", 1.0);
    EXPECT(&res, 0, "outcome.share", "model=small", 0.0);
    /* default strong = best single model (small, .5), weak = worst (medium) */
    EXPECT(&res, 0, "outcome.strong_calls", "", 0.0);
    EXPECT(&res, 0, "outcome.strong_quality", "", 0.5);
    EXPECT(&res, 0, "outcome.weak_quality", "", 0.0625);
    rs_results_free(&res);
}
END_TEST

START_TEST(oracle_cheapest_and_named_pair)
{
    const char *routers[] = {"fixed:model=small"};
    rs_results res;
    query_measure(trace6(), routers, 1, "none_correct=cheapest,strong=large,weak=medium", 1, 0, &res);
    /* cheapest: query 5 (nobody right) goes to small (cost 1): quality still 3.5/5, cost (4.5 + 1)/5 */
    EXPECT(&res, 0, "outcome.oracle_quality", "none_correct=cheapest", 0.7);
    EXPECT(&res, 0, "outcome.oracle_cost", "none_correct=cheapest", 1.1);
    EXPECT(&res, 0, "outcome.strong_calls", "strong=large", 0.0);
    EXPECT(&res, 0, "outcome.strong_quality", "strong=large", 0.4);
    EXPECT(&res, 0, "outcome.weak_quality", "weak=medium", 0.0625);
    EXPECT(&res, 0, "outcome.quality", "", 0.5);
    rs_results_free(&res);
}
END_TEST

START_TEST(cascade_costs_every_model_tried)
{
    const char *routers[] = {"cascade:order=small|medium|large,threshold=0.5"};
    rs_results res;
    query_measure(trace6(), routers, 1, NULL, 1, 0, &res);
    /* tried (answer last): q0 small,medium -> medium 0, cost 3; q1 small 0, cost 1; q2 small .5, cost .5;
     * q4 small,medium,large -> large 0, cost 0 + 2 + .25 (medium's quality is NaN but it was paid);
     * q5 small,medium -> medium 0, cost 3. quality .5/5, cost 9.75 */
    EXPECT(&res, 0, "outcome.queries", "", 5);
    EXPECT(&res, 0, "outcome.quality", "", 0.1);
    EXPECT(&res, 0, "outcome.cost_total", "", 9.75);
    EXPECT(&res, 0, "outcome.share", "model=small", 0.4);
    EXPECT(&res, 0, "outcome.share", "model=medium", 0.4);
    EXPECT(&res, 0, "outcome.share", "model=large", 0.2);
    EXPECT(&res, 0, "outcome.strong_calls", "", 1.0); /* small (the best single model) is called every time */
    rs_results_free(&res);
}
END_TEST

START_TEST(training_queries_are_left_out)
{
    enum { N = 3000 };
    float *q = malloc((size_t)N * E * sizeof *q);
    for (int i = 0; i < N * E; i++)
        q[i] = (float)((i * 11) % 3 == 0);
    const char *path = rs_test_path("split.h5");
    query_trace qt = {.T = N, .E = E, .quality = q};
    query_trace_write(path, &qt);
    const char *routers[] = {"fixed:model=0,train_share=0.4,split_seed=9", "fixed:model=0"};
    rs_results res;
    query_measure(path, routers, 2, NULL, 2, 100, &res);
    double training = query_value(&res, 0, "outcome.training", "");
    double evaluated = query_value(&res, 0, "outcome.queries", "");
    ck_assert_double_eq(training + evaluated, N);
    ck_assert_double_eq(query_value(&res, 1, "outcome.training", ""), 0);
    ck_assert_double_eq(query_value(&res, 1, "outcome.queries", ""), N);
    ck_assert(fabs(training - 0.4 * N) < 5 * sqrt(N * 0.24));
    /* the quality of model 0 over the held-out queries, from the definition */
    rs_query_split split = {0.4, 9};
    double sum = 0, n = 0;
    for (int t = 0; t < N; t++)
        if (!rs_query_is_training(&split, t)) {
            sum += q[t * E];
            n++;
        }
    EXPECT(&res, 0, "outcome.quality", "", sum / n);
    free(q);
    rs_results_free(&res);
}
END_TEST

/* Accumulator over the first part merged with the second equals the whole, bit for bit. */
START_TEST(merged_parts_equal_whole)
{
    const rs_metric_type *type = rs_metric_find("outcome");
    ck_assert_ptr_nonnull(type);
    rs_trace *tr = NULL;
    rs_error err = {{0}};
    ck_assert_msg(rs_trace_open(&tr, trace6(), &err) == 0, "%s", err.msg);
    rs_params params;
    ck_assert_int_eq(rs_params_init(&params, type->params, type->num_params, "outcome", &err), 0);
    rs_metric_setup setup = {.trace = rs_trace_get_info(tr), .batch_tokens = 64, .kmax = 2};
    /* decisions with two slots: a cascade-like row (weight 0 then 1), a training row, a row without models */
    int32_t ids[T * 2] = {0, 2, 1, -1, RS_ID_TRAINING, -1, 2, -1, -1, -1, 0, 1};
    float w[T * 2] = {0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0};
    int32_t seq_of_token[T];
    int64_t offsets[T + 1];
    for (int t = 0; t <= T; t++)
        offsets[t] = t;
    for (int t = 0; t < T; t++)
        seq_of_token[t] = t;
    for (int split = 1; split < T; split++) {
        void *whole = NULL, *a = NULL, *b = NULL;
        ck_assert_int_eq(type->create(&whole, &params, &setup, &err), 0);
        ck_assert_int_eq(type->create(&a, &params, &setup, &err), 0);
        ck_assert_int_eq(type->create(&b, &params, &setup, &err), 0);
        rs_chunk all = {.t0 = 0, .n = T, .L = 1, .E = E, .num_seq = T, .seq_offsets = offsets,
                        .seq_of_token = seq_of_token, .quality = quality6, .cost = cost6};
        rs_chunk first = all, second = all;
        first.n = split;
        second.t0 = split;
        second.n = T - split;
        second.seq_of_token = seq_of_token + split;
        second.quality = quality6 + split * E;
        second.cost = cost6 + split * E;
        rs_decisions dw = {.kmax = 2, .ids = ids, .weights = w};
        rs_decisions db = {.kmax = 2, .ids = ids + split * 2, .weights = w + split * 2};
        type->update_layer(whole, &all, 0, &dw, NULL);
        type->update_layer(a, &first, 0, &dw, NULL);
        type->update_layer(b, &second, 0, &db, NULL);
        ck_assert_int_eq(type->merge(a, b, &err), 0);
        rs_metric_sink s1 = {0}, s2 = {0};
        type->finalize(whole, &s1);
        type->finalize(a, &s2);
        ck_assert_uint_eq(s1.n, s2.n);
        for (size_t i = 0; i < s1.n; i++)
            ck_assert_msg(memcmp(&s1.rows[i].value, &s2.rows[i].value, sizeof(double)) == 0, "output %s split %d",
                          type->outputs[s1.rows[i].output].name, split);
        /* by hand: training 1 (query 2), skipped 1 (query 3); answers: q0 large (1), q1 medium (0),
         * q4 none (0), q5 small (0): quality 1/4; costs 1+3, 2, 0, 1+2 -> 9 */
        ck_assert_double_eq(rs_metric_sink_value(&s1, 1, -1, ""), 1);
        ck_assert_double_eq(rs_metric_sink_value(&s1, 2, -1, ""), 1);
        ck_assert_double_eq(rs_metric_sink_value(&s1, 3, -1, ""), 0.25);
        ck_assert_double_eq(rs_metric_sink_value(&s1, 4, -1, ""), 9);
        rs_metric_sink_free(&s1);
        rs_metric_sink_free(&s2);
        type->destroy(whole);
        type->destroy(a);
        type->destroy(b);
    }
    rs_params_free(&params);
    rs_trace_close(tr);
}
END_TEST

START_TEST(token_traces_give_nan)
{
    const char *path = rs_test_path("tokens.h5");
    float *z = rs_test_random_logits(20, 2, 4, 3);
    const int64_t offsets[2] = {0, 20};
    rs_test_trace tt = {.T = 20, .L = 2, .E = 4, .num_seq = 1, .offsets = offsets, .logits = z};
    rs_test_write_trace(path, &tt);
    free(z);
    const char *routers[] = {"topk:k=2"};
    rs_results res;
    query_measure(path, routers, 1, NULL, 1, 0, &res);
    ck_assert_double_eq(query_value(&res, 0, "outcome.queries", ""), 0);
    ck_assert(isnan(query_value(&res, 0, "outcome.quality", "")));
    ck_assert(isnan(query_value(&res, 0, "outcome.cost_total", "")));
    rs_results_free(&res);
}
END_TEST

/* A config of every query router (with sweeps, so curve rows too) gives the
 * same results.csv for any thread count and chunk size. */
START_TEST(cli_results_do_not_depend_on_threads_or_chunks)
{
    enum { N = 500 };
    float *q = malloc((size_t)N * E * sizeof *q), *z = malloc((size_t)N * E * sizeof *z);
    float *c = malloc((size_t)N * E * sizeof *c);
    int32_t *domain = malloc((size_t)N * sizeof *domain);
    for (int t = 0; t < N; t++) {
        domain[t] = (t * 7 / 13) % 4;
        for (int e = 0; e < E; e++) {
            int i = t * E + e;
            q[i] = (i * 37) % 11 == 0 ? NAN : (float)((i * 13 + domain[t] * e) % 7) / 6.0f;
            z[i] = (float)((i * 29) % 17) / 16.0f;
            c[i] = (float)(e + 1) * (1.0f + (float)((t * 3) % 5) / 8.0f);
        }
    }
    const char *path = rs_test_path("cli.h5");
    query_trace qt = {.T = N, .E = E, .quality = q, .cost = c, .logits = z, .domain = domain, .num_domains = 4,
                      .names = names3};
    query_trace_write(path, &qt);
    free(q);
    free(z);
    free(c);
    free(domain);
    const char *config = rs_test_path("query.json");
    FILE *f = fopen(config, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "{\"name\": \"query\", \"traces\": [\"%s\"], \"routers\": ["
            "\"oracle\", {\"name\": \"fixed\", \"params\": {\"model\": [\"small\", \"large\"]}},"
            "{\"name\": \"random_mix\", \"params\": {\"weights\": [\"1|0|0\", \"1|1|1\", \"0|0|1\"], \"seed\": 3}},"
            "{\"name\": \"cost_aware\", \"params\": {\"lambda\": [0, 0.1, 1], \"score\": \"domain_prior\","
            " \"train_share\": 0.5}},"
            "{\"name\": \"win_rate\", \"params\": {\"tau_quantile\": [0, 0.5, 1], \"score\": \"logits\"}},"
            "{\"name\": \"cascade\", \"params\": {\"threshold\": [0.3, 0.6]}},"
            "{\"name\": \"bandit\", \"params\": {\"policy\": [\"eps_greedy\", \"ucb\", \"thompson\"], \"pref\": 0.05,"
            " \"per_domain\": 1, \"seed\": 2}}],"
            " \"metrics\": [{\"name\": \"outcome\", \"params\": {\"p\": [0.5, 0.8]}}]}\n",
            path);
    fclose(f);
    static const char *const variants[][2] = {{"1", "1000"}, {"2", "7"}, {"2", "64"}};
    char *want = NULL;
    for (int v = 0; v < 3; v++) {
        char args[2048], *out = NULL, *err = NULL;
        const char *dir = rs_test_path(v == 0 ? "out0" : v == 1 ? "out1" : "out2");
        snprintf(args, sizeof args, "run '%s' --output '%s' --threads %s --chunk-tokens %s -q", config, dir,
                 variants[v][0], variants[v][1]);
        int rc = rs_test_run_cli(args, &out, &err);
        ck_assert_msg(rc == 0, "%s", err ? err : "");
        free(out);
        free(err);
        char csv[1200];
        snprintf(csv, sizeof csv, "%s/results.csv", dir);
        char *got = rs_test_read_file(csv);
        ck_assert_ptr_nonnull(got);
        ck_assert_msg(strstr(got, "curve.aiq") && strstr(got, "curve.cpt,p=0.8"), "no curve rows");
        if (!want)
            want = got;
        else {
            ck_assert_msg(strcmp(want, got) == 0, "results.csv differs with --threads %s --chunk-tokens %s",
                          variants[v][0], variants[v][1]);
            free(got);
        }
    }
    free(want);
}
END_TEST

Suite *query_outcome_suite(void)
{
    Suite *s = suite_create("query_outcome");
    TCase *tc = tcase_create("query_outcome");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, fixed_model_by_hand);
    tcase_add_test(tc, oracle_cheapest_and_named_pair);
    tcase_add_test(tc, cascade_costs_every_model_tried);
    tcase_add_test(tc, training_queries_are_left_out);
    tcase_add_test(tc, merged_parts_equal_whole);
    tcase_add_test(tc, token_traces_give_nan);
    tcase_add_test(tc, cli_results_do_not_depend_on_threads_or_chunks);
    suite_add_tcase(s, tc);
    return s;
}
