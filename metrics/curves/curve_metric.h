/* Cross-run metrics (docs/metrics.md "Curves"): numbers over the runs of
 * one swept query router on one trace, the points of a cost-quality
 * curve, computed after every run finished. Results name them
 * curve.<name>.
 *
 * A cross-run metric is one file under metrics/curves/ with a `static
 * const rs_curve_metric_type` and a `const rs_curve_metric_type *const
 * rs_curve_metric_<name>` pointing at it, plus one RS_CURVE_METRIC(<name>)
 * line in metrics/curves/registry.def. Which runs form a curve is
 * sim/experiment/curves.c's job. */
#ifndef ROUTESIM_CURVE_METRIC_H
#define ROUTESIM_CURVE_METRIC_H

#include "routesim/error.h"
#include "routesim/metric.h"

/* What results call the family of cross-run metrics, and what it is. */
#define RS_CURVE_FAMILY "curve"
#define RS_CURVE_SUMMARY                                                                                               \
    "cross-run: one value per swept query router and trace, over its runs (the points of a cost-quality curve)"

/* One curve: each point is one run, as the outcome family measured it. */
typedef struct rs_curve {
    const double *cost;         /* outcome.cost_total of each run */
    const double *quality;      /* outcome.quality */
    const double *strong_calls; /* outcome.strong_calls: share of queries sent to the strong model */
    int n;
    double q_weak, q_strong; /* outcome.weak_quality and outcome.strong_quality of the first run */
} rs_curve;

typedef struct rs_curve_metric_type {
    /* name ("aiq": results say curve.aiq), one-line definition, axis label
     * and unit; uses_params and aggregate do not apply (one layer=all row). */
    rs_metric_output output;
    const char *source;
    /* An outcome parameter that keys the value: one row per distinct value
     * among the config's outcome specs, key NAME=VALUE. NULL = one row. */
    const char *key_param;
    /* values[c] for each curve of one trace (all of them at once: a metric
     * may compare them, as AIQ does); param is key_param's value. Returns
     * -1 with a message when out of memory. */
    int (*compute)(const rs_curve *curves, int num_curves, double param, double *values, rs_error *err);
} rs_curve_metric_type;

int rs_curve_metric_count(void);
const rs_curve_metric_type *rs_curve_metric_at(int index);
/* By name ("aiq"), or NULL. */
const rs_curve_metric_type *rs_curve_metric_find(const char *name);

#endif
