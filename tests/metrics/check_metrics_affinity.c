/* affinity: layer-to-layer conditional entropy, ExFlow predictability and
 * co-activation on hand-built decisions (expected values by hand in the
 * comments), parameters, merges and the CLI's thread/chunk invariance. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "routesim/metric.h"
#include "core/metric_sink.h"
#include "tests/test_util.h"

static const rs_metric_type *family(void)
{
    const rs_metric_type *t = rs_metric_find("affinity");
    ck_assert_ptr_nonnull(t);
    return t;
}

static void *try_make_acc(int L, int E, int kmax, const char *params, rs_error *err)
{
    static rs_trace_info info;
    info = (rs_trace_info){.path = "a.h5", .num_layers = L, .num_experts = E, .unit = "token"};
    const rs_metric_type *t = family();
    rs_params p;
    ck_assert_int_eq(rs_params_init(&p, t->params, t->num_params, t->name, err), 0);
    if (params[0])
        ck_assert_msg(rs_params_parse_list(&p, params, err) == 0, "%s", err->msg);
    rs_metric_setup setup = {.trace = &info, .batch_tokens = 64, .kmax = kmax};
    void *acc = NULL;
    int rc = t->create(&acc, &p, &setup, err);
    rs_params_free(&p);
    return rc == 0 ? acc : NULL;
}

static void *make_acc(int L, int E, int kmax, const char *params)
{
    rs_error err = {{0}};
    void *acc = try_make_acc(L, E, kmax, params, &err);
    ck_assert_msg(acc, "%s", err.msg);
    return acc;
}

/* As the engine: every layer, then the whole chunk. */
static void update(void *acc, const rs_chunk *c, const rs_decisions *d)
{
    for (int l = 0; l < c->L; l++)
        family()->update_layer(acc, c, l, d, NULL);
    family()->update_chunk(acc, c, d, NULL);
}

static double value(const rs_metric_sink *sink, const char *name, int layer, const char *extra)
{
    const rs_metric_type *t = family();
    for (int o = 0; o < t->num_outputs; o++)
        if (strcmp(t->outputs[o].name, name) == 0)
            return rs_metric_sink_value(sink, o, layer, extra);
    ck_abort_msg("no output %s", name);
    return NAN;
}

static rs_metric_sink run(void *acc, int n, int L, const int32_t *ids, int K, const uint8_t *valid)
{
    rs_chunk c = {.t0 = 0, .n = n, .L = L, .valid = valid};
    float w[64] = {0};
    rs_decisions d = {.kmax = K, .ids = (int32_t *)ids, .weights = w};
    update(acc, &c, &d);
    rs_metric_sink sink = {0};
    family()->finalize(acc, &sink);
    return sink;
}

/* L = 2, E = 3, k = 1; transitions (layer 0 -> layer 1) of six tokens:
 *   0->1, 0->1, 0->2, 1->0, 2->2, and a skipped token 1->1
 * A = [[0 2 1] [1 0 0] [0 0 1]], 5 transitions.
 * By hand: H(J|I) = P(0) H(2/3, 1/3) + P(1) 0 + P(2) 0
 *   = 3/5 (2/3 ln 3/2 + 1/3 ln 3), normalised by ln 3.
 * Predictability, successors = 1: rows' largest 2 + 1 + 1 = 4 of 5 = 0.8;
 * successors = 2: 5 of 5 = 1. */
START_TEST(affinity_hand_case)
{
    const int32_t ids[6 * 2] = {0, 1, 0, 1, 0, 2, 1, 0, 2, 2, 1, 1};
    const uint8_t valid[6] = {1, 1, 1, 1, 1, 0};
    double h = 3.0 / 5.0 * (2.0 / 3.0 * log(1.5) + 1.0 / 3.0 * log(3.0)) / log(3.0);
    void *acc = make_acc(2, 3, 1, "");
    rs_metric_sink sink = run(acc, 6, 2, ids, 1, valid);
    ck_assert_double_eq_tol(value(&sink, "layer_affinity", 0, ""), h, 1e-15);
    ck_assert_double_eq(value(&sink, "affinity_predictability", 0, ""), 0.8);
    ck_assert(isnan(value(&sink, "layer_affinity", 1, ""))); /* the last layer has no next layer */
    ck_assert(isnan(value(&sink, "coactivation_entropy", 0, ""))); /* k = 1: no pairs */
    rs_metric_sink_free(&sink);
    family()->destroy(acc);
    acc = make_acc(2, 3, 1, "successors=2");
    sink = run(acc, 6, 2, ids, 1, valid);
    ck_assert_double_eq(value(&sink, "affinity_predictability", 0, ""), 1.0);
    rs_metric_sink_free(&sink);
    family()->destroy(acc);
}
END_TEST

/* k = 2, every pair of a token's experts: L = 2, E = 4, one token
 * {0,1} -> {2,3}: A[0][2] = A[0][3] = A[1][2] = A[1][3] = 1. Each row is
 * uniform over two successors: H = ln 2 / ln 4 = 1/2. Predictability with
 * the default successors = kmax = 2: 1; with successors = 1: 2 of 4. A
 * padded slot (-1) at layer 1 leaves {0,1} -> {2}: H = 0, predictability 1. */
START_TEST(affinity_all_pairs)
{
    const int32_t ids[4] = {0, 1, 2, 3};
    void *acc = make_acc(2, 4, 2, "");
    rs_metric_sink sink = run(acc, 1, 2, ids, 2, NULL);
    ck_assert_double_eq_tol(value(&sink, "layer_affinity", 0, ""), 0.5, 1e-15);
    ck_assert_double_eq(value(&sink, "affinity_predictability", 0, ""), 1.0);
    rs_metric_sink_free(&sink);
    family()->destroy(acc);
    acc = make_acc(2, 4, 2, "successors=1");
    sink = run(acc, 1, 2, ids, 2, NULL);
    ck_assert_double_eq(value(&sink, "affinity_predictability", 0, ""), 0.5);
    rs_metric_sink_free(&sink);
    family()->destroy(acc);
    const int32_t padded[4] = {0, 1, 2, -1};
    acc = make_acc(2, 4, 2, "successors=1");
    sink = run(acc, 1, 2, padded, 2, NULL);
    ck_assert_double_eq(value(&sink, "layer_affinity", 0, ""), 0.0);
    ck_assert_double_eq(value(&sink, "affinity_predictability", 0, ""), 1.0);
    rs_metric_sink_free(&sink);
    family()->destroy(acc);
}
END_TEST

/* Co-activation, L = 1, E = 4, k = 2, tokens {0,1} {0,1} {2,3} {1,0} and
 * {2,2} (a repeated id is not a pair): pairs (0,1) x 3, (2,3) x 1.
 * By hand: entropy = (3/4 ln 4/3 + 1/4 ln 4) / ln 6 (six possible pairs);
 * matrix = 1: (0,1) in 3 of 5 tokens, (2,3) in 1 of 5, (0,2) in none. */
START_TEST(affinity_coactivation)
{
    const int32_t ids[10] = {0, 1, 0, 1, 2, 3, 1, 0, 2, 2};
    double h = (0.75 * log(4.0 / 3.0) + 0.25 * log(4.0)) / log(6.0);
    void *acc = make_acc(1, 4, 2, "matrix=1");
    rs_metric_sink sink = run(acc, 5, 1, ids, 2, NULL);
    ck_assert_double_eq_tol(value(&sink, "coactivation_entropy", 0, ""), h, 1e-15);
    ck_assert_double_eq(value(&sink, "coactivation", 0, "i=0;j=1"), 0.6);
    ck_assert_double_eq(value(&sink, "coactivation", 0, "i=2;j=3"), 0.2);
    ck_assert_double_eq(value(&sink, "coactivation", 0, "i=0;j=2"), 0.0);
    ck_assert(isnan(value(&sink, "coactivation", 0, "i=1;j=0"))); /* only i < j */
    ck_assert(isnan(value(&sink, "layer_affinity", 0, ""))); /* L = 1: no transitions */
    rs_metric_sink_free(&sink);
    family()->destroy(acc);
    /* without matrix=1 only the summary */
    acc = make_acc(1, 4, 2, "");
    sink = run(acc, 5, 1, ids, 2, NULL);
    ck_assert(isnan(value(&sink, "coactivation", 0, "i=0;j=1")));
    rs_metric_sink_free(&sink);
    family()->destroy(acc);
}
END_TEST

/* Routing that ignores the layer (each token the same expert at both
 * layers, experts balanced) is fully predictable: H = 0, predictability 1;
 * independent uniform routing over all E x E combinations gives H = 1. */
START_TEST(affinity_extremes)
{
    enum { E = 4 };
    int32_t same[E * 2], all[E * E * 2];
    for (int t = 0; t < E; t++)
        same[2 * t] = same[2 * t + 1] = t;
    for (int t = 0; t < E * E; t++) {
        all[2 * t] = t / E;
        all[2 * t + 1] = t % E;
    }
    void *acc = make_acc(2, E, 1, "");
    rs_metric_sink sink = run(acc, E, 2, same, 1, NULL);
    ck_assert_double_eq(value(&sink, "layer_affinity", 0, ""), 0.0);
    ck_assert_double_eq(value(&sink, "affinity_predictability", 0, ""), 1.0);
    rs_metric_sink_free(&sink);
    family()->destroy(acc);
    acc = make_acc(2, E, 1, "");
    sink = run(acc, E * E, 2, all, 1, NULL);
    ck_assert_double_eq_tol(value(&sink, "layer_affinity", 0, ""), 1.0, 1e-15);
    ck_assert_double_eq(value(&sink, "affinity_predictability", 0, ""), 0.25);
    rs_metric_sink_free(&sink);
    family()->destroy(acc);
}
END_TEST

/* Uniform counts are at the maximum: layer_affinity (every E x E
 * transition once, k = 1) and coactivation_entropy (every pair of experts
 * once, k = 2) are 1 up to rounding and never above it, for E where the
 * sum rounds up. */
START_TEST(affinity_uniform_at_most_one)
{
    const int widths[] = {5, 7, 10, 12};
    const int E = widths[_i], n = E * E, pairs = E * (E - 1) / 2;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)n * 2);
    float *w = calloc((size_t)n * 2, sizeof *w);
    ck_assert(ids && w);
    for (int t = 0; t < n; t++) {
        ids[2 * t] = t / E;
        ids[2 * t + 1] = t % E;
    }
    void *acc = make_acc(2, E, 1, "");
    rs_chunk c = {.t0 = 0, .n = n, .L = 2};
    rs_decisions d = {.kmax = 1, .ids = ids, .weights = w};
    update(acc, &c, &d);
    rs_metric_sink sink = {0};
    family()->finalize(acc, &sink);
    const double h = value(&sink, "layer_affinity", 0, "");
    ck_assert_msg(h <= 1.0 && h > 1.0 - 1e-12, "E=%d: layer_affinity %.17g", E, h);
    rs_metric_sink_free(&sink);
    family()->destroy(acc);
    int p = 0;
    for (int i = 0; i < E; i++)
        for (int j = i + 1; j < E; j++, p++) {
            ids[2 * p] = i;
            ids[2 * p + 1] = j;
        }
    acc = make_acc(1, E, 2, "");
    c = (rs_chunk){.t0 = 0, .n = pairs, .L = 1};
    d.kmax = 2;
    update(acc, &c, &d);
    family()->finalize(acc, &sink);
    const double co = value(&sink, "coactivation_entropy", 0, "");
    ck_assert_msg(co <= 1.0 && co > 1.0 - 1e-12, "E=%d: coactivation_entropy %.17g", E, co);
    rs_metric_sink_free(&sink);
    family()->destroy(acc);
    free(ids);
    free(w);
}
END_TEST

START_TEST(affinity_matrix_limit)
{
    rs_error err = {{0}};
    ck_assert_ptr_null(try_make_acc(2, 64, 2, "matrix=1", &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "matrix=1"));
    void *acc = try_make_acc(2, 64, 2, "", &err);
    ck_assert_ptr_nonnull(acc);
    family()->destroy(acc);
}
END_TEST

/* Random decisions with holes, split anywhere: merged halves == whole. */
START_TEST(affinity_merge_equals_whole)
{
    enum { N = 200, L = 3, E = 6, K = 3 };
    int32_t *ids = malloc(sizeof(int32_t) * N * L * K);
    float *w = calloc(N * L * K, sizeof *w);
    uint8_t valid[N];
    uint32_t s = 5;
    for (int i = 0; i < N * L * K; i++) {
        s = s * 1664525u + 1013904223u;
        int e = (int)(s >> 24) % (E + 2) - 2;
        ids[i] = e < 0 ? -1 : e;
    }
    for (int t = 0; t < N; t++)
        valid[t] = t % 13 != 4;
    const int splits[] = {1, 77, 199};
    for (int sp = 0; sp < 3; sp++) {
        int split = splits[sp];
        rs_chunk whole = {.t0 = 0, .n = N, .L = L, .valid = valid}, first = whole, second = whole;
        first.n = split;
        second.t0 = split;
        second.n = N - split;
        second.valid = valid + split;
        rs_decisions dw = {.kmax = K, .ids = ids, .weights = w};
        rs_decisions d2 = {.kmax = K, .ids = ids + (size_t)split * L * K, .weights = w};
        void *a = make_acc(L, E, K, "matrix=1"), *b = make_acc(L, E, K, "matrix=1"),
             *c = make_acc(L, E, K, "matrix=1");
        update(a, &whole, &dw);
        update(b, &first, &dw);
        update(c, &second, &d2);
        rs_error err = {{0}};
        ck_assert_int_eq(family()->merge(b, c, &err), 0);
        rs_test_same_rows(family(), a, b, "whole and in parts");
        family()->destroy(a);
        family()->destroy(b);
        family()->destroy(c);
    }
    free(ids);
    free(w);
}
END_TEST

START_TEST(affinity_cli_threads_and_chunks)
{
    enum { T = 400, L = 3, E = 8, S = 4 };
    const int64_t offsets[S + 1] = {0, 90, 91, 250, 400};
    float *z = rs_test_random_logits(T, L, E, 19);
    rs_test_trace tt = {.T = T, .L = L, .E = E, .num_seq = S, .offsets = offsets, .logits = z, .top_k = 2};
    const char *entries = "\"routers\": [\"topk:k=2\", \"topp:p=0.6\", \"switch:capacity_factor=0.5\"], "
                          "\"metrics\": [{\"name\": \"affinity\", "
                          "\"params\": {\"matrix\": 1, \"successors\": [1, 2]}}]";
    char *ref = rs_test_config_csv("aff", &tt, entries, 37, 400, 64);
    free(z);
    ck_assert_ptr_nonnull(strstr(ref, ",affinity.affinity_predictability,successors=2,"));
    ck_assert_ptr_nonnull(strstr(ref, ",affinity.coactivation,i=0;j=7,"));
    free(ref);
}
END_TEST

Suite *metrics_affinity_suite(void)
{
    Suite *s = suite_create("metrics_affinity");
    TCase *tc = tcase_create("affinity");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, affinity_hand_case);
    tcase_add_test(tc, affinity_all_pairs);
    tcase_add_test(tc, affinity_coactivation);
    tcase_add_test(tc, affinity_extremes);
    tcase_add_loop_test(tc, affinity_uniform_at_most_one, 0, 4);
    tcase_add_test(tc, affinity_matrix_limit);
    tcase_add_test(tc, affinity_merge_equals_whole);
    tcase_add_test(tc, affinity_cli_threads_and_chunks);
    suite_add_tcase(s, tc);
    return s;
}
