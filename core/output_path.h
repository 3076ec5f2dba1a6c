/* Outputs appear whole or not at all: writers create "<path>.tmp.<pid>"
 * and rename it over the final path only after everything was written.
 * Temporaries are registered (core/temp_files.h): a SIGINT, SIGTERM or
 * SIGHUP removes them, and stale ones of dead processes are removed by the
 * next writer of the same output. */
#ifndef ROUTESIM_OUTPUT_PATH_H
#define ROUTESIM_OUTPUT_PATH_H

#include <stddef.h>

#include "routesim/error.h"

/* Writes the temporary name for final_path into buf and registers it;
 * removes temporaries of final_path left by processes that no longer run.
 * Every rs_temp_path is ended by rs_commit_path or rs_temp_discard. */
int rs_temp_path(const char *final_path, char *buf, size_t size, rs_error *err);
/* Renames tmp over final (atomic on one file system). */
int rs_commit_path(const char *tmp, const char *final_path, rs_error *err);
/* Removes the temporary file tmp (when it was created) and forgets it. */
void rs_temp_discard(const char *tmp);
/* 1 when a and b name the same file: the same device and inode when both
 * exist (so symbolic and hard links, "./" and ".." all count), else the
 * same resolved directory and name. */
int rs_same_file(const char *a, const char *b);
/* Creates a directory and its parents (mkdir -p), checking it is writable. */
int rs_make_dirs(const char *dir, rs_error *err);
/* Creates the parent directory of a file path. */
int rs_make_parent_dirs(const char *file_path, rs_error *err);

#endif
