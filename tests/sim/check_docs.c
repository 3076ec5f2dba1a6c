/* The reference sections of docs/routers.md and docs/metrics.md are what the
 * registries print, so the docs cannot drift from the code. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test_util.h"

static void trim_newlines(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '\n')
        s[--n] = '\0';
}

static void check_generated(const char *doc, const char *command)
{
    const char *src = getenv("ROUTESIM_SRC");
    ck_assert_msg(src != NULL, "ROUTESIM_SRC is not set (run the tests through make check)");
    char path[2048], begin[256], args[256];
    snprintf(path, sizeof path, "%s/%s", src, doc);
    snprintf(begin, sizeof begin, "<!-- BEGIN GENERATED: routesim %s --markdown -->\n", command);
    snprintf(args, sizeof args, "%s --markdown", command);
    char *text = rs_test_read_file(path);
    ck_assert_msg(text != NULL, "cannot read %s", path);
    char *start = strstr(text, begin);
    ck_assert_msg(start != NULL, "%s has no generated section", doc);
    start += strlen(begin);
    char *end = strstr(start, "<!-- END GENERATED -->");
    ck_assert_ptr_nonnull(end);
    *end = '\0';
    char *out = NULL;
    ck_assert_int_eq(rs_test_run_cli(args, &out, NULL), 0);
    trim_newlines(start);
    trim_newlines(out);
    ck_assert_msg(strcmp(start, out) == 0, "%s is out of date: run scripts/update-docs.sh", doc);
    free(out);
    free(text);
}

START_TEST(router_reference_in_step)
{
    check_generated("docs/routers.md", "routers");
}
END_TEST

START_TEST(metric_reference_in_step)
{
    check_generated("docs/metrics.md", "metrics");
}
END_TEST

Suite *docs_suite(void)
{
    Suite *s = suite_create("docs");
    TCase *tc = tcase_create("docs");
    tcase_add_test(tc, router_reference_in_step);
    tcase_add_test(tc, metric_reference_in_step);
    suite_add_tcase(s, tc);
    return s;
}
