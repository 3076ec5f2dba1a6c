/* cost_quality: query-level routing, outcome.cost_mean (x) against
 * outcome.quality (y). Each sweep (e.g. cost_aware over its trade-off
 * parameter) is a curve ordered by cost; single-model runs (router fixed)
 * are labelled points; the oracle is a star, from an `oracle` run or else
 * from the outcome.oracle_cost / outcome.oracle_quality rows. One figure
 * per trace. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "plots/plot_internal.h"

static const char *const cost_metric = "outcome.cost_mean", *const quality_metric = "outcome.quality";

/* The first finite layer=all point value of a metric for a run, or NAN. */
static double value_of(const rs_plot_table *t, int metric, int run)
{
    if (metric < 0)
        return NAN;
    const rs_plot_metric *pm = &t->results.metrics[metric];
    for (size_t i = pm->first; i < pm->first + pm->count; i++) {
        const rs_plot_value *v = &t->results.values[i];
        if (v->run == run && v->layer == -1 && v->has_value && isfinite(v->value))
            return v->value;
    }
    return NAN;
}

static int wants(const char *metric)
{
    return !metric || rs_plot_metric_matches(cost_metric, metric) || rs_plot_metric_matches(quality_metric, metric);
}

static int cost_quality_plan(const rs_plot_table *t, const char *metric, rs_plot_figures *out, rs_error *err)
{
    int cost = rs_results_find_metric(&t->results, cost_metric);
    int quality = rs_results_find_metric(&t->results, quality_metric);
    if (!wants(metric) || cost < 0 || quality < 0)
        return 0;
    int traces = rs_plot_num_traces(t);
    for (int r = 0; r < t->num_runs; r++) {
        int first = 1; /* one figure per trace: planned at its first run with both values */
        for (int p = 0; p < r && first; p++)
            first = strcmp(t->runs[p].trace, t->runs[r].trace) != 0 || isnan(value_of(t, cost, p)) ||
                    isnan(value_of(t, quality, p));
        if (!first || isnan(value_of(t, cost, r)) || isnan(value_of(t, quality, r)))
            continue;
        char stem[192];
        char trace[128] = "";
        if (traces > 1)
            rs_plot_trace_stem(t->runs[r].trace, trace, sizeof trace);
        rs_plot_stem(stem, sizeof stem, "cost_quality", NULL, NULL, trace);
        rs_plot_figure *fig = rs_plot_figures_add(out, RS_PLOT_KIND_cost_quality, stem, err);
        RS_CHECK(fig, err, "out of memory");
        fig->run = r;
    }
    return 0;
}

static int is_router(const rs_plot_table *t, int run, const char *router)
{
    return strcmp(t->runs[run].router, router) == 0;
}

/* A fixed router's point is labelled with the run's own label when the
 * config gave one ("gpt4"), else with its model ("model=gpt-4" -> "gpt-4"). */
static void model_label(const rs_plot_run *run, char *buf, size_t size)
{
    const char *p = strstr(run->params, "model=");
    if (strncmp(run->label, "fixed", 5) == 0 && p && (p == run->params || p[-1] == ';')) {
        const char *end = strchr(p, ';');
        snprintf(buf, size, "%.*s", (int)(end ? (size_t)(end - p - 6) : strlen(p + 6)), p + 6);
    } else {
        snprintf(buf, size, "%s", run->label);
    }
}

/* Without fixed runs, the single-model points come from the outcome rows
 * keyed model=NAME (outcome.model_cost, outcome.model_quality) of the
 * first run on the trace that has them. */
static int model_points(const rs_plot_table *t, const char *trace, rs_plot_chart *chart, int *models, rs_error *err)
{
    int cost = rs_results_find_metric(&t->results, "outcome.model_cost");
    int quality = rs_results_find_metric(&t->results, "outcome.model_quality");
    if (cost < 0 || quality < 0)
        return 0;
    const rs_plot_metric *pm = &t->results.metrics[cost];
    rs_plot_series *s = NULL;
    int run = -1;
    for (size_t i = pm->first; i < pm->first + pm->count; i++) {
        const rs_plot_value *v = &t->results.values[i];
        char model[96];
        if (v->layer != -1 || !v->has_value || !isfinite(v->value) || strcmp(t->runs[v->run].trace, trace) != 0 ||
            (run >= 0 && v->run != run) || !rs_plot_key_part(t->results.keys[v->key], "model", model, sizeof model))
            continue;
        const rs_plot_value *q = rs_plot_table_find(t, quality, v->run, v->key, -1);
        if (!q || !q->has_value || !isfinite(q->value))
            continue;
        run = v->run;
        if (!s && !(s = rs_plot_chart_series(chart, "single models", RS_PLOT_LABELLED_POINTS, err)))
            return -1;
        s->linetype = 7;
        s->pointtype = 5;
        RS_TRY(rs_plot_series_add(s, v->value, q->value, NAN, NAN, err));
        snprintf(s->points[s->n - 1].label, sizeof s->points[0].label, "%s", model);
        ++*models;
    }
    return 0;
}

static int cost_quality_write(const rs_plot_table *t, const rs_plot_figure *fig, const rs_plot_target *tg,
                              rs_error *err)
{
    const char *trace = t->runs[fig->run].trace;
    int cost = rs_results_find_metric(&t->results, cost_metric);
    int quality = rs_results_find_metric(&t->results, quality_metric);
    rs_plot_chart chart = {.single_height = 2.8, .double_height = 3.0};
    rs_plot_metric_axis(cost_metric, &chart.y); /* x axis label, then y */
    snprintf(chart.xlabel, sizeof chart.xlabel, "%s", chart.y.label);
    rs_plot_metric_axis(quality_metric, &chart.y);
    int rc = 0, curves = 0, models = 0, oracle = 0;
    char *in_curve = calloc((size_t)t->num_runs + 1, 1);
    RS_CHECK(in_curve, err, "out of memory");
    /* curves: sweeps on this trace, ordered by cost */
    for (int s = 0; rc == 0 && s < t->num_sweeps; s++) {
        const rs_plot_sweep *sw = &t->sweeps[s];
        int r0 = sw->runs[0];
        if (strcmp(t->runs[r0].trace, trace) != 0 || is_router(t, r0, "fixed") || is_router(t, r0, "oracle"))
            continue;
        rs_plot_series *series = rs_plot_chart_series(&chart, sw->label, RS_PLOT_LINE, err);
        rc = series ? 0 : -1;
        for (int i = 0; rc == 0 && i < sw->n; i++) {
            double x = value_of(t, cost, sw->runs[i]), y = value_of(t, quality, sw->runs[i]);
            if (isnan(x) || isnan(y))
                continue;
            in_curve[sw->runs[i]] = 1;
            rc = rs_plot_series_add(series, x, y, NAN, NAN, err);
        }
        if (rc == 0) {
            rs_plot_series_sort(series);
            curves++;
        }
    }
    /* single models: one labelled set of points */
    rs_plot_series *fixed = NULL;
    for (int r = 0; rc == 0 && r < t->num_runs; r++) {
        double x = value_of(t, cost, r), y = value_of(t, quality, r);
        if (strcmp(t->runs[r].trace, trace) != 0 || !is_router(t, r, "fixed") || isnan(x) || isnan(y))
            continue;
        if (!fixed && !(fixed = rs_plot_chart_series(&chart, "single models", RS_PLOT_LABELLED_POINTS, err))) {
            rc = -1;
            break;
        }
        fixed->linetype = 7;
        fixed->pointtype = 5;
        rc = rs_plot_series_add(fixed, x, y, NAN, NAN, err);
        if (rc == 0)
            model_label(&t->runs[r], fixed->points[fixed->n - 1].label, sizeof fixed->points[0].label);
        models++;
    }
    if (rc == 0 && models == 0)
        rc = model_points(t, trace, &chart, &models, err);
    /* the oracle: its run, else the oracle rows of any run on the trace */
    for (int pass = 0; pass < 2 && rc == 0 && !oracle; pass++) {
        for (int r = 0; rc == 0 && r < t->num_runs && !oracle; r++) {
            if (strcmp(t->runs[r].trace, trace) != 0 || (pass == 0 && !is_router(t, r, "oracle")))
                continue;
            double x = pass == 0 ? value_of(t, cost, r)
                                 : value_of(t, rs_results_find_metric(&t->results, "outcome.oracle_cost"), r);
            double y = pass == 0 ? value_of(t, quality, r)
                                 : value_of(t, rs_results_find_metric(&t->results, "outcome.oracle_quality"), r);
            if (isnan(x) || isnan(y))
                continue;
            rs_plot_series *s = rs_plot_chart_series(&chart, "oracle", RS_PLOT_POINTS, err);
            rc = s ? rs_plot_series_add(s, x, y, NAN, NAN, err) : -1;
            if (s) {
                s->linetype = 7;
                s->pointtype = 3;
                s->pointsize = 1.6;
            }
            oracle = 1;
            if (pass == 0)
                in_curve[r] = 1;
        }
    }
    /* every other run is a point of its own */
    for (int r = 0; rc == 0 && r < t->num_runs; r++) {
        double x = value_of(t, cost, r), y = value_of(t, quality, r);
        if (strcmp(t->runs[r].trace, trace) != 0 || in_curve[r] || is_router(t, r, "fixed") || isnan(x) || isnan(y))
            continue;
        rs_plot_series *s = rs_plot_chart_series(&chart, t->runs[r].name, RS_PLOT_POINTS, err);
        rc = s ? rs_plot_series_add(s, x, y, NAN, NAN, err) : -1;
    }
    free(in_curve);
    char what[512];
    snprintf(what, sizeof what, "cost against quality for trace %s", trace);
    if (rc == 0)
        rc = rs_plot_chart_write(&chart, fig, tg, what, err);
    if (rc == 0) {
        char caption[2048];
        snprintf(caption, sizeof caption,
                 "Mean cost per query (x, outcome.cost_mean) against mean quality (y, outcome.quality) on %s: "
                 "%d curve%s (runs of one router entry swept over a parameter, ordered by cost)%s%s.",
                 trace, curves, curves == 1 ? "" : "s",
                 models ? ", single models as labelled squares (router fixed)" : "",
                 oracle ? ", the oracle (best model per query) as a star" : "");
        rc = rs_plot_write_caption(tg, fig, caption, err);
    }
    rs_plot_chart_free(&chart);
    return rc;
}

static const rs_plot_kind cost_quality_kind = {
    .name = "cost_quality",
    .needs = "outcome.cost_mean and outcome.quality rows (layer=all), from query-level traces",
    .plan = cost_quality_plan,
    .write = cost_quality_write,
};

const rs_plot_kind *const rs_plot_kind_cost_quality = &cost_quality_kind;
