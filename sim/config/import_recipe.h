/* A trace entry's "import" recipe in a config (docs/config.md):
 * {"format": NAME, "input": FILE, options...}, the options of `routesim
 * import NAME` under their own names, checked against the importer's
 * descriptor (workloads/import/importer.h). */
#ifndef ROUTESIM_IMPORT_RECIPE_H
#define ROUTESIM_IMPORT_RECIPE_H

#include <cJSON.h>

#include "routesim/params.h"
#include "workloads/import/importer.h"

typedef struct rs_trace_import {
    const rs_importer_type *type; /* one with RS_IMPORTER_CONFIG */
    char *input;
    rs_params options;            /* the importer's options */
} rs_trace_import;

/* Parses imp, the "import" object of trace entry trace_path ("traces[0]")
 * of config src. A wrong format names the formats configs accept; a key
 * of another format is named as such. Free x even on failure. */
int rs_import_recipe_parse(rs_trace_import *x, const cJSON *imp, const char *src, const char *trace_path,
                           rs_error *err);
void rs_import_recipe_free(rs_trace_import *x);

#endif
