#include "sim/engine/groups.h"

#include <stdlib.h>
#include <string.h>

const char *rs_group_name(rs_group mode)
{
    switch (mode) {
    case RS_GROUP_NONE: return "token";
    case RS_GROUP_SEQUENCE: return "sequence";
    case RS_GROUP_BATCH: return "batch";
    case RS_GROUP_STEP: return "step";
    case RS_GROUP_COUNT: break;
    }
    return "?";
}

void rs_group_buffer_free(rs_group_buffer *b)
{
    free(b->start);
    free(b->tokens);
    memset(b, 0, sizeof *b);
}

static int reserve(rs_group_buffer *b, int groups, int tokens, rs_error *err)
{
    if (groups + 1 > b->start_capacity) {
        int cap = groups + 1 > 2 * b->start_capacity ? groups + 1 : 2 * b->start_capacity;
        int32_t *grown = realloc(b->start, (size_t)cap * sizeof *grown);
        RS_CHECK(grown, err, "out of memory");
        b->start = grown;
        b->start_capacity = cap;
    }
    if (tokens > b->token_capacity) {
        int32_t *grown = realloc(b->tokens, (size_t)tokens * sizeof *grown);
        RS_CHECK(grown, err, "out of memory");
        b->tokens = grown;
        b->token_capacity = tokens;
    }
    return 0;
}

/* Clipped to the chunk, sequences are the window's; the chunk holds whole
 * sequences when this mode is in use. */
static int build_sequences(rs_group_buffer *b, const rs_chunk *c, rs_error *err)
{
    RS_TRY(reserve(b, c->num_seq, c->n, err));
    int g = 0;
    for (int s = 0; s < c->num_seq; s++) {
        int64_t a = c->seq_offsets[s] > c->t0 ? c->seq_offsets[s] : c->t0;
        int64_t z = c->seq_offsets[s + 1] < c->t0 + c->n ? c->seq_offsets[s + 1] : c->t0 + c->n;
        if (z <= a)
            continue; /* empty sequence */
        b->start[g++] = (int32_t)(a - c->t0);
    }
    b->start[g] = c->n;
    for (int t = 0; t < c->n; t++)
        b->tokens[t] = t;
    b->groups.count = g;
    return 0;
}

static int build_batches(rs_group_buffer *b, const rs_chunk *c, int batch_tokens, rs_error *err)
{
    int64_t first = c->t0 / batch_tokens, last = (c->t0 + c->n - 1) / batch_tokens;
    int count = c->n > 0 ? (int)(last - first + 1) : 0;
    RS_TRY(reserve(b, count, c->n, err));
    for (int g = 0; g < count; g++) {
        int64_t a = (first + g) * batch_tokens;
        b->start[g] = (int32_t)(a > c->t0 ? a - c->t0 : 0);
    }
    b->start[count] = c->n;
    for (int t = 0; t < c->n; t++)
        b->tokens[t] = t;
    b->groups.count = count;
    return 0;
}

/* Decode steps. From the chunk start (a batch start: chunks end on batch
 * boundaries), sequences join a batch while it stays within batch_tokens
 * tokens (a longer sequence forms a batch alone); step i of a batch holds
 * the i-th token of each of its sequences that has one. */
static int build_steps(rs_group_buffer *b, const rs_chunk *c, int batch_tokens, rs_error *err)
{
    int groups = 0, cursor = 0;
    RS_TRY(reserve(b, 1, c->n, err));
    for (int s = 0; s < c->num_seq;) {
        int first = s;
        int64_t tokens = 0, longest = 0;
        do {
            int64_t len = c->seq_offsets[s + 1] - c->seq_offsets[s];
            if (s > first && tokens + len > batch_tokens)
                break;
            tokens += len;
            longest = len > longest ? len : longest;
            s++;
        } while (s < c->num_seq);
        RS_TRY(reserve(b, groups + (int)longest, c->n, err));
        for (int64_t i = 0; i < longest; i++) {
            b->start[groups++] = cursor;
            for (int q = first; q < s; q++)
                if (c->seq_offsets[q] + i < c->seq_offsets[q + 1])
                    b->tokens[cursor++] = (int32_t)(c->seq_offsets[q] + i - c->t0);
        }
    }
    b->start[groups] = cursor;
    b->groups.count = groups;
    return 0;
}

int rs_groups_build(rs_group_buffer *b, const rs_chunk *c, rs_group mode, int batch_tokens, rs_error *err)
{
    switch (mode) {
    case RS_GROUP_SEQUENCE: RS_TRY(build_sequences(b, c, err)); break;
    case RS_GROUP_BATCH: RS_TRY(build_batches(b, c, batch_tokens, err)); break;
    case RS_GROUP_STEP: RS_TRY(build_steps(b, c, batch_tokens, err)); break;
    default: return rs_fail(err, "internal error: no groups for mode %d", (int)mode);
    }
    b->groups.start = b->start;
    b->groups.tokens = b->tokens;
    return 0;
}
