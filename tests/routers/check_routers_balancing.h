/* Helpers of the balancing-router suites (check_routers_balancing*.c): a
 * router created from a spec string that keeps its state across chunks, and
 * in-memory chunks with all three kinds of token groups built. */
#ifndef ROUTESIM_CHECK_ROUTERS_BALANCING_H
#define ROUTESIM_CHECK_ROUTERS_BALANCING_H

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "routesim/router.h"
#include "sim/config/spec.h"
#include "tests/test_util.h"

/* The solver and invariance tests of the suite (check_routers_balancing_solvers.c). */
TCase *routers_balancing_solver_tcase(void);

typedef struct balancing_run {
    rs_router_spec spec;
    rs_trace_info info;
    void *state;
    rs_router_shape shape;
} balancing_run;

static inline rs_trace_info balancing_info(int L, int E)
{
    rs_trace_info info = {.path = "mem.h5", .num_layers = L, .num_experts = E, .has_logits = 1, .unit = "token"};
    return info;
}

static inline void balancing_open(balancing_run *r, const char *spec_text, int L, int E, int batch_tokens)
{
    rs_error err = {{0}};
    memset(r, 0, sizeof *r);
    ck_assert_msg(rs_router_spec_parse(&r->spec, spec_text, &err) == 0, "%s", err.msg);
    r->info = balancing_info(L, E);
    rs_router_setup setup = {.trace = &r->info, .batch_tokens = batch_tokens};
    r->shape.needs = r->spec.type->needs;
    ck_assert_msg(r->spec.type->create(&r->state, &r->shape, &r->spec.params, &setup, &err) == 0, "%s: %s",
                  spec_text, err.msg);
}

/* Routes every layer of the chunk, as the engine does: prepare, then each
 * layer; ids and w receive [n, L, kmax]. */
static inline void balancing_route(balancing_run *r, const rs_test_chunk *tc, int32_t *ids, float *w)
{
    rs_error err = {{0}};
    rs_decisions dec = {.kmax = r->shape.kmax, .ids = ids, .weights = w};
    if (r->spec.type->prepare_chunk)
        ck_assert_msg(r->spec.type->prepare_chunk(r->state, &tc->chunk, &err) == 0, "%s", err.msg);
    for (int l = 0; l < tc->chunk.L; l++)
        r->spec.type->route_layer(r->state, &tc->chunk, l, &dec);
}

static inline void balancing_close(balancing_run *r)
{
    r->spec.type->destroy(r->state);
    rs_router_spec_free(&r->spec);
}

/* A chunk of n tokens from global token t0 with the given sequences (NULL:
 * one) and its sequence, batch and step groups. */
static inline void balancing_chunk(rs_test_chunk *tc, int64_t t0, int n, int L, int E, const float *z,
                                   const int *lengths, int count, int batch_tokens)
{
    rs_test_chunk_init(tc, t0, n, L, E, z);
    if (lengths)
        rs_test_chunk_sequences(tc, lengths, count);
    rs_test_chunk_groups(tc, RS_GROUP_SEQUENCE, batch_tokens);
    rs_test_chunk_groups(tc, RS_GROUP_BATCH, batch_tokens);
    rs_test_chunk_groups(tc, RS_GROUP_STEP, batch_tokens);
}

typedef struct routed {
    int32_t *ids;
    float *w;
    int kmax;
} routed;

/* Creates the router, routes one chunk, destroys the router. */
static inline routed balancing_route_once(const char *spec_text, const rs_test_chunk *tc, int batch_tokens)
{
    balancing_run r;
    balancing_open(&r, spec_text, tc->chunk.L, tc->chunk.E, batch_tokens);
    routed out = {.kmax = r.shape.kmax};
    size_t cells = (size_t)tc->chunk.n * (size_t)tc->chunk.L * (size_t)out.kmax;
    out.ids = malloc(cells * sizeof *out.ids);
    out.w = malloc(cells * sizeof *out.w);
    ck_assert(out.ids && out.w);
    balancing_route(&r, tc, out.ids, out.w);
    balancing_close(&r);
    return out;
}

static inline void routed_free(routed *r)
{
    free(r->ids);
    free(r->w);
}

/* create() must fail with exactly this message. */
static inline void balancing_expect_error(const char *spec_text, int E, const char *message)
{
    rs_router_spec spec;
    rs_error err = {{0}};
    ck_assert_msg(rs_router_spec_parse(&spec, spec_text, &err) == 0, "%s", err.msg);
    rs_trace_info info = balancing_info(1, E);
    rs_router_setup setup = {.trace = &info, .batch_tokens = 16};
    rs_router_shape shape = {.needs = spec.type->needs};
    void *state = NULL;
    ck_assert_int_eq(spec.type->create(&state, &shape, &spec.params, &setup, &err), -1);
    ck_assert_str_eq(err.msg, message);
    rs_router_spec_free(&spec);
}

#endif
