/* Decision rows a device hook finishes on the host (sigmoid_topk,
 * null_experts): the device selects, the ids come down, the host computes
 * the weights with libm as its CPU path does, and the weights go back up. */
#ifndef ROUTESIM_ROUTERS_HOST_ROWS_H
#define ROUTESIM_ROUTERS_HOST_ROWS_H

#include <omp.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct rs_host_rows {
    int32_t *ids;
    float *weights;
    size_t cells; /* room of both */
} rs_host_rows;

/* Room for cells ids and weights (kept across chunks); 0 or -1. */
static inline int rs_host_rows_reserve(rs_host_rows *b, size_t cells)
{
    if (cells <= b->cells)
        return 0;
    free(b->ids);
    free(b->weights);
    b->ids = malloc(cells * sizeof *b->ids);
    b->weights = malloc(cells * sizeof *b->weights);
    b->cells = b->ids && b->weights ? cells : 0;
    return b->cells ? 0 : -1;
}

/* The device's ids into b->ids; 0 or -1. */
static inline int rs_host_rows_fetch_ids(rs_host_rows *b, const int32_t *ids, size_t cells, int device)
{
    return omp_target_memcpy(b->ids, (void *)ids, cells * sizeof *b->ids, 0, 0, omp_get_initial_device(), device) ==
                   0
               ? 0
               : -1;
}

/* b->weights to the device's weights; 0 or -1. */
static inline int rs_host_rows_send_weights(const rs_host_rows *b, float *weights, size_t cells, int device)
{
    return omp_target_memcpy(weights, b->weights, cells * sizeof *b->weights, 0, 0, device,
                             omp_get_initial_device()) == 0
               ? 0
               : -1;
}

static inline void rs_host_rows_free(rs_host_rows *b)
{
    free(b->ids);
    free(b->weights);
    b->ids = NULL;
    b->weights = NULL;
    b->cells = 0;
}

#endif
