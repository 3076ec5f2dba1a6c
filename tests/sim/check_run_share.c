/* The split of a config's runs across MPI ranks (rs_run_share) and the
 * exact round trip of a run through the text ranks send it as
 * (rs_run_cache_encode / rs_run_cache_decode). */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sim/experiment/run_cache.h"
#include "sim/experiment/run_exchange.h"

/* 2 traces x 5 runs on 3 ranks: runs numbered 0..9 trace by trace, cut at
 * 10*k/3 = 0, 3, 6, 10; so rank 0 has runs 0-2 of trace 0, rank 1 runs 3-4
 * of trace 0 and run 0 of trace 1, rank 2 runs 1-4 of trace 1. */
START_TEST(test_share_by_hand)
{
    static const int expect[2][3][2] = {{{0, 3}, {3, 5}, {5, 5}}, {{0, 0}, {0, 1}, {1, 5}}};
    for (int t = 0; t < 2; t++)
        for (int k = 0; k < 3; k++) {
            int first = -1, last = -1;
            rs_run_share(t, 2, 5, k, 3, &first, &last);
            ck_assert_int_eq(first, expect[t][k][0]);
            ck_assert_int_eq(last, expect[t][k][1]);
        }
}
END_TEST

/* Every run of every trace belongs to exactly one rank, shares are
 * consecutive, and their sizes (over all traces) differ by at most one. */
START_TEST(test_share_covers_once)
{
    for (int size = 1; size <= 9; size++)
        for (int traces = 1; traces <= 4; traces++)
            for (int n = 0; n <= 7; n++) {
                int smallest = 1 << 30, largest = 0;
                for (int k = 0; k < size; k++) {
                    int count = 0;
                    for (int t = 0; t < traces; t++) {
                        int first = 0, last = 0;
                        rs_run_share(t, traces, n, k, size, &first, &last);
                        ck_assert(0 <= first && first <= last && last <= n);
                        count += last - first;
                    }
                    smallest = count < smallest ? count : smallest;
                    largest = count > largest ? count : largest;
                }
                ck_assert_int_le(largest - smallest, 1);
                for (int t = 0; t < traces; t++) {
                    int next = 0;
                    for (int k = 0; k < size; k++) {
                        int first = 0, last = 0;
                        rs_run_share(t, traces, n, k, size, &first, &last);
                        if (first < last) {
                            ck_assert_int_eq(first, next);
                            next = last;
                        }
                    }
                    ck_assert_int_eq(next, n);
                }
            }
}
END_TEST

/* Values that print inexactly with few digits, and the non-finite ones,
 * come back bit for bit. */
START_TEST(test_encode_round_trip)
{
    rs_results a, b;
    rs_results_init(&a);
    rs_results_init(&b);
    int r = rs_results_add_run(&a, "topk:k=2", "t.h5", "topk", "k=2", "topk:k=2");
    ck_assert_int_ge(r, 0);
    a.runs[r].entry = 3;
    const double values[] = {0.1, 1.0 / 3.0, -2.5e-310, NAN, INFINITY, -INFINITY, 1e300};
    for (int i = 0; i < 7; i++)
        ck_assert_int_eq(rs_results_add_row(&a, r, "load", "stat=maxvio", i, values[i]), 0);
    char *text = rs_run_cache_encode("", &a, r);
    ck_assert_ptr_nonnull(text);
    rs_error err = {{0}};
    int got = -1;
    ck_assert_int_eq(rs_run_cache_decode(text, NULL, &b, &got, &err), 1);
    ck_assert_int_eq(b.runs[got].entry, 3);
    ck_assert_str_eq(b.runs[got].label, "topk:k=2");
    ck_assert_uint_eq(b.num_rows, 7);
    for (int i = 0; i < 7; i++) {
        ck_assert_int_eq(b.rows[i].layer, i);
        ck_assert(memcmp(&b.rows[i].value, &values[i], sizeof(double)) == 0 ||
                  (isnan(values[i]) && isnan(b.rows[i].value)));
    }
    ck_assert_int_eq(rs_run_cache_decode("{\"rows\": 3}", NULL, &b, &got, &err), 0); /* damaged: refused */
    free(text);
    rs_results_free(&a);
    rs_results_free(&b);
}
END_TEST

Suite *run_share_suite(void)
{
    Suite *s = suite_create("run_share");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_share_by_hand);
    tcase_add_test(tc, test_share_covers_once);
    tcase_add_test(tc, test_encode_round_trip);
    suite_add_tcase(s, tc);
    return s;
}
