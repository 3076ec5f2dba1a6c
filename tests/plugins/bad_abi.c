/* A plugin that claims an ABI this routesim does not have: loading it must
 * fail with a clear message. */
#include "routesim/plugin.h"

RS_API const int routesim_plugin_abi = RS_PLUGIN_ABI_VERSION + 1000;

int routesim_register(rs_error *err) { return rs_fail(err, "must not be called"); }
