/* routesim import megatron, pass 2: the tokens written, one step of one rank at a time. */
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

/* ---- pass 2: write the tokens ------------------------------------------------------ */

typedef struct writer_state {
    rs_trace_writer *w;
    int block_tokens;
    int32_t *ids;     /* [block, L, K] */
    float *logits;    /* [block, L, E] or NULL */
    uint8_t *raw;     /* sidecar bytes of one layer's block */
    int64_t raw_bytes;
    int32_t *row;     /* a row read and passed over */
    rs_mg_stream *cursors; /* [L] */
    int *first, *last, *current; /* [L]: records of each layer in the step */
    int64_t *rows_read;          /* [L] */
    step_entry *entries;
    int num_entries, entries_cap;
} writer_state;

static int read_fully(int fd, void *buf, int64_t bytes, int64_t offset, const char *label, rs_error *err)
{
    for (int64_t done = 0; done < bytes;) {
        ssize_t got = pread(fd, (char *)buf + done, (size_t)(bytes - done), (off_t)(offset + done));
        if (got < 0 && errno == EINTR)
            continue;
        RS_CHECK(got >= 0, err, "%s: read error: %s", label, strerror(errno));
        RS_CHECK(got > 0, err, "%s: ends at byte %lld, before the logits a record points to (the file changed?)",
                 label, (long long)(offset + done));
        done += got;
    }
    return 0;
}

/* Orders a row's ids by descending logit (ties: lower id first). */
static void order_by_logit(int32_t *ids, int k, const float *logits)
{
    for (int i = 1; i < k; i++)
        for (int j = i; j > 0; j--) {
            float a = logits[ids[j - 1]], b = logits[ids[j]];
            if (a > b || (a == b && ids[j - 1] < ids[j]))
                break;
            int32_t t = ids[j];
            ids[j] = ids[j - 1];
            ids[j - 1] = t;
        }
}

/* 1 when the recorded ids are k largest logits (ties either way). */
static int top_of_logits(const int32_t *ids, int k, const float *logits, int E)
{
    float least = INFINITY;
    for (int j = 0; j < k; j++)
        least = logits[ids[j]] < least ? logits[ids[j]] : least;
    for (int e = 0; e < E; e++) {
        if (logits[e] <= least)
            continue;
        int chosen = 0;
        for (int j = 0; j < k && !chosen; j++)
            chosen = ids[j] == e;
        if (!chosen)
            return 0;
    }
    return 1;
}

/* The logits of layer l for the block's tokens (record rows first, first +
 * stride, ...), widened; a NaN or infinite value is refused. */
static int read_block_logits(import_state *st, writer_state *ws, const rank_file *rf, const step_entry *en, int l,
                             int64_t first, int64_t stride, int n, rs_error *err)
{
    const rs_mg_record *rec = &en->rec;
    int64_t row_bytes = (int64_t)st->E * 2, span = ((int64_t)(n - 1) * stride + 1) * row_bytes;
    char label[600];
    snprintf(label, sizeof label, "%s (line %lld of %s)", rf->logits_name, (long long)rec->line, rf->trace_name);
    RS_TRY(read_fully(rf->logits_fd, ws->raw, span, rec->logit_offset + first * row_bytes, label, err));
    for (int t = 0; t < n; t++) {
        const uint8_t *raw = ws->raw + (int64_t)t * stride * row_bytes;
        float *out = ws->logits + ((size_t)t * (size_t)st->L + (size_t)l) * (size_t)st->E;
        for (int e = 0; e < st->E; e++) {
            uint32_t word = (uint32_t)raw[2 * e] | (uint32_t)raw[2 * e + 1] << 8; /* little-endian bf16 */
            if ((word & 0x7f80u) == 0x7f80u) {
                char name[64];
                rs_mg_key_name(&st->keys[l], name, sizeof name);
                return rs_fail(err, "%s: token %lld of the record (%s), expert %d: the logit is %s (a trace takes "
                               "finite logits)", label, (long long)(first + (int64_t)t * stride), name, e,
                               word & 0x7fu ? "NaN" : "infinite");
            }
            uint32_t bits = word << 16;
            memcpy(&out[e], &bits, sizeof bits);
        }
    }
    return 0;
}

/* Sequence `seq` (of micro_batch) of one forward pass: every layer's record
 * read side by side, tokens seq, seq + N, seq + 2N, ... of each. */
static int write_sequence(import_state *st, writer_state *ws, const rank_file *rf, int64_t pass_tokens, int seq,
                          rs_error *err)
{
    const int L = st->L, K = st->K, E = st->E, N = st->micro_batch;
    for (int l = 0; l < L; l++)
        if (ws->current[l] >= 0) {
            RS_TRY(rs_mg_rows_begin(&ws->cursors[l], &ws->entries[ws->current[l]].rec, err));
            ws->rows_read[l] = 0;
        }
    int64_t length = pass_tokens / N;
    for (int64_t pos0 = 0; pos0 < length; pos0 += ws->block_tokens) {
        int n = length - pos0 < ws->block_tokens ? (int)(length - pos0) : ws->block_tokens;
        for (int l = 0; l < L; l++) {
            const step_entry *en = ws->current[l] >= 0 ? &ws->entries[ws->current[l]] : NULL;
            for (int t = 0; t < n; t++) {
                int32_t *ids = ws->ids + ((size_t)t * (size_t)L + (size_t)l) * (size_t)K;
                for (int j = 0; j < K; j++)
                    ids[j] = -1;
                if (!en)
                    continue;
                int64_t target = (pos0 + t) * N + seq;
                for (; ws->rows_read[l] < target; ws->rows_read[l]++)
                    if (rs_mg_rows_next(&ws->cursors[l], &en->rec, ws->rows_read[l], E, ws->row, err) != 1)
                        return -1;
                if (rs_mg_rows_next(&ws->cursors[l], &en->rec, ws->rows_read[l]++, E, ids, err) != 1)
                    return -1;
            }
            if (en && st->use_logits) {
                RS_TRY(read_block_logits(st, ws, rf, en, l, pos0 * N + seq, N, n, err));
                for (int t = 0; t < n; t++) {
                    int32_t *ids = ws->ids + ((size_t)t * (size_t)L + (size_t)l) * (size_t)K;
                    const float *logits = ws->logits + ((size_t)t * (size_t)L + (size_t)l) * (size_t)E;
                    int k = (int)en->rec.topk;
                    st->pairs_with_logits++;
                    st->pairs_top_of_logits += top_of_logits(ids, k, logits, E);
                    if (st->reorder_by_logits)
                        order_by_logit(ids, k, logits);
                }
            }
        }
        RS_TRY(rs_trace_writer_append(ws->w, n, st->use_logits ? ws->logits : NULL, ws->ids, NULL, NULL, NULL, err));
        st->tokens_written += n;
    }
    return rs_trace_writer_end_sequence(ws->w, 0, err);
}

/* The step's records, pass by pass: the j-th record of every layer is pass j. */
static int write_step(import_state *st, writer_state *ws, const rank_file *rf, rs_error *err)
{
    const int L = st->L;
    for (int l = 0; l < L; l++)
        ws->first[l] = ws->last[l] = -1;
    for (int e = 0; e < ws->num_entries; e++) {
        int l = ws->entries[e].layer;
        ws->entries[e].next_of_layer = -1;
        if (ws->first[l] < 0)
            ws->first[l] = e;
        else
            ws->entries[ws->last[l]].next_of_layer = e;
        ws->last[l] = e;
    }
    memcpy(ws->current, ws->first, (size_t)L * sizeof *ws->current);
    for (;;) {
        int64_t tokens = -1;
        int present = 0, absent = 0;
        for (int l = 0; l < L; l++) {
            if (ws->first[l] < 0)
                continue;
            if (ws->current[l] < 0) {
                absent++;
                continue;
            }
            present++;
            int64_t n = ws->entries[ws->current[l]].rec.num_tokens;
            RS_CHECK(tokens < 0 || n == tokens, err, "%s: line %lld: num_tokens differs from the other layers' in its "
                     "forward pass (the file changed while it was read?)", rf->trace_name,
                     (long long)ws->entries[ws->current[l]].rec.line);
            tokens = n;
        }
        if (present == 0)
            break;
        RS_CHECK(absent == 0, err, "%s: a step's layers have different numbers of records (the file changed while it "
                 "was read?)", rf->trace_name);
        for (int seq = 0; seq < st->micro_batch && tokens > 0; seq++)
            RS_TRY(write_sequence(st, ws, rf, tokens, seq, err));
        for (int l = 0; l < L; l++)
            if (ws->current[l] >= 0)
                ws->current[l] = ws->entries[ws->current[l]].next_of_layer;
    }
    ws->num_entries = 0;
    return 0;
}

static int trace_layer_of(const import_state *st, const rs_mg_record *rec)
{
    int64_t mtp = rec->block == RS_MG_MTP ? rec->mtp_idx : -1;
    layer_key probe = {.block = rec->block, .mtp_idx = mtp, .layer = rec->layer};
    const layer_key *k = bsearch(&probe, st->keys, (size_t)st->num_keys, sizeof *st->keys, rs_mg_compare_keys);
    return k ? k->trace_layer : -1;
}

static int write_rank(import_state *st, writer_state *ws, const rank_file *rf, rs_error *err)
{
    rs_mg_stream s;
    RS_TRY(rs_mg_stream_init(&s, rf->trace_fd, rf->trace_name, 1 << 17, err));
    for (int l = 0; l < st->L; l++) { /* one reader per layer, all on this rank's file */
        ws->cursors[l].fd = rf->trace_fd;
        ws->cursors[l].label = rf->trace_name;
    }
    rs_mg_record rec;
    int got, rc = 0;
    int64_t step = 0;
    ws->num_entries = 0;
    while (rc == 0 && (got = rs_mg_read_record(&s, &rec, RS_MG_SKIP_ROWS, err)) == 1) {
        if (ws->num_entries > 0 && rec.step != step)
            rc = write_step(st, ws, rf, err);
        step = rec.step;
        int layer = trace_layer_of(st, &rec);
        /* what the first reading found, so that a file changed since cannot overrun a buffer */
        int same = layer >= 0 && rec.topk <= st->K && rec.num_tokens % st->micro_batch == 0 &&
                   (!st->use_logits || (rec.has_logits && rec.logit_cols == st->E));
        if (rc == 0 && !same)
            rc = rs_fail(err, "%s: line %lld: not the record read before (the file changed while it was read?)",
                         rf->trace_name, (long long)rec.line);
        if (rc == 0 && ws->num_entries == ws->entries_cap) {
            int cap = ws->entries_cap ? ws->entries_cap * 2 : 256;
            step_entry *grown = realloc(ws->entries, (size_t)cap * sizeof *grown);
            if (grown) {
                ws->entries = grown;
                ws->entries_cap = cap;
            } else {
                rc = rs_fail(err, "%s: out of memory", rf->trace_name);
            }
        }
        if (rc == 0)
            ws->entries[ws->num_entries++] = (step_entry){.rec = rec, .layer = layer};
    }
    if (rc == 0 && got < 0)
        rc = -1;
    if (rc == 0 && ws->num_entries > 0)
        rc = write_step(st, ws, rf, err);
    rs_mg_stream_free(&s);
    return rc;
}

static void free_writer_state(writer_state *ws, int L)
{
    for (int l = 0; ws->cursors && l < L; l++)
        rs_mg_stream_free(&ws->cursors[l]);
    free(ws->cursors);
    free(ws->ids);
    free(ws->logits);
    free(ws->raw);
    free(ws->row);
    free(ws->first);
    free(ws->last);
    free(ws->current);
    free(ws->rows_read);
    free(ws->entries);
}

/* Buffers for a block of tokens, sized so that a block holds about
 * BLOCK_BYTES and its sidecar span about SIDECAR_READ_BYTES. */
static int init_writer_state(const import_state *st, writer_state *ws, rs_error *err)
{
    const int64_t L = st->L, K = st->K, E = st->E, N = st->micro_batch;
    int64_t per_token = L * K * 4 + (st->use_logits ? L * E * 4 : 0);
    RS_CHECK(per_token <= MAX_TOKEN_BYTES, err, "%s: one token takes %lld bytes (%lld layers x %lld ids%s), more than "
             "the %lld this importer holds at once", st->dir, (long long)per_token, (long long)L, (long long)K,
             st->use_logits ? " and logits" : "", (long long)MAX_TOKEN_BYTES);
    int64_t block = BLOCK_BYTES / per_token;
    if (st->use_logits && block * N * E * 2 > SIDECAR_READ_BYTES)
        block = SIDECAR_READ_BYTES / (N * E * 2);
    ws->block_tokens = (int)(block < 1 ? 1 : block > 4096 ? 4096 : block);
    const size_t B = (size_t)ws->block_tokens;
    ws->ids = malloc(B * (size_t)(L * K) * sizeof *ws->ids);
    ws->row = malloc((size_t)K * sizeof *ws->row);
    ws->cursors = calloc((size_t)L, sizeof *ws->cursors);
    ws->first = malloc((size_t)L * sizeof *ws->first);
    ws->last = malloc((size_t)L * sizeof *ws->last);
    ws->current = malloc((size_t)L * sizeof *ws->current);
    ws->rows_read = malloc((size_t)L * sizeof *ws->rows_read);
    int ok = ws->ids && ws->row && ws->cursors && ws->first && ws->last && ws->current && ws->rows_read;
    if (ok && st->use_logits) {
        ws->raw_bytes = ((int64_t)(B - 1) * N + 1) * E * 2;
        ws->logits = malloc(B * (size_t)(L * E) * sizeof *ws->logits);
        ws->raw = malloc((size_t)ws->raw_bytes);
        ok = ws->logits && ws->raw;
    }
    RS_CHECK(ok, err, "%s: out of memory", st->dir);
    for (int l = 0; l < L; l++)
        RS_TRY(rs_mg_stream_init(&ws->cursors[l], -1, "", CURSOR_BUFFER_BYTES, err));
    return 0;
}

int rs_mg_write_trace(import_state *st, rs_error *err)
{
    const char *out = st->job->output;
    char source[1200];
    snprintf(source, sizeof source, "routesim import megatron %s", st->dir);
    rs_trace_layout layout = {
        .num_layers = st->L,
        .num_experts = st->E,
        .logits = st->use_logits ? RS_LOGITS_BF16 : RS_LOGITS_NONE,
        .topk_k = st->K,
        .unit = "token",
        .model = st->model,
        .source = source,
        .import_notes = st->notes,
        .top_k = st->min_topk == st->max_topk ? st->K : 0,
        .norm_topk = -1,
        .layer_index = st->layer_index,
        .gzip_level = st->gzip_level,
    };
    RS_TRY(rs_trace_size_check(out, &layout, st->tokens, st->sequences, &st->job->limit, err));
    writer_state ws = {0};
    int rc = init_writer_state(st, &ws, err);
    if (rc == 0)
        rc = rs_trace_writer_create(&ws.w, out, &layout, err);
    for (int r = 0; rc == 0 && r < st->num_ranks; r++)
        rc = write_rank(st, &ws, &st->ranks[r], err);
    if (rc == 0 && st->tokens_written != st->tokens)
        rc = rs_fail(err, "%s: %lld tokens on the second reading, %lld on the first (the files changed?)", st->dir,
                     (long long)st->tokens_written, (long long)st->tokens);
    if (rc == 0 && st->use_logits) {
        int fail = rs_mg_add_note(st, "logits: the sidecars' bfloat16 router logits, stored as they are; the recorded "
                            "experts are the top-k of the logits in %lld of %lld (token, layer) pairs%s",
                            (long long)st->pairs_top_of_logits, (long long)st->pairs_with_logits,
                            st->pairs_top_of_logits == st->pairs_with_logits ? "" : " (the others: an expert bias, "
                            "group-limited or jittered routing, or routing on fp32 logits that bf16 rounds)");
        if (fail)
            rc = rs_fail(err, "%s: out of memory", st->dir);
        else
            rs_trace_writer_set_import_notes(ws.w, st->notes);
    }
    if (rc == 0)
        rc = rs_trace_writer_finish(ws.w, err);
    else if (ws.w)
        rs_trace_writer_abort(ws.w);
    free_writer_state(&ws, st->L);
    return rc;
}
