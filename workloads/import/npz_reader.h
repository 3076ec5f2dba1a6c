/* Reading numpy .npz archives (np.savez, stored, and np.savez_compressed,
 * deflate) through libzip: each array `NAME` is the member `NAME.npy`, a
 * .npy file (numpy's format: the magic "\x93NUMPY", version 1.0, 2.0 or
 * 3.0, a little-endian header length, a Python dict literal with descr,
 * fortran_order and shape, then the data in C order). The header is parsed
 * here; the data is streamed element by element group, never read whole. */
#ifndef ROUTESIM_NPZ_READER_H
#define ROUTESIM_NPZ_READER_H

#include <stdint.h>

#include "routesim/error.h"

enum { NPY_MAX_DIMS = 8 };

/* The element types read: integers, and the strings a request id is saved as. */
typedef enum npy_kind {
    NPY_INT,     /* '<i8', '<i4', '<u4', '<u2', '|u1', '|i1', '<i2' */
    NPY_FLOAT,   /* '<f8', '<f4' (only an empty array of them is of use: np.array([]) is float64) */
    NPY_UNICODE, /* '<U{n}': n UTF-32LE code points */
    NPY_BYTES,   /* '|S{n}' */
} npy_kind;

typedef struct npz_archive npz_archive;

typedef struct npy_array {
    npz_archive *archive;
    const char *name;  /* the array's name (member without ".npy"), for messages */
    char descr[24];    /* as written, e.g. "<i4" */
    npy_kind kind;
    int item_size;     /* bytes per element */
    int is_signed;     /* NPY_INT */
    int fortran_order;
    int ndim;
    int64_t shape[NPY_MAX_DIMS];
    int64_t count;     /* elements: the product of shape */
    int64_t read;      /* elements read so far */
    void *member;      /* zip_file_t */
} npy_array;

/* Opens path as a zip archive (every problem one line naming path). */
int rs_npz_open(npz_archive **out, const char *path, rs_error *err);
void rs_npz_close(npz_archive *a);
/* 1 when the archive holds NAME.npy. */
int rs_npz_has(npz_archive *a, const char *name);
/* The names of the arrays, "a, b, c" (for a message saying what is there). */
void rs_npz_names(npz_archive *a, char *buf, size_t size);

/* Opens array NAME (its header read and checked: version, dict, descr of a
 * kind above, C order, a data size that matches the shape). A missing
 * array is an error naming the file and the arrays it holds. */
int rs_npy_open(npz_archive *a, const char *name, npy_array *arr, rs_error *err);
/* Reads the next n integers of an NPY_INT array into out, widened to int64. */
int rs_npy_read_ints(npy_array *arr, int64_t *out, int64_t n, rs_error *err);
/* The one value of a 0-d (or 1-element) array as text: a string array's
 * characters (UTF-8), an integer's decimal digits. */
int rs_npy_read_scalar_text(npy_array *arr, char *out, size_t size, rs_error *err);
void rs_npy_close(npy_array *arr);

#endif
