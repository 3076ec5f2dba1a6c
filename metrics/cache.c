/* cache: expert offloading caches (docs/metrics.md#expert-cache-simulation).
 *
 * Each layer has a cache of `slots` experts (scope=layer), or all layers
 * share one pool of slots * L (scope=global, objects layer * E + expert, a
 * token's layers in order). A token's experts at one layer form a batch
 * (cache_sim.h). The caches run in the metric's update in token order;
 * cache_domain.c runs the simulations, this file feeds them tokens, builds
 * prefetch sets and reports. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/cache_domain.h"
#include "metrics/nominal_k.h"
#include "routesim/metric.h"
#include "routesim/router.h"

enum {
    PARAM_POLICY,
    PARAM_SLOTS,
    PARAM_SCOPE,
    PARAM_RESET,
    PARAM_SEED,
    PARAM_M,
    PARAM_PREFETCH,
    PARAM_EXPERT_BYTES,
    PARAM_LINK_GBPS,
    PARAM_GAP,
    PARAM_CURVE,
};

/* Defaults of the parameters that are left out of result keys unless given. */
#define DEFAULT_SLOTS_PER_K 2 /* slots = 2 k: Mixtral-offloading keeps 4 of 8 experts per layer at top-2 */
#define DEFAULT_M 16
#define DEFAULT_EXPERT_BYTES 352321536.0 /* Mixtral-8x7B: 3 * 4096 * 14336 weights in bf16 */
#define DEFAULT_LINK_GBPS 25.0           /* PCIe 4.0 x16, achievable */
/* Lookahead policies buffer a segment's expert ids; one accumulator may hold this much. */
#define MAX_BUFFER_BYTES ((size_t)1 << 30)

static const rs_param_def cache_params[] = {
    [PARAM_POLICY] = {"policy", RS_PARAM_ENUM, "lru", 0, 0, "lru|lfu|fifo|random|belady|static|sch",
                      "replacement policy"},
    [PARAM_SLOTS] = {"slots", RS_PARAM_INT, NULL, 1, 65535, NULL,
                     "expert slots per layer (scope=global: one pool of slots * L) (unset: 2 k, k the router's "
                     "experts per token, or the trace's top_k for dynamic-k routers)"},
    [PARAM_SCOPE] = {"scope", RS_PARAM_ENUM, "layer", 0, 0, "layer|global",
                     "a cache per layer, or one pool for all layers"},
    [PARAM_RESET] = {"reset", RS_PARAM_ENUM, NULL, 0, 0, "sequence|never",
                     "empty the caches at every sequence start, or never (unset: sequence)"},
    [PARAM_SEED] = {"seed", RS_PARAM_INT, NULL, 0, 9007199254740991.0, NULL, "policy random: seed (unset: 0)"},
    [PARAM_M] = {"m", RS_PARAM_INT, NULL, 1, 65536, NULL,
                 "policy sch: segment length, the next m-1 tokens are looked at (unset: 16)"},
    [PARAM_PREFETCH] = {"prefetch", RS_PARAM_ENUM, NULL, 0, 0, "none|prev_token|affinity|oracle_next",
                        "prefetcher (unset: none)"},
    [PARAM_EXPERT_BYTES] = {"expert_bytes", RS_PARAM_FLOAT, NULL, 0, 1e15, NULL,
                            "bytes per expert (unset: 352321536, a Mixtral-8x7B expert in bf16)"},
    [PARAM_LINK_GBPS] = {"link_gbps", RS_PARAM_FLOAT, NULL, 1e-9, 1e9, NULL,
                         "link bandwidth in GB/s, 1e9 bytes/s (unset: 25, PCIe 4.0 x16)"},
    [PARAM_GAP] = {"gap", RS_PARAM_BOOL, NULL, 0, 1, NULL,
                   "report belady_gap, running Belady too (unset: 1; 0 saves its time and buffer)"},
    [PARAM_CURVE] = {"curve", RS_PARAM_BOOL, NULL, 0, 1, NULL, "report hit_rate_curve over C = 1..E (unset: 0)"},
};

enum { OUT_HIT_RATE, OUT_HIT_RATE_WARM, OUT_BYTES_MOVED, OUT_STALL_S, OUT_BELADY_GAP, OUT_CURVE };

#define P(x) (1ull << (x))
#define POLICY_KEY (P(PARAM_POLICY) | P(PARAM_SCOPE) | P(PARAM_RESET) | P(PARAM_SEED) | P(PARAM_M) | P(PARAM_PREFETCH))

static const rs_metric_output cache_outputs[] = {
    [OUT_HIT_RATE] = {"hit_rate", "hits / accesses, cold misses included (layer=all: over every layer's accesses)",
                      POLICY_KEY | P(PARAM_SLOTS), RS_AGG_SELF, .label = "hit rate", .unit = "%", .unit_scale = 100},
    [OUT_HIT_RATE_WARM] = {"hit_rate_warm",
                           "hit_rate where a first access while fewer than C distinct experts were seen is a hit",
                           POLICY_KEY | P(PARAM_SLOTS), RS_AGG_SELF, .label = "hit rate, warm start", .unit = "%",
                           .unit_scale = 100},
    [OUT_BYTES_MOVED] = {"bytes_moved", "(misses + prefetched experts) * expert_bytes (layer=all: summed)",
                         POLICY_KEY | P(PARAM_SLOTS) | P(PARAM_EXPERT_BYTES), RS_AGG_SELF, .label = "bytes moved",
                         .unit = "GB", .unit_scale = 1e-9},
    [OUT_STALL_S] = {"stall_s", "bytes_moved / link bandwidth, seconds (layer=all: summed)",
                     POLICY_KEY | P(PARAM_SLOTS) | P(PARAM_EXPERT_BYTES) | P(PARAM_LINK_GBPS), RS_AGG_SELF,
                     .label = "modelled stall time", .unit = "s"},
    [OUT_BELADY_GAP] = {"belady_gap", "Belady's hit_rate - the policy's, same slots, scope and reset (gap=1)",
                        POLICY_KEY | P(PARAM_SLOTS) | P(PARAM_GAP), RS_AGG_SELF, .label = "gap to Belady",
                        .unit = "percentage points", .unit_scale = 100},
    [OUT_CURVE] = {"hit_rate_curve", "hit_rate at every C = 1..E, key slots=C, from one pass (curve=1)",
                   POLICY_KEY | P(PARAM_CURVE), RS_AGG_SELF, .label = "hit rate", .unit = "%", .unit_scale = 100},
};

typedef enum prefetcher { PREFETCH_NONE, PREFETCH_PREV_TOKEN, PREFETCH_AFFINITY, PREFETCH_ORACLE_NEXT } prefetcher;

typedef struct cache_acc {
    int L, E;
    int64_t T;
    cache_policy policy;
    int global, reset_never, gap, curve;
    prefetcher prefetch;
    int by_chunk; /* caches run in update_chunk (global pool, affinity), else in update_layer */
    double expert_bytes, link_bytes_per_s;
    int ndomains;
    cache_domain *domains;
    /* "slots=N" when slots was left unset (N from the router's k), so the
     * rows' keys name the size they were measured at; "" otherwise */
    char default_slots_key[32];
    /* per layer: the token's batch (expert ids), its prefetch set, the
     * batch as pool objects, repeat marks for E > 64 */
    int32_t *batch, *pf, *objs; /* [L][E] */
    int *batch_n;               /* [L] */
    uint32_t *mark;             /* [L][E] */
    uint32_t *mark_stamp;       /* [L] */
    /* prev_token: the previous token's batch per layer */
    int32_t *prev;       /* [L][E] */
    int *prev_n;         /* [L] */
    int64_t *prev_token; /* [L] global index, -1 none */
    /* affinity: A[l][i][j] = tokens using i at layer l and j at l + 1 this
     * segment; a row whose epoch is not the segment's counts as zeros */
    uint32_t *affinity;  /* [L-1][E][E] */
    uint32_t *row_epoch; /* [L-1][E] */
    uint32_t epoch;
    uint64_t *score; /* [E] */
} cache_acc;

static void cache_destroy(void *p)
{
    cache_acc *a = p;
    if (!a)
        return;
    for (int d = 0; a->domains && d < a->ndomains; d++)
        rs_cache_domain_free(&a->domains[d]);
    free(a->domains);
    free(a->batch);
    free(a->pf);
    free(a->objs);
    free(a->batch_n);
    free(a->mark);
    free(a->mark_stamp);
    free(a->prev);
    free(a->prev_n);
    free(a->prev_token);
    free(a->affinity);
    free(a->row_epoch);
    free(a->score);
    free(a);
}

static cache_policy policy_of(const char *name)
{
    static const char *const names[] = {"lru", "lfu", "fifo", "random", "belady", "static", "sch"};
    for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++)
        if (strcmp(name, names[i]) == 0)
            return (cache_policy)i;
    return CACHE_LRU;
}

static int is_lookahead(cache_policy p) { return p == CACHE_BELADY || p == CACHE_SCH; }

static cache_curve curve_of(const cache_acc *a)
{
    if (!a->curve)
        return CACHE_CURVE_NONE;
    if (a->prefetch != PREFETCH_NONE)
        return CACHE_CURVE_PER_SIZE; /* prefetching breaks the stack property */
    switch (a->policy) {
    case CACHE_LRU: return CACHE_CURVE_LRU;
    case CACHE_BELADY: return CACHE_CURVE_BELADY;
    case CACHE_STATIC: return CACHE_CURVE_STATIC;
    default: return CACHE_CURVE_PER_SIZE;
    }
}

static int cache_create(void **out, const rs_params *params, const rs_metric_setup *setup, rs_error *err)
{
    const rs_trace_info *info = setup->trace;
    const char *policy_name = rs_param_str(params, "policy");
    const char *prefetch_name = rs_param_is_set(params, "prefetch") ? rs_param_str(params, "prefetch") : "none";
    const int L = info->num_layers, E = info->num_experts, K = setup->kmax > 0 ? setup->kmax : 1;
    const int global = strcmp(rs_param_str(params, "scope"), "global") == 0;
    const int reset_never = rs_param_is_set(params, "reset") && strcmp(rs_param_str(params, "reset"), "never") == 0;
    const int gap = rs_param_is_set(params, "gap") ? rs_param_bool(params, "gap") : 1;
    const int slots_unset = !rs_param_is_set(params, "slots");
    const long long slots =
        slots_unset ? (long long)DEFAULT_SLOTS_PER_K * rs_metric_nominal_k(setup) : rs_param_int(params, "slots");
    const cache_policy policy = policy_of(policy_name);
    prefetcher prefetch = PREFETCH_NONE;
    if (strcmp(prefetch_name, "prev_token") == 0)
        prefetch = PREFETCH_PREV_TOKEN;
    else if (strcmp(prefetch_name, "affinity") == 0)
        prefetch = PREFETCH_AFFINITY;
    else if (strcmp(prefetch_name, "oracle_next") == 0)
        prefetch = PREFETCH_ORACLE_NEXT;

    RS_CHECK(L >= 1 && E >= 1, err, "metric cache: the trace has no layers or experts");
    RS_CHECK(slots >= 1, err, "metric cache: the router selects no expert, so the default slots = 2 k is 0; set "
             "parameter slots");
    RS_CHECK(policy != CACHE_STATIC || prefetch == PREFETCH_NONE, err,
             "metric cache: policy=static pins its experts and loads nothing else; prefetch=%s does not apply",
             prefetch_name);
    const long long nobj = global ? (long long)L * E : E;
    const int lookahead = is_lookahead(policy) || (gap && policy != CACHE_BELADY); /* the Belady curve is belady's */
    RS_CHECK(!lookahead || nobj <= 65535, err,
             "metric cache: %s needs each sequence's expert ids buffered (16-bit ids), but scope=%s serves %lld "
             "experts; use scope=layer%s",
             is_lookahead(policy) ? (policy == CACHE_BELADY ? "policy=belady" : "policy=sch") : "belady_gap (gap=1)",
             global ? "global" : "layer", nobj, is_lookahead(policy) ? "" : " or gap=0");
    if (lookahead && reset_never) {
        /* with reset=never the segment is the whole trace: its ids, their links and batch sizes */
        double per_token = (double)L * ((double)K * 6.0 + 2.0 + (prefetch != PREFETCH_NONE ? K * 2.0 + 2.0 : 0.0));
        double need = (double)info->num_tokens * per_token;
        RS_CHECK(need <= (double)MAX_BUFFER_BYTES, err,
                 "metric cache: %s with reset=never replays the whole trace, %.0f MiB of expert ids, over the %zu MiB "
                 "limit; use reset=sequence%s",
                 is_lookahead(policy) ? (policy == CACHE_BELADY ? "policy=belady" : "policy=sch")
                                      : "belady_gap (gap=1)",
                 need / 1048576.0, MAX_BUFFER_BYTES >> 20, is_lookahead(policy) ? "" : " or gap=0");
    }

    cache_acc *a = calloc(1, sizeof *a);
    RS_CHECK(a, err, "metric cache: out of memory");
    a->L = L;
    a->E = E;
    a->T = info->num_tokens;
    a->policy = policy;
    a->global = global;
    a->reset_never = reset_never;
    a->gap = gap;
    a->curve = rs_param_is_set(params, "curve") ? rs_param_bool(params, "curve") : 0;
    a->prefetch = prefetch;
    a->by_chunk = global || prefetch == PREFETCH_AFFINITY;
    a->expert_bytes = rs_param_is_set(params, "expert_bytes") ? rs_param_float(params, "expert_bytes")
                                                              : DEFAULT_EXPERT_BYTES;
    a->link_bytes_per_s =
        (rs_param_is_set(params, "link_gbps") ? rs_param_float(params, "link_gbps") : DEFAULT_LINK_GBPS) * 1e9;
    a->ndomains = global ? 1 : L;
    if (slots_unset)
        snprintf(a->default_slots_key, sizeof a->default_slots_key, "slots=%lld", slots);

    long long capacity = global ? slots * L : slots;
    if (capacity > nobj) /* a cache that holds every expert never evicts */
        capacity = nobj;
    cache_domain_config cfg = {
        .policy = policy,
        .capacity = (int)capacity,
        .nobj = (int)nobj,
        .E = E,
        .nlayers = global ? L : 1,
        .stride = global ? L : 1,
        .m = rs_param_is_set(params, "m") ? (int)rs_param_int(params, "m") : DEFAULT_M,
        .gap = gap,
        .prefetch = prefetch != PREFETCH_NONE,
        .curve = curve_of(a),
        .curve_sizes = E,
        .size_step = global ? L : 1,
        .seed = rs_param_is_set(params, "seed") ? (uint64_t)rs_param_int(params, "seed") : 0,
        .max_buffer = MAX_BUFFER_BYTES / (size_t)a->ndomains,
    };
    const size_t LE = (size_t)L * (size_t)E;
    a->domains = calloc((size_t)a->ndomains, sizeof *a->domains);
    a->batch = malloc(LE * sizeof *a->batch);
    a->pf = malloc(LE * sizeof *a->pf);
    a->objs = malloc(LE * sizeof *a->objs);
    a->batch_n = calloc((size_t)L, sizeof *a->batch_n);
    a->mark = calloc(LE, sizeof *a->mark);
    a->mark_stamp = calloc((size_t)L, sizeof *a->mark_stamp);
    a->prev = malloc(LE * sizeof *a->prev);
    a->prev_n = calloc((size_t)L, sizeof *a->prev_n);
    a->prev_token = malloc((size_t)L * sizeof *a->prev_token);
    int ok = a->domains && a->batch && a->pf && a->objs && a->batch_n && a->mark && a->mark_stamp && a->prev &&
             a->prev_n && a->prev_token;
    for (int l = 0; ok && l < L; l++)
        a->prev_token[l] = -1;
    if (ok && prefetch == PREFETCH_AFFINITY && L > 1) {
        a->affinity = malloc((size_t)(L - 1) * (size_t)E * (size_t)E * sizeof *a->affinity);
        a->row_epoch = calloc((size_t)(L - 1) * (size_t)E, sizeof *a->row_epoch);
        a->score = malloc((size_t)E * sizeof *a->score);
        a->epoch = 1;
        ok = a->affinity && a->row_epoch && a->score;
    }
    for (int d = 0; ok && d < a->ndomains; d++)
        ok = rs_cache_domain_init(&a->domains[d], &cfg) == 0;
    if (!ok) {
        const int caches = a->ndomains;
        cache_destroy(a);
        return rs_fail(err, "metric cache: out of memory (%lld experts per cache, %d caches)", nobj, caches);
    }
    *out = a;
    return 0;
}

/* Token t's distinct experts at layer l (padding -1 left out, first
 * occurrence kept) into a->batch row l; skipped tokens have none. */
static int gather(cache_acc *a, const rs_chunk *c, const rs_decisions *dec, int t, int l)
{
    int32_t *out = a->batch + (size_t)l * (size_t)a->E;
    const int32_t *ids = dec->ids + rs_decision_row(c, dec, t, l);
    const int E = a->E, K = dec->kmax;
    int n = 0;
    if (E <= 64) { /* a register of flags */
        uint64_t seen = 0;
        for (int j = 0; j < K; j++) { /* branch-free: -1 padding and repeats are dropped */
            uint32_t e = (uint32_t)ids[j];
            uint64_t bit = 1ull << (e & 63);
            int keep = e < (uint32_t)E && !(seen & bit);
            seen |= keep ? bit : 0;
            out[n] = (int32_t)e;
            n += keep;
        }
    } else {
        uint32_t *mark = a->mark + (size_t)l * (size_t)E;
        if (++a->mark_stamp[l] == 0) {
            memset(mark, 0, (size_t)E * sizeof *mark);
            a->mark_stamp[l] = 1;
        }
        const uint32_t stamp = a->mark_stamp[l];
        for (int j = 0; j < K; j++) {
            int32_t e = ids[j];
            if (e >= 0 && e < E && mark[e] != stamp) {
                mark[e] = stamp;
                out[n++] = e;
            }
        }
    }
    a->batch_n[l] = n;
    return n;
}

/* affinity: the |S| experts of layer l most often following S (token t's
 * experts at layer l - 1) in the tokens seen so far, by summed transition
 * counts, ties to the lower id, zero counts never; into pf. */
static int predict_affinity(cache_acc *a, int l, int32_t *pf)
{
    if (l == 0)
        return 0;
    const int E = a->E;
    const int32_t *src = a->batch + (size_t)(l - 1) * (size_t)E;
    const int n_src = a->batch_n[l - 1];
    const uint32_t *table = a->affinity + (size_t)(l - 1) * (size_t)E * (size_t)E;
    const uint32_t *epochs = a->row_epoch + (size_t)(l - 1) * (size_t)E;
    uint64_t *score = a->score;
    memset(score, 0, (size_t)E * sizeof *score);
    for (int i = 0; i < n_src; i++) {
        if (epochs[src[i]] != a->epoch)
            continue;
        const uint32_t *row = table + (size_t)src[i] * (size_t)E;
        for (int j = 0; j < E; j++)
            score[j] += row[j];
    }
    int n = 0;
    for (; n < n_src; n++) {
        int best = -1;
        for (int j = 0; j < E; j++)
            if (score[j] > 0 && (best < 0 || score[j] > score[best]))
                best = j;
        if (best < 0)
            break;
        pf[n] = best;
        score[best] = 0;
    }
    return n;
}

/* affinity: learns token t's transitions (after its layers ran). */
static void learn_affinity(cache_acc *a)
{
    const int E = a->E;
    for (int l = 1; l < a->L; l++) {
        const int32_t *src = a->batch + (size_t)(l - 1) * (size_t)E, *dst = a->batch + (size_t)l * (size_t)E;
        uint32_t *table = a->affinity + (size_t)(l - 1) * (size_t)E * (size_t)E;
        uint32_t *epochs = a->row_epoch + (size_t)(l - 1) * (size_t)E;
        for (int i = 0; i < a->batch_n[l - 1]; i++) {
            uint32_t *row = table + (size_t)src[i] * (size_t)E;
            if (epochs[src[i]] != a->epoch) {
                memset(row, 0, (size_t)E * sizeof *row);
                epochs[src[i]] = a->epoch;
            }
            for (int j = 0; j < a->batch_n[l]; j++)
                row[dst[j]]++;
        }
    }
}

/* The prefetch set for token t at layer l, expert ids; seq_first is the
 * first token of its sequence. */
static int prefetch_set(cache_acc *a, int l, int64_t seq_first, int32_t *pf)
{
    const int32_t *batch = a->batch + (size_t)l * (size_t)a->E;
    switch (a->prefetch) {
    case PREFETCH_NONE: return 0;
    case PREFETCH_ORACLE_NEXT:
        if (l == 0)
            return 0;
        memcpy(pf, batch, (size_t)a->batch_n[l] * sizeof *pf);
        return a->batch_n[l];
    case PREFETCH_PREV_TOKEN: /* the previous observed token of the sequence */
        if (a->prev_token[l] < seq_first)
            return 0;
        memcpy(pf, a->prev + (size_t)l * (size_t)a->E, (size_t)a->prev_n[l] * sizeof *pf);
        return a->prev_n[l];
    case PREFETCH_AFFINITY: return predict_affinity(a, l, pf);
    }
    return 0;
}

static void remember_prev(cache_acc *a, int l, int64_t g)
{
    if (a->prefetch != PREFETCH_PREV_TOKEN)
        return;
    memcpy(a->prev + (size_t)l * (size_t)a->E, a->batch + (size_t)l * (size_t)a->E,
           (size_t)a->batch_n[l] * sizeof *a->prev);
    a->prev_n[l] = a->batch_n[l];
    a->prev_token[l] = g;
}

/* Where token t stands: the first token of its sequence; and where the
 * caches' segment starts and ends (every sequence, or the whole trace with
 * reset=never). */
static void token_place(const cache_acc *a, const rs_chunk *c, int t, int64_t *seq_first, int *starts, int *ends)
{
    const int64_t g = c->t0 + t;
    const int32_t s = c->seq_of_token[t];
    *seq_first = c->seq_offsets[s];
    if (a->reset_never) {
        *starts = 0;
        *ends = a->T > 0 && g + 1 == a->T;
    } else {
        *starts = *seq_first == g;
        *ends = c->seq_offsets[s + 1] == g + 1;
    }
}

/* Objects of layer l in the domain: expert ids, or l * E + expert in the pool. */
static void to_objects(const cache_acc *a, int32_t *ids, int n, int l)
{
    if (!a->global)
        return;
    const int32_t base = l * a->E;
    for (int i = 0; i < n; i++)
        ids[i] += base;
}

static void cache_update_layer(void *p, const rs_chunk *c, int layer, const rs_decisions *dec,
                               const rs_metric_ref *ref)
{
    (void)ref;
    cache_acc *a = p;
    if (a->by_chunk)
        return;
    cache_domain *d = &a->domains[layer];
    int32_t *pf = a->pf + (size_t)layer * (size_t)a->E;
    for (int t = 0; t < c->n; t++) {
        int64_t seq_first;
        int starts, ends;
        token_place(a, c, t, &seq_first, &starts, &ends);
        if (starts || !d->open) {
            rs_cache_domain_begin(d);
            a->prev_token[layer] = -1;
        }
        if (rs_row_observed(c, dec, t, layer)) { /* others are absent: no batch */
            const int64_t g = c->t0 + t;
            int n = gather(a, c, dec, t, layer);
            int n_pf = prefetch_set(a, layer, seq_first, pf);
            rs_cache_domain_push(d, a->batch + (size_t)layer * (size_t)a->E, n, pf, n_pf, g, layer);
            remember_prev(a, layer, g);
        }
        if (ends)
            rs_cache_domain_end(d);
    }
}

static void cache_update_chunk(void *p, const rs_chunk *c, const rs_decisions *dec, const rs_metric_ref *ref)
{
    (void)ref;
    cache_acc *a = p;
    if (!a->by_chunk)
        return;
    const int L = a->L, E = a->E;
    for (int t = 0; t < c->n; t++) {
        int64_t seq_first;
        int starts, ends;
        token_place(a, c, t, &seq_first, &starts, &ends);
        if (starts || !a->domains[0].open) {
            for (int d = 0; d < a->ndomains; d++)
                rs_cache_domain_begin(&a->domains[d]);
            for (int l = 0; l < L; l++)
                a->prev_token[l] = -1;
            if (++a->epoch == 0) { /* wrapped: clear the transition table's row marks */
                if (a->row_epoch)
                    memset(a->row_epoch, 0, (size_t)(L - 1) * (size_t)E * sizeof *a->row_epoch);
                a->epoch = 1;
            }
        }
        int observed = 0;
        for (int l = 0; l < L && !observed; l++)
            observed = rs_row_observed(c, dec, t, l);
        if (observed) { /* a token observed at no layer is absent */
            const int64_t g = c->t0 + t;
            for (int l = 0; l < L; l++) {
                int32_t *pf = a->pf + (size_t)l * (size_t)E;
                if (!rs_row_observed(c, dec, t, l)) {
                    /* absent at this layer: the pool still gets an (empty) batch, one per layer */
                    a->batch_n[l] = 0;
                    if (a->global)
                        rs_cache_domain_push(&a->domains[0], a->objs, 0, pf, 0, g, l);
                    continue;
                }
                int n = gather(a, c, dec, t, l);
                int n_pf = prefetch_set(a, l, seq_first, pf);
                /* the pool's objects are layer * E + expert; batch rows stay expert ids */
                int32_t *objs = a->objs + (size_t)l * (size_t)E;
                memcpy(objs, a->batch + (size_t)l * (size_t)E, (size_t)n * sizeof *objs);
                to_objects(a, objs, n, l);
                to_objects(a, pf, n_pf, l);
                rs_cache_domain_push(&a->domains[a->global ? 0 : l], objs, n, pf, n_pf, g, l);
                remember_prev(a, l, g);
            }
            if (a->affinity)
                learn_affinity(a);
        }
        if (ends)
            for (int d = 0; d < a->ndomains; d++)
                rs_cache_domain_end(&a->domains[d]);
    }
}

/* Between sequences only the counts are merged: the rest goes. */
static void cache_compact(void *p)
{
    cache_acc *a = p;
    if (a->reset_never)
        return; /* its caches carry over: never merged */
    for (int d = 0; d < a->ndomains; d++)
        if (a->domains[d].open)
            return;
    for (int d = 0; d < a->ndomains; d++)
        rs_cache_domain_compact(&a->domains[d]);
    free(a->batch);
    free(a->pf);
    free(a->objs);
    free(a->mark);
    free(a->prev);
    free(a->affinity);
    free(a->row_epoch);
    free(a->score);
    a->batch = a->pf = a->objs = a->prev = NULL;
    a->mark = a->row_epoch = NULL;
    a->affinity = NULL;
    a->score = NULL;
}

static int cache_merge(void *p, const void *q, rs_error *err)
{
    cache_acc *a = p;
    const cache_acc *b = q;
    RS_CHECK(a->L == b->L && a->E == b->E && a->ndomains == b->ndomains && a->policy == b->policy, err,
             "metric cache: merging unlike accumulators");
    RS_CHECK(!a->reset_never, err,
             "metric cache: with reset=never the caches carry over from one part of the trace to the next, so "
             "parts cannot be merged");
    for (int d = 0; d < a->ndomains; d++)
        RS_CHECK(!a->domains[d].open && !b->domains[d].open, err,
                 "metric cache: parts can only be merged at sequence boundaries (a part ends inside a sequence)");
    for (int d = 0; d < a->ndomains; d++)
        rs_cache_domain_merge(&a->domains[d], &b->domains[d]);
    return 0;
}

static double ratio(int64_t num, int64_t den) { return den > 0 ? (double)num / (double)den : NAN; }

/* The domain holding layer l and l's index among its counted layers. */
static const cache_domain *domain_of(const cache_acc *a, int l, int *counted)
{
    *counted = a->global ? l : 0;
    return &a->domains[a->global ? 0 : l];
}

static void emit_curve(const cache_acc *a, rs_metric_sink *sink, const int64_t *accesses, int lost)
{
    const int L = a->L, E = a->E;
    int64_t *hits = malloc((size_t)L * (size_t)E * sizeof *hits); /* [layer][C-1] */
    if (!hits)
        return;
    for (int d = 0; d < a->ndomains; d++) {
        const cache_domain *dom = &a->domains[d];
        rs_cache_domain_curve(dom, hits + (size_t)d * (size_t)E);
    }
    for (int C = 1; C <= E; C++) {
        char key[32];
        snprintf(key, sizeof key, "slots=%d", C);
        int64_t hit_all = 0, acc_all = 0;
        for (int l = 0; l < L; l++) {
            int64_t h = hits[(size_t)l * (size_t)E + (size_t)(C - 1)];
            hit_all += h;
            acc_all += accesses[l];
            rs_metric_emit(sink, OUT_CURVE, l, key, lost ? NAN : ratio(h, accesses[l]));
        }
        rs_metric_emit(sink, OUT_CURVE, -1, key, lost ? NAN : ratio(hit_all, acc_all));
    }
    free(hits);
}

static void cache_finalize(const void *p, rs_metric_sink *sink)
{
    const cache_acc *a = p;
    const int L = a->L;
    const char *slots_key = a->default_slots_key; /* sorts last, where the given slots would be */
    int64_t *hits = calloc((size_t)L, sizeof *hits), *warm = calloc((size_t)L, sizeof *warm);
    int64_t *accesses = calloc((size_t)L, sizeof *accesses);
    int ok = hits && warm && accesses;
    int lost = 0;
    for (int d = 0; ok && d < a->ndomains; d++) {
        const cache_domain *dom = &a->domains[d];
        int base = a->global ? 0 : d;
        ok = rs_cache_domain_results(dom, hits + base, warm + base) == 0;
        for (int l = 0; l < dom->cfg.nlayers; l++)
            accesses[base + l] = dom->counts[l].accesses;
        lost |= dom->lost || (dom->open && dom->lookahead); /* a segment never ended: not replayed */
    }
    if (!ok) {
        free(hits);
        free(warm);
        free(accesses);
        return;
    }
    /* what was lost when a segment outgrew its buffer */
    const int main_lost = lost && is_lookahead(a->policy);
    const int gap_lost = lost;
    const int curve_lost = lost && (curve_of(a) == CACHE_CURVE_BELADY ||
                                    (curve_of(a) == CACHE_CURVE_PER_SIZE && is_lookahead(a->policy)));
    int64_t all_acc = 0, all_hits = 0, all_warm = 0, all_moved = 0, all_belady = 0;
    for (int l = 0; l < L; l++) {
        int counted;
        const cache_domain *dom = domain_of(a, l, &counted);
        const cache_counts *k = &dom->counts[counted];
        int64_t moved = accesses[l] - hits[l] + k->prefetched;
        int64_t belady = a->policy == CACHE_BELADY ? hits[l] : k->belady_hits;
        all_acc += accesses[l];
        all_hits += hits[l];
        all_warm += warm[l];
        all_moved += moved;
        all_belady += belady;
        double bytes = main_lost ? NAN : (double)moved * a->expert_bytes;
        rs_metric_emit(sink, OUT_HIT_RATE, l, slots_key, main_lost ? NAN : ratio(hits[l], accesses[l]));
        rs_metric_emit(sink, OUT_HIT_RATE_WARM, l, slots_key, main_lost ? NAN : ratio(warm[l], accesses[l]));
        rs_metric_emit(sink, OUT_BYTES_MOVED, l, slots_key, bytes);
        rs_metric_emit(sink, OUT_STALL_S, l, slots_key, bytes / a->link_bytes_per_s);
        if (a->gap)
            rs_metric_emit(sink, OUT_BELADY_GAP, l, slots_key,
                           gap_lost ? NAN : ratio(belady, accesses[l]) - ratio(hits[l], accesses[l]));
    }
    double bytes = main_lost ? NAN : (double)all_moved * a->expert_bytes;
    rs_metric_emit(sink, OUT_HIT_RATE, -1, slots_key, main_lost ? NAN : ratio(all_hits, all_acc));
    rs_metric_emit(sink, OUT_HIT_RATE_WARM, -1, slots_key, main_lost ? NAN : ratio(all_warm, all_acc));
    rs_metric_emit(sink, OUT_BYTES_MOVED, -1, slots_key, bytes);
    rs_metric_emit(sink, OUT_STALL_S, -1, slots_key, bytes / a->link_bytes_per_s);
    if (a->gap)
        rs_metric_emit(sink, OUT_BELADY_GAP, -1, slots_key,
                       gap_lost ? NAN : ratio(all_belady, all_acc) - ratio(all_hits, all_acc));
    if (a->curve)
        emit_curve(a, sink, accesses, curve_lost);
    free(hits);
    free(warm);
    free(accesses);
}

static void cache_checkpoint(void *p, rs_state_io *io)
{
    cache_acc *a = p;
    const size_t L = (size_t)a->L, E = (size_t)a->E;
    uint8_t whole = a->mark != NULL; /* a compacted bootstrap block keeps only what merge reads */
    RS_STATE(io, whole);
    if (!whole && rs_state_restoring(io) && a->mark)
        cache_compact(a);
    for (int d = 0; d < a->ndomains; d++)
        rs_cache_domain_checkpoint(&a->domains[d], io);
    if (whole) {
        RS_STATE_ARRAY(io, a->mark, L * E);
        RS_STATE_ARRAY(io, a->prev, L * E);
    }
    RS_STATE_ARRAY(io, a->mark_stamp, L);
    RS_STATE_ARRAY(io, a->prev_n, L);
    RS_STATE_ARRAY(io, a->prev_token, L);
    if (whole && a->affinity) {
        RS_STATE_ARRAY(io, a->affinity, (L - 1) * E * E);
        RS_STATE_ARRAY(io, a->row_epoch, (L - 1) * E);
    }
    RS_STATE(io, a->epoch);
}

static const rs_metric_type cache_type = {
    .name = "cache",
    .summary = "expert offloading caches (lru, lfu, fifo, random, belady, static, sch; prefetchers): hit rates, "
               "bytes moved, stall time, Belady gap, one-pass hit-rate curves",
    .source = "libCacheSim tie rules (1a1a11a/libCacheSim libCacheSim/cache/eviction/{LRU,LFU,FIFO,Belady}.c); "
              "Mattson et al. 1970 stack algorithms; static pinning: Fiddler arXiv:2402.07033; sch: Liang et al. "
              "arXiv:2505.16056; offloading: Eliseev & Mazur arXiv:2312.17238; prefetch: ExFlow arXiv:2401.08383, "
              "Pre-gated MoE arXiv:2308.12066",
    .params = cache_params,
    .num_params = sizeof cache_params / sizeof cache_params[0],
    .outputs = cache_outputs,
    .num_outputs = sizeof cache_outputs / sizeof cache_outputs[0],
    .needs = 0,
    .flags = RS_METRIC_SEQUENTIAL,
    .create = cache_create,
    .update_layer = cache_update_layer,
    .update_chunk = cache_update_chunk,
    .merge = cache_merge,
    .compact = cache_compact,
    .finalize = cache_finalize,
    .destroy = cache_destroy,
    .checkpoint = cache_checkpoint,
};

const rs_metric_type *const rs_metric_cache = &cache_type;
