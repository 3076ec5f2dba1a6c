/* Helpers of the dynamic-k and baseline router suites: route a chunk with a
 * spec string, cut a token range into chunks (with the sequence window the
 * engine gives them) or into views of one chunk, and compare the results. */
#ifndef ROUTESIM_ROUTERS_DYNAMIC_HARNESS_H
#define ROUTESIM_ROUTERS_DYNAMIC_HARNESS_H

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "routesim/router.h"
#include "sim/config/spec.h"
#include "tests/test_util.h"

typedef struct dyn_router {
    rs_router_spec spec;
    void *state;
    int kmax;
} dyn_router;

typedef struct dyn_rows {
    int32_t *ids;
    float *w;
    int kmax;
} dyn_rows;

static inline rs_trace_info dyn_info(int L, int E)
{
    rs_trace_info info = {.path = "mem.h5", .num_layers = L, .num_experts = E, .has_logits = 1, .unit = "token"};
    return info;
}

static inline void dyn_open(dyn_router *r, const char *spec_text, const rs_trace_info *info)
{
    rs_error err = {{0}};
    ck_assert_msg(rs_router_spec_parse(&r->spec, spec_text, &err) == 0, "%s", err.msg);
    rs_router_setup setup = {.trace = info, .batch_tokens = 4096};
    rs_router_shape shape = {.needs = r->spec.type->needs};
    ck_assert_msg(r->spec.type->create(&r->state, &shape, &r->spec.params, &setup, &err) == 0, "%s: %s", spec_text,
                  err.msg);
    r->kmax = shape.kmax;
}

static inline void dyn_close(dyn_router *r)
{
    r->spec.type->destroy(r->state);
    rs_router_spec_free(&r->spec);
}

static inline dyn_rows dyn_rows_alloc(int n, int L, int kmax)
{
    size_t cells = (size_t)n * (size_t)L * (size_t)kmax;
    dyn_rows d = {malloc(cells * sizeof(int32_t)), malloc(cells * sizeof(float)), kmax};
    ck_assert(d.ids && d.w);
    for (size_t i = 0; i < cells; i++) { /* poison: every cell must be written */
        d.ids[i] = -7;
        d.w[i] = -7.0f;
    }
    return d;
}

static inline void dyn_rows_free(dyn_rows *d)
{
    free(d->ids);
    free(d->w);
}

/* prepare_chunk (when the router has one), then every layer, into rows
 * starting at token `offset` of d. */
static inline void dyn_route_into(dyn_router *r, const rs_chunk *c, dyn_rows *d, int offset, int prepare)
{
    rs_error err = {{0}};
    if (prepare && r->spec.type->prepare_chunk)
        ck_assert_msg(r->spec.type->prepare_chunk(r->state, c, &err) == 0, "%s", err.msg);
    size_t skip = (size_t)offset * (size_t)c->L * (size_t)d->kmax;
    rs_decisions dec = {.kmax = d->kmax, .ids = d->ids + skip, .weights = d->w + skip};
    for (int l = 0; l < c->L; l++)
        r->spec.type->route_layer(r->state, c, l, &dec);
}

/* Routes one chunk with a fresh router. */
static inline dyn_rows dyn_route(const char *spec_text, const rs_test_chunk *tc, const rs_trace_info *info)
{
    dyn_router r;
    dyn_open(&r, spec_text, info);
    dyn_rows d = dyn_rows_alloc(tc->chunk.n, tc->chunk.L, r.kmax);
    dyn_route_into(&r, &tc->chunk, &d, 0, 1);
    dyn_close(&r);
    return d;
}

/* Tokens [a, b) of a token range as the engine's chunk: global t0, the window
 * of sequences overlapping it (offsets are global, lengths sum to the range). */
typedef struct dyn_range {
    int T, L, E;
    const float *logits;       /* [T, L, E] */
    const int32_t *token_ids;  /* [T] or NULL */
    const int64_t *offsets;    /* [num_seq + 1], offsets[0] = 0 */
    int num_seq;
} dyn_range;

static inline void dyn_chunk_of(rs_test_chunk *tc, const dyn_range *g, int a, int b)
{
    rs_test_chunk_init(tc, a, b - a, g->L, g->E, g->logits + (size_t)a * (size_t)g->L * (size_t)g->E);
    int first = 0;
    while (g->offsets[first + 1] <= a)
        first++;
    int last = first;
    while (g->offsets[last + 1] < b)
        last++;
    tc->chunk.first_seq = first;
    tc->chunk.num_seq = last - first + 1;
    tc->chunk.seq_offsets = g->offsets + first;
    for (int t = a, s = first; t < b; t++) {
        while (g->offsets[s + 1] <= t)
            s++;
        tc->seq_of_token[t - a] = s - first;
    }
    if (g->token_ids)
        tc->chunk.token_ids = g->token_ids + a;
}

/* A view of tokens [off, off + count) of a chunk, as the engine slices one
 * between threads (chunk-wide softmax statistics: rows t * L + l). */
static inline rs_chunk dyn_view(const rs_chunk *c, int off, int count)
{
    rs_chunk v = *c;
    size_t rows = (size_t)off * (size_t)c->L;
    v.t0 = c->t0 + off;
    v.n = count;
    v.logits = c->logits + rows * (size_t)c->E;
    v.probs = c->probs + rows * (size_t)c->E;
    v.lse = c->lse + rows;
    v.mean_logit = c->mean_logit + rows;
    v.log_norm = c->log_norm + rows;
    v.entropy = c->entropy + rows;
    if (c->token_ids)
        v.token_ids = c->token_ids + off;
    v.seq_of_token = c->seq_of_token + off;
    for (int m = 0; m < RS_GROUP_COUNT; m++)
        v.groups[m] = NULL;
    return v;
}

/* Routing the range in one chunk, in two chunks split at `split` (each
 * prepared in order), and as two views of the whole chunk gives the same
 * bits. */
static inline void dyn_assert_split_invariant(const char *spec_text, const dyn_range *g, int split)
{
    rs_trace_info info = dyn_info(g->L, g->E);
    info.has_token_ids = g->token_ids != NULL;
    rs_test_chunk whole, first, second;
    dyn_chunk_of(&whole, g, 0, g->T);
    dyn_chunk_of(&first, g, 0, split);
    dyn_chunk_of(&second, g, split, g->T);
    dyn_router r;
    dyn_open(&r, spec_text, &info);
    dyn_rows a = dyn_rows_alloc(g->T, g->L, r.kmax);
    dyn_route_into(&r, &whole.chunk, &a, 0, 1);
    dyn_close(&r);

    dyn_open(&r, spec_text, &info);
    dyn_rows b = dyn_rows_alloc(g->T, g->L, r.kmax);
    dyn_route_into(&r, &first.chunk, &b, 0, 1);
    dyn_route_into(&r, &second.chunk, &b, split, 1);
    dyn_close(&r);

    dyn_open(&r, spec_text, &info);
    dyn_rows v = dyn_rows_alloc(g->T, g->L, r.kmax);
    rs_chunk head = dyn_view(&whole.chunk, 0, split), tail = dyn_view(&whole.chunk, split, g->T - split);
    if (r.spec.type->prepare_chunk) {
        rs_error err = {{0}};
        ck_assert_msg(r.spec.type->prepare_chunk(r.state, &whole.chunk, &err) == 0, "%s", err.msg);
    }
    dyn_route_into(&r, &tail, &v, split, 0); /* views may run in any order */
    dyn_route_into(&r, &head, &v, 0, 0);
    dyn_close(&r);

    size_t cells = (size_t)g->T * (size_t)g->L * (size_t)a.kmax;
    ck_assert_msg(memcmp(a.ids, b.ids, cells * sizeof *a.ids) == 0, "%s: ids differ across chunks", spec_text);
    ck_assert_msg(memcmp(a.w, b.w, cells * sizeof *a.w) == 0, "%s: weights differ across chunks", spec_text);
    ck_assert_msg(memcmp(a.ids, v.ids, cells * sizeof *a.ids) == 0, "%s: ids differ across views", spec_text);
    ck_assert_msg(memcmp(a.w, v.w, cells * sizeof *a.w) == 0, "%s: weights differ across views", spec_text);
    dyn_rows_free(&a);
    dyn_rows_free(&b);
    dyn_rows_free(&v);
    rs_test_chunk_free(&whole);
    rs_test_chunk_free(&first);
    rs_test_chunk_free(&second);
}

/* create() must fail with exactly this message. */
static inline void dyn_assert_create_fails(const char *spec_text, const rs_trace_info *info, const char *message)
{
    rs_router_spec spec;
    rs_error err = {{0}};
    if (rs_router_spec_parse(&spec, spec_text, &err) != 0) {
        ck_assert_str_eq(err.msg, message);
        return;
    }
    rs_router_setup setup = {.trace = info, .batch_tokens = 16};
    rs_router_shape shape = {.needs = spec.type->needs};
    void *state = NULL;
    int rc = spec.type->create(&state, &shape, &spec.params, &setup, &err);
    if (rc == 0)
        spec.type->destroy(state);
    rs_router_spec_free(&spec);
    ck_assert_msg(rc == -1, "%s: create should fail", spec_text);
    ck_assert_str_eq(err.msg, message);
}

/* Expected row: ids (then -1 padding) and weights to tol (then 0). */
static inline void dyn_assert_row(const dyn_rows *d, size_t row, const int32_t *ids, const double *w, int m, double tol)
{
    const int32_t *got = d->ids + row * (size_t)d->kmax;
    const float *gw = d->w + row * (size_t)d->kmax;
    for (int j = 0; j < d->kmax; j++) {
        int32_t want = j < m ? ids[j] : -1;
        double want_w = j < m ? w[j] : 0.0;
        ck_assert_msg(got[j] == want, "row %zu slot %d: expert %d, expected %d", row, j, got[j], want);
        ck_assert_msg(gw[j] >= want_w - tol && gw[j] <= want_w + tol, "row %zu slot %d: weight %.9g, expected %.9g",
                      row, j, gw[j], want_w);
    }
}

#endif
