/* The paths of rs_gather_at_least by x86-64 level, for the tests that
 * compare them: 4 AVX-512 compress, 3 AVX2 permutation table, 1 scalar. */
#ifndef ROUTESIM_ROUTERS_GATHER_LEVELS_H
#define ROUTESIM_ROUTERS_GATHER_LEVELS_H

#include <stdint.h>

/* The level rs_gather_at_least runs: RS_FORCE_ISA when built with it, else
 * the best this CPU runs (1 off x86-64). */
int rs_gather_isa_level(void);

/* rs_gather_at_least on the path of `level`, which the CPU must support. */
int rs_gather_at_least_level(int level, const float *v, int n, float tau, int32_t *idx, float *val);

#endif
