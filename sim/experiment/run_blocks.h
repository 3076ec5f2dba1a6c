/* Runs split across the ranks of an MPI job in blocks of whole sequences
 * (sim/engine/engine_blocks.c), for configs of fewer runs than ranks,
 * where splitting whole runs would leave ranks idle: rank k of N routes
 * the sequences [k S / N, (k + 1) S / N) of every such run, and rank 0
 * merges the blocks' accumulators in rank order and files the run as one
 * process would. */
#ifndef ROUTESIM_RUN_BLOCKS_H
#define ROUTESIM_RUN_BLOCKS_H

#include "sim/config/config.h"
#include "sim/engine/engine.h"
#include "sim/experiment/experiment.h"
#include "sim/results/results.h"

/* Collective. Marks by_blocks[t * n + r] (n routers, cfg->num_traces
 * traces) for run r of trace t when it goes in blocks: the config has
 * fewer runs than there are ranks, the trace at least as many sequences
 * as ranks, and its blocks give the whole run's results
 * (rs_engine_blocks_check). Rank 0 decides, says once why a run is routed
 * whole instead, and tells the others. */
int rs_blocks_plan(const rs_config *cfg, const rs_engine_options *opt, unsigned char *by_blocks, rs_error *err);

/* Collective, on every rank alike, after the whole runs were routed: each
 * run of trace t marked in by_blocks (n of them) is routed by every rank
 * on its block of sequences; rank 0 merges the blocks in rank order and
 * puts the run into held (held_run[r]: its index there) and the run
 * store, or takes it from the store when it is there (and not
 * xo->force). total and *threads_used get rank 0's routing statistics,
 * with the skipped tokens and chunks of every block. Returns the same on
 * every rank. */
int rs_blocks_route(const rs_config *cfg, const rs_experiment_options *xo, const rs_engine_options *opt, int t,
                    const unsigned char *by_blocks, rs_results *held, int *held_run, rs_engine_stats *total,
                    int *threads_used, rs_error *err);

#endif
