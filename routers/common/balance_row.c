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

/* Insertion of every element in index order, with whole blocks skipped when
 * none of them beats the current k-th value: the insertion would reject each
 * of them (it takes x only when x > vals[k - 1]) and leave the list as it
 * is, so the skip changes nothing, NaNs and signed zeros included. */
RS_VECTOR_CLONES
int rs_balance_topk(const double *v, int n, int k, int32_t *idx, double *vals)
{
    int m = 0, e = 0, nan = 0;
    for (; e < n && m < k; e++) {
        nan |= v[e] != v[e];
        rs_topk_insert_double(v[e], e, k, &m, idx, vals);
    }
    for (; e + TOPK_BLOCK <= n; e += TOPK_BLOCK) {
        const double kth = vals[k - 1];
        int any = 0;
        for (int j = 0; j < TOPK_BLOCK; j++) {
            any |= v[e + j] > kth;
            nan |= v[e + j] != v[e + j];
        }
        if (!any)
            continue;
        for (int j = 0; j < TOPK_BLOCK; j++)
            rs_topk_insert_double(v[e + j], e + j, k, &m, idx, vals);
    }
    for (; e < n; e++) {
        nan |= v[e] != v[e];
        rs_topk_insert_double(v[e], e, k, &m, idx, vals);
    }
    return nan;
}
