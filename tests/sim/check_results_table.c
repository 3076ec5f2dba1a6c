/* The terminal table of results (rs_results_print_table_width): distinct
 * column headers, "-" for a value not reported and "nan" for an undefined
 * one, histograms as their largest bin, columns wrapped to a width. The
 * results are built by hand; expected texts are written out from them. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/results/results.h"

static char *table_text(const rs_results *r, int width)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    ck_assert_ptr_nonnull(f);
    rs_results_print_table_width(r, f, width);
    fclose(f);
    return text;
}

/* The line of the table starting with `start` (a metric name), or NULL. */
static const char *line_of(const char *text, const char *start)
{
    size_t len = strlen(start);
    for (const char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        if (strncmp(line, start, len) == 0)
            return line;
    return NULL;
}

/* The whitespace-separated fields of one line, into fields[0..max). */
static int fields_of(const char *line, char fields[][64], int max)
{
    int n = 0;
    const char *s = line;
    while (*s && *s != '\n' && n < max) {
        while (*s == ' ')
            s++;
        if (!*s || *s == '\n')
            break;
        size_t len = strcspn(s, " \n");
        snprintf(fields[n++], 64, "%.*s", (int)len, s);
        s += len;
    }
    return n;
}

static int count_of(const char *text, const char *what)
{
    int n = 0;
    for (const char *s = strstr(text, what); s; s = strstr(s + 1, what))
        n++;
    return n;
}

static int add_run(rs_results *r, const char *label, const char *trace)
{
    int run = rs_results_add_run(r, label, trace, "router", "", label);
    ck_assert_int_ge(run, 0);
    return run;
}

static void add_row(rs_results *r, int run, const char *metric, const char *key, int layer, double value)
{
    ck_assert_int_eq(rs_results_add_row(r, run, metric, key, layer, value), 0);
}

/* Labels 34 and 33 characters long, alike in their first 30: cut to 28 they
 * were the same header twice. */
START_TEST(long_labels_that_differ_at_the_end_get_distinct_headers)
{
    rs_results r;
    rs_results_init(&r);
    int a = add_run(&r, "expert_choice:capacity_factor=1.25", "t.h5");
    int b = add_run(&r, "expert_choice:capacity_factor=1.5", "t.h5");
    add_row(&r, a, "load.cv", "", -1, 0.5);
    add_row(&r, b, "load.cv", "", -1, 0.25);
    char *text = table_text(&r, 0);
    char header[8][64], values[8][64];
    ck_assert_int_eq(fields_of(line_of(text, "metric (all layers)"), header, 8), 5);
    ck_assert_str_eq(header[3], "expert_choice:capacit.=1.25");
    ck_assert_str_eq(header[4], "expert_choice:capacit.=1.5");
    ck_assert_int_eq(fields_of(line_of(text, "load.cv"), values, 8), 3);
    ck_assert_str_eq(values[1], "0.5000");
    ck_assert_str_eq(values[2], "0.2500");
    free(text);
    rs_results_free(&r);
}
END_TEST

/* A parameter every run shares (k=2), then one every run of a router shares
 * (alpha=0.125 of ema_penalty), is left out of the headers and named once
 * above the table. */
START_TEST(shared_parameters_leave_the_headers)
{
    rs_results r;
    rs_results_init(&r);
    const char *labels[] = {"ema_penalty:alpha=0.125,k=2,lambda=10", "ema_penalty:alpha=0.125,k=2,lambda=11",
                            "topk:k=2"};
    for (int i = 0; i < 3; i++)
        add_row(&r, add_run(&r, labels[i], "t.h5"), "load.cv", "", -1, i);
    char *text = table_text(&r, 0);
    ck_assert_msg(strstr(text, "\ncolumns leave out k=2 (every run has it)\n"
                               "ema_penalty:... columns leave out alpha=0.125 (every run has it)\n"),
                  "%s", text);
    char header[8][64];
    ck_assert_int_eq(fields_of(line_of(text, "metric (all layers)"), header, 8), 6);
    ck_assert_str_eq(header[3], "ema_penalty:lambda=10");
    ck_assert_str_eq(header[4], "ema_penalty:lambda=11");
    ck_assert_str_eq(header[5], "topk");
    free(text);
    rs_results_free(&r);
}
END_TEST

/* Names of the user's own, alike in their first 40 characters: no shorter
 * text tells them apart, so the columns are numbered and the labels listed. */
START_TEST(labels_alike_but_for_their_end_are_numbered)
{
    rs_results r;
    rs_results_init(&r);
    const char *labels[] = {"a_long_name_of_my_own_for_this_run_number_one",
                            "a_long_name_of_my_own_for_this_run_number_two"};
    for (int i = 0; i < 2; i++)
        add_row(&r, add_run(&r, labels[i], "t.h5"), "load.cv", "", -1, i);
    char *text = table_text(&r, 0);
    ck_assert_ptr_nonnull(strstr(text, "column #1: a_long_name_of_my_own_for_this_run_number_one\n"));
    ck_assert_ptr_nonnull(strstr(text, "column #2: a_long_name_of_my_own_for_this_run_number_two\n"));
    char header[8][64];
    ck_assert_int_eq(fields_of(line_of(text, "metric (all layers)"), header, 8), 5);
    ck_assert_str_eq(header[3], "#1");
    ck_assert_str_eq(header[4], "#2");
    free(text);
    rs_results_free(&r);
}
END_TEST

/* One header too wide is cut; the others, and a label of the user's own,
 * stay as they are (the runs of capacity_drops.json). */
START_TEST(only_the_wide_header_is_cut)
{
    rs_results r;
    rs_results_init(&r);
    const char *labels[] = {"topk:capacity_factor=1,group=sequence,k=2", "topk:capacity_factor=1.25,group=sequence,k=2",
                            "topk probs-drop", "gshard_top2:capacity_factor=1,group=sequence",
                            "expert_choice:group=sequence"};
    for (int i = 0; i < 5; i++)
        add_row(&r, add_run(&r, labels[i], "t.h5"), "load.cv", "", -1, i);
    char *text = table_text(&r, 0);
    ck_assert_msg(strstr(text, "\ncolumns leave out group=sequence (every run has it)\n"
                               "topk:... columns leave out k=2 (every run has it)\n"),
                  "%s", text);
    char header[10][64];
    ck_assert_int_eq(fields_of(line_of(text, "metric (all layers)"), header, 10), 9);
    ck_assert_str_eq(header[3], "topk:capacity_factor=1");
    ck_assert_str_eq(header[4], "topk:capacity_factor=1.25");
    ck_assert_str_eq(header[5], "topk"); /* "topk probs-drop", whole, in two fields */
    ck_assert_str_eq(header[6], "probs-drop");
    ck_assert_str_eq(header[7], "gshard_top2:capacit.=1");
    ck_assert_str_eq(header[8], "expert_choice");
    free(text);
    rs_results_free(&r);
}
END_TEST

START_TEST(short_labels_stay_whole)
{
    rs_results r;
    rs_results_init(&r);
    add_row(&r, add_run(&r, "topk:k=2", "t.h5"), "load.cv", "", -1, 1);
    add_row(&r, add_run(&r, "topk:k=4", "t.h5"), "load.cv", "", -1, 2);
    char *text = table_text(&r, 0);
    char header[8][64];
    ck_assert_int_eq(fields_of(line_of(text, "metric (all layers)"), header, 8), 5);
    ck_assert_str_eq(header[3], "topk:k=2");
    ck_assert_str_eq(header[4], "topk:k=4");
    ck_assert_ptr_null(strstr(text, "leave out"));
    free(text);
    rs_results_free(&r);
    /* one run: its label whole, however long */
    rs_results_init(&r);
    add_row(&r, add_run(&r, "expert_choice:capacity_factor=1.25,k=2", "t.h5"), "load.cv", "", -1, 1);
    text = table_text(&r, 0);
    ck_assert_int_eq(fields_of(line_of(text, "metric (all layers)"), header, 8), 4);
    ck_assert_str_eq(header[3], "expert_choice:capacity_factor=1.25,k=2");
    free(text);
    rs_results_free(&r);
}
END_TEST

/* Run a reports x as NaN, run b does not report it: "nan" and "-", and the
 * legend says what each means. */
START_TEST(nan_and_not_reported_differ)
{
    rs_results r;
    rs_results_init(&r);
    int a = add_run(&r, "a", "t.h5"), b = add_run(&r, "b", "t.h5");
    add_row(&r, a, "m.x", "", -1, NAN);
    add_row(&r, a, "m.y", "", -1, 3);
    add_row(&r, b, "m.y", "", -1, 4);
    add_row(&r, b, "m.x", "", 0, 7); /* a layer row: not the layer=all value */
    char *text = table_text(&r, 0);
    char values[8][64];
    ck_assert_int_eq(fields_of(line_of(text, "m.x"), values, 8), 3);
    ck_assert_str_eq(values[1], "nan");
    ck_assert_str_eq(values[2], "-");
    ck_assert_int_eq(fields_of(line_of(text, "m.y"), values, 8), 3);
    ck_assert_str_eq(values[1], "3");
    ck_assert_str_eq(values[2], "4");
    ck_assert_ptr_nonnull(strstr(text, "\n-: not reported for this run; nan: reported, undefined"));
    free(text);
    rs_results_free(&r);
}
END_TEST

START_TEST(no_legend_when_every_value_is_there)
{
    rs_results r;
    rs_results_init(&r);
    add_row(&r, add_run(&r, "a", "t.h5"), "m.y", "", -1, 3);
    char *text = table_text(&r, 0);
    ck_assert_ptr_null(strstr(text, "not reported"));
    ck_assert_ptr_null(strstr(text, "nan"));
    free(text);
    rs_results_free(&r);
}
END_TEST

/* 64 bins (expert=0..63) for two runs: run a's largest is expert 17
 * (0.5), run b's is expert 63 (0.25, after a NaN bin). The metric's own
 * parameter (m=16) stays in the name; a histogram of 8 bins prints whole. */
START_TEST(histograms_print_their_largest_bin)
{
    rs_results r;
    rs_results_init(&r);
    int a = add_run(&r, "a", "t.h5"), b = add_run(&r, "b", "t.h5");
    for (int e = 0; e < 64; e++) {
        char key[32];
        snprintf(key, sizeof key, "m=16;expert=%d", e);
        add_row(&r, a, "load.expert_share", key, -1, e == 17 ? 0.5 : 0.5 / 63);
        add_row(&r, b, "load.expert_share", key, -1, e == 5 ? NAN : e == 63 ? 0.25 : 0.75 / 62);
    }
    for (int k = 0; k < 8; k++) {
        char key[16];
        snprintf(key, sizeof key, "k=%d", k);
        add_row(&r, a, "activation.experts_per_token_hist", key, -1, k == 2);
    }
    add_row(&r, a, "load.cv", "", -1, 0.125);
    char *text = table_text(&r, 0);
    ck_assert_int_eq(count_of(text, "load.expert_share["), 2);
    char values[8][64];
    ck_assert_int_eq(fields_of(line_of(text, "load.expert_share[m=16;expert=*] max of 64 "), values, 8), 6);
    ck_assert_str_eq(values[4], "0.5000");
    ck_assert_str_eq(values[5], "0.2500");
    ck_assert_int_eq(fields_of(line_of(text, "load.expert_share[m=16;expert=*] at "), values, 8), 4);
    ck_assert_str_eq(values[2], "17");
    ck_assert_str_eq(values[3], "63");
    ck_assert_int_eq(count_of(text, "activation.experts_per_token_hist[k="), 8);
    ck_assert_int_eq(fields_of(line_of(text, "activation.experts_per_token_hist[k=2]"), values, 8), 3);
    ck_assert_str_eq(values[1], "1");
    ck_assert_str_eq(values[2], "-");
    ck_assert_ptr_nonnull(line_of(text, "load.cv "));
    ck_assert_ptr_nonnull(strstr(text, "every bin is in the results files"));
    free(text);
    rs_results_free(&r);
}
END_TEST

/* Pairs i < j of 8 experts: 28 bins, neither item taking more than 16
 * values; together they are one histogram, its bin named by both items. */
START_TEST(histograms_over_two_items)
{
    rs_results r;
    rs_results_init(&r);
    int a = add_run(&r, "a", "t.h5");
    for (int i = 0; i < 8; i++)
        for (int j = i + 1; j < 8; j++) {
            char key[32];
            snprintf(key, sizeof key, "i=%d;j=%d", i, j);
            add_row(&r, a, "affinity.coactivation", key, -1, i == 2 && j == 5 ? 0.75 : 0.01);
        }
    char *text = table_text(&r, 0);
    char values[8][64];
    ck_assert_int_eq(fields_of(line_of(text, "affinity.coactivation[i=*;j=*] max of 28 "), values, 8), 5);
    ck_assert_str_eq(values[4], "0.7500");
    ck_assert_int_eq(fields_of(line_of(text, "affinity.coactivation[i=*;j=*] at "), values, 8), 3);
    ck_assert_str_eq(values[2], "i=2;j=5");
    ck_assert_int_eq(count_of(text, "affinity.coactivation["), 2);
    free(text);
    rs_results_free(&r);
}
END_TEST

/* Intervals (stat=ci_low, stat=ci_high) of a histogram are histograms of
 * their own, not bins of the value's. */
START_TEST(interval_rows_are_not_bins)
{
    rs_results r;
    rs_results_init(&r);
    int a = add_run(&r, "a", "t.h5");
    for (int e = 0; e < 20; e++)
        for (int s = 0; s < 3; s++) {
            char key[48];
            snprintf(key, sizeof key, "expert=%d%s", e, s == 0 ? "" : s == 1 ? ";stat=ci_high" : ";stat=ci_low");
            add_row(&r, a, "load.expert_share", key, -1, s == 1 ? 0.1 : s == 2 ? 0.01 : 0.05);
        }
    char *text = table_text(&r, 0);
    char values[8][64];
    ck_assert_int_eq(fields_of(line_of(text, "load.expert_share[expert=*] max of 20 "), values, 8), 5);
    ck_assert_str_eq(values[4], "0.0500");
    ck_assert_int_eq(fields_of(line_of(text, "load.expert_share[expert=*;stat=ci_high] max of 20 "), values, 8), 5);
    ck_assert_str_eq(values[4], "0.1000");
    ck_assert_ptr_nonnull(line_of(text, "load.expert_share[expert=*;stat=ci_low] max of 20 "));
    ck_assert_int_eq(count_of(text, "load.expert_share["), 6);
    free(text);
    rs_results_free(&r);
}
END_TEST

/* A breakdown's 20 domains are rows asked for, one line each; its
 * per-expert histogram still summarises within each domain. */
START_TEST(breakdown_groups_are_not_bins)
{
    rs_results r;
    rs_results_init(&r);
    int a = add_run(&r, "a", "t.h5");
    for (int d = 0; d < 20; d++) {
        char key[48];
        snprintf(key, sizeof key, "domain=d%d", d);
        add_row(&r, a, "srp.srp", key, -1, 0.5);
        for (int e = 0; e < 20; e++) {
            snprintf(key, sizeof key, "expert=%d;domain=d%d", e, d);
            add_row(&r, a, "load.expert_share", key, -1, 0.05);
        }
    }
    char *text = table_text(&r, 0);
    ck_assert_int_eq(count_of(text, "srp.srp[domain=d"), 20);
    ck_assert_ptr_nonnull(line_of(text, "srp.srp[domain=d19] "));
    ck_assert_ptr_nonnull(line_of(text, "load.expert_share[expert=*;domain=d7] max of 20 "));
    ck_assert_int_eq(count_of(text, "load.expert_share["), 40);
    free(text);
    rs_results_free(&r);
}
END_TEST

/* Five columns 19 characters wide (their labels) beside 19 of metric names:
 * 19 + 2 * (1 + 19) = 59 characters hold two columns a block, 58 one. */
START_TEST(columns_wrap_to_the_width)
{
    rs_results r;
    rs_results_init(&r);
    for (int i = 0; i < 5; i++) {
        char label[48];
        snprintf(label, sizeof label, "router_number_%d:k=%d", i, i); /* 19 characters */
        add_row(&r, add_run(&r, label, "t.h5"), "load.cv", "", -1, i);
    }
    char *one = table_text(&r, 58), *two = table_text(&r, 59), *all = table_text(&r, 0);
    ck_assert_int_eq(count_of(one, "metric (all layers)"), 5);
    ck_assert_int_eq(count_of(two, "metric (all layers)"), 3);
    ck_assert_int_eq(count_of(all, "metric (all layers)"), 1);
    for (int i = 0; i < 5; i++) {
        char label[48];
        snprintf(label, sizeof label, "router_number_%d:k=%d", i, i);
        ck_assert_int_eq(count_of(one, label), 1);
        ck_assert_int_eq(count_of(two, label), 1);
    }
    ck_assert_int_eq(count_of(two, "load.cv"), 3);
    free(one);
    free(two);
    free(all);
    rs_results_free(&r);
}
END_TEST

/* One table per trace, each with its own runs. */
START_TEST(one_table_per_trace)
{
    rs_results r;
    rs_results_init(&r);
    int a = add_run(&r, "a", "x.h5"), b = add_run(&r, "b", "y.h5"), c = add_run(&r, "c", "x.h5");
    add_row(&r, a, "m.y", "", -1, 1);
    add_row(&r, b, "m.y", "", -1, 2);
    add_row(&r, c, "m.z", "", -1, 3);
    char *text = table_text(&r, 0);
    const char *x = strstr(text, "trace: x.h5\n"), *y = strstr(text, "trace: y.h5\n");
    ck_assert(x && y && x < y);
    char values[8][64];
    ck_assert_int_eq(fields_of(line_of(x, "m.y"), values, 8), 3); /* a: 1, c: not reported */
    ck_assert_str_eq(values[1], "1");
    ck_assert_str_eq(values[2], "-");
    ck_assert_int_eq(fields_of(line_of(y, "m.y"), values, 8), 2);
    ck_assert_str_eq(values[1], "2");
    free(text);
    rs_results_free(&r);
}
END_TEST

Suite *results_table_suite(void)
{
    Suite *s = suite_create("results_table");
    TCase *tc = tcase_create("table");
    tcase_add_test(tc, long_labels_that_differ_at_the_end_get_distinct_headers);
    tcase_add_test(tc, shared_parameters_leave_the_headers);
    tcase_add_test(tc, labels_alike_but_for_their_end_are_numbered);
    tcase_add_test(tc, only_the_wide_header_is_cut);
    tcase_add_test(tc, short_labels_stay_whole);
    tcase_add_test(tc, nan_and_not_reported_differ);
    tcase_add_test(tc, no_legend_when_every_value_is_there);
    tcase_add_test(tc, histograms_print_their_largest_bin);
    tcase_add_test(tc, histograms_over_two_items);
    tcase_add_test(tc, interval_rows_are_not_bins);
    tcase_add_test(tc, breakdown_groups_are_not_bins);
    tcase_add_test(tc, columns_wrap_to_the_width);
    tcase_add_test(tc, one_table_per_trace);
    suite_add_tcase(s, tc);
    return s;
}
