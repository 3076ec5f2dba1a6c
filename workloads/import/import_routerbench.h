/* Importing RouterBench-style wide tables (docs/import.md): one CSV row per
 * prompt with `eval_name` (the domain), per model a column `<model>` with
 * its quality and `<model>|total_cost` with what the call cost; empty cells
 * mean not evaluated. The result is a unit = query trace with
 * /outcome/quality and /outcome/cost [T, E]. */
#ifndef ROUTESIM_IMPORT_ROUTERBENCH_H
#define ROUTESIM_IMPORT_ROUTERBENCH_H

#include "routesim/error.h"
#include "workloads/import/import_csv.h"

typedef struct rs_import_routerbench_options {
    const char *input;  /* CSV path, gzip allowed, "-" = stdin */
    const char *output; /* the trace */
    const char *models; /* "a,b": a subset of the models, in this order; NULL = every model, in column order */
    int gzip_level;
    double max_quality;    /* qualities must lie in [0, max_quality]; 0 = 1 */
    rs_output_limit limit; /* {0} = the default output limit */
} rs_import_routerbench_options;

int rs_import_routerbench(const rs_import_routerbench_options *opt, rs_import_query_report *report, rs_error *err);

#endif
