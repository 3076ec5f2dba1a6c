/* Reading the records of Megatron-LM's RouterTracer
 * (megatron/core/transformer/moe/router_trace.py): router_trace_rank{r}.jsonl
 * holds one json.dumps object per line, one per (step, block, layer) router
 * call. A record's top_indices [num_tokens][topk] can be megabytes of text,
 * so nothing here holds a line: the header fields are read as they come and
 * top_indices row by row, from a stream that reads the file with pread (so
 * several streams, one per layer, can read one file at once). */
#ifndef ROUTESIM_MEGATRON_RECORD_H
#define ROUTESIM_MEGATRON_RECORD_H

#include <stdint.h>

#include "routesim/error.h"

/* A window onto a plain file, read forward with pread from any offset. */
typedef struct rs_mg_stream {
    int fd;
    const char *label; /* the file, in messages */
    unsigned char *buf;
    int64_t cap, len, at; /* buf[at..len) is unread */
    int64_t base;         /* file offset of buf[0] */
    int64_t line;         /* 1-based line number of the next byte */
    int32_t *scratch;     /* rows being checked (2 x RS_MG_MAX_TOPK ids), allocated on first use */
} rs_mg_stream;

int rs_mg_stream_init(rs_mg_stream *s, int fd, const char *label, int64_t buffer_bytes, rs_error *err);
/* The next byte read is the one at offset, on line `line`. */
void rs_mg_stream_seek(rs_mg_stream *s, int64_t offset, int64_t line);
void rs_mg_stream_free(rs_mg_stream *s);

enum { RS_MG_DECODER = 0, RS_MG_MTP = 1 };

/* The largest row (topk) read: rows are copied into buffers of this size. */
#define RS_MG_MAX_TOPK 65536

typedef struct rs_mg_record {
    int64_t line;       /* where the record is (1-based) */
    int64_t step, layer, rank, num_tokens, topk;
    int block;          /* RS_MG_DECODER or RS_MG_MTP */
    int64_t mtp_idx;    /* -1 when the record has none */
    int has_logits;     /* logit_offset, logit_bytes and logit_shape given */
    int64_t logit_offset, logit_bytes, logit_rows, logit_cols;
    int has_hidden;     /* hs_offset, ...: a hidden-state sidecar (not read) */
    int64_t indices_at; /* file offset of top_indices' '[' */
    /* What the rows hold; filled by a full read (RS_MG_READ_ROWS) only. */
    int64_t rows_seen;     /* rows with 2 or more ids */
    int ascending;         /* every such row is in strictly ascending id order */
    double order_evidence; /* sum of log(k!) over those rows: how unlikely ascending order is by chance */
    int64_t max_id, max_row, max_col; /* the largest id and where (-1 when no ids) */
} rs_mg_record;

typedef enum rs_mg_read_mode {
    RS_MG_READ_ROWS, /* parse and check every row of top_indices */
    RS_MG_SKIP_ROWS, /* only find the end of top_indices */
} rs_mg_read_mode;

/* Reads the next record. Returns 1 for a record, 0 at the end of the file,
 * -1 with a one-line message naming the line and the field. A record must
 * hold step, block, layer, rank, num_tokens, topk and top_indices (integers
 * >= 0, block "decoder" or "mtp", stage "pre_dispatch" when given) and end its
 * line; unknown keys are skipped, a key given twice is an error. In
 * RS_MG_READ_ROWS mode top_indices must have num_tokens rows of topk
 * distinct ids >= 0. */
int rs_mg_read_record(rs_mg_stream *s, rs_mg_record *rec, rs_mg_read_mode mode, rs_error *err);

/* Reading top_indices row by row from rec->indices_at: begin, then next
 * until it returns 0 after the last row. A row must have rec->topk ids, each
 * in [0, num_experts); next returns 1 with the row in ids. */
int rs_mg_rows_begin(rs_mg_stream *s, const rs_mg_record *rec, rs_error *err);
int rs_mg_rows_next(rs_mg_stream *s, const rs_mg_record *rec, int64_t row, int num_experts, int32_t *ids,
                    rs_error *err);

#endif
