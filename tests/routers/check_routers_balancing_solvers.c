/* The balancing routers against brute force and across chunk splits: BASE's
 * assignment equals the best of all balanced assignments (enumerated) on
 * random small groups with ties and is locally optimal (no improving swap or
 * move) on larger ones, and every section-B router decides the same
 * whether a trace comes in one chunk or in chunks cut at group boundaries. */
#include <math.h>
#include <stdio.h>

#include "tests/routers/check_routers_balancing.h"

static uint64_t rng_state;

static double uniform(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) * 0x1p-53;
}

/* Best summed logit over all assignments of m tokens (rows of z) to E experts
 * with loads floor(m/E) or ceil(m/E). */
static double brute_force_best(const float *z, int m, int E)
{
    int F = m / E, ceiling = F + (m % E > 0), assign[16] = {0};
    double best = -INFINITY;
    for (;;) {
        int load[16] = {0}, ok = 1;
        double sum = 0.0;
        for (int t = 0; t < m; t++) {
            load[assign[t]]++;
            sum += z[t * E + assign[t]];
        }
        for (int e = 0; e < E; e++)
            ok &= load[e] >= F && load[e] <= ceiling;
        if (ok && sum > best)
            best = sum;
        int t = 0; /* next assignment, as a base-E counter */
        while (t < m && ++assign[t] == E)
            assign[t++] = 0;
        if (t == m)
            return best;
    }
}

/* Checks one group's assignment: balanced loads and the brute-force optimum. */
static void check_group_optimal(const float *z, const int32_t *ids, int m, int E, const char *what)
{
    int load[16] = {0}, F = m / E;
    double sum = 0.0;
    for (int t = 0; t < m; t++) {
        ck_assert_msg(ids[t] >= 0 && ids[t] < E, "%s: token %d got %d", what, t, ids[t]);
        load[ids[t]]++;
        sum += z[t * E + ids[t]];
    }
    for (int e = 0; e < E; e++)
        ck_assert_msg(load[e] == F || (load[e] == F + 1 && m % E), "%s: expert %d has %d tokens", what, e, load[e]);
    double best = brute_force_best(z, m, E);
    ck_assert_msg(fabs(sum - best) <= 1e-9 * (1 + fabs(best)), "%s: sum %.17g, best %.17g", what, sum, best);
}

/* Checks a group too large to enumerate: loads floor(m/E) or ceil(m/E)
 * with m mod E at the ceiling, no exchange of two tokens' experts improves
 * the sum, nor a move from an expert at the ceiling to one at the floor. */
static void check_locally_optimal(const float *z, const int32_t *ids, int m, int E)
{
    int load[64] = {0}, F = m / E, at_ceiling = 0;
    for (int t = 0; t < m; t++)
        load[ids[t]]++;
    for (int e = 0; e < E; e++) {
        ck_assert_msg(load[e] == F || (load[e] == F + 1 && m % E), "m=%d E=%d: expert %d has %d", m, E, e, load[e]);
        at_ceiling += load[e] == F + 1;
    }
    ck_assert_int_eq(at_ceiling, m % E);
    for (int a = 0; a < m; a++) {
        int ea = ids[a];
        for (int b = a + 1; b < m; b++) {
            int eb = ids[b];
            double gain = (double)z[a * E + eb] + z[b * E + ea] - z[a * E + ea] - z[b * E + eb];
            ck_assert_msg(gain <= 1e-9, "m=%d E=%d: swapping tokens %d and %d gains %g", m, E, a, b, gain);
        }
        for (int e = 0; e < E; e++)
            if (load[e] == F && load[ea] == F + 1)
                ck_assert_msg(z[a * E + e] <= z[a * E + ea], "m=%d E=%d: moving token %d to %d gains", m, E, a, e);
    }
}

START_TEST(base_matches_brute_force)
{
    rng_state = 0x2545f4914f6cdd1dULL;
    for (int c = 0; c < 400; c++) {
        int E = 2 + c % 3, m = 1 + (int)(uniform() * (E == 4 ? 8 : 9));
        float z[16 * 4];
        for (int i = 0; i < m * E; i++) /* a third with many ties (3 levels), the rest continuous */
            z[i] = c % 3 == 0 ? (float)floor(uniform() * 3) * 0.5f : (float)(uniform() * 4 - 2);
        rs_test_chunk tc;
        balancing_chunk(&tc, 0, m, 1, E, z, NULL, 0, m);
        routed r = balancing_route_once("base", &tc, m);
        char what[64];
        snprintf(what, sizeof what, "case %d (m=%d, E=%d)", c, m, E);
        check_group_optimal(z, r.ids, m, E, what);
        routed_free(&r);
        rs_test_chunk_free(&tc);
    }
}
END_TEST

START_TEST(base_groups_and_larger_cases)
{
    /* 12 tokens in batches of 5: groups of 5, 5 and 2, each optimal on its own */
    rng_state = 99;
    float z[12 * 3];
    for (int i = 0; i < 36; i++)
        z[i] = (float)floor(uniform() * 4) * 0.25f;
    rs_test_chunk tc;
    balancing_chunk(&tc, 0, 12, 1, 3, z, NULL, 0, 5);
    routed r = balancing_route_once("base", &tc, 5);
    check_group_optimal(z, r.ids, 5, 3, "group 0");
    check_group_optimal(z + 15, r.ids + 5, 5, 3, "group 1");
    check_group_optimal(z + 30, r.ids + 10, 2, 3, "group 2");
    routed_free(&r);
    rs_test_chunk_free(&tc);

    /* 203 tokens on 8 experts: balanced (25 or 26, three at 26) and no exchange
     * of two tokens' experts, nor a move into a spare slot, improves the sum. */
    enum { M = 203, E = 8 };
    float *big = rs_test_random_logits(M, 1, E, 5);
    for (int i = 0; i < M * E; i += 3)
        big[i] = roundf(big[i] * 2) / 2; /* some exact ties */
    balancing_chunk(&tc, 0, M, 1, E, big, NULL, 0, M);
    r = balancing_route_once("base", &tc, M);
    check_locally_optimal(big, r.ids, M, E);
    routed_free(&r);
    rs_test_chunk_free(&tc);
    free(big);

    /* all-equal logits: any balanced assignment is optimal; this one is balanced */
    float flat[10 * 4] = {0};
    balancing_chunk(&tc, 0, 10, 1, 4, flat, NULL, 0, 10);
    r = balancing_route_once("base", &tc, 10);
    check_group_optimal(flat, r.ids, 10, 4, "all equal");
    routed_free(&r);
    rs_test_chunk_free(&tc);
}
END_TEST

/* Expert counts that are not a multiple of the solver's vector step (its
 * rows carry padding), group sizes with and without spare slots, few
 * members per expert and many, logits on a coarse grid (many exact ties). */
START_TEST(base_locally_optimal_on_odd_expert_counts)
{
    static const int shapes[][2] = {{61, 13}, {45, 20}, {130, 5}, {37, 37}, {150, 33}, {64, 9}};
    for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++) {
        int m = shapes[c][0], E = shapes[c][1];
        float *z = rs_test_random_logits(m, 1, E, 40 + (int)c);
        for (int i = 0; i < m * E; i++)
            z[i] = roundf(z[i] * 2) / 2;
        rs_test_chunk tc;
        balancing_chunk(&tc, 0, m, 1, E, z, NULL, 0, m);
        routed r = balancing_route_once("base", &tc, m);
        check_locally_optimal(z, r.ids, m, E);
        routed_free(&r);
        rs_test_chunk_free(&tc);
        free(z);
    }
}
END_TEST

/* The part of sequences `lengths` inside tokens [a, b), as lengths. */
static int clip_sequences(const int *lengths, int count, int a, int b, int *out)
{
    int n = 0;
    for (int s = 0, start = 0; s < count; start += lengths[s++]) {
        int lo = start > a ? start : a, hi = start + lengths[s] < b ? start + lengths[s] : b;
        if (hi > lo)
            out[n++] = hi - lo;
    }
    return n;
}

/* 1 when no group of the whole chunk holds tokens on both sides of x. */
static int is_group_boundary(const rs_groups *g, int x)
{
    for (int i = 0; i < g->count; i++) {
        int before = 0, after = 0;
        for (int j = g->start[i]; j < g->start[i + 1]; j++) {
            if (g->tokens[j] < x)
                before = 1;
            else
                after = 1;
        }
        if (before && after)
            return 0;
    }
    return 1;
}

static const char *split_specs[] = {
    "aux_free_bias:k=2,group=batch",
    "aux_free_bias:k=2,score=sigmoid,renorm=1,group=sequence",
    "quantile_balance:k=2,group=step",
    "quantile_balance:k=1,ema=0.5,score=sigmoid,group=batch",
    "ema_penalty:k=2,ep_ranks=3,group=step",
    "ema_penalty:k=1,alpha=0.3,group=batch",
    "expert_choice:group=batch",
    "expert_choice:capacity_factor=1.5,capacity_rounding=round,group=step",
    "base:group=batch",
    "base:group=sequence",
    "sinkhorn:k=2,group=sequence",
    "sinkhorn:group=step",
    "selective_sinkhorn:fraction=0.5,group=batch",
    "selective_sinkhorn:fraction=0.3,eps=0.5,group=sequence",
};

START_TEST(chunk_splits_do_not_change_decisions)
{
    enum { N = 60, L = 2, E = 6, B = 8 };
    const int lengths[] = {3, 4, 5, 2, 6, 7, 3, 5, 4, 6, 8, 7};
    const int count = sizeof lengths / sizeof lengths[0];
    const char *spec = split_specs[_i];
    float *z = rs_test_random_logits(N, L, E, 23);
    for (int i = 0; i < N * L * E; i++)
        z[i] = roundf(z[i] * 4) / 4; /* ties within rows and across tokens */
    uint8_t valid[N];
    for (int t = 0; t < N; t++)
        valid[t] = t % 17 != 5; /* a few skipped tokens */

    rs_test_chunk whole;
    balancing_chunk(&whole, 0, N, L, E, z, lengths, count, B);
    whole.chunk.valid = valid;
    balancing_run r;
    balancing_open(&r, spec, L, E, B);
    const rs_groups *groups = whole.chunk.groups[r.shape.group];
    int kmax = r.shape.kmax;
    size_t cells = (size_t)N * L * (size_t)kmax;
    int32_t *ids = malloc(cells * sizeof *ids), *split_ids = malloc(cells * sizeof *ids);
    float *w = malloc(cells * sizeof *w), *split_w = malloc(cells * sizeof *w);
    balancing_route(&r, &whole, ids, w);
    balancing_close(&r);

    /* cut at the first group boundaries past N/3 and 2N/3 */
    int cuts[4] = {0, N / 3, 2 * N / 3, N};
    for (int c = 1; c <= 2; c++)
        while (!is_group_boundary(groups, cuts[c]))
            cuts[c]++;
    ck_assert_msg(cuts[1] < cuts[2] && cuts[2] < N, "%s: no cut points", spec);
    balancing_open(&r, spec, L, E, B);
    for (int c = 0; c < 3; c++) {
        int a = cuts[c], b = cuts[c + 1], pieces[16];
        int n = clip_sequences(lengths, count, a, b, pieces);
        rs_test_chunk part;
        balancing_chunk(&part, a, b - a, L, E, z + (size_t)a * L * E, pieces, n, B);
        part.chunk.valid = valid + a;
        size_t off = (size_t)a * L * (size_t)kmax;
        balancing_route(&r, &part, split_ids + off, split_w + off);
        rs_test_chunk_free(&part);
    }
    balancing_close(&r);
    for (size_t i = 0; i < cells; i++) {
        ck_assert_msg(ids[i] == split_ids[i], "%s: id cell %zu: %d whole, %d split at %d, %d", spec, i, ids[i],
                      split_ids[i], cuts[1], cuts[2]);
        ck_assert_msg(memcmp(&w[i], &split_w[i], sizeof w[i]) == 0, "%s: weight cell %zu differs", spec, i);
    }
    /* skipped tokens have empty rows */
    for (int t = 0; t < N; t++)
        if (!valid[t])
            ck_assert_int_eq(ids[(size_t)t * L * kmax], -1);
    rs_test_chunk_free(&whole);
    free(ids);
    free(split_ids);
    free(w);
    free(split_w);
    free(z);
}
END_TEST

TCase *routers_balancing_solver_tcase(void)
{
    TCase *tc = tcase_create("solvers");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, base_matches_brute_force);
    tcase_add_test(tc, base_groups_and_larger_cases);
    tcase_add_test(tc, base_locally_optimal_on_odd_expert_counts);
    tcase_add_loop_test(tc, chunk_splits_do_not_change_decisions, 0, sizeof split_specs / sizeof split_specs[0]);
    return tc;
}
