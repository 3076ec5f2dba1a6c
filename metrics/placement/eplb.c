/* eplb: DeepSeek's expert-parallel load balancer, exactly as
 * deepseek-ai/EPLB eplb.py rebalance_experts computes it (commit d52c72d).
 *
 * Per layer, with w = the layer's loads converted to float32:
 *  1. (hierarchical, when the expert groups divide among the N nodes) the
 *     groups' float32 load sums are packed onto the nodes, groups/N each,
 *     by balanced packing; node n then holds the experts of its groups,
 *     in the order the reference's log2mlog gives them (the group's place
 *     in the node, then the expert's in the group);
 *  2. within each node, its E/N experts are replicated to S/N slots: each
 *     extra slot goes to the expert with the largest w_e / count_e
 *     (float32 division);
 *  3. the node's S/N copies, each weighing w_e / count_e, are packed onto
 *     its G/N devices, S/G each, by balanced packing; a copy's position on
 *     its device is the order it was packed in.
 * Otherwise (global) the same routine runs with one group and one node,
 * as the reference does at that commit: replication over all experts,
 * then packing onto all G devices.
 *
 * Balanced packing of n items into m packs of n/m: when n/m = 1, item i
 * is pack i; else items by weight, heaviest first, each into the pack of
 * least float32 weight among those with room, and that pack's weight grows
 * by the item's (float32, in packing order, as the reference's list of
 * 0-d float32 tensors does).
 *
 * Ties: every tie goes to the lower index: the sort by weight is stable
 * (equal weights in index order), the replica goes to the first expert of
 * largest w_e / count_e, the item to the first lightest pack. The
 * reference's max(dim=-1) and Python's min() do the same. Its
 * sort(descending=True) is not stable: torch 1.13 (Debian's) keeps equal
 * weights in index order for rows of up to 16 items and orders them as
 * its sort implementation happens to for longer rows. Ties are common in
 * step 3 (the copies of one expert weigh the same), so on rows of more
 * than 16 copies the reference can put equal-weight copies on other
 * devices than here; both plans have the same device loads.
 *
 * Group sums add float32 values in expert order; they are exact, and equal
 * to torch's, while a group's sum stays below 2^24 with integer loads.
 * Past that torch's vectorised sum rounds in its own order, so a near tie
 * between groups may go the other way. */
#include <stdlib.h>
#include <string.h>

#include "metrics/placement/placement.h"

typedef struct weighted {
    float weight;
    int index;
} weighted;

/* Heavier first; equal weights in index order (a stable descending sort). */
static int heavier_first(const void *a, const void *b)
{
    const weighted *x = a, *y = b;
    if (x->weight != y->weight)
        return x->weight > y->weight ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

/* Working arrays for one layer, sized for the largest use. */
typedef struct scratch {
    float *w, *group_sum, *node_w, *copy_w, *pack_w;
    int *group_pack, *group_rank, *log2mlog, *mlog2log, *copy_expert, *copy_rank, *count, *copy_pack, *copy_pos,
        *pack_items;
    weighted *order;
} scratch;

static void scratch_free(scratch *s)
{
    free(s->w);
    free(s->group_pack);
    free(s->order);
}

static int scratch_alloc(scratch *s, int E, int S, int G, int groups)
{
    memset(s, 0, sizeof *s);
    const size_t n_max = (size_t)(S > groups ? S : groups);
    const size_t packs_max = (size_t)(G > groups ? G : groups);
    s->w = malloc((2 * (size_t)E + (size_t)groups + S + packs_max) * sizeof *s->w);
    s->group_pack = malloc((3 * (size_t)E + 2 * (size_t)groups + 4 * (size_t)S + packs_max) * sizeof *s->group_pack);
    s->order = malloc(n_max * sizeof *s->order);
    if (!s->w || !s->group_pack || !s->order) {
        scratch_free(s);
        return -1;
    }
    s->node_w = s->w + E;
    s->group_sum = s->node_w + E;
    s->copy_w = s->group_sum + groups;
    s->pack_w = s->copy_w + S;
    s->group_rank = s->group_pack + groups;
    s->log2mlog = s->group_rank + groups;
    s->mlog2log = s->log2mlog + E;
    s->count = s->mlog2log + E;
    s->copy_expert = s->count + E;
    s->copy_rank = s->copy_expert + S;
    s->copy_pack = s->copy_rank + S;
    s->copy_pos = s->copy_pack + S;
    s->pack_items = s->copy_pos + S;
    return 0;
}

/* Balanced packing of n items (weights w) into packs of n / packs items. */
static void balanced_packing(const float *w, int n, int packs, int *pack_of, int *rank_in_pack, scratch *s)
{
    const int per_pack = n / packs;
    if (per_pack == 1) {
        for (int i = 0; i < n; i++) {
            pack_of[i] = i;
            rank_in_pack[i] = 0;
        }
        return;
    }
    for (int i = 0; i < n; i++)
        s->order[i] = (weighted){w[i], i};
    qsort(s->order, (size_t)n, sizeof *s->order, heavier_first);
    for (int p = 0; p < packs; p++) {
        s->pack_w[p] = 0.0f;
        s->pack_items[p] = 0;
    }
    for (int j = 0; j < n; j++) {
        const int item = s->order[j].index;
        int best = -1;
        for (int p = 0; p < packs; p++)
            if (s->pack_items[p] < per_pack && (best < 0 || s->pack_w[p] < s->pack_w[best]))
                best = p;
        pack_of[item] = best;
        rank_in_pack[item] = s->pack_items[best]++;
        s->pack_w[best] += w[item];
    }
}

/* Replicates num_log experts (weights w) to num_phy copies: copy i < num_log
 * is expert i, each further copy goes to the first expert of largest
 * w / count. */
static void replicate(const float *w, int num_log, int num_phy, int *copy_expert, int *copy_rank, int *count)
{
    for (int e = 0; e < num_log; e++) {
        copy_expert[e] = e;
        copy_rank[e] = 0;
        count[e] = 1;
    }
    for (int i = num_log; i < num_phy; i++) {
        int best = 0;
        float best_v = w[0] / (float)count[0];
        for (int e = 1; e < num_log; e++) {
            const float v = w[e] / (float)count[e];
            if (v > best_v) {
                best = e;
                best_v = v;
            }
        }
        copy_expert[i] = best;
        copy_rank[i] = count[best]++;
    }
}

/* One layer: loads[E] -> phy2log[S], rank[S]. */
static void plan_layer(const double *loads, const rs_placement_layout *lay, int groups, int nodes, int32_t *phy2log,
                       int32_t *rank, scratch *s)
{
    const int E = lay->E, S = lay->S;
    const int group_size = E / groups, groups_per_node = groups / nodes;
    const int experts_per_node = E / nodes, slots_per_node = S / nodes;
    const int devices_per_node = lay->G / nodes, slots_per_device = S / lay->G;
    for (int e = 0; e < E; e++)
        s->w[e] = (float)loads[e];

    /* 1: groups onto nodes; mlog = an expert's index in node order */
    for (int g = 0; g < groups; g++) {
        float sum = 0.0f;
        for (int j = 0; j < group_size; j++)
            sum += s->w[g * group_size + j];
        s->group_sum[g] = sum;
    }
    balanced_packing(s->group_sum, groups, nodes, s->group_pack, s->group_rank, s);
    for (int e = 0; e < E; e++) {
        const int g = e / group_size;
        const int mlog = (s->group_pack[g] * groups_per_node + s->group_rank[g]) * group_size + e % group_size;
        s->log2mlog[e] = mlog;
        s->mlog2log[mlog] = e;
    }

    for (int n = 0; n < nodes; n++) {
        /* 2: replicate the node's experts to its slots */
        const int *node_experts = s->mlog2log + (size_t)n * experts_per_node;
        for (int m = 0; m < experts_per_node; m++)
            s->node_w[m] = s->w[node_experts[m]];
        replicate(s->node_w, experts_per_node, slots_per_node, s->copy_expert, s->copy_rank, s->count);
        /* 3: copies onto the node's devices */
        for (int c = 0; c < slots_per_node; c++)
            s->copy_w[c] = s->node_w[s->copy_expert[c]] / (float)s->count[s->copy_expert[c]];
        balanced_packing(s->copy_w, slots_per_node, devices_per_node, s->copy_pack, s->copy_pos, s);
        for (int c = 0; c < slots_per_node; c++) {
            const int slot = n * slots_per_node + s->copy_pack[c] * slots_per_device + s->copy_pos[c];
            phy2log[slot] = node_experts[s->copy_expert[c]];
            rank[slot] = s->copy_rank[c];
        }
    }
}

static int eplb_plan(rs_placement *out, const rs_placement_stats *stats, const rs_placement_options *options,
                     rs_error *err)
{
    (void)options;
    const rs_placement_layout *lay = &out->layout;
    const int hierarchical = lay->groups % lay->N == 0;
    const int groups = hierarchical ? lay->groups : 1, nodes = hierarchical ? lay->N : 1;
    scratch s;
    RS_CHECK(scratch_alloc(&s, lay->E, lay->S, lay->G, groups) == 0, err, "placement eplb: out of memory");
    for (int l = 0; l < out->L; l++)
        plan_layer(stats->loads + (size_t)l * lay->E, lay, groups, nodes, out->phy2log + (size_t)l * lay->S,
                   out->rank + (size_t)l * lay->S, &s);
    scratch_free(&s);
    return rs_placement_finish(out, err);
}

static const rs_placement_policy eplb = {
    .name = "eplb",
    .summary = "DeepSeek's EPLB: replicate the heaviest experts, pack groups onto nodes and copies onto devices",
    .definition = "hierarchical when groups % N = 0: groups packed onto nodes by float32 load sums, then per node "
                  "each extra slot to argmax_e w_e / count_e and the copies (weight w_e / count_e) packed onto "
                  "its devices, S/G each, heaviest first into the lightest device with room; otherwise the same "
                  "with one group and one node. Ties to the lower index",
    .source = "deepseek-ai/EPLB eplb.py rebalance_experts (commit d52c72d); DeepSeek-V3 arXiv:2412.19437",
    .needs = RS_PLACEMENT_NEEDS_LOADS,
    .plan = eplb_plan,
};

const rs_placement_policy *const rs_placement_policy_eplb = &eplb;
