/* layer_schedule: a DynaMoE-style approximation. Each layer gets a cap
 * k(l) from a schedule over depth, then the top-p rule of `topp` runs within
 * the cap: experts in descending p until their sum exceeds p or k(l) are
 * taken. DynaMoE trains its gates with the schedule; replayed on recorded
 * logits only the caps and the threshold remain. */
#include <stdlib.h>

#include "routers/common/rank_sort.h"
#include "routers/common/token_row.h"
#include "routers/common/trace_checks.h"
#include "routesim/router.h"

enum { SCHEDULE_DESCENDING, SCHEDULE_ASCENDING, SCHEDULE_PYRAMID, SCHEDULE_WAVE, SCHEDULE_UNIFORM };

typedef struct schedule_state {
    double p;
    int *cap; /* [L] k(l) */
} schedule_state;

static const rs_param_def schedule_params[] = {
    {"schedule", RS_PARAM_ENUM, "descending", 0, 0, "descending|ascending|pyramid|wave|uniform",
     "how the cap k(l) varies with depth"},
    {"k_max", RS_PARAM_INT, "4", 1, RS_RANK_MAX_E, NULL, "the largest cap (k(l) ranges over 1..k_max)"},
    {"p", RS_PARAM_FLOAT, "0.4", 0, 1, NULL, "within the cap, stop once the cumulative p exceeds this"},
    {"period", RS_PARAM_INT, "4", 1, 1e6, NULL, "wave: layers per cycle"},
};

/* round(num / den) half up, for num, den >= 0 */
static int round_ratio(long long num, long long den) { return (int)((2 * num + den) / (2 * den)); }

/* k(l) for layer l of L: x = l / (L - 1) (0 when L = 1), span = k_max - 1;
 * integer arithmetic, so the rounding is exact. */
static int schedule_cap(int schedule, int l, int L, int k_max, int period)
{
    long long span = k_max - 1, last = L > 1 ? L - 1 : 1;
    switch (schedule) {
    case SCHEDULE_DESCENDING: return 1 + round_ratio(span * (last - l), last);
    case SCHEDULE_ASCENDING: return 1 + round_ratio(span * l, last);
    case SCHEDULE_PYRAMID: {
        long long from_middle = llabs(2LL * l - (L > 1 ? L - 1 : 0));
        return 1 + round_ratio(span * (last - from_middle), last);
    }
    case SCHEDULE_WAVE: { /* triangle wave: K at l = 0 mod period, 1 half a period later */
        long long phase = l % period, from_peak = phase < period - phase ? phase : period - phase;
        return 1 + round_ratio(span * (period - 2 * from_peak), period);
    }
    default: return k_max;
    }
}

static void schedule_destroy(void *state)
{
    schedule_state *s = state;
    if (s)
        free(s->cap);
    free(s);
}

static int schedule_create(void **state, rs_router_shape *shape, const rs_params *params,
                           const rs_router_setup *setup, rs_error *err)
{
    const rs_trace_info *tr = setup->trace;
    int k_max = (int)rs_param_int(params, "k_max");
    RS_TRY(rs_check_experts_at_most("layer_schedule", RS_RANK_MAX_E, tr, err));
    RS_TRY(rs_check_param_experts("layer_schedule", "k_max", k_max, tr, err));
    schedule_state *s = calloc(1, sizeof *s);
    RS_CHECK(s, err, "router layer_schedule: out of memory");
    s->cap = malloc((size_t)tr->num_layers * sizeof *s->cap);
    if (!s->cap) {
        schedule_destroy(s);
        return rs_fail(err, "router layer_schedule: out of memory");
    }
    s->p = rs_param_float(params, "p");
    int schedule = (int)rs_param_int(params, "schedule"), period = (int)rs_param_int(params, "period");
    shape->kmax = 1;
    for (int l = 0; l < tr->num_layers; l++) {
        s->cap[l] = schedule_cap(schedule, l, tr->num_layers, k_max, period);
        shape->kmax = s->cap[l] > shape->kmax ? s->cap[l] : shape->kmax;
    }
    *state = s;
    return 0;
}

RS_VECTOR_CLONES
static void schedule_route_layer(void *state, const rs_chunk *c, int layer, rs_decisions *out)
{
    const schedule_state *s = state;
    const int E = c->E, cap = s->cap[layer];
    rs_rank_scratch scratch;
    for (int t = 0; t < c->n; t++) {
        int32_t *ids;
        float *w;
        const float *z = rs_token_row(c, out, t, layer, &ids, &w);
        if (!z)
            continue;
        const float *p = rs_chunk_probs(c, t, layer);
        rs_rank_top(z, E, cap, &scratch);
        int m = 0;
        double cum = 0.0;
        while (m < cap) {
            cum += p[scratch.order[m++]];
            if (cum > s->p)
                break;
        }
        rs_row_ranked_probs(ids, w, scratch.order, p, m, out->kmax);
    }
}

static const rs_router_type schedule_type = {
    .name = "layer_schedule",
    .summary = "DynaMoE-style: a per-layer cap k(l) from a depth schedule, then top-p within the cap",
    .formula = "x = l / (L - 1) (0 if L = 1), K = k_max, [v] = round half up; k(l) = K (uniform), 1 + [(K-1)(1-x)] "
               "(descending), 1 + [(K-1)x] (ascending), 1 + [(K-1)(1-|2x-1|)] (pyramid), "
               "1 + [(K-1)(1 - 2d/period)] with d = min(l mod period, period - l mod period) (wave, a triangle wave); order experts by (-p, index), S = the shortest "
               "prefix whose sum exceeds p, cut at k(l) experts; w_e = p_e, not renormalised; -1 padding to max k(l)",
    .source = "DynaMoE arXiv:2603.01697 (approximation: schedules and top-p cap as defined here)",
    .params = schedule_params,
    .num_params = sizeof schedule_params / sizeof schedule_params[0],
    .flags = RS_ROUTER_CAUSAL | RS_ROUTER_TOKEN_CHOICE,
    .needs = RS_NEEDS_LOGITS | RS_NEEDS_PROBS,
    .create = schedule_create,
    .route_layer = schedule_route_layer,
    .destroy = schedule_destroy,
};

const rs_router_type *const rs_router_layer_schedule = &schedule_type;
