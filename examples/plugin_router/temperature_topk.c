/* A routesim plugin: top-k of softmax(z / T), the weights renormalised over
 * the k chosen. With T > 1 the weights flatten, with T < 1 they sharpen;
 * the selection itself is the same as top-k's.
 *
 * Build:  make ROUTESIM=/path/to/routesim/checkout
 * Use:    routesim route trace.h5 --plugin ./temperature_topk.so --router temperature_topk:k=2,T=2 */
#include <math.h>
#include <stdlib.h>

#include "routesim/plugin.h"
#include "routesim/select.h"

enum { MAX_K = 64 };

typedef struct tt_state {
    int k;
    double inv_t;
} tt_state;

static const rs_param_def tt_params[] = {
    {"k", RS_PARAM_INT, "2", 1, MAX_K, NULL, "experts per token"},
    {"T", RS_PARAM_FLOAT, "1", 1e-3, 1e3, NULL, "softmax temperature of the weights"},
};

static int tt_create(void **state, rs_router_shape *shape, const rs_params *params, const rs_router_setup *setup,
                     rs_error *err)
{
    int k = (int)rs_param_int(params, "k");
    if (k > setup->trace->num_experts)
        return rs_fail(err, "router temperature_topk: parameter k=%d exceeds num_experts=%d of %s", k,
                       setup->trace->num_experts, setup->trace->path);
    tt_state *s = malloc(sizeof *s);
    if (!s)
        return rs_fail(err, "router temperature_topk: out of memory");
    s->k = k;
    s->inv_t = 1.0 / rs_param_float(params, "T");
    shape->kmax = k;
    *state = s;
    return 0;
}

static void tt_route_layer(void *state, const rs_chunk *c, int layer, rs_decisions *out)
{
    const tt_state *s = state;
    float vals[MAX_K]; /* scratch of rs_topk_indices */
    for (int t = 0; t < c->n; t++) {
        const float *z = rs_chunk_logits(c, t, layer);
        int32_t *ids = out->ids + rs_decision_row(c, out, t, layer);
        float *w = out->weights + rs_decision_row(c, out, t, layer);
        rs_topk_indices(z, c->E, s->k, ids, vals); /* ties to the lower index, as topk */
        double sum = 0.0;
        for (int j = 0; j < s->k; j++) {
            w[j] = (float)exp((z[ids[j]] - z[ids[0]]) * s->inv_t);
            sum += w[j];
        }
        for (int j = 0; j < s->k; j++)
            w[j] = (float)(w[j] / sum);
    }
}

static void tt_destroy(void *state) { free(state); }

static const rs_router_type temperature_topk = {
    .name = "temperature_topk",
    .summary = "top-k, weights softmax(z / T) over the k chosen (example plugin)",
    .formula = "S = TopK(z, k); w = softmax(z_S / T)",
    .source = "examples/plugin_router",
    .params = tt_params,
    .num_params = sizeof tt_params / sizeof tt_params[0],
    .flags = RS_ROUTER_CAUSAL | RS_ROUTER_TOKEN_CHOICE,
    .needs = RS_NEEDS_LOGITS,
    .create = tt_create,
    .route_layer = tt_route_layer,
    .destroy = tt_destroy,
};

RS_PLUGIN_ABI;

int routesim_register(rs_error *err) { return rs_router_register(&temperature_topk, err); }
