/* The counting pass (rs_engine_count_run) and what families asking for it
 * with needs_counts get in setup->counts: top-2 loads and layer-to-layer
 * transitions counted by hand from the logits, the same for any thread
 * count and chunk size; zeros when the engine is only measured. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "routesim/metric.h"
#include "sim/engine/engine.h"
#include "tests/test_util.h"

enum { T = 200, L = 3, E = 6, S = 4 };
static const int64_t offsets[S + 1] = {0, 50, 51, 120, 200};

static float *logits;

static const char *trace_path(void)
{
    static char path[1024];
    if (path[0])
        return path;
    snprintf(path, sizeof path, "%s", rs_test_path("counts.h5"));
    logits = rs_test_random_logits(T, L, E, 5);
    rs_test_trace tt = {.T = T, .L = L, .E = E, .num_seq = S, .offsets = offsets, .logits = logits,
                        .scoring = "softmax", .top_k = 2, .norm_topk = 1};
    rs_test_write_trace(path, &tt);
    return path;
}

/* The two largest logits of token t at layer l (random floats: no ties). */
static void top2(int t, int l, int out[2])
{
    const float *z = logits + ((size_t)t * L + l) * E;
    out[0] = 0;
    for (int e = 1; e < E; e++)
        if (z[e] > z[out[0]])
            out[0] = e;
    out[1] = out[0] == 0 ? 1 : 0;
    for (int e = 0; e < E; e++)
        if (e != out[0] && z[e] > z[out[1]])
            out[1] = e;
}

static void expected(int64_t *loads, int64_t *transitions)
{
    memset(loads, 0, sizeof(int64_t) * L * E);
    memset(transitions, 0, sizeof(int64_t) * (L - 1) * E * E);
    for (int t = 0; t < T; t++) {
        int ids[L][2];
        for (int l = 0; l < L; l++) {
            top2(t, l, ids[l]);
            loads[l * E + ids[l][0]]++;
            loads[l * E + ids[l][1]]++;
        }
        for (int l = 0; l + 1 < L; l++)
            for (int x = 0; x < 2; x++)
                for (int y = 0; y < 2; y++)
                    transitions[(l * E + ids[l][x]) * E + ids[l + 1][y]]++;
    }
}

static void count(int threads, int chunk, unsigned what, rs_counted_run *out)
{
    rs_error err = {{0}};
    rs_router_spec spec;
    ck_assert_msg(rs_router_spec_parse(&spec, "topk:k=2", &err) == 0, "%s", err.msg);
    rs_trace *tr = NULL;
    ck_assert_msg(rs_trace_open(&tr, trace_path(), &err) == 0, "%s", err.msg);
    rs_engine_options opt = {.threads = threads, .chunk_tokens = chunk, .batch_tokens = 16};
    ck_assert_msg(rs_engine_count_run(tr, &spec, &opt, what, out, &err) == 0, "%s", err.msg);
    rs_trace_close(tr);
    rs_router_spec_free(&spec);
}

START_TEST(counts_match_hand_count)
{
    static const int runs[][2] = {{1, 1000}, {2, 7}, {3, 1}, {2, 0}};
    int64_t loads[L * E], transitions[(L - 1) * E * E];
    trace_path();
    expected(loads, transitions);
    for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
        rs_counted_run c;
        count(runs[r][0], runs[r][1], RS_COUNTS_LOADS | RS_COUNTS_TRANSITIONS, &c);
        ck_assert_int_eq(c.counts.L, L);
        ck_assert_int_eq(c.counts.E, E);
        ck_assert_msg(memcmp(c.counts.loads, loads, sizeof loads) == 0, "loads differ (threads %d, chunk %d)",
                      runs[r][0], runs[r][1]);
        ck_assert_msg(memcmp(c.counts.transitions, transitions, sizeof transitions) == 0,
                      "transitions differ (threads %d, chunk %d)", runs[r][0], runs[r][1]);
        rs_counted_run_free(&c);
    }
    rs_counted_run c;
    count(2, 13, RS_COUNTS_LOADS, &c);
    ck_assert_ptr_null(c.counts.transitions);
    ck_assert_msg(memcmp(c.counts.loads, loads, sizeof loads) == 0, "loads alone differ");
    rs_counted_run_free(&c);
}
END_TEST

/* A family that asks for the run's loads and reports their total per layer. */
typedef struct probe_acc {
    int64_t totals[L];
    int saw_transitions;
} probe_acc;

static const rs_metric_output probe_outputs[] = {{"total", "kept assignments of the run", 0, RS_AGG_SUM, .label = NULL}};

static unsigned probe_needs(const rs_params *params)
{
    (void)params;
    return RS_COUNTS_LOADS;
}

static int probe_create(void **out, const rs_params *params, const rs_metric_setup *setup, rs_error *err)
{
    (void)params;
    RS_CHECK(setup->counts && setup->counts->L == L && setup->counts->E == E, err, "no counts");
    probe_acc *a = calloc(1, sizeof *a);
    RS_CHECK(a, err, "out of memory");
    for (int l = 0; l < L; l++)
        for (int e = 0; e < E; e++)
            a->totals[l] += setup->counts->loads[l * E + e];
    a->saw_transitions = setup->counts->transitions != NULL;
    *out = a;
    return 0;
}

static void probe_update(void *acc, const rs_chunk *c, int layer, const rs_decisions *dec, const rs_metric_ref *ref)
{
    (void)acc, (void)c, (void)layer, (void)dec, (void)ref;
}

static int probe_merge(void *acc, const void *other, rs_error *err)
{
    (void)acc, (void)other, (void)err;
    return 0;
}

static void probe_finalize(const void *acc, rs_metric_sink *sink)
{
    const probe_acc *a = acc;
    for (int l = 0; l < L; l++)
        rs_metric_emit(sink, 0, l, NULL, (double)a->totals[l]);
}

static const rs_metric_type probe_type = {
    .name = "counts_probe",
    .summary = "test",
    .outputs = probe_outputs,
    .num_outputs = 1,
    .create = probe_create,
    .update_layer = probe_update,
    .merge = probe_merge,
    .finalize = probe_finalize,
    .destroy = free,
    .needs_counts = probe_needs,
};

static double probe_total(int measure_only, int layer)
{
    rs_error err = {{0}};
    rs_router_spec spec;
    ck_assert_msg(rs_router_spec_parse(&spec, "topk:k=2", &err) == 0, "%s", err.msg);
    rs_metric_spec metric = {.type = &probe_type};
    ck_assert(rs_params_init(&metric.params, NULL, 0, "probe", &err) == 0);
    rs_trace *tr = NULL;
    ck_assert_msg(rs_trace_open(&tr, trace_path(), &err) == 0, "%s", err.msg);
    rs_engine_options opt = {.threads = 2, .batch_tokens = 16, .measure_only = measure_only};
    rs_results res;
    rs_results_init(&res);
    rs_engine *e = NULL;
    ck_assert_msg(rs_engine_create(&e, tr, &spec, 1, &metric, 1, &opt, &res, &err) == 0, "%s", err.msg);
    ck_assert_msg(rs_engine_run(e, NULL, NULL, &err) == 0, "%s", err.msg);
    double total = -1;
    for (size_t i = 0; i < res.num_rows; i++)
        if (res.rows[i].layer == layer)
            total = res.rows[i].value;
    rs_engine_destroy(e);
    rs_results_free(&res);
    rs_trace_close(tr);
    rs_params_free(&metric.params);
    rs_router_spec_free(&spec);
    return total;
}

START_TEST(families_get_the_counts_they_ask_for)
{
    for (int l = 0; l < L; l++)
        ck_assert_double_eq(probe_total(0, l), 2.0 * T); /* top-2 of every token */
    ck_assert_double_eq(probe_total(1, 0), 0.0);           /* measured only: zeros, no pass */
}
END_TEST

Suite *engine_counts_suite(void)
{
    Suite *s = suite_create("engine_counts");
    TCase *tc = tcase_create("counts");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, counts_match_hand_count);
    tcase_add_test(tc, families_get_the_counts_they_ask_for);
    suite_add_tcase(s, tc);
    return s;
}
