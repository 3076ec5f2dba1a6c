/* curve.cpt: RouteLLM's CPT(p), the share of strong-model calls needed to
 * recover a share p of the weak-to-strong quality gap. */
#include <math.h>
#include <stdlib.h>

#include "metrics/curves/curve_math.h"
#include "metrics/curves/curve_metric.h"

double rs_curve_cpt(const double *x, const double *y, int n, double q_weak, double q_strong, double p)
{
    double *sx = rs_curve_sorted_copy(x, y, n);
    if (!sx || n < 1) {
        free(sx);
        return NAN;
    }
    double v = rs_numpy_interp(p * (q_strong - q_weak) + q_weak, sx + n, sx, n);
    free(sx);
    return v;
}

static int cpt_compute(const rs_curve *curves, int num_curves, double p, double *values, rs_error *err)
{
    (void)err;
    for (int c = 0; c < num_curves; c++)
        values[c] = rs_curve_cpt(curves[c].strong_calls, curves[c].quality, curves[c].n, curves[c].q_weak,
                                 curves[c].q_strong, p);
    return 0;
}

static const rs_curve_metric_type cpt_type = {
    .output = {"cpt",
               "numpy.interp(q_weak + p (q_strong - q_weak), quality, strong_calls), points sorted by strong share",
               0, RS_AGG_SELF, .label = "CPT: strong-model calls needed", .unit = "%", .unit_scale = 100},
    .source = "RouteLLM arXiv:2406.18665 (lm-sys/RouteLLM routellm/evals/evaluate.py pct_call_metric)",
    .key_param = "p",
    .compute = cpt_compute,
};

const rs_curve_metric_type *const rs_curve_metric_cpt = &cpt_type;
