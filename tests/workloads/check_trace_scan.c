/* rs_trace_scan_values: non-finite logits, recorded ids outside [-1, E)
 * and non-finite weights counted by hand, the same whatever the block size
 * and for 16-bit logits. */
#include <check.h>
#include <math.h>
#include <stdlib.h>

#include "tests/test_util.h"
#include "workloads/trace/trace_scan.h"

enum { T = 30, L = 2, E = 4, K = 2 };
static const int64_t offsets[] = {0, 12, 30};

/* Logits 0 except: token 3 NaN at (layer 1, expert 2) and +inf at (0, 0);
 * token 17 -inf at (1, 3); token 29 NaN at (0, 1). 3 tokens, 2 NaN, 2 inf,
 * the first at token 3, layer 0. Ids (0, 1) except token 5 layer 1 slot 0
 * = 4 (= E), token 6 layer 0 slot 1 = -2 and layer 1 slot 1 = 100, token 20
 * layer 0 slot 0 = -1 (padding: fine). 3 bad ids in 2 tokens, the first 4
 * at token 5, layer 1. Weights 0.5 except token 8's first, NaN. */
static const char *write_bad_trace(const char *name, rs_logits_dtype dtype)
{
    static float z[T * L * E], w[T * L * K];
    static int32_t ids[T * L * K];
    for (int i = 0; i < T * L * E; i++)
        z[i] = 0.0f;
    for (int i = 0; i < T * L * K; i++) {
        ids[i] = i % K;
        w[i] = 0.5f;
    }
#define Z(t, l, e) z[((t) * L + (l)) * E + (e)]
#define ID(t, l, j) ids[((t) * L + (l)) * K + (j)]
    Z(3, 1, 2) = NAN;
    Z(3, 0, 0) = INFINITY;
    Z(17, 1, 3) = -INFINITY;
    Z(29, 0, 1) = NAN;
    ID(5, 1, 0) = E;
    ID(6, 0, 1) = -2;
    ID(6, 1, 1) = 100;
    ID(20, 0, 0) = -1;
    w[8 * L * K] = NAN;
    const char *path = rs_test_path(name);
    rs_test_trace tt = {.T = T, .L = L, .E = E, .K = K, .num_seq = 2, .offsets = offsets, .logits = z,
                        .topk_ids = ids, .topk_weights = w, .dtype = dtype};
    rs_test_write_trace(path, &tt);
    return path;
}

static void check_counts(const rs_trace_scan *s)
{
    ck_assert_int_eq(s->nonfinite_tokens, 3);
    ck_assert_int_eq(s->nan_logits, 2);
    ck_assert_int_eq(s->inf_logits, 2);
    ck_assert_int_eq(s->first_nonfinite_token, 3);
    ck_assert_int_eq(s->first_nonfinite_layer, 0);
    ck_assert_int_eq(s->bad_ids, 3);
    ck_assert_int_eq(s->bad_id_tokens, 2);
    ck_assert_int_eq(s->first_bad_id_token, 5);
    ck_assert_int_eq(s->first_bad_id_layer, 1);
    ck_assert_int_eq(s->first_bad_id, E);
    ck_assert_int_eq(s->nonfinite_weights, 1);
}

START_TEST(scan_counts_by_hand_in_any_block_size)
{
    const rs_logits_dtype dtypes[] = {RS_LOGITS_F32, RS_LOGITS_F16, RS_LOGITS_BF16};
    for (size_t d = 0; d < sizeof dtypes / sizeof dtypes[0]; d++) {
        const char *path = write_bad_trace(d == 0 ? "f32.h5" : d == 1 ? "f16.h5" : "bf16.h5", dtypes[d]);
        rs_trace *tr = NULL;
        rs_error err = {{0}};
        ck_assert_msg(rs_trace_open(&tr, path, &err) == 0, "%s", err.msg);
        rs_trace_scan scan;
        ck_assert_msg(rs_trace_scan_values(tr, &scan, &err) == 0, "%s", err.msg);
        check_counts(&scan);
        /* one token per block (a block smaller than a token), three, all at once */
        const size_t blocks[] = {1, 3 * L * E + 1, (size_t)T * L * E * 4};
        for (size_t b = 0; b < sizeof blocks / sizeof blocks[0]; b++) {
            ck_assert_msg(rs_trace_scan_values_blocked(tr, &scan, blocks[b], &err) == 0, "%s", err.msg);
            check_counts(&scan);
        }
        rs_trace_close(tr);
    }
}
END_TEST

START_TEST(scan_of_a_clean_trace_is_empty)
{
    float *z = rs_test_random_logits(T, L, E, 3);
    const char *path = rs_test_path("clean.h5");
    rs_test_trace tt = {.T = T, .L = L, .E = E, .num_seq = 2, .offsets = offsets, .logits = z};
    rs_test_write_trace(path, &tt);
    free(z);
    rs_trace *tr = NULL;
    rs_error err = {{0}};
    ck_assert_msg(rs_trace_open(&tr, path, &err) == 0, "%s", err.msg);
    rs_trace_scan scan;
    ck_assert_msg(rs_trace_scan_values(tr, &scan, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(scan.nonfinite_tokens + scan.nan_logits + scan.inf_logits + scan.bad_ids + scan.nonfinite_weights,
                     0);
    ck_assert_int_eq(scan.first_nonfinite_token, -1);
    ck_assert_int_eq(scan.first_bad_id_token, -1);
    rs_trace_close(tr);
}
END_TEST

Suite *trace_scan_suite(void)
{
    Suite *s = suite_create("trace_scan");
    TCase *tc = tcase_create("scan");
    tcase_add_test(tc, scan_counts_by_hand_in_any_block_size);
    tcase_add_test(tc, scan_of_a_clean_trace_is_empty);
    suite_add_tcase(s, tc);
    return s;
}
