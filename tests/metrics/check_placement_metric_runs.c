/* placement through the engine and with load statistics: the same bits for
 * 1, 2 and 3 threads, chunks of 1, 7, 50 and 1000 tokens and layer bands,
 * in every mode (order-dependent ones included); stats=split equals
 * stats=oracle planned from the training tokens' loads and measured on the
 * rest; stats=history equals, period by period, a placement planned from
 * the previous window's loads, and counts the slots each replan changes.
 * The load statistics need a policy that plans from loads (eplb); without
 * one registered those cases are skipped, saying so. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/metric_sink.h"
#include "metrics/placement/placement.h"
#include "routesim/metric.h"
#include "sim/engine/engine.h"
#include "tests/metrics/check_placement_metric.h"
#include "tests/test_util.h"

enum { T = 300, L = 3, E = 16, S = 6, BATCH = 40 };
static const int64_t offsets[S + 1] = {0, 30, 31, 100, 180, 257, 300};

/* A registered policy planned from loads alone, or NULL. */
static const rs_placement_policy *load_policy(void)
{
    for (int i = 0; i < rs_placement_policy_count(); i++) {
        const rs_placement_policy *p = rs_placement_policy_at(i);
        if ((p->needs & RS_PLACEMENT_NEEDS_LOADS) && !(p->needs & ~(unsigned)RS_PLACEMENT_NEEDS_LOADS))
            return p;
    }
    return NULL;
}

static const char *trace_path(void)
{
    static char path[1024];
    if (path[0])
        return path;
    snprintf(path, sizeof path, "%s", rs_test_path("placement.h5"));
    float *z = rs_test_random_logits(T, L, E, 31);
    for (int t = 0; t < T; t++) /* popular experts, so placements differ */
        for (int l = 0; l < L; l++)
            for (int e = 0; e < 4; e++)
                z[((size_t)t * L + l) * E + (size_t)((e * 5 + l) % E)] += 1.5f;
    rs_test_trace tt = {.T = T, .L = L, .E = E, .num_seq = S, .offsets = offsets, .logits = z, .top_k = 2,
                        .norm_topk = 1};
    rs_test_write_trace(path, &tt);
    free(z);
    return path;
}

static void run(const char *params, int threads, int chunk, int band, rs_results *res)
{
    rs_router_spec routers[2];
    rs_error err = {{0}};
    ck_assert_msg(rs_router_spec_parse(&routers[0], "topk:k=2", &err) == 0, "%s", err.msg);
    ck_assert_msg(rs_router_spec_parse(&routers[1], "topk:k=3,capacity_factor=1,group=sequence", &err) == 0, "%s",
                  err.msg);
    rs_metric_spec metric;
    ck_assert_msg(rs_metric_spec_init(&metric, "placement", "", &err) == 0, "%s", err.msg);
    ck_assert_msg(rs_params_parse_list(&metric.params, params, &err) == 0, "%s", err.msg);
    rs_trace *tr = NULL;
    ck_assert_msg(rs_trace_open(&tr, trace_path(), &err) == 0, "%s", err.msg);
    rs_results_init(res);
    rs_engine_options opt = {
        .threads = threads, .chunk_tokens = chunk, .batch_tokens = BATCH, .progress = 0, .band_layers = band};
    rs_engine *e = NULL;
    ck_assert_msg(rs_engine_create(&e, tr, routers, 2, &metric, 1, &opt, res, &err) == 0, "%s: %s", params,
                  err.msg);
    rs_engine_stats stats = {0};
    ck_assert_msg(rs_engine_run(e, NULL, &stats, &err) == 0, "%s: %s", params, err.msg);
    rs_engine_destroy(e);
    rs_trace_close(tr);
    rs_metric_spec_free(&metric);
    rs_router_spec_free(&routers[0]);
    rs_router_spec_free(&routers[1]);
}

static void check_invariant(const char *params)
{
    static const int runs[][3] = {{2, 1, 0}, {1, 7, 0}, {3, 50, 0}, {3, 0, 0}, {2, 7, 1}, {3, 1, 2}};
    rs_results want;
    run(params, 1, 1000, 0, &want);
    ck_assert_msg(want.num_rows > 0, "%s: no results", params);
    size_t numbers = 0;
    for (size_t i = 0; i < want.num_rows; i++)
        numbers += !isnan(want.rows[i].value);
    ck_assert_msg(numbers > want.num_rows / 2, "%s: mostly NaN", params);
    for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
        rs_results got;
        run(params, runs[r][0], runs[r][1], runs[r][2], &got);
        ck_assert_uint_eq(got.num_rows, want.num_rows);
        for (size_t i = 0; i < want.num_rows; i++) {
            const rs_result_row *a = &want.rows[i], *b = &got.rows[i];
            ck_assert_str_eq(a->metric, b->metric);
            ck_assert_str_eq(a->key, b->key);
            ck_assert_int_eq(a->layer, b->layer);
            ck_assert_msg(memcmp(&a->value, &b->value, sizeof a->value) == 0 || (isnan(a->value) && isnan(b->value)),
                          "%s %s %s layer %d: %.17g with 1 thread, %.17g with %d threads, chunk %d, bands of %d",
                          params, a->metric, a->key, a->layer, a->value, b->value, runs[r][0], runs[r][1], runs[r][2]);
        }
        rs_results_free(&got);
    }
    rs_results_free(&want);
}

static const char *const fixed_variants[] = {
    "devices=4",
    "devices=4,nodes=2,replicas=4,dispatch=balanced,per_device=1",
    "devices=8,nodes=2,replicas=8,dispatch=round_robin,source=token,latency_us=5",
    "devices=2,replicas=6,policy=round_robin,dispatch=local",
    "devices=8,nodes=4,replicas=8,dispatch=nearest,source=token",
};

START_TEST(same_bits_for_threads_and_chunks)
{
    check_invariant(fixed_variants[_i]);
}
END_TEST

START_TEST(load_statistics_same_bits_for_threads_and_chunks)
{
    const rs_placement_policy *p = load_policy();
    if (!p) {
        fprintf(stderr, "placement_metric_runs: no policy planned from loads is registered; skipped\n");
        return;
    }
    char params[4][256];
    snprintf(params[0], sizeof params[0], "devices=4,policy=%s,stats=history,rebalance_every=80,window=120", p->name);
    snprintf(params[1], sizeof params[1], "devices=4,policy=%s,replicas=4,stats=split,train_tokens=80", p->name);
    snprintf(params[2], sizeof params[2],
             "devices=4,nodes=2,policy=%s,replicas=4,stats=history,rebalance_every=40,dispatch=balanced", p->name);
    /* stats=oracle: the engine counts the run first */
    snprintf(params[3], sizeof params[3], "devices=4,nodes=2,policy=%s,replicas=4", p->name);
    for (int i = 0; i < 4; i++)
        check_invariant(params[i]);
}
END_TEST

/* ------------------------------------------------------------ statistics by hand */

enum { HT = 64, HL = 3, HE = 8, HK = 2, HB = 4 };
static const int hand_lengths[] = {13, 20, 7, 24};

/* Kept assignments per (layer, expert) of tokens [from, to), as a CSV file. */
static const char *loads_file(const int32_t *ids, int from, int to, double *loads)
{
    static int n;
    memset(loads, 0, sizeof(double) * HL * HE);
    for (int t = from < 0 ? 0 : from; t < to; t++)
        for (int l = 0; l < HL; l++)
            for (int j = 0; j < HK; j++) {
                const int32_t e = ids[((size_t)t * HL + l) * HK + j];
                if (e >= 0)
                    loads[l * HE + e] += 1;
            }
    char name[64];
    snprintf(name, sizeof name, "loads-%d.csv", n++);
    const char *path = rs_test_path(name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    for (int l = 0; l < HL; l++)
        for (int e = 0; e < HE; e++)
            fprintf(f, "%.0f%s", loads[l * HE + e], e + 1 < HE ? "," : "\n");
    fclose(f);
    return path;
}

/* Rows of x and y equal bit for bit, except the outputs in `skip` (names). */
static void same_values(void *x, void *y, const char *skip, const char *what)
{
    const rs_metric_type *t = rs_test_placement_family();
    rs_metric_sink a = {0}, b = {0};
    t->finalize(x, &a);
    t->finalize(y, &b);
    ck_assert_uint_eq(a.n, b.n);
    for (size_t i = 0; i < a.n; i++) {
        const char *name = t->outputs[a.rows[i].output].name;
        if (skip && strstr(skip, name))
            continue;
        ck_assert_msg(memcmp(&a.rows[i].value, &b.rows[i].value, sizeof(double)) == 0 ||
                          (isnan(a.rows[i].value) && isnan(b.rows[i].value)),
                      "%s: %s layer %d: %.17g != %.17g", what, name, a.rows[i].layer, a.rows[i].value,
                      b.rows[i].value);
    }
    rs_metric_sink_free(&a);
    rs_metric_sink_free(&b);
}

/* split: planned on tokens [0, 16), measured on [16, 64): the same as a
 * placement planned from a loads file of those 16 tokens, measured on the
 * tokens from 16 on (source=token and 16 = 4 batches keep every token's
 * device and batch). */
START_TEST(split_equals_oracle_on_the_rest)
{
    const rs_placement_policy *p = load_policy();
    if (!p) {
        fprintf(stderr, "placement_metric_runs: no policy planned from loads is registered; skipped\n");
        return;
    }
    rs_test_placement_shape s = {.T = HT, .L = HL, .E = HE, .K = HK, .B = HB, .seq_lengths = hand_lengths,
                                 .num_seq = 4};
    int32_t *ids = rs_test_placement_random_ids(HT, HL, HE, HK, 5);
    double loads[HL * HE];
    char split[256], oracle[1400];
    snprintf(split, sizeof split, "devices=4,replicas=4,source=token,policy=%s,stats=split,train_tokens=16", p->name);
    snprintf(oracle, sizeof oracle, "devices=4,replicas=4,source=token,policy=%s,loads=%s", p->name,
             loads_file(ids, 0, 16, loads));
    void *a = rs_test_placement_make(&s, split), *b = rs_test_placement_make(&s, oracle);
    rs_test_placement_feed_chunks(&s, a, ids, 0, HT, 9);
    rs_test_placement_feed(&s, b, ids, 16, HT - 16);
    same_values(a, b, NULL, "split versus oracle on the rest");
    rs_test_placement_family()->destroy(a);
    rs_test_placement_family()->destroy(b);
    free(ids);
}
END_TEST

/* stats=oracle plans from the run's counts (setup->counts, the engine's
 * first pass) as from a loads file holding the same numbers. */
START_TEST(oracle_counts_equal_a_loads_file)
{
    const rs_placement_policy *p = load_policy();
    if (!p) {
        fprintf(stderr, "placement_metric_runs: no policy planned from loads is registered; skipped\n");
        return;
    }
    int32_t *ids = rs_test_placement_random_ids(HT, HL, HE, HK, 23);
    double loads[HL * HE];
    int64_t counted[HL * HE];
    const char *file = loads_file(ids, 0, HT, loads);
    for (int i = 0; i < HL * HE; i++)
        counted[i] = (int64_t)loads[i];
    rs_run_counts counts = {.L = HL, .E = HE, .loads = counted};
    rs_test_placement_shape s = {.T = HT, .L = HL, .E = HE, .K = HK, .B = HB, .seq_lengths = hand_lengths,
                                 .num_seq = 4, .counts = &counts};
    char params[256], with_file[1400];
    snprintf(params, sizeof params, "devices=4,replicas=4,nodes=2,policy=%s", p->name);
    snprintf(with_file, sizeof with_file, "%s,loads=%s", params, file);
    void *a = rs_test_placement_make(&s, params), *b = rs_test_placement_make(&s, with_file);
    rs_test_placement_feed(&s, a, ids, 0, HT);
    rs_test_placement_feed(&s, b, ids, 0, HT);
    same_values(a, b, NULL, "oracle from counts versus a loads file");
    rs_test_placement_family()->destroy(a);
    rs_test_placement_family()->destroy(b);
    /* the counts differ from contiguous's placement: the plan used them */
    rs_test_placement_shape plain = s;
    plain.counts = NULL;
    void *c = rs_test_placement_make(&plain, "devices=4,replicas=4,nodes=2");
    rs_test_placement_feed(&plain, c, ids, 0, HT);
    rs_metric_sink x = {0}, y = {0};
    a = rs_test_placement_make(&s, params);
    rs_test_placement_feed(&s, a, ids, 0, HT);
    rs_test_placement_family()->finalize(a, &x);
    rs_test_placement_family()->finalize(c, &y);
    ck_assert(rs_metric_sink_value(&x, 0, 0, NULL) != rs_metric_sink_value(&y, 0, 0, NULL));
    rs_metric_sink_free(&x);
    rs_metric_sink_free(&y);
    rs_test_placement_family()->destroy(a);
    rs_test_placement_family()->destroy(c);
    free(ids);
}
END_TEST

/* history, rebalancing every 16 tokens from the last `window` tokens: the
 * first 16 tokens under contiguous, then each period under the policy's
 * plan from the window before it; the periods' accumulators merged equal
 * the history run, and expert_moves counts the slots between plans. */
static void check_history(const rs_placement_policy *p, int window)
{
    const rs_metric_type *t = rs_test_placement_family();
    rs_test_placement_shape s = {.T = HT, .L = HL, .E = HE, .K = HK, .B = HB, .seq_lengths = hand_lengths,
                                 .num_seq = 4};
    int32_t *ids = rs_test_placement_random_ids(HT, HL, HE, HK, 17);
    char history[256];
    snprintf(history, sizeof history,
             "devices=4,replicas=4,source=token,dispatch=round_robin,policy=%s,stats=history,rebalance_every=16,"
             "window=%d",
             p->name, window);
    void *h = rs_test_placement_make(&s, history);
    rs_test_placement_feed_chunks(&s, h, ids, 0, HT, 11);
    void *merged = rs_test_placement_make(&s, "devices=4,replicas=4,source=token,dispatch=round_robin");
    rs_test_placement_feed(&s, merged, ids, 0, 16);
    rs_placement_options options = {.layout = {.E = HE, .S = HE + 4, .G = 4, .N = 1, .groups = 1}};
    rs_placement_stats none = {.L = HL, .E = HE};
    rs_error err = {{0}};
    rs_placement *before = rs_placement_plan(rs_placement_policy_find("contiguous"), &none, &options, &err);
    ck_assert_msg(before != NULL, "%s", err.msg);
    double moves[HL] = {0};
    for (int from = 16; from < HT; from += 16) {
        double loads[HL * HE];
        char oracle[1400];
        const char *file = loads_file(ids, from - window, from, loads);
        snprintf(oracle, sizeof oracle, "devices=4,replicas=4,source=token,dispatch=round_robin,policy=%s,loads=%s",
                 p->name, file);
        void *part = rs_test_placement_make(&s, oracle);
        rs_test_placement_feed(&s, part, ids, from, 16);
        ck_assert_msg(t->merge(merged, part, &err) == 0, "%s", err.msg);
        t->destroy(part);
        rs_placement_stats stats = {.L = HL, .E = HE, .loads = loads};
        rs_placement *plan = rs_placement_plan(p, &stats, &options, &err);
        ck_assert_msg(plan != NULL, "%s", err.msg);
        for (int l = 0; l < HL; l++)
            for (int x = 0; x < HE + 4; x++)
                moves[l] += plan->phy2log[l * (HE + 4) + x] != before->phy2log[l * (HE + 4) + x];
        rs_placement_free(before);
        before = plan;
    }
    rs_placement_free(before);
    char what[64];
    snprintf(what, sizeof what, "history, window %d", window);
    same_values(h, merged, "expert_moves migration_bytes", what);
    rs_metric_sink sink = {0};
    t->finalize(h, &sink);
    double total = 0;
    for (int l = 0; l < HL; l++) {
        ck_assert_double_eq(rs_metric_sink_value(&sink, 7, l, NULL), moves[l]);
        ck_assert_double_eq(rs_metric_sink_value(&sink, 8, l, NULL), moves[l] * 44040192.0);
        total += moves[l];
    }
    ck_assert_msg(total > 0, "%s: no replan moved an expert; the case tests nothing", what);
    rs_metric_sink_free(&sink);
    t->destroy(h);
    t->destroy(merged);
    free(ids);
}

START_TEST(history_equals_plans_from_each_window)
{
    const rs_placement_policy *p = load_policy();
    if (!p) {
        fprintf(stderr, "placement_metric_runs: no policy planned from loads is registered; skipped\n");
        return;
    }
    check_history(p, 16);
    check_history(p, 8);
    check_history(p, 32);
}
END_TEST

START_TEST(load_statistics_resume_bit_for_bit)
{
    const rs_placement_policy *p = load_policy();
    if (!p) {
        fprintf(stderr, "placement_metric_runs: no policy planned from loads is registered; skipped\n");
        return;
    }
    char params[256];
    snprintf(params, sizeof params, "devices=4,replicas=4,policy=%s,stats=history,rebalance_every=12,window=18",
             p->name);
    rs_test_placement_check_resume(params, 6);
    snprintf(params, sizeof params, "devices=4,replicas=4,policy=%s,stats=split,train_tokens=24,dispatch=balanced",
             p->name);
    rs_test_placement_check_resume(params, 6);
}
END_TEST

/* Order-dependent modes cannot bootstrap: the engine refuses before routing. */
START_TEST(bootstrap_refuses_balanced_dispatch)
{
    rs_router_spec router;
    rs_error err = {{0}};
    ck_assert_int_eq(rs_router_spec_parse(&router, "topk:k=2", &err), 0);
    rs_metric_spec metric;
    ck_assert_int_eq(rs_metric_spec_init(&metric, "placement", "", &err), 0);
    ck_assert_int_eq(rs_params_parse_list(&metric.params, "devices=4,replicas=4,dispatch=balanced", &err), 0);
    rs_trace *tr = NULL;
    ck_assert_int_eq(rs_trace_open(&tr, trace_path(), &err), 0);
    rs_results res;
    rs_results_init(&res);
    rs_engine_options opt = {.threads = 1, .batch_tokens = BATCH, .bootstrap = 20, .bootstrap_seed = 1};
    rs_engine *e = NULL;
    ck_assert_int_ne(rs_engine_create(&e, tr, &router, 1, &metric, 1, &opt, &res, &err), 0);
    ck_assert_msg(strstr(err.msg, "dispatch=balanced") && strstr(err.msg, "bootstrap"), "%s", err.msg);
    rs_results_free(&res);
    rs_trace_close(tr);
    rs_metric_spec_free(&metric);
    rs_router_spec_free(&router);
}
END_TEST

Suite *placement_metric_runs_suite(void)
{
    Suite *s = suite_create("placement_metric_runs");
    TCase *tc = tcase_create("placement_metric_runs");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, same_bits_for_threads_and_chunks, 0, sizeof fixed_variants / sizeof fixed_variants[0]);
    tcase_add_test(tc, load_statistics_same_bits_for_threads_and_chunks);
    tcase_add_test(tc, split_equals_oracle_on_the_rest);
    tcase_add_test(tc, oracle_counts_equal_a_loads_file);
    tcase_add_test(tc, history_equals_plans_from_each_window);
    tcase_add_test(tc, load_statistics_resume_bit_for_bit);
    tcase_add_test(tc, bootstrap_refuses_balanced_dispatch);
    suite_add_tcase(s, tc);
    return s;
}
