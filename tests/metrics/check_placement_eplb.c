/* Placement policies eplb, contiguous and round_robin on cases worked out by
 * hand or printed by the reference, the tie rule (every tie to the lower
 * index), and the checks of rs_placement_finish. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/placement/placement.h"

static rs_placement *plan_with(const char *policy, int L, const double *loads, rs_placement_layout lay)
{
    const rs_placement_policy *p = rs_placement_policy_find(policy);
    ck_assert_msg(p != NULL, "no policy %s", policy);
    const rs_placement_stats stats = {.L = L, .E = lay.E, .loads = loads};
    const rs_placement_options options = {.layout = lay};
    rs_error err = {{0}};
    rs_placement *out = rs_placement_plan(p, &stats, &options, &err);
    ck_assert_msg(out != NULL, "%s: %s", policy, err.msg);
    return out;
}

static void expect_row(const int32_t *got, const int *want, int n, const char *what, int layer)
{
    for (int i = 0; i < n; i++)
        ck_assert_msg(got[i] == want[i], "%s layer %d [%d]: got %d, want %d", what, layer, i, got[i], want[i]);
}

/* deepseek-ai/EPLB README: weights 2 x 12, 16 replicas, 4 groups, 2 nodes,
 * 8 GPUs. phy2log is the README's printed output; log2phy is what the
 * reference eplb.py (commit d52c72d) returns for the same call. */
START_TEST(readme_example)
{
    const double w[2 * 12] = {90, 132, 40, 61, 104, 165, 39,  4,   73,  56, 183, 86,
                              20, 107, 104, 64, 19, 197, 187, 157, 172, 86, 16, 27};
    const int phy2log[2][16] = {{5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1},
                                {7, 10, 6, 8, 6, 11, 8, 9, 2, 4, 5, 1, 5, 0, 3, 1}};
    const int log2phy[2][12][2] = {
        {{12, -1}, {15, 13}, {11, -1}, {6, -1}, {7, 5}, {0, 2}, {1, -1}, {3, -1}, {4, -1}, {9, -1}, {8, 10}, {14, -1}},
        {{13, -1}, {15, 11}, {8, -1}, {14, -1}, {9, -1}, {10, 12}, {2, 4}, {0, -1}, {6, 3}, {7, -1}, {1, -1}, {5, -1}}};
    rs_placement *p = plan_with("eplb", 2, w, (rs_placement_layout){.E = 12, .S = 16, .G = 8, .N = 2, .groups = 4});
    ck_assert_int_eq(p->maxcnt, 2);
    for (int l = 0; l < 2; l++) {
        expect_row(p->phy2log + l * 16, phy2log[l], 16, "phy2log", l);
        expect_row(p->log2phy + l * 24, &log2phy[l][0][0], 24, "log2phy", l);
        for (int e = 0; e < 12; e++)
            ck_assert_int_eq(p->logcnt[l * 12 + e], 1 + (log2phy[l][e][1] >= 0));
    }
    rs_placement_free(p);
}
END_TEST

/* Loads [40, 30, 20, 10], 2 replicas, 2 devices in 2 nodes, by hand.
 * Global (1 group: 2 nodes do not divide it): replicas to expert 0 (40),
 * then 1 (30 > 40/2); copies weigh 20 15 20 10 20 15; heaviest first into
 * the lighter device, the first on ties: device 0 gets copies 0, 4, 3,
 * device 1 copies 2, 1, 5.
 * Hierarchical (2 groups, one per node): node 0 holds experts 0, 1 and
 * replicates 0; node 1 holds 2, 3 and replicates 2; devices 70 and 30. */
START_TEST(global_and_hierarchical_by_hand)
{
    const double w[4] = {40, 30, 20, 10};
    rs_placement *g = plan_with("eplb", 1, w, (rs_placement_layout){.E = 4, .S = 6, .G = 2, .N = 2, .groups = 1});
    expect_row(g->phy2log, (const int[]){0, 0, 3, 2, 1, 1}, 6, "global phy2log", 0);
    expect_row(g->rank, (const int[]){0, 1, 0, 0, 0, 1}, 6, "global rank", 0);
    expect_row(g->log2phy, (const int[]){0, 1, 4, 5, 3, -1, 2, -1}, 8, "global log2phy", 0);
    expect_row(g->logcnt, (const int[]){2, 2, 1, 1}, 4, "global logcnt", 0);
    rs_placement_free(g);
    rs_placement *h = plan_with("eplb", 1, w, (rs_placement_layout){.E = 4, .S = 6, .G = 2, .N = 2, .groups = 2});
    expect_row(h->phy2log, (const int[]){1, 0, 0, 2, 3, 2}, 6, "hierarchical phy2log", 0);
    expect_row(h->rank, (const int[]){0, 0, 1, 0, 0, 1}, 6, "hierarchical rank", 0);
    rs_placement_free(h);
}
END_TEST

/* Groups packed onto nodes by their sums: loads of 4 groups of 2 with sums
 * 3, 30, 20, 10 go heaviest first onto the lighter node: group 1 -> node 0,
 * 2 -> node 1, 3 -> node 1, 0 -> node 0; node 0 holds groups 1 then 0. */
START_TEST(groups_onto_nodes_by_hand)
{
    const double w[8] = {1, 2, 15, 15, 12, 8, 6, 4};
    rs_placement *p = plan_with("eplb", 1, w, (rs_placement_layout){.E = 8, .S = 8, .G = 2, .N = 2, .groups = 4});
    /* no replicas, one device per node: each node's experts heaviest first */
    expect_row(p->phy2log, (const int[]){2, 3, 1, 0, 4, 5, 6, 7}, 8, "phy2log", 0);
    rs_placement_free(p);
}
END_TEST

/* Every tie to the lower index. Equal loads [10, 10, 10, 10], 2 replicas,
 * one device: replicas to experts 0 then 1 (first of the largest w/count);
 * the device's slots in stable descending order of 5 5 10 10 5 5. */
START_TEST(ties_to_the_lower_index)
{
    const double eq[4] = {10, 10, 10, 10};
    rs_placement *p = plan_with("eplb", 1, eq, (rs_placement_layout){.E = 4, .S = 6, .G = 1, .N = 1, .groups = 1});
    expect_row(p->phy2log, (const int[]){2, 3, 0, 1, 0, 1}, 6, "replicas", 0);
    expect_row(p->rank, (const int[]){0, 0, 0, 0, 1, 1}, 6, "replica ranks", 0);
    rs_placement_free(p);
    /* equal copies on 2 devices: the first lightest device takes each */
    p = plan_with("eplb", 1, eq, (rs_placement_layout){.E = 4, .S = 4, .G = 2, .N = 1, .groups = 1});
    expect_row(p->phy2log, (const int[]){0, 2, 1, 3}, 4, "packing", 0);
    rs_placement_free(p);
    /* 20 equal copies: a sort past 16 items keeps index order too */
    double twenty[20];
    int want[20];
    for (int e = 0; e < 20; e++)
        twenty[e] = 7;
    for (int i = 0; i < 10; i++) {
        want[i] = 2 * i;
        want[10 + i] = 2 * i + 1;
    }
    p = plan_with("eplb", 1, twenty, (rs_placement_layout){.E = 20, .S = 20, .G = 2, .N = 1, .groups = 1});
    expect_row(p->phy2log, want, 20, "long sort", 0);
    rs_placement_free(p);
}
END_TEST

/* Loads are converted to float32 first, as the reference's weight.float():
 * 2^24 and 2^24 + 1 become equal, so the replica goes to expert 0 (the
 * reference gives [1, 0, 0] too; in double it would go to expert 1). */
START_TEST(loads_in_float32)
{
    const double w[2] = {16777216, 16777217};
    rs_placement *p = plan_with("eplb", 1, w, (rs_placement_layout){.E = 2, .S = 3, .G = 1, .N = 1, .groups = 1});
    expect_row(p->phy2log, (const int[]){1, 0, 0}, 3, "phy2log", 0);
    rs_placement_free(p);
}
END_TEST

/* contiguous: s mod E; round_robin: copy i on device i mod G at position
 * i / G. E = 4, 2 replicas, 3 devices of 2 slots; ranks in slot order. */
START_TEST(contiguous_and_round_robin_by_hand)
{
    const double w[4] = {1, 2, 3, 4};
    const rs_placement_layout lay = {.E = 4, .S = 6, .G = 3, .N = 1, .groups = 1};
    rs_placement *c = plan_with("contiguous", 1, w, lay);
    expect_row(c->phy2log, (const int[]){0, 1, 2, 3, 0, 1}, 6, "contiguous", 0);
    expect_row(c->log2phy, (const int[]){0, 4, 1, 5, 2, -1, 3, -1}, 8, "contiguous log2phy", 0);
    rs_placement_free(c);
    rs_placement *r = plan_with("round_robin", 1, w, lay);
    expect_row(r->phy2log, (const int[]){0, 3, 1, 0, 2, 1}, 6, "round_robin", 0);
    expect_row(r->rank, (const int[]){0, 0, 0, 1, 0, 1}, 6, "round_robin rank", 0);
    expect_row(r->log2phy, (const int[]){0, 3, 2, 5, 4, -1, 1, -1}, 8, "round_robin log2phy", 0);
    rs_placement_free(r);
}
END_TEST

/* A 2-layer placement of E = 3 on S = 4 slots, filled by the caller. */
static rs_placement *small(void)
{
    rs_error err = {{0}};
    rs_placement *p =
        rs_placement_new(2, &(rs_placement_layout){.E = 3, .S = 4, .G = 2, .N = 1, .groups = 1}, &err);
    ck_assert_msg(p != NULL, "%s", err.msg);
    const int32_t rows[8] = {0, 1, 2, 0, 2, 1, 0, 1};
    memcpy(p->phy2log, rows, sizeof rows);
    return p;
}

static void expect_finish_error(rs_placement *p, const char *needle)
{
    rs_error err = {{0}};
    ck_assert_int_ne(rs_placement_finish(p, &err), 0);
    ck_assert_msg(strstr(err.msg, needle) != NULL, "message '%s' lacks '%s'", err.msg, needle);
    ck_assert_ptr_null(strchr(err.msg, '\n'));
    rs_placement_free(p);
}

START_TEST(finish_checks)
{
    rs_placement *p = small();
    rs_error err = {{0}};
    ck_assert_msg(rs_placement_finish(p, &err) == 0, "%s", err.msg);
    expect_row(p->rank, (const int[]){0, 0, 0, 1, 0, 0, 0, 1}, 8, "ranks in slot order", 0);
    expect_row(p->log2phy + 6, (const int[]){2, -1, 1, 3, 0, -1}, 6, "log2phy", 1);
    rs_placement_free(p);

    p = small();
    p->phy2log[5] = 3;
    expect_finish_error(p, "layer 1 slot 1 holds expert 3, not in [0, 3)");
    p = small();
    p->phy2log[4] = 1; /* layer 1: 1 1 0 1, no expert 2 */
    expect_finish_error(p, "layer 1: expert 2 has no slot");
    p = small();
    for (int s = 0; s < 8; s++)
        p->rank[s] = 0;
    p->rank[6] = -1;
    expect_finish_error(p, "replica ranks are given for some slots only");
    p = small();
    const int32_t twice[8] = {0, 0, 0, 1, 0, 0, 0, 0}; /* layer 1, expert 1 on slots 1 and 3, both rank 0 */
    memcpy(p->rank, twice, sizeof twice);
    expect_finish_error(p, "expert 1 has replica rank 0 twice (slots 1 and 3)");
    p = small();
    const int32_t high[8] = {0, 0, 0, 2, 0, 0, 0, 1};
    memcpy(p->rank, high, sizeof high);
    expect_finish_error(p, "replica rank 2 of expert 0, which has 2 replicas");
}
END_TEST

/* eplb needs loads; plan refuses layouts and loads that are not ones. */
START_TEST(plan_checks)
{
    const rs_placement_policy *eplb = rs_placement_policy_find("eplb");
    const double w[4] = {1, 2, -3, 4};
    rs_error err = {{0}};
    rs_placement_options o = {.layout = {.E = 4, .S = 6, .G = 4, .N = 1, .groups = 1}};
    const rs_placement_stats none = {.L = 1, .E = 4};
    ck_assert_ptr_null(rs_placement_plan(eplb, &none, &o, &err));
    ck_assert_msg(strstr(err.msg, "devices (4) must divide the slots"), "%s", err.msg);
    o.layout = (rs_placement_layout){.E = 4, .S = 6, .G = 2, .N = 4, .groups = 1};
    ck_assert_ptr_null(rs_placement_plan(eplb, &none, &o, &err));
    ck_assert_msg(strstr(err.msg, "nodes (4) must divide devices (2)"), "%s", err.msg);
    o.layout = (rs_placement_layout){.E = 4, .S = 6, .G = 2, .N = 1, .groups = 1};
    ck_assert_ptr_null(rs_placement_plan(eplb, &none, &o, &err));
    ck_assert_msg(strstr(err.msg, "needs expert loads"), "%s", err.msg);
    const rs_placement_stats negative = {.L = 1, .E = 4, .loads = w};
    ck_assert_ptr_null(rs_placement_plan(eplb, &negative, &o, &err));
    ck_assert_msg(strstr(err.msg, "layer 0 expert 2 is -3"), "%s", err.msg);
}
END_TEST

Suite *placement_eplb_suite(void)
{
    Suite *s = suite_create("placement_eplb");
    TCase *tc = tcase_create("placement_eplb");
    tcase_add_test(tc, readme_example);
    tcase_add_test(tc, global_and_hierarchical_by_hand);
    tcase_add_test(tc, groups_onto_nodes_by_hand);
    tcase_add_test(tc, ties_to_the_lower_index);
    tcase_add_test(tc, loads_in_float32);
    tcase_add_test(tc, contiguous_and_round_robin_by_hand);
    tcase_add_test(tc, finish_checks);
    tcase_add_test(tc, plan_checks);
    suite_add_tcase(s, tc);
    return s;
}
