/* quantile_balance: Megatron's quantile balancing. Tokens select
 * TopK(z - beta, k) with the per-expert dual variable beta the earlier groups
 * left; after each group, with alpha_t the (k+1)-th largest z_t - beta of
 * token t and C = floor(m k / E) for the group's m tokens, expert e's new
 * value is the (C+1)-th largest of z_te - alpha_t over the group: at that
 * offset about C tokens would have picked e. As in Megatron the new beta is
 * ema * beta + (1 - ema) * beta_local, re-centred to mean 0 (a constant shift
 * changes no selection).
 *
 * Megatron averages beta_local over the micro-batches of a global batch and
 * updates once per step; here one group is one step. Weights: Megatron
 * gathers the score function at the selected experts (softmax over the k
 * logits, i.e. renormalised, or sigmoid normalised for k > 1); renorm = 1
 * renormalises either score over the k. */
#include <stdlib.h>
#include <string.h>

#include "routers/common/balance_util.h"
#include "routers/common/token_row.h"
#include "routesim/router.h"

/* Columns gathered per pass over the group's rows: 16 floats, a cache line. */
#define COLUMN_BLOCK 16

typedef struct quantile_layer {
    double *beta;                   /* [E] */
    double *adjusted, *score, *vals; /* [E + 1] row scratch */
    int32_t *ids;                   /* [E + 1] */
    /* per group, grown in prepare_chunk */
    double *alpha, *column; /* column: COLUMN_BLOCK columns of the group */
    int32_t *token, *pos;
    size_t capacity[4];
} quantile_layer;

typedef struct quantile_state {
    int k, sigmoid, renorm, L, E;
    double ema;
    rs_group group;
    quantile_layer *layers;
} quantile_state;

static const rs_param_def quantile_params[] = {
    {"k", RS_PARAM_INT, "2", 1, 1024, NULL, "experts per token (below num_experts)"},
    {"score", RS_PARAM_ENUM, "softmax", 0, 0, "softmax|sigmoid", "score the weights are taken from"},
    {"renorm", RS_PARAM_BOOL, "1", 0, 1, NULL, "renormalise the k weights to sum to 1"},
    {"ema", RS_PARAM_FLOAT, "0", 0, 1, NULL,
     "weight of the previous beta in the update (Megatron quantile_balancing_ema)"},
    RS_BALANCE_GROUP_PARAM("batch"),
};

static void quantile_destroy(void *state)
{
    quantile_state *s = state;
    if (!s)
        return;
    for (int l = 0; s->layers && l < s->L; l++) {
        quantile_layer *q = &s->layers[l];
        free(q->beta);
        free(q->adjusted);
        free(q->score);
        free(q->vals);
        free(q->ids);
        free(q->alpha);
        free(q->column);
        free(q->token);
        free(q->pos);
    }
    free(s->layers);
    free(s);
}

static int quantile_create(void **state, rs_router_shape *shape, const rs_params *params,
                           const rs_router_setup *setup, rs_error *err)
{
    const rs_trace_info *tr = setup->trace;
    int k = (int)rs_param_int(params, "k");
    RS_CHECK(k < tr->num_experts, err,
             "router quantile_balance: parameter k=%d must be below num_experts=%d of %s (the update reads the "
             "(k+1)-th expert)",
             k, tr->num_experts, tr->path);
    quantile_state *s = calloc(1, sizeof *s);
    RS_CHECK(s, err, "router quantile_balance: out of memory");
    s->k = k;
    s->sigmoid = strcmp(rs_param_str(params, "score"), "sigmoid") == 0;
    s->renorm = rs_param_bool(params, "renorm");
    s->ema = rs_param_float(params, "ema");
    s->group = rs_balance_group_param(params);
    s->L = tr->num_layers;
    s->E = tr->num_experts;
    s->layers = calloc((size_t)s->L, sizeof *s->layers);
    int ok = s->layers != NULL;
    for (int l = 0; ok && l < s->L; l++) {
        quantile_layer *q = &s->layers[l];
        size_t E = (size_t)s->E + 1;
        q->beta = calloc(E, sizeof *q->beta);
        q->adjusted = malloc(E * sizeof *q->adjusted);
        q->score = malloc(E * sizeof *q->score);
        q->vals = malloc(E * sizeof *q->vals);
        q->ids = malloc(E * sizeof *q->ids);
        ok = q->beta && q->adjusted && q->score && q->vals && q->ids;
    }
    if (!ok) {
        quantile_destroy(s);
        return rs_fail(err, "router quantile_balance: out of memory");
    }
    shape->kmax = k;
    shape->scoring = s->sigmoid ? RS_SCORING_SIGMOID : RS_SCORING_SOFTMAX;
    shape->group = s->group;
    *state = s;
    return 0;
}

static int quantile_prepare_chunk(void *state, const rs_chunk *c, rs_error *err)
{
    quantile_state *s = state;
    size_t n = (size_t)rs_balance_largest_group(c, s->group);
    for (int l = 0; l < s->L; l++) {
        quantile_layer *q = &s->layers[l];
        if (rs_balance_reserve(&q->alpha, &q->capacity[0], n, sizeof *q->alpha) ||
            rs_balance_reserve(&q->column, &q->capacity[1], rs_balance_column_stride(n) * COLUMN_BLOCK,
                               sizeof *q->column) ||
            rs_balance_reserve(&q->token, &q->capacity[2], n, sizeof *q->token) ||
            rs_balance_reserve(&q->pos, &q->capacity[3], n, sizeof *q->pos))
            return rs_fail(err, "router quantile_balance: out of memory for a group of %zu tokens", n);
    }
    return 0;
}

/* One token: TopK(z - beta, k + 1); the first k are selected, the last is alpha_t. */
static double route_token(const quantile_state *s, quantile_layer *q, const float *z, int32_t *ids, float *w)
{
    const int E = s->E, k = s->k;
    for (int e = 0; e < E; e++)
        q->adjusted[e] = (double)z[e] - q->beta[e];
    rs_balance_topk(q->adjusted, E, k + 1, q->ids, q->vals);
    if (s->sigmoid)
        rs_balance_sigmoid(z, E, q->score);
    else
        rs_balance_softmax(z, E, q->score);
    double norm = rs_balance_weight_norm(q->score, q->ids, k, s->renorm);
    for (int j = 0; j < k; j++) {
        ids[j] = q->ids[j];
        w[j] = (float)(q->score[q->ids[j]] * norm);
    }
    return q->vals[k];
}

/* beta_local_e = (C+1)-th largest of z_te - alpha_t over the m tokens. The
 * columns are gathered COLUMN_BLOCK at a time, so that each token's row is
 * read a cache line at once rather than one value per line. */
static void update_beta(const quantile_state *s, quantile_layer *q, const rs_chunk *c, int layer, int m)
{
    const int E = s->E;
    int64_t target = (int64_t)m * s->k / E; /* < m because k < E */
    double mean = 0.0;
    const size_t stride = rs_balance_column_stride(m);
    for (int e0 = 0; e0 < E; e0 += COLUMN_BLOCK) {
        const int width = E - e0 < COLUMN_BLOCK ? E - e0 : COLUMN_BLOCK;
        for (int i = 0; i < m; i++) {
            const float *z = rs_chunk_logits(c, q->token[i], layer) + e0;
            for (int b = 0; b < width; b++)
                q->column[(size_t)b * stride + (size_t)i] = (double)z[b] - q->alpha[i];
        }
        for (int b = 0; b < width; b++) {
            const int e = e0 + b;
            double local = rs_balance_kth_largest(q->column + (size_t)b * stride, q->pos, m, (int)target + 1);
            q->adjusted[e] = s->ema * q->beta[e] + (1.0 - s->ema) * local;
            mean += q->adjusted[e];
        }
    }
    mean /= E;
    for (int e = 0; e < E; e++)
        q->beta[e] = q->adjusted[e] - mean;
}

static void quantile_route_layer(void *state, const rs_chunk *c, int layer, rs_decisions *out)
{
    const quantile_state *s = state;
    quantile_layer *q = &s->layers[layer];
    const rs_groups *groups = rs_balance_groups(c, s->group, layer, out);
    if (!groups)
        return;
    for (int g = 0; g < groups->count; g++) {
        int n = 0, m = 0;
        const int32_t *tokens = rs_balance_group_tokens(groups, g, &n);
        for (int i = 0; i < n; i++) {
            int32_t *ids;
            float *w;
            if (i + 1 < n)
                rs_balance_prefetch_row(rs_chunk_logits(c, tokens[i + 1], layer), s->E);
            const float *z = rs_token_row(c, out, tokens[i], layer, &ids, &w);
            if (!z)
                continue;
            q->alpha[m] = route_token(s, q, z, ids, w);
            q->token[m++] = tokens[i];
        }
        if (m > 0)
            update_beta(s, q, c, layer, m);
    }
}

static void quantile_checkpoint(void *state, rs_state_io *io)
{
    quantile_state *s = state;
    for (int l = 0; l < s->L; l++) /* the rest is per-group scratch */
        RS_STATE_ARRAY(io, s->layers[l].beta, s->E);
}

static const rs_router_type quantile_balance_type = {
    .name = "quantile_balance",
    .summary = "top-k on z - beta, beta set per group from column quantiles so each expert gets about T k / E",
    .formula = "S = TopK(z - beta, k); after each group of m tokens: alpha_t = (k+1)-th largest of z_t - beta, "
               "beta_e <- (C+1)-th largest over t of z_te - alpha_t with C = floor(m k / E), blended "
               "ema * beta + (1 - ema) * new and re-centred to mean 0; w = score_S (/ sum_S when renorm = 1)",
    .source = "Megatron-LM quantile balancing (moe_utils.py qb_dual_update; per-step update _update_router_qb_beta)",
    .params = quantile_params,
    .num_params = sizeof quantile_params / sizeof quantile_params[0],
    .flags = RS_ROUTER_CAUSAL | RS_ROUTER_STATEFUL | RS_ROUTER_GROUPED | RS_ROUTER_TOKEN_CHOICE,
    .needs = RS_NEEDS_LOGITS,
    .create = quantile_create,
    .prepare_chunk = quantile_prepare_chunk,
    .route_layer = quantile_route_layer,
    .destroy = quantile_destroy,
    .checkpoint = quantile_checkpoint,
};

const rs_router_type *const rs_router_quantile_balance = &quantile_balance_type;
