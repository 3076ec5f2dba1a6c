/* selective_sinkhorn: an approximation of Selective Sinkhorn Routing (SSR).
 * A fraction of the token groups is routed through an entropic transport
 * plan with uniform marginals, P = diag(d0) exp(z / eps) diag(d1) after
 * `iters` Sinkhorn rounds; each token there takes S = TopK(P_t, k) with gates
 * from the plan, w = P_tS / sum_S P_t. Every other group uses plain top-k of
 * the softmax, renormalised. The paper does not publish which batches get
 * the transport step; here group g of the run (counted per layer in token
 * order) is selected when (g q) mod 2^20 < q with q = round(fraction 2^20):
 * evenly spaced, starting with the first group, exactly `fraction` in the
 * long run. A selected group of one token has the uniform plan: experts
 * 0..k-1, gates 1/k. Selected groups look at the whole group: not causal. */
#include <math.h>
#include <stdlib.h>

#include "routers/common/balance_util.h"
#include "routers/common/trace_checks.h"
#include "routesim/router.h"
#include "routesim/select.h"

#define SELECT_DENOMINATOR (1u << 20)

typedef struct selective_state {
    int k, iters, L, E;
    uint64_t quota; /* q: selected groups per 2^20 */
    double eps;
    rs_group group;
    uint64_t *groups_seen; /* [L] */
    rs_sinkhorn_pool pool;
} selective_state;

static const rs_param_def selective_params[] = {
    {"k", RS_PARAM_INT, "2", 1, 1024, NULL, "experts per token"},
    {"fraction", RS_PARAM_FLOAT, "0.1", 0, 1, NULL, "share of token groups routed through the transport plan"},
    {"eps", RS_PARAM_FLOAT, "1", 1e-6, 1e6, NULL, "entropic regularisation: the kernel is exp(z / eps)"},
    {"iters", RS_PARAM_INT, "3", 1, 1e6, NULL, "Sinkhorn rounds per selected group"},
    RS_BALANCE_GROUP_PARAM("batch"),
};

static void selective_destroy(void *state)
{
    selective_state *s = state;
    if (!s)
        return;
    rs_sinkhorn_pool_free(&s->pool);
    free(s->groups_seen);
    free(s);
}

static int selective_create(void **state, rs_router_shape *shape, const rs_params *params,
                            const rs_router_setup *setup, rs_error *err)
{
    const rs_trace_info *tr = setup->trace;
    int k = (int)rs_param_int(params, "k");
    RS_TRY(rs_check_param_experts("selective_sinkhorn", "k", k, tr, err));
    selective_state *s = calloc(1, sizeof *s);
    RS_CHECK(s, err, "router selective_sinkhorn: out of memory");
    s->k = k;
    s->quota = (uint64_t)llround(rs_param_float(params, "fraction") * SELECT_DENOMINATOR);
    s->eps = rs_param_float(params, "eps");
    s->iters = (int)rs_param_int(params, "iters");
    s->group = rs_balance_group_param(params);
    s->L = tr->num_layers;
    s->E = tr->num_experts;
    s->groups_seen = calloc((size_t)s->L, sizeof *s->groups_seen);
    int ok = s->groups_seen && rs_sinkhorn_pool_init(&s->pool, s->L, s->E, 1) == 0;
    if (!ok) {
        selective_destroy(s);
        return rs_fail(err, "router selective_sinkhorn: out of memory");
    }
    shape->kmax = k;
    shape->group = s->group;
    *state = s;
    return 0;
}

static int selective_prepare_chunk(void *state, const rs_chunk *c, rs_error *err)
{
    selective_state *s = state;
    return rs_sinkhorn_pool_reserve(&s->pool, c, s->group, s->E, "selective_sinkhorn", err);
}

/* Gates from the transport plan: TopK of the plan row, normalised over S. */
static void route_with_plan(const selective_state *s, rs_sinkhorn_scratch *x, const rs_chunk *c, int layer, int m,
                            rs_decisions *out)
{
    const int E = s->E, k = s->k;
    rs_sinkhorn_kernel(x, c, layer, m, E, s->eps);
    rs_balance_sinkhorn(x->kernel, m, E, -1.0, s->iters, x->d0, x->d1, x->col, x->kernel_t);
    for (int j = 0; j < m; j++) {
        int t = x->token[j];
        int32_t *ids = out->ids + rs_decision_row(c, out, t, layer);
        float *w = out->weights + rs_decision_row(c, out, t, layer);
        rs_sinkhorn_plan_topk(x, j, m, E, k, ids);
        double sum = 0.0;
        for (int i = 0; i < k; i++)
            sum += x->vals[i];
        for (int i = 0; i < k; i++)
            w[i] = (float)(sum > 0.0 ? x->vals[i] / sum : 1.0 / k);
    }
}

/* Plain top-k of the softmax, renormalised over S. */
RS_VECTOR_CLONES
static void route_plain(const selective_state *s, rs_sinkhorn_scratch *x, const rs_chunk *c, int layer, int m,
                        rs_decisions *out)
{
    const int E = s->E, k = s->k;
    for (int j = 0; j < m; j++) {
        int t = x->token[j];
        if (j + 1 < m)
            rs_balance_prefetch_row(rs_chunk_logits(c, x->token[j + 1], layer), E);
        const float *z = rs_chunk_logits(c, t, layer);
        RS_OMP_SIMD
        for (int e = 0; e < E; e++)
            x->plan[e] = z[e];
        int32_t *ids = out->ids + rs_decision_row(c, out, t, layer);
        float *w = out->weights + rs_decision_row(c, out, t, layer);
        rs_balance_topk(x->plan, E, k, ids, x->vals);
        double sum = 0.0;
        for (int i = 0; i < k; i++)
            sum += x->vals[i] = exp(x->vals[i] - x->vals[0]);
        for (int i = 0; i < k; i++)
            w[i] = (float)(x->vals[i] / sum);
    }
}

static void selective_route_layer(void *state, const rs_chunk *c, int layer, rs_decisions *out)
{
    selective_state *s = state;
    const rs_groups *groups = rs_balance_groups(c, s->group, layer, out);
    if (!groups)
        return;
    int slot = rs_balance_slot_take(&s->pool.slots);
    rs_sinkhorn_scratch *x = &s->pool.scratch[slot];
    for (int g = 0; g < groups->count; g++) {
        int n = 0;
        const int32_t *tokens = rs_balance_group_tokens(groups, g, &n);
        int m = rs_balance_valid_tokens(c, layer, out, tokens, n, x->token);
        uint64_t index = s->groups_seen[layer]++;
        int selected = (index * s->quota) % SELECT_DENOMINATOR < s->quota;
        if (m > 0 && selected)
            route_with_plan(s, x, c, layer, m, out);
        else if (m > 0)
            route_plain(s, x, c, layer, m, out);
    }
    rs_balance_slot_give(&s->pool.slots, slot);
}

static void selective_checkpoint(void *state, rs_state_io *io)
{
    selective_state *s = state;
    RS_STATE_ARRAY(io, s->groups_seen, s->L); /* the pool is per-group scratch */
}

static const rs_router_type selective_sinkhorn_type = {
    .name = "selective_sinkhorn",
    .summary = "Sinkhorn transport-plan gates on an evenly spaced fraction of token groups, plain top-k elsewhere "
               "(approximation of SSR)",
    .formula = "group g selected when (g q) mod 2^20 < q, q = round(fraction 2^20); selected: P = diag(d0) exp(z/eps) "
               "diag(d1) after iters Sinkhorn rounds (rows 1/T, columns 1/E), S = TopK(P_t, k), w = P_tS / sum_S P_t; "
               "otherwise S = TopK(z, k), w = p_S / sum_S p",
    .source = "Selective Sinkhorn Routing arXiv:2511.08972 (approximation: the paper's selection rule is unpublished)",
    .params = selective_params,
    .num_params = sizeof selective_params / sizeof selective_params[0],
    .flags = RS_ROUTER_STATEFUL | RS_ROUTER_GROUPED | RS_ROUTER_TOKEN_CHOICE,
    .needs = RS_NEEDS_LOGITS,
    .create = selective_create,
    .prepare_chunk = selective_prepare_chunk,
    .route_layer = selective_route_layer,
    .destroy = selective_destroy,
    .checkpoint = selective_checkpoint,
};

const rs_router_type *const rs_router_selective_sinkhorn = &selective_sinkhorn_type;
