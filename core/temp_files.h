/* The temporary files this process is writing (core/output_path.c names
 * them "<final>.tmp.<pid>"). A SIGINT, SIGTERM or SIGHUP removes every one
 * of them before the process dies of the signal, so an interrupted `gen`,
 * `route`, `import` or `run` leaves neither a final file nor a temporary
 * one. Temporaries of processes killed too hard for that (SIGKILL, a crash)
 * are removed by the next writer of the same output. */
#ifndef ROUTESIM_TEMP_FILES_H
#define ROUTESIM_TEMP_FILES_H

/* Remembers path as a live temporary file (before the file is created) and,
 * the first time, installs the signal handlers for the signals whose action
 * is still the default one (a host's own handlers are left alone). */
void rs_temp_files_add(const char *path);
/* Forgets path: it was renamed into place or removed. */
void rs_temp_files_forget(const char *path);
/* Removes the temporaries "<final_path>.tmp.<pid>" next to final_path whose
 * process no longer runs (kill(pid, 0) fails with ESRCH). */
void rs_temp_files_remove_stale(const char *final_path);

#endif
