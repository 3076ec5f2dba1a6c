/* placement: hand-computed cases of every output (expected values worked
 * out in the comments from docs/metrics.md "Expert placement and
 * communication"), the dispatch rules, bad parameters, merges of parts
 * split inside a batch, and checkpoints restored mid-trace. Thread and
 * chunk invariance and the load-based statistics are in
 * check_placement_metric_runs.c. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/metric_sink.h"
#include "core/state_io.h"
#include "routesim/metric.h"
#include "tests/metrics/check_placement_metric.h"
#include "tests/test_util.h"

enum {
    OUT_IMBALANCE,
    OUT_BALANCEDNESS,
    OUT_A2A_SHARE,
    OUT_INTER_NODE_SHARE,
    OUT_A2A_BYTES,
    OUT_A2A_TIME,
    OUT_TRANSITIONS,
    OUT_EXPERT_MOVES,
    OUT_MIGRATION_BYTES,
    OUT_DEVICE_SHARE,
};

const rs_metric_type *rs_test_placement_family(void)
{
    const rs_metric_type *t = rs_metric_find("placement");
    ck_assert_ptr_nonnull(t);
    return t;
}

void *rs_test_placement_try(const rs_test_placement_shape *shape, const char *params, rs_error *err)
{
    static rs_trace_info info;
    info = (rs_trace_info){.path = "p.h5", .num_tokens = shape->T, .num_layers = shape->L,
                           .num_experts = shape->E, .unit = "token"};
    const rs_metric_type *t = rs_test_placement_family();
    rs_params p;
    ck_assert_int_eq(rs_params_init(&p, t->params, t->num_params, t->name, err), 0);
    if (params[0] && rs_params_parse_list(&p, params, err) != 0) {
        rs_params_free(&p);
        return NULL;
    }
    rs_metric_setup setup = {.trace = &info, .batch_tokens = shape->B, .kmax = shape->K, .counts = shape->counts};
    void *acc = NULL;
    int rc = t->create(&acc, &p, &setup, err);
    rs_params_free(&p);
    return rc == 0 ? acc : NULL;
}

void *rs_test_placement_make(const rs_test_placement_shape *shape, const char *params)
{
    rs_error err = {{0}};
    void *acc = rs_test_placement_try(shape, params, &err);
    ck_assert_msg(acc != NULL, "placement:%s: %s", params, err.msg);
    return acc;
}

void rs_test_placement_feed(const rs_test_placement_shape *shape, void *acc, const int32_t *ids, int64_t t0, int n)
{
    const int L = shape->L, E = shape->E, K = shape->K;
    float *z = calloc((size_t)n * L * E, sizeof *z);
    ck_assert_ptr_nonnull(z);
    rs_test_chunk tc;
    rs_test_chunk_init(&tc, t0, n, L, E, z);
    /* the sequences of the part, cut at its edges; offsets are the sequences' own */
    int lengths[64], count = 0, first = -1;
    int64_t starts[65];
    int64_t at = 0;
    for (int s = 0; s < shape->num_seq; s++) {
        const int64_t end = at + shape->seq_lengths[s];
        const int64_t a = at > t0 ? at : t0, b = end < t0 + n ? end : t0 + n;
        if (b > a) {
            ck_assert_int_lt(count, 64);
            first = first < 0 ? s : first;
            starts[count] = at;
            lengths[count++] = (int)(b - a);
        }
        at = end;
    }
    ck_assert_int_eq(at, shape->T);
    rs_test_chunk_sequences(&tc, lengths, count);
    for (int s = 0; s < count; s++)
        tc.seq_offsets[s] = starts[s];
    tc.seq_offsets[count] = starts[count - 1] + shape->seq_lengths[first + count - 1];
    tc.chunk.first_seq = first;
    const size_t row = (size_t)L * (size_t)K;
    rs_decisions d = {.kmax = K, .ids = (int32_t *)(ids + (size_t)t0 * row), .weights = calloc((size_t)n * row, 4)};
    ck_assert_ptr_nonnull(d.weights);
    const rs_metric_type *t = rs_test_placement_family();
    for (int l = 0; l < L; l++)
        t->update_layer(acc, &tc.chunk, l, &d, NULL);
    t->update_chunk(acc, &tc.chunk, &d, NULL);
    free(d.weights);
    rs_test_chunk_free(&tc);
    free(z);
}

void rs_test_placement_feed_chunks(const rs_test_placement_shape *shape, void *acc, const int32_t *ids, int64_t from,
                                   int64_t to, int chunk)
{
    for (int64_t t = from; t < to; t += chunk)
        rs_test_placement_feed(shape, acc, ids, t, (int)(to - t < chunk ? to - t : chunk));
}

static double value(void *acc, int output, int layer)
{
    rs_metric_sink sink = {0};
    rs_test_placement_family()->finalize(acc, &sink);
    double v = rs_metric_sink_value(&sink, output, layer, NULL);
    rs_metric_sink_free(&sink);
    return v;
}

#define CLOSE(acc, output, layer, want) ck_assert_double_eq_tol(value(acc, output, layer), (want), 1e-12)

/* Case 1, contiguous without replicas. E=4 on G=2 devices (experts 0,1 on
 * device 0, 2,3 on device 1), one node, source=token (tokens 0,2 on device
 * 0, tokens 1,3 on device 1), batches of 2, activations of 100 bytes,
 * NVLink at 1000 bytes/s, latency 0.1 s.
 *   layer 0: t0 {0,2}, t1 {1,3} | t2 {0,1}, t3 {2,-}
 *     batch 0: loads 2,2 (max/mean - 1 = 0); crossing: t0 e2, t1 e1; each
 *       device sends 1 and receives 1: 2 x 100 x 1 / 1000 = 0.2 s + 0.1
 *     batch 1: loads 2,1 (2 x 2/3 - 1 = 1/3); nothing crosses: 0.1 s
 *     imbalance (0 + 1/3)/2; balancedness (7/2) / (2 + 2); a2a 2/7; time 0.4
 *   layer 1: t0 {3,-}, t1 {0,1} | t2 {2,3}, t3 {1,2}
 *     batch 0: loads 2,1 (1/3); all 3 cross; device 0 sends 1 receives 2,
 *       device 1 sends 2 receives 1: 2 x 100 x 2 / 1000 + 0.1 = 0.5
 *     batch 1: loads 1,3 (3 x 2/4 - 1 = 1/2); 3 cross (t2 e2, e3; t3 e1);
 *       each device max 2: 0.5 s
 *     imbalance (1/3 + 1/2)/2; balancedness 3.5 / 5; a2a 6/7; time 1.0
 *   hops into layer 1: t0 device 1 was used (0 of 1); t1 devices 0 (0 of 2);
 *     t2 layer 0 only device 0, layer 1 device 1 twice (2 of 2); t3 layer 0
 *     device 1, layer 1 devices 0, 1 (1 of 2): 3/7
 *   layer=all: balancedness 7 / 9, a2a 8/14, hops 3/7, bytes 8 x 200. */
static const int32_t case1_ids[] = {0, 2, 3, -1, /* t0: layer 0, layer 1 */
                                    1, 3, 0, 1,  /* t1 */
                                    0, 1, 2, 3,  /* t2 */
                                    2, -1, 1, 2}; /* t3 */

START_TEST(contiguous_by_hand)
{
    const int lengths[] = {4};
    rs_test_placement_shape s = {.T = 4, .L = 2, .E = 4, .K = 2, .B = 2, .seq_lengths = lengths, .num_seq = 1};
    void *acc = rs_test_placement_make(
        &s, "devices=2,source=token,hidden_size=100,bytes_per_element=1,nvlink_gbps=1e-6,latency_us=1e5");
    rs_test_placement_feed(&s, acc, case1_ids, 0, 4);
    CLOSE(acc, OUT_IMBALANCE, 0, (0.0 + 1.0 / 3) / 2);
    CLOSE(acc, OUT_IMBALANCE, 1, (1.0 / 3 + 0.5) / 2);
    CLOSE(acc, OUT_BALANCEDNESS, 0, 3.5 / 4);
    CLOSE(acc, OUT_BALANCEDNESS, 1, 3.5 / 5);
    CLOSE(acc, OUT_BALANCEDNESS, -1, 7.0 / 9);
    CLOSE(acc, OUT_A2A_SHARE, 0, 2.0 / 7);
    CLOSE(acc, OUT_A2A_SHARE, 1, 6.0 / 7);
    CLOSE(acc, OUT_A2A_SHARE, -1, 8.0 / 14);
    CLOSE(acc, OUT_INTER_NODE_SHARE, -1, 0.0);
    CLOSE(acc, OUT_A2A_BYTES, 0, 400.0);
    CLOSE(acc, OUT_A2A_BYTES, 1, 1200.0);
    CLOSE(acc, OUT_A2A_TIME, 0, 0.4);
    CLOSE(acc, OUT_A2A_TIME, 1, 1.0);
    ck_assert(isnan(value(acc, OUT_TRANSITIONS, 0))); /* not reported at layer 0 */
    CLOSE(acc, OUT_TRANSITIONS, 1, 3.0 / 7);
    CLOSE(acc, OUT_TRANSITIONS, -1, 3.0 / 7);
    CLOSE(acc, OUT_EXPERT_MOVES, 0, 0.0);
    CLOSE(acc, OUT_MIGRATION_BYTES, 1, 0.0);
    rs_test_placement_family()->destroy(acc);
}
END_TEST

/* source=sequence: sequences of 3 and 1 tokens put t0..t2 on device 0 and
 * t3 on device 1. Layer 0 then crosses at t0 e2 and t1 e3 (t3's e2 is on
 * its own device 1): 2/7; layer 1 at t0 e3, t2 e2, e3 and t3 e1: 4/7.
 * device_share of layer 0: device 0 serves t1 e1, t0 e0, t2 e0, e1 (4/7),
 * device 1 the other 3. */
START_TEST(sequence_source_and_device_shares)
{
    const int lengths[] = {3, 1};
    rs_test_placement_shape s = {.T = 4, .L = 2, .E = 4, .K = 2, .B = 2, .seq_lengths = lengths, .num_seq = 2};
    void *acc = rs_test_placement_make(&s, "devices=2,per_device=1");
    rs_test_placement_feed(&s, acc, case1_ids, 0, 4);
    CLOSE(acc, OUT_A2A_SHARE, 0, 2.0 / 7);
    CLOSE(acc, OUT_A2A_SHARE, 1, 4.0 / 7);
    rs_metric_sink sink = {0};
    rs_test_placement_family()->finalize(acc, &sink);
    ck_assert_double_eq_tol(rs_metric_sink_value(&sink, OUT_DEVICE_SHARE, 0, "device=0"), 4.0 / 7, 1e-15);
    ck_assert_double_eq_tol(rs_metric_sink_value(&sink, OUT_DEVICE_SHARE, 0, "device=1"), 3.0 / 7, 1e-15);
    rs_metric_sink_free(&sink);
    rs_test_placement_family()->destroy(acc);
}
END_TEST

/* Case 2, replicas. E=6, replicas=2, G=4, N=2, contiguous: slots
 * e0 e1 | e2 e3 | e4 e5 | e0 e1, so devices 0 {0,1}, 1 {2,3}, 2 {4,5},
 * 3 {0,1}; nodes {0,1}, {2,3}; experts 0 and 1 have replicas on devices 0
 * (rank 0) and 3 (rank 1). One layer, k=2, one batch of 4 tokens,
 * source=token (token t on device t), rows t0 {0,2}, t1 {0,1}, t2 {1,4},
 * t3 {0,5}. Activations 100 bytes, NVLink 1000 B/s, network 500 B/s.
 *   local: t0 e0 on 0; t1 (node 0) e0, e1 on 0; t2 (node 1) e1 on 3;
 *     t3 e0 on 3. Loads 3,1,2,2: 3 x 4/8 - 1 = 1/2; crossing t0 e2, t1 e0,
 *     e1, t2 e1, t3 e5: 5/8, none across nodes.
 *   round_robin: rank = position (2 t + j) mod 2, positions of the
 *     replicated experts 0, 2, 3, 4, 6:
 *     t0 e0 p0 -> 0; t1 e0 p2 -> 0, e1 p3 -> 3; t2 e1 p4 -> 0; t3 e0 p6 -> 0.
 *     Loads 4,1,2,1: 4 x 4/8 - 1 = 1; crossing t0 e2, t1 e0, e1, t2 e1,
 *     t3 e0, e5: 6/8; across nodes t1 e1, t2 e1, t3 e0: 3/8. Traffic:
 *     device 0 intra 1/1, inter 0/2 -> 200/1000 + 2 x 200/500 = 1.0 s
 *     (the others 0.6 s).
 *   balanced: t0 e0: 0 vs 0 -> device 0; t1 e0: 1 vs 0 -> 3; e1: 1 vs 1 ->
 *     0 (lower rank); t2 e1: 2 vs 1 -> 3; t3 e0: 2 vs 2 -> 0. Loads
 *     3,1,2,2: 1/2; crossing t0 e2, t1 e0, e1, t2 e1, t3 e0, e5: 6/8;
 *     across nodes t1 e0, t3 e0: 2/8. */
static const int32_t case2_ids[] = {0, 2, 0, 1, 1, 4, 0, 5};

static void check_dispatch(const char *rule, double imbalance, double a2a, double inter, double seconds)
{
    const int lengths[] = {4};
    rs_test_placement_shape s = {.T = 4, .L = 1, .E = 6, .K = 2, .B = 4, .seq_lengths = lengths, .num_seq = 1};
    char params[256];
    snprintf(params, sizeof params,
             "devices=4,nodes=2,replicas=2,source=token,dispatch=%s,hidden_size=100,bytes_per_element=1,"
             "nvlink_gbps=1e-6,net_gbps=5e-7",
             rule);
    void *acc = rs_test_placement_make(&s, params);
    rs_test_placement_feed(&s, acc, case2_ids, 0, 4);
    CLOSE(acc, OUT_IMBALANCE, 0, imbalance);
    CLOSE(acc, OUT_A2A_SHARE, 0, a2a);
    CLOSE(acc, OUT_INTER_NODE_SHARE, 0, inter);
    if (seconds >= 0)
        CLOSE(acc, OUT_A2A_TIME, 0, seconds);
    rs_test_placement_family()->destroy(acc);
}

START_TEST(replica_dispatch_by_hand)
{
    check_dispatch("local", 0.5, 5.0 / 8, 0.0, -1);
    check_dispatch("round_robin", 1.0, 6.0 / 8, 3.0 / 8, 1.0);
    check_dispatch("balanced", 0.5, 6.0 / 8, 2.0 / 8, -1);
    /* every node holds a replica of e0 and e1: nearest is local here */
    check_dispatch("nearest", 0.5, 5.0 / 8, 0.0, -1);
}
END_TEST

/* local without a replica in the node: E=4, replicas=2, G=3, N=3 (a node
 * per device): slots e0 e1 | e2 e3 | e0 e1. A token of device 1 asking for
 * e0 goes to rank 1 mod 2 = 1, device 2, across nodes; device 0's and 2's
 * tokens stay home. Rows t0 {1}, t1 {0}, t2 {0}: loads 1,0,2 (2 x 3/3 - 1
 * = 1), 1/3 across nodes. */
START_TEST(local_dispatch_outside_the_node)
{
    const int lengths[] = {3};
    rs_test_placement_shape s = {.T = 3, .L = 1, .E = 4, .K = 1, .B = 3, .seq_lengths = lengths, .num_seq = 1};
    const int32_t ids[] = {1, 0, 0};
    void *acc = rs_test_placement_make(&s, "devices=3,nodes=3,replicas=2,source=token");
    rs_test_placement_feed(&s, acc, ids, 0, 3);
    CLOSE(acc, OUT_IMBALANCE, 0, 1.0);
    CLOSE(acc, OUT_INTER_NODE_SHARE, 0, 1.0 / 3);
    CLOSE(acc, OUT_A2A_SHARE, 0, 1.0 / 3);
    rs_test_placement_family()->destroy(acc);
}
END_TEST

/* Where the node has no replica, nearest takes the least-loaded one in the
 * batch and local the rank: the layout above, rows t0 {2}, t1 {0}, t2 {0}.
 * t0 (device 0) is served on device 1. t1 (device 1, no e0 in its node):
 * local takes rank 1, device 2; nearest the lighter of devices 0 and 2 (0
 * and 0: the lower rank, device 0). t2 stays on device 2. Loads: local
 * 0,1,2 (imbalance 1), nearest 1,1,1 (0); both send t0 and t1 across nodes. */
START_TEST(nearest_dispatch_outside_the_node)
{
    const int lengths[] = {3};
    rs_test_placement_shape s = {.T = 3, .L = 1, .E = 4, .K = 1, .B = 3, .seq_lengths = lengths, .num_seq = 1};
    const int32_t ids[] = {2, 0, 0};
    static const struct {
        const char *rule;
        double imbalance;
    } rules[] = {{"local", 1.0}, {"nearest", 0.0}};
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
        char params[128];
        snprintf(params, sizeof params, "devices=3,nodes=3,replicas=2,source=token,dispatch=%s", rules[i].rule);
        void *acc = rs_test_placement_make(&s, params);
        rs_test_placement_feed(&s, acc, ids, 0, 3);
        CLOSE(acc, OUT_IMBALANCE, 0, rules[i].imbalance);
        CLOSE(acc, OUT_INTER_NODE_SHARE, 0, 2.0 / 3);
        CLOSE(acc, OUT_A2A_SHARE, 0, 2.0 / 3);
        rs_test_placement_family()->destroy(acc);
    }
}
END_TEST

/* round_robin places expert e on device e mod G: with E=4, G=2 experts 0,
 * 2 on device 0 and 1, 3 on device 1. Case 1's layer 0 from device 0's
 * tokens (source=sequence, one sequence): t0 e2 local, t1 e1, e3 cross,
 * t2 e1 cross, t3 e2 local: 3/7. Padding, a not-observed row and a row of
 * -1 count nothing. */
START_TEST(round_robin_policy_and_missing_rows)
{
    const int lengths[] = {6};
    rs_test_placement_shape s = {.T = 6, .L = 1, .E = 4, .K = 2, .B = 8, .seq_lengths = lengths, .num_seq = 1};
    const int32_t ids[] = {0, 2, 1, 3, 0, 1, 2, -1, RS_ID_UNOBSERVED, -1, -1, -1};
    void *acc = rs_test_placement_make(&s, "devices=2,policy=round_robin");
    rs_test_placement_feed(&s, acc, ids, 0, 6);
    CLOSE(acc, OUT_A2A_SHARE, 0, 3.0 / 7);
    /* loads: device 0 e0, e2, e0, e2 = 4; device 1 e1, e3, e1 = 3 */
    CLOSE(acc, OUT_IMBALANCE, 0, 4.0 * 2 / 7 - 1);
    rs_test_placement_family()->destroy(acc);
}
END_TEST

static void expect_error(const rs_test_placement_shape *s, const char *params, const char *needle)
{
    rs_error err = {{0}};
    void *acc = rs_test_placement_try(s, params, &err);
    ck_assert_msg(acc == NULL, "placement:%s was accepted", params);
    ck_assert_msg(strstr(err.msg, needle) != NULL, "placement:%s: message '%s' lacks '%s'", params, err.msg, needle);
    ck_assert_msg(strchr(err.msg, '\n') == NULL, "a message of more than one line: %s", err.msg);
}

static const char *write_file(const char *name, const char *text)
{
    const char *path = rs_test_path(name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    return path;
}

START_TEST(bad_parameters)
{
    const int lengths[] = {4};
    rs_test_placement_shape s = {.T = 4, .L = 2, .E = 4, .K = 2, .B = 2, .seq_lengths = lengths, .num_seq = 1};
    expect_error(&s, "devices=3", "devices=3 must divide the slots (4 experts + replicas=0 = 4)");
    expect_error(&s, "devices=2,replicas=1", "devices=2 must divide the slots");
    expect_error(&s, "devices=4,nodes=3", "nodes=3 must divide devices=4");
    expect_error(&s, "devices=2,groups=3", "groups=3 must divide");
    expect_error(&s, "devices=2,policy=nope", "no placement policy 'nope' (registered: contiguous, round_robin");
    expect_error(&s, "devices=2,stats=history,rebalance_every=4,window=3", "window=3 must be a multiple of "
                                                                          "batch_tokens=2");
    expect_error(&s, "devices=2,stats=history,rebalance_every=3", "rebalance_every=3 must be a multiple");
    expect_error(&s, "devices=2,stats=history", "stats=history needs rebalance_every");
    expect_error(&s, "devices=2,stats=split,train_tokens=3", "train_tokens=3 must be a multiple");
    expect_error(&s, "devices=2,stats=split", "stats=split needs train_tokens");
    expect_error(&s, "devices=2,policy=eplb,stats=history,rebalance_every=2,window=2000000000000",
                 "window=2000000000000 tokens (expert loads per batch) takes");
    expect_error(&s, "devices=2,window=4", "window and rebalance_every apply to stats=history");
    expect_error(&s, "devices=2,train_tokens=4", "train_tokens applies to stats=split");
    expect_error(&s, "devices=2,policy=eplb", "from the whole run's loads, which the engine counts in a first pass");
    expect_error(&s, "devices=2,policy=eplb,stats=oracle", "which the engine counts in a first pass");
    char params[1200];
    const char *negative = write_file("negative.csv", "1,2,3,4\n1,-2,3,4\n");
    snprintf(params, sizeof params, "devices=2,stats=oracle,loads=%s", negative);
    expect_error(&s, params, "negative.csv");
    const char *short_rows = write_file("short.csv", "1,2,3,4\n");
    snprintf(params, sizeof params, "devices=2,loads=%s", short_rows);
    expect_error(&s, params, "loads of 1 layers x 4 experts, but the trace has 2 layers x 4 experts");
    snprintf(params, sizeof params, "devices=2,stats=history,rebalance_every=2,loads=%s", short_rows);
    expect_error(&s, params, "loads=FILE is what stats=oracle plans from");
    /* a loads file of the right shape is read (and unused by a load-agnostic policy) */
    snprintf(params, sizeof params, "devices=2,loads=%s", write_file("good.csv", "1,2,3,4\n0,0,0,1\n"));
    rs_error err = {{0}};
    void *acc = rs_test_placement_try(&s, params, &err);
    ck_assert_msg(acc != NULL, "%s", err.msg);
    rs_test_placement_family()->destroy(acc);
}
END_TEST

/* policy=file reads a placement (file=PATH or policy=file:PATH): a file of
 * contiguous's map gives contiguous's values; swapping the two devices'
 * experts turns case 1's layer-0 crossings (t0 e2, t1 e1 of 7) into the
 * other 5. */
START_TEST(file_policy)
{
    const int lengths[] = {4};
    rs_test_placement_shape s = {.T = 4, .L = 2, .E = 4, .K = 2, .B = 2, .seq_lengths = lengths, .num_seq = 1};
    const char *same = write_file("same.json", "{\"physical_to_logical_map\": [[0, 1, 2, 3], [0, 1, 2, 3]]}");
    const char *swapped = write_file("swapped.json", "{\"physical_to_logical_map\": [[2, 3, 0, 1], [0, 1, 2, 3]]}");
    char params[1200];
    void *want = rs_test_placement_make(&s, "devices=2,source=token");
    snprintf(params, sizeof params, "devices=2,source=token,policy=file,file=%s", same);
    void *got = rs_test_placement_make(&s, params);
    rs_test_placement_feed(&s, want, case1_ids, 0, 4);
    rs_test_placement_feed(&s, got, case1_ids, 0, 4);
    rs_test_same_rows(rs_test_placement_family(), want, got, "policy=file with contiguous's map");
    rs_test_placement_family()->destroy(got);
    snprintf(params, sizeof params, "devices=2,source=token,policy=file:%s", swapped);
    got = rs_test_placement_make(&s, params);
    rs_test_placement_feed(&s, got, case1_ids, 0, 4);
    CLOSE(got, OUT_A2A_SHARE, 0, 5.0 / 7);
    CLOSE(got, OUT_A2A_SHARE, 1, 6.0 / 7);
    rs_test_placement_family()->destroy(got);
    rs_test_placement_family()->destroy(want);
}
END_TEST

/* Merges: parts split inside a batch (the batch's loads add up before its
 * value is taken) equal the whole, bit for bit, also when the second part
 * is compacted; order-dependent modes refuse with a reason. */
static const int merge_lengths[] = {13, 20, 7, 24};

static int32_t *random_ids(int T, int L, int E, int K, unsigned seed)
{
    int32_t *ids = malloc((size_t)T * L * K * sizeof *ids);
    ck_assert_ptr_nonnull(ids);
    unsigned x = seed;
    for (int r = 0; r < T * L; r++) {
        for (int j = 0; j < K; j++) {
            int e;
            int repeat;
            do { /* distinct experts in a row, a skewed choice */
                x = x * 1103515245u + 12345u;
                e = (int)((x >> 16) % (unsigned)(E + E / 2));
                e = e >= E ? e - E : e;
                repeat = 0;
                for (int i = 0; i < j; i++)
                    repeat |= ids[r * K + i] == e;
            } while (repeat);
            ids[r * K + j] = e;
        }
        if (r % 13 == 5)
            ids[r * K + K - 1] = -1;
    }
    return ids;
}

int32_t *rs_test_placement_random_ids(int T, int L, int E, int K, unsigned seed)
{
    return random_ids(T, L, E, K, seed);
}

static void check_merge(const char *params, int split)
{
    const rs_metric_type *t = rs_test_placement_family();
    rs_test_placement_shape s = {.T = 64, .L = 3, .E = 8, .K = 2, .B = 6, .seq_lengths = merge_lengths,
                                 .num_seq = 4};
    int32_t *ids = random_ids(64, 3, 8, 2, 7);
    void *whole = rs_test_placement_make(&s, params);
    rs_test_placement_feed(&s, whole, ids, 0, 64);
    for (int compact = 0; compact < 2; compact++) {
        void *a = rs_test_placement_make(&s, params), *b = rs_test_placement_make(&s, params);
        rs_test_placement_feed(&s, a, ids, 0, split);
        rs_test_placement_feed(&s, b, ids, split, 64 - split);
        if (compact)
            t->compact(b);
        rs_error err = {{0}};
        ck_assert_msg(t->merge(a, b, &err) == 0, "%s: %s", params, err.msg);
        char what[300];
        snprintf(what, sizeof what, "placement:%s split at %d%s", params, split, compact ? " compacted" : "");
        rs_test_same_rows(t, whole, a, what);
        t->destroy(a);
        t->destroy(b);
    }
    t->destroy(whole);
    free(ids);
}

START_TEST(merged_parts_equal_the_whole)
{
    static const char *const variants[] = {
        "devices=4",
        "devices=4,nodes=2,replicas=4,dispatch=round_robin,source=token,per_device=1",
        "devices=2,replicas=6,dispatch=local,nodes=2,policy=round_robin,latency_us=3",
    };
    for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++) {
        check_merge(variants[v], 13); /* a sequence boundary inside batch 2 */
        check_merge(variants[v], 33);
        check_merge(variants[v], 40);
    }
}
END_TEST

START_TEST(order_dependent_modes_refuse_to_merge)
{
    const rs_metric_type *t = rs_test_placement_family();
    rs_test_placement_shape s = {.T = 64, .L = 3, .E = 8, .K = 2, .B = 6, .seq_lengths = merge_lengths,
                                 .num_seq = 4};
    void *a = rs_test_placement_make(&s, "devices=4,replicas=4,dispatch=balanced");
    void *b = rs_test_placement_make(&s, "devices=4,replicas=4,dispatch=balanced");
    rs_error err = {{0}};
    ck_assert_int_ne(t->merge(a, b, &err), 0);
    ck_assert_msg(strstr(err.msg, "dispatch=balanced") != NULL, "%s", err.msg);
    t->destroy(a);
    t->destroy(b);
    a = rs_test_placement_make(&s, "devices=4,nodes=2,replicas=4,dispatch=nearest");
    b = rs_test_placement_make(&s, "devices=4,nodes=2,replicas=4,dispatch=nearest");
    ck_assert_int_ne(t->merge(a, b, &err), 0);
    ck_assert_msg(strstr(err.msg, "dispatch=nearest") != NULL, "%s", err.msg);
    t->destroy(a);
    t->destroy(b);
    /* without replicas there is nothing to choose: balanced merges */
    a = rs_test_placement_make(&s, "devices=4,dispatch=balanced");
    b = rs_test_placement_make(&s, "devices=4,dispatch=balanced");
    ck_assert_int_eq(t->merge(a, b, &err), 0);
    t->destroy(a);
    t->destroy(b);
}
END_TEST

/* Saves acc into a temporary file and restores it into a fresh accumulator. */
void *rs_test_placement_resume(const rs_test_placement_shape *s, const char *params, void *acc)
{
    const rs_metric_type *t = rs_test_placement_family();
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    rs_state_io io;
    rs_state_io_start(&io, f, 0);
    t->checkpoint(acc, &io);
    ck_assert(!io.failed);
    const uint64_t written = io.bytes;
    rewind(f);
    void *back = rs_test_placement_make(s, params);
    rs_state_io_start(&io, f, 1);
    t->checkpoint(back, &io);
    ck_assert(!io.failed);
    ck_assert_uint_eq(io.bytes, written);
    fclose(f);
    return back;
}

/* A pass stopped after any chunk and resumed from the saved state gives the
 * uninterrupted pass's values, bit for bit. */
void rs_test_placement_check_resume(const char *params, int B)
{
    const rs_metric_type *t = rs_test_placement_family();
    rs_test_placement_shape s = {.T = 64, .L = 3, .E = 8, .K = 2, .B = B, .seq_lengths = merge_lengths,
                                 .num_seq = 4};
    int32_t *ids = random_ids(64, 3, 8, 2, 11);
    void *whole = rs_test_placement_make(&s, params);
    rs_test_placement_feed_chunks(&s, whole, ids, 0, 64, 7);
    for (int stop = 5; stop < 64; stop += 9) {
        void *part = rs_test_placement_make(&s, params);
        rs_test_placement_feed_chunks(&s, part, ids, 0, stop, 7);
        void *resumed = rs_test_placement_resume(&s, params, part);
        t->destroy(part);
        rs_test_placement_feed_chunks(&s, resumed, ids, stop, 64, 5);
        char what[300];
        snprintf(what, sizeof what, "placement:%s resumed at %d", params, stop);
        rs_test_same_rows(t, whole, resumed, what);
        t->destroy(resumed);
    }
    t->destroy(whole);
    free(ids);
}

START_TEST(resumes_bit_for_bit)
{
    rs_test_placement_check_resume("devices=4", 6);
    rs_test_placement_check_resume("devices=4,nodes=2,replicas=4,dispatch=balanced,per_device=1", 6);
    rs_test_placement_check_resume("devices=2,replicas=2,dispatch=round_robin,source=token", 4);
}
END_TEST

/* A compacted accumulator saves and restores what merge reads. */
START_TEST(compacted_accumulators_resume)
{
    const rs_metric_type *t = rs_test_placement_family();
    const char *params = "devices=4,replicas=4,nodes=2";
    rs_test_placement_shape s = {.T = 64, .L = 3, .E = 8, .K = 2, .B = 6, .seq_lengths = merge_lengths,
                                 .num_seq = 4};
    int32_t *ids = random_ids(64, 3, 8, 2, 3);
    void *whole = rs_test_placement_make(&s, params), *a = rs_test_placement_make(&s, params);
    void *b = rs_test_placement_make(&s, params);
    rs_test_placement_feed(&s, whole, ids, 0, 64);
    rs_test_placement_feed(&s, a, ids, 0, 33);
    rs_test_placement_feed(&s, b, ids, 33, 31);
    t->compact(b);
    void *back = rs_test_placement_resume(&s, params, b);
    rs_error err = {{0}};
    ck_assert_msg(t->merge(a, back, &err) == 0, "%s", err.msg);
    rs_test_same_rows(t, whole, a, "compacted, saved and restored");
    t->destroy(whole);
    t->destroy(a);
    t->destroy(b);
    t->destroy(back);
    free(ids);
}
END_TEST

Suite *placement_metric_suite(void)
{
    Suite *s = suite_create("placement_metric");
    TCase *tc = tcase_create("placement_metric");
    tcase_add_test(tc, contiguous_by_hand);
    tcase_add_test(tc, sequence_source_and_device_shares);
    tcase_add_test(tc, replica_dispatch_by_hand);
    tcase_add_test(tc, local_dispatch_outside_the_node);
    tcase_add_test(tc, nearest_dispatch_outside_the_node);
    tcase_add_test(tc, round_robin_policy_and_missing_rows);
    tcase_add_test(tc, bad_parameters);
    tcase_add_test(tc, file_policy);
    tcase_add_test(tc, merged_parts_equal_the_whole);
    tcase_add_test(tc, order_dependent_modes_refuse_to_merge);
    tcase_add_test(tc, resumes_bit_for_bit);
    tcase_add_test(tc, compacted_accumulators_resume);
    suite_add_tcase(s, tc);
    return s;
}
