/* Where a metric family's finalize() sends its numbers before the engine
 * files them as result rows (adding keys and the layer=all aggregates). */
#ifndef ROUTESIM_METRIC_SINK_H
#define ROUTESIM_METRIC_SINK_H

#include <stddef.h>

#include "routesim/metric.h"

typedef struct rs_emitted {
    int output, layer; /* layer -1 = all */
    char extra[64];
    double value;
} rs_emitted;

struct rs_metric_sink {
    rs_emitted *rows;
    size_t n, cap;
    int failed; /* out of memory while emitting */
};

void rs_metric_sink_free(rs_metric_sink *sink);
/* The value emitted for (output, layer, extra) or NAN when absent. */
double rs_metric_sink_value(const rs_metric_sink *sink, int output, int layer, const char *extra);

#endif
