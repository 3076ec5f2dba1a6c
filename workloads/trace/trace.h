/* Reading routesim v1 traces (docs/trace-format.md).
 *
 * rs_trace_open validates the whole contract up front (attributes, shapes,
 * dtypes, offsets) so a bad file fails before any work starts, then the
 * engine pulls token ranges on demand. Nothing here holds O(T) memory:
 * offsets are checked and read in blocks. */
#ifndef ROUTESIM_TRACE_H
#define ROUTESIM_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "routesim/chunk.h"
#include "routesim/error.h"

/* The largest num_layers and num_experts a trace may declare. */
enum { RS_TRACE_MAX_LAYERS = 100000, RS_TRACE_MAX_EXPERTS = 1000000 };

typedef enum rs_logits_dtype {
    RS_LOGITS_NONE,
    RS_LOGITS_F32,
    RS_LOGITS_F16,
    RS_LOGITS_BF16, /* uint16 with attribute encoding="bfloat16" */
} rs_logits_dtype;

typedef struct rs_trace rs_trace;

int rs_trace_open(rs_trace **out, const char *path, rs_error *err);
void rs_trace_close(rs_trace *tr);

const rs_trace_info *rs_trace_get_info(const rs_trace *tr);
rs_logits_dtype rs_trace_logits_dtype(const rs_trace *tr);
const char *rs_logits_dtype_name(rs_logits_dtype dtype);
/* Bytes per stored logit (4 or 2), 0 without logits. */
size_t rs_trace_logit_size(const rs_trace *tr);
/* Tokens per HDF5 chunk of /router/logits (0 when contiguous or absent). */
int64_t rs_trace_logits_chunk_tokens(const rs_trace *tr);
/* Domain label names (attribute `names` of /sequences/domain); may be 0. */
int rs_trace_domain_name_count(const rs_trace *tr);
const char *rs_trace_domain_name(const rs_trace *tr, int index);
/* Root attribute `expert_names`, or NULL per index when absent. */
const char *rs_trace_expert_name(const rs_trace *tr, int index);
const char *rs_trace_source(const rs_trace *tr);
/* What the importer that wrote the trace assumed or could not know, one
 * note per line ("" when none: root attribute import_notes). */
const char *rs_trace_import_notes(const rs_trace *tr);

/* Logits of tokens [t0, t0+n) as float32 [n, L, E]. scratch must hold
 * n*L*E*rs_trace_logit_size() bytes when the stored dtype is 16-bit. */
int rs_trace_read_logits(rs_trace *tr, int64_t t0, int n, float *out, void *scratch, rs_error *err);
/* The same logits as stored: float32 into a float buffer, or the raw 16-bit
 * words; rs_trace_widen_logits then turns count 16-bit words into float32
 * (so the widening can run in parallel, away from the HDF5 read). */
int rs_trace_read_logits_stored(rs_trace *tr, int64_t t0, int n, void *out, rs_error *err);
/* Only layers [l0, l0 + nl) of them, as [n, nl, E]: a layer band of a chunk
 * too large to hold whole. */
int rs_trace_read_logits_band_stored(rs_trace *tr, int64_t t0, int n, int l0, int nl, void *out, rs_error *err);
/* Returns 1 when any stored value is NaN or infinite. */
int rs_trace_widen_logits(const rs_trace *tr, const uint16_t *stored, float *out, size_t count);
/* Widens rows rows of count words, stored_stride and out_stride elements
 * apart (one layer of a chunk's tokens), words already checked. */
void rs_trace_widen_logit_rows(const rs_trace *tr, const uint16_t *stored, size_t stored_stride, float *out,
                               size_t out_stride, int rows, size_t count);
/* 1 when any of count 16-bit words as stored is NaN or infinite. */
int rs_trace_stored_any_nonfinite(const rs_trace *tr, const uint16_t *stored, size_t count);
/* Where stored logits lie in the file, for reading them without HDF5:
 * tokens [token, token + count) start at byte `offset`, rows back to back. */
typedef struct rs_extent {
    int64_t token, count, offset;
} rs_extent;

/* The extents of tokens [t0, t0+n), at most max of them (n / chunk + 2
 * always suffice). Returns their number, 0 when the logits must be read
 * through HDF5 (compressed, big-endian, chunks split across layers, or not
 * yet written), -1 on error. */
int rs_trace_logit_extents(rs_trace *tr, int64_t t0, int n, rs_extent *out, int max, rs_error *err);
/* Reads the stored rows of tokens [token, token + count), which the
 * extents cover, into dst with pread: safe to call from many threads. */
int rs_trace_read_logit_rows(const rs_trace *tr, const rs_extent *ext, int num_ext, int64_t token, int count,
                             void *dst, rs_error *err);
/* Only layers [l0, l0 + nl) of those rows, as [count, nl, E]. */
int rs_trace_read_logit_band_rows(const rs_trace *tr, const rs_extent *ext, int num_ext, int64_t token, int count,
                                  int l0, int nl, void *dst, rs_error *err);

int rs_trace_read_token_ids(rs_trace *tr, int64_t t0, int n, int32_t *out, rs_error *err);
int rs_trace_read_phase(rs_trace *tr, int64_t t0, int n, uint8_t *out, rs_error *err);
/* Recorded top-k [n, L, K]; weights may be NULL (or the trace may lack them). */
int rs_trace_read_topk(rs_trace *tr, int64_t t0, int n, int32_t *ids, float *weights, rs_error *err);
/* Only layers [l0, l0 + nl): [n, nl, K]. */
int rs_trace_read_topk_band(rs_trace *tr, int64_t t0, int n, int l0, int nl, int32_t *ids, float *weights,
                            rs_error *err);
int rs_trace_read_bias(rs_trace *tr, float *out, rs_error *err);
/* offsets[s0 .. s0+count) */
int rs_trace_read_offsets(rs_trace *tr, int64_t s0, int64_t count, int64_t *out, rs_error *err);
int rs_trace_read_domain(rs_trace *tr, int64_t s0, int64_t count, int32_t *out, rs_error *err);
/* unit = query outcomes of queries [t0, t0+n): quality [n, E] (NaN = not
 * evaluated) and cost [n, E] (a per-model cost [E] is repeated per query);
 * either may be NULL. Values were validated when the trace was opened
 * (quality finite or NaN, cost finite and >= 0). */
int rs_trace_read_outcome(rs_trace *tr, int64_t t0, int n, float *quality, float *cost, rs_error *err);
/* 1 when /outcome/cost is [T, E], 0 when it is [E] or absent. */
int rs_trace_cost_per_query(const rs_trace *tr);

#endif
