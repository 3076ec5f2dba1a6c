/* 16-bit logits are kept as stored and each work item widens its own
 * layer's rows: in ordinary chunks, and band by band from memory in chunks
 * grown past the cache-sized chunk to hold whole token groups. Their
 * decisions, metrics, skipped tokens and non-finite errors must be those of
 * the same values stored as float32 (rows read whole, nothing widened), of
 * one chunk holding the trace and of bands read from the file
 * (band_layers), for bfloat16 and float16, read directly (uncompressed) and
 * through HDF5 (gzip), at 1 to 3 threads. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "routesim/router.h"
#include "sim/engine/engine.h"
#include "tests/test_util.h"
#include "workloads/trace/half.h"

/* A layer of a 600-token group is 600 KiB of float32 logits: a band holds
 * one or two layers per thread, so every chunk takes several bands. */
enum { T = 1500, L = 6, E = 256, BATCH = 600 };

static const int64_t offsets[] = {0, 100, 740, 1210, 1500};

/* Writes the trace (NaN / infinities at the given flat cells, count of
 * them); rounded_to: a 16-bit dtype whose values a float32 trace takes. */
static const char *write_rounded_trace(const char *name, int layers, rs_logits_dtype dtype,
                                       rs_logits_dtype rounded_to, const size_t *bad, const float *values, int count)
{
    static char path[4][1024];
    static int next;
    char *p = path[next++ % 4];
    snprintf(p, sizeof path[0], "%s", rs_test_path(name));
    float *z = rs_test_random_logits(T, layers, E, 11);
    for (size_t i = 0; rounded_to != RS_LOGITS_F32 && i < (size_t)T * layers * E; i++)
        z[i] = rounded_to == RS_LOGITS_F16 ? rs_half_to_float(rs_float_to_half(z[i]))
                                           : rs_bf16_to_float(rs_float_to_bf16(z[i]));
    for (int i = 0; i < count; i++)
        z[bad[i]] = values[i];
    rs_test_trace tt = {.T = T, .L = layers, .E = E, .num_seq = 4, .offsets = offsets, .logits = z, .dtype = dtype};
    rs_test_write_trace(p, &tt);
    free(z);
    return p;
}

static const char *write_trace(const char *name, rs_logits_dtype dtype, const size_t *bad, const float *values,
                               int count)
{
    return write_rounded_trace(name, L, dtype, RS_LOGITS_F32, bad, values, count);
}

/* Routes spec over the trace; returns the decisions (ids then weight bits)
 * and the stats. chunk: tokens per chunk before groups grow it; band: layers
 * per band read from the file (0: the engine's choice). */
static int32_t *route(const char *path, const char *spec_text, int threads, int chunk, int band, size_t *cells,
                      rs_engine_stats *stats)
{
    rs_engine_options opt = {.threads = threads, .chunk_tokens = chunk, .batch_tokens = BATCH, .band_layers = band,
                             .memory_budget = (size_t)256 << 20};
    char out[1100];
    snprintf(out, sizeof out, "%s/membands-%d-%d-%d.h5", rs_test_dir(), threads, chunk, band);
    return rs_test_route_decisions(path, spec_text, &opt, out, cells, stats);
}

static const char *routers[] = {"expert_choice", "sinkhorn:k=2,group=sequence", "aux_free_bias:k=2",
                                "topk:k=4,capacity_factor=1,group=batch", "segment:m=8"};

static void same_decisions(const char *path, const char *what)
{
    for (size_t r = 0; r < sizeof routers / sizeof routers[0]; r++) {
        size_t cells = 0, other = 0;
        rs_engine_stats stats;
        /* one chunk holding the whole trace: no bands */
        int32_t *ref = route(path, routers[r], 1, T, 0, &cells, &stats);
        ck_assert_int_eq(stats.memory_banded_chunks, 0);
        ck_assert_int_eq(stats.banded_chunks, 0);
        static const int runs[][3] = {{1, 64, 0}, {2, 64, 0}, {3, 100, 0}, {2, 64, 2}};
        for (size_t k = 0; k < sizeof runs / sizeof runs[0]; k++) {
            int32_t *got = route(path, routers[r], runs[k][0], runs[k][1], runs[k][2], &other, &stats);
            if (runs[k][2] == 0)
                ck_assert_msg(stats.memory_banded_chunks > 0 && stats.banded_chunks == 0,
                              "%s %s: %lld chunks widened from memory, %lld read in bands", what, routers[r],
                              (long long)stats.memory_banded_chunks, (long long)stats.banded_chunks);
            else
                ck_assert_msg(stats.banded_chunks > 0 && stats.memory_banded_chunks == 0, "%s %s: no file bands",
                              what, routers[r]);
            ck_assert_uint_eq(cells, other);
            ck_assert_msg(memcmp(ref, got, 2 * cells * sizeof *ref) == 0,
                          "%s %s: decisions differ with %d threads, chunks of %d, file bands of %d", what, routers[r],
                          runs[k][0], runs[k][1], runs[k][2]);
            free(got);
        }
        free(ref);
    }
}

START_TEST(bands_from_memory_route_as_whole_chunks)
{
    same_decisions(write_trace("membands-bf16.h5", RS_LOGITS_BF16, NULL, NULL, 0), "bfloat16");
    same_decisions(write_trace("membands-f16.h5", RS_LOGITS_F16, NULL, NULL, 0), "float16");
}
END_TEST

/* Ordinary chunks widened layer by layer by the threads routing them,
 * against the same values stored as float32, with 6 layers and with 2,
 * where 3 threads route token slices of a layer (per-token routers, chunks
 * of 100 and more tokens); grouped and stateful routers too. */
START_TEST(chunks_widened_by_layer_equal_float32_rows)
{
    static const char *specs[] = {"topk:k=8", "threshold", "dynmole", "group_limited:k=4,n_group=8,topk_group=2",
                                  "expert_choice", "aux_free_bias:k=2"};
    static const int runs[][2] = {{1, 17}, {2, 64}, {3, 100}, {3, T}};
    for (int c = 0; c < 4; c++) {
        const int f16 = c % 2, layers = c < 2 ? L : 2;
        const rs_logits_dtype dtype = f16 ? RS_LOGITS_F16 : RS_LOGITS_BF16;
        char name[64];
        snprintf(name, sizeof name, "bylayer-%s-%d.h5", f16 ? "f16" : "bf16", layers);
        const char *narrow = write_rounded_trace(name, layers, dtype, dtype, NULL, NULL, 0);
        snprintf(name, sizeof name, "bylayer-%s-%d-as-f32.h5", f16 ? "f16" : "bf16", layers);
        const char *wide = write_rounded_trace(name, layers, RS_LOGITS_F32, dtype, NULL, NULL, 0);
        for (size_t r = 0; r < sizeof specs / sizeof specs[0]; r++) {
            for (size_t k = 0; k < sizeof runs / sizeof runs[0]; k++) {
                size_t cells = 0, other = 0;
                rs_engine_stats stats;
                int32_t *ref = route(wide, specs[r], runs[k][0], runs[k][1], 0, &cells, &stats);
                int32_t *got = route(narrow, specs[r], runs[k][0], runs[k][1], 0, &other, &stats);
                ck_assert_uint_eq(cells, other);
                ck_assert_msg(memcmp(ref, got, 2 * cells * sizeof *ref) == 0,
                              "%s, %d layers, %s: decisions differ from float32 with %d threads, chunks of %d",
                              f16 ? "float16" : "bfloat16", layers, specs[r], runs[k][0], runs[k][1]);
                free(ref);
                free(got);
            }
        }
    }
}
END_TEST

/* Logits read through HDF5 (gzip) rather than directly from the file. */
START_TEST(bands_from_memory_of_compressed_logits)
{
    const char *path = rs_test_path("membands-gzip.h5");
    char *err = NULL;
    ck_assert_msg(rs_test_run_cli(rs_test_cmd("gen --preset olmoe --tokens %d --layers %d --experts %d --seq_len 700 "
                                              "--dtype bfloat16 --gzip 1 --seed 5 --no-progress -o %s",
                                              T, L, E, path),
                                  NULL, &err) == 0,
                  "gen: %s", err);
    free(err);
    same_decisions(path, "gzip bfloat16");
}
END_TEST

static char *route_csv(const char *path, const char *router, const char *extra, int expect_rc, char **err)
{
    const char *csv = rs_test_path("membands.csv");
    remove(csv);
    int rc = rs_test_run_cli(rs_test_cmd("route %s --router %s --metrics load,entropy,activation --batch-tokens %d "
                                         "--csv %s --no-progress %s",
                                         path, router, BATCH, csv, extra),
                             NULL, err);
    ck_assert_msg(rc == expect_rc, "route %s %s: %s", router, extra, *err);
    return rc == 0 ? rs_test_read_file(csv) : NULL;
}

/* Non-finite values: the first one in (token, layer, expert) order is
 * reported as from whole chunks, and --skip-nonfinite skips the same tokens
 * with the same results. The NaN at token 200 comes first though the
 * infinity at token 300 lies in an earlier layer. */
START_TEST(bands_from_memory_find_the_first_nonfinite_value)
{
    const size_t bad[] = {((size_t)200 * L + 4) * E + 9, ((size_t)300 * L + 0) * E + 1, ((size_t)900 * L + 5) * E};
    const float values[] = {NAN, INFINITY, -INFINITY};
    for (int f16 = 0; f16 <= 1; f16++) {
        const char *path = write_trace(f16 ? "membands-nan-f16.h5" : "membands-nan-bf16.h5",
                                       f16 ? RS_LOGITS_F16 : RS_LOGITS_BF16, bad, values, 3);
        for (size_t r = 0; r < sizeof routers / sizeof routers[0]; r++) {
            char *whole_err = NULL, *band_err = NULL;
            route_csv(path, routers[r], rs_test_cmd("--chunk-tokens %d", T), 1, &whole_err);
            route_csv(path, routers[r], "--chunk-tokens 64 --threads 2", 1, &band_err);
            ck_assert_msg(strstr(whole_err, "NaN value at token 200, layer 4, expert 9"), "%s", whole_err);
            ck_assert_str_eq(band_err, whole_err);
            free(whole_err);
            free(band_err);
            char *err[2] = {NULL, NULL};
            char *whole = route_csv(path, routers[r], rs_test_cmd("--chunk-tokens %d --skip-nonfinite", T), 0, &err[0]);
            char *banded = route_csv(path, routers[r], "--chunk-tokens 64 --threads 2 --skip-nonfinite", 0, &err[1]);
            ck_assert_msg(whole && banded && strcmp(whole, banded) == 0, "%s: results differ", routers[r]);
            ck_assert_msg(strstr(err[1], "skipped 3 tokens"), "%s", err[1]);
            free(whole);
            free(banded);
            free(err[0]);
            free(err[1]);
        }
    }
}
END_TEST

/* A float32 run's report of its grown chunks: bands of fewer layers than
 * the model's when the budget holds only those, "one at a time" when it
 * holds a chunk whole but not two (no read-ahead); the same results. */
START_TEST(run_reports_how_grown_chunks_were_read)
{
    const char *path = rs_test_path("membands-f32.h5");
    char *err = NULL;
    ck_assert_msg(rs_test_run_cli(rs_test_cmd("gen --preset olmoe --tokens %d --layers %d --experts %d --seq_len 600 "
                                              "--dtype float32 --seed 5 --no-progress -o %s",
                                              T, L, E, path),
                                  NULL, &err) == 0,
                  "gen: %s", err);
    free(err);
    static const int mib[] = {256, 8, 14};
    static const char *said[] = {NULL, "chunks were routed in bands of 3 or more layers",
                                 "2 chunks were read and routed one at a time, without reading the next one ahead"};
    char *csv[3];
    for (int b = 0; b < 3; b++) {
        char config[1100], output[1100];
        snprintf(config, sizeof config, "%s/membands-%d.json", rs_test_dir(), mib[b]);
        snprintf(output, sizeof output, "%s/membands-%d", rs_test_dir(), mib[b]);
        FILE *f = fopen(config, "w");
        ck_assert_ptr_nonnull(f);
        fprintf(f,
                "{\"traces\": [\"%s\"], \"routers\": [\"expert_choice\", \"switch\"], \"metrics\": [\"load\", "
                "\"entropy\"], \"batch_tokens\": %d, \"memory_mb\": %d, \"threads\": 2, \"output\": \"%s\"}",
                path, BATCH, mib[b], output);
        fclose(f);
        ck_assert_int_eq(rs_test_run_cli(rs_test_cmd("run %s -q --no-progress", config), NULL, &err), 0);
        if (said[b])
            ck_assert_msg(strstr(err, said[b]), "%d MiB: %s", mib[b], err);
        else
            ck_assert_msg(!strstr(err, "chunks were"), "%d MiB: %s", mib[b], err);
        free(err);
        char results[1200];
        snprintf(results, sizeof results, "%s/results.csv", output);
        csv[b] = rs_test_read_file(results);
        ck_assert_ptr_nonnull(csv[b]);
    }
    ck_assert_msg(strcmp(csv[0], csv[1]) == 0 && strcmp(csv[0], csv[2]) == 0, "results depend on the budget");
    for (int b = 0; b < 3; b++)
        free(csv[b]);
}
END_TEST

Suite *memory_bands_suite(void)
{
    Suite *s = suite_create("memory_bands");
    TCase *tc = tcase_create("memory_bands");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, bands_from_memory_route_as_whole_chunks);
    tcase_add_test(tc, chunks_widened_by_layer_equal_float32_rows);
    tcase_add_test(tc, bands_from_memory_of_compressed_logits);
    tcase_add_test(tc, bands_from_memory_find_the_first_nonfinite_value);
    tcase_add_test(tc, run_reports_how_grown_chunks_were_read);
    suite_add_tcase(s, tc);
    return s;
}
