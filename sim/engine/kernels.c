#include "sim/engine/kernels.h"

#include <math.h>
#include <string.h>

#include "routesim/fastmath.h"
#include "routesim/vector.h"

float rs_expf(float x) { return rs_fast_expf(x); }

RS_VECTOR_CLONES
void rs_softmax_row(const float *z, float *p, int E, rs_softmax_stat *stat)
{
    /* Fixed-lane maximum and sums: registers, and the same order on every
     * vector width. */
    float max_lane[RS_LANES], sum_lane[RS_LANES] = {0}, dot_lane[RS_LANES] = {0};
    for (int j = 0; j < RS_LANES; j++)
        max_lane[j] = z[0];
    int b = 0;
    for (; b + RS_LANES <= E; b += RS_LANES) {
#pragma omp simd
        for (int j = 0; j < RS_LANES; j++)
            max_lane[j] = z[b + j] > max_lane[j] ? z[b + j] : max_lane[j];
    }
    for (int j = 0; b + j < E; j++)
        max_lane[j] = z[b + j] > max_lane[j] ? z[b + j] : max_lane[j];
    float max = max_lane[0];
    for (int j = 1; j < RS_LANES; j++)
        max = max_lane[j] > max ? max_lane[j] : max;
    /* e^(z - max), its sum and sum e^(z - max) (z - max) in one pass; the
     * floor keeps x finite when z - max overflows */
    for (b = 0; b + RS_LANES <= E; b += RS_LANES) {
#pragma omp simd
        for (int j = 0; j < RS_LANES; j++) {
            float x = z[b + j] - max;
            x = x > RS_EXP_FLOOR ? x : RS_EXP_FLOOR;
            float ex = rs_fast_expf_nonpos(x);
            p[b + j] = ex;
            sum_lane[j] += ex;
            dot_lane[j] = fmaf(ex, x, dot_lane[j]);
        }
    }
    for (int j = 0; b + j < E; j++) {
        float x = z[b + j] - max;
        x = x > RS_EXP_FLOOR ? x : RS_EXP_FLOOR;
        float ex = rs_fast_expf_nonpos(x);
        p[b + j] = ex;
        sum_lane[j] += ex;
        dot_lane[j] = fmaf(ex, x, dot_lane[j]);
    }
    double sum = 0.0, dot = 0.0;
    for (int j = 0; j < RS_LANES; j++) {
        sum += sum_lane[j];
        dot += dot_lane[j];
    }
    float inv = (float)(1.0 / sum);
#pragma omp simd
    for (int k = 0; k < E; k++)
        p[k] *= inv;
    /* sum >= 1 (the maximum's term) and dot <= 0: both parts of the
     * entropy are >= 0, and nothing cancels */
    const double log_norm = log(sum), shifted_mean = dot / sum;
    stat->lse = (double)max + log_norm;
    stat->mean_logit = (double)max + shifted_mean;
    stat->log_norm = log_norm;
    stat->entropy = log_norm - shifted_mean;
}

void rs_softmax_rows(const float *z, float *p, rs_softmax_stat *stats, size_t rows, int E)
{
    for (size_t r = 0; r < rows; r++)
        rs_softmax_row(z + r * (size_t)E, p + r * (size_t)E, E, &stats[r]);
}

RS_VECTOR_CLONES
int rs_any_nonfinite(const float *x, size_t count)
{
    uint32_t bad = 0;
#pragma omp simd reduction(| : bad)
    for (size_t i = 0; i < count; i++)
        bad |= (rs_float_bits(x[i]) & 0x7f800000u) == 0x7f800000u;
    return bad != 0;
}

int64_t rs_first_nonfinite(const float *x, size_t count)
{
    if (!rs_any_nonfinite(x, count))
        return -1;
    for (size_t i = 0; i < count; i++)
        if (!isfinite(x[i]))
            return (int64_t)i;
    return -1;
}
