/* placement: expert parallelism under a placement policy (docs/metrics.md
 * "Expert placement and communication"): device load balance, all-to-all
 * traffic and its modelled time, cross-device hops between layers, and the
 * experts a rebalancing policy moves.
 *
 * Everything is measured in update_chunk, which sees every layer's
 * decisions of a chunk in token order: a rebalance (stats=history) then
 * replans all layers at the same batch boundary, as a policy that plans
 * across layers needs, and a token's devices at consecutive layers are at
 * hand for the hops. Counts are integers and per-batch values exact sums
 * (xsum.h), so results do not depend on chunking; the family is
 * RS_METRIC_SEQUENTIAL because replans and dispatch=balanced depend on
 * token order. Parameters and load statistics are read in
 * placement_metric_state.c, dispatch tables built in dispatch.c, the cost model is
 * comm_model.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/placement/comm_model.h"
#include "metrics/placement/placement_metric_internal.h"
#include "routesim/metric.h"

#define P(x) (1ull << (x))
#define PLAN_KEY                                                                                                   \
    (P(PARAM_POLICY) | P(PARAM_FILE) | P(PARAM_LOADS) | P(PARAM_DEVICES) | P(PARAM_NODES) | P(PARAM_GROUPS) |      \
     P(PARAM_REPLICAS) | P(PARAM_STATS) | P(PARAM_WINDOW) | P(PARAM_REBALANCE_EVERY) | P(PARAM_TRAIN_TOKENS) |   \
     P(PARAM_BALANCE_SLACK) | P(PARAM_ITERATIONS) | P(PARAM_SEED) | SEARCH_MODEL_KEY)
/* search plans on the communication model: its parameters shape every output then. */
#define SEARCH_MODEL_KEY                                                                                           \
    (P(PARAM_HIDDEN_SIZE) | P(PARAM_BYTES_PER_ELEMENT) | P(PARAM_NVLINK_GBPS) | P(PARAM_NET_GBPS) |               \
     P(PARAM_LATENCY_US))
#define ROUTE_KEY (PLAN_KEY | P(PARAM_SOURCE) | P(PARAM_DISPATCH))
#define BYTES_KEY (ROUTE_KEY | P(PARAM_HIDDEN_SIZE) | P(PARAM_BYTES_PER_ELEMENT))
#define TIME_KEY (BYTES_KEY | P(PARAM_NVLINK_GBPS) | P(PARAM_NET_GBPS) | P(PARAM_LATENCY_US))

enum {
    OUT_IMBALANCE,
    OUT_BALANCEDNESS,
    OUT_A2A_SHARE,
    OUT_INTER_NODE_SHARE,
    OUT_A2A_BYTES,
    OUT_A2A_TIME,
    OUT_TRANSITIONS,
    OUT_EXPERT_MOVES,
    OUT_MIGRATION_BYTES,
    OUT_DEVICE_SHARE,
};

static const rs_metric_output placement_outputs[] = {
    [OUT_IMBALANCE] = {"imbalance_ratio",
                       "mean over batches of max_d load_d / mean_d load_d - 1, load_d = assignments served by device d "
                       "(TensorRT-LLM; layer=all: mean over layers)",
                       ROUTE_KEY, RS_AGG_MEAN, .label = "device imbalance ratio (max/mean - 1)"},
    [OUT_BALANCEDNESS] = {"balancedness",
                          "sum over batches (and layers) of mean_d load_d / sum of max_d load_d (vLLM EPLB; 1 = "
                          "balanced)",
                          ROUTE_KEY, RS_AGG_SELF, .label = "balancedness (mean/max device load)"},
    [OUT_A2A_SHARE] = {"a2a_share", "assignments served on another device than the token's / assignments", ROUTE_KEY,
                       RS_AGG_SELF, .label = "assignments crossing devices", .unit = "%", .unit_scale = 100},
    [OUT_INTER_NODE_SHARE] = {"inter_node_share", "assignments served on another node than the token's / assignments",
                              ROUTE_KEY, RS_AGG_SELF, .label = "assignments crossing nodes", .unit = "%",
                              .unit_scale = 100},
    [OUT_A2A_BYTES] = {"a2a_bytes",
                       "2 x hidden_size x bytes_per_element per cross-device assignment (dispatch + combine; "
                       "layer=all: summed)",
                       BYTES_KEY, RS_AGG_SUM, .label = "all-to-all bytes", .unit = "GB", .unit_scale = 1e-9},
    [OUT_A2A_TIME] = {"a2a_time_s",
                      "sum over batches of the slowest device's 2 bytes (max(sent, received) in the node / nvlink + "
                      "across nodes / net) + latency (layer=all: summed)",
                      TIME_KEY, RS_AGG_SUM, .label = "modelled all-to-all time", .unit = "s"},
    [OUT_TRANSITIONS] = {"cross_device_transitions",
                         "share of a token's assignments at layer l whose device serves none of its assignments at "
                         "l-1 (reported at l >= 1)",
                         ROUTE_KEY, RS_AGG_SELF, .label = "layer-to-layer device changes", .unit = "%",
                         .unit_scale = 100},
    [OUT_EXPERT_MOVES] = {"expert_moves", "slots whose expert changed, over all rebalances (layer=all: summed)",
                          PLAN_KEY, RS_AGG_SUM, .label = "expert moves"},
    [OUT_MIGRATION_BYTES] = {"migration_bytes", "expert_moves x expert_bytes (layer=all: summed)",
                             PLAN_KEY | P(PARAM_EXPERT_BYTES), RS_AGG_SUM, .label = "expert migration bytes",
                             .unit = "GB", .unit_scale = 1e-9},
    [OUT_DEVICE_SHARE] = {"device_share",
                          "load_d / sum_d load_d over the run (key device=d; per_device=1; layer=all: mean)",
                          ROUTE_KEY | P(PARAM_PER_DEVICE), RS_AGG_MEAN, .label = "share of the layer's assignments",
                          .unit = "%", .unit_scale = 100},
};

/* ------------------------------------------------------------ batches */

/* The open batch of global index b, opening a free slot if needed. */
static placement_batch *batch_slot(placement_acc *a, int64_t b)
{
    for (int i = 0; i < PLACEMENT_OPEN_BATCHES; i++)
        if (a->open[i].index == b)
            return &a->open[i];
    for (int i = 0; i < PLACEMENT_OPEN_BATCHES; i++)
        if (a->open[i].index < 0) {
            a->open[i].index = b;
            return &a->open[i];
        }
    return NULL; /* cannot happen: a contiguous range holds at most two partial batches */
}

/* Adds batch g's values to sums (and its device loads to device_load). */
static void batch_into(const placement_acc *a, const placement_batch *g, placement_sums *sums, int64_t *device_load)
{
    const int G = a->G;
    for (int l = 0; l < a->L; l++) {
        const int64_t *load = g->load + (size_t)l * (size_t)G;
        const int64_t *traffic = g->traffic + (size_t)l * (size_t)G * 4;
        int64_t total = 0, max = 0, cross = 0, far = 0;
        for (int d = 0; d < G; d++) {
            total += load[d];
            max = load[d] > max ? load[d] : max;
            cross += traffic[4 * d] + traffic[4 * d + 2];
            far += traffic[4 * d + 2];
            a->comm[d] = (rs_comm_traffic){(double)traffic[4 * d], (double)traffic[4 * d + 1],
                                           (double)traffic[4 * d + 2], (double)traffic[4 * d + 3]};
        }
        placement_sums *s = &sums[l];
        if (device_load)
            for (int d = 0; d < G; d++)
                device_load[(size_t)l * (size_t)G + (size_t)d] += load[d];
        if (total == 0)
            continue; /* no assignment at this layer: not a batch of it */
        s->assignments += total;
        s->cross_device += cross;
        s->cross_node += far;
        s->load_total += total;
        s->load_max += max;
        rs_xsum_add(&s->imbalance, (double)max * (double)G / (double)total - 1.0);
        rs_xsum_add(&s->seconds, rs_comm_batch_seconds(&a->model, a->comm, G));
    }
}

static void batch_clear(const placement_acc *a, placement_batch *g)
{
    g->index = -1;
    g->tokens = 0;
    memset(g->load, 0, (size_t)a->L * (size_t)a->G * sizeof *g->load);
    memset(g->traffic, 0, (size_t)a->L * (size_t)a->G * 4 * sizeof *g->traffic);
}

static void batch_close(placement_acc *a, placement_batch *g)
{
    batch_into(a, g, a->sums, a->device_load);
    batch_clear(a, g);
}

/* ------------------------------------------------------------ measuring */

/* Token t's kept assignments at layer l, each served by a device: loads and
 * traffic of batch g counted, the devices written to `devices` (-1 for
 * padding, dropped or not observed). Returns the devices as a bit set
 * when G <= 64 (else 0). */
static uint64_t serve_row(placement_acc *a, const int32_t *ids, int K, int l, int src, int64_t position,
                          placement_batch *g, int32_t *devices)
{
    const int G = a->G;
    const int32_t *device_of = a->dispatch.device_of + (size_t)l * (size_t)a->E;
    int64_t *load = g->load + (size_t)l * (size_t)G;
    int64_t *traffic = g->traffic + (size_t)l * (size_t)G * 4;
    const int32_t *node_of = a->node_of;
    const int32_t home_node = node_of[src];
    int64_t sent[2] = {0, 0}; /* within the node, across nodes: one store per row */
    uint64_t set = 0;
    for (int j = 0; j < K; j++) {
        const int32_t e = ids[j];
        if (e < 0) { /* padding, dropped, or a row not observed */
            devices[j] = -1;
            continue;
        }
        int32_t dv = device_of[e];
        if (dv < 0)
            dv = (int32_t)rs_dispatch_replica(&a->dispatch, -1 - dv, src, position + j, load);
        devices[j] = dv;
        set |= G <= 64 ? 1ull << dv : 0;
        load[dv]++;
        const int cross = dv != src, far = node_of[dv] != home_node;
        sent[far] += cross;
        traffic[4 * dv + 2 * far + 1] += cross; /* received */
    }
    traffic[4 * src] += sent[0];
    traffic[4 * src + 2] += sent[1];
    return set;
}

/* Tokens [t0, t1) of the chunk, all in one batch g: every layer's kept
 * assignments served (tokens in order at each layer, as dispatch=balanced
 * needs), and the hops from each layer to the next: an assignment at l
 * whose device serves none of the token's assignments at l - 1. */
static void measure_block(placement_acc *a, const rs_chunk *c, const rs_decisions *dec, int t0, int t1,
                          placement_batch *g)
{
    const int L = a->L, G = a->G, K = dec->kmax;
    int32_t *before = a->row_devices, *now = a->row_devices + K;
    for (int t = t0; t < t1; t++) {
        if (c->valid && c->valid[t] != 1)
            continue; /* skipped: not observed at any layer */
        const int64_t home = a->by_token ? c->t0 + t : c->first_seq + c->seq_of_token[t];
        const int src = (int)(home % G);
        const int64_t position = (c->t0 + t) % a->B * K; /* round_robin: slot 0's place in the batch's rows */
        uint64_t before_set = 0;
        int placed = 0; /* the token has a device at the layer before */
        for (int l = 0; l < L; l++) {
            const int32_t *ids = dec->ids + rs_decision_row(c, dec, t, l);
            const uint64_t set = serve_row(a, ids, K, l, src, position, g, now);
            if (placed) {
                int64_t base = 0, hops = 0;
                for (int j = 0; j < K; j++) {
                    if (now[j] < 0)
                        continue;
                    int stays;
                    if (G <= 64)
                        stays = (int)(before_set >> now[j] & 1);
                    else
                        for (int x = stays = 0; x < K; x++)
                            stays |= before[x] == now[j];
                    base++;
                    hops += !stays;
                }
                a->sums[l].hop_base += base;
                a->sums[l].hops += hops;
            }
            placed = 0;
            for (int j = 0; j < K; j++)
                placed |= now[j] >= 0;
            before_set = set;
            int32_t *swap = before;
            before = now;
            now = swap;
        }
    }
}

/* ------------------------------------------------------------ the family */

static void placement_update_layer(void *p, const rs_chunk *c, int layer, const rs_decisions *dec,
                                   const rs_metric_ref *ref)
{
    (void)p, (void)c, (void)layer, (void)dec, (void)ref; /* everything happens in update_chunk */
}

/* Entering batch b: a rebalance is due (history), or training ends (split). */
static void enter_batch(placement_acc *a, int64_t b)
{
    a->cur_batch = b;
    if (a->stats == PLACEMENT_STATS_HISTORY && b > 0 && b % a->rebalance_batches == 0)
        rs_placement_acc_replan(a, 1);
    if (a->stats == PLACEMENT_STATS_SPLIT && !a->planned && b * a->B >= a->train_tokens) {
        rs_placement_acc_replan(a, 0);
        a->planned = 1;
    }
}

static void placement_update_chunk(void *p, const rs_chunk *c, const rs_decisions *dec, const rs_metric_ref *ref)
{
    (void)ref;
    placement_acc *a = p;
    if (dec->kmax > a->K) {
        a->failed = 1; /* cannot happen: decisions rows are the router's kmax */
        return;
    }
    for (int t = 0; t < c->n && !a->failed;) {
        const int64_t g = c->t0 + t, b = g / a->B;
        if (b != a->cur_batch)
            enter_batch(a, b);
        int64_t end = (b + 1) * a->B - c->t0;
        end = end < c->n ? end : c->n;
        if (a->stats == PLACEMENT_STATS_SPLIT && g < a->train_tokens) {
            rs_placement_acc_count(a, c, dec, t, (int)end, a->stat_loads, a->stat_transitions);
        } else if (!a->failed) {
            placement_batch *batch = batch_slot(a, b);
            if (!batch) { /* cannot happen: chunks come in token order */
                a->failed = 1;
                return;
            }
            measure_block(a, c, dec, t, (int)end, batch);
            if (a->stats == PLACEMENT_STATS_HISTORY)
                rs_placement_acc_count(a, c, dec, t, (int)end, a->batch_loads, a->batch_transitions);
            batch->tokens += end - t;
            if (batch->tokens == a->B) {
                batch_close(a, batch);
                if (a->stats == PLACEMENT_STATS_HISTORY)
                    rs_placement_acc_push_history(a);
            }
        }
        t = (int)end;
    }
}

static int placement_merge(void *p, const void *q, rs_error *err)
{
    placement_acc *a = p;
    const placement_acc *b = q;
    RS_CHECK(a->L == b->L && a->G == b->G && a->B == b->B && a->stats == b->stats, err,
             "metric placement: merging unlike accumulators");
    RS_TRY(rs_placement_acc_mergeable(a, err));
    for (int l = 0; l < a->L; l++) {
        placement_sums *x = &a->sums[l];
        const placement_sums *y = &b->sums[l];
        x->assignments += y->assignments;
        x->cross_device += y->cross_device;
        x->cross_node += y->cross_node;
        x->load_total += y->load_total;
        x->load_max += y->load_max;
        x->hops += y->hops;
        x->hop_base += y->hop_base;
        x->moves += y->moves;
        rs_xsum_merge(&x->imbalance, &y->imbalance);
        rs_xsum_merge(&x->seconds, &y->seconds);
    }
    for (size_t i = 0; i < (size_t)a->L * (size_t)a->G; i++)
        a->device_load[i] += b->device_load[i];
    /* a batch that spans the boundary: its two parts' loads and traffic add up */
    const size_t cells = (size_t)a->L * (size_t)a->G;
    for (int i = 0; i < PLACEMENT_OPEN_BATCHES; i++) {
        const placement_batch *src = &b->open[i];
        if (src->index < 0)
            continue;
        placement_batch *dst = batch_slot(a, src->index);
        RS_CHECK(dst, err, "metric placement: merged ranges are not contiguous");
        dst->tokens += src->tokens;
        for (size_t x = 0; x < cells; x++)
            dst->load[x] += src->load[x];
        for (size_t x = 0; x < 4 * cells; x++)
            dst->traffic[x] += src->traffic[x];
        if (dst->tokens == a->B)
            batch_close(a, dst);
    }
    return 0;
}

/* A partial batch counts as a batch of its own, as the trace's last one does. */
static void placement_seal(void *p)
{
    placement_acc *a = p;
    for (int i = 0; i < PLACEMENT_OPEN_BATCHES; i++)
        if (a->open[i].index >= 0 && a->open[i].tokens > 0)
            batch_close(a, &a->open[i]);
}

static double ratio(int64_t num, int64_t den) { return den > 0 ? (double)num / (double)den : NAN; }

static void placement_finalize(const void *p, rs_metric_sink *sink)
{
    const placement_acc *a = p;
    const int L = a->L, G = a->G;
    placement_sums *sums = malloc((size_t)L * sizeof *sums);
    int64_t *device_load = a->per_device ? malloc((size_t)L * (size_t)G * sizeof *device_load) : NULL;
    if (!sums || (a->per_device && !device_load)) {
        free(sums);
        free(device_load);
        return;
    }
    memcpy(sums, a->sums, (size_t)L * sizeof *sums);
    if (device_load)
        memcpy(device_load, a->device_load, (size_t)L * (size_t)G * sizeof *device_load);
    /* the trace's last batch may be short; it still counts */
    for (int i = 0; i < PLACEMENT_OPEN_BATCHES; i++)
        if (a->open[i].index >= 0 && a->open[i].tokens > 0)
            batch_into(a, &a->open[i], sums, device_load);
    const double lost = a->failed ? NAN : 0.0; /* a replan that failed (out of memory) voids the run */
    const double activation = 2.0 * rs_comm_activation_bytes(&a->model);
    placement_sums all = {0};
    for (int l = 0; l < L; l++) {
        const placement_sums *s = &sums[l];
        all.assignments += s->assignments;
        all.cross_device += s->cross_device;
        all.cross_node += s->cross_node;
        all.load_total += s->load_total;
        all.load_max += s->load_max;
        all.hops += s->hops;
        all.hop_base += s->hop_base;
        rs_metric_emit(sink, OUT_IMBALANCE, l, NULL, rs_xsum_mean(&s->imbalance) + lost);
        rs_metric_emit(sink, OUT_BALANCEDNESS, l, NULL,
                       s->load_max > 0 ? (double)s->load_total / ((double)G * (double)s->load_max) + lost : NAN);
        rs_metric_emit(sink, OUT_A2A_SHARE, l, NULL, ratio(s->cross_device, s->assignments) + lost);
        rs_metric_emit(sink, OUT_INTER_NODE_SHARE, l, NULL, ratio(s->cross_node, s->assignments) + lost);
        rs_metric_emit(sink, OUT_A2A_BYTES, l, NULL, (double)s->cross_device * activation + lost);
        rs_metric_emit(sink, OUT_A2A_TIME, l, NULL, rs_xsum_value(&s->seconds) + lost);
        if (l > 0)
            rs_metric_emit(sink, OUT_TRANSITIONS, l, NULL, ratio(s->hops, s->hop_base) + lost);
        rs_metric_emit(sink, OUT_EXPERT_MOVES, l, NULL, (double)s->moves + lost);
        rs_metric_emit(sink, OUT_MIGRATION_BYTES, l, NULL, (double)s->moves * a->expert_bytes + lost);
        if (!device_load)
            continue;
        int64_t total = 0;
        for (int d = 0; d < G; d++)
            total += device_load[(size_t)l * (size_t)G + (size_t)d];
        for (int d = 0; d < G; d++) {
            char key[32];
            snprintf(key, sizeof key, "device=%d", d);
            rs_metric_emit(sink, OUT_DEVICE_SHARE, l, key,
                           ratio(device_load[(size_t)l * (size_t)G + (size_t)d], total) + lost);
        }
    }
    rs_metric_emit(sink, OUT_BALANCEDNESS, -1, NULL,
                   all.load_max > 0 ? (double)all.load_total / ((double)G * (double)all.load_max) + lost : NAN);
    rs_metric_emit(sink, OUT_A2A_SHARE, -1, NULL, ratio(all.cross_device, all.assignments) + lost);
    rs_metric_emit(sink, OUT_INTER_NODE_SHARE, -1, NULL, ratio(all.cross_node, all.assignments) + lost);
    if (L > 1)
        rs_metric_emit(sink, OUT_TRANSITIONS, -1, NULL, ratio(all.hops, all.hop_base) + lost);
    free(sums);
    free(device_load);
}

static const rs_metric_type placement_type = {
    .name = "placement",
    .summary = "expert parallelism under a placement policy (contiguous, round_robin, eplb, affinity, search, file): "
               "device imbalance, balancedness, all-to-all shares, bytes and modelled time, layer-to-layer device "
               "changes, expert moves of rebalancing",
    .source = "imbalance ratio: TensorRT-LLM examples/wide_ep/ep_load_balancer/report_load_statistics.py; "
              "balancedness, window/step_interval: vLLM vllm/distributed/eplb/eplb_state.py; dispatch: SGLang "
              "srt/eplb/expert_location.py (static), vLLM fused_moe (position mod replicas); placements: "
              "deepseek-ai/EPLB; layer affinity: ExFlow arXiv:2401.08383",
    .params = rs_placement_metric_params,
    .num_params = PLACEMENT_NUM_PARAMS,
    .outputs = placement_outputs,
    .num_outputs = sizeof placement_outputs / sizeof placement_outputs[0],
    .needs = 0, /* decisions only */
    .flags = RS_METRIC_SEQUENTIAL,
    .create = rs_placement_acc_create,
    .update_layer = placement_update_layer,
    .update_chunk = placement_update_chunk,
    .merge = placement_merge,
    .seal = placement_seal,
    .finalize = placement_finalize,
    .destroy = rs_placement_acc_destroy,
    .compact = rs_placement_acc_compact,
    .checkpoint = rs_placement_acc_checkpoint,
    .needs_counts = rs_placement_acc_needs_counts,
};

const rs_metric_type *const rs_metric_placement = &placement_type;
