/* Missing data (docs/metrics.md, Conventions): a (token, layer) whose row
 * starts with RS_ID_UNOBSERVED is left out by every metric family, and in
 * sequence order the observed tokens follow each other as if the gap were
 * not there. Checked for every registered family on hand-built chunks:
 * tokens not observed at any layer, inserted into a trace, change no value
 * (bit for bit); and by hand for activation, where a token not observed
 * differs from one that chose nothing. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "routesim/metric.h"
#include "routesim/select.h"
#include "core/metric_sink.h"
#include "tests/test_util.h"

enum { N = 300, L = 3, E = 8, K = 2, RK = 3, SEQS = 4 };
static const int base_lengths[SEQS] = {90, 1, 150, 59};
static const int32_t domains[SEQS] = {0, 1, 0, 2};

/* Where tokens not observed go in (indices into the base trace, before
 * which they are inserted; repeats make runs): sequence starts and ends,
 * the one-token sequence, the middle of sequences, the trace's end. */
static const int gaps[] = {0, 0, 5, 89, 90, 91, 91, 91, 200, 241, 241, 299, 300};
enum { G = sizeof gaps / sizeof gaps[0] };

typedef struct trace_view {
    rs_test_chunk tc;
    int32_t *ids, *ref_ids, *token_ids;
    float *w, *ref_w;
} trace_view;

/* The base trace (with_gaps = 0) or the same with the G tokens above
 * inserted: their decision rows are RS_ID_UNOBSERVED at every layer, in
 * the run and in the reference, and their logits and token ids are noise. */
static void build(trace_view *v, int with_gaps)
{
    const int n = N + (with_gaps ? G : 0);
    float *base_z = rs_test_random_logits(N, L, E, 11), *noise = rs_test_random_logits(G, L, E, 12);
    float *z = malloc(sizeof(float) * (size_t)n * L * E);
    v->ids = malloc(sizeof(int32_t) * (size_t)n * L * K);
    v->ref_ids = malloc(sizeof(int32_t) * (size_t)n * L * RK);
    v->token_ids = malloc(sizeof(int32_t) * (size_t)n);
    v->w = malloc(sizeof(float) * (size_t)n * L * K);
    v->ref_w = malloc(sizeof(float) * (size_t)n * L * RK);
    ck_assert(z && v->ids && v->ref_ids && v->token_ids && v->w && v->ref_w);
    int lengths[SEQS];
    memcpy(lengths, base_lengths, sizeof lengths);
    int out = 0, g = 0, seq = 0, seq_end = base_lengths[0];
    for (int t = 0; t <= N; t++) {
        while (t >= seq_end && seq + 1 < SEQS && t < N)
            seq_end += base_lengths[++seq];
        for (; with_gaps && g < G && gaps[g] == t; g++, out++) {
            lengths[seq]++; /* joins the sequence of the token it precedes (the last one at the end) */
            memcpy(z + (size_t)out * L * E, noise + (size_t)g * L * E, sizeof(float) * L * E);
            for (int l = 0; l < L; l++) {
                int32_t *row = v->ids + ((size_t)out * L + l) * K, *ref = v->ref_ids + ((size_t)out * L + l) * RK;
                rs_pad_row(row, v->w + ((size_t)out * L + l) * K, 0, K);
                rs_pad_row(ref, v->ref_w + ((size_t)out * L + l) * RK, 0, RK);
                row[0] = ref[0] = RS_ID_UNOBSERVED;
            }
            v->token_ids[out] = 3;
        }
        if (t == N)
            break;
        const float *zt = base_z + (size_t)t * L * E;
        memcpy(z + (size_t)out * L * E, zt, sizeof(float) * L * E);
        for (int l = 0; l < L; l++) {
            float vals[RK];
            int32_t *row = v->ids + ((size_t)out * L + l) * K;
            rs_topk_indices(zt + (size_t)l * E, E, K, row, vals);
            if ((t + l) % 11 == 0)
                row[1] = -1; /* a slot dropped or unrecorded: a shorter row, still observed */
            v->w[((size_t)out * L + l) * K] = 0.7f;
            v->w[((size_t)out * L + l) * K + 1] = row[1] < 0 ? 0.0f : 0.3f;
            rs_topk_indices(zt + (size_t)l * E, E, RK, v->ref_ids + ((size_t)out * L + l) * RK,
                            v->ref_w + ((size_t)out * L + l) * RK);
        }
        v->token_ids[out] = (t * 7) % 23;
        out++;
    }
    ck_assert_int_eq(out, n);
    rs_test_chunk_init(&v->tc, 0, n, L, E, z);
    rs_test_chunk_sequences(&v->tc, lengths, SEQS);
    v->tc.chunk.domain = domains;
    v->tc.chunk.token_ids = v->token_ids;
    free(z);
    free(base_z);
    free(noise);
}

static void release(trace_view *v)
{
    rs_test_chunk_free(&v->tc);
    free(v->ids);
    free(v->ref_ids);
    free(v->token_ids);
    free(v->w);
    free(v->ref_w);
}

/* Family t over the whole view, default parameters, batches longer than
 * either trace (maxvio_batch's batches are positions). */
static void measure(const rs_metric_type *t, trace_view *v, int64_t T, rs_metric_sink *sink)
{
    rs_trace_info info = {.path = "m.h5", .num_tokens = T, .num_sequences = SEQS, .num_layers = L,
                          .num_experts = E, .has_logits = 1, .has_token_ids = 1, .has_domain = 1, .top_k = K,
                          .norm_topk = -1, .unit = "token", .model = "", .scoring = "softmax"};
    rs_params p;
    rs_error err = {{0}};
    ck_assert_int_eq(rs_params_init(&p, t->params, t->num_params, t->name, &err), 0);
    rs_metric_setup setup = {.trace = &info, .batch_tokens = 1 << 20, .kmax = K, .reference_trace = &info,
                             .reference_kmax = RK};
    void *acc = NULL;
    ck_assert_msg(t->create(&acc, &p, &setup, &err) == 0, "%s: %s", t->name, err.msg);
    rs_params_free(&p);
    rs_decisions d = {.kmax = K, .ids = v->ids, .weights = v->w};
    rs_decisions rd = {.kmax = RK, .ids = v->ref_ids, .weights = v->ref_w};
    rs_metric_ref ref = {&v->tc.chunk, &rd};
    const rs_metric_ref *r = (t->flags & RS_METRIC_REFERENCE) ? &ref : NULL;
    for (int l = 0; l < L; l++)
        t->update_layer(acc, &v->tc.chunk, l, &d, r);
    if (t->update_chunk)
        t->update_chunk(acc, &v->tc.chunk, &d, r);
    t->finalize(acc, sink);
    t->destroy(acc);
}

START_TEST(unobserved_tokens_change_no_family)
{
    trace_view base, gappy;
    build(&base, 0);
    build(&gappy, 1);
    for (int f = 0; f < rs_metric_count(); f++) {
        const rs_metric_type *t = rs_metric_at(f);
        rs_metric_sink want = {0}, got = {0};
        measure(t, &base, N, &want);
        measure(t, &gappy, N + G, &got);
        ck_assert_msg(want.n > 0 && want.n == got.n, "%s: %zu rows without the gaps, %zu with", t->name, want.n,
                      got.n);
        for (size_t i = 0; i < want.n; i++) {
            ck_assert_int_eq(want.rows[i].output, got.rows[i].output);
            ck_assert_int_eq(want.rows[i].layer, got.rows[i].layer);
            const double a = want.rows[i].value, b = got.rows[i].value;
            ck_assert_msg(memcmp(&a, &b, sizeof a) == 0 || (isnan(a) && isnan(b)),
                          "%s.%s layer %d: %.17g without the gaps, %.17g with", t->name,
                          t->outputs[want.rows[i].output].name, want.rows[i].layer, a, b);
        }
        rs_metric_sink_free(&want);
        rs_metric_sink_free(&got);
    }
    release(&base);
    release(&gappy);
}
END_TEST

/* By hand, activation on one layer, kmax 2, six rows:
 *   {0, 1}, {2, 3}, not observed, {4, 5}, {-1, -1} dropped by capacity, not observed
 * observed tokens 4: k = 2, 2, 2, 0: experts_per_token 6/4 = 1.5, k=0 share
 * 1/4; without the dropped token it would be 2 (a recorded log of k = 2
 * with pairs missing keeps k = 2). */
START_TEST(activation_not_observed_versus_dropped)
{
    const rs_metric_type *t = rs_metric_find("activation");
    ck_assert_ptr_nonnull(t);
    float z[6 * 6] = {0};
    rs_test_chunk tc;
    rs_test_chunk_init(&tc, 0, 6, 1, 6, z);
    int32_t ids[12] = {0, 1, 2, 3, RS_ID_UNOBSERVED, -1, 4, 5, -1, -1, RS_ID_UNOBSERVED, -1};
    uint8_t dropped[12] = {0};
    dropped[8] = dropped[9] = 1;
    float w[12] = {0};
    rs_trace_info info = {.path = "a.h5", .num_layers = 1, .num_experts = 6, .top_k = 2, .unit = "token"};
    for (int with_drop = 0; with_drop < 2; with_drop++) {
        rs_params p;
        rs_error err = {{0}};
        ck_assert_int_eq(rs_params_init(&p, t->params, t->num_params, t->name, &err), 0);
        rs_metric_setup setup = {.trace = &info, .batch_tokens = 64, .kmax = 2};
        void *acc = NULL;
        ck_assert_msg(t->create(&acc, &p, &setup, &err) == 0, "%s", err.msg);
        rs_params_free(&p);
        tc.chunk.n = with_drop ? 6 : 4; /* the first four rows: no dropped token */
        rs_decisions d = {.kmax = 2, .ids = ids, .weights = w, .dropped = dropped};
        t->update_layer(acc, &tc.chunk, 0, &d, NULL);
        rs_metric_sink sink = {0};
        t->finalize(acc, &sink);
        const double mean = rs_metric_sink_value(&sink, 0, 0, ""), none = rs_metric_sink_value(&sink, 1, 0, "k=0"),
                     two = rs_metric_sink_value(&sink, 1, 0, "k=2");
        const double want_mean = with_drop ? 1.5 : 2.0, want_none = with_drop ? 0.25 : 0.0,
                     want_two = with_drop ? 0.75 : 1.0;
        ck_assert_double_eq(mean, want_mean);
        ck_assert_double_eq(none, want_none);
        ck_assert_double_eq(two, want_two);
        rs_metric_sink_free(&sink);
        t->destroy(acc);
    }
    rs_test_chunk_free(&tc);
}
END_TEST

/* rs_row_observed: a skipped token is not observed at any layer, a marked
 * row at its layer only; -1 rows and RS_ID_TRAINING rows are observed. */
START_TEST(row_observed_helper)
{
    float z[3 * 2 * 2] = {0};
    rs_test_chunk tc;
    rs_test_chunk_init(&tc, 0, 3, 2, 2, z);
    int32_t ids[3 * 2] = {RS_ID_UNOBSERVED, 1, -1, RS_ID_TRAINING, 0, 1};
    float w[6] = {0};
    rs_decisions d = {.kmax = 1, .ids = ids, .weights = w};
    const uint8_t valid[3] = {1, 1, 0};
    ck_assert(!rs_row_observed(&tc.chunk, &d, 0, 0));
    ck_assert(rs_row_observed(&tc.chunk, &d, 0, 1));
    ck_assert(rs_row_observed(&tc.chunk, &d, 1, 0));
    ck_assert(rs_row_observed(&tc.chunk, &d, 1, 1));
    tc.chunk.valid = valid;
    ck_assert(rs_row_observed(&tc.chunk, &d, 1, 0));
    ck_assert(!rs_row_observed(&tc.chunk, &d, 2, 0) && !rs_row_observed(&tc.chunk, &d, 2, 1));
    tc.chunk.valid = NULL;
    rs_test_chunk_free(&tc);
}
END_TEST

Suite *metrics_missing_suite(void)
{
    Suite *s = suite_create("metrics_missing");
    TCase *tc = tcase_create("missing");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, unobserved_tokens_change_no_family);
    tcase_add_test(tc, activation_not_observed_versus_dropped);
    tcase_add_test(tc, row_observed_helper);
    suite_add_tcase(s, tc);
    return s;
}
