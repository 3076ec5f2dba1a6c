/* Shared by the cache metric suites: a stream of top-k decisions held in
 * memory, fed to the `cache` family in chunks as the engine would. */
#ifndef ROUTESIM_TESTS_CHECK_METRICS_CACHE_H
#define ROUTESIM_TESTS_CHECK_METRICS_CACHE_H

#include <stdint.h>

#include "routesim/metric.h"
#include "core/metric_sink.h"

typedef struct cache_stream {
    int T, L, E, K;
    int num_seq;
    const int64_t *offsets; /* [num_seq + 1] */
    const int32_t *ids;     /* [T, L, K], -1 padding */
    const uint8_t *valid;   /* [T] or NULL */
} cache_stream;

const rs_metric_type *cache_family(void);
/* An accumulator with parameters "name=value,..."; NULL with the message in err on failure. */
void *cache_acc_try(const cache_stream *s, const char *params, char *err, size_t err_size);
void *cache_acc(const cache_stream *s, const char *params);
/* Tokens [from, to) in chunks of at most chunk tokens, every layer then update_chunk. */
void cache_feed(void *acc, const cache_stream *s, int from, int to, int chunk);
/* Creates, feeds the whole stream in one chunk, finalizes into sink, destroys. */
void cache_run(const cache_stream *s, const char *params, rs_metric_sink *sink);
double cache_value(const rs_metric_sink *sink, const char *output, int layer, const char *extra);
/* One value of a fresh run over the whole stream. */
double cache_run_value(const cache_stream *s, const char *params, const char *output, int layer, const char *extra);

/* Random decisions with per-sequence favourites (so caches matter), k in
 * [1, K] per row, -1 padding; caller frees. */
int32_t *cache_random_ids(int T, int L, int E, int K, uint64_t seed);

#endif
