/* Plugins end to end: the example plugin (examples/plugin_router) loads,
 * lists, routes from the command line and from a config, and selects what
 * topk selects; a metric family from a plugin measures; bad plugins (another
 * ABI version, another structure size) fail with one clear line. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test_util.h"
#include "workloads/trace/decisions_file.h"

static const char *plugin(void)
{
    const char *p = getenv("ROUTESIM_PLUGIN");
    ck_assert_msg(p != NULL, "ROUTESIM_PLUGIN is not set (run the tests through make check)");
    return p;
}

/* $ROUTESIM_TEST_PLUGINS/NAME.so: the plugins built from tests/plugins/. */
static const char *test_plugin(const char *name)
{
    static char path[1024];
    const char *dir = getenv("ROUTESIM_TEST_PLUGINS");
    ck_assert_msg(dir != NULL, "ROUTESIM_TEST_PLUGINS is not set (run the tests through make check)");
    snprintf(path, sizeof path, "%s/%s.so", dir, name);
    return path;
}

static const char *small_trace(void)
{
    static const int64_t offsets[] = {0, 40, 100};
    const char *path = rs_test_path("plugin-trace.h5");
    float *z = rs_test_random_logits(100, 2, 8, 4);
    rs_test_trace t = {.T = 100, .L = 2, .E = 8, .num_seq = 2, .offsets = offsets, .logits = z};
    rs_test_write_trace(path, &t);
    free(z);
    return path;
}

START_TEST(plugin_lists_and_routes)
{
    char cmd[4096], *out = NULL, *err = NULL;
    snprintf(cmd, sizeof cmd, "routers --plugin %s --json", plugin());
    ck_assert_int_eq(rs_test_run_cli(cmd, &out, NULL), 0);
    ck_assert_ptr_nonnull(strstr(out, "\"name\":\t\"temperature_topk\""));
    free(out);
    snprintf(cmd, sizeof cmd, "route %s --plugin %s --router temperature_topk:k=2,T=4 --out %s", small_trace(),
             plugin(), rs_test_path("plugin-dec.h5"));
    int rc = rs_test_run_cli(cmd, &out, &err);
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_ptr_nonnull(strstr(out, "temperature_topk:T=4,k=2"));
    free(out);
    free(err);
    /* its parameters are validated like a built-in's */
    snprintf(cmd, sizeof cmd, "route %s --plugin %s --router temperature_topk:T=0", small_trace(), plugin());
    ck_assert_int_eq(rs_test_run_cli(cmd, NULL, &err), 1);
    ck_assert_ptr_nonnull(strstr(err, "router temperature_topk: parameter T=0 out of range"));
    free(err);
}
END_TEST

START_TEST(plugin_from_config)
{
    const char *config = rs_test_path("plugin.json");
    FILE *f = fopen(config, "w");
    fprintf(f,
            "{\"plugins\": [\"%s\"], \"traces\": [\"%s\"], \"routers\": [\"topk:k=2\", {\"name\": "
            "\"temperature_topk\", \"params\": {\"k\": 2, \"T\": [0.5, 2]}}], \"metrics\": [\"load\"], "
            "\"output\": \"%s\"}",
            plugin(), small_trace(), rs_test_path("plugin-out"));
    fclose(f);
    char cmd[4096], *out = NULL, *err = NULL;
    snprintf(cmd, sizeof cmd, "run %s", config);
    int rc = rs_test_run_cli(cmd, &out, &err);
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_ptr_nonnull(strstr(out, "temperature_topk:T=0.5,k=2"));
    ck_assert_ptr_nonnull(strstr(out, "temperature_topk:T=2,k=2"));
    free(out);
    free(err);
}
END_TEST

/* The ids of a decisions file, [T, L, kmax]. */
static int32_t *read_ids(const char *path, size_t *cells)
{
    rs_decisions_reader *r = NULL;
    rs_error err = {{0}};
    int64_t T = 0;
    int L = 0, kmax = 0;
    ck_assert_msg(rs_decisions_reader_open(&r, path, &T, &L, &kmax, &err) == 0, "%s", err.msg);
    *cells = (size_t)T * (size_t)L * (size_t)kmax;
    int32_t *ids = malloc(*cells * sizeof *ids);
    float *weights = malloc(*cells * sizeof *weights);
    ck_assert_msg(rs_decisions_reader_read(r, 0, (int)T, ids, weights, &err) == 0, "%s", err.msg);
    rs_decisions_reader_close(r);
    free(weights);
    return ids;
}

/* The example plugin's selection is rs_topk_indices, the topk router's:
 * the same experts in the same order, with rows long enough for the
 * vectorised path (E = 64) and with ties (logits rounded to 1/4). */
START_TEST(plugin_selects_as_topk)
{
    static const int64_t offsets[] = {0, 150, 300};
    const char *trace = rs_test_path("plugin-trace-64.h5");
    float *z = rs_test_random_logits(300, 2, 64, 11);
    for (int i = 0; i < 300 * 2 * 64; i++)
        z[i] = (float)(int)(z[i] * 4.0f) / 4.0f;
    rs_test_trace t = {.T = 300, .L = 2, .E = 64, .num_seq = 2, .offsets = offsets, .logits = z};
    rs_test_write_trace(trace, &t);
    free(z);
    for (int k = 1; k <= 20; k += 19) {
        char cmd[4096], *err = NULL;
        snprintf(cmd, sizeof cmd, "route %s --plugin %s --router temperature_topk:k=%d,T=2 --metrics none --out %s",
                 trace, plugin(), k, rs_test_path("plugin-dec-tt.h5"));
        ck_assert_msg(rs_test_run_cli(cmd, NULL, &err) == 0, "%s", err);
        free(err);
        snprintf(cmd, sizeof cmd, "route %s --router topk:k=%d --metrics none --out %s", trace, k,
                 rs_test_path("plugin-dec-topk.h5"));
        ck_assert_msg(rs_test_run_cli(cmd, NULL, &err) == 0, "%s", err);
        free(err);
        size_t n_tt = 0, n_topk = 0;
        int32_t *tt = read_ids(rs_test_path("plugin-dec-tt.h5"), &n_tt);
        int32_t *topk = read_ids(rs_test_path("plugin-dec-topk.h5"), &n_topk);
        ck_assert_uint_eq(n_tt, n_topk);
        ck_assert_int_eq(memcmp(tt, topk, n_tt * sizeof *tt), 0);
        free(tt);
        free(topk);
    }
}
END_TEST

/* The value of one row of `route`'s table: "NAME   VALUE". */
static double table_value(const char *out, const char *name)
{
    const char *row = strstr(out, name);
    ck_assert_msg(row != NULL, "no row %s in:\n%s", name, out);
    double v = -1;
    ck_assert_int_eq(sscanf(row + strlen(name), "%lf", &v), 1);
    return v;
}

/* 100 tokens, 2 layers, top-2: 100 tokens per layer (mean), 2 * 100 * 2
 * assignments (sum over layers). */
START_TEST(plugin_metric_measures)
{
    char cmd[4096], *out = NULL, *err = NULL;
    snprintf(cmd, sizeof cmd, "route %s --plugin %s --router topk:k=2 --metrics load,plugin_tokens", small_trace(),
             test_plugin("metric_tokens"));
    int rc = rs_test_run_cli(cmd, &out, &err);
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_double_eq(table_value(out, "plugin_tokens.tokens"), 100);
    ck_assert_double_eq(table_value(out, "plugin_tokens.assignments"), 400);
    ck_assert_ptr_nonnull(strstr(out, "load.maxvio"));
    free(out);
    free(err);
    /* listed like a built-in family */
    snprintf(cmd, sizeof cmd, "metrics --plugin %s plugin_tokens", test_plugin("metric_tokens"));
    ck_assert_int_eq(rs_test_run_cli(cmd, &out, NULL), 0);
    ck_assert_ptr_nonnull(strstr(out, "plugin_tokens.assignments"));
    free(out);
    /* unknown without the plugin, like any unknown family */
    snprintf(cmd, sizeof cmd, "route %s --router topk:k=2 --metrics plugin_tokens", small_trace());
    ck_assert_int_eq(rs_test_run_cli(cmd, NULL, &err), 1);
    ck_assert_ptr_nonnull(strstr(err, "plugin_tokens"));
    free(err);
}
END_TEST

START_TEST(bad_plugins_fail_clearly)
{
    char cmd[4096], *err = NULL;
    snprintf(cmd, sizeof cmd, "routers --plugin %s", rs_test_path("no-such-plugin.so"));
    ck_assert_int_eq(rs_test_run_cli(cmd, NULL, &err), 1);
    ck_assert_ptr_nonnull(strstr(err, "no-such-plugin.so: cannot open plugin"));
    free(err);
    const char *bad = getenv("ROUTESIM_BAD_PLUGIN");
    ck_assert_ptr_nonnull(bad);
    snprintf(cmd, sizeof cmd, "routers --plugin %s", bad);
    ck_assert_int_eq(rs_test_run_cli(cmd, NULL, &err), 1);
    ck_assert_ptr_nonnull(strstr(err, "plugin built for plugin ABI"));
    free(err);
    /* right version, but a structure of another size: the message names it */
    snprintf(cmd, sizeof cmd, "routers --plugin %s", test_plugin("bad_sizes"));
    ck_assert_int_eq(rs_test_run_cli(cmd, NULL, &err), 1);
    ck_assert_ptr_nonnull(strstr(err, "bad_sizes.so: plugin built with sizeof(rs_decisions) = "));
    ck_assert_ptr_null(strchr(strchr(err, '\n') + 1, '\n')); /* one line */
    free(err);
    const char *text = rs_test_path("not-a-plugin.so");
    FILE *f = fopen(text, "w");
    fputs("hello\n", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "routers --plugin %s", text);
    ck_assert_int_eq(rs_test_run_cli(cmd, NULL, &err), 1);
    ck_assert_ptr_nonnull(strstr(err, "not-a-plugin.so: cannot load plugin"));
    free(err);
}
END_TEST

Suite *plugins_suite(void)
{
    Suite *s = suite_create("plugins");
    TCase *tc = tcase_create("plugins");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, plugin_lists_and_routes);
    tcase_add_test(tc, plugin_from_config);
    tcase_add_test(tc, plugin_selects_as_topk);
    tcase_add_test(tc, plugin_metric_measures);
    tcase_add_test(tc, bad_plugins_fail_clearly);
    suite_add_tcase(s, tc);
    return s;
}
