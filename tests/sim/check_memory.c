/* The memory budget end to end: token groups larger than the budget holds
 * whole are routed in layer bands, with the same results and decisions as
 * whole chunks (16-bit gzip-compressed logits read through HDF5, recorded
 * top-k, a capacity stage, expert choice, cross-layer metrics, bootstrap);
 * passes are sized by what their metric accumulators keep; what cannot
 * fit is refused up front with the memory it needs. */
#include <check.h>
#include <hdf5.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test_util.h"

/* 4000 tokens (sequences of about 1000) x 6 layers x 64 experts in bfloat16, gzip-compressed, with the
 * native top-8 recorded: a batch of 2048 tokens is 3 MiB of float32 logits. */
static const char *trace(void)
{
    static char path[1024];
    if (path[0])
        return path;
    snprintf(path, sizeof path, "%s", rs_test_path("bands.h5"));
    char *err = NULL;
    int rc = rs_test_run_cli(rs_test_cmd("gen --preset olmoe --tokens 4000 --layers 6 --experts 64 --seq_len 1000 "
                                 "--dtype bfloat16 --gzip 1 --record_topk 1 --seed 3 --no-progress -o %s",
                                 path),
                             NULL, &err);
    ck_assert_msg(rc == 0, "gen: %s", err);
    free(err);
    return path;
}

/* The whole contents of one dataset of a decisions file. */
static char *read_dataset(const char *file, const char *name, size_t *bytes)
{
    hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert_msg(f >= 0, "cannot open %s", file);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    hid_t type = H5Dget_type(d), space = H5Dget_space(d);
    *bytes = (size_t)H5Sget_simple_extent_npoints(space) * H5Tget_size(type);
    char *data = malloc(*bytes ? *bytes : 1);
    ck_assert_int_ge(H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), 0);
    H5Tclose(type);
    H5Sclose(space);
    H5Dclose(d);
    H5Fclose(f);
    return data;
}

static void same_dataset(const char *a, const char *b, const char *name, const char *what)
{
    size_t na = 0, nb = 0;
    char *x = read_dataset(a, name, &na), *y = read_dataset(b, name, &nb);
    ck_assert_uint_eq(na, nb);
    ck_assert_msg(memcmp(x, y, na) == 0, "%s: %s differs", what, name);
    free(x);
    free(y);
}

static const char *band_routers[] = {"expert_choice", "replay:capacity_factor=1", "sinkhorn:k=2,group=sequence",
                                     "topk:k=4,capacity_factor=1,group=step"};

static int route(const char *spec, int mib, const char *csv, const char *dec, char **err)
{
    return rs_test_run_cli(rs_test_cmd("route %s --router %s --metrics load,entropy,affinity,cache --batch-tokens 2048 "
                               "--memory-mb %d --threads 2 --csv %s --out %s --no-progress",
                               trace(), spec, mib, csv, dec),
                           NULL, err);
}

START_TEST(route_decisions_and_metrics_do_not_depend_on_the_budget)
{
    const char *spec = band_routers[_i];
    char csv[2][1100], dec[2][1100];
    for (int b = 0; b < 2; b++) {
        snprintf(csv[b], sizeof csv[b], "%s/route-%d-%d.csv", rs_test_dir(), _i, b);
        snprintf(dec[b], sizeof dec[b], "%s/route-%d-%d.h5", rs_test_dir(), _i, b);
    }
    char *err = NULL;
    ck_assert_msg(route(spec, 512, csv[0], dec[0], &err) == 0, "%s with 512 MiB: %s", spec, err);
    free(err);
    /* 1 MiB holds a group (of sequences here) a layer at a time, or is refused naming the least budget,
     * which then routes a layer or a few at a time */
    int mib = 1, rc = route(spec, mib, csv[1], dec[1], &err);
    if (rc != 0) {
        ck_assert_int_eq(rc, 1);
        const char *need = strstr(err, "routing needs at least ");
        ck_assert_msg(need != NULL, "%s", err);
        mib = atoi(need + strlen("routing needs at least "));
        ck_assert_int_gt(mib, 1);
        free(err);
        rc = route(spec, mib, csv[1], dec[1], &err);
    }
    ck_assert_msg(rc == 0, "%s with %d MiB: %s", spec, mib, err);
    free(err);
    char *x = rs_test_read_file(csv[0]), *y = rs_test_read_file(csv[1]);
    ck_assert_ptr_nonnull(x);
    ck_assert_msg(y && strcmp(x, y) == 0, "%s: metrics differ between 512 and %d MiB", spec, mib);
    free(x);
    free(y);
    same_dataset(dec[0], dec[1], "/decisions/ids", spec);
    same_dataset(dec[0], dec[1], "/decisions/weights", spec);
}
END_TEST

START_TEST(run_with_bootstrap_does_not_depend_on_the_budget)
{
    char *csv[2];
    const int mib[2] = {512, 6};
    for (int b = 0; b < 2; b++) {
        char config[1100], output[1100];
        snprintf(config, sizeof config, "%s/bands-%d.json", rs_test_dir(), mib[b]);
        snprintf(output, sizeof output, "%s/bands-%d", rs_test_dir(), mib[b]);
        FILE *f = fopen(config, "w");
        ck_assert_ptr_nonnull(f);
        fprintf(f,
                "{\"traces\": [\"%s\"], \"routers\": [\"expert_choice\", \"sinkhorn:k=2\", \"switch\", "
                "\"topk:k=4,capacity_factor=1\", \"aux_free_bias:k=4\", \"quantile_balance:k=4\"], "
                "\"metrics\": [\"load\", \"entropy\", {\"name\": \"srp\", \"params\": {\"m\": [4, 16]}}, "
                "{\"name\": \"cache\", \"params\": {\"policy\": [\"lru\", \"sch\"], \"slots\": 8}}], "
                "\"group\": \"sequence\", \"bootstrap\": {\"resamples\": 50, \"blocks\": 5}, \"threads\": 2, "
                "\"memory_mb\": %d, \"output\": \"%s\"}",
                trace(), mib[b], output);
        fclose(f);
        char *err = NULL;
        int rc = rs_test_run_cli(rs_test_cmd("run %s -q --no-progress", config), NULL, &err);
        ck_assert_msg(rc == 0, "run with %d MiB: %s", mib[b], err);
        /* the small budget says how it routed the batches */
        ck_assert_msg((strstr(err, "routed in bands of") != NULL) == (b == 1), "%d MiB: %s", mib[b], err);
        free(err);
        char path[1200];
        snprintf(path, sizeof path, "%s/results.csv", output);
        csv[b] = rs_test_read_file(path);
        ck_assert_ptr_nonnull(csv[b]);
    }
    ck_assert_msg(strcmp(csv[0], csv[1]) == 0, "results differ between 512 and 6 MiB");
    ck_assert_ptr_nonnull(strstr(csv[0], "stat=ci_low"));
    free(csv[0]);
    free(csv[1]);
}
END_TEST

START_TEST(what_cannot_fit_is_refused_up_front)
{
    char *out = NULL, *err = NULL;
    char dec[1100];
    snprintf(dec, sizeof dec, "%s/refused.h5", rs_test_dir());
    /* every layer's decisions of expert choice (64 per row) must be kept for affinity */
    int rc = rs_test_run_cli(rs_test_cmd("route %s --router expert_choice --metrics affinity --batch-tokens 2048 "
                                 "--memory-mb 4 --out %s --no-progress",
                                 trace(), dec),
                             &out, &err);
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(err, "bands.h5: routing needs at least ") != NULL, "%s", err);
    ck_assert_msg(strstr(err, "for a chunk of 2048 tokens (whole batches of batch_tokens=2048) at 6 layers") != NULL,
                  "%s", err);
    ck_assert_msg(strstr(err, "above the memory budget of 4 MiB") != NULL, "%s", err);
    ck_assert_int_eq(strchr(err, '\n') - err + 1, (long)strlen(err)); /* one line */
    ck_assert(!rs_test_file_exists(dec));
    free(out);
    free(err);
}
END_TEST

/* Writes a config of routers x affinity on the bands trace; returns its path. */
static const char *affinity_config(const char *name, const char *routers, const char *extra, int mib)
{
    static char config[1100];
    snprintf(config, sizeof config, "%s/%s.json", rs_test_dir(), name);
    FILE *f = fopen(config, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "{\"traces\": [\"%s\"], \"routers\": [%s], \"metrics\": [\"affinity\", \"load\"]%s, "
            "\"memory_mb\": %d, \"output\": \"%s/%s\"}",
            trace(), routers, extra, mib, rs_test_dir(), name);
    fclose(f);
    return config;
}

/* Affinity keeps (L-1) E^2 + L E(E-1)/2 counters per run, 261 KiB on this trace: five runs need 1.3 MiB, so a
 * budget of 1 MiB routes them in two passes, with the results of one pass. */
START_TEST(passes_are_sized_by_metric_accumulators)
{
    const char *routers = "\"topk:k=2\", \"topk:k=4\", \"native\", \"topk:k=8\", \"random:k=4\"";
    char *csv[2];
    const int mib[2] = {512, 1};
    for (int b = 0; b < 2; b++) {
        char name[64];
        snprintf(name, sizeof name, "passes-%d", mib[b]);
        char *err = NULL;
        int rc = rs_test_run_cli(rs_test_cmd("run %s -q --no-progress", affinity_config(name, routers, "", mib[b])), NULL,
                                 &err);
        ck_assert_msg(rc == 0, "run with %d MiB: %s", mib[b], err);
        ck_assert_msg((strstr(err, "5 runs in 2 passes over the trace, so that each pass's metric accumulators fit "
                                   "the memory budget of 1 MiB") != NULL) == (b == 1),
                      "%d MiB: %s", mib[b], err);
        free(err);
        char path[1200];
        snprintf(path, sizeof path, "%s/%s/results.csv", rs_test_dir(), name);
        csv[b] = rs_test_read_file(path);
        ck_assert_ptr_nonnull(csv[b]);
    }
    ck_assert_msg(strcmp(csv[0], csv[1]) == 0, "results differ between one pass and two");
    free(csv[0]);
    free(csv[1]);
}
END_TEST

/* With bootstrap every block keeps its own accumulator: 6 blocks of sequences and the live one need 1.8 MiB for
 * one run, refused before anything is routed. */
START_TEST(bootstrap_blocks_that_cannot_fit_are_refused)
{
    char *err = NULL;
    const char *config = affinity_config("boot-refused", "\"topk:k=2\"", ", \"bootstrap\": 20", 1);
    int rc = rs_test_run_cli(rs_test_cmd("run %s -q --no-progress", config), NULL, &err);
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(err, "bands.h5: the metric accumulators of 1 run need ") != NULL, "%s", err);
    ck_assert_msg(strstr(err, " MiB (with one accumulator per bootstrap block, 6 blocks), affinity ") != NULL, "%s", err);
    ck_assert_msg(strstr(err, " MiB of it, above the memory budget of 1 MiB") != NULL, "%s", err);
    ck_assert_msg(strstr(err, "config bootstrap.blocks") != NULL, "%s", err);
    ck_assert_int_eq(strchr(err, '\n') - err + 1, (long)strlen(err)); /* one line */
    char results[1200];
    snprintf(results, sizeof results, "%s/boot-refused/results.csv", rs_test_dir());
    ck_assert(!rs_test_file_exists(results));
    free(err);
}
END_TEST

/* Two bootstraps whose blocks could not be merged fail before routing (not after the whole trace): a metric
 * that follows sequences under batches that cross them, and the cache with reset=never. */
START_TEST(bootstrap_blocks_that_cannot_merge_are_refused)
{
    static const struct {
        const char *routers, *metrics, *want;
    } cases[] = {
        {"\"expert_choice\"", "{\"name\": \"srp\", \"params\": {\"m\": 4}}",
         "bootstrap over sequences: metric srp follows sequences, so its blocks must start where a sequence starts, "
         "but router expert_choice routes batches of batch_tokens=512 consecutive tokens across sequences; "
         "bootstrap it with group=sequence or group=step, or without srp"},
        {"\"topk:k=2,capacity_factor=1,group=batch\"", "\"sch\"", "metric sch follows sequences"},
        {"\"topk:k=2\"", "{\"name\": \"cache\", \"params\": {\"slots\": 4, \"reset\": \"never\"}}",
         "bootstrap over sequences merges one accumulator per block of sequences: metric cache: with reset=never the "
         "caches carry over from one part of the trace to the next, so parts cannot be merged"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char config[1100], output[1100];
        snprintf(config, sizeof config, "%s/unmergeable-%zu.json", rs_test_dir(), i);
        snprintf(output, sizeof output, "%s/unmergeable-%zu", rs_test_dir(), i);
        FILE *f = fopen(config, "w");
        ck_assert_ptr_nonnull(f);
        fprintf(f,
                "{\"traces\": [\"%s\"], \"routers\": [%s], \"metrics\": [%s], \"batch_tokens\": 512, "
                "\"bootstrap\": 20, \"output\": \"%s\"}",
                trace(), cases[i].routers, cases[i].metrics, output);
        fclose(f);
        char *err = NULL;
        int rc = rs_test_run_cli(rs_test_cmd("run %s -q --no-progress", config), NULL, &err);
        ck_assert_int_eq(rc, 1);
        ck_assert_msg(strstr(err, cases[i].want) != NULL, "case %zu: %s", i, err);
        ck_assert_int_eq(strchr(err, '\n') - err + 1, (long)strlen(err)); /* one line */
        char results[1200];
        snprintf(results, sizeof results, "%s/results.csv", output);
        ck_assert(!rs_test_file_exists(results));
        free(err);
    }
}
END_TEST

Suite *memory_suite(void)
{
    Suite *s = suite_create("memory");
    TCase *tc = tcase_create("memory");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, route_decisions_and_metrics_do_not_depend_on_the_budget, 0,
                        sizeof band_routers / sizeof band_routers[0]);
    tcase_add_test(tc, run_with_bootstrap_does_not_depend_on_the_budget);
    tcase_add_test(tc, what_cannot_fit_is_refused_up_front);
    tcase_add_test(tc, passes_are_sized_by_metric_accumulators);
    tcase_add_test(tc, bootstrap_blocks_that_cannot_fit_are_refused);
    tcase_add_test(tc, bootstrap_blocks_that_cannot_merge_are_refused);
    suite_add_tcase(s, tc);
    return s;
}
