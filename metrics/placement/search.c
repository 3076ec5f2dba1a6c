/* search: eplb's plan improved by local search on the modelled all-to-all
 * time (modelled_cost.h), layer by layer, under a load-balance bound.
 *
 * Each layer starts from eplb's plan. A move either swaps the experts of
 * two slots on different devices (each copy keeps its replica rank) or
 * gives a slot of an expert with at least two replicas to another expert
 * (the later replicas of the first move down one rank; the new copy takes
 * the last rank of the second). A move is kept only when it strictly
 * lowers the layer's slowest device time and keeps every device's expected
 * served load within eplb's largest x (1 + balance_slack), both computed
 * afresh from the whole plan (so the cost never exceeds eplb's). Each step
 * tries, from a seeded starting point, every move that touches the
 * slowest device (swaps of its slots, its slots given to other experts,
 * other slots given to its experts); a move is first priced incrementally
 * (only the two experts it changes) and recomputed in full when that
 * promises a gain. When none improves, up to 4 S random moves (swaps with
 * a slot of the slowest device's node, gifts anywhere) are tried; when
 * they fail too, or `iterations` moves were priced, the layer is done.
 * Layers are independent (per-layer random streams), so the plan does not
 * depend on the thread count. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/placement/modelled_cost.h"
#include "metrics/placement/placement.h"
#include "routesim/rng.h"

enum { DEFAULT_ITERATIONS = 20000 };

enum { MOVE_SWAP, MOVE_GIVE };

/* MOVE_SWAP: the experts of slots i and j trade places; MOVE_GIVE: slot i
 * goes to expert j. */
typedef struct move {
    int kind, i, j;
} move;

typedef struct layer_search {
    const rs_placement_layout *lay;
    const rs_comm_model *m;
    const double *w;
    int S, E, G, per_device, stride;
    /* the plan: one block, copied whole to undo a move */
    int32_t *plan, *saved_plan;
    int32_t *slot_expert, *slot_rank; /* [S] */
    int32_t *count;                   /* [E] replicas */
    int32_t *devices;                 /* [E][stride] device of each replica, by rank */
    /* expected traffic of the plan, of a priced move, and saved */
    rs_comm_traffic *traffic, *trial, *saved_traffic;
    double *served, *trial_served, *saved_served;    /* expected assignments served per device */
    double *planned, *trial_planned, *saved_planned; /* sum of w_e / c_e over the device's copies */
    double *device_seconds, *saved_seconds;
    double slowest;                /* largest device time, latency excluded */
    double served_cap, planned_cap; /* eplb's largest of each x (1 + balance_slack) */
    int32_t *new_a, *new_b;
    move *moves;
    int64_t priced, budget;
} layer_search;

static size_t plan_cells(const layer_search *s) { return 2 * (size_t)s->S + (size_t)s->E * (1 + (size_t)s->stride); }

static void search_free(layer_search *s)
{
    free(s->plan);
    free(s->traffic);
    free(s->served);
    free(s->new_a);
    free(s->moves);
}

static int search_alloc(layer_search *s, const rs_placement_layout *lay, const rs_comm_model *m)
{
    memset(s, 0, sizeof *s);
    s->lay = lay;
    s->m = m;
    s->S = lay->S;
    s->E = lay->E;
    s->G = lay->G;
    s->per_device = lay->S / lay->G;
    s->stride = lay->S - lay->E + 1; /* the most replicas an expert can get */
    const size_t cells = plan_cells(s), G = (size_t)s->G;
    s->plan = malloc(2 * cells * sizeof *s->plan);
    s->traffic = malloc(3 * G * sizeof *s->traffic);
    s->served = malloc(8 * G * sizeof *s->served);
    s->new_a = malloc(2 * ((size_t)s->stride + 1) * sizeof *s->new_a);
    const size_t max_moves = (size_t)s->per_device * (2 * (size_t)s->S + (size_t)s->E);
    s->moves = malloc(max_moves * sizeof *s->moves);
    if (!s->plan || !s->traffic || !s->served || !s->new_a || !s->moves) {
        search_free(s);
        return -1;
    }
    s->saved_plan = s->plan + cells;
    s->slot_expert = s->plan;
    s->slot_rank = s->slot_expert + s->S;
    s->count = s->slot_rank + s->S;
    s->devices = s->count + s->E;
    s->trial = s->traffic + G;
    s->saved_traffic = s->trial + G;
    s->trial_served = s->served + G;
    s->saved_served = s->trial_served + G;
    s->planned = s->saved_served + G;
    s->trial_planned = s->planned + G;
    s->saved_planned = s->trial_planned + G;
    s->device_seconds = s->saved_planned + G;
    s->saved_seconds = s->device_seconds + G;
    s->new_b = s->new_a + s->stride + 1;
    return 0;
}

static int device_of(const layer_search *s, int slot) { return slot / s->per_device; }

static const int32_t *devices_of(const layer_search *s, int e) { return s->devices + (size_t)e * (size_t)s->stride; }

static int has_copy_on(const layer_search *s, int e, int device)
{
    const int32_t *d = devices_of(s, e);
    for (int r = 0; r < s->count[e]; r++)
        if (d[r] == device)
            return 1;
    return 0;
}

/* Adds sign x an expert's copies (w / count each) to the planned loads. */
static void add_planned(double w, const int32_t *devices, int count, double sign, double *planned)
{
    for (int r = 0; r < count; r++)
        planned[devices[r]] += sign * w / count;
}

/* Traffic, loads and device times of the plan, from zero. */
static void recompute(layer_search *s)
{
    rs_expected_layer_traffic(s->lay, s->w, s->devices, s->count, s->stride, s->traffic, s->served);
    memset(s->planned, 0, (size_t)s->G * sizeof *s->planned);
    for (int e = 0; e < s->E; e++)
        add_planned(s->w[e], devices_of(s, e), s->count[e], 1.0, s->planned);
    s->slowest = 0.0;
    for (int d = 0; d < s->G; d++) {
        s->device_seconds[d] = rs_comm_device_seconds(s->m, &s->traffic[d]);
        s->slowest = s->device_seconds[d] > s->slowest ? s->device_seconds[d] : s->slowest;
    }
}

static double largest(const double *x, int n)
{
    double max = 0.0;
    for (int i = 0; i < n; i++)
        max = x[i] > max ? x[i] : max;
    return max;
}

/* The replica devices of the two experts a move changes, after it. */
static void moved_devices(const layer_search *s, const move *mv, int *a, int *b, int *count_a, int *count_b)
{
    const int i = mv->i;
    *a = s->slot_expert[i];
    memcpy(s->new_a, devices_of(s, *a), (size_t)s->count[*a] * sizeof *s->new_a);
    if (mv->kind == MOVE_SWAP) {
        *b = s->slot_expert[mv->j];
        memcpy(s->new_b, devices_of(s, *b), (size_t)s->count[*b] * sizeof *s->new_b);
        s->new_a[s->slot_rank[i]] = device_of(s, mv->j);
        s->new_b[s->slot_rank[mv->j]] = device_of(s, i);
        *count_a = s->count[*a];
        *count_b = s->count[*b];
        return;
    }
    *b = mv->j;
    *count_a = s->count[*a] - 1;
    memmove(s->new_a + s->slot_rank[i], s->new_a + s->slot_rank[i] + 1,
            (size_t)(*count_a - s->slot_rank[i]) * sizeof *s->new_a);
    memcpy(s->new_b, devices_of(s, *b), (size_t)s->count[*b] * sizeof *s->new_b);
    s->new_b[s->count[*b]] = device_of(s, i);
    *count_b = s->count[*b] + 1;
}

/* Whether the move promises a lower slowest device time within the load
 * bound, priced by updating the current traffic for its two experts. */
static int promising(layer_search *s, const move *mv, int bottleneck)
{
    s->priced++;
    int a, b, count_a, count_b;
    moved_devices(s, mv, &a, &b, &count_a, &count_b);
    memcpy(s->trial, s->traffic, (size_t)s->G * sizeof *s->trial);
    memcpy(s->trial_served, s->served, (size_t)s->G * sizeof *s->trial_served);
    rs_expected_expert_traffic(s->lay, s->w[a], devices_of(s, a), s->count[a], -1.0, s->trial, s->trial_served);
    rs_expected_expert_traffic(s->lay, s->w[a], s->new_a, count_a, 1.0, s->trial, s->trial_served);
    rs_expected_expert_traffic(s->lay, s->w[b], devices_of(s, b), s->count[b], -1.0, s->trial, s->trial_served);
    rs_expected_expert_traffic(s->lay, s->w[b], s->new_b, count_b, 1.0, s->trial, s->trial_served);
    if (rs_comm_device_seconds(s->m, &s->trial[bottleneck]) >= s->slowest)
        return 0;
    for (int d = 0; d < s->G; d++)
        if (s->trial_served[d] > s->served_cap || rs_comm_device_seconds(s->m, &s->trial[d]) >= s->slowest)
            return 0;
    memcpy(s->trial_planned, s->planned, (size_t)s->G * sizeof *s->trial_planned);
    add_planned(s->w[a], devices_of(s, a), s->count[a], -1.0, s->trial_planned);
    add_planned(s->w[a], s->new_a, count_a, 1.0, s->trial_planned);
    add_planned(s->w[b], devices_of(s, b), s->count[b], -1.0, s->trial_planned);
    add_planned(s->w[b], s->new_b, count_b, 1.0, s->trial_planned);
    return largest(s->trial_planned, s->G) <= s->planned_cap;
}

static void apply(layer_search *s, const move *mv)
{
    int a, b, count_a, count_b;
    moved_devices(s, mv, &a, &b, &count_a, &count_b);
    const int i = mv->i;
    memcpy(s->devices + (size_t)a * (size_t)s->stride, s->new_a, (size_t)count_a * sizeof *s->new_a);
    memcpy(s->devices + (size_t)b * (size_t)s->stride, s->new_b, (size_t)count_b * sizeof *s->new_b);
    if (mv->kind == MOVE_SWAP) {
        const int j = mv->j, rank_i = s->slot_rank[i];
        s->slot_expert[i] = b;
        s->slot_rank[i] = s->slot_rank[j];
        s->slot_expert[j] = a;
        s->slot_rank[j] = rank_i;
        return;
    }
    for (int t = 0; t < s->S; t++)
        if (s->slot_expert[t] == a && s->slot_rank[t] > s->slot_rank[i])
            s->slot_rank[t]--;
    s->count[a] = count_a;
    s->slot_expert[i] = b;
    s->slot_rank[i] = s->count[b];
    s->count[b] = count_b;
}

/* Applies a promising move and keeps it when the plan recomputed from zero
 * is strictly faster and within the load bound; otherwise undoes it. */
static int try_move(layer_search *s, const move *mv)
{
    const size_t G = (size_t)s->G;
    const double before = s->slowest;
    memcpy(s->saved_plan, s->plan, plan_cells(s) * sizeof *s->plan);
    memcpy(s->saved_traffic, s->traffic, G * sizeof *s->traffic);
    memcpy(s->saved_served, s->served, G * sizeof *s->served);
    memcpy(s->saved_planned, s->planned, G * sizeof *s->planned);
    memcpy(s->saved_seconds, s->device_seconds, G * sizeof *s->device_seconds);
    apply(s, mv);
    recompute(s);
    if (s->slowest < before && largest(s->served, s->G) <= s->served_cap &&
        largest(s->planned, s->G) <= s->planned_cap)
        return 1;
    memcpy(s->plan, s->saved_plan, plan_cells(s) * sizeof *s->plan);
    memcpy(s->traffic, s->saved_traffic, G * sizeof *s->traffic);
    memcpy(s->served, s->saved_served, G * sizeof *s->served);
    memcpy(s->planned, s->saved_planned, G * sizeof *s->planned);
    memcpy(s->device_seconds, s->saved_seconds, G * sizeof *s->device_seconds);
    s->slowest = before;
    return 0;
}

static int slowest_device(const layer_search *s)
{
    int best = 0;
    for (int d = 1; d < s->G; d++)
        if (s->device_seconds[d] > s->device_seconds[best])
            best = d;
    return best;
}

/* Every move touching device b: swaps of its slots with slots elsewhere,
 * its replicated slots given to other experts, replicated slots elsewhere
 * given to its experts. Moves that would put two copies of an expert on
 * one device are left out. */
static int moves_of_device(layer_search *s, int b)
{
    int n = 0;
    const int first = b * s->per_device, last = first + s->per_device;
    for (int i = first; i < last; i++) {
        const int a = s->slot_expert[i];
        for (int j = 0; j < s->S; j++) {
            const int other = s->slot_expert[j];
            if (j >= first && j < last)
                continue;
            if (other != a && !has_copy_on(s, a, device_of(s, j)) && !has_copy_on(s, other, b))
                s->moves[n++] = (move){MOVE_SWAP, i, j};
        }
        if (s->count[a] >= 2)
            for (int f = 0; f < s->E; f++)
                if (f != a && !has_copy_on(s, f, b))
                    s->moves[n++] = (move){MOVE_GIVE, i, f};
    }
    for (int i = 0; i < s->S; i++) {
        const int a = s->slot_expert[i], d = device_of(s, i);
        if (d == b || s->count[a] < 2)
            continue;
        for (int t = first; t < last; t++) {
            const int f = s->slot_expert[t];
            int seen = 0; /* each expert of b once */
            for (int u = first; u < t; u++)
                seen |= s->slot_expert[u] == f;
            if (!seen && f != a && !has_copy_on(s, f, d))
                s->moves[n++] = (move){MOVE_GIVE, i, f};
        }
    }
    return n;
}

/* A random move: a swap with a slot of b's node, or (with replicas) a gift
 * of any replicated slot to any expert; 0 when the draw is not a move. */
static int random_move(layer_search *s, rs_rng *rng, int b, move *mv)
{
    const int per_node = s->S / s->lay->N, node = b / (s->G / s->lay->N);
    if (s->S == s->E || rs_rng_below(rng, 2) == 0) {
        const int i = node * per_node + (int)rs_rng_below(rng, (uint64_t)per_node);
        const int j = (int)rs_rng_below(rng, (uint64_t)s->S);
        const int a = s->slot_expert[i], other = s->slot_expert[j];
        *mv = (move){MOVE_SWAP, i, j};
        return device_of(s, i) != device_of(s, j) && a != other && !has_copy_on(s, a, device_of(s, j)) &&
               !has_copy_on(s, other, device_of(s, i));
    }
    const int i = (int)rs_rng_below(rng, (uint64_t)s->S), f = (int)rs_rng_below(rng, (uint64_t)s->E);
    *mv = (move){MOVE_GIVE, i, f};
    return s->count[s->slot_expert[i]] >= 2 && f != s->slot_expert[i] && !has_copy_on(s, f, device_of(s, i));
}

/* One step: the first move, in seeded order, that improves the plan. */
static int improve_once(layer_search *s, rs_rng *rng)
{
    const int b = slowest_device(s);
    const int n = moves_of_device(s, b);
    const int start = n > 0 ? (int)rs_rng_below(rng, (uint64_t)n) : 0;
    for (int k = 0; k < n && s->priced < s->budget; k++) {
        const move *mv = &s->moves[(start + k) % n];
        if (promising(s, mv, b) && try_move(s, mv))
            return 1;
    }
    for (int k = 0; k < 4 * s->S && s->priced < s->budget; k++) {
        move mv;
        if (random_move(s, rng, b, &mv) && promising(s, &mv, b) && try_move(s, &mv))
            return 1;
    }
    return 0;
}

/* Loads the layer's eplb plan, searches, writes the result back. */
static void search_layer(layer_search *s, rs_placement *out, int l, const double *loads,
                         const rs_placement_options *options)
{
    const int S = s->S, E = s->E, X = out->maxcnt;
    int32_t *phy2log = out->phy2log + (size_t)l * S, *rank = out->rank + (size_t)l * S;
    s->w = loads + (size_t)l * E;
    memcpy(s->slot_expert, phy2log, (size_t)S * sizeof *phy2log);
    memcpy(s->slot_rank, rank, (size_t)S * sizeof *rank);
    memcpy(s->count, out->logcnt + (size_t)l * E, (size_t)E * sizeof *s->count);
    for (int e = 0; e < E; e++)
        for (int r = 0; r < s->count[e]; r++)
            s->devices[(size_t)e * (size_t)s->stride + (size_t)r] =
                device_of(s, out->log2phy[((size_t)l * E + (size_t)e) * (size_t)X + (size_t)r]);
    recompute(s);
    s->served_cap = largest(s->served, s->G) * (1.0 + options->balance_slack);
    s->planned_cap = largest(s->planned, s->G) * (1.0 + options->balance_slack);
    s->priced = 0;
    s->budget = options->iterations > 0 ? options->iterations : DEFAULT_ITERATIONS;
    rs_rng rng = rs_rng_keyed(options->seed, (uint64_t)l, 0);
    if (s->slowest > 0.0)
        while (s->priced < s->budget && improve_once(s, &rng))
            ;
    memcpy(phy2log, s->slot_expert, (size_t)S * sizeof *phy2log);
    memcpy(rank, s->slot_rank, (size_t)S * sizeof *rank);
}

static int search_plan(rs_placement *out, const rs_placement_stats *stats, const rs_placement_options *options,
                       rs_error *err)
{
    RS_CHECK(options->balance_slack >= 0 && isfinite(options->balance_slack), err,
             "placement search: balance_slack must be a finite number >= 0 (got %g)", options->balance_slack);
    RS_CHECK(options->iterations >= 0, err, "placement search: iterations must be >= 0 (got %lld)",
             (long long)options->iterations);
    const rs_comm_model *m = options->model ? options->model : &rs_comm_model_defaults;
    RS_TRY(rs_comm_model_check(m, "placement search", err));
    const rs_placement_policy *eplb = rs_placement_policy_find("eplb");
    RS_CHECK(eplb, err, "placement search: the eplb policy is not registered");
    RS_TRY(eplb->plan(out, stats, options, err));
    int failed = 0;
#pragma omp parallel reduction(| : failed)
    {
        layer_search s;
        const int ok = search_alloc(&s, &out->layout, m) == 0;
        failed |= !ok;
#pragma omp for schedule(dynamic, 1)
        for (int l = 0; l < out->L; l++) {
            if (!ok)
                continue;
            search_layer(&s, out, l, stats->loads, options);
        }
        if (ok)
            search_free(&s);
    }
    RS_CHECK(!failed, err, "placement search: out of memory");
    return rs_placement_finish(out, err);
}

static const rs_placement_policy search = {
    .name = "search",
    .summary = "eplb's plan improved by local search on the modelled all-to-all time, loads within eplb's",
    .definition = "per layer from eplb: swap two slots' experts between devices, or give a slot of an expert with "
                  ">= 2 replicas to another expert; keep a move only when it strictly lowers the slowest device's "
                  "modelled time (expected traffic of tokens spread evenly over the devices, dispatch local, "
                  "comm model of the placement metric) and keeps every device's expected served load and planned "
                  "load (sum of w_e / c_e) <= eplb's largest x (1 + balance_slack); moves of the slowest device "
                  "first, from a seeded start, then "
                  "random ones; at most `iterations` priced moves per layer (0: 20000)",
    .source = "routesim; starts from deepseek-ai/EPLB (eplb); cost: the placement metric's all-to-all model",
    .needs = RS_PLACEMENT_NEEDS_LOADS,
    .plan = search_plan,
};

const rs_placement_policy *const rs_placement_policy_search = &search;
