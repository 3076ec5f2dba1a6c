/* routesim route TRACE --router SPEC [--out DECISIONS.h5]: one router over
 * one trace; decisions to a file, metrics to a table. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/cli/cli.h"
#include "sim/engine/engine.h"
#include "core/output_path.h"
#include "routers/plugins.h"
#include "workloads/trace/trace.h"

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
           "                      with logits, else load; 'none' for no metrics\n"
           "  --csv FILE          also write the metric rows as results.csv does\n"
           "  --reference SPEC    the router agreement metrics compare with (e.g. topk:k=2)\n"
           "  --reference-trace F route the reference on F, a paired trace with the same tokens\n"
           "                      (another checkpoint), instead of on TRACE\n"
           "  --batch-tokens N    batch size for maxvio_batch and batch-grouped routers (default 4096)\n"
           "  --threads N         OpenMP threads (default: all cores)\n"
           "  --chunk-tokens N    tokens per chunk (default: from the memory budget)\n"
           "  --memory-mb MB      chunk buffer budget (default 64)\n"
           "  --skip-nonfinite    skip tokens with NaN/inf logits instead of failing\n"
           "  --plugin FILE.so    load routers and metrics from a plugin (repeatable)\n"
           "  --no-progress       no progress bar\n");
}

static int parse_metrics(const char *list, const rs_trace_info *info, rs_metric_spec *specs, int *count,
                         rs_error *err)
{
    *count = 0;
    if (!list)
        list = info->has_quality ? "outcome" : info->has_logits ? "load,entropy" : "load";
    if (strcmp(list, "none") == 0)
        return 0;
    char *copy = strdup(list);
    RS_CHECK(copy, err, "out of memory");
    char *save = NULL;
    int rc = 0;
    for (char *name = strtok_r(copy, ",", &save); name && rc == 0; name = strtok_r(NULL, ",", &save)) {
        /* FAMILY keeps every output, FAMILY.OUTPUT adds one output */
        char *output = strchr(name, '.');
        if (output)
            *output++ = '\0';
        int i = 0;
        while (i < *count && strcmp(specs[i].type->name, name) != 0)
            i++;
        if (i == *count) {
            if (*count == 16) {
                rc = rs_fail(err, "--metrics: at most 16 families");
                break;
            }
            if ((rc = rs_metric_spec_init(&specs[i], name, "--metrics: ", err)) != 0)
                break;
            (*count)++;
            specs[i].outputs = output ? ~0ULL : 0; /* ~0: outputs being collected */
        }
        if (!output) {
            specs[i].outputs = 0;
            continue;
        }
        int o = rs_metric_output_index(specs[i].type, output);
        if (o < 0 || o >= 64) {
            char known[2048];
            rs_metric_output_names(specs[i].type, known, sizeof known);
            rc = rs_fail(err, "--metrics: metric %s has no output '%s' (outputs: %s)", name, output, known);
            break;
        }
        if (specs[i].outputs)
            specs[i].outputs = (specs[i].outputs == ~0ULL ? 0 : specs[i].outputs) | (1ULL << o);
    }
    free(copy);
    return rc;
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
        {"reference-trace", required_argument, NULL, 'T'}, {NULL, 0, NULL, 0},
    };
    const char *router = NULL, *out = NULL, *metrics = NULL, *csv = NULL, *reference = NULL, *reference_path = NULL;
    long long batch = 4096, threads = 0, chunk = 0, memory = 0;
    int skip = 0, progress = -1;
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
        case 's': skip = 1; break;
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
    const char *trace_path = argv[optind];

    rs_error err = {{0}};
    rs_router_spec spec, ref_spec;
    if (rs_router_spec_parse(&spec, router, &err) != 0)
        return rs_cli_fail(&err);
    if (reference && rs_router_spec_parse(&ref_spec, reference, &err) != 0) {
        rs_router_spec_free(&spec);
        return rs_cli_fail(&err);
    }
    rs_trace *trace = NULL, *ref_trace = NULL;
    rs_metric_spec mspecs[16];
    int nmetrics = 0;
    rs_decisions_writer *writer = NULL;
    rs_results results;
    rs_results_init(&results);
    int rc = rs_trace_open(&trace, trace_path, &err);
    if (rc == 0 && reference_path)
        rc = rs_trace_open(&ref_trace, reference_path, &err);
    if (rc == 0)
        rc = parse_metrics(metrics, rs_trace_get_info(trace), mspecs, &nmetrics, &err);
    if (rc == 0 && csv)
        rc = rs_make_parent_dirs(csv, &err);
    rs_engine_options opt = {.threads = (int)threads,
                             .chunk_tokens = chunk,
                             .memory_budget = (size_t)memory << 20,
                             .batch_tokens = (int)batch,
                             .skip_nonfinite = skip,
                             .progress = progress,
                             .progress_label = trace_path,
                             .reference = reference ? &ref_spec : NULL,
                             .reference_trace = ref_trace};
    rs_engine *engine = NULL;
    if (rc == 0)
        rc = rs_engine_create(&engine, trace, &spec, 1, mspecs, nmetrics, &opt, &results, &err);
    if (rc == 0 && out) {
        char text[2400];
        rs_router_spec_string(&spec, text, sizeof text);
        rc = rs_decisions_writer_create(&writer, out, rs_trace_get_info(trace)->num_layers,
                                        rs_engine_router_kmax(engine, 0), text, trace_path, &err);
    }
    rs_engine_stats stats = {0};
    if (rc == 0)
        rc = rs_engine_run(engine, writer, &stats, &err);
    rs_engine_destroy(engine);
    if (writer) {
        if (rc == 0)
            rc = rs_decisions_writer_finish(writer, &err);
        else
            rs_decisions_writer_abort(writer);
    }
    if (rc == 0 && csv)
        rc = rs_results_write_csv(&results, csv, &err);
    if (rc == 0) {
        if (stats.skipped_tokens)
            fprintf(stderr, "routesim: skipped %lld tokens with non-finite logits\n", (long long)stats.skipped_tokens);
        if (nmetrics > 0)
            rs_results_print_table(&results, stdout);
        if (out)
            fprintf(stderr, "routesim: wrote %s\n", out);
    }
    for (int i = 0; i < nmetrics; i++)
        rs_metric_spec_free(&mspecs[i]);
    rs_results_free(&results);
    rs_trace_close(trace);
    rs_trace_close(ref_trace);
    rs_router_spec_free(&spec);
    if (reference)
        rs_router_spec_free(&ref_spec);
    return rc == 0 ? RS_EXIT_OK : rs_cli_fail(&err);
}
