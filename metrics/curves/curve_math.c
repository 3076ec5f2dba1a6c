/* The numeric pieces the cross-run metrics share: numpy's interp and
 * trapz, ported so the numbers match the reference implementations, and a
 * stable sort of points by x. */
#include "metrics/curves/curve_math.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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

void rs_curve_sort_by_x(double *x, double *y, int n)
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

double *rs_curve_sorted_copy(const double *x, const double *y, int n)
{
    double *buf = malloc(2 * (size_t)(n > 0 ? n : 1) * sizeof *buf);
    if (!buf)
        return NULL;
    memcpy(buf, x, (size_t)n * sizeof *buf);
    memcpy(buf + n, y, (size_t)n * sizeof *buf);
    rs_curve_sort_by_x(buf, buf + n, n);
    return buf;
}
