/* The k a cache is sized by (C = rho k): the router's row width for
 * fixed-k routers (their k, as moe-lrc uses the model's top_k); routers
 * whose rows can hold every expert (dynamic k) fall back to the trace's
 * native k, then the recorded k. */
#ifndef ROUTESIM_METRICS_NOMINAL_K_H
#define ROUTESIM_METRICS_NOMINAL_K_H

#include "routesim/metric.h"

static inline int rs_metric_nominal_k(const rs_metric_setup *setup)
{
    const rs_trace_info *tr = setup->trace;
    if (setup->kmax < tr->num_experts || tr->num_experts <= 1)
        return setup->kmax;
    if (tr->top_k > 0)
        return tr->top_k;
    if (tr->recorded_k > 0)
        return tr->recorded_k;
    return setup->kmax;
}

#endif
