/* The numbers behind the cross-run metrics. The functions are pure: they
 * port the reference implementations line by line, quirks included, so
 * numbers match the papers' code:
 *   - RouterBench AIQ (withmartian/routerbench evaluation/AIQ.py): the
 *     non-decreasing convex hull of (total cost, quality), extended flat to
 *     the largest cost among the compared curves, trapezoid area over that
 *     cost (aiq.c);
 *   - RouteLLM APGR and CPT (lm-sys/RouteLLM routellm/evals/evaluate.py):
 *     x = share of strong-model calls, points sorted by x (stably) (apgr.c,
 *     cpt.c). */
#ifndef ROUTESIM_CURVE_MATH_H
#define ROUTESIM_CURVE_MATH_H

#include "routesim/error.h"

/* numpy.interp(x, xp, fp) for a scalar x (numpy's compiled interp and its
 * binary_search_with_guess, so an xp that is not increasing gives what
 * numpy gives). n >= 1. */
double rs_numpy_interp(double x, const double *xp, const double *fp, int n);
/* numpy.trapz(y, x): sum of (x[i+1] - x[i]) (y[i+1] + y[i]) / 2, left to right. */
double rs_numpy_trapz(const double *y, const double *x, int n);

/* Sorts the points (x[i], y[i]) stably by x, in place. */
void rs_curve_sort_by_x(double *x, double *y, int n);
/* A copy of the points sorted stably by x: the x values, then the y
 * values, in one block the caller frees; NULL when out of memory. */
double *rs_curve_sorted_copy(const double *x, const double *y, int n);

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

#endif
