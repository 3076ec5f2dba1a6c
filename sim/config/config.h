/* Experiment configs (docs/config.md): JSON in, validated and expanded
 * runs out. Every error names the config file and the JSON path at fault,
 * e.g. "exp.json: routers[2].params.k: expected an integer, got 'two'". */
#ifndef ROUTESIM_CONFIG_H
#define ROUTESIM_CONFIG_H

#include <cJSON.h>
#include <stdint.h>

#include "core/output_space.h"
#include "routesim/params.h"
#include "sim/config/breakdown.h"
#include "sim/config/import_recipe.h"
#include "sim/config/param_sweep.h"
#include "sim/config/spec.h"

/* Checkpoints of a pass: often enough that a kill loses little, rarely
 * enough that saving costs a small share of the time. */
#define RS_DEFAULT_CHECKPOINT_SECONDS 30.0

typedef struct rs_trace_entry {
    char *path;
    int generate;       /* 1: make the trace at path if it does not exist */
    rs_params gen;      /* generator settings when generate = 1 */
    int import;         /* 1: import the trace at path if it does not exist */
    rs_trace_import imp;
    rs_output_limit limit; /* "max_output_gb" of a generated or imported trace */
} rs_trace_entry;

typedef struct rs_config {
    char *source; /* the config file, for messages */
    char *name;
    rs_trace_entry *traces;
    int num_traces;
    rs_router_spec *routers; /* after expanding parameter lists */
    int num_routers;
    rs_metric_spec *metrics; /* after expanding parameter lists */
    int num_metrics;
    int batch_tokens;
    char *output;
    int threads;
    int runs_per_pass; /* 0 = every run in one pass over a trace */
    double checkpoint_seconds; /* checkpoint a pass this often (0 = not by time) */
    int64_t checkpoint_chunks; /* or every this many chunks (0 = not by count) */
    int64_t chunk_tokens;
    double memory_mb;
    int skip_nonfinite;
    int device; /* "device": 0 cpu, 1 gpu (RS_DEVICE_* of sim/engine/engine.h) */
    /* agreement metrics' reference: one of routers, or reference_owned;
     * reference_trace = a paired trace (NULL: the same trace) */
    const rs_router_spec *reference;
    rs_router_spec *reference_owned;
    char *reference_trace;
    /* bootstrap over sequences (engine.h); 0 resamples = off */
    int bootstrap, bootstrap_blocks;
    double bootstrap_level;
    uint64_t bootstrap_seed;
    unsigned breakdown; /* bits 1 << rs_breakdown_dim: rows per domain, phase */
    cJSON *json; /* the document as read, recorded in results.json */
} rs_config;

int rs_config_load(rs_config *cfg, const char *path, rs_error *err);
int rs_config_parse(rs_config *cfg, const char *text, const char *source, rs_error *err);
void rs_config_free(rs_config *cfg);

#endif
