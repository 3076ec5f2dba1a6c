/* Reads a file holding one JSON array (as Python's json.dump writes a list)
 * element by element: only the current element is held in memory, so a
 * file of any length is read in memory bounded by its largest element.
 * Plain or gzip-compressed (recognised from the content); "-" reads
 * standard input. */
#ifndef ROUTESIM_JSON_ARRAY_READER_H
#define ROUTESIM_JSON_ARRAY_READER_H

#include <cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

#include "routesim/error.h"

/* An element larger than this is refused (one line), not buffered. */
#define RS_JSON_ARRAY_MAX_ELEMENT ((size_t)64 << 20)

typedef struct rs_json_array_reader {
    gzFile gz;
    const char *label;      /* the input, in messages */
    unsigned char *in;      /* bytes read, not yet scanned: in[at, len) */
    size_t at, len;
    int eof;
    char *element;          /* text of the current element */
    size_t element_len, element_cap;
    int64_t line;           /* line of the next byte to scan (1-based) */
    int64_t element_line;   /* line where the current element starts */
    int64_t index;          /* elements returned so far */
    int state;              /* where the scan is: before '[', in the array, after ']' */
} rs_json_array_reader;

int rs_json_array_open(rs_json_array_reader *r, const char *path, const char *label, rs_error *err);
/* The next element, parsed (caller cJSON_Deletes it): returns 1, or 0 after
 * the closing ']' (and nothing but white space after it), -1 on malformed
 * or truncated input, naming the element (0-based "record N") and line. An
 * element is refused when an object in it has a key twice. */
int rs_json_array_next(rs_json_array_reader *r, cJSON **element, rs_error *err);
void rs_json_array_close(rs_json_array_reader *r);

#endif
