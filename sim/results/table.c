/* The terminal table: for each trace, metrics (layer = all) down, runs
 * across. Headers are distinct (table_headers.c), histograms take two lines
 * (table_lines.c), a value not reported prints as "-" and an undefined one
 * as "nan"; a legend under the table says so. On a terminal narrower than
 * the table, the runs are printed in blocks of columns that fit. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "sim/results/results.h"
#include "sim/results/table_internal.h"

enum { MIN_COLUMN_WIDTH = 10, MIN_NAME_WIDTH = 19, CELL_MAX = 64 };

typedef struct table {
    const rs_results *r;
    const int *run_column; /* results run -> column, -1 for another trace's */
    int missing, undefined; /* cells printed "-" and "nan" */
} table;

static void value_text(double v, char *buf, size_t size)
{
    if (isnan(v))
        snprintf(buf, size, "nan");
    else if (v != 0 && (fabs(v) >= 1e6 || fabs(v) < 1e-3))
        snprintf(buf, size, "%.3e", v);
    else if (v == floor(v) && fabs(v) < 1e6)
        snprintf(buf, size, "%.0f", v);
    else
        snprintf(buf, size, "%.4f", v);
}

/* The bin of a histogram row: its key's items named in bin_items, the value
 * alone when there is one ("17"), else the items ("i=3;j=17"). */
static void bin_text(const char *key, const char *bin_items, char *buf, size_t size)
{
    size_t used = 0;
    int count = 0, single = !strchr(bin_items, ';');
    buf[0] = '\0';
    for (const char *s = key; *s && used < size;) {
        size_t len = strcspn(s, ";"), name_len = strcspn(s, "=;");
        int wanted = 0;
        for (const char *b = bin_items; *b && !wanted;) {
            size_t blen = strcspn(b, ";");
            wanted = blen == name_len && strncmp(b, s, blen) == 0;
            b += blen + (b[blen] != '\0');
        }
        if (wanted) {
            const char *shown = single && s[name_len] == '=' ? s + name_len + 1 : s;
            used += (size_t)snprintf(buf + used, size - used, "%s%.*s", count++ ? ";" : "", (int)(s + len - shown),
                                     shown);
        }
        s += len + (s[len] != '\0');
    }
}

/* The text of one cell; counts "-" and "nan" cells when count is set. */
static void cell_text(table *t, const rs_table_line *line, int column, char *buf, size_t size, int count)
{
    const rs_result_row *found = NULL;
    int any = 0;
    for (size_t i = 0; i < line->num_rows; i++) {
        const rs_result_row *row = &t->r->rows[line->rows[i]];
        if (t->run_column[row->run] != column)
            continue;
        if (line->kind == RS_TABLE_VALUE) {
            /* the first row of the run (rows are in results order) */
            if (!found)
                found = row;
            continue;
        }
        any = 1;
        if (!isnan(row->value) && (!found || row->value > found->value))
            found = row;
    }
    if (!found && !any) {
        snprintf(buf, size, "-");
        t->missing += count;
    } else if (!found || isnan(found->value)) {
        snprintf(buf, size, "nan");
        t->undefined += count;
    } else if (line->kind == RS_TABLE_AT)
        bin_text(found->key, line->bin_items, buf, size);
    else
        value_text(found->value, buf, size);
}

static int terminal_width(FILE *out)
{
    struct winsize size;
    int fd = fileno(out);
    if (fd >= 0 && isatty(fd) && ioctl(fd, TIOCGWINSZ, &size) == 0 && size.ws_col > 0)
        return size.ws_col;
    return 0;
}

static void print_rule(FILE *out, int width)
{
    for (int i = 0; i < width; i++)
        fputc('-', out);
    fputc('\n', out);
}

static void print_legend(FILE *out, const table *t, const rs_table_lines *lines)
{
    if (t->missing && t->undefined)
        fputs("-: not reported for this run; nan: reported, undefined (nothing to measure it on)\n", out);
    else if (t->missing)
        fputs("-: not reported for this run\n", out);
    else if (t->undefined)
        fputs("nan: reported, undefined (nothing to measure it on)\n", out);
    if (lines->histograms)
        fputs("NAME[ITEM=*] max of N, at: the largest of a histogram's N bins and the bin it is in "
              "(every bin is in the results files)\n",
              out);
}

/* One trace's table over the runs cols[0..ncols); -1 out of memory. */
static int print_trace(const rs_results *r, const int *cols, int ncols, int *run_column, FILE *out, int max_width)
{
    const char *trace = r->runs[cols[0]].trace;
    size_t *rows = malloc((r->num_rows + 1) * sizeof *rows), nrows = 0;
    char **headers = calloc((size_t)ncols, sizeof *headers);
    const char **labels = calloc((size_t)ncols, sizeof *labels);
    int *widths = calloc((size_t)ncols, sizeof *widths);
    rs_table_lines lines = {0};
    rs_text notes = {0};
    int rc = -1;
    if (!rows || !headers || !labels || !widths)
        goto done;
    for (int c = 0; c < ncols; c++) {
        run_column[cols[c]] = c;
        labels[c] = r->runs[cols[c]].label;
    }
    for (size_t i = 0; i < r->num_rows; i++)
        if (r->rows[i].layer < 0 && run_column[r->rows[i].run] >= 0)
            rows[nrows++] = i;
    if (rs_table_lines_build(r, rows, nrows, &lines) != 0 || rs_table_headers(labels, ncols, headers, &notes) != 0 ||
        notes.failed)
        goto done;
    table t = {r, run_column, 0, 0};
    char cell[CELL_MAX];
    int name_width = MIN_NAME_WIDTH;
    for (int i = 0; i < lines.num_lines; i++)
        if ((int)strlen(lines.lines[i].name) > name_width)
            name_width = (int)strlen(lines.lines[i].name);
    /* one width for every column: the widest header or cell */
    int column_width = MIN_COLUMN_WIDTH;
    for (int c = 0; c < ncols; c++) {
        if ((int)strlen(headers[c]) > column_width)
            column_width = (int)strlen(headers[c]);
        for (int i = 0; i < lines.num_lines; i++) {
            cell_text(&t, &lines.lines[i], c, cell, sizeof cell, 1);
            if ((int)strlen(cell) > column_width)
                column_width = (int)strlen(cell);
        }
    }
    for (int c = 0; c < ncols; c++)
        widths[c] = column_width;
    fprintf(out, "\ntrace: %s\n", trace);
    if (notes.buf)
        fputs(notes.buf, out);
    for (int from = 0; from < ncols;) {
        /* the columns that fit next to the metric names (at least one) */
        int to = from + 1, width = name_width + widths[from] + 1;
        while (to < ncols && (max_width <= 0 || width + widths[to] + 1 <= max_width))
            width += widths[to++] + 1;
        if (from > 0)
            fputc('\n', out);
        fprintf(out, "%-*s", name_width, "metric (all layers)");
        for (int c = from; c < to; c++)
            fprintf(out, " %*s", widths[c], headers[c]);
        fputc('\n', out);
        print_rule(out, width);
        for (int i = 0; i < lines.num_lines; i++) {
            fprintf(out, "%-*s", name_width, lines.lines[i].name);
            for (int c = from; c < to; c++) {
                cell_text(&t, &lines.lines[i], c, cell, sizeof cell, 0);
                fprintf(out, " %*s", widths[c], cell);
            }
            fputc('\n', out);
        }
        from = to;
    }
    print_legend(out, &t, &lines);
    rc = 0;
done:
    for (int c = 0; c < ncols; c++)
        run_column[cols[c]] = -1;
    for (int c = 0; headers && c < ncols; c++)
        free(headers[c]);
    free(headers);
    free(labels);
    free(widths);
    free(rows);
    rs_table_lines_free(&lines);
    rs_text_free(&notes);
    return rc;
}

void rs_results_print_table_width(const rs_results *r, FILE *out, int max_width)
{
    int *cols = malloc(((size_t)r->num_runs + 1) * sizeof *cols);
    int *run_column = malloc(((size_t)r->num_runs + 1) * sizeof *run_column);
    char *printed = calloc((size_t)r->num_runs + 1, 1);
    if (!cols || !run_column || !printed) {
        fputs("routesim: out of memory printing the results table\n", stderr);
        goto done;
    }
    for (int j = 0; j < r->num_runs; j++)
        run_column[j] = -1;
    /* one table per trace, in the order traces first appear */
    for (int first = 0; first < r->num_runs; first++) {
        if (printed[first])
            continue;
        int ncols = 0;
        for (int j = first; j < r->num_runs; j++)
            if (!printed[j] && strcmp(r->runs[j].trace, r->runs[first].trace) == 0) {
                printed[j] = 1;
                cols[ncols++] = j;
            }
        if (print_trace(r, cols, ncols, run_column, out, max_width) != 0) {
            fputs("routesim: out of memory printing the results table\n", stderr);
            break;
        }
    }
done:
    free(cols);
    free(run_column);
    free(printed);
}

void rs_results_print_table(const rs_results *r, FILE *out)
{
    rs_results_print_table_width(r, out, terminal_width(out));
}
