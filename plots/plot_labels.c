/* Axis labels with units for the metrics and parameters routesim reports.
 * Data files keep results.csv's numbers; where a label says "%", the
 * script multiplies by 100. Metrics not listed are labelled by name. */
#include <string.h>

#include "routesim/metric.h"
#include "routesim/router.h"
#include "routers/common/capacity.h"
#include "plots/plot_internal.h"

typedef struct metric_label {
    const char *metric;
    const char *label;
    double scale;
} metric_label;

static const metric_label known[] = {
    {"load.maxvio", "MaxVio", 1},
    {"load.maxvio_batch", "MaxVio per batch", 1},
    {"load.cv", "CV of expert load", 1},
    {"load.gini", "Gini coefficient of expert load", 1},
    {"load.usage_entropy", "expert usage entropy (1 = uniform)", 1},
    {"load.aux_loss", "auxiliary loss (1 = balanced)", 1},
    {"load.dead_experts", "dead experts", 1},
    {"load.drop_rate", "dropped assignments (%)", 100},
    {"load.drop_rate_by_position", "dropped assignments (%)", 100},
    {"load.expert_share", "share of the layer's assignments (%)", 100},
    {"entropy.router_entropy", "router entropy (1 = uniform)", 1},
    {"entropy.selected_mass", "selected probability mass (%)", 100},
    {"entropy.tsallis_entropy", "Tsallis entropy (1 = uniform)", 1},
    {"entropy.z_loss", "router z-loss", 1},
    {"entropy.topk_margin", "top-k logit margin", 1},
    {"activation.experts_per_token", "experts per token", 1},
    {"activation.experts_per_token_hist", "tokens (%)", 100},
    {"activation.compute_ratio", "compute ratio (k_t / top_k)", 1},
    {"srp.srp", "SRP (%)", 100},
    {"srp.rho_hat", "predicted / activated experts", 1},
    {"sch.sch", "SCH hit rate (%)", 100},
    {"sch.slots", "cache slots", 1},
    {"cache.hit_rate", "hit rate (%)", 100},
    {"cache.hit_rate_warm", "hit rate, warm start (%)", 100},
    {"cache.hit_rate_curve", "hit rate (%)", 100},
    {"cache.bytes_moved", "bytes moved (GB)", 1e-9},
    {"cache.stall_s", "modelled stall time (s)", 1},
    {"cache.belady_gap", "gap to Belady (percentage points)", 100},
    {"locality.adjacent_overlap", "adjacent-token expert overlap (%)", 100},
    {"locality.adjacent_jaccard", "adjacent-token Jaccard (%)", 100},
    {"locality.reuse_distance", "expert uses (%)", 100},
    {"affinity.layer_affinity", "H(next-layer expert | expert) / log E", 1},
    {"affinity.affinity_predictability", "successor predictability (%)", 100},
    {"affinity.coactivation_entropy", "co-activation entropy (1 = uniform)", 1},
    {"specialization.vocab_specialization", "vocabulary specialisation (%)", 100},
    {"specialization.domain_specialization", "domain specialisation (CV)", 1},
    {"agreement.fluctuation", "fluctuation (% of tokens)", 100},
    {"agreement.topk_change", "top-k change (%)", 100},
    {"agreement.jaccard", "Jaccard with the reference", 1},
    {"agreement.mass_retained", "reference mass retained (%)", 100},
    {"outcome.quality", "mean quality", 1},
    {"outcome.cost_mean", "mean cost per query", 1},
    {"outcome.cost_total", "total cost", 1},
    {"outcome.oracle_quality", "oracle quality", 1},
    {"outcome.oracle_cost", "oracle cost", 1},
    {"outcome.oracle_gap", "quality gap to the oracle", 1},
    {"outcome.recovered", "oracle gap recovered (%)", 100},
    {"outcome.strong_calls", "strong-model calls (%)", 100},
    {"outcome.share", "queries answered (%)", 100},
    {"outcome.queries", "queries evaluated", 1},
    {"outcome.model_quality", "model quality", 1},
    {"outcome.model_cost", "model cost per query", 1},
    {"curve.aiq", "AIQ (area under the cost-quality hull)", 1},
    {"curve.apgr", "APGR", 1},
    {"curve.cpt", "CPT: strong-model calls needed (%)", 100},
};

void rs_plot_metric_axis(const char *metric, rs_plot_axis *axis)
{
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (strcmp(known[i].metric, metric) == 0) {
            snprintf(axis->label, sizeof axis->label, "%s", known[i].label);
            axis->scale = known[i].scale;
            return;
        }
    }
    snprintf(axis->label, sizeof axis->label, "%s", metric);
    axis->scale = 1;
}

static const rs_param_def *find_param(const rs_param_def *defs, int n, const char *name)
{
    for (int i = 0; defs && i < n; i++)
        if (strcmp(defs[i].name, name) == 0)
            return &defs[i];
    return NULL;
}

void rs_plot_param_axis(const char *router, const char *param, char *buf, size_t size)
{
    const rs_router_type *type = rs_router_find(router);
    const rs_param_def *def = type ? find_param(type->params, type->num_params, param) : NULL;
    const rs_router_type *base = type && type->preset_of ? rs_router_find(type->preset_of) : NULL;
    if (!def && base)
        def = find_param(base->params, base->num_params, param);
    if (!def)
        def = find_param(rs_capacity_param_defs, rs_capacity_num_params, param);
    /* a short description reads well on an axis; a long one belongs in the caption */
    if (def && def->help && strlen(def->help) <= 36)
        snprintf(buf, size, "%s: %s", param, def->help);
    else
        snprintf(buf, size, "%s", param);
}

const char *rs_plot_metric_definition(const char *metric)
{
    const char *dot = strchr(metric, '.');
    if (!dot)
        return "";
    char family[128];
    snprintf(family, sizeof family, "%.*s", (int)(dot - metric), metric);
    const rs_metric_type *type = rs_metric_find(family);
    for (int o = 0; type && o < type->num_outputs; o++)
        if (strcmp(type->outputs[o].name, dot + 1) == 0)
            return type->outputs[o].definition;
    return "";
}
