/* Config sweeps and statistics settings: zip vs grid, seeds repeats and
 * their summary runs, the default group, bootstrap settings. */
#include <check.h>
#include <math.h>
#include <string.h>

#include "sim/config/config.h"
#include "sim/experiment/repeats.h"
#include "sim/results/results.h"

static void parse_ok(rs_config *cfg, const char *json)
{
    rs_error err = {{0}};
    int rc = rs_config_parse(cfg, json, "exp.json", &err);
    ck_assert_msg(rc == 0, "%s", err.msg);
}

static void parse_fails(const char *json, const char *expected)
{
    rs_config cfg;
    rs_error err = {{0}};
    int rc = rs_config_parse(&cfg, json, "exp.json", &err);
    rs_config_free(&cfg);
    ck_assert_int_ne(rc, 0);
    ck_assert_msg(strstr(err.msg, expected), "expected '%s' in '%s'", expected, err.msg);
}

START_TEST(zip_pairs_lists)
{
    rs_config cfg;
    parse_ok(&cfg, "{\"traces\": [\"t.h5\"], \"routers\": [{\"name\": \"topk\", \"params\": {\"k\": [1, 2, 4], "
                   "\"scale\": [1, 2, 4]}, \"sweep\": \"zip\"}]}");
    ck_assert_int_eq(cfg.num_routers, 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(rs_param_int(&cfg.routers[i].params, "k"), 1 << i);
        ck_assert_double_eq(rs_param_float(&cfg.routers[i].params, "scale"), 1 << i);
        ck_assert_int_eq(cfg.routers[i].entry, 0);
    }
    rs_config_free(&cfg);
    parse_ok(&cfg, "{\"traces\": [\"t.h5\"], \"routers\": [\"random\", {\"name\": \"topk\", \"params\": {\"k\": [1, "
                   "2, 4], \"scale\": [1, 2]}}]}");
    ck_assert_int_eq(cfg.num_routers, 7); /* grid: 3 x 2, plus random */
    ck_assert_int_eq(cfg.routers[6].entry, 1);
    rs_config_free(&cfg);
}
END_TEST

START_TEST(sweep_errors)
{
    parse_fails("{\"traces\": [\"t.h5\"], \"routers\": [{\"name\": \"topk\", \"params\": {\"k\": [1, 2, 4], \"scale\": "
                "[1, 2]}, \"sweep\": \"zip\"}]}",
                "exp.json: routers[0].params.scale: sweep \"zip\" pairs lists of equal length, but k has 3 values and "
                "scale has 2");
    parse_fails("{\"traces\": [\"t.h5\"], \"routers\": [{\"name\": \"topk\", \"sweep\": \"both\"}]}",
                "exp.json: routers[0].sweep: expected \"grid\"");
    parse_fails("{\"traces\": [\"t.h5\"], \"routers\": [\"topk\"], \"metrics\": [{\"name\": \"load\", \"sweep\": 1}]}",
                "exp.json: metrics[0].sweep: expected \"grid\"");
}
END_TEST

START_TEST(seeds_repeat_stochastic_routers)
{
    rs_config cfg;
    parse_ok(&cfg, "{\"traces\": [\"t.h5\"], \"routers\": [\"topk:k=2\", \"random:k=2\", \"random:k=1,seed=9\"], "
                   "\"seeds\": [3, 5]}");
    /* topk once, random:k=2 per seed, the explicit seed once */
    ck_assert_int_eq(cfg.num_routers, 4);
    ck_assert_str_eq(cfg.routers[0].label, "topk:k=2");
    ck_assert_int_eq(cfg.routers[0].repeat, -1);
    ck_assert_str_eq(cfg.routers[1].label, "random:k=2@seed=3");
    ck_assert_str_eq(cfg.routers[2].label, "random:k=2@seed=5");
    ck_assert_int_eq(rs_param_int(&cfg.routers[2].params, "seed"), 5);
    ck_assert_int_eq(cfg.routers[1].repeat, 1);
    ck_assert_int_eq(cfg.routers[2].repeat, 1);
    ck_assert_str_eq(cfg.routers[2].repeat_label, "random:k=2");
    ck_assert_str_eq(cfg.routers[3].label, "random:k=1,seed=9");
    ck_assert_int_eq(cfg.routers[3].repeat, -1);
    rs_config_free(&cfg);
    parse_ok(&cfg, "{\"traces\": [\"t.h5\"], \"routers\": [\"random\"], \"seeds\": 3}");
    ck_assert_int_eq(cfg.num_routers, 3);
    ck_assert_int_eq(rs_param_int(&cfg.routers[2].params, "seed"), 2);
    rs_config_free(&cfg);
    parse_fails("{\"traces\": [\"t.h5\"], \"routers\": [\"random\"], \"seeds\": 0}",
                "exp.json: seeds: expected a number of repeats in [1, 1000]");
    parse_fails("{\"traces\": [\"t.h5\"], \"routers\": [\"random\"], \"seeds\": [1, 1]}",
                "exp.json: seeds[1]: seed 1 is listed twice");
    parse_fails("{\"traces\": [\"t.h5\"], \"routers\": [\"random\"], \"seeds\": [\"a\"]}",
                "exp.json: seeds[0]: expected an integer seed >= 0");
}
END_TEST

START_TEST(group_default_applies_where_unset)
{
    rs_config cfg;
    parse_ok(&cfg, "{\"traces\": [\"t.h5\"], \"routers\": [\"expert_choice\", \"expert_choice:group=batch\", "
                   "\"topk:k=2,capacity_factor=1\", \"random\"], \"group\": \"sequence\"}");
    ck_assert_str_eq(rs_param_str(&cfg.routers[0].params, "group"), "sequence");
    ck_assert_str_eq(rs_param_str(&cfg.routers[1].params, "group"), "batch"); /* given: kept */
    ck_assert_str_eq(rs_param_str(&cfg.routers[2].params, "group"), "sequence");
    rs_config_free(&cfg);
    parse_fails("{\"traces\": [\"t.h5\"], \"routers\": [\"topk\"], \"group\": \"tokens\"}",
                "exp.json: group: expected \"sequence\", \"batch\" or \"step\"");
}
END_TEST

START_TEST(bootstrap_settings)
{
    rs_config cfg;
    parse_ok(&cfg, "{\"traces\": [\"t.h5\"], \"routers\": [\"topk\"], \"bootstrap\": true}");
    ck_assert_int_eq(cfg.bootstrap, 1000);
    rs_config_free(&cfg);
    parse_ok(&cfg, "{\"traces\": [\"t.h5\"], \"routers\": [\"topk\"], \"bootstrap\": {\"resamples\": 50, \"level\": "
                   "0.9, \"blocks\": 10, \"seed\": 4}}");
    ck_assert_int_eq(cfg.bootstrap, 50);
    ck_assert_double_eq(cfg.bootstrap_level, 0.9);
    ck_assert_int_eq(cfg.bootstrap_blocks, 10);
    ck_assert_int_eq((int)cfg.bootstrap_seed, 4);
    rs_config_free(&cfg);
    parse_fails("{\"traces\": [\"t.h5\"], \"routers\": [\"topk\"], \"bootstrap\": {\"level\": 95}}",
                "exp.json: bootstrap.level: expected a confidence level in (0, 1)");
    parse_fails("{\"traces\": [\"t.h5\"], \"routers\": [\"topk\"], \"bootstrap\": 2.5}",
                "exp.json: bootstrap: expected an integer number of resamples");
    parse_fails("{\"traces\": [\"t.h5\"], \"routers\": [\"topk\"], \"bootstrap\": {\"draws\": 5}}",
                "exp.json: bootstrap: unknown key 'draws'");
}
END_TEST

/* Three seeds with values 1, 2, 3 (by hand): mean 2, sd 1, t(0.975, 2) =
 * 4.302653, half width 4.302653 / sqrt(3) = 2.484138. */
START_TEST(repeats_summary_by_hand)
{
    rs_config cfg;
    parse_ok(&cfg, "{\"traces\": [\"t.h5\"], \"routers\": [\"topk\", \"random\"], \"seeds\": 3}");
    ck_assert_int_eq(cfg.num_routers, 4);
    rs_results res;
    rs_results_init(&res);
    int runs[4];
    runs[0] = rs_results_add_run(&res, "topk", "t.h5", "topk", "k=1", "topk:k=1");
    for (int s = 0; s < 3; s++) {
        char label[32], params[32];
        snprintf(label, sizeof label, "random@seed=%d", s);
        snprintf(params, sizeof params, "k=1;seed=%d", s);
        runs[1 + s] = rs_results_add_run(&res, label, "t.h5", "random", params, "random:k=1,seed=0");
        ck_assert_int_eq(rs_results_add_row(&res, runs[1 + s], "load.maxvio", "", -1, 1.0 + s), 0);
        ck_assert_int_eq(rs_results_add_row(&res, runs[1 + s], "load.maxvio", "", 0, s == 1 ? NAN : 5.0), 0);
    }
    rs_error err = {{0}};
    ck_assert_int_eq(rs_summarize_repeats(&res, cfg.routers, runs, 4, 0.95, &err), 0);
    ck_assert_int_eq(res.num_runs, 5);
    ck_assert_str_eq(res.runs[4].label, "random");
    ck_assert_str_eq(res.runs[4].params, "k=1");
    ck_assert_str_eq(res.runs[4].spec, "random:k=1");
    int found = 0;
    for (size_t i = 0; i < res.num_rows; i++) {
        const rs_result_row *r = &res.rows[i];
        if (r->run != 4)
            continue;
        found++;
        if (r->layer == -1 && strcmp(r->key, "") == 0)
            ck_assert_double_eq_tol(r->value, 2.0, 1e-12);
        if (r->layer == -1 && strcmp(r->key, "stat=ci_low") == 0)
            ck_assert_double_eq_tol(r->value, 2.0 - 2.484138, 1e-6);
        if (r->layer == -1 && strcmp(r->key, "stat=ci_high") == 0)
            ck_assert_double_eq_tol(r->value, 2.0 + 2.484138, 1e-6);
        if (r->layer == 0 && strcmp(r->key, "") == 0)
            ck_assert_double_eq(r->value, 5.0); /* the NaN seed is left out */
        if (r->layer == 0 && strcmp(r->key, "stat=ci_low") == 0)
            ck_assert_double_eq(r->value, 5.0); /* two equal values: zero width */
    }
    ck_assert_int_eq(found, 6);
    rs_results_free(&res);
    rs_config_free(&cfg);
}
END_TEST

START_TEST(stat_keys_sort_by_name)
{
    char buf[128];
    rs_key_with_stat("", "ci_low", buf, sizeof buf);
    ck_assert_str_eq(buf, "stat=ci_low");
    rs_key_with_stat("m=16;rho=2", "ci_high", buf, sizeof buf);
    ck_assert_str_eq(buf, "m=16;rho=2;stat=ci_high");
    rs_key_with_stat("policy=lru;slots=4;tau=2", "ci_low", buf, sizeof buf);
    ck_assert_str_eq(buf, "policy=lru;slots=4;stat=ci_low;tau=2");
    rs_key_with_stat("statistic=x", "ci_low", buf, sizeof buf);
    ck_assert_str_eq(buf, "stat=ci_low;statistic=x");
}
END_TEST

Suite *config_sweeps_suite(void)
{
    Suite *s = suite_create("config_sweeps");
    TCase *tc = tcase_create("config_sweeps");
    tcase_add_test(tc, zip_pairs_lists);
    tcase_add_test(tc, sweep_errors);
    tcase_add_test(tc, seeds_repeat_stochastic_routers);
    tcase_add_test(tc, group_default_applies_where_unset);
    tcase_add_test(tc, bootstrap_settings);
    tcase_add_test(tc, repeats_summary_by_hand);
    tcase_add_test(tc, stat_keys_sort_by_name);
    suite_add_tcase(s, tc);
    return s;
}
