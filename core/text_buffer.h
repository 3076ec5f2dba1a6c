/* A growing text built from formatted pieces: the notes an importer writes
 * into a trace (import_notes) and prints. */
#ifndef ROUTESIM_TEXT_BUFFER_H
#define ROUTESIM_TEXT_BUFFER_H

#include <stddef.h>

typedef struct rs_text {
    char *buf; /* NUL-terminated once anything was added; NULL before, or when out of memory */
    size_t len, cap;
    int failed; /* out of memory: later pieces are dropped */
} rs_text;

/* Appends printf-formatted text. */
void rs_text_addf(rs_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void rs_text_free(rs_text *t);

#endif
