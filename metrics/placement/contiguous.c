/* contiguous: slot s holds expert s mod E, so without replicas expert e is
 * on device e / (E / G), and the R replicas repeat experts 0..R-1 on the
 * last slots. This is the map SGLang starts from without a location file
 * (ExpertLocationMetadata.init_trivial: arange(S) % E). */
#include "metrics/placement/placement.h"

static int contiguous_plan(rs_placement *out, const rs_placement_stats *stats, const rs_placement_options *options,
                           rs_error *err)
{
    (void)stats;
    (void)options;
    const int S = out->layout.S, E = out->layout.E;
    for (int l = 0; l < out->L; l++)
        for (int s = 0; s < S; s++)
            out->phy2log[(size_t)l * S + s] = s % E;
    return rs_placement_finish(out, err);
}

static const rs_placement_policy contiguous = {
    .name = "contiguous",
    .summary = "experts in order over the slots: expert e on device e / (E/G); replicas repeat experts 0..R-1",
    .definition = "phy2log[s] = s mod E",
    .source = "SGLang ExpertLocationMetadata.init_trivial (no location file)",
    .needs = 0,
    .plan = contiguous_plan,
};

const rs_placement_policy *const rs_placement_policy_contiguous = &contiguous;
