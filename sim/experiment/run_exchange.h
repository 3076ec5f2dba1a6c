/* Whole runs split across the ranks of an MPI job (sim/experiment/ranks.h):
 * which runs of a trace each rank routes, and how rank 0 receives the
 * others' finished runs, exactly as the run store keeps them. */
#ifndef ROUTESIM_RUN_EXCHANGE_H
#define ROUTESIM_RUN_EXCHANGE_H

#include "sim/results/results.h"

/* Runs of trace number `trace` (n runs each, num_traces traces) that rank
 * `rank` of `size` routes: [*first, *last) of 0..n. The runs of all traces
 * are numbered trace by trace and cut into `size` consecutive shares whose
 * sizes differ by at most one, so the split depends only on the config and
 * the number of ranks. */
void rs_run_share(int trace, int num_traces, int n, int rank, int size, int *first, int *last);

/* Collective, after every rank routed its share of trace number `trace`
 * into held (held_run[r]: run r's index there): rank 0 adds every other
 * rank's runs to held and sets their held_run. Other ranks only send.
 * Runs marked in by_blocks (NULL: none) are left out: every rank routed
 * a block of them, and rank 0 holds them merged (run_blocks.h). */
int rs_run_exchange(int trace, int num_traces, int n, const unsigned char *by_blocks, rs_results *held,
                    int *held_run, rs_error *err);

#endif
