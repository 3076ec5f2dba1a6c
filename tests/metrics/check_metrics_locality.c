/* locality: adjacent overlap / Jaccard and reuse distances on hand-built
 * decisions (expected values by hand in the comments), sequences that span
 * chunks, merges at any token, and the CLI's thread/chunk invariance. */
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
    const rs_metric_type *t = rs_metric_find("locality");
    ck_assert_ptr_nonnull(t);
    return t;
}

static void *make_acc(int L, int E, int kmax)
{
    static rs_trace_info info;
    info = (rs_trace_info){.path = "l.h5", .num_layers = L, .num_experts = E, .unit = "token"};
    const rs_metric_type *t = family();
    rs_params p;
    rs_error err = {{0}};
    ck_assert_int_eq(rs_params_init(&p, t->params, t->num_params, t->name, &err), 0);
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

/* A view of tokens [from, to) of a trace whose sequences start at
 * `starts` (global token offsets, count + 1 of them), as the engine builds
 * chunks: seq_offsets is the window of sequences overlapping the view. */
typedef struct view {
    rs_chunk chunk;
    int32_t seq_of_token[64];
} view;

static void make_view(view *v, const int64_t *starts, int count, int from, int to, int L, const uint8_t *valid)
{
    memset(v, 0, sizeof *v);
    int first = 0;
    while (starts[first + 1] <= from)
        first++;
    int last = first;
    while (starts[last + 1] < to)
        last++;
    for (int t = from; t < to; t++) {
        int s = first;
        while (starts[s + 1] <= t)
            s++;
        v->seq_of_token[t - from] = s - first;
    }
    ck_assert_int_lt(last, count);
    v->chunk = (rs_chunk){.t0 = from, .n = to - from, .L = L, .first_seq = first,
                          .num_seq = last - first + 1, .seq_offsets = starts + first,
                          .seq_of_token = v->seq_of_token, .valid = valid ? valid + from : NULL};
}

/* One layer, E = 6, kmax = 2, sequences A = tokens 0-4, B = 5, C = 6-8:
 *   A: S0 {0,1}  S1 {1,2}  S2 {1,2}  S3 {3,4}  S4 {0,3}
 *   B: S5 {0,1}                       (length 1: no pair, all first uses)
 *   C: S6 {2}    S7 {2,5}  S8 {5,2}   (S6 has one expert, e.g. a drop)
 * Pairs, |S&S'| / max(|S|,|S'|) and Jaccard, by hand:
 *   (0,1) 1/2, 1/3   (1,2) 1, 1   (2,3) 0, 0   (3,4) 1/2, 1/3
 *   (6,7) 1/2, 1/2   (7,8) 1, 1
 * overlap = 3.5 / 6 = 7/12; Jaccard = (1/3 + 1 + 0 + 1/3 + 1/2 + 1) / 6 = 19/36.
 * Reuse (tokens since the expert's last use in the sequence):
 *   A: first 0,1 (t0), 2 (t1), 3,4 (t3); d=1: 1 (t1), 1,2 (t2), 3 (t4); d=4: 0 (t4)
 *   B: first 0,1 (a new sequence forgets A)
 *   C: first 2 (t6), 5 (t7); d=1: 2 (t7), 5,2 (t8)
 * 17 uses: d=1 7, d=2-3 0, d=4-7 1, first 9. */
static const int64_t hand_starts[4] = {0, 5, 6, 9};
static const int32_t hand_ids[9 * 2] = {0, 1, 1, 2, 1, 2, 3, 4, 0, 3, 0, 1, 2, -1, 2, 5, 5, 2};

static void check_hand_values(const rs_metric_sink *sink)
{
    ck_assert_double_eq_tol(value(sink, "adjacent_overlap", 0, ""), 7.0 / 12.0, 1e-15);
    ck_assert_double_eq_tol(value(sink, "adjacent_jaccard", 0, ""), 19.0 / 36.0, 1e-15);
    ck_assert_double_eq(value(sink, "reuse_distance", 0, "d=1"), 7.0 / 17.0);
    ck_assert_double_eq(value(sink, "reuse_distance", 0, "d=2-3"), 0.0);
    ck_assert_double_eq(value(sink, "reuse_distance", 0, "d=4-7"), 1.0 / 17.0);
    ck_assert_double_eq(value(sink, "reuse_distance", 0, "d=first"), 9.0 / 17.0);
    ck_assert(isnan(value(sink, "reuse_distance", 0, "d=8-15"))); /* bins stop at the largest seen */
    ck_assert_double_eq(value(sink, "reuse_distance", -1, "d=4-7"), 1.0 / 17.0);
}

START_TEST(locality_hand_case)
{
    float w[18] = {0};
    rs_decisions d = {.kmax = 2, .ids = (int32_t *)hand_ids, .weights = w};
    view v;
    make_view(&v, hand_starts, 3, 0, 9, 1, NULL);
    void *acc = make_acc(1, 6, 2);
    update(acc, &v.chunk, &d);
    rs_metric_sink sink = {0};
    family()->finalize(acc, &sink);
    check_hand_values(&sink);
    rs_metric_sink_free(&sink);
    family()->destroy(acc);
}
END_TEST

/* The same trace in chunks [0,2) [2,7) [7,9): sequences A and C span chunks;
 * every value equals the one-chunk run bit for bit. */
START_TEST(locality_sequences_span_chunks)
{
    float w[18] = {0};
    const int cuts[4] = {0, 2, 7, 9};
    void *whole = make_acc(1, 6, 2), *chunked = make_acc(1, 6, 2);
    view v;
    make_view(&v, hand_starts, 3, 0, 9, 1, NULL);
    rs_decisions d = {.kmax = 2, .ids = (int32_t *)hand_ids, .weights = w};
    update(whole, &v.chunk, &d);
    for (int i = 0; i < 3; i++) {
        make_view(&v, hand_starts, 3, cuts[i], cuts[i + 1], 1, NULL);
        rs_decisions part = {.kmax = 2, .ids = (int32_t *)hand_ids + 2 * cuts[i], .weights = w};
        update(chunked, &v.chunk, &part);
    }
    {
        rs_metric_sink hand = {0};
        family()->finalize(chunked, &hand);
        check_hand_values(&hand);
        rs_metric_sink_free(&hand);
    }
    rs_test_same_rows(family(), whole, chunked, "whole and in parts");
    family()->destroy(whole);
    family()->destroy(chunked);
}
END_TEST

/* Bootstrap merges sealed blocks with replacement, a block with itself
 * too: sequence A of the hand case (pairs 1/2, 1, 0, 1/2; Jaccard 1/3, 1,
 * 0, 1/3; 10 uses: d=1 4, d=4-7 1, first 5) merged twice has the same
 * means and shares: every count doubles, nothing joins across the block's
 * ends. */
START_TEST(locality_sealed_block_merged_with_itself)
{
    float w[18] = {0};
    rs_decisions d = {.kmax = 2, .ids = (int32_t *)hand_ids, .weights = w};
    view v;
    make_view(&v, hand_starts, 3, 0, 5, 1, NULL);
    void *block = make_acc(1, 6, 2), *resample = make_acc(1, 6, 2);
    update(block, &v.chunk, &d);
    family()->seal(block);
    rs_error err = {{0}};
    ck_assert_int_eq(family()->merge(resample, block, &err), 0);
    ck_assert_int_eq(family()->merge(resample, block, &err), 0);
    rs_metric_sink sink = {0};
    family()->finalize(resample, &sink);
    ck_assert_double_eq(value(&sink, "adjacent_overlap", 0, ""), 0.5);
    ck_assert_double_eq_tol(value(&sink, "adjacent_jaccard", 0, ""), 5.0 / 12.0, 1e-15);
    ck_assert_double_eq(value(&sink, "reuse_distance", 0, "d=1"), 0.4);
    ck_assert_double_eq(value(&sink, "reuse_distance", 0, "d=4-7"), 0.1);
    ck_assert_double_eq(value(&sink, "reuse_distance", 0, "d=first"), 0.5);
    rs_metric_sink_free(&sink);
    family()->destroy(block);
    family()->destroy(resample);
}
END_TEST

/* One sequence of 4 tokens, t1 not observed (skipped, or a row marked
 * RS_ID_UNOBSERVED): S0 {0,1}, S2 {0,1}, S3 {0,2}. t1 is absent, so t0 and
 * t2 are neighbours: pairs (0,2) 2/2 = 1, Jaccard 1, and (2,3) 1/2, 1/3:
 * overlap 3/4, Jaccard 2/3. Reuse counts observed tokens: t2 uses 0 and 1
 * at d = 1, t3 uses 0 at d = 1; firsts 0, 1 (t0), 2 (t3): 6 uses, d=1 3,
 * first 3. Both ways of missing give these values. */
START_TEST(locality_skipped_tokens)
{
    const int64_t starts[2] = {0, 4};
    const uint8_t valid[4] = {1, 0, 1, 1};
    int32_t ids[8] = {0, 1, 3, 3, 0, 1, 0, 2}, marked[8] = {0, 1, RS_ID_UNOBSERVED, -1, 0, 1, 0, 2};
    float w[8] = {0};
    for (int way = 0; way < 2; way++) {
        rs_decisions d = {.kmax = 2, .ids = way ? marked : ids, .weights = w};
        view v;
        make_view(&v, starts, 1, 0, 4, 1, way ? NULL : valid);
        void *acc = make_acc(1, 4, 2);
        update(acc, &v.chunk, &d);
        rs_metric_sink sink = {0};
        family()->finalize(acc, &sink);
        ck_assert_double_eq(value(&sink, "adjacent_overlap", 0, ""), 0.75);
        ck_assert_double_eq_tol(value(&sink, "adjacent_jaccard", 0, ""), 2.0 / 3.0, 1e-15);
        ck_assert_double_eq(value(&sink, "reuse_distance", 0, "d=1"), 3.0 / 6.0);
        ck_assert_double_eq(value(&sink, "reuse_distance", 0, "d=first"), 3.0 / 6.0);
        ck_assert(isnan(value(&sink, "reuse_distance", 0, "d=2-3"))); /* bins stop at the largest seen */
        rs_metric_sink_free(&sink);
        family()->destroy(acc);
    }
}
END_TEST

/* Edge cases by hand: k = E (t0, t1) gives overlap and Jaccard 1; an id
 * repeated in a row (t2) is one expert; a layer with no experts at all has
 * nothing to compare (NaN). Two layers, E = 2, kmax = 2, one sequence:
 *   layer 0: {0,1} {1,0} {0,0}   pairs: 2/2 = 1, 1; then {1,0} vs {0}: 1/2, 1/2
 *   layer 1: every slot -1 */
START_TEST(locality_edge_cases)
{
    const int64_t starts[2] = {0, 3};
    int32_t ids[3 * 2 * 2] = {0, 1, -1, -1, 1, 0, -1, -1, 0, 0, -1, -1};
    float w[12] = {0};
    rs_decisions d = {.kmax = 2, .ids = ids, .weights = w};
    view v;
    make_view(&v, starts, 1, 0, 3, 2, NULL);
    void *acc = make_acc(2, 2, 2);
    update(acc, &v.chunk, &d);
    rs_metric_sink sink = {0};
    family()->finalize(acc, &sink);
    ck_assert_double_eq(value(&sink, "adjacent_overlap", 0, ""), 0.75);
    ck_assert_double_eq(value(&sink, "adjacent_jaccard", 0, ""), 0.75);
    /* uses: t0 0,1 first; t1 1,0 d=1; t2 0 d=1: 5 uses */
    ck_assert_double_eq(value(&sink, "reuse_distance", 0, "d=1"), 3.0 / 5.0);
    ck_assert_double_eq(value(&sink, "reuse_distance", 0, "d=first"), 2.0 / 5.0);
    ck_assert(isnan(value(&sink, "adjacent_overlap", 1, "")));
    ck_assert(isnan(value(&sink, "reuse_distance", 1, "d=1")));
    ck_assert_double_eq(value(&sink, "reuse_distance", -1, "d=1"), 3.0 / 5.0); /* layer 1 adds no uses */
    rs_metric_sink_free(&sink);
    family()->destroy(acc);
}
END_TEST

enum { MERGE_N = 40, MERGE_L = 2, MERGE_E = 5, MERGE_K = 3 };
static const int64_t merge_starts[5] = {0, 12, 13, 30, 40};

/* Accumulators over [0, cuts[1]), [cuts[1], cuts[2]), [cuts[2], N) merged
 * as (a + b) + c, or as a + (b + c) when right_first, against ref. */
static void check_three_parts(const rs_metric_sink *ref, const int32_t *ids, const float *w, const uint8_t *valid,
                              const int cuts[4], int right_first)
{
    void *parts[3];
    view v;
    for (int i = 0; i < 3; i++) {
        parts[i] = make_acc(MERGE_L, MERGE_E, MERGE_K);
        if (cuts[i] == cuts[i + 1])
            continue;
        make_view(&v, merge_starts, 4, cuts[i], cuts[i + 1], MERGE_L, valid);
        rs_decisions part = {.kmax = MERGE_K, .ids = (int32_t *)ids + (size_t)cuts[i] * MERGE_L * MERGE_K,
                             .weights = (float *)w};
        update(parts[i], &v.chunk, &part);
    }
    rs_error err = {{0}};
    if (right_first) {
        ck_assert_int_eq(family()->merge(parts[1], parts[2], &err), 0);
        ck_assert_int_eq(family()->merge(parts[0], parts[1], &err), 0);
    } else {
        ck_assert_int_eq(family()->merge(parts[0], parts[1], &err), 0);
        ck_assert_int_eq(family()->merge(parts[0], parts[2], &err), 0);
    }
    rs_metric_sink got = {0};
    family()->finalize(parts[0], &got);
    ck_assert_uint_eq(ref->n, got.n);
    for (size_t i = 0; i < ref->n; i++)
        ck_assert_msg(memcmp(&ref->rows[i].value, &got.rows[i].value, sizeof(double)) == 0,
                      "%s layer %d %s: whole %.17g, merged %.17g (cuts %d %d, right first %d)",
                      family()->outputs[ref->rows[i].output].name, ref->rows[i].layer, ref->rows[i].extra,
                      ref->rows[i].value, got.rows[i].value, cuts[1], cuts[2], right_first);
    rs_metric_sink_free(&got);
    for (int i = 0; i < 3; i++)
        family()->destroy(parts[i]);
}

/* Random dynamic-k decisions over several sequences, two layers, one
 * skipped token; cut in three parts at every token (sequence boundaries
 * and inside sequences), merged in both orders: equal to the whole, bit
 * for bit. */
START_TEST(locality_merge_at_any_token)
{
    enum { N = MERGE_N, L = MERGE_L, E = MERGE_E, K = MERGE_K };
    int32_t ids[N * L * K];
    float w[N * L * K];
    uint8_t valid[N];
    uint32_t s = 99;
    for (int i = 0; i < N * L * K; i++) {
        s = s * 1664525u + 1013904223u;
        int e = (int)(s >> 24) % (E + 2) - 2;
        ids[i] = e < 0 ? -1 : e;
        w[i] = 0;
    }
    for (int t = 0; t < N; t++)
        valid[t] = t != 20;
    rs_decisions d = {.kmax = K, .ids = ids, .weights = w};
    view v;
    make_view(&v, merge_starts, 4, 0, N, L, valid);
    void *whole = make_acc(L, E, K);
    update(whole, &v.chunk, &d);
    rs_metric_sink ref = {0};
    family()->finalize(whole, &ref);
    for (int split = 1; split < N; split++) {
        for (int third = split + 1; third <= N; third += N - split > 3 ? 3 : 1) {
            const int cuts[4] = {0, split, third, N};
            check_three_parts(&ref, ids, w, valid, cuts, 0);
            check_three_parts(&ref, ids, w, valid, cuts, 1);
        }
    }
    rs_metric_sink_free(&ref);
    family()->destroy(whole);
}
END_TEST

START_TEST(locality_cli_threads_and_chunks)
{
    enum { T = 400, L = 3, E = 8, S = 4 };
    const int64_t offsets[S + 1] = {0, 90, 91, 250, 400};
    float *z = rs_test_random_logits(T, L, E, 13);
    rs_test_trace tt = {.T = T, .L = L, .E = E, .num_seq = S, .offsets = offsets, .logits = z, .top_k = 2};
    const char *entries = "\"routers\": [\"topk:k=2\", \"topp:p=0.6\", \"switch:capacity_factor=0.5\"], "
                          "\"metrics\": [\"locality\"]";
    char *ref = rs_test_config_csv("loc", &tt, entries, 37, 400, 64);
    free(z);
    ck_assert_ptr_nonnull(strstr(ref, "locality.reuse_distance,d=first"));
    free(ref);
}
END_TEST

Suite *metrics_locality_suite(void)
{
    Suite *s = suite_create("metrics_locality");
    TCase *tc = tcase_create("locality");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, locality_hand_case);
    tcase_add_test(tc, locality_sequences_span_chunks);
    tcase_add_test(tc, locality_sealed_block_merged_with_itself);
    tcase_add_test(tc, locality_skipped_tokens);
    tcase_add_test(tc, locality_edge_cases);
    tcase_add_test(tc, locality_merge_at_any_token);
    tcase_add_test(tc, locality_cli_threads_and_chunks);
    suite_add_tcase(s, tc);
    return s;
}
