/* Parameter sweeps in configs (docs/config.md): a JSON params object whose
 * values may be lists expands into several parameter sets. */
#ifndef ROUTESIM_PARAM_SWEEP_H
#define ROUTESIM_PARAM_SWEEP_H

#include <cJSON.h>

#include "routesim/params.h"

typedef enum rs_sweep {
    RS_SWEEP_GRID, /* every combination (Cartesian product, the last list varying fastest) */
    RS_SWEEP_ZIP,  /* lists of equal length, paired: set i takes the i-th value of each */
} rs_sweep;

/* Expands params (may be NULL) applied to copies of base. path names the
 * object in messages ("routers[1].params"). *out receives *count sets. */
int rs_params_expand(const rs_params *base, const cJSON *params, rs_sweep sweep, const char *source,
                     const char *path, rs_params **out, int *count, rs_error *err);
void rs_param_sets_free(rs_params *sets, int count);

/* Sets parameter key from a scalar JSON value; messages name source: path.key. */
int rs_params_set_json(rs_params *p, const char *key, const cJSON *v, const char *source, const char *path,
                       rs_error *err);

#endif
