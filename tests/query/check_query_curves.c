/* Curve metrics (sim/experiment/curves.c): numpy.interp and trapz as numpy computes
 * them, RouterBench's hull and AIQ, RouteLLM's APGR and CPT, on cases
 * worked out by hand in the comments. tests/interop/test_query.py compares
 * them with line-by-line Python ports on larger curves. */
#include <check.h>
#include <math.h>

#include "metrics/curves/curve_math.h"

START_TEST(numpy_interp_matches_numpy)
{
    /* increasing xp: plain interpolation, clamped outside */
    const double x2[2] = {0, 1}, y2[2] = {0, 2};
    ck_assert_double_eq(rs_numpy_interp(0.5, x2, y2, 2), 1.0);
    ck_assert_double_eq(rs_numpy_interp(-1, x2, y2, 2), 0.0);
    ck_assert_double_eq(rs_numpy_interp(7, x2, y2, 2), 2.0);
    ck_assert_double_eq(rs_numpy_interp(1, x2, y2, 2), 2.0);
    const double one[1] = {3}, f1[1] = {9};
    ck_assert_double_eq(rs_numpy_interp(-5, one, f1, 1), 9.0);
    /* xp not increasing (a non-monotone quality curve): numpy 1.24's np.interp on the same arrays gives these */
    const double xp[6] = {0.1, 0.5, 0.3, 0.9, 0.7, 0.8}, fp[6] = {0, 1, 2, 3, 4, 5};
    const double x[7] = {0.4, 0.75, 0.2, 0.95, 0.05, 0.5, 0.85};
    const double want[7] = {0.7500000000000001, 2.75, 0.25, 5.0, 0.0, 2.3333333333333335, 5.0};
    for (int i = 0; i < 7; i++)
        ck_assert_msg(rs_numpy_interp(x[i], xp, fp, 6) == want[i], "interp(%g) = %.17g, numpy %.17g", x[i],
                      rs_numpy_interp(x[i], xp, fp, 6), want[i]);
    const double xq[3] = {0.6, 0.8, 0.7}, fq[3] = {0, 0.5, 1};
    ck_assert(rs_numpy_interp(0.65, xq, fq, 3) == 0.12500000000000006);
    ck_assert(rs_numpy_interp(0.75, xq, fq, 3) == 1.0);
    ck_assert(rs_numpy_interp(0.7, xq, fq, 3) == 0.24999999999999986);
}
END_TEST

static void expect_hull(const double *x, const double *y, int n, const double *hx, const double *hy, int hn)
{
    double gx[16], gy[16];
    int got = rs_curve_hull(x, y, n, gx, gy);
    ck_assert_int_eq(got, hn);
    for (int i = 0; i < hn; i++)
        ck_assert_msg(fabs(gx[i] - hx[i]) < 1e-15 && fabs(gy[i] - hy[i]) < 1e-15, "point %d: (%g, %g), want (%g, %g)",
                      i, gx[i], gy[i], hx[i], hy[i]);
}

START_TEST(hull_by_hand)
{
    /* concave and increasing: every point stays */
    const double ax[4] = {0, 1, 2, 3}, ay[4] = {0, 1, 1.5, 1.6};
    expect_hull(ax, ay, 4, ax, ay, 4);
    /* a point under the chord is lifted onto it: (1, .2) under (0, 0)-(2, 1) becomes (1, .5) */
    const double bx[3] = {0, 1, 2}, by[3] = {0, 0.2, 1}, bhy[3] = {0, 0.5, 1};
    expect_hull(bx, by, 3, bx, bhy, 3);
    /* non-monotone: the last point (.6) is below the last entry (.9): left out */
    const double cx[3] = {2, 0, 1}, cy[3] = {0.6, 0.5, 0.9}, chx[2] = {0, 1}, chy[2] = {0.5, 0.9};
    expect_hull(cx, cy, 3, chx, chy, 2);
    /* duplicate costs: at x = 1 the best of .5 (above the chords) and the chord values .4, .5 -> .5;
     * at x = 0 the first point in input order (.2) is kept, as RouterBench's sort leaves it */
    const double dx[5] = {0, 0, 1, 1, 2}, dy[5] = {0.2, 0.4, 0.5, 0.3, 0.6};
    const double dhx[3] = {0, 1, 2}, dhy[3] = {0.2, 0.5, 0.6};
    expect_hull(dx, dy, 5, dhx, dhy, 3);
    /* two points: the reference raises; here both are kept */
    const double ex[2] = {1, 0}, ey[2] = {0.8, 0.3}, ehx[2] = {0, 1}, ehy[2] = {0.3, 0.8};
    expect_hull(ex, ey, 2, ehx, ehy, 2);
    /* a dip after the first point: sorted (0, 1), (1, .5), (2, .7), (3, .8).
     * chords: (0,1)-(2,.7) at 1 -> .85; (0,1)-(3,.8) at 1 -> .93333, at 2 -> .86667; (1,.5)-(3,.8) at 2 -> .65.
     * entries: x = 1 -> .93333, x = 2 -> .86667; the last point (.8 < .86667) is left out; the first goes in
     * front; then each point below its predecessor (compared before any removal) goes: only (0, 1) is left */
    const double fx[4] = {0, 1, 2, 3}, fy[4] = {1, 0.5, 0.7, 0.8}, fhx[1] = {0}, fhy[1] = {1};
    expect_hull(fx, fy, 4, fhx, fhy, 1);
}
END_TEST

START_TEST(aiq_by_hand)
{
    /* one concave curve: trapz 0.5 + 1.25 + 1.55 = 3.3 over max cost 3 */
    const double ax[4] = {0, 1, 2, 3}, ay[4] = {0, 1, 1.5, 1.6};
    /* another, ending at cost 2: hull (0,.5), (1,.9), extended flat to cost 3: .7 + .9 + .9 = 2.5 over 3 */
    const double cx[3] = {2, 0, 1}, cy[3] = {0.6, 0.5, 0.9};
    const double *xs[2] = {ax, cx}, *ys[2] = {ay, cy};
    const int ns[2] = {4, 3};
    double aiq[2];
    rs_error err = {{0}};
    ck_assert_int_eq(rs_curve_aiq(2, xs, ys, ns, aiq, &err), 0);
    ck_assert_double_eq_tol(aiq[0], 3.3 / 3, 1e-15);
    ck_assert_double_eq_tol(aiq[1], 2.5 / 3, 1e-15);
    /* alone, the second curve extends only to the largest cost of its hull (1; the point at cost 2 is not
     * on it): .7 / 1 */
    ck_assert_int_eq(rs_curve_aiq(1, xs + 1, ys + 1, ns + 1, aiq, &err), 0);
    ck_assert_double_eq_tol(aiq[0], 0.7, 1e-15);
    /* every cost 0: no area to normalise by */
    const double zx[2] = {0, 0}, zy[2] = {0.1, 0.2};
    const double *zxs[1] = {zx}, *zys[1] = {zy};
    const int zn[1] = {2};
    ck_assert_int_eq(rs_curve_aiq(1, zxs, zys, zn, aiq, &err), 0);
    ck_assert(isnan(aiq[0]));
}
END_TEST

START_TEST(apgr_and_cpt_by_hand)
{
    /* points (strong share, quality): (0, .6), (.5, .75), (1, .8), given out of order.
     * AUC = .5 (.6 + .75) / 2 + .5 (.75 + .8) / 2 = .725; APGR = (.725 - .6) / (.8 - .6) = .625 */
    const double x[3] = {1, 0, 0.5}, y[3] = {0.8, 0.6, 0.75};
    ck_assert_double_eq_tol(rs_curve_apgr(x, y, 3, 0.6, 0.8), 0.625, 1e-14);
    /* CPT(50%): quality .7 is reached 2/3 of the way from (0, .6) to (.5, .75): share 1/3 */
    ck_assert_double_eq_tol(rs_curve_cpt(x, y, 3, 0.6, 0.8, 0.5), 1.0 / 3.0, 1e-14);
    /* CPT(80%): .76 lies between (.5, .75) and (1, .8): share .6 */
    ck_assert_double_eq_tol(rs_curve_cpt(x, y, 3, 0.6, 0.8, 0.8), 0.6, 1e-14);
    /* random mixing of two models lies on the chord: APGR 1/2 */
    const double rx[5] = {0, 0.25, 0.5, 0.75, 1}, ry[5] = {0.6, 0.65, 0.7, 0.75, 0.8};
    ck_assert_double_eq_tol(rs_curve_apgr(rx, ry, 5, 0.6, 0.8), 0.5, 1e-14);
    /* x not spanning [0, 1]: RouteLLM integrates q_weak and q_strong over the same x range
     * (AUC .4 * .7 = .28; weak .24; strong .32 -> .5), where (AUC - q_weak) / (q_strong - q_weak) would give -1.6 */
    const double sx[2] = {0.2, 0.6}, sy[2] = {0.7, 0.7};
    ck_assert_double_eq_tol(rs_curve_apgr(sx, sy, 2, 0.6, 0.8), 0.5, 1e-14);
    /* q_strong = q_weak: undefined */
    ck_assert(isnan(rs_curve_apgr(rx, ry, 5, 0.7, 0.7)));
}
END_TEST

Suite *query_curves_suite(void)
{
    Suite *s = suite_create("query_curves");
    TCase *tc = tcase_create("query_curves");
    tcase_add_test(tc, numpy_interp_matches_numpy);
    tcase_add_test(tc, hull_by_hand);
    tcase_add_test(tc, aiq_by_hand);
    tcase_add_test(tc, apgr_and_cpt_by_hand);
    suite_add_tcase(s, tc);
    return s;
}
