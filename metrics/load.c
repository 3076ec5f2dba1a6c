/* load: how evenly a router spreads assignments over experts
 * (docs/metrics.md#load). Counts are integers and probability sums fixed
 * point, so every value is independent of chunking and merge order. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/router_probs.h"
#include "routesim/metric.h"
#include "routesim/router.h"
#include "routesim/vector.h"
#include "routesim/xsum.h"

enum {
    OUT_MAXVIO,
    OUT_MAXVIO_BATCH,
    OUT_CV,
    OUT_GINI,
    OUT_USAGE_ENTROPY,
    OUT_AUX_LOSS,
    OUT_DEAD_EXPERTS,
    OUT_DROP_RATE,
    OUT_DROP_BY_POSITION,
    OUT_EXPERT_SHARE,
    OUT_EXPERT_LOAD
};

enum { PARAM_PER_EXPERT };

static const rs_param_def load_params[] = {
    [PARAM_PER_EXPERT] = {"per_expert", RS_PARAM_BOOL, "0", 0, 1, NULL,
                          "also report expert_share and expert_load, each expert's share and count of its layer's "
                          "assignments (heatmaps, placement loads)"},
};

enum { POSITION_BINS = 10 };

static const rs_metric_output load_outputs[] = {
    [OUT_MAXVIO] = {"maxvio", "max_e load_e / mean_e load_e - 1 over the whole run", 0, RS_AGG_MEAN, .label = "MaxVio"},
    [OUT_MAXVIO_BATCH] = {"maxvio_batch", "mean over batches of batch_tokens tokens of the batch's maxvio", 0,
                          RS_AGG_MEAN, .label = "MaxVio per batch"},
    [OUT_CV] = {"cv", "population std / mean of load_e", 0, RS_AGG_MEAN, .label = "CV of expert load"},
    [OUT_GINI] = {"gini", "sum_i sum_j |load_i - load_j| / (2 E^2 mean)", 0, RS_AGG_MEAN,
                  .label = "Gini coefficient of expert load"},
    [OUT_USAGE_ENTROPY] = {"usage_entropy", "entropy of load_e / sum load, divided by log E (1 = uniform)", 0,
                           RS_AGG_MEAN, .label = "expert usage entropy (1 = uniform)"},
    [OUT_AUX_LOSS] = {"aux_loss", "E * sum_e f_e P_e, f = load share, P = mean router probability (Switch; balanced = 1)", 0,
                      RS_AGG_MEAN, .label = "auxiliary loss (1 = balanced)"},
    [OUT_DEAD_EXPERTS] = {"dead_experts", "experts with load 0 (layer=all: summed over layers)", 0, RS_AGG_SUM,
                          .label = "dead experts"},
    [OUT_DROP_RATE] = {"drop_rate", "assignments dropped by the capacity stage / assignments requested", 0, RS_AGG_SELF,
                       .label = "dropped assignments", .unit = "%", .unit_scale = 100},
    [OUT_DROP_BY_POSITION] = {"drop_rate_by_position",
                              "drop_rate of tokens in each tenth of their sequence (key decile=0..9; capacity runs)", 0,
                              RS_AGG_SELF, .label = "dropped assignments", .unit = "%", .unit_scale = 100},
    [OUT_EXPERT_SHARE] = {"expert_share",
                          "load_e / sum_e load_e per layer (key expert=e; with per_expert=1 or when named; "
                          "layer=all: mean)",
                          0, RS_AGG_MEAN, .label = "share of the layer's assignments", .unit = "%", .unit_scale = 100},
    [OUT_EXPERT_LOAD] = {"expert_load",
                         "load_e, assignments kept per expert (key expert=e; with per_expert=1 or when named; "
                         "layer=all: summed over layers)",
                         0, RS_AGG_SUM, .label = "assignments"},
};

/* A batch whose tokens this accumulator has only partly seen. */
typedef struct open_group {
    int64_t index; /* -1 = slot unused */
    int64_t tokens;
    int64_t *loads; /* [E] */
} open_group;

typedef struct load_layer {
    int64_t *loads;           /* [E] kept assignments */
    int64_t *probs;           /* [E] sum of p_t[e] in units of 2^-30 */
    int64_t prob_tokens;
    double *scores;           /* [E] scratch: the row's scores when the scoring is not softmax */
    rs_xsum batch_maxvio; /* over finished batches */
    open_group open[3];   /* sorted by index; a contiguous range has at most 2 */
    int64_t requested[POSITION_BINS], dropped[POSITION_BINS]; /* by tenth of the sequence */
    int saw_capacity;     /* decisions came with dropped flags */
} load_layer;

typedef struct load_acc {
    int L, E;
    int batch;
    int with_probs;
    rs_scoring scoring; /* what p is (router_probs.h) */
    int per_expert;  /* emit expert_share */
    int expert_load; /* emit expert_load */
    load_layer *layers;
} load_acc;

static void load_destroy(void *p)
{
    load_acc *a = p;
    if (!a)
        return;
    if (a->layers) {
        for (int l = 0; l < a->L; l++) {
            free(a->layers[l].loads);
            free(a->layers[l].probs);
            free(a->layers[l].scores);
            for (int g = 0; g < 3; g++)
                free(a->layers[l].open[g].loads);
        }
    }
    free(a->layers);
    free(a);
}

static int load_create(void **out, const rs_params *params, const rs_metric_setup *setup, rs_error *err)
{
    load_acc *a = calloc(1, sizeof *a);
    RS_CHECK(a, err, "metric load: out of memory");
    /* Per-expert rows come with per_expert=1 or when the run names the output. */
    a->per_expert = rs_param_bool(params, "per_expert") || (setup->outputs >> OUT_EXPERT_SHARE & 1);
    a->expert_load = rs_param_bool(params, "per_expert") || (setup->outputs >> OUT_EXPERT_LOAD & 1);
    a->L = setup->trace->num_layers;
    a->E = setup->trace->num_experts;
    a->batch = setup->batch_tokens;
    a->with_probs = setup->trace->has_logits && rs_metric_wants(setup, OUT_AUX_LOSS);
    a->scoring = setup->scoring;
    a->layers = calloc((size_t)a->L, sizeof *a->layers);
    int ok = a->layers != NULL;
    for (int l = 0; ok && l < a->L; l++) {
        load_layer *ly = &a->layers[l];
        ly->loads = calloc((size_t)a->E, sizeof *ly->loads);
        ly->probs = calloc((size_t)a->E, sizeof *ly->probs);
        ok = ly->loads && ly->probs;
        if (ok && a->with_probs && a->scoring != RS_SCORING_SOFTMAX)
            ok = (ly->scores = malloc((size_t)a->E * sizeof *ly->scores)) != NULL;
        for (int g = 0; ok && g < 3; g++) {
            ly->open[g].index = -1;
            ly->open[g].loads = calloc((size_t)a->E, sizeof *ly->open[g].loads);
            ok = ly->open[g].loads != NULL;
        }
    }
    if (!ok) {
        load_destroy(a);
        return rs_fail(err, "metric load: out of memory");
    }
    *out = a;
    return 0;
}

static double maxvio_of(const int64_t *loads, int E)
{
    int64_t total = 0, max = 0;
    for (int e = 0; e < E; e++) {
        total += loads[e];
        if (loads[e] > max)
            max = loads[e];
    }
    if (total == 0)
        return NAN;
    return (double)max * (double)E / (double)total - 1.0;
}

/* A batch is complete: fold its maxvio into the mean and free the slot. */
static void close_group(load_layer *ly, open_group *g, int E)
{
    double v = maxvio_of(g->loads, E);
    if (!isnan(v))
        rs_xsum_add(&ly->batch_maxvio, v);
    g->index = -1;
    g->tokens = 0;
    memset(g->loads, 0, (size_t)E * sizeof *g->loads);
}

/* The slot for batch `index`, opening one if needed (slots stay sorted). */
static open_group *group_slot(load_layer *ly, int64_t index)
{
    for (int g = 0; g < 3; g++)
        if (ly->open[g].index == index)
            return &ly->open[g];
    for (int g = 0; g < 3; g++) {
        if (ly->open[g].index < 0) {
            ly->open[g].index = index;
            return &ly->open[g];
        }
    }
    return NULL; /* cannot happen for contiguous ranges */
}

RS_VECTOR_CLONES
static void load_update_layer(void *p, const rs_chunk *c, int layer, const rs_decisions *dec,
                              const rs_metric_ref *ref)
{
    (void)ref;
    load_acc *a = p;
    load_layer *ly = &a->layers[layer];
    const int E = a->E, K = dec->kmax;
    const int64_t B = a->batch;
    open_group *g = NULL;
    for (int t = 0; t < c->n; t++) {
        int64_t gt = c->t0 + t;
        if (!g || g->index != gt / B)
            g = group_slot(ly, gt / B);
        const int32_t *ids = dec->ids + rs_decision_row(c, dec, t, layer);
        /* batches stay the trace's; a token outside the view's tokens (a
         * breakdown's group) still fills its batch, adding no load */
        const int observed = !c->valid || c->valid[t] == 1;
        for (int j = 0; j < K && observed; j++) {
            int32_t e = ids[j];
            if (e >= 0) {
                ly->loads[e]++;
                g->loads[e]++;
            }
        }
        if (++g->tokens == B) {
            close_group(ly, g, E);
            g = NULL;
        }
        /* requested = kept + dropped, by where the token sits in its
         * sequence; without a capacity stage only the total is reported */
        const uint8_t *dropped = dec->dropped ? dec->dropped + rs_decision_row(c, dec, t, layer) : NULL;
        int bin = 0;
        if (dropped) {
            int32_t s = c->seq_of_token[t];
            int64_t start = c->seq_offsets[s], len = c->seq_offsets[s + 1] - start;
            bin = len > 0 ? (int)((gt - start) * POSITION_BINS / len) : 0;
        }
        for (int j = 0; j < K && observed; j++) {
            int was_dropped = dropped && dropped[j];
            ly->requested[bin] += ids[j] >= 0 || was_dropped;
            ly->dropped[bin] += was_dropped;
        }
        ly->saw_capacity |= dropped != NULL;
    }
    if (a->with_probs && ly->scores && c->logits) {
        int64_t *sums = ly->probs;
        for (int t = 0; t < c->n; t++) {
            if (!rs_row_observed(c, dec, t, layer))
                continue;
            double sum = rs_router_scores(a->scoring, rs_chunk_logits(c, t, layer), E, ly->scores);
            if (!(sum > 0.0) || !isfinite(sum))
                continue; /* every score underflowed: no distribution */
            for (int e = 0; e < E; e++)
                sums[e] += rs_prob_fixed((float)(ly->scores[e] / sum));
            ly->prob_tokens++;
        }
    } else if (a->with_probs && c->probs) {
        int64_t *sums = ly->probs;
        for (int t = 0; t < c->n; t++) {
            if (!rs_row_observed(c, dec, t, layer))
                continue;
            const float *pr = rs_chunk_probs(c, t, layer);
#pragma omp simd
            for (int e = 0; e < E; e++)
                sums[e] += rs_prob_fixed(pr[e]);
            ly->prob_tokens++;
        }
    }
}

/* The device's counts of a whole chunk: per (layer, batch of the chunk,
 * expert) kept assignments and per (layer, expert) fixed-point probability
 * sums, integer atomic adds (order free); then, on the host, each layer's
 * batches are filled in token order as load_update_layer fills them.
 * Without a capacity stage (the engine's rule for device metrics) nothing
 * is dropped and every token sits in the first position bin. */
static int load_update_device(void *p, const rs_device_chunk *c, const rs_decisions *dec)
{
    load_acc *a = p;
    if (!a) /* asked about any accumulator */
        return 0;
    const int want_probs = a->with_probs && a->scoring == RS_SCORING_SOFTMAX;
    if (a->with_probs && !want_probs)
        return -1; /* other scorings call libm per row */
    if (c->n == 0)
        return 0;
    if (want_probs && !c->probs)
        return -1;
    const int L = c->L, E = a->E, K = dec->kmax;
    const int64_t B = a->batch, t0 = c->t0, first = t0 / B, batches = (t0 + c->n - 1) / B - first + 1;
    const size_t load_cells = (size_t)L * (size_t)batches * (size_t)E, prob_cells = (size_t)L * (size_t)(E + 1);
    const size_t cells = load_cells + (want_probs ? prob_cells : 0);
    int64_t *host_counts = calloc(cells, sizeof *host_counts);
    int64_t *counts = omp_target_alloc(cells * sizeof *counts, c->device);
    const int host = omp_get_initial_device();
    int rc = !host_counts || !counts ||
             omp_target_memcpy(counts, host_counts, cells * sizeof *counts, 0, 0, c->device, host) != 0;
    if (rc == 0) {
        const int32_t *ids = dec->ids;
        const uint8_t *valid = c->valid;
        const float *probs = want_probs ? c->probs : NULL;
        const int64_t rows = (int64_t)c->n * L, n_batches = batches;
#pragma omp target teams distribute parallel for device(c->device) is_device_ptr(counts, ids, valid, probs)
        for (int64_t r = 0; r < rows; r++) {
            const int64_t t = r / L, l = r % L;
            if (valid && valid[t] != 1)
                continue;
            int64_t *row_loads = counts + ((size_t)l * (size_t)n_batches + (size_t)((t0 + t) / B - first)) * (size_t)E;
            for (int j = 0; j < K; j++) {
                const int32_t e = ids[r * K + j];
                if (e >= 0) {
#pragma omp atomic update
                    row_loads[e] += 1;
                }
            }
            if (probs) {
                int64_t *sums = counts + load_cells + (size_t)l * (size_t)(E + 1);
                for (int e = 0; e < E; e++) {
                    const int64_t fixed = rs_prob_fixed(probs[r * E + e]);
#pragma omp atomic update
                    sums[e] += fixed;
                }
#pragma omp atomic update
                sums[E] += 1; /* tokens */
            }
        }
        rc = omp_target_memcpy(host_counts, counts, cells * sizeof *counts, 0, 0, host, c->device) != 0;
    }
    if (counts)
        omp_target_free(counts, c->device);
    if (rc != 0) {
        free(host_counts);
        return -1;
    }
    for (int l = 0; l < L; l++) {
        load_layer *ly = &a->layers[l];
        for (int64_t b = 0; b < batches; b++) {
            const int64_t index = first + b;
            const int64_t from = index * B > t0 ? index * B : t0;
            const int64_t to = (index + 1) * B < t0 + c->n ? (index + 1) * B : t0 + c->n;
            const int64_t *add = host_counts + ((size_t)l * (size_t)batches + (size_t)b) * (size_t)E;
            open_group *g = group_slot(ly, index);
            for (int e = 0; e < E; e++) {
                ly->loads[e] += add[e];
                g->loads[e] += add[e];
                ly->requested[0] += add[e];
            }
            g->tokens += to - from;
            if (g->tokens == B)
                close_group(ly, g, E);
        }
        if (want_probs) {
            const int64_t *sums = host_counts + load_cells + (size_t)l * (size_t)(E + 1);
            for (int e = 0; e < E; e++)
                ly->probs[e] += sums[e];
            ly->prob_tokens += sums[E];
        }
    }
    free(host_counts);
    return 0;
}

static int load_merge(void *p, const void *q, rs_error *err)
{
    load_acc *a = p;
    const load_acc *b = q;
    RS_CHECK(a->L == b->L && a->E == b->E && a->batch == b->batch, err, "metric load: merging unlike accumulators");
    const int E = a->E;
    for (int l = 0; l < a->L; l++) {
        load_layer *x = &a->layers[l];
        const load_layer *y = &b->layers[l];
        for (int e = 0; e < E; e++) {
            x->loads[e] += y->loads[e];
            x->probs[e] += y->probs[e];
        }
        x->prob_tokens += y->prob_tokens;
        rs_xsum_merge(&x->batch_maxvio, &y->batch_maxvio);
        for (int b = 0; b < POSITION_BINS; b++) {
            x->requested[b] += y->requested[b];
            x->dropped[b] += y->dropped[b];
        }
        x->saw_capacity |= y->saw_capacity;
        for (int g = 0; g < 3; g++) {
            const open_group *src = &y->open[g];
            if (src->index < 0)
                continue;
            open_group *dst = group_slot(x, src->index);
            RS_CHECK(dst, err, "metric load: merged ranges are not contiguous");
            dst->tokens += src->tokens;
            for (int e = 0; e < E; e++)
                dst->loads[e] += src->loads[e];
            if (dst->tokens == a->batch)
                close_group(x, dst, E);
        }
    }
    return 0;
}

/* Partial batches count as batches of their own, as the trace's last one
 * does: bootstrap blocks of sequences are then independent. */
static void load_seal(void *p)
{
    load_acc *a = p;
    for (int l = 0; l < a->L; l++)
        for (int g = 0; g < 3; g++)
            if (a->layers[l].open[g].index >= 0 && a->layers[l].open[g].tokens > 0)
                close_group(&a->layers[l], &a->layers[l].open[g], a->E);
}

static double ratio(int64_t num, int64_t den) { return den > 0 ? (double)num / (double)den : NAN; }

/* Drop rates per layer and, as layer=all, over all layers' assignments. */
static void emit_drops(const load_acc *a, rs_metric_sink *sink)
{
    int64_t req_all = 0, drop_all = 0, req_bin[POSITION_BINS] = {0}, drop_bin[POSITION_BINS] = {0};
    int any_capacity = 0;
    for (int l = 0; l < a->L; l++)
        any_capacity |= a->layers[l].saw_capacity;
    for (int l = 0; l < a->L; l++) {
        const load_layer *ly = &a->layers[l];
        int64_t req = 0, drop = 0;
        for (int b = 0; b < POSITION_BINS; b++) {
            req += ly->requested[b];
            drop += ly->dropped[b];
            req_bin[b] += ly->requested[b];
            drop_bin[b] += ly->dropped[b];
        }
        req_all += req;
        drop_all += drop;
        rs_metric_emit(sink, OUT_DROP_RATE, l, NULL, ratio(drop, req));
        for (int b = 0; any_capacity && b < POSITION_BINS; b++) {
            char key[24];
            snprintf(key, sizeof key, "decile=%d", b);
            rs_metric_emit(sink, OUT_DROP_BY_POSITION, l, key, ratio(ly->dropped[b], ly->requested[b]));
        }
    }
    rs_metric_emit(sink, OUT_DROP_RATE, -1, NULL, ratio(drop_all, req_all));
    for (int b = 0; any_capacity && b < POSITION_BINS; b++) {
        char key[24];
        snprintf(key, sizeof key, "decile=%d", b);
        rs_metric_emit(sink, OUT_DROP_BY_POSITION, -1, key, ratio(drop_bin[b], req_bin[b]));
    }
}

static void load_finalize(const void *p, rs_metric_sink *sink)
{
    const load_acc *a = p;
    const int E = a->E;
    for (int l = 0; l < a->L; l++) {
        const load_layer *ly = &a->layers[l];
        /* The trace's last batch may be short; it still counts as a batch. */
        rs_xsum batches = ly->batch_maxvio;
        for (int g = 0; g < 3; g++) {
            if (ly->open[g].index >= 0 && ly->open[g].tokens > 0) {
                double v = maxvio_of(ly->open[g].loads, E);
                if (!isnan(v))
                    rs_xsum_add(&batches, v);
            }
        }
        int64_t total = 0, dead = 0;
        __int128 sum_sq = 0;
        for (int e = 0; e < E; e++) {
            total += ly->loads[e];
            sum_sq += (__int128)ly->loads[e] * ly->loads[e];
            dead += ly->loads[e] == 0;
        }
        double cv = NAN, gini = NAN, usage = NAN, aux = NAN;
        if (total > 0) {
            __int128 var_num = (__int128)E * sum_sq - (__int128)total * total; /* E^2 * variance */
            cv = sqrt((double)var_num) / (double)total;
            int64_t *sorted = malloc((size_t)E * sizeof *sorted);
            if (sorted) {
                memcpy(sorted, ly->loads, (size_t)E * sizeof *sorted);
                for (int i = 1; i < E; i++) { /* insertion sort: E is small and this runs once */
                    int64_t v = sorted[i];
                    int j = i;
                    while (j > 0 && sorted[j - 1] > v) {
                        sorted[j] = sorted[j - 1];
                        j--;
                    }
                    sorted[j] = v;
                }
                __int128 pairs = 0; /* sum over i<j of |l_i - l_j| */
                for (int j = 0; j < E; j++)
                    pairs += (__int128)sorted[j] * (2 * j - (E - 1));
                gini = (double)pairs / ((double)E * (double)total);
                free(sorted);
            }
            if (E > 1) {
                double h = 0.0;
                for (int e = 0; e < E; e++) {
                    if (ly->loads[e] > 0) {
                        double f = (double)ly->loads[e] / (double)total;
                        h -= f * log(f);
                    }
                }
                usage = h / log((double)E);
                usage = usage > 1.0 ? 1.0 : usage; /* uniform loads can round to 1 + 2^-52 */
            }
            if (ly->prob_tokens > 0) {
                double s = 0.0;
                for (int e = 0; e < E; e++) {
                    double P = (double)ly->probs[e] / RS_PROB_SCALE / (double)ly->prob_tokens;
                    s += (double)ly->loads[e] / (double)total * P;
                }
                aux = (double)E * s;
            }
        }
        rs_metric_emit(sink, OUT_MAXVIO, l, NULL, maxvio_of(ly->loads, E));
        rs_metric_emit(sink, OUT_MAXVIO_BATCH, l, NULL, rs_xsum_mean(&batches));
        rs_metric_emit(sink, OUT_CV, l, NULL, cv);
        rs_metric_emit(sink, OUT_GINI, l, NULL, gini);
        rs_metric_emit(sink, OUT_USAGE_ENTROPY, l, NULL, usage);
        if (a->with_probs)
            rs_metric_emit(sink, OUT_AUX_LOSS, l, NULL, aux);
        rs_metric_emit(sink, OUT_DEAD_EXPERTS, l, NULL, (double)dead);
        for (int e = 0; a->per_expert && e < E; e++) {
            char key[24];
            snprintf(key, sizeof key, "expert=%d", e);
            rs_metric_emit(sink, OUT_EXPERT_SHARE, l, key, ratio(ly->loads[e], total));
        }
        for (int e = 0; a->expert_load && e < E; e++) {
            char key[24];
            snprintf(key, sizeof key, "expert=%d", e);
            rs_metric_emit(sink, OUT_EXPERT_LOAD, l, key, (double)ly->loads[e]);
        }
    }
    emit_drops(a, sink);
}

static void load_checkpoint(void *p, rs_state_io *io)
{
    load_acc *a = p;
    for (int l = 0; l < a->L; l++) {
        load_layer *ly = &a->layers[l];
        RS_STATE_ARRAY(io, ly->loads, a->E);
        RS_STATE_ARRAY(io, ly->probs, a->E);
        RS_STATE(io, ly->prob_tokens);
        RS_STATE(io, ly->batch_maxvio);
        for (int g = 0; g < 3; g++) {
            RS_STATE(io, ly->open[g].index);
            RS_STATE(io, ly->open[g].tokens);
            RS_STATE_ARRAY(io, ly->open[g].loads, a->E);
        }
        RS_STATE(io, ly->requested);
        RS_STATE(io, ly->dropped);
        RS_STATE(io, ly->saw_capacity);
    }
}

static const rs_metric_type load_type = {
    .name = "load",
    .summary = "load balance: maxvio, maxvio_batch, cv, gini, usage_entropy, aux_loss, dead_experts, drop rates, "
               "per-expert shares and counts",
    .source = "MaxVio: Loss-Free Balancing arXiv:2408.15664; aux_loss: Switch Transformer arXiv:2101.03961; "
              "drops by position: OpenMoE arXiv:2402.01739",
    .params = load_params,
    .num_params = sizeof load_params / sizeof load_params[0],
    .outputs = load_outputs,
    .num_outputs = sizeof load_outputs / sizeof load_outputs[0],
    .needs = RS_WANTS_PROBS, /* aux_loss needs the router's probabilities; the rest works on top-k-only traces */
    .create = load_create,
    .update_layer = load_update_layer,
    .update_device = load_update_device,
    .merge = load_merge,
    .seal = load_seal,
    .finalize = load_finalize,
    .destroy = load_destroy,
    .checkpoint = load_checkpoint,
};

const rs_metric_type *const rs_metric_load = &load_type;
