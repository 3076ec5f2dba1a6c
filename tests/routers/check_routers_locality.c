/* Locality routers (cache_prior, cache_maxrank, sticky, segment,
 * graph_smooth) called directly on hand-built chunks. Expected selections
 * are worked out by hand in the comments (small integer logits, so ranks
 * are obvious); the few irrational weights are closed forms evaluated by
 * hand (e.g. 1/(1+e^-2)). */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "routesim/router.h"
#include "sim/config/spec.h"
#include "tests/test_util.h"

typedef struct live {
    rs_router_spec spec;
    void *state;
    int kmax;
    rs_router_shape shape;
} live;

static rs_trace_info info_for(int L, int E)
{
    rs_trace_info info = {.path = "mem.h5", .num_layers = L, .num_experts = E, .has_logits = 1, .unit = "token"};
    return info;
}

static void live_open(live *r, const char *text, const rs_trace_info *info)
{
    rs_error err = {{0}};
    ck_assert_msg(rs_router_spec_parse(&r->spec, text, &err) == 0, "%s", err.msg);
    rs_router_setup setup = {.trace = info, .batch_tokens = 4096};
    r->shape = (rs_router_shape){.needs = r->spec.type->needs};
    ck_assert_msg(r->spec.type->create(&r->state, &r->shape, &r->spec.params, &setup, &err) == 0, "%s: %s", text,
                  err.msg);
    r->kmax = r->shape.kmax;
}

/* Routes every layer of the chunk into ids/w, which hold [n, L, kmax]. */
static void live_route(live *r, const rs_test_chunk *tc, int32_t *ids, float *w)
{
    rs_decisions dec = {.kmax = r->kmax, .ids = ids, .weights = w};
    for (int l = 0; l < tc->chunk.L; l++)
        r->spec.type->route_layer(r->state, &tc->chunk, l, &dec);
}

static void live_close(live *r)
{
    r->spec.type->destroy(r->state);
    rs_router_spec_free(&r->spec);
}

/* The message create gives for spec on a trace with E experts ("" if it succeeds). */
static const char *create_error(const char *text, int E)
{
    static rs_error err;
    memset(&err, 0, sizeof err);
    rs_router_spec spec;
    if (rs_router_spec_parse(&spec, text, &err) != 0)
        return err.msg;
    rs_trace_info info = info_for(1, E);
    rs_router_setup setup = {.trace = &info, .batch_tokens = 16};
    rs_router_shape shape = {.needs = spec.type->needs};
    void *state = NULL;
    if (spec.type->create(&state, &shape, &spec.params, &setup, &err) == 0) {
        spec.type->destroy(state);
        err.msg[0] = '\0';
    }
    rs_router_spec_free(&spec);
    return err.msg;
}

/* A chunk of tokens [a, b) out of sequences with global offsets[0..count]
 * (offsets[0] = 0): what the engine hands a router when a chunk starts or
 * ends inside a sequence. */
typedef struct sliced {
    rs_test_chunk tc;
    int64_t offsets[16];
} sliced;

static void slice_init(sliced *s, const float *z, int L, int E, const int64_t *offsets, int a, int b)
{
    rs_test_chunk_init(&s->tc, a, b - a, L, E, z + (size_t)a * (size_t)L * (size_t)E);
    int first = 0;
    while (offsets[first + 1] <= a)
        first++;
    int last = first;
    while (offsets[last + 1] < b)
        last++;
    for (int q = first; q <= last + 1; q++)
        s->offsets[q - first] = offsets[q];
    s->tc.chunk.first_seq = first;
    s->tc.chunk.num_seq = last - first + 1;
    s->tc.chunk.seq_offsets = s->offsets;
    for (int t = a; t < b; t++) {
        int q = first;
        while (offsets[q + 1] <= t)
            q++;
        s->tc.seq_of_token[t - a] = q - first;
    }
}

/* Routes spec over tokens [0, T) of the sequences in pieces cut at cuts[]
 * (none: one chunk), with one router state throughout. Caller frees. */
static int route_pieces(const char *spec, const float *z, int L, int E, const int64_t *offsets, int count,
                        const int *cuts, int num_cuts, int32_t **ids, float **w)
{
    rs_trace_info info = info_for(L, E);
    live r;
    live_open(&r, spec, &info);
    const int T = (int)offsets[count];
    size_t row = (size_t)L * (size_t)r.kmax;
    *ids = malloc((size_t)T * row * sizeof **ids);
    *w = malloc((size_t)T * row * sizeof **w);
    for (int piece = 0, a = 0; piece <= num_cuts; piece++) {
        int b = piece < num_cuts ? cuts[piece] : T;
        sliced s;
        slice_init(&s, z, L, E, offsets, a, b);
        if (r.spec.type->flags & RS_ROUTER_GROUPED || r.shape.group != RS_GROUP_NONE)
            rs_test_chunk_groups(&s.tc, RS_GROUP_SEQUENCE, 4096);
        live_route(&r, &s.tc, *ids + (size_t)a * row, *w + (size_t)a * row);
        rs_test_chunk_free(&s.tc);
        a = b;
    }
    int kmax = r.kmax;
    live_close(&r);
    return kmax;
}

/* Checks the ids of layer 0 (kmax-wide rows) against want[t][0..kmax). */
static void expect_ids(const int32_t *ids, int T, int kmax, const int32_t *want, const char *what)
{
    for (int t = 0; t < T; t++)
        for (int j = 0; j < kmax; j++)
            ck_assert_msg(ids[t * kmax + j] == want[t * kmax + j], "%s: token %d slot %d: got %d, want %d", what, t,
                          j, ids[t * kmax + j], want[t * kmax + j]);
}

/* Routes spec in one chunk (one layer) and checks the ids against want. */
static void expect_route(const char *spec, const float *z, int E, const int64_t *offsets, int count,
                         const int32_t *want)
{
    int32_t *ids;
    float *w;
    int kmax = route_pieces(spec, z, 1, E, offsets, count, NULL, 0, &ids, &w);
    expect_ids(ids, (int)offsets[count], kmax, want, spec);
    free(ids);
    free(w);
}

/* Two sequences (3 + 2 tokens), E = 6, one layer. */
static const int64_t two_seqs[] = {0, 3, 5};

START_TEST(sticky_hand_cases)
{
    const float z[] = {
        5, 4, 3, 2, 1, 0, /* t0: first token: plain top-2 {0, 1} */
        0, 1, 5, 4, 3, 2, /* t1: top-3 = [2, 3, 4] holds neither 0 nor 1: top-2 [2, 3] */
        5, 0, 3, 1, 4, 2, /* t2: top-3 = [0, 4, 2]; 2 is kept, 0 fills: [0, 2] (top-k would be [0, 4]) */
        3, 0, 1, 5, 4, 2, /* t3: new sequence: top-2 [3, 4] (keeping t2's 0, rank 3, would give [3, 0]) */
        5, 0, 1, 2, 3, 4, /* t4: top-3 = [0, 5, 4]; 4 is kept, 0 fills: [0, 4] */
    };
    const int32_t want[] = {0, 1, 2, 3, 0, 2, 3, 4, 0, 4};
    int32_t *ids;
    float *w;
    ck_assert_int_eq(route_pieces("sticky:k=2,M=3", z, 1, 6, two_seqs, 2, NULL, 0, &ids, &w), 2);
    expect_ids(ids, 5, 2, want, "sticky");
    ck_assert_float_eq_tol(w[4], 1.0f / (1.0f + expf(-2.0f)), 1e-6f); /* p0 / (p0 + p2) = e^5 / (e^5 + e^3) */
    ck_assert_float_eq_tol(w[5], 1.0f / (1.0f + expf(2.0f)), 1e-6f);
    free(ids);
    free(w);

    /* M = k keeps only what top-k keeps anyway: plain top-2 */
    const int32_t plain[] = {0, 1, 2, 3, 0, 4, 3, 4, 0, 5};
    expect_route("sticky:k=2,M=2", z, 6, two_seqs, 2, plain);

    /* a skipped token (t1) changes nothing: t2 looks back to t0's {0, 1}; 1
     * is outside t2's top-3, so t2 gets [0, 4] */
    rs_trace_info info = info_for(1, 6);
    rs_test_chunk tc;
    rs_test_chunk_init(&tc, 0, 5, 1, 6, z);
    const int lengths[] = {3, 2};
    rs_test_chunk_sequences(&tc, lengths, 2);
    const uint8_t valid[] = {1, 0, 1, 1, 1};
    tc.chunk.valid = valid;
    live r;
    live_open(&r, "sticky:k=2,M=3", &info);
    int32_t got[10];
    float gw[10];
    live_route(&r, &tc, got, gw);
    const int32_t skipped[] = {0, 1, -1, -1, 0, 4, 3, 4, 0, 4};
    expect_ids(got, 5, 2, skipped, "sticky with a skipped token");
    live_close(&r);
    rs_test_chunk_free(&tc);
}
END_TEST

START_TEST(cache_maxrank_hand_cases)
{
    /* k = 2, J = 1, M = 3, an LRU cache of 2 experts per layer */
    static const int64_t seqs[] = {0, 4, 6};
    const float z[] = {
        5, 4, 3, 2, 1, 0, /* t0: keep 0, cache empty: next best 1 -> [0, 1]; cache {0, 1} */
        0, 1, 2, 5, 4, 3, /* t1: top-3 [3, 4, 5], none cached -> [3, 4]; misses evict 0 then 1: cache {3, 4} */
        5, 0, 1, 3, 2, 4, /* t2: top-3 [0, 5, 3]; 3 cached -> [0, 3]; 0 evicts 4 (3 is in the batch): {3, 0} */
        1, 0, 2, 3, 4, 5, /* t3: top-3 [5, 4, 3]; 4 was evicted, 3 cached -> [5, 3] */
        1, 0, 2, 3, 4, 5, /* t4: new sequence, empty cache -> [5, 4]; cache {5, 4} */
        5, 4, 0, 1, 3, 2, /* t5: top-3 [0, 1, 4]; 4 cached -> [0, 4] */
    };
    int32_t *ids;
    float *w;
    const int32_t want[] = {0, 1, 3, 4, 0, 3, 5, 3, 5, 4, 0, 4};
    route_pieces("cache_maxrank:k=2,J=1,M=3,slots=2", z, 1, 6, seqs, 2, NULL, 0, &ids, &w);
    expect_ids(ids, 6, 2, want, "cache_maxrank");
    /* t2: [0, 3] weighted by p renormalised: e^5 / (e^5 + e^3) */
    ck_assert_float_eq_tol(w[4], 1.0f / (1.0f + expf(-2.0f)), 1e-6f);
    free(ids);
    free(w);

    /* slots >= E: nothing is evicted; after t1 the cache holds {0, 1, 3, 4}, so t3 keeps 4 */
    const int32_t all_fit[] = {0, 1, 3, 4, 0, 3, 5, 4, 5, 4, 0, 4};
    expect_route("cache_maxrank:k=2,J=1,M=3,slots=100", z, 6, seqs, 2, all_fit);

    /* slots = 0, J = k or M = k: plain top-2 */
    const int32_t plain[] = {0, 1, 3, 4, 0, 5, 5, 4, 5, 4, 0, 1};
    const char *plain_specs[] = {"cache_maxrank:k=2,J=1,M=3,slots=0", "cache_maxrank:k=2,J=2,M=3,slots=2",
                                 "cache_maxrank:k=2,J=0,M=2,slots=2"};
    for (int i = 0; i < 3; i++) {
        expect_route(plain_specs[i], z, 6, seqs, 2, plain);
    }

    /* J = 0: both slots may go to cached experts. t2: top-3 [0, 5, 3], cache
     * {3, 4}: 3 first, then the best uncached 0 -> [0, 3] as with J = 1; t3:
     * cache {3, 0}, top-3 [5, 4, 3]: 3, then 5 -> [5, 3] */
    expect_route("cache_maxrank:k=2,J=0,M=3,slots=2", z, 6, seqs, 2, want);

    /* the least recently used expert is the one evicted: k = 1, J = 0, M = 2, two slots */
    static const int64_t one_seq[] = {0, 4};
    const float zl[] = {
        3, 0, 1, 2, /* top-2 [0, 3], nothing cached -> 0; cache {0} */
        0, 3, 1, 2, /* top-2 [1, 3] -> 1; cache {0, 1} */
        0, 1, 3, 2, /* top-2 [2, 3] -> 2; evicts 0, the older: cache {1, 2} */
        2, 0, 1, 3, /* top-2 [3, 0]: 0 is gone -> 3 (evicting 1 instead would keep 0 and give 0) */
    };
    const int32_t lru[] = {0, 1, 2, 3};
    expect_route("cache_maxrank:k=1,J=0,M=2,slots=2", zl, 4, one_seq, 1, lru);

    /* a hit makes its expert the most recent one */
    static const int64_t refresh_seq[] = {0, 5};
    const float zr[] = {
        3, 0, 1, 2, /* -> 0; cache {0} */
        0, 3, 1, 2, /* -> 1; cache {0, 1} */
        3, 0, 1, 2, /* top-2 [0, 3], 0 cached -> 0, now more recent than 1 */
        0, 1, 3, 2, /* -> 2, evicting 1: cache {0, 2} */
        0, 2, 1, 3, /* top-2 [3, 1]: 1 is gone -> 3 (without the refresh 0 would have gone and 1 would win) */
    };
    const int32_t refreshed[] = {0, 1, 0, 2, 3};
    expect_route("cache_maxrank:k=1,J=0,M=2,slots=2", zr, 4, refresh_seq, 1, refreshed);
}
END_TEST

START_TEST(cache_prior_hand_cases)
{
    /* k = 1, one cache slot, lambda = 0.5; R = running mean of max z - min z */
    static const int64_t seqs[] = {0, 3, 6};
    const float z[] = {
        6, 0, 0, 0,    /* t0: R = 6, cache empty -> 0; cache {0} */
        0, 2, 0, 0,    /* t1: R = 4, prior 2: z' = [2, 2, 0, 0], tie to the lower index -> 0 */
        0, 3, 0, 0,    /* t2: R = 11/3, prior 11/6 < 3 -> 1; cache {1} */
        2, 1.5f, 0, 0, /* t3: new sequence: empty cache -> 0 (with 1 still cached: 1.5 + 1 > 2 -> 1); cache {0} */
        0, 1, 0, 0,    /* t4: R = 3/2, prior 0.75 < 1 -> 1 (R over both sequences, 2.8: prior 1.4 -> 0); cache {1} */
        1.2f, 1, 0, 0, /* t5: R = 1.4, prior 0.7: z' = [1.2, 1.7] -> 1 */
    };
    const int32_t want[] = {0, 0, 1, 0, 1, 1};
    int32_t *ids;
    float *w;
    route_pieces("cache_prior:k=1,slots=1,lambda=0.5", z, 1, 4, seqs, 2, NULL, 0, &ids, &w);
    expect_ids(ids, 6, 1, want, "cache_prior");
    ck_assert_float_eq_tol(w[1], 1.0f, 1e-7f);
    free(ids);
    free(w);

    /* renorm = 0: softmax of the raised logits over all experts; t1: e^2 / (2 e^2 + 2) */
    route_pieces("cache_prior:k=1,slots=1,lambda=0.5,renorm=0", z, 1, 4, seqs, 2, NULL, 0, &ids, &w);
    ck_assert_float_eq_tol(w[1], 1.0f / (2.0f + 2.0f * expf(-2.0f)), 1e-6f);
    free(ids);
    free(w);

    /* lambda = 0 or slots = 0: plain top-1 */
    const int32_t plain[] = {0, 1, 1, 0, 1, 0};
    expect_route("cache_prior:k=1,slots=1,lambda=0", z, 4, seqs, 2, plain);
    expect_route("cache_prior:k=1,slots=0,lambda=0.5", z, 4, seqs, 2, plain);

    /* slots >= E: t4's 1 joins the cache without evicting 0, so at t5 both
     * are raised: z' = [1.9, 1.7] -> 0 */
    const int32_t all_fit[] = {0, 0, 1, 0, 1, 0};
    expect_route("cache_prior:k=1,slots=9,lambda=0.5", z, 4, seqs, 2, all_fit);
}
END_TEST

START_TEST(segment_hand_cases)
{
    /* k = 1, m = 3; sequences of 5 and 2 tokens: segments [0, 3), [3, 5), [5, 7) */
    static const int64_t seqs[] = {0, 5, 7};
    const float z[] = {
        3, 1, 0, 0, /* top-1 0 */
        2, 1, 0, 0, /* top-1 0 */
        0, 2, 1, 0, /* top-1 1: f = [2, 1, 0, 0]; alpha 2: F1 = 4/(3+3); alpha 1: 6/(6+3), a tie -> alpha 2: {0} */
        0, 0, 2, 1, /* top-1 2 */
        0, 0, 1, 2, /* top-1 3: f = [0, 0, 1, 1]; alpha 1: 4/(4+2), alpha 2: 0 -> {2, 3} */
        0, 3, 0, 0, /* top-1 1 */
        1, 2, 0, 0, /* top-1 1: f = [0, 2, 0, 0]; alpha 2: F1 = 1 -> {1} */
    };
    const int32_t want[] = {0, -1, -1, 0, -1, -1, 0, -1, -1, 2, 3, -1, 3, 2, -1, 1, -1, -1, 1, -1, -1};
    int32_t *ids;
    float *w;
    ck_assert_int_eq(route_pieces("segment:m=3,k=1", z, 1, 4, seqs, 2, NULL, 0, &ids, &w), 3);
    expect_ids(ids, 7, 3, want, "segment");
    ck_assert_float_eq_tol(w[0], 1.0f, 1e-7f);
    ck_assert_float_eq_tol(w[9], 1.0f / (1.0f + expf(-1.0f)), 1e-6f); /* t3: e^2 / (e^2 + e^1) */
    ck_assert_float_eq_tol(w[10], 1.0f / (1.0f + expf(1.0f)), 1e-6f);
    ck_assert_float_eq(w[11], 0.0f);
    free(ids);
    free(w);

    /* the same split into a chunk per sequence */
    const int cut[] = {5};
    route_pieces("segment:m=3,k=1", z, 1, 4, seqs, 2, cut, 1, &ids, &w);
    expect_ids(ids, 7, 3, want, "segment, a chunk per sequence");
    free(ids);
    free(w);

    /* alpha = 1 given: every expert used in the segment; rows in each token's rank order */
    const int32_t alpha1[] = {0, 1, -1, 0, 1, -1, 1, 0, -1, 2, 3, -1, 3, 2, -1, 1, -1, -1, 1, -1, -1};
    expect_route("segment:m=3,k=1,alpha=1", z, 4, seqs, 2, alpha1);

    /* m = 1: each token's own top-k */
    const int32_t own[] = {0, 0, 1, 2, 3, 1, 1};
    ck_assert_int_eq(route_pieces("segment:m=1,k=1", z, 1, 4, seqs, 2, NULL, 0, &ids, &w), 1);
    expect_ids(ids, 7, 1, own, "segment m=1");
    free(ids);
    free(w);
}
END_TEST

START_TEST(graph_smooth_hand_cases)
{
    /* k = 1, temp = 1. cos([3,0,0], [2,2.2,0]) = 6 / (3 sqrt(8.84)) = 0.67267;
     * for t1, a = softmax([1, 0.67267]) = [0.58111, 0.41889] and
     * p~ = a0 softmax([2,2.2,0]) + a1 softmax([3,0,0]) = [0.62753, 0.32013, 0.05234] -> 0 (top-k: 1) */
    static const int64_t seqs[] = {0, 3, 4};
    const float z[] = {3, 0, 0, 2, 2.2f, 0, 3, 0, 0, 2, 2.2f, 0};
    const int32_t want[] = {0, 0, 0, 1}; /* t3 starts a sequence: plain top-1 */
    int32_t *ids;
    float *w;
    route_pieces("graph_smooth:k=1,window=1,renorm=0", z, 1, 3, seqs, 2, NULL, 0, &ids, &w);
    expect_ids(ids, 4, 1, want, "graph_smooth");
    ck_assert_float_eq_tol(w[1], 0.62753097f, 1e-6f);
    ck_assert_float_eq_tol(w[3], 0.51825987f, 1e-6f); /* softmax([2, 2.2, 0])[1] */
    free(ids);
    free(w);

    /* window: [3,0,0], [0,0,1], [2,2.2,0]. The last token sees only [0,0,1]
     * (cos 0) with window 1: p~ = [0.36716, 0.43588, 0.19696] -> 1; with
     * window 2 also [3,0,0]: a = [e, e^0.67267, 1] / sum, p~[0] = 0.55433 -> 0 */
    static const int64_t one_seq[] = {0, 3};
    const float zw[] = {3, 0, 0, 0, 0, 1, 2, 2.2f, 0};
    const int32_t w1[] = {0, 2, 1}, w2[] = {0, 2, 0};
    route_pieces("graph_smooth:k=1,window=1,renorm=0", zw, 1, 3, one_seq, 1, NULL, 0, &ids, &w);
    expect_ids(ids, 3, 1, w1, "graph_smooth window=1");
    ck_assert_float_eq_tol(w[1], 0.43335246f, 1e-6f);
    free(ids);
    free(w);
    route_pieces("graph_smooth:k=1,window=2,renorm=0", zw, 1, 3, one_seq, 1, NULL, 0, &ids, &w);
    expect_ids(ids, 3, 1, w2, "graph_smooth window=2");
    ck_assert_float_eq_tol(w[2], 0.55433482f, 1e-6f);
    free(ids);
    free(w);
}
END_TEST

static const char *stateful_specs[] = {
    "cache_prior:k=2,slots=3,lambda=0.7",  "cache_maxrank:k=2,slots=3,J=1,M=4", "sticky:k=2,M=4",
    "segment:m=3,k=2",                     "graph_smooth:k=2,window=3,temp=0.5",
};
enum { NUM_STATEFUL = sizeof stateful_specs / sizeof stateful_specs[0] };

/* Three sequences of 7, 1 and 9 tokens, two layers, 8 experts, with ties. */
enum { RT = 17, RL = 2, RE = 8 };
static const int64_t three_seqs[] = {0, 7, 8, 17};

static float *tied_logits(void)
{
    float *z = rs_test_random_logits(RT, RL, RE, 5);
    for (int i = 0; i < RT * RL * RE; i++)
        z[i] = roundf(z[i] * 2.0f) / 2.0f; /* multiples of 0.5: exact ties in most rows */
    return z;
}

START_TEST(chunk_splits_change_nothing)
{
    const char *spec = stateful_specs[_i];
    float *z = tied_logits();
    int32_t *whole, *split;
    float *ww, *sw;
    int kmax = route_pieces(spec, z, RL, RE, three_seqs, 3, NULL, 0, &whole, &ww);
    size_t cells = (size_t)RT * RL * (size_t)kmax;
    /* at sequence boundaries (every router), then inside sequences (causal ones) */
    const int at_sequences[] = {7, 8}, inside[] = {3, 7, 12, 13};
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1 && strncmp(spec, "segment", 7) == 0)
            break; /* segment asks for whole sequences per chunk */
        route_pieces(spec, z, RL, RE, three_seqs, 3, pass ? inside : at_sequences, pass ? 4 : 2, &split, &sw);
        ck_assert_msg(memcmp(whole, split, cells * sizeof *whole) == 0, "%s: ids differ (pass %d)", spec, pass);
        ck_assert_msg(memcmp(ww, sw, cells * sizeof *ww) == 0, "%s: weights differ (pass %d)", spec, pass);
        free(split);
        free(sw);
    }
    /* the last sequence on its own, as if it were the first: state starts afresh at each sequence */
    static const int64_t alone[] = {0, 9};
    route_pieces(spec, z + (size_t)8 * RL * RE, RL, RE, alone, 1, NULL, 0, &split, &sw);
    size_t from = (size_t)8 * RL * (size_t)kmax;
    ck_assert_msg(memcmp(whole + from, split, (cells - from) * sizeof *whole) == 0, "%s: no reset", spec);
    ck_assert_msg(memcmp(ww + from, sw, (cells - from) * sizeof *ww) == 0, "%s: no reset (weights)", spec);
    free(split);
    free(sw);
    free(whole);
    free(ww);
    free(z);
}
END_TEST

START_TEST(degenerate_settings_are_topk)
{
    /* M = k, slots = 0 and window = 0 leave nothing to do: top-k itself, bit for bit */
    const char *same[] = {"sticky:k=3,M=3", "cache_maxrank:k=3,M=3,J=1,slots=4", "cache_maxrank:k=3,M=5,slots=0",
                          "graph_smooth:k=3,window=0", "segment:m=1,k=3"};
    float *z = tied_logits();
    int32_t *ref, *got;
    float *rw, *gw;
    route_pieces("topk:k=3", z, RL, RE, three_seqs, 3, NULL, 0, &ref, &rw);
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        route_pieces(same[i], z, RL, RE, three_seqs, 3, NULL, 0, &got, &gw);
        size_t cells = (size_t)RT * RL * 3;
        ck_assert_msg(memcmp(ref, got, cells * sizeof *ref) == 0, "%s: ids differ from topk", same[i]);
        ck_assert_msg(memcmp(rw, gw, cells * sizeof *rw) == 0, "%s: weights differ from topk", same[i]);
        free(got);
        free(gw);
    }
    free(ref);
    free(rw);
    free(z);
}
END_TEST

START_TEST(parameters_are_validated)
{
    static const struct {
        const char *spec, *message;
    } cases[] = {
        {"cache_prior:k=5", "router cache_prior: parameter k=5 exceeds num_experts=4 of mem.h5"},
        {"cache_maxrank:k=5,M=5", "router cache_maxrank: parameter k=5 exceeds num_experts=4 of mem.h5"},
        {"cache_maxrank:k=2,J=3,M=4", "router cache_maxrank: parameter J=3 exceeds k=2"},
        {"cache_maxrank:k=3,M=2", "router cache_maxrank: parameter M=2 is below k=3 (M is a rank limit: M >= k)"},
        {"sticky:k=3,M=2", "router sticky: parameter M=2 is below k=3 (M is a rank limit: M >= k)"},
        {"sticky:k=5,M=5", "router sticky: parameter k=5 exceeds num_experts=4 of mem.h5"},
        {"segment:k=5", "router segment: parameter k=5 exceeds num_experts=4 of mem.h5"},
        {"graph_smooth:k=5", "router graph_smooth: parameter k=5 exceeds num_experts=4 of mem.h5"},
        {"segment:m=0", "router segment: parameter m=0 out of range"},
        {"cache_prior:slots=-1", "router cache_prior: parameter slots=-1 out of range"},
        {"graph_smooth:window=1025", "router graph_smooth: parameter window=1025 out of range"},
        {"graph_smooth:temp=0", "router graph_smooth: parameter temp"},
        {"cache_prior:lambda=-1", "router cache_prior: parameter lambda"},
        /* accepted: M and slots beyond E mean "all experts" */
        {"sticky:k=2,M=9", ""},
        {"cache_maxrank:k=2,M=9,slots=100", ""},
        {"cache_prior:k=4,slots=0", ""},
        {"segment:m=1000000,k=4,alpha=0", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *msg = create_error(cases[i].spec, 4);
        ck_assert_msg(strncmp(msg, cases[i].message, strlen(cases[i].message)) == 0 && (msg[0] || !cases[i].message[0]),
                      "%s: got '%s', want '%s'", cases[i].spec, msg, cases[i].message);
    }
}
END_TEST

START_TEST(descriptors_declare_order_and_groups)
{
    rs_trace_info info = info_for(2, 8);
    for (int i = 0; i < NUM_STATEFUL; i++) {
        live r;
        live_open(&r, stateful_specs[i], &info);
        const rs_router_type *t = r.spec.type;
        ck_assert_ptr_eq(rs_router_find(t->name), t);
        ck_assert_msg(t->flags & RS_ROUTER_STATEFUL, "%s is not flagged stateful", t->name);
        int oracle = strcmp(t->name, "segment") == 0;
        ck_assert_int_eq(!(t->flags & RS_ROUTER_CAUSAL), oracle);
        ck_assert_int_eq(r.shape.group, oracle ? RS_GROUP_SEQUENCE : RS_GROUP_NONE);
        ck_assert_int_eq(r.kmax, oracle ? 6 : 2); /* segment: m k = 3 x 2 distinct experts at most */
        live_close(&r);
    }
    /* segment with alpha = 0 takes every expert */
    live r;
    live_open(&r, "segment:m=2,k=1,alpha=0", &info);
    ck_assert_int_eq(r.kmax, 8);
    live_close(&r);
}
END_TEST

Suite *routers_locality_suite(void)
{
    Suite *s = suite_create("routers_locality");
    TCase *tc = tcase_create("routers_locality");
    tcase_add_test(tc, sticky_hand_cases);
    tcase_add_test(tc, cache_maxrank_hand_cases);
    tcase_add_test(tc, cache_prior_hand_cases);
    tcase_add_test(tc, segment_hand_cases);
    tcase_add_test(tc, graph_smooth_hand_cases);
    tcase_add_loop_test(tc, chunk_splits_change_nothing, 0, NUM_STATEFUL);
    tcase_add_test(tc, degenerate_settings_are_topk);
    tcase_add_test(tc, parameters_are_validated);
    tcase_add_test(tc, descriptors_declare_order_and_groups);
    suite_add_tcase(s, tc);
    return s;
}
