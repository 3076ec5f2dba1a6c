/* agreement: hand-computed cases, and the reference as configs and the CLI
 * name it (same trace, paired trace, errors). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "routesim/metric.h"
#include "sim/config/config.h"
#include "core/metric_sink.h"
#include "tests/test_util.h"

static double emitted(const rs_metric_sink *sink, const rs_metric_type *t, const char *output, int layer)
{
    for (size_t i = 0; i < sink->n; i++)
        if (strcmp(t->outputs[sink->rows[i].output].name, output) == 0 && sink->rows[i].layer == layer)
            return sink->rows[i].value;
    ck_abort_msg("no %s for layer %d", output, layer);
    return NAN;
}

/* Six tokens, E = 4, one layer, p = [.4 .3 .2 .1] for every token.
 *   token  S (weights)        R (weights)      top-1 S/R  |S&R| |R| |S|R|  mass kept / ref mass
 *   0      {0 .6, 1 .4}       {0 .7, 2 .3}     0 / 0      1     2   3      (.4+.3)/(.4+.2) = 7/6
 *   1      {1 .5, 0 .5} tie   {0 .6, 1 .4}     1 / 0      2     2   2      .7/.7 = 1
 *   2      {3 1}              {2 1}            3 / 2      0     1   2      .1/.2 = 1/2
 *   3      skipped (invalid logits)
 *   4      {} (all dropped)   {0 .6, 1 .4}     - / 0      0     2   2      0/.7 = 0
 *   5      {}                 {}               neither chose: not compared
 * By hand: fluctuation = 3 of 4 tokens = 0.75; topk_change = mean(1/2, 0, 1, 1)
 * = 0.625; jaccard = mean(1/3, 1, 0, 0) = 1/3; mass_retained = mean(7/6, 1,
 * 1/2, 0) = 2/3. */
START_TEST(agreement_hand_case)
{
    const rs_metric_type *t = rs_metric_find("agreement");
    ck_assert_ptr_nonnull(t);
    float z[6 * 4];
    const float p[4] = {0.4f, 0.3f, 0.2f, 0.1f};
    for (int i = 0; i < 6 * 4; i++)
        z[i] = logf(p[i % 4]);
    rs_test_chunk tc;
    rs_test_chunk_init(&tc, 0, 6, 1, 4, z);
    const uint8_t valid[6] = {1, 1, 1, 0, 1, 1};
    tc.chunk.valid = valid;
    int32_t s_ids[12] = {0, 1, 1, 0, 3, -1, 2, 3, -1, -1, -1, -1};
    float s_w[12] = {.6f, .4f, .5f, .5f, 1, 0, .5f, .5f, 0, 0, 0, 0};
    int32_t r_ids[12] = {0, 2, 0, 1, 2, -1, 0, 1, 0, 1, -1, -1};
    float r_w[12] = {.7f, .3f, .6f, .4f, 1, 0, .6f, .4f, .6f, .4f, 0, 0};
    rs_decisions s = {.kmax = 2, .ids = s_ids, .weights = s_w}, r = {.kmax = 2, .ids = r_ids, .weights = r_w};
    rs_trace_info info = {.path = "a.h5", .num_layers = 1, .num_experts = 4, .has_logits = 1, .unit = "token"};
    rs_params params;
    rs_error err = {{0}};
    ck_assert_int_eq(rs_params_init(&params, t->params, t->num_params, t->name, &err), 0);
    rs_metric_setup setup = {.trace = &info, .batch_tokens = 8, .kmax = 2, .reference_trace = &info,
                             .reference_kmax = 2};
    void *acc = NULL;
    ck_assert_msg(t->create(&acc, &params, &setup, &err) == 0, "%s", err.msg);
    rs_metric_ref ref = {&tc.chunk, &r};
    t->update_layer(acc, &tc.chunk, 0, &s, &ref);
    rs_metric_sink sink = {0};
    t->finalize(acc, &sink);
    ck_assert_double_eq(emitted(&sink, t, "fluctuation", 0), 0.75);
    ck_assert_double_eq(emitted(&sink, t, "topk_change", 0), 0.625);
    ck_assert_double_eq_tol(emitted(&sink, t, "jaccard", 0), 1.0 / 3.0, 1e-15);
    ck_assert_double_eq_tol(emitted(&sink, t, "mass_retained", 0), 2.0 / 3.0, 1e-6); /* p is float */
    rs_metric_sink_free(&sink);
    t->destroy(acc);
    rs_params_free(&params);
    rs_test_chunk_free(&tc);
}
END_TEST

/* A top-k-only reference has no softmax: mass_retained is not reported,
 * the set comparisons still are. */
START_TEST(agreement_without_logits_skips_mass)
{
    const rs_metric_type *t = rs_metric_find("agreement");
    float z[4] = {0, 0, 0, 0};
    rs_test_chunk tc;
    rs_test_chunk_init(&tc, 0, 1, 1, 4, z);
    tc.chunk.probs = NULL;
    int32_t s_ids[2] = {0, 1}, r_ids[2] = {1, 0};
    float w[2] = {.5f, .5f};
    rs_decisions s = {.kmax = 2, .ids = s_ids, .weights = w}, r = {.kmax = 2, .ids = r_ids, .weights = w};
    rs_trace_info info = {.path = "a.h5", .num_layers = 1, .num_experts = 4, .recorded_k = 2, .unit = "token"};
    rs_params params;
    rs_error err = {{0}};
    ck_assert_int_eq(rs_params_init(&params, t->params, t->num_params, t->name, &err), 0);
    rs_metric_setup setup = {.trace = &info, .kmax = 2, .reference_trace = &info, .reference_kmax = 2};
    void *acc = NULL;
    ck_assert_int_eq(t->create(&acc, &params, &setup, &err), 0);
    rs_metric_ref ref = {&tc.chunk, &r};
    t->update_layer(acc, &tc.chunk, 0, &s, &ref);
    rs_metric_sink sink = {0};
    t->finalize(acc, &sink);
    /* same set, top-1 by weight is a tie: slot order decides (0 vs 1) */
    ck_assert_double_eq(emitted(&sink, t, "fluctuation", 0), 1.0);
    ck_assert_double_eq(emitted(&sink, t, "jaccard", 0), 1.0);
    for (size_t i = 0; i < sink.n; i++)
        ck_assert_str_ne(t->outputs[sink.rows[i].output].name, "mass_retained");
    rs_metric_sink_free(&sink);
    t->destroy(acc);
    rs_params_free(&params);
    rs_test_chunk_free(&tc);
}
END_TEST

static void config_fails(const char *json, const char *expected)
{
    rs_config cfg;
    rs_error err = {{0}};
    int rc = rs_config_parse(&cfg, json, "exp.json", &err);
    rs_config_free(&cfg);
    ck_assert_int_ne(rc, 0);
    ck_assert_msg(strstr(err.msg, expected), "expected '%s' in '%s'", expected, err.msg);
}

START_TEST(config_names_the_reference)
{
    rs_config cfg;
    rs_error err = {{0}};
    /* a run's label: that run is the reference */
    ck_assert_msg(rs_config_parse(&cfg,
                                  "{\"traces\": [\"t.h5\"], \"routers\": [\"random:k=2\", {\"name\": \"topk\", "
                                  "\"params\": {\"k\": 2}, \"label\": \"base\"}], \"reference\": \"base\"}",
                                  "exp.json", &err) == 0,
                  "%s", err.msg);
    ck_assert_ptr_eq(cfg.reference, &cfg.routers[1]);
    ck_assert_ptr_null(cfg.reference_trace);
    rs_config_free(&cfg);
    /* a spec string: a router of its own */
    ck_assert_msg(rs_config_parse(&cfg, "{\"traces\": [\"t.h5\"], \"routers\": [\"random:k=2\"], \"reference\": "
                                        "\"topk:k=3\"}",
                                  "exp.json", &err) == 0,
                  "%s", err.msg);
    ck_assert_str_eq(cfg.reference->type->name, "topk");
    ck_assert_str_eq(cfg.reference->label, "topk:k=3");
    rs_config_free(&cfg);
    /* an object with a paired trace */
    ck_assert_msg(rs_config_parse(&cfg,
                                  "{\"traces\": [\"t.h5\"], \"routers\": [\"topk:k=2\"], \"reference\": {\"router\": "
                                  "{\"name\": \"topk\", \"params\": {\"k\": 2}}, \"trace\": \"old.h5\"}}",
                                  "exp.json", &err) == 0,
                  "%s", err.msg);
    ck_assert_str_eq(cfg.reference_trace, "old.h5");
    ck_assert_str_eq(cfg.reference->label, "topk:k=2");
    rs_config_free(&cfg);
}
END_TEST

START_TEST(config_reference_errors)
{
    config_fails("{\"traces\": [\"t.h5\"], \"routers\": [\"topk\"], \"reference\": 3}",
                 "exp.json: reference: expected a router spec string");
    config_fails("{\"traces\": [\"t.h5\"], \"routers\": [\"topk\"], \"reference\": \"nosuch:k=2\"}",
                 "exp.json: reference: unknown router 'nosuch'");
    config_fails("{\"traces\": [\"t.h5\"], \"routers\": [\"topk\"], \"reference\": {\"trace\": \"b.h5\"}}",
                 "exp.json: reference.router: missing");
    config_fails("{\"traces\": [\"t.h5\"], \"routers\": [\"topk\"], \"reference\": {\"router\": {\"name\": "
                 "\"topk\", \"params\": {\"k\": [1, 2]}}}}",
                 "exp.json: reference.router.params: the reference is one router");
    config_fails("{\"traces\": [\"a.h5\", \"b.h5\"], \"routers\": [\"topk\"], \"reference\": {\"router\": \"topk\", "
                 "\"trace\": \"c.h5\"}}",
                 "exp.json: reference.trace: a paired trace pairs with one trace, traces has 2");
    config_fails("{\"traces\": [\"t.h5\"], \"routers\": [\"topk\"], \"reference\": {\"router\": \"topk\", "
                 "\"bogus\": 1}}",
                 "exp.json: reference: unknown key 'bogus'");
}
END_TEST

/* The CLI: same-trace and paired references, and what goes wrong. */
START_TEST(cli_reference)
{
    char cmd[4096], *out = NULL, *err = NULL;
    const char *a = rs_test_path("ref-a.h5"), *b = rs_test_path("ref-b.h5"), *c = rs_test_path("ref-c.h5");
    snprintf(cmd, sizeof cmd, "gen --preset small --tokens 400 --seed 3 -o %s", a);
    ck_assert_int_eq(rs_test_run_cli(cmd, &out, &err), 0);
    free(out);
    free(err);
    snprintf(cmd, sizeof cmd, "gen --preset small --tokens 400 --seed 4 -o %s", c);
    ck_assert_int_eq(rs_test_run_cli(cmd, &out, &err), 0);
    free(out);
    free(err);
    /* a router compared with itself agrees completely */
    snprintf(cmd, sizeof cmd, "route %s --router topk:k=2 --reference topk:k=2 --metrics agreement --no-progress",
             a);
    ck_assert_int_eq(rs_test_run_cli(cmd, &out, &err), 0);
    ck_assert_msg(strstr(out, "agreement.fluctuation") && strstr(out, "agreement.jaccard"), "%s", out);
    ck_assert_msg(strstr(out, "agreement.jaccard                1"), "%s", out);
    free(out);
    free(err);
    /* a paired trace must hold the same sequences */
    snprintf(cmd, sizeof cmd,
             "route %s --router topk:k=2 --reference topk:k=2 --reference-trace %s --metrics agreement --no-progress",
             a, c);
    ck_assert_int_ne(rs_test_run_cli(cmd, &out, &err), 0);
    ck_assert_msg(strstr(err, "a paired trace holds the same tokens") || strstr(err, "a paired trace holds the same "
                                                                                "sequences"),
                  "%s", err);
    free(out);
    free(err);
    /* the same trace as its own pair: complete agreement again */
    snprintf(cmd, sizeof cmd, "cp %s %s", a, b);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(cmd, sizeof cmd,
             "route %s --router topk:k=2 --reference topk:k=2 --reference-trace %s --metrics agreement --no-progress",
             a, b);
    ck_assert_int_eq(rs_test_run_cli(cmd, &out, &err), 0);
    ck_assert_msg(strstr(out, "agreement.mass_retained          1"), "%s", out);
    free(out);
    free(err);
    /* no reference named */
    snprintf(cmd, sizeof cmd, "route %s --router topk:k=2 --metrics agreement --no-progress", a);
    ck_assert_int_ne(rs_test_run_cli(cmd, &out, &err), 0);
    ck_assert_msg(strstr(err, "metric agreement compares each run with a reference: name one"), "%s", err);
    free(out);
    free(err);
    snprintf(cmd, sizeof cmd, "route %s --router topk:k=2 --reference-trace %s --metrics agreement", a, b);
    ck_assert_int_eq(rs_test_run_cli(cmd, &out, &err), 2);
    ck_assert_msg(strstr(err, "--reference-trace needs --reference SPEC"), "%s", err);
    free(out);
    free(err);
}
END_TEST

Suite *metrics_agreement_suite(void)
{
    Suite *s = suite_create("metrics_agreement");
    TCase *tc = tcase_create("metrics_agreement");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, agreement_hand_case);
    tcase_add_test(tc, agreement_without_logits_skips_mass);
    tcase_add_test(tc, config_names_the_reference);
    tcase_add_test(tc, config_reference_errors);
    tcase_add_test(tc, cli_reference);
    suite_add_tcase(s, tc);
    return s;
}
