/* Figure layout, checked in the generated gnuplot scripts: a sweep over
 * decades gets a log x axis, every series of a figure its own colour and
 * dash, long bar labels horizontal bars with wrapped tic labels, blank
 * figures are left out with one line, point labels go where they cross no
 * line and stay in the plot area. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "plots/plot_internal.h"
#include "tests/test_util.h"

/* A results directory holding `rows` (results.csv lines after the header). */
static const char *results_dir(const char *name, const char *rows)
{
    const char *dir = rs_test_path(name);
    ck_assert_int_eq(mkdir(dir, 0777), 0);
    FILE *f = fopen(rs_test_cmd("%s/results.csv", dir), "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "run,trace,router,params,metric,key,layer,value\n%s", rows);
    fclose(f);
    return dir;
}

static char *plot_text(const char *dir, const char *name)
{
    char *text = rs_test_read_file(rs_test_cmd("%s/plots/%s", dir, name));
    ck_assert_msg(text != NULL, "missing %s/plots/%s", dir, name);
    return text;
}

static int count_of(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

START_TEST(wrap_breaks_after_separators)
{
    char buf[256];
    /* 24 characters a line: "topk:capacity_factor=1.25," is 26, so the break goes after "topk:" */
    ck_assert_int_eq(rs_plot_wrap("topk:capacity_factor=1.25,group=sequence,k=2", 24, buf, sizeof buf), 3);
    ck_assert_str_eq(buf, "topk:\ncapacity_factor=1.25,\ngroup=sequence,k=2");
    /* a separator just past the width stays on its line rather than starting the next */
    ck_assert_int_eq(rs_plot_wrap("topk:capacity_factor=1,group=sequence", 22, buf, sizeof buf), 2);
    ck_assert_str_eq(buf, "topk:capacity_factor=1,\ngroup=sequence");
    /* no separator: cut at the width; spaces do not start a line */
    ck_assert_int_eq(rs_plot_wrap("abcdefghij", 4, buf, sizeof buf), 3);
    ck_assert_str_eq(buf, "abcd\nefgh\nij");
    ck_assert_int_eq(rs_plot_wrap("hit rate of the cache", 10, buf, sizeof buf), 3);
    ck_assert_str_eq(buf, "hit rate\nof the\ncache");
    /* words before other separators: the space at 23 rather than the '/' at 28 */
    ck_assert_int_eq(rs_plot_wrap("device imbalance ratio (max/mean - 1)", 30, buf, sizeof buf), 2);
    ck_assert_str_eq(buf, "device imbalance ratio\n(max/mean - 1)");
    ck_assert_int_eq(rs_plot_wrap("short", 24, buf, sizeof buf), 1);
    ck_assert_str_eq(buf, "short");
}
END_TEST

/* (colour, dash) of series i as rs_plot_series_style writes it: " lt C" alone
 * means the line type's own dash (C). */
static void style_of(int index, int *colour, char *dash, size_t size)
{
    char text[128] = "";
    FILE *f = fmemopen(text, sizeof text, "w");
    ck_assert_ptr_nonnull(f);
    rs_plot_series_style(f, index);
    fclose(f);
    ck_assert_int_eq(sscanf(text, " lt %d", colour), 1);
    const char *dt = strstr(text, " dt ");
    if (dt)
        snprintf(dash, size, "%.*s", (int)strcspn(dt + 4, " "), dt + 4);
    else
        snprintf(dash, size, "lt%d", *colour);
}

START_TEST(series_styles_differ_in_colour_and_dash)
{
    /* the first eight are the palette's line types; then each colour comes back with another dash */
    int colour[64];
    char dash[64][32];
    for (int i = 0; i < 64; i++)
        style_of(i, &colour[i], dash[i], sizeof dash[i]);
    for (int i = 0; i < 8; i++)
        ck_assert_str_eq(dash[i], rs_test_cmd("lt%d", i + 1));
    for (int i = 0; i < 64; i++)
        for (int j = 0; j < i; j++)
            ck_assert_msg(colour[i] != colour[j] || strcmp(dash[i], dash[j]) != 0,
                          "series %d and %d share colour %d and dash %s", j, i, colour[i], dash[i]);
    /* series 9 (index 8): colour 1 (blue) with line type 2's dash "2" */
    ck_assert_int_eq(colour[8], 1);
    ck_assert_str_eq(dash[8], "2");
}
END_TEST

START_TEST(a_figure_of_ten_lines_repeats_no_style)
{
    /* ten runs, two layers each: a layers figure with ten lines */
    char rows[4096] = "";
    size_t used = 0;
    for (int r = 0; r < 10; r++)
        for (int l = 0; l < 2; l++)
            used += (size_t)snprintf(rows + used, sizeof rows - used, "r%d,t.h5,topk,k=%d,load.maxvio,,%d,%g\n", r,
                                     r + 1, l, 0.1 * (r + 1) + 0.05 * l);
    const char *dir = results_dir("ten_lines", rows);
    char *err = NULL;
    int rc = rs_test_run_cli(rs_test_cmd("plot %s --no-render --kind layers", dir), NULL, &err);
    ck_assert_msg(rc == 0, "plot: %s", err);
    free(err);
    char *gp = plot_text(dir, "layers-load-maxvio.gp");
    /* every plot clause's " lt C [dt D]": no two alike */
    char seen[10][64];
    int n = 0;
    for (const char *p = strstr(gp, "with linespoints"); p; p = strstr(p + 1, "with linespoints")) {
        ck_assert_int_lt(n, 10);
        const char *lt = strstr(p, " lt ");
        ck_assert_ptr_nonnull(lt);
        size_t len = strcspn(lt, "\n");
        const char *title = strstr(lt, " title ");
        if (title && (size_t)(title - lt) < len)
            len = (size_t)(title - lt);
        snprintf(seen[n], sizeof seen[n], "%.*s", (int)len, lt);
        for (int j = 0; j < n; j++)
            ck_assert_msg(strcmp(seen[j], seen[n]) != 0, "lines %d and %d both '%s'", j, n, seen[n]);
        n++;
    }
    ck_assert_int_eq(n, 10);
    ck_assert_msg(strstr(gp, " lt 1 dt 2 pt 5") && strstr(gp, " lt 2 dt 3 pt 9"), "lines 9 and 10:\n%s", gp);
    free(gp);
}
END_TEST

START_TEST(sweeps_over_decades_get_a_log_axis)
{
    /* u = 1e-4, 1e-3, 1e-2: max/min = 100; k = 1, 2, 4: max/min = 4 */
    char rows[2048] = "";
    size_t used = 0;
    const char *u[] = {"0.0001", "0.001", "0.01"};
    for (int i = 0; i < 3; i++) {
        used += (size_t)snprintf(rows + used, sizeof rows - used, "afb:u=%s,t.h5,aux_free_bias,u=%s,load.maxvio,,all,%g\n",
                                 u[i], u[i], 0.5 - 0.1 * i);
        used += (size_t)snprintf(rows + used, sizeof rows - used, "topk:k=%d,t.h5,topk,k=%d,load.cv,,all,%g\n", 1 << i,
                                 1 << i, 0.3 + 0.1 * i);
    }
    const char *dir = results_dir("decades", rows);
    char *err = NULL;
    int rc = rs_test_run_cli(rs_test_cmd("plot %s --no-render --kind sweep", dir), NULL, &err);
    ck_assert_msg(rc == 0, "plot: %s", err);
    free(err);
    char *log_gp = plot_text(dir, "sweep-load-maxvio-vs-u.gp");
    ck_assert_msg(strstr(log_gp, "set logscale x 10\n") != NULL, "u spans two decades:\n%s", log_gp);
    ck_assert_msg(strstr(log_gp, "set xtics (\"0.0001\" 0.0001, \"0.001\" 0.001, \"0.01\" 0.01)") != NULL, "%s", log_gp);
    free(log_gp);
    char *lin_gp = plot_text(dir, "sweep-load-cv-vs-k.gp");
    ck_assert_msg(strstr(lin_gp, "set logscale") == NULL, "k = 1..4 stays linear:\n%s", lin_gp);
    free(lin_gp);
}
END_TEST

START_TEST(long_bar_labels_make_horizontal_bars_with_wrapped_tics)
{
    const char *dir = results_dir("long_labels",
                                  "topk:capacity_factor=1.25;group=sequence;k=2,t.h5,topk,"
                                  "capacity_factor=1.25;group=sequence;k=2,load.maxvio,,all,0.25\n"
                                  "expert_choice:group=sequence,t.h5,expert_choice,group=sequence,load.maxvio,,all,0.5\n"
                                  "short,t.h5,topk,k=1,load.cv,,all,0.5\nshorter,t.h5,topk,k=2,load.cv,,all,0.25\n");
    char *err = NULL;
    int rc = rs_test_run_cli(rs_test_cmd("plot %s --no-render --kind bars", dir), NULL, &err);
    ck_assert_msg(rc == 0, "plot: %s", err);
    free(err);
    char *gp = plot_text(dir, "bars-load-maxvio.gp");
    ck_assert_msg(strstr(gp, "with boxxyerror") != NULL, "labels over 16 characters: horizontal bars\n%s", gp);
    /* the tic labels are given in the script, wrapped after separators at 24 characters */
    ck_assert_msg(strstr(gp, "set ytics scale 0 (\"topk:\\ncapacity_factor=1.25;\\ngroup=sequence;k=2\" 0, "
                             "\"expert_choice:\\ngroup=sequence\" 1)") != NULL,
                  "wrapped tics:\n%s", gp);
    /* three lines a bar: 0.06 + 0.14 * 3 in per bar and 0.75 in besides, 1.71 in (above the 1.6 in
     * floor); two columns: 0.85 + 2 * (0.06 + 0.16 * 3) = 1.93 in */
    ck_assert_msg(strstr(gp, "height = (size eq 'double') ? 1.93 : 1.71\n") != NULL, "height:\n%s", gp);
    free(gp);
    char *upright = plot_text(dir, "bars-load-cv.gp");
    ck_assert(strstr(upright, "with boxes") && strstr(upright, "xtic(5)") && !strstr(upright, "rotate"));
    free(upright);
}
END_TEST

START_TEST(blank_figures_are_left_out_in_one_line)
{
    /* load.dead_experts is zero everywhere (two layers and all): its bars and layers figures would be blank */
    const char *dir = results_dir("blank",
                                  "a,t.h5,topk,k=1,load.dead_experts,,all,0\nb,t.h5,topk,k=2,load.dead_experts,,all,0\n"
                                  "a,t.h5,topk,k=1,load.dead_experts,,0,0\nb,t.h5,topk,k=2,load.dead_experts,,0,0\n"
                                  "a,t.h5,topk,k=1,load.dead_experts,,1,0\nb,t.h5,topk,k=2,load.dead_experts,,1,nan\n"
                                  "a,t.h5,topk,k=1,load.maxvio,,all,0.5\nb,t.h5,topk,k=2,load.maxvio,,all,0.25\n");
    char *err = NULL;
    int rc = rs_test_run_cli(
        rs_test_cmd("plot %s --no-render --kind bars,layers --metric load.dead_experts --metric load.maxvio", dir),
        NULL, &err);
    ck_assert_msg(rc == 0, "plot: %s", err);
    ck_assert_msg(count_of(err, "skipped") == 1, "one line for the skipped figures:\n%s", err);
    ck_assert_msg(strstr(err, "skipped 2 figures whose values are all zero or absent: bars-load-dead_experts, "
                              "layers-load-dead_experts\n") != NULL,
                  "%s", err);
    ck_assert_msg(strstr(err, "1 figure in") != NULL, "the count leaves them out:\n%s", err);
    free(err);
    ck_assert(!rs_test_file_exists(rs_test_cmd("%s/plots/bars-load-dead_experts.gp", dir)));
    ck_assert(!rs_test_file_exists(rs_test_cmd("%s/plots/bars-load-dead_experts.dat", dir)));
    ck_assert(!rs_test_file_exists(rs_test_cmd("%s/plots/layers-load-dead_experts.gp", dir)));
    ck_assert(rs_test_file_exists(rs_test_cmd("%s/plots/bars-load-maxvio.gp", dir)));

    /* asked for alone, a blank figure leaves nothing to plot: an error */
    err = NULL;
    rc = rs_test_run_cli(rs_test_cmd("plot %s --no-render --metric load.dead_experts", dir), NULL, &err);
    ck_assert_int_ne(rc, 0);
    ck_assert_msg(strstr(err, "all zero or absent") != NULL, "%s", err);
    free(err);
}
END_TEST

START_TEST(kinds_without_figures_share_one_line)
{
    const char *dir =
        results_dir("no_kinds", "a,t.h5,topk,k=1,load.maxvio,,all,0.5\nb,t.h5,random,k=1,load.maxvio,,all,0.25\n");
    char *err = NULL;
    int rc = rs_test_run_cli(rs_test_cmd("plot %s --no-render", dir), NULL, &err);
    ck_assert_msg(rc == 0, "plot: %s", err);
    ck_assert_msg(count_of(err, "\n") == 2, "the summary and one line for the kinds that made nothing:\n%s", err);
    ck_assert_msg(strstr(err, "no layers, heatmap, cache, segment, sweep, metric_sweep or cost_quality figures") != NULL,
                  "%s", err);
    free(err);
}
END_TEST

/* A chart with a horizontal line y = 1 over x in [0, 10] and the frame the
 * one-column figure would have (186 x 150 pt, x 0..10, y 0..2). */
static void line_chart(rs_plot_chart *c, rs_plot_frame *fr)
{
    rs_error err = {0};
    rs_plot_series *line = rs_plot_chart_series(c, "line", RS_PLOT_LINE, &err);
    ck_assert_ptr_nonnull(line);
    ck_assert_int_eq(rs_plot_series_add(line, 0, 1, NAN, NAN, &err), 0);
    ck_assert_int_eq(rs_plot_series_add(line, 10, 1, NAN, NAN, &err), 0);
    *fr = (rs_plot_frame){.xlo = 0, .xhi = 10, .ylo = 0, .yhi = 2, .width_pt = 186, .height_pt = 150};
}

static int place_of(double x, double y, const char *label)
{
    rs_plot_chart c = {.y = {.scale = 1}};
    rs_plot_frame fr;
    line_chart(&c, &fr);
    rs_error err = {0};
    rs_plot_series *s = rs_plot_chart_series(&c, "models", RS_PLOT_LABELLED_POINTS, &err);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(rs_plot_series_add(s, x, y, NAN, NAN, &err), 0);
    snprintf(s->points[0].label, sizeof s->points[0].label, "%s", label);
    rs_plot_place_labels(&c, &fr);
    int place = s->points[0].label_place;
    rs_plot_chart_free(&c);
    return place;
}

START_TEST(point_labels_avoid_lines_and_stay_inside)
{
    /* Label font: 3.9 pt a character, 9 pt a line. A point at (5, 1.01) sits
     * 0.75 pt above the line (y = 1 is 75 pt up; 1.01 is 75.75 pt): text
     * right or left of it (71.25..80.25 pt) crosses the line; below right
     * (centre 75.75 - 0.9 * 9 = 67.65 pt, box 63.15..72.15 pt) is the first
     * clear place in the order right, left, below right. */
    ck_assert_int_eq(place_of(5, 1.01, "mixtral"), RS_PLOT_LABEL_BELOW_RIGHT);
    /* Far from the line in the middle: right of the point, the first choice. */
    ck_assert_int_eq(place_of(5, 1.6, "mixtral"), RS_PLOT_LABEL_RIGHT);
    /* The top right corner (186, 150 pt): right would leave the plot area,
     * left reaches 4.5 pt above it; below left (centre 141.9 pt, from
     * x = 186 - 0.6 * 3.9 - 4 * 3.9 = 168.06 pt) is inside and clear. */
    ck_assert_int_eq(place_of(10, 2, "gpt4"), RS_PLOT_LABEL_BELOW_LEFT);
    /* The bottom left corner: the text goes above right, inside the axes. */
    ck_assert_int_eq(place_of(0, 0, "gpt4"), RS_PLOT_LABEL_ABOVE_RIGHT);
}
END_TEST

START_TEST(cost_quality_labels_follow_their_places)
{
    /* single models at the ends of a curve: the cheap one bottom left, the dear one top right */
    const char *dir = results_dir("cq_labels",
                                  "fixed:model=weak,q.h5,fixed,model=weak,outcome.cost_mean,,all,0.1\n"
                                  "fixed:model=weak,q.h5,fixed,model=weak,outcome.quality,,all,0.6\n"
                                  "fixed:model=strong,q.h5,fixed,model=strong,outcome.cost_mean,,all,1\n"
                                  "fixed:model=strong,q.h5,fixed,model=strong,outcome.quality,,all,0.8\n"
                                  "ca:lambda=1,q.h5,cost_aware,lambda=1,outcome.cost_mean,,all,0.3\n"
                                  "ca:lambda=1,q.h5,cost_aware,lambda=1,outcome.quality,,all,0.7\n"
                                  "ca:lambda=2,q.h5,cost_aware,lambda=2,outcome.cost_mean,,all,0.7\n"
                                  "ca:lambda=2,q.h5,cost_aware,lambda=2,outcome.quality,,all,0.78\n");
    char *err = NULL;
    int rc = rs_test_run_cli(rs_test_cmd("plot %s --no-render --kind cost_quality", dir), NULL, &err);
    ck_assert_msg(rc == 0, "plot: %s", err);
    free(err);
    char *dat = plot_text(dir, "cost_quality.dat"), *gp = plot_text(dir, "cost_quality.gp");
    /* the dear model's text may not go right of it (past the plot area's right edge) */
    const char *strong = strstr(dat, "\"strong\" ");
    ck_assert_ptr_nonnull(strong);
    int place = atoi(strong + strlen("\"strong\" "));
    ck_assert_msg(place != RS_PLOT_LABEL_RIGHT && place != RS_PLOT_LABEL_ABOVE_RIGHT &&
                      place != RS_PLOT_LABEL_BELOW_RIGHT,
                  "strong at place %d", place);
    /* each place in use has its labels clause, with the offset and alignment of that place */
    double dx, dy;
    const char *align;
    rs_plot_label_offset(place, &dx, &dy, &align);
    ck_assert_msg(strstr(gp, rs_test_cmd("($6 == %d ? stringcolumn(5) : '') with labels %s offset char %g, char %g", place,
                                         align, dx, dy)) != NULL,
                  "%s", gp);
    free(dat);
    free(gp);
}
END_TEST

Suite *plot_layout_suite(void)
{
    Suite *s = suite_create("plot_layout");
    TCase *tc = tcase_create("layout");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, wrap_breaks_after_separators);
    tcase_add_test(tc, series_styles_differ_in_colour_and_dash);
    tcase_add_test(tc, a_figure_of_ten_lines_repeats_no_style);
    tcase_add_test(tc, sweeps_over_decades_get_a_log_axis);
    tcase_add_test(tc, long_bar_labels_make_horizontal_bars_with_wrapped_tics);
    tcase_add_test(tc, blank_figures_are_left_out_in_one_line);
    tcase_add_test(tc, kinds_without_figures_share_one_line);
    tcase_add_test(tc, point_labels_avoid_lines_and_stay_inside);
    tcase_add_test(tc, cost_quality_labels_follow_their_places);
    suite_add_tcase(s, tc);
    return s;
}
