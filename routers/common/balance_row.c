/* The per-row kernels of the balancing routers (balance_util.h): scores in
 * double precision with libm's exp, and the top-k of a row of doubles.
 * Only the loops around exp are vectorised, and only where a vector gives
 * the bits the scalar loop gives: maxima, comparisons, and element-wise
 * divisions (IEEE division is correctly rounded at every width). Every sum
 * keeps its index order. */
#include <math.h>

#include "routers/common/balance_util.h"
#include "core/group_select.h"
#include "routesim/select.h"

/* Doubles per step of the top-k filter: two AVX-512 vectors. */
#define TOPK_BLOCK 16

/* The maximum of z[0..E) as the loop `m = z[0]; m = z[e] > m ? z[e] : m`
 * finds it: z[0] when it is a NaN, else the largest of the other numbers
 * and z[0], the first zero in index order when that is 0 (-0 and +0 tie, and
 * the loop keeps the first). Float comparisons order the values as their
 * double conversions do, so RS_LANES float lanes find the same value. */
__attribute__((always_inline)) static inline double row_max(const float *z, int E)
{
    if (E < 2 * RS_LANES || z[0] != z[0]) {
        double max = z[0];
        for (int e = 1; e < E; e++)
            max = z[e] > max ? z[e] : max;
        return max;
    }
    float lane[RS_LANES];
    for (int j = 0; j < RS_LANES; j++) /* a number: no lane holds on to a NaN */
        lane[j] = z[0];
    int e = 0;
    for (; e + RS_LANES <= E; e += RS_LANES) {
        RS_OMP_SIMD
        for (int j = 0; j < RS_LANES; j++)
            lane[j] = z[e + j] > lane[j] ? z[e + j] : lane[j];
    }
    for (int j = 0; e + j < E; j++)
        lane[j] = z[e + j] > lane[j] ? z[e + j] : lane[j];
    float max = rs_lanes_max16(lane);
    if (max == 0.0f) /* which zero: the first in index order */
        for (e = 0; e < E; e++)
            if (z[e] == 0.0f)
                return z[e];
    return max;
}

/* Element-wise: each quotient is correctly rounded at any vector width. */
__attribute__((always_inline)) static inline void divide_row(double *row, int E, double sum)
{
    RS_OMP_SIMD
    for (int e = 0; e < E; e++)
        row[e] /= sum;
}

RS_VECTOR_CLONES
double rs_balance_row_max(const float *z, int E) { return row_max(z, E); }

RS_VECTOR_CLONES
double rs_balance_log_norm(const float *z, int E, double *max)
{
    double m = row_max(z, E);
    double sum = 0.0;
    for (int e = 0; e < E; e++)
        sum += exp((double)z[e] - m);
    *max = m;
    return log(sum);
}

RS_VECTOR_CLONES
void rs_balance_softmax(const float *z, int E, double *p)
{
    double max = row_max(z, E);
    double sum = 0.0;
    for (int e = 0; e < E; e++) { /* in index order: exp is the floor, the sum's order is fixed */
        p[e] = exp((double)z[e] - max);
        sum += p[e];
    }
    divide_row(p, E, sum);
}

RS_VECTOR_CLONES
void rs_balance_divide(double *row, int E, double sum) { divide_row(row, E, sum); }

RS_VECTOR_CLONES
void rs_balance_sigmoid(const float *z, int E, double *s)
{
    for (int e = 0; e < E; e++)
        s[e] = exp(-(double)z[e]);
    RS_OMP_SIMD
    for (int e = 0; e < E; e++)
        s[e] = 1.0 / (1.0 + s[e]);
}

/* Insertion of every element in index order, skipping the elements that
 * are not above the current k-th value once the list is full: the insertion
 * rejects such an element (it takes x only when x > vals[k - 1]) and leaves
 * the list as it is, and vals[k - 1] only grows, so the skip changes nothing,
 * signed zeros included. A block's mask marks the elements not at or below
 * the k-th value: those above it, and NaNs, which are inserted (and so
 * rejected) as before. */
__attribute__((always_inline)) static inline int topk_streaming(const double *v, int n, int k, int32_t *idx,
                                                                double *vals)
{
    int m = 0, e = 0, nan = 0;
    for (; e < n && m < k; e++) {
        nan |= v[e] != v[e];
        rs_topk_insert_double(v[e], e, k, &m, idx, vals);
    }
    for (; e + TOPK_BLOCK <= n; e += TOPK_BLOCK) {
        const double kth = vals[k - 1];
        uint32_t mask = 0;
        for (int j = 0; j < TOPK_BLOCK; j++)
            mask |= (uint32_t) !(v[e + j] <= kth) << j;
        for (; mask; mask &= mask - 1) {
            int at = e + __builtin_ctz(mask);
            nan |= v[at] != v[at];
            rs_topk_insert_double(v[at], at, k, &m, idx, vals);
        }
    }
    for (; e < n; e++) {
        nan |= v[e] != v[e];
        rs_topk_insert_double(v[e], e, k, &m, idx, vals);
    }
    return nan;
}

/* Most blocks topk_above_block_maxima handles (its scratch is on the stack). */
#define TOPK_MAX_BLOCKS 64

/* The largest of a block of TOPK_BLOCK = 16 doubles, by halving: vertical
 * operations only. */
__attribute__((always_inline)) static inline double block_max(const double *x)
{
    double a[8], b[4];
    for (int j = 0; j < 8; j++)
        a[j] = x[j] > x[j + 8] ? x[j] : x[j + 8];
    for (int j = 0; j < 4; j++)
        b[j] = a[j] > a[j + 4] ? a[j] : a[j + 4];
    double c0 = b[0] > b[2] ? b[0] : b[2], c1 = b[1] > b[3] ? b[1] : b[3];
    return c0 > c1 ? c0 : c1;
}

/* The same selection for rows without NaNs (else it returns 1 and leaves
 * the work to topk_streaming). The maxima of the whole blocks are distinct
 * elements, so the k-th largest of them, tau, has k elements at or above
 * it: no element below tau is among the k best, and inserting only the
 * others, in index order, gives the list that inserting all of them gives.
 * Only the blocks whose maximum reaches tau (about k of them) are read
 * again. */
__attribute__((always_inline)) static inline int topk_above_block_maxima(const double *v, int n, int k, int32_t *idx,
                                                                         double *vals)
{
    const int blocks = n / TOPK_BLOCK, blocks_end = blocks * TOPK_BLOCK;
    double top[TOPK_MAX_BLOCKS], lane_sum[TOPK_BLOCK] = {0};
    for (int b = 0; b < blocks; b++) {
        top[b] = block_max(v + b * TOPK_BLOCK);
        for (int j = 0; j < TOPK_BLOCK; j++) /* a NaN anywhere makes its lane's sum a NaN */
            lane_sum[j] += v[b * TOPK_BLOCK + j];
    }
    int nan = 0;
    for (int j = 0; j < TOPK_BLOCK; j++)
        nan |= lane_sum[j] != lane_sum[j]; /* also after inf - inf: then the other path, as exact */
    for (int e = blocks_end; e < n; e++)
        nan |= v[e] != v[e];
    if (nan)
        return 1;
    int m = 0;
    for (int b = 0; b < blocks; b++) /* tau: the k-th largest block maximum */
        rs_topk_insert_double(top[b], b, k, &m, idx, vals);
    const double tau = vals[k - 1];
    m = 0;
    for (int b = 0; b < blocks; b++) {
        if (top[b] < tau)
            continue;
        const double *x = v + b * TOPK_BLOCK;
        uint32_t mask = 0; /* the block's elements at or above tau, one bit each */
        for (int j = 0; j < TOPK_BLOCK; j++)
            mask |= (uint32_t)(x[j] >= tau) << j;
        for (; mask; mask &= mask - 1) {
            int e = b * TOPK_BLOCK + __builtin_ctz(mask);
            rs_topk_insert_double(v[e], e, k, &m, idx, vals);
        }
    }
    for (int e = blocks_end; e < n; e++)
        if (v[e] >= tau)
            rs_topk_insert_double(v[e], e, k, &m, idx, vals);
    return 0;
}

RS_VECTOR_CLONES
int rs_balance_topk(const double *v, int n, int k, int32_t *idx, double *vals)
{
    if (n >= 4 * TOPK_BLOCK && n / TOPK_BLOCK <= TOPK_MAX_BLOCKS && k <= n / TOPK_BLOCK &&
        topk_above_block_maxima(v, n, k, idx, vals) == 0)
        return 0;
    return topk_streaming(v, n, k, idx, vals);
}
