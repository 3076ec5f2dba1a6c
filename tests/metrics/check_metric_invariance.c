/* Every registered metric family gives bit-identical results whatever the
 * thread count, chunk size and layer bands (chunks grown to hold whole
 * sequences for the capacity stage, routed a few layers at a time): on
 * routers with and without a capacity stage, against a reference run on the
 * same trace and on a paired trace, with and without bootstrap. New
 * families are covered automatically (with default parameters). */
#include <check.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "routesim/metric.h"
#include "sim/engine/engine.h"
#include "tests/test_util.h"

enum { T = 300, L = 3, E = 16, S = 6, BATCH = 40 };
static const int64_t offsets[S + 1] = {0, 30, 31, 100, 180, 257, 300};

/* The trace, with token ids and sequence domains; paired = its logits
 * perturbed (another checkpoint of the same model on the same tokens). */
static const char *trace_path(int paired)
{
    static char path[2][1024];
    if (path[paired][0])
        return path[paired];
    snprintf(path[paired], sizeof path[paired], "%s", rs_test_path(paired ? "paired.h5" : "metrics.h5"));
    float *z = rs_test_random_logits(T, L, E, 23);
    if (paired) {
        float *noise = rs_test_random_logits(T, L, E, 24);
        for (int i = 0; i < T * L * E; i++)
            z[i] += 0.5f * noise[i];
        free(noise);
    }
    int32_t *ids = malloc((size_t)T * sizeof *ids);
    for (int t = 0; t < T; t++)
        ids[t] = (t * 7) % 13; /* about 23 occurrences of each id */
    rs_test_trace tt = {.T = T, .L = L, .E = E, .num_seq = S, .offsets = offsets, .logits = z, .token_ids = ids,
                        .scoring = "softmax", .top_k = 2, .norm_topk = 1};
    rs_test_write_trace(path[paired], &tt);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(path[paired], H5F_ACC_RDWR, H5P_DEFAULT);
    hsize_t dims[1] = {S};
    const int32_t domain[S] = {0, 1, 2, 0, 1, 0};
    hid_t space = H5Screate_simple(1, dims, NULL);
    hid_t d = H5Dcreate2(f, "/sequences/domain", H5T_STD_I32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_ge(d, 0);
    H5Dwrite(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, domain);
    H5Dclose(d);
    H5Sclose(space);
    H5Fclose(f);
    free(z);
    free(ids);
    return path[paired];
}

static void parse_router(rs_router_spec *spec, const char *text)
{
    rs_error err = {{0}};
    ck_assert_msg(rs_router_spec_parse(spec, text, &err) == 0, "%s", err.msg);
}

/* Runs every metric family on two routers; returns the results. */
static void run(const rs_metric_type *family, int paired, int bootstrap, int threads, int chunk, int band,
                rs_results *res)
{
    rs_router_spec routers[2], reference;
    parse_router(&routers[0], "topk:k=2");
    parse_router(&routers[1], "topk:k=2,capacity_factor=1,group=sequence");
    parse_router(&reference, "topk:k=3");
    rs_metric_spec metric;
    rs_error err = {{0}};
    ck_assert_msg(rs_metric_spec_init(&metric, family->name, "", &err) == 0, "%s", err.msg);
    rs_trace *tr = NULL, *ref_tr = NULL;
    ck_assert_msg(rs_trace_open(&tr, trace_path(0), &err) == 0, "%s", err.msg);
    if (paired)
        ck_assert_msg(rs_trace_open(&ref_tr, trace_path(1), &err) == 0, "%s", err.msg);
    rs_results_init(res);
    rs_engine_options opt = {.threads = threads,
                             .chunk_tokens = chunk,
                             .batch_tokens = BATCH,
                             .progress = 0,
                             .reference = &reference,
                             .reference_trace = ref_tr,
                             .bootstrap = bootstrap,
                             .bootstrap_seed = 3,
                             .band_layers = band};
    rs_engine *e = NULL;
    ck_assert_msg(rs_engine_create(&e, tr, routers, 2, &metric, 1, &opt, res, &err) == 0, "%s: %s", family->name,
                  err.msg);
    rs_engine_stats stats = {0};
    ck_assert_msg(rs_engine_run(e, NULL, &stats, &err) == 0, "%s: %s", family->name, err.msg);
    /* sequences of up to 80 tokens outgrow chunks of 1 and 7 */
    ck_assert_int_eq(stats.banded_chunks > 0, band > 0 && chunk < 80);
    rs_engine_destroy(e);
    rs_trace_close(tr);
    rs_trace_close(ref_tr);
    rs_metric_spec_free(&metric);
    rs_router_spec_free(&routers[0]);
    rs_router_spec_free(&routers[1]);
    rs_router_spec_free(&reference);
}

static void check_invariant(const rs_metric_type *family, int paired, int bootstrap)
{
    static const int runs[][3] = {{2, 1, 0}, {1, 7, 0}, {2, 50, 0}, {3, 0, 0}, {2, 7, 1}, {3, 1, 2}};
    rs_results want;
    run(family, paired, bootstrap, 1, 1000, 0, &want);
    ck_assert_msg(want.num_rows > 0, "%s: no results", family->name);
    for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
        rs_results got;
        run(family, paired, bootstrap, runs[r][0], runs[r][1], runs[r][2], &got);
        ck_assert_uint_eq(got.num_rows, want.num_rows);
        for (size_t i = 0; i < want.num_rows; i++) {
            const rs_result_row *a = &want.rows[i], *b = &got.rows[i];
            ck_assert_str_eq(a->metric, b->metric);
            ck_assert_str_eq(a->key, b->key);
            ck_assert_int_eq(a->layer, b->layer);
            ck_assert_msg(memcmp(&a->value, &b->value, sizeof a->value) == 0 || (isnan(a->value) && isnan(b->value)),
                          "%s %s layer %d: %.17g with 1 thread, %.17g with %d threads, chunk %d, bands of %d layers",
                          a->metric, a->key, a->layer, a->value, b->value, runs[r][0], runs[r][1], runs[r][2]);
        }
        rs_results_free(&got);
    }
    rs_results_free(&want);
}

START_TEST(every_metric_is_invariant)
{
    ck_assert_int_lt(_i, rs_metric_count());
    check_invariant(rs_metric_at(_i), 0, 0);
}
END_TEST

/* With bootstrap: the intervals do not depend on threads or chunks either,
 * and the point estimates are the run's without bootstrap (blocks merge). */
START_TEST(bootstrap_is_invariant_and_keeps_point_estimates)
{
    const rs_metric_type *family = rs_metric_at(_i);
    check_invariant(family, 0, 40);
    rs_results plain, boot;
    run(family, 0, 0, 2, 7, 0, &plain);
    run(family, 0, 40, 2, 7, 0, &boot);
    size_t j = 0, intervals = 0;
    for (size_t i = 0; i < boot.num_rows; i++) {
        const rs_result_row *b = &boot.rows[i];
        if (strstr(b->key, "stat=ci_")) {
            intervals++;
            continue;
        }
        ck_assert_uint_lt(j, plain.num_rows);
        const rs_result_row *a = &plain.rows[j++];
        ck_assert_str_eq(a->metric, b->metric);
        ck_assert_int_eq(a->layer, b->layer);
        ck_assert_msg(memcmp(&a->value, &b->value, sizeof a->value) == 0 || (isnan(a->value) && isnan(b->value)),
                      "%s layer %d: %.17g without bootstrap, %.17g with", a->metric, a->layer, a->value, b->value);
    }
    ck_assert_uint_eq(j, plain.num_rows);
    ck_assert_uint_eq(intervals, 2 * plain.num_rows);
    rs_results_free(&plain);
    rs_results_free(&boot);
}
END_TEST

START_TEST(reference_metrics_are_invariant_on_a_paired_trace)
{
    for (int m = 0; m < rs_metric_count(); m++)
        if (rs_metric_at(m)->flags & RS_METRIC_REFERENCE)
            check_invariant(rs_metric_at(m), 1, 0);
}
END_TEST

Suite *metric_invariance_suite(void)
{
    Suite *s = suite_create("metric_invariance");
    TCase *tc = tcase_create("metric_invariance");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, every_metric_is_invariant, 0, rs_metric_count());
    tcase_add_test(tc, reference_metrics_are_invariant_on_a_paired_trace);
    tcase_add_loop_test(tc, bootstrap_is_invariant_and_keeps_point_estimates, 0, rs_metric_count());
    suite_add_tcase(s, tc);
    return s;
}
