/* routesim place (--loads FILE | TRACE --router SPEC) --devices G -o OUT.json:
 * plans an expert placement from expert loads, either a loads file or the
 * assignments a router makes on a trace (and, for policies that ask, its
 * layer-to-layer transitions), counted in one pass (rs_engine_count_run),
 * and writes it as JSON (metrics/placement/placement_json.h) with its
 * modelled all-to-all time (metrics/placement/modelled_cost.h). */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/output_path.h"
#include "metrics/placement/loads_file.h"
#include "metrics/placement/modelled_cost.h"
#include "metrics/placement/placement.h"
#include "metrics/placement/placement_json.h"
#include "routers/plugins.h"
#include "sim/cli/cli.h"
#include "sim/config/spec.h"
#include "sim/engine/engine.h"
#include "workloads/trace/output_check.h"
#include "workloads/trace/trace.h"

static void usage(void)
{
    printf("usage: routesim place --loads FILE --devices G -o OUT.json [options]\n"
           "       routesim place TRACE --router SPEC --devices G -o OUT.json [options]\n\n"
           "Plans where each layer's E experts and R replicas go: S = E + R slots on G devices\n"
           "in N nodes, S/G slots per device (slot s on device s / (S/G)). The loads are a\n"
           "file (JSON {\"logical_count\": [[...], ...]} as SGLang dumps it, or a CSV of layers x\n"
           "experts) or the assignments SPEC makes on TRACE (and its layer-to-layer transitions,\n"
           "which affinity needs). Writes physical_to_logical_map, logical_to_physical_map and\n"
           "logical_count as JSON (docs/metrics.md) and prints the plan's modelled all-to-all\n"
           "time: the loads as one batch per layer, tokens spread evenly over the devices.\n\n"
           "options:\n"
           "  --loads FILE        expert loads per layer (instead of TRACE --router SPEC)\n"
           "  --router SPEC       the router whose assignments are the loads (with TRACE)\n"
           "  --policy NAME       the placement policy (default eplb); file:PATH reads a placement\n"
           "  --devices G         devices (required; must divide E + R)\n"
           "  --nodes N           nodes (default 1; must divide G)\n"
           "  --groups N          expert groups (default 1; must divide E; eplb is hierarchical\n"
           "                      when the nodes divide the groups)\n"
           "  --replicas R        redundant slots per layer (default 0)\n"
           "  --balance-slack X   affinity, search: device loads may exceed eplb's largest by X\n"
           "                      (relative, default 0)\n"
           "  --iterations N      search: moves priced per layer at most (default 0: 20000)\n"
           "  --seed N            search: the order moves are tried in (default 0)\n"
           "  --hidden-size N     the all-to-all model (docs/metrics.md, search): elements per\n"
           "                      activation (default 7168)\n"
           "  --bytes-per-element X  bytes per element (default 2)\n"
           "  --nvlink-gbps X     intra-node GB/s per device and direction (default 160)\n"
           "  --net-gbps X        inter-node GB/s per device and direction (default 50)\n"
           "  --latency-us X      fixed cost of a layer's all-to-all, microseconds (default 0)\n"
           "  -o, --out FILE      the placement JSON to write (required)\n"
           "  --sglang            write physical_to_logical_map alone: SGLang's --init-expert-location\n"
           "                      refuses a file with other keys\n"
           "  --dense-layers N    with --sglang: N rows of the trivial map (slot s: expert s mod E) first,\n"
           "                      for the dense layers before the first MoE layer (DeepSeek-V3: 3), as\n"
           "                      SGLang's map has a row per hidden layer\n"
           "  --force             replace an existing file that is not a placement\n"
           "  --batch-tokens N    batch size of batch-grouped routers (default 4096)\n"
           "  --threads N         OpenMP threads for routing (default: all cores)\n"
           "  --memory-mb MB      chunk buffer budget for routing (default 64)\n"
           "  --plugin FILE.so    load routers from a plugin (repeatable)\n"
           "  --no-progress       no progress bar\n\n"
           "policies:\n");
    for (int i = 0; i < rs_placement_policy_count(); i++) {
        const rs_placement_policy *p = rs_placement_policy_at(i);
        printf("  %-12s %s\n", p->name, p->summary);
    }
}

/* Routes the trace once and counts the router's kept assignments [L][E]
 * and, when asked, its layer-to-layer transitions [L-1][E][E]. */
static int count_trace(const char *path, const char *router, const rs_engine_options *options, int transitions,
                       double **loads, double **pairs, rs_error *err)
{
    rs_router_spec spec;
    RS_TRY(rs_router_spec_parse(&spec, router, err));
    rs_trace *trace = NULL;
    rs_counted_run counted = {0};
    int rc = rs_trace_open(&trace, path, err);
    if (rc == 0)
        rc = rs_engine_count_run(trace, &spec, options,
                                 RS_COUNTS_LOADS | (transitions ? (unsigned)RS_COUNTS_TRANSITIONS : 0u), &counted,
                                 err);
    if (rc == 0) {
        const rs_run_counts *c = &counted.counts;
        const size_t cells = (size_t)c->L * (size_t)c->E;
        const size_t pair_cells = transitions && c->L > 1 ? (size_t)(c->L - 1) * (size_t)c->E * (size_t)c->E : 0;
        *loads = malloc(cells * sizeof **loads);
        *pairs = pair_cells ? malloc(pair_cells * sizeof **pairs) : NULL;
        if (!*loads || (pair_cells && !*pairs))
            rc = rs_fail(err, "out of memory for the counts of %d layers x %d experts", c->L, c->E);
        for (size_t i = 0; rc == 0 && i < cells; i++)
            (*loads)[i] = (double)c->loads[i];
        for (size_t i = 0; rc == 0 && i < pair_cells; i++)
            (*pairs)[i] = (double)c->transitions[i];
    }
    if (rc != 0) {
        free(*loads);
        free(*pairs);
        *loads = *pairs = NULL;
    }
    rs_counted_run_free(&counted);
    rs_trace_close(trace);
    rs_router_spec_free(&spec);
    return rc;
}

/* max / mean device load of the loads as planned (each replica takes an
 * equal share of its expert's), averaged over the layers with any load. */
static double device_imbalance(const rs_placement *p, const double *loads)
{
    const rs_placement_layout *lay = &p->layout;
    double *device = calloc((size_t)lay->G, sizeof *device);
    if (!device)
        return NAN;
    double sum = 0.0;
    int layers = 0;
    for (int l = 0; l < p->L; l++) {
        memset(device, 0, (size_t)lay->G * sizeof *device);
        double total = 0.0, max = 0.0;
        for (int s = 0; s < lay->S; s++) {
            const int e = p->phy2log[(size_t)l * lay->S + s];
            const size_t le = (size_t)l * lay->E + (size_t)e;
            device[rs_placement_device_of_slot(lay, s)] += loads[le] / p->logcnt[le];
        }
        for (int d = 0; d < lay->G; d++) {
            total += device[d];
            max = device[d] > max ? device[d] : max;
        }
        if (total > 0) {
            sum += max / (total / lay->G);
            layers++;
        }
    }
    free(device);
    return layers ? sum / layers : NAN;
}

typedef struct place_args {
    const char *loads, *trace, *router, *policy, *out;
    long long devices, nodes, groups, replicas, batch, threads, memory, iterations, seed, hidden, dense;
    double slack;
    rs_comm_model model;
    int sglang, force, progress;
} place_args;

/* Long options without a letter. */
enum {
    OPT_SLACK = 256,
    OPT_ITERATIONS,
    OPT_SEED,
    OPT_HIDDEN,
    OPT_BYTES,
    OPT_NVLINK,
    OPT_NET,
    OPT_LATENCY,
    OPT_DENSE,
};

/* A number option in [min, max], or a usage error. */
static int parse_number(const char *option, const char *text, double min, double max, double *out)
{
    char *end = NULL;
    const double v = strtod(text, &end);
    if (end == text || *end != '\0' || !isfinite(v) || v < min || v > max) {
        rs_cli_usage_error("place", "%s: expected a number in [%g, %g], got '%s'", option, min, max, text);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_args(int argc, char **argv, place_args *a)
{
    static const struct option options[] = {
        {"loads", required_argument, NULL, 'L'},       {"router", required_argument, NULL, 'r'},
        {"policy", required_argument, NULL, 'P'},      {"devices", required_argument, NULL, 'G'},
        {"nodes", required_argument, NULL, 'N'},       {"groups", required_argument, NULL, 'g'},
        {"replicas", required_argument, NULL, 'R'},    {"out", required_argument, NULL, 'o'},
        {"sglang", no_argument, NULL, 'S'},            {"force", no_argument, NULL, 'f'},
        {"batch-tokens", required_argument, NULL, 'b'}, {"threads", required_argument, NULL, 't'},
        {"memory-mb", required_argument, NULL, 'm'},   {"plugin", required_argument, NULL, 'p'},
        {"no-progress", no_argument, NULL, 'n'},
        {"balance-slack", required_argument, NULL, OPT_SLACK},
        {"iterations", required_argument, NULL, OPT_ITERATIONS},
        {"seed", required_argument, NULL, OPT_SEED},
        {"hidden-size", required_argument, NULL, OPT_HIDDEN},
        {"bytes-per-element", required_argument, NULL, OPT_BYTES},
        {"nvlink-gbps", required_argument, NULL, OPT_NVLINK},
        {"net-gbps", required_argument, NULL, OPT_NET},
        {"latency-us", required_argument, NULL, OPT_LATENCY},
        {"dense-layers", required_argument, NULL, OPT_DENSE},
        {NULL, 0, NULL, 0},
    };
    *a = (place_args){.policy = "eplb", .nodes = 1, .groups = 1, .batch = 4096, .progress = -1,
                      .model = rs_comm_model_defaults};
    a->hidden = (long long)a->model.hidden_size;
    double latency_us = a->model.latency_s * 1e6;
    optind = 1;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, "o:", options, NULL)) != -1;) {
        int bad = 0;
        switch (c) {
        case 'L': a->loads = optarg; break;
        case 'r': a->router = optarg; break;
        case 'P': a->policy = optarg; break;
        case 'o': a->out = optarg; break;
        case 'G': bad = rs_cli_parse_long("place", "--devices", optarg, 1, 1 << 20, &a->devices); break;
        case 'N': bad = rs_cli_parse_long("place", "--nodes", optarg, 1, 1 << 20, &a->nodes); break;
        case 'g': bad = rs_cli_parse_long("place", "--groups", optarg, 1, 1 << 20, &a->groups); break;
        case 'R': bad = rs_cli_parse_long("place", "--replicas", optarg, 0, 1 << 24, &a->replicas); break;
        case 'b': bad = rs_cli_parse_long("place", "--batch-tokens", optarg, 1, 1 << 30, &a->batch); break;
        case 't': bad = rs_cli_parse_long("place", "--threads", optarg, 1, 4096, &a->threads); break;
        case 'm': bad = rs_cli_parse_long("place", "--memory-mb", optarg, 1, 10000000, &a->memory); break;
        case 'S': a->sglang = 1; break;
        case 'f': a->force = 1; break;
        case 'n': a->progress = 0; break;
        case OPT_SLACK: bad = parse_number("--balance-slack", optarg, 0, 1e9, &a->slack); break;
        case OPT_ITERATIONS:
            bad = rs_cli_parse_long("place", "--iterations", optarg, 0, 1ll << 40, &a->iterations);
            break;
        case OPT_SEED: bad = rs_cli_parse_long("place", "--seed", optarg, 0, 1ll << 62, &a->seed); break;
        case OPT_HIDDEN:
            bad = rs_cli_parse_long("place", "--hidden-size", optarg, 1, 1000000000, &a->hidden);
            break;
        case OPT_BYTES:
            bad = parse_number("--bytes-per-element", optarg, 1e-3, 64, &a->model.bytes_per_element);
            break;
        case OPT_NVLINK: bad = parse_number("--nvlink-gbps", optarg, 1e-9, 1e9, &a->model.nvlink_gbps); break;
        case OPT_NET: bad = parse_number("--net-gbps", optarg, 1e-9, 1e9, &a->model.net_gbps); break;
        case OPT_LATENCY: bad = parse_number("--latency-us", optarg, 0, 1e12, &latency_us); break;
        case OPT_DENSE:
            bad = rs_cli_parse_long("place", "--dense-layers", optarg, 0, 4096, &a->dense);
            break;
        case 'p': {
            rs_error perr = {{0}};
            if (rs_plugin_load(optarg, &perr) != 0)
                return rs_cli_fail(&perr);
            break;
        }
        default: return rs_cli_usage_error("place", "unknown option or missing value '%s'", argv[optind - 1]);
        }
        if (bad)
            return RS_EXIT_USAGE;
    }
    a->model.hidden_size = (double)a->hidden;
    a->model.latency_s = latency_us * 1e-6;
    a->model.batch_tokens = (int)a->batch;
    if (argc - optind > 1)
        return rs_cli_usage_error("place", "expected at most one trace file");
    a->trace = argc - optind == 1 ? argv[optind] : NULL;
    if (!a->loads == !a->trace)
        return rs_cli_usage_error("place", "give either --loads FILE or TRACE --router SPEC");
    if (a->trace && !a->router)
        return rs_cli_usage_error("place", "TRACE needs --router SPEC (the router whose assignments are the loads)");
    if (a->loads && a->router)
        return rs_cli_usage_error("place", "--router routes a TRACE; --loads needs none");
    if (!a->devices)
        return rs_cli_usage_error("place", "--devices G is required");
    if (a->dense && !a->sglang)
        return rs_cli_usage_error("place", "--dense-layers adds rows to SGLang's map: it needs --sglang");
    if (!a->out)
        return rs_cli_usage_error("place", "-o OUT.json is required");
    return RS_EXIT_OK;
}

/* "NAME" or "NAME:PATH" (file:PATH) -> the policy and its path. */
static int find_policy(const char *text, const rs_placement_policy **policy, char *name, size_t size,
                       const char **path)
{
    const char *colon = strchr(text, ':');
    const size_t len = colon ? (size_t)(colon - text) : strlen(text);
    snprintf(name, size, "%.*s", (int)len, text);
    *path = colon ? colon + 1 : NULL;
    *policy = rs_placement_policy_find(name);
    if (!*policy) {
        char known[512] = "";
        for (int i = 0; i < rs_placement_policy_count(); i++)
            snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", i ? ", " : "",
                     rs_placement_policy_at(i)->name);
        return rs_cli_usage_error("place", "--policy: unknown policy '%s' (known: %s)", name, known);
    }
    if (((*policy)->needs & RS_PLACEMENT_NEEDS_PATH) && !(*path && **path))
        return rs_cli_usage_error("place", "--policy %s needs a file: %s:PATH", name, name);
    if (!((*policy)->needs & RS_PLACEMENT_NEEDS_PATH) && *path)
        return rs_cli_usage_error("place", "--policy %s takes no path", name);
    return RS_EXIT_OK;
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0->tv_nsec);
}

int rs_cmd_place(int argc, char **argv)
{
    if (rs_cli_wants_help(argc, argv)) {
        usage();
        return RS_EXIT_OK;
    }
    place_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc != RS_EXIT_OK)
        return rc;
    const rs_placement_policy *policy;
    char name[256];
    const char *policy_path;
    if ((rc = find_policy(a.policy, &policy, name, sizeof name, &policy_path)) != RS_EXIT_OK)
        return rc;

    const int wants_transitions = (policy->needs & RS_PLACEMENT_NEEDS_TRANSITIONS) != 0;
    if (wants_transitions && a.loads)
        return rs_cli_usage_error("place",
                                  "--policy %s plans from layer-to-layer transitions, which a loads file does not "
                                  "have: give TRACE --router SPEC instead of --loads",
                                  name);

    rs_error err = {{0}};
    const char *inputs[] = {a.loads ? a.loads : a.trace, policy_path};
    const rs_output_check check = {.path = a.out,
                                   .kind = RS_FILE_TEXT,
                                   .signature = "\"physical_to_logical_map\"",
                                   .what = "placement file",
                                   .inputs = inputs,
                                   .num_inputs = 2,
                                   .force = a.force};
    if (rs_output_check_path(&check, &err) != 0 || rs_make_parent_dirs(a.out, &err) != 0)
        return rs_cli_fail(&err);

    double *loads = NULL, *transitions = NULL;
    int L = 0, E = 0;
    if (a.loads) {
        if (rs_placement_loads_read(a.loads, &loads, &L, &E, &err) != 0)
            return rs_cli_fail(&err);
    } else {
        rs_trace *trace = NULL;
        if (rs_trace_open(&trace, a.trace, &err) != 0)
            return rs_cli_fail(&err);
        L = rs_trace_get_info(trace)->num_layers;
        E = rs_trace_get_info(trace)->num_experts;
        rs_trace_close(trace);
    }
    rs_placement_options options = {.layout = {.E = E,
                                               .S = E + (int)a.replicas,
                                               .G = (int)a.devices,
                                               .N = (int)a.nodes,
                                               .groups = (int)a.groups},
                                    .path = policy_path,
                                    .model = &a.model,
                                    .balance_slack = a.slack,
                                    .iterations = a.iterations,
                                    .seed = (uint64_t)a.seed};
    /* the layout is checked before a trace is routed */
    if (rs_placement_layout_check(&options.layout, &err) != 0) {
        free(loads);
        return rs_cli_fail(&err);
    }
    if (!loads) {
        const rs_engine_options engine = {.threads = (int)a.threads,
                                          .memory_budget = (size_t)a.memory << 20,
                                          .batch_tokens = (int)a.batch,
                                          .progress = a.progress};
        if (count_trace(a.trace, a.router, &engine, wants_transitions, &loads, &transitions, &err) != 0)
            return rs_cli_fail(&err);
    }

    const rs_placement_stats stats = {.L = L, .E = E, .loads = loads, .transitions = transitions};
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rs_placement *p = rs_placement_plan(policy, &stats, &options, &err);
    const double plan_s = seconds_since(&t0);
    const rs_placement_json_options json = {
        .policy = a.policy, .sglang_only = a.sglang, .dense_layers = (int)a.dense};
    rc = p ? rs_placement_json_write(p, &json, a.out, &err) : -1;
    if (rc == 0) {
        char cost[160];
        const double seconds = rs_placement_modelled_seconds(p, &stats, &a.model);
        int len = snprintf(cost, sizeof cost, "modelled all-to-all %.6g s", seconds);
        if (strcmp(policy->name, "search") == 0) {
            rs_placement *start = rs_placement_plan(rs_placement_policy_find("eplb"), &stats, &options, &err);
            const double eplb_s = start ? rs_placement_modelled_seconds(start, &stats, &a.model) : NAN;
            snprintf(cost + len, sizeof cost - (size_t)len, " (eplb's %.6g s, %+.2f%%)", eplb_s,
                     eplb_s > 0 ? 100.0 * (seconds / eplb_s - 1.0) : 0.0);
            rs_placement_free(start);
        }
        printf("routesim: place: %s: %d layers x %d slots (%d experts + %lld replicas) on %lld devices in %lld "
               "node%s: max/mean device load %.4f (mean over layers), %s, planned in %.3f ms; wrote %s\n",
               a.policy, L, options.layout.S, E, a.replicas, a.devices, a.nodes, a.nodes == 1 ? "" : "s",
               device_imbalance(p, loads), cost, plan_s * 1e3, a.out);
    }
    rs_placement_free(p);
    free(loads);
    free(transitions);
    return rc == 0 ? RS_EXIT_OK : rs_cli_fail(&err);
}
