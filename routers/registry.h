/* What routers/ itself needs of the router table beyond the public
 * rs_router_register (include/routesim/router.h). */
#ifndef ROUTESIM_ROUTER_REGISTRY_H
#define ROUTESIM_ROUTER_REGISTRY_H

#include "routesim/router.h"

/* Puts type where the registered plugin router old was (same position in
 * listings). Runs must not be in progress; old stays valid memory, since
 * specs parsed earlier may still point to it. */
int rs_router_replace(const rs_router_type *old, const rs_router_type *type, rs_error *err);

#endif
