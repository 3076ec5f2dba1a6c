/* Metric families on hand-built decisions. Expected values are computed by
 * hand in the comments; the merge tests check bit-for-bit equality. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "routesim/metric.h"
#include "routesim/select.h"
#include "core/metric_sink.h"
#include "tests/test_util.h"

static int output_index(const rs_metric_type *t, const char *name)
{
    for (int i = 0; i < t->num_outputs; i++)
        if (strcmp(t->outputs[i].name, name) == 0)
            return i;
    ck_abort_msg("no output %s", name);
    return -1;
}

static void *make_acc(const rs_metric_type *t, const rs_trace_info *info, int batch, int kmax)
{
    rs_params p;
    rs_error err = {{0}};
    ck_assert_int_eq(rs_params_init(&p, t->params, t->num_params, t->name, &err), 0);
    rs_metric_setup setup = {.trace = info, .batch_tokens = batch, .kmax = kmax};
    void *acc = NULL;
    ck_assert_msg(t->create(&acc, &p, &setup, &err) == 0, "%s", err.msg);
    rs_params_free(&p);
    return acc;
}

static void update_all_layers(const rs_metric_type *t, void *acc, const rs_chunk *c, const rs_decisions *d)
{
    for (int l = 0; l < c->L; l++)
        t->update_layer(acc, c, l, d, NULL);
    if (t->update_chunk)
        t->update_chunk(acc, c, d, NULL);
}

/* Six tokens, E = 4, k = 1, ids 0,0,1,0,2,0; every token has p = [.4 .3 .2 .1]. */
static void six_tokens(rs_test_chunk *tc, int32_t *ids, float *w)
{
    float z[6 * 4];
    const float p[4] = {0.4f, 0.3f, 0.2f, 0.1f};
    for (int t = 0; t < 6; t++)
        for (int e = 0; e < 4; e++)
            z[t * 4 + e] = logf(p[e]);
    const int32_t chosen[6] = {0, 0, 1, 0, 2, 0};
    for (int t = 0; t < 6; t++) {
        ids[t] = chosen[t];
        w[t] = 1.0f;
    }
    rs_test_chunk_init(tc, 0, 6, 1, 4, z);
}

START_TEST(load_hand_case)
{
    const rs_metric_type *t = rs_metric_find("load");
    ck_assert_ptr_nonnull(t);
    rs_trace_info info = {.path = "m.h5", .num_layers = 1, .num_experts = 4, .has_logits = 1, .unit = "token"};
    rs_test_chunk tc;
    int32_t ids[6];
    float w[6];
    six_tokens(&tc, ids, w);
    rs_decisions d = {.kmax = 1, .ids = ids, .weights = w};
    void *acc = make_acc(t, &info, 4, 1);
    update_all_layers(t, acc, &tc.chunk, &d);
    rs_metric_sink sink = {0};
    t->finalize(acc, &sink);
    /* loads [4,1,1,0], mean 1.5 */
    ck_assert_double_eq_tol(rs_metric_sink_value(&sink, output_index(t, "maxvio"), 0, ""), 4 / 1.5 - 1, 1e-12);
    /* population std 1.5 over mean 1.5 */
    ck_assert_double_eq_tol(rs_metric_sink_value(&sink, output_index(t, "cv"), 0, ""), 1.0, 1e-12);
    /* sum_ij |l_i - l_j| = 24, / (2 * 16 * 1.5) */
    ck_assert_double_eq_tol(rs_metric_sink_value(&sink, output_index(t, "gini"), 0, ""), 0.5, 1e-12);
    double h = -(4.0 / 6 * log(4.0 / 6) + 2 * (1.0 / 6) * log(1.0 / 6)) / log(4.0);
    ck_assert_double_eq_tol(rs_metric_sink_value(&sink, output_index(t, "usage_entropy"), 0, ""), h, 1e-12);
    /* 4 * (4/6 * .4 + 1/6 * .3 + 1/6 * .2) = 1.4 */
    ck_assert_double_eq_tol(rs_metric_sink_value(&sink, output_index(t, "aux_loss"), 0, ""), 1.4, 1e-6);
    ck_assert_double_eq(rs_metric_sink_value(&sink, output_index(t, "dead_experts"), 0, ""), 1.0);
    /* batches of 4: [3,1,0,0] -> 2; the short last batch [1,0,1,0] -> 1; mean 1.5 */
    ck_assert_double_eq_tol(rs_metric_sink_value(&sink, output_index(t, "maxvio_batch"), 0, ""), 1.5, 1e-12);
    rs_metric_sink_free(&sink);
    t->destroy(acc);
    rs_test_chunk_free(&tc);
}
END_TEST

START_TEST(load_ignores_padding_and_empty_layers)
{
    const rs_metric_type *t = rs_metric_find("load");
    rs_trace_info info = {.path = "m.h5", .num_layers = 1, .num_experts = 3, .unit = "token"};
    float z[2 * 3] = {0};
    rs_test_chunk tc;
    rs_test_chunk_init(&tc, 0, 2, 1, 3, z);
    tc.chunk.probs = NULL; /* a top-k-only trace: no aux_loss */
    int32_t ids[4] = {-1, -1, -1, -1};
    float w[4] = {0};
    rs_decisions d = {.kmax = 2, .ids = ids, .weights = w};
    void *acc = make_acc(t, &info, 8, 2);
    update_all_layers(t, acc, &tc.chunk, &d);
    rs_metric_sink sink = {0};
    t->finalize(acc, &sink);
    ck_assert(isnan(rs_metric_sink_value(&sink, output_index(t, "maxvio"), 0, "")));
    ck_assert(isnan(rs_metric_sink_value(&sink, output_index(t, "maxvio_batch"), 0, "")));
    ck_assert_double_eq(rs_metric_sink_value(&sink, output_index(t, "dead_experts"), 0, ""), 3.0);
    /* aux_loss is not emitted without logits */
    ck_assert(isnan(rs_metric_sink_value(&sink, output_index(t, "aux_loss"), 0, "")));
    rs_metric_sink_free(&sink);
    t->destroy(acc);
    rs_test_chunk_free(&tc);
}
END_TEST

START_TEST(load_drop_rates_by_position)
{
    /* One sequence of 10 tokens, k = 2, E = 4: token t requests experts
     * (0, 1); the capacity stage dropped slot 1 of tokens 5..9 and slot 0 of
     * token 9. Requested 20, dropped 6: drop_rate 0.3. Token t sits in
     * decile t (10 tokens): deciles 0..4 drop 0 of 2, 5..8 drop 1 of 2,
     * decile 9 drops 2 of 2. */
    const rs_metric_type *t = rs_metric_find("load");
    rs_trace_info info = {.path = "m.h5", .num_layers = 1, .num_experts = 4, .unit = "token"};
    float z[10 * 4] = {0};
    rs_test_chunk tc;
    rs_test_chunk_init(&tc, 0, 10, 1, 4, z);
    tc.chunk.probs = NULL;
    int32_t ids[20];
    float w[20];
    uint8_t dropped[20] = {0};
    for (int i = 0; i < 10; i++) {
        ids[2 * i] = 0;
        ids[2 * i + 1] = 1;
        w[2 * i] = w[2 * i + 1] = 0.5f;
        if (i >= 5) {
            ids[2 * i + 1] = -1;
            dropped[2 * i + 1] = 1;
        }
    }
    ids[18] = -1;
    dropped[18] = 1;
    rs_decisions d = {.kmax = 2, .ids = ids, .weights = w, .dropped = dropped};
    void *acc = make_acc(t, &info, 16, 2);
    update_all_layers(t, acc, &tc.chunk, &d);
    rs_metric_sink sink = {0};
    t->finalize(acc, &sink);
    int rate = output_index(t, "drop_rate"), by_pos = output_index(t, "drop_rate_by_position");
    ck_assert_double_eq_tol(rs_metric_sink_value(&sink, rate, 0, ""), 0.3, 1e-12);
    ck_assert_double_eq_tol(rs_metric_sink_value(&sink, rate, -1, ""), 0.3, 1e-12);
    ck_assert_double_eq(rs_metric_sink_value(&sink, by_pos, 0, "decile=0"), 0.0);
    ck_assert_double_eq(rs_metric_sink_value(&sink, by_pos, 0, "decile=5"), 0.5);
    ck_assert_double_eq(rs_metric_sink_value(&sink, by_pos, -1, "decile=9"), 1.0);
    /* loads count kept assignments only: expert 0 x9, expert 1 x5 */
    ck_assert_double_eq(rs_metric_sink_value(&sink, output_index(t, "dead_experts"), 0, ""), 2.0);
    rs_metric_sink_free(&sink);
    t->destroy(acc);
    rs_test_chunk_free(&tc);
}
END_TEST

START_TEST(entropy_hand_case)
{
    const rs_metric_type *t = rs_metric_find("entropy");
    rs_trace_info info = {.path = "m.h5", .num_layers = 1, .num_experts = 4, .has_logits = 1, .unit = "token"};
    rs_test_chunk tc;
    int32_t ids[6];
    float w[6];
    six_tokens(&tc, ids, w);
    rs_decisions d = {.kmax = 1, .ids = ids, .weights = w};
    void *acc = make_acc(t, &info, 4, 1);
    update_all_layers(t, acc, &tc.chunk, &d);
    rs_metric_sink sink = {0};
    t->finalize(acc, &sink);
    double h = -(0.4 * log(0.4) + 0.3 * log(0.3) + 0.2 * log(0.2) + 0.1 * log(0.1)) / log(4.0);
    ck_assert_double_eq_tol(rs_metric_sink_value(&sink, output_index(t, "router_entropy"), 0, ""), h, 1e-6);
    /* chosen p: .4 .4 .3 .4 .2 .4 -> mean 2.1 / 6 = 0.35 */
    ck_assert_double_eq_tol(rs_metric_sink_value(&sink, output_index(t, "selected_mass"), 0, ""), 0.35, 1e-6);
    rs_metric_sink_free(&sink);
    t->destroy(acc);
    rs_test_chunk_free(&tc);
}
END_TEST

/* Uniform loads: usage_entropy is 1, never above it, for E where the sum
 * of -f log f rounds up (5, 12). */
START_TEST(load_uniform_usage_entropy_at_most_one)
{
    const int widths[] = {5, 12, 64};
    const int E = widths[_i], n = 3 * E;
    const rs_metric_type *t = rs_metric_find("load");
    float *z = calloc((size_t)n * E, sizeof *z), *w = malloc((size_t)n * sizeof *w);
    int32_t *ids = malloc((size_t)n * sizeof *ids);
    ck_assert(z && w && ids);
    for (int i = 0; i < n; i++) {
        ids[i] = i % E;
        w[i] = 1.0f;
    }
    rs_test_chunk tc;
    rs_test_chunk_init(&tc, 0, n, 1, E, z);
    rs_trace_info info = {.path = "u.h5", .num_layers = 1, .num_experts = E, .has_logits = 1, .unit = "token"};
    rs_decisions d = {.kmax = 1, .ids = ids, .weights = w};
    void *acc = make_acc(t, &info, 64, 1);
    update_all_layers(t, acc, &tc.chunk, &d);
    rs_metric_sink sink = {0};
    t->finalize(acc, &sink);
    const double u = rs_metric_sink_value(&sink, output_index(t, "usage_entropy"), 0, "");
    ck_assert_msg(u <= 1.0 && u > 1.0 - 1e-12, "E=%d: usage_entropy %.17g", E, u);
    rs_metric_sink_free(&sink);
    t->destroy(acc);
    rs_test_chunk_free(&tc);
    free(z);
    free(w);
    free(ids);
}
END_TEST

/* Route random logits with top-2 (the reference run: top-3) and compare a
 * whole-trace accumulator with the merge of two parts split at `split`:
 * any token (mid-sequence, mid-batch) for families that are sums, sequence
 * boundaries only for order-dependent (RS_METRIC_SEQUENTIAL) families. */
enum { MERGE_N = 600, MERGE_L = 3, MERGE_E = 8, MERGE_K = 2, MERGE_REF_K = 3, MERGE_BATCH = 64 };
static const int merge_seq_lengths[] = {100, 200, 64, 236};
static const int32_t merge_domains[] = {0, 1, 0, 2};

static int is_sequence_boundary(int split)
{
    int at = 0;
    for (size_t s = 0; s < sizeof merge_seq_lengths / sizeof merge_seq_lengths[0]; s++) {
        if (at == split)
            return 1;
        at += merge_seq_lengths[s];
    }
    return at == split;
}

/* Tokens [t0, t0 + n) of the merge trace as a chunk with its sequences
 * (cut at the chunk's edges), domains and token ids. */
static void merge_part(rs_test_chunk *tc, int t0, int n, const float *z, const int32_t *token_ids)
{
    rs_test_chunk_init(tc, t0, n, MERGE_L, MERGE_E, z + (size_t)t0 * MERGE_L * MERGE_E);
    int lengths[8], count = 0, first = -1, at = 0;
    for (int s = 0; s < 4; s++) {
        int a = at > t0 ? at : t0, b = at + merge_seq_lengths[s] < t0 + n ? at + merge_seq_lengths[s] : t0 + n;
        if (b > a) {
            first = first < 0 ? s : first;
            lengths[count++] = b - a;
        }
        at += merge_seq_lengths[s];
    }
    rs_test_chunk_sequences(tc, lengths, count);
    /* the window's offsets are the sequences' own, not clipped */
    int64_t start = 0;
    for (int s = 0; s < first; s++)
        start += merge_seq_lengths[s];
    for (int s = 0; s <= count; s++) {
        tc->seq_offsets[s] = start;
        if (s < count)
            start += merge_seq_lengths[first + s];
    }
    tc->chunk.first_seq = first;
    tc->chunk.domain = merge_domains + first;
    tc->chunk.token_ids = token_ids + t0;
}

static void merge_update(const rs_metric_type *t, void *acc, const rs_chunk *c, const rs_decisions *d,
                         const rs_decisions *ref_dec)
{
    rs_metric_ref ref = {c, ref_dec};
    const rs_metric_ref *r = (t->flags & RS_METRIC_REFERENCE) ? &ref : NULL;
    for (int l = 0; l < c->L; l++)
        t->update_layer(acc, c, l, d, r);
    if (t->update_chunk)
        t->update_chunk(acc, c, d, r);
}

static void *merge_acc(const rs_metric_type *t, const rs_trace_info *info)
{
    rs_params p;
    rs_error err = {{0}};
    ck_assert_int_eq(rs_params_init(&p, t->params, t->num_params, t->name, &err), 0);
    rs_metric_setup setup = {.trace = info,
                             .batch_tokens = MERGE_BATCH,
                             .kmax = MERGE_K,
                             .reference_trace = info,
                             .reference_kmax = MERGE_REF_K};
    void *acc = NULL;
    ck_assert_msg(t->create(&acc, &p, &setup, &err) == 0, "%s: %s", t->name, err.msg);
    rs_params_free(&p);
    return acc;
}

static void check_merge(const rs_metric_type *t, int split)
{
    enum { N = MERGE_N, L = MERGE_L, E = MERGE_E, K = MERGE_K, RK = MERGE_REF_K };
    if ((t->flags & RS_METRIC_SEQUENTIAL) && !is_sequence_boundary(split))
        return;
    rs_trace_info info = {.path = "m.h5", .num_tokens = N, .num_sequences = 4, .num_layers = L, .num_experts = E,
                          .has_logits = 1, .has_token_ids = 1, .has_domain = 1, .top_k = K, .norm_topk = -1,
                          .unit = "token", .model = "", .scoring = "softmax"};
    float *z = rs_test_random_logits(N, L, E, 5);
    int32_t *ids = malloc((size_t)N * L * K * sizeof *ids), *ref_ids = malloc((size_t)N * L * RK * sizeof *ref_ids);
    int32_t *token_ids = malloc((size_t)N * sizeof *token_ids);
    float *w = malloc((size_t)N * L * K * sizeof *w), *ref_w = malloc((size_t)N * L * RK * sizeof *ref_w), vals[RK];
    ck_assert(ids && ref_ids && token_ids && w && ref_w);
    for (int r = 0; r < N * L; r++) {
        rs_topk_indices(z + (size_t)r * E, E, K, ids + (size_t)r * K, vals);
        w[r * K] = w[r * K + 1] = 0.5f;
        rs_topk_indices(z + (size_t)r * E, E, RK, ref_ids + (size_t)r * RK, ref_w + (size_t)r * RK);
    }
    for (int t = 0; t < N; t++)
        token_ids[t] = (t * 7) % 23; /* 26 occurrences of each id */
    rs_test_chunk whole, a, b;
    merge_part(&whole, 0, N, z, token_ids);
    merge_part(&a, 0, split, z, token_ids);
    merge_part(&b, split, N - split, z, token_ids);
    rs_decisions dw = {.kmax = K, .ids = ids, .weights = w};
    rs_decisions db = {.kmax = K, .ids = ids + (size_t)split * L * K, .weights = w + (size_t)split * L * K};
    rs_decisions rw = {.kmax = RK, .ids = ref_ids, .weights = ref_w};
    rs_decisions rb = {.kmax = RK, .ids = ref_ids + (size_t)split * L * RK, .weights = ref_w + (size_t)split * L * RK};
    void *acc_whole = merge_acc(t, &info);
    merge_update(t, acc_whole, &whole.chunk, &dw, &rw);
    rs_metric_sink s1 = {0};
    t->finalize(acc_whole, &s1);
    ck_assert_msg(s1.n > 0, "%s emitted nothing", t->name);
    /* the second part also compacted, as bootstrap keeps its finished blocks (it ends the trace) */
    for (int compact = 0; compact <= (t->compact != NULL); compact++) {
        void *acc_a = merge_acc(t, &info), *acc_b = merge_acc(t, &info);
        merge_update(t, acc_a, &a.chunk, &dw, &rw);
        merge_update(t, acc_b, &b.chunk, &db, &rb);
        if (compact)
            t->compact(acc_b);
        rs_error err = {{0}};
        ck_assert_msg(t->merge(acc_a, acc_b, &err) == 0, "%s", err.msg);
        rs_metric_sink s2 = {0};
        t->finalize(acc_a, &s2);
        ck_assert_uint_eq(s1.n, s2.n);
        for (size_t i = 0; i < s1.n; i++) {
            ck_assert_int_eq(s1.rows[i].output, s2.rows[i].output);
            ck_assert_msg(memcmp(&s1.rows[i].value, &s2.rows[i].value, sizeof(double)) == 0,
                          "%s.%s layer %d: whole %.17g != merged %.17g (split %d%s)", t->name,
                          t->outputs[s1.rows[i].output].name, s1.rows[i].layer, s1.rows[i].value, s2.rows[i].value,
                          split, compact ? ", compacted" : "");
        }
        rs_metric_sink_free(&s2);
        t->destroy(acc_a);
        t->destroy(acc_b);
    }
    rs_metric_sink_free(&s1);
    t->destroy(acc_whole);
    rs_test_chunk_free(&whole);
    rs_test_chunk_free(&a);
    rs_test_chunk_free(&b);
    free(ids);
    free(ref_ids);
    free(token_ids);
    free(w);
    free(ref_w);
    free(z);
}

/* sequence boundaries (100, 300, 364) and cuts inside sequences and batches */
static const int splits[] = {100, 300, 364, 1, 64, 150, 599};

START_TEST(merged_halves_equal_whole)
{
    for (int f = 0; f < rs_metric_count(); f++)
        check_merge(rs_metric_at(f), splits[_i]);
}
END_TEST

START_TEST(registry_outputs_are_complete)
{
    for (int f = 0; f < rs_metric_count(); f++) {
        const rs_metric_type *t = rs_metric_at(f);
        ck_assert(t->name && t->summary && t->source && t->create && t->update_layer && t->merge && t->finalize &&
                  t->destroy);
        ck_assert_ptr_eq(rs_metric_find(t->name), t);
        ck_assert_int_gt(t->num_outputs, 0);
        for (int o = 0; o < t->num_outputs; o++)
            ck_assert(t->outputs[o].name && t->outputs[o].definition);
    }
}
END_TEST

Suite *metrics_suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("metrics");
    tcase_add_test(tc, load_hand_case);
    tcase_add_test(tc, load_ignores_padding_and_empty_layers);
    tcase_add_test(tc, load_drop_rates_by_position);
    tcase_add_test(tc, entropy_hand_case);
    tcase_add_loop_test(tc, load_uniform_usage_entropy_at_most_one, 0, 3);
    tcase_add_loop_test(tc, merged_halves_equal_whole, 0, sizeof splits / sizeof splits[0]);
    tcase_add_test(tc, registry_outputs_are_complete);
    suite_add_tcase(s, tc);
    return s;
}
