/* The counting family behind rs_run_counts (routesim/metric.h): kept
 * assignments per layer and expert and, when asked, layer-to-layer
 * transitions, over a whole run. It is not in the registry: the engine
 * measures it in the first pass that families asking for counts
 * (needs_counts) get, and `routesim place` plans from it. */
#ifndef ROUTESIM_RUN_COUNTS_H
#define ROUTESIM_RUN_COUNTS_H

#include "routesim/metric.h"

/* Parameter `what`: RS_COUNTS_* bits, as an integer. */
extern const rs_metric_type *const rs_run_counts_type;

/* The counts an accumulator of rs_run_counts_type holds (pointers into it). */
const rs_run_counts *rs_run_counts_of(const void *acc);

#endif
