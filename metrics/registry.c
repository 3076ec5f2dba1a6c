/* The metric family table: built-ins from registry.def, then plugins. */
#include <string.h>

#include "routesim/metric.h"

#define RS_METRIC(id) extern const rs_metric_type *const rs_metric_##id;
#include "metrics/registry.def"
#undef RS_METRIC

static const rs_metric_type *const *const builtin[] = {
#define RS_METRIC(id) &rs_metric_##id,
#include "metrics/registry.def"
#undef RS_METRIC
};

enum { NUM_BUILTIN = sizeof builtin / sizeof builtin[0], MAX_PLUGIN_METRICS = 256 };

/* Plugins register while the program is single-threaded, before any run. */
static const rs_metric_type *plugin_metrics[MAX_PLUGIN_METRICS];
static int num_plugin_metrics;

int rs_metric_count(void) { return NUM_BUILTIN + num_plugin_metrics; }

const rs_metric_type *rs_metric_at(int index)
{
    if (index < 0)
        return NULL;
    if (index < NUM_BUILTIN)
        return *builtin[index];
    index -= NUM_BUILTIN;
    return index < num_plugin_metrics ? plugin_metrics[index] : NULL;
}

const rs_metric_type *rs_metric_find(const char *name)
{
    for (int i = 0; i < rs_metric_count(); i++) {
        const rs_metric_type *t = rs_metric_at(i);
        if (strcmp(t->name, name) == 0)
            return t;
    }
    return NULL;
}

int rs_metric_register(const rs_metric_type *type, rs_error *err)
{
    RS_CHECK(type && type->name && type->outputs && type->num_outputs > 0 && type->create && type->update_layer &&
                 type->merge && type->finalize && type->destroy,
             err,
             "plugin metric descriptor is incomplete (name, outputs, create, update_layer, merge, finalize and "
             "destroy are required)");
    RS_CHECK(type->num_outputs <= 64, err, "metric '%s': at most 64 outputs (it has %d)", type->name,
             type->num_outputs);
    RS_CHECK(!rs_metric_find(type->name), err, "metric '%s' is already registered", type->name);
    RS_CHECK(num_plugin_metrics < MAX_PLUGIN_METRICS, err, "too many plugin metrics (at most %d)",
             MAX_PLUGIN_METRICS);
    plugin_metrics[num_plugin_metrics++] = type;
    return 0;
}
