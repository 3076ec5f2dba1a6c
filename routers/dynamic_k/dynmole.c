/* dynmole: DynMoLE's hybrid routing. Experts in descending p are kept while
 * the cumulative sum stays <= top_p, and the top keep_top_k always; a token
 * whose normalised Tsallis entropy exceeds h_max activates every expert.
 * Weights are the probabilities of the kept experts (mikecovlee/DynMoLE
 * moe_peft/adapters/dynmole/model.py, _dynamic_routing; entropy from
 * moe_peft/common/moe_utils.py, tsallis_entropy). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "routers/common/rank_sort.h"
#include "routers/common/token_row.h"
#include "routers/common/trace_checks.h"
#include "routesim/router.h"

typedef struct dynmole_state {
    double top_p, q, h_max, eps;
    int keep_top_k;
    double max_entropy; /* of the uniform distribution over E, the normaliser */
    double critical_sum; /* q != 1: sum of (p + eps)^q at which the entropy ratio is h_max */
    int broadcast;      /* h_max < 1 and E > 1: high-entropy tokens take every expert */
} dynmole_state;

static const rs_param_def dynmole_params[] = {
    {"top_p", RS_PARAM_FLOAT, "0.75", 0, 1, NULL, "keep experts while the cumulative p stays <= top_p"},
    {"keep_top_k", RS_PARAM_INT, "2", 1, RS_RANK_MAX_E, NULL, "experts always kept (the top ones)"},
    {"q", RS_PARAM_FLOAT, "1.1", 1e-6, 2, NULL, "Tsallis entropy index (entropy_index; 1 = Shannon)"},
    {"h_max", RS_PARAM_FLOAT, "0.9", 0, 1, NULL,
     "normalised entropy above which every expert is active (1 = never)"},
    {"eps", RS_PARAM_FLOAT, "1e-5", 0, 1, NULL, "added to p inside the entropy (entropy_eps)"},
};

/* Tsallis entropy of p + eps with index q (Shannon at q = 1), unnormalised. */
static double tsallis(const float *p, int E, double q, double eps)
{
    double sum = 0.0;
    if (q == 1.0) {
        for (int e = 0; e < E; e++) {
            double x = (double)p[e] + eps;
            sum -= x > 0.0 ? x * log(x) : 0.0;
        }
        return sum;
    }
    for (int e = 0; e < E; e++)
        sum += exp(q * log((double)p[e] + eps)); /* pow, about twice as fast */
    return (1.0 - sum) / (q - 1.0);
}

/* ln x for a normal float x > 0, in float steps: x = m 2^k with m in
 * [sqrt(1/2), sqrt(2)), ln m = 2 atanh(t), t = (m - 1) / (m + 1), |t| <
 * 0.172; the series to t^9 leaves 1e-9, the float steps a few 1e-8 of
 * |ln x| + 1. Integer and float steps only, so the loop below vectorises. */
__attribute__((always_inline)) static inline float estimate_logf(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    float k = (float)((int32_t)(u >> 23) - 127);
    uint32_t mantissa_bits = (u & 0x7fffffu) | 0x3f800000u;
    float m;
    memcpy(&m, &mantissa_bits, sizeof m);
    float high = m > 1.41421356f ? 1.0f : 0.0f;
    m = high > 0.0f ? m * 0.5f : m;
    k += high;
    float t = (m - 1.0f) / (m + 1.0f), t2 = t * t;
    float series = t * (2.0f + t2 * (2.0f / 3 + t2 * (2.0f / 5 + t2 * (2.0f / 7 + t2 * (2.0f / 9)))));
    return k * 0.693147182f + series;
}

/* e^y for y in [-87, 2], in float steps: 2^n e^r with n = y / ln 2 rounded
 * to nearest (adding 1.5 2^23 rounds, and leaves n in the low bits), r = y
 * - n ln 2 in two steps (ln 2 = hi + lo, hi with 12 bits) so |r| <= 0.35;
 * Taylor to r^7 (6e-9), a few 1e-7 relative with the float steps. */
__attribute__((always_inline)) static inline float estimate_expf(float y)
{
    const float round_bias = 12582912.0f;
    float shifted = y * 1.44269502f + round_bias, n = shifted - round_bias;
    float r = (y - n * 0.693145752f) - n * 1.42860677e-6f;
    float poly = 1.0f / 5040;
    poly = poly * r + 1.0f / 720;
    poly = poly * r + 1.0f / 120;
    poly = poly * r + 1.0f / 24;
    poly = poly * r + 1.0f / 6;
    poly = poly * r + 1.0f / 2;
    poly = poly * r + 1.0f;
    poly = poly * r + 1.0f;
    uint32_t shifted_bits;
    memcpy(&shifted_bits, &shifted, sizeof shifted_bits);
    uint32_t bits = (shifted_bits - 0x4b400000u + 127u) << 23; /* 2^n */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return poly * scale;
}

/* An estimate of S = sum of (p + eps)^q, within an absolute 2e-5 S + 1e-7 E
 * of what tsallis sums with libm for E <= 4096 (ESTIMATE_MARGIN keeps five
 * times more). Each term x^q = e^y, y = q ln x, is computed in float: x =
 * p + eps to 2^-24, ln x to a few 1e-8 of |ln x| + 1, so y to 2e-7 |y| +
 * 1e-7 and the term to e^y (2e-7 |y| + 5e-7), below 5e-7 e^y + 1e-7 (as
 * e^y |y| <= 1/e); y below -87 is taken as -87 (a term under 2e-38). A
 * subnormal x is scaled by 2^64 for its logarithm. Terms are summed in
 * RS_LANES float lanes, then a tree: (E / RS_LANES + 4) 2^-24 S at most. */
__attribute__((always_inline)) static inline float estimate_power_sum(const float *p, int E, float q, float eps)
{
    float lane_sum[RS_LANES] = {0}, sum = 0.0f;
    int b = 0;
    for (; b + RS_LANES <= E; b += RS_LANES) {
        RS_OMP_SIMD
        for (int i = 0; i < RS_LANES; i++) {
            float x = p[b + i] + eps;
            float tiny = x < 0x1p-100f ? 1.0f : 0.0f;
            float log_x = estimate_logf(tiny > 0.0f ? (x > 0.0f ? x * 0x1p64f : 1.0f) : x) -
                          tiny * 44.3614196f; /* 64 ln 2 */
            float y = q * log_x;
            float power = estimate_expf(y > -87.0f ? y : -87.0f);
            lane_sum[i] += x > 0.0f ? power : 0.0f;
        }
    }
    for (; b < E; b++) {
        float x = p[b] + eps;
        float tiny = x < 0x1p-100f ? 1.0f : 0.0f;
        float y = q * (estimate_logf(tiny > 0.0f ? (x > 0.0f ? x * 0x1p64f : 1.0f) : x) - tiny * 44.3614196f);
        sum += x > 0.0f ? estimate_expf(y > -87.0f ? y : -87.0f) : 0.0f;
    }
    float half[RS_LANES / 2], quarter[RS_LANES / 4];
    for (int i = 0; i < RS_LANES / 2; i++)
        half[i] = lane_sum[i] + lane_sum[i + RS_LANES / 2];
    for (int i = 0; i < RS_LANES / 4; i++)
        quarter[i] = half[i] + half[i + RS_LANES / 4];
    return sum + (quarter[0] + quarter[1]) + (quarter[2] + quarter[3]);
}

/* The estimate's error bound above, five times over. */
#define ESTIMATE_MARGIN(sum, E) (1e-4 * (sum) + 5e-6 * (E))

/* Whether the token's normalised entropy exceeds h_max. The ratio falls as
 * the power sum S rises (q > 1; rises for q < 1), crossing h_max at
 * critical_sum: an estimate of S clear of it by far more than its error
 * decides as the libm sum would; only tokens near the crossing (and
 * Shannon's q = 1, whose terms change sign) take the libm sum. */
__attribute__((always_inline)) static inline int entropy_above(const dynmole_state *s, const float *p, int E)
{
    if (s->q != 1.0) {
        double sum = estimate_power_sum(p, E, (float)s->q, (float)s->eps), margin = ESTIMATE_MARGIN(sum, E);
        if (sum < s->critical_sum - margin)
            return s->q > 1.0;
        if (sum > s->critical_sum + margin)
            return s->q < 1.0;
    }
    return tsallis(p, E, s->q, s->eps) / s->max_entropy > s->h_max;
}

static int dynmole_create(void **state, rs_router_shape *shape, const rs_params *params,
                          const rs_router_setup *setup, rs_error *err)
{
    const rs_trace_info *tr = setup->trace;
    const int E = tr->num_experts;
    int keep = (int)rs_param_int(params, "keep_top_k");
    RS_TRY(rs_check_experts_at_most("dynmole", RS_RANK_MAX_E, tr, err));
    RS_TRY(rs_check_param_experts("dynmole", "keep_top_k", keep, tr, err));
    dynmole_state *s = malloc(sizeof *s);
    RS_CHECK(s, err, "router dynmole: out of memory");
    s->top_p = rs_param_float(params, "top_p");
    s->keep_top_k = keep;
    s->q = rs_param_float(params, "q");
    s->h_max = rs_param_float(params, "h_max");
    s->eps = rs_param_float(params, "eps");
    s->max_entropy = s->q == 1.0 ? log((double)E) : (1.0 - pow((double)E, 1.0 - s->q)) / (s->q - 1.0);
    s->critical_sum = 1.0 - s->h_max * s->max_entropy * (s->q - 1.0);
    s->broadcast = s->h_max < 1.0 && E > 1;
    shape->kmax = E;
    *state = s;
    return 0;
}

RS_VECTOR_CLONES
static void dynmole_route_layer(void *state, const rs_chunk *c, int layer, rs_decisions *out)
{
    const dynmole_state *s = state;
    const int E = c->E;
    rs_rank_scratch scratch;
    for (int t = 0; t < c->n; t++) {
        int32_t *ids;
        float *w;
        const float *z = rs_token_row(c, out, t, layer, &ids, &w);
        if (!z)
            continue;
        const float *p = rs_chunk_probs(c, t, layer);
        int m = 0;
        if (s->broadcast && entropy_above(s, p, E)) {
            rs_rank_top(z, E, E, &scratch);
            m = E;
        } else {
            int ranked = rs_rank_mass_prefix(z, p, E, s->top_p, &scratch);
            double cum = 0.0;
            while (m < E) {
                cum += p[rs_rank_walk_at(z, E, m, &ranked, &scratch)];
                if (m >= s->keep_top_k && cum > s->top_p)
                    break;
                m++;
            }
        }
        rs_row_ranked_probs(ids, w, scratch.order, p, m, out->kmax);
    }
}

/* The top-p walk on the device. The entropy test calls libm (log, exp)
 * for tokens near h_max, whose device versions need not give glibc's bits:
 * with it (h_max < 1) dynmole runs on the CPU. */
static int dynmole_route_device(void *state, const rs_device_chunk *c, rs_decisions *out)
{
    const dynmole_state *s = state;
    if (s->broadcast || c->E > RS_DEVICE_MAX_E)
        return -1;
    const double top_p = s->top_p;
    const int keep_top_k = s->keep_top_k, E = c->E, kmax = out->kmax;
    const float *logits = c->logits, *probs = c->probs;
    int32_t *ids = out->ids;
    float *weights = out->weights;
    const int64_t rows = (int64_t)c->n * c->L;
#pragma omp target teams distribute parallel for device(c->device) is_device_ptr(logits, probs, ids, weights)
    for (int64_t r = 0; r < rows; r++) {
        const float *z = logits + r * E, *p = probs + r * E;
        int32_t order[RS_DEVICE_MAX_E];
        uint64_t last = 0;
        int m = 0;
        double cum = 0.0;
        while (m < E) {
            order[m] = rs_rank_walk_next(z, E, m, &last);
            cum += p[order[m]];
            if (m >= keep_top_k && cum > top_p)
                break;
            m++;
        }
        rs_row_ranked_probs(ids + r * kmax, weights + r * kmax, order, p, m, kmax);
    }
    return 0;
}

static void dynmole_destroy(void *state) { free(state); }

static const rs_router_type dynmole_type = {
    .name = "dynmole",
    .summary = "DynMoLE: top-p (cumsum <= top_p) plus the top keep_top_k; every expert when the entropy is high",
    .formula = "order experts by (-p, index), c_j = cumulative p; keep the j-th if j <= keep_top_k or c_j <= top_p; "
               "if H_q(p + eps) / H_q(uniform) > h_max (Tsallis, H_q = (1 - sum x^q) / (q - 1), Shannon at q = 1; "
               "only when h_max < 1) keep all E; w_e = p_e, not renormalised; ids in rank order, -1 padding to E",
    .source = "DynMoLE arXiv:2504.00661 (mikecovlee/DynMoLE moe_peft/adapters/dynmole/model.py _dynamic_routing, "
              "moe_peft/common/moe_utils.py tsallis_entropy)",
    .params = dynmole_params,
    .num_params = sizeof dynmole_params / sizeof dynmole_params[0],
    .flags = RS_ROUTER_CAUSAL | RS_ROUTER_TOKEN_CHOICE,
    .needs = RS_NEEDS_LOGITS | RS_NEEDS_PROBS,
    .create = dynmole_create,
    .route_layer = dynmole_route_layer,
    .destroy = dynmole_destroy,
    .route_device = dynmole_route_device,
};

const rs_router_type *const rs_router_dynmole = &dynmole_type;
