/* The router table: built-ins from registry.def, then plugins. */
#include <stdlib.h>
#include <string.h>

#include "routers/registry.h"

#define RS_ROUTER(id) extern const rs_router_type *const rs_router_##id;
#include "routers/registry.def"
#undef RS_ROUTER

static const rs_router_type *const *const builtin[] = {
#define RS_ROUTER(id) &rs_router_##id,
#include "routers/registry.def"
#undef RS_ROUTER
};

enum { NUM_BUILTIN = sizeof builtin / sizeof builtin[0], MAX_PLUGIN_ROUTERS = 256 };

/* Plugins register while the program is single-threaded, before any run. */
static const rs_router_type *plugin_routers[MAX_PLUGIN_ROUTERS];
static int num_plugin_routers;

int rs_router_count(void) { return NUM_BUILTIN + num_plugin_routers; }

const rs_router_type *rs_router_at(int index)
{
    if (index < 0)
        return NULL;
    if (index < NUM_BUILTIN)
        return *builtin[index];
    index -= NUM_BUILTIN;
    return index < num_plugin_routers ? plugin_routers[index] : NULL;
}

const rs_router_type *rs_router_find(const char *name)
{
    for (int i = 0; i < rs_router_count(); i++) {
        const rs_router_type *t = rs_router_at(i);
        if (strcmp(t->name, name) == 0)
            return t;
    }
    return NULL;
}

int rs_router_register(const rs_router_type *type, rs_error *err)
{
    RS_CHECK(type && type->name && type->create && type->route_layer && type->destroy, err,
             "plugin router descriptor is incomplete (name, create, route_layer and destroy are required)");
    RS_CHECK(!rs_router_find(type->name), err, "router '%s' is already registered", type->name);
    RS_CHECK(num_plugin_routers < MAX_PLUGIN_ROUTERS, err, "too many plugin routers (at most %d)",
             MAX_PLUGIN_ROUTERS);
    plugin_routers[num_plugin_routers++] = type;
    return 0;
}

int rs_router_replace(const rs_router_type *old, const rs_router_type *type, rs_error *err)
{
    for (int i = 0; i < num_plugin_routers; i++) {
        if (plugin_routers[i] == old) {
            plugin_routers[i] = type;
            return 0;
        }
    }
    return rs_fail(err, "router '%s' is not a registered plugin router", old->name);
}
