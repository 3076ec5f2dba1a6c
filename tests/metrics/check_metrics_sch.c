/* sch (Segment Cache best Hit rate): golden values from the reference
 * implementation (moe-lrc's calc_fsf), hand cases, the LRU property,
 * merges and thread/chunk invariance through the CLI. Decisions come from
 * the generator of tests/check_metrics_srp.c (lrc_test_*). */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "routesim/metric.h"
#include "core/metric_sink.h"
#include "tests/metrics/lrc_test.h"
#include "tests/test_util.h"

typedef struct sch_case {
    unsigned seed;
    int mode, E, k, L;
    int pattern[3], repeats;
} sch_case;

/* tests/golden/lrc/make_golden.py's CASES */
static const sch_case sch_cases[] = {
    {11, LRC_RANDOM, 8, 2, 2, {20, 3, 37}, 10},
    {12, LRC_STICKY, 16, 2, 3, {50, 9, 64}, 9},
    {13, LRC_POPULAR, 12, 2, 2, {5, 100, 16}, 9},
};

typedef struct sch_golden {
    int m, rho2, layer; /* rho2 = 2 rho: C = rho2 k / 2 per layer, rho2 k L / 2 for layer -1 */
    double sch;
} sch_golden;

/* Golden values: moe-lrc (github.com/ljcleo/moe-lrc, commit 7b3ca46688b4)
 * src/41_sch_calc.py calc_fsf, run unchanged by tests/golden/lrc/make_golden.py
 * on each sequence (per layer: ids of the layer; layer -1: ids l * E + e of
 * all layers, a token's ids forming one batch). Its per-sequence hit counts
 * at C are exact integers; the value is their rate averaged over sequences
 * (calc_fsf's caller averages in float32; ours is the double). */
static const sch_golden sch_case0[] = {
    {1, 1, 0, 0.1814039039039039},
    {1, 1, 1, 0.17701201201201203},
    {1, 1, -1, 0.17242492492492492},
    {1, 2, 0, 0.35686186186186186},
    {1, 2, 1, 0.34484984984984984},
    {1, 2, -1, 0.3508558558558558},
    {1, 4, 0, 0.6723048048048048},
    {1, 4, 1, 0.6517492492492493},
    {1, 4, -1, 0.6664527027027027},
    {1, 6, 0, 0.8618918918918919},
    {1, 6, 1, 0.85259009009009},
    {1, 6, -1, 0.855213963963964},
    {4, 1, 0, 0.1814039039039039},
    {4, 1, 1, 0.17701201201201203},
    {4, 1, -1, 0.2442304804804805},
    {4, 2, 0, 0.4424174174174174},
    {4, 2, 1, 0.42533783783783785},
    {4, 2, -1, 0.47806306306306307},
    {4, 4, 0, 0.7780255255255255},
    {4, 4, 1, 0.7665690690690691},
    {4, 4, -1, 0.7843355855855856},
    {4, 6, 0, 0.9163063063063064},
    {4, 6, 1, 0.912072072072072},
    {4, 6, -1, 0.9154729729729729},
    {16, 1, 0, 0.1814039039039039},
    {16, 1, 1, 0.17701201201201203},
    {16, 1, -1, 0.23273273273273273},
    {16, 2, 0, 0.4178903903903904},
    {16, 2, 1, 0.41427927927927927},
    {16, 2, -1, 0.4479054054054054},
    {16, 4, 0, 0.7468093093093093},
    {16, 4, 1, 0.7319294294294295},
    {16, 4, -1, 0.7519594594594595},
    {16, 6, 0, 0.9120045045045045},
    {16, 6, 1, 0.9031981981981982},
    {16, 6, -1, 0.9179391891891892},
};
static const sch_golden sch_case1[] = {
    {1, 1, 0, 0.34482253086419756},
    {1, 1, 1, 0.3368917181069959},
    {1, 1, 2, 0.32040637860082305},
    {1, 1, -1, 0.32654320987654323},
    {1, 2, 0, 0.6823662551440329},
    {1, 2, 1, 0.6696810699588477},
    {1, 2, 2, 0.6427379115226337},
    {1, 2, -1, 0.6649284122085048},
    {1, 4, 0, 0.7693377057613169},
    {1, 4, 1, 0.7575527263374485},
    {1, 4, 2, 0.7332458847736626},
    {1, 4, -1, 0.758127572016461},
    {1, 6, 0, 0.8403613683127572},
    {1, 6, 1, 0.8315020576131688},
    {1, 6, 2, 0.8137551440329218},
    {1, 6, -1, 0.8366087962962964},
    {4, 1, 0, 0.34482253086419756},
    {4, 1, 1, 0.3368917181069959},
    {4, 1, 2, 0.32040637860082305},
    {4, 1, -1, 0.40876757544581616},
    {4, 2, 0, 0.6946064814814815},
    {4, 2, 1, 0.6804423868312758},
    {4, 2, 2, 0.6579822530864198},
    {4, 2, -1, 0.6883273319615912},
    {4, 4, 0, 0.7970704732510288},
    {4, 4, 1, 0.7868299897119342},
    {4, 4, 2, 0.7635828189300412},
    {4, 4, -1, 0.7853785150891632},
    {4, 6, 0, 0.8588310185185185},
    {4, 6, 1, 0.8528305041152263},
    {4, 6, 2, 0.8362152777777778},
    {4, 6, -1, 0.8568115569272977},
    {16, 1, 0, 0.34482253086419756},
    {16, 1, 1, 0.3368917181069959},
    {16, 1, 2, 0.32040637860082305},
    {16, 1, -1, 0.36143518518518514},
    {16, 2, 0, 0.6687037037037037},
    {16, 2, 1, 0.6520280349794239},
    {16, 2, 2, 0.620366512345679},
    {16, 2, -1, 0.6326838991769548},
    {16, 4, 0, 0.8164429012345679},
    {16, 4, 1, 0.8015123456790123},
    {16, 4, 2, 0.7805362654320988},
    {16, 4, -1, 0.8104693930041152},
    {16, 6, 0, 0.8856828703703704},
    {16, 6, 1, 0.8817399691358025},
    {16, 6, 2, 0.8645949074074074},
    {16, 6, -1, 0.8913601680384088},
};
static const sch_golden sch_case2[] = {
    {1, 1, 0, 0.165},
    {1, 1, 1, 0.1572685185185185},
    {1, 1, -1, 0.16185185185185186},
    {1, 2, 0, 0.3225},
    {1, 2, 1, 0.3237037037037037},
    {1, 2, -1, 0.32310185185185186},
    {1, 4, 0, 0.5560648148148148},
    {1, 4, 1, 0.5720833333333334},
    {1, 4, -1, 0.5632407407407407},
    {1, 6, 0, 0.7668055555555555},
    {1, 6, 1, 0.7713888888888889},
    {1, 6, -1, 0.7674074074074073},
    {4, 1, 0, 0.165},
    {4, 1, 1, 0.1572685185185185},
    {4, 1, -1, 0.2340972222222222},
    {4, 2, 0, 0.41208333333333336},
    {4, 2, 1, 0.39375},
    {4, 2, -1, 0.44814814814814813},
    {4, 4, 0, 0.6758796296296297},
    {4, 4, 1, 0.6857407407407408},
    {4, 4, -1, 0.6940740740740741},
    {4, 6, 0, 0.8405092592592593},
    {4, 6, 1, 0.8480092592592593},
    {4, 6, -1, 0.8451157407407407},
    {16, 1, 0, 0.165},
    {16, 1, 1, 0.1572685185185185},
    {16, 1, -1, 0.21659722222222222},
    {16, 2, 0, 0.39564814814814814},
    {16, 2, 1, 0.3737037037037037},
    {16, 2, -1, 0.42215277777777777},
    {16, 4, 0, 0.6644907407407408},
    {16, 4, 1, 0.6675},
    {16, 4, -1, 0.680300925925926},
    {16, 6, 0, 0.8444444444444444},
    {16, 6, 1, 0.855},
    {16, 6, -1, 0.8636111111111111},
};

static const sch_golden *const sch_golden_of[] = {sch_case0, sch_case1, sch_case2};
static const size_t sch_golden_count[] = {sizeof sch_case0 / sizeof sch_case0[0],
                                          sizeof sch_case1 / sizeof sch_case1[0],
                                          sizeof sch_case2 / sizeof sch_case2[0]};

START_TEST(sch_matches_reference)
{
    const rs_metric_type *t = rs_metric_find("sch");
    ck_assert_ptr_nonnull(t);
    const sch_case *cs = &sch_cases[_i];
    const int count = 3 * cs->repeats;
    int lengths[64];
    int64_t offsets[65] = {0};
    for (int s = 0; s < count; s++) {
        lengths[s] = cs->pattern[s % 3];
        offsets[s + 1] = offsets[s] + lengths[s];
    }
    const int64_t T = offsets[count];
    int32_t *ids = malloc((size_t)T * cs->L * cs->k * sizeof *ids);
    lrc_test_generate(cs->seed, cs->mode, cs->E, cs->k, cs->L, lengths, count, ids);
    const int chunks[] = {7, 64, (int)T};
    for (size_t g = 0; g < sch_golden_count[_i]; g++) {
        const sch_golden *want = &sch_golden_of[_i][g];
        if (want->layer != 0)
            continue; /* one accumulator per (m, rho) covers every layer and the model */
        char params[64];
        snprintf(params, sizeof params, "m=%d,rho=%g", want->m, want->rho2 / 2.0);
        for (int c = 0; c < 3; c++) {
            void *acc = lrc_test_make_acc(t, params, cs->L, cs->E, cs->k, cs->k);
            lrc_test_feed(t, acc, ids, cs->k, cs->L, cs->E, offsets, count, 0, T, chunks[c], NULL);
            for (int l = -1; l < cs->L; l++) {
                const sch_golden *row = want + (l < 0 ? cs->L : l);
                ck_assert_int_eq(row->layer, l);
                double v = lrc_test_value(t, acc, "sch", l);
                /* equal hit counts; the means may differ in the last bit
                 * (exact fixed-point sum here, fsum there) */
                ck_assert_msg(fabs(v - row->sch) <= 2e-16,
                              "case %d m=%d rho=%g layer %d chunk %d: sch %.17g, reference %.17g", _i, want->m,
                              want->rho2 / 2.0, l, chunks[c], v, row->sch);
                double slots = (double)(row->rho2 * cs->k / 2) * (l < 0 ? cs->L : 1);
                double cap = (double)cs->E * (l < 0 ? cs->L : 1);
                ck_assert_double_eq(lrc_test_value(t, acc, "slots", l), slots < cap ? slots : cap);
            }
            t->destroy(acc);
        }
    }
    free(ids);
}
END_TEST

/* One sequence, one layer, E = 4; params as for a router of row width kmax. */
static double one_sequence(const char *params, const int32_t *ids, int n, int kmax)
{
    const rs_metric_type *t = rs_metric_find("sch");
    int64_t offsets[2] = {0, n};
    void *acc = lrc_test_make_acc(t, params, 1, 4, kmax, kmax);
    lrc_test_feed(t, acc, ids, kmax, 1, 4, offsets, 1, 0, n, 3, NULL);
    double v = lrc_test_value(t, acc, "sch", 0), shared = lrc_test_value(t, acc, "sch", -1);
    ck_assert(v == shared || (isnan(v) && isnan(shared))); /* one layer: the shared cache is the same */
    t->destroy(acc);
    return v;
}

START_TEST(sch_hand_cases)
{
    /* By hand, k = 1, C = 2 (rho 2), tokens 0 1 2 0 1. Tokens 0 and 1 are
     * warm-start hits (fewer than 2 distinct experts seen).
     * m = 2: at token 2 the look-ahead is tokens 2..3: expert 0 has one use,
     * expert 1 none, so 1 is evicted -> {0, 2}; token 3 (0) hits; token 4
     * (1) misses. 3 hits of 5 = 0.6.
     * m = 1 (LRU): token 2 evicts 0, token 3 misses and evicts 1, token 4
     * misses: 2 hits of 5 = 0.4. */
    const int32_t ids[5] = {0, 1, 2, 0, 1};
    ck_assert_double_eq(one_sequence("m=2,rho=2", ids, 5, 1), 0.6);
    ck_assert_double_eq(one_sequence("m=1,rho=2", ids, 5, 1), 0.4);
    /* By hand, calc_fsf's batch convention: k = 2, C = 2 (rho 1), m = 3,
     * tokens {0,1} {2,3} {0,1}. Token 0: warm hits; keys (uses ahead, last
     * access) 0:(1,1) 1:(1,2). Token 1: both misses (2 distinct seen). 2
     * enters, evicting 0 (lowest key); its key becomes (0,3). 3 enters and
     * evicts the lowest of {1:(1,2), 2:(0,3)}: expert 2 of the same token.
     * Token 2: 0 misses, 1 hits. 3 hits of 6 = 0.5 (a cache that spared the
     * current token's experts would score 2 of 6). */
    const int32_t batch[6] = {0, 1, 2, 3, 0, 1};
    ck_assert_double_eq(one_sequence("m=3,rho=1", batch, 3, 2), 0.5);
    /* a cache as large as E: every access hits (warm start) */
    ck_assert_double_eq(one_sequence("m=2,rho=2", batch, 3, 2), 1.0);
}
END_TEST

START_TEST(sch_edge_cases)
{
    const rs_metric_type *t = rs_metric_find("sch");
    /* no access at all: NaN; a sequence without accesses is left out */
    const int32_t none[4] = {-1, -1, -1, -1};
    ck_assert(isnan(one_sequence("m=2,rho=1", none, 4, 1)));
    int64_t offsets[3] = {0, 4, 9};
    const int32_t ids[9] = {-1, -1, -1, -1, 0, 1, 2, 0, 1};
    void *acc = lrc_test_make_acc(t, "m=2,rho=2", 1, 4, 1, 1);
    lrc_test_feed(t, acc, ids, 1, 1, 4, offsets, 2, 0, 9, 9, NULL);
    ck_assert_double_eq(lrc_test_value(t, acc, "sch", 0), 0.6);
    t->destroy(acc);
    /* -1 padding is skipped and a repeated id counts once: rows {0,0} {1,-1}
     * {2,2} {-1,0} {1,1} are the hand case's 0 1 2 0 1 (k = 2 here, so rho = 1
     * gives its C = 2) */
    const int32_t padded[10] = {0, 0, 1, -1, 2, 2, -1, 0, 1, 1};
    ck_assert_double_eq(one_sequence("m=2,rho=1", padded, 5, 2), 0.6);
    /* parameters: rho k must be whole and at least one slot */
    rs_params p;
    rs_error err = {{0}};
    rs_trace_info info = {.path = "x.h5", .num_layers = 2, .num_experts = 8, .top_k = 2, .unit = "token"};
    rs_metric_setup setup = {.trace = &info, .batch_tokens = 64, .kmax = 2};
    void *bad = NULL;
    ck_assert_int_eq(rs_params_init(&p, t->params, t->num_params, t->name, &err), 0);
    ck_assert_int_eq(rs_params_parse_list(&p, "rho=0.75", &err), 0);
    ck_assert_int_ne(t->create(&bad, &p, &setup, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "parameter rho=0.75"));
    ck_assert_int_eq(rs_params_parse_list(&p, "rho=0", &err), 0);
    ck_assert_int_ne(t->create(&bad, &p, &setup, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "no cache slot"));
    /* k: the router's row width, the trace's top_k when rows hold every
     * expert (dynamic-k routers), or the parameter */
    ck_assert_int_eq(rs_params_parse_list(&p, "rho=1.5", &err), 0);
    setup.kmax = 8;
    ck_assert_int_eq(t->create(&bad, &p, &setup, &err), 0);
    ck_assert_double_eq(lrc_test_value(t, bad, "slots", 0), 3.0);
    ck_assert_double_eq(lrc_test_value(t, bad, "slots", -1), 6.0);
    t->destroy(bad);
    ck_assert_int_eq(rs_params_parse_list(&p, "rho=1.5,k=4", &err), 0);
    ck_assert_int_eq(t->create(&bad, &p, &setup, &err), 0);
    ck_assert_double_eq(lrc_test_value(t, bad, "slots", 0), 6.0);
    t->destroy(bad);
    rs_params_free(&p);
}
END_TEST

/* LRU with the batch rule of docs/metrics.md and the warm start, written
 * from the rule: returns the mean over sequences of hits / accesses. */
static double lru_reference(const int32_t *ids, int kmax, int L, int E, const int64_t *offsets, int S, int layer,
                            int slots)
{
    const int N = layer < 0 ? E * L : E, width = layer < 0 ? kmax * L : kmax;
    int64_t *last = malloc((size_t)N * sizeof *last);
    char *cached = malloc((size_t)N), *seen = malloc((size_t)N);
    int32_t *batch = malloc((size_t)width * sizeof *batch);
    double sum = 0;
    int counted = 0;
    for (int s = 0; s < S; s++) {
        memset(cached, 0, (size_t)N);
        memset(seen, 0, (size_t)N);
        int size = 0, distinct = 0;
        int64_t clock = 0, hits = 0, accesses = 0;
        for (int64_t t = offsets[s]; t < offsets[s + 1]; t++) {
            int n = 0;
            for (int l = (layer < 0 ? 0 : layer); l < (layer < 0 ? L : layer + 1); l++)
                for (int j = 0; j < kmax; j++) {
                    int32_t e = ids[((size_t)t * L + l) * kmax + j];
                    if (e >= 0)
                        batch[n++] = e + (layer < 0 ? l * E : 0);
                }
            for (int j = 0; j < n; j++) {
                accesses++;
                if (cached[batch[j]])
                    hits++;
                else if (!seen[batch[j]])
                    hits += distinct < slots;
                if (!seen[batch[j]]) {
                    seen[batch[j]] = 1;
                    distinct++;
                }
            }
            for (int j = 0; j < n; j++) {
                int32_t e = batch[j];
                if (!cached[e] && size == slots) {
                    int victim = -1;
                    for (int x = 0; x < N; x++) {
                        int in_batch = 0;
                        for (int i = 0; i < n; i++)
                            in_batch |= batch[i] == x;
                        if (cached[x] && !in_batch && (victim < 0 || last[x] < last[victim]))
                            victim = x;
                    }
                    cached[victim] = 0;
                    size--;
                }
                if (!cached[e]) {
                    cached[e] = 1;
                    size++;
                }
                last[e] = ++clock;
            }
        }
        if (accesses > 0) {
            sum += (double)hits / (double)accesses;
            counted++;
        }
    }
    free(last);
    free(cached);
    free(seen);
    free(batch);
    return sum / counted;
}

START_TEST(sch_m1_is_lru)
{
    /* m = 1 and C > k: calc_fsf's rule is LRU with the warm start. Random
     * rows of 0..4 experts (a dynamic-k router), kmax = 4, C = 6. */
    const rs_metric_type *t = rs_metric_find("sch");
    enum { L = 3, E = 12, K = 4, T = 300 };
    static const int64_t offsets[] = {0, 1, 9, 40, 41, 100, 163, 170, 300};
    int32_t *ids = malloc((size_t)T * L * K * sizeof *ids);
    unsigned state = 7;
    for (int i = 0; i < T * L; i++) {
        state = state * 1103515245u + 12345u;
        int n = (int)((state >> 16) % (K + 1));
        for (int j = 0; j < K; j++) {
            int e;
            do {
                state = state * 1103515245u + 12345u;
                e = (int)((state >> 16) % E);
                for (int x = 0; x < j && e >= 0; x++)
                    if (ids[i * K + x] == e)
                        e = -2;
            } while (e == -2);
            ids[i * K + j] = j < n ? e : -1;
        }
    }
    void *acc = lrc_test_make_acc(t, "m=1,rho=1.5", L, E, K, 2);
    lrc_test_feed(t, acc, ids, K, L, E, offsets, 8, 0, T, 23, NULL);
    for (int l = -1; l < L; l++) {
        double want = lru_reference(ids, K, L, E, offsets, 8, l, l < 0 ? 6 * L : 6);
        ck_assert_double_eq_tol(lrc_test_value(t, acc, "sch", l), want, 1e-15);
    }
    t->destroy(acc);
    free(ids);
}
END_TEST

START_TEST(sch_short_trace_bounds_the_ring)
{
    /* m above the trace length: the rings hold the trace's tokens only, and
     * every look-ahead reaches the sequence end, as with a ring of m rows */
    const rs_metric_type *t = rs_metric_find("sch");
    enum { L = 2, E = 8, K = 2, T = 120 };
    static const int64_t offsets[] = {0, 50, 53, 120};
    int lengths[3] = {50, 3, 67};
    int32_t *ids = malloc((size_t)T * L * K * sizeof *ids);
    lrc_test_generate(8, LRC_STICKY, E, K, L, lengths, 3, ids);
    void *full = lrc_test_make_acc(t, "m=500,rho=2", L, E, K, K);
    lrc_test_trace_tokens = T;
    void *bounded = lrc_test_make_acc(t, "m=500,rho=2", L, E, K, K);
    lrc_test_trace_tokens = 0;
    lrc_test_feed(t, full, ids, K, L, E, offsets, 3, 0, T, 31, NULL);
    lrc_test_feed(t, bounded, ids, K, L, E, offsets, 3, 0, T, 31, NULL);
    rs_test_same_rows(t, full, bounded, "ring of the trace's length");
    t->destroy(full);
    t->destroy(bounded);
    free(ids);
}
END_TEST

START_TEST(sch_skipped_tokens_are_absent)
{
    const rs_metric_type *t = rs_metric_find("sch");
    enum { L = 2, E = 8, K = 2, T = 120 };
    static const int64_t offsets[] = {0, 50, 53, 120};
    int lengths[3] = {50, 3, 67};
    int32_t *ids = malloc((size_t)T * L * K * sizeof *ids), *kept = malloc((size_t)T * L * K * sizeof *ids);
    lrc_test_generate(5, LRC_STICKY, E, K, L, lengths, 3, ids);
    uint8_t valid[T];
    int64_t offsets2[4] = {0};
    int64_t n = 0;
    for (int s = 0; s < 3; s++) {
        for (int64_t tok = offsets[s]; tok < offsets[s + 1]; tok++) {
            valid[tok] = tok % 4 != 1;
            if (valid[tok])
                memcpy(kept + (size_t)n++ * L * K, ids + (size_t)tok * L * K, sizeof *ids * L * K);
        }
        offsets2[s + 1] = n;
    }
    void *with_skips = lrc_test_make_acc(t, "m=4,rho=2", L, E, K, K);
    void *without = lrc_test_make_acc(t, "m=4,rho=2", L, E, K, K);
    lrc_test_feed(t, with_skips, ids, K, L, E, offsets, 3, 0, T, 9, valid);
    lrc_test_feed(t, without, kept, K, L, E, offsets2, 3, 0, n, 9, NULL);
    rs_test_same_rows(t, with_skips, without, "skipped tokens");
    t->destroy(with_skips);
    t->destroy(without);
    free(ids);
    free(kept);
}
END_TEST

START_TEST(sch_merge_at_sequence_boundaries)
{
    lrc_test_check_merges("sch", "m=4,rho=1");
    lrc_test_check_merges("sch", "m=16,rho=2");
    lrc_test_check_merges("sch", "m=1,rho=3");
}
END_TEST

START_TEST(sch_cli_threads_and_chunks)
{
    char config[2048];
    snprintf(config, sizeof config,
             "{\"name\": \"sch\", \"traces\": [\"%s\"], \"routers\": [\"topk:k=2\", \"replay\", \"topp:p=0.5\"], "
             "\"metrics\": [{\"name\": \"sch\", \"params\": {\"m\": [1, 4, 16], \"rho\": [1, 2]}}], "
             "\"output\": \"%%s\"}",
             lrc_test_cli_trace());
    char *base = lrc_test_run_csv(config, "--threads 1 --chunk-tokens 1000", "sch-base");
    char *threads = lrc_test_run_csv(config, "--threads 2 --chunk-tokens 1000", "sch-threads");
    char *chunks = lrc_test_run_csv(config, "--threads 2 --chunk-tokens 7", "sch-chunks");
    ck_assert_str_eq(base, threads);
    ck_assert_str_eq(base, chunks);
    ck_assert_ptr_nonnull(strstr(base, ",sch.sch,m=4;rho=2,all,"));
    ck_assert_ptr_nonnull(strstr(base, ",sch.sch,m=16;rho=1,1,"));
    /* topk:k=2 on 3 layers: C = 4 per layer, 12 shared; topp (rows of E)
     * uses the trace's top_k = 2; replay's rows are the recorded K = 4 */
    ck_assert_ptr_nonnull(strstr(base, ",topk,k=2;renorm=1;scale=1,sch.slots,rho=2,all,12\n"));
    ck_assert_ptr_nonnull(strstr(base, ",topp,p=0.5,sch.slots,rho=2,0,4\n"));
    ck_assert_ptr_nonnull(strstr(base, ",sch.slots,rho=2,0,8\n"));
    free(base);
    free(threads);
    free(chunks);
}
END_TEST

Suite *metrics_sch_suite(void)
{
    Suite *s = suite_create("metrics_sch");
    TCase *tc = tcase_create("sch");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, sch_matches_reference, 0, 3);
    tcase_add_test(tc, sch_hand_cases);
    tcase_add_test(tc, sch_edge_cases);
    tcase_add_test(tc, sch_m1_is_lru);
    tcase_add_test(tc, sch_short_trace_bounds_the_ring);
    tcase_add_test(tc, sch_skipped_tokens_are_absent);
    tcase_add_test(tc, sch_merge_at_sequence_boundaries);
    tcase_add_test(tc, sch_cli_threads_and_chunks);
    suite_add_tcase(s, tc);
    return s;
}
