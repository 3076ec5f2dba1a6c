/* Seeds repeats (config `seeds`): summary runs over the runs that repeat one
 * stochastic router with different seeds. */
#ifndef ROUTESIM_REPEATS_H
#define ROUTESIM_REPEATS_H

#include "sim/results/results.h"
#include "sim/config/spec.h"

/* specs[0..n) were routed as results runs runs[0..n) (-1 = none). For each
 * group of repeats (specs[i].repeat == i for its first), adds a run labelled
 * specs[i].repeat_label: per row of the repeats, the mean over seeds (key as
 * is) and Student's t interval of the mean at `level` (stat=ci_low,
 * stat=ci_high; NaN with one seed). */
int rs_summarize_repeats(rs_results *res, const rs_router_spec *specs, const int *runs, int n, double level,
                         rs_error *err);

#endif
