/* routesim info TRACE: what a trace holds, after full validation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/text_buffer.h"
#include "sim/cli/cli.h"
#include "workloads/trace/trace.h"
#include "workloads/trace/trace_scan.h"

static void usage(void)
{
    printf("usage: routesim info TRACE\n\n"
           "Validates TRACE against the v1 format and describes it: shape, stored dtype,\n"
           "the model's own routing attributes, optional datasets and sequence lengths.\n"
           "It then reads every value (in blocks) and lists under 'problems' what a run\n"
           "would refuse or misread: NaN or infinite logits, recorded expert ids outside\n"
           "[-1, E), non-finite recorded weights. Exit status: 0 for a valid trace, 1 when\n"
           "it is invalid or has problems (the description is printed all the same).\n");
}

/* Sequence length statistics, streaming the offsets. */
static int sequence_stats(rs_trace *tr, int64_t S, int64_t *min, int64_t *max, rs_error *err)
{
    enum { BLOCK = 65536 };
    int64_t *buf = malloc((BLOCK + 1) * sizeof *buf);
    RS_CHECK(buf, err, "out of memory");
    *min = INT64_MAX;
    *max = 0;
    for (int64_t s0 = 0; s0 < S; s0 += BLOCK) {
        int64_t n = S - s0 < BLOCK ? S - s0 : BLOCK;
        if (rs_trace_read_offsets(tr, s0, n + 1, buf, err) != 0) {
            free(buf);
            return -1;
        }
        for (int64_t i = 0; i < n; i++) {
            int64_t len = buf[i + 1] - buf[i];
            *min = len < *min ? len : *min;
            *max = len > *max ? len : *max;
        }
    }
    free(buf);
    if (S == 0)
        *min = 0;
    return 0;
}

static const char *plural(int64_t n) { return n == 1 ? "" : "s"; }

/* The 'problems' lines of what scan found; returns how many it printed. */
static int print_problems(const rs_trace_scan *scan, int E)
{
    int lines = 0;
    if (scan->nonfinite_tokens > 0) {
        printf("problems   /router/logits: %lld token%s with non-finite logits (%lld NaN, %lld infinite; first at "
               "token %lld, layer %d): runs fail on them unless --skip-nonfinite leaves them out\n",
               (long long)scan->nonfinite_tokens, plural(scan->nonfinite_tokens), (long long)scan->nan_logits,
               (long long)scan->inf_logits, (long long)scan->first_nonfinite_token, scan->first_nonfinite_layer);
        lines++;
    }
    if (scan->bad_ids > 0) {
        printf("problems   /router/topk_ids: %lld expert id%s outside [-1, %d) in %lld token%s (first %d at token "
               "%lld, layer %d): replay and metrics of the recorded routing refuse the trace\n",
               (long long)scan->bad_ids, plural(scan->bad_ids), E, (long long)scan->bad_id_tokens,
               plural(scan->bad_id_tokens), scan->first_bad_id, (long long)scan->first_bad_id_token,
               scan->first_bad_id_layer);
        lines++;
    }
    if (scan->nonfinite_weights > 0) {
        printf("problems   /router/topk_weights: %lld non-finite weight%s\n", (long long)scan->nonfinite_weights,
               plural(scan->nonfinite_weights));
        lines++;
    }
    return lines;
}

int rs_cmd_info(int argc, char **argv)
{
    if (rs_cli_wants_help(argc, argv)) {
        usage();
        return RS_EXIT_OK;
    }
    if (argc != 2)
        return rs_cli_usage_error("info", "expected one trace file");
    rs_error err = {{0}};
    rs_trace *tr = NULL;
    if (rs_trace_open(&tr, argv[1], &err) != 0)
        return rs_cli_fail(&err);
    const rs_trace_info *i = rs_trace_get_info(tr);
    int64_t min = 0, max = 0;
    if (sequence_stats(tr, i->num_sequences, &min, &max, &err) != 0) {
        rs_trace_close(tr);
        return rs_cli_fail(&err);
    }
    printf("trace      %s\n", i->path);
    printf("format     routesim-trace v1, unit = %s\n", i->unit);
    if (i->model[0])
        printf("model      %s\n", i->model);
    if (rs_trace_source(tr)[0])
        printf("source     %s\n", rs_trace_source(tr));
    rs_text_print_lines(stdout, "imported   ", rs_trace_import_notes(tr));
    printf("shape      T = %lld tokens, L = %d layers, E = %d experts\n", (long long)i->num_tokens, i->num_layers,
           i->num_experts);
    printf("sequences  S = %lld (length min %lld, mean %.1f, max %lld)\n", (long long)i->num_sequences,
           (long long)min, i->num_sequences ? (double)i->num_tokens / (double)i->num_sequences : 0.0,
           (long long)max);
    if (i->has_logits) {
        int64_t chunk = rs_trace_logits_chunk_tokens(tr);
        printf("logits     /router/logits %s", rs_logits_dtype_name(rs_trace_logits_dtype(tr)));
        if (chunk)
            printf(", chunks of %lld tokens", (long long)chunk);
        else
            printf(", contiguous");
        printf("\n");
    }
    if (i->recorded_k)
        printf("recorded   /router/topk_ids K = %d%s\n", i->recorded_k,
               i->has_topk_weights ? " with /router/topk_weights" : "");
    if (i->has_quality || i->has_cost) {
        printf("outcomes  ");
        if (i->has_quality)
            printf(" /outcome/quality [T, E] (%lld queries with no model scored)", (long long)i->num_unscored);
        if (i->has_cost)
            printf(" /outcome/cost %s", rs_trace_cost_per_query(tr) ? "[T, E] per query" : "[E] per model");
        printf("\n");
    }
    printf("routing    top_k = %s%d, scoring = %s, norm_topk = %s", i->top_k ? "" : "(unset) ", i->top_k,
           i->scoring[0] ? i->scoring : "(unset)", i->norm_topk < 0 ? "(unset)" : (i->norm_topk ? "1" : "0"));
    if (i->n_group > 0) /* grouped routing: shown only when the trace records it */
        printf(", n_group = %d, topk_group = %d", i->n_group, i->topk_group);
    if (i->routed_scaling_factor > 0)
        printf(", routed_scaling_factor = %.17g", i->routed_scaling_factor);
    printf("\n");
    printf("optional  %s%s%s%s\n", i->has_token_ids ? " /tokens/ids" : "", i->has_phase ? " /tokens/phase" : "",
           i->has_bias ? " /router/bias" : "", i->has_domain ? " /sequences/domain" : "");
    if (rs_trace_domain_name_count(tr) > 0) {
        printf("domains   ");
        for (int d = 0; d < rs_trace_domain_name_count(tr); d++)
            printf(" %s", rs_trace_domain_name(tr, d));
        printf("\n");
    }
    if (rs_trace_expert_name(tr, 0)) {
        printf("experts   ");
        for (int e = 0; e < i->num_experts && e < 16; e++)
            printf(" %s", rs_trace_expert_name(tr, e));
        printf("%s\n", i->num_experts > 16 ? " ..." : "");
    }
    fflush(stdout);
    rs_trace_scan scan;
    if (rs_trace_scan_values(tr, &scan, &err) != 0) {
        rs_trace_close(tr);
        return rs_cli_fail(&err);
    }
    int problems = print_problems(&scan, i->num_experts);
    if (problems > 0) {
        fflush(stdout);
        rs_fail(&err, "%s: %d problem%s with the trace's values (listed above)", i->path, problems, plural(problems));
        rs_trace_close(tr);
        return rs_cli_fail(&err);
    }
    rs_trace_close(tr);
    return RS_EXIT_OK;
}
