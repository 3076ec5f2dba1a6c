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
 * lower group), 0 for the others. n_group <= RS_MAX_GROUPS. */
__attribute__((always_inline)) static inline void rs_keep_top_groups(const double *score, int n_group, int topk_group, uint8_t *keep)
{
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

/* Score of each group of `size` consecutive experts: its largest value
 * (top2 = 0) or the sum of its two largest (top2 = 1; a repeated maximum
 * counts twice, as torch.topk(2).sum() does). Groups of a multiple of 16
 * run on 16 lanes: the maximum, then how often it occurs and the largest
 * value below it; other sizes take a scalar pass. */
__attribute__((always_inline)) static inline void rs_group_scores(const float *v, int n_group, int size, int top2, double *score)
{
    for (int g = 0; g < n_group; g++) {
        const float *x = v + (size_t)g * (size_t)size;
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
        score[g] = top2 ? (double)(first + (ties > 1 ? first : second)) : (double)first;
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
