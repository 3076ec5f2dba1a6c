/* One-pass hit-rate curves (Mattson et al., "Evaluation techniques for
 * storage hierarchies", 1970): a priority stack whose top C objects are,
 * after every batch, exactly what a cache of C slots holds, so one pass
 * gives the hits of every cache size at once.
 *
 * Under the batch rule (cache_sim.h) the caches of all sizes stay nested
 * for LRU and for Belady, but the order is not plain recency (or next use)
 * near the top when a batch does not fit: a cache of C < b slots keeps the
 * batch's hits plus its first misses in slot order. The update therefore
 * has two parts (docs/metrics.md#expert-cache-simulation proves both):
 *
 *   positions 1..b   the batch, in the order the small caches take it:
 *                    position C gets the old occupant of position C if it
 *                    is in the batch and not yet placed, else the next
 *                    batch member in slot order;
 *   positions > b    the other objects of the old stack, read top down
 *                    into a pool; each position takes the pool's best
 *                    object (most recent touch for LRU; nearest next use
 *                    for Belady, ties to the higher object id).
 *
 * With k = 1 this is the classic LRU and OPT stack update. The pool never
 * holds more than b + 1 objects, and the walk stops where nothing changes
 * any more (below the deepest batch member, unless the batch brings new
 * objects).
 *
 * LRU needs less: below the largest batch seen since the reset the stack
 * is in recency order (the caches of at least that many slots hold the
 * most recent objects). An object's distance there is 1 + the number of
 * objects touched after it, counted over 15-bit per-object timestamps
 * packed four to a word (a vector loop of E / 4 words); only the top
 * `max_batch` positions are kept explicitly.
 * Pools with many objects (the global scope) walk the explicit stack,
 * moving the batch to the front as Mattson does. */
#ifndef ROUTESIM_METRICS_CACHE_STACK_H
#define ROUTESIM_METRICS_CACHE_STACK_H

#include <stdint.h>

#include "routesim/checkpoint.h"

typedef enum cache_stack_kind { CACHE_STACK_LRU, CACHE_STACK_BELADY } cache_stack_kind;

typedef struct cache_stack {
    cache_stack_kind kind;
    int nobj, len;
    int max_batch;     /* largest batch since the reset */
    int32_t *items;    /* [nobj] the stack, top first */
    uint8_t *in_stack; /* [nobj] */
    uint32_t *mark;    /* [nobj] == stamp: in the current batch */
    int32_t *member;   /* [nobj] its index in the batch */
    uint8_t *placed;   /* [nobj] (indexed by batch position) */
    int32_t *pool;     /* [nobj + 1] */
    uint64_t *last;    /* [nobj] lru: last touch */
    uint32_t stamp;
    uint64_t clock;
    /* LRU by timestamps: 16-bit touch times, 0 for objects not in the
     * stack, renumbered in order when the clock runs out */
    int counting;      /* use timestamps (set by init for LRU over few objects) */
    uint64_t *recent;  /* [(nobj + 3) / 4] four 15-bit times per word */
    int recent_clock;
    int32_t *head;     /* [nobj] the top min(max_batch, len) positions */
    int32_t *head_pos; /* [nobj] 1-based position in head, 0 = below or absent */
    int head_len;
} cache_stack;

int rs_cache_stack_init(cache_stack *s, cache_stack_kind kind, int nobj);
void rs_cache_stack_free(cache_stack *s);
void rs_cache_stack_reset(cache_stack *s);
/* Saves or restores the stack (routesim/checkpoint.h). */
void rs_cache_stack_checkpoint(cache_stack *s, rs_state_io *io);

/* One batch of n distinct objects. dist[i] = the stack distance of objs[i]
 * before the batch (1-based: a hit for every cache of at least dist[i]
 * slots), 0 when it is not in the stack (a miss at every size).
 * next_use (Belady only) = each object's next use after this batch for
 * objects outside it (the batch's own are not read). */
void rs_cache_stack_batch(cache_stack *s, const int32_t *objs, int n, int32_t *dist, const uint64_t *next_use);

#endif
