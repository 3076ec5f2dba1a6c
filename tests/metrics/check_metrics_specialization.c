/* specialization: vocabulary specialisation (moe-lrc convention) and domain
 * specialisation on hand-built decisions (expected values by hand in the
 * comments), the hash table against plain counting, merges and the CLI's
 * thread/chunk invariance. */
#include <check.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "routesim/metric.h"
#include "core/metric_sink.h"
#include "tests/test_util.h"

static const rs_metric_type *family(void)
{
    const rs_metric_type *t = rs_metric_find("specialization");
    ck_assert_ptr_nonnull(t);
    return t;
}

static void *make_acc(int L, int E, int kmax, int has_ids, const char *params)
{
    static rs_trace_info info;
    info = (rs_trace_info){
        .path = "s.h5", .num_layers = L, .num_experts = E, .has_token_ids = has_ids, .unit = "token"};
    const rs_metric_type *t = family();
    rs_params p;
    rs_error err = {{0}};
    ck_assert_int_eq(rs_params_init(&p, t->params, t->num_params, t->name, &err), 0);
    if (params[0])
        ck_assert_msg(rs_params_parse_list(&p, params, &err) == 0, "%s", err.msg);
    rs_metric_setup setup = {.trace = &info, .batch_tokens = 64, .kmax = kmax};
    void *acc = NULL;
    ck_assert_msg(t->create(&acc, &p, &setup, &err) == 0, "%s", err.msg);
    rs_params_free(&p);
    return acc;
}

static void update(void *acc, const rs_chunk *c, const rs_decisions *d)
{
    for (int l = 0; l < c->L; l++)
        family()->update_layer(acc, c, l, d, NULL);
    family()->update_chunk(acc, c, d, NULL);
}

static double value(const rs_metric_sink *sink, const char *name, int layer)
{
    const rs_metric_type *t = family();
    for (int o = 0; o < t->num_outputs; o++)
        if (strcmp(t->outputs[o].name, name) == 0)
            return rs_metric_sink_value(sink, o, layer, "");
    ck_abort_msg("no output %s", name);
    return NAN;
}

/* One layer, E = 3, kmax = 2; top-1 = the kept expert with the largest
 * weight, ties to the earlier slot. Token ids and rows (weights):
 *   id 7:  {0 .6, 1 .4} -> 0   {1 .3, 0 .7} -> 0   {1 .6, 2 .4} -> 1   {0 1, _} -> 0
 *   id 9:  {2 .5, 1 .5} -> 2 (tie)   {1 .7, 2 .3} -> 1   {_, _} -> no expert
 *   id 5:  {0 1, _} -> 0 three times
 *   id 11: {2 1, _} twice (below min_count = 3: left out)
 *   id 7 once more, but skipped (invalid): not counted
 * Shares by hand: id 7: 3 of 4 -> 3/4 (favourite 0); id 9: counts 1, 1 and
 * one token without an expert -> 1/3 (favourite 1, the lower of the tie);
 * id 5: 1 (favourite 0).
 * average=token: (3/4 + 1/3 + 1) / 3 = 25/36.
 * average=expert (moe-lrc): expert 0 mean(3/4, 1) = 7/8, expert 1 1/3:
 * (7/8 + 1/3) / 2 = 29/48. */
static const int32_t vocab_tokens[15] = {7, 7, 7, 7, 9, 9, 9, 5, 5, 5, 11, 11, 7, 7, 7};
static const int32_t vocab_ids[15 * 2] = {0, 1, 1, 0, 1, 2, 0, -1, 2, 1,  1, 2,  -1, -1, 0,
                                          -1, 0, -1, 0, -1, 2, -1, 2, -1, 2, 2, 2,  2,  2,  2};
static const float vocab_w[15 * 2] = {.6f, .4f, .3f, .7f, .6f, .4f, 1, 0, .5f, .5f, .7f, .3f, 0, 0, 1,
                                      0,   1,   0,   1,   0,   1,   0, 1, 0,   1,   1,   1,   1, 1, 1};
static const uint8_t vocab_valid[15] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0};

static rs_metric_sink vocab_run(const char *params)
{
    rs_chunk c = {.t0 = 0, .n = 15, .L = 1, .token_ids = vocab_tokens, .valid = vocab_valid};
    rs_decisions d = {.kmax = 2, .ids = (int32_t *)vocab_ids, .weights = (float *)vocab_w};
    void *acc = make_acc(1, 3, 2, 1, params);
    update(acc, &c, &d);
    rs_metric_sink sink = {0};
    family()->finalize(acc, &sink);
    family()->destroy(acc);
    return sink;
}

START_TEST(vocab_hand_case)
{
    rs_metric_sink sink = vocab_run("min_count=3");
    ck_assert_double_eq_tol(value(&sink, "vocab_specialization", 0), 25.0 / 36.0, 1e-15);
    rs_metric_sink_free(&sink);
    sink = vocab_run("min_count=3,average=expert");
    ck_assert_double_eq_tol(value(&sink, "vocab_specialization", 0), 29.0 / 48.0, 1e-15);
    rs_metric_sink_free(&sink);
    /* min_count = 2 lets id 11 in (2 of 2 on expert 2): (25/12 + 1) / 4 */
    sink = vocab_run("min_count=2");
    ck_assert_double_eq_tol(value(&sink, "vocab_specialization", 0), (25.0 / 12.0 + 1.0) / 4.0, 1e-15);
    rs_metric_sink_free(&sink);
    /* the default min_count = 20: no id qualifies */
    sink = vocab_run("");
    ck_assert(isnan(value(&sink, "vocab_specialization", 0)));
    rs_metric_sink_free(&sink);
}
END_TEST

/* Without token ids nothing is counted and vocab_specialization is not
 * reported; without domains domain_specialization is not either. */
START_TEST(specialization_without_inputs)
{
    int32_t ids[2] = {0, 1};
    float w[2] = {1, 1};
    rs_chunk c = {.t0 = 0, .n = 2, .L = 1};
    rs_decisions d = {.kmax = 1, .ids = ids, .weights = w};
    void *acc = make_acc(1, 2, 1, 0, "");
    update(acc, &c, &d);
    rs_metric_sink sink = {0};
    family()->finalize(acc, &sink);
    ck_assert_uint_eq(sink.n, 0);
    rs_metric_sink_free(&sink);
    family()->destroy(acc);
}
END_TEST

/* Domains, one layer, E = 2, k = 1; sequences with labels 5, 2, 5, -1:
 *   seq 0 (5): experts 0 0 0 1     seq 1 (2): 1 1
 *   seq 2 (5): 0 1 1 1             seq 3 (-1, unlabelled): 0 0, left out
 * Frequencies by hand: domain 5 (8 tokens) e0 4/8, e1 4/8; domain 2
 * (2 tokens) e0 0, e1 1. Expert 0: mean 1/4, population std 1/4, CV 1;
 * expert 1: mean 3/4, std 1/4, CV 1/3. domain_specialization = 2/3.
 * Layer 1 routes everything to expert 0 in both domains: expert 0 has CV 0,
 * expert 1 is never active (no CV): 0. */
START_TEST(domain_hand_case)
{
    const int64_t starts[5] = {0, 4, 6, 10, 12};
    const int32_t labels[4] = {5, 2, 5, -1};
    int32_t seq_of_token[12];
    for (int t = 0, s = 0; t < 12; t++) {
        while (starts[s + 1] <= t)
            s++;
        seq_of_token[t] = s;
    }
    const int32_t layer0[12] = {0, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0};
    int32_t ids[12 * 2];
    float w[24];
    for (int t = 0; t < 12; t++) {
        ids[2 * t] = layer0[t];
        ids[2 * t + 1] = 0;
        w[2 * t] = w[2 * t + 1] = 1;
    }
    rs_chunk c = {.t0 = 0, .n = 12, .L = 2, .num_seq = 4, .seq_offsets = starts, .seq_of_token = seq_of_token,
                  .domain = labels};
    rs_decisions d = {.kmax = 1, .ids = ids, .weights = w};
    void *acc = make_acc(2, 2, 1, 0, "");
    update(acc, &c, &d);
    rs_metric_sink sink = {0};
    family()->finalize(acc, &sink);
    ck_assert_double_eq_tol(value(&sink, "domain_specialization", 0), 2.0 / 3.0, 1e-15);
    ck_assert_double_eq(value(&sink, "domain_specialization", 1), 0.0);
    rs_metric_sink_free(&sink);
    family()->destroy(acc);

    /* one domain only: no variation to measure */
    const int32_t one[4] = {3, 3, 3, 3};
    c.domain = one;
    acc = make_acc(2, 2, 1, 0, "");
    update(acc, &c, &d);
    family()->finalize(acc, &sink);
    ck_assert(isnan(value(&sink, "domain_specialization", 0)));
    rs_metric_sink_free(&sink);
    family()->destroy(acc);
}
END_TEST

/* Thousands of distinct (token id, expert) pairs make the hash table grow;
 * the value equals plain dense counting. */
START_TEST(vocab_matches_dense_counting)
{
    enum { N = 20000, E = 8, V = 1500, MIN = 5 };
    int32_t *tokens = malloc(N * sizeof *tokens), *ids = malloc(N * sizeof *ids);
    float *w = malloc(N * sizeof *w);
    int64_t(*counts)[E + 1] = calloc(V, sizeof *counts);
    uint32_t s = 1;
    for (int t = 0; t < N; t++) {
        s = s * 1664525u + 1013904223u;
        tokens[t] = (int32_t)((s >> 8) % V) * 1000003 % 2000000000; /* large, sparse ids */
        int v = (int)((s >> 8) % V);
        s = s * 1664525u + 1013904223u;
        ids[t] = (s >> 28) < 2 ? -1 : (int32_t)((s >> 8) % (v % E + 1)); /* some ids favour experts */
        w[t] = 1;
        counts[v][ids[t] < 0 ? E : ids[t]]++;
    }
    double sum = 0;
    int qualifying = 0;
    for (int v = 0; v < V; v++) {
        int64_t n = 0, best = 0;
        for (int e = 0; e <= E; e++) {
            n += counts[v][e];
            if (e < E && counts[v][e] > best)
                best = counts[v][e];
        }
        if (n >= MIN) {
            sum += (double)best / (double)n;
            qualifying++;
        }
    }
    ck_assert_int_gt(qualifying, 100);
    rs_chunk c = {.t0 = 0, .n = N, .L = 1, .token_ids = tokens};
    rs_decisions d = {.kmax = 1, .ids = ids, .weights = w};
    void *acc = make_acc(1, E, 1, 1, "min_count=5");
    update(acc, &c, &d);
    rs_metric_sink sink = {0};
    family()->finalize(acc, &sink);
    ck_assert_double_eq_tol(value(&sink, "vocab_specialization", 0), sum / qualifying, 1e-12);
    rs_metric_sink_free(&sink);
    family()->destroy(acc);
    free(tokens);
    free(ids);
    free(w);
    free(counts);
}
END_TEST

/* Random decisions with token ids and domains, split at sequence
 * boundaries and inside sequences: merged halves == whole, bit for bit. */
START_TEST(specialization_merge_equals_whole)
{
    enum { N = 300, L = 2, E = 5, K = 2, S = 6 };
    const int64_t starts[S + 1] = {0, 40, 41, 120, 200, 260, 300};
    const int32_t labels[S] = {4, 1, 4, -1, 9, 1};
    int32_t *ids = malloc(sizeof(int32_t) * N * L * K), tokens[N], seq_of_token[N];
    float *w = malloc(sizeof(float) * N * L * K);
    uint8_t valid[N];
    uint32_t s = 3;
    for (int i = 0; i < N * L * K; i++) {
        s = s * 1664525u + 1013904223u;
        int e = (int)(s >> 24) % (E + 1) - 1;
        ids[i] = e;
        w[i] = (float)((s >> 4) & 3);
    }
    for (int t = 0, q = 0; t < N; t++) {
        while (starts[q + 1] <= t)
            q++;
        seq_of_token[t] = q;
        tokens[t] = (t * 7) % 11;
        valid[t] = t % 29 != 3;
    }
    const int splits[] = {1, 41, 150, 299};
    for (int sp = 0; sp < 4; sp++) {
        int split = splits[sp], cut = 0;
        while (starts[cut + 1] <= split)
            cut++;
        /* second part's window starts at the sequence holding `split` */
        int32_t seq2[N];
        for (int t = split; t < N; t++)
            seq2[t - split] = seq_of_token[t] - cut;
        rs_chunk whole = {.t0 = 0, .n = N, .L = L, .valid = valid, .token_ids = tokens, .num_seq = S,
                          .seq_offsets = starts, .seq_of_token = seq_of_token, .domain = labels};
        rs_chunk first = whole;
        first.n = split;
        first.num_seq = seq_of_token[split - 1] + 1;
        rs_chunk second = {.t0 = split, .n = N - split, .L = L, .valid = valid + split, .token_ids = tokens + split,
                           .first_seq = cut, .num_seq = S - cut, .seq_offsets = starts + cut, .seq_of_token = seq2,
                           .domain = labels + cut};
        size_t off = (size_t)split * L * K;
        rs_decisions dw = {.kmax = K, .ids = ids, .weights = w};
        rs_decisions d2 = {.kmax = K, .ids = ids + off, .weights = w + off};
        const char *params = sp % 2 ? "min_count=3,average=expert" : "min_count=2";
        void *a = make_acc(L, E, K, 1, params), *b = make_acc(L, E, K, 1, params), *c = make_acc(L, E, K, 1, params);
        update(a, &whole, &dw);
        update(b, &first, &dw);
        update(c, &second, &d2);
        rs_error err = {{0}};
        ck_assert_int_eq(family()->merge(b, c, &err), 0);
        rs_metric_sink s1 = {0}, s2 = {0};
        family()->finalize(a, &s1);
        family()->finalize(b, &s2);
        ck_assert_uint_eq(s1.n, s2.n);
        ck_assert_uint_eq(s1.n, 2 * L);
        for (size_t i = 0; i < s1.n; i++) {
            ck_assert(!isnan(s1.rows[i].value));
            ck_assert(memcmp(&s1.rows[i].value, &s2.rows[i].value, sizeof(double)) == 0);
        }
        rs_metric_sink_free(&s1);
        rs_metric_sink_free(&s2);
        family()->destroy(a);
        family()->destroy(b);
        family()->destroy(c);
    }
    free(ids);
    free(w);
}
END_TEST

START_TEST(specialization_cli_threads_and_chunks)
{
    enum { T = 600, L = 2, E = 8, S = 4 };
    const int64_t offsets[S + 1] = {0, 90, 91, 350, 600};
    float *z = rs_test_random_logits(T, L, E, 23);
    int32_t tokens[T];
    for (int t = 0; t < T; t++)
        tokens[t] = (t * 13) % 17;
    rs_test_trace tt = {.T = T, .L = L, .E = E, .num_seq = S, .offsets = offsets, .logits = z, .token_ids = tokens,
                        .top_k = 2};
    const char *entries = "\"routers\": [\"topk:k=2\", \"topp:p=0.6\"], "
                          "\"metrics\": [{\"name\": \"specialization\", "
                          "\"params\": {\"average\": [\"token\", \"expert\"]}}]";
    char *ref = rs_test_config_csv("spec", &tt, entries, 37, 600, 64);
    free(z);
    ck_assert_ptr_nonnull(strstr(ref, ",specialization.vocab_specialization,average=expert;min_count=20,"));
    free(ref);
}
END_TEST

/* A trace without /tokens/ids still gets domain_specialization (the
 * family only wants token ids); vocab_specialization is not reported. */
START_TEST(domain_without_token_ids)
{
    enum { T = 90, L = 2, E = 4 };
    static const int64_t offsets[] = {0, 30, 60, 90};
    float *z = rs_test_random_logits(T, L, E, 3);
    const char *path = rs_test_path("no-ids.h5");
    rs_test_trace tt = {.T = T, .L = L, .E = E, .num_seq = 3, .offsets = offsets, .logits = z, .top_k = 0,
                        .norm_topk = -1};
    rs_test_write_trace(path, &tt);
    free(z);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hsize_t dims[1] = {3};
    const int32_t domain[3] = {0, 1, 0};
    hid_t space = H5Screate_simple(1, dims, NULL);
    hid_t d = H5Dcreate2(f, "/sequences/domain", H5T_STD_I32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, domain);
    H5Dclose(d);
    H5Sclose(space);
    H5Fclose(f);
    char cmd[2048], *out = NULL, *err = NULL;
    snprintf(cmd, sizeof cmd, "route %s --router topk:k=2 --metrics specialization --no-progress", path);
    ck_assert_msg(rs_test_run_cli(cmd, &out, &err) == 0, "%s", err);
    ck_assert_msg(strstr(out, "specialization.domain_specialization"), "%s", out);
    ck_assert_msg(!strstr(out, "vocab_specialization"), "%s", out);
    free(out);
    free(err);
}
END_TEST

Suite *metrics_specialization_suite(void)
{
    Suite *s = suite_create("metrics_specialization");
    TCase *tc = tcase_create("specialization");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, vocab_hand_case);
    tcase_add_test(tc, specialization_without_inputs);
    tcase_add_test(tc, domain_hand_case);
    tcase_add_test(tc, vocab_matches_dense_counting);
    tcase_add_test(tc, specialization_merge_equals_whole);
    tcase_add_test(tc, specialization_cli_threads_and_chunks);
    tcase_add_test(tc, domain_without_token_ids);
    suite_add_tcase(s, tc);
    return s;
}
