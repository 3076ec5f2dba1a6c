/* The parts of the terminal table (table.c): column headers, and the lines
 * it prints (histograms summarised). */
#ifndef ROUTESIM_TABLE_INTERNAL_H
#define ROUTESIM_TABLE_INTERNAL_H

#include <stddef.h>

#include "core/text_buffer.h"
#include "sim/results/results.h"

/* Widest column header; longer run labels are abbreviated. */
enum { RS_TABLE_HEADER_MAX = 28 };

/* Distinct column headers of at most RS_TABLE_HEADER_MAX characters for the
 * runs labelled labels[0..n-1] (distinct): the labels themselves when they
 * fit or when there is one; else the labels less the parameters every run
 * shares and those every run of their router shares, a header still too
 * wide with its parameter names cut ("capacity_factor=1.25" ->
 * "capacit.=1.25"), then its router name; else numbers "#1", "#2"... Lines
 * saying what was left out, or which label a number stands for, are added
 * to notes. headers[i] is allocated (free each);
 * returns -1 when out of memory. */
int rs_table_headers(const char *const *labels, int n, char **headers, rs_text *notes);

/* A metric whose layer=all rows differ in an item of their key taking more
 * than this many values (expert=0..63) is a histogram: the table prints its
 * largest bin and where it is, results.csv every bin. */
enum { RS_TABLE_BINS_SHOWN = 16 };

/* One line of a trace's table. */
typedef struct rs_table_line {
    char *name;           /* the metric column: "load.cv", "srp.srp[m=16]", "load.expert_share[expert=*] max of 64" */
    int kind;             /* RS_TABLE_VALUE, RS_TABLE_MAX, RS_TABLE_AT */
    const size_t *rows;   /* indices into results rows: the line's rows (one per run and bin, any order) */
    size_t num_rows;
    char *bin_items;      /* RS_TABLE_AT: the names of the items its bins differ in ("expert", "i;j") */
} rs_table_line;

enum { RS_TABLE_VALUE, RS_TABLE_MAX, RS_TABLE_AT };

typedef struct rs_table_lines {
    rs_table_line *lines;
    int num_lines;
    size_t *row_index; /* storage the lines' rows point into */
    int histograms;    /* histograms summarised */
} rs_table_lines;

/* The lines of the table of the rows rows[0..n-1] (layer=all rows of one
 * trace), in order of first appearance; -1 when out of memory. */
int rs_table_lines_build(const rs_results *r, const size_t *rows, size_t n, rs_table_lines *out);
void rs_table_lines_free(rs_table_lines *t);

#endif
