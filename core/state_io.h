/* The stream behind rs_state_io (routesim/checkpoint.h): a file written or
 * read in order, with a running checksum and byte count, so a checkpoint
 * can tell a damaged file and an object that read more or less than it
 * wrote. */
#ifndef ROUTESIM_STATE_IO_H
#define ROUTESIM_STATE_IO_H

#include <stdint.h>
#include <stdio.h>

#include "routesim/checkpoint.h"

struct rs_state_io {
    FILE *f;
    int restoring;
    int failed;     /* an object gave up, or the file was short or could not be written */
    uint64_t hash;  /* of every byte so far */
    uint64_t bytes; /* so far */
};

/* Starts saving to (restoring = 0) or restoring from f. */
void rs_state_io_start(rs_state_io *io, FILE *f, int restoring);

#endif
