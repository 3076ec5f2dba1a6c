/* Placement files: what rs_placement_json_write writes, the file policy
 * reads back equal (full form and SGLang's physical_to_logical_map alone),
 * and every malformed file gets one line naming the file and the field. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "metrics/placement/placement.h"
#include "metrics/placement/placement_json.h"
#include "tests/test_util.h"

static rs_placement *plan(const char *policy, const char *path, int L, const double *loads, rs_placement_layout lay,
                          rs_error *err)
{
    const rs_placement_stats stats = {.L = L, .E = lay.E, .loads = loads};
    const rs_placement_options options = {.layout = lay, .path = path};
    return rs_placement_plan(rs_placement_policy_find(policy), &stats, &options, err);
}

static void expect_same(const rs_placement *a, const rs_placement *b, int with_ranks)
{
    const size_t slots = (size_t)a->L * a->layout.S, experts = (size_t)a->L * a->layout.E;
    ck_assert_int_eq(a->L, b->L);
    ck_assert(memcmp(a->phy2log, b->phy2log, slots * sizeof *a->phy2log) == 0);
    ck_assert(memcmp(a->logcnt, b->logcnt, experts * sizeof *a->logcnt) == 0);
    ck_assert_int_eq(a->maxcnt, b->maxcnt);
    if (with_ranks) {
        ck_assert(memcmp(a->rank, b->rank, slots * sizeof *a->rank) == 0);
        ck_assert(memcmp(a->log2phy, b->log2phy, experts * a->maxcnt * sizeof *a->log2phy) == 0);
    }
}

START_TEST(round_trip)
{
    enum { L = 3, E = 32 };
    const rs_placement_layout lay = {.E = E, .S = 40, .G = 8, .N = 2, .groups = 4};
    double loads[L * E];
    srand(14);
    for (int i = 0; i < L * E; i++)
        loads[i] = rand() % 1000;
    rs_error err = {{0}};
    rs_placement *p = plan("eplb", NULL, L, loads, lay, &err);
    ck_assert_msg(p != NULL, "%s", err.msg);
    ck_assert_int_eq(p->maxcnt > 1, 1);
    const char *full = rs_test_path("full.json"), *sglang = rs_test_path("sglang.json");
    ck_assert_msg(rs_placement_json_write(p, &(rs_placement_json_options){.policy = "eplb \"x\""}, full, &err) == 0,
                  "%s", err.msg);
    ck_assert_msg(rs_placement_json_write(p, &(rs_placement_json_options){.sglang_only = 1}, sglang, &err) == 0,
                  "%s", err.msg);

    rs_placement *back = plan("file", full, L, NULL, lay, &err);
    ck_assert_msg(back != NULL, "%s", err.msg);
    expect_same(p, back, 1);
    rs_placement_free(back);

    /* SGLang's form: the map alone; replicas rank in slot order */
    char *text = rs_test_read_file(sglang);
    ck_assert_ptr_null(strstr(text, "logical_count"));
    ck_assert_ptr_null(strstr(text, "devices"));
    free(text);
    back = plan("file", sglang, L, NULL, lay, &err);
    ck_assert_msg(back != NULL, "%s", err.msg);
    expect_same(p, back, 0);
    for (int l = 0; l < L; l++)
        for (int s = 0; s < lay.S; s++) {
            int earlier = 0;
            for (int t = 0; t < s; t++)
                earlier += back->phy2log[l * lay.S + t] == back->phy2log[l * lay.S + s];
            ck_assert_int_eq(back->rank[l * lay.S + s], earlier);
        }
    rs_placement_free(back);
    rs_placement_free(p);
}
END_TEST

/* Layout of the malformed files: 2 layers, 3 experts on 4 slots, 2 devices. */
static const rs_placement_layout small = {.E = 3, .S = 4, .G = 2, .N = 1, .groups = 1};

static void expect_file_error(const char *text, const char *needle)
{
    const char *path = rs_test_path("bad.json");
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    rs_error err = {{0}};
    rs_placement *p = plan("file", path, 2, NULL, small, &err);
    ck_assert_msg(p == NULL, "accepted %s", text);
    ck_assert_msg(strstr(err.msg, path) != NULL, "message '%s' does not name the file", err.msg);
    ck_assert_msg(strstr(err.msg, needle) != NULL, "message '%s' lacks '%s' (file %s)", err.msg, needle, text);
    ck_assert_ptr_null(strchr(err.msg, '\n'));
}

#define MAP "\"physical_to_logical_map\": [[0, 1, 2, 0], [2, 1, 0, 1]]"

START_TEST(file_errors)
{
    expect_file_error("{" MAP, "not valid JSON");
    expect_file_error("[[0, 1, 2, 0], [2, 1, 0, 1]]", "expected a JSON object with physical_to_logical_map");
    expect_file_error("{\"logical_count\": [[1, 2, 3], [1, 2, 3]]}", "logical_count alone holds expert loads");
    expect_file_error("{\"physical_to_logical\": []}", "no field physical_to_logical_map");
    expect_file_error("{\"physical_to_logical_map\": 3}", "physical_to_logical_map must be an array of layers");
    expect_file_error("{\"physical_to_logical_map\": [[0, 1, 2, 0]]}", "has 1 layers, the layout 2");
    expect_file_error("{\"physical_to_logical_map\": [[0, 1, 2], [2, 1, 0, 1]]}",
                      "physical_to_logical_map[0] has 3 slots, the layout 4 (3 experts + 1 replicas)");
    expect_file_error("{\"physical_to_logical_map\": [[0, 1, 2, 0], [2, 1, 3, 1]]}",
                      "physical_to_logical_map[1][2] is not an expert id in [0, 3)");
    expect_file_error("{\"physical_to_logical_map\": [[0, 1, 2, 0.5], [2, 1, 0, 1]]}",
                      "physical_to_logical_map[0][3] is not an expert id");
    expect_file_error("{\"physical_to_logical_map\": [[0, 1, 1, 0], [2, 1, 0, 1]]}",
                      "physical_to_logical_map[0]: expert 2 has no slot");
    expect_file_error("{" MAP ", \"logical_count\": [[2, 1, 1], [1, 1, 2]]}",
                      "logical_count[1][1] is not 2, the slots physical_to_logical_map gives expert 1");
    expect_file_error("{" MAP ", \"logical_count\": [[2, 1, 1]]}", "logical_count has 1 layers, expected 2");
    expect_file_error("{" MAP ", \"logical_to_physical_map\": [[[0, 1], [1, -1], [2, -1]], [[2, -1], [1, 3], [0, "
                      "-1]]]}",
                      "logical_to_physical_map[0][0] lists slot 1, which holds expert 1");
    expect_file_error("{" MAP ", \"logical_to_physical_map\": [[[0, -1], [1, -1], [2, -1]], [[2, -1], [1, 3], [0, "
                      "-1]]]}",
                      "logical_to_physical_map[0][0] lists 1 slots, physical_to_logical_map gives expert 0 2");
    expect_file_error("{" MAP ", \"logical_to_physical_map\": [[[-1, 0], [1, -1], [2, -1]], [[2, -1], [1, 3], [0, "
                      "-1]]]}",
                      "slot 0 follows a -1");
    expect_file_error("{" MAP ", \"logical_to_physical_map\": [[[0, 4], [1, -1], [2, -1]], [[2, -1], [1, 3], [0, "
                      "-1]]]}",
                      "logical_to_physical_map[0][0][1] is not a slot in [0, 4) or -1");
    expect_file_error("{" MAP ", \"devices\": 4}", "devices is not 2: the placement was planned for another layout");
    expect_file_error("{" MAP ", \"nodes\": 2}", "nodes is not 1");

    rs_error err = {{0}};
    ck_assert_ptr_null(plan("file", rs_test_path("missing.json"), 2, NULL, small, &err));
    ck_assert_msg(strstr(err.msg, "missing.json: cannot read"), "%s", err.msg);
    ck_assert_ptr_null(plan("file", rs_test_dir(), 2, NULL, small, &err));
    ck_assert_msg(strstr(err.msg, "is a directory"), "%s", err.msg);
    ck_assert_ptr_null(plan("file", NULL, 2, NULL, small, &err));
    ck_assert_msg(strstr(err.msg, "needs a file"), "%s", err.msg);
}
END_TEST

/* A file with every optional field right reads with its ranks. */
START_TEST(file_with_every_field)
{
    const char *path = rs_test_path("ok.json");
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("{" MAP ", \"logical_to_physical_map\": [[[3, 0], [1, -1], [2, -1]], [[2, -1], [3, 1], [0, -1]]],"
          " \"logical_count\": [[2, 1, 1], [1, 2, 1]], \"devices\": 2, \"nodes\": 1, \"groups\": 1,"
          " \"policy\": \"hand\"}",
          f);
    fclose(f);
    rs_error err = {{0}};
    rs_placement *p = plan("file", path, 2, NULL, small, &err);
    ck_assert_msg(p != NULL, "%s", err.msg);
    const int32_t rank[8] = {1, 0, 0, 0, 0, 1, 0, 0};
    ck_assert(memcmp(p->rank, rank, sizeof rank) == 0);
    rs_placement_free(p);
}
END_TEST

Suite *placement_file_suite(void)
{
    Suite *s = suite_create("placement_file");
    TCase *tc = tcase_create("placement_file");
    tcase_add_test(tc, round_trip);
    tcase_add_test(tc, file_errors);
    tcase_add_test(tc, file_with_every_field);
    suite_add_tcase(s, tc);
    return s;
}
