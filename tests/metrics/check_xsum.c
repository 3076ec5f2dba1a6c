/* Exact sums (routesim/xsum.h): terms of any size give the same bits in any
 * order and grouping, and their value is the exact sum rounded once. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "routesim/xsum.h"

enum { N = 600 };

/* Terms over the whole range the metrics can produce: small, about 1,
 * 2^62 and beyond (a z-loss of logits of 1e10 .. 3e38 is up to 2^256),
 * both signs. */
static void make_terms(double *v, uint64_t seed)
{
    for (int i = 0; i < N; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        double u = (double)(seed >> 11) * 0x1p-53;
        int scale = (int)(seed % 9);
        const double mag[9] = {1e-12, 0.5, 3.0, 1e18, 0x1p62, 1e20, 1e40, 1e60, 1.1e77};
        v[i] = (i % 3 == 2 ? -1.0 : 1.0) * mag[scale] * (0.5 + u);
    }
}

static rs_xsum sum_range(const double *v, int a, int b)
{
    rs_xsum s;
    memset(&s, 0, sizeof s);
    for (int i = a; i < b; i++)
        rs_xsum_add(&s, v[i]);
    return s;
}

/* The whole sum, the sum of two halves merged, of many small parts merged
 * in order and in reverse, and the terms added backwards: the same bits. */
START_TEST(xsum_any_grouping_same_bits)
{
    double v[N];
    make_terms(v, 1234 + (uint64_t)_i);
    rs_xsum whole = sum_range(v, 0, N);
    const double want = rs_xsum_value(&whole);
    ck_assert(isfinite(want));
    for (int split = 1; split < N; split += 37) {
        rs_xsum a = sum_range(v, 0, split), b = sum_range(v, split, N);
        rs_xsum_merge(&a, &b);
        double got = rs_xsum_value(&a);
        ck_assert_msg(memcmp(&got, &want, sizeof got) == 0, "split %d: %.17g != %.17g", split, got, want);
    }
    rs_xsum parts, backwards;
    memset(&parts, 0, sizeof parts);
    memset(&backwards, 0, sizeof backwards);
    for (int a = N; a > 0; a -= 7) {
        rs_xsum part = sum_range(v, a - 7 > 0 ? a - 7 : 0, a);
        rs_xsum_merge(&parts, &part);
    }
    for (int i = N - 1; i >= 0; i--)
        rs_xsum_add(&backwards, v[i]);
    double got = rs_xsum_value(&parts), back = rs_xsum_value(&backwards);
    ck_assert_msg(memcmp(&got, &want, sizeof got) == 0, "parts: %.17g != %.17g", got, want);
    ck_assert_msg(memcmp(&back, &want, sizeof back) == 0, "backwards: %.17g != %.17g", back, want);
    ck_assert_int_eq(parts.count, N);
}
END_TEST

/* By hand: 2^200 + 1 - 2^200 is 1 exactly, in any order; 1e77 ten
 * thousand times is 1e81 to double precision; small terms keep their
 * 2^-64 resolution next to huge ones that cancel. */
START_TEST(xsum_wide_terms_are_exact)
{
    rs_xsum s;
    memset(&s, 0, sizeof s);
    rs_xsum_add(&s, 0x1p200);
    rs_xsum_add(&s, 1.0);
    rs_xsum_add(&s, -0x1p200);
    ck_assert(rs_xsum_value(&s) == 1.0);
    memset(&s, 0, sizeof s);
    for (int i = 0; i < 10000; i++)
        rs_xsum_add(&s, 1e77);
    ck_assert_double_eq_tol(rs_xsum_value(&s) / 1e81, 1.0, 1e-15);
    ck_assert_double_eq_tol(rs_xsum_mean(&s) / 1e77, 1.0, 1e-15);
    memset(&s, 0, sizeof s);
    rs_xsum_add(&s, 0x1p-60);
    rs_xsum_add(&s, 3e38 * 3e38);
    rs_xsum_add(&s, -(3e38 * 3e38));
    rs_xsum_add(&s, 0x1p70);
    rs_xsum_add(&s, -0x1p70);
    ck_assert(rs_xsum_value(&s) == 0x1p-60);
    /* many terms just over 2^62 carry from level to level without overflow */
    memset(&s, 0, sizeof s);
    for (int i = 0; i < 100000; i++)
        rs_xsum_add(&s, 0x1.fffffffffffffp+125);
    ck_assert_double_eq_tol(rs_xsum_value(&s) / (100000.0 * 0x1.fffffffffffffp+125), 1.0, 1e-15);
}
END_TEST

Suite *xsum_suite(void)
{
    Suite *s = suite_create("xsum");
    TCase *tc = tcase_create("xsum");
    tcase_add_loop_test(tc, xsum_any_grouping_same_bits, 0, 4);
    tcase_add_test(tc, xsum_wide_terms_are_exact);
    suite_add_tcase(s, tc);
    return s;
}
