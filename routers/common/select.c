#include "routesim/select.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* AVX-512 compress stores gather the candidates without a branch per element. */
__attribute__((target("avx512f"))) static int gather_avx512(const float *v, int n, float tau, int32_t *idx,
                                                            float *val)
{
    const __m512 t = _mm512_set1_ps(tau);
    __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i step = _mm512_set1_epi32(16);
    int c = 0, e = 0;
    for (; e + 16 <= n; e += 16) {
        __m512 x = _mm512_loadu_ps(v + e);
        __mmask16 m = _mm512_cmp_ps_mask(x, t, _CMP_GE_OQ);
        _mm512_mask_compressstoreu_ps(val + c, m, x);
        _mm512_mask_compressstoreu_epi32(idx + c, m, lane);
        c += __builtin_popcount((unsigned)m);
        lane = _mm512_add_epi32(lane, step);
    }
    for (; e < n; e++) {
        idx[c] = e;
        val[c] = v[e];
        c += v[e] >= tau;
    }
    return c;
}
#endif

int rs_gather_at_least(const float *v, int n, float tau, int32_t *idx, float *val)
{
#if defined(__x86_64__) && defined(__GNUC__)
    if (__builtin_cpu_supports("avx512f"))
        return gather_avx512(v, n, tau, idx, val);
#endif
    int c = 0;
    for (int e = 0; e < n; e++) { /* branch free: write always, advance on a hit */
        idx[c] = e;
        val[c] = v[e];
        c += v[e] >= tau;
    }
    return c;
}
