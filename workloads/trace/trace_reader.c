/* Opens a v1 trace and validates the whole contract before any work. */
#include "workloads/trace/trace_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "workloads/trace/h5util.h"


static const char *const logits_path = RS_LOGITS_PATH;

const char *rs_logits_dtype_name(rs_logits_dtype dtype)
{
    switch (dtype) {
    case RS_LOGITS_NONE: return "none";
    case RS_LOGITS_F32: return "float32";
    case RS_LOGITS_F16: return "float16";
    case RS_LOGITS_BF16: return "bfloat16";
    }
    return "?";
}

static void close_dataset(hid_t *d)
{
    if (*d >= 0)
        H5Dclose(*d);
    *d = -1;
}

void rs_trace_close(rs_trace *tr)
{
    if (!tr)
        return;
    close_dataset(&tr->offsets);
    close_dataset(&tr->logits);
    close_dataset(&tr->topk_ids);
    close_dataset(&tr->topk_weights);
    close_dataset(&tr->token_ids);
    close_dataset(&tr->phase);
    close_dataset(&tr->bias);
    close_dataset(&tr->domain);
    close_dataset(&tr->quality);
    close_dataset(&tr->cost);
    free(tr->model_cost);
    if (tr->raw_type >= 0)
        H5Tclose(tr->raw_type);
    if (tr->file >= 0)
        H5Fclose(tr->file);
    if (tr->fd >= 0)
        close(tr->fd);
    rs_h5_free_strings(tr->expert_names, tr->num_expert_names);
    rs_h5_free_strings(tr->domain_names, tr->num_domain_names);
    free(tr->unit);
    free(tr->model);
    free(tr->scoring);
    free(tr->source);
    free(tr->import_notes);
    free(tr->path);
    free(tr);
}

static int read_root_attributes(rs_trace *tr, rs_error *err)
{
    const char *f = tr->path;
    hid_t root = tr->file;
    char *format = NULL;
    int rc = rs_h5_attr_string(root, "format", &format, f, "root", err);
    if (rc < 0)
        return -1;
    if (rc == 0)
        return rs_fail(err, "%s: root attribute 'format' missing (must be \"routesim-trace\")", f);
    int ok = strcmp(format, "routesim-trace") == 0;
    if (!ok) {
        rs_fail(err, "%s: root attribute 'format' is \"%s\", must be \"routesim-trace\"", f, format);
        free(format);
        return -1;
    }
    free(format);

    long long version = 0, layers = 0, experts = 0;
    RS_CHECK(rs_h5_attr_int(root, "format_version", &version, f, "root", err) == 1, err,
             "%s: root attribute 'format_version' missing (must be 1)", f);
    RS_CHECK(version == 1, err, "%s: root attribute 'format_version' is %lld; this routesim reads version 1", f,
             version);
    if (rs_h5_attr_int(root, "num_layers", &layers, f, "root", err) != 1)
        return err && err->msg[0] ? -1 : rs_fail(err, "%s: root attribute 'num_layers' missing", f);
    if (rs_h5_attr_int(root, "num_experts", &experts, f, "root", err) != 1)
        return err && err->msg[0] ? -1 : rs_fail(err, "%s: root attribute 'num_experts' missing", f);
    RS_CHECK(layers >= 1 && layers <= RS_TRACE_MAX_LAYERS, err,
             "%s: root attribute 'num_layers' = %lld must be in [1, %d] (the most layers routesim reads)", f, layers,
             RS_TRACE_MAX_LAYERS);
    RS_CHECK(experts >= 1 && experts <= RS_TRACE_MAX_EXPERTS, err,
             "%s: root attribute 'num_experts' = %lld must be in [1, %d] (the most experts routesim reads)", f,
             experts, RS_TRACE_MAX_EXPERTS);
    tr->info.num_layers = (int)layers;
    tr->info.num_experts = (int)experts;

    rc = rs_h5_attr_string(root, "unit", &tr->unit, f, "root", err);
    if (rc < 0)
        return -1;
    RS_CHECK(rc == 1, err, "%s: root attribute 'unit' missing (must be \"token\" or \"query\")", f);
    RS_CHECK(strcmp(tr->unit, "token") == 0 || strcmp(tr->unit, "query") == 0, err,
             "%s: root attribute 'unit' is \"%s\", must be \"token\" or \"query\"", f, tr->unit);
    RS_CHECK(strcmp(tr->unit, "query") != 0 || layers == 1, err,
             "%s: root attribute 'num_layers' = %lld, must be 1 when unit = \"query\"", f, layers);

    if (rs_h5_attr_string(root, "model", &tr->model, f, "root", err) < 0 ||
        rs_h5_attr_string(root, "source", &tr->source, f, "root", err) < 0 ||
        rs_h5_attr_string(root, "import_notes", &tr->import_notes, f, "root", err) < 0)
        return -1;
    RS_TRY(rs_trace_read_rule_attributes(tr, err));
    if ((rc = rs_h5_attr_string_array(root, "expert_names", &tr->expert_names, &tr->num_expert_names, f, "root",
                                      err)) < 0)
        return -1;
    RS_CHECK(rc == 0 || tr->num_expert_names == experts, err,
             "%s: root attribute 'expert_names' has %d names, num_experts is %lld", f, tr->num_expert_names,
             experts);
    return 0;
}

/* Streams through /sequences/offsets checking the MUSTs without holding it. */
static int check_offsets(rs_trace *tr, int64_t T, rs_error *err)
{
    const char *f = tr->path, *p = "/sequences/offsets";
    hsize_t dims[1];
    RS_TRY(rs_h5_open_dataset(tr->file, p, 1, dims, &tr->offsets, f, err));
    RS_CHECK(rs_h5_is_integer(tr->offsets), err, "%s: %s: dtype must be int64", f, p);
    RS_CHECK(dims[0] >= 1, err, "%s: %s: empty; it needs S+1 >= 1 values", f, p);
    tr->info.num_sequences = (int64_t)dims[0] - 1;
    enum { BLOCK = 65536 };
    int64_t *buf = malloc(BLOCK * sizeof *buf);
    RS_CHECK(buf, err, "%s: out of memory", f);
    int64_t prev = 0;
    for (int64_t s0 = 0; s0 < (int64_t)dims[0]; s0 += BLOCK) {
        int64_t n = (int64_t)dims[0] - s0 < BLOCK ? (int64_t)dims[0] - s0 : BLOCK;
        if (rs_h5_read_rows(tr->offsets, H5T_NATIVE_INT64, s0, n, buf, f, p, err) != 0) {
            free(buf);
            return -1;
        }
        for (int64_t i = 0; i < n; i++) {
            int64_t s = s0 + i;
            if (s == 0 && buf[i] != 0) {
                long long first = (long long)buf[0];
                free(buf);
                return rs_fail(err, "%s: %s: offsets[0] = %lld, must be 0", f, p, first);
            }
            if (buf[i] < prev) {
                long long a = (long long)prev, b = (long long)buf[i];
                free(buf);
                return rs_fail(err, "%s: %s: decreasing at index %lld (%lld after %lld)", f, p, (long long)s, b, a);
            }
            prev = buf[i];
        }
    }
    free(buf);
    RS_CHECK(prev == T, err, "%s: %s: last offset is %lld but the trace has T = %lld tokens", f, p, (long long)prev,
             (long long)T);
    return 0;
}

/* Uncompressed little-endian logits stored whole rows at a time (a
 * contiguous dataset, or chunks spanning all layers and experts) can be
 * read with pread straight into the engine's buffers: one copy instead of
 * HDF5's two, and from many threads at once. */
static void find_direct_layout(rs_trace *tr, hid_t dcpl, const hsize_t *dims, size_t elem_size)
{
    hid_t type = H5Dget_type(tr->logits);
    hid_t fcpl = H5Fget_create_plist(tr->file);
    hsize_t userblock = 0;
    H5Pget_userblock(fcpl, &userblock);
    H5Pclose(fcpl);
    /* addresses would be relative to a user block: keep to HDF5 then */
    int ok = H5Tget_order(type) == H5T_ORDER_LE && H5Pget_nfilters(dcpl) == 0 && H5Pget_external_count(dcpl) == 0 &&
             userblock == 0;
    H5Tclose(type);
    tr->contiguous_base = -1;
    if (ok && H5Pget_layout(dcpl) == H5D_CHUNKED) {
        hsize_t chunk[3];
        ok = H5Pget_chunk(dcpl, 3, chunk) == 3 && chunk[1] == dims[1] && chunk[2] == dims[2];
    } else if (ok && H5Pget_layout(dcpl) == H5D_CONTIGUOUS) {
        haddr_t base = H5Dget_offset(tr->logits);
        ok = base != HADDR_UNDEF;
        tr->contiguous_base = ok ? (int64_t)base : -1;
    } else {
        ok = 0;
    }
    if (ok)
        tr->fd = open(tr->path, O_RDONLY | O_CLOEXEC);
    tr->direct = ok && tr->fd >= 0;
    tr->row_bytes = (size_t)dims[1] * (size_t)dims[2] * elem_size;
}

static int open_logits(rs_trace *tr, int64_t *T, rs_error *err)
{
    const char *f = tr->path, *p = logits_path;
    hsize_t dims[3];
    RS_TRY(rs_h5_open_dataset(tr->file, p, 3, dims, &tr->logits, f, err));
    RS_CHECK((long long)dims[1] == tr->info.num_layers && (long long)dims[2] == tr->info.num_experts, err,
             "%s: %s: shape [%llu, %llu, %llu] does not match num_layers = %d, num_experts = %d", f, p,
             (unsigned long long)dims[0], (unsigned long long)dims[1], (unsigned long long)dims[2],
             tr->info.num_layers, tr->info.num_experts);
    *T = (int64_t)dims[0];

    hid_t type = H5Dget_type(tr->logits);
    H5T_class_t cls = H5Tget_class(type);
    size_t size = H5Tget_size(type);
    char *encoding = NULL;
    int rc = 0;
    if (cls == H5T_FLOAT && size == 4) {
        tr->logits_dtype = RS_LOGITS_F32;
    } else if (cls == H5T_FLOAT && size == 2) {
        size_t spos, epos, esize, mpos, msize;
        H5Tget_fields(type, &spos, &epos, &esize, &mpos, &msize);
        if (spos != 15 || epos != 10 || esize != 5 || mpos != 0 || msize != 10 || H5Tget_ebias(type) != 15 ||
            H5Tget_order(type) != H5T_ORDER_LE)
            rc = rs_fail(err, "%s: %s: 16-bit float is not little-endian IEEE binary16", f, p);
        tr->logits_dtype = RS_LOGITS_F16;
    } else if (cls == H5T_INTEGER && size == 2 && H5Tget_sign(type) == H5T_SGN_NONE) {
        if (rs_h5_attr_string(tr->logits, "encoding", &encoding, f, p, err) < 0)
            rc = -1;
        else if (!encoding || strcmp(encoding, "bfloat16") != 0)
            rc = rs_fail(err, "%s: %s: uint16 logits need attribute encoding=\"bfloat16\"", f, p);
        else if (H5Tget_order(type) != H5T_ORDER_LE)
            rc = rs_fail(err, "%s: %s: bfloat16 logits must be little-endian", f, p);
        tr->logits_dtype = RS_LOGITS_BF16;
    } else {
        const char *what = cls == H5T_FLOAT ? (size == 8 ? "float64" : "a float of unusual size")
                           : cls == H5T_INTEGER ? "an integer type"
                                                : "a non-numeric type";
        rc = rs_fail(err,
                     "%s: %s: dtype is %s; logits must be float32, float16, or uint16 with encoding=\"bfloat16\" "
                     "(e.g. numpy .astype(np.float32))",
                     f, p, what);
    }
    free(encoding);
    if (rc == 0 && size == 2)
        tr->raw_type = H5Tcopy(type);
    H5Tclose(type);
    RS_TRY(rc);

    /* Chunk geometry: remember the token extent of one chunk and give the
     * chunk cache room for one row of chunks, so partial reads never
     * decompress the same chunk twice. */
    hid_t dcpl = H5Dget_create_plist(tr->logits);
    find_direct_layout(tr, dcpl, dims, size);
    if (H5Pget_layout(dcpl) == H5D_CHUNKED) {
        hsize_t chunk[3];
        H5Pget_chunk(dcpl, 3, chunk);
        tr->logits_chunk_tokens = (int64_t)chunk[0];
        size_t chunk_bytes = (size_t)(chunk[0] * chunk[1] * chunk[2]) * size;
        size_t per_row = (size_t)((dims[1] + chunk[1] - 1) / chunk[1] * ((dims[2] + chunk[2] - 1) / chunk[2]));
        size_t cache = chunk_bytes * per_row * 2;
        if (cache < ((size_t)1 << 20))
            cache = (size_t)1 << 20;
        if (cache > ((size_t)64 << 20))
            cache = (size_t)64 << 20;
        H5Dclose(tr->logits);
        hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);
        H5Pset_chunk_cache(dapl, 12421, cache, 1.0);
        tr->logits = H5Dopen2(tr->file, p, dapl);
        H5Pclose(dapl);
    }
    H5Pclose(dcpl);
    RS_CHECK(tr->logits >= 0, err, "%s: %s: cannot reopen dataset", f, p);
    return 0;
}

static int open_token_rows(rs_trace *tr, const char *p, int rank, int64_t T, int third, hid_t *out,
                           int want_integer, rs_error *err)
{
    const char *f = tr->path;
    hsize_t dims[3];
    RS_TRY(rs_h5_open_dataset(tr->file, p, rank, dims, out, f, err));
    if (want_integer)
        RS_CHECK(rs_h5_is_integer(*out), err, "%s: %s: dtype must be an integer type", f, p);
    else
        RS_CHECK(rs_h5_is_float(*out), err, "%s: %s: dtype must be float32", f, p);
    RS_CHECK((int64_t)dims[0] == T, err, "%s: %s: has %llu rows, the trace has T = %lld tokens", f, p,
             (unsigned long long)dims[0], (long long)T);
    if (rank == 3) {
        RS_CHECK((long long)dims[1] == tr->info.num_layers, err,
                 "%s: %s: dimension 2 is %llu, num_layers is %d", f, p, (unsigned long long)dims[1],
                 tr->info.num_layers);
        RS_CHECK(third < 0 || (long long)dims[2] == third, err, "%s: %s: dimension 3 is %llu, expected %d", f, p,
                 (unsigned long long)dims[2], third);
    }
    return 0;
}

/* ---- outcomes (unit = query) ---- */

static int is_float32(hid_t dset)
{
    hid_t type = H5Dget_type(dset);
    int ok = H5Tget_class(type) == H5T_FLOAT && H5Tget_size(type) == 4;
    H5Tclose(type);
    return ok;
}

static const char *float_dtype_name(hid_t dset)
{
    hid_t type = H5Dget_type(dset);
    H5T_class_t cls = H5Tget_class(type);
    size_t size = H5Tget_size(type);
    H5Tclose(type);
    if (cls == H5T_FLOAT)
        return size == 8 ? "float64" : size == 2 ? "float16" : "a float of unusual size";
    return cls == H5T_INTEGER ? "an integer type" : "a non-numeric type";
}

/* Outcomes are checked in blocks of about 4 MiB, whatever E the file declares. */
static int64_t outcome_block_rows(int E)
{
    int64_t rows = ((int64_t)1 << 20) / E;
    return rows < 1 ? 1 : rows > 16384 ? 16384 : rows;
}

/* Streams /outcome/quality once: values must be finite or NaN (not
 * evaluated); queries where every model is NaN are counted. */
static int check_quality(rs_trace *tr, int64_t T, rs_error *err)
{
    const char *f = tr->path, *p = "/outcome/quality";
    const int E = tr->info.num_experts;
    const int64_t block = outcome_block_rows(E);
    float *buf = malloc((size_t)block * (size_t)E * sizeof *buf);
    RS_CHECK(buf, err, "%s: out of memory", f);
    int64_t unscored = 0;
    for (int64_t t0 = 0; t0 < T; t0 += block) {
        int64_t n = T - t0 < block ? T - t0 : block;
        if (rs_h5_read_rows(tr->quality, H5T_NATIVE_FLOAT, t0, n, buf, f, p, err) != 0) {
            free(buf);
            return -1;
        }
        for (int64_t t = 0; t < n; t++) {
            int evaluated = 0;
            for (int e = 0; e < E; e++) {
                float q = buf[t * E + e];
                if (isinf(q)) {
                    free(buf);
                    return rs_fail(err, "%s: %s: infinite value at query %lld, model %d (quality must be finite, or "
                                   "NaN for not evaluated)", f, p, (long long)(t0 + t), e);
                }
                evaluated += !isnan(q);
            }
            unscored += evaluated == 0;
        }
    }
    free(buf);
    tr->info.num_unscored = unscored;
    return 0;
}

/* Costs must be finite and >= 0: a NaN cost cannot be paid or compared. */
static int check_costs(const rs_trace *tr, const float *cost, int64_t t0, int64_t n, rs_error *err)
{
    const int E = tr->info.num_experts;
    for (int64_t t = 0; t < n; t++) {
        for (int e = 0; e < E; e++) {
            float c = cost[t * E + e];
            if (c >= 0 && !isinf(c))
                continue;
            char where[96];
            if (tr->cost_per_query)
                snprintf(where, sizeof where, "query %lld, model %d", (long long)(t0 + t), e);
            else
                snprintf(where, sizeof where, "model %d", e);
            char what[64];
            if (isnan(c))
                snprintf(what, sizeof what, "NaN");
            else
                snprintf(what, sizeof what, "%s value %g", c < 0 && !isinf(c) ? "negative" : "infinite", (double)c);
            return rs_fail(err, "%s: /outcome/cost: %s at %s (costs must be finite and >= 0)", tr->path, what, where);
        }
    }
    return 0;
}

static int open_outcome(rs_trace *tr, int64_t T, rs_error *err)
{
    const char *f = tr->path;
    hid_t root = tr->file;
    hsize_t dims[2];
    const int E = tr->info.num_experts;
    int has_quality = rs_h5_has_path(root, "/outcome/quality"), has_cost = rs_h5_has_path(root, "/outcome/cost");
    if ((has_quality || has_cost) && strcmp(tr->unit, "query") != 0)
        return rs_fail(err, "%s: %s: outcome datasets need root attribute unit = \"query\" (unit is \"%s\")", f,
                       has_quality ? "/outcome/quality" : "/outcome/cost", tr->unit);
    if (has_quality) {
        const char *p = "/outcome/quality";
        RS_TRY(rs_h5_open_dataset(root, p, 2, dims, &tr->quality, f, err));
        RS_CHECK(is_float32(tr->quality), err, "%s: %s: dtype is %s; quality must be float32 (e.g. numpy "
                 ".astype(np.float32)), NaN where a model was not evaluated", f, p, float_dtype_name(tr->quality));
        RS_CHECK((int64_t)dims[0] == T && (long long)dims[1] == E, err,
                 "%s: %s: shape [%llu, %llu], expected [%lld, %d] (T, num_experts)", f, p,
                 (unsigned long long)dims[0], (unsigned long long)dims[1], (long long)T, E);
        RS_TRY(check_quality(tr, T, err));
        tr->info.has_quality = 1;
    }
    if (has_cost) {
        const char *p = "/outcome/cost";
        tr->cost = H5Dopen2(root, p, H5P_DEFAULT);
        RS_CHECK(tr->cost >= 0, err, "%s: %s: not a dataset", f, p);
        hid_t space = H5Dget_space(tr->cost);
        int rank = H5Sget_simple_extent_ndims(space);
        if (rank == 1 || rank == 2)
            H5Sget_simple_extent_dims(space, dims, NULL);
        H5Sclose(space);
        RS_CHECK(is_float32(tr->cost), err, "%s: %s: dtype is %s; cost must be float32 (e.g. numpy "
                 ".astype(np.float32))", f, p, float_dtype_name(tr->cost));
        int per_model = rank == 1 && (long long)dims[0] == E;
        int per_query = rank == 2 && (int64_t)dims[0] == T && (long long)dims[1] == E;
        if (!per_model && !per_query) {
            char shape[64] = "";
            if (rank == 1)
                snprintf(shape, sizeof shape, "[%llu]", (unsigned long long)dims[0]);
            else if (rank == 2)
                snprintf(shape, sizeof shape, "[%llu, %llu]", (unsigned long long)dims[0], (unsigned long long)dims[1]);
            else
                snprintf(shape, sizeof shape, "of rank %d", rank);
            return rs_fail(err, "%s: %s: shape %s, expected [%lld, %d] (T, num_experts) or [%d] (num_experts)", f, p,
                           shape, (long long)T, E, E);
        }
        tr->cost_per_query = per_query;
        if (per_model) {
            tr->model_cost = malloc((size_t)E * sizeof *tr->model_cost);
            RS_CHECK(tr->model_cost, err, "%s: out of memory", f);
            RS_TRY(rs_h5_read_rows(tr->cost, H5T_NATIVE_FLOAT, 0, E, tr->model_cost, f, p, err));
            RS_TRY(check_costs(tr, tr->model_cost, 0, 1, err));
        } else {
            const int64_t block = outcome_block_rows(E);
            float *buf = malloc((size_t)block * (size_t)E * sizeof *buf);
            RS_CHECK(buf, err, "%s: out of memory", f);
            int rc = 0;
            for (int64_t t0 = 0; t0 < T && rc == 0; t0 += block) {
                int64_t n = T - t0 < block ? T - t0 : block;
                rc = rs_h5_read_rows(tr->cost, H5T_NATIVE_FLOAT, t0, n, buf, f, p, err);
                if (rc == 0)
                    rc = check_costs(tr, buf, t0, n, err);
            }
            free(buf);
            RS_TRY(rc);
        }
        tr->info.has_cost = 1;
    }
    return 0;
}

static int open_optional(rs_trace *tr, int64_t T, rs_error *err)
{
    const char *f = tr->path;
    hid_t root = tr->file;
    hsize_t dims[3];
    if (rs_h5_has_path(root, "/tokens/ids")) {
        RS_TRY(open_token_rows(tr, "/tokens/ids", 1, T, -1, &tr->token_ids, 1, err));
        tr->info.has_token_ids = 1;
    }
    if (rs_h5_has_path(root, "/tokens/phase")) {
        RS_TRY(open_token_rows(tr, "/tokens/phase", 1, T, -1, &tr->phase, 1, err));
        tr->info.has_phase = 1;
    }
    if (rs_h5_has_path(root, "/router/bias")) {
        RS_TRY(rs_h5_open_dataset(root, "/router/bias", 2, dims, &tr->bias, f, err));
        RS_CHECK(rs_h5_is_float(tr->bias), err, "%s: /router/bias: dtype must be float32", f);
        RS_CHECK((long long)dims[0] == tr->info.num_layers && (long long)dims[1] == tr->info.num_experts, err,
                 "%s: /router/bias: shape [%llu, %llu], expected [%d, %d] (num_layers, num_experts)", f,
                 (unsigned long long)dims[0], (unsigned long long)dims[1], tr->info.num_layers,
                 tr->info.num_experts);
        tr->info.has_bias = 1;
    }
    if (rs_h5_has_path(root, "/sequences/domain")) {
        RS_TRY(rs_h5_open_dataset(root, "/sequences/domain", 1, dims, &tr->domain, f, err));
        RS_CHECK(rs_h5_is_integer(tr->domain), err, "%s: /sequences/domain: dtype must be int32", f);
        RS_CHECK((int64_t)dims[0] == tr->info.num_sequences, err,
                 "%s: /sequences/domain: has %llu values, the trace has S = %lld sequences", f,
                 (unsigned long long)dims[0], (long long)tr->info.num_sequences);
        if (rs_h5_attr_string_array(tr->domain, "names", &tr->domain_names, &tr->num_domain_names, f,
                                    "/sequences/domain", err) < 0)
            return -1;
        tr->info.has_domain = 1;
    }
    return open_outcome(tr, T, err);
}

int rs_trace_open(rs_trace **out, const char *path, rs_error *err)
{
    *out = NULL;
    struct stat st;
    if (stat(path, &st) != 0)
        return rs_fail(err, "%s: cannot open trace: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return rs_fail(err, "%s: is a directory, expected an HDF5 trace file", path);
    rs_h5_quiet();
    if (H5Fis_hdf5(path) <= 0)
        return rs_fail(err, "%s: not an HDF5 file", path);

    rs_trace *tr = calloc(1, sizeof *tr);
    RS_CHECK(tr, err, "%s: out of memory", path);
    tr->offsets = tr->logits = tr->topk_ids = tr->topk_weights = -1;
    tr->token_ids = tr->phase = tr->bias = tr->domain = tr->raw_type = -1;
    tr->quality = tr->cost = -1;
    tr->fd = -1;
    tr->path = strdup(path);
    tr->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (!tr->path || tr->file < 0) {
        char reason[256];
        rs_h5_reason(reason, sizeof reason);
        rs_trace_close(tr);
        return rs_fail(err, "%s: cannot open HDF5 file%s%s%s", path, reason[0] ? " (" : "", reason,
                       reason[0] ? ")" : "");
    }
    tr->info.path = tr->path;
    if (read_root_attributes(tr, err) != 0)
        goto fail;

    int has_logits = rs_h5_has_path(tr->file, logits_path);
    int has_topk = rs_h5_has_path(tr->file, "/router/topk_ids");
    int outcome_only = !has_logits && !has_topk && strcmp(tr->unit, "query") == 0 &&
                       rs_h5_has_path(tr->file, "/outcome/quality");
    if (!has_logits && !has_topk && !outcome_only) {
        rs_fail(err, "%s: /router/logits: missing dataset (a trace needs /router/logits or /router/topk_ids)%s", path,
                strcmp(tr->unit, "query") == 0 ? "; a unit = \"query\" trace may instead hold /outcome/quality alone"
                                               : "");
        goto fail;
    }
    int64_t T = -1;
    if (outcome_only) { /* T comes from the outcomes: the routers that need scores will say so */
        hsize_t dims[2];
        hid_t probe;
        if (rs_h5_open_dataset(tr->file, "/outcome/quality", 2, dims, &probe, path, err) != 0)
            goto fail;
        H5Dclose(probe);
        T = (int64_t)dims[0];
    }
    if (has_logits) {
        if (open_logits(tr, &T, err) != 0)
            goto fail;
        tr->info.has_logits = 1;
    }
    if (has_topk) {
        hsize_t dims[3];
        hid_t probe;
        if (rs_h5_open_dataset(tr->file, "/router/topk_ids", 3, dims, &probe, path, err) != 0)
            goto fail;
        H5Dclose(probe);
        if (T < 0)
            T = (int64_t)dims[0];
        if (open_token_rows(tr, "/router/topk_ids", 3, T, -1, &tr->topk_ids, 1, err) != 0)
            goto fail;
        if (dims[2] < 1 || dims[2] > 1024) {
            rs_fail(err, "%s: /router/topk_ids: K = %llu must be in [1, 1024]", path, (unsigned long long)dims[2]);
            goto fail;
        }
        tr->info.recorded_k = (int)dims[2];
        if (rs_h5_has_path(tr->file, "/router/topk_weights")) {
            if (open_token_rows(tr, "/router/topk_weights", 3, T, tr->info.recorded_k, &tr->topk_weights, 0, err) !=
                0)
                goto fail;
            tr->info.has_topk_weights = 1;
        }
    }
    tr->info.num_tokens = T;
    if (check_offsets(tr, T, err) != 0 || open_optional(tr, T, err) != 0)
        goto fail;

    tr->info.unit = tr->unit;
    tr->info.expert_names = (const char *const *)tr->expert_names;
    tr->info.model = tr->model ? tr->model : "";
    tr->info.scoring = tr->scoring ? tr->scoring : "";
    *out = tr;
    return 0;
fail:
    rs_trace_close(tr);
    return -1;
}

const rs_trace_info *rs_trace_get_info(const rs_trace *tr) { return &tr->info; }
rs_logits_dtype rs_trace_logits_dtype(const rs_trace *tr) { return tr->logits_dtype; }
int64_t rs_trace_logits_chunk_tokens(const rs_trace *tr) { return tr->logits_chunk_tokens; }
int rs_trace_domain_name_count(const rs_trace *tr) { return tr->num_domain_names; }
const char *rs_trace_domain_name(const rs_trace *tr, int i)
{
    return i >= 0 && i < tr->num_domain_names ? tr->domain_names[i] : NULL;
}
const char *rs_trace_expert_name(const rs_trace *tr, int i)
{
    return i >= 0 && i < tr->num_expert_names ? tr->expert_names[i] : NULL;
}
const char *rs_trace_source(const rs_trace *tr) { return tr->source ? tr->source : ""; }

const char *rs_trace_import_notes(const rs_trace *tr) { return tr->import_notes ? tr->import_notes : ""; }

size_t rs_trace_logit_size(const rs_trace *tr)
{
    switch (tr->logits_dtype) {
    case RS_LOGITS_F32: return 4;
    case RS_LOGITS_F16:
    case RS_LOGITS_BF16: return 2;
    case RS_LOGITS_NONE: return 0;
    }
    return 0;
}
