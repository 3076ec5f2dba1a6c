/* The balancing routers' row kernels and Sinkhorn scaling against the plain
 * scalar loops they replace, bit for bit: the row maximum, softmax, sigmoid
 * and log-sum-exp, the top-k of a row of doubles (with its NaN flag), and
 * the scaling's d0, d1 and round count. The references below are those
 * loops, written out; the rows mix ties, signed zeros, infinities and NaNs
 * at the start, inside and at the end, at lengths around the block and
 * lane widths. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/group_select.h"
#include "routers/common/balance_util.h"

static uint64_t state = 0x2545F4914F6CDD1DULL;
static double next_uniform(void)
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return (double)(state >> 11) / 9007199254740992.0;
}

enum { KINDS = 8 };

/* Row values of several kinds; the NaN kinds put NaNs at the start, at a
 * random place and at the end. */
static double draw(int kind, int i, int n)
{
    double u = next_uniform();
    switch (kind) {
    case 0:
        return (u - 0.5) * 8.0; /* logits */
    case 1:
        return (double)(int)(u * 4.0) - 1.0; /* few values: ties */
    case 2:
        return u < 0.3 ? -0.0 : u < 0.6 ? 0.0 : -u; /* zeros of both signs lead */
    case 3:
        return u < 0.05 ? INFINITY : u < 0.1 ? -INFINITY : u - 0.5;
    case 4:
        return i == 0 ? NAN : u;
    case 5:
        return i == n / 2 ? NAN : u;
    case 6:
        return i == n - 1 ? NAN : (u < 0.5 ? -0.0 : 0.0);
    default:
        return 0.125; /* all equal */
    }
}

static const int lengths[] = {1, 2, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 256, 257, 1000, 1024, 1025, 1100};
#define NUM_LENGTHS ((int)(sizeof lengths / sizeof lengths[0]))

static int same_bits(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

START_TEST(topk_matches_insertion)
{
    double *v = malloc(1100 * sizeof *v), vals[40], ref_vals[40];
    int32_t idx[40], ref_idx[40];
    const int ks[] = {1, 2, 3, 5, 8, 16, 17, 33};
    for (int l = 0; l < NUM_LENGTHS; l++) {
        const int n = lengths[l];
        for (int kind = 0; kind < KINDS; kind++) {
            int has_nan = 0;
            for (int i = 0; i < n; i++) {
                v[i] = draw(kind, i, n);
                has_nan |= isnan(v[i]);
            }
            for (size_t c = 0; c < sizeof ks / sizeof ks[0]; c++) {
                const int k = ks[c] < n ? ks[c] : n;
                int m = 0;
                for (int e = 0; e < n; e++) /* the reference: every element inserted */
                    rs_topk_insert_double(v[e], e, k, &m, ref_idx, ref_vals);
                int nan = rs_balance_topk(v, n, k, idx, vals);
                ck_assert_int_eq(nan, has_nan);
                for (int j = 0; j < m; j++) {
                    ck_assert_msg(idx[j] == ref_idx[j], "n=%d kind %d k=%d: slot %d holds %d, reference %d", n, kind,
                                  k, j, idx[j], ref_idx[j]);
                    ck_assert_msg(same_bits(vals[j], ref_vals[j]), "n=%d kind %d k=%d: value %d", n, kind, k, j);
                }
            }
        }
    }
    free(v);
}
END_TEST

START_TEST(row_scores_match_scalar_loops)
{
    float *z = malloc(1100 * sizeof *z);
    double *p = malloc(1100 * sizeof *p), *ref = malloc(1100 * sizeof *ref);
    for (int l = 0; l < NUM_LENGTHS; l++) {
        const int E = lengths[l];
        for (int kind = 0; kind < KINDS; kind++) {
            for (int e = 0; e < E; e++)
                z[e] = (float)draw(kind, e, E);
            double max = z[0]; /* the reference maximum: the first of equal values kept */
            for (int e = 1; e < E; e++)
                max = z[e] > max ? z[e] : max;
            double got = rs_balance_row_max(z, E);
            ck_assert_msg(same_bits(got, max) || (isnan(got) && isnan(max)), "E=%d kind %d: max %g, reference %g",
                          E, kind, got, max);
            if (kind >= 3 && kind <= 6) /* scores of finite rows only: skipped tokens never reach them */
                continue;
            double sum = 0.0;
            for (int e = 0; e < E; e++) {
                ref[e] = exp((double)z[e] - max);
                sum += ref[e];
            }
            for (int e = 0; e < E; e++)
                ref[e] /= sum;
            rs_balance_softmax(z, E, p);
            ck_assert_msg(memcmp(p, ref, (size_t)E * sizeof *p) == 0, "E=%d kind %d: softmax", E, kind);
            for (int e = 0; e < E; e++)
                ref[e] = 1.0 / (1.0 + exp(-(double)z[e]));
            rs_balance_sigmoid(z, E, p);
            ck_assert_msg(memcmp(p, ref, (size_t)E * sizeof *p) == 0, "E=%d kind %d: sigmoid", E, kind);
            double got_max, norm = rs_balance_log_norm(z, E, &got_max);
            ck_assert(same_bits(got_max, max));
            ck_assert(same_bits(norm, log(sum)));
        }
    }
    free(z);
    free(p);
    free(ref);
}
END_TEST

/* The scaling as plain loops: each row's sum over experts, each column's
 * over tokens, both in index order. */
static int reference_sinkhorn(const double *K, int T, int E, double tol, int max_iter, double *d0, double *d1)
{
    double *col = malloc((size_t)E * sizeof *col);
    for (int e = 0; e < E; e++)
        d1[e] = 1.0;
    int rounds = 0;
    double change = INFINITY;
    while (rounds < max_iter && (tol < 0 || change > tol)) {
        for (int t = 0; t < T; t++) {
            double sum = 0.0;
            for (int e = 0; e < E; e++)
                sum += d1[e] * K[(size_t)t * E + e];
            d0[t] = 1.0 / ((double)T * (sum > DBL_MIN ? sum : DBL_MIN));
        }
        for (int e = 0; e < E; e++) {
            col[e] = 0.0;
            for (int t = 0; t < T; t++)
                col[e] += d0[t] * K[(size_t)t * E + e];
        }
        double total = 0.0;
        for (int e = 0; e < E; e++) {
            double next = 1.0 / ((double)E * (col[e] > DBL_MIN ? col[e] : DBL_MIN));
            total += fabs(d1[e] - next);
            d1[e] = next;
        }
        change = total / E;
        rounds++;
    }
    free(col);
    return rounds;
}

START_TEST(sinkhorn_matches_plain_loops)
{
    static const int Ts[] = {1, 3, 31, 32, 33, 100}, Es[] = {5, 32, 40, 64, 67};
    for (size_t a = 0; a < sizeof Ts / sizeof Ts[0]; a++) {
        for (size_t b = 0; b < sizeof Es / sizeof Es[0]; b++) {
            const int T = Ts[a], E = Es[b];
            rs_sinkhorn_scratch x = {0};
            ck_assert_int_eq(rs_sinkhorn_scratch_init(&x, E), 0);
            ck_assert_int_eq(rs_sinkhorn_scratch_reserve(&x, (size_t)T, E, 1), 0);
            double *d0 = malloc((size_t)T * sizeof *d0), *d1 = malloc((size_t)E * sizeof *d1);
            for (int i = 0; i < T * E; i++) /* kernel values exp(z - max): in (0, 1], some underflowing */
                x.kernel[i] = next_uniform() < 0.02 ? 1e-310 : exp(-12.0 * next_uniform());
            for (int mode = 0; mode < 2; mode++) {
                double tol = mode ? 1e-4 : -1.0;
                int iters = mode ? 1000 : 7;
                int ref_rounds = reference_sinkhorn(x.kernel, T, E, tol, iters, d0, d1);
                int rounds = rs_balance_sinkhorn(x.kernel, T, E, tol, iters, x.d0, x.d1, x.col, x.kernel_t);
                ck_assert_int_eq(rounds, ref_rounds);
                ck_assert_msg(memcmp(x.d0, d0, (size_t)T * sizeof *d0) == 0, "T=%d E=%d: d0", T, E);
                ck_assert_msg(memcmp(x.d1, d1, (size_t)E * sizeof *d1) == 0, "T=%d E=%d: d1", T, E);
            }
            free(d0);
            free(d1);
            rs_sinkhorn_scratch_free(&x);
        }
    }
}
END_TEST

Suite *balance_rows_suite(void)
{
    Suite *s = suite_create("balance_rows");
    TCase *tc = tcase_create("balance_rows");
    tcase_add_test(tc, topk_matches_insertion);
    tcase_add_test(tc, row_scores_match_scalar_loops);
    tcase_add_test(tc, sinkhorn_matches_plain_loops);
    suite_add_tcase(s, tc);
    return s;
}
