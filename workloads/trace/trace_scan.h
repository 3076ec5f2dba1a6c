/* A pass over a trace's values that opening does not check (opening checks
 * the contract's attributes, shapes and offsets): non-finite logits and
 * recorded expert ids outside [-1, E). Streams in blocks of tokens, so
 * memory does not grow with the trace. */
#ifndef ROUTESIM_TRACE_SCAN_H
#define ROUTESIM_TRACE_SCAN_H

#include <stddef.h>
#include <stdint.h>

#include "routesim/error.h"
#include "workloads/trace/trace.h"

typedef struct rs_trace_scan {
    /* /router/logits */
    int64_t nan_logits, inf_logits; /* values */
    int64_t nonfinite_tokens;       /* tokens with at least one of them */
    int64_t first_nonfinite_token;  /* -1 if none */
    int first_nonfinite_layer;
    /* /router/topk_ids */
    int64_t bad_ids;           /* entries outside [-1, E) */
    int64_t bad_id_tokens;     /* tokens with at least one */
    int64_t first_bad_id_token; /* -1 if none */
    int first_bad_id_layer;
    int32_t first_bad_id;
    /* /router/topk_weights */
    int64_t nonfinite_weights;
} rs_trace_scan;

/* Fills scan from every token of tr; fails only when a read fails. */
int rs_trace_scan_values(rs_trace *tr, rs_trace_scan *scan, rs_error *err);
/* The same in blocks of about block_values values (at least one token's):
 * counts do not depend on it. */
int rs_trace_scan_values_blocked(rs_trace *tr, rs_trace_scan *scan, size_t block_values, rs_error *err);

#endif
