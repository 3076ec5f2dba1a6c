/* Figures from a results directory (docs/plots.md): `routesim plot` and a
 * config's "plots" key. Each figure is a data file, a self-contained
 * gnuplot script and a caption under RESULTS_DIR/plots/, rendered with
 * gnuplot when it is installed. */
#ifndef ROUTESIM_PLOT_H
#define ROUTESIM_PLOT_H

#include "routesim/error.h"

struct cJSON;

/* What `routesim plot` asks for. NULL / 0 fields take the defaults. */
typedef struct rs_plot_options {
    const char *results_dir;     /* holds results.csv (and results.json) */
    const char *output_dir;      /* default results_dir/plots */
    const char *formats;         /* "png", "pdf", "svg" or a comma list; default png */
    const char *size;            /* "single" (3.5 in) or "double" (7 in); default single */
    const char *const *kinds;    /* figure kinds to make; none = every kind the data allows */
    int num_kinds;
    const char *const *metrics;  /* metrics (or families) to plot; none = every metric */
    int num_metrics;
    const char *style_file;      /* gnuplot commands added before every plot command; default $ROUTESIM_PLOT_STYLE */
    int no_render;               /* write data and scripts only */
    int quiet;                   /* no summary (gnuplot's absence is still reported) */
} rs_plot_options;

/* Makes the figures the options ask for. Fails when the results cannot be
 * read, a requested metric has no rows, an explicit request yields no
 * figure, a file cannot be written or gnuplot fails on a script. A missing
 * gnuplot is not a failure: data and scripts are written and the way to
 * install and render is printed. */
int rs_plot_make(const rs_plot_options *opt, rs_error *err);

/* For `routesim run`: makes the figures a config's "plots" value asks for
 * from results_dir. plots: true = automatic, false, [] or NULL = none, or
 * a list of {"kind", "metric", "format", "size"} objects (each key
 * optional; {} = automatic). format is the format for entries that name none (NULL =
 * png). Validate the value first with rs_plot_config_check. */
int rs_plot_results(const char *results_dir, const struct cJSON *plots, const char *format, int quiet,
                    rs_error *err);

/* Checks a config's "plots" value; errors name source and the JSON path,
 * e.g. "exp.json: plots[1].kind: unknown kind 'pie' (known: bars, ...)". */
int rs_plot_config_check(const struct cJSON *plots, const char *source, rs_error *err);

/* Figure kinds, for listings: names[i] and what each needs. */
int rs_plot_kind_count(void);
const char *rs_plot_kind_name(int kind);
const char *rs_plot_kind_needs(int kind);

#endif
