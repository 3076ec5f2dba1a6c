/* The trace object shared by the reader's two halves: opening and
 * validating (trace_reader.c) and reading token ranges (trace_rows.c). */
#ifndef ROUTESIM_TRACE_INTERNAL_H
#define ROUTESIM_TRACE_INTERNAL_H

#include <hdf5.h>

#include "workloads/trace/trace.h"

#define RS_LOGITS_PATH "/router/logits"

struct rs_trace {
    char *path;
    hid_t file;
    rs_trace_info info;
    char *unit, *model, *scoring, *source, *import_notes;
    char **expert_names;
    int num_expert_names;
    char **domain_names;
    int num_domain_names;

    hid_t offsets, logits, topk_ids, topk_weights, token_ids, phase, bias, domain;
    hid_t quality, cost; /* /outcome/quality [T, E], /outcome/cost [T, E] or [E] */
    int cost_per_query;  /* 1: cost is [T, E]; 0: [E], held in model_cost */
    float *model_cost;   /* [E] when cost_per_query = 0 */
    hid_t raw_type; /* the stored 16-bit type, read without conversion */
    rs_logits_dtype logits_dtype;
    int64_t logits_chunk_tokens;

    /* Direct reads of uncompressed logits, bypassing HDF5's copies: */
    int direct;               /* 1 when the bytes of a token range can be located and pread */
    int fd;                   /* the file, for pread; -1 when not direct */
    int64_t contiguous_base;  /* file offset of a contiguous dataset, -1 when chunked */
    size_t row_bytes;         /* one token's stored [L, E] logits */
};

/* Reads and checks the root attributes of the model's routing rule (top_k,
 * scoring, norm_topk, n_group, topk_group, routed_scaling_factor) into
 * tr->info; num_experts must be read already. */
int rs_trace_read_rule_attributes(rs_trace *tr, rs_error *err);

#endif
