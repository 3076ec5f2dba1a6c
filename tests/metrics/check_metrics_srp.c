/* srp (Segment Routing best Performance): golden values from the reference
 * implementation, hand cases, properties, merges and thread/chunk
 * invariance through the CLI.
 *
 * The lrc_test_* helpers at the top (decisions from a seed, feeding them to
 * an accumulator in chunks that cut through sequences) are shared with
 * tests/check_metrics_sch.c. */
#include <check.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "routesim/metric.h"
#include "core/metric_sink.h"
#include "tests/metrics/lrc_test.h"
#include "tests/test_util.h"

/* ---- shared with check_metrics_sch.c (tests/lrc_test.h) ----------------- */

typedef struct lrc_rng {
    uint64_t state;
} lrc_rng;

/* splitmix64, as tests/golden/lrc/make_golden.py draws it */
static uint64_t lrc_next(lrc_rng *r)
{
    uint64_t z = (r->state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int lrc_below(lrc_rng *r, int n) { return (int)((lrc_next(r) >> 11) % (uint64_t)n); }

static int lrc_draw(lrc_rng *r, int mode, int E, const int32_t *chosen, int count)
{
    for (;;) {
        int e;
        if (mode == LRC_POPULAR) {
            int a = lrc_below(r, E);
            int b = lrc_below(r, E);
            e = a < b ? a : b;
        } else {
            e = lrc_below(r, E);
        }
        int dup = 0;
        for (int j = 0; j < count; j++)
            dup |= chosen[j] == e;
        if (!dup)
            return e;
    }
}

/* make_golden.py's generate(): ids [T, L, k], k distinct experts per row;
 * random rows, sticky rows (keep the previous token's set 2 times in 4,
 * change one expert 1 in 4, redraw 1 in 4) or popular rows (low ids
 * favoured). */
void lrc_test_generate(unsigned seed, int mode, int E, int k, int L, const int *lengths, int count, int32_t *ids)
{
    lrc_rng r = {seed};
    int64_t t = 0;
    for (int s = 0; s < count; s++) {
        for (int i = 0; i < lengths[s]; i++, t++) {
            for (int l = 0; l < L; l++) {
                int32_t *row = ids + ((size_t)t * L + l) * k;
                const int32_t *prev = row - (size_t)L * k;
                int action = 0; /* 0 fresh, 1 change one, 2 keep */
                if (i > 0 && mode == LRC_STICKY) {
                    int v = lrc_below(&r, 4);
                    action = v == 0 ? 0 : v == 1 ? 1 : 2;
                }
                if (action == 0) {
                    for (int j = 0; j < k; j++)
                        row[j] = lrc_draw(&r, mode, E, row, j);
                } else {
                    memcpy(row, prev, (size_t)k * sizeof *row);
                    if (action == 1) {
                        int slot = lrc_below(&r, k);
                        row[slot] = lrc_draw(&r, mode, E, row, k);
                    }
                }
            }
        }
    }
}

/* num_tokens of the trace info lrc_test_make_acc passes (0 = unknown). */
int64_t lrc_test_trace_tokens;

void *lrc_test_make_acc(const rs_metric_type *t, const char *params, int L, int E, int kmax, int top_k)
{
    static rs_trace_info info;
    info = (rs_trace_info){.path = "lrc.h5", .num_tokens = lrc_test_trace_tokens, .num_layers = L,
                           .num_experts = E, .top_k = top_k, .unit = "token"};
    rs_params p;
    rs_error err = {{0}};
    ck_assert_int_eq(rs_params_init(&p, t->params, t->num_params, t->name, &err), 0);
    if (params && params[0])
        ck_assert_msg(rs_params_parse_list(&p, params, &err) == 0, "%s", err.msg);
    rs_metric_setup setup = {.trace = &info, .batch_tokens = 64, .kmax = kmax};
    void *acc = NULL;
    ck_assert_msg(t->create(&acc, &p, &setup, &err) == 0, "%s", err.msg);
    rs_params_free(&p);
    return acc;
}

/* Feeds tokens [a, b) of a trace with sequence offsets offsets[0..num_seq]
 * in chunks of `chunk` tokens, each layer in order then update_chunk, as
 * the engine does for sequential families. valid may be NULL. */
void lrc_test_feed(const rs_metric_type *t, void *acc, const int32_t *ids, int kmax, int L, int E,
                   const int64_t *offsets, int num_seq, int64_t a, int64_t b, int chunk, const uint8_t *valid)
{
    int32_t *seq_of_token = malloc((size_t)chunk * sizeof *seq_of_token);
    float *w = calloc((size_t)chunk * L * kmax + 1, sizeof *w);
    ck_assert(seq_of_token && w);
    int s = 0;
    for (int64_t t0 = a; t0 < b; t0 += chunk) {
        int n = (int)(b - t0 < chunk ? b - t0 : chunk);
        while (offsets[s + 1] <= t0)
            s++;
        int first = s, last = s;
        for (int i = 0; i < n; i++) {
            while (offsets[last + 1] <= t0 + i)
                last++;
            seq_of_token[i] = last - first;
        }
        ck_assert_int_lt(last, num_seq);
        rs_chunk c = {.t0 = t0, .n = n, .L = L, .E = E, .valid = valid ? valid + t0 : NULL,
                      .first_seq = first, .num_seq = last - first + 1, .seq_offsets = offsets + first,
                      .seq_of_token = seq_of_token};
        rs_decisions d = {.kmax = kmax, .ids = (int32_t *)ids + (size_t)t0 * L * kmax, .weights = w};
        for (int l = 0; l < L; l++)
            t->update_layer(acc, &c, l, &d, NULL);
        if (t->update_chunk)
            t->update_chunk(acc, &c, &d, NULL);
    }
    free(seq_of_token);
    free(w);
}

/* The value finalize emits for output `name` at layer (-1 = all). */
double lrc_test_value(const rs_metric_type *t, const void *acc, const char *name, int layer)
{
    int o = -1;
    for (int i = 0; i < t->num_outputs; i++)
        if (strcmp(t->outputs[i].name, name) == 0)
            o = i;
    ck_assert_msg(o >= 0, "no output %s", name);
    rs_metric_sink sink = {0};
    t->finalize(acc, &sink);
    double v = rs_metric_sink_value(&sink, o, layer, "");
    rs_metric_sink_free(&sink);
    return v;
}

/* Runs `routesim run` on config text (printf-style, %s = output dir) and
 * returns results.csv (caller frees). */
char *lrc_test_run_csv(const char *config_json, const char *extra_args, const char *name)
{
    const char *dir = rs_test_path(name);
    char config_path[1100];
    snprintf(config_path, sizeof config_path, "%s.json", dir);
    FILE *f = fopen(config_path, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, config_json, dir);
    fclose(f);
    char args[4096], *err = NULL;
    snprintf(args, sizeof args, "run %s -q %s", config_path, extra_args);
    int rc = rs_test_run_cli(args, NULL, &err);
    ck_assert_msg(rc == 0, "routesim %s: %s", args, err);
    free(err);
    char csv[1200];
    snprintf(csv, sizeof csv, "%s/results.csv", dir);
    char *text = rs_test_read_file(csv);
    ck_assert_ptr_nonnull(text);
    return text;
}

/* ---- golden cases ------------------------------------------------------- */

typedef struct lrc_case {
    unsigned seed;
    int mode, E, k, L;
    int pattern[3], repeats; /* sequence lengths: pattern repeated */
} lrc_case;

/* make_golden.py's CASES (ids of each case's first token, as a check of the generator) */
static const lrc_case srp_cases[] = {
    {11, LRC_RANDOM, 8, 2, 2, {20, 3, 37}, 10},
    {12, LRC_STICKY, 16, 2, 3, {50, 9, 64}, 9},
    {13, LRC_POPULAR, 12, 2, 2, {5, 100, 16}, 9},
};
static const int32_t srp_first_token[3][6] = {{6, 2, 2, 5}, {1, 4, 14, 13, 15, 7}, {1, 3, 10, 6}};

typedef struct srp_golden {
    int m, layer;
    double srp, rho_hat;
} srp_golden;

/* Golden values: moe-lrc (github.com/ljcleo/moe-lrc, commit 7b3ca46688b4)
 * src/30_srp_calc.py seg_stat run unchanged on these decisions by
 * tests/golden/lrc/make_golden.py; its integer counts matches / preds / acts
 * per alpha, summed over experts and sequences (and layers for -1), give
 * max 2 M / (P + A) and P(alpha*) / A in double (the reference divides in
 * float32; its value is ours rounded to float32). */
static const srp_golden srp_case0[] = {
    {2, 0, 0.7270408163265306, 1.750877192982456},
    {2, 1, 0.7261146496815286, 1.7543859649122806},
    {2, -1, 0.7265774378585086, 1.7526315789473683},
    {4, 0, 0.5684210526315789, 1.0490196078431373},
    {4, 1, 0.5566037735849056, 1.026470588235294},
    {4, -1, 0.5625451046427712, 1.0377450980392158},
    {8, 0, 0.4904322005938634, 2.5244186046511627},
    {8, 1, 0.48168764117457247, 2.603488372093023},
    {8, -1, 0.4860114192495922, 2.563953488372093},
    {16, 0, 0.45009328358208955, 2.474074074074074},
    {16, 1, 0.44326666666666664, 2.4722222222222223},
    {16, -1, 0.4466808850973074, 2.473148148148148},
};
static const srp_golden srp_case1[] = {
    {2, 0, 0.8564631245043616, 1.3351851851851853},
    {2, 1, 0.8492235109101631, 1.3550925925925925},
    {2, 2, 0.8480565371024735, 1.3583333333333334},
    {2, -1, 0.8512315270935961, 1.349537037037037},
    {4, 0, 0.7440693430656934, 1.1364522417153997},
    {4, 1, 0.7323069852941176, 1.1208576998050683},
    {4, 2, 0.7292332268370607, 1.135477582846004},
    {4, -1, 0.7352111602378412, 1.130929174788824},
    {8, 0, 0.6107410995398401, 1.2489106753812635},
    {8, 1, 0.5915442062153697, 1.2608932461873639},
    {8, 2, 0.5901015228426396, 1.2532679738562091},
    {8, -1, 0.5974470484013852, 1.2543572984749456},
    {16, 0, 0.48480778414517667, 1.7698412698412698},
    {16, 1, 0.4642085034830651, 1.7533068783068784},
    {16, 2, 0.47483120327947914, 1.7427248677248677},
    {16, -1, 0.47463594175068013, 1.7552910052910053},
};
static const srp_golden srp_case2[] = {
    {2, 0, 0.7189033677441191, 1.7820150659133709},
    {2, 1, 0.7223261350110526, 1.7688323917137476},
    {2, -1, 0.7206106870229008, 1.7754237288135593},
    {4, 0, 0.5248898107337309, 0.9131944444444444},
    {4, 1, 0.5320994046078178, 0.9161706349206349},
    {4, -1, 0.5284974093264249, 0.9146825396825397},
    {8, 0, 0.4645114244044725, 2.361111111111111},
    {8, 1, 0.47004830917874396, 2.3823529411764706},
    {8, -1, 0.4672885873515871, 2.371732026143791},
    {16, 0, 0.4202586206896552, 1.9974160206718345},
    {16, 1, 0.42899173027989823, 2.046511627906977},
    {16, -1, 0.4246606455750321, 2.0219638242894056},
};

static const srp_golden *const srp_golden_of[] = {srp_case0, srp_case1, srp_case2};
static const size_t srp_golden_count[] = {sizeof srp_case0 / sizeof srp_case0[0],
                                          sizeof srp_case1 / sizeof srp_case1[0],
                                          sizeof srp_case2 / sizeof srp_case2[0]};

/* A case's decisions and offsets (caller frees both). */
static int32_t *case_trace(const lrc_case *cs, int64_t **offsets_out, int *num_seq, int64_t *T_out)
{
    int count = 3 * cs->repeats;
    int *lengths = malloc((size_t)count * sizeof *lengths);
    int64_t *offsets = malloc((size_t)(count + 1) * sizeof *offsets);
    offsets[0] = 0;
    for (int s = 0; s < count; s++) {
        lengths[s] = cs->pattern[s % 3];
        offsets[s + 1] = offsets[s] + lengths[s];
    }
    int64_t T = offsets[count];
    int32_t *ids = malloc((size_t)T * cs->L * cs->k * sizeof *ids);
    lrc_test_generate(cs->seed, cs->mode, cs->E, cs->k, cs->L, lengths, count, ids);
    free(lengths);
    *offsets_out = offsets;
    *num_seq = count;
    *T_out = T;
    return ids;
}

START_TEST(srp_matches_reference)
{
    const rs_metric_type *t = rs_metric_find("srp");
    ck_assert_ptr_nonnull(t);
    const lrc_case *cs = &srp_cases[_i];
    int64_t *offsets, T;
    int S;
    int32_t *ids = case_trace(cs, &offsets, &S, &T);
    for (int j = 0; j < cs->L * cs->k; j++)
        ck_assert_int_eq(ids[j], srp_first_token[_i][j]);
    const int chunks[] = {7, 64, (int)T};
    for (size_t g = 0; g < srp_golden_count[_i]; g++) {
        const srp_golden *want = &srp_golden_of[_i][g];
        if (want->layer != 0)
            continue; /* one accumulator per m covers every layer and the model */
        char params[32];
        snprintf(params, sizeof params, "m=%d", want->m);
        for (int c = 0; c < 3; c++) {
            void *acc = lrc_test_make_acc(t, params, cs->L, cs->E, cs->k, cs->k);
            lrc_test_feed(t, acc, ids, cs->k, cs->L, cs->E, offsets, S, 0, T, chunks[c], NULL);
            for (int l = -1; l < cs->L; l++) {
                const srp_golden *row = want + (l < 0 ? cs->L : l);
                ck_assert_int_eq(row->layer, l);
                double srp = lrc_test_value(t, acc, "srp", l), rho = lrc_test_value(t, acc, "rho_hat", l);
                ck_assert_msg(srp == row->srp && rho == row->rho_hat,
                              "case %d m=%d layer %d chunk %d: srp %.17g rho_hat %.17g, reference %.17g %.17g", _i,
                              want->m, l, chunks[c], srp, rho, row->srp, row->rho_hat);
            }
            t->destroy(acc);
        }
    }
    free(ids);
    free(offsets);
}
END_TEST

/* One layer, E = 3, ids given per token (k = 1), one sequence. */
static void *one_layer(const char *params, const int32_t *ids, int n, int kmax)
{
    const rs_metric_type *t = rs_metric_find("srp");
    int64_t offsets[2] = {0, n};
    void *acc = lrc_test_make_acc(t, params, 1, 3, kmax, kmax);
    lrc_test_feed(t, acc, ids, kmax, 1, 3, offsets, 1, 0, n, n, NULL);
    return acc;
}

START_TEST(srp_hand_case)
{
    /* By hand: m = 2, E = 3, tokens choose 0, 0, 1. Windows [0 0] and [0 1]:
     * f = (2,0,0) and (1,1,0), so H[0] = 3, H[1] = 2, H[2] = 1, acts = 4.
     * alpha 0: 2*4 / (2*6 + 4) = 0.5; alpha 1: 2*4 / (2*3 + 4) = 0.8;
     * alpha 2: 2*2 / (2*1 + 4) = 2/3. SRP = 0.8 at alpha 1, rho_hat = 6/4. */
    const rs_metric_type *t = rs_metric_find("srp");
    const int32_t ids[3] = {0, 0, 1};
    void *acc = one_layer("m=2", ids, 3, 1);
    ck_assert_double_eq(lrc_test_value(t, acc, "srp", 0), 0.8);
    ck_assert_double_eq(lrc_test_value(t, acc, "rho_hat", 0), 1.5);
    ck_assert_double_eq(lrc_test_value(t, acc, "srp", -1), 0.8);
    t->destroy(acc);
    /* By hand: m = 3 over 0, 1, 0, 0 (windows [0 1 0], [1 0 0]): f_0 = 2, 2,
     * f_1 = 1, 1; H[0] = 2, H[1] = 2, H[2] = 2, acts = 6. alpha 1: 2*6 /
     * (3*4 + 6) = 2/3; alpha 2: 2*4 / (3*2 + 6) = 2/3: the tie keeps alpha 1
     * (rho_hat 12/6 = 2), as torch's max keeps the first. */
    const int32_t ids2[4] = {0, 1, 0, 0};
    acc = one_layer("m=3", ids2, 4, 1);
    ck_assert_double_eq_tol(lrc_test_value(t, acc, "srp", 0), 2.0 / 3.0, 1e-15);
    ck_assert_double_eq(lrc_test_value(t, acc, "rho_hat", 0), 2.0);
    t->destroy(acc);
}
END_TEST

START_TEST(srp_edge_cases)
{
    const rs_metric_type *t = rs_metric_find("srp");
    /* a sequence shorter than m has no window */
    const int32_t ids[3] = {0, 1, 2};
    void *acc = one_layer("m=4", ids, 3, 1);
    ck_assert(isnan(lrc_test_value(t, acc, "srp", 0)));
    ck_assert(isnan(lrc_test_value(t, acc, "srp", -1)));
    ck_assert(isnan(lrc_test_value(t, acc, "rho_hat", 0)));
    t->destroy(acc);
    /* windows without any selection: nothing to measure */
    const int32_t none[4] = {-1, -1, -1, -1};
    acc = one_layer("m=2", none, 4, 1);
    ck_assert(isnan(lrc_test_value(t, acc, "srp", 0)));
    t->destroy(acc);
    /* -1 padding is not a selection and a repeated id counts once:
     * rows {0,0},{0,-1},{1,1} equal rows {0},{0},{1} of the hand case */
    const int32_t padded[6] = {0, 0, 0, -1, 1, 1};
    acc = one_layer("m=2", padded, 3, 2);
    ck_assert_double_eq(lrc_test_value(t, acc, "srp", 0), 0.8);
    ck_assert_double_eq(lrc_test_value(t, acc, "rho_hat", 0), 1.5);
    t->destroy(acc);
}
END_TEST

/* Random rows of 0..kmax distinct experts (-1 padded), a dynamic-k router. */
static void random_dynamic(unsigned seed, int64_t T, int L, int E, int kmax, int32_t *ids)
{
    lrc_rng r = {seed};
    for (int64_t row = 0; row < T * L; row++) {
        int32_t *x = ids + row * kmax;
        int n = lrc_below(&r, kmax + 1);
        for (int j = 0; j < kmax; j++)
            x[j] = j < n ? lrc_draw(&r, LRC_RANDOM, E, x, j) : -1;
    }
}

static const int64_t mixed_offsets[] = {0, 1, 9, 40, 41, 100, 163, 170, 300};
enum { MIXED_SEQ = 8, MIXED_T = 300 };

START_TEST(srp_properties)
{
    /* m = 1: every token is its own segment, alpha = 1 predicts it exactly */
    const rs_metric_type *t = rs_metric_find("srp");
    enum { L = 3, E = 10, K = 4 };
    int32_t *ids = malloc((size_t)MIXED_T * L * K * sizeof *ids);
    random_dynamic(5, MIXED_T, L, E, K, ids);
    const int ms[] = {1, 2, 5, 16, 64, 100}; /* 100: only the 130-token sequence has windows */
    for (int i = 0; i < 6; i++) {
        char params[32];
        snprintf(params, sizeof params, "m=%d", ms[i]);
        void *acc = lrc_test_make_acc(t, params, L, E, K, 2);
        lrc_test_feed(t, acc, ids, K, L, E, mixed_offsets, MIXED_SEQ, 0, MIXED_T, 13, NULL);
        for (int l = -1; l < L; l++) {
            double v = lrc_test_value(t, acc, "srp", l), rho = lrc_test_value(t, acc, "rho_hat", l);
            ck_assert_msg(v >= 0.0 && v <= 1.0, "m=%d layer %d: srp %g", ms[i], l, v);
            ck_assert_msg(rho >= 0.0, "m=%d layer %d: rho_hat %g", ms[i], l, rho);
            if (ms[i] == 1) {
                ck_assert_double_eq(v, 1.0);
                ck_assert_double_eq(rho, 1.0);
            }
        }
        t->destroy(acc);
    }
    /* two identical layers: the model-level counts double, SRP does not move */
    int32_t *twice = malloc((size_t)MIXED_T * 2 * K * sizeof *twice);
    for (int tok = 0; tok < MIXED_T; tok++)
        for (int l = 0; l < 2; l++)
            memcpy(twice + ((size_t)tok * 2 + l) * K, ids + (size_t)tok * L * K, K * sizeof *ids);
    void *acc = lrc_test_make_acc(t, "m=8", 2, E, K, 2);
    lrc_test_feed(t, acc, twice, K, 2, E, mixed_offsets, MIXED_SEQ, 0, MIXED_T, 300, NULL);
    ck_assert_double_eq(lrc_test_value(t, acc, "srp", -1), lrc_test_value(t, acc, "srp", 0));
    ck_assert_double_eq(lrc_test_value(t, acc, "rho_hat", -1), lrc_test_value(t, acc, "rho_hat", 1));
    t->destroy(acc);
    free(twice);
    free(ids);
}
END_TEST

START_TEST(srp_short_trace_bounds_the_ring)
{
    /* m far above the trace length: the ring holds the trace's tokens only,
     * and the values equal those of an accumulator sized for m */
    const rs_metric_type *t = rs_metric_find("srp");
    enum { L = 2, E = 8, K = 3 };
    int32_t *ids = malloc((size_t)MIXED_T * L * K * sizeof *ids);
    random_dynamic(13, MIXED_T, L, E, K, ids);
    void *full = lrc_test_make_acc(t, "m=100", L, E, K, 2);
    lrc_test_trace_tokens = MIXED_T;
    void *bounded = lrc_test_make_acc(t, "m=100", L, E, K, 2), *tiny = lrc_test_make_acc(t, "m=5000", L, E, K, 2);
    lrc_test_trace_tokens = 0;
    lrc_test_feed(t, full, ids, K, L, E, mixed_offsets, MIXED_SEQ, 0, MIXED_T, 29, NULL);
    lrc_test_feed(t, bounded, ids, K, L, E, mixed_offsets, MIXED_SEQ, 0, MIXED_T, 29, NULL);
    lrc_test_feed(t, tiny, ids, K, L, E, mixed_offsets, MIXED_SEQ, 0, MIXED_T, 29, NULL);
    rs_test_same_rows(t, full, bounded, "ring of the trace's length");
    ck_assert(isnan(lrc_test_value(t, tiny, "srp", -1)));
    t->destroy(full);
    t->destroy(bounded);
    t->destroy(tiny);
    free(ids);
}
END_TEST

START_TEST(srp_skipped_tokens_are_absent)
{
    /* Tokens with valid = 0 leave their sequence: the result equals the
     * trace without them (sequence lengths shrunk), bit for bit. */
    const rs_metric_type *t = rs_metric_find("srp");
    enum { L = 2, E = 8, K = 2 };
    int32_t *ids = malloc((size_t)MIXED_T * L * K * sizeof *ids), *kept = malloc(sizeof *ids * MIXED_T * L * K);
    random_dynamic(9, MIXED_T, L, E, K, ids);
    uint8_t valid[MIXED_T];
    int64_t offsets2[MIXED_SEQ + 1] = {0};
    int64_t n = 0;
    for (int s = 0; s < MIXED_SEQ; s++) {
        for (int64_t tok = mixed_offsets[s]; tok < mixed_offsets[s + 1]; tok++) {
            valid[tok] = tok % 5 != 2 && tok != 0;
            if (valid[tok])
                memcpy(kept + (size_t)n++ * L * K, ids + (size_t)tok * L * K, sizeof *ids * L * K);
        }
        offsets2[s + 1] = n;
    }
    void *with_skips = lrc_test_make_acc(t, "m=4", L, E, K, K), *without = lrc_test_make_acc(t, "m=4", L, E, K, K);
    lrc_test_feed(t, with_skips, ids, K, L, E, mixed_offsets, MIXED_SEQ, 0, MIXED_T, 17, valid);
    lrc_test_feed(t, without, kept, K, L, E, offsets2, MIXED_SEQ, 0, n, 17, NULL);
    rs_test_same_rows(t, with_skips, without, "skipped tokens");
    t->destroy(with_skips);
    t->destroy(without);
    free(ids);
    free(kept);
}
END_TEST

/* Merge at every sequence boundary of the mixed trace, fed in odd chunks. */
void lrc_test_check_merges(const char *family, const char *params)
{
    const rs_metric_type *t = rs_metric_find(family);
    enum { L = 3, E = 12, K = 3 };
    int32_t *ids = malloc((size_t)MIXED_T * L * K * sizeof *ids);
    random_dynamic(21, MIXED_T, L, E, K, ids);
    void *whole = lrc_test_make_acc(t, params, L, E, K, 2);
    lrc_test_feed(t, whole, ids, K, L, E, mixed_offsets, MIXED_SEQ, 0, MIXED_T, 11, NULL);
    for (int s = 1; s < MIXED_SEQ; s++) {
        int64_t split = mixed_offsets[s];
        void *a = lrc_test_make_acc(t, params, L, E, K, 2), *b = lrc_test_make_acc(t, params, L, E, K, 2);
        lrc_test_feed(t, a, ids, K, L, E, mixed_offsets, MIXED_SEQ, 0, split, 11, NULL);
        lrc_test_feed(t, b, ids, K, L, E, mixed_offsets, MIXED_SEQ, split, MIXED_T, 11, NULL);
        rs_error err = {{0}};
        ck_assert_msg(t->merge(a, b, &err) == 0, "%s", err.msg);
        rs_test_same_rows(t, whole, a, "merged halves");
        t->destroy(a);
        t->destroy(b);
    }
    /* three parts, the middle one ending inside a sequence */
    void *a = lrc_test_make_acc(t, params, L, E, K, 2), *b = lrc_test_make_acc(t, params, L, E, K, 2),
         *c = lrc_test_make_acc(t, params, L, E, K, 2);
    lrc_test_feed(t, a, ids, K, L, E, mixed_offsets, MIXED_SEQ, 0, 40, 11, NULL);
    lrc_test_feed(t, b, ids, K, L, E, mixed_offsets, MIXED_SEQ, 40, 120, 11, NULL);
    rs_error err = {{0}};
    ck_assert_msg(t->merge(a, b, &err) == 0, "%s", err.msg);
    lrc_test_feed(t, a, ids, K, L, E, mixed_offsets, MIXED_SEQ, 120, MIXED_T, 11, NULL);
    rs_test_same_rows(t, whole, a, "merged at 40, continued at 120");
    /* an accumulator that ends inside a sequence cannot take a merge */
    lrc_test_feed(t, c, ids, K, L, E, mixed_offsets, MIXED_SEQ, 0, 50, 11, NULL);
    ck_assert_int_ne(t->merge(c, b, &err), 0);
    ck_assert_ptr_nonnull(strstr(err.msg, "inside a sequence"));
    t->destroy(a);
    t->destroy(b);
    t->destroy(c);
    t->destroy(whole);
    free(ids);
}

START_TEST(srp_merge_at_sequence_boundaries)
{
    lrc_test_check_merges("srp", "m=4");
    lrc_test_check_merges("srp", "m=64");
}
END_TEST

/* A small trace with logits, recorded top-k (-1 padded) and sequences that
 * chunks of 7 tokens cut through; shared with check_metrics_sch.c. */
const char *lrc_test_cli_trace(void)
{
    static char path[1024];
    if (path[0])
        return path;
    enum { T = 400, L = 3, E = 16, K = 4 };
    static const int64_t offsets[] = {0, 5, 105, 106, 260, 400};
    snprintf(path, sizeof path, "%s", rs_test_path("lrc-cli.h5"));
    float *z = rs_test_random_logits(T, L, E, 31);
    int32_t *topk = malloc((size_t)T * L * K * sizeof *topk);
    random_dynamic(3, T, L, E, K, topk);
    rs_test_trace tt = {.T = T, .L = L, .E = E, .K = K, .num_seq = 5, .offsets = offsets, .logits = z,
                        .topk_ids = topk, .top_k = 2};
    rs_test_write_trace(path, &tt);
    free(z);
    free(topk);
    return path;
}

START_TEST(srp_cli_threads_and_chunks)
{
    char config[2048];
    snprintf(config, sizeof config,
             "{\"name\": \"srp\", \"traces\": [\"%s\"], \"routers\": [\"topk:k=2\", \"replay\", \"topp:p=0.5\"], "
             "\"metrics\": [{\"name\": \"srp\", \"params\": {\"m\": [1, 4, 16]}}], \"output\": \"%%s\"}",
             lrc_test_cli_trace());
    char *base = lrc_test_run_csv(config, "--threads 1 --chunk-tokens 1000", "srp-base");
    char *threads = lrc_test_run_csv(config, "--threads 2 --chunk-tokens 1000", "srp-threads");
    char *chunks = lrc_test_run_csv(config, "--threads 2 --chunk-tokens 7", "srp-chunks");
    ck_assert_str_eq(base, threads);
    ck_assert_str_eq(base, chunks);
    ck_assert_ptr_nonnull(strstr(base, ",srp.srp,m=4,all,"));
    ck_assert_ptr_nonnull(strstr(base, ",srp.rho_hat,m=16,2,"));
    ck_assert_ptr_nonnull(strstr(base, ",topk,k=2;renorm=1;scale=1,srp.srp,m=1,all,1\n"));
    free(base);
    free(threads);
    free(chunks);
}
END_TEST

Suite *metrics_srp_suite(void)
{
    Suite *s = suite_create("metrics_srp");
    TCase *tc = tcase_create("srp");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, srp_matches_reference, 0, 3);
    tcase_add_test(tc, srp_hand_case);
    tcase_add_test(tc, srp_edge_cases);
    tcase_add_test(tc, srp_properties);
    tcase_add_test(tc, srp_short_trace_bounds_the_ring);
    tcase_add_test(tc, srp_skipped_tokens_are_absent);
    tcase_add_test(tc, srp_merge_at_sequence_boundaries);
    tcase_add_test(tc, srp_cli_threads_and_chunks);
    suite_add_tcase(s, tc);
    return s;
}
