#include "core/metric_sink.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rs_metric_emit(rs_metric_sink *sink, int output, int layer, const char *extra_key, double value)
{
    if (sink->n == sink->cap) {
        size_t cap = sink->cap ? 2 * sink->cap : 64;
        rs_emitted *grown = realloc(sink->rows, cap * sizeof *grown);
        if (!grown) {
            sink->failed = 1;
            return;
        }
        sink->rows = grown;
        sink->cap = cap;
    }
    rs_emitted *e = &sink->rows[sink->n++];
    e->output = output;
    e->layer = layer;
    snprintf(e->extra, sizeof e->extra, "%s", extra_key ? extra_key : "");
    e->value = value;
}

void rs_metric_sink_free(rs_metric_sink *sink)
{
    free(sink->rows);
    memset(sink, 0, sizeof *sink);
}

double rs_metric_sink_value(const rs_metric_sink *sink, int output, int layer, const char *extra)
{
    for (size_t i = 0; i < sink->n; i++) {
        const rs_emitted *e = &sink->rows[i];
        if (e->output == output && e->layer == layer && strcmp(e->extra, extra ? extra : "") == 0)
            return e->value;
    }
    return NAN;
}
