/* rs_trace_scan_values: counts what would stop a run or be misread, block by
 * block (trace_scan.h). The ids are read without the range check of
 * rs_trace_read_topk, which stops at the first bad one. */
#include <math.h>
#include <stdlib.h>

#include "workloads/trace/h5util.h"
#include "workloads/trace/trace_internal.h"
#include "workloads/trace/trace_scan.h"

/* Values per block: 4 Mi (16 MiB of float32), at least one token. */
enum { BLOCK_VALUES = 1 << 22 };

static int block_tokens(const rs_trace *tr, size_t per_token, size_t block_values)
{
    int64_t n = (int64_t)(block_values / per_token);
    if (n < 1)
        n = 1;
    if (n > tr->info.num_tokens)
        n = tr->info.num_tokens;
    return (int)n;
}

static int scan_logits(rs_trace *tr, rs_trace_scan *scan, size_t block_values, rs_error *err)
{
    const int L = tr->info.num_layers, E = tr->info.num_experts;
    const size_t per_token = (size_t)L * (size_t)E;
    const int block = block_tokens(tr, per_token, block_values);
    float *z = malloc((size_t)block * per_token * sizeof *z);
    void *scratch = rs_trace_logit_size(tr) == 2 ? malloc((size_t)block * per_token * 2) : NULL;
    if (!z || (rs_trace_logit_size(tr) == 2 && !scratch)) {
        free(z);
        free(scratch);
        return rs_fail(err, "out of memory");
    }
    int rc = 0;
    for (int64_t t0 = 0; t0 < tr->info.num_tokens && rc == 0; t0 += block) {
        int n = (int)(tr->info.num_tokens - t0 < block ? tr->info.num_tokens - t0 : block);
        if ((rc = rs_trace_read_logits(tr, t0, n, z, scratch, err)) != 0)
            break;
        for (int t = 0; t < n; t++) {
            const float *row = z + (size_t)t * per_token;
            int64_t bad = 0;
            for (size_t i = 0; i < per_token; i++) {
                if (isfinite(row[i]))
                    continue;
                if (isnan(row[i]))
                    scan->nan_logits++;
                else
                    scan->inf_logits++;
                if (bad++ == 0 && scan->first_nonfinite_token < 0) {
                    scan->first_nonfinite_token = t0 + t;
                    scan->first_nonfinite_layer = (int)(i / (size_t)E);
                }
            }
            scan->nonfinite_tokens += bad > 0;
        }
    }
    free(z);
    free(scratch);
    return rc;
}

static int scan_topk(rs_trace *tr, rs_trace_scan *scan, size_t block_values, rs_error *err)
{
    const int L = tr->info.num_layers, E = tr->info.num_experts, K = tr->info.recorded_k;
    const size_t per_token = (size_t)L * (size_t)K;
    const int block = block_tokens(tr, per_token, block_values);
    int32_t *ids = malloc((size_t)block * per_token * sizeof *ids);
    float *w = tr->topk_weights >= 0 ? malloc((size_t)block * per_token * sizeof *w) : NULL;
    if (!ids || (tr->topk_weights >= 0 && !w)) {
        free(ids);
        free(w);
        return rs_fail(err, "out of memory");
    }
    int rc = 0;
    for (int64_t t0 = 0; t0 < tr->info.num_tokens && rc == 0; t0 += block) {
        int n = (int)(tr->info.num_tokens - t0 < block ? tr->info.num_tokens - t0 : block);
        rc = rs_h5_read_block(tr->topk_ids, H5T_NATIVE_INT32, t0, n, 0, L, ids, tr->path, "/router/topk_ids", err);
        if (rc == 0 && w)
            rc = rs_h5_read_block(tr->topk_weights, H5T_NATIVE_FLOAT, t0, n, 0, L, w, tr->path,
                                  "/router/topk_weights", err);
        for (int t = 0; t < n && rc == 0; t++) {
            int64_t bad = 0;
            for (size_t i = 0; i < per_token; i++) {
                const size_t at = (size_t)t * per_token + i;
                if (w && !isfinite(w[at]))
                    scan->nonfinite_weights++;
                if (ids[at] >= -1 && ids[at] < E)
                    continue;
                scan->bad_ids++;
                if (bad++ == 0 && scan->first_bad_id_token < 0) {
                    scan->first_bad_id_token = t0 + t;
                    scan->first_bad_id_layer = (int)(i / (size_t)K);
                    scan->first_bad_id = ids[at];
                }
            }
            scan->bad_id_tokens += bad > 0;
        }
    }
    free(ids);
    free(w);
    return rc;
}

int rs_trace_scan_values_blocked(rs_trace *tr, rs_trace_scan *scan, size_t block_values, rs_error *err)
{
    *scan = (rs_trace_scan){.first_nonfinite_token = -1, .first_bad_id_token = -1};
    if (tr->info.num_tokens <= 0)
        return 0;
    if (tr->info.has_logits)
        RS_TRY(scan_logits(tr, scan, block_values, err));
    if (tr->info.recorded_k > 0)
        RS_TRY(scan_topk(tr, scan, block_values, err));
    return 0;
}

int rs_trace_scan_values(rs_trace *tr, rs_trace_scan *scan, rs_error *err)
{
    return rs_trace_scan_values_blocked(tr, scan, BLOCK_VALUES, err);
}
