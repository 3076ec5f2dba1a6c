/* The vector passes of base's shortest-path search (routers/balancing/base.c)
 * over the experts' tentative distances: the least open one, and the
 * relaxation from a popped expert, which gives the least open one as well.
 * Both return the first expert at the least distance, by (distance, index)
 * with -0 == +0, as a scan in index order would. */
#ifndef ROUTESIM_BASE_PASSES_H
#define ROUTESIM_BASE_PASSES_H

#include <math.h>
#include <stdint.h>
#include <string.h>

/* The solver's steps are inlined into its caller, whose vector clones
 * (RS_VECTOR_CLONES) then hold their loops at each ISA level. */
#define SOLVER_STEP __attribute__((always_inline)) static inline

/* The search's passes over the experts run on vectors of LANES doubles (one
 * AVX2 register; GCC's vector extension, lowered for each clone level), two
 * vectors per step so that two running minima hide the compare latency.
 * Rows are padded to a multiple of STEP with entries that never win. */
#define LANES 4
#define STEP (2 * LANES)
typedef double dvec __attribute__((vector_size(LANES * sizeof(double))));
typedef int64_t lvec __attribute__((vector_size(LANES * sizeof(int64_t))));

#define LOAD(v, from) memcpy(&(v), (from), sizeof(v))
#define STORE(to, v) memcpy((to), &(v), sizeof(v))
/* a where mask is set, else b (mask lanes all ones or all zeros) */
#define BLEND(mask, a, b) ((dvec)(((lvec)(a) & (mask)) | ((lvec)(b) & ~(mask))))

/* Per lane, the least value a pass met and the first index holding it
 * (the second vector's indices counted from LANES on, added at the end). */
typedef struct lane_min {
    dvec least[2];
    lvec first[2], at;
} lane_min;

SOLVER_STEP void lane_min_start(lane_min *m)
{
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < LANES; l++) {
            m->least[h][l] = INFINITY;
            m->first[h][l] = 0;
            m->at[l] = l;
        }
}

/* Takes the values now[0..1] at the pass's next STEP indices: a lane takes a
 * value only when strictly less, so it keeps the first index of its least. */
SOLVER_STEP void lane_min_take(lane_min *m, const dvec *now)
{
    for (int h = 0; h < 2; h++) {
        lvec less = now[h] < m->least[h];
        m->least[h] = BLEND(less, now[h], m->least[h]);
        m->first[h] = (less & m->at) | (~less & m->first[h]);
    }
    m->at += STEP;
}

/* Keeps, per lane, the pair (value, index) of a or b that comes first:
 * the lesser value, or on a tie (-0 == +0) the lesser index. */
#define FIRST_OF(least_a, first_a, least_b, first_b)                                                           \
    do {                                                                                                       \
        lvec take_b = (least_b < least_a) | ((least_b == least_a) & (first_b < first_a));                      \
        least_a = BLEND(take_b, least_b, least_a);                                                             \
        first_a = (take_b & first_b) | (~take_b & first_a);                                                    \
    } while (0)

/* The first index at the least value over the lanes, the value in *least;
 * -1 when every value was +inf or NaN. Lanes fold pairwise, no branch. */
SOLVER_STEP int lane_min_end(const lane_min *m, double *least)
{
    dvec v = m->least[0], w = m->least[1];
    lvec f = m->first[0], g = m->first[1] + LANES;
    FIRST_OF(v, f, w, g);
    w = __builtin_shufflevector(v, v, 2, 3, 0, 1);
    g = __builtin_shufflevector(f, f, 2, 3, 0, 1);
    FIRST_OF(v, f, w, g);
    w = __builtin_shufflevector(v, v, 1, 0, 3, 2);
    g = __builtin_shufflevector(f, f, 1, 0, 3, 2);
    FIRST_OF(v, f, w, g);
    *least = v[0];
    return v[0] < INFINITY ? (int)f[0] : -1;
}

/* The first open expert at the least open distance (-1: none reachable). */
SOLVER_STEP int least_open(int stride, const double *restrict open, double *least)
{
    lane_min m;
    lane_min_start(&m);
    for (int b = 0; b < stride; b += STEP) {
        dvec now[2];
        LOAD(now[0], open + b);
        LOAD(now[1], open + b + LANES);
        lane_min_take(&m, now);
    }
    return lane_min_end(&m, least);
}

/* Relaxes every open expert b from popped expert u (distance du, potential
 * pu) over the edge of cost row[b] + pu - p[b] (row +inf: no edge), then as
 * least_open. A blend per b: stores every distance, changed or not. */
SOLVER_STEP int relax_row(int stride, double du, double pu, const double *restrict row, const double *restrict p,
                          double *restrict open, double *least)
{
    const dvec du_v = {du, du, du, du}, pu_v = {pu, pu, pu, pu};
    lane_min m;
    lane_min_start(&m);
    for (int b = 0; b < stride; b += STEP) {
        dvec now[2];
        for (int h = 0; h < 2; h++) {
            dvec cost, pb, held;
            LOAD(cost, row + b + h * LANES);
            LOAD(pb, p + b + h * LANES);
            LOAD(held, open + b + h * LANES);
            dvec d = du_v + ((cost + pu_v) - pb);
            now[h] = BLEND(d < held, d, held);
            STORE(open + b + h * LANES, now[h]);
        }
        lane_min_take(&m, now);
    }
    return lane_min_end(&m, least);
}

#endif
