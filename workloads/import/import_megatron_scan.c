/* routesim import megatron, pass 1: every record checked, the trace's shape worked out. */
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

/* ---- pass 1: check every record, work out the shape -------------------------------- */

static int find_key(import_state *st, const rs_mg_record *rec, const rank_file *rf, rs_error *err)
{
    int64_t mtp = rec->block == RS_MG_MTP ? rec->mtp_idx : -1;
    int guess = st->last_key + 1 < st->num_keys ? st->last_key + 1 : 0; /* records come in layer order */
    for (int i = 0; i < st->num_keys; i++) {
        int k = (guess + i) % st->num_keys;
        if (st->keys[k].block == rec->block && st->keys[k].mtp_idx == mtp && st->keys[k].layer == rec->layer)
            return st->last_key = k;
    }
    RS_CHECK(st->num_keys < MAX_LAYER_KEYS, err,
             "%s: line %lld: layer: more than %d distinct (block, mtp_idx, layer) routers", rf->trace_name,
             (long long)rec->line, MAX_LAYER_KEYS);
    st->keys[st->num_keys] = (layer_key){.block = rec->block, .mtp_idx = mtp, .layer = rec->layer};
    return st->last_key = st->num_keys++;
}

/* Closes the step being scanned: every layer it has must have a record in
 * every forward pass of it. */
static int finish_step(import_state *st, const rank_file *rf, rs_error *err)
{
    step_scan *g = &st->scan;
    if (!g->active)
        return 0;
    g->active = 0;
    int full = -1;
    for (int i = 0; i < g->num_touched; i++)
        if (full < 0 && g->count[g->touched[i]] == g->num_passes)
            full = g->touched[i];
    for (int i = 0; i < g->num_touched; i++) {
        int k = g->touched[i];
        if (g->count[k] == g->num_passes)
            continue;
        char short_name[64], full_name[64];
        rs_mg_key_name(&st->keys[k], short_name, sizeof short_name);
        rs_mg_key_name(&st->keys[full], full_name, sizeof full_name);
        return rs_fail(err, "%s: step %lld (lines %lld-%lld): %s has %lld record%s but %s has %lld: each record of a "
                       "layer in a step is one forward pass, and which pass lacks %s cannot be told (RouterTracer "
                       "skips a router call whose routing map does not hold topk experts per token)",
                       rf->trace_name, (long long)g->step, (long long)g->first_line, (long long)g->last_line,
                       short_name, (long long)g->count[k], g->count[k] == 1 ? "" : "s", full_name, (long long)g->num_passes, short_name);
    }
    int64_t tokens = 0;
    for (int64_t j = 0; j < g->num_passes; j++) {
        tokens += g->pass_tokens[j];
        st->sequences += g->pass_tokens[j] > 0 ? st->micro_batch : 0;
    }
    st->tokens += tokens;
    st->observed_pairs += tokens * g->num_touched;
    for (int i = 0; i < g->num_touched; i++)
        g->count[g->touched[i]] = 0;
    g->num_touched = 0;
    g->num_passes = 0;
    return 0;
}

/* Adds a record to the step being scanned (starting a new one when its step differs). */
static int scan_step(import_state *st, const rank_file *rf, const rs_mg_record *rec, int key, rs_error *err)
{
    step_scan *g = &st->scan;
    if (g->active && g->step != rec->step)
        RS_TRY(finish_step(st, rf, err));
    if (!g->active) {
        g->active = 1;
        g->step = rec->step;
        g->first_line = rec->line;
    }
    g->last_line = rec->line;
    int64_t pass = g->count[key]++;
    if (pass == 0)
        g->touched[g->num_touched++] = key;
    if (pass == g->num_passes) {
        if (g->num_passes == g->passes_cap) {
            int64_t cap = g->passes_cap ? g->passes_cap * 2 : 64;
            int64_t *tokens = realloc(g->pass_tokens, (size_t)cap * sizeof *tokens);
            if (tokens)
                g->pass_tokens = tokens;
            int64_t *lines = tokens ? realloc(g->pass_line, (size_t)cap * sizeof *lines) : NULL;
            if (lines)
                g->pass_line = lines;
            RS_CHECK(tokens && lines, err, "%s: out of memory", rf->trace_name);
            g->passes_cap = cap;
        }
        g->pass_tokens[pass] = rec->num_tokens;
        g->pass_line[pass] = rec->line;
        g->num_passes++;
    } else if (g->pass_tokens[pass] != rec->num_tokens) {
        char name[64];
        rs_mg_key_name(&st->keys[key], name, sizeof name);
        return rs_fail(err, "%s: line %lld: num_tokens: %lld, but forward pass %lld of step %lld has %lld tokens in "
                       "the other layers (line %lld); %s's records are out of step with them", rf->trace_name,
                       (long long)rec->line, (long long)rec->num_tokens, (long long)pass + 1, (long long)rec->step,
                       (long long)g->pass_tokens[pass], (long long)g->pass_line[pass], name);
    }
    return 0;
}

/* The experts a record shows: its logit_shape, checked against what came before. */
static int note_experts(import_state *st, const rank_file *rf, const rs_mg_record *rec, rs_error *err)
{
    if (!rec->has_logits)
        return 0;
    RS_CHECK(rec->logit_cols <= RS_TRACE_MAX_EXPERTS, err, "%s: line %lld: logit_shape: %lld experts, more than %d",
             rf->trace_name, (long long)rec->line, (long long)rec->logit_cols, RS_TRACE_MAX_EXPERTS);
    if (st->experts_from_logits < 0) {
        st->experts_from_logits = rec->logit_cols;
        st->experts_line = rec->line;
        st->experts_file = rf->trace_name;
    }
    RS_CHECK(rec->logit_cols == st->experts_from_logits, err,
             "%s: line %lld: logit_shape: %lld experts, but %s line %lld has %lld", rf->trace_name,
             (long long)rec->line, (long long)rec->logit_cols, st->experts_file, (long long)st->experts_line,
             (long long)st->experts_from_logits);
    RS_CHECK(st->experts_option == 0 || rec->logit_cols == st->experts_option, err,
             "%s: line %lld: logit_shape: %lld experts, but --experts is %lld", rf->trace_name, (long long)rec->line,
             (long long)rec->logit_cols, (long long)st->experts_option);
    RS_CHECK(rf->logits_path, err, "%s: line %lld: logit_offset: the record has logits, but %s/logits_rank%lld.bin "
             "is missing", rf->trace_name, (long long)rec->line, st->dir, (long long)rf->rank);
    RS_CHECK(rec->logit_offset <= rf->logits_size && rec->logit_bytes <= rf->logits_size - rec->logit_offset, err,
             "%s: line %lld: logit_offset %lld + logit_bytes %lld pass the end of %s (%lld bytes)", rf->trace_name,
             (long long)rec->line, (long long)rec->logit_offset, (long long)rec->logit_bytes, rf->logits_name,
             (long long)rf->logits_size);
    return 0;
}

/* The largest id so far, against the experts known so far. */
static int check_ids(const import_state *st, const char *file, int64_t line, int64_t id, int64_t row, int64_t col,
                     int64_t experts, rs_error *err)
{
    if (experts <= 0 || id < experts)
        return 0;
    return rs_fail(err, "%s: line %lld: top_indices[%lld][%lld]: expert %lld is outside [0, %lld) (%s)", file,
                   (long long)line, (long long)row, (long long)col, (long long)id, (long long)experts,
                   st->experts_option ? "--experts" : "the logits' num_experts");
}

static int scan_record(import_state *st, rank_file *rf, const rs_mg_record *rec, rs_error *err)
{
    RS_CHECK(rec->rank == rf->rank, err, "%s: line %lld: rank: %lld, but the file is rank %lld's", rf->trace_name,
             (long long)rec->line, (long long)rec->rank, (long long)rf->rank);
    RS_CHECK(rec->num_tokens % st->micro_batch == 0, err,
             "%s: line %lld: num_tokens: %lld is not a multiple of --micro-batch %d (sequences x micro-batch)",
             rf->trace_name, (long long)rec->line, (long long)rec->num_tokens, st->micro_batch);
    RS_TRY(note_experts(st, rf, rec, err));
    int key = find_key(st, rec, rf, err);
    RS_TRY(key < 0 ? -1 : 0);
    RS_TRY(scan_step(st, rf, rec, key, err));
    st->records++;
    rf->records++;
    st->saw_layer0 |= rec->block == RS_MG_DECODER && rec->layer == 0;
    st->saw_mtp |= rec->block == RS_MG_MTP;
    st->any_hidden |= rec->has_hidden;
    if (rec->num_tokens > 0) {
        st->max_topk = rec->topk > st->max_topk ? rec->topk : st->max_topk;
        st->min_topk = st->min_topk == 0 || rec->topk < st->min_topk ? rec->topk : st->min_topk;
        if (rec->has_logits) {
            st->records_with_logits++;
        } else if (st->records_without_logits++ == 0) {
            st->no_logits_line = rec->line;
            st->no_logits_file = rf->trace_name;
        }
    }
    st->all_ascending &= rec->ascending;
    st->multi_id_rows += rec->rows_seen;
    st->order_evidence += rec->order_evidence;
    int64_t experts = st->experts_option ? st->experts_option : st->experts_from_logits;
    RS_CHECK(experts <= 0 || rec->topk <= experts, err, "%s: line %lld: topk: %lld, more than the %lld experts",
             rf->trace_name, (long long)rec->line, (long long)rec->topk, (long long)experts);
    RS_TRY(check_ids(st, rf->trace_name, rec->line, rec->max_id, rec->max_row, rec->max_col, experts, err));
    if (rec->max_id > st->max_id) {
        st->max_id = rec->max_id;
        st->max_id_line = rec->line;
        st->max_id_row = rec->max_row;
        st->max_id_col = rec->max_col;
        st->max_id_file = rf->trace_name;
    }
    return 0;
}

int rs_mg_scan_rank(import_state *st, rank_file *rf, rs_error *err)
{
    rs_mg_stream s;
    RS_TRY(rs_mg_stream_init(&s, rf->trace_fd, rf->trace_name, 1 << 17, err));
    rs_mg_record rec;
    int got, rc = 0;
    while (rc == 0 && (got = rs_mg_read_record(&s, &rec, RS_MG_READ_ROWS, err)) == 1)
        rc = scan_record(st, rf, &rec, err);
    if (rc == 0 && got < 0)
        rc = -1;
    if (rc == 0)
        rc = finish_step(st, rf, err);
    st->empty_rank_files += rc == 0 && rf->records == 0;
    rs_mg_stream_free(&s);
    return rc;
}

int rs_mg_compare_keys(const void *a, const void *b)
{
    const layer_key *x = a, *y = b;
    if (x->block != y->block)
        return x->block - y->block;
    if (x->mtp_idx != y->mtp_idx)
        return (x->mtp_idx > y->mtp_idx) - (x->mtp_idx < y->mtp_idx);
    return (x->layer > y->layer) - (x->layer < y->layer);
}

/* The hook path (decoder.layers.N, 0-based within the pipeline stage) or the
 * inference sink (RouterReplay's layer_number, 1-based): *why says which
 * evidence decided. */
static int choose_layer_base(const import_state *st, const char **why)
{
    if (st->layer_base_option >= 0) {
        *why = "as --layer-base gives";
        return st->layer_base_option;
    }
    if (st->saw_layer0) {
        *why = "a record has layer 0";
        return 0;
    }
    if (st->records_with_logits || st->any_hidden) {
        *why = "records carry sidecar offsets, which only the forward hook writes";
        return 0;
    }
    if (st->saw_mtp) {
        *why = "the MTP block is logged, which only the forward hook does";
        return 0;
    }
    if (st->all_ascending && st->order_evidence >= ASCENDING_EVIDENCE) {
        *why = "every row is in ascending id order, as the hook's routing map gives them";
        return 0;
    }
    *why = "no record has layer 0, sidecar offsets or an MTP block, and the rows are not all in ascending id order; "
           "--layer-base 0 if the forward hook wrote them";
    return 1;
}

/* Experts, layers and their layer_index, logits or not, and the notes. */
int rs_mg_shape_trace(import_state *st, rs_error *err)
{
    RS_CHECK(st->records > 0, err, "%s: no records in the %d rank files", st->dir, st->num_ranks);
    RS_CHECK(st->tokens > 0, err, "%s: the %lld records hold no tokens (every num_tokens is 0)", st->dir,
             (long long)st->records);
    int64_t E = st->experts_option ? st->experts_option : st->experts_from_logits;
    RS_CHECK(E > 0, err, "%s: the records have no logits (logits_rank*.bin), so the number of experts is unknown: "
             "give --experts E", st->dir);
    RS_TRY(check_ids(st, st->max_id_file, st->max_id_line, st->max_id, st->max_id_row, st->max_id_col, E, err));
    RS_CHECK(st->max_topk <= E, err, "%s: topk %lld is more than the %lld experts", st->dir, (long long)st->max_topk,
             (long long)E);
    st->E = (int)E;
    st->K = (int)st->max_topk;
    st->L = st->num_keys;
    const char *why;
    st->base = choose_layer_base(st, &why);

    qsort(st->keys, (size_t)st->num_keys, sizeof *st->keys, rs_mg_compare_keys);
    st->layer_index = malloc((size_t)st->L * sizeof *st->layer_index);
    RS_CHECK(st->layer_index, err, "%s: out of memory", st->dir);
    int64_t next = 0;
    int first_mtp = -1;
    for (int l = 0; l < st->L; l++) {
        layer_key *k = &st->keys[l];
        k->trace_layer = l;
        if (k->block == RS_MG_DECODER) {
            RS_CHECK(k->layer >= st->base, err, "%s: layer 0 is logged, so the layer numbers are not 1-based "
                     "(--layer-base 1)", st->dir);
            RS_CHECK(k->layer - st->base <= INT32_MAX - MAX_LAYER_KEYS, err, "%s: layer %lld is too large", st->dir,
                     (long long)k->layer);
            st->layer_index[l] = (int32_t)(k->layer - st->base);
            next = st->layer_index[l] + 1;
        } else {
            if (first_mtp < 0)
                first_mtp = l;
            st->layer_index[l] = (int32_t)next++;
        }
    }
    st->use_logits = st->records_without_logits == 0 && st->observed_pairs == st->tokens * st->L;
    st->reorder_by_logits = st->use_logits && st->all_ascending && st->multi_id_rows > 0;

    int fail = 0;
    if (st->num_ranks == 1)
        fail |= rs_mg_add_note(st, "read router_trace_rank0.jsonl, one rank");
    else
        fail |= rs_mg_add_note(st, "read %d rank files (router_trace_rank0.jsonl to router_trace_rank%d.jsonl) rank after "
                         "rank, each rank's tokens their own sequences: the format cannot tell data-parallel ranks "
                         "from tensor-parallel peers logging the same tokens or pipeline stages logging other layers "
                         "of them", st->num_ranks, st->num_ranks - 1);
    if (st->micro_batch == 1)
        fail |= rs_mg_add_note(st, "no sequence ids in the format: each record's tokens are taken as one sequence "
                         "(--micro-batch 1), and each record of a layer within a step as one forward pass");
    else
        fail |= rs_mg_add_note(st, "no sequence ids in the format: each record's tokens are taken as Megatron's [sequence, "
                         "micro-batch] layout flattened (sequence-first): token i is position i / %d of sequence "
                         "i %% %d (--micro-batch %d); each record of a layer within a step is one forward pass",
                         st->micro_batch, st->micro_batch, st->micro_batch);
    fail |= rs_mg_add_note(st, "layer numbers read as %s, layer_index = layer%s: %s",
                     st->base == 0 ? "the forward hook's (decoder.layers.N: 0-based, local to the pipeline stage)"
                                   : "the inference sink's (RouterReplay layer_number: 1-based in the model)",
                     st->base == 0 ? "" : " - 1", why);
    if (first_mtp >= 0 && first_mtp == st->L - 1)
        fail |= rs_mg_add_note(st, "layer %d is the MTP block's router, on the decoder's tokens (layer_index after the "
                         "decoder's last)", first_mtp);
    else if (first_mtp >= 0)
        fail |= rs_mg_add_note(st, "layers %d-%d are the MTP block's routers, on the decoder's tokens (layer_index after "
                         "the decoder's last)", first_mtp, st->L - 1);
    if (!st->all_ascending)
        fail |= rs_mg_add_note(st, "top_indices rows are kept in their recorded order (not all in ascending id order: the "
                         "router's top-k order)");
    else if (st->multi_id_rows > 0)
        fail |= rs_mg_add_note(st, st->reorder_by_logits
                                 ? "top_indices rows are in ascending expert id (the routing map's order), not by "
                                   "score: each row is reordered by descending logit"
                                 : "top_indices rows are in ascending expert id (the routing map's order), not by "
                                   "score, and without logits that order is kept: the first slot is not the top-1 "
                                   "expert");
    fail |= rs_mg_add_note(st, "combine weights are not recorded (no /router/topk_weights): %sreplay gives each expert 1/k; "
                     "the score function, top-k scaling and expert bias are not in the format",
                     st->use_logits ? "routers compute them from the logits, " : "");
    if (st->observed_pairs < st->tokens * st->L)
        fail |= rs_mg_add_note(st, "%lld (token, layer) pairs have no record (a layer absent from a step: RouterTracer "
                         "skips a router call whose routing map does not hold topk experts per token) and are "
                         "stored as -1 rows (not observed)", (long long)(st->tokens * st->L - st->observed_pairs));
    if (!st->use_logits && st->records_with_logits > 0) {
        if (st->records_without_logits > 0)
            fail |= rs_mg_add_note(st, "the logits sidecars are not used: %lld records have no logits (the first: %s line "
                             "%lld), and a trace has logits for every token or none", (long long)st->records_without_logits,
                             st->no_logits_file, (long long)st->no_logits_line);
        else
            fail |= rs_mg_add_note(st, "the logits sidecars are not used: some (token, layer) pairs have no record, and a "
                             "trace has logits for every pair or none");
    }
    if (st->empty_rank_files)
        fail |= rs_mg_add_note(st, "%d rank files hold no records", st->empty_rank_files);
    if (st->skipped_hidden || st->skipped_state)
        fail |= rs_mg_add_note(st, "skipped %d hidden_states_rank*.bin (hidden states are not part of a trace) and %d "
                         "router_state_rank*.pt (router weights, a torch pickle)", st->skipped_hidden,
                         st->skipped_state);
    if (st->ignored_files)
        fail |= rs_mg_add_note(st, "ignored %d other files of the directory", st->ignored_files);
    RS_CHECK(!fail, err, "%s: out of memory", st->dir);
    return 0;
}
