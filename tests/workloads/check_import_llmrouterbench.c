/* routesim import llmrouterbench: a results tree written as LLMRouterBench's
 * data_collector/storage.py save_result writes it (json.dump with indent=2,
 * ensure_ascii=False; <dataset>/<split>/<model>/<dataset>-<split>-<model>-
 * <YYYYMMDD_HHMMSS>.json, legacy result.json, demo runs, older runs, null
 * scores, a leftover .tmp), imported with the CLI and checked query by
 * query; the per-model accuracy that routesim reports equals the mean score
 * computed here from the kept JSON files as baselines/data_loader.py reads
 * them; malformed trees get one line and leave no trace. */
#include <cJSON.h>
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/test_util.h"
#include "workloads/trace/trace.h"

/* One file of the tree. Scores and costs are written as Python's json
 * writes floats (repr) or null. kept: what the loader keeps (by hand: the
 * newest non-demo file of each (dataset_name, split, model_name), by the
 * name's timestamp, a legacy result.json by its modification time, which
 * as whole seconds since 1970 is below every YYYYMMDDHHMMSS). */
typedef struct run_file {
    const char *dataset, *split, *model;
    const char *stamp; /* NULL: a legacy result.json */
    int demo, count;   /* records have indices 1 .. count */
    const char *scores[4], *costs[4];
    int kept;
} run_file;

static const run_file tree[] = {
    {"aime", "test", "gpt-4o-mini", "20250102_090000", 0, 4, {"1.0", "0.0", "1.0", "null"}, {"0.0003", "0.00025", "1.5e-05", "0.0"}, 1},
    {"aime", "test", "gpt-4o-mini", "20241231_235959", 0, 4, {"1.0", "1.0", "1.0", "1.0"}, {"0.1", "0.1", "0.1", "0.1"}, 0},
    {"aime", "test", "gpt-4o-mini", "20250301_000000", 1, 2, {"0.0", "0.0"}, {"0.2", "0.2"}, 0},
    {"aime", "test", "claude-3.5", "20250105_101010", 0, 3, {"1.0", "1.0", "0.5"}, {"0.002", "0.0021", "0.003"}, 1},
    {"aime", "test", "qwen3-8b", NULL, 0, 4, {"0.0", "0.0", "0.0", "0.0"}, {"0.0", "0.0", "0.0", "0.0"}, 0},
    {"aime", "test", "qwen3-8b", "20250104_000000", 0, 4, {"0.0", "1.0", "null", "0.25"}, {"1e-05", "2e-05", "0.0", "3e-05"}, 1},
    {"medqa", "test", "gpt-4o-mini", "20250110_120000", 0, 3, {"1.0", "1.0", "0.0"}, {"0.001", "0.001", "0.001"}, 1},
    {"medqa", "test", "claude-3.5", "20250110_130000", 0, 3, {"0.0", "1.0", "1.0"}, {"0.01", "0.02", "0.03"}, 1},
    {"medqa", "valid", "qwen3-8b", NULL, 0, 2, {"1.0", "null"}, {"0.0004", "0.0005"}, 1},
    {"medqa", "valid", "claude-3.5", "20250111_000000", 0, 2, {"0.75", "1.0"}, {"0.5", "0.25"}, 1},
};
enum { NUM_FILES = sizeof tree / sizeof tree[0], Q = 4 + 3 + 2, M = 3 };
static const char *const models[M] = {"claude-3.5", "gpt-4o-mini", "qwen3-8b"}; /* name order */

static void make_dirs(const char *path)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *c = buf + 1; *c; c++)
        if (*c == '/') {
            *c = '\0';
            mkdir(buf, 0755);
            *c = '/';
        }
}

static void file_path(const char *root, const run_file *r, char *out, size_t size)
{
    if (r->stamp)
        snprintf(out, size, "%s/%s/%s/%s/%s-%s-%s-%s.json", root, r->dataset, r->split, r->model, r->dataset, r->split,
                 r->model, r->stamp);
    else
        snprintf(out, size, "%s/%s/%s/%s/result.json", root, r->dataset, r->split, r->model);
}

/* The file as save_result's json.dump(result_dict, f, indent=2, ensure_ascii=False) writes it. */
static void write_run(const char *root, const run_file *r)
{
    char path[1024];
    file_path(root, r, path, sizeof path);
    make_dirs(path);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "{\n  \"performance\": 0.5,\n  \"time_taken\": 12.25,\n  \"prompt_tokens\": %d,\n"
               "  \"completion_tokens\": %d,\n  \"cost\": 0.0123,\n  \"counts\": %d,\n  \"model_name\": \"%s\",\n"
               "  \"dataset_name\": \"%s\",\n  \"split\": \"%s\",\n  \"demo\": %s,\n  \"extra_metrics\": {},\n"
               "  \"data_fingerprint\": \"9f2c\",\n  \"records\": [\n",
            12 * r->count, 40 * r->count, r->count, r->model, r->dataset, r->split, r->demo ? "true" : "false");
    for (int i = 0; i < r->count; i++)
        fprintf(f, "    {\n      \"index\": %d,\n      \"origin_query\": \"Combien font %d + %d ?\",\n"
                   "      \"prompt\": \"Réponds: \\\"%d\\\"\\nAnswer:\",\n      \"prompt_tokens\": 12,\n"
                   "      \"completion_tokens\": 40,\n      \"cost\": %s,\n      \"score\": %s,\n"
                   "      \"prediction\": \"%d\",\n      \"ground_truth\": \"%d\",\n"
                   "      \"raw_output\": \"The answer is\\n\\\\boxed{%d}\",\n      \"extra_fields\": {}\n    }%s\n",
                i + 1, i, i, i, r->costs[i], r->scores[i], 2 * i, 2 * i, 2 * i, i + 1 < r->count ? "," : "");
    fprintf(f, "  ]\n}");
    fclose(f);
}

static const char *write_tree(const char *name)
{
    static char root[1024];
    snprintf(root, sizeof root, "%s/%s/results/bench", rs_test_dir(), name);
    for (int i = 0; i < NUM_FILES; i++)
        write_run(root, &tree[i]);
    /* save_result's temporary file, left by a run that died before the rename */
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s/aime/test/qwen3-8b/aime-test-qwen3-8b-20250401_000000.tmp", root);
    FILE *f = fopen(tmp, "w");
    ck_assert_ptr_nonnull(f);
    fputs("{\n  \"performance\": 0.", f);
    fclose(f);
    return root;
}

static int model_index(const char *name)
{
    for (int m = 0; m < M; m++)
        if (strcmp(models[m], name) == 0)
            return m;
    ck_abort_msg("no model %s", name);
    return -1;
}

/* The query of (dataset, split, index) in (dataset, split, index) order. */
static int query_index(const char *dataset, const char *split, int index)
{
    if (strcmp(dataset, "aime") == 0)
        return index - 1;
    return strcmp(split, "test") == 0 ? 4 + index - 1 : 7 + index - 1;
}

/* What the trace must hold, from the table: NaN where a model has no record. */
static void expected_outcomes(float quality[Q][M], float cost[Q][M])
{
    for (int q = 0; q < Q; q++)
        for (int m = 0; m < M; m++)
            quality[q][m] = NAN, cost[q][m] = 0.0f;
    for (int i = 0; i < NUM_FILES; i++) {
        const run_file *r = &tree[i];
        if (!r->kept)
            continue;
        for (int j = 0; j < r->count; j++) {
            int q = query_index(r->dataset, r->split, j + 1), m = model_index(r->model);
            quality[q][m] = strcmp(r->scores[j], "null") == 0 ? 0.0f : (float)strtod(r->scores[j], NULL);
            cost[q][m] = (float)strtod(r->costs[j], NULL);
        }
    }
}

/* Per model the mean score over its records in the kept files, read back
 * from the JSON files themselves, a null score counting 0 as in
 * baselines/data_loader.py (score if not None else 0.0). */
static void loader_accuracy(const char *root, double mean[M])
{
    double sum[M] = {0};
    int n[M] = {0};
    for (int i = 0; i < NUM_FILES; i++) {
        if (!tree[i].kept)
            continue;
        char path[1024];
        file_path(root, &tree[i], path, sizeof path);
        char *text = rs_test_read_file(path);
        cJSON *doc = cJSON_Parse(text);
        ck_assert_ptr_nonnull(doc);
        int m = model_index(cJSON_GetObjectItem(doc, "model_name")->valuestring);
        const cJSON *rec;
        cJSON_ArrayForEach(rec, cJSON_GetObjectItem(doc, "records"))
        {
            const cJSON *score = cJSON_GetObjectItem(rec, "score");
            sum[m] += cJSON_IsNumber(score) ? score->valuedouble : 0.0;
            n[m]++;
        }
        cJSON_Delete(doc);
        free(text);
    }
    for (int m = 0; m < M; m++)
        mean[m] = sum[m] / n[m];
}

/* outcome.model_quality of `routesim route OUT --router oracle` per model. */
static void routed_accuracy(const char *trace, double got[M])
{
    char args[4096], csv[1024];
    snprintf(csv, sizeof csv, "%s", rs_test_path("lrb-route.csv"));
    snprintf(args, sizeof args, "route '%s' --router oracle --metrics outcome.model_quality --csv '%s' --force", trace,
             csv);
    ck_assert_int_eq(rs_test_run_cli(args, NULL, NULL), 0);
    char *text = rs_test_read_file(csv);
    ck_assert_ptr_nonnull(text);
    for (int m = 0; m < M; m++) {
        char key[64];
        snprintf(key, sizeof key, ",model=%s,all,", models[m]);
        const char *at = strstr(text, key);
        ck_assert_msg(at, "%s not in %s", key, text);
        got[m] = strtod(at + strlen(key), NULL);
    }
    free(text);
}

START_TEST(results_tree_query_by_query)
{
    char root[1024], out[1024], args[4096], *err = NULL;
    snprintf(root, sizeof root, "%s", write_tree("ok"));
    snprintf(out, sizeof out, "%s", rs_test_path("lrb.h5"));
    snprintf(args, sizeof args, "import llmrouterbench '%s' -o '%s'", root, out);
    ck_assert_int_eq(rs_test_run_cli(args, NULL, &err), 0);
    ck_assert_msg(strstr(err, "routesim: imported 21 rows from") && strstr(err, "(llmrouterbench): 9 queries, 3 models, "
                                                                                "2 domains"),
                  "%s", err);
    ck_assert_msg(strstr(err, "routesim: note: 10 *.json files"), "%s", err);
    free(err);

    rs_error e = {{0}};
    rs_trace *tr = NULL;
    ck_assert_msg(rs_trace_open(&tr, out, &e) == 0, "%s", e.msg);
    const rs_trace_info *info = rs_trace_get_info(tr);
    ck_assert_str_eq(info->unit, "query");
    ck_assert_int_eq(info->num_tokens, Q);
    ck_assert_int_eq(info->num_sequences, Q); /* every query its own sequence */
    ck_assert_int_eq(info->num_experts, M);
    ck_assert(info->has_quality && info->has_cost && info->has_domain);
    ck_assert_int_eq(rs_trace_cost_per_query(tr), 1);
    for (int m = 0; m < M; m++)
        ck_assert_str_eq(info->expert_names[m], models[m]);
    ck_assert_int_eq(rs_trace_domain_name_count(tr), 2);
    ck_assert_str_eq(rs_trace_domain_name(tr, 0), "aime");
    ck_assert_str_eq(rs_trace_domain_name(tr, 1), "medqa");
    float quality[Q][M], cost[Q][M], want_q[Q][M], want_c[Q][M];
    int32_t domain[Q];
    ck_assert_int_eq(rs_trace_read_outcome(tr, 0, Q, &quality[0][0], &cost[0][0], &e), 0);
    ck_assert_int_eq(rs_trace_read_domain(tr, 0, Q, domain, &e), 0);
    const char *notes = rs_trace_import_notes(tr);
    ck_assert_msg(strstr(notes, "10 *.json files (data_collector/storage.py save_result): kept the newest non-demo "
                                "file per (dataset_name, split, model_name)") &&
                      strstr(notes, "7 kept, 1 demo runs and 2 older runs left out"),
                  "%s", notes);
    ck_assert_msg(strstr(notes, "a null or missing score is read as 0, as the loader does (3 of 21 records)"), "%s",
                  notes);
    ck_assert_msg(strstr(notes, "dataset medqa has 2 splits (test, valid): their queries are separate"), "%s", notes);
    ck_assert_msg(strstr(notes, "6 (query, model) pairs have no record"), "%s", notes);
    rs_trace_close(tr);
    expected_outcomes(want_q, want_c);
    for (int q = 0; q < Q; q++) {
        ck_assert_int_eq(domain[q], q < 4 ? 0 : 1);
        for (int m = 0; m < M; m++) {
            ck_assert_msg(isnan(want_q[q][m]) ? isnan(quality[q][m]) : quality[q][m] == want_q[q][m],
                          "query %d model %s: quality %g, expected %g", q, models[m], quality[q][m], want_q[q][m]);
            ck_assert_msg(cost[q][m] == want_c[q][m], "query %d model %s: cost %g, expected %g", q, models[m],
                          cost[q][m], want_c[q][m]);
        }
    }

    /* per-model accuracy: what routesim reports equals the loader's mean score */
    double loader[M], routed[M];
    loader_accuracy(root, loader);
    routed_accuracy(out, routed);
    for (int m = 0; m < M; m++)
        ck_assert_msg(fabs(loader[m] - routed[m]) < 1e-9, "%s: routesim %.12g, the files %.12g", models[m], routed[m],
                      loader[m]);
    /* a fixed-model router answers with that model's mean on the queries it has */
    char *o = NULL;
    snprintf(args, sizeof args, "route '%s' --router fixed:model=claude-3.5 --metrics outcome.quality,outcome.queries",
             out);
    ck_assert_int_eq(rs_test_run_cli(args, &o, NULL), 0);
    char want[64];
    snprintf(want, sizeof want, "%.4f", loader[0]);
    ck_assert_msg(strstr(o, want) && strstr(o, "outcome.queries"), "%s not in %s", want, o);
    free(o);

    snprintf(args, sizeof args, "info '%s'", out);
    ck_assert_int_eq(rs_test_run_cli(args, &o, NULL), 0);
    ck_assert_msg(strstr(o, "imported   quality = score; a null or missing score is read as 0"), "%s", o);
    free(o);
}
END_TEST

/* A config's import recipe names the directory as its input. */
START_TEST(config_recipe_imports_the_tree)
{
    char root[1024], config[1024], trace[1024], results[1024], json[4096], args[4096], *out = NULL;
    snprintf(root, sizeof root, "%s", write_tree("recipe"));
    snprintf(config, sizeof config, "%s", rs_test_path("lrb-recipe.json"));
    snprintf(trace, sizeof trace, "%s", rs_test_path("recipe/lrb.h5"));
    snprintf(results, sizeof results, "%s", rs_test_path("recipe-results"));
    snprintf(json, sizeof json,
             "{\"traces\": [{\"path\": \"%s\", \"import\": {\"format\": \"llmrouterbench\", \"input\": \"%s\"}}], "
             "\"routers\": [\"fixed:model=qwen3-8b\"], \"metrics\": [\"outcome\"]}",
             trace, root);
    FILE *f = fopen(config, "w");
    ck_assert_ptr_nonnull(f);
    fputs(json, f);
    fclose(f);
    snprintf(args, sizeof args, "run '%s' --output '%s'", config, results);
    ck_assert_int_eq(rs_test_run_cli(args, &out, NULL), 0);
    ck_assert_msg(rs_test_file_exists(trace), "no %s", trace);
    ck_assert_msg(strstr(out, "0.3750"), "%s", out); /* qwen3-8b: (0 + 1 + 0 + 0.25 + 1 + 0) / 6 */
    free(out);
}
END_TEST

static void write_file(const char *path, const char *text)
{
    make_dirs(path);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

#define RECORD(index, score, cost)                                                                                     \
    "    {\n      \"index\": " index ",\n      \"origin_query\": \"q\",\n      \"prompt\": \"p\",\n"                     \
    "      \"prompt_tokens\": 3,\n      \"completion_tokens\": 4,\n      \"cost\": " cost ",\n"                          \
    "      \"score\": " score ",\n      \"prediction\": \"A\",\n      \"ground_truth\": \"B\",\n"                         \
    "      \"raw_output\": \"A\",\n      \"extra_fields\": {}\n    }"
#define HEAD(demo)                                                                                                     \
    "{\n  \"performance\": 0.5,\n  \"time_taken\": 1.0,\n  \"prompt_tokens\": 3,\n  \"completion_tokens\": 4,\n"       \
    "  \"cost\": 0.1,\n  \"counts\": 2,\n  \"model_name\": \"m\",\n  \"dataset_name\": \"d\",\n  \"split\": \"test\",\n" \
    "  \"demo\": " demo ",\n  \"extra_metrics\": {},\n  \"data_fingerprint\": \"\",\n  \"records\": [\n"

/* One line naming the file, the record and the field; no trace left. */
START_TEST(malformed_trees_are_refused)
{
    static const struct {
        const char *json, *message;
    } cases[] = {
        {HEAD("false") RECORD("1", "1.0", "0.1") ",\n    {\n      \"index\": 2,\n      \"origin_q",
         "d-test-m-20250101_000000.json: malformed JSON at line 30, column 8 (the file ends early: truncated?)"},
        {HEAD("false") RECORD("1", "1.0", "0.1") ",\n    {\"score\": 1.0, \"cost\": 0.1}\n  ]\n}",
         "d-test-m-20250101_000000.json: records[1]: index: missing"},
        {HEAD("false") RECORD("1", "\"high\"", "0.1") "\n  ]\n}",
         "d-test-m-20250101_000000.json: records[0]: score: expected a number or null, got a string 'high'"},
        {HEAD("false") RECORD("1", "NaN", "0.1") "\n  ]\n}",
         "malformed JSON at line 22, column 16 (NaN / Infinity: Python writes them for a float that is not finite)"},
        {HEAD("false") RECORD("1", "1.5", "0.1") "\n  ]\n}",
         "records[0]: score: 1.5 is outside [0, 1] (--max-quality sets the top of a graded score)"},
        {HEAD("false") RECORD("-1", "1.0", "0.1") "\n  ]\n}", "records[0]: index: -1 is outside [0, 2^53]"},
        {HEAD("false") RECORD("2.5", "1.0", "0.1") "\n  ]\n}", "records[0]: index: expected an integer, got a fraction"},
        {HEAD("false") RECORD("1", "1.0", "0.1") ",\n" RECORD("1", "0.0", "0.1") "\n  ]\n}",
         "records[1]: index 1 is given twice (records[0])"},
        {HEAD("false") RECORD("1", "1.0", "-0.1") "\n  ]\n}",
         "records[0]: cost: -0.1 is not a cost (a finite number >= 0, USD)"},
        {"{\n  \"model_name\": \"m\",\n  \"split\": \"test\",\n  \"records\": []\n}", "dataset_name: missing"},
        {"{\n  \"dataset_name\": \"d\",\n  \"model_name\": \"m\",\n  \"split\": \"test\"\n}", "records: missing"},
        {"[1, 2]", "expected a JSON object (a save_result file), got an array"},
        {HEAD("false") RECORD("1", "1.0", "0.1") "\n  ],\n  \"split\": \"valid\"\n}", "split: key given twice"},
        {HEAD("true") RECORD("1", "1.0", "0.1") "\n  ]\n}",
         "all 1 *.json files are demo runs (\"demo\": true), which the loader leaves out"},
    };
    char out[512];
    snprintf(out, sizeof out, "%s", rs_test_path("bad-lrb.h5"));
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char dir[512], path[1024], args[2048], *err = NULL;
        snprintf(dir, sizeof dir, "%s/bad%zu", rs_test_dir(), i);
        snprintf(path, sizeof path, "%s/d/test/m/d-test-m-20250101_000000.json", dir);
        write_file(path, cases[i].json);
        snprintf(args, sizeof args, "import llmrouterbench '%s' -o '%s'", dir, out);
        int rc = rs_test_run_cli(args, NULL, &err);
        ck_assert_msg(rc == 1, "case %zu: exit %d: %s", i, rc, err);
        ck_assert_msg(strstr(err, cases[i].message), "case %zu: '%s' not in: %s", i, cases[i].message, err);
        ck_assert_msg(strchr(err, '\n') == err + strlen(err) - 1, "case %zu: not one line: %s", i, err);
        ck_assert_msg(!rs_test_file_exists(out), "case %zu left %s", i, out);
        free(err);
    }
    /* no results at all, a file for a directory, a directory that is not there */
    char empty[512], file[512], args[2048], *err = NULL;
    snprintf(empty, sizeof empty, "%s/empty-results/bench", rs_test_dir());
    write_file(rs_test_path("empty-results/bench/README.md"), "results go here\n");
    snprintf(file, sizeof file, "%s", rs_test_path("empty-results/bench/README.md"));
    const char *dirs[] = {empty, file, "/nonexistent/results/bench"};
    const char *messages[] = {"no *.json files (the results directory of LLMRouterBench, results/bench)",
                              "README.md: not a directory, expected LLMRouterBench's results directory",
                              "/nonexistent/results/bench: no such directory"};
    for (int i = 0; i < 3; i++) {
        snprintf(args, sizeof args, "import llmrouterbench '%s' -o '%s'", dirs[i], out);
        ck_assert_int_eq(rs_test_run_cli(args, NULL, &err), 1);
        ck_assert_msg(strstr(err, messages[i]), "'%s' not in: %s", messages[i], err);
        ck_assert_msg(strchr(err, '\n') == err + strlen(err) - 1, "not one line: %s", err);
        ck_assert(!rs_test_file_exists(out));
        free(err);
    }
}
END_TEST

Suite *import_llmrouterbench_suite(void)
{
    Suite *s = suite_create("import_llmrouterbench");
    TCase *tc = tcase_create("import_llmrouterbench");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, results_tree_query_by_query);
    tcase_add_test(tc, malformed_trees_are_refused);
    tcase_add_test(tc, config_recipe_imports_the_tree);
    suite_add_tcase(s, tc);
    return s;
}
