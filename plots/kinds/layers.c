/* layers: a metric per MoE layer, one line per run. */
#include <math.h>
#include <stdio.h>

#include "plots/plot_internal.h"

static int usable(const rs_plot_table *t, int metric, int key, const char *param, int automatic)
{
    (void)param;
    return rs_plot_has_finite(t, metric, key, -2) && !(automatic && rs_plot_is_constant(t, metric, key, -2));
}

static int layers_plan(const rs_plot_table *t, const char *metric, rs_plot_figures *out, rs_error *err)
{
    for (int m = 0; m < t->results.num_metrics; m++)
        if (t->results.metrics[m].num_layers >= 2 && rs_plot_metric_matches(t->results.metrics[m].name, metric))
            RS_TRY(rs_plot_add_per_key(t, RS_PLOT_KIND_layers, m, metric, NULL, NULL, usable, out, err) < 0 ? -1 : 0);
    return 0;
}

static int layers_write(const rs_plot_table *t, const rs_plot_figure *fig, const rs_plot_target *tg, rs_error *err)
{
    const char *name = t->results.metrics[fig->metric].name, *key = t->results.keys[fig->key];
    const int L = t->results.metrics[fig->metric].num_layers;
    rs_plot_chart chart = {.single_height = 2.6, .double_height = 2.9};
    snprintf(chart.xlabel, sizeof chart.xlabel, "MoE layer");
    rs_plot_metric_axis(name, &chart.y);
    chart.tics_at_x = L <= 12;
    chart.point_every = L > 16 ? (L + 7) / 8 : 1;
    int rc = 0;
    for (int r = 0; rc == 0 && r < t->num_runs; r++) {
        rs_plot_series *s = NULL;
        for (int l = 0; rc == 0 && l < L; l++) {
            const rs_plot_value *v = rs_plot_table_find(t, fig->metric, r, fig->key, l);
            if (!v)
                continue;
            if (!s && !(s = rs_plot_chart_series(&chart, t->runs[r].name, RS_PLOT_LINE, err)))
                rc = -1;
            else
                rc = rs_plot_series_add(s, l, v->value, v->has_ci ? v->ci_low : NAN, v->has_ci ? v->ci_high : NAN,
                                        err);
        }
    }
    char what[512];
    snprintf(what, sizeof what, "%s per layer, one line per run%s%s", name, key[0] ? ", key " : "", key);
    if (rc == 0)
        rc = rs_plot_chart_write(&chart, fig, tg, what, err);
    if (rc == 0) {
        char caption[2048];
        const char *def = rs_plot_metric_definition(name);
        snprintf(caption, sizeof caption, "%s (%s) in each MoE layer, one line per run%s%s.%s%s%s", name, chart.y.label,
                 key[0] ? ", key " : "", key, def[0] ? " Definition: " : "", def,
                 t->results.metrics[fig->metric].any_ci ? " Error bars: the interval of the results' stat=ci_low / "
                                                  "stat=ci_high rows, where every layer of a run has one."
                                                : "");
        rc = rs_plot_write_caption(tg, fig, caption, err);
    }
    rs_plot_chart_free(&chart);
    return rc;
}

static const rs_plot_kind layers_kind = {
    .name = "layers",
    .needs = "a metric's per-layer rows (at least two layers)",
    .plan = layers_plan,
    .write = layers_write,
};

const rs_plot_kind *const rs_plot_kind_layers = &layers_kind;
