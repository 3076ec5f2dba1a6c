/* The parameters of a router as users see them: its own table, then, for
 * token-choice routers, the capacity stage's (names the router defines
 * itself are not repeated). Presets start from their base router's
 * parameters with the preset's values as defaults. */
#ifndef ROUTESIM_ROUTER_PARAMS_H
#define ROUTESIM_ROUTER_PARAMS_H

#include "routesim/router.h"

/* The combined table (cached; call from one thread, before runs start). */
const rs_param_def *rs_router_param_defs(const rs_router_type *type, int *count, rs_error *err);

/* Fills p with the defaults of `type`, including capacity defaults; for a
 * preset, `type` is the preset and *base receives the router it runs. */
int rs_router_params_init(rs_params *p, const rs_router_type *type, const rs_router_type **base, const char *owner,
                          rs_error *err);

/* Parameters that shape the run, as a bit mask over p's table: all of
 * them, except the capacity stage's while capacity_factor is unset (the
 * stage is off, so they change nothing). For spec strings and results. */
unsigned long long rs_router_param_mask(const rs_router_type *type, const rs_params *p);

#endif
