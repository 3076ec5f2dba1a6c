/* activation: experts per token (mean, histogram) and compute_ratio on
 * hand-built decisions (expected values by hand in the comments), merges
 * and the CLI's thread/chunk invariance. */
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
    const rs_metric_type *t = rs_metric_find("activation");
    ck_assert_ptr_nonnull(t);
    return t;
}

static void *make_acc(const rs_trace_info *info, int kmax)
{
    const rs_metric_type *t = family();
    rs_params p;
    rs_error err = {{0}};
    ck_assert_int_eq(rs_params_init(&p, t->params, t->num_params, t->name, &err), 0);
    rs_metric_setup setup = {.trace = info, .batch_tokens = 64, .kmax = kmax};
    void *acc = NULL;
    ck_assert_msg(t->create(&acc, &p, &setup, &err) == 0, "%s", err.msg);
    rs_params_free(&p);
    return acc;
}

static void update(void *acc, const rs_chunk *c, const rs_decisions *d)
{
    for (int l = 0; l < c->L; l++)
        family()->update_layer(acc, c, l, d, NULL);
}

static double value(const rs_metric_sink *sink, const char *output, int layer, const char *extra)
{
    const rs_metric_type *t = family();
    for (int o = 0; o < t->num_outputs; o++)
        if (strcmp(t->outputs[o].name, output) == 0)
            return rs_metric_sink_value(sink, o, layer, extra);
    ck_abort_msg("no output %s", output);
    return NAN;
}

/* One layer, kmax = 3, five tokens:
 *   t0 {0, 1, 2}   k = 3
 *   t1 {4}         k = 1
 *   t2 {}          k = 0 (every slot -1)
 *   t3 {1, _, 3}   k = 2 (a hole in the row)
 *   t4 skipped (invalid logits): not counted although its row has ids
 * By hand: mean k = (3 + 1 + 0 + 2) / 4 = 1.5; each k = 0..3 holds one
 * token of four, 0.25; compute_ratio = 1.5 / top_k 2 = 0.75. */
START_TEST(activation_hand_case)
{
    float z[5 * 6] = {0};
    rs_test_chunk tc;
    rs_test_chunk_init(&tc, 0, 5, 1, 6, z);
    const uint8_t valid[5] = {1, 1, 1, 1, 0};
    tc.chunk.valid = valid;
    int32_t ids[15] = {0, 1, 2, 4, -1, -1, -1, -1, -1, 1, -1, 3, 0, 1, 2};
    float w[15] = {0};
    rs_decisions d = {.kmax = 3, .ids = ids, .weights = w};
    rs_trace_info info = {.path = "a.h5", .num_layers = 1, .num_experts = 6, .top_k = 2, .unit = "token"};
    void *acc = make_acc(&info, 3);
    update(acc, &tc.chunk, &d);
    rs_metric_sink sink = {0};
    family()->finalize(acc, &sink);
    ck_assert_double_eq(value(&sink, "experts_per_token", 0, ""), 1.5);
    for (int k = 0; k <= 3; k++) {
        char key[16];
        snprintf(key, sizeof key, "k=%d", k);
        ck_assert_double_eq(value(&sink, "experts_per_token_hist", 0, key), 0.25);
    }
    ck_assert(isnan(value(&sink, "experts_per_token_hist", 0, "k=4"))); /* bins stop at kmax */
    ck_assert_double_eq(value(&sink, "compute_ratio", 0, ""), 0.75);
    rs_metric_sink_free(&sink);
    family()->destroy(acc);
    rs_test_chunk_free(&tc);
}
END_TEST

/* Without the trace's top_k there is no native k: compute_ratio is not
 * reported. A layer whose tokens are all skipped has no tokens: NaN. */
START_TEST(activation_no_native_k_and_empty_layer)
{
    float z[2 * 2 * 4] = {0};
    rs_test_chunk tc;
    rs_test_chunk_init(&tc, 0, 2, 2, 4, z);
    const uint8_t valid[2] = {0, 0};
    tc.chunk.valid = valid;
    int32_t ids[8] = {0, 1, 0, 1, 0, 1, 0, 1};
    float w[8] = {0};
    rs_decisions d = {.kmax = 2, .ids = ids, .weights = w};
    rs_trace_info info = {.path = "a.h5", .num_layers = 2, .num_experts = 4, .unit = "token"};
    void *acc = make_acc(&info, 2);
    update(acc, &tc.chunk, &d);
    rs_metric_sink sink = {0};
    family()->finalize(acc, &sink);
    ck_assert(isnan(value(&sink, "experts_per_token", 0, "")));
    ck_assert(isnan(value(&sink, "experts_per_token_hist", 1, "k=2")));
    for (size_t i = 0; i < sink.n; i++)
        ck_assert_str_ne(family()->outputs[sink.rows[i].output].name, "compute_ratio");
    rs_metric_sink_free(&sink);
    family()->destroy(acc);
    rs_test_chunk_free(&tc);
}
END_TEST

/* k = E: every expert every token; k_t never exceeds kmax. */
START_TEST(activation_all_experts)
{
    float z[3 * 4] = {0};
    rs_test_chunk tc;
    rs_test_chunk_init(&tc, 0, 3, 1, 4, z);
    int32_t ids[12] = {0, 1, 2, 3, 3, 2, 1, 0, 1, 0, 3, 2};
    float w[12] = {0};
    rs_decisions d = {.kmax = 4, .ids = ids, .weights = w};
    rs_trace_info info = {.path = "a.h5", .num_layers = 1, .num_experts = 4, .top_k = 1, .unit = "token"};
    void *acc = make_acc(&info, 4);
    update(acc, &tc.chunk, &d);
    rs_metric_sink sink = {0};
    family()->finalize(acc, &sink);
    ck_assert_double_eq(value(&sink, "experts_per_token", 0, ""), 4.0);
    ck_assert_double_eq(value(&sink, "experts_per_token_hist", 0, "k=4"), 1.0);
    ck_assert_double_eq(value(&sink, "experts_per_token_hist", 0, "k=0"), 0.0);
    ck_assert_double_eq(value(&sink, "compute_ratio", 0, ""), 4.0); /* four times the model's k = 1 */
    rs_metric_sink_free(&sink);
    family()->destroy(acc);
    rs_test_chunk_free(&tc);
}
END_TEST

/* Random dynamic-k decisions: the accumulator over [0, split) merged with
 * the one over [split, n) equals the whole, bit for bit. */
START_TEST(activation_merge_equals_whole)
{
    enum { N = 300, L = 2, E = 8, K = 4 };
    int32_t *ids = malloc(sizeof(int32_t) * N * L * K);
    float *w = calloc(N * L * K, sizeof *w);
    uint8_t *valid = malloc(N);
    uint32_t s = 7;
    for (int i = 0; i < N * L * K; i++) {
        s = s * 1664525u + 1013904223u;
        ids[i] = (int32_t)(s >> 24) % (E + 3) - 3; /* about a third -1 */
        ids[i] = ids[i] < 0 ? -1 : ids[i];
    }
    for (int t = 0; t < N; t++)
        valid[t] = t % 17 != 5;
    rs_trace_info info = {.path = "a.h5", .num_layers = L, .num_experts = E, .top_k = 2, .unit = "token"};
    const int splits[] = {1, 100, 299};
    for (size_t sp = 0; sp < sizeof splits / sizeof splits[0]; sp++) {
        int split = splits[sp];
        rs_chunk whole = {.t0 = 0, .n = N, .L = L, .E = E, .valid = valid};
        rs_chunk first = whole, second = whole;
        first.n = split;
        second.t0 = split;
        second.n = N - split;
        second.valid = valid + split;
        rs_decisions dw = {.kmax = K, .ids = ids, .weights = w};
        rs_decisions d2 = {.kmax = K, .ids = ids + (size_t)split * L * K, .weights = w + (size_t)split * L * K};
        void *a = make_acc(&info, K), *b = make_acc(&info, K), *c = make_acc(&info, K);
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
    free(valid);
}
END_TEST

START_TEST(activation_cli_threads_and_chunks)
{
    enum { T = 400, L = 3, E = 8, S = 4 };
    const int64_t offsets[S + 1] = {0, 90, 91, 250, 400};
    float *z = rs_test_random_logits(T, L, E, 11);
    rs_test_trace tt = {.T = T, .L = L, .E = E, .num_seq = S, .offsets = offsets, .logits = z, .top_k = 2};
    const char *entries = "\"routers\": [\"topp:p=0.6\", \"topk:k=2\", \"switch:capacity_factor=0.5\"], "
                          "\"metrics\": [\"activation\"]";
    char *ref = rs_test_config_csv("act", &tt, entries, 37, 400, 400);
    free(z);
    ck_assert_ptr_nonnull(strstr(ref, "activation.experts_per_token_hist"));
    ck_assert_ptr_nonnull(strstr(ref, "activation.compute_ratio"));
    free(ref);
}
END_TEST

Suite *metrics_activation_suite(void)
{
    Suite *s = suite_create("metrics_activation");
    TCase *tc = tcase_create("activation");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, activation_hand_case);
    tcase_add_test(tc, activation_no_native_k_and_empty_layer);
    tcase_add_test(tc, activation_all_experts);
    tcase_add_test(tc, activation_merge_equals_whole);
    tcase_add_test(tc, activation_cli_threads_and_chunks);
    suite_add_tcase(s, tc);
    return s;
}
