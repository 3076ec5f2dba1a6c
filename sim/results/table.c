/* The terminal table: for each trace, metrics (layer = all) down, runs across. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sim/results/results.h"

static void print_value(FILE *out, double v, int width)
{
    char buf[64];
    if (isnan(v))
        snprintf(buf, sizeof buf, "-");
    else if (v != 0 && (fabs(v) >= 1e6 || fabs(v) < 1e-3))
        snprintf(buf, sizeof buf, "%.3e", v);
    else if (v == floor(v) && fabs(v) < 1e6)
        snprintf(buf, sizeof buf, "%.0f", v);
    else
        snprintf(buf, sizeof buf, "%.4f", v);
    fprintf(out, " %*s", width, buf);
}

static int same_trace(const rs_results *r, int run_a, int run_b)
{
    return strcmp(r->runs[run_a].trace, r->runs[run_b].trace) == 0;
}

void rs_results_print_table(const rs_results *r, FILE *out)
{
    size_t *all = malloc((r->num_rows + 1) * sizeof *all);
    if (!all)
        return;
    /* One table per trace, in the order traces first appear. */
    for (int first = 0; first < r->num_runs; first++) {
        int seen = 0;
        for (int j = 0; j < first; j++)
            seen |= same_trace(r, j, first);
        if (seen)
            continue;
        int cols[256], ncols = 0;
        for (int j = first; j < r->num_runs && ncols < 256; j++)
            if (same_trace(r, j, first))
                cols[ncols++] = j;
        size_t nall = 0; /* the layer=all rows of this trace */
        for (size_t i = 0; i < r->num_rows; i++)
            if (r->rows[i].layer < 0 && same_trace(r, r->rows[i].run, first))
                all[nall++] = i;
        int width = 10;
        for (int c = 0; c < ncols; c++) {
            int w = (int)strlen(r->runs[cols[c]].label);
            if (w > width)
                width = w;
        }
        if (width > 28)
            width = 28;
        int name_width = 19;
        for (size_t i = 0; i < nall; i++) {
            const rs_result_row *row = &r->rows[all[i]];
            int w = (int)strlen(row->metric) + (row->key[0] ? (int)strlen(row->key) + 2 : 0);
            if (w > name_width)
                name_width = w;
        }
        fprintf(out, "\ntrace: %s\n", r->runs[first].trace);
        fprintf(out, "%-*s", name_width, "metric (all layers)");
        for (int c = 0; c < ncols; c++)
            fprintf(out, " %*.*s", width, width, r->runs[cols[c]].label);
        fputc('\n', out);
        for (int i = 0; i < name_width + ncols * (width + 1); i++)
            fputc('-', out);
        fputc('\n', out);
        for (size_t i = 0; i < nall; i++) {
            const rs_result_row *row = &r->rows[all[i]];
            int dup = 0;
            for (size_t j = 0; j < i && !dup; j++) {
                const rs_result_row *o = &r->rows[all[j]];
                dup = strcmp(o->metric, row->metric) == 0 && strcmp(o->key, row->key) == 0;
            }
            if (dup)
                continue;
            char name[512];
            if (row->key[0])
                snprintf(name, sizeof name, "%s[%s]", row->metric, row->key);
            else
                snprintf(name, sizeof name, "%s", row->metric);
            fprintf(out, "%-*s", name_width, name);
            for (int c = 0; c < ncols; c++) {
                double v = NAN;
                for (size_t j = 0; j < nall; j++) {
                    const rs_result_row *o = &r->rows[all[j]];
                    if (o->run == cols[c] && strcmp(o->metric, row->metric) == 0 && strcmp(o->key, row->key) == 0) {
                        v = o->value;
                        break;
                    }
                }
                print_value(out, v, width);
            }
            fputc('\n', out);
        }
    }
    free(all);
}
