/* expert_choice: experts choose tokens. Within each token group of m
 * tokens every expert takes the C tokens with the largest p[:, e] (ties to
 * the earlier token), C = rounding(capacity_factor * m / E) with the
 * capacity stage's rounding, at least min_capacity, at most m. A token gets
 * the experts that chose it (0..E of them), ordered by (-p, expert), each
 * weighted by p_te. The rule looks at the whole group: not causal.
 *
 * As flaxformer's ExpertsChooseMaskedRouter, which takes jax.lax.top_k of
 * the transposed router probabilities. Differences: skipped tokens (non-finite
 * logits) are left out of the group and of m, where flaxformer multiplies
 * padding probabilities by 0 and may still pick them. p is computed in
 * double as exp(z - max) / sum, so rows that differ by a constant (equal p)
 * tie exactly and go to the earlier token. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "routers/common/balance_util.h"
#include "routesim/router.h"
#include "routers/common/capacity.h"

/* Columns copied per pass over the group's rows: 8 doubles, a cache line. */
#define COLUMN_BLOCK 8

typedef struct choice_layer {
    double *max, *sum, *key; /* key: COLUMN_BLOCK columns of the group */
    int32_t *token, *pos, *fill;
    size_t capacity[6];
} choice_layer;

typedef struct choice_state {
    rs_capacity capacity;
    rs_sinkhorn_pool pool; /* per slot: the group's exp(z - max), computed once */
    rs_group group;
    int L, E;
    choice_layer *layers;
} choice_state;

static const rs_param_def choice_params[] = {
    {"capacity_factor", RS_PARAM_FLOAT, "2", 0, 1e6, NULL,
     "tokens per expert: C = rounding(factor * group_tokens / E)"},
    {"capacity_rounding", RS_PARAM_ENUM, "ceil", 0, 0, "ceil|floor|round", "rounding of C"},
    {"min_capacity", RS_PARAM_INT, "0", 0, 1e12, NULL, "C is at least this (at most the group's tokens)"},
    RS_BALANCE_GROUP_PARAM("batch"),
};

static void choice_destroy(void *state)
{
    choice_state *s = state;
    if (!s)
        return;
    for (int l = 0; s->layers && l < s->L; l++) {
        choice_layer *x = &s->layers[l];
        free(x->max);
        free(x->sum);
        free(x->key);
        free(x->token);
        free(x->pos);
        free(x->fill);
    }
    free(s->layers);
    rs_sinkhorn_pool_free(&s->pool);
    free(s);
}

static int choice_create(void **state, rs_router_shape *shape, const rs_params *params,
                         const rs_router_setup *setup, rs_error *err)
{
    const rs_trace_info *tr = setup->trace;
    choice_state *s = calloc(1, sizeof *s);
    RS_CHECK(s, err, "router expert_choice: out of memory");
    const char *rounding = rs_param_str(params, "capacity_rounding");
    s->capacity.enabled = 1;
    s->capacity.factor = rs_param_float(params, "capacity_factor");
    s->capacity.rounding = strcmp(rounding, "ceil") == 0 ? 0 : strcmp(rounding, "floor") == 0 ? 1 : 2;
    s->capacity.min_capacity = rs_param_int(params, "min_capacity");
    s->group = rs_balance_group_param(params);
    s->L = tr->num_layers;
    s->E = tr->num_experts;
    s->layers = calloc((size_t)s->L, sizeof *s->layers);
    if (!s->layers || rs_sinkhorn_pool_init(&s->pool, s->L, s->E, 0) != 0) {
        choice_destroy(s);
        return rs_fail(err, "router expert_choice: out of memory");
    }
    shape->kmax = s->E; /* every expert may choose the same token */
    shape->group = s->group;
    *state = s;
    return 0;
}

static int choice_prepare_chunk(void *state, const rs_chunk *c, rs_error *err)
{
    choice_state *s = state;
    size_t n = (size_t)rs_balance_largest_group(c, s->group);
    RS_TRY(rs_sinkhorn_pool_reserve(&s->pool, c, s->group, s->E, "expert_choice", err));
    for (int l = 0; l < s->L; l++) {
        choice_layer *x = &s->layers[l];
        if (rs_balance_reserve(&x->max, &x->capacity[0], n, sizeof *x->max) ||
            rs_balance_reserve(&x->sum, &x->capacity[5], n, sizeof *x->sum) ||
            rs_balance_reserve(&x->key, &x->capacity[1], rs_balance_column_stride(n) * COLUMN_BLOCK, sizeof *x->key) ||
            rs_balance_reserve(&x->token, &x->capacity[2], n, sizeof *x->token) ||
            rs_balance_reserve(&x->pos, &x->capacity[3], n, sizeof *x->pos) ||
            rs_balance_reserve(&x->fill, &x->capacity[4], n, sizeof *x->fill))
            return rs_fail(err, "router expert_choice: out of memory for a group of %zu tokens", n);
    }
    return 0;
}

/* Orders a token's experts by (-z, expert): the order of p, exactly. */
static void sort_row(const float *z, int32_t *ids, float *w, int count)
{
    for (int i = 1; i < count; i++) {
        int32_t e = ids[i];
        float we = w[i];
        int j = i;
        while (j > 0 && (z[ids[j - 1]] < z[e] || (z[ids[j - 1]] == z[e] && ids[j - 1] > e))) {
            ids[j] = ids[j - 1];
            w[j] = w[j - 1];
            j--;
        }
        ids[j] = e;
        w[j] = we;
    }
}

/* The group's probabilities are stored row by row (probs[j E + e] = p_je);
 * the columns are copied out COLUMN_BLOCK at a time, so that each row is
 * read a cache line at once rather than one value per line. */
static void choose_in_group(const choice_state *s, choice_layer *x, const double *probs, const rs_chunk *c, int layer,
                            int m, rs_decisions *out)
{
    const int E = s->E;
    int64_t C = rs_capacity_of(&s->capacity, m, 1, E);
    if (C > m)
        C = m;
    const size_t stride = rs_balance_column_stride(m);
    for (int e0 = 0; e0 < E; e0 += COLUMN_BLOCK) {
        const int width = E - e0 < COLUMN_BLOCK ? E - e0 : COLUMN_BLOCK;
        for (int j = 0; j < m; j++) {
            const double *row = probs + (size_t)j * (size_t)E + e0;
            for (int b = 0; b < width; b++)
                x->key[(size_t)b * stride + (size_t)j] = row[b];
        }
        for (int b = 0; b < width; b++) {
            const int e = e0 + b;
            double *key = x->key + (size_t)b * stride;
            rs_balance_select_best(key, x->pos, m, (int)C);
            for (int i = 0; i < C; i++) {
                int j = x->pos[i];
                size_t row = rs_decision_row(c, out, x->token[j], layer) + (size_t)x->fill[j]++;
                out->ids[row] = e;
                out->weights[row] = (float)key[i];
            }
        }
    }
    for (int j = 0; j < m; j++) {
        int t = x->token[j];
        size_t row = rs_decision_row(c, out, t, layer);
        sort_row(rs_chunk_logits(c, t, layer), out->ids + row, out->weights + row, x->fill[j]);
        for (int i = x->fill[j]; i < E; i++) {
            out->ids[row + i] = -1;
            out->weights[row + i] = 0.0f;
        }
    }
}

static void choice_route_layer(void *state, const rs_chunk *c, int layer, rs_decisions *out)
{
    choice_state *s = state;
    choice_layer *x = &s->layers[layer];
    const rs_groups *groups = rs_balance_groups(c, s->group, layer, out);
    if (!groups)
        return;
    int slot = rs_balance_slot_take(&s->pool.slots);
    double *probs = s->pool.scratch[slot].kernel;
    for (int g = 0; g < groups->count; g++) {
        int n = 0;
        const int32_t *tokens = rs_balance_group_tokens(groups, g, &n);
        int m = rs_balance_valid_tokens(c, layer, out, tokens, n, x->token);
        for (int j = 0; j < m; j++) {
            if (j + 1 < m)
                rs_balance_prefetch_row(rs_chunk_logits(c, x->token[j + 1], layer), s->E);
            const float *z = rs_chunk_logits(c, x->token[j], layer);
            double *row = probs + (size_t)j * (size_t)s->E;
            double max = rs_balance_row_max(z, s->E), sum = 0.0;
            for (int e = 0; e < s->E; e++)
                sum += row[e] = exp((double)z[e] - max);
            rs_balance_divide(row, s->E, sum);
            x->max[j] = max;
            x->sum[j] = sum;
            x->fill[j] = 0;
        }
        if (m > 0)
            choose_in_group(s, x, probs, c, layer, m, out);
    }
    rs_balance_slot_give(&s->pool.slots, slot);
}

static const rs_router_type expert_choice_type = {
    .name = "expert_choice",
    .summary = "experts choose tokens: per group each expert takes its top-C tokens by probability (not causal)",
    .formula = "per group of m tokens, C = min(m, max(min_capacity, rounding(capacity_factor * m / E))); expert e "
               "takes TopC over t of p_te (ties to the earlier token); token t gets {e : e took t} (0..E experts) "
               "ordered by (-p, e), w_e = p_te",
    .source = "Expert Choice arXiv:2202.09368 (flaxformer architectures/moe/routing.py ExpertsChooseMaskedRouter)",
    .params = choice_params,
    .num_params = sizeof choice_params / sizeof choice_params[0],
    .flags = RS_ROUTER_GROUPED,
    .needs = RS_NEEDS_LOGITS,
    .create = choice_create,
    .prepare_chunk = choice_prepare_chunk,
    .route_layer = choice_route_layer,
    .destroy = choice_destroy,
    .checkpoint = rs_router_no_state, /* scratch per group or chunk */
};

const rs_router_type *const rs_router_expert_choice = &expert_choice_type;
