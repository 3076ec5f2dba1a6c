/* routesim import routerarena: a RouterArena prediction file and its
 * model_cost.json, written byte for byte as RouterArena writes them
 * (router_inference/generate_prediction_file.py and llm_evaluation/run.py:
 * json.dump(predictions, f, ensure_ascii=False, indent=2); the prices as in
 * model_cost/cost.json), imported with the binary and checked query by
 * query; the recorded router replayed and scored; malformed inputs refused
 * with one line and no output. */
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "tests/query/check_query.h"
#include "tests/test_util.h"
#include "workloads/trace/trace.h"

/* Five records as llm_evaluation/run.py leaves them: cost = input_tokens /
 * 1e6 * input price + output_tokens / 1e6 * output price (Python's floats,
 * repr as json.dump writes them: 8.000000000000001e-06); accuracy an int
 * (1), a float (0.0, 1.0) or a graded score (0.4375); a failed call
 * (success false) with cost and accuracy null; a global index whose
 * dataset part holds '_' after the first one (WMT19_cs-en_2); brackets,
 * braces, commas, escaped quotes and backslashes and UTF-8 inside strings;
 * no newline at the end. The router predicted gpt-4o-mini, gemini and
 * claude (in that order of first use); mistral-medium is priced but never
 * chosen. */
static const char predictions_json[] =
    "[\n"
    "  {\n"
    "    \"global index\": \"AIME_112\",\n"
    "    \"prompt\": \"Find x. Reply as \\\\boxed{x}, e.g. [1, 2] or {\\\"a\\\": 1}.\",\n"
    "    \"prediction\": \"gpt-4o-mini\",\n"
    "    \"generated_result\": {\n"
    "      \"generated_answer\": \"So x = 42.\\n\\\\boxed{42}\",\n"
    "      \"success\": true,\n"
    "      \"token_usage\": {\n"
    "        \"input_tokens\": 120,\n"
    "        \"output_tokens\": 800,\n"
    "        \"total_tokens\": 920\n"
    "      },\n"
    "      \"provider\": \"openai\",\n"
    "      \"error\": null\n"
    "    },\n"
    "    \"cost\": 0.000498,\n"
    "    \"accuracy\": 1\n"
    "  },\n"
    "  {\n"
    "    \"global index\": \"MMLU_3\",\n"
    "    \"prompt\": \"Quelle est la capitale ? (\303\251, \303\274, \344\270\255\346\226\207)\",\n"
    "    \"prediction\": \"gemini-2.0-flash-001\",\n"
    "    \"generated_result\": {\n"
    "      \"generated_answer\": \"B\",\n"
    "      \"success\": true,\n"
    "      \"token_usage\": {\n"
    "        \"input_tokens\": 60,\n"
    "        \"output_tokens\": 5,\n"
    "        \"total_tokens\": 65\n"
    "      },\n"
    "      \"provider\": \"openai\",\n"
    "      \"error\": null\n"
    "    },\n"
    "    \"cost\": 8.000000000000001e-06,\n"
    "    \"accuracy\": 0.0\n"
    "  },\n"
    "  {\n"
    "    \"global index\": \"MMLU_7\",\n"
    "    \"prompt\": \"Which, of these, is \\\"true\\\"?\",\n"
    "    \"prediction\": \"gpt-4o-mini\",\n"
    "    \"generated_result\": {\n"
    "      \"generated_answer\": \"A\",\n"
    "      \"success\": true,\n"
    "      \"token_usage\": {\n"
    "        \"input_tokens\": 70,\n"
    "        \"output_tokens\": 4,\n"
    "        \"total_tokens\": 74\n"
    "      },\n"
    "      \"provider\": \"openai\",\n"
    "      \"error\": null\n"
    "    },\n"
    "    \"cost\": 1.2899999999999998e-05,\n"
    "    \"accuracy\": 1.0\n"
    "  },\n"
    "  {\n"
    "    \"global index\": \"ArcMMLU_1\",\n"
    "    \"prompt\": \"A question whose call failed\",\n"
    "    \"prediction\": \"claude-3-haiku-20240307\",\n"
    "    \"generated_result\": {\n"
    "      \"generated_answer\": \"\",\n"
    "      \"success\": false,\n"
    "      \"token_usage\": {\n"
    "        \"input_tokens\": 0,\n"
    "        \"output_tokens\": 0,\n"
    "        \"total_tokens\": 0\n"
    "      },\n"
    "      \"provider\": \"unknown\",\n"
    "      \"error\": \"Request timed out ]}\"\n"
    "    },\n"
    "    \"cost\": null,\n"
    "    \"accuracy\": null\n"
    "  },\n"
    "  {\n"
    "    \"global index\": \"WMT19_cs-en_2\",\n"
    "    \"prompt\": \"Translate: Dobr\303\275 den\",\n"
    "    \"prediction\": \"gemini-2.0-flash-001\",\n"
    "    \"generated_result\": {\n"
    "      \"generated_answer\": \"Good day\",\n"
    "      \"success\": true,\n"
    "      \"token_usage\": {\n"
    "        \"input_tokens\": 30,\n"
    "        \"output_tokens\": 40,\n"
    "        \"total_tokens\": 70\n"
    "      },\n"
    "      \"provider\": \"openai\",\n"
    "      \"error\": null\n"
    "    },\n"
    "    \"cost\": 1.9e-05,\n"
    "    \"accuracy\": 0.4375\n"
    "  }\n"
    "]";

/* RouterArena's model_cost/cost.json layout (four of its entries). */
static const char model_cost_json[] =
    "{\n"
    "  \"gpt-4o-mini\": {\n"
    "    \"input_token_price_per_million\": 0.15,\n"
    "    \"output_token_price_per_million\": 0.6\n"
    "  },\n"
    "  \"claude-3-haiku-20240307\": {\n"
    "    \"input_token_price_per_million\": 0.25,\n"
    "    \"output_token_price_per_million\": 1.25\n"
    "  },\n"
    "  \"gemini-2.0-flash-001\": {\n"
    "    \"input_token_price_per_million\": 0.1,\n"
    "    \"output_token_price_per_million\": 0.4\n"
    "  },\n"
    "  \"mistral-medium\": {\n"
    "    \"input_token_price_per_million\": 0.4,\n"
    "    \"output_token_price_per_million\": 2.0\n"
    "  }\n"
    "}";

/* ---- helpers ------------------------------------------------------------ */

static const char *write_text(const char *name, const char *text, size_t len)
{
    const char *path = rs_test_path(name);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(text, 1, len, f), len);
    fclose(f);
    return path;
}

/* text with the first occurrence of old replaced by new (caller frees). */
static char *replaced(const char *text, const char *old, const char *new_text)
{
    const char *at = strstr(text, old);
    ck_assert_msg(at != NULL, "'%s' is not in the text", old);
    size_t head = (size_t)(at - text), old_len = strlen(old), new_len = strlen(new_text);
    char *out = malloc(strlen(text) - old_len + new_len + 1);
    ck_assert_ptr_nonnull(out);
    memcpy(out, text, head);
    memcpy(out + head, new_text, new_len);
    strcpy(out + head + new_len, at + old_len);
    return out;
}

/* `routesim import routerarena ARGS`; returns the exit status, stderr in *err_text (caller frees). */
static int import_cli(const char *args, char **err_text)
{
    char command[4096], *out = NULL;
    snprintf(command, sizeof command, "import routerarena %s", args);
    int rc = rs_test_run_cli(command, &out, err_text);
    free(out);
    return rc;
}

/* Imports the two files written as RouterArena writes them into NAME.h5. */
static const char *import_reference(const char *name, const char *extra)
{
    const char *preds = strdup(write_text("my-router.json", predictions_json, strlen(predictions_json)));
    const char *costs = strdup(write_text("model_cost.json", model_cost_json, strlen(model_cost_json)));
    static char out[1024];
    snprintf(out, sizeof out, "%s", rs_test_path(name));
    char args[3072], *err = NULL;
    snprintf(args, sizeof args, "'%s' --costs '%s' -o '%s' %s", preds, costs, out, extra ? extra : "");
    int rc = import_cli(args, &err);
    ck_assert_msg(rc == 0, "import failed: %s", err ? err : "");
    free(err);
    free((char *)preds);
    free((char *)costs);
    return out;
}

enum { T = 5 };

/* ---- the import, query by query --------------------------------------------- */

START_TEST(imports_each_record_as_a_query)
{
    const char *preds = strdup(write_text("my-router.json", predictions_json, strlen(predictions_json)));
    const char *costs = strdup(write_text("model_cost.json", model_cost_json, strlen(model_cost_json)));
    const char *out = strdup(rs_test_path("arena.h5"));
    char args[3072], *err_text = NULL;
    snprintf(args, sizeof args, "'%s' --costs '%s' -o '%s'", preds, costs, out);
    ck_assert_msg(import_cli(args, &err_text) == 0, "%s", err_text ? err_text : "");
    /* the report: RouterArena's own aggregates (run.py compute_router_metrics):
     * A = (1 + 0 + 1 + 0.4375) / 4; c = 1000 * 0.0005379 / 5 records */
    ck_assert_msg(strstr(err_text, "imported 5 predictions") && strstr(err_text, "3 models, 4 domains; 4 evaluated")
                      && strstr(err_text, "mean accuracy 0.609375") &&
                      strstr(err_text, "cost per 1,000 queries 0.107580 USD"),
                  "%s", err_text);
    ck_assert_msg(strstr(err_text, "routesim: note: 1 of 5 records have no accuracy"), "%s", err_text);
    free(err_text);

    rs_trace *tr = NULL;
    rs_error err = {{0}};
    ck_assert_msg(rs_trace_open(&tr, out, &err) == 0, "%s", err.msg);
    const rs_trace_info *info = rs_trace_get_info(tr);
    ck_assert_str_eq(info->unit, "query");
    ck_assert_int_eq(info->num_tokens, T);
    ck_assert_int_eq(info->num_sequences, T); /* every query its own sequence */
    ck_assert_int_eq(info->num_layers, 1);
    ck_assert_int_eq(info->num_experts, 3);
    ck_assert_int_eq(info->recorded_k, 1);
    ck_assert(info->has_quality && info->has_cost && !info->has_logits);
    ck_assert_int_eq(rs_trace_cost_per_query(tr), 1);
    ck_assert_int_eq(info->num_unscored, 1); /* the failed call */
    /* the predicted models in the order of model_cost.json (not of first use) */
    ck_assert_str_eq(info->expert_names[0], "gpt-4o-mini");
    ck_assert_str_eq(info->expert_names[1], "claude-3-haiku-20240307");
    ck_assert_str_eq(info->expert_names[2], "gemini-2.0-flash-001");
    ck_assert_str_eq(rs_trace_source(tr), "routesim import routerarena my-router.json --costs model_cost.json");
    const char *notes = rs_trace_import_notes(tr);
    ck_assert_msg(strstr(notes, "is /router/topk_ids: replay reproduces") &&
                      strstr(notes, "the other 2 model(s) of each query have quality NaN") &&
                      strstr(notes, "1 of 5 records have no accuracy") &&
                      strstr(notes, "1 model(s) of model_cost.json are never predicted") &&
                      !strstr(notes, "differ from token_usage"),
                  "%s", notes);

    int64_t offsets[T + 1];
    ck_assert_int_eq(rs_trace_read_offsets(tr, 0, T + 1, offsets, &err), 0);
    for (int t = 0; t <= T; t++)
        ck_assert_int_eq(offsets[t], t);
    /* domains: the global index up to its first '_' */
    int32_t domain[T];
    ck_assert_int_eq(rs_trace_read_domain(tr, 0, T, domain, &err), 0);
    static const int32_t want_domain[T] = {0, 1, 1, 2, 3};
    static const char *const domain_names[] = {"AIME", "MMLU", "ArcMMLU", "WMT19"};
    ck_assert_int_eq(rs_trace_domain_name_count(tr), 4);
    for (int t = 0; t < T; t++)
        ck_assert_int_eq(domain[t], want_domain[t]);
    for (int d = 0; d < 4; d++)
        ck_assert_str_eq(rs_trace_domain_name(tr, d), domain_names[d]);

    /* the router's choices */
    int32_t ids[T];
    ck_assert_msg(rs_trace_read_topk(tr, 0, T, ids, NULL, &err) == 0, "%s", err.msg);
    static const int32_t want_ids[T] = {0, 2, 0, 1, 2};
    for (int t = 0; t < T; t++)
        ck_assert_msg(ids[t] == want_ids[t], "query %d: chose %d, recorded %d", t, ids[t], want_ids[t]);

    /* quality and cost: the chosen model's accuracy and cost, the others not evaluated (NaN, cost 0) */
    float quality[T * 3], cost[T * 3];
    ck_assert_msg(rs_trace_read_outcome(tr, 0, T, quality, cost, &err) == 0, "%s", err.msg);
    static const double want_quality[T] = {1, 0, 1, NAN, 0.4375};
    static const double want_cost[T] = {0.000498, 8.000000000000001e-06, 1.2899999999999998e-05, 0, 1.9e-05};
    for (int t = 0; t < T; t++)
        for (int e = 0; e < 3; e++) {
            float q = quality[t * 3 + e], c = cost[t * 3 + e];
            if (e == want_ids[t] && !isnan(want_quality[t])) {
                ck_assert_msg(q == (float)want_quality[t], "query %d model %d: quality %g", t, e, q);
                ck_assert_msg(c == (float)want_cost[t], "query %d model %d: cost %g", t, e, c);
            } else {
                ck_assert_msg(isnan(q), "query %d model %d: quality %g, wanted NaN (not evaluated)", t, e, q);
                ck_assert_msg(c == 0.0f, "query %d model %d: cost %g, wanted 0", t, e, c);
            }
        }
    rs_trace_close(tr);
    free((char *)preds);
    free((char *)costs);
    free((char *)out);
}
END_TEST

/* Replaying the recorded decisions scores the router as llm_evaluation/run.py
 * does: accuracy over the 4 evaluated records, cost over all 5. */
START_TEST(replay_gives_routerarena_score)
{
    const char *out = import_reference("replay.h5", NULL);
    const char *routers[] = {"replay", "fixed:model=claude-3-haiku-20240307"};
    rs_results res;
    query_measure(out, routers, 2, NULL, 1, 0, &res);
    ck_assert_double_eq(query_value(&res, 0, "outcome.queries", ""), 4);
    ck_assert_double_eq(query_value(&res, 0, "outcome.skipped", ""), 1);
    ck_assert_double_eq(query_value(&res, 0, "outcome.quality", ""), 0.609375);
    /* float32 costs: within 1e-7 relative of Python's sum 0.0005379 */
    ck_assert_double_eq_tol(query_value(&res, 0, "outcome.cost_total", ""), 0.0005379, 1e-10);
    ck_assert_double_eq(query_value(&res, 0, "outcome.share", "model=gpt-4o-mini"), 0.5);
    ck_assert_double_eq(query_value(&res, 0, "outcome.share", "model=gemini-2.0-flash-001"), 0.5);
    ck_assert_double_eq(query_value(&res, 0, "outcome.share", "model=claude-3-haiku-20240307"), 0);
    /* by hand: A = 0.609375, c = 1000 * 0.0005379 / 5 = 0.10758 USD per 1,000 queries,
     * C = (log2 200 - log2 0.10758) / (log2 200 - log2 0.0044) = 0.7429432...,
     * S = 1.1 A C / (0.1 A + C) = 0.6167683287 (RouterArena's compute_arena_score gives the same) */
    double A = 0.609375, c = 0.10758;
    double C = (log2(200) - log2(c)) / (log2(200) - log2(0.0044));
    double S = 1.1 * A * C / (0.1 * A + C);
    ck_assert_double_eq_tol(S, 0.6167683287041156, 1e-15);
    ck_assert_double_eq_tol(query_value(&res, 0, "outcome.arena_score", "arena_beta=0.1"), S, 1e-7);
    /* a router that always picks the model whose only query failed: nothing evaluated, no score */
    ck_assert_double_eq(query_value(&res, 1, "outcome.queries", ""), 0);
    ck_assert(isnan(query_value(&res, 1, "outcome.arena_score", "arena_beta=0.1")));
    rs_results_free(&res);
}
END_TEST

START_TEST(models_option_keeps_the_candidates)
{
    const char *out = import_reference(
        "listed.h5", "--models mistral-medium,gemini-2.0-flash-001,gpt-4o-mini,claude-3-haiku-20240307");
    rs_trace *tr = NULL;
    rs_error err = {{0}};
    ck_assert_msg(rs_trace_open(&tr, out, &err) == 0, "%s", err.msg);
    const rs_trace_info *info = rs_trace_get_info(tr);
    ck_assert_int_eq(info->num_experts, 4);
    ck_assert_str_eq(info->expert_names[0], "mistral-medium");
    ck_assert_str_eq(info->expert_names[3], "claude-3-haiku-20240307");
    int32_t ids[T];
    ck_assert_int_eq(rs_trace_read_topk(tr, 0, T, ids, NULL, &err), 0);
    static const int32_t want[T] = {2, 1, 2, 3, 1};
    for (int t = 0; t < T; t++)
        ck_assert_int_eq(ids[t], want[t]);
    float quality[T * 4];
    ck_assert_int_eq(rs_trace_read_outcome(tr, 0, T, quality, NULL, &err), 0);
    for (int t = 0; t < T; t++)
        ck_assert(isnan(quality[t * 4 + 0])); /* mistral-medium: never chosen, never evaluated */
    ck_assert(quality[4 * 4 + 1] == 0.4375f);
    ck_assert_msg(!strstr(rs_trace_import_notes(tr), "never predicted"), "%s", rs_trace_import_notes(tr));
    rs_trace_close(tr);
}
END_TEST

/* gzip and standard input, and a recorded cost that no longer matches the prices (kept, noted). */
START_TEST(gzip_stdin_and_changed_prices)
{
    char *changed = replaced(predictions_json, "\"cost\": 0.000498", "\"cost\": 0.0005");
    const char *gz_path = strdup(rs_test_path("changed.json.gz"));
    gzFile gz = gzopen(gz_path, "wb");
    ck_assert_ptr_nonnull(gz);
    ck_assert_int_eq(gzwrite(gz, changed, (unsigned)strlen(changed)), (int)strlen(changed));
    gzclose(gz);
    const char *costs = strdup(write_text("model_cost.json", model_cost_json, strlen(model_cost_json)));
    const char *out = strdup(rs_test_path("stdin.h5"));
    char args[3072], *err_text = NULL;
    snprintf(args, sizeof args, "- --costs '%s' -o '%s' < '%s'", costs, out, gz_path);
    ck_assert_msg(import_cli(args, &err_text) == 0, "%s", err_text ? err_text : "");
    free(err_text);
    rs_trace *tr = NULL;
    rs_error err = {{0}};
    ck_assert_msg(rs_trace_open(&tr, out, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(rs_trace_get_info(tr)->num_tokens, T);
    float cost[T * 3];
    ck_assert_int_eq(rs_trace_read_outcome(tr, 0, T, NULL, cost, &err), 0);
    ck_assert(cost[0] == 0.0005f); /* the recorded cost, not 120 / 1e6 * 0.15 + 800 / 1e6 * 0.6 */
    ck_assert_msg(strstr(rs_trace_import_notes(tr), "1 of 4 recorded costs differ from token_usage x the prices of "
                                                    "model_cost.json (the first: record 0)"),
                  "%s", rs_trace_import_notes(tr));
    rs_trace_close(tr);
    free(changed);
    free((char *)gz_path);
    free((char *)costs);
    free((char *)out);
}
END_TEST

/* ---- malformed input: one line, exit status 1, no trace ------------------------------ */

/* No file of the scratch directory starts with prefix (a trace or its temporary file). */
static void assert_no_file_like(const char *prefix)
{
    DIR *d = opendir(rs_test_dir());
    ck_assert_ptr_nonnull(d);
    for (struct dirent *e; (e = readdir(d));)
        ck_assert_msg(strncmp(e->d_name, prefix, strlen(prefix)) != 0, "%s left behind", e->d_name);
    closedir(d);
}

static void expect_refused(const char *predictions, size_t len, const char *costs, const char *extra,
                           const char *needle)
{
    const char *p = strdup(write_text("bad-router.json", predictions, len));
    const char *c = strdup(write_text("bad-cost.json", costs, strlen(costs)));
    char args[3072], *err_text = NULL;
    snprintf(args, sizeof args, "'%s' --costs '%s' -o '%s' %s", p, c, rs_test_path("bad.h5"), extra ? extra : "");
    int rc = import_cli(args, &err_text);
    ck_assert_msg(rc == 1, "exit status %d, wanted 1 for '%s' (stderr: %s)", rc, needle, err_text ? err_text : "");
    ck_assert_ptr_nonnull(err_text);
    ck_assert_msg(strncmp(err_text, "routesim: error: ", 17) == 0 && strchr(err_text, '\n') &&
                      strchr(err_text, '\n')[1] == '\0',
                  "not one error line: '%s'", err_text);
    ck_assert_msg(strstr(err_text, needle), "message '%s' lacks '%s'", err_text, needle);
    free(err_text);
    assert_no_file_like("bad.h5");
    free((char *)p);
    free((char *)c);
}

static void expect_refused_text(const char *predictions, const char *costs, const char *extra, const char *needle)
{
    expect_refused(predictions, strlen(predictions), costs, extra, needle);
}

START_TEST(truncated_and_malformed_json)
{
    const char *p = predictions_json;
    /* cut in the middle of record 2, and right after record 1 */
    expect_refused(p, (size_t)(strstr(p, "\"MMLU_7\"") - p), model_cost_json, NULL,
                   "truncated: record 2 (line 38) ends with the input, the array is never closed");
    expect_refused(p, (size_t)(strstr(p, "  {\n    \"global index\": \"MMLU_7\"") - p), model_cost_json, NULL,
                   "truncated: the input ends after record 1, the array is never closed");
    expect_refused(p, 1, model_cost_json, NULL, "truncated: the input ends before the array's first record");
    expect_refused(p, strlen(p) - 1, model_cost_json, NULL, "truncated: the input ends after record 4");
    expect_refused_text("", model_cost_json, NULL, "empty input, expected a JSON array");
    char *bad = replaced(p, "\"accuracy\": 1\n", "\"accuracy\": tru\n");
    expect_refused_text(bad, model_cost_json, NULL, "bad-router.json: record 0: malformed JSON at line 18, column 17");
    free(bad);
    bad = replaced(p, "\"accuracy\": 1\n", "\"accuracy\": 1,\n    \"accuracy\": 0\n");
    expect_refused_text(bad, model_cost_json, NULL, "record 0 (line 2): accuracy: key given twice in one object");
    free(bad);
    char after[sizeof predictions_json + 8];
    snprintf(after, sizeof after, "%s\n[]", p);
    expect_refused_text(after, model_cost_json, NULL, "line 93: unexpected text after the array");
    expect_refused_text("{\"global index\": \"AIME_1\"}", model_cost_json, NULL,
                        "line 1: expected a JSON array ('['), got '{'");
    expect_refused_text("[1]", model_cost_json, NULL, "record 0: expected an object");
    expect_refused_text("[{}, ]", model_cost_json, NULL, "record 0: global index: missing key");
    expect_refused_text("[\n  []\n  ]", model_cost_json, NULL, "record 0: expected an object");
    expect_refused_text("[]", model_cost_json, NULL, "no predictions (an empty list)");
}
END_TEST

START_TEST(missing_fields_and_bad_values)
{
    const char *p = predictions_json;
    struct {
        const char *old, *new_text, *needle;
    } cases[] = {
        {"\"cost\": 0.000498,\n    \"accuracy\": 1\n", "\"cost\": 0.000498\n",
         "record 0 (global index 'AIME_112'): accuracy: missing key"},
        {"\"cost\": 0.000498,\n", "", "record 0 (global index 'AIME_112'): cost: missing key"},
        {"\"prediction\": \"gpt-4o-mini\",\n", "", "record 0 (global index 'AIME_112'): prediction: missing key"},
        {"\"global index\": \"MMLU_3\",\n", "", "record 1: global index: missing key"},
        {"\"prediction\": \"gpt-4o-mini\"", "\"prediction\": 3",
         "record 0 (global index 'AIME_112'): prediction: expected a model name, got a number"},
        {"\"prediction\": \"gpt-4o-mini\"", "\"prediction\": \"\"", "prediction: expected a model name, got an empty"},
        {"\"global index\": \"AIME_112\"", "\"global index\": 112",
         "record 0: global index: expected a non-empty string"},
        /* the same query twice: its global index names one item of the benchmark */
        {"\"MMLU_7\"", "\"MMLU_3\"", "record 2 (global index 'MMLU_3'): global index: already given in record 1"},
        {"\"accuracy\": 0.4375", "\"accuracy\": 1.5",
         "record 4 (global index 'WMT19_cs-en_2'): accuracy: 1.5 is outside [0, 1]"},
        {"\"accuracy\": 0.4375", "\"accuracy\": \"0.4\"", "accuracy: expected a number or null, got a string"},
        {"\"cost\": 1.9e-05", "\"cost\": -1.9e-05",
         "record 4 (global index 'WMT19_cs-en_2'): cost: -1.9e-05 is negative"},
        {"\"cost\": 1.9e-05", "\"cost\": 1e999", "cost: expected a number or null, got one out of range"},
        {"\"cost\": null", "\"cost\": 0.001",
         "record 3 (global index 'ArcMMLU_1'): cost: 0.001 recorded without an accuracy"},
        /* a model without a price */
        {"\"prediction\": \"gpt-4o-mini\"", "\"prediction\": \"gpt-5\"",
         "record 0 (global index 'AIME_112'): prediction: model 'gpt-5' has no price in"},
        {"\"prediction\": \"gpt-4o-mini\"", "\"prediction\": \"gpt-4o\\nmini\"",
         "prediction: model 'gpt-4o?mini' has no price in"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *bad = replaced(p, cases[i].old, cases[i].new_text);
        expect_refused_text(bad, model_cost_json, NULL, cases[i].needle);
        free(bad);
    }
    /* a model without a price: model_cost.json lacks gemini */
    char *costs = replaced(model_cost_json, "gemini-2.0-flash-001", "gemini-2.5-pro");
    expect_refused_text(p, costs, NULL,
                        "record 1 (global index 'MMLU_3'): prediction: model 'gemini-2.0-flash-001' has no price in");
    free(costs);
    /* the router chose a model outside its candidates */
    expect_refused_text(p, model_cost_json, "--models gpt-4o-mini,claude-3-haiku-20240307",
                        "record 1 (global index 'MMLU_3'): prediction: model 'gemini-2.0-flash-001' is not one of "
                        "--models gpt-4o-mini,claude-3-haiku-20240307");
    expect_refused_text(p, model_cost_json, "--models gpt-4o-mini,gpt-5", "--models: model 'gpt-5' has no price in");
    expect_refused_text(p, model_cost_json, "--models gpt-4o-mini,gpt-4o-mini",
                        "--models: 'gpt-4o-mini' is listed twice");
}
END_TEST

START_TEST(bad_cost_files)
{
    const char *p = predictions_json;
    char *costs = replaced(model_cost_json, ",\n    \"output_token_price_per_million\": 0.6", "");
    expect_refused_text(p, costs, NULL, "bad-cost.json: gpt-4o-mini: output_token_price_per_million: missing");
    free(costs);
    costs = replaced(model_cost_json, "\"input_token_price_per_million\": 0.25",
                     "\"input_token_price_per_million\": -1");
    expect_refused_text(p, costs, NULL,
                        "claude-3-haiku-20240307: input_token_price_per_million: expected a price >= 0");
    free(costs);
    char cut[64];
    snprintf(cut, sizeof cut, "%.40s", model_cost_json);
    expect_refused_text(p, cut, NULL, "bad-cost.json: line 3: malformed JSON");
    expect_refused_text(p, "[]", NULL, "bad-cost.json: expected a JSON object");
    expect_refused_text(p, "{}", NULL, "bad-cost.json: no models priced");
    expect_refused_text(p, "{\"gpt-4o-mini\": 0.15}", NULL, "gpt-4o-mini: expected {");
    /* a missing cost file, and -o naming it */
    const char *c = strdup(write_text("keep-cost.json", model_cost_json, strlen(model_cost_json)));
    const char *q = strdup(write_text("keep-router.json", p, strlen(p)));
    char args[3072], *err_text = NULL;
    snprintf(args, sizeof args, "'%s' --costs /nonexistent/model_cost.json -o '%s'", q, rs_test_path("bad.h5"));
    ck_assert_int_eq(import_cli(args, &err_text), 1);
    ck_assert_msg(strstr(err_text, "/nonexistent/model_cost.json: cannot read (No such file or directory)"), "%s",
                  err_text);
    free(err_text);
    snprintf(args, sizeof args, "'%s' --costs '%s' -o '%s' --force", q, c, c);
    ck_assert_int_eq(import_cli(args, &err_text), 1);
    ck_assert_msg(strstr(err_text, "would overwrite the input"), "%s", err_text);
    free(err_text);
    char *kept = rs_test_read_file(c);
    ck_assert_str_eq(kept, model_cost_json); /* untouched */
    free(kept);
    /* --costs is required (a usage error) */
    snprintf(args, sizeof args, "'%s' -o '%s'", q, rs_test_path("bad.h5"));
    ck_assert_int_eq(import_cli(args, &err_text), 2);
    ck_assert_msg(strstr(err_text, "--costs"), "%s", err_text);
    free(err_text);
    assert_no_file_like("bad.h5");
    free((char *)c);
    free((char *)q);
}
END_TEST

Suite *import_routerarena_suite(void)
{
    Suite *s = suite_create("import_routerarena");
    TCase *tc = tcase_create("import_routerarena");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, imports_each_record_as_a_query);
    tcase_add_test(tc, replay_gives_routerarena_score);
    tcase_add_test(tc, models_option_keeps_the_candidates);
    tcase_add_test(tc, gzip_stdin_and_changed_prices);
    tcase_add_test(tc, truncated_and_malformed_json);
    tcase_add_test(tc, missing_fields_and_bad_values);
    tcase_add_test(tc, bad_cost_files);
    suite_add_tcase(s, tc);
    return s;
}
