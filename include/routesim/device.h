/* What a router's device hook sees (rs_router_type.route_device): one chunk
 * whose arrays live in the memory of an OpenMP offload device (a GPU), or
 * of the host when the device path runs there (docs/gpu.md).
 *
 * Layouts are rs_chunk's: token-major, then layer, then expert. A hook
 * launches `#pragma omp target teams distribute parallel for
 * device(chunk->device) is_device_ptr(...)` over the n * L rows and calls,
 * for each row, the same row function its route_layer calls on the CPU, so
 * both paths give the same bits. */
#ifndef ROUTESIM_DEVICE_H
#define ROUTESIM_DEVICE_H

#include <stdint.h>

typedef struct rs_device_chunk {
    int device; /* the OpenMP device number the arrays belong to */
    int64_t t0; /* global index of the first token */
    int n, L, E;
    const float *logits;      /* [n, L, E] float32 */
    const float *probs;       /* [n, L, E] softmax of the logits, or NULL unless the router needs RS_NEEDS_PROBS */
    const uint8_t *valid;     /* [n] 1 = finite logits; NULL = every token is */
    const float *bias;        /* [L, E] selection bias, or NULL */
    const int32_t *token_ids; /* [n] or NULL */
    /* Per row [n, L], with probs: the softmax's maximum logit, sum_e
     * e^(z_e - max) and sum_e e^(z_e - max) (z_e - max), as rs_softmax_core
     * returns them; a metric finishes on the host what needs a logarithm. */
    const float *row_max;
    const double *row_sum, *row_dot;
    /* The same logits in host memory: a hook may select on the device and
     * finish on the host what needs the host's libm (whose results the
     * device's library need not reproduce bit for bit). NULL when the host
     * did not widen the chunk: the engine asks a hook first with NULL
     * (n = 0), and only when it declines, with them (the host then widens). */
    const float *host_logits;
} rs_device_chunk;

/* Most experts per row the built-in device hooks select (their per-row
 * scratch lives in registers and local memory); a larger k runs on the CPU. */
#define RS_DEVICE_MAX_K 64
/* Most experts per row, and groups, of the built-in hooks that keep a row of
 * scores or groups (deepseek_v3, group_limited, sqrt_softplus). */
#define RS_DEVICE_MAX_E 512
#define RS_DEVICE_MAX_GROUPS 64

/* Row (token t, layer l) of an [n, L, width] array. */
static inline uint64_t rs_device_row(const rs_device_chunk *c, int64_t t, int l, int width)
{
    return ((uint64_t)t * (uint64_t)c->L + (uint64_t)l) * (uint64_t)width;
}

#endif
