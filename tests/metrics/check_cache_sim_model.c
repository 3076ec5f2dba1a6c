/* cache_sim against a plain model of the batch rule on random streams.
 *
 * The model keeps the cached objects in one array, the next victim first
 * (lru: least recently touched; fifo: first inserted; belady: scanned for
 * the farthest next use, ties to the lower id) and applies the rule of
 * cache_sim.h as written: hits decided before the batch, then in slot order
 * a hit is touched and a miss evicts the first object not in the batch;
 * a prefetch set is a batch of its own whose cached members are left as
 * they are. Streams mix single-object batches (fifo's round robin) with
 * larger ones and prefetches, capacities on both sides of
 * CACHE_STAMPED_MAX (slot keys, and lists), and resets. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/cache_sim.h"
#include "routesim/rng.h"

typedef struct model {
    cache_policy policy;
    int capacity, used;
    int32_t order[128]; /* cached objects, the next victim first (lru, fifo) */
} model;

static int model_find(const model *m, int32_t obj)
{
    for (int i = 0; i < m->used; i++)
        if (m->order[i] == obj)
            return i;
    return -1;
}

static int in_set(const int32_t *set, int n, int32_t obj)
{
    for (int i = 0; i < n; i++)
        if (set[i] == obj)
            return 1;
    return 0;
}

static void model_remove(model *m, int at)
{
    memmove(m->order + at, m->order + at + 1, (size_t)(m->used - at - 1) * sizeof *m->order);
    m->used--;
}

/* Makes room for one object, never evicting a member of pinned[0..npinned). */
static int model_room(model *m, const int32_t *pinned, int npinned, const uint64_t *next_use)
{
    if (m->used < m->capacity)
        return 1;
    int victim = -1;
    for (int i = 0; i < m->used; i++) {
        if (in_set(pinned, npinned, m->order[i]))
            continue;
        if (m->policy != CACHE_BELADY) {
            victim = i;
            break;
        }
        uint64_t nu = next_use[m->order[i]], best = victim < 0 ? 0 : next_use[m->order[victim]];
        if (victim < 0 || nu > best || (nu == best && m->order[i] < m->order[victim]))
            victim = i;
    }
    if (victim < 0)
        return 0;
    model_remove(m, victim);
    return 1;
}

/* The batch (or prefetch set) objs; returns hits (prefetch: objects loaded). */
static int model_batch(model *m, const int32_t *objs, int n, int prefetch, const uint64_t *next_use)
{
    int32_t pinned[128];
    int npinned = 0, hits = 0, loaded = 0;
    uint8_t cached[128];
    for (int i = 0; i < n; i++) {
        cached[i] = model_find(m, objs[i]) >= 0;
        hits += cached[i];
        if (cached[i])
            pinned[npinned++] = objs[i];
    }
    for (int i = 0; i < n; i++) {
        if (cached[i]) {
            if (!prefetch && m->policy == CACHE_LRU) { /* touched: to the back */
                model_remove(m, model_find(m, objs[i]));
                m->order[m->used++] = objs[i];
            }
            continue;
        }
        if (!model_room(m, pinned, npinned, next_use))
            continue; /* streamed */
        m->order[m->used++] = objs[i];
        pinned[npinned++] = objs[i];
        loaded++;
    }
    return prefetch ? loaded : hits;
}

/* Distinct random objects of [0, nobj). */
static int random_set(rs_rng *r, int32_t *out, int n, int nobj)
{
    int k = 0;
    for (int i = 0; i < n; i++) {
        int32_t o = (int32_t)rs_rng_below(r, (uint64_t)nobj);
        if (!in_set(out, k, o))
            out[k++] = o;
    }
    return k;
}

static void model_case(cache_policy policy, uint64_t seed)
{
    rs_rng r = rs_rng_keyed(seed, 7, (uint64_t)policy);
    const int nobj = 2 + (int)rs_rng_below(&r, 100);
    const int capacity = 1 + (int)rs_rng_below(&r, (uint64_t)(nobj < 90 ? nobj : 90));
    const int bmax = rs_rng_below(&r, 3) == 0 ? 1 : 1 + (int)rs_rng_below(&r, 12);
    const int batches = 1 + (int)rs_rng_below(&r, 400), prefetching = rs_rng_below(&r, 3) == 0;
    /* the stream first, so belady can look ahead */
    int32_t(*objs)[16] = malloc((size_t)batches * sizeof *objs), (*pf)[16] = malloc((size_t)batches * sizeof *pf);
    int *n = malloc((size_t)batches * sizeof *n), *n_pf = malloc((size_t)batches * sizeof *n_pf);
    uint8_t *reset = malloc((size_t)batches);
    for (int b = 0; b < batches; b++) {
        n[b] = random_set(&r, objs[b], (int)rs_rng_below(&r, (uint64_t)bmax + 1), nobj);
        n_pf[b] = prefetching ? random_set(&r, pf[b], (int)rs_rng_below(&r, 4), nobj) : 0;
        reset[b] = b == 0 || rs_rng_below(&r, 150) == 0;
    }
    cache_sim sim;
    ck_assert_int_eq(rs_cache_sim_init(&sim, policy, capacity, nobj), 0);
    model m = {.policy = policy, .capacity = capacity};
    uint64_t *next_use = malloc((size_t)nobj * sizeof *next_use);
    uint8_t hit[16];
    for (int b = 0; b < batches; b++) {
        if (reset[b]) {
            rs_cache_sim_reset(&sim);
            m.used = 0;
        }
        for (int o = 0; o < nobj; o++) { /* next use at or after b, within the segment */
            next_use[o] = CACHE_NEVER;
            for (int c = b; c < batches && (c == b || !reset[c]) && next_use[o] == CACHE_NEVER; c++)
                if (in_set(objs[c], n[c], o))
                    next_use[o] = (uint64_t)c;
            if (policy == CACHE_BELADY)
                rs_cache_sim_next_use(&sim, o, next_use[o]);
        }
        const cache_future f = {.next_use = next_use};
        if (n_pf[b]) {
            int want = model_batch(&m, pf[b], n_pf[b], 1, next_use);
            int got = rs_cache_sim_prefetch(&sim, pf[b], n_pf[b], &f, NULL);
            ck_assert_msg(got == want, "seed %llu batch %d: prefetch loaded %d, model %d", (unsigned long long)seed, b,
                          got, want);
        }
        int want = model_batch(&m, objs[b], n[b], 0, next_use);
        int got = rs_cache_sim_batch(&sim, objs[b], n[b], hit, &f, NULL);
        ck_assert_msg(got == want, "seed %llu policy %d C %d nobj %d batch %d (n %d): %d hits, model %d",
                      (unsigned long long)seed, (int)policy, capacity, nobj, b, n[b], got, want);
        for (int i = 0; i < n[b]; i++) /* hit marks agree with the count: each is one lookup before the batch */
            got -= hit[i];
        ck_assert_int_eq(got, 0);
        ck_assert_int_eq(sim.used, m.used);
    }
    rs_cache_sim_free(&sim);
    free(next_use);
    free(objs);
    free(pf);
    free(n);
    free(n_pf);
    free(reset);
}

START_TEST(cache_sim_equals_model)
{
    for (uint64_t seed = 0; seed < 300; seed++) {
        model_case(CACHE_LRU, seed);
        model_case(CACHE_FIFO, seed);
        model_case(CACHE_BELADY, seed);
    }
}
END_TEST

/* belady's one-loop replay of single-object batches against the batch
 * rule: the same hits, batch by batch, and the same cache afterwards. */
START_TEST(belady_singles_equal_batches)
{
    for (uint64_t seed = 0; seed < 200; seed++) {
        rs_rng r = rs_rng_keyed(seed, 11, 0);
        const int nobj = 2 + (int)rs_rng_below(&r, 100), capacity = 1 + (int)rs_rng_below(&r, (uint64_t)nobj);
        const size_t B = 1 + rs_rng_below(&r, 600);
        uint16_t *objs = malloc(B * sizeof *objs);
        uint32_t *next = malloc(B * sizeof *next), *last = malloc((size_t)nobj * sizeof *last);
        uint64_t *next_use = malloc((size_t)nobj * sizeof *next_use);
        uint8_t *hit = malloc(B);
        for (size_t b = 0; b < B; b++)
            objs[b] = (uint16_t)rs_rng_below(&r, (uint64_t)nobj);
        for (int o = 0; o < nobj; o++)
            last[o] = UINT32_MAX;
        for (size_t b = B; b-- > 0;) {
            next[b] = last[objs[b]];
            last[objs[b]] = (uint32_t)b;
        }
        for (int o = 0; o < nobj; o++)
            next_use[o] = last[o] == UINT32_MAX ? CACHE_NEVER : last[o];
        cache_sim one, batched;
        ck_assert_int_eq(rs_cache_sim_init(&one, CACHE_BELADY, capacity, nobj), 0);
        ck_assert_int_eq(rs_cache_sim_init(&batched, CACHE_BELADY, capacity, nobj), 0);
        int64_t hits = rs_cache_sim_belady_singles(&one, objs, next, B, hit), want = 0;
        const cache_future f = {.next_use = next_use};
        for (size_t b = 0; b < B; b++) {
            int32_t obj = objs[b];
            uint8_t h;
            int got = rs_cache_sim_batch(&batched, &obj, 1, &h, &f, NULL);
            want += got;
            ck_assert_msg(h == hit[b], "seed %llu batch %zu: hit %d, batch rule %d", (unsigned long long)seed, b,
                          hit[b], h);
            next_use[obj] = next[b] == UINT32_MAX ? CACHE_NEVER : next[b];
            rs_cache_sim_next_use(&batched, obj, next_use[obj]);
        }
        ck_assert_int_eq(hits, want);
        ck_assert_int_eq(one.used, batched.used);
        ck_assert_uint_eq(one.clock, batched.clock);
        for (int i = 0; i < one.used; i++) {
            ck_assert_int_eq(one.slot_obj[i], batched.slot_obj[i]);
            ck_assert_uint_eq(one.key[i], batched.key[i]);
        }
        rs_cache_sim_free(&one);
        rs_cache_sim_free(&batched);
        free(objs);
        free(next);
        free(last);
        free(next_use);
        free(hit);
    }
}
END_TEST

Suite *cache_sim_model_suite(void)
{
    Suite *s = suite_create("cache_sim_model");
    TCase *tc = tcase_create("cache_sim_model");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, cache_sim_equals_model);
    tcase_add_test(tc, belady_singles_equal_batches);
    suite_add_tcase(s, tc);
    return s;
}
