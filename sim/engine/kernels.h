/* Engine kernels over rows of E values: plain loops over arrays. */
#ifndef ROUTESIM_KERNELS_H
#define ROUTESIM_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* One softmax row's statistics, in double. lse and mean_logit carry the
 * shift max_e z_e; log_norm and entropy do not, so they keep every digit
 * for any finite logits (a shift of 1e20 would round log E away). */
typedef struct rs_softmax_stat {
    double lse;        /* log sum_e e^z_e */
    double mean_logit; /* sum_e p_e z_e */
    double log_norm;   /* log sum_e e^(z_e - max): lse - max, >= 0 */
    double entropy;    /* -sum_e p_e log p_e = log_norm - sum_e p_e (z_e - max), >= 0, nats */
} rs_softmax_stat;

/* Softmax of one row z[0..E) into p and its statistics into *stat, from
 * the unrounded exponentials. Exponents below the float range's e^-87.3
 * count as -87.3 (rs_fast_expf_nonpos), in p and in the sums alike, so a
 * logit far below the others weighs nothing instead of e^-87.3 times
 * itself. */
void rs_softmax_row(const float *z, float *p, int E, rs_softmax_stat *stat);

/* Row-wise softmax of rows consecutive rows (convenience for tests). */
void rs_softmax_rows(const float *z, float *p, rs_softmax_stat *stats, size_t rows, int E);

/* exp(x) for x <= 0 to about 1 ulp (Cephes polynomial); results below
 * FLT_MIN flush to 0. Vectorizes in loops. */
float rs_expf(float x);

/* 1 if any of x[0..count) is NaN or infinite. */
int rs_any_nonfinite(const float *x, size_t count);
/* Index of the first non-finite value of x[0..count), or -1. */
int64_t rs_first_nonfinite(const float *x, size_t count);

#endif
