#include "workloads/trace/decisions_file.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/output_path.h"
#include "core/read_file.h"
#include "workloads/trace/h5util.h"

struct rs_decisions_writer {
    char *path;
    char tmp[4200];
    hid_t file;
    rs_h5_appender ids, weights;
};

static void writer_close(rs_decisions_writer *w)
{
    rs_h5_appender_close(&w->ids);
    rs_h5_appender_close(&w->weights);
    if (w->file >= 0)
        H5Fclose(w->file);
    w->file = -1;
}

void rs_decisions_writer_abort(rs_decisions_writer *w)
{
    if (!w)
        return;
    writer_close(w);
    rs_temp_discard(w->tmp);
    free(w->path);
    free(w);
}

int rs_decisions_writer_create(rs_decisions_writer **out, const char *path, int num_layers, int kmax,
                               const char *router_spec, const char *trace_path, rs_error *err)
{
    *out = NULL;
    rs_h5_quiet();
    rs_decisions_writer *w = calloc(1, sizeof *w);
    RS_CHECK(w, err, "%s: out of memory", path);
    w->file = -1;
    w->ids.dset = w->weights.dset = -1;
    w->path = strdup(path);
    if (!w->path || rs_make_parent_dirs(path, err) != 0 || rs_temp_path(path, w->tmp, sizeof w->tmp, err) != 0) {
        if (!w->path)
            rs_fail(err, "%s: out of memory", path);
        free(w->path);
        free(w);
        return -1;
    }
    w->file = H5Fcreate(w->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (w->file < 0) {
        rs_temp_discard(w->tmp);
        free(w->path);
        free(w);
        return rs_fail(err, "%s: cannot create file (is the directory writable?)", path);
    }
    hsize_t row[2] = {(hsize_t)num_layers, (hsize_t)kmax};
    size_t row_bytes = (size_t)num_layers * (size_t)kmax * 4;
    hsize_t chunk = (hsize_t)(((size_t)1 << 20) / (row_bytes ? row_bytes : 1));
    if (chunk < 1)
        chunk = 1;
    if (rs_h5_appender_create(&w->ids, w->file, "/decisions/ids", H5T_STD_I32LE, H5T_NATIVE_INT32, 3, row, chunk, 0,
                              err) != 0 ||
        rs_h5_appender_create(&w->weights, w->file, "/decisions/weights", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 3, row,
                              chunk, 0, err) != 0 ||
        rs_h5_write_attr_string(w->file, "format", "routesim-decisions", err) != 0 ||
        rs_h5_write_attr_int(w->file, "format_version", 1, err) != 0 ||
        rs_h5_write_attr_string(w->file, "router", router_spec, err) != 0 ||
        rs_h5_write_attr_string(w->file, "trace", trace_path, err) != 0) {
        rs_fail_context(err, "%s", path);
        rs_decisions_writer_abort(w);
        return -1;
    }
    *out = w;
    return 0;
}

int rs_decisions_writer_append(rs_decisions_writer *w, int n, const int32_t *ids, const float *weights,
                               rs_error *err)
{
    if (rs_h5_appender_append(&w->ids, ids, (hsize_t)n, err) != 0 ||
        rs_h5_appender_append(&w->weights, weights, (hsize_t)n, err) != 0)
        return rs_fail_context(err, "%s", w->path);
    return 0;
}

int rs_decisions_writer_finish(rs_decisions_writer *w, rs_error *err)
{
    writer_close(w);
    int rc = rs_commit_path(w->tmp, w->path, err);
    free(w->path);
    free(w);
    return rc;
}

struct rs_decisions_reader {
    char *path;
    hid_t file, ids, weights;
};

void rs_decisions_reader_close(rs_decisions_reader *r)
{
    if (!r)
        return;
    if (r->ids >= 0)
        H5Dclose(r->ids);
    if (r->weights >= 0)
        H5Dclose(r->weights);
    if (r->file >= 0)
        H5Fclose(r->file);
    free(r->path);
    free(r);
}

int rs_decisions_reader_open(rs_decisions_reader **out, const char *path, int64_t *num_tokens, int *num_layers,
                             int *kmax, rs_error *err)
{
    *out = NULL;
    rs_h5_quiet();
    if (access(path, R_OK) != 0)
        return rs_fail(err, "%s: cannot open decisions file", path);
    if (rs_is_directory(path))
        return rs_fail(err, "%s: is a directory, expected a decisions file", path);
    if (H5Fis_hdf5(path) <= 0)
        return rs_fail(err, "%s: not an HDF5 file", path);
    rs_decisions_reader *r = calloc(1, sizeof *r);
    RS_CHECK(r, err, "%s: out of memory", path);
    r->ids = r->weights = -1;
    r->path = strdup(path);
    r->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    char *format = NULL;
    hsize_t dims[3], wdims[3];
    if (!r->path || r->file < 0) {
        char reason[256];
        rs_h5_reason(reason, sizeof reason);
        rs_fail(err, "%s: cannot open HDF5 file%s%s%s", path, reason[0] ? " (" : "", reason, reason[0] ? ")" : "");
        goto fail;
    }
    if (rs_h5_attr_string(r->file, "format", &format, path, "root", err) < 0)
        goto fail;
    if (!format || strcmp(format, "routesim-decisions") != 0) {
        rs_fail(err, "%s: root attribute 'format' must be \"routesim-decisions\"", path);
        goto fail;
    }
    if (rs_h5_open_dataset(r->file, "/decisions/ids", 3, dims, &r->ids, path, err) != 0 ||
        rs_h5_open_dataset(r->file, "/decisions/weights", 3, wdims, &r->weights, path, err) != 0)
        goto fail;
    if (!rs_h5_is_integer(r->ids) || !rs_h5_is_float(r->weights)) {
        rs_fail(err, "%s: /decisions/ids must be int32 and /decisions/weights float32", path);
        goto fail;
    }
    if (memcmp(dims, wdims, sizeof dims) != 0) {
        rs_fail(err, "%s: /decisions/weights: shape differs from /decisions/ids", path);
        goto fail;
    }
    free(format);
    *num_tokens = (int64_t)dims[0];
    *num_layers = (int)dims[1];
    *kmax = (int)dims[2];
    *out = r;
    return 0;
fail:
    free(format);
    rs_decisions_reader_close(r);
    return -1;
}

int rs_decisions_reader_read(rs_decisions_reader *r, int64_t t0, int n, int32_t *ids, float *weights, rs_error *err)
{
    RS_TRY(rs_h5_read_rows(r->ids, H5T_NATIVE_INT32, t0, n, ids, r->path, "/decisions/ids", err));
    return rs_h5_read_rows(r->weights, H5T_NATIVE_FLOAT, t0, n, weights, r->path, "/decisions/weights", err);
}
