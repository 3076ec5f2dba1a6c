/* Reading token ranges of an open trace. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "workloads/trace/h5util.h"
#include "workloads/trace/half.h"
#include "workloads/trace/trace_internal.h"

static const char *const logits_path = RS_LOGITS_PATH;

int rs_trace_read_logits_stored(rs_trace *tr, int64_t t0, int n, void *out, rs_error *err)
{
    return rs_trace_read_logits_band_stored(tr, t0, n, 0, tr->info.num_layers, out, err);
}

int rs_trace_read_logits_band_stored(rs_trace *tr, int64_t t0, int n, int l0, int nl, void *out, rs_error *err)
{
    switch (tr->logits_dtype) {
    case RS_LOGITS_F32:
        return rs_h5_read_block(tr->logits, H5T_NATIVE_FLOAT, t0, n, l0, nl, out, tr->path, logits_path, err);
    case RS_LOGITS_F16:
    case RS_LOGITS_BF16:
        /* memory type = file type (checked little-endian at open): no HDF5 conversion */
        return rs_h5_read_block(tr->logits, tr->raw_type, t0, n, l0, nl, out, tr->path, logits_path, err);
    case RS_LOGITS_NONE:
        break;
    }
    return rs_fail(err, "%s: %s: missing dataset", tr->path, logits_path);
}

int rs_trace_widen_logits(const rs_trace *tr, const uint16_t *stored, float *out, size_t count)
{
    if (tr->logits_dtype == RS_LOGITS_F16)
        return rs_half_to_float_checked(stored, out, count);
    return rs_bf16_to_float_checked(stored, out, count);
}

void rs_trace_widen_logit_rows(const rs_trace *tr, const uint16_t *stored, size_t stored_stride, float *out,
                               size_t out_stride, int rows, size_t count)
{
    if (tr->logits_dtype == RS_LOGITS_F16)
        rs_half_to_float_rows(stored, stored_stride, out, out_stride, rows, count);
    else
        rs_bf16_to_float_rows(stored, stored_stride, out, out_stride, rows, count);
}

int rs_trace_stored_any_nonfinite(const rs_trace *tr, const uint16_t *stored, size_t count)
{
    if (tr->logits_dtype == RS_LOGITS_F16)
        return rs_half_any_nonfinite(stored, count);
    return rs_bf16_any_nonfinite(stored, count);
}

int rs_trace_read_logits(rs_trace *tr, int64_t t0, int n, float *out, void *scratch, rs_error *err)
{
    if (tr->logits_dtype == RS_LOGITS_F32 || tr->logits_dtype == RS_LOGITS_NONE)
        return rs_trace_read_logits_stored(tr, t0, n, out, err);
    RS_TRY(rs_trace_read_logits_stored(tr, t0, n, scratch, err));
    rs_trace_widen_logits(tr, scratch, out, (size_t)n * (size_t)tr->info.num_layers * (size_t)tr->info.num_experts);
    return 0;
}

int rs_trace_logit_extents(rs_trace *tr, int64_t t0, int n, rs_extent *out, int max, rs_error *err)
{
    if (!tr->direct || n <= 0)
        return 0;
    if (tr->contiguous_base >= 0) {
        RS_CHECK(max >= 1, err, "extent buffer too small");
        out[0] = (rs_extent){t0, n, tr->contiguous_base + t0 * (int64_t)tr->row_bytes};
        return 1;
    }
    const int64_t cT = tr->logits_chunk_tokens;
    int count = 0;
    rs_h5_lock();
    for (int64_t c = t0 / cT; c * cT < t0 + n; c++) {
        hsize_t coord[3] = {(hsize_t)(c * cT), 0, 0};
        unsigned filters = 0;
        haddr_t addr = HADDR_UNDEF;
        hsize_t size = 0;
        if (count == max || H5Dget_chunk_info_by_coord(tr->logits, coord, &filters, &addr, &size) < 0 ||
            addr == HADDR_UNDEF || filters != 0) {
            count = 0; /* an unwritten chunk holds fill values: let HDF5 produce them */
            break;
        }
        int64_t a = t0 > c * cT ? t0 : c * cT, b = (c + 1) * cT < t0 + n ? (c + 1) * cT : t0 + n;
        out[count++] = (rs_extent){a, b - a, (int64_t)addr + (a - c * cT) * (int64_t)tr->row_bytes};
    }
    rs_h5_unlock();
    return count;
}

int rs_trace_read_logit_rows(const rs_trace *tr, const rs_extent *ext, int num_ext, int64_t token, int count,
                             void *dst, rs_error *err)
{
    return rs_trace_read_logit_band_rows(tr, ext, num_ext, token, count, 0, tr->info.num_layers, dst, err);
}

static int pread_all(const rs_trace *tr, char *out, size_t bytes, off_t at, int64_t token, rs_error *err)
{
    for (size_t done = 0; done < bytes;) {
        ssize_t got = pread(tr->fd, out + done, bytes - done, at + (off_t)done);
        if (got <= 0)
            return rs_fail(err, "%s: %s: read failed at token %lld: %s", tr->path, logits_path, (long long)token,
                           got < 0 ? strerror(errno) : "file truncated");
        done += (size_t)got;
    }
    return 0;
}

int rs_trace_read_logit_band_rows(const rs_trace *tr, const rs_extent *ext, int num_ext, int64_t token, int count,
                                  int l0, int nl, void *dst, rs_error *err)
{
    char *out = dst;
    const int whole = l0 == 0 && nl == tr->info.num_layers;
    const size_t layer_bytes = tr->row_bytes / (size_t)tr->info.num_layers, band_bytes = (size_t)nl * layer_bytes;
    for (int i = 0; i < num_ext && count > 0; i++) {
        if (token < ext[i].token || token >= ext[i].token + ext[i].count)
            continue;
        int64_t take = ext[i].token + ext[i].count - token;
        take = take < count ? take : count;
        off_t at = (off_t)(ext[i].offset + (token - ext[i].token) * (int64_t)tr->row_bytes);
        if (whole) { /* rows back to back: one read */
            RS_TRY(pread_all(tr, out, (size_t)take * tr->row_bytes, at, token, err));
            out += (size_t)take * tr->row_bytes;
        } else {
            for (int64_t t = 0; t < take; t++, out += band_bytes) {
                off_t row = at + (off_t)(t * (int64_t)tr->row_bytes + l0 * (int64_t)layer_bytes);
                RS_TRY(pread_all(tr, out, band_bytes, row, token + t, err));
            }
        }
        token += take;
        count -= (int)take;
    }
    RS_CHECK(count == 0, err, "%s: %s: tokens outside the planned extents", tr->path, logits_path);
    return 0;
}

int rs_trace_read_token_ids(rs_trace *tr, int64_t t0, int n, int32_t *out, rs_error *err)
{
    RS_CHECK(tr->token_ids >= 0, err, "%s: /tokens/ids: missing dataset", tr->path);
    return rs_h5_read_rows(tr->token_ids, H5T_NATIVE_INT32, t0, n, out, tr->path, "/tokens/ids", err);
}

int rs_trace_read_phase(rs_trace *tr, int64_t t0, int n, uint8_t *out, rs_error *err)
{
    RS_CHECK(tr->phase >= 0, err, "%s: /tokens/phase: missing dataset", tr->path);
    return rs_h5_read_rows(tr->phase, H5T_NATIVE_UINT8, t0, n, out, tr->path, "/tokens/phase", err);
}

int rs_trace_read_topk(rs_trace *tr, int64_t t0, int n, int32_t *ids, float *weights, rs_error *err)
{
    return rs_trace_read_topk_band(tr, t0, n, 0, tr->info.num_layers, ids, weights, err);
}

int rs_trace_read_topk_band(rs_trace *tr, int64_t t0, int n, int l0, int nl, int32_t *ids, float *weights,
                            rs_error *err)
{
    RS_CHECK(tr->topk_ids >= 0, err, "%s: /router/topk_ids: missing dataset", tr->path);
    RS_TRY(rs_h5_read_block(tr->topk_ids, H5T_NATIVE_INT32, t0, n, l0, nl, ids, tr->path, "/router/topk_ids", err));
    const size_t K = (size_t)tr->info.recorded_k, per_token = (size_t)nl * K;
    const size_t count = (size_t)n * per_token;
    int E = tr->info.num_experts;
    for (size_t i = 0; i < count; i++) {
        if (ids[i] < -1 || ids[i] >= E)
            return rs_fail(err, "%s: /router/topk_ids: expert id %d at token %lld, layer %d is outside [-1, %d)",
                           tr->path, ids[i], (long long)(t0 + (int64_t)(i / per_token)),
                           l0 + (int)(i % per_token / K), E);
    }
    if (weights && tr->topk_weights >= 0)
        RS_TRY(rs_h5_read_block(tr->topk_weights, H5T_NATIVE_FLOAT, t0, n, l0, nl, weights, tr->path,
                                "/router/topk_weights", err));
    return 0;
}

int rs_trace_read_bias(rs_trace *tr, float *out, rs_error *err)
{
    RS_CHECK(tr->bias >= 0, err, "%s: /router/bias: missing dataset", tr->path);
    return rs_h5_read_rows(tr->bias, H5T_NATIVE_FLOAT, 0, tr->info.num_layers, out, tr->path, "/router/bias", err);
}

int rs_trace_read_offsets(rs_trace *tr, int64_t s0, int64_t count, int64_t *out, rs_error *err)
{
    return rs_h5_read_rows(tr->offsets, H5T_NATIVE_INT64, s0, count, out, tr->path, "/sequences/offsets", err);
}

int rs_trace_read_domain(rs_trace *tr, int64_t s0, int64_t count, int32_t *out, rs_error *err)
{
    RS_CHECK(tr->domain >= 0, err, "%s: /sequences/domain: missing dataset", tr->path);
    return rs_h5_read_rows(tr->domain, H5T_NATIVE_INT32, s0, count, out, tr->path, "/sequences/domain", err);
}

int rs_trace_read_outcome(rs_trace *tr, int64_t t0, int n, float *quality, float *cost, rs_error *err)
{
    const size_t E = (size_t)tr->info.num_experts;
    if (quality) {
        RS_CHECK(tr->quality >= 0, err, "%s: /outcome/quality: missing dataset", tr->path);
        RS_TRY(rs_h5_read_rows(tr->quality, H5T_NATIVE_FLOAT, t0, n, quality, tr->path, "/outcome/quality", err));
    }
    if (!cost)
        return 0;
    RS_CHECK(tr->cost >= 0, err, "%s: /outcome/cost: missing dataset", tr->path);
    if (tr->cost_per_query)
        return rs_h5_read_rows(tr->cost, H5T_NATIVE_FLOAT, t0, n, cost, tr->path, "/outcome/cost", err);
    for (int t = 0; t < n; t++) /* one cost per model, the same for every query */
        memcpy(cost + (size_t)t * E, tr->model_cost, E * sizeof *cost);
    return 0;
}

int rs_trace_cost_per_query(const rs_trace *tr) { return tr->cost >= 0 && tr->cost_per_query; }
