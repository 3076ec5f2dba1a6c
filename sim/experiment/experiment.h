/* Running a config: for every trace (generated first when asked), the runs
 * not already on disk are routed in passes over the trace, each finished
 * run is stored (OUTPUT/runs/), and the results are assembled in config
 * order, so an interrupted sweep resumes where it stopped and ends with the
 * same results as an uninterrupted one. */
#ifndef ROUTESIM_EXPERIMENT_H
#define ROUTESIM_EXPERIMENT_H

#include <cJSON.h>

#include "sim/config/config.h"
#include "sim/engine/engine.h"
#include "sim/results/results.h"

typedef struct rs_experiment_options {
    rs_engine_options engine; /* progress, threads, chunks, memory, bootstrap */
    int force;                /* recompute runs whose results are stored */
    int runs_per_pass;        /* routers per pass over a trace; 0 = all in one pass */
    int progress;             /* for the generator */
} rs_experiment_options;

/* Fills results (runs in config order per trace, each run's rows
 * together) and meta's per-trace entries. */
int rs_experiment_run(const rs_config *cfg, const rs_experiment_options *xo, rs_results *results, cJSON *meta,
                      int *threads_used, rs_error *err);

#endif
