/* The JSON-lines importer's stages, one file each: reading a field's JSON
 * value (import_jsonl_fields.c), assembling the log in memory, row by row
 * (import_jsonl_log.c), putting it in trace order (import_jsonl_order.c) and
 * writing the trace (import_jsonl_write.c). import_jsonl.c runs them. */
#ifndef ROUTESIM_IMPORT_JSONL_INTERNAL_H
#define ROUTESIM_IMPORT_JSONL_INTERNAL_H

#include <cJSON.h>
#include <stdint.h>

#include "workloads/import/import_jsonl.h"

/* One (token, layer) row of the log. */
typedef struct log_row {
    int64_t line;
    int64_t first_expert; /* index into the expert (and weight) pool */
    int64_t logits_at;    /* index of the row's E logits in the logits pool; -1 when not read */
    int32_t seq;          /* index into the sequence table, then its rank */
    int32_t position;
    int32_t layer;        /* the logged value, then its rank */
    int32_t num_experts;
    int32_t token_id;     /* -1 when not mapped */
} log_row;

typedef struct seq_entry {
    int64_t number;      /* the id when it is an integer */
    int64_t name;        /* offset of a string (or composite) id in the name pool, -1 for integers */
    int32_t max_position;
    int32_t domain;      /* index into the domain names, -1 until a row names it */
    int64_t domain_line; /* the line that named it */
} seq_entry;

typedef struct import_state {
    const rs_import_jsonl_options *opt;
    const char *label; /* the input as messages name it */
    int composite_seq; /* map.seq joins keys with '+' */
    log_row *rows;
    int64_t num_rows, rows_cap;
    int32_t *experts;
    float *weights; /* parallel to experts when weights are mapped */
    int64_t pool_len, experts_cap, weights_cap;
    float *logits;  /* E per row when logits are mapped */
    int64_t logits_len, logits_cap;
    seq_entry *seqs;
    int64_t num_seqs, seqs_cap;
    int32_t *slots; /* open-addressing hash of seqs, -1 = empty */
    int64_t num_slots;
    char *names;
    int64_t names_len, names_cap;
    int all_numeric;
    char **domains; /* distinct domain labels, in order of first appearance */
    int32_t num_domains, last_domain;
    int64_t domains_cap;
    int32_t *layers; /* distinct logged layer values, ascending */
    int64_t num_layers, layers_cap;
    int k;
    int32_t *seq_by_rank;
} import_state;

/* ---- import_jsonl_fields.c: one field's JSON value ---- */

/* Records "FILE: line N: KEY: problem"; returns -1. */
__attribute__((format(printf, 5, 6))) int rs_jsonl_fail_line(const import_state *st, int64_t line, const char *key,
                                                             rs_error *err, const char *fmt, ...);
const char *rs_jsonl_type_name(const cJSON *v);
/* The value at a key or dotted path, or NULL. */
const cJSON *rs_jsonl_lookup(const cJSON *obj, const char *path);
/* The value of a mapped key; missing is an error naming `--map field=mapping`. */
const cJSON *rs_jsonl_require(const import_state *st, const cJSON *obj, int64_t line, const char *field,
                              const char *key, const char *mapping, rs_error *err);
/* An integral JSON number within [lo, hi] (exact: at most 2^53 in magnitude). */
int rs_jsonl_integer(const import_state *st, int64_t line, const char *key, const cJSON *v, int64_t lo, int64_t hi,
                     int64_t *out, rs_error *err);
/* A mapped key holding an integer in [0, max]. */
int rs_jsonl_integer_field(const import_state *st, const cJSON *obj, int64_t line, const char *field,
                           const char *key, int64_t max, int64_t *out, rs_error *err);
/* The sequence id of a composite key, as text: each part's value, a string
 * in JSON quotes or an integer, joined by '+' ("gsm8k"+0). */
int rs_jsonl_composite_id(const import_state *st, const cJSON *obj, int64_t line, char **out, rs_error *err);
/* A label given as a string or an integer, as text (malloc'ed). */
int rs_jsonl_label(const import_state *st, const cJSON *obj, int64_t line, const char *field, const char *key,
                   char **out, rs_error *err);
/* The experts list (and weights when mapped) into the pools and row. */
int rs_jsonl_parse_experts(import_state *st, const cJSON *obj, int64_t line, log_row *row, rs_error *err);
/* The E logits of the row into the logits pool. */
int rs_jsonl_parse_logits(import_state *st, const cJSON *obj, int64_t line, log_row *row, rs_error *err);

/* ---- import_jsonl_log.c: the log in memory ---- */

/* Reads every line of the input into st. */
int rs_jsonl_read_log(import_state *st, rs_error *err);
void rs_jsonl_free_log(import_state *st);
/* Rank of a logged layer value among the distinct ones. */
int32_t rs_jsonl_layer_rank(const import_state *st, int32_t value);

/* ---- import_jsonl_order.c: trace order ---- */

/* Sequence ids as messages show them: 5, "cmpl-a", "gsm8k"+0. */
void rs_jsonl_format_seq(const import_state *st, int32_t index, char *out, size_t size);
/* Sequences and layers ranked, rows sorted, duplicates refused. */
int rs_jsonl_order_rows(import_state *st, rs_error *err);
/* Tokens with no row at all, refused unless pad_gaps. */
int rs_jsonl_check_gaps(const import_state *st, rs_import_jsonl_report *report, rs_error *err);

/* ---- import_jsonl_write.c ---- */

int rs_jsonl_write_trace(const import_state *st, rs_import_jsonl_report *report, rs_error *err);

#endif
