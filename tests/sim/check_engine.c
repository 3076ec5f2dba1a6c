/* The engine: identical results for any thread count, chunk size and
 * memory budget (layer bands), non-finite logits, and trace/router
 * mismatches. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sim/engine/engine.h"
#include "tests/test_util.h"
#include "workloads/trace/half.h"

enum { T = 777, L = 3, E = 8 };
static const int64_t offsets[] = {0, 100, 101, 350, 600, 777};

static const char *write_trace(const char *name, float *z)
{
    const char *path = rs_test_path(name);
    int32_t *ids = malloc(T * sizeof *ids);
    for (int t = 0; t < T; t++)
        ids[t] = (t * 7) % 50;
    rs_test_trace tt = {.T = T, .L = L, .E = E, .num_seq = 5, .offsets = offsets, .logits = z, .token_ids = ids};
    rs_test_write_trace(path, &tt);
    free(ids);
    return path;
}

typedef struct spec_set {
    rs_router_spec routers[3];
    rs_metric_spec metrics[2];
} spec_set;

static void make_specs(spec_set *s)
{
    rs_error err = {{0}};
    const char *routers[] = {"topk:k=2", "topk:k=3,renorm=0", "random:k=2,seed=3"};
    for (int i = 0; i < 3; i++)
        ck_assert_msg(rs_router_spec_parse(&s->routers[i], routers[i], &err) == 0, "%s", err.msg);
    ck_assert_int_eq(rs_metric_spec_init(&s->metrics[0], "load", "", &err), 0);
    ck_assert_int_eq(rs_metric_spec_init(&s->metrics[1], "entropy", "", &err), 0);
}

static void free_specs(spec_set *s)
{
    for (int i = 0; i < 3; i++)
        rs_router_spec_free(&s->routers[i]);
    for (int i = 0; i < 2; i++)
        rs_metric_spec_free(&s->metrics[i]);
}

static int run(const char *path, const spec_set *s, int threads, int chunk, int skip, rs_results *res,
               rs_engine_stats *stats, rs_error *err)
{
    rs_trace *tr = NULL;
    ck_assert_msg(rs_trace_open(&tr, path, err) == 0, "%s", err->msg);
    rs_engine_options opt = {.threads = threads, .chunk_tokens = chunk, .batch_tokens = 64, .skip_nonfinite = skip,
                             .progress = 0};
    rs_engine *e = NULL;
    int rc = rs_engine_create(&e, tr, s->routers, 3, s->metrics, 2, &opt, res, err);
    if (rc == 0)
        rc = rs_engine_run(e, NULL, stats, err);
    rs_engine_destroy(e);
    rs_trace_close(tr);
    return rc;
}

START_TEST(identical_for_any_threads_and_chunks)
{
    float *z = rs_test_random_logits(T, L, E, 21);
    const char *path = write_trace("inv.h5", z);
    spec_set s;
    make_specs(&s);
    rs_results ref;
    rs_results_init(&ref);
    rs_error err = {{0}};
    rs_engine_stats stats;
    ck_assert_msg(run(path, &s, 1, 0, 0, &ref, &stats, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(stats.chunks, 1);
    /* 3 routers x (8 load outputs without capacity + 5 entropy) x (L + 1) rows */
    ck_assert_uint_eq(ref.num_rows, 3 * 13 * (L + 1));
    const int threads[] = {1, 2, 3, 4};
    const int chunks[] = {1, 7, 64, 100, 776};
    for (size_t ti = 0; ti < sizeof threads / sizeof threads[0]; ti++) {
        for (size_t ci = 0; ci < sizeof chunks / sizeof chunks[0]; ci++) {
            rs_results res;
            rs_results_init(&res);
            ck_assert_msg(run(path, &s, threads[ti], chunks[ci], 0, &res, &stats, &err) == 0, "%s", err.msg);
            ck_assert_int_eq(stats.chunk_tokens, chunks[ci]);
            ck_assert_uint_eq(res.num_rows, ref.num_rows);
            for (size_t i = 0; i < ref.num_rows; i++) {
                ck_assert_str_eq(res.rows[i].metric, ref.rows[i].metric);
                ck_assert_int_eq(res.rows[i].layer, ref.rows[i].layer);
                ck_assert_msg(memcmp(&res.rows[i].value, &ref.rows[i].value, sizeof(double)) == 0,
                              "%s layer %d: %.17g vs %.17g with %d threads, chunk %d", ref.rows[i].metric,
                              ref.rows[i].layer, res.rows[i].value, ref.rows[i].value, threads[ti], chunks[ci]);
            }
            rs_results_free(&res);
        }
    }
    rs_results_free(&ref);
    free_specs(&s);
    free(z);
}
END_TEST

START_TEST(memory_budget_bounds_the_chunk)
{
    float *z = rs_test_random_logits(T, L, E, 2);
    const char *path = write_trace("budget.h5", z);
    spec_set s;
    make_specs(&s);
    rs_trace *tr = NULL;
    rs_error err = {{0}};
    ck_assert_int_eq(rs_trace_open(&tr, path, &err), 0);
    rs_results res;
    rs_results_init(&res);
    /* per token: 2 read sets of (3*8*4 logits + 17 misc) + 3*(2+3+2)*8 decisions + 4*8 group indices
     * + 1 thread x (8*4 + 4*8) softmax scratch = 490 bytes */
    rs_engine_options opt = {.threads = 1, .memory_budget = 20 << 10, .batch_tokens = 64, .progress = 0};
    rs_engine *e = NULL;
    ck_assert_msg(rs_engine_create(&e, tr, s.routers, 3, s.metrics, 2, &opt, &res, &err) == 0, "%s", err.msg);
    rs_engine_stats stats;
    ck_assert_int_eq(rs_engine_run(e, NULL, &stats, &err), 0);
    ck_assert_int_eq(stats.chunk_tokens, (20 << 10) / 490);
    ck_assert_int_eq(stats.chunks, (T + stats.chunk_tokens - 1) / stats.chunk_tokens);
    rs_engine_destroy(e);
    rs_trace_close(tr);
    rs_results_free(&res);
    free_specs(&s);
    free(z);
}
END_TEST

static double find(const rs_results *r, int run, const char *metric, int layer)
{
    for (size_t i = 0; i < r->num_rows; i++)
        if (r->rows[i].run == run && strcmp(r->rows[i].metric, metric) == 0 && r->rows[i].layer == layer)
            return r->rows[i].value;
    ck_abort_msg("no row %s", metric);
    return NAN;
}

START_TEST(nonfinite_logits_fail_or_skip)
{
    float *z = rs_test_random_logits(T, L, E, 4);
    z[(413 * L + 1) * E + 5] = NAN;
    z[(500 * L + 2) * E + 0] = INFINITY;
    const char *path = write_trace("nan.h5", z);
    spec_set s;
    make_specs(&s);
    rs_results res;
    rs_results_init(&res);
    rs_error err = {{0}};
    rs_engine_stats stats;
    ck_assert_int_eq(run(path, &s, 2, 50, 0, &res, &stats, &err), -1);
    ck_assert_msg(strstr(err.msg, "nan.h5: /router/logits: NaN value at token 413, layer 1, expert 5") != NULL, "%s",
                  err.msg);
    rs_results_free(&res);
    rs_results_init(&res);
    ck_assert_msg(run(path, &s, 2, 50, 1, &res, &stats, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(stats.skipped_tokens, 2);
    /* skipped tokens get no experts: total load at a layer is (T - 2) * k; with
     * loads summing to that, maxvio = max / mean - 1 stays finite */
    ck_assert(isfinite(find(&res, 0, "load.maxvio", 0)));
    ck_assert(isfinite(find(&res, 0, "entropy.router_entropy", -1)));
    rs_results_free(&res);
    free_specs(&s);
    free(z);
}
END_TEST

START_TEST(nonfinite_16_bit_logits_are_found)
{
    /* the widening pass checks the 16-bit words: NaN in float16, inf in bfloat16 */
    for (int v = 0; v < 2; v++) {
        float *z = rs_test_random_logits(T, L, E, 6);
        z[(321 * L + 2) * E + 7] = v ? INFINITY : NAN;
        const char *path = rs_test_path(v ? "inf-bf16.h5" : "nan-f16.h5");
        rs_test_trace tt = {.T = T, .L = L, .E = E, .num_seq = 5, .offsets = offsets, .logits = z,
                            .dtype = v ? RS_LOGITS_BF16 : RS_LOGITS_F16};
        rs_test_write_trace(path, &tt);
        spec_set s;
        make_specs(&s);
        rs_results res;
        rs_results_init(&res);
        rs_error err = {{0}};
        rs_engine_stats stats;
        ck_assert_int_eq(run(path, &s, 2, 64, 0, &res, &stats, &err), -1);
        const char *want = v ? "infinite value at token 321, layer 2, expert 7" : "NaN value at token 321, layer 2, expert 7";
        ck_assert_msg(strstr(err.msg, want) != NULL, "%s", err.msg);
        rs_results_free(&res);
        free_specs(&s);
        free(z);
    }
}
END_TEST

START_TEST(router_needing_logits_on_topk_only_trace)
{
    const char *path = rs_test_path("topk-only.h5");
    int32_t *ids = malloc(T * L * 2 * sizeof *ids);
    for (int i = 0; i < T * L * 2; i++)
        ids[i] = (i * 5) % E;
    rs_test_trace tt = {.T = T, .L = L, .E = E, .K = 2, .num_seq = 5, .offsets = offsets, .topk_ids = ids};
    rs_test_write_trace(path, &tt);
    spec_set s;
    make_specs(&s);
    rs_results res;
    rs_results_init(&res);
    rs_error err = {{0}};
    rs_engine_stats stats;
    ck_assert_int_eq(run(path, &s, 1, 0, 0, &res, &stats, &err), -1);
    ck_assert_msg(strstr(err.msg, "router topk:k=2 needs /router/logits, which") != NULL, "%s", err.msg);
    ck_assert_msg(strstr(err.msg, "use router replay") != NULL, "%s", err.msg);
    rs_results_free(&res);

    /* replay + load works and counts exactly the recorded ids */
    rs_router_spec replay;
    rs_metric_spec load;
    ck_assert_int_eq(rs_router_spec_parse(&replay, "replay", &err), 0);
    ck_assert_int_eq(rs_metric_spec_init(&load, "load", "", &err), 0);
    rs_trace *tr = NULL;
    ck_assert_int_eq(rs_trace_open(&tr, path, &err), 0);
    rs_results_init(&res);
    rs_engine_options opt = {.threads = 2, .chunk_tokens = 33, .batch_tokens = 64, .progress = 0};
    rs_engine *e = NULL;
    ck_assert_msg(rs_engine_create(&e, tr, &replay, 1, &load, 1, &opt, &res, &err) == 0, "%s", err.msg);
    ck_assert_int_eq(rs_engine_run(e, NULL, &stats, &err), 0);
    long loads[E] = {0};
    for (int t = 0; t < T; t++)
        for (int j = 0; j < 2; j++)
            loads[ids[(t * L + 0) * 2 + j]]++;
    long max = 0;
    for (int x = 0; x < E; x++)
        max = loads[x] > max ? loads[x] : max;
    ck_assert_double_eq_tol(find(&res, 0, "load.maxvio", 0), (double)max / (2.0 * T / E) - 1.0, 1e-12);
    rs_engine_destroy(e);
    rs_trace_close(tr);
    rs_results_free(&res);
    rs_router_spec_free(&replay);
    rs_metric_spec_free(&load);
    free_specs(&s);
    free(ids);
}
END_TEST

/* Token groups larger than the budget holds whole: 2 batches of 1024 tokens
 * x 8 layers x 64 experts, 2 MiB of float32 logits each. */
enum { BT = 2048, BL = 8, BE = 64, BATCH = 1024 };
static const int64_t band_offsets[] = {0, 300, 700, 1024, 1500, 1600, 2048};

static const char *write_band_trace(const char *name, float *z, rs_logits_dtype dtype)
{
    const char *path = rs_test_path(name);
    rs_test_trace tt = {.T = BT, .L = BL, .E = BE, .num_seq = 6, .offsets = band_offsets, .logits = z, .dtype = dtype,
                        .scoring = "softmax", .top_k = 2};
    rs_test_write_trace(path, &tt);
    return path;
}

/* Grouped routers, a capacity stage and (cross) a cross-layer metric, with
 * bootstrap over 2 blocks of the 6 sequences (so that the accumulators,
 * affinity's above all, fit the small budgets too), under a memory budget
 * of mib MiB. */
static int run_grouped(const char *path, int cross, int threads, double mib, rs_results *res, rs_engine_stats *stats,
                       rs_error *err)
{
    const char *router_specs[] = {"expert_choice", "sinkhorn:k=2", "topk:k=2,capacity_factor=1", "aux_free_bias:k=2"};
    const char *metric_names[] = {"load", "entropy", "affinity"};
    rs_router_spec routers[4];
    rs_metric_spec metrics[3];
    for (int i = 0; i < 4; i++)
        ck_assert_msg(rs_router_spec_parse(&routers[i], router_specs[i], err) == 0, "%s", err->msg);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(rs_metric_spec_init(&metrics[i], metric_names[i], "", err), 0);
    rs_trace *tr = NULL;
    ck_assert_msg(rs_trace_open(&tr, path, err) == 0, "%s", err->msg);
    rs_results_init(res);
    rs_engine_options opt = {.threads = threads,
                             .memory_budget = (size_t)(mib * (1 << 20)),
                             .batch_tokens = BATCH,
                             .progress = 0,
                             .bootstrap = 30,
                             .bootstrap_blocks = 2,
                             .bootstrap_seed = 5};
    rs_engine *e = NULL;
    int rc = rs_engine_create(&e, tr, routers, 4, metrics, 2 + cross, &opt, res, err);
    if (rc == 0)
        rc = rs_engine_run(e, NULL, stats, err);
    rs_engine_destroy(e);
    rs_trace_close(tr);
    for (int i = 0; i < 4; i++)
        rs_router_spec_free(&routers[i]);
    for (int i = 0; i < 3; i++)
        rs_metric_spec_free(&metrics[i]);
    return rc;
}

static void same_results(const rs_results *a, const rs_results *b, const char *what)
{
    ck_assert_uint_eq(a->num_rows, b->num_rows);
    for (size_t i = 0; i < a->num_rows; i++) {
        ck_assert_str_eq(a->rows[i].metric, b->rows[i].metric);
        ck_assert_str_eq(a->rows[i].key, b->rows[i].key);
        ck_assert_int_eq(a->rows[i].layer, b->rows[i].layer);
        ck_assert_msg(memcmp(&a->rows[i].value, &b->rows[i].value, sizeof(double)) == 0 ||
                          (isnan(a->rows[i].value) && isnan(b->rows[i].value)),
                      "%s: %s %s layer %d: %.17g vs %.17g", what, a->rows[i].metric, a->rows[i].key, a->rows[i].layer,
                      a->rows[i].value, b->rows[i].value);
    }
}

START_TEST(sixteen_bit_logits_route_as_their_float32_values)
{
    /* Work items widen 16-bit logits layer by layer (no router here reads a
     * chunk before routing it); a float32 trace of the same values is read
     * as is. Every result must agree, with skipped tokens (NaN at layer 2,
     * inf at layer 0) whose other layers are routed before the bad one. */
    float *z = rs_test_random_logits(T, L, E, 8);
    z[(321 * L + 2) * E + 7] = NAN;
    z[(500 * L + 0) * E + 3] = INFINITY;
    float *rounded = malloc((size_t)T * L * E * sizeof *rounded);
    for (int i = 0; i < T * L * E; i++)
        rounded[i] = rs_bf16_to_float(rs_float_to_bf16(z[i]));
    const char *wide = rs_test_path("as-f32.h5"), *narrow = rs_test_path("as-bf16.h5");
    rs_test_trace tt = {.T = T, .L = L, .E = E, .num_seq = 5, .offsets = offsets, .logits = rounded};
    rs_test_write_trace(wide, &tt);
    tt.logits = z;
    tt.dtype = RS_LOGITS_BF16;
    rs_test_write_trace(narrow, &tt);
    spec_set s;
    make_specs(&s);
    const int threads[] = {1, 2, 3}, chunks[] = {0, 7, 64};
    for (int ti = 0; ti < 3; ti++) {
        for (int ci = 0; ci < 3; ci++) {
            rs_results a, b;
            rs_results_init(&a);
            rs_results_init(&b);
            rs_error err = {{0}};
            rs_engine_stats stats;
            ck_assert_msg(run(wide, &s, threads[ti], chunks[ci], 1, &a, &stats, &err) == 0, "%s", err.msg);
            ck_assert_int_eq(stats.skipped_tokens, 2);
            ck_assert_msg(run(narrow, &s, threads[ti], chunks[ci], 1, &b, &stats, &err) == 0, "%s", err.msg);
            ck_assert_int_eq(stats.skipped_tokens, 2);
            char what[64];
            snprintf(what, sizeof what, "%d threads, chunk %d", threads[ti], chunks[ci]);
            same_results(&a, &b, what);
            rs_results_free(&a);
            rs_results_free(&b);
        }
    }
    free_specs(&s);
    free(rounded);
    free(z);
}
END_TEST

START_TEST(memory_budgets_give_identical_results)
{
    for (int v = 0; v < 2; v++) {
        float *z = rs_test_random_logits(BT, BL, BE, 31);
        const char *path = write_band_trace(v ? "bands-bf16.h5" : "bands.h5", z, v ? RS_LOGITS_BF16 : RS_LOGITS_F32);
        for (int cross = 0; cross < 2; cross++) {
            rs_results whole, banded;
            rs_engine_stats stats;
            rs_error err = {{0}};
            ck_assert_msg(run_grouped(path, cross, 2, 256, &whole, &stats, &err) == 0, "%s", err.msg);
            ck_assert_int_eq(stats.banded_chunks, 0);
            ck_assert_int_eq(stats.largest_chunk, BATCH);
            /* the smallest budgets that hold a batch a layer at a time (the refusal says how much) */
            const double budgets[] = {cross ? 6 : 1.5, cross ? 8 : 3};
            for (int b = 0; b < 2; b++) {
                for (int threads = 1; threads <= 2; threads++) {
                    ck_assert_msg(run_grouped(path, cross, threads, budgets[b], &banded, &stats, &err) == 0, "%s",
                                  err.msg);
                    /* bfloat16 batches may fit the budget as stored, widened band by band from memory */
                    ck_assert_int_eq(stats.banded_chunks + stats.memory_banded_chunks, 2);
                    ck_assert(v == 1 || stats.memory_banded_chunks == 0);
                    if (stats.banded_chunks > 0)
                        ck_assert_int_lt(stats.band_layers, BL);
                    char what[128];
                    snprintf(what, sizeof what, "%s, %.1f MiB, %d threads", v ? "bfloat16" : "float32", budgets[b],
                             threads);
                    same_results(&whole, &banded, what);
                    rs_results_free(&banded);
                }
            }
            rs_results_free(&whole);
        }
        free(z);
    }
}
END_TEST

START_TEST(groups_that_do_not_fit_are_refused_before_routing)
{
    float *z = rs_test_random_logits(BT, BL, BE, 32);
    const char *path = write_band_trace("refused.h5", z, RS_LOGITS_F32);
    rs_results res;
    rs_engine_stats stats = {0};
    rs_error err = {{0}};
    ck_assert_int_eq(run_grouped(path, 1, 1, 2, &res, &stats, &err), -1);
    ck_assert_msg(strstr(err.msg, "refused.h5: routing needs at least ") != NULL, "%s", err.msg);
    ck_assert_msg(strstr(err.msg, "for a chunk of 1024 tokens (whole batches of batch_tokens=1024) at 8 layers"),
                  "%s", err.msg);
    ck_assert_msg(strstr(err.msg, "above the memory budget of 2 MiB; raise --memory-mb") != NULL, "%s", err.msg);
    ck_assert_uint_eq(res.num_rows, 0);
    rs_results_free(&res);
    free(z);
}
END_TEST

START_TEST(nonfinite_logits_in_bands)
{
    /* the first bad value in token order, whichever band holds it */
    float *z = rs_test_random_logits(BT, BL, BE, 33);
    z[((size_t)1100 * BL + 6) * BE + 9] = NAN;
    z[((size_t)1101 * BL + 0) * BE + 3] = INFINITY;
    z[((size_t)200 * BL + 7) * BE + 0] = INFINITY;
    const char *path = write_band_trace("bands-nan.h5", z, RS_LOGITS_F32);
    rs_results whole, banded;
    rs_engine_stats stats;
    rs_error err = {{0}};
    for (int b = 0; b < 2; b++) {
        ck_assert_int_eq(run_grouped(path, 0, 2, b ? 1.5 : 256, &whole, &stats, &err), -1);
        ck_assert_msg(strstr(err.msg, "bands-nan.h5: /router/logits: infinite value at token 200, layer 7, expert 0"),
                      "%s", err.msg);
        rs_results_free(&whole);
    }
    rs_router_spec spec;
    rs_metric_spec load;
    ck_assert_int_eq(rs_router_spec_parse(&spec, "expert_choice", &err), 0);
    ck_assert_int_eq(rs_metric_spec_init(&load, "load", "", &err), 0);
    rs_results *out[2] = {&whole, &banded};
    for (int b = 0; b < 2; b++) {
        rs_trace *tr = NULL;
        ck_assert_int_eq(rs_trace_open(&tr, path, &err), 0);
        rs_results_init(out[b]);
        rs_engine_options opt = {.threads = 2, .memory_budget = b ? (2 << 20) : (256 << 20), .batch_tokens = BATCH,
                                 .skip_nonfinite = 1, .progress = 0};
        rs_engine *e = NULL;
        ck_assert_msg(rs_engine_create(&e, tr, &spec, 1, &load, 1, &opt, out[b], &err) == 0, "%s", err.msg);
        ck_assert_msg(rs_engine_run(e, NULL, &stats, &err) == 0, "%s", err.msg);
        ck_assert_int_eq(stats.skipped_tokens, 3);
        ck_assert_int_eq(stats.banded_chunks, b ? 2 : 0);
        rs_engine_destroy(e);
        rs_trace_close(tr);
    }
    same_results(&whole, &banded, "skipping non-finite tokens");
    rs_results_free(&whole);
    rs_results_free(&banded);
    rs_router_spec_free(&spec);
    rs_metric_spec_free(&load);
    free(z);
}
END_TEST

Suite *engine_suite(void)
{
    Suite *s = suite_create("engine");
    TCase *tc = tcase_create("engine");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, identical_for_any_threads_and_chunks);
    tcase_add_test(tc, memory_budget_bounds_the_chunk);
    tcase_add_test(tc, nonfinite_logits_fail_or_skip);
    tcase_add_test(tc, nonfinite_16_bit_logits_are_found);
    tcase_add_test(tc, sixteen_bit_logits_route_as_their_float32_values);
    tcase_add_test(tc, router_needing_logits_on_topk_only_trace);
    tcase_add_test(tc, memory_budgets_give_identical_results);
    tcase_add_test(tc, groups_that_do_not_fit_are_refused_before_routing);
    tcase_add_test(tc, nonfinite_logits_in_bands);
    suite_add_tcase(s, tc);
    return s;
}
