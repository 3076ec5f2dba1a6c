/* The token-choice routers of docs/routers.md section A, called directly on
 * hand-built chunks. Expected ids and weights are computed by hand in the
 * comments (small logits whose softmax / sigmoid / softplus are exact
 * fractions) unless a comment names a reference convention. The capacity
 * stage's cases live in check_capacity_stage.c (same suite). */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "routesim/rng.h"
#include "routesim/router.h"
#include "routers/common/capacity.h"
#include "sim/config/spec.h"
#include "tests/test_util.h"

TCase *rs_capacity_stage_tcase(void);

typedef struct routed {
    int32_t *ids;
    float *w;
    int kmax;
    unsigned needs;
} routed;

static rs_trace_info info_for(int L, int E)
{
    rs_trace_info info = {.path = "mem.h5", .num_layers = L, .num_experts = E, .has_logits = 1, .unit = "token"};
    return info;
}

/* Creates the router of spec_text and routes every layer of the chunk. */
static routed route(const char *spec_text, const rs_test_chunk *tc, const rs_trace_info *info)
{
    rs_router_spec spec;
    rs_error err = {{0}};
    ck_assert_msg(rs_router_spec_parse(&spec, spec_text, &err) == 0, "%s", err.msg);
    rs_router_setup setup = {.trace = info, .batch_tokens = 4096};
    rs_router_shape shape = {.needs = spec.type->needs};
    void *state = NULL;
    ck_assert_msg(spec.type->create(&state, &shape, &spec.params, &setup, &err) == 0, "%s", err.msg);
    routed r = {.kmax = shape.kmax, .needs = shape.needs};
    size_t cells = (size_t)tc->chunk.n * (size_t)tc->chunk.L * (size_t)shape.kmax;
    r.ids = malloc(cells * sizeof *r.ids);
    r.w = malloc(cells * sizeof *r.w);
    ck_assert(r.ids && r.w);
    rs_decisions dec = {.kmax = shape.kmax, .ids = r.ids, .weights = r.w};
    for (int l = 0; l < tc->chunk.L; l++)
        spec.type->route_layer(state, &tc->chunk, l, &dec);
    spec.type->destroy(state);
    rs_router_spec_free(&spec);
    return r;
}

static void routed_free(routed *r)
{
    free(r->ids);
    free(r->w);
}

/* create() must fail with exactly this message. */
static void expect_create_error(const char *spec_text, const rs_trace_info *info, const char *message)
{
    rs_router_spec spec;
    rs_error err = {{0}};
    ck_assert_msg(rs_router_spec_parse(&spec, spec_text, &err) == 0, "%s", err.msg);
    rs_router_setup setup = {.trace = info, .batch_tokens = 16};
    rs_router_shape shape = {.needs = spec.type->needs};
    void *state = NULL;
    ck_assert_int_eq(spec.type->create(&state, &shape, &spec.params, &setup, &err), -1);
    ck_assert_str_eq(err.msg, message);
    rs_router_spec_free(&spec);
}

/* Row `row` of r holds ids want_ids and weights want_w (1e-6). */
static void expect_row(const routed *r, int row, int k, const int32_t *want_ids, const double *want_w)
{
    for (int j = 0; j < k; j++) {
        ck_assert_msg(r->ids[row * r->kmax + j] == want_ids[j], "row %d slot %d: expert %d, want %d", row, j,
                      r->ids[row * r->kmax + j], want_ids[j]);
        ck_assert_msg(fabs(r->w[row * r->kmax + j] - want_w[j]) < 1e-6, "row %d slot %d: weight %.9g, want %.9g",
                      row, j, r->w[row * r->kmax + j], want_w[j]);
    }
}

/* z = log [1, 2, 4, 1]: p = [1/8, 1/4, 1/2, 1/8]; z = [1, 3, 3, 2]: a tie of
 * experts 1 and 2; z = 0: all equal. */
static const float hand_z[] = {0, 0.69314718f, 1.38629436f, 0, 1, 3, 3, 2, 0, 0, 0, 0};

START_TEST(pnorm_topk_hand_cases)
{
    /* convention: HF modeling_dbrx DbrxRouter.forward (top-k of the softmax / torch.norm(p)) */
    rs_test_chunk tc;
    rs_test_chunk_init(&tc, 0, 3, 1, 4, hand_z);
    rs_trace_info info = info_for(1, 4);
    /* p = 1 (L1, DBRX): (1/2, 1/4) / (3/4) = (2/3, 1/3); tie: (1/2, 1/2) */
    routed r = route("pnorm_topk:k=2", &tc, &info);
    expect_row(&r, 0, 2, (int32_t[]){2, 1}, (double[]){2.0 / 3, 1.0 / 3});
    expect_row(&r, 1, 2, (int32_t[]){1, 2}, (double[]){0.5, 0.5});
    expect_row(&r, 2, 2, (int32_t[]){0, 1}, (double[]){0.5, 0.5});
    routed_free(&r);
    /* p = 2: ||(1/2, 1/4)||_2 = sqrt(5)/4 -> (2/sqrt 5, 1/sqrt 5); tie: 1/sqrt 2 each */
    r = route("pnorm_topk:k=2,p=2", &tc, &info);
    expect_row(&r, 0, 2, (int32_t[]){2, 1}, (double[]){2 / sqrt(5.0), 1 / sqrt(5.0)});
    expect_row(&r, 1, 2, (int32_t[]){1, 2}, (double[]){M_SQRT1_2, M_SQRT1_2});
    routed_free(&r);
    /* default k = 4 = E: every expert by (-z, index); ||(1/2, 1/4, 1/8, 1/8)||_2 = sqrt(0.34375);
     * all-equal: (1/4) / sqrt(4/16) = 1/2 */
    r = route("pnorm_topk:p=2", &tc, &info);
    ck_assert_int_eq(r.kmax, 4);
    const double l2 = sqrt(0.34375);
    expect_row(&r, 0, 4, (int32_t[]){2, 1, 0, 3}, (double[]){0.5 / l2, 0.25 / l2, 0.125 / l2, 0.125 / l2});
    expect_row(&r, 2, 4, (int32_t[]){0, 1, 2, 3}, (double[]){0.5, 0.5, 0.5, 0.5});
    routed_free(&r);
    rs_test_chunk_free(&tc);
    expect_create_error("pnorm_topk:k=5", &info, "router pnorm_topk: parameter k=5 exceeds num_experts=4 of mem.h5");
}
END_TEST

START_TEST(sigmoid_topk_hand_cases)
{
    /* convention: HF modeling_llama4 Llama4Router.forward (topk of the logits, sigmoid of those) */
    /* z = [0, ln 3, -ln 3, ln 3]: s = [1/2, 3/4, 1/4, 3/4]; second token all -ln 3: s = 1/4 */
    const float z[] = {0, 1.09861229f, -1.09861229f, 1.09861229f, -1.09861229f, -1.09861229f, -1.09861229f,
                       -1.09861229f};
    rs_test_chunk tc;
    rs_test_chunk_init(&tc, 0, 2, 1, 4, z);
    rs_trace_info info = info_for(1, 4);
    routed r = route("sigmoid_topk", &tc, &info); /* k = 1: the tie 1/3 goes to 1, w = s = 3/4 */
    ck_assert_int_eq(r.kmax, 1);
    expect_row(&r, 0, 1, (int32_t[]){1}, (double[]){0.75});
    expect_row(&r, 1, 1, (int32_t[]){0}, (double[]){0.25});
    routed_free(&r);
    r = route("sigmoid_topk:k=4", &tc, &info); /* k = E, not renormalised */
    expect_row(&r, 0, 4, (int32_t[]){1, 3, 0, 2}, (double[]){0.75, 0.75, 0.5, 0.25});
    routed_free(&r);
    r = route("sigmoid_topk:k=3,renorm=1", &tc, &info); /* (3/4, 3/4, 1/2) / 2 */
    expect_row(&r, 0, 3, (int32_t[]){1, 3, 0}, (double[]){0.375, 0.375, 0.25});
    expect_row(&r, 1, 3, (int32_t[]){0, 1, 2}, (double[]){1.0 / 3, 1.0 / 3, 1.0 / 3});
    routed_free(&r);
    rs_test_chunk_free(&tc);
    expect_create_error("sigmoid_topk:k=5", &info,
                        "router sigmoid_topk: parameter k=5 exceeds num_experts=4 of mem.h5");
}
END_TEST

START_TEST(sparsemixer_hand_cases)
{
    /* convention: HF modeling_phimoe sparsemixer with training = False */
    /* eps = 0.01: expert j stays in a round iff (top - z_j) / max(|z_j|, top) <= 0.02 (HF sparsemixer). */
    const float z[] = {
        2, 1.96875f, 0, -1,            /* 0.03125 / 2 = 0.015625 keeps 1; 2/2, 3/2 mask 2, 3 */
        4, 2, 1.984375f, -3,           /* round 1: 2/4 masks all; round 2 (top 2): 0.015625/2 keeps 2 */
        -1, -1.015625f, -4, -8,        /* negative top: 0.015625 / 1.015625 = 0.0154 keeps 1 */
        0, 3, 3, 1,                    /* tie: e1 = 1, e2 = 2 */
        0, 0, 0, 0,                    /* (0 - 0) / max(0, 0) is 0/0: not masked (NaN > x is false) */
    };
    rs_test_chunk tc;
    rs_test_chunk_init(&tc, 0, 5, 1, 4, z);
    rs_trace_info info = info_for(1, 4);
    routed r = route("sparsemixer", &tc, &info);
    ck_assert_int_eq(r.kmax, 2);
    /* 1: w1 = 1 / (1 + e^-0.03125); round 2 top 1.96875: 0 excluded, 2 and 3 masked -> w2 = 1 */
    expect_row(&r, 0, 2, (int32_t[]){0, 1}, (double[]){1 / (1 + exp(-0.03125)), 1.0});
    /* 2: w1 = 1; w2 = 1 / (1 + e^-0.015625); -3 is masked: 5 / max(3, 2) */
    expect_row(&r, 1, 2, (int32_t[]){0, 1}, (double[]){1.0, 1 / (1 + exp(-0.015625))});
    expect_row(&r, 2, 2, (int32_t[]){0, 1}, (double[]){1 / (1 + exp(-0.015625)), 1.0});
    /* 4: round 1 keeps 1 and 2 (ratio 0) -> 1/2; round 2 top 3: 0 masked (3/3), 3 masked (2/3) */
    expect_row(&r, 3, 2, (int32_t[]){1, 2}, (double[]){0.5, 1.0});
    /* 5: nothing masked: softmax over 4 then over the 3 others */
    expect_row(&r, 4, 2, (int32_t[]){0, 1}, (double[]){0.25, 1.0 / 3});
    routed_free(&r);
    /* eps large enough that nothing is masked: plain softmax at e1, then over the rest at e2.
     * token 1: p = (1, 2, 4, 1) / 8 -> 1/2; without expert 2: 2 / (1 + 2 + 1) = 1/2 */
    rs_test_chunk_free(&tc);
    rs_test_chunk_init(&tc, 0, 1, 1, 4, hand_z);
    r = route("sparsemixer:eps=100", &tc, &info);
    expect_row(&r, 0, 2, (int32_t[]){2, 1}, (double[]){0.5, 0.5});
    routed_free(&r);
    rs_test_chunk_free(&tc);
    rs_trace_info one = info_for(1, 1);
    expect_create_error("sparsemixer", &one, "router sparsemixer: picks 2 experts, but mem.h5 has num_experts=1");
}
END_TEST

START_TEST(switch_hand_cases_and_capacity_default)
{
    /* convention: HF modeling_switch_transformers SwitchTransformersTop1Router.forward */
    rs_test_chunk tc;
    rs_test_chunk_init(&tc, 0, 3, 1, 4, hand_z);
    rs_trace_info info = info_for(1, 4);
    routed r = route("switch", &tc, &info);
    ck_assert_int_eq(r.kmax, 1);
    ck_assert_int_eq(r.ids[0], 2);
    ck_assert_float_eq_tol(r.w[0], 0.5f, 1e-7f); /* max p = 4/8 */
    ck_assert_int_eq(r.ids[1], 1);                /* tie 1/2 -> 1; p = e^3 / (e + 2 e^3 + e^2) */
    ck_assert_float_eq_tol(r.w[1], (float)(exp(3) / (exp(1) + 2 * exp(3) + exp(2))), 1e-6f);
    ck_assert_int_eq(r.ids[2], 0);
    ck_assert_float_eq_tol(r.w[2], 0.25f, 1e-7f);
    routed_free(&r);

    /* The capacity stage is on by default: capacity_factor = 1, position. Four
     * tokens that all pick expert 2, one group of 4: C = ceil(1 * 4 * 1 / 4) = 1,
     * so only the first keeps it. */
    const float same[] = {0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0};
    rs_test_chunk all2;
    rs_test_chunk_init(&all2, 0, 4, 1, 4, same);
    rs_test_chunk_groups(&all2, RS_GROUP_BATCH, 4);
    rs_router_spec spec;
    rs_error err = {{0}};
    ck_assert_int_eq(rs_router_spec_parse(&spec, "switch", &err), 0);
    rs_capacity cap;
    rs_capacity_from_params(&cap, &spec.params);
    ck_assert(cap.enabled && cap.factor == 1.0 && cap.policy == RS_DROP_POSITION && !cap.renorm);
    rs_router_spec_free(&spec);
    r = route("switch", &all2, &info);
    uint8_t dropped[4];
    rs_decisions dec = {.kmax = 1, .ids = r.ids, .weights = r.w, .dropped = dropped};
    rs_capacity_scratch scratch = {0};
    ck_assert_int_eq(rs_capacity_apply(&cap, &all2.chunk, 0, all2.chunk.groups[RS_GROUP_BATCH], &dec, &scratch), 0);
    const int32_t want[] = {2, -1, -1, -1};
    ck_assert_mem_eq(r.ids, want, sizeof want);
    ck_assert(dropped[0] == 0 && dropped[1] && dropped[2] && dropped[3]);
    rs_capacity_scratch_free(&scratch);
    routed_free(&r);
    rs_test_chunk_free(&all2);
    rs_test_chunk_free(&tc);
}
END_TEST

START_TEST(gshard_top2_all_policy_hand_cases)
{
    /* convention: fairseq moe/top2gate.py top2gating (argmax, then argmax of the rest) */
    rs_test_chunk tc;
    rs_test_chunk_init(&tc, 0, 3, 1, 4, hand_z);
    rs_trace_info info = info_for(1, 4);
    routed r = route("gshard_top2:policy=all", &tc, &info);
    ck_assert_int_eq(r.kmax, 2);
    expect_row(&r, 0, 2, (int32_t[]){2, 1}, (double[]){2.0 / 3, 1.0 / 3}); /* (1/2, 1/4) / (3/4) */
    expect_row(&r, 1, 2, (int32_t[]){1, 2}, (double[]){0.5, 0.5});
    expect_row(&r, 2, 2, (int32_t[]){0, 1}, (double[]){0.5, 0.5});
    routed_free(&r);
    rs_test_chunk_free(&tc);
    /* dropless by default; renorm_after_drop defaults to 1 for when capacity_factor is given */
    rs_router_spec spec;
    rs_error err = {{0}};
    ck_assert_int_eq(rs_router_spec_parse(&spec, "gshard_top2", &err), 0);
    rs_capacity cap;
    rs_capacity_from_params(&cap, &spec.params);
    ck_assert(!cap.enabled && cap.renorm && cap.policy == RS_DROP_POSITION);
    ck_assert_str_eq(rs_param_str(&spec.params, "policy"), "random");
    rs_router_spec_free(&spec);
    rs_trace_info one = info_for(1, 1);
    expect_create_error("gshard_top2", &one, "router gshard_top2: picks 2 experts, but mem.h5 has num_experts=1");
}
END_TEST

START_TEST(gshard_top2_random_policy_keeps_second_with_probability_2p)
{
    /* convention: fairseq top2gating, second_expert_policy = "random": (2 * gates2_s) > rand */
    /* p = (4, 2, 1, 1) / 8: e1 = 0, e2 = 1, p_e2 = 1/4, so e2 stays iff U < 1/2
     * where U is the first draw of the keyed stream (seed, layer, token).
     * Kept: w = (1/2, 1/4) / (3/4); dropped: expert -1 and w1 = 1. */
    enum { N = 4000 };
    float *z = malloc((size_t)N * 4 * sizeof *z);
    for (int t = 0; t < N; t++) {
        z[t * 4 + 0] = 1.38629436f;
        z[t * 4 + 1] = 0.69314718f;
        z[t * 4 + 2] = 0;
        z[t * 4 + 3] = 0;
    }
    rs_test_chunk whole, head, tail;
    rs_test_chunk_init(&whole, 100, N, 1, 4, z);
    rs_test_chunk_init(&head, 100, 1500, 1, 4, z);
    rs_test_chunk_init(&tail, 1600, N - 1500, 1, 4, z);
    rs_trace_info info = info_for(1, 4);
    routed a = route("gshard_top2:seed=7", &whole, &info);
    routed b1 = route("gshard_top2:seed=7", &head, &info);
    routed b2 = route("gshard_top2:seed=7", &tail, &info);
    routed c = route("gshard_top2:seed=8", &whole, &info);
    /* the same decisions whatever the chunking; another seed gives others */
    ck_assert_mem_eq(a.ids, b1.ids, 1500 * 2 * sizeof *a.ids);
    ck_assert_mem_eq(a.ids + 1500 * 2, b2.ids, (N - 1500) * 2 * sizeof *a.ids);
    ck_assert_int_ne(memcmp(a.ids, c.ids, N * 2 * sizeof *a.ids), 0);
    int kept = 0;
    for (int t = 0; t < N; t++) {
        rs_rng rng = rs_rng_keyed(7, 0, (uint64_t)(100 + t));
        int want_keep = 2.0 * whole.probs[t * 4 + 1] > rs_rng_uniform(&rng);
        ck_assert_int_eq(a.ids[2 * t], 0);
        ck_assert_int_eq(a.ids[2 * t + 1], want_keep ? 1 : -1);
        ck_assert_float_eq_tol(a.w[2 * t], (want_keep ? 2.0f / 3.0f : 1.0f), 1e-6f);
        ck_assert_float_eq_tol(a.w[2 * t + 1], (want_keep ? 1.0f / 3.0f : 0.0f), 1e-6f);
        kept += want_keep;
    }
    ck_assert_msg(abs(kept - N / 2) < 200, "second expert kept %d times of %d, expected about half", kept, N);
    routed_free(&a);
    routed_free(&b1);
    routed_free(&b2);
    routed_free(&c);
    rs_test_chunk_free(&whole);
    rs_test_chunk_free(&head);
    rs_test_chunk_free(&tail);
    /* p_e2 >= 1/2 keeps e2 always: E = 2, z = 0 -> p_e2 = 1/2 and U < 1 */
    float *flat = calloc((size_t)N * 2, sizeof *flat);
    rs_test_chunk two;
    rs_test_chunk_init(&two, 0, N, 1, 2, flat);
    rs_trace_info info2 = info_for(1, 2);
    routed d = route("gshard_top2:seed=3", &two, &info2);
    for (int t = 0; t < N; t++)
        ck_assert(d.ids[2 * t] == 0 && d.ids[2 * t + 1] == 1);
    routed_free(&d);
    rs_test_chunk_free(&two);
    free(flat);
    free(z);
}
END_TEST

START_TEST(gshard_top2_sampling_policy_follows_softmax_of_the_rest)
{
    /* convention: fairseq top2gating / DeepSpeed top2gating, logits + gumbel_rsample for e2 */
    /* z = (5, ln 3, 0, 0): e1 = 0 always; Gumbel-max over the rest picks expert 1
     * with probability 3 / (3 + 1 + 1) = 0.6 and 2, 3 with 0.2 each. Weights use
     * the unnoised p: w = (p0, p_e2) / (p0 + p_e2). */
    enum { N = 5000 };
    float *z = malloc((size_t)N * 4 * sizeof *z);
    for (int t = 0; t < N; t++) {
        z[t * 4 + 0] = 5;
        z[t * 4 + 1] = 1.09861229f;
        z[t * 4 + 2] = 0;
        z[t * 4 + 3] = 0;
    }
    rs_test_chunk tc;
    rs_test_chunk_init(&tc, 0, N, 1, 4, z);
    rs_trace_info info = info_for(1, 4);
    routed a = route("gshard_top2:policy=sampling,seed=11", &tc, &info);
    routed b = route("gshard_top2:policy=sampling,seed=11", &tc, &info);
    ck_assert_mem_eq(a.ids, b.ids, N * 2 * sizeof *a.ids);
    double e5 = exp(5.0), sum = e5 + 3 + 1 + 1;
    int counts[4] = {0};
    for (int t = 0; t < N; t++) {
        ck_assert_int_eq(a.ids[2 * t], 0);
        int e2 = a.ids[2 * t + 1];
        ck_assert(e2 >= 1 && e2 <= 3);
        counts[e2]++;
        double p2 = (e2 == 1 ? 3.0 : 1.0) / sum, p1 = e5 / sum;
        ck_assert_float_eq_tol(a.w[2 * t], (float)(p1 / (p1 + p2)), 1e-6f);
    }
    ck_assert_msg(abs(counts[1] - 3000) < 150 && abs(counts[2] - 1000) < 120 && abs(counts[3] - 1000) < 120,
                  "second choices %d %d %d, expected about 3000 1000 1000", counts[1], counts[2], counts[3]);
    routed_free(&a);
    routed_free(&b);
    rs_test_chunk_free(&tc);
    free(z);
}
END_TEST

START_TEST(group_limited_hand_cases)
{
    /* convention: DeepSeek-V3 inference/model.py Gate.forward with softmax and no bias (group score
     * amax, -inf outside the kept groups, no renormalisation); vLLM fused_moe grouped_topk */
    /* E = 8 in n_group = 4 groups of 2. z = [0 5 | 4 4 | 1 1 | 4.5 0]: group maxima 5, 4, 1, 4.5
     * -> topk_group = 2 keeps groups 0 and 3; top-3 of {0:0, 1:5, 6:4.5, 7:0} = 1, 6, then the
     * tie 0/7 -> 0. Experts 2 and 3 (z = 4) are out although they beat expert 0.
     * p = e^z / sum e^z: w = 2 p = 0.83598175, 0.50704856, 0.00563280 (computed in double).
     * Second token z = [3 0 | 0 3 | 3 0 | 1 1]: groups 0, 1, 2 tie at 3 -> groups 0 and 1; top-2 = 0, 3. */
    const float z[] = {0, 5, 4, 4, 1, 1, 4.5f, 0, 3, 0, 0, 3, 3, 0, 1, 1};
    rs_test_chunk tc;
    rs_test_chunk_init(&tc, 0, 2, 1, 8, z);
    rs_trace_info info = info_for(1, 8);
    routed r = route("group_limited:n_group=4,topk_group=2,k=3,scale=2", &tc, &info);
    ck_assert_int_eq(r.kmax, 3);
    expect_row(&r, 0, 3, (int32_t[]){1, 6, 0}, (double[]){0.8359817535, 0.5070485645, 0.0056328007});
    ck_assert_int_eq(r.ids[3], 0);
    ck_assert_int_eq(r.ids[4], 3);
    routed_free(&r);
    /* topk_group = n_group keeps every group: plain top-k of p times scale (topk:renorm=0,scale=2) */
    r = route("group_limited:n_group=4,topk_group=4,k=3,scale=2", &tc, &info);
    routed plain = route("topk:k=3,renorm=0,scale=2", &tc, &info);
    ck_assert_mem_eq(r.ids, plain.ids, 6 * sizeof *r.ids);
    ck_assert_mem_eq(r.w, plain.w, 6 * sizeof *r.w);
    routed_free(&r);
    routed_free(&plain);
    rs_test_chunk_free(&tc);
    expect_create_error("group_limited:n_group=3", &info,
                        "router group_limited: n_group=3 does not divide num_experts=8 of mem.h5");
    expect_create_error("group_limited:n_group=4,topk_group=5", &info,
                        "router group_limited: topk_group=5 exceeds n_group=4");
    expect_create_error("group_limited:n_group=4,topk_group=2,k=5", &info,
                        "router group_limited: k=5 exceeds the 4 experts of topk_group=2 groups of 2 "
                        "(num_experts=8 of mem.h5)");
}
END_TEST

START_TEST(deepseek_v3_hand_cases)
{
    /* convention: DeepSeek-V3 inference/model.py Gate.forward with sigmoid and bias */
    /* sigmoid(ln 3) = 3/4, sigmoid(0) = 1/2, sigmoid(-ln 3) = 1/4. E = 8, groups of 2. */
    const float l3 = 1.09861229f;
    const float z[] = {
        l3, 0, 0, 0, -l3, -l3, 0, l3, /* s = .75 .5 .5 .5 .25 .25 .5 .75 */
        0, 0, 0, 0, 0, 0, 0, 0,       /* s = 1/2 everywhere */
    };
    const float bias[] = {0, 0, 0.5f, 0.5f, 0, 0, 0, -0.5f};
    rs_test_chunk tc;
    rs_test_chunk_init(&tc, 0, 2, 1, 8, z);
    tc.chunk.bias = bias;
    rs_trace_info info = info_for(1, 8);
    info.has_bias = 1;
    /* token 0: s' = .75 .5 | 1 1 | .25 .25 | .5 .25: group sums 1.25, 2, .5, .75 -> groups 1, 0;
     * top-3 of s' there = 2, 3 (1.0, tie -> lower first), 0 (.75); expert 7 (s = .75) is out.
     * w = unbiased s (.5, .5, .75) / 1.75 * 2.5 */
    routed r = route("deepseek_v3:n_group=4,topk_group=2,k=3", &tc, &info);
    expect_row(&r, 0, 3, (int32_t[]){2, 3, 0}, (double[]){0.5 / 1.75 * 2.5, 0.5 / 1.75 * 2.5, 0.75 / 1.75 * 2.5});
    routed_free(&r);

    /* Group score is the sum of the top two, not the max: s' = 1 0 | .6 .6 | 0 0 | 0 0 gives
     * sums 1, 1.2, 0, 0 -> topk_group = 1 keeps group 1 (max would keep group 0). */
    const float bias_sum[] = {0.5f, -0.5f, 0.1f, 0.1f, -0.5f, -0.5f, -0.5f, -0.5f};
    tc.chunk.bias = bias_sum;
    r = route("deepseek_v3:n_group=4,topk_group=1,k=2,scale=1", &tc, &info);
    expect_row(&r, 1, 2, (int32_t[]){2, 3}, (double[]){0.5, 0.5});
    routed_free(&r);

    /* Negative biased scores: s' = -.5 -.5 | -.4 -.4 | .8 -1.5 | -1.5 -1.5, sums -1, -.8, -.7, -3
     * -> groups 2, 1; top-3 = 4, 2, 3. Experts of dropped groups never enter (with a 0 fill, as
     * some HF versions do, expert 0 would beat -0.4). */
    const float bias_neg[] = {-1, -1, -0.9f, -0.9f, 0.3f, -2, -2, -2};
    tc.chunk.bias = bias_neg;
    r = route("deepseek_v3:n_group=4,topk_group=2,k=3,scale=3", &tc, &info);
    expect_row(&r, 1, 3, (int32_t[]){4, 2, 3}, (double[]){1.0, 1.0, 1.0});
    routed_free(&r);

    /* n_group = 1: no group step; k = E orders all by s' = 1/2 + b */
    r = route("deepseek_v3:n_group=1,topk_group=1,k=8,scale=1", &tc, &info);
    expect_row(&r, 1, 8, (int32_t[]){4, 2, 3, 0, 1, 5, 6, 7},
               (double[]){0.125, 0.125, 0.125, 0.125, 0.125, 0.125, 0.125, 0.125});
    routed_free(&r);
    rs_test_chunk_free(&tc);

    expect_create_error("deepseek_v3:n_group=3", &info,
                        "router deepseek_v3: n_group=3 does not divide num_experts=8 of mem.h5");
    expect_create_error("deepseek_v3:n_group=8,topk_group=4,k=2", &info,
                        "router deepseek_v3: n_group=8 leaves 1 expert per group of num_experts=8 of mem.h5 "
                        "(a group scores its two largest)");
    expect_create_error("deepseek_v3:n_group=4,topk_group=6", &info,
                        "router deepseek_v3: topk_group=6 exceeds n_group=4");
    expect_create_error("deepseek_v3:n_group=4,topk_group=2,k=5", &info,
                        "router deepseek_v3: k=5 exceeds the 4 experts of topk_group=2 groups of 2 "
                        "(num_experts=8 of mem.h5)");
    info.has_bias = 0;
    expect_create_error("deepseek_v3:n_group=4,topk_group=2,k=2", &info,
                        "router deepseek_v3: mem.h5: /router/bias: missing dataset (the selection bias, "
                        "e_score_correction_bias)");
}
END_TEST

START_TEST(sqrt_softplus_hand_cases)
{
    /* convention: vLLM fused_moe/router/dsv4_topk.py _dsv4_topk_kernel */
    /* s = sqrt(softplus(z)); above z = 20 softplus(z) = z, so z = 25, 36 give s = 5, 6 exactly;
     * softplus(ln(e^a - 1)) = a gives s = 2 and 1/2 for a = 4, 1/4. */
    const float z[] = {25, 36, (float)log(exp(4.0) - 1), (float)log(exp(0.25) - 1)};
    rs_test_chunk tc;
    rs_test_chunk_init(&tc, 0, 1, 1, 4, z);
    rs_trace_info info = info_for(1, 4);
    routed r = route("sqrt_softplus:k=2,scale=1", &tc, &info); /* (6, 5) / 11 */
    expect_row(&r, 0, 2, (int32_t[]){1, 0}, (double[]){6.0 / 11, 5.0 / 11});
    ck_assert(!(r.needs & RS_NEEDS_BIAS));
    routed_free(&r);
    r = route("sqrt_softplus:k=4", &tc, &info); /* default scale 1.5: (6, 5, 2, .5) / 13.5 * 1.5 */
    expect_row(&r, 0, 4, (int32_t[]){1, 0, 2, 3}, (double[]){6 / 9.0, 5 / 9.0, 2 / 9.0, 0.5 / 9.0});
    routed_free(&r);
    /* With a bias: s + b = [6, 6, 6.5, .5]: expert 2 first, then the tie 0/1 -> 0; the
     * weights stay unbiased: (2, 5) / 7 */
    const float bias[] = {1, 0, 4.5f, 0};
    tc.chunk.bias = bias;
    info.has_bias = 1;
    r = route("sqrt_softplus:k=2,scale=1", &tc, &info);
    expect_row(&r, 0, 2, (int32_t[]){2, 0}, (double[]){2.0 / 7, 5.0 / 7});
    ck_assert(r.needs & RS_NEEDS_BIAS);
    routed_free(&r);
    rs_test_chunk_free(&tc);
    expect_create_error("sqrt_softplus:k=5", &info,
                        "router sqrt_softplus: parameter k=5 exceeds num_experts=4 of mem.h5");
}
END_TEST

START_TEST(descriptors_follow_the_spec)
{
    /* routers.md section A: names, parameters with their defaults, flags */
    static const struct {
        const char *name, *params;
        unsigned flags;
    } want[] = {
        {"pnorm_topk", "k=4;p=1", 0},
        {"sigmoid_topk", "k=1;renorm=0", 0},
        {"sparsemixer", "eps=0.01", 0},
        {"switch", "", 0},
        {"gshard_top2", "policy=random;seed=0", RS_ROUTER_STOCHASTIC},
        {"group_limited", "k=6;n_group=8;scale=16;topk_group=3", 0},
        {"deepseek_v3", "k=8;n_group=8;scale=2.5;topk_group=4", 0},
        {"sqrt_softplus", "k=6;scale=1.5", 0},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const rs_router_type *t = rs_router_find(want[i].name);
        ck_assert_msg(t != NULL, "router %s is not registered", want[i].name);
        ck_assert_uint_eq(t->flags, RS_ROUTER_CAUSAL | RS_ROUTER_TOKEN_CHOICE | want[i].flags);
        ck_assert(t->summary && t->formula && t->source && strstr(t->source, "(") != NULL);
        rs_params p;
        rs_error err = {{0}};
        ck_assert_int_eq(rs_params_init(&p, t->params, t->num_params, t->name, &err), 0);
        char text[256];
        rs_params_format(&p, ~0ULL, 0, ";", text, sizeof text);
        ck_assert_str_eq(text, want[i].params);
        rs_params_free(&p);
    }
}
END_TEST

Suite *routers_token_choice_suite(void)
{
    Suite *s = suite_create("routers_token_choice");
    TCase *tc = tcase_create("routers");
    tcase_add_test(tc, pnorm_topk_hand_cases);
    tcase_add_test(tc, sigmoid_topk_hand_cases);
    tcase_add_test(tc, sparsemixer_hand_cases);
    tcase_add_test(tc, switch_hand_cases_and_capacity_default);
    tcase_add_test(tc, gshard_top2_all_policy_hand_cases);
    tcase_add_test(tc, gshard_top2_random_policy_keeps_second_with_probability_2p);
    tcase_add_test(tc, gshard_top2_sampling_policy_follows_softmax_of_the_rest);
    tcase_add_test(tc, group_limited_hand_cases);
    tcase_add_test(tc, deepseek_v3_hand_cases);
    tcase_add_test(tc, sqrt_softplus_hand_cases);
    tcase_add_test(tc, descriptors_follow_the_spec);
    suite_add_tcase(s, tc);
    suite_add_tcase(s, rs_capacity_stage_tcase());
    return s;
}
