/* One router over one trace, as `routesim route` and rs_route (embed.h) do
 * it: open the trace (and a paired reference trace), choose the metrics,
 * run the engine, write the decisions file (atomically) and collect the
 * metric rows into a results table. */
#ifndef ROUTESIM_ROUTE_H
#define ROUTESIM_ROUTE_H

#include <stdint.h>

#include "routesim/error.h"
#include "sim/results/results.h"

typedef struct rs_route_request {
    const char *trace;           /* required */
    const char *router;          /* a spec, required */
    const char *metrics;         /* "load,entropy", FAMILY.OUTPUT keeps one output; NULL: the default; "none" */
    const char *reference;       /* spec of the reference router, or NULL */
    const char *reference_trace; /* paired trace the reference runs on, or NULL */
    const char *decisions;       /* decisions file to write, or NULL */
    const char *results_csv;     /* the metric rows as results.csv, or NULL */
    int force;                   /* outputs may replace files of another kind */
    int batch_tokens;            /* 0: 4096 */
    int threads;                 /* 0: all cores */
    int64_t chunk_tokens;        /* 0: from the memory budget */
    size_t memory_budget;        /* bytes; 0: the engine's default */
    int skip_nonfinite;
    unsigned breakdown; /* bits 1 << rs_breakdown_dim: rows per domain, phase too */
    int progress;                /* -1: when stderr is a terminal, 0: never, 1: always */
    int device;                  /* RS_DEVICE_CPU or RS_DEVICE_GPU (engine.h) */
} rs_route_request;

typedef struct rs_route_report {
    int64_t skipped_tokens; /* tokens with non-finite logits skipped on request */
    int num_metrics;        /* metric families measured */
} rs_route_report;

/* The metric families `route` measures by default for a trace. */
const char *rs_route_default_metrics(int has_quality, int has_logits);

/* Runs the request; results (initialised by the caller) gets one run and its
 * rows. The outputs are checked before anything is read: neither may be an
 * input or the other output, and an existing file of another kind is
 * replaced only with force. On failure err names the file and field and no
 * output is left. */
int rs_route_run(const rs_route_request *req, rs_results *results, rs_route_report *report, rs_error *err);

#endif
