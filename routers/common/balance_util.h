/* Shared parts of the balancing routers (docs/routers.md section B): the
 * `group` parameter, scores in double precision, selections with the
 * (-value, index) tie rule, per-layer scratch that grows with the largest
 * group, and the Sinkhorn scaling. Plain loops, no callbacks. */
#ifndef ROUTESIM_BALANCE_UTIL_H
#define ROUTESIM_BALANCE_UTIL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "routesim/chunk.h"
#include "routesim/error.h"
#include "routesim/params.h"

/* The `group` parameter row; its choices follow rs_group from SEQUENCE on,
 * like the capacity stage's, so token-choice routers share it with the stage. */
#define RS_BALANCE_GROUP_PARAM(default_value) \
    {"group", RS_PARAM_ENUM, default_value, 0, 0, "sequence|batch|step", "token group the rule decides over"}

/* The rs_group named by the `group` parameter. */
rs_group rs_balance_group_param(const rs_params *p);

/* The tokens of group g, in token order. */
static inline const int32_t *rs_balance_group_tokens(const rs_groups *groups, int g, int *n)
{
    *n = groups->start[g + 1] - groups->start[g];
    return groups->tokens + groups->start[g];
}

/* The chunk's groups of `mode`; NULL after writing -1 / 0 to every row of
 * the layer when the chunk comes without them (the engine always builds them). */
const rs_groups *rs_balance_groups(const rs_chunk *c, rs_group mode, int layer, rs_decisions *out);

/* Pads the rows of the skipped tokens among tokens[0..n) and lists the
 * others in valid, in token order; returns how many are valid. */
int rs_balance_valid_tokens(const rs_chunk *c, int layer, rs_decisions *out, const int32_t *tokens, int n,
                            int32_t *valid);

/* Tokens in the largest of the groups (0 when there are none). */
int rs_groups_largest(const rs_groups *groups);

/* Tokens in the largest group of the chunk (0 for an empty chunk). */
int rs_balance_largest_group(const rs_chunk *c, rs_group mode);

/* Scratch the size of a group times E is too large to keep per layer, so
 * layers routed at the same time share a few slots (one per OpenMP thread,
 * at most one per layer): route_layer takes a free slot and gives it back,
 * waiting for one when a larger team holds them all. */
typedef struct rs_balance_slots {
    int count;
    atomic_int *taken;
} rs_balance_slots;

int rs_balance_slots_init(rs_balance_slots *s, int layers);
void rs_balance_slots_free(rs_balance_slots *s);
int rs_balance_slot_take(rs_balance_slots *s);
void rs_balance_slot_give(rs_balance_slots *s, int slot);

/* Doubles between the starts of columns of n values that are filled side by
 * side: n rounded up to whole cache lines, plus one line, so that the
 * columns do not all fall into the same cache set when n is a multiple of
 * 512 (4 KiB apart). */
static inline size_t rs_balance_column_stride(size_t n) { return (n + 7) / 8 * 8 + 8; }

/* Grows *buf to hold count elements of elem_size bytes; -1 when out of memory. */
int rs_balance_reserve(void *buf_ptr, size_t *capacity, size_t count, size_t elem_size);

/* Asks for a logit row ahead of its use: rows of successive tokens lie a
 * whole token's L x E values apart, too far for the hardware prefetcher, and
 * a row's exps take long enough to hide the next row's fetch. */
static inline void rs_balance_prefetch_row(const float *z, int E)
{
    for (int e = 0; e < E; e += 16) /* 16 floats: one 64-byte line */
        __builtin_prefetch(z + e);
}

/* The row's maximum as double, the value (and the zero's sign) the loop
 * `max = z[0]; max = z[e] > max ? z[e] : max` gives. */
double rs_balance_row_max(const float *z, int E);

/* log(sum_e exp(z_e - max)) in double, the row's maximum in *max: the
 * log-sum-exp is *max plus it, but log p_e = (z_e - *max) - it keeps its
 * digits where *max dwarfs it (logits of 1e20). */
double rs_balance_log_norm(const float *z, int E, double *max);

/* row[e] /= sum for e < E. */
void rs_balance_divide(double *row, int E, double sum);

/* Scores of one row in double: softmax (exp(z - lse)) or sigmoid. */
void rs_balance_softmax(const float *z, int E, double *p);
void rs_balance_sigmoid(const float *z, int E, double *s);

/* The weight factor of k selected experts: 1 / sum over them of score
 * (0 when that sum is 0) with renorm, else 1. */
static inline double rs_balance_weight_norm(const double *score, const int32_t *ids, int k, int renorm)
{
    if (!renorm)
        return 1.0;
    double sum = 0.0;
    for (int j = 0; j < k; j++)
        sum += score[ids[j]];
    return sum > 0.0 ? 1.0 / sum : 0.0;
}

/* Indices of the k largest of v[0..n) in (-v, index) order, their values in
 * vals. 1 <= k <= n. Returns 1 when v holds a NaN (an insertion keeps a NaN
 * met while the list is short), else 0. */
int rs_balance_topk(const double *v, int n, int k, int32_t *idx, double *vals);

/* Moves the c best of key[0..n) (larger first, ties to the lower index)
 * to key[0..c), in index order, and their indices to pos[0..c); the rest of
 * both arrays is scratch. Linear in n (radix selection on the bits of the
 * doubles; -0 and +0 tie). */
void rs_balance_select_best(double *key, int32_t *pos, int n, int c);

/* The kth largest (1-based) of v[0..n); pos is scratch for n indices. */
double rs_balance_kth_largest(double *v, int32_t *pos, int n, int kth);

/* Sinkhorn scaling of K [T x E] (row-major, positive): from d1 = 1, repeats
 * d0 = 1 / (T (K d1)), d1 = 1 / (E (K^T d0)) until the mean absolute change
 * of d1 is at most tol or max_iter rounds ran (tol < 0: exactly max_iter).
 * col is scratch for E values, kt for K transposed (the size
 * rs_sinkhorn_scratch_reserve gives kernel_t). Returns the rounds run. */
int rs_balance_sinkhorn(const double *K, int T, int E, double tol, int max_iter, double *d0, double *d1,
                        double *col, double *kt);

/* Working space of one layer being scaled (one per slot): the group's
 * kernel [T x E], d0 [T] and tokens, grown with the largest group, and [E]
 * vectors. */
typedef struct rs_sinkhorn_scratch {
    double *kernel, *d0, *kernel_t; /* kernel_t: rs_balance_sinkhorn's transposed kernel */
    int32_t *token;
    size_t capacity[4];
    double *d1, *col, *plan, *vals; /* [E] */
    int32_t *ids;                   /* [E] */
} rs_sinkhorn_scratch;

/* The [E] vectors; -1 when out of memory (free it either way). */
int rs_sinkhorn_scratch_init(rs_sinkhorn_scratch *x, int E);
/* Room for a group of n tokens, with the transposed kernel when scaled
 * (for rs_balance_sinkhorn); -1 when out of memory. */
int rs_sinkhorn_scratch_reserve(rs_sinkhorn_scratch *x, size_t n, int E, int scaled);
void rs_sinkhorn_scratch_free(rs_sinkhorn_scratch *x);

/* One scratch per slot, for the Sinkhorn routers. */
typedef struct rs_sinkhorn_pool {
    rs_balance_slots slots;
    rs_sinkhorn_scratch *scratch; /* [slots.count] */
    int scaled;                   /* the slots run rs_balance_sinkhorn */
} rs_sinkhorn_pool;

/* -1 when out of memory (free it either way). scaled: for routers that run
 * rs_balance_sinkhorn on the kernel. */
int rs_sinkhorn_pool_init(rs_sinkhorn_pool *p, int layers, int E, int scaled);
/* Room in every slot for the largest group of the chunk (a router's
 * prepare_chunk); -1 with "router NAME: out of memory ..." when there is none. */
int rs_sinkhorn_pool_reserve(rs_sinkhorn_pool *p, const rs_chunk *c, rs_group group, int E, const char *router,
                             rs_error *err);
void rs_sinkhorn_pool_free(rs_sinkhorn_pool *p);
/* The kernel rows of the tokens x->token[0..m) at layer:
 * exp((z - max_e z) / eps), a row factor that leaves the plan unchanged. */
void rs_sinkhorn_kernel(rs_sinkhorn_scratch *x, const rs_chunk *c, int layer, int m, int E, double eps);
/* The k largest of the plan row of token j of the m scaled ones, d1_e K_je
 * (d0_j scales the whole row), into ids, their values into x->vals. */
void rs_sinkhorn_plan_topk(rs_sinkhorn_scratch *x, int j, int m, int E, int k, int32_t *ids);

#endif
