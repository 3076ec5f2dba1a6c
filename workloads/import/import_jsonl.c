/* The JSON-lines importer: its options, the run of its stages (the files
 * import_jsonl_*.c, see import_jsonl_internal.h) and its report. */
#include "workloads/import/import_jsonl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workloads/import/import_jsonl_internal.h"
#include "workloads/import/importer.h"

void rs_import_jsonl_options_init(rs_import_jsonl_options *opt)
{
    memset(opt, 0, sizeof *opt);
    rs_jsonl_key_map_defaults(&opt->map);
    opt->norm_topk = -1;
}

/* ---- entry point ---------------------------------------------------------- */

int rs_import_jsonl(const rs_import_jsonl_options *opt, rs_import_jsonl_report *report, rs_error *err)
{
    memset(report, 0, sizeof *report);
    RS_CHECK(opt->input && opt->output, err, "import jsonl: input and output paths are required");
    RS_CHECK(opt->num_experts >= 1, err, "import jsonl: --experts must be at least 1");
    RS_CHECK(opt->gzip_level >= 0 && opt->gzip_level <= 9, err, "import jsonl: --gzip must be in [0, 9]");
    RS_CHECK(opt->top_k <= opt->num_experts, err, "import jsonl: --top-k %d exceeds --experts %d", opt->top_k,
             opt->num_experts);
    RS_TRY(rs_jsonl_key_map_check(&opt->map, "import jsonl: ", err));
    RS_CHECK(!opt->pad_gaps || !opt->map.logits[0], err,
             "import jsonl: --pad-gaps with --map logits=%s: logits cannot be padded", opt->map.logits);
    import_state st = {.opt = opt, .all_numeric = 1, .composite_seq = strchr(opt->map.seq, '+') != NULL};
    st.label = strcmp(opt->input, "-") == 0 ? "<stdin>" : opt->input;
    report->has_weights = opt->map.weights[0] != '\0';
    report->has_token_ids = opt->map.token_id[0] != '\0';
    report->has_logits = opt->map.logits[0] != '\0';

    int rc = rs_jsonl_read_log(&st, err);
    if (rc == 0 && st.num_rows == 0)
        rc = rs_fail(err, "%s: no rows (the input is empty)", st.label);
    if (rc == 0 && opt->map.experts[0] && st.k == 0)
        rc = rs_fail(err, "%s: %s: every experts list is empty", st.label, opt->map.experts);
    if (rc == 0)
        rc = rs_jsonl_order_rows(&st, err);
    if (rc == 0)
        rc = rs_jsonl_check_gaps(&st, report, err);
    if (rc == 0)
        rc = rs_jsonl_write_trace(&st, report, err);
    if (rc == 0) {
        report->rows = st.num_rows;
        report->sequences = st.num_seqs;
        for (int64_t s = 0; s < st.num_seqs; s++)
            report->tokens += st.seqs[s].max_position + 1;
        report->num_layers = (int)st.num_layers;
        report->layer_index = st.layers;
        report->k = st.k;
        report->num_domains = st.num_domains;
        st.layers = NULL;
    } else {
        memset(report, 0, sizeof *report);
    }
    rs_jsonl_free_log(&st);
    return rc;
}

void rs_import_jsonl_report_free(rs_import_jsonl_report *report)
{
    free(report->layer_index);
    report->layer_index = NULL;
}

/* ---- the importer: options, run, report ------------------------------- */

static const rs_param_def jsonl_options[] = {
    {"experts", RS_PARAM_INT, NULL, 1, 1 << 24, NULL, "routed experts per layer (required)"},
    {"map", RS_PARAM_STRING, NULL, 0, 0, NULL, "FIELD=KEY,... overriding the default keys (may be repeated)"},
    {"strict", RS_PARAM_BOOL, "0", 0, 1, NULL, "fail when any (token, layer) pair has no row"},
    {"pad_gaps", RS_PARAM_BOOL, "0", 0, 1, NULL,
     "store tokens that have no row at all (positions a sequence skips) as -1 rows; default: such a gap is an error"},
    {"model", RS_PARAM_STRING, NULL, 0, 0, NULL, "root attribute model"},
    {"top_k", RS_PARAM_INT, NULL, 1, 1 << 24, NULL, "root attribute top_k (the model's own k)"},
    {"scoring", RS_PARAM_ENUM, NULL, 0, 0, "softmax|sigmoid|sqrt_softplus",
     "root attribute scoring (the model's score function; with --top-k, --norm-topk and logits, router native runs "
     "the model's rule)"},
    {"norm_topk", RS_PARAM_INT, NULL, 0, 1, NULL, "root attribute norm_topk: 1 if the model renormalises its top-k "
     "weights, else 0"},
    {"gzip", RS_PARAM_INT, "0", 0, 9, NULL, "compress the datasets with gzip LEVEL 1-9 (default 0: none)"},
};
static const rs_import_option_form jsonl_forms[] = {
    {"E", RS_IMPORT_REQUIRED}, {"SPEC", RS_IMPORT_REPEATABLE}, {NULL, 0}, {NULL, 0}, {"NAME", 0}, {"K", 0},
    {"NAME", 0}, {"0|1", 0}, {"LEVEL", 0},
};
_Static_assert(sizeof jsonl_forms / sizeof jsonl_forms[0] == sizeof jsonl_options / sizeof jsonl_options[0],
               "one form per option");

static int options_from_params(const rs_params *p, rs_import_jsonl_options *opt, rs_error *err)
{
    rs_import_jsonl_options_init(opt);
    const char *map = rs_param_str(p, "map");
    if (map)
        RS_TRY(rs_jsonl_key_map_parse(&opt->map, map, err));
    opt->num_experts = (int)rs_param_int(p, "experts");
    opt->strict = rs_param_bool(p, "strict");
    opt->pad_gaps = rs_param_bool(p, "pad_gaps");
    opt->model = rs_param_str(p, "model");
    opt->top_k = (int)rs_param_int(p, "top_k");
    opt->scoring = rs_param_str(p, "scoring");
    opt->norm_topk = rs_param_is_set(p, "norm_topk") ? (int)rs_param_int(p, "norm_topk") : -1;
    opt->gzip_level = (int)rs_param_int(p, "gzip");
    return 0;
}

static int jsonl_check(const rs_params *p, rs_error *err)
{
    rs_import_jsonl_options opt;
    RS_TRY(options_from_params(p, &opt, err));
    RS_CHECK(opt.top_k <= opt.num_experts, err, "--top-k %d exceeds --experts %d (the model's k is at most E)",
             opt.top_k, opt.num_experts);
    RS_CHECK(!opt.pad_gaps || !opt.map.logits[0], err,
             "--pad-gaps with --map logits=%s: logits cannot be padded (every token needs its rows)", opt.map.logits);
    return 0;
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
            "routesim: imported %lld rows from %s into %s: %lld sequence%s, %lld token%s, %d layer%s "
            "(logged as %s)",
            (long long)r->rows, strcmp(opt->input, "-") == 0 ? "<stdin>" : opt->input, opt->output,
            (long long)r->sequences, r->sequences == 1 ? "" : "s", (long long)r->tokens, r->tokens == 1 ? "" : "s",
            r->num_layers, r->num_layers == 1 ? "" : "s", layers);
    if (r->k)
        fprintf(stderr, ", K = %d", r->k);
    fprintf(stderr, "%s%s%s", r->has_weights ? ", with weights" : "", r->has_token_ids ? ", with token ids" : "",
            r->has_logits ? ", with logits" : "");
    if (r->num_domains)
        fprintf(stderr, ", %d domain%s", r->num_domains, r->num_domains == 1 ? "" : "s");
    fprintf(stderr, "; ");
    if (r->gap_tokens)
        fprintf(stderr, "tokens with no row (--pad-gaps): %lld; ", (long long)r->gap_tokens);
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

static int jsonl_run(const rs_import_job *job, rs_error *err)
{
    rs_import_jsonl_options opt;
    RS_TRY(options_from_params(job->options, &opt, err));
    opt.input = job->input;
    opt.output = job->output;
    opt.limit = job->limit;
    rs_import_jsonl_report report;
    RS_TRY(rs_import_jsonl(&opt, &report, err));
    if (!job->quiet)
        print_report(&opt, &report);
    rs_import_jsonl_report_free(&report);
    return 0;
}

static const rs_importer_type jsonl_type = {
    .name = "jsonl",
    .summary = "JSON lines, one object per (token, layer), as vLLM / HF forward hooks log them",
    .input = "the JSON-lines log",
    .help =
        "Converts a JSON-lines routing log into a trace of the recorded experts\n"
        "(/router/topk_ids) and, when a logits key is mapped, the full router logits\n"
        "(/router/logits). Each line is one JSON object for one (token, layer) pair; rows\n"
        "may come in any order.\n"
        "INPUT may be gzip-compressed; '-' reads standard input.\n\n"
        "fields (FIELD=KEY in --map; KEY may be a dotted path such as meta.layer):\n"
        "  seq       sequence id, an integer or a string (default key: seq); keys joined by '+'\n"
        "            (seq=dataset+problem_id) make the tuple of their values the id\n"
        "  token     position of the token in its sequence, from 0 (default key: token)\n"
        "  layer     MoE layer, the model's own index; the distinct values, ascending,\n"
        "            become layers 0..L-1 and are kept in attribute layer_index (default key: layer)\n"
        "  experts   array of expert ids in [0, E) (default key: experts; experts= reads none,\n"
        "            allowed when logits are mapped)\n"
        "  weights   array of combine weights, one per expert (read only when mapped)\n"
        "  token_id  vocabulary id of the token, stored in /tokens/ids (read only when mapped)\n"
        "  logits    array of E router logits, stored in /router/logits (read only when mapped;\n"
        "            every (token, layer) pair then needs a row)\n"
        "  domain    the sequence's domain, a string or an integer, the same on every row of a\n"
        "            sequence; stored in /sequences/domain with the labels as its names\n"
        "A mapped key must be present on every line.\n\n"
        "layout:\n"
        "  Sequences are ordered by id (numerically when every id is an integer, otherwise\n"
        "  by first appearance); a sequence's length is its largest position + 1. K is the\n"
        "  longest experts list; shorter lists are padded with -1 (weight 0). A (token, layer)\n"
        "  pair with no row is stored as a -1 row and reported, or refused with --strict.\n"
        "  A token with no row at all (a sequence's positions jump, or start above 0) is an\n"
        "  error naming the line and the gap, unless --pad-gaps stores such tokens as -1 rows.\n"
        "  The trace's size is checked before writing (--max-output-gb, free disk space).\n"
        "  Two rows for the same (seq, token, layer) are an error.\n",
    .example = "routesim import jsonl hooks.jsonl.gz -o mixtral.h5 --experts 8 --top-k 2 \\\n"
               "    --map seq=request_id,token=pos,layer=meta.layer,experts=topk_ids,weights=topk_weights",
    .options = jsonl_options,
    .forms = jsonl_forms,
    .num_options = sizeof jsonl_options / sizeof jsonl_options[0],
    .check = jsonl_check,
    .run = jsonl_run,
};
const rs_importer_type *const rs_importer_jsonl = &jsonl_type;
