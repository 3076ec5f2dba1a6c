/* zero_experts: MoE++'s zero-computation experts. The last slots of the
 * trace's experts are constant, copy and zero experts (in that order, as
 * SkyworkAI/MoE-plus-plus moe_plus_plus_layer.py builds Experts: FFN experts,
 * then `Constant` constant experts, one copy expert, one zero expert).
 * gating(): softmax over all, top-k (MOE_TOP_K = 2), the zero expert's
 * gate set to 0, the k gates renormalised by their sum. */
#include <math.h>
#include <stdlib.h>

#include "routers/common/rank_sort.h"
#include "routers/common/token_row.h"
#include "routers/common/trace_checks.h"
#include "routesim/router.h"

typedef struct zero_state {
    int k, ffn, zero_from; /* experts [0, ffn) are FFNs; [zero_from, E) are zero experts */
    int emit_free;
} zero_state;

static const rs_param_def zero_params[] = {
    {"n_zero", RS_PARAM_INT, "1", 0, RS_RANK_MAX_E, NULL, "zero experts (output 0): the last slots"},
    {"n_copy", RS_PARAM_INT, "1", 0, RS_RANK_MAX_E, NULL, "copy experts (output = input): before the zero ones"},
    {"n_const", RS_PARAM_INT, "2", 0, RS_RANK_MAX_E, NULL, "constant experts: before the copy ones"},
    {"k", RS_PARAM_INT, "2", 1, RS_RANK_MAX_E, NULL, "experts per token (MOE_TOP_K)"},
    {"emit_free", RS_PARAM_BOOL, "0", 0, 1, NULL,
     "also emit the zero-computation experts (else only FFN experts appear in decisions)"},
};

static int zero_create(void **state, rs_router_shape *shape, const rs_params *params, const rs_router_setup *setup,
                       rs_error *err)
{
    const rs_trace_info *tr = setup->trace;
    const int E = tr->num_experts;
    int n_zero = (int)rs_param_int(params, "n_zero"), n_copy = (int)rs_param_int(params, "n_copy");
    int n_const = (int)rs_param_int(params, "n_const"), k = (int)rs_param_int(params, "k");
    RS_TRY(rs_check_experts_at_most("zero_experts", RS_RANK_MAX_E, tr, err));
    RS_CHECK(n_zero + n_copy + n_const < E, err,
             "router zero_experts: parameters n_zero + n_copy + n_const = %d leave no FFN expert among "
             "num_experts=%d of %s",
             n_zero + n_copy + n_const, E, tr->path);
    RS_TRY(rs_check_param_experts("zero_experts", "k", k, tr, err));
    zero_state *s = malloc(sizeof *s);
    RS_CHECK(s, err, "router zero_experts: out of memory");
    s->k = k;
    s->ffn = E - n_zero - n_copy - n_const;
    s->zero_from = E - n_zero;
    s->emit_free = rs_param_bool(params, "emit_free");
    shape->kmax = k;
    *state = s;
    return 0;
}

RS_VECTOR_CLONES
static void zero_route_layer(void *state, const rs_chunk *c, int layer, rs_decisions *out)
{
    const zero_state *s = state;
    const int E = c->E, k = s->k;
    rs_rank_scratch scratch;
    for (int t = 0; t < c->n; t++) {
        int32_t *ids;
        float *w;
        const float *z = rs_token_row(c, out, t, layer, &ids, &w);
        if (!z)
            continue;
        rs_rank_top(z, E, k, &scratch);
        /* gates p_S renormalised with the zero experts' gates set to 0 */
        double top = z[scratch.order[0]], sum = 0.0;
        for (int j = 0; j < k; j++) {
            int e = scratch.order[j];
            scratch.vals[j] = e >= s->zero_from ? 0.0f : (float)exp((double)z[e] - top);
            sum += scratch.vals[j];
        }
        int m = 0;
        for (int j = 0; j < k; j++) {
            int e = scratch.order[j];
            if (!s->emit_free && e >= s->ffn)
                continue;
            ids[m] = e;
            w[m++] = sum > 0.0 ? (float)(scratch.vals[j] / sum) : 0.0f;
        }
        rs_pad_row(ids, w, m, out->kmax);
    }
}

static void zero_destroy(void *state) { free(state); }

static const rs_router_type zero_type = {
    .name = "zero_experts",
    .summary = "MoE++: the last expert slots are constant / copy / zero experts that cost no FLOPs",
    .formula = "slots: FFN [0, F), constant [F, F + n_const), copy [.., E - n_zero), zero [E - n_zero, E) with "
               "F = E - n_const - n_copy - n_zero; S = TopK(p, k); g_e = p_e, 0 for zero experts; w_e = g_e / sum_S g "
               "(all 0 when only zero experts are chosen); decisions hold the FFN experts of S in rank order "
               "(emit_free = 1: all of S, zero experts with weight 0), -1 padding to k",
    .source = "MoE++ arXiv:2410.07348 (SkyworkAI/MoE-plus-plus MoE++/moe_plus_plus_layer.py gating, Experts)",
    .params = zero_params,
    .num_params = sizeof zero_params / sizeof zero_params[0],
    .flags = RS_ROUTER_CAUSAL | RS_ROUTER_TOKEN_CHOICE,
    .needs = RS_NEEDS_LOGITS,
    .create = zero_create,
    .route_layer = zero_route_layer,
    .destroy = zero_destroy,
};

const rs_router_type *const rs_router_zero_experts = &zero_type;
