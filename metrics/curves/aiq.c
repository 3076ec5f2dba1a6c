/* curve.aiq: RouterBench's AIQ, the area under each curve's non-decreasing
 * convex hull of (total cost, quality), the curves of a trace compared. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/curves/curve_math.h"
#include "metrics/curves/curve_metric.h"

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
    rs_curve_sort_by_x(x, y, n);
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
    rs_curve_sort_by_x(hx, hy, count); /* x values are distinct now */
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

/* Curves with a NaN or infinite point are left out of the comparison (NaN). */
static int aiq_compute(const rs_curve *curves, int num_curves, double param, double *values, rs_error *err)
{
    (void)param;
    size_t size = (size_t)(num_curves > 0 ? num_curves : 1);
    const double **xs = malloc(size * sizeof *xs), **ys = malloc(size * sizeof *ys);
    int *ns = malloc(size * sizeof *ns), *which = malloc(size * sizeof *which);
    double *compared_aiq = malloc(size * sizeof *compared_aiq);
    int rc = xs && ys && ns && which && compared_aiq ? 0 : rs_fail(err, "out of memory computing AIQ");
    int compared = 0;
    for (int c = 0; c < num_curves && rc == 0; c++) {
        values[c] = NAN;
        int finite = 1;
        for (int r = 0; r < curves[c].n; r++)
            finite &= isfinite(curves[c].cost[r]) && isfinite(curves[c].quality[r]);
        if (!finite)
            continue;
        xs[compared] = curves[c].cost;
        ys[compared] = curves[c].quality;
        ns[compared] = curves[c].n;
        which[compared++] = c;
    }
    if (rc == 0 && compared > 0)
        rc = rs_curve_aiq(compared, xs, ys, ns, compared_aiq, err);
    for (int k = 0; k < compared && rc == 0; k++)
        values[which[k]] = compared_aiq[k];
    free(xs);
    free(ys);
    free(ns);
    free(which);
    free(compared_aiq);
    return rc;
}

static const rs_curve_metric_type aiq_type = {
    .output = {"aiq",
               "area under the non-decreasing convex hull of (cost_total, quality), extended flat to the largest cost "
               "of the trace's curves, / that cost",
               0, RS_AGG_SELF, .label = "AIQ (area under the cost-quality hull)"},
    .source = "RouterBench arXiv:2403.12031 (withmartian/routerbench evaluation/AIQ.py calc_AIQ)",
    .compute = aiq_compute,
};

const rs_curve_metric_type *const rs_curve_metric_aiq = &aiq_type;
