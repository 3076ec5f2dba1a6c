/* Helpers of the query-routing suites (tests/check_query_*.c): small
 * unit = query traces written with the library's writer, routing a trace
 * through the engine into a decisions file, and measuring it. */
#ifndef ROUTESIM_CHECK_QUERY_H
#define ROUTESIM_CHECK_QUERY_H

#include <check.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/engine/engine.h"
#include "tests/test_util.h"
#include "workloads/trace/trace_writer.h"

typedef struct query_trace {
    int T, E;
    const float *quality;     /* [T, E] */
    const float *cost;        /* [T, E] or NULL */
    const float *model_cost;  /* [E] or NULL */
    const float *logits;      /* [T, E] scores or NULL */
    const int32_t *domain;    /* [T] label of each query (its own sequence) or NULL */
    int num_domains;
    const char *const *names; /* [E] or NULL */
} query_trace;

/* Every query its own sequence, as the importers write them. */
static inline void query_trace_write(const char *path, const query_trace *q)
{
    static const char *const domain_names[] = {"d0", "d1", "d2", "d3", "d4", "d5", "d6", "d7"};
    rs_trace_layout layout = {
        .num_layers = 1,
        .num_experts = q->E,
        .logits = q->logits ? RS_LOGITS_F32 : RS_LOGITS_NONE,
        .unit = "query",
        .norm_topk = -1,
        .num_domains = q->domain ? q->num_domains : 0,
        .domain_names = q->domain ? domain_names : NULL,
        .expert_names = q->names,
        .outcome_quality = 1,
        .outcome_cost = q->cost ? RS_COST_PER_QUERY : q->model_cost ? RS_COST_PER_MODEL : RS_COST_NONE,
    };
    ck_assert(!q->domain || q->num_domains <= 8);
    rs_error err = {{0}};
    rs_trace_writer *w = NULL;
    ck_assert_msg(rs_trace_writer_create(&w, path, &layout, &err) == 0, "%s", err.msg);
    if (q->model_cost)
        ck_assert_msg(rs_trace_writer_set_model_cost(w, q->model_cost, &err) == 0, "%s", err.msg);
    ck_assert_msg(rs_trace_writer_append(w, q->T, q->logits, NULL, NULL, NULL, NULL, &err) == 0, "%s", err.msg);
    ck_assert_msg(rs_trace_writer_append_outcome(w, q->T, q->quality, q->cost, &err) == 0, "%s", err.msg);
    int64_t *ends = malloc((size_t)q->T * sizeof *ends);
    int32_t *labels = calloc((size_t)q->T, sizeof *labels);
    ck_assert(ends && labels);
    for (int t = 0; t < q->T; t++) {
        ends[t] = t + 1;
        labels[t] = q->domain ? q->domain[t] : 0;
    }
    ck_assert_msg(rs_trace_writer_end_sequences(w, q->T, ends, labels, &err) == 0, "%s", err.msg);
    free(ends);
    free(labels);
    ck_assert_msg(rs_trace_writer_finish(w, &err) == 0, "%s", err.msg);
}

/* Decisions of one router over the whole trace. */
typedef struct query_decisions {
    int T, kmax;
    int32_t *ids;   /* [T, kmax] */
    float *weights; /* [T, kmax] */
} query_decisions;

static inline void query_decisions_free(query_decisions *d)
{
    free(d->ids);
    free(d->weights);
}

/* Routes path with spec (threads, chunk tokens; 0 = defaults); the router's
 * create must succeed. */
static inline query_decisions query_route(const char *path, const char *spec_text, int threads, int chunk)
{
    rs_router_spec spec;
    rs_error err = {{0}};
    ck_assert_msg(rs_router_spec_parse(&spec, spec_text, &err) == 0, "%s", err.msg);
    rs_trace *tr = NULL;
    ck_assert_msg(rs_trace_open(&tr, path, &err) == 0, "%s", err.msg);
    rs_results res;
    rs_results_init(&res);
    rs_engine_options opt = {.threads = threads, .chunk_tokens = chunk, .batch_tokens = 64, .progress = 0};
    rs_engine *e = NULL;
    ck_assert_msg(rs_engine_create(&e, tr, &spec, 1, NULL, 0, &opt, &res, &err) == 0, "%s: %s", spec_text, err.msg);
    query_decisions d = {.T = (int)rs_trace_get_info(tr)->num_tokens, .kmax = rs_engine_router_kmax(e, 0)};
    static int counter;
    char out[1200];
    snprintf(out, sizeof out, "%s/decisions-%d.h5", rs_test_dir(), counter++);
    rs_decisions_writer *w = NULL;
    ck_assert_int_eq(rs_decisions_writer_create(&w, out, 1, d.kmax, spec_text, path, &err), 0);
    ck_assert_msg(rs_engine_run(e, w, NULL, &err) == 0, "%s: %s", spec_text, err.msg);
    ck_assert_int_eq(rs_decisions_writer_finish(w, &err), 0);
    rs_engine_destroy(e);
    rs_trace_close(tr);
    rs_results_free(&res);
    rs_router_spec_free(&spec);
    size_t cells = (size_t)d.T * (size_t)d.kmax;
    d.ids = malloc(cells * sizeof *d.ids);
    d.weights = malloc(cells * sizeof *d.weights);
    ck_assert(d.ids && d.weights);
    hid_t f = H5Fopen(out, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t di = H5Dopen2(f, "/decisions/ids", H5P_DEFAULT), dw = H5Dopen2(f, "/decisions/weights", H5P_DEFAULT);
    H5Dread(di, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, d.ids);
    H5Dread(dw, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, d.weights);
    H5Dclose(di);
    H5Dclose(dw);
    H5Fclose(f);
    return d;
}

/* The message create fails with (the router's create must fail). */
static inline void query_route_fails(const char *path, const char *spec_text, const char *needle)
{
    rs_router_spec spec;
    rs_error err = {{0}};
    ck_assert_msg(rs_router_spec_parse(&spec, spec_text, &err) == 0, "%s", err.msg);
    rs_trace *tr = NULL;
    ck_assert_msg(rs_trace_open(&tr, path, &err) == 0, "%s", err.msg);
    rs_results res;
    rs_results_init(&res);
    rs_engine_options opt = {.batch_tokens = 64, .progress = 0};
    rs_engine *e = NULL;
    ck_assert_msg(rs_engine_create(&e, tr, &spec, 1, NULL, 0, &opt, &res, &err) != 0, "%s: create succeeded",
                  spec_text);
    ck_assert_msg(strstr(err.msg, needle) != NULL, "%s: message '%s' lacks '%s'", spec_text, err.msg, needle);
    rs_engine_destroy(e);
    rs_trace_close(tr);
    rs_results_free(&res);
    rs_router_spec_free(&spec);
}

/* Runs routers[0..n) with the outcome family (default parameters unless
 * metric_params) on path; fills res (rs_results_free it). */
static inline void query_measure(const char *path, const char *const *routers, int n, const char *metric_params,
                                 int threads, int chunk, rs_results *res)
{
    rs_error err = {{0}};
    rs_router_spec specs[16];
    ck_assert_int_le(n, 16);
    for (int i = 0; i < n; i++)
        ck_assert_msg(rs_router_spec_parse(&specs[i], routers[i], &err) == 0, "%s", err.msg);
    rs_metric_spec metric;
    ck_assert_msg(rs_metric_spec_init(&metric, "outcome", "", &err) == 0, "%s", err.msg);
    if (metric_params)
        ck_assert_msg(rs_params_parse_list(&metric.params, metric_params, &err) == 0, "%s", err.msg);
    rs_trace *tr = NULL;
    ck_assert_msg(rs_trace_open(&tr, path, &err) == 0, "%s", err.msg);
    rs_results_init(res);
    rs_engine_options opt = {.threads = threads, .chunk_tokens = chunk, .batch_tokens = 64, .progress = 0};
    rs_engine *e = NULL;
    ck_assert_msg(rs_engine_create(&e, tr, specs, n, &metric, 1, &opt, res, &err) == 0, "%s", err.msg);
    ck_assert_msg(rs_engine_run(e, NULL, NULL, &err) == 0, "%s", err.msg);
    rs_engine_destroy(e);
    rs_trace_close(tr);
    rs_metric_spec_free(&metric);
    for (int i = 0; i < n; i++)
        rs_router_spec_free(&specs[i]);
}

/* The layer=all value of run `run`, metric, key; fails the test when absent. */
static inline double query_value(const rs_results *res, int run, const char *metric, const char *key)
{
    for (size_t i = 0; i < res->num_rows; i++) {
        const rs_result_row *r = &res->rows[i];
        if (r->run == run && r->layer < 0 && strcmp(r->metric, metric) == 0 && strcmp(r->key, key) == 0)
            return r->value;
    }
    ck_abort_msg("no row %s [%s] for run %d", metric, key, run);
    return NAN;
}

#endif
