/* Dispatch tables of a placement (dispatch.h). */
#include <stdlib.h>
#include <string.h>

#include "metrics/placement/dispatch.h"

void rs_dispatch_free(rs_dispatch *d)
{
    free(d->device_of);
    free(d->replica_devices);
    free(d->replica_count);
    free(d->local_choice);
    memset(d, 0, sizeof *d);
}

/* Rule local for tokens of device `source`: its own device, else the
 * (source mod m)-th replica of its node, else rank source mod count (rule
 * nearest: -1, the batch's loads decide). */
static int32_t local_device(const rs_placement_layout *lay, const int32_t *devices, int count, int source,
                            int nearest)
{
    const int node = rs_placement_node_of_device(lay, source);
    int in_node = 0;
    for (int i = 0; i < count; i++) {
        if (devices[i] == source)
            return source;
        in_node += rs_placement_node_of_device(lay, devices[i]) == node;
    }
    if (in_node > 0) {
        int pick = source % in_node;
        for (int i = 0; i < count; i++)
            if (rs_placement_node_of_device(lay, devices[i]) == node && pick-- == 0)
                return devices[i];
    }
    return nearest ? -1 : devices[source % count];
}

int rs_dispatch_build(rs_dispatch *d, const rs_placement *p, rs_dispatch_rule rule, rs_error *err)
{
    rs_dispatch_free(d);
    const rs_placement_layout *lay = &p->layout;
    const int L = p->L, E = lay->E, G = lay->G, maxcnt = p->maxcnt;
    int replicated = 0;
    for (size_t i = 0; i < (size_t)L * (size_t)E; i++)
        replicated += p->logcnt[i] > 1;
    d->L = L;
    d->E = E;
    d->G = G;
    d->rule = rule;
    d->maxcnt = maxcnt;
    d->num_replicated = replicated;
    const size_t n = replicated > 0 ? (size_t)replicated : 1;
    d->device_of = malloc((size_t)L * (size_t)E * sizeof *d->device_of);
    d->replica_devices = malloc(n * (size_t)maxcnt * sizeof *d->replica_devices);
    d->replica_count = malloc(n * sizeof *d->replica_count);
    const int by_source = rule == RS_DISPATCH_LOCAL || rule == RS_DISPATCH_NEAREST;
    d->local_choice = by_source ? malloc(n * (size_t)G * sizeof *d->local_choice) : NULL;
    if (!d->device_of || !d->replica_devices || !d->replica_count || (by_source && !d->local_choice)) {
        rs_dispatch_free(d);
        return rs_fail(err, "metric placement: out of memory for the dispatch tables of %d replicated experts",
                       replicated);
    }
    int r = 0;
    for (int l = 0; l < L; l++)
        for (int e = 0; e < E; e++) {
            const size_t le = (size_t)l * (size_t)E + (size_t)e;
            const int32_t *slots = p->log2phy + le * (size_t)maxcnt;
            const int count = p->logcnt[le];
            if (count == 1) {
                d->device_of[le] = rs_placement_device_of_slot(lay, slots[0]);
                continue;
            }
            int32_t *devices = d->replica_devices + (size_t)r * (size_t)maxcnt;
            for (int i = 0; i < count; i++)
                devices[i] = rs_placement_device_of_slot(lay, slots[i]);
            d->replica_count[r] = count;
            for (int source = 0; d->local_choice && source < G; source++)
                d->local_choice[(size_t)r * (size_t)G + (size_t)source] = local_device(lay, devices, count, source,
                                                                                    rule == RS_DISPATCH_NEAREST);
            d->device_of[le] = -1 - r;
            r++;
        }
    return 0;
}
