/* Cost-quality curves of swept query routers (docs/metrics.md "Query
 * routing"): the runs one config entry expands into (a list-valued
 * parameter such as lambda or tau_quantile) are the points of one curve.
 *
 * The functions below are pure: they port the reference implementations
 * line by line, quirks included, so numbers match the papers' code:
 *   - RouterBench AIQ (withmartian/routerbench evaluation/AIQ.py): the
 *     non-decreasing convex hull of (total cost, quality), extended flat to
 *     the largest cost among the compared curves, trapezoid area over that
 *     cost;
 *   - RouteLLM APGR and CPT (lm-sys/RouteLLM routellm/evals/evaluate.py):
 *     x = share of strong-model calls, points sorted by x (stably).
 * rs_curves_add is the post-run stage that turns a run's results into
 * curve rows. */
#ifndef ROUTESIM_CURVES_H
#define ROUTESIM_CURVES_H

#include "routesim/error.h"
#include "sim/config/config.h"
#include "sim/results/results.h"

/* numpy.interp(x, xp, fp) for a scalar x (numpy's compiled interp and its
 * binary_search_with_guess, so an xp that is not increasing gives what
 * numpy gives). n >= 1. */
double rs_numpy_interp(double x, const double *xp, const double *fp, int n);
/* numpy.trapz(y, x): sum of (x[i+1] - x[i]) (y[i+1] + y[i]) / 2, left to right. */
double rs_numpy_trapz(const double *y, const double *x, int n);

/* RouterBench get_non_descreasing_convex_hull_of(points): the points
 * (x[i], y[i]) sorted stably by x, then its hull. hx, hy need room for n
 * points; returns their number. Where the reference raises (no point lies
 * strictly between two others, e.g. two points), the hull is the first and
 * the last point (docs/metrics.md). */
int rs_curve_hull(const double *x, const double *y, int n, double *hx, double *hy);

/* RouterBench calc_AIQ over m curves (curve c: n[c] points x[c], y[c]):
 * aiq[c] = trapz of hull c extended to (max_x, its last y), / max_x, where
 * max_x is the largest hull x over all m curves. NaN when max_x <= 0 or a
 * curve has no points. Returns -1 when out of memory. */
int rs_curve_aiq(int m, const double *const *x, const double *const *y, const int *n, double *aiq, rs_error *err);

/* RouteLLM apgr_metric: points sorted stably by x (strong share in [0, 1]),
 * (trapz(y, x) - trapz(q_weak, x)) / (trapz(q_strong, x) - trapz(q_weak, x)).
 * NaN when the denominator is 0. */
double rs_curve_apgr(const double *x, const double *y, int n, double q_weak, double q_strong);
/* RouteLLM pct_call_metric: numpy.interp(q_weak + p (q_strong - q_weak), y, x)
 * with the points sorted stably by x: the strong share needed, in [0, 1]. */
double rs_curve_cpt(const double *x, const double *y, int n, double q_weak, double q_strong, double p);

/* After every run of cfg finished: for each trace and each config routers[]
 * entry that expanded into two or more runs, when cfg measures the
 * `outcome` family, adds a run labelled "<entry>:<swept>=*" (router = the
 * entry's router, params = the swept values joined by ',') holding
 * curve.aiq, curve.apgr and curve.cpt (key p=P for each p of the outcome
 * specs). AIQ compares every such curve of the trace. */
int rs_curves_add(rs_results *results, const rs_config *cfg, rs_error *err);

#endif
