/* Helpers of the placement metric's suites: accumulators on hand-built
 * chunks of decisions (check_placement_metric.c). */
#ifndef ROUTESIM_TESTS_CHECK_PLACEMENT_METRIC_H
#define ROUTESIM_TESTS_CHECK_PLACEMENT_METRIC_H

#include <stdint.h>

#include "routesim/error.h"
#include "routesim/metric.h"

/* A trace of T tokens in sequences of the given lengths, decision rows of
 * K experts at L layers (ids [T][L][K]), batches of B tokens. */
typedef struct rs_test_placement_shape {
    int T, L, E, K, B;
    const int *seq_lengths;
    int num_seq;
    const rs_run_counts *counts; /* setup->counts (what the engine's counting pass gives), or NULL */
} rs_test_placement_shape;

const rs_metric_type *rs_test_placement_family(void);
/* An accumulator with params ("k=v,..."), or NULL with the message. */
void *rs_test_placement_try(const rs_test_placement_shape *shape, const char *params, rs_error *err);
void *rs_test_placement_make(const rs_test_placement_shape *shape, const char *params);
/* Tokens [t0, t0 + n) of ids as one chunk (update_layer, update_chunk). */
void rs_test_placement_feed(const rs_test_placement_shape *shape, void *acc, const int32_t *ids, int64_t t0, int n);
/* Tokens [from, to) in chunks of `chunk`. */
void rs_test_placement_feed_chunks(const rs_test_placement_shape *shape, void *acc, const int32_t *ids, int64_t from,
                                   int64_t to, int chunk);
/* Skewed random rows of distinct experts, a few padded (caller frees). */
int32_t *rs_test_placement_random_ids(int T, int L, int E, int K, unsigned seed);
/* acc saved and restored into a fresh accumulator of the same params. */
void *rs_test_placement_resume(const rs_test_placement_shape *shape, const char *params, void *acc);
/* Passes stopped after chunks and resumed equal the whole pass (64 tokens). */
void rs_test_placement_check_resume(const char *params, int B);

#endif
