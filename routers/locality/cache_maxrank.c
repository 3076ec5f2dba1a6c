/* cache_maxrank: keep the token's top-J experts, then spend the remaining
 * k - J slots on experts the LRU cache already holds, as long as they rank
 * within the top M; slots still free go to the next best experts by rank
 * (Max Rank of arXiv 2412.00099). One cache per layer, emptied at every
 * sequence start. */
#include <stdlib.h>

#include "routers/common/trace_checks.h"
#include "routers/locality/locality.h"
#include "routesim/select.h"
#include "routesim/router.h"

typedef struct maxrank_layer {
    rs_expert_lru cache;
    int32_t *ranked; /* [M] scratch: the top M experts in rank order */
    uint8_t *taken;  /* [M] scratch */
} maxrank_layer;

typedef struct cache_maxrank_state {
    int k, J, M, E, L, renorm;
    maxrank_layer *layers;
    uint64_t *stamps;
    uint8_t *flags;
    int32_t *ranked;
    uint8_t *taken;
} cache_maxrank_state;

static const rs_param_def cache_maxrank_params[] = {
    {"k", RS_PARAM_INT, "2", 1, 1024, NULL, "experts per token"},
    {"slots", RS_PARAM_INT, "4", 0, 1e6, NULL, "experts each layer's LRU cache holds (>= E: all fit)"},
    {"J", RS_PARAM_INT, "1", 0, 1024, NULL, "top-ranked experts always kept (J <= k)"},
    {"M", RS_PARAM_INT, "4", 1, 1024, NULL, "cached experts may replace others when they rank within the top M (M >= k)"},
    {"renorm", RS_PARAM_BOOL, "1", 0, 1, NULL, "renormalise the k weights to sum to 1"},
};

static void cache_maxrank_destroy(void *state)
{
    cache_maxrank_state *s = state;
    if (!s)
        return;
    free(s->layers);
    free(s->stamps);
    free(s->flags);
    free(s->ranked);
    free(s->taken);
    free(s);
}

static int cache_maxrank_create(void **state, rs_router_shape *shape, const rs_params *params,
                                const rs_router_setup *setup, rs_error *err)
{
    const rs_trace_info *tr = setup->trace;
    int k = (int)rs_param_int(params, "k"), J = (int)rs_param_int(params, "J"), M = (int)rs_param_int(params, "M");
    RS_TRY(rs_check_param_experts("cache_maxrank", "k", k, tr, err));
    RS_CHECK(J <= k, err, "router cache_maxrank: parameter J=%d exceeds k=%d", J, k);
    RS_CHECK(M >= k, err, "router cache_maxrank: parameter M=%d is below k=%d (M is a rank limit: M >= k)", M, k);
    cache_maxrank_state *s = calloc(1, sizeof *s);
    RS_CHECK(s, err, "router cache_maxrank: out of memory");
    s->k = k;
    s->J = J;
    s->E = tr->num_experts;
    s->M = M < s->E ? M : s->E;
    s->L = tr->num_layers;
    s->renorm = rs_param_bool(params, "renorm");
    long long slots = rs_param_int(params, "slots");
    size_t cells = (size_t)s->L * (size_t)s->E, ranks = (size_t)s->L * (size_t)s->M;
    s->layers = calloc((size_t)s->L, sizeof *s->layers);
    s->stamps = calloc(cells, sizeof *s->stamps);
    s->flags = calloc(cells, sizeof *s->flags);
    s->ranked = malloc(ranks * sizeof *s->ranked);
    s->taken = malloc(ranks * sizeof *s->taken);
    if (!s->layers || !s->stamps || !s->flags || !s->ranked || !s->taken) {
        cache_maxrank_destroy(s);
        return rs_fail(err, "router cache_maxrank: out of memory");
    }
    for (int l = 0; l < s->L; l++) {
        maxrank_layer *ml = &s->layers[l];
        ml->cache.capacity = slots < s->E ? (int)slots : s->E;
        ml->cache.stamp = s->stamps + (size_t)l * (size_t)s->E;
        ml->cache.in_batch = s->flags + (size_t)l * (size_t)s->E;
        ml->ranked = s->ranked + (size_t)l * (size_t)s->M;
        ml->taken = s->taken + (size_t)l * (size_t)s->M;
    }
    shape->kmax = k;
    *state = s;
    return 0;
}

/* Picks k of the top-M list: ranks 0..J-1, then cached ones in rank order,
 * then the best of the rest; writes them to ids in rank order. */
static void maxrank_select(const cache_maxrank_state *s, maxrank_layer *ml, int32_t *ids)
{
    const int M = s->M, k = s->k;
    int chosen = 0;
    for (int r = 0; r < M; r++) {
        ml->taken[r] = r < s->J;
        chosen += ml->taken[r];
    }
    for (int r = s->J; r < M && chosen < k; r++)
        if (rs_lru_cached(&ml->cache, ml->ranked[r])) {
            ml->taken[r] = 1;
            chosen++;
        }
    for (int r = s->J; r < M && chosen < k; r++)
        if (!ml->taken[r]) {
            ml->taken[r] = 1;
            chosen++;
        }
    for (int r = 0, j = 0; r < M; r++)
        if (ml->taken[r])
            ids[j++] = ml->ranked[r];
}

static void cache_maxrank_route_layer(void *state, const rs_chunk *c, int layer, rs_decisions *out)
{
    cache_maxrank_state *s = state;
    maxrank_layer *ml = &s->layers[layer];
    const int E = c->E;
    float vals[1024];
    for (int t = 0; t < c->n; t++) {
        int32_t *ids = out->ids + rs_decision_row(c, out, t, layer);
        float *w = out->weights + rs_decision_row(c, out, t, layer);
        if (rs_starts_sequence(c, t))
            rs_lru_reset(&ml->cache, E);
        if (!rs_token_valid(c, t)) {
            rs_pad_row(ids, w, 0, out->kmax);
            continue;
        }
        rs_topk_indices(rs_chunk_logits(c, t, layer), E, s->M, ml->ranked, vals);
        maxrank_select(s, ml, ids);
        rs_weights_from_probs(rs_chunk_probs(c, t, layer), ids, s->k, s->renorm, w);
        rs_lru_access(&ml->cache, E, ids, s->k);
    }
}

static void cache_maxrank_checkpoint(void *state, rs_state_io *io)
{
    cache_maxrank_state *s = state;
    for (int l = 0; l < s->L; l++) /* ranked and taken are per-token scratch */
        rs_lru_checkpoint(&s->layers[l].cache, s->E, io);
}

static const rs_router_type cache_maxrank_type = {
    .name = "cache_maxrank",
    .summary = "keep the top-J, fill the rest with cached experts ranked within M (approximation of Max Rank)",
    .formula = "R = TopK(z, M) in rank order; S = R[0..J) + cached experts of R[J..M) in rank order + the best "
               "remaining of R, k in all, listed in rank order; w = p_S (renorm: / sum p_S); per layer an LRU cache "
               "of `slots` experts (batch rule of the cache metrics, emptied at each sequence start)",
    .source = "cache-aware routing arXiv:2412.00099 (Max Rank with top-J kept, Algorithm 1; approximation: LRU "
              "cache per layer as in the cache metrics)",
    .params = cache_maxrank_params,
    .num_params = sizeof cache_maxrank_params / sizeof cache_maxrank_params[0],
    .flags = RS_ROUTER_CAUSAL | RS_ROUTER_STATEFUL,
    .needs = RS_NEEDS_LOGITS | RS_NEEDS_PROBS,
    .create = cache_maxrank_create,
    .route_layer = cache_maxrank_route_layer,
    .destroy = cache_maxrank_destroy,
    .checkpoint = cache_maxrank_checkpoint,
};

const rs_router_type *const rs_router_cache_maxrank = &cache_maxrank_type;
