/* One import of fuzz bytes, as `routesim import FORMAT` runs it. */
#ifndef ROUTESIM_FUZZ_HARNESS_IMPORT_H
#define ROUTESIM_FUZZ_HARNESS_IMPORT_H

#include <stddef.h>
#include <stdint.h>

/* The input is the file to import; when its first line starts with "--" it
 * holds the options instead ("--experts=8 --map=weights=w --strict", the
 * command line's forms with '=' before every value), and the file is the
 * rest. Checks what every import promises: a failure is one line and
 * leaves no file behind; a success leaves a trace that opens and reads. */
void rs_fuzz_import(const char *format, const uint8_t *data, size_t size);

/* The same for formats that read a directory: after the options line, the
 * input is files, each introduced by a line "==> NAME <==" (as `head` prints
 * several files) and running to the newline before the next such line; they
 * are written into a fresh directory, which is imported. */
void rs_fuzz_import_dir(const char *format, const uint8_t *data, size_t size);

#endif
