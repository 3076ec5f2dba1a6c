/* affinity: experts that tokens visit in sequence at consecutive layers on
 * the same device (inter-layer expert affinity, ExFlow arXiv:2401.08383),
 * with device loads kept near eplb's.
 *
 * Replica counts are eplb's, and layer 0 is eplb's plan as it is. Then,
 * layer after layer, the copies of layer l (copy of expert e weighing
 * w_e / c_e, c_e its replicas) are placed heaviest first (ties: lower
 * expert, lower rank). A copy of e goes to the device d with the largest
 * affinity
 *     A_e(d) = sum over the copies of layer l-1 on d, of expert i with c_i
 *              replicas, of T[l-1][i][e] / c_i
 * (T: tokens with expert i at layer l-1 and e at layer l; a copy of i
 * carries 1 / c_i of them) among the devices with a free slot, no copy of
 * e yet, and a load that stays within the cap: eplb's largest device load
 * of layer l (sum of w_e / c_e over its copies) x (1 + balance_slack).
 * Ties go to the larger affinity of the device's node, then the lighter
 * device, then the lower index. When no device qualifies, the copy goes to
 * the lightest device with a free slot (one without a copy of e first),
 * ties to the lower index. A device's copies fill its slots in the order
 * they were placed. Slots are counted, so the last copies may land on
 * devices at the cap: a repair then swaps copies of the heaviest device
 * with lighter ones elsewhere, least affinity lost first, until it is
 * within the cap or no swap helps (repair_layer).
 *
 * ExFlow instead solves an integer program (Gurobi) over all layers at
 * once: each expert of top-1 routing traces on one GPU, exactly E/G
 * experts of every layer per GPU, minimising the tokens' consecutive-layer
 * hops between GPUs, solved node level first and then within nodes (or by
 * recursive halving), on growing token prefixes under a time limit. It has
 * neither replicas nor load bounds. This greedy looks one layer back only
 * and will not reach the integer program's optimum; it is deterministic
 * and takes milliseconds. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/placement/placement.h"

typedef struct copy {
    double weight;
    int expert, rank;
} copy;

static int heavier_copy_first(const void *a, const void *b)
{
    const copy *x = a, *y = b;
    if (x->weight != y->weight)
        return x->weight > y->weight ? -1 : 1;
    if (x->expert != y->expert)
        return x->expert < y->expert ? -1 : 1;
    return (x->rank > y->rank) - (x->rank < y->rank);
}

typedef struct scratch {
    copy *copies;     /* [S] */
    double *affinity; /* [E][G] */
    double *node_affinity, *load; /* [N], [G] */
    int *fill;        /* [G] copies placed on each device */
    int *placed;      /* [E][maxcnt] devices of each expert's copies so far */
    int *num_placed;  /* [E] */
} scratch;

static void scratch_free(scratch *s)
{
    free(s->copies);
    free(s->affinity);
    free(s->fill);
}

static int scratch_alloc(scratch *s, const rs_placement_layout *lay, int maxcnt)
{
    const size_t E = (size_t)lay->E, G = (size_t)lay->G, N = (size_t)lay->N;
    memset(s, 0, sizeof *s);
    s->copies = malloc((size_t)lay->S * sizeof *s->copies);
    s->affinity = malloc((E * G + N + G) * sizeof *s->affinity);
    s->fill = malloc((G + E * (size_t)maxcnt + E) * sizeof *s->fill);
    if (!s->copies || !s->affinity || !s->fill) {
        scratch_free(s);
        return -1;
    }
    s->node_affinity = s->affinity + E * G;
    s->load = s->node_affinity + N;
    s->placed = s->fill + G;
    s->num_placed = s->placed + E * (size_t)maxcnt;
    return 0;
}

static int holds(const scratch *s, int maxcnt, int e, int device)
{
    for (int k = 0; k < s->num_placed[e]; k++)
        if (s->placed[(size_t)e * (size_t)maxcnt + (size_t)k] == device)
            return 1;
    return 0;
}

/* eplb's largest device load of one layer: each copy weighs w_e / c_e. */
static double eplb_max_load(const rs_placement *p, int l, const double *w, double *load)
{
    const rs_placement_layout *lay = &p->layout;
    memset(load, 0, (size_t)lay->G * sizeof *load);
    for (int slot = 0; slot < lay->S; slot++) {
        const int e = p->phy2log[(size_t)l * lay->S + slot];
        load[rs_placement_device_of_slot(lay, slot)] += w[e] / p->logcnt[(size_t)l * lay->E + e];
    }
    double max = 0.0;
    for (int d = 0; d < lay->G; d++)
        max = load[d] > max ? load[d] : max;
    return max;
}

/* A_e(d) for every expert of layer l from the plan of layer l-1. */
static void layer_affinity(const rs_placement *p, int l, const double *transitions, double *affinity)
{
    const rs_placement_layout *lay = &p->layout;
    const int E = lay->E, G = lay->G;
    memset(affinity, 0, (size_t)E * (size_t)G * sizeof *affinity);
    for (int slot = 0; slot < lay->S; slot++) {
        const int i = p->phy2log[(size_t)(l - 1) * lay->S + slot], d = rs_placement_device_of_slot(lay, slot);
        const double share = 1.0 / p->logcnt[(size_t)(l - 1) * E + i];
        const double *row = transitions + ((size_t)(l - 1) * E + (size_t)i) * (size_t)E;
        for (int e = 0; e < E; e++)
            affinity[(size_t)e * G + d] += row[e] * share;
    }
}

/* The device for one copy (rules above). */
static int choose_device(const rs_placement_layout *lay, const scratch *s, int maxcnt, const copy *c, double cap)
{
    const int G = lay->G, per_device = lay->S / G, per_node = G / lay->N;
    const double *a = s->affinity + (size_t)c->expert * G;
    int best = -1;
    for (int d = 0; d < G; d++) {
        if (s->fill[d] == per_device || holds(s, maxcnt, c->expert, d) || s->load[d] + c->weight > cap)
            continue;
        if (best >= 0) {
            const double na = s->node_affinity[d / per_node], nb = s->node_affinity[best / per_node];
            if (a[d] < a[best] || (a[d] == a[best] && (na < nb || (na == nb && s->load[d] >= s->load[best]))))
                continue;
        }
        best = d;
    }
    for (int pass = 0; best < 0 && pass < 2; pass++)
        for (int d = 0; d < G; d++)
            if (s->fill[d] < per_device && (pass == 1 || !holds(s, maxcnt, c->expert, d)) &&
                (best < 0 || s->load[d] < s->load[best]))
                best = d;
    return best;
}

static void place_layer(rs_placement *out, int l, const double *w, double cap, scratch *s)
{
    const rs_placement_layout *lay = &out->layout;
    const int E = lay->E, G = lay->G, S = lay->S, per_device = S / G, per_node = G / lay->N;
    const int maxcnt = out->maxcnt;
    const int32_t *count = out->logcnt + (size_t)l * E;
    int n = 0;
    for (int e = 0; e < E; e++)
        for (int r = 0; r < count[e]; r++)
            s->copies[n++] = (copy){w[e] / count[e], e, r};
    qsort(s->copies, (size_t)n, sizeof *s->copies, heavier_copy_first);
    memset(s->load, 0, (size_t)G * sizeof *s->load);
    memset(s->fill, 0, (size_t)G * sizeof *s->fill);
    memset(s->num_placed, 0, (size_t)E * sizeof *s->num_placed);
    int32_t *phy2log = out->phy2log + (size_t)l * S, *rank = out->rank + (size_t)l * S;
    for (int k = 0; k < n; k++) {
        const copy *c = &s->copies[k];
        const double *a = s->affinity + (size_t)c->expert * G;
        for (int node = 0; node < lay->N; node++) {
            s->node_affinity[node] = 0.0;
            for (int d = node * per_node; d < (node + 1) * per_node; d++)
                s->node_affinity[node] += a[d];
        }
        const int d = choose_device(lay, s, maxcnt, c, cap);
        const int slot = d * per_device + s->fill[d]++;
        phy2log[slot] = c->expert;
        rank[slot] = c->rank;
        s->load[d] += c->weight;
        s->placed[(size_t)c->expert * (size_t)maxcnt + (size_t)s->num_placed[c->expert]++] = d;
    }
}

static int on_device(const int32_t *phy2log, int per_device, int expert, int device)
{
    for (int k = device * per_device; k < (device + 1) * per_device; k++)
        if (phy2log[k] == expert)
            return 1;
    return 0;
}

/* Repair: while the heaviest device is over the cap, swap one of its copies
 * with a lighter copy elsewhere that leaves both devices lighter than it
 * was, the swap losing the least affinity (ties: the larger relief, then
 * the lower slots); stops when none exists. */
static void repair_layer(rs_placement *out, int l, const double *w, double cap, scratch *s)
{
    const rs_placement_layout *lay = &out->layout;
    const int G = lay->G, S = lay->S, E = lay->E, per_device = S / G;
    int32_t *phy2log = out->phy2log + (size_t)l * S, *rank = out->rank + (size_t)l * S;
    const int32_t *count = out->logcnt + (size_t)l * E;
    for (int round = 0; round < S * G; round++) {
        int heavy = 0;
        for (int d = 1; d < G; d++)
            heavy = s->load[d] > s->load[heavy] ? d : heavy;
        if (s->load[heavy] <= cap)
            return;
        int best_i = -1, best_j = -1;
        double best_loss = 0.0, best_relief = 0.0;
        for (int i = heavy * per_device; i < (heavy + 1) * per_device; i++) {
            const int x = phy2log[i];
            const double wx = w[x] / count[x];
            for (int j = 0; j < S; j++) {
                const int d = j / per_device, y = phy2log[j];
                const double wy = w[y] / count[y], relief = wx - wy;
                if (d == heavy || relief <= 0 || s->load[d] + relief >= s->load[heavy] ||
                    on_device(phy2log, per_device, x, d) || on_device(phy2log, per_device, y, heavy))
                    continue;
                const double *ax = s->affinity + (size_t)x * G, *ay = s->affinity + (size_t)y * G;
                const double loss = ax[heavy] + ay[d] - ax[d] - ay[heavy];
                if (best_i < 0 || loss < best_loss || (loss == best_loss && relief > best_relief)) {
                    best_i = i;
                    best_j = j;
                    best_loss = loss;
                    best_relief = relief;
                }
            }
        }
        if (best_i < 0)
            return;
        const int32_t e = phy2log[best_i], r = rank[best_i];
        phy2log[best_i] = phy2log[best_j];
        rank[best_i] = rank[best_j];
        phy2log[best_j] = e;
        rank[best_j] = r;
        s->load[heavy] -= best_relief;
        s->load[best_j / per_device] += best_relief;
    }
}

static int affinity_plan(rs_placement *out, const rs_placement_stats *stats, const rs_placement_options *options,
                         rs_error *err)
{
    RS_CHECK(options->balance_slack >= 0 && isfinite(options->balance_slack), err,
             "placement affinity: balance_slack must be a finite number >= 0 (got %g)", options->balance_slack);
    const int L = out->L, E = out->layout.E;
    for (size_t i = 0; L > 1 && i < (size_t)(L - 1) * E * E; i++) {
        const double t = stats->transitions[i];
        RS_CHECK(isfinite(t) && t >= 0, err,
                 "placement affinity: transitions of layer %d expert %d to expert %d is %g; must be finite and >= 0",
                 (int)(i / ((size_t)E * E)), (int)(i / E % E), (int)(i % E), t);
    }
    const rs_placement_policy *eplb = rs_placement_policy_find("eplb");
    RS_CHECK(eplb, err, "placement affinity: the eplb policy is not registered");
    RS_TRY(eplb->plan(out, stats, options, err));
    if (L == 1)
        return 0;
    scratch s;
    RS_CHECK(scratch_alloc(&s, &out->layout, out->maxcnt) == 0, err, "placement affinity: out of memory");
    for (int l = 1; l < L; l++) {
        const double *w = stats->loads + (size_t)l * E;
        const double cap = eplb_max_load(out, l, w, s.load) * (1.0 + options->balance_slack);
        layer_affinity(out, l, stats->transitions, s.affinity);
        place_layer(out, l, w, cap, &s);
        repair_layer(out, l, w, cap, &s);
    }
    scratch_free(&s);
    return rs_placement_finish(out, err);
}

static const rs_placement_policy affinity = {
    .name = "affinity",
    .summary = "consecutive layers' experts that tokens visit in sequence on one device (ExFlow), loads near "
               "eplb's",
    .definition = "eplb's replica counts and layer 0; then per layer, copies heaviest first, each to the device "
                  "with most transitions from the previous layer's copies on it (T[l-1][i][e] / c_i summed), among "
                  "devices with a free slot, no copy of the expert, and load within eplb's largest x (1 + "
                  "balance_slack); ties: node's transitions, lighter device, lower index; else the lightest device "
                  "with a free slot; then swaps of the heaviest device's copies, least affinity lost first, while "
                  "it is over the cap",
    .source = "ExFlow, Yao et al., arXiv:2401.08383 (an integer program; here a greedy with replicas and a load cap)",
    .needs = RS_PLACEMENT_NEEDS_LOADS | RS_PLACEMENT_NEEDS_TRANSITIONS,
    .plan = affinity_plan,
};

const rs_placement_policy *const rs_placement_policy_affinity = &affinity;
