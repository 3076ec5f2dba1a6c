/* round_robin: the i-th physical copy (expert i mod E) goes to device
 * i mod G, at position i / G among that device's slots, so expert e is on
 * device e mod G; replicas continue the cycle. */
#include "metrics/placement/placement.h"

static int round_robin_plan(rs_placement *out, const rs_placement_stats *stats, const rs_placement_options *options,
                            rs_error *err)
{
    (void)stats;
    (void)options;
    const int S = out->layout.S, E = out->layout.E, G = out->layout.G;
    const int per_device = S / G;
    for (int l = 0; l < out->L; l++)
        for (int i = 0; i < S; i++)
            out->phy2log[(size_t)l * S + (size_t)(i % G) * per_device + i / G] = i % E;
    return rs_placement_finish(out, err);
}

static const rs_placement_policy round_robin = {
    .name = "round_robin",
    .summary = "experts dealt over the devices in turn: expert e on device e mod G; replicas continue the cycle",
    .definition = "copy i (expert i mod E) on device i mod G, slot (i mod G) S/G + floor(i / G)",
    .source = "vLLM expert_placement_strategy=round_robin (fused_moe determine_expert_map)",
    .needs = 0,
    .plan = round_robin_plan,
};

const rs_placement_policy *const rs_placement_policy_round_robin = &round_robin;
