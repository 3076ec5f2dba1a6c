/* How many runs a config expands into and what they are called: labels
 * stay unique, and the number of runs is bounded. Expected labels are
 * written out by hand. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/config/config.h"

START_TEST(repeated_labels_are_numbered_and_unique)
{
    rs_config cfg;
    rs_error err = {{0}};
    const char *text = "{\"traces\": [\"t.h5\"], \"routers\": [\"topk\", \"topk\", \"topk\", "
                       "{\"name\": \"topk\", \"label\": \"topk#2\"}, \"topk\"]}";
    ck_assert_msg(rs_config_parse(&cfg, text, "c.json", &err) == 0, "%s", err.msg);
    const char *want[] = {"topk", "topk#2", "topk#3", "topk#2#2", "topk#4"};
    ck_assert_int_eq(cfg.num_routers, 5);
    for (int r = 0; r < 5; r++)
        ck_assert_str_eq(cfg.routers[r].label, want[r]);
    rs_config_free(&cfg);
}
END_TEST

/* A few kilobytes of lists and seeds must not ask for gigabytes. */
START_TEST(runs_are_bounded)
{
    char *text = malloc(16384);
    ck_assert_ptr_nonnull(text);
    size_t len = (size_t)snprintf(text, 16384, "{\"traces\": [\"t.h5\"], \"seeds\": 1000, \"routers\": "
                                                "[{\"name\": \"noisy_topk\", \"params\": {\"k\": [");
    for (int i = 1; i <= 300; i++)
        len += (size_t)snprintf(text + len, 16384 - len, "%s%d", i > 1 ? ", " : "", i);
    len += (size_t)snprintf(text + len, 16384 - len, "], \"sigma\": [");
    for (int i = 1; i <= 300; i++)
        len += (size_t)snprintf(text + len, 16384 - len, "%s0.%03d", i > 1 ? ", " : "", i);
    snprintf(text + len, 16384 - len, "]}}]}");
    rs_config cfg;
    rs_error err = {{0}};
    ck_assert_int_eq(rs_config_parse(&cfg, text, "c.json", &err), -1);
    ck_assert_str_eq(err.msg, "c.json: seeds: more than 100000 runs in the config (1000 seeds of each stochastic "
                              "router)");
    rs_config_free(&cfg);

    /* 2 entries of 300 x 300 = 90000 runs each */
    char *two = malloc(32768);
    ck_assert_ptr_nonnull(two);
    char *entry = strstr(text, "{\"name\"");
    entry[strlen(entry) - 2] = '\0'; /* drop "]}" */
    snprintf(two, 32768, "{\"traces\": [\"t.h5\"], \"routers\": [%s, %s]}", entry, entry);
    ck_assert_int_eq(rs_config_parse(&cfg, two, "c.json", &err), -1);
    ck_assert_str_eq(err.msg, "c.json: routers[1]: more than 100000 runs in the config (routers after expanding lists)");
    rs_config_free(&cfg);
    free(two);
    free(text);
}
END_TEST

Suite *config_runs_suite(void)
{
    Suite *s = suite_create("config_runs");
    TCase *tc = tcase_create("config_runs");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, repeated_labels_are_numbered_and_unique);
    tcase_add_test(tc, runs_are_bounded);
    suite_add_tcase(s, tc);
    return s;
}
