/* Writing a placement as JSON (`routesim place -o`), the form the `file`
 * policy reads back (docs/metrics.md "Placement files"):
 *   physical_to_logical_map  [L][S] expert of each slot
 *   logical_to_physical_map  [L][E][X] slots of each expert by replica rank, -1 padded
 *   logical_count            [L][E] replicas of each expert
 *   devices, nodes, groups, policy: the layout it was planned for.
 * SGLang's --init-expert-location passes every key of a file holding
 * physical_to_logical_map to ExpertLocationMetadata.init_by_mapping, which
 * takes that one map only: a file for SGLang is written with sglang_only,
 * physical_to_logical_map alone. */
#ifndef ROUTESIM_PLACEMENT_JSON_H
#define ROUTESIM_PLACEMENT_JSON_H

#include "metrics/placement/placement.h"
#include "routesim/error.h"

typedef struct rs_placement_json_options {
    const char *policy; /* the policy (spec) it came from; NULL: not written */
    int sglang_only;    /* physical_to_logical_map alone */
    /* sglang_only: rows of the trivial map (slot s: expert s mod E) written
     * before the MoE layers' for the dense layers SGLang also counts. */
    int dense_layers;
} rs_placement_json_options;

/* Writes p to path (a temporary file, then renamed). */
int rs_placement_json_write(const rs_placement *p, const rs_placement_json_options *options, const char *path,
                            rs_error *err);

#endif
