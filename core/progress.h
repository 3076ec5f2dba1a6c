/* A progress bar with rate and ETA on stderr, drawn only on a terminal. */
#ifndef ROUTESIM_PROGRESS_H
#define ROUTESIM_PROGRESS_H

#include <stdint.h>

typedef struct rs_progress {
    int enabled;
    int64_t total;
    double start, last_draw;
    const char *label;
    const char *unit;
} rs_progress;

/* enabled = -1: automatic (stderr is a terminal and ROUTESIM_NO_PROGRESS unset). */
void rs_progress_start(rs_progress *p, int enabled, int64_t total, const char *label, const char *unit);
void rs_progress_update(rs_progress *p, int64_t done);
void rs_progress_finish(rs_progress *p);

/* Wall clock in seconds. */
double rs_now(void);

#endif
