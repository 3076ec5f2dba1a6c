/* Shortest round-trip text of a double (see number_text.h). The digits are
 * glibc's correctly rounded %.*e at the fewest significant digits that read
 * back as the same double. Where the gaps to the doubles either side are
 * equal, more digits never read back worse (the nearest shorter text,
 * padded with a zero, is a candidate at the longer length and the nearest
 * one there is no farther), so the fewest is found by bisection, after
 * trying 16 and 17 (what most measured values need). A power of two has a
 * gap below half the one above: the nearest text can lie below and not read
 * back while the one above it does, at one length and not the next; there
 * every length is tried in turn, both texts, as Python's repr finds them.
 * The layout then follows Python's repr. */
#include "core/number_text.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct decimal {
    char digits[24]; /* significant digits, no leading zero */
    int count;
    int exponent; /* v = 0.d1 d2 ... * 10^(exponent + 1), i.e. d1.d2... e exponent */
} decimal;

static void decimal_rounded(double v, int count, decimal *d)
{
    char text[RS_NUMBER_TEXT_MAX];
    snprintf(text, sizeof text, "%.*e", count - 1, fabs(v));
    const char *e = strchr(text, 'e');
    d->count = 0;
    for (const char *c = text; c < e; c++)
        if (*c != '.')
            d->digits[d->count++] = *c;
    d->exponent = atoi(e + 1);
}

/* "-d.ddde+XX" */
static void decimal_text(const decimal *d, int negative, char *buf, size_t size)
{
    snprintf(buf, size, "%s%c%s%.*se%c%02d", negative ? "-" : "", d->digits[0], d->count > 1 ? "." : "",
             d->count - 1, d->digits + 1, d->exponent < 0 ? '-' : '+', abs(d->exponent));
}

static int reads_back(const decimal *d, double v)
{
    char text[RS_NUMBER_TEXT_MAX];
    decimal_text(d, v < 0, text, sizeof text);
    return strtod(text, NULL) == v;
}

/* The next decimal up at the same count of digits: 1.99 -> 2.00, 9.9 -> 1.0e+1. */
static void decimal_next_up(decimal *d)
{
    int i = d->count - 1;
    while (i >= 0 && d->digits[i] == '9')
        d->digits[i--] = '0';
    if (i >= 0) {
        d->digits[i]++;
        return;
    }
    d->digits[0] = '1';
    d->exponent++;
}

/* A power of two: every count in turn, the nearest text and the one above
 * it (fewer digits can read back where more do not). */
static void shortest_power_of_two(double v, decimal *best)
{
    for (int count = 1; count < 17; count++) {
        decimal_rounded(v, count, best);
        if (reads_back(best, v))
            return;
        decimal_next_up(best);
        if (reads_back(best, v))
            return;
    }
    decimal_rounded(v, 17, best);
}

static void shortest(double v, decimal *best)
{
    int exponent2;
    if (fabs(frexp(v, &exponent2)) == 0.5) {
        shortest_power_of_two(v, best);
        return;
    }
    /* Most measured values need 16 or 17 digits: those are tried first. */
    decimal probe;
    decimal_rounded(v, 16, &probe);
    if (!reads_back(&probe, v)) {
        decimal_rounded(v, 17, best); /* 17 significant digits always read back */
    } else {
        *best = probe;
        decimal_rounded(v, 15, &probe);
        if (reads_back(&probe, v)) {
            *best = probe;
            int lo = 1, hi = 15; /* best holds hi's text, which reads back */
            while (lo < hi) {
                int mid = (lo + hi) / 2;
                decimal_rounded(v, mid, &probe);
                if (reads_back(&probe, v)) {
                    hi = mid;
                    *best = probe;
                } else {
                    lo = mid + 1;
                }
            }
        }
    }
}

int rs_number_text(double v, char *buf, size_t size)
{
    if (isnan(v))
        return snprintf(buf, size, "nan");
    if (isinf(v))
        return snprintf(buf, size, v > 0 ? "inf" : "-inf");
    if (v == 0)
        return snprintf(buf, size, signbit(v) ? "-0" : "0");
    decimal d;
    shortest(v, &d);
    char text[RS_NUMBER_TEXT_MAX];
    if (d.exponent < -4 || d.exponent >= 16) {
        decimal_text(&d, v < 0, text, sizeof text);
        return snprintf(buf, size, "%s", text);
    }
    /* plain digits: 1.25e+02 -> 125, 2.5e-03 -> 0.0025 */
    int len = 0;
    if (v < 0)
        text[len++] = '-';
    if (d.exponent < 0) {
        text[len++] = '0';
        text[len++] = '.';
        for (int z = 0; z < -d.exponent - 1; z++)
            text[len++] = '0';
        memcpy(text + len, d.digits, (size_t)d.count);
        len += d.count;
    } else {
        for (int i = 0; i <= d.exponent; i++)
            text[len++] = i < d.count ? d.digits[i] : '0';
        if (d.count > d.exponent + 1) {
            text[len++] = '.';
            memcpy(text + len, d.digits + d.exponent + 1, (size_t)(d.count - d.exponent - 1));
            len += d.count - d.exponent - 1;
        }
    }
    text[len] = '\0';
    return snprintf(buf, size, "%s", text);
}
