/* curve.apgr: RouteLLM's APGR, the average performance gap recovered
 * along the curve of (strong-model share, quality). */
#include <math.h>
#include <stdlib.h>

#include "metrics/curves/curve_math.h"
#include "metrics/curves/curve_metric.h"

double rs_curve_apgr(const double *x, const double *y, int n, double q_weak, double q_strong)
{
    double *sx = rs_curve_sorted_copy(x, y, n);
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

static int apgr_compute(const rs_curve *curves, int num_curves, double param, double *values, rs_error *err)
{
    (void)param;
    (void)err;
    for (int c = 0; c < num_curves; c++)
        values[c] = rs_curve_apgr(curves[c].strong_calls, curves[c].quality, curves[c].n, curves[c].q_weak,
                                  curves[c].q_strong);
    return 0;
}

static const rs_curve_metric_type apgr_type = {
    .output = {"apgr",
               "(trapz(quality) - trapz(q_weak)) / (trapz(q_strong) - trapz(q_weak)) over strong_calls, points "
               "sorted by strong share",
               0, RS_AGG_SELF, .label = "APGR"},
    .source = "RouteLLM arXiv:2406.18665 (lm-sys/RouteLLM routellm/evals/evaluate.py apgr_metric)",
    .compute = apgr_compute,
};

const rs_curve_metric_type *const rs_curve_metric_apgr = &apgr_type;
