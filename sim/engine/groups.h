/* Builds the token groups of a chunk (rs_groups in chunk.h) for the
 * sequence, batch and step modes. */
#ifndef ROUTESIM_GROUPS_H
#define ROUTESIM_GROUPS_H

#include "routesim/chunk.h"
#include "routesim/error.h"

typedef struct rs_group_buffer {
    rs_groups groups;
    int32_t *start, *tokens;
    int start_capacity, token_capacity;
} rs_group_buffer;

/* Groups of `mode` over chunk c (which must end on group boundaries). */
int rs_groups_build(rs_group_buffer *b, const rs_chunk *c, rs_group mode, int batch_tokens, rs_error *err);
void rs_group_buffer_free(rs_group_buffer *b);

const char *rs_group_name(rs_group mode);

#endif
