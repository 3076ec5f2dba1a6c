/* One expert cache of a fixed number of slots under one replacement policy
 * (docs/metrics.md#expert-cache-simulation), fed batches: the distinct
 * objects (experts, or layer * E + expert in a global pool) one token needs
 * at one layer.
 *
 * Batch rule: hits are decided for the whole batch before anything changes;
 * then, in slot order, a hit is touched and a miss is inserted, evicting a
 * cached object that is not in the batch (none left: the miss is streamed,
 * not cached). Small arrays indexed by slot and by object: no hashing. */
#ifndef ROUTESIM_METRICS_CACHE_SIM_H
#define ROUTESIM_METRICS_CACHE_SIM_H

#include <stdint.h>

#include "routesim/checkpoint.h"
#include "routesim/rng.h"

typedef enum cache_policy {
    CACHE_LRU,
    CACHE_LFU,
    CACHE_FIFO,
    CACHE_RANDOM,
    CACHE_BELADY,
    CACHE_STATIC,
    CACHE_SCH,
} cache_policy;

/* Next use of an object that is never used again. */
#define CACHE_NEVER UINT64_MAX

/* What the lookahead policies read at the current batch (NULL otherwise).
 * belady reads next_use when it inserts an object; when a cached object's
 * next use changes, the caller tells it (rs_cache_sim_next_use). */
typedef struct cache_future {
    const uint64_t *next_use; /* belady: [nobj] next batch that uses the object, CACHE_NEVER if none */
    const uint32_t *window;   /* sch: [nobj] tokens among the next m-1 that use the object */
} cache_future;

/* One LFU frequency: its neighbours in the list of frequencies, and its
 * slots in the order they reached it. */
typedef struct cache_bucket {
    uint64_t freq;
    int32_t prev, next, first, last;
} cache_bucket;

/* LRU and FIFO with at most this many slots order them by a key per slot
 * (the clock at the last touch, at insertion): a victim is a scan of the
 * keys, a touch one store. */
#define CACHE_STAMPED_MAX 64

/* LRU and FIFO with more slots keep them in one list, the next victim first (least
 * recently touched, first inserted); LFU keeps a list of frequency buckets
 * in increasing order, each a list of slots in the order they reached it
 * (libCacheSim's LFU.c). A victim is the first unpinned slot of the list:
 * at most the batch's own slots are skipped. The others scan their slots. */
typedef struct cache_sim {
    cache_policy policy;
    int capacity, nobj, used;
    int stamped;       /* lru, fifo with at most CACHE_STAMPED_MAX slots: keys, no list */
    /* stamped fifo: the slots in insertion order (their keys ascending),
     * oldest first: order[(order_head + i) % capacity] for i < used. The
     * victim is the first unpinned one, nearly always the oldest. */
    int32_t *order;
    int order_head;
    int32_t *slot_obj; /* [capacity] */
    int32_t *obj_slot; /* [nobj]; -1 = not cached */
    uint64_t *key;     /* [capacity] stamped lru, fifo and sch: last touch or insertion; belady: next use and id */
    uint8_t *pinned;   /* [capacity] holds a member of the batch being processed */
    int32_t *where;    /* [nobj] batch scratch: each member's slot */
    int32_t *missed;   /* [nobj] batch scratch: the members not cached */
    uint64_t clock;    /* one tick per touch or insertion */
    /* slot lists: index capacity is the list head (lru, fifo) */
    int32_t *prev, *next; /* [capacity + 1] */
    /* lfu: buckets 0..capacity, bucket capacity + 1 heads their list */
    int32_t *bucket;       /* [capacity] the slot's bucket */
    cache_bucket *buckets; /* [capacity + 2] */
    int32_t free_bucket;   /* chain of unused buckets through next */
} cache_sim;

int rs_cache_sim_init(cache_sim *s, cache_policy policy, int capacity, int nobj);
void rs_cache_sim_free(cache_sim *s);
/* Saves or restores the cache's contents (routesim/checkpoint.h). */
void rs_cache_sim_checkpoint(cache_sim *s, rs_state_io *io);
/* Empties the cache (a new sequence). */
void rs_cache_sim_reset(cache_sim *s);

/* One batch of n distinct objects: hit[i] = 1 where objs[i] was cached
 * before the batch. Returns the number of hits. rng: random policy only. */
int rs_cache_sim_batch(cache_sim *s, const int32_t *objs, int n, uint8_t *hit, const cache_future *f, rs_rng *rng);

/* belady: one key per slot orders victims, farthest next use first, then
 * the lower object id: the next use (batches, below UINT32_MAX; never =
 * UINT32_MAX) above, 0xFFFF - obj below (lookahead objects are 16-bit). */
static inline uint64_t cache_belady_key(uint64_t next_use, int32_t obj)
{
    uint64_t use = next_use == CACHE_NEVER ? UINT32_MAX : next_use;
    return use << 16 | (uint64_t)(0xFFFF - obj);
}

/* belady: the object's next use is now next_use (cache_future's
 * next_use[obj] changed); keeps the victim order. */
static inline void rs_cache_sim_next_use(cache_sim *s, int32_t obj, uint64_t next_use)
{
    int32_t slot = s->obj_slot[obj];
    if (slot >= 0)
        s->key[slot] = cache_belady_key(next_use, obj);
}

/* belady, batches of one object each (a segment replayed with nothing else
 * looking ahead): objs[b] is batch b's object, next[b] the batch that next
 * uses it (UINT32_MAX: none). hit[b] = 1 where it was cached. The same
 * cache as rs_cache_sim_batch of each batch followed by
 * rs_cache_sim_next_use of its object, in one loop. Returns the hits. */
int64_t rs_cache_sim_belady_singles(cache_sim *s, const uint16_t *objs, const uint32_t *next, size_t batches,
                                    uint8_t *hit);

/* Prefetch: inserts the objects of objs (distinct) that are not cached, by
 * the policy's insert rule, as a batch of their own (they do not evict each
 * other; cached ones are left as they are). Returns how many were loaded. */
int rs_cache_sim_prefetch(cache_sim *s, const int32_t *objs, int n, const cache_future *f, rs_rng *rng);

#endif
