/* Sinkhorn scaling of the balancing routers (balance_util.h) and the
 * working space of the routers that use it. Every sum runs in the order the
 * formula's loops give it (each row's over experts, each column's over
 * tokens); the vectors only hold several such sums side by side. */
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "routers/common/balance_util.h"
#include "routesim/select.h"

/* Rows whose sums the row pass carries side by side: 4 AVX-512 vectors. */
#define SCALE_ROWS 32

/* Doubles between the expert columns of the transposed kernel: T rounded up
 * to whole steps of the row pass, plus a cache line (see
 * rs_balance_column_stride). */
static size_t transposed_stride(size_t T) { return (T + SCALE_ROWS - 1) / SCALE_ROWS * SCALE_ROWS + 8; }

/* kt[e S + t] = K[t E + e], zeros past T: 8 rows at a time, so that each
 * write fills a cache line. */
static void transpose_kernel(const double *K, int T, int E, double *kt, size_t S)
{
    for (int t0 = 0; t0 < T; t0 += 8) {
        const int rows = T - t0 < 8 ? T - t0 : 8;
        for (int e = 0; e < E; e++)
            for (int i = 0; i < rows; i++)
                kt[(size_t)e * S + (size_t)(t0 + i)] = K[(size_t)(t0 + i) * (size_t)E + (size_t)e];
    }
    const size_t padded = (size_t)(T + SCALE_ROWS - 1) / SCALE_ROWS * SCALE_ROWS;
    for (int e = 0; e < E; e++)
        for (size_t t = (size_t)T; t < padded; t++)
            kt[(size_t)e * S + t] = 0.0;
}

RS_VECTOR_CLONES
int rs_balance_sinkhorn(const double *K, int T, int E, double tol, int max_iter, double *d0, double *d1,
                        double *col, double *kt)
{
    const size_t S = transposed_stride((size_t)T);
    transpose_kernel(K, T, E, kt, S);
    for (int e = 0; e < E; e++)
        d1[e] = 1.0;
    int rounds = 0;
    double change = INFINITY;
    while (rounds < max_iter && (tol < 0 || change > tol)) {
        /* d0: SCALE_ROWS row sums at once, one per lane, each over the
         * experts in index order (the transposed kernel's columns are the
         * rows' values side by side) */
        for (int t0 = 0; t0 < T; t0 += SCALE_ROWS) {
            double sum[SCALE_ROWS] = {0.0};
            for (int e = 0; e < E; e++) {
                const double *k = kt + (size_t)e * S + (size_t)t0, d = d1[e];
                RS_UNROLL_LANES /* unrolled, the sums stay in registers */
                for (int i = 0; i < SCALE_ROWS; i++)
                    sum[i] += d * k[i];
            }
            const int rows = T - t0 < SCALE_ROWS ? T - t0 : SCALE_ROWS;
            for (int i = 0; i < rows; i++) /* a positive floor keeps an underflowed row finite */
                d0[t0 + i] = 1.0 / ((double)T * (sum[i] > DBL_MIN ? sum[i] : DBL_MIN));
        }
        /* d1: every expert's column sum over the tokens in index order,
         * SCALE_ROWS experts at a time in registers */
        int e0 = 0;
        for (; e0 + SCALE_ROWS <= E; e0 += SCALE_ROWS) {
            double sum[SCALE_ROWS] = {0.0};
            for (int t = 0; t < T; t++) {
                const double *row = K + (size_t)t * (size_t)E + (size_t)e0, d = d0[t];
                RS_UNROLL_LANES
                for (int i = 0; i < SCALE_ROWS; i++)
                    sum[i] += d * row[i];
            }
            for (int i = 0; i < SCALE_ROWS; i++)
                col[e0 + i] = sum[i];
        }
        for (int e = e0; e < E; e++)
            col[e] = 0.0;
        for (int t = 0; t < T && e0 < E; t++) {
            const double *row = K + (size_t)t * (size_t)E, d = d0[t];
            for (int e = e0; e < E; e++)
                col[e] += d * row[e];
        }
        RS_OMP_SIMD
        for (int e = 0; e < E; e++)
            col[e] = 1.0 / ((double)E * (col[e] > DBL_MIN ? col[e] : DBL_MIN));
        double total = 0.0;
        for (int e = 0; e < E; e++) {
            total += fabs(d1[e] - col[e]);
            d1[e] = col[e];
        }
        change = total / E;
        rounds++;
    }
    return rounds;
}

int rs_sinkhorn_scratch_init(rs_sinkhorn_scratch *x, int E)
{
    x->d1 = malloc((size_t)E * sizeof *x->d1);
    x->col = malloc((size_t)E * sizeof *x->col);
    x->plan = malloc((size_t)E * sizeof *x->plan);
    x->vals = malloc((size_t)E * sizeof *x->vals);
    x->ids = malloc((size_t)E * sizeof *x->ids);
    return x->d1 && x->col && x->plan && x->vals && x->ids ? 0 : -1;
}

int rs_sinkhorn_scratch_reserve(rs_sinkhorn_scratch *x, size_t n, int E, int scaled)
{
    return rs_balance_reserve(&x->kernel, &x->capacity[0], n * (size_t)E, sizeof *x->kernel) ||
                   (scaled && rs_balance_reserve(&x->kernel_t, &x->capacity[3], transposed_stride(n) * (size_t)E,
                                                 sizeof *x->kernel_t)) ||
                   rs_balance_reserve(&x->d0, &x->capacity[1], n, sizeof *x->d0) ||
                   rs_balance_reserve(&x->token, &x->capacity[2], n, sizeof *x->token)
               ? -1
               : 0;
}

void rs_sinkhorn_scratch_free(rs_sinkhorn_scratch *x)
{
    free(x->kernel);
    free(x->kernel_t);
    free(x->d0);
    free(x->token);
    free(x->d1);
    free(x->col);
    free(x->plan);
    free(x->vals);
    free(x->ids);
}

int rs_sinkhorn_pool_init(rs_sinkhorn_pool *p, int layers, int E, int scaled)
{
    p->scratch = NULL;
    p->scaled = scaled;
    if (rs_balance_slots_init(&p->slots, layers) != 0 ||
        !(p->scratch = calloc((size_t)p->slots.count, sizeof *p->scratch)))
        return -1;
    for (int i = 0; i < p->slots.count; i++)
        if (rs_sinkhorn_scratch_init(&p->scratch[i], E) != 0)
            return -1;
    return 0;
}

int rs_sinkhorn_pool_reserve(rs_sinkhorn_pool *p, const rs_chunk *c, rs_group group, int E, const char *router,
                             rs_error *err)
{
    size_t largest = (size_t)rs_balance_largest_group(c, group);
    for (int i = 0; i < p->slots.count; i++)
        if (rs_sinkhorn_scratch_reserve(&p->scratch[i], largest, E, p->scaled) != 0)
            return rs_fail(err, "router %s: out of memory for a group of %zu tokens", router, largest);
    return 0;
}

void rs_sinkhorn_pool_free(rs_sinkhorn_pool *p)
{
    for (int i = 0; p->scratch && i < p->slots.count; i++)
        rs_sinkhorn_scratch_free(&p->scratch[i]);
    free(p->scratch);
    p->scratch = NULL;
    rs_balance_slots_free(&p->slots);
}

RS_VECTOR_CLONES
void rs_sinkhorn_kernel(rs_sinkhorn_scratch *x, const rs_chunk *c, int layer, int m, int E, double eps)
{
    for (int j = 0; j < m; j++) {
        if (j + 1 < m)
            rs_balance_prefetch_row(rs_chunk_logits(c, x->token[j + 1], layer), E);
        const float *z = rs_chunk_logits(c, x->token[j], layer);
        double max = rs_balance_row_max(z, E);
        double *row = x->kernel + (size_t)j * (size_t)E;
        RS_OMP_SIMD /* the arguments, element-wise; then exp, which stays libm's */
        for (int e = 0; e < E; e++)
            row[e] = ((double)z[e] - max) / eps;
        for (int e = 0; e < E; e++)
            row[e] = exp(row[e]);
    }
}

void rs_sinkhorn_plan_topk(rs_sinkhorn_scratch *x, int j, int m, int E, int k, int32_t *ids)
{
    const double *row = x->kernel + (size_t)j * (size_t)E;
    for (int e = 0; e < E; e++) /* one token: the plan is exactly uniform, its rounding noise is not */
        x->plan[e] = m > 1 ? x->d1[e] * row[e] : 1.0;
    rs_balance_topk(x->plan, E, k, ids, x->vals);
}
