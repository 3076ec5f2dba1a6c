/* Walks /sequences/offsets alongside the token stream, reading it in
 * blocks, so the engine knows which sequences a chunk overlaps without ever
 * holding all S + 1 offsets. */
#ifndef ROUTESIM_SEQUENCE_CURSOR_H
#define ROUTESIM_SEQUENCE_CURSOR_H

#include <stdint.h>

#include "routesim/chunk.h"
#include "workloads/trace/trace.h"

typedef struct rs_sequence_cursor {
    rs_trace *trace;
    int64_t num_sequences;
    int64_t current;   /* the sequence holding the next chunk's first token */
    int64_t *block;    /* offsets[block_start .. block_start + block_len) */
    int64_t block_start, block_len;
} rs_sequence_cursor;

/* The sequences overlapping one chunk (see rs_chunk.seq_offsets). */
typedef struct rs_seq_window {
    int64_t first_seq;
    int num_seq;
    int64_t *offsets; /* num_seq + 1 values */
    int64_t capacity;
} rs_seq_window;

void rs_seq_window_free(rs_seq_window *w);

int rs_sequence_cursor_init(rs_sequence_cursor *c, rs_trace *trace, rs_error *err);
void rs_sequence_cursor_free(rs_sequence_cursor *c);

/* offsets[s]; *failed is set on a read error. */
int64_t rs_sequence_offset(rs_sequence_cursor *c, int64_t s, rs_error *err, int *failed);

/* Fills the window of sequences overlapping tokens [t0, t0 + n) and
 * seq_of_token[0..n) (indices into the window). Chunks must come in token
 * order. */
int rs_sequence_cursor_window(rs_sequence_cursor *c, int64_t t0, int n, rs_seq_window *w, int32_t *seq_of_token,
                              rs_error *err);

/* Chunk boundaries for grouped routers. For a chunk starting at t0 (itself
 * a boundary), *_floor returns the last boundary b with t0 < b <= x, or -1
 * when there is none; *_ceil the first boundary b >= x with b > t0 (T at
 * the end of the trace). */
int64_t rs_sequence_floor(rs_sequence_cursor *c, int64_t t0, int64_t x, rs_error *err, int *failed);
int64_t rs_sequence_ceil(rs_sequence_cursor *c, int64_t t0, int64_t x, rs_error *err, int *failed);

/* Decode-step batches (RS_GROUP_STEP): from the sequence starting at t0,
 * sequences join a batch while it stays within batch_tokens tokens (a
 * longer one forms a batch alone); batch ends are the boundaries. */
int64_t rs_step_floor(rs_sequence_cursor *c, int64_t t0, int64_t x, int64_t batch_tokens, rs_error *err,
                      int *failed);
int64_t rs_step_ceil(rs_sequence_cursor *c, int64_t t0, int64_t x, int64_t batch_tokens, rs_error *err,
                     int *failed);

#endif
