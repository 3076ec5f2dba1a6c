/* graph_smooth: routing probabilities smoothed over similar recent tokens
 * before top-k, after the similarity-aware routing of "Graph of Tokens"
 * (arXiv 2505.00792). The paper builds the token graph from hidden states
 * over the whole batch; a trace has only router logits, so this
 * approximation measures similarity as the cosine of logit vectors and
 * looks back `window` tokens of the same sequence (causal). */
#include <math.h>
#include <stdlib.h>

#include "routers/common/trace_checks.h"
#include "routers/locality/locality.h"
#include "routesim/select.h"
#include "routesim/router.h"

typedef struct smooth_layer {
    float *past_z, *past_p; /* [window, E] ring of the previous tokens of the sequence */
    double *past_norm;      /* [window] |z| of each */
    int count, head;        /* tokens held; slot the next one goes to */
    double *mix;            /* [E] scratch: smoothed probabilities */
    double *affinity;       /* [window + 1] scratch */
    float *smoothed;        /* [E] scratch */
} smooth_layer;

typedef struct graph_smooth_state {
    int k, window, E, L, renorm;
    double temp;
    smooth_layer *layers;
    float *floats;
    double *doubles;
} graph_smooth_state;

static const rs_param_def graph_smooth_params[] = {
    {"k", RS_PARAM_INT, "2", 1, 1024, NULL, "experts per token"},
    {"window", RS_PARAM_INT, "4", 0, 1024, NULL, "previous tokens of the sequence mixed in (0: plain top-k)"},
    {"temp", RS_PARAM_FLOAT, "1", 1e-6, 1e6, NULL, "temperature of the softmax over cosine similarities"},
    {"renorm", RS_PARAM_BOOL, "1", 0, 1, NULL, "renormalise the k smoothed weights to sum to 1"},
};

static void graph_smooth_destroy(void *state)
{
    graph_smooth_state *s = state;
    if (!s)
        return;
    free(s->layers);
    free(s->floats);
    free(s->doubles);
    free(s);
}

static int graph_smooth_create(void **state, rs_router_shape *shape, const rs_params *params,
                               const rs_router_setup *setup, rs_error *err)
{
    const rs_trace_info *tr = setup->trace;
    int k = (int)rs_param_int(params, "k");
    RS_TRY(rs_check_param_experts("graph_smooth", "k", k, tr, err));
    graph_smooth_state *s = calloc(1, sizeof *s);
    RS_CHECK(s, err, "router graph_smooth: out of memory");
    s->k = k;
    s->window = (int)rs_param_int(params, "window");
    s->temp = rs_param_float(params, "temp");
    s->renorm = rs_param_bool(params, "renorm");
    s->E = tr->num_experts;
    s->L = tr->num_layers;
    const size_t E = (size_t)s->E, W = (size_t)s->window;
    const size_t floats = 2 * W * E + E, doubles = W + E + W + 1;
    s->layers = calloc((size_t)s->L, sizeof *s->layers);
    s->floats = malloc((size_t)s->L * floats * sizeof *s->floats);
    s->doubles = malloc((size_t)s->L * doubles * sizeof *s->doubles);
    if (!s->layers || !s->floats || !s->doubles) {
        int window = s->window;
        graph_smooth_destroy(s);
        return rs_fail(err, "router graph_smooth: out of memory (window=%d, %d layers, %d experts)", window,
                       tr->num_layers, tr->num_experts);
    }
    for (int l = 0; l < s->L; l++) {
        float *f = s->floats + (size_t)l * floats;
        double *d = s->doubles + (size_t)l * doubles;
        s->layers[l] = (smooth_layer){.past_z = f, .past_p = f + W * E, .smoothed = f + 2 * W * E,
                                      .past_norm = d, .mix = d + W, .affinity = d + W + E};
    }
    shape->kmax = k;
    *state = s;
    return 0;
}

/* Sum of squares of z, in index order. */
static double sum_of_squares(const float *z, int E)
{
    double sum = 0.0;
    for (int e = 0; e < E; e++)
        sum += (double)z[e] * (double)z[e];
    return sum;
}

/* Dot products of z with up to four rows in one pass. Each sum runs in index
 * order as its own loop would, so the results are the same; the four
 * independent chains keep the adder busy where one chain waits on each
 * addition. Unused rows (count < 4) repeat the first. */
static void dot_products(const float *z, const float *const *rows, int count, int E, double *dot)
{
    const float *r0 = rows[0], *r1 = count > 1 ? rows[1] : r0, *r2 = count > 2 ? rows[2] : r0,
                *r3 = count > 3 ? rows[3] : r0;
    double d0 = 0.0, d1 = 0.0, d2 = 0.0, d3 = 0.0;
    for (int e = 0; e < E; e++) {
        double x = z[e];
        d0 += x * (double)r0[e];
        d1 += x * (double)r1[e];
        d2 += x * (double)r2[e];
        d3 += x * (double)r3[e];
    }
    dot[0] = d0;
    dot[1] = d1;
    dot[2] = d2;
    dot[3] = d3;
}

/* Cosine from a dot product; 0 when either vector is all zeros. */
static double cosine(double dot, double norm_a, double norm_b)
{
    if (norm_a == 0.0 || norm_b == 0.0)
        return 0.0;
    return dot / (norm_a * norm_b);
}

/* p~ = a_self p_t + sum_j a_j p_j over the held tokens (oldest first),
 * a = softmax(cosine / temp); written to sl->smoothed. */
static void smooth_probs(const graph_smooth_state *s, smooth_layer *sl, const float *z, double squares, double norm,
                         const float *p)
{
    const int E = s->E, W = s->window, n = sl->count;
    const int oldest = (sl->head - n + W) % W;
    double *a = sl->affinity; /* a[0]: this token, a[1 + i]: the i-th oldest held token */
    a[0] = cosine(squares, norm, norm) / s->temp; /* z . z is the sum of squares, summed alike */
    double top = a[0];
    for (int i = 0; i < n; i += 4) {
        const float *rows[4];
        double dot[4];
        int count = n - i < 4 ? n - i : 4;
        for (int j = 0; j < count; j++)
            rows[j] = sl->past_z + (size_t)((oldest + i + j) % W) * E;
        dot_products(z, rows, count, E, dot);
        for (int j = 0; j < count; j++) {
            int slot = (oldest + i + j) % W;
            a[1 + i + j] = cosine(dot[j], norm, sl->past_norm[slot]) / s->temp;
            top = a[1 + i + j] > top ? a[1 + i + j] : top;
        }
    }
    double sum = 0.0;
    for (int i = 0; i <= n; i++) {
        a[i] = exp(a[i] - top);
        sum += a[i];
    }
    RS_OMP_SIMD
    for (int e = 0; e < E; e++)
        sl->mix[e] = a[0] / sum * (double)p[e];
    for (int i = 0; i < n; i++) {
        const float *q = sl->past_p + (size_t)((oldest + i) % W) * E;
        double weight = a[1 + i] / sum;
        RS_OMP_SIMD
        for (int e = 0; e < E; e++)
            sl->mix[e] += weight * (double)q[e];
    }
    RS_OMP_SIMD
    for (int e = 0; e < E; e++)
        sl->smoothed[e] = (float)sl->mix[e];
}

static void remember(const graph_smooth_state *s, smooth_layer *sl, const float *z, double norm, const float *p)
{
    const int E = s->E, W = s->window;
    if (W == 0)
        return;
    for (int e = 0; e < E; e++) {
        sl->past_z[(size_t)sl->head * E + e] = z[e];
        sl->past_p[(size_t)sl->head * E + e] = p[e];
    }
    sl->past_norm[sl->head] = norm;
    sl->head = (sl->head + 1) % W;
    sl->count += sl->count < W;
}

RS_VECTOR_CLONES
static void graph_smooth_route_layer(void *state, const rs_chunk *c, int layer, rs_decisions *out)
{
    graph_smooth_state *s = state;
    smooth_layer *sl = &s->layers[layer];
    const int E = c->E;
    float vals[1024];
    for (int t = 0; t < c->n; t++) {
        int32_t *ids = out->ids + rs_decision_row(c, out, t, layer);
        float *w = out->weights + rs_decision_row(c, out, t, layer);
        if (rs_starts_sequence(c, t)) {
            sl->count = 0;
            sl->head = 0;
        }
        if (!rs_token_valid(c, t)) {
            rs_pad_row(ids, w, 0, out->kmax);
            continue;
        }
        const float *z = rs_chunk_logits(c, t, layer), *p = rs_chunk_probs(c, t, layer);
        double squares = sum_of_squares(z, E), norm = sqrt(squares);
        if (sl->count == 0) {
            /* nothing to mix: plain top-k, selected on z like topk (no ties invented by rounding p) */
            rs_topk_indices(z, E, s->k, ids, vals);
            rs_weights_from_probs(p, ids, s->k, s->renorm, w);
        } else {
            smooth_probs(s, sl, z, squares, norm, p);
            rs_topk_indices(sl->smoothed, E, s->k, ids, vals);
            rs_weights_from_probs(sl->smoothed, ids, s->k, s->renorm, w);
        }
        remember(s, sl, z, norm, p);
    }
}

static void graph_smooth_checkpoint(void *state, rs_state_io *io)
{
    graph_smooth_state *s = state;
    const size_t W = (size_t)s->window, E = (size_t)s->E;
    for (int l = 0; l < s->L; l++) { /* the ring of the sequence's previous tokens */
        smooth_layer *sl = &s->layers[l];
        RS_STATE_ARRAY(io, sl->past_z, W * E);
        RS_STATE_ARRAY(io, sl->past_p, W * E);
        RS_STATE_ARRAY(io, sl->past_norm, W);
        RS_STATE(io, sl->count);
        RS_STATE(io, sl->head);
    }
}

static const rs_router_type graph_smooth_type = {
    .name = "graph_smooth",
    .summary = "top-k of probabilities smoothed over similar recent tokens (approximation of Graph of Tokens)",
    .formula = "p~_t = sum_j a_tj p_j over j in {t} and the previous `window` tokens of the sequence, a_t = "
               "softmax_j(cos(z_t, z_j) / temp) (cos = 0 for an all-zero vector); S = TopK(p~_t, k) (TopK(z_t, k) "
               "when no previous token); w = p~_S (renorm: / sum p~_S)",
    .source = "Graph of Tokens arXiv:2505.00792 (similarity-aware routing; approximation: cosine of router logits "
              "instead of hidden states, causal window instead of the whole batch)",
    .params = graph_smooth_params,
    .num_params = sizeof graph_smooth_params / sizeof graph_smooth_params[0],
    .flags = RS_ROUTER_CAUSAL | RS_ROUTER_STATEFUL,
    .needs = RS_NEEDS_LOGITS | RS_NEEDS_PROBS,
    .create = graph_smooth_create,
    .route_layer = graph_smooth_route_layer,
    .destroy = graph_smooth_destroy,
    .checkpoint = graph_smooth_checkpoint,
};

const rs_router_type *const rs_router_graph_smooth = &graph_smooth_type;
