/* segment: one fixed expert set for each segment of m consecutive tokens,
 * chosen by the SRP threshold rule of docs/metrics.md (Liang et al., arXiv
 * 2505.16056): f_e = how many of the segment's tokens have e in their top-k;
 * the set is {e : f_e >= alpha}, alpha the threshold that maximises the
 * segment's micro-F1 2 matches / (preds + acts). It knows the segment's
 * future tokens: an oracle, not causal. Segments start at each sequence
 * start (the last one of a sequence may be shorter), so the router asks for
 * whole sequences per chunk. */
#include <stdlib.h>

#include "routers/common/trace_checks.h"
#include "routers/locality/locality.h"
#include "routesim/select.h"
#include "routesim/router.h"

typedef struct segment_layer {
    int32_t *count; /* [E] f_e of the current segment */
    int32_t *set;   /* [E] the segment's experts, by index */
    int32_t *topk;  /* [k] one token's top-k */
} segment_layer;

typedef struct segment_state {
    int k, E, L, renorm;
    long long m, alpha; /* alpha < 0: per segment the F1-best threshold */
    segment_layer *layers;
    int32_t *buffers;
} segment_state;

static const rs_param_def segment_params[] = {
    {"m", RS_PARAM_INT, "16", 1, 1 << 30, NULL, "segment length in tokens"},
    {"k", RS_PARAM_INT, "2", 1, 1024, NULL, "experts per token of the top-k the counts f_e come from"},
    {"alpha", RS_PARAM_INT, NULL, 0, 1 << 30, NULL,
     "fixed threshold: experts with f_e >= alpha (unset: per segment the alpha with the best micro-F1)"},
    {"renorm", RS_PARAM_BOOL, "1", 0, 1, NULL, "renormalise each token's weights over the segment's set"},
};

static void segment_destroy(void *state)
{
    segment_state *s = state;
    if (!s)
        return;
    free(s->layers);
    free(s->buffers);
    free(s);
}

static int segment_create(void **state, rs_router_shape *shape, const rs_params *params, const rs_router_setup *setup,
                          rs_error *err)
{
    const rs_trace_info *tr = setup->trace;
    int k = (int)rs_param_int(params, "k");
    RS_TRY(rs_check_param_experts("segment", "k", k, tr, err));
    segment_state *s = calloc(1, sizeof *s);
    RS_CHECK(s, err, "router segment: out of memory");
    s->k = k;
    s->E = tr->num_experts;
    s->L = tr->num_layers;
    s->m = rs_param_int(params, "m");
    s->alpha = rs_param_is_set(params, "alpha") ? rs_param_int(params, "alpha") : -1;
    s->renorm = rs_param_bool(params, "renorm");
    size_t per_layer = 2 * (size_t)s->E + (size_t)k;
    s->layers = calloc((size_t)s->L, sizeof *s->layers);
    s->buffers = malloc((size_t)s->L * per_layer * sizeof *s->buffers);
    if (!s->layers || !s->buffers) {
        segment_destroy(s);
        return rs_fail(err, "router segment: out of memory");
    }
    for (int l = 0; l < s->L; l++) {
        int32_t *b = s->buffers + (size_t)l * per_layer;
        s->layers[l] = (segment_layer){.count = b, .set = b + s->E, .topk = b + 2 * s->E};
    }
    /* a segment of m tokens names at most m k experts; alpha = 0 takes all */
    long long most = s->alpha == 0 ? s->E : s->m * k;
    shape->kmax = most < s->E ? (int)most : s->E;
    shape->group = RS_GROUP_SEQUENCE;
    *state = s;
    return 0;
}

/* The SRP rule on one segment of `tokens` valid tokens: the alpha in
 * 1..tokens maximising 2 matches / (preds + acts), ties to the larger alpha
 * (alpha = 0 adds every unused expert and never scores higher than 1).
 * Compared as exact integer fractions. */
static long long best_alpha(const int32_t *count, int E, long long tokens, int k)
{
    const long long acts = tokens * k;
    long long best = 1, best_num = -1, best_den = 1;
    for (long long alpha = tokens; alpha >= 1; alpha--) {
        long long matches = 0, pairs = 0;
        for (int e = 0; e < E; e++)
            if (count[e] >= alpha) {
                matches += count[e];
                pairs++;
            }
        long long num = 2 * matches, den = tokens * pairs + acts;
        if ((__int128)num * best_den > (__int128)best_num * den) { /* strict: the larger alpha wins ties */
            best = alpha;
            best_num = num;
            best_den = den;
        }
    }
    return best;
}

/* Routes chunk tokens [a, b), one segment, at one layer. */
static void route_segment(const segment_state *s, segment_layer *sl, const rs_chunk *c, int layer, int a, int b,
                          rs_decisions *out)
{
    const int E = c->E, k = s->k;
    float vals[1024];
    for (int e = 0; e < E; e++)
        sl->count[e] = 0;
    long long tokens = 0;
    for (int t = a; t < b; t++) {
        if (!rs_token_valid(c, t))
            continue;
        rs_topk_indices(rs_chunk_logits(c, t, layer), E, k, sl->topk, vals);
        for (int j = 0; j < k; j++)
            sl->count[sl->topk[j]]++;
        tokens++;
    }
    long long alpha = s->alpha >= 0 ? s->alpha : tokens > 0 ? best_alpha(sl->count, E, tokens, k) : 1;
    int n = 0;
    for (int e = 0; e < E; e++)
        if (sl->count[e] >= alpha)
            sl->set[n++] = e;
    for (int t = a; t < b; t++) {
        int32_t *ids = out->ids + rs_decision_row(c, out, t, layer);
        float *w = out->weights + rs_decision_row(c, out, t, layer);
        if (!rs_token_valid(c, t) || n == 0) {
            rs_pad_row(ids, w, 0, out->kmax);
            continue;
        }
        for (int j = 0; j < n; j++)
            ids[j] = sl->set[j];
        rs_sort_by_score(ids, n, rs_chunk_logits(c, t, layer));
        rs_weights_from_probs(rs_chunk_probs(c, t, layer), ids, n, s->renorm, w);
        rs_pad_row(ids, w, n, out->kmax);
    }
}

static void segment_route_layer(void *state, const rs_chunk *c, int layer, rs_decisions *out)
{
    segment_state *s = state;
    segment_layer *sl = &s->layers[layer];
    int t = 0;
    while (t < c->n) {
        int seq = c->seq_of_token[t];
        int64_t first = c->seq_offsets[seq], end = c->seq_offsets[seq + 1];
        int64_t g = c->t0 + t;
        int64_t stop = g - (g - first) % s->m + s->m;
        stop = stop < end ? stop : end;
        /* chunks hold whole sequences (group = sequence); clamp all the same */
        int b = stop - c->t0 < c->n ? (int)(stop - c->t0) : c->n;
        route_segment(s, sl, c, layer, t, b, out);
        t = b;
    }
}

static const rs_router_type segment_type = {
    .name = "segment",
    .summary = "one expert set per segment of m tokens by the SRP threshold rule (oracle: looks at future tokens)",
    .formula = "per segment of m tokens of a sequence: f_e = #tokens with e in TopK(z, k); S = {e : f_e >= alpha}, "
               "alpha maximising 2 matches / (preds + acts) (matches = sum of f_e over S, preds = tokens |S|, acts = "
               "tokens k; ties to the larger alpha) unless alpha is given; every token of the segment gets S in its "
               "own rank order, w = p_S (renorm: / sum p_S)",
    .source = "SRP oracle of Liang et al. arXiv:2505.16056 (ljcleo/moe-lrc); segments do not overlap, unlike the "
              "SRP metric's stride-1 windows",
    .params = segment_params,
    .num_params = sizeof segment_params / sizeof segment_params[0],
    .flags = RS_ROUTER_STATEFUL | RS_ROUTER_GROUPED,
    .needs = RS_NEEDS_LOGITS | RS_NEEDS_PROBS,
    .create = segment_create,
    .route_layer = segment_route_layer,
    .destroy = segment_destroy,
    .checkpoint = rs_router_no_state, /* scratch per group or chunk */
};

const rs_router_type *const rs_router_segment = &segment_type;
