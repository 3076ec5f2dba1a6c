/* top_any: DynMoE's top-any gating replayed on plain logits. DynMoE scores
 * experts with a sigmoid of a cosine similarity and keeps every expert whose
 * score exceeds its trainable gate, falling back to the argmax; the kept
 * experts share the token equally (LINs-lab/DynMoE
 * DeepSpeed-0.9.5/deepspeed/moe/sharded_moe.py, GAMoEGateT.forward and
 * topanygating_opt: gates / K). Here the score is sigmoid(z) and the gate
 * one threshold for all experts. */
#include <math.h>
#include <stdlib.h>

#include "routers/common/rank_sort.h"
#include "routers/common/token_row.h"
#include "routers/common/trace_checks.h"
#include "routesim/router.h"

typedef struct top_any_state {
    double threshold;
    /* z above sure_above certainly passes, z below sure_below certainly
     * fails; only the band between needs the sigmoid (see find_band) */
    float sure_below, sure_above;
    float sure_from; /* the float after sure_above: z > sure_above is z >= sure_from */
} top_any_state;

static const rs_param_def top_any_params[] = {
    {"threshold", RS_PARAM_FLOAT, "0.5", 0, 1, NULL,
     "keep experts with sigmoid(z) above this (DynMoE's gates start at sigmoid(0) = 0.5)"},
};

static int passes(double z, double threshold) { return 1.0 / (1.0 + exp(-z)) > threshold; }

/* The sigmoid rises monotonically through the threshold at z* = logit(t).
 * Around z* a band of relative width 1e-4 is kept for the exact test; its
 * ends are checked with the exact expression, the sigmoid at them being
 * ~1e-4 t (1 - t) away from t, many orders above its rounding error, so
 * every z beyond an end falls on the same side. Where the check fails
 * (t at or next to 0 or 1) the band covers every z. */
static void find_band(top_any_state *s)
{
    double t = s->threshold, center = log(t) - log1p(-t), half = 1e-4 * (1.0 + fabs(center));
    s->sure_below = -INFINITY;
    s->sure_above = INFINITY;
    if (!(t > 0.0 && t < 1.0 && isfinite(center)))
        return;
    float below = (float)(center - half), above = (float)(center + half);
    if (passes(below, t * (1.0 - 1e-12)) || !passes(above, t * (1.0 + 1e-12)))
        return;
    s->sure_below = below;
    s->sure_above = above;
}

static int top_any_create(void **state, rs_router_shape *shape, const rs_params *params,
                          const rs_router_setup *setup, rs_error *err)
{
    const rs_trace_info *tr = setup->trace;
    RS_TRY(rs_check_experts_at_most("top_any", RS_RANK_MAX_E, tr, err));
    top_any_state *s = malloc(sizeof *s);
    RS_CHECK(s, err, "router top_any: out of memory");
    s->threshold = rs_param_float(params, "threshold");
    find_band(s);
    s->sure_from = nextafterf(s->sure_above, INFINITY);
    shape->kmax = tr->num_experts;
    shape->scoring = RS_SCORING_SIGMOID;
    *state = s;
    return 0;
}

RS_VECTOR_CLONES
static void top_any_route_layer(void *state, const rs_chunk *c, int layer, rs_decisions *out)
{
    const top_any_state *s = state;
    const int E = c->E;
    const float below = s->sure_below, above = s->sure_above;
    rs_rank_scratch scratch;
    int32_t chosen[RS_RANK_MAX_E + RS_LANES];
    float chosen_z[RS_RANK_MAX_E + RS_LANES];
    for (int t = 0; t < c->n; t++) {
        int32_t *ids;
        float *w;
        const float *z = rs_token_row(c, out, t, layer, &ids, &w);
        if (!z)
            continue;
        /* the sure side gathered on whole vectors (z > above is z >= the
         * float after it); a row with a value in the band is redone with
         * the exact test */
        int near = 0;
        for (int e = 0; e < E; e++)
            near |= (z[e] >= below) & (z[e] <= above);
        int m = rs_gather_at_least(z, E, s->sure_from, chosen, chosen_z);
        if (near) {
            m = 0;
            for (int e = 0; e < E; e++) {
                chosen[m] = e;
                chosen_z[m] = z[e];
                m += passes(z[e], s->threshold);
            }
        }
        if (m == 0) {
            rs_rank_top(z, E, 1, &scratch);
            ids[0] = scratch.order[0];
            m = 1;
        } else {
            rs_rank_gathered(chosen_z, chosen, m, scratch.order, &scratch);
            for (int j = 0; j < m; j++)
                ids[j] = scratch.order[j];
        }
        for (int j = 0; j < m; j++)
            w[j] = 1.0f / (float)m;
        rs_pad_row(ids, w, m, out->kmax);
    }
}

static void top_any_destroy(void *state) { free(state); }

static const rs_router_type top_any_type = {
    .name = "top_any",
    .summary = "DynMoE top-any on plain logits: every expert with sigmoid(z) above threshold, equal weights",
    .formula = "S = {e : s_e > threshold} (s = sigmoid(z) in double); S empty -> {argmax z}; w_e = 1/|S|; "
               "ids in (-z, index) order, -1 padding to E",
    .source = "DynMoE arXiv:2405.14297 (approximation on plain logits; LINs-lab/DynMoE "
              "DeepSpeed-0.9.5/deepspeed/moe/sharded_moe.py GAMoEGateT.forward, topanygating_opt)",
    .params = top_any_params,
    .num_params = sizeof top_any_params / sizeof top_any_params[0],
    .flags = RS_ROUTER_CAUSAL | RS_ROUTER_TOKEN_CHOICE,
    .needs = RS_NEEDS_LOGITS,
    .create = top_any_create,
    .route_layer = top_any_route_layer,
    .destroy = top_any_destroy,
};

const rs_router_type *const rs_router_top_any = &top_any_type;
