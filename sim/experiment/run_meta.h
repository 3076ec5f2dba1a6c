/* The description of a run that results.json records beside the rows. */
#ifndef ROUTESIM_RUN_META_H
#define ROUTESIM_RUN_META_H

#include <cJSON.h>

#include "sim/engine/engine.h"

/* What the first lines of every results.json contain (the "routesim" object
 * of rs_run_meta_new): how an existing file is recognised as one before it
 * is overwritten. */
#define RS_RUN_META_SIGNATURE "\"routesim\":"

/* Starts the meta object: routesim version, git revision, start time. */
cJSON *rs_run_meta_new(const char *name, double wall_start_epoch);
/* Appends one routed trace with its shape and engine statistics. */
void rs_run_meta_add_trace(cJSON *meta, const rs_trace_info *info, const char *logits_dtype,
                           const rs_engine_stats *stats);
/* Records wall time and thread count at the end. */
void rs_run_meta_finish(cJSON *meta, double wall_seconds, int threads);
/* Seconds since the epoch (for the start time). */
double rs_epoch_now(void);

#endif
