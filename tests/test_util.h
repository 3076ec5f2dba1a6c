/* Helpers shared by the Check suites: scratch directories, small traces
 * built in memory, and running the routesim binary. */
#ifndef ROUTESIM_TEST_UTIL_H
#define ROUTESIM_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "routesim/chunk.h"
#include "routesim/metric.h"
#include "workloads/trace/trace_writer.h"

/* A fresh directory under $TMPDIR (removed by the OS; tests never share one). */
const char *rs_test_dir(void);
/* dir/name in a static rotating buffer. */
const char *rs_test_path(const char *name);

/* A trace held in memory, written with rs_test_write_trace. */
typedef struct rs_test_trace {
    int T, L, E, K;
    int num_seq;
    const int64_t *offsets; /* [num_seq + 1] */
    const float *logits;    /* [T, L, E] or NULL */
    const int32_t *topk_ids; /* [T, L, K] or NULL */
    const float *topk_weights;
    const int32_t *token_ids; /* [T] or NULL */
    rs_logits_dtype dtype;    /* RS_LOGITS_F32 unless set */
    const char *model, *scoring;
    int top_k, norm_topk;     /* 0 / -1 = unset */
    const int32_t *domain;    /* [num_seq] labels, or NULL */
    int num_domains;          /* names of the labels (with domain) */
    const char *const *domain_names;
    const uint8_t *phase;     /* [T] or NULL */
} rs_test_trace;

/* Writes the trace with the library's writer; aborts the test on failure. */
void rs_test_write_trace(const char *path, const rs_test_trace *t);

/* A decisions file's /decisions/ids then /decisions/weights (as int32
 * bits), cells of each (caller frees). */
int32_t *rs_test_read_decisions(const char *path, size_t cells);

struct rs_engine_options;
struct rs_engine_stats;
/* Routes the trace at path with one router spec and opt (no metrics),
 * writing the decisions to out; returns them as rs_test_read_decisions
 * does, their cells [T, L, kmax] in *cells and the run's stats (stats may
 * be NULL). Any failure fails the test. */
int32_t *rs_test_route_decisions(const char *path, const char *spec_text, const struct rs_engine_options *opt,
                                 const char *out, size_t *cells, struct rs_engine_stats *stats);

/* Random normal logits [T, L, E] from a fixed seed (caller frees). */
float *rs_test_random_logits(int T, int L, int E, unsigned seed);

/* Runs the routesim binary ($ROUTESIM_BIN) with a shell command line after
 * the program name, capturing stdout and stderr. Returns the exit status. */
int rs_test_run_cli(const char *args, char **out, char **err);
/* A formatted command line (or any text) in one of 4 rotating static buffers of 4 KiB. */
char *rs_test_cmd(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A chunk built in memory for calling route_layer / update_layer directly:
 * one sequence covering all n tokens, softmax computed like the engine does. */
typedef struct rs_test_chunk {
    rs_chunk chunk;
    float *logits, *probs;
    double *lse, *mean_logit, *log_norm, *entropy;
    int32_t *seq_of_token;
    int64_t offsets[2];
    int64_t *seq_offsets; /* rs_test_chunk_sequences */
    void *group_buffers;  /* rs_test_chunk_groups */
} rs_test_chunk;

void rs_test_chunk_init(rs_test_chunk *tc, int64_t t0, int n, int L, int E, const float *logits);
/* Splits the chunk into sequences: lengths[0..count) must sum to n. */
void rs_test_chunk_sequences(rs_test_chunk *tc, const int *lengths, int count);
/* Builds chunk.groups[mode] (and sets chunk.batch_tokens) as the engine does. */
void rs_test_chunk_groups(rs_test_chunk *tc, rs_group mode, int batch_tokens);
void rs_test_chunk_free(rs_test_chunk *tc);

/* Runs `routesim run CONFIG` with the thread count and chunk size and
 * returns its results.csv (caller frees). */
char *rs_test_run_csv(const char *config, int threads, int chunk);
/* results.csv of CONFIG with 1 thread and chunks of a, after checking that
 * 1 thread with chunks of b and 2 threads with chunks of a and of c give
 * the same bytes (caller frees). */
char *rs_test_invariant_csv(const char *config, int a, int b, int c);

/* Writes tt to NAME.h5 and a config NAME.json of that trace, the JSON
 * entries given (e.g. "\"routers\": [...], \"metrics\": [...]") and
 * batch_tokens 50; returns rs_test_invariant_csv of it (caller frees). */
char *rs_test_config_csv(const char *name, const rs_test_trace *tt, const char *entries, int a, int b, int c);

/* The finalized rows of two accumulators of family t are equal, values bit
 * for bit; what names the comparison in failures. */
void rs_test_same_rows(const rs_metric_type *t, const void *x, const void *y, const char *what);

/* Reads a whole file (caller frees), or NULL. */
char *rs_test_read_file(const char *path);
int rs_test_file_exists(const char *path);

#endif
