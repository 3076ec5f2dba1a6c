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

static int uses_list(cache_policy p, int capacity)
{
    return p == CACHE_LFU || ((p == CACHE_LRU || p == CACHE_FIFO) && capacity > CACHE_STAMPED_MAX);
}

/* lru, fifo with few slots: each slot's key is the clock at its last touch
 * (lru) or its insertion (fifo), so the victim, the first unpinned slot of
 * the list, is the unpinned slot with the smallest key; a batch member's
 * key carries STAMP_PIN, which puts it after every other. */
/* The batch rule is specialised per policy: its helpers must inline so the
 * policy's switches fold. */
#define SIM_INLINE __attribute__((always_inline)) static inline

#define STAMP_PIN (UINT64_C(1) << 62)
#define STAMP_SCRATCH 8 /* keys past slot C, for the batch rule (a power of 2) */

/* The slot of the smallest (largest) of C distinct keys below 2^63; two
 * running extremes, even and odd slots, halve the chain of compares. */
SIM_INLINE int argmin_key(const int64_t *key, int C)
{
    int64_t best0 = INT64_MAX, best1 = INT64_MAX;
    int at0 = 0, at1 = 0, i = 0;
    for (; i + 1 < C; i += 2) {
        int below0 = key[i] < best0, below1 = key[i + 1] < best1;
        best0 = below0 ? key[i] : best0;
        at0 = below0 ? i : at0;
        best1 = below1 ? key[i + 1] : best1;
        at1 = below1 ? i + 1 : at1;
    }
    if (i < C && key[i] < best0) {
        best0 = key[i];
        at0 = i;
    }
    return best1 < best0 ? at1 : at0;
}

SIM_INLINE int argmax_key(const int64_t *key, int C)
{
    int64_t best0 = INT64_MIN, best1 = INT64_MIN;
    int at0 = 0, at1 = 0, i = 0;
    for (; i + 1 < C; i += 2) {
        int above0 = key[i] > best0, above1 = key[i + 1] > best1;
        best0 = above0 ? key[i] : best0;
        at0 = above0 ? i : at0;
        best1 = above1 ? key[i + 1] : best1;
        at1 = above1 ? i + 1 : at1;
    }
    if (i < C && key[i] > best0) {
        best0 = key[i];
        at0 = i;
    }
    return best1 > best0 ? at1 : at0;
}


void rs_cache_sim_free(cache_sim *s)
{
    free(s->slot_obj);
    free(s->obj_slot);
    free(s->key);
    free(s->pinned);
    free(s->order);
    free(s->where);
    free(s->missed);
    free(s->prev);
    free(s->next);
    free(s->bucket);
    free(s->buckets);
    memset(s, 0, sizeof *s);
}

/* ---------------------------------------------------------------- lists */

/* lru, fifo: one circular list through prev/next, head = capacity. */
SIM_INLINE void list_append(cache_sim *s, int32_t slot)
{
    const int32_t head = s->capacity, last = s->prev[head];
    s->next[last] = slot;
    s->prev[slot] = last;
    s->next[slot] = head;
    s->prev[head] = slot;
}

SIM_INLINE void list_remove(cache_sim *s, int32_t slot)
{
    s->next[s->prev[slot]] = s->next[slot];
    s->prev[s->next[slot]] = s->prev[slot];
}

/* lfu: buckets 0..capacity, head capacity + 1; a bucket's slots form a
 * list through prev/next ending in -1. There are at most capacity
 * non-empty buckets, and a touch opens one before it may empty another. */
static int32_t bucket_head(const cache_sim *s) { return s->capacity + 1; }

SIM_INLINE int32_t bucket_open_after(cache_sim *s, int32_t after, uint64_t freq)
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

SIM_INLINE void bucket_append(cache_sim *s, int32_t b, int32_t slot)
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

SIM_INLINE void bucket_remove(cache_sim *s, int32_t slot)
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
    s->order_head = 0;
    for (int i = 0; s->order && i < s->capacity; i++) /* filled in slot order */
        s->order[i] = i;
    const int32_t C = s->capacity;
    if ((s->policy == CACHE_LRU || s->policy == CACHE_FIFO) && !s->stamped) {
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
    s->key = calloc(C + STAMP_SCRATCH, sizeof *s->key); /* past slot C: scratch of the batch rule */
    s->pinned = calloc(C + 1, sizeof *s->pinned);
    s->where = malloc((size_t)nobj * sizeof *s->where);
    s->missed = malloc((size_t)nobj * sizeof *s->missed);
    int ok = s->slot_obj && s->obj_slot && s->key && s->pinned && s->where && s->missed;
    s->stamped = (policy == CACHE_LRU || policy == CACHE_FIFO) && capacity <= CACHE_STAMPED_MAX;
    if (ok && s->stamped && policy == CACHE_FIFO)
        ok = (s->order = malloc(C * sizeof *s->order)) != NULL;
    if (ok && uses_list(policy, capacity)) {
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
    if (s->order) {
        RS_STATE_ARRAY(io, s->order, C);
        RS_STATE(io, s->order_head);
    }
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
SIM_INLINE int victim_list(const cache_sim *s)
{
    const int32_t head = s->capacity;
    for (int32_t slot = s->next[head]; slot != head; slot = s->next[slot])
        if (!s->pinned[slot])
            return slot;
    return -1;
}

/* lru, fifo stamped: the smallest key, unless it is pinned (then all are). */
SIM_INLINE int victim_stamp(const cache_sim *s)
{
    int at = argmin_key((const int64_t *)s->key, s->capacity);
    return s->key[at] & STAMP_PIN ? -1 : at;
}

/* stamped fifo, full: the first unpinned slot in insertion order, which
 * becomes the newest (the object replacing its own goes in at once), or -1. */
SIM_INLINE int victim_fifo_order(cache_sim *s)
{
    const int C = s->capacity, head = s->order_head;
    int32_t *order = s->order;
    for (int i = 0; i < C; i++) {
        int at = head + i < C ? head + i : head + i - C;
        int32_t slot = order[at];
        if (s->key[slot] & STAMP_PIN)
            continue;
        for (; i > 0; i--) { /* the pinned older ones move up one place */
            int to = at, from = at == 0 ? C - 1 : at - 1;
            order[to] = order[from];
            at = from;
        }
        order[head] = slot; /* head's place is now the newest */
        s->order_head = head + 1 == C ? 0 : head + 1;
        return slot;
    }
    return -1;
}

/* lfu: the first unpinned slot of the lowest bucket. */
SIM_INLINE int victim_lfu(const cache_sim *s)
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
 * same token) to the lower object id: the slot with the largest key
 * (cache_belady_key). Batch members are pinned, and their next use is the
 * current batch, the nearest of all, so the largest key is a pinned slot
 * only when every slot is pinned, or in a prefetch: then the pinned slots
 * are passed over one by one. */
SIM_INLINE int victim_belady(const cache_sim *s)
{
    const int C = s->capacity;
    const uint64_t *key = s->key;
    int at = argmax_key((const int64_t *)key, C);
    if (!s->pinned[at])
        return at;
    uint64_t best = 0; /* every key is above 0: its low part is 0xFFFF - obj, obj below 0xFFFF */
    at = -1;
    for (int i = 0; i < C; i++)
        if (!s->pinned[i] && key[i] > best) {
            best = key[i];
            at = i;
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
SIM_INLINE int make_room(cache_sim *s, const cache_future *f, rs_rng *rng, const cache_policy policy)
{
    if (s->used < s->capacity)
        return s->used++;
    int slot = -1;
    switch (policy) {
    case CACHE_LRU:
    case CACHE_FIFO:
        if (s->stamped) {
            slot = policy == CACHE_FIFO ? victim_fifo_order(s) : victim_stamp(s);
            break;
        }
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
    case CACHE_BELADY: slot = victim_belady(s); break;
    case CACHE_RANDOM: slot = victim_random(s, rng); break;
    case CACHE_STATIC: break;
    }
    if (slot >= 0)
        s->obj_slot[s->slot_obj[slot]] = -1;
    return slot;
}

SIM_INLINE void insert_at(cache_sim *s, int slot, int32_t obj, const cache_future *f, const cache_policy policy)
{
    s->slot_obj[slot] = obj;
    s->obj_slot[obj] = slot;
    uint64_t now = ++s->clock;
    switch (policy) {
    case CACHE_LRU:
    case CACHE_FIFO:
        if (s->stamped)
            s->key[slot] = now;
        else
            list_append(s, slot);
        break;
    case CACHE_LFU: {
        const int32_t head = bucket_head(s);
        int32_t b = s->buckets[head].next;
        if (s->buckets[b].freq != 1)
            b = bucket_open_after(s, head, 1);
        bucket_append(s, b, slot);
        break;
    }
    case CACHE_SCH: s->key[slot] = now; break;
    case CACHE_BELADY: s->key[slot] = cache_belady_key(f->next_use[obj], obj); break;
    default: break;
    }
}

SIM_INLINE void touch(cache_sim *s, int slot, const cache_policy policy)
{
    uint64_t now = ++s->clock;
    switch (policy) {
    case CACHE_LRU:
        if (s->stamped) { /* keeps a batch member's pin */
            s->key[slot] = now | (s->key[slot] & STAMP_PIN);
            break;
        }
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

/* A batch member may not be evicted. */
SIM_INLINE void pin(cache_sim *s, int slot)
{
    if (s->stamped)
        s->key[slot] |= STAMP_PIN;
    else
        s->pinned[slot] = 1;
}

SIM_INLINE void unpin_slot(cache_sim *s, int slot)
{
    if (s->stamped)
        s->key[slot] &= ~STAMP_PIN;
    else
        s->pinned[slot] = 0;
}

static void unpin(cache_sim *s, const int32_t *objs, int n)
{
    for (int i = 0; i < n; i++) {
        int slot = s->obj_slot[objs[i]];
        if (slot >= 0)
            unpin_slot(s, slot);
    }
}

/* The batch rule, inlined per policy so its switches fold away. */
/* The batch rule for stamped lru and fifo, without branching on hit or
 * miss for the hits. An lru hit is touched at once, keyed by its place in
 * the batch (the order the rule touches in): every member then has a key
 * above the batch's base, every other object one below, so the smallest key
 * is the victim unless it is a member, and then all are. A fifo hit keeps
 * its key, with the pin bit set for the batch. Writes for objects not
 * cached land in scratch keys past slot C, spread so they do not queue. */
SIM_INLINE int batch_stamped(cache_sim *s, const int32_t *objs, int n, uint8_t *hit, const cache_policy policy)
{
    int32_t *restrict where = s->where, *restrict missed = s->missed;
    int32_t *restrict obj_slot = s->obj_slot, *restrict slot_obj = s->slot_obj;
    uint64_t *restrict key = s->key;
    const int C = s->capacity;
    const uint64_t base = s->clock, pin = policy == CACHE_FIFO ? STAMP_PIN : 0;
    int hits = 0, nmissed = 0;
    for (int i = 0; i < n; i++) {
        int32_t slot = obj_slot[objs[i]];
        int cached = slot >= 0, at = cached ? slot : C + (i & (STAMP_SCRATCH - 1));
        where[i] = slot;
        hit[i] = (uint8_t)cached;
        hits += cached;
        missed[nmissed] = i;
        nmissed += !cached;
        key[at] = policy == CACHE_LRU ? base + (uint64_t)i + 1 : key[at] | STAMP_PIN;
    }
    int used = s->used;
    for (int j = 0; j < nmissed; j++) { /* inserted in batch order, keyed likewise */
        const int i = missed[j];
        int32_t slot;
        if (used < C) {
            slot = used++;
        } else {
            if (policy == CACHE_FIFO) {
                slot = victim_fifo_order(s);
            } else {
                slot = argmin_key((const int64_t *)key, C);
                slot = key[slot] > base ? -1 : slot;
            }
            if (slot < 0) {
                where[i] = -1; /* every slot holds a member: streamed */
                continue;
            }
            obj_slot[slot_obj[slot]] = -1;
        }
        where[i] = slot;
        slot_obj[slot] = objs[i];
        obj_slot[objs[i]] = slot;
        key[slot] = (base + (uint64_t)i + 1) | pin;
    }
    s->used = used;
    if (policy == CACHE_FIFO)
        for (int i = 0; i < n; i++)
            key[where[i] >= 0 ? where[i] : C + (i & (STAMP_SCRATCH - 1))] &= ~STAMP_PIN;
    s->clock = base + (uint64_t)n;
    return hits;
}

SIM_INLINE int batch_rule(cache_sim *s, const int32_t *objs, int n, uint8_t *hit, const cache_future *f,
                             rs_rng *rng, const cache_policy policy)
{
    if (n == 1) { /* alone in its batch: nothing to pin */
        int32_t slot = s->obj_slot[objs[0]];
        hit[0] = slot >= 0;
        if (slot >= 0) {
            if (policy != CACHE_FIFO) /* fifo: a batch of hits changes nothing */
                touch(s, slot, policy);
            return 1;
        }
        slot = make_room(s, f, rng, policy);
        if (slot >= 0)
            insert_at(s, slot, objs[0], f, policy);
        return 0;
    }
    if (s->stamped)
        return batch_stamped(s, objs, n, hit, policy);
    /* Hits are found, pinned and counted without branching on them; slot C
     * is scratch, where the pins of objects not cached land. */
    int32_t *where = s->where, *missed = s->missed;
    const int C = s->capacity;
    int hits = 0, nmissed = 0;
    for (int i = 0; i < n; i++) {
        int32_t slot = s->obj_slot[objs[i]];
        int cached = slot >= 0, at = cached ? slot : C;
        where[i] = slot;
        hit[i] = (uint8_t)cached;
        hits += cached;
        missed[nmissed] = i;
        nmissed += !cached;
        s->pinned[at] = 1;
    }
    if (policy == CACHE_BELADY || policy == CACHE_RANDOM) { /* a hit changes nothing but the clock */
        for (int j = 0; j < nmissed; j++) {
            const int i = missed[j];
            int32_t slot = make_room(s, f, rng, policy);
            where[i] = slot;
            if (slot >= 0) {
                insert_at(s, slot, objs[i], f, policy);
                s->pinned[slot] = 1;
            }
        }
        s->clock += (uint64_t)hits;
    } else if (!(hits == n && policy == CACHE_FIFO)) { /* fifo: a batch of hits changes nothing */
        for (int i = 0; i < n; i++) {
            if (where[i] >= 0) {
                touch(s, where[i], policy);
                continue;
            }
            int32_t slot = make_room(s, f, rng, policy);
            where[i] = slot;
            if (slot >= 0) {
                insert_at(s, slot, objs[i], f, policy);
                s->pinned[slot] = 1;
            }
        }
    }
    for (int i = 0; i < n; i++)
        s->pinned[where[i] >= 0 ? where[i] : C] = 0;
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

int64_t rs_cache_sim_belady_singles(cache_sim *s, const uint16_t *objs, const uint32_t *next, size_t batches,
                                    uint8_t *hit)
{
    int32_t *restrict obj_slot = s->obj_slot, *restrict slot_obj = s->slot_obj;
    uint64_t *restrict key = s->key;
    const int C = s->capacity;
    int used = s->used;
    int64_t hits = 0;
    for (size_t b = 0; b < batches; b++) {
        const int32_t obj = objs[b];
        const uint64_t later = next[b] == UINT32_MAX ? CACHE_NEVER : next[b];
        int32_t slot = obj_slot[obj];
        hit[b] = slot >= 0;
        hits += slot >= 0;
        if (slot < 0) { /* alone in its batch: nothing pinned, the farthest key goes */
            if (used < C) {
                slot = used++;
            } else {
                slot = argmax_key((const int64_t *)key, C);
                obj_slot[slot_obj[slot]] = -1;
            }
            slot_obj[slot] = obj;
            obj_slot[obj] = slot;
        }
        key[slot] = cache_belady_key(later, obj);
    }
    s->used = used;
    s->clock += batches; /* one touch or insertion each */
    return hits;
}

int rs_cache_sim_prefetch(cache_sim *s, const int32_t *objs, int n, const cache_future *f, rs_rng *rng)
{
    int loaded = 0;
    for (int i = 0; i < n; i++) {
        int slot = s->obj_slot[objs[i]];
        if (slot >= 0)
            pin(s, slot);
    }
    for (int i = 0; i < n; i++) {
        if (s->obj_slot[objs[i]] >= 0)
            continue;
        int slot = make_room(s, f, rng, s->policy);
        if (slot >= 0) {
            insert_at(s, slot, objs[i], f, s->policy);
            pin(s, slot);
            loaded++;
        }
    }
    unpin(s, objs, n);
    return loaded;
}
