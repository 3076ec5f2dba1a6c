/* Engine kernels over rows of E values: plain loops over arrays. */
#ifndef ROUTESIM_KERNELS_H
#define ROUTESIM_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* Softmax of one row z[0..E) into p, returning log-sum-exp in *lse and the
 * expected logit sum_e p_e z_e in *mean_logit (both in double, from the
 * unrounded exponentials, so -sum p log p = lse - mean_logit exactly). */
void rs_softmax_row(const float *z, float *p, int E, double *lse, double *mean_logit);

/* Row-wise softmax of rows consecutive rows (convenience for tests). */
void rs_softmax_rows(const float *z, float *p, double *lse, size_t rows, int E);

/* exp(x) for x <= 0 to about 1 ulp (Cephes polynomial); results below
 * FLT_MIN flush to 0. Vectorizes in loops. */
float rs_expf(float x);

/* 1 if any of x[0..count) is NaN or infinite. */
int rs_any_nonfinite(const float *x, size_t count);
/* Index of the first non-finite value of x[0..count), or -1. */
int64_t rs_first_nonfinite(const float *x, size_t count);

#endif
