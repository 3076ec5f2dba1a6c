/* A growing text built from formatted pieces, and printing a text line by
 * line: the notes an importer writes into a trace (import_notes) and prints. */
#ifndef ROUTESIM_TEXT_BUFFER_H
#define ROUTESIM_TEXT_BUFFER_H

#include <stddef.h>
#include <stdio.h>

typedef struct rs_text {
    char *buf; /* NUL-terminated once anything was added; NULL before, or when out of memory */
    size_t len, cap;
    int failed; /* out of memory: later pieces are dropped */
} rs_text;

/* Appends printf-formatted text. */
void rs_text_addf(rs_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void rs_text_free(rs_text *t);

/* Prints each line of text (NULL: nothing) as prefix, the line, a newline:
 * how importers report their notes. */
void rs_text_print_lines(FILE *f, const char *prefix, const char *text);

#endif
