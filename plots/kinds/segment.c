/* segment: SRP / SCH against the segment length m (the m= part of the
 * key), one line per run and per value of the rest of the key (rho). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "plots/plot_internal.h"

enum { MAX_SERIES = 256 };

static double segment_length(const rs_plot_table *t, const rs_plot_value *v)
{
    char text[32];
    double m;
    if (!rs_plot_key_part(t->results.keys[v->key], "m", text, sizeof text) || !rs_results_parse_number(text, &m))
        return NAN;
    return m;
}

/* Distinct m values with a finite layer=all value (2 is enough). */
static int distinct_lengths(const rs_plot_table *t, int metric)
{
    const rs_plot_metric *pm = &t->results.metrics[metric];
    double first = NAN;
    for (size_t i = pm->first; i < pm->first + pm->count; i++) {
        const rs_plot_value *v = &t->results.values[i];
        double m = segment_length(t, v);
        if (v->layer != -1 || isnan(m) || !v->has_value || !isfinite(v->value))
            continue;
        if (isnan(first))
            first = m;
        else if (m != first)
            return 2;
    }
    return isnan(first) ? 0 : 1;
}

/* Several runs and several values of the rest of the key (rho): one figure
 * per rest, lines per run, so that no figure holds runs x rests lines. */
static int segment_plan(const rs_plot_table *t, const char *metric, rs_plot_figures *out, rs_error *err)
{
    for (int m = 0; m < t->results.num_metrics; m++) {
        const char *name = t->results.metrics[m].name;
        /* automatic: the segment families; asked for by name: any metric keyed m= */
        int family = strncmp(name, "srp.", 4) == 0 || strncmp(name, "sch.", 4) == 0;
        if (!rs_plot_metric_matches(name, metric) || (!metric && !family) || distinct_lengths(t, m) < 2)
            continue;
        const rs_plot_metric *pm = &t->results.metrics[m];
        char rests[16][128];
        int num_rests = 0, runs = 0, last_run = -1;
        for (size_t i = pm->first; i < pm->first + pm->count; i++) {
            const rs_plot_value *v = &t->results.values[i];
            if (v->layer != -1 || isnan(segment_length(t, v)))
                continue;
            runs += v->run != last_run; /* values are sorted by run */
            last_run = v->run;
            char rest[128];
            rs_plot_key_without(t->results.keys[v->key], "m", rest, sizeof rest);
            int seen = 0;
            for (int j = 0; j < num_rests && !seen; j++)
                seen = strcmp(rests[j], rest) == 0;
            if (!seen && num_rests < 16)
                memcpy(rests[num_rests++], rest, sizeof rest);
        }
        int split = runs > 1 && num_rests > 1;
        for (int j = 0; j < (split ? num_rests : 1); j++) {
            char stem[192];
            rs_plot_stem(stem, sizeof stem, "segment", name, split ? rests[j] : NULL, NULL);
            rs_plot_figure *fig = rs_plot_figures_add(out, RS_PLOT_KIND_segment, stem, err);
            RS_CHECK(fig, err, "out of memory");
            fig->metric = m;
            fig->one_rest = split;
            if (split)
                snprintf(fig->rest, sizeof fig->rest, "%s", rests[j]);
        }
    }
    return 0;
}

typedef struct series_id {
    int run;
    char rest[256]; /* the key without m= */
} series_id;

static int segment_write(const rs_plot_table *t, const rs_plot_figure *fig, const rs_plot_target *tg, rs_error *err)
{
    const rs_plot_metric *pm = &t->results.metrics[fig->metric];
    series_id *ids = malloc(MAX_SERIES * sizeof *ids);
    RS_CHECK(ids, err, "out of memory");
    int n = 0;
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = pm->first; i < pm->first + pm->count; i++) {
        const rs_plot_value *v = &t->results.values[i];
        double m = segment_length(t, v);
        if (v->layer != -1 || isnan(m))
            continue;
        lo = m < lo ? m : lo;
        hi = m > hi ? m : hi;
        series_id id = {.run = v->run};
        rs_plot_key_without(t->results.keys[v->key], "m", id.rest, sizeof id.rest);
        if (fig->one_rest && strcmp(id.rest, fig->rest) != 0)
            continue;
        int seen = 0;
        for (int j = 0; j < n && !seen; j++)
            seen = ids[j].run == id.run && strcmp(ids[j].rest, id.rest) == 0;
        if (!seen && n < MAX_SERIES)
            ids[n++] = id;
    }
    const char *rests[MAX_SERIES];
    for (int j = 0; j < n; j++)
        rests[j] = ids[j].rest;
    rs_plot_chart chart = {.single_height = 2.6, .double_height = 2.9};
    snprintf(chart.xlabel, sizeof chart.xlabel, "segment length m (tokens)");
    rs_plot_metric_axis(pm->name, &chart.y);
    chart.logx = lo > 0 && hi / lo >= 8 ? 2 : 0;
    chart.tics_at_x = 1;
    int rc = 0;
    for (int s = 0; rc == 0 && s < n; s++) {
        char varying[256], label[512];
        rs_plot_key_varying(rests, n, ids[s].rest, varying, sizeof varying);
        snprintf(label, sizeof label, "%s%s%s", t->runs[ids[s].run].name, varying[0] ? ", " : "", varying);
        rs_plot_series *series = rs_plot_chart_series(&chart, label, RS_PLOT_LINE, err);
        rc = series ? 0 : -1;
        for (size_t i = pm->first; rc == 0 && i < pm->first + pm->count; i++) {
            const rs_plot_value *v = &t->results.values[i];
            double m = segment_length(t, v);
            char rest[256];
            if (v->run != ids[s].run || v->layer != -1 || isnan(m))
                continue;
            rs_plot_key_without(t->results.keys[v->key], "m", rest, sizeof rest);
            if (strcmp(rest, ids[s].rest) == 0)
                rc = rs_plot_series_add(series, m, v->value, v->has_ci ? v->ci_low : NAN, v->has_ci ? v->ci_high : NAN,
                                        err);
        }
        if (rc == 0)
            rs_plot_series_sort(series);
    }
    free(ids);
    char what[1536];
    snprintf(what, sizeof what, "%s against the segment length m, one line per run%s%s", pm->name,
             fig->one_rest ? ", " : "", fig->one_rest ? fig->rest : "");
    if (rc == 0)
        rc = rs_plot_chart_write(&chart, fig, tg, what, err);
    if (rc == 0) {
        char caption[2048];
        const char *def = rs_plot_metric_definition(pm->name);
        snprintf(caption, sizeof caption,
                 "%s (%s, layer = all: the model level) against the segment length m in tokens, one line per "
                 "run%s%s%s.%s%s",
                 pm->name, chart.y.label, n > 1 && !fig->one_rest ? " and value of the other metric parameters" : "",
                 fig->one_rest ? "; key " : "", fig->one_rest ? fig->rest : "",
                 def[0] ? " Definition: " : "", def);
        rc = rs_plot_write_caption(tg, fig, caption, err);
    }
    rs_plot_chart_free(&chart);
    return rc;
}

static const rs_plot_kind segment_kind = {
    .name = "segment",
    .needs = "srp.* or sch.* rows (layer=all) whose key has m=, at two or more lengths",
    .plan = segment_plan,
    .write = segment_write,
};

const rs_plot_kind *const rs_plot_kind_segment = &segment_kind;
