/* sinkhorn: S-BASE routing. Per token group of T tokens, K = exp(z) is
 * scaled to a balanced transport plan: from d1 = 1, alternate
 * d0 = 1 / (T (K d1)) and d1 = 1 / (E (K^T d0)) until the mean absolute
 * change of d1 is at most tol (or max_iter rounds); each token then takes
 * S = TopK(d1 K d0, k), weighted by the unbalanced router output: p_S for
 * k > 1, sigmoid(z)_S for k = 1. The plan depends on the whole group: not
 * causal.
 *
 * As Megatron's sinkhorn() and TopKRouter.sinkhorn_load_balancing, with two
 * conventions of routers.md: no 1e-8 added to the sums (a positive floor
 * only guards underflow), and a max_iter cap (Megatron loops until tol).
 * Each row of K is taken as exp(z - max_t z): a row factor only rescales d0,
 * so d1 and the plan are those of exp(z), without overflow. d0 is constant
 * along a row, so the selection ranks d1_e K_te. A group of one token has
 * the uniform plan 1/E (its column sums force it): experts 0..k-1 by the
 * tie rule, where Megatron would pick by rounding noise. */
#include <math.h>
#include <stdlib.h>

#include "routers/common/balance_util.h"
#include "routers/common/trace_checks.h"
#include "routesim/router.h"

typedef struct sinkhorn_state {
    int k, max_iter, L, E;
    double tol;
    rs_group group;
    rs_sinkhorn_pool pool;
} sinkhorn_state;

static const rs_param_def sinkhorn_params[] = {
    {"k", RS_PARAM_INT, "1", 1, 1024, NULL, "experts per token"},
    {"tol", RS_PARAM_FLOAT, "1e-4", 0, 1e6, NULL, "stop when the mean absolute change of d1 is at most this"},
    {"max_iter", RS_PARAM_INT, "1000", 1, 1e7, NULL, "most scaling rounds per group"},
    RS_BALANCE_GROUP_PARAM("batch"),
};

static void sinkhorn_destroy(void *state)
{
    sinkhorn_state *s = state;
    if (!s)
        return;
    rs_sinkhorn_pool_free(&s->pool);
    free(s);
}

static int sinkhorn_create(void **state, rs_router_shape *shape, const rs_params *params,
                           const rs_router_setup *setup, rs_error *err)
{
    const rs_trace_info *tr = setup->trace;
    int k = (int)rs_param_int(params, "k");
    RS_TRY(rs_check_param_experts("sinkhorn", "k", k, tr, err));
    sinkhorn_state *s = calloc(1, sizeof *s);
    RS_CHECK(s, err, "router sinkhorn: out of memory");
    s->k = k;
    s->tol = rs_param_float(params, "tol");
    s->max_iter = (int)rs_param_int(params, "max_iter");
    s->group = rs_balance_group_param(params);
    s->L = tr->num_layers;
    s->E = tr->num_experts;
    int ok = rs_sinkhorn_pool_init(&s->pool, s->L, s->E, 1) == 0;
    if (!ok) {
        sinkhorn_destroy(s);
        return rs_fail(err, "router sinkhorn: out of memory");
    }
    shape->kmax = k;
    shape->group = s->group;
    *state = s;
    return 0;
}

static int sinkhorn_prepare_chunk(void *state, const rs_chunk *c, rs_error *err)
{
    sinkhorn_state *s = state;
    return rs_sinkhorn_pool_reserve(&s->pool, c, s->group, s->E, "sinkhorn", err);
}

static void route_group(const sinkhorn_state *s, rs_sinkhorn_scratch *x, const rs_chunk *c, int layer, int m,
                        rs_decisions *out)
{
    const int E = s->E, k = s->k;
    rs_sinkhorn_kernel(x, c, layer, m, E, 1.0);
    rs_balance_sinkhorn(x->kernel, m, E, s->tol, s->max_iter, x->d0, x->d1, x->col, x->kernel_t);
    for (int j = 0; j < m; j++) {
        int t = x->token[j];
        const float *z = rs_chunk_logits(c, t, layer);
        int32_t *ids = out->ids + rs_decision_row(c, out, t, layer);
        float *w = out->weights + rs_decision_row(c, out, t, layer);
        rs_sinkhorn_plan_topk(x, j, m, E, k, ids);
        if (k == 1) {
            w[0] = (float)(1.0 / (1.0 + exp(-(double)z[ids[0]])));
        } else {
            double max, log_norm = rs_balance_log_norm(z, E, &max);
            for (int i = 0; i < k; i++)
                w[i] = (float)exp(((double)z[ids[i]] - max) - log_norm);
        }
    }
}

static void sinkhorn_route_layer(void *state, const rs_chunk *c, int layer, rs_decisions *out)
{
    sinkhorn_state *s = state;
    const rs_groups *groups = rs_balance_groups(c, s->group, layer, out);
    if (!groups)
        return;
    int slot = rs_balance_slot_take(&s->pool.slots);
    rs_sinkhorn_scratch *x = &s->pool.scratch[slot];
    for (int g = 0; g < groups->count; g++) {
        int n = 0;
        const int32_t *tokens = rs_balance_group_tokens(groups, g, &n);
        int m = rs_balance_valid_tokens(c, layer, out, tokens, n, x->token);
        if (m > 0)
            route_group(s, x, c, layer, m, out);
    }
    rs_balance_slot_give(&s->pool.slots, slot);
}

static const rs_router_type sinkhorn_type = {
    .name = "sinkhorn",
    .summary = "S-BASE: top-k of a Sinkhorn-balanced transport plan over each token group (not causal)",
    .formula = "per group of T tokens: K = exp(z); from d1 = 1 alternate d0 = 1/(T (K d1)), d1 = 1/(E (K^T d0)) until "
               "mean |delta d1| <= tol or max_iter; S = TopK(d1 K d0, k); w = p_S (k > 1) or sigmoid(z)_S (k = 1)",
    .source = "S-BASE arXiv:2202.01169 (Megatron-LM moe_utils.py sinkhorn, router.py "
              "TopKRouter.sinkhorn_load_balancing)",
    .params = sinkhorn_params,
    .num_params = sizeof sinkhorn_params / sizeof sinkhorn_params[0],
    .flags = RS_ROUTER_GROUPED | RS_ROUTER_TOKEN_CHOICE,
    .needs = RS_NEEDS_LOGITS,
    .create = sinkhorn_create,
    .prepare_chunk = sinkhorn_prepare_chunk,
    .route_layer = sinkhorn_route_layer,
    .destroy = sinkhorn_destroy,
    .checkpoint = rs_router_no_state, /* scratch per group or chunk */
};

const rs_router_type *const rs_router_sinkhorn = &sinkhorn_type;
