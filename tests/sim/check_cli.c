/* End to end through the routesim binary on small generated traces: the
 * commands, their outputs, and one test per bad input the CLI must reject
 * with one line naming the file and field, a non-zero exit and no output. */
#include <check.h>
#include <hdf5.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/test_util.h"

enum { T = 300, L = 2, E = 8 };
static const int64_t offsets[] = {0, 120, 300};

static const char *make_trace(const char *name, int nan_at)
{
    const char *path = rs_test_path(name);
    float *z = rs_test_random_logits(T, L, E, 9);
    if (nan_at >= 0)
        z[nan_at] = NAN;
    rs_test_trace tt = {.T = T, .L = L, .E = E, .num_seq = 2, .offsets = offsets, .logits = z};
    rs_test_write_trace(path, &tt);
    free(z);
    return path;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; s && *s; s++)
        n += *s == '\n';
    return n;
}

/* Runs a command expected to fail; checks exit code, a single stderr line
 * starting with "routesim" and containing every needle. */
static void expect_failure(const char *args, int code, const char *needle1, const char *needle2)
{
    char *out = NULL, *err = NULL;
    int rc = rs_test_run_cli(args, &out, &err);
    ck_assert_msg(rc == code, "exit %d (wanted %d) for %s; stderr: %s", rc, code, args, err);
    ck_assert_msg(count_lines(err) == 1, "stderr should be one line for %s, got: %s", args, err);
    ck_assert_msg(strncmp(err, "routesim", 8) == 0, "stderr: %s", err);
    ck_assert_msg(strstr(err, needle1) != NULL, "stderr '%s' lacks '%s'", err, needle1);
    ck_assert_msg(!needle2 || strstr(err, needle2) != NULL, "stderr '%s' lacks '%s'", err, needle2);
    free(out);
    free(err);
}

START_TEST(route_prints_table_and_writes_decisions)
{
    const char *trace = make_trace("ok.h5", -1);
    const char *dec = rs_test_path("dec.h5");
    char *out = NULL, *err = NULL;
    int rc = rs_test_run_cli(rs_test_cmd("route %s --router topk:k=2 --out %s", trace, dec), &out, &err);
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_ptr_nonnull(strstr(out, "load.maxvio"));
    ck_assert_ptr_nonnull(strstr(out, "entropy.router_entropy"));
    ck_assert_ptr_nonnull(strstr(out, "topk:k=2"));
    free(out);
    free(err);
    hid_t f = H5Fopen(dec, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    hid_t d = H5Dopen2(f, "/decisions/ids", H5P_DEFAULT);
    hid_t sp = H5Dget_space(d);
    hsize_t dims[3];
    ck_assert_int_eq(H5Sget_simple_extent_dims(sp, dims, NULL), 3);
    ck_assert_int_eq(dims[0], T);
    ck_assert_int_eq(dims[1], L);
    ck_assert_int_eq(dims[2], 2);
    H5Sclose(sp);
    H5Dclose(d);
    H5Fclose(f);
    /* the decisions file replays to the same load numbers */
    char *out2 = NULL;
    ck_assert_int_eq(rs_test_run_cli(rs_test_cmd("route %s --router topk:k=2 --metrics load", trace), &out, NULL), 0);
    ck_assert_int_eq(rs_test_run_cli(rs_test_cmd("route %s --router replay:decisions=%s --metrics load", trace, dec), &out2,
                                     NULL),
                     0);
    for (const char *m = "load.maxvio"; m; m = strcmp(m, "load.maxvio") == 0 ? "load.aux_loss" : NULL) {
        char a[64], b[64];
        ck_assert_int_eq(sscanf(strstr(out, m) + strlen(m), "%63s", a), 1);
        ck_assert_int_eq(sscanf(strstr(out2, m) + strlen(m), "%63s", b), 1);
        ck_assert_str_eq(a, b);
    }
    free(out);
    free(out2);
}
END_TEST

START_TEST(run_writes_tidy_csv_and_json)
{
    const char *trace = make_trace("run.h5", -1);
    const char *dir = rs_test_path("out-run");
    const char *config = rs_test_path("run.json");
    FILE *f = fopen(config, "w");
    fprintf(f,
            "{\"name\": \"t\", \"traces\": [\"%s\"], \"routers\": [\"topk:k=2\", {\"name\": \"random\", "
            "\"params\": {\"k\": 2, \"seed\": 1}}], \"metrics\": [\"load\", \"entropy\"], \"batch_tokens\": 64, "
            "\"output\": \"%s\"}",
            trace, dir);
    fclose(f);
    char *out = NULL, *err = NULL;
    ck_assert_msg(rs_test_run_cli(rs_test_cmd("run %s", config), &out, &err) == 0, "%s", err);
    ck_assert_ptr_nonnull(strstr(out, "random:k=2,seed=1"));
    free(out);
    free(err);
    char csv_path[1100], json_path[1100];
    snprintf(csv_path, sizeof csv_path, "%s/results.csv", dir);
    snprintf(json_path, sizeof json_path, "%s/results.json", dir);
    char *csv = rs_test_read_file(csv_path), *json = rs_test_read_file(json_path);
    ck_assert_ptr_nonnull(csv);
    ck_assert_ptr_nonnull(json);
    ck_assert(strncmp(csv, "run,trace,router,params,metric,key,layer,value\n", 47) == 0);
    /* 2 routers x 13 outputs (7 load + drop_rate + 5 entropy) x (2 layers + all) */
    ck_assert_int_eq(count_lines(csv), 1 + 2 * 13 * 3);
    ck_assert_ptr_nonnull(strstr(csv, "topk:k=2,"));
    ck_assert_ptr_nonnull(strstr(csv, ",topk,k=2;renorm=1;scale=1,load.maxvio,,all,"));
    ck_assert_ptr_nonnull(strstr(csv, "\"random:k=2,seed=1\""));
    ck_assert_ptr_nonnull(strstr(json, "\"wall_seconds\""));
    ck_assert_ptr_nonnull(strstr(json, "\"expanded\""));
    ck_assert_ptr_nonnull(strstr(strstr(json, "\"expanded\""), "\"random:k=2,seed=1\""));
    ck_assert_ptr_nonnull(strstr(json, "\"revision\""));
    free(csv);
    free(json);
    /* --output overrides the config */
    const char *other = rs_test_path("out-other");
    ck_assert_int_eq(rs_test_run_cli(rs_test_cmd("run %s --output %s -q", config, other), NULL, NULL), 0);
    snprintf(csv_path, sizeof csv_path, "%s/results.csv", other);
    ck_assert(rs_test_file_exists(csv_path));
}
END_TEST

/* Rows of csv whose metric column is one of names (comma-separated), in order. */
static char *rows_of(const char *csv, const char *names)
{
    char *out = calloc(strlen(csv) + 1, 1);
    for (const char *line = strchr(csv, '\n') + 1; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = (size_t)(end - line) + 1;
        char row[1024];
        snprintf(row, sizeof row, "%.*s", (int)len, line);
        /* metric is the 5th field; the router label and params here hold no commas */
        char *field = row;
        for (int i = 0; i < 4; i++)
            field = strchr(field, ',') + 1;
        char metric[128];
        snprintf(metric, sizeof metric, "%.*s", (int)strcspn(field, ","), field);
        char wanted[256];
        snprintf(wanted, sizeof wanted, ",%s,", names);
        char needle[160];
        snprintf(needle, sizeof needle, ",%s,", metric);
        if (strstr(wanted, needle))
            strcat(out, row);
        line = end + 1;
    }
    return out;
}

START_TEST(run_keeps_only_named_outputs)
{
    const char *trace = make_trace("outputs.h5", -1);
    const char *all = rs_test_path("outputs-all.json"), *some = rs_test_path("outputs-some.json");
    FILE *f = fopen(all, "w");
    fprintf(f,
            "{\"traces\": [\"%s\"], \"routers\": [\"topk:k=2\"], \"metrics\": [\"load\", {\"name\": \"entropy\", "
            "\"params\": {\"q\": [1.1, 2]}}], \"batch_tokens\": 64, \"output\": \"%s\"}",
            trace, rs_test_path("out-all"));
    fclose(f);
    /* Skipping the Tsallis sums and the margin pass must not change the rest;
     * router_entropy does not depend on q, so it is reported once. */
    f = fopen(some, "w");
    fprintf(f,
            "{\"traces\": [\"%s\"], \"routers\": [\"topk:k=2\"], \"metrics\": [{\"name\": \"load\", \"outputs\": "
            "[\"maxvio\", \"cv\"]}, {\"name\": \"entropy\", \"params\": {\"q\": [1.1, 2]}, \"outputs\": "
            "[\"router_entropy\", \"selected_mass\"]}], \"batch_tokens\": 64, \"output\": \"%s\"}",
            trace, rs_test_path("out-some"));
    fclose(f);
    char *full = rs_test_run_csv(all, 1, 50), *part = rs_test_run_csv(some, 2, 70);
    char *want = rows_of(full, "load.maxvio,load.cv,entropy.router_entropy,entropy.selected_mass");
    const char *body = strchr(part, '\n') + 1;
    ck_assert_int_eq(count_lines(body), 4 * (L + 1));
    ck_assert_str_eq(body, want);
    free(want);
    free(full);
    free(part);
    ck_assert_int_eq(rs_test_run_cli(rs_test_cmd("run %s -q --no-progress", some), NULL, NULL), 0);
    char path[1100];
    snprintf(path, sizeof path, "%s/results.json", rs_test_path("out-some"));
    char *json = rs_test_read_file(path);
    ck_assert_ptr_nonnull(strstr(json, "\"router_entropy,selected_mass\""));
    free(json);
}
END_TEST

START_TEST(route_metrics_name_outputs)
{
    const char *trace = make_trace("route-outputs.h5", -1);
    char *out = NULL, *err = NULL;
    ck_assert_msg(rs_test_run_cli(rs_test_cmd("route %s --router topk:k=2 --metrics load.maxvio,entropy.router_entropy,"
                                      "load.cv --no-progress",
                                      trace),
                                  &out, &err) == 0,
                  "%s", err);
    ck_assert_ptr_nonnull(strstr(out, "load.maxvio"));
    ck_assert_ptr_nonnull(strstr(out, "load.cv"));
    ck_assert_ptr_nonnull(strstr(out, "entropy.router_entropy"));
    ck_assert_ptr_null(strstr(out, "load.gini"));
    ck_assert_ptr_null(strstr(out, "entropy.selected_mass"));
    free(out);
    free(err);
    expect_failure(rs_test_cmd("route %s --router topk:k=2 --metrics entropy.entropie --no-progress", trace), 1,
                   "--metrics: metric entropy has no output 'entropie'", "(outputs: router_entropy,");
    expect_failure(rs_test_cmd("route %s --router topk:k=2 --metrics load,entropy,load --no-progress", trace), 1,
                   "--metrics: load is listed twice", NULL);
    expect_failure(rs_test_cmd("route %s --router topk:k=2 --metrics load.cv,load.maxvio,load.cv --no-progress", trace), 1,
                   "--metrics: load.cv is listed twice", NULL);
}
END_TEST

/* FAMILY:K=V sets a metric parameter on the command line, K=V items after
 * it more of the same family's, as router specs do. */
START_TEST(route_metrics_take_parameters)
{
    const char *trace = make_trace("route-metric-params.h5", -1);
    char *out = NULL, *err = NULL;
    ck_assert_msg(rs_test_run_cli(rs_test_cmd("route %s --router topk:k=2 --metrics cache:slots=3,policy=fifo,"
                                              "load.cv,affinity:successors=1 --no-progress",
                                              trace),
                                  &out, &err) == 0,
                  "%s", err);
    ck_assert_msg(strstr(out, "cache.hit_rate[policy=fifo;scope=layer;slots=3]") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "affinity.affinity_predictability[successors=1]") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "load.cv") && !strstr(out, "load.gini"), "%s", out);
    free(out);
    free(err);
    expect_failure(rs_test_cmd("route %s --router topk:k=2 --metrics slots=3,cache --no-progress", trace), 1,
                   "--metrics: parameter 'slots=3' comes before any metric", NULL);
    expect_failure(rs_test_cmd("route %s --router topk:k=2 --metrics cache:slotz=3 --no-progress", trace), 1,
                   "unknown parameter 'slotz'", NULL);
    expect_failure(rs_test_cmd("route %s --router topk:k=2 --metrics cache:slots=0 --no-progress", trace), 1,
                   "slots", NULL);
    expect_failure(rs_test_cmd("route %s --router topk:k=2 --metrics cache,cache --no-progress", trace), 1,
                   "--metrics: cache is listed twice", NULL);
    /* K=[A,B] sweeps as a config's list does: every combination */
    ck_assert_msg(rs_test_run_cli(rs_test_cmd("route %s --router topk:k=2 --metrics cache:slots=[2,3],"
                                              "policy=[lru,fifo],cache.hit_rate,srp.srp:m=[4,8] --no-progress",
                                              trace),
                                  &out, &err) == 0,
                  "%s", err);
    static const char *const swept[] = {"cache.hit_rate[policy=lru;scope=layer;slots=2]",
                                        "cache.hit_rate[policy=fifo;scope=layer;slots=2]",
                                        "cache.hit_rate[policy=lru;scope=layer;slots=3]",
                                        "cache.hit_rate[policy=fifo;scope=layer;slots=3]", "srp.srp[m=4]",
                                        "srp.srp[m=8]"};
    for (int i = 0; i < 6; i++)
        ck_assert_msg(strstr(out, swept[i]) != NULL, "no %s in %s", swept[i], out);
    ck_assert_msg(!strstr(out, "hit_rate_warm") && !strstr(out, "rho_hat"), "%s", out);
    free(out);
    free(err);
    expect_failure(rs_test_cmd("route %s --router topk:k=2 --metrics 'cache:slots=[]' --no-progress", trace), 1,
                   "--metrics: slots=[]: the list is empty", NULL);
    expect_failure(rs_test_cmd("route %s --router topk:k=2 --metrics 'cache:slots=[2,x]' --no-progress", trace), 1,
                   "parameter slots: expected an integer, got 'x'", NULL);
    /* FAMILY.OUTPUT:K=V, or FAMILY:K=V then FAMILY.OUTPUT: that output alone, with the parameter */
    static const char *const one_output[] = {"cache.hit_rate:slots=3", "cache:slots=3,cache.hit_rate"};
    for (int i = 0; i < 2; i++) {
        ck_assert_msg(rs_test_run_cli(rs_test_cmd("route %s --router topk:k=2 --metrics %s --no-progress", trace,
                                                  one_output[i]),
                                      &out, &err) == 0,
                      "%s", err);
        ck_assert_msg(strstr(out, "cache.hit_rate[policy=lru;scope=layer;slots=3]") && !strstr(out, "hit_rate_warm"),
                      "%s: %s", one_output[i], out);
        free(out);
        free(err);
    }
}
END_TEST

START_TEST(listing_commands)
{
    char *out = NULL;
    ck_assert_int_eq(rs_test_run_cli("routers --json", &out, NULL), 0);
    ck_assert_ptr_nonnull(strstr(out, "\"name\":\t\"topk\""));
    ck_assert_ptr_nonnull(strstr(out, "\"default\":\t\"2\""));
    free(out);
    ck_assert_int_eq(rs_test_run_cli("metrics --json", &out, NULL), 0);
    ck_assert_ptr_nonnull(strstr(out, "\"name\":\t\"load.maxvio_batch\""));
    free(out);
    ck_assert_int_eq(rs_test_run_cli("routers topk", &out, NULL), 0);
    ck_assert_ptr_nonnull(strstr(out, "renorm"));
    free(out);
    const char *trace = make_trace("info.h5", -1);
    ck_assert_int_eq(rs_test_run_cli(rs_test_cmd("info %s", trace), &out, NULL), 0);
    ck_assert_ptr_nonnull(strstr(out, "T = 300 tokens, L = 2 layers, E = 8 experts"));
    ck_assert_ptr_nonnull(strstr(out, "S = 2 (length min 120, mean 150.0, max 180)"));
    free(out);
    const char *helps[] = {"--help", "run --help", "route --help", "info --help", "routers --help",
                           "metrics --help", "gen --help", "import --help"};
    for (size_t i = 0; i < sizeof helps / sizeof helps[0]; i++) {
        ck_assert_msg(rs_test_run_cli(helps[i], &out, NULL) == 0, "%s", helps[i]);
        ck_assert_msg(strstr(out, "usage") != NULL, "%s printed no usage", helps[i]);
        free(out);
    }
}
END_TEST

START_TEST(bad_trace_inputs)
{
    expect_failure(rs_test_cmd("route %s --router topk", rs_test_path("missing.h5")), 1, "missing.h5: cannot open trace",
                   NULL);
    const char *text = rs_test_path("text.h5");
    FILE *f = fopen(text, "w");
    fputs("hello\n", f);
    fclose(f);
    expect_failure(rs_test_cmd("route %s --router topk", text), 1, "text.h5: not an HDF5 file", NULL);

    /* a copy cut short (an interrupted transfer): HDF5's reason is passed on */
    const char *cut = make_trace("cut.h5", -1);
    struct stat st;
    ck_assert_int_eq(stat(cut, &st), 0);
    ck_assert_int_eq(truncate(cut, st.st_size / 2), 0);
    expect_failure(rs_test_cmd("route %s --router topk", cut), 1, "cut.h5: cannot open HDF5 file (truncated file", NULL);

    const char *no_off = make_trace("nooff.h5", -1);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t h = H5Fopen(no_off, H5F_ACC_RDWR, H5P_DEFAULT);
    H5Ldelete(h, "/sequences/offsets", H5P_DEFAULT);
    H5Fclose(h);
    expect_failure(rs_test_cmd("info %s", no_off), 1, "nooff.h5: /sequences/offsets: missing dataset", NULL);

    const char *short_off = make_trace("shortoff.h5", -1);
    h = H5Fopen(short_off, H5F_ACC_RDWR, H5P_DEFAULT);
    H5Ldelete(h, "/sequences/offsets", H5P_DEFAULT);
    int64_t bad[] = {0, 299};
    hsize_t dims[1] = {2};
    hid_t sp = H5Screate_simple(1, dims, NULL);
    hid_t d = H5Dcreate2(h, "/sequences/offsets", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, bad);
    H5Dclose(d);
    H5Sclose(sp);
    H5Fclose(h);
    expect_failure(rs_test_cmd("route %s --router topk", short_off), 1, "shortoff.h5: /sequences/offsets: last offset is 299",
                   "T = 300");

    const char *rank = make_trace("rank.h5", -1);
    h = H5Fopen(rank, H5F_ACC_RDWR, H5P_DEFAULT);
    H5Ldelete(h, "/router/logits", H5P_DEFAULT);
    hsize_t d2[2] = {T, E};
    sp = H5Screate_simple(2, d2, NULL);
    d = H5Dcreate2(h, "/router/logits", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dclose(d);
    H5Sclose(sp);
    H5Fclose(h);
    expect_failure(rs_test_cmd("route %s --router topk", rank), 1, "rank.h5: /router/logits: expected 3 dimensions, found 2",
                   NULL);

    const char *nan = make_trace("nan.h5", (77 * L + 1) * E + 6);
    const char *dec = rs_test_path("nan-dec.h5");
    expect_failure(rs_test_cmd("route %s --router topk --out %s", nan, dec), 1,
                   "nan.h5: /router/logits: NaN value at token 77, layer 1, expert 6", NULL);
    ck_assert_msg(!rs_test_file_exists(dec), "a failed route left %s behind", dec);
    char *out = NULL, *err = NULL;
    ck_assert_int_eq(rs_test_run_cli(rs_test_cmd("route %s --router topk --skip-nonfinite", nan), &out, &err), 0);
    ck_assert_ptr_nonnull(strstr(err, "skipped 1 tokens"));
    free(out);
    free(err);
}
END_TEST

START_TEST(bad_router_and_parameters)
{
    const char *trace = make_trace("params.h5", -1);
    expect_failure(rs_test_cmd("route %s --router nosuch", trace), 1, "unknown router 'nosuch' (known: topk", NULL);
    expect_failure(rs_test_cmd("route %s --router topk:kk=2", trace), 1, "router topk: unknown parameter 'kk'", NULL);
    expect_failure(rs_test_cmd("route %s --router topk:k=0", trace), 1, "router topk: parameter k=0 out of range [1, 1024]",
                   NULL);
    expect_failure(rs_test_cmd("route %s --router topk:k=9", trace), 1, "parameter k=9 exceeds num_experts=8", "params.h5");
    expect_failure(rs_test_cmd("route %s --router topk:renorm=2", trace), 1, "parameter renorm: expected 0/1", NULL);
    expect_failure(rs_test_cmd("route %s --router topk:k=2,k=3", trace), 1, "router topk: parameter k given twice (k=2, then k=3)",
                   NULL);
    expect_failure(rs_test_cmd("route %s", trace), 2, "--router SPEC is required", NULL);
    expect_failure(rs_test_cmd("route %s --router topk --threads zero", trace), 2, "--threads", NULL);
    expect_failure("frobnicate", 2, "unknown command 'frobnicate'", NULL);
}
END_TEST

START_TEST(bad_configs)
{
    const char *broken = rs_test_path("broken.json");
    FILE *f = fopen(broken, "w");
    fputs("{\"traces\": [\"x.h5\"],\n \"routers\": [\"topk\"\n", f);
    fclose(f);
    expect_failure(rs_test_cmd("run %s", broken), 1, "broken.json: malformed JSON at line 3", NULL);
    expect_failure(rs_test_cmd("run %s", rs_test_path("absent.json")), 1, "absent.json: cannot open config", NULL);
    const char *twice = rs_test_path("twice.json");
    f = fopen(twice, "w");
    fputs("{\"traces\": [\"x.h5\"], \"routers\": [{\"name\": \"topk\", \"params\": {\"k\": 2, \"k\": 3}}]}\n", f);
    fclose(f);
    expect_failure(rs_test_cmd("run %s", twice), 1, "twice.json: routers[0].params.k: key given twice", NULL);
}
END_TEST

START_TEST(unwritable_outputs)
{
    const char *trace = make_trace("unw.h5", -1);
    /* a regular file where a directory should be: fails even for root */
    const char *blocker = rs_test_path("blocker");
    FILE *f = fopen(blocker, "w");
    fputs("x", f);
    fclose(f);
    const char *config = rs_test_path("unw.json");
    f = fopen(config, "w");
    fprintf(f, "{\"traces\": [\"%s\"], \"routers\": [\"topk\"], \"output\": \"%s/results\"}", trace, blocker);
    fclose(f);
    expect_failure(rs_test_cmd("run %s", config), 1, "blocker/results: cannot create directory: Not a directory", NULL);
    expect_failure(rs_test_cmd("route %s --router topk --out %s/dec.h5", trace, blocker), 1, "blocker", NULL);
    char csv[1100];
    snprintf(csv, sizeof csv, "%s/results/results.csv", blocker);
    ck_assert(!rs_test_file_exists(csv));
}
END_TEST

Suite *cli_suite(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("cli");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, route_prints_table_and_writes_decisions);
    tcase_add_test(tc, run_writes_tidy_csv_and_json);
    tcase_add_test(tc, run_keeps_only_named_outputs);
    tcase_add_test(tc, route_metrics_name_outputs);
    tcase_add_test(tc, route_metrics_take_parameters);
    tcase_add_test(tc, listing_commands);
    tcase_add_test(tc, bad_trace_inputs);
    tcase_add_test(tc, bad_router_and_parameters);
    tcase_add_test(tc, bad_configs);
    tcase_add_test(tc, unwritable_outputs);
    suite_add_tcase(s, tc);
    return s;
}
