/* How many bytes a trace will take, worked out from its layout before it
 * is written, and the check of that size against the output limit and the
 * free disk space (core/output_space.h). */
#ifndef ROUTESIM_TRACE_SIZE_H
#define ROUTESIM_TRACE_SIZE_H

#include <stdint.h>

#include "core/output_space.h"
#include "routesim/error.h"
#include "workloads/trace/trace_writer.h"

/* Bytes of the datasets of a trace with this layout, `tokens` tokens and
 * `sequences` sequences, uncompressed (attributes and HDF5's own records,
 * a few KiB, are not counted); *per_token gets the bytes of one token. */
double rs_trace_layout_bytes(const rs_trace_layout *layout, int64_t tokens, int64_t sequences, double *per_token);

/* rs_output_space_check for that trace at path. */
int rs_trace_size_check(const char *path, const rs_trace_layout *layout, int64_t tokens, int64_t sequences,
                        const rs_output_limit *limit, rs_error *err);

#endif
