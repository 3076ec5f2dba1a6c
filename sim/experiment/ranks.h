/* The ranks of an MPI job (mpirun, srun): one `routesim run` split across
 * processes. Built without MPI (the default build) there is one rank and
 * every call is trivial (ranks_single.c); `make MPI=1` links ranks_mpi.c.
 * The collective calls must be made by every rank in the same order. */
#ifndef ROUTESIM_RANKS_H
#define ROUTESIM_RANKS_H

#include <stddef.h>

#include "routesim/error.h"

/* Starts MPI (once, before anything else reads argv); 0 or -1. */
int rs_ranks_init(int *argc, char ***argv);

/* Ends MPI; call once on the way out of main. */
void rs_ranks_finalize(void);

int rs_ranks_rank(void); /* this process: 0 .. size-1; rank 0 writes the results */
int rs_ranks_size(void); /* number of processes; 1 without MPI */

/* Collective: every rank passes its own rc (0 = success) and err. Returns
 * 0 on every rank when all succeeded; otherwise -1 on every rank, with err
 * holding the message of the lowest failing rank ("rank K of N: ..."). */
int rs_ranks_agree(int rc, rs_error *err);

/* 1 once rs_ranks_agree has reported a failure: every rank holds the same
 * message, which rank 0 alone needs to print. */
int rs_ranks_failure_shared(void);

/* Collective: every rank gets rank 0's len bytes at data (len < 2 GiB). */
void rs_ranks_broadcast(void *data, size_t len);

/* Collective: rank 0 receives every rank's bytes. On rank 0, *all (caller
 * frees) holds them back to back in rank order and lens[k] (lens has size
 * entries) says how many came from rank k; elsewhere *all is NULL. */
int rs_ranks_gather(const char *data, size_t len, char **all, size_t *lens, rs_error *err);

#endif
