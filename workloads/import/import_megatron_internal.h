/* routesim import megatron: the state its passes share (import_megatron.c
 * is the entry point; import_megatron_dir.c lists the directory and keeps
 * the notes, import_megatron_scan.c is pass 1, import_megatron_write.c
 * pass 2). */
#ifndef ROUTESIM_IMPORT_MEGATRON_INTERNAL_H
#define ROUTESIM_IMPORT_MEGATRON_INTERNAL_H

#include <stdint.h>
#include <stddef.h>

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

/* "block 0, mtp 1, layer 3" style name of a key, for messages. */
void rs_mg_key_name(const layer_key *k, char *out, size_t size);
/* Appends one note (a line of import_notes); nonzero when out of memory. */
__attribute__((format(printf, 2, 3))) int rs_mg_add_note(import_state *st, const char *fmt, ...);
/* Finds and opens the rank files (and logits sidecars) of st->dir. */
int rs_mg_list_directory(import_state *st, rs_error *err);
/* qsort/bsearch order of layer keys: block, then mtp_idx, then layer. */
int rs_mg_compare_keys(const void *a, const void *b);
/* Pass 1 over one rank file: checks every record. */
int rs_mg_scan_rank(import_state *st, rank_file *rf, rs_error *err);
/* After pass 1: the trace's shape and the notes. */
int rs_mg_shape_trace(import_state *st, rs_error *err);
/* Pass 2: writes the trace. */
int rs_mg_write_trace(import_state *st, rs_error *err);

#endif
