/* Dynamic-k routers (routers.md section C) on hand-built chunks. Expected
 * ids and weights are worked out by hand in the comments: logits are logs of
 * small integers, or equal (p = 1/E exactly, so cumulative sums land exactly
 * on the thresholds), or far apart (p of the losers flushes to 0). The
 * baselines of section D are in check_routers_dynamic_baselines.c and run
 * in this suite. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "tests/routers/routers_dynamic_harness.h"

TCase *routers_baselines_tcase(void);

/* token 0: z = log [4, 2, 1, 1] -> p = [1/2, 1/4, 1/8, 1/8] (ties 2 and 3)
 * token 1: equal logits -> p = 1/4 each, cumulative sums exactly 1/4, 1/2, 3/4, 1
 * token 2: z = [0, 0, -100, -100] -> p = [1/2, 1/2, 0, 0] (exp(-100) flushes to 0) */
static const float hand_z[] = {1.3862944f, 0.6931472f, 0, 0, 0, 0, 0, 0, 0, 0, -100, -100};

/* Checks tokens from..2 of hand_z; counts[t] experts each, ids and w concatenated from token `from`.
 * Token 0's p are 1/2, 1/4, 1/8 only to float rounding, so boundary cases start at token 1. */
static void check_rows_from(const char *spec, int from, const int32_t *ids, const double *w, const int *counts,
                            int kmax)
{
    rs_test_chunk tc;
    rs_test_chunk_init(&tc, 0, 3, 1, 4, hand_z);
    rs_trace_info info = dyn_info(1, 4);
    dyn_rows d = dyn_route(spec, &tc, &info);
    ck_assert_msg(d.kmax == kmax, "%s: kmax %d, expected %d", spec, d.kmax, kmax);
    for (int t = from, at = 0; t < 3; at += counts[t - from], t++)
        dyn_assert_row(&d, (size_t)t, ids + at, w + at, counts[t - from], 1e-6);
    dyn_rows_free(&d);
    rs_test_chunk_free(&tc);
}

static void check_rows(const char *spec, const int32_t *ids, const double *w, const int *counts, int kmax)
{
    check_rows_from(spec, 0, ids, w, counts, kmax);
}

START_TEST(topp_hand_cases)
{
    /* p = 0.4: 1/2 > 0.4 at once; equal: 1/4, 1/2 > 0.4; token 2: 1/2 */
    check_rows("topp:p=0.4", (int32_t[]){0, 0, 1, 0}, (double[]){0.5, 0.25, 0.25, 0.5}, (int[]){1, 2, 1}, 4);
    /* p = 0.8: 1/2, 3/4, 7/8 > 0.8 (expert 2 before 3: the tie goes to the lower index);
     * equal: 1/4, 1/2, 3/4, 1 > 0.8; token 2: 1/2, 1 > 0.8 */
    check_rows("topp:p=0.8", (int32_t[]){0, 1, 2, 0, 1, 2, 3, 0, 1}, (double[]){.5, .25, .125, .25, .25, .25, .25, .5, .5},
               (int[]){3, 4, 2}, 4);
    /* boundary: equal logits, p = 0.5 exactly: 1/2 does not exceed 0.5, so 3/4 is the first that does;
     * token 2: 1/2 then 1 */
    check_rows_from("topp:p=0.5", 1, (int32_t[]){0, 1, 2, 0, 1}, (double[]){.25, .25, .25, .5, .5}, (int[]){3, 2}, 4);
    /* p = 0: top-1 (the tie in token 1 and 2 goes to expert 0) */
    check_rows("topp:p=0", (int32_t[]){0, 0, 0}, (double[]){.5, .25, .5}, (int[]){1, 1, 1}, 4);
}
END_TEST

START_TEST(threshold_hand_cases)
{
    /* t = 0.6: token 0 keeps 0 (nothing before), 1 (1/2 before < 0.6), stops (3/4 before);
     * equal: 0, 1, 2 (1/2 before < 0.6), stops at 3/4; token 2: 0, 1 then 1 before */
    check_rows("threshold:t=0.6", (int32_t[]){0, 1, 0, 1, 2, 0, 1}, (double[]){.5, .25, .25, .25, .25, .5, .5},
               (int[]){2, 3, 2}, 4);
    /* boundary: equal logits, t = 0.5 exactly: 1/2 before expert 2 is not < 0.5 -> {0, 1}
     * (topp with p = 0.5 keeps three: the conventions differ exactly here); token 2: 1/2 before expert 1 */
    check_rows_from("threshold:t=0.5", 1, (int32_t[]){0, 1, 0}, (double[]){.25, .25, .5}, (int[]){2, 1}, 4);
    /* t = 0.9: token 0 takes all four (7/8 before the last); token 2 takes 0 and 1 (then 1 before: stop) */
    check_rows("threshold:t=0.9", (int32_t[]){0, 1, 2, 3, 0, 1, 2, 3, 0, 1},
               (double[]){.5, .25, .125, .125, .25, .25, .25, .25, .5, .5}, (int[]){4, 4, 2}, 4);
    /* t = 0: at least one */
    check_rows("threshold:t=0", (int32_t[]){0, 0, 0}, (double[]){.5, .25, .5}, (int[]){1, 1, 1}, 4);
}
END_TEST

START_TEST(dynmole_hand_cases)
{
    /* h_max = 1 turns broadcasting off. keep_top_k = 1, top_p = 0.5: token 0 keeps 0 (forced), then
     * 3/4 > 0.5; equal: 1/4, 1/2 <= 0.5 (the boundary is inclusive) -> {0, 1}; token 2: 1/2 (forced), 1 */
    check_rows("dynmole:top_p=0.5,keep_top_k=1,h_max=1", (int32_t[]){0, 0, 1, 0}, (double[]){.5, .25, .25, .5},
               (int[]){1, 2, 1}, 4);
    /* top_p = 0.8: token 0: 1/2, 3/4 <= 0.8, 7/8 not -> {0, 1}; equal: {0, 1, 2}; token 2: 1/2 (forced), 1 */
    check_rows("dynmole:top_p=0.8,keep_top_k=1,h_max=1", (int32_t[]){0, 1, 0, 1, 2, 0}, (double[]){.5, .25, .25, .25, .25, .5},
               (int[]){2, 3, 1}, 4);
    /* keep_top_k = 3 forces three whatever top_p says */
    check_rows("dynmole:top_p=0,keep_top_k=3,h_max=1", (int32_t[]){0, 1, 2, 0, 1, 2, 0, 1, 2},
               (double[]){.5, .25, .125, .25, .25, .25, .5, .5, 0}, (int[]){3, 3, 3}, 4);
    /* defaults (q = 1.1, h_max = 0.9, eps = 1e-5): the equal token has normalised Tsallis entropy
     * (1 - 4 (1/4 + 1e-5)^1.1) / (1 - 4^-0.1) = 0.99970 > 0.9 -> all four; token 0:
     * (1 - sum (p + eps)^1.1) / (1 - 4^-0.1) = 0.871 -> top-p rule with keep_top_k = 2: {0, 1}, then
     * 7/8 > 0.75; token 2: entropy 0.517 -> {0, 1}, then 1 > 0.75 */
    check_rows("dynmole", (int32_t[]){0, 1, 0, 1, 2, 3, 0, 1}, (double[]){.5, .25, .25, .25, .25, .25, .5, .5},
               (int[]){2, 4, 2}, 4);
    /* Shannon (q = 1), eps = 0: the equal token's entropy is exactly 1 > 0.99 */
    check_rows("dynmole:q=1,eps=0,h_max=0.99,top_p=0.1,keep_top_k=1", (int32_t[]){0, 0, 1, 2, 3, 0},
               (double[]){.5, .25, .25, .25, .25, .5}, (int[]){1, 4, 1}, 4);
}
END_TEST

START_TEST(null_experts_hand_cases)
{
    /* z = [2, 1, -1, 0.5]; real experts with z >= c = 0: 0, 1, 3.
     * k = 3, n_null = 2: all three real -> softmax of [2, 1, 0.5] = e^2, e, e^0.5 / 11.756059
     *   = 0.628532, 0.231224, 0.140244
     * k = 4, n_null = 1: 3 real then the null -> the same three
     * k = 5, n_null = 1: 3 real, the null, then expert 2 (z = -1): softmax of [2, 1, 0.5, -1]
     *   = e^2, e, e^.5, e^-1 / 12.123938 = 0.609460, 0.224208, 0.135989, 0.030343 */
    const float z[] = {2, 1, -1, 0.5f, 0, 0, 3, -2};
    rs_test_chunk tc;
    rs_test_chunk_init(&tc, 0, 2, 1, 4, z);
    rs_trace_info info = dyn_info(1, 4);
    const int32_t three[] = {0, 1, 3}, four[] = {0, 1, 3, 2};
    const double w3[] = {0.628532, 0.231224, 0.140244}, w4[] = {0.609460, 0.224208, 0.135989, 0.030343};
    dyn_rows d = dyn_route("null_experts:k=3,n_null=2,c=0", &tc, &info);
    ck_assert_int_eq(d.kmax, 3);
    dyn_assert_row(&d, 0, three, w3, 3, 1e-6);
    /* token 1: z = [0, 0, 3, -2]: 2, then 0 and 1 tie with the nulls at c = 0 and win (lower index) */
    dyn_assert_row(&d, 1, (int32_t[]){2, 0, 1}, (double[]){0.909443, 0.045278, 0.045278}, 3, 1e-6);
    dyn_rows_free(&d);
    d = dyn_route("null_experts:k=4,n_null=1,c=0", &tc, &info);
    dyn_assert_row(&d, 0, three, w3, 3, 1e-6);
    dyn_rows_free(&d);
    d = dyn_route("null_experts:k=5,n_null=1,c=0", &tc, &info);
    ck_assert_int_eq(d.kmax, 4); /* min(k, E) */
    dyn_assert_row(&d, 0, four, w4, 4, 1e-6);
    dyn_rows_free(&d);
    /* c = 5 above every logit and 16 nulls: only nulls are chosen -> no experts */
    d = dyn_route("null_experts:k=2,n_null=16,c=5", &tc, &info);
    dyn_assert_row(&d, 0, NULL, NULL, 0, 0);
    dyn_assert_row(&d, 1, NULL, NULL, 0, 0);
    dyn_rows_free(&d);
    /* n_null = 0 is plain top-k with renormalised weights: e^2 / (e^2 + e) = 0.731059 */
    d = dyn_route("null_experts:k=2,n_null=0", &tc, &info);
    dyn_assert_row(&d, 0, (int32_t[]){0, 1}, (double[]){0.731059, 0.268941}, 2, 1e-6);
    dyn_rows_free(&d);
    rs_test_chunk_free(&tc);
}
END_TEST

START_TEST(zero_experts_hand_cases)
{
    /* E = 6, defaults: FFN {0, 1}, constant {2, 3}, copy {4}, zero {5}; top-2 by z
     * t0: {0 (z=2), 1 (z=1)}: both FFN, w = e^2, e / (e^2 + e) = 0.731059, 0.268941
     * t1: {5 zero (z=3), 0 (z=1)}: the zero gate is 0 -> expert 0 gets 1
     * t2: {4 copy (z=2), 1 (z=1)}: copy 0.731059, expert 1 0.268941
     * t3: {5 zero (z=2), 3 const (z=1)}: const gets 1, no FFN expert */
    const float z[] = {2, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 3, 0, 1, 0, 0, 2, 0, 0, 0, 0, 1, 0, 2};
    rs_test_chunk tc;
    rs_test_chunk_init(&tc, 0, 4, 1, 6, z);
    rs_trace_info info = dyn_info(1, 6);
    dyn_rows d = dyn_route("zero_experts", &tc, &info);
    ck_assert_int_eq(d.kmax, 2);
    dyn_assert_row(&d, 0, (int32_t[]){0, 1}, (double[]){0.731059, 0.268941}, 2, 1e-6);
    dyn_assert_row(&d, 1, (int32_t[]){0}, (double[]){1}, 1, 1e-6);
    dyn_assert_row(&d, 2, (int32_t[]){1}, (double[]){0.268941}, 1, 1e-6);
    dyn_assert_row(&d, 3, NULL, NULL, 0, 0);
    dyn_rows_free(&d);
    d = dyn_route("zero_experts:emit_free=1", &tc, &info);
    dyn_assert_row(&d, 0, (int32_t[]){0, 1}, (double[]){0.731059, 0.268941}, 2, 1e-6);
    dyn_assert_row(&d, 1, (int32_t[]){5, 0}, (double[]){0, 1}, 2, 1e-6);
    dyn_assert_row(&d, 2, (int32_t[]){4, 1}, (double[]){0.731059, 0.268941}, 2, 1e-6);
    dyn_assert_row(&d, 3, (int32_t[]){5, 3}, (double[]){0, 1}, 2, 1e-6);
    dyn_rows_free(&d);
    /* n_zero = 2, n_copy = 0: slot 4 is a zero expert too, so t2 = {4, 1} gives expert 1 all the weight */
    d = dyn_route("zero_experts:n_zero=2,n_copy=0,emit_free=1", &tc, &info);
    dyn_assert_row(&d, 2, (int32_t[]){4, 1}, (double[]){0, 1}, 2, 1e-6);
    dyn_rows_free(&d);
    rs_test_chunk_free(&tc);
    /* only zero experts chosen: every gate is 0, so every weight is 0 */
    const float both_zero[] = {0, 0, 0, 0, 5, 5};
    rs_test_chunk_init(&tc, 0, 1, 1, 6, both_zero);
    d = dyn_route("zero_experts:n_zero=2,n_copy=0,emit_free=1", &tc, &info);
    dyn_assert_row(&d, 0, (int32_t[]){4, 5}, (double[]){0, 0}, 2, 0);
    dyn_rows_free(&d);
    rs_test_chunk_free(&tc);
}
END_TEST

START_TEST(top_any_and_relu_hand_cases)
{
    /* t0: z = [1, -1, 0, 2]; t1: z = [-1, -0.5, -2, -0.5]; t2: z = [0.8, 1, 1, -3] */
    const float z[] = {1, -1, 0, 2, -1, -0.5f, -2, -0.5f, 0.8f, 1, 1, -3};
    rs_test_chunk tc;
    rs_test_chunk_init(&tc, 0, 3, 1, 4, z);
    rs_trace_info info = dyn_info(1, 4);
    /* sigmoid > 0.5 <=> z > 0: t0 {3, 0} (z = 0 is not above), t1 none -> argmax, tie of 1 and 3 -> 1,
     * t2 {1, 2, 0} (1 and 2 tie: lower first) */
    dyn_rows d = dyn_route("top_any", &tc, &info);
    ck_assert_int_eq(d.kmax, 4);
    dyn_assert_row(&d, 0, (int32_t[]){3, 0}, (double[]){.5, .5}, 2, 0);
    dyn_assert_row(&d, 1, (int32_t[]){1}, (double[]){1}, 1, 0);
    dyn_assert_row(&d, 2, (int32_t[]){1, 2, 0}, (double[]){1. / 3, 1. / 3, 1. / 3}, 3, 1e-7);
    dyn_rows_free(&d);
    /* threshold 0.7: sigmoid(1) = 0.731 in, sigmoid(0.8) = 0.690 out */
    d = dyn_route("top_any:threshold=0.7", &tc, &info);
    dyn_assert_row(&d, 0, (int32_t[]){3, 0}, (double[]){.5, .5}, 2, 0);
    dyn_assert_row(&d, 2, (int32_t[]){1, 2}, (double[]){.5, .5}, 2, 0);
    dyn_rows_free(&d);
    /* relu, tau = 0: t0 {3: 2, 0: 1}; t1 none (no fallback); t2 {1: 1, 2: 1, 0: 0.8} */
    d = dyn_route("relu", &tc, &info);
    ck_assert_int_eq(d.kmax, 4);
    dyn_assert_row(&d, 0, (int32_t[]){3, 0}, (double[]){2, 1}, 2, 0);
    dyn_assert_row(&d, 1, NULL, NULL, 0, 0);
    dyn_assert_row(&d, 2, (int32_t[]){1, 2, 0}, (double[]){1, 1, 0.8}, 3, 1e-7);
    dyn_rows_free(&d);
    /* tau = -1: -1 itself is not above; weights z + 1 */
    d = dyn_route("relu:tau=-1", &tc, &info);
    dyn_assert_row(&d, 0, (int32_t[]){3, 0, 2}, (double[]){3, 2, 1}, 3, 0);
    dyn_assert_row(&d, 1, (int32_t[]){1, 3}, (double[]){.5, .5}, 2, 0);
    dyn_rows_free(&d);
    rs_test_chunk_free(&tc);
}
END_TEST

START_TEST(dynamic_skip_hand_cases)
{
    /* t0: z = [0, -1, -5, -5]: p2 / p1 = e^-1 = 0.368 < 0.5 -> top-1 alone
     * t1: z = [-0.5, 0, -5, -5]: ratio e^-0.5 = 0.607 >= 0.5 -> both, 1 / 1.606531 = 0.622459, 0.377541
     * t2: equal: ratio exactly 1 */
    const float z[] = {0, -1, -5, -5, -0.5f, 0, -5, -5, 0, 0, 0, 0};
    rs_test_chunk tc;
    rs_test_chunk_init(&tc, 0, 3, 1, 4, z);
    rs_trace_info info = dyn_info(1, 4);
    dyn_rows d = dyn_route("dynamic_skip:beta=0.5", &tc, &info);
    ck_assert_int_eq(d.kmax, 2);
    dyn_assert_row(&d, 0, (int32_t[]){0}, (double[]){1}, 1, 0);
    dyn_assert_row(&d, 1, (int32_t[]){1, 0}, (double[]){0.622459, 0.377541}, 2, 1e-6);
    dyn_assert_row(&d, 2, (int32_t[]){0, 1}, (double[]){.5, .5}, 2, 0);
    dyn_rows_free(&d);
    /* beta = 1: a ratio of exactly 1 is not below beta (kept); 0.607 is */
    d = dyn_route("dynamic_skip:beta=1", &tc, &info);
    dyn_assert_row(&d, 1, (int32_t[]){1}, (double[]){1}, 1, 0);
    dyn_assert_row(&d, 2, (int32_t[]){0, 1}, (double[]){.5, .5}, 2, 0);
    dyn_rows_free(&d);
    /* beta = 0 never skips: top-k renormalised, e^0, e^-1 / 1.367879 = 0.731059, 0.268941 */
    d = dyn_route("dynamic_skip:beta=0", &tc, &info);
    dyn_assert_row(&d, 0, (int32_t[]){0, 1}, (double[]){0.731059, 0.268941}, 2, 1e-6);
    dyn_rows_free(&d);
    rs_test_chunk_free(&tc);
}
END_TEST

START_TEST(layer_schedule_caps)
{
    /* L = 5, equal logits (p = 1/4), p = 1 is never exceeded, so each layer takes its cap.
     * K = 4, x = l/4, [v] half up:
     *   descending 1 + [3 (1 - x)] = 4, 3 (2.25), 3 (1.5), 2 (0.75), 1
     *   ascending  1 + [3 x]       = 1, 2 (0.75), 3 (1.5), 3 (2.25), 4
     *   pyramid    1 + [3 (1 - |2x - 1|)] = 1, 3 (1.5), 4, 3, 1
     *   wave (period 4) 1 + [3 (1 - 2d/4)], d = 0, 1, 2, 1, 0 -> 4, 3 (1.5), 1, 3, 4 */
    static const char *const schedules[] = {"descending", "ascending", "pyramid", "wave", "uniform"};
    static const int caps[][5] = {{4, 3, 3, 2, 1}, {1, 2, 3, 3, 4}, {1, 3, 4, 3, 1}, {4, 3, 1, 3, 4}, {4, 4, 4, 4, 4}};
    float z[5 * 4] = {0};
    rs_test_chunk tc;
    rs_test_chunk_init(&tc, 0, 1, 5, 4, z);
    rs_trace_info info = dyn_info(5, 4);
    for (int s = 0; s < 5; s++) {
        char spec[128];
        snprintf(spec, sizeof spec, "layer_schedule:schedule=%s,k_max=4,p=1", schedules[s]);
        dyn_rows d = dyn_route(spec, &tc, &info);
        ck_assert_int_eq(d.kmax, 4);
        for (int l = 0; l < 5; l++)
            dyn_assert_row(&d, (size_t)l, (int32_t[]){0, 1, 2, 3}, (double[]){.25, .25, .25, .25}, caps[s][l], 0);
        dyn_rows_free(&d);
    }
    /* p = 0.3 stops at 1/2 > 0.3: two experts where the cap allows; k_max = 2 shrinks the rows */
    dyn_rows d = dyn_route("layer_schedule:schedule=ascending,k_max=2,p=0.3", &tc, &info);
    ck_assert_int_eq(d.kmax, 2);
    const int want[] = {1, 1, 2, 2, 2}; /* 1 + [x]: 0, 0 (0.25), 1 (0.5 up), 1, 1 */
    for (int l = 0; l < 5; l++)
        dyn_assert_row(&d, (size_t)l, (int32_t[]){0, 1}, (double[]){.25, .25}, want[l], 0);
    dyn_rows_free(&d);
    rs_test_chunk_free(&tc);
}
END_TEST

START_TEST(dynamic_routers_are_chunk_invariant)
{
    /* tied logits (multiples of 0.25), sequences crossing the split */
    enum { T = 600, L = 3, E = 16 };
    float *z = rs_test_random_logits(T, L, E, 5);
    for (int i = 0; i < T * L * E; i++)
        z[i] = roundf(z[i] * 4) / 4;
    const int64_t offsets[] = {0, 150, 151, 420, 600};
    dyn_range g = {T, L, E, z, NULL, offsets, 4};
    static const char *const specs[] = {
        "topp", "topp:p=0.9", "threshold", "threshold:t=0.99", "dynmole", "dynmole:q=1,h_max=0.5",
        "null_experts:k=4,n_null=3,c=0.5", "zero_experts", "zero_experts:emit_free=1,k=3", "top_any",
        "top_any:threshold=0.2", "relu", "relu:tau=-0.5", "dynamic_skip", "dynamic_skip:k=4,beta=0.3",
        "layer_schedule", "layer_schedule:schedule=wave,k_max=16,p=0.95"};
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++)
        dyn_assert_split_invariant(specs[i], &g, 200);
    free(z);
}
END_TEST

START_TEST(dynamic_routers_reject_bad_parameters)
{
    rs_trace_info info = dyn_info(2, 4);
    dyn_assert_create_fails("topp:p=1.5", &info, "router topp: parameter p=1.5 out of range [0, 1]");
    dyn_assert_create_fails("dynmole:keep_top_k=5", &info,
                            "router dynmole: parameter keep_top_k=5 exceeds num_experts=4 of mem.h5");
    dyn_assert_create_fails("null_experts:k=7,n_null=2", &info,
                            "router null_experts: parameter k=7 exceeds num_experts + n_null = 6 of mem.h5");
    dyn_assert_create_fails("zero_experts:n_const=2,n_copy=1,n_zero=1", &info,
                            "router zero_experts: parameters n_zero + n_copy + n_const = 4 leave no FFN expert among "
                            "num_experts=4 of mem.h5");
    dyn_assert_create_fails("zero_experts:n_const=0,k=5", &info,
                            "router zero_experts: parameter k=5 exceeds num_experts=4 of mem.h5");
    dyn_assert_create_fails("dynamic_skip:k=5", &info,
                            "router dynamic_skip: parameter k=5 exceeds num_experts=4 of mem.h5");
    dyn_assert_create_fails("layer_schedule:k_max=5", &info,
                            "router layer_schedule: parameter k_max=5 exceeds num_experts=4 of mem.h5");
    dyn_assert_create_fails("layer_schedule:schedule=zigzag", &info,
                            "router layer_schedule: parameter schedule: 'zigzag' is not one of "
                            "descending|ascending|pyramid|wave|uniform");
    rs_trace_info wide = dyn_info(1, 5000);
    dyn_assert_create_fails("threshold", &wide, "router threshold: num_experts=5000 of mem.h5 exceeds the 4096 it supports");
}
END_TEST

START_TEST(dynamic_descriptors_declare_their_shape)
{
    /* dynamic-k rules pad to E; every rule here is token choice and causal */
    static const char *const dynamic[] = {"topp", "threshold", "dynmole", "top_any", "relu"};
    rs_trace_info info = dyn_info(2, 12);
    for (size_t i = 0; i < sizeof dynamic / sizeof dynamic[0]; i++) {
        dyn_router r;
        dyn_open(&r, dynamic[i], &info);
        ck_assert_int_eq(r.kmax, 12);
        ck_assert(r.spec.type->flags & RS_ROUTER_TOKEN_CHOICE);
        ck_assert(r.spec.type->flags & RS_ROUTER_CAUSAL);
        ck_assert(!(r.spec.type->flags & RS_ROUTER_STOCHASTIC));
        dyn_close(&r);
    }
}
END_TEST

Suite *routers_dynamic_suite(void)
{
    Suite *s = suite_create("routers_dynamic");
    TCase *tc = tcase_create("dynamic_k");
    tcase_add_test(tc, topp_hand_cases);
    tcase_add_test(tc, threshold_hand_cases);
    tcase_add_test(tc, dynmole_hand_cases);
    tcase_add_test(tc, null_experts_hand_cases);
    tcase_add_test(tc, zero_experts_hand_cases);
    tcase_add_test(tc, top_any_and_relu_hand_cases);
    tcase_add_test(tc, dynamic_skip_hand_cases);
    tcase_add_test(tc, layer_schedule_caps);
    tcase_add_test(tc, dynamic_routers_are_chunk_invariant);
    tcase_add_test(tc, dynamic_routers_reject_bad_parameters);
    tcase_add_test(tc, dynamic_descriptors_declare_their_shape);
    suite_add_tcase(s, tc);
    suite_add_tcase(s, routers_baselines_tcase());
    return s;
}
