/* Expected all-to-all traffic and modelled time of a placement from its
 * loads (modelled_cost.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/placement/modelled_cost.h"

const rs_comm_model rs_comm_model_defaults = {
    .hidden_size = 7168,
    .bytes_per_element = 2,
    .nvlink_gbps = 160,
    .net_gbps = 50,
    .latency_s = 0,
    .batch_tokens = 4096,
};

int rs_comm_model_check(const rs_comm_model *m, const char *who, rs_error *err)
{
    const double positive[4] = {m->hidden_size, m->bytes_per_element, m->nvlink_gbps, m->net_gbps};
    static const char *const names[4] = {"hidden_size", "bytes_per_element", "nvlink_gbps", "net_gbps"};
    for (int i = 0; i < 4; i++)
        RS_CHECK(isfinite(positive[i]) && positive[i] > 0, err, "%s: the all-to-all model's %s must be > 0 (got %g)",
                 who, names[i], positive[i]);
    RS_CHECK(isfinite(m->latency_s) && m->latency_s >= 0, err,
             "%s: the all-to-all model's latency must be >= 0 (got %g s)", who, m->latency_s);
    return 0;
}

void rs_expected_expert_traffic(const rs_placement_layout *lay, double w, const int32_t *devices, int count,
                                double sign, rs_comm_traffic *traffic, double *served)
{
    if (w == 0)
        return;
    const int G = lay->G, per_node = G / lay->N;
    const double share = sign * w / G;
    if (count == 1) { /* every device sends to the one replica (the usual case: a loop without lookups) */
        const int t = devices[0], first = t / per_node * per_node, last = first + per_node;
        for (int s = 0; s < G; s++) {
            if (s >= first && s < last)
                traffic[s].intra_sent += s == t ? 0.0 : share;
            else
                traffic[s].inter_sent += share;
        }
        traffic[t].intra_received += share * (per_node - 1);
        traffic[t].inter_received += share * (G - per_node);
        served[t] += sign * w;
        return;
    }
    for (int s = 0; s < G; s++) {
        const int t = rs_local_replica_device(lay, devices, count, s);
        served[t] += share;
        if (t == s)
            continue;
        if (t / per_node == s / per_node) {
            traffic[s].intra_sent += share;
            traffic[t].intra_received += share;
        } else {
            traffic[s].inter_sent += share;
            traffic[t].inter_received += share;
        }
    }
}

void rs_expected_layer_traffic(const rs_placement_layout *lay, const double *w, const int32_t *devices,
                               const int32_t *count, int stride, rs_comm_traffic *traffic, double *served)
{
    memset(traffic, 0, (size_t)lay->G * sizeof *traffic);
    memset(served, 0, (size_t)lay->G * sizeof *served);
    for (int e = 0; e < lay->E; e++)
        rs_expected_expert_traffic(lay, w[e], devices + (size_t)e * (size_t)stride, count[e], 1.0, traffic, served);
}

int rs_placement_modelled_layers(const rs_placement *p, const rs_placement_stats *stats, const rs_comm_model *m,
                                 double *seconds, double *max_served, rs_error *err)
{
    RS_CHECK(stats->loads, err, "placement: the modelled all-to-all time needs expert loads");
    RS_CHECK(stats->L == p->L && stats->E == p->layout.E, err,
             "placement: loads of %d layers x %d experts for a placement of %d layers x %d experts", stats->L,
             stats->E, p->L, p->layout.E);
    if (!m)
        m = &rs_comm_model_defaults;
    RS_TRY(rs_comm_model_check(m, "placement", err));
    const rs_placement_layout *lay = &p->layout;
    const int E = lay->E, G = lay->G, X = p->maxcnt;
    int32_t *devices = malloc((size_t)E * (size_t)X * sizeof *devices);
    rs_comm_traffic *traffic = malloc((size_t)G * sizeof *traffic);
    double *served = malloc((size_t)G * sizeof *served);
    if (!devices || !traffic || !served) {
        free(devices);
        free(traffic);
        free(served);
        return rs_fail(err, "placement: out of memory for the modelled all-to-all time");
    }
    for (int l = 0; l < p->L; l++) {
        const int32_t *slots = p->log2phy + (size_t)l * (size_t)E * (size_t)X;
        for (size_t i = 0; i < (size_t)E * (size_t)X; i++)
            devices[i] = slots[i] >= 0 ? rs_placement_device_of_slot(lay, slots[i]) : -1;
        rs_expected_layer_traffic(lay, stats->loads + (size_t)l * (size_t)E, devices, p->logcnt + (size_t)l * E, X,
                                  traffic, served);
        seconds[l] = rs_comm_batch_seconds(m, traffic, G);
        if (max_served) {
            double max = 0.0;
            for (int d = 0; d < G; d++)
                max = served[d] > max ? served[d] : max;
            max_served[l] = max;
        }
    }
    free(devices);
    free(traffic);
    free(served);
    return 0;
}

double rs_placement_modelled_seconds(const rs_placement *p, const rs_placement_stats *stats, const rs_comm_model *m)
{
    rs_error err = {{0}};
    double *seconds = malloc((size_t)p->L * sizeof *seconds);
    if (!seconds || rs_placement_modelled_layers(p, stats, m, seconds, NULL, &err) != 0) {
        free(seconds);
        return NAN;
    }
    double sum = 0.0;
    for (int l = 0; l < p->L; l++)
        sum += seconds[l];
    free(seconds);
    return sum;
}
