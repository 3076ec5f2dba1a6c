/* Shared by the local routing consistency suites (srp, sch): decisions
 * with controlled locality, accumulators fed chunk by chunk, and a CLI
 * trace. Defined in tests/check_metrics_srp.c. */
#ifndef ROUTESIM_TESTS_LRC_TEST_H
#define ROUTESIM_TESTS_LRC_TEST_H

#include <stdint.h>

#include "routesim/metric.h"

enum { LRC_RANDOM, LRC_STICKY, LRC_POPULAR };
extern int64_t lrc_test_trace_tokens;
void lrc_test_generate(unsigned seed, int mode, int E, int k, int L, const int *lengths, int count, int32_t *ids);
void *lrc_test_make_acc(const rs_metric_type *t, const char *params, int L, int E, int kmax, int top_k);
void lrc_test_feed(const rs_metric_type *t, void *acc, const int32_t *ids, int kmax, int L, int E,
                   const int64_t *offsets, int num_seq, int64_t a, int64_t b, int chunk, const uint8_t *valid);
double lrc_test_value(const rs_metric_type *t, const void *acc, const char *name, int layer);
char *lrc_test_run_csv(const char *config_json, const char *extra_args, const char *name);
void lrc_test_check_merges(const char *family, const char *params);
const char *lrc_test_cli_trace(void);

#endif
