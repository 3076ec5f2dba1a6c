/* Selection kernels of the built-in routers, public for plugins: plain
 * loops over one row, no callbacks, no allocation.
 *
 * The contract every kernel keeps: order is (-value, index), so of equal
 * values the lower index comes first (ties go to the lower expert index,
 * as docs/routers.md requires), and results do not depend on the vector
 * width the host picked. A NaN never displaces a number; a row with NaNs
 * is a skipped token, whose row the engine overwrites anyway. Scratch is
 * the caller's (sizes below) or the stack: rs_topk_indices uses about
 * 8 KiB of stack for rows up to RS_TOPK_FAST_MAX_N.
 *
 * Softmax of a row is not here: a router that declares RS_NEEDS_PROBS gets
 * the engine's (rs_chunk_probs in chunk.h), computed once for every router
 * and metric of the run. */
#ifndef ROUTESIM_SELECT_H
#define ROUTESIM_SELECT_H

#include <stdint.h>

#include "routesim/api.h"
#include "routesim/vector.h"

/* Lane loops are marked `omp simd` for builds with OpenMP (routesim's
 * own); without it they are plain loops with the same results, so a plugin
 * needs no OpenMP flag to include this header. */
#ifdef _OPENMP
#define RS_OMP_SIMD _Pragma("omp simd")
#else
#define RS_OMP_SIMD
#endif

/* Largest n the threshold path of rs_topk_indices handles (stack scratch). */
#define RS_TOPK_FAST_MAX_N 1024

/* Writes the indices and values of the v[e] >= tau, in index order, to idx
 * and val and returns how many there are. idx and val need room for
 * n + RS_LANES entries (whole vectors are stored past the count). */
RS_API int rs_gather_at_least(const float *v, int n, float tau, int32_t *idx, float *val);

/* Inserts (x, e) into the descending list vals/idx of *m <= k entries
 * (start with *m = 0; idx and vals hold k entries). Candidates must arrive
 * in increasing index order: strict comparisons then keep the lower index
 * first on ties. Quadratic in k: fine for small k and short rows. */
__attribute__((always_inline)) static inline void rs_topk_insert(float x, int32_t e, int k, int *m, int32_t *idx,
                                                                 float *vals)
{
    int pos;
    if (*m == k) {
        if (!(x > vals[k - 1]))
            return;
        pos = k - 1;
    } else {
        pos = (*m)++;
    }
    while (pos > 0 && x > vals[pos - 1]) {
        vals[pos] = vals[pos - 1];
        idx[pos] = idx[pos - 1];
        pos--;
    }
    vals[pos] = x;
    idx[pos] = e;
}

/* Writes to idx[0..k) the indices of the k largest of v[0..n) by
 * insertion: the ids rs_topk_indices gives (the same order and ties), with
 * no scratch beyond vals (k floats) and no call out of line, as device code
 * (routesim/device.h) needs. Slots a NaN row leaves empty hold -1. */
__attribute__((always_inline)) static inline void rs_topk_insert_row(const float *v, int n, int k, int32_t *idx,
                                                                     float *vals)
{
    int m = 0;
    for (int j = 0; j < k; j++)
        idx[j] = -1;
    for (int e = 0; e < n; e++)
        rs_topk_insert(v[e], e, k, &m, idx, vals);
}

/* Candidates the branch-free ranking handles (more fall back to insertion). */
#define RS_RANK_MAX_CANDIDATES 64

/* rank[i] for candidates i < width: how many of the c candidates precede
 * candidate i in (-value, index) order. Inlined with a constant width and
 * unrolled, the ranks stay in vector registers at every vector width. */
__attribute__((always_inline)) static inline void rs_rank_width(const float *cv, const int32_t *cand, int c, int width,
                                                                 int *rank)
{
    for (int i = 0; i < width; i++)
        rank[i] = 0;
    for (int j = 0; j < c; j++) { /* padding never outranks, so it need not be compared */
        float x = cv[j];
        int32_t xi = cand[j];
        RS_UNROLL_LANES
        for (int i = 0; i < width; i++)
            rank[i] += (x > cv[i]) | ((x == cv[i]) & (xi < cand[i]));
    }
}

/* Writes the candidates ranked below k to idx in rank order, the rank of
 * candidate i being how many candidates precede it in (-value, index)
 * order. Counting ranks instead of inserting has no data-dependent
 * branches; up to RS_RANK_MAX_CANDIDATES it runs on whole vectors. cv and
 * cand need room for the count rounded up to RS_LANES (the padding is
 * overwritten). 1 <= k <= RS_LANES and k <= c. */
__attribute__((always_inline)) static inline void rs_rank_candidates(float *cv, int32_t *cand, int c, int k,
                                                                     int32_t *idx)
{
    if (c <= RS_RANK_MAX_CANDIDATES) {
        int padded = (c + RS_LANES - 1) / RS_LANES * RS_LANES;
        padded = padded > 0 ? padded : RS_LANES;
        for (int i = c; i < padded; i++) { /* padding never outranks a candidate */
            cv[i] = -__builtin_inff();
            cand[i] = INT32_MAX;
        }
        int rank[RS_RANK_MAX_CANDIDATES];
        switch (padded / RS_LANES) { /* constant widths: registers, not memory */
        case 1:
            rs_rank_width(cv, cand, c, RS_LANES, rank);
            break;
        case 2:
            rs_rank_width(cv, cand, c, 2 * RS_LANES, rank);
            break;
        default:
            rs_rank_width(cv, cand, c, padded, rank);
            break;
        }
        /* slot k takes the candidates ranked k and beyond: no branches */
        int32_t out[RS_LANES + 1];
        for (int j = 0; j <= RS_LANES; j++) /* only reachable with NaN input (a skipped token) */
            out[j] = -1;
        for (int i = 0; i < c; i++)
            out[rank[i] < k ? rank[i] : k] = cand[i];
        for (int j = 0; j < k; j++)
            idx[j] = out[j];
        return;
    }
    float vals[RS_LANES];
    int m = 0;
    for (int i = 0; i < c; i++)
        rs_topk_insert(cv[i], cand[i], k, &m, idx, vals);
}

/* lane_max[j] = the largest of v[j], v[j + RS_LANES], ... (n >= RS_LANES):
 * whole vectors at a time, the tail into its lanes. */
__attribute__((always_inline)) static inline void rs_lane_maxima(const float *v, int n, float *lane_max)
{
    for (int j = 0; j < RS_LANES; j++)
        lane_max[j] = v[j];
    int b = RS_LANES;
    for (; b + RS_LANES <= n; b += RS_LANES) {
        RS_OMP_SIMD
        for (int j = 0; j < RS_LANES; j++)
            lane_max[j] = v[b + j] > lane_max[j] ? v[b + j] : lane_max[j];
    }
    for (int j = 0; b + j < n; j++)
        lane_max[j] = v[b + j] > lane_max[j] ? v[b + j] : lane_max[j];
}

/* Writes to idx[0..k) the indices of the k largest of v[0..n), ordered by
 * (-v, index): ties go to the lower index. vals is scratch for k floats
 * (its contents afterwards are unspecified). 1 <= k <= n. The same
 * selection as the topk router's, for any n and k.
 *
 * For k <= RS_LANES a vectorised pass takes the maximum of each of the
 * RS_LANES strided lanes. The k-th largest lane maximum tau is a lower bound
 * of the k-th largest value (the top-k lane maxima are k distinct elements
 * >= tau), so only the few elements >= tau can be selected; they are gathered
 * and ranked. */
__attribute__((always_inline)) static inline void rs_topk_indices(const float *v, int n, int k, int32_t *idx,
                                                                  float *vals)
{
    if (k > RS_LANES || n < 2 * RS_LANES || n > RS_TOPK_FAST_MAX_N) {
        int m = 0;
        for (int e = 0; e < n; e++)
            rs_topk_insert(v[e], e, k, &m, idx, vals);
        return;
    }
    float lane_max[RS_LANES];
    rs_lane_maxima(v, n, lane_max);
    /* rank of every lane maximum, accumulated a whole vector at a time */
    int rank[RS_LANES] = {0};
    for (int j = 0; j < RS_LANES; j++) {
        float x = lane_max[j];
        RS_UNROLL_LANES
        for (int i = 0; i < RS_LANES; i++)
            rank[i] += (x > lane_max[i]) | ((x == lane_max[i]) & (j < i));
    }
    float tau = lane_max[0];
    for (int i = 0; i < RS_LANES; i++)
        tau = rank[i] == k - 1 ? lane_max[i] : tau;
    int32_t cand[RS_TOPK_FAST_MAX_N + RS_LANES];
    float cv[RS_TOPK_FAST_MAX_N + RS_LANES];
    int c = rs_gather_at_least(v, n, tau, cand, cv);
    rs_rank_candidates(cv, cand, c, k, idx);
}

/* Pads a decision row from slot `from` to kmax: id -1, weight 0, the
 * engine's mark of an unused slot. */
static inline void rs_pad_row(int32_t *ids, float *w, int from, int kmax)
{
    for (int j = from; j < kmax; j++) {
        ids[j] = -1;
        w[j] = 0.0f;
    }
}

#endif
