/* The cache behind the `sch` metric (see sch_cache.h for the rule and why it
 * equals moe-lrc's calc_fsf at one cache size). */
#include "metrics/sch_cache.h"

#include <stdlib.h>
#include <string.h>

/* key = future uses << USE_SHIFT | last access: uses compare first, then
 * recency, as calc_fsf's prop does (it shifts by 32). A sequence may hold
 * 2^40 accesses; use counts (at most m <= 2^16) fit above. */
#define USE_SHIFT 40
#define ONE_USE (1ull << USE_SHIFT)
#define CLOCK_MASK (ONE_USE - 1)

/* Caches of up to this many slots keep current keys in an unordered array
 * and scan it on eviction; larger ones keep a min-heap. */
#ifndef SCAN_SLOTS
#define SCAN_SLOTS 32
#endif

int rs_sch_cache_init(rs_sch_cache *c, int num_ids, int width, int slots, int lookahead, int64_t max_tokens)
{
    memset(c, 0, sizeof *c);
    c->num_ids = num_ids;
    c->width = width;
    c->slots = slots < num_ids ? slots : num_ids;
    c->scan = c->slots <= SCAN_SLOTS;
    c->lookahead = lookahead;
    /* pending tokens: at most m, and no sequence is longer than the trace */
    c->ring_rows = max_tokens > 0 && max_tokens < lookahead ? (int)max_tokens : lookahead;
    const size_t n = (size_t)num_ids;
    c->ring = malloc(((size_t)c->ring_rows * (size_t)width + 1) * sizeof *c->ring);
    c->ring_len = calloc((size_t)c->ring_rows, sizeof *c->ring_len);
    c->key = calloc(n, sizeof *c->key);
    c->where = malloc(n * sizeof *c->where);
    c->first_use = calloc(n, sizeof *c->first_use);
    c->listed_by = calloc(n, sizeof *c->listed_by);
    c->heap = malloc(((size_t)c->slots + 1) * sizeof *c->heap);
    if (!c->ring || !c->ring_len || !c->key || !c->where || !c->first_use || !c->listed_by || !c->heap) {
        rs_sch_cache_free(c);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        c->where[i] = -1;
    c->sequence = 1; /* first_use starts at 0: nothing used yet */
    return 0;
}

void rs_sch_cache_free(rs_sch_cache *c)
{
    free(c->ring);
    free(c->ring_len);
    free(c->key);
    free(c->where);
    free(c->first_use);
    free(c->listed_by);
    free(c->heap);
    memset(c, 0, sizeof *c);
}

static void free_working_arrays(rs_sch_cache *c)
{
    free(c->ring);
    free(c->ring_len);
    free(c->key);
    free(c->where);
    free(c->first_use);
    free(c->listed_by);
    free(c->heap);
    c->ring = c->ring_len = c->where = NULL;
    c->key = NULL;
    c->first_use = c->listed_by = NULL;
    c->heap = NULL;
}

void rs_sch_cache_compact(rs_sch_cache *c)
{
    if (c->pushed == 0)
        free_working_arrays(c);
}

static inline void heap_place(rs_sch_cache *c, int i, uint64_t key, int32_t id)
{
    c->heap[i] = (rs_sch_slot){key, id};
    c->where[id] = i;
}

/* Moves the entry at heap slot i up while its key is below its parent's. */
static void sift_up(rs_sch_cache *c, int i)
{
    rs_sch_slot x = c->heap[i];
    while (i > 0) {
        int parent = (i - 1) / 2;
        if (c->heap[parent].key <= x.key)
            break;
        heap_place(c, i, c->heap[parent].key, c->heap[parent].id);
        i = parent;
    }
    heap_place(c, i, x.key, x.id);
}

/* Moves the entry at heap slot i down while a child's key is below its own. */
static void sift_down(rs_sch_cache *c, int i)
{
    rs_sch_slot x = c->heap[i];
    const int size = c->size;
    for (;;) {
        int child = 2 * i + 1;
        if (child >= size)
            break;
        if (child + 1 < size)
            child += c->heap[child + 1].key < c->heap[child].key;
        if (c->heap[child].key >= x.key)
            break;
        heap_place(c, i, c->heap[child].key, c->heap[child].id);
        i = child;
    }
    heap_place(c, i, x.key, x.id);
}

/* The heap slot of the cached id with the lowest key. Heap keys lag: a
 * future use arriving raises an id's key without touching the heap (a hit
 * or an insertion sets it exactly). Heap keys are thus at most the true
 * ones, and the root is the true minimum once its own key is current. */
static int lowest(rs_sch_cache *c)
{
    for (;;) {
        int32_t id = c->heap[0].id;
        if (c->heap[0].key == c->key[id])
            return 0;
        c->heap[0].key = c->key[id];
        sift_down(c, 0);
    }
}

/* The lowest-key slot of a small cache: a scan over its ids' keys. */
static int lowest_by_scan(const rs_sch_cache *c)
{
    int best = 0;
    uint64_t best_key = c->key[c->heap[0].id];
    for (int i = 1; i < c->size; i++) { /* selects, not branches: the winner is unpredictable */
        uint64_t k = c->key[c->heap[i].id];
        best = k < best_key ? i : best;
        best_key = k < best_key ? k : best_key;
    }
    return best;
}

/* Decides the oldest pending token: hits against the cache as it stood at
 * the start of the token, then each id in order enters (evicting the
 * lowest key when full) and records its use. */
static void decide(rs_sch_cache *c)
{
    const int32_t *row = c->ring + (size_t)c->decide_slot * (size_t)c->width;
    const int n = c->ring_len[c->decide_slot];
    int32_t *restrict where = c->where;
    uint64_t *restrict key = c->key;
    int64_t *restrict first_use = c->first_use;
    const int64_t sequence = c->sequence;
    const int slots = c->slots;
    int64_t hits = 0;
    int distinct = c->distinct;
    for (int j = 0; j < n; j++) {
        int32_t e = row[j];
        /* a cached id was used in this sequence already, so first_use can
         * be stamped unconditionally */
        int first = first_use[e] != sequence;
        first_use[e] = sequence;
        hits += (where[e] >= 0) | (first & (distinct < slots)); /* warm start */
        distinct += first;
    }
    c->distinct = distinct;
    c->hits += hits;
    c->accesses += n;
    uint64_t clock = c->clock;
    for (int j = 0; j < n; j++) {
        int32_t e = row[j];
        /* one future use (this one) is spent; the clock marks recency */
        uint64_t k = ((key[e] & ~CLOCK_MASK) - ONE_USE) | ++clock;
        key[e] = k;
        int at = where[e];
        if (at >= 0) {
            /* a heap key may lag below the true one; it only has to move
             * when the true key drops below it */
            if (!c->scan && k < c->heap[at].key) {
                c->heap[at].key = k;
                sift_up(c, at);
            }
        } else if (c->size < slots) {
            heap_place(c, c->size, k, e);
            c->size++;
            if (!c->scan)
                sift_up(c, c->size - 1);
        } else {
            int victim = c->scan ? lowest_by_scan(c) : lowest(c);
            where[c->heap[victim].id] = -1;
            heap_place(c, victim, k, e);
            if (!c->scan)
                sift_down(c, victim);
        }
    }
    c->clock = clock;
    c->ring_len[c->decide_slot] = 0;
    if (++c->decide_slot == c->lookahead)
        c->decide_slot = 0;
    c->decided++;
}

/* One token: `rows` rows of kmax ids (the first `take` of each read), row
 * r's ids becoming r * limit + id; ids outside [0, limit) (-1 padding) and
 * repeats are skipped. */
static inline void push(rs_sch_cache *c, const int32_t *ids, int rows, int kmax, int take, int limit)
{
    int32_t *restrict row = c->ring + (size_t)c->push_slot * (size_t)c->width;
    int64_t *restrict listed_by = c->listed_by;
    uint64_t *restrict key = c->key;
    const int64_t token = ++c->token; /* stamps the ids this token lists */
    int n = 0;
    for (int r = 0; r < rows; r++) {
        const int32_t *x = ids + (size_t)r * (size_t)kmax;
        const int32_t offset = r * limit;
        for (int j = 0; j < take; j++) {
            int32_t e = x[j];
            if (e < 0 || e >= limit)
                continue;
            e += offset;
            if (listed_by[e] == token)
                continue;
            listed_by[e] = token;
            row[n++] = e;
            /* its use enters the look-ahead of every pending token (a
             * heap key lags behind until lowest looks at it) */
            key[e] += ONE_USE;
        }
    }
    c->ring_len[c->push_slot] = n;
    c->pushed++;
    if (++c->push_slot == c->lookahead)
        c->push_slot = 0;
    if (c->pushed >= c->lookahead)
        decide(c);
}

/* The open sequence ended: decide its last tokens, fold its hit rate and
 * empty the cache. */
static void sequence_end(rs_sch_cache *c)
{
    while (c->decided < c->pushed)
        decide(c);
    if (c->accesses > 0)
        rs_xsum_add(&c->rates, (double)c->hits / (double)c->accesses);
    for (int i = 0; i < c->size; i++)
        c->where[c->heap[i].id] = -1;
    c->size = 0;
    c->distinct = 0;
    c->clock = 0;
    c->sequence++;
    c->hits = c->accesses = 0;
    c->pushed = c->decided = 0;
    c->push_slot = c->decide_slot = 0;
}

/* Whether token t is in the stream: observed at the layer, or (the shared
 * cache) at some layer; the others are absent, the look-ahead closes over
 * them. */
static int token_observed(const rs_chunk *chunk, const rs_decisions *dec, int t, int layer)
{
    if (layer >= 0)
        return rs_row_observed(chunk, dec, t, layer);
    for (int l = 0; l < chunk->L; l++)
        if (rs_row_observed(chunk, dec, t, l))
            return 1;
    return 0;
}

void rs_sch_feed(rs_sch_cache *c, const rs_chunk *chunk, const rs_decisions *dec, int layer)
{
    const int rows = layer < 0 ? chunk->L : 1;
    const int first_row = layer < 0 ? 0 : layer;
    const int take = dec->kmax * rows <= c->width ? dec->kmax : c->width / rows; /* ring rows are this wide */
    for (int t = 0; t < chunk->n; t++) {
        if (token_observed(chunk, dec, t, layer))
            push(c, dec->ids + rs_decision_row(chunk, dec, t, first_row), rows, dec->kmax, take, chunk->E);
        if (chunk->t0 + t + 1 == chunk->seq_offsets[chunk->seq_of_token[t] + 1])
            sequence_end(c);
    }
}

int rs_sch_cache_merge(rs_sch_cache *c, const rs_sch_cache *o)
{
    if (c->pushed != 0)
        return -1;
    rs_xsum rates = c->rates;
    rs_xsum_merge(&rates, &o->rates);
    if (o->pushed == 0 || o == c) { /* o ends on a sequence boundary too: only the rates add up */
        c->rates = rates;
        return 0;
    }
    /* c's open state is empty: the merged one continues o's open sequence */
    const size_t n = (size_t)c->num_ids;
    memcpy(c->ring, o->ring, (size_t)c->ring_rows * (size_t)c->width * sizeof *c->ring);
    memcpy(c->ring_len, o->ring_len, (size_t)c->ring_rows * sizeof *c->ring_len);
    memcpy(c->key, o->key, n * sizeof *c->key);
    memcpy(c->where, o->where, n * sizeof *c->where);
    memcpy(c->first_use, o->first_use, n * sizeof *c->first_use);
    memcpy(c->listed_by, o->listed_by, n * sizeof *c->listed_by);
    memcpy(c->heap, o->heap, (size_t)c->slots * sizeof *c->heap);
    c->pushed = o->pushed;
    c->decided = o->decided;
    c->push_slot = o->push_slot;
    c->decide_slot = o->decide_slot;
    c->size = o->size;
    c->distinct = o->distinct;
    c->clock = o->clock;
    c->sequence = o->sequence;
    c->token = o->token;
    c->hits = o->hits;
    c->accesses = o->accesses;
    c->rates = rates;
    return 0;
}

double rs_sch_cache_value(const rs_sch_cache *c) { return rs_xsum_mean(&c->rates); }

void rs_sch_cache_checkpoint(rs_sch_cache *c, rs_state_io *io)
{
    const size_t n = (size_t)c->num_ids;
    uint8_t whole = c->ring != NULL; /* a compacted bootstrap block keeps only what merge reads */
    RS_STATE(io, whole);
    if (!whole && rs_state_restoring(io))
        free_working_arrays(c);
    if (whole) {
        RS_STATE_ARRAY(io, c->ring, (size_t)c->ring_rows * (size_t)c->width);
        RS_STATE_ARRAY(io, c->ring_len, c->ring_rows);
    }
    RS_STATE(io, c->pushed);
    RS_STATE(io, c->decided);
    RS_STATE(io, c->push_slot);
    RS_STATE(io, c->decide_slot);
    if (whole) {
        RS_STATE_ARRAY(io, c->key, n);
        RS_STATE_ARRAY(io, c->where, n);
        RS_STATE_ARRAY(io, c->first_use, n);
        RS_STATE_ARRAY(io, c->listed_by, n);
        RS_STATE_ARRAY(io, c->heap, c->slots);
    }
    RS_STATE(io, c->size);
    RS_STATE(io, c->distinct);
    RS_STATE(io, c->clock);
    RS_STATE(io, c->sequence);
    RS_STATE(io, c->token);
    RS_STATE(io, c->hits);
    RS_STATE(io, c->accesses);
    RS_STATE(io, c->rates);
}
