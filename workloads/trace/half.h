/* IEEE binary16 and bfloat16 conversions (round to nearest even). */
#ifndef ROUTESIM_HALF_H
#define ROUTESIM_HALF_H

#include <stddef.h>
#include <stdint.h>

/* The widening rules also run on an offload device (sim/engine/engine_device.c). */
#pragma omp declare target
float rs_half_to_float(uint16_t h);
float rs_bf16_to_float(uint16_t b);
#pragma omp end declare target
uint16_t rs_float_to_half(float f);
uint16_t rs_float_to_bf16(float f);

void rs_half_to_float_n(const uint16_t *in, float *out, size_t n);
void rs_bf16_to_float_n(const uint16_t *in, float *out, size_t n);

/* rows rows of n words, in_stride and out_stride elements apart (one
 * layer of a chunk's tokens), unchecked. */
void rs_half_to_float_rows(const uint16_t *in, size_t in_stride, float *out, size_t out_stride, int rows, size_t n);
void rs_bf16_to_float_rows(const uint16_t *in, size_t in_stride, float *out, size_t out_stride, int rows, size_t n);

/* The same as _n, returning 1 when any input is NaN or infinite (all exponent
 * bits set), checked on the 16-bit words in the same pass. */
int rs_half_to_float_checked(const uint16_t *in, float *out, size_t n);
int rs_bf16_to_float_checked(const uint16_t *in, float *out, size_t n);

/* Only the check: 1 when any of the n words is NaN or infinite. */
int rs_half_any_nonfinite(const uint16_t *in, size_t n);
int rs_bf16_any_nonfinite(const uint16_t *in, size_t n);

#endif
