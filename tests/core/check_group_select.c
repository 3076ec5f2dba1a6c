/* The group step of group-limited routing against plain references: the
 * group scores of the 16-lane folds against rs_group_score_reference (the
 * maximum, its count and the largest value below it), the kept groups
 * against insertion into a sorted list, and the top-k within the kept
 * groups against insertion over the whole row with the other groups at
 * -inf. Rows draw from a few values so that ties are common; some rows
 * hold a NaN or an infinity. The hand case is computed by hand below. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/group_select.h"

#define MAX_E 512

/* Deterministic values in {-1, -0.5, ..., 1.5}, occasionally a NaN or an
 * infinity when special is set. */
static float draw(uint64_t *state, int special)
{
    *state = *state * 6364136223846793005ull + 1442695040888963407ull;
    const unsigned r = (unsigned)(*state >> 33);
    if (special && r % 97 == 0)
        return (r / 97) % 3 == 0 ? NAN : (r / 97) % 3 == 1 ? INFINITY : -INFINITY;
    return (float)((int)(r % 6) - 2) * 0.5f;
}

/* keep by insertion: the topk_group largest, ties to the lower group */
static void keep_by_insertion(const double *score, int n_group, int topk_group, uint8_t *keep)
{
    int32_t kept[RS_MAX_GROUPS];
    double vals[RS_MAX_GROUPS];
    int m = 0;
    memset(keep, 0, (size_t)n_group);
    for (int g = 0; g < n_group; g++)
        rs_topk_insert_double(score[g], g, topk_group, &m, kept, vals);
    for (int i = 0; i < m; i++)
        keep[kept[i]] = 1;
}

START_TEST(hand_case_repeated_maximum_counts_twice)
{
    /* two groups of 16: group 0 holds 3 twice and 2 elsewhere (score
     * 3 + 3 = 6); group 1 holds 5 once and 4 once (5 + 4 = 9), so with
     * topk_group = 1 group 1 stays and the top 2 are experts 16+7 (5) and
     * 16+2 (4). */
    float v[32];
    for (int j = 0; j < 32; j++)
        v[j] = j < 16 ? 2.0f : 1.0f;
    v[4] = v[11] = 3.0f;
    v[16 + 7] = 5.0f;
    v[16 + 2] = 4.0f;
    double score[2];
    ck_assert_int_eq(rs_group_scores(v, 2, 16, 1, score), 1);
    ck_assert(score[0] == 6.0 && score[1] == 9.0);
    ck_assert_int_eq(rs_group_scores(v, 2, 16, 0, score), 1);
    ck_assert(score[0] == 3.0 && score[1] == 5.0);
    uint8_t keep[2];
    rs_keep_top_groups((double[]){6.0, 9.0}, 2, 1, keep);
    ck_assert(!keep[0] && keep[1]);
    float row[32], vals[2];
    int32_t ids[2];
    rs_topk_in_groups(v, 2, 16, keep, 1, 2, row, ids, vals);
    ck_assert_int_eq(ids[0], 23);
    ck_assert_int_eq(ids[1], 18);
}
END_TEST

START_TEST(scores_keep_and_topk_match_the_references)
{
    static const int sizes[] = {16, 32, 48, 64, 7, 2};
    static const int groups[] = {1, 2, 3, 8, 16, 17};
    uint64_t state = 42;
    for (int si = 0; si < 6; si++)
        for (int gi = 0; gi < 6; gi++) {
            const int size = sizes[si], n_group = groups[gi], E = size * n_group;
            if (E > MAX_E)
                continue;
            for (int trial = 0; trial < 200; trial++) {
                const int special = trial % 4 == 3;
                float v[MAX_E];
                int finite_row = 1;
                for (int e = 0; e < E; e++) {
                    v[e] = draw(&state, special);
                    finite_row &= isfinite(v[e]) != 0;
                }
                for (int top2 = 0; top2 <= 1; top2++) {
                    double score[RS_MAX_GROUPS];
                    ck_assert_int_eq(rs_group_scores(v, n_group, size, top2, score), finite_row);
                    for (int g = 0; g < n_group; g++) {
                        const double want = rs_group_score_reference(v + g * size, size, top2);
                        ck_assert_msg(score[g] == want || (isnan(score[g]) && isnan(want)),
                                      "size %d group %d top2 %d: %g, reference %g", size, g, top2, score[g], want);
                    }
                    for (int topk_group = 1; topk_group <= n_group; topk_group += 2) {
                        uint8_t keep[RS_MAX_GROUPS], want_keep[RS_MAX_GROUPS];
                        rs_keep_top_groups(score, n_group, topk_group, keep);
                        keep_by_insertion(score, n_group, topk_group, want_keep);
                        ck_assert_mem_eq(keep, want_keep, (size_t)n_group);
                        const int k = topk_group * size < 5 ? topk_group * size : 5;
                        float row[MAX_E], masked[MAX_E], vals[8];
                        int32_t ids[8], want_ids[8];
                        rs_topk_in_groups(v, n_group, size, keep, finite_row, k, row, ids, vals);
                        memcpy(masked, v, (size_t)E * sizeof *masked);
                        rs_mask_groups(masked, n_group, size, keep);
                        if (!finite_row)
                            continue; /* ranked as the masked row: that path is the reference */
                        rs_topk_insert_row(masked, E, k, want_ids, vals);
                        ck_assert_mem_eq(ids, want_ids, (size_t)k * sizeof *ids);
                        for (int j = 0; j < k; j++) /* never an expert of a masked group */
                            ck_assert(keep[ids[j] / size]);
                    }
                }
            }
        }
}
END_TEST

Suite *group_select_suite(void)
{
    Suite *s = suite_create("group_select");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, hand_case_repeated_maximum_counts_twice);
    tcase_add_test(tc, scores_keep_and_topk_match_the_references);
    suite_add_tcase(s, tc);
    return s;
}
