/* routesim info on traces whose values a run refuses: the description is
 * printed whole, then 'problems' lines with counts, one error line on
 * standard error and exit status 1; a clean trace lists no problem. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test_util.h"

enum { T = 40, L = 2, E = 8, K = 2 };
static const int64_t offsets[] = {0, 25, 40};

static int count_lines(const char *s)
{
    int n = 0;
    for (; s && *s; s++)
        n += *s == '\n';
    return n;
}

START_TEST(info_lists_nonfinite_logits_and_bad_ids)
{
    float *z = rs_test_random_logits(T, L, E, 4);
    z[(7 * L + 1) * E + 3] = INFINITY; /* token 7, layer 1 */
    z[(30 * L + 0) * E + 0] = NAN;     /* token 30, layer 0 */
    static int32_t ids[T * L * K];
    for (int i = 0; i < T * L * K; i++)
        ids[i] = i % K;
    ids[(12 * L + 0) * K + 1] = E;  /* token 12, layer 0: one past the last expert */
    ids[(13 * L + 1) * K + 0] = -7; /* token 13, layer 1 */
    const char *path = rs_test_path("bad.h5");
    rs_test_trace tt = {.T = T, .L = L, .E = E, .K = K, .num_seq = 2, .offsets = offsets, .logits = z,
                        .topk_ids = ids};
    rs_test_write_trace(path, &tt);
    free(z);
    char *out = NULL, *err = NULL;
    int rc = rs_test_run_cli(rs_test_cmd("info %s", path), &out, &err);
    ck_assert_int_eq(rc, 1);
    /* the description is all there */
    ck_assert_ptr_nonnull(strstr(out, "T = 40 tokens, L = 2 layers, E = 8 experts"));
    ck_assert_ptr_nonnull(strstr(out, "recorded   /router/topk_ids K = 2"));
    ck_assert_msg(strstr(out, "problems   /router/logits: 2 tokens with non-finite logits (1 NaN, 1 infinite; first "
                              "at token 7, layer 1)") != NULL,
                  "%s", out);
    ck_assert_msg(strstr(out, "problems   /router/topk_ids: 2 expert ids outside [-1, 8) in 2 tokens (first 8 at "
                              "token 12, layer 0)") != NULL,
                  "%s", out);
    ck_assert_int_eq(count_lines(err), 1);
    ck_assert_msg(strncmp(err, "routesim", 8) == 0 && strstr(err, "bad.h5: 2 problems"), "%s", err);
    free(out);
    free(err);
}
END_TEST

START_TEST(info_of_a_clean_trace_lists_no_problem)
{
    float *z = rs_test_random_logits(T, L, E, 5);
    const char *path = rs_test_path("clean.h5");
    rs_test_trace tt = {.T = T, .L = L, .E = E, .num_seq = 2, .offsets = offsets, .logits = z};
    rs_test_write_trace(path, &tt);
    free(z);
    char *out = NULL, *err = NULL;
    ck_assert_int_eq(rs_test_run_cli(rs_test_cmd("info %s", path), &out, &err), 0);
    ck_assert_ptr_null(strstr(out, "problems"));
    ck_assert_int_eq(count_lines(err), 0);
    free(out);
    free(err);
}
END_TEST

Suite *cli_info_suite(void)
{
    Suite *s = suite_create("cli_info");
    TCase *tc = tcase_create("info");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, info_lists_nonfinite_logits_and_bad_ids);
    tcase_add_test(tc, info_of_a_clean_trace_lists_no_problem);
    suite_add_tcase(s, tc);
    return s;
}
