/* routesim route TRACE --router SPEC [--out DECISIONS.h5]: one router over
 * one trace; decisions to a file, metrics to a table. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/cli/cli.h"
#include "routers/plugins.h"
#include "sim/engine/engine.h"
#include "sim/experiment/route.h"

static void usage(void)
{
    printf("usage: routesim route TRACE --router SPEC [--out DECISIONS.h5] [options]\n\n"
           "Routes every token of TRACE with one router. SPEC is NAME or NAME:key=value,...\n"
           "(e.g. topk:k=2,renorm=0; see 'routesim routers').\n\n"
           "options:\n"
           "  --router SPEC       the router (required)\n"
           "  --out FILE          write decisions (/decisions/ids, /decisions/weights [T, L, Kmax])\n"
           "  --metrics LIST      metric families to print, comma-separated; FAMILY.OUTPUT keeps\n"
           "                      one output (e.g. entropy.router_entropy). Default: outcome\n"
           "                      for query traces with outcomes, load,entropy for traces\n"
           "                      with logits, else load; 'none' for no metrics. FAMILY:K=V (or\n"
           "                      FAMILY.OUTPUT:K=V) sets a parameter, K=V items after it more of\n"
           "                      that family's (e.g. cache:slots=8,policy=belady,srp.srp:m=16);\n"
           "                      K=[A,B,...] sweeps a parameter (cache:slots=[4,8,16])\n"
           "  --by LIST           also every metric per domain and/or phase (domain, phase or\n"
           "                      domain,phase): rows keyed domain=NAME, phase=prefill|decode\n"
           "  --csv FILE          also write the metric rows as results.csv does\n"
           "  --force             let --out and --csv replace an existing file of another kind\n"
           "                      (never one of the inputs)\n"
           "  --reference SPEC    the router agreement metrics compare with (e.g. topk:k=2)\n"
           "  --reference-trace F route the reference on F, a paired trace with the same tokens\n"
           "                      (another checkpoint), instead of on TRACE\n"
           "  --batch-tokens N    batch size for maxvio_batch and batch-grouped routers (default 4096)\n"
           "  --threads N         OpenMP threads (default: all cores)\n"
           "  --chunk-tokens N    tokens per chunk (default: from the memory budget)\n"
           "  --memory-mb MB      chunk buffer budget (default 64)\n"
           "  --skip-nonfinite    skip tokens with NaN/inf logits instead of failing\n"
           "  --device cpu|gpu    gpu: softmax and routing on an OpenMP offload device, the same\n"
           "                      results (a binary of make GPU=1; docs/gpu.md; default cpu)\n"
           "  --plugin FILE.so    load routers and metrics from a plugin (repeatable)\n"
           "  --no-progress       no progress bar\n");
}

int rs_cmd_route(int argc, char **argv)
{
    if (rs_cli_wants_help(argc, argv)) {
        usage();
        return RS_EXIT_OK;
    }
    static const struct option options[] = {
        {"router", required_argument, NULL, 'r'},       {"out", required_argument, NULL, 'o'},
        {"metrics", required_argument, NULL, 'M'},      {"csv", required_argument, NULL, 'C'},
        {"batch-tokens", required_argument, NULL, 'b'}, {"threads", required_argument, NULL, 't'},
        {"chunk-tokens", required_argument, NULL, 'c'}, {"memory-mb", required_argument, NULL, 'm'},
        {"skip-nonfinite", no_argument, NULL, 's'},     {"no-progress", no_argument, NULL, 'P'},
        {"plugin", required_argument, NULL, 'p'},       {"reference", required_argument, NULL, 'R'},
        {"reference-trace", required_argument, NULL, 'T'}, {"force", no_argument, NULL, 'f'},
        {"by", required_argument, NULL, 'y'},           {"device", required_argument, NULL, 'D'},
        {NULL, 0, NULL, 0},
    };
    const char *router = NULL, *out = NULL, *metrics = NULL, *csv = NULL, *reference = NULL, *reference_path = NULL;
    long long batch = 4096, threads = 0, chunk = 0, memory = 0;
    int skip = 0, progress = -1, force = 0, device = RS_DEVICE_CPU;
    unsigned breakdown = 0;
    optind = 1;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, "", options, NULL)) != -1;) {
        int bad = 0;
        switch (c) {
        case 'r': router = optarg; break;
        case 'o': out = optarg; break;
        case 'M': metrics = optarg; break;
        case 'C': csv = optarg; break;
        case 'R': reference = optarg; break;
        case 'T': reference_path = optarg; break;
        case 'b': bad = rs_cli_parse_long("route", "--batch-tokens", optarg, 1, 1 << 30, &batch); break;
        case 't': bad = rs_cli_parse_long("route", "--threads", optarg, 1, 4096, &threads); break;
        case 'c': bad = rs_cli_parse_long("route", "--chunk-tokens", optarg, 1, 1 << 20, &chunk); break;
        case 'm': bad = rs_cli_parse_long("route", "--memory-mb", optarg, 1, 10000000, &memory); break;
        case 'y': bad = rs_cli_parse_breakdown("route", optarg, &breakdown); break;
        case 'D': bad = rs_cli_parse_device("route", optarg, &device); break;
        case 's': skip = 1; break;
        case 'f': force = 1; break;
        case 'P': progress = 0; break;
        case 'p': {
            rs_error perr = {{0}};
            if (rs_plugin_load(optarg, &perr) != 0)
                return rs_cli_fail(&perr);
            break;
        }
        default: return rs_cli_usage_error("route", "unknown option or missing value '%s'", argv[optind - 1]);
        }
        if (bad)
            return RS_EXIT_USAGE;
    }
    if (argc - optind != 1)
        return rs_cli_usage_error("route", "expected one trace file");
    if (!router)
        return rs_cli_usage_error("route", "--router SPEC is required");
    if (reference_path && !reference)
        return rs_cli_usage_error("route", "--reference-trace needs --reference SPEC (the router to run on it)");
    rs_error err = {{0}};
    rs_route_request req = {.trace = argv[optind],
                            .router = router,
                            .metrics = metrics,
                            .reference = reference,
                            .reference_trace = reference_path,
                            .decisions = out,
                            .results_csv = csv,
                            .force = force,
                            .batch_tokens = (int)batch,
                            .threads = (int)threads,
                            .chunk_tokens = chunk,
                            .memory_budget = (size_t)memory << 20,
                            .skip_nonfinite = skip,
                            .breakdown = breakdown,
                            .device = device,
                            .progress = progress};
    rs_results results;
    rs_results_init(&results);
    rs_route_report report;
    int rc = rs_route_run(&req, &results, &report, &err);
    if (rc == 0) {
        if (report.skipped_tokens)
            fprintf(stderr, "routesim: skipped %lld tokens with non-finite logits\n", (long long)report.skipped_tokens);
        if (report.num_metrics > 0)
            rs_results_print_table(&results, stdout);
        if (out)
            fprintf(stderr, "routesim: wrote %s\n", out);
    }
    rs_results_free(&results);
    return rc == 0 ? RS_EXIT_OK : rs_cli_fail(&err);
}
