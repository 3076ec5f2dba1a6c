/* One cache domain of the `cache` family (cache_domain.h). */
#include "metrics/cache_domain.h"
#include "metrics/cache_domain_internal.h"

#include <stdlib.h>
#include <string.h>

void rs_cache_domain_free(cache_domain *d)
{
    rs_cache_sim_free(&d->main);
    rs_cache_sim_free(&d->oracle);
    rs_cache_stack_free(&d->stack);
    if (d->sizes)
        for (int c = 0; c < d->cfg.curve_sizes; c++)
            rs_cache_sim_free(&d->sizes[c]);
    free(d->sizes);
    free(d->seen);
    free(d->counts);
    free(d->dist_hist);
    free(d->size_hits);
    free(d->obj_accesses);
    free(d->obj_warm);
    free(d->seg_objs);
    free(d->seg_n);
    free(d->seg_pf);
    free(d->seg_pf_n);
    free(d->link);
    free(d->next_use);
    free(d->window);
    free(d->last_use);
    free(d->objs);
    free(d->pf);
    free(d->dist);
    free(d->hit);
    memset(d, 0, sizeof *d);
}

void rs_cache_domain_compact(cache_domain *d)
{
    if (d->open)
        return;
    rs_cache_sim_free(&d->main);
    rs_cache_sim_free(&d->oracle);
    rs_cache_stack_free(&d->stack);
    if (d->sizes)
        for (int c = 0; c < d->cfg.curve_sizes; c++)
            rs_cache_sim_free(&d->sizes[c]);
    free(d->sizes);
    free(d->seen);
    free(d->seg_objs);
    free(d->seg_n);
    free(d->seg_pf);
    free(d->seg_pf_n);
    free(d->link);
    free(d->next_use);
    free(d->window);
    free(d->last_use);
    free(d->objs);
    free(d->pf);
    free(d->dist);
    free(d->hit);
    d->sizes = NULL;
    d->seen = NULL;
    d->seg_objs = d->seg_n = d->seg_pf = d->seg_pf_n = NULL;
    d->seg_objs_cap = d->seg_batches_cap = d->seg_pf_cap = d->link_cap = 0;
    d->link = d->window = d->last_use = NULL;
    d->next_use = NULL;
    d->objs = d->pf = d->dist = NULL;
    d->hit = NULL;
}

int rs_cache_domain_init(cache_domain *d, const cache_domain_config *cfg)
{
    memset(d, 0, sizeof *d);
    d->cfg = *cfg;
    const size_t nobj = (size_t)cfg->nobj, layers = (size_t)cfg->nlayers;
    const cache_policy p = cfg->policy;
    d->lookahead = is_lookahead(p) || (cfg->gap && p != CACHE_BELADY) || cfg->curve == CACHE_CURVE_BELADY ||
                   (cfg->curve == CACHE_CURVE_PER_SIZE && is_lookahead(p));
    d->plain = (p == CACHE_LRU || p == CACHE_FIFO || p == CACHE_LFU) && !d->lookahead && cfg->curve == CACHE_CURVE_NONE &&
               !cfg->prefetch;
    int ok = 1;
    if (p != CACHE_STATIC)
        ok = rs_cache_sim_init(&d->main, p, cfg->capacity, cfg->nobj) == 0;
    if (ok && cfg->gap && p != CACHE_BELADY)
        ok = rs_cache_sim_init(&d->oracle, CACHE_BELADY, cfg->capacity, cfg->nobj) == 0;
    if (ok && (cfg->curve == CACHE_CURVE_LRU || cfg->curve == CACHE_CURVE_BELADY))
        ok = rs_cache_stack_init(&d->stack, cfg->curve == CACHE_CURVE_LRU ? CACHE_STACK_LRU : CACHE_STACK_BELADY,
                              cfg->nobj) == 0;
    if (ok && cfg->curve == CACHE_CURVE_PER_SIZE) {
        d->sizes = calloc((size_t)cfg->curve_sizes, sizeof *d->sizes);
        ok = d->sizes != NULL;
        for (int c = 0; ok && c < cfg->curve_sizes; c++)
            ok = rs_cache_sim_init(&d->sizes[c], p, (c + 1) * cfg->size_step, cfg->nobj) == 0;
        d->size_hits = calloc(layers * (size_t)cfg->curve_sizes, sizeof *d->size_hits);
        ok = ok && d->size_hits;
    }
    if (ok && (cfg->curve == CACHE_CURVE_LRU || cfg->curve == CACHE_CURVE_BELADY)) {
        d->dist_hist = calloc(layers * (nobj + 1), sizeof *d->dist_hist);
        ok = d->dist_hist != NULL;
    }
    if (ok && p == CACHE_STATIC) {
        d->obj_accesses = calloc(nobj, sizeof *d->obj_accesses);
        d->obj_warm = calloc(nobj, sizeof *d->obj_warm);
        ok = d->obj_accesses && d->obj_warm;
    }
    if (ok && d->lookahead) {
        d->next_use = malloc(nobj * sizeof *d->next_use);
        d->window = calloc(nobj, sizeof *d->window);
        d->last_use = malloc(nobj * sizeof *d->last_use);
        ok = d->next_use && d->window && d->last_use;
    }
    if (ok) {
        d->seen = calloc(nobj, sizeof *d->seen);
        d->counts = calloc(layers, sizeof *d->counts);
        d->objs = malloc(nobj * sizeof *d->objs);
        d->pf = malloc(nobj * sizeof *d->pf);
        d->dist = malloc(nobj * sizeof *d->dist);
        d->hit = malloc(nobj * sizeof *d->hit);
        ok = d->seen && d->counts && d->objs && d->pf && d->dist && d->hit;
    }
    if (!ok) {
        rs_cache_domain_free(d);
        return -1;
    }
    return 0;
}

void rs_cache_domain_begin(cache_domain *d)
{
    if (d->open)
        rs_cache_domain_end(d);
    if (d->cfg.policy != CACHE_STATIC)
        rs_cache_sim_reset(&d->main);
    if (d->oracle.capacity)
        rs_cache_sim_reset(&d->oracle);
    if (d->stack.items)
        rs_cache_stack_reset(&d->stack);
    for (int c = 0; d->sizes && c < d->cfg.curve_sizes; c++)
        rs_cache_sim_reset(&d->sizes[c]);
    if (++d->epoch == 0) { /* wrapped: forget what was seen */
        memset(d->seen, 0, (size_t)d->cfg.nobj * sizeof *d->seen);
        d->epoch = 1;
    }
    d->distinct = 0;
    d->seg_objs_len = d->seg_batches = d->seg_pf_len = 0;
    d->open = 1;
}

void rs_cache_domain_count_stack(cache_domain *d, const int32_t *objs, int n, const uint64_t *next_use)
{
    rs_cache_stack_batch(&d->stack, objs, n, d->dist, next_use);
    const size_t row = (size_t)d->cfg.nobj + 1;
    for (int i = 0; i < n; i++)
        d->dist_hist[(size_t)layer_of(d, objs[i]) * row + (size_t)d->dist[i]]++;
}

void rs_cache_domain_run_sizes(cache_domain *d, const int32_t *objs, int n, const int32_t *pf, int n_pf,
                      const cache_future *f, uint64_t seed, int64_t token, int layer)
{
    const int sizes = d->cfg.curve_sizes;
    for (int c = 0; c < sizes; c++) {
        rs_rng rng;
        if (d->cfg.policy == CACHE_RANDOM)
            rng = rs_rng_keyed(seed, (uint64_t)layer, (uint64_t)token);
        if (n_pf)
            rs_cache_sim_prefetch(&d->sizes[c], pf, n_pf, f, &rng);
        rs_cache_sim_batch(&d->sizes[c], objs, n, d->hit, f, &rng);
        for (int i = 0; i < n; i++)
            d->size_hits[(size_t)layer_of(d, objs[i]) * (size_t)sizes + (size_t)c] += d->hit[i];
    }
}

/* Appends a batch to the segment buffer; 0 when it would outgrow max_buffer. */
static int buffer_batch(cache_domain *d, const int32_t *objs, int n, const int32_t *pf, int n_pf)
{
    if (d->lost)
        return 0;
    size_t objs_len = d->seg_objs_len + (size_t)n, pf_len = d->seg_pf_len + (size_t)n_pf;
    size_t batches = d->seg_batches + 1;
    /* ids, their links at replay, batch sizes */
    size_t bytes = objs_len * (sizeof *d->seg_objs + sizeof *d->link) + pf_len * sizeof *d->seg_pf +
                   batches * (sizeof *d->seg_n + (d->cfg.prefetch ? sizeof *d->seg_pf_n : 0));
    if (bytes > d->cfg.max_buffer || batches >= UINT32_MAX)
        return 0;
    if (objs_len > d->seg_objs_cap) {
        size_t cap = d->seg_objs_cap ? 2 * d->seg_objs_cap : 4096;
        while (cap < objs_len)
            cap *= 2;
        uint16_t *grown = realloc(d->seg_objs, cap * sizeof *grown);
        if (!grown)
            return 0;
        d->seg_objs = grown;
        d->seg_objs_cap = cap;
    }
    if (pf_len > d->seg_pf_cap) {
        size_t cap = d->seg_pf_cap ? 2 * d->seg_pf_cap : 4096;
        while (cap < pf_len)
            cap *= 2;
        uint16_t *grown = realloc(d->seg_pf, cap * sizeof *grown);
        if (!grown)
            return 0;
        d->seg_pf = grown;
        d->seg_pf_cap = cap;
    }
    if (batches > d->seg_batches_cap) {
        size_t cap = d->seg_batches_cap ? 2 * d->seg_batches_cap : 1024;
        uint16_t *n_grown = realloc(d->seg_n, cap * sizeof *n_grown);
        if (n_grown)
            d->seg_n = n_grown;
        uint16_t *pf_grown = d->cfg.prefetch ? realloc(d->seg_pf_n, cap * sizeof *pf_grown) : NULL;
        if (pf_grown)
            d->seg_pf_n = pf_grown;
        if (!n_grown || (d->cfg.prefetch && !pf_grown))
            return 0;
        d->seg_batches_cap = cap;
    }
    for (int i = 0; i < n; i++)
        d->seg_objs[d->seg_objs_len + (size_t)i] = (uint16_t)objs[i];
    for (int i = 0; i < n_pf; i++)
        d->seg_pf[d->seg_pf_len + (size_t)i] = (uint16_t)pf[i];
    d->seg_n[d->seg_batches] = (uint16_t)n;
    if (d->cfg.prefetch)
        d->seg_pf_n[d->seg_batches] = (uint16_t)n_pf;
    d->seg_objs_len = objs_len;
    d->seg_pf_len = pf_len;
    d->seg_batches = batches;
    return 1;
}

void rs_cache_domain_push(cache_domain *d, const int32_t *objs, int n, const int32_t *pf, int n_pf, int64_t token,
                       int layer)
{
    const cache_policy p = d->cfg.policy;
    const int counted = d->cfg.nlayers == 1 ? 0 : layer;
    if (d->plain) { /* the policy alone, online */
        int hits = rs_cache_sim_batch(&d->main, objs, n, d->hit, NULL, NULL);
        count_main(d, objs, n, d->hit, hits, 0, counted);
        return;
    }
    if (p == CACHE_STATIC) {
        memset(d->hit, 0, (size_t)n);
        count_main(d, objs, n, d->hit, 0, 0, counted);
    } else if (!is_lookahead(p)) {
        rs_rng rng; /* random: keyed by where the batch is, whatever the split of the run */
        if (p == CACHE_RANDOM)
            rng = rs_rng_keyed(d->cfg.seed, (uint64_t)layer, (uint64_t)token);
        int loaded = n_pf ? rs_cache_sim_prefetch(&d->main, pf, n_pf, NULL, &rng) : 0;
        int hits = rs_cache_sim_batch(&d->main, objs, n, d->hit, NULL, &rng);
        count_main(d, objs, n, d->hit, hits, loaded, counted);
    }
    if (d->cfg.curve == CACHE_CURVE_LRU)
        rs_cache_domain_count_stack(d, objs, n, NULL);
    if (d->cfg.curve == CACHE_CURVE_PER_SIZE && !is_lookahead(p))
        rs_cache_domain_run_sizes(d, objs, n, pf, n_pf, NULL, d->cfg.seed, token, layer);
    if (d->lookahead && !buffer_batch(d, objs, n, pf, n_pf))
        d->lost = 1;
}

void rs_cache_domain_end(cache_domain *d)
{
    if (!d->open)
        return;
    if (d->lookahead && !d->lost)
        rs_cache_replay(d);
    d->seg_objs_len = d->seg_batches = d->seg_pf_len = 0;
    d->open = 0;
}

/* Restoring: a segment buffer of cap entries (as saved, so it grows as it did). */
static void *buffer_of(void *buf, size_t cap, size_t size, rs_state_io *io)
{
    if (!rs_state_restoring(io) || cap == 0)
        return buf;
    void *grown = realloc(buf, cap * size);
    if (!grown)
        rs_state_fail(io);
    return grown ? grown : buf;
}

void rs_cache_domain_checkpoint(cache_domain *d, rs_state_io *io)
{
    const size_t nobj = (size_t)d->cfg.nobj, layers = (size_t)d->cfg.nlayers;
    RS_STATE(io, d->open);
    RS_STATE(io, d->lost);
    uint8_t whole = d->seen != NULL; /* a compacted bootstrap block keeps only what merge reads */
    RS_STATE(io, whole);
    if (!whole && rs_state_restoring(io) && d->seen)
        rs_cache_domain_compact(d);
    if (whole) {
        if (d->cfg.policy != CACHE_STATIC)
            rs_cache_sim_checkpoint(&d->main, io);
        if (d->oracle.capacity)
            rs_cache_sim_checkpoint(&d->oracle, io);
        if (d->stack.items)
            rs_cache_stack_checkpoint(&d->stack, io);
        for (int c = 0; d->sizes && c < d->cfg.curve_sizes; c++)
            rs_cache_sim_checkpoint(&d->sizes[c], io);
        RS_STATE_ARRAY(io, d->seen, nobj);
    }
    RS_STATE(io, d->epoch);
    RS_STATE(io, d->distinct);
    RS_STATE_ARRAY(io, d->counts, layers);
    if (d->dist_hist)
        RS_STATE_ARRAY(io, d->dist_hist, layers * (nobj + 1));
    if (d->size_hits)
        RS_STATE_ARRAY(io, d->size_hits, layers * (size_t)d->cfg.curve_sizes);
    if (d->obj_accesses) {
        RS_STATE_ARRAY(io, d->obj_accesses, nobj);
        RS_STATE_ARRAY(io, d->obj_warm, nobj);
    }
    if (!d->lookahead || !whole)
        return;
    /* the open segment, replayed when it ends */
    size_t caps[3] = {d->seg_objs_cap, d->seg_pf_cap, d->seg_batches_cap};
    RS_STATE(io, caps);
    RS_STATE(io, d->seg_objs_len);
    RS_STATE(io, d->seg_pf_len);
    RS_STATE(io, d->seg_batches);
    if (rs_state_restoring(io)) {
        if (d->seg_objs_len > caps[0] || d->seg_pf_len > caps[1] || d->seg_batches > caps[2]) {
            rs_state_fail(io);
            return;
        }
        d->seg_objs = buffer_of(d->seg_objs, caps[0], sizeof *d->seg_objs, io);
        d->seg_pf = buffer_of(d->seg_pf, caps[1], sizeof *d->seg_pf, io);
        d->seg_n = buffer_of(d->seg_n, caps[2], sizeof *d->seg_n, io);
        if (d->cfg.prefetch)
            d->seg_pf_n = buffer_of(d->seg_pf_n, caps[2], sizeof *d->seg_pf_n, io);
        d->seg_objs_cap = caps[0];
        d->seg_pf_cap = caps[1];
        d->seg_batches_cap = caps[2];
    }
    RS_STATE_ARRAY(io, d->seg_objs, d->seg_objs_len);
    RS_STATE_ARRAY(io, d->seg_pf, d->seg_pf_len);
    RS_STATE_ARRAY(io, d->seg_n, d->seg_batches);
    if (d->cfg.prefetch)
        RS_STATE_ARRAY(io, d->seg_pf_n, d->seg_batches);
}

void rs_cache_domain_merge(cache_domain *d, const cache_domain *other)
{
    const size_t layers = (size_t)d->cfg.nlayers, nobj = (size_t)d->cfg.nobj;
    for (size_t l = 0; l < layers; l++) {
        cache_counts *a = &d->counts[l];
        const cache_counts *b = &other->counts[l];
        a->accesses += b->accesses;
        a->hits += b->hits;
        a->warm_hits += b->warm_hits;
        a->prefetched += b->prefetched;
        a->belady_hits += b->belady_hits;
    }
    if (d->dist_hist)
        for (size_t i = 0; i < layers * (nobj + 1); i++)
            d->dist_hist[i] += other->dist_hist[i];
    if (d->size_hits)
        for (size_t i = 0; i < layers * (size_t)d->cfg.curve_sizes; i++)
            d->size_hits[i] += other->size_hits[i];
    if (d->obj_accesses)
        for (size_t o = 0; o < nobj; o++) {
            d->obj_accesses[o] += other->obj_accesses[o];
            d->obj_warm[o] += other->obj_warm[o];
        }
    d->lost |= other->lost;
}

typedef struct ranked {
    int64_t accesses;
    int32_t obj;
} ranked;

static int by_use(const void *x, const void *y)
{
    const ranked *a = x, *b = y;
    if (a->accesses != b->accesses)
        return a->accesses > b->accesses ? -1 : 1;
    return (a->obj > b->obj) - (a->obj < b->obj);
}

/* Objects by access count, most used first, ties to the lower id (static). */
static int32_t *static_ranking(const cache_domain *d)
{
    const int nobj = d->cfg.nobj;
    ranked *r = malloc((size_t)nobj * sizeof *r);
    int32_t *order = malloc((size_t)nobj * sizeof *order);
    if (r && order) {
        for (int o = 0; o < nobj; o++)
            r[o] = (ranked){d->obj_accesses[o], o};
        qsort(r, (size_t)nobj, sizeof *r, by_use);
        for (int i = 0; i < nobj; i++)
            order[i] = r[i].obj;
    } else {
        free(order);
        order = NULL;
    }
    free(r);
    return order;
}

int rs_cache_domain_results(const cache_domain *d, int64_t *hits, int64_t *warm)
{
    const int layers = d->cfg.nlayers;
    if (d->cfg.policy != CACHE_STATIC) {
        for (int l = 0; l < layers; l++) {
            hits[l] = d->counts[l].hits;
            warm[l] = d->counts[l].warm_hits;
        }
        return 0;
    }
    int32_t *order = static_ranking(d);
    if (!order)
        return -1;
    /* pinned objects always hit; the others only on warm-start accesses */
    memset(hits, 0, (size_t)layers * sizeof *hits);
    memset(warm, 0, (size_t)layers * sizeof *warm);
    const int pinned = d->cfg.capacity < d->cfg.nobj ? d->cfg.capacity : d->cfg.nobj;
    for (int r = 0; r < d->cfg.nobj; r++) {
        int32_t o = order[r];
        int l = layer_of(d, o);
        hits[l] += r < pinned ? d->obj_accesses[o] : 0;
        warm[l] += r < pinned ? d->obj_accesses[o] : d->obj_warm[o];
    }
    free(order);
    return 0;
}

void rs_cache_domain_curve(const cache_domain *d, int64_t *hits)
{
    const int sizes = d->cfg.curve_sizes, layers = d->cfg.nlayers, nobj = d->cfg.nobj, step = d->cfg.size_step;
    memset(hits, 0, (size_t)layers * (size_t)sizes * sizeof *hits);
    switch (d->cfg.curve) {
    case CACHE_CURVE_LRU:
    case CACHE_CURVE_BELADY:
        for (int l = 0; l < layers; l++) {
            const int64_t *h = d->dist_hist + (size_t)l * ((size_t)nobj + 1);
            int64_t sum = 0;
            int dist = 1;
            for (int c = 0; c < sizes; c++) {
                for (; dist <= (c + 1) * step && dist <= nobj; dist++)
                    sum += h[dist];
                hits[(size_t)l * (size_t)sizes + (size_t)c] = sum;
            }
        }
        break;
    case CACHE_CURVE_PER_SIZE: memcpy(hits, d->size_hits, (size_t)layers * (size_t)sizes * sizeof *hits); break;
    case CACHE_CURVE_STATIC: {
        int32_t *order = static_ranking(d);
        if (!order)
            break;
        int64_t *sum = calloc((size_t)layers, sizeof *sum);
        int r = 0;
        for (int c = 0; sum && c < sizes; c++) {
            for (; r < (c + 1) * step && r < nobj; r++)
                sum[layer_of(d, order[r])] += d->obj_accesses[order[r]];
            for (int l = 0; l < layers; l++)
                hits[(size_t)l * (size_t)sizes + (size_t)c] = sum[l];
        }
        free(sum);
        free(order);
        break;
    }
    case CACHE_CURVE_NONE: break;
    }
}
