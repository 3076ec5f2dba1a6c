/* Loading plugins (include/routesim/plugin.h). */
#ifndef ROUTESIM_PLUGINS_H
#define ROUTESIM_PLUGINS_H

#include "routesim/error.h"

/* Loads one shared object, checks its ABI version and structure sizes, and
 * lets it register its routers and metric families. Loading the same path
 * twice is a no-op. */
int rs_plugin_load(const char *path, rs_error *err);

#endif
