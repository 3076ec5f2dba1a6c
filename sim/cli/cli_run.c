/* routesim run [CONFIG.json]: every router of the config on every trace,
 * results to OUTPUT/results.{csv,json} and a table on stdout. This file
 * parses the options; sim/experiment/pipeline.c does the run. */
#include <getopt.h>
#include <stdio.h>

#include "routers/plugins.h"
#include "sim/cli/cli.h"
#include "sim/experiment/pipeline.h"

static const char *const default_config = "experiments/quickstart.json";

static void usage(void)
{
    printf("usage: routesim run [CONFIG.json] [options]\n\n"
           "Runs every router of the config on every trace and measures every metric.\n"
           "Without CONFIG, runs %s (which generates its own trace).\n"
           "Traces with a \"generate\" block are generated first if missing.\n\n"
           "options:\n"
           "  --output DIR        write results here instead of the config's \"output\"\n"
           "  --threads N         OpenMP threads (default: the config's, else all cores)\n"
           "  --chunk-tokens N    tokens per chunk (default: from the memory budget)\n"
           "  --memory-mb MB      chunk buffer budget (default 64)\n"
           "  --skip-nonfinite    skip tokens with NaN/inf logits instead of failing\n"
           "  --device cpu|gpu    gpu: softmax and routing on an OpenMP offload device, the same\n"
           "                      results (a binary of make GPU=1; docs/gpu.md; default: the config's)\n"
           "  --bootstrap N       N bootstrap resamples over sequences: 95%% basic intervals\n"
           "  --by LIST           also every metric per domain and/or phase (domain, phase or\n"
           "                      domain,phase): rows keyed domain=NAME, phase=prefill|decode\n"
           "                      (rows with stat=ci_low / stat=ci_high; 0 = off)\n"
           "  --force             recompute runs whose results are stored in OUTPUT/runs, and let\n"
           "                      OUTPUT/results.csv and results.json replace files of another kind\n"
           "  --no-plots          skip the figures the config's \"plots\" asks for\n"
           "  --plot-format F     png (default), svg, pdf or a list such as pdf,png\n"
           "  --tokens N          generate traces of N tokens instead of the config's (a quick,\n"
           "                      scaled-down run; the trace file gets a -Ntok suffix)\n"
           "  --runs-per-pass N   route at most N runs per pass over a trace (0 = all in one)\n"
           "  --checkpoint-seconds S  save a pass's state every S seconds (default 30, 0 = not by time)\n"
           "  --checkpoint-chunks N   ... or every N chunks (default 0 = not by count)\n"
           "  --plugin FILE.so    load routers and metrics from a plugin (repeatable; also \"plugins\" in the config)\n"
           "  --no-progress       no progress bar\n"
           "  -q, --quiet         no table on stdout\n\n"
           "writes OUTPUT/results.csv (run,trace,router,params,metric,key,layer,value) and\n"
           "OUTPUT/results.json (the same rows plus the config, version and timings). Each\n"
           "finished run is also kept in OUTPUT/runs/: re-running the config skips them, and\n"
           "a pass killed midway resumes from its last checkpoint (OUTPUT/runs/*.ckpt).\n",
           default_config);
}

int rs_cmd_run(int argc, char **argv)
{
    if (rs_cli_wants_help(argc, argv)) {
        usage();
        return RS_EXIT_OK;
    }
    static const struct option options[] = {
        {"output", required_argument, NULL, 'o'},      {"threads", required_argument, NULL, 't'},
        {"chunk-tokens", required_argument, NULL, 'c'}, {"memory-mb", required_argument, NULL, 'm'},
        {"skip-nonfinite", no_argument, NULL, 's'},    {"no-progress", no_argument, NULL, 'P'},
        {"quiet", no_argument, NULL, 'q'},             {"plugin", required_argument, NULL, 'p'},
        {"bootstrap", required_argument, NULL, 'B'},   {"force", no_argument, NULL, 'f'},
        {"runs-per-pass", required_argument, NULL, 'R'}, {"tokens", required_argument, NULL, 'T'},
        {"no-plots", no_argument, NULL, 'N'},          {"plot-format", required_argument, NULL, 'F'},
        {"checkpoint-seconds", required_argument, NULL, 'S'}, {"checkpoint-chunks", required_argument, NULL, 'C'},
        {"by", required_argument, NULL, 'y'},          {"device", required_argument, NULL, 'D'},
        {NULL, 0, NULL, 0},
    };
    rs_pipeline_options opt;
    rs_pipeline_options_init(&opt, default_config);
    long long number = 0;
    int quiet = 0;
    optind = 1;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, "q", options, NULL)) != -1;) {
        switch (c) {
        case 'o': opt.output = optarg; break;
        case 't':
            if (rs_cli_parse_long("run", "--threads", optarg, 1, 4096, &number) != 0)
                return RS_EXIT_USAGE;
            opt.threads = (int)number;
            break;
        case 'c':
            if (rs_cli_parse_long("run", "--chunk-tokens", optarg, 1, 1 << 20, &number) != 0)
                return RS_EXIT_USAGE;
            opt.chunk_tokens = number;
            break;
        case 'm':
            if (rs_cli_parse_long("run", "--memory-mb", optarg, 1, 10000000, &number) != 0)
                return RS_EXIT_USAGE;
            opt.memory_mb = (double)number;
            break;
        case 's': opt.skip_nonfinite = 1; break;
        case 'f': opt.force = 1; break;
        case 'N': opt.plots = 0; break;
        case 'F': opt.plot_format = optarg; break;
        case 'T':
            if (rs_cli_parse_long("run", "--tokens", optarg, 1, 1000000000000LL, &opt.tokens) != 0)
                return RS_EXIT_USAGE;
            break;
        case 'R':
            if (rs_cli_parse_long("run", "--runs-per-pass", optarg, 0, 1000000, &number) != 0)
                return RS_EXIT_USAGE;
            opt.runs_per_pass = (int)number;
            break;
        case 'S':
            if (rs_cli_parse_long("run", "--checkpoint-seconds", optarg, 0, 1000000000, &number) != 0)
                return RS_EXIT_USAGE;
            opt.checkpoint_seconds = (double)number;
            break;
        case 'C':
            if (rs_cli_parse_long("run", "--checkpoint-chunks", optarg, 0, 1000000000, &number) != 0)
                return RS_EXIT_USAGE;
            opt.checkpoint_chunks = number;
            break;
        case 'B':
            if (rs_cli_parse_long("run", "--bootstrap", optarg, 0, 1000000, &number) != 0)
                return RS_EXIT_USAGE;
            opt.bootstrap = (int)number;
            break;
        case 'y':
            if (rs_cli_parse_breakdown("run", optarg, &opt.breakdown) != 0)
                return RS_EXIT_USAGE;
            break;
        case 'D':
            if (rs_cli_parse_device("run", optarg, &opt.device) != 0)
                return RS_EXIT_USAGE;
            break;
        case 'P': opt.progress = 0; break;
        case 'q': quiet = 1; break;
        case 'p': {
            rs_error perr = {{0}};
            if (rs_plugin_load(optarg, &perr) != 0)
                return rs_cli_fail(&perr);
            break;
        }
        default: return rs_cli_usage_error("run", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind > 1)
        return rs_cli_usage_error("run", "expected at most one config file");
    if (optind < argc)
        opt.config = argv[optind];
    opt.quiet = quiet;
    opt.table = quiet ? NULL : stdout;
    rs_pipeline_report report;
    rs_error err = {{0}};
    return rs_pipeline_run(&opt, &report, &err) == 0 ? RS_EXIT_OK : rs_cli_fail(&err);
}
