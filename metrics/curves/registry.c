/* The cross-run metric table, from registry.def. */
#include <string.h>

#include "metrics/curves/curve_metric.h"

#define RS_CURVE_METRIC(id) extern const rs_curve_metric_type *const rs_curve_metric_##id;
#include "metrics/curves/registry.def"
#undef RS_CURVE_METRIC

static const rs_curve_metric_type *const *const builtin[] = {
#define RS_CURVE_METRIC(id) &rs_curve_metric_##id,
#include "metrics/curves/registry.def"
#undef RS_CURVE_METRIC
};

enum { NUM_BUILTIN = sizeof builtin / sizeof builtin[0] };

int rs_curve_metric_count(void) { return NUM_BUILTIN; }

const rs_curve_metric_type *rs_curve_metric_at(int index)
{
    return index >= 0 && index < NUM_BUILTIN ? *builtin[index] : NULL;
}

const rs_curve_metric_type *rs_curve_metric_find(const char *name)
{
    for (int i = 0; i < NUM_BUILTIN; i++)
        if (strcmp((*builtin[i])->output.name, name) == 0)
            return *builtin[i];
    return NULL;
}
