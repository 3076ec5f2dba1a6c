/* The first pass that counts a run for the families that ask
 * (rs_metric_type.needs_counts, routesim/metric.h): the same router over
 * the same trace, measured by metrics/run_counts.c alone. Counts are
 * integers, so they do not depend on threads or chunking, and the second
 * pass's router makes the same decisions the counting one did. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/run_counts.h"
#include "sim/engine/engine_internal.h"
#include "sim/results/results.h"

void rs_counted_run_free(rs_counted_run *c)
{
    if (!c)
        return;
    free(c->loads);
    free(c->transitions);
    memset(c, 0, sizeof *c);
}

static int own_copy(rs_counted_run *out, const rs_run_counts *view, unsigned what, rs_error *err)
{
    const size_t loads = (size_t)view->L * (size_t)view->E;
    const size_t transitions = view->L > 1 ? (size_t)(view->L - 1) * (size_t)view->E * (size_t)view->E : 1;
    out->loads = malloc(loads * sizeof *out->loads);
    if ((what & RS_COUNTS_TRANSITIONS))
        out->transitions = calloc(transitions, sizeof *out->transitions);
    RS_CHECK(out->loads && (!(what & RS_COUNTS_TRANSITIONS) || out->transitions), err,
             "counting the run: out of memory");
    if (view->loads)
        memcpy(out->loads, view->loads, loads * sizeof *out->loads);
    else
        memset(out->loads, 0, loads * sizeof *out->loads);
    if (out->transitions && view->transitions && view->L > 1)
        memcpy(out->transitions, view->transitions, transitions * sizeof *out->transitions);
    out->counts = (rs_run_counts){.L = view->L, .E = view->E, .loads = out->loads, .transitions = out->transitions};
    return 0;
}

int rs_engine_count_run(rs_trace *trace, const rs_router_spec *router, const rs_engine_options *options,
                        unsigned what, rs_counted_run *out, rs_error *err)
{
    memset(out, 0, sizeof *out);
    const rs_trace_info *info = rs_trace_get_info(trace);
    if (options->measure_only) { /* sizes only: zero counts of the right shape */
        const rs_run_counts zero = {.L = info->num_layers, .E = info->num_experts};
        if (own_copy(out, &zero, what, err) != 0) {
            rs_counted_run_free(out);
            return -1;
        }
        return 0;
    }
    rs_metric_spec spec = {.type = rs_run_counts_type};
    char text[16];
    snprintf(text, sizeof text, "%u", what | RS_COUNTS_LOADS);
    RS_TRY(rs_params_init(&spec.params, rs_run_counts_type->params, rs_run_counts_type->num_params,
                          "counting the run", err));
    rs_engine_options opt = *options;
    opt.reference = NULL;
    opt.reference_trace = NULL;
    opt.bootstrap = 0;
    opt.breakdown = 0;
    memset(&opt.checkpoint, 0, sizeof opt.checkpoint);
    char label[300];
    snprintf(label, sizeof label, "%s (counting %s)", info->path, router->label);
    opt.progress_label = label;
    rs_results scratch;
    rs_results_init(&scratch);
    rs_engine *e = NULL;
    rs_engine_stats stats = {0};
    int rc = rs_params_set(&spec.params, "what", text, err);
    if (rc == 0)
        rc = rs_engine_create(&e, trace, router, 1, &spec, 1, &opt, &scratch, err);
    if (rc == 0)
        rc = rs_engine_run(e, NULL, &stats, err);
    if (rc == 0)
        rc = own_copy(out, rs_run_counts_of(e->metrics[0].acc), what, err);
    if (rc != 0) {
        rs_fail_context(err, "counting %s over the whole trace first (oracle statistics)",
                        router->label);
        rs_counted_run_free(out);
    }
    rs_engine_destroy(e);
    rs_results_free(&scratch);
    rs_params_free(&spec.params);
    return rc;
}
