/* make bench: a port of libCacheSim's request loop for LRU, FIFO and Belady
 * (github.com/1a1a11a/libCacheSim, libCacheSim/cache/cache.c and
 * cache/eviction/{LRU,FIFO,Belady}.c), the yardstick the expert-cache
 * simulator is measured against where libCacheSim itself cannot be built.
 *
 * It keeps libCacheSim's shape, which is what its speed comes from: a cache
 * object per cached id, allocated on insertion and freed on eviction; a
 * chained hash table of 2^hashpower buckets keyed by a 64-bit hash of the
 * id; LRU and FIFO queues as doubly linked lists of those objects; Belady as
 * a binary heap of separately allocated nodes prioritised by the next access
 * time the trace carries; every operation called through the cache's
 * function pointers, one request at a time.
 *
 * For k > 1 the batch rule of routesim's simulator (metrics/cache_sim.h) is
 * laid on top: the batch's hits are looked up first and marked, then each
 * id is requested, and eviction passes over marked objects (none left: the
 * id is not inserted). With one id per batch this is libCacheSim's get(). */
#ifndef ROUTESIM_BENCH_LIBCACHESIM_PORT_H
#define ROUTESIM_BENCH_LIBCACHESIM_PORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum port_policy { PORT_LRU, PORT_FIFO, PORT_BELADY } port_policy;

#define PORT_NEVER INT64_MAX /* next access of an id never requested again */

typedef struct port_request {
    int64_t clock_time;
    uint64_t obj_id;
    int64_t obj_size;
    int64_t next_access_vtime;
    bool valid;
} port_request;

typedef struct port_heap_node {
    int64_t pri;
    uint64_t obj_id;
    size_t pos;
} port_heap_node;

typedef struct port_obj {
    struct port_obj *hash_next;
    uint64_t obj_id;
    uint32_t obj_size;
    struct {
        struct port_obj *prev, *next;
    } queue;
    struct {
        uint64_t freq;
        int64_t next_access_vtime;
    } misc;
    union { /* libCacheSim's per-policy metadata, sized like its largest member */
        struct {
            port_heap_node *node;
            int64_t next_access_vtime;
        } belady;
        uint8_t other[48];
    } meta;
    bool in_batch;
} port_obj;

typedef struct port_cache port_cache;
struct port_cache {
    bool (*get)(port_cache *, const port_request *);
    port_obj *(*find)(port_cache *, const port_request *, bool update);
    port_obj *(*insert)(port_cache *, const port_request *);
    void (*evict)(port_cache *, const port_request *);
    bool (*can_insert)(port_cache *, const port_request *);
    int64_t (*occupied_bytes)(const port_cache *);

    port_policy policy;
    int64_t cache_size, occupied_byte, n_obj, n_req;
    port_obj **table;
    int hashpower;
    int64_t table_objs;
    port_obj *q_head, *q_tail; /* lru, fifo: head = newest */
    port_heap_node **heap;     /* belady: max-heap, [1..heap_n] */
    size_t heap_n, heap_cap;
    port_obj **scratch; /* batch: the objects found */
};

port_cache *port_cache_new(port_policy policy, int64_t slots, int hashpower);
void port_cache_free(port_cache *c);

/* The batch rule over libCacheSim's requests: reqs[0..n-1] are distinct
 * ids; returns how many were cached before the batch. With n = 1 it is one
 * cache->get(). */
int port_cache_batch(port_cache *c, port_request *reqs, int n);

#endif
