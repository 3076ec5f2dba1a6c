/* Plugins end to end: the example plugin (examples/plugin_router) loads,
 * lists, routes from the command line and from a config; bad plugins fail
 * with one clear line. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test_util.h"

static const char *plugin(void)
{
    const char *p = getenv("ROUTESIM_PLUGIN");
    ck_assert_msg(p != NULL, "ROUTESIM_PLUGIN is not set (run the tests through make check)");
    return p;
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
    tcase_add_test(tc, bad_plugins_fail_clearly);
    suite_add_tcase(s, tc);
    return s;
}
