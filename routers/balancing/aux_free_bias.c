/* aux_free_bias: Loss-Free Balancing. Each token selects TopK(score + b) and
 * is weighted by its unbiased score; after each token group every expert's
 * bias moves by u toward the mean load: b_e += u * sign(mean_load - load_e),
 * as Megatron's get_updated_expert_bias does once per step.
 *
 * b is kept as an integer number of u steps per layer and expert, so the bias
 * is exactly steps * u whatever the run length (Megatron accumulates float32
 * additions). Megatron applies the bias only with sigmoid scores; routers.md
 * asks for softmax too, and softmax is the default here. Groups decide with
 * the bias the earlier groups left, so the rule is causal. */
#include <stdlib.h>
#include <string.h>

#include "routers/common/balance_util.h"
#include "routers/common/token_row.h"
#include "routers/common/trace_checks.h"
#include "routesim/router.h"
#include "routesim/select.h"

typedef struct bias_layer {
    int64_t *steps; /* [E] b_e = steps[e] * u */
    int64_t *load;  /* [E] assignments in the current group */
    double *score, *biased, *vals;
    int32_t *ids;
} bias_layer;

typedef struct bias_state {
    int k, sigmoid, renorm, L, E;
    double u;
    rs_group group;
    bias_layer *layers;
} bias_state;

static const rs_param_def bias_params[] = {
    {"k", RS_PARAM_INT, "2", 1, 1024, NULL, "experts per token"},
    {"score", RS_PARAM_ENUM, "softmax", 0, 0, "softmax|sigmoid",
     "gating score (selected with the bias, weighted without)"},
    {"u", RS_PARAM_FLOAT, "0.001", 0, 1e3, NULL, "bias update rate per group"},
    {"renorm", RS_PARAM_BOOL, "0", 0, 1, NULL, "renormalise the k weights to sum to 1"},
    RS_BALANCE_GROUP_PARAM("batch"),
};

static void bias_destroy(void *state)
{
    bias_state *s = state;
    if (!s)
        return;
    for (int l = 0; s->layers && l < s->L; l++) {
        free(s->layers[l].steps);
        free(s->layers[l].load);
        free(s->layers[l].score);
        free(s->layers[l].biased);
        free(s->layers[l].vals);
        free(s->layers[l].ids);
    }
    free(s->layers);
    free(s);
}

static int bias_create(void **state, rs_router_shape *shape, const rs_params *params, const rs_router_setup *setup,
                       rs_error *err)
{
    const rs_trace_info *tr = setup->trace;
    int k = (int)rs_param_int(params, "k");
    RS_TRY(rs_check_param_experts("aux_free_bias", "k", k, tr, err));
    bias_state *s = calloc(1, sizeof *s);
    RS_CHECK(s, err, "router aux_free_bias: out of memory");
    s->k = k;
    s->sigmoid = strcmp(rs_param_str(params, "score"), "sigmoid") == 0;
    s->renorm = rs_param_bool(params, "renorm");
    s->u = rs_param_float(params, "u");
    s->group = rs_balance_group_param(params);
    s->L = tr->num_layers;
    s->E = tr->num_experts;
    s->layers = calloc((size_t)s->L, sizeof *s->layers);
    int ok = s->layers != NULL;
    for (int l = 0; ok && l < s->L; l++) {
        bias_layer *b = &s->layers[l];
        size_t E = (size_t)s->E;
        b->steps = calloc(E, sizeof *b->steps);
        b->load = calloc(E, sizeof *b->load);
        b->score = malloc(E * sizeof *b->score);
        b->biased = malloc(E * sizeof *b->biased);
        b->vals = malloc(E * sizeof *b->vals);
        b->ids = malloc(E * sizeof *b->ids);
        ok = b->steps && b->load && b->score && b->biased && b->vals && b->ids;
    }
    if (!ok) {
        bias_destroy(s);
        return rs_fail(err, "router aux_free_bias: out of memory");
    }
    shape->kmax = k;
    shape->scoring = s->sigmoid ? RS_SCORING_SIGMOID : RS_SCORING_SOFTMAX;
    shape->group = s->group;
    *state = s;
    return 0;
}

/* One token: select on score + b, weight with the score, count the load. */
RS_VECTOR_CLONES
static void route_token(const bias_state *s, bias_layer *b, const float *z, int32_t *ids, float *w)
{
    const int E = s->E, k = s->k;
    if (s->sigmoid)
        rs_balance_sigmoid(z, E, b->score);
    else
        rs_balance_softmax(z, E, b->score);
    RS_OMP_SIMD
    for (int e = 0; e < E; e++)
        b->biased[e] = b->score[e] + (double)b->steps[e] * s->u;
    rs_balance_topk(b->biased, E, k, ids, b->vals);
    double norm = rs_balance_weight_norm(b->score, ids, k, s->renorm);
    for (int j = 0; j < k; j++) {
        w[j] = (float)(b->score[ids[j]] * norm);
        b->load[ids[j]]++;
    }
}

/* b_e += u * sign(mean_load - load_e), compared in integers: E * load_e
 * against the total. */
static void update_bias(const bias_state *s, bias_layer *b)
{
    int64_t total = 0;
    for (int e = 0; e < s->E; e++)
        total += b->load[e];
    for (int e = 0; e < s->E; e++) {
        int64_t scaled = (int64_t)s->E * b->load[e];
        b->steps[e] += (total > scaled) - (total < scaled);
    }
}

static void bias_route_layer(void *state, const rs_chunk *c, int layer, rs_decisions *out)
{
    const bias_state *s = state;
    bias_layer *b = &s->layers[layer];
    const rs_groups *groups = rs_balance_groups(c, s->group, layer, out);
    if (!groups)
        return;
    for (int g = 0; g < groups->count; g++) {
        int n = 0, valid = 0;
        const int32_t *tokens = rs_balance_group_tokens(groups, g, &n);
        memset(b->load, 0, (size_t)s->E * sizeof *b->load);
        for (int i = 0; i < n; i++) {
            int32_t *ids;
            float *w;
            if (i + 1 < n)
                rs_balance_prefetch_row(rs_chunk_logits(c, tokens[i + 1], layer), s->E);
            const float *z = rs_token_row(c, out, tokens[i], layer, &ids, &w);
            if (!z) /* skipped: no experts, no load */
                continue;
            route_token(s, b, z, ids, w);
            valid++;
        }
        if (valid > 0)
            update_bias(s, b);
    }
}

static void bias_checkpoint(void *state, rs_state_io *io)
{
    bias_state *s = state;
    for (int l = 0; l < s->L; l++) /* load is counted afresh per group */
        RS_STATE_ARRAY(io, s->layers[l].steps, s->E);
}

static const rs_router_type aux_free_bias_type = {
    .name = "aux_free_bias",
    .summary = "Loss-Free Balancing: top-k on score + per-expert bias, the bias nudged toward the mean load per group",
    .formula = "s = softmax(z) or sigmoid(z); S = TopK(s + b, k); w_e = s_e (/ sum_S s when renorm = 1); after each "
               "group b_e += u * sign(mean_e' load_e' - load_e), load = assignments in the group",
    .source = "Loss-Free Balancing arXiv:2408.15664 (Megatron-LM moe_utils.py get_updated_expert_bias, "
              "topk_routing_with_score_function)",
    .params = bias_params,
    .num_params = sizeof bias_params / sizeof bias_params[0],
    .flags = RS_ROUTER_CAUSAL | RS_ROUTER_STATEFUL | RS_ROUTER_GROUPED | RS_ROUTER_TOKEN_CHOICE,
    .needs = RS_NEEDS_LOGITS,
    .create = bias_create,
    .route_layer = bias_route_layer,
    .destroy = bias_destroy,
    .checkpoint = bias_checkpoint,
};

const rs_router_type *const rs_router_aux_free_bias = &aux_free_bias_type;
