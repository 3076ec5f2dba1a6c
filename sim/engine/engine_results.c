#include "sim/engine/engine_results.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int params_equal_on(const rs_params *a, const rs_params *b, unsigned long long mask)
{
    for (int i = 0; i < a->n; i++) {
        if (!(mask & (1ULL << i)))
            continue;
        char x[512], y[512];
        rs_param_value_text(a, i, x, sizeof x);
        rs_param_value_text(b, i, y, sizeof y);
        if (strcmp(x, y) != 0)
            return 0;
    }
    return 1;
}

unsigned long long rs_metric_outputs_to_keep(const rs_metric_spec *metrics, int index)
{
    const rs_metric_spec *m = &metrics[index];
    const unsigned long long wanted = rs_metric_spec_outputs(m);
    unsigned long long keep = 0;
    for (int o = 0; o < m->type->num_outputs; o++) {
        int seen = !(wanted & (1ULL << o));
        for (int j = 0; j < index && !seen; j++)
            seen = metrics[j].type == m->type && (rs_metric_spec_outputs(&metrics[j]) & (1ULL << o)) &&
                   params_equal_on(&metrics[j].params, &m->params, m->type->outputs[o].uses_params);
        if (!seen)
            keep |= 1ULL << o;
    }
    return keep;
}

/* Aggregate over the per-layer values of one (output, extra key) group,
 * rows[0..n) in emission order; NaN layers (nothing to measure) are left out. */
static double aggregate(const rs_metric_sink *sink, const size_t *rows, size_t n, rs_layer_aggregate how)
{
    double sum = 0, max = -INFINITY, self = NAN;
    int counted = 0;
    for (size_t i = 0; i < n; i++) {
        const rs_emitted *y = &sink->rows[rows[i]];
        if (y->layer < 0) {
            self = y->value;
        } else if (!isnan(y->value)) {
            sum += y->value;
            max = y->value > max ? y->value : max;
            counted++;
        }
    }
    switch (how) {
    case RS_AGG_MEAN: return counted ? sum / counted : NAN;
    case RS_AGG_SUM: return counted ? sum : NAN;
    case RS_AGG_MAX: return counted ? max : NAN;
    case RS_AGG_SELF: return self;
    }
    return NAN;
}

/* An emitted row's place in the sort into (output, extra key) groups,
 * emission order kept within a group. */
typedef struct row_ref {
    int output;
    const char *extra;
    size_t index;
} row_ref;

static int by_group_then_order(const void *a, const void *b)
{
    const row_ref *x = a, *y = b;
    if (x->output != y->output)
        return x->output < y->output ? -1 : 1;
    int c = strcmp(x->extra, y->extra);
    if (c != 0)
        return c;
    return x->index < y->index ? -1 : (x->index > y->index);
}

typedef struct row_group {
    size_t start, count; /* in the sorted order */
    size_t first;        /* emission index of its first row */
    int output;
} row_group;

static int by_output_then_first(const void *a, const void *b)
{
    const row_group *x = a, *y = b;
    if (x->output != y->output)
        return x->output < y->output ? -1 : 1;
    return x->first < y->first ? -1 : (x->first > y->first);
}

int rs_file_metric_rows(const rs_metric_spec *spec, unsigned long long keep, const rs_metric_sink *sink,
                        const char *by_key, int run, rs_results *results, rs_error *err)
{
    const rs_metric_type *type = spec->type;
    size_t n = sink->n;
    row_ref *refs = malloc((n + 1) * sizeof *refs);
    size_t *order = malloc((n + 1) * sizeof *order);
    row_group *groups = malloc((n + 1) * sizeof *groups);
    if (!refs || !order || !groups) {
        free(refs);
        free(order);
        free(groups);
        return rs_fail(err, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        refs[i] = (row_ref){sink->rows[i].output, sink->rows[i].extra, i};
    qsort(refs, n, sizeof *refs, by_group_then_order);
    size_t num_groups = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && refs[j].output == refs[i].output && strcmp(refs[j].extra, refs[i].extra) == 0)
            j++;
        groups[num_groups++] = (row_group){i, j - i, refs[i].index, refs[i].output};
        i = j;
    }
    for (size_t i = 0; i < n; i++)
        order[i] = refs[i].index;
    free(refs);
    /* outputs in order, each output's keys in order of first emission */
    qsort(groups, num_groups, sizeof *groups, by_output_then_first);
    int rc = 0;
    char base[1024] = "";
    int base_output = -1;
    for (size_t g = 0; g < num_groups && rc == 0; g++) {
        const row_group *gr = &groups[g];
        const int o = gr->output;
        if (o < 0 || o >= type->num_outputs || !(keep & (1ULL << o)))
            continue;
        const rs_metric_output *out = &type->outputs[o];
        if (o != base_output) {
            rs_params_format(&spec->params, out->uses_params, 0, ";", base, sizeof base);
            base_output = o;
        }
        char metric[256], key[1400];
        const char *extra = sink->rows[gr->first].extra, *by = by_key ? by_key : "";
        snprintf(metric, sizeof metric, "%s.%s", type->name, out->name);
        snprintf(key, sizeof key, "%s%s%s%s%s", base, base[0] && extra[0] ? ";" : "", extra,
                 (base[0] || extra[0]) && by[0] ? ";" : "", by);
        const size_t *rows = order + gr->start;
        double all = aggregate(sink, rows, gr->count, out->aggregate);
        if (rs_results_add_row(results, run, metric, key, -1, all) != 0) {
            rc = rs_fail(err, "out of memory");
            break;
        }
        for (size_t i = 0; i < gr->count && rc == 0; i++) {
            const rs_emitted *y = &sink->rows[rows[i]];
            if (y->layer >= 0 && rs_results_add_row(results, run, metric, key, y->layer, y->value) != 0)
                rc = rs_fail(err, "out of memory");
        }
    }
    free(order);
    free(groups);
    return rc;
}
