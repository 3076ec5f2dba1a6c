/* The balancing routers' column selections (rs_balance_select_best,
 * rs_balance_kth_largest) against a plain reference: sort by (-value,
 * index) and take the first c. Rows mix coarse ties, signed zeros,
 * negatives, tiny and huge magnitudes, and all-equal columns, so every
 * narrowing step of the radix selection and its small-set finish run. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "routers/common/balance_util.h"

typedef struct entry {
    double v;
    int32_t i;
} entry;

static int larger_then_earlier(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    if (x->v != y->v)
        return x->v > y->v ? -1 : 1;
    return x->i < y->i ? -1 : 1;
}

static uint64_t state = 0x9E3779B97F4A7C15ULL;
static double next_uniform(void)
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return (double)(state >> 11) / 9007199254740992.0;
}

static double draw(int kind)
{
    double u = next_uniform();
    switch (kind) {
    case 0:
        return u; /* probabilities */
    case 1:
        return (double)(int)(u * 5.0) - 2.0; /* five values, many ties */
    case 2:
        return u < 0.1 ? -0.0 : u < 0.2 ? 0.0 : (u - 0.5) * 1e-300;
    case 3:
        return (u - 0.5) * (u < 0.5 ? 1e300 : 1e-3);
    default:
        return 0.25; /* all equal */
    }
}

START_TEST(selection_matches_reference)
{
    static const int ns[] = {1, 2, 16, 17, 100, 512, 1000};
    double *key = malloc(1000 * sizeof *key), *copy = malloc(1000 * sizeof *copy);
    int32_t *pos = malloc(1000 * sizeof *pos);
    entry *ref = malloc(1000 * sizeof *ref);
    for (size_t c = 0; c < sizeof ns / sizeof ns[0]; c++) {
        const int n = ns[c];
        for (int kind = 0; kind < 5; kind++) {
            for (int i = 0; i < n; i++) {
                copy[i] = draw(kind);
                ref[i] = (entry){copy[i], i};
            }
            qsort(ref, (size_t)n, sizeof *ref, larger_then_earlier);
            /* up to 16 picks take the insertion path, more the radix selection */
            const int picks[] = {1, 2, 5, 16, 17, n / 3 + 1, n / 2, n - 1, n};
            for (int p = 0; p < 9; p++) {
                int want = picks[p];
                if (want < 1 || want > n)
                    continue;
                for (int i = 0; i < n; i++)
                    key[i] = copy[i];
                double kth = rs_balance_kth_largest(key, pos, n, want);
                ck_assert_msg(kth == ref[want - 1].v, "n=%d kind %d: %d-th largest %g, reference %g", n, kind, want,
                              kth, ref[want - 1].v);
                int first = 0; /* of equal values the first in index order: the sign of a zero */
                while (!(copy[first] == ref[want - 1].v))
                    first++;
                ck_assert_msg(memcmp(&kth, &copy[first], sizeof kth) == 0, "n=%d kind %d: %d-th largest's bits", n,
                              kind, want);
                for (int i = 0; i < n; i++)
                    key[i] = copy[i];
                rs_balance_select_best(key, pos, n, want);
                /* the chosen set in index order: the reference's first want, sorted by index */
                char *chosen = calloc((size_t)n, 1);
                for (int j = 0; j < want; j++)
                    chosen[ref[j].i] = 1;
                int at = 0;
                for (int i = 0; i < n; i++) {
                    if (!chosen[i])
                        continue;
                    ck_assert_msg(pos[at] == i, "n=%d kind %d c=%d: slot %d holds %d, reference %d", n, kind, want,
                                  at, pos[at], i);
                    ck_assert(memcmp(&key[at], &copy[i], sizeof key[at]) == 0);
                    at++;
                }
                ck_assert_int_eq(at, want);
                free(chosen);
            }
        }
    }
    free(key);
    free(copy);
    free(pos);
    free(ref);
}
END_TEST

Suite *balance_select_suite(void)
{
    Suite *s = suite_create("balance_select");
    TCase *tc = tcase_create("balance_select");
    tcase_add_test(tc, selection_matches_reference);
    suite_add_tcase(s, tc);
    return s;
}
