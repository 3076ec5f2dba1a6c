/* Fuzz target: router and metric spec strings, as `routesim route` takes
 * them. The input is up to four lines: the router spec (--router), the
 * metric list (--metrics; empty = the default), the reference router
 * (--reference; empty = none), and "query" to route the query trace
 * instead of the token trace. Both traces are small, written once.
 *
 * What must hold: a spec that parses prints (rs_router_spec_string) as a
 * spec that parses back to the same string; a route that fails says so in
 * one line and leaves no decisions file; one that succeeds leaves it.
 * Inputs naming a path ('/') are skipped: router parameters may name files
 * to read, and the fuzzer should not wander the file system. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sim/config/spec.h"
#include "sim/experiment/route.h"
#include "sim/results/results.h"
#include "tests/fuzz/harness.h"
#include "workloads/trace/trace_writer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char token_trace[640], query_trace[640];

static void must(int rc, const rs_error *err)
{
    if (rc != 0)
        rs_fuzz_fail("writing a seed trace: %s", err->msg);
}

/* 3 sequences of 40 tokens, 2 layers of 8 experts: logits, recorded top-2
 * with weights, token ids, phases and a bias. */
static void write_token_trace(const char *path)
{
    enum { T = 40, L = 2, E = 8, K = 2 };
    float logits[T * L * E], weights[T * L * K], bias[L * E];
    int32_t ids[T * L * K], token_ids[T];
    uint8_t phase[T];
    for (int i = 0; i < T * L * E; i++)
        logits[i] = (float)sin(i * 0.37) * 2.0f;
    for (int i = 0; i < T * L; i++)
        for (int j = 0; j < K; j++) {
            ids[i * K + j] = (i + 3 * j) % E;
            weights[i * K + j] = 0.5f;
        }
    for (int t = 0; t < T; t++) {
        token_ids[t] = t * 13 % 97;
        phase[t] = t % 5 != 0;
    }
    for (int i = 0; i < L * E; i++)
        bias[i] = 0.01f * (float)i;
    rs_trace_layout layout = {.num_layers = L, .num_experts = E, .logits = RS_LOGITS_F32, .topk_k = K,
                              .topk_weights = 1, .token_ids = 1, .phase = 1, .top_k = K, .norm_topk = 1,
                              .scoring = "softmax", .source = "fuzz seed"};
    rs_trace_writer *w = NULL;
    rs_error err = {{0}};
    must(rs_trace_writer_create(&w, path, &layout, &err), &err);
    must(rs_trace_writer_append(w, T, logits, ids, weights, token_ids, phase, &err), &err);
    int64_t ends[3] = {10, 25, T};
    must(rs_trace_writer_end_sequences(w, 3, ends, NULL, &err), &err);
    must(rs_trace_writer_set_bias(w, bias, &err), &err);
    must(rs_trace_writer_finish(w, &err), &err);
}

/* 12 queries over 3 models: scores, quality, per-query cost, 2 domains. */
static void write_query_trace(const char *path)
{
    enum { T = 12, E = 3 };
    float logits[T * E], quality[T * E], cost[T * E];
    for (int i = 0; i < T * E; i++) {
        logits[i] = (float)cos(i * 0.5);
        quality[i] = (float)((i * 7) % 3 == 0);
        cost[i] = 0.5f * (float)(i % E + 1);
    }
    quality[4] = NAN; /* not evaluated */
    static const char *const models[E] = {"small", "medium", "large"};
    static const char *const domains[2] = {"math", "code"};
    rs_trace_layout layout = {.num_layers = 1, .num_experts = E, .logits = RS_LOGITS_F32, .unit = "query",
                              .norm_topk = -1, .expert_names = models, .num_domains = 2, .domain_names = domains,
                              .outcome_quality = 1, .outcome_cost = RS_COST_PER_QUERY};
    rs_trace_writer *w = NULL;
    rs_error err = {{0}};
    must(rs_trace_writer_create(&w, path, &layout, &err), &err);
    must(rs_trace_writer_append(w, T, logits, NULL, NULL, NULL, NULL, &err), &err);
    must(rs_trace_writer_append_outcome(w, T, quality, cost, &err), &err);
    int64_t ends[T];
    int32_t labels[T];
    for (int t = 0; t < T; t++) {
        ends[t] = t + 1;
        labels[t] = t % 2;
    }
    must(rs_trace_writer_end_sequences(w, T, ends, labels, &err), &err);
    must(rs_trace_writer_finish(w, &err), &err);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    rs_fuzz_limit_file_size();
    snprintf(token_trace, sizeof token_trace, "%s", rs_fuzz_path("tokens.h5"));
    snprintf(query_trace, sizeof query_trace, "%s", rs_fuzz_path("queries.h5"));
    write_token_trace(token_trace);
    write_query_trace(query_trace);
    return 0;
}

/* A spec that parses must print as one that parses back the same. */
static void check_round_trip(const char *text)
{
    rs_router_spec spec, again;
    rs_error err = {{0}};
    if (rs_router_spec_parse(&spec, text, &err) != 0) {
        if (!err.msg[0] || strchr(err.msg, '\n'))
            rs_fuzz_fail("router spec '%s' refused without a one-line message: '%s'", text, err.msg);
        return;
    }
    if (!spec.label[0])
        rs_fuzz_fail("router spec '%s' has an empty label", text);
    char printed[4096], reprinted[4096];
    rs_router_spec_string(&spec, printed, sizeof printed);
    if (rs_router_spec_parse(&again, printed, &err) != 0)
        rs_fuzz_fail("router spec '%s' prints as '%s', which does not parse: %s", text, printed, err.msg);
    rs_router_spec_string(&again, reprinted, sizeof reprinted);
    if (strcmp(printed, reprinted) != 0)
        rs_fuzz_fail("router spec '%s' prints as '%s', which prints as '%s'", text, printed, reprinted);
    rs_router_spec_free(&again);
    rs_router_spec_free(&spec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!token_trace[0])
        LLVMFuzzerInitialize(NULL, NULL);
    if (size > 4096 || memchr(data, '/', size) || memchr(data, '\0', size))
        return 0;
    char *text = rs_fuzz_string(data, size);
    char *lines[4] = {NULL, NULL, NULL, NULL};
    char *at = text;
    for (int i = 0; i < 4 && at; i++) {
        lines[i] = at;
        at = strchr(at, '\n');
        if (at)
            *at++ = '\0';
    }
    check_round_trip(lines[0]);
    const char *decisions = rs_fuzz_path("decisions.h5");
    rs_route_request req = {
        .trace = lines[3] && strcmp(lines[3], "query") == 0 ? query_trace : token_trace,
        .router = lines[0],
        .metrics = lines[1] && lines[1][0] ? lines[1] : NULL,
        .reference = lines[2] && lines[2][0] ? lines[2] : NULL,
        .decisions = decisions,
        .threads = 1,
        .progress = 0,
    };
    rs_results results;
    rs_results_init(&results);
    rs_route_report report;
    rs_error err = {{0}};
    int rc = rs_route_run(&req, &results, &report, &err);
    int left = access(decisions, F_OK) == 0;
    rs_fuzz_note(rc ? "refused" : "routed", rc ? err.msg : req.router);
    if (rc != 0 && (!err.msg[0] || strchr(err.msg, '\n')))
        rs_fuzz_fail("route failed without a one-line message: '%s'", err.msg);
    if (rc != 0 && left)
        rs_fuzz_fail("route failed (%s) but left its decisions file", err.msg);
    if (rc == 0 && !left)
        rs_fuzz_fail("route succeeded without writing its decisions file");
    unlink(decisions);
    rs_results_free(&results);
    free(text);
    return 0;
}
