/* The group step of group-limited routing (DeepSeek-V2/V3): score each
 * group of consecutive experts, keep the best groups, mask the others. Used
 * by the grouped routers and by the generator, which records the same rule,
 * so both select exactly alike. Ties go to the lower index, as in
 * routesim/select.h; everything works on the stack. */
#ifndef ROUTESIM_GROUP_SELECT_H
#define ROUTESIM_GROUP_SELECT_H

#include <math.h>
#include <stdint.h>

/* Most groups a group-limited router accepts (stack arrays of this size). */
#define RS_MAX_GROUPS 1024

/* Inserts (x, e) into the descending list vals/idx of m <= k entries.
 * Candidates arrive in increasing index order, so strict comparisons keep
 * the lower index first on ties. A NaN never displaces an entry. */
__attribute__((always_inline)) static inline void rs_topk_insert_double(double x, int32_t e, int k, int *m, int32_t *idx, double *vals)
{
    int pos;
    if (*m == k) {
        if (!(x > vals[k - 1]))
            return;
        pos = k - 1;
    } else {
        pos = (*m)++;
    }
    while (pos > 0 && x > vals[pos - 1]) {
        vals[pos] = vals[pos - 1];
        idx[pos] = idx[pos - 1];
        pos--;
    }
    vals[pos] = x;
    idx[pos] = e;
}

/* keep[g] = 1 for the topk_group groups with the largest scores (ties to the
 * lower group), 0 for the others. n_group <= RS_MAX_GROUPS. Up to
 * RS_RANK_GROUPS groups without a NaN score, each group's rank (how many
 * groups precede it in (-score, index) order) is counted without branches,
 * which keeps the same groups as the insertion below; more groups, or a NaN,
 * take the insertion, whose NaN rule is the reference. */
#define RS_RANK_GROUPS 32

__attribute__((always_inline)) static inline void rs_keep_top_groups(const double *score, int n_group, int topk_group, uint8_t *keep)
{
    int any_nan = 0;
    for (int g = 0; g < n_group && g < RS_RANK_GROUPS; g++)
        any_nan |= score[g] != score[g];
    if (n_group <= RS_RANK_GROUPS && !any_nan) {
        for (int g = 0; g < n_group; g++) {
            int rank = 0;
            for (int h = 0; h < n_group; h++)
                rank += (score[h] > score[g]) | ((score[h] == score[g]) & (h < g));
            keep[g] = rank < topk_group;
        }
        return;
    }
    int32_t kept[RS_MAX_GROUPS];
    double vals[RS_MAX_GROUPS];
    int m = 0;
    for (int g = 0; g < n_group; g++) {
        keep[g] = 0;
        rs_topk_insert_double(score[g], g, topk_group, &m, kept, vals);
    }
    for (int i = 0; i < m; i++)
        keep[kept[i]] = 1;
}

/* Largest of 16 lanes, by halving: vertical operations only. */
__attribute__((always_inline)) static inline float rs_lanes_max16(float *a)
{
    for (int w = 8; w > 0; w /= 2)
        for (int j = 0; j < w; j++)
            a[j] = a[j] > a[j + w] ? a[j] : a[j + w];
    return a[0];
}

/* The score of one group of `size` experts as rs_group_scores defines it,
 * in the reference order of operations: groups of a multiple of 16 on 16
 * lanes (the maximum, then how often it occurs and the largest value below
 * it), other sizes by a scalar pass. Groups holding a NaN are scored here,
 * so a NaN acts exactly as it always has. */
__attribute__((always_inline)) static inline double rs_group_score_reference(const float *x, int size, int top2)
{
    float first, second = -INFINITY;
    int ties = 0;
    if (size % 16 == 0) {
        float lane[16], below[16];
        int count[16];
        for (int j = 0; j < 16; j++)
            lane[j] = x[j];
        for (int b = 16; b < size; b += 16)
            for (int j = 0; j < 16; j++)
                lane[j] = x[b + j] > lane[j] ? x[b + j] : lane[j];
        first = rs_lanes_max16(lane);
        if (top2) {
            for (int j = 0; j < 16; j++) {
                below[j] = -INFINITY;
                count[j] = 0;
            }
            for (int b = 0; b < size; b += 16) {
                for (int j = 0; j < 16; j++) {
                    float y = x[b + j];
                    count[j] += y == first;
                    below[j] = y < first && y > below[j] ? y : below[j];
                }
            }
            for (int j = 0; j < 16; j++)
                ties += count[j];
            second = rs_lanes_max16(below);
        }
    } else {
        first = x[0];
        for (int j = 1; j < size; j++)
            first = x[j] > first ? x[j] : first;
        for (int j = 0; top2 && j < size; j++) {
            ties += x[j] == first;
            second = x[j] < first && x[j] > second ? x[j] : second;
        }
    }
    return top2 ? (double)(first + (ties > 1 ? first : second)) : (double)first;
}

/* Folds lanes [w, 2w) into lanes [0, w): each lane keeps the largest value
 * (m1) and, with top2, the second largest counting a repeated maximum twice
 * (m2). Called with constant widths, so each fold is a few vector
 * operations. */
__attribute__((always_inline)) static inline void rs_fold_top2(float *m1, float *m2, int w, int top2)
{
    for (int j = 0; j < w; j++) {
        float a = m1[j], b = m1[j + w];
        if (top2) {
            float lower = a > b ? b : a, below = m2[j] > m2[j + w] ? m2[j] : m2[j + w];
            m2[j] = below > lower ? below : lower;
        }
        m1[j] = a > b ? a : b;
    }
}

/* Score of each group of `size` consecutive experts: its largest value
 * (top2 = 0) or the sum of its two largest (top2 = 1; a repeated maximum
 * counts twice, as torch.topk(2).sum() does). Groups of a multiple of 16
 * keep each lane's largest and second largest over the blocks of 16, then
 * fold the 16 lanes in halves; the top two are the same values in any
 * order, so the scores equal rs_group_score_reference's. A group with a NaN
 * and other sizes take rs_group_score_reference. */
__attribute__((always_inline)) static inline void rs_group_scores(const float *v, int n_group, int size, int top2, double *score)
{
    for (int g = 0; g < n_group; g++) {
        const float *x = v + (size_t)g * (size_t)size;
        if (size % 16 != 0) {
            score[g] = rs_group_score_reference(x, size, top2);
            continue;
        }
        float m1[16], m2[16];
        int nan[16];
        for (int j = 0; j < 16; j++) {
            m1[j] = x[j];
            m2[j] = -INFINITY;
            nan[j] = x[j] != x[j];
        }
        for (int b = 16; b < size; b += 16)
            for (int j = 0; j < 16; j++) {
                float y = x[b + j], a = m1[j];
                nan[j] |= y != y;
                if (top2) {
                    float lower = a > y ? y : a;
                    m2[j] = m2[j] > lower ? m2[j] : lower;
                }
                m1[j] = a > y ? a : y;
            }
        int any_nan = 0;
        for (int j = 0; j < 16; j++)
            any_nan |= nan[j];
        if (any_nan) {
            score[g] = rs_group_score_reference(x, size, top2);
            continue;
        }
        rs_fold_top2(m1, m2, 8, top2);
        rs_fold_top2(m1, m2, 4, top2);
        rs_fold_top2(m1, m2, 2, top2);
        rs_fold_top2(m1, m2, 1, top2);
        score[g] = top2 ? (double)(m1[0] + m2[0]) : (double)m1[0];
    }
}

/* Sets the experts of groups that are not kept to -inf, so a plain top-k
 * over the row selects within the kept groups only. */
__attribute__((always_inline)) static inline void rs_mask_groups(float *v, int n_group, int size, const uint8_t *keep)
{
    for (int g = 0; g < n_group; g++)
        if (!keep[g])
            for (int j = g * size; j < (g + 1) * size; j++)
                v[j] = -INFINITY;
}

#endif
