/* routesim import megatron DIR: the directory Megatron-LM's RouterTracer
 * writes (megatron/core/transformer/moe/router_trace.py, enabled by
 * --moe-routing-trace-path): router_trace_rank{r}.jsonl per rank, one record
 * per router call, and optionally logits_rank{r}.bin, the bfloat16 logits
 * [num_tokens, num_experts] of each record at its logit_offset.
 *
 * Two passes over every rank file, neither holding more than one step's
 * record headers and a block of tokens: the first checks every record and
 * works out the trace's shape (layers, experts, tokens, what the format left
 * open: see the notes), the second writes the tokens, reading the records of
 * one forward pass side by side (one reader per layer) and their logits with
 * pread. docs/import.md describes the mapping. */
#include "workloads/import/import_megatron_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- entry point --------------------------------------------------------------- */

/* The output may not be one of the files read (-o DIR/router_trace_rank0.jsonl). */
static int check_output(const import_state *st, rs_error *err)
{
    const char **inputs = calloc((size_t)st->num_ranks * 2, sizeof *inputs);
    RS_CHECK(inputs, err, "%s: out of memory", st->dir);
    for (int i = 0; i < st->num_ranks; i++) {
        inputs[2 * i] = st->ranks[i].trace_path;
        inputs[2 * i + 1] = st->ranks[i].logits_path;
    }
    rs_output_check c = {.path = st->job->output, .kind = RS_FILE_TRACE, .what = "trace", .inputs = inputs,
                         .num_inputs = st->num_ranks * 2, .force = st->job->force};
    int rc = rs_output_check_path(&c, err);
    free(inputs);
    return rc;
}

static void print_report(const import_state *st)
{
    fprintf(stderr, "routesim: imported %lld records from %d rank file%s in %s into %s: %lld sequence%s, %lld tokens, "
            "%d layers, E = %d, K = %d, %s.\n", (long long)st->records, st->num_ranks, st->num_ranks == 1 ? "" : "s",
            st->dir, st->job->output,
            (long long)st->sequences, st->sequences == 1 ? "" : "s", (long long)st->tokens, st->L, st->E, st->K,
            st->use_logits ? "with bfloat16 logits" : "top-k only");
    rs_text_print_lines(stderr, "routesim: note: ", st->notes);
}

static void free_state(import_state *st)
{
    for (int i = 0; i < st->num_ranks; i++) {
        if (st->ranks[i].trace_fd >= 0)
            close(st->ranks[i].trace_fd);
        if (st->ranks[i].logits_fd >= 0)
            close(st->ranks[i].logits_fd);
        free(st->ranks[i].trace_path);
        free(st->ranks[i].logits_path);
    }
    free(st->ranks);
    free(st->keys);
    free(st->scan.count);
    free(st->scan.touched);
    free(st->scan.pass_tokens);
    free(st->scan.pass_line);
    free(st->layer_index);
    free(st->notes);
}

static const rs_param_def megatron_options[] = {
    {"micro_batch", RS_PARAM_INT, "1", 1, 1 << 20, NULL,
     "sequences per record: a record's token i is position i / N of sequence i % N (Megatron's [s, b] layout; "
     "default 1)"},
    {"experts", RS_PARAM_INT, NULL, 1, RS_TRACE_MAX_EXPERTS, NULL,
     "routed experts per layer; required without logits sidecars (their logit_shape gives it)"},
    {"layer_base", RS_PARAM_INT, NULL, 0, 1, NULL,
     "0: layers are the forward hook's decoder.layers.N; 1: the inference sink's 1-based layer_number "
     "(default: told from the records)"},
    {"model", RS_PARAM_STRING, NULL, 0, 0, NULL, "root attribute model"},
    {"gzip", RS_PARAM_INT, "0", 0, 9, NULL, "compress the datasets with gzip LEVEL 1-9 (default 0: none)"},
};
static const rs_import_option_form megatron_forms[] = {{"N", 0}, {"E", 0}, {"0|1", 0}, {"NAME", 0}, {"LEVEL", 0}};
_Static_assert(sizeof megatron_forms / sizeof megatron_forms[0] ==
                   sizeof megatron_options / sizeof megatron_options[0],
               "one form per option");

static int megatron_run(const rs_import_job *job, rs_error *err)
{
    import_state st = {
        .job = job,
        .dir = job->input,
        .micro_batch = (int)rs_param_int(job->options, "micro_batch"),
        .gzip_level = (int)rs_param_int(job->options, "gzip"),
        .experts_option = rs_param_is_set(job->options, "experts") ? rs_param_int(job->options, "experts") : 0,
        .layer_base_option = rs_param_is_set(job->options, "layer_base") ? (int)rs_param_int(job->options,
                                                                                              "layer_base") : -1,
        .model = rs_param_str(job->options, "model"),
        .experts_from_logits = -1,
        .all_ascending = 1,
        .max_id = -1,
        .last_key = -1,
    };
    st.keys = malloc(MAX_LAYER_KEYS * sizeof *st.keys);
    st.scan.count = calloc(MAX_LAYER_KEYS, sizeof *st.scan.count);
    st.scan.touched = malloc(MAX_LAYER_KEYS * sizeof *st.scan.touched);
    int rc = st.keys && st.scan.count && st.scan.touched ? 0 : rs_fail(err, "%s: out of memory", st.dir);
    if (rc == 0)
        rc = rs_mg_list_directory(&st, err);
    if (rc == 0)
        rc = check_output(&st, err);
    for (int r = 0; rc == 0 && r < st.num_ranks; r++)
        rc = rs_mg_scan_rank(&st, &st.ranks[r], err);
    if (rc == 0)
        rc = rs_mg_shape_trace(&st, err);
    if (rc == 0)
        rc = rs_mg_write_trace(&st, err);
    if (rc == 0 && !job->quiet)
        print_report(&st);
    free_state(&st);
    return rc;
}

static const rs_importer_type megatron_type = {
    .name = "megatron",
    .summary = "Megatron-LM RouterTracer directory: router_trace_rank*.jsonl (+ logits_rank*.bin sidecars)",
    .input = "the RouterTracer directory (router_trace_rank*.jsonl)",
    .help = "Converts the directory Megatron-LM's RouterTracer writes (--moe-routing-trace-path;\n"
            "megatron/core/transformer/moe/router_trace.py) into a trace: router_trace_rank{r}.jsonl,\n"
            "one record per router call with top_indices [num_tokens][topk], for every rank r from 0,\n"
            "and when logits were captured (--moe-routing-trace-capture-logits) logits_rank{r}.bin,\n"
            "the bfloat16 logits [num_tokens, num_experts] of each record at its logit_offset.\n"
            "With the sidecars of every record the trace holds /router/logits (bfloat16, re-routable\n"
            "by every router) and the recorded /router/topk_ids; without, top-k only (--experts E).\n\n"
            "layout:\n"
            "  Ranks in order, each rank's records in file order; the records of one step and one\n"
            "  layer are its forward passes (micro-batches), and a record's tokens are --micro-batch N\n"
            "  sequences flattened sequence-first (token i = position i / N of sequence i % N).\n"
            "  Layers: the decoder's in layer order, then the MTP block's; their numbers in layer_index\n"
            "  (the hook's decoder.layers.N, or the inference sink's 1-based layer_number - 1).\n"
            "  Rows in ascending id order (the routing map's) are reordered by descending logit.\n"
            "  A layer absent from a step is stored as -1 rows (not observed). What was assumed is\n"
            "  kept in the trace's import notes (routesim info shows them).\n",
    .example = "torchrun ... pretrain_gpt.py ... --micro-batch-size 4 \\\n"
               "    --moe-routing-trace-path traces --moe-routing-trace-capture-logits\n"
               "routesim import megatron traces -o moe.h5 --micro-batch 4",
    .options = megatron_options,
    .forms = megatron_forms,
    .num_options = sizeof megatron_options / sizeof megatron_options[0],
    .flags = RS_IMPORTER_DIRECTORY,
    .run = megatron_run,
};
const rs_importer_type *const rs_importer_megatron = &megatron_type;
