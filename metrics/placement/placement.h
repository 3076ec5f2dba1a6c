/* Expert placement under expert parallelism (docs/metrics.md "Expert
 * placement and communication").
 *
 * A placement maps each layer's E logical experts to S = E + R physical
 * slots on G devices in N nodes: slot s is on device s / (S / G), device d
 * in node d / (G / N). It is what deepseek-ai/EPLB's rebalance_experts
 * returns and what SGLang's --init-expert-location reads:
 * physical_to_logical_map [L][S], logical_to_physical_map [L][E][X] (slots
 * of each expert in replica order, -1 padded to the largest count X) and
 * logical_count [L][E].
 *
 * A placement policy (contiguous, round_robin, eplb, affinity, search,
 * file) is one file under metrics/placement/ with a `static const
 * rs_placement_policy` and a `const rs_placement_policy *const
 * rs_placement_policy_<name>` pointing at it, plus one
 * RS_PLACEMENT_POLICY(<name>) line in metrics/placement/registry.def. The
 * `placement` metric family and `routesim place` plan with them. */
#ifndef ROUTESIM_PLACEMENT_H
#define ROUTESIM_PLACEMENT_H

#include <stdint.h>

#include "routesim/error.h"

/* The shape of an expert-parallel deployment. */
typedef struct rs_placement_layout {
    int E;      /* logical experts per layer */
    int S;      /* physical slots per layer: E + redundant replicas */
    int G;      /* devices; S % G == 0 */
    int N;      /* nodes; G % N == 0 */
    int groups; /* expert groups (eplb: hierarchical when groups % N == 0); E % groups == 0 */
} rs_placement_layout;

/* One clear line naming the offending numbers when the layout is not one. */
int rs_placement_layout_check(const rs_placement_layout *lay, rs_error *err);

static inline int rs_placement_device_of_slot(const rs_placement_layout *lay, int slot)
{
    return slot / (lay->S / lay->G);
}

static inline int rs_placement_node_of_device(const rs_placement_layout *lay, int device)
{
    return device / (lay->G / lay->N);
}

typedef struct rs_placement {
    int L;
    rs_placement_layout layout;
    int32_t *phy2log; /* [L][S] logical expert of each slot */
    int32_t *rank;    /* [L][S] replica rank of each slot (0 = the expert's first replica) */
    /* Derived by rs_placement_finish: */
    int32_t *logcnt;  /* [L][E] replicas of each expert (>= 1) */
    int32_t *log2phy; /* [L][E][maxcnt] slots of each expert by rank, -1 padded */
    int maxcnt;       /* largest logcnt over all layers */
} rs_placement;

/* An empty placement (phy2log and rank filled with -1). */
rs_placement *rs_placement_new(int L, const rs_placement_layout *lay, rs_error *err);
void rs_placement_free(rs_placement *p);
rs_placement *rs_placement_copy(const rs_placement *p, rs_error *err);
/* Checks phy2log (every id in [0, E), every expert on at least one slot,
 * ranks 0..logcnt-1 once each per expert; rank may be -1 everywhere, then
 * ranks follow slot order) and fills logcnt, log2phy and maxcnt. A message
 * names the layer, slot or expert at fault. */
int rs_placement_finish(rs_placement *p, rs_error *err);

/* What a policy plans from. */
typedef struct rs_placement_stats {
    int L, E;
    /* [L][E] assignments per expert (non-negative); NULL = none recorded
     * (policies that need loads then fail with a message). */
    const double *loads;
    /* [L-1][E][E]: tokens whose experts include i at layer l and j at
     * layer l+1; NULL when not collected. */
    const double *transitions;
} rs_placement_stats;

/* The all-to-all communication model (docs/metrics.md): per batch and
 * layer, the slowest device's intra-node bytes / nvlink + inter-node bytes
 * / network + latency. */
typedef struct rs_comm_model {
    double hidden_size;       /* elements per token activation */
    double bytes_per_element; /* 2 for bf16 */
    double nvlink_gbps;       /* intra-node, 1e9 bytes/s per device */
    double net_gbps;          /* inter-node, 1e9 bytes/s per device */
    double latency_s;         /* fixed cost per batch and layer */
    int batch_tokens;         /* tokens per batch */
} rs_comm_model;

enum {
    RS_PLACEMENT_NEEDS_LOADS = 1u << 0,       /* stats.loads */
    RS_PLACEMENT_NEEDS_TRANSITIONS = 1u << 1, /* stats.transitions */
    RS_PLACEMENT_NEEDS_PATH = 1u << 2,        /* options.path (file) */
};

typedef struct rs_placement_options {
    rs_placement_layout layout;
    const char *path;           /* file: the JSON to read */
    const rs_comm_model *model; /* search: the objective's model (NULL: modelled_cost.h's defaults) */
    double balance_slack;       /* affinity, search: allowed device load over eplb's largest, relative */
    int64_t iterations;         /* search: moves priced per layer at most (0: its default) */
    uint64_t seed;              /* search: the order moves are tried in */
} rs_placement_options;

typedef struct rs_placement_policy {
    const char *name;
    const char *summary;    /* one line */
    const char *definition; /* formula or rule, docs */
    const char *source;     /* paper or code it follows */
    unsigned needs;         /* RS_PLACEMENT_NEEDS_* */
    /* Fills out (created with out->L = stats->L and options->layout) and
     * calls rs_placement_finish. Returns -1 with a message. */
    int (*plan)(rs_placement *out, const rs_placement_stats *stats, const rs_placement_options *options,
                rs_error *err);
} rs_placement_policy;

int rs_placement_policy_count(void);
const rs_placement_policy *rs_placement_policy_at(int index);
const rs_placement_policy *rs_placement_policy_find(const char *name);

/* Plans with a policy: checks the layout, what the policy needs and that
 * loads are finite and non-negative, then creates and fills the result. */
rs_placement *rs_placement_plan(const rs_placement_policy *policy, const rs_placement_stats *stats,
                                const rs_placement_options *options, rs_error *err);

#endif
