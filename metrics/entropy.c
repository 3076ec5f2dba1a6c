/* entropy: how sure the router is (router_entropy, tsallis_entropy), how
 * large its logits are (z_loss), how decisive its top-k boundary is
 * (topk_margin) and how much probability mass the selection keeps
 * (selected_mass). Per-token values go into 64.64 fixed-point sums, so
 * results do not depend on chunking or merge order. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "metrics/router_probs.h"
#include "routesim/fastmath.h"
#include "routesim/metric.h"
#include "routesim/router.h"
#include "routesim/vector.h"
#include "routesim/xsum.h"

enum { OUT_ROUTER_ENTROPY, OUT_SELECTED_MASS, OUT_TSALLIS_ENTROPY, OUT_Z_LOSS, OUT_TOPK_MARGIN };
enum { PARAM_Q, PARAM_K };

static const rs_param_def entropy_params[] = {
    [PARAM_Q] = {"q", RS_PARAM_FLOAT, "1.1", 0.01, 100, NULL,
                 "entropic index of tsallis_entropy (1 = Shannon; DynMoLE uses 1.1)"},
    [PARAM_K] = {"k", RS_PARAM_INT, NULL, 1, 1024, NULL,
                 "rank of topk_margin for every token (default: the experts the router requested for the token)"},
};

static const rs_metric_output entropy_outputs[] = {
    [OUT_ROUTER_ENTROPY] = {"router_entropy", "mean over tokens of -sum_e p log p / log E (p: the full softmax, or the router's normalised scores)", 0,
                            RS_AGG_MEAN, .label = "router entropy (1 = uniform)"},
    [OUT_SELECTED_MASS] = {"selected_mass", "mean over tokens of sum_{e in S_t} p_t[e]", 0, RS_AGG_MEAN,
                           .label = "selected probability mass", .unit = "%", .unit_scale = 100},
    [OUT_TSALLIS_ENTROPY] = {"tsallis_entropy",
                             "mean over tokens of (1 - sum_e p^q) / (1 - E^(1-q)): Tsallis entropy over its maximum",
                             1ull << PARAM_Q, RS_AGG_MEAN, .label = "Tsallis entropy (1 = uniform)"},
    [OUT_Z_LOSS] = {"z_loss", "mean over tokens of (logsumexp_e z_t[e])^2 (ST-MoE router z-loss)", 0, RS_AGG_MEAN,
                    .label = "router z-loss"},
    [OUT_TOPK_MARGIN] = {"topk_margin",
                         "mean over tokens of z_(k) - z_(k+1), raw logits sorted descending, k = requested experts",
                         1ull << PARAM_K, RS_AGG_MEAN, .label = "top-k logit margin"},
};

typedef struct entropy_layer {
    rs_xsum entropy, mass, tsallis, z_loss, margin;
} entropy_layer;

typedef struct entropy_acc {
    int L, E;
    double q;
    int fixed_k;          /* parameter k, 0 = per token */
    int want_tsallis, want_z_loss, want_margin; /* outputs not in the results are not computed */
    entropy_layer *layers;
    /* [L][E] scratch for topk_margin, one row per layer (layers run in parallel) */
    float *scratch; /* a copy of the logits */
    rs_scoring scoring; /* what p is (router_probs.h) */
    double *scores;     /* [L][E] the row's scores when scoring is not softmax, else NULL */
} entropy_acc;

static void entropy_destroy(void *p)
{
    entropy_acc *a = p;
    if (a) {
        free(a->layers);
        free(a->scratch);
        free(a->scores);
    }
    free(a);
}

static int entropy_create(void **out, const rs_params *params, const rs_metric_setup *setup, rs_error *err)
{
    entropy_acc *a = calloc(1, sizeof *a);
    RS_CHECK(a, err, "metric entropy: out of memory");
    a->L = setup->trace->num_layers;
    a->E = setup->trace->num_experts;
    a->q = rs_param_float(params, "q");
    a->want_tsallis = rs_metric_wants(setup, OUT_TSALLIS_ENTROPY);
    a->want_z_loss = rs_metric_wants(setup, OUT_Z_LOSS);
    a->want_margin = rs_metric_wants(setup, OUT_TOPK_MARGIN);
    a->fixed_k = rs_param_is_set(params, "k") ? (int)rs_param_int(params, "k") : 0;
    a->scoring = setup->scoring;
    if (a->fixed_k >= a->E) {
        int k = a->fixed_k, E = a->E;
        free(a);
        return rs_fail(err, "metric entropy: parameter k=%d must be below num_experts (%d): topk_margin needs z_(k+1)",
                       k, E);
    }
    a->layers = calloc((size_t)a->L, sizeof *a->layers);
    a->scratch = malloc((size_t)a->L * (size_t)a->E * sizeof *a->scratch);
    if (a->scoring != RS_SCORING_SOFTMAX)
        a->scores = malloc((size_t)a->L * (size_t)a->E * sizeof *a->scores);
    if (!a->layers || !a->scratch || (a->scoring != RS_SCORING_SOFTMAX && !a->scores)) {
        entropy_destroy(a);
        return rs_fail(err, "metric entropy: out of memory");
    }
    *out = a;
    return 0;
}

/* sum_e e^(q (z_e - max)): log sum_e p_e^q is its log minus q log_norm.
 * Shifting by the row's maximum (not by lse, which rounds at large logits)
 * keeps every exponent <= 0 and the sum >= 1 (the maximum's term is 1);
 * fixed-lane maxima and sums give the same bits on every vector width and
 * on the device (no libm call). */
__attribute__((always_inline)) static inline double power_sum(const float *z, int E, double q)
{
    float max_lane[RS_LANES], lane[RS_LANES] = {0};
    for (int j = 0; j < RS_LANES; j++)
        max_lane[j] = z[0];
    int b = 0;
    for (; b + RS_LANES <= E; b += RS_LANES) {
#pragma omp simd
        for (int j = 0; j < RS_LANES; j++)
            max_lane[j] = z[b + j] > max_lane[j] ? z[b + j] : max_lane[j];
    }
    for (int j = 0; b + j < E; j++)
        max_lane[j] = z[b + j] > max_lane[j] ? z[b + j] : max_lane[j];
    float max = max_lane[0];
    for (int j = 1; j < RS_LANES; j++)
        max = max_lane[j] > max ? max_lane[j] : max;
    const float qf = (float)q; /* float arithmetic vectorizes at full width */
    for (b = 0; b + RS_LANES <= E; b += RS_LANES) {
#pragma omp simd
        for (int j = 0; j < RS_LANES; j++)
            lane[j] += rs_fast_expf_nonpos(qf * (z[b + j] - max));
    }
    for (int j = 0; b + j < E; j++)
        lane[j] += rs_fast_expf_nonpos(qf * (z[b + j] - max));
    double sum = 0.0;
    for (int j = 0; j < RS_LANES; j++)
        sum += lane[j];
    return sum;
}

/* log sum_e p_e^q = log sum_e e^(q (z_e - max)) - q log_norm */
RS_VECTOR_CLONES
static double log_power_sum(const float *z, int E, double log_norm, double q)
{
    return log(power_sum(z, E, q)) - q * log_norm;
}

/* v clamped to [0, 1]: rounding must not carry a normalised entropy out of
 * its range (a uniform row is 1, a one-hot row 0) */
static inline double unit_clamp(double v) { return v < 0.0 ? 0.0 : v > 1.0 ? 1.0 : v; }

enum { SMALL_RANK = 16 };

/* z_(k) - z_(k+1) of the row sorted in descending order, 1 <= k < E.
 * Small k: the k+1 largest values in a sorted buffer. Otherwise Wirth's
 * selection on a copy puts the k-th largest at index k-1 with
 * larger-or-equal values before it and smaller-or-equal after it. */
static double rank_margin(const float *z, int E, int k, float *buf)
{
    /* a plain loop, not memcpy: this runs on the device too */
    if (k < SMALL_RANK) {
        float top[SMALL_RANK];
        const int m = k + 1;
        int filled = 0;
        for (int e = 0; e < E; e++) {
            float x = z[e];
            if (filled == m && !(x > top[m - 1]))
                continue;
            int j = filled < m ? filled++ : m - 1;
            for (; j > 0 && top[j - 1] < x; j--)
                top[j] = top[j - 1];
            top[j] = x;
        }
        return (double)top[k - 1] - (double)top[k];
    }
    for (int e = 0; e < E; e++)
        buf[e] = z[e];
    const int target = k - 1;
    int lo = 0, hi = E - 1;
    while (lo < hi) {
        float pivot = buf[target];
        int i = lo, j = hi;
        do {
            while (buf[i] > pivot)
                i++;
            while (pivot > buf[j])
                j--;
            if (i <= j) {
                float tmp = buf[i];
                buf[i] = buf[j];
                buf[j] = tmp;
                i++;
                j--;
            }
        } while (i <= j);
        if (j < target)
            lo = i;
        if (target < i)
            hi = j;
    }
    float next = buf[target + 1];
    for (int e = target + 2; e < E; e++)
        next = buf[e] > next ? buf[e] : next;
    return (double)buf[target] - (double)next;
}

/* Over the row: the largest value below `lowest`, and how many values are
 * at least / above it. Fixed lanes so the loop vectorizes (maxima and
 * counts are exact in any order). */
__attribute__((always_inline)) static inline float below_and_counts_core(const float *z, int E, float lowest, int *at_least, int *above)
{
    float lane[RS_LANES];
    int ge[RS_LANES] = {0}, gt[RS_LANES] = {0};
    for (int j = 0; j < RS_LANES; j++)
        lane[j] = -INFINITY;
    int b = 0;
    for (; b + RS_LANES <= E; b += RS_LANES) {
#pragma omp simd
        for (int j = 0; j < RS_LANES; j++) {
            float x = z[b + j];
            float v = x < lowest ? x : -INFINITY;
            lane[j] = v > lane[j] ? v : lane[j];
            ge[j] += x >= lowest;
            gt[j] += x > lowest;
        }
    }
    for (int j = 0; b + j < E; j++) {
        float x = z[b + j];
        float v = x < lowest ? x : -INFINITY;
        lane[j] = v > lane[j] ? v : lane[j];
        ge[j] += x >= lowest;
        gt[j] += x > lowest;
    }
    float highest = -INFINITY;
    *at_least = *above = 0;
    for (int j = 0; j < RS_LANES; j++) {
        highest = lane[j] > highest ? lane[j] : highest;
        *at_least += ge[j];
        *above += gt[j];
    }
    return highest;
}

/* The margin at k = the token's selection when that selection is a top-k
 * of the logits (top-k and top-p routers, the usual case): its smallest
 * logit is z_(k) and the largest logit outside it z_(k+1), one pass over
 * the row. Returns 0 (and leaves *margin) when the selection is something
 * else: repeated ids, or logits outside it above its smallest. */
__attribute__((always_inline)) static inline int selection_margin(const float *z, int E, const int32_t *ids, int K,
                                                                  double *margin)
{
    float lowest = INFINITY;
    int kept = 0;
    for (int j = 0; j < K; j++)
        if (ids[j] >= 0) {
            lowest = z[ids[j]] < lowest ? z[ids[j]] : lowest;
            kept++;
            for (int i = 0; i < j; i++)
                if (ids[i] == ids[j])
                    return 0; /* repeated id */
        }
    int at_least, above, selected_above = 0;
    for (int j = 0; j < K; j++)
        selected_above += ids[j] >= 0 && z[ids[j]] > lowest;
    float highest = below_and_counts_core(z, E, lowest, &at_least, &above);
    if (above != selected_above)
        return 0; /* a logit outside the selection is above its smallest: not a top-k */
    /* at_least > kept: a logit outside ties with the smallest, z_(k+1) = z_(k) */
    *margin = at_least > kept ? 0.0 : (double)lowest - (double)highest;
    return 1;
}

/* topk_margin of one row: at the fixed k, else at the experts the router
 * requested (kept plus dropped by the capacity stage). Returns 0 when the
 * row has no boundary (nothing or everything asked for), else 1 with
 * *margin. Inlined into the callers (the CPU's vector clones of
 * entropy_update_layer, the device's region): no libm, runs on both. */
__attribute__((always_inline)) static inline int row_margin(const float *z, int E, const int32_t *ids, int K,
                                                            const uint8_t *dropped, int fixed_k, float *buf,
                                                            double *margin)
{
    int kept = 0, requested = 0;
    for (int j = 0; j < K; j++) {
        if (ids[j] >= 0)
            kept++;
        else if (dropped && dropped[j])
            requested++;
    }
    requested += kept;
    const int k = fixed_k ? fixed_k : requested;
    if (k < 1 || k >= E)
        return 0;
    if (k != kept || !selection_margin(z, E, ids, K, margin))
        *margin = rank_margin(z, E, k, buf);
    return 1;
}

__attribute__((always_inline)) static inline void margin_row(const entropy_acc *a, entropy_layer *ly, const float *z,
                                                             const int32_t *ids, int K, const uint8_t *dropped,
                                                             float *buf)
{
    double margin;
    if (a->want_margin && row_margin(z, a->E, ids, K, dropped, a->fixed_k, buf, &margin))
        rs_xsum_add(&ly->margin, margin);
}

/* router_entropy, tsallis_entropy and selected_mass of a router whose p
 * is its normalised scores p = s / sum s (router_probs.h), with
 * H = log sum s - sum s log s / sum s. A row whose scores all underflow
 * has no distribution and adds nothing. */
static void scored_row(entropy_acc *a, entropy_layer *ly, const float *z, const int32_t *ids, int K, double *s)
{
    const int E = a->E;
    const double q = a->q;
    const double sum = rs_router_scores(a->scoring, z, E, s);
    if (!(sum > 0.0) || !isfinite(sum))
        return;
    double s_log_s = 0.0, power = 0.0, mass = 0.0;
    for (int e = 0; e < E; e++) {
        if (s[e] > 0.0) {
            double p = s[e] / sum, log_p = log(p);
            s_log_s += p * log_p;
            if (a->want_tsallis && q != 1.0)
                power += exp(q * log_p);
        }
    }
    for (int j = 0; j < K; j++)
        if (ids[j] >= 0)
            mass += s[ids[j]] / sum;
    const double log_e = E > 1 ? log((double)E) : NAN;
    const double h = -s_log_s > 0.0 ? -s_log_s : 0.0;
    const double shannon = h >= log_e ? 1.0 : h / log_e;
    rs_xsum_add(&ly->entropy, shannon);
    if (a->want_tsallis) {
        const double tsallis_max = E > 1 ? 1.0 - pow((double)E, 1.0 - q) : NAN;
        rs_xsum_add(&ly->tsallis, q == 1.0 ? shannon : unit_clamp((1.0 - power) / tsallis_max));
    }
    rs_xsum_add(&ly->mass, mass < 1.0 ? mass : 1.0);
}

/* cloned for floor() in one instruction (rs_xsum_add) */
RS_VECTOR_CLONES
static void entropy_update_layer(void *p, const rs_chunk *c, int layer, const rs_decisions *dec,
                                 const rs_metric_ref *ref)
{
    (void)ref;
    entropy_acc *a = p;
    entropy_layer *ly = &a->layers[layer];
    float *buf = a->scratch + (size_t)layer * (size_t)a->E;
    const int K = dec->kmax, E = a->E;
    const double q = a->q;
    const double log_e = E > 1 ? log((double)E) : NAN;
    /* Tsallis maximum (uniform p) over (q - 1): 1 - E^(1-q) */
    const double tsallis_max = E > 1 ? 1.0 - pow((double)E, 1.0 - q) : NAN;
    for (int t = 0; t < c->n; t++) {
        if (!rs_row_observed(c, dec, t, layer))
            continue;
        size_t stat = rs_chunk_stat(c, t, layer);
        const double lse = c->lse[stat];
        const float *z = rs_chunk_logits(c, t, layer);
        size_t row = rs_decision_row(c, dec, t, layer);
        const int32_t *ids = dec->ids + row;
        const uint8_t *dropped = dec->dropped ? dec->dropped + row : NULL;
        if (a->want_z_loss)
            rs_xsum_add(&ly->z_loss, lse * lse);
        if (a->scores) { /* not softmax: the router's normalised scores */
            scored_row(a, ly, z, ids, K, a->scores + (size_t)layer * (size_t)E);
            margin_row(a, ly, z, ids, K, dropped, buf);
            continue;
        }
        /* the engine's entropy is >= 0; a uniform row gives log E exactly, so
         * H / log E is 1 */
        const double h = c->entropy[stat];
        const double shannon = h >= log_e ? 1.0 : h / log_e;
        rs_xsum_add(&ly->entropy, shannon);
        if (a->want_tsallis) {
            double tsallis = q == 1.0 ? shannon
                                      : unit_clamp((1.0 - exp(log_power_sum(z, E, c->log_norm[stat], q))) / tsallis_max);
            rs_xsum_add(&ly->tsallis, tsallis);
        }
        const float *pr = rs_chunk_probs(c, t, layer);
        double mass = 0.0;
        for (int j = 0; j < K; j++)
            if (ids[j] >= 0)
                mass += pr[ids[j]];
        rs_xsum_add(&ly->mass, mass < 1.0 ? mass : 1.0); /* rounded float p may sum past 1 */
        margin_row(a, ly, z, ids, K, dropped, buf);
    }
}

/* Per-row values the device brings back for the host to finish a row as
 * entropy_update_layer does; slots of outputs not asked for are left out. */
typedef struct device_layout {
    int width; /* doubles per row */
    int power, margin; /* slots, -1 = not computed */
} device_layout;

enum { SLOT_SUM, SLOT_DOT, SLOT_MAX, SLOT_MASS, FIXED_SLOTS };

static device_layout layout_of(const entropy_acc *a)
{
    device_layout d = {FIXED_SLOTS, -1, -1};
    if (a->want_tsallis && a->q != 1.0)
        d.power = d.width++;
    if (a->want_margin)
        d.margin = d.width++;
    return d;
}

/* The host's part of entropy_update_device: each observed row's values,
 * finished and added exactly as entropy_update_layer adds them (the sums
 * are exact, so the order of rows does not matter). */
static void finish_rows(entropy_acc *a, const double *rows, int n, int L, device_layout lay)
{
    const int E = a->E;
    const double q = a->q;
    const double log_e = E > 1 ? log((double)E) : NAN;
    const double tsallis_max = E > 1 ? 1.0 - pow((double)E, 1.0 - q) : NAN;
    /* layers in parallel, as update_layer runs: each has its own sums */
#pragma omp parallel for schedule(dynamic, 1)
    for (int l = 0; l < L; l++) {
        entropy_layer *ly = &a->layers[l];
        for (int t = 0; t < n; t++) {
            const double *v = rows + ((size_t)t * (size_t)L + (size_t)l) * (size_t)lay.width;
            if (v[SLOT_SUM] < 0.0)
                continue;
            /* rs_softmax_row's statistics from the core's sums */
            const double log_norm = log(v[SLOT_SUM]), shifted_mean = v[SLOT_DOT] / v[SLOT_SUM];
            const double lse = v[SLOT_MAX] + log_norm, h = log_norm - shifted_mean;
            if (a->want_z_loss)
                rs_xsum_add(&ly->z_loss, lse * lse);
            const double shannon = h >= log_e ? 1.0 : h / log_e;
            rs_xsum_add(&ly->entropy, shannon);
            if (a->want_tsallis) {
                double tsallis = q == 1.0 ? shannon
                                          : unit_clamp((1.0 - exp(log(v[lay.power]) - q * log_norm)) / tsallis_max);
                rs_xsum_add(&ly->tsallis, tsallis);
            }
            const double mass = v[SLOT_MASS];
            rs_xsum_add(&ly->mass, mass < 1.0 ? mass : 1.0);
            if (lay.margin >= 0 && !isnan(v[lay.margin]))
                rs_xsum_add(&ly->margin, v[lay.margin]);
        }
    }
}

/* The softmax-scored rows of a whole chunk (--device gpu, docs/gpu.md):
 * the device computes per row what needs no libm (the softmax statistics
 * the engine computed there, the selected mass from the device's
 * probabilities, tsallis' power sum, the margin), and the host takes one
 * logarithm per row and adds each value to the layer's sums, as
 * entropy_update_layer does. Other scorings call libm per expert: they
 * stay on the CPU. */
static int entropy_update_device(void *p, const rs_device_chunk *c, const rs_decisions *dec)
{
    entropy_acc *a = p;
    if (!a)
        return 0;
    if (a->scoring != RS_SCORING_SOFTMAX || (a->want_margin && a->E > RS_DEVICE_MAX_E))
        return -1;
    if (c->n == 0)
        return 0;
    if (!c->logits || !c->probs || !c->row_sum || !c->row_dot || !c->row_max)
        return -1;
    const device_layout lay = layout_of(a);
    const int L = c->L, E = a->E, K = dec->kmax, fixed_k = a->fixed_k, width = lay.width;
    const int power_slot = lay.power, margin_slot = lay.margin;
    const double q = a->q;
    const int64_t rows = (int64_t)c->n * L;
    const size_t cells = (size_t)rows * (size_t)width;
    double *host_rows = malloc(cells * sizeof *host_rows);
    double *rows_out = omp_target_alloc(cells * sizeof *rows_out, c->device);
    int rc = !host_rows || !rows_out;
    if (rc == 0) {
        const float *logits = c->logits, *probs = c->probs, *row_max = c->row_max;
        const double *row_sum = c->row_sum, *row_dot = c->row_dot;
        const uint8_t *valid = c->valid;
        const int32_t *ids = dec->ids;
#pragma omp target teams distribute parallel for device(c->device) \
    is_device_ptr(logits, probs, row_max, row_sum, row_dot, valid, ids, rows_out)
        for (int64_t r = 0; r < rows; r++) {
            double *out = rows_out + r * width;
            const int32_t *row_ids = ids + r * K;
            if ((valid && valid[r / L] != 1) || (K > 0 && row_ids[0] == RS_ID_UNOBSERVED)) {
                out[SLOT_SUM] = -1.0; /* not observed (an observed row's sum is >= 1) */
                continue;
            }
            const float *z = logits + r * E, *pr = probs + r * E;
            out[SLOT_SUM] = row_sum[r];
            out[SLOT_DOT] = row_dot[r];
            out[SLOT_MAX] = row_max[r];
            double mass = 0.0;
            for (int j = 0; j < K; j++)
                if (row_ids[j] >= 0)
                    mass += pr[row_ids[j]];
            out[SLOT_MASS] = mass;
            if (power_slot >= 0)
                out[power_slot] = power_sum(z, E, q);
            if (margin_slot >= 0) {
                float buf[RS_DEVICE_MAX_E];
                double margin;
                out[margin_slot] = row_margin(z, E, row_ids, K, NULL, fixed_k, buf, &margin) ? margin : NAN;
            }
        }
        rc = omp_target_memcpy(host_rows, rows_out, cells * sizeof *host_rows, 0, 0, omp_get_initial_device(),
                               c->device) != 0;
    }
    if (rows_out)
        omp_target_free(rows_out, c->device);
    if (rc == 0)
        finish_rows(a, host_rows, c->n, L, lay);
    free(host_rows);
    return rc ? -1 : 0;
}

static int entropy_merge(void *p, const void *q, rs_error *err)
{
    entropy_acc *a = p;
    const entropy_acc *b = q;
    RS_CHECK(a->L == b->L && a->E == b->E, err, "metric entropy: merging unlike accumulators");
    for (int l = 0; l < a->L; l++) {
        entropy_layer *x = &a->layers[l];
        const entropy_layer *y = &b->layers[l];
        rs_xsum_merge(&x->entropy, &y->entropy);
        rs_xsum_merge(&x->mass, &y->mass);
        rs_xsum_merge(&x->tsallis, &y->tsallis);
        rs_xsum_merge(&x->z_loss, &y->z_loss);
        rs_xsum_merge(&x->margin, &y->margin);
    }
    return 0;
}

static void entropy_finalize(const void *p, rs_metric_sink *sink)
{
    const entropy_acc *a = p;
    for (int l = 0; l < a->L; l++) {
        const entropy_layer *ly = &a->layers[l];
        rs_metric_emit(sink, OUT_ROUTER_ENTROPY, l, NULL, rs_xsum_mean(&ly->entropy));
        rs_metric_emit(sink, OUT_SELECTED_MASS, l, NULL, rs_xsum_mean(&ly->mass));
        rs_metric_emit(sink, OUT_TSALLIS_ENTROPY, l, NULL, rs_xsum_mean(&ly->tsallis));
        rs_metric_emit(sink, OUT_Z_LOSS, l, NULL, rs_xsum_mean(&ly->z_loss));
        rs_metric_emit(sink, OUT_TOPK_MARGIN, l, NULL, rs_xsum_mean(&ly->margin));
    }
}

static void entropy_checkpoint(void *p, rs_state_io *io)
{
    entropy_acc *a = p;
    RS_STATE_ARRAY(io, a->layers, a->L); /* sums only; scratch is per token */
}

static const rs_metric_type entropy_type = {
    .name = "entropy",
    .summary = "router entropy (Shannon and Tsallis, normalised), z-loss, top-k logit margin, selected probability mass",
    .source = "metrics.md; Tsallis entropy: DynMoLE arXiv:2504.00661 (mikecovlee/DynMoLE moe_peft/common/"
              "moe_utils.py tsallis_entropy); z-loss: ST-MoE arXiv:2202.08906; selected mass as in StableMoE "
              "arXiv:2204.08396 / Hash Layers arXiv:2106.04426",
    .params = entropy_params,
    .num_params = sizeof entropy_params / sizeof entropy_params[0],
    .outputs = entropy_outputs,
    .num_outputs = sizeof entropy_outputs / sizeof entropy_outputs[0],
    .needs = RS_NEEDS_LOGITS | RS_NEEDS_PROBS,
    .create = entropy_create,
    .update_layer = entropy_update_layer,
    .merge = entropy_merge,
    .finalize = entropy_finalize,
    .destroy = entropy_destroy,
    .checkpoint = entropy_checkpoint,
    .update_device = entropy_update_device,
};

const rs_metric_type *const rs_metric_entropy = &entropy_type;
