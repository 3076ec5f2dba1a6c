/* specialization: whether experts specialise in vocabulary
 * (vocab_specialization) or in domains (domain_specialization);
 * docs/metrics.md#locality-and-affinity.
 *
 * vocab_specialization counts, per layer, occurrences of each (token id,
 * top-1 expert) pair in a hash table: memory grows with the distinct pairs
 * seen, never with T beyond that (at most vocabulary x (E + 1) per layer).
 * domain_specialization counts, per domain label, tokens and per (layer,
 * expert) activations. All counts are integers, and finalize visits token
 * ids and domains in sorted order, so values do not depend on chunking or
 * merge order. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "routesim/metric.h"
#include "routesim/router.h"
#include "routesim/xsum.h"

enum { OUT_VOCAB_SPECIALIZATION, OUT_DOMAIN_SPECIALIZATION };
enum { PARAM_MIN_COUNT, PARAM_AVERAGE };
enum { AVERAGE_TOKEN, AVERAGE_EXPERT };

static const rs_param_def specialization_params[] = {
    [PARAM_MIN_COUNT] = {"min_count", RS_PARAM_INT, "20", 1, 1e15, NULL,
                         "vocab_specialization: token ids seen fewer times are left out (moe-lrc vocab_min_freq)"},
    [PARAM_AVERAGE] = {"average", RS_PARAM_ENUM, "token", 0, 0, "token|expert",
                       "vocab_specialization: mean over token ids (metrics.md), or over experts of the mean over "
                       "the token ids each expert is the favourite of (moe-lrc's figures)"},
};

static const rs_metric_output specialization_outputs[] = {
    [OUT_VOCAB_SPECIALIZATION] = {"vocab_specialization",
                                  "over token ids seen >= min_count times: share of the id's occurrences whose "
                                  "top-1 expert is its most common one, averaged (moe-lrc)",
                                  (1ull << PARAM_MIN_COUNT) | (1ull << PARAM_AVERAGE), RS_AGG_MEAN,
                                  .label = "vocabulary specialisation", .unit = "%", .unit_scale = 100},
    [OUT_DOMAIN_SPECIALIZATION] = {"domain_specialization",
                                   "population std / mean across domains of an expert's activation frequency, "
                                   "averaged over experts (needs /sequences/domain)",
                                   0, RS_AGG_MEAN, .label = "domain specialisation (CV)"},
};

/* Open addressing with linear probing; key 0 marks an empty slot. */
typedef struct pair_table {
    uint64_t *keys;
    int64_t *counts;
    size_t cap, used; /* cap is a power of two */
    int failed;       /* out of memory while counting: the layer's value is NaN */
} pair_table;

typedef struct specialization_acc {
    int L, E;
    int64_t min_count;
    int average;
    int with_ids;     /* the trace has /tokens/ids */
    int with_domains; /* the trace has /sequences/domain */
    int domains_failed; /* out of memory while counting domains: NaN */
    pair_table *tables; /* [L] */
    /* domains, in order of first appearance */
    int num_domains, domain_cap;
    int32_t *labels;      /* [domain_cap] */
    int64_t *dom_tokens;  /* [domain_cap][L] observed tokens */
    int64_t *dom_counts;  /* [domain_cap][L][E] tokens selecting the expert */
    int32_t *window;      /* domain index of each sequence of the chunk, scratch */
    int window_cap;
} specialization_acc;

enum { TABLE_MIN_CAP = 64 };

/* (token id, slot) -> key; slot = top-1 expert, or E for "no expert kept". */
static inline uint64_t pair_key(int32_t token, int slot)
{
    return ((uint64_t)(uint32_t)token << 32) | (uint64_t)(uint32_t)(slot + 1);
}

/* splitmix64's finalizer: every key bit reaches the low bits the mask keeps */
static inline size_t key_hash(uint64_t key, size_t mask)
{
    key ^= key >> 30;
    key *= 0xBF58476D1CE4E5B9ull;
    key ^= key >> 27;
    key *= 0x94D049BB133111EBull;
    key ^= key >> 31;
    return (size_t)key & mask;
}

static int table_init(pair_table *t, size_t cap)
{
    t->keys = calloc(cap, sizeof *t->keys);
    t->counts = calloc(cap, sizeof *t->counts);
    t->cap = cap;
    t->used = 0;
    t->failed = 0;
    return t->keys && t->counts ? 0 : -1;
}

static void table_free(pair_table *t)
{
    free(t->keys);
    free(t->counts);
    memset(t, 0, sizeof *t);
}

static int table_grow(pair_table *t)
{
    pair_table bigger;
    if (table_init(&bigger, t->cap * 2) != 0) {
        table_free(&bigger);
        return -1;
    }
    const size_t mask = bigger.cap - 1;
    for (size_t s = 0; s < t->cap; s++) {
        if (!t->keys[s])
            continue;
        size_t h = key_hash(t->keys[s], mask);
        while (bigger.keys[h])
            h = (h + 1) & mask;
        bigger.keys[h] = t->keys[s];
        bigger.counts[h] = t->counts[s];
    }
    bigger.used = t->used;
    table_free(t);
    *t = bigger;
    return 0;
}

/* counts[key] += n; -1 when the table cannot grow. */
static int table_add(pair_table *t, uint64_t key, int64_t n)
{
    if (10 * (t->used + 1) > 7 * t->cap && table_grow(t) != 0)
        return -1;
    const size_t mask = t->cap - 1;
    size_t h = key_hash(key, mask);
    while (t->keys[h] && t->keys[h] != key)
        h = (h + 1) & mask;
    if (!t->keys[h]) {
        t->keys[h] = key;
        t->used++;
    }
    t->counts[h] += n;
    return 0;
}

static void specialization_destroy(void *p)
{
    specialization_acc *a = p;
    if (!a)
        return;
    if (a->tables)
        for (int l = 0; l < a->L; l++)
            table_free(&a->tables[l]);
    free(a->tables);
    free(a->labels);
    free(a->dom_tokens);
    free(a->dom_counts);
    free(a->window);
    free(a);
}

static int specialization_create(void **out, const rs_params *params, const rs_metric_setup *setup, rs_error *err)
{
    specialization_acc *a = calloc(1, sizeof *a);
    RS_CHECK(a, err, "metric specialization: out of memory");
    a->L = setup->trace->num_layers;
    a->E = setup->trace->num_experts;
    a->with_ids = setup->trace->has_token_ids;
    a->with_domains = setup->trace->has_domain;
    a->min_count = rs_param_int(params, "min_count");
    a->average = strcmp(rs_param_str(params, "average"), "expert") == 0 ? AVERAGE_EXPERT : AVERAGE_TOKEN;
    a->tables = calloc((size_t)a->L, sizeof *a->tables);
    int ok = a->tables != NULL;
    for (int l = 0; ok && l < a->L; l++)
        ok = table_init(&a->tables[l], TABLE_MIN_CAP) == 0;
    if (!ok) {
        specialization_destroy(a);
        return rs_fail(err, "metric specialization: out of memory");
    }
    *out = a;
    return 0;
}

/* Counts (token id, top-1 expert) at one layer; top-1 = the kept expert with
 * the largest combine weight, ties to the earlier slot. */
static void specialization_update_layer(void *p, const rs_chunk *c, int layer, const rs_decisions *dec,
                                        const rs_metric_ref *ref)
{
    (void)ref;
    specialization_acc *a = p;
    pair_table *table = &a->tables[layer];
    if (!c->token_ids || table->failed)
        return;
    const int K = dec->kmax;
    for (int t = 0; t < c->n; t++) {
        if (!rs_row_observed(c, dec, t, layer))
            continue;
        size_t row = rs_decision_row(c, dec, t, layer);
        const int32_t *ids = dec->ids + row;
        const float *w = dec->weights + row;
        int top = a->E; /* no expert kept */
        float best = 0.0f;
        for (int j = 0; j < K; j++) {
            if (ids[j] >= 0 && (top == a->E || w[j] > best)) {
                top = ids[j];
                best = w[j];
            }
        }
        if (table_add(table, pair_key(c->token_ids[t], top), 1) != 0) {
            table->failed = 1;
            return;
        }
    }
}

/* Index of a domain label, adding it when new; -1 when out of memory. */
static int domain_index(specialization_acc *a, int32_t label)
{
    for (int d = 0; d < a->num_domains; d++)
        if (a->labels[d] == label)
            return d;
    if (a->num_domains == a->domain_cap) {
        int cap = a->domain_cap ? 2 * a->domain_cap : 8;
        size_t per_domain = (size_t)a->L * (size_t)a->E;
        int32_t *labels = realloc(a->labels, (size_t)cap * sizeof *labels);
        if (labels)
            a->labels = labels;
        int64_t *tokens = realloc(a->dom_tokens, (size_t)cap * (size_t)a->L * sizeof *tokens);
        if (tokens)
            a->dom_tokens = tokens;
        int64_t *counts = realloc(a->dom_counts, (size_t)cap * per_domain * sizeof *counts);
        if (counts)
            a->dom_counts = counts;
        if (!labels || !tokens || !counts)
            return -1;
        a->domain_cap = cap;
    }
    int d = a->num_domains++;
    a->labels[d] = label;
    memset(a->dom_tokens + (size_t)d * (size_t)a->L, 0, (size_t)a->L * sizeof *a->dom_tokens);
    memset(a->dom_counts + (size_t)d * (size_t)a->L * (size_t)a->E, 0,
           (size_t)a->L * (size_t)a->E * sizeof *a->dom_counts);
    return d;
}

/* Activations per domain: every layer of a token at once, serially, since
 * the label table is shared by the layers. Negative labels = unlabelled. */
static void specialization_update_chunk(void *p, const rs_chunk *c, const rs_decisions *dec,
                                        const rs_metric_ref *ref)
{
    (void)ref;
    specialization_acc *a = p;
    if (!c->domain || a->domains_failed)
        return;
    if (c->num_seq > a->window_cap) {
        int32_t *w = realloc(a->window, (size_t)c->num_seq * sizeof *w);
        if (!w) {
            a->domains_failed = 1;
            return;
        }
        a->window = w;
        a->window_cap = c->num_seq;
    }
    for (int s = 0; s < c->num_seq; s++) {
        a->window[s] = c->domain[s] < 0 ? -1 : domain_index(a, c->domain[s]);
        if (c->domain[s] >= 0 && a->window[s] < 0) {
            a->domains_failed = 1;
            return;
        }
    }
    const int K = dec->kmax, L = a->L, E = a->E;
    for (int t = 0; t < c->n; t++) {
        int d = a->window[c->seq_of_token[t]];
        if (d < 0)
            continue;
        int64_t *counts = a->dom_counts + (size_t)d * (size_t)L * (size_t)E;
        for (int l = 0; l < L; l++) {
            if (!rs_row_observed(c, dec, t, l))
                continue;
            a->dom_tokens[(size_t)d * (size_t)L + (size_t)l]++;
            const int32_t *ids = dec->ids + rs_decision_row(c, dec, t, l);
            for (int j = 0; j < K; j++)
                if (ids[j] >= 0)
                    counts[(size_t)l * (size_t)E + (size_t)ids[j]]++;
        }
    }
}

static int specialization_merge(void *p, const void *q, rs_error *err)
{
    specialization_acc *a = p;
    const specialization_acc *b = q;
    RS_CHECK(a->L == b->L && a->E == b->E, err, "metric specialization: merging unlike accumulators");
    for (int l = 0; l < a->L; l++) {
        pair_table *x = &a->tables[l];
        const pair_table *y = &b->tables[l];
        x->failed |= y->failed;
        for (size_t s = 0; s < y->cap && !x->failed; s++)
            if (y->keys[s] && table_add(x, y->keys[s], y->counts[s]) != 0)
                x->failed = 1;
    }
    a->domains_failed |= b->domains_failed;
    const size_t per_domain = (size_t)a->L * (size_t)a->E;
    for (int e = 0; e < b->num_domains && !a->domains_failed; e++) {
        int d = domain_index(a, b->labels[e]);
        if (d < 0) {
            a->domains_failed = 1;
            break;
        }
        for (int l = 0; l < a->L; l++)
            a->dom_tokens[(size_t)d * (size_t)a->L + (size_t)l] += b->dom_tokens[(size_t)e * (size_t)a->L + (size_t)l];
        for (size_t i = 0; i < per_domain; i++)
            a->dom_counts[(size_t)d * per_domain + i] += b->dom_counts[(size_t)e * per_domain + i];
    }
    return 0; /* running out of memory makes the values NaN (update_layer cannot fail) */
}

typedef struct pair_count {
    uint64_t key;
    int64_t count;
} pair_count;

static int by_key(const void *x, const void *y)
{
    uint64_t u = ((const pair_count *)x)->key, v = ((const pair_count *)y)->key;
    return (u > v) - (u < v);
}

/* One layer's vocab_specialization: NaN when no token id qualifies. */
static double vocab_value(const specialization_acc *a, const pair_table *table)
{
    pair_count *entries = malloc((table->used ? table->used : 1) * sizeof *entries);
    rs_xsum *by_expert = calloc((size_t)a->E, sizeof *by_expert);
    if (!entries || !by_expert) {
        free(entries);
        free(by_expert);
        return NAN;
    }
    size_t n = 0;
    for (size_t s = 0; s < table->cap; s++)
        if (table->keys[s])
            entries[n++] = (pair_count){table->keys[s], table->counts[s]};
    qsort(entries, n, sizeof *entries, by_key); /* a token id's pairs are adjacent, experts ascending */
    rs_xsum by_token = {0};
    for (size_t i = 0; i < n;) {
        uint64_t token = entries[i].key >> 32;
        int64_t occurrences = 0, best = 0;
        int favourite = -1;
        for (; i < n && entries[i].key >> 32 == token; i++) {
            int slot = (int)(uint32_t)entries[i].key - 1;
            occurrences += entries[i].count;
            if (slot < a->E && entries[i].count > best) { /* ties: the lower expert */
                best = entries[i].count;
                favourite = slot;
            }
        }
        if (occurrences < a->min_count)
            continue;
        double share = (double)best / (double)occurrences;
        rs_xsum_add(&by_token, share);
        if (favourite >= 0)
            rs_xsum_add(&by_expert[favourite], share);
    }
    double value = rs_xsum_mean(&by_token);
    if (a->average == AVERAGE_EXPERT) {
        rs_xsum experts = {0};
        for (int e = 0; e < a->E; e++)
            if (by_expert[e].count > 0)
                rs_xsum_add(&experts, rs_xsum_mean(&by_expert[e]));
        value = rs_xsum_mean(&experts);
    }
    free(entries);
    free(by_expert);
    return value;
}

/* Insertion sort of domain indices by label (few domains; keeps the
 * summation order independent of the order domains were first seen). */
static void sort_domains(const specialization_acc *a, int *order)
{
    for (int d = 0; d < a->num_domains; d++) {
        int j = d;
        while (j > 0 && a->labels[d] < a->labels[order[j - 1]]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = d;
    }
}

/* One layer's domain_specialization over the domains with tokens. */
static double domain_value(const specialization_acc *a, const int *order, int layer, double *freq)
{
    const int E = a->E, L = a->L;
    int domains = 0;
    for (int i = 0; i < a->num_domains; i++)
        domains += a->dom_tokens[(size_t)order[i] * (size_t)L + (size_t)layer] > 0;
    if (domains < 2)
        return NAN;
    double sum_cv = 0.0;
    int experts = 0;
    for (int e = 0; e < E; e++) {
        int m = 0;
        double mean = 0.0;
        for (int i = 0; i < a->num_domains; i++) {
            int d = order[i];
            const int64_t tokens = a->dom_tokens[(size_t)d * (size_t)L + (size_t)layer];
            if (tokens == 0)
                continue;
            freq[m] = (double)a->dom_counts[((size_t)d * (size_t)L + (size_t)layer) * (size_t)E + (size_t)e] /
                      (double)tokens;
            mean += freq[m++];
        }
        mean /= m;
        if (mean == 0.0) /* never active: no coefficient of variation */
            continue;
        double var = 0.0;
        for (int i = 0; i < m; i++)
            var += (freq[i] - mean) * (freq[i] - mean);
        sum_cv += sqrt(var / m) / mean;
        experts++;
    }
    return experts > 0 ? sum_cv / experts : NAN;
}

static void specialization_finalize(const void *p, rs_metric_sink *sink)
{
    const specialization_acc *a = p;
    int any_ids = a->with_ids;
    for (int l = 0; l < a->L; l++)
        any_ids |= a->tables[l].used > 0;
    int *order = malloc((size_t)(a->num_domains + 1) * sizeof *order);
    double *freq = malloc((size_t)(a->num_domains + 1) * sizeof *freq);
    if (order)
        sort_domains(a, order);
    for (int l = 0; l < a->L; l++) {
        if (any_ids)
            rs_metric_emit(sink, OUT_VOCAB_SPECIALIZATION, l, NULL,
                           a->tables[l].failed ? NAN : vocab_value(a, &a->tables[l]));
        if (a->with_domains || a->num_domains > 0)
            rs_metric_emit(sink, OUT_DOMAIN_SPECIALIZATION, l, NULL,
                           a->domains_failed || !order || !freq ? NAN : domain_value(a, order, l, freq));
    }
    free(order);
    free(freq);
}

static void specialization_checkpoint(void *p, rs_state_io *io)
{
    specialization_acc *a = p;
    const int restoring = rs_state_restoring(io);
    for (int l = 0; l < a->L; l++) {
        pair_table *t = &a->tables[l];
        size_t cap = t->cap;
        RS_STATE(io, cap);
        if (restoring && cap != t->cap) { /* the same slots as saved: finalize walks them in slot order */
            table_free(t);
            if (cap == 0 || (cap & (cap - 1)) != 0 || table_init(t, cap) != 0) {
                rs_state_fail(io);
                return;
            }
        }
        RS_STATE(io, t->used);
        RS_STATE(io, t->failed);
        RS_STATE_ARRAY(io, t->keys, t->cap);
        RS_STATE_ARRAY(io, t->counts, t->cap);
    }
    RS_STATE(io, a->domains_failed);
    int num = a->num_domains, cap = a->domain_cap;
    RS_STATE(io, num);
    RS_STATE(io, cap);
    if (restoring && cap != a->domain_cap) {
        const size_t per_domain = (size_t)a->L * (size_t)a->E, n = (size_t)(cap > 0 ? cap : 1);
        int32_t *labels = realloc(a->labels, n * sizeof *labels);
        if (labels)
            a->labels = labels;
        int64_t *tokens = realloc(a->dom_tokens, n * (size_t)a->L * sizeof *tokens);
        if (tokens)
            a->dom_tokens = tokens;
        int64_t *counts = realloc(a->dom_counts, n * per_domain * sizeof *counts);
        if (counts)
            a->dom_counts = counts;
        if (!labels || !tokens || !counts || cap < num || num < 0) {
            rs_state_fail(io);
            return;
        }
        a->domain_cap = cap;
    }
    a->num_domains = num;
    RS_STATE_ARRAY(io, a->labels, num);
    RS_STATE_ARRAY(io, a->dom_tokens, (size_t)num * (size_t)a->L);
    RS_STATE_ARRAY(io, a->dom_counts, (size_t)num * (size_t)a->L * (size_t)a->E);
}

static const rs_metric_type specialization_type = {
    .name = "specialization",
    .summary = "expert specialisation in vocabulary (top-1 expert per token id) and in sequence domains",
    .source = "Liang et al. arXiv:2505.16056 (ljcleo/moe-lrc src/21_vocab_calcgen.py, src/22_vocab_refine.py, "
              "src/35_srp_spec.ipynb); metrics.md",
    .params = specialization_params,
    .num_params = sizeof specialization_params / sizeof specialization_params[0],
    .outputs = specialization_outputs,
    .num_outputs = sizeof specialization_outputs / sizeof specialization_outputs[0],
    .needs = RS_WANTS_TOKEN_IDS, /* vocab_specialization needs them, domain_specialization does not */
    .create = specialization_create,
    .update_layer = specialization_update_layer,
    .update_chunk = specialization_update_chunk,
    .merge = specialization_merge,
    .finalize = specialization_finalize,
    .destroy = specialization_destroy,
    .checkpoint = specialization_checkpoint,
};

const rs_metric_type *const rs_metric_specialization = &specialization_type;
