/* Reads text input line by line: a file, "-" for stdin, plain or
 * gzip-compressed (recognised from the content), lines of any length. */
#ifndef ROUTESIM_LINE_READER_H
#define ROUTESIM_LINE_READER_H

#include <stddef.h>
#include <zlib.h>

#include "routesim/error.h"

typedef struct rs_line_reader {
    gzFile gz;
    char *buf; /* the current line, NUL-terminated, without its newline */
    size_t cap;
} rs_line_reader;

/* label names the input in messages. */
int rs_line_reader_open(rs_line_reader *r, const char *path, const char *label, rs_error *err);
/* The next line in r->buf; returns 1 for a line, 0 at the end of input,
 * -1 on a read error. */
int rs_line_reader_next(rs_line_reader *r, size_t *len, const char *label, rs_error *err);
void rs_line_reader_close(rs_line_reader *r);

#endif
