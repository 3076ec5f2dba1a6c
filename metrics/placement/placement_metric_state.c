/* The placement metric's state: its parameters and their checks, the
 * placement in force and how it is (re)planned, the load statistics it is
 * planned from, compacting and checkpoints. Measuring is placement_metric.c. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/placement/loads_file.h"
#include "metrics/placement/placement_metric_internal.h"

/* Defaults of the parameters left out of result keys unless given. */
#define DEFAULT_HIDDEN_SIZE 7168         /* DeepSeek-V3 */
#define DEFAULT_BYTES_PER_ELEMENT 2.0    /* bf16 activations */
#define DEFAULT_NVLINK_GBPS 160.0        /* H800 NVLink, DeepEP's figure */
#define DEFAULT_NET_GBPS 50.0            /* a 400 Gb/s InfiniBand NIC per GPU, DeepEP's figure */
#define DEFAULT_EXPERT_BYTES 44040192.0  /* a DeepSeek-V3 routed expert in FP8: 3 x 7168 x 2048 */
/* The load history (L E counts per batch, (L-1) E^2 more for policies that plan from transitions) may hold
 * this much. */
#define MAX_HISTORY_BYTES ((double)(1u << 30))

const rs_param_def rs_placement_metric_params[PLACEMENT_NUM_PARAMS] = {
    [PARAM_POLICY] = {"policy", RS_PARAM_STRING, "contiguous", 0, 0, NULL,
                      "placement policy (a registered one: contiguous, round_robin, eplb, file, ...); file:PATH "
                      "for file=PATH"},
    [PARAM_FILE] = {"file", RS_PARAM_STRING, NULL, 0, 0, NULL,
                    "policy=file: the placement JSON (physical_to_logical_map, as `routesim place` writes it)"},
    [PARAM_LOADS] = {"loads", RS_PARAM_STRING, NULL, 0, 0, NULL,
                     "stats=oracle: plan from these expert loads (JSON logical_count [L][E], or CSV layers x "
                     "experts) instead of the run's own"},
    [PARAM_DEVICES] = {"devices", RS_PARAM_INT, "8", 1, 4096, NULL,
                       "devices G (expert-parallel ranks), dividing the slots E + replicas"},
    [PARAM_NODES] = {"nodes", RS_PARAM_INT, NULL, 1, 4096, NULL, "nodes N, dividing devices (unset: 1)"},
    [PARAM_GROUPS] = {"groups", RS_PARAM_INT, NULL, 1, 65536, NULL,
                      "expert groups, dividing E (eplb packs them by node when nodes divide them) (unset: 1)"},
    [PARAM_REPLICAS] = {"replicas", RS_PARAM_INT, NULL, 0, 65536, NULL,
                        "redundant slots R: E + R slots per layer (unset: 0)"},
    [PARAM_STATS] = {"stats", RS_PARAM_ENUM, NULL, 0, 0, "oracle|history|split",
                     "what load-based policies plan from: the whole run (counted in a first pass, or loads=FILE), "
                     "the last `window` tokens, or the first train_tokens (unset: oracle)"},
    [PARAM_WINDOW] = {"window", RS_PARAM_INT, NULL, 1, 9007199254740991.0, NULL,
                      "stats=history: tokens of load history, a multiple of batch_tokens (unset: rebalance_every)"},
    [PARAM_REBALANCE_EVERY] = {"rebalance_every", RS_PARAM_INT, NULL, 1, 9007199254740991.0, NULL,
                               "stats=history: tokens between replans, a multiple of batch_tokens"},
    [PARAM_TRAIN_TOKENS] = {"train_tokens", RS_PARAM_INT, NULL, 1, 9007199254740991.0, NULL,
                            "stats=split: first tokens, planned on and not measured, a multiple of batch_tokens"},
    [PARAM_SOURCE] = {"source", RS_PARAM_ENUM, NULL, 0, 0, "sequence|token",
                      "a token's device: its sequence s mod G (data-parallel attention) or its index t mod G "
                      "(unset: sequence)"},
    [PARAM_DISPATCH] = {"dispatch", RS_PARAM_ENUM, NULL, 0, 0, "local|round_robin|balanced|nearest",
                        "replica serving a replicated expert: on the device, in the node, else by rank (local); by "
                        "position in the batch; least loaded in the batch; on the device, in the node, else least "
                        "loaded (nearest) (unset: local)"},
    [PARAM_HIDDEN_SIZE] = {"hidden_size", RS_PARAM_INT, NULL, 1, 1e9, NULL,
                           "elements of a token's activation (unset: 7168, DeepSeek-V3)"},
    [PARAM_BYTES_PER_ELEMENT] = {"bytes_per_element", RS_PARAM_FLOAT, NULL, 1e-3, 64, NULL,
                                 "bytes per activation element (unset: 2, bf16)"},
    [PARAM_NVLINK_GBPS] = {"nvlink_gbps", RS_PARAM_FLOAT, NULL, 1e-9, 1e9, NULL,
                           "intra-node bandwidth per device and direction, GB/s (unset: 160, H800 NVLink)"},
    [PARAM_NET_GBPS] = {"net_gbps", RS_PARAM_FLOAT, NULL, 1e-9, 1e9, NULL,
                        "inter-node bandwidth per device and direction, GB/s (unset: 50, 400 Gb/s InfiniBand)"},
    [PARAM_LATENCY_US] = {"latency_us", RS_PARAM_FLOAT, NULL, 0, 1e12, NULL,
                          "fixed all-to-all cost per batch and layer, microseconds (unset: 0)"},
    [PARAM_EXPERT_BYTES] = {"expert_bytes", RS_PARAM_FLOAT, NULL, 0, 1e15, NULL,
                            "bytes moved per expert move (unset: 44040192, a DeepSeek-V3 expert in FP8)"},
    [PARAM_PER_DEVICE] = {"per_device", RS_PARAM_BOOL, NULL, 0, 1, NULL,
                          "also report device_share, each device's share of its layer's assignments (unset: 0)"},
    [PARAM_BALANCE_SLACK] = {"balance_slack", RS_PARAM_FLOAT, NULL, 0, 1e6, NULL,
                             "policies search and affinity: device loads may exceed eplb's largest by this share "
                             "(unset: 0)"},
    [PARAM_ITERATIONS] = {"iterations", RS_PARAM_INT, NULL, 1, 1e12, NULL,
                          "policy search: moves priced per layer and plan at most (unset: 20000)"},
    [PARAM_SEED] = {"seed", RS_PARAM_INT, NULL, 0, 9007199254740991.0, NULL,
                    "policy search: seed of the order moves are tried in (unset: 0)"},
};

static long long int_or(const rs_params *p, const char *name, long long unset)
{
    return rs_param_is_set(p, name) ? rs_param_int(p, name) : unset;
}

static double float_or(const rs_params *p, const char *name, double unset)
{
    return rs_param_is_set(p, name) ? rs_param_float(p, name) : unset;
}

static const char *str_or(const rs_params *p, const char *name, const char *unset)
{
    return rs_param_is_set(p, name) ? rs_param_str(p, name) : unset;
}

void rs_placement_acc_destroy(void *p)
{
    placement_acc *a = p;
    if (!a)
        return;
    for (int i = 0; i < PLACEMENT_OPEN_BATCHES; i++) {
        free(a->open[i].load);
        free(a->open[i].traffic);
    }
    rs_placement_free(a->place);
    rs_dispatch_free(&a->dispatch);
    free(a->path);
    free(a->sums);
    free(a->device_load);
    free(a->stat_loads);
    free(a->stat_transitions);
    free(a->batch_loads);
    free(a->batch_transitions);
    free(a->ring);
    free(a->transition_ring);
    free(a->node_of);
    free(a->comm);
    free(a->row_devices);
    free(a->plan_loads);
    free(a->plan_transitions);
    free(a);
}

/* "contiguous, round_robin" */
static void policy_names(char *buf, size_t size)
{
    buf[0] = '\0';
    for (int i = 0; i < rs_placement_policy_count(); i++) {
        size_t used = strlen(buf);
        snprintf(buf + used, size - used, "%s%s", i ? ", " : "", rs_placement_policy_at(i)->name);
    }
}

/* The policy `policy` names ("file:PATH" is policy file with file=PATH),
 * or NULL; *path gets the file it names, if any. */
static const rs_placement_policy *policy_named(const rs_params *params, const char **path)
{
    const char *name = rs_param_str(params, "policy");
    *path = rs_param_is_set(params, "file") ? rs_param_str(params, "file") : NULL;
    if (strncmp(name, "file:", 5) == 0) {
        *path = name + 5;
        return rs_placement_policy_find("file");
    }
    return rs_placement_policy_find(name);
}

/* Plans from loads (or transitions): eplb, affinity, search. */
static int load_based(const rs_placement_policy *p)
{
    return (p->needs & (RS_PLACEMENT_NEEDS_LOADS | RS_PLACEMENT_NEEDS_TRANSITIONS)) != 0;
}

/* stats=oracle without loads=FILE: the engine counts the run first. */
unsigned rs_placement_acc_needs_counts(const rs_params *params)
{
    const char *path;
    const rs_placement_policy *p = policy_named(params, &path);
    const char *stats = rs_param_is_set(params, "stats") ? rs_param_str(params, "stats") : "oracle";
    if (!p || !load_based(p) || strcmp(stats, "oracle") != 0 || rs_param_is_set(params, "loads"))
        return 0;
    return RS_COUNTS_LOADS | ((p->needs & RS_PLACEMENT_NEEDS_TRANSITIONS) ? RS_COUNTS_TRANSITIONS : 0);
}

/* The parameters against each other and the trace; fills a's settings. */
static int read_params(placement_acc *a, const rs_params *params, rs_error *err)
{
    const char *name = rs_param_str(params, "policy"), *path = NULL;
    a->policy = policy_named(params, &path);
    if (!a->policy) {
        char known[512];
        policy_names(known, sizeof known);
        return rs_fail(err, "metric placement: no placement policy '%s' (registered: %s)", name, known);
    }
    if (path && !(a->path = strdup(path)))
        return rs_fail(err, "metric placement: out of memory");
    const int planned_from_loads = load_based(a->policy);
    a->needs_transitions = (a->policy->needs & RS_PLACEMENT_NEEDS_TRANSITIONS) && a->L > 1;
    const long long G = rs_param_int(params, "devices"), N = int_or(params, "nodes", 1);
    const long long groups = int_or(params, "groups", 1), R = int_or(params, "replicas", 0);
    const long long S = (long long)a->E + R;
    RS_CHECK(S % G == 0, err,
             "metric placement: devices=%lld must divide the slots (%d experts + replicas=%lld = %lld)", G, a->E, R, S);
    RS_CHECK(G % N == 0, err, "metric placement: nodes=%lld must divide devices=%lld", N, G);
    RS_CHECK(a->E % groups == 0, err, "metric placement: groups=%lld must divide the trace's %d experts", groups,
             a->E);
    a->G = (int)G;
    a->N = (int)N;
    a->R = (int)R;
    a->options.layout = (rs_placement_layout){.E = a->E, .S = (int)S, .G = (int)G, .N = (int)N, .groups = (int)groups};
    const char *stats = str_or(params, "stats", "oracle");
    const int history = strcmp(stats, "history") == 0, split = strcmp(stats, "split") == 0;
    const int has_loads = rs_param_is_set(params, "loads");
    RS_CHECK(!has_loads || (!history && !split), err,
             "metric placement: loads=FILE is what stats=oracle plans from; stats=%s collects its own", stats);
    RS_CHECK(history || (!rs_param_is_set(params, "window") && !rs_param_is_set(params, "rebalance_every")), err,
             "metric placement: window and rebalance_every apply to stats=history");
    RS_CHECK(split || !rs_param_is_set(params, "train_tokens"), err,
             "metric placement: train_tokens applies to stats=split");
    const long long B = a->B;
    if (history) {
        RS_CHECK(rs_param_is_set(params, "rebalance_every"), err,
                 "metric placement: stats=history needs rebalance_every=TOKENS, the tokens between replans");
        const long long every = rs_param_int(params, "rebalance_every"), window = int_or(params, "window", every);
        RS_CHECK(every % B == 0, err,
                 "metric placement: rebalance_every=%lld must be a multiple of batch_tokens=%lld (replans happen "
                 "between batches)",
                 every, B);
        RS_CHECK(window % B == 0, err,
                 "metric placement: window=%lld must be a multiple of batch_tokens=%lld (the load history keeps "
                 "whole batches)",
                 window, B);
        a->rebalance_batches = every / B;
        a->window_batches = window / B;
    }
    if (split) {
        RS_CHECK(rs_param_is_set(params, "train_tokens"), err,
                 "metric placement: stats=split needs train_tokens=TOKENS, the first tokens to plan on");
        a->train_tokens = rs_param_int(params, "train_tokens");
        RS_CHECK(a->train_tokens % B == 0, err,
                 "metric placement: train_tokens=%lld must be a multiple of batch_tokens=%lld (measuring starts "
                 "with a batch)",
                 (long long)a->train_tokens, B);
    }
    if (planned_from_loads && has_loads && a->needs_transitions)
        return rs_fail(err,
                       "metric placement: policy %s plans from layer-to-layer transitions, which a loads file does "
                       "not hold; use stats=history or stats=split",
                       a->policy->name);
    a->stats = !planned_from_loads ? PLACEMENT_STATS_ONCE
               : history   ? PLACEMENT_STATS_HISTORY
               : split     ? PLACEMENT_STATS_SPLIT
                           : PLACEMENT_STATS_ONCE;
    if (a->stats == PLACEMENT_STATS_HISTORY)
        RS_CHECK((double)B * a->K * a->K <= INT32_MAX, err,
                 "metric placement: batches of batch_tokens=%lld with %d experts per token overflow the history's "
                 "32-bit counts",
                 B, a->K);
    const char *source = str_or(params, "source", "sequence"), *dispatch = str_or(params, "dispatch", "local");
    a->by_token = strcmp(source, "token") == 0;
    a->rule = strcmp(dispatch, "balanced") == 0      ? RS_DISPATCH_BALANCED
              : strcmp(dispatch, "round_robin") == 0 ? RS_DISPATCH_ROUND_ROBIN
              : strcmp(dispatch, "nearest") == 0     ? RS_DISPATCH_NEAREST
                                                     : RS_DISPATCH_LOCAL;
    a->per_device = rs_param_is_set(params, "per_device") && rs_param_bool(params, "per_device");
    a->expert_bytes = float_or(params, "expert_bytes", DEFAULT_EXPERT_BYTES);
    a->options.balance_slack = float_or(params, "balance_slack", 0.0);
    a->options.iterations = int_or(params, "iterations", 0);
    a->options.seed = (uint64_t)int_or(params, "seed", 0);
    a->model = (rs_comm_model){
        .hidden_size = (double)int_or(params, "hidden_size", DEFAULT_HIDDEN_SIZE),
        .bytes_per_element = float_or(params, "bytes_per_element", DEFAULT_BYTES_PER_ELEMENT),
        .nvlink_gbps = float_or(params, "nvlink_gbps", DEFAULT_NVLINK_GBPS),
        .net_gbps = float_or(params, "net_gbps", DEFAULT_NET_GBPS),
        .latency_s = float_or(params, "latency_us", 0.0) * 1e-6,
        .batch_tokens = a->B,
    };
    return 0;
}

/* Reads loads=FILE (checked against the trace's shape) into *loads. */
static int read_loads(const placement_acc *a, const char *path, double **loads, rs_error *err)
{
    int L = 0, E = 0;
    RS_TRY(rs_placement_loads_read(path, loads, &L, &E, err));
    if (L != a->L || E != a->E) {
        free(*loads);
        *loads = NULL;
        return rs_fail(err, "%s: loads of %d layers x %d experts, but the trace has %d layers x %d experts", path, L,
                       E, a->L, a->E);
    }
    return 0;
}

/* Puts placement p in force (taking it), with its dispatch tables. */
static int put_in_force(placement_acc *a, rs_placement *p, int count_moves, rs_error *err)
{
    rs_dispatch tables = {0};
    if (rs_dispatch_build(&tables, p, a->rule, err) != 0) {
        rs_placement_free(p);
        return -1;
    }
    if (count_moves && a->place) {
        const int S = p->layout.S;
        for (int l = 0; l < a->L; l++)
            for (int s = 0; s < S; s++)
                a->sums[l].moves += a->place->phy2log[(size_t)l * S + s] != p->phy2log[(size_t)l * S + s];
    }
    rs_placement_free(a->place);
    rs_dispatch_free(&a->dispatch);
    a->place = p;
    a->dispatch = tables;
    return 0;
}

/* The whole run's counts (stats=oracle without loads=FILE) as doubles. */
static int run_counts(const placement_acc *a, const rs_run_counts *counts, double **loads, double **transitions,
                      rs_error *err)
{
    RS_CHECK(counts && counts->loads && (!a->needs_transitions || counts->transitions), err,
             "metric placement: stats=oracle plans policy %s from the whole run's loads, which the engine counts in "
             "a first pass; none were given (give loads=FILE, or use stats=history or stats=split)",
             a->policy->name);
    RS_CHECK(counts->L == a->L && counts->E == a->E, err,
             "metric placement: the run's counts are of %d layers x %d experts, the trace has %d x %d", counts->L,
             counts->E, a->L, a->E);
    const size_t LE = (size_t)a->L * (size_t)a->E;
    const size_t pairs = a->needs_transitions ? (size_t)(a->L - 1) * (size_t)a->E * (size_t)a->E : 0;
    *loads = malloc(LE * sizeof **loads);
    *transitions = pairs ? malloc(pairs * sizeof **transitions) : NULL;
    RS_CHECK(*loads && (!pairs || *transitions), err, "metric placement: out of memory");
    for (size_t i = 0; i < LE; i++)
        (*loads)[i] = (double)counts->loads[i];
    for (size_t i = 0; i < pairs; i++)
        (*transitions)[i] = (double)counts->transitions[i];
    return 0;
}

/* The first placement: planned once (the policy, from loads=FILE or the
 * run's counts when it plans from loads), contiguous before any history,
 * none before a split's training ends. */
static int first_plan(placement_acc *a, const rs_params *params, const rs_metric_setup *setup, rs_error *err)
{
    if (a->stats == PLACEMENT_STATS_SPLIT)
        return 0;
    const rs_placement_policy *policy = a->stats == PLACEMENT_STATS_HISTORY ? rs_placement_policy_find("contiguous")
                                                                          : a->policy;
    double *loads = NULL, *transitions = NULL;
    int rc = 0;
    if (rs_param_is_set(params, "loads"))
        rc = read_loads(a, rs_param_str(params, "loads"), &loads, err);
    else if (policy == a->policy && load_based(policy))
        rc = run_counts(a, setup->counts, &loads, &transitions, err);
    rs_placement_stats stats = {.L = a->L, .E = a->E, .loads = loads, .transitions = transitions};
    rs_placement *p = rc == 0 ? rs_placement_plan(policy, &stats, &a->options, err) : NULL;
    free(loads);
    free(transitions);
    if (rc != 0)
        return -1;
    if (!p)
        return rs_fail_context(err, "metric placement");
    return put_in_force(a, p, 0, err);
}

static void *zeros(size_t count, size_t size, int *ok)
{
    void *p = calloc(count ? count : 1, size);
    *ok &= p != NULL;
    return p;
}

int rs_placement_acc_create(void **out, const rs_params *params, const rs_metric_setup *setup, rs_error *err)
{
    placement_acc *a = calloc(1, sizeof *a);
    RS_CHECK(a, err, "metric placement: out of memory");
    a->L = setup->trace->num_layers;
    a->E = setup->trace->num_experts;
    a->K = setup->kmax > 0 ? setup->kmax : 1;
    a->B = setup->batch_tokens > 0 ? setup->batch_tokens : 1;
    a->cur_batch = -1;
    if (read_params(a, params, err) != 0) {
        rs_placement_acc_destroy(a);
        return -1;
    }
    a->options.path = a->path;
    a->options.model = &a->model;
    const size_t L = (size_t)a->L, E = (size_t)a->E, G = (size_t)a->G;
    const size_t pairs = a->needs_transitions ? (L - 1) * E * E : 0;
    const int history = a->stats == PLACEMENT_STATS_HISTORY, collects = a->stats != PLACEMENT_STATS_ONCE;
    if (history) {
        const double need = (double)a->window_batches * ((double)L * (double)E + (double)pairs) * 4.0;
        if (need > MAX_HISTORY_BYTES) {
            rs_fail(err,
                    "metric placement: the load history of window=%lld tokens (%s) takes %.0f MiB, over the %.0f MiB "
                    "limit; use a shorter window",
                    (long long)(a->window_batches * a->B),
                    pairs ? "loads and layer-to-layer transitions per batch" : "expert loads per batch",
                    need / 1048576.0, MAX_HISTORY_BYTES / 1048576.0);
            rs_placement_acc_destroy(a);
            return -1;
        }
    }
    int ok = 1;
    a->sums = zeros(L, sizeof *a->sums, &ok);
    a->device_load = zeros(L * G, sizeof *a->device_load, &ok);
    for (int i = 0; i < PLACEMENT_OPEN_BATCHES; i++) {
        a->open[i].index = -1;
        a->open[i].load = zeros(L * G, sizeof *a->open[i].load, &ok);
        a->open[i].traffic = zeros(4 * L * G, sizeof *a->open[i].traffic, &ok);
    }
    a->node_of = zeros(G, sizeof *a->node_of, &ok);
    a->comm = zeros(G, sizeof *a->comm, &ok);
    a->row_devices = zeros(2 * (size_t)a->K, sizeof *a->row_devices, &ok);
    if (collects) {
        a->stat_loads = zeros(L * E, sizeof *a->stat_loads, &ok);
        a->stat_transitions = pairs ? zeros(pairs, sizeof *a->stat_transitions, &ok) : NULL;
        a->plan_loads = zeros(L * E, sizeof *a->plan_loads, &ok);
        a->plan_transitions = pairs ? zeros(pairs, sizeof *a->plan_transitions, &ok) : NULL;
    }
    if (history) {
        a->batch_loads = zeros(L * E, sizeof *a->batch_loads, &ok);
        a->batch_transitions = pairs ? zeros(pairs, sizeof *a->batch_transitions, &ok) : NULL;
        a->ring = zeros((size_t)a->window_batches * L * E, sizeof *a->ring, &ok);
        a->transition_ring = pairs ? zeros((size_t)a->window_batches * pairs, sizeof *a->transition_ring, &ok) : NULL;
    }
    if (!ok) {
        rs_fail(err, "metric placement: out of memory (%d layers, %d experts, %d devices)", a->L, a->E, a->G);
        rs_placement_acc_destroy(a);
        return -1;
    }
    for (int d = 0; d < a->G; d++)
        a->node_of[d] = rs_placement_node_of_device(&a->options.layout, d);
    if (first_plan(a, params, setup, err) != 0) {
        rs_placement_acc_destroy(a);
        return -1;
    }
    *out = a;
    return 0;
}

int rs_placement_acc_mergeable(const placement_acc *a, rs_error *err)
{
    RS_CHECK(a->stats != PLACEMENT_STATS_HISTORY, err,
             "metric placement: with stats=history each replan depends on the loads of all tokens before it, so "
             "parts of the trace cannot be measured apart and merged");
    RS_CHECK(a->stats != PLACEMENT_STATS_SPLIT, err,
             "metric placement: with stats=split the placement comes from the trace's first tokens, so parts of the "
             "trace cannot be measured apart and merged");
    RS_CHECK((a->rule != RS_DISPATCH_BALANCED && a->rule != RS_DISPATCH_NEAREST) || a->R == 0, err,
             "metric placement: dispatch=%s picks replicas by the loads of the batch so far, and a batch may "
             "span two parts of the trace, so parts cannot be merged; use dispatch=local or round_robin",
             a->rule == RS_DISPATCH_BALANCED ? "balanced" : "nearest");
    return 0;
}

/* ------------------------------------------------------------ statistics */

void rs_placement_acc_count(const placement_acc *a, const rs_chunk *c, const rs_decisions *dec, int t0, int t1,
                            int64_t *loads, int64_t *transitions)
{
    const int L = a->L, E = a->E, K = dec->kmax;
    for (int t = t0; t < t1; t++) {
        if (c->valid && c->valid[t] != 1)
            continue;
        for (int l = 0; l < L; l++) {
            const int32_t *ids = dec->ids + rs_decision_row(c, dec, t, l);
            for (int j = 0; j < K; j++)
                if (ids[j] >= 0)
                    loads[(size_t)l * E + (size_t)ids[j]]++;
            if (!transitions || l + 1 == L)
                continue;
            const int32_t *next = dec->ids + rs_decision_row(c, dec, t, l + 1);
            int64_t *table = transitions + (size_t)l * E * E;
            for (int x = 0; x < K; x++)
                for (int y = 0; ids[x] >= 0 && y < K; y++)
                    if (next[y] >= 0)
                        table[(size_t)ids[x] * E + (size_t)next[y]]++;
        }
    }
}

/* ring[slot] leaves the window sums, counts takes its place and joins them. */
static void ring_swap(int32_t *slot, int64_t *sums, int64_t *counts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        sums[i] += counts[i] - slot[i];
        slot[i] = (int32_t)counts[i];
        counts[i] = 0;
    }
}

void rs_placement_acc_push_history(placement_acc *a)
{
    const size_t LE = (size_t)a->L * (size_t)a->E, slot = (size_t)(a->ring_next % a->window_batches);
    ring_swap(a->ring + slot * LE, a->stat_loads, a->batch_loads, LE);
    if (a->transition_ring) {
        const size_t pairs = (size_t)(a->L - 1) * (size_t)a->E * (size_t)a->E;
        ring_swap(a->transition_ring + slot * pairs, a->stat_transitions, a->batch_transitions, pairs);
    }
    a->ring_next++;
}

void rs_placement_acc_replan(placement_acc *a, int count_moves)
{
    const size_t LE = (size_t)a->L * (size_t)a->E;
    for (size_t i = 0; i < LE; i++)
        a->plan_loads[i] = (double)a->stat_loads[i];
    const size_t pairs = a->plan_transitions ? (size_t)(a->L - 1) * (size_t)a->E * (size_t)a->E : 0;
    for (size_t i = 0; i < pairs; i++)
        a->plan_transitions[i] = (double)a->stat_transitions[i];
    rs_placement_stats stats = {.L = a->L, .E = a->E, .loads = a->plan_loads, .transitions = a->plan_transitions};
    rs_error err = {{0}};
    rs_placement *p = rs_placement_plan(a->policy, &stats, &a->options, &err);
    if (!p || put_in_force(a, p, count_moves, &err) != 0)
        a->failed = 1;
}

/* ------------------------------------------------------------ compact and checkpoint */

void rs_placement_acc_compact(void *p)
{
    placement_acc *a = p;
    if (a->compacted || rs_placement_acc_mergeable(a, NULL) != 0)
        return; /* never merged: nothing to make small */
    rs_placement_free(a->place);
    a->place = NULL;
    rs_dispatch_free(&a->dispatch);
    a->compacted = 1;
}

/* The placement in force: its slots' experts and replica ranks; restoring
 * rebuilds the derived maps and dispatch tables. */
static void placement_checkpoint(placement_acc *a, rs_state_io *io)
{
    uint8_t present = a->place != NULL;
    RS_STATE(io, present);
    if (!present) {
        if (rs_state_restoring(io) && a->place) { /* a split resumed before its plan */
            rs_placement_free(a->place);
            a->place = NULL;
            rs_dispatch_free(&a->dispatch);
        }
        return;
    }
    rs_error err = {{0}};
    if (rs_state_restoring(io) && !a->place && !(a->place = rs_placement_new(a->L, &a->options.layout, &err))) {
        rs_state_fail(io);
        return;
    }
    const size_t cells = (size_t)a->L * (size_t)a->options.layout.S;
    RS_STATE_ARRAY(io, a->place->phy2log, cells);
    RS_STATE_ARRAY(io, a->place->rank, cells);
    if (!rs_state_restoring(io))
        return;
    rs_placement *p = a->place;
    a->place = NULL;
    if (rs_placement_finish(p, &err) != 0) {
        rs_placement_free(p);
        rs_state_fail(io);
        return;
    }
    if (put_in_force(a, p, 0, &err) != 0)
        rs_state_fail(io);
}

void rs_placement_acc_checkpoint(void *p, rs_state_io *io)
{
    placement_acc *a = p;
    const size_t L = (size_t)a->L, E = (size_t)a->E, G = (size_t)a->G;
    uint8_t compacted = (uint8_t)a->compacted;
    RS_STATE(io, compacted);
    if (compacted && rs_state_restoring(io))
        rs_placement_acc_compact(a);
    RS_STATE_ARRAY(io, a->sums, L);
    RS_STATE_ARRAY(io, a->device_load, L * G);
    for (int i = 0; i < PLACEMENT_OPEN_BATCHES; i++) {
        RS_STATE(io, a->open[i].index);
        RS_STATE(io, a->open[i].tokens);
        RS_STATE_ARRAY(io, a->open[i].load, L * G);
        RS_STATE_ARRAY(io, a->open[i].traffic, 4 * L * G);
    }
    RS_STATE(io, a->cur_batch);
    RS_STATE(io, a->failed);
    RS_STATE(io, a->planned);
    if (!compacted)
        placement_checkpoint(a, io);
    const size_t pairs = a->stat_transitions ? (L - 1) * E * E : 0;
    if (a->stat_loads)
        RS_STATE_ARRAY(io, a->stat_loads, L * E);
    if (a->stat_transitions)
        RS_STATE_ARRAY(io, a->stat_transitions, pairs);
    if (a->ring) {
        RS_STATE_ARRAY(io, a->batch_loads, L * E);
        RS_STATE_ARRAY(io, a->ring, (size_t)a->window_batches * L * E);
        RS_STATE(io, a->ring_next);
    }
    if (a->transition_ring) {
        RS_STATE_ARRAY(io, a->batch_transitions, pairs);
        RS_STATE_ARRAY(io, a->transition_ring, (size_t)a->window_batches * pairs);
    }
}
