/* Plugins: shared objects that add routers and metric families to routesim
 * without a fork.
 *
 * A plugin includes this header, describes its routers and metric families
 * as the files under routers/ and metrics/ do (a static const
 * rs_router_type or rs_metric_type each) and defines two things:
 *
 *     RS_PLUGIN_ABI;   // the ABI version and structure sizes it was built with
 *     int routesim_register(rs_error *err)
 *     {
 *         RS_TRY(rs_router_register(&my_router, err));
 *         return rs_metric_register(&my_metric, err);
 *     }
 *
 * `routesim run --plugin my.so` (or "plugins": ["my.so"] in a config, or
 * `route --plugin`, `routers --plugin`) loads it before anything else; its
 * routers and metrics then work everywhere built-in ones do. A plugin may
 * call every function marked RS_API in include/routesim/ (the binary
 * exports them) and use the inline kernels of routesim/select.h; nothing
 * else of routesim is visible to it. See examples/plugin_router/.
 *
 * A plugin whose ABI version or structure sizes differ from the loading
 * routesim's is refused with one line naming the plugin and the structure. */
#ifndef ROUTESIM_PLUGIN_H
#define ROUTESIM_PLUGIN_H

#include <stddef.h>

#include "routesim/metric.h"
#include "routesim/router.h"

/* Bumped whenever the plugin interface changes in a way sizes do not show
 * (a field's meaning, a function's signature, this list). */
#define RS_PLUGIN_ABI_VERSION 5

/* The structures a plugin shares with routesim, in the order of
 * routesim_plugin_sizes. */
#define RS_PLUGIN_STRUCTS(X)                                                 \
    X(rs_error) X(rs_param_def) X(rs_params)                                 \
    X(rs_trace_info) X(rs_groups) X(rs_chunk) X(rs_decisions)                \
    X(rs_device_chunk)                                                       \
    X(rs_router_setup) X(rs_router_shape) X(rs_router_type)                  \
    X(rs_metric_output) X(rs_metric_setup) X(rs_metric_ref) X(rs_metric_type)

#define RS_PLUGIN_SIZEOF_(type) sizeof(type),
#define RS_PLUGIN_COUNT_(type) +1
enum { RS_PLUGIN_NUM_STRUCTS = 0 RS_PLUGIN_STRUCTS(RS_PLUGIN_COUNT_) };

/* What routesim reads from a plugin before calling routesim_register: the
 * ABI version and sizeof of every shared structure, as the plugin saw them. */
#define RS_PLUGIN_ABI                                                  \
    RS_API const int routesim_plugin_abi = RS_PLUGIN_ABI_VERSION;      \
    RS_API const size_t routesim_plugin_sizes[RS_PLUGIN_NUM_STRUCTS] = \
        {RS_PLUGIN_STRUCTS(RS_PLUGIN_SIZEOF_)}

/* The entry point a plugin defines: registers its routers and metrics. */
RS_API int routesim_register(rs_error *err);

#endif
