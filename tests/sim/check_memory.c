/* The memory budget end to end: token groups larger than the budget holds
 * whole are routed in layer bands, with the same results and decisions as
 * whole chunks (16-bit gzip-compressed logits read through HDF5, recorded
 * top-k, a capacity stage, expert choice, cross-layer metrics, bootstrap);
 * what cannot fit is refused up front with the memory it needs. */
#include <check.h>
#include <hdf5.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test_util.h"

static char *cmd(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *cmd(const char *fmt, ...)
{
    static char buf[2][4096];
    static int next;
    char *b = buf[next++ % 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, sizeof buf[0], fmt, ap);
    va_end(ap);
    return b;
}

/* 4000 tokens (sequences of about 1000) x 6 layers x 64 experts in bfloat16, gzip-compressed, with the
 * native top-8 recorded: a batch of 2048 tokens is 3 MiB of float32 logits. */
static const char *trace(void)
{
    static char path[1024];
    if (path[0])
        return path;
    snprintf(path, sizeof path, "%s", rs_test_path("bands.h5"));
    char *err = NULL;
    int rc = rs_test_run_cli(cmd("gen --preset olmoe --tokens 4000 --layers 6 --experts 64 --seq_len 1000 "
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
    return rs_test_run_cli(cmd("route %s --router %s --metrics load,entropy,affinity,cache --batch-tokens 2048 "
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
        int rc = rs_test_run_cli(cmd("run %s -q --no-progress", config), NULL, &err);
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
    int rc = rs_test_run_cli(cmd("route %s --router expert_choice --metrics affinity --batch-tokens 2048 "
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

Suite *memory_suite(void)
{
    Suite *s = suite_create("memory");
    TCase *tc = tcase_create("memory");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, route_decisions_and_metrics_do_not_depend_on_the_budget, 0,
                        sizeof band_routers / sizeof band_routers[0]);
    tcase_add_test(tc, run_with_bootstrap_does_not_depend_on_the_budget);
    tcase_add_test(tc, what_cannot_fit_is_refused_up_front);
    suite_add_tcase(s, tc);
    return s;
}
