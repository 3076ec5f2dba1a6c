/* Trace entries that import recorded outcomes: parsing, errors, and a run
 * that imports a small RouteLLM-style table on first use. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/config/config.h"
#include "tests/test_util.h"

static void parse_fails(const char *json, const char *expected)
{
    rs_config cfg;
    rs_error err = {{0}};
    int rc = rs_config_parse(&cfg, json, "exp.json", &err);
    rs_config_free(&cfg);
    ck_assert_int_ne(rc, 0);
    ck_assert_msg(strstr(err.msg, expected), "expected '%s' in '%s'", expected, err.msg);
}

START_TEST(import_entries_parse)
{
    rs_config cfg;
    rs_error err = {{0}};
    ck_assert_msg(rs_config_parse(&cfg,
                                  "{\"traces\": [{\"path\": \"q.h5\", \"import\": {\"format\": \"routellm\", \"input\": "
                                  "\"a.csv\", \"decontaminate\": true, \"cost\": {\"weak\": 0.5, \"strong\": 20}}}], "
                                  "\"routers\": [\"oracle\"], \"metrics\": [\"outcome\"]}",
                                  "exp.json", &err) == 0,
                  "%s", err.msg);
    ck_assert_int_eq(cfg.traces[0].import, 1);
    ck_assert_str_eq(cfg.traces[0].imp.type->name, "routellm");
    ck_assert_str_eq(cfg.traces[0].imp.input, "a.csv");
    ck_assert_int_eq(rs_param_bool(&cfg.traces[0].imp.options, "decontaminate"), 1);
    ck_assert_str_eq(rs_param_str(&cfg.traces[0].imp.options, "cost"), "weak=0.5,strong=20");
    rs_config_free(&cfg);
}
END_TEST

START_TEST(import_entry_errors)
{
    parse_fails("{\"traces\": [{\"path\": \"q.h5\", \"import\": {\"format\": \"csv\", \"input\": \"a.csv\"}}], "
                "\"routers\": [\"oracle\"]}",
                "exp.json: traces[0].import.format: expected \"routellm\", \"routerbench\", \"llmrouterbench\" or "
                "\"routerarena\"");
    parse_fails("{\"traces\": [{\"path\": \"q.h5\", \"import\": {\"format\": \"routellm\"}}], \"routers\": [\"oracle\"]}",
                "exp.json: traces[0].import.input: missing");
    parse_fails("{\"traces\": [{\"path\": \"q.h5\", \"import\": {\"format\": \"routerbench\", \"input\": \"a.csv\", "
                "\"cost\": \"a=1\"}}], \"routers\": [\"oracle\"]}",
                "exp.json: traces[0].import: cost, decontaminate and domain_column are routellm options");
    parse_fails("{\"traces\": [{\"path\": \"q.h5\", \"generate\": {\"preset\": \"small\"}, \"import\": {\"format\": "
                "\"routellm\", \"input\": \"a.csv\"}}], \"routers\": [\"oracle\"]}",
                "exp.json: traces[0]: a trace is either generated or imported, not both");
    parse_fails("{\"traces\": [{\"path\": \"q.h5\", \"import\": {\"format\": \"routellm\", \"input\": \"a.csv\", "
                "\"cost\": {\"a\": -1}}}], \"routers\": [\"oracle\"]}",
                "exp.json: traces[0].import.cost.a: expected a price >= 0");
    parse_fails("{\"traces\": [{\"path\": \"q.h5\", \"import\": {\"format\": \"routellm\", \"input\": \"a.csv\", "
                "\"sheet\": 1}}], \"routers\": [\"oracle\"]}",
                "exp.json: traces[0].import: unknown key 'sheet'");
}
END_TEST

/* Four questions (by hand): weak answers 1 0 1 0, strong 1 1 1 0, the
 * fourth is contaminated and dropped: weak 2/3, strong 1, oracle 1. */
START_TEST(run_imports_on_first_use)
{
    const char *csv = rs_test_path("mini.csv"), *trace = rs_test_path("mini.h5"), *config = rs_test_path("imp.json");
    FILE *f = fopen(csv, "w");
    ck_assert_ptr_nonnull(f);
    fputs("subject,row,weak,strong,contaminated\nalgebra,0,1,1,0\nalgebra,1,0,1,0\nlaw,0,1,1,0\nlaw,1,0,0,1\n", f);
    fclose(f);
    f = fopen(config, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "{\"traces\": [{\"path\": \"%s\", \"import\": {\"format\": \"routellm\", \"input\": \"%s\", "
            "\"decontaminate\": true, \"cost\": {\"weak\": 1, \"strong\": 10}}}], \"routers\": [{\"name\": "
            "\"fixed\", \"params\": {\"model\": [\"weak\", \"strong\"]}}, \"oracle\"], \"metrics\": [{\"name\": "
            "\"outcome\"}], \"output\": \"%s\"}",
            trace, csv, rs_test_path("imp-out"));
    fclose(f);
    char cmd[4096], *out = NULL, *err = NULL;
    snprintf(cmd, sizeof cmd, "run %s -q --no-progress", config);
    ck_assert_msg(rs_test_run_cli(cmd, &out, &err) == 0, "%s", err);
    ck_assert_msg(strstr(err, "importing"), "%s", err);
    ck_assert(rs_test_file_exists(trace));
    free(out);
    free(err);
    snprintf(cmd, sizeof cmd, "%s/results.csv", rs_test_path("imp-out"));
    char *results = rs_test_read_file(cmd);
    ck_assert_ptr_nonnull(results);
    ck_assert_msg(strstr(results, "fixed:model=weak,") && strstr(results, ",outcome.quality,,all,0.6666666666666666\n"),
                  "%s", results);
    ck_assert_msg(strstr(results, "oracle,") && strstr(results, ",outcome.quality,,all,1\n"), "%s", results);
    free(results);
    /* a second run finds the trace */
    snprintf(cmd, sizeof cmd, "run %s -q --no-progress --force", config);
    ck_assert_int_eq(rs_test_run_cli(cmd, &out, &err), 0);
    ck_assert_msg(!strstr(err, "importing"), "%s", err);
    free(out);
    free(err);
    /* a missing input is named */
    remove(trace);
    remove(csv);
    ck_assert_int_ne(rs_test_run_cli(cmd, &out, &err), 0);
    ck_assert_msg(strstr(err, "cannot import") && strstr(err, "mini.csv"), "%s", err);
    free(out);
    free(err);
}
END_TEST

Suite *config_import_suite(void)
{
    Suite *s = suite_create("config_import");
    TCase *tc = tcase_create("config_import");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, import_entries_parse);
    tcase_add_test(tc, import_entry_errors);
    tcase_add_test(tc, run_imports_on_first_use);
    suite_add_tcase(s, tc);
    return s;
}
