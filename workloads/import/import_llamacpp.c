/* routesim import llamacpp: the CSV that llama.cpp's moe-trace example
 * writes (ggml-org/llama.cpp PR #28544, examples/moe-trace/moe-trace.cpp:
 * one headerless `layer,expert` row per routed expert), and the
 * `phase,token,layer,rank,expert` files of its forks, into a top-k-only
 * trace with one sequence per file (docs/import.md).
 *
 * How the writer lays rows out, which is all there is to go on: its eval
 * callback receives each `ffn_moe_topk-<layer>` tensor ([k, tokens] I32,
 * one per MoE layer per batch) and prints it token by token, k rows per
 * token in top-k rank order. So rows come in runs of one layer (a block),
 * blocks of one batch in ascending layer order, and a new batch starts
 * where the layer stops increasing. Two traps follow from llama.cpp
 * itself. The model's last layer runs only on the tokens that produce
 * logits (the batch's last token), so its block is shorter; the forks
 * number that row as the batch's first token. And the top-k tensor is a
 * view into a [E, tokens] argsort with a row stride of E: the PR's writer
 * (and the forks' first version) read it as if contiguous, so in a batch of
 * several tokens only the first token's ids are its own. Each file is read
 * twice: a scan (layers, k, block shapes) then the conversion, holding one
 * batch of rows at a time. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/grow_array.h"
#include "core/text_buffer.h"
#include "workloads/import/importer.h"
#include "workloads/import/line_reader.h"
#include "workloads/trace/trace_size.h"
#include "workloads/trace/trace_writer.h"

enum { VARIANT_PAIRS = 1, VARIANT_COLUMNS = 2 };
enum { READER_AUTO, READER_CONTIGUOUS, READER_STRIDED }; /* choice indices of --reader */
enum { PHASE_PREFILL = 0, PHASE_DECODE = 1 };
enum {
    MAX_LAYERS = 65536,               /* distinct layer numbers; a model has a few hundred at most */
    MAX_BATCH_IDS = 1 << 26,          /* ids held for one batch (256 MiB) */
    MAX_EXPERTS = 1000000,            /* RS_TRACE_MAX_EXPERTS */
    APPEND_IDS = 1 << 20,             /* ids per append to the writer */
};

static const char columns_header[] = "phase,token,layer,rank,expert";

/* ---- rows ---------------------------------------------------------------- */

typedef struct trace_row {
    int phase;     /* VARIANT_COLUMNS only */
    int64_t token; /* VARIANT_COLUMNS only */
    int32_t layer;
    int64_t rank; /* VARIANT_COLUMNS only */
    int32_t expert;
} trace_row;

typedef struct csv_file {
    const char *path;
    rs_line_reader lines;
    int is_open;
    int64_t line;   /* of the row last read */
    int variant;
    int pending;    /* the first row's line is in lines.buf, not yet returned */
    int num_experts;
} csv_file;

static __attribute__((format(printf, 4, 5))) int fail_at(const csv_file *f, const char *field, rs_error *err,
                                                         const char *fmt, ...)
{
    char problem[RS_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(problem, sizeof problem, fmt, ap);
    va_end(ap);
    return rs_fail(err, "%s: line %lld: %s: %s", f->path, (long long)f->line, field, problem);
}

/* An integer as the writer prints one (%d, %zu, PRId64): an optional '-' and digits. */
static int parse_integer(const char *s, size_t n, int64_t *out)
{
    size_t i = n > 0 && s[0] == '-';
    if (i == n || n - i > 15)
        return -1;
    int64_t v = 0;
    for (size_t j = i; j < n; j++) {
        if (s[j] < '0' || s[j] > '9')
            return -1;
        v = v * 10 + (s[j] - '0');
    }
    *out = i ? -v : v;
    return 0;
}

static int integer_field(const csv_file *f, const char *name, const char *s, size_t n, int64_t lo, int64_t hi,
                         const char *why, int64_t *out, rs_error *err)
{
    if (parse_integer(s, n, out) != 0)
        return fail_at(f, name, err, "'%.*s' is not an integer", (int)(n > 40 ? 40 : n), s);
    if (*out < lo || *out > hi)
        return fail_at(f, name, err, "%lld is outside [%lld, %lld]%s", (long long)*out, (long long)lo,
                       (long long)hi, why);
    return 0;
}

/* Splits a line at commas: up to max fields; returns their number (max + 1 when there are more). */
static int split_fields(const char *line, size_t len, const char **start, size_t *length, int max)
{
    int count = 0;
    for (size_t at = 0;;) {
        const char *comma = memchr(line + at, ',', len - at);
        size_t end = comma ? (size_t)(comma - line) : len;
        if (count == max)
            return max + 1;
        start[count] = line + at;
        length[count++] = end - at;
        if (!comma)
            return count;
        at = end + 1;
    }
}

static int parse_row(const csv_file *f, const char *line, size_t len, trace_row *row, rs_error *err)
{
    const char *field[5];
    size_t flen[5];
    const int want = f->variant == VARIANT_COLUMNS ? 5 : 2;
    int got = split_fields(line, len, field, flen, want);
    if (got != want)
        return rs_fail(err, "%s: line %lld: %s%d fields, expected %d (%s)", f->path, (long long)f->line,
                       got > want ? "more than " : "", got > want ? want : got, want,
                       f->variant == VARIANT_COLUMNS ? columns_header : "layer,expert");
    int64_t v = 0;
    const char *layer_why = " (the writer prints -1 for a tensor name without a layer number)";
    const char *expert_why = " (--experts)";
    if (f->variant == VARIANT_PAIRS) {
        RS_TRY(integer_field(f, "layer", field[0], flen[0], 0, INT32_MAX, layer_why, &v, err));
        row->layer = (int32_t)v;
        RS_TRY(integer_field(f, "expert", field[1], flen[1], 0, f->num_experts - 1, expert_why, &v, err));
        row->expert = (int32_t)v;
        row->phase = -1, row->token = -1, row->rank = -1;
        return 0;
    }
    if (flen[0] == 7 && memcmp(field[0], "prefill", 7) == 0)
        row->phase = PHASE_PREFILL;
    else if (flen[0] == 6 && memcmp(field[0], "decode", 6) == 0)
        row->phase = PHASE_DECODE;
    else if (len == sizeof columns_header - 1 && memcmp(line, columns_header, len) == 0)
        return fail_at(f, "phase", err, "the header again (files joined with cat? give each run as its own file)");
    else
        return fail_at(f, "phase", err, "'%.*s' is neither prefill nor decode", (int)(flen[0] > 40 ? 40 : flen[0]),
                       field[0]);
    RS_TRY(integer_field(f, "token", field[1], flen[1], 0, (int64_t)1 << 48, "", &row->token, err));
    RS_TRY(integer_field(f, "layer", field[2], flen[2], 0, INT32_MAX, layer_why, &v, err));
    row->layer = (int32_t)v;
    RS_TRY(integer_field(f, "rank", field[3], flen[3], 0, f->num_experts - 1, " (a rank is below --experts)",
                         &row->rank, err));
    RS_TRY(integer_field(f, "expert", field[4], flen[4], 0, f->num_experts - 1, expert_why, &v, err));
    row->expert = (int32_t)v;
    return 0;
}

/* The next non-blank line: 1, 0 at the end, -1 on a read error. */
static int next_line(csv_file *f, size_t *len, rs_error *err)
{
    for (;;) {
        int got = rs_line_reader_next(&f->lines, len, f->path, err);
        if (got <= 0)
            return got;
        f->line++;
        if (*len > 0 && f->lines.buf[*len - 1] == '\r')
            f->lines.buf[--*len] = '\0';
        if (*len > 0)
            return 1;
    }
}

/* Opens a file and tells its variant from the first line: the forks' header,
 * or a layer,expert row (the PR's writer prints no header). */
static int open_file(csv_file *f, const char *path, int num_experts, rs_error *err)
{
    memset(f, 0, sizeof *f);
    f->path = path;
    f->num_experts = num_experts;
    if (rs_line_reader_open(&f->lines, path, path, err) != 0) {
        rs_line_reader_close(&f->lines);
        return -1;
    }
    f->is_open = 1;
    size_t len = 0;
    int got = next_line(f, &len, err);
    if (got < 0)
        return -1; /* a read error, already said */
    RS_CHECK(got == 1, err, "%s: no rows (an empty trace: did the model have ffn_moe_topk tensors?)", path);
    if (len == sizeof columns_header - 1 && memcmp(f->lines.buf, columns_header, len) == 0) {
        f->variant = VARIANT_COLUMNS;
        return 0;
    }
    const char *field[2];
    size_t flen[2];
    int64_t v;
    RS_CHECK(split_fields(f->lines.buf, len, field, flen, 2) == 2 && parse_integer(field[0], flen[0], &v) == 0, err,
             "%s: line %lld: neither the header %s nor a layer,expert row", path, (long long)f->line,
             columns_header);
    f->variant = VARIANT_PAIRS;
    f->pending = 1;
    return 0;
}

/* The next row: 1, 0 at the end of the file, -1 on an error. */
static int next_row(csv_file *f, trace_row *row, rs_error *err)
{
    size_t len = strlen(f->lines.buf);
    if (f->pending) {
        f->pending = 0;
    } else {
        int got = next_line(f, &len, err);
        if (got <= 0)
            return got;
    }
    RS_TRY(parse_row(f, f->lines.buf, len, row, err));
    return 1;
}

static void close_file(csv_file *f)
{
    if (f->is_open)
        rs_line_reader_close(&f->lines);
    f->is_open = 0;
}

/* ---- the scan: layers, k, block shapes ------------------------------------ */

typedef struct file_scan {
    int variant;
    int64_t rows, steps;
    int64_t first_block_rows; /* sum over batches of the rows of the batch's first block */
    int64_t min_block_rows, max_block_rows;
    int64_t max_rank;
    /* 1 while every block looks read straight through argsort rows: within
     * each run of E consecutive rows of a block no expert repeats */
    int argsort_pattern;
    int keep_first_only; /* decided: only each block's first token is its own */
} file_scan;

typedef struct import_state {
    const rs_import_job *job;
    int num_files;
    int num_experts, k, reader;
    int32_t *layers; /* distinct layer numbers, ascending */
    int num_layers;
    file_scan *scans;
    uint64_t *stamp; /* [E]: window last seen, for the argsort test */
    uint64_t window;
    /* what the conversion found, for the report and the notes */
    int64_t rows, tokens, prompt_tokens, decode_tokens;
    int64_t cut_pairs, cut_batches, unread_pairs, absent_pairs;
    int32_t cut_layer_min, cut_layer_max;
} import_state;

static int layer_rank(const import_state *st, int32_t layer)
{
    int lo = 0, hi = st->num_layers;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (st->layers[mid] < layer)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int add_layer(import_state *st, const csv_file *f, int32_t layer, int *cap, rs_error *err)
{
    int at = layer_rank(st, layer);
    if (at < st->num_layers && st->layers[at] == layer)
        return 0;
    if (st->num_layers == MAX_LAYERS)
        return fail_at(f, "layer", err, "more than %d distinct layer numbers", MAX_LAYERS);
    if (st->num_layers == *cap) {
        int grown_cap = *cap ? 2 * *cap : 64;
        int32_t *grown = realloc(st->layers, (size_t)grown_cap * sizeof *grown);
        RS_CHECK(grown, err, "out of memory");
        st->layers = grown;
        *cap = grown_cap;
    }
    memmove(st->layers + at + 1, st->layers + at, (size_t)(st->num_layers - at) * sizeof *st->layers);
    st->layers[at] = layer;
    st->num_layers++;
    return 0;
}

static void end_scan_block(file_scan *s, int64_t rows, int first_in_batch)
{
    if (rows == 0)
        return;
    if (first_in_batch)
        s->first_block_rows += rows;
    if (s->min_block_rows == 0 || rows < s->min_block_rows)
        s->min_block_rows = rows;
    if (rows > s->max_block_rows)
        s->max_block_rows = rows;
}

static int scan_file(import_state *st, int index, int *layers_cap, rs_error *err)
{
    csv_file f;
    file_scan *s = &st->scans[index];
    memset(s, 0, sizeof *s);
    s->argsort_pattern = 1;
    int rc = open_file(&f, rs_import_input(st->job, index), st->num_experts, err);
    if (rc == 0)
        s->variant = f.variant;
    trace_row row;
    int32_t block_layer = -1;
    int64_t block_rows = 0, batch_ids = 0;
    int first_in_batch = 1, got = 0;
    while (rc == 0 && (got = next_row(&f, &row, err)) == 1) {
        if (block_rows == 0 || row.layer != block_layer) {
            int new_batch = block_rows > 0 && row.layer < block_layer;
            end_scan_block(s, block_rows, first_in_batch);
            first_in_batch = block_rows == 0 || new_batch;
            s->steps += first_in_batch;
            batch_ids = first_in_batch ? 0 : batch_ids;
            block_layer = row.layer;
            block_rows = 0;
            rc = add_layer(st, &f, row.layer, layers_cap, err);
        }
        if (rc != 0)
            break;
        if (block_rows % st->num_experts == 0)
            st->window++;
        if (st->stamp[row.expert] == st->window)
            s->argsort_pattern = 0;
        st->stamp[row.expert] = st->window;
        if (row.rank > s->max_rank)
            s->max_rank = row.rank;
        block_rows++;
        s->rows++;
        if (++batch_ids > MAX_BATCH_IDS)
            rc = rs_fail(err, "%s: line %lld: a batch of more than %d rows (tokens x MoE layers x k): not a file "
                         "moe-trace writes", f.path, (long long)f.line, MAX_BATCH_IDS);
    }
    if (rc == 0 && got < 0)
        rc = -1;
    if (rc == 0 && s->rows == 0)
        rc = rs_fail(err, "%s: no rows after the header", f.path);
    end_scan_block(s, block_rows, first_in_batch);
    close_file(&f);
    return rc;
}

/* After every file is scanned: one variant, k, how each file's ids were read. */
static int settle_layout(import_state *st, rs_error *err)
{
    const rs_params *p = st->job->options;
    const int variant = st->scans[0].variant;
    int64_t k = 0;
    for (int i = 0; i < st->num_files; i++) {
        const file_scan *s = &st->scans[i];
        RS_CHECK(s->variant == variant, err, "%s: %s rows, but %s has %s rows: give files of one kind",
                 rs_import_input(st->job, i), s->variant == VARIANT_COLUMNS ? columns_header : "layer,expert",
                 rs_import_input(st->job, 0), variant == VARIANT_COLUMNS ? columns_header : "layer,expert");
        int64_t file_k = variant == VARIANT_COLUMNS ? s->max_rank + 1 : s->min_block_rows;
        k = variant == VARIANT_COLUMNS ? (file_k > k ? file_k : k) : (k == 0 || file_k < k ? file_k : k);
    }
    if (rs_param_is_set(p, "top_k")) {
        int64_t given = rs_param_int(p, "top_k");
        RS_CHECK(variant != VARIANT_COLUMNS || given == k, err,
                 "--top-k %lld, but the rank column gives k = %lld (ranks 0 .. %lld)", (long long)given,
                 (long long)k, (long long)k - 1);
        k = given;
    }
    RS_CHECK(k >= 1 && k <= st->num_experts, err,
             "k = %lld experts per token exceeds --experts %d (%s)", (long long)k, st->num_experts,
             variant == VARIANT_COLUMNS ? "the largest rank + 1" : "the shortest run of one layer; --top-k sets k");
    st->k = (int)k;
    for (int i = 0; i < st->num_files; i++) {
        file_scan *s = &st->scans[i];
        /* a batch of several tokens is what tells the two readers apart */
        int telling = s->max_block_rows > k && st->num_experts > k;
        s->keep_first_only = st->reader == READER_CONTIGUOUS ||
                             (st->reader == READER_AUTO && telling && s->argsort_pattern);
    }
    return 0;
}

/* ---- the conversion ------------------------------------------------------- */

typedef struct block {
    int layer;       /* rank among the layers */
    int32_t logged;  /* the layer number in the file */
    int64_t first;   /* index of its first id in the batch buffer */
    int64_t rows, tokens;
    int64_t line, last_line; /* of its first and last rows */
} block;

typedef struct batch {
    int32_t *ids;
    int64_t num_ids, ids_cap;
    block *blocks;
    int64_t num_blocks, blocks_cap;
    int64_t offset; /* position of its first token in the sequence */
    int phase;      /* -1 when the file has none */
    int64_t tokens; /* of its first block */
    /* the append buffers */
    int32_t *out_ids;
    uint8_t *out_phase;
    int out_tokens;
} batch;

/* Ends the current block: a whole number of tokens, no more than the
 * batch's first block; a shorter one (the model's last layer, run only on
 * the tokens that produce logits) ends the batch. */
static int close_block(const import_state *st, const csv_file *f, batch *b, rs_error *err)
{
    if (b->num_blocks == 0)
        return 0;
    block *x = &b->blocks[b->num_blocks - 1];
    RS_CHECK(x->rows % st->k == 0, err,
             "%s: lines %lld-%lld: layer %d holds %lld rows for one batch, not a multiple of k = %d%s", f->path,
             (long long)x->line, (long long)x->last_line, x->logged, (long long)x->rows, st->k,
             f->variant == VARIANT_PAIRS && !rs_param_is_set(st->job->options, "top_k")
                 ? " (k is the shortest run of one layer; --top-k sets it)"
                 : "");
    x->tokens = x->rows / st->k;
    if (b->num_blocks == 1) {
        b->tokens = x->tokens;
        return 0;
    }
    const block *prev = &b->blocks[b->num_blocks - 2];
    RS_CHECK(x->tokens <= b->tokens, err,
             "%s: line %lld: layer %d holds %lld tokens in a batch whose layer %d holds %lld (line %lld)", f->path,
             (long long)x->line, x->logged, (long long)x->tokens, b->blocks[0].logged, (long long)b->tokens,
             (long long)b->blocks[0].line);
    RS_CHECK(prev->tokens == b->tokens, err,
             "%s: line %lld: layer %d follows layer %d, which held %lld of the batch's %lld tokens (only the last "
             "layer runs on fewer tokens)",
             f->path, (long long)x->line, x->logged, prev->logged, (long long)prev->tokens, (long long)b->tokens);
    return 0;
}

static int flush_tokens(batch *b, rs_trace_writer *w, rs_error *err)
{
    int rc = b->out_tokens ? rs_trace_writer_append(w, b->out_tokens, NULL, b->out_ids, NULL, NULL,
                                                    b->out_phase, err)
                           : 0;
    b->out_tokens = 0;
    return rc;
}

/* Writes the batch's tokens: each block's ids at its layer, a shorter
 * block at the batch's last tokens, -1 rows for what no block gives. */
static int write_batch(import_state *st, const file_scan *s, batch *b, rs_trace_writer *w, int piece, rs_error *err)
{
    if (b->num_blocks == 0)
        return 0;
    const int L = st->num_layers, K = st->k;
    const size_t per_token = (size_t)L * (size_t)K;
    for (int64_t t0 = 0; t0 < b->tokens; t0 += piece) {
        const int n = (int)(b->tokens - t0 < piece ? b->tokens - t0 : piece);
        for (size_t j = 0; j < (size_t)n * per_token; j++)
            b->out_ids[j] = -1;
        if (b->out_phase)
            memset(b->out_phase, b->phase, (size_t)n);
        for (int64_t i = 0; i < b->num_blocks; i++) {
            const block *x = &b->blocks[i];
            const int64_t start = b->tokens - x->tokens; /* 0 for a whole block */
            for (int64_t j = 0; j < x->tokens; j++) {
                const int64_t t = start + j;
                if (t < t0 || t >= t0 + n || (s->keep_first_only && j > 0))
                    continue;
                memcpy(b->out_ids + (size_t)(t - t0) * per_token + (size_t)x->layer * K, b->ids + x->first + j * K,
                       (size_t)K * sizeof *b->ids);
            }
        }
        b->out_tokens = n;
        RS_TRY(flush_tokens(b, w, err));
    }
    /* what the batch leaves not observed, by cause */
    int64_t present = 0;
    for (int64_t i = 0; i < b->num_blocks; i++) {
        const block *x = &b->blocks[i];
        present += b->tokens;
        if (x->tokens < b->tokens) {
            st->cut_pairs += b->tokens - x->tokens;
            st->cut_batches++;
            st->cut_layer_min = st->cut_batches == 1 || x->logged < st->cut_layer_min ? x->logged : st->cut_layer_min;
            st->cut_layer_max = st->cut_batches == 1 || x->logged > st->cut_layer_max ? x->logged : st->cut_layer_max;
        }
        if (s->keep_first_only && x->tokens > 1)
            st->unread_pairs += x->tokens - 1;
    }
    st->absent_pairs += (int64_t)L * b->tokens - present;
    st->tokens += b->tokens;
    if (b->phase == PHASE_PREFILL)
        st->prompt_tokens += b->tokens;
    else if (b->phase == PHASE_DECODE)
        st->decode_tokens += b->tokens;
    b->offset += b->tokens;
    b->num_blocks = 0;
    b->num_ids = 0;
    return 0;
}

/* The columns of the forks' rows must say what the layout already says:
 * the batch's tokens in order from where the last batch ended, ranks 0 ..
 * k-1 per token, one phase per batch. */
static int check_columns(const import_state *st, const csv_file *f, const batch *b, const trace_row *row,
                         int64_t row_in_block, rs_error *err)
{
    const int64_t token = b->offset + row_in_block / st->k, rank = row_in_block % st->k;
    if (b->num_blocks == 1 && row_in_block == 0 && row->token != b->offset && b->offset == 0)
        return fail_at(f, "token", err, "%lld starts the file, expected 0", (long long)row->token);
    if (b->num_blocks == 1 && row_in_block == 0 && row->token != b->offset)
        return fail_at(f, "token", err, "%lld starts a batch, expected %lld (the tokens before it end at %lld)",
                       (long long)row->token, (long long)b->offset, (long long)b->offset - 1);
    if (row->phase != b->phase)
        return fail_at(f, "phase", err, "%s within a %s batch (from line %lld)",
                       row->phase == PHASE_PREFILL ? "prefill" : "decode",
                       b->phase == PHASE_PREFILL ? "prefill" : "decode", (long long)b->blocks[0].line);
    if (row->rank != rank)
        return fail_at(f, "rank", err, "%lld, expected %lld (each token's ranks run 0 .. %d in order)",
                       (long long)row->rank, (long long)rank, st->k - 1);
    if (row->token != token)
        return fail_at(f, "token", err, "%lld, expected %lld (layer %d's rows of this batch are for tokens %lld ...)",
                       (long long)row->token, (long long)token, row->layer, (long long)b->offset);
    return 0;
}

static int convert_file(import_state *st, int index, rs_trace_writer *w, batch *b, int piece, rs_error *err)
{
    const file_scan *s = &st->scans[index];
    csv_file f;
    int rc = open_file(&f, rs_import_input(st->job, index), st->num_experts, err);
    b->offset = 0;
    b->num_blocks = 0;
    b->num_ids = 0;
    trace_row row;
    int got = 0;
    while (rc == 0 && (got = next_row(&f, &row, err)) == 1) {
        block *x = b->num_blocks ? &b->blocks[b->num_blocks - 1] : NULL;
        if (!x || row.layer != x->logged) {
            rc = close_block(st, &f, b, err);
            if (rc == 0 && x && row.layer < x->logged)
                rc = write_batch(st, s, b, w, piece, err);
            if (rc == 0 && rs_grow_array(&b->blocks, &b->blocks_cap, b->num_blocks + 1, sizeof *b->blocks, 256) != 0)
                rc = rs_fail(err, "out of memory");
            if (rc != 0)
                break;
            x = &b->blocks[b->num_blocks++];
            *x = (block){.layer = layer_rank(st, row.layer), .logged = row.layer, .first = b->num_ids,
                         .line = f.line};
            if (b->num_blocks == 1)
                b->phase = f.variant == VARIANT_COLUMNS ? row.phase : -1;
        }
        const int64_t in_block = x->rows;
        if (f.variant == VARIANT_COLUMNS && (rc = check_columns(st, &f, b, &row, in_block, err)) != 0)
            break;
        /* top-k ids are distinct within a token; only tokens that are kept are checked */
        const int64_t token_start = x->first + in_block / st->k * st->k;
        if (!s->keep_first_only || in_block < st->k)
            for (int64_t j = token_start; j < b->num_ids && rc == 0; j++)
                if (b->ids[j] == row.expert)
                    rc = fail_at(&f, "expert", err, "%d is listed twice for one token (layer %d)", row.expert,
                                 row.layer);
        if (rc == 0 && rs_grow_array(&b->ids, &b->ids_cap, b->num_ids + 1, sizeof *b->ids, 256) != 0)
            rc = rs_fail(err, "out of memory for a batch of %lld ids", (long long)b->num_ids + 1);
        if (rc != 0)
            break;
        b->ids[b->num_ids++] = row.expert;
        x->rows++;
        x->last_line = f.line;
        st->rows++;
    }
    if (rc == 0 && got < 0)
        rc = -1;
    if (rc == 0)
        rc = close_block(st, &f, b, err);
    if (rc == 0)
        rc = write_batch(st, s, b, w, piece, err);
    if (rc == 0)
        rc = rs_trace_writer_end_sequence(w, 0, err);
    close_file(&f);
    return rc;
}

/* ---- notes, report -------------------------------------------------------- */

/* "0-26, 28, 30-47": runs of consecutive layer numbers. */
static void add_layers(rs_text *t, const import_state *st)
{
    for (int i = 0; i < st->num_layers;) {
        int j = i;
        while (j + 1 < st->num_layers && st->layers[j + 1] == st->layers[j] + 1)
            j++;
        if (j == i)
            rs_text_addf(t, "%s%d", i ? ", " : "", st->layers[i]);
        else
            rs_text_addf(t, "%s%d-%d", i ? ", " : "", st->layers[i], st->layers[j]);
        i = j + 1;
    }
}

static void write_notes(const import_state *st, rs_text *t)
{
    const int columns = st->scans[0].variant == VARIANT_COLUMNS;
    if (columns)
        rs_text_addf(t, "rows phase,token,layer,rank,expert (moe-trace forks of llama.cpp PR #28544): no sequence ids, one "
               "sequence per file (%d), in the order given; tokens by the token column, /tokens/phase from the phase "
               "column\n",
            st->num_files);
    else
        rs_text_addf(t, "rows layer,expert (llama.cpp PR #28544 examples/moe-trace): no header, no token, batch or sequence "
               "column (no sequence ids): one sequence per file (%d), in the order given; tokens numbered in file "
               "order\n",
            st->num_files);
    if (!columns)
        rs_text_addf(t, "a batch ends where the layer number stops increasing, and each layer's rows of a batch are k per "
               "token, tokens in order; k = %d %s\n",
            st->k, rs_param_is_set(st->job->options, "top_k") ? "from --top-k" : "from the shortest run of one layer "
                                                                               "(a one-token batch writes k rows)");
    else
        rs_text_addf(t, "k = %d from the rank column; ids in top-k rank order\n", st->k);
    if (!columns)
        rs_text_addf(t, "no phase: prompt batches and decode steps are not told apart (a decode step is a one-token batch)\n");
    if (st->cut_batches)
        rs_text_addf(t, "layer %d%s ran on fewer tokens in %lld batch%s (llama.cpp runs the model's last layer only on the "
               "tokens that produce logits, the batch's last): stored at the batch's last tokens%s; %lld (token, "
               "layer) pairs before them not observed\n",
            st->cut_layer_min, st->cut_layer_min == st->cut_layer_max ? "" : " and others", (long long)st->cut_batches,
            st->cut_batches == 1 ? "" : "es", columns ? " (the writer numbers them from the batch's first token)" : "", (long long)st->cut_pairs);
    int contiguous = 0, telling = 0;
    for (int i = 0; i < st->num_files; i++) {
        contiguous += st->scans[i].keep_first_only;
        telling += st->scans[i].max_block_rows > st->k && st->num_experts > st->k;
    }
    if (contiguous)
        rs_text_addf(t, "top-k view read as contiguous in %d of %d files (%s): only each batch's first token's ids are its "
               "own, %lld (token, layer) pairs of later tokens stored as not observed (--reader strided keeps them)\n",
            contiguous, st->num_files,
            st->reader == READER_CONTIGUOUS ? "--reader contiguous"
                                            : "auto: within every batch no expert repeats across tokens, as in one "
                                              "argsort row read straight through",
            (long long)st->unread_pairs);
    else if (telling)
        rs_text_addf(t, "every row kept as its token's ids (%s)\n",
            st->reader == READER_STRIDED ? "--reader strided"
                                         : "auto: experts repeat across tokens of a batch, so the writer read the "
                                           "top-k view with its stride");
    else
        rs_text_addf(t, "every batch holds one token: how the writer read the top-k view does not matter\n");
    if (st->absent_pairs)
        rs_text_addf(t, "%lld (token, layer) pairs of batches that lack a layer stored as not observed\n",
            (long long)st->absent_pairs);
    rs_text_addf(t, "no weights and no logits (the writer logs ids only): replay the ids, re-routing needs logits\n");
    if (t->len && t->buf[t->len - 1] == '\n')
        t->buf[--t->len] = '\0';
}

static void print_report(const import_state *st, const char *notes)
{
    rs_text layers = {0};
    add_layers(&layers, st);
    fprintf(stderr,
            "routesim: imported %lld rows from %d file%s into %s: %d sequence%s, %lld tokens", (long long)st->rows,
            st->num_files, st->num_files == 1 ? "" : "s", st->job->output, st->num_files,
            st->num_files == 1 ? "" : "s", (long long)st->tokens);
    if (st->scans[0].variant == VARIANT_COLUMNS)
        fprintf(stderr, " (%lld prompt, %lld decode)", (long long)st->prompt_tokens, (long long)st->decode_tokens);
    fprintf(stderr, ", %d layers (logged as %s), K = %d; not observed (token, layer) pairs: %lld\n", st->num_layers,
            layers.buf ? layers.buf : "", st->k, (long long)(st->cut_pairs + st->unread_pairs + st->absent_pairs));
    free(layers.buf);
    rs_text_print_lines(stderr, "routesim: note: ", notes);
}

/* ---- the importer --------------------------------------------------------- */

static int write_trace(import_state *st, rs_error *err)
{
    const rs_import_job *job = st->job;
    char source[1024];
    size_t used = (size_t)snprintf(source, sizeof source, "routesim import llamacpp");
    for (int i = 0; i < st->num_files && used < sizeof source; i++) {
        const char *path = rs_import_input(job, i), *slash = strrchr(path, '/');
        used += (size_t)snprintf(source + used, sizeof source - used, " %s", slash ? slash + 1 : path);
    }
    int64_t tokens = 0;
    for (int i = 0; i < st->num_files; i++)
        tokens += st->scans[i].first_block_rows / st->k;
    rs_trace_layout layout = {
        .num_layers = st->num_layers,
        .num_experts = st->num_experts,
        .logits = RS_LOGITS_NONE,
        .topk_k = st->k,
        .phase = st->scans[0].variant == VARIANT_COLUMNS,
        .unit = "token",
        .model = rs_param_str(job->options, "model"),
        .source = source,
        .top_k = st->k,
        .norm_topk = -1,
        .layer_index = st->layers,
        .gzip_level = (int)rs_param_int(job->options, "gzip"),
    };
    const size_t per_token = (size_t)st->num_layers * (size_t)st->k;
    RS_CHECK(per_token <= MAX_BATCH_IDS, err, "%d layers x k = %d: %zu ids per token, more than %d", st->num_layers,
             st->k, per_token, MAX_BATCH_IDS);
    int piece = (int)(APPEND_IDS / per_token);
    piece = piece < 1 ? 1 : piece;
    batch b = {0};
    rs_trace_writer *w = NULL;
    int rc = rs_trace_size_check(job->output, &layout, tokens, st->num_files, &job->limit, err);
    if (rc == 0) {
        b.out_ids = malloc((size_t)piece * per_token * sizeof *b.out_ids);
        b.out_phase = layout.phase ? malloc((size_t)piece) : NULL;
        if (!b.out_ids || (layout.phase && !b.out_phase))
            rc = rs_fail(err, "out of memory");
    }
    if (rc == 0)
        rc = rs_trace_writer_create(&w, job->output, &layout, err);
    for (int i = 0; i < st->num_files && rc == 0; i++)
        rc = convert_file(st, i, w, &b, piece, err);
    rs_text notes = {0};
    if (rc == 0) {
        write_notes(st, &notes); /* they count what the conversion found */
        if (!notes.buf || notes.failed)
            rc = rs_fail(err, "out of memory");
    }
    if (rc == 0) {
        rs_trace_writer_set_import_notes(w, notes.buf);
        rc = rs_trace_writer_finish(w, err);
    } else {
        rs_trace_writer_abort(w);
    }
    if (rc == 0 && !job->quiet)
        print_report(st, notes.buf);
    free(notes.buf);
    free(b.ids);
    free(b.blocks);
    free(b.out_ids);
    free(b.out_phase);
    return rc;
}

static int llamacpp_run(const rs_import_job *job, rs_error *err)
{
    import_state st = {
        .job = job,
        .num_files = rs_import_input_count(job),
        .num_experts = (int)rs_param_int(job->options, "experts"),
        .reader = (int)rs_param_int(job->options, "reader"),
    };
    RS_CHECK(st.num_files >= 1, err, "import llamacpp: no input");
    for (int i = 0; i < st.num_files; i++)
        RS_CHECK(strcmp(rs_import_input(job, i), "-") != 0, err,
                 "import llamacpp: reads each file twice, so not from standard input: save it to a file first");
    st.scans = calloc((size_t)st.num_files, sizeof *st.scans);
    st.stamp = calloc((size_t)st.num_experts, sizeof *st.stamp);
    int rc = st.scans && st.stamp ? 0 : rs_fail(err, "out of memory");
    int layers_cap = 0;
    for (int i = 0; i < st.num_files && rc == 0; i++)
        rc = scan_file(&st, i, &layers_cap, err);
    if (rc == 0)
        rc = settle_layout(&st, err);
    if (rc == 0)
        rc = write_trace(&st, err);
    free(st.scans);
    free(st.stamp);
    free(st.layers);
    return rc;
}

static const rs_param_def llamacpp_options[] = {
    {"experts", RS_PARAM_INT, NULL, 1, MAX_EXPERTS, NULL, "routed experts per layer (required); every id must lie in [0, E)"},
    {"top_k", RS_PARAM_INT, NULL, 1, MAX_EXPERTS, NULL,
     "the model's k (experts per token); default: the rank column, or for layer,expert rows the shortest run of "
     "one layer"},
    {"reader", RS_PARAM_ENUM, "auto", 0, 0, "auto|contiguous|strided",
     "how the writer read the top-k view: contiguous (the PR's code: in a batch of several tokens only the first "
     "token's ids are its own, the rest are stored as not observed), strided (every row kept), auto (default: "
     "contiguous when no expert repeats across the tokens of any batch)"},
    {"model", RS_PARAM_STRING, NULL, 0, 0, NULL, "root attribute model"},
    {"gzip", RS_PARAM_INT, "0", 0, 9, NULL, "compress the datasets with gzip LEVEL 1-9 (default 0: none)"},
};
static const rs_import_option_form llamacpp_forms[] = {
    {"E", RS_IMPORT_REQUIRED}, {"K", 0}, {"MODE", 0}, {"NAME", 0}, {"LEVEL", 0},
};
_Static_assert(sizeof llamacpp_forms / sizeof llamacpp_forms[0] ==
                   sizeof llamacpp_options / sizeof llamacpp_options[0],
               "one form per option");

static int llamacpp_check(const rs_params *p, rs_error *err)
{
    RS_CHECK(!rs_param_is_set(p, "top_k") || rs_param_int(p, "top_k") <= rs_param_int(p, "experts"), err,
             "--top-k %lld exceeds --experts %lld (the model's k is at most E)", rs_param_int(p, "top_k"),
             rs_param_int(p, "experts"));
    return 0;
}

static const rs_importer_type llamacpp_type = {
    .name = "llamacpp",
    .summary = "llama.cpp moe-trace CSV: layer,expert rows (PR #28544) or phase,token,layer,rank,expert",
    .input = "a moe-trace CSV",
    .help =
        "Converts the CSV of llama.cpp's moe-trace example (MOE_TRACE_OUT, default moe_trace.csv)\n"
        "into a top-k-only trace (/router/topk_ids, no weights, no logits), one sequence per\n"
        "file in the order given. Two kinds of file, told apart by the first line:\n"
        "  layer,expert                    no header, one row per routed expert (PR #28544)\n"
        "  phase,token,layer,rank,expert   a header, then one row per routed expert (forks);\n"
        "                                  phase prefill/decode is stored in /tokens/phase\n"
        "The writer prints each MoE layer's top-k tensor of one batch token by token, k rows\n"
        "per token: a batch ends where the layer number stops increasing, and the distinct\n"
        "layer numbers, ascending, become layers 0..L-1 (attribute layer_index). llama.cpp runs\n"
        "the model's last layer only on the batch's last token (the one with logits): that row\n"
        "is stored at the last token, the other tokens are not observed at that layer. Files may\n"
        "be gzip-compressed; each is read twice (a scan, then the conversion), so not '-'.\n"
        "What had to be assumed is stored in the trace (routesim info shows it) and printed.\n",
    .example = "MOE_TRACE_OUT=run1.csv llama-moe-trace -m model.gguf -f prompt.txt -n 64\n"
               "routesim import llamacpp run1.csv run2.csv -o moe.h5 --experts 128",
    .options = llamacpp_options,
    .forms = llamacpp_forms,
    .num_options = sizeof llamacpp_options / sizeof llamacpp_options[0],
    .flags = RS_IMPORTER_MANY_INPUTS,
    .check = llamacpp_check,
    .run = llamacpp_run,
};
const rs_importer_type *const rs_importer_llamacpp = &llamacpp_type;
