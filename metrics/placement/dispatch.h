/* Which device serves each assignment under a placement (docs/metrics.md
 * "Expert placement and communication", Dispatch).
 *
 * An expert with one replica is served where that replica is. For an
 * expert with several, the rule picks one replica:
 *   local        a replica on the token's device d; else, among the
 *                replicas on d's node (m of them, in rank order), the one
 *                at position d mod m; else the replica of rank d mod c (c
 *                replicas). A fixed choice per (layer, expert, device), as
 *                SGLang's static dispatch (a replica on the same GPU, then
 *                on the same node, else a fair draw); routesim deals the
 *                devices out in turn instead of drawing.
 *   round_robin  rank ((t mod batch_tokens) kmax + j) mod c for slot j of
 *                token t's decision row: vLLM's choice by position in the
 *                batch's flattened top-k ids.
 *   balanced     the replica whose device has served the fewest
 *                assignments of this batch and layer so far, ties to the
 *                lower rank (tokens in order, a row's slots in order).
 *   nearest      a replica on the token's device; else the one local
 *                picks in its node; else, with none in the node, the
 *                balanced choice among all replicas.
 * The tables below hold these choices so the metric's loop only looks up. */
#ifndef ROUTESIM_PLACEMENT_DISPATCH_H
#define ROUTESIM_PLACEMENT_DISPATCH_H

#include <stdint.h>

#include "metrics/placement/placement.h"

typedef enum rs_dispatch_rule {
    RS_DISPATCH_LOCAL,
    RS_DISPATCH_ROUND_ROBIN,
    RS_DISPATCH_BALANCED,
    RS_DISPATCH_NEAREST
} rs_dispatch_rule;

typedef struct rs_dispatch {
    int L, E, G;
    rs_dispatch_rule rule;
    int maxcnt;                 /* replicas of the most replicated expert */
    int num_replicated;         /* (layer, expert) pairs with more than one replica */
    int32_t *device_of;         /* [L][E]: the device of a single replica, else -1 - (its index among the replicated) */
    int32_t *replica_devices;   /* [num_replicated][maxcnt]: devices of the replicas by rank */
    int32_t *replica_count;     /* [num_replicated] */
    int32_t *local_choice;      /* [num_replicated][G]: rules local and nearest, the device serving tokens of
                                   device d (nearest: -1 when its node has no replica) */
} rs_dispatch;

/* Builds the tables of placement p (replacing what d held). */
int rs_dispatch_build(rs_dispatch *d, const rs_placement *p, rs_dispatch_rule rule, rs_error *err);
void rs_dispatch_free(rs_dispatch *d);

/* The device serving an assignment to a replicated expert (index r, from
 * device_of): its token on device `source`, at `position` (t mod
 * batch_tokens) kmax + j, with `load` the batch-layer's device loads so far. */
static inline int rs_dispatch_replica(const rs_dispatch *d, int r, int source, int64_t position, const int64_t *load)
{
    const int32_t *devices = d->replica_devices + (size_t)r * (size_t)d->maxcnt;
    const int count = d->replica_count[r];
    switch (d->rule) {
    case RS_DISPATCH_LOCAL: return d->local_choice[(size_t)r * (size_t)d->G + (size_t)source];
    case RS_DISPATCH_ROUND_ROBIN: return devices[position % count];
    case RS_DISPATCH_NEAREST: {
        const int near = d->local_choice[(size_t)r * (size_t)d->G + (size_t)source];
        if (near >= 0)
            return near;
        break;
    }
    case RS_DISPATCH_BALANCED: break;
    }
    int best = devices[0];
    for (int i = 1; i < count; i++)
        if (load[devices[i]] < load[best])
            best = devices[i];
    return best;
}

#endif
