/* The top-k kernel and the whole-row ranking against a plain reference
 * (sort by (-value, index)), on every code path: the threshold path (k <=
 * 16, 32 <= n <= 1024), the insertion fallback, the radix ranking, the
 * ranking walk and its counted prefix, the walk started from a mass
 * estimate, ties, signed zeros, NaN-free extremes. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "routers/common/gather_levels.h"
#include "routers/common/rank_sort.h"
#include "routesim/select.h"

typedef struct ranked {
    float v;
    int32_t i;
} ranked;

static int by_value_then_index(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->v != y->v)
        return x->v > y->v ? -1 : 1;
    return x->i < y->i ? -1 : 1;
}

static void reference_topk(const float *v, int n, int k, int32_t *out)
{
    ranked *r = malloc((size_t)n * sizeof *r);
    for (int i = 0; i < n; i++)
        r[i] = (ranked){v[i], i};
    qsort(r, (size_t)n, sizeof *r, by_value_then_index);
    for (int j = 0; j < k; j++)
        out[j] = r[j].i;
    free(r);
}

static uint64_t state = 88172645463325252ULL;
static double next_uniform(void)
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return (double)(state >> 11) * 0x1p-53;
}

/* quantum > 0 rounds values to multiples of it, which makes ties common */
static void check_case(int n, int k, float quantum, int rows)
{
    float *v = malloc((size_t)n * sizeof *v);
    int32_t got[64], want[64];
    float scratch[64];
    for (int r = 0; r < rows; r++) {
        for (int i = 0; i < n; i++) {
            float x = (float)(next_uniform() * 8.0 - 4.0);
            v[i] = quantum > 0 ? roundf(x / quantum) * quantum : x;
        }
        if (r % 7 == 3)
            v[n - 1] = 1e30f; /* an extreme value in the scalar tail */
        rs_topk_indices(v, n, k, got, scratch);
        reference_topk(v, n, k, want);
        int slot = 0;
        while (slot < k && got[slot] == want[slot])
            slot++;
        ck_assert_msg(slot == k, "n=%d k=%d quantum=%g row %d: slot %d holds expert %d, reference %d", n, k, quantum,
                      r, slot, slot < k ? got[slot] : -1, slot < k ? want[slot] : -1);
    }
    free(v);
}

static const int sizes[] = {8, 31, 32, 33, 64, 100, 256, 257, 1000, 1024, 1025, 2048};

START_TEST(topk_matches_reference)
{
    int n = sizes[_i];
    const int ks[] = {1, 2, 4, 6, 8, 15, 16, 17, 32};
    for (size_t j = 0; j < sizeof ks / sizeof ks[0]; j++) {
        if (ks[j] > n)
            continue;
        check_case(n, ks[j], 0.0f, 60);
        check_case(n, ks[j], 0.25f, 60); /* many ties */
        check_case(n, ks[j], 4.0f, 20);  /* a handful of distinct values */
    }
}
END_TEST

START_TEST(all_equal_row_takes_lowest_indices)
{
    float v[300];
    for (int i = 0; i < 300; i++)
        v[i] = -1.5f;
    int32_t got[16];
    float scratch[16];
    rs_topk_indices(v, 300, 16, got, scratch);
    for (int j = 0; j < 16; j++)
        ck_assert_int_eq(got[j], j);
}
END_TEST

START_TEST(gather_at_least_is_ordered_and_complete)
{
    float v[1000];
    int32_t idx[1000 + 16];
    float val[1000 + 16];
    for (int i = 0; i < 1000; i++)
        v[i] = (float)((i * 37) % 101);
    int c = rs_gather_at_least(v, 1000, 95.0f, idx, val);
    int want = 0;
    for (int i = 0; i < 1000; i++)
        want += v[i] >= 95.0f;
    ck_assert_int_eq(c, want);
    for (int j = 0; j < c; j++) {
        ck_assert(val[j] >= 95.0f);
        ck_assert_float_eq(val[j], v[idx[j]]);
        if (j)
            ck_assert_int_lt(idx[j - 1], idx[j]);
    }
}
END_TEST

/* Every gather path this CPU runs (AVX-512 compress, AVX2 permutation
 * table, scalar) returns the same count, indices and values as a plain
 * filter loop: lengths around the 8- and 16-lane blocks, thresholds taking
 * none, some or all, ties at tau, signed zeros and NaNs (never gathered). */
START_TEST(gather_paths_match_plain_filter)
{
    static const int ns[] = {0, 1, 7, 8, 9, 15, 16, 17, 31, 33, 64, 255, 256, 1000};
    const int top = rs_gather_isa_level();
    float v[1000];
    int32_t idx[1000 + 16], want_idx[1000];
    float val[1000 + 16], want_val[1000];
    int paths = 0;
    for (int level = 1; level <= top; level += level == 1 ? 2 : 1) {
        paths++;
        for (size_t c = 0; c < sizeof ns / sizeof ns[0]; c++) {
            const int n = ns[c];
            for (int r = 0; r < 40; r++) {
                for (int i = 0; i < n; i++) {
                    v[i] = roundf((float)(next_uniform() * 8.0 - 4.0) * 2.0f) / 2.0f; /* ties at tau */
                    if (next_uniform() < 0.03)
                        v[i] = next_uniform() < 0.5 ? -0.0f : NAN;
                }
                const float tau = r == 0 ? -INFINITY : r == 1 ? INFINITY : r == 2 ? 0.0f : (float)(r % 9) - 4.0f;
                int want = 0;
                for (int i = 0; i < n; i++)
                    if (v[i] >= tau) {
                        want_idx[want] = i;
                        want_val[want++] = v[i];
                    }
                int got = rs_gather_at_least_level(level, v, n, tau, idx, val);
                int slot = 0; /* the first slot that differs (same bits: -0 kept) */
                while (slot < got && slot < want && idx[slot] == want_idx[slot] &&
                       memcmp(&val[slot], &want_val[slot], sizeof val[slot]) == 0)
                    slot++;
                if (got != want || slot < got)
                    ck_abort_msg("level %d n=%d tau=%g: %d gathered (%d expected), first difference at slot %d",
                                 level, n, tau, got, want, slot);
            }
        }
    }
    ck_assert_int_ge(paths, 1);
    ck_assert_int_eq(rs_gather_at_least(v, 0, 0.0f, idx, val), 0);
}
END_TEST

/* rs_rank_top beyond RS_LANES ranks the whole row (radix sort on the value
 * key): the same order as the reference, ties to the lower index, -0 tied
 * with +0, infinities at the ends. */
START_TEST(whole_row_ranking_matches_reference)
{
    static const int ns[] = {1, 2, 17, 255, 256, 300, 4096};
    static rs_rank_scratch scratch; /* large: not on the test's stack */
    float *v = malloc(4096 * sizeof *v);
    int32_t *want = malloc(4096 * sizeof *want);
    for (size_t c = 0; c < sizeof ns / sizeof ns[0]; c++) {
        const int n = ns[c];
        for (int r = 0; r < 20; r++) {
            float quantum = r % 3 == 0 ? 0.5f : r % 3 == 1 ? 1e-3f : 0.0f;
            for (int i = 0; i < n; i++) {
                float x = (float)(next_uniform() * 8.0 - 4.0);
                v[i] = quantum > 0 ? roundf(x / quantum) * quantum : x;
                if (next_uniform() < 0.05)
                    v[i] = next_uniform() < 0.5 ? -0.0f : 0.0f;
            }
            if (n > 4 && r % 5 == 1) {
                v[1] = INFINITY;
                v[3] = -INFINITY;
                v[n - 1] = 1e-40f; /* subnormal */
            }
            ck_assert_int_eq(rs_rank_top(v, n, n, &scratch), n); /* radix from n = 17 on */
            reference_topk(v, n, n, want);
            for (int j = 0; j < n; j++)
                ck_assert_msg(scratch.order[j] == want[j], "n=%d row %d: rank %d holds expert %d, reference %d", n, r,
                              j, scratch.order[j], want[j]);
        }
    }
    free(v);
    free(want);
}
END_TEST

/* The walk (first RS_LANES by top-k, then the counted prefix, then the whole
 * row) hands out the experts in the reference order at every step, on rows
 * with ties, signed zeros and infinities, for row lengths below, at and
 * above the prefix step's limits. */
START_TEST(walk_ranking_matches_reference)
{
    static const int ns[] = {8, 64, 127, 128, 255, 256, 300, 1024, 1025};
    static rs_rank_scratch scratch;
    float *v = malloc(1025 * sizeof *v);
    int32_t *want = malloc(1025 * sizeof *want);
    for (size_t c = 0; c < sizeof ns / sizeof ns[0]; c++) {
        const int n = ns[c];
        for (int r = 0; r < 30; r++) {
            float quantum = r % 3 == 0 ? 0.5f : r % 3 == 1 ? 1e-3f : 0.0f;
            for (int i = 0; i < n; i++) {
                float x = (float)(next_uniform() * 8.0 - 4.0);
                v[i] = quantum > 0 ? roundf(x / quantum) * quantum : x;
                if (next_uniform() < 0.05)
                    v[i] = next_uniform() < 0.5 ? -0.0f : 0.0f;
            }
            if (r % 7 == 3) /* every value tied */
                for (int i = 0; i < n; i++)
                    v[i] = 1.0f;
            if (n > 4 && r % 5 == 1) {
                v[1] = INFINITY;
                v[3] = -INFINITY;
            }
            reference_topk(v, n, n, want);
            int ranked = rs_rank_walk_start(v, n, &scratch);
            for (int m = 0; m < n; m++) {
                int32_t e = rs_rank_walk_at(v, n, m, &ranked, &scratch);
                ck_assert_msg(e == want[m], "n=%d row %d: step %d gives expert %d, reference %d", n, r, m, e,
                              want[m]);
            }
        }
    }
    free(v);
    free(want);
}
END_TEST

/* The walk started from the mass estimate (rs_rank_mass_prefix) hands out
 * the experts in the reference order at every step, on rows with ties,
 * signed zeros and infinities, for masses from 0 to 1 and row lengths
 * below, at and above the estimate's limits. On finite rows it handles
 * (32 <= n <= 1024, values within the span below the maximum) the prefix
 * it ranks at once holds more than the mass: the walk of a top-p or
 * threshold rule stops inside it. p is the softmax of the row. */
START_TEST(mass_prefix_walk_matches_reference)
{
    static const int ns[] = {8, 63, 64, 127, 256, 300, 1024, 1025};
    static const double masses[] = {0.0, 0.05, 0.4, 0.9, 0.99, 1.0};
    static rs_rank_scratch scratch;
    float *v = malloc(1025 * sizeof *v), *p = malloc(1025 * sizeof *p);
    int32_t *want = malloc(1025 * sizeof *want);
    int covered = 0;
    for (size_t c = 0; c < sizeof ns / sizeof ns[0]; c++) {
        const int n = ns[c];
        for (int r = 0; r < 24; r++) {
            float quantum = r % 3 == 0 ? 0.5f : r % 3 == 1 ? 1e-3f : 0.0f;
            double scale = r % 4 == 0 ? 1.0 : 8.0; /* flat rows and peaked ones */
            for (int i = 0; i < n; i++) {
                float x = (float)((next_uniform() * 2.0 - 1.0) * scale);
                v[i] = quantum > 0 ? roundf(x / quantum) * quantum : x;
                if (next_uniform() < 0.05)
                    v[i] = next_uniform() < 0.5 ? -0.0f : 0.0f;
            }
            if (r % 7 == 3) /* every value tied */
                for (int i = 0; i < n; i++)
                    v[i] = 1.0f;
            const int infinite = n > 4 && r % 5 == 1;
            double top = -INFINITY, sum = 0.0;
            for (int i = 0; i < n; i++)
                top = v[i] > top ? v[i] : top;
            for (int i = 0; i < n; i++)
                sum += exp((double)v[i] - top);
            for (int i = 0; i < n; i++)
                p[i] = (float)(exp((double)v[i] - top) / sum);
            if (infinite) {
                v[1] = INFINITY;
                v[3] = -INFINITY;
            }
            reference_topk(v, n, n, want);
            for (size_t k = 0; k < sizeof masses / sizeof masses[0]; k++) {
                int ranked = rs_rank_mass_prefix(v, p, n, masses[k], &scratch);
                ck_assert_int_ge(ranked, 1);
                if (!infinite && n >= 2 * RS_LANES && n <= 1024 && masses[k] <= 0.99) {
                    double held = 0.0;
                    for (int j = 0; j < ranked; j++)
                        held += p[scratch.order[j]];
                    ck_assert_msg(held > masses[k], "n=%d row %d mass %g: the %d ranked at once hold %g", n, r,
                                  masses[k], ranked, held);
                    covered++;
                }
                for (int m = 0; m < n; m++) {
                    int32_t e = rs_rank_walk_at(v, n, m, &ranked, &scratch);
                    ck_assert_msg(e == want[m], "n=%d row %d mass %g: step %d gives expert %d, reference %d", n, r,
                                  masses[k], m, e, want[m]);
                }
            }
        }
    }
    ck_assert_int_gt(covered, 500);
    free(v);
    free(p);
    free(want);
}
END_TEST

/* rs_rank_gathered orders any subset like the reference, through both the
 * counting path (up to RS_RANK_COUNT_MAX, on value keys: ties by index,
 * -0 tied with +0, infinities at the ends) and the sort. */
START_TEST(gathered_ranking_matches_reference)
{
    static rs_rank_scratch scratch;
    static const int sizes_kept[] = {1, 2, 15, 16, 17, 100, 128, 129, 300};
    float v[600], cv[300 + 16], kept_v[300];
    int32_t cand[300 + 16], out[300], want[300];
    for (size_t c = 0; c < sizeof sizes_kept / sizeof sizes_kept[0]; c++) {
        const int m = sizes_kept[c];
        for (int i = 0; i < 600; i++) {
            v[i] = roundf((float)(next_uniform() * 40.0 - 20.0)) * 0.25f;
            if (next_uniform() < 0.05)
                v[i] = next_uniform() < 0.5 ? -0.0f : 0.0f;
            if (next_uniform() < 0.02)
                v[i] = next_uniform() < 0.5 ? -INFINITY : INFINITY;
        }
        for (int i = 0; i < m; i++) { /* every other expert, in index order */
            cand[i] = 2 * i;
            cv[i] = v[2 * i];
            kept_v[i] = v[2 * i];
        }
        rs_rank_gathered(cv, cand, m, out, &scratch);
        reference_topk(kept_v, m, m, want);
        for (int j = 0; j < m; j++)
            ck_assert_msg(out[j] == 2 * want[j], "m=%d rank %d: expert %d, reference %d", m, j, out[j], 2 * want[j]);
    }
}
END_TEST

Suite *select_suite(void)
{
    Suite *s = suite_create("select");
    TCase *tc = tcase_create("select");
    tcase_add_loop_test(tc, topk_matches_reference, 0, sizeof sizes / sizeof sizes[0]);
    tcase_add_test(tc, all_equal_row_takes_lowest_indices);
    tcase_add_test(tc, gather_at_least_is_ordered_and_complete);
    tcase_add_test(tc, gather_paths_match_plain_filter);
    tcase_add_test(tc, whole_row_ranking_matches_reference);
    tcase_add_test(tc, walk_ranking_matches_reference);
    tcase_add_test(tc, gathered_ranking_matches_reference);
    tcase_add_test(tc, mass_prefix_walk_matches_reference);
    suite_add_tcase(s, tc);
    return s;
}
