/* Importing RouteLLM-style per-question correctness tables (docs/import.md):
 * one CSV row per question, one column per model holding whether (or how
 * well) it answered, an optional domain column (MMLU's `subject`) and an
 * optional `contaminated` flag. The result is a unit = query trace with
 * /outcome/quality and, given prices, /outcome/cost [E]. */
#ifndef ROUTESIM_IMPORT_ROUTELLM_H
#define ROUTESIM_IMPORT_ROUTELLM_H

#include <stdint.h>

#include "routesim/error.h"
#include "workloads/import/import_csv.h"

typedef struct rs_import_routellm_options {
    const char *input;         /* CSV path, gzip allowed, "-" = stdin */
    const char *output;        /* the trace */
    const char *models;        /* "a,b": the model columns; NULL = every column but the others named here */
    const char *domain_column; /* NULL = "subject" when present; "" = none */
    const char *cost;          /* "a=30,b=0.6": cost of one call per model; NULL = no /outcome/cost */
    int decontaminate;         /* drop rows whose `contaminated` is 1 / true */
    int gzip_level;
    double max_quality;    /* qualities must lie in [0, max_quality]; 0 = 1 */
    rs_output_limit limit; /* {0} = the default output limit */
} rs_import_routellm_options;

int rs_import_routellm(const rs_import_routellm_options *opt, rs_import_query_report *report, rs_error *err);

#endif
