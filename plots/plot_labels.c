/* Axis labels with units for the metrics and parameters routesim reports,
 * from their descriptors: a metric output's label, unit and unit_scale
 * (metrics/, metrics/curves/), a parameter's description. Data files
 * keep results.csv's numbers; the script multiplies by the unit's scale
 * (100 where the label says "%"). Metrics without a label go by name. */
#include <string.h>

#include "routesim/metric.h"
#include "routesim/router.h"
#include "metrics/curves/curve_metric.h"
#include "routers/common/capacity.h"
#include "plots/plot_internal.h"

/* The output descriptor of a metric family's "family.output", or NULL. */
static const rs_metric_output *family_output(const char *metric)
{
    const char *dot = strchr(metric, '.');
    if (!dot)
        return NULL;
    char family[128];
    snprintf(family, sizeof family, "%.*s", (int)(dot - metric), metric);
    const rs_metric_type *type = rs_metric_find(family);
    for (int o = 0; type && o < type->num_outputs; o++)
        if (strcmp(type->outputs[o].name, dot + 1) == 0)
            return &type->outputs[o];
    return NULL;
}

const rs_metric_output *rs_plot_metric_output(const char *metric)
{
    size_t len = strlen(RS_CURVE_FAMILY);
    if (strncmp(metric, RS_CURVE_FAMILY, len) == 0 && metric[len] == '.') {
        const rs_curve_metric_type *curve = rs_curve_metric_find(metric + len + 1);
        return curve ? &curve->output : NULL;
    }
    return family_output(metric);
}

void rs_plot_metric_axis(const char *metric, rs_plot_axis *axis)
{
    const rs_metric_output *out = rs_plot_metric_output(metric);
    axis->scale = 1;
    if (!out || !out->label) {
        snprintf(axis->label, sizeof axis->label, "%s", metric);
        return;
    }
    if (out->unit)
        snprintf(axis->label, sizeof axis->label, "%s (%s)", out->label, out->unit);
    else
        snprintf(axis->label, sizeof axis->label, "%s", out->label);
    if (out->unit_scale != 0)
        axis->scale = out->unit_scale;
}

static const rs_param_def *find_param(const rs_param_def *defs, int n, const char *name)
{
    for (int i = 0; defs && i < n; i++)
        if (strcmp(defs[i].name, name) == 0)
            return &defs[i];
    return NULL;
}

int rs_plot_metric_param(const char *metric, const char *param, const char **help, int *numeric)
{
    const char *dot = strchr(metric, '.');
    char family[128];
    snprintf(family, sizeof family, "%.*s", dot ? (int)(dot - metric) : (int)strlen(metric), metric);
    const rs_metric_type *type = rs_metric_find(family);
    if (!type)
        return -1;
    const rs_param_def *def = find_param(type->params, type->num_params, param);
    if (!def)
        return 0;
    if (help)
        *help = def->help ? def->help : "";
    if (numeric)
        *numeric = def->kind == RS_PARAM_INT || def->kind == RS_PARAM_FLOAT;
    return 1;
}

void rs_plot_param_axis(const char *router, const char *param, char *buf, size_t size)
{
    const rs_router_type *type = rs_router_find(router);
    const rs_param_def *def = type ? find_param(type->params, type->num_params, param) : NULL;
    const rs_router_type *base = type && type->preset_of ? rs_router_find(type->preset_of) : NULL;
    if (!def && base)
        def = find_param(base->params, base->num_params, param);
    if (!def)
        def = find_param(rs_capacity_param_defs, rs_capacity_num_params, param);
    /* a short description reads well on an axis; a long one belongs in the caption */
    if (def && def->help && strlen(def->help) <= 36)
        snprintf(buf, size, "%s: %s", param, def->help);
    else
        snprintf(buf, size, "%s", param);
}

/* Families only: captions of cross-run metrics have carried no definition. */
const char *rs_plot_metric_definition(const char *metric)
{
    const rs_metric_output *out = family_output(metric);
    return out ? out->definition : "";
}
