/* make bench: routesim's expert-cache simulator (metrics/cache_domain.h)
 * against the port of libCacheSim's request loop (libcachesim_port.h) on the
 * same stream, one thread.
 *
 *   cache_compare STREAM K E SLOTS REPEATS [POLICY]
 *
 * STREAM holds int32 expert ids, K per batch (a token's distinct experts at
 * one layer), ids in [0, E). Each policy (lru, fifo, belady) runs at k = 1
 * (each batch's first id) and at k = K (the whole batch, batch rule), one
 * cache of SLOTS objects that is never reset. Both sides are timed from an
 * empty cache to the last batch's result (setting up and freeing the
 * structures left out; routesim's domain is set up once and each repeat is
 * a new sequence through it, as in a run), best of REPEATS; the port's requests carry
 * their next access time precomputed (libCacheSim reads it from an oracle
 * trace), routesim finds its own. POLICY runs only that policy (for
 * profiling). Prints one JSON object per line: policy,
 * k, accesses, seconds and misses of each side. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/libcachesim_port.h"
#include "metrics/cache_domain.h"

enum { PORT_HASHPOWER = 23 }; /* libCacheSim's HASH_POWER_DEFAULT */

/* The thread's CPU time: on a shared machine, time spent descheduled is
 * left out of both sides. */
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct stream {
    const int32_t *ids; /* [batches][stride] */
    int64_t batches;
    int stride, k;
    int64_t *next; /* [batches][k] the next batch requesting the id, PORT_NEVER if none */
} stream;

static void annotate(stream *s, int E)
{
    int64_t *last = malloc((size_t)E * sizeof *last);
    s->next = malloc((size_t)s->batches * (size_t)s->k * sizeof *s->next);
    if (!last || !s->next) {
        fprintf(stderr, "cache_compare: out of memory\n");
        exit(1);
    }
    for (int e = 0; e < E; e++)
        last[e] = PORT_NEVER;
    for (int64_t b = s->batches; b-- > 0;)
        for (int i = 0; i < s->k; i++) {
            int32_t e = s->ids[b * s->stride + i];
            s->next[b * s->k + i] = last[e];
            last[e] = b;
        }
    free(last);
}

static int64_t run_port(const stream *s, port_policy policy, int slots, double *seconds)
{
    port_request reqs[256];
    port_cache *c = port_cache_new(policy, slots, PORT_HASHPOWER);
    if (!c) {
        fprintf(stderr, "cache_compare: out of memory\n");
        exit(1);
    }
    double start = now();
    int64_t hits = 0;
    for (int64_t b = 0; b < s->batches; b++) {
        for (int i = 0; i < s->k; i++)
            reqs[i] = (port_request){.clock_time = b,
                                     .obj_id = (uint64_t)s->ids[b * s->stride + i],
                                     .obj_size = 1,
                                     .next_access_vtime = s->next[b * s->k + i],
                                     .valid = true};
        hits += port_cache_batch(c, reqs, s->k);
    }
    *seconds = now() - start;
    port_cache_free(c);
    return s->batches * s->k - hits;
}

/* One segment through d, set up once for all repeats as the metric sets
 * its domains up once per run: a repeat is a new sequence, which empties
 * the cache and keeps the segment buffer. */
static int64_t run_routesim(cache_domain *d, const stream *s, double *seconds)
{
    const int64_t hits_before = d->counts[0].hits, accesses_before = d->counts[0].accesses;
    double start = now();
    rs_cache_domain_begin(d);
    for (int64_t b = 0; b < s->batches; b++)
        rs_cache_domain_push(d, s->ids + b * s->stride, s->k, NULL, 0, b, 0);
    rs_cache_domain_end(d);
    int64_t hits, warm;
    rs_cache_domain_results(d, &hits, &warm);
    *seconds = now() - start;
    return d->lost ? -1 : (d->counts[0].accesses - accesses_before) - (hits - hits_before);
}

int main(int argc, char **argv)
{
    if (argc != 6 && argc != 7) {
        fprintf(stderr, "usage: cache_compare STREAM K E SLOTS REPEATS [POLICY]\n");
        return 2;
    }
    const int K = atoi(argv[2]), E = atoi(argv[3]), slots = atoi(argv[4]), repeats = atoi(argv[5]);
    if (K < 1 || K > 256 || E < 1 || E > 65535 || slots < 1 || slots > E || repeats < 1) {
        fprintf(stderr, "cache_compare: K in [1, 256], E in [1, 65535], SLOTS in [1, E], REPEATS >= 1\n");
        return 2;
    }
    /* Freed memory stays with the process, so a repeat reuses what the one
     * before it grew (routesim's segment buffer, kept from one sequence to
     * the next in a run) instead of faulting fresh pages in. */
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        fprintf(stderr, "cache_compare: cannot open %s\n", argv[1]);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long bytes = ftell(f);
    fseek(f, 0, SEEK_SET);
    const int64_t batches = bytes / (long)(K * sizeof(int32_t));
    int32_t *ids = malloc((size_t)batches * (size_t)K * sizeof *ids);
    if (!ids || fread(ids, sizeof *ids, (size_t)batches * (size_t)K, f) != (size_t)batches * (size_t)K) {
        fprintf(stderr, "cache_compare: cannot read %s\n", argv[1]);
        return 1;
    }
    fclose(f);
    for (int64_t i = 0; i < batches * K; i++)
        if (ids[i] < 0 || ids[i] >= E) {
            fprintf(stderr, "cache_compare: %s: id %d at %lld is outside [0, E)\n", argv[1], ids[i], (long long)i);
            return 1;
        }

    static const struct {
        const char *name;
        port_policy port;
        cache_policy routesim;
    } policies[] = {{"lru", PORT_LRU, CACHE_LRU}, {"fifo", PORT_FIFO, CACHE_FIFO}, {"belady", PORT_BELADY, CACHE_BELADY}};
    const int ks[2] = {1, K};
    for (int ki = 0; ki < (K > 1 ? 2 : 1); ki++) {
        stream s = {.ids = ids, .batches = batches, .stride = K, .k = ks[ki]};
        annotate(&s, E);
        for (size_t p = 0; p < sizeof policies / sizeof policies[0]; p++) {
            if (argc == 7 && strcmp(argv[6], policies[p].name) != 0)
                continue;
            cache_domain_config cfg = {
                .policy = policies[p].routesim,
                .capacity = slots,
                .nobj = E,
                .E = E,
                .nlayers = 1,
                .stride = 1,
                .m = 16,
                .curve = CACHE_CURVE_NONE,
                .curve_sizes = E,
                .size_step = 1,
                .max_buffer = (size_t)1 << 31,
            };
            cache_domain d;
            if (rs_cache_domain_init(&d, &cfg) != 0) {
                fprintf(stderr, "cache_compare: out of memory\n");
                exit(1);
            }
            double port_best = 1e300, rs_best = 1e300;
            int64_t port_misses = 0, rs_misses = 0;
            for (int r = 0; r < repeats; r++) { /* alternated, so both see the same machine */
                double t;
                port_misses = run_port(&s, policies[p].port, slots, &t);
                port_best = t < port_best ? t : port_best;
                rs_misses = run_routesim(&d, &s, &t);
                rs_best = t < rs_best ? t : rs_best;
            }
            printf("{\"policy\": \"%s\", \"k\": %d, \"accesses\": %lld, \"port_seconds\": %.9f, "
                   "\"routesim_seconds\": %.9f, \"port_misses\": %lld, \"routesim_misses\": %lld}\n",
                   policies[p].name, s.k, (long long)(batches * s.k), port_best, rs_best, (long long)port_misses,
                   (long long)rs_misses);
            fflush(stdout);
            rs_cache_domain_free(&d);
        }
        free(s.next);
    }
    free(ids);
    return 0;
}
