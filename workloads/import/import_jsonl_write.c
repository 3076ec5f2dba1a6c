/* Writing the ordered JSON-lines log as a trace, token by token: the
 * recorded experts (a -1 row for a (token, layer) pair no line records),
 * weights, token ids, logits, and each sequence's domain. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workloads/import/import_jsonl_internal.h"
#include "workloads/trace/trace_size.h"
#include "workloads/trace/trace_writer.h"

static void note_missing(const import_state *st, rs_import_jsonl_report *report, int32_t seq_rank, int32_t position,
                         int layer)
{
    if (report->num_missing_samples < RS_IMPORT_MISSING_SAMPLES) {
        rs_import_missing_pair *m = &report->missing_samples[report->num_missing_samples++];
        rs_jsonl_format_seq(st, st->seq_by_rank[seq_rank], m->seq, sizeof m->seq);
        m->token = position;
        m->layer = st->layers[layer];
    }
    report->missing_pairs++;
}

/* Tokens gathered for one append: ids and weights [n, L, K], logits
 * [n, L, E], token ids [n]; NULL for what the trace does not hold. */
typedef struct token_block {
    int capacity, filled;
    int32_t *ids, *token_ids;
    float *weights, *logits;
} token_block;

static int flush_block(token_block *b, rs_trace_writer *w, rs_error *err)
{
    int rc = b->filled ? rs_trace_writer_append(w, b->filled, b->logits, b->ids, b->weights, b->token_ids, NULL, err)
                       : 0;
    b->filled = 0;
    return rc;
}

/* The logits of every (token, layer) pair are data: a pair no line records
 * has none, so it is refused rather than stored. */
static int missing_logits(const import_state *st, int32_t seq_rank, int32_t position, int layer, rs_error *err)
{
    char seq[96];
    rs_jsonl_format_seq(st, st->seq_by_rank[seq_rank], seq, sizeof seq);
    return rs_fail(err, "%s: seq %s, token %d, layer %d has no row, and its logits cannot be padded (--map logits=%s "
                        "needs a row for every (token, layer) pair)",
                   st->label, seq, position, st->layers[layer], st->opt->map.logits);
}

/* Appends every token in trace order, a -1 row for each missing pair. */
static int walk_trace(const import_state *st, rs_trace_writer *writer, token_block *b,
                      rs_import_jsonl_report *report, rs_error *err)
{
    const int L = (int)st->num_layers, K = st->k, E = st->opt->num_experts;
    const log_row *row = st->rows, *end = st->rows + st->num_rows;
    for (int32_t s = 0; s < st->num_seqs; s++) {
        const seq_entry *entry = &st->seqs[st->seq_by_rank[s]];
        for (int32_t pos = 0; pos <= entry->max_position; pos++) {
            size_t at = (size_t)b->filled * L * K;
            for (size_t j = 0; b->ids && j < (size_t)L * K; j++)
                b->ids[at + j] = -1;
            if (b->weights)
                memset(b->weights + at, 0, (size_t)L * K * sizeof *b->weights);
            const log_row *token_id_row = NULL;
            for (int l = 0; l < L; l++, at += (size_t)K) {
                if (row == end || row->seq != s || row->position != pos || row->layer != l) {
                    if (b->logits)
                        return missing_logits(st, s, pos, l, err);
                    note_missing(st, report, s, pos, l);
                    continue;
                }
                if (b->ids)
                    memcpy(b->ids + at, st->experts + row->first_expert, (size_t)row->num_experts * sizeof *b->ids);
                if (b->weights)
                    memcpy(b->weights + at, st->weights + row->first_expert,
                           (size_t)row->num_experts * sizeof *b->weights);
                if (b->logits)
                    memcpy(b->logits + ((size_t)b->filled * L + l) * E, st->logits + row->logits_at,
                           (size_t)E * sizeof *b->logits);
                if (token_id_row && token_id_row->token_id != row->token_id)
                    return rs_jsonl_fail_line(st, row->line, st->opt->map.token_id, err,
                                              "%d differs from %d given for the same token on line %lld",
                                              row->token_id, token_id_row->token_id, (long long)token_id_row->line);
                token_id_row = row++;
            }
            if (b->token_ids)
                b->token_ids[b->filled] = token_id_row ? token_id_row->token_id : -1;
            if (++b->filled == b->capacity)
                RS_TRY(flush_block(b, writer, err));
        }
        RS_TRY(flush_block(b, writer, err));
        RS_TRY(rs_trace_writer_end_sequence(writer, entry->domain, err));
    }
    if (st->opt->strict && report->missing_pairs > 0) {
        const rs_import_missing_pair *m = &report->missing_samples[0];
        return rs_fail(err, "%s: %lld (token, layer) pairs have no row, the first: seq %s, token %lld, layer %d "
                            "(--strict)",
                       st->label, (long long)report->missing_pairs, m->seq, (long long)m->token, m->layer);
    }
    return 0;
}

int rs_jsonl_write_trace(const import_state *st, rs_import_jsonl_report *report, rs_error *err)
{
    const rs_import_jsonl_options *opt = st->opt;
    const char *slash = strrchr(st->label, '/');
    char source[1200];
    snprintf(source, sizeof source, "routesim import jsonl %s", slash ? slash + 1 : st->label);
    rs_trace_layout layout = {
        .num_layers = (int)st->num_layers,
        .num_experts = opt->num_experts,
        .logits = report->has_logits ? RS_LOGITS_F32 : RS_LOGITS_NONE,
        .topk_k = st->k,
        .topk_weights = report->has_weights,
        .token_ids = report->has_token_ids,
        .unit = "token",
        .model = opt->model,
        .scoring = opt->scoring,
        .source = source,
        .top_k = opt->top_k,
        .norm_topk = opt->norm_topk,
        .num_domains = st->num_domains,
        .domain_names = (const char *const *)st->domains,
        .layer_index = st->layers,
        .gzip_level = opt->gzip_level,
    };
    /* About 4 MiB per append, at most 4096 tokens. */
    const size_t L = (size_t)st->num_layers, K = (size_t)st->k, E = (size_t)opt->num_experts;
    const size_t per_token = L * K * (4 + (report->has_weights ? 4 : 0)) + (report->has_logits ? L * E * 4 : 0) + 4;
    token_block b = {.capacity = (int)(((size_t)4 << 20) / per_token)};
    b.capacity = b.capacity < 1 ? 1 : b.capacity > 4096 ? 4096 : b.capacity;
    const size_t n = (size_t)b.capacity;
    b.ids = K ? malloc(n * L * K * sizeof *b.ids) : NULL;
    b.weights = report->has_weights ? malloc(n * L * K * sizeof *b.weights) : NULL;
    b.logits = report->has_logits ? malloc(n * L * E * sizeof *b.logits) : NULL;
    b.token_ids = report->has_token_ids ? malloc(n * sizeof *b.token_ids) : NULL;
    rs_trace_writer *writer = NULL;
    int64_t tokens = 0;
    for (int64_t s = 0; s < st->num_seqs; s++)
        tokens += st->seqs[s].max_position + 1;
    int rc = rs_trace_size_check(opt->output, &layout, tokens, st->num_seqs, &opt->limit, err);
    if (rc == 0 && ((K && !b.ids) || (report->has_weights && !b.weights) || (report->has_logits && !b.logits) ||
                    (report->has_token_ids && !b.token_ids)))
        rc = rs_fail(err, "%s: out of memory", opt->output);
    if (rc == 0)
        rc = rs_trace_writer_create(&writer, opt->output, &layout, err);
    if (rc == 0)
        rc = walk_trace(st, writer, &b, report, err);
    if (rc == 0)
        rc = rs_trace_writer_finish(writer, err);
    else
        rs_trace_writer_abort(writer);
    free(b.ids);
    free(b.weights);
    free(b.logits);
    free(b.token_ids);
    return rc;
}
