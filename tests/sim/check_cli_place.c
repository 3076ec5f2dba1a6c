/* routesim place through the binary: a plan from a loads file, the same
 * plan from a trace routed by a router (its counted assignments), affinity
 * from the trace's counted transitions, search with its modelled time
 * beside eplb's, a placement file read back as file:PATH, and every bad
 * input: one line, a non-zero exit and no output file. */
#include <check.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metrics/placement/placement.h"
#include "metrics/placement/placement_json.h"
#include "tests/test_util.h"

static const char *write_text(const char *name, const char *text)
{
    const char *path = rs_test_path(name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/* The README example of deepseek-ai/EPLB as a CSV of layers x experts. */
static const char *readme_csv(void)
{
    return write_text("readme.csv", "90,132,40,61,104,165,39,4,73,56,183,86\n"
                                    "20,107,104,64,19,197,187,157,172,86,16,27\n");
}

#define README_LAYOUT "--replicas 4 --groups 4 --nodes 2 --devices 8"

/* No file of the output's name, nor a temporary one, in the test directory. */
static void expect_no_output(const char *name)
{
    ck_assert_msg(!rs_test_file_exists(rs_test_path(name)), "%s was written", name);
    DIR *d = opendir(rs_test_dir());
    ck_assert_ptr_nonnull(d);
    for (struct dirent *e; (e = readdir(d));)
        ck_assert_msg(strstr(e->d_name, ".tmp.") == NULL, "temporary file %s left", e->d_name);
    closedir(d);
}

static void expect_failure(const char *args, int code, const char *needle)
{
    char *out = NULL, *err = NULL;
    int rc = rs_test_run_cli(args, &out, &err);
    ck_assert_msg(rc == code, "exit %d (wanted %d) for %s; stderr: %s", rc, code, args, err);
    ck_assert_msg(err && strchr(err, '\n') == err + strlen(err) - 1, "stderr should be one line for %s, got: %s",
                  args, err);
    ck_assert_msg(strstr(err, needle) != NULL, "stderr '%s' lacks '%s'", err, needle);
    free(out);
    free(err);
    expect_no_output("out.json");
}

START_TEST(place_from_loads)
{
    char *out = NULL, *err = NULL;
    char dst[1024];
    snprintf(dst, sizeof dst, "%s", rs_test_path("plan.json"));
    int rc = rs_test_run_cli(rs_test_cmd("place --loads %s " README_LAYOUT " -o %s", readme_csv(), dst), &out, &err);
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_msg(strstr(out, "eplb: 2 layers x 16 slots (12 experts + 4 replicas) on 8 devices in 2 nodes"), "%s",
                  out);
    ck_assert_msg(strstr(out, "planned in"), "%s", out);
    free(out);
    free(err);
    char *text = rs_test_read_file(dst);
    ck_assert_msg(strstr(text, "[5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1]") &&
                      strstr(text, "[7, 10, 6, 8, 6, 11, 8, 9, 2, 4, 5, 1, 5, 0, 3, 1]"),
                  "not the README's phy2log: %s", text);
    ck_assert(strstr(text, "\"logical_count\"") && strstr(text, "\"devices\": 8") && strstr(text, "\"policy\": \"eplb\""));

    /* read back as file:PATH it is the same placement */
    char again[1024];
    snprintf(again, sizeof again, "%s", rs_test_path("again.json"));
    rc = rs_test_run_cli(rs_test_cmd("place --loads %s " README_LAYOUT " --policy file:%s -o %s", readme_csv(), dst, again),
                         NULL, &err);
    ck_assert_msg(rc == 0, "%s", err);
    free(err);
    char *text2 = rs_test_read_file(again);
    const size_t maps = (size_t)(strstr(text, "\"devices\"") - text);
    ck_assert_msg(strncmp(text, text2, maps) == 0, "file: gave another placement:\n%s\n%s", text, text2);
    free(text2);
    free(text);

    /* --sglang: the map alone, as SGLang's --init-expert-location takes it */
    const char *sg = rs_test_path("sglang.json");
    ck_assert_int_eq(rs_test_run_cli(rs_test_cmd("place --loads %s " README_LAYOUT " --sglang -o %s", readme_csv(), sg), NULL,
                                     NULL),
                     0);
    text = rs_test_read_file(sg);
    ck_assert_msg(strstr(text, "physical_to_logical_map") && !strstr(text, "logical_count") &&
                      !strstr(text, "logical_to_physical_map"),
                  "%s", text);

    /* --dense-layers: SGLang's rows of the dense layers (the trivial map) come first */
    const char *dense = rs_test_path("sglang-dense.json");
    ck_assert_int_eq(rs_test_run_cli(rs_test_cmd("place --loads %s " README_LAYOUT " --sglang --dense-layers 2 -o %s",
                                                 readme_csv(), dense),
                                     NULL, NULL),
                     0);
    char *with_dense = rs_test_read_file(dense);
    static const char trivial[] = "    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0, 1, 2, 3],\n";
    const char *rows = strstr(with_dense, "[\n") + 2, *moe_rows = strstr(text, "[\n") + 2;
    ck_assert_msg(strncmp(rows, trivial, sizeof trivial - 1) == 0 &&
                      strncmp(rows + sizeof trivial - 1, trivial, sizeof trivial - 1) == 0 &&
                      strcmp(rows + 2 * (sizeof trivial - 1), moe_rows) == 0,
                  "%s", with_dense);
    free(with_dense);
    free(text);
    const char *refused = rs_test_path("dense-without-sglang.json");
    char *why = NULL;
    ck_assert_int_eq(rs_test_run_cli(rs_test_cmd("place --loads %s " README_LAYOUT " --dense-layers 2 -o %s",
                                                 readme_csv(), refused),
                                     NULL, &why),
                     2);
    ck_assert_msg(strstr(why, "--dense-layers") && access(refused, F_OK) != 0, "%s", why);
    free(why);

    /* --help lists the policies of the registry */
    rc = rs_test_run_cli("place --help", &out, NULL);
    ck_assert_int_eq(rc, 0);
    ck_assert(strstr(out, "  eplb ") && strstr(out, "  file ") && strstr(out, "  contiguous "));
    free(out);
}
END_TEST

enum { TR_T = 200, TR_L = 3, TR_E = 16, TR_K = 2 };

/* A trace of recorded ids (replay routes them as they are): 200 tokens, 3
 * layers, 16 experts, 2 each; the ids [T][L][K] are returned. */
static int32_t *write_replay_trace(const char *path)
{
    const int64_t offsets[] = {0, 70, TR_T};
    int32_t *ids = malloc(TR_T * TR_L * TR_K * sizeof *ids);
    for (int t = 0; t < TR_T; t++)
        for (int l = 0; l < TR_L; l++)
            for (int j = 0; j < TR_K; j++) {
                const int e = (int)(((unsigned)(t * 7 + l * 3) * (j + 1) + (unsigned)(t * t) % 11) % TR_E);
                ids[(t * TR_L + l) * TR_K + j] = (j == 1 && e == ids[(t * TR_L + l) * TR_K]) ? (e + 1) % TR_E : e;
            }
    rs_test_trace tt = {.T = TR_T, .L = TR_L, .E = TR_E, .K = TR_K, .num_seq = 2, .offsets = offsets, .topk_ids = ids};
    rs_test_write_trace(path, &tt);
    return ids;
}

/* Routing a trace with replay counts its recorded ids: the plan equals the
 * one from a loads file of those counts. */
START_TEST(place_from_trace)
{
    char trace[1024];
    snprintf(trace, sizeof trace, "%s", rs_test_path("t.h5"));
    int32_t *ids = write_replay_trace(trace);
    long counts[TR_L][TR_E] = {{0}};
    for (int i = 0; i < TR_T * TR_L * TR_K; i++)
        counts[i / TR_K % TR_L][ids[i]]++;
    free(ids);
    char csv[4096] = "";
    for (int l = 0; l < TR_L; l++)
        for (int e = 0; e < TR_E; e++)
            snprintf(csv + strlen(csv), sizeof csv - strlen(csv), "%ld%s", counts[l][e], e + 1 < TR_E ? "," : "\n");
    char loads[1024], a[1024], b[1024];
    snprintf(loads, sizeof loads, "%s", write_text("counts.csv", csv));
    snprintf(a, sizeof a, "%s", rs_test_path("a.json"));
    snprintf(b, sizeof b, "%s", rs_test_path("b.json"));
    char *err = NULL;
    int rc = rs_test_run_cli(rs_test_cmd("place %s --router replay --replicas 4 --groups 4 --nodes 2 --devices 4 --threads 2 "
                                 "--memory-mb 1 --no-progress -o %s",
                                 trace, a),
                             NULL, &err);
    ck_assert_msg(rc == 0, "%s", err);
    free(err);
    rc = rs_test_run_cli(rs_test_cmd("place --loads %s --replicas 4 --groups 4 --nodes 2 --devices 4 -o %s", loads, b), NULL,
                         &err);
    ck_assert_msg(rc == 0, "%s", err);
    free(err);
    char *x = rs_test_read_file(a), *y = rs_test_read_file(b);
    ck_assert_msg(strcmp(x, y) == 0, "from the trace:\n%s\nfrom the counts:\n%s", x, y);
    free(x);
    free(y);
    /* a layout that does not fit is refused before routing */
    expect_failure(rs_test_cmd("place %s --router replay --devices 7 -o %s", trace, rs_test_path("out.json")), 1,
                   "devices (7) must divide the slots (16 experts + 0 replicas = 16)");
}
END_TEST

/* affinity from a trace: routesim place counts the loads and the
 * layer-to-layer transitions (pairs of a token's experts at consecutive
 * layers) of the recorded ids, and plans what the policy plans from the
 * same counts made here; a loads file has no transitions and is refused. */
START_TEST(place_affinity_from_trace)
{
    char trace[1024], got[1024], want[1024];
    snprintf(trace, sizeof trace, "%s", rs_test_path("t.h5"));
    snprintf(got, sizeof got, "%s", rs_test_path("affinity.json"));
    snprintf(want, sizeof want, "%s", rs_test_path("want.json"));
    int32_t *ids = write_replay_trace(trace);
    double *loads = calloc(TR_L * TR_E, sizeof *loads), *pairs = calloc((TR_L - 1) * TR_E * TR_E, sizeof *pairs);
    for (int t = 0; t < TR_T; t++)
        for (int l = 0; l < TR_L; l++)
            for (int j = 0; j < TR_K; j++) {
                const int i = ids[(t * TR_L + l) * TR_K + j];
                loads[l * TR_E + i]++;
                for (int k = 0; l + 1 < TR_L && k < TR_K; k++)
                    pairs[(l * TR_E + i) * TR_E + ids[(t * TR_L + l + 1) * TR_K + k]]++;
            }
    free(ids);
    char *out = NULL, *err = NULL;
    int rc = rs_test_run_cli(rs_test_cmd("place %s --router replay --policy affinity --balance-slack 0.1 --replicas 4 "
                                 "--nodes 2 --devices 4 --no-progress -o %s",
                                 trace, got),
                             &out, &err);
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_msg(strstr(out, "affinity: 3 layers x 20 slots (16 experts + 4 replicas) on 4 devices in 2 nodes") &&
                      strstr(out, "modelled all-to-all "),
                  "%s", out);
    free(out);
    free(err);
    const rs_placement_stats stats = {.L = TR_L, .E = TR_E, .loads = loads, .transitions = pairs};
    const rs_placement_options options = {.layout = {.E = TR_E, .S = TR_E + 4, .G = 4, .N = 2, .groups = 1},
                                          .balance_slack = 0.1};
    rs_error e = {{0}};
    rs_placement *p = rs_placement_plan(rs_placement_policy_find("affinity"), &stats, &options, &e);
    ck_assert_msg(p != NULL, "%s", e.msg);
    const rs_placement_json_options json = {.policy = "affinity"};
    ck_assert_msg(rs_placement_json_write(p, &json, want, &e) == 0, "%s", e.msg);
    rs_placement_free(p);
    char *x = rs_test_read_file(got), *y = rs_test_read_file(want);
    ck_assert_msg(strcmp(x, y) == 0, "routesim place:\n%s\nfrom the counts:\n%s", x, y);
    free(x);
    free(y);
    free(loads);
    free(pairs);
    expect_failure(rs_test_cmd("place --loads %s --devices 4 --policy affinity -o %s", readme_csv(), rs_test_path("out.json")),
                   2, "--policy affinity plans from layer-to-layer transitions, which a loads file does not have");
}
END_TEST

/* search prints its modelled time beside eplb's, never above it; the
 * model's options change the times; the plan reads back as file:PATH. */
START_TEST(place_search)
{
    char csv[1024], dst[1024];
    snprintf(csv, sizeof csv, "%s", readme_csv());
    snprintf(dst, sizeof dst, "%s", rs_test_path("search.json"));
    char *out = NULL, *err = NULL;
    int rc = rs_test_run_cli(rs_test_cmd("place --loads %s " README_LAYOUT " --policy search --seed 3 --iterations 500 "
                                 "--hidden-size 4096 --bytes-per-element 1 --nvlink-gbps 100 --net-gbps 25 "
                                 "--latency-us 10 -o %s",
                                 csv, dst),
                             &out, &err);
    ck_assert_msg(rc == 0, "%s", err);
    double mine = 0, eplb = 0;
    const char *at = strstr(out, "modelled all-to-all ");
    ck_assert_msg(at && sscanf(at, "modelled all-to-all %lg s (eplb's %lg s", &mine, &eplb) == 2, "%s", out);
    ck_assert_msg(mine <= eplb && eplb > 2 * 10e-6, "%s", out); /* two layers, each at least the latency */
    free(out);
    free(err);
    rc = rs_test_run_cli(rs_test_cmd("place --loads %s " README_LAYOUT " --policy file:%s -o %s", csv, dst,
                             rs_test_path("back.json")),
                         &out, &err);
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_msg(strstr(out, rs_test_cmd("modelled all-to-all %.6g s", mine)) == NULL, "the default model gave %s", out);
    free(out);
    free(err);
    expect_failure(rs_test_cmd("place --loads %s --devices 4 --balance-slack -1 -o %s", csv, rs_test_path("out.json")), 2,
                   "--balance-slack: expected a number in [0, 1e+09], got '-1'");
    expect_failure(rs_test_cmd("place --loads %s --devices 4 --nvlink-gbps 0 -o %s", csv, rs_test_path("out.json")), 2,
                   "--nvlink-gbps");
    expect_failure(rs_test_cmd("place --loads %s --devices 4 --iterations x -o %s", csv, rs_test_path("out.json")), 2,
                   "--iterations");
}
END_TEST

START_TEST(place_errors)
{
    char csv[1024], out[1024]; /* rs_test_path's buffers rotate */
    snprintf(csv, sizeof csv, "%s", readme_csv());
    snprintf(out, sizeof out, "%s", rs_test_path("out.json"));
    expect_failure(rs_test_cmd("place --loads %s --replicas 4 --devices 5 -o %s", csv, out), 1,
                   "devices (5) must divide the slots (12 experts + 4 replicas = 16)");
    expect_failure(rs_test_cmd("place --loads %s --replicas 4 --devices 8 --nodes 3 -o %s", csv, out), 1,
                   "nodes (3) must divide devices (8)");
    expect_failure(rs_test_cmd("place --loads %s --devices 4 --groups 5 -o %s", csv, out), 1,
                   "groups (5) must be at least 1 and divide the experts (12)");
    expect_failure(rs_test_cmd("place --loads %s --devices 4 -o %s", write_text("neg.csv", "1,-2,3,4\n"), out), 1,
                   "neg.csv: layer 0 expert 1: load -2 is not a finite number >= 0");
    expect_failure(rs_test_cmd("place --loads %s --devices 4 -o %s", write_text("ragged.csv", "1,2,3,4\n1,2,3\n"), out), 1,
                   "ragged.csv: line 2 has 3 loads, the first layer has 4");
    expect_failure(rs_test_cmd("place --loads %s --devices 4 --policy nope -o %s", csv, out), 2,
                   "unknown policy 'nope' (known: contiguous");
    expect_failure(rs_test_cmd("place --loads %s --devices 4 --policy file -o %s", csv, out), 2, "needs a file: file:PATH");
    expect_failure(rs_test_cmd("place --loads %s --devices 4 --policy eplb:x -o %s", csv, out), 2, "takes no path");
    expect_failure(rs_test_cmd("place --loads %s --replicas 4 --devices 8 --policy file:%s -o %s", csv,
                       write_text("short.json", "{\"physical_to_logical_map\": [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, "
                                                "11, 0, 1, 2, 3]]}"),
                       out),
                   1, "short.json: physical_to_logical_map has 1 layers, the layout 2");
    expect_failure(rs_test_cmd("place --loads %s --devices 4", csv), 2, "-o OUT.json is required");
    expect_failure(rs_test_cmd("place --loads %s -o %s", csv, out), 2, "--devices G is required");
    expect_failure(rs_test_cmd("place --devices 4 -o %s", out), 2, "give either --loads FILE or TRACE --router SPEC");
    expect_failure(rs_test_cmd("place --loads %s --devices 4 --replicas -1 -o %s", csv, out), 2, "--replicas");
    expect_failure(rs_test_cmd("place --loads %s --devices 4 -o %s", csv, csv), 1, "would overwrite the input");
    expect_failure(rs_test_cmd("place --loads %s --devices 4 -o %s", rs_test_path("none.csv"), out), 1, "none.csv");
    /* an existing file of another kind is kept unless forced */
    char other[1024];
    snprintf(other, sizeof other, "%s", write_text("other.json", "{\"not\": \"a placement\"}\n"));
    expect_failure(rs_test_cmd("place --loads %s --devices 4 -o %s", csv, other), 1, "--force overwrites it");
    char *text = rs_test_read_file(other);
    ck_assert_str_eq(text, "{\"not\": \"a placement\"}\n");
    free(text);
    ck_assert_int_eq(rs_test_run_cli(rs_test_cmd("place --loads %s --devices 4 --force -o %s", csv, other), NULL, NULL), 0);
}
END_TEST

/* Every policy of the registry has its row in docs/metrics.md. */
START_TEST(every_policy_documented)
{
    const char *src = getenv("ROUTESIM_SRC");
    ck_assert_msg(src != NULL, "ROUTESIM_SRC is not set (run the tests through make check)");
    char *doc = rs_test_read_file(rs_test_cmd("%s/docs/metrics.md", src));
    ck_assert_ptr_nonnull(doc);
    const char *section = strstr(doc, "## Expert placement policies");
    ck_assert_msg(section != NULL, "docs/metrics.md has no section Expert placement policies");
    for (int i = 0; i < rs_placement_policy_count(); i++) {
        const char *name = rs_placement_policy_at(i)->name;
        ck_assert_msg(strstr(section, rs_test_cmd("| `%s` |", name)) || strstr(section, rs_test_cmd("| `%s:", name)),
                      "docs/metrics.md: policy %s has no row in Expert placement policies", name);
    }
    free(doc);
}
END_TEST

Suite *cli_place_suite(void)
{
    Suite *s = suite_create("cli_place");
    TCase *tc = tcase_create("cli_place");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, place_from_loads);
    tcase_add_test(tc, place_from_trace);
    tcase_add_test(tc, place_affinity_from_trace);
    tcase_add_test(tc, place_search);
    tcase_add_test(tc, place_errors);
    tcase_add_test(tc, every_policy_documented);
    suite_add_tcase(s, tc);
    return s;
}
