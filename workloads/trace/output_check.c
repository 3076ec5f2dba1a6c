#include "workloads/trace/output_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/output_path.h"
#include "workloads/trace/h5util.h"

/* The root attribute 'format' of an HDF5 file: a trace, a decisions file or
 * something else. */
static rs_file_kind hdf5_kind(const char *path)
{
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0)
        return RS_FILE_HDF5;
    char *format = NULL;
    rs_file_kind kind = RS_FILE_HDF5;
    if (rs_h5_attr_string(file, "format", &format, path, "root", NULL) == 1) {
        if (strcmp(format, "routesim-trace") == 0)
            kind = RS_FILE_TRACE;
        else if (strcmp(format, "routesim-decisions") == 0)
            kind = RS_FILE_DECISIONS;
    }
    free(format);
    H5Fclose(file);
    return kind;
}

static int head_contains(const char *path, const char *signature)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    char head[4097];
    size_t got = fread(head, 1, sizeof head - 1, f);
    fclose(f);
    head[got] = '\0';
    return strstr(head, signature) != NULL;
}

rs_file_kind rs_file_kind_of(const char *path, const char *signature)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return RS_FILE_MISSING;
    if (S_ISDIR(st.st_mode))
        return RS_FILE_DIRECTORY;
    if (!S_ISREG(st.st_mode))
        return RS_FILE_SPECIAL;
    if (st.st_size == 0)
        return RS_FILE_EMPTY;
    rs_h5_quiet();
    if (H5Fis_hdf5(path) > 0)
        return hdf5_kind(path);
    return !signature || head_contains(path, signature) ? RS_FILE_TEXT : RS_FILE_OTHER;
}

const char *rs_file_kind_name(rs_file_kind kind)
{
    switch (kind) {
    case RS_FILE_MISSING: return "missing";
    case RS_FILE_EMPTY: return "an empty file";
    case RS_FILE_DIRECTORY: return "a directory";
    case RS_FILE_SPECIAL: return "not a regular file";
    case RS_FILE_TRACE: return "a routesim trace";
    case RS_FILE_DECISIONS: return "a routesim decisions file";
    case RS_FILE_HDF5: return "an HDF5 file of another format";
    case RS_FILE_TEXT: return "a file that is not HDF5";
    case RS_FILE_OTHER: return "a file of another kind";
    }
    return "a file";
}

int rs_output_check_path(const rs_output_check *c, rs_error *err)
{
    for (int i = 0; i < c->num_inputs; i++) {
        const char *in = c->inputs[i];
        if (in && strcmp(in, "-") != 0 && rs_same_file(c->path, in))
            return rs_fail(err, "%s: the %s would overwrite the input %s (the same file); write it elsewhere", c->path,
                           c->what, in);
    }
    rs_file_kind kind = rs_file_kind_of(c->path, c->signature);
    switch (kind) {
    case RS_FILE_MISSING:
    case RS_FILE_EMPTY: return 0;
    case RS_FILE_DIRECTORY:
        return rs_fail(err, "%s: is a directory, expected a file name for the %s", c->path, c->what);
    case RS_FILE_SPECIAL:
        return rs_fail(err, "%s: not a regular file; the %s is written to a temporary file and renamed over it",
                       c->path, c->what);
    default: break;
    }
    if (kind == c->kind || c->force)
        return 0;
    return rs_fail(err, "%s: exists and is not a %s (it is %s); --force overwrites it", c->path, c->what,
                   rs_file_kind_name(kind));
}
