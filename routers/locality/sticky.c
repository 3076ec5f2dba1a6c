/* sticky: a token keeps the previous token's experts that still rank
 * within its own top M and fills the other slots by rank, so consecutive
 * tokens share experts (the local routing consistency of arXiv 2505.16056
 * turned into a rule). "Previous" is the previous routed token of the same
 * sequence at the same layer; the first token of a sequence gets plain
 * top-k. M = k gives plain top-k. */
#include <stdlib.h>

#include "routers/common/trace_checks.h"
#include "routers/locality/locality.h"
#include "routesim/select.h"
#include "routesim/router.h"

typedef struct sticky_layer {
    int32_t *previous; /* [k] the previous token's experts; count 0 at a sequence start */
    int previous_count;
    int32_t *ranked; /* [M] scratch */
    uint8_t *taken;  /* [M] scratch */
} sticky_layer;

typedef struct sticky_state {
    int k, M, E, L, renorm;
    sticky_layer *layers;
    int32_t *previous, *ranked;
    uint8_t *taken;
} sticky_state;

static const rs_param_def sticky_params[] = {
    {"k", RS_PARAM_INT, "2", 1, 1024, NULL, "experts per token"},
    {"M", RS_PARAM_INT, "4", 1, 1024, NULL,
     "the previous token's experts are kept while they rank within the top M (M >= k)"},
    {"renorm", RS_PARAM_BOOL, "1", 0, 1, NULL, "renormalise the k weights to sum to 1"},
};

static void sticky_destroy(void *state)
{
    sticky_state *s = state;
    if (!s)
        return;
    free(s->layers);
    free(s->previous);
    free(s->ranked);
    free(s->taken);
    free(s);
}

static int sticky_create(void **state, rs_router_shape *shape, const rs_params *params, const rs_router_setup *setup,
                         rs_error *err)
{
    const rs_trace_info *tr = setup->trace;
    int k = (int)rs_param_int(params, "k"), M = (int)rs_param_int(params, "M");
    RS_TRY(rs_check_param_experts("sticky", "k", k, tr, err));
    RS_CHECK(M >= k, err, "router sticky: parameter M=%d is below k=%d (M is a rank limit: M >= k)", M, k);
    sticky_state *s = calloc(1, sizeof *s);
    RS_CHECK(s, err, "router sticky: out of memory");
    s->k = k;
    s->E = tr->num_experts;
    s->M = M < s->E ? M : s->E;
    s->L = tr->num_layers;
    s->renorm = rs_param_bool(params, "renorm");
    s->layers = calloc((size_t)s->L, sizeof *s->layers);
    s->previous = malloc((size_t)s->L * (size_t)k * sizeof *s->previous);
    s->ranked = malloc((size_t)s->L * (size_t)s->M * sizeof *s->ranked);
    s->taken = malloc((size_t)s->L * (size_t)s->M * sizeof *s->taken);
    if (!s->layers || !s->previous || !s->ranked || !s->taken) {
        sticky_destroy(s);
        return rs_fail(err, "router sticky: out of memory");
    }
    for (int l = 0; l < s->L; l++) {
        s->layers[l].previous = s->previous + (size_t)l * (size_t)k;
        s->layers[l].ranked = s->ranked + (size_t)l * (size_t)s->M;
        s->layers[l].taken = s->taken + (size_t)l * (size_t)s->M;
    }
    shape->kmax = k;
    *state = s;
    return 0;
}

static int was_previous(const sticky_layer *sl, int32_t e)
{
    for (int j = 0; j < sl->previous_count; j++)
        if (sl->previous[j] == e)
            return 1;
    return 0;
}

/* Keeps the previous experts found in the top M, then fills by rank;
 * writes the k experts to ids in rank order. */
static void sticky_select(const sticky_state *s, sticky_layer *sl, int32_t *ids)
{
    int chosen = 0;
    for (int r = 0; r < s->M; r++) {
        sl->taken[r] = (uint8_t)was_previous(sl, sl->ranked[r]);
        chosen += sl->taken[r];
    }
    for (int r = 0; r < s->M && chosen < s->k; r++)
        if (!sl->taken[r]) {
            sl->taken[r] = 1;
            chosen++;
        }
    for (int r = 0, j = 0; r < s->M; r++)
        if (sl->taken[r])
            ids[j++] = sl->ranked[r];
}

static void sticky_route_layer(void *state, const rs_chunk *c, int layer, rs_decisions *out)
{
    sticky_state *s = state;
    sticky_layer *sl = &s->layers[layer];
    float vals[1024];
    for (int t = 0; t < c->n; t++) {
        int32_t *ids = out->ids + rs_decision_row(c, out, t, layer);
        float *w = out->weights + rs_decision_row(c, out, t, layer);
        if (rs_starts_sequence(c, t))
            sl->previous_count = 0;
        if (!rs_token_valid(c, t)) {
            rs_pad_row(ids, w, 0, out->kmax);
            continue;
        }
        rs_topk_indices(rs_chunk_logits(c, t, layer), c->E, s->M, sl->ranked, vals);
        sticky_select(s, sl, ids);
        rs_weights_from_probs(rs_chunk_probs(c, t, layer), ids, s->k, s->renorm, w);
        for (int j = 0; j < s->k; j++)
            sl->previous[j] = ids[j];
        sl->previous_count = s->k;
    }
}

static void sticky_checkpoint(void *state, rs_state_io *io)
{
    sticky_state *s = state;
    for (int l = 0; l < s->L; l++) {
        RS_STATE_ARRAY(io, s->layers[l].previous, s->k);
        RS_STATE(io, s->layers[l].previous_count);
    }
}

static const rs_router_type sticky_type = {
    .name = "sticky",
    .summary = "reuse the previous token's experts while they rank within the top M, fill the rest by rank",
    .formula = "R = TopK(z, M) in rank order; S = (S_{t-1} within R) + the best of R not yet chosen, k in all, listed "
               "in rank order; S_{t-1} = this router's choice for the previous token of the sequence (none at a "
               "sequence start); w = p_S (renorm: / sum p_S)",
    .source = "local routing consistency, Liang et al. arXiv:2505.16056 (a rule that exploits it; the paper measures "
              "it)",
    .params = sticky_params,
    .num_params = sizeof sticky_params / sizeof sticky_params[0],
    .flags = RS_ROUTER_CAUSAL | RS_ROUTER_STATEFUL,
    .needs = RS_NEEDS_LOGITS | RS_NEEDS_PROBS,
    .create = sticky_create,
    .route_layer = sticky_route_layer,
    .destroy = sticky_destroy,
    .checkpoint = sticky_checkpoint,
};

const rs_router_type *const rs_router_sticky = &sticky_type;
