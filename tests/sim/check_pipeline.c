/* The run pipeline called as a library function (no binary): the same
 * results.csv as `routesim run`, and failures that name the file and the
 * field and leave no results file behind. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sim/experiment/pipeline.h"
#include "tests/test_util.h"

/* A 3-sequence trace and a config of it writing to output. */
static const char *write_config(const char *name, const char *routers, const char *output)
{
    static int written;
    const char *trace = rs_test_path("pipeline.h5");
    if (!written++) {
        int T = 300, L = 2, E = 8;
        float *logits = rs_test_random_logits(T, L, E, 7);
        int64_t offsets[] = {0, 100, 180, 300};
        rs_test_trace tt = {.T = T, .L = L, .E = E, .num_seq = 3, .offsets = offsets, .logits = logits};
        rs_test_write_trace(trace, &tt);
        free(logits);
    }
    const char *config = rs_test_path(name);
    FILE *f = fopen(config, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "{\"name\": \"pipeline\", \"traces\": [\"%s\"], \"routers\": %s, \"metrics\": [\"load\", \"entropy\"], "
            "\"batch_tokens\": 64, \"output\": \"%s\"}",
            trace, routers, output);
    fclose(f);
    return config;
}

static void quiet_options(rs_pipeline_options *opt, const char *config)
{
    rs_pipeline_options_init(opt, config);
    opt->progress = 0;
    opt->plots = 0;
    opt->quiet = 1;
}

START_TEST(pipeline_writes_what_routesim_run_writes)
{
    char lib_out[1100], cli_out[1100];
    snprintf(lib_out, sizeof lib_out, "%s", rs_test_path("lib-out"));
    snprintf(cli_out, sizeof cli_out, "%s", rs_test_path("cli-out"));
    char config[1100];
    snprintf(config, sizeof config, "%s",
             write_config("same.json", "[\"topk:k=2\", {\"name\": \"random\", \"params\": {\"k\": 2, \"seed\": [1, 2]}}]",
                          lib_out));
    rs_pipeline_options opt;
    quiet_options(&opt, config);
    rs_pipeline_report report;
    rs_error err = {{0}};
    ck_assert_msg(rs_pipeline_run(&opt, &report, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(report.runs, 3);
    ck_assert_uint_gt(report.rows, 0);
    ck_assert(rs_test_file_exists(report.results_csv) && rs_test_file_exists(report.results_json));
    char path[1200];
    snprintf(path, sizeof path, "%s/results.csv", lib_out);
    ck_assert_str_eq(report.results_csv, path);

    char args[2600], *o = NULL, *e = NULL;
    snprintf(args, sizeof args, "run '%s' --output '%s' -q --no-progress --no-plots", config, cli_out);
    ck_assert_msg(rs_test_run_cli(args, &o, &e) == 0, "%s", e);
    free(o), free(e);
    char *lib_csv = rs_test_read_file(report.results_csv);
    snprintf(path, sizeof path, "%s/results.csv", cli_out);
    char *cli_csv = rs_test_read_file(path);
    ck_assert_ptr_nonnull(lib_csv);
    ck_assert_ptr_nonnull(cli_csv);
    ck_assert_msg(strcmp(lib_csv, cli_csv) == 0, "library:\n%s\nCLI:\n%s", lib_csv, cli_csv);
    free(lib_csv), free(cli_csv);
}
END_TEST

static void expect_failure(const rs_pipeline_options *opt, const char *output, const char *const *needles)
{
    rs_pipeline_report report;
    rs_error err = {{0}};
    ck_assert_int_eq(rs_pipeline_run(opt, &report, &err), -1);
    ck_assert_msg(!strchr(err.msg, '\n'), "more than one line: %s", err.msg);
    for (int i = 0; needles[i]; i++)
        ck_assert_msg(strstr(err.msg, needles[i]), "'%s' not in: %s", needles[i], err.msg);
    char path[1200];
    snprintf(path, sizeof path, "%s/results.csv", output);
    ck_assert_msg(!rs_test_file_exists(path), "%s left behind", path);
}

START_TEST(pipeline_failures_leave_no_results)
{
    char output[1100];
    snprintf(output, sizeof output, "%s", rs_test_path("bad-out"));
    rs_pipeline_options opt;

    /* a bad config field: named with its file */
    const char *config = write_config("bad-field.json", "[{\"name\": \"topk\", \"params\": {\"k\": \"two\"}}]", output);
    quiet_options(&opt, config);
    const char *field[] = {config, "routers[0]", "k", "two", NULL};
    expect_failure(&opt, output, field);

    /* results.json cannot be written: the CSV written before it is removed */
    config = write_config("blocked.json", "[\"topk:k=2\"]", output);
    quiet_options(&opt, config);
    char blocker[1200];
    snprintf(blocker, sizeof blocker, "%s/results.json", output);
    ck_assert_int_eq(mkdir(output, 0755), 0);
    ck_assert_int_eq(mkdir(blocker, 0755), 0);
    const char *json[] = {"results.json", NULL};
    expect_failure(&opt, output, json);
}
END_TEST

Suite *pipeline_suite(void)
{
    Suite *s = suite_create("pipeline");
    TCase *tc = tcase_create("pipeline");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, pipeline_writes_what_routesim_run_writes);
    tcase_add_test(tc, pipeline_failures_leave_no_results);
    suite_add_tcase(s, tc);
    return s;
}
