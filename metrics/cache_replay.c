/* The replay of a cache domain's segment buffer: the policies that
 * look ahead (Belady, sch, the Belady curve and gap) see a segment's
 * batches once it ends, with every object's next use known. */
#include <stdlib.h>
#include <string.h>

#include "metrics/cache_domain_internal.h"

/* Adds (+1) or removes (-1) the objects of a buffered batch to the window. */
static void window_add(cache_domain *d, size_t at, int n, int sign)
{
    for (int i = 0; i < n; i++)
        d->window[d->seg_objs[at + (size_t)i]] += (uint32_t)sign;
}

/* The Belady simulations learn the batch's new next uses (their victim order). */
static void renew_next_uses(cache_domain *d, const int32_t *objs, int n)
{
    const int belady = d->cfg.policy == CACHE_BELADY;
    if (belady)
        for (int i = 0; i < n; i++)
            rs_cache_sim_next_use(&d->main, objs[i], d->next_use[objs[i]]);
    if (d->oracle.capacity)
        for (int i = 0; i < n; i++)
            rs_cache_sim_next_use(&d->oracle, objs[i], d->next_use[objs[i]]);
    for (int c = 0; belady && d->sizes && c < d->cfg.curve_sizes; c++)
        for (int i = 0; i < n; i++)
            rs_cache_sim_next_use(&d->sizes[c], objs[i], d->next_use[objs[i]]);
}

/* Replay of belady alone (no oracle, sizes, prefetch or stack curve) over
 * batches of one object: the simulation runs a block of batches in one
 * loop, then the counts follow. */
static int belady_singles_only(const cache_domain *d)
{
    if (d->cfg.policy != CACHE_BELADY || d->oracle.capacity || d->sizes || d->cfg.prefetch ||
        d->cfg.curve == CACHE_CURVE_BELADY || d->seg_objs_len != d->seg_batches)
        return 0;
    for (size_t b = 0; b < d->seg_batches; b++)
        if (d->seg_n[b] != 1) /* an empty batch beside a pair */
            return 0;
    return 1;
}

static void replay_belady_singles(cache_domain *d)
{
    enum { BLOCK = 256 };
    uint8_t hit[BLOCK];
    const size_t B = d->seg_batches;
    int layer = 0; /* batch b's layer, b % stride */
    for (size_t at = 0; at < B; at += BLOCK) {
        const size_t count = B - at < BLOCK ? B - at : BLOCK;
        rs_cache_sim_belady_singles(&d->main, d->seg_objs + at, d->link + at, count, hit);
        for (size_t b = 0; b < count; b++) {
            const int32_t obj = d->seg_objs[at + b];
            count_main(d, &obj, 1, &hit[b], hit[b], 0, d->cfg.nlayers == 1 ? 0 : layer);
            d->next_use[obj] = d->link[at + b] == UINT32_MAX ? CACHE_NEVER : d->link[at + b];
            layer = layer + 1 == d->cfg.stride ? 0 : layer + 1;
        }
    }
}

void rs_cache_replay(cache_domain *d)
{
    const size_t B = d->seg_batches, len = d->seg_objs_len;
    const cache_policy p = d->cfg.policy;
    if (len > d->link_cap) {
        uint32_t *grown = realloc(d->link, len * sizeof *grown);
        if (!grown) {
            d->lost = 1;
            return;
        }
        d->link = grown;
        d->link_cap = len;
    }
    /* Next uses, backwards: link[i] = the next batch using access i's object. */
    for (int o = 0; o < d->cfg.nobj; o++)
        d->last_use[o] = UINT32_MAX;
    size_t end = len;
    for (size_t b = B; b-- > 0;) {
        size_t start = end - d->seg_n[b];
        for (size_t i = start; i < end; i++) {
            uint16_t o = d->seg_objs[i];
            d->link[i] = d->last_use[o];
            d->last_use[o] = (uint32_t)b;
        }
        end = start;
    }
    for (int o = 0; o < d->cfg.nobj; o++)
        d->next_use[o] = d->last_use[o] == UINT32_MAX ? CACHE_NEVER : d->last_use[o];
    if (belady_singles_only(d)) {
        replay_belady_singles(d);
        return;
    }

    /* sch: window[o] = batches b+1 .. b+W that use o, W = (m-1) * stride. */
    const size_t W = (size_t)(d->cfg.m - 1) * (size_t)d->cfg.stride;
    const int windowed = p == CACHE_SCH && W > 0;
    size_t lead = B > 0 ? d->seg_n[0] : 0, lead_b = 1; /* the next batch to enter the window, and its start */
    if (windowed) {
        while (lead_b < B && lead_b <= W) {
            window_add(d, lead, d->seg_n[lead_b], 1);
            lead += d->seg_n[lead_b++];
        }
    }
    const cache_future future = {.next_use = d->next_use, .window = d->window};
    const int main_here = is_lookahead(p), sizes_here = d->cfg.curve == CACHE_CURVE_PER_SIZE && main_here;
    size_t pf_at = 0, trail = 0; /* starts of batch b's prefetch set and objects */
    int layer = 0; /* batch b's layer, b % stride */
    for (size_t b = 0; b < B; b++, layer = layer + 1 == d->cfg.stride ? 0 : layer + 1) {
        const int n = d->seg_n[b], n_pf = d->cfg.prefetch ? d->seg_pf_n[b] : 0;
        for (int i = 0; i < n; i++)
            d->objs[i] = d->seg_objs[trail + (size_t)i];
        for (int i = 0; i < n_pf; i++)
            d->pf[i] = d->seg_pf[pf_at + (size_t)i];
        if (main_here) {
            int loaded = n_pf ? rs_cache_sim_prefetch(&d->main, d->pf, n_pf, &future, NULL) : 0;
            int hits = rs_cache_sim_batch(&d->main, d->objs, n, d->hit, &future, NULL);
            count_main(d, d->objs, n, d->hit, hits, loaded, d->cfg.nlayers == 1 ? 0 : layer);
        }
        if (d->oracle.capacity) {
            rs_cache_sim_batch(&d->oracle, d->objs, n, d->hit, &future, NULL);
            for (int i = 0; i < n; i++)
                d->counts[layer_of(d, d->objs[i])].belady_hits += d->hit[i];
        }
        if (sizes_here)
            rs_cache_domain_run_sizes(d, d->objs, n, d->pf, n_pf, &future, 0, 0, layer);
        /* this batch's objects now wait for their next use (belady's keys too) */
        if (main_here && p == CACHE_BELADY && !d->oracle.capacity && !d->sizes) {
            for (int i = 0; i < n; i++) {
                uint32_t next = d->link[trail + (size_t)i];
                uint64_t use = next == UINT32_MAX ? CACHE_NEVER : next;
                d->next_use[d->objs[i]] = use;
                rs_cache_sim_next_use(&d->main, d->objs[i], use);
            }
        } else {
            for (int i = 0; i < n; i++) {
                uint32_t next = d->link[trail + (size_t)i];
                d->next_use[d->objs[i]] = next == UINT32_MAX ? CACHE_NEVER : next;
            }
            renew_next_uses(d, d->objs, n);
        }
        if (d->cfg.curve == CACHE_CURVE_BELADY)
            rs_cache_domain_count_stack(d, d->objs, n, d->next_use);
        if (windowed && b + 1 < B) {
            /* batch b+1 leaves the window (it becomes current), batch b+1+W enters */
            window_add(d, trail + (size_t)n, d->seg_n[b + 1], -1);
            if (lead_b < B) {
                window_add(d, lead, d->seg_n[lead_b], 1);
                lead += d->seg_n[lead_b++];
            }
        }
        trail += (size_t)n;
        pf_at += (size_t)n_pf;
    }
    if (windowed) /* leave the window empty for the next segment */
        memset(d->window, 0, (size_t)d->cfg.nobj * sizeof *d->window);
}

