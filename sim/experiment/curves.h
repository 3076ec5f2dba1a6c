/* Cost-quality curves of swept query routers (docs/metrics.md "Query
 * routing"): the runs one config entry expands into (a list-valued
 * parameter such as lambda or tau_quantile) are the points of one curve.
 * rs_curves_add is the post-run stage that forms the curves and adds the
 * rows of the cross-run metrics (metrics/curves/: AIQ, APGR, CPT). */
#ifndef ROUTESIM_CURVES_H
#define ROUTESIM_CURVES_H

#include "routesim/error.h"
#include "sim/config/config.h"
#include "sim/results/results.h"

/* After every run of cfg finished: for each trace and each config routers[]
 * entry that expanded into two or more runs, when cfg measures the
 * `outcome` family, adds a run labelled "<entry>:<swept>=*" (router = the
 * entry's router, params = the swept values joined by ',') holding
 * a row of each cross-run metric (metrics/curves/registry.def; a keyed one,
 * such as curve.cpt with key p=P, once per value among the outcome specs).
 * The metrics see every curve of the trace at once (AIQ compares them). */
int rs_curves_add(rs_results *results, const rs_config *cfg, rs_error *err);

#endif
