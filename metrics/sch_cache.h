/* The cache behind the `sch` metric: the hit rate that moe-lrc's calc_fsf
 * (src/41_sch_calc.py) gives for one cache size C, computed in one
 * streaming pass.
 *
 * calc_fsf keeps a priority stack (Mattson et al.) over every expert seen
 * in the sequence, priority = (uses among the next tokens, last access), and
 * counts an access as a hit for size C when the expert sat in the top C of
 * the stack at the start of its token. For one C only the top C matters:
 * it changes exactly like a cache of C slots that, on a miss, evicts its
 * lowest-priority expert at that moment. So this keeps C slots (scanned
 * when few, else a min-heap on the priority), with calc_fsf's conventions:
 *   - a token's ids form a batch; hits are decided against the cache at the
 *     start of the batch, then the ids are inserted in order;
 *   - an expert's future uses count the tokens t .. t+m-1 minus the uses
 *     already made, so an id of the current token not processed yet still
 *     counts its own use;
 *   - warm start: the first use of an expert in the sequence is a hit while
 *     fewer than C distinct experts have been used.
 * A token is decided once the next m-1 tokens are known; the m tokens in
 * flight are kept in a ring, so memory is O(num_ids + m width). */
#ifndef ROUTESIM_METRICS_SCH_CACHE_H
#define ROUTESIM_METRICS_SCH_CACHE_H

#include <stdint.h>

#include "routesim/checkpoint.h"
#include "routesim/chunk.h"
#include "routesim/xsum.h"

typedef struct rs_sch_slot {
    uint64_t key; /* heap: the id's key when last placed, never above its true key; scan: unused */
    int32_t id;
} rs_sch_slot;

typedef struct rs_sch_cache {
    int num_ids;   /* ids range over 0 .. num_ids-1 (E, or E L for the model) */
    int width;     /* most ids per token */
    int slots;     /* C, at most num_ids */
    int lookahead; /* m */
    int ring_rows; /* m, or the trace length when shorter */
    /* tokens of the open sequence pushed but not decided yet */
    int32_t *ring;     /* [ring_rows * width] */
    int32_t *ring_len; /* [ring_rows] */
    int64_t pushed, decided;
    int push_slot, decide_slot; /* ring rows of the next token pushed / decided */
    /* per id: future uses << 40 | last access (the access clock restarts
     * every sequence), heap slot (-1 = not cached), sequence of first use,
     * and the token that last listed it (to drop repeats) */
    uint64_t *key;
    int32_t *where;
    int64_t *first_use;
    int64_t *listed_by;
    rs_sch_slot *heap; /* [slots] cached ids: a min-heap on lagging keys, or unordered (scan) */
    int scan;          /* few slots: find the lowest key by a scan of key[] */
    int size;
    int distinct;      /* ids used so far in the open sequence */
    uint64_t clock;
    int64_t sequence;  /* stamp of the open sequence */
    int64_t token;     /* stamp of the token being pushed */
    int64_t hits, accesses; /* of the open sequence */
    rs_xsum rates;     /* per-sequence hit rates of finished sequences (count = sequences) */
} rs_sch_cache;

/* Returns -1 when out of memory. slots is capped at num_ids; max_tokens
 * (the trace length, 0 = unknown) bounds the ring when shorter than m. */
int rs_sch_cache_init(rs_sch_cache *c, int num_ids, int width, int slots, int lookahead, int64_t max_tokens);
void rs_sch_cache_free(rs_sch_cache *c);

/* The tokens of one chunk, in order: layer's ids, or (layer = -1) a batch of
 * every layer's ids numbered l * E + e. -1 padding and repeated ids are
 * skipped; skipped tokens (valid = 0) are absent from their sequence; a
 * sequence ending in the chunk is closed (its hit rate folded in; one
 * without accesses has none and is left out). */
void rs_sch_feed(rs_sch_cache *c, const rs_chunk *chunk, const rs_decisions *dec, int layer);

/* Outside a sequence: frees all but the finished sequences' rates (what a
 * merge reads of o); c may then only be merged into another cache. */
void rs_sch_cache_compact(rs_sch_cache *c);

/* c covers tokens [a, b) and ends on a sequence boundary, o covers [b, c):
 * afterwards c covers [a, c). Returns -1 when c has an open sequence. */
int rs_sch_cache_merge(rs_sch_cache *c, const rs_sch_cache *o);

/* Saves or restores c's state (routesim/checkpoint.h). */
void rs_sch_cache_checkpoint(rs_sch_cache *c, rs_state_io *io);

/* Mean over finished sequences of their hit rate, NaN when none. */
double rs_sch_cache_value(const rs_sch_cache *c);

#endif
