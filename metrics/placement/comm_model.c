/* The all-to-all cost of one batch-layer (comm_model.h). */
#include "metrics/placement/comm_model.h"

double rs_comm_activation_bytes(const rs_comm_model *m) { return m->hidden_size * m->bytes_per_element; }

static double larger(double a, double b) { return a > b ? a : b; }

double rs_comm_device_seconds(const rs_comm_model *m, const rs_comm_traffic *t)
{
    const double bytes = 2.0 * rs_comm_activation_bytes(m);
    return bytes * larger(t->intra_sent, t->intra_received) / (m->nvlink_gbps * 1e9) +
           bytes * larger(t->inter_sent, t->inter_received) / (m->net_gbps * 1e9);
}

double rs_comm_batch_seconds(const rs_comm_model *m, const rs_comm_traffic *devices, int G)
{
    double slowest = 0.0;
    for (int d = 0; d < G; d++)
        slowest = larger(slowest, rs_comm_device_seconds(m, &devices[d]));
    return slowest + m->latency_s;
}
