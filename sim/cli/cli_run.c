/* routesim run [CONFIG.json]: every router of the config on every trace,
 * results to OUTPUT/results.{csv,json} and a table on stdout. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/cli/cli.h"
#include "sim/config/config.h"
#include "sim/experiment/curves.h"
#include "sim/experiment/experiment.h"
#include "core/output_path.h"
#include "plots/plot.h"
#include "routers/plugins.h"
#include "core/progress.h"
#include "sim/experiment/run_meta.h"

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
           "  --bootstrap N       N bootstrap resamples over sequences: 95%% basic intervals\n"
           "                      (rows with stat=ci_low / stat=ci_high; 0 = off)\n"
           "  --force             recompute runs whose results are stored in OUTPUT/runs\n"
           "  --no-plots          skip the figures the config's \"plots\" asks for\n"
           "  --plot-format F     png (default), svg, pdf or a list such as pdf,png\n"
           "  --tokens N          generate traces of N tokens instead of the config's (a quick,\n"
           "                      scaled-down run; the trace file gets a -Ntok suffix)\n"
           "  --runs-per-pass N   route at most N runs per pass over a trace (0 = all in one)\n"
           "  --plugin FILE.so    load routers and metrics from a plugin (repeatable; also \"plugins\" in the config)\n"
           "  --no-progress       no progress bar\n"
           "  -q, --quiet         no table on stdout\n\n"
           "writes OUTPUT/results.csv (run,trace,router,params,metric,key,layer,value) and\n"
           "OUTPUT/results.json (the same rows plus the config, version and timings). Each\n"
           "finished run is also kept in OUTPUT/runs/: re-running the config skips them, so\n"
           "an interrupted sweep resumes.\n",
           default_config);
}

/* --tokens N: generated traces get N tokens and a path of their own
 * (results/x/mixtral.h5 -> results/x/mixtral-Ntok.h5), so a scaled-down
 * run never reuses or overwrites the full-size trace. */
static int scale_traces(rs_config *cfg, long long tokens, rs_error *err)
{
    for (int i = 0; i < cfg->num_traces; i++) {
        rs_trace_entry *te = &cfg->traces[i];
        if (!te->generate)
            continue;
        char text[32];
        snprintf(text, sizeof text, "%lld", tokens);
        RS_TRY(rs_params_set(&te->gen, "tokens", text, err));
        size_t len = strlen(te->path);
        const char *dot = len > 3 && strcmp(te->path + len - 3, ".h5") == 0 ? te->path + len - 3 : te->path + len;
        char *path = malloc(len + 40);
        RS_CHECK(path, err, "out of memory");
        snprintf(path, len + 40, "%.*s-%lldtok%s", (int)(dot - te->path), te->path, tokens, dot);
        free(te->path);
        te->path = path;
    }
    return 0;
}

/* The config after sweeps, seeds and defaults: every router as the spec
 * string that recreates it, every metric with all its parameters. */
static void add_expanded(cJSON *meta, const rs_config *cfg)
{
    cJSON *x = cJSON_AddObjectToObject(meta, "expanded");
    cJSON *routers = x ? cJSON_AddArrayToObject(x, "routers") : NULL;
    cJSON *metrics = x ? cJSON_AddArrayToObject(x, "metrics") : NULL;
    char text[2400];
    for (int r = 0; routers && r < cfg->num_routers; r++) {
        cJSON *o = cJSON_CreateObject();
        rs_router_spec_string(&cfg->routers[r], text, sizeof text);
        cJSON_AddStringToObject(o, "label", cfg->routers[r].label);
        cJSON_AddStringToObject(o, "spec", text);
        cJSON_AddNumberToObject(o, "entry", cfg->routers[r].entry);
        cJSON_AddItemToArray(routers, o);
    }
    for (int m = 0; metrics && m < cfg->num_metrics; m++) {
        cJSON *o = cJSON_CreateObject();
        rs_params_format(&cfg->metrics[m].params, ~0ULL, 0, ";", text, sizeof text);
        cJSON_AddStringToObject(o, "name", cfg->metrics[m].type->name);
        cJSON_AddStringToObject(o, "params", text);
        rs_metric_outputs_format(&cfg->metrics[m], text, sizeof text);
        if (text[0])
            cJSON_AddStringToObject(o, "outputs", text);
        cJSON_AddItemToArray(metrics, o);
    }
    if (cfg->reference) {
        rs_router_spec_string(cfg->reference, text, sizeof text);
        cJSON_AddStringToObject(x, "reference", text);
    }
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
        {NULL, 0, NULL, 0},
    };
    const char *output = NULL;
    long long threads = -1, chunk = -1, memory = -1, bootstrap = -1, runs_per_pass = -1, tokens = -1;
    int force = 0, no_plots = 0;
    const char *plot_format = NULL;
    int skip = 0, progress = -1, quiet = 0;
    optind = 1;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, "q", options, NULL)) != -1;) {
        switch (c) {
        case 'o': output = optarg; break;
        case 't':
            if (rs_cli_parse_long("run", "--threads", optarg, 1, 4096, &threads) != 0)
                return RS_EXIT_USAGE;
            break;
        case 'c':
            if (rs_cli_parse_long("run", "--chunk-tokens", optarg, 1, 1 << 20, &chunk) != 0)
                return RS_EXIT_USAGE;
            break;
        case 'm':
            if (rs_cli_parse_long("run", "--memory-mb", optarg, 1, 10000000, &memory) != 0)
                return RS_EXIT_USAGE;
            break;
        case 's': skip = 1; break;
        case 'f': force = 1; break;
        case 'N': no_plots = 1; break;
        case 'F': plot_format = optarg; break;
        case 'T':
            if (rs_cli_parse_long("run", "--tokens", optarg, 1, 1000000000000LL, &tokens) != 0)
                return RS_EXIT_USAGE;
            break;
        case 'R':
            if (rs_cli_parse_long("run", "--runs-per-pass", optarg, 0, 1000000, &runs_per_pass) != 0)
                return RS_EXIT_USAGE;
            break;
        case 'B':
            if (rs_cli_parse_long("run", "--bootstrap", optarg, 0, 1000000, &bootstrap) != 0)
                return RS_EXIT_USAGE;
            break;
        case 'P': progress = 0; break;
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
    const char *config_path = optind < argc ? argv[optind] : default_config;

    rs_error err = {{0}};
    rs_config cfg;
    if (rs_config_load(&cfg, config_path, &err) != 0) {
        rs_config_free(&cfg);
        return rs_cli_fail(&err);
    }
    if (output) {
        free(cfg.output);
        cfg.output = strdup(output);
    }
    if (tokens > 0 && scale_traces(&cfg, tokens, &err) != 0) {
        rs_config_free(&cfg);
        return rs_cli_fail(&err);
    }
    rs_experiment_options xo = {
        .engine =
            {
                .threads = threads > 0 ? (int)threads : cfg.threads,
                .chunk_tokens = chunk > 0 ? chunk : cfg.chunk_tokens,
                .memory_budget = (size_t)((memory > 0 ? (double)memory : cfg.memory_mb) * (1 << 20)),
                .batch_tokens = cfg.batch_tokens,
                .skip_nonfinite = skip || cfg.skip_nonfinite,
                .progress = progress,
                .bootstrap = bootstrap >= 0 ? (int)bootstrap : cfg.bootstrap,
                .bootstrap_blocks = cfg.bootstrap_blocks,
                .bootstrap_level = cfg.bootstrap_level,
                .bootstrap_seed = cfg.bootstrap_seed,
            },
        .force = force,
        .runs_per_pass = runs_per_pass >= 0 ? (int)runs_per_pass : cfg.runs_per_pass,
        .progress = progress,
    };
    int rc = cfg.output ? rs_make_dirs(cfg.output, &err) : rs_fail(&err, "out of memory");
    double wall_start = rs_now();
    cJSON *meta = rc == 0 ? rs_run_meta_new(cfg.name, rs_epoch_now()) : NULL;
    if (rc == 0 && meta) {
        cJSON_AddItemToObject(meta, "config", cJSON_Duplicate(cfg.json, 1));
        add_expanded(meta, &cfg);
    }
    rs_results results;
    rs_results_init(&results);
    int threads_used = 0;
    if (rc == 0)
        rc = rs_experiment_run(&cfg, &xo, &results, meta, &threads_used, &err);
    if (rc == 0) /* curve.* rows of swept query routers, once every run is in */
        rc = rs_curves_add(&results, &cfg, &err);
    if (rc == 0) {
        char csv[4096], json[4096];
        snprintf(csv, sizeof csv, "%s/results.csv", cfg.output);
        snprintf(json, sizeof json, "%s/results.json", cfg.output);
        rs_run_meta_finish(meta, rs_now() - wall_start, threads_used);
        rc = rs_results_write_csv(&results, csv, &err);
        if (rc == 0) {
            rc = rs_results_write_json(&results, meta, json, &err);
            meta = NULL;
            if (rc != 0)
                remove(csv); /* no partial result set */
        }
        if (rc == 0) {
            if (!quiet)
                rs_results_print_table(&results, stdout);
            fprintf(stderr, "routesim: wrote %s and %s\n", csv, json);
        }
        /* the figures the config asks for, from the files just written */
        if (rc == 0 && !no_plots)
            rc = rs_plot_results(cfg.output, cJSON_GetObjectItemCaseSensitive(cfg.json, "plots"), plot_format, quiet,
                                 &err);
    }
    cJSON_Delete(meta);
    rs_results_free(&results);
    rs_config_free(&cfg);
    return rc == 0 ? RS_EXIT_OK : rs_cli_fail(&err);
}
