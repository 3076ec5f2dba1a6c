#include "workloads/trace/half.h"

#include "routesim/vector.h"

#include <string.h>

static inline uint32_t float_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

#pragma omp declare target
static inline float bits_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

float rs_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0x1f) /* inf or NaN */
        return bits_float(sign | 0x7f800000u | (mant << 13));
    if (exp == 0) {
        /* zero or subnormal: value = mant * 2^-24, exact in float */
        float v = (float)mant * 0x1p-24f;
        return sign ? -v : v;
    }
    return bits_float(sign | ((exp + 112u) << 23) | (mant << 13));
}

float rs_bf16_to_float(uint16_t b) { return bits_float((uint32_t)b << 16); }
#pragma omp end declare target

uint16_t rs_float_to_half(float f)
{
    uint32_t u = float_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t abs = u & 0x7fffffffu;
    if (abs >= 0x7f800000u) /* inf or NaN (keep a quiet NaN) */
        return (uint16_t)(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0u));
    if (abs >= 0x477ff000u) /* rounds to >= 65520: overflow to inf */
        return (uint16_t)(sign | 0x7c00u);
    if (abs < 0x38800000u) {
        /* result is subnormal or zero: round abs * 2^24 to an integer */
        float a = bits_float(abs);
        float scaled = a * 0x1p24f; /* exact: a < 2^-14 */
        uint32_t q = (uint32_t)scaled;
        float rem = scaled - (float)q;
        if (rem > 0.5f || (rem == 0.5f && (q & 1u)))
            q++;
        return (uint16_t)(sign | q);
    }
    /* normal: drop 13 mantissa bits with round to nearest even */
    uint32_t rounded = abs + 0xfffu + ((abs >> 13) & 1u);
    return (uint16_t)(sign | ((rounded - 0x38000000u) >> 13));
}

uint16_t rs_float_to_bf16(float f)
{
    uint32_t u = float_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x40u); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

RS_VECTOR_CLONES
void rs_half_to_float_n(const uint16_t *in, float *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = rs_half_to_float(in[i]);
}

RS_VECTOR_CLONES
void rs_bf16_to_float_n(const uint16_t *in, float *out, size_t n)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++)
        out[i] = bits_float((uint32_t)in[i] << 16);
}

RS_VECTOR_CLONES
int rs_half_to_float_checked(const uint16_t *in, float *out, size_t n)
{
    unsigned bad = 0;
#pragma omp simd reduction(| : bad)
    for (size_t i = 0; i < n; i++) {
        out[i] = rs_half_to_float(in[i]);
        bad |= (in[i] & 0x7c00u) == 0x7c00u;
    }
    return bad != 0;
}

RS_VECTOR_CLONES
int rs_bf16_to_float_checked(const uint16_t *in, float *out, size_t n)
{
    unsigned bad = 0;
#pragma omp simd reduction(| : bad)
    for (size_t i = 0; i < n; i++) {
        out[i] = bits_float((uint32_t)in[i] << 16);
        bad |= (in[i] & 0x7f80u) == 0x7f80u;
    }
    return bad != 0;
}

/* The rows of one layer of a chunk's tokens lie a whole token apart: the
 * next row is fetched while this one widens. */
static inline void fetch_row(const uint16_t *row, size_t n)
{
    for (size_t i = 0; i < n; i += 32)
        __builtin_prefetch(row + i);
}

RS_VECTOR_CLONES
void rs_half_to_float_rows(const uint16_t *in, size_t in_stride, float *out, size_t out_stride, int rows, size_t n)
{
    for (int r = 0; r < rows; r++, in += in_stride, out += out_stride) {
        if (r + 1 < rows)
            fetch_row(in + in_stride, n);
        for (size_t i = 0; i < n; i++)
            out[i] = rs_half_to_float(in[i]);
    }
}

RS_VECTOR_CLONES
void rs_bf16_to_float_rows(const uint16_t *in, size_t in_stride, float *out, size_t out_stride, int rows, size_t n)
{
    for (int r = 0; r < rows; r++, in += in_stride, out += out_stride) {
        if (r + 1 < rows)
            fetch_row(in + in_stride, n);
#pragma omp simd
        for (size_t i = 0; i < n; i++)
            out[i] = bits_float((uint32_t)in[i] << 16);
    }
}

/* Exponent bits all set: infinite or NaN. */
static inline int any_exponent_full(const uint16_t *in, size_t n, unsigned mask)
{
    unsigned bad = 0;
#pragma omp simd reduction(| : bad)
    for (size_t i = 0; i < n; i++)
        bad |= (in[i] & mask) == mask;
    return bad != 0;
}

RS_VECTOR_CLONES
int rs_half_any_nonfinite(const uint16_t *in, size_t n) { return any_exponent_full(in, n, 0x7c00u); }

RS_VECTOR_CLONES
int rs_bf16_any_nonfinite(const uint16_t *in, size_t n) { return any_exponent_full(in, n, 0x7f80u); }
