/* Config parsing: defaults, expansion of parameter lists, and errors that
 * name the file and the JSON path. */
#include <check.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sim/config/config.h"
#include "tests/test_util.h"

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

static void expect_ok(const char *json, int num_traces, int num_routers, int num_metrics)
{
    rs_config cfg;
    rs_error err = {{0}};
    ck_assert_msg(rs_config_parse(&cfg, json, "exp.json", &err) == 0, "%s: %s", json, err.msg);
    ck_assert_int_eq(cfg.num_traces, num_traces);
    ck_assert_int_eq(cfg.num_routers, num_routers);
    ck_assert_int_eq(cfg.num_metrics, num_metrics);
    rs_config_free(&cfg);
}

/* cJSON keeps both values of a repeated key and lookups return the first:
 * a key given twice, at any depth, is refused with its path. */
START_TEST(keys_given_twice_are_refused)
{
    expect_error("{\"traces\": [\"a.h5\"], \"routers\": [\"topk\"], \"routers\": [\"random\"]}",
                 "exp.json: routers: key given twice in one object");
    expect_error("{\"traces\": [\"a.h5\"], \"routers\": [\"topk\", {\"name\": \"topk\", \"params\": {\"k\": 2, "
                 "\"renorm\": 0, \"k\": 3}}]}",
                 "exp.json: routers[1].params.k: key given twice");
    expect_error("{\"traces\": [{\"path\": \"g.h5\", \"generate\": {\"tokens\": 100, \"tokens\": 200}}], "
                 "\"routers\": [\"topk\"]}",
                 "exp.json: traces[0].generate.tokens: key given twice");
    expect_error("{\"traces\": [\"a.h5\"], \"routers\": [\"topk\"], \"bootstrap\": {\"resamples\": 10, \"seed\": 1, "
                 "\"seed\": 2}}",
                 "exp.json: bootstrap.seed: key given twice");
    expect_error("{\"traces\": [\"a.h5\"], \"routers\": [\"topk\"], \"plots\": {\"x\": [{\"a\": {\"b\": 1, \"b\": 1}}]}}",
                 "exp.json: plots.x[0].a.b: key given twice");
    /* Many keys (sorted, not compared pairwise): the repeat is still found. */
    char json[8192];
    int n = snprintf(json, sizeof json, "{\"traces\": [\"a.h5\"], \"routers\": [\"topk\"], \"description\": \"x\"");
    for (int i = 0; i < 200; i++)
        n += snprintf(json + n, sizeof json - (size_t)n, ", \"k%d\": %d", i % 150, i);
    snprintf(json + n, sizeof json - (size_t)n, "}");
    expect_error(json, "key given twice");
}
END_TEST

/* The same trace twice, the same metric twice or a sweep list holding a
 * value twice would repeat runs or rows: refused. */
START_TEST(repeated_runs_and_rows_are_refused)
{
    expect_error("{\"traces\": [\"a.h5\", \"b.h5\", \"./a.h5\"], \"routers\": [\"topk\"]}",
                 "exp.json: traces[2]: './a.h5' is the trace of traces[0] again");
    expect_error("{\"traces\": [\"a.h5\", {\"path\": \"a.h5\", \"generate\": {\"tokens\": 100}}], "
                 "\"routers\": [\"topk\"]}",
                 "exp.json: traces[1]: 'a.h5' is the trace of traces[0] again");
    /* Existing files are compared as files: a link to a trace is that trace. */
    const char *real = rs_test_path("real.h5");
    FILE *f = fopen(real, "w");
    fclose(f);
    char link_path[1024], json[4096];
    snprintf(link_path, sizeof link_path, "%s", rs_test_path("link.h5"));
    ck_assert_int_eq(symlink(real, link_path), 0);
    snprintf(json, sizeof json, "{\"traces\": [\"%s\", \"%s\"], \"routers\": [\"topk\"]}", real, link_path);
    expect_error(json, "is the trace of traces[0] again");
    expect_ok("{\"traces\": [\"a.h5\", \"b/a.h5\"], \"routers\": [\"topk\"]}", 2, 1, 2);

    expect_error("{\"traces\": [\"a.h5\"], \"routers\": [\"topk\"], \"metrics\": [\"load\", \"entropy\", \"load\"]}",
                 "exp.json: metrics[2]: metric load with these parameters is already in the list");
    expect_error("{\"traces\": [\"a.h5\"], \"routers\": [\"topk\"], \"metrics\": [\"load\", {\"name\": \"load\", "
                 "\"outputs\": [\"cv\"]}]}",
                 "exp.json: metrics[1]: metric load with these parameters");
    /* other outputs, or other parameters, are other rows */
    expect_ok("{\"traces\": [\"a.h5\"], \"routers\": [\"topk\"], \"metrics\": [{\"name\": \"load\", \"outputs\": "
              "[\"cv\"]}, {\"name\": \"load\", \"outputs\": [\"maxvio\"]}, {\"name\": \"cache\", \"params\": "
              "{\"slots\": 2}}, {\"name\": \"cache\", \"params\": {\"slots\": 4}}]}",
              1, 1, 4);
    expect_error("{\"traces\": [\"a.h5\"], \"routers\": [\"topk\"], \"metrics\": [{\"name\": \"cache\", \"params\": "
                 "{\"slots\": [2, 4, 2]}}]}",
                 "exp.json: metrics[0].params: the lists give slots=2 twice");

    expect_error("{\"traces\": [\"a.h5\"], \"routers\": [{\"name\": \"topk\", \"params\": {\"k\": [1, 2, 1]}}]}",
                 "exp.json: routers[0].params: the lists give k=1 twice (the same run would repeat)");
    expect_error("{\"traces\": [\"a.h5\"], \"routers\": [{\"name\": \"topk\", \"params\": {\"k\": [2, 2.0]}}]}",
                 "the lists give k=2 twice");
    expect_error("{\"traces\": [\"a.h5\"], \"routers\": [{\"name\": \"topk\", \"sweep\": \"zip\", \"params\": "
                 "{\"k\": [1, 2, 1], \"renorm\": [0, 1, 0]}}]}",
                 "the lists give k=1,renorm=0 twice");
    /* zipped lists may repeat a value as long as the pairs differ */
    expect_ok("{\"traces\": [\"a.h5\"], \"routers\": [{\"name\": \"topk\", \"sweep\": \"zip\", \"params\": "
              "{\"k\": [1, 2, 1], \"renorm\": [0, 1, 1]}}]}",
              1, 3, 2);
}
END_TEST

/* "max_output_gb" of a trace the run writes. */
START_TEST(trace_output_limit)
{
    rs_config cfg;
    rs_error err = {{0}};
    ck_assert_msg(rs_config_parse(&cfg, "{\"traces\": [{\"path\": \"g.h5\", \"generate\": {\"tokens\": 100}, "
                                        "\"max_output_gb\": 200}, {\"path\": \"h.h5\", \"generate\": {}, "
                                        "\"max_output_gb\": \"none\"}, {\"path\": \"i.h5\", \"generate\": {}}], "
                                        "\"routers\": [\"topk\"]}",
                                  "exp.json", &err) == 0,
                  "%s", err.msg);
    ck_assert_double_eq(cfg.traces[0].limit.max_gib, 200);
    ck_assert_double_eq(cfg.traces[1].limit.max_gib, -1);
    ck_assert_double_eq(cfg.traces[2].limit.max_gib, 0); /* the default */
    rs_config_free(&cfg);
    expect_error("{\"traces\": [{\"path\": \"a.h5\", \"max_output_gb\": 5}], \"routers\": [\"topk\"]}",
                 "exp.json: traces[0].max_output_gb: only a generated or imported trace is written");
    expect_error("{\"traces\": [{\"path\": \"g.h5\", \"generate\": {}, \"max_output_gb\": 0}], \"routers\": [\"topk\"]}",
                 "exp.json: traces[0].max_output_gb: expected a size in GiB > 0, or \"none\"");
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
    tcase_add_test(tc, keys_given_twice_are_refused);
    tcase_add_test(tc, repeated_runs_and_rows_are_refused);
    tcase_add_test(tc, trace_output_limit);
    tcase_add_test(tc, router_lists_expand_with_distinct_labels);
    tcase_add_test(tc, errors_name_the_json_path);
    tcase_add_test(tc, metric_outputs_select);
    tcase_add_test(tc, malformed_json_reports_line_and_column);
    tcase_add_test(tc, missing_config_file);
    suite_add_tcase(s, tc);
    return s;
}
