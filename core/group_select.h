/* The group step of group-limited routing (DeepSeek-V2/V3): score each
 * group of consecutive experts, keep the best groups, mask the others. Used
 * by the grouped routers and by the generator, which records the same rule,
 * so both select exactly alike. Ties go to the lower index, as in
 * routesim/select.h; everything works on the stack. */
#ifndef ROUTESIM_GROUP_SELECT_H
#define ROUTESIM_GROUP_SELECT_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "routesim/select.h"

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

/* rank[g] for g < width: how many of the n_group groups precede group g in
 * (-score, index) order. score holds width entries; those past n_group are
 * never compared against, only ranked. With a constant width the counts
 * stay in vector registers. */
__attribute__((always_inline)) static inline void rs_rank_groups(const double *score, int n_group, int width, int *rank)
{
    for (int g = 0; g < width; g++)
        rank[g] = 0;
    for (int h = 0; h < n_group; h++) {
        const double x = score[h];
        for (int g = 0; g < width; g++)
            rank[g] += (x > score[g]) | ((x == score[g]) & (h < g));
    }
}

/* Most groups whose ranks rs_keep_top_groups counts (more are inserted). */
#define RS_RANK_GROUPS 16

/* keep[g] = 1 for the topk_group groups with the largest scores (ties to the
 * lower group), 0 for the others. n_group <= RS_MAX_GROUPS. Up to
 * RS_RANK_GROUPS groups without a NaN score, the kept groups are those
 * ranked below topk_group, counted without branches: the groups the
 * insertion below keeps. More groups, or a NaN, take the insertion, whose
 * NaN rule is the reference. */
__attribute__((always_inline)) static inline void rs_keep_top_groups(const double *score, int n_group, int topk_group, uint8_t *keep)
{
    if (n_group <= RS_RANK_GROUPS) {
        double padded[RS_RANK_GROUPS];
        int any_nan = 0, rank[RS_RANK_GROUPS];
        for (int g = 0; g < RS_RANK_GROUPS; g++) {
            padded[g] = g < n_group ? score[g] : -INFINITY;
            any_nan |= padded[g] != padded[g];
        }
        if (!any_nan) {
            if (n_group <= 8)
                rs_rank_groups(padded, n_group, 8, rank);
            else
                rs_rank_groups(padded, n_group, RS_RANK_GROUPS, rank);
            for (int g = 0; g < n_group; g++)
                keep[g] = rank[g] < topk_group;
            return;
        }
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
 * fold the 16 lanes in halves, 8 groups at a time so that the groups'
 * folds overlap; the top two are the same values in any order, so the
 * scores equal rs_group_score_reference's. A group with a value that is not
 * finite, and other sizes, take rs_group_score_reference. Returns 1 when
 * every value of the row is finite. */
__attribute__((always_inline)) static inline int rs_group_scores(const float *v, int n_group, int size, int top2, double *score)
{
    int row_finite = 1;
    if (size % 16 != 0) {
        for (int j = 0; j < n_group * size; j++)
            row_finite &= v[j] - v[j] == 0.0f; /* NaN for a NaN or an infinity */
        for (int g = 0; g < n_group; g++)
            score[g] = rs_group_score_reference(v + (size_t)g * (size_t)size, size, top2);
        return row_finite;
    }
    for (int g0 = 0; g0 < n_group; g0 += 8) {
        const int batch = n_group - g0 < 8 ? n_group - g0 : 8;
        float m1[8][16], m2[8][16];
        int finite[8];
        for (int i = 0; i < batch; i++) {
            const float *x = v + (size_t)(g0 + i) * (size_t)size;
            int lane_finite[16];
            for (int j = 0; j < 16; j++) {
                m1[i][j] = x[j];
                m2[i][j] = -INFINITY;
                lane_finite[j] = x[j] - x[j] == 0.0f;
            }
            for (int b = 16; b < size; b += 16)
                for (int j = 0; j < 16; j++) {
                    float y = x[b + j], a = m1[i][j];
                    lane_finite[j] &= y - y == 0.0f;
                    if (top2) {
                        float lower = a > y ? y : a;
                        m2[i][j] = m2[i][j] > lower ? m2[i][j] : lower;
                    }
                    m1[i][j] = a > y ? a : y;
                }
            finite[i] = 1;
            for (int j = 0; j < 16; j++)
                finite[i] &= lane_finite[j];
        }
        for (int i = 0; i < batch; i++)
            rs_fold_top2(m1[i], m2[i], 8, top2);
        for (int i = 0; i < batch; i++)
            rs_fold_top2(m1[i], m2[i], 4, top2);
        for (int i = 0; i < batch; i++)
            rs_fold_top2(m1[i], m2[i], 2, top2);
        for (int i = 0; i < batch; i++)
            rs_fold_top2(m1[i], m2[i], 1, top2);
        for (int i = 0; i < batch; i++) {
            row_finite &= finite[i];
            score[g0 + i] = !finite[i] ? rs_group_score_reference(v + (size_t)(g0 + i) * (size_t)size, size, top2)
                            : top2     ? (double)(m1[i][0] + m2[i][0])
                                       : (double)m1[i][0];
        }
    }
    return row_finite;
}

/* Sets the experts of groups that are not kept to -inf, so a plain top-k
 * over the row selects within the kept groups only. Without branches (a
 * bit mask per group), so the stores are whole vectors. */
__attribute__((always_inline)) static inline uint32_t rs_masked_bits(float x, uint32_t masked)
{
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    return (bits & ~masked) | (0xff800000u & masked); /* -inf where masked */
}

__attribute__((always_inline)) static inline void rs_mask_groups(float *v, int n_group, int size, const uint8_t *keep)
{
    for (int g = 0; g < n_group; g++) {
        const uint32_t masked = keep[g] ? 0u : 0xffffffffu;
        float *x = v + (size_t)g * (size_t)size;
        int j = 0;
        for (; j + 16 <= size; j += 16) /* a constant trip count vectorises */
            for (int i = 0; i < 16; i++) {
                uint32_t bits = rs_masked_bits(x[j + i], masked);
                memcpy(&x[j + i], &bits, sizeof bits);
            }
        for (; j < size; j++) {
            uint32_t bits = rs_masked_bits(x[j], masked);
            memcpy(&x[j], &bits, sizeof bits);
        }
    }
}

/* Copies the experts of the kept groups, in index order, to out and returns
 * how many there are; first[i] is the expert that starts the i-th kept
 * group. Without branches: every group is stored, and the next one
 * overwrites it unless it is kept. out holds n_group * size floats and first
 * n_group + 1 entries. */
__attribute__((always_inline)) static inline int rs_gather_groups(const float *v, int n_group, int size,
                                                                  const uint8_t *keep, float *out, int32_t *first)
{
    int kept = 0;
    for (int g = 0; g < n_group; g++) {
        const float *x = v + (size_t)g * (size_t)size;
        float *to = out + (size_t)kept * (size_t)size;
        int j = 0;
        for (; j + 16 <= size; j += 16) /* a constant size: whole vectors, no call */
            memcpy(to + j, x + j, 16 * sizeof *to);
        for (; j < size; j++)
            to[j] = x[j];
        first[kept] = g * size;
        kept += keep[g] != 0;
    }
    return kept * size;
}

/* rs_topk_indices out of line: inlined into a router's large loop, its
 * ranking loses its vector registers (the compiler goes scalar there). */
RS_VECTOR_CLONES __attribute__((noinline, unused)) static void rs_topk_indices_apart(const float *v, int n, int k,
                                                                                   int32_t *idx, float *vals)
{
    rs_topk_indices(v, n, k, idx, vals);
}

/* ids[0..k) = the k largest of v within the kept groups, ordered by
 * (-v, index): what ranking row = v with the other groups at -inf
 * (rs_mask_groups) selects, which a row with a value that is not finite
 * does. For a finite row (rs_group_scores' result) the kept groups are
 * gathered into row and ranked alone: the same ids, with fewer values to
 * rank. row holds n_group * size floats, vals k. */
__attribute__((always_inline)) static inline void rs_topk_in_groups(const float *v, int n_group, int size,
                                                                    const uint8_t *keep, int finite, int k,
                                                                    float *row, int32_t *ids, float *vals)
{
    if (!finite) {
        memcpy(row, v, (size_t)n_group * (size_t)size * sizeof *row);
        rs_mask_groups(row, n_group, size, keep);
        rs_topk_indices(row, n_group * size, k, ids, vals);
        return;
    }
    int32_t first[RS_MAX_GROUPS + 1];
    const int n = rs_gather_groups(v, n_group, size, keep, row, first);
    rs_topk_indices_apart(row, n, k, ids, vals);
    for (int j = 0; j < k; j++) /* -1 stays: only a NaN row leaves a slot empty */
        ids[j] = ids[j] < 0 ? -1 : first[ids[j] / size] + ids[j] % size;
}

#endif
