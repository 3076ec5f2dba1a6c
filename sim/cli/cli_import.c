/* routesim import FORMAT ...: converts routing logs written by other tools
 * into traces. Each format is one row of the table below. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "sim/cli/cli.h"
#include "workloads/import/import_jsonl.h"
#include "workloads/import/import_routellm.h"
#include "workloads/import/import_routerbench.h"

static int import_jsonl(int argc, char **argv);
static int import_routellm(int argc, char **argv);
static int import_routerbench(int argc, char **argv);

static const rs_command formats[] = {
    {"jsonl", "JSON lines, one object per (token, layer), as vLLM / HF forward hooks log them", import_jsonl},
    {"routellm", "per-question correctness CSV, a column per model (RouteLLM evals): a unit = query trace",
     import_routellm},
    {"routerbench", "wide CSV, a row per prompt: <model> quality and <model>|total_cost columns (RouterBench)",
     import_routerbench},
};
enum { NUM_FORMATS = sizeof formats / sizeof formats[0] };

static void usage(void)
{
    printf("usage: routesim import FORMAT INPUT -o TRACE.h5 [options]\n\n"
           "Converts routing logs written by other tools into a routesim trace.\n\nformats:\n");
    for (int i = 0; i < NUM_FORMATS; i++)
        printf("  %-10s %s\n", formats[i].name, formats[i].summary);
    printf("\n'routesim import FORMAT --help' describes one format and its options.\n");
}

int rs_cmd_import(int argc, char **argv)
{
    for (int i = 0; argc >= 2 && i < NUM_FORMATS; i++)
        if (strcmp(argv[1], formats[i].name) == 0)
            return formats[i].run(argc - 1, argv + 1);
    if (rs_cli_wants_help(argc, argv)) {
        usage();
        return RS_EXIT_OK;
    }
    char names[256] = "";
    for (int i = 0; i < NUM_FORMATS; i++)
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "", formats[i].name);
    if (argc < 2)
        return rs_cli_usage_error("import", "expected a format (%s)", names);
    return rs_cli_usage_error("import", "unknown format '%s' (formats: %s)", argv[1], names);
}

/* ---- jsonl ------------------------------------------------------------- */

static void jsonl_usage(void)
{
    printf("usage: routesim import jsonl INPUT -o TRACE.h5 --experts E [--map FIELD=KEY,...] [options]\n\n"
           "Converts a JSON-lines routing log into a top-k-only trace (/router/topk_ids). Each\n"
           "line is one JSON object for one (token, layer) pair; rows may come in any order.\n"
           "INPUT may be gzip-compressed; '-' reads standard input.\n\n"
           "fields (FIELD=KEY in --map; KEY may be a dotted path such as meta.layer):\n"
           "  seq       sequence id, an integer or a string (default key: seq)\n"
           "  token     position of the token in its sequence, from 0 (default key: token)\n"
           "  layer     MoE layer, the model's own index; the distinct values, ascending,\n"
           "            become layers 0..L-1 and are kept in attribute layer_index (default key: layer)\n"
           "  experts   array of expert ids in [0, E) (default key: experts)\n"
           "  weights   array of combine weights, one per expert (read only when mapped)\n"
           "  token_id  vocabulary id of the token, stored in /tokens/ids (read only when mapped)\n"
           "A mapped key must be present on every line.\n\n"
           "layout:\n"
           "  Sequences are ordered by id (numerically when every id is an integer, otherwise\n"
           "  by first appearance); a sequence's length is its largest position + 1. K is the\n"
           "  longest experts list; shorter lists are padded with -1 (weight 0). A (token, layer)\n"
           "  pair with no row is stored as a -1 row and reported, or refused with --strict.\n"
           "  Two rows for the same (seq, token, layer) are an error.\n\n"
           "options:\n"
           "  -o, --out FILE     the trace to write (required; written atomically)\n"
           "  --experts E        routed experts per layer (required)\n"
           "  --map SPEC         FIELD=KEY,... overriding the default keys (may be repeated)\n"
           "  --strict           fail when any (token, layer) pair has no row\n"
           "  --model NAME       root attribute model\n"
           "  --top-k K          root attribute top_k (the model's own k)\n"
           "  --gzip LEVEL       compress the datasets with gzip LEVEL 1-9 (default 0: none)\n\n"
           "example:\n"
           "  routesim import jsonl hooks.jsonl.gz -o mixtral.h5 --experts 8 --top-k 2 \\\n"
           "      --map seq=request_id,token=pos,layer=meta.layer,experts=topk_ids,weights=topk_weights\n");
}

static int run_end(const rs_import_jsonl_report *r, int i)
{
    while (i + 1 < r->num_layers && r->layer_index[i + 1] == r->layer_index[i] + 1)
        i++;
    return i;
}

/* Runs of consecutive values joined ("0-31"); a long list keeps its first
 * ten runs and its last ("1, 3, 5, ..., 61"). */
static void format_layers(const rs_import_jsonl_report *r, char *out, size_t size)
{
    int runs = 0;
    for (int i = 0; i < r->num_layers; i = run_end(r, i) + 1)
        runs++;
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0, j = 0; i < r->num_layers && used < size; i = run_end(r, i) + 1, j++) {
        if (runs > 12 && j >= 10 && j < runs - 1)
            continue;
        const char *sep = j == 0 ? "" : runs > 12 && j == runs - 1 ? ", ..., " : ", ";
        int first = r->layer_index[i], last = r->layer_index[run_end(r, i)];
        used += (size_t)(first == last ? snprintf(out + used, size - used, "%s%d", sep, first)
                                       : snprintf(out + used, size - used, "%s%d-%d", sep, first, last));
    }
}

static void print_report(const rs_import_jsonl_options *opt, const rs_import_jsonl_report *r)
{
    char layers[512];
    format_layers(r, layers, sizeof layers);
    fprintf(stderr,
            "routesim: imported %lld rows from %s into %s: %lld sequences, %lld tokens, %d layers "
            "(logged as %s), K = %d%s%s; ",
            (long long)r->rows, strcmp(opt->input, "-") == 0 ? "<stdin>" : opt->input, opt->output,
            (long long)r->sequences, (long long)r->tokens, r->num_layers, layers, r->k,
            r->has_weights ? ", with weights" : "", r->has_token_ids ? ", with token ids" : "");
    fprintf(stderr, "missing (token, layer) pairs: %lld", (long long)r->missing_pairs);
    if (r->missing_pairs == 0) {
        fprintf(stderr, ".\n");
        return;
    }
    fprintf(stderr, ", stored as -1 rows (");
    for (int i = 0; i < r->num_missing_samples; i++)
        fprintf(stderr, "%sseq %s token %lld layer %d", i ? "; " : "", r->missing_samples[i].seq,
                (long long)r->missing_samples[i].token, r->missing_samples[i].layer);
    fprintf(stderr, "%s).\n", r->missing_pairs > r->num_missing_samples ? "; ..." : "");
}

static int import_jsonl(int argc, char **argv)
{
    const char *command = "import jsonl";
    if (rs_cli_wants_help(argc, argv)) {
        jsonl_usage();
        return RS_EXIT_OK;
    }
    static const struct option options[] = {
        {"out", required_argument, NULL, 'o'},   {"experts", required_argument, NULL, 'E'},
        {"map", required_argument, NULL, 'M'},   {"strict", no_argument, NULL, 'S'},
        {"model", required_argument, NULL, 'm'}, {"top-k", required_argument, NULL, 'k'},
        {"gzip", required_argument, NULL, 'z'},  {NULL, 0, NULL, 0},
    };
    rs_import_jsonl_options opt;
    rs_import_jsonl_options_init(&opt);
    long long experts = 0, top_k = 0, gzip = 0;
    rs_error err = {{0}};
    optind = 1;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, "o:", options, NULL)) != -1;) {
        int bad = 0;
        switch (c) {
        case 'o': opt.output = optarg; break;
        case 'E': bad = rs_cli_parse_long(command, "--experts", optarg, 1, 1 << 24, &experts); break;
        case 'M':
            if (rs_jsonl_key_map_parse(&opt.map, optarg, &err) != 0)
                return rs_cli_usage_error(command, "%s", err.msg);
            break;
        case 'S': opt.strict = 1; break;
        case 'm': opt.model = optarg; break;
        case 'k': bad = rs_cli_parse_long(command, "--top-k", optarg, 1, 1 << 24, &top_k); break;
        case 'z': bad = rs_cli_parse_long(command, "--gzip", optarg, 0, 9, &gzip); break;
        default: return rs_cli_usage_error(command, "unknown option or missing value '%s'", argv[optind - 1]);
        }
        if (bad)
            return RS_EXIT_USAGE;
    }
    if (argc - optind != 1)
        return rs_cli_usage_error(command, "expected one input file ('-' for standard input)");
    if (!opt.output)
        return rs_cli_usage_error(command, "-o TRACE.h5 is required");
    if (experts == 0)
        return rs_cli_usage_error(command, "--experts E is required");
    opt.input = argv[optind];
    opt.num_experts = (int)experts;
    opt.top_k = (int)top_k;
    opt.gzip_level = (int)gzip;

    rs_import_jsonl_report report;
    if (rs_import_jsonl(&opt, &report, &err) != 0)
        return rs_cli_fail(&err);
    print_report(&opt, &report);
    rs_import_jsonl_report_free(&report);
    return RS_EXIT_OK;
}

/* ---- routellm / routerbench ---------------------------------------------- */

static void print_query_report(const char *format, const char *input, const char *output,
                               const rs_import_query_report *r)
{
    fprintf(stderr, "routesim: imported %lld rows from %s into %s (%s): %lld queries", (long long)r->rows,
            strcmp(input, "-") == 0 ? "<stdin>" : input, output, format, (long long)r->queries);
    if (r->dropped)
        fprintf(stderr, " (%lld contaminated rows dropped)", (long long)r->dropped);
    fprintf(stderr, ", %d models, %d domains", r->num_models, r->num_domains);
    if (r->unscored)
        fprintf(stderr, ", %lld queries no model was evaluated on (left out of outcome metrics)",
                (long long)r->unscored);
    fprintf(stderr, "; mean quality:");
    for (int e = 0; e < r->num_models && e < 64; e++)
        fprintf(stderr, " %.5f", r->quality[e]);
    fprintf(stderr, "; per-query oracle %.5f\n", r->oracle);
}

static void routellm_usage(void)
{
    printf("usage: routesim import routellm INPUT.csv -o TRACE.h5 [--models A,B] [--decontaminate]\n"
           "                                [--cost A=PRICE,B=PRICE] [--domain-column NAME|none] [--gzip LEVEL]\n\n"
           "Converts a RouteLLM-style per-question correctness table (one row per question, one\n"
           "column per model holding 1/0, true/false or a score; empty = not evaluated) into a\n"
           "unit = query trace: /outcome/quality [T, E], the models as expert_names, every\n"
           "question its own sequence in file order, its domain in /sequences/domain.\n"
           "INPUT may be gzip-compressed; '-' reads standard input.\n\n"
           "options:\n"
           "  -o, --out FILE         the trace to write (required; written atomically)\n"
           "  --models A,B           the model columns, in this order (default: every column but\n"
           "                         subject, row, contaminated, prompt, question, id and the domain column)\n"
           "  --decontaminate        drop rows whose 'contaminated' column is 1 / true (RouteLLM's benchmarks)\n"
           "  --cost A=P,B=P         cost of one call to each model (e.g. USD per million output tokens):\n"
           "                         /outcome/cost [E]; every model needs a price. Default: no cost\n"
           "  --domain-column NAME   the domain of each question (default: 'subject' when present; 'none')\n"
           "  --gzip LEVEL           compress the datasets with gzip LEVEL 1-9 (default 0: none)\n\n"
           "example (../shared/data/routellm, list prices per million output tokens):\n"
           "  routesim import routellm mmlu.csv -o mmlu.h5 --decontaminate \\\n"
           "      --cost mixtral_8x7b_instruct=0.6,gpt_4_1106_preview=30\n");
}

static int import_routellm(int argc, char **argv)
{
    const char *command = "import routellm";
    if (rs_cli_wants_help(argc, argv)) {
        routellm_usage();
        return RS_EXIT_OK;
    }
    static const struct option options[] = {
        {"out", required_argument, NULL, 'o'},           {"models", required_argument, NULL, 'M'},
        {"decontaminate", no_argument, NULL, 'D'},       {"cost", required_argument, NULL, 'c'},
        {"domain-column", required_argument, NULL, 'd'}, {"gzip", required_argument, NULL, 'z'},
        {NULL, 0, NULL, 0},
    };
    rs_import_routellm_options opt = {0};
    long long gzip = 0;
    optind = 1;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, "o:", options, NULL)) != -1;) {
        switch (c) {
        case 'o': opt.output = optarg; break;
        case 'M': opt.models = optarg; break;
        case 'D': opt.decontaminate = 1; break;
        case 'c': opt.cost = optarg; break;
        case 'd': opt.domain_column = strcmp(optarg, "none") == 0 ? "" : optarg; break;
        case 'z':
            if (rs_cli_parse_long(command, "--gzip", optarg, 0, 9, &gzip) != 0)
                return RS_EXIT_USAGE;
            break;
        default: return rs_cli_usage_error(command, "unknown option or missing value '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 1)
        return rs_cli_usage_error(command, "expected one input file ('-' for standard input)");
    if (!opt.output)
        return rs_cli_usage_error(command, "-o TRACE.h5 is required");
    opt.input = argv[optind];
    opt.gzip_level = (int)gzip;
    rs_import_query_report report;
    rs_error err = {{0}};
    if (rs_import_routellm(&opt, &report, &err) != 0)
        return rs_cli_fail(&err);
    print_query_report("routellm", opt.input, opt.output, &report);
    return RS_EXIT_OK;
}

static void routerbench_usage(void)
{
    printf("usage: routesim import routerbench INPUT.csv -o TRACE.h5 [--models A,B] [--gzip LEVEL]\n\n"
           "Converts a RouterBench wide table (one row per prompt; per model a column '<model>'\n"
           "with its quality and '<model>|total_cost' with the cost of that call; empty cells =\n"
           "not evaluated; 'eval_name' = the benchmark) into a unit = query trace:\n"
           "/outcome/quality and /outcome/cost [T, E], every prompt its own sequence in file\n"
           "order, eval_name in /sequences/domain. Other columns (prompt, responses, oracle\n"
           "columns) are ignored. Export RouterBench's pickle with pandas' to_csv first.\n"
           "INPUT may be gzip-compressed; '-' reads standard input.\n\n"
           "options:\n"
           "  -o, --out FILE     the trace to write (required; written atomically)\n"
           "  --models A,B       a subset of the models, in this order (default: all, in column order)\n"
           "  --gzip LEVEL       compress the datasets with gzip LEVEL 1-9 (default 0: none)\n");
}

static int import_routerbench(int argc, char **argv)
{
    const char *command = "import routerbench";
    if (rs_cli_wants_help(argc, argv)) {
        routerbench_usage();
        return RS_EXIT_OK;
    }
    static const struct option options[] = {
        {"out", required_argument, NULL, 'o'},
        {"models", required_argument, NULL, 'M'},
        {"gzip", required_argument, NULL, 'z'},
        {NULL, 0, NULL, 0},
    };
    rs_import_routerbench_options opt = {0};
    long long gzip = 0;
    optind = 1;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, "o:", options, NULL)) != -1;) {
        switch (c) {
        case 'o': opt.output = optarg; break;
        case 'M': opt.models = optarg; break;
        case 'z':
            if (rs_cli_parse_long(command, "--gzip", optarg, 0, 9, &gzip) != 0)
                return RS_EXIT_USAGE;
            break;
        default: return rs_cli_usage_error(command, "unknown option or missing value '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 1)
        return rs_cli_usage_error(command, "expected one input file ('-' for standard input)");
    if (!opt.output)
        return rs_cli_usage_error(command, "-o TRACE.h5 is required");
    opt.input = argv[optind];
    opt.gzip_level = (int)gzip;
    rs_import_query_report report;
    rs_error err = {{0}};
    if (rs_import_routerbench(&opt, &report, &err) != 0)
        return rs_cli_fail(&err);
    print_query_report("routerbench", opt.input, opt.output, &report);
    return RS_EXIT_OK;
}
