/* ema_penalty: vLLM's EMA load penalty. Experts live on ep_ranks ranks of
 * E / ep_ranks consecutive experts; an exponential moving average of the
 * assignments each rank received in earlier steps drives a penalty on the
 * logits of overloaded ranks:
 *   z'_e = z_e - lambda * max(0, ema[rank(e)] / max(mean(ema), 1) - 1),
 * then S = TopK(z', k), w = softmax(z')_S (renormalised by default, as the
 * adjusted logits then go through the model's usual top-k softmax).
 * After each step (one token group) ema = (1 - alpha) ema + alpha counts.
 *
 * Follows vLLM adjust_logits_ema: the mean is clamped to at least 1 slot,
 * one rank (ep_ranks = 1) gives no penalty. routers.md writes the penalty
 * without the clamp; it only matters while the mean EMA is below one slot. */
#include <math.h>
#include <stdlib.h>

#include "routers/common/balance_util.h"
#include "routers/common/token_row.h"
#include "routers/common/trace_checks.h"
#include "routesim/router.h"
#include "routesim/select.h"

typedef struct ema_layer {
    double *ema;     /* [ranks] */
    int64_t *count;  /* [ranks] assignments in the current step */
    double *penalty; /* [E] */
    double *adjusted, *prob, *vals;
    int32_t *ids;
} ema_layer;

typedef struct ema_state {
    int k, renorm, ranks, per_rank, L, E;
    double lambda, alpha;
    rs_group group;
    ema_layer *layers;
} ema_state;

static const rs_param_def ema_params[] = {
    {"k", RS_PARAM_INT, "2", 1, 1024, NULL, "experts per token"},
    {"lambda", RS_PARAM_FLOAT, "2", 0, 1e6, NULL, "penalty strength"},
    {"alpha", RS_PARAM_FLOAT, "0.1", 0, 1, NULL, "EMA smoothing factor (weight of the latest step)"},
    {"ep_ranks", RS_PARAM_INT, "0", 0, 1 << 20, NULL,
     "expert-parallel ranks, consecutive experts per rank (0 = one rank per expert); must divide num_experts"},
    {"renorm", RS_PARAM_BOOL, "1", 0, 1, NULL, "renormalise the k weights to sum to 1"},
    RS_BALANCE_GROUP_PARAM("step"),
};

static void ema_destroy(void *state)
{
    ema_state *s = state;
    if (!s)
        return;
    for (int l = 0; s->layers && l < s->L; l++) {
        ema_layer *m = &s->layers[l];
        free(m->ema);
        free(m->count);
        free(m->penalty);
        free(m->adjusted);
        free(m->prob);
        free(m->vals);
        free(m->ids);
    }
    free(s->layers);
    free(s);
}

static int ema_create(void **state, rs_router_shape *shape, const rs_params *params, const rs_router_setup *setup,
                      rs_error *err)
{
    const rs_trace_info *tr = setup->trace;
    int k = (int)rs_param_int(params, "k");
    int ranks = (int)rs_param_int(params, "ep_ranks");
    RS_TRY(rs_check_param_experts("ema_penalty", "k", k, tr, err));
    if (ranks == 0)
        ranks = tr->num_experts;
    RS_CHECK(tr->num_experts % ranks == 0, err,
             "router ema_penalty: parameter ep_ranks=%d does not divide num_experts=%d of %s", ranks,
             tr->num_experts, tr->path);
    ema_state *s = calloc(1, sizeof *s);
    RS_CHECK(s, err, "router ema_penalty: out of memory");
    s->k = k;
    s->ranks = ranks;
    s->per_rank = tr->num_experts / ranks;
    s->renorm = rs_param_bool(params, "renorm");
    s->lambda = rs_param_float(params, "lambda");
    s->alpha = rs_param_float(params, "alpha");
    s->group = rs_balance_group_param(params);
    s->L = tr->num_layers;
    s->E = tr->num_experts;
    s->layers = calloc((size_t)s->L, sizeof *s->layers);
    int ok = s->layers != NULL;
    for (int l = 0; ok && l < s->L; l++) {
        ema_layer *m = &s->layers[l];
        size_t E = (size_t)s->E;
        m->ema = calloc((size_t)ranks, sizeof *m->ema);
        m->count = calloc((size_t)ranks, sizeof *m->count);
        m->penalty = calloc(E, sizeof *m->penalty);
        m->adjusted = malloc(E * sizeof *m->adjusted);
        m->prob = malloc(E * sizeof *m->prob);
        m->vals = malloc(E * sizeof *m->vals);
        m->ids = malloc(E * sizeof *m->ids);
        ok = m->ema && m->count && m->penalty && m->adjusted && m->prob && m->vals && m->ids;
    }
    if (!ok) {
        ema_destroy(s);
        return rs_fail(err, "router ema_penalty: out of memory");
    }
    shape->kmax = k;
    shape->group = s->group;
    *state = s;
    return 0;
}

/* The penalty of each expert from the EMA the earlier steps left. */
RS_VECTOR_CLONES
static void compute_penalty(const ema_state *s, ema_layer *m)
{
    if (s->ranks <= 1) { /* vLLM: a single rank is never penalised */
        for (int e = 0; e < s->E; e++)
            m->penalty[e] = 0.0;
        return;
    }
    double mean = 0.0;
    for (int r = 0; r < s->ranks; r++)
        mean += m->ema[r];
    mean /= s->ranks;
    const double fair = mean > 1.0 ? mean : 1.0, lambda = s->lambda;
    if (s->per_rank == 1) { /* one expert per rank: element-wise, whole vectors */
        RS_OMP_SIMD
        for (int e = 0; e < s->E; e++) {
            double excess = m->ema[e] / fair - 1.0;
            m->penalty[e] = lambda * (excess > 0.0 ? excess : 0.0);
        }
        return;
    }
    for (int r = 0; r < s->ranks; r++) {
        double excess = m->ema[r] / fair - 1.0, penalty = lambda * (excess > 0.0 ? excess : 0.0);
        for (int e = r * s->per_rank; e < (r + 1) * s->per_rank; e++)
            m->penalty[e] = penalty;
    }
}

/* The largest of a[0..E) (-inf for none): RS_LANES lanes, then halving. It
 * only enters exp(a_e - max), where a zero's sign does not matter. */
__attribute__((always_inline)) static inline double lanes_max(const double *a, int E)
{
    double lane[RS_LANES];
    for (int j = 0; j < RS_LANES; j++)
        lane[j] = -INFINITY;
    int e = 0;
    for (; e + RS_LANES <= E; e += RS_LANES) {
        RS_OMP_SIMD
        for (int j = 0; j < RS_LANES; j++)
            lane[j] = a[e + j] > lane[j] ? a[e + j] : lane[j];
    }
    for (int j = 0; e + j < E; j++)
        lane[j] = a[e + j] > lane[j] ? a[e + j] : lane[j];
    for (int w = RS_LANES / 2; w > 0; w /= 2)
        for (int j = 0; j < w; j++)
            lane[j] = lane[j] > lane[j + w] ? lane[j] : lane[j + w];
    return lane[0];
}

RS_VECTOR_CLONES
static void route_token(const ema_state *s, ema_layer *m, const float *z, int32_t *ids, float *w)
{
    const int E = s->E, k = s->k;
    RS_OMP_SIMD
    for (int e = 0; e < E; e++)
        m->adjusted[e] = (double)z[e] - m->penalty[e];
    double max = lanes_max(m->adjusted, E);
    rs_balance_topk(m->adjusted, E, k, ids, m->vals);
    double total = 0.0, selected = 0.0;
    if (s->renorm) { /* the softmax's denominator cancels: only the k selected are needed */
        for (int j = 0; j < k; j++)
            m->prob[ids[j]] = exp(m->adjusted[ids[j]] - max);
    } else {
        for (int e = 0; e < E; e++)
            total += m->prob[e] = exp(m->adjusted[e] - max);
    }
    for (int j = 0; j < k; j++)
        selected += m->prob[ids[j]];
    double norm = s->renorm ? 1.0 / selected : 1.0 / total;
    for (int j = 0; j < k; j++) {
        w[j] = (float)(m->prob[ids[j]] * norm);
        m->count[ids[j] / s->per_rank]++;
    }
}

static void ema_route_layer(void *state, const rs_chunk *c, int layer, rs_decisions *out)
{
    const ema_state *s = state;
    ema_layer *m = &s->layers[layer];
    const rs_groups *groups = rs_balance_groups(c, s->group, layer, out);
    if (!groups)
        return;
    for (int g = 0; g < groups->count; g++) {
        int n = 0, valid = 0;
        const int32_t *tokens = rs_balance_group_tokens(groups, g, &n);
        compute_penalty(s, m);
        for (int r = 0; r < s->ranks; r++)
            m->count[r] = 0;
        for (int i = 0; i < n; i++) {
            int32_t *ids;
            float *w;
            if (i + 1 < n)
                rs_balance_prefetch_row(rs_chunk_logits(c, tokens[i + 1], layer), s->E);
            const float *z = rs_token_row(c, out, tokens[i], layer, &ids, &w);
            if (!z)
                continue;
            route_token(s, m, z, ids, w);
            valid++;
        }
        if (valid > 0) /* a step of skipped tokens leaves the EMA as it was */
            for (int r = 0; r < s->ranks; r++)
                m->ema[r] = (1.0 - s->alpha) * m->ema[r] + s->alpha * (double)m->count[r];
    }
}

static void ema_checkpoint(void *state, rs_state_io *io)
{
    ema_state *s = state;
    for (int l = 0; l < s->L; l++) {
        RS_STATE_ARRAY(io, s->layers[l].ema, s->ranks);
        RS_STATE_ARRAY(io, s->layers[l].count, s->ranks);
        RS_STATE_ARRAY(io, s->layers[l].penalty, s->E);
    }
}

static const rs_router_type ema_penalty_type = {
    .name = "ema_penalty",
    .summary = "top-k on logits minus a penalty for expert-parallel ranks whose EMA load exceeds the mean (vLLM)",
    .formula = "z'_e = z_e - lambda * max(0, ema[rank(e)] / max(mean(ema), 1) - 1); S = TopK(z', k); "
               "w = softmax(z')_S (/ sum_S when renorm = 1); after each step ema = (1 - alpha) ema + alpha counts",
    .source = "vLLM balance_routing_ema (adjust_logits_ema, VLLM_MOE_BALANCE_ROUTING_EMA)",
    .params = ema_params,
    .num_params = sizeof ema_params / sizeof ema_params[0],
    .flags = RS_ROUTER_CAUSAL | RS_ROUTER_STATEFUL | RS_ROUTER_GROUPED | RS_ROUTER_TOKEN_CHOICE,
    .needs = RS_NEEDS_LOGITS,
    .create = ema_create,
    .route_layer = ema_route_layer,
    .destroy = ema_destroy,
    .checkpoint = ema_checkpoint,
};

const rs_router_type *const rs_router_ema_penalty = &ema_penalty_type;
