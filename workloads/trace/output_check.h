/* What an existing file holds, judged by its content, and the checks every
 * writer makes before it starts: an output is never one of its own inputs,
 * never a directory, and replaces a file of another kind only when forced
 * (`route --out` over a trace, `gen -o` over a log, ...). */
#ifndef ROUTESIM_OUTPUT_CHECK_H
#define ROUTESIM_OUTPUT_CHECK_H

#include "routesim/error.h"

typedef enum rs_file_kind {
    RS_FILE_MISSING,   /* no such file */
    RS_FILE_EMPTY,     /* an empty file: nothing to lose */
    RS_FILE_DIRECTORY,
    RS_FILE_SPECIAL,   /* a device, pipe or socket */
    RS_FILE_TRACE,     /* HDF5 with root attribute format = "routesim-trace" */
    RS_FILE_DECISIONS, /* HDF5 with root attribute format = "routesim-decisions" */
    RS_FILE_HDF5,      /* any other HDF5 file */
    RS_FILE_TEXT,      /* not HDF5, with the signature asked for (below) */
    RS_FILE_OTHER,     /* not HDF5, without it: a log, a config, ... */
} rs_file_kind;

/* The kind of path. A file that is not HDF5 is RS_FILE_TEXT when signature
 * is NULL or occurs in its first 4 KiB (the header of a results table, say),
 * else RS_FILE_OTHER. */
rs_file_kind rs_file_kind_of(const char *path, const char *signature);
/* "a routesim trace", "a decisions file", "an HDF5 file", ... */
const char *rs_file_kind_name(rs_file_kind kind);

typedef struct rs_output_check {
    const char *path;             /* the output about to be written */
    rs_file_kind kind;            /* what it will hold: RS_FILE_TRACE, RS_FILE_DECISIONS or RS_FILE_TEXT */
    const char *signature;        /* RS_FILE_TEXT: what a file of this kind contains in its first 4 KiB */
    const char *what;             /* the output's name in messages: "decisions file", "results table" */
    const char *const *inputs;    /* the files the command reads; NULL entries and "-" are skipped */
    int num_inputs;
    int force;                    /* replace an existing file of another kind (--force) */
} rs_output_check;

/* 0 when c->path may be written; else one line naming the output (and the
 * input it would overwrite). */
int rs_output_check_path(const rs_output_check *c, rs_error *err);

#endif
