/* One-pass hit-rate curves: the priority stack update (cache_stack.h). */
#include "metrics/cache_stack.h"

#include <stdlib.h>
#include <string.h>

#include "routesim/vector.h"

/* LRU stacks over at most this many objects count timestamps (E per access). */
enum { COUNTING_MAX_OBJECTS = 512 };

int rs_cache_stack_init(cache_stack *s, cache_stack_kind kind, int nobj)
{
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->nobj = nobj;
    s->items = malloc((size_t)nobj * sizeof *s->items);
    s->in_stack = calloc((size_t)nobj, sizeof *s->in_stack);
    s->mark = calloc((size_t)nobj, sizeof *s->mark);
    s->member = calloc((size_t)nobj, sizeof *s->member);
    s->placed = calloc((size_t)nobj, sizeof *s->placed);
    s->pool = malloc(((size_t)nobj + 1) * sizeof *s->pool);
    s->last = calloc((size_t)nobj, sizeof *s->last);
    s->head = malloc((size_t)nobj * sizeof *s->head);
    s->head_pos = calloc((size_t)nobj, sizeof *s->head_pos);
    s->recent = calloc(((size_t)nobj + 3) / 4, sizeof *s->recent);
    s->counting = kind == CACHE_STACK_LRU && nobj <= COUNTING_MAX_OBJECTS;
    if (!s->items || !s->in_stack || !s->mark || !s->member || !s->placed || !s->pool || !s->last || !s->head ||
        !s->head_pos || !s->recent) {
        rs_cache_stack_free(s);
        return -1;
    }
    return 0;
}

void rs_cache_stack_free(cache_stack *s)
{
    free(s->items);
    free(s->in_stack);
    free(s->mark);
    free(s->member);
    free(s->placed);
    free(s->pool);
    free(s->last);
    free(s->head);
    free(s->head_pos);
    free(s->recent);
    memset(s, 0, sizeof *s);
}

void rs_cache_stack_reset(cache_stack *s)
{
    if (s->counting) {
        memset(s->recent, 0, ((size_t)s->nobj + 3) / 4 * sizeof *s->recent);
        s->recent_clock = 0;
        for (int i = 0; i < s->head_len; i++)
            s->head_pos[s->head[i]] = 0;
        s->head_len = 0;
    } else {
        for (int i = 0; i < s->len; i++)
            s->in_stack[s->items[i]] = 0;
    }
    s->len = 0;
    s->max_batch = 0;
}

/* Touch times: 15 bits each, four to a word; 0 = not in the stack. */
enum { RECENT_MAX = 0x7FFE };

static int recent_get(const cache_stack *s, int32_t x) { return (int)(s->recent[x >> 2] >> (16 * (x & 3)) & 0xFFFF); }

static void recent_set(cache_stack *s, int32_t x, int t)
{
    const int shift = 16 * (x & 3);
    s->recent[x >> 2] = (s->recent[x >> 2] & ~(0xFFFFull << shift)) | (uint64_t)t << shift;
}

/* Objects touched after time v: per 16-bit lane, (t | 0x8000) - (v + 1)
 * keeps its top bit iff t > v (no borrow crosses lanes); lane sums stay
 * below 2^16 and the last multiply adds the four lanes. */
RS_VECTOR_CLONES
static int touched_after(const uint64_t *recent, int words, int v)
{
    const uint64_t top = 0x8000800080008000ull, vb = (uint64_t)(v + 1) * 0x0001000100010001ull;
    uint64_t lanes = 0;
#pragma omp simd reduction(+ : lanes)
    for (int i = 0; i < words; i++)
        lanes += (((recent[i] | top) - vb) & top) >> 15;
    return (int)((lanes * 0x0001000100010001ull) >> 48);
}

/* The clock ran out: renumber the touch times 1..len in order (every 32k
 * touches; the pool is free scratch then). */
static void renumber(cache_stack *s)
{
    const int nobj = s->nobj, words = (nobj + 3) / 4;
    int in = 0;
    for (int x = 0; x < nobj; x++)
        in += recent_get(s, x) > 0;
    for (int x = 0; x < nobj; x++) {
        int t = recent_get(s, x);
        s->pool[x] = t > 0 ? in - touched_after(s->recent, words, t) : 0;
    }
    for (int x = 0; x < nobj; x++)
        recent_set(s, x, s->pool[x]);
    s->recent_clock = in;
}

/* LRU over few objects: distances from timestamps, the head kept explicitly
 * by the same two rules as the full stack. */
static void batch_counting(cache_stack *s, const int32_t *objs, int n, int32_t *dist, uint32_t stamp)
{
    int cold = 0;
    for (int i = 0; i < n; i++) {
        int32_t e = objs[i];
        int t = recent_get(s, e);
        if (t == 0) {
            dist[i] = 0;
            cold++;
        } else if (s->head_pos[e]) {
            dist[i] = s->head_pos[e];
        } else {
            dist[i] = 1 + touched_after(s->recent, (s->nobj + 3) / 4, t);
        }
    }
    const int old_head = s->head_len, new_len = s->len + cold;
    const int max_batch = n > s->max_batch ? n : s->max_batch;
    const int new_head = max_batch < new_len ? max_batch : new_len;
    int32_t *head = s->head;
    for (int i = 0; i < old_head; i++)
        s->head_pos[head[i]] = 0;
    /* positions 1..n; below the old head, old position c is the batch
     * member at distance c if there is one (nothing else matters there:
     * the new head then ends at n) */
    int pool_n = 0, cursor = 0;
    for (int c = 0; c < n; c++) {
        int chosen = -1;
        if (c < old_head) {
            int32_t old = head[c];
            if (s->mark[old] == stamp) {
                if (!s->placed[s->member[old]])
                    chosen = s->member[old];
            } else {
                s->pool[pool_n++] = old;
            }
        } else {
            for (int i = 0; i < n; i++)
                if (dist[i] == c + 1 && !s->placed[i])
                    chosen = i;
        }
        if (chosen < 0) {
            while (s->placed[cursor])
                cursor++;
            chosen = cursor;
        }
        s->placed[chosen] = 1;
        head[c] = objs[chosen];
    }
    for (int c = n; c < new_head; c++) { /* the pool's most recent; old positions stay within the old head */
        if (c < old_head && s->mark[head[c]] != stamp)
            s->pool[pool_n++] = head[c];
        int best = 0;
        for (int i = 1; i < pool_n; i++)
            if (recent_get(s, s->pool[i]) > recent_get(s, s->pool[best]))
                best = i;
        head[c] = s->pool[best];
        s->pool[best] = s->pool[--pool_n];
    }
    for (int i = 0; i < new_head; i++)
        s->head_pos[head[i]] = i + 1;
    s->head_len = new_head;
    s->len = new_len;
    s->max_batch = max_batch;
    if (RECENT_MAX - s->recent_clock < n)
        renumber(s);
    for (int i = 0; i < n; i++)
        recent_set(s, objs[i], ++s->recent_clock);
}

/* Index in the pool of the object a cache keeps first. */
static int best_in_pool(const cache_stack *s, int pool_n, const uint64_t *next_use)
{
    int best = 0;
    if (s->kind == CACHE_STACK_LRU) {
        for (int i = 1; i < pool_n; i++)
            if (s->last[s->pool[i]] > s->last[s->pool[best]])
                best = i;
    } else {
        for (int i = 1; i < pool_n; i++) {
            int32_t a = s->pool[i], b = s->pool[best];
            if (next_use[a] < next_use[b] || (next_use[a] == next_use[b] && a > b))
                best = i;
        }
    }
    return best;
}

void rs_cache_stack_batch(cache_stack *s, const int32_t *objs, int n, int32_t *dist, const uint64_t *next_use)
{
    int32_t *items = s->items;
    if (++s->stamp == 0) { /* wrapped: forget every old mark */
        memset(s->mark, 0, (size_t)s->nobj * sizeof *s->mark);
        s->stamp = 1;
    }
    const uint32_t stamp = s->stamp;
    for (int i = 0; i < n; i++) {
        s->mark[objs[i]] = stamp;
        s->member[objs[i]] = i;
        s->placed[i] = 0;
    }
    if (s->counting) {
        batch_counting(s, objs, n, dist, stamp);
        return;
    }
    int cold = 0;
    for (int i = 0; i < n; i++) {
        dist[i] = 0;
        cold += !s->in_stack[objs[i]];
    }
    const int old_len = s->len, new_len = old_len + cold, need = n - cold;
    int found = 0, pool_n = 0, cursor = 0, j = 0;

    /* Positions 1..n: the batch, as caches smaller than it take it. */
    for (int c = 0; c < n; c++) {
        int32_t old = c < old_len ? items[c] : -1;
        int chosen = -1;
        if (old >= 0) {
            j = c + 1;
            if (s->mark[old] == stamp) {
                int i = s->member[old];
                dist[i] = c + 1;
                found++;
                if (!s->placed[i])
                    chosen = i;
            } else {
                s->pool[pool_n++] = old;
            }
        }
        if (chosen < 0) {
            while (s->placed[cursor])
                cursor++;
            chosen = cursor;
        }
        s->placed[chosen] = 1;
        items[c] = objs[chosen];
    }

    /* Positions below: the pool's best object each. While the old stack
     * lasts, position p is written right after old position p is read. */
    int p = n;
    while (p < new_len && !(found == need && pool_n == 0)) {
        if (s->kind == CACHE_STACK_LRU && j >= s->max_batch)
            break;
        if (j < old_len) {
            int32_t old = items[j++];
            if (s->mark[old] == stamp) {
                dist[s->member[old]] = j;
                found++;
            } else {
                s->pool[pool_n++] = old;
            }
        }
        int best = best_in_pool(s, pool_n, next_use);
        items[p++] = s->pool[best];
        s->pool[best] = s->pool[--pool_n];
    }
    if (p < new_len && !(found == need && pool_n == 0)) {
        /* LRU below every batch seen since the reset: the old stack is in
         * recency order and older than the pool, so the rest is Mattson's
         * move-to-front: the pool, most recent first, then the old objects
         * in order without the batch's, down to the deepest batch member
         * (to the end when the batch brings new objects: all move down).
         * p == j here unless the old stack ran out (then found == need). */
        for (int a = 1; a < pool_n; a++) {
            int32_t v = s->pool[a];
            int b = a;
            while (b > 0 && s->last[s->pool[b - 1]] < s->last[v]) {
                s->pool[b] = s->pool[b - 1];
                b--;
            }
            s->pool[b] = v;
        }
        int end = j;
        for (; found < need; end++) {
            int32_t old = items[end];
            if (s->mark[old] == stamp) {
                dist[s->member[old]] = end + 1;
                found++;
            }
        }
        if (cold > 0)
            end = old_len;
        int w = end + cold; /* compact backwards: writes never pass reads */
        for (int r = end - 1; r >= j; r--) {
            int32_t old = items[r];
            if (s->mark[old] != stamp)
                items[--w] = old;
        }
        memcpy(items + p, s->pool, (size_t)pool_n * sizeof *items);
    }

    s->len = new_len;
    if (n > s->max_batch)
        s->max_batch = n;
    for (int i = 0; i < n; i++) {
        s->in_stack[objs[i]] = 1;
        s->last[objs[i]] = ++s->clock;
    }
}

void rs_cache_stack_checkpoint(cache_stack *s, rs_state_io *io)
{
    const size_t n = (size_t)s->nobj;
    RS_STATE(io, s->len);
    RS_STATE(io, s->max_batch);
    RS_STATE_ARRAY(io, s->items, n);
    RS_STATE_ARRAY(io, s->in_stack, n);
    RS_STATE_ARRAY(io, s->mark, n);
    RS_STATE_ARRAY(io, s->last, n);
    RS_STATE(io, s->stamp);
    RS_STATE(io, s->clock);
    RS_STATE_ARRAY(io, s->recent, (n + 3) / 4);
    RS_STATE(io, s->recent_clock);
    RS_STATE_ARRAY(io, s->head, n);
    RS_STATE_ARRAY(io, s->head_pos, n);
    RS_STATE(io, s->head_len);
}
