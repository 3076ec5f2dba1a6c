/* Results of a run in tidy long form: one row per
 * (run, metric, key, layer) with the value, plus the run descriptions.
 * Writers produce results.csv and results.json atomically. */
#ifndef ROUTESIM_RESULTS_H
#define ROUTESIM_RESULTS_H

#include <stdio.h>
#include <string.h>

#include "routesim/error.h"

typedef struct rs_result_run {
    char *label;  /* `run` column: unique name of this trace x router */
    char *trace;  /* trace path */
    char *router; /* router name */
    char *params; /* router parameters "k=v;k=v", sorted */
    char *spec;   /* spec string that recreates the router */
    int entry;    /* the config's routers[] entry it came from (the runs of a sweep share it); -1 unknown */
} rs_result_run;

typedef struct rs_result_row {
    int run;
    char *metric; /* family.name */
    char *key;    /* metric parameters "k=v;k=v", sorted; may be "" */
    int layer;    /* -1 = all */
    double value;
} rs_result_row;

typedef struct rs_results {
    rs_result_run *runs;
    int num_runs, cap_runs;
    rs_result_row *rows;
    size_t num_rows, cap_rows;
} rs_results;

void rs_results_init(rs_results *r);
void rs_results_free(rs_results *r);
/* Returns the run index, or -1 when out of memory. */
int rs_results_add_run(rs_results *r, const char *label, const char *trace, const char *router, const char *params,
                       const char *spec);
int rs_results_add_row(rs_results *r, int run, const char *metric, const char *key, int layer, double value);

/* Same metric, key and layer (the row's identity within a run). */
static inline int rs_result_row_same(const rs_result_row *a, const rs_result_row *b)
{
    return a->layer == b->layer && strcmp(a->metric, b->metric) == 0 && strcmp(a->key, b->key) == 0;
}

/* Statistics rows (intervals) carry `stat=VALUE` in the key, inserted where
 * its name sorts among the key's parts ("m=16" -> "m=16;stat=ci_low"). */
void rs_key_with_stat(const char *key, const char *value, char *buf, size_t size);

/* The value printed in results files: the shortest text that reads back as
 * the same double (rs_number_text: 10, 0.1, 1e-08), nan/inf spelled out. */
void rs_format_value(double v, char *buf, size_t size);

/* The first line of results.csv (also how an existing file is recognised as
 * a results table before it is overwritten). */
#define RS_RESULTS_CSV_HEADER "run,trace,router,params,metric,key,layer,value\n"

int rs_results_write_csv(const rs_results *r, const char *path, rs_error *err);

/* Writes results.json: the caller's description of the run (meta: name,
 * config, version, times...) plus "runs" and "results" arrays. meta is
 * consumed. */
struct cJSON;
int rs_results_write_json(const rs_results *r, struct cJSON *meta, const char *path, rs_error *err);

/* Table for the terminal: for each trace, metrics (layer = all) down, runs
 * across under distinct headers; "-" for a value not reported, "nan" for an
 * undefined one; a histogram (more than RS_TABLE_BINS_SHOWN bins) as its
 * largest bin and where it is. On a terminal, columns wrap to its width. */
void rs_results_print_table(const rs_results *r, FILE *out);
/* The same with columns wrapped to max_width characters (0: never wrapped). */
void rs_results_print_table_width(const rs_results *r, FILE *out, int max_width);

#endif
