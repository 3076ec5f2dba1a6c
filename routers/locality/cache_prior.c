/* cache_prior: top-k after raising the logits of the experts an LRU cache
 * holds, so near-ties go to experts already in fast memory (Cache-Prior of
 * arXiv 2412.00099). The raise is lambda times the running mean logit range
 * (max z - min z) of the sequence so far, this token included, which makes
 * lambda independent of the model's logit scale. One cache per layer,
 * emptied at every sequence start. */
#include <math.h>
#include <stdlib.h>

#include "routers/common/trace_checks.h"
#include "routers/locality/locality.h"
#include "routesim/select.h"
#include "routesim/router.h"

typedef struct prior_layer {
    rs_expert_lru cache;
    double range_sum;
    int64_t range_count;
    float *biased; /* [E] scratch: logits plus the prior */
} prior_layer;

typedef struct cache_prior_state {
    int k, E, L, renorm;
    double lambda;
    prior_layer *layers;
    uint64_t *stamps;
    uint8_t *flags;
    float *biased;
} cache_prior_state;

static const rs_param_def cache_prior_params[] = {
    {"k", RS_PARAM_INT, "2", 1, 1024, NULL, "experts per token"},
    {"slots", RS_PARAM_INT, "4", 0, 1e6, NULL, "experts each layer's LRU cache holds (>= E: all fit)"},
    {"lambda", RS_PARAM_FLOAT, "0.5", 0, 1e6, NULL,
     "raise of cached experts' logits, in units of the running mean logit range"},
    {"renorm", RS_PARAM_BOOL, "1", 0, 1, NULL,
     "weights: softmax of the raised logits over S (1) or over all experts (0)"},
};

static void cache_prior_destroy(void *state)
{
    cache_prior_state *s = state;
    if (!s)
        return;
    free(s->layers);
    free(s->stamps);
    free(s->flags);
    free(s->biased);
    free(s);
}

static int cache_prior_create(void **state, rs_router_shape *shape, const rs_params *params,
                              const rs_router_setup *setup, rs_error *err)
{
    const rs_trace_info *tr = setup->trace;
    int k = (int)rs_param_int(params, "k");
    RS_TRY(rs_check_param_experts("cache_prior", "k", k, tr, err));
    cache_prior_state *s = calloc(1, sizeof *s);
    RS_CHECK(s, err, "router cache_prior: out of memory");
    s->k = k;
    s->E = tr->num_experts;
    s->L = tr->num_layers;
    s->renorm = rs_param_bool(params, "renorm");
    s->lambda = rs_param_float(params, "lambda");
    long long slots = rs_param_int(params, "slots");
    size_t cells = (size_t)s->L * (size_t)s->E;
    s->layers = calloc((size_t)s->L, sizeof *s->layers);
    s->stamps = calloc(cells, sizeof *s->stamps);
    s->flags = calloc(cells, sizeof *s->flags);
    s->biased = malloc(cells * sizeof *s->biased);
    if (!s->layers || !s->stamps || !s->flags || !s->biased) {
        cache_prior_destroy(s);
        return rs_fail(err, "router cache_prior: out of memory");
    }
    for (int l = 0; l < s->L; l++) {
        prior_layer *pl = &s->layers[l];
        pl->cache.capacity = slots < s->E ? (int)slots : s->E;
        pl->cache.stamp = s->stamps + (size_t)l * (size_t)s->E;
        pl->cache.in_batch = s->flags + (size_t)l * (size_t)s->E;
        pl->biased = s->biased + (size_t)l * (size_t)s->E;
    }
    shape->kmax = k;
    *state = s;
    return 0;
}

/* Softmax weights of the raised logits: over the selection (renorm) or over
 * every expert, in double. */
static void prior_weights(const float *biased, int E, const int32_t *ids, int k, int renorm, float *w)
{
    double top = biased[ids[0]], sum = 0.0;
    if (renorm) {
        for (int j = 0; j < k; j++)
            sum += exp((double)biased[ids[j]] - top);
    } else {
        for (int e = 0; e < E; e++)
            sum += exp((double)biased[e] - top);
    }
    for (int j = 0; j < k; j++)
        w[j] = (float)(exp((double)biased[ids[j]] - top) / sum);
}

static void cache_prior_route_layer(void *state, const rs_chunk *c, int layer, rs_decisions *out)
{
    cache_prior_state *s = state;
    prior_layer *pl = &s->layers[layer];
    const int E = c->E, k = s->k;
    float vals[1024];
    for (int t = 0; t < c->n; t++) {
        int32_t *ids = out->ids + rs_decision_row(c, out, t, layer);
        float *w = out->weights + rs_decision_row(c, out, t, layer);
        if (rs_starts_sequence(c, t)) {
            rs_lru_reset(&pl->cache, E);
            pl->range_sum = 0.0;
            pl->range_count = 0;
        }
        if (!rs_token_valid(c, t)) {
            rs_pad_row(ids, w, 0, out->kmax);
            continue;
        }
        const float *z = rs_chunk_logits(c, t, layer);
        float lo = z[0], hi = z[0];
        for (int e = 1; e < E; e++) {
            lo = z[e] < lo ? z[e] : lo;
            hi = z[e] > hi ? z[e] : hi;
        }
        pl->range_sum += (double)hi - (double)lo;
        pl->range_count++;
        float prior = (float)(s->lambda * pl->range_sum / (double)pl->range_count);
        for (int e = 0; e < E; e++)
            pl->biased[e] = rs_lru_cached(&pl->cache, e) ? z[e] + prior : z[e];
        rs_topk_indices(pl->biased, E, k, ids, vals);
        prior_weights(pl->biased, E, ids, k, s->renorm, w);
        rs_lru_access(&pl->cache, E, ids, k);
    }
}

static void cache_prior_checkpoint(void *state, rs_state_io *io)
{
    cache_prior_state *s = state;
    for (int l = 0; l < s->L; l++) {
        prior_layer *pl = &s->layers[l];
        rs_lru_checkpoint(&pl->cache, s->E, io);
        RS_STATE(io, pl->range_sum);
        RS_STATE(io, pl->range_count);
    }
}

static const rs_router_type cache_prior_type = {
    .name = "cache_prior",
    .summary = "top-k with a prior towards the experts an LRU cache holds (approximation of Cache-Prior)",
    .formula = "per layer an LRU cache of `slots` experts (batch rule of the cache metrics, emptied at each sequence "
               "start); z'_e = z_e + lambda * R [e cached], R = mean of max z - min z over the sequence's tokens so "
               "far (this one included); S = TopK(z', k); w = softmax(z') over S (renorm = 1) or over all experts",
    .source = "cache-aware routing arXiv:2412.00099 (Cache-Prior; approximation: the paper's exact range estimate "
              "and cache are not published as code)",
    .params = cache_prior_params,
    .num_params = sizeof cache_prior_params / sizeof cache_prior_params[0],
    .flags = RS_ROUTER_CAUSAL | RS_ROUTER_STATEFUL,
    .needs = RS_NEEDS_LOGITS,
    .create = cache_prior_create,
    .route_layer = cache_prior_route_layer,
    .destroy = cache_prior_destroy,
    .checkpoint = cache_prior_checkpoint,
};

const rs_router_type *const rs_router_cache_prior = &cache_prior_type;
