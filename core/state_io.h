/* The stream behind rs_state_io (routesim/checkpoint.h): a file written or
 * read in order, with a running checksum and byte count, so a checkpoint
 * can tell a damaged file (before anything is restored from it) and an
 * object that reads more or less than it wrote. */
#ifndef ROUTESIM_STATE_IO_H
#define ROUTESIM_STATE_IO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "routesim/checkpoint.h"

struct rs_state_io {
    FILE *f;
    int restoring;
    int failed;     /* an object gave up, or the file was short or could not be written */
    uint64_t bytes; /* so far */
    /* checksum of the bytes so far, however they were split into calls */
    uint64_t hash;
    unsigned char pending[8];
    int num_pending;
};

/* Starts saving to (restoring = 0) or restoring from f. With f = NULL it
 * only counts: rs_state_bytes adds sizes to `bytes` and touches nothing,
 * rs_state_io_sum sums what it is given. */
void rs_state_io_start(rs_state_io *io, FILE *f, int restoring);
/* Adds bytes to the checksum without reading or writing them. */
void rs_state_io_sum(rs_state_io *io, const void *data, size_t size);
/* The checksum of every byte so far. */
uint64_t rs_state_io_digest(const rs_state_io *io);

#endif
