/* Files what a metric family emitted for one router as result rows: the
 * key from the parameters each output uses, the layer=all aggregate (mean,
 * sum or max over layers, unless the family emits its own), duplicates of
 * parameter sweeps dropped. */
#ifndef ROUTESIM_ENGINE_RESULTS_H
#define ROUTESIM_ENGINE_RESULTS_H

#include "core/metric_sink.h"
#include "sim/results/results.h"
#include "sim/config/spec.h"

/* keep: bit o set = report output o. by_key (NULL = none): the group of a
 * breakdown the rows measure, e.g. "domain=math", last in every key. */
int rs_file_metric_rows(const rs_metric_spec *spec, unsigned long long keep, const rs_metric_sink *sink,
                        const char *by_key, int run, rs_results *results, rs_error *err);

/* Outputs metric spec `index` should report: a sweep over one family's
 * parameters repeats outputs that do not depend on the swept parameter, so
 * each (output, key) is reported once, by its first combination. */
unsigned long long rs_metric_outputs_to_keep(const rs_metric_spec *metrics, int index);

#endif
