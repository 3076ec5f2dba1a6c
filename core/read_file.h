/* Reading a whole (text) file into memory: configs, stored runs, results. */
#ifndef ROUTESIM_READ_FILE_H
#define ROUTESIM_READ_FILE_H

/* The file's bytes followed by a NUL (caller frees); NULL when it cannot be
 * opened or read (errno says why) or memory runs out. */
char *rs_read_file(const char *path);

#endif
