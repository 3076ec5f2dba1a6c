/* The modelled all-to-all time of a placement planned from expert loads
 * alone (docs/metrics.md, `search`): what the search policy minimises and
 * what `routesim place` reports.
 *
 * Per layer, the loads w_e are taken as one batch whose tokens are spread
 * evenly over the G devices: device s originates w_e / G of expert e's
 * assignments. Each is served by the `local` rule of the placement metric's
 * dispatch: the replica on the token's device s if there is one, else the
 * (s mod m)-th of the m replicas on s's node (in rank order), else the
 * replica of rank s mod c (c replicas). An assignment served on another
 * device than s is sent there (intra-node or inter-node traffic of both
 * devices). The layer's time is comm_model.h's batch seconds of that
 * traffic (the slowest device, plus the latency); the plan's is the sum
 * over layers. The cost is positively homogeneous in the loads: loads of
 * any scale rank plans the same way. */
#ifndef ROUTESIM_PLACEMENT_MODELLED_COST_H
#define ROUTESIM_PLACEMENT_MODELLED_COST_H

#include <stdint.h>

#include "metrics/placement/comm_model.h"
#include "metrics/placement/placement.h"

/* The model used when none is given: DeepSeek-V3's hidden size 7168, bf16
 * (2 bytes), NVLink 160 GB/s and network 50 GB/s per device and direction
 * (H800 nodes, 400 Gb/s InfiniBand), no latency, batches of 4096 tokens;
 * the placement metric's defaults. */
extern const rs_comm_model rs_comm_model_defaults;

/* Bandwidths and sizes > 0, latency >= 0, all finite; else one line
 * starting with `who`. */
int rs_comm_model_check(const rs_comm_model *m, const char *who, rs_error *err);

/* The device serving tokens of device `source` for an expert whose c
 * replicas are on devices[0..c-1] (rank order), by the rule local. */
static inline int rs_local_replica_device(const rs_placement_layout *lay, const int32_t *devices, int count,
                                          int source)
{
    if (count == 1)
        return devices[0];
    const int per_node = lay->G / lay->N, node = source / per_node;
    int in_node = 0;
    for (int i = 0; i < count; i++) {
        if (devices[i] == source)
            return source;
        in_node += devices[i] / per_node == node;
    }
    if (in_node > 0) {
        int pick = source % in_node;
        for (int i = 0; i < count; i++)
            if (devices[i] / per_node == node && pick-- == 0)
                return devices[i];
    }
    return devices[source % count];
}

/* Adds sign x the expected traffic of one expert of load w, its replicas on
 * devices[0..count-1] by rank, to traffic[G] (activations sent and received
 * per device) and served[G] (assignments each device serves). */
void rs_expected_expert_traffic(const rs_placement_layout *lay, double w, const int32_t *devices, int count,
                                double sign, rs_comm_traffic *traffic, double *served);

/* One layer's expected traffic and served loads from zero: experts in index
 * order, expert e's replica devices at devices + e * stride (count[e] of
 * them). Any two calls on the same plan give the same bits. */
void rs_expected_layer_traffic(const rs_placement_layout *lay, const double *w, const int32_t *devices,
                               const int32_t *count, int stride, rs_comm_traffic *traffic, double *served);

/* Per layer l: seconds[l] (the modelled time of layer l) and, when
 * max_served is not NULL, max_served[l] (the largest expected assignments
 * served by one device). m NULL: rs_comm_model_defaults. Needs
 * stats->loads; -1 with a message otherwise or when out of memory. */
int rs_placement_modelled_layers(const rs_placement *p, const rs_placement_stats *stats, const rs_comm_model *m,
                                 double *seconds, double *max_served, rs_error *err);

/* The sum over layers of the modelled time (NAN without loads or memory). */
double rs_placement_modelled_seconds(const rs_placement *p, const rs_placement_stats *stats, const rs_comm_model *m);

#endif
