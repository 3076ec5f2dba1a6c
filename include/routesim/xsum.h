/* Order-independent sums.
 *
 * Metric accumulators must give the same bits whatever the thread count,
 * chunk size or split of the run (merged halves == whole). Floating-point
 * addition is not associative, so sums of doubles are kept in 64.64 fixed
 * point: each term is rounded once to a multiple of 2^-64 and integer
 * addition does the rest, exactly and in any order. Terms of 2^62 or more
 * (a z-loss of logits of 1e10) are whole multiples of 2^10: they are added
 * exactly too, as integers in units of 2^10, 2^74, 2^138 and 2^202 (each
 * term at the largest unit dividing it), carried upwards before one
 * overflows. Only terms of 2^282 or more, which no float input reaches
 * (the largest z-loss is about 2^256), go to a plain double side sum. */
#ifndef ROUTESIM_XSUM_H
#define ROUTESIM_XSUM_H

#include <math.h>
#include <stdint.h>

enum { RS_XSUM_WIDE_LEVELS = 4 };

typedef struct rs_xsum {
    __int128 whole;          /* sum of the integer parts */
    unsigned __int128 frac;  /* sum of the fractional parts, in units of 2^-64 */
    __int128 wide[RS_XSUM_WIDE_LEVELS]; /* terms >= 2^62: level i in units of 2^(10 + 64 i) */
    double huge;             /* terms >= 2^282 (or not finite) */
    int64_t count;           /* number of terms */
} rs_xsum;

/* Moves what level i holds beyond +-2^100 to level i + 1 (exactly: the
 * high part is a whole number of the next unit). */
static inline void rs_xsum_carry_(rs_xsum *s, int i)
{
    const __int128 limit = (__int128)1 << 100;
    if (i + 1 < RS_XSUM_WIDE_LEVELS && (s->wide[i] > limit || s->wide[i] < -limit)) {
        __int128 high = s->wide[i] >> 64; /* floor: arithmetic shift */
        s->wide[i] -= high * ((__int128)1 << 64);
        s->wide[i + 1] += high;
    }
}

static inline void rs_xsum_add_wide_(rs_xsum *s, double v)
{
    int ex;
    (void)frexp(v, &ex); /* |v| < 2^ex: v is a whole multiple of 2^(ex - 53) */
    int level = (ex - 63) / 64; /* the largest unit 2^(10 + 64 level) <= 2^(ex - 53) */
    if (level >= RS_XSUM_WIDE_LEVELS - 1) {
        level = RS_XSUM_WIDE_LEVELS - 1;
        if (ex - (10 + 64 * level) > 80) { /* the top level, which cannot carry, takes 2^80 units a term */
            s->huge += v;
            return;
        }
    }
    s->wide[level] += (__int128)ldexp(v, -(10 + 64 * level)); /* exact: a whole number below 2^117 */
    rs_xsum_carry_(s, level);
}

static inline void rs_xsum_add(rs_xsum *s, double v)
{
    s->count++;
    if (!(fabs(v) < 0x1p62)) {
        if (isfinite(v))
            rs_xsum_add_wide_(s, v);
        else
            s->huge += v;
        return;
    }
    double whole = floor(v);
    double frac = (v - whole) * 0x1p64; /* v - whole is exact, in [0, 1]; scaling by 2^64 too */
    if (frac >= 0x1p64) {               /* v - whole rounded up to 1 */
        whole += 1.0;
        frac = 0.0;
    }
    s->whole += (int64_t)whole;
    s->frac += (uint64_t)frac;
}

static inline void rs_xsum_merge(rs_xsum *s, const rs_xsum *o)
{
    s->whole += o->whole;
    s->frac += o->frac;
    for (int i = 0; i < RS_XSUM_WIDE_LEVELS; i++) {
        s->wide[i] += o->wide[i];
        rs_xsum_carry_(s, i);
    }
    s->huge += o->huge;
    s->count += o->count;
}

static inline double rs_xsum_value(const rs_xsum *s)
{
    __int128 whole = s->whole + (__int128)(s->frac >> 64);
    uint64_t low = (uint64_t)s->frac;
    int wide = 0;
    for (int i = 0; i < RS_XSUM_WIDE_LEVELS; i++)
        wide |= s->wide[i] != 0;
    if (!wide) {
        long double v = (long double)whole + ldexpl((long double)low, -64);
        return (double)(v + (long double)s->huge);
    }
    /* One digit set per total: the levels below the top in [0, 2^64) of
     * their unit, whole in [0, 2^10); then add from the top down. */
    __int128 digit[RS_XSUM_WIDE_LEVELS];
    for (int i = 0; i < RS_XSUM_WIDE_LEVELS; i++)
        digit[i] = s->wide[i];
    __int128 high = whole >> 10;
    whole -= high * 1024;
    digit[0] += high;
    for (int i = 0; i + 1 < RS_XSUM_WIDE_LEVELS; i++) {
        high = digit[i] >> 64;
        digit[i] -= high * ((__int128)1 << 64);
        digit[i + 1] += high;
    }
    long double v = 0;
    for (int i = RS_XSUM_WIDE_LEVELS - 1; i >= 0; i--)
        v += ldexpl((long double)digit[i], 10 + 64 * i);
    v += (long double)whole + ldexpl((long double)low, -64);
    return (double)(v + (long double)s->huge);
}

static inline double rs_xsum_mean(const rs_xsum *s)
{
    return s->count ? rs_xsum_value(s) / (double)s->count : NAN;
}

/* Fixed-point accumulation of probabilities (0 <= p <= 1) per expert:
 * each p is rounded once to a multiple of 2^-30 (exactly: p * 2^30 is
 * exact in float and integral when >= 2^23, and + 0.5 is exact below), so
 * sums are exact integers. The int32 conversion vectorizes; a 64-bit lane
 * holds 2^33 terms. */
#define RS_PROB_SCALE 0x1p30

static inline int32_t rs_prob_fixed(float p) { return (int32_t)(p * 0x1p30f + 0.5f); }

#endif
