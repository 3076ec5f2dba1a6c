/* Every registered router (built-in or preset) gives bit-identical decisions
 * whatever the thread count, chunk size and layer bands (chunks grown to hold
 * whole token groups, routed a few layers at a time), with and without the
 * capacity stage in each grouping mode. New routers are covered
 * automatically. */
#include <check.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "routesim/router.h"
#include "sim/engine/engine.h"
#include "tests/test_util.h"

enum { T = 257, L = 3, E = 64, K = 4, BATCH = 40 };
static const int64_t offsets[] = {0, 30, 31, 100, 180, 257};

static const char *trace_path(void)
{
    static char path[1024];
    if (path[0])
        return path;
    snprintf(path, sizeof path, "%s", rs_test_path("invariance.h5"));
    float *z = rs_test_random_logits(T, L, E, 17);
    for (int i = 0; i < T * L * E; i += 7) /* exact ties in every row */
        z[i] = z[i + 1 < T * L * E ? i + 1 : i];
    int32_t *ids = malloc((size_t)T * sizeof *ids), *topk = malloc((size_t)T * L * K * sizeof *topk);
    for (int t = 0; t < T; t++)
        ids[t] = (t * 31) % 97;
    for (int i = 0; i < T * L * K; i++)
        topk[i] = i % K == K - 1 && i % 3 == 0 ? -1 : (i * 13) % E;
    rs_test_trace tt = {.T = T, .L = L, .E = E, .K = K, .num_seq = 5, .offsets = offsets, .logits = z,
                        .topk_ids = topk, .token_ids = ids, .scoring = "softmax", .top_k = 2, .norm_topk = 1};
    rs_test_write_trace(path, &tt);
    /* a selection bias for DeepSeek-style routers */
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hsize_t dims[2] = {L, E};
    float bias[L * E];
    for (int i = 0; i < L * E; i++)
        bias[i] = (float)((i * 7) % 11 - 5) * 0.01f;
    hid_t space = H5Screate_simple(2, dims, NULL);
    hid_t d = H5Dcreate2(f, "/router/bias", H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, bias);
    H5Dclose(d);
    H5Sclose(space);
    H5Fclose(f);
    free(z);
    free(ids);
    free(topk);
    return path;
}

/* Routes with spec (in bands of `band` layers when chunks grow past chunk,
 * 0 = whole); returns the decisions [T, L, kmax] (ids then weights bits) and
 * the chunks routed in bands. */
static int32_t *route(const char *spec_text, int threads, int chunk, int band, size_t *cells, int64_t *banded)
{
    rs_engine_options opt = {
        .threads = threads, .chunk_tokens = chunk, .batch_tokens = BATCH, .progress = 0, .band_layers = band};
    char out[1100];
    snprintf(out, sizeof out, "%s/dec-%d-%d.h5", rs_test_dir(), threads, chunk);
    rs_engine_stats stats;
    int32_t *data = rs_test_route_decisions(trace_path(), spec_text, &opt, out, cells, &stats);
    *banded = stats.banded_chunks;
    return data;
}

/* Returns how many of the runs routed chunks in layer bands. */
static int check_invariant(const char *spec)
{
    static const int runs[][3] = {{1, 1, 0}, {3, 7, 0}, {2, 50, 0}, {4, 1000, 0}, {2, 7, 1}, {3, 1, 2}};
    size_t cells = 0, other = 0;
    int64_t banded = 0;
    int banded_runs = 0;
    int32_t *ref = route(spec, 1, 1000, 0, &cells, &banded);
    for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
        int32_t *got = route(spec, runs[r][0], runs[r][1], runs[r][2], &other, &banded);
        banded_runs += banded > 0;
        ck_assert_uint_eq(cells, other);
        size_t first = 0;
        while (first < 2 * cells && got[first] == ref[first])
            first++;
        ck_assert_msg(first == 2 * cells,
                      "%s: %s differ with %d threads, chunk %d, bands of %d layers (first at cell %zu)", spec,
                      first < cells ? "ids" : "weights", runs[r][0], runs[r][1], runs[r][2], first % cells);
        free(got);
    }
    free(ref);
    return banded_runs;
}

START_TEST(every_router_is_invariant)
{
    ck_assert_int_lt(_i, rs_router_count());
    if (rs_router_at(_i)->flags & RS_ROUTER_QUERY)
        return; /* they route queries with outcomes: check_query_invariance.c */
    check_invariant(rs_router_at(_i)->name);
}
END_TEST

static const char *capacity_specs[] = {
    "topk:k=2,capacity_factor=1,group=batch",
    "topk:k=2,capacity_factor=1,group=sequence,drop_policy=probs",
    "topk:k=2,capacity_factor=0.5,group=step,drop_policy=priority,renorm_after_drop=1",
    "random:k=3,seed=2,capacity_factor=1.5,capacity_rounding=floor,group=batch,drop_policy=random,drop_seed=9",
};

START_TEST(capacity_stage_is_invariant)
{
    /* whole groups outgrow chunks of 7 and 1 tokens: those runs route in bands */
    ck_assert_int_eq(check_invariant(capacity_specs[_i]), 2);
}
END_TEST

Suite *router_invariance_suite(void)
{
    Suite *s = suite_create("router_invariance");
    TCase *tc = tcase_create("router_invariance");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, every_router_is_invariant, 0, rs_router_count());
    tcase_add_loop_test(tc, capacity_stage_is_invariant, 0, sizeof capacity_specs / sizeof capacity_specs[0]);
    suite_add_tcase(s, tc);
    return s;
}
