/* routesim plot and the plot API: figures from a results directory made by
 * routesim run on a small generated trace, and from a results.csv written
 * here by hand for the kinds whose metrics other families produce (cache
 * curves, segment lengths, intervals, cost-quality). Data files must hold
 * results.csv's numbers; scripts and captions must exist; figures are
 * checked when gnuplot is installed and skipped otherwise. */
#include <cJSON.h>
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

static const char *plot_file(const char *dir, const char *name)
{
    static char buf[4][1024];
    static int next;
    char *b = buf[next++ % 4];
    snprintf(b, sizeof buf[0], "%s/plots/%s", dir, name);
    return b;
}

static int have_gnuplot(void)
{
    char path[1024];
    return rs_plot_find_gnuplot(path, sizeof path);
}

/* A results directory from routesim run: a 4-layer trace, topk swept over
 * k = 1, 2 and a random router; load with per_expert=1, and entropy. */
static const char *make_run_results(void)
{
    const char *trace = rs_test_path("t.h5");
    const char *dir = rs_test_path("out");
    const char *config = rs_test_path("exp.json");
    char *err = NULL;
    int rc = rs_test_run_cli(rs_test_cmd("gen --preset mixtral --tokens 600 --layers 4 --seed 3 -o %s", trace), NULL, &err);
    ck_assert_msg(rc == 0, "gen: %s", err);
    free(err);
    FILE *f = fopen(config, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "{\"name\": \"plots\", \"traces\": [\"%s\"],"
            " \"routers\": [{\"name\": \"topk\", \"params\": {\"k\": [1, 2]}},"
            "               {\"name\": \"random\", \"params\": {\"k\": 2, \"seed\": 1}}],"
            " \"metrics\": [{\"name\": \"load\", \"params\": {\"per_expert\": 1}}, \"entropy\"],"
            " \"batch_tokens\": 128, \"output\": \"%s\"}",
            trace, dir);
    fclose(f);
    rc = rs_test_run_cli(rs_test_cmd("run %s -q --no-progress", config), NULL, &err);
    ck_assert_msg(rc == 0, "run: %s", err);
    free(err);
    return dir;
}

/* Splits a CSV line (RFC 4180 quotes) into at most 8 fields in place. */
static int csv_fields(char *line, char **fields)
{
    int n = 0;
    char *out = line;
    fields[n++] = out;
    for (char *p = line; *p && *p != '\n';) {
        if (*p == '"') {
            for (p++; *p && !(*p == '"' && p[1] != '"'); p++) {
                if (*p == '"')
                    p++;
                *out++ = *p;
            }
            if (*p)
                p++;
        } else if (*p == ',') {
            *out++ = '\0';
            p++;
            if (n < 8)
                fields[n++] = out;
        } else {
            *out++ = *p++;
        }
    }
    *out = '\0';
    return n;
}

/* The value of one row of results.csv, as a number. */
static double csv_value(const char *dir, const char *run, const char *metric, const char *key, const char *layer)
{
    char *text = rs_test_read_file(rs_test_cmd("%s/results.csv", dir));
    ck_assert_ptr_nonnull(text);
    double value = NAN;
    int found = 0;
    for (char *line = strtok(text, "\n"); line && !found; line = strtok(NULL, "\n")) {
        char copy[2048], *fields[8];
        snprintf(copy, sizeof copy, "%s", line);
        if (csv_fields(copy, fields) == 8 && strcmp(fields[0], run) == 0 && strcmp(fields[4], metric) == 0 &&
            strcmp(fields[5], key) == 0 && strcmp(fields[6], layer) == 0) {
            value = strtod(fields[7], NULL);
            found = 1;
        }
    }
    free(text);
    ck_assert_msg(found, "results.csv has no row %s %s %s %s", run, metric, key, layer);
    return value;
}

/* The numbers of the first data line (not a comment) that starts with prefix,
 * within the block that follows the line holding `block` (NULL = anywhere). */
static int dat_row(const char *path, const char *block, const char *prefix, double *values, int max)
{
    char *text = rs_test_read_file(path);
    ck_assert_msg(text != NULL, "missing %s", path);
    const char *start = text;
    if (block) {
        start = strstr(text, block);
        ck_assert_msg(start != NULL, "%s: no block '%s'", path, block);
        start = strchr(start, '\n');
        ck_assert_ptr_nonnull(start);
        start++;
    }
    int n = -1;
    for (const char *line = start; line && *line;) {
        const char *end = strchr(line, '\n');
        if (block && line != start && (line[0] == '\n' || (line[0] == '#' && strstr(line, "# series") == line)))
            break; /* the block ended */
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
        line = end ? end + 1 : NULL;
    }
    free(text);
    return n;
}

static void expect_close(double got, double want, const char *what)
{
    ck_assert_msg(fabs(got - want) <= 1e-12 * fmax(1.0, fabs(want)), "%s: %.17g, wanted %.17g", what, got, want);
}

static int file_has(const char *path, const char *needle)
{
    char *text = rs_test_read_file(path);
    int has = text && strstr(text, needle) != NULL;
    free(text);
    return has;
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* Temporary files are NAME.EXT.tmp.PID (core/output_path.h). */
static int count_temporaries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

static int count_files(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name), slen = strlen(suffix);
        n += e->d_name[0] != '.' && len > slen && strcmp(e->d_name + len - slen, suffix) == 0;
    }
    closedir(d);
    return n;
}

START_TEST(plot_run_results_hold_the_numbers)
{
    const char *dir = make_run_results();
    char *out = NULL, *err = NULL;
    int rc = rs_test_run_cli(rs_test_cmd("plot %s --no-render", dir), &out, &err);
    ck_assert_msg(rc == 0, "plot: %s", err);
    ck_assert_msg(strstr(err, "bars") && strstr(err, "layers") && strstr(err, "heatmap") && strstr(err, "sweep"),
                  "summary: %s", err);
    ck_assert_msg(strstr(err, "no cache, segment, metric_sweep or cost_quality figures") != NULL, "skipped kinds are listed: %s", err);
    free(out);
    free(err);

    /* bars: one row per run with results.csv's layer=all value */
    double v[8];
    const char *bars = plot_file(dir, "bars-load-maxvio.dat");
    ck_assert_int_eq(dat_row(bars, NULL, "0 ", v, 4), 4);
    expect_close(v[1], csv_value(dir, "topk:k=1", "load.maxvio", "", "all"), "bars topk:k=1");
    ck_assert(isnan(v[2]) && isnan(v[3])); /* no interval */
    ck_assert_int_eq(dat_row(bars, NULL, "2 ", v, 2), 2);
    expect_close(v[1], csv_value(dir, "random:k=2,seed=1", "load.maxvio", "", "all"), "bars random");
    ck_assert(file_has(bars, "\"random:k=2,seed=1\""));

    /* layers: a block per run, x = layer */
    const char *layers = plot_file(dir, "layers-load-cv.dat");
    ck_assert_int_eq(dat_row(layers, "# series 1: topk:k=2", "2 ", v, 2), 2);
    expect_close(v[1], csv_value(dir, "topk:k=2", "load.cv", "", "2"), "layers topk:k=2 layer 2");

    /* heatmap: expert, layer, share */
    const char *heat = plot_file(dir, "heatmap-load-expert_share-topk_k_2.dat");
    ck_assert_int_eq(dat_row(heat, NULL, "5 3 ", v, 3), 3);
    expect_close(v[2], csv_value(dir, "topk:k=2", "load.expert_share", "expert=5", "3"), "heatmap e5 l3");

    /* sweep over k: the topk runs, x = k */
    const char *sweep = plot_file(dir, "sweep-load-maxvio-vs-k.dat");
    ck_assert_int_eq(dat_row(sweep, "# series 0: topk", "1 ", v, 2), 2);
    expect_close(v[1], csv_value(dir, "topk:k=1", "load.maxvio", "", "all"), "sweep k=1");
    ck_assert_int_eq(dat_row(sweep, "# series 0: topk", "2 ", v, 2), 2);
    expect_close(v[1], csv_value(dir, "topk:k=2", "load.maxvio", "", "all"), "sweep k=2");

    /* scripts: self-contained, noenhanced (run labels are not markup), every format; captions beside */
    const char *gp = plot_file(dir, "layers-load-cv.gp");
    ck_assert(file_has(gp, "noenhanced") && file_has(gp, "pdfcairo") && file_has(gp, "pngcairo") &&
              file_has(gp, "set terminal svg"));
    ck_assert(file_has(gp, "'layers-load-cv.dat'") && file_has(gp, "title 'random:k=2,seed=1'"));
    ck_assert(file_has(gp, "#0072B2") && file_has(gp, "set xlabel 'MoE layer'"));
    ck_assert(file_has(plot_file(dir, "heatmap-load-expert_share-topk_k_2.txt"), "load.expert_share"));
    ck_assert_int_eq(count_files(rs_test_cmd("%s/plots", dir), ".png"), 0);
    ck_assert_int_eq(count_files(rs_test_cmd("%s/plots", dir), ".gp"), count_files(rs_test_cmd("%s/plots", dir), ".dat"));
}
END_TEST

START_TEST(plot_renders_every_format_when_gnuplot_is_there)
{
    const char *dir = make_run_results();
    char *err = NULL;
    int rc = rs_test_run_cli(rs_test_cmd("plot %s --format png,pdf,svg --kind bars,heatmap --metric load.maxvio -q", dir),
                             NULL, &err);
    /* heatmap has no load.maxvio: only the bars; asking for two kinds still succeeds */
    ck_assert_msg(rc == 0, "plot: %s", err);
    free(err);
    rc = rs_test_run_cli(rs_test_cmd("plot %s --kind heatmap --size double -q", dir), NULL, &err);
    ck_assert_msg(rc == 0, "plot: %s", err);
    free(err);
    ck_assert(rs_test_file_exists(plot_file(dir, "bars-load-maxvio.gp")));
    ck_assert(rs_test_file_exists(plot_file(dir, "heatmap-load-expert_share-random_k_2_seed_1.dat")));
    if (!have_gnuplot())
        return; /* data and scripts are checked above; figures need gnuplot */
    const char *png = plot_file(dir, "bars-load-maxvio.png");
    const char *pdf = plot_file(dir, "bars-load-maxvio.pdf");
    const char *svg = plot_file(dir, "bars-load-maxvio.svg");
    ck_assert_int_gt(file_size(png), 1000);
    ck_assert_int_gt(file_size(pdf), 1000);
    ck_assert_int_gt(file_size(svg), 1000);
    char *text = rs_test_read_file(png);
    ck_assert(memcmp(text, "\x89PNG", 4) == 0);
    free(text);
    text = rs_test_read_file(pdf);
    ck_assert(strncmp(text, "%PDF", 4) == 0);
    free(text);
    ck_assert(file_has(svg, "<svg"));
    ck_assert_int_gt(file_size(plot_file(dir, "heatmap-load-expert_share-topk_k_1.png")), 1000);
    /* no temporary files left behind */
    ck_assert_int_eq(count_temporaries(rs_test_cmd("%s/plots", dir)), 0);

    /* a script renders by itself from any directory, beside itself, in any format and size */
    ck_assert_int_eq(remove(png), 0);
    ck_assert_int_eq(system(rs_test_cmd("cd / && gnuplot '%s' 2>/dev/null", plot_file(dir, "bars-load-maxvio.gp"))), 0);
    ck_assert_int_gt(file_size(png), 1000);
    ck_assert_int_eq(system(rs_test_cmd("cd / && gnuplot -e \"fmt='pdf'; size='double'\" '%s' 2>/dev/null",
                                plot_file(dir, "heatmap-load-expert_share-topk_k_1.gp"))),
                     0);
    ck_assert_int_gt(file_size(plot_file(dir, "heatmap-load-expert_share-topk_k_1.pdf")), 1000);
}
END_TEST

START_TEST(plot_without_gnuplot_writes_scripts_and_says_how_to_install)
{
    const char *dir = make_run_results();
    setenv("ROUTESIM_GNUPLOT", "none", 1);
    char *out = NULL, *err = NULL;
    int rc = rs_test_run_cli(rs_test_cmd("plot %s --kind bars", dir), &out, &err);
    ck_assert_msg(rc == 0, "plot: %s", err);
    ck_assert_msg(strstr(err, "apt-get install gnuplot-nox") && strstr(err, "scripts/install-deps.sh"), "%s", err);
    ck_assert_msg(strstr(err, rs_test_cmd("gnuplot %s/plots/", dir)) != NULL, "says how to render later: %s", err);
    free(out);
    free(err);
    ck_assert(rs_test_file_exists(plot_file(dir, "bars-load-maxvio.gp")));
    ck_assert(rs_test_file_exists(plot_file(dir, "bars-load-maxvio.dat")));
    ck_assert_int_eq(count_files(rs_test_cmd("%s/plots", dir), ".png"), 0);

    /* the same when gnuplot is simply not on PATH */
    unsetenv("ROUTESIM_GNUPLOT");
    setenv("PATH", rs_test_dir(), 1);
    rc = rs_test_run_cli(rs_test_cmd("plot %s --kind layers -q", dir), &out, &err);
    ck_assert_msg(rc == 0, "plot: %s", err);
    ck_assert_msg(strstr(err, "gnuplot-nox") != NULL, "quiet still says gnuplot is missing: %s", err);
    free(out);
    free(err);
    ck_assert(rs_test_file_exists(plot_file(dir, "layers-load-maxvio.gp")));
}
END_TEST

/* Rows other families write, by hand: cache curves (keys sorted by name),
 * segment lengths, intervals as stat= companion rows, query-level outcomes.
 * One label needs quoting and escaping. */
static const char *fake_results(void)
{
    const char *dir = rs_test_path("fake");
    ck_assert_int_eq(mkdir(dir, 0777), 0);
    FILE *f = fopen(rs_test_cmd("%s/results.csv", dir), "w");
    ck_assert_ptr_nonnull(f);
    fputs("run,trace,router,params,metric,key,layer,value\n", f);
    const char *a = "a_run,t.h5,topk,k=2", *b = "\"b's run,x\",t.h5,random,k=2;seed=1";
    const double lru[] = {0.25, 0.5, 0.75}, belady[] = {0.375, 0.625, 0.875};
    for (int i = 0; i < 3; i++) {
        fprintf(f, "%s,cache.hit_rate,policy=lru;scope=layer;slots=%d,all,%g\n", a, 1 << i, lru[i]);
        fprintf(f, "%s,cache.hit_rate,policy=belady;scope=layer;slots=%d,all,%g\n", a, 1 << i, belady[i]);
        fprintf(f, "%s,cache.hit_rate,policy=lru;scope=layer;slots=%d;stat=ci_low,all,%g\n", a, 1 << i,
                lru[i] - 0.01);
        fprintf(f, "%s,cache.hit_rate,policy=lru;scope=layer;slots=%d;stat=ci_high,all,%g\n", a, 1 << i,
                lru[i] + 0.02);
    }
    for (int m = 4; m <= 64; m *= 4) {
        fprintf(f, "%s,srp.srp,m=%d;rho=2,all,%g\n", a, m, 1.0 / m + 0.5);
        fprintf(f, "%s,srp.srp,m=%d;rho=2,all,%g\n", b, m, 1.0 / m + 0.25);
    }
    fprintf(f, "%s,load.maxvio,,all,0.5\n%s,load.maxvio,stat=ci_low,all,0.25\n%s,load.maxvio,stat=ci_high,all,0.75\n",
            a, a, a);
    fprintf(f, "%s,load.maxvio,,all,0.125\n", b);
    for (int l = 0; l < 2; l++)
        fprintf(f, "%s,load.maxvio,,%d,%g\n%s,load.maxvio,,%d,%g\n", a, l, 0.4 + l / 5.0, b, l, 0.1 + l / 10.0);
    const struct {
        const char *run, *router, *params;
        double cost, quality;
    } q[] = {
        {"fixed:model=weak", "fixed", "model=weak", 0.2, 0.6},
        {"fixed:model=strong", "fixed", "model=strong", 1.0, 0.8},
        {"oracle", "oracle", "", 0.35, 0.86},
        {"cost_aware:lambda=1", "cost_aware", "lambda=1", 0.6, 0.7},
        {"cost_aware:lambda=3", "cost_aware", "lambda=3", 0.4, 0.65},
        {"cost_aware:lambda=0.1", "cost_aware", "lambda=0.1", 0.9, 0.78},
    };
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++)
        fprintf(f, "%s,q.h5,%s,%s,outcome.cost_mean,,all,%g\n%s,q.h5,%s,%s,outcome.quality,,all,%g\n", q[i].run,
                q[i].router, q[i].params, q[i].cost, q[i].run, q[i].router, q[i].params, q[i].quality);
    /* a second query trace without fixed runs: the single models come from outcome.model_* (key model=NAME) */
    for (int lambda = 1; lambda <= 2; lambda++) {
        const char *r = lambda == 1 ? "ca:lambda=1,q2.h5,cost_aware,lambda=1" : "ca:lambda=2,q2.h5,cost_aware,lambda=2";
        fprintf(f, "%s,outcome.cost_mean,,all,%g\n%s,outcome.quality,,all,%g\n", r, 0.5 / lambda, r,
                0.75 - 0.05 * lambda);
        fprintf(f, "%s,outcome.model_cost,model=small,all,0.125\n%s,outcome.model_quality,model=small,all,0.5\n", r, r);
        fprintf(f, "%s,outcome.model_cost,model=big,all,1\n%s,outcome.model_quality,model=big,all,0.875\n", r, r);
    }
    fclose(f);
    return dir;
}

START_TEST(plot_hand_written_rows_for_every_other_kind)
{
    const char *dir = fake_results();
    char *err = NULL;
    int rc = rs_test_run_cli(rs_test_cmd("plot %s --no-render", dir), NULL, &err);
    ck_assert_msg(rc == 0, "plot: %s", err);
    free(err);
    double v[8];

    /* cache: one line per policy, x = slots, y = hit rate with its interval */
    const char *cache = plot_file(dir, "cache-hit_rate.dat");
    ck_assert_int_eq(dat_row(cache, "# series 0: lru", "4 ", v, 4), 4);
    expect_close(v[1], 0.75, "lru at 4 slots");
    expect_close(v[2], 0.74, "lru ci_low");
    expect_close(v[3], 0.77, "lru ci_high");
    ck_assert_int_eq(dat_row(cache, "# series 1: belady", "2 ", v, 2), 2);
    expect_close(v[1], 0.625, "belady at 2 slots");
    const char *cache_gp = plot_file(dir, "cache-hit_rate.gp");
    ck_assert(file_has(cache_gp, "set xlabel 'cache slots per layer'") && file_has(cache_gp, "'hit rate (%)'"));
    ck_assert(file_has(cache_gp, "($2*100)") && file_has(cache_gp, "yerrorlines") && file_has(cache_gp, "title 'lru'"));
    ck_assert(file_has(plot_file(dir, "cache-hit_rate.txt"), "scope=layer"));

    /* segment: x = m, one line per run */
    const char *seg = plot_file(dir, "segment-srp-srp.dat");
    ck_assert_int_eq(dat_row(seg, "# series 1: b's run,x", "16 ", v, 2), 2);
    expect_close(v[1], 1.0 / 16 + 0.25, "srp of b at m=16");
    ck_assert(file_has(plot_file(dir, "segment-srp-srp.gp"), "set logscale x 2\nset format x '%g'"));

    /* bars with an interval; the label with a quote and a comma */
    const char *bars = plot_file(dir, "bars-load-maxvio.dat");
    ck_assert_int_eq(dat_row(bars, NULL, "0 ", v, 4), 4);
    expect_close(v[1], 0.5, "bars value");
    expect_close(v[2], 0.25, "bars ci_low");
    expect_close(v[3], 0.75, "bars ci_high");
    ck_assert(file_has(bars, "\"b's run,x\""));
    ck_assert(file_has(plot_file(dir, "bars-load-maxvio.gp"), "with vectors heads"));
    ck_assert(file_has(plot_file(dir, "layers-load-maxvio.gp"), "title 'b''s run,x'"));

    /* cost-quality (two traces: one figure for the one with outcomes): the sweep as a curve ordered by
     * cost, single models labelled by model, the oracle */
    const char *cq = plot_file(dir, "cost_quality-q.dat");
    ck_assert_int_eq(dat_row(cq, "# series 0: cost_aware", "0.4 ", v, 2), 2);
    expect_close(v[1], 0.65, "cost_aware lambda=3");
    char *text = rs_test_read_file(cq);
    ck_assert_ptr_nonnull(text);
    const char *curve = strstr(text, "# series 0: cost_aware");
    ck_assert_ptr_nonnull(curve);
    const char *p04 = strstr(curve, "\n0.4 "), *p06 = strstr(curve, "\n0.6 "), *p09 = strstr(curve, "\n0.9 ");
    ck_assert_msg(p04 && p06 && p09 && p04 < p06 && p06 < p09, "curve ordered by cost:\n%s", curve);
    ck_assert(strstr(text, "\"weak\"") && strstr(text, "\"strong\""));
    free(text);
    ck_assert_int_eq(dat_row(cq, "# series 2: oracle", "0.35 ", v, 2), 2);
    expect_close(v[1], 0.86, "oracle quality");
    const char *cq_gp = plot_file(dir, "cost_quality-q.gp");
    ck_assert(file_has(cq_gp, "with labels") && file_has(cq_gp, "title 'single models'"));
    ck_assert(file_has(cq_gp, "set xlabel 'mean cost per query'"));
    const char *cq2 = plot_file(dir, "cost_quality-q2.dat");
    ck_assert_int_eq(dat_row(cq2, "# series 1: single models", "0.125 ", v, 2), 2);
    expect_close(v[1], 0.5, "model small from outcome.model_quality");
    ck_assert(file_has(cq2, "\"small\"") && file_has(cq2, "\"big\""));
    /* the sweep kind also sees cost_aware over lambda */
    const char *sweep_gp = plot_file(dir, "sweep-outcome-quality-vs-lambda.gp");
    ck_assert(rs_test_file_exists(sweep_gp));
    /* x tics labelled as the run labels write the values (lambda=0.1, lambda=3), not by gnuplot */
    ck_assert(file_has(sweep_gp, "\"0.1\" 0.1") && file_has(sweep_gp, "\"3\" 3"));
}
END_TEST

START_TEST(plot_kind_and_metric_select_figures)
{
    const char *dir = fake_results();
    char *err = NULL;
    int rc = rs_test_run_cli(rs_test_cmd("plot %s --no-render -q --kind bars --metric load.maxvio", dir), NULL, &err);
    ck_assert_msg(rc == 0, "plot: %s", err);
    free(err);
    ck_assert_int_eq(count_files(rs_test_cmd("%s/plots", dir), ".gp"), 1);
    ck_assert(rs_test_file_exists(plot_file(dir, "bars-load-maxvio.gp")));
    /* a family name selects its metrics; a metric with several keys named explicitly gets a figure per key */
    rc = rs_test_run_cli(rs_test_cmd("plot %s --no-render -q --kind bars --metric srp --output %s/sel", dir, dir), NULL, &err);
    ck_assert_msg(rc == 0, "plot: %s", err);
    free(err);
    ck_assert_int_eq(count_files(rs_test_cmd("%s/sel", dir), ".gp"), 3);
    ck_assert(rs_test_file_exists(rs_test_cmd("%s/sel/bars-srp-srp-m_16_rho_2.gp", dir)));
    /* a style file goes into every script */
    const char *style = rs_test_path("style.gp");
    FILE *f = fopen(style, "w");
    fputs("set grid xtics  # house-style-marker\n", f);
    fclose(f);
    rc = rs_test_run_cli(rs_test_cmd("plot %s --no-render -q --kind cache --style %s", dir, style), NULL, &err);
    ck_assert_msg(rc == 0, "plot: %s", err);
    free(err);
    ck_assert(file_has(plot_file(dir, "cache-hit_rate.gp"), "house-style-marker"));
}
END_TEST

/* Runs a command that must fail with one stderr line holding needle. */
static void expect_failure(const char *args, int code, const char *needle)
{
    char *out = NULL, *err = NULL;
    int rc = rs_test_run_cli(args, &out, &err);
    ck_assert_msg(rc == code, "exit %d (wanted %d) for %s; stderr: %s", rc, code, args, err);
    int lines = 0;
    for (const char *p = err; p && *p; p++)
        lines += *p == '\n';
    ck_assert_msg(lines == 1 && strncmp(err, "routesim", 8) == 0, "one line for %s, got: %s", args, err);
    ck_assert_msg(strstr(err, needle) != NULL, "stderr '%s' lacks '%s'", err, needle);
    free(out);
    free(err);
}

START_TEST(plot_bad_inputs)
{
    const char *dir = fake_results();
    expect_failure(rs_test_cmd("plot %s/nowhere", dir), 1, "no such results directory");
    const char *empty = rs_test_path("empty");
    ck_assert_int_eq(mkdir(empty, 0777), 0);
    expect_failure(rs_test_cmd("plot %s", empty), 1, "results.csv: cannot read");
    expect_failure(rs_test_cmd("plot %s --kind pie", dir), 2, "unknown kind 'pie' (known: bars, layers, heatmap");
    expect_failure(rs_test_cmd("plot %s --format gif", dir), 2, "unknown format 'gif'");
    expect_failure(rs_test_cmd("plot %s --metric load.maxvoi", dir), 1, "no rows for metric 'load.maxvoi'");
    expect_failure(rs_test_cmd("plot %s --kind heatmap", dir), 1, "nothing to plot");
    expect_failure("plot", 2, "expected a results directory");
    /* plots/ cannot be created: a file is in the way */
    const char *blocked = rs_test_path("blocked");
    ck_assert_int_eq(mkdir(blocked, 0777), 0);
    ck_assert_int_eq(system(rs_test_cmd("cp %s/results.csv %s/ && touch %s/plots", dir, blocked, blocked)), 0);
    expect_failure(rs_test_cmd("plot %s", blocked), 1, "plots: not a directory");
    /* malformed results */
    FILE *f = fopen(rs_test_cmd("%s/results.csv", empty), "w");
    fputs("run,trace,router,metric,value\n", f);
    fclose(f);
    expect_failure(rs_test_cmd("plot %s", empty), 1, "line 1: expected the header");
    f = fopen(rs_test_cmd("%s/results.csv", empty), "w");
    fputs("run,trace,router,params,metric,key,layer,value\na,t.h5,topk,k=2,load.maxvio,,all,high\n", f);
    fclose(f);
    expect_failure(rs_test_cmd("plot %s", empty), 1, "line 2: value");
    f = fopen(rs_test_cmd("%s/results.csv", empty), "w");
    fputs("run,trace,router,params,metric,key,layer,value\na,t.h5,topk,k=2,load.maxvio,,top,1\n", f);
    fclose(f);
    expect_failure(rs_test_cmd("plot %s", empty), 1, "line 2: layer");
    /* gnuplot failing on a script names the script and leaves no partial figure */
    setenv("ROUTESIM_GNUPLOT", "/bin/false", 1);
    expect_failure(rs_test_cmd("plot %s --kind bars --metric load.maxvio", dir), 1, "bars-load-maxvio.gp: gnuplot failed");
    ck_assert_int_eq(count_files(rs_test_cmd("%s/plots", dir), ".png"), 0);
    ck_assert_int_eq(count_temporaries(rs_test_cmd("%s/plots", dir)), 0);
    unsetenv("ROUTESIM_GNUPLOT");
    if (have_gnuplot()) {
        const char *style = rs_test_path("bad-style.gp");
        FILE *sf = fopen(style, "w");
        fputs("set no_such_option 1\n", sf);
        fclose(sf);
        expect_failure(rs_test_cmd("plot %s --kind bars --metric load.maxvio --style %s", dir, style), 1,
                       "bars-load-maxvio.gp: gnuplot failed");
    }
}
END_TEST

static cJSON *json(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    ck_assert_msg(j != NULL, "bad test JSON: %s", text);
    return j;
}

static void expect_config_error(const char *text, const char *message)
{
    cJSON *j = json(text);
    rs_error err = {{0}};
    ck_assert_int_eq(rs_plot_config_check(j, "exp.json", &err), -1);
    ck_assert_msg(strstr(err.msg, message) != NULL, "'%s' lacks '%s'", err.msg, message);
    cJSON_Delete(j);
}

START_TEST(plot_config_value_is_checked_with_its_path)
{
    rs_error err = {{0}};
    ck_assert_int_eq(rs_plot_config_check(NULL, "exp.json", &err), 0);
    const char *good[] = {"true", "false", "[]", "[{}]",
                          "[{\"kind\": \"bars\", \"metric\": \"load.maxvio\", \"format\": \"pdf\", \"size\": "
                          "\"double\"}, {\"metric\": \"load\"}, {\"format\": \"png,svg\"}]",
                          "[{\"metric\": \"curve.aiq\"}, {\"metric\": \"curve\"}]"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        cJSON *j = json(good[i]);
        ck_assert_msg(rs_plot_config_check(j, "exp.json", &err) == 0, "%s: %s", good[i], err.msg);
        cJSON_Delete(j);
    }
    expect_config_error("[{\"kind\": \"bars\"}, {\"kind\": \"pie\"}]",
                        "exp.json: plots[1].kind: unknown kind 'pie' (known: bars, layers, heatmap, cache, segment, "
                        "sweep, metric_sweep, cost_quality)");
    expect_config_error("[{\"kind\": \"bars\", \"colour\": \"red\"}]",
                        "exp.json: plots[0]: unknown key 'colour' (known: kind, metric, format, size)");
    expect_config_error("[{\"metric\": \"load.maxvoi\"}]", "exp.json: plots[0].metric: unknown metric 'load.maxvoi'");
    expect_config_error("[{\"metric\": \"nosuch\"}]", "plots[0].metric: unknown metric 'nosuch'");
    expect_config_error("[{\"metric\": \"curve.nosuch\"}]", "plots[0].metric: unknown metric 'curve.nosuch'");
    expect_config_error("[{\"format\": \"gif\"}]", "exp.json: plots[0].format: unknown format 'gif'");
    expect_config_error("[{\"size\": \"huge\"}]", "exp.json: plots[0].size: unknown size 'huge'");
    expect_config_error("[{\"kind\": 3}]", "exp.json: plots[0].kind: expected a string");
    expect_config_error("[1]", "exp.json: plots[0]: expected an object");
    expect_config_error("\"yes\"", "exp.json: plots: expected true, false or a list");
}
END_TEST

START_TEST(plot_results_api_for_configs)
{
    const char *dir = fake_results();
    setenv("ROUTESIM_GNUPLOT", "none", 1); /* data and scripts only: quick, and independent of gnuplot */
    ck_assert_ptr_nonnull(freopen("/dev/null", "w", stderr)); /* the install hint (tested above) */
    rs_error err = {{0}};
    cJSON *off = json("false");
    ck_assert_int_eq(rs_plot_results(dir, off, NULL, 1, &err), 0);
    cJSON_Delete(off);
    ck_assert(!rs_test_file_exists(rs_test_cmd("%s/plots", dir)));

    cJSON *list = json("[{\"kind\": \"bars\", \"metric\": \"load.maxvio\", \"format\": \"svg\", \"size\": \"double\"},"
                       " {\"kind\": \"segment\"}]");
    ck_assert_msg(rs_plot_results(dir, list, "pdf", 1, &err) == 0, "%s", err.msg);
    cJSON_Delete(list);
    const char *bars = plot_file(dir, "bars-load-maxvio.gp");
    ck_assert(file_has(bars, "fmt = 'svg'") && file_has(bars, "size = 'double'"));
    ck_assert(file_has(plot_file(dir, "segment-srp-srp.gp"), "fmt = 'pdf'")); /* the caller's format */
    ck_assert_int_eq(count_files(rs_test_cmd("%s/plots", dir), ".gp"), 2);

    cJSON *automatic = json("true");
    ck_assert_msg(rs_plot_results(dir, automatic, NULL, 1, &err) == 0, "%s", err.msg);
    cJSON_Delete(automatic);
    ck_assert(rs_test_file_exists(plot_file(dir, "cache-hit_rate.gp")));
    ck_assert(rs_test_file_exists(plot_file(dir, "cost_quality-q.gp")));

    cJSON *absent = json("[{\"metric\": \"sch\"}]");
    ck_assert_int_eq(rs_plot_results(dir, absent, NULL, 1, &err), -1);
    ck_assert_msg(strstr(err.msg, "plots[0].metric: no rows for metric 'sch'") != NULL, "%s", err.msg);
    cJSON_Delete(absent);
    cJSON *bad = json("[{\"kind\": \"pie\"}]");
    ck_assert_int_eq(rs_plot_results(dir, bad, NULL, 1, &err), -1);
    ck_assert_msg(strstr(err.msg, "plots[0].kind: unknown kind 'pie'") != NULL, "%s", err.msg);
    cJSON_Delete(bad);
}
END_TEST

Suite *plot_suite(void)
{
    Suite *s = suite_create("plot");
    TCase *tc = tcase_create("plot");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, plot_run_results_hold_the_numbers);
    tcase_add_test(tc, plot_renders_every_format_when_gnuplot_is_there);
    tcase_add_test(tc, plot_without_gnuplot_writes_scripts_and_says_how_to_install);
    tcase_add_test(tc, plot_hand_written_rows_for_every_other_kind);
    tcase_add_test(tc, plot_kind_and_metric_select_figures);
    tcase_add_test(tc, plot_bad_inputs);
    tcase_add_test(tc, plot_config_value_is_checked_with_its_path);
    tcase_add_test(tc, plot_results_api_for_configs);
    suite_add_tcase(s, tc);
    return s;
}
