/* locality: how much consecutive tokens of one sequence share experts
 * (adjacent_overlap, adjacent_jaccard) and how long an expert waits between
 * uses (reuse_distance); docs/metrics.md#locality-and-affinity.
 *
 * Order matters, so the family is sequential: each layer sees its tokens in
 * order, and per-layer state (every expert's last use, the previous token)
 * carries across chunks, because sequences span chunks. Token indices are
 * global, so a last use from an earlier sequence is recognised by comparing
 * with the current sequence's first token: nothing is reset per sequence.
 *
 * Only observed (token, layer)s count (rs_row_observed): the others are
 * absent, so the observed tokens of a sequence are consecutive and reuse
 * distances count observed tokens, numbered per layer (ord).
 *
 * Merging: an accumulator also remembers its head (its first observed token
 * and where each expert was first used in its first sequence), so that
 * when the range before it ends inside the same sequence (same global
 * sequence id) the pair across the cut and the reuse distances of those
 * first uses are restored: merged halves equal the whole for any split. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "routesim/metric.h"
#include "routesim/router.h"
#include "routesim/xsum.h"

enum { OUT_ADJACENT_OVERLAP, OUT_ADJACENT_JACCARD, OUT_REUSE_DISTANCE };

/* Bin b holds distances d with 2^b <= d < 2^(b+1). */
enum { REUSE_BINS = 48 }; /* the last bin also takes any longer distance */

static const rs_metric_output locality_outputs[] = {
    [OUT_ADJACENT_OVERLAP] = {"adjacent_overlap",
                              "mean over consecutive tokens of a sequence of |S_t and S_t-1| / max(|S_t|, |S_t-1|) "
                              "(= / k for fixed k)",
                              0, RS_AGG_MEAN, .label = "adjacent-token expert overlap", .unit = "%", .unit_scale = 100},
    [OUT_ADJACENT_JACCARD] = {"adjacent_jaccard",
                              "mean over consecutive tokens of a sequence of |S_t and S_t-1| / |S_t or S_t-1|", 0,
                              RS_AGG_MEAN, .label = "adjacent-token Jaccard", .unit = "%", .unit_scale = 100},
    [OUT_REUSE_DISTANCE] = {"reuse_distance",
                            "share of expert uses by tokens since the expert's last use in the sequence (key "
                            "d=1, d=2-3, d=4-7, ...; d=first: first use)",
                            0, RS_AGG_SELF, .label = "expert uses", .unit = "%", .unit_scale = 100},
};

typedef struct locality_layer {
    /* state carried across chunks */
    int64_t *last_use; /* [E] global index of the token that last used the expert, -1 never */
    int64_t *last_ord; /* [E] and its ord */
    int64_t ord;       /* observed tokens so far: the next one's ord */
    int64_t seq_id;    /* global id of the current sequence, -1 before the first token */
    int64_t seq_start; /* its first token */
    int64_t prev_t;    /* last observed token, -1 none */
    int prev_k;        /* its number of experts */
    /* head: what merging with the range before needs */
    int seen;            /* any observed token seen */
    int64_t head_seq;    /* sequence id of the first observed token */
    int head_k;
    int32_t *head_ids;   /* [kmax] its distinct experts */
    int64_t *first_use; /* [E] first use of each expert in the head sequence, -1 none */
    int64_t *first_ord; /* [E] and its ord */
    /* sums */
    rs_xsum overlap, jaccard;
    int64_t reuse[REUSE_BINS];
    int64_t first_uses;
} locality_layer;

typedef struct locality_acc {
    int L, E, kmax;
    locality_layer *layers;
} locality_acc;

static void locality_destroy(void *p)
{
    locality_acc *a = p;
    if (!a)
        return;
    if (a->layers) {
        for (int l = 0; l < a->L; l++) {
            free(a->layers[l].last_use);
            free(a->layers[l].last_ord);
            free(a->layers[l].first_use);
            free(a->layers[l].first_ord);
            free(a->layers[l].head_ids);
        }
    }
    free(a->layers);
    free(a);
}

static int locality_create(void **out, const rs_params *params, const rs_metric_setup *setup, rs_error *err)
{
    (void)params;
    locality_acc *a = calloc(1, sizeof *a);
    RS_CHECK(a, err, "metric locality: out of memory");
    a->L = setup->trace->num_layers;
    a->E = setup->trace->num_experts;
    a->kmax = setup->kmax > 0 ? setup->kmax : 1;
    a->layers = calloc((size_t)a->L, sizeof *a->layers);
    int ok = a->layers != NULL;
    for (int l = 0; ok && l < a->L; l++) {
        locality_layer *ly = &a->layers[l];
        ly->last_use = malloc((size_t)a->E * sizeof *ly->last_use);
        ly->last_ord = calloc((size_t)a->E, sizeof *ly->last_ord);
        ly->first_use = malloc((size_t)a->E * sizeof *ly->first_use);
        ly->first_ord = calloc((size_t)a->E, sizeof *ly->first_ord);
        ly->head_ids = malloc((size_t)a->kmax * sizeof *ly->head_ids);
        ok = ly->last_use && ly->last_ord && ly->first_use && ly->first_ord && ly->head_ids;
        if (!ok)
            break;
        for (int e = 0; e < a->E; e++)
            ly->last_use[e] = ly->first_use[e] = -1;
        ly->seq_id = ly->head_seq = -1;
        ly->prev_t = -1;
    }
    if (!ok) {
        locality_destroy(a);
        return rs_fail(err, "metric locality: out of memory");
    }
    *out = a;
    return 0;
}

static int reuse_bin(int64_t d)
{
    if (d < 1) /* cannot happen for consecutive ranges */
        return 0;
    int b = 63 - __builtin_clzll((unsigned long long)d); /* floor(log2 d) */
    return b < REUSE_BINS ? b : REUSE_BINS - 1;
}

/* One pair of consecutive tokens with k_prev and k_cur experts, inter shared. */
static void add_pair(locality_layer *ly, int inter, int k_prev, int k_cur)
{
    int larger = k_prev > k_cur ? k_prev : k_cur;
    if (larger == 0) /* neither token has an expert: nothing to compare */
        return;
    rs_xsum_add(&ly->overlap, (double)inter / (double)larger);
    rs_xsum_add(&ly->jaccard, (double)inter / (double)(k_prev + k_cur - inter));
}

static void locality_update_layer(void *p, const rs_chunk *c, int layer, const rs_decisions *dec,
                                  const rs_metric_ref *ref)
{
    (void)ref;
    locality_acc *a = p;
    locality_layer *ly = &a->layers[layer];
    int64_t *last_use = ly->last_use;
    const int K = dec->kmax;
    for (int t = 0; t < c->n; t++) {
        const int64_t g = c->t0 + t;
        const int32_t s = c->seq_of_token[t];
        const int64_t sid = c->first_seq + s, start = c->seq_offsets[s];
        if (sid != ly->seq_id) {
            ly->seq_id = sid;
            ly->seq_start = start;
        }
        if (!rs_row_observed(c, dec, t, layer))
            continue; /* absent: the previous and the next observed token are neighbours */
        const int head = !ly->seen;
        if (head) {
            ly->seen = 1;
            ly->head_seq = sid;
            ly->head_k = 0;
        }
        const int64_t ord = ly->ord++;
        const int32_t *ids = dec->ids + rs_decision_row(c, dec, t, layer);
        int k = 0, inter = 0;
        for (int j = 0; j < K; j++) {
            const int32_t e = ids[j];
            if (e < 0 || last_use[e] == g) /* not an expert, or repeated in the row */
                continue;
            const int64_t lu = last_use[e];
            if (lu >= start) {
                ly->reuse[reuse_bin(ord - ly->last_ord[e])]++;
                inter += lu == ly->prev_t;
            } else {
                ly->first_uses++;
                if (sid == ly->head_seq) {
                    ly->first_use[e] = g;
                    ly->first_ord[e] = ord;
                }
            }
            last_use[e] = g;
            ly->last_ord[e] = ord;
            if (head && k < a->kmax)
                ly->head_ids[k] = e;
            k++;
        }
        if (head)
            ly->head_k = k < a->kmax ? k : a->kmax;
        if (ly->prev_t >= start)
            add_pair(ly, inter, ly->prev_k, k);
        ly->prev_t = g;
        ly->prev_k = k;
    }
}

/* x covers tokens just before y; join what the cut separated when y's first
 * sequence continues x's last one. */
static void join_layers(locality_layer *x, const locality_layer *y, int E)
{
    if (x->seq_id != y->head_seq)
        return;
    int64_t moved = 0;
    for (int e = 0; e < E; e++) {
        if (y->first_use[e] >= 0 && x->last_use[e] >= x->seq_start) {
            x->reuse[reuse_bin(x->ord + y->first_ord[e] - x->last_ord[e])]++; /* y's ords follow x's */
            moved++;
        }
    }
    x->first_uses -= moved; /* y's first uses are added below */
    if (x->prev_t >= x->seq_start) { /* y's head follows x's last observed token */
        int inter = 0;
        for (int j = 0; j < y->head_k; j++)
            inter += x->last_use[y->head_ids[j]] == x->prev_t;
        add_pair(x, inter, x->prev_k, y->head_k);
    }
    if (x->head_seq == y->head_seq) /* x lies inside that sequence: y's first uses extend x's head */
        for (int e = 0; e < E; e++)
            if (x->first_use[e] < 0 && y->first_use[e] >= 0) {
                x->first_use[e] = y->first_use[e];
                x->first_ord[e] = x->ord + y->first_ord[e];
            }
}

static int locality_merge(void *p, const void *q, rs_error *err)
{
    locality_acc *a = p;
    const locality_acc *b = q;
    RS_CHECK(a->L == b->L && a->E == b->E && a->kmax == b->kmax, err,
             "metric locality: merging unlike accumulators");
    const int E = a->E;
    for (int l = 0; l < a->L; l++) {
        locality_layer *x = &a->layers[l];
        const locality_layer *y = &b->layers[l];
        if (!y->seen)
            continue;
        if (!x->seen) { /* x has no observed token: take y's head too */
            x->seen = 1;
            x->head_seq = y->head_seq;
            x->head_k = y->head_k;
            memcpy(x->head_ids, y->head_ids, (size_t)a->kmax * sizeof *x->head_ids);
            for (int e = 0; e < E; e++) {
                x->first_use[e] = y->first_use[e];
                x->first_ord[e] = x->ord + y->first_ord[e];
            }
        } else {
            join_layers(x, y, E);
        }
        rs_xsum_merge(&x->overlap, &y->overlap);
        rs_xsum_merge(&x->jaccard, &y->jaccard);
        for (int b2 = 0; b2 < REUSE_BINS; b2++)
            x->reuse[b2] += y->reuse[b2];
        x->first_uses += y->first_uses;
        for (int e = 0; e < E; e++)
            if (y->last_use[e] > x->last_use[e]) {
                x->last_use[e] = y->last_use[e];
                x->last_ord[e] = x->ord + y->last_ord[e];
            }
        x->ord += y->ord;
        if (y->seq_id != x->seq_id)
            x->seq_start = y->seq_start; /* else the sequence started in x (or before) */
        x->seq_id = y->seq_id;
        if (y->prev_t >= 0) {
            x->prev_t = y->prev_t;
            x->prev_k = y->prev_k;
        }
    }
    return 0;
}

/* Bootstrap merges blocks of whole sequences in any order, a block with
 * itself too: forget the current sequence and the head's sequence so that
 * no merge joins across the block's ends (ids no sequence has, and that
 * differ from each other). */
static void locality_seal(void *p)
{
    locality_acc *a = p;
    for (int l = 0; l < a->L; l++) {
        a->layers[l].seq_id = -2;
        a->layers[l].head_seq = -3;
        a->layers[l].prev_t = -1;
    }
}

static void bin_key(int b, char *key, size_t size)
{
    if (b == 0)
        snprintf(key, size, "d=1");
    else
        snprintf(key, size, "d=%lld-%lld", 1LL << b, (1LL << (b + 1)) - 1);
}

static double share(int64_t part, int64_t total) { return total > 0 ? (double)part / (double)total : NAN; }

static void locality_finalize(const void *p, rs_metric_sink *sink)
{
    const locality_acc *a = p;
    int top = -1; /* largest non-empty bin of any layer: every layer emits the same keys */
    int64_t all_bins[REUSE_BINS] = {0}, all_first = 0, all_uses = 0;
    for (int l = 0; l < a->L; l++) {
        const locality_layer *ly = &a->layers[l];
        for (int b = 0; b < REUSE_BINS; b++) {
            if (ly->reuse[b] > 0 && b > top)
                top = b;
            all_bins[b] += ly->reuse[b];
            all_uses += ly->reuse[b];
        }
        all_first += ly->first_uses;
        all_uses += ly->first_uses;
    }
    char key[64];
    for (int l = 0; l < a->L; l++) {
        const locality_layer *ly = &a->layers[l];
        rs_metric_emit(sink, OUT_ADJACENT_OVERLAP, l, NULL, rs_xsum_mean(&ly->overlap));
        rs_metric_emit(sink, OUT_ADJACENT_JACCARD, l, NULL, rs_xsum_mean(&ly->jaccard));
        int64_t uses = ly->first_uses;
        for (int b = 0; b < REUSE_BINS; b++)
            uses += ly->reuse[b];
        for (int b = 0; b <= top; b++) {
            bin_key(b, key, sizeof key);
            rs_metric_emit(sink, OUT_REUSE_DISTANCE, l, key, share(ly->reuse[b], uses));
        }
        rs_metric_emit(sink, OUT_REUSE_DISTANCE, l, "d=first", share(ly->first_uses, uses));
    }
    /* layer = all: the uses of every layer pooled */
    for (int b = 0; b <= top; b++) {
        bin_key(b, key, sizeof key);
        rs_metric_emit(sink, OUT_REUSE_DISTANCE, -1, key, share(all_bins[b], all_uses));
    }
    rs_metric_emit(sink, OUT_REUSE_DISTANCE, -1, "d=first", share(all_first, all_uses));
}

static void locality_checkpoint(void *p, rs_state_io *io)
{
    locality_acc *a = p;
    for (int l = 0; l < a->L; l++) {
        locality_layer *ly = &a->layers[l];
        RS_STATE_ARRAY(io, ly->last_use, a->E);
        RS_STATE_ARRAY(io, ly->last_ord, a->E);
        RS_STATE(io, ly->ord);
        RS_STATE(io, ly->seq_id);
        RS_STATE(io, ly->seq_start);
        RS_STATE(io, ly->prev_t);
        RS_STATE(io, ly->prev_k);
        RS_STATE(io, ly->seen);
        RS_STATE(io, ly->head_seq);
        RS_STATE(io, ly->head_k);
        RS_STATE_ARRAY(io, ly->head_ids, a->kmax);
        RS_STATE_ARRAY(io, ly->first_use, a->E);
        RS_STATE_ARRAY(io, ly->first_ord, a->E);
        RS_STATE(io, ly->overlap);
        RS_STATE(io, ly->jaccard);
        RS_STATE(io, ly->reuse);
        RS_STATE(io, ly->first_uses);
    }
}

static const rs_metric_type locality_type = {
    .name = "locality",
    .summary = "temporal locality of routing: adjacent-token expert overlap and Jaccard, reuse distances",
    .source = "metrics.md; local routing consistency: Liang et al. arXiv:2505.16056 (ljcleo/moe-lrc); reuse "
              "distance as in Mattson et al. 1970",
    .params = NULL,
    .num_params = 0,
    .outputs = locality_outputs,
    .num_outputs = sizeof locality_outputs / sizeof locality_outputs[0],
    .needs = 0, /* decisions only */
    .flags = RS_METRIC_SEQUENTIAL,
    .create = locality_create,
    .update_layer = locality_update_layer,
    .merge = locality_merge,
    .seal = locality_seal,
    .finalize = locality_finalize,
    .destroy = locality_destroy,
    .checkpoint = locality_checkpoint,
};

const rs_metric_type *const rs_metric_locality = &locality_type;
