/* Finished runs kept on disk (OUTPUT/runs/HASH.json), so re-running a
 * config skips what an interrupted sweep already computed. A run is keyed
 * by everything its results depend on: routesim version and revision, the
 * trace file (path, size, modification time), the router spec and label,
 * the metrics with their parameters, and the run settings that change
 * numbers (batch_tokens, skip_nonfinite, bootstrap, reference). */
#ifndef ROUTESIM_RUN_CACHE_H
#define ROUTESIM_RUN_CACHE_H

#include "sim/config/config.h"
#include "sim/engine/engine.h"
#include "sim/results/results.h"

/* The key text of router spec r of cfg on trace_path (caller frees). */
char *rs_run_cache_key(const rs_config *cfg, const rs_engine_options *opt, const char *trace_path, int r,
                       rs_error *err);

/* Looks up key under dir/runs: on a hit, adds the run and its rows to
 * results, sets *run and returns 1; 0 on a miss (or an unreadable entry,
 * which is then recomputed); -1 on error. */
int rs_run_cache_load(const char *dir, const char *key, rs_results *results, int *run, rs_error *err);

/* Where a pass keyed by pass_key (its runs' keys) keeps its checkpoint:
 * dir/runs/HASH.ckpt. */
void rs_run_cache_checkpoint_path(const char *dir, const char *pass_key, char *buf, size_t size);

/* Stores run `run` of results (its description and rows) under key,
 * written to a temporary file and renamed. */
int rs_run_cache_store(const char *dir, const char *key, const rs_results *results, int run, rs_error *err);

/* The text of a stored entry: run `run` of results under key (caller
 * frees; NULL when out of memory). Exact: decoding gives the same values. */
char *rs_run_cache_encode(const char *key, const rs_results *results, int run);

/* Adds the run in body (an entry's text) to results as
 * rs_run_cache_load does; a NULL key accepts any entry's key. */
int rs_run_cache_decode(const char *body, const char *key, rs_results *results, int *run, rs_error *err);

#endif
