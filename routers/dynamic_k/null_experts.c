/* null_experts: AdaMoE's null experts. n_null experts with the constant
 * logit c join the E real ones; top-k runs over all E + n_null; null
 * experts compute nothing, so they are not emitted, and the real experts'
 * weights are renormalised among themselves. A token may get 0..k real
 * experts. (AdaMoE trains a second gate for the null logits; a constant
 * logit is the replayable approximation. Reference: CengZihao/AdaMoE
 * exp_2/.../adaptive_moe_utils.py, CustomMixtralSparseMoeBlock.forward.) */
#include <omp.h>
#include <stdlib.h>

#include "routers/common/rank_sort.h"
#include "routers/common/token_row.h"
#include "routers/common/trace_checks.h"
#include "routers/common/host_rows.h"
#include "routesim/router.h"

typedef struct null_state {
    int n_null, k;
    double c;
    /* the device path's ids and weights on the host */
    rs_host_rows host; /* the device hook's rows, finished here */
} null_state;

static const rs_param_def null_params[] = {
    {"n_null", RS_PARAM_INT, "16", 0, 1e6, NULL, "null experts appended after the real ones"},
    {"c", RS_PARAM_FLOAT, "0", -1e30, 1e30, NULL, "the null experts' constant logit"},
    {"k", RS_PARAM_INT, "2", 1, 1e6, NULL, "experts per token, null ones included"},
};

static int null_create(void **state, rs_router_shape *shape, const rs_params *params, const rs_router_setup *setup,
                       rs_error *err)
{
    const rs_trace_info *tr = setup->trace;
    const int E = tr->num_experts;
    long long n_null = rs_param_int(params, "n_null"), k = rs_param_int(params, "k");
    RS_TRY(rs_check_experts_at_most("null_experts", RS_RANK_MAX_E, tr, err));
    RS_CHECK(k <= E + n_null, err, "router null_experts: parameter k=%lld exceeds num_experts + n_null = %lld of %s",
             k, E + n_null, tr->path);
    null_state *s = calloc(1, sizeof *s);
    RS_CHECK(s, err, "router null_experts: out of memory");
    s->n_null = (int)n_null;
    s->k = (int)k;
    s->c = rs_param_float(params, "c");
    shape->kmax = s->k < E ? s->k : E;
    *state = s;
    return 0;
}

/* How many real experts the top-k over E real + n_null null experts takes:
 * real experts with z >= c rank before the nulls (equal scores go to the
 * lower index, and the nulls come last), the rest after them. */
static int real_experts_taken(const float *z, int E, const null_state *s)
{
    int at_least_c = 0;
    for (int e = 0; e < E; e++)
        at_least_c += (double)z[e] >= s->c;
    if (s->k <= at_least_c)
        return s->k;
    long long after_nulls = (long long)s->k - at_least_c - s->n_null;
    if (after_nulls < 0)
        after_nulls = 0;
    if (after_nulls > E - at_least_c)
        after_nulls = E - at_least_c;
    return at_least_c + (int)after_nulls;
}

RS_VECTOR_CLONES
static void null_route_layer(void *state, const rs_chunk *c, int layer, rs_decisions *out)
{
    const null_state *s = state;
    const int E = c->E;
    rs_rank_scratch scratch;
    for (int t = 0; t < c->n; t++) {
        int32_t *ids;
        float *w;
        const float *z = rs_token_row(c, out, t, layer, &ids, &w);
        if (!z)
            continue;
        int m = real_experts_taken(z, E, s);
        if (m > 0) {
            rs_rank_top(z, E, m, &scratch);
            rs_row_ranked_softmax(ids, w, scratch.order, z, m); /* softmax over S = p_S / sum p_S */
        }
        rs_pad_row(ids, w, m, out->kmax);
    }
}

/* Selection on the device: the m real experts taken, ranked by insertion
 * (rs_rank_top's order). Their softmax needs libm's exp, so the ids come
 * back and the weights are computed on the host (rs_row_ranked_softmax,
 * as route_layer) and sent to the device. */
static int null_route_device(void *state, const rs_device_chunk *c, rs_decisions *out)
{
    null_state *s = state;
    const int kmax = out->kmax, E = c->E;
    if (kmax > RS_DEVICE_MAX_K || !c->host_logits) /* the weights are finished on the host, from its logits */
        return -1;
    if (c->n == 0)
        return 0;
    const int64_t rows = (int64_t)c->n * c->L;
    const size_t cells = (size_t)rows * (size_t)kmax;
    if (rs_host_rows_reserve(&s->host, cells) != 0)
        return -1;
    const null_state params = {.n_null = s->n_null, .k = s->k, .c = s->c};
    const float *logits = c->logits;
    int32_t *ids = out->ids;
#pragma omp target teams distribute parallel for device(c->device) is_device_ptr(logits, ids)
    for (int64_t r = 0; r < rows; r++) {
        float vals[RS_DEVICE_MAX_K];
        const float *z = logits + r * E;
        int32_t *row = ids + r * kmax;
        int m = real_experts_taken(z, E, &params);
        for (int j = 0; j < kmax; j++)
            row[j] = -1;
        if (m > 0)
            rs_topk_insert_row(z, E, m, row, vals);
    }
    if (rs_host_rows_fetch_ids(&s->host, ids, cells, c->device) != 0)
        return -1;
    const float *z = c->host_logits;
    int32_t *host_ids = s->host.ids;
    float *host_weights = s->host.weights;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        int32_t *row = host_ids + r * kmax;
        float *w = host_weights + r * kmax;
        int m = 0;
        while (m < kmax && row[m] >= 0)
            m++;
        if (m > 0)
            rs_row_ranked_softmax(row, w, row, z + r * E, m);
        rs_pad_row(row, w, m, kmax);
    }
    return rs_host_rows_send_weights(&s->host, out->weights, cells, c->device);
}

static void null_destroy(void *state)
{
    null_state *s = state;
    rs_host_rows_free(&s->host);
    free(s);
}

static const rs_router_type null_type = {
    .name = "null_experts",
    .summary = "AdaMoE: top-k over E real + n_null null experts of constant logit c; nulls cost nothing",
    .formula = "z' = [z, c x n_null]; S' = TopK(z', k) (ties to the lower index, so a real expert with z_e = c "
               "beats the nulls); S = the real experts of S', in rank order; w_e = p_e / sum_S p; a token "
               "choosing only nulls gets no experts; null experts are never emitted, -1 padding to min(k, E)",
    .source = "AdaMoE arXiv:2406.13233 (CengZihao/AdaMoE exp_2 adaptive_moe_utils.py CustomMixtralSparseMoeBlock)",
    .params = null_params,
    .num_params = sizeof null_params / sizeof null_params[0],
    .flags = RS_ROUTER_CAUSAL | RS_ROUTER_TOKEN_CHOICE,
    .needs = RS_NEEDS_LOGITS,
    .create = null_create,
    .route_layer = null_route_layer,
    .destroy = null_destroy,
    .route_device = null_route_device,
};

const rs_router_type *const rs_router_null_experts = &null_type;
