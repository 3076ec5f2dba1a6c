/* The all-to-all cost model of expert parallelism (docs/metrics.md "Expert
 * placement and communication"), shared by the placement metric and any
 * policy that optimises the same cost.
 *
 * In one batch and layer, an assignment whose expert sits on another device
 * than its token is dispatched there (one activation of hidden_size x
 * bytes_per_element bytes) and its output combined back (the same bytes
 * the other way). A device that sends s and receives r activations over a
 * kind of link spends 2 max(s, r) activations' bytes / bandwidth on it: the
 * dispatch phase sends s and receives r at once (full duplex), the combine
 * phase the reverse. Within the node the link is NVLink (nvlink_gbps),
 * across nodes the network (net_gbps); a device uses both in turn. The
 * batch-layer takes the slowest device's time plus a fixed latency. */
#ifndef ROUTESIM_PLACEMENT_COMM_MODEL_H
#define ROUTESIM_PLACEMENT_COMM_MODEL_H

#include "metrics/placement/placement.h"

/* One device's traffic in one batch-layer, in activations (assignments),
 * dispatch direction: sent to and received from other devices of its node,
 * and of other nodes. Fractional counts are allowed (expected loads). */
typedef struct rs_comm_traffic {
    double intra_sent, intra_received;
    double inter_sent, inter_received;
} rs_comm_traffic;

/* Bytes of one activation: hidden_size x bytes_per_element. */
double rs_comm_activation_bytes(const rs_comm_model *m);

/* Seconds device traffic t takes, dispatch and combine:
 * 2 bytes (max(intra_sent, intra_received) / nvlink + max(inter_sent, inter_received) / net). */
double rs_comm_device_seconds(const rs_comm_model *m, const rs_comm_traffic *t);

/* Seconds one batch-layer takes: the slowest of the G devices plus the latency. */
double rs_comm_batch_seconds(const rs_comm_model *m, const rs_comm_traffic *devices, int G);

#endif
