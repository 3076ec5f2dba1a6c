/* agreement: how far each run's selections are from a reference run's,
 * token by token: the same trace under another router, or a paired trace
 * (another checkpoint) under a router. StableMoE measures the top-1
 * fluctuation across checkpoints; mass_retained is the token-level oracle
 * gap of a cheaper or balanced router against the model's own routing. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/router_probs.h"
#include "routesim/metric.h"
#include "routesim/router.h"
#include "routesim/xsum.h"

enum { OUT_FLUCTUATION, OUT_TOPK_CHANGE, OUT_JACCARD, OUT_MASS_RETAINED };

static const rs_metric_output agreement_outputs[] = {
    [OUT_FLUCTUATION] = {"fluctuation",
                         "share of tokens (with experts in either run) whose top-1 expert differs from the reference's",
                         0, RS_AGG_MEAN, .label = "fluctuation", .unit = "% of tokens", .unit_scale = 100},
    [OUT_TOPK_CHANGE] = {"topk_change", "mean over tokens of 1 - |S_t and R_t| / |R_t|", 0, RS_AGG_MEAN,
                         .label = "top-k change", .unit = "%", .unit_scale = 100},
    [OUT_JACCARD] = {"jaccard", "mean over tokens of |S_t and R_t| / |S_t or R_t|", 0, RS_AGG_MEAN,
                     .label = "Jaccard with the reference"},
    [OUT_MASS_RETAINED] = {"mass_retained",
                           "mean over tokens of sum_{S_t} p_ref / sum_{R_t} p_ref (p_ref: the reference router's "
                           "probabilities, softmax or its normalised scores)",
                           0, RS_AGG_MEAN, .label = "reference mass retained", .unit = "%", .unit_scale = 100},
};

typedef struct agreement_layer {
    int64_t tokens, top1_changed; /* tokens compared; of them, top-1 differs */
    rs_xsum change, jaccard, mass;
    uint8_t *in_ref; /* [E] scratch: 1 for the reference's experts of the current token */
} agreement_layer;

typedef struct agreement_acc {
    int L, E;
    rs_scoring ref_scoring; /* what p_ref is (router_probs.h) */
    agreement_layer *layers;
} agreement_acc;

static void agreement_destroy(void *p)
{
    agreement_acc *a = p;
    if (!a)
        return;
    for (int l = 0; a->layers && l < a->L; l++)
        free(a->layers[l].in_ref);
    free(a->layers);
    free(a);
}

static int agreement_create(void **out, const rs_params *params, const rs_metric_setup *setup, rs_error *err)
{
    (void)params;
    RS_CHECK(setup->reference_trace, err, "metric agreement: no reference run to compare with");
    agreement_acc *a = calloc(1, sizeof *a);
    RS_CHECK(a, err, "metric agreement: out of memory");
    a->L = setup->trace->num_layers;
    a->E = setup->trace->num_experts;
    a->ref_scoring = setup->reference_scoring;
    a->layers = calloc((size_t)a->L, sizeof *a->layers);
    int ok = a->layers != NULL;
    for (int l = 0; ok && l < a->L; l++)
        ok = (a->layers[l].in_ref = calloc((size_t)a->E, 1)) != NULL;
    if (!ok) {
        agreement_destroy(a);
        return rs_fail(err, "metric agreement: out of memory");
    }
    *out = a;
    return 0;
}

/* The expert with the largest weight, ties to the earlier slot (rows are
 * in rank order for ranked routers); -1 for an empty row. */
static int top1(const int32_t *ids, const float *w, int k)
{
    int best = -1;
    float best_w = 0.0f;
    for (int j = 0; j < k; j++)
        if (ids[j] >= 0 && (best < 0 || w[j] > best_w)) {
            best = ids[j];
            best_w = w[j];
        }
    return best;
}

static void agreement_update_layer(void *p, const rs_chunk *c, int layer, const rs_decisions *dec,
                                   const rs_metric_ref *ref)
{
    agreement_acc *a = p;
    agreement_layer *ly = &a->layers[layer];
    const rs_chunk *rc = ref->chunk;
    const rs_decisions *rd = ref->dec;
    const int K = dec->kmax, RK = rd->kmax;
    uint8_t *in_ref = ly->in_ref;
    for (int t = 0; t < c->n; t++) {
        if (!rs_row_observed(c, dec, t, layer) || !rs_row_observed(rc, rd, t, layer))
            continue;
        const int32_t *s_ids = dec->ids + rs_decision_row(c, dec, t, layer);
        const float *s_w = dec->weights + rs_decision_row(c, dec, t, layer);
        const int32_t *r_ids = rd->ids + rs_decision_row(rc, rd, t, layer);
        const float *r_w = rd->weights + rs_decision_row(rc, rd, t, layer);
        int r_size = 0, s_size = 0, both = 0;
        for (int j = 0; j < RK; j++)
            if (r_ids[j] >= 0) {
                in_ref[r_ids[j]] = 1;
                r_size++;
            }
        for (int j = 0; j < K; j++)
            if (s_ids[j] >= 0) {
                s_size++;
                both += in_ref[s_ids[j]];
            }
        for (int j = 0; j < RK; j++)
            if (r_ids[j] >= 0)
                in_ref[r_ids[j]] = 0;
        if (r_size + s_size == 0)
            continue; /* neither run chose anything: nothing to compare */
        ly->tokens++;
        ly->top1_changed += top1(s_ids, s_w, K) != top1(r_ids, r_w, RK);

        if (r_size > 0)
            rs_xsum_add(&ly->change, 1.0 - (double)both / (double)r_size);
        int either = r_size + s_size - both;
        if (either > 0)
            rs_xsum_add(&ly->jaccard, (double)both / (double)either);
        if (a->ref_scoring == RS_SCORING_SOFTMAX && rc->probs) {
            const float *pr = rs_chunk_probs(rc, t, layer);
            double kept = 0.0, whole = 0.0;
            for (int j = 0; j < K; j++)
                if (s_ids[j] >= 0)
                    kept += pr[s_ids[j]];
            for (int j = 0; j < RK; j++)
                if (r_ids[j] >= 0)
                    whole += pr[r_ids[j]];
            if (whole > 0.0)
                rs_xsum_add(&ly->mass, kept / whole);
        } else if (a->ref_scoring != RS_SCORING_SOFTMAX && rc->logits) {
            /* p_ref = s / sum_E s: the normaliser cancels in the ratio */
            const float *z = rs_chunk_logits(rc, t, layer);
            double kept = 0.0, whole = 0.0;
            for (int j = 0; j < K; j++)
                if (s_ids[j] >= 0)
                    kept += rs_router_score(a->ref_scoring, z[s_ids[j]]);
            for (int j = 0; j < RK; j++)
                if (r_ids[j] >= 0)
                    whole += rs_router_score(a->ref_scoring, z[r_ids[j]]);
            if (whole > 0.0)
                rs_xsum_add(&ly->mass, kept / whole);
        }
    }
}

static int agreement_merge(void *p, const void *q, rs_error *err)
{
    agreement_acc *a = p;
    const agreement_acc *b = q;
    RS_CHECK(a->L == b->L, err, "metric agreement: merging unlike accumulators");
    for (int l = 0; l < a->L; l++) {
        agreement_layer *x = &a->layers[l];
        const agreement_layer *y = &b->layers[l];
        x->tokens += y->tokens;
        x->top1_changed += y->top1_changed;
        rs_xsum_merge(&x->change, &y->change);
        rs_xsum_merge(&x->jaccard, &y->jaccard);
        rs_xsum_merge(&x->mass, &y->mass);
    }
    return 0;
}

static void agreement_finalize(const void *p, rs_metric_sink *sink)
{
    const agreement_acc *a = p;
    for (int l = 0; l < a->L; l++) {
        const agreement_layer *ly = &a->layers[l];
        rs_metric_emit(sink, OUT_FLUCTUATION, l, NULL,
                       ly->tokens ? (double)ly->top1_changed / (double)ly->tokens : NAN);
        rs_metric_emit(sink, OUT_TOPK_CHANGE, l, NULL, rs_xsum_mean(&ly->change));
        rs_metric_emit(sink, OUT_JACCARD, l, NULL, rs_xsum_mean(&ly->jaccard));
        if (ly->mass.count > 0)
            rs_metric_emit(sink, OUT_MASS_RETAINED, l, NULL, rs_xsum_mean(&ly->mass));
    }
}

static void agreement_checkpoint(void *p, rs_state_io *io)
{
    agreement_acc *a = p;
    for (int l = 0; l < a->L; l++) { /* in_ref is per-token scratch */
        agreement_layer *ly = &a->layers[l];
        RS_STATE(io, ly->tokens);
        RS_STATE(io, ly->top1_changed);
        RS_STATE(io, ly->change);
        RS_STATE(io, ly->jaccard);
        RS_STATE(io, ly->mass);
    }
}

static const rs_metric_type agreement_type = {
    .name = "agreement",
    .summary = "token-by-token agreement with a reference run: top-1 fluctuation, top-k change, Jaccard, mass "
               "retained",
    .source = "fluctuation: StableMoE arXiv:2204.08396; mass_retained: metrics.md (token-level oracle gap)",
    .params = NULL,
    .num_params = 0,
    .outputs = agreement_outputs,
    .num_outputs = sizeof agreement_outputs / sizeof agreement_outputs[0],
    .needs = RS_WANTS_PROBS,
    .flags = RS_METRIC_REFERENCE,
    .create = agreement_create,
    .update_layer = agreement_update_layer,
    .merge = agreement_merge,
    .finalize = agreement_finalize,
    .destroy = agreement_destroy,
    .checkpoint = agreement_checkpoint,
};

const rs_metric_type *const rs_metric_agreement = &agreement_type;
