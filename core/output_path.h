/* Outputs appear whole or not at all: writers create "<path>.tmp.<pid>"
 * and rename it over the final path only after everything was written. */
#ifndef ROUTESIM_OUTPUT_PATH_H
#define ROUTESIM_OUTPUT_PATH_H

#include <stddef.h>

#include "routesim/error.h"

/* Writes the temporary name for final_path into buf. */
int rs_temp_path(const char *final_path, char *buf, size_t size, rs_error *err);
/* Renames tmp over final (atomic on one file system). */
int rs_commit_path(const char *tmp, const char *final_path, rs_error *err);
/* Creates a directory and its parents (mkdir -p), checking it is writable. */
int rs_make_dirs(const char *dir, rs_error *err);
/* Creates the parent directory of a file path. */
int rs_make_parent_dirs(const char *file_path, rs_error *err);

#endif
