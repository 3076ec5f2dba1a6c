/* routesim import routellm / routerbench: CSV parsing, the traces they
 * write, their errors, and RouteLLM's published accuracies reproduced from
 * data/routellm, the outcomes shipped with the repository. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/query/check_query.h"
#include "workloads/import/import_routellm.h"
#include "workloads/import/import_routerbench.h"
#include "workloads/trace/trace.h"

static const char *write_text(const char *name, const char *text)
{
    const char *path = rs_test_path(name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    return path;
}

START_TEST(csv_reader_handles_quotes_and_line_breaks)
{
    const char *path = write_text("q.csv", "\xEF\xBB\xBF"
                                           "a,b,c\r\n"
                                           "\"x, y\",\"say \"\"hi\"\"\",3\r\n"
                                           "\n"
                                           "\"two\nlines\",,\"\"\n");
    rs_csv_reader r;
    rs_error err = {{0}};
    ck_assert_int_eq(rs_csv_open(&r, path, &err), 0);
    rs_csv_header h;
    ck_assert_int_eq(rs_csv_read_header(&r, &h, &err), 0);
    ck_assert_int_eq(h.count, 3);
    ck_assert_str_eq(h.names[0], "a"); /* the byte order mark is not part of the name */
    ck_assert_int_eq(rs_csv_next(&r, &err), 1);
    ck_assert_str_eq(rs_csv_field(&r, 0), "x, y");
    ck_assert_str_eq(rs_csv_field(&r, 1), "say \"hi\"");
    ck_assert_str_eq(rs_csv_field(&r, 2), "3");
    ck_assert_int_eq(rs_csv_next(&r, &err), 1); /* the blank line is skipped */
    ck_assert_int_eq(r.line, 4);
    ck_assert_int_eq(r.num_fields, 3);
    ck_assert_str_eq(rs_csv_field(&r, 0), "two\nlines");
    ck_assert_str_eq(rs_csv_field(&r, 1), "");
    ck_assert_str_eq(rs_csv_field(&r, 2), "");
    ck_assert_int_eq(rs_csv_next(&r, &err), 0);
    rs_csv_header_free(&h);
    rs_csv_close(&r);
    path = write_text("open.csv", "a,b\n\"never closed,1\n");
    ck_assert_int_eq(rs_csv_open(&r, path, &err), 0);
    ck_assert_int_eq(rs_csv_read_header(&r, &h, &err), 0);
    ck_assert_int_eq(rs_csv_next(&r, &err), -1);
    ck_assert_msg(strstr(err.msg, "line 2: a quoted field is never closed") != NULL, "%s", err.msg);
    rs_csv_header_free(&h);
    rs_csv_close(&r);
}
END_TEST

static const char routellm_csv[] = "subject,row,weak,strong,contaminated\n"
                                   "algebra,0,1,1,0\n"
                                   "algebra,1,0,1,1\n"
                                   "law,0,0,0,0\n"
                                   "law,1,true,false,0\n"
                                   "algebra,2,,1,0\n";

static void read_quality(const char *path, float *q, int T, int E)
{
    rs_trace *tr = NULL;
    rs_error err = {{0}};
    ck_assert_msg(rs_trace_open(&tr, path, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(rs_trace_get_info(tr)->num_tokens, T);
    ck_assert_int_eq(rs_trace_get_info(tr)->num_experts, E);
    ck_assert_int_eq(rs_trace_read_outcome(tr, 0, T, q, NULL, &err), 0);
    rs_trace_close(tr);
}

START_TEST(routellm_import)
{
    const char *in = write_text("r.csv", routellm_csv), *out = rs_test_path("r.h5");
    rs_import_routellm_options opt = {.input = in, .output = out, .cost = "strong=30,weak=0.6"};
    rs_import_query_report rep;
    rs_error err = {{0}};
    ck_assert_msg(rs_import_routellm(&opt, &rep, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(rep.queries, 5);
    ck_assert_int_eq(rep.num_domains, 2);
    /* weak: 1 0 0 1 (empty = not evaluated) -> .5; strong 1 1 0 0 1 -> .6; oracle 1 1 0 1 1 -> .8 */
    ck_assert_double_eq_tol(rep.quality[0], 0.5, 1e-12);
    ck_assert_double_eq_tol(rep.quality[1], 0.6, 1e-12);
    ck_assert_double_eq_tol(rep.oracle, 0.8, 1e-12);
    float q[10];
    read_quality(out, q, 5, 2);
    ck_assert(q[0] == 1 && q[1] == 1 && q[6] == 1 && q[7] == 0 && isnan(q[8]) && q[9] == 1);
    rs_trace *tr = NULL;
    ck_assert_int_eq(rs_trace_open(&tr, out, &err), 0);
    const rs_trace_info *info = rs_trace_get_info(tr);
    ck_assert_str_eq(info->expert_names[0], "weak");
    ck_assert_str_eq(info->expert_names[1], "strong");
    ck_assert_int_eq(info->num_sequences, 5); /* every question its own sequence */
    ck_assert_str_eq(rs_trace_domain_name(tr, 1), "law");
    int32_t domain[5];
    ck_assert_int_eq(rs_trace_read_domain(tr, 0, 5, domain, &err), 0);
    ck_assert(domain[0] == 0 && domain[2] == 1 && domain[3] == 1 && domain[4] == 0);
    float cost[2];
    ck_assert_int_eq(rs_trace_read_outcome(tr, 0, 1, NULL, cost, &err), 0);
    ck_assert(cost[0] == 0.6f && cost[1] == 30.0f);
    ck_assert_int_eq(rs_trace_cost_per_query(tr), 0);
    rs_trace_close(tr);
    /* decontaminated: the row with contaminated = 1 goes */
    opt.decontaminate = 1;
    opt.cost = NULL;
    ck_assert_msg(rs_import_routellm(&opt, &rep, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(rep.queries, 4);
    ck_assert_int_eq(rep.dropped, 1);
    ck_assert_int_eq(rs_trace_open(&tr, out, &err), 0);
    ck_assert_int_eq(rs_trace_get_info(tr)->has_cost, 0);
    rs_trace_close(tr);
}
END_TEST

static void expect_routellm_error(const char *csv, rs_import_routellm_options opt, const char *needle)
{
    opt.input = write_text("bad.csv", csv);
    opt.output = rs_test_path("bad.h5");
    rs_import_query_report rep;
    rs_error err = {{0}};
    ck_assert_msg(rs_import_routellm(&opt, &rep, &err) != 0, "import succeeded, wanted '%s'", needle);
    ck_assert_msg(strstr(err.msg, needle) != NULL, "message '%s' lacks '%s'", err.msg, needle);
    ck_assert(!rs_test_file_exists(opt.output)); /* no partial trace */
}

START_TEST(routellm_errors)
{
    rs_import_routellm_options none = {0};
    rs_import_routellm_options o = none;
    o.cost = "strong=30";
    expect_routellm_error(routellm_csv, o, "--cost: no price for model 'weak'");
    o.cost = "strong=30,weak=-1";
    expect_routellm_error(routellm_csv, o, "'-1' is not a price");
    o.cost = "strong=30,gpt5=1";
    expect_routellm_error(routellm_csv, o, "--cost: 'gpt5' is not a model column");
    o = none;
    o.models = "weak,gpt5";
    expect_routellm_error(routellm_csv, o, "--models: no column 'gpt5' in the header");
    expect_routellm_error("subject,a,b\nx,1,maybe\n", none, "line 2, column b: 'maybe' is not a quality");
    expect_routellm_error("subject,a,b\nx,1\n", none, "line 2: 2 fields, the header has 3");
    o = none;
    o.decontaminate = 1;
    expect_routellm_error("subject,a,b\nx,1,0\n", o, "--decontaminate: the header has no 'contaminated' column");
    o = none;
    o.domain_column = "topic";
    expect_routellm_error(routellm_csv, o, "--domain-column: no column 'topic'");
    expect_routellm_error("subject,row,contaminated\nx,1,0\n", none, "no model columns");
    expect_routellm_error("subject,a,b\n", none, "no questions to import");
}
END_TEST

static const char routerbench_csv[] =
    "sample_id,prompt,eval_name,m1,m2,m1|model_response,m2|model_response,m1|total_cost,m2|total_cost,"
    "oracle_model_to_route_to\n"
    "s0,\"What is 2+2, really?\",mmlu,1.0,0.0,\"four\",\"five\",0.001,0.01,m1\n"
    "s1,\"multi\nline prompt\",hellaswag,0.5,,\"x\",,0.002,,m1\n"
    "s2,p,mmlu,0,1,a,b,0.003,0.02,m2\n"
    "s3,p,gsm8k,,,,,,,no_model_correct\n";

START_TEST(routerbench_import)
{
    const char *in = write_text("rb.csv", routerbench_csv), *out = rs_test_path("rb.h5");
    rs_import_routerbench_options opt = {.input = in, .output = out};
    rs_import_query_report rep;
    rs_error err = {{0}};
    ck_assert_msg(rs_import_routerbench(&opt, &rep, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(rep.queries, 4);
    ck_assert_int_eq(rep.num_models, 2);
    ck_assert_int_eq(rep.num_domains, 3);
    ck_assert_int_eq(rep.unscored, 1); /* s3: no model evaluated */
    rs_trace *tr = NULL;
    ck_assert_int_eq(rs_trace_open(&tr, out, &err), 0);
    const rs_trace_info *info = rs_trace_get_info(tr);
    ck_assert_int_eq(info->num_unscored, 1);
    ck_assert_int_eq(rs_trace_cost_per_query(tr), 1);
    ck_assert_str_eq(info->expert_names[1], "m2");
    ck_assert_str_eq(rs_trace_domain_name(tr, 1), "hellaswag");
    float q[8], c[8];
    ck_assert_int_eq(rs_trace_read_outcome(tr, 0, 4, q, c, &err), 0);
    ck_assert(q[0] == 1 && q[1] == 0 && q[2] == 0.5f && isnan(q[3]) && isnan(q[6]) && isnan(q[7]));
    ck_assert(c[0] == 0.001f && c[1] == 0.01f && c[2] == 0.002f && c[3] == 0 && c[6] == 0);
    rs_trace_close(tr);
    /* a subset, reordered */
    opt.models = "m2";
    ck_assert_msg(rs_import_routerbench(&opt, &rep, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(rep.num_models, 1);
    ck_assert_int_eq(rep.unscored, 2);
}
END_TEST

static void expect_routerbench_error(const char *csv, const char *models, const char *needle)
{
    rs_import_routerbench_options opt = {.input = write_text("bad_rb.csv", csv), .output = rs_test_path("bad_rb.h5"),
                                         .models = models};
    rs_import_query_report rep;
    rs_error err = {{0}};
    ck_assert_msg(rs_import_routerbench(&opt, &rep, &err) != 0, "import succeeded, wanted '%s'", needle);
    ck_assert_msg(strstr(err.msg, needle) != NULL, "message '%s' lacks '%s'", err.msg, needle);
    ck_assert(!rs_test_file_exists(opt.output));
}

START_TEST(routerbench_errors)
{
    expect_routerbench_error("eval_name,m1,m1|total_cost,m2|total_cost\nx,1,0.1,0.2\n", NULL,
                             "column 'm2' missing: the header has 'm2|total_cost' but not the model's quality column");
    expect_routerbench_error("eval_name,m1,m1|total_cost\nx,1,-0.1\n", NULL,
                             "line 2, column m1|total_cost: '-0.1' is not a cost");
    expect_routerbench_error("eval_name,m1,m1|total_cost\nx,1,\n", NULL,
                             "column m1|total_cost: empty, but m1 has a quality there");
    expect_routerbench_error("eval_name,m1,m1|total_cost\nx,high,1\n", NULL, "'high' is not a quality");
    expect_routerbench_error("prompt,m1,m1|total_cost\nx,1,1\n", NULL, "no 'eval_name' column");
    expect_routerbench_error("eval_name,m1\nx,1\n", NULL, "no model columns");
    expect_routerbench_error(routerbench_csv, "m3", "--models: no model 'm3'");
}
END_TEST

/* Quality is 0/1 correctness or a score in [0, 1] unless --max-quality
 * names the top of a graded scale; anything outside is refused. */
START_TEST(quality_outside_its_range_is_refused)
{
    expect_routerbench_error("eval_name,m1,m1|total_cost\nx,0.5,0.1\nx,1e30,0.1\n", NULL,
                             "bad_rb.csv: line 3, column m1: quality 1e30 is outside [0, 1]");
    expect_routerbench_error("eval_name,m1,m1|total_cost\nx,-5,0.1\n", NULL,
                             "line 2, column m1: quality -5 is outside [0, 1]");
    rs_import_routellm_options none = {0};
    expect_routellm_error("subject,a,b\nx,1,1.5\n", none, "line 2, column b: quality 1.5 is outside [0, 1]");
    rs_import_routellm_options graded = {.max_quality = 10};
    expect_routellm_error("subject,a,b\nx,1,-0.5\n", graded, "line 2, column b: quality -0.5 is outside [0, 10]");

    /* A graded score (MT-Bench's 1-10) with --max-quality 10; NaN (empty) always passes. */
    const char *in = write_text("graded.csv", "eval_name,m1,m1|total_cost,m2,m2|total_cost\nmt,7.5,0.1,,\nmt,10,0.2,0,0.1\n");
    char args[2048], *out = NULL, *err = NULL;
    snprintf(args, sizeof args, "import routerbench '%s' -o '%s'", in, rs_test_path("graded.h5"));
    ck_assert_int_eq(rs_test_run_cli(args, &out, &err), 1);
    ck_assert_msg(strstr(err, "quality 7.5 is outside [0, 1] (--max-quality") != NULL, "%s", err);
    free(out), free(err);
    snprintf(args, sizeof args, "import routerbench '%s' -o '%s' --max-quality 10", in, rs_test_path("graded.h5"));
    ck_assert_msg(rs_test_run_cli(args, &out, &err) == 0, "%s", err);
    free(out), free(err);
    float q[4];
    read_quality(rs_test_path("graded.h5"), q, 2, 2);
    ck_assert(q[0] == 7.5f && isnan(q[1]) && q[2] == 10 && q[3] == 0);
}
END_TEST

START_TEST(cli_import_reports)
{
    const char *in = write_text("cli.csv", routellm_csv);
    char args[2048], *out = NULL, *err = NULL;
    snprintf(args, sizeof args, "import routellm '%s' -o '%s' --decontaminate --cost weak=1,strong=10", in,
             rs_test_path("cli.h5"));
    ck_assert_int_eq(rs_test_run_cli(args, &out, &err), 0);
    ck_assert_msg(strstr(err, "4 queries (1 contaminated row dropped), 2 models, 2 domains") != NULL, "%s", err);
    free(out);
    free(err);
    /* RouterBench: each model's name next to its mean quality (m1: 1 and 1,
     * m2: 0 and 1), in the order of --models; the per-query best is 1 twice */
    const char *rb = write_text("cli_rb.csv", "eval_name,m1,m2,m1|total_cost,m2|total_cost\n"
                                              "mmlu,1,0,0.1,0.2\n"
                                              "mmlu,1,1,0.1,0.2\n");
    snprintf(args, sizeof args, "import routerbench '%s' -o '%s'", rb, rs_test_path("cli_rb.h5"));
    ck_assert_int_eq(rs_test_run_cli(args, &out, &err), 0);
    ck_assert_msg(strstr(err, "(routerbench): 2 queries, 2 models, 1 domain; mean quality: m1 1.00000, m2 0.50000; "
                              "per-query oracle 1.00000\n") != NULL,
                  "%s", err);
    free(out);
    free(err);
    snprintf(args, sizeof args, "import routerbench '%s' -o '%s' --models m2,m1 --force", rb,
             rs_test_path("cli_rb.h5"));
    ck_assert_int_eq(rs_test_run_cli(args, &out, &err), 0);
    ck_assert_msg(strstr(err, "mean quality: m2 0.50000, m1 1.00000;") != NULL, "%s", err);
    free(out);
    free(err);
    ck_assert_int_eq(rs_test_run_cli("import routellm --help", &out, &err), 0);
    ck_assert(strstr(out, "--decontaminate") != NULL);
    free(out);
    free(err);
    ck_assert_int_eq(rs_test_run_cli("import routerbench", &out, &err), 2);
    free(out);
    free(err);
}
END_TEST

/* RouteLLM's public outcomes: the accuracies and per-question oracle of
 * metrics.md (decontaminated) and of the data's README (all rows), to 5
 * decimals, measured by the outcome family through fixed and oracle. */
START_TEST(routellm_numbers_reproduce)
{
    const char *src = getenv("ROUTESIM_SRC");
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/data/routellm", src ? src : ".");
    char mmlu[1100], gsm8k[1100];
    snprintf(mmlu, sizeof mmlu, "%s/mmlu.csv", dir);
    snprintf(gsm8k, sizeof gsm8k, "%s/gsm8k.csv", dir);
    ck_assert_msg(rs_test_file_exists(mmlu) && rs_test_file_exists(gsm8k),
                  "%s: the shipped RouteLLM outcomes (mmlu.csv, gsm8k.csv) are missing (set ROUTESIM_SRC)", dir);
    static const struct {
        const char *csv;
        int decontaminate;
        double rows, weak, strong, oracle;
    } want[] = {
        {"mmlu", 1, 14037, 0.68091, 0.80587, 0.85873}, /* metrics.md */
        {"gsm8k", 1, 1307, 0.63734, 0.85769, 0.92961},
        {"mmlu", 0, 14042, 0.68081, 0.80580, 0.85864}, /* the data's README, all rows */
        {"gsm8k", 0, 1319, 0.63836, 0.85671, 0.92873},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        rs_import_routellm_options opt = {.input = strcmp(want[i].csv, "mmlu") == 0 ? mmlu : gsm8k,
                                          .output = rs_test_path("routellm.h5"),
                                          .decontaminate = want[i].decontaminate};
        rs_import_query_report rep;
        rs_error err = {{0}};
        ck_assert_msg(rs_import_routellm(&opt, &rep, &err) == 0, "%s", err.msg);
        const char *routers[] = {"fixed:model=mixtral_8x7b_instruct", "fixed:model=gpt_4_1106_preview", "oracle"};
        rs_results res;
        query_measure(opt.output, routers, 3, NULL, 2, 0, &res);
        double weak = query_value(&res, 0, "outcome.quality", ""), strong = query_value(&res, 1, "outcome.quality", "");
        double oracle = query_value(&res, 2, "outcome.quality", ""),
               oracle_metric = query_value(&res, 0, "outcome.oracle_quality", "none_correct=skip");
        ck_assert_double_eq(query_value(&res, 0, "outcome.queries", ""), want[i].rows);
        ck_assert_msg(round(weak * 1e5) == round(want[i].weak * 1e5), "%s: Mixtral %.6f", want[i].csv, weak);
        ck_assert_msg(round(strong * 1e5) == round(want[i].strong * 1e5), "%s: GPT-4 %.6f", want[i].csv, strong);
        ck_assert_msg(round(oracle * 1e5) == round(want[i].oracle * 1e5), "%s: oracle %.6f", want[i].csv, oracle);
        ck_assert(oracle == oracle_metric);
        rs_results_free(&res);
    }
}
END_TEST

Suite *query_import_suite(void)
{
    Suite *s = suite_create("query_import");
    TCase *tc = tcase_create("query_import");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, csv_reader_handles_quotes_and_line_breaks);
    tcase_add_test(tc, routellm_import);
    tcase_add_test(tc, routellm_errors);
    tcase_add_test(tc, routerbench_import);
    tcase_add_test(tc, routerbench_errors);
    tcase_add_test(tc, quality_outside_its_range_is_refused);
    tcase_add_test(tc, cli_import_reports);
    tcase_add_test(tc, routellm_numbers_reproduce);
    suite_add_tcase(s, tc);
    return s;
}
