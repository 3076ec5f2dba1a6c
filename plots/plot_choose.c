/* Which figures to make: every kind asked for (or all) plans its figures
 * for the metrics asked for (or every metric that suits it); figures that
 * several requests ask for are made once, in every format asked. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "plots/plot_internal.h"

static const struct {
    unsigned bit;
    const char *name;
} formats[] = {{RS_PLOT_PNG, "png"}, {RS_PLOT_SVG, "svg"}, {RS_PLOT_PDF, "pdf"}};

const char *rs_plot_format_name(unsigned bit)
{
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
        if (formats[i].bit == bit)
            return formats[i].name;
    return "png";
}

unsigned rs_plot_parse_formats(const char *text)
{
    unsigned bits = 0;
    for (const char *p = text; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        unsigned bit = 0;
        for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
            if (strlen(formats[i].name) == len && strncmp(formats[i].name, p, len) == 0)
                bit = formats[i].bit;
        if (!bit)
            return 0;
        bits |= bit;
        p = end ? end + 1 : p + len;
    }
    return bits;
}

rs_plot_figure *rs_plot_figures_add(rs_plot_figures *list, int kind, const char *stem, rs_error *err)
{
    for (int i = 0; i < list->n; i++)
        if (strcmp(list->items[i].stem, stem) == 0)
            return &list->items[i];
    if (list->n == list->cap) {
        int cap = list->cap ? 2 * list->cap : 16;
        rs_plot_figure *grown = realloc(list->items, (size_t)cap * sizeof *grown);
        if (!grown) {
            rs_fail(err, "out of memory");
            return NULL;
        }
        list->items = grown;
        list->cap = cap;
    }
    rs_plot_figure *fig = &list->items[list->n++];
    memset(fig, 0, sizeof *fig);
    fig->kind = kind;
    fig->metric = fig->key = fig->run = -1;
    snprintf(fig->stem, sizeof fig->stem, "%s", stem);
    return fig;
}

rs_plot_figure *rs_plot_figures_add_new(rs_plot_figures *list, int kind, const char *stem, rs_error *err)
{
    char unique[sizeof list->items[0].stem];
    snprintf(unique, sizeof unique, "%s", stem);
    for (int n = 2, taken = 1; taken; n++) {
        taken = 0;
        for (int i = 0; i < list->n && !taken; i++)
            taken = strcmp(list->items[i].stem, unique) == 0;
        if (taken) {
            char tail[16];
            int len = snprintf(tail, sizeof tail, "-%d", n);
            snprintf(unique, sizeof unique, "%.*s%s", (int)(sizeof unique - 1 - (size_t)len), stem, tail);
        }
    }
    return rs_plot_figures_add(list, kind, unique, err);
}

void rs_plot_figures_free(rs_plot_figures *list)
{
    free(list->items);
    memset(list, 0, sizeof *list);
}

int rs_plot_single_key(const rs_plot_table *t, int metric)
{
    int keys[2];
    return rs_results_metric_keys(&t->results, metric, keys, 2) == 1 ? keys[0] : -1;
}

void rs_plot_stem(char *buf, size_t size, const char *kind, const char *metric, const char *key, const char *suffix)
{
    const char *parts[4] = {kind, metric, key, suffix};
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < 4; i++) {
        if (!parts[i] || !parts[i][0])
            continue;
        char slug[128];
        rs_plot_slug(parts[i], slug, sizeof slug);
        if (slug[0])
            used += (size_t)snprintf(buf + used, used < size ? size - used : 0, "%s%s", used ? "-" : "", slug);
    }
}

int rs_plot_add_per_key(const rs_plot_table *t, int kind, int metric, const char *filter, const char *suffix,
                        const char *param, rs_plot_key_usable usable, rs_plot_figures *out, rs_error *err)
{
    int *keys = malloc((size_t)(t->results.num_keys ? t->results.num_keys : 1) * sizeof *keys);
    RS_CHECK(keys, err, "out of memory");
    int n = rs_results_metric_keys(&t->results, metric, keys, t->results.num_keys);
    /* several keys (a metric parameter swept, a histogram): one figure each, when asked for by name */
    int added = 0;
    for (int i = 0; i < n && (n == 1 || filter); i++) {
        if (usable && !usable(t, metric, keys[i], param, filter == NULL))
            continue;
        char stem[192];
        rs_plot_stem(stem, sizeof stem, rs_plot_kind_name(kind), t->results.metrics[metric].name,
                     n > 1 ? t->results.keys[keys[i]] : NULL, suffix);
        rs_plot_figure *fig = rs_plot_figures_add(out, kind, stem, err);
        if (!fig) {
            free(keys);
            return -1;
        }
        fig->metric = metric;
        fig->key = keys[i];
        if (param)
            snprintf(fig->param, sizeof fig->param, "%s", param);
        added++;
    }
    free(keys);
    return added;
}

void rs_plot_run_suffix(const rs_plot_table *t, int run, char *buf, size_t size)
{
    char mine[96], other[96];
    rs_plot_slug(t->runs[run].name, mine, sizeof mine);
    int clash = !mine[0];
    for (int i = 0; i < t->num_runs && !clash; i++) {
        if (i == run)
            continue;
        rs_plot_slug(t->runs[i].name, other, sizeof other);
        clash = strcmp(mine, other) == 0;
    }
    if (clash)
        snprintf(buf, size, "%s%srun%d", mine, mine[0] ? "-" : "", run + 1);
    else
        snprintf(buf, size, "%s", mine);
}

int rs_plot_has_finite(const rs_plot_table *t, int metric, int key, int layer)
{
    const rs_plot_metric *m = &t->results.metrics[metric];
    for (size_t i = m->first; i < m->first + m->count; i++) {
        const rs_plot_value *v = &t->results.values[i];
        if (v->key == key && (layer == -2 ? v->layer >= 0 : v->layer == layer) && v->has_value && isfinite(v->value))
            return 1;
    }
    return 0;
}

int rs_plot_is_constant(const rs_plot_table *t, int metric, int key, int layer)
{
    const rs_plot_metric *m = &t->results.metrics[metric];
    double first = NAN;
    for (size_t i = m->first; i < m->first + m->count; i++) {
        const rs_plot_value *v = &t->results.values[i];
        if (v->key != key || !(layer == -2 ? v->layer >= 0 : v->layer == layer) || !v->has_value ||
            !isfinite(v->value))
            continue;
        if (isnan(first))
            first = v->value;
        else if (v->value != first)
            return 0;
    }
    return 1;
}

int rs_plot_choose(const rs_plot_table *t, const rs_plot_request *req, rs_plot_figures *out, int *made_by_kind,
                   rs_error *err)
{
    for (int k = 0; k < RS_PLOT_NUM_KINDS; k++) {
        if (req->kinds && !(req->kinds & (1u << k)))
            continue;
        rs_plot_figures planned = {0};
        int rc = rs_plot_kind_at(k)->plan(t, req->metric, &planned, err);
        for (int i = 0; rc == 0 && i < planned.n; i++) {
            int existed = 0;
            for (int j = 0; j < out->n && !existed; j++)
                existed = strcmp(out->items[j].stem, planned.items[i].stem) == 0;
            rs_plot_figure *fig = rs_plot_figures_add(out, k, planned.items[i].stem, err);
            if (!fig) {
                rc = -1;
                break;
            }
            if (!existed) {
                *fig = planned.items[i];
                fig->double_size = req->double_size;
                made_by_kind[k]++;
            }
            fig->formats |= req->formats;
        }
        rs_plot_figures_free(&planned);
        RS_TRY(rc);
    }
    return 0;
}
