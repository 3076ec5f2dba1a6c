#include "workloads/trace/sequence_cursor.h"

#include <stdlib.h>
#include <string.h>

enum { BLOCK = 4096 };

int rs_sequence_cursor_init(rs_sequence_cursor *c, rs_trace *trace, rs_error *err)
{
    memset(c, 0, sizeof *c);
    c->trace = trace;
    c->num_sequences = rs_trace_get_info(trace)->num_sequences;
    c->block_start = -1;
    c->block = malloc(BLOCK * sizeof *c->block);
    RS_CHECK(c->block, err, "out of memory");
    return 0;
}

void rs_sequence_cursor_free(rs_sequence_cursor *c)
{
    free(c->block);
    memset(c, 0, sizeof *c);
}

void rs_seq_window_free(rs_seq_window *w)
{
    free(w->offsets);
    memset(w, 0, sizeof *w);
}

int64_t rs_sequence_offset(rs_sequence_cursor *c, int64_t s, rs_error *err, int *failed)
{
    if (s < c->block_start || s >= c->block_start + c->block_len) {
        int64_t count = c->num_sequences + 1 - s;
        if (count > BLOCK)
            count = BLOCK;
        if (rs_trace_read_offsets(c->trace, s, count, c->block, err) != 0) {
            *failed = 1;
            return 0;
        }
        c->block_start = s;
        c->block_len = count;
    }
    return c->block[s - c->block_start];
}

int rs_sequence_cursor_window(rs_sequence_cursor *c, int64_t t0, int n, rs_seq_window *w, int32_t *seq_of_token,
                              rs_error *err)
{
    int failed = 0;
    const int64_t end = t0 + n;
    while (c->current < c->num_sequences && rs_sequence_offset(c, c->current + 1, err, &failed) <= t0 && !failed)
        c->current++;
    RS_TRY(failed ? -1 : 0);
    int64_t count = 0;
    for (int64_t s = c->current;; s++) {
        if (count + 1 > w->capacity) {
            int64_t cap = w->capacity ? 2 * w->capacity : 1024;
            int64_t *grown = realloc(w->offsets, (size_t)cap * sizeof *grown);
            RS_CHECK(grown, err, "out of memory");
            w->offsets = grown;
            w->capacity = cap;
        }
        int64_t off = rs_sequence_offset(c, s, err, &failed);
        RS_TRY(failed ? -1 : 0);
        w->offsets[count++] = off;
        if (off >= end || s == c->num_sequences)
            break;
    }
    w->first_seq = c->current;
    w->num_seq = (int)(count - 1);
    int32_t i = 0;
    for (int t = 0; t < n; t++) {
        while (w->offsets[i + 1] <= t0 + t)
            i++;
        seq_of_token[t] = i;
    }
    return 0;
}

/* The sequence holding token t0 (the cursor only moves forward). */
static int64_t sequence_at(rs_sequence_cursor *c, int64_t t0, rs_error *err, int *failed)
{
    int64_t s = c->current;
    while (s < c->num_sequences && rs_sequence_offset(c, s + 1, err, failed) <= t0 && !*failed)
        s++;
    return s;
}

int64_t rs_sequence_floor(rs_sequence_cursor *c, int64_t t0, int64_t x, rs_error *err, int *failed)
{
    int64_t best = -1;
    for (int64_t s = sequence_at(c, t0, err, failed); s < c->num_sequences && !*failed; s++) {
        int64_t b = rs_sequence_offset(c, s + 1, err, failed);
        if (b > x)
            break;
        if (b > t0)
            best = b;
    }
    return *failed ? 0 : best;
}

int64_t rs_sequence_ceil(rs_sequence_cursor *c, int64_t t0, int64_t x, rs_error *err, int *failed)
{
    int64_t s = sequence_at(c, t0, err, failed);
    for (; s < c->num_sequences && !*failed; s++) {
        int64_t b = rs_sequence_offset(c, s + 1, err, failed);
        if (b >= x && b > t0)
            return b;
    }
    return *failed ? 0 : rs_sequence_offset(c, c->num_sequences, err, failed);
}

/* Walks the step batches from t0: the last end <= x (floor) or the first
 * end >= x (ceil). */
static int64_t step_boundary(rs_sequence_cursor *c, int64_t t0, int64_t x, int64_t batch_tokens, int ceil_mode,
                             rs_error *err, int *failed)
{
    const int64_t S = c->num_sequences;
    int64_t s = sequence_at(c, t0, err, failed);
    int64_t best = -1, tokens = 0, first = s;
    for (; s < S && !*failed; s++) {
        int64_t start = rs_sequence_offset(c, s, err, failed);
        int64_t len = rs_sequence_offset(c, s + 1, err, failed) - start;
        if (s > first && tokens + len > batch_tokens) { /* a batch ends at `start` */
            if (start >= x && ceil_mode)
                return start;
            if (start > x)
                return best;
            best = start;
            first = s;
            tokens = 0;
        }
        tokens += len;
    }
    if (*failed)
        return 0;
    int64_t last = rs_sequence_offset(c, S, err, failed); /* T ends the last batch */
    if (ceil_mode)
        return last;
    return last <= x ? last : best;
}

int64_t rs_step_floor(rs_sequence_cursor *c, int64_t t0, int64_t x, int64_t batch_tokens, rs_error *err,
                      int *failed)
{
    return step_boundary(c, t0, x, batch_tokens, 0, err, failed);
}

int64_t rs_step_ceil(rs_sequence_cursor *c, int64_t t0, int64_t x, int64_t batch_tokens, rs_error *err,
                     int *failed)
{
    return step_boundary(c, t0, x, batch_tokens, 1, err, failed);
}
