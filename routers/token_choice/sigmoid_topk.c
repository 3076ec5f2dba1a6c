/* sigmoid_topk: S = TopK(z, k); w = sigmoid(z_S), optionally renormalised.
 * Llama 4 routes top-1 and gates the expert with the sigmoid of its logit,
 * independently of the other experts (no softmax, no renormalisation). */
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "routers/common/score_select.h"
#include "routers/common/trace_checks.h"
#include "routesim/select.h"
#include "routers/common/host_rows.h"
#include "routesim/router.h"

typedef struct sigmoid_state {
    int k, renorm;
    /* the device path's ids and weights on the host */
    rs_host_rows host; /* the device hook's rows, finished here */
} sigmoid_state;

static const rs_param_def sigmoid_params[] = {
    {"k", RS_PARAM_INT, "1", 1, 1024, NULL, "experts per token"},
    {"renorm", RS_PARAM_BOOL, "0", 0, 1, NULL, "divide the k sigmoid weights by their sum"},
};

static int sigmoid_create(void **state, rs_router_shape *shape, const rs_params *params,
                          const rs_router_setup *setup, rs_error *err)
{
    int k = (int)rs_param_int(params, "k");
    RS_TRY(rs_check_param_experts("sigmoid_topk", "k", k, setup->trace, err));
    sigmoid_state *s = calloc(1, sizeof *s);
    RS_CHECK(s, err, "router sigmoid_topk: out of memory");
    s->k = k;
    s->renorm = rs_param_bool(params, "renorm");
    shape->kmax = k;
    shape->scoring = RS_SCORING_SIGMOID;
    *state = s;
    return 0;
}

/* w of one row from its selected ids: sigmoid gates (libm's exp),
 * renormalised when asked. The same function for route_layer and for the
 * device path, which runs it on the host. */
static void sigmoid_weights(int k, int renorm, const float *z, const int32_t *ids, double *gate, float *w)
{
    double sum = 0.0;
    for (int j = 0; j < k; j++) {
        gate[j] = ids[j] >= 0 ? rs_sigmoid((double)z[ids[j]]) : 0.0;
        sum += gate[j];
    }
    double norm = !renorm ? 1.0 : sum > 0.0 ? 1.0 / sum : 0.0;
    for (int j = 0; j < k; j++)
        w[j] = (float)(gate[j] * norm);
}

static void sigmoid_route_layer(void *state, const rs_chunk *c, int layer, rs_decisions *out)
{
    const sigmoid_state *s = state;
    const int E = c->E, k = s->k;
    float vals[1024];
    double gate[1024];
    for (int t = 0; t < c->n; t++) {
        const float *z = rs_chunk_logits(c, t, layer);
        int32_t *ids = out->ids + rs_decision_row(c, out, t, layer);
        float *w = out->weights + rs_decision_row(c, out, t, layer);
        /* the sigmoid is monotone, so the top-k of z is the top-k of s
         * (HF Llama4Router takes torch.topk of the logits too) */
        rs_topk_indices(z, E, k, ids, vals);
        sigmoid_weights(k, s->renorm, z, ids, gate, w);
    }
}

/* Selection on the device; the k gates of each row need libm's exp, so
 * the ids come back and the weights are computed on the host (from the
 * host's copy of the logits) and sent to the device. */
static int sigmoid_route_device(void *state, const rs_device_chunk *c, rs_decisions *out)
{
    sigmoid_state *s = state;
    if (s->k > RS_DEVICE_MAX_K || !c->host_logits) /* the weights are finished on the host, from its logits */
        return -1;
    if (c->n == 0)
        return 0;
    const int k = s->k, E = c->E;
    const int64_t rows = (int64_t)c->n * c->L;
    const size_t cells = (size_t)rows * (size_t)k;
    if (rs_host_rows_reserve(&s->host, cells) != 0)
        return -1;
    const float *logits = c->logits;
    int32_t *ids = out->ids;
#pragma omp target teams distribute parallel for device(c->device) is_device_ptr(logits, ids)
    for (int64_t r = 0; r < rows; r++) {
        float vals[RS_DEVICE_MAX_K];
        rs_topk_insert_row(logits + r * E, E, k, ids + r * k, vals);
    }
    if (rs_host_rows_fetch_ids(&s->host, ids, cells, c->device) != 0)
        return -1;
    const float *z = c->host_logits;
    int32_t *host_ids = s->host.ids;
    float *host_weights = s->host.weights;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        double gate[RS_DEVICE_MAX_K];
        sigmoid_weights(k, s->renorm, z + r * E, host_ids + r * k, gate, host_weights + r * k);
    }
    return rs_host_rows_send_weights(&s->host, out->weights, cells, c->device);
}

static void sigmoid_destroy(void *state)
{
    sigmoid_state *s = state;
    rs_host_rows_free(&s->host);
    free(s);
}

static const rs_router_type sigmoid_type = {
    .name = "sigmoid_topk",
    .summary = "top-k of the logits, each gated by its own sigmoid (Llama 4)",
    .formula = "S = TopK(z, k) with ties to the lower index; w_e = s_e (renorm = 0) or s_e / sum_S s (renorm = 1), "
               "s = sigmoid(z)",
    .source = "Llama 4 (Meta, no arXiv paper; HF modeling_llama4 Llama4Router.forward: "
              "sigmoid of the scattered top-k logits)",
    .params = sigmoid_params,
    .num_params = sizeof sigmoid_params / sizeof sigmoid_params[0],
    .flags = RS_ROUTER_CAUSAL | RS_ROUTER_TOKEN_CHOICE,
    .needs = RS_NEEDS_LOGITS,
    .create = sigmoid_create,
    .route_layer = sigmoid_route_layer,
    .destroy = sigmoid_destroy,
    .route_device = sigmoid_route_device,
};

const rs_router_type *const rs_router_sigmoid_topk = &sigmoid_type;
