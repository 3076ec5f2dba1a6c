/* cache: hand-computed cases of every policy and of the batch rule,
 * libCacheSim's miss counts on top-1 streams, prefetching, skipped tokens
 * and parameter errors. Properties, merges and the CLI's thread/chunk
 * invariance are in check_metrics_cache_props.c. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "routesim/rng.h"
#include "tests/metrics/check_metrics_cache.h"
#include "tests/test_util.h"

/* ---------------------------------------------------------------- harness */

const rs_metric_type *cache_family(void)
{
    const rs_metric_type *t = rs_metric_find("cache");
    ck_assert_ptr_nonnull(t);
    return t;
}

void *cache_acc_try(const cache_stream *s, const char *params, char *msg, size_t msg_size)
{
    static rs_trace_info info;
    info = (rs_trace_info){.path = "c.h5", .num_tokens = s->T, .num_sequences = s->num_seq,
                           .num_layers = s->L, .num_experts = s->E, .recorded_k = s->K, .unit = "token"};
    const rs_metric_type *t = cache_family();
    rs_params p;
    rs_error err = {{0}};
    ck_assert_int_eq(rs_params_init(&p, t->params, t->num_params, t->name, &err), 0);
    ck_assert_msg(rs_params_parse_list(&p, params, &err) == 0, "%s", err.msg);
    rs_metric_setup setup = {.trace = &info, .batch_tokens = 64, .kmax = s->K};
    void *acc = NULL;
    if (t->create(&acc, &p, &setup, &err) != 0) {
        snprintf(msg, msg_size, "%s", err.msg);
        acc = NULL;
    }
    rs_params_free(&p);
    return acc;
}

void *cache_acc(const cache_stream *s, const char *params)
{
    char msg[1024] = "";
    void *acc = cache_acc_try(s, params, msg, sizeof msg);
    ck_assert_msg(acc != NULL, "%s", msg);
    return acc;
}

void cache_feed(void *acc, const cache_stream *s, int from, int to, int chunk)
{
    const rs_metric_type *t = cache_family();
    int32_t *seq_of_token = malloc((size_t)(chunk > 0 ? chunk : 1) * sizeof *seq_of_token);
    ck_assert_ptr_nonnull(seq_of_token);
    for (int a = from; a < to; a += chunk) {
        int b = a + chunk < to ? a + chunk : to;
        int first = 0;
        while (s->offsets[first + 1] <= a)
            first++;
        int last = first;
        while (s->offsets[last + 1] < b)
            last++;
        for (int g = a; g < b; g++) {
            int q = first;
            while (s->offsets[q + 1] <= g)
                q++;
            seq_of_token[g - a] = q - first;
        }
        rs_chunk c = {.t0 = a, .n = b - a, .L = s->L, .E = s->E, .first_seq = first, .num_seq = last - first + 1,
                      .seq_offsets = s->offsets + first, .seq_of_token = seq_of_token,
                      .valid = s->valid ? s->valid + a : NULL};
        rs_decisions d = {.kmax = s->K, .ids = (int32_t *)s->ids + (size_t)a * (size_t)s->L * (size_t)s->K};
        for (int l = 0; l < s->L; l++)
            t->update_layer(acc, &c, l, &d, NULL);
        t->update_chunk(acc, &c, &d, NULL);
    }
    free(seq_of_token);
}

void cache_run(const cache_stream *s, const char *params, rs_metric_sink *sink)
{
    void *acc = cache_acc(s, params);
    cache_feed(acc, s, 0, s->T, s->T);
    memset(sink, 0, sizeof *sink);
    cache_family()->finalize(acc, sink);
    cache_family()->destroy(acc);
}

double cache_value(const rs_metric_sink *sink, const char *output, int layer, const char *extra)
{
    const rs_metric_type *t = cache_family();
    for (int o = 0; o < t->num_outputs; o++)
        if (strcmp(t->outputs[o].name, output) == 0)
            return rs_metric_sink_value(sink, o, layer, extra);
    ck_abort_msg("no output %s", output);
    return NAN;
}

double cache_run_value(const cache_stream *s, const char *params, const char *output, int layer, const char *extra)
{
    rs_metric_sink sink;
    cache_run(s, params, &sink);
    double v = cache_value(&sink, output, layer, extra);
    rs_metric_sink_free(&sink);
    return v;
}

int32_t *cache_random_ids(int T, int L, int E, int K, uint64_t seed)
{
    int32_t *ids = malloc((size_t)T * (size_t)L * (size_t)K * sizeof *ids);
    ck_assert_ptr_nonnull(ids);
    for (int t = 0; t < T; t++) {
        for (int l = 0; l < L; l++) {
            rs_rng r = rs_rng_keyed(seed, (uint64_t)l, (uint64_t)t);
            int32_t *row = ids + ((size_t)t * (size_t)L + (size_t)l) * (size_t)K;
            int k = 1 + (int)rs_rng_below(&r, (uint64_t)K);
            for (int j = 0; j < K; j++)
                row[j] = -1;
            for (int j = 0; j < k; j++) {
                /* favourites: the lower half of the experts, three times as likely */
                int32_t e = (int32_t)rs_rng_below(&r, (uint64_t)E);
                if (rs_rng_uniform(&r) < 0.6)
                    e = (int32_t)rs_rng_below(&r, (uint64_t)(E / 2 > 0 ? E / 2 : 1));
                row[j] = e; /* duplicates allowed: only the first counts */
            }
        }
    }
    return ids;
}

/* ---------------------------------------------------------------- hand cases */

/* One layer, E = 5, k = 2, one sequence of five tokens:
 * (0,1) (1,2) (3,0) (2,4) (1,3). */
static const int32_t five_ids[] = {0, 1, 1, 2, 3, 0, 2, 4, 1, 3};
static const int64_t five_offsets[] = {0, 5};
static const cache_stream five = {.T = 5, .L = 1, .E = 5, .K = 2, .num_seq = 1, .offsets = five_offsets,
                                  .ids = five_ids};

START_TEST(cache_hand_policies)
{
    /* C = 3. By hand (recency/insertion lists oldest first):
     * lru  t0: miss 0,1 -> [0 1]; t1: hit 1, miss 2 (free slot) -> [0 1 2];
     *      t2: hit 0; miss 3 evicts the LRU outside the batch, 1 (0 is the
     *          batch's) -> [2 3 0]; t3: hit 2, miss 4 evicts 3 -> [0 2 4];
     *      t4: miss 1 evicts 0, miss 3 evicts 2 -> hits 3 of 10.
     * fifo t2: 3 evicts 1 (first in outside the batch) -> [0 2 3]; t3: hit 2,
     *      4 evicts 0 -> [2 3 4]; t4: hit 3, 1 evicts 2 -> hits 4 of 10.
     * lfu  (frequency, tick reached): t1: 1=(2,3) 2=(1,4); t2: 3 evicts 2
     *      (1,4), 0 -> (2,6); t3: 2 evicts 3 (1,5), 4 evicts 1 (2,3: reached
     *      2 before 0 did); t4: 1 evicts 2 (1,7), 3 evicts 4 -> hits 2.
     * belady next uses: t2: 3 evicts 1 (next t4) over 2 (t3); t3: 4 evicts 0
     *      (never again); t4: hit 3, 1 evicts 2 (2 and 4 never again: the
     *      lower id) -> hits 4.
     * sch m=2 (the next token counts): t2: 3 evicts 1 (0 uses in t3) over 2
     *      (1 use); t3: 4 evicts 0 (0 uses in t4) over 3; t4: hit 3, 1 evicts
     *      2 (both 0 uses; 2 touched at t3 before 4 arrived) -> hits 4.
     * static pins the 3 most used: 1 (3 uses), then 0, 2, 3 with 2 uses each
     *      -> the lower ids 0, 2 -> hits 3 + 2 + 2 = 7. */
    const struct {
        const char *params;
        double hit_rate;
    } cases[] = {
        {"policy=lru,slots=3", 0.3},          {"policy=fifo,slots=3", 0.4}, {"policy=lfu,slots=3", 0.2},
        {"policy=belady,slots=3", 0.4},       {"policy=sch,slots=3,m=2", 0.4},
        {"policy=sch,slots=3,m=1", 0.3}, /* m = 1 looks at nothing: LRU */
        {"policy=static,slots=3", 0.7},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rs_metric_sink sink;
        cache_run(&five, cases[i].params, &sink);
        double h = cache_value(&sink, "hit_rate", 0, NULL);
        ck_assert_msg(h == cases[i].hit_rate, "%s: hit_rate %.17g, by hand %g", cases[i].params, h,
                      cases[i].hit_rate);
        ck_assert_double_eq(cache_value(&sink, "hit_rate", -1, NULL), h); /* one layer: all = layer 0 */
        /* belady_gap: Belady's 0.4 minus the policy's */
        ck_assert_double_eq_tol(cache_value(&sink, "belady_gap", 0, NULL), 0.4 - h, 1e-15);
        /* warm start: the first accesses of 0, 1 (t0) and 2 (t1) came while
         * fewer than 3 experts were seen; static already hits 0, 1, 2 */
        double warm = cache_value(&sink, "hit_rate_warm", 0, NULL);
        double want = strstr(cases[i].params, "static") ? 0.7 : h + 0.3;
        ck_assert_msg(fabs(warm - want) < 1e-15, "%s: hit_rate_warm %.17g, by hand %g", cases[i].params, warm, want);
        rs_metric_sink_free(&sink);
    }
}
END_TEST

START_TEST(cache_hand_bytes_and_stall)
{
    /* lru C = 3 misses 7 of 10: 7 * 1e9 bytes over a 2 GB/s link = 3.5 s */
    rs_metric_sink sink;
    cache_run(&five, "policy=lru,slots=3,expert_bytes=1e9,link_gbps=2", &sink);
    ck_assert_double_eq(cache_value(&sink, "bytes_moved", 0, NULL), 7e9);
    ck_assert_double_eq(cache_value(&sink, "bytes_moved", -1, NULL), 7e9);
    ck_assert_double_eq(cache_value(&sink, "stall_s", 0, NULL), 3.5);
    rs_metric_sink_free(&sink);
    /* the default expert is Mixtral-8x7B's in bf16: 3 * 4096 * 14336 * 2 bytes */
    cache_run(&five, "policy=lru,slots=3", &sink);
    ck_assert_double_eq(cache_value(&sink, "bytes_moved", 0, NULL), 7.0 * 3 * 4096 * 14336 * 2);
    ck_assert_double_eq(cache_value(&sink, "stall_s", 0, NULL), 7.0 * 3 * 4096 * 14336 * 2 / 25e9);
    rs_metric_sink_free(&sink);
}
END_TEST

START_TEST(cache_hand_batch_larger_than_cache)
{
    /* E = 3, k = 2, C = 1: (0,1) (1,2) (1,0).
     * t0: 0 takes the free slot; 1 finds only the batch's 0 cached: streamed.
     * t1: 1 evicts 0; 2 streamed. t2: hit 1; 0 streamed -> hits 1 of 6.
     * C = 2: t1 hit 1, 2 evicts 0; t2 hit 1, 0 evicts 2 -> 2 of 6.
     * C = 3: everything stays: hits 1 + 2 -> 3 of 6. */
    static const int32_t ids[] = {0, 1, 1, 2, 1, 0};
    static const int64_t offsets[] = {0, 3};
    const cache_stream s = {.T = 3, .L = 1, .E = 3, .K = 2, .num_seq = 1, .offsets = offsets, .ids = ids};
    ck_assert_double_eq(cache_run_value(&s, "slots=1", "hit_rate", 0, NULL), 1.0 / 6);
    ck_assert_double_eq(cache_run_value(&s, "slots=2", "hit_rate", 0, NULL), 2.0 / 6);
    ck_assert_double_eq(cache_run_value(&s, "slots=3", "hit_rate", 0, NULL), 3.0 / 6);
    /* the one-pass curves agree below the batch size too */
    rs_metric_sink sink;
    cache_run(&s, "curve=1", &sink);
    ck_assert_double_eq(cache_value(&sink, "hit_rate_curve", 0, "slots=1"), 1.0 / 6);
    ck_assert_double_eq(cache_value(&sink, "hit_rate_curve", 0, "slots=2"), 2.0 / 6);
    ck_assert_double_eq(cache_value(&sink, "hit_rate_curve", 0, "slots=3"), 3.0 / 6);
    rs_metric_sink_free(&sink);
    cache_run(&s, "policy=belady,curve=1", &sink);
    /* Belady C = 1: t0 keeps 0, t1: 1 evicts 0, t2: hit 1 -> 1 of 6 (the batch rule leaves no choice) */
    ck_assert_double_eq(cache_value(&sink, "hit_rate_curve", 0, "slots=1"), 1.0 / 6);
    ck_assert_double_eq(cache_value(&sink, "hit_rate_curve", 0, "slots=3"), 3.0 / 6);
    rs_metric_sink_free(&sink);
}
END_TEST

START_TEST(cache_hand_padding_duplicates_skipped)
{
    /* E = 3, K = 3, C = 1: t0 (0,-1,0) is one access (0; the repeat is the
     * same expert); t1 is skipped (invalid logits); t2 (-1,-1,-1) has none;
     * t3 (0,1,-1): hit 0, 1 streamed -> hits 1 of 3. */
    static const int32_t ids[] = {0, -1, 0, 1, 2, -1, -1, -1, -1, 0, 1, -1};
    static const uint8_t valid[] = {1, 0, 1, 1};
    static const int64_t offsets[] = {0, 4};
    const cache_stream s = {.T = 4, .L = 1, .E = 3, .K = 3, .num_seq = 1, .offsets = offsets, .ids = ids,
                            .valid = valid};
    rs_metric_sink sink;
    cache_run(&s, "slots=1,expert_bytes=1", &sink);
    ck_assert_double_eq(cache_value(&sink, "hit_rate", 0, NULL), 1.0 / 3);
    ck_assert_double_eq(cache_value(&sink, "bytes_moved", 0, NULL), 2.0);
    rs_metric_sink_free(&sink);
    /* a layer with no accesses at all has no hit rate */
    static const int32_t none[] = {-1, -1, -1};
    static const int64_t one[] = {0, 1};
    const cache_stream empty = {.T = 1, .L = 1, .E = 3, .K = 3, .num_seq = 1, .offsets = one, .ids = none};
    cache_run(&empty, "slots=1", &sink);
    ck_assert(isnan(cache_value(&sink, "hit_rate", 0, NULL)));
    ck_assert(isnan(cache_value(&sink, "hit_rate", -1, NULL)));
    ck_assert_double_eq(cache_value(&sink, "bytes_moved", 0, NULL), 0.0);
    rs_metric_sink_free(&sink);
}
END_TEST

START_TEST(cache_hand_reset_and_global_pool)
{
    /* Two sequences of one layer, E = 3, k = 1: [0 1] [0 1], C = 2.
     * reset=sequence: every access is a cold miss -> 0; reset=never: the
     * second sequence hits both -> 2 of 4. */
    static const int32_t ids[] = {0, 1, 0, 1};
    static const int64_t offsets[] = {0, 2, 4};
    const cache_stream s = {.T = 4, .L = 1, .E = 3, .K = 1, .num_seq = 2, .offsets = offsets, .ids = ids};
    ck_assert_double_eq(cache_run_value(&s, "slots=2", "hit_rate", 0, NULL), 0.0);
    ck_assert_double_eq(cache_run_value(&s, "slots=2,reset=never", "hit_rate", 0, NULL), 0.5);
    /* warm start: 0 and 1 arrive while fewer than 2 are seen -> 1 with the
     * reset; without it only the first sequence is a cold start -> 1 */
    ck_assert_double_eq(cache_run_value(&s, "slots=2", "hit_rate_warm", 0, NULL), 1.0);
    ck_assert_double_eq(cache_run_value(&s, "slots=2,reset=never", "hit_rate_warm", 0, NULL), 1.0);

    /* Global pool, L = 2, E = 2, k = 1, slots = 1 (a pool of 2), objects
     * layer * 2 + expert; tokens (l0, l1): (0,0) (1,0) (1,1).
     * t0: 0 and 2 miss -> [0 2]; t1: 1 evicts 0 (LRU), 2 hits -> [1 2];
     * t2: 1 hits, 3 evicts 2 (touched before 1 was) -> hits: layer 0 1 of
     * 3, layer 1 1 of 3, all 2 of 6. */
    static const int32_t g_ids[] = {0, 0, 1, 0, 1, 1};
    static const int64_t g_offsets[] = {0, 3};
    const cache_stream g = {.T = 3, .L = 2, .E = 2, .K = 1, .num_seq = 1, .offsets = g_offsets, .ids = g_ids};
    rs_metric_sink sink;
    cache_run(&g, "slots=1,scope=global", &sink);
    ck_assert_double_eq(cache_value(&sink, "hit_rate", 0, NULL), 1.0 / 3);
    ck_assert_double_eq(cache_value(&sink, "hit_rate", 1, NULL), 1.0 / 3);
    ck_assert_double_eq(cache_value(&sink, "hit_rate", -1, NULL), 2.0 / 6);
    rs_metric_sink_free(&sink);
    /* layer=all is micro, not the mean of the layers: tokens (0,0) (0,1) (-1,0) */
    static const int32_t u_ids[] = {0, 0, 0, 1, -1, 0};
    const cache_stream u = {.T = 3, .L = 2, .E = 2, .K = 1, .num_seq = 1, .offsets = g_offsets, .ids = u_ids};
    cache_run(&u, "slots=1", &sink);
    /* layer 0: 0 miss, 0 hit -> 1/2; layer 1: 0 miss, 1 miss, 0 miss -> 0;
     * all: 1 hit of 5 accesses = 0.2, where the mean of the layers is 0.25 */
    ck_assert_double_eq(cache_value(&sink, "hit_rate", 0, NULL), 0.5);
    ck_assert_double_eq(cache_value(&sink, "hit_rate", 1, NULL), 0.0);
    ck_assert_double_eq(cache_value(&sink, "hit_rate", -1, NULL), 0.2);
    rs_metric_sink_free(&sink);
}
END_TEST

START_TEST(cache_hand_prefetch)
{
    /* L = 2, E = 3, k = 1, C = 1, one sequence: tokens (l0, l1) = (0,0) (1,2).
     * oracle_next loads each layer-1 batch while layer 0 runs: layer 1
     * hits 2 of 2 and moves 2 prefetched experts; layer 0 has no layer
     * before it: 2 misses. */
    static const int32_t ids[] = {0, 0, 1, 2};
    static const int64_t offsets[] = {0, 2};
    const cache_stream s = {.T = 2, .L = 2, .E = 3, .K = 1, .num_seq = 1, .offsets = offsets, .ids = ids};
    rs_metric_sink sink;
    cache_run(&s, "slots=1,prefetch=oracle_next,expert_bytes=1", &sink);
    ck_assert_double_eq(cache_value(&sink, "hit_rate", 0, NULL), 0.0);
    ck_assert_double_eq(cache_value(&sink, "hit_rate", 1, NULL), 1.0);
    ck_assert_double_eq(cache_value(&sink, "bytes_moved", 0, NULL), 2.0);
    ck_assert_double_eq(cache_value(&sink, "bytes_moved", 1, NULL), 2.0);
    /* Belady without prefetching misses both at layer 1: a negative gap */
    ck_assert_double_eq(cache_value(&sink, "belady_gap", 1, NULL), -1.0);
    rs_metric_sink_free(&sink);
    /* affinity learns 0 -> 0 at t0, and at t1 (layer 0 expert 1, never
     * seen) predicts nothing: layer 1 misses both; prefetched 0 */
    cache_run(&s, "slots=1,prefetch=affinity,expert_bytes=1", &sink);
    ck_assert_double_eq(cache_value(&sink, "hit_rate", 1, NULL), 0.0);
    ck_assert_double_eq(cache_value(&sink, "bytes_moved", 1, NULL), 2.0);
    rs_metric_sink_free(&sink);
    /* (0,0) (0,1) (0,0): at t2 the table has 0 -> 0 once and 0 -> 1 once;
     * the tie goes to the lower id, 0: prefetched (1 was cached) and hit */
    static const int32_t a_ids[] = {0, 0, 0, 1, 0, 0};
    static const int64_t a_offsets[] = {0, 3};
    const cache_stream a = {.T = 3, .L = 2, .E = 3, .K = 1, .num_seq = 1, .offsets = a_offsets, .ids = a_ids};
    cache_run(&a, "slots=1,prefetch=affinity,expert_bytes=1", &sink);
    /* layer 1: t0 miss (nothing learnt); t1 predicts 0 (cached), 1 misses;
     * t2 predicts 0, loads it (1 byte), hit -> 1 of 3, moved 2 + 1 */
    ck_assert_double_eq(cache_value(&sink, "hit_rate", 1, NULL), 1.0 / 3);
    ck_assert_double_eq(cache_value(&sink, "bytes_moved", 1, NULL), 3.0);
    rs_metric_sink_free(&sink);
}
END_TEST

/* ---------------------------------------------------------------- libCacheSim */

/* Top-1 stream: token t at layer l keeps t-1's expert with probability
 * 0.45, else draws min of two uniform experts (favouring low ids). */
static void golden_stream(int T, int L, int E, uint64_t seed, int32_t *ids)
{
    for (int t = 0; t < T; t++)
        for (int l = 0; l < L; l++) {
            rs_rng r = rs_rng_keyed(seed, (uint64_t)l, (uint64_t)t);
            int32_t e;
            if (t > 0 && rs_rng_uniform(&r) < 0.45) {
                e = ids[(t - 1) * L + l];
            } else {
                uint64_t a = rs_rng_below(&r, (uint64_t)E), b = rs_rng_below(&r, (uint64_t)E);
                e = (int32_t)(a < b ? a : b);
            }
            ids[t * L + l] = e;
        }
}

START_TEST(cache_matches_libcachesim)
{
    /* Miss counts from libCacheSim (github.com/1a1a11a/libCacheSim, commit
     * aa0fc40914b2b786f4b9f4dafb099f8f332b216a, Release build) on
     * golden_stream(T = 3000, L = 3, E = 8, seed = 2024): one request per
     * token-layer in token order, obj_size 1, obj_id = layer * E + expert for
     * the global pool (cache_size = C * L), or each layer's stream alone
     * (cache_size = C); Belady got next_access_vtime = the index of the
     * object's next request (INT64_MAX if none). Drive: LRU_init, LFU_init,
     * FIFO_init, Belady_init with default_common_cache_params() and
     * cache->get(cache, req) per request. LFUCpp_init gives the same counts
     * as LFU_init here (and on 3000 random streams tried). */
    enum { T = 3000, L = 3, E = 8 };
    static const char *const policies[] = {"lru", "lfu", "fifo", "belady"};
    static const int sizes[] = {1, 2, 3, 5};
    static const long global_misses[4][4] = {
        {4212, 3536, 2733, 1282}, /* LRU */
        {8101, 6339, 4550, 1530}, /* LFU */
        {5171, 3757, 2903, 1498}, /* FIFO */
        {3907, 2299, 1475, 537},  /* Belady */
    };
    static const long layer_misses[4][4][3] = {
        {{1410, 1416, 1386}, {1141, 1161, 1127}, {904, 866, 883}, {437, 379, 395}},
        {{1410, 1416, 1386}, {1083, 1085, 1039}, {849, 792, 723}, {341, 444, 326}},
        {{1410, 1416, 1386}, {1146, 1169, 1135}, {902, 887, 895}, {459, 433, 440}},
        {{1410, 1416, 1386}, {875, 878, 864}, {578, 563, 557}, {225, 208, 214}},
    };
    int32_t *ids = malloc(sizeof(int32_t) * T * L);
    golden_stream(T, L, E, 2024, ids);
    static const int64_t offsets[] = {0, T};
    const cache_stream s = {.T = T, .L = L, .E = E, .K = 1, .num_seq = 1, .offsets = offsets, .ids = ids};
    for (int p = 0; p < 4; p++) {
        for (int c = 0; c < 4; c++) {
            char params[160];
            rs_metric_sink sink;
            snprintf(params, sizeof params, "policy=%s,slots=%d,scope=global,reset=never,expert_bytes=1", policies[p],
                     sizes[c]);
            cache_run(&s, params, &sink);
            double misses = cache_value(&sink, "bytes_moved", -1, NULL);
            ck_assert_msg(misses == (double)global_misses[p][c], "%s: %g misses, libCacheSim %ld", params, misses,
                          global_misses[p][c]);
            rs_metric_sink_free(&sink);
            snprintf(params, sizeof params, "policy=%s,slots=%d,reset=never,expert_bytes=1", policies[p], sizes[c]);
            cache_run(&s, params, &sink);
            for (int l = 0; l < L; l++) {
                misses = cache_value(&sink, "bytes_moved", l, NULL);
                ck_assert_msg(misses == (double)layer_misses[p][c][l], "%s layer %d: %g misses, libCacheSim %ld",
                              params, l, misses, layer_misses[p][c][l]);
            }
            rs_metric_sink_free(&sink);
        }
    }
    /* the one-pass curves give the same counts at every size */
    rs_metric_sink sink;
    for (int p = 0; p < 4; p += 3) {
        char params[120];
        snprintf(params, sizeof params, "policy=%s,scope=global,reset=never,curve=1", policies[p]);
        cache_run(&s, params, &sink);
        for (int c = 0; c < 4; c++) {
            char key[32];
            snprintf(key, sizeof key, "slots=%d", sizes[c]);
            double rate = cache_value(&sink, "hit_rate_curve", -1, key);
            ck_assert_double_eq(rate, (double)(T * L - global_misses[p][c]) / (T * L));
        }
        rs_metric_sink_free(&sink);
    }
    free(ids);
}
END_TEST

/* ---------------------------------------------------------------- errors */

START_TEST(cache_parameter_errors)
{
    static const int32_t ids[] = {0, 1};
    static const int64_t offsets[] = {0, 2};
    const cache_stream s = {.T = 2, .L = 1, .E = 2, .K = 1, .num_seq = 1, .offsets = offsets, .ids = ids};
    char msg[1024];
    ck_assert_ptr_null(cache_acc_try(&s, "policy=static,prefetch=affinity", msg, sizeof msg));
    ck_assert_msg(strstr(msg, "policy=static") && strstr(msg, "prefetch=affinity"), "%s", msg);
    /* lookahead over a whole trace too large to buffer */
    const cache_stream huge = {.T = 1 << 30, .L = 8, .E = 64, .K = 8, .num_seq = 1, .offsets = offsets, .ids = ids};
    ck_assert_ptr_null(cache_acc_try(&huge, "policy=belady,reset=never", msg, sizeof msg));
    ck_assert_msg(strstr(msg, "reset=never") && strstr(msg, "MiB") && strstr(msg, "reset=sequence"), "%s", msg);
    ck_assert_ptr_null(cache_acc_try(&huge, "policy=lru,reset=never", msg, sizeof msg));
    ck_assert_msg(strstr(msg, "belady_gap") && strstr(msg, "gap=0"), "%s", msg);
    void *ok = cache_acc_try(&huge, "policy=lru,reset=never,gap=0", msg, sizeof msg);
    ck_assert_msg(ok != NULL, "%s", msg);
    cache_family()->destroy(ok);
    /* a global pool of more than 65535 experts cannot be buffered */
    const cache_stream wide = {.T = 10, .L = 300, .E = 256, .K = 8, .num_seq = 1, .offsets = offsets, .ids = ids};
    ck_assert_ptr_null(cache_acc_try(&wide, "scope=global", msg, sizeof msg));
    ck_assert_msg(strstr(msg, "scope=global") && strstr(msg, "gap=0"), "%s", msg);
    /* the parameter listing rejects unknown values and names the parameter */
    rs_params p;
    rs_error err = {{0}};
    const rs_metric_type *t = cache_family();
    ck_assert_int_eq(rs_params_init(&p, t->params, t->num_params, t->name, &err), 0);
    ck_assert_int_ne(rs_params_parse_list(&p, "policy=mru", &err), 0);
    ck_assert_msg(strstr(err.msg, "policy"), "%s", err.msg);
    ck_assert_int_ne(rs_params_parse_list(&p, "slots=0", &err), 0);
    ck_assert_msg(strstr(err.msg, "slots"), "%s", err.msg);
    rs_params_free(&p);
}
END_TEST

START_TEST(cache_default_slots_scale_with_k)
{
    /* Unset slots = 2 k. The stream of cache_hand_batch_larger_than_cache
     * (E = 3, k = 2): 2 k = 4 slots hold every expert, so only the 3 cold
     * misses of 6 accesses miss, as with slots=3 (hand count there); the rows
     * carry slots=4 in their key, where a given slots would be. */
    static const int32_t ids[] = {0, 1, 1, 2, 1, 0};
    static const int64_t offsets[] = {0, 3};
    const cache_stream s = {.T = 3, .L = 1, .E = 3, .K = 2, .num_seq = 1, .offsets = offsets, .ids = ids};
    rs_metric_sink sink;
    cache_run(&s, "", &sink);
    ck_assert_double_eq(cache_value(&sink, "hit_rate", 0, "slots=4"), 3.0 / 6);
    ck_assert_double_eq(cache_value(&sink, "hit_rate", -1, "slots=4"), 3.0 / 6);
    ck_assert_double_eq(cache_value(&sink, "belady_gap", 0, "slots=4"), 0.0);
    ck_assert(isnan(cache_value(&sink, "hit_rate", 0, NULL))); /* no row without the size */
    rs_metric_sink_free(&sink);
    /* a given slots keeps its own key (from the parameters, no extra) */
    cache_run(&s, "slots=1", &sink);
    ck_assert_double_eq(cache_value(&sink, "hit_rate", 0, NULL), 1.0 / 6);
    rs_metric_sink_free(&sink);

    /* A dynamic-k router (rows as wide as E = 3) sizes by the trace's top_k
     * = 1: 2 slots, 2 hits of 6 (cache_hand_batch_larger_than_cache, C = 2). */
    static const int32_t wide[] = {0, 1, -1, 1, 2, -1, 1, 0, -1};
    rs_trace_info info = {.path = "c.h5", .num_tokens = 3, .num_sequences = 1, .num_layers = 1, .num_experts = 3,
                          .top_k = 1, .unit = "token"};
    const rs_metric_type *t = cache_family();
    rs_params p;
    rs_error err = {{0}};
    ck_assert_int_eq(rs_params_init(&p, t->params, t->num_params, t->name, &err), 0);
    rs_metric_setup setup = {.trace = &info, .batch_tokens = 64, .kmax = 3};
    void *acc = NULL;
    ck_assert_msg(t->create(&acc, &p, &setup, &err) == 0, "%s", err.msg);
    int32_t seq_of_token[3] = {0, 0, 0};
    rs_chunk c = {.t0 = 0, .n = 3, .L = 1, .E = 3, .first_seq = 0, .num_seq = 1, .seq_offsets = offsets,
                  .seq_of_token = seq_of_token};
    rs_decisions d = {.kmax = 3, .ids = (int32_t *)wide};
    t->update_layer(acc, &c, 0, &d, NULL);
    t->update_chunk(acc, &c, &d, NULL);
    memset(&sink, 0, sizeof sink);
    t->finalize(acc, &sink);
    ck_assert_double_eq(cache_value(&sink, "hit_rate", 0, "slots=2"), 2.0 / 6);
    rs_metric_sink_free(&sink);
    t->destroy(acc);
    rs_params_free(&p);
}
END_TEST

Suite *metrics_cache_suite(void)
{
    Suite *s = suite_create("metrics_cache");
    TCase *tc = tcase_create("cache");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, cache_hand_policies);
    tcase_add_test(tc, cache_hand_bytes_and_stall);
    tcase_add_test(tc, cache_hand_batch_larger_than_cache);
    tcase_add_test(tc, cache_default_slots_scale_with_k);
    tcase_add_test(tc, cache_hand_padding_duplicates_skipped);
    tcase_add_test(tc, cache_hand_reset_and_global_pool);
    tcase_add_test(tc, cache_hand_prefetch);
    tcase_add_test(tc, cache_matches_libcachesim);
    tcase_add_test(tc, cache_parameter_errors);
    suite_add_tcase(s, tc);
    return s;
}
