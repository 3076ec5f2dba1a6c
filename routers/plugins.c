#include "routers/plugins.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core/read_file.h"
#include "routesim/plugin.h"

enum { MAX_PLUGINS = 64 };

/* Loaded plugins stay loaded: their descriptors live in their memory. */
static char *loaded[MAX_PLUGINS];
static int num_loaded;

/* The structures routesim shares with plugins, as this build sees them. */
static const char *const struct_names[] = {
#define RS_PLUGIN_NAME_(type) #type,
    RS_PLUGIN_STRUCTS(RS_PLUGIN_NAME_)
#undef RS_PLUGIN_NAME_
};
static const size_t struct_sizes[] = {RS_PLUGIN_STRUCTS(RS_PLUGIN_SIZEOF_)};

/* Same ABI version, different layouts: a header edited without a bump. */
static int check_sizes(void *handle, const char *path, rs_error *err)
{
    const size_t *sizes = dlsym(handle, "routesim_plugin_sizes");
    RS_CHECK(sizes, err, "%s: plugin exports no routesim_plugin_sizes (define it with RS_PLUGIN_ABI)", path);
    for (int i = 0; i < RS_PLUGIN_NUM_STRUCTS; i++)
        RS_CHECK(sizes[i] == struct_sizes[i], err,
                 "%s: plugin built with sizeof(%s) = %zu, this routesim has %zu (rebuild it against these headers)",
                 path, struct_names[i], sizes[i], struct_sizes[i]);
    return 0;
}

int rs_plugin_load(const char *path, rs_error *err)
{
    char resolved[PATH_MAX];
    if (!realpath(path, resolved))
        return rs_fail(err, "%s: cannot open plugin (no such file)", path);
    if (rs_is_directory(resolved))
        return rs_fail(err, "%s: is a directory, expected a plugin (a shared object, .so)", path);
    for (int i = 0; i < num_loaded; i++)
        if (strcmp(loaded[i], resolved) == 0)
            return 0;
    RS_CHECK(num_loaded < MAX_PLUGINS, err, "%s: too many plugins (at most %d)", path, MAX_PLUGINS);
    void *handle = dlopen(resolved, RTLD_NOW | RTLD_LOCAL);
    if (!handle)
        return rs_fail(err, "%s: cannot load plugin: %s", path, dlerror());
    const int *abi = dlsym(handle, "routesim_plugin_abi");
    int (*entry)(rs_error *) = (int (*)(rs_error *))dlsym(handle, "routesim_register");
    if (!abi || !entry) {
        dlclose(handle);
        return rs_fail(err, "%s: not a routesim plugin (it must export routesim_plugin_abi and routesim_register)",
                       path);
    }
    if (*abi != RS_PLUGIN_ABI_VERSION) {
        int got = *abi;
        dlclose(handle);
        return rs_fail(err, "%s: plugin built for plugin ABI %d, this routesim has %d (rebuild it)", path, got,
                       RS_PLUGIN_ABI_VERSION);
    }
    if (check_sizes(handle, path, err) != 0) {
        dlclose(handle);
        return -1;
    }
    if (entry(err) != 0) {
        /* Descriptors it registered before failing point into it: keep it loaded. */
        return rs_fail_context(err, "%s: plugin registration failed", path);
    }
    loaded[num_loaded] = strdup(resolved);
    if (!loaded[num_loaded])
        return rs_fail(err, "out of memory");
    num_loaded++;
    return 0;
}
