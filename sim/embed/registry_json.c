#include "sim/embed/registry_json.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "routers/common/capacity.h"
#include "routesim/router.h"

static int is_preset(const rs_router_type *t) { return (t->flags & RS_ROUTER_PRESET) != 0; }

static cJSON *range_value(double v) { return isfinite(v) && fabs(v) < 1e300 ? cJSON_CreateNumber(v) : cJSON_CreateNull(); }

cJSON *rs_describe_params_json(const rs_param_def *defs, int n)
{
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; arr && i < n; i++) {
        const rs_param_def *d = &defs[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToArray(arr, o);
        cJSON_AddStringToObject(o, "name", d->name);
        cJSON_AddStringToObject(o, "type", rs_param_kind_name(d->kind));
        if (d->default_value)
            cJSON_AddStringToObject(o, "default", d->default_value);
        else
            cJSON_AddNullToObject(o, "default");
        if (d->kind == RS_PARAM_INT || d->kind == RS_PARAM_FLOAT) {
            cJSON_AddItemToObject(o, "min", range_value(d->min));
            cJSON_AddItemToObject(o, "max", range_value(d->max));
        }
        if (d->kind == RS_PARAM_ENUM) {
            cJSON *choices = cJSON_AddArrayToObject(o, "choices");
            char buf[512];
            snprintf(buf, sizeof buf, "%s", d->choices);
            char *save = NULL;
            for (char *c = strtok_r(buf, "|", &save); c; c = strtok_r(NULL, "|", &save))
                cJSON_AddItemToArray(choices, cJSON_CreateString(c));
        }
        cJSON_AddStringToObject(o, "help", d->help ? d->help : "");
    }
    return arr;
}

cJSON *rs_describe_needs_json(unsigned needs)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "logits", (needs & (RS_NEEDS_LOGITS | RS_NEEDS_PROBS)) != 0);
    cJSON_AddBoolToObject(o, "token_ids", (needs & RS_NEEDS_TOKEN_IDS) != 0);
    cJSON_AddBoolToObject(o, "bias", (needs & RS_NEEDS_BIAS) != 0);
    cJSON_AddBoolToObject(o, "recorded_topk", (needs & RS_NEEDS_TOPK) != 0);
    cJSON_AddBoolToObject(o, "outcomes", (needs & RS_NEEDS_OUTCOME) != 0);
    return o;
}

static cJSON *router_json(const rs_router_type *t)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", t->name);
    cJSON_AddStringToObject(o, "summary", t->summary);
    cJSON_AddStringToObject(o, "source", t->source);
    if (is_preset(t)) {
        cJSON_AddBoolToObject(o, "preset", 1);
        cJSON_AddStringToObject(o, "preset_of", t->preset_of);
        cJSON_AddStringToObject(o, "preset_params", t->preset_params ? t->preset_params : "");
        return o;
    }
    cJSON_AddBoolToObject(o, "preset", 0);
    cJSON_AddStringToObject(o, "formula", t->formula ? t->formula : "");
    cJSON *flags = cJSON_AddObjectToObject(o, "flags");
    cJSON_AddBoolToObject(flags, "causal", (t->flags & RS_ROUTER_CAUSAL) != 0);
    cJSON_AddBoolToObject(flags, "stateful", (t->flags & RS_ROUTER_STATEFUL) != 0);
    cJSON_AddBoolToObject(flags, "stochastic", (t->flags & RS_ROUTER_STOCHASTIC) != 0);
    cJSON_AddBoolToObject(flags, "query", (t->flags & RS_ROUTER_QUERY) != 0);
    cJSON_AddBoolToObject(flags, "grouped", (t->flags & RS_ROUTER_GROUPED) != 0);
    cJSON_AddBoolToObject(flags, "token_choice", (t->flags & RS_ROUTER_TOKEN_CHOICE) != 0);
    cJSON_AddItemToObject(o, "needs", rs_describe_needs_json(t->needs));
    cJSON_AddItemToObject(o, "params", rs_describe_params_json(t->params, t->num_params));
    if (t->capacity_defaults)
        cJSON_AddStringToObject(o, "capacity_defaults", t->capacity_defaults);
    return o;
}

cJSON *rs_routers_json_doc(const char *only)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *routers = cJSON_AddArrayToObject(root, "routers");
    cJSON *presets = cJSON_AddArrayToObject(root, "presets");
    cJSON_AddItemToObject(root, "capacity_stage", rs_describe_params_json(rs_capacity_param_defs, rs_capacity_num_params));
    for (int i = 0; i < rs_router_count(); i++) {
        const rs_router_type *t = rs_router_at(i);
        if (!only || strcmp(only, t->name) == 0)
            cJSON_AddItemToArray(is_preset(t) ? presets : routers, router_json(t));
    }
    return root;
}

const char *rs_layer_aggregate_name(rs_layer_aggregate a)
{
    switch (a) {
    case RS_AGG_MEAN: return "mean";
    case RS_AGG_SUM: return "sum";
    case RS_AGG_MAX: return "max";
    case RS_AGG_SELF: return "model-level";
    }
    return "?";
}

const char *rs_curve_key_text(const rs_curve_metric_type *t, char *buf, size_t size)
{
    buf[0] = '\0';
    if (t->key_param)
        snprintf(buf, size, "%s=V for each %s of the outcome specs", t->key_param, t->key_param);
    return buf;
}

static cJSON *metric_json(const rs_metric_type *t)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", t->name);
    cJSON_AddStringToObject(o, "summary", t->summary);
    cJSON_AddStringToObject(o, "source", t->source);
    cJSON_AddItemToObject(o, "needs", rs_describe_needs_json(t->needs));
    cJSON_AddBoolToObject(o, "needs_reference", (t->flags & RS_METRIC_REFERENCE) != 0);
    cJSON_AddBoolToObject(o, "sequential", (t->flags & RS_METRIC_SEQUENTIAL) != 0);
    cJSON_AddItemToObject(o, "params", rs_describe_params_json(t->params, t->num_params));
    cJSON *outs = cJSON_AddArrayToObject(o, "outputs");
    for (int j = 0; j < t->num_outputs; j++) {
        cJSON *x = cJSON_CreateObject();
        cJSON_AddItemToArray(outs, x);
        char full[256];
        snprintf(full, sizeof full, "%s.%s", t->name, t->outputs[j].name);
        cJSON_AddStringToObject(x, "name", full);
        cJSON_AddStringToObject(x, "definition", t->outputs[j].definition);
        cJSON_AddStringToObject(x, "layer_all", rs_layer_aggregate_name(t->outputs[j].aggregate));
    }
    return o;
}

static cJSON *curve_metrics_json(void)
{
    char key[64];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", RS_CURVE_FAMILY);
    cJSON_AddStringToObject(o, "summary", RS_CURVE_SUMMARY);
    cJSON_AddBoolToObject(o, "cross_run", 1);
    cJSON *outs = cJSON_AddArrayToObject(o, "outputs");
    for (int i = 0; i < rs_curve_metric_count(); i++) {
        const rs_curve_metric_type *t = rs_curve_metric_at(i);
        cJSON *x = cJSON_CreateObject();
        cJSON_AddItemToArray(outs, x);
        char full[256];
        snprintf(full, sizeof full, "%s.%s", RS_CURVE_FAMILY, t->output.name);
        cJSON_AddStringToObject(x, "name", full);
        cJSON_AddStringToObject(x, "definition", t->output.definition);
        cJSON_AddStringToObject(x, "key", rs_curve_key_text(t, key, sizeof key));
        cJSON_AddStringToObject(x, "source", t->source);
    }
    return o;
}

cJSON *rs_metrics_json_doc(const char *only)
{
    cJSON *root = cJSON_CreateArray();
    for (int i = 0; i < rs_metric_count(); i++) {
        const rs_metric_type *t = rs_metric_at(i);
        if (!only || strcmp(only, t->name) == 0)
            cJSON_AddItemToArray(root, metric_json(t));
    }
    if (!only || strcmp(only, RS_CURVE_FAMILY) == 0)
        cJSON_AddItemToArray(root, curve_metrics_json());
    return root;
}
