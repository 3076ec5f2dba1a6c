#include "workloads/trace/h5util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t h5_mutex = PTHREAD_MUTEX_INITIALIZER;

void rs_h5_lock(void) { pthread_mutex_lock(&h5_mutex); }
void rs_h5_unlock(void) { pthread_mutex_unlock(&h5_mutex); }

void rs_h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

typedef struct reason_buf {
    char *buf;
    size_t size;
} reason_buf;

/* Walking upward, the first entry is where the failure began. */
static herr_t keep_first(unsigned n, const H5E_error2_t *e, void *data)
{
    reason_buf *r = data;
    if (n == 0 && e->desc)
        snprintf(r->buf, r->size, "%s", e->desc);
    return 0;
}

void rs_h5_reason(char *buf, size_t size)
{
    reason_buf r = {buf, size};
    buf[0] = '\0';
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, keep_first, &r);
}

int rs_h5_has_attr(hid_t obj, const char *name) { return H5Aexists(obj, name) > 0; }

int rs_h5_has_path(hid_t file, const char *path)
{
    /* H5Lexists fails on a missing intermediate group, so walk the path. */
    char buf[512];
    size_t len = strlen(path);
    if (len >= sizeof buf)
        return 0;
    memcpy(buf, path, len + 1);
    for (char *slash = strchr(buf + 1, '/');; slash = strchr(slash + 1, '/')) {
        if (slash)
            *slash = '\0';
        if (H5Lexists(file, buf, H5P_DEFAULT) <= 0)
            return 0;
        if (!slash)
            return 1;
        *slash = '/';
    }
}

int rs_h5_attr_string(hid_t obj, const char *name, char **out, const char *file, const char *where,
                      rs_error *err)
{
    *out = NULL;
    if (!rs_h5_has_attr(obj, name))
        return 0;
    hid_t attr = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t type = H5Aget_type(attr);
    hid_t space = H5Aget_space(attr);
    int rc = -1;
    if (H5Tget_class(type) != H5T_STRING || H5Sget_simple_extent_npoints(space) != 1) {
        rs_fail(err, "%s: %s attribute '%s': expected a string", file, where, name);
        goto done;
    }
    if (H5Tis_variable_str(type) > 0) {
        hid_t mem = H5Tcopy(H5T_C_S1);
        H5Tset_size(mem, H5T_VARIABLE);
        H5Tset_cset(mem, H5Tget_cset(type));
        char *value = NULL;
        if (H5Aread(attr, mem, &value) < 0) {
            H5Tclose(mem);
            rs_fail(err, "%s: %s attribute '%s': cannot read", file, where, name);
            goto done;
        }
        *out = strdup(value ? value : "");
        H5free_memory(value);
        H5Tclose(mem);
    } else {
        size_t size = H5Tget_size(type);
        char *value = calloc(size + 1, 1);
        if (!value) {
            rs_fail(err, "%s: out of memory", file);
            goto done;
        }
        if (H5Aread(attr, type, value) < 0) {
            free(value);
            rs_fail(err, "%s: %s attribute '%s': cannot read", file, where, name);
            goto done;
        }
        *out = value;
    }
    if (!*out) {
        rs_fail(err, "%s: out of memory", file);
        goto done;
    }
    rc = 1;
done:
    H5Sclose(space);
    H5Tclose(type);
    H5Aclose(attr);
    return rc;
}

int rs_h5_attr_int(hid_t obj, const char *name, long long *out, const char *file, const char *where,
                   rs_error *err)
{
    if (!rs_h5_has_attr(obj, name))
        return 0;
    hid_t attr = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t type = H5Aget_type(attr);
    hid_t space = H5Aget_space(attr);
    int rc = 1;
    if (H5Tget_class(type) != H5T_INTEGER || H5Sget_simple_extent_npoints(space) != 1)
        rc = rs_fail(err, "%s: %s attribute '%s': expected an integer", file, where, name);
    else if (H5Aread(attr, H5T_NATIVE_LLONG, out) < 0)
        rc = rs_fail(err, "%s: %s attribute '%s': cannot read", file, where, name);
    H5Sclose(space);
    H5Tclose(type);
    H5Aclose(attr);
    return rc;
}

int rs_h5_attr_double(hid_t obj, const char *name, double *out, const char *file, const char *where,
                      rs_error *err)
{
    if (!rs_h5_has_attr(obj, name))
        return 0;
    hid_t attr = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t type = H5Aget_type(attr);
    hid_t space = H5Aget_space(attr);
    H5T_class_t cls = H5Tget_class(type);
    int rc = 1;
    if ((cls != H5T_INTEGER && cls != H5T_FLOAT) || H5Sget_simple_extent_npoints(space) != 1)
        rc = rs_fail(err, "%s: %s attribute '%s': expected a number", file, where, name);
    else if (H5Aread(attr, H5T_NATIVE_DOUBLE, out) < 0)
        rc = rs_fail(err, "%s: %s attribute '%s': cannot read", file, where, name);
    H5Sclose(space);
    H5Tclose(type);
    H5Aclose(attr);
    return rc;
}

void rs_h5_free_strings(char **strings, int count)
{
    if (!strings)
        return;
    for (int i = 0; i < count; i++)
        free(strings[i]);
    free(strings);
}

int rs_h5_attr_string_array(hid_t obj, const char *name, char ***out, int *count, const char *file,
                            const char *where, rs_error *err)
{
    *out = NULL;
    *count = 0;
    if (!rs_h5_has_attr(obj, name))
        return 0;
    hid_t attr = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t type = H5Aget_type(attr);
    hid_t space = H5Aget_space(attr);
    hssize_t n = H5Sget_simple_extent_npoints(space);
    int rc = -1;
    char **strings = NULL;
    if (H5Tget_class(type) != H5T_STRING || n < 0 || n > 1000000) {
        rs_fail(err, "%s: %s attribute '%s': expected an array of strings", file, where, name);
        goto done;
    }
    strings = calloc((size_t)n + 1, sizeof *strings);
    if (!strings) {
        rs_fail(err, "%s: out of memory", file);
        goto done;
    }
    if (H5Tis_variable_str(type) > 0) {
        hid_t mem = H5Tcopy(H5T_C_S1);
        H5Tset_size(mem, H5T_VARIABLE);
        H5Tset_cset(mem, H5Tget_cset(type));
        char **raw = calloc((size_t)n + 1, sizeof *raw);
        if (!raw || H5Aread(attr, mem, raw) < 0) {
            free(raw);
            H5Tclose(mem);
            rs_fail(err, "%s: %s attribute '%s': cannot read", file, where, name);
            goto done;
        }
        for (hssize_t i = 0; i < n; i++)
            strings[i] = strdup(raw[i] ? raw[i] : "");
        H5Dvlen_reclaim(mem, space, H5P_DEFAULT, raw);
        free(raw);
        H5Tclose(mem);
    } else {
        size_t size = H5Tget_size(type);
        char *block = calloc((size_t)n * size + 1, 1);
        if (!block || H5Aread(attr, type, block) < 0) {
            free(block);
            rs_fail(err, "%s: %s attribute '%s': cannot read", file, where, name);
            goto done;
        }
        for (hssize_t i = 0; i < n; i++)
            strings[i] = strndup(block + (size_t)i * size, size);
        free(block);
    }
    for (hssize_t i = 0; i < n; i++) {
        if (!strings[i]) {
            rs_fail(err, "%s: out of memory", file);
            goto done;
        }
    }
    *out = strings;
    *count = (int)n;
    strings = NULL;
    rc = 1;
done:
    rs_h5_free_strings(strings, (int)(n > 0 ? n : 0));
    H5Sclose(space);
    H5Tclose(type);
    H5Aclose(attr);
    return rc;
}

static hid_t vlen_string_type(void)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

int rs_h5_write_attr_string(hid_t obj, const char *name, const char *value, rs_error *err)
{
    hid_t type = vlen_string_type();
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    int rc = 0;
    if (attr < 0 || H5Awrite(attr, type, &value) < 0)
        rc = rs_fail(err, "cannot write attribute '%s'", name);
    if (attr >= 0)
        H5Aclose(attr);
    H5Sclose(space);
    H5Tclose(type);
    return rc;
}

int rs_h5_write_attr_int(hid_t obj, const char *name, long long value, rs_error *err)
{
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = H5Acreate2(obj, name, H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    int rc = 0;
    if (attr < 0 || H5Awrite(attr, H5T_NATIVE_LLONG, &value) < 0)
        rc = rs_fail(err, "cannot write attribute '%s'", name);
    if (attr >= 0)
        H5Aclose(attr);
    H5Sclose(space);
    return rc;
}

int rs_h5_write_attr_double(hid_t obj, const char *name, double value, rs_error *err)
{
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = H5Acreate2(obj, name, H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    int rc = 0;
    if (attr < 0 || H5Awrite(attr, H5T_NATIVE_DOUBLE, &value) < 0)
        rc = rs_fail(err, "cannot write attribute '%s'", name);
    if (attr >= 0)
        H5Aclose(attr);
    H5Sclose(space);
    return rc;
}

int rs_h5_write_attr_string_array(hid_t obj, const char *name, const char *const *values, int count,
                                  rs_error *err)
{
    hid_t type = vlen_string_type();
    hsize_t dims[1] = {(hsize_t)count};
    hid_t space = H5Screate_simple(1, dims, NULL);
    hid_t attr = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    int rc = 0;
    if (attr < 0 || H5Awrite(attr, type, values) < 0)
        rc = rs_fail(err, "cannot write attribute '%s'", name);
    if (attr >= 0)
        H5Aclose(attr);
    H5Sclose(space);
    H5Tclose(type);
    return rc;
}

int rs_h5_open_dataset(hid_t file, const char *path, int rank, hsize_t *dims, hid_t *out, const char *file_name,
                       rs_error *err)
{
    *out = -1;
    if (!rs_h5_has_path(file, path))
        return rs_fail(err, "%s: %s: missing dataset", file_name, path);
    hid_t obj = H5Oopen(file, path, H5P_DEFAULT);
    int is_dataset = obj >= 0 && H5Iget_type(obj) == H5I_DATASET;
    if (obj >= 0)
        H5Oclose(obj);
    if (!is_dataset)
        return rs_fail(err, "%s: %s: not a dataset", file_name, path);
    hid_t dset = H5Dopen2(file, path, H5P_DEFAULT);
    if (dset < 0)
        return rs_fail(err, "%s: %s: cannot open dataset", file_name, path);
    hid_t space = H5Dget_space(dset);
    int actual = H5Sget_simple_extent_ndims(space);
    if (actual != rank) {
        H5Sclose(space);
        H5Dclose(dset);
        return rs_fail(err, "%s: %s: expected %d dimensions, found %d", file_name, path, rank, actual);
    }
    H5Sget_simple_extent_dims(space, dims, NULL);
    H5Sclose(space);
    *out = dset;
    return 0;
}

int rs_h5_is_integer(hid_t dset)
{
    hid_t type = H5Dget_type(dset);
    int ok = H5Tget_class(type) == H5T_INTEGER;
    H5Tclose(type);
    return ok;
}

int rs_h5_is_float(hid_t dset)
{
    hid_t type = H5Dget_type(dset);
    int ok = H5Tget_class(type) == H5T_FLOAT;
    H5Tclose(type);
    return ok;
}

int rs_h5_read_rows(hid_t dset, hid_t mem_type, int64_t row0, int64_t nrows, void *buf, const char *file_name,
                    const char *path, rs_error *err)
{
    return rs_h5_read_block(dset, mem_type, row0, nrows, 0, -1, buf, file_name, path, err);
}

int rs_h5_read_block(hid_t dset, hid_t mem_type, int64_t row0, int64_t nrows, int64_t col0, int64_t ncols, void *buf,
                     const char *file_name, const char *path, rs_error *err)
{
    if (nrows == 0)
        return 0;
    rs_h5_lock();
    hid_t fspace = H5Dget_space(dset);
    int rank = H5Sget_simple_extent_ndims(fspace);
    hsize_t dims[8], start[8] = {0}, count[8];
    H5Sget_simple_extent_dims(fspace, dims, NULL);
    for (int i = 0; i < rank; i++)
        count[i] = dims[i];
    start[0] = (hsize_t)row0;
    count[0] = (hsize_t)nrows;
    if (ncols >= 0 && rank > 1) {
        start[1] = (hsize_t)col0;
        count[1] = (hsize_t)ncols;
    }
    hid_t mspace = H5Screate_simple(rank, count, NULL);
    int rc = 0;
    if (H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
        H5Dread(dset, mem_type, mspace, fspace, H5P_DEFAULT, buf) < 0)
        rc = rs_fail(err, "%s: %s: cannot read rows %lld..%lld", file_name, path, (long long)row0,
                     (long long)(row0 + nrows - 1));
    H5Sclose(mspace);
    H5Sclose(fspace);
    rs_h5_unlock();
    return rc;
}

hid_t rs_h5_untimed(hid_t cls)
{
    hid_t plist = H5Pcreate(cls);
    if (plist >= 0)
        H5Pset_obj_track_times(plist, 0);
    return plist;
}

int rs_h5_make_parents(hid_t file, const char *path, rs_error *err)
{
    char buf[512];
    size_t len = strlen(path);
    if (len >= sizeof buf)
        return rs_fail(err, "path too long: %s", path);
    memcpy(buf, path, len + 1);
    for (char *slash = strchr(buf + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        if (H5Lexists(file, buf, H5P_DEFAULT) <= 0) {
            hid_t gcpl = rs_h5_untimed(H5P_GROUP_CREATE);
            hid_t g = H5Gcreate2(file, buf, H5P_DEFAULT, gcpl, H5P_DEFAULT);
            H5Pclose(gcpl);
            if (g < 0)
                return rs_fail(err, "cannot create group %s", buf);
            H5Gclose(g);
        }
        *slash = '/';
    }
    return 0;
}

int rs_h5_appender_create(rs_h5_appender *a, hid_t file, const char *path, hid_t file_type, hid_t mem_type,
                          int rank, const hsize_t *row_dims, hsize_t chunk_rows, int gzip_level, rs_error *err)
{
    memset(a, 0, sizeof *a);
    a->dset = -1;
    RS_TRY(rs_h5_make_parents(file, path, err));
    hsize_t dims[4], maxdims[4], chunk[4];
    dims[0] = 0;
    maxdims[0] = H5S_UNLIMITED;
    chunk[0] = chunk_rows ? chunk_rows : 1;
    for (int i = 1; i < rank; i++) {
        dims[i] = maxdims[i] = chunk[i] = row_dims[i - 1];
        a->dims[i] = row_dims[i - 1];
    }
    hid_t space = H5Screate_simple(rank, dims, maxdims);
    hid_t dcpl = rs_h5_untimed(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, rank, chunk);
    if (gzip_level > 0) {
        H5Pset_shuffle(dcpl);
        H5Pset_deflate(dcpl, (unsigned)gzip_level);
    }
    a->dset = H5Dcreate2(file, path, file_type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Pclose(dcpl);
    H5Sclose(space);
    if (a->dset < 0)
        return rs_fail(err, "cannot create dataset %s", path);
    a->mem_type = mem_type;
    a->rank = rank;
    return 0;
}

int rs_h5_appender_append(rs_h5_appender *a, const void *rows, hsize_t nrows, rs_error *err)
{
    if (nrows == 0)
        return 0;
    hsize_t dims[4], start[4] = {0}, count[4];
    for (int i = 0; i < a->rank; i++)
        dims[i] = count[i] = a->dims[i];
    dims[0] = a->rows + nrows;
    rs_h5_lock();
    if (H5Dset_extent(a->dset, dims) < 0) {
        rs_h5_unlock();
        return rs_fail(err, "cannot extend dataset");
    }
    hid_t fspace = H5Dget_space(a->dset);
    start[0] = a->rows;
    count[0] = nrows;
    hid_t mspace = H5Screate_simple(a->rank, count, NULL);
    int rc = 0;
    if (H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
        H5Dwrite(a->dset, a->mem_type, mspace, fspace, H5P_DEFAULT, rows) < 0)
        rc = rs_fail(err, "cannot write rows (disk full?)");
    H5Sclose(mspace);
    H5Sclose(fspace);
    rs_h5_unlock();
    if (rc == 0)
        a->rows += nrows;
    return rc;
}

void rs_h5_appender_close(rs_h5_appender *a)
{
    if (a->dset >= 0)
        H5Dclose(a->dset);
    a->dset = -1;
}

hid_t rs_h5_float16_type(void)
{
    /* The layout h5py uses for numpy.float16. */
    hid_t t = H5Tcopy(H5T_IEEE_F32LE);
    H5Tset_fields(t, 15, 10, 5, 0, 10);
    H5Tset_size(t, 2);
    H5Tset_ebias(t, 15);
    H5Tset_precision(t, 16);
    return t;
}
