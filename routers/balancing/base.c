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
 * The search is dense (every expert pair is an edge), so each pop costs one
 * pass over the experts: a blended relaxation that also keeps, per vector
 * lane, the least distance and its first index, which gives the next pop
 * without a second pass. Experts' predecessors are not stored: the few on the
 * augmenting path are found again afterwards from the pop order, with the
 * same expressions, hence the same values and the same tie decisions.
 *
 * fairseq's balanced_assignment (libbase, an auction with epsilon = range/50
 * and a 100-round cap) approximates the same optimum and needs E to divide m;
 * routers.md asks for an exact solver. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "routers/balancing/base_passes.h"
#include "routers/common/balance_util.h"
#include "routesim/router.h"
#include "routesim/vector.h"

/* Working space of one layer being routed (a slot, see balance_util.h). */
typedef struct base_scratch {
    /* per group, grown in prepare_chunk */
    int32_t *token, *expert_of, *slot_of, *members;
    const float **logits;
    size_t capacity[5];
    /* [E][stride]: cheapest move a -> b over a's tokens and the token making
     * it, +inf and -1 for a -> a and on the padding (a relaxation over it
     * never wins); the row of an expert without tokens is stale, never read */
    double *move_cost;
    int32_t *move_token;
    /* nodes 0..E-1 experts, E the extra-slot node X, E+1 the sink;
     * potential has room for the padded row as well */
    double *potential, *dist;
    /* [stride]: tentative distance of each expert the search has not
     * popped, NaN once popped and on the padding (no comparison with NaN
     * holds: never relaxed, never the minimum) */
    double *open_dist;
    /* the nodes in the order the search popped them, at their distances */
    int32_t *popped;
    double *popped_dist;
    int32_t *pred; /* X's and the sink's; an expert's is rebuilt (path_pred) */
    int32_t *count, *rescan, *path;
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
    int E, stride, floor_load, extras, slots; /* slots = member room per expert */
} assignment;

static const rs_param_def base_params[] = {
    RS_BALANCE_GROUP_PARAM("batch"),
};

/* E rounded up to a whole number of steps: the length of the padded rows. */
static int row_stride(int E)
{
    return (E + STEP - 1) / STEP * STEP;
}

/* count elements of elem_size bytes from a 64-byte boundary (a cache line). */
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
        free(x->popped);
        free(x->popped_dist);
        free(x->pred);
        free(x->count);
        free(x->rescan);
        free(x->path);
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
        size_t E = (size_t)s->E, stride = (size_t)row_stride(s->E), nodes = E + 2;
        x->move_cost = aligned_array(E * stride, sizeof *x->move_cost);
        x->move_token = aligned_array(E * stride, sizeof *x->move_token);
        x->potential = aligned_array(nodes > stride ? nodes : stride, sizeof *x->potential);
        x->dist = aligned_array(nodes, sizeof *x->dist);
        x->open_dist = aligned_array(stride, sizeof *x->open_dist);
        x->popped = aligned_array(nodes, sizeof *x->popped);
        x->popped_dist = aligned_array(nodes, sizeof *x->popped_dist);
        x->pred = aligned_array(nodes, sizeof *x->pred);
        x->count = aligned_array(E, sizeof *x->count);
        x->rescan = aligned_array(E, sizeof *x->rescan);
        x->path = aligned_array(3 * nodes, sizeof *x->path);
        x->done = aligned_array(nodes, sizeof *x->done);
        ok = x->move_cost && x->move_token && x->potential && x->dist && x->open_dist && x->popped &&
             x->popped_dist && x->pred && x->count && x->rescan && x->path && x->done;
        if (!ok)
            break;
        /* the potential update reads every node's distance, used or not;
         * a row's padding stays +inf (no move), rows are written as used */
        memset(x->dist, 0, nodes * sizeof *x->dist);
        for (size_t pair = 0; pair < E * stride; pair++) {
            x->move_cost[pair] = INFINITY;
            x->move_token[pair] = -1;
        }
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

/* Offers token j (at expert a, logits z) as the cheapest move a -> b for
 * every b: it wins where its cost is lower, or equal with j earlier. One
 * blend per b; the pair a -> a keeps +inf. */
SOLVER_STEP void offer_row(const assignment *g, int j, int a, const float *z)
{
    base_scratch *x = g->x;
    const int E = g->E;
    double *cost_row = x->move_cost + (size_t)a * (size_t)g->stride;
    int32_t *token_row = x->move_token + (size_t)a * (size_t)g->stride;
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
    size_t pair = (size_t)a * (size_t)g->stride + (size_t)b;
    double cost = (double)x->logits[j][a] - (double)x->logits[j][b];
    if (cost < x->move_cost[pair] || (cost == x->move_cost[pair] && j < x->move_token[pair])) {
        x->move_cost[pair] = cost;
        x->move_token[pair] = j;
    }
}

/* Writes the moves from a when its one member is token i: i makes each. */
SOLVER_STEP void write_row(const assignment *g, int i, int a)
{
    base_scratch *x = g->x;
    double *cost_row = x->move_cost + (size_t)a * (size_t)g->stride;
    int32_t *token_row = x->move_token + (size_t)a * (size_t)g->stride;
    const float *z = x->logits[i];
    const double za = (double)z[a];
#pragma omp simd
    for (int b = 0; b < g->E; b++) {
        cost_row[b] = b != a ? za - (double)z[b] : INFINITY;
        token_row[b] = b != a ? i : -1;
    }
}

/* An expert's row is read only while it has members: the first member
 * writes it whole, whatever an earlier group left there. */
SOLVER_STEP void add_token(const assignment *g, int j, int a)
{
    base_scratch *x = g->x;
    x->members[a * g->slots + x->count[a]] = j;
    x->slot_of[j] = x->count[a]++;
    x->expert_of[j] = a;
    if (x->count[a] == 1)
        write_row(g, j, a);
    else
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
    double *cost_row = x->move_cost + (size_t)a * (size_t)g->stride;
    int32_t *token_row = x->move_token + (size_t)a * (size_t)g->stride;
    if (x->count[a] <= 1) { /* none left (the row goes unread), or one making every move */
        if (x->count[a] == 1)
            write_row(g, list[0], a);
        return;
    }
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

SOLVER_STEP void relax(base_scratch *x, int from, int to, double cost)
{
    double d = x->dist[from] + cost;
    if (d < x->dist[to]) {
        x->dist[to] = d;
        x->pred[to] = from;
    }
}

/* Dijkstra from new token j over reduced costs; returns how many nodes it
 * popped, the sink last (0: the sink is unreachable). Experts' tentative
 * distances live in open_dist (a popped one's moves to dist), X's and the
 * sink's in dist, as their predecessors in pred; an expert's predecessor is
 * found again afterwards for the few on the path (path_pred). */
SOLVER_STEP int shortest_path(const assignment *g, int j)
{
    base_scratch *x = g->x;
    const int E = g->E, X = E, sink = E + 1, F = g->floor_load, stride = g->stride;
    const double *p = x->potential;
    const float *z = x->logits[j];
    double *open_dist = x->open_dist;
#pragma omp simd
    for (int e = 0; e < E; e++)
        open_dist[e] = -(double)z[e] - p[e]; /* straight from the new token */
    for (int e = E; e < stride; e++)
        open_dist[e] = NAN;
    double least;
    int first = least_open(stride, open_dist, &least);
    x->dist[X] = x->dist[sink] = INFINITY;
    x->pred[X] = x->pred[sink] = -1;
    memset(x->done, 0, (size_t)E + 2);
    for (int pops = 0;;) {
        /* pop by (distance, index): the first expert at the least open
         * distance, unless X or then the sink is strictly nearer */
        int u = first;
        double du = u >= 0 ? open_dist[u] : INFINITY;
        for (int v = X; v <= sink; v++)
            if (!x->done[v] && x->dist[v] < INFINITY && (u < 0 || x->dist[v] < du)) {
                u = v;
                du = x->dist[v];
            }
        if (u < 0)
            return 0;
        x->done[u] = 1;
        x->popped[pops] = u;
        x->popped_dist[pops++] = du;
        if (u == sink)
            return pops;
        if (u == X) {
            int extras_used = 0;
            for (int e = 0; e < E; e++)
                extras_used += x->count[e] == F + 1;
            if (extras_used < g->extras)
                relax(x, X, sink, p[X] - p[sink]);
            /* a hands its extra slot over, then sheds a token */
            const double pX = p[X];
#pragma omp simd
            for (int a = 0; a < E; a++) {
                double d = du + (pX - p[a]);
                double held = open_dist[a];
                open_dist[a] = x->count[a] == F + 1 && d < held ? d : held;
            }
        } else {
            x->dist[u] = du;
            open_dist[u] = NAN;
            if (x->count[u] < F)
                relax(x, u, sink, p[u] - p[sink]);
            if (g->extras > 0 && x->count[u] <= F)
                relax(x, u, X, p[u] - p[X]);
            if (x->count[u] > 0) {
                first = relax_row(stride, du, p[u], x->move_cost + (size_t)u * (size_t)stride, p, open_dist, &least);
                continue;
            }
        }
        first = least_open(stride, open_dist, &least);
    }
}

/* The predecessor the search gave popped expert b (distance db, new token
 * j): the first relaxation, in pop order, that reached db (later ones, equal,
 * did not replace it), -1 when the new token's own edge did. The same
 * expressions as the search, so the same values. */
SOLVER_STEP int path_pred(const assignment *g, int j, int b, double db)
{
    base_scratch *x = g->x;
    const int X = g->E, F = g->floor_load;
    const double *p = x->potential;
    if (-(double)x->logits[j][b] - p[b] == db)
        return -1;
    for (int k = 0; x->popped[k] != b; k++) {
        int u = x->popped[k];
        double du = x->popped_dist[k];
        if (u != X && x->count[u] == 0)
            continue; /* an empty expert relaxed no expert (its row is stale) */
        double d = u == X ? (x->count[b] == F + 1 ? du + (p[X] - p[b]) : INFINITY)
                          : du + ((x->move_cost[(size_t)u * (size_t)g->stride + (size_t)b] + p[u]) - p[b]);
        if (d == db)
            return u;
    }
    return -1; /* not reached: db came from some relaxation */
}

/* Places token j: augments along the shortest path, then updates the
 * potentials by the distances capped at the sink's (Johnson). */
SOLVER_STEP void insert_token(const assignment *g, int j)
{
    base_scratch *x = g->x;
    const int E = g->E, X = E, sink = E + 1;
    if (!shortest_path(g, j))
        return; /* unreachable: the group's slots always exceed the tokens placed */
    /* the path from the sink back, each node with its predecessor and the
     * token its move carries, read while the tables hold still */
    int32_t *path = x->path;
    int steps = 0;
    for (int node = x->pred[sink]; node >= 0;) {
        int from = node == X ? x->pred[X] : path_pred(g, j, node, x->dist[node]);
        path[3 * steps] = node;
        path[3 * steps + 1] = from;
        path[3 * steps + 2] = node != X && from >= 0 && from != X
                                  ? x->move_token[(size_t)from * (size_t)g->stride + (size_t)node]
                                  : j;
        steps++;
        node = from;
    }
    double reach = x->dist[sink];
    double *potential = x->potential;
    const double *dist = x->dist;
    const uint8_t *done = x->done;
#pragma omp simd
    for (int v = 0; v < E + 2; v++)
        potential[v] += done[v] && dist[v] < reach ? dist[v] : reach;
    /* each expert gives its token on before taking one */
    for (int s = 0; s < steps; s++) {
        int node = path[3 * s], from = path[3 * s + 1], token = path[3 * s + 2];
        if (node != X && from >= 0 && from != X) {
            remove_token(g, token, from);
            add_token(g, token, node);
        } else if (node != X && from < 0) {
            add_token(g, j, node);
        }
    }
}

RS_VECTOR_CLONES
static void assign_group(base_scratch *x, const rs_chunk *c, int layer, int E, int m, rs_decisions *out)
{
    assignment g = {.x = x, .E = E, .stride = row_stride(E), .floor_load = m / E, .extras = m % E};
    g.slots = g.floor_load + (g.extras > 0);
    for (int e = 0; e < E; e++)
        x->count[e] = 0;
    for (int v = 0; v < (E + 2 > g.stride ? E + 2 : g.stride); v++)
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
