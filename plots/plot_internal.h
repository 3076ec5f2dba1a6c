/* Shared by the plot*.c files: the results table, figure requests, the
 * script and data writers, and the figure kinds.
 *
 *   plot_table.c    the results (sim/results/results_reader.c) as figures see them
 *   plot_sweeps.c   runs of one config entry that differ in one parameter
 *   plot_choose.c   which figures to make (kinds x metrics)
 *   plot_labels.c   axis labels and units of metrics and parameters
 *   plot_script.c   files, quoting, the shared gnuplot style preamble
 *   plot_chart.c    x-y figures (lines and points) shared by several kinds
 *   kinds/<kind>.c  one figure kind each; kinds/registry.{def,c} the table
 *   plot_render.c   running gnuplot
 *   plot.c          rs_plot_make: read, choose, write, render, report
 *   plot_config.c   the config's "plots" value */
#ifndef ROUTESIM_PLOT_INTERNAL_H
#define ROUTESIM_PLOT_INTERNAL_H

#include <stddef.h>
#include <stdio.h>

#include "plots/plot.h"
#include "routesim/metric.h"
#include "sim/results/results_reader.h"

/* Figure kinds by index, in the order of plots/kinds/registry.def. */
enum {
#define RS_PLOT_KIND(id) RS_PLOT_KIND_##id,
#include "plots/kinds/registry.def"
#undef RS_PLOT_KIND
    RS_PLOT_NUM_KINDS
};

/* Output formats, as bits. */
enum { RS_PLOT_PNG = 1u, RS_PLOT_SVG = 2u, RS_PLOT_PDF = 4u };

/* ---- the results table (plot_table.c, read by sim/results/results_reader.c) ---- */

typedef rs_results_table_value rs_plot_value;
typedef rs_results_table_metric rs_plot_metric;

typedef struct rs_plot_run {
    const char *label, *trace, *router, *params; /* the results' run: a run is one (label, trace) */
    char *name;  /* what figures call it: the label, plus the trace's name when other traces have runs so labelled */
    int entry; /* config routers[] entry from results.json runs[].entry; -1 unknown */
    int repeat; /* one seed of a router repeated over seeds (LABEL@seed=S beside a summary run LABEL):
                   figures show the summary, with its interval, instead */
} rs_plot_run;

typedef struct rs_plot_sweep rs_plot_sweep;

/* The results as read (keys, metrics, values, the experiment's name) and
 * what figures add to them: display names of runs, seed repeats, sweeps. */
typedef struct rs_plot_table {
    rs_results_table results; /* owns the strings and values */
    rs_plot_run *runs; /* results.runs[i] as runs[i], with display names */
    int num_runs;
    rs_plot_sweep *sweeps; /* plot_sweeps.c */
    int num_sweeps;
} rs_plot_table;

int rs_plot_table_read(rs_plot_table *t, const char *results_dir, rs_error *err);
void rs_plot_table_free(rs_plot_table *t);
/* The value of (metric, run, key, layer), or NULL; NULL for a seed repeat's run. */
const rs_plot_value *rs_plot_table_find(const rs_plot_table *t, int metric, int run, int key, int layer);
/* 1 when filter (NULL = any, "load.maxvio", or a family "load") selects the metric. */
int rs_plot_metric_matches(const char *metric, const char *filter);
/* The trace's file name without directory and extension. */
void rs_plot_trace_stem(const char *trace, char *buf, size_t size);
/* Number of distinct traces among the runs. */
int rs_plot_num_traces(const rs_plot_table *t);

/* Keys are "name=value" parts joined by ';'. Copies the value of part
 * `name` into buf and returns 1, or returns 0 when the key has no such part. */
int rs_plot_key_part(const char *key, const char *name, char *buf, size_t size);
/* The key without part `name` (parts keep their order). */
void rs_plot_key_without(const char *key, const char *name, char *buf, size_t size);
/* The parts of key whose values differ among keys[0..n) (or are missing in
 * some), as "name=value, ..." ("policy" shows its value alone). */
void rs_plot_key_varying(const char *const *keys, int n, const char *key, char *buf, size_t size);
/* The same parts of key, as a key: "name=value;..." in key order (file names, matching). */
void rs_plot_key_varying_key(const char *const *keys, int n, const char *key, char *buf, size_t size);
/* The names of the parts of keys[0] that vary among keys[0..n): "policy and replicas". */
void rs_plot_key_varying_names(const char *const *keys, int n, char *buf, size_t size);
/* The parts of keys[0] every key of keys[0..n) shares, as "name=value, ..." (captions). */
void rs_plot_key_shared(const char *const *keys, int n, char *buf, size_t size);

/* ---- sweeps (plot_sweeps.c) ---- */

/* Runs of one trace and router (and config entry, when results.json says)
 * that differ in one parameter, with everything else equal. */
struct rs_plot_sweep {
    char param[64];  /* the parameter on x */
    int numeric;     /* its values are numbers; else x is their order of appearance */
    char label[256]; /* the runs' label without the swept part, e.g. "topk" for topk:k=1, topk:k=2 */
    int n;
    int *runs;       /* sorted by x */
    double *x;
};

int rs_plot_sweeps_find(rs_plot_table *t, rs_error *err);
void rs_plot_sweeps_free(rs_plot_table *t);

/* ---- figures (plot_choose.c) ---- */

typedef struct rs_plot_figure {
    int kind;
    char stem[192];  /* file name without extension, unique in the output directory */
    int metric;      /* table index, -1 = none */
    int key;         /* table key id, -1 = none */
    int run;         /* one run (heatmap, cache) or a run of the figure's trace (cost_quality); -1 = all */
    char param[64];  /* sweep: the parameter on x */
    int one_rest;    /* segment: only keys whose other parts (without m=) are `rest`; heatmap: keys whose
                        parts other than expert= / device= are `rest`; metric_sweep: lines whose split key is `rest` */
    char rest[1024];
    unsigned formats;
    int double_size; /* 7 in wide instead of 3.5 in */
} rs_plot_figure;

typedef struct rs_plot_figures {
    rs_plot_figure *items;
    int n, cap;
} rs_plot_figures;

/* Appends a figure (metric, key, run = -1) unless one with the same stem is
 * there; returns NULL when out of memory, or the existing figure. */
rs_plot_figure *rs_plot_figures_add(rs_plot_figures *list, int kind, const char *stem, rs_error *err);
/* Appends a new figure: a stem already taken (two figures whose stems were
 * cut to the same length) gets "-2", "-3", ...; NULL when out of memory. */
rs_plot_figure *rs_plot_figures_add_new(rs_plot_figures *list, int kind, const char *stem, rs_error *err);
void rs_plot_figures_free(rs_plot_figures *list);

/* What one request asks for: kinds (bits; 0 = all), one metric filter
 * (NULL = all), formats and size. */
typedef struct rs_plot_request {
    unsigned kinds;
    const char *metric;
    unsigned formats;
    int double_size;
} rs_plot_request;

/* Adds the figures a request yields; counts what each kind added. */
int rs_plot_choose(const rs_plot_table *t, const rs_plot_request *req, rs_plot_figures *out, int *made_by_kind,
                   rs_error *err);
/* Kind index by name, or -1; the known names joined by ", " into buf (kinds/registry.c). */
int rs_plot_kind_find(const char *name);
void rs_plot_kind_list(char *buf, size_t size);
/* Parses "png", "pdf,svg" into format bits; 0 when a name is unknown. */
unsigned rs_plot_parse_formats(const char *text);

/* ---- making them (plot.c) ---- */

/* The text of a style file (gnuplot commands), or NULL with a message. */
char *rs_plot_read_style(const char *path, rs_error *err);
/* Fails unless some metric of the table matches filter; where prefixes the message. */
int rs_plot_require_metric(const rs_plot_table *t, const char *metric, const char *where, rs_error *err);
struct rs_plot_target;
/* Chooses, writes and renders the figures of the requests. explicit_: the
 * requests named kinds or metrics, so finding nothing to plot is an error. */
int rs_plot_make_requests(const rs_plot_table *t, const rs_plot_request *reqs, int num_reqs, int explicit_,
                          const struct rs_plot_target *target, int render, int quiet, rs_error *err);

/* ---- labels (plot_labels.c) ---- */

typedef struct rs_plot_axis {
    char label[160]; /* with units, e.g. "hit rate (%)" */
    double scale;    /* the data file holds results.csv's numbers; the script multiplies by this */
} rs_plot_axis;

/* The descriptor of a metric results name: a family's output (load.maxvio)
 * or a cross-run metric's (curve.aiq); NULL when neither knows it. */
const rs_metric_output *rs_plot_metric_output(const char *metric);
void rs_plot_metric_axis(const char *metric, rs_plot_axis *axis);
/* Whether param is a parameter of the family of a metric results name
 * ("placement.imbalance_ratio"): 1 (its description in *help when help is
 * not NULL; numeric: 1 for int and float parameters), 0 when the family
 * has no such parameter, -1 when the family is unknown (a plugin's, curve.*). */
int rs_plot_metric_param(const char *metric, const char *param, const char **help, int *numeric);
/* "k: experts per token" from the router's parameter description, or the name. */
void rs_plot_param_axis(const char *router, const char *param, char *buf, size_t size);
/* The metric's one-line definition from its family descriptor, or "". */
const char *rs_plot_metric_definition(const char *metric);

/* ---- files and scripts (plot_script.c) ---- */

typedef struct rs_plot_target {
    const char *dir;        /* where the files go */
    const char *csv_path;   /* the results they come from */
    const char *style;      /* gnuplot commands added before the plot command, or NULL */
    const char *style_path; /* where those came from */
} rs_plot_target;

/* A file written under a temporary name and renamed when closed. */
typedef struct rs_plot_file {
    FILE *f;
    char path[4400], tmp[4500];
} rs_plot_file;

int rs_plot_file_open(rs_plot_file *pf, const rs_plot_target *tg, const char *stem, const char *ext, rs_error *err);
int rs_plot_file_close(rs_plot_file *pf, rs_error *err);
void rs_plot_file_discard(rs_plot_file *pf);

/* A gnuplot string literal ('...' with '' for a quote: no escapes, no enhanced text). */
void rs_plot_gp_string(FILE *f, const char *s);
/* A gnuplot string literal that keeps line breaks ("..." with \n, \" and \\;
 * '...' as rs_plot_gp_string when there is none): wrapped tic and axis labels. */
void rs_plot_gp_lines(FILE *f, const char *s);
/* " lt C" and, past the palette's eight, " dt D pt P": the style of the
 * index-th series (0-based) of a figure. Colour and dash together differ for
 * the first 64 series: series i has colour i mod 8 and the dash (and point)
 * of line type (i + i / 8) mod 8. */
void rs_plot_series_style(FILE *f, int index);
/* A string field of a data file ("..." with the quote and line breaks replaced). */
void rs_plot_data_string(FILE *f, const char *s);
/* A number in a data file, as results.csv writes it (rs_number_text); nan when undefined. */
void rs_plot_data_number(FILE *f, double v);
/* File-name part: letters, digits, '_' and '-' ('.' becomes '-'), at most size-1 chars. */
void rs_plot_slug(const char *s, char *buf, size_t size);

/* Header comment (what, where the data comes from, how to render) and the
 * shared style: format and size variables, terminal, Okabe-Ito line types
 * with distinct dash and point types, axes. Heights are in inches for the
 * one- and two-column widths. */
void rs_plot_script_preamble(FILE *f, const rs_plot_target *tg, const rs_plot_figure *fig, const char *what,
                             double single_height, double double_height);
/* The style file's commands (--style, $ROUTESIM_PLOT_STYLE), written just
 * before the plot command so that they override everything above. */
void rs_plot_script_overrides(FILE *f, const rs_plot_target *tg);
/* The data-file header comment shared by every kind. */
void rs_plot_data_header(FILE *f, const rs_plot_target *tg, const char *what);
/* Writes stem.txt: the caption text plus where the numbers come from. */
int rs_plot_write_caption(const rs_plot_target *tg, const rs_plot_figure *fig, const char *text, rs_error *err);

/* ---- x-y charts (plot_chart.c) ---- */

enum { RS_PLOT_LINE, RS_PLOT_POINTS, RS_PLOT_LABELLED_POINTS };

typedef struct rs_plot_point {
    double x, y, lo, hi; /* lo, hi: interval, NAN when none */
    char label[96];      /* RS_PLOT_LABELLED_POINTS: text beside the point */
    int label_place;     /* where the text goes: RS_PLOT_LABEL_RIGHT, ... (rs_plot_place_labels chooses) */
} rs_plot_point;

typedef struct rs_plot_series {
    char label[256];
    int style;     /* RS_PLOT_LINE, ... */
    int linetype;  /* 1..8 of the preamble; 0 = the next style (rs_plot_series_style) */
    int pointtype; /* gnuplot point type; 0 = the line type's */
    double pointsize; /* 0 = the line type's */
    rs_plot_point *points;
    int n, cap;
} rs_plot_series;

typedef struct rs_plot_chart {
    char xlabel[160];
    rs_plot_axis y;
    int logx;         /* log base of x, 0 = linear */
    int tics_at_x;    /* x tics at the data's x values (few distinct values) */
    int point_every;  /* > 1: a marker on every n-th point only (long lines) */
    double single_height, double_height;
    rs_plot_series *series;
    int num_series, cap;
} rs_plot_chart;

/* ---- text layout (plot_layout.c) ---- */

/* Wraps text onto lines of at most width characters, joined by '\n' into
 * buf: at a space in the line's second half, else after the last ',', ';',
 * ':', '|', '/' or space, else mid-word. Returns the number of lines. */
int rs_plot_wrap(const char *text, int width, char *buf, size_t size);

/* Where a point's label goes, relative to the point. */
enum {
    RS_PLOT_LABEL_RIGHT,
    RS_PLOT_LABEL_LEFT,
    RS_PLOT_LABEL_BELOW,
    RS_PLOT_LABEL_ABOVE,
    RS_PLOT_LABEL_BELOW_RIGHT,
    RS_PLOT_LABEL_BELOW_LEFT,
    RS_PLOT_LABEL_ABOVE_RIGHT,
    RS_PLOT_LABEL_ABOVE_LEFT,
    RS_PLOT_LABEL_FAR, /* + one of the above: the same side, about twice as far (crowded corners) */
    RS_PLOT_LABEL_PLACES = 2 * RS_PLOT_LABEL_FAR
};

/* The axes' ranges as the script sets them and the plot area's size in points. */
typedef struct rs_plot_frame {
    double xlo, xhi, ylo, yhi; /* y scaled for the axis */
    int logx;
    double width_pt, height_pt;
} rs_plot_frame;

/* The gnuplot label offset (characters) and alignment of a place. */
void rs_plot_label_offset(int place, double *dx, double *dy, const char **align);
/* Chooses label_place for every labelled point of the chart so that its
 * text stays inside the plot area and crosses no line, point or other text
 * where some place allows. */
void rs_plot_place_labels(rs_plot_chart *c, const rs_plot_frame *frame);

rs_plot_series *rs_plot_chart_series(rs_plot_chart *c, const char *label, int style, rs_error *err);
int rs_plot_series_add(rs_plot_series *s, double x, double y, double lo, double hi, rs_error *err);
/* Sorts a series' points by x. */
void rs_plot_series_sort(rs_plot_series *s);
void rs_plot_chart_free(rs_plot_chart *c);
/* A kind's write returns this, having written nothing, for a figure whose
 * values are all zero or absent (it would be blank); rs_plot_make_requests
 * leaves it out and names it in one line. */
enum { RS_PLOT_BLANK = 1 };

/* Writes stem.dat (one block per series: x y ci_low ci_high [label place]) and
 * stem.gp, placing the labels of labelled points; RS_PLOT_BLANK when the
 * chart would be blank. */
int rs_plot_chart_write(rs_plot_chart *c, const rs_plot_figure *fig, const rs_plot_target *tg, const char *what,
                        rs_error *err);

/* ---- kinds (plots/kinds/: one file each, listed in registry.def) ---- */

/* A figure kind: one file under plots/kinds/ with a `static const
 * rs_plot_kind` and a `const rs_plot_kind *const rs_plot_kind_<name>`
 * pointing at it, plus one RS_PLOT_KIND(<name>) line in registry.def. */
typedef struct rs_plot_kind {
    const char *name;  /* what `routesim plot --kind` and a config's plots[].kind call it */
    const char *needs; /* what data it needs, for the summary, `routesim plot --help` and docs */
    /* Adds this kind's figures for the metrics `metric` selects (NULL = all
     * that suit the kind). Figures carry the kind's index, RS_PLOT_KIND_<name>. */
    int (*plan)(const rs_plot_table *t, const char *metric, rs_plot_figures *out, rs_error *err);
    /* Writes the figure's data file, script and caption. */
    int (*write)(const rs_plot_table *t, const rs_plot_figure *fig, const rs_plot_target *tg, rs_error *err);
} rs_plot_kind;

/* The kind at an index of registry.def, or NULL. */
const rs_plot_kind *rs_plot_kind_at(int kind);

/* Helpers the kinds share (plot_choose.c): the key a figure of metric m
 * uses (its only key, or the one asked for) and the stem suffix for it. */
int rs_plot_single_key(const rs_plot_table *t, int metric);
/* stem "<kind>-<metric>[-<key>][-<suffix>]" as a slug. */
void rs_plot_stem(char *buf, size_t size, const char *kind, const char *metric, const char *key, const char *suffix);
/* Adds figures of a kind for metric m: one for its only key; when the
 * metric was asked for (filter != NULL) and has several keys, one per key.
 * param goes to the figures' param; usable (may be NULL) says whether a
 * key has data for the kind. Returns how many it added, or -1. */
/* automatic: no metric was named, so a figure must also show something (not one constant). */
typedef int (*rs_plot_key_usable)(const rs_plot_table *t, int metric, int key, const char *param, int automatic);
int rs_plot_add_per_key(const rs_plot_table *t, int kind, int metric, const char *filter, const char *suffix,
                        const char *param, rs_plot_key_usable usable, rs_plot_figures *out, rs_error *err);
/* A file-name part for one run: its label as a slug, made unique among the runs. */
void rs_plot_run_suffix(const rs_plot_table *t, int run, char *buf, size_t size);
/* 1 when some value of (metric, key) at `layer` (-2 = any layer index >= 0) is finite. */
int rs_plot_has_finite(const rs_plot_table *t, int metric, int key, int layer);
/* 1 when every finite value of (metric, key) at `layer` (-2 = any layer index >= 0) is the same. */
int rs_plot_is_constant(const rs_plot_table *t, int metric, int key, int layer);

/* ---- gnuplot (plot_render.c) ---- */

/* Path of gnuplot: $ROUTESIM_GNUPLOT ("" or "none" = not installed), else
 * `gnuplot` on PATH. Returns 0 when missing. */
int rs_plot_find_gnuplot(char *buf, size_t size);
/* Runs gnuplot on dir/stem.gp for one format and size, writing
 * dir/stem.<format> (under a temporary name, renamed when it is complete
 * and non-empty). gnuplot's warnings, if any, go to warnings. */
int rs_plot_render(const char *gnuplot, const char *dir, const char *stem, const char *format, int double_size,
                   char *warnings, size_t wsize, rs_error *err);
/* Explains how to install gnuplot and render the scripts later. */
void rs_plot_print_install_hint(FILE *out, const char *dir, const char *example_stem);

/* Format names by bit. */
const char *rs_plot_format_name(unsigned bit);

#endif
