/* rs_gather_at_least: one path per x86-64 level, picked as the cloned
 * kernels are (include/routesim/vector.h), all with the same output. */
#include "routers/common/gather_levels.h"
#include "routesim/select.h"

/* The scalar gather from element e on: branch free (always write, advance
 * on a hit). */
static int gather_from(const float *v, int e, int n, float tau, int32_t *idx, float *val, int c)
{
    for (; e < n; e++) {
        idx[c] = e;
        val[c] = v[e];
        c += v[e] >= tau;
    }
    return c;
}

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
    return gather_from(v, e, n, tau, idx, val, c);
}

/* AVX2 has no compress: byte j of compress_perm[m] is the lane of the j-th
 * set bit of the 8-lane mask m, a permutation that moves the selected lanes
 * to the front (bytes past the count are 0: stored, then overwritten). */
#define PERM_BIT(m, lane)                                                                                        \
    ((uint64_t)((((m) >> (lane)) & 1u) * (lane)) << (8 * __builtin_popcount((m) & ((1u << (lane)) - 1u))))
#define PERM(m)                                                                                                  \
    (PERM_BIT(m, 1) | PERM_BIT(m, 2) | PERM_BIT(m, 3) | PERM_BIT(m, 4) | PERM_BIT(m, 5) | PERM_BIT(m, 6) |       \
     PERM_BIT(m, 7))
#define PERM4(m) PERM(m), PERM((m) + 1), PERM((m) + 2), PERM((m) + 3)
#define PERM16(m) PERM4(m), PERM4((m) + 4), PERM4((m) + 8), PERM4((m) + 12)
#define PERM64(m) PERM16(m), PERM16((m) + 16), PERM16((m) + 32), PERM16((m) + 48)
static const uint64_t compress_perm[256] = {PERM64(0u), PERM64(64u), PERM64(128u), PERM64(192u)};

__attribute__((target("avx2,popcnt"))) static int gather_avx2(const float *v, int n, float tau, int32_t *idx,
                                                              float *val)
{
    const __m256 t = _mm256_set1_ps(tau);
    __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i step = _mm256_set1_epi32(8);
    int c = 0, e = 0;
    for (; e + 8 <= n; e += 8) {
        __m256 x = _mm256_loadu_ps(v + e);
        unsigned m = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(x, t, _CMP_GE_OQ));
        __m256i perm = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)&compress_perm[m]));
        /* whole vectors stored at the count: room for n + 8 is promised */
        _mm256_storeu_ps(val + c, _mm256_permutevar8x32_ps(x, perm));
        _mm256_storeu_si256((__m256i *)(idx + c), _mm256_permutevar8x32_epi32(lane, perm));
        c += __builtin_popcount(m);
        lane = _mm256_add_epi32(lane, step);
    }
    return gather_from(v, e, n, tau, idx, val, c);
}

/* The level the cloned kernels run at: fixed by RS_FORCE_ISA, else what
 * the CPU has of the instructions each path needs. */
int rs_gather_isa_level(void)
{
#ifdef RS_FORCE_ISA
    return RS_FORCE_ISA;
#else
    return __builtin_cpu_supports("avx512f") ? 4 : __builtin_cpu_supports("avx2") ? 3 : 1;
#endif
}
#else
int rs_gather_isa_level(void) { return 1; }
#endif

int rs_gather_at_least_level(int level, const float *v, int n, float tau, int32_t *idx, float *val)
{
#if defined(__x86_64__) && defined(__GNUC__)
    switch (level) {
    case 4:
        return gather_avx512(v, n, tau, idx, val);
    case 3:
        return gather_avx2(v, n, tau, idx, val);
    default:
        break;
    }
#endif
    return gather_from(v, 0, n, tau, idx, val, 0);
}

int rs_gather_at_least(const float *v, int n, float tau, int32_t *idx, float *val)
{
    return rs_gather_at_least_level(rs_gather_isa_level(), v, n, tau, idx, val);
}
