/* Small HDF5 helpers shared by the trace, decisions and outcome readers and
 * writers: typed attributes, shape checks and row-range reads, each failing
 * with a message that names the file and the object. */
#ifndef ROUTESIM_H5UTIL_H
#define ROUTESIM_H5UTIL_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#include "routesim/error.h"

/* Turns off HDF5's own error printing (we report errors ourselves). */
void rs_h5_quiet(void);
/* HDF5's innermost reason for the last failure on this thread (e.g.
 * "truncated file: eof = 30000000, ..."), or "" when it recorded none. */
void rs_h5_reason(char *buf, size_t size);

/* The HDF5 library (Debian's serial build) is not thread-safe. While a run
 * streams, a prefetch thread reads the next chunk as the main thread writes
 * decisions or reads a replayed file, so row reads and appends hold this
 * process-wide lock. */
void rs_h5_lock(void);
void rs_h5_unlock(void);

int rs_h5_has_attr(hid_t obj, const char *name);
int rs_h5_has_path(hid_t file, const char *path);

/* Attribute readers: return 1 when present and read, 0 when absent, -1 on a
 * type error. The string is malloc'ed. */
int rs_h5_attr_string(hid_t obj, const char *name, char **out, const char *file, const char *where,
                      rs_error *err);
int rs_h5_attr_int(hid_t obj, const char *name, long long *out, const char *file, const char *where,
                   rs_error *err);
/* A number: an integer or floating-point scalar, read as double. */
int rs_h5_attr_double(hid_t obj, const char *name, double *out, const char *file, const char *where,
                      rs_error *err);
/* String array attribute: *out is an array of *count malloc'ed strings. */
int rs_h5_attr_string_array(hid_t obj, const char *name, char ***out, int *count, const char *file,
                            const char *where, rs_error *err);
void rs_h5_free_strings(char **strings, int count);

int rs_h5_write_attr_string(hid_t obj, const char *name, const char *value, rs_error *err);
int rs_h5_write_attr_int(hid_t obj, const char *name, long long value, rs_error *err);
int rs_h5_write_attr_double(hid_t obj, const char *name, double value, rs_error *err);
int rs_h5_write_attr_string_array(hid_t obj, const char *name, const char *const *values, int count,
                                  rs_error *err);

/* Opens a dataset and checks its rank; dims receives the extents. */
int rs_h5_open_dataset(hid_t file, const char *path, int rank, hsize_t *dims, hid_t *out, const char *file_name,
                       rs_error *err);
/* Type class checks: integer (any width/sign) or float. */
int rs_h5_is_integer(hid_t dset);
int rs_h5_is_float(hid_t dset);

/* Reads rows [row0, row0+nrows) of a dataset (all trailing dimensions) into
 * buf converted to mem_type. */
int rs_h5_read_rows(hid_t dset, hid_t mem_type, int64_t row0, int64_t nrows, void *buf, const char *file_name,
                    const char *path, rs_error *err);
/* The same, keeping only columns [col0, col0 + ncols) of the second
 * dimension (ncols < 0: all of them): a band of layers of [T, L, ...] rows. */
int rs_h5_read_block(hid_t dset, hid_t mem_type, int64_t row0, int64_t nrows, int64_t col0, int64_t ncols, void *buf,
                     const char *file_name, const char *path, rs_error *err);

/* Appending writers for extendible datasets (first dimension unlimited). */
typedef struct rs_h5_appender {
    hid_t dset;
    hid_t mem_type;
    int rank;
    hsize_t dims[4];
    hsize_t rows;
} rs_h5_appender;

int rs_h5_appender_create(rs_h5_appender *a, hid_t file, const char *path, hid_t file_type, hid_t mem_type,
                          int rank, const hsize_t *row_dims, hsize_t chunk_rows, int gzip_level, rs_error *err);
int rs_h5_appender_append(rs_h5_appender *a, const void *rows, hsize_t nrows, rs_error *err);
void rs_h5_appender_close(rs_h5_appender *a);

/* Creates groups along a path such as "/router/logits" (the parents only). */
int rs_h5_make_parents(hid_t file, const char *path, rs_error *err);
/* A creation property list of class cls (H5P_DATASET_CREATE,
 * H5P_GROUP_CREATE) that records no times: writing the same data twice
 * gives the same bytes. */
hid_t rs_h5_untimed(hid_t cls);

/* A file type describing IEEE binary16 as h5py writes numpy float16. */
hid_t rs_h5_float16_type(void);

#endif
