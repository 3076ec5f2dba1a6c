/* Stochastic and logit-free baselines (routers.md section D). Expected
 * frequencies are the sampling distributions the rules define (normal and
 * Gumbel tails, computed by hand in the comments); expected experts of the
 * hash and THOR rules are recomputed from their documented formulas with the
 * keyed generator. Runs in the routers_dynamic suite. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "routesim/rng.h"
#include "tests/routers/routers_dynamic_harness.h"

TCase *routers_baselines_tcase(void);

/* Logits repeated for n tokens at one layer. */
static float *repeat_row(const float *row, int E, int n)
{
    float *z = malloc((size_t)n * (size_t)E * sizeof *z);
    ck_assert_ptr_nonnull(z);
    for (int t = 0; t < n; t++)
        memcpy(z + (size_t)t * (size_t)E, row, (size_t)E * sizeof *row);
    return z;
}

/* How often each expert is in slot `slot` over n rows. */
static void slot_frequencies(const dyn_rows *d, int n, int slot, int E, double *freq)
{
    for (int e = 0; e < E; e++)
        freq[e] = 0;
    for (int t = 0; t < n; t++)
        freq[d->ids[(size_t)t * (size_t)d->kmax + (size_t)slot]] += 1.0 / n;
}

START_TEST(noisy_topk_without_noise_is_topk)
{
    enum { T = 300, L = 2, E = 16 };
    float *z = rs_test_random_logits(T, L, E, 3);
    rs_test_chunk tc;
    rs_test_chunk_init(&tc, 0, T, L, E, z);
    rs_trace_info info = dyn_info(L, E);
    dyn_rows a = dyn_route("noisy_topk:k=3,sigma=0", &tc, &info), b = dyn_route("topk:k=3", &tc, &info);
    for (int i = 0; i < T * L * 3; i++) {
        ck_assert_int_eq(a.ids[i], b.ids[i]);
        ck_assert_float_eq_tol(a.w[i], b.w[i], 1e-6f);
    }
    dyn_rows_free(&a);
    dyn_rows_free(&b);
    rs_test_chunk_free(&tc);
    free(z);
}
END_TEST

START_TEST(noisy_topk_noise_has_the_given_sigma)
{
    /* z = [1, 0], k = 1: expert 1 wins iff n1 - n0 > 1/sigma with n1 - n0 ~ N(0, 2), so
     * P = 1 - Phi(1 / (sigma sqrt 2)): sigma = 1 -> 0.23975, sigma = 2 -> 0.36184.
     * 20000 draws: standard error 0.0034, tolerance 0.015. */
    enum { N = 20000 };
    float *z = repeat_row((const float[]){1, 0}, 2, N);
    rs_test_chunk tc;
    rs_test_chunk_init(&tc, 0, N, 1, 2, z);
    rs_trace_info info = dyn_info(1, 2);
    double freq[2];
    dyn_rows d = dyn_route("noisy_topk:k=1,sigma=1,seed=4", &tc, &info);
    slot_frequencies(&d, N, 0, 2, freq);
    ck_assert_msg(fabs(freq[1] - 0.23975) < 0.015, "sigma 1: expert 1 chosen %.4f", freq[1]);
    ck_assert_float_eq(d.w[0], 1.0f); /* softmax over one survivor */
    dyn_rows_free(&d);
    d = dyn_route("noisy_topk:k=1,sigma=2,seed=4", &tc, &info);
    slot_frequencies(&d, N, 0, 2, freq);
    ck_assert_msg(fabs(freq[1] - 0.36184) < 0.015, "sigma 2: expert 1 chosen %.4f", freq[1]);
    dyn_rows_free(&d);
    rs_test_chunk_free(&tc);
    free(z);
}
END_TEST

START_TEST(gumbel_topk_samples_the_softmax)
{
    /* z = log [4, 2, 1, 1]: the first draw follows p = [1/2, 1/4, 1/8, 1/8]; with tau = 2 it follows
     * softmax(z / 2) = [2, 1.414, 1, 1] / 5.414 = [0.3694, 0.2612, 0.1847, 0.1847]. Without
     * replacement, P(first two = (0, 1)) = 1/2 * (1/4) / (1/2) = 1/4 and P((1, 0)) = 1/4 * (1/2) / (3/4)
     * = 1/6. 20000 draws, tolerance 0.015 (about 4 standard errors). */
    enum { N = 20000 };
    float *z = repeat_row((const float[]){1.3862944f, 0.6931472f, 0, 0}, 4, N);
    rs_test_chunk tc;
    rs_test_chunk_init(&tc, 0, N, 1, 4, z);
    rs_trace_info info = dyn_info(1, 4);
    const double want1[] = {0.5, 0.25, 0.125, 0.125}, want2[] = {0.3694, 0.2612, 0.1847, 0.1847};
    double freq[4];
    dyn_rows d = dyn_route("gumbel_topk:k=2,seed=9", &tc, &info);
    slot_frequencies(&d, N, 0, 4, freq);
    int first_01 = 0, first_10 = 0;
    for (int t = 0; t < N; t++) {
        first_01 += d.ids[2 * t] == 0 && d.ids[2 * t + 1] == 1;
        first_10 += d.ids[2 * t] == 1 && d.ids[2 * t + 1] == 0;
        ck_assert(d.ids[2 * t] != d.ids[2 * t + 1]);
        ck_assert_float_eq_tol(d.w[2 * t] + d.w[2 * t + 1], 1.0f, 1e-6f); /* renorm = 1 */
    }
    for (int e = 0; e < 4; e++)
        ck_assert_msg(fabs(freq[e] - want1[e]) < 0.015, "tau 1: expert %d first %.4f", e, freq[e]);
    ck_assert_msg(fabs(first_01 / (double)N - 0.25) < 0.015, "(0, 1) drawn %d times", first_01);
    ck_assert_msg(fabs(first_10 / (double)N - 1.0 / 6) < 0.015, "(1, 0) drawn %d times", first_10);
    dyn_rows_free(&d);
    d = dyn_route("gumbel_topk:k=1,tau=2,renorm=0,seed=9", &tc, &info);
    slot_frequencies(&d, N, 0, 4, freq);
    for (int e = 0; e < 4; e++)
        ck_assert_msg(fabs(freq[e] - want2[e]) < 0.015, "tau 2: expert %d first %.4f", e, freq[e]);
    for (int t = 0; t < N; t++) /* renorm = 0: w = p_e */
        ck_assert_float_eq_tol(d.w[t], (float)want1[d.ids[t]], 1e-6f);
    dyn_rows_free(&d);
    rs_test_chunk_free(&tc);
    free(z);
}
END_TEST

START_TEST(stochastic_routers_depend_on_the_seed_only)
{
    enum { T = 400, L = 2, E = 8 };
    float *z = rs_test_random_logits(T, L, E, 8);
    int32_t tok[T];
    for (int t = 0; t < T; t++)
        tok[t] = (t * 7919) % 61;
    rs_test_chunk tc;
    rs_test_chunk_init(&tc, 100, T, L, E, z);
    tc.chunk.token_ids = tok;
    rs_trace_info info = dyn_info(L, E);
    info.has_token_ids = 1;
    static const char *const routers[] = {"noisy_topk", "gumbel_topk", "hash", "hash:mode=pair", "thor"};
    for (size_t i = 0; i < sizeof routers / sizeof routers[0]; i++) {
        char spec[3][96];
        for (int s = 0; s < 3; s++)
            snprintf(spec[s], sizeof spec[s], "%s%sseed=%d", routers[i], strchr(routers[i], ':') ? "," : ":",
                     s < 2 ? 17 : 18);
        dyn_rows a = dyn_route(spec[0], &tc, &info), b = dyn_route(spec[1], &tc, &info),
                 c = dyn_route(spec[2], &tc, &info);
        size_t cells = (size_t)T * L * (size_t)a.kmax;
        ck_assert_msg(memcmp(a.ids, b.ids, cells * sizeof *a.ids) == 0, "%s: not deterministic", spec[0]);
        ck_assert_msg(memcmp(a.w, b.w, cells * sizeof *a.w) == 0, "%s: not deterministic", spec[0]);
        ck_assert_msg(memcmp(a.ids, c.ids, cells * sizeof *a.ids) != 0, "%s: the seed changes nothing", spec[2]);
        dyn_rows_free(&a);
        dyn_rows_free(&b);
        dyn_rows_free(&c);
    }
    rs_test_chunk_free(&tc);
    free(z);
}
END_TEST

START_TEST(hash_random_and_previous_follow_their_formulas)
{
    /* two sequences of 60 and 40 tokens; ids from a small vocabulary so they repeat */
    enum { T = 100, L = 3, E = 8 };
    float z[T * L * E] = {0};
    int32_t tok[T];
    for (int t = 0; t < T; t++)
        tok[t] = (t * t + 3) % 13;
    const int64_t offsets[] = {0, 60, 100};
    dyn_range g = {T, L, E, z, tok, offsets, 2};
    rs_test_chunk tc;
    dyn_chunk_of(&tc, &g, 0, T);
    rs_trace_info info = dyn_info(L, E);
    info.has_token_ids = 1;
    dyn_rows r = dyn_route("hash:seed=5", &tc, &info), p = dyn_route("hash:mode=bigram,seed=5", &tc, &info);
    for (int t = 0; t < T; t++) {
        for (int l = 0; l < L; l++) {
            size_t row = (size_t)t * L + (size_t)l;
            /* random: e = h(seed, layer, id); bigram: e = h(seed, layer, prev id + 1), 0 at a sequence start */
            rs_rng by_id = rs_rng_keyed(5, (uint64_t)l, (uint64_t)tok[t]);
            uint64_t prev = t == 0 || t == 60 ? 0 : (uint64_t)tok[t - 1] + 1;
            rs_rng by_prev = rs_rng_keyed(5, (uint64_t)l, prev);
            ck_assert_int_eq(r.ids[row], (int32_t)rs_rng_below(&by_id, E));
            ck_assert_int_eq(p.ids[row], (int32_t)rs_rng_below(&by_prev, E));
            ck_assert_float_eq(r.w[row], 1.0f);
        }
    }
    dyn_rows_free(&r);
    dyn_rows_free(&p);
    /* pair: equal (previous, id) pairs share an expert; sequence starts with equal ids too */
    dyn_rows b = dyn_route("hash:mode=pair,seed=5", &tc, &info);
    for (int t = 0; t < T; t++) {
        for (int u = 0; u < t; u++) {
            int t_start = t == 0 || t == 60, u_start = u == 0 || u == 60;
            int same = tok[t] == tok[u] && t_start == u_start && (t_start || tok[t - 1] == tok[u - 1]);
            if (same)
                for (int l = 0; l < L; l++)
                    ck_assert_int_eq(b.ids[(size_t)t * L + l], b.ids[(size_t)u * L + l]);
        }
    }
    dyn_rows_free(&b);
    rs_test_chunk_free(&tc);
}
END_TEST

START_TEST(hash_balanced_assigns_ids_at_first_appearance)
{
    /* E = 2, ids 7 7 7 3 9 3 9 9: 7 -> bucket 0 (loads 0, 0: lower), load 3, 0; 3 -> bucket 1 (3 > 0);
     * 9 -> bucket 1 (3 > 1); so tokens 0-2 share one expert and tokens 3-7 the other */
    const int32_t tok[] = {7, 7, 7, 3, 9, 3, 9, 9};
    float z[8 * 2] = {0};
    rs_test_chunk tc;
    rs_test_chunk_init(&tc, 0, 8, 1, 2, z);
    tc.chunk.token_ids = tok;
    rs_trace_info info = dyn_info(1, 2);
    info.has_token_ids = 1;
    dyn_rows d = dyn_route("hash:mode=balanced", &tc, &info);
    for (int t = 0; t < 8; t++) {
        ck_assert_int_eq(d.ids[t], t < 3 ? d.ids[0] : d.ids[3]);
        ck_assert_float_eq(d.w[t], 1.0f);
    }
    ck_assert_int_ne(d.ids[0], d.ids[3]);
    dyn_rows_free(&d);
    rs_test_chunk_free(&tc);
    /* ids 1 2 3: 1 -> bucket 0, 2 -> bucket 1, 3 finds loads 1, 1 and takes the lower bucket, 0 */
    const int32_t tie[] = {1, 2, 3};
    rs_test_chunk_init(&tc, 0, 3, 1, 2, z);
    tc.chunk.token_ids = tie;
    d = dyn_route("hash:mode=balanced", &tc, &info);
    ck_assert_int_eq(d.ids[2], d.ids[0]);
    ck_assert_int_ne(d.ids[1], d.ids[0]);
    dyn_rows_free(&d);
    rs_test_chunk_free(&tc);
}
END_TEST

/* Largest load over the mean load, minus 1, of one layer's decisions. */
static double max_violation(const dyn_rows *d, int T, int L, int layer, int E)
{
    long load[64] = {0};
    for (int t = 0; t < T; t++)
        load[d->ids[(size_t)t * L + layer]]++;
    long most = 0;
    for (int e = 0; e < E; e++)
        most = load[e] > most ? load[e] : most;
    return most / ((double)T / E) - 1.0;
}

START_TEST(hash_balanced_spreads_zipf_tokens)
{
    /* Zipf(1) over 5000 ids: the most frequent id carries 1 / H(5000) = 11% of the tokens, below the
     * 1/8 an expert should get, so a balanced table can exist; a random table collides heavy ids */
    enum { T = 30000, L = 2, E = 8, V = 5000 };
    double *cdf = malloc(V * sizeof *cdf);
    int32_t *tok = malloc(T * sizeof *tok);
    float *z = calloc((size_t)T * L * E, sizeof *z);
    ck_assert(cdf && tok && z);
    for (int v = 0; v < V; v++)
        cdf[v] = (v ? cdf[v - 1] : 0) + 1.0 / (v + 1);
    uint64_t state = 12345;
    for (int t = 0; t < T; t++) {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        double u = (double)(state >> 11) * 0x1.0p-53 * cdf[V - 1];
        int lo = 0, hi = V - 1;
        while (lo < hi) {
            int mid = (lo + hi) / 2;
            if (cdf[mid] < u)
                lo = mid + 1;
            else
                hi = mid;
        }
        tok[t] = (lo * 7919) % V; /* ids unrelated to frequency */
    }
    rs_test_chunk tc;
    rs_test_chunk_init(&tc, 0, T, L, E, z);
    tc.chunk.token_ids = tok;
    rs_trace_info info = dyn_info(L, E);
    info.has_token_ids = 1;
    dyn_rows bal = dyn_route("hash:mode=balanced", &tc, &info), rnd = dyn_route("hash", &tc, &info);
    for (int l = 0; l < L; l++) {
        double vb = max_violation(&bal, T, L, l, E), vr = max_violation(&rnd, T, L, l, E);
        ck_assert_msg(vb < 0.15 && vb < vr, "layer %d: balanced maxvio %.3f, random %.3f", l, vb, vr);
    }
    dyn_rows_free(&bal);
    dyn_rows_free(&rnd);
    rs_test_chunk_free(&tc);
    free(cdf);
    free(tok);
    free(z);
}
END_TEST

START_TEST(thor_draws_per_token_or_per_sequence)
{
    enum { T = 4000, L = 2, E = 8 };
    float *z = calloc((size_t)T * L * E, sizeof *z);
    int64_t offsets[201];
    for (int s = 0; s <= 200; s++)
        offsets[s] = (int64_t)s * 20;
    dyn_range g = {T, L, E, z, NULL, offsets, 200};
    rs_test_chunk tc;
    dyn_chunk_of(&tc, &g, 0, T);
    rs_trace_info info = dyn_info(L, E);
    /* token level: uniform, 1000 per expert over both layers (standard deviation 30) */
    dyn_rows d = dyn_route("thor:seed=3", &tc, &info);
    long counts[E] = {0};
    for (int i = 0; i < T * L; i++)
        counts[d.ids[i]]++;
    for (int e = 0; e < E; e++)
        ck_assert_msg(labs(counts[e] - 1000) < 150, "expert %d drawn %ld times", e, counts[e]);
    dyn_rows_free(&d);
    /* sequence level: e = h(seed, layer, sequence) for every token of the sequence */
    d = dyn_route("thor:level=sequence,seed=3", &tc, &info);
    for (int t = 0; t < T; t++) {
        for (int l = 0; l < L; l++) {
            rs_rng rng = rs_rng_keyed(3, (uint64_t)l, (uint64_t)(t / 20));
            ck_assert_int_eq(d.ids[(size_t)t * L + l], (int32_t)rs_rng_below(&rng, E));
        }
    }
    dyn_rows_free(&d);
    rs_test_chunk_free(&tc);
    free(z);
}
END_TEST

START_TEST(round_robin_hand_cases)
{
    /* t0 = 5, E = 4: k = 1 -> 5, 6, 7, 8 mod 4 = 1, 2, 3, 0;
     * k = 2 -> token t gets 2t, 2t + 1 mod 4: 10 -> {2, 3}, 12 -> {0, 1}, 14 -> {2, 3}, 16 -> {0, 1} */
    float z[4 * 4] = {0};
    rs_test_chunk tc;
    rs_test_chunk_init(&tc, 5, 4, 1, 4, z);
    rs_trace_info info = dyn_info(1, 4);
    dyn_rows d = dyn_route("round_robin", &tc, &info);
    for (int t = 0; t < 4; t++)
        dyn_assert_row(&d, (size_t)t, (int32_t[]){(t + 1) % 4}, (double[]){1}, 1, 0);
    dyn_rows_free(&d);
    d = dyn_route("round_robin:k=2", &tc, &info);
    for (int t = 0; t < 4; t++)
        dyn_assert_row(&d, (size_t)t, (int32_t[]){t % 2 ? 0 : 2, t % 2 ? 1 : 3}, (double[]){.5, .5}, 2, 0);
    dyn_rows_free(&d);
    rs_test_chunk_free(&tc);
}
END_TEST

START_TEST(baselines_are_chunk_invariant)
{
    enum { T = 500, L = 3, E = 16 };
    float *z = rs_test_random_logits(T, L, E, 21);
    int32_t tok[T];
    for (int t = 0; t < T; t++)
        tok[t] = (t * 31 + t / 7) % 23;
    const int64_t offsets[] = {0, 90, 91, 300, 500}; /* the split at 250 falls inside a sequence */
    dyn_range g = {T, L, E, z, tok, offsets, 4};
    static const char *const specs[] = {
        "noisy_topk", "noisy_topk:k=4,sigma=3,seed=2", "gumbel_topk", "gumbel_topk:k=3,tau=0.5,renorm=0,seed=2",
        "hash", "hash:mode=balanced,seed=1", "hash:mode=pair", "hash:mode=bigram,seed=3", "thor",
        "thor:level=sequence,seed=8", "round_robin:k=3"};
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        dyn_assert_split_invariant(specs[i], &g, 250);
        dyn_assert_split_invariant(specs[i], &g, 91); /* on a sequence boundary */
    }
    free(z);
}
END_TEST

START_TEST(baselines_reject_bad_parameters)
{
    rs_trace_info info = dyn_info(2, 4);
    dyn_assert_create_fails("noisy_topk:k=5", &info, "router noisy_topk: parameter k=5 exceeds num_experts=4 of mem.h5");
    dyn_assert_create_fails("gumbel_topk:k=5", &info,
                            "router gumbel_topk: parameter k=5 exceeds num_experts=4 of mem.h5");
    dyn_assert_create_fails("round_robin:k=5", &info,
                            "router round_robin: parameter k=5 exceeds num_experts=4 of mem.h5");
    dyn_assert_create_fails("noisy_topk:sigma=-1", &info, "router noisy_topk: parameter sigma=-1 out of range [0, 1e+06]");
    dyn_assert_create_fails("hash:mode=pair", &info,
                            "router hash: mode=pair needs token ids (/tokens/ids), which mem.h5 lacks");
    dyn_assert_create_fails("thor:level=layer", &info,
                            "router thor: parameter level: 'layer' is not one of token|sequence");
}
END_TEST

START_TEST(stochastic_baselines_take_a_seed)
{
    static const char *const names[] = {"noisy_topk", "gumbel_topk", "hash", "thor"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const rs_router_type *t = rs_router_find(names[i]);
        ck_assert_ptr_nonnull(t);
        ck_assert(t->flags & RS_ROUTER_STOCHASTIC);
        int has_seed = 0;
        for (int j = 0; j < t->num_params; j++)
            has_seed |= strcmp(t->params[j].name, "seed") == 0;
        ck_assert_msg(has_seed, "%s has no seed parameter", names[i]);
    }
    ck_assert(!(rs_router_find("round_robin")->flags & RS_ROUTER_STOCHASTIC));
    ck_assert(rs_router_find("hash")->needs & RS_NEEDS_TOKEN_IDS);
}
END_TEST

TCase *routers_baselines_tcase(void)
{
    TCase *tc = tcase_create("baselines");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, noisy_topk_without_noise_is_topk);
    tcase_add_test(tc, noisy_topk_noise_has_the_given_sigma);
    tcase_add_test(tc, gumbel_topk_samples_the_softmax);
    tcase_add_test(tc, stochastic_routers_depend_on_the_seed_only);
    tcase_add_test(tc, hash_random_and_previous_follow_their_formulas);
    tcase_add_test(tc, hash_balanced_assigns_ids_at_first_appearance);
    tcase_add_test(tc, hash_balanced_spreads_zipf_tokens);
    tcase_add_test(tc, thor_draws_per_token_or_per_sequence);
    tcase_add_test(tc, round_robin_hand_cases);
    tcase_add_test(tc, baselines_are_chunk_invariant);
    tcase_add_test(tc, baselines_reject_bad_parameters);
    tcase_add_test(tc, stochastic_baselines_take_a_seed);
    return tc;
}
