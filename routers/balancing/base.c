/* base: BASE layers' balanced assignment. Per token group of m tokens each
 * token gets one expert, each expert floor(m / E) or ceil(m / E) tokens
 * (exactly m mod E experts take the extra one; which ones is part of the
 * optimisation), maximising the sum of the chosen logits. w = sigmoid(z_te),
 * the gate BASE mixes the expert output with. Not causal.
 *
 * Solved exactly as a min-cost flow by successive shortest paths: tokens are
 * added in group order; each addition runs Dijkstra with Johnson potentials
 * over the experts, an "extra slot" node X and the sink. Moving token s from
 * expert a to b costs z_sa - z_sb, so the edge a -> b costs the least such
 * difference over a's tokens (kept per pair, rescanned when its token
 * leaves). Ties: nodes pop by (distance, index), relaxations are strict, the
 * cheapest move on a pair goes to the earlier token; the result is one
 * optimal assignment, deterministic.
 *
 * fairseq's balanced_assignment (libbase, an auction with epsilon = range/50
 * and a 100-round cap) approximates the same optimum and needs E to divide m;
 * routers.md asks for an exact solver. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "routers/common/balance_util.h"
#include "routesim/router.h"
#include "routesim/vector.h"

/* Working space of one layer being routed (a slot, see balance_util.h).
 * The solver's hot loops run over rows of E doubles, 64-byte aligned. */
typedef struct base_scratch {
    /* per group, grown in prepare_chunk */
    int32_t *token, *expert_of, *slot_of, *members;
    const float **logits;
    size_t capacity[5];
    /* [E][E]: cheapest move a -> b over a's tokens and the token making it;
     * +inf and -1 while a has no token (a relaxation over it never wins) */
    double *move_cost;
    int32_t *move_token;
    /* nodes 0..E-1 experts, E the extra-slot node, E+1 the sink */
    double *potential, *dist;
    /* [E]: tentative distance of each expert the search has not popped,
     * NaN once popped (no comparison with NaN holds: never relaxed again,
     * never the minimum). A relaxation pass writes the spare arrays, which
     * then swap with the current ones: whole rows stored, no masked stores. */
    double *open_dist, *open_spare;
    int32_t *pred, *pred_spare; /* [E+2] */
    int32_t *pred_token, *count, *rescan;
    uint8_t *done;
} base_scratch;

typedef struct base_state {
    int L, E;
    rs_group group;
    rs_balance_slots slots;
    base_scratch *scratch; /* [slots.count] */
} base_state;

/* The group being assigned: F = floor(m / E), r = m mod E. */
typedef struct assignment {
    base_scratch *x;
    int E, floor_load, extras, slots; /* slots = member room per expert */
} assignment;

static const rs_param_def base_params[] = {
    RS_BALANCE_GROUP_PARAM("batch"),
};

/* count elements of elem_size bytes from a 64-byte boundary (an AVX-512 vector). */
static void *aligned_array(size_t count, size_t elem_size)
{
    size_t bytes = (count * elem_size + 63) / 64 * 64;
    return aligned_alloc(64, bytes ? bytes : 64);
}

static void base_destroy(void *state)
{
    base_state *s = state;
    if (!s)
        return;
    for (int i = 0; s->scratch && i < s->slots.count; i++) {
        base_scratch *x = &s->scratch[i];
        free(x->token);
        free(x->expert_of);
        free(x->slot_of);
        free(x->members);
        free(x->logits);
        free(x->move_cost);
        free(x->move_token);
        free(x->potential);
        free(x->dist);
        free(x->open_dist);
        free(x->open_spare);
        free(x->pred_spare);
        free(x->rescan);
        free(x->pred);
        free(x->pred_token);
        free(x->count);
        free(x->done);
    }
    free(s->scratch);
    rs_balance_slots_free(&s->slots);
    free(s);
}

static int base_create(void **state, rs_router_shape *shape, const rs_params *params, const rs_router_setup *setup,
                       rs_error *err)
{
    const rs_trace_info *tr = setup->trace;
    base_state *s = calloc(1, sizeof *s);
    RS_CHECK(s, err, "router base: out of memory");
    s->group = rs_balance_group_param(params);
    s->L = tr->num_layers;
    s->E = tr->num_experts;
    int ok = rs_balance_slots_init(&s->slots, s->L) == 0 &&
             (s->scratch = calloc((size_t)s->slots.count, sizeof *s->scratch)) != NULL;
    for (int i = 0; ok && i < s->slots.count; i++) {
        base_scratch *x = &s->scratch[i];
        size_t E = (size_t)s->E, nodes = E + 2;
        x->move_cost = aligned_array(E * E, sizeof *x->move_cost);
        x->move_token = aligned_array(E * E, sizeof *x->move_token);
        x->potential = aligned_array(nodes, sizeof *x->potential);
        x->dist = aligned_array(nodes, sizeof *x->dist);
        x->open_dist = aligned_array(E, sizeof *x->open_dist);
        x->open_spare = aligned_array(E, sizeof *x->open_spare);
        x->pred = aligned_array(nodes, sizeof *x->pred);
        x->pred_spare = aligned_array(nodes, sizeof *x->pred_spare);
        x->pred_token = aligned_array(nodes, sizeof *x->pred_token);
        x->count = aligned_array(E, sizeof *x->count);
        x->rescan = aligned_array(E, sizeof *x->rescan);
        x->done = aligned_array(nodes, sizeof *x->done);
        ok = x->move_cost && x->move_token && x->potential && x->dist && x->open_dist && x->open_spare &&
             x->pred && x->pred_spare && x->pred_token && x->count && x->rescan && x->done;
    }
    if (!ok) {
        base_destroy(s);
        return rs_fail(err, "router base: out of memory");
    }
    shape->kmax = 1;
    shape->scoring = RS_SCORING_SIGMOID; /* its gate */
    shape->group = s->group;
    *state = s;
    return 0;
}

static int base_prepare_chunk(void *state, const rs_chunk *c, rs_error *err)
{
    base_state *s = state;
    size_t n = (size_t)rs_balance_largest_group(c, s->group);
    for (int i = 0; i < s->slots.count; i++) {
        base_scratch *x = &s->scratch[i];
        if (rs_balance_reserve(&x->token, &x->capacity[0], n, sizeof *x->token) ||
            rs_balance_reserve(&x->expert_of, &x->capacity[1], n, sizeof *x->expert_of) ||
            rs_balance_reserve(&x->slot_of, &x->capacity[2], n, sizeof *x->slot_of) ||
            rs_balance_reserve(&x->members, &x->capacity[3], n + (size_t)s->E, sizeof *x->members) ||
            rs_balance_reserve(&x->logits, &x->capacity[4], n, sizeof *x->logits))
            return rs_fail(err, "router base: out of memory for a group of %zu tokens", n);
    }
    return 0;
}

/* The solver's steps are inlined into assign_group, whose vector clones
 * (RS_VECTOR_CLONES) then hold their loops at each ISA level. */
#define SOLVER_STEP __attribute__((always_inline)) static inline

/* Offers token j (at expert a, logits z) as the cheapest move a -> b for
 * every b: it wins where its cost is lower, or equal with j earlier. One
 * blend per b; the pair a -> a keeps +inf. */
SOLVER_STEP void offer_row(const assignment *g, int j, int a, const float *z)
{
    base_scratch *x = g->x;
    const int E = g->E;
    double *cost_row = x->move_cost + (size_t)a * (size_t)E;
    int32_t *token_row = x->move_token + (size_t)a * (size_t)E;
    const double za = (double)z[a];
#pragma omp simd
    for (int b = 0; b < E; b++) {
        double cost = za - (double)z[b];
        double held = cost_row[b];
        int wins = b != a && (cost < held || (cost == held && j < token_row[b]));
        cost_row[b] = wins ? cost : held;
        token_row[b] = wins ? j : token_row[b];
    }
}

/* Offers token j (at expert a) for the one pair a -> b. */
SOLVER_STEP void offer_move(const assignment *g, int j, int a, int b)
{
    base_scratch *x = g->x;
    size_t pair = (size_t)a * (size_t)g->E + (size_t)b;
    double cost = (double)x->logits[j][a] - (double)x->logits[j][b];
    if (cost < x->move_cost[pair] || (cost == x->move_cost[pair] && j < x->move_token[pair])) {
        x->move_cost[pair] = cost;
        x->move_token[pair] = j;
    }
}

SOLVER_STEP void add_token(const assignment *g, int j, int a)
{
    base_scratch *x = g->x;
    x->members[a * g->slots + x->count[a]] = j;
    x->slot_of[j] = x->count[a]++;
    x->expert_of[j] = a;
    offer_row(g, j, a, x->logits[j]);
}

/* Members up to which a removal re-offers every member on every pair (a few
 * vector passes) instead of rescanning only the pairs the removed token held. */
#define REOFFER_ALL_MAX 4

SOLVER_STEP void remove_token(const assignment *g, int j, int a)
{
    base_scratch *x = g->x;
    const int E = g->E;
    int32_t *list = x->members + a * g->slots;
    int last = list[--x->count[a]];
    list[x->slot_of[j]] = last;
    x->slot_of[last] = x->slot_of[j];
    double *cost_row = x->move_cost + (size_t)a * (size_t)E;
    int32_t *token_row = x->move_token + (size_t)a * (size_t)E;
    if (x->count[a] <= REOFFER_ALL_MAX) {
        /* Pairs j held start empty; each pair then holds the least (cost,
         * token) over a's members, as before, so re-offering a member on a
         * pair it did not lose to j changes nothing. */
#pragma omp simd
        for (int b = 0; b < E; b++) {
            int held_by_j = token_row[b] == j;
            cost_row[b] = held_by_j ? INFINITY : cost_row[b];
            token_row[b] = held_by_j ? -1 : token_row[b];
        }
        for (int i = 0; i < x->count[a]; i++)
            offer_row(g, list[i], a, x->logits[list[i]]);
        return;
    }
    int n = 0;
    for (int b = 0; b < E; b++)
        if (token_row[b] == j)
            x->rescan[n++] = b;
    for (int r = 0; r < n; r++) {
        int b = x->rescan[r];
        cost_row[b] = INFINITY; /* j made this pair's cheapest move: rescan a */
        token_row[b] = -1;
        for (int i = 0; i < x->count[a]; i++)
            offer_move(g, list[i], a, b);
    }
}

/* The first expert whose open distance equals least (NaN never does). */
SOLVER_STEP int first_at(const double *open_dist, int E, double least)
{
    int first = E;
#pragma omp simd reduction(min : first)
    for (int b = 0; b < E; b++) {
        int here = open_dist[b] == least ? b : E;
        first = here < first ? here : first;
    }
    return first;
}

/* The least open distance over the experts (+inf when none is reachable). */
SOLVER_STEP double least_open(const double *open_dist, int E)
{
    double least = INFINITY;
#pragma omp simd reduction(min : least)
    for (int b = 0; b < E; b++)
        least = open_dist[b] < least ? open_dist[b] : least;
    return least;
}

/* Relaxes from popped expert u (distance du, potential pu) every open
 * expert b over the edge cost base[b] + pu - p[b] (base +inf: no edge) into
 * open_out and pred_out; returns the least open distance afterwards. Popped
 * experts hold NaN: never relaxed, never the minimum. */
SOLVER_STEP double relax_row(int E, int u, double du, double pu, const double *restrict base,
                             const double *restrict p, const double *restrict open_in, double *restrict open_out,
                             const int32_t *restrict pred_in, int32_t *restrict pred_out)
{
    double least = INFINITY;
#pragma omp simd reduction(min : least)
    for (int b = 0; b < E; b++) {
        double d = du + ((base[b] + pu) - p[b]);
        double held = open_in[b];
        int better = d < held;
        double now = better ? d : held;
        open_out[b] = now;
        pred_out[b] = better ? u : pred_in[b];
        least = now < least ? now : least;
    }
    return least;
}

/* Relaxes the experts from popped expert u into the spare arrays, which
 * then become the current ones; returns the least open distance. */
SOLVER_STEP double relax_from(base_scratch *x, int E, int u, double du)
{
    double least = relax_row(E, u, du, x->potential[u], x->move_cost + (size_t)u * (size_t)E, x->potential,
                             x->open_dist, x->open_spare, x->pred, x->pred_spare);
    x->pred_spare[E] = x->pred[E]; /* X and the sink */
    x->pred_spare[E + 1] = x->pred[E + 1];
    double *open = x->open_dist;
    x->open_dist = x->open_spare;
    x->open_spare = open;
    int32_t *pred = x->pred;
    x->pred = x->pred_spare;
    x->pred_spare = pred;
    return least;
}

SOLVER_STEP void relax(base_scratch *x, int from, int to, double cost)
{
    double d = x->dist[from] + cost;
    if (d < x->dist[to]) {
        x->dist[to] = d;
        x->pred[to] = from;
    }
}

/* Dijkstra from new token j over reduced costs; returns 1 once the sink is
 * reached. Experts' tentative distances live in open_dist (the distance of a
 * popped one moves to dist), X's and the sink's in dist. */
SOLVER_STEP int shortest_path(const assignment *g, int j)
{
    base_scratch *x = g->x;
    const int E = g->E, X = E, sink = E + 1, F = g->floor_load;
    const double *p = x->potential;
    const float *z = x->logits[j];
    double *open_dist = x->open_dist; /* until the first relaxation pass */
    double least = INFINITY;
#pragma omp simd reduction(min : least)
    for (int e = 0; e < E; e++) {
        double d = -(double)z[e] - p[e];
        open_dist[e] = d;
        x->pred[e] = -1; /* straight from the new token */
        least = d < least ? d : least;
    }
    x->dist[X] = x->dist[sink] = INFINITY;
    x->pred[X] = x->pred[sink] = -1;
    memset(x->done, 0, (size_t)E + 2);
    for (;;) {
        /* pop by (distance, index): the first expert at the least open
         * distance, unless X or then the sink is strictly nearer */
        open_dist = x->open_dist;
        int u = least < INFINITY ? first_at(open_dist, E, least) : -1;
        double du = u >= 0 ? open_dist[u] : INFINITY;
        for (int v = X; v <= sink; v++)
            if (!x->done[v] && x->dist[v] < INFINITY && (u < 0 || x->dist[v] < du)) {
                u = v;
                du = x->dist[v];
            }
        if (u < 0)
            return 0;
        x->done[u] = 1;
        if (u == sink)
            return 1;
        if (u == X) {
            int extras_used = 0;
            for (int e = 0; e < E; e++)
                extras_used += x->count[e] == F + 1;
            if (extras_used < g->extras)
                relax(x, X, sink, p[X] - p[sink]);
            /* a hands its extra slot over, then sheds a token */
            const double pX = p[X];
            least = INFINITY;
#pragma omp simd reduction(min : least)
            for (int a = 0; a < E; a++) {
                double d = du + (pX - p[a]);
                double held = open_dist[a];
                int better = x->count[a] == F + 1 && d < held;
                double now = better ? d : held;
                open_dist[a] = now;
                x->pred[a] = better ? X : x->pred[a];
                least = now < least ? now : least;
            }
            continue;
        }
        x->dist[u] = du;
        open_dist[u] = NAN;
        if (x->count[u] < F)
            relax(x, u, sink, p[u] - p[sink]);
        if (g->extras > 0 && x->count[u] <= F)
            relax(x, u, X, p[u] - p[X]);
        if (x->count[u] == 0)
            least = least_open(open_dist, E);
        else
            least = relax_from(x, E, u, du);
    }
}

/* Places token j: augments along the shortest path, then updates the
 * potentials by the distances capped at the sink's (Johnson). */
SOLVER_STEP void insert_token(const assignment *g, int j)
{
    base_scratch *x = g->x;
    const int E = g->E, X = E, sink = E + 1;
    if (!shortest_path(g, j))
        return; /* unreachable: the group's slots always exceed the tokens placed */
    double reach = x->dist[sink];
    for (int v = 0; v < E + 2; v++)
        x->potential[v] += x->done[v] && x->dist[v] < reach ? x->dist[v] : reach;
    /* the token each move on the path carries, read before any move changes
     * the tables (the one that relaxed the edge: the tables hold still
     * during the search) */
    for (int node = x->pred[sink]; node >= 0; node = x->pred[node]) {
        int from = x->pred[node];
        x->pred_token[node] = node != X && from >= 0 && from != X ? x->move_token[(size_t)from * (size_t)E + node] : -1;
    }
    /* walk back from the sink: each expert gives its token on before taking one */
    int node = x->pred[sink];
    while (node >= 0) {
        int from = x->pred[node];
        if (node != X && from >= 0 && from != X) {
            remove_token(g, x->pred_token[node], from);
            add_token(g, x->pred_token[node], node);
        } else if (node != X && from < 0) {
            add_token(g, j, node);
        }
        node = from;
    }
}

RS_VECTOR_CLONES
static void assign_group(base_scratch *x, const rs_chunk *c, int layer, int E, int m, rs_decisions *out)
{
    assignment g = {.x = x, .E = E, .floor_load = m / E, .extras = m % E};
    g.slots = g.floor_load + (g.extras > 0);
    for (size_t i = 0; i < (size_t)E * (size_t)E; i++) {
        x->move_cost[i] = INFINITY;
        x->move_token[i] = -1;
    }
    for (int e = 0; e < E; e++)
        x->count[e] = 0;
    for (int v = 0; v < E + 2; v++)
        x->potential[v] = 0.0;
    for (int j = 0; j < m; j++) {
        x->expert_of[j] = -1;
        insert_token(&g, j);
    }
    for (int j = 0; j < m; j++) {
        size_t row = rs_decision_row(c, out, x->token[j], layer);
        int e = x->expert_of[j];
        out->ids[row] = e;
        out->weights[row] = e >= 0 ? (float)(1.0 / (1.0 + exp(-(double)x->logits[j][e]))) : 0.0f;
    }
}

static void base_route_layer(void *state, const rs_chunk *c, int layer, rs_decisions *out)
{
    base_state *s = state;
    const rs_groups *groups = rs_balance_groups(c, s->group, layer, out);
    if (!groups)
        return;
    int slot = rs_balance_slot_take(&s->slots);
    base_scratch *x = &s->scratch[slot];
    for (int g = 0; g < groups->count; g++) {
        int n = 0;
        const int32_t *tokens = rs_balance_group_tokens(groups, g, &n);
        int m = rs_balance_valid_tokens(c, layer, out, tokens, n, x->token);
        for (int j = 0; j < m; j++)
            x->logits[j] = rs_chunk_logits(c, x->token[j], layer);
        if (m > 0)
            assign_group(x, c, layer, s->E, m, out);
    }
    rs_balance_slot_give(&s->slots, slot);
}

static const rs_router_type base_type = {
    .name = "base",
    .summary = "BASE layers: exact balanced top-1 assignment per token group maximising the summed logits (not causal)",
    .formula = "per group of m tokens: argmax over assignments t -> e_t of sum_t z_{t e_t} with every expert taking "
               "floor(m/E) or ceil(m/E) tokens (m mod E of them the ceiling); S = {e_t}, w = sigmoid(z_{t e_t})",
    .source = "BASE layers arXiv:2103.16716 (fairseq modules/base_layer.py BaseLayer.balanced_assignment, "
              "clib/libbase/balanced_assignment.cpp)",
    .params = base_params,
    .num_params = sizeof base_params / sizeof base_params[0],
    .flags = RS_ROUTER_GROUPED,
    .needs = RS_NEEDS_LOGITS,
    .create = base_create,
    .prepare_chunk = base_prepare_chunk,
    .route_layer = base_route_layer,
    .destroy = base_destroy,
    .checkpoint = rs_router_no_state, /* scratch per group or chunk */
};

const rs_router_type *const rs_router_base = &base_type;
