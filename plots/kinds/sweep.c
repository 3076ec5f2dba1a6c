/* sweep: a metric (layer = all) against a swept router parameter, one line
 * per sweep (runs of one config entry that differ in that parameter). */
#include <math.h>
#include <string.h>

#include "plots/plot_internal.h"

/* Some sweep over param has two finite values (automatic: two different ones). */
static int usable(const rs_plot_table *t, int metric, int key, const char *param, int automatic)
{
    for (int s = 0; s < t->num_sweeps; s++) {
        if (!t->sweeps[s].numeric || strcmp(t->sweeps[s].param, param) != 0)
            continue;
        int finite = 0, varies = 0;
        double first = NAN;
        for (int i = 0; i < t->sweeps[s].n; i++) {
            const rs_plot_value *v = rs_plot_table_find(t, metric, t->sweeps[s].runs[i], key, -1);
            if (!v || !v->has_value || !isfinite(v->value))
                continue;
            finite++;
            varies |= finite > 1 && v->value != first;
            first = finite == 1 ? v->value : first;
        }
        if (finite >= 2 && (varies || !automatic))
            return 1;
    }
    return 0;
}

static int sweep_plan(const rs_plot_table *t, const char *metric, rs_plot_figures *out, rs_error *err)
{
    for (int s = 0; s < t->num_sweeps; s++) {
        const char *param = t->sweeps[s].param;
        int first = t->sweeps[s].numeric;
        for (int p = 0; p < s && first; p++)
            first = !t->sweeps[p].numeric || strcmp(t->sweeps[p].param, param) != 0;
        if (!first)
            continue;
        char suffix[96];
        snprintf(suffix, sizeof suffix, "vs-%s", param);
        for (int m = 0; m < t->results.num_metrics; m++)
            if (rs_plot_metric_matches(t->results.metrics[m].name, metric) &&
                rs_plot_add_per_key(t, RS_PLOT_KIND_sweep, m, metric, suffix, param, usable, out, err) < 0)
                return -1;
    }
    return 0;
}

static int sweep_write(const rs_plot_table *t, const rs_plot_figure *fig, const rs_plot_target *tg, rs_error *err)
{
    const char *name = t->results.metrics[fig->metric].name, *key = t->results.keys[fig->key];
    rs_plot_chart chart = {.single_height = 2.6, .double_height = 2.9};
    rs_plot_metric_axis(name, &chart.y);
    int traces = rs_plot_num_traces(t), rc = 0, first = -1;
    double lo = INFINITY, hi = -INFINITY;
    for (int s = 0; rc == 0 && s < t->num_sweeps; s++) {
        const rs_plot_sweep *sw = &t->sweeps[s];
        if (!sw->numeric || strcmp(sw->param, fig->param) != 0)
            continue;
        char label[512], trace[128] = "";
        if (traces > 1)
            rs_plot_trace_stem(t->runs[sw->runs[0]].trace, trace, sizeof trace);
        snprintf(label, sizeof label, "%s%s%s%s", sw->label, trace[0] ? " (" : "", trace, trace[0] ? ")" : "");
        rs_plot_series *series = NULL;
        for (int i = 0; rc == 0 && i < sw->n; i++) {
            const rs_plot_value *v = rs_plot_table_find(t, fig->metric, sw->runs[i], fig->key, -1);
            if (!v)
                continue;
            if (!series && !(series = rs_plot_chart_series(&chart, label, RS_PLOT_LINE, err))) {
                rc = -1;
                break;
            }
            if (first < 0)
                first = sw->runs[i];
            lo = sw->x[i] < lo ? sw->x[i] : lo;
            hi = sw->x[i] > hi ? sw->x[i] : hi;
            rc = rs_plot_series_add(series, sw->x[i], v->value, v->has_ci ? v->ci_low : NAN,
                                    v->has_ci ? v->ci_high : NAN, err);
        }
    }
    rs_plot_param_axis(first >= 0 ? t->runs[first].router : "", fig->param, chart.xlabel, sizeof chart.xlabel);
    chart.logx = lo > 0 && hi / lo >= 100 ? 10 : 0;
    chart.tics_at_x = 1;
    char what[512];
    snprintf(what, sizeof what, "%s against the swept parameter %s, one line per sweep%s%s", name, fig->param,
             key[0] ? ", key " : "", key);
    if (rc == 0)
        rc = rs_plot_chart_write(&chart, fig, tg, what, err);
    if (rc == 0) {
        char caption[2048];
        const char *def = rs_plot_metric_definition(name);
        snprintf(caption, sizeof caption,
                 "%s (%s, layer = all) against the router parameter %s, one line per sweep (runs of one router "
                 "entry that differ only in %s)%s%s.%s%s",
                 name, chart.y.label, fig->param, fig->param, key[0] ? "; key " : "", key,
                 def[0] ? " Definition: " : "", def);
        rc = rs_plot_write_caption(tg, fig, caption, err);
    }
    rs_plot_chart_free(&chart);
    return rc;
}

static const rs_plot_kind sweep_kind = {
    .name = "sweep",
    .needs = "runs of one router entry that differ in one numeric parameter, and a metric's layer=all rows",
    .plan = sweep_plan,
    .write = sweep_write,
};

const rs_plot_kind *const rs_plot_kind_sweep = &sweep_kind;
