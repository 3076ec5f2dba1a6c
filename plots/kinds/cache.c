/* cache: a cache.* metric (hit rate, hit-rate curve, bytes, stall) against
 * the cache size, from the slots= part of the key; one line per policy
 * (and per whatever else the rest of the key varies: scope, prefetcher). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "plots/plot_internal.h"

/* Slot counts with a finite layer=all value for one run, counted distinct (up to 2 is enough). */
static int run_slot_values(const rs_plot_table *t, int m, int run)
{
    const rs_plot_metric *pm = &t->results.metrics[m];
    double first = NAN;
    for (size_t i = pm->first; i < pm->first + pm->count; i++) {
        const rs_plot_value *v = &t->results.values[i];
        char text[32];
        double slots;
        if (v->run != run || v->layer != -1 || !v->has_value || !isfinite(v->value) ||
            !rs_plot_key_part(t->results.keys[v->key], "slots", text, sizeof text) || !rs_results_parse_number(text, &slots))
            continue;
        if (isnan(first))
            first = slots;
        else if (slots != first)
            return 2;
    }
    return isnan(first) ? 0 : 1;
}

static int cache_plan(const rs_plot_table *t, const char *metric, rs_plot_figures *out, rs_error *err)
{
    for (int m = 0; m < t->results.num_metrics; m++) {
        const char *name = t->results.metrics[m].name;
        if (strncmp(name, "cache.", 6) != 0 || !rs_plot_metric_matches(name, metric))
            continue;
        int runs = 0;
        for (int r = 0; r < t->num_runs; r++)
            runs += run_slot_values(t, m, r) >= 2;
        for (int r = 0; r < t->num_runs; r++) {
            if (run_slot_values(t, m, r) < 2)
                continue; /* a curve needs two cache sizes */
            char suffix[128] = "", stem[192];
            if (runs > 1)
                rs_plot_run_suffix(t, r, suffix, sizeof suffix);
            rs_plot_stem(stem, sizeof stem, "cache", name + 6, NULL, suffix); /* cache-hit_rate, not cache-cache-... */
            rs_plot_figure *fig = rs_plot_figures_add(out, RS_PLOT_KIND_cache, stem, err);
            RS_CHECK(fig, err, "out of memory");
            fig->metric = m;
            fig->run = r;
        }
    }
    return 0;
}

static int cache_write(const rs_plot_table *t, const rs_plot_figure *fig, const rs_plot_target *tg, rs_error *err)
{
    const rs_plot_metric *pm = &t->results.metrics[fig->metric];
    /* distinct rests (the key without slots=) of this run, in key order */
    int max = t->results.num_keys ? t->results.num_keys : 1;
    char(*rests)[512] = malloc((size_t)max * sizeof *rests);
    RS_CHECK(rests, err, "out of memory");
    int n = 0;
    for (size_t i = pm->first; i < pm->first + pm->count; i++) {
        const rs_plot_value *v = &t->results.values[i];
        char slots[32], rest[512];
        if (v->run != fig->run || v->layer != -1 || !rs_plot_key_part(t->results.keys[v->key], "slots", slots, sizeof slots))
            continue;
        rs_plot_key_without(t->results.keys[v->key], "slots", rest, sizeof rest);
        int seen = 0;
        for (int j = 0; j < n && !seen; j++)
            seen = strcmp(rests[j], rest) == 0;
        if (!seen && n < max)
            memcpy(rests[n++], rest, sizeof rest);
    }
    rs_plot_chart chart = {.single_height = 2.6, .double_height = 2.9};
    snprintf(chart.xlabel, sizeof chart.xlabel, "cache slots per layer");
    rs_plot_metric_axis(pm->name, &chart.y);
    chart.tics_at_x = 1;
    int rc = 0;
    double lo = INFINITY, hi = -INFINITY;
    for (int s = 0; rc == 0 && s < n; s++) {
        char label[256];
        const char *keys[64];
        int nk = n < 64 ? n : 64;
        for (int i = 0; i < nk; i++)
            keys[i] = rests[i];
        rs_plot_key_varying(keys, nk, rests[s], label, sizeof label);
        rs_plot_series *series = rs_plot_chart_series(&chart, label, RS_PLOT_LINE, err);
        rc = series ? 0 : -1;
        for (size_t i = pm->first; rc == 0 && i < pm->first + pm->count; i++) {
            const rs_plot_value *v = &t->results.values[i];
            char text[32], rest[512];
            double slots;
            if (v->run != fig->run || v->layer != -1 ||
                !rs_plot_key_part(t->results.keys[v->key], "slots", text, sizeof text) ||
                !rs_results_parse_number(text, &slots))
                continue;
            rs_plot_key_without(t->results.keys[v->key], "slots", rest, sizeof rest);
            if (strcmp(rest, rests[s]) != 0)
                continue;
            lo = slots < lo ? slots : lo;
            hi = slots > hi ? slots : hi;
            rc = rs_plot_series_add(series, slots, v->value, v->has_ci ? v->ci_low : NAN, v->has_ci ? v->ci_high : NAN,
                                    err);
        }
        if (rc == 0)
            rs_plot_series_sort(series);
    }
    chart.logx = lo > 0 && hi / lo >= 16 ? 2 : 0; /* slot counts spread over powers of two */
    const char *label = t->runs[fig->run].name;
    char what[512];
    snprintf(what, sizeof what, "%s against cache slots for run %s, one line per policy", pm->name, label);
    if (rc == 0)
        rc = rs_plot_chart_write(&chart, fig, tg, what, err);
    if (rc == 0) {
        char caption[2048], common[512];
        const char *keys[64];
        const int nk = n < 64 ? n : 64;
        for (int i = 0; i < nk; i++)
            keys[i] = rests[i];
        rs_plot_key_shared(keys, nk, common, sizeof common);
        const char *def = rs_plot_metric_definition(pm->name);
        snprintf(caption, sizeof caption,
                 "%s (%s, layer = all) against the cache size in slots per layer for run %s, one line per %s%s%s.%s%s",
                 pm->name, chart.y.label, label, n > 1 ? "policy" : "configuration", common[0] ? "; all lines: " : "",
                 common, def[0] ? " Definition: " : "", def);
        rc = rs_plot_write_caption(tg, fig, caption, err);
    }
    rs_plot_chart_free(&chart);
    free(rests);
    return rc;
}

static const rs_plot_kind cache_kind = {
    .name = "cache",
    .needs = "cache.* rows (layer=all) whose key has slots=C, at two or more sizes",
    .plan = cache_plan,
    .write = cache_write,
};

const rs_plot_kind *const rs_plot_kind_cache = &cache_kind;
