#include "sim/experiment/curves.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "routesim/metric.h"

/* ---- numpy ---- */

enum { LIKELY_IN_CACHE_SIZE = 8 };

/* numpy/core/src/multiarray/compiled_base.c binary_search_with_guess. */
static int search_with_guess(double key, const double *arr, int len, int guess)
{
    int imin = 0, imax = len;
    if (key > arr[len - 1])
        return len;
    if (key < arr[0])
        return -1;
    if (len <= 4) { /* linear search from 1 (key >= arr[0] here) */
        int i = 1;
        while (i < len && key >= arr[i])
            i++;
        return i - 1;
    }
    if (guess > len - 3)
        guess = len - 3;
    if (guess < 1)
        guess = 1;
    if (key < arr[guess]) {
        if (key < arr[guess - 1]) {
            imax = guess - 1;
            if (guess > LIKELY_IN_CACHE_SIZE && key >= arr[guess - LIKELY_IN_CACHE_SIZE])
                imin = guess - LIKELY_IN_CACHE_SIZE;
        } else {
            return guess - 1;
        }
    } else {
        if (key < arr[guess + 1])
            return guess;
        if (key < arr[guess + 2])
            return guess + 1;
        imin = guess + 2;
        if (guess < len - LIKELY_IN_CACHE_SIZE - 1 && key < arr[guess + LIKELY_IN_CACHE_SIZE])
            imax = guess + LIKELY_IN_CACHE_SIZE;
    }
    while (imin < imax) {
        const int imid = imin + ((imax - imin) >> 1);
        if (key >= arr[imid])
            imin = imid + 1;
        else
            imax = imid;
    }
    return imin - 1;
}

double rs_numpy_interp(double x, const double *xp, const double *fp, int n)
{
    if (n < 1)
        return NAN;
    if (n == 1)
        return fp[0]; /* x < xp: left = fp[0]; x > xp: right = fp[0] */
    if (isnan(x))
        return x;
    int j = search_with_guess(x, xp, n, 0);
    if (j == -1)
        return fp[0];
    if (j == n)
        return fp[n - 1];
    if (j == n - 1 || xp[j] == x)
        return fp[j];
    const double slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j]);
    double v = slope * (x - xp[j]) + fp[j];
    if (isnan(v)) {
        v = slope * (x - xp[j + 1]) + fp[j + 1];
        if (isnan(v) && fp[j] == fp[j + 1])
            v = fp[j];
    }
    return v;
}

double rs_numpy_trapz(const double *y, const double *x, int n)
{
    double sum = 0;
    for (int i = 0; i + 1 < n; i++)
        sum += (x[i + 1] - x[i]) * (y[i + 1] + y[i]) / 2.0;
    return sum;
}

/* ---- sorting (stable, by x) ---- */

static void sort_by_x(double *x, double *y, int n)
{
    for (int i = 1; i < n; i++) { /* insertion sort: stable; curves are small */
        double xi = x[i], yi = y[i];
        int j = i;
        while (j > 0 && x[j - 1] > xi) {
            x[j] = x[j - 1];
            y[j] = y[j - 1];
            j--;
        }
        x[j] = xi;
        y[j] = yi;
    }
}

/* ---- RouterBench AIQ ---- */

/* new_convex_hull_points in insertion order: the entry at x, or -1. */
static int find_x(const double *hx, int count, double x)
{
    for (int l = 0; l < count; l++)
        if (hx[l] == x)
            return l;
    return -1;
}

/* `if x not in new: append [x, v]; else raise the entry at x to v` (the
 * reference's loops over l keep the larger value). */
static void raise_or_append(double *hx, double *hy, int *count, double x, double v)
{
    int l = find_x(hx, *count, x);
    if (l < 0) {
        hx[*count] = x;
        hy[*count] = v;
        (*count)++;
    } else if (hy[l] < v) {
        hy[l] = v;
    }
}

int rs_curve_hull(const double *x_in, const double *y_in, int n, double *hx, double *hy)
{
    if (n <= 0)
        return 0;
    double *x = malloc(2 * (size_t)n * sizeof *x);
    if (!x)
        return -1;
    double *y = x + n;
    memcpy(x, x_in, (size_t)n * sizeof *x);
    memcpy(y, y_in, (size_t)n * sizeof *y);
    sort_by_x(x, y, n);
    int count = 0;
    for (int i = 0; i < n; i++) {
        for (int j = i; j < n; j++) {
            const double x1 = x[i], y1 = y[i], x2 = x[j], y2 = y[j];
            for (int k = 0; k < n; k++) {
                if (!(x1 < x[k] && x[k] < x2))
                    continue;
                /* np.interp(x, [x1, x2], [y1, y2]) with x strictly inside */
                const double interpolated = (y2 - y1) / (x2 - x1) * (x[k] - x1) + y1;
                if (y[k] < interpolated)
                    raise_or_append(hx, hy, &count, x[k], interpolated);
                if (y[k] >= interpolated)
                    raise_or_append(hx, hy, &count, x[k], y[k]);
            }
        }
    }
    /* The last point joins when its y is at least that of the last entry
     * added (the reference raises on an empty list: here it joins). */
    if (find_x(hx, count, x[n - 1]) < 0 && (count == 0 || y[n - 1] >= hy[count - 1])) {
        hx[count] = x[n - 1];
        hy[count] = y[n - 1];
        count++;
    }
    if (find_x(hx, count, x[0]) < 0) { /* the first point goes in front */
        memmove(hx + 1, hx, (size_t)count * sizeof *hx);
        memmove(hy + 1, hy, (size_t)count * sizeof *hy);
        hx[0] = x[0];
        hy[0] = y[0];
        count++;
    }
    free(x);
    sort_by_x(hx, hy, count); /* x values are distinct now */
    /* Remove every point whose y is below its predecessor's in the sorted
     * list (compared before any removal, as the reference does). */
    int kept = 1;
    double previous = hy[0];
    for (int i = 1; i < count; i++) {
        int drop = hy[i] < previous;
        previous = hy[i];
        if (!drop) {
            hx[kept] = hx[i];
            hy[kept] = hy[i];
            kept++;
        }
    }
    return kept;
}

int rs_curve_aiq(int m, const double *const *x, const double *const *y, const int *n, double *aiq, rs_error *err)
{
    int total = 0;
    for (int c = 0; c < m; c++)
        total += n[c] > 0 ? n[c] + 1 : 0;
    double *hx = malloc(2 * (size_t)(total > 0 ? total : 1) * sizeof *hx);
    int *count = malloc((size_t)(m > 0 ? m : 1) * sizeof *count);
    if (!hx || !count) {
        free(hx);
        free(count);
        return rs_fail(err, "out of memory computing AIQ");
    }
    double *hy = hx + (total > 0 ? total : 1);
    double max_x = -INFINITY;
    int at = 0, rc = 0;
    for (int c = 0; c < m && rc == 0; c++) {
        count[c] = n[c] > 0 ? rs_curve_hull(x[c], y[c], n[c], hx + at, hy + at) : 0;
        if (count[c] < 0)
            rc = rs_fail(err, "out of memory computing AIQ");
        for (int i = 0; i < count[c]; i++)
            max_x = hx[at + i] > max_x ? hx[at + i] : max_x;
        at += n[c] > 0 ? n[c] + 1 : 0;
    }
    at = 0;
    for (int c = 0; c < m && rc == 0; c++) {
        int k = count[c];
        aiq[c] = NAN;
        if (k > 0 && max_x > 0) {
            hx[at + k] = max_x; /* extended flat to the largest cost of all curves */
            hy[at + k] = hy[at + k - 1];
            aiq[c] = rs_numpy_trapz(hy + at, hx + at, k + 1) / max_x;
        }
        at += n[c] > 0 ? n[c] + 1 : 0;
    }
    free(hx);
    free(count);
    return rc;
}

/* ---- RouteLLM APGR, CPT ---- */

/* Copies the points sorted stably by x; NULL when out of memory. */
static double *sorted_copy(const double *x, const double *y, int n)
{
    double *buf = malloc(2 * (size_t)(n > 0 ? n : 1) * sizeof *buf);
    if (!buf)
        return NULL;
    memcpy(buf, x, (size_t)n * sizeof *buf);
    memcpy(buf + n, y, (size_t)n * sizeof *buf);
    sort_by_x(buf, buf + n, n);
    return buf;
}

double rs_curve_apgr(const double *x, const double *y, int n, double q_weak, double q_strong)
{
    double *sx = sorted_copy(x, y, n);
    if (!sx || n < 1) {
        free(sx);
        return NAN;
    }
    double *sy = sx + n, *flat = malloc((size_t)n * sizeof *flat);
    if (!flat) {
        free(sx);
        return NAN;
    }
    double auc = rs_numpy_trapz(sy, sx, n);
    for (int i = 0; i < n; i++)
        flat[i] = q_weak;
    double weak_auc = rs_numpy_trapz(flat, sx, n);
    for (int i = 0; i < n; i++)
        flat[i] = q_strong;
    double strong_auc = rs_numpy_trapz(flat, sx, n);
    free(flat);
    free(sx);
    double span = strong_auc - weak_auc;
    return span != 0 ? (auc - weak_auc) / span : NAN;
}

double rs_curve_cpt(const double *x, const double *y, int n, double q_weak, double q_strong, double p)
{
    double *sx = sorted_copy(x, y, n);
    if (!sx || n < 1) {
        free(sx);
        return NAN;
    }
    double v = rs_numpy_interp(p * (q_strong - q_weak) + q_weak, sx + n, sx, n);
    free(sx);
    return v;
}

/* ---- the post-run stage ---- */

enum { POINT_QUALITY, POINT_COST, POINT_STRONG_CALLS, POINT_STRONG_QUALITY, POINT_WEAK_QUALITY, POINT_FIELDS };
static const char *const point_outputs[POINT_FIELDS] = {"quality", "cost_total", "strong_calls", "strong_quality",
                                                        "weak_quality"};

/* The key results use for output `name` of an outcome spec. */
static void output_key(const rs_metric_spec *spec, const char *name, char *key, size_t size)
{
    key[0] = '\0';
    for (int o = 0; o < spec->type->num_outputs; o++)
        if (strcmp(spec->type->outputs[o].name, name) == 0)
            rs_params_format(&spec->params, spec->type->outputs[o].uses_params, 0, ";", key, size);
}

static int find_run(const rs_results *r, const char *label, const char *trace)
{
    for (int i = 0; i < r->num_runs; i++)
        if (strcmp(r->runs[i].label, label) == 0 && strcmp(r->runs[i].trace, trace) == 0)
            return i;
    return -1;
}

/* The layer=all value of (run, metric, key), NaN when absent. */
static double find_value(const rs_results *r, int run, const char *metric, const char *key)
{
    for (size_t i = 0; i < r->num_rows; i++) {
        const rs_result_row *row = &r->rows[i];
        if (row->run == run && row->layer < 0 && strcmp(row->metric, metric) == 0 && strcmp(row->key, key) == 0)
            return row->value;
    }
    return NAN;
}

/* One swept entry on one trace. */
typedef struct sweep {
    int entry, first_spec, count;
    double *point[POINT_FIELDS]; /* [count] */
} sweep;

static void free_sweeps(sweep *s, int n)
{
    for (int i = 0; i < n; i++)
        free(s[i].point[0]);
    free(s);
}

/* "name:lambda=*" and "lambda=0,0.1,1" from the entry's specs: a parameter is swept when its value differs
 * (',' never occurs in a value: it separates parameters in a spec). */
static void describe_sweep(const rs_config *cfg, const sweep *s, char *label, size_t label_size, char *params,
                           size_t params_size)
{
    const rs_router_spec *first = &cfg->routers[s->first_spec];
    const char *name = first->preset ? first->preset->name : first->type->name;
    const cJSON *entries = cJSON_GetObjectItemCaseSensitive(cfg->json, "routers");
    const cJSON *entry = cJSON_GetArrayItem(entries, s->entry);
    const cJSON *given = cJSON_IsObject(entry) ? cJSON_GetObjectItemCaseSensitive(entry, "label") : NULL;
    if (cJSON_IsString(given))
        name = given->valuestring;
    size_t lu = (size_t)snprintf(label, label_size, "%s", name), pu = 0;
    params[0] = '\0';
    int swept = 0;
    for (int p = 0; p < first->params.n; p++) {
        char a[512], b[512];
        rs_param_value_text(&first->params, p, a, sizeof a);
        int differs = 0;
        for (int r = 1; r < s->count && !differs; r++) {
            rs_param_value_text(&cfg->routers[s->first_spec + r].params, p, b, sizeof b);
            differs = strcmp(a, b) != 0;
        }
        if (!differs)
            continue;
        const char *pname = first->params.defs[p].name;
        if (lu < label_size)
            lu += (size_t)snprintf(label + lu, label_size - lu, "%s%s=*", swept ? "," : ":", pname);
        if (pu < params_size)
            pu += (size_t)snprintf(params + pu, params_size - pu, "%s%s=", swept ? ";" : "", pname);
        for (int r = 0; r < s->count && pu < params_size; r++) {
            rs_param_value_text(&cfg->routers[s->first_spec + r].params, p, b, sizeof b);
            pu += (size_t)snprintf(params + pu, params_size - pu, "%s%s", r ? "," : "", b);
        }
        swept++;
    }
}

static int add_trace_curves(rs_results *results, const rs_config *cfg, const char *trace,
                            const rs_metric_spec *outcome, rs_error *err)
{
    sweep *sweeps = calloc((size_t)cfg->num_routers + 1, sizeof *sweeps);
    RS_CHECK(sweeps, err, "out of memory");
    int num = 0;
    for (int i = 0; i < cfg->num_routers;) { /* a config entry's specs are consecutive */
        int j = i;
        while (j < cfg->num_routers && cfg->routers[j].entry == cfg->routers[i].entry)
            j++;
        sweep *s = &sweeps[num];
        *s = (sweep){.entry = cfg->routers[i].entry, .first_spec = i, .count = j - i};
        int runs_found = s->count >= 2;
        for (int r = i; r < j && runs_found; r++)
            runs_found = find_run(results, cfg->routers[r].label, trace) >= 0;
        i = j;
        if (!runs_found)
            continue;
        double *buf = malloc((size_t)POINT_FIELDS * (size_t)s->count * sizeof *buf);
        if (!buf) {
            free_sweeps(sweeps, num);
            return rs_fail(err, "out of memory");
        }
        for (int f = 0; f < POINT_FIELDS; f++) {
            s->point[f] = buf + (size_t)f * (size_t)s->count;
            char metric[64], key[1024];
            snprintf(metric, sizeof metric, "outcome.%s", point_outputs[f]);
            output_key(outcome, point_outputs[f], key, sizeof key);
            for (int r = 0; r < s->count; r++)
                s->point[f][r] = find_value(results, find_run(results, cfg->routers[s->first_spec + r].label, trace),
                                            metric, key);
        }
        num++;
    }
    /* AIQ compares every curve with costs on this trace. */
    double *aiq = malloc((size_t)(num > 0 ? num : 1) * sizeof *aiq);
    const double **xs = malloc((size_t)(num > 0 ? num : 1) * sizeof *xs);
    const double **ys = malloc((size_t)(num > 0 ? num : 1) * sizeof *ys);
    int *ns = malloc((size_t)(num > 0 ? num : 1) * sizeof *ns);
    int rc = aiq && xs && ys && ns ? 0 : rs_fail(err, "out of memory");
    int compared = 0;
    int *which = ns ? malloc((size_t)(num > 0 ? num : 1) * sizeof *which) : NULL;
    if (rc == 0 && !which)
        rc = rs_fail(err, "out of memory");
    for (int c = 0; c < num && rc == 0; c++) {
        aiq[c] = NAN;
        int finite = 1;
        for (int r = 0; r < sweeps[c].count; r++)
            finite &= isfinite(sweeps[c].point[POINT_COST][r]) && isfinite(sweeps[c].point[POINT_QUALITY][r]);
        if (!finite)
            continue;
        xs[compared] = sweeps[c].point[POINT_COST];
        ys[compared] = sweeps[c].point[POINT_QUALITY];
        ns[compared] = sweeps[c].count;
        which[compared++] = c;
    }
    double *compared_aiq = rc == 0 ? malloc((size_t)(compared > 0 ? compared : 1) * sizeof *compared_aiq) : NULL;
    if (rc == 0 && !compared_aiq)
        rc = rs_fail(err, "out of memory");
    if (rc == 0 && compared > 0)
        rc = rs_curve_aiq(compared, xs, ys, ns, compared_aiq, err);
    for (int k = 0; k < compared && rc == 0; k++)
        aiq[which[k]] = compared_aiq[k];
    for (int c = 0; c < num && rc == 0; c++) {
        const sweep *s = &sweeps[c];
        char label[512], params[2048];
        describe_sweep(cfg, s, label, sizeof label, params, sizeof params);
        char unique[540];
        snprintf(unique, sizeof unique, "%s", label);
        for (int copy = 2; find_run(results, unique, trace) >= 0; copy++)
            snprintf(unique, sizeof unique, "%s#%d", label, copy);
        const rs_router_spec *first = &cfg->routers[s->first_spec];
        int run = rs_results_add_run(results, unique, trace, first->type->name, params, "");
        RS_CHECK(run >= 0, err, "out of memory");
        results->runs[run].entry = first->entry;
        const double q_strong = s->point[POINT_STRONG_QUALITY][0], q_weak = s->point[POINT_WEAK_QUALITY][0];
        rc = rs_results_add_row(results, run, "curve.aiq", "", -1, aiq[c]);
        if (rc == 0)
            rc = rs_results_add_row(results, run, "curve.apgr", "", -1,
                                    rs_curve_apgr(s->point[POINT_STRONG_CALLS], s->point[POINT_QUALITY], s->count,
                                                  q_weak, q_strong));
        /* CPT for every p of the outcome specs, once each */
        for (int m = 0; m < cfg->num_metrics && rc == 0; m++) {
            if (cfg->metrics[m].type != outcome->type)
                continue;
            double p = rs_param_float(&cfg->metrics[m].params, "p");
            int seen = 0;
            for (int k = 0; k < m; k++)
                seen |= cfg->metrics[k].type == outcome->type && rs_param_float(&cfg->metrics[k].params, "p") == p;
            if (seen)
                continue;
            char key[128] = "";
            for (int k = 0; k < cfg->metrics[m].params.n; k++)
                if (strcmp(cfg->metrics[m].params.defs[k].name, "p") == 0)
                    rs_params_format(&cfg->metrics[m].params, 1ull << k, 0, ";", key, sizeof key);
            rc = rs_results_add_row(results, run, "curve.cpt", key, -1,
                                    rs_curve_cpt(s->point[POINT_STRONG_CALLS], s->point[POINT_QUALITY], s->count,
                                                 q_weak, q_strong, p));
        }
        if (rc != 0)
            rc = rs_fail(err, "out of memory");
    }
    free(aiq);
    free(xs);
    free(ys);
    free(ns);
    free(which);
    free(compared_aiq);
    free_sweeps(sweeps, num);
    return rc;
}

int rs_curves_add(rs_results *results, const rs_config *cfg, rs_error *err)
{
    const rs_metric_spec *outcome = NULL;
    for (int m = 0; m < cfg->num_metrics && !outcome; m++)
        if (strcmp(cfg->metrics[m].type->name, "outcome") == 0)
            outcome = &cfg->metrics[m];
    if (!outcome)
        return 0;
    for (int t = 0; t < cfg->num_traces; t++) {
        int seen = 0;
        for (int u = 0; u < t; u++)
            seen |= strcmp(cfg->traces[u].path, cfg->traces[t].path) == 0;
        if (!seen)
            RS_TRY(add_trace_curves(results, cfg, cfg->traces[t].path, outcome, err));
    }
    return 0;
}
