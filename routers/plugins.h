/* Loading plugins (include/routesim/plugin.h). */
#ifndef ROUTESIM_PLUGINS_H
#define ROUTESIM_PLUGINS_H

#include "routesim/error.h"

/* Loads one shared object and lets it register its routers. Loading the
 * same path twice is a no-op. */
int rs_plugin_load(const char *path, rs_error *err);

#endif
