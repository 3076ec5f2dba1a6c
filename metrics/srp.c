/* srp: Segment Routing best Performance (Liang et al., arXiv:2505.16056;
 * reference ljcleo/moe-lrc src/30_srp_calc.py calc_stat and
 * src/31_srp_refine.py). For every window of m consecutive tokens of one
 * sequence, f_e counts the window's tokens that select expert e; a segment
 * router keeps e for the whole window iff f_e >= alpha. With H[f] = number of
 * (window, expert) pairs with count f:
 *   matches(alpha) = sum_{f >= alpha} f H[f], preds(alpha) = m sum_{f >= alpha} H[f],
 *   acts = matches(0), SRP = max_alpha 2 matches / (preds + acts).
 *
 * H is built in one pass: each expert's count changes only when a token
 * enters or leaves the window, so the windows a count lasted are credited
 * to H[count] when it changes (H[0] follows from the window total). A ring
 * holds the ids of the last m tokens, so memory is O(E + m kmax) per layer,
 * whatever the sequence length. Every count is an integer: results do not
 * depend on chunking, threads or merges. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "routesim/metric.h"

enum { OUT_SRP, OUT_RHO_HAT };
enum { PARAM_M };

static const rs_param_def srp_params[] = {
    [PARAM_M] = {"m", RS_PARAM_INT, "16", 1, 1 << 16, NULL, "segment (window) length in tokens"},
};

static const rs_metric_output srp_outputs[] = {
    [OUT_SRP] = {"srp",
                 "max over alpha of 2 matches / (preds + acts) over sliding windows of m tokens "
                 "(layer=all: counts summed over layers, one alpha)",
                 1ull << PARAM_M, RS_AGG_SELF, .label = "SRP", .unit = "%", .unit_scale = 100},
    [OUT_RHO_HAT] = {"rho_hat", "preds(alpha*) / acts at the best alpha (layer=all: model level)", 1ull << PARAM_M,
                     RS_AGG_SELF, .label = "predicted / activated experts"},
};

typedef struct srp_layer {
    int32_t *count;   /* [E] f_e of the current window */
    int64_t *since;   /* [E] windows counted when count[e] last changed */
    int64_t *seen_in; /* [E] row stamp, to count an expert once per token */
    int32_t *ring;    /* [ring_rows * kmax] ids of the last m tokens of the open sequence */
    int32_t *ring_len; /* [ring_rows] ids stored per ring row */
    int64_t *hist;    /* [m + 1] (window, expert) pairs by count; [0] is derived in finalize */
    int64_t windows;  /* windows finished, all sequences */
    int64_t pos;      /* valid tokens seen in the open sequence */
    int64_t head;     /* ring row of the next token (pos mod m) */
    int64_t stamp;
} srp_layer;

typedef struct srp_acc {
    int L, E, kmax;
    int64_t m;
    int64_t ring_rows; /* m, or the trace length when shorter: no sequence is longer */
    srp_layer *layers;
} srp_acc;

static void srp_destroy(void *p)
{
    srp_acc *a = p;
    if (!a)
        return;
    for (int l = 0; a->layers && l < a->L; l++) {
        srp_layer *ly = &a->layers[l];
        free(ly->count);
        free(ly->since);
        free(ly->seen_in);
        free(ly->ring);
        free(ly->ring_len);
        free(ly->hist);
    }
    free(a->layers);
    free(a);
}

static int srp_create(void **out, const rs_params *params, const rs_metric_setup *setup, rs_error *err)
{
    srp_acc *a = calloc(1, sizeof *a);
    RS_CHECK(a, err, "metric srp: out of memory");
    a->L = setup->trace->num_layers;
    a->E = setup->trace->num_experts;
    a->kmax = setup->kmax;
    a->m = rs_param_int(params, "m");
    a->layers = calloc((size_t)a->L, sizeof *a->layers);
    int ok = a->layers != NULL;
    const size_t E = (size_t)a->E, m = (size_t)a->m;
    const int64_t T = setup->trace->num_tokens;
    a->ring_rows = T > 0 && T < a->m ? T : a->m;
    const size_t rows = (size_t)a->ring_rows;
    for (int l = 0; ok && l < a->L; l++) {
        srp_layer *ly = &a->layers[l];
        ly->count = calloc(E, sizeof *ly->count);
        ly->since = calloc(E, sizeof *ly->since);
        ly->seen_in = calloc(E, sizeof *ly->seen_in);
        ly->ring = malloc((rows * (size_t)a->kmax + 1) * sizeof *ly->ring);
        ly->ring_len = calloc(rows, sizeof *ly->ring_len);
        ly->hist = calloc(m + 1, sizeof *ly->hist);
        ok = ly->count && ly->since && ly->seen_in && ly->ring && ly->ring_len && ly->hist;
    }
    if (!ok) {
        srp_destroy(a);
        return rs_fail(err, "metric srp: out of memory");
    }
    *out = a;
    return 0;
}

/* Credits the windows since count[e] last changed to H[count[e]]. */
static inline void settle(srp_layer *ly, int32_t e)
{
    int32_t f = ly->count[e];
    if (f > 0)
        ly->hist[f] += ly->windows - ly->since[e];
    ly->since[e] = ly->windows;
}

/* The open sequence ended: credit its last window's counts and clear them. */
static void end_sequence(srp_layer *ly, int64_t m, int kmax)
{
    int64_t rows = ly->pos < m ? ly->pos : m;
    for (int64_t r = 0; r < rows; r++) {
        const int32_t *ids = ly->ring + r * kmax;
        for (int j = 0; j < ly->ring_len[r]; j++) {
            int32_t e = ids[j];
            if (ly->count[e] > 0) {
                settle(ly, e);
                ly->count[e] = 0;
            }
        }
    }
    ly->pos = 0;
    ly->head = 0;
}

static void srp_update_layer(void *p, const rs_chunk *c, int layer, const rs_decisions *dec, const rs_metric_ref *ref)
{
    (void)ref;
    srp_acc *a = p;
    srp_layer *ly = &a->layers[layer];
    const int K = dec->kmax < a->kmax ? dec->kmax : a->kmax; /* ring rows hold the router's kmax */
    const int E = a->E;
    const int64_t m = a->m;
    for (int t = 0; t < c->n; t++) {
        if (rs_row_observed(c, dec, t, layer)) { /* others are absent: the window closes over them */
            /* the token leaving the window */
            int64_t slot = ly->head;
            int32_t *row = ly->ring + slot * a->kmax;
            if (ly->pos >= m) {
                for (int j = 0; j < ly->ring_len[slot]; j++) {
                    settle(ly, row[j]);
                    ly->count[row[j]]--;
                }
            }
            /* the token entering it: -1 and out-of-range ids are not
             * selections, and an expert listed twice counts once */
            const int32_t *ids = dec->ids + rs_decision_row(c, dec, t, layer);
            int64_t stamp = ++ly->stamp;
            int n = 0;
            for (int j = 0; j < K; j++) {
                int32_t e = ids[j];
                if (e < 0 || e >= E || ly->seen_in[e] == stamp)
                    continue;
                ly->seen_in[e] = stamp;
                row[n++] = e;
                settle(ly, e);
                ly->count[e]++;
            }
            ly->ring_len[slot] = n;
            if (++ly->head == m)
                ly->head = 0;
            if (++ly->pos >= m)
                ly->windows++; /* the window ending at this token */
        }
        int32_t s = c->seq_of_token[t];
        if (c->t0 + t + 1 == c->seq_offsets[s + 1])
            end_sequence(ly, m, a->kmax);
    }
}

static int srp_merge(void *p, const void *q, rs_error *err)
{
    srp_acc *a = p;
    const srp_acc *b = q;
    RS_CHECK(a->L == b->L && a->E == b->E && a->m == b->m && a->kmax == b->kmax && a->ring_rows == b->ring_rows, err, "metric srp: merging unlike accumulators");
    for (int l = 0; l < a->L; l++) {
        srp_layer *x = &a->layers[l];
        const srp_layer *y = &b->layers[l];
        RS_CHECK(x->pos == 0, err, "metric srp: merge inside a sequence (ranges must split at sequence boundaries)");
        for (int64_t f = 1; f <= a->m; f++)
            x->hist[f] += y->hist[f];
        if (y->pos > 0) { /* b ends inside a sequence: take over its window */
            /* b's pending credits count from its own window total */
            for (int e = 0; e < a->E; e++)
                x->since[e] = y->since[e] + x->windows;
            memcpy(x->count, y->count, (size_t)a->E * sizeof *x->count);
            memcpy(x->ring, y->ring, (size_t)a->ring_rows * (size_t)a->kmax * sizeof *x->ring);
            memcpy(x->ring_len, y->ring_len, (size_t)a->ring_rows * sizeof *x->ring_len);
            x->pos = y->pos;
            x->head = y->head;
        }
        x->windows += y->windows;
    }
    return 0;
}

/* A layer outside a sequence keeps only hist and windows (what merge reads
 * of `other`): the window counts and ring are for sequences still open. */
/* Frees what only further updates read (count NULL marks it). */
static void compact_layer(srp_layer *ly)
{
    free(ly->count);
    free(ly->since);
    free(ly->seen_in);
    free(ly->ring);
    free(ly->ring_len);
    ly->count = NULL;
    ly->ring = ly->ring_len = NULL;
    ly->since = ly->seen_in = NULL;
}

static void srp_compact(void *p)
{
    srp_acc *a = p;
    for (int l = 0; l < a->L; l++)
        if (a->layers[l].pos == 0)
            compact_layer(&a->layers[l]);
}

typedef struct srp_result {
    double srp, rho_hat;
} srp_result;

/* The best micro-F1 over alpha = 0..m from H[0..m] (H[0] included); ties
 * keep the smallest alpha, as torch's max does in the reference. */
static srp_result best_f1(const int64_t *hist, int64_t m)
{
    int64_t acts = 0, pairs = 0;
    for (int64_t f = 0; f <= m; f++) {
        acts += f * hist[f];
        pairs += hist[f];
    }
    srp_result r = {NAN, NAN};
    if (pairs == 0 || acts == 0)
        return r; /* no window, or no selection in any window */
    /* matches and preds for alpha = 0, then peel off H[alpha - 1] */
    int64_t matches = acts, covered = pairs;
    double best = -1.0;
    int64_t best_preds = 0;
    for (int64_t alpha = 0; alpha <= m; alpha++) {
        if (alpha > 0) {
            matches -= (alpha - 1) * hist[alpha - 1];
            covered -= hist[alpha - 1];
        }
        int64_t preds = m * covered;
        double f1 = 2.0 * (double)matches / (double)(preds + acts);
        if (f1 > best) {
            best = f1;
            best_preds = preds;
        }
    }
    r.srp = best;
    r.rho_hat = (double)best_preds / (double)acts;
    return r;
}

static void srp_finalize(const void *p, rs_metric_sink *sink)
{
    const srp_acc *a = p;
    const int64_t m = a->m;
    int64_t *h = calloc((size_t)m + 1, sizeof *h), *all = calloc((size_t)m + 1, sizeof *all);
    if (!h || !all) {
        free(h);
        free(all);
        for (int l = -1; l < a->L; l++) {
            rs_metric_emit(sink, OUT_SRP, l, NULL, NAN);
            rs_metric_emit(sink, OUT_RHO_HAT, l, NULL, NAN);
        }
        return;
    }
    for (int l = 0; l < a->L; l++) {
        const srp_layer *ly = &a->layers[l];
        int64_t nonzero = 0;
        for (int64_t f = 1; f <= m; f++) {
            h[f] = ly->hist[f];
            nonzero += h[f];
        }
        h[0] = ly->windows * a->E - nonzero;
        for (int64_t f = 0; f <= m; f++)
            all[f] += h[f];
        srp_result r = best_f1(h, m);
        rs_metric_emit(sink, OUT_SRP, l, NULL, r.srp);
        rs_metric_emit(sink, OUT_RHO_HAT, l, NULL, r.rho_hat);
    }
    srp_result r = best_f1(all, m);
    rs_metric_emit(sink, OUT_SRP, -1, NULL, r.srp);
    rs_metric_emit(sink, OUT_RHO_HAT, -1, NULL, r.rho_hat);
    free(h);
    free(all);
}

static void srp_checkpoint(void *p, rs_state_io *io)
{
    srp_acc *a = p;
    const size_t E = (size_t)a->E;
    for (int l = 0; l < a->L; l++) {
        srp_layer *ly = &a->layers[l];
        uint8_t whole = ly->count != NULL; /* a compacted bootstrap block keeps only what merge reads */
        RS_STATE(io, whole);
        if (!whole && rs_state_restoring(io))
            compact_layer(ly);
        if (whole) {
            RS_STATE_ARRAY(io, ly->count, E);
            RS_STATE_ARRAY(io, ly->since, E);
            RS_STATE_ARRAY(io, ly->seen_in, E);
            RS_STATE_ARRAY(io, ly->ring, (size_t)a->ring_rows * (size_t)a->kmax);
            RS_STATE_ARRAY(io, ly->ring_len, a->ring_rows);
        }
        RS_STATE_ARRAY(io, ly->hist, a->m + 1);
        RS_STATE(io, ly->windows);
        RS_STATE(io, ly->pos);
        RS_STATE(io, ly->head);
        RS_STATE(io, ly->stamp);
    }
}

static const rs_metric_type srp_type = {
    .name = "srp",
    .summary = "local routing consistency: best micro-F1 of a router fixed per window of m tokens (SRP)",
    .source = "Liang et al. arXiv:2505.16056; ljcleo/moe-lrc src/30_srp_calc.py (calc_stat), "
              "src/31_srp_refine.py",
    .params = srp_params,
    .num_params = sizeof srp_params / sizeof srp_params[0],
    .outputs = srp_outputs,
    .num_outputs = sizeof srp_outputs / sizeof srp_outputs[0],
    .needs = 0,
    .flags = RS_METRIC_SEQUENTIAL,
    .create = srp_create,
    .update_layer = srp_update_layer,
    .merge = srp_merge,
    .compact = srp_compact,
    .finalize = srp_finalize,
    .destroy = srp_destroy,
    .checkpoint = srp_checkpoint,
};

const rs_metric_type *const rs_metric_srp = &srp_type;
