/* Reads a results directory back (what rs_results_write_csv and
 * rs_results_write_json wrote): results.csv as one value per (run, metric,
 * key, layer) with its interval, and from results.json, when present, the
 * experiment's name and each run's config entry. The figures (plots/)
 * read results through it. */
#ifndef ROUTESIM_RESULTS_READER_H
#define ROUTESIM_RESULTS_READER_H

#include <stddef.h>

#include "routesim/error.h"

typedef struct rs_results_table_run {
    char *label, *trace, *router, *params; /* results.csv columns; a run is one (label, trace) */
    int entry; /* config routers[] entry from results.json runs[].entry; -1 unknown */
} rs_results_table_run;

/* One (run, metric, key, layer): the point estimate and, when the results
 * have companion rows with stat=ci_low / stat=ci_high, its interval. */
typedef struct rs_results_table_value {
    int run, key, layer; /* key: rs_results_table.keys index (stat= removed); layer -1 = all */
    double value, ci_low, ci_high; /* NAN when absent or undefined */
    int has_value, has_ci;
} rs_results_table_value;

typedef struct rs_results_table_metric {
    char *name;          /* "load.maxvio" */
    size_t first, count; /* its values: table.values[first .. first+count), by run, key, layer */
    int num_layers;      /* highest layer index + 1 (0 = only layer=all rows) */
    int any_ci;
} rs_results_table_metric;

typedef struct rs_results_table {
    char csv_path[4096];
    char *name; /* the experiment's name from results.json, or NULL */
    rs_results_table_run *runs;
    int num_runs;
    char **keys; /* distinct keys, in order of first appearance */
    int num_keys;
    rs_results_table_metric *metrics; /* in order of first appearance */
    int num_metrics;
    rs_results_table_value *values;
    size_t num_values;
} rs_results_table;

/* Reads results_dir/results.csv (and results.json). Rows whose key has a
 * stat= other than ci_low / ci_high are left out. Errors name the file,
 * the line and the field. */
int rs_results_table_read(rs_results_table *t, const char *results_dir, rs_error *err);
void rs_results_table_free(rs_results_table *t);
/* Index of a metric, or -1. */
int rs_results_find_metric(const rs_results_table *t, const char *name);
/* The value of (metric, run, key, layer), or NULL. */
const rs_results_table_value *rs_results_table_find(const rs_results_table *t, int metric, int run, int key,
                                                    int layer);
/* Distinct keys of a metric in order of first appearance, at most max (pass
 * t->num_keys for all of them); returns how many it stored. */
int rs_results_metric_keys(const rs_results_table *t, int metric, int *keys, int max);
/* Parses a whole string as a number (results.csv's values: "nan" included). */
int rs_results_parse_number(const char *text, double *out);

#endif
