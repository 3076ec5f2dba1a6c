/* bars: one metric (layer = all) across runs, with error bars where the
 * results carry an interval. */
#include <math.h>
#include <string.h>

#include "plots/plot_internal.h"

/* Automatic bars stop at this many runs: beyond it sweeps and curves say more than a wall of bars. */
enum { MAX_AUTOMATIC_BARS = 24 };

static int usable(const rs_plot_table *t, int metric, int key, const char *param, int automatic)
{
    (void)param;
    if (!rs_plot_has_finite(t, metric, key, -1))
        return 0;
    if (!automatic)
        return 1;
    int bars = 0;
    for (int r = 0; r < t->num_runs; r++)
        bars += rs_plot_table_find(t, metric, r, key, -1) != NULL;
    return bars <= MAX_AUTOMATIC_BARS && !rs_plot_is_constant(t, metric, key, -1);
}

static int bars_plan(const rs_plot_table *t, const char *metric, rs_plot_figures *out, rs_error *err)
{
    for (int m = 0; m < t->results.num_metrics; m++)
        if (rs_plot_metric_matches(t->results.metrics[m].name, metric))
            RS_TRY(rs_plot_add_per_key(t, RS_PLOT_KIND_bars, m, metric, NULL, NULL, usable, out, err) < 0 ? -1 : 0);
    return 0;
}

/* A round tic step (1, 2 or 5 times a power of ten) giving at most max_tics tics over range. */
static double nice_step(double range, int max_tics)
{
    double raw = range / max_tics, base = pow(10, floor(log10(raw)));
    return raw <= base ? base : raw <= 2 * base ? 2 * base : raw <= 5 * base ? 5 * base : 10 * base;
}

static int bars_write(const rs_plot_table *t, const rs_plot_figure *fig, const rs_plot_target *tg, rs_error *err)
{
    const char *name = t->results.metrics[fig->metric].name, *key = t->results.keys[fig->key];
    rs_plot_axis axis;
    rs_plot_metric_axis(name, &axis);
    char what[512];
    snprintf(what, sizeof what, "bars of %s (layer = all%s%s) across runs", name, key[0] ? ", key " : "", key);

    /* the runs that have the value, in run order */
    int n = 0, any_ci = 0, negative = 0, nonzero = 0;
    double lo = 0, hi = 0; /* the value range, zero included */
    size_t longest = 0;
    for (int r = 0; r < t->num_runs; r++) {
        const rs_plot_value *v = rs_plot_table_find(t, fig->metric, r, fig->key, -1);
        if (!v)
            continue;
        n++;
        any_ci |= v->has_ci;
        negative |= (v->has_value && v->value < 0) || (v->has_ci && v->ci_low < 0);
        nonzero |= v->has_value && isfinite(v->value) && v->value != 0;
        const double ends[3] = {v->value, v->has_ci ? v->ci_low : NAN, v->has_ci ? v->ci_high : NAN};
        for (int e = 0; e < 3; e++) {
            if (isfinite(ends[e])) {
                lo = fmin(lo, ends[e]);
                hi = fmax(hi, ends[e]);
            }
        }
        longest = strlen(t->runs[r].name) > longest ? strlen(t->runs[r].name) : longest;
    }

    if (!nonzero)
        return RS_PLOT_BLANK; /* no bar to draw */
    rs_plot_file pf;
    RS_TRY(rs_plot_file_open(&pf, tg, fig->stem, "dat", err));
    rs_plot_data_header(pf.f, tg, what);
    fprintf(pf.f, "# y: %s%s\n# columns: index value ci_low ci_high (nan = none) run\n", axis.label,
            axis.scale != 1 ? " (the script multiplies by 100)" : "");
    int i = 0;
    for (int r = 0; r < t->num_runs; r++) {
        const rs_plot_value *v = rs_plot_table_find(t, fig->metric, r, fig->key, -1);
        if (!v)
            continue;
        fprintf(pf.f, "%d ", i++);
        rs_plot_data_number(pf.f, v->value);
        fputc(' ', pf.f);
        rs_plot_data_number(pf.f, v->has_ci ? v->ci_low : NAN);
        fputc(' ', pf.f);
        rs_plot_data_number(pf.f, v->has_ci ? v->ci_high : NAN);
        fputc(' ', pf.f);
        rs_plot_data_string(pf.f, t->runs[r].name);
        fputc('\n', pf.f);
    }
    RS_TRY(rs_plot_file_close(&pf, err));

    char scaled[3][48];
    for (int c = 0; c < 3; c++) {
        if (axis.scale == 1)
            snprintf(scaled[c], sizeof scaled[c], "%d", c + 2);
        else
            snprintf(scaled[c], sizeof scaled[c], "($%d*%g)", c + 2, axis.scale);
    }
    /* Few short labels sit under upright bars (at an angle when they would
     * touch); long or many labels read better beside horizontal bars, on
     * lines of at most WRAP characters so that the bars keep their room. */
    enum { WRAP = 24 };
    int horizontal = n > 8 || longest > 16;
    int rotate = !horizontal && (n > 4 || longest > 10);
    int lines = 1;    /* the most lines of a wrapped label */
    size_t widest = 0; /* its longest line */
    for (int r = 0; horizontal && r < t->num_runs; r++) {
        char wrapped[512];
        if (!rs_plot_table_find(t, fig->metric, r, fig->key, -1))
            continue;
        int k = rs_plot_wrap(t->runs[r].name, WRAP, wrapped, sizeof wrapped);
        lines = k > lines ? k : lines;
        for (char *line = wrapped; line;) {
            char *end = strchr(line, '\n');
            size_t len = end ? (size_t)(end - line) : strlen(line);
            widest = len > widest ? len : widest;
            line = end ? end + 1 : NULL;
        }
    }
    double single_height = horizontal ? fmax(1.6, 0.75 + (0.06 + 0.14 * lines) * n) : rotate ? 2.9 : 2.5;
    double double_height = horizontal ? fmax(1.8, 0.85 + (0.06 + 0.16 * lines) * n) : rotate ? 3.2 : 2.8;
    /* the value axis of the one-column figure, in points (8 pt font: about 4.4 pt a character), and
     * the margin its centred label may reach into on either side */
    double axis_pt = horizontal ? 252 - (double)widest * 4.4 - 30 : single_height * 72 - (rotate ? 80 : 45);
    axis_pt += horizontal ? 24 : 12;
    char axis_text[320];
    rs_plot_wrap(axis.label, (int)(axis_pt / 4.4), axis_text, sizeof axis_text);
    RS_TRY(rs_plot_file_open(&pf, tg, fig->stem, "gp", err));
    FILE *f = pf.f;
    rs_plot_script_preamble(f, tg, fig, what, single_height, double_height);
    const char *range = negative ? "" : nonzero ? "[0:*]" : "[0:1]";
    if (horizontal) {
        fputs("set xlabel ", f);
        rs_plot_gp_lines(f, axis_text);
        fputs("\nset ytics scale 0 (", f);
        i = 0;
        for (int r = 0; r < t->num_runs; r++) {
            char wrapped[512];
            if (!rs_plot_table_find(t, fig->metric, r, fig->key, -1))
                continue;
            rs_plot_wrap(t->runs[r].name, WRAP, wrapped, sizeof wrapped);
            fputs(i ? ", " : "", f);
            rs_plot_gp_lines(f, wrapped);
            fprintf(f, " %d", i++);
        }
        fprintf(f, ")\nset yrange [%g:-0.6]  # the first run on top\n", n - 0.4);
        if (hi > lo) /* the value axis is short here: at most five tics */
            fprintf(f, "set xtics %.10g\n", nice_step((hi - lo) * axis.scale, 5));
        if (range[0])
            fprintf(f, "set xrange %s\n", range);
        fputs("unset grid\nset grid xtics lt 1 lw 1 lc rgb '#dddddd'\nset rmargin 3\nunset key\n", f);
        rs_plot_script_overrides(f, tg);
        fprintf(f, "plot '%s.dat' using (0):1:(0):%s:($1-0.35):($1+0.35) with boxxyerror lt 1", fig->stem,
                scaled[0]);
        if (any_ci)
            fprintf(f,
                    ", \\\n     '' using %s:1:(($4-$3)*%g):(0) with vectors heads size screen 0.012,90 lt -1 dt 1 "
                    "lw 1.5",
                    scaled[1], axis.scale);
    } else {
        fputs("set ylabel ", f);
        rs_plot_gp_lines(f, axis_text);
        fputs(rotate ? "\nset xtics rotate by 30 right scale 0\n" : "\nset xtics scale 0\n", f);
        fprintf(f, "set xrange [-0.6:%g]\n", n - 0.4);
        if (range[0])
            fprintf(f, "set yrange %s\n", range);
        fputs("set rmargin 3\nset boxwidth 0.7\nunset key\n", f);
        rs_plot_script_overrides(f, tg);
        fprintf(f, "plot '%s.dat' using 1:%s:xtic(5) with boxes lt 1", fig->stem, scaled[0]);
        if (any_ci) /* intervals as capped vectors: gnuplot's errorbars leave a gap at the point */
            fprintf(f,
                    ", \\\n     '' using 1:%s:(0):(($4-$3)*%g) with vectors heads size screen 0.012,90 lt -1 dt 1 "
                    "lw 1.5",
                    scaled[1], axis.scale);
    }
    fputc('\n', f);
    RS_TRY(rs_plot_file_close(&pf, err));

    char caption[2048];
    const char *def = rs_plot_metric_definition(name);
    snprintf(caption, sizeof caption, "%s (%s) of each run, over all layers (layer = all)%s%s.%s%s%s", name,
             axis.label, key[0] ? ", key " : "", key, def[0] ? " Definition: " : "", def,
             any_ci ? " Error bars: the interval of the results' stat=ci_low / stat=ci_high rows." : "");
    return rs_plot_write_caption(tg, fig, caption, err);
}

static const rs_plot_kind bars_kind = {
    .name = "bars",
    .needs = "a metric's layer=all rows (intervals from stat=ci_low/ci_high rows)",
    .plan = bars_plan,
    .write = bars_write,
};

const rs_plot_kind *const rs_plot_kind_bars = &bars_kind;
