/* The balancing routers of docs/routers.md section B on hand-built chunks.
 * Every expected id and weight below is worked out by hand in the comments
 * (s() = sigmoid); the solver cases and the chunk-split invariance live in
 * check_routers_balancing_solvers.c. */
#include <math.h>

#include "tests/routers/check_routers_balancing.h"

static double sig(double x) { return 1.0 / (1.0 + exp(-x)); }

/* Fills n rows of E logits by repeating `row` (len E). */
static float *repeat_rows(const float *row, int E, int n)
{
    float *z = malloc((size_t)n * (size_t)E * sizeof *z);
    ck_assert_ptr_nonnull(z);
    for (int t = 0; t < n; t++)
        memcpy(z + (size_t)t * E, row, (size_t)E * sizeof *z);
    return z;
}

static void expect_ids(const routed *r, const int32_t *want, int cells)
{
    for (int i = 0; i < cells; i++)
        ck_assert_msg(r->ids[i] == want[i], "cell %d: id %d, expected %d", i, r->ids[i], want[i]);
}

START_TEST(aux_free_bias_state_by_hand)
{
    /* Megatron get_updated_expert_bias: b_e += u sign(mean load - load_e) after
     * each group of 2 tokens; k = 1, sigmoid scores, u = 0.25.
     * layer 0, every token z = [2, 1, 0, 0], s = [s(2), s(1), .5, .5]:
     *  g0 b = 0                     -> e0 e0, b = [-.25, .25, .25, .25]
     *  g1 s+b = [.63, .98, .75, .75] -> e1 e1, b = [0, 0, .5, .5]
     *  g2 s+b = [.88, .73, 1, 1]     -> tie, e2 e2, b = [.25, .25, .25, .75]
     *  g3 s+b = [1.13, .98, .75, 1.25] -> e3 e3, b = [.5, .5, .5, .5]
     *  g4 -> e0 e0
     * layer 1, every token z = [0, 0, 0, 1], s = [.5, .5, .5, s(1)]:
     *  g0 -> e3, b = [.25, .25, .25, -.25]; g1 s+b = [.75, .75, .75, .48] -> e0,
     *  b = [0, .5, .5, 0]; g2 [.5, 1, 1, .73] -> e1, b = [.25, .25, .75, .25];
     *  g3 [.75, .75, 1.25, .98] -> e2, b = [.5, .5, .5, .5]; g4 -> e3 */
    enum { N = 10, L = 2, E = 4 };
    float z[N * L * E];
    const float rows[L][E] = {{2, 1, 0, 0}, {0, 0, 0, 1}};
    for (int t = 0; t < N; t++)
        for (int l = 0; l < L; l++)
            memcpy(z + (t * L + l) * E, rows[l], sizeof rows[l]);
    rs_test_chunk tc;
    balancing_chunk(&tc, 0, N, L, E, z, NULL, 0, 2);
    routed r = balancing_route_once("aux_free_bias:k=1,score=sigmoid,u=0.25,group=batch", &tc, 2);
    const int32_t want[N][L] = {{0, 3}, {0, 3}, {1, 0}, {1, 0}, {2, 1}, {2, 1}, {3, 2}, {3, 2}, {0, 3}, {0, 3}};
    expect_ids(&r, &want[0][0], N * L);
    /* weights are the unbiased scores */
    const double w0[] = {sig(2), sig(2), sig(1), sig(1), .5, .5, .5, .5, sig(2), sig(2)};
    for (int t = 0; t < N; t++)
        ck_assert_double_eq_tol(r.w[t * L], w0[t], 1e-6);
    ck_assert_double_eq_tol(r.w[1], sig(1), 1e-6);
    ck_assert_double_eq_tol(r.w[5], 0.5, 1e-6);
    routed_free(&r);
    rs_test_chunk_free(&tc);
}
END_TEST

START_TEST(aux_free_bias_softmax_top2)
{
    /* z = log [4, 2, 1, 2]: p = [4, 2, 1, 2] / 9, groups of one token, u = 0.1.
     * t0: b = 0, top-2 = e0, then the tie e1/e3 -> e1; renorm w = [4/6, 2/6].
     *     load [1, 1, 0, 0], mean 0.5 -> steps [-1, -1, +1, +1]
     * t1: p + b = [.344, .122, .211, .322] -> e0, e3; w = [4/6, 2/6] (unbiased p).
     * renorm = 0 keeps p: [4/9, 2/9]. */
    const float row[4] = {logf(4), logf(2), 0, logf(2)};
    float *z = repeat_rows(row, 4, 2);
    rs_test_chunk tc;
    balancing_chunk(&tc, 0, 2, 1, 4, z, NULL, 0, 1);
    routed r = balancing_route_once("aux_free_bias:k=2,u=0.1,renorm=1", &tc, 1);
    const int32_t want[] = {0, 1, 0, 3};
    expect_ids(&r, want, 4);
    for (int t = 0; t < 2; t++) {
        ck_assert_double_eq_tol(r.w[2 * t], 4.0 / 6, 1e-6);
        ck_assert_double_eq_tol(r.w[2 * t + 1], 2.0 / 6, 1e-6);
    }
    routed_free(&r);
    r = balancing_route_once("aux_free_bias:k=2,u=0.1,renorm=0", &tc, 1);
    expect_ids(&r, want, 4);
    ck_assert_double_eq_tol(r.w[0], 4.0 / 9, 1e-6);
    ck_assert_double_eq_tol(r.w[3], 2.0 / 9, 1e-6);
    routed_free(&r);
    rs_test_chunk_free(&tc);
    free(z);
}
END_TEST

START_TEST(skipped_group_leaves_state)
{
    /* aux_free_bias as in aux_free_bias_state_by_hand, but tokens 0 and 1 (all
     * of group 0) are skipped: their rows are empty and the bias stays 0, so
     * group 1 picks e0 again. */
    const float row[4] = {2, 1, 0, 0};
    float *z = repeat_rows(row, 4, 4);
    const uint8_t valid[] = {0, 0, 1, 1};
    rs_test_chunk tc;
    balancing_chunk(&tc, 0, 4, 1, 4, z, NULL, 0, 2);
    tc.chunk.valid = valid;
    routed r = balancing_route_once("aux_free_bias:k=1,score=sigmoid,u=0.25", &tc, 2);
    const int32_t want[] = {-1, -1, 0, 0};
    expect_ids(&r, want, 4);
    ck_assert_float_eq(r.w[0], 0.0f);
    routed_free(&r);
    rs_test_chunk_free(&tc);
    free(z);

    /* ema_penalty (lambda 2, alpha .5, two ranks, z = [1, .5, .9, 0], steps of
     * 2): g0 and g1 -> e0, ema [1.5, 0] (see ema_penalty_by_hand); g2 is
     * skipped and must not decay it, so g3 still sees penalty 1 -> e2 (a
     * decayed ema [.75, 0] would give no penalty and e0). */
    const float row2[4] = {1, 0.5f, 0.9f, 0};
    const uint8_t valid2[] = {1, 1, 1, 1, 0, 0, 1, 1};
    z = repeat_rows(row2, 4, 8);
    balancing_chunk(&tc, 0, 8, 1, 4, z, NULL, 0, 2);
    tc.chunk.valid = valid2;
    r = balancing_route_once("ema_penalty:k=1,alpha=0.5,ep_ranks=2,group=batch", &tc, 2);
    const int32_t want2[] = {0, 0, 0, 0, -1, -1, 2, 2};
    expect_ids(&r, want2, 8);
    routed_free(&r);
    rs_test_chunk_free(&tc);
    free(z);
}
END_TEST

START_TEST(quantile_balance_by_hand)
{
    /* Megatron qb_dual_update, k = 1, E = 3, groups of 3 tokens with rows
     * a = [3, 1, 0], b = [2, 0, 1], c = [2, 1.5, 0].
     * g0, beta = 0: all pick e0; alpha (2nd largest of z - beta) = [1, 1, 1.5];
     *   C = floor(3 * 1 / 3) = 1, beta_e = 2nd largest of z_te - alpha_t:
     *   e0 [2, 1, .5] -> 1; e1 [0, -1, 0] -> 0; e2 [-1, 0, -1.5] -> -1; mean 0.
     * g1, z - beta: a [2, 1, 1] -> e0; b [1, 0, 2] -> e2; c [1, 1.5, 1] -> e1;
     *   alpha = [1, 1, 1]; columns e0 [2, 1, 1], e1 [0, -1, .5], e2 [-1, 0, -1]
     *   -> beta = [1, 0, -1] again, so g2 repeats g1.
     * weights: sigmoid of the selected logit (renorm = 0). */
    const float rows[3][3] = {{3, 1, 0}, {2, 0, 1}, {2, 1.5f, 0}};
    float z[9 * 3];
    for (int t = 0; t < 9; t++)
        memcpy(z + 3 * t, rows[t % 3], sizeof rows[0]);
    rs_test_chunk tc;
    balancing_chunk(&tc, 0, 9, 1, 3, z, NULL, 0, 3);
    routed r = balancing_route_once("quantile_balance:k=1,score=sigmoid,renorm=0", &tc, 3);
    const int32_t want[] = {0, 0, 0, 0, 2, 1, 0, 2, 1};
    expect_ids(&r, want, 9);
    const double w[] = {sig(3), sig(2), sig(2), sig(3), sig(1), sig(1.5), sig(3), sig(1), sig(1.5)};
    for (int t = 0; t < 9; t++)
        ck_assert_double_eq_tol(r.w[t], w[t], 1e-6);
    routed_free(&r);
    /* ema = 0.5: after g0 beta = .5 * 0 + .5 * [1, 0, -1] = [.5, 0, -.5];
     * g1: a [2.5, 1, .5] -> e0; b [1.5, 0, 1.5] -> tie, e0; c [1.5, 1.5, .5] -> tie, e0 */
    r = balancing_route_once("quantile_balance:k=1,ema=0.5", &tc, 3);
    for (int t = 0; t < 6; t++)
        ck_assert_int_eq(r.ids[t], 0);
    ck_assert_float_eq_tol(r.w[0], 1.0f, 1e-7f); /* softmax over the one selected: 1 */
    routed_free(&r);
    rs_test_chunk_free(&tc);
}
END_TEST

START_TEST(quantile_balance_single_token_groups)
{
    /* Groups of one token, E = 2, k = 1. t0 z = [3, 0] -> e0; alpha = 0, C = 0,
     * beta = [3, 0] - mean 1.5 = [1.5, -1.5]. t1 z = [3, .5]: z - beta =
     * [1.5, 2] -> e1; alpha = 1.5, beta = [1.5, -1] - .25 = [1.25, -1.25].
     * t2 skipped (no update). t3 z = [3, .5]: z - beta = [1.75, 1.75] -> tie, e0. */
    const float z[] = {3, 0, 3, 0.5f, 3, 0.5f, 3, 0.5f};
    const uint8_t valid[] = {1, 1, 0, 1};
    rs_test_chunk tc;
    balancing_chunk(&tc, 0, 4, 1, 2, z, NULL, 0, 1);
    tc.chunk.valid = valid;
    routed r = balancing_route_once("quantile_balance:k=1", &tc, 1);
    const int32_t want[] = {0, 1, -1, 0};
    expect_ids(&r, want, 4);
    routed_free(&r);
    rs_test_chunk_free(&tc);
}
END_TEST

START_TEST(ema_penalty_by_hand)
{
    /* vLLM adjust_logits_ema, lambda 2, alpha .5, ranks {e0, e1} and {e2, e3},
     * k = 1, steps of 2 tokens, every z = [1, .5, .9, 0]:
     *  g0 ema [0, 0], fair = max(mean, 1) = 1, no penalty -> e0; ema [1, 0]
     *  g1 mean .5, fair 1 (the clamp), excess 0 -> e0; ema [1.5, 0]
     *  g2 fair 1, excess rank0 .5, penalty 1: z' = [0, -.5, .9, 0] -> e2; ema [.75, 1]
     *  g3 excess 0 -> e0; ema [1.375, .5]
     *  g4 excess .375, penalty .75: z' = [.25, -.25, .9, 0] -> e2 */
    const float row[4] = {1, 0.5f, 0.9f, 0};
    float *z = repeat_rows(row, 4, 10);
    rs_test_chunk tc;
    balancing_chunk(&tc, 0, 10, 1, 4, z, NULL, 0, 2);
    routed r = balancing_route_once("ema_penalty:k=1,lambda=2,alpha=0.5,ep_ranks=2,renorm=0,group=batch", &tc, 2);
    const int32_t want[] = {0, 0, 0, 0, 2, 2, 0, 0, 2, 2};
    expect_ids(&r, want, 10);
    /* weights: softmax of the penalised logits at the selected expert */
    double e1 = exp(1.0), e5 = exp(0.5), e9 = exp(0.9);
    ck_assert_double_eq_tol(r.w[0], e1 / (e1 + e5 + e9 + 1), 1e-6);
    ck_assert_double_eq_tol(r.w[4], e9 / (1 + exp(-0.5) + e9 + 1), 1e-6);
    ck_assert_double_eq_tol(r.w[8], e9 / (exp(0.25) + exp(-0.25) + e9 + 1), 1e-6);
    routed_free(&r);
    /* one rank: never penalised */
    r = balancing_route_once("ema_penalty:k=1,ep_ranks=1,group=batch", &tc, 2);
    for (int t = 0; t < 10; t++)
        ck_assert_int_eq(r.ids[t], 0);
    routed_free(&r);
    rs_test_chunk_free(&tc);
    free(z);
}
END_TEST

START_TEST(expert_choice_by_hand)
{
    /* flaxformer ExpertsChooseMaskedRouter: E = 2, 4 tokens, capacity_factor 1:
     * C = ceil(1 * 4 / 2) = 2. p[:, 0] = [s(2), .5, s(-2), .5], p[:, 1] mirrored.
     * e0 takes t0 and t1 (t1 and t3 tie at .5: the earlier wins); e1 takes t2, t1.
     * t0 -> [e0], t1 -> [e0, e1] (equal p: index order), t2 -> [e1], t3 -> none. */
    const float z[] = {2, 0, 0, 0, 0, 2, 1, 1};
    rs_test_chunk tc;
    balancing_chunk(&tc, 0, 4, 1, 2, z, NULL, 0, 4);
    routed r = balancing_route_once("expert_choice:capacity_factor=1", &tc, 4);
    ck_assert_int_eq(r.kmax, 2);
    const int32_t want[] = {0, -1, 0, 1, 1, -1, -1, -1};
    expect_ids(&r, want, 8);
    const double w[] = {sig(2), 0, .5, .5, sig(2), 0, 0, 0};
    for (int i = 0; i < 8; i++)
        ck_assert_double_eq_tol(r.w[i], w[i], 1e-6);
    routed_free(&r);
    rs_test_chunk_free(&tc);

    /* t0..t2 alone (m = 3), capacity_factor 1: 1.5 tokens per expert.
     * floor: C = 1 -> t0 [e0], t1 none, t2 [e1]; ceil / round: C = 2 -> t1 gets both.
     * min_capacity = 5 is cut to m = 3: every token gets both, by (-p, e). */
    balancing_chunk(&tc, 0, 3, 1, 2, z, NULL, 0, 3);
    r = balancing_route_once("expert_choice:capacity_factor=1,capacity_rounding=floor", &tc, 3);
    const int32_t want_floor[] = {0, -1, -1, -1, 1, -1};
    expect_ids(&r, want_floor, 6);
    routed_free(&r);
    r = balancing_route_once("expert_choice:capacity_factor=1,capacity_rounding=round", &tc, 3);
    const int32_t want_round[] = {0, -1, 0, 1, 1, -1};
    expect_ids(&r, want_round, 6);
    routed_free(&r);
    r = balancing_route_once("expert_choice:capacity_factor=1,min_capacity=5", &tc, 3);
    const int32_t want_all[] = {0, 1, 0, 1, 1, 0};
    expect_ids(&r, want_all, 6);
    routed_free(&r);
    /* groups of one token: C = ceil(2 * 1 / 2) = 1, so each expert takes the token */
    r = balancing_route_once("expert_choice", &tc, 1);
    expect_ids(&r, want_all, 6);
    ck_assert_double_eq_tol(r.w[1], sig(-2), 1e-6);
    routed_free(&r);
    rs_test_chunk_free(&tc);
}
END_TEST

START_TEST(base_by_hand)
{
    /* fairseq BaseLayer.balanced_assignment, exact. E = 2, 4 tokens, 2 each.
     * z = [5, 4], [5, 0], [3, 3], [2, 0]; gain of e0 over e1: 1, 5, 0, 2, so
     * e0 takes t1 and t3 (greedy top-1 would give e0 three tokens).
     * w = sigmoid of the assigned logit. */
    const float z[] = {5, 4, 5, 0, 3, 3, 2, 0};
    rs_test_chunk tc;
    balancing_chunk(&tc, 0, 4, 1, 2, z, NULL, 0, 4);
    routed r = balancing_route_once("base", &tc, 4);
    ck_assert_int_eq(r.kmax, 1);
    const int32_t want[] = {1, 0, 1, 0};
    expect_ids(&r, want, 4);
    const double w[] = {sig(4), sig(5), sig(3), sig(2)};
    for (int t = 0; t < 4; t++)
        ck_assert_double_eq_tol(r.w[t], w[t], 1e-6);
    routed_free(&r);
    rs_test_chunk_free(&tc);

    /* 3 tokens on 2 experts: loads 2 and 1. [3, 0], [2, 0], [1, 0]: e0 takes
     * the two largest gains (t0, t1). */
    const float z3[] = {3, 0, 2, 0, 1, 0};
    balancing_chunk(&tc, 0, 3, 1, 2, z3, NULL, 0, 3);
    r = balancing_route_once("base", &tc, 3);
    const int32_t want3[] = {0, 0, 1};
    expect_ids(&r, want3, 3);
    routed_free(&r);
    rs_test_chunk_free(&tc);

    /* 2 tokens on 3 experts: at most one each. [1, 0, 0], [1, .5, 0]: t0 e0 + t1
     * e1 = 1.5 beats t1 e0 + t0 e1 = 1. A group of one token takes its argmax
     * (ties to the lower index): [0, 2, 2] -> e1. */
    const float z2[] = {1, 0, 0, 1, 0.5f, 0, 0, 2, 2};
    balancing_chunk(&tc, 0, 3, 1, 3, z2, NULL, 0, 2);
    r = balancing_route_once("base", &tc, 2);
    const int32_t want2[] = {0, 1, 1};
    expect_ids(&r, want2, 3);
    routed_free(&r);
    rs_test_chunk_free(&tc);
}
END_TEST

START_TEST(sinkhorn_by_hand)
{
    /* Megatron sinkhorn on one group: K rows [3, 1] and [2, 1] (z = [ln 3, 0],
     * [ln 2, 0]). The balanced plan is diag(d0) K diag(d1) with d1 ratio y:
     * 3 / (3 + y) + 2 / (2 + y) = 1 gives y = sqrt(6) = 2.449, so rows are
     * proportional to [3, 2.449] -> e0 and [2, 2.449] -> e1 (top-1 of p would
     * give e0 twice). k = 1: w = sigmoid(z) = .75, .5. One round already gives
     * y = 2.43: the same choice. */
    const float z[] = {logf(3), 0, logf(2), 0};
    rs_test_chunk tc;
    balancing_chunk(&tc, 0, 2, 1, 2, z, NULL, 0, 2);
    const char *specs[] = {"sinkhorn", "sinkhorn:tol=0,max_iter=500", "sinkhorn:max_iter=1"};
    for (int i = 0; i < 3; i++) {
        routed r = balancing_route_once(specs[i], &tc, 2);
        ck_assert_int_eq(r.ids[0], 0);
        ck_assert_int_eq(r.ids[1], 1);
        ck_assert_double_eq_tol(r.w[0], 0.75, 1e-6);
        ck_assert_double_eq_tol(r.w[1], 0.5, 1e-6);
        routed_free(&r);
    }
    /* k = 2: rows ordered by the plan, weighted by p: t0 [e0 .75, e1 .25], t1 [e1 1/3, e0 2/3] */
    routed r = balancing_route_once("sinkhorn:k=2", &tc, 2);
    const int32_t want[] = {0, 1, 1, 0};
    expect_ids(&r, want, 4);
    const double w[] = {.75, .25, 1.0 / 3, 2.0 / 3};
    for (int i = 0; i < 4; i++)
        ck_assert_double_eq_tol(r.w[i], w[i], 1e-6);
    routed_free(&r);
    rs_test_chunk_free(&tc);

    /* all-equal logits: equal columns, an exactly uniform plan, ties to e0 */
    float flat[4 * 4] = {0};
    balancing_chunk(&tc, 0, 4, 1, 4, flat, NULL, 0, 4);
    r = balancing_route_once("sinkhorn", &tc, 4);
    for (int t = 0; t < 4; t++)
        ck_assert_int_eq(r.ids[t], 0);
    routed_free(&r);
    /* a group of one token: the plan is exactly uniform (1/E), so the tie rule
     * gives e0, e1 whatever the logits; weights p. z = [0, 3, 1] */
    const float one[] = {0, 3, 1};
    rs_test_chunk single;
    balancing_chunk(&single, 0, 1, 1, 3, one, NULL, 0, 1);
    r = balancing_route_once("sinkhorn:k=2", &single, 1);
    const int32_t want_one[] = {0, 1};
    expect_ids(&r, want_one, 2);
    double norm = 1 + exp(3.0) + exp(1.0);
    ck_assert_double_eq_tol(r.w[0], 1 / norm, 1e-6);
    ck_assert_double_eq_tol(r.w[1], exp(3.0) / norm, 1e-6);
    routed_free(&r);
    r = balancing_route_once("selective_sinkhorn:k=2,fraction=1", &single, 1);
    expect_ids(&r, want_one, 2);
    ck_assert_double_eq_tol(r.w[0], 0.5, 1e-7);
    routed_free(&r);
    rs_test_chunk_free(&single);
    /* k = E: every expert once, weights p = 1/4 */
    r = balancing_route_once("sinkhorn:k=4", &tc, 1);
    for (int t = 0; t < 4; t++) {
        int seen = 0;
        for (int j = 0; j < 4; j++) {
            seen |= 1 << r.ids[t * 4 + j];
            ck_assert_double_eq_tol(r.w[t * 4 + j], 0.25, 1e-7);
        }
        ck_assert_int_eq(seen, 15);
    }
    routed_free(&r);
    rs_test_chunk_free(&tc);
}
END_TEST

START_TEST(selective_sinkhorn_by_hand)
{
    /* Four groups of the two tokens of sinkhorn_by_hand. With fraction .5 the
     * groups 0 and 2 take the plan (t1 -> e1), 1 and 3 plain top-1 (t1 -> e0).
     * k = 1 gates normalise to 1. */
    const float pair[] = {logf(3), 0, logf(2), 0};
    float z[16];
    for (int g = 0; g < 4; g++)
        memcpy(z + 4 * g, pair, sizeof pair);
    rs_test_chunk tc;
    balancing_chunk(&tc, 0, 8, 1, 2, z, NULL, 0, 2);
    const struct {
        const char *spec;
        int32_t want[8];
    } cases[] = {
        {"selective_sinkhorn:k=1,fraction=0.5", {0, 1, 0, 0, 0, 1, 0, 0}},
        {"selective_sinkhorn:k=1,fraction=0", {0, 0, 0, 0, 0, 0, 0, 0}},
        {"selective_sinkhorn:k=1,fraction=1,iters=1", {0, 1, 0, 1, 0, 1, 0, 1}},
    };
    for (int i = 0; i < 3; i++) {
        routed r = balancing_route_once(cases[i].spec, &tc, 2);
        expect_ids(&r, cases[i].want, 8);
        for (int t = 0; t < 8; t++)
            ck_assert_double_eq_tol(r.w[t], 1.0, 1e-7);
        routed_free(&r);
    }
    /* k = 2, converged plan: gates are the plan rows normalised,
     * t0 [3, sqrt 6] / (3 + sqrt 6), t1 [sqrt 6, 2] / (2 + sqrt 6). */
    routed r = balancing_route_once("selective_sinkhorn:k=2,fraction=1,iters=200", &tc, 2);
    const int32_t want[] = {0, 1, 1, 0};
    expect_ids(&r, want, 4);
    double s6 = sqrt(6.0);
    ck_assert_double_eq_tol(r.w[0], 3 / (3 + s6), 1e-6);
    ck_assert_double_eq_tol(r.w[2], s6 / (2 + s6), 1e-6);
    routed_free(&r);
    rs_test_chunk_free(&tc);
}
END_TEST

START_TEST(k_equal_e_orders_every_expert)
{
    /* z = [0, 3, 1, 3]: ties between e1 and e3 go to e1 */
    const float z[] = {0, 3, 1, 3};
    rs_test_chunk tc;
    balancing_chunk(&tc, 0, 1, 1, 4, z, NULL, 0, 1);
    const char *specs[] = {"aux_free_bias:k=4", "ema_penalty:k=4", "selective_sinkhorn:k=4,fraction=0"};
    const int32_t want[] = {1, 3, 2, 0};
    for (int i = 0; i < 3; i++) {
        routed r = balancing_route_once(specs[i], &tc, 1);
        expect_ids(&r, want, 4);
        routed_free(&r);
    }
    rs_test_chunk_free(&tc);
}
END_TEST

START_TEST(parameters_are_checked)
{
    balancing_expect_error("aux_free_bias:k=5", 4,
                           "router aux_free_bias: parameter k=5 exceeds num_experts=4 of mem.h5");
    balancing_expect_error("quantile_balance:k=4", 4,
                           "router quantile_balance: parameter k=4 must be below num_experts=4 of mem.h5 (the update "
                           "reads the (k+1)-th expert)");
    balancing_expect_error("ema_penalty:ep_ranks=3", 4,
                           "router ema_penalty: parameter ep_ranks=3 does not divide num_experts=4 of mem.h5");
    balancing_expect_error("ema_penalty:k=6", 4, "router ema_penalty: parameter k=6 exceeds num_experts=4 of mem.h5");
    balancing_expect_error("sinkhorn:k=5", 4, "router sinkhorn: parameter k=5 exceeds num_experts=4 of mem.h5");
    balancing_expect_error("selective_sinkhorn:k=5", 4,
                           "router selective_sinkhorn: parameter k=5 exceeds num_experts=4 of mem.h5");
}
END_TEST

START_TEST(descriptors_state_their_nature)
{
    const struct {
        const char *name;
        unsigned flags;
    } want[] = {
        {"aux_free_bias", RS_ROUTER_CAUSAL | RS_ROUTER_STATEFUL | RS_ROUTER_GROUPED | RS_ROUTER_TOKEN_CHOICE},
        {"quantile_balance", RS_ROUTER_CAUSAL | RS_ROUTER_STATEFUL | RS_ROUTER_GROUPED | RS_ROUTER_TOKEN_CHOICE},
        {"ema_penalty", RS_ROUTER_CAUSAL | RS_ROUTER_STATEFUL | RS_ROUTER_GROUPED | RS_ROUTER_TOKEN_CHOICE},
        {"expert_choice", RS_ROUTER_GROUPED},
        {"base", RS_ROUTER_GROUPED},
        {"sinkhorn", RS_ROUTER_GROUPED | RS_ROUTER_TOKEN_CHOICE},
        {"selective_sinkhorn", RS_ROUTER_STATEFUL | RS_ROUTER_GROUPED | RS_ROUTER_TOKEN_CHOICE},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const rs_router_type *t = rs_router_find(want[i].name);
        ck_assert_msg(t != NULL, "%s is not registered", want[i].name);
        ck_assert_uint_eq(t->flags, want[i].flags);
        ck_assert(t->summary && t->formula && t->source && t->source[0]);
    }
    /* default groups: batch, except ema_penalty's decode step */
    balancing_run r;
    balancing_open(&r, "ema_penalty", 1, 4, 8);
    ck_assert_int_eq(r.shape.group, RS_GROUP_STEP);
    balancing_close(&r);
    balancing_open(&r, "expert_choice:group=sequence", 1, 4, 8);
    ck_assert_int_eq(r.shape.group, RS_GROUP_SEQUENCE);
    ck_assert_int_eq(r.shape.kmax, 4);
    balancing_close(&r);
}
END_TEST

Suite *routers_balancing_suite(void)
{
    Suite *s = suite_create("routers_balancing");
    TCase *tc = tcase_create("hand");
    tcase_add_test(tc, aux_free_bias_state_by_hand);
    tcase_add_test(tc, aux_free_bias_softmax_top2);
    tcase_add_test(tc, skipped_group_leaves_state);
    tcase_add_test(tc, quantile_balance_by_hand);
    tcase_add_test(tc, quantile_balance_single_token_groups);
    tcase_add_test(tc, ema_penalty_by_hand);
    tcase_add_test(tc, expert_choice_by_hand);
    tcase_add_test(tc, base_by_hand);
    tcase_add_test(tc, sinkhorn_by_hand);
    tcase_add_test(tc, selective_sinkhorn_by_hand);
    tcase_add_test(tc, k_equal_e_orders_every_expert);
    tcase_add_test(tc, parameters_are_checked);
    tcase_add_test(tc, descriptors_state_their_nature);
    suite_add_tcase(s, tc);
    suite_add_tcase(s, routers_balancing_solver_tcase());
    return s;
}
