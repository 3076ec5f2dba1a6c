/* The registries as JSON documents: `routesim routers --json`, `routesim
 * metrics --json` and rs_routers_json / rs_metrics_json (embed.h) print
 * the same documents. */
#ifndef ROUTESIM_REGISTRY_JSON_H
#define ROUTESIM_REGISTRY_JSON_H

#include <cJSON.h>
#include <stddef.h>

#include "metrics/curves/curve_metric.h"
#include "routesim/metric.h"
#include "routesim/params.h"

/* {"routers": [...], "presets": [...], "capacity_stage": [params]}; only:
 * one router's name, or NULL for all. */
cJSON *rs_routers_json_doc(const char *only);
/* [families..., the cross-run family]; only: one family's name, or NULL. */
cJSON *rs_metrics_json_doc(const char *only);

cJSON *rs_describe_params_json(const rs_param_def *defs, int n);
cJSON *rs_describe_needs_json(unsigned needs);

/* "mean", "sum", "max", "model-level": what layer = all holds. */
const char *rs_layer_aggregate_name(rs_layer_aggregate a);
/* "p=V for each p of the outcome specs" for a keyed cross-run metric, "" otherwise. */
const char *rs_curve_key_text(const rs_curve_metric_type *t, char *buf, size_t size);

#endif
