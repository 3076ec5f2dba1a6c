/* The capacity stage (routers/common/capacity.c) applied directly to hand-written
 * decisions, without the engine; part of the routers_token_choice suite.
 * Every expected row is worked out by hand in the comments:
 * C = ceil(capacity_factor * group_tokens * k / E), at least min_capacity. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "routesim/rng.h"
#include "routers/common/capacity.h"
#include "tests/test_util.h"

enum { MAX_CELLS = 64 };

/* Decisions of n tokens x L layers x K slots, and the chunk they belong to. */
typedef struct fixture {
    rs_test_chunk tc;
    int n, L, K;
    int32_t ids[MAX_CELLS];
    float w[MAX_CELLS];
    uint8_t dropped[MAX_CELLS];
} fixture;

static void fixture_init(fixture *f, int64_t t0, int n, int L, int E, int K, const int32_t *ids, const float *w)
{
    ck_assert(n * L * K <= MAX_CELLS);
    float *z = calloc((size_t)n * (size_t)L * (size_t)E, sizeof *z);
    rs_test_chunk_init(&f->tc, t0, n, L, E, z);
    free(z);
    f->n = n;
    f->L = L;
    f->K = K;
    memcpy(f->ids, ids, (size_t)(n * L * K) * sizeof *ids);
    memcpy(f->w, w, (size_t)(n * L * K) * sizeof *w);
    memset(f->dropped, 1, sizeof f->dropped); /* stale flags the stage must clear */
}

static rs_capacity capacity_from(const char *list)
{
    rs_params p;
    rs_error err = {{0}};
    ck_assert_msg(rs_params_init(&p, rs_capacity_param_defs, rs_capacity_num_params, "capacity", &err) == 0, "%s",
                  err.msg);
    ck_assert_msg(rs_params_parse_list(&p, list, &err) == 0, "%s", err.msg);
    rs_capacity cap;
    rs_capacity_from_params(&cap, &p);
    rs_params_free(&p);
    return cap;
}

static void apply(fixture *f, const char *list, int layer, const rs_groups *groups)
{
    rs_capacity cap = capacity_from(list);
    ck_assert(cap.enabled);
    rs_decisions dec = {.kmax = f->K, .ids = f->ids, .weights = f->w, .dropped = f->dropped};
    rs_capacity_scratch scratch = {0};
    ck_assert_int_eq(rs_capacity_apply(&cap, &f->tc.chunk, layer, groups, &dec, &scratch), 0);
    rs_capacity_scratch_free(&scratch);
}

/* Layer `layer` of f holds these ids (and, when given, weights and drop flags). */
static void expect(const fixture *f, int layer, const int32_t *ids, const float *w, const uint8_t *dropped)
{
    for (int t = 0; t < f->n; t++) {
        for (int j = 0; j < f->K; j++) {
            int cell = (t * f->L + layer) * f->K + j, i = t * f->K + j;
            ck_assert_msg(f->ids[cell] == ids[i], "token %d slot %d: expert %d, want %d", t, j, f->ids[cell], ids[i]);
            if (w)
                ck_assert_msg(f->w[cell] > w[i] - 1e-6f && f->w[cell] < w[i] + 1e-6f,
                              "token %d slot %d: weight %g, want %g", t, j, f->w[cell], w[i]);
            if (dropped)
                ck_assert_msg(f->dropped[cell] == dropped[i], "token %d slot %d: dropped %d, want %d", t, j,
                              f->dropped[cell], dropped[i]);
        }
    }
}

/* E = 4, k = 2, one group of 4 tokens, capacity_factor = 0.5: C = ceil(0.5 * 4 * 2 / 4) = 1. */
static const int32_t four_ids[] = {0, 1, 1, 0, 0, 2, 2, 3};
static const float four_w[] = {.6f, .4f, .7f, .3f, .8f, .2f, .5f, .1f};

START_TEST(position_puts_every_first_choice_before_second_choices)
{
    /* Layer 1 is routed; layer 0 holds the same rows and must stay untouched.
     * rank 1 in token order: t0 -> 0 kept, t1 -> 1 kept, t2 -> 0 full, t3 -> 2 kept;
     * rank 2: t0 -> 1 full, t1 -> 0 full, t2 -> 2 full, t3 -> 3 kept. t1 keeps expert 1
     * although t0 asked for it first (as a second choice): GShard / fairseq top2gating
     * (locations2 += sum(mask1)), flaxformer TokensChooseMaskedRouter (choices k-major). */
    int32_t ids[16];
    float w[16];
    for (int t = 0; t < 4; t++)
        for (int l = 0; l < 2; l++)
            for (int j = 0; j < 2; j++) {
                ids[(t * 2 + l) * 2 + j] = four_ids[t * 2 + j];
                w[(t * 2 + l) * 2 + j] = four_w[t * 2 + j];
            }
    fixture f;
    fixture_init(&f, 0, 4, 2, 4, 2, ids, w);
    rs_test_chunk_groups(&f.tc, RS_GROUP_BATCH, 4);
    apply(&f, "capacity_factor=0.5", 1, f.tc.chunk.groups[RS_GROUP_BATCH]);
    expect(&f, 1, (int32_t[]){0, -1, 1, -1, -1, -1, 2, 3}, (float[]){.6f, 0, .7f, 0, 0, 0, .5f, .1f},
           (uint8_t[]){0, 1, 0, 1, 1, 1, 0, 0});
    expect(&f, 0, four_ids, four_w, NULL);
    for (int t = 0; t < 4; t++) /* layer 0's flags are not the stage's business here */
        ck_assert(f.dropped[(t * 2) * 2] == 1 && f.dropped[(t * 2) * 2 + 1] == 1);
    rs_test_chunk_free(&f.tc);

    /* renorm_after_drop: survivors of a token that lost something sum to 1 (t0, t1: .6 -> 1,
     * .7 -> 1); t3 lost nothing and keeps .5, .1; t2 has nothing left. */
    fixture_init(&f, 0, 4, 1, 4, 2, four_ids, four_w);
    rs_test_chunk_groups(&f.tc, RS_GROUP_BATCH, 4);
    apply(&f, "capacity_factor=0.5,renorm_after_drop=1", 0, f.tc.chunk.groups[RS_GROUP_BATCH]);
    expect(&f, 0, (int32_t[]){0, -1, 1, -1, -1, -1, 2, 3}, (float[]){1, 0, 1, 0, 0, 0, .5f, .1f}, NULL);
    rs_test_chunk_free(&f.tc);
}
END_TEST

START_TEST(probs_keeps_the_heaviest_assignments_per_expert)
{
    /* C = 1 per expert, whatever the rank (Megatron topk_softmax_with_capacity, drop_policy = "probs"):
     * expert 0: t0 .6, t1 .3, t2 .8 -> t2; expert 1: t0 .4, t1 .7 -> t1; expert 2: t2 .2, t3 .5 -> t3;
     * expert 3: t3 .1 -> t3. */
    fixture f;
    fixture_init(&f, 0, 4, 1, 4, 2, four_ids, four_w);
    rs_test_chunk_groups(&f.tc, RS_GROUP_BATCH, 4);
    apply(&f, "capacity_factor=0.5,drop_policy=probs", 0, f.tc.chunk.groups[RS_GROUP_BATCH]);
    expect(&f, 0, (int32_t[]){-1, -1, 1, -1, 0, -1, 2, 3}, NULL, (uint8_t[]){1, 1, 0, 1, 0, 1, 0, 0});
    rs_test_chunk_free(&f.tc);

    /* A second choice may beat another token's first choice: E = 2, C = ceil(0.5 * 2 * 2 / 2) = 1;
     * t0 = (0 .6, 1 .4), t1 = (1 .35, 0 .3): probs keeps t0 on both; position keeps both firsts. */
    const int32_t ids[] = {0, 1, 1, 0};
    const float w[] = {.6f, .4f, .35f, .3f};
    fixture_init(&f, 0, 2, 1, 2, 2, ids, w);
    rs_test_chunk_groups(&f.tc, RS_GROUP_BATCH, 2);
    apply(&f, "capacity_factor=0.5,drop_policy=probs", 0, f.tc.chunk.groups[RS_GROUP_BATCH]);
    expect(&f, 0, (int32_t[]){0, 1, -1, -1}, NULL, NULL);
    rs_test_chunk_free(&f.tc);
    fixture_init(&f, 0, 2, 1, 2, 2, ids, w);
    rs_test_chunk_groups(&f.tc, RS_GROUP_BATCH, 2);
    apply(&f, "capacity_factor=0.5,drop_policy=priority", 0, f.tc.chunk.groups[RS_GROUP_BATCH]);
    expect(&f, 0, (int32_t[]){0, -1, 1, -1}, NULL, NULL);
    rs_test_chunk_free(&f.tc);

    /* equal weights: the earlier token wins (3 tokens on expert 0, C = ceil(0.5 * 3 / 2) = 1) */
    fixture_init(&f, 0, 3, 1, 2, 1, (int32_t[]){0, 0, 0}, (float[]){.5f, .5f, .5f});
    rs_test_chunk_groups(&f.tc, RS_GROUP_BATCH, 3);
    apply(&f, "capacity_factor=0.5,drop_policy=probs", 0, f.tc.chunk.groups[RS_GROUP_BATCH]);
    expect(&f, 0, (int32_t[]){0, -1, -1}, NULL, NULL);
    rs_test_chunk_free(&f.tc);
}
END_TEST

START_TEST(priority_orders_tokens_by_their_top1_weight)
{
    /* k = 1, E = 2, C = ceil(0.5 * 3 / 2) = 1: t0 -> 0 (.5), t1 -> 0 (.9), t2 -> 1 (.7).
     * position keeps t0; priority (V-MoE BPR: tokens sorted by top-1 weight, stable) keeps t1. */
    const int32_t ids[] = {0, 0, 1};
    const float w[] = {.5f, .9f, .7f};
    fixture f;
    fixture_init(&f, 0, 3, 1, 2, 1, ids, w);
    rs_test_chunk_groups(&f.tc, RS_GROUP_BATCH, 3);
    apply(&f, "capacity_factor=0.5", 0, f.tc.chunk.groups[RS_GROUP_BATCH]);
    expect(&f, 0, (int32_t[]){0, -1, 1}, NULL, NULL);
    rs_test_chunk_free(&f.tc);
    fixture_init(&f, 0, 3, 1, 2, 1, ids, w);
    rs_test_chunk_groups(&f.tc, RS_GROUP_BATCH, 3);
    apply(&f, "capacity_factor=0.5,drop_policy=priority", 0, f.tc.chunk.groups[RS_GROUP_BATCH]);
    expect(&f, 0, (int32_t[]){-1, 0, 1}, (float[]){0, .9f, .7f}, (uint8_t[]){1, 0, 0});
    rs_test_chunk_free(&f.tc);

    /* equal top-1 weights keep token order */
    fixture_init(&f, 0, 3, 1, 2, 1, (int32_t[]){0, 0, 1}, (float[]){.8f, .8f, .7f});
    rs_test_chunk_groups(&f.tc, RS_GROUP_BATCH, 3);
    apply(&f, "capacity_factor=0.5,drop_policy=priority", 0, f.tc.chunk.groups[RS_GROUP_BATCH]);
    expect(&f, 0, (int32_t[]){0, -1, 1}, NULL, NULL);
    rs_test_chunk_free(&f.tc);
}
END_TEST

START_TEST(random_keeps_the_largest_keyed_draws)
{
    /* 8 tokens (global 50..57) on expert 0 of E = 2, k = 1, C = ceil(0.75 * 8 / 2) = 3. The stage
     * keeps, per expert, the C assignments with the largest draw of the keyed stream
     * (drop_seed, layer, token * k + slot) (DeepSpeed top1gating, use_rts). */
    const int32_t ids[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    const float w[8] = {.5f, .5f, .5f, .5f, .5f, .5f, .5f, .5f};
    int differ = 0, first_mask = -1;
    for (uint64_t seed = 1; seed <= 4; seed++) {
        double key[8];
        for (int t = 0; t < 8; t++) {
            rs_rng rng = rs_rng_keyed(seed, 0, (uint64_t)(50 + t));
            key[t] = rs_rng_uniform(&rng);
        }
        int mask = 0;
        for (int t = 0; t < 8; t++) {
            int above = 0;
            for (int u = 0; u < 8; u++)
                above += key[u] > key[t];
            mask |= (above < 3) << t;
        }
        fixture f;
        fixture_init(&f, 50, 8, 1, 2, 1, ids, w);
        rs_test_chunk_groups(&f.tc, RS_GROUP_BATCH, 64); /* batches count from token 0: [0, 64) */
        char list[96];
        snprintf(list, sizeof list, "capacity_factor=0.75,drop_policy=random,drop_seed=%d", (int)seed);
        apply(&f, list, 0, f.tc.chunk.groups[RS_GROUP_BATCH]);
        int got = 0;
        for (int t = 0; t < 8; t++)
            got |= (f.ids[t] == 0) << t;
        ck_assert_int_eq(got, mask);
        ck_assert_int_eq(__builtin_popcount((unsigned)got), 3);
        differ |= first_mask >= 0 && mask != first_mask;
        first_mask = first_mask < 0 ? mask : first_mask;
        rs_test_chunk_free(&f.tc);
    }
    ck_assert_msg(differ, "drop_seed should change which tokens are dropped");
}
END_TEST

START_TEST(capacity_zero_one_and_min_capacity)
{
    /* k = 1, E = 2, 4 tokens: experts 0, 1, 0, 0 */
    const int32_t ids[] = {0, 1, 0, 0};
    const float w[] = {.9f, .8f, .7f, .6f};
    fixture f;
    fixture_init(&f, 0, 4, 1, 2, 1, ids, w);
    rs_test_chunk_groups(&f.tc, RS_GROUP_BATCH, 4);
    apply(&f, "capacity_factor=0", 0, f.tc.chunk.groups[RS_GROUP_BATCH]); /* C = 0: everything dropped */
    expect(&f, 0, (int32_t[]){-1, -1, -1, -1}, (float[]){0, 0, 0, 0}, (uint8_t[]){1, 1, 1, 1});
    rs_test_chunk_free(&f.tc);

    fixture_init(&f, 0, 4, 1, 2, 1, ids, w);
    rs_test_chunk_groups(&f.tc, RS_GROUP_BATCH, 4);
    apply(&f, "capacity_factor=0.5", 0, f.tc.chunk.groups[RS_GROUP_BATCH]); /* C = ceil(0.5 * 4 / 2) = 1 */
    expect(&f, 0, (int32_t[]){0, 1, -1, -1}, NULL, (uint8_t[]){0, 0, 1, 1});
    rs_test_chunk_free(&f.tc);

    fixture_init(&f, 0, 4, 1, 2, 1, ids, w);
    rs_test_chunk_groups(&f.tc, RS_GROUP_BATCH, 4);
    apply(&f, "capacity_factor=0.1,min_capacity=2", 0, f.tc.chunk.groups[RS_GROUP_BATCH]); /* max(1, 2) */
    expect(&f, 0, (int32_t[]){0, 1, 0, -1}, NULL, (uint8_t[]){0, 0, 0, 1});
    rs_test_chunk_free(&f.tc);

    /* C = rounding(x): 1.25 * 6 / 4 = 1.875 and 1.25 * 8 / 4 = 2.5 (round: half away from zero) */
    rs_capacity cap = capacity_from("capacity_factor=1.25");
    ck_assert_int_eq(rs_capacity_of(&cap, 6, 1, 4), 2);
    ck_assert_int_eq(rs_capacity_of(&cap, 8, 1, 4), 3);
    cap = capacity_from("capacity_factor=1.25,capacity_rounding=floor");
    ck_assert_int_eq(rs_capacity_of(&cap, 6, 1, 4), 1);
    ck_assert_int_eq(rs_capacity_of(&cap, 8, 1, 4), 2);
    cap = capacity_from("capacity_factor=1.25,capacity_rounding=round");
    ck_assert_int_eq(rs_capacity_of(&cap, 6, 1, 4), 2);
    ck_assert_int_eq(rs_capacity_of(&cap, 8, 1, 4), 3);
    cap = capacity_from("capacity_factor=1.25,capacity_rounding=floor,min_capacity=2");
    ck_assert_int_eq(rs_capacity_of(&cap, 6, 1, 4), 2);
    /* Megatron get_capacity (moe_utils.py) evaluates ceil((tokens * k / E) * factor): (100 / 10) * 1.1
     * is 11.0 in double, while 1.1 * 100 / 10 rounds to 11.000000000000002 and would give 12 */
    cap = capacity_from("capacity_factor=1.1");
    ck_assert_int_eq(rs_capacity_of(&cap, 50, 2, 10), 11);
}
END_TEST

START_TEST(groups_each_get_their_own_capacity)
{
    /* 6 tokens, all on expert 0 (k = 1, E = 2), capacity_factor = 1: C = ceil(group_tokens / 2). */
    const int32_t ids[6] = {0, 0, 0, 0, 0, 0};
    const float w[6] = {.5f, .5f, .5f, .5f, .5f, .5f};
    const int lengths[] = {2, 4};
    fixture f;
    /* group = sequence [t0 t1] [t2..t5]: C = 1, 2 -> t0, t2, t3 */
    fixture_init(&f, 0, 6, 1, 2, 1, ids, w);
    rs_test_chunk_sequences(&f.tc, lengths, 2);
    rs_test_chunk_groups(&f.tc, RS_GROUP_SEQUENCE, 6);
    apply(&f, "capacity_factor=1,group=sequence", 0, f.tc.chunk.groups[RS_GROUP_SEQUENCE]);
    expect(&f, 0, (int32_t[]){0, -1, 0, 0, -1, -1}, NULL, NULL);
    rs_test_chunk_free(&f.tc);
    /* group = batch of 3 [t0 t1 t2] [t3 t4 t5]: C = 2 each -> t0, t1, t3, t4 */
    fixture_init(&f, 0, 6, 1, 2, 1, ids, w);
    rs_test_chunk_sequences(&f.tc, lengths, 2);
    rs_test_chunk_groups(&f.tc, RS_GROUP_BATCH, 3);
    apply(&f, "capacity_factor=1", 0, f.tc.chunk.groups[RS_GROUP_BATCH]);
    expect(&f, 0, (int32_t[]){0, 0, -1, 0, 0, -1}, NULL, NULL);
    rs_test_chunk_free(&f.tc);
    /* group = step (both sequences in one batch of 6): steps [t0 t2] [t1 t3] [t4] [t5], C = 1 each;
     * the first token of each step in the step's order keeps -> t0, t1, t4, t5 */
    fixture_init(&f, 0, 6, 1, 2, 1, ids, w);
    rs_test_chunk_sequences(&f.tc, lengths, 2);
    rs_test_chunk_groups(&f.tc, RS_GROUP_STEP, 6);
    apply(&f, "capacity_factor=1,group=step", 0, f.tc.chunk.groups[RS_GROUP_STEP]);
    expect(&f, 0, (int32_t[]){0, 0, -1, -1, 0, 0}, NULL, NULL);
    rs_test_chunk_free(&f.tc);

    /* An empty group in the middle changes nothing for the others: groups [t0 t1] [] [t2 t3],
     * capacity_factor = 0.5: C = ceil(0.5 * 2 / 2) = 1 -> t0, t2. */
    const int32_t start[] = {0, 2, 2, 4}, tokens[] = {0, 1, 2, 3};
    const rs_groups with_empty = {.count = 3, .start = start, .tokens = tokens};
    fixture_init(&f, 0, 4, 1, 2, 1, ids, w);
    apply(&f, "capacity_factor=0.5", 0, &with_empty);
    expect(&f, 0, (int32_t[]){0, -1, 0, -1}, NULL, (uint8_t[]){0, 1, 0, 1});
    rs_test_chunk_free(&f.tc);
}
END_TEST

TCase *rs_capacity_stage_tcase(void)
{
    TCase *tc = tcase_create("capacity");
    tcase_add_test(tc, position_puts_every_first_choice_before_second_choices);
    tcase_add_test(tc, probs_keeps_the_heaviest_assignments_per_expert);
    tcase_add_test(tc, priority_orders_tokens_by_their_top1_weight);
    tcase_add_test(tc, random_keeps_the_largest_keyed_draws);
    tcase_add_test(tc, capacity_zero_one_and_min_capacity);
    tcase_add_test(tc, groups_each_get_their_own_capacity);
    return tc;
}
