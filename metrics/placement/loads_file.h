/* Expert loads from a file, for planning placements (`routesim place
 * --loads`, the placement metric's `loads`):
 *   JSON  {"logical_count": [[...E numbers...], ...L rows]}, the form SGLang's
 *         expert distribution recorder dumps in stat mode (a bare [[...]]
 *         is read too);
 *   CSV   one row per layer, E numbers separated by commas; a first row
 *         that is not numeric is a header and skipped.
 * Loads must be finite and >= 0, and every row as long as the first. */
#ifndef ROUTESIM_PLACEMENT_LOADS_FILE_H
#define ROUTESIM_PLACEMENT_LOADS_FILE_H

#include "routesim/error.h"

/* Fills *loads ([L][E], caller frees), *L and *E. Messages name the file,
 * the row (layer) and column (expert). */
int rs_placement_loads_read(const char *path, double **loads, int *L, int *E, rs_error *err);

#endif
