/* heatmap: per-expert values by layer for one run, e.g. load.expert_share
 * (the load family's per_expert=1 output; key expert=e). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "plots/plot_internal.h"

/* Expert index of a key with an expert= part, or -1. */
static int expert_of(const char *key)
{
    char text[32];
    double e;
    if (!rs_plot_key_part(key, "expert", text, sizeof text) || !rs_results_parse_number(text, &e) || e < 0 ||
        e > 1e6 || e != floor(e))
        return -1;
    return (int)e;
}

/* More cells than any model's experts x layers (1024 x 128 is 2^17): results
 * naming expert 999999 of layer 999999 get no heatmap of 10^12 cells. */
enum { MAX_CELLS = 1 << 20 };

/* A metric suits a heatmap when its keys name experts and it has per-layer
 * rows, not too many of them. */
static int per_expert(const rs_plot_table *t, int m)
{
    if (t->results.metrics[m].num_layers < 1)
        return 0;
    const rs_plot_metric *pm = &t->results.metrics[m];
    int E = 0;
    for (size_t i = pm->first; i < pm->first + pm->count; i++) {
        int e = expert_of(t->results.keys[t->results.values[i].key]);
        if (e < 0)
            return 0;
        E = e + 1 > E ? e + 1 : E;
    }
    return pm->count > 0 && (int64_t)E * pm->num_layers <= MAX_CELLS;
}

static int run_has_layers(const rs_plot_table *t, int m, int run)
{
    const rs_plot_metric *pm = &t->results.metrics[m];
    for (size_t i = pm->first; i < pm->first + pm->count; i++)
        if (t->results.values[i].run == run && t->results.values[i].layer >= 0 && isfinite(t->results.values[i].value))
            return 1;
    return 0;
}

static int heatmap_plan(const rs_plot_table *t, const char *metric, rs_plot_figures *out, rs_error *err)
{
    for (int m = 0; m < t->results.num_metrics; m++) {
        if (!rs_plot_metric_matches(t->results.metrics[m].name, metric) || !per_expert(t, m))
            continue;
        for (int r = 0; r < t->num_runs; r++) {
            if (!run_has_layers(t, m, r))
                continue;
            char suffix[128], stem[192];
            rs_plot_run_suffix(t, r, suffix, sizeof suffix);
            rs_plot_stem(stem, sizeof stem, "heatmap", t->results.metrics[m].name, NULL, suffix);
            rs_plot_figure *fig = rs_plot_figures_add(out, RS_PLOT_KIND_heatmap, stem, err);
            RS_CHECK(fig, err, "out of memory");
            fig->metric = m;
            fig->run = r;
        }
    }
    return 0;
}

static int heatmap_write(const rs_plot_table *t, const rs_plot_figure *fig, const rs_plot_target *tg, rs_error *err)
{
    const rs_plot_metric *pm = &t->results.metrics[fig->metric];
    const int L = pm->num_layers;
    int E = 0;
    for (size_t i = pm->first; i < pm->first + pm->count; i++) {
        int e = expert_of(t->results.keys[t->results.values[i].key]);
        E = e + 1 > E ? e + 1 : E;
    }
    double *cells = malloc((size_t)L * (size_t)E * sizeof *cells);
    RS_CHECK(cells, err, "out of memory");
    for (size_t i = 0; i < (size_t)L * (size_t)E; i++)
        cells[i] = NAN;
    for (size_t i = pm->first; i < pm->first + pm->count; i++) {
        const rs_plot_value *v = &t->results.values[i];
        if (v->run == fig->run && v->layer >= 0)
            cells[(size_t)v->layer * (size_t)E + (size_t)expert_of(t->results.keys[v->key])] = v->value;
    }
    rs_plot_axis axis;
    rs_plot_metric_axis(pm->name, &axis);
    const char *label = t->runs[fig->run].name;
    char what[512];
    snprintf(what, sizeof what, "heatmap of %s by expert and layer for run %s", pm->name, label);

    rs_plot_file pf;
    int rc = rs_plot_file_open(&pf, tg, fig->stem, "dat", err);
    if (rc == 0) {
        rs_plot_data_header(pf.f, tg, what);
        fprintf(pf.f, "# value: %s%s\n# columns: expert layer value; a blank line after each layer\n", axis.label,
                axis.scale != 1 ? " (the script multiplies by 100)" : "");
        for (int l = 0; l < L; l++) {
            for (int e = 0; e < E; e++) {
                fprintf(pf.f, "%d %d ", e, l);
                rs_plot_data_number(pf.f, cells[(size_t)l * (size_t)E + (size_t)e]);
                fputc('\n', pf.f);
            }
            fputc('\n', pf.f);
        }
        rc = rs_plot_file_close(&pf, err);
    }
    free(cells);
    RS_TRY(rc);

    RS_TRY(rs_plot_file_open(&pf, tg, fig->stem, "gp", err));
    FILE *f = pf.f;
    rs_plot_script_preamble(f, tg, fig, what, 2.7, 3.2);
    fputs("set xlabel 'expert'\nset ylabel 'MoE layer'\nset cblabel ", f);
    rs_plot_gp_string(f, axis.label);
    fputs("\n# viridis: ordered in lightness and readable with colour-blindness and in greyscale\n"
          "set palette defined (0 '#440154', 0.25 '#3B528B', 0.5 '#21908C', 0.75 '#5DC863', 1 '#FDE725')\n"
          "unset grid\nunset key\nset border 15 lw 1\nset tics out\nset colorbox user origin graph 1.04, graph 0 "
          "size graph 0.04, graph 1\nset cbtics scale 0.6\nset cbrange [0:*]\n",
          f);
    fprintf(f, "set xrange [-0.5:%g]\nset yrange [-0.5:%g]\n", E - 0.5, L - 0.5);
    fprintf(f, "set rmargin at screen 0.78\n");
    char value[48];
    if (axis.scale == 1)
        snprintf(value, sizeof value, "3");
    else
        snprintf(value, sizeof value, "($3*%g)", axis.scale);
    rs_plot_script_overrides(f, tg);
    /* image needs a grid of at least 2 x 2; boxes draw any grid */
    if (L >= 2 && E >= 2) /* svg viewers smooth embedded images: draw cells as rectangles there */
        fprintf(f,
                "if (fmt eq 'svg') {\n    plot '%s.dat' using 1:2:%s with image pixels\n} else {\n"
                "    plot '%s.dat' using 1:2:%s with image\n}\n",
                fig->stem, value, fig->stem, value);
    else
        fprintf(f, "plot '%s.dat' using 1:2:(0.5):(0.5):%s with boxxyerror fc palette\n", fig->stem, value);
    RS_TRY(rs_plot_file_close(&pf, err));

    char caption[2048];
    const char *def = rs_plot_metric_definition(pm->name);
    snprintf(caption, sizeof caption,
             "%s (%s) of every expert (x) in every MoE layer (y) for run %s; %d experts, %d layers%s.%s%s", pm->name,
             axis.label, label, E, L,
             strcmp(pm->name, "load.expert_share") == 0 ? " (a uniform router gives every expert 100/E %)" : "",
             def[0] ? " Definition: " : "", def);
    return rs_plot_write_caption(tg, fig, caption, err);
}

static const rs_plot_kind heatmap_kind = {
    .name = "heatmap",
    .needs = "per-layer rows keyed expert=e, e.g. load.expert_share (metric load with per_expert=1)",
    .plan = heatmap_plan,
    .write = heatmap_write,
};

const rs_plot_kind *const rs_plot_kind_heatmap = &heatmap_kind;
