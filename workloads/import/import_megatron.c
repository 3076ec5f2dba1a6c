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

#include "core/text_buffer.h"
#include "workloads/import/importer.h"
#include "workloads/import/megatron_record.h"
#include "workloads/trace/output_check.h"
#include "workloads/trace/trace_size.h"
#include "workloads/trace/trace_writer.h"

/* More distinct (block, mtp_idx, layer) than any model has means a broken file. */
#define MAX_LAYER_KEYS 4096
/* Rows of every layer ids and logits held for one append, and the sidecar
 * bytes read at once. */
#define BLOCK_BYTES ((int64_t)4 << 20)
#define SIDECAR_READ_BYTES ((int64_t)8 << 20)
/* One token's rows over all layers may not take more than this. */
#define MAX_TOKEN_BYTES ((int64_t)256 << 20)
#define CURSOR_BUFFER_BYTES 8192
/* ln(10^6): rows all in ascending id order by chance are this unlikely. */
#define ASCENDING_EVIDENCE 13.8155

/* A router the records name: (block, mtp_idx, layer). */
typedef struct layer_key {
    int block;
    int64_t mtp_idx, layer;
    int trace_layer; /* its rank among the keys: the trace's layer */
} layer_key;

typedef struct rank_file {
    int64_t rank;
    char *trace_path, *logits_path; /* logits_path NULL when DIR has no sidecar for the rank */
    const char *trace_name, *logits_name; /* the base names, for messages */
    int trace_fd, logits_fd;
    int64_t logits_size;
    int64_t records;
} rank_file;

/* What pass 1 counts in one step of one rank file (consecutive records with
 * the same step): the records of each layer, the tokens of each forward pass. */
typedef struct step_scan {
    int active;
    int64_t step, first_line, last_line;
    int64_t *count; /* [MAX_LAYER_KEYS] records per key in this step */
    int *touched;   /* keys with a record in this step */
    int num_touched;
    int64_t *pass_tokens, *pass_line;
    int64_t num_passes, passes_cap;
} step_scan;

/* A record of the step being written, linked to the next record of its layer. */
typedef struct step_entry {
    rs_mg_record rec;
    int layer;
    int next_of_layer;
} step_entry;

typedef struct import_state {
    const rs_import_job *job;
    const char *dir;
    int micro_batch, gzip_level;
    int64_t experts_option;    /* 0 when not given */
    int layer_base_option;     /* -1 when not given */
    const char *model;
    rank_file *ranks;
    int num_ranks;
    int skipped_hidden, skipped_state, ignored_files;

    layer_key *keys;
    int num_keys;
    int last_key;
    step_scan scan;

    /* pass 1 */
    int64_t records, tokens, sequences, observed_pairs;
    int64_t max_topk, min_topk;
    int64_t experts_from_logits, experts_line; /* -1 until a record has logits */
    const char *experts_file;
    int64_t records_with_logits, records_without_logits, no_logits_line;
    const char *no_logits_file;
    int any_hidden, saw_layer0, saw_mtp;
    int all_ascending;
    int64_t multi_id_rows;
    double order_evidence;
    int64_t max_id, max_id_line, max_id_row, max_id_col;
    const char *max_id_file;
    int empty_rank_files;

    /* the trace */
    int E, K, L, base, use_logits, reorder_by_logits;
    int32_t *layer_index;
    char *notes;
    size_t notes_len, notes_cap;

    /* pass 2 */
    int64_t pairs_with_logits, pairs_top_of_logits, tokens_written;
} import_state;

/* ---- messages and notes --------------------------------------------------------- */

static void key_name(const layer_key *k, char *out, size_t size)
{
    if (k->block == RS_MG_DECODER)
        snprintf(out, size, "decoder layer %lld", (long long)k->layer);
    else if (k->mtp_idx >= 0)
        snprintf(out, size, "mtp %lld layer %lld", (long long)k->mtp_idx, (long long)k->layer);
    else
        snprintf(out, size, "mtp layer %lld", (long long)k->layer);
}

static __attribute__((format(printf, 2, 3))) int add_note(import_state *st, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    size_t len = strlen(line);
    if (st->notes_len + len + 2 > st->notes_cap) {
        size_t cap = st->notes_cap ? st->notes_cap * 2 : 4096;
        while (cap < st->notes_len + len + 2)
            cap *= 2;
        char *grown = realloc(st->notes, cap);
        if (!grown)
            return -1;
        st->notes = grown;
        st->notes_cap = cap;
    }
    if (st->notes_len)
        st->notes[st->notes_len++] = '\n';
    memcpy(st->notes + st->notes_len, line, len + 1);
    st->notes_len += len;
    return 0;
}

/* ---- the directory ------------------------------------------------------------ */

/* rank when name is PREFIX<rank>SUFFIX with the rank written as Python's
 * str(int) writes it (no sign, no leading zero), else -1. */
static int64_t rank_in_name(const char *name, const char *prefix, const char *suffix)
{
    size_t p = strlen(prefix), s = strlen(suffix), n = strlen(name);
    if (n <= p + s || strncmp(name, prefix, p) != 0 || strcmp(name + n - s, suffix) != 0)
        return -1;
    size_t digits = n - p - s;
    if (digits > 9 || (digits > 1 && name[p] == '0'))
        return -1;
    int64_t rank = 0;
    for (size_t i = p; i < p + digits; i++) {
        if (name[i] < '0' || name[i] > '9')
            return -1;
        rank = rank * 10 + (name[i] - '0');
    }
    return rank;
}

static char *join_path(const char *dir, const char *name)
{
    size_t d = strlen(dir), n = strlen(name);
    char *path = malloc(d + n + 2);
    if (path)
        snprintf(path, d + n + 2, "%s%s%s", dir, d && dir[d - 1] == '/' ? "" : "/", name);
    return path;
}

static int compare_ranks(const void *a, const void *b)
{
    int64_t x = ((const rank_file *)a)->rank, y = ((const rank_file *)b)->rank;
    return (x > y) - (x < y);
}

/* Opens one of the files DIR holds, refusing what is not a plain file. */
static int open_input(const char *path, const char *name, int *fd, int64_t *size, rs_error *err)
{
    errno = 0;
    *fd = open(path, O_RDONLY | O_NONBLOCK); /* a FIFO must not block the import */
    RS_CHECK(*fd >= 0, err, "%s: cannot open (%s)", path, strerror(errno));
    struct stat sb;
    RS_CHECK(fstat(*fd, &sb) == 0 && S_ISREG(sb.st_mode), err, "%s: not a plain file (%s)", path, name);
    *size = (int64_t)sb.st_size;
    return 0;
}

/* The rank files of DIR (router_trace_rank0.jsonl ... rank R-1, none
 * missing), their sidecars, and what else is there. */
static int list_directory(import_state *st, rs_error *err)
{
    DIR *d = opendir(st->dir);
    RS_CHECK(d, err, "%s: cannot open the directory (%s)", st->dir, strerror(errno));
    int cap = 0, rc = 0;
    for (struct dirent *e; rc == 0 && (e = readdir(d));) {
        const char *name = e->d_name;
        if (name[0] == '.')
            continue;
        int64_t rank = rank_in_name(name, "router_trace_rank", ".jsonl");
        if (rank >= 0) {
            if (st->num_ranks == cap) {
                cap = cap ? cap * 2 : 8;
                rank_file *grown = realloc(st->ranks, (size_t)cap * sizeof *grown);
                if (!grown) {
                    rc = rs_fail(err, "%s: out of memory", st->dir);
                    break;
                }
                st->ranks = grown;
            }
            rank_file *rf = &st->ranks[st->num_ranks++];
            memset(rf, 0, sizeof *rf);
            rf->rank = rank;
            rf->trace_fd = rf->logits_fd = -1;
            rf->trace_path = join_path(st->dir, name);
            if (!rf->trace_path)
                rc = rs_fail(err, "%s: out of memory", st->dir);
            else
                rf->trace_name = rf->trace_path + strlen(rf->trace_path) - strlen(name);
        } else if (rank_in_name(name, "hidden_states_rank", ".bin") >= 0) {
            st->skipped_hidden++;
        } else if (rank_in_name(name, "router_state_rank", ".pt") >= 0) {
            st->skipped_state++;
        } else if (rank_in_name(name, "logits_rank", ".bin") < 0) {
            st->ignored_files++;
        }
    }
    closedir(d);
    RS_TRY(rc);
    RS_CHECK(st->num_ranks > 0, err,
             "%s: no router_trace_rank*.jsonl files (RouterTracer writes one per rank where "
             "--moe-routing-trace-path points)", st->dir);
    qsort(st->ranks, (size_t)st->num_ranks, sizeof *st->ranks, compare_ranks);
    for (int i = 0; i < st->num_ranks; i++)
        if (st->ranks[i].rank != i)
            return rs_fail(err, "%s: router_trace_rank%d.jsonl is missing: the directory has %d rank files up to "
                           "router_trace_rank%lld.jsonl, and RouterTracer writes one for every rank from 0",
                           st->dir, i, st->num_ranks, (long long)st->ranks[st->num_ranks - 1].rank);
    for (int i = 0; i < st->num_ranks; i++) {
        rank_file *rf = &st->ranks[i];
        int64_t size;
        RS_TRY(open_input(rf->trace_path, "a rank file", &rf->trace_fd, &size, err));
        unsigned char magic[2] = {0, 0};
        ssize_t got = pread(rf->trace_fd, magic, 2, 0);
        RS_CHECK(!(got == 2 && magic[0] == 0x1f && magic[1] == 0x8b), err,
                 "%s: gzip-compressed; RouterTracer writes plain JSON lines, read here with random access: "
                 "decompress it first", rf->trace_path);
        char name[64];
        snprintf(name, sizeof name, "logits_rank%d.bin", i);
        rf->logits_path = join_path(st->dir, name);
        RS_CHECK(rf->logits_path, err, "%s: out of memory", st->dir);
        rf->logits_name = rf->logits_path + strlen(rf->logits_path) - strlen(name);
        if (access(rf->logits_path, F_OK) == 0) {
            RS_TRY(open_input(rf->logits_path, "a logits sidecar", &rf->logits_fd, &rf->logits_size, err));
        } else {
            free(rf->logits_path);
            rf->logits_path = NULL;
        }
    }
    return 0;
}

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
        key_name(&st->keys[k], short_name, sizeof short_name);
        key_name(&st->keys[full], full_name, sizeof full_name);
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
        key_name(&st->keys[key], name, sizeof name);
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

static int scan_rank(import_state *st, rank_file *rf, rs_error *err)
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

static int compare_keys(const void *a, const void *b)
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
static int shape_trace(import_state *st, rs_error *err)
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

    qsort(st->keys, (size_t)st->num_keys, sizeof *st->keys, compare_keys);
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
        fail |= add_note(st, "read router_trace_rank0.jsonl, one rank");
    else
        fail |= add_note(st, "read %d rank files (router_trace_rank0.jsonl to router_trace_rank%d.jsonl) rank after "
                         "rank, each rank's tokens their own sequences: the format cannot tell data-parallel ranks "
                         "from tensor-parallel peers logging the same tokens or pipeline stages logging other layers "
                         "of them", st->num_ranks, st->num_ranks - 1);
    if (st->micro_batch == 1)
        fail |= add_note(st, "no sequence ids in the format: each record's tokens are taken as one sequence "
                         "(--micro-batch 1), and each record of a layer within a step as one forward pass");
    else
        fail |= add_note(st, "no sequence ids in the format: each record's tokens are taken as Megatron's [sequence, "
                         "micro-batch] layout flattened (sequence-first): token i is position i / %d of sequence "
                         "i %% %d (--micro-batch %d); each record of a layer within a step is one forward pass",
                         st->micro_batch, st->micro_batch, st->micro_batch);
    fail |= add_note(st, "layer numbers read as %s, layer_index = layer%s: %s",
                     st->base == 0 ? "the forward hook's (decoder.layers.N: 0-based, local to the pipeline stage)"
                                   : "the inference sink's (RouterReplay layer_number: 1-based in the model)",
                     st->base == 0 ? "" : " - 1", why);
    if (first_mtp >= 0 && first_mtp == st->L - 1)
        fail |= add_note(st, "layer %d is the MTP block's router, on the decoder's tokens (layer_index after the "
                         "decoder's last)", first_mtp);
    else if (first_mtp >= 0)
        fail |= add_note(st, "layers %d-%d are the MTP block's routers, on the decoder's tokens (layer_index after "
                         "the decoder's last)", first_mtp, st->L - 1);
    if (!st->all_ascending)
        fail |= add_note(st, "top_indices rows are kept in their recorded order (not all in ascending id order: the "
                         "router's top-k order)");
    else if (st->multi_id_rows > 0)
        fail |= add_note(st, st->reorder_by_logits
                                 ? "top_indices rows are in ascending expert id (the routing map's order), not by "
                                   "score: each row is reordered by descending logit"
                                 : "top_indices rows are in ascending expert id (the routing map's order), not by "
                                   "score, and without logits that order is kept: the first slot is not the top-1 "
                                   "expert");
    fail |= add_note(st, "combine weights are not recorded (no /router/topk_weights): %sreplay gives each expert 1/k; "
                     "the score function, top-k scaling and expert bias are not in the format",
                     st->use_logits ? "routers compute them from the logits, " : "");
    if (st->observed_pairs < st->tokens * st->L)
        fail |= add_note(st, "%lld (token, layer) pairs have no record (a layer absent from a step: RouterTracer "
                         "skips a router call whose routing map does not hold topk experts per token) and are "
                         "stored as -1 rows (not observed)", (long long)(st->tokens * st->L - st->observed_pairs));
    if (!st->use_logits && st->records_with_logits > 0) {
        if (st->records_without_logits > 0)
            fail |= add_note(st, "the logits sidecars are not used: %lld records have no logits (the first: %s line "
                             "%lld), and a trace has logits for every token or none", (long long)st->records_without_logits,
                             st->no_logits_file, (long long)st->no_logits_line);
        else
            fail |= add_note(st, "the logits sidecars are not used: some (token, layer) pairs have no record, and a "
                             "trace has logits for every pair or none");
    }
    if (st->empty_rank_files)
        fail |= add_note(st, "%d rank files hold no records", st->empty_rank_files);
    if (st->skipped_hidden || st->skipped_state)
        fail |= add_note(st, "skipped %d hidden_states_rank*.bin (hidden states are not part of a trace) and %d "
                         "router_state_rank*.pt (router weights, a torch pickle)", st->skipped_hidden,
                         st->skipped_state);
    if (st->ignored_files)
        fail |= add_note(st, "ignored %d other files of the directory", st->ignored_files);
    RS_CHECK(!fail, err, "%s: out of memory", st->dir);
    return 0;
}

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
                key_name(&st->keys[l], name, sizeof name);
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
    const layer_key *k = bsearch(&probe, st->keys, (size_t)st->num_keys, sizeof *st->keys, compare_keys);
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

static int write_trace(import_state *st, rs_error *err)
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
        int fail = add_note(st, "logits: the sidecars' bfloat16 router logits, stored as they are; the recorded "
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
        rc = list_directory(&st, err);
    if (rc == 0)
        rc = check_output(&st, err);
    for (int r = 0; rc == 0 && r < st.num_ranks; r++)
        rc = scan_rank(&st, &st.ranks[r], err);
    if (rc == 0)
        rc = shape_trace(&st, err);
    if (rc == 0)
        rc = write_trace(&st, err);
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
