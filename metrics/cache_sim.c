/* One expert cache under one replacement policy (cache_sim.h). Tie rules
 * follow libCacheSim (libCacheSim/cache/eviction/): LRU evicts the least
 * recently touched, FIFO the first inserted, LFU the lowest in-cache
 * frequency (reset on eviction) and among those the object that reached it
 * first (LFU.c: one list per frequency, appended on arrival, evicted from
 * the head); Belady the farthest next use, never used again = farthest,
 * ties to the lower object id; sch the fewest uses in the next m-1 tokens,
 * ties to the least recently touched. */
#include "metrics/cache_sim.h"

#include <stdlib.h>
#include <string.h>

static int uses_list(cache_policy p) { return p == CACHE_LRU || p == CACHE_FIFO || p == CACHE_LFU; }

void rs_cache_sim_free(cache_sim *s)
{
    free(s->slot_obj);
    free(s->obj_slot);
    free(s->key);
    free(s->pinned);
    free(s->where);
    free(s->prev);
    free(s->next);
    free(s->bucket);
    free(s->buckets);
    memset(s, 0, sizeof *s);
}

/* ---------------------------------------------------------------- lists */

/* lru, fifo: one circular list through prev/next, head = capacity. */
static inline void list_append(cache_sim *s, int32_t slot)
{
    const int32_t head = s->capacity, last = s->prev[head];
    s->next[last] = slot;
    s->prev[slot] = last;
    s->next[slot] = head;
    s->prev[head] = slot;
}

static inline void list_remove(cache_sim *s, int32_t slot)
{
    s->next[s->prev[slot]] = s->next[slot];
    s->prev[s->next[slot]] = s->prev[slot];
}

/* lfu: buckets 0..capacity, head capacity + 1; a bucket's slots form a
 * list through prev/next ending in -1. There are at most capacity
 * non-empty buckets, and a touch opens one before it may empty another. */
static int32_t bucket_head(const cache_sim *s) { return s->capacity + 1; }

static inline int32_t bucket_open_after(cache_sim *s, int32_t after, uint64_t freq)
{
    int32_t b = s->free_bucket;
    s->free_bucket = s->buckets[b].next;
    int32_t nb = s->buckets[after].next;
    s->buckets[after].next = b;
    s->buckets[b].prev = after;
    s->buckets[b].next = nb;
    s->buckets[nb].prev = b;
    s->buckets[b].freq = freq;
    s->buckets[b].first = s->buckets[b].last = -1;
    return b;
}

static inline void bucket_append(cache_sim *s, int32_t b, int32_t slot)
{
    int32_t last = s->buckets[b].last;
    s->prev[slot] = last;
    s->next[slot] = -1;
    if (last >= 0)
        s->next[last] = slot;
    else
        s->buckets[b].first = slot;
    s->buckets[b].last = slot;
    s->bucket[slot] = b;
}

static inline void bucket_remove(cache_sim *s, int32_t slot)
{
    int32_t b = s->bucket[slot], p = s->prev[slot], n = s->next[slot];
    if (p >= 0)
        s->next[p] = n;
    else
        s->buckets[b].first = n;
    if (n >= 0)
        s->prev[n] = p;
    else
        s->buckets[b].last = p;
    if (s->buckets[b].first < 0) { /* empty: unlink, back to the free chain */
        cache_bucket *bk = &s->buckets[b];
        s->buckets[bk->prev].next = bk->next;
        s->buckets[bk->next].prev = bk->prev;
        s->buckets[b].next = s->free_bucket;
        s->free_bucket = b;
    }
}

/* ---------------------------------------------------------------- setup */

void rs_cache_sim_reset(cache_sim *s)
{
    for (int i = 0; i < s->used; i++)
        s->obj_slot[s->slot_obj[i]] = -1;
    s->used = 0;
    s->clock = 0;
    const int32_t C = s->capacity;
    if (s->policy == CACHE_LRU || s->policy == CACHE_FIFO) {
        s->prev[C] = s->next[C] = C;
    } else if (s->policy == CACHE_LFU) {
        const int32_t head = bucket_head(s);
        s->buckets[head].prev = s->buckets[head].next = head;
        s->buckets[head].freq = UINT64_MAX;
        for (int32_t b = 0; b <= C; b++)
            s->buckets[b].next = b < C ? b + 1 : -1;
        s->free_bucket = 0;
    }
}

int rs_cache_sim_init(cache_sim *s, cache_policy policy, int capacity, int nobj)
{
    memset(s, 0, sizeof *s);
    s->policy = policy;
    s->capacity = capacity;
    s->nobj = nobj;
    const size_t C = (size_t)capacity;
    s->slot_obj = malloc(C * sizeof *s->slot_obj);
    s->obj_slot = malloc((size_t)nobj * sizeof *s->obj_slot);
    s->key = calloc(C, sizeof *s->key);
    s->pinned = calloc(C, sizeof *s->pinned);
    s->where = malloc((size_t)nobj * sizeof *s->where);
    int ok = s->slot_obj && s->obj_slot && s->key && s->pinned && s->where;
    if (ok && uses_list(policy)) {
        s->prev = malloc((C + 1) * sizeof *s->prev);
        s->next = malloc((C + 1) * sizeof *s->next);
        ok = s->prev && s->next;
    }
    if (ok && policy == CACHE_LFU) {
        s->bucket = malloc(C * sizeof *s->bucket);
        s->buckets = malloc((C + 2) * sizeof *s->buckets);
        ok = s->bucket && s->buckets;
    }
    if (!ok) {
        rs_cache_sim_free(s);
        return -1;
    }
    for (int o = 0; o < nobj; o++)
        s->obj_slot[o] = -1;
    rs_cache_sim_reset(s);
    return 0;
}

void rs_cache_sim_checkpoint(cache_sim *s, rs_state_io *io)
{
    const size_t C = (size_t)s->capacity;
    RS_STATE(io, s->used);
    RS_STATE_ARRAY(io, s->slot_obj, C);
    RS_STATE_ARRAY(io, s->obj_slot, s->nobj);
    RS_STATE_ARRAY(io, s->key, C);
    RS_STATE_ARRAY(io, s->pinned, C);
    RS_STATE(io, s->clock);
    if (s->prev) {
        RS_STATE_ARRAY(io, s->prev, C + 1);
        RS_STATE_ARRAY(io, s->next, C + 1);
    }
    if (s->bucket) {
        RS_STATE_ARRAY(io, s->bucket, C);
        RS_STATE_ARRAY(io, s->buckets, C + 2);
    }
    RS_STATE(io, s->free_bucket);
}

/* ---------------------------------------------------------------- victims */

/* lru, fifo: the first unpinned slot of the list. */
static inline int victim_list(const cache_sim *s)
{
    const int32_t head = s->capacity;
    for (int32_t slot = s->next[head]; slot != head; slot = s->next[slot])
        if (!s->pinned[slot])
            return slot;
    return -1;
}

/* lfu: the first unpinned slot of the lowest bucket. */
static inline int victim_lfu(const cache_sim *s)
{
    const int32_t head = bucket_head(s);
    for (int32_t b = s->buckets[head].next; b != head; b = s->buckets[b].next)
        for (int32_t slot = s->buckets[b].first; slot >= 0; slot = s->next[slot])
            if (!s->pinned[slot])
                return slot;
    return -1;
}

/* sch: fewest uses in the window, then least recently touched. */
static int victim_sch(const cache_sim *s, const uint32_t *window)
{
    const int C = s->capacity;
    uint32_t best = UINT32_MAX;
    uint64_t best_touch = UINT64_MAX;
    int at = -1;
    for (int i = 0; i < C; i++) {
        if (s->pinned[i])
            continue;
        uint32_t w = window[s->slot_obj[i]];
        if (w < best || (w == best && s->key[i] < best_touch)) {
            best = w;
            best_touch = s->key[i];
            at = i;
        }
    }
    return at;
}

/* Farthest next use; ties (objects never used again, or next used by the
 * same token) to the lower object id. */
static int victim_belady(const cache_sim *s, const uint64_t *next_use)
{
    const int C = s->capacity;
    uint64_t best = 0;
    int at = -1, best_obj = 0;
    for (int i = 0; i < C; i++) {
        if (s->pinned[i])
            continue;
        int obj = s->slot_obj[i];
        uint64_t nu = next_use[obj];
        if (at < 0 || nu > best || (nu == best && obj < best_obj)) {
            best = nu;
            best_obj = obj;
            at = i;
        }
    }
    return at;
}

static int victim_random(const cache_sim *s, rs_rng *rng)
{
    const int C = s->capacity;
    int free_slots = 0;
    for (int i = 0; i < C; i++)
        free_slots += !s->pinned[i];
    if (free_slots == 0)
        return -1;
    uint64_t r = rs_rng_below(rng, (uint64_t)free_slots);
    for (int i = 0; i < C; i++)
        if (!s->pinned[i] && r-- == 0)
            return i;
    return -1;
}

/* A free slot, else the victim's (evicted), else -1: the object is streamed. */
static inline int make_room(cache_sim *s, const cache_future *f, rs_rng *rng, const cache_policy policy)
{
    if (s->used < s->capacity)
        return s->used++;
    int slot = -1;
    switch (policy) {
    case CACHE_LRU:
    case CACHE_FIFO:
        slot = victim_list(s);
        if (slot >= 0)
            list_remove(s, slot);
        break;
    case CACHE_LFU:
        slot = victim_lfu(s);
        if (slot >= 0)
            bucket_remove(s, slot);
        break;
    case CACHE_SCH: slot = victim_sch(s, f->window); break;
    case CACHE_BELADY: slot = victim_belady(s, f->next_use); break;
    case CACHE_RANDOM: slot = victim_random(s, rng); break;
    case CACHE_STATIC: break;
    }
    if (slot >= 0)
        s->obj_slot[s->slot_obj[slot]] = -1;
    return slot;
}

static inline void insert_at(cache_sim *s, int slot, int32_t obj, const cache_policy policy)
{
    s->slot_obj[slot] = obj;
    s->obj_slot[obj] = slot;
    s->pinned[slot] = 1;
    uint64_t now = ++s->clock;
    switch (policy) {
    case CACHE_LRU:
    case CACHE_FIFO: list_append(s, slot); break;
    case CACHE_LFU: {
        const int32_t head = bucket_head(s);
        int32_t b = s->buckets[head].next;
        if (s->buckets[b].freq != 1)
            b = bucket_open_after(s, head, 1);
        bucket_append(s, b, slot);
        break;
    }
    case CACHE_SCH: s->key[slot] = now; break;
    default: break;
    }
}

static inline void touch(cache_sim *s, int slot, const cache_policy policy)
{
    uint64_t now = ++s->clock;
    switch (policy) {
    case CACHE_LRU:
        list_remove(s, slot);
        list_append(s, slot);
        break;
    case CACHE_LFU: {
        /* to the end of the next frequency's bucket, opened if missing; a
         * slot alone in its bucket with no bucket for freq + 1 just moves up */
        int32_t b = s->bucket[slot], nb = s->buckets[b].next;
        uint64_t freq = s->buckets[b].freq + 1;
        if (s->buckets[nb].freq != freq) { /* the head's frequency matches none */
            if (s->buckets[b].first == slot && s->buckets[b].last == slot) {
                s->buckets[b].freq = freq;
                break;
            }
            nb = bucket_open_after(s, b, freq);
        }
        bucket_remove(s, slot);
        bucket_append(s, nb, slot);
        break;
    }
    case CACHE_SCH: s->key[slot] = now; break;
    default: break;
    }
}

/* ---------------------------------------------------------------- batches */

static void unpin(cache_sim *s, const int32_t *objs, int n)
{
    for (int i = 0; i < n; i++) {
        int slot = s->obj_slot[objs[i]];
        if (slot >= 0)
            s->pinned[slot] = 0;
    }
}

/* The batch rule, inlined per policy so its switches fold away. */
static inline int batch_rule(cache_sim *s, const int32_t *objs, int n, uint8_t *hit, const cache_future *f,
                             rs_rng *rng, const cache_policy policy)
{
    int32_t *where = s->where; /* each object's slot through the batch */
    int hits = 0;
    for (int i = 0; i < n; i++) {
        int32_t slot = s->obj_slot[objs[i]];
        where[i] = slot;
        hit[i] = slot >= 0;
        if (slot >= 0) {
            s->pinned[slot] = 1;
            hits++;
        }
    }
    if (!(hits == n && policy == CACHE_FIFO)) { /* fifo: a batch of hits changes nothing */
        for (int i = 0; i < n; i++) {
            if (where[i] >= 0) {
                touch(s, where[i], policy);
                continue;
            }
            int32_t slot = make_room(s, f, rng, policy);
            where[i] = slot;
            if (slot >= 0)
                insert_at(s, slot, objs[i], policy);
        }
    }
    for (int i = 0; i < n; i++)
        if (where[i] >= 0)
            s->pinned[where[i]] = 0;
    return hits;
}

int rs_cache_sim_batch(cache_sim *s, const int32_t *objs, int n, uint8_t *hit, const cache_future *f, rs_rng *rng)
{
    switch (s->policy) {
    case CACHE_LRU: return batch_rule(s, objs, n, hit, f, rng, CACHE_LRU);
    case CACHE_FIFO: return batch_rule(s, objs, n, hit, f, rng, CACHE_FIFO);
    case CACHE_LFU: return batch_rule(s, objs, n, hit, f, rng, CACHE_LFU);
    case CACHE_BELADY: return batch_rule(s, objs, n, hit, f, rng, CACHE_BELADY);
    default: return batch_rule(s, objs, n, hit, f, rng, s->policy);
    }
}

int rs_cache_sim_prefetch(cache_sim *s, const int32_t *objs, int n, const cache_future *f, rs_rng *rng)
{
    int loaded = 0;
    for (int i = 0; i < n; i++) {
        int slot = s->obj_slot[objs[i]];
        if (slot >= 0)
            s->pinned[slot] = 1;
    }
    for (int i = 0; i < n; i++) {
        if (s->obj_slot[objs[i]] >= 0)
            continue;
        int slot = make_room(s, f, rng, s->policy);
        if (slot >= 0) {
            insert_at(s, slot, objs[i], s->policy);
            loaded++;
        }
    }
    unpin(s, objs, n);
    return loaded;
}
