/* cache: properties on random decisions. One-pass curves equal one
 * simulation per size (so the batch rule keeps LRU and Belady stack
 * algorithms), Belady beats every online policy, warm >= cold hit rates,
 * merges at sequence boundaries are exact, chunking and threads change
 * nothing. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/cache_sim.h"
#include "metrics/cache_stack.h"
#include "routesim/rng.h"
#include "tests/metrics/check_metrics_cache.h"
#include "tests/test_util.h"

/* Both sinks hold the same rows, bit for bit. */
static void assert_same_sink(const rs_metric_sink *a, const rs_metric_sink *b, const char *what)
{
    ck_assert_msg(a->n == b->n, "%s: %zu rows != %zu rows", what, a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        const rs_emitted *x = &a->rows[i], *y = &b->rows[i];
        ck_assert_msg(x->output == y->output && x->layer == y->layer && strcmp(x->extra, y->extra) == 0 &&
                          memcmp(&x->value, &y->value, sizeof x->value) == 0,
                      "%s: row %zu: %s layer %d %s: %.17g != %.17g", what, i,
                      cache_family()->outputs[x->output].name, x->layer, x->extra, x->value, y->value);
    }
}

/* ---------------------------------------------------------------- stack vs per size */

/* Random batches of 0..bmax distinct objects of nobj; resets now and then.
 * walk = 1 makes an LRU stack walk its explicit stack (as large pools do)
 * instead of counting timestamps. */
static void stack_case(cache_stack_kind kind, uint64_t seed, int walk)
{
    rs_rng r = rs_rng_keyed(seed, 1, 2);
    const int nobj = 2 + (int)rs_rng_below(&r, 11), bmax = 1 + (int)rs_rng_below(&r, 5);
    const int batches = 1 + (int)rs_rng_below(&r, 120);
    int32_t *objs = malloc((size_t)batches * (size_t)bmax * sizeof *objs);
    int *n = malloc((size_t)batches * sizeof *n), *start = malloc(((size_t)batches + 1) * sizeof *start);
    uint8_t *reset = calloc((size_t)batches, 1);
    start[0] = 0;
    for (int b = 0; b < batches; b++) {
        n[b] = (int)rs_rng_below(&r, (uint64_t)bmax + 1);
        if (n[b] > nobj)
            n[b] = nobj;
        reset[b] = b == 0 || rs_rng_uniform(&r) < 0.03;
        for (int i = 0; i < n[b]; i++) {
            int32_t o;
            int again;
            do { /* distinct, favouring low ids */
                uint64_t x = rs_rng_below(&r, (uint64_t)nobj), y = rs_rng_below(&r, (uint64_t)nobj);
                o = (int32_t)(x < y ? x : y);
                again = 0;
                for (int j = 0; j < i; j++)
                    again |= objs[start[b] + j] == o;
            } while (again);
            objs[start[b] + i] = o;
        }
        start[b + 1] = start[b] + n[b];
    }
    /* next use of each access, within its segment (between resets) */
    uint64_t *link = malloc((size_t)start[batches] * sizeof *link);
    for (int b = 0; b < batches; b++) {
        for (int i = start[b]; i < start[b + 1]; i++) {
            link[i] = CACHE_NEVER;
            for (int c = b + 1; c < batches && !reset[c] && link[i] == CACHE_NEVER; c++)
                for (int j = start[c]; j < start[c + 1]; j++)
                    if (objs[j] == objs[i])
                        link[i] = (uint64_t)c;
        }
    }
    cache_stack stack;
    ck_assert_int_eq(rs_cache_stack_init(&stack, kind, nobj), 0);
    ck_assert_int_eq(stack.counting, kind == CACHE_STACK_LRU); /* few objects */
    if (walk)
        stack.counting = 0;
    cache_sim *sims = calloc((size_t)nobj, sizeof *sims);
    for (int c = 0; c < nobj; c++)
        ck_assert_int_eq(rs_cache_sim_init(&sims[c], kind == CACHE_STACK_LRU ? CACHE_LRU : CACHE_BELADY, c + 1, nobj),
                         0);
    long *hits = calloc((size_t)nobj, sizeof *hits), *stack_hits = calloc((size_t)nobj + 1, sizeof *stack_hits);
    uint64_t *next_use = malloc((size_t)nobj * sizeof *next_use);
    int32_t dist[16];
    uint8_t hit[16];
    for (int b = 0; b < batches; b++) {
        if (reset[b]) {
            rs_cache_stack_reset(&stack);
            for (int c = 0; c < nobj; c++)
                rs_cache_sim_reset(&sims[c]);
            /* first uses of the segment */
            for (int o = 0; o < nobj; o++) {
                next_use[o] = CACHE_NEVER;
                for (int c = b; c < batches && (c == b || !reset[c]) && next_use[o] == CACHE_NEVER; c++)
                    for (int j = start[c]; j < start[c + 1]; j++)
                        if (objs[j] == o)
                            next_use[o] = (uint64_t)c;
            }
        }
        const cache_future f = {.next_use = next_use};
        for (int c = 0; c < nobj; c++) {
            rs_cache_sim_batch(&sims[c], objs + start[b], n[b], hit, &f, NULL);
            for (int i = 0; i < n[b]; i++)
                hits[c] += hit[i];
        }
        for (int i = 0; i < n[b]; i++) {
            next_use[objs[start[b] + i]] = link[start[b] + i];
            for (int c = 0; kind == CACHE_STACK_BELADY && c < nobj; c++) /* the simulations' victim order */
                rs_cache_sim_next_use(&sims[c], objs[start[b] + i], link[start[b] + i]);
        }
        rs_cache_stack_batch(&stack, objs + start[b], n[b], dist, next_use);
        for (int i = 0; i < n[b]; i++)
            stack_hits[dist[i]]++;
    }
    long sum = 0;
    for (int c = 0; c < nobj; c++) {
        sum += stack_hits[c + 1];
        ck_assert_msg(sum == hits[c], "%s seed %llu: %d slots: stack %ld hits, simulation %ld (nobj %d, bmax %d)",
                      kind == CACHE_STACK_LRU ? (walk ? "lru walk" : "lru") : "belady", (unsigned long long)seed,
                      c + 1, sum, hits[c], nobj, bmax);
    }
    for (int c = 0; c < nobj; c++)
        rs_cache_sim_free(&sims[c]);
    rs_cache_stack_free(&stack);
    free(sims);
    free(hits);
    free(stack_hits);
    free(next_use);
    free(link);
    free(objs);
    free(n);
    free(start);
    free(reset);
}

START_TEST(cache_stack_equals_per_size_simulation)
{
    /* The batch rule keeps the caches of all sizes nested for LRU and
     * Belady, including batches larger than the cache; the stack update
     * (cache_stack.h) must reproduce every size exactly. */
    for (uint64_t seed = 0; seed < 3000; seed++) {
        stack_case(CACHE_STACK_LRU, seed, 0);
        stack_case(CACHE_STACK_LRU, seed, 1);
        stack_case(CACHE_STACK_BELADY, seed, 0);
    }
}
END_TEST

/* ---------------------------------------------------------------- metric-level properties */

enum { PT = 300, PL = 3, PE = 7, PK = 3 };
static const int64_t prop_offsets[] = {0, 41, 42, 130, 170, 300};

static cache_stream prop_stream(const int32_t *ids, const uint8_t *valid)
{
    return (cache_stream){.T = PT, .L = PL, .E = PE, .K = PK, .num_seq = 5, .offsets = prop_offsets, .ids = ids,
                          .valid = valid};
}

START_TEST(cache_curve_equals_runs_per_size)
{
    int32_t *ids = cache_random_ids(PT, PL, PE, PK, 17);
    const cache_stream s = prop_stream(ids, NULL);
    static const char *const configs[] = {
        "policy=lru",          "policy=belady",         "policy=static",
        "policy=fifo",         "policy=lfu",            "policy=sch,m=4",
        "policy=random,seed=3", "policy=lru,prefetch=prev_token", "policy=belady,prefetch=oracle_next",
    };
    for (size_t i = 0; i < sizeof configs / sizeof configs[0]; i++) {
        for (int global = 0; global < 2; global++) {
            char params[200];
            snprintf(params, sizeof params, "%s,curve=1,scope=%s", configs[i], global ? "global" : "layer");
            rs_metric_sink curve;
            cache_run(&s, params, &curve);
            double prev = 0.0;
            for (int C = 1; C <= PE; C++) {
                char key[32], one[240];
                snprintf(key, sizeof key, "slots=%d", C);
                snprintf(one, sizeof one, "%s,slots=%d,scope=%s", configs[i], C, global ? "global" : "layer");
                rs_metric_sink sink;
                cache_run(&s, one, &sink);
                for (int l = -1; l < PL; l++) {
                    double a = cache_value(&curve, "hit_rate_curve", l, key);
                    double b = cache_value(&sink, "hit_rate", l, NULL);
                    ck_assert_msg(a == b, "%s: C=%d layer %d: curve %.17g, run %.17g", params, C, l, a, b);
                }
                /* stack algorithms never lose hits with more slots (FIFO can: Belady's anomaly) */
                double all = cache_value(&curve, "hit_rate_curve", -1, key);
                if (strstr(configs[i], "lru") || strstr(configs[i], "belady") || strstr(configs[i], "static"))
                    ck_assert_msg(all >= prev, "%s: C=%d: %.17g < %.17g", params, C, all, prev);
                prev = all;
                rs_metric_sink_free(&sink);
            }
            rs_metric_sink_free(&curve);
        }
    }
    free(ids);
}
END_TEST

START_TEST(cache_curve_over_a_long_segment)
{
    /* 30000 tokens of up to 3 experts in one segment: more touches than the
     * LRU curve's 16-bit clock holds, so its times get renumbered */
    enum { T = 30000, E = 6, K = 3 };
    int32_t *ids = cache_random_ids(T, 1, E, K, 37);
    static const int64_t offsets[] = {0, T};
    const cache_stream s = {.T = T, .L = 1, .E = E, .K = K, .num_seq = 1, .offsets = offsets, .ids = ids};
    rs_metric_sink curve;
    cache_run(&s, "curve=1,gap=0", &curve);
    for (int C = 1; C <= E; C++) {
        char key[32], params[64];
        snprintf(key, sizeof key, "slots=%d", C);
        snprintf(params, sizeof params, "slots=%d,gap=0", C);
        double run = cache_run_value(&s, params, "hit_rate", 0, NULL);
        ck_assert_msg(cache_value(&curve, "hit_rate_curve", 0, key) == run, "C=%d: curve %.17g, run %.17g", C,
                      cache_value(&curve, "hit_rate_curve", 0, key), run);
    }
    rs_metric_sink_free(&curve);
    free(ids);
}
END_TEST

START_TEST(cache_belady_beats_online_policies)
{
    for (uint64_t seed = 1; seed <= 4; seed++) {
        int32_t *ids = cache_random_ids(PT, PL, PE, PK, seed);
        const cache_stream s = prop_stream(ids, NULL);
        static const char *const policies[] = {"lru", "lfu", "fifo", "random", "sch,m=3", "sch,m=40", "belady"};
        for (size_t p = 0; p < sizeof policies / sizeof policies[0]; p++) {
            for (int C = 1; C <= PE; C++) {
                for (int v = 0; v < 4; v++) {
                    char params[200];
                    snprintf(params, sizeof params, "policy=%s,slots=%d,scope=%s,reset=%s,seed=%llu", policies[p], C,
                             v & 1 ? "global" : "layer", v & 2 ? "never" : "sequence", (unsigned long long)seed);
                    rs_metric_sink sink;
                    cache_run(&s, params, &sink);
                    for (int l = -1; l < PL; l++) {
                        double gap = cache_value(&sink, "belady_gap", l, NULL);
                        double h = cache_value(&sink, "hit_rate", l, NULL);
                        double w = cache_value(&sink, "hit_rate_warm", l, NULL);
                        /* the global pool's Belady minimises the misses of all
                         * layers together, not of each layer */
                        if (l < 0 || !(v & 1))
                            ck_assert_msg(gap >= 0, "%s layer %d: belady_gap %.17g < 0", params, l, gap);
                        ck_assert_msg(w >= h, "%s layer %d: hit_rate_warm %.17g < hit_rate %.17g", params, l, w, h);
                        if (strcmp(policies[p], "belady") == 0)
                            ck_assert_double_eq(gap, 0.0);
                    }
                    rs_metric_sink_free(&sink);
                }
            }
        }
        free(ids);
    }
}
END_TEST

/* Configurations the merge and chunking tests run through. */
static const char *const sweep[] = {
    "policy=lru,slots=2,curve=1",
    "policy=lfu,slots=3",
    "policy=fifo,slots=2,scope=global",
    "policy=random,slots=3,seed=9",
    "policy=belady,slots=2,curve=1",
    "policy=belady,slots=1,scope=global,curve=1",
    "policy=static,slots=2,curve=1",
    "policy=static,slots=1,scope=global",
    "policy=sch,slots=3,m=5",
    "policy=sch,slots=2,m=3,scope=global,curve=1",
    "policy=lru,slots=2,prefetch=prev_token",
    "policy=lfu,slots=2,prefetch=affinity,scope=global",
    "policy=belady,slots=3,prefetch=affinity",
    "policy=sch,slots=2,prefetch=oracle_next",
    "policy=lru,slots=2,reset=never",
    "policy=belady,slots=2,reset=never,scope=global",
};

START_TEST(cache_chunking_changes_nothing)
{
    int32_t *ids = cache_random_ids(PT, PL, PE, PK, 23);
    uint8_t valid[PT];
    for (int t = 0; t < PT; t++)
        valid[t] = t % 37 != 5; /* skipped tokens, one of them a sequence's first (t = 42) */
    const cache_stream s = prop_stream(ids, valid);
    static const int chunks[] = {1, 7, 41, 64};
    for (size_t i = 0; i < sizeof sweep / sizeof sweep[0]; i++) {
        rs_metric_sink whole;
        cache_run(&s, sweep[i], &whole);
        for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
            void *acc = cache_acc(&s, sweep[i]);
            cache_feed(acc, &s, 0, PT, chunks[c]);
            rs_metric_sink sink = {0};
            cache_family()->finalize(acc, &sink);
            char what[240];
            snprintf(what, sizeof what, "%s, chunks of %d", sweep[i], chunks[c]);
            assert_same_sink(&whole, &sink, what);
            rs_metric_sink_free(&sink);
            cache_family()->destroy(acc);
        }
        rs_metric_sink_free(&whole);
    }
    free(ids);
}
END_TEST

START_TEST(cache_merge_at_sequence_boundaries)
{
    int32_t *ids = cache_random_ids(PT, PL, PE, PK, 29);
    const cache_stream s = prop_stream(ids, NULL);
    rs_error err = {{0}};
    for (size_t i = 0; i < sizeof sweep / sizeof sweep[0]; i++) {
        if (strstr(sweep[i], "reset=never"))
            continue;
        rs_metric_sink whole;
        cache_run(&s, sweep[i], &whole);
        for (int cut = 1; cut < 5; cut++) {
            const int split = (int)prop_offsets[cut];
            void *a = cache_acc(&s, sweep[i]), *b = cache_acc(&s, sweep[i]);
            cache_feed(a, &s, 0, split, 50);
            cache_feed(b, &s, split, PT, 50);
            ck_assert_msg(cache_family()->merge(a, b, &err) == 0, "%s", err.msg);
            rs_metric_sink sink = {0};
            cache_family()->finalize(a, &sink);
            char what[240];
            snprintf(what, sizeof what, "%s, merged at token %d", sweep[i], split);
            assert_same_sink(&whole, &sink, what);
            rs_metric_sink_free(&sink);
            cache_family()->destroy(a);
            cache_family()->destroy(b);
        }
        rs_metric_sink_free(&whole);
    }
    free(ids);
}
END_TEST

START_TEST(cache_merge_refused_inside_sequences)
{
    int32_t *ids = cache_random_ids(PT, PL, PE, PK, 31);
    const cache_stream s = prop_stream(ids, NULL);
    rs_error err = {{0}};
    void *a = cache_acc(&s, "policy=lru"), *b = cache_acc(&s, "policy=lru");
    cache_feed(a, &s, 0, 100, 100); /* sequence 2 runs from 42 to 130 */
    cache_feed(b, &s, 100, PT, 100);
    ck_assert_int_ne(cache_family()->merge(a, b, &err), 0);
    ck_assert_msg(strstr(err.msg, "sequence boundaries"), "%s", err.msg);
    cache_family()->destroy(a);
    cache_family()->destroy(b);
    a = cache_acc(&s, "policy=lru,reset=never");
    b = cache_acc(&s, "policy=lru,reset=never");
    cache_feed(a, &s, 0, 130, 130);
    cache_feed(b, &s, 130, PT, 100);
    ck_assert_int_ne(cache_family()->merge(a, b, &err), 0);
    ck_assert_msg(strstr(err.msg, "reset=never"), "%s", err.msg);
    cache_family()->destroy(a);
    cache_family()->destroy(b);
    free(ids);
}
END_TEST

/* ---------------------------------------------------------------- CLI */

START_TEST(cache_cli_threads_and_chunks)
{
    enum { T = 600, L = 4, E = 8, S = 5 };
    const int64_t offsets[S + 1] = {0, 90, 91, 300, 420, 600};
    float *z = rs_test_random_logits(T, L, E, 41);
    rs_test_trace tt = {.T = T, .L = L, .E = E, .num_seq = S, .offsets = offsets, .logits = z, .top_k = 2};
    const char *trace = rs_test_path("cache.h5");
    rs_test_write_trace(trace, &tt);
    free(z);
    const char *config = rs_test_path("cache.json");
    FILE *f = fopen(config, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f,
            "{\"name\": \"cache\", \"traces\": [\"%s\"], \"routers\": [\"topk:k=2\", \"topp:p=0.6\"], "
            "\"metrics\": [{\"name\": \"cache\", \"params\": {\"policy\": [\"lru\", \"belady\", \"sch\", \"static\"], "
            "\"slots\": [2, 3], \"scope\": [\"layer\", \"global\"]}}, "
            "{\"name\": \"cache\", \"params\": {\"policy\": [\"lru\", \"random\"], \"prefetch\": [\"affinity\", "
            "\"prev_token\"], \"curve\": 1}}]}",
            trace);
    fclose(f);
    char *ref = rs_test_invariant_csv(config, 37, 600, 128);
    ck_assert_ptr_nonnull(strstr(ref, "cache.hit_rate_curve,curve=1;policy=random;prefetch=affinity;scope=layer;"
                                      "slots=8"));
    ck_assert_ptr_nonnull(strstr(ref, "cache.belady_gap,policy=sch;scope=global;slots=3,all,"));
    free(ref);
}
END_TEST

Suite *metrics_cache_props_suite(void)
{
    Suite *s = suite_create("metrics_cache_props");
    TCase *tc = tcase_create("cache_props");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, cache_stack_equals_per_size_simulation);
    tcase_add_test(tc, cache_curve_equals_runs_per_size);
    tcase_add_test(tc, cache_curve_over_a_long_segment);
    tcase_add_test(tc, cache_belady_beats_online_policies);
    tcase_add_test(tc, cache_chunking_changes_nothing);
    tcase_add_test(tc, cache_merge_at_sequence_boundaries);
    tcase_add_test(tc, cache_merge_refused_inside_sequences);
    tcase_add_test(tc, cache_cli_threads_and_chunks);
    suite_add_tcase(s, tc);
    return s;
}
