/* Figures of placement results: the metric_sweep kind (a metric against a
 * parameter swept within each run, e.g. replicas) and device heatmaps
 * (placement.device_share, key device=d). From a results.csv written here
 * by hand (expected numbers are the ones written) and from routesim run on
 * a small generated trace (expected numbers are results.csv's). Figures are
 * rendered and checked when gnuplot is installed. */
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "plots/plot.h"
#include "plots/plot_internal.h"
#include "tests/test_util.h"

static char *cmd(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *cmd(const char *fmt, ...)
{
    static char buf[4][8192];
    static int next;
    char *b = buf[next++ % 4];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, sizeof buf[0], fmt, ap);
    va_end(ap);
    return b;
}

static int file_has(const char *path, const char *needle)
{
    char *text = rs_test_read_file(path);
    int has = text && strstr(text, needle) != NULL;
    free(text);
    return has;
}

static int count_files(const char *dir, const char *prefix, const char *suffix)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t len = strlen(e->d_name), slen = strlen(suffix);
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0 && len > slen &&
             strcmp(e->d_name + len - slen, suffix) == 0;
    }
    if (d)
        closedir(d);
    return n;
}

/* The numbers of the data line starting with prefix in the block after the
 * line `block` (a "# series N: LABEL" header; NULL = the whole file);
 * returns how many it read, -1 when there is no such line. */
static int dat_row(const char *path, const char *block, const char *prefix, double *values, int max)
{
    char *text = rs_test_read_file(path);
    ck_assert_msg(text != NULL, "missing %s", path);
    const char *start = text;
    if (block) {
        const char *at = strstr(text, block);
        ck_assert_msg(at != NULL, "%s: no block '%s'", path, block);
        start = strchr(at, '\n') + 1;
    }
    int n = -1;
    for (const char *line = start; *line;) {
        const char *end = strchr(line, '\n');
        if (block && strncmp(line, "# series", 8) == 0)
            break;
        if (line[0] != '#' && strncmp(line, prefix, strlen(prefix)) == 0) {
            n = 0;
            const char *p = line;
            char *next = NULL;
            while (n < max) {
                double v = strtod(p, &next);
                if (next == p)
                    break;
                values[n++] = v;
                p = next;
            }
            break;
        }
        if (!end)
            break;
        line = end + 1;
    }
    free(text);
    return n;
}

static void expect_point(const char *path, const char *series, const char *x, double want)
{
    double v[4];
    ck_assert_msg(dat_row(path, series, x, v, 4) >= 2, "%s: %s has no point x=%s", path, series, x);
    ck_assert_msg(fabs(v[1] - want) <= 1e-12 * fmax(1, fabs(want)), "%s: %s at x=%s: %.17g, wanted %.17g", path,
                  series, x, v[1], want);
}

static const char *plot_file(const char *dir, const char *name)
{
    static char buf[4][4096];
    static int next;
    char *b = buf[next++ % 4];
    snprintf(b, sizeof buf[0], "%s/plots/%s", dir, name);
    return b;
}

/* imbalance by hand: run a, contiguous 0.5 + R / 100, eplb 0.25 - R / 200
 * (stats=oracle); under stats=history at replicas 0 and 8, eplb 0.3 +
 * (every + R) / 1000, contiguous 0.7 whatever the interval; run b half of a's. */
static double imbalance(int run_b, int eplb, int replicas, int every)
{
    double v = every ? (eplb ? 0.3 + (every + replicas) / 1000.0 : 0.7)
                     : (eplb ? 0.25 - replicas / 200.0 : 0.5 + replicas / 100.0);
    return run_b ? v / 2 : v;
}

static const char *hand_results(void)
{
    const char *dir = rs_test_path("hand");
    ck_assert_int_eq(mkdir(dir, 0777), 0);
    FILE *f = fopen(cmd("%s/results.csv", dir), "w");
    ck_assert_ptr_nonnull(f);
    fputs("run,trace,router,params,metric,key,layer,value\n", f);
    const char *runs[2] = {"a,t.h5,topk,k=2", "b,t.h5,random,k=2;seed=1"};
    const char *policies[2] = {"contiguous", "eplb"};
    for (int r = 0; r < 2; r++) {
        for (int p = 0; p < 2; p++)
            for (int R = 0; R <= 16; R += 8) {
                fprintf(f, "%s,placement.imbalance_ratio,devices=8;policy=%s;replicas=%d;stats=oracle,all,%.17g\n",
                        runs[r], policies[p], R, imbalance(r, p, R, 0));
                fprintf(f, "%s,placement.expert_moves,devices=8;policy=%s;replicas=%d;stats=oracle,all,0\n", runs[r],
                        policies[p], R);
            }
        for (int p = 0; p < 2; p++)
            for (int R = 0; R <= 8; R += 8)
                for (int every = 100; every <= 200; every += 100)
                    fprintf(f,
                            "%s,placement.imbalance_ratio,devices=8;policy=%s;rebalance_every=%d;replicas=%d;"
                            "stats=history,all,%.17g\n",
                            runs[r], policies[p], every, R, imbalance(r, p, R, every));
        /* device shares per layer: 4 devices under contiguous, 8 under eplb */
        for (int l = 0; l < 2; l++) {
            for (int d = 0; d < 4; d++)
                fprintf(f, "%s,placement.device_share,devices=4;policy=contiguous;device=%d,%d,%g\n", runs[r], d, l,
                        (d + 1 + l + r) / 100.0);
            for (int d = 0; d < 8; d++)
                fprintf(f, "%s,placement.device_share,devices=8;policy=eplb;device=%d,%d,%g\n", runs[r], d, l,
                        (2 * d + l + r) / 1000.0);
        }
        fprintf(f, "%s,load.maxvio,,all,0.5\n", runs[r]);
        /* metrics whose sweeps have figures of their own, or families routesim does not know */
        for (int slots = 2; slots <= 4; slots += 2)
            fprintf(f, "%s,cache.hit_rate,policy=lru;slots=%d,all,%g\n", runs[r], slots, slots / 8.0);
        for (int alpha = 1; alpha <= 2; alpha++)
            fprintf(f, "%s,plug.score,alpha=%d,all,%d\n", runs[r], alpha, alpha + r);
    }
    /* an interval on one point of run a */
    const char *point = "a,t.h5,topk,k=2,placement.imbalance_ratio,devices=8;policy=eplb;replicas=8";
    fprintf(f, "%s;stat=ci_low;stats=oracle,all,0.1\n%s;stat=ci_high;stats=oracle,all,0.3\n", point, point);
    fclose(f);
    return dir;
}

START_TEST(metric_sweep_draws_a_metric_against_its_swept_parameter)
{
    const char *dir = hand_results();
    char *err = NULL;
    int rc = rs_test_run_cli(cmd("plot %s --no-render", dir), NULL, &err);
    ck_assert_msg(rc == 0, "plot: %s", err);
    ck_assert_msg(strstr(err, "metric_sweep") != NULL, "summary names the kind: %s", err);
    free(err);

    /* against replicas: one figure per value of the key's other varying parts (stats, rebalance_every) */
    const char *oracle = plot_file(dir, "metric_sweep-placement-imbalance_ratio-vs-replicas-stats_oracle.dat");
    for (int r = 0; r < 2; r++)
        for (int p = 0; p < 2; p++)
            for (int R = 0; R <= 16; R += 8)
                expect_point(oracle, cmd("# series %d: %s, %s", 2 * r + p, r ? "b" : "a", p ? "eplb" : "contiguous"),
                             cmd("%d ", R), imbalance(r, p, R, 0));
    double v[4];
    ck_assert_int_eq(dat_row(oracle, "# series 1: a, eplb", "8 ", v, 4), 4);
    ck_assert(v[2] == 0.1 && v[3] == 0.3); /* the interval rows */
    ck_assert_int_eq(dat_row(oracle, "# series 1: a, eplb", "0 ", v, 4), 4);
    ck_assert(isnan(v[2]) && isnan(v[3]));
    const char *history =
        plot_file(dir, "metric_sweep-placement-imbalance_ratio-vs-replicas-rebalance_every_200_stats_history.dat");
    expect_point(history, "# series 3: b, eplb", "8 ", imbalance(1, 1, 8, 200));
    ck_assert_int_eq(dat_row(history, "# series 3: b, eplb", "16 ", v, 4), -1); /* history has no replicas=16 */
    ck_assert(rs_test_file_exists(
        plot_file(dir, "metric_sweep-placement-imbalance_ratio-vs-replicas-rebalance_every_100_stats_history.gp")));

    /* against the rebalance interval: one figure per replicas value; stats=oracle keys have no interval */
    const char *every = plot_file(dir, "metric_sweep-placement-imbalance_ratio-vs-rebalance_every-replicas_8.dat");
    expect_point(every, "# series 1: a, eplb", "100 ", imbalance(0, 1, 8, 100));
    expect_point(every, "# series 1: a, eplb", "200 ", imbalance(0, 1, 8, 200));
    expect_point(every, "# series 0: a, contiguous", "200 ", 0.7);
    ck_assert_int_eq(count_files(cmd("%s/plots", dir), "metric_sweep-placement-imbalance_ratio-vs-rebalance_every",
                                 ".dat"),
                     2);
    const char *gp = plot_file(dir, "metric_sweep-placement-imbalance_ratio-vs-rebalance_every-replicas_8.gp");
    ck_assert(file_has(gp, "set xlabel 'rebalance_every'") && file_has(gp, "title 'b, contiguous'"));
    const char *caption = plot_file(dir, "metric_sweep-placement-imbalance_ratio-vs-replicas-stats_oracle.txt");
    ck_assert(file_has(caption, "against the metric parameter replicas") && file_has(caption, "devices=8") &&
              file_has(caption, "one line per run and policy"));

    /* not drawn unasked: a constant (expert moves), a histogram (device=), a metric with a kind of its own
     * (cache slots), a family routesim does not know, a metric with one key */
    const char *plots = cmd("%s/plots", dir);
    ck_assert_int_eq(count_files(plots, "metric_sweep-placement-expert_moves", ".gp"), 0);
    ck_assert_int_eq(count_files(plots, "metric_sweep-placement-device_share", ".gp"), 0);
    ck_assert_int_eq(count_files(plots, "metric_sweep-cache", ".gp"), 0);
    ck_assert_int_eq(count_files(plots, "metric_sweep-plug", ".gp"), 0);
    ck_assert_int_eq(count_files(plots, "metric_sweep-load", ".gp"), 0);
    ck_assert_int_eq(count_files(plots, "metric_sweep-", ".gp"), 5);

    /* named, they are drawn, but for expert moves: all zero, the figure would be blank */
    const char *named = rs_test_path("named");
    rc = rs_test_run_cli(cmd("plot %s --no-render -q --kind metric_sweep --metric placement.expert_moves "
                             "--metric cache.hit_rate --metric plug.score --output %s",
                             dir, named),
                         NULL, &err);
    ck_assert_msg(rc == 0, "plot: %s", err);
    free(err);
    ck_assert(!rs_test_file_exists(cmd("%s/metric_sweep-placement-expert_moves-vs-replicas.dat", named)));
    expect_point(cmd("%s/metric_sweep-cache-hit_rate-vs-slots.dat", named), "# series 1: b", "4 ", 0.5);
    expect_point(cmd("%s/metric_sweep-plug-score-vs-alpha.dat", named), "# series 1: b", "2 ", 3);
    /* a metric with one key has nothing to sweep: asked for alone, nothing to plot */
    char *out = NULL;
    rc = rs_test_run_cli(cmd("plot %s --no-render --kind metric_sweep --metric load.maxvio", dir), &out, &err);
    ck_assert_msg(rc == 1 && strstr(err, "nothing to plot"), "exit %d: %s", rc, err);
    free(out);
    free(err);
}
END_TEST

/* More lines than colours: one figure per run. Stems cut to the same
 * length stay apart. */
START_TEST(metric_sweep_splits_many_lines_by_run_and_keeps_stems_apart)
{
    const char *dir = rs_test_path("many");
    ck_assert_int_eq(mkdir(dir, 0777), 0);
    FILE *f = fopen(cmd("%s/results.csv", dir), "w");
    ck_assert_ptr_nonnull(f);
    fputs("run,trace,router,params,metric,key,layer,value\n", f);
    const char *policies[5] = {"contiguous", "round_robin", "eplb", "affinity", "search"};
    char longname[160];
    memset(longname, 'x', 150);
    longname[150] = '\0';
    for (int r = 0; r < 2; r++)
        for (int p = 0; p < 5; p++)
            for (int R = 0; R <= 8; R += 8) {
                fprintf(f, "%s,t.h5,topk,k=%d,placement.imbalance_ratio,devices=8;policy=%s;replicas=%d,all,%d\n",
                        r ? "b" : "a", r + 1, policies[p], R, 10 * r + p + R);
                /* two placement files whose names differ past the stem's length */
                if (p < 2)
                    fprintf(f, "%s,t.h5,topk,k=%d,placement.a2a_share,devices=8;file=/%s%d.json;policy=file;"
                               "replicas=%d,all,%d\n",
                            r ? "b" : "a", r + 1, longname, p, R, 100 * p + R + r);
            }
    fclose(f);
    char *err = NULL;
    int rc = rs_test_run_cli(cmd("plot %s --no-render -q --kind metric_sweep", dir), NULL, &err);
    ck_assert_msg(rc == 0, "plot: %s", err);
    free(err);
    const char *b = plot_file(dir, "metric_sweep-placement-imbalance_ratio-vs-replicas-b.dat");
    expect_point(b, "# series 2: eplb", "8 ", 10 + 2 + 8); /* one run: lines named by policy alone */
    ck_assert(rs_test_file_exists(plot_file(dir, "metric_sweep-placement-imbalance_ratio-vs-replicas-a.dat")));
    ck_assert(!rs_test_file_exists(plot_file(dir, "metric_sweep-placement-imbalance_ratio-vs-replicas.dat")));
    /* a2a_share: one figure per file (a split part), both kept under distinct stems */
    const char *plots = cmd("%s/plots", dir);
    ck_assert_int_eq(count_files(plots, "metric_sweep-placement-a2a_share-vs-replicas-file_", ".dat"), 2);
    DIR *d = opendir(plots);
    int seen[2] = {0, 0};
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (strncmp(e->d_name, "metric_sweep-placement-a2a_share", 32) != 0 || strcmp(e->d_name + len - 4, ".dat"))
            continue;
        double v[4];
        const char *path = cmd("%s/%s", plots, e->d_name);
        ck_assert_int_eq(dat_row(path, "# series 1: b", "8 ", v, 4), 4);
        ck_assert(v[1] == 9 || v[1] == 109);
        seen[v[1] == 109]++;
    }
    if (d)
        closedir(d);
    ck_assert(seen[0] == 1 && seen[1] == 1);
}
END_TEST

START_TEST(heatmap_of_device_shares_per_run_and_placement)
{
    const char *dir = hand_results();
    char *err = NULL;
    int rc = rs_test_run_cli(cmd("plot %s --no-render -q --kind heatmap", dir), NULL, &err);
    ck_assert_msg(rc == 0, "plot: %s", err);
    free(err);
    /* one figure per run and placement, named by the parts that differ */
    ck_assert_int_eq(count_files(cmd("%s/plots", dir), "heatmap-placement-device_share-", ".dat"), 4);
    const char *four = plot_file(dir, "heatmap-placement-device_share-devices_4_policy_contiguous-b.dat");
    const char *eight = plot_file(dir, "heatmap-placement-device_share-devices_8_policy_eplb-a.dat");
    double v[4];
    ck_assert_int_eq(dat_row(four, NULL, "3 1 ", v, 3), 3);
    ck_assert(fabs(v[2] - (3 + 1 + 1 + 1) / 100.0) < 1e-15);
    ck_assert_int_eq(dat_row(four, NULL, "4 ", v, 3), -1); /* 4 devices there, not the 8 of the other */
    ck_assert_int_eq(dat_row(eight, NULL, "7 0 ", v, 3), 3);
    ck_assert(fabs(v[2] - 14 / 1000.0) < 1e-15);
    const char *gp = plot_file(dir, "heatmap-placement-device_share-devices_4_policy_contiguous-b.gp");
    ck_assert(file_has(gp, "set xlabel 'device'") && file_has(gp, "set xrange [-0.5:3.5]"));
    ck_assert(file_has(plot_file(dir, "heatmap-placement-device_share-devices_8_policy_eplb-a.txt"),
                       "key devices=8;policy=eplb"));
}
END_TEST

/* routesim run sweeping replicas in a placement entry, with device shares:
 * the figures hold results.csv's numbers (and render, with gnuplot). */
START_TEST(placement_figures_from_a_run)
{
    const char *trace = rs_test_path("t.h5"), *dir = rs_test_path("out"), *config = rs_test_path("exp.json");
    char *err = NULL;
    int rc = rs_test_run_cli(cmd("gen --preset mixtral --tokens 400 --layers 3 --seed 4 -o %s", trace), NULL, &err);
    ck_assert_msg(rc == 0, "gen: %s", err);
    free(err);
    FILE *f = fopen(config, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "{\"traces\": [\"%s\"], \"routers\": [\"topk:k=2\"],"
            " \"metrics\": [{\"name\": \"placement\", \"params\": {\"policy\": [\"contiguous\", \"eplb\"],"
            "               \"devices\": 4, \"replicas\": [0, 4, 8], \"per_device\": 1}}],"
            " \"batch_tokens\": 100, \"output\": \"%s\","
            " \"plots\": [{\"kind\": \"metric_sweep\", \"metric\": \"placement.imbalance_ratio\"},"
            "             {\"kind\": \"heatmap\", \"metric\": \"placement.device_share\"}]}",
            trace, dir);
    fclose(f);
    rc = rs_test_run_cli(cmd("run %s -q --no-progress", config), NULL, &err);
    ck_assert_msg(rc == 0, "run: %s", err);
    free(err);
    char *csv = rs_test_read_file(cmd("%s/results.csv", dir));
    ck_assert_ptr_nonnull(csv);
    /* the eplb point at 4 replicas and a device share cell, from results.csv */
    const char *point = "placement.imbalance_ratio,devices=4;policy=eplb;replicas=4,all,";
    const char *cell = "placement.device_share,devices=4;per_device=1;policy=contiguous;replicas=8;device=2,1,";
    ck_assert_msg(strstr(csv, point) && strstr(csv, cell), "results.csv lacks the rows:\n%s", csv);
    double want = strtod(strstr(csv, point) + strlen(point), NULL);
    double share = strtod(strstr(csv, cell) + strlen(cell), NULL);
    free(csv);
    expect_point(plot_file(dir, "metric_sweep-placement-imbalance_ratio-vs-replicas.dat"), "# series 1: eplb", "4 ",
                 want);
    double v[3];
    const char *heat = plot_file(dir, "heatmap-placement-device_share-policy_contiguous_replicas_8-topk_k_2.dat");
    ck_assert_int_eq(dat_row(heat, NULL, "2 1 ", v, 3), 3);
    ck_assert(v[2] == share);
    ck_assert_int_eq(count_files(cmd("%s/plots", dir), "heatmap-placement-device_share", ".dat"), 6);
    char path[1024];
    if (!rs_plot_find_gnuplot(path, sizeof path))
        return; /* data and scripts are checked above; figures need gnuplot */
    struct stat st;
    const char *png = plot_file(dir, "metric_sweep-placement-imbalance_ratio-vs-replicas.png");
    ck_assert_msg(stat(png, &st) == 0 && st.st_size > 1000, "%s", png);
    png = plot_file(dir, "heatmap-placement-device_share-policy_eplb_replicas_4-topk_k_2.png");
    ck_assert_msg(stat(png, &st) == 0 && st.st_size > 1000, "%s", png);
}
END_TEST

Suite *plot_placement_suite(void)
{
    Suite *s = suite_create("plot_placement");
    TCase *tc = tcase_create("plot_placement");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, metric_sweep_draws_a_metric_against_its_swept_parameter);
    tcase_add_test(tc, metric_sweep_splits_many_lines_by_run_and_keeps_stems_apart);
    tcase_add_test(tc, heatmap_of_device_shares_per_run_and_placement);
    tcase_add_test(tc, placement_figures_from_a_run);
    suite_add_tcase(s, tc);
    return s;
}
