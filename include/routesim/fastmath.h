/* Elementary functions for hot loops: branch free, so loops over them
 * vectorize, and written with fmaf so every vector width (and the scalar
 * build) gives the same bits. Accuracy is about 1 ulp, like float32
 * libraries; they work in float because the reference implementations
 * (PyTorch gates) do. */
#ifndef ROUTESIM_FASTMATH_H
#define ROUTESIM_FASTMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Always inlined: an out-of-line copy would be built for the baseline
 * target and call libm's fmaf inside vectorized clones. */
#define RS_FASTMATH_INLINE __attribute__((always_inline)) static inline

RS_FASTMATH_INLINE float rs_bits_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

RS_FASTMATH_INLINE uint32_t rs_float_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* Where the exponentials stop: e^x for x below it is e^RS_EXP_FLOOR, about
 * FLT_MIN. */
#define RS_EXP_FLOOR (-87.33654f)

/* e^x for x <= 0 (softmax's z - max): Cody-Waite reduction x = n ln2 + r,
 * |r| <= ln2/2, Cephes' degree-6 polynomial for e^r, 2^n through the
 * exponent bits. Below -87.3 the result is FLT_MIN-ish rather than 0. NaN
 * gives that too. With no upper clamp the loop is one operation shorter. */
RS_FASTMATH_INLINE float rs_fast_expf_nonpos(float x)
{
    const float log2e = 1.44269504088896341f, ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;
    const float round_magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    x = x > RS_EXP_FLOOR ? x : RS_EXP_FLOOR;
    float n = fmaf(x, log2e, round_magic) - round_magic;
    float r = fmaf(n, -ln2_hi, x);
    r = fmaf(n, -ln2_lo, r);
    float p = 1.9875691500e-4f;
    p = fmaf(p, r, 1.3981999507e-3f);
    p = fmaf(p, r, 8.3334519073e-3f);
    p = fmaf(p, r, 4.1665795894e-2f);
    p = fmaf(p, r, 1.6666665459e-1f);
    p = fmaf(p, r, 5.0000001201e-1f);
    p = fmaf(p * r, r, r + 1.0f);
    return p * rs_bits_float((uint32_t)((int32_t)n + 127) << 23);
}

/* e^x, the same bits as rs_fast_expf_nonpos for x <= 0; above 88 it
 * saturates. */
RS_FASTMATH_INLINE float rs_fast_expf(float x)
{
    x = x > RS_EXP_FLOOR ? x : RS_EXP_FLOOR;
    return rs_fast_expf_nonpos(x < 88.0f ? x : 88.0f);
}

/* ln x for normal x > 0: x = m 2^e with m in [sqrt(1/2), sqrt(2)), Cephes'
 * degree-8 polynomial for ln(m). */
RS_FASTMATH_INLINE float rs_fast_logf(float x)
{
    uint32_t bits = rs_float_bits(x);
    int32_t e = (int32_t)(bits >> 23) - 127;
    float m = rs_bits_float((bits & 0x007fffffu) | 0x3f800000u); /* [1, 2) */
    int big = m > 1.41421356f;
    m = big ? m * 0.5f : m;
    e += big;
    float f = m - 1.0f;
    float y = 7.0376836292e-2f;
    y = fmaf(y, f, -1.1514610310e-1f);
    y = fmaf(y, f, 1.1676998740e-1f);
    y = fmaf(y, f, -1.2420140846e-1f);
    y = fmaf(y, f, 1.4249322787e-1f);
    y = fmaf(y, f, -1.6668057665e-1f);
    y = fmaf(y, f, 2.0000714765e-1f);
    y = fmaf(y, f, -2.4999993993e-1f);
    y = fmaf(y, f, 3.3333331174e-1f);
    float f2 = f * f;
    y = y * f * f2;
    float fe = (float)e;
    y = fmaf(fe, -2.12194440e-4f, y);
    y = fmaf(f2, -0.5f, y);
    return fmaf(fe, 0.693359375f, f + y);
}

/* sin and cos of 2 pi u for u in [0, 1): quarter turns q = round(4u) and
 * r = (4u - q) pi/2 in [-pi/4, pi/4], Cephes' polynomials on r, then the
 * quadrant's swap and signs. */
RS_FASTMATH_INLINE void rs_fast_sincos_turns(float u, float *sine, float *cosine)
{
    float x = 4.0f * u;
    float q = (x + 12582912.0f) - 12582912.0f; /* round to nearest */
    float r = (x - q) * 1.57079632679f;
    float r2 = r * r;
    float s = fmaf(fmaf(fmaf(-1.9515295891e-4f, r2, 8.3321608736e-3f), r2, -1.6666654611e-1f), r2 * r, r);
    float c = fmaf(fmaf(fmaf(2.443315711809948e-5f, r2, -1.388731625493765e-3f), r2, 4.166664568298827e-2f),
                   r2 * r2, fmaf(-0.5f, r2, 1.0f));
    int quadrant = (int)q & 3;
    float sin_v = quadrant == 0 ? s : quadrant == 1 ? c : quadrant == 2 ? -s : -c;
    float cos_v = quadrant == 0 ? c : quadrant == 1 ? -s : quadrant == 2 ? -c : s;
    *sine = sin_v;
    *cosine = cos_v;
}

/* 1 / (1 + e^-x) */
RS_FASTMATH_INLINE float rs_fast_sigmoidf(float x) { return 1.0f / (1.0f + rs_fast_expf(-x)); }

/* ln(1 + e^x) = max(x, 0) + log1p(e^-|x|); log1p(u) for u in (0, 1] as
 * ln(v) * u / (v - 1) with v = 1 + u, which stays accurate for tiny u. */
RS_FASTMATH_INLINE float rs_fast_softplusf(float x)
{
    float ax = x < 0.0f ? -x : x;
    float u = rs_fast_expf(-ax);
    float v = 1.0f + u;
    float l = v == 1.0f ? u : rs_fast_logf(v) * (u / (v - 1.0f));
    return (x > 0.0f ? x : 0.0f) + l;
}

#endif
