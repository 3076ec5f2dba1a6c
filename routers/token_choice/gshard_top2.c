/* gshard_top2: GShard's top-2 gating. e1 = argmax p; e2 = the best of the
 * rest (policy = sampling: of the rest's logits plus Gumbel noise); with
 * policy = random, e2 is kept only when 2 p_e2 > U(0, 1). The weights are
 * p_e1, p_e2 renormalised over the kept experts. Dropless unless
 * capacity_factor is given; then the capacity stage queues every token's
 * first choice before any second choice (drop_policy = position) and
 * renormalises the survivors (renorm_after_drop defaults to 1 here), which
 * is fairseq's top2gating with normalize_gate_prob_before_dropping = False.
 *
 * policy defaults to random, the first choice routers.md lists (fairseq's
 * default is sampling). With capacity, C = ceil(factor * 2 T / E) as in
 * DeepSpeed's top2gating; fairseq fixes C = 2 * ceil(T / E).
 *
 * Draws come from the keyed stream of (seed, layer, token): the uniform of
 * policy = random is its first draw, the Gumbel noise of policy = sampling
 * one draw per expert in index order. */
#include <math.h>
#include <stdlib.h>

#include "routesim/select.h"
#include "routesim/rng.h"
#include "routesim/router.h"

enum { POLICY_RANDOM, POLICY_ALL, POLICY_SAMPLING };

typedef struct gshard_state {
    int policy;
    uint64_t seed;
} gshard_state;

static const rs_param_def gshard_params[] = {
    {"policy", RS_PARAM_ENUM, "random", 0, 0, "random|all|sampling",
     "second expert: random = kept iff 2 p_e2 > U(0,1); all = always; sampling = Gumbel-max over the rest"},
    {"seed", RS_PARAM_INT, "0", 0, 9007199254740991.0, NULL, "random seed (policy random and sampling)"},
};

static int gshard_create(void **state, rs_router_shape *shape, const rs_params *params, const rs_router_setup *setup,
                         rs_error *err)
{
    RS_CHECK(setup->trace->num_experts >= 2, err, "router gshard_top2: picks 2 experts, but %s has num_experts=%d",
             setup->trace->path, setup->trace->num_experts);
    gshard_state *s = malloc(sizeof *s);
    RS_CHECK(s, err, "router gshard_top2: out of memory");
    s->policy = (int)rs_param_int(params, "policy");
    s->seed = (uint64_t)rs_param_int(params, "seed");
    shape->kmax = 2;
    *state = s;
    return 0;
}

/* Uniform in (0, 1): never 0, so log(-log(u)) stays finite. */
static double open_uniform(rs_rng *rng) { return ((double)(rs_rng_next(rng) >> 11) + 0.5) * 0x1.0p-53; }

static void gshard_route_layer(void *state, const rs_chunk *c, int layer, rs_decisions *out)
{
    const gshard_state *s = state;
    const int E = c->E;
    for (int t = 0; t < c->n; t++) {
        const float *z = rs_chunk_logits(c, t, layer);
        const float *p = rs_chunk_probs(c, t, layer);
        int32_t *ids = out->ids + rs_decision_row(c, out, t, layer);
        float *w = out->weights + rs_decision_row(c, out, t, layer);
        rs_rng rng = rs_rng_keyed(s->seed, (uint64_t)layer, (uint64_t)(c->t0 + t));

        /* the top two of z are e1 and the best of the rest (softmax is monotone; ties to the lower index) */
        int32_t top2[2];
        float vals[2];
        rs_topk_indices(z, E, 2, top2, vals);
        if (top2[0] < 0 || top2[1] < 0) { /* only for NaN rows, which the engine skips */
            rs_pad_row(ids, w, 0, 2);
            continue;
        }
        int e1 = top2[0], e2 = top2[1];
        if (s->policy == POLICY_SAMPLING) {
            double best = -INFINITY;
            e2 = -1;
            for (int e = 0; e < E; e++) {
                double key = z[e] - log(-log(open_uniform(&rng))); /* z + Gumbel(0, 1) */
                if (e != e1 && (e2 < 0 || key > best)) {
                    e2 = e;
                    best = key;
                }
            }
        }
        double p1 = p[e1], p2 = p[e2];
        int keep2 = s->policy != POLICY_RANDOM || 2.0 * p2 > rs_rng_uniform(&rng);
        double sum = p1 + (keep2 ? p2 : 0.0);
        double inv = sum > 0.0 ? 1.0 / sum : 0.0;
        ids[0] = e1;
        w[0] = (float)(p1 * inv);
        ids[1] = keep2 ? e2 : -1;
        w[1] = keep2 ? (float)(p2 * inv) : 0.0f;
    }
}

static void gshard_destroy(void *state) { free(state); }

static const rs_router_type gshard_type = {
    .name = "gshard_top2",
    .summary = "GShard top-2: argmax, then a second expert kept with probability 2 p (or always, or sampled)",
    .formula = "e1 = argmax p; e2 = argmax_{e != e1} z (sampling: z + Gumbel); random: keep e2 iff 2 p_e2 > U(0,1); "
               "w = (p_e1, p_e2) / (p_e1 + p_e2) over the kept; with capacity_factor, position priority puts all "
               "first choices before second choices and renorm_after_drop (default 1) renormalises the survivors",
    .source = "GShard arXiv:2006.16668 (fairseq moe/top2gate.py top2gating; DeepSpeed moe/sharded_moe.py top2gating)",
    .params = gshard_params,
    .num_params = sizeof gshard_params / sizeof gshard_params[0],
    .flags = RS_ROUTER_CAUSAL | RS_ROUTER_STOCHASTIC | RS_ROUTER_TOKEN_CHOICE,
    .needs = RS_NEEDS_LOGITS | RS_NEEDS_PROBS,
    .capacity_defaults = "renorm_after_drop=1",
    .create = gshard_create,
    .route_layer = gshard_route_layer,
    .destroy = gshard_destroy,
};

const rs_router_type *const rs_router_gshard_top2 = &gshard_type;
