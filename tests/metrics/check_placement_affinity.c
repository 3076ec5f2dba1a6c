/* The affinity policy on cases worked out by hand (two chains of experts
 * that tokens follow from layer to layer, the load cap and its repair,
 * the tie rules),
 * and on random cases: a valid placement with eplb's replica counts and
 * first layer, the same plan every time; missing or bad transitions
 * refused. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/placement/placement.h"

static rs_placement *plan_affinity(int L, const double *loads, const double *transitions, rs_placement_layout lay,
                                   double slack)
{
    const rs_placement_stats stats = {.L = L, .E = lay.E, .loads = loads, .transitions = transitions};
    const rs_placement_options options = {.layout = lay, .balance_slack = slack};
    rs_error err = {{0}};
    rs_placement *out = rs_placement_plan(rs_placement_policy_find("affinity"), &stats, &options, &err);
    ck_assert_msg(out != NULL, "%s", err.msg);
    return out;
}

static void expect_row(const int32_t *got, const int *want, int n, int layer)
{
    for (int i = 0; i < n; i++)
        ck_assert_msg(got[i] == want[i], "layer %d slot %d: got %d, want %d", layer, i, got[i], want[i]);
}

/* Share of the transitions whose two experts share a device (single copies). */
static double kept_on_device(const rs_placement *p, const double *transitions)
{
    const int E = p->layout.E;
    double kept = 0, all = 0;
    for (int l = 0; l + 1 < p->L; l++)
        for (int i = 0; i < E; i++)
            for (int j = 0; j < E; j++) {
                const double t = transitions[((size_t)l * E + i) * E + j];
                const int di = rs_placement_device_of_slot(&p->layout, p->log2phy[((size_t)l * E + i) * p->maxcnt]);
                const int dj =
                    rs_placement_device_of_slot(&p->layout, p->log2phy[((size_t)(l + 1) * E + j) * p->maxcnt]);
                all += t;
                kept += di == dj ? t : 0;
            }
    return kept / all;
}

/* 4 experts of equal load on 2 devices, 3 layers. eplb packs every layer
 * as {0, 2 | 1, 3}. Tokens follow two chains: 0 -> 3 -> 2 and 2 -> 1 -> 0
 * start on device 0, 1 -> 0 -> 1 and 3 -> 2 -> 3 on device 1. Copies go in
 * expert order (equal weights): at layer 1 expert 0 has all its
 * transitions from device 1 (expert 1), expert 1 from device 0 (expert 2),
 * so layer 1 is {1, 3 | 0, 2}, and layer 2 {0, 2 | 1, 3}: every transition
 * stays on its device, where eplb keeps none. */
START_TEST(two_chains)
{
    const double loads[3 * 4] = {10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10};
    double t[2][4][4] = {{{0}}};
    t[0][0][3] = t[0][2][1] = t[0][1][0] = t[0][3][2] = 10;
    t[1][3][2] = t[1][1][0] = t[1][0][1] = t[1][2][3] = 10;
    const rs_placement_layout lay = {.E = 4, .S = 4, .G = 2, .N = 1, .groups = 1};
    rs_placement *p = plan_affinity(3, loads, &t[0][0][0], lay, 0.0);
    expect_row(p->phy2log, (const int[]){0, 2, 1, 3}, 4, 0);
    expect_row(p->phy2log + 4, (const int[]){1, 3, 0, 2}, 4, 1);
    expect_row(p->phy2log + 8, (const int[]){0, 2, 1, 3}, 4, 2);
    ck_assert(kept_on_device(p, &t[0][0][0]) == 1.0);
    rs_placement_free(p);
    const rs_placement_stats stats = {.L = 3, .E = 4, .loads = loads};
    const rs_placement_options options = {.layout = lay};
    rs_error err = {{0}};
    rs_placement *e = rs_placement_plan(rs_placement_policy_find("eplb"), &stats, &options, &err);
    ck_assert(kept_on_device(e, &t[0][0][0]) == 0.0);
    rs_placement_free(e);
}
END_TEST

/* The cap. Layer 0 (equal loads) is {0, 2 | 1, 3}; every layer-1 token
 * comes from expert 0 (device 0), layer 1 loads [30, 30, 10, 10]. eplb's
 * layer 1 devices weigh 40 and 40. With slack 0 (cap 40) expert 0 goes to
 * device 0, expert 1 would bring it to 60 and goes to device 1, expert 2
 * fits device 0 (40): {0, 2 | 1, 3}. With slack 1 (cap 80) experts 0 and 1
 * share device 0: {0, 1 | 2, 3}, loads 60 and 20. */
START_TEST(load_cap)
{
    const double loads[2 * 4] = {10, 10, 10, 10, 30, 30, 10, 10};
    double t[4][4] = {{0}};
    for (int j = 0; j < 4; j++)
        t[0][j] = 5;
    const rs_placement_layout lay = {.E = 4, .S = 4, .G = 2, .N = 1, .groups = 1};
    rs_placement *p = plan_affinity(2, loads, &t[0][0], lay, 0.0);
    expect_row(p->phy2log + 4, (const int[]){0, 2, 1, 3}, 4, 1);
    rs_placement_free(p);
    p = plan_affinity(2, loads, &t[0][0], lay, 1.0);
    expect_row(p->phy2log + 4, (const int[]){0, 1, 2, 3}, 4, 1);
    rs_placement_free(p);
}
END_TEST

/* The repair. Layer 0 (equal loads) is {0, 2, 4 | 1, 3, 5}; layer 1 loads
 * [6, 10, 10, 4, 3, 7], eplb's devices 20 and 20 (the cap). Affinities
 * (device 0, device 1): expert 0 (2, 7), 1 (5, 0), 2 (8, 6), 3 (0, 1),
 * 4 (0, 0), 5 (7, 6). Heaviest first: 1 -> device 0 (10), 2 -> device 0
 * (20), 5 -> device 1 (27 would pass the cap), 0 -> 1 (13), 3 -> 1 (17,
 * full), 4 -> device 0, the only free slot: 23. The repair swaps a copy of
 * device 0 with a lighter one of device 1 leaving both under 23: experts
 * 1 or 2 with 5 or 0; swapping 2 and 5 loses least affinity (8 + 6 - 6 -
 * 7 = 1): {1, 5, 4 | 2, 0, 3}, 20 and 20. */
START_TEST(repair_under_the_cap)
{
    const double loads[2 * 6] = {10, 10, 10, 10, 10, 10, 6, 10, 10, 4, 3, 7};
    const double t[6 * 6] = {2, 0, 2, 0, 0, 0, 0, 0, 6, 0, 0, 0, 0, 5, 6, 0, 0, 7,
                             7, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    rs_placement *p = plan_affinity(2, loads, t, (rs_placement_layout){.E = 6, .S = 6, .G = 2, .N = 1, .groups = 1},
                                    0.0);
    expect_row(p->phy2log, (const int[]){0, 2, 4, 1, 3, 5}, 6, 0);
    expect_row(p->phy2log + 6, (const int[]){1, 5, 4, 2, 0, 3}, 6, 1);
    rs_placement_free(p);
}
END_TEST

/* Ties and replicas. Loads [100, 1], 2 replicas on 2 devices of 2 slots:
 * eplb gives expert 0 three copies, layer 0 {0, 0 | 0, 1}. Tokens go from
 * expert 0 to each expert (9) and from expert 1 to expert 0 (4). A copy of
 * expert 0 carries a third of its tokens, so at layer 1 expert 0 has
 * affinity 2/3 x 9 = 6 to device 0 and 1/3 x 9 + 4 = 7 to device 1: copy 0
 * goes to device 1, copy 1 to device 0 (a device holds one copy of an
 * expert); copy 2 finds no device without expert 0 and goes to the
 * lightest with a free slot, the lower on the tie: device 0; expert 1
 * takes the last slot. Ranks are replica indices. With no transitions at
 * all, ties go to the lighter device, then the lower index. */
START_TEST(replicas_and_ties)
{
    const double loads[2 * 2] = {100, 1, 100, 1};
    double t[2][2] = {{9, 9}, {4, 0}};
    const rs_placement_layout lay = {.E = 2, .S = 4, .G = 2, .N = 1, .groups = 1};
    rs_placement *p = plan_affinity(2, loads, &t[0][0], lay, 0.0);
    ck_assert_int_eq(p->logcnt[2], 3);
    expect_row(p->phy2log, (const int[]){0, 0, 0, 1}, 4, 0);
    expect_row(p->phy2log + 4, (const int[]){0, 0, 0, 1}, 4, 1);
    expect_row(p->rank + 4, (const int[]){1, 2, 0, 0}, 4, 1);
    rs_placement_free(p);

    const double flat[2 * 4] = {1, 2, 3, 4, 4, 3, 2, 1};
    const double none[16] = {0};
    const rs_placement_layout four = {.E = 4, .S = 4, .G = 2, .N = 1, .groups = 1};
    p = plan_affinity(2, flat, none, four, 0.0);
    /* layer 1 (cap 5), heaviest first: 0 (4) -> device 0 (equal and
     * empty: the lower), 1 (3) -> device 1 (the lighter; 7 is over the
     * cap), 2 (2) -> device 1 (lighter, 6 over the cap), 3 (1) -> device 0 */
    expect_row(p->phy2log + 4, (const int[]){0, 3, 1, 2}, 4, 1);
    rs_placement_free(p);
}
END_TEST

static uint64_t next(uint64_t *state)
{
    *state = *state * 6364136223846793005ull + 1442695040888963407ull;
    return *state >> 33;
}

/* Random loads, transitions and layouts: a valid placement, eplb's layer 0
 * and replica counts, the same plan twice. */
START_TEST(random_cases)
{
    uint64_t rng = 3;
    enum { L = 4 };
    for (int c = 0; c < 100; c++) {
        const int G = 1 << (next(&rng) % 4), N = next(&rng) % 2 && G > 1 ? 2 : 1;
        const int S = G * (1 + (int)(next(&rng) % 5)), E = S - (int)(next(&rng) % (S < 5 ? S : 5));
        const rs_placement_layout lay = {.E = E, .S = S, .G = G, .N = N, .groups = 1};
        double *loads = malloc((size_t)L * E * sizeof *loads), *t = malloc((size_t)(L - 1) * E * E * sizeof *t);
        for (int i = 0; i < L * E; i++)
            loads[i] = (double)(next(&rng) % 100);
        for (int i = 0; i < (L - 1) * E * E; i++)
            t[i] = next(&rng) % 3 ? 0 : (double)(next(&rng) % 50);
        const double slack = (double)(c % 3) * 0.1;
        rs_placement *a = plan_affinity(L, loads, t, lay, slack), *b = plan_affinity(L, loads, t, lay, slack);
        const rs_placement_stats stats = {.L = L, .E = E, .loads = loads};
        const rs_placement_options options = {.layout = lay};
        rs_error err = {{0}};
        rs_placement *e = rs_placement_plan(rs_placement_policy_find("eplb"), &stats, &options, &err);
        ck_assert_msg(e != NULL, "%s", err.msg);
        ck_assert(memcmp(a->phy2log, b->phy2log, (size_t)L * S * sizeof *a->phy2log) == 0);
        ck_assert(memcmp(a->rank, b->rank, (size_t)L * S * sizeof *a->rank) == 0);
        ck_assert(memcmp(a->phy2log, e->phy2log, (size_t)S * sizeof *a->phy2log) == 0);
        ck_assert(memcmp(a->logcnt, e->logcnt, (size_t)L * E * sizeof *a->logcnt) == 0);
        rs_placement *again = rs_placement_copy(a, &err);
        ck_assert_msg(again != NULL, "case %d: %s", c, err.msg);
        rs_placement_free(again);
        rs_placement_free(a);
        rs_placement_free(b);
        rs_placement_free(e);
        free(loads);
        free(t);
    }
}
END_TEST

START_TEST(transitions_checked)
{
    const double loads[2 * 2] = {1, 2, 3, 4};
    const rs_placement_layout lay = {.E = 2, .S = 2, .G = 2, .N = 1, .groups = 1};
    const rs_placement_options options = {.layout = lay};
    const rs_placement_policy *affinity = rs_placement_policy_find("affinity");
    rs_error err = {{0}};
    const rs_placement_stats missing = {.L = 2, .E = 2, .loads = loads};
    ck_assert_ptr_null(rs_placement_plan(affinity, &missing, &options, &err));
    ck_assert_msg(strstr(err.msg, "placement affinity: needs layer-to-layer transitions, and none were collected"),
                  "%s", err.msg);
    const double bad[4] = {1, 2, -1, 0};
    const rs_placement_stats negative = {.L = 2, .E = 2, .loads = loads, .transitions = bad};
    ck_assert_ptr_null(rs_placement_plan(affinity, &negative, &options, &err));
    ck_assert_msg(strstr(err.msg, "transitions of layer 0 expert 1 to expert 0 is -1"), "%s", err.msg);
    const rs_placement_stats no_loads = {.L = 2, .E = 2, .transitions = bad};
    ck_assert_ptr_null(rs_placement_plan(affinity, &no_loads, &options, &err));
    ck_assert_msg(strstr(err.msg, "needs expert loads"), "%s", err.msg);
    /* one layer: nothing to follow, eplb's plan */
    const rs_placement_stats one = {.L = 1, .E = 2, .loads = loads};
    rs_placement *p = rs_placement_plan(affinity, &one, &options, &err);
    ck_assert_msg(p != NULL, "%s", err.msg);
    expect_row(p->phy2log, (const int[]){0, 1}, 2, 0);
    rs_placement_free(p);
}
END_TEST

Suite *placement_affinity_suite(void)
{
    Suite *s = suite_create("placement_affinity");
    TCase *tc = tcase_create("placement_affinity");
    tcase_add_test(tc, two_chains);
    tcase_add_test(tc, load_cap);
    tcase_add_test(tc, repair_under_the_cap);
    tcase_add_test(tc, replicas_and_ties);
    tcase_add_test(tc, random_cases);
    tcase_add_test(tc, transitions_checked);
    suite_add_tcase(s, tc);
    return s;
}
