/* Outputs whose size is known before they are written (traces made by the
 * generator or an importer) are checked first: against a size limit and
 * against the free space of the file system that will hold them, so a
 * mistaken setting or a hostile input is refused in one line instead of
 * filling the disk. */
#ifndef ROUTESIM_OUTPUT_SPACE_H
#define ROUTESIM_OUTPUT_SPACE_H

#include <stddef.h>

#include "routesim/error.h"

#define RS_OUTPUT_DEFAULT_LIMIT_GIB 64.0

typedef struct rs_output_limit {
    double max_gib;   /* 0: RS_OUTPUT_DEFAULT_LIMIT_GIB; < 0: no limit and no free-space check */
    const char *lift; /* how the user raises the limit, for messages; NULL: the command-line options */
} rs_output_limit;

/* Refuses an output of `bytes` (before compression) at path when it exceeds
 * the limit (limit NULL = the default) or, unless compressed (its size on
 * disk is then unknown), the space free in path's directory. detail says
 * how bytes was counted ("1000 tokens x 8 bytes"). */
int rs_output_space_check(const char *path, double bytes, const char *detail, int compressed,
                          const rs_output_limit *limit, rs_error *err);

/* "14.9 GiB", "512 bytes". */
void rs_format_bytes(double bytes, char *buf, size_t size);

#endif
