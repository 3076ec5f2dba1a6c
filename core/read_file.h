/* Reading a whole (text) file into memory: configs, stored runs, results. */
#ifndef ROUTESIM_READ_FILE_H
#define ROUTESIM_READ_FILE_H

/* The file's bytes followed by a NUL (caller frees); NULL when it cannot be
 * opened or read (errno says why: EISDIR for a directory) or memory runs
 * out. */
char *rs_read_file(const char *path);

/* 1 when path is a directory, so that a reader can say "PATH: is a
 * directory, expected ..." rather than pass on an I/O error. */
int rs_is_directory(const char *path);

#endif
