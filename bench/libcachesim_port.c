/* A port of libCacheSim's request loop (libcachesim_port.h), written for
 * the benchmark: same data structures and call structure, not its code. */
#include "libcachesim_port.h"

#include <stdlib.h>
#include <string.h>

/* libCacheSim builds each of its source files on its own (no LTO): the
 * hash table (dataStructure/hashtable/), the object lists (cache/cacheObj.c)
 * and the base calls (cache/cache.c) are calls from the eviction code, not
 * inlined into it. */
#define SEPARATE_FILE __attribute__((noinline)) static

/* ---------------------------------------------------------------- hash table */

/* A 64-bit hash of the 8-byte id with the cost of XXH3's 4-8 byte path
 * (libCacheSim's default HASH_TYPE): two rotations and two multiplies. */
static inline uint64_t hash_id(uint64_t id)
{
    uint64_t h = id ^ 0x1cad21f72c81017cull;
    h ^= ((h << 49) | (h >> 15)) ^ ((h << 24) | (h >> 40));
    h *= 0x9fb21c651e98df25ull;
    h ^= (h >> 35) + 8;
    h *= 0x9fb21c651e98df25ull;
    return h ^ (h >> 28);
}

static inline uint64_t bucket_of(const port_cache *c, uint64_t id)
{
    return hash_id(id) & (((uint64_t)1 << c->hashpower) - 1);
}

SEPARATE_FILE port_obj *table_find(const port_cache *c, uint64_t id)
{
    for (port_obj *o = c->table[bucket_of(c, id)]; o; o = o->hash_next)
        if (o->obj_id == id)
            return o;
    return NULL;
}

SEPARATE_FILE port_obj *table_insert(port_cache *c, const port_request *req)
{
    port_obj *o = malloc(sizeof *o);
    if (!o)
        abort();
    memset(o, 0, sizeof *o);
    o->obj_id = req->obj_id;
    o->obj_size = (uint32_t)req->obj_size;
    uint64_t b = bucket_of(c, o->obj_id);
    o->hash_next = c->table[b];
    c->table[b] = o;
    c->table_objs++;
    return o;
}

SEPARATE_FILE void table_delete(port_cache *c, port_obj *o)
{
    uint64_t b = bucket_of(c, o->obj_id);
    port_obj **link = &c->table[b];
    while (*link != o)
        link = &(*link)->hash_next;
    *link = o->hash_next;
    c->table_objs--;
    free(o);
}

/* ---------------------------------------------------------------- base calls */

static int64_t occupied_default(const port_cache *c) { return c->occupied_byte; }

static bool can_insert_default(port_cache *c, const port_request *req) { return req->obj_size <= c->cache_size; }

SEPARATE_FILE port_obj *find_base(port_cache *c, const port_request *req, bool update)
{
    port_obj *o = table_find(c, req->obj_id);
    if (o && update) {
        o->misc.next_access_vtime = req->next_access_vtime;
        o->misc.freq++;
    }
    return o;
}

SEPARATE_FILE port_obj *insert_base(port_cache *c, const port_request *req)
{
    port_obj *o = table_insert(c, req);
    c->occupied_byte += (int64_t)o->obj_size;
    c->n_obj++;
    o->misc.next_access_vtime = req->next_access_vtime;
    return o;
}

SEPARATE_FILE void remove_base(port_cache *c, port_obj *o)
{
    c->occupied_byte -= (int64_t)o->obj_size;
    c->n_obj--;
    table_delete(c, o);
}

/* cache_get_base: find; on a miss evict until the id fits, then insert. */
SEPARATE_FILE bool get_base(port_cache *c, const port_request *req)
{
    c->n_req++;
    port_obj *o = c->find(c, req, true);
    if (o)
        return true;
    if (c->can_insert(c, req)) {
        while (c->occupied_bytes(c) + req->obj_size > c->cache_size)
            c->evict(c, req);
        c->insert(c, req);
    }
    return false;
}

/* ---------------------------------------------------------------- queues */

SEPARATE_FILE void list_unlink(port_cache *c, port_obj *o)
{
    if (o->queue.prev)
        o->queue.prev->queue.next = o->queue.next;
    else
        c->q_head = o->queue.next;
    if (o->queue.next)
        o->queue.next->queue.prev = o->queue.prev;
    else
        c->q_tail = o->queue.prev;
    o->queue.prev = o->queue.next = NULL;
}

SEPARATE_FILE void list_prepend(port_cache *c, port_obj *o)
{
    o->queue.prev = NULL;
    o->queue.next = c->q_head;
    if (c->q_head)
        c->q_head->queue.prev = o;
    c->q_head = o;
    if (!c->q_tail)
        c->q_tail = o;
}

static port_obj *lru_find(port_cache *c, const port_request *req, bool update)
{
    port_obj *o = find_base(c, req, update);
    if (o && update && o != c->q_head) {
        list_unlink(c, o);
        list_prepend(c, o);
    }
    return o;
}

static port_obj *fifo_find(port_cache *c, const port_request *req, bool update) { return find_base(c, req, update); }

static port_obj *queue_insert(port_cache *c, const port_request *req)
{
    port_obj *o = insert_base(c, req);
    list_prepend(c, o);
    return o;
}

/* The oldest object not in the batch (request at a time: the tail). */
static port_obj *queue_victim(const port_cache *c)
{
    port_obj *o = c->q_tail;
    while (o && o->in_batch)
        o = o->queue.prev;
    return o;
}

static void queue_evict(port_cache *c, const port_request *req)
{
    (void)req;
    port_obj *o = queue_victim(c);
    list_unlink(c, o);
    remove_base(c, o);
}

/* ---------------------------------------------------------------- belady heap */

/* Farther next access first; ties to the lower id. */
static inline bool heap_above(const port_heap_node *a, const port_heap_node *b)
{
    return a->pri > b->pri || (a->pri == b->pri && a->obj_id < b->obj_id);
}

static void heap_place(port_cache *c, size_t at, port_heap_node *n)
{
    c->heap[at] = n;
    n->pos = at;
}

static void heap_up(port_cache *c, size_t at)
{
    port_heap_node *n = c->heap[at];
    while (at > 1 && heap_above(n, c->heap[at / 2])) {
        heap_place(c, at, c->heap[at / 2]);
        at /= 2;
    }
    heap_place(c, at, n);
}

static void heap_down(port_cache *c, size_t at)
{
    port_heap_node *n = c->heap[at];
    for (;;) {
        size_t child = 2 * at;
        if (child > c->heap_n)
            break;
        if (child + 1 <= c->heap_n && heap_above(c->heap[child + 1], c->heap[child]))
            child++;
        if (!heap_above(c->heap[child], n))
            break;
        heap_place(c, at, c->heap[child]);
        at = child;
    }
    heap_place(c, at, n);
}

static void heap_change(port_cache *c, port_heap_node *n, int64_t pri)
{
    int64_t old = n->pri;
    n->pri = pri;
    if (pri > old)
        heap_up(c, n->pos);
    else
        heap_down(c, n->pos);
}

static port_obj *belady_find(port_cache *c, const port_request *req, bool update)
{
    port_obj *o = find_base(c, req, update);
    if (o && update) {
        o->meta.belady.next_access_vtime = req->next_access_vtime;
        heap_change(c, o->meta.belady.node, req->next_access_vtime);
    }
    return o;
}

static port_obj *belady_insert(port_cache *c, const port_request *req)
{
    port_obj *o = insert_base(c, req);
    port_heap_node *n = malloc(sizeof *n);
    if (!n)
        abort();
    n->obj_id = req->obj_id;
    n->pri = req->next_access_vtime;
    if (c->heap_n + 1 >= c->heap_cap) {
        c->heap_cap *= 2;
        c->heap = realloc(c->heap, c->heap_cap * sizeof *c->heap);
        if (!c->heap)
            abort();
    }
    heap_place(c, ++c->heap_n, n);
    heap_up(c, c->heap_n);
    o->meta.belady.node = n;
    o->meta.belady.next_access_vtime = req->next_access_vtime;
    return o;
}

static void belady_evict(port_cache *c, const port_request *req)
{
    (void)req;
    port_heap_node *top = c->heap[1];
    port_obj *o = table_find(c, top->obj_id);
    c->heap[1] = c->heap[c->heap_n--];
    if (c->heap_n > 0)
        heap_down(c, 1);
    free(top);
    o->meta.belady.node = NULL;
    remove_base(c, o);
}

/* ---------------------------------------------------------------- caches */

port_cache *port_cache_new(port_policy policy, int64_t slots, int hashpower)
{
    port_cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->policy = policy;
    c->cache_size = slots; /* every object has size 1 */
    c->hashpower = hashpower;
    c->table = calloc((size_t)1 << hashpower, sizeof *c->table);
    c->scratch = malloc((size_t)(slots + 1024) * sizeof *c->scratch);
    c->get = get_base;
    c->can_insert = can_insert_default;
    c->occupied_bytes = occupied_default;
    switch (policy) {
    case PORT_LRU:
        c->find = lru_find;
        c->insert = queue_insert;
        c->evict = queue_evict;
        break;
    case PORT_FIFO:
        c->find = fifo_find;
        c->insert = queue_insert;
        c->evict = queue_evict;
        break;
    case PORT_BELADY:
        c->find = belady_find;
        c->insert = belady_insert;
        c->evict = belady_evict;
        c->heap_cap = 64;
        c->heap = malloc(c->heap_cap * sizeof *c->heap);
        break;
    }
    if (!c->table || !c->scratch || (policy == PORT_BELADY && !c->heap)) {
        port_cache_free(c);
        return NULL;
    }
    return c;
}

void port_cache_free(port_cache *c)
{
    if (!c)
        return;
    /* the cached objects, through the queue or the heap (not the whole table) */
    for (port_obj *o = c->q_head, *next; o; o = next) {
        next = o->queue.next;
        free(o);
    }
    for (size_t i = 1; c->heap && i <= c->heap_n; i++) {
        free(table_find(c, c->heap[i]->obj_id));
        free(c->heap[i]);
    }
    free(c->table);
    free(c->heap);
    free(c->scratch);
    free(c);
}

/* Room for one more id without evicting a batch member; false: all are members. */
static bool batch_room(port_cache *c)
{
    while (c->occupied_bytes(c) + 1 > c->cache_size) {
        bool all_members =
            c->policy == PORT_BELADY ? table_find(c, c->heap[1]->obj_id)->in_batch : queue_victim(c) == NULL;
        if (all_members)
            return false;
        c->evict(c, NULL);
    }
    return true;
}

int port_cache_batch(port_cache *c, port_request *reqs, int n)
{
    if (n == 1)
        return c->get(c, &reqs[0]);
    port_obj **found = c->scratch;
    int hits = 0;
    for (int i = 0; i < n; i++) {
        found[i] = c->find(c, &reqs[i], false);
        if (found[i]) {
            found[i]->in_batch = true;
            hits++;
        }
    }
    for (int i = 0; i < n; i++) {
        c->n_req++;
        if (found[i]) {
            /* Belady: members keep their priority (this batch, the
             * nearest) until the batch ends, so none is evicted */
            if (c->policy != PORT_BELADY)
                c->find(c, &reqs[i], true);
            continue;
        }
        if (!batch_room(c))
            continue;
        port_request now = reqs[i];
        if (c->policy == PORT_BELADY)
            now.next_access_vtime = now.clock_time;
        found[i] = c->insert(c, &now);
        found[i]->in_batch = true;
    }
    for (int i = 0; i < n; i++) {
        if (!found[i])
            continue;
        found[i]->in_batch = false;
        if (c->policy == PORT_BELADY) { /* what belady_find does on a hit, without the lookup */
            found[i]->misc.next_access_vtime = reqs[i].next_access_vtime;
            found[i]->meta.belady.next_access_vtime = reqs[i].next_access_vtime;
            heap_change(c, found[i]->meta.belady.node, reqs[i].next_access_vtime);
        }
    }
    return hits;
}
