/* Config parsing: defaults, expansion of parameter lists, and errors that
 * name the file and the JSON path. */
#include <check.h>
#include <string.h>

#include "sim/config/config.h"

static void expect_error(const char *json, const char *needle)
{
    rs_config cfg;
    rs_error err = {{0}};
    ck_assert_int_eq(rs_config_parse(&cfg, json, "exp.json", &err), -1);
    ck_assert_msg(strstr(err.msg, needle) != NULL, "message '%s' lacks '%s'", err.msg, needle);
    ck_assert_msg(strncmp(err.msg, "exp.json: ", 10) == 0, "message '%s' does not start with the file", err.msg);
    rs_config_free(&cfg);
}

START_TEST(minimal_config_defaults)
{
    rs_config cfg;
    rs_error err = {{0}};
    ck_assert_msg(rs_config_parse(&cfg, "{\"name\": \"q\", \"traces\": [\"a.h5\"], \"routers\": [\"topk\"]}",
                                  "exp.json", &err) == 0,
                  "%s", err.msg);
    ck_assert_str_eq(cfg.name, "q");
    ck_assert_int_eq(cfg.num_traces, 1);
    ck_assert_str_eq(cfg.traces[0].path, "a.h5");
    ck_assert_int_eq(cfg.traces[0].generate, 0);
    ck_assert_int_eq(cfg.num_routers, 1);
    ck_assert_str_eq(cfg.routers[0].label, "topk");
    ck_assert_int_eq(cfg.num_metrics, 2); /* load and entropy by default */
    ck_assert_str_eq(cfg.metrics[0].type->name, "load");
    ck_assert_int_eq(cfg.batch_tokens, 4096);
    ck_assert_str_eq(cfg.output, "results/q");
    rs_config_free(&cfg);
}
END_TEST

START_TEST(router_lists_expand_with_distinct_labels)
{
    const char *json = "{\"traces\": [\"a.h5\"], \"routers\": ["
                       "{\"name\": \"topk\", \"params\": {\"k\": [1, 2], \"renorm\": [0, 1]}},"
                       "{\"name\": \"random\", \"label\": \"rnd\", \"params\": {\"seed\": [1, 2]}},"
                       "\"topk:k=2\", \"topk:k=2\"], \"metrics\": [\"load\"], \"batch_tokens\": 128}";
    rs_config cfg;
    rs_error err = {{0}};
    ck_assert_msg(rs_config_parse(&cfg, json, "exp.json", &err) == 0, "%s", err.msg);
    ck_assert_int_eq(cfg.num_routers, 8);
    const char *labels[] = {"topk:k=1,renorm=0", "topk:k=1,renorm=1", "topk:k=2,renorm=0", "topk:k=2,renorm=1",
                            "rnd:seed=1",        "rnd:seed=2",        "topk:k=2",          "topk:k=2#2"};
    for (int i = 0; i < 8; i++)
        ck_assert_str_eq(cfg.routers[i].label, labels[i]);
    ck_assert_int_eq(rs_param_int(&cfg.routers[3].params, "k"), 2);
    ck_assert_int_eq(cfg.batch_tokens, 128);
    rs_config_free(&cfg);
}
END_TEST

START_TEST(errors_name_the_json_path)
{
    expect_error("{\"traces\": [\"a.h5\"], \"routers\": [\"topk\"], \"bogus\": 1}",
                 "unknown key 'bogus' (known: name, description, traces");
    expect_error("{\"traces\": [\"a.h5\"]}", "exp.json: routers: missing");
    expect_error("{\"routers\": [\"topk\"]}", "exp.json: traces: missing");
    expect_error("{\"traces\": [\"a.h5\"], \"routers\": [\"topk\", {\"name\": \"topk\", \"params\": {\"k\": \"two\"}}]}",
                 "exp.json: routers[1].params: parameter k: expected an integer, got 'two'");
    expect_error("{\"traces\": [\"a.h5\"], \"routers\": [{\"name\": \"nope\"}]}",
                 "exp.json: routers[0].name: unknown router 'nope'");
    expect_error("{\"traces\": [\"a.h5\"], \"routers\": [\"topk:k=0\"]}",
                 "exp.json: routers[0]: router topk: parameter k=0 out of range");
    expect_error("{\"traces\": [\"a.h5\"], \"routers\": [{\"name\": \"topk\", \"param\": {}}]}",
                 "exp.json: routers[0]: unknown key 'param'");
    expect_error("{\"traces\": [\"a.h5\"], \"routers\": [\"topk\"], \"metrics\": [\"lod\"]}",
                 "exp.json: metrics[0]: unknown metric 'lod'");
    expect_error("{\"traces\": [\"a.h5\"], \"routers\": [\"topk\"], \"batch_tokens\": 0}",
                 "exp.json: batch_tokens: expected an integer in [1,");
    expect_error("{\"traces\": [{\"path\": \"\"}], \"routers\": [\"topk\"]}",
                 "exp.json: traces[0].path: expected a non-empty string");
    expect_error("{\"traces\": [{\"path\": \"a.h5\", \"generate\": {\"tokens\": -5}}], \"routers\": [\"topk\"]}",
                 "exp.json: traces[0].generate");
    expect_error("{\"traces\": [\"a.h5\"], \"routers\": []}", "exp.json: routers: expected a non-empty list");
    expect_error("[1, 2]", "exp.json: the config must be a JSON object");
    expect_error("{\"traces\": [\"a.h5\"], \"routers\": [\"topk\"], \"metrics\": [{\"name\": \"entropy\", "
                 "\"outputs\": [\"router_entropy\", \"entropie\"]}]}",
                 "exp.json: metrics[0].outputs[1]: metric entropy has no output 'entropie' (outputs: router_entropy, "
                 "selected_mass");
    expect_error("{\"traces\": [\"a.h5\"], \"routers\": [\"topk\"], \"metrics\": [{\"name\": \"load\", "
                 "\"outputs\": []}]}",
                 "exp.json: metrics[0].outputs: expected a non-empty list of output names of metric load");
}
END_TEST

START_TEST(metric_outputs_select)
{
    const char *json = "{\"traces\": [\"a.h5\"], \"routers\": [\"topk\"], \"metrics\": ["
                       "{\"name\": \"entropy\", \"outputs\": [\"selected_mass\", \"router_entropy\"]}, \"load\"]}";
    rs_config cfg;
    rs_error err = {{0}};
    ck_assert_msg(rs_config_parse(&cfg, json, "exp.json", &err) == 0, "%s", err.msg);
    ck_assert_int_eq(cfg.num_metrics, 2);
    ck_assert_uint_eq(cfg.metrics[0].outputs, 3); /* outputs 0 and 1, whatever the order named */
    ck_assert_uint_eq(rs_metric_spec_outputs(&cfg.metrics[0]), 3);
    ck_assert_uint_eq(cfg.metrics[1].outputs, 0); /* every output */
    ck_assert_uint_eq(rs_metric_spec_outputs(&cfg.metrics[1]), (1ULL << cfg.metrics[1].type->num_outputs) - 1);
    char text[256];
    rs_metric_outputs_format(&cfg.metrics[0], text, sizeof text);
    ck_assert_str_eq(text, "router_entropy,selected_mass");
    rs_metric_outputs_format(&cfg.metrics[1], text, sizeof text);
    ck_assert_str_eq(text, "");
    rs_config_free(&cfg);
}
END_TEST

START_TEST(malformed_json_reports_line_and_column)
{
    expect_error("{\n  \"traces\": [\"a.h5\"],\n  \"routers\": [\"topk\",]\n}", "malformed JSON at line 3, column 22");
    expect_error("", "malformed JSON at line 1, column 1");
}
END_TEST

START_TEST(missing_config_file)
{
    rs_config cfg;
    rs_error err = {{0}};
    ck_assert_int_eq(rs_config_load(&cfg, "/nonexistent/exp.json", &err), -1);
    ck_assert_str_eq(err.msg, "/nonexistent/exp.json: cannot open config: No such file or directory");
    rs_config_free(&cfg);
}
END_TEST

Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_test(tc, minimal_config_defaults);
    tcase_add_test(tc, router_lists_expand_with_distinct_labels);
    tcase_add_test(tc, errors_name_the_json_path);
    tcase_add_test(tc, metric_outputs_select);
    tcase_add_test(tc, malformed_json_reports_line_and_column);
    tcase_add_test(tc, missing_config_file);
    suite_add_tcase(s, tc);
    return s;
}
