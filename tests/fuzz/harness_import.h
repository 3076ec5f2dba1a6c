/* One import of fuzz bytes, as `routesim import FORMAT` runs it. */
#ifndef ROUTESIM_FUZZ_HARNESS_IMPORT_H
#define ROUTESIM_FUZZ_HARNESS_IMPORT_H

#include <stddef.h>
#include <stdint.h>

/* The input is the file to import; when its first line starts with "--" it
 * holds the options instead ("--experts=8 --map=weights=w --strict", the
 * command line's forms with '=' before every value), and the file is the
 * rest. A format that reads a directory or several files gets the rest
 * split into files at lines "@@ NAME" (NAME a relative path; what comes
 * before the first such line is the file "input"): the directory holding
 * them, or each of them in order. Checks what every import promises: a
 * failure is one line and leaves no file behind; a success leaves a trace
 * that opens and reads. */
void rs_fuzz_import(const char *format, const uint8_t *data, size_t size);

#endif
