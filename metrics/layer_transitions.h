/* Counting a chunk's layer-to-layer transitions: A[i][j] += the tokens
 * whose experts include i at layer l and j at layer l+1 (every pair of the
 * two decision rows), for the families that keep such a table (affinity,
 * run_counts). */
#ifndef ROUTESIM_LAYER_TRANSITIONS_H
#define ROUTESIM_LAYER_TRANSITIONS_H

#include <stdint.h>

#include "routesim/chunk.h"

/* A is layer l's E x E table (row = expert at l). */
static inline void rs_count_layer_transitions(int64_t *A, int E, const rs_chunk *c, const rs_decisions *dec, int l)
{
    const int K = dec->kmax;
    for (int t = 0; t < c->n; t++) {
        if (!rs_row_observed(c, dec, t, l) || !rs_row_observed(c, dec, t, l + 1))
            continue;
        const int32_t *from = dec->ids + rs_decision_row(c, dec, t, l);
        const int32_t *to = dec->ids + rs_decision_row(c, dec, t, l + 1);
        for (int x = 0; x < K; x++) {
            if (from[x] < 0)
                continue;
            int64_t *row = A + (size_t)from[x] * (size_t)E;
            for (int y = 0; y < K; y++)
                if (to[y] >= 0)
                    row[to[y]]++;
        }
    }
}

#endif
