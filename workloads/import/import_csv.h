/* What the query-outcome importers (routellm, routerbench) share: an
 * RFC 4180 CSV reader (quoted fields with commas, doubled quotes and line
 * breaks; gzip and stdin through the line reader) and the writer of a
 * unit = query trace held in memory. */
#ifndef ROUTESIM_IMPORT_CSV_H
#define ROUTESIM_IMPORT_CSV_H

#include <stdint.h>

#include "core/output_space.h"
#include "routesim/error.h"
#include "workloads/import/line_reader.h"
#include "workloads/trace/trace_writer.h"

typedef struct rs_csv_reader {
    rs_line_reader lines;
    const char *label;   /* the input, in messages */
    int64_t line;        /* line number where the current record starts (1-based) */
    int64_t next_line;   /* the next line to read */
    char *text;          /* fields of the current record, each NUL-terminated */
    size_t text_cap;
    size_t *offsets;     /* [num_fields] into text */
    int num_fields, fields_cap;
} rs_csv_reader;

int rs_csv_open(rs_csv_reader *r, const char *path, rs_error *err);
/* The next record: 1, or 0 at the end of input, -1 on a read or quoting error. */
int rs_csv_next(rs_csv_reader *r, rs_error *err);
static inline const char *rs_csv_field(const rs_csv_reader *r, int i) { return r->text + r->offsets[i]; }
void rs_csv_close(rs_csv_reader *r);

/* The header: column names copied out of the first record. */
typedef struct rs_csv_header {
    char **names;
    int count;
} rs_csv_header;

int rs_csv_read_header(rs_csv_reader *r, rs_csv_header *h, rs_error *err);
int rs_csv_column(const rs_csv_header *h, const char *name); /* index or -1 */
void rs_csv_header_free(rs_csv_header *h);

/* A cell as a quality: empty (or NA / NaN / None) = not evaluated (NaN),
 * true / false = 1 / 0, else a finite number. Returns -1 for anything else. */
int rs_csv_parse_quality(const char *cell, float *out);
/* A cell as a finite number; empty returns 1 with *is_empty set. -1 when bad. */
int rs_csv_parse_number(const char *cell, double *out, int *is_empty);

/* Per-query outcomes gathered in memory, then written as a trace whose
 * every query is its own sequence (file order kept; the query's domain is
 * its sequence's label). */
typedef struct rs_query_table {
    int E;
    char **model_names;    /* [E] */
    int64_t T, cap;
    float *quality;        /* [T, E] */
    float *cost;           /* [T, E] when cost_per_query */
    int cost_per_query;
    float *model_cost;     /* [E] per call, or NULL */
    int32_t *domain;       /* [T] labels, or NULL */
    char **domain_names;
    int num_domains, domains_cap;
    const char *import_notes; /* what the importer assumed, one note per line (not owned), or NULL */
} rs_query_table;

int rs_query_table_init(rs_query_table *q, int E, int cost_per_query, int with_domains, rs_error *err);
/* Room for one more query; returns its index (quality row set to NaN, cost 0), -1 when out of memory. */
int64_t rs_query_table_add(rs_query_table *q, rs_error *err);
/* The label of a domain name, adding it in order of first appearance. */
int rs_query_table_domain(rs_query_table *q, const char *name, int32_t *label, rs_error *err);
void rs_query_table_free(rs_query_table *q);
/* Queries whose quality is NaN for every model. */
int64_t rs_query_table_unscored(const rs_query_table *q);

/* What an import found, for its report. */
typedef struct rs_import_query_report {
    int64_t rows, dropped, queries, unscored;
    int num_models, num_domains;
    double quality[64]; /* mean quality of the first 64 models over the queries they were evaluated on */
    char model_names[64][96]; /* their names (cut to 95 bytes), printed next to the qualities */
    double oracle;      /* mean per-query best quality, 0 when no model scores > 0 (RouterBench's oracle) */
} rs_import_query_report;

void rs_import_query_summarise(const rs_query_table *q, rs_import_query_report *r);
/* The report as one line on stderr; format names the importer. */
void rs_import_query_print(const char *format, const char *input, const char *output, const rs_import_query_report *r);

/* Writes the table as a unit = query trace at path (atomically), after
 * checking its size against limit (NULL = the default) and the free space. */
int rs_query_table_write(const rs_query_table *q, const char *path, const char *source, int gzip_level,
                         const rs_output_limit *limit, rs_error *err);

/* Quality scores are checked against [0, max_quality] (max_quality 0 = 1:
 * 0/1 correctness or a score scaled to [0, 1]); NaN = not evaluated passes. */
#define RS_IMPORT_DEFAULT_MAX_QUALITY 1.0
int rs_import_quality_in_range(float quality, double max_quality);

#endif
