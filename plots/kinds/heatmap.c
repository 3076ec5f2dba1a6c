/* heatmap: per-expert or per-device values by layer for one run:
 * load.expert_share (the load family's per_expert=1 output; key expert=e)
 * or placement.device_share (per_device=1; key device=d plus the
 * placement's parameters). One figure per run and per value of the key's
 * other parts (a swept placement: one per policy, replicas, ...). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "plots/plot_internal.h"

/* The key parts a heatmap can put on x, with the axis they name. */
static const char *const index_parts[] = {"expert", "device"};

/* The value of a key's part `name` when it is a whole number in [0, 1e6], else -1. */
static int index_of(const char *key, const char *name)
{
    char text[32];
    double e;
    if (!rs_plot_key_part(key, name, text, sizeof text) || !rs_results_parse_number(text, &e) || e < 0 || e > 1e6 ||
        e != floor(e))
        return -1;
    return (int)e;
}

/* More cells than any model's experts x layers (1024 x 128 is 2^17): results
 * naming expert 999999 of layer 999999 get no heatmap of 10^12 cells. */
enum { MAX_CELLS = 1 << 20 };

/* The index part (expert or device) every key of the metric carries, when
 * it has per-layer rows, not too many of them; else NULL. */
static const char *index_part(const rs_plot_table *t, int m)
{
    const rs_plot_metric *pm = &t->results.metrics[m];
    if (pm->num_layers < 1 || pm->count == 0)
        return NULL;
    for (size_t p = 0; p < sizeof index_parts / sizeof index_parts[0]; p++) {
        int N = 0, all = 1;
        for (size_t i = pm->first; i < pm->first + pm->count && all; i++) {
            int e = index_of(t->results.keys[t->results.values[i].key], index_parts[p]);
            all = e >= 0;
            N = e + 1 > N ? e + 1 : N;
        }
        if (all)
            return (int64_t)N * pm->num_layers <= MAX_CELLS ? index_parts[p] : NULL;
    }
    return NULL;
}

/* The metric's keys without the index part ("rests"): rest_of[key id] is
 * an index into rests (distinct, in order of first appearance), -1 for keys
 * the metric does not use or whose rest is too long for a figure. */
typedef struct key_rests {
    int *rest_of;
    char **rests;
    int n;
} key_rests;

static void key_rests_free(key_rests *kr)
{
    for (int i = 0; i < kr->n; i++)
        free(kr->rests[i]);
    free(kr->rests);
    free(kr->rest_of);
    memset(kr, 0, sizeof *kr);
}

static int key_rests_find(const rs_plot_table *t, int m, const char *part, key_rests *kr, rs_error *err)
{
    memset(kr, 0, sizeof *kr);
    const int K = t->results.num_keys ? t->results.num_keys : 1;
    int *keys = malloc((size_t)K * sizeof *keys);
    kr->rest_of = malloc((size_t)K * sizeof *kr->rest_of);
    kr->rests = calloc((size_t)K, sizeof *kr->rests);
    if (!keys || !kr->rest_of || !kr->rests) {
        free(keys);
        key_rests_free(kr);
        return rs_fail(err, "out of memory");
    }
    for (int k = 0; k < K; k++)
        kr->rest_of[k] = -1;
    int n = rs_results_metric_keys(&t->results, m, keys, t->results.num_keys);
    for (int i = 0; i < n; i++) {
        char rest[sizeof ((rs_plot_figure *)0)->rest];
        const char *key = t->results.keys[keys[i]];
        rs_plot_key_without(key, part, rest, sizeof rest);
        if (strlen(key) >= sizeof rest)
            continue; /* cannot be named exactly in a figure */
        int r = 0;
        while (r < kr->n && strcmp(kr->rests[r], rest) != 0)
            r++;
        if (r == kr->n && !(kr->rests[kr->n++] = strdup(rest))) {
            free(keys);
            key_rests_free(kr);
            return rs_fail(err, "out of memory");
        }
        kr->rest_of[keys[i]] = r;
    }
    free(keys);
    return 0;
}

static int run_has_layers(const rs_plot_table *t, int m, int run, const key_rests *kr, int rest)
{
    const rs_plot_metric *pm = &t->results.metrics[m];
    for (size_t i = pm->first; i < pm->first + pm->count; i++) {
        const rs_plot_value *v = &t->results.values[i];
        if (v->run == run && v->layer >= 0 && isfinite(v->value) && kr->rest_of[v->key] == rest)
            return 1;
    }
    return 0;
}

static int heatmap_plan(const rs_plot_table *t, const char *metric, rs_plot_figures *out, rs_error *err)
{
    for (int m = 0; m < t->results.num_metrics; m++) {
        const char *part = index_part(t, m);
        if (!rs_plot_metric_matches(t->results.metrics[m].name, metric) || !part)
            continue;
        key_rests kr;
        RS_TRY(key_rests_find(t, m, part, &kr, err));
        int rc = 0;
        for (int r = 0; rc == 0 && r < t->num_runs; r++) {
            for (int j = 0; rc == 0 && j < kr.n; j++) {
                if (!run_has_layers(t, m, r, &kr, j))
                    continue;
                /* the stem names the rest's parts that vary (policy, replicas), when there are several */
                char suffix[128], varying[512] = "", stem[192];
                if (kr.n > 1)
                    rs_plot_key_varying_key((const char *const *)kr.rests, kr.n, kr.rests[j], varying,
                                            sizeof varying);
                rs_plot_run_suffix(t, r, suffix, sizeof suffix);
                rs_plot_stem(stem, sizeof stem, "heatmap", t->results.metrics[m].name, varying, suffix);
                rs_plot_figure *fig = rs_plot_figures_add_new(out, RS_PLOT_KIND_heatmap, stem, err);
                if (!fig) {
                    rc = -1;
                    break;
                }
                fig->metric = m;
                fig->run = r;
                fig->one_rest = 1;
                snprintf(fig->rest, sizeof fig->rest, "%s", kr.rests[j]);
            }
        }
        key_rests_free(&kr);
        RS_TRY(rc);
    }
    return 0;
}

static int heatmap_write(const rs_plot_table *t, const rs_plot_figure *fig, const rs_plot_target *tg, rs_error *err)
{
    const rs_plot_metric *pm = &t->results.metrics[fig->metric];
    const char *part = index_part(t, fig->metric);
    RS_CHECK(part, err, "%s: no per-layer rows keyed expert= or device=", pm->name);
    key_rests kr;
    RS_TRY(key_rests_find(t, fig->metric, part, &kr, err));
    int rest = 0;
    while (rest < kr.n && strcmp(kr.rests[rest], fig->rest) != 0)
        rest++;
    /* this figure's rows: its run and rest, per layer */
    const int L = pm->num_layers;
    int N = 0;
    for (size_t i = pm->first; i < pm->first + pm->count; i++) {
        const rs_plot_value *v = &t->results.values[i];
        int e = index_of(t->results.keys[v->key], part);
        if (v->run == fig->run && v->layer >= 0 && kr.rest_of[v->key] == rest)
            N = e + 1 > N ? e + 1 : N;
    }
    double *cells = malloc((size_t)L * (size_t)(N ? N : 1) * sizeof *cells);
    if (!cells) {
        key_rests_free(&kr);
        return rs_fail(err, "out of memory");
    }
    for (size_t i = 0; i < (size_t)L * (size_t)N; i++)
        cells[i] = NAN;
    for (size_t i = pm->first; i < pm->first + pm->count; i++) {
        const rs_plot_value *v = &t->results.values[i];
        if (v->run == fig->run && v->layer >= 0 && kr.rest_of[v->key] == rest)
            cells[(size_t)v->layer * (size_t)N + (size_t)index_of(t->results.keys[v->key], part)] = v->value;
    }
    key_rests_free(&kr);
    int nonzero = 0;
    for (size_t i = 0; i < (size_t)L * (size_t)N && !nonzero; i++)
        nonzero = isfinite(cells[i]) && cells[i] != 0;
    if (!nonzero) { /* a blank map */
        free(cells);
        return RS_PLOT_BLANK;
    }
    rs_plot_axis axis;
    rs_plot_metric_axis(pm->name, &axis);
    const char *label = t->runs[fig->run].name;
    char what[1536], params[1100] = "";
    if (fig->rest[0])
        snprintf(params, sizeof params, ", %s", fig->rest);
    snprintf(what, sizeof what, "heatmap of %s by %s and layer for run %s%s", pm->name, part, label, params);

    rs_plot_file pf;
    int rc = rs_plot_file_open(&pf, tg, fig->stem, "dat", err);
    if (rc == 0) {
        rs_plot_data_header(pf.f, tg, what);
        fprintf(pf.f, "# value: %s%s\n# columns: %s layer value; a blank line after each layer\n", axis.label,
                axis.scale != 1 ? " (the script multiplies by 100)" : "", part);
        for (int l = 0; l < L; l++) {
            for (int e = 0; e < N; e++) {
                fprintf(pf.f, "%d %d ", e, l);
                rs_plot_data_number(pf.f, cells[(size_t)l * (size_t)N + (size_t)e]);
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
    fprintf(f, "set xlabel '%s'\nset ylabel 'MoE layer'\nset cblabel ", part);
    rs_plot_gp_string(f, axis.label);
    fputs("\n# viridis: ordered in lightness and readable with colour-blindness and in greyscale\n"
          "set palette defined (0 '#440154', 0.25 '#3B528B', 0.5 '#21908C', 0.75 '#5DC863', 1 '#FDE725')\n"
          "unset grid\nunset key\nset border 15 lw 1\nset tics out\nset colorbox user origin graph 1.04, graph 0 "
          "size graph 0.04, graph 1\nset cbtics scale 0.6\nset cbrange [0:*]\n",
          f);
    fprintf(f, "set xrange [-0.5:%g]\nset yrange [-0.5:%g]\n", N - 0.5, L - 0.5);
    fprintf(f, "set rmargin at screen 0.78\n");
    char value[48];
    if (axis.scale == 1)
        snprintf(value, sizeof value, "3");
    else
        snprintf(value, sizeof value, "($3*%g)", axis.scale);
    rs_plot_script_overrides(f, tg);
    /* image needs a grid of at least 2 x 2; boxes draw any grid */
    if (L >= 2 && N >= 2) /* svg viewers smooth embedded images: draw cells as rectangles there */
        fprintf(f,
                "if (fmt eq 'svg') {\n    plot '%s.dat' using 1:2:%s with image pixels\n} else {\n"
                "    plot '%s.dat' using 1:2:%s with image\n}\n",
                fig->stem, value, fig->stem, value);
    else
        fprintf(f, "plot '%s.dat' using 1:2:(0.5):(0.5):%s with boxxyerror fc palette\n", fig->stem, value);
    RS_TRY(rs_plot_file_close(&pf, err));

    char caption[3072], uniform[96] = "";
    const char *def = rs_plot_metric_definition(pm->name);
    if (strcmp(pm->name, "load.expert_share") == 0)
        snprintf(uniform, sizeof uniform, " (a uniform router gives every expert 100/E %%)");
    else if (strcmp(pm->name, "placement.device_share") == 0)
        snprintf(uniform, sizeof uniform, " (a balanced placement gives every device 100/%d = %.3g %%)", N,
                 N ? 100.0 / N : 0.0);
    snprintf(caption, sizeof caption,
             "%s (%s) of every %s (x) in every MoE layer (y) for run %s%s%s; %d %ss, %d layers%s.%s%s", pm->name,
             axis.label, part, label, fig->rest[0] ? ", key " : "", fig->rest, N, part, L, uniform,
             def[0] ? " Definition: " : "", def);
    return rs_plot_write_caption(tg, fig, caption, err);
}

static const rs_plot_kind heatmap_kind = {
    .name = "heatmap",
    .needs = "per-layer rows keyed expert=e or device=d, e.g. load.expert_share (metric load with per_expert=1) or "
             "placement.device_share (placement with per_device=1)",
    .plan = heatmap_plan,
    .write = heatmap_write,
};

const rs_plot_kind *const rs_plot_kind_heatmap = &heatmap_kind;
