#include "workloads/trace/trace_writer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/output_path.h"
#include "workloads/trace/h5util.h"
#include "workloads/trace/half.h"

struct rs_trace_writer {
    rs_trace_layout layout;
    char *path;
    char tmp[4200];
    hid_t file;
    hid_t f16_type;
    rs_h5_appender logits, topk_ids, topk_weights, token_ids, phase, offsets, domain, quality, cost;
    int model_cost_set;
    uint16_t *scratch;
    size_t scratch_count;
    int64_t tokens;
    int64_t last_offset;
    int64_t sequences;
};

static void close_all(rs_trace_writer *w)
{
    rs_h5_appender *all[] = {&w->logits, &w->topk_ids, &w->topk_weights, &w->token_ids, &w->phase,
                             &w->offsets, &w->domain, &w->quality, &w->cost};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        rs_h5_appender_close(all[i]);
    if (w->f16_type >= 0)
        H5Tclose(w->f16_type);
    w->f16_type = -1;
    if (w->file >= 0)
        H5Fclose(w->file);
    w->file = -1;
}

static void destroy(rs_trace_writer *w)
{
    free(w->scratch);
    free(w->path);
    free(w);
}

void rs_trace_writer_abort(rs_trace_writer *w)
{
    if (!w)
        return;
    close_all(w);
    rs_temp_discard(w->tmp);
    destroy(w);
}

/* Rows per HDF5 chunk so a chunk holds about 1 MiB, as the format suggests. */
static hsize_t rows_per_chunk(size_t row_bytes)
{
    size_t rows = ((size_t)1 << 20) / (row_bytes ? row_bytes : 1);
    if (rows < 1)
        rows = 1;
    if (rows > 65536)
        rows = 65536;
    return (hsize_t)rows;
}

static int write_attributes(rs_trace_writer *w, rs_error *err)
{
    const rs_trace_layout *l = &w->layout;
    hid_t root = w->file;
    RS_TRY(rs_h5_write_attr_string(root, "format", "routesim-trace", err));
    RS_TRY(rs_h5_write_attr_int(root, "format_version", 1, err));
    RS_TRY(rs_h5_write_attr_int(root, "num_layers", l->num_layers, err));
    RS_TRY(rs_h5_write_attr_int(root, "num_experts", l->num_experts, err));
    RS_TRY(rs_h5_write_attr_string(root, "unit", l->unit ? l->unit : "token", err));
    if (l->model)
        RS_TRY(rs_h5_write_attr_string(root, "model", l->model, err));
    if (l->scoring)
        RS_TRY(rs_h5_write_attr_string(root, "scoring", l->scoring, err));
    if (l->source)
        RS_TRY(rs_h5_write_attr_string(root, "source", l->source, err));
    if (l->import_notes && l->import_notes[0])
        RS_TRY(rs_h5_write_attr_string(root, "import_notes", l->import_notes, err));
    if (l->top_k > 0)
        RS_TRY(rs_h5_write_attr_int(root, "top_k", l->top_k, err));
    if (l->norm_topk >= 0)
        RS_TRY(rs_h5_write_attr_int(root, "norm_topk", l->norm_topk, err));
    if (l->n_group > 0) {
        RS_TRY(rs_h5_write_attr_int(root, "n_group", l->n_group, err));
        RS_TRY(rs_h5_write_attr_int(root, "topk_group", l->topk_group, err));
    }
    if (l->routed_scaling_factor > 0)
        RS_TRY(rs_h5_write_attr_double(root, "routed_scaling_factor", l->routed_scaling_factor, err));
    if (l->expert_names)
        RS_TRY(rs_h5_write_attr_string_array(root, "expert_names", l->expert_names, l->num_experts, err));
    if (l->layer_index) {
        hsize_t dims[1] = {(hsize_t)l->num_layers};
        hid_t space = H5Screate_simple(1, dims, NULL);
        hid_t attr = H5Acreate2(root, "layer_index", H5T_STD_I32LE, space, H5P_DEFAULT, H5P_DEFAULT);
        int rc = attr < 0 || H5Awrite(attr, H5T_NATIVE_INT32, l->layer_index) < 0;
        if (attr >= 0)
            H5Aclose(attr);
        H5Sclose(space);
        RS_CHECK(!rc, err, "cannot write attribute 'layer_index'");
    }
    return 0;
}

static int create_datasets(rs_trace_writer *w, rs_error *err)
{
    const rs_trace_layout *l = &w->layout;
    hsize_t L = (hsize_t)l->num_layers, E = (hsize_t)l->num_experts, K = (hsize_t)l->topk_k;
    int gz = l->gzip_level;
    if (l->logits != RS_LOGITS_NONE) {
        hsize_t row[2] = {L, E};
        hid_t ftype = H5T_IEEE_F32LE, mtype = H5T_NATIVE_FLOAT;
        size_t elem = 4;
        if (l->logits == RS_LOGITS_F16) {
            w->f16_type = rs_h5_float16_type();
            ftype = mtype = w->f16_type;
            elem = 2;
        } else if (l->logits == RS_LOGITS_BF16) {
            ftype = H5T_STD_U16LE;
            mtype = H5T_NATIVE_UINT16;
            elem = 2;
        }
        RS_TRY(rs_h5_appender_create(&w->logits, w->file, "/router/logits", ftype, mtype, 3, row,
                                     rows_per_chunk((size_t)(L * E) * elem), gz, err));
        if (l->logits == RS_LOGITS_BF16)
            RS_TRY(rs_h5_write_attr_string(w->logits.dset, "encoding", "bfloat16", err));
    }
    if (K > 0) {
        hsize_t row[2] = {L, K};
        hsize_t chunk = rows_per_chunk((size_t)(L * K) * 4);
        RS_TRY(rs_h5_appender_create(&w->topk_ids, w->file, "/router/topk_ids", H5T_STD_I32LE, H5T_NATIVE_INT32, 3,
                                     row, chunk, gz, err));
        if (l->topk_weights)
            RS_TRY(rs_h5_appender_create(&w->topk_weights, w->file, "/router/topk_weights", H5T_IEEE_F32LE,
                                         H5T_NATIVE_FLOAT, 3, row, chunk, gz, err));
    }
    if (l->token_ids)
        RS_TRY(rs_h5_appender_create(&w->token_ids, w->file, "/tokens/ids", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, NULL,
                                     65536, gz, err));
    if (l->phase)
        RS_TRY(rs_h5_appender_create(&w->phase, w->file, "/tokens/phase", H5T_STD_U8LE, H5T_NATIVE_UINT8, 1, NULL,
                                     65536, gz, err));
    if (l->outcome_quality) {
        hsize_t row[1] = {E};
        RS_TRY(rs_h5_appender_create(&w->quality, w->file, "/outcome/quality", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2,
                                     row, rows_per_chunk((size_t)E * 4), gz, err));
    }
    if (l->outcome_cost == RS_COST_PER_QUERY) {
        hsize_t row[1] = {E};
        RS_TRY(rs_h5_appender_create(&w->cost, w->file, "/outcome/cost", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 2, row,
                                     rows_per_chunk((size_t)E * 4), gz, err));
    }
    RS_TRY(rs_h5_appender_create(&w->offsets, w->file, "/sequences/offsets", H5T_STD_I64LE, H5T_NATIVE_INT64, 1,
                                 NULL, 4096, 0, err));
    int64_t zero = 0;
    RS_TRY(rs_h5_appender_append(&w->offsets, &zero, 1, err));
    if (l->num_domains > 0) {
        RS_TRY(rs_h5_appender_create(&w->domain, w->file, "/sequences/domain", H5T_STD_I32LE, H5T_NATIVE_INT32, 1,
                                     NULL, 4096, 0, err));
        if (l->domain_names)
            RS_TRY(rs_h5_write_attr_string_array(w->domain.dset, "names", l->domain_names, l->num_domains, err));
    }
    return 0;
}

int rs_trace_writer_create(rs_trace_writer **out, const char *path, const rs_trace_layout *layout, rs_error *err)
{
    *out = NULL;
    RS_CHECK(layout->num_layers >= 1 && layout->num_experts >= 1, err, "%s: layout needs L >= 1 and E >= 1", path);
    int is_query = layout->unit && strcmp(layout->unit, "query") == 0;
    RS_CHECK(layout->logits != RS_LOGITS_NONE || layout->topk_k > 0 || (is_query && layout->outcome_quality), err,
             "%s: a trace needs logits or recorded top-k (a unit = query trace: outcome quality)", path);
    RS_CHECK(is_query || (!layout->outcome_quality && layout->outcome_cost == RS_COST_NONE), err,
             "%s: outcome datasets need unit = \"query\"", path);
    RS_CHECK(!is_query || layout->num_layers == 1, err, "%s: a unit = query trace has num_layers = 1", path);
    rs_h5_quiet();
    rs_trace_writer *w = calloc(1, sizeof *w);
    RS_CHECK(w, err, "%s: out of memory", path);
    w->layout = *layout;
    w->file = w->f16_type = -1;
    rs_h5_appender *all[] = {&w->logits, &w->topk_ids, &w->topk_weights, &w->token_ids, &w->phase,
                             &w->offsets, &w->domain, &w->quality, &w->cost};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        all[i]->dset = -1;
    w->path = strdup(path);
    if (!w->path || rs_make_parent_dirs(path, err) != 0 || rs_temp_path(path, w->tmp, sizeof w->tmp, err) != 0) {
        if (!w->path)
            rs_fail(err, "%s: out of memory", path);
        destroy(w);
        return -1;
    }
    w->file = H5Fcreate(w->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (w->file < 0) {
        rs_temp_discard(w->tmp);
        destroy(w);
        return rs_fail(err, "%s: cannot create file (is the directory writable?)", path);
    }
    if (create_datasets(w, err) != 0) {
        rs_fail_context(err, "%s", path);
        rs_trace_writer_abort(w);
        return -1;
    }
    *out = w;
    return 0;
}

int rs_trace_writer_append(rs_trace_writer *w, int n, const float *logits, const int32_t *topk_ids,
                           const float *topk_weights, const int32_t *token_ids, const uint8_t *phase, rs_error *err)
{
    const rs_trace_layout *l = &w->layout;
    const char *p = w->path;
    RS_CHECK(n >= 0, err, "%s: negative token count", p);
    RS_CHECK((logits != NULL) == (l->logits != RS_LOGITS_NONE), err, "%s: logits given/missing against layout", p);
    RS_CHECK((topk_ids != NULL) == (l->topk_k > 0), err, "%s: topk_ids given/missing against layout", p);
    RS_CHECK((topk_weights != NULL) == (l->topk_k > 0 && l->topk_weights), err,
             "%s: topk_weights given/missing against layout", p);
    RS_CHECK((token_ids != NULL) == (l->token_ids != 0), err, "%s: token ids given/missing against layout", p);
    RS_CHECK((phase != NULL) == (l->phase != 0), err, "%s: phase given/missing against layout", p);
    if (n == 0)
        return 0;
    if (logits) {
        size_t count = (size_t)n * (size_t)l->num_layers * (size_t)l->num_experts;
        const void *rows = logits;
        if (l->logits != RS_LOGITS_F32) {
            if (w->scratch_count < count) {
                uint16_t *grown = realloc(w->scratch, count * sizeof *grown);
                RS_CHECK(grown, err, "%s: out of memory", p);
                w->scratch = grown;
                w->scratch_count = count;
            }
            for (size_t i = 0; i < count; i++)
                w->scratch[i] = l->logits == RS_LOGITS_F16 ? rs_float_to_half(logits[i]) : rs_float_to_bf16(logits[i]);
            rows = w->scratch;
        }
        if (rs_h5_appender_append(&w->logits, rows, (hsize_t)n, err) != 0)
            return rs_fail_context(err, "%s: /router/logits", p);
    }
    if (topk_ids && rs_h5_appender_append(&w->topk_ids, topk_ids, (hsize_t)n, err) != 0)
        return rs_fail_context(err, "%s: /router/topk_ids", p);
    if (topk_weights && rs_h5_appender_append(&w->topk_weights, topk_weights, (hsize_t)n, err) != 0)
        return rs_fail_context(err, "%s: /router/topk_weights", p);
    if (token_ids && rs_h5_appender_append(&w->token_ids, token_ids, (hsize_t)n, err) != 0)
        return rs_fail_context(err, "%s: /tokens/ids", p);
    if (phase && rs_h5_appender_append(&w->phase, phase, (hsize_t)n, err) != 0)
        return rs_fail_context(err, "%s: /tokens/phase", p);
    w->tokens += n;
    return 0;
}

/* The first value that breaks the outcome contract, as a message; 0 if none. */
static int check_outcome_values(const rs_trace_writer *w, int n, const float *quality, const float *cost,
                                rs_error *err)
{
    const int E = w->layout.num_experts;
    for (int t = 0; t < n; t++) {
        for (int e = 0; e < E; e++) {
            size_t i = (size_t)t * (size_t)E + (size_t)e;
            long long q = (long long)(w->quality.rows + (hsize_t)t);
            RS_CHECK(!quality || !isinf(quality[i]), err,
                     "%s: /outcome/quality: infinite value at query %lld, model %d (NaN marks not evaluated)", w->path,
                     q, e);
            RS_CHECK(!cost || (cost[i] >= 0 && !isinf(cost[i])), err,
                     "%s: /outcome/cost: %g at query %lld, model %d (costs must be finite and >= 0)", w->path,
                     (double)cost[i], q, e);
        }
    }
    return 0;
}

int rs_trace_writer_append_outcome(rs_trace_writer *w, int n, const float *quality, const float *cost,
                                   rs_error *err)
{
    const rs_trace_layout *l = &w->layout;
    const char *p = w->path;
    RS_CHECK((quality != NULL) == (l->outcome_quality != 0), err, "%s: quality given/missing against layout", p);
    RS_CHECK((cost != NULL) == (l->outcome_cost == RS_COST_PER_QUERY), err, "%s: cost given/missing against layout",
             p);
    RS_TRY(check_outcome_values(w, n, quality, cost, err));
    if (quality && rs_h5_appender_append(&w->quality, quality, (hsize_t)n, err) != 0)
        return rs_fail_context(err, "%s: /outcome/quality", p);
    if (cost && rs_h5_appender_append(&w->cost, cost, (hsize_t)n, err) != 0)
        return rs_fail_context(err, "%s: /outcome/cost", p);
    return 0;
}

int rs_trace_writer_set_model_cost(rs_trace_writer *w, const float *cost, rs_error *err)
{
    const int E = w->layout.num_experts;
    RS_CHECK(w->layout.outcome_cost == RS_COST_PER_MODEL, err, "%s: per-model cost against layout", w->path);
    for (int e = 0; e < E; e++)
        RS_CHECK(cost[e] >= 0 && !isinf(cost[e]), err, "%s: /outcome/cost: %g for model %d (costs must be finite and "
                 ">= 0)", w->path, (double)cost[e], e);
    hsize_t dims[1] = {(hsize_t)E};
    RS_TRY(rs_h5_make_parents(w->file, "/outcome/cost", err));
    hid_t space = H5Screate_simple(1, dims, NULL);
    hid_t dcpl = rs_h5_untimed(H5P_DATASET_CREATE);
    hid_t dset = H5Dcreate2(w->file, "/outcome/cost", H5T_IEEE_F32LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Pclose(dcpl);
    int rc = dset < 0 || H5Dwrite(dset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, cost) < 0;
    if (dset >= 0)
        H5Dclose(dset);
    H5Sclose(space);
    RS_CHECK(!rc, err, "%s: /outcome/cost: cannot write", w->path);
    w->model_cost_set = 1;
    return 0;
}

int rs_trace_writer_end_sequences(rs_trace_writer *w, int n, const int64_t *ends, const int32_t *domains,
                                  rs_error *err)
{
    int64_t last = w->last_offset;
    for (int i = 0; i < n; i++) {
        RS_CHECK(ends[i] >= last && ends[i] <= w->tokens, err,
                 "%s: sequence end %lld outside [%lld, %lld] (ends must not decrease nor pass the tokens written)",
                 w->path, (long long)ends[i], (long long)last, (long long)w->tokens);
        last = ends[i];
        if (w->layout.num_domains > 0)
            RS_CHECK(domains[i] >= 0 && domains[i] < w->layout.num_domains, err, "%s: domain %d outside [0, %d)",
                     w->path, domains[i], w->layout.num_domains);
    }
    if (rs_h5_appender_append(&w->offsets, ends, (hsize_t)n, err) != 0)
        return rs_fail_context(err, "%s: /sequences/offsets", w->path);
    if (w->layout.num_domains > 0 && rs_h5_appender_append(&w->domain, domains, (hsize_t)n, err) != 0)
        return rs_fail_context(err, "%s: /sequences/domain", w->path);
    w->last_offset = last;
    w->sequences += n;
    return 0;
}

int rs_trace_writer_end_sequence(rs_trace_writer *w, int32_t domain, rs_error *err)
{
    return rs_trace_writer_end_sequences(w, 1, &w->tokens, &domain, err);
}

int rs_trace_writer_set_bias(rs_trace_writer *w, const float *bias, rs_error *err)
{
    hsize_t dims[2] = {(hsize_t)w->layout.num_layers, (hsize_t)w->layout.num_experts};
    RS_TRY(rs_h5_make_parents(w->file, "/router/bias", err));
    hid_t space = H5Screate_simple(2, dims, NULL);
    hid_t dcpl = rs_h5_untimed(H5P_DATASET_CREATE);
    hid_t dset = H5Dcreate2(w->file, "/router/bias", H5T_IEEE_F32LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Pclose(dcpl);
    int rc = dset < 0 || H5Dwrite(dset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, bias) < 0;
    if (dset >= 0)
        H5Dclose(dset);
    H5Sclose(space);
    RS_CHECK(!rc, err, "%s: /router/bias: cannot write", w->path);
    return 0;
}

void rs_trace_writer_set_import_notes(rs_trace_writer *w, const char *notes) { w->layout.import_notes = notes; }

int64_t rs_trace_writer_tokens(const rs_trace_writer *w) { return w->tokens; }

int rs_trace_writer_finish(rs_trace_writer *w, rs_error *err)
{
    int rc = 0;
    if (w->last_offset != w->tokens)
        rc = rs_fail(err, "%s: %lld tokens after the last sequence end", w->path,
                     (long long)(w->tokens - w->last_offset));
    if (rc == 0 && w->layout.outcome_quality && (int64_t)w->quality.rows != w->tokens)
        rc = rs_fail(err, "%s: /outcome/quality has %lld rows for %lld queries", w->path,
                     (long long)w->quality.rows, (long long)w->tokens);
    if (rc == 0 && w->layout.outcome_cost == RS_COST_PER_QUERY && (int64_t)w->cost.rows != w->tokens)
        rc = rs_fail(err, "%s: /outcome/cost has %lld rows for %lld queries", w->path, (long long)w->cost.rows,
                     (long long)w->tokens);
    if (rc == 0 && w->layout.outcome_cost == RS_COST_PER_MODEL && !w->model_cost_set)
        rc = rs_fail(err, "%s: /outcome/cost [E] was never given", w->path);
    if (rc == 0 && write_attributes(w, err) != 0)
        rc = rs_fail_context(err, "%s", w->path);
    if (rc != 0) {
        rs_trace_writer_abort(w);
        return -1;
    }
    close_all(w);
    rc = rs_commit_path(w->tmp, w->path, err);
    destroy(w);
    return rc;
}
