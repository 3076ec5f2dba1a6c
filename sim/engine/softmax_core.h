/* The arithmetic of one softmax row, shared by the CPU kernel
 * (kernels.c rs_softmax_row) and the device path (engine_device.c), so that
 * both give the same bits: fixed-lane maximum and sums (the same order on
 * every vector width and on the device), exponentials written with fmaf
 * (IEEE fma everywhere), no libm call. What needs a logarithm (lse,
 * entropy) is left to the caller. */
#ifndef ROUTESIM_SOFTMAX_CORE_H
#define ROUTESIM_SOFTMAX_CORE_H

#include <math.h>

#include "routesim/fastmath.h"
#include "routesim/vector.h"

/* Writes p = e^(z - max) / sum to p[0..E) and returns max; *sum_out is
 * sum_e e^(z_e - max) (>= 1) and *dot_out sum_e e^(z_e - max) (z_e - max)
 * (<= 0), from the unrounded exponentials. */
__attribute__((always_inline)) static inline float rs_softmax_core(const float *z, float *p, int E, double *sum_out,
                                                                   double *dot_out)
{
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
    *sum_out = sum;
    *dot_out = dot;
    return max;
}

#endif
