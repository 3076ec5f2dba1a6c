/* Routers called directly on hand-built chunks. Expected ids and weights
 * are computed by hand in the comments (softmax of small integers of log 2). */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "routesim/router.h"
#include "sim/config/spec.h"
#include "tests/test_util.h"

typedef struct routed {
    int32_t *ids;
    float *w;
    int kmax;
} routed;

/* Routes n tokens x L layers with a router spec string. */
static routed route(const char *spec_text, const rs_test_chunk *tc, const rs_trace_info *info)
{
    rs_router_spec spec;
    rs_error err = {{0}};
    ck_assert_msg(rs_router_spec_parse(&spec, spec_text, &err) == 0, "%s", err.msg);
    rs_router_setup setup = {.trace = info, .batch_tokens = 4096};
    rs_router_shape shape = {.needs = spec.type->needs};
    void *state = NULL;
    ck_assert_msg(spec.type->create(&state, &shape, &spec.params, &setup, &err) == 0, "%s", err.msg);
    routed r = {.kmax = shape.kmax};
    size_t cells = (size_t)tc->chunk.n * (size_t)tc->chunk.L * (size_t)shape.kmax;
    r.ids = malloc(cells * sizeof *r.ids);
    r.w = malloc(cells * sizeof *r.w);
    rs_decisions dec = {.kmax = shape.kmax, .ids = r.ids, .weights = r.w};
    if (spec.type->prepare_chunk)
        ck_assert_msg(spec.type->prepare_chunk(state, &tc->chunk, &err) == 0, "%s", err.msg);
    for (int l = 0; l < tc->chunk.L; l++)
        spec.type->route_layer(state, &tc->chunk, l, &dec);
    spec.type->destroy(state);
    rs_router_spec_free(&spec);
    return r;
}

static rs_trace_info info_for(int L, int E)
{
    rs_trace_info info = {.path = "mem.h5", .num_layers = L, .num_experts = E, .has_logits = 1, .unit = "token"};
    return info;
}

static void routed_free(routed *r)
{
    free(r->ids);
    free(r->w);
}

START_TEST(topk_hand_cases)
{
    /* token 0: z = log [1, 2, 4, 1] -> p = [1/8, 1/4, 1/2, 1/8]
     * token 1: z = [1, 3, 3, 2]: tie between experts 1 and 2 -> lower index first
     * token 2: all equal -> experts 0, 1 */
    const float z[] = {0, logf(2), logf(4), 0, 1, 3, 3, 2, 0, 0, 0, 0};
    rs_test_chunk tc;
    rs_test_chunk_init(&tc, 0, 3, 1, 4, z);
    rs_trace_info info = info_for(1, 4);

    routed r = route("topk:k=2", &tc, &info);
    ck_assert_int_eq(r.kmax, 2);
    ck_assert_int_eq(r.ids[0], 2);
    ck_assert_int_eq(r.ids[1], 1);
    ck_assert_float_eq_tol(r.w[0], 2.0f / 3.0f, 1e-6f); /* 0.5 / 0.75 */
    ck_assert_float_eq_tol(r.w[1], 1.0f / 3.0f, 1e-6f);
    ck_assert_int_eq(r.ids[2], 1);
    ck_assert_int_eq(r.ids[3], 2);
    ck_assert_float_eq_tol(r.w[2], 0.5f, 1e-6f);
    ck_assert_int_eq(r.ids[4], 0);
    ck_assert_int_eq(r.ids[5], 1);
    ck_assert_float_eq_tol(r.w[4], 0.5f, 1e-6f);
    routed_free(&r);

    r = route("topk:k=2,renorm=0,scale=2", &tc, &info);
    ck_assert_float_eq_tol(r.w[0], 1.0f, 1e-6f); /* 2 * 1/2 */
    ck_assert_float_eq_tol(r.w[1], 0.5f, 1e-6f); /* 2 * 1/4 */
    ck_assert_float_eq_tol(r.w[4], 0.5f, 1e-6f); /* 2 * 1/4 */
    routed_free(&r);

    /* k = E orders every expert by (-z, index) */
    r = route("topk:k=4,renorm=0", &tc, &info);
    const int32_t want0[] = {2, 1, 0, 3}, want1[] = {1, 2, 3, 0}, want2[] = {0, 1, 2, 3};
    for (int j = 0; j < 4; j++) {
        ck_assert_int_eq(r.ids[j], want0[j]);
        ck_assert_int_eq(r.ids[4 + j], want1[j]);
        ck_assert_int_eq(r.ids[8 + j], want2[j]);
        ck_assert_float_eq_tol(r.w[8 + j], 0.25f, 1e-6f);
    }
    routed_free(&r);
    rs_test_chunk_free(&tc);
}
END_TEST

START_TEST(topk_rejects_k_above_e)
{
    rs_router_spec spec;
    rs_error err = {{0}};
    ck_assert_int_eq(rs_router_spec_parse(&spec, "topk:k=5", &err), 0);
    rs_trace_info info = info_for(1, 4);
    rs_router_setup setup = {.trace = &info, .batch_tokens = 16};
    rs_router_shape shape = {0};
    void *state = NULL;
    ck_assert_int_eq(spec.type->create(&state, &shape, &spec.params, &setup, &err), -1);
    ck_assert_str_eq(err.msg, "router topk: parameter k=5 exceeds num_experts=4 of mem.h5");
    rs_router_spec_free(&spec);
}
END_TEST

START_TEST(random_is_keyed_by_token_not_chunk)
{
    enum { N = 2000, L = 3, E = 16 };
    float *z = calloc((size_t)N * L * E, sizeof *z);
    rs_trace_info info = info_for(L, E);
    rs_test_chunk whole, first, second;
    rs_test_chunk_init(&whole, 0, N, L, E, z);
    rs_test_chunk_init(&first, 0, 700, L, E, z);
    rs_test_chunk_init(&second, 700, N - 700, L, E, z);
    routed a = route("random:k=3,seed=11", &whole, &info);
    routed b1 = route("random:k=3,seed=11", &first, &info);
    routed b2 = route("random:k=3,seed=11", &second, &info);
    routed c = route("random:k=3,seed=12", &whole, &info);
    size_t split = (size_t)700 * L * 3;
    ck_assert_mem_eq(a.ids, b1.ids, split * sizeof *a.ids);
    ck_assert_mem_eq(a.ids + split, b2.ids, ((size_t)N * L * 3 - split) * sizeof *a.ids);
    ck_assert_int_ne(memcmp(a.ids, c.ids, (size_t)N * L * 3 * sizeof *a.ids), 0);
    /* distinct, in range, weight 1/3; counts near uniform (expected 1125 per expert) */
    long counts[E] = {0};
    for (int t = 0; t < N * L; t++) {
        const int32_t *row = a.ids + (size_t)t * 3;
        ck_assert(row[0] != row[1] && row[0] != row[2] && row[1] != row[2]);
        for (int j = 0; j < 3; j++) {
            ck_assert(row[j] >= 0 && row[j] < E);
            ck_assert_float_eq_tol(a.w[(size_t)t * 3 + j], 1.0f / 3.0f, 1e-7f);
            counts[row[j]]++;
        }
    }
    for (int e = 0; e < E; e++)
        ck_assert_msg(labs(counts[e] - 1125) < 150, "expert %d drawn %ld times", e, counts[e]);
    routed_free(&a);
    routed_free(&b1);
    routed_free(&b2);
    routed_free(&c);
    rs_test_chunk_free(&whole);
    rs_test_chunk_free(&first);
    rs_test_chunk_free(&second);
    free(z);
}
END_TEST

START_TEST(random_k_equals_e_is_a_permutation)
{
    float z[5 * 6] = {0};
    rs_trace_info info = info_for(1, 6);
    rs_test_chunk tc;
    rs_test_chunk_init(&tc, 40, 5, 1, 6, z);
    routed r = route("random:k=6,seed=1", &tc, &info);
    for (int t = 0; t < 5; t++) {
        int seen = 0;
        for (int j = 0; j < 6; j++)
            seen |= 1 << r.ids[t * 6 + j];
        ck_assert_int_eq(seen, 63);
    }
    routed_free(&r);
    rs_test_chunk_free(&tc);
}
END_TEST

START_TEST(replay_copies_recorded_rows)
{
    /* two tokens, one layer, K = 3 with -1 padding (dynamic k) */
    const int32_t rec[] = {4, 1, -1, 2, 0, 3};
    const float rec_w[] = {0.7f, 0.3f, 0.0f, 0.5f, 0.25f, 0.25f};
    float z[2 * 5] = {0};
    rs_trace_info info = info_for(1, 5);
    info.recorded_k = 3;
    rs_test_chunk tc;
    rs_test_chunk_init(&tc, 0, 2, 1, 5, z);
    tc.chunk.recorded_k = 3;
    tc.chunk.recorded_ids = rec;
    routed r = route("replay", &tc, &info);
    ck_assert_int_eq(r.kmax, 3);
    ck_assert_mem_eq(r.ids, rec, sizeof rec);
    /* without recorded weights: 1/k_t over the valid ids */
    ck_assert_float_eq_tol(r.w[0], 0.5f, 1e-7f);
    ck_assert_float_eq_tol(r.w[2], 0.0f, 1e-7f);
    ck_assert_float_eq_tol(r.w[3], 1.0f / 3.0f, 1e-7f);
    routed_free(&r);
    tc.chunk.recorded_weights = rec_w;
    r = route("replay", &tc, &info);
    ck_assert_mem_eq(r.w, rec_w, sizeof rec_w);
    routed_free(&r);
    rs_test_chunk_free(&tc);
}
END_TEST

START_TEST(replay_needs_recorded_topk)
{
    rs_router_spec spec;
    rs_error err = {{0}};
    ck_assert_int_eq(rs_router_spec_parse(&spec, "replay", &err), 0);
    rs_trace_info info = info_for(1, 4);
    rs_router_setup setup = {.trace = &info, .batch_tokens = 16};
    rs_router_shape shape = {0};
    void *state = NULL;
    ck_assert_int_eq(spec.type->create(&state, &shape, &spec.params, &setup, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.msg, "mem.h5: /router/topk_ids: missing dataset"));
    rs_router_spec_free(&spec);
}
END_TEST

START_TEST(registry_lists_descriptors_completely)
{
    ck_assert_int_ge(rs_router_count(), 3);
    for (int i = 0; i < rs_router_count(); i++) {
        const rs_router_type *t = rs_router_at(i);
        ck_assert(t->name && t->summary && t->source);
        ck_assert_ptr_eq(rs_router_find(t->name), t);
        if (t->flags & RS_ROUTER_PRESET) {
            /* a preset runs another router and has no functions of its own */
            const rs_router_type *base = t->preset_of ? rs_router_find(t->preset_of) : NULL;
            ck_assert_msg(base && !(base->flags & RS_ROUTER_PRESET), "preset %s: base '%s' missing", t->name,
                          t->preset_of ? t->preset_of : "(none)");
            ck_assert(!t->create && !t->route_layer && !t->destroy);
            continue;
        }
        ck_assert_msg(t->create && t->route_layer && t->destroy && t->formula, "router %s is incomplete", t->name);
        for (int j = 0; j < t->num_params; j++) {
            /* every default must itself be a valid value */
            rs_params p;
            rs_error err = {{0}};
            ck_assert_msg(rs_params_init(&p, t->params, t->num_params, t->name, &err) == 0, "%s", err.msg);
            rs_params_free(&p);
        }
    }
    ck_assert_ptr_null(rs_router_find("no-such-router"));
    rs_error err = {{0}};
    ck_assert_int_eq(rs_router_register(rs_router_find("topk"), &err), -1);
    ck_assert_str_eq(err.msg, "router 'topk' is already registered");
}
END_TEST

Suite *routers_suite(void)
{
    Suite *s = suite_create("routers");
    TCase *tc = tcase_create("routers");
    tcase_add_test(tc, topk_hand_cases);
    tcase_add_test(tc, topk_rejects_k_above_e);
    tcase_add_test(tc, random_is_keyed_by_token_not_chunk);
    tcase_add_test(tc, random_k_equals_e_is_a_permutation);
    tcase_add_test(tc, replay_copies_recorded_rows);
    tcase_add_test(tc, replay_needs_recorded_topk);
    tcase_add_test(tc, registry_lists_descriptors_completely);
    suite_add_tcase(s, tc);
    return s;
}
