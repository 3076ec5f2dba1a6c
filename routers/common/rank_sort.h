/* Full ranking of a row in (-value, index) order, for routers whose
 * selection walks the sorted experts until a rule stops it (top-p,
 * thresholds, dynamic k). Plain loops on integer keys, no callbacks. */
#ifndef ROUTESIM_RANK_SORT_H
#define ROUTESIM_RANK_SORT_H

#include <stdint.h>
#include <string.h>

#include "routesim/select.h"

/* Most experts the ranking routers accept: their scratch lives on the stack. */
#define RS_RANK_MAX_E 4096

/* Per-call scratch of a ranking router (one per route_layer call, on its stack). */
typedef struct rs_rank_scratch {
    int32_t order[RS_RANK_MAX_E];
    float vals[RS_RANK_MAX_E];
    union { /* whole-row ranking uses the same room as 32-bit keys and a second order */
        uint64_t keys[RS_RANK_MAX_E];
        uint32_t keys32[2][RS_RANK_MAX_E];
    };
    union {
        uint64_t tmp[RS_RANK_MAX_E];
        int32_t order2[RS_RANK_MAX_E];
    };
} rs_rank_scratch;

/* A 32-bit key whose ascending order is descending v; -0 is folded into
 * +0 so that equal values tie. */
static inline uint32_t rs_rank_key32(float v)
{
    float x = v + 0.0f;
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return (u & 0x80000000u) ? u : ~(u | 0x80000000u);
}

/* A key whose ascending order is (-v, index) order. */
static inline uint64_t rs_rank_key(float v, int32_t index)
{
    return ((uint64_t)rs_rank_key32(v) << 32) | (uint32_t)index;
}

/* Sorts keys[0..n) ascending; tmp is scratch of n entries. */
static inline void rs_sort_keys(uint64_t *keys, uint64_t *tmp, int n)
{
    enum { RUN = 16 };
    for (int a = 0; a < n; a += RUN) { /* insertion sort of short runs */
        int b = a + RUN < n ? a + RUN : n;
        for (int i = a + 1; i < b; i++) {
            uint64_t x = keys[i];
            int j = i;
            for (; j > a && keys[j - 1] > x; j--)
                keys[j] = keys[j - 1];
            keys[j] = x;
        }
    }
    uint64_t *src = keys, *dst = tmp;
    for (int width = RUN; width < n; width *= 2) { /* bottom-up merges */
        for (int a = 0; a < n; a += 2 * width) {
            int mid = a + width < n ? a + width : n, b = a + 2 * width < n ? a + 2 * width : n;
            int i = a, j = mid, o = a;
            while (i < mid && j < b)
                dst[o++] = src[j] < src[i] ? src[j++] : src[i++];
            while (i < mid)
                dst[o++] = src[i++];
            while (j < b)
                dst[o++] = src[j++];
        }
        uint64_t *swap = src;
        src = dst;
        dst = swap;
    }
    if (src != keys)
        memcpy(keys, src, (size_t)n * sizeof *keys);
}

/* rank[i], for the candidates i < c, from their keys (ascending = the
 * order; key[i] of candidate i, candidates in increasing index order):
 * how many precede it. A lane block of RS_LANES candidates compares with
 * the candidates before the block (a tie precedes: its index is lower),
 * inside it (a tie precedes when its index is lower), and after it (a tie
 * does not), so only the block's own candidates need the index: one
 * compare and one add per pair elsewhere. key needs room for c rounded up
 * to RS_LANES (the padding is overwritten). */
__attribute__((always_inline)) static inline void rs_rank_by_keys(int32_t *key, int c, int *rank)
{
    int padded = (c + RS_LANES - 1) / RS_LANES * RS_LANES;
    for (int i = c; i < padded; i++)
        key[i] = INT32_MAX;
    for (int w = 0; w < padded; w += RS_LANES) {
        int32_t mine[RS_LANES];
        int r[RS_LANES];
        for (int l = 0; l < RS_LANES; l++) {
            mine[l] = key[w + l];
            r[l] = 0;
        }
        const int block_end = w + RS_LANES < c ? w + RS_LANES : c;
        for (int j = 0; j < w; j++) {
            int32_t x = key[j];
            RS_OMP_SIMD
            for (int l = 0; l < RS_LANES; l++)
                r[l] += x <= mine[l];
        }
        for (int j = w; j < block_end; j++) {
            int32_t x = key[j];
            RS_OMP_SIMD
            for (int l = 0; l < RS_LANES; l++)
                r[l] += (x < mine[l]) | ((x == mine[l]) & (j < w + l));
        }
        for (int j = block_end; j < c; j++) {
            int32_t x = key[j];
            RS_OMP_SIMD
            for (int l = 0; l < RS_LANES; l++)
                r[l] += x < mine[l];
        }
        for (int l = 0; l < RS_LANES; l++)
            rank[w + l] = r[l];
    }
}

/* Most candidates rs_rank_gathered ranks by counting (beyond, it sorts). */
#define RS_RANK_COUNT_MAX 128

/* Ranks gathered candidates (cand[i] with value cv[i], in increasing index
 * order) by (-value, index) into out. Up to RS_RANK_COUNT_MAX it counts
 * each one's rank on whole vectors (rs_rank_by_keys, on signed 32-bit
 * value keys), with no data-dependent branches; larger sets are sorted.
 * cv and cand need room for c rounded up to RS_LANES; out must not alias
 * them. */
__attribute__((always_inline)) static inline void rs_rank_gathered(float *cv, int32_t *cand, int c, int32_t *out,
                                                                   rs_rank_scratch *s)
{
    if (c > RS_RANK_COUNT_MAX) {
        for (int i = 0; i < c; i++)
            s->keys[i] = rs_rank_key(cv[i], cand[i]);
        rs_sort_keys(s->keys, s->tmp, c);
        for (int i = 0; i < c; i++)
            out[i] = (int32_t)(uint32_t)s->keys[i];
        return;
    }
    int32_t *key = (int32_t *)s->keys32[0];
    for (int i = 0; i < c; i++) {
        /* rs_rank_key32 with the top bit flipped (signed order = its
         * unsigned order), written as a select so that it vectorises */
        float x = cv[i] + 0.0f;
        int32_t bits;
        memcpy(&bits, &x, sizeof bits);
        key[i] = bits < 0 ? (int32_t)((uint32_t)bits ^ 0x80000000u) : ~bits;
    }
    int rank[RS_RANK_COUNT_MAX];
    rs_rank_by_keys(key, c, rank);
    for (int i = 0; i < c; i++)
        out[rank[i]] = cand[i];
}

/* Every expert of v[0..n) in (-v, index) order, into s->order: a stable
 * least-significant-digit radix sort on 8-bit digits of the value key,
 * starting from index order, so ties keep the lower index first. A digit
 * all keys share skips its pass. Linear in n, without the data-dependent
 * branches of a comparison sort. */
static inline void rs_rank_all(const float *v, int n, rs_rank_scratch *s)
{
    uint32_t *key = s->keys32[0], *key2 = s->keys32[1];
    int32_t *order = s->order, *order2 = s->order2;
    for (int e = 0; e < n; e++) {
        key[e] = rs_rank_key32(v[e]);
        order[e] = e;
    }
    for (int shift = 0; shift < 32; shift += 8) {
        int start[257] = {0};
        for (int e = 0; e < n; e++)
            start[((key[e] >> shift) & 255u) + 1]++;
        if (start[((key[0] >> shift) & 255u) + 1] == n)
            continue;
        for (int d = 0; d < 256; d++)
            start[d + 1] += start[d];
        for (int e = 0; e < n; e++) {
            int at = start[(key[e] >> shift) & 255u]++;
            key2[at] = key[e];
            order2[at] = order[e];
        }
        uint32_t *kt = key;
        key = key2;
        key2 = kt;
        int32_t *ot = order;
        order = order2;
        order2 = ot;
    }
    if (order != s->order)
        memcpy(s->order, order, (size_t)n * sizeof *order);
}

/* The first `want` experts of v[0..n) in (-v, index) order, into s->order.
 * Small requests take the vectorised top-k; larger ones sort the whole row.
 * Returns how many leading entries of s->order are ranked (want or n). */
__attribute__((always_inline)) static inline int rs_rank_top(const float *v, int n, int want, rs_rank_scratch *s)
{
    if (want <= RS_LANES) {
        rs_topk_indices(v, n, want, s->order, s->vals);
        return want;
    }
    rs_rank_all(v, n, s);
    return n;
}

/* Rows the walk's middle step handles: long enough for the lanes' 4 largest
 * to be a small part of the row, short enough for its gather's scratch
 * (n + RS_LANES entries). */
#define RS_RANK_PREFIX_MIN_N (8 * RS_LANES)
#define RS_RANK_PREFIX_MAX_N 1024

/* The walk's middle step: ranks a prefix of at least 3 RS_LANES experts
 * without sorting the row. Each of the RS_LANES strided lanes keeps its 4
 * largest values; tau, the 3/4 RS_LANES-th largest of the lanes' 4th
 * largest, has 4 values at or above it in each of 3/4 RS_LANES lanes. The
 * values >= tau are an exact prefix of the (-v, index) order (ties at tau
 * included), so gathering and sorting them ranks that prefix. Returns its
 * length. */
__attribute__((always_inline)) static inline int rs_rank_prefix(const float *v, int n, rs_rank_scratch *s)
{
    enum { DEPTH = 4, LANES_USED = 3 * RS_LANES / 4 };
    float best[DEPTH][RS_LANES];
    for (int r = 0; r < DEPTH; r++)
        for (int j = 0; j < RS_LANES; j++)
            best[r][j] = -__builtin_inff();
    int b = 0;
    for (; b + RS_LANES <= n; b += RS_LANES) {
        float x[RS_LANES];
        for (int j = 0; j < RS_LANES; j++)
            x[j] = v[b + j];
        for (int r = 0; r < DEPTH; r++) { /* a sorting network per lane, all lanes at once */
            RS_OMP_SIMD
            for (int j = 0; j < RS_LANES; j++) {
                float hi = x[j] > best[r][j] ? x[j] : best[r][j];
                x[j] = x[j] > best[r][j] ? best[r][j] : x[j];
                best[r][j] = hi;
            }
        }
    }
    for (int j = 0; b + j < n; j++) {
        float x = v[b + j];
        for (int r = 0; r < DEPTH; r++) {
            float hi = x > best[r][j] ? x : best[r][j];
            x = x > best[r][j] ? best[r][j] : x;
            best[r][j] = hi;
        }
    }
    const float *fourth = best[DEPTH - 1];
    int rank[RS_LANES] = {0};
    for (int j = 0; j < RS_LANES; j++) {
        float x = fourth[j];
        RS_OMP_SIMD
        for (int i = 0; i < RS_LANES; i++)
            rank[i] += (x > fourth[i]) | ((x == fourth[i]) & (j < i));
    }
    float tau = fourth[0];
    for (int i = 0; i < RS_LANES; i++)
        tau = rank[i] == LANES_USED - 1 ? fourth[i] : tau;
    int c = rs_gather_at_least(v, n, tau, s->order2, s->vals);
    rs_rank_gathered(s->vals, s->order2, c, s->order, s);
    return c;
}

/* Ranking for rules that walk the experts in order and mostly stop within
 * the first few (top-p, thresholds): start with the first RS_LANES by the
 * vectorised top-k; when the walk gets past them, rank a longer prefix
 * (rs_rank_prefix); past that, the whole row. rs_rank_walk_start returns
 * how many are ranked; rs_rank_walk_at returns the m-th expert, m counting
 * up from 0, updating that count. */
/* The walk of rs_rank_walk_at without scratch, for device code
 * (routesim/device.h): returns the m-th expert of v[0..n) in (-v, index)
 * order (the same order: keys of rs_rank_key), given in *last the key of
 * the (m-1)-th (anything for m = 0), which it updates. O(n) per step. */
__attribute__((always_inline)) static inline int32_t rs_rank_walk_next(const float *v, int n, int m, uint64_t *last)
{
    uint64_t best = UINT64_MAX;
    for (int e = 0; e < n; e++) {
        uint64_t key = rs_rank_key(v[e], e);
        best = (m == 0 || key > *last) && key < best ? key : best;
    }
    *last = best;
    return (int32_t)(uint32_t)best;
}

__attribute__((always_inline)) static inline int rs_rank_walk_start(const float *v, int n, rs_rank_scratch *s)
{
    return rs_rank_top(v, n, n < RS_LANES ? n : RS_LANES, s);
}

__attribute__((always_inline)) static inline int32_t rs_rank_walk_at(const float *v, int n, int m, int *ranked,
                                                                    rs_rank_scratch *s)
{
    if (m == *ranked) {
        if (m < 3 * RS_LANES && n >= RS_RANK_PREFIX_MIN_N && n <= RS_RANK_PREFIX_MAX_N)
            *ranked = rs_rank_prefix(v, n, s);
        if (m == *ranked) /* the prefix was no longer */
            *ranked = rs_rank_top(v, n, n, s);
    }
    return s->order[m];
}

/* Levels the mass estimate tries in one pass over the row. */
#define RS_RANK_MASS_LEVELS 4

/* mass[k] = the sum of p[e] over the e with v[e] >= tau[k], for the
 * RS_RANK_MASS_LEVELS levels at once, in float lanes: an estimate (its
 * error is at most n 2^-24 of the sum), for choosing a prefix only. */
__attribute__((always_inline)) static inline void rs_rank_mass_levels(const float *v, const float *p, int n,
                                                                     const float *tau, float *mass)
{
    enum { K = RS_RANK_MASS_LEVELS };
    float acc[K][RS_LANES];
    for (int k = 0; k < K; k++) {
        mass[k] = 0.0f;
        for (int j = 0; j < RS_LANES; j++)
            acc[k][j] = 0.0f;
    }
    int b = 0;
    for (; b + RS_LANES <= n; b += RS_LANES) {
        float x[RS_LANES], q[RS_LANES];
        for (int j = 0; j < RS_LANES; j++) {
            x[j] = v[b + j];
            q[j] = p[b + j];
        }
        RS_UNROLL_LANES
        for (int k = 0; k < K; k++) {
            RS_OMP_SIMD
            for (int j = 0; j < RS_LANES; j++)
                acc[k][j] += x[j] >= tau[k] ? q[j] : 0.0f;
        }
    }
    for (; b < n; b++) /* the tail apart, so that acc can stay in registers */
        for (int k = 0; k < K; k++)
            mass[k] += v[b] >= tau[k] ? p[b] : 0.0f;
    /* trees, not chains: halves added twice at constant widths, then 4 lanes */
    float half[K][RS_LANES / 2], quarter[K][RS_LANES / 4];
    RS_UNROLL_LANES
    for (int k = 0; k < K; k++)
        for (int j = 0; j < RS_LANES / 2; j++)
            half[k][j] = acc[k][j] + acc[k][j + RS_LANES / 2];
    RS_UNROLL_LANES
    for (int k = 0; k < K; k++)
        for (int j = 0; j < RS_LANES / 4; j++)
            quarter[k][j] = half[k][j] + half[k][j + RS_LANES / 4];
    for (int k = 0; k < K; k++)
        mass[k] += (quarter[k][0] + quarter[k][1]) + (quarter[k][2] + quarter[k][3]);
}

/* Start of a walk that sums p (p[e] >= 0, the row's probabilities) in
 * (-v, index) order until more than `mass` is reached (top-p, thresholds):
 * the walk's head, ranked at once. Two passes of RS_RANK_MASS_LEVELS
 * levels each find, to 1/16 of RS_RANK_MASS_SPAN, the highest tau below
 * max v whose experts v >= tau hold an estimated mass clear of `mass` by
 * more than the estimate's error; those experts, an exact prefix of the
 * order whatever tau is (ties at tau included), are gathered and ranked,
 * so the walk stops within them. Where no such tau lies within the span,
 * or the row is shorter than 2 RS_LANES or longer than
 * RS_RANK_PREFIX_MAX_N (the gather's scratch), or mass >= 1, the walk
 * starts as rs_rank_walk_start. Either way rs_rank_walk_at
 * continues the walk past what is ranked, so the estimate decides only how
 * much is ranked at once, never the order. Returns how many leading
 * entries of s->order are ranked. */
#define RS_RANK_MASS_SPAN 16.0f
__attribute__((always_inline)) static inline int rs_rank_mass_prefix(const float *v, const float *p, int n,
                                                                    double mass, rs_rank_scratch *s)
{
    enum { K = RS_RANK_MASS_LEVELS };
    if (n < 2 * RS_LANES || n > RS_RANK_PREFIX_MAX_N || !(mass < 1.0))
        return rs_rank_walk_start(v, n, s);
    float lane_max[RS_LANES];
    rs_lane_maxima(v, n, lane_max);
    float top = lane_max[0];
    for (int j = 1; j < RS_LANES; j++)
        top = lane_max[j] > top ? lane_max[j] : top;
    /* four times the estimate's error bound (p sums to about 1) */
    const float need = (float)mass + (float)n * 0x1p-22f;
    float below = 0.0f, step = RS_RANK_MASS_SPAN / K; /* distances from top: level k at below + (k + 1) step */
    for (int pass = 0; pass < 2; pass++) {
        float tau[K], level_mass[K];
        for (int k = 0; k < K; k++)
            tau[k] = top - (below + (float)(k + 1) * step);
        rs_rank_mass_levels(v, p, n, tau, level_mass);
        int first = K; /* the first level with enough mass */
        for (int k = K - 1; k >= 0; k--)
            first = level_mass[k] >= need ? k : first;
        if (first == K)
            return rs_rank_walk_start(v, n, s); /* not within the span (first pass only: the second has it) */
        below += (float)first * step;
        step /= K;
    }
    int c = rs_gather_at_least(v, n, top - (below + (float)K * step), s->order2, s->vals);
    rs_rank_gathered(s->vals, s->order2, c, s->order, s);
    return c;
}

#endif
